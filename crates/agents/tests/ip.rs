//! The `ip` agent against real interfaces in two network namespaces each test creates
//! (root and `TANDEM_LAB=1` only; otherwise each test fails under the test command
//! and skips loudly under a plain `cargo test`: `testgate`): `a` holds the agent's interface `va` and another interface `dm`, `b` holds
//! `vb`, the other end of the veth pair, standing for the rest of the segment. No
//! default route, no bridge, nothing attached to a physical interface; both are deleted
//! by a Drop guard (which runs on panic too). Nothing here touches the host's own
//! namespace or installs anything; iproute2's `ip` only sets the scene up and reads it.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use agents::ip::{IpAgent, ANNOUNCEMENTS, ANNOUNCE_INTERVAL};
use agents::{Agent, Context};
use config::{IpParams, Spanned};
use engine::OpResult;
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_secs(10);
/// A hardware address nobody has: what `b` believes before an announcement.
const STALE_MAC: &str = "02:00:00:00:00:99";

macro_rules! lab_only {
    ($name:expr) => {
        if let Err(missing) = testgate::lab().and_then(|()| testgate::program("ip", "iproute2")) {
            testgate::cannot_run($name, &missing);
            return;
        }
    };
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn ip_output(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// Two namespaces `a` and `b` joined by the veth pair `va` (in a) / `vb` (in b), plus
/// a second pair `dm`/`dn` inside a (this kernel may have no `dummy` module); all up.
struct Pair {
    a: String,
    b: String,
    dir: TempDir,
}

impl Pair {
    fn new() -> Pair {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let stem =
            format!("tandem-ip-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let pair = Pair {
            a: format!("{stem}-a"),
            b: format!("{stem}-b"),
            dir: tempfile::tempdir().unwrap(),
        };
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        let (a, b) = (pair.a.as_str(), pair.b.as_str());
        ip(&["-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b]);
        ip(&["-n", a, "link", "add", "dm", "type", "veth", "peer", "name", "dn"]);
        for (ns, dev) in [(a, "va"), (a, "dm"), (a, "dn"), (b, "vb")] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        pair
    }

    fn agent(&self, address: &str, prefix_len: u8, interface: Option<&str>) -> IpAgent {
        let params = IpParams {
            address: address.parse().unwrap(),
            prefix_len,
            interface: interface.map(|i| Spanned { value: i.to_string(), span: 0..0 }),
        };
        IpAgent::new(&params, &Context::new("vip", self.dir.path())).in_namespace(&self.a)
    }

    /// `ip -o addr show dev DEV` inside namespace `ns`.
    fn addresses(&self, ns: &str, dev: &str) -> String {
        ip_output(&["-n", ns, "-o", "addr", "show", "dev", dev])
    }

    /// The hardware address of `dev` in namespace `ns`.
    fn mac(&self, ns: &str, dev: &str) -> String {
        let text = ip_output(&["-n", ns, "-o", "link", "show", "dev", dev]);
        let after = text.split("link/ether ").nth(1).expect("an Ethernet address");
        after.split_whitespace().next().unwrap().to_string()
    }

    /// What b's neighbour table says `address` is at (empty when it has no entry).
    fn b_believes(&self, address: &str) -> String {
        let text = ip_output(&["-n", &self.b, "neigh", "show", address, "dev", "vb"]);
        text.split("lladdr ").nth(1).and_then(|t| t.split_whitespace().next()).unwrap_or("").into()
    }

    /// Makes b believe `address` is at [`STALE_MAC`], as after the previous owner left.
    fn b_remembers_stale(&self, address: &str) {
        ip(&[
            "-n", &self.b, "neigh", "replace", address, "lladdr", STALE_MAC, "dev", "vb", "nud",
            "stale",
        ]);
    }

    /// Waits up to `within` for b to believe `address` is at `mac`.
    fn b_learns(&self, address: &str, mac: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.b_believes(address) == mac {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn failure(result: OpResult) -> String {
    match result {
        OpResult::Failed(message) => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn an_address_is_added_found_and_removed() {
    lab_only!("an_address_is_added_found_and_removed");
    let pair = Pair::new();
    for (address, prefix) in [("10.77.0.10", 24), ("2001:db8:77::10", 64)] {
        let agent = pair.agent(address, prefix, Some("va"));
        let cidr = format!("{address}/{prefix}");
        assert_eq!(agent.probe(TIMEOUT), OpResult::NotRunning);
        assert!(agent.detail().unwrap().contains("not on va"));
        let began = Instant::now();
        assert_eq!(agent.start(TIMEOUT), OpResult::Ok, "{cidr}");
        let took = began.elapsed();
        assert!(took < Duration::from_millis(1500), "start of {cidr} took {took:?}");
        assert!(pair.addresses(&pair.a, "va").contains(&cidr), "{}", pair.addresses(&pair.a, "va"));
        assert_eq!(agent.monitor(TIMEOUT), OpResult::Ok);
        assert_eq!(agent.detail(), None);
        assert_eq!(agent.start(TIMEOUT), OpResult::Ok, "a second start is fine");
        assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
        assert!(!pair.addresses(&pair.a, "va").contains(address));
        assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
        assert_eq!(agent.stop(TIMEOUT), OpResult::Ok, "a second stop is fine");
    }
}

#[test]
fn an_address_on_another_interface_is_not_ours() {
    lab_only!("an_address_on_another_interface_is_not_ours");
    let pair = Pair::new();
    ip(&["-n", &pair.a, "addr", "add", "10.78.0.10/24", "dev", "dm"]);
    let agent = pair.agent("10.78.0.10", 24, Some("va"));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok, "stop leaves dm's address alone");
    assert!(pair.addresses(&pair.a, "dm").contains("10.78.0.10/24"));
}

#[test]
fn without_an_interface_the_one_on_the_network_is_used() {
    lab_only!("without_an_interface_the_one_on_the_network_is_used");
    let pair = Pair::new();
    ip(&["-n", &pair.a, "addr", "add", "10.79.0.1/24", "dev", "va"]);
    let agent = pair.agent("10.79.0.50", 24, None);
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
    assert!(pair.addresses(&pair.a, "va").contains("10.79.0.50/24"));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::Ok);
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    assert!(!pair.addresses(&pair.a, "va").contains("10.79.0.50"));
    assert!(pair.addresses(&pair.a, "va").contains("10.79.0.1/24"), "the base address stays");
    let lost = pair.agent("10.80.0.50", 24, None);
    let message = failure(lost.start(TIMEOUT));
    assert!(message.starts_with("E4302: no interface has a network"), "{message}");
}

#[test]
fn a_missing_interface_or_namespace_fails_with_a_code() {
    lab_only!("a_missing_interface_or_namespace_fails_with_a_code");
    let pair = Pair::new();
    let agent = pair.agent("10.81.0.10", 24, Some("nosuch0"));
    let message = failure(agent.start(TIMEOUT));
    assert!(message.starts_with("E4302: interface nosuch0 does not exist"), "{message}");
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
    let params =
        IpParams { address: "10.81.0.11".parse().unwrap(), prefix_len: 24, interface: None };
    let nowhere = IpAgent::new(&params, &Context::new("vip", pair.dir.path()))
        .in_namespace(format!("{}-missing", pair.a));
    let message = failure(nowhere.monitor(TIMEOUT));
    assert!(message.starts_with("E4302: network namespace"), "{message}");
}

#[test]
fn a_start_without_time_left_times_out_and_adds_nothing() {
    lab_only!("a_start_without_time_left_times_out_and_adds_nothing");
    let pair = Pair::new();
    let agent = pair.agent("10.84.0.10", 24, Some("va"));
    assert_eq!(agent.start(Duration::ZERO), OpResult::Timeout);
    // The probe alone lasts longer than this timeout: it is cut short, nothing added.
    let began = Instant::now();
    assert_eq!(agent.start(Duration::from_millis(10)), OpResult::Timeout);
    assert!(began.elapsed() < Duration::from_millis(700), "took {:?}", began.elapsed());
    assert!(!pair.addresses(&pair.a, "va").contains("10.84.0.10"));
}

#[test]
fn the_segment_learns_the_new_hardware_address_from_announcements() {
    lab_only!("the_segment_learns_the_new_hardware_address_from_announcements");
    let pair = Pair::new();
    ip(&["-n", &pair.b, "addr", "add", "10.82.0.2/24", "dev", "vb"]);
    ip(&["-n", &pair.b, "addr", "add", "2001:db8:82::2/64", "dev", "vb", "nodad"]);
    let mac = pair.mac(&pair.a, "va");
    for (address, prefix) in [("10.82.0.10", 24), ("2001:db8:82::10", 64)] {
        pair.b_remembers_stale(address);
        assert_eq!(pair.b_believes(address), STALE_MAC);
        let agent = pair.agent(address, prefix, Some("va"));
        assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
        // The first announcement leaves before start answers.
        assert!(
            pair.b_learns(address, &mac, Duration::from_millis(100)),
            "{address}: b still believes {}",
            pair.b_believes(address)
        );
        // The later ones follow from the background: forget again, learn again.
        pair.b_remembers_stale(address);
        assert!(
            pair.b_learns(address, &mac, ANNOUNCE_INTERVAL * ANNOUNCEMENTS),
            "{address}: no later announcement; b believes {}",
            pair.b_believes(address)
        );
        assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    }
}

#[test]
fn an_address_another_host_answers_for_is_refused() {
    lab_only!("an_address_another_host_answers_for_is_refused");
    let pair = Pair::new();
    let theirs = pair.mac(&pair.b, "vb");
    for (address, prefix) in [("10.83.0.10", 24), ("2001:db8:83::10", 64)] {
        let cidr = format!("{address}/{prefix}");
        ip(&["-n", &pair.b, "addr", "add", &cidr, "dev", "vb", "nodad"]);
        let agent = pair.agent(address, prefix, Some("va"));
        let OpResult::InUse(message) = agent.start(TIMEOUT) else {
            panic!("the start was not refused as in use elsewhere");
        };
        assert!(
            message.starts_with(&format!("E4301: {address} is already answered by {theirs}")),
            "{message}"
        );
        assert!(!pair.addresses(&pair.a, "va").contains(address), "added anyway");
        assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
        // Once the other host lets it go, the start succeeds.
        ip(&["-n", &pair.b, "addr", "del", &cidr, "dev", "vb"]);
        assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
        assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    }
}
