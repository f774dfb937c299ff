//! The workspace's dependency rules (STYLE.md, "Dependency rules"), checked against
//! `cargo metadata`: the engine depends on no other workspace crate, and the leaf crates
//! (the simulator, the I/O shell, the lab, the lab's cluster harness, the binary, this
//! tooling) are depended on by nothing except the explicitly allowed edges below; the
//! agents depend on the engine and the configuration only; the wire format depends on
//! the engine only and is used only by the daemon and the binary; the shared-disk area
//! depends on the engine and the lease protocols only; test support (`testgate`) is a
//! dev-dependency only. It owns the rules as data; it must not change any manifest.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};
use serde_json::Value;

/// The crate that must depend on no other workspace crate.
pub const PURE: &str = "engine";

/// Crates nothing may depend on: they sit at the top of the graph.
pub const LEAVES: &[&str] = &["sim", "tandem", "xtask", "daemon", "testbed", "labcluster"];

/// The only allowed edges into a leaf, as (dependent, dependency). The one binary
/// `tandem` is where the leaves meet: `tandem simulate` runs the simulator, `tandem
/// node` the daemon, and `tandem demo` (with the lab tests and benchmarks) a cluster on
/// the lab through `labcluster`, the harness that joins the lab and the daemon's
/// control socket and journal.
pub const ALLOWED_INTO_LEAVES: &[(&str, &str)] = &[
    ("tandem", "sim"),
    ("tandem", "daemon"),
    ("tandem", "testbed"),
    ("tandem", "labcluster"),
    ("labcluster", "daemon"),
    ("labcluster", "testbed"),
];

/// Crates held to a fixed list of workspace dependencies, as (crate, allowed): the
/// agents (the only code that changes the host) see the engine's types and the
/// configuration, nothing else; the shared-disk area (bytes on the disk) sees the
/// engine's ids and the lease records, not the heartbeat format (a slot is opaque); the
/// node core, shared by the daemon and the simulator, stays pure: the engine and the
/// lease protocols only.
pub const RESTRICTED: &[(&str, &[&str])] = &[
    ("agents", &["engine", "config"]),
    ("nodecore", &["engine", "arbiter"]),
    ("wire", &["engine"]),
    ("diskarea", &["engine", "arbiter"]),
    // The clients' contract (status, events, commands) depends on nothing of tandem's,
    // so that any client can take it cheaply.
    ("contract", &[]),
];

/// Crates only a fixed list of workspace crates may depend on, as (crate, dependents):
/// the wire format (serialization and keys) is the I/O shell's business.
pub const USED_ONLY_BY: &[(&str, &[&str])] = &[("wire", &["daemon", "tandem"])];

/// Test support any crate may take as a dev-dependency (and nothing as a normal one);
/// it depends on no workspace crate: `testgate`, whether a test may skip here.
pub const TEST_ONLY: &[&str] = &["testgate"];

/// Runs `cargo metadata --format-version 1 --no-deps` in `root`.
pub fn metadata(root: &Path) -> anyhow::Result<Value> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .stdin(Stdio::null())
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    serde_json::from_slice(&output.stdout).context("parsing cargo metadata's output")
}

