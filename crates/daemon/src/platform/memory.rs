//! A second platform, wholly in memory, to show that the boundaries of
//! [`crate::platform`] suffice: the very same loop ([`crate::node::Node`]) runs two nodes
//! in one process with no socket, no disk device, no guard process, no timer fd and no
//! signal. Heartbeats go over channels, the shared disk is a map of records and slots,
//! agents run a pretend resource, the fence guard is a task that stops the node's
//! resources at its deadline (whether or not the node's loop still runs), and the clock
//! is the process's monotonic clock. Only the journal and the peers' sequences use a
//! temporary state dir (they are the node's files, not a platform's).
//!
//! The tests start a group on one node, then stop that node's loop as a crash would
//! (its guard fires and the other node takes the group over), or send it a stop request
//! (it hands the group over and its loop ends cleanly, the guard not fired); no start
//! ever finds the group running on the other node.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbiter::disk::{Block, IoOp, IoResult, Record};
use engine::catalogue::CodeInfo;
use engine::{
    ClusterSpec, GroupId, Heartbeat, Instant, LinkId, NodeId, OpId, OpKind, OpResult, ResourceId,
};
use nodecore::{DiskDone, NodeCore};
use tokio::sync::mpsc;

use super::{Answer, Done, GuardNews, Job, Parts, Platform, Receivers};
use crate::node::Node;
use crate::start::Shell;

/// The in-memory platform.
struct Memory;

impl Platform for Memory {
    type Clock = MemClock;
    type Links = MemLinks;
    type Disk = MemDisk;
    type Guard = MemGuard;
    type Agents = MemAgents;
    type Standby = MemStandby;
    type Timer = MemTimer;
    type Service = MemService;
}

/// A datagram in flight: link, sender, frame.
type Datagram = (LinkId, NodeId, Vec<u8>);

/// What both nodes share: the network, the disk, the resources as they run.
struct World {
    origin: std::time::Instant,
    inboxes: Mutex<BTreeMap<NodeId, mpsc::UnboundedSender<Datagram>>>,
    records: Mutex<BTreeMap<Block, Record>>,
    slots: Mutex<BTreeMap<NodeId, Vec<u8>>>,
    /// Which node runs which resource.
    running: Mutex<BTreeSet<(NodeId, GroupId, ResourceId)>>,
    /// Starts of a resource that another node ran at the time.
    double: Mutex<Vec<String>>,
    /// Nodes whose guard fired.
    fired: Mutex<BTreeSet<NodeId>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl World {
    fn new() -> Arc<World> {
        Arc::new(World {
            origin: std::time::Instant::now(),
            inboxes: Mutex::default(),
            records: Mutex::default(),
            slots: Mutex::default(),
            running: Mutex::default(),
            double: Mutex::default(),
            fired: Mutex::default(),
        })
    }

    /// The instant's offset from the origin: instants start at 1 s (0 is a sentinel).
    const START: u64 = 1_000_000_000;

    fn now(&self) -> Instant {
        Instant(World::START + self.origin.elapsed().as_nanos() as u64)
    }

    /// `at` on tokio's clock.
    fn tokio_at(&self, at: Instant) -> tokio::time::Instant {
        let since = Duration::from_nanos(at.0.saturating_sub(World::START));
        tokio::time::Instant::from_std(self.origin) + since
    }

    fn runs(&self, node: NodeId, group: GroupId) -> bool {
        lock(&self.running).iter().any(|(n, g, _)| *n == node && *g == group)
    }
}

struct MemClock(Arc<World>);

impl super::Clock for MemClock {
    fn now(&self) -> Instant {
        self.0.now()
    }
}

/// The links: every frame to a peer goes to its inbox; a batch is what waits there for
/// one link.
struct MemLinks {
    inbox: mpsc::UnboundedReceiver<Datagram>,
    world: Arc<World>,
    me: NodeId,
    /// A datagram read ahead that belongs to the next batch.
    ahead: Option<Datagram>,
    batch: Vec<(NodeId, Vec<u8>)>,
    receivers: BTreeMap<LinkId, wire::Receiver>,
}

const BATCH: usize = 32;

impl super::Links for MemLinks {
    fn send(&mut self, link: LinkId, to: NodeId, frame: &[u8]) {
        if let Some(inbox) = lock(&self.world.inboxes).get(&to) {
            let _ = inbox.send((link, self.me, frame.to_vec()));
        }
    }

