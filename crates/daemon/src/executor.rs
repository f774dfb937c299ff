//! The executor: runs the engine's agent operations (`Output::Operation`) on tokio's
//! blocking pool, one blocking call per operation, and answers each with
//! `Input::Operation`. Agents enforce their own timeouts (they kill a hung child); the
//! executor adds a last bound — the operation's timeout plus [`KILL_MARGIN`] — after
//! which it answers [`OpResult::Timeout`] even if the agent call never returns.
//!
//! **Quiet monitors.** A monitor is the one operation that runs all the time, and one
//! that finds its resource running (`Ok`) is no news: its answer waits in [`Quiet`] for
//! the loop's next wake-up (at idle the next heartbeat tick, which the engine issues
//! monitors with) instead of waking the loop by itself. Any other answer is sent at
//! once. A monitor runs wholly on the blocking pool (the loop is not woken when the
//! agent returns); one that hangs is timed out by the engine at its own deadline.
//!
//! [`Agents`] builds the agent of every resource of every group this node may run, once,
//! at start (a resource that cannot be built stops the daemon from starting). Processes
//! it starts get `TANDEM_NODE`, `TANDEM_GROUP` and `TANDEM_RESOURCE` in their
//! environment (unless the configuration sets them), and `NOTIFY_SOCKET` when their
//! group has an `app` resource.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agents::{Agent, Context};
use config::{Config, ResourceParams};
use engine::{GroupId, NodeId, OpId, OpKind, OpResult, ResourceId};
use tokio::sync::mpsc;

/// Time beyond an operation's timeout after which the executor gives up on the agent.
pub const KILL_MARGIN: Duration = Duration::from_secs(2);

/// The directory, under the state directory, for resources' logs, pid files and sockets.
pub const RESOURCES_DIR: &str = "resources";

/// The agent of every resource this node may run.
pub struct Agents {
    agents: BTreeMap<(GroupId, ResourceId), Arc<dyn Agent>>,
}

impl Agents {
    /// Every agent of the node's groups. `app` resources are left out when `for_guard`
    /// (their socket belongs to the daemon, and they have nothing to stop).
    pub fn build_with(
        config: &Config,
        me: NodeId,
        state_dir: &Path,
        for_guard: bool,
    ) -> anyhow::Result<Agents> {
        let spec = &config.cluster;
        let log_dir = state_dir.join(RESOURCES_DIR);
        std::fs::create_dir_all(&log_dir)?;
        let mut agents = BTreeMap::new();
        for g in spec.group_ids().filter(|g| spec.group(*g).nodes.contains(&me)) {
            // What the group starts hears of its `app` resource's socket (sd_notify).
            let notify_socket = config.group(g).resources.iter().enumerate().find_map(|(i, r)| {
                matches!(r.params, ResourceParams::App { .. }).then(|| {
                    let name = &spec.group(g).resource(ResourceId(i as u16)).name;
                    Context::new(name.clone(), log_dir.clone()).notify_socket()
                })
            });
            for (index, resource) in config.group(g).resources.iter().enumerate() {
                let r = ResourceId(index as u16);
                let mut params = resource.params.clone();
                if let ResourceParams::Process(p) = &mut params {
                    // As Pacemaker's OCF_RESKEY_CRM_meta_on_node: where it runs.
                    let env = [
                        ("TANDEM_NODE", spec.node(me).name.clone()),
                        ("TANDEM_GROUP", spec.group(g).name.clone()),
                        ("TANDEM_RESOURCE", spec.group(g).resource(r).name.clone()),
                    ];
                    for (key, value) in env {
                        p.env.entry(key.to_string()).or_insert(value);
                    }
                    if let Some(socket) = &notify_socket {
                        p.env
                            .entry("NOTIFY_SOCKET".to_string())
                            .or_insert_with(|| socket.display().to_string());
                    }
                }
                let resource = config::ResourceConfig { span: resource.span.clone(), params };
                if for_guard && matches!(resource.params, ResourceParams::App { .. }) {
                    continue;
                }
                let name = &spec.group(g).resource(r).name;
                let mut context = Context::new(name.clone(), log_dir.clone());
                if matches!(resource.params, ResourceParams::App { .. }) {
                    // The application may run as another user: it must be able to send.
                    let params = config.group(g).resources.iter().map(|r| &r.params);
                    if let Some(user) = agents::socket_user(params) {
                        context = context
                            .with_socket_owner(user)
                            .map_err(|e| anyhow::anyhow!("resource `{name}`: {e}"))?;
                    }
                }
                let agent = agents::build(&resource.params, &context).map_err(|e| {
                    anyhow::anyhow!("resource `{name}` of group `{}`: {e}", spec.group(g).name)
                })?;
                agents.insert((g, r), Arc::from(agent));
            }
        }
        Ok(Agents { agents })
    }

    /// The guard's agents (see [`Agents::build_with`]).
    pub fn build(config: &Config, me: NodeId, state_dir: &Path) -> anyhow::Result<Agents> {
        Agents::build_with(config, me, state_dir, true)
    }

    pub fn get(&self, group: GroupId, resource: ResourceId) -> Option<&Arc<dyn Agent>> {
        self.agents.get(&(group, resource))
    }
}

pub use crate::platform::Done;

/// Answers of monitors that found their resource running, for the loop's next wake-up.
#[derive(Clone, Default)]
pub struct Quiet(Arc<std::sync::Mutex<Vec<Done>>>);

impl Quiet {
    fn push(&self, done: Done) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(done);
    }

    /// What came since the last call, oldest first.
    pub fn take(&self) -> Vec<Done> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Starts `op` and sends its [`Done`] on `done` (a monitor's `Ok` goes to `quiet`).
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    agents: &Agents,
    id: OpId,
    group: GroupId,
    resource: ResourceId,
    op: OpKind,
    timeout: Duration,
    done: mpsc::UnboundedSender<Done>,
    quiet: &Quiet,
) {
    let Some(agent) = agents.get(group, resource).cloned() else {
        let result = OpResult::Failed("this node has no agent for the resource".to_string());
        let _ =
            done.send(Done { id, group, resource, op, result, detail: None, took: Duration::ZERO });
        return;
    };
    if op == OpKind::Monitor {
        let quiet = quiet.clone();
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let run = std::panic::AssertUnwindSafe(|| agent.run(op, timeout));
            let result = std::panic::catch_unwind(run)
                .unwrap_or_else(|_| OpResult::Failed("the agent panicked".to_string()));
            let detail = if result == OpResult::Ok { None } else { agent.detail() };
            let ok = result == OpResult::Ok;
            let answer = Done { id, group, resource, op, result, detail, took: started.elapsed() };
            if ok {
                quiet.push(answer);
            } else {
                let _ = done.send(answer);
            }
        });
        return;
    }
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let call = {
            let agent = agent.clone();
            tokio::task::spawn_blocking(move || agent.run(op, timeout))
        };
        let result = match tokio::time::timeout(timeout + KILL_MARGIN, call).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => OpResult::Failed(format!("the agent panicked: {join}")),
            Err(_) => OpResult::Timeout,
        };
        let detail = match &result {
            OpResult::Ok => None,
            _ => agent.detail(),
        };
        let _ =
            done.send(Done { id, group, resource, op, result, detail, took: started.elapsed() });
    });
}
