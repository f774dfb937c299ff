//! The local control socket, `<runtime dir>/control.sock` (the runtime directory is
//! `/run/tandem` unless `tandem node --runtime-dir` names another): how `tandem status`,
//! `tandem switchover`, `drain`, `undrain`, `maintenance` and `clear` reach the daemon on
//! the same host until the HTTP API exists. One JSON request per line, one JSON answer
//! per line; see [`Request`].
//!
//! Who may call: the socket is 0600 (0660 with the admin group as its group) from its
//! creation ([`crate::access::bind`]), and every accepted connection's kernel
//! credentials are checked ([`crate::access::Access`]): root, the daemon's user, or a
//! member of the admin group; anyone else gets an E5104 answer and the connection is
//! closed. Each request goes to the loop with its [`Caller`], which the loop journals
//! (I5107) with every command it accepts.
//!
//! This module also renders the status document of PRODUCT.md section 5 (the same keys
//! `GET /v1/status` will serve) from the engine's [`engine::Status`], and the daemon's
//! own facts beside it (`receiving`: per UDP link, what was accepted and rejected).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use engine::{AdminCommand, ClusterSpec, Instant, Status};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::access::{self, Access, Caller};

/// The socket's file in the runtime directory.
pub const SOCKET_FILE: &str = "control.sock";

/// Longest request line accepted.
const REQUEST_BYTES_MAX: usize = 64 * 1024;

/// A request to the daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    Status,
    Switchover { group: String, to: Option<String> },
    Drain { node: String },
    Undrain { node: String },
    Maintenance { on: bool },
    Clear { group: String, resource: Option<String> },
}

/// The answer: `{"ok": true, "status": {...}}` for `status`, `{"ok": true}` for a
/// command taken, `{"ok": false, "error": "..."}`.
pub type Answer = Value;

/// A request waiting for the daemon's loop to answer it.
pub struct Call {
    pub request: Request,
    /// Who sent it (kernel credentials of the connection).
    pub caller: Caller,
    pub answer: oneshot::Sender<Answer>,
}

/// Serves `runtime_dir/control.sock` (the directory prepared by
/// [`access::prepare_runtime_dir`]), handing each permitted caller's requests to the
/// loop through `calls`.
pub fn serve(runtime_dir: &Path, access: Access, calls: mpsc::Sender<Call>) -> anyhow::Result<()> {
    let path = runtime_dir.join(SOCKET_FILE);
    let (mode, group) = match access.group() {
        Some(group) => (0o660, Some(group.gid)),
        None => (0o600, None),
    };
    let listener = access::bind(runtime_dir, SOCKET_FILE, mode, group)
        .and_then(|listener| {
            listener.set_nonblocking(true)?;
            UnixListener::from_std(listener)
        })
        .with_context(|| format!("binding {}", path.display()))?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (calls, access) = (calls.clone(), access.clone());
            tokio::spawn(async move {
                let _ = client(stream, access, calls).await;
            });
        }
    });
    Ok(())
}

/// One connection: its caller checked (the user database may block: not on the loop's
/// thread), then its requests, one line each.
async fn client(
    stream: UnixStream,
    access: Access,
    calls: mpsc::Sender<Call>,
) -> std::io::Result<()> {
    let peer = access::peer(&stream)?;
    let checked = tokio::task::spawn_blocking(move || access.check(peer))
        .await
        .unwrap_or_else(|e| Err(format!("{}: {e}", engine::catalogue::CONTROL_REFUSED.code)));
    let (read, mut write) = stream.into_split();
    let caller = match checked {
        Ok(caller) => caller,
        Err(refusal) => {
            tracing::warn!(code = engine::catalogue::CONTROL_REFUSED.code, "{refusal}");
            let answer = json!({"ok": false, "error": refusal});
            write.write_all(format!("{answer}\n").as_bytes()).await?;
            return Ok(());
        }
    };
    let mut lines = BufReader::new(read.take(REQUEST_BYTES_MAX as u64)).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = match serde_json::from_str::<Request>(&line) {
            Err(e) => json!({"ok": false, "error": format!("bad request: {e}")}),
            Ok(request) => {
                let (tx, rx) = oneshot::channel();
                let call = Call { request, caller: caller.clone(), answer: tx };
                if calls.send(call).await.is_err() {
                    json!({"ok": false, "error": "the daemon is stopping"})
                } else {
                    rx.await.unwrap_or_else(|_| json!({"ok": false, "error": "no answer"}))
                }
            }
        };
        let mut text = answer.to_string();
        text.push('\n');
        write.write_all(text.as_bytes()).await?;
    }
    Ok(())
}

/// The group a command is about, if any (for its journal entry).
pub fn group_of(command: &AdminCommand) -> Option<engine::GroupId> {
    match command {
        AdminCommand::Switchover { group, .. } | AdminCommand::Clear { group, .. } => Some(*group),
        AdminCommand::Drain(_) | AdminCommand::Undrain(_) | AdminCommand::Maintenance(_) => None,
    }
}

