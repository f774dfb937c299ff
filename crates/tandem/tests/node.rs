//! `tandem node` end to end on loopback, without root: two real daemons (and their
//! fence guards) on 127.0.0.1, UDP links, a plain file as the shared disk with disk
//! arbitration, and `process` resources. A sampler scans /proc every few milliseconds
//! for the group's process (a `sleep` with an argument unique to the test) and fails the
//! test if two copies ever run at once.
//!
//! Local access is tested here too: private sockets, keys and state directories, the
//! guard's token, and (as root only: it runs the CLI as `nobody`) who may use the
//! control socket.
//!
//! The lab tests (`lab.rs`) do the same with network namespaces, virtual IPs and a
//! shared block device, as root.

use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use contract::{NodeState, Receiving, Status};
use labcluster::sampler::processes_with;

#[path = "support/loopback.rs"]
mod loopback;
use loopback::{formed, Cluster, NODES, TANDEM};

#[test]
fn a_killed_daemon_is_fenced_by_its_guard_before_the_peer_takes_over() {
    let mut cluster = formed();
    cluster.signal(0, nix::sys::signal::Signal::SIGKILL);
    cluster.wait_exit(0, Duration::from_secs(2)).expect("killed");
    cluster.wait_running_on(1, "beta", Duration::from_secs(15));
    // Keep sampling a little: the old copy must not come back either.
    thread::sleep(Duration::from_millis(500));
    assert_eq!(cluster.most_at_once(), 1, "two copies ran at once\n{}", cluster.logs());
    assert!(cluster.codes(0).contains(&"E3109".to_string()), "{:?}", cluster.codes(0));
    assert!(cluster.codes(1).contains(&"W4111".to_string()), "{:?}", cluster.codes(1));
}

#[test]
fn sigterm_hands_the_group_over_and_exits_cleanly() {
    let mut cluster = formed();
    let before = Instant::now();
    cluster.signal(0, nix::sys::signal::Signal::SIGTERM);
    let status = cluster.wait_exit(0, Duration::from_secs(10)).expect("exited");
    assert!(status.success(), "{status:?}\n{}", cluster.logs());
    cluster.wait_running_on(1, "beta", Duration::from_secs(10));
    // Handed over: no lease expiry to wait for (lease 1 s, takeover wait > 1.2 s).
    assert!(before.elapsed() < Duration::from_secs(5));
    assert_eq!(cluster.most_at_once(), 1, "{}", cluster.logs());
    let codes = cluster.codes(0);
    for code in ["I4205", "I3102", "I2114"] {
        assert!(codes.contains(&code.to_string()), "{code} missing: {codes:?}");
    }
}

#[test]
fn a_restarted_daemon_reattaches_to_its_running_group() {
    let mut cluster = formed();
    let before = processes_with(&cluster.token);
    assert_eq!(before.len(), 1);
    cluster.signal(0, nix::sys::signal::Signal::SIGKILL);
    cluster.wait_exit(0, Duration::from_secs(2)).expect("killed");
    cluster.start(0);
    cluster.wait_code(0, "I4120", Duration::from_secs(15));
    cluster.wait_running_on(1, "alpha", Duration::from_secs(15));
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        processes_with(&cluster.token),
        before,
        "the process was restarted\n{}",
        cluster.logs()
    );
    assert!(!cluster.codes(0).contains(&"E3109".to_string()), "the guard fired");
    assert_eq!(cluster.most_at_once(), 1);
}

