//! The daemon's platform boundaries: what the loop ([`crate::node`]) needs from the
//! operating system, one small trait per concern, bundled as [`Platform`]. The loop is
//! generic over it and decides nothing; the node core decides. Linux's implementations
//! are the modules `net`, `diskio`, `guard`, `executor`, `alarm`, `clock` and the
//! signal and `sd_notify` handling, wired up in [`crate::linux`]; another platform
//! (Windows Server next) implements these traits and runs the very same loop. A test
//! (`memory`, in-process, no sockets, no disk, no guard process, no timer fd, no
//! signals) is the second implementation that shows they suffice.
//!
//! Every answer that comes back later (disk jobs, agents' operations, the guard's news)
//! comes on a channel the platform gives the loop at its start ([`Receivers`]), so that
//! the loop waits for all its inputs in one `select`.
//!
//! The contracts below are what the core's rules rely on; an implementation that breaks
//! one breaks a guarantee, not just a feature.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use arbiter::disk::{IoId, IoOp};
use engine::catalogue::CodeInfo;
use engine::{
    ClusterSpec, GroupId, Heartbeat, Instant, LinkId, NodeId, OpId, OpKind, OpResult, ResourceId,
};
use tokio::sync::mpsc;

/// A disk job's answer as the worker gives it (with the instant it ended); a peer's
/// slot is its bytes.
pub type Answer = nodecore::DiskAnswer<Vec<u8>>;

/// What the loop wants from the disk at one moment: a `nodecore::JobPlan` with our
/// heartbeat slot encoded.
#[derive(Debug, Default)]
pub struct Job {
    /// The lease client's I/O: its writes first, its reads after the slot write (each in
    /// this order; see [`DiskWorker`]).
    pub lease: Vec<(IoId, IoOp)>,
    /// This node's heartbeat slot: sequence and frame.
    pub slot: Option<(u64, Vec<u8>)>,
    /// Read every peer's heartbeat slot.
    pub peers: bool,
    /// Read this node's mailbox (a poison pill).
    pub mail: bool,
    /// Note when the lease writes end, if reads held back follow them
    /// ([`nodecore::DiskDone::writes_done_at`]; on Linux's ring it costs the worker a
    /// wake-up).
    pub time_writes: bool,
}

impl Job {
    pub fn is_empty(&self) -> bool {
        self.lease.is_empty() && self.slot.is_none() && !self.peers && !self.mail
    }
}

/// A finished agent operation.
#[derive(Debug)]
pub struct Done {
    pub id: OpId,
    pub group: GroupId,
    pub resource: ResourceId,
    pub op: OpKind,
    pub result: OpResult,
    /// The agent's own words on a failed or negative answer.
    pub detail: Option<String>,
    pub took: Duration,
}

/// What the fence guard tells the loop.
#[derive(Debug)]
pub enum GuardNews {
    /// A deadline sent late reached the guard after the previous one passed: it fired.
    Fired,
    /// The guard keeps `kept` (a predecessor's deadline, earlier than `sent`, which went
    /// with `keep_earlier`): it is the one the loop must check.
    Keeps { sent: u64, kept: u64 },
    /// The guard could not be reached or started (E3110).
    Unavailable(String),
}

#[cfg(test)]
mod memory;

/// The node's monotonic clock.
pub trait Clock {
    /// Now, as the engine's [`Instant`]: monotonic (never goes back, keeps running
    /// while the machine is suspended or the process paused), and the same clock the
    /// [`FenceGuard`] reads its deadlines on, though it runs in another process.
    fn now(&self) -> Instant;
}

/// The heartbeat links that carry datagrams (`udp` links; not the disk link, which is
/// the [`DiskWorker`]'s).
pub trait Links {
    /// Sends `frame` (already encoded and tagged) to node `to` on `link`. Never blocks
    /// and never fails the loop: a frame that cannot go is counted and dropped (the
    /// engine tolerates loss).
    fn send(&mut self, link: LinkId, to: NodeId, frame: &[u8]);

