//! Heartbeats and failure detection. A link to a peer is up while heartbeats arrive on
//! it within `peer_timeout`; a peer is alive while ANY link to it is up (the three-link
//! interlock, PRODUCT.md 3.2). Losing one link raises an alarm and changes nothing else.

use std::sync::Arc;
use std::time::Duration;

use super::{ms, Engine};
use crate::catalogue;
use crate::io::{Echo, Heartbeat, NodeReport};
use crate::spec::{LinkId, LinkKind, NodeId};
use crate::time::Instant;

/// What this node knows about one peer.
pub(super) struct Peer {
    pub(super) alive: bool,
    pub(super) incarnation: Option<u64>,
    /// Sequence of the report held in `report`.
    pub(super) report_sequence: u64,
    pub(super) report: Option<Arc<NodeReport>>,
    pub(super) links: Vec<PeerLink>,
}

#[derive(Default)]
pub(super) struct PeerLink {
    pub(super) up: bool,
    pub(super) last_heard: Option<Instant>,
    /// Highest sequence seen on this link (this incarnation).
    last_sequence: u64,
    /// The peer's `sent_at` of its last heartbeat on this link, and when it arrived.
    last_received: Option<(Instant, Instant)>,
    pub(super) rtt: Option<Duration>,
}

impl Peer {
    pub(super) fn new(links: usize) -> Peer {
        Peer {
            alive: false,
            incarnation: None,
            report_sequence: 0,
            report: None,
            links: (0..links).map(|_| PeerLink::default()).collect(),
        }
    }

    pub(super) fn live_report(&self) -> Option<&NodeReport> {
        if self.alive {
            self.report.as_deref()
        } else {
            None
        }
    }
}

impl Engine {
    pub(super) fn on_heartbeat(&mut self, link: LinkId, message: Heartbeat, received: Instant) {
        let from = message.from;
        if from == self.me
            || usize::from(from.0) >= self.peers.len()
            || usize::from(link.0) >= self.spec.links.len()
        {
            return;
        }
        let now = self.now;
        let peer_index = usize::from(from.0);
        match self.peers[peer_index].incarnation {
            Some(known) if message.incarnation < known => {
                self.stale_heartbeats += 1;
                return;
            }
            Some(known) if message.incarnation > known => {
                self.peer_restarted(from, message.incarnation);
            }
            Some(_) => {}
            None => self.peers[peer_index].incarnation = Some(message.incarnation),
        }

        let peer_link = &mut self.peers[peer_index].links[usize::from(link.0)];
        if message.sequence <= peer_link.last_sequence {
            return; // duplicate or reordered copy: proves nothing new
        }
        peer_link.last_sequence = message.sequence;
        // Never in the future, never before what this link was last heard at.
        let heard = received.min(now).max(peer_link.last_heard.unwrap_or(received));
        peer_link.last_heard = Some(heard);
        peer_link.last_received = Some((message.sent_at, heard));
        if let Some(echo) = message.echo {
            let round_trip = heard.saturating_since(echo.sent_at);
            peer_link.rtt = Some(round_trip.saturating_sub(echo.held));
        }
        let link_came_up = !peer_link.up;
        peer_link.up = true;
        self.keep_in_step(link, peer_index);

        if !self.peers[peer_index].alive {
            self.peers[peer_index].alive = true;
            self.touch_all();
            let name = self.name(from).to_string();
            self.event(
                &catalogue::PEER_JOINED,
                None,
                None,
                Some(format!("node {name}")),
                format!("peer {name} online (heard on link {})", self.spec.link(link).name),
            );
        } else if link_came_up {
            let location = self.link_location(link, from);
            self.event(
                &catalogue::LINK_UP,
                None,
                None,
                Some(location.clone()),
                format!("{location} up"),
            );
        }

        let peer = &mut self.peers[peer_index];
        if message.sequence > peer.report_sequence {
            peer.report_sequence = message.sequence;
            let changed = match &peer.report {
                Some(old) => !Arc::ptr_eq(old, &message.report) && **old != *message.report,
                None => true,
            };
            if changed {
                let old = peer.report.replace(message.report.clone());
                self.report_changed(old.as_deref(), &message.report);
            }
        }
    }

