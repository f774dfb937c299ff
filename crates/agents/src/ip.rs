//! The `ip` kind: a floating IP address on a network interface, added and removed over
//! rtnetlink (the private `netlink` module), checked for duplicates before it is added and
//! announced after (`neighbour`). It owns adding, removing and finding the
//! address and telling the segment about it; it must not bring links up or down, touch
//! routes, or decide anything about failures.
//!
//! **Start.** Nothing to do when the address is already on the interface. Otherwise:
//! find the interface (the configured one; with none configured, the one that already
//! has an address whose network contains ours), **probe** the segment for another host
//! that answers for the address (IPv4: ARP probes like `arping -D`; IPv6: duplicate
//! address detection, a neighbour solicitation from `::`) for at most
//! 30 ms (`neighbour::PROBE_LISTEN`), and **refuse** with `E4301` naming that host's hardware
//! address when one answers ([`OpResult::InUse`]: the engine retries the start without
//! counting a failure, W4124); then add the address (IPv6 with `IFA_F_NODAD`: the
//! check is done, and the address is usable at once instead of after the kernel's own
//! second-long detection) and **announce** it: [`ANNOUNCEMENTS`] gratuitous ARP
//! requests (IPv6: unsolicited neighbour advertisements with the Override flag)
//! [`ANNOUNCE_INTERVAL`] apart, the first before start answers and the others from a
//! background thread, so that start does not wait for them (stop ends them). Peers and
//! routers that had the address's old hardware address switch at once instead of
//! waiting for their entry to expire. Interfaces without ARP (`NOARP`, loopback) are
//! neither probed nor announced on. An announcement that cannot be sent does not fail
//! the start (the address is up and reachable once peers ask again); it is written to
//! the resource's log and kept for [`Agent::detail`].
//!
//! **Stop** deletes the address from whichever interface holds it (the configured one
//! only, when configured). **Monitor / probe** look for it; an IPv6 address the kernel
//! marked `dadfailed` does not count.
//!
//! **Why raw sockets and not `arping`.** The probe and the announcements are a few
//! fixed frames; a raw `AF_PACKET` socket (`pnet_datalink`, frames built by
//! `pnet_packet`) sends them itself with no program to install on every node (Debian's
//! `iputils-arping` is not part of a minimal system, and it knows no IPv6: Debian's
//! IPaddr2 needs `send_ua` from `resource-agents` for that), treats both families the
//! same way, sees the answering host's hardware address directly, and waits on the
//! operation's own deadline rather than a child process's. It needs `CAP_NET_RAW`,
//! which the daemon has as root; without it start fails with `E4302` rather than add an
//! address it could not check.
//!
//! **Codes.** Failures start with their catalogue code: `E4301` (the address is
//! already answered by another host), `E4302` (the interface is missing, no interface
//! is on the address's network, the kernel refused the change, or the raw socket could
//! not be opened). A deadline that passes answers [`OpResult::Timeout`] (the engine's
//! `W4117`): every netlink `recv` and every raw-socket read waits at most until it.
//!
//! [`IpAgent::in_namespace`] runs every operation on a thread inside the named network
//! namespace (`netns`: `setns(2)` on a helper thread), for tests and labs that keep addresses inside a
//! namespace they created.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use config::IpParams;
use engine::catalogue::{IP_ADDRESS_IN_USE, IP_CHANGE_FAILED};
use engine::OpResult;

use crate::neighbour::{self, Port};
use crate::netlink::{self, Assigned, Link, Netlink};
use crate::{exec, netns, Agent, Context};

/// How many announcements (gratuitous ARPs, unsolicited neighbour advertisements) follow
/// an address's start.
pub const ANNOUNCEMENTS: u32 = 3;
/// The time between two announcements.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_millis(200);

/// What an operation needs, for the thread that runs it.
#[derive(Clone, Debug)]
struct Spec {
    address: IpAddr,
    prefix_len: u8,
    interface: Option<String>,
    log: PathBuf,
}

/// What one operation found out.
struct Outcome {
    result: OpResult,
    detail: Option<String>,
    /// Set to stop the background announcements of the start that made them.
    announcing: Option<Arc<AtomicBool>>,
}

impl Outcome {
    fn of(result: OpResult) -> Outcome {
        Outcome { result, detail: None, announcing: None }
    }
}

