//! Fuzz target `wire_decode`: feeds arbitrary bytes to a `wire::Receiver` and checks it
//! never panics and that whatever it accepts re-encodes to a frame it accepts again,
//! with the same configuration stamp.
//!
//! The first input byte picks a mode: even, the rest is one raw frame (exercises the
//! header checks; the tag stops everything else); odd, the rest becomes a payload that
//! this target frames and signs with the fuzzing key, so the payload decoder and the
//! replay window are reached too. Bit 1 of that byte sends every frame as if from node
//! `mode >> 2 & 3` with a budget of 2,000 bytes a frame (`Receiver::receive_from`: the
//! sender check and the rate limit). It must not do anything but call the crate.

#![no_main]

use engine::{LinkId, NodeId};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use wire::{ClusterId, Key, Receiver, Route, HEADER_BYTES, MAGIC, TAG_BYTES, VERSION};

const KEY_BYTES: [u8; 32] = [7; 32];

/// The fuzzing receiver's route: link 1, node 0.
const ROUTE: Route = Route { link: LinkId(1), to: Some(NodeId(0)) };

fn signed_frame(cluster: ClusterId, header_seed: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len() + TAG_BYTES);
    frame.extend_from_slice(&MAGIC);
    frame.extend_from_slice(&VERSION.to_le_bytes());
    frame.extend_from_slice(&cluster.0);
    // Sender (2), receiver (2), link (2), incarnation (8), sequence (8) from the input,
    // zero-padded.
    let mut ids = [0u8; 22];
    let n = header_seed.len().min(22);
    ids[..n].copy_from_slice(&header_seed[..n]);
    ids[0] %= 34; // mostly valid senders, sometimes out of range
    ids[1] = 0;
    // Mostly this receiver's route, sometimes another link or node.
    if ids[2] % 8 != 0 {
        ids[2..4].copy_from_slice(&0u16.to_le_bytes());
        ids[4..6].copy_from_slice(&1u16.to_le_bytes());
    }
    frame.extend_from_slice(&ids);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(payload);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&KEY_BYTES).expect("any key length");
    mac.update(&frame);
    frame.extend_from_slice(&mac.finalize().into_bytes());
    frame
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let key = Key::new(KEY_BYTES);
    let cluster = ClusterId::from_name("fuzz");
    let mut receiver = Receiver::new(key.clone(), cluster, ROUTE);
    let frames: Vec<Vec<u8>> = if mode % 2 == 0 {
        vec![rest.to_vec()]
    } else {
        // Several frames, split on 0xfe: 22 header bytes and a payload each.
        rest.split(|&b| b == 0xfe)
            .map(|chunk| {
                let (ids, payload) = chunk.split_at(chunk.len().min(22));
                signed_frame(cluster, ids, payload)
            })
            .collect()
    };
    let source = (mode & 2 != 0).then_some(NodeId(u16::from(mode >> 2 & 3)));
    for frame in frames {
        let result = match source {
            Some(node) => receiver.receive_from(&frame, Some(node), |bytes| bytes <= 2_000),
            None => receiver.receive(&frame),
        };
        if let Ok(heartbeat) = result {
            assert!(source.is_none_or(|node| node == heartbeat.from));
            let seen = receiver.config_of(heartbeat.from).expect("an accepted sender's stamp");
            let stamp = seen.stamp;
            let again = wire::encode_with_config(&key, cluster, ROUTE, &heartbeat, stamp.as_ref())
                .expect("accepted frames re-encode");
            let (decoded, config) = wire::decode_with_config(&key, cluster, ROUTE, &again)
                .expect("re-encoded frames decode");
            assert_eq!(decoded, heartbeat);
            // The stamp kept is the newest frame's: this one's unless an older one came late.
            if (seen.incarnation, seen.sequence) == (heartbeat.incarnation, heartbeat.sequence) {
                assert_eq!(config, stamp);
            }
        }
    }
});
