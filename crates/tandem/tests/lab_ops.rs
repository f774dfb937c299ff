//! Operating the lab cluster from outside, as root (`TANDEM_LAB=1`, which the test
//! command sets): alerts that leave the hosts for another machine (a real SMTP server and
//! an HTTP receiver in the client namespace), the HTTPS API asked from the client, and
//! an application that keeps itself protected through the API. The cluster is
//! `support/cluster.rs`'s (real daemons, virtual IPs, the shared disk, the sampler).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/receivers.rs"]
mod receivers;

use std::path::Path;
use std::thread;
use std::time::Duration;

use cluster::*;
use receivers::{http_receiver, wait_for, Smtp};

/// Where the webhook receiver listens in the client namespace (the lab's own: no other
/// test shares it).
const WEBHOOK_PORT: u16 = 8025;

/// Two targets, each with a short rate limit so that what the start journals is sent
/// and done with before the crash; the crash's events still come within one gather
/// window.
const ALERTS: &str = r#"
[[alert]]
kind = "email"
smtp = "{client}:2525"
starttls = false
from = "tandem@labtest.example"
to = ["ops@example.com"]
rate_limit = "3s"

[[alert]]
kind = "webhook"
url = "http://{client}:8025/tandem"
rate_limit = "3s"
"#;

/// A host crash (alpha, running `web`) makes beta send exactly one e-mail and one
/// webhook call, to another machine, naming the lost node (E2104) and the takeover
/// (W4111) with node and group.
#[test]
fn a_host_crash_is_one_email_and_one_webhook_call_to_another_machine() {
    if !lab_available("a_host_crash_is_one_email_and_one_webhook_call_to_another_machine") {
        return;
    }
    let options = Options { extra: ALERTS, ..Options::default() };
    let mut cluster = Cluster::new(&options);
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::in_client(&cluster.lab, &dir.path().join("mail"));
    let listener = cluster.lab.tcp_listener(Node::Client, Network::Public, WEBHOOK_PORT).unwrap();
    let calls = http_receiver(listener);
    cluster.form(&options);
    // Whatever the start sent (and its summaries) is over after gather + 2 x rate limit.
    thread::sleep(Duration::from_secs(9));
    let mails_before = smtp.mails().len();
    let calls_before = calls.lock().unwrap().len();

    cluster.lab.crash(0).expect("crash alpha");
    cluster.wait_code(1, "W4111", Duration::from_secs(30));
    let mail = wait_for(Duration::from_secs(15), || smtp.mails().get(mails_before).cloned())
        .unwrap_or_else(|| panic!("no e-mail after the crash\n{}", cluster.report()));
    let call =
        wait_for(Duration::from_secs(15), || calls.lock().unwrap().get(calls_before).cloned())
            .unwrap_or_else(|| panic!("no webhook call after the crash\n{}", cluster.report()));
    // Anything more would come within a gather window (2 s) or after the rate limit.
    thread::sleep(Duration::from_millis(2500));
    let mails = smtp.mails();
    let all_calls = calls.lock().unwrap().clone();
    assert_eq!(mails.len(), mails_before + 1, "one e-mail: {:#?}", &mails[mails_before..]);
    assert_eq!(all_calls.len(), calls_before + 1, "one call: {:#?}", &all_calls[calls_before..]);

    let unfolded = mail.replace("\r\n", "\n").replace("\n ", " ");
    let subject = unfolded.lines().find(|l| l.starts_with("Subject: ")).unwrap();
    assert!(subject.contains("E2104") && subject.contains("on beta"), "{subject}");
    assert!(unfolded.contains("W4111") && unfolded.contains("group web"), "{unfolded}");
    assert!(unfolded.contains("X-Test-Rcpt-To: ops@example.com"), "{unfolded}");

    let json: serde_json::Value = serde_json::from_str(&call).unwrap();
    assert!(json["summary"].as_str().unwrap().starts_with("E2104 on beta"), "{json}");
    let events = json["events"].as_array().unwrap();
    let lost = events.iter().find(|e| e["code"] == "E2104").expect("E2104");
    assert_eq!(lost["node"], "beta");
    let takeover = events.iter().find(|e| e["code"] == "W4111").expect("W4111");
    assert_eq!(takeover["node"], "beta");
    assert_eq!(takeover["group"], "web");
    cluster.assert_never_double();
}

