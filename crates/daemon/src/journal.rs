//! The journal: every engine event, and the daemon's own, as one JSON object per line in
//! `<state dir>/journal.jsonl`. It is what `tandem events` reads (locally, until the
//! HTTP API exists). When the file passes [`ROTATE_BYTES`] it becomes `journal.1.jsonl`
//! (replacing an older one) and a new file starts; entry ids keep growing across
//! rotations and restarts.
//!
//! **Durable before acknowledged, and off the loop.** The daemon's loop never writes
//! or fsyncs: it hands each loop turn's entries (and `admin.json`, and replies that
//! must wait for them) to [`Writer`] in one non-blocking send. The writer thread writes
//! every batch that is waiting with one `write`, `fdatasync`s once (group commit: at
//! most one fsync per loop turn, fewer under load), then publishes the durable
//! watermark ([`Writer::durable`]) and only then runs the waiting replies: a control
//! command is answered after the entries it caused are on disk. A stalled disk stalls
//! the writer thread only; its queue is bounded ([`QUEUE_MAX`] entries), and entries
//! beyond it are counted and reported by a [`catalogue::JOURNAL_ENTRIES_DROPPED`] entry
//! once the writer catches up.
//!
//! **Always reopens.** A crash (or a full disk) mid-write leaves a torn last line,
//! possibly ending inside a multi-byte character. [`Journal::open`] cuts the file back
//! to its last newline, so that the next entry starts on a line of its own, and the
//! opener journals it ([`catalogue::JOURNAL_TORN_TAIL`]); a torn tail never stops the
//! daemon from starting. The fence guard appends to the same file: writers and the
//! opener's repair hold an exclusive `flock` only across their `write` (or the cut), so
//! neither sees the other's line half-written.
//!
//! Also here: the small state files the daemon keeps beside it — the incarnation counter
//! and the administrative state (`admin.json`) that `Engine::restore_admin` takes back
//! after a restart. Those are written atomically (temporary file, fsync, rename, fsync
//! of the directory); `admin.json` by the writer thread.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use engine::catalogue::{self, CodeInfo};
use engine::{AdminState, ClearRequest, Event, Lww, NodeId, ResourceId, Stamp, SwitchoverRequest};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

pub(crate) use agents::files::write_atomic;

use crate::clock::wall_now;
use crate::stall;

/// Size at which the journal file is rotated.
pub const ROTATE_BYTES: u64 = 32 << 20;

/// How long dropping a [`Writer`] waits for its last entries to be synced.
pub const DROP_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Most entries waiting for the writer thread; more are dropped (and counted) while
/// the disk does not keep up, rather than growing the daemon without bound.
pub const QUEUE_MAX: usize = 100_000;

pub const JOURNAL_FILE: &str = "journal.jsonl";
pub const JOURNAL_OLD_FILE: &str = "journal.1.jsonl";
const ADMIN_FILE: &str = "admin.json";
const INCARNATION_FILE: &str = "incarnation";

/// One journal line: the `contract` crate's event, the form `tandem events --json`
/// prints and every client reads.
pub use contract::Event as Entry;

/// An entry of the node itself (no group), stamped now (id assigned on append).
pub fn own(code: &CodeInfo, node: &str, message: String) -> Entry {
    Entry {
        id: 0,
        time: wall_now(),
        code: code.code.to_string(),
        severity: code.severity.as_str().to_string(),
        node: node.to_string(),
        group: None,
        resource: None,
        location: Some(format!("node {node}")),
        message,
    }
}

/// What [`Journal::open`] cut off the end of the file: a torn last line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Torn {
    /// Where the cut was made (the file's new length).
    pub offset: u64,
    pub bytes: u64,
}

impl Torn {
    /// The entry that records the repair.
    pub fn entry(&self, node: &str) -> Entry {
        own(
            &catalogue::JOURNAL_TORN_TAIL,
            node,
            format!(
                "journal: a torn last line ({} bytes at offset {} of {JOURNAL_FILE}) was cut \
                 off when the journal was opened; an earlier run stopped while writing it",
                self.bytes, self.offset
            ),
        )
    }
}

