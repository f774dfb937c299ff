//! The `app` kind: the application reports its own liveness, and the resource is
//! running while heartbeats keep arriving within the configured `deadline`. It owns
//! one Unix datagram socket, `<log dir>/<instance>.notify` ([`Context::notify_socket`]),
//! that speaks the sd_notify protocol: each datagram is newline-separated `KEY=VALUE`
//! lines; `READY=1` or `WATCHDOG=1` is a heartbeat, `STATUS=...` is kept as the last
//! status text, every other key is ignored. The daemon passes the socket's path as
//! `NOTIFY_SOCKET` to what the group starts ([`Agent::notify_socket`]); heartbeats that
//! arrive through the HTTP API (`POST /v1/apps/{name}/heartbeat`) are handed over with
//! [`Agent::record_heartbeat`]. It must not start or stop the application itself (another
//! resource of the group does) and must not trust a datagram beyond its limits.
//!
//! **Operations.** Start binds the socket (replacing a stale one left by a predecessor)
//! and answers Ok; when the context names a socket owner ([`Context::socket_owner`], the
//! user the group's `process` runs as: [`crate::socket_user`]) the socket is then given
//! to that user with mode 0600, so that the application may send to it while other
//! users may not (the daemon, as root, may always); a failure to do so fails the start.
//! The directories above the socket must let that user through (the daemon's state
//! directory is world-searchable). stop closes and removes it and forgets every heartbeat. Monitor is
//! Ok when the last heartbeat, or the start (the application gets one `deadline` to send
//! its first heartbeat), is at most `deadline` old; otherwise NotRunning, with the last
//! STATUS text in [`Agent::detail`]. A new agent (after a daemon restart) has heard
//! nothing: its probe answers NotRunning until the engine starts it again.
//!
//! **Reading: a background thread**, not non-blocking reads at each monitor: datagrams
//! drained only when the engine monitors would all be stamped with the monitor's time,
//! so a heartbeat sent just before the application died would look fresh. The thread
//! blocks in `recv` with a [`RECV_TIMEOUT`] so that stop (or dropping the agent) ends it
//! within that time; it records arrival times in memory shared with the agent.
//!
//! Limits: a datagram longer than [`DATAGRAM_MAX_BYTES`] is dropped whole; the STATUS
//! text is cut to [`STATUS_MAX_BYTES`] (at a character boundary).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use engine::OpResult;

use crate::{Agent, Context};

/// The longest datagram taken; longer ones are dropped.
pub const DATAGRAM_MAX_BYTES: usize = 4096;
/// The longest STATUS text kept.
pub const STATUS_MAX_BYTES: usize = 256;
/// How long the reading thread blocks before looking whether it must end.
pub const RECV_TIMEOUT: Duration = Duration::from_millis(100);

/// What was heard, shared by the agent and its reading thread.
#[derive(Debug, Default)]
struct Heard {
    /// When the socket was bound by the last start; `None` while stopped.
    started: Option<Instant>,
    last_heartbeat: Option<Instant>,
    status: Option<String>,
}

struct Listener {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

pub struct AppAgent {
    deadline: Duration,
    socket: PathBuf,
    owner: Option<(u32, u32)>,
    heard: Arc<Mutex<Heard>>,
    listener: Mutex<Option<Listener>>,
    detail: Mutex<Option<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What one datagram says: whether it is a heartbeat, and its STATUS text if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub heartbeat: bool,
    pub status: Option<String>,
}

/// Parses one sd_notify datagram; `None` when it is longer than [`DATAGRAM_MAX_BYTES`].
pub fn parse(datagram: &[u8]) -> Option<Message> {
    if datagram.len() > DATAGRAM_MAX_BYTES {
        return None;
    }
    let text = String::from_utf8_lossy(datagram);
    let mut message = Message { heartbeat: false, status: None };
    for line in text.lines() {
        match line.split_once('=') {
            Some(("READY" | "WATCHDOG", "1")) => message.heartbeat = true,
            Some(("STATUS", status)) => message.status = Some(truncate(status).to_string()),
            _ => {}
        }
    }
    Some(message)
}

/// `text` cut to at most [`STATUS_MAX_BYTES`], at a character boundary.
fn truncate(text: &str) -> &str {
    let mut end = text.len().min(STATUS_MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl AppAgent {
    pub fn new(deadline: Duration, context: &Context) -> AppAgent {
        AppAgent {
            deadline,
            socket: context.notify_socket(),
            owner: context.socket_owner,
            heard: Arc::new(Mutex::new(Heard::default())),
            listener: Mutex::new(None),
            detail: Mutex::new(None),
        }
    }

    /// Ends the reading thread (within [`RECV_TIMEOUT`]) and removes the socket.
    fn close(&self, listener: &mut Option<Listener>) {
        if let Some(listener) = listener.take() {
            listener.stop.store(true, Ordering::Relaxed);
            let _ = listener.thread.join();
        }
        let _ = fs::remove_file(&self.socket);
    }
}

/// Makes `socket` belong to `uid`:`gid`, writable by that owner only.
fn give(socket: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(socket, Some(uid), Some(gid))?;
    fs::set_permissions(socket, fs::Permissions::from_mode(0o600))
}

/// The reading thread: records each datagram's heartbeat and status until `stop`.
fn listen(socket: UnixDatagram, heard: Arc<Mutex<Heard>>, stop: Arc<AtomicBool>) {
    // One byte more than the limit, so that a longer datagram shows as too long.
    let mut buffer = vec![0u8; DATAGRAM_MAX_BYTES + 1];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv(&mut buffer) {
            Ok(length) => {
                let Some(message) = parse(&buffer[..length]) else { continue };
                let mut heard = lock(&heard);
                if message.heartbeat {
                    heard.last_heartbeat = Some(Instant::now());
                }
                if message.status.is_some() {
                    heard.status = message.status;
                }
            }
            // A timeout (to look at `stop`) or an interrupted call; anything else
            // would repeat at once, so pause as long as a timeout would.
            Err(e) => {
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) {
                    thread::sleep(RECV_TIMEOUT);
                }
            }
        }
    }
}

impl Agent for AppAgent {
    fn start(&self, _timeout: Duration) -> OpResult {
        let mut listener = lock(&self.listener);
        if listener.as_ref().is_some_and(|l| !l.thread.is_finished()) {
            return OpResult::Ok;
        }
        self.close(&mut listener);
        if let Some(dir) = self.socket.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let socket = match UnixDatagram::bind(&self.socket) {
            Ok(socket) => socket,
            Err(e) => {
                return OpResult::Failed(format!(
                    "cannot bind the notify socket {}: {e}",
                    self.socket.display()
                ))
            }
        };
        if let Err(e) = socket.set_read_timeout(Some(RECV_TIMEOUT)) {
            let _ = fs::remove_file(&self.socket);
            return OpResult::Failed(format!("notify socket {}: {e}", self.socket.display()));
        }
        if let Some((uid, gid)) = self.owner {
            if let Err(e) = give(&self.socket, uid, gid) {
                let _ = fs::remove_file(&self.socket);
                return OpResult::Failed(format!(
                    "cannot give the notify socket {} to uid {uid} gid {gid}: {e}",
                    self.socket.display()
                ));
            }
        }
        lock(&self.heard).started = Some(Instant::now());
        let stop = Arc::new(AtomicBool::new(false));
        let heard = Arc::clone(&self.heard);
        let stop_flag = Arc::clone(&stop);
        let spawned = thread::Builder::new()
            .name("app-notify".into())
            .spawn(move || listen(socket, heard, stop_flag));
        match spawned {
            Ok(thread) => {
                *listener = Some(Listener { stop, thread });
                OpResult::Ok
            }
            Err(e) => {
                let _ = fs::remove_file(&self.socket);
                lock(&self.heard).started = None;
                OpResult::Failed(format!("cannot start the notify reader: {e}"))
            }
        }
    }

