//! The records of the lease area as the protocol sees them: a block's address (a host,
//! a group, a mailbox) and what it holds (a host record, a group record, a poison
//! pill). How they are laid out in bytes on the disk is `diskarea`'s business.

use engine::{GroupId, NodeId};

/// A block of the lease area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Block {
    Host(NodeId),
    Group(GroupId),
    /// The node's mailbox: where a poison pill for it is left (never a lease).
    Mailbox(NodeId),
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Record {
    /// Never written.
    #[default]
    Blank,
    Host(HostRecord),
    Group(GroupRecord),
    /// In a mailbox: the node must fence itself (see [`Pill`]).
    Pill(Pill),
}

/// A poison pill (SBD's "message slot"): left in a node's mailbox by another node or an
/// operator (`tandem fence NODE`), it tells that node to stop every resource at once
/// and exit. It names the incarnation it is meant for, so a node restarted after it
/// ignores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pill {
    /// Who left it (`None`: an operator).
    pub from: Option<NodeId>,
    /// The target's incarnation (from its host record) when the pill was left.
    pub incarnation: u64,
    /// Wall-clock seconds when it was left (for the journal).
    pub at_unix: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRecord {
    pub incarnation: u64,
    pub counter: u64,
    /// Sorted.
    pub groups: Vec<GroupId>,
    /// The node stopped in maintenance and left these groups running: no contender
    /// takes them, however long the record stays unchanged, until the node runs again
    /// (its next host write) or an operator unparks it (`tandem disk unpark`).
    pub parked: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    pub owner: Option<NodeId>,
    /// The writer's (incarnation, write counter): unique to each write.
    pub stamp: (u64, u64),
}

impl Record {
    /// The owner a group record names (a blank record: none).
    pub fn owner(&self) -> Option<NodeId> {
        match self {
            Record::Group(g) => g.owner,
            _ => None,
        }
    }

    /// Whether this host record keeps `group` parked (see [`HostRecord::parked`]).
    pub fn parks(&self, group: GroupId) -> bool {
        matches!(self, Record::Host(h) if h.parked && h.groups.binary_search(&group).is_ok())
    }

    /// What a contender for `group` compares: the host record's version if it lists the
    /// group, `None` ("absent") otherwise.
    pub(super) fn version_for(&self, group: GroupId) -> Option<(u64, u64)> {
        match self {
            Record::Host(h) if h.groups.binary_search(&group).is_ok() => {
                Some((h.incarnation, h.counter))
            }
            _ => None,
        }
    }
}