#[test]
fn switchover_and_admin_commands_from_the_cli() {
    let mut cluster = formed();
    let run = |args: &[&str], run_dir: &Path| {
        let out =
            Command::new(TANDEM).args(args).arg("--runtime-dir").arg(run_dir).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, _) = run(&["switchover", "web", "--to", "beta"], &cluster.run_dir(0));
    assert!(ok);
    cluster.wait_running_on(0, "beta", Duration::from_secs(10));
    assert_eq!(cluster.most_at_once(), 1);
    let (ok, err) = run(&["switchover", "nope"], &cluster.run_dir(0));
    assert!(!ok);
    assert!(err.contains("no group `nope`"), "{err}");
    let (ok, _) = run(&["drain", "beta"], &cluster.run_dir(1));
    assert!(ok);
    cluster.wait_running_on(1, "alpha", Duration::from_secs(10));
    // Each accepted command is journaled with who gave it (I5107), before its effects.
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid()).unwrap().unwrap().name;
    let uid = nix::unistd::geteuid().as_raw();
    for (node, what) in [(0, "switchover of group `web` to beta"), (1, "drain of node beta")] {
        let entries = daemon::journal::read_journal(&cluster.state(node)).unwrap();
        let entry = entries.iter().find(|e| e.code == "I5107").unwrap_or_else(|| {
            panic!("no I5107 on {}: {entries:#?}", NODES[node]);
        });
        let by = format!("{what} requested by {me} (uid {uid}, pid ");
        assert!(entry.message.starts_with(&by), "{}", entry.message);
    }
    // The refused switch-over (no such group) was not journaled as accepted.
    let accepted = daemon::journal::read_journal(&cluster.state(0)).unwrap();
    assert_eq!(accepted.iter().filter(|e| e.code == "I5107").count(), 1);
    // The drain is kept across a restart of the node that holds it.
    cluster.signal(1, nix::sys::signal::Signal::SIGTERM);
    cluster.wait_exit(1, Duration::from_secs(10)).expect("stopped");
    cluster.start(1);
    thread::sleep(Duration::from_secs(2));
    let doc = cluster.status(1);
    assert_eq!(doc.nodes[1].state, NodeState::Drained, "{doc:#?}");
    let _ = &mut cluster;
}

/// The journal's disk hangs (`TANDEM_TEST_STALL`: every journal write and every save of
/// admin.json takes 2 s, four peer timeouts): the loop still beats and answers, and a
/// command is answered only once what it caused is on disk.
#[test]
fn a_stalled_journal_disk_stalls_neither_heartbeats_nor_status() {
    let mut cluster = Cluster::new();
    cluster.start_env(0, &[], &[(daemon::stall::ENV, "journal:2000,save_admin:2000")]);
    cluster.start(1);
    cluster.wait_running_on(1, "alpha", Duration::from_secs(20));
    let state = cluster.state(0);
    let run_dir = cluster.run_dir(0);
    let drain = thread::spawn(move || {
        let started = Instant::now();
        let out = Command::new(TANDEM)
            .args(["drain", "beta", "--runtime-dir"])
            .arg(&run_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // Answered: the entry and admin.json are on disk already.
        let codes: Vec<_> =
            daemon::journal::read_journal(&state).unwrap().into_iter().map(|e| e.code).collect();
        let admin = std::fs::read_to_string(state.join("admin.json")).unwrap();
        (started.elapsed(), codes, admin)
    });
    // Meanwhile the loop answers at once, again and again.
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let asked = Instant::now();
        let doc = cluster.status(0);
        slowest = slowest.max(asked.elapsed());
        assert_eq!(doc.groups[0].owner.as_deref(), Some("alpha"), "{doc:#?}");
        thread::sleep(Duration::from_millis(100));
    }
    let (took, codes, admin) = drain.join().unwrap();
    assert!(took >= Duration::from_secs(2), "answered before the stalled sync: {took:?}");
    assert!(codes.iter().any(|c| c == "I4203"), "{codes:?}");
    assert!(admin.contains("true"), "{admin}");
    assert!(slowest < Duration::from_secs(1), "status took {slowest:?}");
    let doc = cluster.status(0);
    assert!(doc.journal.durable_id > 0, "{doc:#?}");
    // The peer never missed a heartbeat long enough to call alpha lost.
    let lost: Vec<_> = cluster.codes(1).into_iter().filter(|c| c == "E2104").collect();
    assert!(lost.is_empty(), "beta lost alpha: {:?}\n{}", cluster.codes(1), cluster.logs());
    assert_eq!(cluster.most_at_once(), 1);
}

/// The nodes' addresses on `net1` and `net2`, from the configuration.
fn addresses(cluster: &Cluster) -> [[std::net::SocketAddr; 2]; 2] {
    let config = std::fs::read_to_string(&cluster.config).unwrap();
    let at = |node: &str, link: &str| -> std::net::SocketAddr {
        let block = config.split(&format!("name = \"{node}\"")).nth(1).unwrap();
        let text = block.split(&format!("{link} = \"")).nth(1).unwrap();
        text.split('"').next().unwrap().parse().unwrap()
    };
    [[at("alpha", "net1"), at("alpha", "net2")], [at("beta", "net1"), at("beta", "net2")]]
}

