//! A small, blocking rtnetlink client for the `ip` agent: list links and addresses, add
//! and delete one address. It speaks to the kernel of the calling thread's network
//! namespace (a socket belongs to the namespace it was created in; see
//! [`crate::netns`]) and owns no policy: what an address or a failure means is the
//! agent's business.
//!
//! **Why synchronous** (`netlink-packet-route` + `netlink-sys`, not `rtnetlink`): the
//! agents are blocking by design (see the crate doc); `rtnetlink` is async only and
//! would need a runtime per call. One request and its answer is a `send` and a few
//! `recv`s; every `recv` waits at most until the operation's deadline
//! (`SO_RCVTIMEO`), so a call can never outlive its deadline by more than one
//! system call.

use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

/// The receive buffer: large enough for any one datagram of a dump.
const RECV_BUFFER_BYTES: usize = 64 * 1024;
/// The most messages one dump may return before it is cut short (a host with this
/// many addresses or links is not one tandem manages).
const DUMP_MESSAGES_MAX: usize = 65_536;

/// Why a request did not succeed.
#[derive(Debug)]
pub(crate) enum Error {
    /// The deadline passed before the kernel answered.
    Timeout,
    /// The kernel refused the request (its errno) or the socket failed.
    Io(io::Error),
    /// The kernel's answer could not be decoded.
    Decode(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Timeout => f.write_str("no answer from the kernel before the deadline"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Decode(e) => write!(f, "undecodable netlink answer: {e}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            Error::Timeout
        } else {
            Error::Io(e)
        }
    }
}

/// One network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub index: u32,
    pub name: String,
    /// `IFF_NOARP` or `IFF_LOOPBACK`: no neighbour discovery happens on it.
    pub no_arp: bool,
}

/// One address on one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Assigned {
    pub index: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
    /// IPv6 duplicate-address detection failed for it: present, but unusable.
    pub dad_failed: bool,
}

/// A netlink route socket with the deadline of one operation.
pub(crate) struct Netlink {
    socket: Socket,
    deadline: Instant,
    sequence: u32,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open(deadline: Instant) -> Result<Netlink, Error> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { socket, deadline, sequence: 0 })
    }

    /// Every link.
    pub fn links(&mut self) -> Result<Vec<Link>, Error> {
        let answers = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(answers
            .into_iter()
            .filter_map(|message| match message {
                RouteNetlinkMessage::NewLink(link) => Some(link_of(link)),
                _ => None,
            })
            .collect())
    }

    /// Every address on every link.
    pub fn addresses(&mut self) -> Result<Vec<Assigned>, Error> {
        let answers = self.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
        Ok(answers
            .into_iter()
            .filter_map(|message| match message {
                RouteNetlinkMessage::NewAddress(address) => assigned_of(&address),
                _ => None,
            })
            .collect())
    }

    /// Adds `address/prefix_len` to link `index`; `no_dad` skips the kernel's own IPv6
    /// duplicate-address detection (the agent did its own).
    pub fn add_address(
        &mut self,
        index: u32,
        address: IpAddr,
        prefix_len: u8,
        no_dad: bool,
    ) -> Result<(), Error> {
        let mut message = address_message(index, address, prefix_len);
        if no_dad && address.is_ipv6() {
            message.header.flags |= AddressHeaderFlags::Nodad;
        }
        self.request_flags(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Deletes `address/prefix_len` from link `index`.
    pub fn del_address(
        &mut self,
        index: u32,
        address: IpAddr,
        prefix_len: u8,
    ) -> Result<(), Error> {
        let message = address_message(index, address, prefix_len);
        self.request_flags(RouteNetlinkMessage::DelAddress(message), NLM_F_REQUEST | NLM_F_ACK)
            .map(drop)
    }

    fn dump(&mut self, message: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, Error> {
        self.request_flags(message, NLM_F_REQUEST | NLM_F_DUMP)
    }

    /// Sends one request and collects its answers until the end of a dump (`NLMSG_DONE`),
    /// an acknowledgement or an error.
    fn request_flags(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Error> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let mut packet =
            NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(message));
        packet.header.flags = flags;
        packet.header.sequence_number = sequence;
        packet.finalize();
        let mut bytes = vec![0; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;

        let mut answers = Vec::new();
        let mut buffer = vec![0u8; RECV_BUFFER_BYTES];
        loop {
            self.arm_timeout()?;
            let size = self.socket.recv(&mut &mut buffer[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let answer =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buffer[offset..size])
                        .map_err(|e| Error::Decode(e.to_string()))?;
                let length = answer.header.length as usize;
                if answer.header.sequence_number == sequence {
                    match answer.payload {
                        NetlinkPayload::Done(_) => return Ok(answers),
                        NetlinkPayload::Error(error) => {
                            return match error.code {
                                None => Ok(answers),
                                Some(_) => Err(Error::Io(error.to_io())),
                            }
                        }
                        NetlinkPayload::InnerMessage(inner) => {
                            if answers.len() >= DUMP_MESSAGES_MAX {
                                return Err(Error::Decode(format!(
                                    "more than {DUMP_MESSAGES_MAX} answers"
                                )));
                            }
                            answers.push(inner);
                        }
                        _ => {}
                    }
                }
                if length == 0 {
                    break;
                }
                offset += length;
            }
        }
    }

    /// Makes the next `recv` wait at most until the deadline.
    fn arm_timeout(&self) -> Result<(), Error> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout);
        }
        // A zero SO_RCVTIMEO means "wait for ever": never pass one.
        let left = left.max(Duration::from_millis(1));
        let micros = i64::try_from(left.as_micros()).unwrap_or(i64::MAX);
        setsockopt(
            &self.socket,
            sockopt::ReceiveTimeout,
            &TimeVal::new(micros / 1_000_000, (micros % 1_000_000) as _),
        )
        .map_err(|e| Error::Io(e.into()))
    }
}

