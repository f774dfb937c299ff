//! Fuzz target `journal_read`: the journal reader (`daemon::journal`) on a torn or
//! garbage `journal.jsonl`, and the `admin.json` reader. Nothing may panic.
//!
//! Byte 0 picks the mode. Even: the rest is a journal's bytes for `entries_of` (what
//! `tandem events` and the restart read); every entry read re-encodes to a line that
//! reads back as the same entry. With bit 1 set as well, the bytes are also written to
//! a `journal.jsonl` in a fresh directory and the journal is opened there as the daemon
//! does at start: the torn tail is cut (the file then ends with a newline or is
//! empty), the same entries are read back, and an appended entry gets an id above
//! every one read (unless one is u64::MAX) and is the last entry read afterwards. Odd:
//! the rest is an `admin.json` for `admin_of`; a state read re-encodes to bytes read
//! back the same.

#![no_main]

use daemon::journal::{self, Journal, JOURNAL_FILE};
use libfuzzer_sys::fuzz_target;

fn journal(bytes: &[u8], on_disk: bool) {
    let entries = journal::entries_of(bytes).expect("reading memory does not fail");
    for entry in &entries {
        let line = serde_json::to_string(entry).expect("an entry encodes");
        assert!(!line.contains('\n'));
        let again = journal::entries_of(line.as_bytes()).expect("reads");
        assert_eq!(again.as_slice(), std::slice::from_ref(entry));
    }
    if !on_disk {
        return;
    }
    let dir = tempfile::Builder::new().prefix("fuzz-journal").tempdir_in(scratch()).expect("tmp");
    let path = dir.path().join(JOURNAL_FILE);
    std::fs::write(&path, bytes).expect("write the journal");
    let mut opened = Journal::open(dir.path()).expect("a journal always opens");
    let kept = std::fs::read(&path).expect("read back");
    assert!(kept.is_empty() || kept.ends_with(b"\n"), "the torn tail was not cut");
    assert!(bytes.starts_with(&kept));
    assert_eq!(opened.torn().is_some(), kept.len() != bytes.len());
    let read = journal::read_journal(dir.path()).expect("read the journal");
    assert_eq!(read, journal::entries_of(kept.as_slice()).expect("reads"));
    let entry = journal::own(&engine::catalogue::JOURNAL_TORN_TAIL, "fuzz", "m".into());
    let appended = opened.append(entry).expect("append");
    let after = journal::read_journal(dir.path()).expect("read the journal");
    assert_eq!(after.last(), Some(&appended));
    // Above every id read, unless one of them is already the largest there is.
    let highest = read.iter().map(|e| e.id).max().unwrap_or(0);
    assert!(appended.id > highest || highest == u64::MAX, "id {} not above {highest}", appended.id);
}

/// Where the on-disk runs make their directories: memory, not the disk.
fn scratch() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn admin(bytes: &[u8]) {
    if let Some(state) = journal::admin_of(bytes) {
        let again = journal::admin_bytes(&state).expect("a state read encodes");
        assert_eq!(journal::admin_of(&again), Some(state));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        journal(rest, mode & 2 != 0);
    } else {
        admin(rest);
    }
});
