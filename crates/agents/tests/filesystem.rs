//! The `filesystem` agent against real ext4 on loop devices (root only; otherwise each
//! test fails under the test command and skips loudly under a plain `cargo test`). Each test owns a unique temp
//! directory holding a sparse image, a loop device over it and its mountpoints; a Drop
//! guard (which runs on panic too) kills the processes the test started, unmounts what
//! is still mounted and detaches the loop device, so tests run in parallel without
//! colliding and leave nothing mounted in the host's mount namespace. It must not
//! install anything or touch any device it did not attach.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use agents::filesystem::{is_read_only, set_read_only};
use agents::{build, Agent, Context};
use config::{FilesystemParams, ResourceParams, Spanned};
use engine::OpResult;
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_secs(20);
const IMAGE_BYTES: u64 = 64 << 20;

/// Why the tests cannot run here, if they cannot.
fn missing() -> Result<(), String> {
    testgate::root()?;
    for (tool, package) in
        [("losetup", "mount"), ("mkfs.ext4", "e2fsprogs"), ("mount", "mount"), ("umount", "mount")]
    {
        testgate::program(tool, package)?;
    }
    Ok(())
}

macro_rules! root_only {
    ($name:expr) => {
        if let Err(missing) = missing() {
            testgate::cannot_run($name, &missing);
            return;
        }
    };
}

/// A loop device over a fresh ext4 image in a unique temp directory.
struct Disk {
    device: PathBuf,
    mountpoint: PathBuf,
    children: Vec<Child>,
    dir: TempDir,
}

impl Disk {
    fn new() -> Disk {
        let dir = tempfile::Builder::new().prefix("tandem-fs-").tempdir().unwrap();
        let image = dir.path().join("disk.img");
        OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&image)
            .unwrap()
            .set_len(IMAGE_BYTES)
            .unwrap();
        let out = Command::new("losetup").args(["-f", "--show"]).arg(&image).output().unwrap();
        assert!(out.status.success(), "losetup: {}", String::from_utf8_lossy(&out.stderr));
        let device = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        // A reused loop device keeps the read-only flag (BLKROSET) that lock_standby
        // left on it in another test running at the same time (lab or agent): mkfs
        // then fails with "Operation not permitted" (seen in CI).
        let rw = Command::new("blockdev").arg("--setrw").arg(&device).status().unwrap();
        assert!(rw.success(), "blockdev --setrw {}", device.display());
        let disk = Disk { device, mountpoint: dir.path().join("mnt"), children: Vec::new(), dir };
        let status = Command::new("mkfs.ext4").arg("-q").arg(&disk.device).status().unwrap();
        assert!(status.success(), "mkfs.ext4 failed");
        disk
    }

    fn params(&self, lock_standby: bool, fsck: bool) -> ResourceParams {
        ResourceParams::Filesystem(FilesystemParams {
            device: Spanned { value: self.device.clone(), span: 0..0 },
            mountpoint: self.mountpoint.clone(),
            fstype: "ext4".into(),
            options: Some("noatime".into()),
            lock_standby,
            fsck,
        })
    }

    fn agent(&self, lock_standby: bool, fsck: bool) -> Box<dyn Agent> {
        let context = Context::new("fs", self.dir.path().join("log"));
        build(&self.params(lock_standby, fsck), &context).unwrap()
    }
}

/// Whether anything is mounted on `path` (by path: the cleanup's question).
fn mounted_on(path: &Path) -> bool {
    let Ok(canonical) = fs::canonicalize(path) else { return false };
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().any(|l| l.split(' ').nth(4) == canonical.to_str())
}

impl Drop for Disk {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while mounted_on(&self.mountpoint) && Instant::now() < deadline {
            let _ = Command::new("umount").arg(&self.mountpoint).status();
            if mounted_on(&self.mountpoint) {
                let _ = Command::new("umount").arg("-l").arg(&self.mountpoint).status();
            }
        }
        let _ = set_read_only(&self.device, false);
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

#[test]
fn probe_of_an_unmounted_filesystem_is_not_running() {
    root_only!("probe_of_an_unmounted_filesystem_is_not_running");
    let disk = Disk::new();
    let agent = disk.agent(false, false);
    assert_eq!(agent.probe(TIMEOUT), OpResult::NotRunning);
    assert!(agent.detail().unwrap().contains("not mounted"), "{:?}", agent.detail());
    // Another filesystem on the mountpoint is not ours.
    fs::create_dir_all(&disk.mountpoint).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&disk.mountpoint)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
    assert!(agent.detail().unwrap().contains("not from"), "{:?}", agent.detail());
}

#[test]
fn data_persists_across_stop_and_start() {
    root_only!("data_persists_across_stop_and_start");
    let disk = Disk::new();
    let agent = disk.agent(false, true);
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
    assert_eq!(agent.monitor(TIMEOUT), OpResult::Ok);
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok, "a second start is fine");
    let file = disk.mountpoint.join("data");
    fs::write(&file, b"kept").unwrap();
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
    assert!(!file.exists());
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok, "a second stop is fine");
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
    assert_eq!(fs::read(&file).unwrap(), b"kept");
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
}

#[test]
fn stop_kills_the_processes_that_hold_the_filesystem() {
    root_only!("stop_kills_the_processes_that_hold_the_filesystem");
    let mut disk = Disk::new();
    let agent = disk.agent(false, false);
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
    // One holds its cwd there, one an open file (its stdout) there.
    let cwd_holder =
        Command::new("sleep").arg("300").current_dir(&disk.mountpoint).spawn().unwrap();
    disk.children.push(cwd_holder);
    let out = fs::File::create(disk.mountpoint.join("out")).unwrap();
    let fd_holder = Command::new("sleep").arg("300").current_dir("/").stdout(out).spawn().unwrap();
    disk.children.push(fd_holder);
    let started = Instant::now();
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    assert!(started.elapsed() < TIMEOUT);
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
    for child in &mut disk.children {
        let status = child.wait().unwrap();
        assert!(!status.success(), "the holder was killed: {status:?}");
    }
}

#[test]
fn lock_standby_makes_the_stopped_device_read_only() {
    root_only!("lock_standby_makes_the_stopped_device_read_only");
    let disk = Disk::new();
    let agent = disk.agent(true, false);
    set_read_only(&disk.device, true).unwrap();
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok, "start clears the flag");
    assert!(!is_read_only(&disk.device).unwrap());
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    assert!(is_read_only(&disk.device).unwrap());
    let write = OpenOptions::new().write(true).open(&disk.device).and_then(|mut f| {
        f.write_all(&[0u8; 4096])?;
        f.sync_all()
    });
    assert!(write.is_err(), "a write to a read-only device fails");
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
    assert!(!is_read_only(&disk.device).unwrap());
    assert_eq!(agent.monitor(TIMEOUT), OpResult::Ok);
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
}

#[test]
fn a_wrong_fstype_fails_to_start() {
    root_only!("a_wrong_fstype_fails_to_start");
    let disk = Disk::new();
    let mut params = disk.params(false, false);
    if let ResourceParams::Filesystem(p) = &mut params {
        p.fstype = "xfs_no_such_type".into();
    }
    let agent = build(&params, &Context::new("fs", disk.dir.path().join("log"))).unwrap();
    assert!(matches!(agent.start(TIMEOUT), OpResult::Failed(_)));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
}
