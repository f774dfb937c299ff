//! The `process` kind: tandem itself starts the command (in its own process group,
//! with the configured working directory, environment and user, output appended to
//! the resource's log file) and supervises it as its parent. Monitor asks whether that
//! child still runs (reaping it: a zombie is not running); stop sends SIGTERM to the
//! whole group and SIGKILL to what is left before the stop timeout. It must not touch
//! any process it did not start.
//!
//! **Re-attach.** Each start records the child's process id (which is also its process
//! group id) and its start time (field 22 of `/proc/PID/stat`, in clock ticks since
//! boot) in `<log dir>/<instance>.pid`. An agent with no child handle of its own (a
//! new daemon after a restart) falls back to that file: the recorded process runs if
//! `/proc/PID` exists, is not a zombie and started at the recorded time (so a reused
//! process id is never taken for it); stop then signals its group and polls `/proc`
//! until it is gone (it is not our child, we cannot wait for it). The file is removed
//! once the process is known stopped. It is written atomically (`files::write_atomic`:
//! temporary file, fsync, rename, fsync of the directory), so a crash never leaves it
//! half written; a start whose record cannot be written is undone (the new process
//! group killed) and fails with `E4307`, since a daemon restarted after it would not
//! find the process and would start a second copy.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use config::ProcessParams;
use engine::catalogue::PROCESS_STATE_UNWRITABLE;
use engine::OpResult;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, User};

use crate::exec::{self, kill_group, wait_until};
use crate::{Agent, BuildError, Context};

/// The part of the stop timeout kept after SIGKILL for the group to die: a fifth of
/// it, at most this much.
const KILL_MARGIN_MAX: Duration = Duration::from_secs(5);
/// The longest sleep between two looks at `/proc` for a process that is not our child.
const PROC_POLL_MAX: Duration = Duration::from_millis(20);
/// The longest state file read: two numbers.
const STATE_FILE_MAX_BYTES: u64 = 64;

pub struct ProcessAgent {
    command: Vec<String>,
    cwd: Option<PathBuf>,
    env: BTreeMap<String, String>,
    /// (uid, gid) to run as; `None`: the daemon's own.
    user: Option<(u32, u32)>,
    log: PathBuf,
    /// `<log dir>/<instance>.pid`: "PID START_TIME" of the last started child.
    state_file: PathBuf,
    child: Mutex<Option<Child>>,
}

