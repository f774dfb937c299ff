//! Repository automation for tandem, run as `cargo xtask <task>` (the alias lives in
//! `.cargo/config.toml`). It owns the generation of `docs/errors.md` from the engine's
//! catalogue, the workspace dependency rules, the tidy checks of the sources (`tidy`)
//! and the one command that runs the whole suite (`cargo xtask test`). It is tooling
//! only: no tandem crate may depend on it, and it must not hold product logic — it
//! reads the catalogue, it never defines codes.

pub mod bench;
pub mod deps;
pub mod errors_doc;
pub mod fuzz;
pub mod suite;
pub mod tally;
pub mod tidy;

use std::path::{Path, PathBuf};

/// The workspace root: the directory above this crate's manifest.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}
