//! The lab benchmarks of issue 3, as root (`TANDEM_LAB=1`): `cargo bench -p tandem
//! --bench lab` (or `TANDEM_LAB=1 cargo xtask bench`, which runs them after the others).
//! Each figure is a median and a p99 over fresh labs (`TANDEM_BENCH_TRIALS`, default 20;
//! with 20 trials the p99 is the worst trial). Nothing is asserted: the figures go to docs/benchmarks.md and the issue note.
//!
//! - **failover outage** as the client sees it: a `tandem probe` in the client namespace
//!   connects to the VIP every 10 ms; the outage runs from its last good answer before the
//!   production host's crash to its first good answer after (default timing, and the fast
//!   profile: heartbeat 50 ms, peer and lease timeout 300 ms);
//! - **switchover outage**: the same gap around `tandem switchover web --to beta`;
//! - **idle cost per node**: CPU (share of one core) and resident memory of the daemon
//!   plus its fence guard over three minutes (`TANDEM_BENCH_IDLE_SECS`) of a formed
//!   cluster doing nothing, in windows of 20 s (median and worst window), with the
//!   double-holder sampler stopped (it is the benchmark's own load), the rest of the
//!   machine's load alongside; `idle-api` the same with every node serving its HTTPS
//!   API (certificates from `tandem keygen --config`, a users file; no requests);
//! - **false failovers**: a formed cluster with both cores busy in every host and 20 %
//!   loss on the private network for `TANDEM_BENCH_SOAK_SECS` (default 600): failover,
//!   takeover and peer-lost events counted.
//!
//! - **floods**: 5 s at the owner's public heartbeat port from the client namespace by
//!   two flooders, one with the peer's own source address through a raw socket
//!   (`flood`: 50,000 datagrams a second each, copies of the peer's heartbeats captured
//!   on the owner, half replayed as they were and half with a byte flipped;
//!   `flood-large`: as fast as each can, datagrams of the largest size with a
//!   valid-looking header and fresh sequence numbers; `TANDEM_FLOOD_RATE` sets another
//!   rate per flooder): false failovers, links declared down, real heartbeats lost on
//!   the flooded link (accepted there against the private link, which carries the same
//!   ones), `tandem status` latency, the owner daemon's CPU. The flooders are threads of
//!   the bench in the client's namespace (`testbed::flood`, `sendmmsg`), bounded in count
//!   and time, sending only to the owner's lab address.
//!
//! `TANDEM_BENCH_ONLY=failover,fast,switchover,idle,idle-api,soak,flood,flood-large`
//! picks some. Each failover trial is printed (stderr) so that an outlier can be told from a shift;
//! `TANDEM_BENCH_SHOW=1` adds the survivor's journal from the crash on and the end of
//! both nodes' logs (`TANDEM_LAB_LOG=info,daemon::node=debug` logs every lease I/O).

#![allow(clippy::needless_range_loop)]

#[path = "../tests/support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::*;
use labcluster::probe::{monotonic_ms, parse_attempts};

const FAST: &str = FAST_TIMING;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(what: &str, mut values: Vec<f64>, unit: &str) {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        println!("{what}: no figures");
        return;
    }
    println!(
        "{what}: median {:.0} {unit}, p99 {:.0} {unit}, min {:.0}, max {:.0}, over {} trials",
        percentile(&values, 0.5),
        percentile(&values, 0.99),
        values[0],
        values[values.len() - 1],
        values.len()
    );
}

/// Last good answer at or before `at`, first good answer by `by` after it: the outage
/// in ms. The probe starts an attempt every 10 ms whatever earlier ones do and stamps
/// each when it ends.
fn outage(probe: &Spawned, at: i64, by: &str) -> Option<f64> {
    let attempts = parse_attempts(&probe.stdout().unwrap_or_default());
    let before = attempts.iter().filter(|a| a.at_ms <= at && a.answer.is_ok()).map(|a| a.at_ms);
    let after = attempts.iter().filter(|a| a.at_ms > at && a.answer.as_deref() == Ok(by));
    Some((after.map(|a| a.at_ms).min()? - before.max()?) as f64)
}

fn probe(cluster: &Cluster) -> Spawned {
    cluster.start_client(VIP, 10, Some(200), None).expect("probe")
}

