//! Starting `tandem node` (`run`): the configuration and host checks, then every part
//! of the node opened in the order their starts depend on (agents, links and the disk
//! worker, the peers' sequences kept across restarts, the journal and the incarnation,
//! the node core with the administrative state restored, the control socket, the fence
//! guard), as Linux's platform parts ([`crate::linux`]); then the loop ([`crate::node`],
//! put together over any platform's parts by `Node::new`, here) runs until SIGTERM.
//! Errors before the loop starts are returned with their codes; nothing has been
//! changed on the host then.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arbiter::disk::{Block, Record};
use config::{Config, LinkConfig, ResourceParams};
use diskarea::Area;
use engine::catalogue::{self, Severity};
use engine::{ClusterSpec, Engine, GroupId, NodeId};
use nodecore::NodeCore;
use tokio::sync::mpsc;

use crate::access::{self, Local};
use crate::alarm::Alarm;
use crate::clock::Clock;
use crate::control::{self, Call};
use crate::diskio::DiskIo;
use crate::executor::{self, Agents};
use crate::guard::{GuardLink, GuardOptions};
use crate::journal;
use crate::linux::{Linux, LinuxAgents, ReadOnlyIoctl, Systemd, UdpLinks};
use crate::net::UdpLink;
use crate::node::{DiskLink, Node};
use crate::platform::{Clock as _, Parts, Platform, Receivers, Service as _};
use crate::seen::Seen;

/// What `tandem node` needs.
#[derive(Clone, Debug)]
pub struct Options {
    pub config: PathBuf,
    /// Default: the host name.
    pub name: Option<String>,
    /// Default: `cluster.state_dir` of the configuration.
    pub state_dir: Option<PathBuf>,
    /// Where the control and guard sockets live; default [`access::DEFAULT_RUNTIME_DIR`].
    pub runtime_dir: Option<PathBuf>,
    /// The group whose members may use the control socket besides root and the
    /// daemon's user (`--admin-group`).
    pub admin_group: Option<String>,
    /// The `tandem` executable, to start the fence guard with.
    pub program: PathBuf,
    /// A watchdog device for the fence guard to feed (`--watchdog /dev/watchdog`).
    pub watchdog: Option<PathBuf>,
}

/// Starts `tandem node`: checks everything, then runs until SIGTERM. Errors before the
/// loop starts (configuration, host checks, sockets, disk area) are returned with their
/// codes; nothing has been changed on the host then.
pub fn run(options: Options) -> anyhow::Result<()> {
    let (config, warnings) = config::load(&options.config).map_err(|invalid| {
        anyhow::anyhow!(
            "the configuration has errors; nothing was started\n{}",
            invalid.render(false)
        )
    })?;
    for w in &warnings {
        tracing::warn!("{}", w.render(&config.source).trim_end());
    }
    let mut problems = config::not_in_this_version(&config);
    problems.extend(config::host_checks(&config, config::Strictness::Deny));
    let errors: Vec<_> = problems.iter().filter(|d| d.code.severity == Severity::Error).collect();
    for d in problems.iter().filter(|d| d.code.severity != Severity::Error) {
        tracing::warn!("{}", d.render(&config.source).trim_end());
    }
    if !errors.is_empty() {
        let text: Vec<String> = errors.iter().map(|d| d.render(&config.source)).collect();
        anyhow::bail!(
            "this host cannot be a node of the cluster as configured; nothing was started\n{}",
            text.join("\n")
        );
    }
    let name = match &options.name {
        Some(name) => name.clone(),
        None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
    };
    let spec = Arc::new(config.cluster.clone());
    let me = spec.node_id(&name).with_context(|| {
        let names: Vec<_> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
        format!(
            "this node's name `{name}` is not in the configuration (nodes: {}); pass --name",
            names.join(", ")
        )
    })?;
    let state_dir = options.state_dir.clone().unwrap_or_else(|| config.state_dir.clone());
    let local = access::prepare(
        &state_dir,
        &config.key_file,
        options.runtime_dir.as_deref(),
        options.admin_group.as_deref(),
    )?;
    let key = wire::Key::from_file(&config.key_file).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the cluster key {}: {e} (create it with `tandem keygen` and copy it \
             to every node)",
            config.key_file.display()
        )
    })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()?;
    runtime.block_on(async move {
        let (mut node, receivers) =
            Node::start(config, spec, me, state_dir, local, key, &options).await?;
        node.run(receivers).await
    })
}

