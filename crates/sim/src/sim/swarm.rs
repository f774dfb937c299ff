//! The swarm: a seed's fault plan ([`SwarmPlan`]) run against the cluster. A safety phase
//! injects faults at the plan's rates (partitions, host and daemon crashes, storage loss,
//! resource crashes, NIC faults, witness cuts, admin commands, daemon pauses), each healed
//! after a drawn duration; then everything heals and, after [`liveness_bound`], L1 and L2
//! are checked. It must draw every random choice from the run's generator in a fixed
//! order (the trace hashes depend on it) and must not touch an engine's state: it acts
//! through the scripted API, the world's operations and the event queue.

use std::time::Duration;

use engine::{
    AdminCommand, ArbitrationKind, ClusterSpec, GroupId, LinkId, LinkKind, NodeId, ResourceId,
    ResourceKind,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Ev, FenceGuardRule, Options, Sim, MS, SEC};
use crate::agents::AgentParams;
use crate::core::Core;
use crate::faults::{Rate, SwarmPlan};
use crate::net::between;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Safety,
    Liveness,
    Done,
}

/// A fault the swarm injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FaultKind {
    Partition,
    HostCrash,
    DaemonCrash,
    StorageLoss,
    ResourceCrash,
    NicFault,
    WitnessCut,
    Admin,
    DaemonPause,
    DaemonRestart,
    WallStep,
    StateDirLoss,
}

/// The end of a fault the swarm injected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Healing {
    /// Heal these (link, from, to) UDP directions and disk-slot pairs.
    Links {
        udp: Vec<(LinkId, NodeId, NodeId)>,
        disk: Vec<(NodeId, NodeId)>,
    },
    Storage(NodeId),
    Nic(NodeId, GroupId, ResourceId),
    Witness {
        node: NodeId,
        up: bool,
        down: bool,
    },
}

pub(super) struct Swarm {
    pub(super) plan: SwarmPlan,
    pub(super) heal_at_ns: u64,
    pub(super) bound: Duration,
}

/// The time after healing within which every group must run on exactly one eligible
/// node and no group may be locked (L1, L2): boot and peer detection, a lease takeover,
/// an operation hung at the moment of healing, a monitor interval, a failback delay and
/// two complete stops and starts of the largest group, plus ten seconds of margin.
pub fn liveness_bound(spec: &ClusterSpec, agents: &AgentParams) -> Duration {
    let t = &spec.timing;
    let mut op_timeout = Duration::ZERO;
    let mut monitor = Duration::ZERO;
    let mut group_cycle = 0u64;
    let mut failback = Duration::ZERO;
    for group in &spec.groups {
        failback = failback.max(group.failback_delay);
        let mut cycle = 0;
        for r in &group.resources {
            op_timeout = op_timeout.max(r.start_timeout).max(r.stop_timeout).max(r.monitor_timeout);
            monitor = monitor.max(r.monitor_interval + r.monitor_timeout);
            cycle += agents.start_latency_ns.1 + agents.stop_latency_ns.1;
        }
        group_cycle = group_cycle.max(cycle);
    }
    t.startup_wait()
        + t.peer_timeout * 2
        + t.lease_takeover_wait()
        + t.lease_timeout
        + op_timeout
        + monitor
        + failback
        + Duration::from_nanos(2 * group_cycle)
        + Duration::from_secs(10)
}

impl<C: Core> Sim<C> {
    /// A swarm run of `duration`: the seed draws the fault plan; faults strike until the
    /// liveness bound before the end, then everything heals and L1/L2 are checked.
    pub fn swarm(spec: ClusterSpec, seed: u64, duration: Duration, timeline: bool) -> Sim<C> {
        let plan = Self::swarm_plan(&spec, seed);
        Sim::swarm_with_plan(spec, seed, plan, duration, timeline)
    }

    /// The node core's rules from now on (daemons started later run them): the tests
    /// of broken node cores plant a bug here.
    pub fn with_rules(mut self, rules: nodecore::Rules) -> Self {
        self.options.rules = rules;
        self
    }