fn address_message(index: u32, address: IpAddr, prefix_len: u8) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = family_of(address);
    message.header.prefix_len = prefix_len;
    message.header.scope = AddressScope::Universe;
    message.header.index = index;
    // As iproute2 does: IFA_LOCAL is the address, IFA_ADDRESS the same (no peer).
    message.attributes = vec![AddressAttribute::Local(address), AddressAttribute::Address(address)];
    message
}

fn family_of(address: IpAddr) -> AddressFamily {
    match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn link_of(message: LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        no_arp: message.header.flags.intersects(LinkFlags::Noarp | LinkFlags::Loopback),
    };
    for attribute in message.attributes {
        if let LinkAttribute::IfName(name) = attribute {
            link.name = name;
        }
    }
    link
}

/// The address an `RTM_NEWADDR` describes: `IFA_LOCAL` when present (IPv4; the
/// interface's own address when it has a peer), else `IFA_ADDRESS`.
fn assigned_of(message: &AddressMessage) -> Option<Assigned> {
    let mut local = None;
    let mut address = None;
    let mut flags = AddressFlags::from_bits_retain(u32::from(message.header.flags.bits()));
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    Some(Assigned {
        index: message.header.index,
        address: local.or(address)?,
        prefix_len: message.header.prefix_len,
        dad_failed: flags.contains(AddressFlags::Dadfailed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_messages_carry_local_and_address() {
        let address: IpAddr = "10.1.2.3".parse().unwrap();
        let message = address_message(7, address, 24);
        assert_eq!(message.header.family, AddressFamily::Inet);
        assert_eq!((message.header.index, message.header.prefix_len), (7, 24));
        let assigned = assigned_of(&message).unwrap();
        assert_eq!(assigned.address, address);
        assert!(!assigned.dad_failed);
    }

    #[test]
    fn the_local_address_wins_and_dad_failure_shows() {
        let mut message = AddressMessage::default();
        message.header.index = 3;
        message.header.prefix_len = 64;
        message.attributes = vec![
            AddressAttribute::Address("2001:db8::2".parse().unwrap()),
            AddressAttribute::Flags(AddressFlags::Dadfailed | AddressFlags::Permanent),
        ];
        let assigned = assigned_of(&message).unwrap();
        assert_eq!(assigned.address, "2001:db8::2".parse::<IpAddr>().unwrap());
        assert!(assigned.dad_failed);
        message.attributes.push(AddressAttribute::Local("2001:db8::1".parse().unwrap()));
        assert_eq!(
            assigned_of(&message).unwrap().address,
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        message.attributes.clear();
        assert_eq!(assigned_of(&message), None);
    }
}
