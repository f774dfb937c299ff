//! The `filesystem` kind: a block device mounted on a mountpoint. It owns mounting,
//! unmounting (killing the processes that keep the filesystem busy), the optional fsck
//! before a mount, and the block device's read-only flag (`lock_standby`). It must not
//! decide anything: no retry of a failed start, no fencing (a stop that cannot finish
//! in time answers [`OpResult::Timeout`] or [`OpResult::Failed`] and the engine fences).
//!
//! **Start.** If `lock_standby`, the device's read-only flag is cleared (`BLKROSET` 0);
//! if `fsck`, `fsck -t FSTYPE -p DEVICE` runs and an exit code of 4 or more answers
//! [`OpResult::Failed`]; the mountpoint directory is created when missing; then
//! `mount -t FSTYPE [-o OPTIONS] DEVICE MOUNTPOINT`. We run mount(8) rather than
//! calling mount(2): it is a child process that [`exec::run`] can kill at the deadline
//! (a mount(2) call on a sick device cannot be interrupted), it understands every
//! `-o` option the administrator knows (user-space options, helpers like
//! `mount.nfs`), and its messages land in the resource's log.
//!
//! **Monitor / probe.** The mountpoint appears in `/proc/self/mountinfo` with the
//! device's major:minor (from `stat` of the device's `st_rdev`), not merely with the
//! same path: another filesystem mounted there is [`OpResult::NotRunning`]. (For
//! filesystems that report an anonymous device number, such as btrfs, this check
//! answers NotRunning; only block-device filesystems like ext4 and xfs are supported.)
//!
//! **Stop.** `sync -f MOUNTPOINT` (syncfs), then `umount MOUNTPOINT`; if that fails
//! (busy), every process whose cwd, root, open files or mapped files lie under the
//! mountpoint (scanning `/proc/<pid>/{cwd,root,fd/*,maps}`, never by name, never this
//! process) gets SIGTERM, then SIGKILL after a short grace, and the unmount is retried
//! until the deadline. Then, if `lock_standby`, the device is set read-only
//! (`BLKROSET` 1). [`set_read_only`] is the same lock for the daemon to call on every
//! node not running the group.
//!
//! The read-only flag is the one place in tandem with `unsafe` code: two `ioctl`s on a
//! descriptor we own, in the small module `blk` below (the workspace denies
//! `unsafe_code`; that module alone allows it).

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use config::FilesystemParams;
use engine::OpResult;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::exec::{self, Exit};
use crate::{Agent, Context};

/// How long processes holding the filesystem get between SIGTERM and SIGKILL (less
/// when the operation's deadline is nearer).
pub const HOLDER_GRACE: Duration = Duration::from_secs(2);
/// The most unmount attempts in one stop (each after killing the holders).
const UNMOUNT_ATTEMPTS_MAX: u32 = 5;
/// The most bytes of `/proc/self/mountinfo` read (thousands of mounts fit).
const MOUNTINFO_MAX_BYTES: u64 = 4 << 20;
/// The most bytes of one process's `maps` read.
const MAPS_MAX_BYTES: u64 = 4 << 20;
/// The most open descriptors looked at per process.
const FDS_PER_PROCESS_MAX: usize = 65_536;

/// `fsck` exit codes from this value up mean errors left uncorrected.
const FSCK_UNCORRECTED: i32 = 4;

#[allow(unsafe_code)]
mod blk {
    //! The block device read-only flag ioctls (linux/fs.h: `BLKROSET` = `_IO(0x12, 93)`,
    //! `BLKROGET` = `_IO(0x12, 94)`; both take a pointer to an int).
    use nix::libc::c_int;

    nix::ioctl_write_ptr_bad!(blkroset, 0x125d, c_int);
    nix::ioctl_read_bad!(blkroget, 0x125e, c_int);

    pub(super) fn set(fd: c_int, read_only: bool) -> nix::Result<()> {
        let value: c_int = c_int::from(read_only);
        // SAFETY: `fd` is an open descriptor owned by the caller for the whole call and
        // the kernel reads one int from a pointer to a live local.
        unsafe { blkroset(fd, &value) }.map(|_| ())
    }

    pub(super) fn get(fd: c_int) -> nix::Result<bool> {
        let mut value: c_int = 0;
        // SAFETY: as above; the kernel writes one int into a live local.
        unsafe { blkroget(fd, &mut value) }?;
        Ok(value != 0)
    }
}

/// Sets (`true`) or clears the read-only flag of the block device `device`: the
/// `lock_standby` lock, for the daemon to call on every node not running the group.
pub fn set_read_only(device: &Path, read_only: bool) -> io::Result<()> {
    let file = File::open(device)?;
    blk::set(file.as_raw_fd(), read_only).map_err(io::Error::from)
}

/// Whether the block device `device` is read-only (`BLKROGET`).
pub fn is_read_only(device: &Path) -> io::Result<bool> {
    let file = File::open(device)?;
    blk::get(file.as_raw_fd()).map_err(io::Error::from)
}

