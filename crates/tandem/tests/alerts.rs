//! Alerts from real daemons on loopback: two `tandem node`s (UDP links, a file as the
//! shared disk, a `process` resource) whose `[[alert]]`s point at an SMTP server
//! (python3 aiosmtpd, plain SMTP as from a local relay: STARTTLS and AUTH are tested in
//! `crates/alerts/tests/delivery.rs`) and an HTTP receiver started here. A host crash
//! (alpha SIGKILLed while it runs the group) must make beta send exactly one e-mail and
//! one webhook call, naming E2104 and W4111 with node and group.
//!
//! The two daemons are `tests/support/loopback.rs`'s cluster, shared with `node.rs`.
//!
//! Also `tandem events --follow --bell`: a BEL for every new warning or error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[path = "support/loopback.rs"]
mod loopback;
use loopback::{Cluster, TANDEM};

fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > until {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// ---- the receivers ------------------------------------------------------------------

const SMTP_SERVER: &str = r#"
import os, sys
from aiosmtpd.controller import Controller
port, outdir = sys.argv[1:3]
class Handler:
    count = 0
    async def handle_DATA(self, server, session, envelope):
        Handler.count += 1
        path = os.path.join(outdir, "%d.eml" % Handler.count)
        with open(path + ".tmp", "w") as f:
            f.write("X-Test-Mail-From: %s\n" % envelope.mail_from)
            f.write("X-Test-Rcpt-To: %s\n" % ",".join(envelope.rcpt_tos))
            f.write(envelope.content.decode("utf8", "replace"))
        os.rename(path + ".tmp", path)
        return "250 OK"
c = Controller(Handler(), hostname="127.0.0.1", port=int(port))
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

/// The SMTP server; stopped (stdin closed, else killed by its pid) when dropped.
struct Smtp {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Smtp {
    fn start(dir: &Path) -> Smtp {
        let python = ["python3", "/usr/bin/python3"]
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .args(["-c", "import aiosmtpd"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect("aiosmtpd is needed: apt-get install -y python3-aiosmtpd");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::create_dir_all(dir).unwrap();
        let mut child = Command::new(python)
            .args(["-c", SMTP_SERVER, &port.to_string()])
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "aiosmtpd did not start");
        Smtp { child, port, dir: dir.to_path_buf() }
    }

    fn mails(&self) -> Vec<String> {
        let mut paths: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        paths.sort_by_key(|p| {
            p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u32>().ok())
        });
        paths.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        if wait_for(Duration::from_secs(5), || self.child.try_wait().ok().flatten()).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP receiver on 127.0.0.1 that takes every POST (200) and keeps its body.
fn http_receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Some(body) = read_post(&mut stream) else { continue };
            kept.lock().unwrap().push(body);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, bodies)
}

fn read_post(stream: &mut impl Read) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let mut length = 0usize;
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
    first.starts_with("POST ").then(|| String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn a_host_crash_is_one_email_and_one_webhook_call_from_the_survivor() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&dir.path().join("mail"));
    let (http, calls) = http_receiver();
    // A short rate limit, so that what the start journals is sent and done with before
    // the crash; the crash's events still come within one gather window.
    let alerts = format!(
        r#"[[alert]]
kind = "email"
smtp = "127.0.0.1:{}"
starttls = false
from = "tandem@alerttest.example"
to = ["ops@example.com"]
rate_limit = "3s"

[[alert]]
kind = "webhook"
url = "http://127.0.0.1:{http}/tandem"
rate_limit = "3s"
"#,
        smtp.port
    );
    let mut cluster = Cluster::with_config("", &alerts);
    cluster.start(0);
    cluster.wait_code(0, "I4102", Duration::from_secs(15));
    cluster.start(1);
    cluster.wait_code(1, "I2103", Duration::from_secs(15));
    // Whatever the start sent (and its summaries) is over after gather + 2 x rate limit.
    thread::sleep(Duration::from_secs(9));
    let mails_before = smtp.mails().len();
    let calls_before = calls.lock().unwrap().len();

    cluster.signal(0, nix::sys::signal::Signal::SIGKILL);
    assert!(cluster.wait_exit(0, Duration::from_secs(2)).is_some(), "alpha killed");
    cluster.wait_code(1, "W4111", Duration::from_secs(15));
    let mail = wait_for(Duration::from_secs(15), || smtp.mails().get(mails_before).cloned())
        .unwrap_or_else(|| panic!("no e-mail after the crash\n{}", cluster.logs()));
    let call =
        wait_for(Duration::from_secs(15), || calls.lock().unwrap().get(calls_before).cloned())
            .unwrap_or_else(|| panic!("no webhook call after the crash\n{}", cluster.logs()));
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
}

#[test]
fn events_follow_bell_rings_on_every_new_warning_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let journal = state.join("journal.jsonl");
    let line = |id: u64, code: &str, severity: &str| {
        format!(
            "{{\"id\":{id},\"time\":\"2026-12-07T10:42:0{id}Z\",\"code\":\"{code}\",\
             \"severity\":\"{severity}\",\"node\":\"beta\",\"message\":\"m{id}\"}}\n"
        )
    };
    std::fs::write(&journal, line(1, "W2101", "warning")).unwrap();
    let mut follow = Command::new(TANDEM)
        .args(["events", "--follow", "--bell", "--state-dir"])
        .arg(&state)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let read_until = |want: &str, seen: &mut Vec<u8>| {
        let until = Instant::now() + Duration::from_secs(10);
        while !String::from_utf8_lossy(seen).contains(want) && Instant::now() < until {
            if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(100)) {
                seen.extend(bytes);
            }
        }
    };
    read_until("m1", &mut seen);
    let append = |text: String| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    append(line(2, "E2104", "error"));
    read_until("m2", &mut seen);
    append(line(3, "I2102", "info"));
    read_until("m3", &mut seen);
    // Later, more warnings: it keeps ringing.
    for id in 4..=6 {
        append(line(id, "W2101", "warning"));
        read_until(&format!("m{id}"), &mut seen);
    }
    // The bell follows its line in a write of its own.
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(50)) {
            seen.extend(bytes);
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    let text = String::from_utf8_lossy(&seen).into_owned();
    // The history (m1) does not ring; E2104 and the three later warnings do; info not.
    assert_eq!(text.matches('\x07').count(), 4, "{text:?}");
}