impl ProcessAgent {
    pub fn new(params: &ProcessParams, context: &Context) -> Result<ProcessAgent, BuildError> {
        if params.command.value.is_empty() {
            return Err(BuildError::EmptyCommand);
        }
        let user = match &params.user {
            None => None,
            Some(name) => match User::from_name(name) {
                Ok(Some(user)) => Some((user.uid.as_raw(), user.gid.as_raw())),
                _ => return Err(BuildError::UnknownUser(name.clone())),
            },
        };
        Ok(ProcessAgent {
            command: params.command.value.clone(),
            cwd: params.cwd.as_ref().map(|cwd| cwd.value.clone()),
            env: params.env.clone(),
            user,
            log: context.log_file(),
            state_file: context.log_dir.join(format!("{}.pid", context.instance)),
            child: Mutex::new(None),
        })
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The process id of the running child (which leads its process group), if any.
    pub fn pid(&self) -> Option<u32> {
        let mut child = self.child();
        running(&mut child).then(|| child.as_ref().map(Child::id)).flatten()
    }

    /// The path of the state file recording the last started process.
    pub fn state_file(&self) -> &std::path::Path {
        &self.state_file
    }

    /// Records `pid` (just spawned) in the state file, atomically; the coded failure
    /// of the start if it cannot. A process already gone has nothing to record.
    fn record(&self, pid: u32) -> Result<(), String> {
        let Some(start_time) = start_time(pid) else { return Ok(()) };
        let dir = self.state_file.parent().unwrap_or(std::path::Path::new("."));
        fs::create_dir_all(dir)
            .and_then(|()| {
                crate::files::write_atomic(
                    &self.state_file,
                    format!("{pid} {start_time}\n").as_bytes(),
                )
            })
            .map_err(|e| {
                format!(
                    "{}: cannot record the started process {pid} in {}: {e}; it was stopped \
                     again (a restarted daemon would not find it and would start a second copy)",
                    PROCESS_STATE_UNWRITABLE.code,
                    self.state_file.display()
                )
            })
    }

    fn forget(&self) {
        let _ = fs::remove_file(&self.state_file);
    }

    /// The process recorded in the state file, if it still runs; a state file naming
    /// a process that is gone is removed.
    fn recorded(&self) -> Option<u32> {
        let (pid, recorded_start) = read_state(&self.state_file)?;
        if start_time(pid) == Some(recorded_start) {
            Some(pid)
        } else {
            self.forget();
            None
        }
    }

    /// Stops the group of recorded process `pid` (not our child): SIGTERM, SIGKILL
    /// `margin` before the deadline, then polls `/proc` until it is gone.
    fn stop_recorded(&self, pid: u32, started: Instant, timeout: Duration) -> OpResult {
        let margin = (timeout / 5).min(KILL_MARGIN_MAX);
        let Some(start) = start_time(pid) else {
            self.forget();
            return OpResult::Ok;
        };
        let group = Pid::from_raw(pid as i32);
        let gone = || start_time(pid) != Some(start);
        let _ = killpg(group, Signal::SIGTERM);
        let exited = poll_until(gone, started + timeout.saturating_sub(margin));
        // Whatever of the group outlived SIGTERM (or its leader) goes now.
        let _ = killpg(group, Signal::SIGKILL);
        if exited || poll_until(gone, started + timeout) {
            self.forget();
            OpResult::Ok
        } else {
            OpResult::Timeout
        }
    }
}

/// Polls `done` with a growing pause until it holds (`true`) or `deadline` passes.
fn poll_until(mut done: impl FnMut() -> bool, deadline: Instant) -> bool {
    let mut pause = Duration::from_millis(1);
    loop {
        if done() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(PROC_POLL_MAX);
    }
}

/// The start time (field 22 of `/proc/PID/stat`, clock ticks since boot) of live
/// process `pid`; `None` when there is no such process or it is a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: the fields after
    // it start after the last ')'. Field 3 is the state, so field 22 is the 20th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// "PID START_TIME" from a state file; `None` when missing or malformed.
fn read_state(path: &std::path::Path) -> Option<(u32, u64)> {
    use std::io::Read;
    let mut text = String::new();
    fs::File::open(path).ok()?.take(STATE_FILE_MAX_BYTES).read_to_string(&mut text).ok()?;
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    let start: u64 = words.next()?.parse().ok()?;
    (pid > 1 && i32::try_from(pid).is_ok()).then_some((pid, start))
}

/// Whether the child in `slot` still runs; a child that exited is reaped and dropped.
fn running(slot: &mut Option<Child>) -> bool {
    match slot {
        None => false,
        Some(child) => match child.try_wait() {
            Ok(None) => true,
            Ok(Some(_)) | Err(_) => {
                *slot = None;
                false
            }
        },
    }
}

impl Agent for ProcessAgent {
    fn start(&self, _timeout: Duration) -> OpResult {
        let mut slot = self.child();
        if running(&mut slot) || self.recorded().is_some() {
            return OpResult::Ok;
        }
        let mut command = Command::new(&self.command[0]);
        command.args(&self.command[1..]).envs(&self.env);
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        exec::prepare(&mut command, &self.log);
        match command.spawn() {
            Ok(mut child) => match self.record(child.id()) {
                Ok(()) => {
                    *slot = Some(child);
                    OpResult::Ok
                }
                Err(failure) => {
                    // Unrecorded, it must not run: its whole group goes at once.
                    kill_group(&child, Signal::SIGKILL);
                    let _ = child.wait();
                    OpResult::Failed(failure)
                }
            },
            Err(e) => OpResult::Failed(format!("cannot start `{}`: {e}", self.command[0])),
        }
    }

    fn stop(&self, timeout: Duration) -> OpResult {
        let started = Instant::now();
        let mut slot = self.child();
        let Some(mut child) = slot.take() else {
            return match self.recorded() {
                Some(pid) => self.stop_recorded(pid, started, timeout),
                None => OpResult::Ok,
            };
        };
        let margin = (timeout / 5).min(KILL_MARGIN_MAX);
        kill_group(&child, Signal::SIGTERM);
        let exited = matches!(
            wait_until(&mut child, started + timeout.saturating_sub(margin)),
            Ok(Some(_)) | Err(_)
        );
        // Whatever of the group outlived SIGTERM (or its leader) goes now.
        kill_group(&child, Signal::SIGKILL);
        if exited {
            self.forget();
            return OpResult::Ok;
        }
        match wait_until(&mut child, started + timeout) {
            Ok(Some(_)) | Err(_) => {
                self.forget();
                OpResult::Ok
            }
            Ok(None) => {
                *slot = Some(child);
                OpResult::Timeout
            }
        }
    }

    fn monitor(&self, _timeout: Duration) -> OpResult {
        let mut slot = self.child();
        if slot.is_some() {
            if running(&mut slot) {
                return OpResult::Ok;
            }
            // Our own child exited (and was reaped): known stopped.
            self.forget();
            return OpResult::NotRunning;
        }
        if self.recorded().is_some() {
            OpResult::Ok
        } else {
            OpResult::NotRunning
        }
    }
}
