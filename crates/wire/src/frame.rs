//! The frame: a fixed header, the payload and an HMAC-SHA256 tag (layout in the crate
//! docs). [`encode`] builds a frame from a heartbeat for one [`Route`] (the link it goes
//! on and its receiver, both under the tag, so a frame captured on one link or sent to
//! one node is refused on another link or by another node); [`decode`] checks a
//! frame's shape, cluster, route and tag and decodes it, without any per-sender memory
//! (replays are the [`crate::Receiver`]'s job). The checks are split in two so that the
//! receiver can run its cheap ones (sender, replay window, rate) between them:
//! [`parse`] reads and checks the header, [`authenticate`] checks the tag and decodes.
//!
//! It owns the header layout and the tag; it must not panic on any input, allocate more
//! than the input's size before the tag is verified, read a clock or do I/O.

use std::fmt;

use engine::{Heartbeat, LinkId, NodeId, NODES_MAX};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::key::Key;
use crate::payload::{decode_body, encode_body, ConfigStamp};
use crate::receiver::Reject;

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"TNDM";
/// The format version this crate writes and reads (2: the route joined the header; 3:
/// the payload carries the sender's configuration generation and hash).
pub const VERSION: u16 = 3;
/// Bytes before the payload.
pub const HEADER_BYTES: usize = 40;
/// The receiver field of a frame addressed to every node reading its link (a shared-disk
/// slot).
pub const TO_EVERY: u16 = u16::MAX;
/// Bytes of the tag after the payload.
pub const TAG_BYTES: usize = 32;
/// The largest frame: the largest UDP payload over IPv4 (65,535 − 20 − 8).
pub const PACKET_BYTES_MAX: usize = 65_507;

type HmacSha256 = Hmac<Sha256>;

/// Identifies a cluster on the wire: the first 8 bytes of SHA-256 of its name (with a
/// domain prefix), so that a node drops another cluster's packets before checking tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClusterId(pub [u8; 8]);

impl ClusterId {
    pub fn from_name(name: &str) -> ClusterId {
        let digest =
            Sha256::new().chain_update(b"tandem cluster id\0").chain_update(name).finalize();
        let mut id = [0; 8];
        id.copy_from_slice(&digest[..8]);
        ClusterId(id)
    }
}

/// Where a frame goes: the link it is sent on and the node it is for (`None`: every
/// node that reads the link, as a shared-disk slot is). Both are in the header and under
/// the tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub link: LinkId,
    pub to: Option<NodeId>,
}

impl Route {
    fn to_field(self) -> u16 {
        self.to.map_or(TO_EVERY, |n| n.0)
    }
}

/// The fixed header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u16,
    pub cluster: ClusterId,
    pub from: NodeId,
    /// The receiver's node id, or [`TO_EVERY`].
    pub to: u16,
    pub link: LinkId,
    pub incarnation: u64,
    pub sequence: u64,
    pub payload_bytes: u32,
}

/// Why a heartbeat could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The frame would exceed [`PACKET_BYTES_MAX`].
    TooLarge { bytes: usize },
    /// The payload could not be serialized.
    Serialize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge { bytes } => {
                write!(f, "heartbeat of {bytes} bytes exceeds the {PACKET_BYTES_MAX}-byte limit")
            }
            EncodeError::Serialize => f.write_str("heartbeat payload could not be serialized"),
        }
    }
}

impl std::error::Error for EncodeError {}

