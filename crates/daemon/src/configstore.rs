//! One configuration for every node: its generations, kept in the state directory, and
//! their push to every node in two phases (PRODUCT.md section 3, item 10).
//!
//! **The store** ([`Store`]): each generation a node applied is kept as
//! `<state dir>/config/NNNNNN.toml` (the exact text) and `NNNNNN.json` (generation,
//! SHA-256 of the text, who pushed it, through which node, when, what changed), each
//! written atomically (temporary file, fsync, rename, fsync of the directory), the text
//! first: a generation exists once its metadata does, so a crash between the two
//! leaves the previous generation the newest. The newest [`GENERATIONS_KEPT`] are kept.
//!
//! **The running file.** Applying a generation also replaces the node's configuration
//! file (`tandem node --config`) the same atomic way, keeping its mode. A file that
//! differs from the newest generation was edited by hand: at start the node runs what
//! it read and records it as a new local generation (W1301, like Pacemaker, which takes
//! the configuration it runs as the one that counts and says so); while the node runs,
//! a push is refused on that node (E1305) rather than overwriting an edit nobody saw.
//!
//! **The push** ([`Service::push`]): the node asked (the coordinator) checks the text
//! on its own host (`config::parse`, then the host checks as the daemon makes them at
//! start), then asks every other node to check it against theirs (`prepare`), and only
//! when every node accepted tells each to apply it (`commit`): a refusal anywhere, or a
//! node not reached, refuses the whole push with every node's diagnostics, and nothing
//! changes anywhere. The push names the generation its text was based on; a node whose
//! newest generation is another refuses (E1302 on the coordinator, E1306 on a peer).
//! Node-to-node calls go over the nodes' HTTPS APIs, the peer's certificate checked
//! against the cluster CA (`[api] ca_file`), each request signed with the cluster key
//! ([`sign`]: an HMAC-SHA256 of method, path, sender, time and body), so nodes need no
//! user token.
//!
//! **Applying.** What the running daemon takes at once: the `[[alert]]` targets (the
//! loop swaps its alert threads). Everything else (nodes, links, timing, arbitration,
//! groups, the API's files) is in the new file for the next start, and the answer and
//! the journal (W1311) say which change waits for a restart of tandem node on which
//! nodes. Every applied generation is journaled (I1310) with who pushed it, from where
//! and what changed.
//!
//! **Across nodes** ([`sync`]): every heartbeat carries the sender's newest generation
//! and hash (`wire::ConfigStamp`); the loop compares them with this node's
//! (`crate::configsync`), and a node that finds a newer generation that descends from
//! its own (it was down during a push) fetches it from that node and applies it under
//! the same rules. A push goes ahead with a node down (not heard on any link), when
//! the nodes reached are at least half of the cluster: the down node catches up when it
//! comes back. A push replaces the generation of a node whose heartbeats showed another
//! one (a hand edit, diverged configurations: E1316), which is how an operator chooses.
//!
//! Nothing here runs on the loop's thread: file I/O and node-to-node calls run on
//! blocking threads; the loop only journals and swaps the alert threads
//! ([`Request::ConfigApplied`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use contract::{
    Answer, ConfigChange, ConfigDiagnostic, ConfigDocument, ConfigGeneration, ConfigOutcome,
    NodeVerdict, Request,
};
use engine::catalogue::{self, CodeInfo, Severity};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::access::{Caller, Peer};
use crate::control::Call;

/// Generations kept in the state directory; older ones are removed.
pub const GENERATIONS_KEPT: usize = 100;
/// The store's directory under the state directory.
pub const STORE_DIR: &str = "config";
/// How long a node holds a checked text for its push's second phase.
pub const PREPARED_FOR: Duration = Duration::from_secs(30);
/// A node call's time may differ this much from the receiver's clock.
pub const CLOCK_SKEW_MAX: Duration = Duration::from_secs(120);
/// How long a node waits for another node's answer.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// The nodes' own routes, called by the node a push went through.
pub const PREPARE_PATH: &str = "/v1/config/node/prepare";
pub const COMMIT_PATH: &str = "/v1/config/node/commit";
/// The node-call headers: the sender's name, the time (seconds since the epoch) and
/// the signature (hex).
pub const NODE_HEADER: &str = "x-tandem-node";
pub const TIME_HEADER: &str = "x-tandem-time";
pub const SIGNATURE_HEADER: &str = "x-tandem-signature";

/// SHA-256 of `text`, hex.
pub fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn wall_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn coded(code: &CodeInfo, message: impl std::fmt::Display) -> String {
    format!("{}: {message}", code.code)
}

/// A generation's metadata (`NNNNNN.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub generation: u64,
    pub hash: String,
    pub time: String,
    pub by: String,
    pub via: String,
    pub changes: Vec<String>,
}

impl Meta {
    fn contract(&self) -> ConfigGeneration {
        ConfigGeneration {
            generation: self.generation,
            hash: self.hash.clone(),
            time: self.time.clone(),
            by: self.by.clone(),
            via: self.via.clone(),
            changes: self.changes.clone(),
        }
    }
}