/// The journal file, written synchronously: by the [`Writer`] thread, and by the fence
/// guard (which appends one entry when it fires).
pub struct Journal {
    dir: PathBuf,
    file: File,
    bytes: u64,
    next_id: u64,
    torn: Option<Torn>,
}

/// An exclusive `flock` on `file`'s open file description, until dropped.
fn lock(file: &File) -> io::Result<Flock<File>> {
    Flock::lock(file.try_clone()?, FlockArg::LockExclusive).map_err(|(_, e)| e.into())
}

impl Journal {
    /// Opens (creating) the journal in `dir`, continuing its ids. A torn last line is
    /// cut off (see [`Journal::torn`]).
    pub fn open(dir: &Path) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path)?;
        let torn = {
            let _lock = lock(&file)?;
            cut_torn_tail(&mut file)?
        };
        if torn.is_some() {
            file.sync_data()?;
        }
        let mut last = 0;
        for name in [JOURNAL_OLD_FILE, JOURNAL_FILE] {
            last = last.max(last_id(&dir.join(name))?);
        }
        let bytes = file.metadata()?.len();
        // Saturating: a damaged line may claim any id, up to u64::MAX.
        let next_id = last.saturating_add(1);
        Ok(Journal { dir: dir.to_path_buf(), file, bytes, next_id, torn })
    }

    /// [`Journal::open`], journaling a torn tail it cut off as `node`'s entry.
    pub fn open_as(dir: &Path, node: &str) -> io::Result<Journal> {
        let mut journal = Journal::open(dir)?;
        if let Some(torn) = journal.torn {
            tracing::warn!(
                code = catalogue::JOURNAL_TORN_TAIL.code,
                "{}",
                torn.entry(node).message
            );
            journal.append(torn.entry(node))?;
        }
        Ok(journal)
    }

    /// What opening cut off, if anything.
    pub fn torn(&self) -> Option<Torn> {
        self.torn
    }

    /// Appends one entry (its `id` is assigned here), durably, and returns it.
    pub fn append(&mut self, mut entry: Entry) -> io::Result<Entry> {
        entry.id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        self.write(&[line_of(&entry)?])?;
        self.file.sync_data()?;
        Ok(entry)
    }

    /// Writes `lines` (each ending in a newline) with one `write` per file, rotating
    /// first when they would pass [`ROTATE_BYTES`]; not yet synced. On an error the
    /// file is cut back to where the write began, so that no partial line stays.
    fn write(&mut self, lines: &[String]) -> io::Result<()> {
        stall::point("journal");
        let mut chunk = String::new();
        for line in lines {
            if self.bytes + (chunk.len() + line.len()) as u64 > ROTATE_BYTES {
                self.write_chunk(&chunk)?;
                chunk.clear();
                self.rotate()?;
            }
            chunk.push_str(line);
        }
        self.write_chunk(&chunk)
    }

    fn write_chunk(&mut self, chunk: &str) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let _lock = lock(&self.file)?;
        let start = self.file.metadata()?.len();
        if let Err(e) = self.file.write_all(chunk.as_bytes()) {
            let _ = self.file.set_len(start);
            return Err(e);
        }
        self.bytes = start + chunk.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(self.dir.join(JOURNAL_FILE), self.dir.join(JOURNAL_OLD_FILE))?;
        self.file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(self.dir.join(JOURNAL_FILE))?;
        File::open(&self.dir)?.sync_all()?;
        self.bytes = 0;
        Ok(())
    }
}

fn line_of(entry: &Entry) -> io::Result<String> {
    let mut line = serde_json::to_string(entry).map_err(io::Error::other)?;
    line.push('\n');
    Ok(line)
}

