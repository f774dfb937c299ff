//! Edits of the running configuration, as the console's form editor makes them
//! (`POST /v1/config/edit`, admin): the browser never writes TOML itself. It sends
//! [`ConfigEditRequest`] — the generation its edits are based on and a list of
//! [`ConfigEdit`]s (add, change or remove a group, a resource, a node's address, a value
//! of a section, an alert) — and the node answers [`ConfigEditAnswer`]: the TOML text
//! the edits give (the operator's comments and layout kept), its diff against the
//! running text, every diagnostic of `tandem validate` with the place in the file it
//! is about, and what would change. Nothing is saved: the text is pushed with
//! `POST /v1/config` like any other.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ConfigChange, ConfigDiagnostic};

/// A value an edit gives a key: a string, an integer, a boolean, a list of strings
/// (`nodes`, `command`, `to`) or a table of strings (`addresses`, `env`, `params`,
/// `monitor`). `null` in its place removes the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EditValue {
    Bool(bool),
    Integer(i64),
    String(String),
    List(Vec<String>),
    Table(BTreeMap<String, String>),
}

/// The keys an edit sets: `null` removes a key.
pub type EditFields = BTreeMap<String, Option<EditValue>>;

/// One change to the configuration's text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConfigEdit {
    /// Add group `name` (after the last group) or, if it exists, set its `fields`
    /// (`nodes`, `failback`, ...: keys of `[[group]]` but `name` and `resource`); its
    /// resources are kept.
    PutGroup { name: String, fields: EditFields },
    /// Remove group `name` with its resources.
    RemoveGroup { name: String },
    /// Add resource `name` to `group` (after its last resource; `fields` must have
    /// `kind`) or, if it exists, set its `fields`.
    PutResource { group: String, name: String, fields: EditFields },
    /// Remove resource `name` of `group`.
    RemoveResource { group: String, name: String },
    /// Set node `node`'s address on UDP link `link` (`null`: remove it).
    SetNodeAddress { node: String, link: String, address: Option<String> },
    /// Set a key of `[cluster]`, `[timing]`, `[arbitration]` or `[api]` (`null`: remove
    /// it, back to its default).
    SetValue { section: String, key: String, value: Option<EditValue> },
    /// Add an alert (`index` absent: after the last one; `fields` must have `kind`) or
    /// set the `fields` of alert `index` (0-based, in the file's order).
    PutAlert { index: Option<usize>, fields: EditFields },
    /// Remove alert `index` (0-based).
    RemoveAlert { index: usize },
}

/// The body of `POST /v1/config/edit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigEditRequest {
    /// The generation the edits are based on (`GET /v1/config`): refused (E1302) when
    /// the node's newest is another.
    pub generation: u64,
    /// Applied in order to that generation's text.
    #[serde(default)]
    pub edits: Vec<ConfigEdit>,
}

/// A diagnostic of the edited text, with the place it is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EditDiagnostic {
    #[serde(flatten)]
    pub diagnostic: ConfigDiagnostic,
    /// The key it points at, as a path of names: `["group", "db", "resource", "vip",
    /// "address"]`, `["timing", "peer_timeout"]`, `["node", "alpha", "addresses",
    /// "private"]`, `["alert", "0", "url"]` (groups, resources and nodes by name, alerts
    /// by index); shorter for a whole section; empty when it is about no key.
    pub path: Vec<String>,
}

/// The answer of `POST /v1/config/edit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConfigEditAnswer {
    /// The edits could be made (the text may still have errors: see `valid`).
    pub ok: bool,
    /// Why not, with its code (E1302, E1341, E1342), when `ok` is false.
    pub error: Option<String>,
    /// The edit (0-based) that could not be made.
    pub edit: Option<usize>,
    /// The generation the edits were made on (the node's newest).
    pub generation: u64,
    /// The edited text (the running text when `ok` is false).
    pub toml: String,
    /// SHA-256 of `toml`, hex.
    pub hash: String,
    /// Unified diff of the running text (`---`) against `toml` (`+++`); empty when equal.
    pub diff: String,
    /// The edited text has no error as `tandem validate` sees it on this node (host
    /// checks as warnings).
    pub valid: bool,
    /// Every diagnostic, warnings included, with its place.
    pub diagnostics: Vec<EditDiagnostic>,
    /// What would change from the running configuration, and when it takes effect.
    pub changes: Vec<ConfigChange>,
    /// `toml` as JSON (TOML tables as objects, arrays of tables as arrays): what the
    /// form shows; `null` when `toml` does not parse.
    pub document: serde_json::Value,
}
