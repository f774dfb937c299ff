//! Neighbour discovery on the wire for the `ip` agent, through a raw `AF_PACKET`
//! socket on one interface (`pnet_datalink`; frames built and parsed with
//! `pnet_packet`): the duplicate-address probe before an address is added, and the
//! announcements after. It owns only frames; adding addresses and deciding what a
//! conflict means are the agent's.
//!
//! - **Probe** (IPv4: an ARP probe, RFC 5227 — a request with sender address 0.0.0.0,
//!   what `arping -D` sends; IPv6: a neighbour solicitation from `::` to the address's
//!   solicited-node group, RFC 4862 duplicate-address detection). [`PROBE_COUNT`]
//!   probes [`PROBE_INTERVAL`] apart; any ARP packet whose sender address is ours, or
//!   any neighbour advertisement for it, from another hardware address within
//!   [`PROBE_LISTEN`] names the host that already has it.
//! - **Announcement** (IPv4: a gratuitous ARP request, sender and target both the
//!   address; IPv6: an unsolicited neighbour advertisement to all nodes with the
//!   Override flag and our link-layer address). Peers that have an entry for the
//!   address replace its hardware address at once instead of waiting for it to expire.
//!
//! Every wait is bounded by the caller's deadline; the socket reads with a
//! [`READ_TIMEOUT`] so that a deadline is noticed within it.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use pnet_datalink::{Channel, Config, DataLinkReceiver, DataLinkSender, MacAddr};
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    MutableNeighborAdvertPacket, MutableNeighborSolicitPacket, NdpOption, NdpOptionPacket,
    NdpOptionTypes, NeighborAdvertFlags, NeighborAdvertPacket,
};
use pnet_packet::icmpv6::{self, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};
use pnet_packet::Packet;

/// How many duplicate-address probes are sent.
pub const PROBE_COUNT: u32 = 3;
/// The time between two probes.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// How long answers are awaited, from the first probe. Far below RFC 5227's 1 to 3 s,
/// which serve address autoconfiguration: here every millisecond is part of a
/// failover's outage, the previous holder has already let go of the address (its lease
/// is gone), and what the check must catch — another host configured with the address
/// — answers an ARP probe on a LAN within a millisecond; three probes cover a lost one,
/// and the last has 10 ms for its answer.
pub const PROBE_LISTEN: Duration = Duration::from_millis(30);
/// How long one read waits before the deadline is looked at again.
pub const READ_TIMEOUT: Duration = Duration::from_millis(10);

const ETHERNET_HEADER: usize = 14;
const ARP_LENGTH: usize = 28;
const IPV6_HEADER: usize = 40;
/// ICMPv6 type, code, checksum, reserved/flags and target address.
const NDP_LENGTH: usize = 24;
/// A link-layer address option on Ethernet: type, length (in 8 bytes) and 6 bytes.
const LLADDR_OPTION: usize = 8;

/// A raw socket on one interface.
pub(crate) struct Port {
    mac: MacAddr,
    tx: Box<dyn DataLinkSender>,
    rx: Box<dyn DataLinkReceiver>,
}

/// What sends the remaining announcements after the first, on another thread.
pub(crate) struct Announcer {
    tx: Box<dyn DataLinkSender>,
    frame: Vec<u8>,
}

impl Announcer {
    /// Sends the announcement once more.
    pub fn send(&mut self) -> io::Result<()> {
        send(&mut *self.tx, &self.frame)
    }
}

fn send(tx: &mut dyn DataLinkSender, frame: &[u8]) -> io::Result<()> {
    tx.send_to(frame, None)
        .unwrap_or_else(|| Err(io::Error::other("the frame did not fit the send buffer")))
}

