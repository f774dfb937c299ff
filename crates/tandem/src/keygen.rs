//! `tandem keygen [--dir D] [--force]`: writes a fresh cluster key (32 bytes from the
//! operating system's random source, as `wire::Key::to_text`, 64 hex digits) to
//! `D/cluster.key` with mode 0600; refuses to overwrite an existing key without
//! `--force`. The TLS certificate of the API comes with the API (not yet).
//!
//! It never prints the key; it writes no file other than the key (through a temporary
//! file in the same directory, renamed into place).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use rand_core::OsRng;

#[derive(clap::Args)]
pub struct Args {
    /// The directory of the key.
    #[arg(long, default_value = "/etc/tandem")]
    dir: PathBuf,
    /// Replace an existing key (every node must then get the new one).
    #[arg(long)]
    force: bool,
}

pub const KEY_FILE: &str = "cluster.key";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match write_key(&args.dir, args.force)? {
        Some(path) => {
            println!(
                "wrote a new cluster key to {} (mode 0600); copy it to every node",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "error: {} exists; keeping it (--force replaces it)",
                args.dir.join(KEY_FILE).display()
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// Writes a new key to `dir/cluster.key`; `None` if one exists and `force` is false.
fn write_key(dir: &Path, force: bool) -> anyhow::Result<Option<PathBuf>> {
    let path = dir.join(KEY_FILE);
    if !force && path.exists() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = wire::Key::generate(&mut OsRng);
    let temp = dir.join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .with_context(|| format!("creating {}", temp.display()))?;
        file.write_all(key.to_text().as_bytes())?;
        file.sync_all()?;
        if force {
            std::fs::rename(&temp, &path)
        } else {
            // Refuse a key that appeared meanwhile: link fails if the name exists.
            std::fs::hard_link(&temp, &path).and_then(|()| std::fs::remove_file(&temp))
        }
        .with_context(|| format!("writing {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_a_private_key_and_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("etc");
        let path = write_key(&keys, false).unwrap().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // What `tandem node` requires of a key (E5101).
        daemon::access::check_key_file(&path).unwrap();
        let first = wire::Key::from_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        assert!(write_key(&keys, false).unwrap().is_none());
        assert_eq!(wire::Key::from_file(&path).unwrap(), first);
        write_key(&keys, true).unwrap().unwrap();
        assert_ne!(wire::Key::from_file(&path).unwrap(), first);
        assert_eq!(std::fs::read_dir(&keys).unwrap().count(), 1, "no temporary file left");
    }
}