/// Every violation of the rules in `metadata` (the JSON of `cargo metadata --no-deps`),
/// one readable line each; empty when the workspace follows them.
pub fn violations(metadata: &Value) -> anyhow::Result<Vec<String>> {
    let packages =
        metadata["packages"].as_array().context("cargo metadata has no `packages` list")?;
    let members: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut found = Vec::new();
    for package in packages {
        let name = package["name"].as_str().context("a package without a name")?;
        let dependencies = package["dependencies"]
            .as_array()
            .with_context(|| format!("package {name} has no `dependencies` list"))?;
        for dependency in dependencies {
            let target = dependency["name"]
                .as_str()
                .with_context(|| format!("a dependency of {name} without a name"))?;
            let kind = dependency["kind"].as_str().unwrap_or("normal");
            if !members.contains(target) {
                continue;
            }
            if TEST_ONLY.contains(&name) {
                found.push(format!(
                    "{name} depends on workspace crate {target} ({kind}): test support \
                     depends on no workspace crate"
                ));
            }
            if name == PURE {
                found.push(format!(
                    "{name} depends on workspace crate {target} ({kind}): \
                     the engine must depend on no other workspace crate"
                ));
            }
            if TEST_ONLY.contains(&target) {
                if kind != "dev" {
                    found.push(format!(
                        "{name} depends on {target} ({kind}): {target} is test support, a \
                         dev-dependency only"
                    ));
                }
                continue;
            }
            if let Some((_, allowed)) = RESTRICTED.iter().find(|(from, _)| *from == name) {
                if !allowed.contains(&target) {
                    found.push(format!(
                        "{name} depends on {target} ({kind}): {name} may depend only on {}",
                        allowed.join(", ")
                    ));
                }
            }
            if let Some((_, users)) = USED_ONLY_BY.iter().find(|(crate_, _)| *crate_ == target) {
                if !users.contains(&name) {
                    found.push(format!(
                        "{name} depends on {target} ({kind}): only {} may depend on {target}",
                        users.join(", ")
                    ));
                }
            }
            if LEAVES.contains(&target) && !ALLOWED_INTO_LEAVES.contains(&(name, target)) {
                let allowed: Vec<String> = ALLOWED_INTO_LEAVES
                    .iter()
                    .map(|(from, to)| format!("{from} -> {to}"))
                    .collect();
                found.push(format!(
                    "{name} depends on {target} ({kind}): nothing may depend on {} \
                     except {}",
                    LEAVES.join(", "),
                    allowed.join(", ")
                ));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package(name: &str, deps: &[(&str, Option<&str>)]) -> Value {
        let deps: Vec<Value> = deps
            .iter()
            .map(|(dep, kind)| json!({"name": dep, "kind": kind, "path": "/x"}))
            .collect();
        json!({"name": name, "dependencies": deps})
    }

    #[test]
    fn the_intended_graph_passes() {
        let metadata = json!({"packages": [
            package("engine", &[]),
            package("config", &[("engine", None)]),
            package("sim", &[("engine", None), ("rand", None)]),
            package("tandem", &[("engine", None), ("config", None), ("sim", None)]),
            package("xtask", &[("engine", None)]),
        ]});
        assert_eq!(violations(&metadata).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn engine_depending_on_a_workspace_crate_fails() {
        let metadata = json!({"packages": [
            package("engine", &[("config", Some("dev"))]),
            package("config", &[]),
        ]});
        let found = violations(&metadata).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("engine depends on workspace crate config (dev)"));
    }

    #[test]
    fn depending_on_a_leaf_fails_except_tandem_on_sim() {
        let metadata = json!({"packages": [
            package("config", &[("sim", None)]),
            package("sim", &[("tandem", Some("dev"))]),
            package("tandem", &[("sim", None)]),
        ]});
        let found = violations(&metadata).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("config depends on sim (normal)"));
        assert!(found[1].starts_with("sim depends on tandem (dev)"));
    }

    #[test]
    fn the_lab_cluster_harness_joins_lab_and_daemon_for_tandem_only() {
        let metadata = json!({"packages": [
            package("labcluster", &[("testbed", None), ("daemon", None)]),
            package("tandem", &[("labcluster", None)]),
            package("config", &[("labcluster", Some("dev"))]),
        ]});
        let found = violations(&metadata).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("config depends on labcluster (dev)"));
    }

    #[test]
    fn agents_depend_only_on_engine_and_config() {
        let metadata = json!({"packages": [
            package("engine", &[]),
            package("config", &[("engine", None)]),
            package("wire", &[]),
            package("agents", &[("engine", None), ("config", None), ("nix", None)]),
        ]});
        assert_eq!(violations(&metadata).unwrap(), Vec::<String>::new());
        let metadata = json!({"packages": [
            package("arbiter", &[]),
            package("agents", &[("arbiter", Some("dev"))]),
        ]});
        let found = violations(&metadata).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("agents depends on arbiter (dev): agents may depend only on"));
    }

    #[test]
    fn wire_depends_on_the_engine_and_serves_only_the_daemon_and_tandem() {
        let metadata = json!({"packages": [
            package("engine", &[]),
            package("wire", &[("engine", None), ("postcard", None)]),
            package("daemon", &[("engine", None), ("wire", None)]),
            package("tandem", &[("wire", None)]),
        ]});
        assert_eq!(violations(&metadata).unwrap(), Vec::<String>::new());
        let metadata = json!({"packages": [
            package("config", &[]),
            package("wire", &[("config", None)]),
            package("sim", &[("wire", Some("dev"))]),
        ]});
        let found = violations(&metadata).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("wire depends on config (normal): wire may depend only on"));
        assert!(found[1].starts_with("sim depends on wire (dev): only daemon, tandem may"));
    }

    #[test]
    fn test_support_is_a_dev_dependency_only_and_depends_on_nothing() {
        let metadata = json!({"packages": [
            package("engine", &[]),
            package("testgate", &[]),
            package("agents", &[("engine", None), ("testgate", Some("dev"))]),
            package("diskarea", &[("engine", None), ("testgate", Some("dev"))]),
        ]});
        assert_eq!(violations(&metadata).unwrap(), Vec::<String>::new());
        let metadata = json!({"packages": [
            package("engine", &[]),
            package("testgate", &[("engine", None)]),
            package("config", &[("testgate", None)]),
        ]});
        let found = violations(&metadata).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("testgate depends on workspace crate engine (normal)"));
        assert!(found[1].starts_with("config depends on testgate (normal): testgate is test"));
    }

    #[test]
    fn diskarea_depends_only_on_engine_and_arbiter() {
        let metadata = json!({"packages": [
            package("engine", &[]),
            package("arbiter", &[("engine", None)]),
            package("wire", &[("engine", None)]),
            package("diskarea", &[("engine", None), ("arbiter", None), ("nix", None)]),
            package("tandem", &[("diskarea", None), ("wire", None)]),
        ]});
        assert_eq!(violations(&metadata).unwrap(), Vec::<String>::new());
        let metadata = json!({"packages": [
            package("wire", &[]),
            package("diskarea", &[("wire", None)]),
        ]});
        let found = violations(&metadata).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("diskarea depends on wire (normal): diskarea may depend"));
    }

    #[test]
    fn crates_outside_the_workspace_are_ignored() {
        // `sim` here is a registry crate of the same name only if it is not a member.
        let metadata = json!({"packages": [package("config", &[("tandem", None)])]});
        assert_eq!(violations(&metadata).unwrap(), Vec::<String>::new());
    }
}
