//! The scripted API: what scenario tests and the swarm do to a cluster: crash and restart
//! hosts; kill, pause, resume and stop daemons; cut and heal links; lose and restore
//! storage; fail, hang and crash resources; NIC faults; admin commands; poison pills. Each
//! action is written to the timeline. It must only change the world (or hand an engine an
//! input, as the real daemon would): never an engine's state.

use std::time::Duration;

use engine::{AdminCommand, GroupId, Input, LinkId, LinkKind, NodeId, ResourceId};

use super::world::Paused;
use super::{Ev, FenceGuardRule, Missed, Sim};
use crate::agents::Forced;
use crate::check::Change;
use crate::core::Core;

impl<C: Core> Sim<C> {
    /// The host crashes: its engine state is lost and its resources die at once. It stays
    /// down until [`Sim::restart`].
    pub fn crash(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("crash {name}"));
        self.power_off(node, "host crash", None);
        self
    }

    /// Powers a crashed host on, or starts a killed daemon again (new incarnation).
    pub fn restart(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("restart {name}"));
        let host = &mut self.hosts[usize::from(node.0)];
        if host.powered {
            self.start_daemon(node);
        } else {
            host.powered = true;
            self.start_daemon(node);
        }
        self
    }

    /// The daemon dies; the host and its resources keep running, and the last fence guard
    /// the engine armed stays armed.
    pub fn kill_daemon(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("kill daemon {name}"));
        self.daemon_gone(node);
        self
    }

    /// The daemon gets a stop signal, as `tandem node` on SIGTERM: its engine gets
    /// `Input::Shutdown` and hands its groups over; the daemon exits once the engine is
    /// quiescent (its fence guard told to exit, disarmed) or at the shutdown deadline
    /// ([`ClusterSpec::shutdown_budget`] after the signal) with its guard left armed; a
    /// second signal makes it exit at once, the guard left armed. A paused daemon takes
    /// the signal when it resumes (its deadline counts from the signal). The host and
    /// whatever still runs on it stay; `restart` starts a daemon again.
    ///
    /// [`ClusterSpec::shutdown_budget`]: engine::ClusterSpec::shutdown_budget
    pub fn shutdown(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("shutdown {name}"));
        let local = self.local(node);
        let budget = self.spec.shutdown_budget();
        let host = &mut self.hosts[usize::from(node.0)];
        let Some(daemon) = host.daemon.as_mut() else { return self };
        if daemon.shutdown_by.is_some() {
            self.daemon_stopped(
                node,
                false,
                "second stop signal: exiting at once, the fence guard stays armed",
            );
            return self;
        }
        let by = local + budget;
        daemon.shutdown_by = Some(by);
        let boot = daemon.boot;
        if let Some(real) = host.clock.real_at(by) {
            self.queue.push(real.max(self.now), Ev::ShutdownDue { node, boot });
        }
        self.feed(node, Some(Input::Shutdown));
        self
    }

    /// A poison pill for `node`'s current daemon (the incarnation its disk slot shows)
    /// from `from` (`None`: an operator's `tandem disk fence`). The model reads it at
    /// once if the node's path to the shared disk works (the real daemon reads its
    /// mailbox with a disk job within a second), else it is lost, as a pill the node
    /// cannot read is: its peers cannot count on it.
    pub fn poison_pill(&mut self, node: NodeId, from: Option<NodeId>) -> &mut Self {
        let name = self.node_name(node).to_owned();
        let by = from.map_or("an operator".to_owned(), |f| self.node_name(f).to_owned());
        self.action(format!("poison pill for {name} from {by}"));
        let n = usize::from(node.0);
        let incarnation = self.hosts[n].incarnation;
        if self.hosts[n].daemon.is_some() && self.disk.path_ok[n] {
            self.feed(node, Some(Input::PoisonPill { incarnation, from }));
        }
        self
    }

    /// The daemon's loop stops (SIGSTOP, a call that hangs): its engine gets no input and
    /// none of its timers fire; what reaches it waits for [`Sim::resume_daemon`]. The
    /// host, its resources and its fence guard go on: the guard acts at its deadline.
    pub fn pause_daemon(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("pause daemon {name}"));
        let now = self.now;
        if let Some(daemon) = self.hosts[usize::from(node.0)].daemon.as_mut() {
            if daemon.paused.is_none() {
                daemon.paused = Some(Paused { since_ns: now, backlog: Vec::new() });
            }
        }
        self
    }

    /// [`Sim::pause_daemon`] for `lasting`, then [`Sim::resume_daemon`] (unless the
    /// daemon was replaced meanwhile).
    pub fn pause_daemon_for(&mut self, node: NodeId, lasting: Duration) -> &mut Self {
        self.pause_daemon(node);
        let lasting = u64::try_from(lasting.as_nanos()).unwrap_or(u64::MAX);
        if let Some(boot) = self.hosts[usize::from(node.0)].daemon.as_ref().map(|d| d.boot) {
            self.queue.push(self.now.saturating_add(lasting), Ev::DaemonResume { node, boot });
        }
        self
    }

    /// A paused daemon's loop runs again, its clock having jumped. As the real daemon
    /// does at every wake-up, it first checks the last deadline it gave its fence guard:
    /// if that has passed, the guard has stopped (or now stops) every resource and the
    /// daemon restarts as a new incarnation (E3112), which probes and rejoins as
    /// standby. Otherwise its engine is handed what it missed, in arrival order, then a
    /// Timeout.
    pub fn resume_daemon(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("resume daemon {name}"));
        let n = usize::from(node.0);
        let rule = self.options.fence_guard;
        let local = self.local(node);
        let host = &mut self.hosts[n];
        let armed_by = host.guard_armed_by;
        let Some(daemon) = host.daemon.as_mut() else { return self };
        let Some(paused) = daemon.paused.take() else { return self };
        let boot = daemon.boot;
        let deadline = daemon.fence_given.filter(|d| *d <= local);
        if let (FenceGuardRule::AtDeadline, Some(deadline)) = (rule, deadline) {
            // It waits for its guard (armed by this daemon, so its deadline is the one
            // that passed) and starts again in place.
            if armed_by == boot {
                self.fire_guard(node);
            }
            let stalled = Duration::from_nanos(self.now - paused.since_ns).as_millis();
            let late = local.saturating_since(deadline).as_millis();
            let code = &engine::catalogue::DAEMON_STALLED;
            *self.codes.entry(code.code).or_default() += 1;
            self.note(|w| {
                format!(
                    "{name:<w$}  {}  this daemon's loop did not run for {stalled}ms; the fence \
                     guard fired ({late}ms ago): restarting as standby",
                    code.code
                )
            });
            self.hosts[n].daemon = None;
            self.start_daemon(node);
            return self;
        }
        let daemon = self.hosts[n].daemon.as_mut().expect("checked");
        daemon.timer.at_ns = None;
        daemon.timer.generation += 1;
        for missed in paused.backlog {
            if self.daemon_mut(node, boot).is_none() {
                return self; // it fenced itself: nothing else reaches this engine
            }
            match missed {
                Missed::Event(ev) => self.dispatch(ev),
                Missed::Input(input) => self.feed(node, Some(input)),
                Missed::IoDone { io, result, deadline_ns } => {
                    self.io_done(node, boot, io, result, deadline_ns)
                }
            }
        }
        if self.daemon_mut(node, boot).is_some() {
            self.feed(node, Some(Input::Timeout));
        }
        self
    }

    /// Whether the node's daemon is paused.
    pub fn is_paused(&self, node: NodeId) -> bool {
        self.hosts[usize::from(node.0)].daemon.as_ref().is_some_and(|d| d.paused.is_some())
    }

    pub(super) fn set_udp_cut(&mut self, link: LinkId, from: NodeId, to: NodeId, cut: bool) {
        self.net.set_cut(usize::from(link.0), usize::from(from.0), usize::from(to.0), cut);
    }

    fn set_link_cut(&mut self, link: LinkId, from: NodeId, to: NodeId, cut: bool) {
        match self.spec.link(link).kind {
            LinkKind::Udp => self.set_udp_cut(link, from, to, cut),
            LinkKind::Disk => self.disk.set_hidden(from, to, cut),
        }
    }

    /// Cuts a link between two nodes in both directions (the disk link: their heartbeat
    /// slots; the lease area stays reachable).
    pub fn cut(&mut self, link: LinkId, a: NodeId, b: NodeId) -> &mut Self {
        let text = format!(
            "cut {} {}-{}",
            self.spec.link(link).name,
            self.node_name(a),
            self.node_name(b)
        );
        self.action(text);
        self.set_link_cut(link, a, b, true);
        self.set_link_cut(link, b, a, true);
        self
    }

    /// Cuts one direction of a link: `to` stops hearing `from`.
    pub fn cut_one_way(&mut self, link: LinkId, from: NodeId, to: NodeId) -> &mut Self {
        let text = format!(
            "cut {} {}->{}",
            self.spec.link(link).name,
            self.node_name(from),
            self.node_name(to)
        );
        self.action(text);
        self.set_link_cut(link, from, to, true);
        self
    }

    pub fn heal(&mut self, link: LinkId, a: NodeId, b: NodeId) -> &mut Self {
        let text = format!(
            "heal {} {}-{}",
            self.spec.link(link).name,
            self.node_name(a),
            self.node_name(b)
        );
        self.action(text);
        self.set_link_cut(link, a, b, false);
        self.set_link_cut(link, b, a, false);
        self
    }

    /// Cuts every link between two nodes, both ways.
    pub fn cut_all(&mut self, a: NodeId, b: NodeId) -> &mut Self {
        let text = format!("cut every link {}-{}", self.node_name(a), self.node_name(b));
        self.action(text);
        for link in self.spec.link_ids().collect::<Vec<_>>() {
            self.set_link_cut(link, a, b, true);
            self.set_link_cut(link, b, a, true);
        }
        self
    }

    pub fn heal_all_links(&mut self, a: NodeId, b: NodeId) -> &mut Self {
        let text = format!("heal every link {}-{}", self.node_name(a), self.node_name(b));
        self.action(text);
        for link in self.spec.link_ids().collect::<Vec<_>>() {
            self.set_link_cut(link, a, b, false);
            self.set_link_cut(link, b, a, false);
        }
        self
    }

    pub(super) fn set_storage(&mut self, node: NodeId, ok: bool) {
        let n = usize::from(node.0);
        if self.disk.path_ok[n] == ok {
            return;
        }
        // The daemon learns it from its own I/O (`storage_result`).
        self.disk.path_ok[n] = ok;
    }

    /// The node's path to the shared disk fails (disk heartbeats, leases, file systems).
    pub fn lose_storage(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("lose storage {name}"));
        self.set_storage(node, false);
        self
    }

    pub fn restore_storage(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("restore storage {name}"));
        self.set_storage(node, true);
        self
    }

    fn resource_name(&self, group: GroupId, resource: ResourceId) -> String {
        let g = self.spec.group(group);
        format!("{}/{}", g.name, g.resource(resource).name)
    }

    /// Injects `count` failures (u32::MAX: until healed) into the resource's next
    /// operations of one kind.
    pub fn force(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        what: &str,
        set: impl FnOnce(&mut Forced),
    ) -> &mut Self {
        let text =
            format!("{what} {} {}", self.node_name(node), self.resource_name(group, resource));
        self.action(text);
        self.agents.force(node, group, resource, set);
        self
    }

    /// The resource's next monitor answers "failed".
    pub fn fail_monitor(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
    ) -> &mut Self {
        self.force(node, group, resource, "fail monitor", |f| f.monitor_fail += 1)
    }

    /// The resource's next `count` starts fail.
    pub fn fail_start(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        count: u32,
    ) -> &mut Self {
        self.force(node, group, resource, "fail start", |f| f.start_fail = count)
    }

    /// The resource's next `count` stops fail.
    pub fn fail_stop(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        count: u32,
    ) -> &mut Self {
        self.force(node, group, resource, "fail stop", |f| f.stop_fail = count)
    }

    /// The resource's next `count` operations hang until their timeout.
    pub fn hang(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        count: u32,
    ) -> &mut Self {
        self.force(node, group, resource, "hang", |f| f.hang = count)
    }

    /// The resource dies by itself (a later monitor finds it not running).
    pub fn crash_resource(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
    ) -> &mut Self {
        let text = format!(
            "crash resource {} {}",
            self.node_name(node),
            self.resource_name(group, resource)
        );
        self.action(text);
        if self.agents.crash(node, group, resource) {
            self.ground_truth(node, group, resource, Change::Crashed, "");
        }
        self
    }

    /// The interface a `nic` resource watches goes down on one node.
    pub fn nic_down(&mut self, node: NodeId, group: GroupId, resource: ResourceId) -> &mut Self {
        let text =
            format!("nic down {} {}", self.node_name(node), self.resource_name(group, resource));
        self.action(text);
        self.agents.set_nic(node, group, resource, false);
        self
    }

    pub fn nic_up(&mut self, node: NodeId, group: GroupId, resource: ResourceId) -> &mut Self {
        let text =
            format!("nic up {} {}", self.node_name(node), self.resource_name(group, resource));
        self.action(text);
        self.agents.set_nic(node, group, resource, true);
        self
    }

    /// Gives an administrative command to a node (dropped if its daemon is down).
    pub fn admin(&mut self, node: NodeId, command: AdminCommand) -> &mut Self {
        let text = format!("admin {}: {}", self.node_name(node), self.describe_admin(&command));
        self.action(text);
        if self.hosts[usize::from(node.0)].daemon.is_some() {
            self.feed(node, Some(Input::Admin(command)));
        }
        self
    }

    fn describe_admin(&self, command: &AdminCommand) -> String {
        match command {
            AdminCommand::Switchover { group, to } => {
                let to = to.map_or(String::new(), |n| format!(" to {}", self.node_name(n)));
                format!("switchover {}{to}", self.spec.group(*group).name)
            }
            AdminCommand::Drain(n) => format!("drain {}", self.node_name(*n)),
            AdminCommand::Undrain(n) => format!("undrain {}", self.node_name(*n)),
            AdminCommand::Maintenance(on) => {
                format!("maintenance {}", if *on { "on" } else { "off" })
            }
            AdminCommand::Clear { group, resource } => match resource {
                Some(r) => format!("clear {}", self.resource_name(*group, *r)),
                None => format!("clear {}", self.spec.group(*group).name),
            },
        }
    }
}
