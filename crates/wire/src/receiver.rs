//! The receiving side of one link: [`Receiver::receive_from`] checks a frame in order of
//! cost — its source (the caller maps the datagram's source address to a peer, or to
//! none), its header (shape, version, cluster, the [`Route`]: this link and this node),
//! that the header's sender is that peer, the replay window (per sender: the newest
//! incarnation and a window of the last [`REPLAY_WINDOW`] sequences), the caller's
//! budget (a rate limit), and only then the tag and the payload — and counts every
//! rejection by [`Reject`] reason in [`Counters`] (the daemon shows them in its status).
//! A frame that fails a check changes no replay state; a replay or a captured frame
//! with a byte flipped outside the sequence fields costs no cryptography.
//!
//! The replay state can be seeded ([`Receiver::remember`]) with what an earlier run saw,
//! so that frames captured before a restart of the receiving daemon stay refused.
//!
//! It also keeps, per sender, the configuration stamp of the newest frame accepted
//! ([`Receiver::config_of`]), for the daemon's comparison of generations.
//!
//! It owns the replay state; it must not panic on any input, read a clock or do I/O.
//! Its memory is bounded: one window per possible sender (`engine::NODES_MAX`).

use engine::{Heartbeat, NodeId, NODES_MAX};

use crate::frame::{authenticate_with_config, parse, ClusterId, Route};
use crate::key::Key;
use crate::payload::ConfigStamp;

/// How many recent sequences per sender are remembered; older ones are dropped.
pub const REPLAY_WINDOW: u64 = 64;

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reject {
    /// Its source address is not a peer's address on this link (checked first).
    UnknownSource,
    /// It does not start with `TNDM`.
    BadMagic,
    /// A format version this build does not read.
    UnknownVersion,
    /// A frame of another cluster (another cluster name).
    OtherCluster,
    /// Shorter than a header and tag, or than its payload length says.
    Truncated,
    /// Over `PACKET_BYTES_MAX`, or longer than its payload length says.
    Oversized,
    /// Sent for another link (a frame captured on one link, replayed on another).
    OtherLink,
    /// Sent to another node.
    OtherReceiver,
    /// The header names a sender other than the peer whose address sent it.
    WrongSender,
    /// The sender restarted since (a newer incarnation was seen).
    StaleIncarnation,
    /// This sequence was already accepted.
    Replayed,
    /// The sequence is older than the replay window.
    TooOld,
    /// Over the caller's budget for its source (checked before the tag).
    RateLimited,
    /// The tag does not match: forged, corrupted, or another key.
    BadTag,
    /// Authentic but undecodable: unknown values, indexes or counts out of range.
    Malformed,
}

impl Reject {
    pub const ALL: [Reject; 15] = [
        Reject::UnknownSource,
        Reject::BadMagic,
        Reject::UnknownVersion,
        Reject::OtherCluster,
        Reject::Truncated,
        Reject::Oversized,
        Reject::OtherLink,
        Reject::OtherReceiver,
        Reject::WrongSender,
        Reject::StaleIncarnation,
        Reject::Replayed,
        Reject::TooOld,
        Reject::RateLimited,
        Reject::BadTag,
        Reject::Malformed,
    ];

    /// A stable name, for status documents and the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::UnknownSource => "unknown_source",
            Reject::BadMagic => "bad_magic",
            Reject::UnknownVersion => "unknown_version",
            Reject::OtherCluster => "other_cluster",
            Reject::Truncated => "truncated",
            Reject::Oversized => "oversized",
            Reject::OtherLink => "other_link",
            Reject::OtherReceiver => "other_receiver",
            Reject::WrongSender => "wrong_sender",
            Reject::StaleIncarnation => "stale_incarnation",
            Reject::Replayed => "replayed",
            Reject::TooOld => "too_old",
            Reject::RateLimited => "rate_limited",
            Reject::BadTag => "bad_tag",
            Reject::Malformed => "malformed",
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Accepted frames and drops by reason, since the receiver was made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub accepted: u64,
    rejected: [u64; Reject::ALL.len()],
}