    /// Waits until some link has datagrams and reads one batch of them (one link's, the
    /// links served in turn so that none starves another): the link. Cancel-safe: the
    /// loop drops this future whenever another input comes first.
    fn receive(&mut self) -> impl Future<Output = LinkId>;

    /// The heartbeats accepted among the batch read last from `link`: each checked by
    /// `wire` (source, header, route, sender, replay window, then the tag), with the
    /// work spent on a source bounded before any cryptography; every rejection counted.
    fn accepted(&mut self, link: LinkId) -> Vec<Heartbeat>;

    /// The last batch filled every buffer: more may wait, and the loop yields to the
    /// runtime before the next (a flood starves neither the control socket nor the disk).
    fn batch_full(&self) -> bool;

    /// What the links have to journal at `now` (packets rejected, floods started or
    /// ended), called at every wake-up; cheap when there is nothing.
    fn news(&mut self, spec: &ClusterSpec, now: Instant) -> Vec<(&'static CodeInfo, String)>;

    /// The status document's `receiving` part: one object per link, as of `now`.
    fn receiving(&mut self, spec: &ClusterSpec, now: Instant) -> Vec<contract::Receiving>;

    /// The configuration stamp of `node`'s newest heartbeat accepted on any link (by
    /// incarnation and sequence), for `configsync`; `None` before any (and on a
    /// platform whose links do not keep it).
    fn config_of(&self, node: NodeId) -> Option<wire::ConfigSeen> {
        let _ = node;
        None
    }
}

/// The disk link's worker: performs the core's disk jobs off the loop (`diskio`'s module
/// doc has the whole contract and why).
///
/// - Jobs are done one at a time, in the order given; within a job the writes first,
///   then the reads.
/// - No I/O of a job starts at or after its `deadline`, and no read before its
///   `reads_after` (a read too early may see a holder's record before the renewal
///   written at the same tick).
/// - Every answer carries the instant its job ended (`done_at`, on the [`Clock`]).
/// - In prompt mode every answer goes to the loop's channel (it wakes the loop); else
///   it waits for [`DiskWorker::quiet_answers`], read at the loop's next wake-up.
/// - After [`DiskWorker::abandon`] the jobs queued are skipped as too late, and the next
///   job goes to a fresh worker; a late answer of an abandoned job may still come (a
///   write given up on may still land: the core is told when it ended).
pub trait DiskWorker {
    /// Hands job `id` over; `Err(why)` when no worker can take it (the loop answers it
    /// as failed at once).
    fn submit(
        &mut self,
        id: u64,
        deadline: Instant,
        reads_after: Instant,
        job: Job,
    ) -> Result<(), String>;

    /// The answers of quiet jobs given since the last call, oldest first.
    fn quiet_answers(&mut self) -> Vec<Answer>;

    /// Enters or leaves prompt mode (an acquire or release in flight). Entering it, the
    /// loop then reads the quiet answers already given.
    fn set_prompt_mode(&mut self, on: bool);

    /// Jobs missed their deadlines: the worker that holds them may be blocked in the
    /// kernel; leave it, the next job goes to a new one.
    fn abandon(&mut self);
}

/// The fence guard: something outside the loop that stops every resource of the node
/// at its deadline unless a newer deadline reached it first, whether or not the loop
/// (or the daemon's process) still runs. Arming never waits; the guard's news comes on
/// the channel of [`Receivers::guard`].
pub trait FenceGuard {
    /// `ArmFence { deadline, keep_earlier }`: a new deadline (`None`: disarmed). With
    /// `keep_earlier` a predecessor's earlier deadline stands, and the guard says so
    /// ([`GuardNews::Keeps`]); a deadline that reached it after the previous one passed
    /// is answered [`GuardNews::Fired`].
    fn arm(&mut self, deadline: Option<Instant>, keep_earlier: bool);

    /// Self-fence: fire now and leave it firing (stop everything).
    fn fire_now(&mut self) -> io::Result<()>;

    /// Clean shutdown (nothing runs here any more): the guard ends without firing.
    fn exit(&mut self);

