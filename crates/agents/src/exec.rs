//! Running and supervising child processes with deadlines: spawning each in a new
//! process group with its output appended to a log file, waiting with a deadline, and
//! killing a whole group. It owns no policy (what an exit code means is the agents'
//! business) and must never signal anything but a group or process it started.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// The longest sleep between two checks of a child; the first checks come sooner.
const POLL_INTERVAL_MAX: Duration = Duration::from_millis(20);
/// How long to wait for a SIGKILLed child to be reapable before giving up on it.
const REAP_MARGIN: Duration = Duration::from_secs(2);

/// How a command run to completion ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
    /// Killed (with its process group) at the deadline.
    TimedOut,
    /// It could not be started at all; `missing`: no such program.
    SpawnFailed {
        error: String,
        missing: bool,
    },
}

/// The Debian package that provides each system program a helper runs, for the
/// message when one is missing.
const PACKAGES: &[(&str, &str)] =
    &[("mount", "mount"), ("umount", "mount"), ("fsck", "util-linux"), ("sync", "coreutils")];

/// Opens `log` for appending (creating its directory), or `None` when that fails: a
/// resource must not fail because its log cannot be written.
pub(crate) fn open_log(log: &Path) -> Option<File> {
    if let Some(dir) = log.parent() {
        let _ = fs::create_dir_all(dir);
    }
    OpenOptions::new().create(true).append(true).open(log).ok()
}

/// Makes `command` run in a new process group, with no stdin and its stdout and
/// stderr appended to `log`.
pub(crate) fn prepare(command: &mut Command, log: &Path) {
    command.process_group(0).stdin(Stdio::null());
    match open_log(log) {
        Some(file) => {
            let copy = file.try_clone().map(Stdio::from).unwrap_or_else(|_| Stdio::null());
            command.stdout(Stdio::from(file)).stderr(copy);
        }
        None => {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
    }
}

/// Set on every operation run to completion here (OCF, LSB and script actions, mount,
/// umount, fsck): the PID of the process that runs it (the daemon), so that its fence
/// guard, when it fires, can end the operations in flight of a daemon that died or
/// stalled ([`end_operations_of`]): a start that lands after the guard's stop would run
/// the resource beside the node that takes it over.
pub const OPERATION_ENV: &str = "TANDEM_OPERATION_OF";

/// SIGKILLs the process group of every operation that process `pid` started and that
/// still runs (found by [`OPERATION_ENV`] in `/proc/*/environ`); how many. Each
/// operation runs in a process group of its own, so nothing else is signalled.
pub fn end_operations_of(pid: u32) -> usize {
    let wanted = format!("{OPERATION_ENV}={pid}");
    let Ok(entries) = fs::read_dir("/proc") else { return 0 };
    let mut ended = 0;
    for entry in entries.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(environ) = fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|b| *b == 0).any(|v| v == wanted.as_bytes())
            && nix::unistd::getpgid(Some(Pid::from_raw(child))) == Ok(Pid::from_raw(child))
            && killpg(Pid::from_raw(child), Signal::SIGKILL).is_ok()
        {
            ended += 1;
        }
    }
    ended
}

/// Runs `command` (already [`prepare`]d) to completion or until `timeout`; at the
/// deadline its whole process group is killed.
pub(crate) fn run(mut command: Command, timeout: Duration) -> Exit {
    command.env(OPERATION_ENV, std::process::id().to_string());
    let deadline = Instant::now() + timeout;
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let missing = e.kind() == io::ErrorKind::NotFound;
            return Exit::SpawnFailed { error: e.to_string(), missing };
        }
    };
    match wait_until(&mut child, deadline) {
        Ok(Some(status)) => exit_of(status),
        Ok(None) | Err(_) => {
            kill_group(&child, Signal::SIGKILL);
            let _ = wait_until(&mut child, Instant::now() + REAP_MARGIN);
            Exit::TimedOut
        }
    }
}

fn exit_of(status: ExitStatus) -> Exit {
    match status.code() {
        Some(code) => Exit::Code(code),
        None => Exit::Signal(status.signal().unwrap_or(0)),
    }
}

/// Waits for `child` to exit (reaping it) until `deadline`; `Ok(None)`: still running.
/// Runs `command` (an agent script called with `action`) like [`run`] and returns its
/// exit code, or the operation's result when it has none: a timeout, a signal, or a
/// program that could not be started. `path` names the script in messages.
pub(crate) fn exit_code(
    command: Command,
    timeout: Duration,
    path: &Path,
    action: &str,
) -> Result<i32, engine::OpResult> {
    use engine::OpResult;
    match run(command, timeout) {
        Exit::Code(code) => Ok(code),
        Exit::TimedOut => Err(OpResult::Timeout),
        Exit::Signal(signal) => {
            Err(OpResult::Failed(format!("{} {action}: killed by signal {signal}", path.display())))
        }
        Exit::SpawnFailed { error, .. } => {
            Err(OpResult::Failed(format!("cannot run {} {action}: {error}", path.display())))
        }
    }
}

/// Runs `command` (logging to `log`) with the time left before `deadline`; past the
/// deadline it is not started at all.
pub(crate) fn run_until(mut command: Command, log: &Path, deadline: Instant) -> Exit {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Exit::TimedOut;
    }
    prepare(&mut command, log);
    run(command, left)
}

/// The result of a helper command (`what`, the program's name) that did not succeed;
/// `log` holds its output. A program that is not installed is `E4306`, naming its
/// package.
pub(crate) fn failure(what: &str, exit: Exit, log: &Path) -> engine::OpResult {
    use engine::OpResult;
    match exit {
        Exit::TimedOut => OpResult::Timeout,
        Exit::Code(code) => {
            OpResult::Failed(format!("{what} exited with code {code} (see {})", log.display()))
        }
        Exit::Signal(signal) => OpResult::Failed(format!("{what} killed by signal {signal}")),
        Exit::SpawnFailed { error, missing: true } => {
            let package = PACKAGES
                .iter()
                .find(|(tool, _)| *tool == what)
                .map_or("the package that provides it".to_string(), |(_, package)| {
                    format!("the Debian package `{package}`")
                });
            OpResult::Failed(format!(
                "{}: {what} is not installed ({error}): install {package}",
                engine::catalogue::AGENT_TOOL_MISSING.code
            ))
        }
        Exit::SpawnFailed { error, missing: false } => {
            OpResult::Failed(format!("cannot run {what}: {error}"))
        }
    }
}

pub(crate) fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(POLL_INTERVAL_MAX);
    }
}

/// Sends `signal` to the process group `child` leads (every child here leads its own).
/// A group that no longer exists is fine.
pub(crate) fn kill_group(child: &Child, signal: Signal) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named_with_its_package() {
        let exit = run(Command::new("/nonexistent/tandem-no-such-tool"), Duration::from_secs(1));
        assert!(matches!(exit, Exit::SpawnFailed { missing: true, .. }), "{exit:?}");
        let missing = Exit::SpawnFailed { error: "not found".into(), missing: true };
        let engine::OpResult::Failed(message) = failure("umount", missing, Path::new("/x")) else {
            panic!("not a failure")
        };
        assert!(message.starts_with("E4306: umount is not installed"), "{message}");
        assert!(message.contains("`mount`"), "{message}");
        let other = Exit::SpawnFailed { error: "permission denied".into(), missing: false };
        let engine::OpResult::Failed(message) = failure("mount", other, Path::new("/x")) else {
            panic!("not a failure")
        };
        assert_eq!(message, "cannot run mount: permission denied");
    }
}
