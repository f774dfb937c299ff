//! The `ocf` kind: the OCF resource-agent API. The agent is
//! `$OCF_ROOT/resource.d/PROVIDER/TYPE`, called with `start`, `stop` or `monitor` and
//! the environment `OCF_ROOT`, `OCF_RESOURCE_INSTANCE`, `OCF_RESOURCE_PROVIDER`,
//! `OCF_RESOURCE_TYPE`, `OCF_RESKEY_<param>` and `OCF_RESKEY_CRM_meta_timeout`
//! (milliseconds); exit codes per the OCF specification. Before the first start the
//! agent's `meta-data` is read, when it gives any, to refuse a start that lacks a
//! required parameter. It must not interpret anything beyond exit codes and the
//! meta-data's parameter list.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use config::OcfParams;
use engine::OpResult;
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::exec::{self, Exit};
use crate::{Agent, Context};

/// OCF_NOT_RUNNING.
pub const NOT_RUNNING: i32 = 7;
/// The longest `meta-data` may take (and at most half the start's timeout).
const META_DATA_TIMEOUT_MAX: Duration = Duration::from_secs(10);

/// What an OCF exit code means (OCF resource agent API, "Return codes").
pub fn exit_meaning(code: i32) -> &'static str {
    match code {
        0 => "success",
        1 => "generic error (OCF_ERR_GENERIC)",
        2 => "invalid arguments (OCF_ERR_ARGS)",
        3 => "unimplemented action (OCF_ERR_UNIMPLEMENTED)",
        4 => "insufficient privileges (OCF_ERR_PERM)",
        5 => "required software not installed (OCF_ERR_INSTALLED)",
        6 => "not configured (OCF_ERR_CONFIGURED)",
        7 => "not running (OCF_NOT_RUNNING)",
        8 => "running as promoted (OCF_RUNNING_PROMOTED)",
        9 => "failed as promoted (OCF_FAILED_PROMOTED)",
        _ => "unknown exit code",
    }
}

/// The names of the parameters `meta_data` (an OCF meta-data document) marks
/// `required="1"`; `None` when it is not readable XML.
pub fn required_parameters(meta_data: &str) -> Option<Vec<String>> {
    let mut reader = Reader::from_str(meta_data);
    let mut required = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(element)) | Ok(Event::Empty(element))
                if element.name().as_ref() == b"parameter" =>
            {
                let mut name = None;
                let mut is_required = false;
                for attribute in element.attributes().flatten() {
                    let value = String::from_utf8_lossy(&attribute.value).into_owned();
                    match attribute.key.as_ref() {
                        b"name" => name = Some(value),
                        b"required" => is_required = value == "1" || value == "true",
                        _ => {}
                    }
                }
                if let (Some(name), true) = (name, is_required) {
                    required.push(name);
                }
            }
            Ok(Event::Eof) => return Some(required),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// The most of an agent's `meta-data` output that [`meta_data`] keeps: the largest
/// agents of Debian's resource-agents print about 30 KiB.
pub const META_DATA_BYTES_MAX: u64 = 1024 * 1024;

/// Runs `AGENT meta-data` for the agent `provider`/`agent_type` under `ocf_root`
/// (`OCF_ROOT` set, in a process group of its own, killed with its group at `timeout`)
/// and returns what it printed (at most [`META_DATA_BYTES_MAX`]), or why not: it could
/// not be started, timed out, or exited with another code than 0. The output goes to an
/// unnamed temporary file (created, then unlinked at once), so that nothing is left
/// behind and a large document cannot block the agent on a full pipe.
pub fn meta_data(
    ocf_root: &Path,
    provider: &str,
    agent_type: &str,
    timeout: Duration,
) -> Result<String, String> {
    let path = ocf_root.join("resource.d").join(provider).join(agent_type);
    let mut output =
        unnamed_file().map_err(|e| format!("no temporary file for its output: {e}"))?;
    let mut command = Command::new(&path);
    command
        .arg("meta-data")
        .env("OCF_ROOT", ocf_root)
        .env("OCF_RESOURCE_PROVIDER", provider)
        .env("OCF_RESOURCE_TYPE", agent_type)
        .env("OCF_RESKEY_CRM_meta_timeout", timeout.as_millis().to_string())
        .process_group(0)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .stdout(output.try_clone().map_err(|e| format!("cannot pass its output: {e}"))?);
    match exec::run(command, timeout) {
        Exit::Code(0) => {}
        Exit::Code(code) => {
            return Err(format!("meta-data exited with {code}: {}", exit_meaning(code)))
        }
        Exit::Signal(signal) => return Err(format!("meta-data was killed by signal {signal}")),
        Exit::TimedOut => return Err(format!("meta-data did not finish within {timeout:?}")),
        Exit::SpawnFailed { error, .. } => {
            return Err(format!("cannot run {}: {error}", path.display()))
        }
    }
    let mut text = String::new();
    output.seek(SeekFrom::Start(0)).map_err(|e| format!("reading its output: {e}"))?;
    output
        .take(META_DATA_BYTES_MAX)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading its output: {e}"))?;
    Ok(text)
}

