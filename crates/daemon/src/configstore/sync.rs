//! One configuration across nodes, beyond the push: what this node knows of the others'
//! generations, the catch-up of a node that was down during a push, and which nodes a
//! push may go without.
//!
//! **What "newer" means.** The other node's configuration is newer when its generation
//! is higher *and* it keeps this node's newest generation with the same hash: this
//! node's is an earlier state of it (the other node got pushes this one missed). Then
//! this node fetches it ([`Service::sync_from`], a signed call to [`NEWEST_PATH`]),
//! checks it against its own host as a push's first phase does, and applies it (alerts
//! live, the rest W1311 at the next restart), journaled I1310 "taken from node ...".
//! Otherwise — the same generation with another text, or a higher one that does not
//! keep this node's — neither is an earlier state of the other (two hand edits recorded
//! at start, pushes made through nodes that could not reach each other): no automatic
//! choice (E1316); the operator pushes the one they want, and the push replaces the
//! other node's generation ([`Service::replacing`]).
//!
//! **A push with a node down.** A node not heard on any link for `peer_timeout` is down
//! ([`Service::heard`], fed by the loop). A push goes ahead without the down nodes that
//! its first phase did not reach, provided the nodes reached are at least half of the
//! cluster (with two nodes, one: the common maintenance case); the others catch up
//! when they come back. A node that is up but whose API does not answer still refuses
//! the push (E1304): it could not catch up either.
//!
//! Everything here blocks (files, node calls): it runs on blocking threads, never on
//! the loop's.

use super::*;

/// The nodes' route a node that finds a newer generation fetches it from.
pub const NEWEST_PATH: &str = "/v1/config/node/newest";

/// The largest request body of the configuration routes: a configuration file may be
/// [`config::FILE_SIZE_MAX`] (16 MiB) and JSON escapes a quote or a line end in two
/// bytes, so twice that, with room for the other fields.
pub const BODY_BYTES_MAX: usize = 2 * config::FILE_SIZE_MAX as usize + 64 * 1024;

/// What a node asks of the node with a newer generation: its own newest.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewestBody {
    pub generation: u64,
    pub hash: String,
}

/// The answer: the newest generation with its text, and whether it descends from the
/// asker's (whether this node keeps the asker's generation with the same hash).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewestAnswer {
    pub meta: Meta,
    pub toml: String,
    pub descends: bool,
}

/// What this node's loop last saw of another node.
#[derive(Clone, Copy, Debug)]
pub struct PeerView {
    pub stamp: Option<wire::ConfigStamp>,
    pub heard: Instant,
}

/// What a comparison with another node's generation came to ([`Service::sync_from`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The same generation and text.
    Agree,
    /// The other node's is an earlier generation this node keeps: it catches up itself.
    TheirsOlder,
    /// The other node's newer generation was applied here.
    Applied(u64),
    /// Neither is an earlier state of the other (E1316): the message.
    Diverged(String),
    /// The newer generation was refused here (E1315): the message.
    Refused(String),
    /// The other node could not be asked: the message (tried again soon).
    Unreachable(String),
    /// A push holds the store, or the other node's generation moved: tried again soon.
    Later,
}

/// A stamp of generation `meta`, as the heartbeats carry it.
pub fn stamp_of(meta: &Meta) -> Option<wire::ConfigStamp> {
    let hash: [u8; 32] = hex::decode(&meta.hash).ok()?.try_into().ok()?;
    Some(wire::ConfigStamp { generation: meta.generation, hash })
}

/// A generation and hash as the journal and status name them: "7 (3f2a1b9c0d4e)".
pub fn short(generation: u64, hash: &str) -> String {
    format!("{generation} ({})", &hash[..hash.len().min(12)])
}

/// Why `text` cannot be a configuration (over the file limit), if so.
pub fn too_large(text: &str) -> Option<String> {
    (text.len() as u64 > config::FILE_SIZE_MAX).then(|| {
        coded(
            &catalogue::CONFIG_REFUSED_BY_NODE,
            format!(
                "the configuration is {} bytes, more than the {}-byte limit of a \
                 configuration file",
                text.len(),
                config::FILE_SIZE_MAX
            ),
        )
    })
}