pub struct IpAgent {
    spec: Spec,
    netns: Option<String>,
    detail: Mutex<Option<String>>,
    announcing: Mutex<Option<Arc<AtomicBool>>>,
}

impl IpAgent {
    pub fn new(params: &IpParams, context: &Context) -> IpAgent {
        IpAgent {
            spec: Spec {
                address: params.address,
                prefix_len: params.prefix_len,
                interface: params.interface.as_ref().map(|i| i.value.clone()),
                log: context.log_file(),
            },
            netns: None,
            detail: Mutex::new(None),
            announcing: Mutex::new(None),
        }
    }

    /// The same agent working inside the named network namespace (`/run/netns/NAME`).
    pub fn in_namespace(mut self, netns: impl Into<String>) -> IpAgent {
        self.netns = Some(netns.into());
        self
    }

    /// Runs `operation` here, or on a thread inside the agent's namespace.
    fn run(&self, timeout: Duration, operation: fn(&Spec, Instant) -> Outcome) -> OpResult {
        let deadline = Instant::now() + timeout;
        let outcome = match &self.netns {
            None => operation(&self.spec, deadline),
            Some(name) => {
                let spec = self.spec.clone();
                match netns::run_in(name, deadline, move || operation(&spec, deadline)) {
                    Ok(outcome) => outcome,
                    Err(netns::Error::Timeout) => Outcome::of(OpResult::Timeout),
                    Err(netns::Error::Enter(e)) => {
                        Outcome::of(OpResult::Failed(format!("{}: {e}", IP_CHANGE_FAILED.code)))
                    }
                }
            }
        };
        *lock(&self.detail) = outcome.detail;
        let mut announcing = lock(&self.announcing);
        if let Some(previous) = announcing.take() {
            previous.store(true, Ordering::Relaxed);
        }
        *announcing = outcome.announcing;
        outcome.result
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Agent for IpAgent {
    fn start(&self, timeout: Duration) -> OpResult {
        self.run(timeout, start)
    }

    fn stop(&self, timeout: Duration) -> OpResult {
        self.run(timeout, stop)
    }

    fn monitor(&self, timeout: Duration) -> OpResult {
        self.run(timeout, monitor)
    }

    fn detail(&self) -> Option<String> {
        lock(&self.detail).clone()
    }
}

impl Drop for IpAgent {
    fn drop(&mut self) {
        if let Some(announcing) = lock(&self.announcing).take() {
            announcing.store(true, Ordering::Relaxed);
        }
    }
}

/// A netlink failure as the operation's answer.
fn failed(what: &str, error: netlink::Error) -> OpResult {
    match error {
        netlink::Error::Timeout => OpResult::Timeout,
        other => OpResult::Failed(format!("{}: {what}: {other}", IP_CHANGE_FAILED.code)),
    }
}

/// The interfaces and addresses of the namespace.
fn survey(netlink: &mut Netlink) -> Result<(Vec<Link>, Vec<Assigned>), OpResult> {
    let links = netlink.links().map_err(|e| failed("cannot list interfaces", e))?;
    let addresses = netlink.addresses().map_err(|e| failed("cannot list addresses", e))?;
    Ok((links, addresses))
}

fn name_of(links: &[Link], index: u32) -> &str {
    links.iter().find(|l| l.index == index).map_or("?", |l| l.name.as_str())
}

/// Our address where it counts: on the configured interface, or on any.
fn ours<'a>(spec: &Spec, links: &[Link], addresses: &'a [Assigned]) -> Option<&'a Assigned> {
    addresses.iter().find(|a| {
        a.address == spec.address
            && spec.interface.as_ref().is_none_or(|i| i == name_of(links, a.index))
    })
}

fn open(deadline: Instant) -> Result<Netlink, OpResult> {
    Netlink::open(deadline).map_err(|e| failed("cannot open a netlink socket", e))
}

fn start(spec: &Spec, deadline: Instant) -> Outcome {
    match try_start(spec, deadline) {
        Ok(outcome) => outcome,
        Err(result) => Outcome::of(result),
    }
}

