//! The payload: what a heartbeat carries besides the frame header (the sent time, the
//! echo and the whole [`NodeReport`]), as serde mirror types encoded with postcard. The
//! engine's types have no serde derives and get none; the conversions live here.
//!
//! Besides the engine's heartbeat, the payload carries the sender's configuration
//! generation and hash ([`ConfigStamp`], format version 3): the daemon's shell sets and
//! reads it, the engine never sees it (generations decide nothing about failover).
//!
//! Layout choices keep a 10,000-group report in one datagram: each group's report is
//! one byte (state, eligibility, lease), hand-over targets and administrative registers
//! are sparse lists of `(group index, value)` in increasing index order, holding only
//! entries that differ from the default. Decoding checks every enum value, every index
//! and every count against the engine's limits; it must not panic on any input.

use std::sync::Arc;
use std::time::Duration;

use engine::{
    AdminState, ClearRequest, Echo, GroupReport, GroupState, Ineligible, Instant, LinkId, Lww,
    NodeId, NodeReport, NodeState, ResourceId, Stamp, SwitchoverRequest, GROUPS_MAX, LINKS_MAX,
    NODES_MAX,
};
use serde::{Deserialize, Serialize};

/// What the payload decodes to; the frame header supplies sender, incarnation, sequence.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Body {
    pub sent_at: Instant,
    pub echo: Option<Echo>,
    pub report: Arc<NodeReport>,
    pub config: Option<ConfigStamp>,
}

/// The newest configuration generation a node keeps and the SHA-256 of its text, as
/// its heartbeats carry it (the daemon's `configstore`; `None` in a heartbeat of a node
/// without a configuration store).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConfigStamp {
    pub generation: u64,
    pub hash: [u8; 32],
}

/// A switch-over request: the owner then, and the target (`None`: next eligible).
type WireSwitchover = Option<(u16, Option<u16>)>;
/// A clear: its sequence and the resource (`None`: all).
type WireClear = (u64, Option<u16>);

#[derive(Serialize, Deserialize)]
struct WireBody {
    sent_at: u64,
    echo: Option<(u64, Duration)>,
    state: u8,
    storage_ok: bool,
    /// One byte per group: state (bits 0-2), ineligible (bits 3-6, 0 = eligible),
    /// holds_lease (bit 7).
    groups: Vec<u8>,
    handoffs: Vec<(u32, u16)>,
    links_up: Vec<(u16, u16)>,
    maintenance: WireLww<bool>,
    drained: Vec<WireLww<bool>>,
    switchover_len: u32,
    switchover: Vec<(u32, WireLww<WireSwitchover>)>,
    clear_len: u32,
    clear: Vec<(u32, WireLww<WireClear>)>,
    /// The sender's configuration generation and hash (version 3).
    config: Option<(u64, [u8; 32])>,
}

#[derive(Serialize, Deserialize)]
struct WireLww<T> {
    value: T,
    lamport: u64,
    writer: u16,
}

const NODE_STATES: [NodeState; 6] = [
    NodeState::Booting,
    NodeState::Working,
    NodeState::Standby,
    NodeState::Offline,
    NodeState::Maintenance,
    NodeState::Drained,
];
const GROUP_STATES: [GroupState; 5] = [
    GroupState::Stopped,
    GroupState::Starting,
    GroupState::Running,
    GroupState::Stopping,
    GroupState::Failed,
];
const INELIGIBLES: [Ineligible; 8] = [
    Ineligible::NotMember,
    Ineligible::Booting,
    Ineligible::Maintenance,
    Ineligible::Drained,
    Ineligible::StorageLost,
    Ineligible::NoArbitrator,
    Ineligible::NicDown,
    Ineligible::Failures,
];

fn index_of<T: PartialEq>(table: &[T], value: &T) -> u8 {
    // Every table is shorter than 256 and holds every variant.
    table.iter().position(|v| v == value).unwrap_or(0) as u8
}

fn lww_out<T, U>(lww: &Lww<T>, f: impl Fn(&T) -> U) -> WireLww<U> {
    WireLww { value: f(&lww.value), lamport: lww.stamp.lamport, writer: lww.stamp.writer }
}

