//! The lab's naming scheme and the clean-up that relies on it. It owns how every global
//! object the lab creates (network namespaces, the shared disk's image file and the loop
//! devices over it, the lab's working directory) is named, how leftovers are found again, and killing the processes
//! inside a lab namespace. It must not touch anything outside that scheme: no other
//! namespace, loop device or file is ever listed for removal, and processes are only
//! ever signalled by PID after being found inside one of the lab's own namespaces.
//!
//! A lab's prefix is `tnd-<pid>-<counter>`: the PID of the process that built it (so a
//! sweep can tell a dead lab from one that another test process is still using) and a
//! per-process counter (so parallel tests in one process do not collide). Interface
//! names are not global: every interface lives in a lab's own namespace under a fixed
//! short name (`priv0`, `h1-pub`, ...), at most 15 bytes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::command::run_ok;
use crate::LabError;

/// Every name of this crate starts with this.
pub const PREFIX: &str = "tnd-";

/// How long killing everything in a namespace may take before it is reported.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// Labs built by this process so far.
static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh prefix for a new lab of this process.
pub fn new_lab_prefix() -> String {
    let counter = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}-{counter}", std::process::id())
}

/// Where labs keep their image files and working directories when it is a tmpfs.
const MEMORY_DIR: &str = "/dev/shm";

/// The directory holding the shared disks' image files and the labs' working
/// directories: `/dev/shm` when it is a tmpfs, the temporary directory otherwise.
///
/// Memory, not the machine's disk, because a loop device passes every synchronous write
/// (the heartbeat area is opened `O_DSYNC`) on as an `fsync` of its backing file: over a
/// file in `/tmp` on a busy disk (a CI machine linking the workspace) one such write took
/// up to 450 ms (measured 2026-12-06: median 0.7 ms, p99 400 ms while 3 GB were written
/// beside it; over `/dev/shm` median 0.16 ms, max 3.6 ms), fifteen disk I/O timeouts at
/// the default timing. Nodes then lost their leases in tests about something else. A
/// SAN LUN of its own, which the lab stands for, does not share the flushes of the
/// machine's system disk; tests of a slow or failing disk path make it so on purpose.
pub fn image_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let memory = Path::new(MEMORY_DIR);
        let is_tmpfs = nix::sys::statfs::statfs(memory)
            .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
        let writable = nix::unistd::access(memory, nix::unistd::AccessFlags::W_OK).is_ok();
        if is_tmpfs && writable {
            memory.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
    .clone()
}

/// The image file of the lab with `prefix`.
pub fn image_path(prefix: &str) -> PathBuf {
    image_dir().join(format!("{prefix}.img"))
}

/// The heartbeat area's image file of the lab with `prefix`.
pub fn area_image_path(prefix: &str) -> PathBuf {
    image_dir().join(format!("{prefix}-area.img"))
}

/// The working directory of the lab with `prefix` (per-host directories, the nftables
/// ruleset).
pub fn lab_dir(prefix: &str) -> PathBuf {
    image_dir().join(format!("{prefix}.d"))
}

/// The PID encoded in a name of the scheme (`tnd-<pid>-...`), if `name` is one.
fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// Whether a process with this PID exists.
fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `name` belongs to a lab whose process is gone.
fn abandoned(name: &str) -> bool {
    owner_pid(name).is_some_and(|pid| !alive(pid))
}