/// Cuts `file` back to just after its last newline (to nothing if it has none); what
/// was cut, if anything.
fn cut_torn_tail(file: &mut File) -> io::Result<Option<Torn>> {
    const STEP: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut buf = Vec::new();
    // The last newline, searching back a block at a time.
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(STEP);
        buf.resize((end - start) as usize, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        if let Some(at) = buf.iter().rposition(|&b| b == b'\n') {
            break start + at as u64 + 1;
        }
        end = start;
    };
    if keep == len {
        return Ok(None);
    }
    file.set_len(keep)?;
    Ok(Some(Torn { offset: keep, bytes: len - keep }))
}

/// The highest id of the readable entries of one journal file (0 if none): the highest,
/// not the last, so that new ids stay above every one in a damaged or edited file.
fn last_id(path: &Path) -> io::Result<u64> {
    Ok(read_entries(path)?.iter().map(|e| e.id).max().unwrap_or(0))
}

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// What one loop turn hands to the writer thread.
#[derive(Default)]
struct Batch {
    lines: Vec<String>,
    /// The id of the last line.
    last_id: u64,
    admin: Option<Vec<u8>>,
    /// Run once the lines and `admin` before them are durable (or failed).
    after: Vec<Reply>,
}

/// What the writer thread publishes.
#[derive(Default)]
struct Shared {
    /// Every entry up to this id is on disk.
    durable: AtomicU64,
    /// Entries handed over and not yet written.
    queued: AtomicUsize,
    /// `fdatasync`s of the journal so far (one per batch group).
    syncs: AtomicU64,
    /// The last write error, until a later write succeeds.
    error: Mutex<Option<String>>,
}

/// The loop's side of the journal: never blocks (see the module documentation).
pub struct Writer {
    node: String,
    tx: mpsc::Sender<Batch>,
    shared: Arc<Shared>,
    next_id: u64,
    pending: Batch,
    dropped: u64,
}

impl Writer {
    /// Opens the journal in `dir` (cutting off and journaling a torn tail, as `node`)
    /// and starts the writer thread. Blocking: call it before the loop runs.
    pub fn start(dir: &Path, node: &str) -> io::Result<Writer> {
        let journal = Journal::open_as(dir, node)?;
        let next_id = journal.next_id;
        let shared = Arc::new(Shared { durable: AtomicU64::new(next_id - 1), ..Shared::default() });
        let (tx, rx) = mpsc::channel();
        let thread_shared = shared.clone();
        let dir = dir.to_path_buf();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || write_batches(journal, &dir, &rx, &thread_shared))?;
        Ok(Writer {
            node: node.to_string(),
            tx,
            shared,
            next_id,
            pending: Batch::default(),
            dropped: 0,
        })
    }

    /// Queues `entry` for this turn's batch (its id is assigned here) and returns its
    /// id; 0 when the queue is full and it was dropped (and counted).
    pub fn append(&mut self, mut entry: Entry) -> u64 {
        let waiting = self.shared.queued.load(Ordering::Relaxed) + self.pending.lines.len();
        if waiting >= QUEUE_MAX {
            self.dropped += 1;
            return 0;
        }
        if self.dropped > 0 {
            let dropped = std::mem::take(&mut self.dropped);
            let message = format!(
                "journal: {dropped} entries were dropped: more than {QUEUE_MAX} waited for a \
                 disk that did not keep up"
            );
            tracing::warn!(code = catalogue::JOURNAL_ENTRIES_DROPPED.code, "{message}");
            self.append(own(&catalogue::JOURNAL_ENTRIES_DROPPED, &self.node, message));
        }
        entry.id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        match line_of(&entry) {
            Ok(line) => {
                self.pending.lines.push(line);
                self.pending.last_id = entry.id;
            }
            // Never seen: an entry is strings and numbers.
            Err(e) => tracing::error!("cannot encode a journal entry: {e}"),
        }
        entry.id
    }

    /// Saves the administrative state with this turn's batch (after its entries).
    pub fn save_admin(&mut self, admin: &AdminState) {
        match admin_bytes(admin) {
            Ok(bytes) => self.pending.admin = Some(bytes),
            Err(e) => tracing::error!("cannot encode the administrative state: {e}"),
        }
    }

    /// Runs `reply` on the writer thread once everything queued so far (this turn's
    /// batch included) is durable, with the write error if it is not.
    pub fn after_durable(&mut self, reply: impl FnOnce(Result<(), String>) + Send + 'static) {
        self.pending.after.push(Box::new(reply));
    }

    /// Hands this turn's batch to the writer thread: one non-blocking send.
    pub fn commit(&mut self) {
        let batch = std::mem::take(&mut self.pending);
        if batch.lines.is_empty() && batch.admin.is_none() && batch.after.is_empty() {
            return;
        }
        let lines = batch.lines.len();
        self.shared.queued.fetch_add(lines, Ordering::Relaxed);
        if let Err(mpsc::SendError(batch)) = self.tx.send(batch) {
            // The thread is gone (it never exits while we live): say so to whoever waits.
            self.shared.queued.fetch_sub(lines, Ordering::Relaxed);
            for reply in batch.after {
                reply(Err("the journal writer is gone".into()));
            }
        }
    }

    /// Commits and waits up to `within` for everything to be durable: on the way out
    /// of the daemon only (it blocks). Whether it was.
    pub fn flush(&mut self, within: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        self.after_durable(move |result| {
            let _ = tx.send(result.is_ok());
        });
        self.commit();
        rx.recv_timeout(within).unwrap_or(false)
    }

    /// Every entry up to this id is on disk.
    pub fn durable(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// Entries handed to the writer and not yet written.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    /// Journal `fdatasync`s so far.
    pub fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }

    /// The last write error, if the last write failed.
    pub fn error(&self) -> Option<String> {
        self.shared.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The journal's part of the status document.
    pub fn status(&self) -> contract::JournalState {
        contract::JournalState {
            durable_id: self.durable(),
            queued: self.queued() as u64,
            dropped: self.dropped,
            error: self.error(),
        }
    }
}

