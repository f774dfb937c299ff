//! The UDP links: one socket per `udp` link, bound to this node's address on that link,
//! sending every heartbeat the engine addresses to a peer to the peer's address on the
//! link, and receiving into the daemon's loop. Frames are built and checked by the
//! `wire` crate (HMAC-SHA256 with the cluster key over the frame and its route,
//! incarnation and sequence numbers); a frame that fails any check is dropped and counted
//! per link, reason and source.
//!
//! The sockets are registered with the runtime for reading only and read by the
//! daemon's loop itself (no task, no channel in between), a batch of up to
//! [`BATCH`] datagrams per system call (`recvmmsg`), the links served in turn; frames
//! are sent with a plain non-blocking `send_to`: a socket registered for writing too
//! would wake the loop after every heartbeat sent, for nothing. Each socket asks for a
//! [`RECEIVE_BUFFER_BYTES`] receive buffer (`SO_RCVBUFFORCE` as root, else `SO_RCVBUF`
//! within `net.core.rmem_max`), so that a flood does not crowd real heartbeats out of a
//! full buffer while the loop is busy, and for the kernel's drop counter
//! (`SO_RXQ_OVFL`), shown as `kernel_drops`.
//!
//! What a flood costs is bounded before any cryptography ([`UdpLink::check`]): a
//! datagram whose source is not a peer's configured address on the link is dropped
//! first (`unknown_source`); then the header, route, sender and replay window are
//! checked (a replayed or damaged copy of a real frame stops there); only then does the
//! frame spend from its source's token bucket ([`Budget`]: bytes of tag computation per
//! second, one bucket for frames of a real heartbeat's size and one for larger ones) and
//! have its tag computed. Rejections by source and floods ([`FloodWatch`]: when they
//! start and end, with their totals) are the node's to journal and show.

use std::future::poll_fn;
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::task::Poll;
use std::time::Duration;

use anyhow::Context as _;
use engine::catalogue::{self, CodeInfo};
use engine::{Heartbeat, Instant, LinkId, NodeId};
use nix::sys::socket::{
    recvmmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The largest datagram read.
pub const RECV_BYTES: usize = wire::PACKET_BYTES_MAX + 1;

/// Datagrams read per system call.
pub const BATCH: usize = 32;

/// The receive buffer each UDP socket asks for: at 100,000 small datagrams a second
/// (about 1 KiB of buffer each, as the kernel counts), 80 ms of the loop doing other
/// things.
pub const RECEIVE_BUFFER_BYTES: usize = 8 << 20;

/// Sources whose rejections are counted one by one, per link; the rest are counted
/// together as "other sources".
pub const SOURCES_KEPT: usize = 16;

/// Rejections per second on a link from which on a flood is reported.
pub const FLOOD_REJECTS_PER_SECOND: u64 = 100;

/// A flood is over after this long below [`FLOOD_REJECTS_PER_SECOND`].
pub const FLOOD_QUIET: Duration = Duration::from_secs(10);

/// A flood's start is journaled at most this often per link (its end always is).
pub const FLOOD_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// A datagram read into a [`Batch`]: its length and source.
#[derive(Clone, Copy, Debug)]
struct Datagram {
    bytes: usize,
    source: Option<SocketAddr>,
}

/// The loop's receive buffers: [`BATCH`] datagrams of up to [`RECV_BYTES`] each.
pub struct Batch {
    buffers: Vec<Vec<u8>>,
    read: Vec<Datagram>,
    /// The kernel's drop counter of the link read last (`SO_RXQ_OVFL`), if it came.
    drops: Option<u32>,
    /// The link to try first next time (links are served in turn).
    next: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            buffers: vec![vec![0; RECV_BYTES]; BATCH],
            read: Vec::with_capacity(BATCH),
            drops: None,
            next: 0,
        }
    }
}

