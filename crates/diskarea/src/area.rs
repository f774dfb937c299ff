//! Real I/O on the area: opening the device or file, aligned whole-sector reads and
//! writes, formatting (`tandem disk init`) and inspecting sector 0. It owns the file
//! descriptor and the open flags; it must not decide anything (leases are
//! `arbiter::disk`'s) and it has no clock: every call blocks until the kernel answers,
//! and the caller enforces the time limit (see the crate docs).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use arbiter::disk::{Block, Record};
use engine::NodeId;
use nix::fcntl::{posix_fadvise, OFlag, PosixFadviseAdvice};

use crate::format::{
    self, cluster_id, decode_header, Found, Header, Layout, SECTOR_BYTES, SLOT_SECTORS,
};
use crate::AreaError;

/// How the area is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `O_DIRECT | O_DSYNC`: reads come from the device, writes are on it when they
    /// return. Always the mode for block devices (opening fails otherwise).
    Direct,
    /// `O_DSYNC` with `posix_fadvise(DONTNEED)` around every I/O: for a plain file on a
    /// filesystem without O_DIRECT (tmpfs before Linux 6.6, some FUSE filesystems),
    /// detected by `open` or the first aligned read failing with `EINVAL`. Within one
    /// host the page cache is shared, so processes still see each other's writes; a
    /// plain file is never a shared disk between hosts.
    Buffered,
}

/// A 4 KiB-aligned buffer of `N` bytes (a multiple of [`SECTOR_BYTES`]), as O_DIRECT
/// requires, without `unsafe`.
#[repr(C, align(4096))]
struct Aligned<const N: usize>([u8; N]);

impl<const N: usize> Aligned<N> {
    fn boxed() -> Box<Aligned<N>> {
        Box::new(Aligned([0; N]))
    }
}

const SLOT_BYTES: usize = SLOT_SECTORS * SECTOR_BYTES;
/// Sectors zeroed per write by [`format_area`].
const FORMAT_CHUNK_BYTES: usize = 16 * SECTOR_BYTES;

fn open_file(path: &Path, direct: bool) -> io::Result<File> {
    let mut flags = OFlag::O_DSYNC;
    if direct {
        flags |= OFlag::O_DIRECT;
    }
    OpenOptions::new().read(true).write(true).custom_flags(flags.bits()).open(path)
}