/// Milliseconds from `crash` (wall clock) to the first entry of `code` in `host`'s journal.
fn after(cluster: &Cluster, host: usize, code: &str, crash: std::time::SystemTime) -> Option<f64> {
    let entry = cluster.journal(host).into_iter().rev().find(|e| e.code == code)?;
    let at = humantime::parse_rfc3339(&entry.time).ok()?;
    Some(at.duration_since(crash).ok()?.as_secs_f64() * 1000.0)
}

/// One failover: the client's outage, and when the survivor declared the peer lost,
/// got the lease and had the group running (ms after the crash).
fn failover_trial(timing: &'static str) -> Option<[f64; 4]> {
    let options = Options { timing, ..Options::default() };
    let cluster = Cluster::formed(&options);
    let probe = probe(&cluster);
    std::thread::sleep(Duration::from_millis(500));
    let at = monotonic_ms();
    let wall = std::time::SystemTime::now();
    cluster.lab.crash(0).expect("crash");
    cluster.wait_owner(1, "web", "beta", Duration::from_secs(30));
    cluster.wait_served_by(VIP, "beta", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    cluster.assert_never_double();
    if std::env::var_os("TANDEM_BENCH_SHOW").is_some() {
        // The survivor's journal from the crash on (ms after it), to explain a trial.
        for entry in cluster.journal(1) {
            let Some(at) = humantime::parse_rfc3339(&entry.time).ok() else { continue };
            if let Ok(since) = at.duration_since(wall) {
                eprintln!("    {:>5} ms {} {}", since.as_millis(), entry.code, entry.message);
            }
        }
        eprintln!("    crash at monotonic {} ms", at);
        for line in cluster.log(0).lines().rev().take(150).collect::<Vec<_>>().into_iter().rev() {
            eprintln!("    A {line}");
        }
        let log = cluster.log(1);
        let lines: Vec<&str> = log.lines().collect();
        for line in &lines[lines.len().saturating_sub(400)..] {
            eprintln!("    | {line}");
        }
    }
    Some([
        outage(&probe, at, "beta")?,
        after(&cluster, 1, "E2104", wall)?,
        after(&cluster, 1, "I3101", wall)?,
        after(&cluster, 1, "I4102", wall)?,
    ])
}

fn failovers(what: &str, timing: &'static str, trials: usize) {
    let runs: Vec<[f64; 4]> = (0..trials)
        .filter_map(|trial| {
            let run = failover_trial(timing);
            // Each trial, so that an outlier can be told from a shift.
            if let Some([outage, lost, lease, running]) = run {
                eprintln!(
                    "  trial {trial}: outage {outage:.0} ms; lost {lost:.0}, lease {lease:.0}, \
                     running {running:.0} ms"
                );
            }
            run
        })
        .collect();
    let column = |i: usize| runs.iter().map(|r| r[i]).collect::<Vec<f64>>();
    summary(&format!("failover outage, {what}"), column(0), "ms");
    summary("  of which: peer declared lost after", column(1), "ms");
    summary("  lease granted to the survivor after", column(2), "ms");
    summary("  group running on the survivor after", column(3), "ms");
}

fn switchover_trial() -> Option<f64> {
    let cluster = Cluster::formed(&Options::default());
    let probe = probe(&cluster);
    std::thread::sleep(Duration::from_millis(500));
    let at = monotonic_ms();
    let out = cluster.tandem(0, &["switchover", "web", "--to", "beta"]).expect("switchover");
    assert!(out.success(), "{out:?}");
    cluster.wait_owner(0, "web", "beta", Duration::from_secs(30));
    cluster.wait_served_by(VIP, "beta", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(200));
    cluster.assert_never_double();
    outage(&probe, at, "beta")
}

/// utime + stime in clock ticks, and VmRSS in KiB, of `pid`.
fn usage(pid: i32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks, rss))
}

