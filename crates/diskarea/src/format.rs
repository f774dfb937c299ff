//! The on-disk format, as pure functions over byte buffers: the [`Layout`] (which sector
//! holds what), the common sector header with its CRC-32C, and the encoding of the
//! area header, heartbeat slots, host records and group records. See the crate docs for
//! the table. It owns every byte offset of the format; it must not do I/O.

use arbiter::disk::{Block, GroupRecord, HostRecord, Pill, Record};
use engine::{GroupId, NodeId, GROUPS_MAX, NODES_MAX};
use sha2::{Digest, Sha256};

use crate::crc::crc32c;
use crate::AreaError;

/// Every read and write is whole 4 KiB sectors at 4 KiB offsets (O_DIRECT alignment).
pub const SECTOR_BYTES: usize = 4096;
/// The common header at the start of every sector.
pub const SECTOR_HEADER_BYTES: usize = 24;
/// What follows the common header.
pub const SECTOR_BODY_BYTES: usize = SECTOR_BYTES - SECTOR_HEADER_BYTES;
/// The format version written in every sector and in the area header.
pub const FORMAT_VERSION: u8 = 1;
/// The area header's magic, at the start of sector 0's body.
pub const MAGIC: [u8; 8] = *b"TANDEMHA";
/// Sectors per heartbeat slot.
pub const SLOT_SECTORS: usize = 4;
/// Bytes of a slot sector's body before its share of the payload: seq, length, part.
const SLOT_PART_HEADER_BYTES: usize = 16;
/// Payload bytes carried by one slot sector.
pub const SLOT_PART_BYTES: usize = SECTOR_BODY_BYTES - SLOT_PART_HEADER_BYTES;
/// The largest heartbeat payload a slot holds.
pub const HEARTBEAT_BYTES_MAX: usize = SLOT_SECTORS * SLOT_PART_BYTES;
/// The longest cluster name the header holds (UTF-8 bytes).
pub const CLUSTER_NAME_BYTES_MAX: usize = 1024;
/// The smallest area `tandem disk init` accepts, whatever the cluster's size.
pub const AREA_BYTES_MIN: u64 = 1 << 20;
/// The area size the limits need: [`NODES_MAX`] nodes and [`GROUPS_MAX`] groups.
pub const AREA_BYTES_FOR_LIMITS: u64 =
    Layout::sectors_for(NODES_MAX as u64, GROUPS_MAX as u64) * SECTOR_BYTES as u64;

/// Sector kinds (byte 4 of every sector). An all-zero sector is blank (never written).
pub const KIND_HEADER: u8 = 1;
pub const KIND_HEARTBEAT: u8 = 2;
pub const KIND_HOST: u8 = 3;
pub const KIND_GROUP: u8 = 4;
pub const KIND_PILL: u8 = 5;

/// A group record's `owner` when the group is free.
const OWNER_NONE: u16 = u16::MAX;

/// Identifies a cluster on disk: the first 8 bytes of SHA-256 of its name with the
/// domain prefix `wire::ClusterId::from_name` uses, so both identify a cluster alike.
pub fn cluster_id(name: &str) -> [u8; 8] {
    let digest = Sha256::new().chain_update(b"tandem cluster id\0").chain_update(name).finalize();
    let mut id = [0; 8];
    id.copy_from_slice(&digest[..8]);
    id
}

/// Where everything is, in sectors, for a cluster of `nodes` nodes and `groups` groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub nodes: u16,
    pub groups: u32,
}

impl Layout {
    /// A layout within the limits ([`NODES_MAX`], [`GROUPS_MAX`]; at least one node).
    pub fn new(nodes: usize, groups: usize) -> Result<Layout, AreaError> {
        if nodes == 0 || nodes > NODES_MAX || groups > GROUPS_MAX {
            return Err(AreaError::Limit(format!(
                "{nodes} nodes and {groups} groups: the area holds 1 to {NODES_MAX} nodes \
                 and at most {GROUPS_MAX} groups"
            )));
        }
        Ok(Layout { nodes: nodes as u16, groups: groups as u32 })
    }

    pub const fn sectors_for(nodes: u64, groups: u64) -> u64 {
        1 + nodes * SLOT_SECTORS as u64 + nodes + groups + nodes
    }

    /// The first sector of the heartbeat slots.
    pub const fn heartbeat_start(&self) -> u64 {
        1
    }

