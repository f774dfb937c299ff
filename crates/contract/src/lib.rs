//! The typed contract between a tandem node and its clients: the status document
//! ([`Status`], PRODUCT.md section 5, plus what the daemon adds: `loss_percent`,
//! `journal`, `receiving`), the journal's events as clients see them ([`Event`], one line
//! of `journal.jsonl` and of `tandem events --json`), the commands ([`Request`]) and the
//! answers ([`Answer`]). The daemon renders these types; the CLI, the demo, the tests
//! and any other client read them. The JSON form of each is checked against the schema
//! files in `docs/schema/` by this crate's tests (`UPDATE_SCHEMA=1 cargo test -p
//! contract` rewrites them: review the diff, a change there is a change of contract).
//!
//! This crate depends on nothing of tandem's (no engine, no daemon), so any client can
//! depend on it cheaply; the daemon converts the engine's types into these.
//!
//! **States are enums** ([`NodeState`], [`LinkState`], [`GroupState`],
//! [`ResourceState`], [`ResourceKind`], [`Severity`]), serialized to the same lowercase
//! words as before (`working`, `standby`, `running`, ...): a client matches on them
//! instead of comparing strings, and the schema lists every word a client may see. A
//! node of a newer version with a new state is a contract change (visible in
//! `docs/schema/`), not a silent new string. The [`Event`] is the exception: its
//! `code` and `severity` stay strings, because events are read back from journal files
//! written by any earlier version, and an entry that does not parse is skipped; a
//! string never makes an old entry unreadable.
//!
//! **The key names are the contract**: PRODUCT.md's names are kept as they are (keys
//! may be added, never renamed). Keys appear in the order of the fields here (the order
//! PRODUCT.md lists them), and an absent value is `null`, never a missing key, in the
//! status document.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod inventory;
pub use inventory::*;
mod configedit;
pub use configedit::*;

/// The status document: the cluster as one node (`reported_by`) sees it, answered by
/// `tandem status` (`--json` prints it as it is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Status {
    /// The cluster's name (`cluster.name`).
    pub cluster: String,
    /// The node whose view this is.
    pub reported_by: String,
    pub nodes: Vec<NodeEntry>,
    /// One entry per link and node pair.
    pub links: Vec<LinkEntry>,
    pub groups: Vec<GroupEntry>,
    pub leases: Vec<LeaseEntry>,
    /// What is wrong now.
    pub faults: Vec<FaultEntry>,
    /// The reporting node's journal writer.
    pub journal: JournalState,
    /// Per UDP link of the reporting node: what its socket received.
    pub receiving: Vec<Receiving>,
}

impl Status {
    /// The group named `name`, if the cluster has it.
    pub fn group(&self, name: &str) -> Option<&GroupEntry> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The node named `name`, if the cluster has it.
    pub fn node(&self, name: &str) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The `receiving` entry of the link named `link`, if the reporting node has it.
    pub fn receiving(&self, link: &str) -> Option<&Receiving> {
        self.receiving.iter().find(|r| r.link == link)
    }
}

/// A node of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeEntry {
    pub name: String,
    pub state: NodeState,
    /// Where the node serves its HTTPS API and web console (`https://ADDRESS:PORT/`, its
    /// configured `api` address), so that a client can offer the other nodes' consoles.
    /// Filled in the document the HTTPS API serves; `null` in the control socket's, and
    /// absent in a document of a node before this key existed.
    #[serde(default)]
    pub api: Option<String>,
}

/// A node's state (PRODUCT.md section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Booting,
    Working,
    Standby,
    Offline,
    Maintenance,
    Drained,
}

/// One link between two nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LinkEntry {
    /// The link's name (`[[link]]` of the configuration).
    pub link: String,
    pub nodes: [String; 2],
    pub state: LinkState,
    /// Milliseconds since the last heartbeat on this link; only for pairs with the
    /// reporting node.
    pub last_heard_ms: Option<u64>,
    /// Round-trip time, milliseconds (microsecond precision).
    pub rtt_ms: Option<f64>,
    /// Heartbeats lost from the other node of the pair, percent, as the reporting
    /// node's daemon counts them.
    pub loss_percent: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Up,
    Down,
}

/// A resource group, as the reporting node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupEntry {
    pub name: String,
    /// The owner's state of the group; `stopped` without an owner.
    pub state: GroupState,
    pub owner: Option<String>,
    /// Migration-locked: no automatic failover until an operator acts.
    pub locked: bool,
    pub lock_reason: Option<String>,
    pub resources: Vec<ResourceEntry>,
}

/// A group's state (PRODUCT.md section 3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupState {
    Stopped,
    Starting,
    Running,
    Stopping,
    Failed,
}

/// A resource of a group, on the reporting node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ResourceEntry {
    pub name: String,
    pub kind: ResourceKind,
    pub state: ResourceState,
    /// Failures on the reporting node within the resource's `failure_timeout`.
    pub fail_count: u32,
}

