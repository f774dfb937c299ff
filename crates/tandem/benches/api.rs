//! The HTTPS API's latency as a client sees it, on two real `tandem node`s on loopback
//! (`tests/support/api_cluster.rs`; no root): `GET /v1/status` (one keep-alive
//! connection, `TANDEM_BENCH_API_GETS` requests, default 200, 15 a second: the API lets
//! one address make 20 a second) and a switch-over request
//! (`POST /v1/groups/web/switchover` until its 200, which the node sends once the
//! command is durable in its journal; `TANDEM_BENCH_API_MOVES`, default 20, each to the
//! other node, the group running there before the next). Median and p99 of each, as
//! docs/benchmarks.md reports them. Then the daemons' CPU at idle with the API on and
//! off (its certificate moved away: the node starts without it), alternately, twice,
//! `TANDEM_BENCH_API_IDLE_SECS` each (default 30): the sum over both daemons' threads
//! of their scheduler run time (`/proc/PID/task/*/schedstat`), as a share of one core.
//! Nothing is asserted (the machines are noisy).
//!
//! `cargo bench -p tandem --bench api`

use std::time::{Duration, Instant};

#[path = "../tests/support/api_cluster.rs"]
mod api_cluster;
use api_cluster::{agent, ApiCluster};

fn count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// "median X ms, p99 Y ms, over N".
fn figures(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:.2} ms, p99 {:.2} ms, max {:.2} ms, over {}",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*samples.last().unwrap()),
        samples.len()
    )
}

fn main() {
    // `cargo bench` passes --bench; a filter argument names what to run (anything else).
    let cluster = ApiCluster::new(
        "apibench",
        "[[group]]\nname = \"web\"\nnodes = [\"alpha\", \"beta\"]\n\n  [[group.resource]]\n  \
         name = \"sleeper\"\n  kind = \"process\"\n  command = [\"/bin/sleep\", \"{token}\"]\n  \
         stop_timeout = \"1s\"\n",
    );
    let (viewer, operator) = (cluster.user("vera", "viewer"), cluster.user("otto", "operator"));
    let _daemons = cluster.start();
    let agent = agent(&cluster.dir.path().join("ca.crt"));
    let base = format!("https://127.0.0.1:{}/v1", cluster.api[0]);
    let status = || -> Option<contract::Status> {
        agent
            .get(&format!("{base}/status"))
            .set("Authorization", &format!("Bearer {viewer}"))
            .call()
            .ok()?
            .into_json()
            .ok()
    };
    let running_on = |node: &str, within: Duration| {
        let deadline = Instant::now() + within;
        loop {
            if let Some(doc) = status() {
                let g = &doc.groups[0];
                if g.owner.as_deref() == Some(node) && g.state == contract::GroupState::Running {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "not running on {node}\n{}", cluster.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    running_on("alpha", Duration::from_secs(20));
    // Warm: the token verified once (argon2), the connection open.
    status().expect("status");
    let pace = Duration::from_millis(1000 / 15);
    let gets: Vec<Duration> = (0..count("TANDEM_BENCH_API_GETS", 200))
        .map(|_| {
            let start = Instant::now();
            status().expect("status");
            let took = start.elapsed();
            std::thread::sleep(pace.saturating_sub(took));
            took
        })
        .collect();
    println!("GET /v1/status: {}", figures(gets));
    let mut moves = Vec::new();
    let mut on = "alpha";
    for _ in 0..count("TANDEM_BENCH_API_MOVES", 20) {
        let to = if on == "alpha" { "beta" } else { "alpha" };
        let start = Instant::now();
        agent
            .post(&format!("{base}/groups/web/switchover"))
            .set("Authorization", &format!("Bearer {operator}"))
            .send_string(&format!(r#"{{"to": "{to}"}}"#))
            .expect("switch-over accepted");
        moves.push(start.elapsed());
        running_on(to, Duration::from_secs(20));
        on = to;
    }
    println!("POST /v1/groups/web/switchover (until its answer): {}", figures(moves));
    drop(_daemons);
    idle(&cluster);
}

/// The run time of every thread of process `pid` so far, in nanoseconds.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The daemons' CPU at idle, API on and off in turn.
fn idle(cluster: &ApiCluster) {
    let secs = count("TANDEM_BENCH_API_IDLE_SECS", 30) as u64;
    let (cert, away) =
        (cluster.dir.path().join("tls.crt"), cluster.dir.path().join("tls.crt.away"));
    for round in 1..=2 {
        for api_on in [true, false] {
            let (from, to) = if api_on { (&away, &cert) } else { (&cert, &away) };
            if from.exists() {
                std::fs::rename(from, to).unwrap();
            }
            let daemons = cluster.start();
            // Formed, the group running, the first probes and renewals over.
            std::thread::sleep(Duration::from_secs(8));
            let pids: Vec<u32> = daemons.children.iter().map(|c| c.id()).collect();
            let before: u64 = pids.iter().map(|p| cpu_ns(*p)).sum();
            let start = Instant::now();
            std::thread::sleep(Duration::from_secs(secs));
            let used: u64 = pids.iter().map(|p| cpu_ns(*p)).sum::<u64>() - before;
            let share = used as f64 / start.elapsed().as_nanos() as f64 * 100.0 / 2.0;
            let api = if api_on { "on" } else { "off" };
            println!("idle, round {round}, API {api}: {share:.3} % of one core per daemon");
            drop(daemons);
        }
    }
}
