//! Datagram floods from inside a lab machine (issue 18's flood test and benchmark).
//!
//! [`Lab::flood`](crate::Lab::flood) runs a [`Flood`] on a thread of the calling process
//! that has moved into the machine's network namespace (`setns` on that thread only),
//! niced to 19: it stands for another machine, but here it shares the cores with the
//! nodes. Datagrams go out in batches of up to 64 per `sendmmsg` call, paced to the
//! asked rate, so that one thread reaches well over 100,000 small datagrams a second on
//! this machine (the Python flooder it replaces reached about 40,000). A spoofed flood
//! goes through a raw socket with IP headers built here, fragmented by hand when a
//! datagram does not fit one 1,500-byte frame, since the kernel only fragments what it
//! builds itself.
//!
//! Only addresses inside the lab's own networks can be reached from its namespaces (no
//! default route, no bridge attached to a physical interface): a flood cannot leave.

use std::io::IoSlice;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use rustix::net::{
    self, AddressFamily, MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, SocketType,
};

/// What to send and how fast.
#[derive(Debug, Clone)]
pub struct Flood {
    /// Where every datagram goes.
    pub target: SocketAddrV4,
    /// The UDP payloads, sent in turn (the first again after the last).
    pub payloads: Vec<Vec<u8>>,
    /// With `Some(source)`, each datagram goes out through a raw socket with `source` as
    /// its IP source address and UDP source port (spoofed); else from a UDP socket of
    /// the machine's own address.
    pub spoof: Option<SocketAddrV4>,
    /// Datagrams a second.
    pub rate: u32,
    /// At most this long, and at most `rate × duration` datagrams.
    pub duration: Duration,
}

/// What a flood did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flooded {
    /// Datagrams sent (a fragmented datagram counts once).
    pub datagrams: u64,
    /// Packets the kernel refused (a full send queue: `ENOBUFS`, `EAGAIN`).
    pub refused: u64,
    /// How long it took.
    pub seconds: f64,
}

/// The largest UDP payload over IPv4: 65,535 − 20 (IP) − 8 (UDP).
pub const MAX_PAYLOAD: usize = 65_507;

