//! tandem's resource agents: the only code in tandem that changes the host. Each
//! resource kind is one implementation of [`Agent`] (start, stop, monitor, probe), built
//! from the resource's `config::ResourceParams` by [`build`]. This crate decides
//! nothing: it runs what the engine asks (through the daemon) and reports an
//! [`engine::OpResult`]; it must not retry, restart or interpret failures.
//!
//! **Blocking, not async.** Every operation is a blocking call that returns within its
//! timeout (plus a small, bounded reaping margin). The daemon runs each call in
//! `tokio::task::spawn_blocking`. Reasons: an operation is a child process to supervise
//! and kill, which std's `Command`/`Child` and a poll loop do simply and portably; the
//! crate then needs no runtime, its tests need none, and a slow agent can never stall
//! the daemon's reactor. Operations on one resource are serialised by the engine; the
//! agents are `Send + Sync` so that the daemon may hold them in `Arc`s.
//!
//! **Timeouts.** Every operation takes a timeout. A script or OCF agent that has not
//! finished by then is killed with its whole process group (every agent process runs
//! in a new process group) and the operation answers [`OpResult::Timeout`], which the
//! engine reports as `W4117`. Agents that run no child (`ip`, `systemd`, `app`, `nic`)
//! bound every wait by the deadline instead (socket timeouts, D-Bus call timeouts), so
//! no call outlives its timeout by more than a bounded margin.
//!
//! **Codes.** A failure the catalogue names starts its [`OpResult::Failed`] text with
//! the code (`E4301: 10.0.0.50 is already answered by 02:...`): `E4301`-`E4302` for
//! `ip`, `E4303`-`E4305` for `systemd`, `E4306` for a system program that is not
//! installed (the text names its Debian package), `E4307` for a `process` start whose
//! state file could not be written.
//!
//! Kinds implemented: `process` (re-attaching to its process after a daemon restart
//! through a state file), `script`, `lsb`, `ocf`, `nic` (monitor-only, from sysfs),
//! `app` (sd_notify heartbeats on a Unix datagram socket, plus the daemon's
//! [`Agent::record_heartbeat`]), `filesystem` (mount(8)/umount(8), killing the
//! processes that hold a busy filesystem, and the `lock_standby` read-only flag:
//! [`filesystem::set_read_only`]), `ip` (rtnetlink, a duplicate-address probe before
//! adding and gratuitous ARPs / unsolicited neighbour advertisements after: see [`ip`])
//! and `systemd` (StartUnit/StopUnit over D-Bus, `E4303` where systemd is not the init
//! system: see [`systemd`]). Every kind now has an agent; [`BuildError::NotImplemented`]
//! stays for kinds added later.
//!
//! **The `app` socket's owner.** When the group's application runs as another user (a
//! `process` resource's `user`), the daemon builds the `app` agent with
//! `Context::with_socket_owner(socket_user(group))` so that the application may send
//! to the socket: see [`socket_user`] and [`app`].
//!
//! **Details.** [`OpResult::NotRunning`] carries no text; an agent with more to say
//! (why an interface is down, an application's last STATUS) keeps it for
//! [`Agent::detail`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use config::ResourceParams;
use engine::{OpKind, OpResult, ResourceKind};

pub mod app;
pub mod exec;
pub mod files;
pub mod filesystem;
pub mod ip;
mod neighbour;
mod netlink;
mod netns;
pub mod nic;
pub mod ocf;
pub mod process;
pub mod script;
pub mod systemd;

/// Where OCF resource agents live unless the context says otherwise.
pub const DEFAULT_OCF_ROOT: &str = "/usr/lib/ocf";
/// Where LSB init scripts live unless the context says otherwise.
pub const DEFAULT_INIT_DIR: &str = "/etc/init.d";

/// One resource's agent. Every call returns within `timeout` plus a bounded margin for
/// killing and reaping a hung agent.
pub trait Agent: Send + Sync {
    /// Start the resource; starting a running resource is fine ([`OpResult::Ok`]).
    fn start(&self, timeout: Duration) -> OpResult;
    /// Stop the resource; stopping a stopped resource is fine.
    fn stop(&self, timeout: Duration) -> OpResult;
    /// Is the resource running? [`OpResult::Ok`] yes, [`OpResult::NotRunning`] no.
    fn monitor(&self, timeout: Duration) -> OpResult;
    /// A one-time check of whether the resource runs here; by default a monitor.
    fn probe(&self, timeout: Duration) -> OpResult {
        self.monitor(timeout)
    }
    /// Why the last monitor or probe answered as it did, when the agent has more to say
    /// than [`OpResult::NotRunning`] carries (`nic`: "interface eth1 is down"; `app`:
    /// the application's last STATUS); for the daemon's log and status output.
    fn detail(&self) -> Option<String> {
        None
    }
    /// The Unix datagram socket on which this agent hears sd_notify messages, for the
    /// daemon to pass as `NOTIFY_SOCKET` to what the group starts: `app` only.
    fn notify_socket(&self) -> Option<PathBuf> {
        None
    }
    /// A heartbeat that reached the daemon another way (`POST
    /// /v1/apps/{name}/heartbeat`), with the application's status text if it sent one.
    /// Answers whether this agent takes heartbeats (`app` only).
    fn record_heartbeat(&self, _status: Option<&str>) -> bool {
        false
    }
    /// Runs `op`: what the daemon calls for [`engine::Output::Operation`].
    fn run(&self, op: OpKind, timeout: Duration) -> OpResult {
        match op {
            OpKind::Start => self.start(timeout),
            OpKind::Stop => self.stop(timeout),
            OpKind::Monitor => self.monitor(timeout),
            OpKind::Probe => self.probe(timeout),
        }
    }
}

