//! The inventory's network interfaces: one rtnetlink dump of the links (state, flags,
//! MAC, MTU) and one of the addresses, in the calling thread's network namespace. Every
//! `recv` waits at most until the call's deadline (`SO_RCVTIMEO`), so a kernel that does
//! not answer costs one timeout, not a hung request. It only reads.
//!
//! Its own small client rather than the `ip` agent's (`agents::netlink`, crate-private
//! and shaped for that agent: a link's name and ARP flag only): the inventory needs the
//! link's whole description, and the agent's client should stay the agent's.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use contract::{Interface, InterfaceAddress, OperState};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

/// The receive buffer: large enough for any one datagram of a dump.
const RECV_BUFFER_BYTES: usize = 64 * 1024;
/// The most messages one dump may return (a host with more links or addresses is not
/// one tandem manages); past it the part says so.
const DUMP_MESSAGES_MAX: usize = 65_536;

/// Every interface with its addresses, by name; `Err` says why not.
pub fn discover(deadline: Instant) -> Result<Vec<Interface>, String> {
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| format!("netlink socket: {e}"))?;
    socket.bind_auto().map_err(|e| format!("netlink socket: {e}"))?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(|e| format!("netlink socket: {e}"))?;
    let links = dump(&socket, 1, RouteNetlinkMessage::GetLink(LinkMessage::default()), deadline)
        .map_err(|e| format!("listing the links: {e}"))?;
    let addresses =
        dump(&socket, 2, RouteNetlinkMessage::GetAddress(AddressMessage::default()), deadline)
            .map_err(|e| format!("listing the addresses: {e}"))?;
    let mut interfaces: Vec<Interface> = links
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(link) => Some(interface_of(link)),
            _ => None,
        })
        .collect();
    for message in addresses {
        let RouteNetlinkMessage::NewAddress(message) = message else { continue };
        let index = message.header.index;
        if let (Some(address), Some(interface)) =
            (address_of(&message), interfaces.iter_mut().find(|i| i.index == index))
        {
            interface.addresses.push(address);
        }
    }
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(interfaces)
}

/// The interface an `RTM_NEWLINK` describes, without its addresses.
pub(super) fn interface_of(message: LinkMessage) -> Interface {
    let flags = message.header.flags;
    let mut interface = Interface {
        name: String::new(),
        index: message.header.index,
        state: OperState::Unknown,
        up: flags.contains(LinkFlags::Up),
        carrier: flags.contains(LinkFlags::LowerUp),
        mac: None,
        mtu: None,
        loopback: flags.contains(LinkFlags::Loopback),
        addresses: Vec::new(),
    };
    for attribute in message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => interface.name = name,
            LinkAttribute::Mtu(mtu) => interface.mtu = Some(mtu),
            LinkAttribute::Carrier(carrier) => interface.carrier = carrier != 0,
            LinkAttribute::OperState(state) => interface.state = oper_state(state),
            LinkAttribute::Address(bytes) if !bytes.is_empty() => {
                let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                interface.mac = Some(hex.join(":"));
            }
            _ => {}
        }
    }
    interface
}

fn oper_state(state: State) -> OperState {
    match state {
        State::NotPresent => OperState::NotPresent,
        State::Down => OperState::Down,
        State::LowerLayerDown => OperState::LowerLayerDown,
        State::Testing => OperState::Testing,
        State::Dormant => OperState::Dormant,
        State::Up => OperState::Up,
        _ => OperState::Unknown,
    }
}

/// The address an `RTM_NEWADDR` describes: `IFA_LOCAL` when present (the interface's own
/// address on a point-to-point link), else `IFA_ADDRESS`.
pub(super) fn address_of(message: &AddressMessage) -> Option<InterfaceAddress> {
    let mut local = None;
    let mut address = None;
    for attribute in &message.attributes {
        match attribute {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            _ => {}
        }
    }
    let address: IpAddr = local.or(address)?;
    let scope = match message.header.scope {
        AddressScope::Universe => "global".to_string(),
        AddressScope::Site => "site".to_string(),
        AddressScope::Link => "link".to_string(),
        AddressScope::Host => "host".to_string(),
        AddressScope::Nowhere => "nowhere".to_string(),
        AddressScope::Other(n) => n.to_string(),
        other => format!("{other:?}").to_lowercase(),
    };
    Some(InterfaceAddress { address, prefix_len: message.header.prefix_len, scope })
}