    async fn receive(&mut self) -> LinkId {
        let first = match self.ahead.take() {
            Some(datagram) => datagram,
            None => match self.inbox.recv().await {
                Some(datagram) => datagram,
                None => std::future::pending().await,
            },
        };
        let link = first.0;
        self.batch.clear();
        self.batch.push((first.1, first.2));
        while self.batch.len() < BATCH {
            match self.inbox.try_recv() {
                Ok((l, from, frame)) if l == link => self.batch.push((from, frame)),
                Ok(other) => {
                    self.ahead = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        link
    }

    fn accepted(&mut self, link: LinkId) -> Vec<Heartbeat> {
        let Some(receiver) = self.receivers.get_mut(&link) else { return Vec::new() };
        let batch = self.batch.iter();
        batch
            .filter_map(|(from, frame)| receiver.receive_from(frame, Some(*from), |_| true).ok())
            .collect()
    }

    fn batch_full(&self) -> bool {
        self.batch.len() == BATCH
    }

    fn news(&mut self, _: &ClusterSpec, _: Instant) -> Vec<(&'static CodeInfo, String)> {
        Vec::new()
    }

    fn receiving(&mut self, spec: &ClusterSpec, _: Instant) -> Vec<contract::Receiving> {
        let link = |(l, r): (&LinkId, &wire::Receiver)| {
            crate::control::received(&spec.link(*l).name, r.counters())
        };
        self.receivers.iter().map(link).collect()
    }
}

/// A disk job as the worker task takes it.
struct Work {
    id: u64,
    deadline: Instant,
    reads_after: Instant,
    job: Job,
}

/// The disk worker: a task doing one job at a time on the world's records and slots.
struct MemDisk {
    jobs: mpsc::UnboundedSender<Work>,
    prompt: Arc<AtomicBool>,
    quiet: Arc<Mutex<Vec<Answer>>>,
}

impl MemDisk {
    fn start(world: Arc<World>, me: NodeId, answers: mpsc::UnboundedSender<Answer>) -> MemDisk {
        let (jobs, mut work) = mpsc::unbounded_channel::<Work>();
        let prompt = Arc::new(AtomicBool::new(false));
        let quiet = Arc::new(Mutex::new(Vec::new()));
        let (prompt_mode, quiet_answers) = (prompt.clone(), quiet.clone());
        tokio::spawn(async move {
            while let Some(work) = work.recv().await {
                let done = perform(&world, me, work.deadline, work.reads_after, work.job).await;
                let answer = Answer { id: work.id, done, done_at: world.now() };
                if prompt_mode.load(Ordering::SeqCst) {
                    let _ = answers.send(answer);
                } else {
                    lock(&quiet_answers).push(answer);
                }
            }
        });
        MemDisk { jobs, prompt, quiet }
    }
}

/// One job: the writes, then (not before `reads_after`) the reads; nothing started at
/// or after `deadline`.
async fn perform(
    world: &World,
    me: NodeId,
    deadline: Instant,
    reads_after: Instant,
    job: Job,
) -> DiskDone<Vec<u8>> {
    const LATE: &str = "not started: the job's I/O deadline had passed";
    let mut done =
        DiskDone { lease: Vec::new(), slot: None, peers: None, mail: None, writes_done_at: None };
    let late = || world.now() >= deadline;
    for (io, op) in job.lease.iter().filter(|(_, op)| matches!(op, IoOp::Write(..))) {
        if let IoOp::Write(block, record) = op {
            let result = match late() {
                true => IoResult::Failed(LATE.into()),
                false => {
                    lock(&world.records).insert(*block, record.clone());
                    IoResult::Written
                }
            };
            done.lease.push((*io, result));
        }
    }
    if let Some((_, frame)) = job.slot {
        done.slot = Some(match late() {
            true => Err(LATE.into()),
            false => {
                lock(&world.slots).insert(me, frame);
                Ok(())
            }
        });
    }
    if job.time_writes {
        done.writes_done_at = Some(world.now());
    }
    if world.now() < reads_after {
        tokio::time::sleep_until(world.tokio_at(reads_after)).await;
    }
    for (io, op) in &job.lease {
        if let IoOp::Read(block) = op {
            let result = match late() {
                true => IoResult::Failed(LATE.into()),
                false => {
                    IoResult::Read(lock(&world.records).get(block).cloned().unwrap_or_default())
                }
            };
            done.lease.push((*io, result));
        }
    }
    if job.peers {
        let slots = lock(&world.slots);
        let peers =
            lock(&world.inboxes).keys().chain(slots.keys()).copied().collect::<BTreeSet<_>>();
        let read = peers.into_iter().filter(|n| *n != me).map(|n| (n, slots.get(&n).cloned()));
        done.peers = Some(if late() { Err(LATE.into()) } else { Ok(read.collect()) });
    }
    if job.mail {
        let record = lock(&world.records).get(&Block::Mailbox(me)).cloned().unwrap_or_default();
        done.mail = Some(if late() { Err(LATE.into()) } else { Ok(record) });
    }
    done
}

impl super::DiskWorker for MemDisk {
    fn submit(
        &mut self,
        id: u64,
        deadline: Instant,
        reads_after: Instant,
        job: Job,
    ) -> Result<(), String> {
        self.jobs.send(Work { id, deadline, reads_after, job }).map_err(|_| "no worker".to_string())
    }

    fn quiet_answers(&mut self) -> Vec<Answer> {
        std::mem::take(&mut *lock(&self.quiet))
    }

    fn set_prompt_mode(&mut self, on: bool) {
        self.prompt.store(on, Ordering::SeqCst);
    }

    /// Nothing in memory blocks: the worker goes on.
    fn abandon(&mut self) {}
}

enum GuardAsk {
    Arm(Option<Instant>, bool),
    FireNow,
    Exit,
}

/// The fence guard: a task of its own that outlives the node's loop.
struct MemGuard(mpsc::UnboundedSender<GuardAsk>);

impl MemGuard {
    fn start(world: Arc<World>, me: NodeId, news: mpsc::UnboundedSender<GuardNews>) -> MemGuard {
        let (asks, mut asked) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut deadline: Option<Instant> = None;
            let mut open = true;
            let fire = |world: &World| {
                lock(&world.running).retain(|(n, _, _)| *n != me);
                lock(&world.fired).insert(me);
            };
            loop {
                let until = deadline.map(|d| world.tokio_at(d));
                let sleep = async {
                    match until {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    () = sleep => {
                        fire(&world);
                        let _ = news.send(GuardNews::Fired);
                        return;
                    }
                    ask = asked.recv(), if open => match ask {
                        // The daemon is gone: its last deadline stands.
                        None => open = false,
                        Some(GuardAsk::Arm(new, keep_earlier)) => match (deadline, new) {
                            (Some(old), Some(new)) if keep_earlier && old < new => {
                                let _ = news.send(GuardNews::Keeps { sent: new.0, kept: old.0 });
                            }
                            _ => deadline = new,
                        },
                        Some(GuardAsk::FireNow) => return fire(&world),
                        Some(GuardAsk::Exit) => return,
                    },
                }
            }
        });
        MemGuard(asks)
    }
}

impl super::FenceGuard for MemGuard {
    fn arm(&mut self, deadline: Option<Instant>, keep_earlier: bool) {
        let _ = self.0.send(GuardAsk::Arm(deadline, keep_earlier));
    }

    fn fire_now(&mut self) -> io::Result<()> {
        self.0.send(GuardAsk::FireNow).map_err(|_| io::Error::other("the guard is gone"))
    }

    fn exit(&mut self) {
        let _ = self.0.send(GuardAsk::Exit);
    }

    fn wait_gone(&mut self, _: Duration) -> bool {
        true
    }
}

/// Agents of a pretend resource: started, it runs until stopped (or the guard fires).
struct MemAgents {
    world: Arc<World>,
    me: NodeId,
    done: mpsc::UnboundedSender<Done>,
    quiet: Arc<Mutex<Vec<Done>>>,
}

impl super::AgentRunner for MemAgents {
    fn start(&mut self, id: OpId, group: GroupId, resource: ResourceId, op: OpKind, _: Duration) {
        let (world, me, done, quiet) =
            (self.world.clone(), self.me, self.done.clone(), self.quiet.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let key = (me, group, resource);
            let mut running = lock(&world.running);
            let result = match op {
                OpKind::Start => {
                    let others: Vec<_> = running
                        .iter()
                        .filter(|(n, g, r)| *n != me && *g == group && *r == resource)
                        .collect();
                    if !others.is_empty() {
                        lock(&world.double).push(format!("{key:?} started while {others:?} ran"));
                    }
                    running.insert(key);
                    OpResult::Ok
                }
                OpKind::Stop => {
                    running.remove(&key);
                    OpResult::Ok
                }
                OpKind::Monitor | OpKind::Probe => match running.contains(&key) {
                    true => OpResult::Ok,
                    false => OpResult::NotRunning,
                },
            };
            drop(running);
            let quietly = op == OpKind::Monitor && result == OpResult::Ok;
            let answer = Done {
                id,
                group,
                resource,
                op,
                result,
                detail: None,
                took: Duration::from_millis(5),
            };
            if quietly {
                lock(&quiet).push(answer);
            } else {
                let _ = done.send(answer);
            }
        });
    }

    fn quiet(&mut self) -> Vec<Done> {
        std::mem::take(&mut *lock(&self.quiet))
    }
}

struct MemStandby;

impl super::StandbyLock for MemStandby {
    fn set_read_only(&mut self, _: Vec<PathBuf>) {}
}

/// The loop's timer: a tokio sleep until the instant set.
struct MemTimer {
    world: Arc<World>,
    at: Instant,
}

impl super::LoopTimer for MemTimer {
    fn set(&mut self, at: Instant) -> io::Result<()> {
        self.at = at;
        Ok(())
    }

