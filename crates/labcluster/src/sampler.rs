//! Who holds what, read from outside the hosts: a host's local addresses
//! (`/proc/PID/net/fib_trie`), its mounts (`/proc/PID/mountinfo`) and its services'
//! listening processes (their command lines; on loopback, any process by a token in
//! its command line), and a sampler thread that looks every
//! 5 ms and counts the instants at which two hosts hold the same thing at once (in every
//! lab scenario that count must stay zero).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use testbed::{Lab, Node};

/// Whether the network namespace of `pid` has `address` as a local address.
pub fn holds_address(pid: i32, address: &str) -> bool {
    let Ok(trie) = std::fs::read_to_string(format!("/proc/{pid}/net/fib_trie")) else {
        return false;
    };
    let needle = format!("|-- {address}");
    let mut lines = trie.lines();
    while let Some(line) = lines.next() {
        if line.trim() == needle && lines.next().is_some_and(|l| l.contains("/32 host LOCAL")) {
            return true;
        }
    }
    false
}

/// Whether the mount namespace of `pid` has something mounted on `mountpoint`.
pub fn holds_mount(pid: i32, mountpoint: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .map(|info| info.lines().any(|l| l.split(' ').nth(4) == Some(mountpoint)))
        .unwrap_or(false)
}

/// Whether one of `pids` is the service listening on `address` (`tandem hello --listen
/// ADDRESS`), stopped or not: its socket accepts connections while it exists. (Reading
/// `/proc/net/tcp` instead walks the kernel's whole connection table: 12 ms a read here.)
pub fn holds_service(pids: &[i32], address: &str) -> bool {
    pids.iter().any(|pid| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| {
            let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
            args.windows(2).any(|w| w[0] == b"--listen" && w[1] == address.as_bytes())
                && !zombie_or_gone(*pid)
        })
    })
}

/// PIDs of live (not zombie) processes of this machine whose command line contains
/// `token`: how a loopback cluster (no namespaces: the demo's loopback mode,
/// `tests/node.rs`) finds what its daemons started.
pub fn processes_with(token: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|raw| String::from_utf8_lossy(&raw).contains(token))
                && !zombie_or_gone(*pid)
        })
        .collect()
}

fn zombie_or_gone(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().and_then(|s| s.split_whitespace().next()).is_none_or(|s| s == "Z")
}

/// What the sampler watches: addresses, mount points and services (`ADDRESS:PORT` as
/// `tandem hello --listen` takes it) that at most one host may hold at a time.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    pub addresses: Vec<String>,
    pub mounts: Vec<String>,
    pub services: Vec<String>,
}

/// Counts of instants with two holders, and what was seen.
#[derive(Default)]
pub struct Sampled {
    pub samples: AtomicUsize,
    pub double_vip: AtomicUsize,
    pub double_mount: AtomicUsize,
    /// Instants when two hosts had the service's port open (both could answer).
    pub double_service: AtomicUsize,
    pub first_double: Mutex<Option<String>>,
}

/// The sampler: every 5 ms, which of `hosts` hold each watched thing, until `stop`.
pub fn sample(lab: &Lab, hosts: usize, watch: &Watch, sampled: &Sampled, stop: &AtomicBool) {
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let all: Vec<Vec<i32>> =
            (0..hosts).map(|h| lab.pids(Node::Host(h)).unwrap_or_default()).collect();
        let pids: Vec<Option<i32>> = all.iter().map(|p| p.first().copied()).collect();
        let note = |what: &str, holders: Vec<usize>, counter: &AtomicUsize| {
            if holders.len() > 1 {
                counter.fetch_add(1, Ordering::Relaxed);
                let mut first = sampled.first_double.lock().unwrap();
                first.get_or_insert_with(|| {
                    format!("{what} on hosts {holders:?} at {:?}", started.elapsed())
                });
            }
        };
        let checks = [
            (&watch.addresses, holds_address as fn(i32, &str) -> bool, &sampled.double_vip),
            (&watch.mounts, holds_mount, &sampled.double_mount),
        ];
        for (things, check, counter) in checks {
            for what in things {
                let holders: Vec<usize> =
                    (0..hosts).filter(|h| pids[*h].is_some_and(|pid| check(pid, what))).collect();
                note(what, holders, counter);
            }
        }
        for service in &watch.services {
            let holders: Vec<usize> =
                (0..hosts).filter(|h| holds_service(&all[*h], service)).collect();
            note(service, holders, &sampled.double_service);
        }
        sampled.samples.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(5));
    }
}
