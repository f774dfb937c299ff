//! `tandem validate` and `tandem node` refuse what this version of the node cannot run
//! (E1107: witness arbitration, which only the simulator models), while `tandem
//! simulate` still runs such a file. And Prometheus's own checker (`promtool`, from
//! Debian's `prometheus`, installed by the test command) accepts the example alerting
//! rules and parses the node's metrics text (OpenMetrics).

use std::path::Path;
use std::process::Command;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name)
}

#[test]
fn witness_arbitration_is_refused_by_validate_and_node_but_simulated() {
    let witness = example("witness.toml");
    let out =
        Command::new(TANDEM).args(["validate", "--no-host-checks"]).arg(&witness).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("E1107") && err.contains("witness"), "{err}");

    let out = Command::new(TANDEM)
        .args(["validate", "--no-host-checks", "--json"])
        .arg(&witness)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false, "{doc}");
    assert_eq!(doc["diagnostics"][0]["code"], "E1107", "{doc}");

    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(TANDEM)
        .args(["node", "--name", "alpha", "--config"])
        .arg(&witness)
        .arg("--state-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("E1107") && err.contains("nothing was started"), "{err}");

    let out = Command::new(TANDEM)
        .args(["simulate", "--seeds", "2", "--config"])
        .arg(&witness)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The other examples are not refused for it.
    let out = Command::new(TANDEM)
        .args(["validate", "--no-host-checks"])
        .arg(example("active-standby.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `promtool ARGS` with `input` on its standard input: its output, or a panic that
/// says what failed.
fn promtool(args: &[&str], input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; `cargo xtask test` installs it)");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_accepts_the_example_rules_and_the_metrics_text() {
    let rules = example("prometheus-rules.yml");
    let text = promtool(&["check", "rules", rules.to_str().unwrap()], "");
    assert!(text.contains("SUCCESS"), "{text}");
    let status: contract::Status = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema/status.example.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let metrics = daemon::metrics::Metrics::new();
    metrics.heartbeat_sent("private");
    metrics.operation("process", engine::OpKind::Start, std::time::Duration::from_millis(12));
    let text = metrics.encode(&status);
    assert!(text.contains("tandem_group_state"), "{text}");
    // The text is OpenMetrics (what the route's content type says); Prometheus's own
    // OpenMetrics parser reads it in `tsdb create-blocks-from openmetrics`, which wants a
    // timestamp on every sample (a scrape adds its own).
    let stamped: String = text
        .lines()
        .map(|l| if l.starts_with('#') { format!("{l}\n") } else { format!("{l} 1700000000\n") })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, stamped).unwrap();
    let blocks = dir.path().join("blocks");
    let (file, blocks) = (file.to_str().unwrap(), blocks.to_str().unwrap());
    promtool(&["tsdb", "create-blocks-from", "openmetrics", file, blocks], "");
    // And a sample line that breaks the format is caught (the check can fail).
    std::fs::write(file, "tandem_broken{ 1\n# EOF\n").unwrap();
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics", file, blocks])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
