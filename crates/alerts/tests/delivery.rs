//! Delivery against real parts: an SMTP server (python3 aiosmtpd) with STARTTLS and
//! AUTH, a webhook receiver over HTTPS that fails its first calls, shell scripts; all
//! on 127.0.0.1, with a CA and certificate made here (rcgen).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alerts::Event;
use config::{AlertConfig, AlertTarget, HostPort, Spanned};
use engine::catalogue::Severity;

/// A CA and a certificate for "localhost" and 127.0.0.1 signed by it, as PEM files.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    cert_pem: String,
    key_pem: String,
}

/// A path as the configuration holds it (with where it was written: nowhere here).
fn spanned(path: &Path) -> Spanned<PathBuf> {
    Spanned { value: path.to_path_buf(), span: 0..0 }
}

fn pki(dir: &Path) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let out = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    std::fs::write(&out.ca, ca.pem()).unwrap();
    std::fs::write(&out.cert, &out.cert_pem).unwrap();
    std::fs::write(&out.key, &out.key_pem).unwrap();
    out
}

fn event(code: &str, severity: Severity, group: Option<&str>, message: &str) -> Event {
    Event {
        time: "2026-12-07T10:42:07Z".into(),
        code: code.into(),
        severity,
        node: "beta".into(),
        group: group.map(str::to_string),
        resource: None,
        location: Some("node alpha".into()),
        message: message.into(),
    }
}

fn crash_events() -> Vec<Event> {
    vec![
        event("W2101", Severity::Warning, None, "link private to alpha down"),
        event("E2104", Severity::Error, None, "peer alpha offline on every link"),
        event("W4111", Severity::Warning, Some("web"), "taking over group web from alpha"),
    ]
}