/// The tandem processes (daemon and guard) of host `host`.
fn tandem_pids(cluster: &Cluster, host: usize) -> Vec<i32> {
    cluster
        .lab
        .pids(Node::Host(host))
        .unwrap_or_default()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c).into_owned();
                    c.contains("\0node\0") || c.contains("\0fence-guard\0")
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Per thread of `pids` (`pid/tid` → name, CPU nanoseconds from `schedstat`, voluntary
/// context switches, that is the times it slept and was woken). The daemon's loop is
/// its `tandem` thread, the disk worker `tandem-disk`, monitors run on
/// `tokio-rt-worker` threads.
fn threads(pids: &[i32]) -> std::collections::BTreeMap<String, (String, u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    for pid in pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let guard = String::from_utf8_lossy(&cmdline).contains("\0fence-guard\0");
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for task in tasks.flatten() {
            let dir = task.path();
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            let cpu = read("schedstat").split_whitespace().next().and_then(|f| f.parse().ok());
            let switches = read("status")
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok());
            if let (Some(cpu), Some(switches)) = (cpu, switches) {
                let comm = read("comm").trim().to_string();
                let name = if guard { format!("fence guard ({comm})") } else { comm };
                let key = format!("{pid}/{}", task.file_name().to_string_lossy());
                out.insert(key, (name, cpu, switches));
            }
        }
    }
    out
}

/// The machine's CPU counters from /proc/stat: (busy ticks, steal ticks, all ticks),
/// over every core (busy: user, nice, system, irq, softirq; steal: taken by the host).
fn machine_ticks() -> (u64, u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let at = |i: usize| cpu.get(i).copied().unwrap_or(0);
    let busy = at(0) + at(1) + at(2) + at(5) + at(6);
    (busy, at(7), cpu.iter().take(8).sum())
}

/// CPU nanoseconds this thread has run (`/proc/thread-self/schedstat`).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse().ok()))
        .unwrap_or(0)
}

/// The machine's CPU cost of a wake-up, in µs: a thread that sleeps 1 ms on a timer
/// then sends a datagram on loopback to a thread asleep in `recv`, 500 times; the CPU
/// time both threads used, per round (two timer or socket wake-ups, a send, a
/// receive). This is a node's work at idle in miniature; on this kind of VM its cost
/// moves several-fold within hours while plain computation does not.
fn wakeup_cost_us() -> f64 {
    use std::net::UdpSocket;
    let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let b_addr = b.local_addr().unwrap();
    let rounds = 500;
    let receiver = std::thread::spawn(move || {
        let before = thread_cpu_ns();
        let mut buf = [0u8; 64];
        for _ in 0..rounds {
            b.recv_from(&mut buf).expect("recv");
        }
        thread_cpu_ns() - before
    });
    let before = thread_cpu_ns();
    for _ in 0..rounds {
        std::thread::sleep(Duration::from_millis(1));
        a.send_to(b"ping", b_addr).expect("send");
    }
    let sender = thread_cpu_ns() - before;
    let receiver = receiver.join().unwrap();
    (sender + receiver) as f64 / rounds as f64 / 1000.0
}