pub struct FilesystemAgent {
    device: PathBuf,
    mountpoint: PathBuf,
    fstype: String,
    options: Option<String>,
    lock_standby: bool,
    fsck: bool,
    log: PathBuf,
    detail: Mutex<Option<String>>,
}

impl FilesystemAgent {
    pub fn new(params: &FilesystemParams, context: &Context) -> FilesystemAgent {
        FilesystemAgent {
            device: params.device.value.clone(),
            mountpoint: params.mountpoint.clone(),
            fstype: params.fstype.clone(),
            options: params.options.clone(),
            lock_standby: params.lock_standby,
            fsck: params.fsck,
            log: context.log_file(),
            detail: Mutex::new(None),
        }
    }

    fn set_detail(&self, detail: Option<String>) {
        *self.detail.lock().unwrap_or_else(|p| p.into_inner()) = detail;
    }

    /// `Ok(())` when the device is mounted on the mountpoint, else why not.
    fn check(&self) -> Result<(), String> {
        let rdev = fs::metadata(&self.device)
            .map_err(|e| format!("device {}: {e}", self.device.display()))?
            .rdev();
        let wanted = (major(rdev), minor(rdev));
        let mountpoint = fs::canonicalize(&self.mountpoint).unwrap_or(self.mountpoint.clone());
        let mounts = read_mountinfo().map_err(|e| format!("cannot read mountinfo: {e}"))?;
        let mut other = None;
        for mount in mounts.iter().filter(|m| m.mountpoint == mountpoint) {
            if mount.device == wanted {
                return Ok(());
            }
            other = Some(mount.device);
        }
        Err(match other {
            Some((ma, mi)) => format!(
                "{} is mounted from device {ma}:{mi}, not from {}",
                mountpoint.display(),
                self.device.display()
            ),
            None => format!("{} is not mounted", mountpoint.display()),
        })
    }

    fn is_mounted(&self) -> bool {
        self.check().is_ok()
    }

    /// Runs `program args` with the time left before `deadline`.
    fn run(&self, program: &str, args: &[&std::ffi::OsStr], deadline: Instant) -> Exit {
        let mut command = Command::new(program);
        command.args(args);
        exec::run_until(command, &self.log, deadline)
    }

    fn failure(&self, what: &str, exit: Exit) -> OpResult {
        exec::failure(what, exit, &self.log)
    }

