//! Simulated resource agents and their ground truth: which resource of which group
//! really runs on which node, and what each Start/Stop/Monitor/Probe answers, with
//! injected faults (failed starts, stops and monitors, hangs that the executor ends with
//! a timeout, NICs down). `nic` resources are never started or stopped: their monitor
//! tells whether the node's interface is up.
//!
//! It decides outcomes only; the simulator schedules completions and tells the checkers.
//! It must not know engines, events or time.

use std::collections::BTreeMap;

use engine::{GroupId, NodeId, OpKind, OpResult, ResourceId};
use rand_chacha::ChaCha8Rng;

use crate::check::Change;
use crate::net::{between, chance};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentParams {
    pub start_latency_ns: (u64, u64),
    pub stop_latency_ns: (u64, u64),
    /// Monitors and probes.
    pub monitor_latency_ns: (u64, u64),
    pub start_fail_ppm: u32,
    pub stop_fail_ppm: u32,
    pub monitor_fail_ppm: u32,
    pub hang_ppm: u32,
}

impl AgentParams {
    pub const fn fixed(start_ns: u64, stop_ns: u64, monitor_ns: u64) -> AgentParams {
        AgentParams {
            start_latency_ns: (start_ns, start_ns),
            stop_latency_ns: (stop_ns, stop_ns),
            monitor_latency_ns: (monitor_ns, monitor_ns),
            start_fail_ppm: 0,
            stop_fail_ppm: 0,
            monitor_fail_ppm: 0,
            hang_ppm: 0,
        }
    }

    pub fn healed(self) -> AgentParams {
        AgentParams {
            start_fail_ppm: 0,
            stop_fail_ppm: 0,
            monitor_fail_ppm: 0,
            hang_ppm: 0,
            ..self
        }
    }
}

/// Faults injected by a script into the next operations of one resource.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forced {
    pub start_fail: u32,
    pub stop_fail: u32,
    pub monitor_fail: u32,
    pub hang: u32,
}

/// What an operation will do, decided when it is issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    Normal,
    Fail,
    /// The agent hangs and the executor kills it at the operation's timeout. A killed
    /// start may already have started the resource (`took_effect`).
    Hang {
        took_effect: bool,
    },
}

pub struct Agents {
    groups: usize,
    /// [node * groups + group]: bit r while resource r runs.
    running: Vec<u64>,
    /// [node * groups + group]: bit r while the NIC a `nic` resource watches is down.
    nic_down: Vec<u64>,
    pub params: AgentParams,
    forced: BTreeMap<(NodeId, GroupId, ResourceId), Forced>,
}

impl Agents {
    pub fn new(nodes: usize, groups: usize, params: AgentParams) -> Agents {
        Agents {
            groups,
            running: vec![0; nodes * groups],
            nic_down: vec![0; nodes * groups],
            params,
            forced: BTreeMap::new(),
        }
    }

    fn slot(&self, node: NodeId, group: GroupId) -> usize {
        usize::from(node.0) * self.groups + group.0 as usize
    }

    pub fn is_running(&self, node: NodeId, group: GroupId, resource: ResourceId) -> bool {
        self.running[self.slot(node, group)] & (1 << resource.0) != 0
    }

    /// The resources running on `node`, as (group, resource).
    pub fn running_on(&self, node: NodeId) -> Vec<(GroupId, ResourceId)> {
        let mut list = Vec::new();
        for g in 0..self.groups {
            let group = GroupId(g as u32);
            let mut bits = self.running[self.slot(node, group)];
            while bits != 0 {
                let r = bits.trailing_zeros() as u16;
                bits &= bits - 1;
                list.push((group, ResourceId(r)));
            }
        }
        list
    }

    /// Every resource (node, group, resource) running anywhere.
    pub fn running_anywhere(&self, nodes: usize) -> Vec<(NodeId, GroupId, ResourceId)> {
        (0..nodes)
            .flat_map(|n| {
                let node = NodeId(n as u16);
                self.running_on(node).into_iter().map(move |(g, r)| (node, g, r))
            })
            .collect()
    }

    /// Kills a running resource (a spontaneous crash); false if it was not running.
    pub fn crash(&mut self, node: NodeId, group: GroupId, resource: ResourceId) -> bool {
        let slot = self.slot(node, group);
        let was = self.running[slot] & (1 << resource.0) != 0;
        self.running[slot] &= !(1 << resource.0);
        was
    }