/// A resource's kind: the name used in `cluster.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Filesystem,
    Ip,
    Nic,
    Process,
    Script,
    Lsb,
    Systemd,
    Ocf,
    App,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceState {
    Stopped,
    Starting,
    Running,
    Stopping,
    Failed,
}

/// A group's lease, as the reporting node knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LeaseEntry {
    pub group: String,
    pub holder: String,
    /// Known only for leases the reporting node holds.
    pub expires_in_ms: Option<u64>,
}

/// Something wrong now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FaultEntry {
    /// The catalogue's code (docs/errors.md), e.g. `E2101`.
    pub code: String,
    pub severity: Severity,
    /// Where, in words: "link private between alpha and beta".
    #[serde(rename = "where")]
    pub location: String,
    /// Since when, RFC 3339, UTC, to the second.
    pub since: String,
    /// The nodes that see it: the reporting node, and for a link down the peer too when
    /// it does not hear the reporter on that link either (both: the link is down both
    /// ways; one: one direction only). Empty in a document of a node before this key
    /// existed.
    #[serde(default)]
    pub seen_by: Vec<String>,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// The reporting node's journal writer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JournalState {
    /// The last entry id known to be on disk.
    pub durable_id: u64,
    /// Entries waiting for the writer thread.
    pub queued: u64,
    /// Entries dropped because the writer's queue was full.
    pub dropped: u64,
    /// The last write error, while the last write failed.
    pub error: Option<String>,
}

/// What one UDP link's socket on the reporting node received: heartbeats accepted,
/// packets rejected by reason and by source, the kernel's drops for a full receive
/// buffer, and a flood in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Receiving {
    pub link: String,
    pub accepted: u64,
    pub rejected: u64,
    /// Only reasons with a count above zero (`bad_magic`, `unknown_source`, ...).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// The sources most rejected, most first.
    pub rejected_by_source: Vec<SourceCount>,
    /// Rejected packets from sources not listed in `rejected_by_source`.
    pub rejected_other_sources: u64,
    pub kernel_drops: u64,
    /// The socket's receive buffer; `null` where the link has no kernel socket (the
    /// daemon's in-memory test platform).
    pub receive_buffer_bytes: Option<u64>,
    pub flood: Option<Flood>,
}

/// Packets rejected from one source address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SourceCount {
    /// `address:port`.
    pub source: String,
    pub count: u64,
}

/// A flood of rejected packets in progress on a link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Flood {
    pub for_ms: u64,
    pub peak_per_second: u64,
}

/// One journal entry, as `journal.jsonl` keeps it and `tandem events --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Grows by one per entry, across rotations and restarts.
    pub id: u64,
    /// Wall-clock time, RFC 3339, UTC.
    pub time: String,
    /// The catalogue's code (docs/errors.md).
    pub code: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    /// The node that journaled it.
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub message: String,
}

/// A request to a node's daemon: one JSON object per line on the control socket,
/// `{"command": "switchover", "group": "db", "to": null}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    /// The status document.
    Status,
    /// Move `group` to `to` (default: the next eligible node).
    Switchover { group: String, to: Option<String> },
    /// Move every group off `node` and keep them off.
    Drain { node: String },
    /// Let `node` run groups again.
    Undrain { node: String },
    /// Cluster maintenance on or off: nothing is started, stopped or failed over.
    Maintenance { on: bool },
    /// Forget the failures of `group` (or of one of its resources) and unlock it.
    Clear { group: String, resource: Option<String> },
    /// The node's running configuration ([`ConfigDocument`] in `Answer::config`).
    ConfigShow,
    /// The generations the node keeps ([`ConfigGeneration`]s in `Answer::history`).
    ConfigHistory,
    /// Generation `generation`'s text ([`ConfigDocument`] in `Answer::config`).
    ConfigGet { generation: u64 },
    /// Check a configuration as `tandem validate` does, on this node, without applying
    /// it ([`ConfigOutcome`] in `Answer::outcome`).
    ConfigCheck { toml: String },
    /// Push a configuration to every node as the generation after `generation` (the one
    /// the text was based on; refused if the running one moved on): checked on every
    /// node, then applied on every node ([`ConfigOutcome`] in `Answer::outcome`).
    ConfigPush { toml: String, generation: u64 },
    /// Inside a node only (never read from a client): the configuration store tells
    /// the loop that a generation was applied, for the journal and for what the loop
    /// applies live.
    #[serde(skip)]
    ConfigApplied { generation: u64, audit: String, restart: Option<String> },
}

/// A node's configuration: the newest generation it keeps (`GET /v1/config`, `tandem
/// config show`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigDocument {
    /// The node that answered.
    pub node: String,
    /// Grows by one with every push, the same on every node.
    pub generation: u64,
    /// SHA-256 of the exact text, hex.
    pub hash: String,
    /// The TOML text.
    pub toml: String,
    /// The generation the running daemon started with; below `generation` when a
    /// change waits for a restart (`restart_needed`).
    pub running_generation: u64,
    /// What the running daemon does not have yet until it restarts (empty: nothing).
    pub restart_needed: Vec<String>,
    /// The configuration file differs from `toml`: edited by hand (W1301).
    pub file_edited: bool,
}