fn mac(key: &Key) -> HmacSha256 {
    // HMAC takes keys of any length: this never fails.
    <HmacSha256 as Mac>::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// Encodes `heartbeat` as one authenticated frame of `cluster` under `key`, for `route`,
/// carrying no configuration stamp.
pub fn encode(
    key: &Key,
    cluster: ClusterId,
    route: Route,
    heartbeat: &Heartbeat,
) -> Result<Vec<u8>, EncodeError> {
    encode_with_config(key, cluster, route, heartbeat, None)
}

/// [`encode`], the frame carrying the sender's configuration generation and hash.
pub fn encode_with_config(
    key: &Key,
    cluster: ClusterId,
    route: Route,
    heartbeat: &Heartbeat,
    config: Option<&ConfigStamp>,
) -> Result<Vec<u8>, EncodeError> {
    let payload = encode_body(heartbeat.sent_at, heartbeat.echo, &heartbeat.report, config)
        .ok_or(EncodeError::Serialize)?;
    let bytes = HEADER_BYTES + payload.len() + TAG_BYTES;
    if bytes > PACKET_BYTES_MAX {
        return Err(EncodeError::TooLarge { bytes });
    }
    let mut frame = Vec::with_capacity(bytes);
    frame.extend_from_slice(&MAGIC);
    frame.extend_from_slice(&VERSION.to_le_bytes());
    frame.extend_from_slice(&cluster.0);
    frame.extend_from_slice(&heartbeat.from.0.to_le_bytes());
    frame.extend_from_slice(&route.to_field().to_le_bytes());
    frame.extend_from_slice(&route.link.0.to_le_bytes());
    frame.extend_from_slice(&heartbeat.incarnation.to_le_bytes());
    frame.extend_from_slice(&heartbeat.sequence.to_le_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&payload);
    let tag = mac(key).chain_update(&frame).finalize().into_bytes();
    frame.extend_from_slice(&tag);
    Ok(frame)
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

/// Reads the header of `bytes` (at least [`HEADER_BYTES`] long).
fn header(bytes: &[u8]) -> Header {
    Header {
        version: u16::from_le_bytes(array(bytes, 4)),
        cluster: ClusterId(array(bytes, 6)),
        from: NodeId(u16::from_le_bytes(array(bytes, 14))),
        to: u16::from_le_bytes(array(bytes, 16)),
        link: LinkId(u16::from_le_bytes(array(bytes, 18))),
        incarnation: u64::from_le_bytes(array(bytes, 20)),
        sequence: u64::from_le_bytes(array(bytes, 28)),
        payload_bytes: u32::from_le_bytes(array(bytes, 36)),
    }
}

/// Checks a frame's shape, version, cluster, route and tag, then decodes its heartbeat.
/// The checks run in this order and the first failure is the reason returned.
pub fn decode(
    key: &Key,
    cluster: ClusterId,
    route: Route,
    bytes: &[u8],
) -> Result<Heartbeat, Reject> {
    decode_with_config(key, cluster, route, bytes).map(|(heartbeat, _)| heartbeat)
}

/// [`decode`], with the configuration stamp the frame carries.
pub fn decode_with_config(
    key: &Key,
    cluster: ClusterId,
    route: Route,
    bytes: &[u8],
) -> Result<(Heartbeat, Option<ConfigStamp>), Reject> {
    let header = parse(cluster, route, bytes)?;
    authenticate_with_config(key, &header, bytes)
}

/// Reads the header of `bytes` and checks the frame's shape, version, cluster and
/// route, without cryptography.
pub fn parse(cluster: ClusterId, route: Route, bytes: &[u8]) -> Result<Header, Reject> {
    if bytes.len() > PACKET_BYTES_MAX {
        return Err(Reject::Oversized);
    }
    if bytes.len() < HEADER_BYTES + TAG_BYTES {
        return Err(Reject::Truncated);
    }
    if bytes[..4] != MAGIC {
        return Err(Reject::BadMagic);
    }
    let header = header(bytes);
    if header.version != VERSION {
        return Err(Reject::UnknownVersion);
    }
    if header.cluster != cluster {
        return Err(Reject::OtherCluster);
    }
    let expected = HEADER_BYTES + header.payload_bytes as usize + TAG_BYTES;
    if bytes.len() < expected {
        return Err(Reject::Truncated);
    }
    if bytes.len() > expected {
        return Err(Reject::Oversized);
    }
    if header.link != route.link {
        return Err(Reject::OtherLink);
    }
    if header.to != route.to_field() {
        return Err(Reject::OtherReceiver);
    }
    Ok(header)
}

/// Checks the tag of `bytes` (whose header [`parse`] accepted as `header`) and decodes
/// its heartbeat.
pub fn authenticate(key: &Key, header: &Header, bytes: &[u8]) -> Result<Heartbeat, Reject> {
    authenticate_with_config(key, header, bytes).map(|(heartbeat, _)| heartbeat)
}

/// [`authenticate`], with the configuration stamp the frame carries.
pub fn authenticate_with_config(
    key: &Key,
    header: &Header,
    bytes: &[u8],
) -> Result<(Heartbeat, Option<ConfigStamp>), Reject> {
    let (signed, tag) = bytes.split_at(bytes.len() - TAG_BYTES);
    // `verify_slice` compares in constant time.
    mac(key).chain_update(signed).verify_slice(tag).map_err(|_| Reject::BadTag)?;
    if usize::from(header.from.0) >= NODES_MAX {
        return Err(Reject::Malformed);
    }
    let body = decode_body(&signed[HEADER_BYTES..]).ok_or(Reject::Malformed)?;
    let heartbeat = Heartbeat {
        from: header.from,
        incarnation: header.incarnation,
        sequence: header.sequence,
        sent_at: body.sent_at,
        echo: body.echo,
        report: body.report,
    };
    Ok((heartbeat, body.config))
}
