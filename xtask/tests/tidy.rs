//! Workspace-level rules that no single crate can check for itself: `docs/errors.md`
//! matches the engine's catalogue, the crates follow the dependency rules of STYLE.md
//! (see `xtask::deps`), and the sources pass the tidy checks (see `xtask::tidy`). These tests only read the repository; they must not
//! rewrite any file (run `cargo xtask errors-doc` for that).

#[test]
fn errors_doc_is_up_to_date() {
    if let Some(reason) = xtask::errors_doc::stale_reason().unwrap() {
        panic!("{reason}");
    }
}

#[test]
fn workspace_follows_the_dependency_rules() {
    let metadata = xtask::deps::metadata(&xtask::repo_root()).unwrap();
    let names: Vec<&str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for expected in ["engine", "tandem", "xtask"] {
        assert!(names.contains(&expected), "cargo metadata lists no {expected}: {names:?}");
    }
    let violations = xtask::deps::violations(&metadata).unwrap();
    assert!(violations.is_empty(), "dependency rules broken:\n  {}", violations.join("\n  "));
}

#[test]
fn sources_pass_the_tidy_checks() {
    let offences = xtask::tidy::check_workspace(&xtask::repo_root()).unwrap();
    assert!(
        offences.is_empty(),
        "tidy checks failed (cargo xtask tidy):\n  {}",
        offences.join("\n  ")
    );
}
