//! `cluster.toml` -> the engine's [`engine::ClusterSpec`] plus everything the shell and
//! the agents need, with rustc-style diagnostics (code, file:line:column, caret, help).
//!
//! ```no_run
//! match config::load(std::path::Path::new("/etc/tandem/cluster.toml")) {
//!     Ok((config, warnings)) => { /* config.cluster is the engine's spec */ }
//!     Err(invalid) => eprint!("{invalid}"), // every diagnostic and the summary
//! }
//! ```
//!
//! * [`parse`] checks a whole file and reports **every** error, not only the first: it
//!   walks a `toml_edit` document (which keeps spans) instead of deserialising.
//! * [`host_checks`] checks that this machine has what the file names (paths, devices,
//!   interfaces, agents); warnings for `tandem validate`, errors for the daemon.
//! * [`Diagnostic::render`] / [`render_all`] print them; [`summary`] the last line.
//!
//! Codes are E1xxx/W1xxx from `engine::catalogue` ([`CODES`] lists those this crate
//! emits). This crate reads files only in [`load`] and `host.rs`; it never writes,
//! never talks to the network, and never decides anything at run time.

mod diagnostic;
mod host;
mod model;
mod parse;
mod reader;
mod values;

use std::fmt;
use std::path::Path;

use engine::catalogue::{self as codes, CodeInfo};

pub use diagnostic::{render_all, summary, Diagnostic};
pub use host::{
    host_checks, host_checks_on, Host, PathKind, RealHost, Strictness, OCF_ROOT_DEFAULT,
    SYSTEMD_UNIT_DIRS,
};
pub use model::*;
pub use parse::{
    parse, ALERTS_MAX, API_PORT_DEFAULT, FAILBACK_DELAY_DEFAULT, FAILURE_TIMEOUT_DEFAULT,
    HEARTBEAT_INTERVAL_MIN, LEASE_TIMEOUT_MIN, LINK_PORT_DEFAULT, MIGRATION_THRESHOLD_DEFAULT,
    MONITOR_INTERVAL_DEFAULT, MONITOR_TIMEOUT_DEFAULT, NIC_MONITOR_INTERVAL_DEFAULT,
    PEER_TIMEOUT_HEARTBEATS_MIN, START_TIMEOUT_DEFAULT, STOP_TIMEOUT_DEFAULT,
};
pub use values::{format_duration, NAME_LENGTH_MAX};

/// The default configuration file.
pub const DEFAULT_PATH: &str = "/etc/tandem/cluster.toml";
/// Larger files are refused (E1031) before parsing.
pub const FILE_SIZE_MAX: u64 = 16 * 1024 * 1024;

/// Every code this crate can emit. A test checks that it matches the catalogue's 1xxx
/// area exactly and that each code has a test case.
pub const CODES: &[&CodeInfo] = &[
    &codes::CONFIG_SYNTAX,
    &codes::CONFIG_UNKNOWN_KEY,
    &codes::CONFIG_WRONG_TYPE,
    &codes::CONFIG_MISSING_KEY,
    &codes::CONFIG_MISSING_SECTION,
    &codes::CONFIG_DUPLICATE_NAME,
    &codes::CONFIG_INVALID_NAME,
    &codes::CONFIG_UNKNOWN_NODE,
    &codes::CONFIG_UNKNOWN_LINK,
    &codes::CONFIG_ADDRESS_FOR_DISK_LINK,
    &codes::CONFIG_MISSING_ADDRESS,
    &codes::CONFIG_DUPLICATE_ADDRESS,
    &codes::CONFIG_GROUP_WITHOUT_NODES,
    &codes::CONFIG_NODE_LISTED_TWICE,
    &codes::CONFIG_BAD_DURATION,
    &codes::CONFIG_ZERO_DURATION,
    &codes::CONFIG_BAD_IP,
    &codes::CONFIG_BAD_CIDR,
    &codes::CONFIG_BAD_PORT,
    &codes::CONFIG_BAD_SOCKET_ADDRESS,
    &codes::CONFIG_UNKNOWN_VALUE,
    &codes::CONFIG_UNKNOWN_RESOURCE_KIND,
    &codes::CONFIG_INVALID_VALUE,
    &codes::CONFIG_DISK_ARBITRATION_WITHOUT_DISK_LINK,
    &codes::CONFIG_WITNESS_WITHOUT_ADDRESS,
    &codes::CONFIG_PEER_TIMEOUT_TOO_SHORT,
    &codes::CONFIG_HEARTBEAT_INTERVAL_TOO_SHORT,
    &codes::CONFIG_LEASE_TIMEOUT_TOO_SHORT,
    &codes::CONFIG_MIGRATION_THRESHOLD_OUT_OF_RANGE,
    &codes::CONFIG_LIMIT_EXCEEDED,
    &codes::CONFIG_UNREADABLE,
    &codes::CONFIG_SPLIT_BRAIN_RISK,
    &codes::CONFIG_GROUP_SINGLE_NODE,
    &codes::CONFIG_SINGLE_LINK,
    &codes::CONFIG_WITNESS_IGNORED,
    &codes::CONFIG_DISK_ARBITRATION_MANY_NODES,
    &codes::CONFIG_NOT_IN_THIS_VERSION,
    &codes::HOST_PATH_MISSING,
    &codes::HOST_PATH_MISSING_WARNING,
    &codes::HOST_NOT_EXECUTABLE,
    &codes::HOST_NOT_EXECUTABLE_WARNING,
    &codes::HOST_DEVICE_MISSING,
    &codes::HOST_DEVICE_MISSING_WARNING,
    &codes::HOST_OCF_AGENT_MISSING,
    &codes::HOST_OCF_AGENT_MISSING_WARNING,
    &codes::HOST_INTERFACE_MISSING,
    &codes::HOST_INTERFACE_MISSING_WARNING,
    &codes::HOST_SYSTEMD_UNIT_MISSING,
    &codes::HOST_SYSTEMD_UNIT_MISSING_WARNING,
    &codes::HOST_SECRET_READABLE,
    &codes::HOST_SECRET_READABLE_WARNING,
];