fn alert(target: AlertTarget) -> AlertConfig {
    AlertConfig {
        min_severity: Severity::Warning,
        gather: Duration::from_millis(300),
        rate_limit: Duration::from_secs(60),
        target,
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---- SMTP -------------------------------------------------------------------------

/// The SMTP server, shared with the lab's alert test (crates/tandem/tests/support).
const SMTP_SERVER: &str = include_str!("smtp_server.py");

/// A python3 that has aiosmtpd (Debian's python3-aiosmtpd is /usr/bin/python3's).
fn python_with_aiosmtpd() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// The SMTP server; killed (our child, by its PID) when dropped.
struct Smtp {
    child: Child,
    port: u16,
}

impl Smtp {
    fn start(pki: &Pki, outdir: &Path, user: &str, password: &str) -> Smtp {
        let python = python_with_aiosmtpd().expect(
            "aiosmtpd is needed: apt-get install -y python3-aiosmtpd (or pip install aiosmtpd)",
        );
        let port = free_port();
        let mut child = Command::new(python)
            .args(["-c", SMTP_SERVER, "127.0.0.1", &port.to_string()])
            .arg(outdir)
            .arg(&pki.cert)
            .arg(&pki.key)
            .args([user, password])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Smtp { child, port }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        // Our own child: killed by its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mails(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    names.sort();
    names.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

#[test]
fn email_over_starttls_with_auth_is_one_message_for_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let outdir = dir.path().join("mail");
    std::fs::create_dir(&outdir).unwrap();
    let smtp = Smtp::start(&pki, &outdir, "tandem", "s3cret pass");
    let password_file = dir.path().join("smtp.password");
    std::fs::write(&password_file, "s3cret pass\n").unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = alert(AlertTarget::Email {
        smtp: HostPort { host: "localhost".into(), port: smtp.port },
        starttls: true,
        from: "tandem@beta.example".into(),
        to: vec!["ops@example.com".into(), "oncall@example.com".into()],
        username: Some("tandem".into()),
        password_file: Some(spanned(&password_file)),
        ca_file: Some(spanned(&pki.ca)),
    });
    let (alerts, failures) = alerts::start("beta", &[config]).unwrap().unwrap();
    for e in crash_events() {
        alerts.offer(e);
    }
    let got = wait_for(Duration::from_secs(20), || Some(mails(&outdir)).filter(|m| !m.is_empty()))
        .expect("no e-mail arrived");
    std::thread::sleep(Duration::from_secs(2));
    let got_now = mails(&outdir);
    assert_eq!(got_now.len(), 1, "exactly one e-mail: {got_now:?}");
    let mail = &got[0];
    assert!(mail.contains("X-Test-Mail-From: tandem@beta.example"), "{mail}");
    assert!(mail.contains("X-Test-Rcpt-To: ops@example.com,oncall@example.com"), "{mail}");
    assert!(mail.contains("X-Test-Tls: True") && mail.contains("X-Test-Auth: True"), "{mail}");
    // Headers may be folded: unfold them first.
    let unfolded = mail.replace("\r\n", "\n").replace("\n ", " ");
    let subject = unfolded.lines().find(|l| l.starts_with("Subject: ")).expect("subject");
    assert!(
        subject.contains("E2104") && subject.contains("beta") && subject.contains("+2 more"),
        "{subject}"
    );
    for code in ["W2101", "E2104", "W4111", "group web"] {
        assert!(mail.contains(code), "{code} in {mail}");
    }
    assert!(failures.try_recv().is_err(), "no failure");
}

#[test]
fn an_unreachable_relay_is_retried_then_a_w6101_and_a_loose_password_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let password_file = dir.path().join("smtp.password");
    std::fs::write(&password_file, "secret\n").unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let target = AlertTarget::Email {
        // Nothing listens there: connection refused, every attempt.
        smtp: HostPort { host: "127.0.0.1".into(), port: free_port() },
        starttls: true,
        from: "tandem@beta.example".into(),
        to: vec!["ops@example.com".into()],
        username: Some("tandem".into()),
        password_file: Some(spanned(&password_file)),
        ca_file: Some(spanned(&pki.ca)),
    };
    let refused = alerts::start("beta", &[alert(target.clone())]).err().expect("refused");
    assert_eq!(refused.code.code, "E6001", "{refused}");
    assert!(refused.message.contains("chmod 600"), "{refused}");
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let started = Instant::now();
    let (alerts, failures) = alerts::start("beta", &[alert(target)]).unwrap().unwrap();
    alerts.offer(event("E2104", Severity::Error, None, "peer alpha offline"));
    let failure = failures.recv_timeout(Duration::from_secs(90)).expect("a W6101");
    assert_eq!(failure.code, "W6101");
    let text = &failure.message;
    assert!(text.contains("alert 1 (email)") && text.contains("5 attempts"), "{text}");
    assert!(text.contains("E2104"), "{text}");
    // 2 + 4 + 8 + 16 s between the five attempts.
    assert!(started.elapsed() >= Duration::from_secs(30), "{:?}", started.elapsed());
}

// ---- Webhook ----------------------------------------------------------------------

/// What the receiver saw: every request's status answered, and the accepted bodies.
#[derive(Default)]
struct Seen {
    answered: Vec<u16>,
    bodies: Vec<String>,
}

/// An HTTPS receiver on 127.0.0.1 that answers 503 to its first `failures` calls.
fn https_receiver(pki: &Pki, failures: usize) -> (u16, Arc<Mutex<Seen>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(pki.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let Some(body) = read_request(&mut tls) else { continue };
            let mut seen = seen2.lock().unwrap();
            let status = if seen.answered.len() < failures { 503 } else { 200 };
            seen.answered.push(status);
            if status == 200 {
                seen.bodies.push(body);
            }
            let reason = if status == 200 { "OK" } else { "Service Unavailable" };
            let _ = write!(
                tls,
                "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (port, seen)
}

/// Reads one POST's headers and body.
fn read_request(stream: &mut impl Read) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    if !first.starts_with("POST ") {
        return None;
    }
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

#[test]
fn webhook_over_https_retries_then_delivers_once() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let (port, seen) = https_receiver(&pki, 2);
    let config = alert(AlertTarget::Webhook {
        url: format!("https://localhost:{port}/hook"),
        ca_file: Some(spanned(&pki.ca)),
    });
    let (alerts, failures) = alerts::start("beta", &[config]).unwrap().unwrap();
    for e in crash_events() {
        alerts.offer(e);
    }
    // Fails at once, again after 2 s, then is taken after 4 s more.
    let delivered = wait_for(Duration::from_secs(30), || {
        let seen = seen.lock().unwrap();
        seen.bodies.first().cloned()
    })
    .expect("the webhook was not called successfully");
    std::thread::sleep(Duration::from_secs(1));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.answered, [503, 503, 200], "two retries, one delivery");
    let json: serde_json::Value = serde_json::from_str(&delivered).unwrap();
    let summary = json["summary"].as_str().unwrap();
    assert!(summary.starts_with("E2104 on beta"), "{summary}");
    assert_eq!(json["kind"], "events");
    let events = json["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    let takeover = events.iter().find(|e| e["code"] == "W4111").unwrap();
    assert_eq!(takeover["severity"], "warning");
    assert_eq!(takeover["node"], "beta");
    assert_eq!(takeover["group"], "web");
    assert_eq!(takeover["location"], "node alpha");
    assert_eq!(takeover["time"], "2026-12-07T10:42:07Z");
    assert!(takeover["message"].as_str().unwrap().contains("taking over"));
    assert!(failures.try_recv().is_err(), "no failure");
}

// ---- Script -----------------------------------------------------------------------

fn script(dir: &Path, name: &str, body: &str) -> Spanned<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Spanned { value: path, span: 0..0 }
}

#[test]
fn script_gets_both_variable_families_and_a_failing_one_is_reported_to_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs");
    std::fs::create_dir(&out).unwrap();
    let record = script(
        dir.path(),
        "record.sh",
        &format!("env > {}/run.$CRM_alert_node_sequence.$$", out.display()),
    );
    let failing = script(dir.path(), "fail.sh", "echo cannot page anyone >&2; exit 3");
    let (alerts, failures) = alerts::start(
        "beta",
        &[
            alert(AlertTarget::Script { path: record }),
            alert(AlertTarget::Script { path: failing }),
        ],
    )
    .unwrap()
    .unwrap();
    alerts.offer(event("E2104", Severity::Error, None, "peer alpha offline"));
    alerts.offer(Event {
        resource: Some("vip".into()),
        ..event("E4102", Severity::Error, Some("web"), "resource vip failed")
    });
    alerts.offer(event("I2102", Severity::Info, None, "below the minimum: not sent"));

    let failure = failures.recv_timeout(Duration::from_secs(20)).expect("a W6101");
    assert_eq!(failure.code, "W6101");
    assert!(failure.message.contains("alert 2 (script)"), "{}", failure.message);
    assert!(failure.message.contains("exit status: 3"), "{}", failure.message);
    // One run per event (2), then the failure of target 2 as a new message to target 1
    // once its rate limit allows: not within this test. Target 2 never hears of it.
    let runs = wait_for(Duration::from_secs(10), || {
        let runs: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        Some(runs).filter(|r| r.len() >= 2)
    })
    .expect("two runs");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
    let resource_run = runs.iter().find(|r| r.contains("TANDEM_EVENT_CODE=E4102")).unwrap();
    for var in [
        "TANDEM_EVENT_SEVERITY=error",
        "TANDEM_EVENT_NODE=beta",
        "TANDEM_EVENT_GROUP=web",
        "TANDEM_EVENT_RESOURCE=vip",
        "TANDEM_EVENT_MESSAGE=resource vip failed",
        "TANDEM_EVENT_TIME=2026-12-07T10:42:07Z",
        "TANDEM_ALERT_KIND=events",
        "CRM_alert_kind=resource",
        "CRM_alert_node=beta",
        "CRM_alert_rsc=vip",
        "CRM_alert_desc=E4102 resource vip failed",
        "CRM_alert_timestamp=2026-12-07T10:42:07Z",
        "CRM_alert_version=tandem ",
        "CRM_alert_recipient=",
        "CRM_alert_node_sequence=",
    ] {
        assert!(resource_run.lines().any(|l| l.starts_with(var)), "{var} in {resource_run}");
    }
    let node_run = runs.iter().find(|r| r.contains("TANDEM_EVENT_CODE=E2104")).unwrap();
    assert!(node_run.contains("CRM_alert_kind=node"), "{node_run}");
    assert!(!runs.iter().any(|r| r.contains("I2102")));
    assert!(failures.recv_timeout(Duration::from_secs(1)).is_err(), "one failure only");
}

#[test]
fn no_alert_targets_start_nothing() {
    assert!(alerts::start("beta", &[]).unwrap().is_none());
}
