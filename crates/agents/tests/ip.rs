//! The `ip` agent against real interfaces in a network namespace each test creates
//! (root only; otherwise each test prints a SKIP line with the reason and passes): a
//! uniquely named namespace holding an up veth pair `va`/`vb`, deleted by a Drop guard
//! (which runs on panic too). Nothing here touches the host's own namespace or
//! installs anything.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use agents::ip::IpAgent;
use agents::{Agent, Context};
use config::{IpParams, Spanned};
use engine::OpResult;
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_secs(10);

fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    let ip = Command::new("ip").arg("-V").stdout(Stdio::null()).status();
    if !ip.is_ok_and(|s| s.success()) {
        return Some("iproute2's ip is not installed".into());
    }
    None
}

macro_rules! root_only {
    ($name:expr) => {
        if let Some(reason) = skip_reason() {
            println!("SKIP {}: {reason}", $name);
            return;
        }
    };
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?} failed");
}

/// A network namespace with an up veth pair `va`/`vb`.
struct Netns {
    name: String,
    dir: TempDir,
}

impl Netns {
    fn new() -> Netns {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name =
            format!("tandem-ip-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        ip(&["netns", "add", &name]);
        let netns = Netns { name, dir: tempfile::tempdir().unwrap() };
        let n = netns.name.as_str();
        ip(&["-n", n, "link", "add", "va", "type", "veth", "peer", "name", "vb"]);
        ip(&["-n", n, "link", "set", "va", "up"]);
        ip(&["-n", n, "link", "set", "vb", "up"]);
        netns
    }

    fn agent(&self, address: &str, prefix_len: u8, interface: Option<&str>) -> IpAgent {
        let params = IpParams {
            address: address.parse().unwrap(),
            prefix_len,
            interface: interface.map(|i| Spanned { value: i.to_string(), span: 0..0 }),
        };
        IpAgent::new(&params, &Context::new("vip", self.dir.path())).in_namespace(&self.name)
    }

    /// `ip -o addr show dev DEV` inside the namespace.
    fn addresses(&self, dev: &str) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-o", "addr", "show", "dev", dev])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

#[test]
fn an_address_is_added_found_and_removed() {
    root_only!("an_address_is_added_found_and_removed");
    let ns = Netns::new();
    let agent = ns.agent("10.77.0.10", 24, Some("va"));
    assert_eq!(agent.probe(TIMEOUT), OpResult::NotRunning);
    assert!(agent.detail().unwrap().contains("not on va"));
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
    assert!(ns.addresses("va").contains("10.77.0.10/24"), "{}", ns.addresses("va"));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::Ok);
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok, "a second start is fine");
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    assert!(!ns.addresses("va").contains("10.77.0.10"));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok, "a second stop is fine");
}

#[test]
fn an_address_on_another_interface_is_not_ours() {
    root_only!("an_address_on_another_interface_is_not_ours");
    let ns = Netns::new();
    ip(&["-n", &ns.name, "addr", "add", "10.78.0.10/24", "dev", "vb"]);
    let agent = ns.agent("10.78.0.10", 24, Some("va"));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok, "stop leaves vb's address alone");
    assert!(ns.addresses("vb").contains("10.78.0.10/24"));
}

#[test]
fn without_an_interface_the_one_on_the_network_is_used() {
    root_only!("without_an_interface_the_one_on_the_network_is_used");
    let ns = Netns::new();
    ip(&["-n", &ns.name, "addr", "add", "10.79.0.1/24", "dev", "vb"]);
    let agent = ns.agent("10.79.0.50", 24, None);
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
    assert!(ns.addresses("vb").contains("10.79.0.50/24"), "{}", ns.addresses("vb"));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::Ok);
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    assert!(!ns.addresses("vb").contains("10.79.0.50"));
    assert!(ns.addresses("vb").contains("10.79.0.1/24"), "the base address stays");
    let lost = ns.agent("10.80.0.50", 24, None);
    assert!(matches!(lost.start(TIMEOUT), OpResult::Failed(_)));
}

#[test]
fn a_missing_interface_fails_to_start() {
    root_only!("a_missing_interface_fails_to_start");
    let ns = Netns::new();
    let agent = ns.agent("10.81.0.10", 24, Some("nosuch0"));
    assert!(matches!(agent.start(TIMEOUT), OpResult::Failed(_)));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
}