/// What `tandem node` of this version cannot run although the file is valid (the
/// simulator models it): witness arbitration, E1107. `tandem validate` and `tandem node`
/// add these to their diagnostics and refuse the file; `tandem simulate` does not.
pub fn not_in_this_version(config: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if config.cluster.arbitration == engine::ArbitrationKind::Witness {
        out.push(Diagnostic {
            code: &codes::CONFIG_NOT_IN_THIS_VERSION,
            message: "witness arbitration is not available in this version of tandem".into(),
            file_name: config.file_name.as_str().into(),
            span: config.arbitration.kind_span.clone(),
            label: "tandem node cannot run this (tandem simulate models it)".into(),
            help: vec!["use kind = \"disk\" with a disk link".into()],
        });
    }
    out
}

/// A file that cannot be used: its text (to render the diagnostics against) and every
/// diagnostic (errors and warnings). `Display` renders them all, plain, with the
/// summary line, so `config::load(path)?` in an `anyhow` context prints everything.
#[derive(Clone, Debug)]
pub struct Invalid {
    pub file_name: String,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Invalid {
    /// All diagnostics and the summary, coloured when `color` is true.
    pub fn render(&self, color: bool) -> String {
        render_all(&self.diagnostics, &self.source, color)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render(false).trim_end())
    }
}

impl std::error::Error for Invalid {}

/// Reads and parses a file. An unreadable, oversized or non-UTF-8 file is an
/// [`Invalid`] with one E1031 diagnostic.
pub fn load(path: &Path) -> Result<(Config, Vec<Diagnostic>), Invalid> {
    let file_name = path.display().to_string();
    let unreadable = |source: String, span: model::Span, message: String, label: &str| Invalid {
        file_name: file_name.clone(),
        diagnostics: vec![Diagnostic {
            code: &codes::CONFIG_UNREADABLE,
            message,
            file_name: file_name.as_str().into(),
            span,
            label: label.to_string(),
            help: Vec::new(),
        }],
        source,
    };
    match std::fs::metadata(path) {
        Ok(m) if m.len() > FILE_SIZE_MAX => {
            return Err(unreadable(
                String::new(),
                0..0,
                format!(
                    "{file_name} is {} bytes, more than the {FILE_SIZE_MAX}-byte limit",
                    m.len()
                ),
                "",
            ))
        }
        Ok(m) if m.is_dir() => {
            return Err(unreadable(String::new(), 0..0, format!("{file_name} is a directory"), ""))
        }
        _ => {}
    }
    let bytes = std::fs::read(path).map_err(|e| {
        unreadable(String::new(), 0..0, format!("cannot read {file_name}: {e}"), "")
    })?;
    let source = match String::from_utf8(bytes) {
        Ok(source) => source,
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            // The lossy text has the same bytes up to the first invalid one.
            return Err(unreadable(
                text,
                at..at + 1,
                format!("{file_name} is not UTF-8 text"),
                "invalid UTF-8 byte here",
            ));
        }
    };
    parse(&source, &file_name).map_err(|diagnostics| Invalid {
        file_name: file_name.clone(),
        source: source.clone(),
        diagnostics,
    })
}
