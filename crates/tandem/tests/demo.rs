//! `tandem demo` end to end: it must exit 0 after reporting a failover with the outage
//! the client saw, and leave nothing behind — on loopback always (`--loopback`), and in
//! the lab as root with `TANDEM_LAB=1` (no namespaces, loop devices or files of its lab
//! left, checked with `testbed::leftovers`).

use std::process::Command;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

/// Runs `tandem demo ARGS` without a terminal; its stdout (checked to have exit 0).
fn demo(args: &[&str]) -> String {
    let out = Command::new(TANDEM)
        .arg("demo")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("tandem runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains('\x1b'), "colours without a terminal:\n{stdout}");
    stdout
}

/// The outage figure in "... outage seen by the client N ms", checked to be there.
fn outage_ms(stdout: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.contains("failover complete: web runs on "))
        .unwrap_or_else(|| panic!("no failover reported:\n{stdout}"));
    line.split("outage seen by the client ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(" ms"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no outage figure in {line:?}"))
}

/// Live processes whose command line contains `token`.
fn processes_with(token: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if entry.file_name().to_string_lossy().parse::<u32>().is_err() {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat.rsplit(')').next().and_then(|s| s.split_whitespace().next()) == Some("Z");
        if cmdline.contains(token) && !zombie {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn the_loopback_demo_fails_over_reports_the_outage_and_cleans_up() {
    let stdout = demo(&["--fast", "--loopback"]);
    let ms = outage_ms(&stdout);
    assert!(ms > 0 && ms < 20_000, "outage {ms} ms\n{stdout}");
    for skipped in ["skipped a virtual IP", "skipped a shared file system", "--loopback"] {
        assert!(stdout.contains(skipped), "{skipped:?} missing:\n{stdout}");
    }
    assert!(stdout.contains("CRASH:"), "{stdout}");
    assert!(stdout.contains("W4111"), "no takeover event shown:\n{stdout}");
    assert!(stdout.contains("(still there)"), "{stdout}");
    // Its directory is named in the output; nothing of it may remain.
    let dir = stdout
        .split_whitespace()
        .find(|w| w.contains("/tandem-demo-"))
        .map(|w| w.trim_end_matches(':').to_string())
        .unwrap_or_else(|| panic!("no directory named:\n{stdout}"));
    let dir = dir.split("/www/").next().unwrap().to_string();
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
    assert_eq!(processes_with(&dir), Vec::<String>::new(), "processes left behind");
}

#[test]
fn the_lab_demo_moves_the_vip_the_disk_and_the_service() {
    if let Err(why) = testbed::availability() {
        testgate::cannot_run("the_lab_demo_moves_the_vip_the_disk_and_the_service", &why);
        return;
    }
    let stdout = demo(&["--fast"]);
    let ms = outage_ms(&stdout);
    assert!(ms > 0 && ms < 20_000, "outage {ms} ms\n{stdout}");
    assert!(!stdout.contains("skipped"), "{stdout}");
    for shown in [
        "data (filesystem) running -> vip (ip) running -> hello (process) running",
        "CRASH: host ",
        "W4111",
        "(still there)",
    ] {
        assert!(stdout.contains(shown), "{shown:?} missing:\n{stdout}");
    }
    let prefix = stdout
        .split_whitespace()
        .find(|w| w.starts_with("tnd-"))
        .map(|w| w.trim_end_matches(':').to_string())
        .unwrap_or_else(|| panic!("no lab named:\n{stdout}"));
    assert_eq!(testbed::leftovers(&prefix).unwrap(), Vec::<String>::new());
}