/// The idle cost per node; with `api`, every node serves its HTTPS API (no requests).
fn idle(api: bool) {
    let mut cluster = Cluster::formed(&Options { api, ..Options::default() });
    let what = if api { "idle, API on" } else { "idle" };
    std::thread::sleep(Duration::from_secs(5));
    // The double-holder sampler reads every host's addresses and mounts every 5 ms, on
    // the same two cores: the benchmark's own load, not the nodes'. It stops for the
    // measurement (`TANDEM_BENCH_IDLE_SAMPLER=1` keeps it, as before 2026-12-06).
    let sampler = std::env::var_os("TANDEM_BENCH_IDLE_SAMPLER").is_some();
    if !sampler {
        cluster.assert_never_double();
        cluster.stop_sampler();
    }
    let seconds: u64 =
        std::env::var("TANDEM_BENCH_IDLE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(180);
    let window = 20.min(seconds).max(1);
    let hz = 100.0; // USER_HZ on Linux
    let pids: Vec<Vec<i32>> = (0..2).map(|h| tandem_pids(&cluster, h)).collect();
    let ticks =
        |host: usize| -> u64 { pids[host].iter().filter_map(|p| usage(*p)).map(|u| u.0).sum() };
    // CPU over consecutive windows: their median and worst, per node.
    let mut shares: Vec<Vec<f64>> = vec![Vec::new(); 2];
    // What the rest of the machine did meanwhile (the figures move with it): its busy
    // share outside the two nodes, and the share the hypervisor took (steal).
    let mut others: Vec<f64> = Vec::new();
    let mut steal: Vec<f64> = Vec::new();
    let mut wakeups: Vec<f64> = Vec::new();
    let threads_before: Vec<_> = pids.iter().map(|p| threads(p)).collect();
    let started = Instant::now();
    for _ in 0..(seconds / window).max(1) {
        let before: Vec<u64> = (0..2).map(ticks).collect();
        let (busy0, steal0, all0) = machine_ticks();
        std::thread::sleep(Duration::from_secs(window));
        let (busy1, steal1, all1) = machine_ticks();
        wakeups.push(wakeup_cost_us());
        let mut nodes = 0;
        for host in 0..2 {
            let used = ticks(host) - before[host];
            nodes += used;
            shares[host].push(used as f64 / hz / window as f64 * 100.0);
        }
        let all = (all1 - all0).max(1) as f64;
        others.push((busy1 - busy0).saturating_sub(nodes) as f64 / all * 100.0);
        steal.push((steal1 - steal0) as f64 / all * 100.0);
    }
    // Per thread over the whole measurement (the nodes run on during the wake-up
    // checks between windows, so these count too), in nanoseconds of CPU (the figure
    // above counts clock ticks, 0.05 % steps over a 20 s window), and how often each
    // thread was woken.
    let elapsed = started.elapsed().as_secs_f64();
    for host in 0..2 {
        let after = threads(&pids[host]);
        let mut total = 0.0;
        let mut parts = Vec::new();
        for (key, (name, cpu, switches)) in &after {
            let Some((_, cpu0, switches0)) = threads_before[host].get(key) else { continue };
            let share = (cpu - cpu0) as f64 / 1e9 / elapsed * 100.0;
            let wakes = (switches - switches0) as f64 / elapsed;
            total += share;
            if share >= 0.001 {
                parts.push(format!("{name} {share:.3} % ({wakes:.1} wake-ups/s)"));
            }
        }
        println!(
            "{what} {} threads (schedstat, {elapsed:.0} s, threads that lived throughout): \
             {total:.3} % in all; {}",
            NAMES[host],
            parts.join(", ")
        );
    }
    for host in 0..2 {
        let now: Vec<(u64, u64)> = pids[host].iter().filter_map(|p| usage(*p)).collect();
        let rss: u64 = now.iter().map(|u| u.1).sum();
        let mut values = shares[host].clone();
        values.sort_by(f64::total_cmp);
        println!(
            "{what} {} ({} processes: daemon + guard{}): CPU median {:.2} %, p99 {:.2} % of \
             one core over {} windows of {window} s; resident {:.1} MiB",
            NAMES[host],
            now.len(),
            if sampler { "; sampler on" } else { "" },
            percentile(&values, 0.5),
            percentile(&values, 0.99),
            values.len(),
            rss as f64 / 1024.0
        );
    }
    // Idle means idle: nothing stopped, moved or expired meanwhile.
    for host in 0..2 {
        let codes = cluster.codes(host);
        let count = |code: &str| codes.iter().filter(|c| *c == code).count();
        println!(
            "{what} {}: lease expiring (E3105) {}, group stopping (I4103) {}, takeovers (W4111) {}",
            NAMES[host],
            count("E3105"),
            count("I4103"),
            count("W4111")
        );
    }
    for values in [&mut others, &mut steal, &mut wakeups] {
        values.sort_by(f64::total_cmp);
    }
    println!(
        "{what}: the rest of the machine meanwhile: busy median {:.1} %, worst window {:.1} % \
         of all cores; steal median {:.2} %, worst {:.2} %",
        percentile(&others, 0.5),
        percentile(&others, 0.99),
        percentile(&steal, 0.5),
        percentile(&steal, 0.99)
    );
    println!(
        "{what}: the machine's CPU cost of a wake-up (a timer wake-up and a loopback \
         datagram to a sleeping thread, after each window): median {:.1} µs, highest \
         {:.1} µs",
        percentile(&wakeups, 0.5),
        percentile(&wakeups, 0.99)
    );
}

fn soak() {
    let seconds: u64 =
        std::env::var("TANDEM_BENCH_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let cluster = Cluster::formed(&Options::default());
    let mut burners = Vec::new();
    for host in 0..2 {
        for _ in 0..2 {
            burners.push(
                cluster
                    .lab
                    .spawn(Node::Host(host), &["sh", "-c", "while :; do :; done"])
                    .expect("burner"),
            );
        }
        cluster.lab.loss(Node::Host(host), Network::Private, 20).expect("loss");
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let mut counts = Vec::new();
    for host in 0..2 {
        let codes = cluster.codes(host);
        let count = |code: &str| codes.iter().filter(|c| *c == code).count();
        counts.push(format!(
            "{}: failovers (W4111) {}, peer lost (E2104) {}, lease lost/expired (E3107/E3105) {}, link down (W2101) {}",
            NAMES[host],
            count("W4111"),
            count("E2104"),
            count("E3107") + count("E3105"),
            count("W2101")
        ));
    }
    println!(
        "soak {} s, both cores busy in both hosts, 20 % loss on private:",
        started.elapsed().as_secs()
    );
    for line in counts {
        println!("  {line}");
    }
    let owner = cluster.group(1, "web");
    println!("  web at the end: {owner:?}");
    drop(burners);
}

/// The owner's daemon process (not its guard): its CPU ticks.
fn daemon_ticks(cluster: &Cluster, host: usize) -> u64 {
    tandem_pids(cluster, host)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("\0node\0"))
        })
        .filter_map(usage)
        .map(|u| u.0)
        .sum()
}