    /// A peer's report changed: evaluate what it can affect.
    fn report_changed(&mut self, old: Option<&NodeReport>, new: &NodeReport) {
        if old.is_none_or(|old| old.admin != new.admin) {
            self.merge_admin(&new.admin);
        }
        match old {
            Some(old) if old.state == new.state && old.groups.len() == new.groups.len() => {
                for (index, (a, b)) in old.groups.iter().zip(&new.groups).enumerate() {
                    if a != b {
                        self.touch(crate::spec::GroupId(index as u32));
                    }
                }
            }
            _ => self.touch_all(),
        }
    }

    fn peer_restarted(&mut self, from: NodeId, incarnation: u64) {
        let peer = &mut self.peers[usize::from(from.0)];
        peer.incarnation = Some(incarnation);
        peer.report = None;
        peer.report_sequence = 0;
        for link in &mut peer.links {
            link.last_sequence = 0;
        }
        self.touch_all();
        let name = self.name(from).to_string();
        self.event(
            &catalogue::PEER_RESTARTED,
            None,
            None,
            Some(format!("node {name}")),
            format!("peer {name} restarted (incarnation {incarnation})"),
        );
    }

    pub(super) fn on_storage_path(&mut self, ok: bool) {
        if ok == self.storage_ok {
            return;
        }
        self.storage_ok = ok;
        self.touch_all();
        let location = format!("storage path of {}", self.name(self.me));
        if ok {
            self.event(
                &catalogue::STORAGE_PATH_RESTORED,
                None,
                None,
                Some(location),
                "shared-disk I/O works again".to_string(),
            );
        } else {
            self.event(
                &catalogue::STORAGE_PATH_LOST,
                None,
                None,
                Some(location),
                "shared-disk I/O fails on this node".to_string(),
            );
        }
    }

    pub(super) fn link_location(&self, link: LinkId, peer: NodeId) -> String {
        format!(
            "link {} between {} and {}",
            self.spec.link(link).name,
            self.name(self.me),
            self.name(peer)
        )
    }

    /// Links whose heartbeats stopped; peers whose every link stopped.
    pub(super) fn link_timers(&mut self) {
        let timeout = self.timing().peer_timeout;
        let now = self.now;
        for peer_index in 0..self.peers.len() {
            let mut went_down = Vec::new();
            for (link_index, link) in self.peers[peer_index].links.iter_mut().enumerate() {
                if link.up && link.last_heard.is_some_and(|t| now >= t + timeout) {
                    link.up = false;
                    link.rtt = None;
                    went_down.push(LinkId(link_index as u16));
                }
            }
            if went_down.is_empty() {
                continue;
            }
            let peer_id = NodeId(peer_index as u16);
            let any_up = self.peers[peer_index].links.iter().any(|l| l.up);
            if any_up {
                for link in went_down {
                    let location = self.link_location(link, peer_id);
                    self.event(
                        &catalogue::LINK_DOWN,
                        None,
                        None,
                        Some(location.clone()),
                        format!("{location} down: no heartbeat for {}", ms(timeout)),
                    );
                }
            } else if self.peers[peer_index].alive {
                self.peers[peer_index].alive = false;
                self.touch_all();
                let name = self.name(peer_id).to_string();
                self.event(
                    &catalogue::PEER_LOST,
                    None,
                    None,
                    Some(format!("node {name}")),
                    format!("peer {name} offline: no heartbeat on any link for {}", ms(timeout)),
                );
            }
        }
    }

    pub(super) fn link_deadline(&self) -> Instant {
        let timeout = self.timing().peer_timeout;
        self.peers
            .iter()
            .flat_map(|p| p.links.iter())
            .filter(|l| l.up)
            .filter_map(|l| l.last_heard.map(|t| t + timeout))
            .min()
            .unwrap_or(Instant::MAX)
    }