impl Service {
    /// This node's newest generation and hash, as its heartbeats carry it.
    pub fn stamp(&self) -> Option<wire::ConfigStamp> {
        *self.current.lock().expect("current lock")
    }

    /// The loop heard node `node` at `at`, its heartbeats carrying `stamp`.
    pub fn heard(&self, node: &str, stamp: Option<wire::ConfigStamp>, at: Instant) {
        let mut views = self.views.lock().expect("views lock");
        views.insert(node.to_string(), PeerView { stamp, heard: at });
    }

    /// Whether `node` is down: not heard on any link for `peer_timeout` (never heard:
    /// since this service started).
    pub fn down(&self, node: &str) -> bool {
        let views = self.views.lock().expect("views lock");
        let since = views.get(node).map_or(self.started, |v| v.heard);
        since.elapsed() > self.peer_timeout
    }

    /// The nodes whose heartbeats show another generation than `newest` (name: the
    /// generation and hash seen): a push replaces them.
    pub fn replacing(&self, newest: &Meta) -> BTreeMap<String, (u64, String)> {
        let views = self.views.lock().expect("views lock");
        views
            .iter()
            .filter_map(|(node, view)| {
                let stamp = view.stamp?;
                let hash = hex::encode(stamp.hash);
                (stamp.generation != newest.generation || hash != newest.hash)
                    .then(|| (node.clone(), (stamp.generation, hash)))
            })
            .collect()
    }

    /// After a push's first phase: the nodes it goes without (not reached and down),
    /// their verdicts saying so; none when fewer than half the nodes would be left.
    pub(super) fn skip_down(&self, verdicts: &mut [NodeVerdict], generation: u64) -> Vec<String> {
        let unreached = |v: &NodeVerdict| {
            !v.accepted
                && v.error
                    .as_deref()
                    .is_some_and(|e| e.starts_with(catalogue::CONFIG_NODE_UNREACHABLE.code))
        };
        let down: Vec<String> = verdicts
            .iter()
            .filter(|v| unreached(v) && self.down(&v.node))
            .map(|v| v.node.clone())
            .collect();
        let total = verdicts.len();
        if down.is_empty() || (total - down.len()) * 2 < total {
            for verdict in verdicts.iter_mut().filter(|v| down.contains(&v.node)) {
                if let Some(error) = &mut verdict.error {
                    error.push_str(&format!(
                        "; it is down, but the push needs at least half of the {total} nodes"
                    ));
                }
            }
            return Vec::new();
        }
        for verdict in verdicts.iter_mut().filter(|v| down.contains(&v.node)) {
            verdict.error = Some(coded(
                &catalogue::CONFIG_NODE_UNREACHABLE,
                format!(
                    "node {} is down (not heard on any link) and was not asked; it takes \
                     generation {generation} from the others when it comes back",
                    verdict.node
                ),
            ));
        }
        down
    }

    /// The node route [`NEWEST_PATH`]: this node's newest generation for a node whose
    /// newest is `body`.
    pub fn newest_for(&self, body: &NewestBody) -> Result<NewestAnswer, String> {
        let (meta, toml) =
            self.store.newest().ok_or_else(|| format!("node {} keeps no generation", self.node))?;
        let descends = meta.generation > body.generation
            && self.store.get(body.generation).is_some_and(|(m, _)| m.hash == body.hash);
        Ok(NewestAnswer { meta, toml, descends })
    }

