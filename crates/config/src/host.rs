//! Host checks: does this machine have what a valid [`Config`] names — the cluster key,
//! devices and the disk link's area, network interfaces, scripts and programs, init
//! scripts, systemd units, OCF agents, alert scripts and files (a password file must be
//! private).
//!
//! `tandem validate` reports them as warnings (W12xx: it may run on a machine that is
//! not a node); the daemon as errors (E12xx: it refuses to start a node that could not
//! run its groups). The machine is reached only through the [`Host`] trait, so tests
//! use a fake one; [`RealHost`] is the one place here that touches the file system.
//! Each missing thing is reported once, at its first mention.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::catalogue::{self as codes, CodeInfo};
use engine::LinkKind;

use crate::diagnostic::Diagnostic;
use crate::model::{AlertTarget, Config, LinkConfig, ProcessParams, ResourceParams, Span, Spanned};

/// Whether host problems are warnings (W12xx) or errors (E12xx).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strictness {
    /// `tandem validate`: the machine may not be a node.
    Warn,
    /// The daemon: this machine is the node.
    Deny,
}

/// What a path is, as far as the checks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    File {
        executable: bool,
    },
    Directory,
    /// A block or character device.
    Device,
    Other,
}

/// The machine as the checks see it.
pub trait Host {
    /// `None` when the path does not exist (following symbolic links).
    fn path_kind(&self, path: &Path) -> Option<PathKind>;
    /// Whether a network interface of this name exists.
    fn interface_exists(&self, name: &str) -> bool;
    /// An environment variable (`PATH`, `OCF_ROOT`).
    fn var(&self, name: &str) -> Option<String>;
    /// The permission bits of a path (`0o600`), `None` when it does not exist.
    fn mode(&self, path: &Path) -> Option<u32>;
}

/// This machine.
pub struct RealHost;

impl Host for RealHost {
    fn path_kind(&self, path: &Path) -> Option<PathKind> {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let metadata = std::fs::metadata(path).ok()?;
        let file_type = metadata.file_type();
        Some(if file_type.is_dir() {
            PathKind::Directory
        } else if file_type.is_file() {
            PathKind::File { executable: metadata.permissions().mode() & 0o111 != 0 }
        } else if file_type.is_block_device() || file_type.is_char_device() {
            PathKind::Device
        } else {
            PathKind::Other
        })
    }

    fn interface_exists(&self, name: &str) -> bool {
        Path::new("/sys/class/net").join(name).exists()
    }

    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn mode(&self, path: &Path) -> Option<u32> {
        use std::os::unix::fs::PermissionsExt;
        Some(std::fs::metadata(path).ok()?.permissions().mode() & 0o7777)
    }
}

/// Where systemd looks for unit files, most specific first.
pub const SYSTEMD_UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
/// `OCF_ROOT` when the variable is not set.
pub const OCF_ROOT_DEFAULT: &str = "/usr/lib/ocf";

/// Checks this machine.
pub fn host_checks(config: &Config, strictness: Strictness) -> Vec<Diagnostic> {
    host_checks_on(config, strictness, &RealHost)
}

/// Checks the machine `host` describes. Diagnostics are in file order.
pub fn host_checks_on(config: &Config, strictness: Strictness, host: &dyn Host) -> Vec<Diagnostic> {
    let mut checker = Checker {
        host,
        strictness,
        file_name: config.file_name.as_str().into(),
        seen: HashSet::new(),
        out: Vec::new(),
    };
    checker.file(
        &config.key_file,
        &config.key_file.span,
        "cluster key",
        "",
        false,
        "run `tandem keygen` and copy the key to every node",
    );
    for (link, spec) in config.links.iter().zip(&config.cluster.links) {
        if let (LinkConfig::Disk { path }, LinkKind::Disk) = (link, spec.kind) {
            checker.device(path, &path.span, "disk area", &format!(" of link `{}`", spec.name));
        }
    }
    for (group, spec) in config.groups.iter().zip(&config.cluster.groups) {
        for (resource, rspec) in group.resources.iter().zip(&spec.resources) {
            checker.resource(&resource.params, &rspec.name);
        }
    }
    for alert in &config.alerts {
        match &alert.target {
            AlertTarget::Script { path } => {
                checker.file(path, &path.span, "alert script", "", true, "");
            }
            AlertTarget::Email { password_file, ca_file, .. } => {
                if let Some(path) = password_file {
                    checker.secret(path, "alert password file");
                }
                if let Some(path) = ca_file {
                    checker.file(path, &path.span, "alert CA file", "", false, "");
                }
            }
            AlertTarget::Webhook { ca_file, .. } => {
                if let Some(path) = ca_file {
                    checker.file(path, &path.span, "alert CA file", "", false, "");
                }
            }
        }
    }
    let mut out = checker.out;
    out.sort_by_key(|d| d.span.start);
    out
}

