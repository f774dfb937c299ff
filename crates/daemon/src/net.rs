//! The UDP links: one socket per `udp` link, bound to this node's address on that link,
//! sending every heartbeat the engine addresses to a peer to the peer's address on the
//! link, and receiving into the daemon's loop. Frames are built and checked by the
//! `wire` crate (HMAC-SHA256 with the cluster key, incarnation and sequence numbers);
//! a frame that fails any check is dropped and counted per link and reason.
//!
//! Also here: per link and peer, the loss seen in the peer's sequence numbers (every
//! heartbeat goes out on every link with the same sequence number, so a gap on one link
//! is a packet lost on that link), reset every [`LOSS_WINDOW`].

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::time::Duration;

use anyhow::Context as _;
use engine::{Heartbeat, LinkId, NodeId};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// The largest datagram read.
const RECV_BYTES: usize = wire::PACKET_BYTES_MAX + 1;

/// Loss counters start again after this long.
pub const LOSS_WINDOW: Duration = Duration::from_secs(60);

/// A datagram that arrived on a link.
pub struct Packet {
    pub link: LinkId,
    pub bytes: Vec<u8>,
}

/// One UDP link's socket and the peers' addresses on it.
pub struct UdpLink {
    pub link: LinkId,
    socket: std::sync::Arc<UdpSocket>,
    /// Indexed by node id; `None` for this node.
    peers: Vec<Option<SocketAddr>>,
    pub receiver: wire::Receiver,
    /// Datagrams that could not be sent (buffer full, no route).
    pub send_errors: u64,
}

impl UdpLink {
    /// Binds this node's address on `link` and starts receiving into `packets`.
    pub fn open(
        config: &config::Config,
        me: NodeId,
        link: LinkId,
        receiver: wire::Receiver,
        packets: mpsc::Sender<Packet>,
    ) -> anyhow::Result<UdpLink> {
        let spec = &config.cluster;
        let name = &spec.link(link).name;
        let address = config.node(me).addresses[usize::from(link.0)]
            .with_context(|| format!("link `{name}` has no address for this node"))?;
        let std = StdUdpSocket::bind(address).with_context(|| {
            format!("cannot bind link `{name}` to {address} (is the address on this host?)")
        })?;
        std.set_nonblocking(true)?;
        let socket = std::sync::Arc::new(UdpSocket::from_std(std)?);
        let peers = spec
            .node_ids()
            .map(|n| if n == me { None } else { config.node(n).addresses[usize::from(link.0)] })
            .collect();
        let reader = socket.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; RECV_BYTES];
            loop {
                match reader.recv_from(&mut buf).await {
                    Ok((n, _from)) => {
                        // Full queue: the loop is behind; dropping is what UDP would do.
                        let _ = packets.try_send(Packet { link, bytes: buf[..n].to_vec() });
                    }
                    Err(e) => {
                        tracing::debug!(link = link.0, "receive error: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });
        Ok(UdpLink { link, socket, peers, receiver, send_errors: 0 })
    }

    /// Sends one frame to `to` (never blocks: a full socket buffer drops it).
    pub fn send(&mut self, to: NodeId, frame: &[u8]) {
        let Some(Some(address)) = self.peers.get(usize::from(to.0)) else { return };
        if self.socket.try_send_to(frame, *address).is_err() {
            self.send_errors += 1;
        }
    }
}

/// Sequence-number bookkeeping of one peer on one link.
#[derive(Clone, Copy, Debug, Default)]
pub struct LossCounter {
    incarnation: u64,
    first: u64,
    newest: u64,
    received: u64,
    started: Option<std::time::Instant>,
}

impl LossCounter {
    pub fn record(&mut self, heartbeat: &Heartbeat) {
        let now = std::time::Instant::now();
        let expired = self.started.is_none_or(|s| now.duration_since(s) > LOSS_WINDOW);
        if heartbeat.incarnation != self.incarnation || expired {
            *self = LossCounter {
                incarnation: heartbeat.incarnation,
                first: heartbeat.sequence,
                newest: heartbeat.sequence,
                received: 1,
                started: Some(now),
            };
            return;
        }
        self.newest = self.newest.max(heartbeat.sequence);
        self.received += 1;
    }

    /// Percent of the peer's heartbeats in the window that did not arrive on this link.
    pub fn loss_percent(&self) -> Option<f64> {
        let expected = self.newest.checked_sub(self.first)? + 1;
        if expected < 2 {
            return None;
        }
        let lost = expected.saturating_sub(self.received);
        Some(lost as f64 * 100.0 / expected as f64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use engine::{AdminState, Instant, NodeReport, NodeState};

    use super::*;

    fn beat(incarnation: u64, sequence: u64) -> Heartbeat {
        Heartbeat {
            from: NodeId(1),
            incarnation,
            sequence,
            sent_at: Instant(0),
            echo: None,
            report: Arc::new(NodeReport {
                state: NodeState::Standby,
                storage_ok: true,
                groups: Vec::new(),
                links_up: Vec::new(),
                admin: AdminState::default(),
            }),
        }
    }

    #[test]
    fn loss_counts_gaps_and_restarts_with_a_new_incarnation() {
        let mut counter = LossCounter::default();
        for seq in [1, 2, 4, 5, 8, 9, 10] {
            counter.record(&beat(7, seq));
        }
        // 10 sent, 7 arrived.
        assert_eq!(counter.loss_percent(), Some(30.0));
        counter.record(&beat(8, 1));
        assert_eq!(counter.loss_percent(), None);
        counter.record(&beat(8, 2));
        assert_eq!(counter.loss_percent(), Some(0.0));
    }
}