impl Batch {
    /// Reads what `socket` holds, up to [`BATCH`] datagrams.
    fn read(&mut self, socket: &UdpSocket) -> std::io::Result<usize> {
        let mut slices: Vec<[IoSliceMut<'_>; 1]> =
            self.buffers.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        // Made anew for every call: `recvmmsg` leaves each header's control length at
        // what the kernel wrote (0 without a drop count), so reused headers would have
        // no room for the count any more.
        let mut headers = MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(u32)));
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        self.read.clear();
        for message in results {
            let source = message.address.and_then(|a: SockaddrStorage| socket_addr(&a));
            if let Ok(cmsgs) = message.cmsgs() {
                for cmsg in cmsgs {
                    if let ControlMessageOwned::RxqOvfl(drops) = cmsg {
                        self.drops = Some(drops);
                    }
                }
            }
            self.read.push(Datagram { bytes: message.bytes, source });
        }
        Ok(self.read.len())
    }

    /// The last read filled every buffer: more may be waiting.
    pub fn is_full(&self) -> bool {
        self.read.len() == BATCH
    }

    /// The datagrams read last, with their bytes.
    fn datagrams(&self) -> impl Iterator<Item = (&[u8], Option<SocketAddr>)> + '_ {
        self.read.iter().zip(&self.buffers).map(|(d, b)| (&b[..d.bytes.min(b.len())], d.source))
    }
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    address.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

/// Token buckets of one source: bytes of tag computation per second.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// For frames up to [`Budget::small_bytes`] (a real heartbeat's size).
    small: f64,
    /// For larger frames, so that a flood of large ones leaves the small ones alone.
    large: f64,
    /// The largest frame accepted from this source.
    largest: usize,
    at: Option<std::time::Instant>,
}

impl Budget {
    /// Bytes of tag computation per second and bucket: 16 MiB, a few percent of one core
    /// for HMAC-SHA256 and 4 times what a peer sending 60 frames a second of the
    /// largest size needs. Each frame also costs [`Budget::FRAME_COST`].
    pub const RATE: f64 = 16.0 * 1024.0 * 1024.0;
    /// What a frame costs besides its bytes (the system call, the checks).
    pub const FRAME_COST: usize = 1024;

    fn new() -> Budget {
        Budget { small: Budget::RATE, large: Budget::RATE, largest: 0, at: None }
    }

    /// Frames up to this size spend from the small bucket: twice the largest accepted
    /// from the source, at least 4 KiB.
    fn small_bytes(&self) -> usize {
        (2 * self.largest).max(4096)
    }

    /// Takes the cost of a frame of `bytes` at `now`; false when its bucket is empty.
    fn spend(&mut self, bytes: usize, now: std::time::Instant) -> bool {
        let elapsed = self.at.map_or(1.0, |at| now.duration_since(at).as_secs_f64());
        self.at = Some(now);
        let refill = elapsed * Budget::RATE;
        self.small = (self.small + refill).min(Budget::RATE);
        self.large = (self.large + refill).min(Budget::RATE);
        let cost = (bytes + Budget::FRAME_COST) as f64;
        let bucket = if bytes <= self.small_bytes() { &mut self.small } else { &mut self.large };
        if *bucket < cost {
            return false;
        }
        *bucket -= cost;
        true
    }
}

/// Rejections counted by source (up to [`SOURCES_KEPT`] of them, the rest together).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BySource {
    pub sources: Vec<(SocketAddr, u64)>,
    pub other: u64,
}

impl BySource {
    fn count(&mut self, source: Option<SocketAddr>) {
        let Some(source) = source else {
            self.other += 1;
            return;
        };
        if let Some(entry) = self.sources.iter_mut().find(|(s, _)| *s == source) {
            entry.1 += 1;
        } else if self.sources.len() < SOURCES_KEPT {
            self.sources.push((source, 1));
        } else {
            self.other += 1;
        }
    }