/// The IP packets that carry `payload` from `source` to `target` in one UDP datagram,
/// fragmented at 1,480 bytes of IP payload (a 1,500-byte MTU). The UDP checksum is 0
/// (none, allowed over IPv4); the IP checksum is left to the kernel (raw sockets with
/// `IPPROTO_RAW` fill it in).
pub fn udp_packets(
    source: SocketAddrV4,
    target: SocketAddrV4,
    ident: u16,
    payload: &[u8],
) -> Vec<Vec<u8>> {
    let mut udp = Vec::with_capacity(8 + payload.len());
    udp.extend_from_slice(&source.port().to_be_bytes());
    udp.extend_from_slice(&target.port().to_be_bytes());
    udp.extend_from_slice(&u16::try_from(8 + payload.len()).expect("fits").to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let parts: Vec<&[u8]> = udp.chunks(1480).collect();
    let last = parts.len() - 1;
    parts
        .iter()
        .enumerate()
        .map(|(k, part)| {
            let more = if k < last { 0x2000 } else { 0 };
            let offset = u16::try_from(k * 1480 / 8).expect("fits") | more;
            let mut ip = Vec::with_capacity(20 + part.len());
            ip.extend_from_slice(&[0x45, 0]);
            ip.extend_from_slice(&u16::try_from(20 + part.len()).expect("fits").to_be_bytes());
            ip.extend_from_slice(&ident.to_be_bytes());
            ip.extend_from_slice(&offset.to_be_bytes());
            ip.extend_from_slice(&[64, 17, 0, 0]);
            ip.extend_from_slice(&source.ip().octets());
            ip.extend_from_slice(&target.ip().octets());
            ip.extend_from_slice(part);
            ip
        })
        .collect()
}

impl Flood {
    /// Sends the flood from the calling thread's network namespace.
    pub fn run(&self) -> std::io::Result<Flooded> {
        assert!(!self.payloads.is_empty() && self.rate > 0, "a flood needs datagrams and a rate");
        // Each unit: the packets of one datagram (one, unless spoofed and fragmented).
        let (socket, units, destination) = match self.spoof {
            Some(source) => {
                let socket =
                    net::socket(AddressFamily::INET, SocketType::RAW, Some(net::ipproto::RAW))?;
                let units: Vec<Vec<Vec<u8>>> = self
                    .payloads
                    .iter()
                    .enumerate()
                    .map(|(n, p)| udp_packets(source, self.target, (n % 65_535 + 1) as u16, p))
                    .collect();
                (socket, units, SocketAddrV4::new(*self.target.ip(), 0))
            }
            None => {
                let socket = net::socket(AddressFamily::INET, SocketType::DGRAM, None)?;
                net::sockopt::set_socket_send_buffer_size(&socket, 4 << 20)?;
                let units = self.payloads.iter().map(|p| vec![p.clone()]).collect();
                (socket, units, self.target)
            }
        };
        let destination = SocketAddrAny::from(destination);
        let total = u64::from(self.rate) * self.duration.as_secs_f64() as u64;
        let total = total.max(1);
        let start = Instant::now();
        let (mut sent, mut refused, mut next) = (0u64, 0u64, 0usize);
        while sent < total && start.elapsed() < self.duration {
            let due = (start.elapsed().as_secs_f64() * f64::from(self.rate)) as u64 + 1;
            if sent >= due.min(total) {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            // Up to 64 datagrams, whole ones only, at most 64 packets a call.
            let mut batch: Vec<&Vec<u8>> = Vec::with_capacity(64);
            let mut datagrams = 0u64;
            while sent + datagrams < due.min(total) {
                let unit = &units[next % units.len()];
                if !batch.is_empty() && batch.len() + unit.len() > 64 {
                    break;
                }
                batch.extend(unit.iter());
                next += 1;
                datagrams += 1;
            }
            let slices: Vec<[IoSlice<'_>; 1]> = batch.iter().map(|p| [IoSlice::new(p)]).collect();
            let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
                slices.iter().map(|_| SendAncillaryBuffer::default()).collect();
            let mut messages: Vec<MMsgHdr<'_>> = slices
                .iter()
                .zip(controls.iter_mut())
                .map(|(iov, control)| MMsgHdr::new_with_addr(&destination, iov, control))
                .collect();
            let mut done = 0;
            while done < messages.len() {
                match net::sendmmsg(&socket, &mut messages[done..], SendFlags::empty()) {
                    Ok(n) => done += n.max(1),
                    Err(rustix::io::Errno::INTR) => {}
                    Err(rustix::io::Errno::NOBUFS | rustix::io::Errno::AGAIN) => {
                        // That packet is lost, as it would be for a real flooder.
                        refused += 1;
                        done += 1;
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            sent += datagrams;
        }
        Ok(Flooded { datagrams: sent, refused, seconds: start.elapsed().as_secs_f64() })
    }
}

/// `length` bytes of seeded noise for the flood's payloads.
pub fn noise(seed: u64, length: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    std::iter::repeat_with(|| rng.u8(..)).take(length).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_large_datagram_is_fragmented_on_8_byte_boundaries_with_the_more_flag() {
        let source = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5405);
        let target = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 5405);
        let packets = udp_packets(source, target, 7, &noise(1, MAX_PAYLOAD));
        assert_eq!(packets.len(), 45);
        let mut carried = 0;
        for (k, p) in packets.iter().enumerate() {
            let length = usize::from(u16::from_be_bytes([p[2], p[3]]));
            assert_eq!(length, p.len());
            let flags = u16::from_be_bytes([p[6], p[7]]);
            assert_eq!(usize::from(flags & 0x1fff) * 8, carried, "fragment {k}");
            assert_eq!(flags & 0x2000 != 0, k + 1 < packets.len());
            carried += p.len() - 20;
        }
        assert_eq!(carried, MAX_PAYLOAD + 8);
        let small = udp_packets(source, target, 7, b"hello");
        assert_eq!(small.len(), 1);
        assert_eq!(&small[0][20..22], &5405u16.to_be_bytes());
        assert_eq!(u16::from_be_bytes([small[0][24], small[0][25]]), 13);
    }
}