fn try_start(spec: &Spec, deadline: Instant) -> Result<Outcome, OpResult> {
    let code = IP_CHANGE_FAILED.code;
    let mut netlink = open(deadline)?;
    let (links, addresses) = survey(&mut netlink)?;
    match ours(spec, &links, &addresses) {
        Some(a) if !a.dad_failed => return Ok(Outcome::of(OpResult::Ok)),
        // Left by an earlier, refused start: clear it so the address can be added again.
        Some(a) => netlink
            .del_address(a.index, a.address, a.prefix_len)
            .map_err(|e| failed("cannot remove the dadfailed address", e))?,
        None => {}
    }
    let link = match &spec.interface {
        Some(name) => links
            .iter()
            .find(|l| l.name == *name)
            .ok_or_else(|| OpResult::Failed(format!("{code}: interface {name} does not exist")))?,
        None => addresses
            .iter()
            .find(|a| contains(a, spec.address))
            .and_then(|a| links.iter().find(|l| l.index == a.index))
            .ok_or_else(|| {
                OpResult::Failed(format!(
                    "{code}: no interface has a network containing {}",
                    spec.address
                ))
            })?,
    };
    let port = if link.no_arp {
        None
    } else {
        let mut port = Port::open(&link.name).map_err(|e| {
            OpResult::Failed(format!(
                "{code}: cannot check {} for another host with {}: {e}",
                link.name, spec.address
            ))
        })?;
        let owner = port.find_owner(spec.address, deadline).map_err(|e| {
            OpResult::Failed(format!("{code}: duplicate-address probe on {}: {e}", link.name))
        })?;
        if let Some(owner) = owner {
            // Held elsewhere (a previous owner letting go, a frozen host): the engine
            // retries the start without counting a failure.
            return Err(OpResult::InUse(format!(
                "{}: {} is already answered by {owner} on {}: not added",
                IP_ADDRESS_IN_USE.code, spec.address, link.name
            )));
        }
        if Instant::now() >= deadline {
            return Err(OpResult::Timeout);
        }
        Some(port)
    };
    match netlink.add_address(link.index, spec.address, spec.prefix_len, true) {
        Ok(()) => {}
        // Added meanwhile (by a concurrent start): the check below decides.
        Err(netlink::Error::Io(e)) if e.raw_os_error() == Some(nix::libc::EEXIST) => {}
        Err(e) => {
            return Err(failed(
                &format!("cannot add {}/{} to {}", spec.address, spec.prefix_len, link.name),
                e,
            ))
        }
    }
    let (_, addresses) = survey(&mut netlink)?;
    if !addresses.iter().any(|a| a.address == spec.address && a.index == link.index) {
        return Err(OpResult::Failed(format!(
            "{code}: {}/{} was added but is not on {}",
            spec.address, spec.prefix_len, link.name
        )));
    }
    let mut outcome = Outcome::of(OpResult::Ok);
    if let Some(port) = port {
        match port.announce(spec.address) {
            Ok(announcer) => outcome.announcing = announce_in_background(spec, announcer),
            Err(e) => outcome.detail = Some(note(spec, &format!("announcement failed: {e}"))),
        }
    }
    Ok(outcome)
}

/// Sends the announcements after the first from a thread, until they are all sent or
/// the returned flag is set.
fn announce_in_background(
    spec: &Spec,
    mut announcer: neighbour::Announcer,
) -> Option<Arc<AtomicBool>> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let background = spec.clone();
    let spawned = thread::Builder::new().name("ip-announce".into()).spawn(move || {
        for _ in 1..ANNOUNCEMENTS {
            thread::sleep(ANNOUNCE_INTERVAL);
            if flag.load(Ordering::Relaxed) {
                return;
            }
            if let Err(e) = announcer.send() {
                note(&background, &format!("announcement failed: {e}"));
                return;
            }
        }
    });
    match spawned {
        Ok(_) => Some(cancel),
        Err(e) => {
            note(spec, &format!("cannot start the announcement thread: {e}"));
            None
        }
    }
}

/// Writes `what` about the address to the resource's log; returns the line.
fn note(spec: &Spec, what: &str) -> String {
    let mut line = String::new();
    let _ = write!(line, "ip {}: {what}", spec.address);
    if let Some(mut log) = exec::open_log(&spec.log) {
        let _ = writeln!(log, "{line}");
    }
    line
}

