//! What this node last accepted from each peer (its incarnation and the newest sequence),
//! kept in `<state dir>/peers-seen.json`, so that heartbeats captured before a restart of
//! this daemon stay refused after it: every link's `wire::Receiver` is seeded with it
//! ([`load`]), and frames of an older incarnation, or of the same one up to the kept
//! sequence, are replays. Without it a restarted daemon would take a dead peer's
//! captured frames for a live peer.
//!
//! The file is written off the loop thread: [`Seen::note`] (on the loop, for every
//! accepted heartbeat) only compares numbers, and hands a snapshot to a writer thread
//! (a mutex and a condition variable; the writer keeps only the newest snapshot) when a
//! peer's new incarnation is first seen, or at most every [`SAVE_EVERY`] while its
//! sequence advances ([`Seen::flush`] at every wake-up makes sure the newest is kept
//! within that time). The writer writes atomically (temporary file, fsync, rename,
//! fsync of the directory). What can still be replayed after a restart is what was
//! accepted in the last [`SAVE_EVERY`] before it: at most a second of the peer's frames.
//!
//! It owns the file's format; it must not block the loop (no I/O on the caller's thread
//! except [`load`] at start).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use engine::{ClusterSpec, NodeId};
use serde::{Deserialize, Serialize};

/// The file in the state directory.
pub const FILE: &str = "peers-seen.json";

/// How often at most an advancing sequence is saved.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// One peer's newest accepted incarnation and sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Newest {
    pub incarnation: u64,
    pub sequence: u64,
}

#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct SeenFile {
    /// By node name (ids are indexes in the configuration, names survive its edits).
    peers: BTreeMap<String, Newest>,
}

