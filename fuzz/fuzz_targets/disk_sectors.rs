//! Fuzz target `disk_sectors`: the shared disk area's decoders (`diskarea::format`) on
//! arbitrary sectors: the area header (sector 0), a heartbeat slot (4 sectors), and the
//! host, group and mailbox records. Nothing may panic, and whatever decodes re-encodes
//! to sectors that decode to the same value (the reserved bytes of the input need not
//! survive).
//!
//! Input: byte 0 is the mode, byte 1 the number of nodes (1 + it mod 32), byte 2 the
//! groups (0 to 64, then steps of 52), byte 3 the node or group read, the rest the sectors.
//! `mode % 5` picks the decoder (header, heartbeat slot, host, group, mailbox record).
//! With bit 7 clear the rest is the raw sector(s), zero-padded (so a seed need not carry
//! its trailing zeros); with it set the rest is the body of each sector (split on the
//! byte 0xfe for a slot's parts), sealed by this target with a valid checksum, the
//! sector's own index and the cluster id, so that the body decoders are reached; bits
//! 4..6 then pick the kind written (0: the right one for the decoder, else 1..7).

#![no_main]

use arbiter::disk::Block;
use diskarea::format::{
    self, decode_header, decode_heartbeat, decode_record, encode_header, encode_heartbeat,
    encode_record, seal, SECTOR_BODY_BYTES, SLOT_SECTORS,
};
use diskarea::{Found, Layout, SECTOR_BYTES};
use engine::{GroupId, NodeId, GROUPS_MAX, NODES_MAX};
use libfuzzer_sys::fuzz_target;

/// The cluster of the seeds (`examples/loopback.toml`), so that real sectors get past the
/// cluster check.
fn cluster() -> [u8; 8] {
    diskarea::cluster_id("loopback")
}

/// `count` sectors from `rest`: raw and zero-padded, or bodies sealed as `kind` from
/// sector index `first` on.
fn sectors(rest: &[u8], count: usize, sealed: Option<u8>, first: u64) -> Vec<u8> {
    let mut out = vec![0u8; count * SECTOR_BYTES];
    match sealed {
        None => {
            let n = rest.len().min(out.len());
            out[..n].copy_from_slice(&rest[..n]);
        }
        Some(kind) => {
            for (part, body) in rest.split(|&b| b == 0xfe).take(count).enumerate() {
                let body = &body[..body.len().min(SECTOR_BODY_BYTES)];
                let sector = &mut out[part * SECTOR_BYTES..(part + 1) * SECTOR_BYTES];
                seal(sector, kind, first + part as u64, cluster(), body);
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (mode, nodes, groups, which, rest) = (data[0], data[1], data[2], data[3], &data[4..]);
    // Groups: 0..=64 as they are, then in steps of 52 up to 9,932 (the limit is 10,000).
    let groups = match groups as usize {
        small @ 0..=64 => small,
        large => (large - 64) * 52,
    };
    let layout = Layout::new(1 + nodes as usize % NODES_MAX, groups.min(GROUPS_MAX))
        .expect("within the limits");
    let what = mode % 5;
    let kind = |right: u8| match mode >> 4 & 7 {
        0 => right,
        other => other,
    };
    let sealed = (mode & 0x80 != 0).then_some(());
    match what {
        0 => {
            let sector = sectors(rest, 1, sealed.map(|()| kind(format::KIND_HEADER)), 0);
            if let Found::Header(header) = decode_header(&sector) {
                assert!(header.cluster_name.len() <= format::CLUSTER_NAME_BYTES_MAX);
                let mut again = vec![0; SECTOR_BYTES];
                encode_header(&header, &mut again).expect("a decoded header re-encodes");
                assert_eq!(decode_header(&again), Found::Header(header));
            }
        }
        1 => {
            let node = NodeId(u16::from(which) % layout.nodes);
            let first = layout.heartbeat_slot(node).expect("a node of the layout");
            let slot =
                sectors(rest, SLOT_SECTORS, sealed.map(|()| kind(format::KIND_HEARTBEAT)), first);
            if let Ok(Some((seq, payload))) = decode_heartbeat(&slot, first, cluster()) {
                assert!(payload.len() <= diskarea::HEARTBEAT_BYTES_MAX);
                let mut again = vec![0; SLOT_SECTORS * SECTOR_BYTES];
                encode_heartbeat(&mut again, first, cluster(), seq, &payload)
                    .expect("a decoded heartbeat re-encodes");
                assert_eq!(
                    decode_heartbeat(&again, first, cluster()).unwrap(),
                    Some((seq, payload))
                );
            }
        }
        _ => {
            let (block, right) = match what {
                2 => (Block::Host(NodeId(u16::from(which) % layout.nodes)), format::KIND_HOST),
                3 if layout.groups > 0 => {
                    (Block::Group(GroupId(u32::from(which) % layout.groups)), format::KIND_GROUP)
                }
                3 => return,
                _ => (Block::Mailbox(NodeId(u16::from(which) % layout.nodes)), format::KIND_PILL),
            };
            let index = layout.block(block).expect("a block of the layout");
            let sector = sectors(rest, 1, sealed.map(|()| kind(right)), index);
            if let Ok(record) = decode_record(&sector, &layout, index, cluster(), block) {
                let mut again = vec![0; SECTOR_BYTES];
                encode_record(&mut again, &layout, index, cluster(), block, &record)
                    .expect("a decoded record re-encodes");
                assert_eq!(
                    decode_record(&again, &layout, index, cluster(), block).unwrap(),
                    record
                );
            }
        }
    }
});
