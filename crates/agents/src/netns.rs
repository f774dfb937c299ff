//! Running work inside a named network namespace (`ip netns add NAME`, a file under
//! [`NETNS_DIR`]): the work runs on a dedicated thread that first enters the namespace
//! with `setns(2)`, so every socket it opens (netlink, `AF_PACKET`) belongs there,
//! while the rest of the process stays where it is. For tests and labs that keep
//! addresses inside a namespace they created; the daemon itself works in its own.
//!
//! It must never change the namespace of a thread it did not create.

use std::fs::File;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

/// Where iproute2 keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";
/// How long past the deadline the caller waits for the thread before giving up on it
/// (its sockets time out at the deadline themselves, so it ends soon after).
const JOIN_MARGIN: Duration = Duration::from_millis(500);

/// Why the work could not run or finish.
#[derive(Debug)]
pub(crate) enum Error {
    /// The namespace could not be opened or entered.
    Enter(String),
    /// The thread did not answer by the deadline (plus [`JOIN_MARGIN`]).
    Timeout,
}

/// Runs `work` on a new thread inside the namespace `name` and waits for its answer
/// until `deadline` (plus a small margin).
pub(crate) fn run_in<T, F>(name: &str, deadline: Instant, work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let path = std::path::Path::new(NETNS_DIR).join(name);
    let file = File::open(&path)
        .map_err(|e| Error::Enter(format!("network namespace {}: {e}", path.display())))?;
    let (sender, receiver) = mpsc::sync_channel(1);
    let spawned = thread::Builder::new().name("agent-netns".into()).spawn(move || {
        let answer = match setns(&file, CloneFlags::CLONE_NEWNET) {
            Ok(()) => Ok(work()),
            Err(e) => Err(Error::Enter(format!("cannot enter {}: {e}", path.display()))),
        };
        let _ = sender.send(answer);
    });
    if let Err(e) = spawned {
        return Err(Error::Enter(format!("cannot start a thread: {e}")));
    }
    let wait = deadline.saturating_duration_since(Instant::now()) + JOIN_MARGIN;
    receiver.recv_timeout(wait).unwrap_or(Err(Error::Timeout))
}
