//! `tandem keygen [--dir D] [--config F] [--force]`: writes a fresh cluster key (32 bytes
//! from the operating system's random source, as `wire::Key::to_text`, 64 hex digits) to
//! `D/cluster.key` with mode 0600; refuses to overwrite an existing key without
//! `--force` (with `--config`, an existing key is kept and the certificates are made).
//! Then the HTTPS API's files: the cluster CA `D/ca.crt` and `D/ca.key` (0600; an
//! existing pair is kept and signs), and with `--config` one certificate per node,
//! `D/NODE.crt` and `D/NODE.key` (0600), whose names are the node's name and its `api`
//! address's IP, signed by the CA. Existing files are kept unless `--force`.
//!
//! It never prints the key; every file is written through a temporary file in the same
//! directory, renamed into place.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use rand_core::OsRng;

/// Files written in DIR: `cluster.key` (copy to every node's `cluster.key_file`),
/// `ca.crt` (what API clients verify against: `curl --cacert ca.crt`), `ca.key` (keep it
/// here, private: it signs the node certificates), and with --config, for each node N,
/// `N.crt` and `N.key` (copy to node N's `[api] tls_cert` and `tls_key`, by default
/// /etc/tandem/tls.crt and /etc/tandem/tls.key).
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The directory of the files.
    #[arg(long, default_value = "/etc/tandem")]
    dir: PathBuf,
    /// The cluster's configuration: also write each node's API certificate and key.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Replace existing files (every node must then get the new ones).
    #[arg(long)]
    force: bool,
}

pub const KEY_FILE: &str = "cluster.key";
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let nodes = match &args.config {
        None => None,
        Some(path) => {
            let (config, _) = config::load(path).map_err(|invalid| {
                anyhow::anyhow!("the configuration has errors\n{}", invalid.render(false))
            })?;
            let nodes: Vec<(String, std::net::IpAddr)> = config
                .cluster
                .nodes
                .iter()
                .zip(&config.nodes)
                .map(|(spec, node)| (spec.name.clone(), node.api.ip()))
                .collect();
            Some(nodes)
        }
    };
    match write_key(&args.dir, args.force)? {
        Some(path) => println!(
            "wrote a new cluster key to {} (mode 0600); copy it to every node",
            path.display()
        ),
        None if nodes.is_some() => {
            println!("kept the cluster key {}", args.dir.join(KEY_FILE).display())
        }
        None => {
            eprintln!(
                "error: {} exists; keeping it (--force replaces it)",
                args.dir.join(KEY_FILE).display()
            );
            return Ok(ExitCode::from(1));
        }
    }
    write_certificates(&args.dir, nodes.as_deref().unwrap_or_default(), args.force)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `contents` to `path` with `mode` (through a temporary file); `false` if it
/// exists and `force` is false.
fn write_file(path: &Path, contents: &[u8], mode: u32, force: bool) -> anyhow::Result<bool> {
    if !force && path.exists() {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// The cluster CA in `dir` (kept if both its files exist, unless `force`), then each
/// node's certificate and key signed by it.
fn write_certificates(
    dir: &Path,
    nodes: &[(String, std::net::IpAddr)],
    force: bool,
) -> anyhow::Result<()> {
    let (ca_cert, ca_key) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
    let key_pem = if !force && ca_cert.exists() && ca_key.exists() {
        println!("kept the API's cluster CA {}", ca_cert.display());
        std::fs::read_to_string(&ca_key).with_context(|| format!("reading {}", ca_key.display()))?
    } else {
        let ca = daemon::api::tls::new_ca()?;
        write_file(&ca_key, ca.key.as_bytes(), 0o600, true)?;
        write_file(&ca_cert, ca.cert.as_bytes(), 0o644, true)?;
        println!(
            "wrote the API's cluster CA {} (clients verify against it) and its key {} (mode \
             0600; keep it here)",
            ca_cert.display(),
            ca_key.display()
        );
        ca.key
    };
    for (name, ip) in nodes {
        let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        if !force && cert.exists() && key.exists() {
            println!("kept {} and {}", cert.display(), key.display());
            continue;
        }
        let pem = daemon::api::tls::node_certificate(&key_pem, name, *ip)?;
        write_file(&key, pem.key.as_bytes(), 0o600, true)?;
        write_file(&cert, pem.cert.as_bytes(), 0o644, true)?;
        println!(
            "wrote {} and {} (for {name} at {ip}): copy them to {name}'s [api] tls_cert and \
             tls_key",
            cert.display(),
            key.display()
        );
    }
    Ok(())
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