    /// Everything on the node dies at once; returns what was running.
    pub fn wipe(&mut self, node: NodeId) -> Vec<(GroupId, ResourceId)> {
        let list = self.running_on(node);
        for g in 0..self.groups {
            let slot = self.slot(node, GroupId(g as u32));
            self.running[slot] = 0;
        }
        list
    }

    pub fn nic_up(&self, node: NodeId, group: GroupId, resource: ResourceId) -> bool {
        self.nic_down[self.slot(node, group)] & (1 << resource.0) == 0
    }

    pub fn set_nic(&mut self, node: NodeId, group: GroupId, resource: ResourceId, up: bool) {
        let slot = self.slot(node, group);
        if up {
            self.nic_down[slot] &= !(1 << resource.0);
        } else {
            self.nic_down[slot] |= 1 << resource.0;
        }
    }

    pub fn force(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        f: impl FnOnce(&mut Forced),
    ) {
        f(self.forced.entry((node, group, resource)).or_default());
    }

    /// Heals every agent: no injected faults, every NIC up.
    pub fn heal(&mut self) {
        self.params = self.params.healed();
        self.forced.clear();
        self.nic_down.iter_mut().for_each(|bits| *bits = 0);
    }

    /// Decides what an operation issued now will do and how long it takes.
    pub fn plan(
        &mut self,
        rng: &mut ChaCha8Rng,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        op: OpKind,
    ) -> (Plan, u64) {
        let p = self.params;
        let latency = match op {
            OpKind::Start => between(rng, p.start_latency_ns.0, p.start_latency_ns.1),
            OpKind::Stop => between(rng, p.stop_latency_ns.0, p.stop_latency_ns.1),
            OpKind::Monitor | OpKind::Probe => {
                between(rng, p.monitor_latency_ns.0, p.monitor_latency_ns.1)
            }
        };
        let take = |count: &mut u32| {
            let used = *count > 0;
            if used && *count != u32::MAX {
                *count -= 1;
            }
            used
        };
        let forced_plan = self.forced.get_mut(&(node, group, resource)).and_then(|f| {
            if take(&mut f.hang) {
                return Some(Plan::Hang { took_effect: false });
            }
            let count = match op {
                OpKind::Start => &mut f.start_fail,
                OpKind::Stop => &mut f.stop_fail,
                OpKind::Monitor => &mut f.monitor_fail,
                OpKind::Probe => return None,
            };
            take(count).then_some(Plan::Fail)
        });
        let plan = match forced_plan {
            Some(plan) => plan,
            _ if chance(rng, p.hang_ppm) => Plan::Hang { took_effect: chance(rng, 500_000) },
            _ => {
                let fail_ppm = match op {
                    OpKind::Start => p.start_fail_ppm,
                    OpKind::Stop => p.stop_fail_ppm,
                    OpKind::Monitor => p.monitor_fail_ppm,
                    OpKind::Probe => 0,
                };
                if chance(rng, fail_ppm) {
                    Plan::Fail
                } else {
                    Plan::Normal
                }
            }
        };
        (plan, latency)
    }

