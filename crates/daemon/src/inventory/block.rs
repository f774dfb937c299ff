//! The inventory's block devices: every device of `/sys/block` and its partitions
//! (size, read-only flag, `major:minor`), their mount points from
//! `/proc/self/mountinfo`, and the file system, UUID and label that `blkid -p` (util-
//! linux) finds on each, one bounded call per device (a device that does not answer
//! costs one timeout; the process group is killed past it). Without `blkid`, or where it
//! cannot read a device, the devices are listed all the same and the part says so
//! (W5326); a mounted device keeps the type it is mounted with. It only reads.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use contract::BlockDevice;

/// The most devices listed (partitions included).
const DEVICES_MAX: usize = 4096;
/// The most of `blkid`'s output kept.
const OUTPUT_BYTES_MAX: u64 = 64 * 1024;
/// How often a running `blkid` is looked at.
const POLL: Duration = Duration::from_millis(5);
/// The most devices a problem's message names.
const NAMED_MAX: usize = 5;

/// Where the block devices are described.
#[derive(Clone, Debug)]
pub struct BlockSources {
    /// `/sys`.
    pub sys: PathBuf,
    /// `/proc/self/mountinfo`.
    pub mountinfo: PathBuf,
    /// `/dev`.
    pub dev: PathBuf,
    /// `blkid`, if this host has it.
    pub blkid: Option<PathBuf>,
}

/// The devices, by name, and what could not be identified; `Err` when /sys/block cannot
/// be listed.
pub fn discover(
    sources: &BlockSources,
    call_timeout: Duration,
    deadline: Instant,
) -> Result<(Vec<BlockDevice>, Option<String>), String> {
    let mut devices = list(&sources.sys.join("block"), &sources.dev)?;
    let mounts = std::fs::read_to_string(&sources.mountinfo)
        .map(|text| mounts(&text))
        .map_err(|e| format!("cannot read {}: {e}", sources.mountinfo.display()))?;
    for device in &mut devices {
        if let Some((points, fs_type)) = mounts.get(&device.dev) {
            device.mount_points = points.clone();
            device.fs_type = Some(fs_type.clone());
        }
    }
    let Some(blkid) = &sources.blkid else {
        return Ok((
            devices,
            Some(
                "blkid (util-linux) is not installed: the file systems, UUIDs and labels of \
                 unmounted devices are unknown"
                    .into(),
            ),
        ));
    };
    let mut failed = Vec::new();
    for device in &mut devices {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            failed.push(format!("{} (not probed: the inventory's deadline had come)", device.path));
            continue;
        }
        match probe(blkid, &device.path, call_timeout.min(left)) {
            Ok(found) => {
                let value = |key: &str| found.get(key).cloned().filter(|v| !v.is_empty());
                device.fs_type = value("TYPE").or(device.fs_type.take());
                device.uuid = value("UUID");
                device.label = value("LABEL");
            }
            Err(why) => failed.push(format!("{}: {why}", device.path)),
        }
    }
    let problem = (!failed.is_empty()).then(|| {
        let mut named = failed.iter().take(NAMED_MAX).cloned().collect::<Vec<_>>().join("; ");
        if failed.len() > NAMED_MAX {
            named.push_str(&format!("; and {} more", failed.len() - NAMED_MAX));
        }
        format!("blkid could not identify {} of {} devices: {named}", failed.len(), devices.len())
    });
    Ok((devices, problem))
}

/// The devices of `block` (a `/sys/block`) and their partitions, of size above 0.
fn list(block: &Path, dev: &Path) -> Result<Vec<BlockDevice>, String> {
    let entries =
        std::fs::read_dir(block).map_err(|e| format!("cannot list {}: {e}", block.display()))?;
    let mut devices = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let Some(disk) = device(&dir, &name, None, dev) else { continue };
        let mut partitions: Vec<BlockDevice> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|p| p.path().join("partition").exists())
            .filter_map(|p| {
                let part = p.file_name().to_string_lossy().into_owned();
                device(&p.path(), &part, Some(&name), dev)
            })
            .collect();
        if disk.size_bytes > 0 {
            devices.push(disk);
        }
        devices.append(&mut partitions);
        if devices.len() >= DEVICES_MAX {
            devices.truncate(DEVICES_MAX);
            break;
        }
    }
    devices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(devices)
}

/// The device described by the sysfs directory `dir`; `None` when it has no `dev` or
/// `size` (not a block device) or, for a partition, is empty.
fn device(dir: &Path, name: &str, parent: Option<&str>, dev: &Path) -> Option<BlockDevice> {
    let read =
        |file: &str| std::fs::read_to_string(dir.join(file)).ok().map(|s| s.trim().to_string());
    let sectors: u64 = read("size")?.parse().ok()?;
    let device = BlockDevice {
        name: name.to_string(),
        path: dev.join(name).display().to_string(),
        dev: read("dev")?,
        parent: parent.map(str::to_string),
        // sysfs counts 512-byte sectors whatever the device's own sector size.
        size_bytes: sectors.saturating_mul(512),
        read_only: read("ro").is_some_and(|ro| ro == "1"),
        fs_type: None,
        uuid: None,
        label: None,
        mount_points: Vec::new(),
    };
    (parent.is_none() || device.size_bytes > 0).then_some(device)
}

