//! The inventory's systemd units: services, mounts and timers, from systemd's manager
//! over D-Bus (`ListUnits` for the loaded units with their states, `ListUnitFiles` for
//! the installed ones with their file state), joined by name. Where systemd is not the
//! init system (no /run/systemd/system) it says so (W5325) instead of asking. Every call
//! carries the time left before the deadline as its D-Bus timeout. It only reads.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use contract::SystemdUnit;
use zbus::blocking::connection;
use zbus::zvariant::OwnedObjectPath;

/// The unit types offered: what a `systemd` resource manages.
pub const UNIT_SUFFIXES: &[&str] = &[".service", ".mount", ".timer"];
/// The most units listed (a host with more is not one tandem manages).
const UNITS_MAX: usize = 65_536;

/// Where systemd's manager is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SystemdBus {
    /// The system bus, where systemd is the init system (checked first).
    System,
    /// A bus at this D-Bus address, whatever the init system (tests).
    Address(String),
}

/// One entry of `ListUnits`: name, description, load state, active state, sub state,
/// followed unit, object path, job id, job type, job path.
pub(super) type ListedUnit =
    (String, String, String, String, String, String, OwnedObjectPath, u32, String, OwnedObjectPath);

/// One entry of `ListUnitFiles`: the unit file's path and its state.
pub(super) type UnitFile = (String, String);

/// Why no units were listed.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// systemd is not the init system.
    NotRunning,
    /// The bus or systemd failed.
    Failed(String),
}

/// The units of `bus`, by name.
pub fn discover(bus: &SystemdBus, deadline: Instant) -> Result<Vec<SystemdUnit>, Failure> {
    if *bus == SystemdBus::System && !agents::systemd::booted() {
        return Err(Failure::NotRunning);
    }
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    let list = || -> zbus::Result<(Vec<ListedUnit>, Vec<UnitFile>)> {
        let builder = match bus {
            SystemdBus::System => connection::Builder::system()?,
            SystemdBus::Address(address) => connection::Builder::address(address.as_str())?,
        };
        let connection = builder.method_timeout(left).build()?;
        let manager = zbus::blocking::Proxy::new(
            &connection,
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
        )?;
        let units: Vec<ListedUnit> = manager.call("ListUnits", &())?;
        let files: Vec<UnitFile> = manager.call("ListUnitFiles", &())?;
        Ok((units, files))
    };
    let (units, files) = list().map_err(|e| match e {
        zbus::Error::MethodError(name, text, _) => {
            Failure::Failed(format!("systemd answered {name}: {}", text.unwrap_or_default()))
        }
        other => Failure::Failed(format!("asking systemd over D-Bus: {other}")),
    })?;
    Ok(join(units, files))
}

/// The units of `ListUnits` and `ListUnitFiles` of the offered types, joined by name:
/// a loaded unit with its file's state, a unit file not loaded as `not-loaded` and
/// `inactive`.
pub(super) fn join(units: Vec<ListedUnit>, files: Vec<UnitFile>) -> Vec<SystemdUnit> {
    let offered = |name: &str| UNIT_SUFFIXES.iter().any(|s| name.ends_with(s));
    let mut file_states: BTreeMap<String, String> = BTreeMap::new();
    for (path, state) in files {
        let name = path.rsplit('/').next().unwrap_or(&path).to_string();
        if offered(&name) {
            file_states.entry(name).or_insert(state);
        }
    }
    let mut joined: BTreeMap<String, SystemdUnit> = BTreeMap::new();
    for (name, description, load, active, sub, ..) in units {
        if !offered(&name) || joined.len() >= UNITS_MAX {
            continue;
        }
        let unit = SystemdUnit {
            description: Some(description).filter(|d| !d.is_empty()),
            load_state: load,
            active_state: active,
            sub_state: Some(sub),
            file_state: file_states.get(&name).cloned(),
            name: name.clone(),
        };
        joined.insert(name, unit);
    }
    for (name, state) in file_states {
        if joined.len() >= UNITS_MAX {
            break;
        }
        joined.entry(name.clone()).or_insert(SystemdUnit {
            name,
            description: None,
            load_state: "not-loaded".into(),
            active_state: "inactive".into(),
            sub_state: None,
            file_state: Some(state),
        });
    }
    joined.into_values().collect()
}