    fn stop(&self, _timeout: Duration) -> OpResult {
        self.close(&mut lock(&self.listener));
        *lock(&self.heard) = Heard::default();
        OpResult::Ok
    }

    fn monitor(&self, _timeout: Duration) -> OpResult {
        let heard = lock(&self.heard);
        let since = heard.last_heartbeat.max(heard.started);
        let (answer, detail) = match since {
            None => (OpResult::NotRunning, Some("not started: no heartbeat heard".to_string())),
            Some(since) if since.elapsed() <= self.deadline => (OpResult::Ok, None),
            Some(since) => {
                let what = match heard.last_heartbeat {
                    Some(_) => "no heartbeat",
                    None => "no heartbeat since the start",
                };
                let mut detail = format!(
                    "{what} for {} ms (deadline {} ms)",
                    since.elapsed().as_millis(),
                    self.deadline.as_millis()
                );
                if let Some(status) = &heard.status {
                    detail.push_str(&format!("; last status: {status}"));
                }
                (OpResult::NotRunning, Some(detail))
            }
        };
        *lock(&self.detail) = detail;
        answer
    }

    fn detail(&self) -> Option<String> {
        lock(&self.detail).clone()
    }

    fn notify_socket(&self) -> Option<PathBuf> {
        Some(self.socket.clone())
    }

    fn record_heartbeat(&self, status: Option<&str>) -> bool {
        let mut heard = lock(&self.heard);
        heard.last_heartbeat = Some(Instant::now());
        if let Some(status) = status {
            heard.status = Some(truncate(status).to_string());
        }
        true
    }
}

impl Drop for AppAgent {
    fn drop(&mut self) {
        let mut listener = lock(&self.listener);
        if listener.is_some() {
            self.close(&mut listener);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_status_and_unknown_keys() {
        let message = parse(b"READY=1\nSTATUS=warming up\nMAINPID=12\n").unwrap();
        assert_eq!(message, Message { heartbeat: true, status: Some("warming up".into()) });
        assert!(parse(b"WATCHDOG=1").unwrap().heartbeat);
        let message = parse(b"READY=0\nSTATUS=x\nERRNO=2").unwrap();
        assert_eq!(message, Message { heartbeat: false, status: Some("x".into()) });
        assert_eq!(parse(b"garbage\xff").unwrap(), Message { heartbeat: false, status: None });
    }

    #[test]
    fn limits_are_kept() {
        assert!(parse(&vec![b'A'; DATAGRAM_MAX_BYTES + 1]).is_none());
        let mut datagram = b"READY=1\nSTATUS=".to_vec();
        datagram.resize(DATAGRAM_MAX_BYTES, b'a');
        let message = parse(&datagram).unwrap();
        assert!(message.heartbeat);
        assert_eq!(message.status.unwrap().len(), STATUS_MAX_BYTES);
        // 'é' is two bytes: 256 bytes would cut one in half.
        let status = format!("a{}", "é".repeat(200));
        assert_eq!(truncate(&status).len(), STATUS_MAX_BYTES - 1);
    }
}