fn lww_in<T, U>(lww: WireLww<U>, f: impl Fn(U) -> T) -> Lww<T> {
    Lww { value: f(lww.value), stamp: Stamp { lamport: lww.lamport, writer: lww.writer } }
}

/// The sparse form of `items`: indexes and values of the entries that are not default.
fn sparse<T: Default + PartialEq, U>(items: &[T], f: impl Fn(&T) -> U) -> Vec<(u32, U)> {
    let default = T::default();
    items
        .iter()
        .enumerate()
        .filter(|(_, item)| **item != default)
        .map(|(i, item)| (i as u32, f(item)))
        .collect()
}

/// Expands a sparse list to `len` entries; `None` when indexes are out of order or range.
fn dense<T: Default + Clone, U>(
    len: u32,
    entries: Vec<(u32, U)>,
    f: impl Fn(U) -> T,
) -> Option<Vec<T>> {
    let len = usize::try_from(len).ok().filter(|&len| len <= GROUPS_MAX)?;
    let mut out = vec![T::default(); len];
    let mut next = 0usize;
    for (index, value) in entries {
        let index = usize::try_from(index).ok()?;
        if index < next || index >= len {
            return None;
        }
        out[index] = f(value);
        next = index + 1;
    }
    Some(out)
}

/// Encodes a heartbeat's body; `None` only if serialization itself fails.
pub(crate) fn encode_body(
    sent_at: Instant,
    echo: Option<Echo>,
    report: &NodeReport,
    config: Option<&ConfigStamp>,
) -> Option<Vec<u8>> {
    let admin = &report.admin;
    let wire = WireBody {
        sent_at: sent_at.as_nanos(),
        echo: echo.map(|e| (e.sent_at.as_nanos(), e.held)),
        state: index_of(&NODE_STATES, &report.state),
        storage_ok: report.storage_ok,
        groups: report
            .groups
            .iter()
            .map(|g| {
                let ineligible = g.ineligible.map_or(0, |i| 1 + index_of(&INELIGIBLES, &i));
                index_of(&GROUP_STATES, &g.state) | ineligible << 3 | u8::from(g.holds_lease) << 7
            })
            .collect(),
        handoffs: report
            .groups
            .iter()
            .enumerate()
            .filter_map(|(i, g)| g.handoff_to.map(|to| (i as u32, to.0)))
            .collect(),
        links_up: report.links_up.iter().map(|(link, node)| (link.0, node.0)).collect(),
        maintenance: lww_out(&admin.maintenance, |v| *v),
        drained: admin.drained.iter().map(|d| lww_out(d, |v| *v)).collect(),
        switchover_len: admin.switchover.len() as u32,
        switchover: sparse(&admin.switchover, |s| {
            lww_out(s, |r| r.map(|r| (r.from.0, r.to.map(|n| n.0))))
        }),
        clear_len: admin.clear.len() as u32,
        clear: sparse(&admin.clear, |c| lww_out(c, |r| (r.sequence, r.resource.map(|r| r.0)))),
        config: config.map(|c| (c.generation, c.hash)),
    };
    postcard::to_allocvec(&wire).ok()
}

