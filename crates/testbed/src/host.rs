//! The processes of one lab machine (a host or the client): its init, which holds the
//! machine's PID and mount namespaces, and every command run inside it. It owns starting
//! the init, entering the machine (`nsenter` into the init's network, mount and PID
//! namespaces), listing the machine's processes and killing them. It must not signal any
//! process except through a pidfd opened on a process found inside the machine, or one of
//! its own unreaped children.
//!
//! Entering a PID namespace needs a fork: `nsenter --pid` forks the command and waits for
//! it, so the command's PID is not `nsenter`'s. To learn it for sure, the command first
//! runs as `sh -c 'read; exec "$@"'` behind a pipe on its stdin: the lab finds the shell
//! (`nsenter`'s only child), opens a pidfd on it while it cannot have exited yet, and only
//! then lets it `exec` the command (same PID). Every later signal goes through that pidfd,
//! so it can never hit a process that reused the PID.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{pidfd_open, pidfd_send_signal, PidfdFlags, Signal as RawSignal};

use crate::command::{self, read_all, wait_timeout};
use crate::init::READY;
use crate::{names, LabError};

/// How long an init may take to set the machine up, and a command to appear inside it.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a killed init (and with it its machine) may take to be gone.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// The gate every command passes: it waits for one line on stdin (the lab's go-ahead,
/// sent once it holds a pidfd on this shell) and then becomes the command, with stdin
/// from /dev/null. Without the go-ahead (the pipe closed first) it runs nothing.
const GATE: &str = "read -r _ || exit 125; exec \"$@\" </dev/null";

/// A process the lab holds a pidfd on: signals reach exactly that process or nobody.
#[derive(Debug)]
struct Tracked {
    pid: i32,
    pidfd: OwnedFd,
}

impl Tracked {
    /// Opens a pidfd on `pid` and keeps it only if `still_ours` then confirms that `pid`
    /// is the process meant (checked after opening, so a reused PID cannot slip in).
    fn open(pid: i32, still_ours: impl Fn(i32) -> bool) -> Option<Tracked> {
        let raw = rustix::process::Pid::from_raw(pid)?;
        let pidfd = pidfd_open(raw, PidfdFlags::empty()).ok()?;
        still_ours(pid).then_some(Tracked { pid, pidfd })
    }

    /// Sends `signal`; a process that is gone already is not an error.
    fn signal(&self, signal: nix::sys::signal::Signal) -> Result<(), LabError> {
        let raw = RawSignal::from_named_raw(signal as i32)
            .ok_or_else(|| LabError::new(format!("signal {signal} is not supported")))?;
        match pidfd_send_signal(&self.pidfd, raw) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(error) => {
                Err(LabError::new(format!("sending {signal} to process {}: {error}", self.pid)))
            }
        }
    }

    /// Waits up to `timeout` for the process to end (its pidfd turns readable when it
    /// exits: a SIGKILL is delivered when the process next runs, not when it is sent).
    fn wait_exit(&self, timeout: std::time::Duration) -> bool {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let timeout = Timespec::try_from(timeout).unwrap_or(Timespec { tv_sec: 1, tv_nsec: 0 });
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        matches!(poll(&mut fds, Some(&timeout)), Ok(n) if n > 0)
    }
}

/// The children of `pid` (its main thread's), per `/proc`.
fn children(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The PID namespace of `pid` (the target of `/proc/PID/ns/pid`), if it still exists.
fn pid_namespace(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// Whether `pid` has exited but is not reaped yet, or is gone.
pub fn gone_or_zombie(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => {
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) == Some("Z")
        }
        Err(_) => true,
    }
}

