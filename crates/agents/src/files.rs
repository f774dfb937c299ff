//! Small state files written so that a crash or a failed write never leaves one half
//! written: [`write_atomic`] writes a temporary file beside the target, syncs it,
//! renames it over the target and syncs the directory. A reader sees the old content
//! or the new, never a mix or an empty file; after a crash the target holds one of the
//! two. Used for the `process` agent's state file and the daemon's own state files.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The temporary file [`write_atomic`] uses for `path`: `<name>.tmp` beside it.
pub fn temporary_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically and durably (see the module documentation). On
/// an error the target is untouched and the temporary file removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temporary_of(path);
    let written = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // The temporary file may be ours half-written, or not a file at all.
        if fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_file()) {
            let _ = fs::remove_file(&tmp);
        }
        return Err(e);
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_failed_write_leaves_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        write_atomic(&path, b"old\n").unwrap();
        // A directory where the temporary file would go: the write fails (for root too).
        fs::create_dir(temporary_of(&path)).unwrap();
        assert!(write_atomic(&path, b"new\n").is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old\n");
        fs::remove_dir(temporary_of(&path)).unwrap();
        // A directory in the target's place: the rename fails, nothing is left behind.
        let blocked = dir.path().join("blocked");
        fs::create_dir(&blocked).unwrap();
        assert!(write_atomic(&blocked, b"new\n").is_err());
        assert!(blocked.is_dir() && !temporary_of(&blocked).exists());
    }

    #[test]
    fn a_reader_never_sees_a_half_written_file() {
        // Large enough that one write is several pages: a plain rewrite in place
        // (truncate, write) shows readers empty and partial files.
        const LEN: usize = 256 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        write_atomic(&path, &[b'a'; LEN]).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                for i in 0..100 {
                    let byte = if i % 2 == 0 { b'b' } else { b'a' };
                    write_atomic(&path, &[byte; LEN]).unwrap();
                }
                done.store(true, Ordering::Relaxed);
            })
        };
        let mut reads = 0;
        while !done.load(Ordering::Relaxed) {
            let bytes = fs::read(&path).unwrap();
            assert_eq!(bytes.len(), LEN, "a partial file was seen");
            assert!(bytes.iter().all(|&b| b == bytes[0]), "a mix of two writes was seen");
            reads += 1;
        }
        writer.join().unwrap();
        assert!(reads > 0);
    }
}
