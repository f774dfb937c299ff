//! The lab's integration tests (one binary for the crate): they build real labs of
//! network, PID and mount namespaces, bridges and loop devices, so they run only as root
//! with `TANDEM_LAB=1`; elsewhere they fail under the test command (naming what is
//! missing) and skip loudly under a plain `cargo test` (`testgate`). Each test checks at
//! its end that its lab left no namespace, loop device, image file or directory behind.
//! They must not reach any address outside the lab's own namespaces.

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use testbed::{leftovers, HostDir, Lab, Network, Node};

/// The reachability helper built with this crate.
const PROBE: &str = env!("CARGO_BIN_EXE_testbed-probe");

/// The port the probe listens on inside a host.
const PROBE_PORT: u16 = 7000;

/// How long one reachability attempt may take.
const ATTEMPT_TIMEOUT_MS: &str = "1000";

/// How long a path may take to come up (listener start, link back up).
const UP_TIMEOUT: Duration = Duration::from_secs(10);

/// `true` when a lab can be built here; otherwise fails or skips (`testgate`).
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
            testgate::cannot_run(test, &why);
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
    assert_eq!(spawned.pid_in_host(), Some(2), "the first process after the host's init");
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

/// An echo server on the client's own loopback (`127.0.0.1:7001` in its namespace), as a
/// WebDriver server would listen there: reached from the test machine's loopback through
/// [`Lab::forward_tcp`], both ways and with the end of each direction passed on; the
/// same port on the test machine's own loopback is another place.
#[test]
fn forward_tcp_reaches_a_service_on_a_machines_loopback() {
    if !lab_available("forward_tcp_reaches_a_service_on_a_machines_loopback") {
        return;
    }
    use std::io::{Read as _, Write as _};
    let lab = Lab::builder().hosts(1).build().expect("building the lab");
    let echo = r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 7001))
s.listen(4)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    data = b""
    while True:
        d = c.recv(4096)
        if not d:
            break
        data += d
    c.sendall(b"echo:" + data)
    c.close()
"#;
    let server = lab.spawn(Node::Client, &["python3", "-c", echo]).expect("echo server");
    assert!(eventually(|| server.stdout().unwrap_or_default().contains("listening")));
    let forward = lab.forward_tcp(Node::Client, 7001).expect("forwarder");
    assert!(forward.address().ip().is_loopback());
    for round in 0..3 {
        let mut stream = std::net::TcpStream::connect(forward.address()).expect("connect");
        stream.set_read_timeout(Some(UP_TIMEOUT)).unwrap();
        stream.write_all(format!("hello {round}").as_bytes()).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("the answer, then its end");
        assert_eq!(answer, format!("echo:hello {round}"));
    }
    let here = std::net::TcpStream::connect(("127.0.0.1", 7001)).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
        s.write_all(b"x")?;
        s.shutdown(std::net::Shutdown::Write)?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).map(|_| answer)
    });
    assert!(!matches!(here.as_deref(), Ok("echo:x")), "the client's loopback is not ours");
    drop(forward);
    drop(server);
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

/// Polls `check` until it holds or [`UP_TIMEOUT`] passes.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + UP_TIMEOUT;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    false
}

/// Runs `script` with `sh -c` in `node` and returns its stdout; panics when it fails.
fn sh(lab: &Lab, node: Node, script: &str) -> String {
    let output = lab.exec(node, &["sh", "-c", script]).expect("exec");
    assert!(output.success(), "`{script}` failed in {node:?}: {}", output.stderr);
    output.stdout
}