    /// Waits at most `bound` for a guard that fired to finish stopping everything;
    /// whether it did.
    fn wait_gone(&mut self, bound: Duration) -> bool;
}

/// The resource agents: the only code that changes the host.
pub trait AgentRunner {
    /// Starts `op` on `resource` of `group`, bounded by `timeout` (plus a margin): its
    /// [`Done`] comes on the channel of [`Receivers::done`], or, for a monitor that
    /// found its resource running, waits for [`AgentRunner::quiet`]. Never blocks the
    /// loop; an operation that hangs is answered [`engine::OpResult::Timeout`].
    fn start(
        &mut self,
        id: OpId,
        group: GroupId,
        resource: ResourceId,
        op: OpKind,
        timeout: Duration,
    );

    /// Monitors' answers that need no wake-up of their own, oldest first.
    fn quiet(&mut self) -> Vec<Done>;
}

/// The standby lock (guarantee 7): a group's `lock_standby` devices set read-only on a
/// node that does not run it.
pub trait StandbyLock {
    /// Sets `devices` read-only, off the loop (a device whose path hangs must not block
    /// it); failures are logged.
    fn set_read_only(&mut self, devices: Vec<PathBuf>);
}

/// The loop's timer: one alarm at an absolute [`Clock`] instant.
pub trait LoopTimer {
    /// Sets the alarm to `at` (at once if passed; never for [`Instant::MAX`]). Called at
    /// every turn: cheap when `at` did not change.
    fn set(&mut self, at: Instant) -> io::Result<()>;

    /// Resolves when the alarm goes off (never while unset); afterwards it is unset
    /// until set again, with any instant, the same one included. Cancel-safe.
    fn expired(&mut self) -> impl Future<Output = ()>;
}

/// The service manager around the process: stop requests (SIGTERM and SIGINT on Linux,
/// the service control manager elsewhere), its watchdog, and the process's own end.
pub trait Service {
    /// Resolves at each stop request (the first hands the groups over, a second exits
    /// at once). Cancel-safe.
    fn stop_requested(&mut self) -> impl Future<Output = ()>;

    /// How often the service manager's watchdog must be fed, if one watches.
    fn watchdog_interval(&self) -> Option<Duration>;

    /// Feeds the watchdog.
    fn feed_watchdog(&mut self);

    /// The node is up (after its start) or on its way out.
    fn ready(&mut self);
    fn stopping(&mut self);

    /// Starts this daemon anew (same arguments, a new incarnation) after a stall, in
    /// place where the platform allows; returns only on failure.
    fn restart_in_place(&mut self) -> io::Error;

    /// Ends the process with `code` (a self-fence, a failed restart).
    fn exit(&mut self, code: i32) -> !;
}

/// One platform: a type per concern. The loop holds one value of each, so that it can
/// wait on several at once.
pub trait Platform: 'static {
    type Clock: Clock;
    type Links: Links;
    type Disk: DiskWorker;
    type Guard: FenceGuard;
    type Agents: AgentRunner;
    type Standby: StandbyLock;
    type Timer: LoopTimer;
    type Service: Service;
}

/// One value of each of a platform's parts, as its start built them.
pub struct Parts<P: Platform> {
    pub clock: P::Clock,
    pub links: P::Links,
    /// The disk link's worker, if the cluster has a disk link: the link and the worker.
    pub disk: Option<(LinkId, P::Disk)>,
    pub guard: P::Guard,
    pub agents: P::Agents,
    pub standby: P::Standby,
    pub timer: P::Timer,
    pub service: P::Service,
}

/// The channels on which later answers come to the loop.
pub struct Receivers {
    /// Disk jobs' answers in prompt mode.
    pub answers: mpsc::UnboundedReceiver<Answer>,
    /// Agents' results (all but quiet monitors).
    pub done: mpsc::UnboundedReceiver<Done>,
    /// Control calls (the CLI's; on Linux from `control.sock`).
    pub calls: mpsc::Receiver<crate::control::Call>,
    /// The fence guard's news.
    pub guard: mpsc::UnboundedReceiver<GuardNews>,
}