/// `web` with an `app` resource kept alive by `examples/app-heartbeat.sh` on alpha,
/// through alpha's HTTPS API. The client asks the status over the API (another host,
/// `--endpoint`); the application dies, its heartbeats stop: the resource fails at its
/// deadline and the group is restarted in place (W4105); still silent, it fails again
/// and the group moves to beta at the migration threshold (E4108).
#[test]
fn an_app_that_stops_calling_the_api_is_restarted_then_moved_at_the_threshold() {
    if !lab_available("an_app_that_stops_calling_the_api_is_restarted_then_moved_at_the_threshold")
    {
        return;
    }
    let options = Options {
        api: true,
        web_extra: "migration_threshold = 2\n",
        web_resources:
            "\n  [[group.resource]]\n  name = \"beater\"\n  kind = \"app\"\n  \
                        deadline = \"3s\"\n  monitor = { interval = \"200ms\", timeout = \"1s\" }\n",
        ..Options::default()
    };
    let mut cluster = Cluster::new(&options);
    let ca = cluster.enable_api().expect("the API's files");
    let viewer = cluster.add_user("vera", "viewer").unwrap();
    let beater = cluster.add_user("beater", "app").unwrap();
    // The application on alpha, before the daemons: its first heartbeats fail until
    // alpha's API is up (the script says so and goes on), and the resource has one
    // deadline after its start to hear the first.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/app-heartbeat.sh");
    let endpoint = cluster.api_endpoint(0);
    let command = [
        "sh",
        script.to_str().unwrap(),
        &endpoint,
        "beater",
        "/etc/tandem/ca.crt",
        "--",
        "/bin/sleep",
        "100000",
    ];
    let env = [("TANDEM_TOKEN", beater.as_str()), ("INTERVAL", "0.2")];
    let mut app = cluster.lab.spawn_env(Node::Host(0), &command, &env).unwrap();
    cluster.form(&options);

    // From the client: the cluster's status through alpha's API, with the CA.
    let status = cluster
        .lab
        .exec(
            Node::Client,
            &[TANDEM, "status", "--json", "--endpoint", &endpoint, "--token", &viewer, "--ca"]
                .into_iter()
                .chain([ca.to_str().unwrap()])
                .collect::<Vec<_>>(),
        )
        .unwrap();
    assert!(status.success(), "{status:?}");
    let doc: contract::Status = serde_json::from_str(&status.stdout).unwrap();
    let web = doc.group("web").expect("web in the status");
    assert_eq!(web.owner.as_deref(), Some("alpha"), "{doc:?}");
    // Kept alive: two deadlines later it still runs there, nothing failed.
    thread::sleep(Duration::from_secs(6));
    cluster.assert_runs(1, "web", "alpha");
    let fails: u32 = cluster
        .status(0)
        .and_then(|s| s.group("web").map(|g| g.resources.iter().map(|r| r.fail_count).sum()))
        .unwrap();
    assert_eq!(fails, 0, "{}", cluster.report());
    assert!(!cluster.codes(0).contains(&"W4105".to_string()), "{}", cluster.report());

    // The application dies: the script stops calling.
    app.kill().unwrap();
    cluster.wait_owner(1, "web", "beta", Duration::from_secs(40));
    let codes = cluster.codes(0);
    for code in ["W4105", "E4108"] {
        assert!(codes.contains(&code.to_string()), "{code} missing on alpha\n{}", cluster.report());
    }
    cluster.assert_never_double();
}
