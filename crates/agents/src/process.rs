//! The `process` kind: tandem itself starts the command (in its own process group,
//! with the configured working directory, environment and user, output appended to
//! the resource's log file) and supervises it as its parent. Monitor asks whether that
//! child still runs (reaping it: a zombie is not running); stop sends SIGTERM to the
//! whole group and SIGKILL to what is left before the stop timeout. It must not touch
//! any process it did not start. The child is known only to this agent object: after
//! a daemon restart a process left by the predecessor is not found (the fence guard
//! stops those).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use config::ProcessParams;
use engine::OpResult;
use nix::sys::signal::Signal;
use nix::unistd::User;

use crate::exec::{self, kill_group, wait_until};
use crate::{Agent, BuildError, Context};

/// The part of the stop timeout kept after SIGKILL for the group to die: a fifth of
/// it, at most this much.
const KILL_MARGIN_MAX: Duration = Duration::from_secs(5);

pub struct ProcessAgent {
    command: Vec<String>,
    cwd: Option<PathBuf>,
    env: BTreeMap<String, String>,
    /// (uid, gid) to run as; `None`: the daemon's own.
    user: Option<(u32, u32)>,
    log: PathBuf,
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
        if running(&mut slot) {
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
            Ok(child) => {
                *slot = Some(child);
                OpResult::Ok
            }
            Err(e) => OpResult::Failed(format!("cannot start `{}`: {e}", self.command[0])),
        }
    }

    fn stop(&self, timeout: Duration) -> OpResult {
        let started = Instant::now();
        let mut slot = self.child();
        let Some(mut child) = slot.take() else {
            return OpResult::Ok;
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
            return OpResult::Ok;
        }
        match wait_until(&mut child, started + timeout) {
            Ok(Some(_)) | Err(_) => OpResult::Ok,
            Ok(None) => {
                *slot = Some(child);
                OpResult::Timeout
            }
        }
    }

    fn monitor(&self, _timeout: Duration) -> OpResult {
        if running(&mut self.child()) {
            OpResult::Ok
        } else {
            OpResult::NotRunning
        }
    }
}