    async fn expired(&mut self) {
        if self.at == Instant::MAX {
            return std::future::pending().await;
        }
        tokio::time::sleep_until(self.world.tokio_at(self.at)).await;
        self.at = Instant::MAX;
    }
}

/// Stop requests come on a channel; no watchdog; the process's end is a panic of the
/// node's task.
struct MemService(mpsc::UnboundedReceiver<()>);

impl super::Service for MemService {
    async fn stop_requested(&mut self) {
        if self.0.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }

    fn watchdog_interval(&self) -> Option<Duration> {
        None
    }

    fn feed_watchdog(&mut self) {}
    fn ready(&mut self) {}
    fn stopping(&mut self) {}

    fn restart_in_place(&mut self) -> io::Error {
        io::Error::other("no restart in memory")
    }

    fn exit(&mut self, code: i32) -> ! {
        panic!("the node exited with {code}")
    }
}

const CONFIG: &str = r#"
[cluster]
name = "memory"
key_file = "/nonexistent"

[[node]]
name = "alpha"
addresses = { net = "127.0.0.1:1" }
api = "127.0.0.1:1"

[[node]]
name = "beta"
addresses = { net = "127.0.0.1:2" }
api = "127.0.0.1:2"

[[link]]
name = "net"
kind = "udp"

[[link]]
name = "disk"
kind = "disk"
path = "/nonexistent"

[arbitration]
kind = "disk"

[[group]]
name = "web"
nodes = ["alpha", "beta"]