impl Drop for Writer {
    /// The daemon is leaving (by any return path): what is queued reaches the disk,
    /// waiting at most [`DROP_FLUSH_WAIT`].
    fn drop(&mut self) {
        if !self.flush(DROP_FLUSH_WAIT) {
            tracing::error!("the journal's last entries may be lost: its disk did not sync them");
        }
    }
}

/// The writer thread: every waiting batch is written at once, synced once, then the
/// watermark moves and the replies run. Ends when the [`Writer`] is dropped.
fn write_batches(mut journal: Journal, dir: &Path, rx: &mpsc::Receiver<Batch>, shared: &Shared) {
    while let Ok(first) = rx.recv() {
        let mut lines = first.lines;
        let mut last_id = first.last_id;
        let mut admin = first.admin;
        let mut after = first.after;
        while let Ok(batch) = rx.try_recv() {
            lines.extend(batch.lines);
            if batch.last_id != 0 {
                last_id = batch.last_id;
            }
            admin = batch.admin.or(admin);
            after.extend(batch.after);
        }
        let wrote = !lines.is_empty() || admin.is_some();
        let mut result = Ok(());
        if !lines.is_empty() {
            result = journal.write(&lines).and_then(|()| journal.file.sync_data());
            shared.syncs.fetch_add(1, Ordering::Relaxed);
            match &result {
                Ok(()) => shared.durable.store(last_id, Ordering::Release),
                Err(e) => tracing::error!("cannot write the journal: {e}"),
            }
            shared.queued.fetch_sub(lines.len(), Ordering::Relaxed);
        }
        if let Some(bytes) = admin {
            let saved = write_admin(dir, &bytes);
            if let Err(e) = &saved {
                tracing::error!("cannot save the administrative state: {e}");
            }
            result = result.and(saved);
        }
        let result = result.map_err(|e| e.to_string());
        if wrote {
            *shared.error.lock().unwrap_or_else(|p| p.into_inner()) = result.clone().err();
        }
        for reply in after {
            reply(result.clone());
        }
    }
}

