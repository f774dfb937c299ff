//! `tandem events --follow --bell`: a BEL for every new warning or error (the sound
//! alarm of a terminal). Alerts that leave the machine are tested in the lab
//! (`tests/lab_ops.rs`: a host crash is one e-mail and one webhook call) and in
//! `crates/alerts` (delivery, STARTTLS and AUTH, the policy).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

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