/// `pid` as the process sees itself inside its innermost PID namespace (the last field of
/// `NSpid` in `/proc/PID/status`).
pub fn pid_inside(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// The init of one machine: PID 1 of its PID namespace, started through
/// `nsenter --net=... unshare --mount --pid --fork --mount-proc`. Dropping it kills it,
/// and with it everything in the machine.
#[derive(Debug)]
pub struct Init {
    /// `unshare`, the init's parent (the lab's own child).
    unshare: Child,
    /// The network namespace it runs in.
    netns: String,
    init: Tracked,
    pid_ns: PathBuf,
    stderr: File,
}

impl Init {
    /// Starts an init in network namespace `netns`: `init_command` (program and leading
    /// arguments) followed by `--bind SOURCE:TARGET` for each of `binds`; returns once it
    /// said it is ready.
    pub fn start(
        netns: &str,
        init_command: &[OsString],
        binds: &[(PathBuf, &str)],
    ) -> Result<Init, LabError> {
        let stdout =
            tempfile::tempfile().map_err(|e| LabError::io("creating a temporary file", e))?;
        let stderr =
            tempfile::tempfile().map_err(|e| LabError::io("creating a temporary file", e))?;
        let mut process = Command::new("nsenter");
        process
            .arg(format!("--net=/run/netns/{netns}"))
            .args(["--", "unshare", "--mount", "--propagation", "private", "--pid", "--fork"])
            .args(["--mount-proc", "--kill-child", "--"])
            .args(init_command);
        for (source, target) in binds {
            let mut pair = source.as_os_str().to_owned();
            pair.push(":");
            pair.push(target);
            process.arg("--bind").arg(pair);
        }
        // `nsenter` without --pid execs `unshare` in place: the child is `unshare`.
        let unshare = process
            .stdin(Stdio::null())
            .stdout(command::clone(&stdout)?)
            .stderr(command::clone(&stderr)?)
            .spawn()
            .map_err(|e| LabError::io(&format!("starting the init of {netns}"), e))?;
        let mut starting = Starting { unshare: Some(unshare) };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let unshare = starting.unshare.as_mut().expect("held until returned");
            if read_all(&stdout)?.lines().any(|line| line == READY) {
                break;
            }
            if unshare.try_wait().map_err(|e| LabError::io("checking unshare", e))?.is_some() {
                return Err(LabError::new(format!(
                    "the init of {netns} ended during set-up: {}",
                    read_all(&stderr)?.trim()
                )));
            }
            if Instant::now() >= deadline {
                return Err(LabError::new(format!(
                    "the init of {netns} not ready after {} ms: {}",
                    START_TIMEOUT.as_millis(),
                    read_all(&stderr)?.trim()
                )));
            }
            thread::sleep(Duration::from_millis(5));
        }
        let parent = starting.unshare.as_ref().expect("held until returned").id();
        let init = children(parent)
            .first()
            .and_then(|&pid| Tracked::open(pid, |pid| children(parent).contains(&pid)));
        let Some((init, pid_ns)) =
            init.and_then(|init| pid_namespace(init.pid).map(|ns| (init, ns)))
        else {
            return Err(LabError::new(format!("the init of {netns} vanished after set-up")));
        };
        let unshare = starting.unshare.take().expect("held until returned");
        Ok(Init { unshare, netns: netns.to_owned(), init, pid_ns, stderr })
    }

    /// Whether process `pid` lives in this machine (its PID namespace).
    pub fn holds(&self, pid: i32) -> bool {
        pid_namespace(pid).is_some_and(|ns| ns == self.pid_ns)
    }

    /// Every live process of the machine except the init itself.
    pub fn pids(&self) -> Result<Vec<i32>, LabError> {
        let entries = std::fs::read_dir("/proc").map_err(|e| LabError::io("listing /proc", e))?;
        let mut pids: Vec<i32> = entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != self.init.pid && self.holds(pid) && !gone_or_zombie(pid))
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// Sends `signal` to every process of the machine, the init included.
    pub fn signal_all(&self, signal: nix::sys::signal::Signal) -> Result<(), LabError> {
        for pid in self.pids()? {
            if let Some(process) = Tracked::open(pid, |pid| self.holds(pid)) {
                process.signal(signal)?;
            }
        }
        self.init.signal(signal)
    }

    /// SIGKILLs process `pid` if it lives in this machine (not the init: that is a
    /// crash); an error names why not.
    pub fn kill_process(&self, pid: i32) -> Result<(), LabError> {
        self.signal_process(pid, nix::sys::signal::Signal::SIGKILL)
    }

    /// Sends `signal` to process `pid` if it lives in this machine (not the init); an
    /// error names why not.
    pub fn signal_process(
        &self,
        pid: i32,
        signal: nix::sys::signal::Signal,
    ) -> Result<(), LabError> {
        if pid == self.init.pid {
            return Err(LabError::new(format!("process {pid} is the host's init: crash it")));
        }
        let process = Tracked::open(pid, |pid| self.holds(pid) && !gone_or_zombie(pid))
            .ok_or_else(|| LabError::new(format!("no process {pid} in this host")))?;
        process.signal(signal)
    }

    /// Kills the machine: its init (so the kernel kills everything else in its PID
    /// namespace) and every other process in its network namespace (the
    /// `nsenter` parents of its commands, which stop when their child is frozen and would
    /// then never reap it), and waits until all are gone.
    pub fn kill(mut self) -> Result<(), LabError> {
        self.kill_in_place()
    }

    fn kill_in_place(&mut self) -> Result<(), LabError> {
        self.init.signal(nix::sys::signal::Signal::SIGKILL)?;
        // `unshare` stays to reap the init; `--kill-child` only covers the other way round.
        let killed = names::kill_namespace_except(&self.netns, &[self.unshare.id() as i32]);
        match wait_timeout(&mut self.unshare, KILL_TIMEOUT)? {
            Some(_) => killed,
            None => {
                let _ = self.unshare.kill();
                let _ = self.unshare.wait();
                Err(LabError::new(format!(
                    "the init (process {}) was still alive {} ms after SIGKILL: {}",
                    self.init.pid,
                    KILL_TIMEOUT.as_millis(),
                    read_all(&self.stderr)?.trim()
                )))
            }
        }
    }

    /// Starts `command` inside the machine with `env` added to the environment.
    pub fn enter(&self, command: &[&str], env: &[(&str, &str)]) -> Result<Spawned, LabError> {
        let program = command.first().ok_or_else(|| LabError::new("an empty command".into()))?;
        let stdout =
            tempfile::tempfile().map_err(|e| LabError::io("creating a temporary file", e))?;
        let stderr =
            tempfile::tempfile().map_err(|e| LabError::io("creating a temporary file", e))?;
        let mut child = Command::new("nsenter")
            .args(["--target", &self.init.pid.to_string(), "--net", "--mount", "--pid"])
            .args(["--", "sh", "-c", GATE, "sh"])
            .args(command)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(command::clone(&stdout)?)
            .stderr(command::clone(&stderr)?)
            .spawn()
            .map_err(|e| LabError::io(&format!("starting `{}`", command.join(" ")), e))?;
        let gate = child.stdin.take();
        let nsenter = child.id();
        let deadline = Instant::now() + START_TIMEOUT;
        let process = loop {
            if let Some(&pid) = children(nsenter).first() {
                if let Some(process) = Tracked::open(pid, |pid| children(nsenter).contains(&pid)) {
                    break process;
                }
            }
            let ended = child.try_wait().map_err(|e| LabError::io("checking nsenter", e))?;
            if ended.is_some() || Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(LabError::new(format!(
                    "could not start `{program}` in the host: {}",
                    read_all(&stderr)?.trim()
                )));
            }
            thread::sleep(Duration::from_millis(1));
        };
        open_gate(gate)?;
        Ok(Spawned { child, process, stdout, stderr })
    }
}