    /// The counts since `before`, largest first.
    pub fn since(&self, before: &BySource) -> BySource {
        let earlier =
            |s: &SocketAddr| before.sources.iter().find(|(b, _)| b == s).map_or(0, |(_, n)| *n);
        let mut sources: Vec<(SocketAddr, u64)> = self
            .sources
            .iter()
            .map(|(s, n)| (*s, n - earlier(s)))
            .filter(|(_, n)| *n > 0)
            .collect();
        sources.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        BySource { sources, other: self.other - before.other }
    }

    /// "10.0.0.2:7000 50000, 10.0.0.9:1234 3, other sources 7".
    pub fn describe(&self, most: usize) -> String {
        let mut parts: Vec<String> =
            self.sources.iter().take(most).map(|(s, n)| format!("{s} {n}")).collect();
        let rest = self.other + self.sources.iter().skip(most).map(|(_, n)| n).sum::<u64>();
        if rest > 0 {
            parts.push(format!("other sources {rest}"));
        }
        parts.join(", ")
    }
}

/// "25000 replayed, 24000 unknown_source" for the reasons with a count.
pub fn describe_reasons(counters: &wire::Counters) -> String {
    let mut reasons: Vec<(wire::Reject, u64)> =
        counters.by_reason().filter(|(_, n)| *n > 0).collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    let parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.join(", ")
}

/// A link's counts at one instant.
#[derive(Clone, Debug)]
struct Snapshot {
    at: Instant,
    counters: wire::Counters,
    sources: BySource,
    kernel_drops: u64,
}

/// A flood in progress on one link.
#[derive(Clone, Debug)]
struct Flood {
    start: Snapshot,
    peak: u64,
    /// Its start was journaled (not within [`FLOOD_REPORT_INTERVAL`] of another's).
    reported: bool,
    /// Since when the rate is below the threshold.
    quiet_since: Option<Instant>,
}

/// Watches one link's rejections for floods, one window of at least a second at a time:
/// a window over [`FLOOD_REJECTS_PER_SECOND`] starts one, [`FLOOD_QUIET`] below it
/// ends it.
#[derive(Clone, Debug, Default)]
pub struct FloodWatch {
    window: Option<Snapshot>,
    flood: Option<Flood>,
    last_report: Option<Instant>,
}

impl FloodWatch {
    /// Since when a flood is in progress, and its peak rate (per second).
    pub fn current(&self) -> Option<(Instant, u64)> {
        self.flood.as_ref().map(|f| (f.start.at, f.peak))
    }
}