impl Counters {
    /// How many frames were dropped for `reason`.
    pub fn rejected(&self, reason: Reject) -> u64 {
        self.rejected[reason as usize]
    }
    /// Every reason with its count, in [`Reject::ALL`] order.
    pub fn by_reason(&self) -> impl Iterator<Item = (Reject, u64)> + '_ {
        Reject::ALL.iter().map(|&r| (r, self.rejected(r)))
    }
    /// Frames dropped for any reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }
    /// The counts since `earlier` (counts of the same receiver, taken before).
    pub fn since(&self, earlier: &Counters) -> Counters {
        let mut out = Counters {
            accepted: self.accepted.saturating_sub(earlier.accepted),
            ..Counters::default()
        };
        for (i, n) in out.rejected.iter_mut().enumerate() {
            *n = self.rejected[i].saturating_sub(earlier.rejected[i]);
        }
        out
    }
}

/// Replay state of one sender.
#[derive(Clone, Copy, Debug)]
struct Window {
    incarnation: u64,
    newest: u64,
    /// Bit `i`: sequence `newest - i` was accepted.
    seen: u64,
}

/// The configuration stamp of a sender's newest accepted frame, with that frame's
/// incarnation and sequence (to pick the newest among several links).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigSeen {
    pub incarnation: u64,
    pub sequence: u64,
    pub stamp: Option<ConfigStamp>,
}

/// Authenticates, decodes and de-duplicates the frames of one link.
#[derive(Debug)]
pub struct Receiver {
    key: Key,
    cluster: ClusterId,
    route: Route,
    senders: [Option<Window>; NODES_MAX],
    configs: [Option<ConfigSeen>; NODES_MAX],
    counters: Counters,
}

impl Receiver {
    /// The receiver of frames sent on `route` (this link, to this node or to every node).
    pub fn new(key: Key, cluster: ClusterId, route: Route) -> Receiver {
        Receiver {
            key,
            cluster,
            route,
            senders: [None; NODES_MAX],
            configs: [None; NODES_MAX],
            counters: Counters::default(),
        }
    }

    /// The configuration stamp of the newest frame accepted from `from` on this link.
    pub fn config_of(&self, from: NodeId) -> Option<ConfigSeen> {
        *self.configs.get(usize::from(from.0))?
    }

