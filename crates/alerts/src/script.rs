//! The script: run once per event of a message (the summary: once, for the most severe
//! held event), because that is how Pacemaker runs an alert agent, so that a Pacemaker
//! alert script runs unchanged. The event is in `TANDEM_EVENT_*` variables and in
//! Pacemaker's `CRM_alert_*` names; the script has [`SCRIPT_TIMEOUT`] per run, its
//! output is logged, and a run that fails, is killed or cannot start fails the message
//! (not retried: a script may have done half of its work).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::message::{Counted, Kind, Message};

/// One run may take this long; then it is killed (the child we started, by its pid).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Output kept for the log, per stream.
const OUTPUT_KEPT: usize = 4096;

/// Pacemaker's `CRM_alert_node_sequence`: grows with every run on this node.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Script {
    pub(crate) path: PathBuf,
}

impl Script {
    /// Runs the script for each event of `message`; the first failure stops the rest.
    pub(crate) fn send(&self, message: &Message) -> Result<(), (String, bool)> {
        let runs: Vec<&Counted> = match message.kind {
            Kind::Events => message.events.iter().collect(),
            Kind::Summary => vec![message.headline()],
        };
        for counted in runs {
            let env = environment(message, counted);
            self.run(&env).map_err(|why| (why, false))?;
        }
        Ok(())
    }

    fn run(&self, env: &[(String, String)]) -> Result<(), String> {
        let mut child = Command::new(&self.path)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.path.display()))?;
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        let status = wait(&mut child, SCRIPT_TIMEOUT);
        let out = out.join().unwrap_or_default();
        let err = err.join().unwrap_or_default();
        let script = self.path.display();
        if !out.trim().is_empty() || !err.trim().is_empty() {
            tracing::info!(
                "alert script {script}: stdout: {} stderr: {}",
                out.trim_end(),
                err.trim_end()
            );
        }
        match status {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(format!("{script} {status}: {}", err.trim_end())),
            None => Err(format!("{script} ran past {}s and was killed", SCRIPT_TIMEOUT.as_secs())),
        }
    }
}

/// Reads a stream to its end on a thread of its own, keeping the first
/// [`OUTPUT_KEPT`] bytes (reading on, so that the script never blocks on a full pipe).
fn reader<R: Read + Send + 'static>(stream: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let Some(mut stream) = stream else { return String::new() };
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = OUTPUT_KEPT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// Waits up to `limit` for `child`; kills it past that (`None`).
fn wait(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// The variables of one run: tandem's own names, then Pacemaker's.
fn environment(message: &Message, counted: &Counted) -> Vec<(String, String)> {
    let e = &counted.event;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let kind = match message.kind {
        Kind::Events => "events",
        Kind::Summary => "summary",
    };
    let count = match message.kind {
        Kind::Events => u64::from(counted.count),
        Kind::Summary => message.suppressed_total(),
    };
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed) + 1;
    let pacemaker_kind = if e.resource.is_some() { "resource" } else { "node" };
    let mut env = vec![
        ("TANDEM_ALERT_KIND", kind.to_string()),
        ("TANDEM_ALERT_SUMMARY", message.summary()),
        ("TANDEM_ALERT_EVENTS", message.events.len().to_string()),
        ("TANDEM_ALERT_SUPPRESSED", message.suppressed_total().to_string()),
        ("TANDEM_EVENT_TIME", e.time.clone()),
        ("TANDEM_EVENT_CODE", e.code.clone()),
        ("TANDEM_EVENT_SEVERITY", e.severity.as_str().to_string()),
        ("TANDEM_EVENT_NODE", e.node.clone()),
        ("TANDEM_EVENT_GROUP", opt(&e.group)),
        ("TANDEM_EVENT_RESOURCE", opt(&e.resource)),
        ("TANDEM_EVENT_LOCATION", opt(&e.location)),
        ("TANDEM_EVENT_MESSAGE", e.message.clone()),
        ("TANDEM_EVENT_COUNT", count.to_string()),
        ("CRM_alert_kind", pacemaker_kind.to_string()),
        ("CRM_alert_version", concat!("tandem ", env!("CARGO_PKG_VERSION")).to_string()),
        ("CRM_alert_recipient", String::new()),
        ("CRM_alert_node_sequence", sequence.to_string()),
        ("CRM_alert_timestamp", e.time.clone()),
        ("CRM_alert_node", e.node.clone()),
        ("CRM_alert_desc", format!("{} {}", e.code, e.message)),
    ];
    if let Some(resource) = &e.resource {
        env.push(("CRM_alert_rsc", resource.clone()));
    }
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