impl Port {
    /// Opens a raw socket on `interface` (in the calling thread's network namespace).
    pub fn open(interface: &str) -> io::Result<Port> {
        let found = pnet_datalink::interfaces().into_iter().find(|i| i.name == interface);
        let Some(found) = found else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface {interface}"),
            ));
        };
        let mac = found.mac.filter(|m| !m.is_zero()).ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, format!("{interface} has no MAC address"))
        })?;
        let config =
            Config { read_timeout: Some(READ_TIMEOUT), promiscuous: false, ..Config::default() };
        match pnet_datalink::channel(&found, config)? {
            Channel::Ethernet(tx, rx) => Ok(Port { mac, tx, rx }),
            _ => Err(io::Error::other("not an Ethernet channel")),
        }
    }

    /// Probes for another host holding `address` until [`PROBE_LISTEN`] passes or
    /// `deadline`, whichever comes first: that host's hardware address, if one answered.
    pub fn find_owner(
        &mut self,
        address: IpAddr,
        deadline: Instant,
    ) -> io::Result<Option<MacAddr>> {
        let probe = probe_frame(self.mac, address);
        let began = Instant::now();
        let end = deadline.min(began + PROBE_LISTEN);
        let mut sent = 0;
        loop {
            let now = Instant::now();
            if sent < PROBE_COUNT && now >= began + PROBE_INTERVAL * sent {
                send(&mut *self.tx, &probe)?;
                sent += 1;
            }
            if now >= end {
                return Ok(None);
            }
            match self.rx.next() {
                Ok(frame) => {
                    if let Some(owner) = owner_in(frame, address, self.mac) {
                        return Ok(Some(owner));
                    }
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends one announcement of `address` now, and returns what sends the others.
    pub fn announce(self, address: IpAddr) -> io::Result<Announcer> {
        let mut announcer = Announcer { frame: announcement_frame(self.mac, address), tx: self.tx };
        announcer.send()?;
        Ok(announcer)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The Ethernet multicast address of an IPv6 multicast group (RFC 2464).
fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr::new(0x33, 0x33, o[12], o[13], o[14], o[15])
}

/// The solicited-node multicast group of `address` (RFC 4291), `ff02::1:ffXX:XXXX`.
fn solicited_node(address: Ipv6Addr) -> Ipv6Addr {
    let o = address.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

fn ethernet(frame: &mut [u8], source: MacAddr, destination: MacAddr, ipv6: bool) {
    let mut eth = MutableEthernetPacket::new(frame).expect("frame holds a header");
    eth.set_source(source);
    eth.set_destination(destination);
    eth.set_ethertype(if ipv6 { EtherTypes::Ipv6 } else { EtherTypes::Arp });
}

/// An ARP request for `target` from `sender` (0.0.0.0 for a probe), broadcast.
fn arp_request(mac: MacAddr, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_HEADER + ARP_LENGTH];
    ethernet(&mut frame, mac, MacAddr::broadcast(), false);
    let mut arp = MutableArpPacket::new(&mut frame[ETHERNET_HEADER..]).expect("room for ARP");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(ArpOperations::Request);
    arp.set_sender_hw_addr(mac);
    arp.set_sender_proto_addr(sender);
    arp.set_target_hw_addr(MacAddr::zero());
    arp.set_target_proto_addr(target);
    frame
}

/// An IPv6 packet carrying one ICMPv6 neighbour discovery message of `icmp_length`
/// bytes, written by `write` into the ICMPv6 part; the checksum is filled in after.
fn ndp_frame(
    mac: MacAddr,
    source: Ipv6Addr,
    destination: Ipv6Addr,
    icmp_length: usize,
    write: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_HEADER + IPV6_HEADER + icmp_length];
    ethernet(&mut frame, mac, multicast_mac(destination), true);
    {
        let mut ip = MutableIpv6Packet::new(&mut frame[ETHERNET_HEADER..]).expect("room for IPv6");
        ip.set_version(6);
        ip.set_payload_length(icmp_length as u16);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(255);
        ip.set_source(source);
        ip.set_destination(destination);
    }
    let icmp = &mut frame[ETHERNET_HEADER + IPV6_HEADER..];
    write(icmp);
    let sum = icmpv6::checksum(&Icmpv6Packet::new(icmp).expect("room"), &source, &destination);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    frame
}

/// What a probe for `address` looks like on the wire.
fn probe_frame(mac: MacAddr, address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(address) => arp_request(mac, Ipv4Addr::UNSPECIFIED, address),
        IpAddr::V6(address) => {
            ndp_frame(mac, Ipv6Addr::UNSPECIFIED, solicited_node(address), NDP_LENGTH, |icmp| {
                let mut ns = MutableNeighborSolicitPacket::new(icmp).expect("room for NS");
                ns.set_icmpv6_type(Icmpv6Types::NeighborSolicit);
                ns.set_target_addr(address);
            })
        }
    }
}

/// What an announcement of `address` looks like on the wire.
fn announcement_frame(mac: MacAddr, address: IpAddr) -> Vec<u8> {
    match address {
        IpAddr::V4(address) => arp_request(mac, address, address),
        IpAddr::V6(address) => {
            let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
            ndp_frame(mac, address, all_nodes, NDP_LENGTH + LLADDR_OPTION, |icmp| {
                let mut na = MutableNeighborAdvertPacket::new(icmp).expect("room for NA");
                na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
                na.set_flags(NeighborAdvertFlags::Override);
                na.set_target_addr(address);
                na.set_options(&[NdpOption {
                    option_type: NdpOptionTypes::TargetLLAddr,
                    length: 1,
                    data: mac.octets().to_vec(),
                }]);
            })
        }
    }
}

/// The hardware address of another host that `frame` shows holding `address`: an ARP
/// packet whose sender is `address`, or a neighbour advertisement for it, not sent
/// from `ours`.
fn owner_in(frame: &[u8], address: IpAddr, ours: MacAddr) -> Option<MacAddr> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_source() == ours {
        return None;
    }
    match address {
        IpAddr::V4(address) if eth.get_ethertype() == EtherTypes::Arp => {
            let arp = ArpPacket::new(eth.payload())?;
            let sender = arp.get_sender_hw_addr();
            (arp.get_sender_proto_addr() == address && sender != ours).then_some(sender)
        }
        IpAddr::V6(address) if eth.get_ethertype() == EtherTypes::Ipv6 => {
            let ip = Ipv6Packet::new(eth.payload())?;
            if ip.get_next_header() != IpNextHeaderProtocols::Icmpv6 {
                return None;
            }
            let icmp = ip.payload();
            if icmp.first() != Some(&Icmpv6Types::NeighborAdvert.0) {
                return None;
            }
            let na = NeighborAdvertPacket::new(icmp)?;
            if na.get_target_addr() != address {
                return None;
            }
            let announced = target_lladdr(&icmp[NDP_LENGTH.min(icmp.len())..]);
            Some(announced.unwrap_or(eth.get_source())).filter(|mac| *mac != ours)
        }
        _ => None,
    }
}

/// The target link-layer address option among NDP `options`, if any.
fn target_lladdr(mut options: &[u8]) -> Option<MacAddr> {
    while let Some(option) = NdpOptionPacket::new(options) {
        let length = usize::from(option.get_length()) * 8;
        if length == 0 || length > options.len() {
            return None;
        }
        if option.get_option_type() == NdpOptionTypes::TargetLLAddr && length >= LLADDR_OPTION {
            let d = &options[2..8];
            return Some(MacAddr::new(d[0], d[1], d[2], d[3], d[4], d[5]));
        }
        options = &options[length..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: MacAddr = MacAddr(0x02, 0, 0, 0, 0, 1);
    const THEIRS: MacAddr = MacAddr(0x02, 0, 0, 0, 0, 2);

    #[test]
    fn solicited_node_groups_and_their_macs() {
        let address: Ipv6Addr = "2001:db8::12:3456".parse().unwrap();
        let group = solicited_node(address);
        assert_eq!(group, "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap());
        assert_eq!(multicast_mac(group), MacAddr::new(0x33, 0x33, 0xff, 0x12, 0x34, 0x56));
    }

    #[test]
    fn an_arp_probe_is_no_conflict_but_an_answer_is() {
        let address: IpAddr = "10.0.0.50".parse().unwrap();
        let probe = probe_frame(OURS, address);
        let arp = ArpPacket::new(&probe[ETHERNET_HEADER..]).unwrap();
        assert_eq!(arp.get_sender_proto_addr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(owner_in(&probe, address, OURS), None, "our own probe");
        // Another host's announcement of the address names it.
        let theirs = announcement_frame(THEIRS, address);
        assert_eq!(owner_in(&theirs, address, OURS), Some(THEIRS));
        assert_eq!(owner_in(&theirs, "10.0.0.51".parse().unwrap(), OURS), None);
    }

    #[test]
    fn a_neighbour_advertisement_names_its_owner() {
        let address: IpAddr = "2001:db8::50".parse().unwrap();
        let probe = probe_frame(OURS, address);
        let ip = Ipv6Packet::new(&probe[ETHERNET_HEADER..]).unwrap();
        assert_eq!(ip.get_source(), Ipv6Addr::UNSPECIFIED);
        assert_eq!(ip.get_hop_limit(), 255);
        assert_eq!(owner_in(&probe, address, OURS), None, "a solicitation is no answer");
        let theirs = announcement_frame(THEIRS, address);
        assert_eq!(owner_in(&theirs, address, OURS), Some(THEIRS));
        assert_eq!(owner_in(&theirs, "2001:db8::51".parse().unwrap(), OURS), None);
        assert_eq!(owner_in(&theirs[..20], address, OURS), None, "a cut frame");
    }

    #[test]
    fn ndp_checksums_verify() {
        let address: IpAddr = "2001:db8::50".parse().unwrap();
        for frame in [probe_frame(OURS, address), announcement_frame(OURS, address)] {
            let ip = Ipv6Packet::new(&frame[ETHERNET_HEADER..]).unwrap();
            let icmp = Icmpv6Packet::new(ip.payload()).unwrap();
            let sum = icmpv6::checksum(&icmp, &ip.get_source(), &ip.get_destination());
            assert_eq!(sum, icmp.get_checksum());
            assert_eq!(usize::from(ip.get_payload_length()), ip.payload().len());
        }
    }
}