/// An engine event as a journal entry (id assigned by [`Journal::append`]).
pub fn entry_of(spec: &engine::ClusterSpec, event: &Event, time: String) -> Entry {
    let group = event.group.map(|g| spec.group(g).name.clone());
    let resource = match (event.group, event.resource) {
        (Some(g), Some(r)) => Some(spec.group(g).resource(r).name.clone()),
        _ => None,
    };
    Entry {
        id: 0,
        time,
        code: event.code.code.to_string(),
        severity: event.code.severity.as_str().to_string(),
        node: spec.node(event.node).name.clone(),
        group,
        resource,
        location: event.location.clone(),
        message: event.message.clone(),
    }
}

/// Every entry of one journal file, oldest first; a missing file is empty, a line that
/// is not an entry (a torn last line not yet cut off, bytes that are not UTF-8) is
/// skipped.
pub fn read_entries(path: &Path) -> io::Result<Vec<Entry>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    entries_of(BufReader::new(file))
}

/// Every entry of a journal's bytes, oldest first: what [`read_entries`] does with a
/// file, for any reader. A line that is not an entry is skipped.
pub fn entries_of(reader: impl BufRead) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for line in reader.split(b'\n') {
        let line = line?;
        if let Ok(entry) = serde_json::from_slice::<Entry>(&line) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Every entry of the journal in `dir` (rotated file first).
pub fn read_journal(dir: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = read_entries(&dir.join(JOURNAL_OLD_FILE))?;
    entries.extend(read_entries(&dir.join(JOURNAL_FILE))?);
    Ok(entries)
}

/// The incarnation of this start ([`nodecore::incarnation::next_incarnation`]: above
/// the one kept in the state dir, the wall clock in microseconds and the one in this
/// node's host record on the shared disk, `on_disk`), kept in the state dir.
pub fn next_incarnation(dir: &Path, wall_micros: u64, on_disk: u64) -> io::Result<u64> {
    let path = dir.join(INCARNATION_FILE);
    let previous = match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().unwrap_or(0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let next = nodecore::incarnation::next_incarnation(previous, wall_micros, on_disk);
    write_atomic(&path, next.to_string().as_bytes())?;
    Ok(next)
}

#[derive(Serialize, Deserialize, Default, PartialEq, Eq, Debug)]
struct StampFile {
    lamport: u64,
    writer: u16,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct LwwFile<T> {
    value: T,
    stamp: StampFile,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug, Clone, Copy)]
struct SwitchoverFile {
    from: u16,
    to: Option<u16>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug, Clone, Copy)]
struct ClearFile {
    sequence: u64,
    resource: Option<u16>,
}

/// `admin.json`: the engine's [`AdminState`], register by register.
#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct AdminFile {
    maintenance: LwwFile<bool>,
    drained: Vec<LwwFile<bool>>,
    switchover: Vec<LwwFile<Option<SwitchoverFile>>>,
    clear: Vec<LwwFile<ClearFile>>,
}

fn stamp_out(s: Stamp) -> StampFile {
    StampFile { lamport: s.lamport, writer: s.writer }
}

fn stamp_in(s: &StampFile) -> Stamp {
    Stamp { lamport: s.lamport, writer: s.writer }
}

fn lww_out<T: Copy, U>(r: &Lww<T>, f: impl Fn(T) -> U) -> LwwFile<U> {
    LwwFile { value: f(r.value), stamp: stamp_out(r.stamp) }
}

fn lww_in<T: Copy, U>(r: &LwwFile<T>, f: impl Fn(T) -> U) -> Lww<U> {
    Lww { value: f(r.value), stamp: stamp_in(&r.stamp) }
}

