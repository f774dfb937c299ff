//! Where alerts go in the tests: a real SMTP server (Python's aiosmtpd, plain SMTP as
//! from a local relay: STARTTLS and AUTH are tested in `crates/alerts/tests/delivery.rs`)
//! that writes each message it accepts to a file, and an HTTP receiver that answers
//! every POST with 200 and keeps its body, both in a lab's client namespace, standing
//! for another machine.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use testbed::{Lab, Network, Node, Spawned};

/// Calls `f` every 50 ms until it returns something, for at most `within`.
pub fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
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

/// The SMTP server of `crates/alerts`' delivery tests, here without TLS and AUTH.
const SMTP_SERVER: &str = include_str!("../../../alerts/tests/smtp_server.py");

/// The Python that has aiosmtpd (Debian's python3-aiosmtpd, which the test command
/// installs).
fn python() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import aiosmtpd"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("aiosmtpd is needed: apt-get install -y python3-aiosmtpd")
}

/// The SMTP server, listening on `address:port`; stopped when dropped.
pub struct Smtp {
    /// The server's process; its handle SIGKILLs it when dropped.
    _server: Spawned,
    pub address: String,
    pub port: u16,
    dir: PathBuf,
}

impl Smtp {
    /// In `lab`'s client namespace, on its public address, port 2525; the messages in
    /// `dir` (the lab's machines see this machine's files).
    pub fn in_client(lab: &Lab, dir: &Path) -> Smtp {
        let address = lab.address(Node::Client, Network::Public).expect("a client").to_string();
        std::fs::create_dir_all(dir).unwrap();
        let port = 2525u16;
        let command = [
            python(),
            "-c",
            SMTP_SERVER,
            address.as_str(),
            &port.to_string(),
            dir.to_str().unwrap(),
        ];
        let spawned = lab.spawn(Node::Client, &command).expect("starting aiosmtpd in the client");
        let ready = wait_for(Duration::from_secs(20), || {
            spawned.stdout().ok().filter(|out| out.contains("ready"))
        });
        assert!(ready.is_some(), "aiosmtpd did not start: {:?}", spawned.stderr());
        Smtp { _server: spawned, address, port, dir: dir.into() }
    }

    /// The messages received so far, in order.
    pub fn mails(&self) -> Vec<String> {
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

/// An HTTP receiver (tiny_http) on `listener` that takes every POST (200) and keeps its
/// body.
pub fn http_receiver(listener: TcpListener) -> Arc<Mutex<Vec<String>>> {
    let server = tiny_http::Server::from_listener(listener, None).expect("an HTTP server");
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            if *request.method() == tiny_http::Method::Post
                && request.as_reader().read_to_string(&mut body).is_ok()
            {
                kept.lock().unwrap().push(body);
            }
            let _ = request.respond(tiny_http::Response::empty(200));
        }
    });
    bodies
}
