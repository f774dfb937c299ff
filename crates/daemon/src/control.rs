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
//! The requests and answers are the `contract` crate's ([`Request`], [`Answer`]). This
//! module also renders the status document of PRODUCT.md section 5 ([`contract::Status`],
//! the same document `GET /v1/status` serves) from the engine's [`engine::Status`], and
//! the daemon's own facts beside it (`receiving`: per UDP link, what was accepted and
//! rejected; `journal`: the journal writer's state).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use engine::{AdminCommand, ClusterSpec, Instant, Status};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::access::{self, Access, Caller};

/// The socket's file in the runtime directory.
pub const SOCKET_FILE: &str = "control.sock";

/// Longest request line accepted: a configuration push carries a whole configuration
/// file (up to 16 MiB, JSON-escaped), the largest request there is; the socket serves
/// only the node's administrators (checked per connection), who may push that anyway.
const REQUEST_BYTES_MAX: usize = crate::configstore::sync::BODY_BYTES_MAX;

/// A request to the daemon, and its answer: `{"ok": true, "status": {...}}` for
/// `status`, `{"ok": true}` for a command taken, `{"ok": false, "error": "..."}`.
pub use contract::{Answer, Request};

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
            let answer = line_of(&Answer::refused(refusal));
            write.write_all(answer.as_bytes()).await?;
            return Ok(());
        }
    };
    let mut lines = BufReader::new(read.take(REQUEST_BYTES_MAX as u64)).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = match serde_json::from_str::<Request>(&line) {
            Err(e) => Answer::refused(format!("bad request: {e}")),
            Ok(request) => {
                let (tx, rx) = oneshot::channel();
                let call = Call { request, caller: caller.clone(), answer: tx };
                if calls.send(call).await.is_err() {
                    Answer::refused("the daemon is stopping")
                } else {
                    rx.await.unwrap_or_else(|_| Answer::refused("no answer"))
                }
            }
        };
        write.write_all(line_of(&answer).as_bytes()).await?;
    }
    Ok(())
}