/// Every network namespace name in `ip netns list`.
pub fn namespaces() -> Result<Vec<String>, LabError> {
    let output = run_ok("ip", &["netns", "list"])?;
    Ok(output
        .stdout
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Every attached loop device as (device, backing file).
pub fn loop_devices() -> Result<Vec<(String, String)>, LabError> {
    let output = run_ok("losetup", &["--list", "--noheadings", "--output", "NAME,BACK-FILE"])?;
    Ok(output
        .stdout
        .lines()
        .filter_map(|line| {
            let (device, file) = line.trim().split_once(char::is_whitespace)?;
            Some((device.to_owned(), file.trim().to_owned()))
        })
        .collect())
}

/// The file name of a loop device's backing file, without a ` (deleted)` suffix.
fn backing_name(file: &str) -> String {
    let file = file.strip_suffix("(deleted)").unwrap_or(file).trim();
    Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The namespaces and loop devices still present whose names start with `prefix` (a
/// lab's prefix); empty once that lab is gone. Tests assert on it.
pub fn leftovers(prefix: &str) -> Result<Vec<String>, LabError> {
    let owned = |name: &str| name == prefix || name.starts_with(&format!("{prefix}-"));
    let owned_image =
        |name: &str| name == format!("{prefix}.img") || name == format!("{prefix}-area.img");
    let mut found: Vec<String> =
        namespaces()?.into_iter().filter(|n| owned(n)).map(|n| format!("netns {n}")).collect();
    for (device, file) in loop_devices()? {
        if owned_image(&backing_name(&file)) {
            found.push(format!("loop device {device} over {file}"));
        }
    }
    for image in [image_path(prefix), area_image_path(prefix)] {
        if image.exists() {
            found.push(format!("image file {}", image.display()));
        }
    }
    if lab_dir(prefix).exists() {
        found.push(format!("lab directory {}", lab_dir(prefix).display()));
    }
    Ok(found)
}

/// The live (not zombie) processes inside network namespace `namespace`.
pub fn namespace_pids(namespace: &str) -> Result<Vec<Pid>, LabError> {
    let output = run_ok("ip", &["netns", "pids", namespace])?;
    Ok(output
        .stdout
        .split_whitespace()
        .filter_map(|pid| pid.parse::<i32>().ok())
        .filter(|pid| !zombie(*pid))
        .map(Pid::from_raw)
        .collect())
}

/// Whether `pid` has exited but not been reaped yet (or is gone altogether).
fn zombie(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => {
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) == Some("Z")
        }
        Err(_) => true,
    }
}

/// Sends `signal` to every process inside `namespace` but those in `keep`; returns how
/// many there were.
fn signal_namespace(namespace: &str, signal: Signal, keep: &[i32]) -> Result<usize, LabError> {
    let pids: Vec<Pid> = namespace_pids(namespace)?
        .into_iter()
        .filter(|pid| !keep.contains(&pid.as_raw()))
        .collect();
    for pid in &pids {
        // A process may exit between listing and signalling: ESRCH is fine.
        let _ = kill(*pid, signal);
    }
    Ok(pids.len())
}

/// SIGKILLs every process inside `namespace` until none is left (or errors after
/// [`KILL_TIMEOUT`]), so processes forked meanwhile are caught too.
pub fn kill_namespace(namespace: &str) -> Result<(), LabError> {
    kill_namespace_except(namespace, &[])
}

/// [`kill_namespace`], sparing the processes in `keep` (a lab's own children that must
/// live on to reap the others).
pub fn kill_namespace_except(namespace: &str, keep: &[i32]) -> Result<(), LabError> {
    let deadline = Instant::now() + KILL_TIMEOUT;
    loop {
        if signal_namespace(namespace, Signal::SIGKILL, keep)? == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(LabError::new(format!(
                "processes in namespace {namespace} still alive after {} ms",
                KILL_TIMEOUT.as_millis()
            )));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Kills what runs inside `namespace`, then deletes it (its interfaces and bridges go
/// with it).
pub fn remove_namespace(namespace: &str) -> Result<(), LabError> {
    let killed = kill_namespace(namespace);
    run_ok("ip", &["netns", "delete", namespace])?;
    killed
}

/// What [`sweep`] found and saw gone (removed by it or by a concurrent sweep), one
/// readable line each.
pub type Swept = Vec<String>;

/// Removes the leftovers of labs whose process is gone (a test that was killed before
/// its `Drop` ran): namespaces, loop devices and image files of this crate's naming
/// scheme only. Labs of live processes, including other test processes running in
/// parallel, are left alone. Call it at the start of a test run.
pub fn sweep() -> Result<Swept, LabError> {
    // Other threads and test processes may sweep the same leftovers at the same time:
    // a removal that fails because the thing is already gone is not an error.
    let mut swept = Vec::new();
    for namespace in namespaces()?.into_iter().filter(|n| abandoned(n)) {
        if let Err(error) = remove_namespace(&namespace) {
            if namespaces()?.contains(&namespace) {
                return Err(error);
            }
        }
        swept.push(format!("netns {namespace}"));
    }
    for (device, file) in loop_devices()? {
        if abandoned(&backing_name(&file)) {
            if let Err(error) = run_ok("losetup", &["--detach", &device]) {
                if loop_devices()?.iter().any(|(d, f)| *d == device && *f == file) {
                    return Err(error);
                }
            }
            swept.push(format!("loop device {device}"));
        }
    }
    let entries = std::fs::read_dir(image_dir())
        .map_err(|e| LabError::io("listing the image directory", e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".img") && abandoned(&name) {
            match std::fs::remove_file(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LabError::io(&format!("removing {name}"), e));
                }
                _ => swept.push(format!("image file {name}")),
            }
        }
        if name.ends_with(".d") && abandoned(&name) {
            match std::fs::remove_dir_all(entry.path()) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LabError::io(&format!("removing {name}"), e));
                }
                _ => swept.push(format!("lab directory {name}")),
            }
        }
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_live_in_memory_where_the_machine_has_a_tmpfs() {
        let on_tmpfs = |path: &Path| {
            nix::sys::statfs::statfs(path)
                .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
        };
        let image = image_path("tnd-1-0");
        let dir = image.parent().expect("an image path has a directory");
        assert_eq!(dir, image_dir());
        assert_eq!(lab_dir("tnd-1-0").parent(), Some(dir));
        let memory = Path::new(MEMORY_DIR);
        let writable = nix::unistd::access(memory, nix::unistd::AccessFlags::W_OK).is_ok();
        if on_tmpfs(memory) && writable {
            assert!(on_tmpfs(dir), "{} is not a tmpfs", dir.display());
        } else {
            assert_eq!(dir, std::env::temp_dir());
        }
    }

    #[test]
    fn owner_pid_reads_only_names_of_the_scheme() {
        assert_eq!(owner_pid("tnd-1234-0-h0"), Some(1234));
        assert_eq!(owner_pid("tnd-1234-7.img"), Some(1234));
        assert_eq!(owner_pid("tnd-99-7"), Some(99));
        assert_eq!(owner_pid("other-1234-0"), None);
        assert_eq!(owner_pid("tnd-abc-0"), None);
    }

    #[test]
    fn a_live_process_owns_its_names() {
        let prefix = new_lab_prefix();
        assert!(!abandoned(&format!("{prefix}-sw")));
        assert!(!abandoned(&format!("{prefix}.img")));
        assert!(!abandoned("unrelated-name"));
    }

    #[test]
    fn prefixes_are_unique_within_a_process() {
        assert_ne!(new_lab_prefix(), new_lab_prefix());
    }

    #[test]
    fn backing_names_drop_the_deleted_suffix() {
        assert_eq!(backing_name("/tmp/tnd-5-1.img (deleted)"), "tnd-5-1.img");
        assert_eq!(backing_name("/tmp/tnd-5-1.img"), "tnd-5-1.img");
    }
}