#[test]
fn each_host_has_its_own_etc_tandem_state_dir_run_sys_and_pids() {
    if !lab_available("each_host_has_its_own_etc_tandem_state_dir_run_sys_and_pids") {
        return;
    }
    let lab = Lab::builder().hosts(2).build().expect("building the lab");
    let (a, b) = (Node::Host(0), Node::Host(1));
    // Written from outside, read inside A only.
    let etc_a = lab.host_dir(a, HostDir::EtcTandem).expect("dir");
    std::fs::write(etc_a.join("cluster.toml"), "# host A\n").expect("write");
    assert_eq!(sh(&lab, a, "cat /etc/tandem/cluster.toml"), "# host A\n");
    assert_eq!(sh(&lab, b, "ls -A /etc/tandem"), "");
    // Written inside, seen from outside, and not by the other host.
    sh(&lab, a, "echo 1234 > /run/x.pid && echo state > /var/lib/tandem/s");
    let run_a = lab.host_dir(a, HostDir::Run).expect("dir");
    assert_eq!(std::fs::read_to_string(run_a.join("x.pid")).expect("read"), "1234\n");
    let state_a = lab.host_dir(a, HostDir::VarLibTandem).expect("dir");
    assert_eq!(std::fs::read_to_string(state_a.join("s")).expect("read"), "state\n");
    assert!(!lab.exec(b, &["test", "-e", "/run/x.pid"]).expect("exec").success());
    // /sys shows the host's own interfaces; the client has only the public network.
    assert_eq!(sh(&lab, a, "ls /sys/class/net"), "lo\npriv0\npub0\n");
    assert_eq!(sh(&lab, Node::Client, "ls /sys/class/net"), "lo\npub0\n");
    // Its own PID namespace: the init is 1, a shell entered later sees itself as small.
    assert_eq!(sh(&lab, a, "cat /proc/1/comm"), "testbed-init\n");
    let env = [("TANDEM_TEST_VALUE", "carried")];
    let mut shell = lab
        .spawn_env(a, &["sh", "-c", "echo $TANDEM_TEST_VALUE $$; exec sleep 1000"], &env)
        .expect("spawn");
    assert!(eventually(|| shell.stdout().expect("stdout").ends_with('\n')));
    let pid_in_host = shell.pid_in_host().expect("running");
    assert_eq!(shell.stdout().expect("stdout"), format!("carried {pid_in_host}\n"));
    assert!(pid_in_host < 100, "PID {pid_in_host} inside a fresh host");
    assert_eq!(lab.pid_outside(a, pid_in_host).expect("pids"), Some(shell.pid() as i32));
    assert_eq!(lab.pid_outside(b, pid_in_host).expect("pids"), None);
    assert!(shell.kill().expect("kill").signal() == Some(9), "killed by SIGKILL");
    tear_down(lab);
}

#[test]
fn orphans_are_reaped_at_once_and_kill_process_hits_only_its_host() {
    if !lab_available("orphans_are_reaped_at_once_and_kill_process_hits_only_its_host") {
        return;
    }
    let lab = Lab::builder().hosts(2).client(false).build().expect("building the lab");
    let (a, b) = (Node::Host(0), Node::Host(1));
    // The shell exits at once and leaves its sleep to the host's init.
    let pid_in_host = sh(&lab, a, "sleep 1000 >/dev/null 2>&1 & echo $!");
    let pid_in_host: i32 = pid_in_host.trim().parse().expect("a PID");
    let orphan = lab.pid_outside(a, pid_in_host).expect("pids").expect("the sleep runs");
    assert_eq!(lab.pids(a).expect("pids"), vec![orphan]);
    assert!(lab.kill_process(b, orphan).is_err(), "a process of A killed through B");
    lab.kill_process(a, orphan).expect("kill");
    // Gone altogether (reaped), not a zombie waiting for the machine's slow PID 1.
    assert!(eventually(|| !Path::new(&format!("/proc/{orphan}")).exists()), "not reaped");
    assert_eq!(lab.pids(a).expect("pids"), Vec::<i32>::new());
    tear_down(lab);
}

#[test]
fn cut_between_two_hosts_leaves_the_client_and_the_other_hosts_reaching_both() {
    if !lab_available("cut_between_two_hosts_leaves_the_client_and_the_other_hosts_reaching_both") {
        return;
    }
    let lab = Lab::builder().hosts(3).build().expect("building the lab");
    let (a, b, c) = (Node::Host(0), Node::Host(1), Node::Host(2));
    let port = PROBE_PORT.to_string();
    let _listeners: Vec<_> =
        [a, b].iter().map(|&n| lab.spawn(n, &[PROBE, "listen", &port]).expect("probe")).collect();
    let private = |n| address(&lab, n, Network::Private);
    let public = |n| address(&lab, n, Network::Public);
    assert!(eventually_reaches(&lab, a, private(b)));
    assert!(eventually_reaches(&lab, b, private(a)));

    lab.cut_between(0, 1, Network::Private).expect("cut between");
    assert!(!reaches(&lab, a, private(b)), "A still reaches B on the private network");
    assert!(!reaches(&lab, b, private(a)), "B still reaches A on the private network");
    assert!(reaches(&lab, a, public(b)), "the public network was cut too");
    assert!(reaches(&lab, c, private(a)) && reaches(&lab, c, private(b)), "C was cut off");
    assert!(reaches(&lab, Node::Client, public(a)), "the client lost A");
    assert!(reaches(&lab, Node::Client, public(b)), "the client lost B");

    lab.heal_between(1, 0, Network::Private).expect("heal between");
    assert!(eventually_reaches(&lab, a, private(b)), "A does not reach B after healing");
    assert!(lab.cut_between(0, 0, Network::Private).is_err(), "a host cut from itself");
    assert!(lab.cut_between(0, 3, Network::Private).is_err(), "no host 3");
    tear_down(lab);
}

