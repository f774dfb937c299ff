//! `tandem simulate`: runs the real decision core (one engine per node) under the
//! deterministic simulator with swarm-tested faults, and reports violations of the
//! guarantees (PRODUCT.md section 3). `--seeds N` runs many seeds and prints counts and
//! throughput, exiting 1 with the replay command of the first failing seed; `--seed S`
//! prints one run's fault plan, timeline and verdict.
//!
//! Presentation only: the runs, the checkers and the verdicts live in the `sim` crate.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use engine::ClusterSpec;
use sim::{Guarantee, RunReport, Sim};

#[derive(clap::Args)]
pub struct Args {
    /// A configuration file to simulate (repeatable). Default: /etc/tandem/cluster.toml if
    /// it exists, else the built-in two- and three-node clusters.
    #[arg(long = "config", value_name = "FILE")]
    configs: Vec<PathBuf>,
    /// Run this many seeds (starting at --first-seed).
    #[arg(long, value_name = "N", conflicts_with = "seed")]
    seeds: Option<u64>,
    /// The first seed of --seeds.
    #[arg(long, value_name = "S", default_value_t = 0)]
    first_seed: u64,
    /// Run one seed and print its timeline.
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Simulated hours per seed: a safety phase with faults, then a liveness phase
    /// with every fault healed.
    #[arg(long, value_name = "H", default_value_t = 0.1)]
    hours: f64,
    /// Size of the built-in cluster (2 or 3) when no configuration file is used.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(2..=3))]
    nodes: Option<u8>,
}

/// Seeds run when neither --seeds nor --seed is given.
const DEFAULT_SEEDS: u64 = 100;
/// The longest run one seed may ask for.
const HOURS_MAX: f64 = 1_000.0;

