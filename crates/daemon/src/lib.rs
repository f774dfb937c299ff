//! tandem's node daemon (`tandem node`): the I/O shell around one [`engine::Engine`].
//! It decides nothing about the cluster itself; it carries out what the engine asks and
//! tells it what happened:
//! - `node`: the loop, a thin shell around `nodecore::NodeCore` (the engine and every
//!   rule between it and the sockets): it hands the core what came and carries out
//!   what the core asks, generic over its platform;
//! - `platform`: the loop's platform boundaries, one small trait per concern (heartbeat
//!   links, the disk worker, the fence guard, agents, the standby lock, the loop's
//!   timer, stop requests and the watchdog, the clock), bundled as `Platform`; another
//!   platform (Windows Server next) implements them, not a second loop; a test runs the
//!   loop over an in-memory one;
//! - `linux`: Linux's implementation, wiring up the modules below;
//! - `start`: `tandem node`'s start: checks, then every part opened in order, the
//!   Linux platform built and the loop run over it;
//! - `net`: heartbeats over UDP on every `udp` link (frames of the `wire` crate);
//! - `loss`: per link and peer, the heartbeats lost (gaps in sequence numbers);
//! - `diskio`: the disk link's worker thread, which performs the loop's disk jobs
//!   within the I/O timeout;
//! - `exit`: how the daemon ends: clean stop, self-fence, restart in place after a stall;
//! - `executor`: agent operations on the blocking pool, with timeouts;
//! - `guard`: the fence guard process that outlives the daemon;
//! - `journal`: events, incarnation and administrative state under the state dir,
//!   written and synced by a thread of their own;
//! - `seen`: each peer's newest incarnation and sequence, kept across restarts (replays);
//! - `control`: the local control socket for the CLI, and the status document;
//! - `configstore`: the configuration's generations in the state directory, and their
//!   push to every node in two phases (checked on every node, then applied);
//! - `api`: the HTTPS API (axum, rustls) with its users, roles and limits, on a thread
//!   of its own, reaching the loop through the control socket's bounded channel;
//! - `access`: who may reach the node locally: the runtime directory, its sockets'
//!   modes, callers' credentials, the guard's token, the key file and state dir rules;
//! - `alarm`: the loop's timer (a timerfd at the next deadline);
//! - `alerting`: the `[[alert]]` threads (crate `alerts`): every journaled event is
//!   offered to them, never waited for; their delivery failures are journaled (W6101);
//! - `clock`: the engine's instants on `CLOCK_MONOTONIC`, wall time for the journal;
//! - `inventory`: what this host has to choose from (interfaces, block devices, OCF
//!   agents, systemd units, LSB scripts), each part bounded in time;
//! - `stall`: a test hook that slows named blocking points (`TANDEM_TEST_STALL`).
//!
//! It must not make placement, lease or failure decisions (those are the engine's), nor
//! change the host except through agents (and the `lock_standby` read-only flag).

pub mod access;
pub mod alarm;
pub(crate) mod alerting;
pub mod api;
pub mod clock;
pub mod configedit;
pub mod configstore;
pub(crate) mod configsync;
pub mod control;
pub mod diskio;
pub mod executor;
pub mod exit;
pub mod guard;
pub mod inventory;
pub mod journal;
pub mod linux;
pub mod loss;
pub mod metrics;
pub mod net;
pub mod node;
pub mod platform;
pub mod seen;
pub mod stall;
pub mod start;

pub use start::{run, Options};

/// Sets up `tracing`: human-readable (coloured on a terminal) or one JSON object per
/// line. `RUST_LOG` overrides the level (default `info`).
pub fn init_logging(json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.with_ansi(std::io::stderr().is_terminal()).try_init();
    }
}
