//! The one rule for tests that need something the machine may not have (root, the
//! lab's `TANDEM_LAB=1`, a program, a file): under the test command (`cargo xtask
//! test`, which sets [`REQUIRE_ENV`]`=1`) such a test runs or **fails**, naming what is
//! missing, so that the suite cannot pass with real tests skipped; under a plain `cargo
//! test` by a developer without root it may skip, loudly. Tests call the checks
//! ([`lab`], [`root`], [`program`], [`path`]) and hand a failed one to [`cannot_run`].
//!
//! A dev-dependency only, of any crate (xtask's dependency rules allow it): it depends
//! on nothing but `std`.

use std::path::{Path, PathBuf};

/// Set to `1` by the test command: no test may skip.
pub const REQUIRE_ENV: &str = "TANDEM_REQUIRE_LAB";

/// Whether tests must run (the test command set [`REQUIRE_ENV`]`=1`).
pub fn required() -> bool {
    std::env::var_os(REQUIRE_ENV).is_some_and(|v| v == "1")
}

/// What a test that cannot run here does; the caller returns after it. Under the test
/// command it panics with `missing` (the test fails, saying what to install or
/// provide); otherwise it writes a SKIP line straight to the process's stderr, past
/// libtest's capture, so that a plain `cargo test` shows it even for a passing test
/// (nextest keeps a passing test's output: `--no-capture` shows it).
#[track_caller]
pub fn cannot_run(test: &str, missing: &str) {
    let text = verdict(required(), test, missing);
    if required() {
        panic!("{text}");
    }
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(format!("{text}\n").as_bytes());
}

/// The line [`cannot_run`] prints or panics with.
fn verdict(required: bool, test: &str, missing: &str) -> String {
    if required {
        format!(
            "{test} cannot run here: {missing}. The test command ({REQUIRE_ENV}=1) runs every \
             test; provide what is missing (`cargo xtask test` as root installs the packages)"
        )
    } else {
        format!(
            "SKIP {test}: {missing} — this test did NOT run (`cargo xtask test` as root runs it)"
        )
    }
}

/// `Ok` when the process runs as root (effective uid 0, from /proc/self/status).
pub fn root() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if effective == Some("0") {
        Ok(())
    } else {
        Err("it needs root".to_string())
    }
}

/// `Ok` when the lab tests are on: `TANDEM_LAB=1` (the test command sets it) and root.
pub fn lab() -> Result<(), String> {
    if std::env::var_os("TANDEM_LAB").is_none_or(|v| v != "1") {
        return Err("TANDEM_LAB is not set to 1 (the lab tests are opt-in)".to_string());
    }
    root().map_err(|_| "the lab needs root (namespaces, loop devices)".to_string())
}

/// Where `program` is: on `PATH`, or in /usr/sbin or /sbin.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// `Ok` when `program` is installed; otherwise names it and its Debian `package`.
pub fn program(program: &str, package: &str) -> Result<(), String> {
    match find_program(program) {
        Some(_) => Ok(()),
        None => Err(format!("{program} is not installed (apt-get install {package})")),
    }
}

/// `Ok` when `path` exists; otherwise names it and the Debian `package` that has it.
pub fn path(path: &str, package: &str) -> Result<(), String> {
    if Path::new(path).exists() {
        Ok(())
    } else {
        Err(format!("{path} does not exist (apt-get install {package})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_names_what_is_missing_and_how_to_get_it() {
        let fail = verdict(true, "t", "ping is not installed (apt-get install iputils-ping)");
        assert!(fail.starts_with("t cannot run here: ping is not installed"), "{fail}");
        assert!(fail.contains(REQUIRE_ENV), "{fail}");
        let skip = verdict(false, "t", "it needs root");
        assert!(skip.starts_with("SKIP t: it needs root") && skip.contains("NOT run"), "{skip}");
    }

    #[test]
    fn programs_and_paths_are_found_or_named_with_their_package() {
        assert!(program("sh", "dash").is_ok());
        let missing = program("tandem-no-such-tool", "tandem-pkg").unwrap_err();
        assert_eq!(missing, "tandem-no-such-tool is not installed (apt-get install tandem-pkg)");
        assert!(path("/proc/self", "procps").is_ok());
        assert!(path("/tandem/none", "x").unwrap_err().contains("apt-get install x"));
    }

    #[test]
    fn root_is_read_from_the_effective_uid() {
        let me = std::fs::metadata("/proc/self").map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid()
        });
        assert_eq!(root().is_ok(), me.unwrap() == 0);
    }
}