  [[group.resource]]
  name = "pretend"
  kind = "process"
  command = ["/nonexistent"]
  monitor = { interval = "200ms", timeout = "1s" }
  stop_timeout = "100ms"
"#;

/// A node of the world, its loop started on the current `LocalSet`: the loop's task
/// and the sender of its stop requests.
fn start_node(
    world: &Arc<World>,
    config: &config::Config,
    me: NodeId,
    dir: &std::path::Path,
) -> (tokio::task::JoinHandle<anyhow::Result<()>>, mpsc::UnboundedSender<()>) {
    let spec = Arc::new(config.cluster.clone());
    let name = spec.node(me).name.clone();
    let key = wire::Key::new([7; 32]);
    let cluster_id = wire::ClusterId::from_name(&spec.name);
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    lock(&world.inboxes).insert(me, inbox_tx);
    let mut receivers = BTreeMap::new();
    let mut disk_link = None;
    for link in spec.link_ids() {
        match config.link(link) {
            config::LinkConfig::Udp { .. } => {
                let route = wire::Route { link, to: Some(me) };
                receivers.insert(link, wire::Receiver::new(key.clone(), cluster_id, route));
            }
            config::LinkConfig::Disk { .. } => disk_link = Some(link),
        }
    }
    let (answers_tx, answers) = mpsc::unbounded_channel();
    let (done_tx, done) = mpsc::unbounded_channel();
    let (news_tx, guard) = mpsc::unbounded_channel();
    let (calls_tx, calls) = mpsc::channel(1);
    let (stop_tx, stop) = mpsc::unbounded_channel();
    let parts = Parts::<Memory> {
        clock: MemClock(world.clone()),
        links: MemLinks {
            inbox,
            world: world.clone(),
            me,
            ahead: None,
            batch: Vec::new(),
            receivers,
        },
        disk: disk_link.map(|link| (link, MemDisk::start(world.clone(), me, answers_tx))),
        guard: MemGuard::start(world.clone(), me, news_tx),
        agents: MemAgents { world: world.clone(), me, done: done_tx, quiet: Arc::default() },
        standby: MemStandby,
        timer: MemTimer { world: world.clone(), at: Instant::MAX },
        service: MemService(stop),
    };
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let incarnation = crate::journal::next_incarnation(dir, wall.as_micros() as u64, 0).unwrap();
    let core = NodeCore::new(spec.clone(), me, incarnation, world.now(), None, Duration::ZERO);
    let shell = Shell {
        spec: spec.clone(),
        me,
        core,
        journal: crate::journal::Writer::start(dir, &name).unwrap(),
        seen: crate::seen::Seen::start(dir, &spec, &BTreeMap::new()).unwrap(),
        key,
        lock_standby: BTreeMap::new(),
        newest: BTreeMap::new(),
    };
    let mut node = Node::new(shell, parts);
    let receivers = Receivers { answers, done, calls, guard };
    let task = tokio::task::spawn_local(async move {
        let _calls = calls_tx;
        node.run(receivers).await
    });
    (task, stop_tx)
}

/// Waits until `what` holds, at most `within`: whether it did.
async fn until(within: Duration, what: impl Fn() -> bool) -> bool {
    let end = tokio::time::Instant::now() + within;
    while !what() {
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

#[test]
fn the_same_loop_over_an_in_memory_platform_starts_a_group_then_fails_it_over() {
    let (config, _) = config::parse(CONFIG, "cluster.toml").expect("the test's configuration");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let world = World::new();
        let (alpha, beta, web) = (NodeId(0), NodeId(1), GroupId(0));
        let (alpha_loop, _stop_alpha) = start_node(&world, &config, alpha, dirs[0].path());
        let (beta_loop, _stop_beta) = start_node(&world, &config, beta, dirs[1].path());
        // The group starts on its first node, alpha, under a lease on the in-memory disk.
        let started = until(Duration::from_secs(20), || world.runs(alpha, web)).await;
        assert!(started, "the group did not start on alpha");
        assert!(!world.runs(beta, web), "the group runs on beta too");
        assert!(lock(&world.records).contains_key(&Block::Group(web)), "no group lease written");
        // Alpha's loop stops (as a hung or killed daemon's): nothing renews its lease,
        // its guard fires at its deadline and stops the resource, then beta takes over.
        alpha_loop.abort();
        let _ = alpha_loop.await;
        let moved = until(Duration::from_secs(20), || world.runs(beta, web)).await;
        assert!(moved, "the group did not fail over to beta");
        assert!(lock(&world.fired).contains(&alpha), "alpha's guard did not fire");
        assert!(!world.runs(alpha, web), "the group still runs on alpha");
        let double = lock(&world.double).clone();
        assert!(double.is_empty(), "both nodes ran the group: {double:?}");
        assert!(!beta_loop.is_finished(), "beta's loop ended");
        beta_loop.abort();
    });
}

#[test]
fn a_stop_request_hands_the_group_over_and_ends_the_loop_cleanly() {
    let (config, _) = config::parse(CONFIG, "cluster.toml").expect("the test's configuration");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let world = World::new();
        let (alpha, beta, web) = (NodeId(0), NodeId(1), GroupId(0));
        let (alpha_loop, stop_alpha) = start_node(&world, &config, alpha, dirs[0].path());
        let (beta_loop, _stop_beta) = start_node(&world, &config, beta, dirs[1].path());
        assert!(until(Duration::from_secs(20), || world.runs(alpha, web)).await);
        // SIGTERM's counterpart: alpha stops the group, releases its lease and exits.
        stop_alpha.send(()).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(20), alpha_loop).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "alpha's loop did not end cleanly: {ended:?}");
        assert!(!world.runs(alpha, web), "the group still runs on alpha");
        assert!(until(Duration::from_secs(20), || world.runs(beta, web)).await, "not handed over");
        assert!(!lock(&world.fired).contains(&alpha), "alpha's guard fired on a clean stop");
        assert!(lock(&world.double).is_empty(), "both nodes ran the group");
        beta_loop.abort();
    });
}