/// Sends one dump request and collects its answers until `NLMSG_DONE` or an error.
fn dump(
    socket: &Socket,
    sequence: u32,
    message: RouteNetlinkMessage,
    deadline: Instant,
) -> Result<Vec<RouteNetlinkMessage>, String> {
    let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(message));
    packet.header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    packet.header.sequence_number = sequence;
    packet.finalize();
    let mut bytes = vec![0; packet.buffer_len()];
    packet.serialize(&mut bytes);
    socket.send(&bytes, 0).map_err(|e| e.to_string())?;
    let mut answers = Vec::new();
    let mut buffer = vec![0u8; RECV_BUFFER_BYTES];
    loop {
        arm_timeout(socket, deadline)?;
        let size = socket.recv(&mut &mut buffer[..], 0).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                "no answer from the kernel before the deadline".to_string()
            }
            _ => e.to_string(),
        })?;
        let mut offset = 0;
        while offset < size {
            let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buffer[offset..size])
                .map_err(|e| format!("undecodable netlink answer: {e}"))?;
            let length = answer.header.length as usize;
            if answer.header.sequence_number == sequence {
                match answer.payload {
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::Error(error) if error.code.is_some() => {
                        return Err(error.to_io().to_string())
                    }
                    NetlinkPayload::Error(_) => return Ok(answers),
                    NetlinkPayload::InnerMessage(inner) => {
                        if answers.len() >= DUMP_MESSAGES_MAX {
                            return Err(format!("more than {DUMP_MESSAGES_MAX} answers"));
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

/// Makes the next `recv` wait at most until `deadline`.
fn arm_timeout(socket: &Socket, deadline: Instant) -> Result<(), String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("no answer from the kernel before the deadline".to_string());
    }
    // A zero SO_RCVTIMEO means "wait for ever": never pass one.
    let micros = i64::try_from(left.max(Duration::from_millis(1)).as_micros()).unwrap_or(i64::MAX);
    setsockopt(
        socket,
        sockopt::ReceiveTimeout,
        &TimeVal::new(micros / 1_000_000, micros % 1_000_000),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_message_gives_the_interface() {
        let mut message = LinkMessage::default();
        message.header.index = 2;
        message.header.flags = LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Broadcast;
        message.attributes = vec![
            LinkAttribute::IfName("eth0".into()),
            LinkAttribute::Mtu(9000),
            LinkAttribute::OperState(State::Up),
            LinkAttribute::Address(vec![0x52, 0x54, 0, 0x12, 0xab, 0x0f]),
        ];
        let interface = interface_of(message);
        assert_eq!(interface.name, "eth0");
        assert_eq!((interface.index, interface.mtu), (2, Some(9000)));
        assert_eq!(interface.state, OperState::Up);
        assert!(interface.up && interface.carrier && !interface.loopback);
        assert_eq!(interface.mac.as_deref(), Some("52:54:00:12:ab:0f"));
        let mut down = LinkMessage::default();
        down.attributes = vec![LinkAttribute::Carrier(0), LinkAttribute::OperState(State::Down)];
        let interface = interface_of(down);
        assert!(!interface.up && !interface.carrier);
        assert_eq!((interface.state, interface.mac), (OperState::Down, None));
    }

    #[test]
    fn an_address_message_gives_the_address_with_its_prefix_and_scope() {
        let mut message = AddressMessage::default();
        message.header.prefix_len = 64;
        message.header.scope = AddressScope::Link;
        message.attributes = vec![AddressAttribute::Address("fe80::1".parse().unwrap())];
        let address = address_of(&message).unwrap();
        assert_eq!(address.address, "fe80::1".parse::<IpAddr>().unwrap());
        assert_eq!((address.prefix_len, address.scope.as_str()), (64, "link"));
        message.attributes.push(AddressAttribute::Local("fe80::2".parse().unwrap()));
        assert_eq!(address_of(&message).unwrap().address, "fe80::2".parse::<IpAddr>().unwrap());
        message.attributes.clear();
        assert_eq!(address_of(&message), None);
    }
}