/// `admin.json`'s form of the engine's [`AdminState`].
fn admin_file(admin: &AdminState) -> AdminFile {
    AdminFile {
        maintenance: lww_out(&admin.maintenance, |v| v),
        drained: admin.drained.iter().map(|r| lww_out(r, |v| v)).collect(),
        switchover: admin
            .switchover
            .iter()
            .map(|r| {
                lww_out(r, |v| v.map(|s| SwitchoverFile { from: s.from.0, to: s.to.map(|n| n.0) }))
            })
            .collect(),
        clear: admin
            .clear
            .iter()
            .map(|r| {
                lww_out(r, |c| ClearFile {
                    sequence: c.sequence,
                    resource: c.resource.map(|r| r.0),
                })
            })
            .collect(),
    }
}

/// Writes `admin.json` (its encoded bytes) atomically and durably: blocking, on the
/// writer thread.
fn write_admin(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    stall::point("save_admin");
    write_atomic(&dir.join(ADMIN_FILE), bytes)
}

/// Saves the administrative state now (blocking; the daemon's loop uses
/// [`Writer::save_admin`]).
pub fn save_admin(dir: &Path, admin: &AdminState) -> io::Result<()> {
    write_admin(dir, &admin_bytes(admin)?)
}

/// The bytes of `admin.json` for `admin` (what [`admin_of`] reads back).
pub fn admin_bytes(admin: &AdminState) -> io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(&admin_file(admin)).map_err(io::Error::other)
}

/// The administrative state saved by an earlier run, if any and readable. The engine
/// ignores one that does not fit the configuration (node or group counts changed).
pub fn load_admin(dir: &Path) -> Option<AdminState> {
    admin_of(&fs::read(dir.join(ADMIN_FILE)).ok()?)
}