    /// Completes an operation: its result and the ground-truth change it makes.
    pub fn complete(
        &mut self,
        node: NodeId,
        group: GroupId,
        resource: ResourceId,
        monitor_only: bool,
        op: OpKind,
        plan: Plan,
    ) -> (OpResult, Option<Change>) {
        if monitor_only {
            let result = match (op, plan) {
                (_, Plan::Hang { .. }) => OpResult::Timeout,
                (OpKind::Monitor | OpKind::Probe, _) if !self.nic_up(node, group, resource) => {
                    OpResult::NotRunning
                }
                (OpKind::Monitor, Plan::Fail) => {
                    OpResult::Failed("injected monitor failure".into())
                }
                _ => OpResult::Ok,
            };
            return (result, None);
        }
        let slot = self.slot(node, group);
        let bit = 1u64 << resource.0;
        let running = self.running[slot] & bit != 0;
        match (op, plan) {
            (OpKind::Start, Plan::Normal) | (OpKind::Start, Plan::Hang { took_effect: true }) => {
                self.running[slot] |= bit;
                let result = if plan == Plan::Normal { OpResult::Ok } else { OpResult::Timeout };
                (result, (!running).then_some(Change::Started))
            }
            (OpKind::Start, Plan::Fail) => {
                (OpResult::Failed("injected start failure".into()), None)
            }
            (OpKind::Stop, Plan::Normal) => {
                self.running[slot] &= !bit;
                (OpResult::Ok, Some(Change::Stopped))
            }
            (OpKind::Stop, Plan::Fail) => (OpResult::Failed("injected stop failure".into()), None),
            (_, Plan::Hang { .. }) => (OpResult::Timeout, None),
            (OpKind::Monitor, Plan::Fail) if running => {
                (OpResult::Failed("injected monitor failure".into()), None)
            }
            (OpKind::Monitor | OpKind::Probe, _) => {
                (if running { OpResult::Ok } else { OpResult::NotRunning }, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const N: NodeId = NodeId(0);
    const G: GroupId = GroupId(0);
    const R: ResourceId = ResourceId(2);

    #[test]
    fn start_monitor_stop() {
        let mut a = Agents::new(2, 1, AgentParams::fixed(5, 5, 1));
        assert_eq!(
            a.complete(N, G, R, false, OpKind::Probe, Plan::Normal),
            (OpResult::NotRunning, None)
        );
        assert_eq!(
            a.complete(N, G, R, false, OpKind::Start, Plan::Normal),
            (OpResult::Ok, Some(Change::Started))
        );
        assert!(a.is_running(N, G, R));
        assert_eq!(a.complete(N, G, R, false, OpKind::Monitor, Plan::Normal), (OpResult::Ok, None));
        assert!(matches!(
            a.complete(N, G, R, false, OpKind::Monitor, Plan::Fail),
            (OpResult::Failed(_), None)
        ));
        assert!(a.crash(N, G, R));
        assert_eq!(
            a.complete(N, G, R, false, OpKind::Monitor, Plan::Normal),
            (OpResult::NotRunning, None)
        );
        assert_eq!(
            a.complete(N, G, R, false, OpKind::Stop, Plan::Normal),
            (OpResult::Ok, Some(Change::Stopped))
        );
    }

    #[test]
    fn failed_stop_keeps_it_running_and_hangs_time_out() {
        let mut a = Agents::new(1, 1, AgentParams::fixed(5, 5, 1));
        a.complete(N, G, R, false, OpKind::Start, Plan::Normal);
        assert!(matches!(
            a.complete(N, G, R, false, OpKind::Stop, Plan::Fail),
            (OpResult::Failed(_), None)
        ));
        assert!(a.is_running(N, G, R));
        assert_eq!(
            a.complete(N, G, R, false, OpKind::Stop, Plan::Hang { took_effect: false }),
            (OpResult::Timeout, None)
        );
        assert!(a.is_running(N, G, R));
        assert_eq!(a.wipe(N), vec![(G, R)]);
        let hung = a.complete(N, G, R, false, OpKind::Start, Plan::Hang { took_effect: true });
        assert_eq!(hung, (OpResult::Timeout, Some(Change::Started)));
    }

    #[test]
    fn nic_answers_per_node() {
        let mut a = Agents::new(2, 1, AgentParams::fixed(5, 5, 1));
        a.set_nic(N, G, R, false);
        assert_eq!(
            a.complete(N, G, R, true, OpKind::Monitor, Plan::Normal).0,
            OpResult::NotRunning
        );
        assert_eq!(
            a.complete(NodeId(1), G, R, true, OpKind::Monitor, Plan::Normal).0,
            OpResult::Ok
        );
        a.heal();
        assert_eq!(a.complete(N, G, R, true, OpKind::Monitor, Plan::Normal).0, OpResult::Ok);
    }

    #[test]
    fn forced_faults_are_used_up() {
        let mut a = Agents::new(1, 1, AgentParams::fixed(5, 5, 1));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        a.force(N, G, R, |f| f.start_fail = 1);
        assert_eq!(a.plan(&mut rng, N, G, R, OpKind::Monitor).0, Plan::Normal);
        assert_eq!(a.plan(&mut rng, N, G, R, OpKind::Start), (Plan::Fail, 5));
        assert_eq!(a.plan(&mut rng, N, G, R, OpKind::Start).0, Plan::Normal);
        a.force(N, G, R, |f| f.monitor_fail = u32::MAX);
        for _ in 0..3 {
            assert_eq!(a.plan(&mut rng, N, G, R, OpKind::Monitor).0, Plan::Fail);
        }
    }
}