/// Opens `path` read-write in the best [`Mode`] it supports; returns its size in bytes.
fn open_device(path: &Path) -> Result<(File, Mode, u64), AreaError> {
    let block = std::fs::metadata(path)?.file_type().is_block_device();
    let invalid = |e: &io::Error| e.raw_os_error() == Some(nix::libc::EINVAL);
    let direct = match open_file(path, true) {
        Ok(file) => {
            // Some filesystems accept the flag and refuse the I/O: probe with one read.
            let mut probe = Aligned::<SECTOR_BYTES>::boxed();
            match file.read_at(&mut probe.0, 0) {
                Ok(_) => Some(file),
                Err(e) if invalid(&e) && !block => None,
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) if invalid(&e) && !block => None,
        Err(e) => return Err(e.into()),
    };
    let (mut file, mode) = match direct {
        Some(file) => (file, Mode::Direct),
        None => (open_file(path, false)?, Mode::Buffered),
    };
    let bytes = file.seek(SeekFrom::End(0))?;
    Ok((file, mode, bytes))
}

/// Whole-sector I/O on an open area.
struct Device {
    file: File,
    mode: Mode,
}

impl Device {
    fn drop_cache(&self, offset: u64, len: usize) -> io::Result<()> {
        if self.mode == Mode::Buffered {
            posix_fadvise(
                &self.file,
                offset as i64,
                len as i64,
                PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            )
            .map_err(io::Error::from)?;
        }
        Ok(())
    }

    fn read(&self, sector: u64, buf: &mut [u8]) -> io::Result<()> {
        let offset = sector * SECTOR_BYTES as u64;
        self.drop_cache(offset, buf.len())?;
        self.file.read_exact_at(buf, offset)
    }

    fn write(&self, sector: u64, buf: &[u8]) -> io::Result<()> {
        let offset = sector * SECTOR_BYTES as u64;
        self.file.write_all_at(buf, offset)?;
        self.drop_cache(offset, buf.len())
    }

    fn header(&self) -> Result<Found, AreaError> {
        let mut buf = Aligned::<SECTOR_BYTES>::boxed();
        self.read(0, &mut buf.0)?;
        Ok(decode_header(&buf.0))
    }
}

/// An open, formatted area of one cluster. Its methods take `&self` and may be called
/// from several threads at once (each is one `pread`/`pwrite`).
pub struct Area {
    device: Device,
    header: Header,
    path: PathBuf,
}

impl Area {
    /// Opens the area at `path` for cluster `cluster_name`: it must be formatted for
    /// that cluster (by `tandem disk init`).
    pub fn open(path: &Path, cluster_name: &str) -> Result<Area, AreaError> {
        let (file, mode, bytes) = open_device(path)?;
        let device = Device { file, mode };
        let header = match device.header()? {
            Found::Header(header) => header,
            Found::Blank => return Err(AreaError::NotFormatted("sector 0 is blank".into())),
            Found::Other(why) => return Err(AreaError::NotFormatted(why)),
        };
        if header.cluster_id != cluster_id(cluster_name) || header.cluster_name != cluster_name {
            return Err(AreaError::ForeignCluster {
                name: header.cluster_name,
                id: header.cluster_id,
            });
        }
        let needed = header.layout.bytes_needed();
        if bytes < needed {
            return Err(AreaError::TooSmall { bytes, needed });
        }
        Ok(Area { device, header, path: path.to_owned() })
    }

    /// Checks that the area was formatted for `nodes` nodes and `groups` groups (the
    /// configuration in force); a changed cluster needs `tandem disk init` again.
    pub fn check_layout(&self, nodes: usize, groups: usize) -> Result<(), AreaError> {
        let expected = Layout::new(nodes, groups)?;
        if self.header.layout != expected {
            return Err(AreaError::WrongLayout { found: self.header.layout, expected });
        }
        Ok(())
    }

    pub fn layout(&self) -> Layout {
        self.header.layout
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn mode(&self) -> Mode {
        self.device.mode
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `node`'s heartbeat slot: sequence number `seq` and an encoded heartbeat
    /// of at most [`crate::HEARTBEAT_BYTES_MAX`] bytes, in one write.
    pub fn write_heartbeat(&self, node: NodeId, seq: u64, payload: &[u8]) -> Result<(), AreaError> {
        self.request(Request::WriteHeartbeat { node, seq, payload }).map(|_| ())
    }

    /// Reads `node`'s heartbeat slot: `None` if the node never wrote one since the
    /// area was formatted, else its sequence number and payload.
    pub fn read_heartbeat(&self, node: NodeId) -> Result<Option<(u64, Vec<u8>)>, AreaError> {
        match self.request(Request::ReadHeartbeat(node))? {
            Reply::Heartbeat(slot) => Ok(slot),
            _ => unreachable!("a heartbeat read replies with a slot"),
        }
    }

    /// Reads a lease record.
    pub fn read_record(&self, block: Block) -> Result<Record, AreaError> {
        match self.request(Request::ReadRecord(block))? {
            Reply::Record(record) => Ok(record),
            _ => unreachable!("a record read replies with a record"),
        }
    }

    /// Writes a lease record (durable when this returns).
    pub fn write_record(&self, block: Block, record: &Record) -> Result<(), AreaError> {
        self.request(Request::WriteRecord(block, record)).map(|_| ())
    }

    /// Carries out `request` at once, in the calling thread.
    pub fn request(&self, request: Request<'_>) -> Result<Reply, AreaError> {
        let mut io = self.prepare(request)?;
        self.perform_now(&mut io)?;
        self.finish(&io)
    }

    /// Prepares `request` as one whole-sector I/O: the sectors of a write sealed, the
    /// buffer of a read allocated. Nothing touches the disk.
    pub fn prepare(&self, request: Request<'_>) -> Result<SectorIo, AreaError> {
        let layout = &self.header.layout;
        let cluster = self.header.cluster_id;
        Ok(match request {
            Request::ReadRecord(block) => SectorIo {
                write: false,
                sector: layout.block(block)?,
                buf: Buf::sector(),
                len: SECTOR_BYTES,
                target: Target::Record(block),
            },
            Request::WriteRecord(block, record) => {
                let index = layout.block(block)?;
                let mut buf = Buf::sector();
                format::encode_record(buf.bytes_mut(), layout, index, cluster, block, record)?;
                SectorIo {
                    write: true,
                    sector: index,
                    buf,
                    len: SECTOR_BYTES,
                    target: Target::Record(block),
                }
            }
            Request::ReadHeartbeat(node) => SectorIo {
                write: false,
                sector: layout.heartbeat_slot(node)?,
                buf: Buf::slot(),
                len: SLOT_BYTES,
                target: Target::Heartbeat,
            },
            Request::WriteHeartbeat { node, seq, payload } => {
                let first = layout.heartbeat_slot(node)?;
                let mut buf = Buf::slot();
                let used = format::encode_heartbeat(buf.bytes_mut(), first, cluster, seq, payload)?;
                SectorIo {
                    write: true,
                    sector: first,
                    buf,
                    len: used * SECTOR_BYTES,
                    target: Target::Heartbeat,
                }
            }
        })
    }

    /// Performs a prepared I/O at once, in the calling thread (`pread`/`pwrite`).
    pub fn perform_now(&self, io: &mut SectorIo) -> io::Result<()> {
        let len = io.len;
        if io.write {
            self.device.write(io.sector, &io.buf.bytes()[..len])
        } else {
            self.device.read(io.sector, &mut io.buf.bytes_mut()[..len])
        }
    }

    /// What a performed I/O gives: a read's record or slot, decoded and checked.
    pub fn finish(&self, io: &SectorIo) -> Result<Reply, AreaError> {
        let (layout, cluster) = (&self.header.layout, self.header.cluster_id);
        Ok(match (io.write, io.target) {
            (true, _) => Reply::Written,
            (false, Target::Record(block)) => Reply::Record(format::decode_record(
                io.buf.bytes(),
                layout,
                io.sector,
                cluster,
                block,
            )?),
            (false, Target::Heartbeat) => {
                Reply::Heartbeat(format::decode_heartbeat(io.buf.bytes(), io.sector, cluster)?)
            }
        })
    }

    /// The open device, for I/O submitted elsewhere ([`crate::ring`]).
    pub(crate) fn file(&self) -> &File {
        &self.device.file
    }
}

/// What to do on the area: one record or one heartbeat slot, read or written.
#[derive(Clone, Copy, Debug)]
pub enum Request<'a> {
    ReadRecord(Block),
    WriteRecord(Block, &'a Record),
    ReadHeartbeat(NodeId),
    WriteHeartbeat { node: NodeId, seq: u64, payload: &'a [u8] },
}

/// What a request gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Written,
    Record(Record),
    /// A heartbeat slot as read ([`Area::read_heartbeat`]).
    Heartbeat(Option<(u64, Vec<u8>)>),
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Record(Block),
    Heartbeat,
}

/// A 4 KiB-aligned heap buffer of one sector or one heartbeat slot. The bytes stay
/// where they are when the value moves (I/O submitted to the kernel points at them).
enum Buf {
    Sector(Box<Aligned<SECTOR_BYTES>>),
    Slot(Box<Aligned<SLOT_BYTES>>),
}

impl Buf {
    fn sector() -> Buf {
        Buf::Sector(Aligned::boxed())
    }

    fn slot() -> Buf {
        Buf::Slot(Aligned::boxed())
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Buf::Sector(b) => &b.0,
            Buf::Slot(b) => &b.0,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Buf::Sector(b) => &mut b.0,
            Buf::Slot(b) => &mut b.0,
        }
    }
}

/// One prepared whole-sector I/O on the area ([`Area::prepare`]): where, how many
/// bytes, and its aligned buffer.
pub struct SectorIo {
    write: bool,
    sector: u64,
    buf: Buf,
    len: usize,
    target: Target,
}

impl SectorIo {
    pub fn is_write(&self) -> bool {
        self.write
    }

    /// The byte offset on the device and the length.
    pub(crate) fn extent(&self) -> (u64, usize) {
        (self.sector * SECTOR_BYTES as u64, self.len)
    }

    /// The buffer's address, for the kernel (valid while `self` lives).
    pub(crate) fn buf_ptr(&mut self) -> *mut u8 {
        self.buf.bytes_mut().as_mut_ptr()
    }
}

impl std::fmt::Debug for SectorIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.write { "write" } else { "read" };
        write!(f, "{what} of {} bytes at sector {} ({:?})", self.len, self.sector, self.target)
    }
}