/// One UDP link's socket and the peers' addresses on it.
pub struct UdpLink {
    pub link: LinkId,
    socket: AsyncFd<UdpSocket>,
    /// Indexed by node id; `None` for this node.
    peers: Vec<Option<SocketAddr>>,
    pub receiver: wire::Receiver,
    /// Indexed by node id: each peer's address's budget.
    budgets: Vec<Budget>,
    /// Rejected datagrams by source.
    pub rejected_by: BySource,
    /// The kernel's drops on this socket for a full receive buffer, as last reported
    /// (`SO_RXQ_OVFL` with a datagram, or the socket's line of `/proc/net/udp`).
    pub kernel_drops: u64,
    /// The socket's inode, to find its line in `/proc/net/udp`.
    inode: u64,
    drops_read_at: Option<Instant>,
    /// Reads that filled a whole batch since `drops_read_at`.
    full_batches_since_drops: u32,
    /// The receive buffer the kernel gave (bytes, as `SO_RCVBUF` reads).
    pub receive_buffer: usize,
    pub flood: FloodWatch,
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
        // Beyond net.core.rmem_max only as root; below it, what the kernel allows.
        if setsockopt(&std, sockopt::RcvBufForce, &RECEIVE_BUFFER_BYTES).is_err() {
            let _ = setsockopt(&std, sockopt::RcvBuf, &RECEIVE_BUFFER_BYTES);
        }
        let receive_buffer = nix::sys::socket::getsockopt(&std, sockopt::RcvBuf).unwrap_or(0);
        let inode = nix::sys::stat::fstat(&std).map_or(0, |s| s.st_ino);
        setsockopt(&std, sockopt::RxqOvfl, &1)
            .with_context(|| format!("link `{name}`: cannot ask for the drop counter"))?;
        // SAFETY: the socket is moved into the AsyncFd and owned by it until it is
        // dropped, so its descriptor stays open and is always the one `as_raw_fd`
        // returns (the only requirement; tokio's safe constructors register for writing
        // too, which is what this avoids).
        #[allow(unsafe_code)]
        let socket = unsafe { AsyncFd::register_with_interest(std, Interest::READABLE)? };
        let peers: Vec<Option<SocketAddr>> = spec
            .node_ids()
            .map(|n| if n == me { None } else { config.node(n).addresses[usize::from(link.0)] })
            .collect();
        Ok(UdpLink {
            link,
            socket,
            budgets: vec![Budget::new(); peers.len()],
            peers,
            receiver,
            rejected_by: BySource::default(),
            kernel_drops: 0,
            inode,
            drops_read_at: None,
            full_batches_since_drops: 0,
            receive_buffer,
            flood: FloodWatch::default(),
            send_errors: 0,
        })
    }

    /// Sends one frame to `to` (never blocks: a full socket buffer drops it).
    pub fn send(&mut self, to: NodeId, frame: &[u8]) {
        let Some(Some(address)) = self.peers.get(usize::from(to.0)) else { return };
        if self.socket.get_ref().send_to(frame, *address).is_err() {
            self.send_errors += 1;
        }
    }

    /// The peer whose address on this link is `source`.
    fn peer_at(&self, source: Option<SocketAddr>) -> Option<NodeId> {
        // Address and port (an IPv6 source's flow label and scope are not configured).
        let source = source?;
        let same = |p: &SocketAddr| p.ip() == source.ip() && p.port() == source.port();
        let index = self.peers.iter().position(|p| p.as_ref().is_some_and(same))?;
        Some(NodeId(index as u16))
    }

    /// Checks the datagrams of `batch` (read from this link): the heartbeats accepted;
    /// every rejection counted by reason and source.
    pub fn check(&mut self, batch: &Batch) -> Vec<Heartbeat> {
        if let Some(drops) = batch.drops {
            self.kernel_drops = self.kernel_drops.max(u64::from(drops));
        }
        if batch.is_full() {
            self.full_batches_since_drops = self.full_batches_since_drops.saturating_add(1);
        }
        let now = std::time::Instant::now();
        let mut accepted = Vec::new();
        for (bytes, source) in batch.datagrams() {
            let peer = self.peer_at(source);
            let budget = peer.and_then(|p| self.budgets.get_mut(usize::from(p.0)));
            let result = match budget {
                Some(budget) => {
                    let result = self.receiver.receive_from(bytes, peer, |n| budget.spend(n, now));
                    if result.is_ok() {
                        budget.largest = budget.largest.max(bytes.len());
                    }
                    result
                }
                None => self.receiver.receive_from(bytes, None, |_| false),
            };
            match result {
                Ok(heartbeat) => accepted.push(heartbeat),
                Err(_) => self.rejected_by.count(source),
            }
        }
        accepted
    }

    /// What [`FloodWatch`] has to report at `now`: a flood started or ended on this
    /// link (`name`), as a code and a message for the journal.
    pub fn flood_news(&mut self, now: Instant, name: &str) -> Option<(&'static CodeInfo, String)> {
        let snapshot = || Snapshot {
            at: now,
            counters: self.receiver.counters().clone(),
            sources: self.rejected_by.clone(),
            kernel_drops: self.kernel_drops,
        };
        let watch = &mut self.flood;
        let Some(window) = watch.window.take() else {
            watch.window = Some(snapshot());
            return None;
        };
        let elapsed = now.saturating_since(window.at);
        if elapsed < Duration::from_secs(1) {
            watch.window = Some(window);
            return None;
        }
        let snapshot = snapshot();
        watch.window = Some(snapshot.clone());
        let during_window = snapshot.counters.since(&window.counters).rejected_total();
        let rate = (during_window as f64 / elapsed.as_secs_f64()) as u64;
        let over = rate >= FLOOD_REJECTS_PER_SECOND;
        let Some(flood) = &mut watch.flood else {
            if !over {
                return None;
            }
            let reported = watch
                .last_report
                .is_none_or(|at| now.saturating_since(at) >= FLOOD_REPORT_INTERVAL);
            watch.flood =
                Some(Flood { start: window.clone(), peak: rate, reported, quiet_since: None });
            if !reported {
                return None;
            }
            watch.last_report = Some(now);
            let during = snapshot.counters.since(&window.counters);
            let message = format!(
                "link {name}: flood of rejected packets, {rate}/s ({}); from {}; kernel drops \
                 {}; heartbeats are still checked one by one",
                describe_reasons(&during),
                snapshot.sources.since(&window.sources).describe(4),
                snapshot.kernel_drops,
            );
            return Some((&catalogue::FLOOD_STARTED, message));
        };
        flood.peak = flood.peak.max(rate);
        if over {
            flood.quiet_since = None;
            return None;
        }
        let quiet = *flood.quiet_since.get_or_insert(window.at);
        if now.saturating_since(quiet) < FLOOD_QUIET {
            return None;
        }
        let flood = watch.flood.take()?;
        let start = &flood.start;
        let during = snapshot.counters.since(&start.counters);
        let unreported = match flood.reported {
            true => "",
            false => " (its start was not journaled: another began less than a minute before)",
        };
        let message = format!(
            "link {name}: flood over after {:.1} s{unreported}: {} packets rejected, peak {}/s \
             ({}); from {}; kernel drops {}; {} heartbeats accepted meanwhile",
            quiet.saturating_since(start.at).as_secs_f64(),
            during.rejected_total(),
            flood.peak,
            describe_reasons(&during),
            snapshot.sources.since(&start.sources).describe(4),
            snapshot.kernel_drops.saturating_sub(start.kernel_drops),
            during.accepted,
        );
        Some((&catalogue::FLOOD_ENDED, message))
    }
}