/// One generation a node keeps (`GET /v1/config/history`, `tandem config history`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigGeneration {
    pub generation: u64,
    /// SHA-256 of the exact text, hex.
    pub hash: String,
    /// When this node applied it, RFC 3339, UTC.
    pub time: String,
    /// Who pushed it ("alice (role admin, through the API from 10.0.0.5:40112)"), or
    /// where it came from ("the configuration file at the first start").
    pub by: String,
    /// The node the push went through.
    pub via: String,
    /// What changed from the generation before, one line each.
    pub changes: Vec<String>,
}

/// One diagnostic, as `tandem validate --json` gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigDiagnostic {
    /// The catalogue's code (`tandem explain CODE`).
    pub code: String,
    pub severity: Severity,
    pub message: String,
    /// 1-based line and column in the text.
    pub line: usize,
    pub column: usize,
    pub label: String,
    pub help: Vec<String>,
}

/// What one node said about a configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeVerdict {
    pub node: String,
    /// The node accepted it (no error among its diagnostics).
    pub accepted: bool,
    /// Its diagnostics (host checks as this node sees its host), warnings included.
    pub diagnostics: Vec<ConfigDiagnostic>,
    /// Why it refused or was not reached, with its code, when that is not a diagnostic.
    pub error: Option<String>,
}

/// A change between the running configuration and a new one, and when it takes effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigChange {
    /// "alerts changed", "group `web` added", "timing changed", ...
    pub what: String,
    /// Applied to the running daemons at once.
    pub live: bool,
    /// Otherwise: the nodes where it takes effect when tandem node restarts.
    pub restart: Vec<String>,
}

/// The outcome of a configuration check or push.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigOutcome {
    /// Every node (the one asked, for a check) accepted it.
    pub valid: bool,
    /// The new generation, once applied (a push that was not refused).
    pub generation: Option<u64>,
    /// SHA-256 of the text, hex.
    pub hash: String,
    /// Each node's verdict.
    pub nodes: Vec<NodeVerdict>,
    /// What changes from the running configuration.
    pub changes: Vec<ConfigChange>,
}

/// A daemon's answer to a [`Request`]: `{"ok": true, "status": {...}}` for `status`,
/// `{"ok": true}` for a command taken, `{"ok": false, "error": "..."}` for a refusal;
/// `journal_error` is added to a taken command's answer when the journal could not
/// make what it caused durable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Answer {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<Status>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_error: Option<String>,
    /// `config_show`, `config_get`: the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Box<ConfigDocument>>,
    /// `config_history`: the kept generations, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<ConfigGeneration>>,
    /// `config_check`, `config_push`: what every node said and what changes (also with a
    /// refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Box<ConfigOutcome>>,
}

impl Answer {
    /// The answer to `status`.
    pub fn status(status: Status) -> Answer {
        Answer { status: Some(Box::new(status)), ..Answer::taken() }
    }

    /// A command taken.
    pub fn taken() -> Answer {
        Answer {
            ok: true,
            status: None,
            error: None,
            journal_error: None,
            config: None,
            history: None,
            outcome: None,
        }
    }

    /// A refusal, saying why.
    pub fn refused(error: impl Into<String>) -> Answer {
        Answer { ok: false, error: Some(error.into()), ..Answer::taken() }
    }

    /// `Err` with the daemon's reason when it refused, else the answer.
    pub fn accepted(self) -> Result<Answer, String> {
        if self.ok {
            Ok(self)
        } else {
            Err(self.error.unwrap_or_else(|| "the daemon refused the request".to_string()))
        }
    }
}

/// `as_str` (the word of the JSON form) and `Display` for the state enums; the
/// `words_are_the_json_form` test holds each word to what serde writes.
macro_rules! words {
    ($($kind:ident { $($variant:ident => $word:literal),+ $(,)? })+) => {$(
        impl $kind {
            /// Every value, in declaration order.
            pub const ALL: &'static [$kind] = &[$($kind::$variant),+];

            /// The word of the JSON form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($kind::$variant => $word),+
                }
            }
        }

        impl fmt::Display for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }
    )+};
}

words! {
    NodeState {
        Booting => "booting",
        Working => "working",
        Standby => "standby",
        Offline => "offline",
        Maintenance => "maintenance",
        Drained => "drained",
    }
    LinkState { Up => "up", Down => "down" }
    GroupState {
        Stopped => "stopped",
        Starting => "starting",
        Running => "running",
        Stopping => "stopping",
        Failed => "failed",
    }
    ResourceState {
        Stopped => "stopped",
        Starting => "starting",
        Running => "running",
        Stopping => "stopping",
        Failed => "failed",
    }
    ResourceKind {
        Filesystem => "filesystem",
        Ip => "ip",
        Nic => "nic",
        Process => "process",
        Script => "script",
        Lsb => "lsb",
        Systemd => "systemd",
        Ocf => "ocf",
        App => "app",
    }
    Severity { Info => "info", Warning => "warning", Error => "error" }
}
