//! The `nic` kind, monitor-only: is a network interface up with a link? Monitor and
//! probe read `/sys/class/net/<interface>/operstate` and `carrier`; start and stop
//! change nothing and answer [`OpResult::Ok`] (the engine never calls them for a
//! monitor-only resource, but the trait needs an answer). It must never configure the
//! interface: bringing links up or down is the administrator's business.
//!
//! **When an interface is up.** `operstate` "up" (RFC 2863) with `carrier` 1 is up.
//! `operstate` "unknown" with `carrier` 1 is up too: drivers that do not track the
//! operational state report "unknown" (the loopback `lo`, tun/tap, many virtual
//! devices), and for them the carrier flag is the only evidence of a working link.
//! Anything else ("down", "lowerlayerdown", "dormant", ...), a missing carrier (reading
//! `carrier` fails with EINVAL while the interface is administratively down) or a
//! missing interface is [`OpResult::NotRunning`]; why is kept for
//! [`crate::Agent::detail`].
//!
//! **Why sysfs and not netlink.** Both read the same two fields of the kernel's
//! `net_device`: sysfs `operstate` is `IFLA_OPERSTATE` (RFC 2863 state, same names) and
//! `carrier` is `IFLA_CARRIER` (`netif_carrier_ok`), so a netlink `RTM_GETLINK` would
//! answer exactly the same. Two small file reads cannot hang, need no socket, and can
//! be tested against a fake tree ([`NicAgent::with_root`]). The one difference: sysfs
//! shows the network namespace `/sys` was mounted in, netlink the caller's; the daemon
//! runs in the host's namespace, where the two agree.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use engine::OpResult;

use crate::Agent;

/// Where the kernel lists network interfaces.
pub const SYS_CLASS_NET: &str = "/sys/class/net";
/// The longest interface name Linux accepts (`IFNAMSIZ` less the terminating NUL).
pub const INTERFACE_NAME_MAX_BYTES: usize = 15;
/// The most read of one sysfs attribute (they are one short word).
const ATTRIBUTE_MAX_BYTES: u64 = 64;

pub struct NicAgent {
    interface: String,
    sys_class_net: PathBuf,
    detail: Mutex<Option<String>>,
}

impl NicAgent {
    /// The agent watching `interface` under [`SYS_CLASS_NET`].
    pub fn new(interface: impl Into<String>) -> NicAgent {
        NicAgent::with_root(interface, SYS_CLASS_NET)
    }

    /// The agent watching `interface` under `sys_class_net` (tests use a fake tree).
    pub fn with_root(interface: impl Into<String>, sys_class_net: impl Into<PathBuf>) -> NicAgent {
        NicAgent {
            interface: interface.into(),
            sys_class_net: sys_class_net.into(),
            detail: Mutex::new(None),
        }
    }

    /// `Ok(())` when the interface is up with a carrier, else why not.
    fn check(&self) -> Result<(), String> {
        let name = &self.interface;
        if name.is_empty()
            || name.len() > INTERFACE_NAME_MAX_BYTES
            || name.contains('/')
            || name == "."
            || name == ".."
        {
            return Err(format!("`{name}` is not a valid interface name"));
        }
        let dir = self.sys_class_net.join(name);
        if !dir.exists() {
            return Err(format!("interface {name} does not exist"));
        }
        let operstate = read_attribute(&dir.join("operstate"))
            .map_err(|e| format!("interface {name}: cannot read operstate: {e}"))?;
        let carrier = read_attribute(&dir.join("carrier")).ok();
        match (operstate.as_str(), carrier.as_deref()) {
            ("up" | "unknown", Some("1")) => Ok(()),
            ("up" | "unknown", _) => Err(format!("interface {name} has no carrier (no link)")),
            (state, _) => Err(format!("interface {name} is {state}")),
        }
    }
}

fn read_attribute(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    fs::File::open(path)?.take(ATTRIBUTE_MAX_BYTES).read_to_string(&mut text)?;
    Ok(text.trim().to_string())
}

impl Agent for NicAgent {
    fn start(&self, _timeout: Duration) -> OpResult {
        OpResult::Ok
    }

    fn stop(&self, _timeout: Duration) -> OpResult {
        OpResult::Ok
    }

    fn monitor(&self, _timeout: Duration) -> OpResult {
        let result = self.check();
        let answer = if result.is_ok() { OpResult::Ok } else { OpResult::NotRunning };
        *self.detail.lock().unwrap_or_else(|p| p.into_inner()) = result.err();
        answer
    }

    fn detail(&self) -> Option<String> {
        self.detail.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(root: &Path, name: &str, operstate: &str, carrier: Option<&str>) {
        let dir = root.join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("operstate"), format!("{operstate}\n")).unwrap();
        if let Some(carrier) = carrier {
            fs::write(dir.join("carrier"), format!("{carrier}\n")).unwrap();
        }
    }

    #[test]
    fn states_map_to_up_or_not_running() {
        let root = tempfile::tempdir().unwrap();
        let cases = [
            ("up", Some("1"), true),
            ("unknown", Some("1"), true),
            ("unknown", Some("0"), false),
            ("up", Some("0"), false),
            ("down", None, false),
            ("down", Some("0"), false),
            ("dormant", Some("1"), false),
            ("lowerlayerdown", Some("0"), false),
        ];
        for (i, (operstate, carrier, up)) in cases.into_iter().enumerate() {
            let name = format!("if{i}");
            fake(root.path(), &name, operstate, carrier);
            let agent = NicAgent::with_root(&name, root.path());
            let want = if up { OpResult::Ok } else { OpResult::NotRunning };
            assert_eq!(agent.monitor(Duration::ZERO), want, "{operstate} {carrier:?}");
            assert_eq!(agent.detail().is_none(), up, "{:?}", agent.detail());
        }
    }

    #[test]
    fn names_that_escape_the_directory_are_refused() {
        let root = tempfile::tempdir().unwrap();
        fake(root.path(), "x", "up", Some("1"));
        for name in ["", ".", "..", "x/../x", "a-name-longer-than-15"] {
            let agent = NicAgent::with_root(name, root.path());
            assert_eq!(agent.monitor(Duration::ZERO), OpResult::NotRunning, "{name}");
            assert!(agent.detail().unwrap().contains("not a valid"), "{name}");
        }
    }
}