fn flood(large: bool) {
    let cluster = Cluster::formed(&Options::default());
    std::thread::sleep(Duration::from_secs(2));
    let frames = cluster.capture_heartbeats(2.0);
    let codes = |host: usize| cluster.codes(host);
    // The same 5 s without a flood first: what the machine's load alone causes (on
    // these shared 2-core machines, a disk I/O now and then misses its 31 ms deadline).
    let what = if large {
        "largest datagrams, valid-looking header"
    } else {
        "small heartbeats, replayed and flipped"
    };
    println!("flood ({what}):");
    let quiet: Vec<Vec<String>> = (0..2).map(codes).collect();
    std::thread::sleep(Duration::from_secs(5));
    let before: Vec<Vec<String>> = (0..2).map(codes).collect();
    let count_new = |from: &[Vec<String>], to: &[Vec<String>], code: &str| -> usize {
        (0..2)
            .map(|h| {
                let n = |v: &Vec<String>| v.iter().filter(|c| *c == code).count();
                n(&to[h]) - n(&from[h])
            })
            .sum()
    };
    println!(
        "  5 s before the flood: lease renewal failed (W3104) {}, arbitrator unreachable \
         (W3108) {}, links down (W2101) {}",
        count_new(&quiet, &before, "W3104"),
        count_new(&quiet, &before, "W3108"),
        count_new(&quiet, &before, "W2101")
    );
    let accepted = || {
        let [public, private] = cluster.receiving(0, ["public", "private"]);
        let n = |l: &Option<contract::Receiving>| l.as_ref().map_or(0, |l| l.accepted);
        (n(&public), n(&private), public)
    };
    let (public0, private0, _) = accepted();
    let ticks0 = daemon_ticks(&cluster, 0);
    let started = Instant::now();
    // Small: 50,000 datagrams a second from each flooder (100,000 in all); large: as
    // fast as each can (the kernel's and the lab's bridge's pace). TANDEM_FLOOD_RATE
    // sets another rate per flooder.
    let rate = std::env::var("TANDEM_FLOOD_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if large { 1_000_000 } else { 50_000 });
    let flooders = cluster.flood(large, rate, 5, &frames);
    // `tandem status` through the control socket meanwhile, every 20 ms.
    let mut latencies = Vec::new();
    while started.elapsed() < Duration::from_secs(5) {
        let t = Instant::now();
        let _ = cluster.status(0).expect("status");
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent: Vec<testbed::Flooded> =
        flooders.into_iter().map(|f| f.join().expect("flooder").expect("flood")).collect();
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (daemon_ticks(&cluster, 0) - ticks0) as f64 / 100.0 / elapsed * 100.0;
    std::thread::sleep(Duration::from_millis(500));
    let (public1, private1, public) = accepted();
    latencies.sort_by(f64::total_cmp);
    let new = |host: usize, code: &str| {
        codes(host).iter().filter(|c| *c == code).count()
            - before[host].iter().filter(|c| *c == code).count()
    };
    // A datagram is one IP packet when small, 45 fragments (1,500-byte frames) when large.
    let frames_per = if large { 45.0 } else { 1.0 };
    for (how, f) in ["spoofed as beta", "from the client's address"].iter().zip(&sent) {
        println!(
            "  sent {how}: {} datagrams in {:.2} s, {:.0}/s ({:.0} packets/s), {} packets \
             refused by the flooder's own kernel",
            f.datagrams,
            f.seconds,
            f.datagrams as f64 / f.seconds,
            f.datagrams as f64 * frames_per / f.seconds,
            f.refused
        );
    }
    println!(
        "  heartbeats accepted on public {} vs private {} (lost on public: {}); kernel drops {}",
        public1 - public0,
        private1 - private0,
        (private1 - private0).saturating_sub(public1 - public0),
        public.as_ref().map_or(0, |p| p.kernel_drops)
    );
    if let Some(public) = &public {
        println!("  rejected on public: {} {:?}", public.rejected, public.rejected_by_reason);
    }
    println!(
        "  tandem status: median {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} calls; owner \
         daemon CPU {cpu:.0} % of one core over {elapsed:.1} s",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
        latencies.len()
    );
    println!(
        "  failovers (W4111) {}, links down (W2101) {}, peer lost (E2104) {}, lease \
         lost/expired (E3107/E3105) {}, flood started (W2120) {}",
        new(0, "W4111") + new(1, "W4111"),
        new(0, "W2101") + new(1, "W2101"),
        new(0, "E2104") + new(1, "E2104"),
        new(0, "E3107") + new(0, "E3105") + new(1, "E3107") + new(1, "E3105"),
        new(0, "W2120")
    );
    // What else the nodes journaled meanwhile (warnings and errors), to explain a change.
    for host in 0..2 {
        for entry in cluster.journal(host).into_iter().skip(before[host].len()) {
            if entry.severity != "info" && !entry.code.starts_with("W212") {
                println!("    {} {} {} {}", NAMES[host], entry.time, entry.code, entry.message);
            }
        }
    }
    let after: Vec<Vec<String>> = (0..2).map(codes).collect();
    println!(
        "  during the flood: lease renewal failed (W3104) {}, arbitrator unreachable (W3108) {}",
        count_new(&before, &after, "W3104"),
        count_new(&before, &after, "W3108")
    );
    cluster.wait_code(0, "I2121", Duration::from_secs(20));
    if let Some(end) = cluster.entries(0, "I2121").last() {
        println!("  journal: {}", end.message);
    }
    println!("  web owner at the end: {:?}", cluster.group(1, "web"));
    cluster.assert_never_double();
}

fn main() {
    if let Err(why) = testbed::availability() {
        println!("lab benchmarks skipped: {why}");
        return;
    }
    let trials: usize =
        std::env::var("TANDEM_BENCH_TRIALS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let only = std::env::var("TANDEM_BENCH_ONLY")
        .unwrap_or_else(|_| "failover,fast,switchover,idle,idle-api,soak,flood,flood-large".into());
    let wanted = |name: &str| only.split(',').any(|w| w.trim() == name);
    if wanted("failover") {
        let what = "default timing (hb 100 ms, peer 1 s, lease 1 s)";
        failovers(what, Options::default().timing, trials);
    }
    if wanted("fast") {
        failovers("fast profile (hb 50 ms, peer 300 ms, lease 300 ms)", FAST, trials);
    }
    if wanted("switchover") {
        let values = (0..trials).filter_map(|_| switchover_trial()).collect();
        summary("switchover outage (default timing)", values, "ms");
    }
    if wanted("idle") {
        idle(false);
    }
    if wanted("idle-api") {
        idle(true);
    }
    if wanted("soak") {
        soak();
    }
    if wanted("flood") {
        flood(false);
    }
    if wanted("flood-large") {
        flood(true);
    }
}
