//! `cargo xtask bench`: the benchmarks of the foundation, reported as median and p99
//! (never asserted: the machines are noisy). It runs, in release builds:
//! - the engine's decision time after a node failure with 1,000 groups × 10 resources
//!   (`cargo bench -p engine --bench decision`);
//! - `config::parse` and the whole `tandem validate` process on a generated file of that
//!   size (30 runs each);
//! - simulator throughput (simulated cluster-hours per CPU-second) over each example;
//! - as root with `TANDEM_LAB=1`: the lab benchmarks (`cargo bench -p tandem --bench lab`:
//!   failover and switch-over outage seen by a client, idle cost, false failovers under
//!   load and loss; about 20 minutes, `TANDEM_BENCH_ONLY` picks some).
//!
//! It prints what it measured; `docs/benchmarks.md` records the figures.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context as _};

const VALIDATE_RUNS: usize = 30;
const SIMULATE_SEEDS: &str = "200";

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command.stdin(Stdio::null()).output().with_context(|| format!("{command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn run_all() -> anyhow::Result<std::process::ExitCode> {
    let root = crate::repo_root();
    std::env::set_current_dir(&root)?;
    println!("== engine decision time");
    let out =
        run(Command::new(cargo()).args(["bench", "-q", "-p", "engine", "--bench", "decision"]))?;
    print!("{out}");

    println!("== configuration");
    std::fs::create_dir_all("target/bench")?;
    let big = root.join("target/bench/big.toml");
    let big_arg = big.to_str().context("path")?;
    let out = run(Command::new(cargo()).args([
        "run",
        "-q",
        "--release",
        "-p",
        "config",
        "--example",
        "timing",
        "--",
        "1000",
        "--emit",
        big_arg,
    ]))?;
    print!("{out}");
    run(Command::new(cargo()).args(["build", "-q", "--release", "-p", "tandem"]))?;
    let tandem = root.join("target/release/tandem");
    let mut times = Vec::with_capacity(VALIDATE_RUNS);
    for _ in 0..VALIDATE_RUNS {
        let start = Instant::now();
        let status = Command::new(&tandem)
            .args(["validate", "--no-host-checks", big_arg])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if !status.success() {
            bail!("tandem validate refused the generated file");
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "tandem validate (whole process) of the same file: median {:.1} ms, p99 {:.1} ms over {VALIDATE_RUNS} runs",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );

    println!("== simulator throughput ({SIMULATE_SEEDS} seeds each)");
    let mut examples: Vec<_> = std::fs::read_dir("examples")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    examples.sort();
    for example in examples {
        let out = Command::new(&tandem)
            .args(["simulate", "--seeds", SIMULATE_SEEDS, "--config"])
            .arg(&example)
            .stdin(Stdio::null())
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.contains("per CPU-second")).unwrap_or("(no figure)");
        println!(
            "{}: {}",
            example.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            line.trim()
        );
    }
    println!("== the lab (real daemons in namespaces)");
    if std::env::var_os("TANDEM_LAB").is_some() {
        let status = Command::new(cargo())
            .args(["bench", "-q", "-p", "tandem", "--bench", "lab"])
            .stdin(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("the lab benchmarks failed");
        }
    } else {
        println!("skipped: run as root with TANDEM_LAB=1 (docs/benchmarks.md)");
    }
    Ok(std::process::ExitCode::SUCCESS)
}
