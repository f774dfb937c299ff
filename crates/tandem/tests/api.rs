//! The HTTPS API of a real `tandem node` on 127.0.0.1: `tandem keygen --config` makes
//! the CA and the node certificates, `tandem user add|list|remove` the users; a viewer
//! reads `/v1/status`, an operator switches the group over, and the journal's I5107
//! entry names the user, its role and the client's address; the CLI does the same
//! through `--endpoint`, with its exit codes; the web console's sign-in; each node's
//! inventory. (`examples/app-heartbeat.sh` is tested in the lab: tests/lab_ops.rs.)

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/api_cluster.rs"]
mod api_cluster;
use api_cluster::{agent, free_tcp_port, tandem, ApiCluster, TANDEM};

#[test]
fn users_round_trip_and_a_real_node_serves_status_and_a_switchover() {
    let cluster = ApiCluster::new(
        "apitest",
        "[[group]]\nname = \"web\"\nnodes = [\"alpha\", \"beta\"]\n\n  [[group.resource]]\n  \
         name = \"sleeper\"\n  kind = \"process\"\n  command = [\"/bin/sleep\", \"{token}\"]\n  \
         stop_timeout = \"1s\"\n",
    );
    let (dir, api, p) = (&cluster.dir, cluster.api, cluster.config.to_str().unwrap());
    // Users: add, refuse a second add, list without tokens, remove.
    let viewer = String::from_utf8(
        tandem(&["user", "add", "vera", "--role", "viewer", "--config", p]).stdout,
    )
    .unwrap();
    let operator = String::from_utf8(
        tandem(&["user", "add", "otto", "--role", "operator", "--config", p]).stdout,
    )
    .unwrap();
    let (viewer, operator) = (viewer.trim().to_string(), operator.trim().to_string());
    assert!(viewer.starts_with("vera.") && operator.starts_with("otto."));
    let again = Command::new(TANDEM)
        .args(["user", "add", "vera", "--role", "admin", "--config", p])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    tandem(&["user", "add", "gone", "--role", "admin", "--config", p]);
    tandem(&["user", "remove", "gone", "--config", p]);
    let list = String::from_utf8(tandem(&["user", "list", "--config", p]).stdout).unwrap();
    assert!(list.contains("vera") && list.contains("viewer") && list.contains("otto"), "{list}");
    assert!(!list.contains("gone") && !list.contains(&viewer[5..]), "{list}");
    assert!(!std::fs::read_to_string(dir.path().join("users.toml"))
        .unwrap()
        .contains(&viewer[5..]));

    let _daemons = cluster.start();
    let agent = agent(&dir.path().join("ca.crt"));
    let base = format!("https://127.0.0.1:{}/v1", api[0]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let owner = loop {
        let answer = agent
            .get(&format!("{base}/status"))
            .set("Authorization", &format!("Bearer {viewer}"))
            .call();
        if let Ok(response) = answer {
            let status: serde_json::Value = response.into_json().unwrap();
            let owner = status["groups"][0]["owner"].as_str().map(str::to_string);
            if status["groups"][0]["state"] == "running" {
                break owner.unwrap();
            }
        }
        let log = std::fs::read_to_string(dir.path().join("alpha.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "no running group through the API; alpha's log:\n{log}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // The viewer may not switch over; the operator may.
    let other = if owner == "alpha" { "beta" } else { "alpha" };
    let url = format!("{base}/groups/web/switchover");
    let body = format!(r#"{{"to": "{other}"}}"#);
    match agent.post(&url).set("Authorization", &format!("Bearer {viewer}")).send_string(&body) {
        Err(ureq::Error::Status(403, _)) => {}
        other => panic!("viewer's switchover: {other:?}"),
    }
    let response = agent
        .post(&url)
        .set("Authorization", &format!("Bearer {operator}"))
        .send_string(&body)
        .unwrap();
    assert_eq!(response.status(), 200);
    // The audit entry in alpha's journal names the user, its role and the address.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let journal =
            std::fs::read_to_string(dir.path().join("alpha/journal.jsonl")).unwrap_or_default();
        let audit = journal.lines().find(|l| l.contains("I5107") && l.contains("switchover"));
        if let Some(line) = audit {
            assert!(
                line.contains("otto (role operator, through the API from 127.0.0.1:"),
                "{line}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no I5107 entry:\n{journal}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // And the events route pages the same journal.
    let page: serde_json::Value = agent
        .get(&format!("{base}/events?since=0"))
        .set("Authorization", &format!("Bearer {viewer}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert!(page["events"].as_array().unwrap().iter().any(|e| e["code"] == "I5107"));
    // As a live stream, the first entry comes at once.
    let response = agent
        .get(&format!("{base}/events?since=0"))
        .set("Authorization", &format!("Bearer {viewer}"))
        .set("Accept", "text/event-stream")
        .call()
        .unwrap();
    assert_eq!(response.header("Content-Type"), Some("text/event-stream"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(response.into_reader()), &mut first)
        .unwrap();
    assert!(first.starts_with("id: "), "{first}");
    // The CLI through the API, from "another machine" (no runtime directory of a node):
    // the same status, commands, and an exit code for each failure.
    let endpoint = format!("https://127.0.0.1:{}", api[0]);
    let ca = dir.path().join("ca.crt");
    let cli = |args: &[&str], token: Option<&str>| {
        let mut command = Command::new(TANDEM);
        command.args(args).args(["--endpoint", &endpoint, "--ca"]).arg(&ca);
        command.arg("--runtime-dir").arg(dir.path().join("nowhere"));
        match token {
            Some(token) => command.env("TANDEM_TOKEN", token),
            None => command.env_remove("TANDEM_TOKEN"),
        };
        let out = command.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = cli(&["status"], Some(&viewer));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("cluster apitest (as alpha sees it)") && text.contains("web"), "{text}");
    let (code, text) = cli(&["status", "--json"], Some(&viewer));
    assert_eq!(code, Some(0), "{text}");
    let doc: contract::Status = serde_json::from_str(&text).unwrap();
    assert_eq!(doc.reported_by, "alpha");
    let (code, text) = cli(&["switchover", "web", "--to", &owner], Some(&viewer));
    assert_eq!(code, Some(4), "a viewer's switch-over: {text}");
    let (code, text) = cli(&["status"], Some("vera.0000"));
    assert_eq!(code, Some(4), "a bad token: {text}");
    let (code, text) = cli(&["status"], None);
    assert_eq!(code, Some(4), "no token: {text}");
    assert!(text.contains("TANDEM_TOKEN"), "{text}");
    let (code, text) = cli(&["switchover", "nope"], Some(&operator));
    assert_eq!(code, Some(1), "an unknown group: {text}");
    assert!(text.contains("nope"), "{text}");
    let (code, text) = cli(&["events"], Some(&viewer));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("I5107"), "{text}");
    let elsewhere = format!("https://127.0.0.1:{}", free_tcp_port());
    let out = Command::new(TANDEM)
        .args(["status", "--endpoint", &elsewhere, "--ca"])
        .arg(&ca)
        .env("TANDEM_TOKEN", &viewer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    // Locally, with no daemon at the runtime directory: no node reached either.
    let out = Command::new(TANDEM)
        .args(["status", "--runtime-dir"])
        .arg(dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    // And the local status with a broken configuration file: shown, with a note.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[cluster\n").unwrap();
    let out = Command::new(TANDEM)
        .args(["status", "--config"])
        .arg(&broken)
        .arg("--runtime-dir")
        .arg(dir.path().join("run-alpha"))
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("cluster apitest"), "{stdout}");
    assert!(stderr.contains("is missing or invalid"), "{stderr}");
    // The metrics of a real node: its links, nodes and group, what it sent and renewed.
    let text = agent
        .get(&format!("https://127.0.0.1:{}/metrics", api[0]))
        .set("Authorization", &format!("Bearer {viewer}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for needle in [
        "tandem_link_up{link=\"",
        "tandem_node_state{name=\"beta\",state=\"",
        "tandem_group_state{name=\"web\",state=\"running\"}",
        "tandem_heartbeats_sent_total{link=\"",
        "tandem_lease_renewals_total{result=\"granted\"}",
        "tandem_operation_seconds_count{kind=\"",
    ] {
        assert!(text.contains(needle), "no `{needle}` in the metrics:\n{text}");
    }
    // The web console of a real node: signed in by the form, its cookie reads the status
    // (with both nodes' console addresses) and the live journal; signed out, it does not.
    let console = format!("https://127.0.0.1:{}", api[0]);
    let browser = ureq::AgentBuilder::new()
        .tls_config(console_tls(&dir.path().join("ca.crt")))
        .timeout(Duration::from_secs(10))
        .redirects(0)
        .build();
    let signed_in = browser
        .post(&format!("{console}/login"))
        .set("Content-Type", "application/x-www-form-urlencoded")
        .send_string(&format!("token={viewer}"))
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let set = signed_in.header("Set-Cookie").unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    assert!(!set.contains(&viewer[5..]), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let status: serde_json::Value = browser
        .get(&format!("{console}/v1/status"))
        .set("Cookie", &cookie)
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    for (node, port) in [("alpha", api[0]), ("beta", api[1])] {
        let entry = status["nodes"].as_array().unwrap().iter().find(|n| n["name"] == node);
        assert_eq!(entry.unwrap()["api"], format!("https://127.0.0.1:{port}/"), "{status}");
    }
    let page = browser.get(&format!("{console}/")).set("Cookie", &cookie).call().unwrap();
    assert!(page.header("Content-Security-Policy").is_some());
    let stream = browser
        .get(&format!("{console}/v1/events?since=0"))
        .set("Cookie", &cookie)
        .set("Accept", "text/event-stream")
        .call()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stream.into_reader()), &mut first)
        .unwrap();
    assert!(first.starts_with("id: "), "{first}");
    let out = browser
        .post(&format!("{console}/logout"))
        .set("Cookie", &cookie)
        .set("X-Tandem-Console", "1")
        .call()
        .unwrap();
    assert_eq!(out.status(), 200);
    match browser.get(&format!("{console}/v1/status")).set("Cookie", &cookie).call() {
        Err(ureq::Error::Status(401, _)) => {}
        other => panic!("a signed-out cookie: {other:?}"),
    }
}

/// TLS for a client that trusts the cluster's CA (`ca.crt`).
fn console_tls(ca: &Path) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(daemon::api::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    std::sync::Arc::new(config)
}

/// `GET /v1/nodes/{n}/inventory` on a real node: an admin gets alpha's own inventory
/// (loopback with 127.0.0.1/8), an operator gets 403, and alpha answers a request for
/// beta's with what it fetched from beta; `tandem inventory --json` prints the same
/// contract document without a node.
#[test]
fn a_real_node_serves_its_inventory_to_an_admin_and_sends_other_nodes_requests_on() {
    let cluster = ApiCluster::new(
        "invtest",
        "[[group]]\nname = \"web\"\nnodes = [\"alpha\", \"beta\"]\n\n  [[group.resource]]\n  \
         name = \"sleeper\"\n  kind = \"process\"\n  command = [\"/bin/sleep\", \"{token}\"]\n  \
         stop_timeout = \"1s\"\n",
    );
    let admin = cluster.user("ada", "admin");
    let operator = cluster.user("otto", "operator");
    let _daemons = cluster.start();
    let agent = agent(&cluster.dir.path().join("ca.crt"));
    let url =
        |node: &str| format!("https://127.0.0.1:{}/v1/nodes/{node}/inventory", cluster.api[0]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let inventory: contract::Inventory = loop {
        match agent.get(&url("alpha")).set("Authorization", &format!("Bearer {admin}")).call() {
            Ok(response) => break response.into_json().unwrap(),
            Err(ureq::Error::Status(code, response)) => {
                panic!("{code}: {}", response.into_string().unwrap_or_default())
            }
            Err(_) => {
                assert!(Instant::now() < deadline, "no API on alpha:\n{}", cluster.logs());
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    assert_eq!(inventory.node.as_deref(), Some("alpha"));
    let lo = inventory.interface("lo").expect("lo");
    assert!(lo.addresses.iter().any(|a| a.address.to_string() == "127.0.0.1" && a.prefix_len == 8));
    match agent.get(&url("alpha")).set("Authorization", &format!("Bearer {operator}")).call() {
        Err(ureq::Error::Status(403, _)) => {}
        other => panic!("an operator's inventory: {other:?}"),
    }
    // Beta's, asked of alpha: alpha fetches it from beta (a call signed with the cluster
    // key, beta's certificate checked against the cluster CA).
    let theirs: contract::Inventory = agent
        .get(&url("beta"))
        .set("Authorization", &format!("Bearer {admin}"))
        .call()
        .unwrap_or_else(|e| panic!("beta's inventory asked of alpha: {e:?}\n{}", cluster.logs()))
        .into_json()
        .unwrap();
    assert_eq!(theirs.node.as_deref(), Some("beta"));
    // The CLI's own, here and now, is the contract's document too.
    let out = tandem(&["inventory", "--json"]);
    let local: contract::Inventory = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(local.node, None);
    assert!(local.interface("lo").is_some());
    assert_eq!(local.host, inventory.host);
}
