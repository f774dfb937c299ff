//! The `systemd` kind: a unit managed by systemd, over D-Bus (`zbus`, blocking API) on
//! the system bus. It owns asking systemd to start and stop the unit and reading its
//! state; it must never fall back to another way of starting the unit (no `systemctl`,
//! no init script) and never enable or mask it.
//!
//! **Start** is `StartUnit(unit, "replace")`, **stop** `StopUnit(unit, "replace")`
//! (nothing when the unit is already inactive or failed); each then waits until the job
//! systemd queued is gone (polling the job object every [`JOB_POLL`], bounded by the
//! deadline) and judges the unit's `ActiveState`: after a start `active` (or
//! `reloading`) is Ok, anything else fails with `E4305` and the service's `Result`;
//! after a stop `inactive` or `failed` is Ok. **Monitor / probe** load the unit
//! (`LoadUnit`, so an unknown unit reads as inactive) and map `active`/`reloading` to
//! Ok and everything else (`inactive`, `failed`, `activating` while systemd restarts
//! it, ...) to NotRunning, with the state and result kept for [`Agent::detail`]. See
//! [`judge`].
//!
//! **Codes.** Where systemd is not the init system (sd_booted(3): no
//! `/run/systemd/system`), every operation fails with `E4303` ([`NOT_BOOTED`]); a D-Bus
//! failure (no bus, an error reply such as `org.freedesktop.systemd1.NoSuchUnit`) is
//! `E4304` with the error's name; a unit that does not reach the wanted state is
//! `E4305`.
//!
//! **Timeouts.** Each call carries the time left as its D-Bus method timeout, and the
//! whole operation runs on a helper thread the caller waits for only until the deadline
//! (plus 200 ms): a bus that hangs answers [`OpResult::Timeout`] in time. The
//! helper thread cannot be killed; its calls end at their own timeouts.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use engine::catalogue::{SYSTEMD_DBUS_FAILED, SYSTEMD_NOT_BOOTED, SYSTEMD_UNIT_FAILED};
use engine::{OpKind, OpResult};
use zbus::blocking::{connection, Connection, Proxy};
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

use crate::Agent;

/// The text after the code of every answer on a host not booted with systemd.
pub const NOT_BOOTED: &str = "systemd is not the init system on this host";
/// How often a queued job is looked at.
pub const JOB_POLL: Duration = Duration::from_millis(50);
/// How long past the deadline the caller waits for the helper thread.
const JOIN_MARGIN: Duration = Duration::from_millis(200);

const DESTINATION: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
const JOB: &str = "org.freedesktop.systemd1.Job";

/// Whether systemd is the init system (sd_booted(3): `/run/systemd/system` exists).
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Which bus systemd is on.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Bus {
    /// The system bus, where systemd is PID 1 (checked with [`booted`]).
    System,
    /// A bus at this D-Bus address, whatever the init system (tests).
    Address(String),
}

/// What the unit looks like: `ActiveState` and, for a service, its `Result`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitState {
    pub active: String,
    pub result: Option<String>,
}

pub struct SystemdAgent {
    unit: String,
    bus: Bus,
    detail: Mutex<Option<String>>,
}

impl SystemdAgent {
    /// The agent for `unit` on the system bus.
    pub fn new(unit: String) -> SystemdAgent {
        SystemdAgent { unit, bus: Bus::System, detail: Mutex::new(None) }
    }

    /// The agent for `unit` talking to a systemd at the D-Bus `address` (for tests
    /// with a private bus; no check of the init system).
    pub fn on_bus(unit: String, address: impl Into<String>) -> SystemdAgent {
        SystemdAgent { unit, bus: Bus::Address(address.into()), detail: Mutex::new(None) }
    }

    fn operate(&self, op: OpKind, timeout: Duration) -> OpResult {
        if self.bus == Bus::System && !booted() {
            return OpResult::Failed(format!(
                "{}: {NOT_BOOTED} (/run/systemd/system is missing): cannot manage unit {}",
                SYSTEMD_NOT_BOOTED.code, self.unit
            ));
        }
        let deadline = Instant::now() + timeout;
        let (unit, bus) = (self.unit.clone(), self.bus.clone());
        let (sender, receiver) = mpsc::sync_channel(1);
        let spawned = thread::Builder::new().name("agent-systemd".into()).spawn(move || {
            let _ = sender.send(operate(&bus, &unit, op, deadline));
        });
        if let Err(e) = spawned {
            return OpResult::Failed(format!("cannot start a thread: {e}"));
        }
        let wait = deadline.saturating_duration_since(Instant::now()) + JOIN_MARGIN;
        let (result, detail) = receiver.recv_timeout(wait).unwrap_or((OpResult::Timeout, None));
        *self.detail.lock().unwrap_or_else(|p| p.into_inner()) = detail;
        result
    }
}

impl Agent for SystemdAgent {
    fn start(&self, timeout: Duration) -> OpResult {
        self.operate(OpKind::Start, timeout)
    }

    fn stop(&self, timeout: Duration) -> OpResult {
        self.operate(OpKind::Stop, timeout)
    }

    fn monitor(&self, timeout: Duration) -> OpResult {
        self.operate(OpKind::Monitor, timeout)
    }

