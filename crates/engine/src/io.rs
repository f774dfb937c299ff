//! The engine's whole contract with the world: the closed [`Input`] and [`Output`]
//! enums. The shell (daemon) and the simulator `match` on [`Output`]; that match is the
//! complete list of side effects tandem has, and the shell decides nothing itself.
//!
//! Contract (str0m style): after every [`crate::Engine::handle`], call
//! [`crate::Engine::poll_output`] until it returns [`Output::Wait`]; call `handle` with
//! [`Input::Timeout`] at that instant at the latest.

use std::sync::Arc;
use std::time::Duration;

use crate::catalogue::{CodeInfo, Severity};
use crate::spec::{GroupId, LinkId, NodeId, ResourceId};
use crate::time::Instant;

/// Identifies one agent operation or lease request, so that late or duplicated results
/// of superseded requests are recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Time passed; nothing else happened.
    Timeout,
    /// A heartbeat arrived on `link` (already authenticated and decoded by the shell)
    /// at `received` on this node's clock: no later than the instant it is handled, and
    /// earlier when the shell learns of it late (a disk slot read whose answer waited
    /// for the loop's next wake-up). The link counts as heard from then: a late look
    /// must not make a dead peer look alive longer.
    Heartbeat { link: LinkId, message: Heartbeat, received: Instant },
    /// The local path to the shared disk works (`true`) or fails (`false`); reported by
    /// the disk link when its state changes.
    StoragePath { ok: bool },
    /// The result of an agent operation the engine asked for.
    Operation { id: OpId, result: OpResult },
    /// The result of a lease request.
    Lease { id: OpId, result: LeaseResult },
    /// An administrative command given to this node (CLI, API, console).
    Admin(AdminCommand),
    /// The daemon is asked to stop (SIGTERM): from now on this node takes no group, and
    /// hands the ones it runs to the next eligible node, as a drain does, but only for
    /// this run (nothing is replicated or kept). Groups stop even when no node can take
    /// them. In maintenance nothing is stopped. The shell exits once
    /// [`crate::Engine::is_quiescent`] answers true.
    Shutdown,
    /// A poison pill was read from this node's mailbox on the shared disk (`tandem disk
    /// fence`, or a peer that fences this node): addressed to the daemon of
    /// `incarnation`, from node `from` (`None`: an operator). The engine fences itself
    /// (E3111, [`Output::SelfFence`]) when the pill is for its own incarnation, and
    /// ignores one left for an earlier daemon of this node.
    PoisonPill { incarnation: u64, from: Option<NodeId> },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send this heartbeat on `link` to `to`.
    Heartbeat { link: LinkId, to: NodeId, message: Heartbeat },
    /// Run an agent operation; answer with [`Input::Operation`] with the same id. The
    /// executor must kill the agent and answer [`OpResult::Timeout`] after `timeout`.
    Operation { id: OpId, group: GroupId, resource: ResourceId, op: OpKind, timeout: Duration },
    /// Ask the arbitrator; answer with [`Input::Lease`] with the same id.
    Lease { id: OpId, request: LeaseRequest },
    /// Arm (or re-arm) the fence guard, something that outlives the daemon: if the
    /// daemon that armed it dies, the guard stops every resource of the node at
    /// `deadline` (local clock; at once if the daemon dies later). While that daemon
    /// lives the engine enforces the deadline itself (E3105, E3106). A new daemon's
    /// engine replaces a predecessor's deadline only once it holds the lease of every
    /// group that may run here (until then it arms with `keep_earlier`). `None` disarms
    /// it: nothing runs.
    ArmFence {
        deadline: Option<Instant>,
        /// Keep an earlier deadline the guard already holds: this engine has not yet
        /// armed the guard itself, and resources of a group may run here without its
        /// lease (a predecessor's, found running or not yet probed), which only the
        /// predecessor's deadline bounds. The shell learns the deadline the guard keeps.
        /// With `deadline: None` only the predecessor's deadline stays (none if there
        /// was none).
        keep_earlier: bool,
    },
    /// Set the `lock_standby` devices of `group` read-only on this node: the group does
    /// not run here (nothing started, nothing starting or stopping, probes answered) and
    /// the node is ready. Given each time that becomes true (after the node's probes, when
    /// the group stopped here); the file system agent's start clears the lock, its stop
    /// sets it again.
    LockStandby { group: GroupId },
    /// Reset this node now (watchdog): its resources could not be stopped before its
    /// lease expires. The shell must not return to normal work after this.
    SelfFence { reason: String },
    /// Journal this event.
    Event(Event),
    /// Nothing more to do until this instant (or the next input).
    Wait(Instant),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    Start,
    Stop,
    Monitor,
    /// A one-time check of whether the resource runs here (at start-up and after
    /// maintenance): answered `Running` or `NotRunning`, never acted on as a failure.
    Probe,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// Start or stop done; monitor or probe found it running.
    Ok,
    /// Monitor or probe: not running (OCF 7, LSB 3). For a stop: already stopped, fine.
    NotRunning,
    /// The agent reported an error.
    Failed(String),
    /// The agent did not answer within its timeout and was killed.
    Timeout,
    /// Start: not done, because what it would take is still held elsewhere — an address
    /// another host still answers for (the previous owner letting go of it, a frozen
    /// host). No fault of this node and no failure: the start is retried, paced, and
    /// counts nothing (the group does not move away for it).
    InUse(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeaseRequest {
    /// Take the group's lease. The arbitrator grants it only once no other node can
    /// still believe it holds it (see `Timing::lease_takeover_wait`).
    Acquire(GroupId),
    /// Renew every lease this node holds (one write of the node's own record).
    Renew,
    /// Give the group's lease back.
    Release(GroupId),
    /// Renew every lease this node holds and keep them for it while its daemon is down
    /// (a stop in maintenance leaves the resources running): the arbitrator grants
    /// them to no other node until this node, started again, takes or gives back each,
    /// or an operator releases them (`tandem disk unpark`). Answered like a renewal.
    Park,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseResult {
    /// Acquired or renewed. `since` is the local instant at which the arbitrator's
    /// successful write (or request) was issued; the lease is valid for `lease_timeout`
    /// from then on this node's clock.
    Granted { since: Instant },
    /// Another node holds the lease (`holder`, when known).
    Denied { holder: Option<NodeId> },
    /// Renewal only: the arbitrator says another node now holds these groups.
    Lost { groups: Vec<GroupId> },
    /// Release done.
    Released,
    /// I/O error or no answer: the request had no effect.
    Unavailable(String),
}

/// Commands operators give; each is replicated to every node in heartbeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    Switchover { group: GroupId, to: Option<NodeId> },
    Drain(NodeId),
    Undrain(NodeId),
    Maintenance(bool),
    Clear { group: GroupId, resource: Option<ResourceId> },
}

/// A heartbeat: who sends it, when, and the sender's whole report. The report is shared
/// between the copies sent on every link.
#[derive(Clone, Debug, PartialEq)]
pub struct Heartbeat {
    pub from: NodeId,
    /// Changes at every daemon start; a lower one than already seen is stale.
    pub incarnation: u64,
    /// Per sender incarnation, increasing.
    pub sequence: u64,
    /// The sender's local clock when it sent this copy (echoed back for RTT).
    pub sent_at: Instant,
    /// The last heartbeat the sender got from the receiver on this link, for RTT.
    pub echo: Option<Echo>,
    pub report: Arc<NodeReport>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo {
    /// The receiver's own `sent_at` of that heartbeat.
    pub sent_at: Instant,
    /// How long the sender held it before this reply.
    pub held: Duration,
}

/// What a node tells its peers about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeReport {
    pub state: NodeState,
    pub storage_ok: bool,
    /// One entry per group of the cluster, in group order.
    pub groups: Vec<GroupReport>,
    /// Which peers this node hears on which link (for locating link faults).
    pub links_up: Vec<(LinkId, NodeId)>,
    pub admin: AdminState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupReport {
    pub state: GroupState,
    /// Why the sender may not run this group now; `None`: it may (it is in the group's
    /// node list, booted, not drained, its `nic` resources are up, its storage path is up
    /// if the group needs it, it reaches the arbitrator, it is under the failure
    /// threshold).
    pub ineligible: Option<Ineligible>,
    /// The sender believes it holds the lease.
    pub holds_lease: bool,
    /// The sender stopped the group to hand it to this node.
    pub handoff_to: Option<NodeId>,
}

/// Why a node may not run a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ineligible {
    NotMember,
    Booting,
    Maintenance,
    Drained,
    StorageLost,
    NoArbitrator,
    NicDown,
    Failures,
}

impl Ineligible {
    pub fn as_str(self) -> &'static str {
        match self {
            Ineligible::NotMember => "not in the group's node list",
            Ineligible::Booting => "booting",
            Ineligible::Maintenance => "in maintenance",
            Ineligible::Drained => "drained",
            Ineligible::StorageLost => "storage path lost",
            Ineligible::NoArbitrator => "arbitrator unreachable",
            Ineligible::NicDown => "monitored interface down",
            Ineligible::Failures => "over the failure threshold",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeState {
    Booting,
    Working,
    Standby,
    Offline,
    Maintenance,
    Drained,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Booting => "booting",
            NodeState::Working => "working",
            NodeState::Standby => "standby",
            NodeState::Offline => "offline",
            NodeState::Maintenance => "maintenance",
            NodeState::Drained => "drained",
        }
    }
}

/// A group's state on one node (PRODUCT.md section 3.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupState {
    Stopped,
    Starting,
    Running,
    Stopping,
    Failed,
}

