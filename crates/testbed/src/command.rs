//! Running one external command with a deadline and collecting its output. It owns the
//! only place where the lab waits for a child process it started, so every wait has a
//! limit; it must not decide what to run or interpret the output beyond success.
//!
//! Output goes to unnamed temporary files, not pipes: a command that leaves a
//! background process behind holding its stdout cannot make the lab hang.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::LabError;

/// How long a set-up or tear-down command (`ip`, `losetup`, `mkfs.ext4`) may take.
pub const SETUP_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a running child is polled for its exit.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Most bytes kept from one stream of a command's output.
const OUTPUT_BYTES_MAX: u64 = 1 << 20;

/// What a finished command printed and how it ended.
#[derive(Debug)]
pub struct Output {
    /// The exit status.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8, at most 1 MiB).
    pub stdout: String,
    /// Standard error (lossy UTF-8, at most 1 MiB).
    pub stderr: String,
}

impl Output {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs `program args` and waits at most `timeout` for it; a command still running then
/// is killed (by its PID) and reported as an error.
pub fn run(program: &str, args: &[&str], timeout: Duration) -> Result<Output, LabError> {
    let describe = || format!("{program} {}", args.join(" "));
    let stdout = tempfile::tempfile().map_err(|e| LabError::io("creating a temporary file", e))?;
    let stderr = tempfile::tempfile().map_err(|e| LabError::io("creating a temporary file", e))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(clone(&stdout)?)
        .stderr(clone(&stderr)?)
        .spawn()
        .map_err(|e| LabError::io(&format!("starting `{}`", describe()), e))?;
    let status = match wait_timeout(&mut child, timeout)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LabError::new(format!(
                "`{}` did not finish within {} ms",
                describe(),
                timeout.as_millis()
            )));
        }
    };
    Ok(Output { status, stdout: read_all(&stdout)?, stderr: read_all(&stderr)? })
}

/// Like [`run`], but a non-zero exit is an error carrying the command's stderr.
pub fn run_ok(program: &str, args: &[&str]) -> Result<Output, LabError> {
    let output = run(program, args, SETUP_COMMAND_TIMEOUT)?;
    if output.success() {
        Ok(output)
    } else {
        Err(LabError::new(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            output.stderr.trim()
        )))
    }
}

/// Waits up to `timeout` for `child` to exit; `None` when it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Result<Option<ExitStatus>, LabError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) =
            child.try_wait().map_err(|e| LabError::io("waiting for a child process", e))?
        {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// A second handle on `file`, for a child's stdout or stderr.
pub fn clone(file: &File) -> Result<File, LabError> {
    file.try_clone().map_err(|e| LabError::io("duplicating a temporary file", e))
}

/// Everything written to `file` so far (at most [`OUTPUT_BYTES_MAX`] bytes), as text.
/// Reads by position, so the offset a running child shares with `file` stays put.
pub fn read_all(file: &File) -> Result<String, LabError> {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    while (bytes.len() as u64) < OUTPUT_BYTES_MAX {
        let read = file
            .read_at(&mut buffer, bytes.len() as u64)
            .map_err(|e| LabError::io("reading an output file", e))?;
        if read == 0 {
            break;
        }
        bytes.extend_from_slice(&buffer[..read]);
    }
    bytes.truncate(OUTPUT_BYTES_MAX as usize);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
