//! The lab's integration tests (one binary for the crate): they build real labs of
//! network namespaces, bridges and loop devices, so they run only as root with
//! `TANDEM_LAB=1` and otherwise print why they skip and pass. Each test checks at its end
//! that its lab left no namespace, loop device or image file behind. They must not
//! reach any address outside the lab's own namespaces.

use std::net::Ipv4Addr;
use std::thread;
use std::time::{Duration, Instant};

use testbed::{leftovers, Lab, Network, Node};

/// The reachability helper built with this crate.
const PROBE: &str = env!("CARGO_BIN_EXE_testbed-probe");

/// The port the probe listens on inside a host.
const PROBE_PORT: u16 = 7000;

/// How long one reachability attempt may take.
const ATTEMPT_TIMEOUT_MS: &str = "1000";

/// How long a path may take to come up (listener start, link back up).
const UP_TIMEOUT: Duration = Duration::from_secs(10);

/// `true` when a lab can be built here; otherwise prints the skip line.
fn lab_available(test: &str) -> bool {
    match testbed::availability() {
        Ok(()) => {
            let swept = testbed::sweep().expect("sweeping leftovers of dead labs");
            if !swept.is_empty() {
                eprintln!("{test}: swept leftovers of dead labs: {swept:?}");
            }
            true
        }
        Err(why) => {
            eprintln!("SKIP {test}: {why}");
            false
        }
    }
}

/// Drops `lab` and asserts that nothing of it is left.
fn tear_down(lab: Lab) {
    let prefix = lab.prefix().to_owned();
    drop(lab);
    let left = leftovers(&prefix).expect("listing leftovers");
    assert!(left.is_empty(), "lab {prefix} left behind: {left:?}");
}

/// One attempt from `from` to the probe at `to`.
fn reaches(lab: &Lab, from: Node, to: Ipv4Addr) -> bool {
    let address = format!("{to}:{PROBE_PORT}");
    let output = lab.exec(from, &[PROBE, "connect", &address, ATTEMPT_TIMEOUT_MS]).expect("probe");
    output.success()
}

