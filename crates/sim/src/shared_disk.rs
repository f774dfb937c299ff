//! The simulated shared disk: the lease area (one host record per node, one group
//! record per group, see `arbiter::disk`) and the heartbeat area of the `disk` link (one
//! slot per node, read by every peer, as on the real area), with I/O latency, random I/O errors and a per-node path
//! that can be lost. A heartbeat "partition" of the disk link between two nodes hides
//! their slots from each other (the readers see nothing new) while the lease area stays
//! reachable, so the engine's lease logic is tested without its disk heartbeats.
//!
//! It decides I/O outcomes and holds contents; it must not schedule anything.

use engine::{GroupId, Heartbeat, NodeId};
use rand_chacha::ChaCha8Rng;

use crate::net::{between, chance};
use arbiter::disk::{Block, Record};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskParams {
    pub latency_ns: (u64, u64),
    pub error_ppm: u32,
    /// Share of I/O that stalls: it lands after a latency in `stall_ns` instead, past
    /// the lease client's I/O timeout (a disk that breaks the protocol's assumption; the
    /// client gives up on it, but a write still lands).
    pub stall_ppm: u32,
    pub stall_ns: (u64, u64),
}

pub struct SharedDisk {
    pub params: DiskParams,
    nodes: usize,
    /// Per node: its path to the disk works.
    pub path_ok: Vec<bool>,
    hosts: Vec<Record>,
    groups: Vec<Record>,
    /// Per group: when its record was last written by a write that landed after its
    /// writer had given up on it, the owner the record named before such writes began.
    displaced: Vec<Option<Option<NodeId>>>,
    mailboxes: Vec<Record>,
    /// Per node: the latest heartbeat it wrote in its slot (read by every peer).
    slots: Vec<Option<Heartbeat>>,
    /// [from * nodes + to]: `to` cannot see `from`'s slot (heartbeat partition).
    hidden: Vec<bool>,
}

impl SharedDisk {
    pub fn new(nodes: usize, groups: usize, params: DiskParams) -> SharedDisk {
        SharedDisk {
            params,
            nodes,
            path_ok: vec![true; nodes],
            hosts: vec![Record::Blank; nodes],
            groups: vec![Record::Blank; groups],
            displaced: vec![None; groups],
            mailboxes: vec![Record::Blank; nodes],
            slots: vec![None; nodes],
            hidden: vec![false; nodes * nodes],
        }
    }

    /// Decides an I/O issued now by `node`: whether it succeeds, and its latency.
    pub fn io(&self, rng: &mut ChaCha8Rng, node: NodeId) -> (bool, u64) {
        let stalls = self.params.stall_ppm > 0 && chance(rng, self.params.stall_ppm);
        let (low, high) = if stalls { self.params.stall_ns } else { self.params.latency_ns };
        let latency = between(rng, low, high);
        let ok = self.path_ok[usize::from(node.0)] && !chance(rng, self.params.error_ppm);
        (ok, latency)
    }

    pub fn read(&self, block: Block) -> Record {
        match block {
            Block::Host(n) => self.hosts[usize::from(n.0)].clone(),
            Block::Group(g) => self.groups[g.0 as usize].clone(),
            Block::Mailbox(n) => self.mailboxes[usize::from(n.0)].clone(),
        }
    }

    /// A write lands; `stale`: after its writer gave up on it (a stalled disk).
    pub fn write(&mut self, block: Block, record: Record, stale: bool) {
        match block {
            Block::Host(n) => self.hosts[usize::from(n.0)] = record,
            Block::Group(g) => {
                let g = g.0 as usize;
                let before = self.groups[g].owner();
                self.displaced[g] = stale.then(|| self.displaced[g].unwrap_or(before));
                self.groups[g] = record;
            }
            Block::Mailbox(n) => self.mailboxes[usize::from(n.0)] = record,
        }
    }

    /// The group record's owner: the disk arbitrator's ground truth.
    pub fn owner(&self, group: GroupId) -> Option<NodeId> {
        self.groups[group.0 as usize].owner()
    }

    /// When the group's record was last written by stale writes (see
    /// [`SharedDisk::write`]): the owner it named before them.
    pub fn displaced(&self, group: GroupId) -> Option<Option<NodeId>> {
        self.displaced[group.0 as usize]
    }

    fn pair(&self, from: NodeId, to: NodeId) -> usize {
        usize::from(from.0) * self.nodes + usize::from(to.0)
    }

    /// `from`'s heartbeat slot write lands: an older heartbeat never overwrites a newer
    /// one (the writer serialises writes to its slot).
    pub fn write_slot(&mut self, from: NodeId, message: Heartbeat) {
        let slot = &mut self.slots[usize::from(from.0)];
        let newer = slot.as_ref().is_none_or(|old| {
            (message.incarnation, message.sequence) > (old.incarnation, old.sequence)
        });
        if newer {
            *slot = Some(message);
        }
    }

    /// What `reader` reads in `from`'s slot (nothing while the pair is hidden).
    pub fn read_slot(&self, from: NodeId, reader: NodeId) -> Option<&Heartbeat> {
        if self.hidden[self.pair(from, reader)] {
            None
        } else {
            self.slots[usize::from(from.0)].as_ref()
        }
    }

    pub fn set_hidden(&mut self, from: NodeId, to: NodeId, hidden: bool) {
        let i = self.pair(from, to);
        self.hidden[i] = hidden;
    }

    pub fn is_hidden(&self, from: NodeId, to: NodeId) -> bool {
        self.hidden[self.pair(from, to)]
    }

    /// No I/O errors, every path up, every slot visible.
    pub fn heal(&mut self) {
        self.params.error_ppm = 0;
        self.path_ok.iter_mut().for_each(|ok| *ok = true);
        self.hidden.iter_mut().for_each(|h| *h = false);
    }
}