impl Node<Linux> {
    // Long because: it opens every part of the node in the order their starts depend
    // on (links, journal, node core, control socket, guard) and fills in the
    // node's fields once.
    pub(crate) async fn start(
        config: Config,
        spec: Arc<ClusterSpec>,
        me: NodeId,
        state_dir: PathBuf,
        local: Local,
        key: wire::Key,
        options: &Options,
    ) -> anyhow::Result<(Node<Linux>, Receivers)> {
        let config = Arc::new(config);
        let clock = Clock::new();
        let cluster_id = wire::ClusterId::from_name(&spec.name);
        let agents = Arc::new(Agents::build_with(&config, me, &state_dir, false)?);
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        let mut udp = BTreeMap::new();
        let mut disk = None;
        let (mut on_disk, mut parked) = (0, Vec::new());
        for link in spec.link_ids() {
            match config.link(link) {
                LinkConfig::Udp { .. } => {
                    let route = wire::Route { link, to: Some(me) };
                    let receiver = wire::Receiver::new(key.clone(), cluster_id, route);
                    let open = UdpLink::open(&config, me, link, receiver)?;
                    udp.insert(link, open);
                }
                LinkConfig::Disk { path } => {
                    let area = open_area(path, &spec)?;
                    (on_disk, parked) = own_host_record(&area, me);
                    let io = DiskIo::new(Arc::new(area), me, spec.nodes.len(), answers_tx.clone());
                    disk = Some((link, io));
                }
            }
        }
        // What an earlier run accepted stays refused (captured frames are replays).
        let (loaded, unread) = match crate::seen::load(&state_dir, &spec) {
            Ok(loaded) => (loaded, None),
            Err(e) => (BTreeMap::new(), Some(e)),
        };
        for receiver in udp.values_mut().map(|u: &mut UdpLink| &mut u.receiver) {
            for (node, newest) in &loaded {
                receiver.remember(*node, newest.incarnation, newest.sequence);
            }
        }
        let seen = Seen::start(&state_dir, &spec, &loaded)
            .context("starting the thread that keeps the peers' heartbeat state")?;

        let mut journal = journal::Writer::start(&state_dir, &spec.node(me).name)
            .with_context(|| format!("opening the journal in {}", state_dir.display()))?;
        let wall_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let incarnation = journal::next_incarnation(&state_dir, wall_micros, on_disk)?;
        let mut core: NodeCore<Engine, Vec<u8>> =
            NodeCore::new(spec.clone(), me, incarnation, clock.now(), None, Duration::ZERO);
        if let Some(admin) = journal::load_admin(&state_dir) {
            core.engine_mut().restore_admin(&admin);
        }
        if !parked.is_empty() {
            tracing::info!(
                "this node's previous run stopped in maintenance and parked the leases of {}: \
                 kept if their resources are found running, given back otherwise",
                parked.iter().map(|g| spec.group(*g).name.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        core.parked_at_start(parked);
        let (calls_tx, calls_rx) = mpsc::channel::<Call>(64);
        control::serve(&local.runtime_dir, local.access, calls_tx.clone())?;
        // The configuration's generations: the file recorded (a hand edit says so).
        let (configs, edited) = crate::configstore::Service::start(crate::configstore::Setup {
            config: &config,
            file: &options.config,
            state_dir: &state_dir,
            node: &spec.node(me).name,
            key: key.clone(),
            calls: calls_tx.clone(),
        })?;
        // The HTTPS API, on a thread of its own, through the same bounded channel.
        let api_address = config.nodes[me.0 as usize].api;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let apps = app_heartbeats(&spec, &agents);
        let consoles = spec.nodes.iter().zip(&config.nodes).map(|(n, c)| (n.name.clone(), c.api));
        let api = crate::api::start(
            &config.api,
            api_address,
            consoles.collect(),
            &state_dir,
            calls_tx,
            metrics.clone(),
            apps,
            Some(configs.clone()),
        )?;
        if let Some(api) = api {
            api.detach();
        }
        let (guard, guard_news) = GuardLink::start(
            GuardOptions {
                config: std::fs::canonicalize(&options.config)
                    .unwrap_or_else(|_| options.config.clone()),
                node: spec.node(me).name.clone(),
                state_dir: std::fs::canonicalize(&state_dir).unwrap_or_else(|_| state_dir.clone()),
                runtime_dir: local.runtime_dir,
                watchdog: options.watchdog.clone(),
            },
            options.program.clone(),
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot start the fence guard ({} fence-guard): {e}",
                catalogue::GUARD_UNAVAILABLE.code,
                options.program.display()
            )
        })?;
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let lock_standby = lock_standby_devices(&config, me);
        let code = &catalogue::DAEMON_STARTED;
        let message = format!(
            "tandem {} started as node {} (incarnation {incarnation})",
            env!("CARGO_PKG_VERSION"),
            spec.node(me).name
        );
        tracing::info!(code = code.code, "{message}");
        journal.append(journal::own(code, &spec.node(me).name, message));
        if let Some(message) = edited {
            let code = &catalogue::CONFIG_EDITED_BY_HAND;
            tracing::warn!(code = code.code, "{}: {message}", code.code);
            journal.append(journal::own(code, &spec.node(me).name, message));
        }
        journal.commit();
        let unread = unread.map(|e| {
            let path = state_dir.join(crate::seen::FILE);
            format!("cannot read {}: {e}; starting without it", path.display())
        });
        let parts = Parts::<Linux> {
            clock,
            links: UdpLinks::new(udp),
            disk,
            guard,
            agents: LinuxAgents { agents, done: done_tx, quiet: executor::Quiet::default() },
            standby: ReadOnlyIoctl,
            timer: Alarm::new()?,
            service: Systemd::new()?,
        };
        let shell = Shell { spec, me, core, journal, seen, key, lock_standby, newest: loaded };
        let mut node = Node::new(shell, parts);
        node.metrics = metrics;
        node.configs = Some(configs);
        node.alerts = crate::alerting::Alerting::start(&config, &node.spec.node(me).name.clone())?;
        if let Some(message) = unread {
            node.journal_own(&catalogue::SEEN_UNKEPT, None, message);
        }
        node.service.ready();
        let receivers =
            Receivers { answers: answers_rx, done: done_rx, calls: calls_rx, guard: guard_news };
        Ok((node, receivers))
    }
}

/// What the node is besides its platform, as its start made it.
pub(crate) struct Shell {
    pub(crate) spec: Arc<ClusterSpec>,
    pub(crate) me: NodeId,
    pub(crate) core: NodeCore<Engine, Vec<u8>>,
    pub(crate) journal: journal::Writer,
    pub(crate) seen: Seen,
    pub(crate) key: wire::Key,
    pub(crate) lock_standby: BTreeMap<GroupId, Vec<PathBuf>>,
    /// Each peer's newest incarnation and sequence an earlier run accepted: refused on
    /// the disk link too (captured frames are replays).
    pub(crate) newest: BTreeMap<NodeId, crate::seen::Newest>,
}

impl<P: Platform> Node<P> {
    /// The loop over `parts`, not yet running ([`Node::run`]).
    pub(crate) fn new(shell: Shell, parts: Parts<P>) -> Node<P> {
        let Shell { spec, me, core, journal, seen, key, lock_standby, newest } = shell;
        let cluster_id = wire::ClusterId::from_name(&spec.name);
        let disk = parts.disk.map(|(link, io)| {
            let route = wire::Route { link, to: None };
            let mut receiver = wire::Receiver::new(key.clone(), cluster_id, route);
            for (node, newest) in &newest {
                receiver.remember(*node, newest.incarnation, newest.sequence);
            }
            DiskLink { link, io, receiver }
        });
        let now = parts.clock.now();
        Node {
            admin_saved: core.engine().admin_state().clone(),
            spec,
            me,
            clock: parts.clock,
            core,
            journal,
            replies: Vec::new(),
            agents: parts.agents,
            key,
            cluster_id,
            links: parts.links,
            disk,
            seen,
            guard: parts.guard,
            loss: BTreeMap::new(),
            too_large_reported: false,
            alerts: Default::default(),
            metrics: Default::default(),
            configs: None,
            peer_configs: Default::default(),
            lock_standby,
            standby: parts.standby,
            service: parts.service,
            next_watchdog: now,
            timer: parts.timer,
            loop_ran: now,
            wait_until: now,
            guard_fired: false,
        }
    }
}

/// The incarnation in this node's host record on the shared disk (0: none written):
/// the next one must be above it even if the state dir was lost or restored and the
/// wall clock is behind (`nodecore::incarnation`); and the groups it lists if it is
/// parked (the previous run stopped in maintenance: `arbiter::disk`, "Parking"). A node
/// that cannot read it does not join yet: it retries every second, saying so every ten.
fn own_host_record(area: &Area, me: NodeId) -> (u64, Vec<GroupId>) {
    let mut tries = 0u64;
    loop {
        match area.read_record(Block::Host(me)) {
            Ok(Record::Host(host)) if host.parked => return (host.incarnation, host.groups),
            Ok(Record::Host(host)) => return (host.incarnation, Vec::new()),
            Ok(_) => return (0, Vec::new()),
            Err(e) => {
                if tries.is_multiple_of(10) {
                    tracing::warn!(
                        "cannot read this node's host record on the shared disk ({e}): not \
                         joining until it can be read (its incarnation must be above the one \
                         there); retrying every second"
                    );
                }
                tries += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// `POST /v1/apps/{name}/heartbeat`'s way to this node's `app` agents, by resource name
/// (unique in the cluster for `app` resources: E1006 otherwise).
fn app_heartbeats(spec: &ClusterSpec, agents: &Agents) -> crate::api::AppHeartbeats {
    let mut by_name = BTreeMap::new();
    for group in spec.group_ids() {
        for (index, resource) in spec.group(group).resources.iter().enumerate() {
            let id = engine::ResourceId(index as u16);
            if let (engine::ResourceKind::App, Some(agent)) = (resource.kind, agents.get(group, id))
            {
                by_name.insert(resource.name.clone(), agent.clone());
            }
        }
    }
    Arc::new(move |name: &str, status: Option<&str>| match by_name.get(name) {
        Some(agent) if agent.record_heartbeat(status) => Ok(()),
        _ => Err(format!("no app resource `{name}` on this node")),
    })
}

fn open_area(path: &Path, spec: &ClusterSpec) -> anyhow::Result<Area> {
    let fail = |e: diskarea::AreaError| {
        anyhow::anyhow!(
            "{}: the disk link's area {} cannot be used: {e}\n  = help: {}",
            catalogue::DISK_FOREIGN.code,
            path.display(),
            catalogue::DISK_FOREIGN.fix
        )
    };
    let area = Area::open(path, &spec.name).map_err(fail)?;
    area.check_layout(spec.nodes.len(), spec.groups.len()).map_err(fail)?;
    Ok(area)
}

/// The `lock_standby` file systems' devices of the groups this node may run.
fn lock_standby_devices(config: &Config, me: NodeId) -> BTreeMap<GroupId, Vec<PathBuf>> {
    let spec = &config.cluster;
    let mut out = BTreeMap::new();
    for g in spec.group_ids().filter(|g| spec.group(*g).nodes.contains(&me)) {
        let devices: Vec<PathBuf> = config
            .group(g)
            .resources
            .iter()
            .filter_map(|r| match &r.params {
                ResourceParams::Filesystem(fs) if fs.lock_standby => Some(fs.device.value.clone()),
                _ => None,
            })
            .collect();
        if !devices.is_empty() {
            out.insert(g, devices);
        }
    }
    out
}