fn stop(spec: &Spec, deadline: Instant) -> Outcome {
    let attempt = || -> Result<OpResult, OpResult> {
        let mut netlink = open(deadline)?;
        let (links, addresses) = survey(&mut netlink)?;
        let Some(assigned) = ours(spec, &links, &addresses).cloned() else {
            return Ok(OpResult::Ok);
        };
        let name = name_of(&links, assigned.index).to_string();
        let cidr = format!("{}/{}", assigned.address, assigned.prefix_len);
        match netlink.del_address(assigned.index, assigned.address, assigned.prefix_len) {
            Ok(()) => {}
            // Removed meanwhile: the check below decides.
            Err(netlink::Error::Io(e)) if e.raw_os_error() == Some(nix::libc::EADDRNOTAVAIL) => {}
            Err(e) => return Err(failed(&format!("cannot remove {cidr} from {name}"), e)),
        }
        let (links, addresses) = survey(&mut netlink)?;
        match ours(spec, &links, &addresses) {
            None => Ok(OpResult::Ok),
            Some(_) => Err(OpResult::Failed(format!(
                "{}: {cidr} is still on {name}",
                IP_CHANGE_FAILED.code
            ))),
        }
    };
    Outcome::of(attempt().unwrap_or_else(|result| result))
}

fn monitor(spec: &Spec, deadline: Instant) -> Outcome {
    let survey = open(deadline).and_then(|mut netlink| survey(&mut netlink));
    let (links, addresses) = match survey {
        Ok(found) => found,
        Err(result) => return Outcome::of(result),
    };
    let (result, detail) = match ours(spec, &links, &addresses) {
        Some(a) if !a.dad_failed => (OpResult::Ok, None),
        Some(a) => (
            OpResult::NotRunning,
            Some(format!(
                "{} on {} failed duplicate-address detection (dadfailed)",
                spec.address,
                name_of(&links, a.index)
            )),
        ),
        None => (
            OpResult::NotRunning,
            Some(match &spec.interface {
                Some(i) => format!("{} is not on {i}", spec.address),
                None => format!("{} is on no interface", spec.address),
            }),
        ),
    };
    Outcome { result, detail, announcing: None }
}

/// Whether `address` lies in the network of `assigned`.
fn contains(assigned: &Assigned, address: IpAddr) -> bool {
    match (assigned.address, address) {
        (IpAddr::V4(net), IpAddr::V4(a)) if assigned.prefix_len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(assigned.prefix_len)).unwrap_or(0);
            u32::from(net) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(a)) if assigned.prefix_len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(assigned.prefix_len)).unwrap_or(0);
            u128::from(net) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assigned(cidr: &str) -> Assigned {
        let (a, p) = cidr.split_once('/').unwrap();
        Assigned {
            index: 1,
            address: a.parse().unwrap(),
            prefix_len: p.parse().unwrap(),
            dad_failed: false,
        }
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let net = assigned("10.1.2.3/24");
        assert!(contains(&net, "10.1.2.200".parse().unwrap()));
        assert!(!contains(&net, "10.1.3.1".parse().unwrap()));
        assert!(contains(&assigned("0.0.0.0/0"), "8.8.8.8".parse().unwrap()));
        assert!(contains(&assigned("2001:db8::1/64"), "2001:db8::99".parse().unwrap()));
        assert!(!contains(&assigned("2001:db8::1/64"), "2001:db9::1".parse().unwrap()));
        assert!(!contains(&net, "2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn only_the_configured_interface_counts() {
        let links = vec![
            Link { index: 1, name: "eth0".into(), no_arp: false },
            Link { index: 2, name: "eth1".into(), no_arp: false },
        ];
        let mut on_eth0 = assigned("10.0.0.5/24");
        on_eth0.index = 1;
        let spec = |interface: Option<&str>| Spec {
            address: "10.0.0.5".parse().unwrap(),
            prefix_len: 24,
            interface: interface.map(str::to_string),
            log: PathBuf::from("/nonexistent"),
        };
        let addresses = [on_eth0];
        assert!(ours(&spec(Some("eth0")), &links, &addresses).is_some());
        assert!(ours(&spec(Some("eth1")), &links, &addresses).is_none());
        assert!(ours(&spec(None), &links, &addresses).is_some());
    }
}