/// An answer as its line on the socket.
fn line_of(answer: &Answer) -> String {
    let mut text = serde_json::to_string(answer).unwrap_or_else(|e| {
        serde_json::to_string(&Answer::refused(format!("cannot render the answer: {e}")))
            .unwrap_or_default()
    });
    text.push('\n');
    text
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
        Request::ConfigShow => "configuration".to_string(),
        Request::ConfigHistory => "configuration history".to_string(),
        Request::ConfigGet { generation } => format!("configuration generation {generation}"),
        Request::ConfigCheck { .. } => "configuration check".to_string(),
        Request::ConfigPush { generation, .. } => {
            format!("configuration push based on generation {generation}")
        }
        Request::ConfigApplied { generation, .. } => {
            format!("configuration generation {generation} applied")
        }
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
        // Configuration requests go to `configstore`, not to the engine.
        Request::Status
        | Request::ConfigShow
        | Request::ConfigHistory
        | Request::ConfigGet { .. }
        | Request::ConfigCheck { .. }
        | Request::ConfigPush { .. }
        | Request::ConfigApplied { .. } => return Ok(None),
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

fn node_state(state: engine::NodeState) -> contract::NodeState {
    use contract::NodeState as C;
    use engine::NodeState as E;
    match state {
        E::Booting => C::Booting,
        E::Working => C::Working,
        E::Standby => C::Standby,
        E::Offline => C::Offline,
        E::Maintenance => C::Maintenance,
        E::Drained => C::Drained,
    }
}

fn group_state(state: engine::GroupState) -> contract::GroupState {
    use contract::GroupState as C;
    use engine::GroupState as E;
    match state {
        E::Stopped => C::Stopped,
        E::Starting => C::Starting,
        E::Running => C::Running,
        E::Stopping => C::Stopping,
        E::Failed => C::Failed,
    }
}

fn resource_state(state: engine::ResourceState) -> contract::ResourceState {
    use contract::ResourceState as C;
    use engine::ResourceState as E;
    match state {
        E::Stopped => C::Stopped,
        E::Starting => C::Starting,
        E::Running => C::Running,
        E::Stopping => C::Stopping,
        E::Failed => C::Failed,
    }
}

fn resource_kind(kind: engine::ResourceKind) -> contract::ResourceKind {
    use contract::ResourceKind as C;
    use engine::ResourceKind as E;
    match kind {
        E::Filesystem => C::Filesystem,
        E::Ip => C::Ip,
        E::Nic => C::Nic,
        E::Process => C::Process,
        E::Script => C::Script,
        E::Lsb => C::Lsb,
        E::Systemd => C::Systemd,
        E::Ocf => C::Ocf,
        E::App => C::App,
    }
}

/// The contract's severity of a catalogue code's.
pub fn severity(severity: engine::catalogue::Severity) -> contract::Severity {
    use contract::Severity as C;
    use engine::catalogue::Severity as E;
    match severity {
        E::Info => C::Info,
        E::Warning => C::Warning,
        E::Error => C::Error,
    }
}

/// The status document of PRODUCT.md section 5, from the engine's `status`;
/// `loss` gives, per link and peer, the loss only the daemon knows, and `journal` and
/// `receiving` are the daemon's own parts.
pub fn status_document(
    spec: &ClusterSpec,
    status: &Status,
    now: Instant,
    loss: impl Fn(engine::LinkId, engine::NodeId) -> Option<f64>,
    journal: contract::JournalState,
    receiving: Vec<contract::Receiving>,
) -> contract::Status {
    let node = |n: engine::NodeId| spec.node(n).name.clone();
    let wall = |at: Instant| {
        let ago = now.saturating_since(at);
        let then = SystemTime::now().checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH);
        humantime::format_rfc3339_seconds(then).to_string()
    };
    let nodes = status
        .nodes
        .iter()
        .map(|n| contract::NodeEntry { name: node(n.node), state: node_state(n.state), api: None })
        .collect();
    let links = status
        .links
        .iter()
        .map(|l| {
            let other = if l.nodes.0 == status.reported_by { l.nodes.1 } else { l.nodes.0 };
            contract::LinkEntry {
                link: spec.link(l.link).name.clone(),
                nodes: [node(l.nodes.0), node(l.nodes.1)],
                state: if l.up { contract::LinkState::Up } else { contract::LinkState::Down },
                last_heard_ms: l.last_heard.map(|d| d.as_millis() as u64),
                rtt_ms: l.rtt.map(ms),
                loss_percent: loss(l.link, other),
            }
        })
        .collect();
    let groups = status
        .groups
        .iter()
        .map(|g| {
            let gs = spec.group(g.group);
            let resources = g
                .resources
                .iter()
                .map(|r| {
                    let rs = gs.resource(r.resource);
                    contract::ResourceEntry {
                        name: rs.name.clone(),
                        kind: resource_kind(rs.kind),
                        state: resource_state(r.state),
                        fail_count: r.fail_count,
                    }
                })
                .collect();
            contract::GroupEntry {
                name: gs.name.clone(),
                state: group_state(g.state),
                owner: g.owner.map(node),
                locked: g.locked,
                lock_reason: g.lock_reason.clone(),
                resources,
            }
        })
        .collect();
    let leases = status
        .leases
        .iter()
        .map(|l| contract::LeaseEntry {
            group: spec.group(l.group).name.clone(),
            holder: node(l.holder),
            expires_in_ms: l.expires_in.map(|d| d.as_millis() as u64),
        })
        .collect();
    let faults = status
        .faults
        .iter()
        .map(|f| contract::FaultEntry {
            code: f.code.code.to_string(),
            severity: severity(f.code.severity),
            location: f.location.clone(),
            since: wall(f.since),
            seen_by: f.seen_by.iter().map(|n| node(*n)).collect(),
        })
        .collect();
    contract::Status {
        cluster: spec.name.clone(),
        reported_by: node(status.reported_by),
        nodes,
        links,
        groups,
        leases,
        faults,
        journal,
        receiving,
    }
}

