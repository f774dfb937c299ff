//! `cargo xtask`: parses the task name and hands over to the library. No logic here
//! beyond choosing the task; each task lives in its own module of the `xtask` library.

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test                  run the whole suite: format, tidy, clippy, tests, simulation of every example
  fuzz                  every fuzz target for 30 s on its kept corpus (needs nightly; installs cargo-fuzz)
  tidy                  check that every source file opens with //! and no function is too long
  bench                 measure decision time, validate time and simulator throughput
  errors-doc            regenerate docs/errors.md from the engine's catalogue
  errors-doc --check    exit 1 if docs/errors.md is out of date
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["test"] => xtask::suite::run(),
        ["tidy"] => xtask::tidy::run(),
        ["fuzz"] => xtask::fuzz::run(&xtask::repo_root()).map(|()| ExitCode::SUCCESS),
        ["bench"] => xtask::bench::run_all(),
        ["errors-doc"] => xtask::errors_doc::write().map(|()| ExitCode::SUCCESS),
        ["errors-doc", "--check"] => xtask::errors_doc::check(),
        ["help" | "--help" | "-h"] => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            eprint!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
