//! The shared-disk area of a `disk` link: its on-disk format ([`format`]), real block
//! I/O on it ([`area`]), and the driver that carries out the disk lease client's I/O
//! ([`driver`]). It owns the bytes on the disk; it must not decide anything about
//! leases (that is `arbiter::disk`) nor encode heartbeats (that is `wire`: a slot holds
//! an opaque payload).
//!
//! # Layout (format version 1)
//!
//! The area is a block-device partition or a plain file of at least
//! [`AREA_BYTES_MIN`] (1 MiB) and at least the layout's size. It is made of 4 KiB
//! sectors ([`SECTOR_BYTES`]); every sector starts with a common 24-byte header:
//!
//! | bytes  | field                                                          |
//! |--------|----------------------------------------------------------------|
//! | 0..4   | CRC-32C of bytes 4..4096 (little-endian)                       |
//! | 4      | kind: 1 header, 2 heartbeat, 3 host record, 4 group record     |
//! | 5      | format version (1)                                             |
//! | 6..8   | reserved, 0                                                    |
//! | 8..12  | the sector's own index (catches misdirected writes)            |
//! | 12..16 | reserved, 0                                                    |
//! | 16..24 | cluster id: first 8 bytes of SHA-256("tandem cluster id\0" ‖ name) |
//!
//! An all-zero sector is *blank* (never written); anything else with a bad checksum,
//! version, index or cluster id is an I/O error ([`AreaError::Corrupt`]), never a panic.
//! For `N` nodes and `G` groups the sectors are:
//!
//! | sectors                  | what                | body (after the 24-byte header)                  |
//! |--------------------------|---------------------|--------------------------------------------------|
//! | 0                        | area header         | magic `TANDEMHA`, version u32, N u32, G u32, slot sectors u32, 4 × u64 offsets (heartbeat, host, group, end), name length u16, name |
//! | 1 .. 1+4N                | heartbeat slots, 4 sectors per node | each sector: seq u64, payload length u32, part u32, up to 4056 payload bytes |
//! | 1+4N .. 1+5N             | host records, one per node  | incarnation u64, counter u64, G u32, bitmap of the groups listed (⌈G/8⌉ bytes), flags u8 (bit 0: parked) |
//! | 1+5N .. 1+5N+G           | group records, one per group | owner u16 (0xFFFF: free), stamp (u64, u64) |
//! | 1+5N+G .. 1+6N+G         | mailboxes, one per node     | a poison pill: from u16 (0xFFFF: an operator), the target's incarnation u64, wall-clock seconds u64 |
//!
//! All integers are little-endian. A heartbeat of up to [`HEARTBEAT_BYTES_MAX`] bytes is
//! written in one `pwrite` of the sectors it needs; sectors carrying different sequence
//! numbers (a torn write) read as an error, and the reader tries again next interval.
//! Sizes: 2 nodes × 2 groups use 15 sectors (60 KiB; the 1 MiB minimum applies);
//! the limits ([`engine::NODES_MAX`] nodes, [`engine::GROUPS_MAX`] groups) use 10 193
//! sectors, [`AREA_BYTES_FOR_LIMITS`] = 41 750 528 bytes (39.8 MiB).
//!
//! # I/O and time limits
//!
//! Every read and write is whole, aligned sectors from 4 KiB-aligned memory, with
//! `O_DIRECT | O_DSYNC` so that another host's writes are seen and ours are on the disk
//! when the call returns (see [`area::Mode`] for plain files and tmpfs). The functions
//! block; they have no time limit of their own. The caller must run them off its event
//! loop (the daemon: `spawn_blocking`) and enforce the `io_timeout` it promised the
//! lease client: an I/O that has not returned by then counts as failed, and its thread
//! is abandoned, not awaited.

pub mod area;
mod crc;
pub mod driver;
pub mod format;
pub mod ring;

use std::fmt;

pub use area::{format_area, inspect, Area, FormatReport, Mode, Reply, Request, SectorIo};
pub use driver::perform;
pub use format::{
    cluster_id, Found, Header, Layout, AREA_BYTES_FOR_LIMITS, AREA_BYTES_MIN, HEARTBEAT_BYTES_MAX,
    SECTOR_BYTES,
};
pub use ring::{Ring, Token};

/// Why an operation on the area failed.
#[derive(Debug)]
pub enum AreaError {
    /// The operating system refused or failed the I/O.
    Io(std::io::Error),
    /// A sector failed its checks (checksum, version, index, cluster, kind).
    Corrupt { sector: u64, why: String },
    /// Sector 0 holds no tandem header.
    NotFormatted(String),
    /// The area belongs to another cluster.
    ForeignCluster { name: String, id: [u8; 8] },
    /// The area is smaller than the layout needs.
    TooSmall { bytes: u64, needed: u64 },
    /// The area was formatted for another number of nodes or groups.
    WrongLayout { found: Layout, expected: Layout },
    /// A node, group, name or payload outside the format's limits.
    Limit(String),
}

impl fmt::Display for AreaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AreaError::Io(e) => write!(f, "I/O error: {e}"),
            AreaError::Corrupt { sector, why } => write!(f, "sector {sector} is bad: {why}"),
            AreaError::NotFormatted(why) => {
                write!(f, "not a tandem area ({why}); run `tandem disk init`")
            }
            AreaError::ForeignCluster { name, id } => {
                write!(f, "the area belongs to cluster `{name}` (id {})", format::hex(id))
            }
            AreaError::TooSmall { bytes, needed } => {
                write!(f, "the area has {bytes} bytes; it needs at least {needed}")
            }
            AreaError::WrongLayout { found, expected } => write!(
                f,
                "the area was formatted for {} nodes and {} groups, the configuration has {} \
                 and {}; run `tandem disk init` with the cluster stopped",
                found.nodes, found.groups, expected.nodes, expected.groups
            ),
            AreaError::Limit(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for AreaError {}

impl From<std::io::Error> for AreaError {
    fn from(e: std::io::Error) -> AreaError {
        AreaError::Io(e)
    }
}
