//! Decision time at scale: 1,000 groups × 10 resources on two nodes. The production
//! node dies; we time the standby's engine from the input that reveals the loss (the
//! timeout of its last link) until its outputs are drained (a lease request per group),
//! then the handling of the 1,000 grants (the first start of every group).
//!
//! Reported as median and p99 over the trials; never asserted (machines are noisy).
//! Run: `cargo bench -p engine --bench decision`.

// A benchmark reads the clock; the engine itself never does (clippy.toml).
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::sync::Arc;
use std::time::Duration;

use engine::*;

const GROUPS: usize = 1_000;
const RESOURCES: usize = 10;
const TRIALS: usize = 30;

fn spec() -> ClusterSpec {
    let kinds = [ResourceKind::Filesystem, ResourceKind::Ip, ResourceKind::Process];
    let groups = (0..GROUPS)
        .map(|g| GroupSpec {
            name: format!("g{g}"),
            nodes: vec![NodeId(0), NodeId(1)],
            failback: Failback::Manual,
            failback_delay: Duration::from_secs(30),
            migration_threshold: 3,
            failure_timeout: Duration::from_secs(600),
            resources: (0..RESOURCES)
                .map(|r| ResourceSpec {
                    name: format!("r{r}"),
                    kind: kinds[r % kinds.len()],
                    monitor_interval: Duration::from_secs(10),
                    monitor_timeout: Duration::from_secs(20),
                    start_timeout: Duration::from_secs(20),
                    stop_timeout: Duration::from_secs(20),
                    lock_standby: false,
                })
                .collect(),
        })
        .collect();
    ClusterSpec {
        name: "bench".into(),
        timing: Timing::default(),
        nodes: vec![NodeSpec { name: "alpha".into() }, NodeSpec { name: "beta".into() }],
        links: vec![
            LinkSpec { name: "private".into(), kind: LinkKind::Udp },
            LinkSpec { name: "public".into(), kind: LinkKind::Udp },
        ],
        arbitration: ArbitrationKind::Witness,
        groups,
    }
}

/// Drive both engines with instant agents and an always-granting arbitrator until
/// `until`; returns the outputs' count.
fn drive(engines: &mut [Engine], now: &mut Instant, until: Instant) {
    loop {
        let mut inputs: Vec<(usize, Input)> = Vec::new();
        let mut next = until;
        for (index, engine) in engines.iter_mut().enumerate() {
            loop {
                match engine.poll_output() {
                    Output::Wait(t) => {
                        next = next.min(t);
                        break;
                    }
                    Output::Heartbeat { link, to, message } => inputs.push((
                        usize::from(to.0),
                        Input::Heartbeat { link, message, received: *now },
                    )),
                    Output::Operation { id, op, .. } => {
                        let result =
                            if op == OpKind::Probe { OpResult::NotRunning } else { OpResult::Ok };
                        inputs.push((index, Input::Operation { id, result }))
                    }
                    Output::Lease { id, request } => {
                        let result = match request {
                            LeaseRequest::Release(_) => LeaseResult::Released,
                            _ => LeaseResult::Granted { since: *now },
                        };
                        inputs.push((index, Input::Lease { id, result }))
                    }
                    _ => {}
                }
            }
        }
        if inputs.is_empty() {
            if next >= until {
                *now = until;
                return;
            }
            *now = next.max(*now);
            for engine in engines.iter_mut() {
                engine.handle(*now, Input::Timeout);
            }
        }
        for (index, input) in inputs {
            if index < engines.len() {
                engines[index].handle(*now, input);
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn main() {
    let spec = Arc::new(spec());
    let mut detect = Vec::new();
    let mut grants = Vec::new();
    for trial in 0..TRIALS {
        let mut now = Instant::from_nanos(1_000_000_000);
        let mut engines = vec![
            Engine::new(spec.clone(), NodeId(0), trial as u64 + 1, now),
            Engine::new(spec.clone(), NodeId(1), trial as u64 + 1, now),
        ];
        let formed = now + Duration::from_secs(5);
        drive(&mut engines, &mut now, formed);
        let running = engines[1]
            .status(now)
            .groups
            .iter()
            .filter(|g| g.state == GroupState::Running && g.owner == Some(NodeId(0)))
            .count();
        assert_eq!(running, GROUPS, "alpha must run every group before the failure");

        // alpha dies: nothing more from it. Step beta's clock deadline by deadline until
        // the input that reveals the loss, which comes out as a lease request per group.
        let mut beta = engines.remove(1);
        drop(engines);
        let acquires = loop {
            let deadline = match beta.poll_output() {
                Output::Wait(t) => t,
                _ => continue,
            };
            now = deadline;
            let started = std::time::Instant::now();
            beta.handle(now, Input::Timeout);
            let mut acquires = Vec::new();
            loop {
                match beta.poll_output() {
                    Output::Wait(_) => break,
                    Output::Lease { id, request: LeaseRequest::Acquire(_) } => acquires.push(id),
                    _ => {}
                }
            }
            if !acquires.is_empty() {
                detect.push(started.elapsed());
                break acquires;
            }
        };
        assert_eq!(acquires.len(), GROUPS);
        let started = std::time::Instant::now();
        let mut starts = 0;
        for id in acquires {
            beta.handle(now, Input::Lease { id, result: LeaseResult::Granted { since: now } });
            loop {
                match beta.poll_output() {
                    Output::Wait(_) => break,
                    Output::Operation { op: OpKind::Start, .. } => starts += 1,
                    _ => {}
                }
            }
        }
        grants.push(started.elapsed());
        assert_eq!(starts, GROUPS);
    }
    detect.sort();
    grants.sort();
    println!(
        "decision after node failure ({GROUPS} groups x {RESOURCES} resources, {TRIALS} trials): median {:.2?}, p99 {:.2?}",
        percentile(&detect, 0.5),
        percentile(&detect, 0.99)
    );
    println!(
        "handling {GROUPS} lease grants up to the first starts: median {:.2?}, p99 {:.2?}",
        percentile(&grants, 0.5),
        percentile(&grants, 0.99)
    );
}