#[test]
fn cut_keeps_the_carrier_and_carrier_off_drops_it() {
    if !lab_available("cut_keeps_the_carrier_and_carrier_off_drops_it") {
        return;
    }
    let lab = Lab::builder().hosts(2).client(false).build().expect("building the lab");
    let (a, b) = (Node::Host(0), Node::Host(1));
    let _listener = lab.spawn(b, &[PROBE, "listen", &PROBE_PORT.to_string()]).expect("probe");
    let private_b = address(&lab, b, Network::Private);
    let carrier = || sh(&lab, b, "cat /sys/class/net/priv0/carrier");
    assert!(eventually_reaches(&lab, a, private_b));

    lab.cut_all(b).expect("cut all");
    assert!(!reaches(&lab, a, private_b), "private passes after cut_all");
    assert!(!reaches(&lab, a, address(&lab, b, Network::Public)), "public passes after cut_all");
    assert_eq!(carrier(), "1\n", "a cut must keep the carrier up");
    lab.heal_all(b).expect("heal all");
    assert!(eventually_reaches(&lab, a, private_b));

    lab.carrier_off(b, Network::Private).expect("carrier off");
    assert!(eventually(|| carrier() == "0\n"), "B's interface still has carrier");
    assert!(!reaches(&lab, a, private_b), "private passes without carrier");
    lab.carrier_on(b, Network::Private).expect("carrier on");
    assert!(eventually(|| carrier() == "1\n"), "B's carrier does not come back");
    assert!(eventually_reaches(&lab, a, private_b));
    tear_down(lab);
}

/// The share of `count` pings from `from` to `to` that got no answer, in percent.
fn ping_loss(lab: &Lab, from: Node, to: Ipv4Addr, count: u32) -> u32 {
    let count = count.to_string();
    let to = to.to_string();
    let output = lab
        .exec(from, &["ping", "-n", "-q", "-c", &count, "-i", "0.01", "-W", "1", &to])
        .expect("ping");
    let summary = output.stdout.lines().find(|l| l.contains("packet loss")).unwrap_or_else(|| {
        panic!("no ping summary: {} {}", output.stdout, output.stderr);
    });
    let percent = summary.split(',').find(|f| f.contains("packet loss")).expect("loss field");
    let percent = percent.trim().split('%').next().expect("a number");
    percent.parse::<f64>().expect("a percentage").round() as u32
}

#[test]
fn loss_drops_about_the_share_asked_for() {
    if !lab_available("loss_drops_about_the_share_asked_for") {
        return;
    }
    if let Err(missing) = testgate::program("ping", "iputils-ping") {
        testgate::cannot_run("loss_drops_about_the_share_asked_for", &missing);
        return;
    }
    let lab = Lab::builder().hosts(2).client(false).build().expect("building the lab");
    let (a, b) = (Node::Host(0), Node::Host(1));
    let private_b = address(&lab, b, Network::Private);
    assert_eq!(ping_loss(&lab, a, private_b, 20), 0, "loss without a fault");
    // 30 % each way: about 51 % of round trips fail; 200 pings keep the bounds safe.
    lab.loss(b, Network::Private, 30).expect("loss");
    let lost = ping_loss(&lab, a, private_b, 200);
    assert!((25..=80).contains(&lost), "{lost} % lost with 30 % each way");
    assert_eq!(ping_loss(&lab, a, address(&lab, b, Network::Public), 20), 0, "public lossy");
    lab.loss(b, Network::Private, 100).expect("loss");
    assert_eq!(ping_loss(&lab, a, private_b, 10), 100);
    lab.loss(b, Network::Private, 0).expect("no loss");
    assert_eq!(ping_loss(&lab, a, private_b, 20), 0, "loss after ending it");
    assert!(lab.loss(b, Network::Private, 101).is_err());
    tear_down(lab);
}