/// Decodes a body; `None` when the bytes are not exactly one well-formed body within
/// the engine's limits.
pub(crate) fn decode_body(bytes: &[u8]) -> Option<Body> {
    let (wire, rest): (WireBody, _) = postcard::take_from_bytes(bytes).ok()?;
    if !rest.is_empty()
        || wire.groups.len() > GROUPS_MAX
        || wire.drained.len() > NODES_MAX
        || wire.links_up.len() > NODES_MAX * LINKS_MAX
    {
        return None;
    }
    let mut groups = Vec::with_capacity(wire.groups.len());
    for byte in wire.groups {
        let state = *GROUP_STATES.get(usize::from(byte & 0b111))?;
        let ineligible = match (byte >> 3) & 0b1111 {
            0 => None,
            i => Some(*INELIGIBLES.get(usize::from(i - 1))?),
        };
        groups.push(GroupReport {
            state,
            ineligible,
            holds_lease: byte >> 7 == 1,
            handoff_to: None,
        });
    }
    let mut next = 0usize;
    for (index, to) in wire.handoffs {
        let index = usize::try_from(index).ok()?;
        if index < next {
            return None;
        }
        groups.get_mut(index)?.handoff_to = Some(NodeId(to));
        next = index + 1;
    }
    let admin = AdminState {
        maintenance: lww_in(wire.maintenance, |v| v),
        drained: wire.drained.into_iter().map(|d| lww_in(d, |v| v)).collect(),
        switchover: dense(wire.switchover_len, wire.switchover, |s| {
            lww_in(s, |r| {
                r.map(|(from, to)| SwitchoverRequest { from: NodeId(from), to: to.map(NodeId) })
            })
        })?,
        clear: dense(wire.clear_len, wire.clear, |c| {
            lww_in(c, |(sequence, resource)| ClearRequest {
                sequence,
                resource: resource.map(ResourceId),
            })
        })?,
    };
    Some(Body {
        sent_at: Instant::from_nanos(wire.sent_at),
        echo: wire.echo.map(|(sent_at, held)| Echo { sent_at: Instant::from_nanos(sent_at), held }),
        report: Arc::new(NodeReport {
            state: *NODE_STATES.get(usize::from(wire.state))?,
            storage_ok: wire.storage_ok,
            groups,
            links_up: wire
                .links_up
                .into_iter()
                .map(|(link, node)| (LinkId(link), NodeId(node)))
                .collect(),
            admin,
        }),
        config: wire.config.map(|(generation, hash)| ConfigStamp { generation, hash }),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lww<T: std::fmt::Debug + Clone + 'static>(
        value: impl Strategy<Value = T>,
    ) -> impl Strategy<Value = Lww<T>> {
        (value, any::<u64>(), any::<u16>())
            .prop_map(|(value, lamport, writer)| Lww { value, stamp: Stamp { lamport, writer } })
    }

    fn maybe_default<T: Default + std::fmt::Debug + Clone + 'static>(
        s: impl Strategy<Value = T>,
    ) -> impl Strategy<Value = T> {
        prop_oneof![Just(T::default()), s]
    }

    pub(crate) fn report(groups_max: usize) -> impl Strategy<Value = NodeReport> {
        let group = (
            prop::sample::select(GROUP_STATES.to_vec()),
            prop::option::of(prop::sample::select(INELIGIBLES.to_vec())),
            any::<bool>(),
            prop::option::of(any::<u16>().prop_map(NodeId)),
        )
            .prop_map(|(state, ineligible, holds_lease, handoff_to)| GroupReport {
                state,
                ineligible,
                holds_lease,
                handoff_to,
            });
        let switchover = maybe_default(lww(prop::option::of(
            (any::<u16>(), prop::option::of(any::<u16>())).prop_map(|(from, to)| {
                SwitchoverRequest { from: NodeId(from), to: to.map(NodeId) }
            }),
        )));
        let clear = maybe_default(lww((any::<u64>(), prop::option::of(any::<u16>())).prop_map(
            |(sequence, resource)| ClearRequest { sequence, resource: resource.map(ResourceId) },
        )));
        let admin = (
            lww(any::<bool>()),
            prop::collection::vec(lww(any::<bool>()), 0..=NODES_MAX),
            prop::collection::vec(switchover, 0..=groups_max),
            prop::collection::vec(clear, 0..=groups_max),
        )
            .prop_map(|(maintenance, drained, switchover, clear)| AdminState {
                maintenance,
                drained,
                switchover,
                clear,
            });
        (
            prop::sample::select(NODE_STATES.to_vec()),
            any::<bool>(),
            prop::collection::vec(group, 0..=groups_max),
            prop::collection::vec((any::<u16>(), any::<u16>()), 0..=NODES_MAX),
            admin,
        )
            .prop_map(|(state, storage_ok, groups, links, admin)| NodeReport {
                state,
                storage_ok,
                groups,
                links_up: links.into_iter().map(|(l, n)| (LinkId(l), NodeId(n))).collect(),
                admin,
            })
    }

    proptest! {
        #[test]
        fn bodies_round_trip(
            report in report(40),
            sent_at in any::<u64>(),
            echo in prop::option::of((any::<u64>(), any::<u64>(), 0u32..1_000_000_000)),
            config in prop::option::of((any::<u64>(), any::<[u8; 32]>())),
        ) {
            let echo = echo.map(|(at, secs, nanos)| Echo {
                sent_at: Instant::from_nanos(at),
                held: Duration::new(secs, nanos),
            });
            let config = config.map(|(generation, hash)| ConfigStamp { generation, hash });
            let bytes =
                encode_body(Instant::from_nanos(sent_at), echo, &report, config.as_ref()).unwrap();
            let body = decode_body(&bytes).unwrap();
            prop_assert_eq!(body.sent_at, Instant::from_nanos(sent_at));
            prop_assert_eq!(body.echo, echo);
            prop_assert_eq!(&*body.report, &report);
            prop_assert_eq!(body.config, config);
        }
    }

    pub(crate) fn simple_report(groups: usize) -> NodeReport {
        NodeReport {
            state: NodeState::Working,
            storage_ok: true,
            groups: vec![
                GroupReport {
                    state: GroupState::Stopped,
                    ineligible: None,
                    holds_lease: false,
                    handoff_to: None
                };
                groups
            ],
            links_up: vec![],
            admin: AdminState {
                switchover: vec![Lww::default(); groups],
                clear: vec![Lww::default(); groups],
                ..AdminState::default()
            },
        }
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let mut bytes = encode_body(Instant::ZERO, None, &simple_report(2), None).unwrap();
        assert!(decode_body(&bytes).is_some());
        bytes.push(0);
        assert!(decode_body(&bytes).is_none());
    }

    #[test]
    fn unknown_enum_values_are_malformed() {
        let bytes = encode_body(Instant::ZERO, None, &simple_report(1), None).unwrap();
        // Layout: sent_at (1), echo None (1), state (1), storage_ok (1), groups len (1), group.
        assert_eq!(bytes[2], 1, "state Working");
        let mut bad_state = bytes.clone();
        bad_state[2] = 6;
        assert!(decode_body(&bad_state).is_none());
        for bad in [5u8, 9 << 3] {
            let mut bad_group = bytes.clone();
            bad_group[5] = bad;
            assert!(decode_body(&bad_group).is_none(), "{bad:#x}");
        }
    }

    #[test]
    fn sparse_indexes_out_of_range_or_order_are_malformed() {
        let mut report = simple_report(3);
        report.groups[1].handoff_to = Some(NodeId(1));
        let good = encode_body(Instant::ZERO, None, &report, None).unwrap();
        assert!(decode_body(&good).is_some());
        let wire = |handoffs: Vec<(u32, u16)>| {
            let mut w: WireBody = postcard::from_bytes(&good).unwrap();
            w.handoffs = handoffs;
            postcard::to_allocvec(&w).unwrap()
        };
        assert!(decode_body(&wire(vec![(3, 1)])).is_none());
        assert!(decode_body(&wire(vec![(2, 1), (1, 1)])).is_none());
        assert!(decode_body(&wire(vec![(1, 1), (1, 1)])).is_none());
        let clear = |len: u32, clear: Vec<(u32, WireLww<WireClear>)>| {
            let mut w: WireBody = postcard::from_bytes(&good).unwrap();
            w.clear_len = len;
            w.clear = clear;
            postcard::to_allocvec(&w).unwrap()
        };
        let entry = || WireLww { value: (1, None), lamport: 1, writer: 1 };
        assert!(decode_body(&clear(3, vec![(2, entry())])).is_some());
        assert!(decode_body(&clear(3, vec![(3, entry())])).is_none());
        assert!(decode_body(&clear(3, vec![(2, entry()), (0, entry())])).is_none());
        assert!(decode_body(&clear(GROUPS_MAX as u32 + 1, vec![])).is_none());
    }

    #[test]
    fn limits_are_enforced() {
        let mut report = simple_report(0);
        report.admin.drained = vec![Lww::default(); NODES_MAX + 1];
        let bytes = encode_body(Instant::ZERO, None, &report, None).unwrap();
        assert!(decode_body(&bytes).is_none());
        report.admin.drained.pop();
        let bytes = encode_body(Instant::ZERO, None, &report, None).unwrap();
        assert!(decode_body(&bytes).is_some());
    }
}