/// What one UDP link's socket received (the daemon's own facts, beside the engine's
/// status): heartbeats accepted, packets rejected by reason and by source, the kernel's
/// drops for a full receive buffer, and a flood in progress.
pub fn receiving(
    spec: &ClusterSpec,
    udp: &crate::net::UdpLink,
    now: Instant,
) -> contract::Receiving {
    let counters = udp.receiver.counters();
    let mut sources = udp.rejected_by.since(&crate::net::BySource::default());
    sources.sources.truncate(crate::net::SOURCES_KEPT);
    contract::Receiving {
        receive_buffer_bytes: Some(udp.receive_buffer as u64),
        rejected_by_source: sources
            .sources
            .iter()
            .map(|(source, n)| contract::SourceCount { source: source.to_string(), count: *n })
            .collect(),
        rejected_other_sources: sources.other,
        kernel_drops: udp.kernel_drops,
        flood: udp.flood.current().map(|(since, peak)| contract::Flood {
            for_ms: now.saturating_since(since).as_millis() as u64,
            peak_per_second: peak,
        }),
        ..received(&spec.link(udp.link).name, counters)
    }
}

/// The part of a link's `receiving` entry its heartbeat receiver's counters give
/// (nothing by source, no kernel socket).
pub fn received(link: &str, counters: &wire::Counters) -> contract::Receiving {
    contract::Receiving {
        link: link.to_string(),
        accepted: counters.accepted,
        rejected: counters.rejected_total(),
        rejected_by_reason: counters
            .by_reason()
            .filter(|(_, n)| *n > 0)
            .map(|(reason, n)| (reason.as_str().to_string(), n))
            .collect(),
        rejected_by_source: Vec::new(),
        rejected_other_sources: 0,
        kernel_drops: 0,
        receive_buffer_bytes: None,
        flood: None,
    }
}

/// Why a request did not reach the daemon, or its answer could not be read.
#[derive(Debug)]
pub enum CallError {
    /// No daemon answers at the socket (none runs here, another runtime directory).
    Unreachable(String),
    /// The socket refuses this user (E5104).
    NotAllowed(String),
    /// The answer could not be read (the daemon stopped while answering).
    Broken(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(why) | CallError::NotAllowed(why) | CallError::Broken(why) => {
                f.write_str(why)
            }
        }
    }
}

impl std::error::Error for CallError {}

/// Sends one request to the daemon of `runtime_dir` and reads its answer, a refusal
/// included (`ok: false`). What `tandem status` and the other commands use.
pub fn ask(runtime_dir: &Path, request: &Request) -> Result<Answer, CallError> {
    use std::io::{BufRead, Write};
    let path: PathBuf = runtime_dir.join(SOCKET_FILE);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            CallError::NotAllowed(format!(
                "{}: permission denied on {}: only root, the daemon's user and the node's \
                 admin group (`tandem node --admin-group`) may use it; run the command as \
                 root or as a member of that group",
                engine::catalogue::CONTROL_REFUSED.code,
                path.display()
            ))
        } else {
            CallError::Unreachable(format!(
                "cannot reach the tandem daemon at {}: {e} (is `tandem node` running on this \
                 host, with this runtime directory? pass --runtime-dir if it has another, or \
                 --endpoint to ask another node)",
                path.display()
            ))
        }
    })?;
    let broken = |e: std::io::Error| CallError::Broken(format!("the daemon's answer: {e}"));
    // A push waits for every node's answer (each up to `configstore::PEER_TIMEOUT`, for
    // the check and again for the apply); anything else is answered at once.
    let wait = match request {
        Request::ConfigPush { .. } => Duration::from_secs(60),
        _ => Duration::from_secs(10),
    };
    stream.set_read_timeout(Some(wait)).map_err(broken)?;
    let mut line = serde_json::to_string(request).map_err(|e| CallError::Broken(e.to_string()))?;
    line.push('\n');
    // A refused caller's connection may be closed before its request is written: the
    // refusal is still there to read.
    let sent = stream.write_all(line.as_bytes());
    let mut answer = String::new();
    let read = std::io::BufReader::new(stream).read_line(&mut answer);
    if answer.is_empty() {
        sent.map_err(broken)?;
        read.map_err(broken)?;
    }
    let answer: Answer = serde_json::from_str(&answer)
        .map_err(|e| CallError::Broken(format!("the daemon's answer: {e}")))?;
    if !answer.ok
        && answer
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with(engine::catalogue::CONTROL_REFUSED.code))
    {
        return Err(CallError::NotAllowed(answer.error.unwrap_or_default()));
    }
    Ok(answer)
}