/// A new file in the temporary directory, already unlinked: only this process (and the
/// children it hands it to) can reach it, and it is gone when the last one closes it.
fn unnamed_file() -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("tandem-meta-data-{}-{n}-{nanos}", std::process::id());
    let path = std::env::temp_dir().join(name);
    let file =
        fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
    fs::remove_file(&path)?;
    Ok(file)
}

pub struct OcfAgent {
    path: PathBuf,
    root: PathBuf,
    instance: String,
    provider: String,
    agent_type: String,
    params: BTreeMap<String, String>,
    log_dir: PathBuf,
    log: PathBuf,
    /// The required parameters from the meta-data, once read (empty if it gave none).
    required: OnceLock<Vec<String>>,
}

impl OcfAgent {
    pub fn new(params: &OcfParams, context: &Context) -> OcfAgent {
        OcfAgent {
            path: context
                .ocf_root
                .join("resource.d")
                .join(&params.provider)
                .join(&params.agent_type),
            root: context.ocf_root.clone(),
            instance: context.instance.clone(),
            provider: params.provider.clone(),
            agent_type: params.agent_type.clone(),
            params: params.params.clone(),
            log_dir: context.log_dir.clone(),
            log: context.log_file(),
            required: OnceLock::new(),
        }
    }

    fn command(&self, action: &str, timeout: Duration) -> Command {
        let mut command = Command::new(&self.path);
        command
            .arg(action)
            .env("OCF_ROOT", &self.root)
            .env("OCF_RESOURCE_INSTANCE", &self.instance)
            .env("OCF_RESOURCE_PROVIDER", &self.provider)
            .env("OCF_RESOURCE_TYPE", &self.agent_type)
            .env("OCF_RESKEY_CRM_meta_timeout", timeout.as_millis().to_string());
        for (name, value) in &self.params {
            command.env(format!("OCF_RESKEY_{name}"), value);
        }
        command
    }

    fn call(&self, action: &str, timeout: Duration) -> Result<i32, OpResult> {
        let mut command = self.command(action, timeout);
        exec::prepare(&mut command, &self.log);
        exec::exit_code(command, timeout, &self.path, action)
    }

    fn failed(&self, action: &str, code: i32) -> OpResult {
        OpResult::Failed(format!(
            "{} {action} exited with {code}: {}",
            self.path.display(),
            exit_meaning(code)
        ))
    }

    /// The required parameters, reading the meta-data the first time it answers. An
    /// agent that gives no readable meta-data is not checked.
    fn required(&self, timeout: Duration) -> Option<&Vec<String>> {
        if let Some(required) = self.required.get() {
            return Some(required);
        }
        let output = self.log_dir.join(format!("{}.meta-data.xml", self.instance));
        let _ = fs::create_dir_all(&self.log_dir);
        let file = fs::File::create(&output).ok()?;
        let mut command = self.command("meta-data", timeout);
        exec::prepare(&mut command, &self.log);
        command.stdout(file);
        let exit = exec::run(command, timeout);
        let text = fs::read_to_string(&output).unwrap_or_default();
        let _ = fs::remove_file(&output);
        if exit != Exit::Code(0) {
            return None;
        }
        let required = required_parameters(&text)?;
        Some(self.required.get_or_init(|| required))
    }
}

impl Agent for OcfAgent {
    fn start(&self, timeout: Duration) -> OpResult {
        let meta_timeout = (timeout / 2).min(META_DATA_TIMEOUT_MAX);
        if let Some(required) = self.required(meta_timeout) {
            let missing: Vec<&str> = required
                .iter()
                .filter(|name| !self.params.contains_key(*name))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return OpResult::Failed(format!(
                    "{}: required parameter(s) missing per its meta-data: {}",
                    self.path.display(),
                    missing.join(", ")
                ));
            }
        }
        match self.call("start", timeout) {
            Ok(0) => OpResult::Ok,
            Ok(code) => self.failed("start", code),
            Err(result) => result,
        }
    }

    fn stop(&self, timeout: Duration) -> OpResult {
        match self.call("stop", timeout) {
            Ok(0) => OpResult::Ok,
            Ok(NOT_RUNNING) => OpResult::NotRunning,
            Ok(code) => self.failed("stop", code),
            Err(result) => result,
        }
    }

    fn monitor(&self, timeout: Duration) -> OpResult {
        match self.call("monitor", timeout) {
            Ok(0) => OpResult::Ok,
            Ok(NOT_RUNNING) => OpResult::NotRunning,
            Ok(code) => self.failed("monitor", code),
            Err(result) => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_parameters_are_read_from_meta_data() {
        let xml = r#"<?xml version="1.0"?>
<resource-agent name="x"><parameters>
<parameter name="state" required="1" unique="0"><content type="string"/></parameter>
<parameter name="delay" required="0"/>
<parameter name="other" required="true"/>
</parameters></resource-agent>"#;
        assert_eq!(required_parameters(xml), Some(vec!["state".into(), "other".into()]));
        assert_eq!(required_parameters("<a><b></a>"), None);
    }
}
