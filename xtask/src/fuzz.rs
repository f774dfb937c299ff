//! `cargo xtask fuzz`: a short run of every cargo-fuzz target of
//! `fuzz/` ([`SECONDS_PER_TARGET`] seconds each, two at a time) on its corpus kept in
//! the repository (`fuzz/corpus/<target>/`), failing on a crash, a hang
//! (libFuzzer's `-timeout`) or a target that does not build. It never skips: it needs a
//! nightly toolchain and `cargo-fuzz`, installs them when they are missing (`rustup
//! toolchain install nightly`, `cargo install cargo-fuzz --locked`), and fails saying
//! what is missing and how to install it when it cannot. The corpus in the repository
//! is only read: what a run finds goes to `fuzz/target/suite-corpus/<target>/` (ignored
//! by git), emptied before each run so that every run starts from the kept corpus.
//! Not yet a step of `cargo xtask test`: the fuzz workspace's first build (about 8
//! minutes on 2 cores) and the runs would take the suite past its 20-minute budget on a
//! fresh clone. Long runs and how to add to the corpus: fuzz/README.md.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context as _};

/// How long each target runs (libFuzzer's `-max_total_time`).
pub const SECONDS_PER_TARGET: u32 = 30;
/// Targets run at once (the suite's machine has 2 cores).
pub const AT_ONCE: usize = 2;
/// libFuzzer's `-timeout`: one input taking longer is a hang, and fails the step.
pub const INPUT_TIMEOUT_SECONDS: u32 = 5;

/// A `cargo +nightly ...` command in `dir` through rustup's `cargo` proxy (the
/// `CARGO` the suite runs under is the stable toolchain's own binary, which knows no
/// `+nightly`), without what `cargo run` set for xtask itself (`CARGO_*` but
/// `CARGO_HOME`, the stable toolchain's library path): with them the fuzz build would
/// not match the one a plain `cargo +nightly fuzz` made, and everything would be
/// built again.
fn nightly_cargo(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("cargo");
    command.arg("+nightly").args(args).current_dir(dir).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let inherited = (name.starts_with("CARGO") && name != "CARGO_HOME")
            || name.starts_with("RUSTUP_TOOLCHAIN")
            || ["RUSTC", "RUSTDOC", "LD_LIBRARY_PATH", "OUT_DIR"].contains(&name.as_ref());
        if inherited {
            command.env_remove(name.as_ref());
        }
    }
    command
}

fn succeeds(command: &mut Command) -> bool {
    command.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn run_shown(command: &mut Command, what: &str) -> anyhow::Result<()> {
    println!("$ {what}");
    let status = command.status().with_context(|| format!("could not start `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(())
}

/// Makes sure `cargo +nightly fuzz` works, installing what is missing.
fn ensure_tools(root: &Path) -> anyhow::Result<()> {
    if !succeeds(&mut nightly_cargo(root, &["--version"])) {
        println!("fuzz: no nightly toolchain; installing it");
        let installed = run_shown(
            Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ]),
            "rustup toolchain install nightly --profile minimal",
        );
        if let Err(e) = installed {
            bail!(
                "the fuzz targets need a nightly toolchain, which is missing and could not be \
                 installed ({e:#}); install it with `rustup toolchain install nightly`"
            );
        }
    }
    if !succeeds(&mut nightly_cargo(root, &["fuzz", "--version"])) {
        println!("fuzz: cargo-fuzz is not installed; installing it");
        let installed = run_shown(
            Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]).env_remove("RUSTC"),
            "cargo install cargo-fuzz --locked",
        );
        if let Err(e) = installed {
            bail!(
                "the fuzz targets need cargo-fuzz, which is missing and could not be installed \
                 ({e:#}); install it with `cargo install cargo-fuzz --locked`"
            );
        }
    }
    Ok(())
}

/// The targets `cargo fuzz list` names.
fn targets(root: &Path) -> anyhow::Result<Vec<String>> {
    let output = nightly_cargo(root, &["fuzz", "list"])
        .stderr(Stdio::inherit())
        .output()
        .context("could not start `cargo +nightly fuzz list`")?;
    if !output.status.success() {
        bail!("`cargo +nightly fuzz list` failed ({})", output.status);
    }
    let list: Vec<String> =
        String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_owned).collect();
    if list.is_empty() {
        bail!("`cargo +nightly fuzz list` names no target");
    }
    Ok(list)
}