    pub const fn host_start(&self) -> u64 {
        self.heartbeat_start() + self.nodes as u64 * SLOT_SECTORS as u64
    }

    pub const fn group_start(&self) -> u64 {
        self.host_start() + self.nodes as u64
    }

    /// The first mailbox (one per node, after the group records).
    pub const fn mailbox_start(&self) -> u64 {
        self.group_start() + self.groups as u64
    }

    /// Sectors used (the end of the mailboxes).
    pub const fn sectors(&self) -> u64 {
        self.mailbox_start() + self.nodes as u64
    }

    /// The size an area must have for this layout (at least [`AREA_BYTES_MIN`]).
    pub fn bytes_needed(&self) -> u64 {
        (self.sectors() * SECTOR_BYTES as u64).max(AREA_BYTES_MIN)
    }

    /// The first sector of `node`'s heartbeat slot.
    pub fn heartbeat_slot(&self, node: NodeId) -> Result<u64, AreaError> {
        self.check_node(node)?;
        Ok(self.heartbeat_start() + node.0 as u64 * SLOT_SECTORS as u64)
    }

    /// The sector of a lease record.
    pub fn block(&self, block: Block) -> Result<u64, AreaError> {
        match block {
            Block::Host(node) => {
                self.check_node(node)?;
                Ok(self.host_start() + node.0 as u64)
            }
            Block::Group(group) => {
                self.check_group(group)?;
                Ok(self.group_start() + group.0 as u64)
            }
            Block::Mailbox(node) => {
                self.check_node(node)?;
                Ok(self.mailbox_start() + node.0 as u64)
            }
        }
    }

    fn check_node(&self, node: NodeId) -> Result<(), AreaError> {
        if node.0 >= self.nodes {
            return Err(AreaError::Limit(format!(
                "node {} is outside the area ({} nodes)",
                node.0, self.nodes
            )));
        }
        Ok(())
    }

    fn check_group(&self, group: GroupId) -> Result<(), AreaError> {
        if group.0 >= self.groups {
            return Err(AreaError::Limit(format!(
                "group {} is outside the area ({} groups)",
                group.0, self.groups
            )));
        }
        Ok(())
    }
}

/// The decoded area header (sector 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub cluster_id: [u8; 8],
    pub cluster_name: String,
    pub layout: Layout,
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
    at + bytes.len()
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// Fills `sector` (one sector) with the common header and `body`, checksum last.
pub fn seal(sector: &mut [u8], kind: u8, index: u64, cluster: [u8; 8], body: &[u8]) {
    assert_eq!(sector.len(), SECTOR_BYTES);
    assert!(body.len() <= SECTOR_BODY_BYTES);
    sector.fill(0);
    sector[4] = kind;
    sector[5] = FORMAT_VERSION;
    put(sector, 8, &(index as u32).to_le_bytes());
    put(sector, 16, &cluster);
    put(sector, SECTOR_HEADER_BYTES, body);
    let crc = crc32c(&sector[4..]);
    put(sector, 0, &crc.to_le_bytes());
}

