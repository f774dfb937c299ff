//! Alerts that leave the machine: each `[[alert]]` of the configuration is a target
//! (e-mail over SMTP, a webhook, a script) with its own [`policy::Policy`] (minimum
//! severity, coalescing, de-duplication, rate limit, storm summary).
//!
//! The node's loop hands every journaled event to [`Alerts::offer`]: one `try_send` on
//! a bounded queue, so the loop never waits for a delivery; a full queue drops and
//! counts, and the count is reported once as W6102. A thread runs the policies (the
//! only place that reads the clock for them) and hands each message to the target's own
//! delivery thread, so a slow relay delays nobody else. A delivery that fails after its
//! retries becomes a W6101 event: it comes back on the receiver [`start`] returns, for
//! the daemon to journal, and goes to the other targets, never to the one that failed;
//! and a message made only of such warnings is not reported again when it fails in turn,
//! so two broken targets cannot keep each other busy.

mod email;
pub mod message;
pub mod policy;
mod script;
mod service;
mod tls;
mod webhook;

use engine::catalogue::{CodeInfo, Severity};
use serde::{Serialize, Serializer};

pub use message::{Counted, Kind, Message};
pub use service::{start, Alerts};

/// An event as the journal has it (names, not ids), ready to leave the machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Wall-clock time, RFC 3339, UTC.
    pub time: String,
    pub code: String,
    #[serde(serialize_with = "severity_str")]
    pub severity: Severity,
    pub node: String,
    pub group: Option<String>,
    pub resource: Option<String>,
    /// Where it happened ("link private to beta", "node alpha").
    pub location: Option<String>,
    pub message: String,
}

fn severity_str<S: Serializer>(severity: &Severity, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(severity.as_str())
}

/// Why the alerts could not start: a target's file is unusable (E6001).
#[derive(Debug)]
pub struct StartError {
    pub code: &'static CodeInfo,
    pub message: String,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.code, self.message)
    }
}

impl std::error::Error for StartError {}

/// Now, RFC 3339 UTC to the second (the time of the events this crate makes).
pub(crate) fn wall_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
