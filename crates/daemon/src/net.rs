//! The UDP links: one socket per `udp` link, bound to this node's address on that link,
//! sending every heartbeat the engine addresses to a peer to the peer's address on the
//! link, and receiving into the daemon's loop. Frames are built and checked by the
//! `wire` crate (HMAC-SHA256 with the cluster key, incarnation and sequence numbers);
//! a frame that fails any check is dropped and counted per link and reason.
//!
//! The sockets are registered with the runtime for reading only and read by the
//! daemon's loop itself (no task, no channel in between), and frames are sent with a
//! plain non-blocking `send_to`: a socket registered for writing too would wake the
//! loop after every heartbeat sent, for nothing.
//!
//! Also here: per link and peer, the loss seen in the peer's sequence numbers (every
//! heartbeat goes out on every link with the same sequence number, so a gap on one link
//! is a packet lost on that link), reset every [`LOSS_WINDOW`].

use std::future::poll_fn;
use std::net::{SocketAddr, UdpSocket};
use std::task::Poll;
use std::time::Duration;

use anyhow::Context as _;
use engine::{Heartbeat, LinkId, NodeId};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The largest datagram read.
pub const RECV_BYTES: usize = wire::PACKET_BYTES_MAX + 1;

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
    socket: AsyncFd<UdpSocket>,
    /// Indexed by node id; `None` for this node.
    peers: Vec<Option<SocketAddr>>,
    pub receiver: wire::Receiver,
    /// Datagrams that could not be sent (buffer full, no route).
    pub send_errors: u64,
}

impl UdpLink {
    /// Binds this node's address on `link`.
    pub fn open(
        config: &config::Config,
        me: NodeId,
        link: LinkId,
        receiver: wire::Receiver,
    ) -> anyhow::Result<UdpLink> {
        let spec = &config.cluster;
        let name = &spec.link(link).name;
        let address = config.node(me).addresses[usize::from(link.0)]
            .with_context(|| format!("link `{name}` has no address for this node"))?;
        let std = UdpSocket::bind(address).with_context(|| {
            format!("cannot bind link `{name}` to {address} (is the address on this host?)")
        })?;
        std.set_nonblocking(true)?;
        // SAFETY: the socket is moved into the AsyncFd and owned by it until it is
        // dropped, so its descriptor stays open and is always the one `as_raw_fd`
        // returns (the only requirement; tokio's safe constructors register for writing
        // too, which is what this avoids).
        #[allow(unsafe_code)]
        let socket = unsafe { AsyncFd::register_with_interest(std, Interest::READABLE)? };
        let peers = spec
            .node_ids()
            .map(|n| if n == me { None } else { config.node(n).addresses[usize::from(link.0)] })
            .collect();
        Ok(UdpLink { link, socket, peers, receiver, send_errors: 0 })
    }

    /// Sends one frame to `to` (never blocks: a full socket buffer drops it).
    pub fn send(&mut self, to: NodeId, frame: &[u8]) {
        let Some(Some(address)) = self.peers.get(usize::from(to.0)) else { return };
        if self.socket.get_ref().send_to(frame, *address).is_err() {
            self.send_errors += 1;
        }
    }
}

/// The next datagram on any of `links` (read into `buf`; the loop copies it out).
/// Errors other than "nothing there" are logged and the link is tried again later.
pub async fn receive(links: &[&UdpLink], buf: &mut [u8]) -> Packet {
    poll_fn(|cx| {
        for udp in links {
            loop {
                let mut guard = match udp.socket.poll_read_ready(cx) {
                    Poll::Ready(Ok(guard)) => guard,
                    Poll::Ready(Err(e)) => {
                        tracing::debug!(link = udp.link.0, "receive error: {e}");
                        break;
                    }
                    Poll::Pending => break,
                };
                match guard.try_io(|socket| socket.get_ref().recv_from(buf)) {
                    Ok(Ok((n, _from))) => {
                        return Poll::Ready(Packet { link: udp.link, bytes: buf[..n].to_vec() });
                    }
                    Ok(Err(e)) => {
                        // ICMP errors and the like: reported, then the next datagram.
                        tracing::debug!(link = udp.link.0, "receive error: {e}");
                    }
                    // Drained: readiness cleared, poll again (registers the waker).
                    Err(_would_block) => continue,
                }
            }
        }
        Poll::Pending
    })
    .await
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
