//! The HTTPS API of a real `tandem node` on 127.0.0.1: `tandem keygen --config` makes
//! the CA and the node certificates, `tandem user add|list|remove` the users; a viewer
//! reads `/v1/status`, an operator switches the group over, and the journal's I5107
//! entry names the user, its role and the client's address.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use labcluster::config::{free_udp_ports, ClusterToml, NodeToml};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn tandem(args: &[&str]) -> std::process::Output {
    let out = Command::new(TANDEM).args(args).output().unwrap();
    assert!(out.status.success(), "tandem {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

struct Daemons(Vec<Child>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        for child in &mut self.0 {
            let _ = child.wait();
        }
    }
}

fn agent(ca: &Path) -> ureq::Agent {
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
    ureq::AgentBuilder::new().tls_config(Arc::new(config)).timeout(Duration::from_secs(10)).build()
}

#[test]
fn users_round_trip_and_a_real_node_serves_status_and_a_switchover() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let ports = free_udp_ports(2).unwrap();
    let api = [free_tcp_port(), free_tcp_port()];
    let head = ClusterToml {
        comment: String::new(),
        name: "apitest".into(),
        files: Some((format!("{d}/cluster.key"), format!("{d}/state"))),
        timing: "[timing]\nheartbeat_interval = \"50ms\"\npeer_timeout = \"500ms\"\n\
                 lease_timeout = \"1s\"\n"
            .into(),
        nodes: vec![
            NodeToml::loopback("alpha", &ports[..1], &format!("127.0.0.1:{}", api[0])),
            NodeToml::loopback("beta", &ports[1..], &format!("127.0.0.1:{}", api[1])),
        ],
        area: format!("{d}/disk"),
    };
    let token = format!("86400.{}{}", std::process::id(), api[0]);
    let config = format!(
        "{}\n[api]\ntls_cert = \"{d}/tls.crt\"\ntls_key = \"{d}/tls.key\"\n\
         users_file = \"{d}/users.toml\"\n\n[[group]]\nname = \"web\"\nnodes = [\"alpha\", \"beta\"]\n\
         \n  [[group.resource]]\n  name = \"sleeper\"\n  kind = \"process\"\n  \
         command = [\"/bin/sleep\", \"{token}\"]\n  stop_timeout = \"1s\"\n",
        head.text()
    );
    let path = dir.path().join("cluster.toml");
    std::fs::write(&path, config).unwrap();
    let p = path.to_str().unwrap();
    tandem(&["keygen", "--dir", &d, "--config", p]);
    for file in
        ["cluster.key", "ca.crt", "ca.key", "alpha.crt", "alpha.key", "beta.crt", "beta.key"]
    {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    // One node's pair for both (the test talks to alpha only).
    std::fs::copy(dir.path().join("alpha.crt"), dir.path().join("tls.crt")).unwrap();
    std::fs::copy(dir.path().join("alpha.key"), dir.path().join("tls.key")).unwrap();
    std::fs::File::create(dir.path().join("disk")).unwrap().set_len(1 << 20).unwrap();
    tandem(&["disk", "init", "--config", p]);
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

    let mut daemons = Daemons(Vec::new());
    for name in ["alpha", "beta"] {
        let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
        daemons.0.push(
            Command::new(TANDEM)
                .args(["node", "--config", p, "--name", name, "--state-dir"])
                .arg(dir.path().join(name))
                .arg("--runtime-dir")
                .arg(dir.path().join(format!("run-{name}")))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }
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
}
