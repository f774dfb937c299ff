//! The `systemd` kind. Managing units (over D-Bus) is not implemented yet: on a host
//! where systemd is not the init system every operation fails with
//! [`NOT_BOOTED`]'s stable message, and where it is, with [`NOT_IMPLEMENTED`]'s. It
//! must never fall back to some other way of starting the unit.

use std::path::Path;
use std::time::Duration;

use engine::OpResult;

use crate::Agent;

/// The start of every answer on a host not booted with systemd.
pub const NOT_BOOTED: &str = "systemd is not the init system on this host";
/// The start of every answer on a host booted with systemd, for now.
pub const NOT_IMPLEMENTED: &str = "systemd units cannot be managed by this build yet";

/// Whether systemd is the init system (sd_booted(3): `/run/systemd/system` exists).
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

pub struct SystemdAgent {
    unit: String,
}

impl SystemdAgent {
    pub fn new(unit: String) -> SystemdAgent {
        SystemdAgent { unit }
    }

    fn answer(&self) -> OpResult {
        if booted() {
            OpResult::Failed(format!("{NOT_IMPLEMENTED}: unit {}", self.unit))
        } else {
            OpResult::Failed(format!(
                "{NOT_BOOTED} (/run/systemd/system is missing): cannot manage unit {}",
                self.unit
            ))
        }
    }
}

impl Agent for SystemdAgent {
    fn start(&self, _timeout: Duration) -> OpResult {
        self.answer()
    }

    fn stop(&self, _timeout: Duration) -> OpResult {
        self.answer()
    }

    fn monitor(&self, _timeout: Duration) -> OpResult {
        self.answer()
    }
}
