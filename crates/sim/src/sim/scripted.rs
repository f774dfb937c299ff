//! The scripted API: what scenario tests and the swarm do to a cluster: crash and restart
//! hosts; kill, pause, resume and stop daemons; cut and heal links; lose and restore
//! storage; fail, hang and crash resources; NIC faults; admin commands; poison pills. Each
//! action is written to the timeline. It must only change the world (or hand an engine an
//! input, as the real daemon would): never an engine's state.

use std::time::Duration;

use arbiter::disk::{Block, Pill, Record};
use engine::{AdminCommand, GroupId, LinkId, LinkKind, NodeId, ResourceId};

use super::world::{Arrival, Paused};
use super::{Ev, Sim};
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
        let host = &self.hosts[usize::from(node.0)];
        let Some(daemon) = host.daemon.as_ref() else { return self };
        if daemon.core.shutdown_by().is_some() {
            self.daemon_stopped(
                node,
                false,
                "second stop signal: exiting at once, the fence guard stays armed",
            );
            return self;
        }
        self.wake_node(node, Arrival::Stop);
        self
    }

    /// A poison pill for `node`'s current daemon (the incarnation its host record shows)
    /// from `from` (`None`: an operator's `tandem disk fence`), left in its mailbox on
    /// the shared disk: the node core reads it with a disk job within a second (if its
    /// path to the disk works; a pill the node cannot read is lost to it, and its peers
    /// cannot count on it).
    pub fn poison_pill(&mut self, node: NodeId, from: Option<NodeId>) -> &mut Self {
        let name = self.node_name(node).to_owned();
        let by = from.map_or("an operator".to_owned(), |f| self.node_name(f).to_owned());
        self.action(format!("poison pill for {name} from {by}"));
        let incarnation = self.hosts[usize::from(node.0)].incarnation;
        let pill = Record::Pill(Pill { from, incarnation, at_unix: 0 });
        self.disk.write(Block::Mailbox(node), pill, false);
        self
    }

    /// The daemon's loop stops (SIGSTOP, a call that hangs): its engine gets no input and
    /// none of its timers fire; what reaches it waits for [`Sim::resume_daemon`]. The
    /// host, its resources and its fence guard go on: the guard acts at its deadline.
    pub fn pause_daemon(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("pause daemon {name}"));
        if let Some(daemon) = self.hosts[usize::from(node.0)].daemon.as_mut() {
            if daemon.paused.is_none() {
                daemon.paused = Some(Paused { backlog: Vec::new() });
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
    /// standby. Otherwise its core is handed what it missed, in arrival order, and wakes
    /// once.
    pub fn resume_daemon(&mut self, node: NodeId) -> &mut Self {
        let name = self.node_name(node).to_owned();
        self.action(format!("resume daemon {name}"));
        let local = self.local(node);
        let Some(daemon) = self.hosts[usize::from(node.0)].daemon.as_mut() else { return self };
        let Some(paused) = daemon.paused.take() else { return self };
        daemon.timer.at_ns = None;
        daemon.timer.generation += 1;
        // Everything that arrived goes to the core (which first checks its guard's
        // deadline: past it, `Action::Stalled`), then one wake-up.
        for arrival in paused.backlog {
            // The disk worker is a thread of the stopped process: an answer whose I/O
            // returned during the pause is stamped when the worker runs again.
            let arrival = match arrival {
                Arrival::Disk(mut answer) => {
                    answer.done_at = answer.done_at.max(local);
                    Arrival::Disk(answer)
                }
                arrival => arrival,
            };
            daemon.arrive(local, arrival);
        }
        daemon.wake(local);
        self.settle(node);
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
        self.change_link("cut", link, a, b, true, true)
    }

    /// Cuts one direction of a link: `to` stops hearing `from`.
    pub fn cut_one_way(&mut self, link: LinkId, from: NodeId, to: NodeId) -> &mut Self {
        self.change_link("cut", link, from, to, false, true)
    }

    pub fn heal(&mut self, link: LinkId, a: NodeId, b: NodeId) -> &mut Self {
        self.change_link("heal", link, a, b, true, false)
    }

    /// Cuts (`cut`) or heals `link` from `from` to `to`, and back too if `both`; the
    /// timeline says `verb`.
    fn change_link(
        &mut self,
        verb: &str,
        link: LinkId,
        from: NodeId,
        to: NodeId,
        both: bool,
        cut: bool,
    ) -> &mut Self {
        let arrow = if both { "-" } else { "->" };
        let (name, a, b) = (&self.spec.link(link).name, self.node_name(from), self.node_name(to));
        let text = format!("{verb} {name} {a}{arrow}{b}");
        self.action(text);
        self.set_link_cut(link, from, to, cut);
        if both {
            self.set_link_cut(link, to, from, cut);
        }
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
        self.wake_node(node, Arrival::Admin(command));
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