/// One target's run, started.
struct Running {
    target: String,
    child: Child,
    log: PathBuf,
}

fn start(root: &Path, target: &str) -> anyhow::Result<Running> {
    let work = root.join("fuzz/target/suite-corpus").join(target);
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let logs = root.join("fuzz/target/suite-logs");
    std::fs::create_dir_all(&logs)?;
    let log = logs.join(format!("{target}.log"));
    let file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let work = work.to_string_lossy().into_owned();
    let kept = format!("fuzz/corpus/{target}");
    let max_time = format!("-max_total_time={SECONDS_PER_TARGET}");
    let timeout = format!("-timeout={INPUT_TIMEOUT_SECONDS}");
    let args =
        ["fuzz", "run", target, &work, &kept, "--", &max_time, &timeout, "-print_final_stats=1"];
    println!("$ cargo +nightly {} > {}", args.join(" "), log.display());
    let child = nightly_cargo(root, &args)
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("could not start the fuzz target {target}"))?;
    Ok(Running { target: target.to_owned(), child, log })
}

/// The value of libFuzzer's final `stat::NAME: value` line in `log`.
fn stat(log: &str, name: &str) -> Option<u64> {
    log.lines()
        .filter_map(|line| line.strip_prefix(&format!("stat::{name}:")))
        .next_back()
        .and_then(|value| value.trim().parse().ok())
}

/// Waits for `run`; fails with the end of its log if it crashed or hung.
fn finish(mut run: Running) -> anyhow::Result<()> {
    let status = run.child.wait()?;
    let log = std::fs::read_to_string(&run.log).unwrap_or_default();
    if !status.success() {
        let lines: Vec<&str> = log.lines().collect();
        for line in &lines[lines.len().saturating_sub(40)..] {
            println!("  {line}");
        }
        bail!(
            "fuzz target {} failed ({status}): see above and {}; the input is in \
             fuzz/artifacts/{}/ (replay it with `cargo +nightly fuzz run {} FILE`)",
            run.target,
            run.log.display(),
            run.target,
            run.target
        );
    }
    let executions = stat(&log, "number_of_executed_units").unwrap_or(0);
    let rate = stat(&log, "average_exec_per_sec").unwrap_or(0);
    println!("fuzz: {:<16} {executions:>10} executions ({rate} exec/s), no crash", run.target);
    Ok(())
}

/// The step: tools, build, then every target for [`SECONDS_PER_TARGET`] seconds,
/// [`AT_ONCE`] at a time.
pub fn run(root: &Path) -> anyhow::Result<()> {
    ensure_tools(root)?;
    run_shown(&mut nightly_cargo(root, &["fuzz", "build"]), "cargo +nightly fuzz build")?;
    let targets = targets(root)?;
    for batch in targets.chunks(AT_ONCE) {
        let mut running = Vec::new();
        for target in batch {
            running.push(start(root, target)?);
        }
        let mut failed = None;
        for run in running {
            if let Err(e) = finish(run) {
                failed.get_or_insert(e);
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
    }
    println!("fuzz: {} targets ran {SECONDS_PER_TARGET} s each without a crash", targets.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_stats_are_read() {
        let log = "#1000 DONE cov: 3\nstat::number_of_executed_units: 123456\n\
                   stat::average_exec_per_sec:     4115\nstat::new_units_added:  7\n";
        assert_eq!(stat(log, "number_of_executed_units"), Some(123_456));
        assert_eq!(stat(log, "average_exec_per_sec"), Some(4115));
        assert_eq!(stat(log, "peak_rss_mb"), None);
    }

    #[test]
    fn the_suite_budget_holds() {
        // Every target of fuzz/Cargo.toml, two at a time, within about 3.5 minutes.
        let manifest = std::fs::read_to_string(crate::repo_root().join("fuzz/Cargo.toml")).unwrap();
        let targets = manifest.matches("[[bin]]").count();
        assert!(targets >= 7, "{targets} targets");
        let rounds = targets.div_ceil(AT_ONCE) as u32;
        assert!(rounds * SECONDS_PER_TARGET <= 210, "{rounds} rounds of {SECONDS_PER_TARGET} s");
    }
}