/// One 4 KiB block aligned for O_DIRECT.
#[repr(C, align(4096))]
struct Block([u8; 4096]);

/// Opens `device` for O_DIRECT reads and writes.
fn open_direct(device: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_DIRECT.bits())
        .open(device)
        .expect("opening the device O_DIRECT")
}

/// The size of loop device `device` in 512-byte sectors, per sysfs.
fn sectors(device: &Path) -> u64 {
    let name = device.file_name().expect("a device name").to_string_lossy().into_owned();
    let size = std::fs::read_to_string(format!("/sys/block/{name}/size")).expect("size");
    size.trim().parse().expect("a number")
}

#[test]
fn a_lost_disk_path_fails_io_on_open_descriptors_until_restored() {
    if !lab_available("a_lost_disk_path_fails_io_on_open_descriptors_until_restored") {
        return;
    }
    let lab = Lab::builder().hosts(2).client(false).shared_disk_mib(32).build().expect("lab");
    let (device_a, device_b) = (lab.disk_device(0).expect("A"), lab.disk_device(1).expect("B"));
    let full = sectors(device_a);
    // The last 4 KiB of the image: past the ext4 metadata the lab wrote.
    let offset = (32 << 20) - 4096;
    let (file_a, file_b) = (open_direct(device_a), open_direct(device_b));
    let mut block = Block([0xA5; 4096]);
    file_a.write_all_at(&block.0, offset).expect("writing through A");

    lab.lose_disk(0).expect("lose A's disk path");
    assert_eq!(sectors(device_a), 1, "A's device did not shrink");
    assert_eq!(sectors(device_b), full, "B's device shrank too");
    assert!(file_a.write_at(&block.0, offset).is_err(), "a write through A still succeeds");
    let read = file_a.read_at(&mut block.0, offset);
    assert!(!matches!(read, Ok(n) if n > 0), "a read through A still returns data: {read:?}");
    block.0.fill(0);
    file_b.read_exact_at(&mut block.0, offset).expect("reading through B");
    assert_eq!(block.0, [0xA5; 4096], "B does not see A's block");

    lab.restore_disk(0).expect("restore A's disk path");
    assert_eq!(sectors(device_a), full);
    block.0.fill(0);
    file_a.read_exact_at(&mut block.0, offset).expect("reading through A again");
    assert_eq!(block.0, [0xA5; 4096]);
    file_a.write_all_at(&block.0, offset).expect("writing through A again");
    drop((file_a, file_b));
    tear_down(lab);
}