/// Lets a gated command run.
fn open_gate(gate: Option<ChildStdin>) -> Result<(), LabError> {
    let mut gate = gate.ok_or_else(|| LabError::new("the command's stdin is gone".into()))?;
    // A command killed meanwhile closed the pipe: it will not run, and its handle says so.
    match gate.write_all(b"go\n") {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(LabError::io("letting the command run", error)),
    }
}

/// Kills a half-started `unshare` if set-up fails.
struct Starting {
    unshare: Option<Child>,
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(unshare) = self.unshare.as_mut() {
            // The init is `unshare`'s child and gets SIGKILL when it dies (--kill-child).
            let _ = unshare.kill();
            let _ = unshare.wait();
        }
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        if self.unshare.try_wait().ok().flatten().is_none() {
            if let Err(error) = self.kill_in_place() {
                eprintln!("testbed: {error}");
            }
        }
    }
}

/// A process started inside a lab machine by [`crate::Lab::spawn`]. Dropping the handle
/// SIGKILLs it (through its pidfd) if it still runs; processes it forked die when their
/// machine crashes or the lab is dropped.
#[derive(Debug)]
pub struct Spawned {
    /// `nsenter`, the process's parent, which ends as the process ends (with its exit
    /// code, or killed by the same signal).
    child: Child,
    process: Tracked,
    stdout: File,
    stderr: File,
}

impl Spawned {
    /// The process's PID, as seen from outside the lab (as [`crate::Lab::pids`] lists it).
    pub fn pid(&self) -> u32 {
        self.process.pid.unsigned_abs()
    }

    /// The process's PID inside its host (what it writes to its PID files), while it runs.
    pub fn pid_in_host(&self) -> Option<i32> {
        pid_inside(self.process.pid)
    }

    /// Sends `signal` to the process (nothing happens when it has exited).
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> Result<(), LabError> {
        self.process.signal(signal)
    }

    /// SIGKILLs the process and waits for it; returns how it ended.
    pub fn kill(&mut self) -> Result<ExitStatus, LabError> {
        self.process.signal(nix::sys::signal::Signal::SIGKILL)?;
        self.wait_timeout(KILL_TIMEOUT)?.ok_or_else(|| {
            LabError::new(format!("process {} still running after SIGKILL", self.process.pid))
        })
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, LabError> {
        self.child.try_wait().map_err(|e| LabError::io("checking a spawned process", e))
    }

    /// Waits at most `timeout` for it to exit; `None` when it still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, LabError> {
        wait_timeout(&mut self.child, timeout)
    }

    /// What it wrote to stdout so far.
    pub fn stdout(&self) -> Result<String, LabError> {
        read_all(&self.stdout)
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> Result<String, LabError> {
        read_all(&self.stderr)
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.process.signal(nix::sys::signal::Signal::SIGKILL);
        // `nsenter` may itself be stopped (it stops when its child is frozen by a crash):
        // it is this handle's own unreaped child, so killing it by PID is safe.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The process is gone when this returns (a frozen one is thawed by its host's
        // crash or tear-down, which end it; this waits for it only a while).
        self.process.wait_exit(std::time::Duration::from_secs(2));
    }
}