/// Checks one sector read from `index`: `None` if blank (all zeros), else its kind and
/// body. A bad checksum, an unknown version, a sector written for another index
/// (misdirected write) or for another cluster is [`AreaError::Corrupt`].
pub fn open_sector(
    sector: &[u8],
    index: u64,
    cluster: Option<[u8; 8]>,
) -> Result<Option<(u8, &[u8])>, AreaError> {
    let corrupt = |why: String| AreaError::Corrupt { sector: index, why };
    if sector.len() != SECTOR_BYTES {
        return Err(corrupt(format!("{} bytes, expected {SECTOR_BYTES}", sector.len())));
    }
    if sector.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let stored = u32_at(sector, 0);
    let computed = crc32c(&sector[4..]);
    if stored != computed {
        return Err(corrupt(format!("checksum {stored:08x}, computed {computed:08x}")));
    }
    if sector[5] != FORMAT_VERSION {
        return Err(corrupt(format!("format version {}, expected {FORMAT_VERSION}", sector[5])));
    }
    let written_for = u32_at(sector, 8) as u64;
    if written_for != index {
        return Err(corrupt(format!("holds sector {written_for} (a misdirected write)")));
    }
    let mut id = [0; 8];
    id.copy_from_slice(&sector[16..24]);
    if let Some(expected) = cluster {
        if id != expected {
            return Err(corrupt(format!("written by another cluster (id {})", hex(&id))));
        }
    }
    Ok(Some((sector[4], &sector[SECTOR_HEADER_BYTES..])))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sector 0 for `header`.
pub fn encode_header(header: &Header, sector: &mut [u8]) -> Result<(), AreaError> {
    let name = header.cluster_name.as_bytes();
    if name.len() > CLUSTER_NAME_BYTES_MAX {
        return Err(AreaError::Limit(format!(
            "a cluster name of {} bytes; at most {CLUSTER_NAME_BYTES_MAX}",
            name.len()
        )));
    }
    let l = header.layout;
    let mut body = vec![0; SECTOR_BODY_BYTES];
    let mut at = put(&mut body, 0, &MAGIC);
    at = put(&mut body, at, &(FORMAT_VERSION as u32).to_le_bytes());
    at = put(&mut body, at, &(l.nodes as u32).to_le_bytes());
    at = put(&mut body, at, &l.groups.to_le_bytes());
    at = put(&mut body, at, &(SLOT_SECTORS as u32).to_le_bytes());
    for offset in [l.heartbeat_start(), l.host_start(), l.group_start(), l.sectors()] {
        at = put(&mut body, at, &offset.to_le_bytes());
    }
    at = put(&mut body, at, &(name.len() as u16).to_le_bytes());
    put(&mut body, at, name);
    seal(sector, KIND_HEADER, 0, header.cluster_id, &body);
    Ok(())
}

/// What sector 0 holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// All zeros: never formatted.
    Blank,
    /// A tandem area header.
    Header(Header),
    /// Something else (another program's data, or a damaged header).
    Other(String),
}

/// Reads sector 0.
pub fn decode_header(sector: &[u8]) -> Found {
    let body = match open_sector(sector, 0, None) {
        Ok(None) => return Found::Blank,
        Ok(Some((KIND_HEADER, body))) => body,
        Ok(Some((kind, _))) => return Found::Other(format!("sector 0 has kind {kind}")),
        Err(e) => return Found::Other(e.to_string()),
    };
    if body[..8] != MAGIC {
        return Found::Other("no TANDEMHA magic".into());
    }
    let version = u32_at(body, 8);
    if version != FORMAT_VERSION as u32 {
        return Found::Other(format!("format version {version}"));
    }
    let layout = match Layout::new(u32_at(body, 12) as usize, u32_at(body, 16) as usize) {
        Ok(layout) => layout,
        Err(e) => return Found::Other(e.to_string()),
    };
    let offsets = [u64_at(body, 24), u64_at(body, 32), u64_at(body, 40), u64_at(body, 48)];
    let expected =
        [layout.heartbeat_start(), layout.host_start(), layout.group_start(), layout.sectors()];
    if u32_at(body, 20) != SLOT_SECTORS as u32 || offsets != expected {
        return Found::Other(format!("layout {offsets:?} does not match version 1's rule"));
    }
    let name_len = u16_at(body, 56) as usize;
    if name_len > CLUSTER_NAME_BYTES_MAX {
        return Found::Other(format!("a cluster name of {name_len} bytes"));
    }
    let Ok(name) = std::str::from_utf8(&body[58..58 + name_len]) else {
        return Found::Other("the cluster name is not UTF-8".into());
    };
    let mut cluster_id = [0; 8];
    cluster_id.copy_from_slice(&sector[16..24]);
    Found::Header(Header { cluster_id, cluster_name: name.into(), layout })
}