/// The generations a node keeps (see the module documentation).
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store under `state_dir` (created if missing).
    pub fn open(state_dir: &Path) -> std::io::Result<Store> {
        let dir = state_dir.join(STORE_DIR);
        std::fs::create_dir_all(&dir)?;
        Ok(Store { dir })
    }

    fn text_path(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("{generation:06}.toml"))
    }

    fn meta_path(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("{generation:06}.json"))
    }

    /// Every kept generation's metadata, oldest first (a metadata file that does not
    /// parse, or whose text is missing or differs from its hash, is not a generation).
    pub fn history(&self) -> Vec<Meta> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<Meta> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let generation: u64 = name.strip_suffix(".json")?.parse().ok()?;
                let meta: Meta =
                    serde_json::from_slice(&std::fs::read(self.meta_path(generation)).ok()?)
                        .ok()?;
                (meta.generation == generation).then_some(meta)
            })
            .collect();
        out.sort_by_key(|m| m.generation);
        out.retain(|m| self.text(m).is_some());
        out
    }

    fn text(&self, meta: &Meta) -> Option<String> {
        let text = std::fs::read_to_string(self.text_path(meta.generation)).ok()?;
        (hash(&text) == meta.hash).then_some(text)
    }

    /// Generation `generation`: its metadata and text.
    pub fn get(&self, generation: u64) -> Option<(Meta, String)> {
        let meta: Meta =
            serde_json::from_slice(&std::fs::read(self.meta_path(generation)).ok()?).ok()?;
        let text = self.text(&meta)?;
        (meta.generation == generation).then_some((meta, text))
    }

    /// The newest generation: its metadata and text.
    pub fn newest(&self) -> Option<(Meta, String)> {
        let newest = self.history().pop()?;
        let text = self.text(&newest)?;
        Some((newest, text))
    }

    /// Keeps `text` as generation `meta.generation` (text first, then the metadata, each
    /// atomically), then removes generations beyond [`GENERATIONS_KEPT`].
    pub fn record(&self, meta: &Meta, text: &str) -> std::io::Result<()> {
        assert_eq!(meta.hash, hash(text), "a generation's hash is its text's");
        write_atomic(&self.text_path(meta.generation), text.as_bytes(), None)?;
        let json = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
        write_atomic(&self.meta_path(meta.generation), &json, None)?;
        let history = self.history();
        let excess = history.len().saturating_sub(GENERATIONS_KEPT);
        for old in &history[..excess] {
            // The metadata first: a generation without it is gone even if the text stays.
            let _ = std::fs::remove_file(self.meta_path(old.generation));
            let _ = std::fs::remove_file(self.text_path(old.generation));
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically and durably: a temporary file beside it (with
/// `mode`, or the current file's mode, or 0600), fsync, rename over it, fsync of the
/// directory. A symbolic link is followed: its target is replaced.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mode = mode
        .or_else(|| std::fs::metadata(&path).ok().map(|m| m.permissions().mode() & 0o7777))
        .unwrap_or(0o600);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// The store at a node's start, with the running file recorded: the first generation
/// when the store is empty, a new local generation when the file was edited by hand.
/// `Some(message)` in that last case (W1301, for the journal).
pub fn record_at_start(
    store: &Store,
    text: &str,
    node: &str,
) -> std::io::Result<(Meta, Option<String>)> {
    let newest = store.newest();
    let file_hash = hash(text);
    match newest {
        Some((meta, _)) if meta.hash == file_hash => Ok((meta, None)),
        Some((meta, old)) => {
            let next = Meta {
                generation: meta.generation + 1,
                hash: file_hash,
                time: wall_now(),
                by: "a hand edit of the configuration file, found at start".into(),
                via: node.to_string(),
                changes: describe_changes(&old, text).into_iter().map(|c| c.what).collect(),
            };
            store.record(&next, text)?;
            let message = format!(
                "the configuration file differs from generation {} kept in the state \
                 directory: edited by hand; this node runs it and keeps it as generation {} \
                 (the other nodes do not have it: push it with `tandem config push`)",
                meta.generation, next.generation
            );
            Ok((next, Some(message)))
        }
        None => {
            let first = Meta {
                generation: 1,
                hash: file_hash,
                time: wall_now(),
                by: "the configuration file at the node's first start with a store".into(),
                via: node.to_string(),
                changes: Vec::new(),
            };
            store.record(&first, text)?;
            Ok((first, None))
        }
    }
}

/// The top-level tables of a configuration text, by section, for [`describe_changes`]
/// (values, so that comments and layout are no change).
fn sections(text: &str) -> BTreeMap<String, toml::Value> {
    match text.parse::<toml::Table>() {
        Ok(table) => table.into_iter().collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// The named entries of an array of tables (`[[group]]`, `[[node]]`), by name.
fn by_name(value: Option<&toml::Value>) -> BTreeMap<String, toml::Value> {
    let mut out = BTreeMap::new();
    if let Some(toml::Value::Array(items)) = value {
        for (index, item) in items.iter().enumerate() {
            let name = item.get("name").and_then(|n| n.as_str()).map(str::to_string);
            out.insert(name.unwrap_or_else(|| format!("#{}", index + 1)), item.clone());
        }
    }
    out
}

/// What changes from `old` to `new`, one entry per section (and per group), each live
/// (the alert targets) or waiting for a restart (anything else); the restart nodes are
/// filled in by the caller.
pub fn describe_changes(old: &str, new: &str) -> Vec<ConfigChange> {
    let (old, new) = (sections(old), sections(new));
    let mut out = Vec::new();
    let mut change = |what: String, live: bool| {
        out.push(ConfigChange { what, live, restart: Vec::new() });
    };
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (before, after) = (old.get(key), new.get(key));
        if before == after {
            continue;
        }
        match key.as_str() {
            "group" => {
                let (before, after) = (by_name(before), by_name(after));
                for name in before.keys().filter(|n| !after.contains_key(*n)) {
                    change(format!("group `{name}` removed"), false);
                }
                for (name, group) in &after {
                    match before.get(name) {
                        None => change(format!("group `{name}` added"), false),
                        Some(old) if old != group => {
                            change(format!("group `{name}` changed"), false)
                        }
                        Some(_) => {}
                    }
                }
            }
            "node" => change("nodes changed".into(), false),
            "link" => change("links changed".into(), false),
            "alert" => change("alerts changed".into(), true),
            other => change(format!("[{other}] changed"), false),
        }
    }
    out
}

fn diagnostic(d: &config::Diagnostic, source: &str) -> ConfigDiagnostic {
    let (line, column) = d.line_column(source);
    ConfigDiagnostic {
        code: d.code.code.to_string(),
        severity: crate::control::severity(d.severity()),
        message: d.message.clone(),
        line,
        column,
        label: d.label.clone(),
        help: d.help.clone(),
    }
}

/// Checks `text` as `tandem validate` does (parse, what this version cannot run, the
/// host checks with `strictness`): the config when no error, and every diagnostic.
fn check_text(
    text: &str,
    file_name: &str,
    strictness: config::Strictness,
) -> (Option<config::Config>, Vec<ConfigDiagnostic>) {
    let (config, mut found) = match config::parse(text, file_name) {
        Ok((config, warnings)) => (Some(config), warnings),
        Err(diagnostics) => (None, diagnostics),
    };
    if let Some(c) = &config {
        found.extend(config::not_in_this_version(c));
        found.extend(config::host_checks(c, strictness));
    }
    found.sort_by_key(|d| d.span.start);
    let errors = found.iter().any(|d| d.code.severity == Severity::Error);
    let diagnostics = found.iter().map(|d| diagnostic(d, text)).collect();
    (config.filter(|_| !errors), diagnostics)
}

/// The MAC of a node call: HMAC-SHA256, keyed by the cluster key, of method, path,
/// sender, time and the body's SHA-256.
fn mac(
    key: &wire::Key,
    method: &str,
    path: &str,
    node: &str,
    time: u64,
    body: &[u8],
) -> Hmac<Sha256> {
    let text = format!(
        "tandem node call 1\n{method}\n{path}\n{node}\n{time}\n{}",
        hex::encode(Sha256::digest(body))
    );
    let secret = key.to_text();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.trim().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(text.as_bytes());
    mac
}

/// The signature of a node call (hex of its [`mac`]).
pub fn sign(
    key: &wire::Key,
    method: &str,
    path: &str,
    node: &str,
    time: u64,
    body: &[u8],
) -> String {
    hex::encode(mac(key, method, path, node, time, body).finalize().into_bytes())
}

/// Checks a node call's signature (in constant time) and time; the sender's name.
pub fn verify(
    key: &wire::Key,
    method: &str,
    path: &str,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<String, String> {
    let refuse = |why: &str| coded(&catalogue::CONFIG_NODE_CALL_UNAUTHENTICATED, why);
    let node = header(NODE_HEADER).ok_or_else(|| refuse("no sender header"))?;
    let time: u64 =
        header(TIME_HEADER).and_then(|t| t.parse().ok()).ok_or_else(|| refuse("no time header"))?;
    let signature = header(SIGNATURE_HEADER).ok_or_else(|| refuse("no signature header"))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if now.abs_diff(time) > CLOCK_SKEW_MAX.as_secs() {
        return Err(refuse(&format!(
            "the call's time is {}s from this node's clock (at most {}s)",
            now.abs_diff(time),
            CLOCK_SKEW_MAX.as_secs()
        )));
    }
    let given = hex::decode(signature.trim()).map_err(|_| refuse("the signature is not hex"))?;
    mac(key, method, path, &node, time, body)
        .verify_slice(&given)
        .map_err(|_| refuse("the signature does not match the cluster key"))?;
    Ok(node)
}

/// The first phase's request to a node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrepareBody {
    pub toml: String,
    /// The generation the text is based on, and its hash, as the coordinator has them.
    pub base: u64,
    pub base_hash: String,
    /// Who pushed it (for the journal).
    pub by: String,
    /// The generation the text becomes on every node: the one after the base, or after
    /// the highest generation it replaces.
    pub generation: u64,
    /// Nodes whose heartbeats showed another generation than the base (name: generation
    /// and hash as seen): such a node accepts the push if that is still its newest, and
    /// the push replaces it.
    #[serde(default)]
    pub replacing: BTreeMap<String, (u64, String)>,
}

/// The second phase's request: apply the text checked for `generation` with `hash`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitBody {
    pub generation: u64,
    pub hash: String,
}

/// A text checked in the first phase, waiting for its commit.
struct Prepared {
    from: String,
    meta: Meta,
    text: String,
    until: Instant,
}

/// The node's configuration service: the store, the running file, the push.
pub struct Service {
    node: String,
    file: PathBuf,
    store: Store,
    /// The generation the daemon started with.
    running: u64,
    /// The nodes' names and API addresses (as the running daemon has them).
    nodes: Vec<(String, SocketAddr)>,
    ca_file: PathBuf,
    key: wire::Key,
    /// The loop's control channel, to journal what was applied.
    calls: mpsc::Sender<Call>,
    /// One push through this node at a time; every store change under it.
    busy: Mutex<()>,
    prepared: Mutex<Option<Prepared>>,
    /// What waits for a restart since the daemon started.
    restart_needed: Mutex<Vec<String>>,
    /// New alert threads for the loop to take when it journals the generation.
    pub(crate) alerts: Mutex<Option<crate::alerting::Alerting>>,
    /// The newest generation kept, as the heartbeats carry it ([`Service::stamp`]).
    current: Mutex<Option<wire::ConfigStamp>>,
    /// What the loop last saw of each other node ([`Service::heard`]).
    views: Mutex<BTreeMap<String, sync::PeerView>>,
    /// A node not heard for this long is down (`[timing] peer_timeout`).
    peer_timeout: Duration,
    /// When the service started (a node never heard is down after `peer_timeout`).
    started: Instant,
}

/// What the service needs at its start.
pub struct Setup<'a> {
    pub config: &'a config::Config,
    pub file: &'a Path,
    pub state_dir: &'a Path,
    pub node: &'a str,
    pub key: wire::Key,
    pub calls: mpsc::Sender<Call>,
}

impl Service {
    /// The service of a node that started with `setup.config` (read from `setup.file`):
    /// the file recorded in the store ([`record_at_start`]); the W1301 message when it
    /// was edited by hand.
    pub fn start(setup: Setup<'_>) -> anyhow::Result<(Arc<Service>, Option<String>)> {
        let store = Store::open(setup.state_dir).with_context(|| {
            format!("opening the configuration store {}", setup.state_dir.join(STORE_DIR).display())
        })?;
        let (meta, edited) = record_at_start(&store, &setup.config.source, setup.node)
            .context("recording the configuration file in the store")?;
        let nodes = setup
            .config
            .cluster
            .nodes
            .iter()
            .zip(&setup.config.nodes)
            .map(|(spec, node)| (spec.name.clone(), node.api))
            .collect();
        let service = Service {
            node: setup.node.to_string(),
            file: setup.file.to_path_buf(),
            store,
            running: meta.generation,
            nodes,
            ca_file: setup.config.api.ca_file.clone(),
            key: setup.key,
            calls: setup.calls,
            busy: Mutex::new(()),
            prepared: Mutex::new(None),
            restart_needed: Mutex::new(Vec::new()),
            alerts: Mutex::new(None),
            current: Mutex::new(sync::stamp_of(&meta)),
            views: Mutex::new(BTreeMap::new()),
            peer_timeout: setup.config.cluster.timing.peer_timeout,
            started: Instant::now(),
        };
        Ok((Arc::new(service), edited))
    }

    /// Checks a node call to `path` ([`verify`] with the cluster key); the sender.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
    ) -> Result<String, String> {
        let node = verify(&self.key, method, path, header, body)?;
        if !self.nodes.iter().any(|(name, _)| *name == node) || node == self.node {
            return Err(coded(
                &catalogue::CONFIG_NODE_CALL_UNAUTHENTICATED,
                format!("`{node}` is not another node of this cluster"),
            ));
        }
        Ok(node)
    }

    /// The answer to a configuration request of a client (blocking: file I/O and, for a
    /// push, calls to the other nodes).
    pub fn answer(&self, request: &Request, caller: &Caller) -> Answer {
        match request {
            Request::ConfigShow => match self.show() {
                Ok(doc) => Answer { config: Some(Box::new(doc)), ..Answer::taken() },
                Err(e) => Answer::refused(e),
            },
            Request::ConfigHistory => Answer {
                history: Some(self.store.history().iter().map(Meta::contract).collect()),
                ..Answer::taken()
            },
            Request::ConfigGet { generation } => match self.store.get(*generation) {
                Some((meta, text)) => {
                    Answer { config: Some(Box::new(self.document(&meta, text))), ..Answer::taken() }
                }
                None => Answer::refused(coded(
                    &catalogue::CONFIG_GENERATION_NOT_KEPT,
                    format!("node {} keeps no generation {generation}", self.node),
                )),
            },
            Request::ConfigCheck { toml } => {
                Answer { outcome: Some(Box::new(self.check(toml))), ..Answer::taken() }
            }
            Request::ConfigPush { toml, generation } => {
                self.push(toml, *generation, &caller.to_string())
            }
            other => Answer::refused(format!("not a configuration request: {other:?}")),
        }
    }

    fn document(&self, meta: &Meta, text: String) -> ConfigDocument {
        let file = std::fs::read(&self.file).ok();
        ConfigDocument {
            node: self.node.clone(),
            generation: meta.generation,
            hash: meta.hash.clone(),
            toml: text,
            running_generation: self.running,
            restart_needed: self.restart_needed.lock().expect("restart lock").clone(),
            file_edited: file.is_none_or(|bytes| hex::encode(Sha256::digest(&bytes)) != meta.hash),
        }
    }

    /// The newest generation, as `GET /v1/config` shows it.
    pub fn show(&self) -> Result<ConfigDocument, String> {
        let (meta, text) = self.store.newest().ok_or_else(|| {
            format!("node {}'s configuration store ({STORE_DIR}/) keeps no generation", self.node)
        })?;
        Ok(self.document(&meta, text))
    }

    /// `tandem validate` on this node's host, as the console's editor asks while one types.
    pub fn check(&self, text: &str) -> ConfigOutcome {
        let (config, diagnostics) =
            check_text(text, &self.file.display().to_string(), config::Strictness::Warn);
        let changes = self.changes_from_newest(text);
        ConfigOutcome {
            valid: config.is_some(),
            generation: None,
            hash: hash(text),
            nodes: vec![NodeVerdict {
                node: self.node.clone(),
                accepted: config.is_some(),
                diagnostics,
                error: None,
            }],
            changes,
        }
    }

    fn changes_from_newest(&self, text: &str) -> Vec<ConfigChange> {
        let old = self.store.newest().map(|(_, t)| t).unwrap_or_default();
        let names: Vec<String> = self.nodes.iter().map(|(n, _)| n.clone()).collect();
        let mut changes = describe_changes(&old, text);
        for change in changes.iter_mut().filter(|c| !c.live) {
            change.restart = names.clone();
        }
        changes
    }

    /// The first phase on this node: checks `body` against this host and this node's
    /// newest generation; when accepted, holds it for `from`'s commit.
    pub fn prepare(&self, from: &str, body: &PrepareBody) -> NodeVerdict {
        let verdict = |diagnostics: Vec<ConfigDiagnostic>, error: Option<String>| NodeVerdict {
            node: self.node.clone(),
            accepted: error.is_none()
                && diagnostics.iter().all(|d| d.severity != contract::Severity::Error),
            diagnostics,
            error,
        };
        let (newest, old) = match self.store.newest() {
            Some(found) => found,
            None => {
                return verdict(Vec::new(), Some(format!("node {} keeps no generation", self.node)))
            }
        };
        let replaced = body
            .replacing
            .get(&self.node)
            .is_some_and(|(g, h)| *g == newest.generation && *h == newest.hash);
        if (newest.generation != body.base || newest.hash != body.base_hash) && !replaced
            || body.generation <= newest.generation
        {
            let why = format!(
                "node {} has generation {} ({}), the push is based on generation {} ({})",
                self.node,
                newest.generation,
                &newest.hash[..12],
                body.base,
                &body.base_hash[..body.base_hash.len().min(12)]
            );
            return verdict(Vec::new(), Some(coded(&catalogue::CONFIG_GENERATIONS_DIFFER, why)));
        }
        if self.file_edited(&newest) {
            let why = format!(
                "on node {} the configuration file {} was edited by hand since generation {} \
                 was applied",
                self.node,
                self.file.display(),
                newest.generation
            );
            return verdict(Vec::new(), Some(coded(&catalogue::CONFIG_FILE_EDITED_ON_NODE, why)));
        }
        let (config, diagnostics) =
            check_text(&body.toml, &self.file.display().to_string(), config::Strictness::Deny);
        let Some(config) = config else { return verdict(diagnostics, None) };
        if !config.cluster.nodes.iter().any(|n| n.name == self.node) {
            let why = format!("node {} is not a [[node]] of the pushed configuration", self.node);
            return verdict(diagnostics, Some(coded(&catalogue::CONFIG_REFUSED_BY_NODE, why)));
        }
        if let Err(why) = writable(&self.file) {
            return verdict(diagnostics, Some(coded(&catalogue::CONFIG_REFUSED_BY_NODE, why)));
        }
        let mut prepared = self.prepared.lock().expect("prepared lock");
        if let Some(other) = prepared.as_ref() {
            if other.from != from
                && other.until > Instant::now()
                && other.meta.hash != hash(&body.toml)
            {
                let why = format!("node {} holds a push through node {}", self.node, other.from);
                return verdict(diagnostics, Some(coded(&catalogue::CONFIG_PUSH_IN_PROGRESS, why)));
            }
        }
        let changes = describe_changes(&old, &body.toml).into_iter().map(|c| c.what).collect();
        *prepared = Some(Prepared {
            from: from.to_string(),
            meta: Meta {
                generation: body.generation,
                hash: hash(&body.toml),
                time: String::new(),
                by: body.by.clone(),
                via: from.to_string(),
                changes,
            },
            text: body.toml.clone(),
            until: Instant::now() + PREPARED_FOR,
        });
        verdict(diagnostics, None)
    }

    fn file_edited(&self, newest: &Meta) -> bool {
        std::fs::read(&self.file).map_or(true, |b| hex::encode(Sha256::digest(&b)) != newest.hash)
    }

    /// The second phase on this node: applies the text held for `body` (idempotent: a
    /// generation already applied is applied).
    pub fn commit(&self, body: &CommitBody) -> Result<(), String> {
        if self
            .store
            .newest()
            .is_some_and(|(m, _)| m.generation == body.generation && m.hash == body.hash)
        {
            return Ok(());
        }
        let held = self.prepared.lock().expect("prepared lock").take();
        let Some(mut held) =
            held.filter(|p| p.meta.generation == body.generation && p.meta.hash == body.hash)
        else {
            return Err(coded(
                &catalogue::CONFIG_NOT_APPLIED_ON_NODE,
                format!(
                    "node {} holds no checked text for generation {} (checked too long ago, \
                     or replaced by another push)",
                    self.node, body.generation
                ),
            ));
        };
        held.meta.time = wall_now();
        self.apply(&held.meta, &held.text, None)
    }

    /// Writes generation `meta` (store, then the running file), prepares what the loop
    /// applies live, and has the loop journal it; `from`: the node it was fetched from
    /// (this node did not have it, [`sync`]).
    fn apply(&self, meta: &Meta, text: &str, from: Option<&str>) -> Result<(), String> {
        let failed = |what: &str, e: std::io::Error| {
            coded(
                &catalogue::CONFIG_NOT_APPLIED_ON_NODE,
                format!("node {}: {what}: {e}", self.node),
            )
        };
        self.store.record(meta, text).map_err(|e| failed("writing the store", e))?;
        write_atomic(&self.file, text.as_bytes(), None)
            .map_err(|e| failed(&format!("writing {}", self.file.display()), e))?;
        *self.current.lock().expect("current lock") = sync::stamp_of(meta);
        let changes = self.changes_of(meta, text);
        let mut restart: Vec<String> =
            changes.iter().filter(|c| !c.live).map(|c| c.what.clone()).collect();
        if changes.iter().any(|c| c.live) {
            match config::parse(text, "").map_err(|_| "invalid".to_string()).and_then(|(c, _)| {
                crate::alerting::Alerting::start(&c, &self.node).map_err(|e| format!("{e:#}"))
            }) {
                Ok(alerting) => *self.alerts.lock().expect("alerts lock") = Some(alerting),
                Err(why) => restart.push(format!("alerts (the new targets cannot start: {why})")),
            }
        }
        let restart_text = (!restart.is_empty()).then(|| {
            let mut pending = self.restart_needed.lock().expect("restart lock");
            for what in &restart {
                if !pending.contains(what) {
                    pending.push(what.clone());
                }
            }
            format!("{} take effect when tandem node restarts on {}", restart.join(", "), self.node)
        });
        let mut audit = format!(
            "configuration generation {} ({}) applied, pushed by {} through node {}; {}",
            meta.generation,
            &meta.hash[..12],
            meta.by,
            meta.via,
            if meta.changes.is_empty() { "no change".to_string() } else { meta.changes.join(", ") }
        );
        if let Some(from) = from {
            audit.push_str(&format!(
                "; taken from node {from}, which had it (this node was down or not reached \
                 when it was pushed)"
            ));
        }
        let request =
            Request::ConfigApplied { generation: meta.generation, audit, restart: restart_text };
        self.tell_loop(request);
        Ok(())
    }

    fn changes_of(&self, meta: &Meta, text: &str) -> Vec<ConfigChange> {
        let before = self
            .store
            .history()
            .into_iter()
            .rev()
            .find(|m| m.generation < meta.generation)
            .and_then(|m| self.store.get(m.generation))
            .map(|(_, t)| t)
            .unwrap_or_default();
        describe_changes(&before, text)
    }

    /// Hands `request` to the loop and waits until it is journaled (a stopping loop is
    /// not waited for).
    fn tell_loop(&self, request: Request) {
        let (answer, rx) = oneshot::channel();
        let caller = Caller::Local {
            peer: Peer {
                uid: nix::unistd::getuid().as_raw(),
                gid: nix::unistd::getgid().as_raw(),
                pid: std::process::id() as i32,
            },
            user: Some(format!("tandem node {} (configuration store)", self.node)),
        };
        if self.calls.blocking_send(Call { request, caller, answer }).is_ok() {
            let _ = rx.blocking_recv();
        }
    }

    /// A push through this node (see the module documentation).
    pub fn push(&self, text: &str, base: u64, by: &str) -> Answer {
        let _busy = self.busy.lock().expect("push lock");
        let Some((newest, _)) = self.store.newest() else {
            return Answer::refused(format!("node {} keeps no generation", self.node));
        };
        let mut outcome = ConfigOutcome {
            valid: false,
            generation: None,
            hash: hash(text),
            nodes: Vec::new(),
            changes: self.changes_from_newest(text),
        };
        if base != newest.generation {
            let why = format!(
                "the push is based on generation {base}; node {} runs generation {} now \
                 (`tandem config diff FILE` shows what differs)",
                self.node, newest.generation
            );
            return refused(coded(&catalogue::CONFIG_GENERATION_MOVED_ON, why), outcome);
        }
        if let Some(why) = sync::too_large(text) {
            return refused(why, outcome);
        }
        let replacing = self.replacing(&newest);
        if outcome.hash == newest.hash && replacing.is_empty() {
            outcome.valid = true;
            outcome.generation = Some(newest.generation);
            return Answer { outcome: Some(Box::new(outcome)), ..Answer::taken() };
        }
        let generation =
            replacing.values().map(|(g, _)| *g).chain([base]).max().unwrap_or(base) + 1;
        let body = PrepareBody {
            toml: text.to_string(),
            base,
            base_hash: newest.hash.clone(),
            by: by.to_string(),
            generation,
            replacing,
        };
        outcome.nodes = self.prepare_everywhere(&body);
        let down = self.skip_down(&mut outcome.nodes, generation);
        let asked: Vec<NodeVerdict> =
            outcome.nodes.iter().filter(|v| !down.contains(&v.node)).cloned().collect();
        if let Some(why) = first_refusal(&asked) {
            return refused(why, outcome);
        }
        outcome.valid = true;
        let commit = CommitBody { generation, hash: outcome.hash.clone() };
        let failures = self.commit_everywhere(&commit, &down);
        if !failures.is_empty() {
            return refused(failures.join("; "), outcome);
        }
        outcome.generation = Some(commit.generation);
        Answer { outcome: Some(Box::new(outcome)), ..Answer::taken() }
    }

    fn peers(&self) -> impl Iterator<Item = &(String, SocketAddr)> {
        self.nodes.iter().filter(|(name, _)| *name != self.node)
    }

    /// The first phase on this node and on every other at once: each node's verdict.
    fn prepare_everywhere(&self, body: &PrepareBody) -> Vec<NodeVerdict> {
        let mine = self.prepare(&self.node, body);
        let json = serde_json::to_vec(body).expect("a body renders");
        let mut theirs: Vec<NodeVerdict> = std::thread::scope(|scope| {
            let calls: Vec<_> = self
                .peers()
                .map(|(name, address)| {
                    let json = &json;
                    scope.spawn(move || match self.call(*address, PREPARE_PATH, json) {
                        Ok(answer) => serde_json::from_value::<NodeVerdict>(answer)
                            .unwrap_or_else(|e| unreached(name, format!("its answer: {e}"))),
                        Err(why) => unreached(name, why),
                    })
                })
                .collect();
            calls.into_iter().map(|c| c.join().expect("a prepare call thread")).collect()
        });
        theirs.insert(0, mine);
        theirs
    }

    /// The second phase on this node, then on every other but those `down` (not asked):
    /// the failures.
    fn commit_everywhere(&self, body: &CommitBody, down: &[String]) -> Vec<String> {
        let mut failures = Vec::new();
        if let Err(why) = self.commit(body) {
            // This node's own write failed: the others are not told to apply either.
            return vec![why];
        }
        let json = serde_json::to_vec(body).expect("a body renders");
        for (name, address) in self.peers().filter(|(name, _)| !down.contains(name)) {
            match self.call(*address, COMMIT_PATH, &json) {
                Ok(answer) if answer["ok"] == serde_json::Value::Bool(true) => {}
                Ok(answer) => failures.push(
                    answer["error"]
                        .as_str()
                        .map_or_else(|| format!("node {name}: {answer}"), str::to_string),
                ),
                Err(why) => failures.push(coded(
                    &catalogue::CONFIG_NOT_APPLIED_ON_NODE,
                    format!("node {name} did not answer the apply: {why}"),
                )),
            }
        }
        failures
    }

    /// A signed `GET` of route `path` on node `node` (another node's inventory,
    /// [`crate::inventory::fetch`]): its JSON answer, or why not.
    pub fn node_get<T: serde::de::DeserializeOwned>(
        &self,
        node: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<T, String> {
        let (_, address) = self
            .peers()
            .find(|(name, _)| name == node)
            .ok_or_else(|| format!("`{node}` is not another node of this cluster"))?;
        let agent = peer_agent(&self.ca_file)?;
        let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let signature = sign(&self.key, "GET", path, &self.node, time, b"");
        let url = format!("https://{address}{path}");
        let result = agent
            .get(&url)
            .timeout(timeout)
            .set(NODE_HEADER, &self.node)
            .set(TIME_HEADER, &time.to_string())
            .set(SIGNATURE_HEADER, &signature)
            .call();
        match result {
            Ok(response) => response.into_json().map_err(|e| format!("{url}: {e}")),
            Err(ureq::Error::Status(code, response)) => {
                let text = response.into_string().unwrap_or_default();
                Err(format!("{url}: HTTP {code}: {}", text.trim()))
            }
            Err(ureq::Error::Transport(e)) => Err(format!("{url}: {e}")),
        }
    }

    /// One signed call to another node's API: its JSON answer (200 or 409), or why not.
    fn call(
        &self,
        address: SocketAddr,
        path: &str,
        body: &[u8],
    ) -> Result<serde_json::Value, String> {
        let agent = peer_agent(&self.ca_file)?;
        let time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let signature = sign(&self.key, "POST", path, &self.node, time, body);
        let url = format!("https://{address}{path}");
        let result = agent
            .post(&url)
            .set("Content-Type", "application/json")
            .set(NODE_HEADER, &self.node)
            .set(TIME_HEADER, &time.to_string())
            .set(SIGNATURE_HEADER, &signature)
            .send_bytes(body);
        match result {
            Ok(response) => response.into_json().map_err(|e| format!("{url}: {e}")),
            Err(ureq::Error::Status(409, response)) => {
                response.into_json().map_err(|e| format!("{url}: {e}"))
            }
            Err(ureq::Error::Status(code, response)) => {
                let text = response.into_string().unwrap_or_default();
                Err(format!("{url}: HTTP {code}: {}", text.trim()))
            }
            Err(ureq::Error::Transport(e)) => Err(format!("{url}: {e}")),
        }
    }
}

/// A refusal with its outcome.
fn refused(why: String, outcome: ConfigOutcome) -> Answer {
    Answer { outcome: Some(Box::new(outcome)), ..Answer::refused(why) }
}

fn unreached(node: &str, why: String) -> NodeVerdict {
    NodeVerdict {
        node: node.to_string(),
        accepted: false,
        diagnostics: Vec::new(),
        error: Some(coded(
            &catalogue::CONFIG_NODE_UNREACHABLE,
            format!("node {node} was not reached ({why}); nothing was applied"),
        )),
    }
}

/// Why the push is refused, naming every node that refused, or `None`.
fn first_refusal(verdicts: &[NodeVerdict]) -> Option<String> {
    let refusals: Vec<String> = verdicts
        .iter()
        .filter(|v| !v.accepted)
        .map(|v| match &v.error {
            Some(error) => error.clone(),
            None => {
                let errors: Vec<String> = v
                    .diagnostics
                    .iter()
                    .filter(|d| d.severity == contract::Severity::Error)
                    .map(|d| format!("{} at {}:{}: {}", d.code, d.line, d.column, d.message))
                    .collect();
                coded(
                    &catalogue::CONFIG_REFUSED_BY_NODE,
                    format!("node {} refused it: {}", v.node, errors.join("; ")),
                )
            }
        })
        .collect();
    (!refusals.is_empty()).then(|| {
        format!(
            "the configuration was refused; nothing was applied on any node: {}",
            refusals.join("; ")
        )
    })
}

/// Whether the daemon can replace `file` (its directory writable by this process).
fn writable(file: &Path) -> Result<(), String> {
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).map_err(|e| {
        format!("this node cannot replace its configuration file {}: {e}", file.display())
    })
}

/// An HTTPS client that trusts only the cluster CA at `ca`.
fn peer_agent(ca: &Path) -> Result<ureq::Agent, String> {
    use rustls::pki_types::pem::PemObject;
    let unusable = |e: String| format!("the cluster CA {} ([api] ca_file): {e}", ca.display());
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(ca)
        .map_err(|e| unusable(e.to_string()))?;
    for cert in certs {
        roots
            .add(cert.map_err(|e| unusable(e.to_string()))?)
            .map_err(|e| unusable(e.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(crate::api::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| unusable(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(ureq::AgentBuilder::new().tls_config(Arc::new(config)).timeout(PEER_TIMEOUT).build())
}

/// Whether `request` is one for the configuration service.
pub fn is_config(request: &Request) -> bool {
    matches!(
        request,
        Request::ConfigShow
            | Request::ConfigHistory
            | Request::ConfigGet { .. }
            | Request::ConfigCheck { .. }
            | Request::ConfigPush { .. }
            | Request::ConfigApplied { .. }
    )
}

impl<P: crate::platform::Platform> crate::node::Node<P> {
    /// A configuration request on the control socket: answered by the service on a
    /// blocking thread; `ConfigApplied` (from the service) journaled here, the new alert
    /// threads swapped in, answered once durable.
    pub(crate) fn on_config_call(&mut self, call: Call) {
        let Some(service) = self.configs.clone() else {
            let _ = call.answer.send(Answer::refused("this node has no configuration store"));
            return;
        };
        if let Request::ConfigApplied { audit, restart, .. } = &call.request {
            if let Some(alerting) = service.alerts.lock().expect("alerts lock").take() {
                self.alerts = alerting;
            }
            self.journal_own(&catalogue::CONFIG_APPLIED, None, audit.clone());
            if let Some(restart) = restart {
                self.journal_own(&catalogue::CONFIG_RESTART_NEEDED, None, restart.clone());
            }
            self.replies.push((call.answer, Answer::taken()));
            return;
        }
        tokio::task::spawn_blocking(move || {
            let answer = service.answer(&call.request, &call.caller);
            let _ = call.answer.send(answer);
        });
    }
}

pub mod sync;
#[cfg(test)]
mod tests;