/// What an agent needs to know besides its resource's parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The resource's name, unique in the cluster: `OCF_RESOURCE_INSTANCE`, and the
    /// stem of its log file.
    pub instance: String,
    /// Where `<instance>.log` (the output of the resource's processes and agents) is
    /// written, and the agents' state: `<instance>.pid` (`process`) and
    /// `<instance>.notify` (`app`'s socket); created when missing.
    pub log_dir: PathBuf,
    /// `OCF_ROOT`; default [`DEFAULT_OCF_ROOT`].
    pub ocf_root: PathBuf,
    /// Where `lsb` services' scripts are; default [`DEFAULT_INIT_DIR`].
    pub init_dir: PathBuf,
    /// `app`: the (uid, gid) its notify socket is given to, so that an application
    /// running as that user (a `process` resource's `user`) may send to it; `None`: the
    /// socket stays the daemon's. Set with [`Context::with_socket_owner`].
    pub socket_owner: Option<(u32, u32)>,
}

impl Context {
    /// A context with the default OCF root and init directory.
    pub fn new(instance: impl Into<String>, log_dir: impl Into<PathBuf>) -> Context {
        Context {
            instance: instance.into(),
            log_dir: log_dir.into(),
            ocf_root: PathBuf::from(DEFAULT_OCF_ROOT),
            init_dir: PathBuf::from(DEFAULT_INIT_DIR),
            socket_owner: None,
        }
    }

    /// The same context with the `app` notify socket given to `user` (a name from the
    /// host's user database), or why not: an unknown user.
    pub fn with_socket_owner(mut self, user: &str) -> Result<Context, BuildError> {
        match nix::unistd::User::from_name(user) {
            Ok(Some(found)) => {
                self.socket_owner = Some((found.uid.as_raw(), found.gid.as_raw()));
                Ok(self)
            }
            _ => Err(BuildError::UnknownUser(user.to_string())),
        }
    }

    /// The file the resource's processes and agents write to.
    pub fn log_file(&self) -> PathBuf {
        self.log_dir.join(format!("{}.log", self.instance))
    }

    /// `app`: the sd_notify socket, `<log dir>/<instance>.notify`.
    pub fn notify_socket(&self) -> PathBuf {
        self.log_dir.join(format!("{}.notify", self.instance))
    }
}

/// Why no agent could be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// This kind has no agent yet.
    NotImplemented(ResourceKind),
    /// `process`: the `user` does not exist on this host.
    UnknownUser(String),
    /// `process`: the `command` is empty.
    EmptyCommand,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NotImplemented(kind) => {
                write!(f, "resources of kind `{}` are not implemented yet", kind.as_str())
            }
            BuildError::UnknownUser(user) => write!(f, "no user `{user}` on this host"),
            BuildError::EmptyCommand => write!(f, "the command is empty"),
        }
    }
}

impl std::error::Error for BuildError {}

/// The kind of resource `params` describe.
pub fn kind_of(params: &ResourceParams) -> ResourceKind {
    match params {
        ResourceParams::Filesystem(_) => ResourceKind::Filesystem,
        ResourceParams::Ip(_) => ResourceKind::Ip,
        ResourceParams::Nic { .. } => ResourceKind::Nic,
        ResourceParams::Process(_) => ResourceKind::Process,
        ResourceParams::Script { .. } => ResourceKind::Script,
        ResourceParams::Lsb { .. } => ResourceKind::Lsb,
        ResourceParams::Systemd { .. } => ResourceKind::Systemd,
        ResourceParams::Ocf(_) => ResourceKind::Ocf,
        ResourceParams::App { .. } => ResourceKind::App,
    }
}

/// The user an `app` resource's notify socket must belong to, from its group's
/// resources: the `user` of the group's first `process` resource that sets one (the
/// application that will send heartbeats runs as that user). `None`: no process sets a
/// user, and the socket stays the daemon's. Pass it to [`Context::with_socket_owner`]
/// when building the group's `app` agent.
pub fn socket_user<'a>(group: impl IntoIterator<Item = &'a ResourceParams>) -> Option<&'a str> {
    group.into_iter().find_map(|params| match params {
        ResourceParams::Process(p) => p.user.as_deref(),
        _ => None,
    })
}

/// The agent for the resource described by `params`.
pub fn build(params: &ResourceParams, context: &Context) -> Result<Box<dyn Agent>, BuildError> {
    match params {
        ResourceParams::Process(p) => {
            Ok(Box::new(process::ProcessAgent::new(p, context)?) as Box<dyn Agent>)
        }
        ResourceParams::Script { path } => {
            Ok(Box::new(script::ScriptAgent::new(path.value.clone(), "status", context)))
        }
        ResourceParams::Lsb { service } => Ok(Box::new(script::ScriptAgent::new(
            context.init_dir.join(&service.value),
            "status",
            context,
        ))),
        ResourceParams::Ocf(p) => Ok(Box::new(ocf::OcfAgent::new(p, context))),
        ResourceParams::Systemd { unit } => {
            Ok(Box::new(systemd::SystemdAgent::new(unit.value.clone())))
        }
        ResourceParams::Nic { interface } => {
            Ok(Box::new(nic::NicAgent::new(interface.value.clone())))
        }
        ResourceParams::App { deadline } => Ok(Box::new(app::AppAgent::new(*deadline, context))),
        ResourceParams::Filesystem(p) => Ok(Box::new(filesystem::FilesystemAgent::new(p, context))),
        ResourceParams::Ip(p) => Ok(Box::new(ip::IpAgent::new(p, context))),
    }
}