/// Retries until `from` reaches `to` or [`UP_TIMEOUT`] passes.
fn eventually_reaches(lab: &Lab, from: Node, to: Ipv4Addr) -> bool {
    let deadline = Instant::now() + UP_TIMEOUT;
    while Instant::now() < deadline {
        if reaches(lab, from, to) {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

fn address(lab: &Lab, node: Node, network: Network) -> Ipv4Addr {
    lab.address(node, network).expect("node is on the network")
}

#[test]
fn gating_names_its_reason() {
    if let Err(why) = testbed::availability() {
        assert!(!why.is_empty());
    }
}

#[test]
fn hosts_and_client_reach_each_other_on_both_networks() {
    if !lab_available("hosts_and_client_reach_each_other_on_both_networks") {
        return;
    }
    let lab = Lab::builder().hosts(2).build().expect("building the lab");
    let (a, b) = (Node::Host(0), Node::Host(1));
    let _listener = lab.spawn(b, &[PROBE, "listen", &PROBE_PORT.to_string()]).expect("listener");
    for network in Network::ALL {
        let to = address(&lab, b, network);
        assert!(eventually_reaches(&lab, a, to), "A does not reach B on {network:?}");
    }
    let public_b = address(&lab, b, Network::Public);
    assert!(reaches(&lab, Node::Client, public_b), "the client does not reach B");
    assert_eq!(lab.address(Node::Client, Network::Private), None);
    // No default route anywhere: an outside address is unreachable at once.
    let route = lab.exec(a, &["ip", "route", "get", "192.0.2.1"]).expect("ip route");
    assert!(!route.success(), "host A has a route out: {}", route.stdout);
    tear_down(lab);
}

#[test]
fn cut_breaks_one_network_and_heal_restores_it() {
    if !lab_available("cut_breaks_one_network_and_heal_restores_it") {
        return;
    }
    let lab = Lab::builder().hosts(2).client(false).build().expect("building the lab");
    let (a, b) = (Node::Host(0), Node::Host(1));
    let _listener = lab.spawn(b, &[PROBE, "listen", &PROBE_PORT.to_string()]).expect("listener");
    let (private_b, public_b) =
        (address(&lab, b, Network::Private), address(&lab, b, Network::Public));
    assert!(eventually_reaches(&lab, a, private_b));

    lab.cut(b, Network::Private).expect("cut");
    assert!(!reaches(&lab, a, private_b), "private still passes after the cut");
    assert!(reaches(&lab, a, public_b), "the cut also broke the public network");

    lab.heal(b, Network::Private).expect("heal");
    assert!(eventually_reaches(&lab, a, private_b), "private does not pass after heal");

    lab.cut(a, Network::Public).expect("cut");
    assert!(!reaches(&lab, a, public_b), "public still passes after cutting A");
    lab.heal(a, Network::Public).expect("heal");
    assert!(eventually_reaches(&lab, a, public_b));
    assert!(lab.cut(Node::Client, Network::Public).is_err(), "this lab has no client");
    tear_down(lab);
}

#[test]
fn crash_kills_everything_on_the_host_and_restart_brings_links_back() {
    if !lab_available("crash_kills_everything_on_the_host_and_restart_brings_links_back") {
        return;
    }
    let lab = Lab::builder().hosts(2).client(false).build().expect("building the lab");
    let (a, b) = (Node::Host(0), Node::Host(1));
    let mut sleeper = lab.spawn(b, &["sleep", "1000"]).expect("sleep");
    // A grandchild that the handle does not own: the crash must find it in the namespace.
    let mut forker = lab.spawn(b, &["sh", "-c", "sleep 1000 & wait"]).expect("sh");
    let listener = lab.spawn(b, &[PROBE, "listen", &PROBE_PORT.to_string()]).expect("listener");
    let private_b = address(&lab, b, Network::Private);
    assert!(eventually_reaches(&lab, a, private_b));
    assert!(lab.pids(b).expect("pids").len() >= 4, "sleep, sh, its sleep, the probe");
    let bystander = lab.spawn(a, &["sleep", "1000"]).expect("sleep on A");

    lab.crash(1).expect("crash");
    let status = sleeper.wait_timeout(Duration::from_secs(5)).expect("wait");
    assert!(status.is_some(), "the spawned process survived the crash");
    assert!(forker.wait_timeout(Duration::from_secs(5)).expect("wait").is_some());
    assert_eq!(lab.pids(b).expect("pids"), Vec::<i32>::new(), "processes left on B");
    assert!(!reaches(&lab, a, private_b), "B still answers after the crash");
    let mut bystander = bystander;
    assert_eq!(bystander.try_wait().expect("try_wait"), None, "the crash hit host A");

    lab.restart(1).expect("restart");
    drop(listener);
    let _listener = lab.spawn(b, &[PROBE, "listen", &PROBE_PORT.to_string()]).expect("listener");
    assert!(eventually_reaches(&lab, a, private_b), "B unreachable after restart");
    tear_down(lab);
}

#[test]
fn dropping_a_spawned_handle_kills_its_process() {
    if !lab_available("dropping_a_spawned_handle_kills_its_process") {
        return;
    }
    let lab = Lab::builder().hosts(1).client(false).build().expect("building the lab");
    let spawned = lab.spawn(Node::Host(0), &["sh", "-c", "echo started; exec sleep 1000"]);
    let spawned = spawned.expect("spawn");
    let pid = spawned.pid() as i32;
    let deadline = Instant::now() + UP_TIMEOUT;
    while spawned.stdout().expect("stdout") != "started\n" && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(spawned.stdout().expect("stdout"), "started\n");
    assert_eq!(lab.pids(Node::Host(0)).expect("pids"), vec![pid]);
    drop(spawned);
    assert_eq!(lab.pids(Node::Host(0)).expect("pids"), Vec::<i32>::new());
    tear_down(lab);
}

#[test]
fn a_file_written_through_one_hosts_device_is_read_through_the_others() {
    if !lab_available("a_file_written_through_one_hosts_device_is_read_through_the_others") {
        return;
    }
    let lab = Lab::builder().hosts(2).client(false).shared_disk_mib(32).build().expect("lab");
    let (device_a, device_b) = (lab.disk_device(0).expect("A"), lab.disk_device(1).expect("B"));
    assert_ne!(device_a, device_b, "each host has its own loop device");
    let mount_point = tempfile::tempdir().expect("mount point");
    let dir = mount_point.path().display().to_string();
    // Each host mounts in a private mount namespace of its own; A unmounts before B mounts.
    let write = format!(
        "mount {} {dir} && echo 'written by A' > {dir}/note && umount {dir}",
        device_a.display()
    );
    let read = format!("mount -o ro {} {dir} && cat {dir}/note; umount {dir}", device_b.display());
    let in_private_mounts = |host: usize, script: &str| {
        let command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script];
        lab.exec(Node::Host(host), &command).expect("exec")
    };
    let written = in_private_mounts(0, &write);
    assert!(written.success(), "writing through A failed: {}", written.stderr);
    let read = in_private_mounts(1, &read);
    assert!(read.success(), "reading through B failed: {}", read.stderr);
    assert_eq!(read.stdout, "written by A\n");
    tear_down(lab);
}

#[test]
fn invalid_labs_are_refused() {
    if !lab_available("invalid_labs_are_refused") {
        return;
    }
    assert!(Lab::builder().hosts(0).build().is_err());
    assert!(Lab::builder().hosts(testbed::HOSTS_MAX + 1).build().is_err());
    let error = Lab::builder().hosts(1).shared_disk_mib(1).build().expect_err("1 MiB disk");
    assert!(error.to_string().contains("MiB"), "{error}");
    tear_down(Lab::builder().hosts(1).build().expect("lab"));
}
