//! The `ip` kind: a floating IP address on a network interface, through iproute2's
//! `ip` command (a child process every operation can kill at its deadline). It owns
//! adding, removing and finding the address; it must not bring links up or down, touch
//! routes, or decide anything about failures.
//!
//! **Start** is `ip addr add ADDRESS/PREFIX dev INTERFACE`; **stop** is `ip addr del`
//! on whichever interface holds the address; **monitor / probe** look for the address
//! (`ip -o addr show`) on the interface (on any interface when none is configured).
//! With no `interface` configured, start uses the interface that already has an
//! address whose network contains ours; none is [`OpResult::Failed`].
//!
//! **Left out, on purpose for now.** No duplicate-address check before adding (it
//! needs `arping -D` or a raw socket; `arping` is not installed on these machines) and
//! no gratuitous ARP / unsolicited neighbour advertisement after adding (same reason):
//! peers learn the address's new MAC only when their ARP entries expire. Both belong
//! here when a raw-socket implementation or `arping` is available.
//!
//! [`IpAgent::in_namespace`] runs every command as `ip -n NETNS ...`, for tests (and a
//! lab) that keep addresses inside a named network namespace.

use std::io::Read;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use config::IpParams;
use engine::OpResult;
use nix::sys::signal::Signal;

use crate::exec::{self, Exit};
use crate::{Agent, Context};

/// The most bytes of `ip -o addr show` read.
const ADDR_LIST_MAX_BYTES: u64 = 4 << 20;

/// One address on one interface, from `ip -o addr show`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Assigned {
    interface: String,
    address: IpAddr,
    prefix_len: u8,
}

pub struct IpAgent {
    address: IpAddr,
    prefix_len: u8,
    interface: Option<String>,
    netns: Option<String>,
    log: PathBuf,
    detail: Mutex<Option<String>>,
}

impl IpAgent {
    pub fn new(params: &IpParams, context: &Context) -> IpAgent {
        IpAgent {
            address: params.address,
            prefix_len: params.prefix_len,
            interface: params.interface.as_ref().map(|i| i.value.clone()),
            netns: None,
            log: context.log_file(),
            detail: Mutex::new(None),
        }
    }

    /// The same agent working inside the named network namespace (`ip -n NETNS`).
    pub fn in_namespace(mut self, netns: impl Into<String>) -> IpAgent {
        self.netns = Some(netns.into());
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new("ip");
        if let Some(netns) = &self.netns {
            command.args(["-n", netns]);
        }
        command
    }

    fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix_len)
    }

    /// Every address on every interface, or why they could not be listed.
    fn list(&self, deadline: Instant) -> Result<Vec<Assigned>, OpResult> {
        let mut command = self.command();
        command.args(["-o", "addr", "show"]);
        command.process_group(0).stdin(Stdio::null()).stdout(Stdio::piped());
        command.stderr(exec::open_log(&self.log).map(Stdio::from).unwrap_or_else(Stdio::null));
        let mut child = command
            .spawn()
            .map_err(|e| OpResult::Failed(format!("cannot run ip addr show: {e}")))?;
        let stdout = child.stdout.take();
        let reader = thread::spawn(move || {
            let mut text = String::new();
            if let Some(out) = stdout {
                let _ = out.take(ADDR_LIST_MAX_BYTES).read_to_string(&mut text);
            }
            text
        });
        let status = match exec::wait_until(&mut child, deadline) {
            Ok(Some(status)) => status,
            _ => {
                exec::kill_group(&child, Signal::SIGKILL);
                let _ = exec::wait_until(&mut child, Instant::now() + Duration::from_secs(2));
                return Err(OpResult::Timeout);
            }
        };
        let text = reader.join().unwrap_or_default();
        if !status.success() {
            return Err(OpResult::Failed(format!("ip addr show failed: {status}")));
        }
        Ok(parse_addr_list(&text))
    }

    /// Where the address is now, if anywhere it counts.
    fn find(&self, deadline: Instant) -> Result<Option<Assigned>, OpResult> {
        Ok(self.list(deadline)?.into_iter().find(|a| {
            a.address == self.address && self.interface.as_ref().is_none_or(|i| *i == a.interface)
        }))
    }

    fn run(&self, args: &[&str], deadline: Instant) -> Exit {
        let mut command = self.command();
        command.args(args);
        exec::run_until(command, &self.log, deadline)
    }

    fn failure(&self, what: &str, exit: Exit) -> OpResult {
        exec::failure(what, exit, &self.log)
    }
}

