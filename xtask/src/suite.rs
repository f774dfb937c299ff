//! `cargo xtask test`: the one command that runs the whole suite, as CI runs it. It owns
//! the list and order of the steps (format, tidy, clippy, tests, simulation of every example),
//! their headers and timings, and the rule that the first failing step stops the run
//! with a non-zero exit naming that step. It must not decide anything about the code
//! under test: every check lives in the tools and tests it runs. It never reads stdin,
//! so it runs unattended (`CI=true`). Before the steps it turns the lab tests on, makes
//! every test that needs root, the lab or a tool run or fail (`TANDEM_REQUIRE_LAB=1`,
//! read by the `testgate` crate: no test may skip under this command) and, as root,
//! installs the system packages they need (`check_system_packages`). The tests step
//! counts what ran, per crate (`tally`), and fails if any test was skipped; the last
//! lines say how many tests passed and failed, and how many ran per crate.

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::tally::{self, Tally};

/// How many seeds `tandem simulate` runs for each example.
pub const SIMULATION_SEEDS: u32 = 2000;

/// What a step ended with, when it did not fail.
enum Outcome {
    Passed,
    /// Skipped, with the reason printed as a warning and repeated in the summary.
    Skipped(String),
}

struct Step {
    name: &'static str,
    run: fn(&Suite) -> anyhow::Result<Outcome>,
}

const STEPS: &[Step] = &[
    Step { name: "format", run: format },
    Step { name: "tidy", run: tidy },
    Step { name: "clippy", run: clippy },
    Step { name: "tests", run: tests },
    Step { name: "simulate examples", run: simulate_examples },
];

struct Suite {
    root: PathBuf,
    cargo: OsString,
    /// What the tests step counted.
    tally: RefCell<Option<Tally>>,
}