/// How often `/proc/net/udp` is read for a socket's drop count while it may be
/// dropping: a flood is in progress on its link, or a read since the last count filled a
/// whole batch.
pub const KERNEL_DROPS_EVERY: Duration = Duration::from_secs(1);

/// How often it is read otherwise. The kernel drops a datagram only when the socket's
/// receive buffer is full, that is with far more than a batch waiting, so the read after
/// any drop fills a batch: the quiet reads are a safety net, not the way drops are seen.
/// (A read walks the namespace's UDP table: it was a tenth of an idle loop's CPU at one
/// a second, measured 2026-12-07.)
pub const KERNEL_DROPS_QUIET: Duration = Duration::from_secs(60);

/// When the kernel's drop counts are read: [`KERNEL_DROPS_EVERY`] and
/// [`KERNEL_DROPS_QUIET`], or at once (`Now`, for a status document).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropsRead {
    WhenDue,
    Now,
}

/// Reads the kernel's drop counts of `links`' sockets from `/proc/net/udp` and
/// `/proc/net/udp6` (this network namespace's) when `when` says so: kernels that no
/// longer attach `SO_RXQ_OVFL` to UDP datagrams (6.18 does not) still count there. A
/// procfs read, no disk I/O.
pub fn read_kernel_drops<'a>(
    links: impl Iterator<Item = &'a mut UdpLink>,
    now: Instant,
    when: DropsRead,
) {
    let due = |l: &UdpLink| {
        let Some(at) = l.drops_read_at else { return true };
        let since = now.saturating_since(at);
        let dropping = l.full_batches_since_drops > 0 || l.flood.current().is_some();
        when == DropsRead::Now
            || since >= KERNEL_DROPS_QUIET
            || (dropping && since >= KERNEL_DROPS_EVERY)
    };
    let mut links: Vec<&mut UdpLink> = links.filter(|l| due(l)).collect();
    if links.is_empty() {
        return;
    }
    let mut table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    table.push_str(&std::fs::read_to_string("/proc/net/udp6").unwrap_or_default());
    for link in &mut links {
        link.drops_read_at = Some(now);
        link.full_batches_since_drops = 0;
        if let Some(drops) = drops_of(&table, link.inode) {
            link.kernel_drops = link.kernel_drops.max(drops);
        }
    }
}