/// The administrative state in the bytes of an `admin.json`, if they hold one.
pub fn admin_of(bytes: &[u8]) -> Option<AdminState> {
    let file: AdminFile = serde_json::from_slice(bytes).ok()?;
    Some(AdminState {
        maintenance: lww_in(&file.maintenance, |v| v),
        drained: file.drained.iter().map(|r| lww_in(r, |v| v)).collect(),
        switchover: file
            .switchover
            .iter()
            .map(|r| {
                lww_in(r, |v: Option<SwitchoverFile>| {
                    v.map(|s| SwitchoverRequest { from: NodeId(s.from), to: s.to.map(NodeId) })
                })
            })
            .collect(),
        clear: file
            .clear
            .iter()
            .map(|r| {
                lww_in(r, |c: ClearFile| ClearRequest {
                    sequence: c.sequence,
                    resource: c.resource.map(ResourceId),
                })
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(message: &str) -> Entry {
        Entry {
            id: 0,
            time: "2026-11-25T10:00:00.000Z".into(),
            code: "I4101".into(),
            severity: "info".into(),
            node: "alpha".into(),
            group: Some("db".into()),
            resource: None,
            location: None,
            message: message.into(),
        }
    }

    /// A crash mid-write, as it leaves the file: no newline at the end, the last
    /// character cut inside its UTF-8 encoding ("é" is C3 A9; only C3 made it).
    const TORN: &[u8] = b"{\"id\":3,\"time\":\"2026-11-25T10:00:00.000Z\",\"message\":\"caf\xc3";

    fn append_raw(dir: &Path, bytes: &[u8]) {
        let mut file = OpenOptions::new().append(true).open(dir.join(JOURNAL_FILE)).unwrap();
        file.write_all(bytes).unwrap();
    }

    #[test]
    fn ids_continue_across_reopen_and_a_torn_line_is_cut_off_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.append(entry("one")).unwrap().id, 1);
        assert_eq!(journal.append(entry("two")).unwrap().id, 2);
        assert_eq!(journal.torn(), None);
        drop(journal);
        let whole = fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
        append_raw(dir.path(), TORN);
        // Reopened as the daemon does: the torn bytes go, and are journaled.
        let mut journal = Journal::open_as(dir.path(), "alpha").unwrap();
        let torn = Torn { offset: whole.len() as u64, bytes: TORN.len() as u64 };
        assert_eq!(journal.torn(), Some(torn));
        assert_eq!(journal.append(entry("three")).unwrap().id, 4);
        let bytes = fs::read(dir.path().join(JOURNAL_FILE)).unwrap();
        assert!(bytes.starts_with(&whole), "the intact entries are kept as they were");
        assert!(!bytes.windows(TORN.len()).any(|w| w == TORN), "the torn bytes are gone");
        // Every line is one whole entry: nothing was merged into the next one.
        let lines: Vec<&[u8]> = bytes.strip_suffix(b"\n").unwrap().split(|&b| b == b'\n').collect();
        let all = read_journal(dir.path()).unwrap();
        assert_eq!(lines.len(), all.len());
        let seen: Vec<_> = all.iter().map(|e| (e.id, e.code.as_str())).collect();
        assert_eq!(seen, [(1, "I4101"), (2, "I4101"), (3, "W2140"), (4, "I4101")]);
        assert!(all[2].message.contains(&format!(
            "{} bytes at offset {}",
            TORN.len(),
            whole.len()
        )));
        assert_eq!(all[3].message, "three");
    }

    /// Found by fuzzing (fuzz target `journal_read`): ids out of order made the next id
    /// the last line's plus one, below earlier ones; an id of u64::MAX overflowed.
    #[test]
    fn ids_continue_above_the_highest_even_out_of_order_or_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let line = |id: u64| {
            format!(
                "{{\"id\":{id},\"time\":\"2026-12-07T21:51:51.649Z\",\"code\":\"I2113\",\
                 \"severity\":\"info\",\"node\":\"alpha\",\"message\":\"m\"}}\n"
            )
        };
        drop(Journal::open(dir.path()).unwrap());
        append_raw(dir.path(), format!("{}{}", line(9), line(5)).as_bytes());
        let mut journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.append(entry("next")).unwrap().id, 10);
        drop(journal);
        append_raw(dir.path(), line(u64::MAX).as_bytes());
        let mut journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.append(entry("at the limit")).unwrap().id, u64::MAX);
        drop(journal);
        let writer = Writer::start(dir.path(), "alpha").unwrap();
        assert_eq!(writer.durable(), u64::MAX - 1);
    }

    #[test]
    fn a_journal_that_is_only_a_torn_line_reopens_empty() {
        let dir = tempfile::tempdir().unwrap();
        drop(Journal::open(dir.path()).unwrap());
        append_raw(dir.path(), TORN);
        let mut journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.torn(), Some(Torn { offset: 0, bytes: TORN.len() as u64 }));
        assert_eq!(journal.append(entry("first")).unwrap().id, 1);
        assert_eq!(read_journal(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn lines_that_are_not_utf8_are_skipped_by_readers_and_do_not_stop_an_open() {
        // What the journal of an older version could hold: a torn line that the next
        // entry was appended to.
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        journal.append(entry("one")).unwrap();
        drop(journal);
        append_raw(dir.path(), TORN);
        append_raw(dir.path(), &[line_of(&entry("merged")).unwrap().as_bytes(), b""].concat());
        let mut journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.torn(), None);
        assert_eq!(journal.append(entry("two")).unwrap().id, 2);
        let messages: Vec<_> =
            read_journal(dir.path()).unwrap().into_iter().map(|e| e.message).collect();
        assert_eq!(messages, ["one", "two"]);
    }

    /// Holds the journal file's lock, as a writer in the middle of a `write` to a hung
    /// disk would: the writer thread waits behind it.
    fn hold_lock(dir: &Path) -> Flock<File> {
        let file = OpenOptions::new().append(true).open(dir.join(JOURNAL_FILE)).unwrap();
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| e).unwrap()
    }

    #[test]
    fn a_turn_is_one_sync_and_replies_wait_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Writer::start(dir.path(), "alpha").unwrap();
        let before = writer.syncs();
        let lock = hold_lock(dir.path());
        let mut last = 0;
        for i in 0..200 {
            last = writer.append(entry(&format!("entry {i}")));
        }
        writer.save_admin(&AdminState::default());
        let (tx, rx) = mpsc::channel();
        let shared = writer.shared.clone();
        writer.after_durable(move |result| {
            tx.send((result, shared.durable.load(Ordering::Acquire))).unwrap();
        });
        writer.commit();
        // The writer is stuck behind the lock: nothing is acknowledged yet, and the
        // loop's side did not block.
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        assert_eq!(writer.durable(), 0);
        assert_eq!(writer.queued(), 200);
        drop(lock);
        let (result, durable) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!((result, durable), (Ok(()), last));
        assert_eq!(writer.syncs() - before, 1, "one fdatasync for the whole turn");
        assert_eq!(read_journal(dir.path()).unwrap().len(), 200);
        assert_eq!(load_admin(dir.path()), Some(AdminState::default()));
    }

    #[test]
    fn a_full_queue_drops_and_counts_then_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Writer::start(dir.path(), "alpha").unwrap();
        let lock = hold_lock(dir.path());
        for i in 0..QUEUE_MAX {
            assert_ne!(writer.append(entry(&format!("{i}"))), 0);
        }
        writer.commit();
        assert_eq!(writer.append(entry("lost 1")), 0);
        assert_eq!(writer.append(entry("lost 2")), 0);
        assert_eq!(writer.status().dropped, 2);
        drop(lock);
        assert!(writer.flush(Duration::from_secs(30)));
        let id = writer.append(entry("after"));
        assert!(writer.flush(Duration::from_secs(30)));
        let all = read_journal(dir.path()).unwrap();
        let tail: Vec<_> = all[all.len() - 2..].iter().map(|e| e.code.as_str()).collect();
        assert_eq!(tail, ["W2141", "I4101"]);
        assert!(all[all.len() - 2].message.starts_with("journal: 2 entries were dropped"));
        assert_eq!((all.last().unwrap().id, writer.durable()), (id, id));
    }

    #[test]
    fn rotation_keeps_ids_growing() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        journal.bytes = ROTATE_BYTES - 10;
        journal.append(entry("old")).unwrap();
        journal.append(entry("new")).unwrap();
        assert!(dir.path().join(JOURNAL_OLD_FILE).exists());
        let ids: Vec<_> = read_journal(dir.path()).unwrap().iter().map(|e| e.id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(Journal::open(dir.path()).unwrap().next_id, 3);
    }

    #[test]
    fn incarnations_grow_even_if_the_wall_clock_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = next_incarnation(dir.path(), 1_000, 0).unwrap();
        let b = next_incarnation(dir.path(), 10, 0).unwrap();
        assert_eq!((a, b), (1_000, 1_001));
        // The state dir lost, the clock behind: the host record on the disk decides.
        std::fs::remove_file(dir.path().join(INCARNATION_FILE)).unwrap();
        assert_eq!(next_incarnation(dir.path(), 10, 1_001).unwrap(), 1_002);
    }

    #[test]
    fn admin_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let admin = AdminState {
            maintenance: Lww { value: true, stamp: Stamp { lamport: 4, writer: 2 } },
            drained: vec![
                Lww::default(),
                Lww { value: true, stamp: Stamp { lamport: 2, writer: 1 } },
            ],
            switchover: vec![Lww {
                value: Some(SwitchoverRequest { from: NodeId(0), to: Some(NodeId(1)) }),
                stamp: Stamp { lamport: 3, writer: 1 },
            }],
            clear: vec![Lww {
                value: ClearRequest { sequence: 7, resource: Some(ResourceId(2)) },
                stamp: Stamp { lamport: 5, writer: 2 },
            }],
        };
        assert_eq!(load_admin(dir.path()), None);
        save_admin(dir.path(), &admin).unwrap();
        assert_eq!(load_admin(dir.path()), Some(admin));
    }
}