    /// Send a heartbeat on every link to every peer when one is due.
    pub(super) fn heartbeat_timer(&mut self) {
        if self.now < self.next_heartbeat_at {
            return;
        }
        // Groups waiting to be evaluated (booting just ended, say) have stale entries in
        // the report: a peer reading "standby, ineligible: booting" would start this
        // node's groups itself. `poll_output` evaluates them and sends the report; while
        // the heartbeat stays due, the next wait returns at once.
        if self.dirty_all || !self.touched.is_empty() {
            return;
        }
        // Always the current report: not every change re-evaluates placement (an admin
        // write that changes nothing here, a link coming up), yet peers must learn it.
        let report = self.build_report();
        if report != *self.report {
            self.report = Arc::new(report);
        }
        self.send_heartbeats();
    }

    /// Ticks in step with the peers: a heartbeat received over the network within half
    /// an interval before this node's next tick brings that tick forward to the instant
    /// the peer sent it (by half the link's round trip, as measured), so the heartbeats
    /// go out now, at most half an interval early, which only makes them more frequent.
    /// Two nodes thus settle into one phase within an interval or two: their ticks come
    /// together, each receives the other's heartbeats while awake for its own tick,
    /// and wakes about once per interval instead of once for its tick and once or twice
    /// for the peer's heartbeats (the main share of a node's cost at idle). Only network
    /// links: the disk slots are read at this node's own pace.
    fn keep_in_step(&mut self, link: LinkId, peer_index: usize) {
        if self.spec.link(link).kind != LinkKind::Udp {
            return;
        }
        let interval = self.timing().heartbeat_interval;
        let ahead = self.next_heartbeat_at.saturating_since(self.now);
        if ahead > Duration::ZERO && ahead < interval / 2 {
            let rtt = self.peers[peer_index].links[usize::from(link.0)].rtt.unwrap_or_default();
            let sent = self.now - (rtt / 2).min(interval / 10);
            // Never before the previous tick (the grid goes on from here).
            let floor = self.last_heartbeat_at.unwrap_or(sent);
            self.next_heartbeat_at = sent.max(floor);
        }
    }

    pub(super) fn send_heartbeats(&mut self) {
        let now = self.now;
        let interval = self.timing().heartbeat_interval;
        // A due tick keeps the ticks on their grid (the next is due an interval after
        // this one was due, not after it went out), so that what goes with a heartbeat
        // (a lease renewal due within half an interval, the shell's disk job) stays
        // with it instead of drifting apart by the shell's lateness; a tick more than an
        // interval late, or a heartbeat sent between ticks (a changed report), starts
        // the grid again.
        let on_grid = self.next_heartbeat_at + interval;
        self.next_heartbeat_at =
            if now >= self.next_heartbeat_at && on_grid > now { on_grid } else { now + interval };
        self.last_heartbeat_at = Some(now);
        self.sequence += 1;
        for peer_index in 0..self.peers.len() {
            let to = NodeId(peer_index as u16);
            if to == self.me {
                continue;
            }
            for link_index in 0..self.spec.links.len() {
                let echo = self.peers[peer_index].links[link_index].last_received.map(
                    |(sent_at, received)| Echo { sent_at, held: now.saturating_since(received) },
                );
                let message = Heartbeat {
                    from: self.me,
                    incarnation: self.incarnation,
                    sequence: self.sequence,
                    sent_at: now,
                    echo,
                    report: self.report.clone(),
                };
                self.push(crate::io::Output::Heartbeat {
                    link: LinkId(link_index as u16),
                    to,
                    message,
                });
            }
        }
    }

    pub(super) fn peer_alive(&self, node: NodeId) -> bool {
        node == self.me || self.peers[usize::from(node.0)].alive
    }

    pub(super) fn all_peers_heard(&self) -> bool {
        self.peers.iter().enumerate().all(|(i, p)| i == usize::from(self.me.0) || p.alive)
    }
}