/// [`ask`], a refusal as an error.
pub fn call(runtime_dir: &Path, request: &Request) -> anyhow::Result<Answer> {
    let answer = ask(runtime_dir, request)?;
    answer.accepted().map_err(|error| anyhow::anyhow!("{error}"))
}

impl<P: crate::platform::Platform> crate::node::Node<P> {
    /// A control call: the status is answered at once; an accepted command is journaled
    /// (I5107) and goes to the core, answered once what it caused is durable.
    pub(crate) fn on_call(&mut self, call: Call) {
        if crate::configstore::is_config(&call.request) {
            self.on_config_call(call);
            return;
        }
        let answer = match command_of(&self.spec, &call.request) {
            Err(error) => Answer::refused(error),
            Ok(None) => {
                let now = crate::platform::Clock::now(&self.clock);
                let status = self.core.engine().status(now);
                let receiving = crate::platform::Links::receiving(&mut self.links, &self.spec, now);
                let loss = &self.loss;
                let lookup = |link: engine::LinkId, node: engine::NodeId| {
                    loss.get(&(link, node)).and_then(|c| c.loss_percent())
                };
                let journal = self.journal.status();
                let mut document =
                    status_document(&self.spec, &status, now, lookup, journal, receiving);
                // The configurations that differ between nodes (`configsync`).
                document.faults.extend(self.config_faults());
                Answer::status(document)
            }
            Ok(Some(command)) => {
                if self.core.shutdown_by().is_some() && !matches!(call.request, Request::Status) {
                    Answer::refused("the daemon is shutting down")
                } else {
                    let (group, audit) = (group_of(&command), audit(&call));
                    self.journal_own(&engine::catalogue::ADMIN_COMMAND, group, audit);
                    self.core.admin(command);
                    // Answered when what it causes is journaled (`settle`).
                    self.replies.push((call.answer, Answer::taken()));
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
    use engine::{GroupId, LinkId, NodeId, ResourceId};

    /// Two nodes, one UDP link, one group of one process.
    fn spec() -> ClusterSpec {
        let text = r#"
[cluster]
name = "erp"
key_file = "/nonexistent"

[[node]]
name = "alpha"
addresses = { private = "127.0.0.1:1" }
api = "127.0.0.1:3"

[[node]]
name = "beta"
addresses = { private = "127.0.0.1:2" }
api = "127.0.0.1:4"

[[link]]
name = "private"
kind = "udp"

[arbitration]
kind = "none"

[[group]]
name = "db"
nodes = ["alpha", "beta"]

  [[group.resource]]
  name = "data"
  kind = "process"
  command = ["/bin/true"]
"#;
        config::parse(text, "cluster.toml").unwrap().0.cluster
    }

    /// The daemon's rendering of a status with every part filled: PRODUCT.md section 5's
    /// keys, with the values the engine gave, and the same JSON through
    /// [`contract::Status`] and back.
    #[test]
    fn the_status_document_keeps_product_keys_and_its_json_through_the_type() {
        let spec = spec();
        let now = Instant::from_nanos(3_600_000_000_000);
        let status = Status {
            reported_by: NodeId(0),
            nodes: vec![
                engine::NodeStatus { node: NodeId(0), state: engine::NodeState::Working },
                engine::NodeStatus { node: NodeId(1), state: engine::NodeState::Standby },
            ],
            links: vec![engine::LinkStatus {
                link: LinkId(0),
                nodes: (NodeId(0), NodeId(1)),
                up: true,
                last_heard: Some(Duration::from_millis(40)),
                rtt: Some(Duration::from_micros(210)),
            }],
            groups: vec![engine::GroupStatus {
                group: GroupId(0),
                state: engine::GroupState::Running,
                owner: Some(NodeId(0)),
                locked: false,
                lock_reason: None,
                resources: vec![engine::ResourceStatus {
                    resource: ResourceId(0),
                    state: engine::ResourceState::Running,
                    fail_count: 0,
                }],
            }],
            leases: vec![engine::LeaseStatus {
                group: GroupId(0),
                holder: NodeId(0),
                expires_in: Some(Duration::from_millis(820)),
            }],
            faults: vec![engine::Fault {
                code: &engine::catalogue::LINK_DOWN,
                location: "link private between alpha and beta".into(),
                since: Instant::from_nanos(3_590_000_000_000),
                seen_by: vec![NodeId(0), NodeId(1)],
            }],
        };
        let journal = contract::JournalState { durable_id: 9, queued: 0, dropped: 0, error: None };
        let receiving = vec![received("private", &wire::Counters::default())];
        let doc = status_document(&spec, &status, now, |_, _| Some(0.5), journal, receiving);
        let json = serde_json::to_value(&doc).unwrap();
        let expected = serde_json::json!({
            "cluster": "erp", "reported_by": "alpha",
            // `api` is the HTTPS API's to fill (the control socket's document has none).
            "nodes": [{"name": "alpha", "state": "working", "api": null},
                      {"name": "beta", "state": "standby", "api": null}],
            "links": [{"link": "private", "nodes": ["alpha", "beta"], "state": "up",
                       "last_heard_ms": 40, "rtt_ms": 0.21, "loss_percent": 0.5}],
            "groups": [{"name": "db", "state": "running", "owner": "alpha", "locked": false,
                        "lock_reason": null,
                        "resources": [{"name": "data", "kind": "process", "state": "running",
                                       "fail_count": 0}]}],
            "leases": [{"group": "db", "holder": "alpha", "expires_in_ms": 820}],
            "journal": {"durable_id": 9, "queued": 0, "dropped": 0, "error": null},
            "receiving": [{"link": "private", "accepted": 0, "rejected": 0,
                           "rejected_by_reason": {}, "rejected_by_source": [],
                           "rejected_other_sources": 0, "kernel_drops": 0,
                           "receive_buffer_bytes": null, "flood": null}],
        });
        let mut without_faults = json.clone();
        let faults = without_faults.as_object_mut().unwrap().remove("faults").unwrap();
        assert_eq!(without_faults, expected);
        let fault = &faults[0];
        assert_eq!(fault["code"], "W2101");
        assert_eq!(fault["severity"], "warning");
        assert_eq!(fault["where"], "link private between alpha and beta");
        assert_eq!(fault["seen_by"], serde_json::json!(["alpha", "beta"]));
        let since = fault["since"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(since).is_ok(), "{since}");
        // Through the type and back: the same JSON, and the same answer line.
        let back: contract::Status = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, doc);
        assert_eq!(serde_json::to_value(&back).unwrap(), json);
        let line = line_of(&Answer::status(doc));
        let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(answer, serde_json::json!({"ok": true, "status": json}));
    }

    #[test]
    fn requests_have_a_stable_json_form() {
        let r: Request =
            serde_json::from_str(r#"{"command":"switchover","group":"db","to":null}"#).unwrap();
        assert_eq!(r, Request::Switchover { group: "db".into(), to: None });
        let text = serde_json::to_string(&Request::Maintenance { on: true }).unwrap();
        assert_eq!(text, r#"{"command":"maintenance","on":true}"#);
    }
}
