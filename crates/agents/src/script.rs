//! The `script` and `lsb` kinds: one executable called with `start`, `stop` or a
//! status action, answering with LSB exit codes (status: 0 running, 3 not running,
//! anything else a failure). `lsb` is the same code with the script at
//! `<init dir>/<service>`. The script runs in its own process group and is killed with
//! it at its timeout; this module must not interpret anything beyond the exit code.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use engine::OpResult;

use crate::exec;
use crate::{Agent, Context};

pub struct ScriptAgent {
    path: PathBuf,
    /// The status action's name (`status` for LSB).
    status: &'static str,
    log: PathBuf,
}

/// What a non-zero LSB exit code of an action other than status means.
pub fn lsb_action_error(code: i32) -> &'static str {
    match code {
        1 => "generic or unspecified error",
        2 => "invalid or excess arguments",
        3 => "unimplemented feature",
        4 => "insufficient privilege",
        5 => "program is not installed",
        6 => "program is not configured",
        7 => "program is not running",
        _ => "error",
    }
}

/// What an LSB status exit code other than 0 and 3 means.
pub fn lsb_status_error(code: i32) -> &'static str {
    match code {
        1 => "program is dead and its pid file exists",
        2 => "program is dead and its lock file exists",
        4 => "program or service status is unknown",
        _ => "error",
    }
}

impl ScriptAgent {
    pub fn new(path: PathBuf, status: &'static str, context: &Context) -> ScriptAgent {
        ScriptAgent { path, status, log: context.log_file() }
    }

    fn call(&self, action: &str, timeout: Duration) -> Result<i32, OpResult> {
        let mut command = Command::new(&self.path);
        command.arg(action);
        exec::prepare(&mut command, &self.log);
        exec::exit_code(command, timeout, &self.path, action)
    }

    fn action(&self, action: &str, timeout: Duration) -> OpResult {
        match self.call(action, timeout) {
            Ok(0) => OpResult::Ok,
            Ok(code) => OpResult::Failed(format!(
                "{} {action} exited with {code} ({})",
                self.path.display(),
                lsb_action_error(code)
            )),
            Err(result) => result,
        }
    }
}

impl Agent for ScriptAgent {
    fn start(&self, timeout: Duration) -> OpResult {
        self.action("start", timeout)
    }

    fn stop(&self, timeout: Duration) -> OpResult {
        self.action("stop", timeout)
    }

    fn monitor(&self, timeout: Duration) -> OpResult {
        match self.call(self.status, timeout) {
            Ok(0) => OpResult::Ok,
            Ok(3) => OpResult::NotRunning,
            Ok(code) => OpResult::Failed(format!(
                "{} {} exited with {code} ({})",
                self.path.display(),
                self.status,
                lsb_status_error(code)
            )),
            Err(result) => result,
        }
    }
}