struct Checker<'h> {
    host: &'h dyn Host,
    strictness: Strictness,
    file_name: Arc<str>,
    /// (code, subject) already reported.
    seen: HashSet<(&'static str, String)>,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn report(
        &mut self,
        codes: (&'static CodeInfo, &'static CodeInfo),
        subject: &str,
        span: &Span,
        message: String,
        label: &str,
        help: &str,
    ) {
        let code = match self.strictness {
            Strictness::Deny => codes.0,
            Strictness::Warn => codes.1,
        };
        if !self.seen.insert((code.code, subject.to_string())) {
            return;
        }
        self.out.push(Diagnostic {
            code,
            message,
            file_name: self.file_name.clone(),
            span: span.clone(),
            label: label.to_string(),
            help: if help.is_empty() { Vec::new() } else { vec![help.to_string()] },
        });
    }

    /// A file holding a secret: it exists and only its owner may read it.
    fn secret(&mut self, path: &Spanned<PathBuf>, what: &str) {
        self.file(path, &path.span, what, "", false, "");
        let shown = path.display().to_string();
        if let Some(mode) = self.host.mode(path).filter(|m| m & 0o077 != 0) {
            self.report(
                (&codes::HOST_SECRET_READABLE, &codes::HOST_SECRET_READABLE_WARNING),
                &shown,
                &path.span,
                format!(
                    "{what} {shown} has mode {:o}: others than its owner may read it",
                    mode & 0o777
                ),
                "readable by others",
                &format!("chown root {shown} && chmod 600 {shown}"),
            );
        }
    }

    /// A regular file, optionally executable.
    /// `owner` ends the subject: "" or " of resource `x`".
    fn file(
        &mut self,
        path: &Path,
        span: &Span,
        what: &str,
        owner: &str,
        executable: bool,
        help: &str,
    ) {
        let shown = path.display().to_string();
        match self.host.path_kind(path) {
            None => self.report(
                (&codes::HOST_PATH_MISSING, &codes::HOST_PATH_MISSING_WARNING),
                &shown,
                span,
                format!("{what} {shown}{owner} does not exist on this host"),
                "not found",
                help,
            ),
            Some(PathKind::File { executable: false }) if executable => self.report(
                (&codes::HOST_NOT_EXECUTABLE, &codes::HOST_NOT_EXECUTABLE_WARNING),
                &shown,
                span,
                format!("{what} {shown}{owner} is not executable"),
                "no execute permission",
                &format!("chmod +x {shown}"),
            ),
            Some(_) => {}
        }
    }

    fn device(&mut self, path: &Path, span: &Span, what: &str, owner: &str) {
        if self.host.path_kind(path).is_none() {
            let shown = path.display().to_string();
            self.report(
                (&codes::HOST_DEVICE_MISSING, &codes::HOST_DEVICE_MISSING_WARNING),
                &shown,
                span,
                format!("{what} {shown}{owner} does not exist on this host"),
                "not found",
                "",
            );
        }
    }

    fn interface(&mut self, name: &str, span: &Span) {
        if !self.host.interface_exists(name) {
            self.report(
                (&codes::HOST_INTERFACE_MISSING, &codes::HOST_INTERFACE_MISSING_WARNING),
                name,
                span,
                format!("network interface `{name}` does not exist on this host"),
                "not in /sys/class/net",
                "",
            );
        }
    }

    fn resource(&mut self, params: &ResourceParams, name: &str) {
        match params {
            ResourceParams::Filesystem(fs) => {
                self.device(
                    &fs.device,
                    &fs.device.span,
                    "device",
                    &format!(" of resource `{name}`"),
                );
            }
            ResourceParams::Ip(ip) => {
                if let Some(interface) = &ip.interface {
                    self.interface(interface, &interface.span);
                }
            }
            ResourceParams::Nic { interface } => self.interface(interface, &interface.span),
            ResourceParams::Process(process) => self.process(process, name),
            ResourceParams::Script { path } => {
                self.file(path, &path.span, "script", &format!(" of resource `{name}`"), true, "");
            }
            ResourceParams::Lsb { service } => {
                let path = Path::new("/etc/init.d").join(&service.value);
                self.file(
                    &path,
                    &service.span,
                    "init script",
                    &format!(" of resource `{name}`"),
                    true,
                    "",
                );
            }
            ResourceParams::Systemd { unit } => self.systemd_unit(unit, name),
            ResourceParams::Ocf(ocf) => {
                let root = self.host.var("OCF_ROOT").filter(|r| !r.is_empty());
                let root = root.as_deref().unwrap_or(OCF_ROOT_DEFAULT);
                let path =
                    Path::new(root).join("resource.d").join(&ocf.provider).join(&ocf.agent_type);
                let usable =
                    matches!(self.host.path_kind(&path), Some(PathKind::File { executable: true }));
                if !usable {
                    let shown = path.display().to_string();
                    self.report(
                        (&codes::HOST_OCF_AGENT_MISSING, &codes::HOST_OCF_AGENT_MISSING_WARNING),
                        &shown,
                        &ocf.agent_span,
                        format!(
                            "OCF agent {}:{} of resource `{name}` is not installed on this host",
                            ocf.provider, ocf.agent_type
                        ),
                        &format!("no executable {shown}"),
                        "",
                    );
                }
            }
            ResourceParams::App { .. } => {}
        }
    }

    /// A process resource: its working directory exists, and its program (an absolute
    /// path, or a name looked up in `PATH`) is an executable file.
    fn process(&mut self, process: &ProcessParams, name: &str) {
        let program = &process.command[0];
        let span = &process.command.span;
        let owner = format!(" of resource `{name}`");
        if let Some(cwd) = &process.cwd {
            if self.host.path_kind(cwd) != Some(PathKind::Directory) {
                let shown = cwd.display().to_string();
                self.report(
                    (&codes::HOST_PATH_MISSING, &codes::HOST_PATH_MISSING_WARNING),
                    &shown,
                    &cwd.span,
                    format!("working directory {shown} of resource `{name}` does not exist on this host"),
                    "no such directory",
                    "",
                );
            }
        }
        if program.starts_with('/') {
            self.file(Path::new(program), span, "program", &owner, true, "");
        } else if !program.contains('/') {
            let path = self.host.var("PATH").unwrap_or_default();
            let found = path
                .split(':')
                .filter(|dir| !dir.is_empty())
                .map(|dir| PathBuf::from(dir).join(program))
                .find(|p| matches!(self.host.path_kind(p), Some(PathKind::File { .. })));
            match found {
                Some(p) => self.file(&p, span, "program", &owner, true, ""),
                None => self.report(
                    (&codes::HOST_PATH_MISSING, &codes::HOST_PATH_MISSING_WARNING),
                    program,
                    span,
                    format!("program `{program}`{owner} is not found in PATH on this host"),
                    "not found",
                    "write the program's absolute path",
                ),
            }
        }
        // A relative path with a '/' is resolved against cwd when started;
        // checked there, not here.
    }

    /// A systemd resource: its unit (or the template of an instance) is installed.
    fn systemd_unit(&mut self, unit: &Spanned<String>, name: &str) {
        let full =
            if unit.contains('.') { unit.value.clone() } else { format!("{}.service", unit.value) };
        // A template instance "name@instance.service" is served by "name@.service".
        let template = full.split_once('@').and_then(|(prefix, rest)| {
            rest.rsplit_once('.').map(|(_, suffix)| format!("{prefix}@.{suffix}"))
        });
        let exists = SYSTEMD_UNIT_DIRS.iter().any(|dir| {
            std::iter::once(&full)
                .chain(template.as_ref())
                .any(|u| self.host.path_kind(&Path::new(dir).join(u)).is_some())
        });
        if !exists {
            self.report(
                (&codes::HOST_SYSTEMD_UNIT_MISSING, &codes::HOST_SYSTEMD_UNIT_MISSING_WARNING),
                &full,
                &unit.span,
                format!("systemd unit `{full}` of resource `{name}` is not installed on this host"),
                "no unit file",
                "",
            );
        }
    }
}