impl GroupState {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Stopped => "stopped",
            GroupState::Starting => "starting",
            GroupState::Running => "running",
            GroupState::Stopping => "stopping",
            GroupState::Failed => "failed",
        }
    }
    /// Resources of the group may be running on the node.
    pub fn is_active(self) -> bool {
        !matches!(self, GroupState::Stopped)
    }
}

/// A last-writer-wins register: the value with the highest stamp wins everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Lww<T> {
    pub value: T,
    pub stamp: Stamp,
}

/// A Lamport time plus the writer, to order concurrent writes the same way everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Stamp {
    pub lamport: u64,
    /// `NodeId.0 + 1`; 0 for "never written".
    pub writer: u16,
}

/// The cluster-wide administrative state, merged register by register.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AdminState {
    pub maintenance: Lww<bool>,
    /// Per node, in node order.
    pub drained: Vec<Lww<bool>>,
    /// Per group, in group order: a pending planned move and its target (`None` target
    /// inside `Some`: "the next eligible node").
    pub switchover: Vec<Lww<Option<SwitchoverRequest>>>,
    /// Per group: the latest `clear`.
    pub clear: Vec<Lww<ClearRequest>>,
}

/// A `clear` of a group's failures (all its resources, or one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ClearRequest {
    /// Raised by every clear of the group.
    pub sequence: u64,
    pub resource: Option<ResourceId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchoverRequest {
    /// The owner when the request was made; only it acts on the request.
    pub from: NodeId,
    pub to: Option<NodeId>,
}

/// An event for the journal. Every decision, action, fault and alarm is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Local clock of the node that made it; the shell adds the wall-clock time.
    pub at: Instant,
    pub node: NodeId,
    pub code: &'static CodeInfo,
    pub group: Option<GroupId>,
    pub resource: Option<ResourceId>,
    /// Where the fault is, in words ("link private between alpha and beta").
    pub location: Option<String>,
    pub message: String,
}

impl Event {
    pub fn severity(&self) -> Severity {
        self.code.severity
    }
}