    fn detail(&self) -> Option<String> {
        self.detail.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What an operation answers given the unit's state once its job (if any) is done, and
/// the detail kept for [`Agent::detail`].
pub fn judge(op: OpKind, unit: &str, state: &UnitState) -> (OpResult, Option<String>) {
    let result = state.result.as_deref().map(|r| format!(" (result: {r})")).unwrap_or_default();
    let running = matches!(state.active.as_str(), "active" | "reloading");
    let stopped = matches!(state.active.as_str(), "inactive" | "failed");
    match op {
        OpKind::Start if running => (OpResult::Ok, None),
        OpKind::Start => {
            let why = format!("unit {unit} is {} after its start job{result}", state.active);
            (OpResult::Failed(format!("{}: {why}", SYSTEMD_UNIT_FAILED.code)), Some(why))
        }
        OpKind::Stop if stopped => (OpResult::Ok, None),
        OpKind::Stop => {
            let why = format!("unit {unit} is still {} after its stop job", state.active);
            (OpResult::Failed(format!("{}: {why}", SYSTEMD_UNIT_FAILED.code)), Some(why))
        }
        OpKind::Monitor | OpKind::Probe if running => (OpResult::Ok, None),
        OpKind::Monitor | OpKind::Probe => {
            (OpResult::NotRunning, Some(format!("unit {unit} is {}{result}", state.active)))
        }
    }
}

/// Runs one operation to its answer (on the helper thread).
fn operate(bus: &Bus, unit: &str, op: OpKind, deadline: Instant) -> (OpResult, Option<String>) {
    match try_operate(bus, unit, op, deadline) {
        Ok(answer) => answer,
        Err(_) if Instant::now() >= deadline => (OpResult::Timeout, None),
        Err(e) => {
            let why = match &e {
                zbus::Error::MethodError(name, text, _) => {
                    format!("{name}: {}", text.as_deref().unwrap_or(""))
                }
                other => other.to_string(),
            };
            let message = format!("{}: unit {unit}: {why}", SYSTEMD_DBUS_FAILED.code);
            (OpResult::Failed(message.clone()), Some(message))
        }
    }
}

fn try_operate(
    bus: &Bus,
    unit: &str,
    op: OpKind,
    deadline: Instant,
) -> zbus::Result<(OpResult, Option<String>)> {
    let left = deadline.saturating_duration_since(Instant::now());
    let builder = match bus {
        Bus::System => connection::Builder::system()?,
        Bus::Address(address) => connection::Builder::address(address.as_str())?,
    };
    let connection = builder.method_timeout(left.max(Duration::from_millis(1))).build()?;
    let manager = proxy(&connection, MANAGER_PATH, MANAGER)?;
    let job: OwnedObjectPath = match op {
        OpKind::Start => manager.call("StartUnit", &(unit, "replace"))?,
        OpKind::Stop => {
            let state = unit_state(&connection, &manager, unit)?;
            if matches!(state.active.as_str(), "inactive" | "failed") {
                return Ok((OpResult::Ok, None));
            }
            manager.call("StopUnit", &(unit, "replace"))?
        }
        OpKind::Monitor | OpKind::Probe => {
            return Ok(judge(op, unit, &unit_state(&connection, &manager, unit)?));
        }
    };
    // The job object exists until the job is done; any error reading it means gone.
    while proxy(&connection, job.as_str(), JOB)?.get_property::<String>("State").is_ok() {
        if Instant::now() + JOB_POLL >= deadline {
            return Ok((OpResult::Timeout, None));
        }
        thread::sleep(JOB_POLL);
    }
    Ok(judge(op, unit, &unit_state(&connection, &manager, unit)?))
}

fn proxy<'a>(
    connection: &Connection,
    path: &'a str,
    interface: &'a str,
) -> zbus::Result<Proxy<'a>> {
    zbus::blocking::proxy::Builder::new(connection)
        .destination(DESTINATION)?
        .path(path)?
        .interface(interface)?
        .cache_properties(CacheProperties::No)
        .build()
}

fn unit_state(connection: &Connection, manager: &Proxy, unit: &str) -> zbus::Result<UnitState> {
    let path: OwnedObjectPath = manager.call("LoadUnit", &(unit,))?;
    let active = proxy(connection, path.as_str(), UNIT)?.get_property::<String>("ActiveState")?;
    // Only services have a Result; other unit types simply have none.
    let result = proxy(connection, path.as_str(), SERVICE)
        .and_then(|service| service.get_property::<String>("Result"))
        .ok()
        .filter(|r| r != "success");
    Ok(UnitState { active, result })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(active: &str, result: Option<&str>) -> UnitState {
        UnitState { active: active.into(), result: result.map(str::to_string) }
    }

    #[test]
    fn states_are_judged_per_operation() {
        let u = "web.service";
        assert_eq!(judge(OpKind::Start, u, &state("active", None)).0, OpResult::Ok);
        assert_eq!(judge(OpKind::Start, u, &state("reloading", None)).0, OpResult::Ok);
        let (failed, detail) = judge(OpKind::Start, u, &state("failed", Some("exit-code")));
        assert_eq!(
            failed,
            OpResult::Failed(
                "E4305: unit web.service is failed after its start job (result: exit-code)".into()
            )
        );
        assert!(detail.unwrap().contains("exit-code"));
        assert_eq!(judge(OpKind::Stop, u, &state("inactive", None)).0, OpResult::Ok);
        assert_eq!(judge(OpKind::Stop, u, &state("failed", Some("signal"))).0, OpResult::Ok);
        let OpResult::Failed(still) = judge(OpKind::Stop, u, &state("deactivating", None)).0 else {
            panic!("a unit still deactivating is stopped")
        };
        assert!(still.starts_with("E4305: unit web.service is still deactivating"), "{still}");
        for op in [OpKind::Monitor, OpKind::Probe] {
            assert_eq!(judge(op, u, &state("active", None)), (OpResult::Ok, None));
            for active in ["inactive", "failed", "activating", "deactivating"] {
                let (answer, detail) = judge(op, u, &state(active, Some("exit-code")));
                assert_eq!(answer, OpResult::NotRunning, "{active}");
                assert_eq!(
                    detail.unwrap(),
                    format!("unit web.service is {active} (result: exit-code)")
                );
            }
        }
    }
}