/// `major:minor` -> (mount points, file system type), from a `mountinfo` text.
pub(super) fn mounts(text: &str) -> HashMap<String, (Vec<String>, String)> {
    let mut found: HashMap<String, (Vec<String>, String)> = HashMap::new();
    for line in text.lines() {
        // ID PARENT MAJOR:MINOR ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
        let Some((head, tail)) = line.split_once(" - ") else { continue };
        let fields: Vec<&str> = head.split(' ').collect();
        let (Some(dev), Some(point), Some(fs_type)) =
            (fields.get(2), fields.get(4), tail.split(' ').next())
        else {
            continue;
        };
        let entry = found.entry(dev.to_string()).or_insert_with(|| (Vec::new(), fs_type.into()));
        let point = unescape(point);
        if !entry.0.contains(&point) {
            entry.0.push(point);
        }
    }
    found
}

/// A mountinfo path with its octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let text = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `blkid -p -o export DEVICE`'s keys (`TYPE`, `UUID`, `LABEL`, ...); empty when it
/// found nothing on the device (exit 2 without a message); `Err` with its message.
fn probe(blkid: &Path, device: &str, timeout: Duration) -> Result<HashMap<String, String>, String> {
    let (code, stdout, stderr) = run(blkid, &["-p", "-o", "export", device], timeout)?;
    match code {
        0 => Ok(export(&stdout)),
        2 if stderr.trim().is_empty() => Ok(HashMap::new()),
        _ => {
            let message = stderr.trim().trim_start_matches("blkid: ").trim_start_matches("error: ");
            let message = message.trim_start_matches(&format!("{device}: ")).to_string();
            Err(if message.is_empty() { format!("blkid exited with {code}") } else { message })
        }
    }
}

/// `KEY=value` lines.
pub(super) fn export(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// Runs `program` in a process group of its own until it exits or `timeout` passes (then
/// the group is killed): its exit code, standard output and error (each at most
/// [`OUTPUT_BYTES_MAX`], read by threads of their own so that it never blocks on a
/// full pipe).
fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<(i32, String, String), String> {
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(program)
        .args(args)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let gather = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        if let Some(pipe) = pipe {
            std::thread::spawn(move || {
                let mut text = String::new();
                let mut pipe = pipe;
                let _ = (&mut pipe).take(OUTPUT_BYTES_MAX).read_to_string(&mut text);
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
                let _ = tx.send(text);
            });
        }
        rx
    };
    let stdout = gather(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = gather(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            _ => break None,
        }
    };
    let Some(status) = status else {
        let group = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        return Err(format!("blkid did not finish within {timeout:?}"));
    };
    // The pipes close when the child exits (unless it left something behind that holds
    // them: then what came so far is not waited for).
    let wait = Duration::from_millis(200);
    let stdout = stdout.recv_timeout(wait).unwrap_or_default();
    let stderr = stderr.recv_timeout(wait).unwrap_or_default();
    Ok((status.code().unwrap_or(-1), stdout, stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_gives_mount_points_and_types_by_device() {
        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                    40 27 254:0 /srv /mnt/with\\040space rw shared:1 - ext4 /dev/vda rw\n\
                    41 27 0:22 / /sys rw - sysfs sysfs rw\n\
                    garbage line\n";
        let found = mounts(text);
        assert_eq!(found["254:0"], (vec!["/".into(), "/mnt/with space".into()], "ext4".into()));
        assert_eq!(found["0:22"].1, "sysfs");
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn blkid_export_lines_are_read() {
        let found = export("DEVNAME=/dev/vdb1\nUUID=1234-ABCD\nLABEL=data=x\nTYPE=vfat\n");
        assert_eq!(found["TYPE"], "vfat");
        assert_eq!(found["LABEL"], "data=x");
        assert_eq!(found["UUID"], "1234-ABCD");
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_with_its_group() {
        let began = Instant::now();
        let sleeper = Path::new("/bin/sh");
        let answer = run(sleeper, &["-c", "sleep 30 & sleep 30"], Duration::from_millis(300));
        assert!(answer.unwrap_err().contains("did not finish"));
        assert!(began.elapsed() < Duration::from_secs(5), "{:?}", began.elapsed());
        let (code, out, _) =
            run(sleeper, &["-c", "echo TYPE=ext4; exit 3"], Duration::from_secs(5)).unwrap();
        assert_eq!((code, out.as_str()), (3, "TYPE=ext4\n"));
    }
}