/// Runs every step in order; stops at the first failure.
pub fn run() -> anyhow::Result<ExitCode> {
    let suite = Suite {
        root: crate::repo_root(),
        cargo: std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        tally: RefCell::new(None),
    };
    check_system_packages()?;
    let started = Instant::now();
    let mut summary = Vec::new();
    for (index, step) in STEPS.iter().enumerate() {
        let label = format!("[{}/{}] {}", index + 1, STEPS.len(), step.name);
        println!("\n==> {label}");
        let step_started = Instant::now();
        let result = (step.run)(&suite);
        let took = step_started.elapsed();
        match result {
            Ok(Outcome::Passed) => {
                println!("<== {label}: passed in {}", seconds(took));
                summary.push(format!("  {:<18} passed   {:>8}", step.name, seconds(took)));
            }
            Ok(Outcome::Skipped(reason)) => {
                println!("<== {label}: SKIPPED after {}: {reason}", seconds(took));
                summary.push(format!(
                    "  {:<18} SKIPPED  {:>8}  ({reason})",
                    step.name,
                    seconds(took)
                ));
            }
            Err(error) => {
                eprintln!(
                    "\nxtask test: FAILED at step {label} after {}: {error:#}",
                    seconds(took)
                );
                eprintln!("(the steps after it were not run)");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let skipped = summary.iter().filter(|line| line.contains("SKIPPED")).count();
    println!("\n==> summary");
    for line in &summary {
        println!("{line}");
    }
    let tally = suite.tally.borrow().clone().context("the tests step counted nothing")?;
    let total = tally.total();
    println!("tests: {} passed, {} failed, {} skipped", total.passed, total.failed, total.skipped);
    let tests = format!("{} tests ran ({}), none skipped", total.ran(), tally.per_crate());
    if skipped == 0 {
        println!(
            "xtask test: all {} steps passed in {}; {tests}",
            STEPS.len(),
            seconds(started.elapsed())
        );
    } else {
        println!(
            "xtask test: passed in {}, but {skipped} step(s) SKIPPED (see above); {tests}",
            seconds(started.elapsed())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Something the lab tests (`crates/testbed`, `TANDEM_LAB=1`) or the agents' tests need
/// from the system.
#[derive(Clone, Copy, Debug)]
enum Need {
    /// A program on `PATH` (or in /usr/sbin, /sbin).
    Program(&'static str),
    /// A directory.
    Dir(&'static str),
}

impl Need {
    fn present(self) -> bool {
        match self {
            Need::Program(program) => on_path(program),
            Need::Dir(dir) => Path::new(dir).is_dir(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Need::Program(program) | Need::Dir(program) => program,
        }
    }
}

/// What the lab and agent tests need, with the Debian package that provides each.
const LAB_NEEDS: &[(Need, &str)] = &[
    (Need::Program("ip"), "iproute2"),
    (Need::Program("nft"), "nftables"),
    (Need::Program("losetup"), "mount"),
    (Need::Program("mkfs.ext4"), "e2fsprogs"),
    (Need::Program("unshare"), "util-linux"),
    (Need::Program("nsenter"), "util-linux"),
    (Need::Program("ping"), "iputils-ping"),
    (Need::Program("arping"), "iputils-arping"),
    (Need::Dir("/usr/lib/ocf/resource.d/heartbeat"), "resource-agents"),
    (Need::Program("dbus-daemon"), "dbus-daemon"),
    (Need::Program("systemd-notify"), "systemd"),
    // The alert tests' SMTP server (crates/alerts/tests/delivery.rs), run by /usr/bin/python3.
    (Need::Dir("/usr/lib/python3/dist-packages/aiosmtpd"), "python3-aiosmtpd"),
    // `promtool check rules` / `check metrics` (crates/tandem/tests/cli.rs).
    (Need::Program("promtool"), "prometheus"),
    // examples/app-heartbeat.sh, run by the application API's lab test (tests/lab_ops.rs).
    (Need::Program("curl"), "curl"),
    // The console's browser tests (crates/tandem/tests/console.rs): headless Chromium
    // driven through WebDriver, the cluster CA trusted in an NSS database (certutil), and
    // a font for the screenshots (installs go without recommended packages).
    (Need::Program("chromium"), "chromium"),
    (Need::Program("chromedriver"), "chromium-driver"),
    (Need::Program("certutil"), "libnss3-tools"),
    (Need::Dir("/usr/share/fonts/truetype/dejavu"), "fonts-dejavu-core"),
];

/// The needs `present` says are missing, as (what, package).
fn missing(present: impl Fn(Need) -> bool) -> Vec<(&'static str, &'static str)> {
    LAB_NEEDS
        .iter()
        .filter(|(need, _)| !present(*need))
        .map(|(need, package)| (need.describe(), *package))
        .collect()
}

/// The packages of `missing`, each once, in order.
fn packages(missing: &[(&str, &'static str)]) -> Vec<&'static str> {
    let mut packages: Vec<&str> = Vec::new();
    for (_, package) in missing {
        if !packages.contains(package) {
            packages.push(package);
        }
    }
    packages
}

/// Turns the lab tests on (`TANDEM_LAB=1`) unless the caller chose otherwise, requires
/// every test to run (`TANDEM_REQUIRE_LAB=1`, always), and makes sure what they need is
/// there: as root with `apt-get`, missing packages are installed (unattended,
/// `--no-install-recommends`; after an `apt-get update` if the first try fails);
/// otherwise, or if that fails, it says what is missing, which package has it and how
/// to install it, and the tests that need it fail saying so.
fn check_system_packages() -> anyhow::Result<()> {
    if std::env::var_os("TANDEM_LAB").is_none() {
        std::env::set_var("TANDEM_LAB", "1");
    }
    std::env::set_var(REQUIRE_ENV, "1");
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let mut absent = missing(Need::present);
    if !absent.is_empty() && root && on_path("apt-get") {
        let wanted = packages(&absent);
        println!(
            "lab tests: installing missing packages {} (apt-get install -y \
             --no-install-recommends {})",
            wanted.join(", "),
            wanted.join(" ")
        );
        if !apt_get(&["install", "-y", "--no-install-recommends"], &wanted) {
            println!("lab tests: apt-get install failed; updating the package lists and retrying");
            let _ = apt_get(&["update"], &[]);
            let _ = apt_get(&["install", "-y", "--no-install-recommends"], &wanted);
        }
        absent = missing(Need::present);
    }
    if !absent.is_empty() {
        let what: Vec<String> =
            absent.iter().map(|(what, package)| format!("{what} (package {package})")).collect();
        println!(
            "WARNING: lab and agent tests that need them will FAIL: missing {}; install with \
             `apt-get install {}`{}",
            what.join(", "),
            packages(&absent).join(" "),
            if root { "" } else { " as root" }
        );
    }
    if !root {
        println!(
            "WARNING: the lab tests will FAIL: they need root (network namespaces, loop devices)"
        );
    } else if absent.is_empty() {
        println!("lab tests: on (root, every tool present)");
    }
    Ok(())
}

/// Runs `apt-get ARGS PACKAGES` unattended; whether it succeeded.
fn apt_get(args: &[&str], packages: &[&str]) -> bool {
    println!("$ apt-get {} {}", args.join(" "), packages.join(" "));
    Command::new("apt-get")
        .args(args)
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn on_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(std::path::PathBuf::from))
        .any(|dir| dir.join(tool).is_file())
}

fn format(suite: &Suite) -> anyhow::Result<Outcome> {
    suite.cargo(&["fmt", "--all", "--", "--check"])?;
    Ok(Outcome::Passed)
}

/// The tidy checks (`crate::tidy`): every offence is listed as `path:line: what`.
fn tidy(suite: &Suite) -> anyhow::Result<Outcome> {
    println!("$ cargo xtask tidy");
    let offences = crate::tidy::report(&suite.root)?;
    if offences > 0 {
        bail!("{offences} tidy offence(s), listed above as file:line");
    }
    Ok(Outcome::Passed)
}

fn clippy(suite: &Suite) -> anyhow::Result<Outcome> {
    suite.cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    Ok(Outcome::Passed)
}

/// The environment variable of the `testgate` crate: no test may skip.
const REQUIRE_ENV: &str = "TANDEM_REQUIRE_LAB";

/// The workspace's tests with nextest when it is installed (clearer output, one process
/// per test), else `cargo test`. Nextest does not run doc tests, so they follow. Every
/// test that exists must have run: what ran is counted per crate (nextest's JUnit
/// report against its test list; libtest's closing lines) and a skipped test fails the
/// step like a failed one.
fn tests(suite: &Suite) -> anyhow::Result<Outcome> {
    let nextest = suite.has_nextest();
    let (run, mut tally) = if nextest {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| suite.root.join("target"), PathBuf::from);
        let report = target.join("nextest/default/junit.xml");
        let _ = std::fs::remove_file(&report);
        let run = suite.cargo(&["nextest", "run", "--workspace", "--no-fail-fast"]);
        let list =
            suite.cargo_output(&["nextest", "list", "--workspace", "--message-format", "json"])?;
        let xml = std::fs::read_to_string(&report)
            .with_context(|| format!("nextest wrote no JUnit report at {}", report.display()))?;
        (run, tally::nextest(&xml, &list)?)
    } else {
        println!("(cargo nextest is not installed: running cargo test)");
        let (run, output) = suite.cargo_tee(&["test", "--workspace", "--no-fail-fast"])?;
        (run, tally::libtest(&output))
    };
    let run = if nextest {
        let (doc_run, output) = suite.cargo_tee(&["test", "--workspace", "--doc"])?;
        tally.merge(&tally::libtest(&output));
        run.and(doc_run)
    } else {
        run
    };
    let total = tally.total();
    println!(
        "tests: {} passed, {} failed, {} skipped; ran per crate: {}",
        total.passed,
        total.failed,
        total.skipped,
        tally.per_crate()
    );
    *suite.tally.borrow_mut() = Some(tally.clone());
    run?;
    if total.failed > 0 {
        bail!("{} test(s) failed", total.failed);
    }
    if total.skipped > 0 {
        let which: Vec<String> = tally
            .crates
            .iter()
            .filter(|(_, count)| count.skipped > 0)
            .map(|(name, count)| format!("{name} {}", count.skipped))
            .collect();
        bail!("{} test(s) did not run (ignored or skipped): {}", total.skipped, which.join(", "));
    }
    Ok(Outcome::Passed)
}

/// Runs the simulator over every `examples/*.toml`. Skipped, loudly, only while the
/// checkout has no real `tandem simulate` (its `--help` shows no `--config` option).
fn simulate_examples(suite: &Suite) -> anyhow::Result<Outcome> {
    suite.cargo(&["build", "--release", "-p", "tandem"])?;
    let help = suite.cargo_output(&[
        "run",
        "--release",
        "-q",
        "-p",
        "tandem",
        "--",
        "simulate",
        "--help",
    ])?;
    if !help.contains("--config") {
        println!(
            "WARNING: `tandem simulate --help` shows no --config option: the simulator \
             command is not implemented in this checkout yet, so the examples were NOT \
             simulated. This step runs as soon as it is."
        );
        let reason = "`tandem simulate` not implemented yet: examples NOT simulated";
        return Ok(Outcome::Skipped(reason.to_owned()));
    }
    let examples = example_files(&suite.root.join("examples"))?;
    if examples.is_empty() {
        bail!("no examples/*.toml to simulate");
    }
    let seeds = SIMULATION_SEEDS.to_string();
    for example in &examples {
        let example =
            example.strip_prefix(&suite.root).unwrap_or(example).to_string_lossy().into_owned();
        println!("--- {example}");
        suite.cargo(&[
            "run",
            "--release",
            "-q",
            "-p",
            "tandem",
            "--",
            "simulate",
            "--seeds",
            &seeds,
            "--config",
            &example,
        ])?;
    }
    Ok(Outcome::Passed)
}

fn example_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

impl Suite {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.cargo);
        command.args(args).current_dir(&self.root).stdin(Stdio::null());
        command
    }

    /// Runs `cargo ARGS` with its output shown; an error names the command and status.
    fn cargo(&self, args: &[&str]) -> anyhow::Result<()> {
        println!("$ cargo {}", args.join(" "));
        let status = self
            .command(args)
            .status()
            .with_context(|| format!("could not start `cargo {}`", args.join(" ")))?;
        if !status.success() {
            bail!("`cargo {}` failed ({status})", args.join(" "));
        }
        Ok(())
    }

    /// Runs `cargo ARGS` showing its output (stdout and stderr, in order) and returns
    /// it too, with whether the command succeeded.
    fn cargo_tee(&self, args: &[&str]) -> anyhow::Result<(anyhow::Result<()>, String)> {
        println!("$ cargo {}", args.join(" "));
        let (reader, writer) = std::io::pipe()?;
        let mut command = self.command(args);
        command.stdout(writer.try_clone()?).stderr(writer);
        let mut child = command
            .spawn()
            .with_context(|| format!("could not start `cargo {}`", args.join(" ")))?;
        // Our copies of the pipe's write end go with the command: EOF when cargo ends.
        drop(command);
        let mut output = String::new();
        for line in BufReader::new(reader).lines() {
            let line = line?;
            println!("{line}");
            output.push_str(&line);
            output.push('\n');
        }
        let status = child.wait()?;
        let result = if status.success() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("`cargo {}` failed ({status})", args.join(" ")))
        };
        Ok((result, output))
    }

    /// Runs `cargo ARGS` and returns its standard output; a non-zero exit gives "".
    fn cargo_output(&self, args: &[&str]) -> anyhow::Result<String> {
        println!("$ cargo {}", args.join(" "));
        let output = self
            .command(args)
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("could not start `cargo {}`", args.join(" ")))?;
        if !output.status.success() {
            return Ok(String::new());
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn has_nextest(&self) -> bool {
        self.command(&["nextest", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }
}

fn seconds(duration: Duration) -> String {
    let total = duration.as_secs_f64();
    if total < 60.0 {
        format!("{total:.1}s")
    } else {
        format!("{}m{:04.1}s", (total / 60.0).floor(), total % 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_needs_name_their_packages_once() {
        let absent = missing(|need| !matches!(need, Need::Program("unshare" | "nsenter" | "nft")));
        assert!(absent.contains(&("unshare", "util-linux")));
        assert!(absent.contains(&("nft", "nftables")));
        assert!(absent.iter().all(|(what, _)| *what != "ip"));
        assert_eq!(packages(&absent), ["nftables", "util-linux"]);
        assert!(missing(|_| true).is_empty());
        let every = packages(&missing(|_| false));
        for package in [
            "iproute2",
            "e2fsprogs",
            "iputils-ping",
            "iputils-arping",
            "resource-agents",
            "dbus-daemon",
            "systemd",
            "prometheus",
        ] {
            assert!(every.contains(&package), "{package} is not installed by the test command");
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(seconds(Duration::from_millis(1234)), "1.2s");
        assert_eq!(seconds(Duration::from_millis(125_500)), "2m05.5s");
    }

    #[test]
    fn examples_are_found_in_order() {
        let dir = std::env::temp_dir().join(format!("xtask-examples-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["b.toml", "a.toml", "notes.md"] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        let found = example_files(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<_> = found.iter().map(|p| p.file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["a.toml", "b.toml"]);
    }
}
