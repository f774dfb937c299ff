//! tandem's heartbeat packet format: one authenticated, versioned frame per UDP datagram
//! or shared-disk slot, carrying an [`engine::Heartbeat`].
//!
//! Frame layout (all integers little-endian):
//!
//! | offset | bytes | field                                                      |
//! |-------:|------:|------------------------------------------------------------|
//! |      0 |     4 | magic `TNDM` ([`MAGIC`])                                   |
//! |      4 |     2 | format version ([`VERSION`])                               |
//! |      6 |     8 | cluster id: hash of the cluster name ([`ClusterId`])       |
//! |     14 |     2 | sender node id                                             |
//! |     16 |     2 | receiver node id, `0xffff` for every reader (disk slot)    |
//! |     18 |     2 | link id (the link's index in the configuration)            |
//! |     20 |     8 | sender incarnation                                         |
//! |     28 |     8 | sequence (per sender incarnation)                          |
//! |     36 |     4 | payload length *n*                                         |
//! |     40 |   *n* | payload: postcard of the sent time, echo, report and the   |
//! |        |       | sender's configuration generation and hash (optional)      |
//! | 40 + n |    32 | HMAC-SHA256 tag over bytes `0 .. 40 + n`, cluster key      |
//!
//! Version 2 added the receiver and link fields: under the tag, they make a frame
//! captured on one link, or sent to one node, useless on another link or at another
//! node. Version 3 added the sender's configuration generation and SHA-256
//! ([`ConfigStamp`]) at the end of the payload: the daemon compares it with its own and
//! journals a difference; the engine never sees it. Frames of older versions are refused
//! (`unknown_version`): both nodes of a cluster must run a build of the same format
//! version.
//!
//! Limits: a whole frame is at most [`PACKET_BYTES_MAX`] bytes (the largest UDP payload
//! over IPv4); a report carries at most `engine::GROUPS_MAX` groups, `NODES_MAX` drain
//! registers and `NODES_MAX * LINKS_MAX` link entries. The payload is laid out so that
//! a report of 10,000 groups in ordinary states fits (one byte per group, sparse lists
//! for hand-overs and administrative registers ever written).
//!
//! This crate owns the format, the key and the receiving checks ([`Receiver`]: source,
//! shape, cluster, version, route, sender, replay window, a caller's budget, then the
//! tag — the cheap checks first, so a flood costs no cryptography it can avoid — with a
//! counter per rejection reason). It must not do
//! I/O (it works on byte slices; the one exception is [`Key::from_file`]), read a clock,
//! or decide anything about the heartbeat's contents: that is the engine's job.

mod frame;
mod key;
mod payload;
mod receiver;

pub use frame::{
    authenticate, authenticate_with_config, decode, decode_with_config, encode, encode_with_config,
    parse, ClusterId, EncodeError, Header, Route, HEADER_BYTES, MAGIC, PACKET_BYTES_MAX, TAG_BYTES,
    TO_EVERY, VERSION,
};
pub use key::{Key, KeyError, KEY_BYTES};
pub use payload::ConfigStamp;
pub use receiver::{ConfigSeen, Counters, Receiver, Reject, REPLAY_WINDOW};