    /// The fault plan seed `seed` draws for `spec` ([`Sim::swarm`]).
    pub fn swarm_plan(spec: &ClusterSpec, seed: u64) -> SwarmPlan {
        let mut plan_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5357_4152_4d00_0000);
        SwarmPlan::draw(&mut plan_rng, spec)
    }

    /// [`Sim::swarm`] with a given plan (a seed's, edited: a regression seed found
    /// before a fault kind existed runs without it, as it was found).
    pub fn swarm_with_plan(
        spec: ClusterSpec,
        seed: u64,
        plan: SwarmPlan,
        duration: Duration,
        timeline: bool,
    ) -> Sim<C> {
        let options = Options {
            seed,
            timeline,
            clocks: Some(plan.clocks.clone()),
            boot_ns: Some(plan.boot_ns.clone()),
            udp: plan.udp,
            witness: plan.witness,
            disk: plan.disk,
            agents: plan.agents,
            io_timeout: None,
            witness_reply_timeout: Duration::from_millis(150),
            reset_delay_ns: (SEC, 30 * SEC),
            fence_guard: FenceGuardRule::AtDeadline,
            rules: nodecore::Rules::default(),
            wall_clocks: true,
        };
        let bound = liveness_bound(&spec, &plan.agents);
        let total = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let bound_ns = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        // At least a minute of faults, whatever the duration asked for.
        let heal_at_ns = total.saturating_sub(bound_ns).max(60 * SEC);
        let witness = spec.arbitration == ArbitrationKind::Witness;
        let mut sim = Sim::new(spec, options);
        let kinds = [
            (FaultKind::Partition, plan.partitions),
            (FaultKind::HostCrash, plan.host_crashes),
            (FaultKind::DaemonCrash, plan.daemon_crashes),
            (FaultKind::StorageLoss, plan.storage_loss),
            (FaultKind::ResourceCrash, plan.resource_crashes),
            (FaultKind::NicFault, plan.nic_faults),
            (FaultKind::WitnessCut, plan.witness_cuts.filter(|_| witness)),
            (FaultKind::Admin, plan.admin),
            (FaultKind::DaemonPause, plan.daemon_pauses),
            (FaultKind::DaemonRestart, plan.daemon_restarts),
            (FaultKind::WallStep, plan.wall_steps),
            (FaultKind::StateDirLoss, plan.state_dir_losses),
        ];
        for (kind, rate) in kinds {
            if let Some(rate) = rate {
                let gap = sim.gap(rate);
                sim.queue.push(gap, Ev::Inject(kind));
            }
        }
        sim.queue.push(heal_at_ns, Ev::HealAll);
        sim.queue.push(heal_at_ns + bound_ns, Ev::LivenessCheck);
        sim.swarm = Some(Swarm { plan, heal_at_ns, bound });
        sim
    }

    /// The swarm's fault plan, described.
    pub fn plan(&self) -> Option<String> {
        self.swarm.as_ref().map(|s| s.plan.to_string())
    }

    pub fn liveness(&self) -> Option<(u64, Duration)> {
        self.swarm.as_ref().map(|s| (s.heal_at_ns, s.bound))
    }

    // ----- faults and healing --------------------------------------------------------

    fn gap(&mut self, rate: Rate) -> u64 {
        self.rng.gen_range(1..=2 * rate.mean_gap_ns)
    }

    fn duration(&mut self, rate: Rate) -> u64 {
        between(&mut self.rng, rate.duration_ns.0, rate.duration_ns.1)
    }

    fn random_node(&mut self) -> NodeId {
        NodeId(self.rng.gen_range(0..self.spec.nodes.len()) as u16)
    }

    fn random_pair(&mut self) -> (NodeId, NodeId) {
        let a = self.random_node();
        let mut b = self.random_node();
        while b == a {
            b = self.random_node();
        }
        (a, b)
    }

    // Long because: one match over every fault kind of the swarm, each arm that
    // fault's whole injection and its healing scheduled.
    pub(super) fn inject(&mut self, kind: FaultKind) {
        if self.phase != Phase::Safety {
            return;
        }
        let Some(swarm) = self.swarm.as_ref() else { return };
        let plan = &swarm.plan;
        let rate = match kind {
            FaultKind::Partition => plan.partitions,
            FaultKind::HostCrash => plan.host_crashes,
            FaultKind::DaemonCrash => plan.daemon_crashes,
            FaultKind::StorageLoss => plan.storage_loss,
            FaultKind::ResourceCrash => plan.resource_crashes,
            FaultKind::NicFault => plan.nic_faults,
            FaultKind::WitnessCut => plan.witness_cuts,
            FaultKind::Admin => plan.admin,
            FaultKind::DaemonPause => plan.daemon_pauses,
            FaultKind::DaemonRestart => plan.daemon_restarts,
            FaultKind::WallStep => plan.wall_steps,
            FaultKind::StateDirLoss => plan.state_dir_losses,
        }
        .expect("only enabled kinds are scheduled");
        let gap = self.gap(rate);
        self.queue.push(self.now + gap, Ev::Inject(kind));
        let lasting = self.duration(rate);
        match kind {
            FaultKind::Partition => self.inject_partition(lasting),
            FaultKind::HostCrash => {
                let node = self.random_node();
                if self.hosts[usize::from(node.0)].powered {
                    self.crash(node);
                    self.queue.push(self.now + lasting, Ev::PowerOn { node });
                }
            }
            FaultKind::WallStep => {
                // Back by up to an hour, or forward by up to ten minutes.
                let node = self.random_node();
                let step = self.rng.gen_range(-3_600 * SEC as i64..=600 * SEC as i64);
                self.hosts[usize::from(node.0)].wall_offset_ns += step;
                let name = self.node_name(node).to_owned();
                self.action(format!("step {name}'s wall clock by {} s", step / SEC as i64));
            }
            FaultKind::StateDirLoss => {
                // The state dir lost (a replaced disk) or restored from its last backup,
                // then the daemon started again; a backup is taken now for next time.
                let node = self.random_node();
                let host = &mut self.hosts[usize::from(node.0)];
                let backup = (host.kept_incarnation, host.persisted_admin.clone());
                let lost = self.rng.gen_bool(0.5);
                let restored = match host.backup.replace(backup) {
                    Some(old) if !lost => old,
                    _ => (0, None),
                };
                (host.kept_incarnation, host.persisted_admin) = restored;
                let what = if lost { "lost" } else { "restored from a backup" };
                let name = self.node_name(node).to_owned();
                self.action(format!("{name}'s state dir {what}"));
                if self.hosts[usize::from(node.0)].daemon.is_some() {
                    self.kill_daemon(node);
                    self.queue.push(self.now + lasting, Ev::DaemonStart { node });
                }
            }
            FaultKind::DaemonRestart => {
                let node = self.random_node();
                let host = &mut self.hosts[usize::from(node.0)];
                let running = host.daemon.as_ref().is_some_and(|d| d.paused.is_none());
                // Also in maintenance: the daemon then parks its leases and leaves its
                // resources running (before parking, a peer ending the maintenance while
                // it was down started them beside them: S1, witness seed 1308).
                if running && host.restart_after_stop.is_none() {
                    host.restart_after_stop = Some(lasting);
                    self.shutdown(node);
                }
            }
            FaultKind::DaemonCrash => {
                let node = self.random_node();
                if self.hosts[usize::from(node.0)].daemon.is_some() {
                    self.kill_daemon(node);
                    self.queue.push(self.now + lasting, Ev::DaemonStart { node });
                }
            }
            FaultKind::StorageLoss => {
                let node = self.random_node();
                if self.disk.path_ok[usize::from(node.0)] {
                    self.lose_storage(node);
                    self.queue.push(self.now + lasting, Ev::Heal(Healing::Storage(node)));
                }
            }
            FaultKind::ResourceCrash => {
                let running = self.agents.running_anywhere(self.spec.nodes.len());
                if let Some((node, group, resource)) = running.choose(&mut self.rng).copied() {
                    self.crash_resource(node, group, resource);
                }
            }
            FaultKind::NicFault => {
                let nics: Vec<(GroupId, ResourceId)> = self
                    .spec
                    .group_ids()
                    .flat_map(|g| {
                        let group = self.spec.group(g);
                        (0..group.resources.len())
                            .map(|r| ResourceId(r as u16))
                            .filter(|r| group.resource(*r).kind == ResourceKind::Nic)
                            .map(move |r| (g, r))
                            .collect::<Vec<_>>()
                    })
                    .collect();
                if let Some((group, resource)) = nics.choose(&mut self.rng).copied() {
                    let node = self.random_node();
                    if self.agents.nic_up(node, group, resource) {
                        self.nic_down(node, group, resource);
                        self.queue.push(
                            self.now + lasting,
                            Ev::Heal(Healing::Nic(node, group, resource)),
                        );
                    }
                }
            }
            FaultKind::WitnessCut => {
                let node = self.random_node();
                let n = usize::from(node.0);
                let (up, down) = match self.rng.gen_range(0..3) {
                    0 => (true, false),
                    1 => (false, true),
                    _ => (true, true),
                };
                self.net.to_witness[n].cut |= up;
                self.net.from_witness[n].cut |= down;
                let name = self.node_name(node).to_owned();
                self.action(format!("cut witness {name} (to: {up}, from: {down})"));
                self.queue.push(self.now + lasting, Ev::Heal(Healing::Witness { node, up, down }));
            }
            FaultKind::Admin => {
                let command = self.random_admin();
                let live = self.live_nodes();
                if let Some(node) = live.choose(&mut self.rng).copied() {
                    self.admin(node, command);
                }
            }
            FaultKind::DaemonPause => {
                let node = self.random_node();
                let runs = self.hosts[usize::from(node.0)].daemon.as_ref();
                if runs.is_some_and(|d| d.paused.is_none()) {
                    let lasting = self.pause_length(rate);
                    self.pause_daemon_for(node, Duration::from_nanos(lasting));
                }
            }
        }
    }

    /// How long one pause lasts: a quarter of them end before the lease's stop point
    /// (nothing may move), a quarter around the fence guard's deadline (the stop point
    /// plus the grace, give or take two graces), half of them later, up to the plan's
    /// longest (several lease timeouts).
    fn pause_length(&mut self, rate: Rate) -> u64 {
        let timing = &self.spec.timing;
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let stop_point = nanos(timing.lease_timeout - timing.lease_stop_budget());
        let grace = nanos(timing.fence_guard_grace());
        let (shortest, longest) = rate.duration_ns;
        let (low, high) = match self.rng.gen_range(0..4) {
            0 => (shortest, stop_point),
            1 => (stop_point.saturating_sub(grace), stop_point + 3 * grace),
            _ => (stop_point, longest),
        };
        between(&mut self.rng, low.min(high), high.max(low))
    }

    fn inject_partition(&mut self, lasting: u64) {
        let (a, b) = self.random_pair();
        let udp: Vec<LinkId> =
            self.spec.link_ids().filter(|l| self.spec.link(*l).kind == LinkKind::Udp).collect();
        let mut cut_udp = Vec::new();
        let mut cut_disk = Vec::new();
        match self.rng.gen_range(0..5) {
            // One UDP link, both ways.
            0 if !udp.is_empty() => {
                let link = *udp.choose(&mut self.rng).expect("non-empty");
                cut_udp.extend([(link, a, b), (link, b, a)]);
            }
            // One UDP link, one way.
            1 if !udp.is_empty() => {
                let link = *udp.choose(&mut self.rng).expect("non-empty");
                cut_udp.push((link, a, b));
            }
            // The disk heartbeat between the pair.
            2 => cut_disk.extend([(a, b), (b, a)]),
            // Every link between the pair.
            3 => {
                for link in &udp {
                    cut_udp.extend([(*link, a, b), (*link, b, a)]);
                }
                cut_disk.extend([(a, b), (b, a)]);
            }
            // Node a isolated from every peer on every link.
            _ => {
                for peer in self.spec.node_ids().filter(|p| *p != a) {
                    for link in &udp {
                        cut_udp.extend([(*link, a, peer), (*link, peer, a)]);
                    }
                    cut_disk.extend([(a, peer), (peer, a)]);
                }
            }
        }
        if self.disk_link.is_none() {
            cut_disk.clear();
        }
        if cut_udp.is_empty() && cut_disk.is_empty() {
            return;
        }
        if self.timeline.is_some() {
            let mut parts: Vec<String> = cut_udp
                .iter()
                .map(|(l, f, t)| {
                    format!(
                        "{} {}->{}",
                        self.spec.link(*l).name,
                        self.node_name(*f),
                        self.node_name(*t)
                    )
                })
                .collect();
            parts.extend(
                cut_disk
                    .iter()
                    .map(|(f, t)| format!("disk {}->{}", self.node_name(*f), self.node_name(*t))),
            );
            self.action(format!("partition {}", parts.join(", ")));
        }
        for (link, from, to) in &cut_udp {
            self.set_udp_cut(*link, *from, *to, true);
        }
        for (from, to) in &cut_disk {
            self.disk.set_hidden(*from, *to, true);
        }
        let healing = Healing::Links { udp: cut_udp, disk: cut_disk };
        self.queue.push(self.now + lasting, Ev::Heal(healing));
    }

    fn random_admin(&mut self) -> AdminCommand {
        let groups = self.spec.groups.len();
        let group = GroupId(self.rng.gen_range(0..groups.max(1)) as u32);
        match self.rng.gen_range(0..10) {
            0..=2 if groups > 0 => {
                let to = if self.rng.gen_bool(0.5) { Some(self.random_node()) } else { None };
                AdminCommand::Switchover { group, to }
            }
            3 => AdminCommand::Drain(self.random_node()),
            4 | 5 => AdminCommand::Undrain(self.random_node()),
            6 => AdminCommand::Maintenance(self.rng.gen_bool(0.4)),
            _ if groups > 0 => {
                let count = self.spec.group(group).resources.len();
                let resource = (count > 0 && self.rng.gen_bool(0.3))
                    .then(|| ResourceId(self.rng.gen_range(0..count) as u16));
                AdminCommand::Clear { group, resource }
            }
            _ => AdminCommand::Maintenance(false),
        }
    }

    pub(super) fn heal_one(&mut self, healing: Healing) {
        match healing {
            Healing::Links { udp, disk } => {
                self.action("heal partition".to_owned());
                for (link, from, to) in udp {
                    self.set_udp_cut(link, from, to, false);
                }
                for (from, to) in disk {
                    self.disk.set_hidden(from, to, false);
                }
            }
            Healing::Storage(node) => {
                self.restore_storage(node);
            }
            Healing::Nic(node, group, resource) => {
                self.nic_up(node, group, resource);
            }
            Healing::Witness { node, up, down } => {
                let n = usize::from(node.0);
                if up {
                    self.net.to_witness[n].cut = false;
                }
                if down {
                    self.net.from_witness[n].cut = false;
                }
                let name = self.node_name(node).to_owned();
                self.action(format!("heal witness {name}"));
            }
        }
    }

    /// The start of the liveness phase: every fault healed, every host and daemon up,
    /// then maintenance off, every node undrained and every group cleared.
    pub(super) fn heal_all(&mut self) {
        self.phase = Phase::Liveness;
        self.action("heal everything (liveness phase)".to_owned());
        self.net.heal_all();
        self.agents.heal();
        self.disk.params.error_ppm = 0;
        self.disk.params.stall_ppm = 0;
        for node in self.spec.node_ids().collect::<Vec<_>>() {
            self.set_storage(node, true);
        }
        self.disk.heal();
        for node in self.spec.node_ids().collect::<Vec<_>>() {
            if self.is_paused(node) {
                self.resume_daemon(node);
            }
            let host = &mut self.hosts[usize::from(node.0)];
            if !host.powered {
                host.powered = true;
            }
            self.start_daemon(node);
        }
        let mut commands = vec![AdminCommand::Maintenance(false)];
        commands.extend(self.spec.node_ids().map(AdminCommand::Undrain));
        commands.extend(
            self.spec.group_ids().map(|group| AdminCommand::Clear { group, resource: None }),
        );
        for (i, command) in commands.into_iter().enumerate() {
            self.queue.push(self.now + 100 * MS + i as u64, Ev::Admin(command));
        }
    }

    pub(super) fn liveness_check(&mut self) {
        let mut locked = Vec::new();
        for node in self.spec.node_ids() {
            if let Some(status) = self.status(node) {
                for g in status.groups.iter().filter(|g| g.locked) {
                    locked.push((node, g.group));
                }
            }
        }
        self.checkers.check_liveness(self.now, &locked);
        self.phase = Phase::Done;
        self.action("liveness check".to_owned());
    }
}