/// Fills `slot` ([`SLOT_SECTORS`] sectors) with `payload` at slot `first` (its first
/// sector index); returns the sectors used (only those need writing).
pub fn encode_heartbeat(
    slot: &mut [u8],
    first: u64,
    cluster: [u8; 8],
    seq: u64,
    payload: &[u8],
) -> Result<usize, AreaError> {
    if payload.len() > HEARTBEAT_BYTES_MAX {
        return Err(AreaError::Limit(format!(
            "a heartbeat of {} bytes; a slot holds {HEARTBEAT_BYTES_MAX}",
            payload.len()
        )));
    }
    let parts = payload.len().div_ceil(SLOT_PART_BYTES).max(1);
    let mut body = vec![0; SECTOR_BODY_BYTES];
    for part in 0..parts {
        body.fill(0);
        let chunk = &payload[(part * SLOT_PART_BYTES).min(payload.len())
            ..((part + 1) * SLOT_PART_BYTES).min(payload.len())];
        let mut at = put(&mut body, 0, &seq.to_le_bytes());
        at = put(&mut body, at, &(payload.len() as u32).to_le_bytes());
        at = put(&mut body, at, &(part as u32).to_le_bytes());
        put(&mut body, at, chunk);
        let sector = &mut slot[part * SECTOR_BYTES..(part + 1) * SECTOR_BYTES];
        seal(sector, KIND_HEARTBEAT, first + part as u64, cluster, &body);
    }
    Ok(parts)
}

/// Reads a slot: `None` if never written, else `(seq, payload)`. Sectors of different
/// writes (a write torn by a crash, or read while being written) are `Corrupt`.
pub fn decode_heartbeat(
    slot: &[u8],
    first: u64,
    cluster: [u8; 8],
) -> Result<Option<(u64, Vec<u8>)>, AreaError> {
    let mut payload = Vec::new();
    let mut seq_len = None;
    for part in 0..SLOT_SECTORS {
        let index = first + part as u64;
        let sector = &slot[part * SECTOR_BYTES..(part + 1) * SECTOR_BYTES];
        let body = match open_sector(sector, index, Some(cluster))? {
            None if part == 0 => return Ok(None),
            None => {
                return Err(AreaError::Corrupt { sector: index, why: "blank slot part".into() })
            }
            Some((KIND_HEARTBEAT, body)) => body,
            Some((kind, _)) => {
                return Err(AreaError::Corrupt {
                    sector: index,
                    why: format!("kind {kind} in a heartbeat slot"),
                })
            }
        };
        let (seq, len, at) = (u64_at(body, 0), u32_at(body, 8) as usize, u32_at(body, 12));
        if len > HEARTBEAT_BYTES_MAX || at as usize != part {
            return Err(AreaError::Corrupt { sector: index, why: "bad slot part".into() });
        }
        match seq_len {
            None => seq_len = Some((seq, len)),
            Some(first) if first != (seq, len) => {
                return Err(AreaError::Corrupt {
                    sector: index,
                    why: "torn heartbeat slot (parts of different writes)".into(),
                })
            }
            Some(_) => {}
        }
        let want = (len - payload.len()).min(SLOT_PART_BYTES);
        payload.extend_from_slice(&body[SLOT_PART_HEADER_BYTES..SLOT_PART_HEADER_BYTES + want]);
        if payload.len() == len {
            return Ok(Some((seq, payload)));
        }
    }
    Err(AreaError::Corrupt { sector: first, why: "heartbeat longer than its slot".into() })
}

/// Fills `sector` with `record` for `block` (at sector `index`). A blank record is an
/// all-zero sector.
pub fn encode_record(
    sector: &mut [u8],
    layout: &Layout,
    index: u64,
    cluster: [u8; 8],
    block: Block,
    record: &Record,
) -> Result<(), AreaError> {
    let mut body = Vec::with_capacity(64);
    let kind = match (block, record) {
        (_, Record::Blank) => {
            sector.fill(0);
            return Ok(());
        }
        (Block::Host(_), Record::Host(h)) => {
            body.extend_from_slice(&h.incarnation.to_le_bytes());
            body.extend_from_slice(&h.counter.to_le_bytes());
            body.extend_from_slice(&layout.groups.to_le_bytes());
            let mut bitmap = vec![0u8; (layout.groups as usize).div_ceil(8)];
            for g in &h.groups {
                layout.check_group(*g)?;
                bitmap[g.0 as usize / 8] |= 1 << (g.0 % 8);
            }
            body.extend_from_slice(&bitmap);
            body.push(u8::from(h.parked));
            KIND_HOST
        }
        (Block::Group(_), Record::Group(g)) => {
            let owner = match g.owner {
                Some(node) => {
                    layout.check_node(node)?;
                    node.0
                }
                None => OWNER_NONE,
            };
            body.extend_from_slice(&owner.to_le_bytes());
            body.extend_from_slice(&g.stamp.0.to_le_bytes());
            body.extend_from_slice(&g.stamp.1.to_le_bytes());
            KIND_GROUP
        }
        (Block::Mailbox(_), Record::Pill(p)) => {
            let from = match p.from {
                Some(node) => {
                    layout.check_node(node)?;
                    node.0
                }
                None => OWNER_NONE,
            };
            body.extend_from_slice(&from.to_le_bytes());
            body.extend_from_slice(&p.incarnation.to_le_bytes());
            body.extend_from_slice(&p.at_unix.to_le_bytes());
            KIND_PILL
        }
        (block, record) => {
            return Err(AreaError::Limit(format!("a {record:?} does not belong in {block:?}")))
        }
    };
    seal(sector, kind, index, cluster, &body);
    Ok(())
}