/// What sector 0 of `path` holds, and the area's size in bytes and open mode.
pub fn inspect(path: &Path) -> Result<(Found, u64, Mode), AreaError> {
    let (file, mode, bytes) = open_device(path)?;
    let device = Device { file, mode };
    Ok((device.header()?, bytes, mode))
}

/// What [`format_area`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatReport {
    pub header: Header,
    pub mode: Mode,
    /// The area's size.
    pub bytes: u64,
    /// The bytes formatted (the layout's sectors).
    pub bytes_written: u64,
    /// What sector 0 held before.
    pub previous: Found,
}

/// Formats the area at `path` for cluster `cluster_name` with `nodes` nodes and
/// `groups` groups: zeroes every sector of the layout (blank slots and records), then
/// writes the header last, so an interrupted format leaves no valid header. Refuses an
/// area too small, and, unless `force`, one whose sector 0 holds another cluster's
/// header or anything that is not a tandem header (another program's data).
/// Re-formatting this cluster's own area is allowed: it erases its heartbeats and
/// leases, so it must be done with the cluster stopped.
pub fn format_area(
    path: &Path,
    cluster_name: &str,
    nodes: usize,
    groups: usize,
    force: bool,
) -> Result<FormatReport, AreaError> {
    let layout = Layout::new(nodes, groups)?;
    let header =
        Header { cluster_id: cluster_id(cluster_name), cluster_name: cluster_name.into(), layout };
    let mut first = Aligned::<SECTOR_BYTES>::boxed();
    format::encode_header(&header, &mut first.0)?;
    let (file, mode, bytes) = open_device(path)?;
    let device = Device { file, mode };
    let needed = layout.bytes_needed();
    if bytes < needed {
        return Err(AreaError::TooSmall { bytes, needed });
    }
    let previous = device.header()?;
    match (&previous, force) {
        (_, true) | (Found::Blank, _) => {}
        (Found::Header(old), false) => {
            if old.cluster_id != header.cluster_id || old.cluster_name != cluster_name {
                return Err(AreaError::ForeignCluster {
                    name: old.cluster_name.clone(),
                    id: old.cluster_id,
                });
            }
        }
        (Found::Other(why), false) => {
            return Err(AreaError::NotFormatted(format!(
                "sector 0 holds other data: {why}; use --force to overwrite it"
            )))
        }
    }
    // Invalidate the old header first, then zero, then write the new header.
    let zeros = Aligned::<FORMAT_CHUNK_BYTES>::boxed();
    device.write(0, &zeros.0[..SECTOR_BYTES])?;
    let sectors = layout.sectors();
    let chunk = (FORMAT_CHUNK_BYTES / SECTOR_BYTES) as u64;
    let mut at = 1;
    while at < sectors {
        let n = chunk.min(sectors - at);
        device.write(at, &zeros.0[..n as usize * SECTOR_BYTES])?;
        at += n;
    }
    device.write(0, &first.0)?;
    Ok(FormatReport { header, mode, bytes, bytes_written: sectors * SECTOR_BYTES as u64, previous })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbiter::disk::{GroupRecord, HostRecord};
    use engine::GroupId;

    #[test]
    fn format_open_and_records_round_trip() {
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(crate::AREA_BYTES_MIN).unwrap();
        let report = format_area(file.path(), "unit", 2, 2, false).unwrap();
        assert_eq!(report.previous, Found::Blank);
        let area = Area::open(file.path(), "unit").unwrap();
        assert_eq!(area.layout(), Layout::new(2, 2).unwrap());
        let host = Record::Host(HostRecord {
            incarnation: 3,
            counter: 4,
            groups: vec![GroupId(1)],
            parked: false,
        });
        let group = Record::Group(GroupRecord { owner: Some(NodeId(1)), stamp: (3, 4) });
        assert_eq!(area.read_record(Block::Host(NodeId(1))).unwrap(), Record::Blank);
        area.write_record(Block::Host(NodeId(1)), &host).unwrap();
        area.write_record(Block::Group(GroupId(0)), &group).unwrap();
        assert_eq!(area.read_record(Block::Host(NodeId(1))).unwrap(), host);
        assert_eq!(area.read_record(Block::Group(GroupId(0))).unwrap(), group);
        assert_eq!(area.read_heartbeat(NodeId(0)).unwrap(), None);
        area.write_heartbeat(NodeId(0), 1, b"hello").unwrap();
        assert_eq!(area.read_heartbeat(NodeId(0)).unwrap(), Some((1, b"hello".to_vec())));
        assert!(matches!(Area::open(file.path(), "other"), Err(AreaError::ForeignCluster { .. })));
        area.check_layout(2, 2).unwrap();
        assert!(matches!(area.check_layout(2, 3), Err(AreaError::WrongLayout { .. })));
    }
}