#[test]
fn a_crash_cuts_the_disk_and_drops_ram_state_and_restart_waits_for_the_old_mount() {
    if !lab_available(
        "a_crash_cuts_the_disk_and_drops_ram_state_and_restart_waits_for_the_old_mount",
    ) {
        return;
    }
    let lab = Lab::builder().hosts(2).client(false).shared_disk_mib(32).build().expect("lab");
    let a = Node::Host(0);
    let device = lab.disk_device(0).expect("A's device").to_path_buf();
    let device_name = device.file_name().expect("name").to_string_lossy().into_owned();
    let ext4 = Path::new("/sys/fs/ext4").join(&device_name);
    let full = sectors(&device);
    let namespace = lab.namespace(a);
    let addresses = || {
        let output = std::process::Command::new("ip")
            .args(["-n", &namespace, "-o", "-4", "addr", "show"])
            .output()
            .expect("ip addr");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    // A mounts the shared disk in its own mount namespace and keeps writing to it; a
    // virtual IP is RAM state.
    let mount = format!("mkdir /run/data && mount {} /run/data", device.display());
    sh(&lab, a, &mount);
    assert!(ext4.exists(), "no ext4 superblock for {device_name}");
    let _writer = lab
        .spawn(a, &["sh", "-c", "while :; do echo x >> /run/data/log; sleep 0.01; done"])
        .expect("writer");
    sh(&lab, a, "echo synced > /run/data/kept && sync /run/data/kept");
    sh(&lab, a, "ip addr add 192.168.251.99/24 dev pub0");
    std::fs::write(lab.host_dir(a, HostDir::EtcTandem).expect("dir").join("kept"), "")
        .expect("write");
    assert!(addresses().contains("192.168.251.99"));

    lab.crash(0).expect("crash");
    assert_eq!(sectors(&device), 1, "the crash left A's disk path");
    assert_eq!(lab.pids(a).expect("pids"), Vec::<i32>::new());
    assert!(!addresses().contains("192.168."), "addresses survived: {}", addresses());
    assert!(lab.spawn(a, &["true"]).is_err(), "a crashed host runs commands");
    assert!(lab.crash(0).is_err(), "crashed twice");

    lab.restart(0).expect("restart");
    assert!(!ext4.exists(), "the old mount outlived the restart");
    assert_eq!(sectors(&device), full, "the disk path did not come back");
    assert!(addresses().contains("192.168.250.10") && addresses().contains("192.168.251.10"));
    assert!(!addresses().contains("192.168.251.99"), "the virtual IP came back");
    assert_eq!(sh(&lab, a, "ls -A /run"), "", "/run survived the crash");
    assert_eq!(sh(&lab, a, "ls /etc/tandem"), "kept\n", "/etc/tandem lost its file");
    assert!(lab.restart(0).is_err(), "restarted a running host");
    // The file system mounts again and holds what was synced before the crash (what
    // was not may be lost, as in a real crash).
    let kept = sh(&lab, a, &format!("{mount} && cat /run/data/kept && umount /run/data"));
    assert_eq!(kept, "synced\n");
    tear_down(lab);
}

#[test]
fn a_panic_with_faults_in_force_still_removes_everything() {
    if !lab_available("a_panic_with_faults_in_force_still_removes_everything") {
        return;
    }
    let prefix = std::sync::Mutex::new(String::new());
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::builder().hosts(2).shared_disk_mib(16).build().expect("lab");
        *prefix.lock().expect("lock") = lab.prefix().to_owned();
        let _sleeper = lab.spawn(Node::Host(1), &["sleep", "1000"]).expect("sleep");
        sh(&lab, Node::Host(1), "sleep 1000 >/dev/null 2>&1 &");
        let device = lab.disk_device(1).expect("B's device").display().to_string();
        sh(&lab, Node::Host(1), &format!("mkdir /run/d && mount {device} /run/d"));
        lab.cut_between(0, 1, Network::Private).expect("cut between");
        lab.loss(Node::Client, Network::Public, 10).expect("loss");
        lab.carrier_off(Node::Host(0), Network::Public).expect("carrier off");
        lab.lose_disk(1).expect("lose disk");
        lab.crash(0).expect("crash");
        panic!("a test failing with the lab in this state");
    });
    assert!(result.is_err());
    let prefix = prefix.into_inner().expect("lock");
    let left = leftovers(&prefix).expect("listing leftovers");
    assert!(left.is_empty(), "lab {prefix} left behind: {left:?}");
}

#[test]
fn the_heartbeat_area_is_a_device_of_its_own_lost_with_the_disk_path() {
    if !lab_available("the_heartbeat_area_is_a_device_of_its_own_lost_with_the_disk_path") {
        return;
    }
    let lab =
        Lab::builder().hosts(2).client(false).shared_disk_mib(16).area_mib(2).build().expect("lab");
    let (area_a, area_b) =
        (lab.area_device(0).expect("A's area"), lab.area_device(1).expect("B's area"));
    assert_eq!(sectors(area_a), 2 * 2048, "the area is 2 MiB");
    assert_eq!(
        sectors(lab.disk_device(0).expect("data")),
        16 * 2048,
        "the data part stops before it"
    );
    let (file_a, file_b) = (open_direct(area_a), open_direct(area_b));
    let mut block = Block([0x5A; 4096]);
    file_a.write_all_at(&block.0, 8192).expect("writing the area through A");
    block.0.fill(0);
    file_b.read_exact_at(&mut block.0, 8192).expect("reading it through B");
    assert_eq!(block.0, [0x5A; 4096]);
    // The file system is intact beside the area.
    let fsck = lab
        .exec(
            Node::Host(1),
            &["e2fsck", "-n", &lab.disk_device(1).expect("data").to_string_lossy()],
        )
        .expect("e2fsck");
    assert!(fsck.success(), "{fsck:?}");
    lab.lose_disk(0).expect("lose A's path");
    assert!(file_a.write_at(&block.0, 8192).is_err(), "A's area still writable");
    file_b.read_exact_at(&mut block.0, 8192).expect("B keeps its path");
    lab.restore_disk(0).expect("restore");
    assert_eq!(sectors(area_a), 2 * 2048, "the area came back with its own size");
    file_a.read_exact_at(&mut block.0, 8192).expect("A reads again");
    drop((file_a, file_b));
    tear_down(lab);
}