/// A cluster to simulate: its spec and how to name it in a replay command.
struct Target {
    label: String,
    /// The arguments that select it again (`--config F` or `--nodes N`).
    selector: String,
    spec: ClusterSpec,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(args.hours > 0.0 && args.hours <= HOURS_MAX) {
        bail!("--hours must be more than 0 and at most {HOURS_MAX}");
    }
    let duration = Duration::from_secs_f64(args.hours * 3600.0);
    let targets = targets(&args)?;
    if let Some(seed) = args.seed {
        let mut failed = false;
        for target in &targets {
            failed |= replay(target, seed, duration, args.hours);
        }
        return Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS });
    }
    let seeds = args.seeds.unwrap_or(DEFAULT_SEEDS);
    let mut failed = false;
    for target in &targets {
        failed |= sweep(target, args.first_seed, seeds, duration, args.hours);
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn targets(args: &Args) -> anyhow::Result<Vec<Target>> {
    let mut configs = args.configs.clone();
    if configs.is_empty() && args.nodes.is_none() {
        let default = PathBuf::from(config::DEFAULT_PATH);
        if default.exists() {
            configs.push(default);
        }
    }
    if !configs.is_empty() {
        if args.nodes.is_some() {
            bail!("--nodes selects a built-in cluster; it cannot be combined with --config");
        }
        let mut targets = Vec::new();
        for path in configs {
            let (config, _warnings) = config::load(&path)
                .map_err(|invalid| anyhow::anyhow!("{invalid}"))
                .with_context(|| format!("cannot simulate {}", path.display()))?;
            targets.push(Target {
                label: path.display().to_string(),
                selector: format!("--config {}", path.display()),
                spec: config.cluster,
            });
        }
        return Ok(targets);
    }
    let sizes: Vec<u8> = match args.nodes {
        Some(n) => vec![n],
        None => vec![2, 3],
    };
    Ok(sizes
        .into_iter()
        .map(|n| {
            let spec = if n == 2 { sim::cluster::two_node() } else { sim::cluster::three_node() };
            Target {
                label: format!("built-in {n}-node cluster"),
                selector: format!("--nodes {n}"),
                spec,
            }
        })
        .collect())
}

fn replay_command(target: &Target, seed: u64, hours: f64) -> String {
    format!("tandem simulate {} --seed {seed} --hours {hours}", target.selector)
}

/// Runs seeds `first..first + count`; prints the totals; true if any run failed.
fn sweep(target: &Target, first: u64, count: u64, duration: Duration, hours: f64) -> bool {
    println!(
        "simulating {} ({} nodes), seeds {first}..{}",
        target.label,
        target.spec.nodes.len(),
        first + count
    );
    let started = Instant::now();
    let mut totals = vec![0u64; Guarantee::ALL.len()];
    let mut first_seed: Vec<Option<u64>> = vec![None; Guarantee::ALL.len()];
    let mut codes = std::collections::BTreeMap::new();
    let mut simulated_ns = 0u128;
    let mut events = 0u64;
    let mut failing: Vec<RunReport> = Vec::new();
    let mut bound = Duration::ZERO;
    for seed in first..first.saturating_add(count) {
        let mut sim: Sim = Sim::swarm(target.spec.clone(), seed, duration, false);
        let report = sim.run_to_end();
        simulated_ns += u128::from(report.simulated_ns);
        events += report.events;
        bound = report.liveness_bound;
        for (i, (_, n)) in report.counts.iter().enumerate() {
            totals[i] += n;
            if *n > 0 && first_seed[i].is_none() {
                first_seed[i] = Some(seed);
            }
        }
        for (code, n) in &report.codes {
            *codes.entry(*code).or_insert(0u64) += n;
        }
        if report.total() > 0 {
            if failing.is_empty() {
                print_first_failure(target, &report, hours);
            }
            failing.push(report);
        }
    }
    let cpu = started.elapsed().as_secs_f64().max(1e-9);
    let cluster_hours = simulated_ns as f64 / 3.6e12;
    println!(
        "  {count} seeds, {cluster_hours:.1} simulated cluster-hours, {events} events in {cpu:.1} s: \
         {:.1} cluster-hours per CPU-second",
        cluster_hours / cpu
    );
    println!("  liveness bound after healing: {} ms", bound.as_millis());
    let highlights = [
        ("W4111", "failovers"),
        ("I4112", "switch-overs"),
        ("E3106", "self-fences"),
        ("W4109", "migration locks"),
        ("E2104", "peers lost"),
        ("I4120", "re-attachments"),
    ];
    let shown: Vec<String> = highlights
        .iter()
        .map(|(code, what)| format!("{what} {}", codes.get(code).copied().unwrap_or(0)))
        .collect();
    println!("  engine events: {}", shown.join(", "));
    for (i, guarantee) in Guarantee::ALL.iter().enumerate() {
        let first = first_seed[i].map_or(String::new(), |s| format!(" (first: seed {s})"));
        println!("  {:<3} {:>6}  {}{first}", guarantee.code(), totals[i], guarantee.title());
    }
    if failing.is_empty() {
        println!("  no violations");
        return false;
    }
    let seeds: Vec<String> = failing.iter().take(20).map(|r| r.seed.to_string()).collect();
    println!(
        "  FAILED: {} of {count} seeds violated a guarantee (first seeds: {})",
        failing.len(),
        seeds.join(", ")
    );
    true
}

fn print_first_failure(target: &Target, report: &RunReport, hours: f64) {
    println!("  seed {} violates:", report.seed);
    for v in report.violations.iter().take(5) {
        println!("    {} at {} ms: {}", v.guarantee.code(), v.at_ns / 1_000_000, v.message);
    }
    println!("  replay: {}", replay_command(target, report.seed, hours));
}

/// Runs one seed with the timeline on and prints it; true if it failed.
fn replay(target: &Target, seed: u64, duration: Duration, hours: f64) -> bool {
    let mut sim: Sim = Sim::swarm(target.spec.clone(), seed, duration, true);
    println!(
        "simulating {} ({} nodes), seed {seed}, {hours} h",
        target.label,
        target.spec.nodes.len()
    );
    if let Some(plan) = sim.plan() {
        println!("fault plan:");
        for line in plan.lines() {
            println!("  {line}");
        }
    }
    if let Some((heal_at, bound)) = sim.liveness() {
        println!(
            "faults until {} ms, then everything heals; liveness checked {} ms later",
            heal_at / 1_000_000,
            bound.as_millis()
        );
    }
    println!("---- timeline");
    let report = sim.run_to_end();
    print!("{}", sim.summary());
    println!("---- what each engine reports at the end");
    print!("{}", sim.views());
    println!("---- verdict");
    println!("{} events, trace {}", report.events, report.trace_hash);
    if report.total() == 0 {
        println!("no violations");
        return false;
    }
    for (guarantee, n) in &report.counts {
        if *n > 0 {
            println!("{} {n}: {}", guarantee.code(), guarantee.title());
        }
    }
    for v in &report.violations {
        println!("  {} at {} ms: {}", v.guarantee.code(), v.at_ns / 1_000_000, v.message);
    }
    println!("replay: {}", replay_command(target, seed, hours));
    true
}
