//! The journal: every engine event, and the daemon's own, as one JSON object per line in
//! `<state dir>/journal.jsonl`, flushed as written so that it survives a daemon crash.
//! It is what `tandem events` reads (locally, until the HTTP API exists). When the file
//! passes [`ROTATE_BYTES`] it becomes `journal.1.jsonl` (replacing an older one) and a
//! new file starts; entry ids keep growing across rotations and restarts.
//!
//! Also here: the small state files the daemon keeps beside it — the incarnation counter
//! and the administrative state (`admin.json`) that `Engine::restore_admin` takes back
//! after a restart. Those are written atomically (temporary file, fsync, rename).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use engine::{AdminState, ClearRequest, Event, Lww, NodeId, ResourceId, Stamp, SwitchoverRequest};
use serde::{Deserialize, Serialize};

/// Size at which the journal file is rotated.
pub const ROTATE_BYTES: u64 = 32 << 20;

pub const JOURNAL_FILE: &str = "journal.jsonl";
pub const JOURNAL_OLD_FILE: &str = "journal.1.jsonl";
const ADMIN_FILE: &str = "admin.json";
const INCARNATION_FILE: &str = "incarnation";

/// One journal line. The field names are part of `tandem events --json`'s contract.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: u64,
    /// Wall-clock time, RFC 3339, UTC.
    pub time: String,
    pub code: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub message: String,
}

pub struct Journal {
    dir: PathBuf,
    file: File,
    bytes: u64,
    next_id: u64,
}

impl Journal {
    /// Opens (creating) the journal in `dir`, continuing its ids.
    pub fn open(dir: &Path) -> io::Result<Journal> {
        fs::create_dir_all(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let mut last = 0;
        for file in [dir.join(JOURNAL_OLD_FILE), path.clone()] {
            if let Some(entry) = read_entries(&file)?.last() {
                last = last.max(entry.id);
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let bytes = file.metadata()?.len();
        Ok(Journal { dir: dir.to_path_buf(), file, bytes, next_id: last + 1 })
    }

    /// Appends one entry (its `id` is assigned here) and returns it.
    pub fn append(&mut self, mut entry: Entry) -> io::Result<Entry> {
        entry.id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_string(&entry).map_err(io::Error::other)?;
        line.push('\n');
        if self.bytes + line.len() as u64 > ROTATE_BYTES {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.bytes += line.len() as u64;
        Ok(entry)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(self.dir.join(JOURNAL_FILE), self.dir.join(JOURNAL_OLD_FILE))?;
        self.file =
            OpenOptions::new().create(true).append(true).open(self.dir.join(JOURNAL_FILE))?;
        self.bytes = 0;
        Ok(())
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

/// Every entry of one journal file, oldest first; a missing file is empty, a torn last
/// line (the daemon died while writing it) is skipped.
pub fn read_entries(path: &Path) -> io::Result<Vec<Entry>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        if let Ok(entry) = serde_json::from_str::<Entry>(&line) {
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

/// Writes `bytes` to `path` atomically and durably.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The incarnation of this start: larger than every earlier one on this node (kept in
/// the state dir) and than the wall clock in microseconds (in case the state dir was
/// lost), so that peers take heartbeats of an older run as stale.
pub fn next_incarnation(dir: &Path, wall_micros: u64) -> io::Result<u64> {
    let path = dir.join(INCARNATION_FILE);
    let previous = match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().unwrap_or(0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let next = previous.saturating_add(1).max(wall_micros);
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

/// Saves the administrative state.
pub fn save_admin(dir: &Path, admin: &AdminState) -> io::Result<()> {
    let file = AdminFile {
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
    };
    let text = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
    write_atomic(&dir.join(ADMIN_FILE), &text)
}

/// The administrative state saved by an earlier run, if any and readable. The engine
/// ignores one that does not fit the configuration (node or group counts changed).
pub fn load_admin(dir: &Path) -> Option<AdminState> {
    let text = fs::read(dir.join(ADMIN_FILE)).ok()?;
    let file: AdminFile = serde_json::from_slice(&text).ok()?;
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

    #[test]
    fn ids_continue_across_reopen_and_torn_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path()).unwrap();
        assert_eq!(journal.append(entry("one")).unwrap().id, 1);
        assert_eq!(journal.append(entry("two")).unwrap().id, 2);
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(dir.path().join(JOURNAL_FILE)).unwrap();
        file.write_all(b"{\"id\": 3, \"tim").unwrap();
        drop(file);
        let mut journal = Journal::open(dir.path()).unwrap();
        // The torn line is not an entry; a new line starts after it.
        journal.file.write_all(b"\n").unwrap();
        assert_eq!(journal.append(entry("three")).unwrap().id, 3);
        let all = read_journal(dir.path()).unwrap();
        let messages: Vec<_> = all.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["one", "two", "three"]);
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
        let a = next_incarnation(dir.path(), 1_000).unwrap();
        let b = next_incarnation(dir.path(), 10).unwrap();
        assert_eq!((a, b), (1_000, 1_001));
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