/// The journal's line for an accepted command (I5107): what it asks and who asked,
/// "switchover of group `db` to beta requested by alice (uid 1000, pid 4242)".
pub fn audit(call: &Call) -> String {
    format!("{} requested by {}", describe(&call.request), call.caller)
}

/// What a command request asks: "switchover of group `db` to beta".
pub fn describe(request: &Request) -> String {
    match request {
        Request::Status => "status".to_string(),
        Request::Switchover { group, to: Some(to) } => {
            format!("switchover of group `{group}` to {to}")
        }
        Request::Switchover { group, to: None } => format!("switchover of group `{group}`"),
        Request::Drain { node } => format!("drain of node {node}"),
        Request::Undrain { node } => format!("undrain of node {node}"),
        Request::Maintenance { on } => format!("maintenance {}", if *on { "on" } else { "off" }),
        Request::Clear { group, resource: Some(r) } => format!("clear of `{group}/{r}`"),
        Request::Clear { group, resource: None } => format!("clear of group `{group}`"),
    }
}

use tokio::io::AsyncReadExt as _;

/// The engine command a request stands for, or why it is refused.
pub fn command_of(spec: &ClusterSpec, request: &Request) -> Result<Option<AdminCommand>, String> {
    let node = |name: &str| {
        spec.node_id(name).ok_or_else(|| {
            let names: Vec<_> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
            format!("no node `{name}` in the cluster (nodes: {})", names.join(", "))
        })
    };
    let group = |name: &str| {
        spec.group_id(name).ok_or_else(|| {
            let names: Vec<_> = spec.groups.iter().map(|g| g.name.as_str()).collect();
            format!("no group `{name}` in the cluster (groups: {})", names.join(", "))
        })
    };
    Ok(Some(match request {
        Request::Status => return Ok(None),
        Request::Switchover { group: g, to } => {
            AdminCommand::Switchover { group: group(g)?, to: to.as_deref().map(node).transpose()? }
        }
        Request::Drain { node: n } => AdminCommand::Drain(node(n)?),
        Request::Undrain { node: n } => AdminCommand::Undrain(node(n)?),
        Request::Maintenance { on } => AdminCommand::Maintenance(*on),
        Request::Clear { group: g, resource } => {
            let id = group(g)?;
            let resource = match resource {
                None => None,
                Some(r) => {
                    let spec_g = spec.group(id);
                    let index = spec_g
                        .resources
                        .iter()
                        .position(|x| &x.name == r)
                        .ok_or_else(|| format!("group `{g}` has no resource `{r}`"))?;
                    Some(engine::ResourceId(index as u16))
                }
            };
            AdminCommand::Clear { group: id, resource }
        }
    }))
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

/// The status document of PRODUCT.md section 5.
/// `loss` gives, per link and peer, the loss only the daemon knows.
pub fn status_json(
    spec: &ClusterSpec,
    status: &Status,
    now: Instant,
    loss: impl Fn(engine::LinkId, engine::NodeId) -> Option<f64>,
) -> Value {
    let node = |n: engine::NodeId| spec.node(n).name.clone();
    let wall = |at: Instant| {
        let ago = now.saturating_since(at);
        let then = SystemTime::now().checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH);
        humantime::format_rfc3339_seconds(then).to_string()
    };
    json!({
        "cluster": spec.name,
        "reported_by": node(status.reported_by),
        "nodes": status.nodes.iter().map(|n| json!({
            "name": node(n.node),
            "state": n.state.as_str(),
        })).collect::<Vec<_>>(),
        "links": status.links.iter().map(|l| {
            let other = if l.nodes.0 == status.reported_by { l.nodes.1 } else { l.nodes.0 };
            json!({
                "link": spec.link(l.link).name,
                "nodes": [node(l.nodes.0), node(l.nodes.1)],
                "state": if l.up { "up" } else { "down" },
                "last_heard_ms": l.last_heard.map(|d| d.as_millis() as u64),
                "rtt_ms": l.rtt.map(ms),
                "loss_percent": loss(l.link, other),
            })
        }).collect::<Vec<_>>(),
        "groups": status.groups.iter().map(|g| {
            let gs = spec.group(g.group);
            json!({
                "name": gs.name,
                "state": g.state.as_str(),
                "owner": g.owner.map(node),
                "locked": g.locked,
                "lock_reason": g.lock_reason,
                "resources": g.resources.iter().map(|r| {
                    let rs = gs.resource(r.resource);
                    json!({
                        "name": rs.name,
                        "kind": rs.kind.as_str(),
                        "state": r.state.as_str(),
                        "fail_count": r.fail_count,
                    })
                }).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "leases": status.leases.iter().map(|l| json!({
            "group": spec.group(l.group).name,
            "holder": node(l.holder),
            "expires_in_ms": l.expires_in.map(|d| d.as_millis() as u64),
        })).collect::<Vec<_>>(),
        "faults": status.faults.iter().map(|f| json!({
            "code": f.code.code,
            "severity": f.code.severity.as_str(),
            "where": f.location,
            "since": wall(f.since),
        })).collect::<Vec<_>>(),
    })
}

/// What one UDP link's socket received (the daemon's own facts, beside the engine's
/// status): heartbeats accepted, packets rejected by reason and by source, the kernel's
/// drops for a full receive buffer, and a flood in progress.
pub fn receiving_json(spec: &ClusterSpec, udp: &crate::net::UdpLink, now: Instant) -> Value {
    let counters = udp.receiver.counters();
    let reasons: serde_json::Map<String, Value> = counters
        .by_reason()
        .filter(|(_, n)| *n > 0)
        .map(|(reason, n)| (reason.as_str().to_string(), json!(n)))
        .collect();
    let mut sources = udp.rejected_by.since(&crate::net::BySource::default());
    sources.sources.truncate(crate::net::SOURCES_KEPT);
    json!({
        "link": spec.link(udp.link).name,
        "accepted": counters.accepted,
        "rejected": counters.rejected_total(),
        "rejected_by_reason": reasons,
        "rejected_by_source": sources.sources.iter().map(|(source, n)| json!({
            "source": source.to_string(),
            "count": n,
        })).collect::<Vec<_>>(),
        "rejected_other_sources": sources.other,
        "kernel_drops": udp.kernel_drops,
        "receive_buffer_bytes": udp.receive_buffer,
        "flood": udp.flood.current().map(|(since, peak)| json!({
            "for_ms": now.saturating_since(since).as_millis() as u64,
            "peak_per_second": peak,
        })),
    })
}

/// The CLI's end: sends one request to the daemon whose runtime directory is
/// `runtime_dir`.
pub fn call(runtime_dir: &Path, request: &Request) -> anyhow::Result<Value> {
    use std::io::{BufRead, Write};
    let path: PathBuf = runtime_dir.join(SOCKET_FILE);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            anyhow::anyhow!(
                "{}: permission denied on {}: only root, the daemon's user and the node's \
                 admin group (`tandem node --admin-group`) may use it; run the command as \
                 root or as a member of that group",
                engine::catalogue::CONTROL_REFUSED.code,
                path.display()
            )
        } else {
            anyhow::anyhow!(
                "cannot reach the tandem daemon at {}: {e} (is `tandem node` running on this \
                 host, with this runtime directory? pass --runtime-dir if it has another)",
                path.display()
            )
        }
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    // A refused caller's connection may be closed before its request is written: the
    // refusal is still there to read.
    let sent = stream.write_all(line.as_bytes());
    let mut answer = String::new();
    let read = std::io::BufReader::new(stream).read_line(&mut answer);
    if answer.is_empty() {
        sent?;
        read?;
    }
    let value: Value = serde_json::from_str(&answer).context("the daemon's answer")?;
    if value["ok"] != Value::Bool(true) {
        anyhow::bail!("{}", value["error"].as_str().unwrap_or("the daemon refused the request"));
    }
    Ok(value)
}

impl<P: crate::platform::Platform> crate::node::Node<P> {
    /// A control call: the status is answered at once; an accepted command is journaled
    /// (I5107) and goes to the core, answered once what it caused is durable.
    pub(crate) fn on_call(&mut self, call: Call) {
        let answer = match command_of(&self.spec, &call.request) {
            Err(error) => serde_json::json!({"ok": false, "error": error}),
            Ok(None) => {
                let now = crate::platform::Clock::now(&self.clock);
                let status = self.core.engine().status(now);
                let loss = &self.loss;
                let lookup = |link: engine::LinkId, node: engine::NodeId| {
                    loss.get(&(link, node)).and_then(|c| c.loss_percent())
                };
                let mut document = status_json(&self.spec, &status, now, lookup);
                document["journal"] = self.journal.status();
                let receiving = crate::platform::Links::receiving(&mut self.links, &self.spec, now);
                document["receiving"] = serde_json::Value::Array(receiving);
                serde_json::json!({"ok": true, "status": document})
            }
            Ok(Some(command)) => {
                if self.core.shutdown_by().is_some() && !matches!(call.request, Request::Status) {
                    serde_json::json!({"ok": false, "error": "the daemon is shutting down"})
                } else {
                    let (group, audit) = (group_of(&command), audit(&call));
                    self.journal_own(&engine::catalogue::ADMIN_COMMAND, group, audit);
                    self.core.admin(command);
                    // Answered when what it causes is journaled (`settle`).
                    self.replies.push((call.answer, serde_json::json!({"ok": true})));
                    return;
                }
            }
        };
        let _ = call.answer.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_json_form() {
        let r: Request =
            serde_json::from_str(r#"{"command":"switchover","group":"db","to":null}"#).unwrap();
        assert_eq!(r, Request::Switchover { group: "db".into(), to: None });
        let text = serde_json::to_string(&Request::Maintenance { on: true }).unwrap();
        assert_eq!(text, r#"{"command":"maintenance","on":true}"#);
    }
}