/// The `drops` column of the socket with `inode` in a `/proc/net/udp` table.
fn drops_of(table: &str, inode: u64) -> Option<u64> {
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
        if fields.len() < 13 || fields[9].parse::<u64>().ok()? != inode {
            return None;
        }
        fields[12].parse().ok()
    })
}

/// Waits until one of `links` has datagrams and reads a batch of them into `batch`:
/// the link they came from. Links are served in turn. Errors other than "nothing
/// there" are logged and the link is tried again later.
pub async fn receive(links: &[&UdpLink], batch: &mut Batch) -> LinkId {
    poll_fn(|cx| {
        let n = links.len();
        for i in 0..n {
            let udp = links[(batch.next + i) % n];
            loop {
                let mut guard = match udp.socket.poll_read_ready(cx) {
                    Poll::Ready(Ok(guard)) => guard,
                    Poll::Ready(Err(e)) => {
                        tracing::debug!(link = udp.link.0, "receive error: {e}");
                        break;
                    }
                    Poll::Pending => break,
                };
                match guard.try_io(|socket| batch.read(socket.get_ref())) {
                    Ok(Ok(count)) if count > 0 => {
                        batch.next = (batch.next + i + 1) % n;
                        return Poll::Ready(udp.link);
                    }
                    Ok(Ok(_)) => continue,
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

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use engine::{AdminState, Instant, NodeReport, NodeState};

    use super::*;

    /// A heartbeat of beta's (the loss counter's tests use it too).
    pub(crate) fn beat(incarnation: u64, sequence: u64) -> Heartbeat {
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

    fn free_port() -> u16 {
        UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// A two-node cluster `name` (alpha, beta) with one UDP link on loopback, the nodes
    /// at `ports`, and no arbitration.
    pub(crate) fn two_nodes(name: &str, ports: [u16; 2]) -> config::Config {
        let text = format!(
            r#"
[cluster]
name = "{name}"
key_file = "/nonexistent"

[[node]]
name = "alpha"
addresses = {{ net = "127.0.0.1:{}" }}
api = "127.0.0.1:1"

[[node]]
name = "beta"
addresses = {{ net = "127.0.0.1:{}" }}
api = "127.0.0.1:2"

[[link]]
name = "net"
kind = "udp"

[arbitration]
kind = "none"
"#,
            ports[0], ports[1]
        );
        config::parse(&text, "cluster.toml").unwrap().0
    }

    /// Alpha's and beta's ends of one UDP link on loopback (inside a runtime).
    fn links() -> (UdpLink, UdpLink, wire::Key) {
        let config = two_nodes("flood", [free_port(), free_port()]);
        let key = wire::Key::new([3; 32]);
        let id = wire::ClusterId::from_name("flood");
        let open = |me: u16| {
            let route = wire::Route { link: LinkId(0), to: Some(NodeId(me)) };
            let receiver = wire::Receiver::new(key.clone(), id, route);
            UdpLink::open(&config, NodeId(me), LinkId(0), receiver).unwrap()
        };
        (open(0), open(1), key)
    }

    /// Reads and checks what alpha's socket holds until `want` datagrams were seen.
    fn drain(
        runtime: &tokio::runtime::Runtime,
        alpha: &mut UdpLink,
        batch: &mut Batch,
        want: u64,
    ) -> Vec<Heartbeat> {
        let mut out = Vec::new();
        runtime.block_on(async {
            let seen = |a: &UdpLink| {
                a.receiver.counters().accepted + a.receiver.counters().rejected_total()
            };
            while seen(alpha) < want {
                let links = [&*alpha];
                let read = tokio::time::timeout(Duration::from_secs(5), receive(&links, batch));
                read.await.expect("datagrams");
                out.extend(alpha.check(batch));
            }
        });
        out
    }

    #[test]
    fn strangers_and_replays_are_counted_by_source_and_a_flood_is_reported_start_and_end() {
        let runtime = runtime();
        let _inside = runtime.enter();
        let (mut alpha, mut beta, key) = links();
        let mut batch = Batch::default();
        let t0 = Instant(1_000_000_000);
        assert!(alpha.flood_news(t0, "net").is_none());
        let to_alpha = wire::Route { link: LinkId(0), to: Some(NodeId(0)) };
        let cluster = wire::ClusterId::from_name("flood");
        let frames: Vec<Vec<u8>> =
            (1..=10).map(|s| wire::encode(&key, cluster, to_alpha, &beat(7, s)).unwrap()).collect();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let alpha_at = alpha.socket.get_ref().local_addr().unwrap();
        for frame in &frames {
            beta.send(NodeId(0), frame);
            // A copy of beta's real frame from a stranger's address: refused unchecked.
            stranger.send_to(frame, alpha_at).unwrap();
        }
        for _ in 0..200 {
            beta.send(NodeId(0), &frames[0]);
            stranger.send_to(b"junk", alpha_at).unwrap();
        }
        let accepted = drain(&runtime, &mut alpha, &mut batch, 420);
        assert_eq!(accepted.len(), 10);
        let counters = alpha.receiver.counters();
        assert_eq!(counters.rejected(wire::Reject::UnknownSource), 210);
        assert_eq!(counters.rejected(wire::Reject::Replayed), 200);
        let beta_at = beta.socket.get_ref().local_addr().unwrap();
        let stranger_at = stranger.local_addr().unwrap();
        let mut sources = alpha.rejected_by.sources.clone();
        sources.sort_by_key(|(_, n)| *n);
        assert_eq!(sources, [(beta_at, 200), (stranger_at, 210)]);
        // 410 rejected in the first second: a flood, journaled with its reasons.
        let (code, message) = alpha.flood_news(t0 + Duration::from_secs(1), "net").unwrap();
        assert_eq!(code.code, "W2120");
        assert!(message.contains("410/s (210 unknown_source, 200 replayed)"), "{message}");
        assert!(message.contains(&format!("{stranger_at} 210, {beta_at} 200")), "{message}");
        assert!(alpha.flood.current().is_some());
        // Quiet from then on: over after FLOOD_QUIET, with the totals.
        let mut at = t0 + Duration::from_secs(1);
        let mut news = None;
        while news.is_none() && at < t0 + Duration::from_secs(30) {
            at = at + Duration::from_millis(500);
            news = alpha.flood_news(at, "net");
        }
        let (code, message) = news.unwrap();
        assert_eq!(code.code, "I2121");
        assert_eq!(at, t0 + Duration::from_secs(11), "{message}");
        assert!(
            message.contains("flood over after 1.0 s: 410 packets rejected, peak 410/s"),
            "{message}"
        );
        assert!(message.contains("10 heartbeats accepted meanwhile"), "{message}");
        assert!(alpha.flood.current().is_none());
        // A second flood within the minute: its start is not journaled, its end is.
        for _ in 0..200 {
            stranger.send_to(b"junk", alpha_at).unwrap();
        }
        drain(&runtime, &mut alpha, &mut batch, 620);
        assert!(alpha.flood_news(at + Duration::from_secs(1), "net").is_none());
        assert!(alpha.flood.current().is_some());
        let (code, message) = alpha.flood_news(at + Duration::from_secs(12), "net").unwrap();
        assert_eq!(code.code, "I2121");
        assert!(message.contains("its start was not journaled"), "{message}");
    }

    #[test]
    fn a_flood_of_large_frames_leaves_the_budget_of_heartbeat_sized_ones() {
        let mut budget = Budget::new();
        let now = std::time::Instant::now();
        assert!(budget.spend(200, now));
        budget.largest = 200;
        // Largest-size frames, all at once: the large bucket runs dry ...
        let mut spent = 0;
        while budget.spend(wire::PACKET_BYTES_MAX, now) {
            spent += 1;
        }
        assert!((200..300).contains(&spent), "{spent}");
        // ... and heartbeat-sized frames still pass, up to their own bucket.
        let mut small = 0;
        while budget.spend(200, now) {
            small += 1;
        }
        assert!(small > 10_000, "{small}");
        // Both refill with time.
        assert!(!budget.spend(200, now));
        assert!(budget.spend(200, now + Duration::from_millis(10)));
        assert!(budget.spend(wire::PACKET_BYTES_MAX, now + Duration::from_millis(10)));
    }

    #[test]
    fn the_kernels_drops_for_a_full_buffer_are_read() {
        let runtime = runtime();
        let _inside = runtime.enter();
        let (mut alpha, _beta, _) = links();
        let mut batch = Batch::default();
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let alpha_at = alpha.socket.get_ref().local_addr().unwrap();
        // Far more than the receive buffer holds, before anything is read.
        let junk = [0u8; 1_000];
        let sent = (4 * alpha.receive_buffer / junk.len()).max(20_000);
        for _ in 0..sent {
            let _ = stranger.send_to(&junk, alpha_at);
        }
        drain(&runtime, &mut alpha, &mut batch, 1);
        read_kernel_drops(std::iter::once(&mut alpha), Instant(1), DropsRead::WhenDue);
        let read = alpha.receiver.counters().rejected_total();
        assert!(alpha.kernel_drops > 0, "{sent} sent, buffer {}", alpha.receive_buffer);
        assert!(alpha.kernel_drops + read <= sent as u64 + 10);
        // Read at most once per KERNEL_DROPS_EVERY ...
        let before = alpha.kernel_drops;
        for _ in 0..sent {
            let _ = stranger.send_to(&junk, alpha_at);
        }
        let once = |alpha: &mut UdpLink, at: Instant, when: DropsRead| {
            read_kernel_drops(std::iter::once(alpha), at, when);
        };
        once(&mut alpha, Instant(2), DropsRead::WhenDue);
        assert_eq!(alpha.kernel_drops, before);
        // ... and then only once a read filled a whole batch (what any drop leads to:
        // the buffer was full) ...
        let later = Instant(1) + KERNEL_DROPS_EVERY;
        once(&mut alpha, later, DropsRead::WhenDue);
        assert_eq!(alpha.kernel_drops, before);
        let seen = alpha.receiver.counters().rejected_total();
        drain(&runtime, &mut alpha, &mut batch, seen + 1);
        assert!(alpha.full_batches_since_drops > 0);
        once(&mut alpha, later, DropsRead::WhenDue);
        let after = alpha.kernel_drops;
        assert!(after > before);
        // ... or when asked, or after KERNEL_DROPS_QUIET in any case.
        for _ in 0..sent {
            let _ = stranger.send_to(&junk, alpha_at);
        }
        once(&mut alpha, later, DropsRead::Now);
        assert!(alpha.kernel_drops > after);
        let after = alpha.kernel_drops;
        for _ in 0..sent {
            let _ = stranger.send_to(&junk, alpha_at);
        }
        once(&mut alpha, later + Duration::from_secs(1), DropsRead::WhenDue);
        assert_eq!(alpha.kernel_drops, after);
        once(&mut alpha, later + KERNEL_DROPS_QUIET, DropsRead::WhenDue);
        assert!(alpha.kernel_drops > after);
    }
}