    /// Compares this node's newest generation with `theirs`, seen in node `peer`'s
    /// heartbeats; fetches and applies it when it is newer (see the module
    /// documentation).
    pub fn sync_from(&self, peer: &str, theirs: wire::ConfigStamp) -> SyncOutcome {
        let Ok(_busy) = self.busy.try_lock() else { return SyncOutcome::Later };
        let held = self.prepared.lock().expect("prepared lock");
        if held.as_ref().is_some_and(|p| p.until > Instant::now()) {
            return SyncOutcome::Later;
        }
        drop(held);
        let Some((mine, my_text)) = self.store.newest() else {
            let why = format!("node {} keeps no generation", self.node);
            return SyncOutcome::Refused(coded(&catalogue::CONFIG_NEWER_REFUSED, why));
        };
        let their_hash = hex::encode(theirs.hash);
        if theirs.generation == mine.generation && their_hash == mine.hash {
            return SyncOutcome::Agree;
        }
        let diverged = |generation: u64, hash: &str| {
            SyncOutcome::Diverged(coded(
                &catalogue::CONFIG_GENERATIONS_DIVERGED,
                format!(
                    "configuration generation {} on {}, {} on {}: neither is an earlier \
                     state of the other; no automatic choice: push the one you want with \
                     `tandem config push FILE` (it replaces the other)",
                    short(mine.generation, &mine.hash),
                    self.node,
                    short(generation, hash),
                    peer
                ),
            ))
        };
        if theirs.generation < mine.generation {
            let kept = self.store.get(theirs.generation).is_some_and(|(m, _)| m.hash == their_hash);
            return if kept {
                SyncOutcome::TheirsOlder
            } else {
                diverged(theirs.generation, &their_hash)
            };
        }
        if theirs.generation == mine.generation {
            return diverged(theirs.generation, &their_hash);
        }
        let Some((_, address)) = self.peers().find(|(name, _)| name == peer) else {
            return SyncOutcome::Unreachable(format!(
                "`{peer}` is not another node of this cluster"
            ));
        };
        let body = NewestBody { generation: mine.generation, hash: mine.hash.clone() };
        let json = serde_json::to_vec(&body).expect("a body renders");
        let answer = match self.call(*address, NEWEST_PATH, &json) {
            Ok(answer) => answer,
            Err(why) => return SyncOutcome::Unreachable(why),
        };
        let answer: NewestAnswer = match serde_json::from_value(answer) {
            Ok(answer) => answer,
            Err(e) => return SyncOutcome::Unreachable(format!("node {peer}'s answer: {e}")),
        };
        let newer = answer.meta.generation;
        if newer <= mine.generation {
            return SyncOutcome::Later;
        }
        if !answer.descends {
            return diverged(newer, &answer.meta.hash);
        }
        let newer_hash = answer.meta.hash.clone();
        let refused = |why: String| {
            SyncOutcome::Refused(coded(
                &catalogue::CONFIG_NEWER_REFUSED,
                format!(
                    "node {} keeps generation {} and refused generation {} of node {peer}: \
                     {why}",
                    self.node,
                    short(mine.generation, &mine.hash),
                    short(newer, &newer_hash)
                ),
            ))
        };
        if hash(&answer.toml) != answer.meta.hash {
            return refused("its text does not match its hash".into());
        }
        if self.file_edited(&mine) {
            return refused(format!(
                "the configuration file {} was edited by hand since generation {} was applied",
                self.file.display(),
                mine.generation
            ));
        }
        if let Some(why) = self.runnable_here(&answer.toml) {
            return refused(why);
        }
        let meta = Meta {
            changes: describe_changes(&my_text, &answer.toml).into_iter().map(|c| c.what).collect(),
            ..answer.meta
        };
        match self.apply(&meta, &answer.toml, Some(peer)) {
            Ok(()) => SyncOutcome::Applied(newer),
            Err(why) => refused(why),
        }
    }

    /// Why this node cannot run `text` (a push's first phase's checks), if so.
    fn runnable_here(&self, text: &str) -> Option<String> {
        let (config, diagnostics) =
            check_text(text, &self.file.display().to_string(), config::Strictness::Deny);
        let Some(config) = config else {
            let errors: Vec<String> = diagnostics
                .iter()
                .filter(|d| d.severity == contract::Severity::Error)
                .map(|d| format!("{} at {}:{}: {}", d.code, d.line, d.column, d.message))
                .collect();
            return Some(errors.join("; "));
        };
        if !config.cluster.nodes.iter().any(|n| n.name == self.node) {
            return Some(format!("node {} is not a [[node]] of it", self.node));
        }
        writable(&self.file).err()
    }
}