impl Agent for IpAgent {
    fn start(&self, timeout: Duration) -> OpResult {
        let deadline = Instant::now() + timeout;
        let addresses = match self.list(deadline) {
            Ok(addresses) => addresses,
            Err(result) => return result,
        };
        let here = |a: &&Assigned| {
            a.address == self.address && self.interface.as_ref().is_none_or(|i| *i == a.interface)
        };
        if addresses.iter().any(|a| here(&a)) {
            return OpResult::Ok;
        }
        let interface = match &self.interface {
            Some(interface) => interface.clone(),
            None => match addresses.iter().find(|a| contains(a, self.address)) {
                Some(a) => a.interface.clone(),
                None => {
                    return OpResult::Failed(format!(
                        "no interface has a network containing {}",
                        self.address
                    ))
                }
            },
        };
        let cidr = self.cidr();
        match self.run(&["addr", "add", &cidr, "dev", &interface], deadline) {
            Exit::Code(0) => {}
            other => return self.failure("ip addr add", other),
        }
        match self.find(deadline) {
            Ok(Some(_)) => OpResult::Ok,
            Ok(None) => OpResult::Failed(format!("{cidr} was added but is not on {interface}")),
            Err(result) => result,
        }
    }

    fn stop(&self, timeout: Duration) -> OpResult {
        let deadline = Instant::now() + timeout;
        let assigned = match self.find(deadline) {
            Ok(Some(assigned)) => assigned,
            Ok(None) => return OpResult::Ok,
            Err(result) => return result,
        };
        let cidr = format!("{}/{}", assigned.address, assigned.prefix_len);
        match self.run(&["addr", "del", &cidr, "dev", &assigned.interface], deadline) {
            Exit::Code(0) => {}
            other => return self.failure("ip addr del", other),
        }
        match self.find(deadline) {
            Ok(None) => OpResult::Ok,
            Ok(Some(_)) => OpResult::Failed(format!("{cidr} is still on {}", assigned.interface)),
            Err(result) => result,
        }
    }

    fn monitor(&self, timeout: Duration) -> OpResult {
        let deadline = Instant::now() + timeout;
        let (answer, detail) = match self.find(deadline) {
            Ok(Some(_)) => (OpResult::Ok, None),
            Ok(None) => (
                OpResult::NotRunning,
                Some(match &self.interface {
                    Some(i) => format!("{} is not on {i}", self.address),
                    None => format!("{} is on no interface", self.address),
                }),
            ),
            Err(result) => (result, None),
        };
        *self.detail.lock().unwrap_or_else(|p| p.into_inner()) = detail;
        answer
    }

    fn detail(&self) -> Option<String> {
        self.detail.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Parses `ip -o addr show` lines (`2: eth0    inet 10.0.0.1/24 brd ...`); lines that
/// do not parse are skipped. A name's `@peer` suffix is dropped.
fn parse_addr_list(text: &str) -> Vec<Assigned> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _index = fields.next()?;
            let name = fields.next()?;
            let interface = name.split('@').next()?.to_string();
            let family = fields.next()?;
            if family != "inet" && family != "inet6" {
                return None;
            }
            let (address, prefix) = fields.next()?.split_once('/')?;
            Some(Assigned {
                interface,
                address: address.parse().ok()?,
                prefix_len: prefix.parse().ok()?,
            })
        })
        .collect()
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

    fn assigned(interface: &str, cidr: &str) -> Assigned {
        let (a, p) = cidr.split_once('/').unwrap();
        Assigned {
            interface: interface.into(),
            address: a.parse().unwrap(),
            prefix_len: p.parse().unwrap(),
        }
    }

    #[test]
    fn addr_lines_parse() {
        let text = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                    3: va@if2    inet6 fe80::1/64 scope link \\       valid_lft forever\n\
                    4: eth0    link/ether 00:11:22:33:44:55\n";
        assert_eq!(
            parse_addr_list(text),
            vec![assigned("lo", "127.0.0.1/8"), assigned("va", "fe80::1/64")]
        );
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let net = assigned("eth0", "10.1.2.3/24");
        assert!(contains(&net, "10.1.2.200".parse().unwrap()));
        assert!(!contains(&net, "10.1.3.1".parse().unwrap()));
        assert!(contains(&assigned("x", "0.0.0.0/0"), "8.8.8.8".parse().unwrap()));
        assert!(contains(&assigned("x", "2001:db8::1/64"), "2001:db8::99".parse().unwrap()));
        assert!(!contains(&assigned("x", "2001:db8::1/64"), "2001:db9::1".parse().unwrap()));
        assert!(!contains(&net, "2001:db8::1".parse().unwrap()));
    }
}