    /// Kills every process holding something under the mountpoint: SIGTERM, then
    /// SIGKILL after [`HOLDER_GRACE`] (or until `deadline`) to those still there.
    fn kill_holders(&self, deadline: Instant) {
        let mountpoint = fs::canonicalize(&self.mountpoint).unwrap_or(self.mountpoint.clone());
        let holders = holders_of(&mountpoint);
        if holders.is_empty() {
            return;
        }
        for pid in &holders {
            let _ = kill(*pid, Signal::SIGTERM);
        }
        let grace_end = (Instant::now() + HOLDER_GRACE).min(deadline);
        while Instant::now() < grace_end {
            if holders_of(&mountpoint).is_empty() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        for pid in holders_of(&mountpoint) {
            let _ = kill(pid, Signal::SIGKILL);
        }
        // A killed process releases its files as it exits; give it a moment.
        let settle_end = (Instant::now() + Duration::from_millis(500)).min(deadline);
        while Instant::now() < settle_end && !holders_of(&mountpoint).is_empty() {
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn lock(&self) -> OpResult {
        match set_read_only(&self.device, true) {
            Ok(()) => OpResult::Ok,
            Err(e) => {
                OpResult::Failed(format!("cannot set {} read-only: {e}", self.device.display()))
            }
        }
    }
}

impl Agent for FilesystemAgent {
    fn start(&self, timeout: Duration) -> OpResult {
        let deadline = Instant::now() + timeout;
        if self.is_mounted() {
            return OpResult::Ok;
        }
        if self.lock_standby {
            if let Err(e) = set_read_only(&self.device, false) {
                return OpResult::Failed(format!(
                    "cannot clear the read-only flag of {}: {e}",
                    self.device.display()
                ));
            }
        }
        if self.fsck {
            let args = ["-t", self.fstype.as_str(), "-p"].map(std::ffi::OsStr::new);
            let mut all: Vec<&std::ffi::OsStr> = args.to_vec();
            all.push(self.device.as_os_str());
            match self.run("fsck", &all, deadline) {
                Exit::Code(code) if code < FSCK_UNCORRECTED => {}
                other => return self.failure("fsck", other),
            }
        }
        if let Err(e) = fs::create_dir_all(&self.mountpoint) {
            return OpResult::Failed(format!(
                "cannot create mountpoint {}: {e}",
                self.mountpoint.display()
            ));
        }
        let mut args: Vec<&std::ffi::OsStr> = vec!["-t".as_ref(), self.fstype.as_ref()];
        if let Some(options) = &self.options {
            args.push("-o".as_ref());
            args.push(options.as_ref());
        }
        args.push(self.device.as_os_str());
        args.push(self.mountpoint.as_os_str());
        match self.run("mount", &args, deadline) {
            Exit::Code(0) => {}
            other => return self.failure("mount", other),
        }
        match self.check() {
            Ok(()) => OpResult::Ok,
            Err(why) => OpResult::Failed(format!("mount succeeded but {why}")),
        }
    }

    fn stop(&self, timeout: Duration) -> OpResult {
        let deadline = Instant::now() + timeout;
        if self.is_mounted() {
            // A failed sync is not fatal: the unmount flushes too and reports errors.
            if let Exit::TimedOut =
                self.run("sync", &["-f".as_ref(), self.mountpoint.as_os_str()], deadline)
            {
                return OpResult::Timeout;
            }
            let mut attempts = 0;
            loop {
                attempts += 1;
                let exit = self.run("umount", &[self.mountpoint.as_os_str()], deadline);
                if !self.is_mounted() {
                    break;
                }
                if exit == Exit::TimedOut || Instant::now() >= deadline {
                    return OpResult::Timeout;
                }
                if attempts >= UNMOUNT_ATTEMPTS_MAX {
                    return self.failure("umount", exit);
                }
                self.kill_holders(deadline);
            }
        }
        if self.lock_standby {
            return self.lock();
        }
        OpResult::Ok
    }

    fn monitor(&self, _timeout: Duration) -> OpResult {
        let result = self.check();
        let answer = if result.is_ok() { OpResult::Ok } else { OpResult::NotRunning };
        self.set_detail(result.err());
        answer
    }

    fn detail(&self) -> Option<String> {
        self.detail.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// `dev_t` major and minor as glibc's `gnu_dev_major`/`gnu_dev_minor` compute them.
fn major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
}

fn minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

/// One line of `/proc/self/mountinfo`: what matters here.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    device: (u64, u64),
    mountpoint: PathBuf,
}

fn read_mountinfo() -> io::Result<Vec<Mount>> {
    use std::io::Read;
    let mut text = String::new();
    File::open("/proc/self/mountinfo")?.take(MOUNTINFO_MAX_BYTES).read_to_string(&mut text)?;
    Ok(parse_mountinfo(&text))
}

/// Parses mountinfo lines (`id parent major:minor root mountpoint ...`); lines that do
/// not parse are skipped.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let (_id, _parent) = (fields.next()?, fields.next()?);
            let (ma, mi) = fields.next()?.split_once(':')?;
            let _root = fields.next()?;
            let mountpoint = unescape(fields.next()?);
            Some(Mount { device: (ma.parse().ok()?, mi.parse().ok()?), mountpoint })
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for a space) in a mountinfo path.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(value) = u8::from_str_radix(digits, 8) {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Every process (but this one) whose cwd, root, an open descriptor or a mapped file
/// lies under `mountpoint`.
fn holders_of(mountpoint: &Path) -> Vec<Pid> {
    let own = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own && *pid > 1)
        .filter(|pid| holds(&Path::new("/proc").join(pid.to_string()), mountpoint))
        .filter_map(|pid| i32::try_from(pid).ok().map(Pid::from_raw))
        .collect()
}

fn holds(proc_dir: &Path, mountpoint: &Path) -> bool {
    let under = |target: &Path| target.starts_with(mountpoint);
    for link in ["cwd", "root"] {
        if fs::read_link(proc_dir.join(link)).is_ok_and(|t| under(&t)) {
            return true;
        }
    }
    if let Ok(fds) = fs::read_dir(proc_dir.join("fd")) {
        for fd in fds.take(FDS_PER_PROCESS_MAX).flatten() {
            if fs::read_link(fd.path()).is_ok_and(|t| under(&t)) {
                return true;
            }
        }
    }
    if let Ok(file) = File::open(proc_dir.join("maps")) {
        use std::io::Read;
        let mut text = String::new();
        if file.take(MAPS_MAX_BYTES).read_to_string(&mut text).is_ok() {
            // The path is the sixth field, after five space-separated ones.
            return text.lines().any(|line| {
                line.splitn(6, ' ')
                    .nth(5)
                    .map(str::trim_start)
                    .is_some_and(|path| path.starts_with('/') && under(Path::new(path)))
            });
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_with_escapes() {
        let text = "36 35 98:0 /mnt1 /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n\
                    garbage\n\
                    40 35 7:3 / /srv/data rw - ext4 /dev/loop3 rw\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![
                Mount { device: (98, 0), mountpoint: PathBuf::from("/mnt/a b") },
                Mount { device: (7, 3), mountpoint: PathBuf::from("/srv/data") },
            ]
        );
    }

    #[test]
    fn device_numbers_split_like_glibc() {
        // glibc's makedev.
        fn makedev(ma: u64, mi: u64) -> u64 {
            ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12)
        }
        assert_eq!((major(0x703), minor(0x703)), (7, 3));
        let dev = makedev(259, 1_048_576);
        assert_eq!((major(dev), minor(dev)), (259, 1_048_576));
    }
}