/// Reads the record of `block` from its sector.
pub fn decode_record(
    sector: &[u8],
    layout: &Layout,
    index: u64,
    cluster: [u8; 8],
    block: Block,
) -> Result<Record, AreaError> {
    let corrupt = |why: String| AreaError::Corrupt { sector: index, why };
    match (block, open_sector(sector, index, Some(cluster))?) {
        (_, None) => Ok(Record::Blank),
        (Block::Host(_), Some((KIND_HOST, body))) => {
            let bits = u32_at(body, 16);
            if bits != layout.groups {
                return Err(corrupt(format!(
                    "a bitmap of {bits} groups, the area has {}",
                    layout.groups
                )));
            }
            let bitmap = &body[20..20 + (bits as usize).div_ceil(8)];
            let groups = (0..bits)
                .filter(|g| bitmap[*g as usize / 8] & (1 << (g % 8)) != 0)
                .map(GroupId)
                .collect();
            // The flags byte (bit 0: parked) follows the bitmap; a record written before
            // it existed has a zero there (the sector is zero-filled).
            let flags = body[20 + (bits as usize).div_ceil(8)];
            Ok(Record::Host(HostRecord {
                incarnation: u64_at(body, 0),
                counter: u64_at(body, 8),
                groups,
                parked: flags & 1 != 0,
            }))
        }
        (Block::Group(_), Some((KIND_GROUP, body))) => {
            let owner = match u16_at(body, 0) {
                OWNER_NONE => None,
                n if n < layout.nodes => Some(NodeId(n)),
                n => {
                    return Err(corrupt(format!(
                        "owner {n} outside the area's {} nodes",
                        layout.nodes
                    )))
                }
            };
            Ok(Record::Group(GroupRecord { owner, stamp: (u64_at(body, 2), u64_at(body, 10)) }))
        }
        (Block::Mailbox(_), Some((KIND_PILL, body))) if body.len() >= 18 => {
            let from = match u16_at(body, 0) {
                OWNER_NONE => None,
                n if n < layout.nodes => Some(NodeId(n)),
                n => return Err(corrupt(format!("pill from node {n}, outside the area"))),
            };
            Ok(Record::Pill(Pill { from, incarnation: u64_at(body, 2), at_unix: u64_at(body, 10) }))
        }
        (block, Some((kind, _))) => Err(corrupt(format!("kind {kind} where {block:?} belongs"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: [u8; 8] = *b"cluster1";

    #[test]
    fn layout_sizes() {
        let small = Layout::new(2, 2).unwrap();
        assert_eq!(small.sectors(), 1 + 8 + 2 + 2 + 2);
        assert_eq!(small.bytes_needed(), AREA_BYTES_MIN);
        assert_eq!(AREA_BYTES_FOR_LIMITS, (1 + 32 * 4 + 32 + 10_000 + 32) * 4096);
        assert_eq!(small.block(Block::Mailbox(NodeId(1))).unwrap(), 1 + 8 + 2 + 2 + 1);
        assert!(Layout::new(NODES_MAX + 1, 1).is_err());
        assert!(Layout::new(1, GROUPS_MAX + 1).is_err());
        assert!(Layout::new(0, 1).is_err());
    }

    #[test]
    fn header_round_trip() {
        let header = Header {
            cluster_id: cluster_id("prod"),
            cluster_name: "prod".into(),
            layout: Layout::new(3, 7).unwrap(),
        };
        let mut sector = vec![0; SECTOR_BYTES];
        encode_header(&header, &mut sector).unwrap();
        assert_eq!(decode_header(&sector), Found::Header(header));
        assert_eq!(decode_header(&[0; SECTOR_BYTES]), Found::Blank);
        sector[100] ^= 0x10;
        assert!(matches!(decode_header(&sector), Found::Other(_)));
    }

    #[test]
    fn records_round_trip_and_flipped_bits_are_caught() {
        let layout = Layout::new(NODES_MAX, GROUPS_MAX).unwrap();
        let host = Record::Host(HostRecord {
            incarnation: 9,
            counter: 77,
            groups: vec![GroupId(0), GroupId(8), GroupId(9_999)],
            parked: false,
        });
        let group = Record::Group(GroupRecord { owner: Some(NodeId(31)), stamp: (9, 78) });
        let free = Record::Group(GroupRecord { owner: None, stamp: (1, 2) });
        for (block, record) in [
            (Block::Host(NodeId(31)), host),
            (Block::Group(GroupId(9_999)), group),
            (Block::Group(GroupId(0)), free),
            (
                Block::Mailbox(NodeId(1)),
                Record::Pill(Pill { from: None, incarnation: 7, at_unix: 9 }),
            ),
            (
                Block::Mailbox(NodeId(0)),
                Record::Pill(Pill { from: Some(NodeId(31)), incarnation: 1, at_unix: 2 }),
            ),
            (
                Block::Host(NodeId(1)),
                Record::Host(HostRecord {
                    incarnation: 3,
                    counter: 4,
                    groups: vec![GroupId(GROUPS_MAX as u32 - 1)],
                    parked: true,
                }),
            ),
            (Block::Host(NodeId(0)), Record::Blank),
        ] {
            let index = layout.block(block).unwrap();
            let mut sector = vec![0; SECTOR_BYTES];
            encode_record(&mut sector, &layout, index, C, block, &record).unwrap();
            assert_eq!(decode_record(&sector, &layout, index, C, block).unwrap(), record);
            if record == Record::Blank {
                continue;
            }
            for bit in [0, 37, 8 * 30, 8 * 4095 + 7] {
                let mut bad = sector.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                let result = decode_record(&bad, &layout, index, C, block);
                assert!(matches!(result, Err(AreaError::Corrupt { .. })), "{bit}: {result:?}");
            }
            // Misdirected and foreign sectors.
            assert!(decode_record(&sector, &layout, index + 1, C, block).is_err());
            assert!(decode_record(&sector, &layout, index, *b"cluster2", block).is_err());
        }
    }

    #[test]
    fn heartbeat_round_trip_and_torn_slot() {
        for len in [0, 1, SLOT_PART_BYTES, SLOT_PART_BYTES + 1, HEARTBEAT_BYTES_MAX] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut slot = vec![0; SLOT_SECTORS * SECTOR_BYTES];
            let used = encode_heartbeat(&mut slot, 5, C, 42, &payload).unwrap();
            assert_eq!(used, len.div_ceil(SLOT_PART_BYTES).max(1));
            assert_eq!(decode_heartbeat(&slot, 5, C).unwrap(), Some((42, payload.clone())));
            if used > 1 {
                let mut newer = slot.clone();
                encode_heartbeat(&mut newer, 5, C, 43, &payload).unwrap();
                newer[SECTOR_BYTES..].copy_from_slice(&slot[SECTOR_BYTES..]);
                assert!(decode_heartbeat(&newer, 5, C).is_err());
            }
        }
        assert_eq!(decode_heartbeat(&vec![0; SLOT_SECTORS * SECTOR_BYTES], 5, C).unwrap(), None);
        let mut slot = vec![0; SLOT_SECTORS * SECTOR_BYTES];
        assert!(encode_heartbeat(&mut slot, 5, C, 1, &vec![0; HEARTBEAT_BYTES_MAX + 1]).is_err());
    }

    #[test]
    fn records_outside_the_layout_are_refused() {
        let layout = Layout::new(2, 2).unwrap();
        assert!(layout.block(Block::Host(NodeId(2))).is_err());
        assert!(layout.block(Block::Group(GroupId(2))).is_err());
        let host = Record::Host(HostRecord {
            incarnation: 1,
            counter: 1,
            groups: vec![GroupId(5)],
            parked: false,
        });
        let mut sector = vec![0; SECTOR_BYTES];
        assert!(encode_record(&mut sector, &layout, 9, C, Block::Host(NodeId(0)), &host).is_err());
    }
}