    /// The heartbeat in `bytes`, or why it was dropped (and counted), from any sender.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Heartbeat, Reject> {
        let result = self.check(bytes, None, |_| true);
        self.count(result)
    }

    /// The heartbeat in `bytes` that arrived from `source`: the peer whose address sent
    /// it (`None`: no peer's, refused before anything else). `spend` is asked, with the
    /// frame's size, just before the tag is checked (after every cheaper check passed);
    /// `false` refuses the frame as [`Reject::RateLimited`].
    pub fn receive_from(
        &mut self,
        bytes: &[u8],
        source: Option<NodeId>,
        spend: impl FnOnce(usize) -> bool,
    ) -> Result<Heartbeat, Reject> {
        let result = match source {
            None => Err(Reject::UnknownSource),
            Some(node) => self.check(bytes, Some(node), spend),
        };
        self.count(result)
    }

    /// Seeds the replay state of `from` with what an earlier run saw: frames of older
    /// incarnations, and of `incarnation` up to `sequence`, are refused. A newer state
    /// already held is kept.
    pub fn remember(&mut self, from: NodeId, incarnation: u64, sequence: u64) {
        let Some(slot) = self.senders.get_mut(usize::from(from.0)) else { return };
        let newer = slot.is_some_and(|w| (w.incarnation, w.newest) >= (incarnation, sequence));
        if !newer {
            *slot = Some(Window { incarnation, newest: sequence, seen: u64::MAX });
        }
    }

    /// The newest incarnation and sequence accepted (or remembered) from `from`.
    pub fn newest(&self, from: NodeId) -> Option<(u64, u64)> {
        let window = self.senders.get(usize::from(from.0))?.as_ref()?;
        Some((window.incarnation, window.newest))
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn count(&mut self, result: Result<Heartbeat, Reject>) -> Result<Heartbeat, Reject> {
        match &result {
            Ok(_) => self.counters.accepted += 1,
            Err(reason) => self.counters.rejected[*reason as usize] += 1,
        }
        result
    }

    fn check(
        &mut self,
        bytes: &[u8],
        source: Option<NodeId>,
        spend: impl FnOnce(usize) -> bool,
    ) -> Result<Heartbeat, Reject> {
        let header = parse(self.cluster, self.route, bytes)?;
        if source.is_some_and(|node| node != header.from) {
            return Err(Reject::WrongSender);
        }
        self.fresh(header.from, header.incarnation, header.sequence)?;
        if !spend(bytes.len()) {
            return Err(Reject::RateLimited);
        }
        let (heartbeat, stamp) = authenticate_with_config(&self.key, &header, bytes)?;
        self.record(&heartbeat);
        let (incarnation, sequence) = (heartbeat.incarnation, heartbeat.sequence);
        if let Some(seen) = self.configs.get_mut(usize::from(heartbeat.from.0)) {
            if seen.is_none_or(|s| (s.incarnation, s.sequence) < (incarnation, sequence)) {
                *seen = Some(ConfigSeen { incarnation, sequence, stamp });
            }
        }
        Ok(heartbeat)
    }

    /// Whether a frame of `from` with this incarnation and sequence would be new.
    fn fresh(&self, from: NodeId, incarnation: u64, sequence: u64) -> Result<(), Reject> {
        let slot = self.senders.get(usize::from(from.0)).ok_or(Reject::Malformed)?;
        let Some(window) = slot else { return Ok(()) };
        if incarnation != window.incarnation || sequence > window.newest {
            return match incarnation < window.incarnation {
                true => Err(Reject::StaleIncarnation),
                false => Ok(()),
            };
        }
        let age = window.newest - sequence;
        if age >= REPLAY_WINDOW {
            return Err(Reject::TooOld);
        }
        if window.seen & 1 << age != 0 {
            return Err(Reject::Replayed);
        }
        Ok(())
    }

    /// Records an authentic `heartbeat` (which [`Receiver::fresh`] accepted) in its
    /// sender's window.
    fn record(&mut self, heartbeat: &Heartbeat) {
        let Some(slot) = self.senders.get_mut(usize::from(heartbeat.from.0)) else { return };
        let (incarnation, sequence) = (heartbeat.incarnation, heartbeat.sequence);
        let fresh = Window { incarnation, newest: sequence, seen: 1 };
        match slot {
            Some(window) if window.incarnation == incarnation => {
                if sequence > window.newest {
                    let shift = sequence - window.newest;
                    window.seen = if shift >= REPLAY_WINDOW { 1 } else { window.seen << shift | 1 };
                    window.newest = sequence;
                } else {
                    window.seen |= 1 << (window.newest - sequence);
                }
            }
            _ => *slot = Some(fresh),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use engine::{
        ClearRequest, Echo, GroupState, Ineligible, Instant, LinkId, Lww, NodeId, NodeReport,
        Stamp, SwitchoverRequest,
    };
    use hmac::{Hmac, Mac};
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng;
    use sha2::Sha256;

    use super::*;
    use crate::frame::{encode, encode_with_config, HEADER_BYTES, PACKET_BYTES_MAX, TAG_BYTES};
    use crate::payload::tests::{report, simple_report};

    fn key() -> Key {
        Key::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3))
    }
    fn cluster() -> ClusterId {
        ClusterId::from_name("prod")
    }
    /// Frames here go on link 0 to node 0.
    const ROUTE: Route = Route { link: LinkId(0), to: Some(NodeId(0)) };

    fn receiver() -> Receiver {
        Receiver::new(key(), cluster(), ROUTE)
    }

    fn heartbeat(from: u16, incarnation: u64, sequence: u64, report: NodeReport) -> Heartbeat {
        Heartbeat {
            from: NodeId(from),
            incarnation,
            sequence,
            sent_at: Instant::from_nanos(1_234_567_890),
            echo: Some(Echo { sent_at: Instant::from_nanos(99), held: Duration::from_micros(70) }),
            report: Arc::new(report),
        }
    }

    /// A realistic report of `groups` groups: mixed states, a few hand-overs, drains,
    /// switch-overs and clears written.
    fn realistic(groups: usize) -> NodeReport {
        let mut report = simple_report(groups);
        report.links_up = vec![(LinkId(0), NodeId(1)), (LinkId(1), NodeId(1))];
        report.admin.drained = vec![Lww::default(); 2];
        report.admin.drained[1] = Lww { value: true, stamp: Stamp { lamport: 812, writer: 1 } };
        for (i, group) in report.groups.iter_mut().enumerate() {
            group.state = [GroupState::Running, GroupState::Stopped][i % 2];
            group.holds_lease = i % 2 == 0;
            group.ineligible = (i % 7 == 0).then_some(Ineligible::NicDown);
            group.handoff_to = (i % 97 == 0).then_some(NodeId(1));
        }
        for i in (0..groups).step_by(10) {
            report.admin.clear[i] = Lww {
                value: ClearRequest { sequence: 3, resource: Some(engine::ResourceId(2)) },
                stamp: Stamp { lamport: 70_000 + i as u64, writer: 2 },
            };
        }
        for i in (0..groups).step_by(50) {
            report.admin.switchover[i] = Lww {
                value: Some(SwitchoverRequest { from: NodeId(0), to: Some(NodeId(1)) }),
                stamp: Stamp { lamport: 90_000 + i as u64, writer: 1 },
            };
        }
        report
    }

    fn frame(from: u16, incarnation: u64, sequence: u64) -> Vec<u8> {
        encode(&key(), cluster(), ROUTE, &heartbeat(from, incarnation, sequence, realistic(2)))
            .unwrap()
    }

    /// Recomputes the tag of a frame changed on purpose, so that only the check under
    /// test can refuse it.
    fn resign(mut bytes: Vec<u8>) -> Vec<u8> {
        let end = bytes.len() - TAG_BYTES;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key().as_bytes()).unwrap();
        mac.update(&bytes[..end]);
        bytes[end..].copy_from_slice(&mac.finalize().into_bytes());
        bytes
    }

    fn set_payload(bytes: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = bytes[..HEADER_BYTES].to_vec();
        out[36..40].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        out.extend_from_slice(&[0; TAG_BYTES]);
        resign(out)
    }

    fn only(receiver: &Receiver, reason: Reject, count: u64) {
        for (r, n) in receiver.counters().by_reason() {
            assert_eq!(n, if r == reason { count } else { 0 }, "{r}");
        }
    }

    #[test]
    fn a_realistic_heartbeat_round_trips_and_is_counted() {
        let mut rx = receiver();
        let sent = heartbeat(1, 5, 9, realistic(2));
        let got = rx.receive(&encode(&key(), cluster(), ROUTE, &sent).unwrap()).unwrap();
        assert_eq!(got, sent);
        assert_eq!(rx.counters().accepted, 1);
        assert!(rx.counters().by_reason().all(|(_, n)| n == 0));
    }

    #[test]
    fn the_configuration_stamp_of_the_newest_frame_is_kept_per_sender() {
        let mut rx = receiver();
        let stamp = |generation| ConfigStamp { generation, hash: [generation as u8; 32] };
        let send = |rx: &mut Receiver, from, sequence, config: Option<ConfigStamp>| {
            let hb = heartbeat(from, 5, sequence, realistic(2));
            let bytes = encode_with_config(&key(), cluster(), ROUTE, &hb, config.as_ref());
            assert_eq!(rx.receive(&bytes.unwrap()).unwrap(), hb);
        };
        assert_eq!(rx.config_of(NodeId(1)), None);
        send(&mut rx, 1, 10, Some(stamp(7)));
        send(&mut rx, 2, 3, None);
        let seen = |generation| ConfigSeen {
            incarnation: 5,
            sequence: 10,
            stamp: Some(stamp(generation)),
        };
        assert_eq!(rx.config_of(NodeId(1)), Some(seen(7)));
        assert_eq!(
            rx.config_of(NodeId(2)),
            Some(ConfigSeen { incarnation: 5, sequence: 3, stamp: None })
        );
        // An older frame accepted late (within the replay window) does not replace it.
        send(&mut rx, 1, 8, Some(stamp(6)));
        assert_eq!(rx.config_of(NodeId(1)), Some(seen(7)));
        send(&mut rx, 1, 11, Some(stamp(8)));
        assert_eq!(rx.config_of(NodeId(1)).unwrap().stamp, Some(stamp(8)));
        // `decode` and `decode_with_config` read the same frame.
        let hb = heartbeat(1, 6, 1, realistic(2));
        let bytes = encode_with_config(&key(), cluster(), ROUTE, &hb, Some(&stamp(9))).unwrap();
        assert_eq!(crate::decode(&key(), cluster(), ROUTE, &bytes).unwrap(), hb);
        let (got, config) = crate::decode_with_config(&key(), cluster(), ROUTE, &bytes).unwrap();
        assert_eq!((got, config), (hb, Some(stamp(9))));
    }

    #[test]
    fn packet_sizes() {
        let size = |groups| {
            encode(&key(), cluster(), ROUTE, &heartbeat(1, 5, 9, realistic(groups))).unwrap().len()
        };
        let (two, thousand, ten_thousand) = (size(2), size(1_000), size(10_000));
        eprintln!("2 groups: {two} B, 1,000 groups: {thousand} B, 10,000: {ten_thousand} B");
        assert!(two < 200, "{two}");
        assert!(thousand < 4_000, "{thousand}");
        assert!(ten_thousand <= PACKET_BYTES_MAX, "{ten_thousand}");
        let mut rx = receiver();
        let big = heartbeat(0, 1, 1, realistic(10_000));
        assert_eq!(rx.receive(&encode(&key(), cluster(), ROUTE, &big).unwrap()).unwrap(), big);
    }

    #[test]
    fn a_report_too_large_is_refused_when_encoding() {
        let mut report = simple_report(10_000);
        for (i, clear) in report.admin.clear.iter_mut().enumerate() {
            *clear = Lww {
                value: ClearRequest { sequence: u64::MAX, resource: None },
                stamp: Stamp { lamport: u64::MAX - i as u64, writer: 1 },
            };
        }
        let err = encode(&key(), cluster(), ROUTE, &heartbeat(0, 1, 1, report)).unwrap_err();
        assert!(matches!(err, crate::EncodeError::TooLarge { bytes } if bytes > PACKET_BYTES_MAX));
    }

    #[test]
    fn bad_magic() {
        let mut rx = receiver();
        let mut bytes = frame(1, 1, 1);
        bytes[0] = b'X';
        assert_eq!(rx.receive(&resign(bytes)), Err(Reject::BadMagic));
        only(&rx, Reject::BadMagic, 1);
    }

    #[test]
    fn unknown_version() {
        let mut rx = receiver();
        let mut bytes = frame(1, 1, 1);
        // Version 1, before the route joined the header.
        bytes[4] = 1;
        assert_eq!(rx.receive(&resign(bytes.clone())), Err(Reject::UnknownVersion));
        // Version 2, before the configuration stamp joined the payload.
        bytes[4] = 2;
        assert_eq!(rx.receive(&resign(bytes)), Err(Reject::UnknownVersion));
        only(&rx, Reject::UnknownVersion, 2);
    }

    #[test]
    fn other_cluster() {
        let mut rx = receiver();
        let hb = heartbeat(1, 1, 1, realistic(2));
        let bytes = encode(&key(), ClusterId::from_name("staging"), ROUTE, &hb).unwrap();
        assert_ne!(ClusterId::from_name("staging"), cluster());
        assert_eq!(rx.receive(&bytes), Err(Reject::OtherCluster));
        only(&rx, Reject::OtherCluster, 1);
    }

    #[test]
    fn truncated() {
        let mut rx = receiver();
        let bytes = frame(1, 1, 1);
        assert_eq!(rx.receive(&bytes[..bytes.len() - 1]), Err(Reject::Truncated));
        assert_eq!(rx.receive(&bytes[..HEADER_BYTES + TAG_BYTES - 1]), Err(Reject::Truncated));
        assert_eq!(rx.receive(&[]), Err(Reject::Truncated));
        only(&rx, Reject::Truncated, 3);
    }

    #[test]
    fn oversized() {
        let mut rx = receiver();
        let mut bytes = frame(1, 1, 1);
        bytes.push(0);
        assert_eq!(rx.receive(&bytes), Err(Reject::Oversized));
        let huge = set_payload(&frame(1, 1, 1), &vec![0; PACKET_BYTES_MAX]);
        assert_eq!(rx.receive(&huge), Err(Reject::Oversized));
        only(&rx, Reject::Oversized, 2);
    }

    #[test]
    fn forged_or_foreign_key_tags() {
        let mut rx = receiver();
        let mut bytes = frame(1, 1, 1);
        let middle = HEADER_BYTES + 3;
        bytes[middle] ^= 1;
        assert_eq!(rx.receive(&bytes), Err(Reject::BadTag));
        let other = Key::generate(&mut rand_chacha::ChaCha8Rng::seed_from_u64(4));
        let foreign = encode(&other, cluster(), ROUTE, &heartbeat(1, 1, 1, realistic(2))).unwrap();
        assert_eq!(rx.receive(&foreign), Err(Reject::BadTag));
        only(&rx, Reject::BadTag, 2);
    }

    /// A frame with its header bytes `at..at + 2` set to `value`, its tag left as it was
    /// (an attacker without the key rewriting the route).
    fn rewritten(mut bytes: Vec<u8>, at: usize, value: u16) -> Vec<u8> {
        bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
        bytes
    }

    #[test]
    fn a_frame_of_one_link_is_refused_on_another() {
        let on_a = frame(1, 1, 1);
        let mut link_b = Receiver::new(key(), cluster(), Route { link: LinkId(1), ..ROUTE });
        assert_eq!(link_b.receive(&on_a), Err(Reject::OtherLink));
        // Its link field rewritten to B's: the tag covers it.
        assert_eq!(link_b.receive(&rewritten(on_a.clone(), 18, 1)), Err(Reject::BadTag));
        assert_eq!(link_b.counters().accepted, 0);
        // On link A it is good.
        assert!(receiver().receive(&on_a).is_ok());
    }

    #[test]
    fn a_frame_for_one_node_is_refused_by_another() {
        let to_0 = frame(1, 1, 1);
        let mut node_2 = Receiver::new(key(), cluster(), Route { to: Some(NodeId(2)), ..ROUTE });
        assert_eq!(node_2.receive(&to_0), Err(Reject::OtherReceiver));
        assert_eq!(node_2.receive(&rewritten(to_0.clone(), 16, 2)), Err(Reject::BadTag));
        // A disk slot's frame (to every reader) is no UDP frame, and the other way round.
        let every = Route { to: None, ..ROUTE };
        let slot = encode(&key(), cluster(), every, &heartbeat(1, 1, 2, realistic(2))).unwrap();
        assert_eq!(receiver().receive(&slot), Err(Reject::OtherReceiver));
        let mut disk = Receiver::new(key(), cluster(), every);
        assert_eq!(disk.receive(&to_0), Err(Reject::OtherReceiver));
        assert!(disk.receive(&slot).is_ok());
    }

    #[test]
    fn the_source_and_the_header_sender_must_agree_before_anything_else() {
        let mut rx = receiver();
        let never = |_: usize| -> bool { panic!("no budget asked for") };
        assert_eq!(rx.receive_from(&frame(1, 1, 1), None, never), Err(Reject::UnknownSource));
        assert_eq!(rx.receive_from(b"junk", None, never), Err(Reject::UnknownSource));
        assert_eq!(
            rx.receive_from(&frame(1, 1, 1), Some(NodeId(2)), never),
            Err(Reject::WrongSender)
        );
        assert_eq!(rx.counters().rejected(Reject::UnknownSource), 2);
        assert_eq!(rx.counters().rejected(Reject::WrongSender), 1);
        assert!(rx.receive_from(&frame(1, 1, 1), Some(NodeId(1)), |_| true).is_ok());
    }

    #[test]
    fn replays_cost_no_tag_check_and_the_budget_comes_last() {
        let mut rx = receiver();
        let first = frame(1, 1, 10);
        let mut asked = Vec::new();
        let spend = |n| {
            asked.push(n);
            true
        };
        assert!(rx.receive_from(&first, Some(NodeId(1)), spend).is_ok());
        assert_eq!(asked, [first.len()]);
        // The same frame, and the same frame with its payload damaged: refused as
        // replays, without asking for budget (so without computing the tag).
        let mut damaged = first.clone();
        damaged[HEADER_BYTES + 2] ^= 0x10;
        let never = |_: usize| -> bool { panic!("no budget asked for") };
        assert_eq!(rx.receive_from(&first, Some(NodeId(1)), never), Err(Reject::Replayed));
        assert_eq!(rx.receive_from(&damaged, Some(NodeId(1)), never), Err(Reject::Replayed));
        // Out of budget: refused before the tag, and nothing remembered.
        let next = frame(1, 1, 11);
        assert_eq!(rx.receive_from(&next, Some(NodeId(1)), |_| false), Err(Reject::RateLimited));
        // A forgery with a fresh sequence fails its tag and is not remembered either.
        let forged = rewritten(next.clone(), 28, 12);
        assert_eq!(rx.receive_from(&forged, Some(NodeId(1)), |_| true), Err(Reject::BadTag));
        assert!(rx.receive_from(&next, Some(NodeId(1)), |_| true).is_ok());
        assert!(rx.receive_from(&frame(1, 1, 12), Some(NodeId(1)), |_| true).is_ok());
        assert_eq!(rx.newest(NodeId(1)), Some((1, 12)));
    }

    #[test]
    fn remembered_state_refuses_what_an_earlier_run_saw() {
        let mut rx = receiver();
        rx.remember(NodeId(1), 7, 100);
        assert_eq!(rx.receive(&frame(1, 6, 500)), Err(Reject::StaleIncarnation));
        assert_eq!(rx.receive(&frame(1, 7, 100)), Err(Reject::Replayed));
        assert_eq!(rx.receive(&frame(1, 7, 60)), Err(Reject::Replayed));
        assert_eq!(rx.receive(&frame(1, 7, 30)), Err(Reject::TooOld));
        assert!(rx.receive(&frame(1, 7, 101)).is_ok());
        assert!(rx.receive(&frame(1, 8, 1)).is_ok());
        // An older state than the one held changes nothing.
        rx.remember(NodeId(1), 7, 200);
        assert!(rx.receive(&frame(1, 8, 2)).is_ok());
        assert_eq!(rx.newest(NodeId(1)), Some((8, 2)));
    }

    #[test]
    fn stale_incarnation() {
        let mut rx = receiver();
        assert!(rx.receive(&frame(1, 7, 100)).is_ok());
        assert_eq!(rx.receive(&frame(1, 6, 101)), Err(Reject::StaleIncarnation));
        // A new incarnation restarts the sequence.
        assert!(rx.receive(&frame(1, 8, 1)).is_ok());
        assert_eq!(rx.receive(&frame(1, 7, 102)), Err(Reject::StaleIncarnation));
        only(&rx, Reject::StaleIncarnation, 2);
        assert_eq!(rx.counters().accepted, 2);
    }

    #[test]
    fn replayed() {
        let mut rx = receiver();
        let first = frame(1, 1, 10);
        assert!(rx.receive(&first).is_ok());
        assert_eq!(rx.receive(&first), Err(Reject::Replayed));
        // Out of order within the window is fine, once.
        assert!(rx.receive(&frame(1, 1, 12)).is_ok());
        assert!(rx.receive(&frame(1, 1, 11)).is_ok());
        assert_eq!(rx.receive(&frame(1, 1, 11)), Err(Reject::Replayed));
        assert_eq!(rx.receive(&frame(1, 1, 12)), Err(Reject::Replayed));
        // Senders are independent.
        assert!(rx.receive(&frame(2, 1, 10)).is_ok());
        only(&rx, Reject::Replayed, 3);
    }

    #[test]
    fn too_old() {
        let mut rx = receiver();
        assert!(rx.receive(&frame(1, 1, 5)).is_ok());
        assert!(rx.receive(&frame(1, 1, 5 + REPLAY_WINDOW)).is_ok());
        assert_eq!(rx.receive(&frame(1, 1, 5)), Err(Reject::TooOld));
        assert_eq!(rx.receive(&frame(1, 1, 6)), Ok(heartbeat(1, 1, 6, realistic(2))));
        assert_eq!(rx.receive(&frame(1, 1, 6)), Err(Reject::Replayed));
        // Jumping further than the window forgets everything older.
        assert!(rx.receive(&frame(1, 1, 1_000)).is_ok());
        assert_eq!(rx.receive(&frame(1, 1, 1_000 - REPLAY_WINDOW)), Err(Reject::TooOld));
        assert!(rx.receive(&frame(1, 1, 1_000 - REPLAY_WINDOW + 1)).is_ok());
        assert_eq!(rx.counters().rejected(Reject::TooOld), 2);
    }

    #[test]
    fn malformed_payloads_and_senders() {
        let mut rx = receiver();
        let good = frame(1, 1, 1);
        assert_eq!(rx.receive(&set_payload(&good, &[0xff; 9])), Err(Reject::Malformed));
        assert_eq!(rx.receive(&set_payload(&good, &[])), Err(Reject::Malformed));
        let mut bad_sender = good.clone();
        bad_sender[14..16].copy_from_slice(&(NODES_MAX as u16).to_le_bytes());
        let bad_sender = resign(bad_sender);
        assert_eq!(crate::decode(&key(), cluster(), ROUTE, &bad_sender), Err(Reject::Malformed));
        assert_eq!(rx.receive(&bad_sender), Err(Reject::Malformed));
        only(&rx, Reject::Malformed, 3);
        // Nothing rejected was remembered: the good frame is still new.
        assert!(rx.receive(&good).is_ok());
    }

    #[test]
    fn every_truncation_and_bit_flip_is_rejected() {
        let bytes = frame(3, 2, 40);
        let mut rx = receiver();
        for len in 0..bytes.len() {
            assert!(rx.receive(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(rx.receive(&flipped).is_err(), "bit {bit}");
        }
        assert_eq!(rx.counters().accepted, 0);
        assert!(rx.receive(&bytes).is_ok());
    }

    proptest! {
        #[test]
        fn random_bytes_are_rejected(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            prop_assert!(receiver().receive(&bytes).is_err());
        }

        #[test]
        fn random_bytes_after_a_valid_header_are_rejected(
            tail in prop::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut bytes = frame(1, 1, 1)[..HEADER_BYTES].to_vec();
            bytes[36..40].copy_from_slice(&(tail.len().saturating_sub(TAG_BYTES) as u32).to_le_bytes());
            bytes.extend_from_slice(&tail);
            prop_assert!(receiver().receive(&bytes).is_err());
        }

        #[test]
        fn arbitrary_heartbeats_round_trip(
            report in report(60),
            from in 0..NODES_MAX as u16,
            incarnation in any::<u64>(),
            sequence in any::<u64>(),
        ) {
            let sent = heartbeat(from, incarnation, sequence, report);
            let bytes = encode(&key(), cluster(), ROUTE, &sent).unwrap();
            prop_assert_eq!(receiver().receive(&bytes), Ok(sent));
        }
    }

    #[test]
    fn arbitrary_thousand_group_reports_round_trip() {
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
            cases: 8,
            ..Default::default()
        });
        runner
            .run(&report(1_000), |report| {
                let sent = heartbeat(2, 1, 1, report);
                let bytes = encode(&key(), cluster(), ROUTE, &sent).unwrap();
                prop_assert_eq!(receiver().receive(&bytes), Ok(sent));
                Ok(())
            })
            .unwrap();
    }
}