/// A heartbeat of beta (standby, the one group stopped) as its daemon would send it.
fn beta_heartbeat(incarnation: u64, sequence: u64) -> engine::Heartbeat {
    let none = engine::Lww::default();
    engine::Heartbeat {
        from: engine::NodeId(1),
        incarnation,
        sequence,
        sent_at: engine::Instant::from_nanos(sequence * 50_000_000),
        echo: None,
        report: Arc::new(engine::NodeReport {
            state: engine::NodeState::Standby,
            storage_ok: true,
            groups: vec![engine::GroupReport {
                state: engine::GroupState::Stopped,
                ineligible: None,
                holds_lease: false,
                handoff_to: None,
            }],
            links_up: Vec::new(),
            admin: engine::AdminState {
                maintenance: none,
                drained: vec![none; 2],
                switchover: vec![engine::Lww::default()],
                clear: vec![engine::Lww::default()],
            },
        }),
    }
}

fn received(doc: &Status, link: &str) -> Receiving {
    doc.receiving(link).cloned().expect(link)
}

/// Alpha's `net1` once it rejected `want` packets (or after 5 s).
fn wait_rejected(cluster: &Cluster, want: u64) -> Receiving {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let l = received(&cluster.status(0), "net1");
        if l.rejected >= want || Instant::now() > deadline {
            return l;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Beta is played by the test, with the cluster key (as an attacker who stole it would
/// have it) and beta's own addresses: alpha accepts its heartbeats, then refuses every
/// kind of forgery for its own reason — most of them reaching the tag check or the
/// replay window, not stopping at the cluster id — counts them by reason and by source
/// in `tandem status` and the journal, and after a restart of alpha refuses what it
/// accepted before it (the peer looks alive only while new heartbeats come).
#[test]
fn forged_replayed_and_misrouted_packets_are_refused_by_reason_even_after_a_restart() {
    let mut cluster = Cluster::new();
    cluster.start(0);
    cluster.wait_running_on(0, "alpha", Duration::from_secs(15));
    let [[alpha1, alpha2], [beta1, beta2]] = addresses(&cluster);
    let key = wire::Key::from_file(&cluster.dir.path().join("cluster.key")).unwrap();
    let cluster_id = wire::ClusterId::from_name("looptest");
    let to_alpha =
        |link: u16| wire::Route { link: engine::LinkId(link), to: Some(engine::NodeId(0)) };
    let frame = |key: &wire::Key, route, seq| {
        wire::encode(key, cluster_id, route, &beta_heartbeat(77, seq)).unwrap()
    };
    let (b1, b2) = (UdpSocket::bind(beta1).unwrap(), UdpSocket::bind(beta2).unwrap());
    // Beta's heartbeats on both links, every 50 ms, captured by the attacker as sent.
    let mut captured = Vec::new();
    for seq in 1..=30 {
        let (f1, f2) = (frame(&key, to_alpha(0), seq), frame(&key, to_alpha(1), seq));
        b1.send_to(&f1, alpha1).unwrap();
        b2.send_to(&f2, alpha2).unwrap();
        captured.push((f1, f2));
        thread::sleep(Duration::from_millis(50));
    }
    cluster.wait_code(0, "I2103", Duration::from_secs(5));
    let accepted = received(&cluster.status(0), "net1").accepted;
    assert!(accepted >= 25, "{accepted}");
    // Beta dies. The attacker, from beta's addresses:
    // right cluster id, wrong key;
    let stolen = wire::Key::new([0x5a; 32]);
    for seq in 31..=40 {
        b1.send_to(&frame(&stolen, to_alpha(0), seq), alpha1).unwrap();
    }
    // right key, replayed as captured;
    for (f1, _) in &captured {
        b1.send_to(f1, alpha1).unwrap();
    }
    // right key, captured on the other link;
    for (_, f2) in &captured {
        b1.send_to(f2, alpha1).unwrap();
    }
    // right key, for another node (a frame beta sent to a third node);
    let to_beta = wire::Route { link: engine::LinkId(0), to: Some(engine::NodeId(1)) };
    for seq in 41..=45 {
        b1.send_to(&frame(&key, to_beta, seq), alpha1).unwrap();
    }
    // right key, beta's frame from alpha's other address on the link (not beta's);
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 46..=50 {
        stranger.send_to(&frame(&key, to_alpha(0), seq), alpha1).unwrap();
        stranger.send_to(b"garbage", alpha1).unwrap();
    }
    let l = wait_rejected(&cluster, 10 + 30 + 30 + 5 + 10);
    let reason = |r: &str| l.rejected_by_reason.get(r).copied().unwrap_or(0);
    assert_eq!(reason("bad_tag"), 10, "{l:#?}");
    assert_eq!(reason("replayed") + reason("too_old"), 30, "{l:#?}");
    assert_eq!(reason("other_link"), 30, "{l:#?}");
    assert_eq!(reason("other_receiver"), 5, "{l:#?}");
    assert_eq!(reason("unknown_source"), 10, "{l:#?}");
    assert_eq!(l.accepted, accepted, "{l:#?}");
    let from_beta =
        l.rejected_by_source.iter().find(|s| s.source == beta1.to_string()).map(|s| s.count);
    assert_eq!(from_beta, Some(75), "{l:#?}");
    // The text form says the same.
    let out = Command::new(TANDEM)
        .args(["status", "--runtime-dir"])
        .arg(cluster.run_dir(0))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("10 bad_tag") && text.contains(&format!("{beta1} 75")), "{text}");
    cluster.wait_code(0, "W2111", Duration::from_secs(5));
    // Beta is lost; alpha restarts; the attacker replays everything it captured, on
    // both links, from beta's addresses: alpha must not see beta again.
    cluster.wait_code(0, "E2104", Duration::from_secs(5));
    let joined = |c: &Cluster| c.codes(0).iter().filter(|c| *c == "I2103").count();
    assert_eq!(joined(&cluster), 1);
    cluster.signal(0, nix::sys::signal::Signal::SIGTERM);
    cluster.wait_exit(0, Duration::from_secs(10)).expect("stopped");
    cluster.start(0);
    let _ = cluster.status(0);
    for (f1, f2) in &captured {
        b1.send_to(f1, alpha1).unwrap();
        b2.send_to(f2, alpha2).unwrap();
        thread::sleep(Duration::from_millis(20));
    }
    let l = wait_rejected(&cluster, 30);
    assert_eq!(l.accepted, 0, "{l:#?}");
    let reason = |r: &str| l.rejected_by_reason.get(r).copied().unwrap_or(0);
    assert_eq!(reason("replayed") + reason("too_old"), 30, "{l:#?}");
    thread::sleep(Duration::from_millis(500));
    assert_eq!(joined(&cluster), 1, "a replay made beta look alive again");
    assert_eq!(cluster.status(0).nodes[1].state, NodeState::Offline);
}

/// Three threads flood alpha's `net1` port with junk for 3 s (the socket never runs
/// dry): `tandem status` keeps answering (the loop's select is unbiased), and the
/// group stays where it was.
#[test]
fn the_control_socket_answers_while_a_heartbeat_port_is_flooded() {
    let cluster = formed();
    let [[alpha1, _], _] = addresses(&cluster);
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                let deadline = Instant::now() + Duration::from_secs(3);
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let _ = socket.send_to(&[7u8; 64], alpha1);
                    sent += 1;
                }
                sent
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let mut latencies = Vec::new();
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        daemon::control::call(&cluster.run_dir(0), &daemon::control::Request::Status).unwrap();
        latencies.push(t.elapsed());
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    let l = received(&cluster.status(0), "net1");
    latencies.sort();
    let worst = *latencies.last().unwrap();
    eprintln!(
        "{sent} sent, {} rejected, {} kernel drops; {} calls, median {:?}, worst {worst:?}",
        l.rejected,
        l.kernel_drops,
        latencies.len(),
        latencies[latencies.len() / 2]
    );
    assert!(l.rejected > 10_000, "{l:#?}");
    assert!(latencies.len() >= 20, "{} calls in 2 s", latencies.len());
    assert!(worst < Duration::from_millis(500), "{worst:?}");
    assert_eq!(cluster.group(0).0.as_deref(), Some("alpha"));
}

#[test]
fn a_bad_configuration_or_name_refuses_to_start_with_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[cluster]\nname = \"x\"\nprot = 1\n").unwrap();
    let out = Command::new(TANDEM).args(["node", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was started") && err.contains("E1"), "{err}");

    let cluster = Cluster::new();
    let out = Command::new(TANDEM)
        .args(["node", "--config"])
        .arg(&cluster.config)
        .args(["--name", "gamma", "--state-dir"])
        .arg(cluster.dir.path().join("gamma"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`gamma` is not in the configuration"), "{err}");
}

/// The bytes written to a watchdog stand-in so far.
fn watchdog_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn wait_until(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// No watchdog device exists on these machines: a plain file stands in for
/// /dev/watchdog (every write feeds a real one, a final `V` disarms it).
#[test]
fn the_guard_feeds_the_watchdog_and_disarms_it_once_everything_is_stopped() {
    let mut cluster = Cluster::new();
    let wd = cluster.dir.path().join("watchdog-alpha");
    std::fs::write(&wd, b"").unwrap();
    cluster.start_with(0, &["--watchdog", wd.to_str().unwrap()]);
    cluster.start(1);
    cluster.wait_running_on(1, "alpha", Duration::from_secs(15));
    let fed = watchdog_bytes(&wd).len();
    assert!(wait_until(Duration::from_secs(3), || watchdog_bytes(&wd).len() > fed), "not fed");
    cluster.signal(0, nix::sys::signal::Signal::SIGKILL);
    cluster.wait_exit(0, Duration::from_secs(2)).expect("killed");
    cluster.wait_running_on(1, "beta", Duration::from_secs(15));
    assert!(
        wait_until(Duration::from_secs(5), || watchdog_bytes(&wd).last() == Some(&b'V')),
        "the watchdog was not disarmed after a clean firing: {:?}",
        String::from_utf8_lossy(&watchdog_bytes(&wd))
    );
}

#[test]
fn a_resource_the_guard_cannot_stop_leaves_the_watchdog_to_reset_the_node() {
    let dir = tempfile::tempdir().unwrap();
    // A script resource whose stop always fails.
    let script = dir.path().join("stubborn");
    let state = dir.path().join("stubborn.on");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$1\" in\n start) touch {s}; exit 0;;\n stop) exit 1;;\n status) [ -e {s} ] && exit 0 || exit 3;;\nesac\nexit 3\n",
            s = state.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let extra = format!(
        "\n  [[group.resource]]\n  name = \"stubborn\"\n  kind = \"script\"\n  path = \"{}\"\n  stop_timeout = \"1s\"\n",
        script.display()
    );
    let mut cluster = Cluster::with_resources(&extra);
    let wd = cluster.dir.path().join("watchdog-alpha");
    std::fs::write(&wd, b"").unwrap();
    // Beta first: its start-up probe of the (one, shared) state file must find nothing.
    cluster.start(1);
    let _ = cluster.status(1);
    cluster.start_with(0, &["--watchdog", wd.to_str().unwrap()]);
    cluster.wait_running_on(1, "alpha", Duration::from_secs(15));
    cluster.signal(0, nix::sys::signal::Signal::SIGKILL);
    cluster.wait_exit(0, Duration::from_secs(2)).expect("killed");
    cluster.wait_code(0, "E3109", Duration::from_secs(10));
    // The guard gave up: not fed any more, never disarmed.
    thread::sleep(Duration::from_millis(500));
    let after = watchdog_bytes(&wd);
    thread::sleep(Duration::from_millis(2_500));
    assert_eq!(watchdog_bytes(&wd), after, "still fed after a failed firing");
    assert_ne!(after.last(), Some(&b'V'), "disarmed although a resource still runs");
    let entry = daemon::journal::read_journal(&cluster.state(0))
        .unwrap()
        .into_iter()
        .rfind(|e| e.code == "E3109")
        .unwrap();
    assert!(entry.message.contains("could not stop web/stubborn"), "{}", entry.message);
}

#[test]
fn a_poison_pill_fences_the_node_and_the_peer_takes_over() {
    let mut cluster = formed();
    let out = Command::new(TANDEM)
        .args(["disk", "fence", "alpha", "--config"])
        .arg(&cluster.config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = cluster.wait_exit(0, Duration::from_secs(5)).expect("alpha fenced itself");
    assert_eq!(status.code(), Some(70), "{}", cluster.logs());
    cluster.wait_running_on(1, "beta", Duration::from_secs(15));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(cluster.most_at_once(), 1, "two copies ran at once\n{}", cluster.logs());
    let codes = cluster.codes(0);
    assert!(codes.contains(&"E3111".to_string()), "{codes:?}");
    cluster.wait_code(0, "E3109", Duration::from_secs(5));
    // A new daemon ignores the pill left for the old one.
    cluster.start(0);
    cluster.wait_code(0, "I2109", Duration::from_secs(10));
    thread::sleep(Duration::from_secs(1));
    assert!(cluster.daemons[0].as_mut().unwrap().try_wait().unwrap().is_none(), "fenced again");
}

/// A daemon stopped in maintenance leaves its group running and parks its lease on the
/// shared disk: the peer, out of maintenance, never starts the group beside it, however
/// long it waits. The operator stops the process by hand and unparks: the peer takes the
/// group a takeover wait later.
#[test]
fn a_daemon_stopped_in_maintenance_parks_its_lease_until_unparked() {
    let mut cluster = formed();
    let run_dirs = [cluster.run_dir(0), cluster.run_dir(1)];
    let cli = |args: &[&str], node: usize| {
        let out = Command::new(TANDEM)
            .args(args)
            .arg("--runtime-dir")
            .arg(&run_dirs[node])
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    cli(&["maintenance", "on"], 0);
    let beta_knows = || cluster.status(1).nodes[1].state == NodeState::Maintenance;
    assert!(wait_until(Duration::from_secs(5), beta_knows), "{}", cluster.logs());
    cluster.signal(0, nix::sys::signal::Signal::SIGTERM);
    let status = cluster.wait_exit(0, Duration::from_secs(10)).expect("stopped");
    assert!(status.success(), "{status:?}\n{}", cluster.logs());
    let entries = daemon::journal::read_journal(&cluster.state(0)).unwrap();
    let stopped = entries.iter().find(|e| e.code == "I2114").expect("I2114");
    assert!(stopped.message.contains("leases parked"), "{}", stopped.message);
    cli(&["maintenance", "off"], 1);
    // Lease 1 s, takeover wait about 1.2 s: four times over.
    thread::sleep(Duration::from_secs(5));
    let running = processes_with(&cluster.token);
    assert_eq!(running.len(), 1, "{}", cluster.logs());
    assert_eq!(cluster.most_at_once(), 1, "two copies ran at once\n{}", cluster.logs());
    assert!(cluster.codes(1).contains(&"W3103".to_string()), "{:?}", cluster.codes(1));
    // The operator stops what alpha left running, then gives its lease back.
    for pid in running {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    let out = Command::new(TANDEM)
        .args(["disk", "unpark", "alpha", "--config"])
        .arg(&cluster.config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    cluster.wait_running_on(1, "beta", Duration::from_secs(15));
    assert_eq!(cluster.most_at_once(), 1, "{}", cluster.logs());
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn the_sockets_are_private_from_their_creation_whatever_the_umask() {
    let mut cluster = Cluster::new();
    // Alpha with umask 000: every file it creates would be open to all.
    let mut shell = Command::new("/bin/sh");
    shell.args(["-c", "umask 000; exec \"$0\" \"$@\"", TANDEM]);
    cluster.start_from(0, shell, &[]);
    cluster.start(1);
    cluster.wait_running_on(1, "alpha", Duration::from_secs(15));
    for (node, name) in NODES.iter().enumerate() {
        let run = cluster.run_dir(node);
        assert_eq!(mode(&run), 0o700, "{}", run.display());
        for file in ["control.sock", "guard.sock", "guard.token"] {
            assert_eq!(mode(&run.join(file)), 0o600, "{file} of {name}");
        }
        let mut names: Vec<String> = std::fs::read_dir(&run)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["control.sock", "guard.sock", "guard.token"], "nothing else");
        // Nothing of the node's in the state directory is writable by others either.
        assert_eq!(mode(&cluster.state(node)) & 0o002, 0, "{name}");
    }
}

/// Runs `tandem ARGS` as nobody (uid and gid 65534); success and stderr.
fn as_nobody(args: &[&str], run_dir: &Path) -> (bool, String) {
    use std::os::unix::process::CommandExt;
    let out = Command::new(TANDEM)
        .args(args)
        .arg("--runtime-dir")
        .arg(run_dir)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn only_root_the_daemons_user_and_the_admin_group_may_use_the_control_socket() {
    if let Err(missing) = testgate::root() {
        testgate::cannot_run(
            "only_root_the_daemons_user_and_the_admin_group_may_use_the_control_socket",
            &format!("{missing} (to run the CLI as nobody)"),
        );
        return;
    }
    let nogroup = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(65534))
        .unwrap()
        .expect("a group with gid 65534 (nogroup)")
        .name;
    let mut cluster = Cluster::new();
    // Alpha lets nobody's group in; beta has no admin group.
    cluster.start_with(0, &["--admin-group", &nogroup]);
    cluster.start(1);
    cluster.wait_running_on(1, "alpha", Duration::from_secs(15));
    // nobody may reach the directories above the runtime directories.
    let open = |path: &Path| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap()
    };
    open(cluster.dir.path());
    assert_eq!(mode(&cluster.run_dir(0)), 0o750);
    assert_eq!(mode(&cluster.run_dir(0).join("control.sock")), 0o660);
    let (ok, err) = as_nobody(&["status", "--json"], &cluster.run_dir(0));
    assert!(ok, "a member of the admin group is let in: {err}");
    let (ok, err) = as_nobody(&["status"], &cluster.run_dir(1));
    assert!(!ok && err.contains("E5104"), "the file system stops nobody first: {err}");
    // Even where a mistake opened the socket to all, the credentials stop nobody.
    open(&cluster.run_dir(1));
    open(&cluster.run_dir(1).join("control.sock"));
    std::fs::set_permissions(
        cluster.run_dir(1).join("control.sock"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    for args in [&["status"][..], &["switchover", "web", "--to", "beta"][..]] {
        let (ok, err) = as_nobody(args, &cluster.run_dir(1));
        assert!(!ok, "{args:?} was accepted from nobody");
        assert!(err.contains("E5104") && err.contains("nobody (uid 65534, pid"), "{err}");
        assert!(err.contains("--admin-group"), "the fix is named: {err}");
    }
    thread::sleep(Duration::from_millis(500));
    assert_eq!(cluster.group(1).0.as_deref(), Some("alpha"), "nothing moved");
    assert!(!cluster.codes(1).contains(&"I5107".to_string()), "no command was taken");
    assert!(cluster.logs().contains("E5104"), "the daemon logs the refusal");
}

#[test]
fn a_connection_to_the_guard_without_its_token_is_ignored() {
    let mut cluster = formed();
    let sleeper = processes_with(&cluster.token);
    let guard_socket = cluster.run_dir(0).join("guard.sock");
    let say = |text: &[u8]| {
        use std::io::Write;
        let mut s = std::os::unix::net::UnixStream::connect(&guard_socket).unwrap();
        s.write_all(text).unwrap();
        thread::sleep(Duration::from_millis(300));
    };
    // Before the token was required, either line took the guard over: `exit` ended it,
    // and `arm 1` left behind made it fire at once (stopping alpha's running group).
    say(b"exit\n");
    say(b"arm 1\n");
    say(b"hello 0000\narm 1\n");
    thread::sleep(Duration::from_secs(1));
    assert!(
        std::os::unix::net::UnixStream::connect(&guard_socket).is_ok(),
        "the guard is gone\n{}",
        cluster.logs()
    );
    assert!(!cluster.codes(0).contains(&"E3109".to_string()), "the guard fired");
    assert_eq!(processes_with(&cluster.token), sleeper, "the group was touched");
    assert!(cluster.logs().contains("W5105"), "the guard logs what it ignored");
    // The daemon is still the guard's controller: killed, it is fenced as ever.
    cluster.signal(0, nix::sys::signal::Signal::SIGKILL);
    cluster.wait_exit(0, Duration::from_secs(2)).expect("killed");
    cluster.wait_running_on(1, "beta", Duration::from_secs(15));
    assert!(cluster.codes(0).contains(&"E3109".to_string()), "{:?}", cluster.codes(0));
    assert_eq!(cluster.most_at_once(), 1);
}

#[test]
fn a_key_open_to_others_or_a_state_dir_open_to_all_refuses_to_start() {
    let cluster = Cluster::new();
    let key = cluster.dir.path().join("cluster.key");
    // What `tandem keygen` wrote passes (the other tests run with it).
    assert_eq!(mode(&key), 0o600);
    // The node's exit code (None: it was still running after 10 s, and is killed) and
    // its stderr.
    let node = |state: &Path| {
        let mut child = Command::new(TANDEM)
            .args(["node", "--config"])
            .arg(&cluster.config)
            .args(["--name", "alpha", "--state-dir"])
            .arg(state)
            .arg("--runtime-dir")
            .arg(cluster.run_dir(0))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let exited = wait_until(Duration::from_secs(10), || child.try_wait().unwrap().is_some());
        if !exited {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let code = if exited { out.status.code() } else { None };
        (code, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let set = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap()
    };
    set(&key, 0o644);
    let (code, err) = node(&cluster.state(0));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("E5101") && err.contains("chmod 600"), "{err}");
    set(&key, 0o600);
    let open = cluster.dir.path().join("open-state");
    std::fs::create_dir(&open).unwrap();
    set(&open, 0o777);
    let (code, err) = node(&open);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("E5102") && err.contains("chmod o-w"), "{err}");
    assert!(!cluster.run_dir(0).join("control.sock").exists(), "nothing was started");
}

/// Issue 18: nothing that can block runs on the daemon's loop thread. Starting a new
/// fence guard waits up to 3 s for it to listen; it used to run on the loop. Here every
/// start of alpha's guard takes 2 s (the `guard_start` test hook), and alpha's guard is
/// killed while alpha runs the group: the guard's own thread starts a new one while the
/// loop goes on — beta never loses alpha, alpha keeps its lease, and `tandem status`
/// answers meanwhile.
#[test]
fn a_guard_that_is_slow_to_start_again_does_not_stall_the_loop() {
    let mut cluster = Cluster::new();
    cluster.start_env(0, &[], &[(daemon::stall::ENV, "guard_start:2000")]);
    // Its first guard takes 2 s too, before its loop starts: beta joins after that.
    cluster.status(0);
    cluster.start(1);
    cluster.wait_running_on(1, "alpha", Duration::from_secs(20));
    let run_dir = cluster.run_dir(0).to_string_lossy().into_owned();
    let guards: Vec<i32> = processes_with(&run_dir)
        .into_iter()
        .filter(|pid| processes_with("fence-guard").contains(pid))
        .collect();
    assert_eq!(guards.len(), 1, "alpha's guard: {guards:?}");
    // Ours to end: alpha's daemon (started by this test) started it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(guards[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let killed = Instant::now();
    let mut slowest = Duration::ZERO;
    while killed.elapsed() < Duration::from_millis(3_000) {
        let asked = Instant::now();
        let doc = cluster.status(0);
        slowest = slowest.max(asked.elapsed());
        assert_eq!(doc.groups[0].owner.as_deref(), Some("alpha"), "{doc:?}");
        thread::sleep(Duration::from_millis(50));
    }
    // A new guard listens again.
    assert!(
        wait_until(Duration::from_secs(5), || {
            processes_with(&run_dir).into_iter().any(|p| processes_with("fence-guard").contains(&p))
        }),
        "no new guard\n{}",
        cluster.logs()
    );
    assert!(slowest < Duration::from_millis(1_000), "status took {slowest:?}\n{}", cluster.logs());
    for (node, code) in [(1, "E2104"), (1, "W4111"), (0, "E3105"), (0, "E3112")] {
        assert!(
            !cluster.codes(node).contains(&code.to_string()),
            "{} journaled {code}\n{}",
            NODES[node],
            cluster.logs()
        );
    }
    assert_eq!(cluster.most_at_once(), 1, "{}", cluster.logs());
}

/// Issue 18 (found by the simulator, reference seeds 294 and 222): an agent operation in
/// flight when the daemon stops (a start still running as a child process) finished
/// after the fence guard had stopped everything, and the resource ran again beside the
/// node that took the group over. The guard now ends its daemon's operations in flight
/// before it stops anything. Here a script's start takes 1.5 s; alpha's daemon is
/// paused while it runs: the start never completes on alpha.
#[test]
fn an_operation_in_flight_when_the_daemon_stops_never_completes_after_the_guard_fired() {
    let dir = tempfile::Builder::new().prefix("tandem-slow-").tempdir().unwrap();
    let script = dir.path().join("slow.sh");
    let markers = dir.path().display().to_string();
    // The node's name from its daemon's command line (the script's parent).
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nnode=$(tr '\\0' '\\n' < /proc/$PPID/cmdline | grep -A1 -x -- --name | tail -1)\n\
             marker={markers}/slow-$node\ncase \"$1\" in\n  start) sleep 1.5; touch \"$marker\" ;;\n  \
             stop) rm -f \"$marker\" ;;\n  status) test -e \"$marker\" || exit 3 ;;\nesac\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let extra = format!(
        "\n  [[group.resource]]\n  name = \"slow\"\n  kind = \"script\"\n  path = \"{}\"\n  \
         start_timeout = \"5s\"\n",
        script.display()
    );
    let mut cluster = Cluster::with_resources(&extra);
    cluster.start(0);
    cluster.start(1);
    let script_path = script.display().to_string();
    assert!(
        wait_until(Duration::from_secs(20), || {
            processes_with(&script_path).into_iter().any(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("start"))
            })
        }),
        "the slow start never ran\n{}",
        cluster.logs()
    );
    cluster.signal(0, nix::sys::signal::Signal::SIGSTOP);
    thread::sleep(Duration::from_secs(3));
    let alpha_marker = dir.path().join("slow-alpha");
    assert!(
        !alpha_marker.exists(),
        "the start completed after the guard fired\n{}",
        cluster.logs()
    );
    cluster.signal(0, nix::sys::signal::Signal::SIGCONT);
    cluster.wait_running_on(1, "beta", Duration::from_secs(20));
    cluster.wait_code(0, "E3112", Duration::from_secs(10));
    assert!(
        !alpha_marker.exists(),
        "the start completed after the guard fired\n{}",
        cluster.logs()
    );
    let fired: Vec<_> = daemon::journal::read_journal(&cluster.state(0))
        .unwrap()
        .into_iter()
        .filter(|e| e.code == "E3109")
        .map(|e| e.message)
        .collect();
    assert!(fired.iter().any(|m| m.contains("after ending 1 operation(s) in flight")), "{fired:?}");
    assert_eq!(cluster.most_at_once(), 1, "{}", cluster.logs());
}