/// Reads what an earlier run saw. A missing file is an empty one; an unreadable or
/// damaged one is an error (the caller refuses to start rather than accept replays).
pub fn load(state_dir: &Path, spec: &ClusterSpec) -> std::io::Result<BTreeMap<NodeId, Newest>> {
    let text = match std::fs::read(state_dir.join(FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let file: SeenFile = serde_json::from_slice(&text).map_err(std::io::Error::other)?;
    Ok(file
        .peers
        .into_iter()
        .filter_map(|(name, newest)| Some((spec.node_id(&name)?, newest)))
        .collect())
}

/// What the writer thread shares with the loop.
#[derive(Default)]
struct Shared {
    /// The newest snapshot not written yet.
    pending: Option<Vec<u8>>,
    /// The last write failed with this (cleared by a success).
    failed: Option<String>,
    stop: bool,
}

/// The loop's end: the newest of every peer, and when it was last handed to the writer.
pub struct Seen {
    names: Vec<String>,
    newest: Vec<Newest>,
    /// As last handed to the writer.
    saved: Vec<Newest>,
    saved_at: Option<Instant>,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Seen {
    /// Starts the writer thread for `state_dir`, knowing `loaded`.
    pub fn start(
        state_dir: &Path,
        spec: &ClusterSpec,
        loaded: &BTreeMap<NodeId, Newest>,
    ) -> std::io::Result<Seen> {
        let names: Vec<String> = spec.nodes.iter().map(|n| n.name.clone()).collect();
        let mut newest = vec![Newest::default(); names.len()];
        for (node, n) in loaded {
            newest[usize::from(node.0)] = *n;
        }
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let path = state_dir.join(FILE);
        let for_writer = shared.clone();
        let writer = std::thread::Builder::new()
            .name("peers-seen".into())
            .spawn(move || write_loop(&path, &for_writer))?;
        Ok(Seen {
            names,
            saved: newest.clone(),
            newest,
            saved_at: None,
            shared,
            writer: Some(writer),
        })
    }

    /// An accepted heartbeat of `from`: kept at once if its incarnation is new, else
    /// within [`SAVE_EVERY`].
    pub fn note(&mut self, from: NodeId, incarnation: u64, sequence: u64, now: Instant) {
        let Some(newest) = self.newest.get_mut(usize::from(from.0)) else { return };
        let seen = Newest { incarnation, sequence };
        if seen <= *newest {
            return;
        }
        *newest = seen;
        if incarnation > self.saved[usize::from(from.0)].incarnation {
            self.save(now);
        } else {
            self.flush(now);
        }
    }

    /// Hands the newest state to the writer if it changed and [`SAVE_EVERY`] passed.
    pub fn flush(&mut self, now: Instant) {
        let due = self.saved_at.is_none_or(|at| now.duration_since(at) >= SAVE_EVERY);
        if due && self.newest != self.saved {
            self.save(now);
        }
    }

    /// Why the last write failed, once per failure (the caller journals it).
    pub fn take_failure(&mut self) -> Option<String> {
        self.shared.0.lock().ok()?.failed.take()
    }

    fn save(&mut self, now: Instant) {
        let file = SeenFile {
            peers: self
                .names
                .iter()
                .zip(&self.newest)
                .filter(|(_, n)| **n != Newest::default())
                .map(|(name, n)| (name.clone(), *n))
                .collect(),
        };
        let Ok(bytes) = serde_json::to_vec_pretty(&file) else { return };
        self.saved.clone_from(&self.newest);
        self.saved_at = Some(now);
        let (lock, wake) = &*self.shared;
        if let Ok(mut shared) = lock.lock() {
            shared.pending = Some(bytes);
            wake.notify_one();
        }
    }
}

impl Drop for Seen {
    /// Writes what is pending, then ends the writer.
    fn drop(&mut self) {
        self.save(Instant::now());
        if let Ok(mut shared) = self.shared.0.lock() {
            shared.stop = true;
            self.shared.1.notify_one();
        }
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn write_loop(path: &Path, shared: &(Mutex<Shared>, Condvar)) {
    let (lock, wake) = shared;
    loop {
        let bytes = {
            let Ok(mut guard) = lock.lock() else { return };
            while guard.pending.is_none() && !guard.stop {
                guard = match wake.wait(guard) {
                    Ok(guard) => guard,
                    Err(_) => return,
                };
            }
            match guard.pending.take() {
                Some(bytes) => bytes,
                None => return, // stopped with nothing pending
            }
        };
        let result = crate::journal::write_atomic(path, &bytes);
        if let Ok(mut guard) = lock.lock() {
            guard.failed = result.err().map(|e| format!("{}: {e}", path.display()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ClusterSpec {
        crate::net::tests::two_nodes("seen", [1, 2]).cluster
    }

    fn written(dir: &Path) -> BTreeMap<NodeId, Newest> {
        load(dir, &spec()).unwrap()
    }

    fn wait_for(dir: &Path, want: &BTreeMap<NodeId, Newest>) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while written(dir) != *want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(written(dir), *want);
    }

    #[test]
    fn a_new_incarnation_is_kept_at_once_a_sequence_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        assert!(written(dir.path()).is_empty());
        let spec = spec();
        let mut seen = Seen::start(dir.path(), &spec, &BTreeMap::new()).unwrap();
        let t0 = Instant::now();
        let beta = NodeId(1);
        let newest =
            |incarnation, sequence| BTreeMap::from([(beta, Newest { incarnation, sequence })]);
        seen.note(beta, 7, 1, t0);
        wait_for(dir.path(), &newest(7, 1));
        // Sequences within the second wait; older news changes nothing.
        seen.note(beta, 7, 2, t0 + Duration::from_millis(100));
        seen.note(beta, 6, 99, t0 + Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(written(dir.path()), newest(7, 1));
        seen.flush(t0 + Duration::from_millis(500));
        assert_eq!(written(dir.path()), newest(7, 1));
        seen.flush(t0 + SAVE_EVERY);
        wait_for(dir.path(), &newest(7, 2));
        // A new incarnation does not wait.
        seen.note(beta, 8, 1, t0 + SAVE_EVERY + Duration::from_millis(10));
        wait_for(dir.path(), &newest(8, 1));
        // Dropping writes the newest.
        seen.note(beta, 8, 5, t0 + SAVE_EVERY + Duration::from_millis(20));
        drop(seen);
        assert_eq!(written(dir.path()), newest(8, 5));
        // And a new run starts from it.
        let again = Seen::start(dir.path(), &spec, &written(dir.path())).unwrap();
        assert_eq!(again.newest[1], Newest { incarnation: 8, sequence: 5 });
    }

    fn heartbeat(incarnation: u64, sequence: u64) -> engine::Heartbeat {
        engine::Heartbeat {
            from: NodeId(1),
            incarnation,
            sequence,
            sent_at: engine::Instant(0),
            echo: None,
            report: std::sync::Arc::new(engine::NodeReport {
                state: engine::NodeState::Standby,
                storage_ok: true,
                groups: Vec::new(),
                links_up: Vec::new(),
                admin: engine::AdminState::default(),
            }),
        }
    }

    /// A receiving daemon as `start` (`Node::start`) builds it: its link's receiver seeded
    /// from the state directory.
    fn reopen(dir: &Path, key: &wire::Key, route: wire::Route) -> (wire::Receiver, Seen) {
        let spec = spec();
        let loaded = load(dir, &spec).unwrap();
        let mut receiver =
            wire::Receiver::new(key.clone(), wire::ClusterId::from_name("seen"), route);
        for (node, n) in &loaded {
            receiver.remember(*node, n.incarnation, n.sequence);
        }
        (receiver, Seen::start(dir, &spec, &loaded).unwrap())
    }

    #[test]
    fn frames_captured_before_a_restart_are_refused_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = wire::Key::new([9; 32]);
        let route = wire::Route { link: engine::LinkId(0), to: Some(NodeId(0)) };
        let cluster = wire::ClusterId::from_name("seen");
        let frame = |inc, seq| wire::encode(&key, cluster, route, &heartbeat(inc, seq)).unwrap();
        // The peer's previous run (incarnation 5) and its current one (6), 30 frames
        // 100 ms apart, all captured by an attacker.
        let captured: Vec<Vec<u8>> =
            (1..=3).map(|s| frame(5, s)).chain((1..=30).map(|s| frame(6, s))).collect();
        let (mut receiver, mut seen) = reopen(dir.path(), &key, route);
        let t0 = Instant::now();
        for (i, bytes) in captured.iter().enumerate() {
            let beat = receiver.receive(bytes).unwrap();
            seen.note(
                beat.from,
                beat.incarnation,
                beat.sequence,
                t0 + Duration::from_millis(100) * i as u32,
            );
        }
        // Killed (no clean stop): the file holds what was handed over at most a second
        // before the last frame (at 2.3 s: sequence 21), once the writer has written it.
        let kept = Newest { incarnation: 6, sequence: 21 };
        wait_for(dir.path(), &BTreeMap::from([(NodeId(1), kept)]));
        std::mem::forget(seen);
        let (mut receiver, _seen) = reopen(dir.path(), &key, route);
        // The peer is dead; the attacker replays everything it captured: what the
        // restarted daemon had seen more than a second before it stopped is refused.
        let accepted: Vec<u64> = captured
            .iter()
            .filter_map(|bytes| receiver.receive(bytes).ok())
            .map(|b| b.sequence)
            .collect();
        assert!(accepted.iter().all(|&s| s > 20), "{accepted:?}");
        assert!(accepted.len() <= 10, "{accepted:?}");
        assert_eq!(receiver.counters().rejected(wire::Reject::StaleIncarnation), 3);
        // A clean stop keeps everything: nothing is accepted again.
        let dir = tempfile::tempdir().unwrap();
        let (mut receiver, mut seen) = reopen(dir.path(), &key, route);
        for bytes in &captured {
            let beat = receiver.receive(bytes).unwrap();
            seen.note(beat.from, beat.incarnation, beat.sequence, t0);
        }
        drop(seen);
        let (mut receiver, _seen) = reopen(dir.path(), &key, route);
        assert!(captured.iter().all(|bytes| receiver.receive(bytes).is_err()));
        // The peer's next frame is fine.
        assert!(receiver.receive(&frame(6, 31)).is_ok());
    }

    #[test]
    fn a_damaged_file_is_an_error_and_a_failed_write_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{ not json").unwrap();
        assert!(load(dir.path(), &spec()).is_err());
        // The directory gone: the write fails and says so, once.
        let gone = dir.path().join("gone");
        std::fs::create_dir(&gone).unwrap();
        let mut seen = Seen::start(&gone, &spec(), &BTreeMap::new()).unwrap();
        std::fs::remove_dir(&gone).unwrap();
        seen.note(NodeId(1), 1, 1, Instant::now());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut failure = None;
        while failure.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            failure = seen.take_failure();
        }
        assert!(failure.is_some_and(|f| f.contains(FILE)));
        assert_eq!(seen.take_failure(), None);
    }
}
