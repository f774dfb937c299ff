//! The loop's side of one configuration across nodes: every heartbeat carries its
//! sender's newest configuration generation and hash (`wire::ConfigStamp`, set from
//! [`crate::configstore::Service::stamp`] when the loop encodes a frame); at each
//! wake-up the loop compares the newest stamp each peer sent with its own, journals a
//! difference once per change (W1313, naming both generations and which node has
//! which) and its end (I1314), shows it in the status as a fault while it lasts, and
//! has the configuration service look into it on a blocking thread
//! ([`crate::configstore::Service::sync_from`]): the older node fetches and applies the
//! newer generation (I1310), or refuses it (E1315), or finds that neither descends from
//! the other (E1316). It also tells the service when each peer was last heard, which
//! decides whether a push may go without it.
//!
//! A generation is not the engine's business: nothing here touches the engine, and a
//! peer with another configuration is a live peer like any other (nothing starts or
//! fails over because of it). This module must not block the loop: no file I/O, no
//! network; each comparison's result comes back through a shared list drained at the
//! next wake-up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use engine::catalogue::{self, CodeInfo};
use engine::NodeId;
use wire::{ConfigSeen, ConfigStamp};

use crate::configstore::sync::{short, SyncOutcome};
use crate::platform::{Links, Platform};

/// After a refusal (E1315), the next try: the host may have been fixed meanwhile.
pub const RETRY_REFUSED: Duration = Duration::from_secs(30);
/// After the other node could not be asked: its API may start after its heartbeats.
pub const RETRY_UNREACHABLE: Duration = Duration::from_secs(2);
/// Failures to ask the other node before they are journaled (E1315); then
/// [`RETRY_REFUSED`] between tries.
pub const UNREACHABLE_QUIET: u32 = 5;
/// Another look at a settled difference (diverged, or the other node older).
pub const RECHECK: Duration = Duration::from_secs(60);
/// While a push holds the store.
pub const RETRY_BUSY: Duration = Duration::from_secs(1);

/// What the loop knows of the other nodes' configurations.
#[derive(Default)]
pub struct PeerConfigs {
    peers: BTreeMap<NodeId, Peer>,
    /// Results of the comparisons running on blocking threads: the peer, the stamp
    /// compared, what it came to.
    outcomes: Arc<Mutex<Vec<(NodeId, ConfigStamp, SyncOutcome)>>>,
}

#[derive(Default)]
struct Peer {
    /// The newest incarnation and sequence seen: another one means heard again.
    newest: Option<(u64, u64)>,
    theirs: Option<ConfigStamp>,
    /// The pair (this node's, theirs) the journal last named as differing, and since.
    said: Option<(ConfigStamp, ConfigStamp)>,
    since: Option<SystemTime>,
    /// What the comparison of that pair found, when worse than a plain difference.
    verdict: Option<&'static CodeInfo>,
    /// The last E1315/E1316 message journaled for that pair.
    told: Option<String>,
    syncing: bool,
    next_try: Option<Instant>,
    unreached: u32,
}

/// The newest of two sightings (by incarnation and sequence).
fn newest(a: Option<ConfigSeen>, b: Option<ConfigSeen>) -> Option<ConfigSeen> {
    match (a, b) {
        (Some(a), Some(b)) => {
            Some(if (b.incarnation, b.sequence) > (a.incarnation, a.sequence) { b } else { a })
        }
        (a, b) => a.or(b),
    }
}

/// "configuration generation 7 on alpha, 6 on beta" (hashes added when the generations
/// are the same), the nodes in `order`.
pub fn pair_text(order: [(&str, ConfigStamp); 2]) -> String {
    let [(a, x), (b, y)] = order;
    if x.generation == y.generation {
        let (hx, hy) = (hex::encode(x.hash), hex::encode(y.hash));
        format!(
            "configuration generation {} on {a}, {} on {b}",
            short(x.generation, &hx),
            short(y.generation, &hy)
        )
    } else {
        format!("configuration generation {} on {a}, {} on {b}", x.generation, y.generation)
    }
}

impl<P: Platform> crate::node::Node<P> {
    /// The two stamps in the cluster's node order, with their nodes' names.
    fn ordered(
        &self,
        peer: NodeId,
        mine: ConfigStamp,
        theirs: ConfigStamp,
    ) -> [(&str, ConfigStamp); 2] {
        let (me, them) =
            (self.spec.node(self.me).name.as_str(), self.spec.node(peer).name.as_str());
        if self.me < peer {
            [(me, mine), (them, theirs)]
        } else {
            [(them, theirs), (me, mine)]
        }
    }

    /// At every wake-up: the comparisons' results, then each peer's newest stamp
    /// against this node's (see the module documentation).
    pub(crate) fn check_configs(&mut self) {
        let Some(service) = self.configs.clone() else { return };
        let done = std::mem::take(&mut *self.peer_configs.outcomes.lock().expect("outcomes"));
        for (peer, stamp, outcome) in done {
            self.on_sync_outcome(peer, stamp, outcome);
        }
        let Some(mine) = service.stamp() else { return };
        let now = Instant::now();
        for index in 0..self.spec.nodes.len() {
            let peer = NodeId(index as u16);
            if peer == self.me {
                continue;
            }
            let disk = self.disk.as_ref().and_then(|d| d.receiver.config_of(peer));
            let Some(seen) = newest(self.links.config_of(peer), disk) else { continue };
            let name = self.spec.node(peer).name.clone();
            let state = self.peer_configs.peers.entry(peer).or_default();
            if state.newest != Some((seen.incarnation, seen.sequence)) {
                state.newest = Some((seen.incarnation, seen.sequence));
                service.heard(&name, seen.stamp, now);
            }
            let Some(theirs) = seen.stamp else { continue };
            state.theirs = Some(theirs);
            if theirs == mine {
                if let Some((_, before)) = state.said.take() {
                    *state = Peer { newest: state.newest, theirs: state.theirs, ..Peer::default() };
                    let me = &self.spec.node(self.me).name;
                    let message = format!(
                        "configuration generation {} on {me} and {name} again (node {name} had \
                         generation {} before)",
                        short(mine.generation, &hex::encode(mine.hash)),
                        before.generation
                    );
                    self.journal_own(&catalogue::CONFIG_GENERATIONS_AGREE, None, message);
                }
                continue;
            }
            if state.said != Some((mine, theirs)) {
                *state = Peer {
                    newest: state.newest,
                    theirs: state.theirs,
                    said: Some((mine, theirs)),
                    since: Some(SystemTime::now()),
                    ..Peer::default()
                };
                let me = self.spec.node(self.me).name.clone();
                let hint = if theirs.generation < mine.generation {
                    format!(
                        "node {name} has the older one and takes generation {} from {me}",
                        mine.generation
                    )
                } else if theirs.generation > mine.generation {
                    format!(
                        "this node ({me}) has the older one and takes generation {} from {name}",
                        theirs.generation
                    )
                } else {
                    "the same generation with different texts".to_string()
                };
                let message = format!(
                    "{}: {hint} (hashes {} on {me}, {} on {name})",
                    pair_text(self.ordered(peer, mine, theirs)),
                    &hex::encode(mine.hash)[..12],
                    &hex::encode(theirs.hash)[..12],
                );
                self.journal_own(&catalogue::CONFIG_PEER_GENERATION_DIFFERS, None, message);
            }
            let state = self.peer_configs.peers.entry(peer).or_default();
            if state.syncing || state.next_try.is_some_and(|at| at > now) {
                continue;
            }
            state.syncing = true;
            let (service, outcomes) = (service.clone(), self.peer_configs.outcomes.clone());
            tokio::task::spawn_blocking(move || {
                let outcome = service.sync_from(&name, theirs);
                outcomes.lock().expect("outcomes").push((peer, theirs, outcome));
            });
        }
    }

    /// A comparison's result: journaled (once per message and pair), the next try set.
    fn on_sync_outcome(&mut self, peer: NodeId, stamp: ConfigStamp, outcome: SyncOutcome) {
        let now = Instant::now();
        let Some(state) = self.peer_configs.peers.get_mut(&peer) else { return };
        state.syncing = false;
        if state.theirs != Some(stamp) {
            // Their generation changed meanwhile: the next wake-up looks at the new one.
            state.next_try = None;
            return;
        }
        let (code, message, next) = match outcome {
            SyncOutcome::Agree | SyncOutcome::Applied(_) => (None, None, None),
            SyncOutcome::TheirsOlder => (None, None, Some(RECHECK)),
            SyncOutcome::Later => (None, None, Some(RETRY_BUSY)),
            SyncOutcome::Diverged(why) => {
                (Some(&catalogue::CONFIG_GENERATIONS_DIVERGED), Some(why), Some(RECHECK))
            }
            SyncOutcome::Refused(why) => {
                state.unreached = 0;
                (Some(&catalogue::CONFIG_NEWER_REFUSED), Some(why), Some(RETRY_REFUSED))
            }
            SyncOutcome::Unreachable(why) => {
                state.unreached += 1;
                if state.unreached < UNREACHABLE_QUIET {
                    (None, None, Some(RETRY_UNREACHABLE))
                } else {
                    let node = self.spec.node(peer).name.clone();
                    let why = format!(
                        "{}: node {} could not ask node {node} for its newer generation {}: {why}",
                        catalogue::CONFIG_NEWER_REFUSED.code,
                        self.spec.node(self.me).name,
                        stamp.generation
                    );
                    (Some(&catalogue::CONFIG_NEWER_REFUSED), Some(why), Some(RETRY_REFUSED))
                }
            }
        };
        state.next_try = next.map(|after| now + after);
        if let Some(code) = code {
            state.verdict = Some(code);
        }
        let Some(message) = message else { return };
        if state.told.as_ref() == Some(&message) {
            return;
        }
        state.told = Some(message.clone());
        let text =
            message.strip_prefix(&format!("{}: ", code.map_or("", |c| c.code))).unwrap_or(&message);
        let text = text.to_string();
        if let Some(code) = code {
            self.journal_own(code, None, text);
        }
    }

    /// The status document's faults for the configurations that differ now.
    pub(crate) fn config_faults(&self) -> Vec<contract::FaultEntry> {
        let me = self.spec.node(self.me).name.clone();
        self.peer_configs
            .peers
            .iter()
            .filter_map(|(peer, state)| {
                let (mine, theirs) = state.said?;
                let code = state.verdict.unwrap_or(&catalogue::CONFIG_PEER_GENERATION_DIFFERS);
                let since = state.since.unwrap_or_else(SystemTime::now);
                Some(contract::FaultEntry {
                    code: code.code.to_string(),
                    severity: crate::control::severity(code.severity),
                    location: pair_text(self.ordered(*peer, mine, theirs)),
                    since: humantime::format_rfc3339_seconds(since).to_string(),
                    seen_by: vec![me.clone()],
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(generation: u64, byte: u8) -> ConfigStamp {
        ConfigStamp { generation, hash: [byte; 32] }
    }

    fn seen(incarnation: u64, sequence: u64, generation: u64) -> ConfigSeen {
        ConfigSeen { incarnation, sequence, stamp: Some(stamp(generation, 1)) }
    }

    #[test]
    fn the_newest_sighting_of_any_link_counts() {
        assert_eq!(newest(None, None), None);
        assert_eq!(newest(Some(seen(1, 5, 7)), None), Some(seen(1, 5, 7)));
        assert_eq!(newest(None, Some(seen(1, 5, 7))), Some(seen(1, 5, 7)));
        assert_eq!(newest(Some(seen(1, 5, 7)), Some(seen(1, 6, 8))), Some(seen(1, 6, 8)));
        assert_eq!(newest(Some(seen(2, 1, 9)), Some(seen(1, 6, 8))), Some(seen(2, 1, 9)));
    }

    #[test]
    fn a_pair_is_named_with_its_nodes_and_hashes_when_the_generations_are_equal() {
        let text = pair_text([("alpha", stamp(7, 0xab)), ("beta", stamp(6, 0xcd))]);
        assert_eq!(text, "configuration generation 7 on alpha, 6 on beta");
        let text = pair_text([("alpha", stamp(7, 0xab)), ("beta", stamp(7, 0xcd))]);
        assert_eq!(
            text,
            "configuration generation 7 (abababababab) on alpha, 7 (cdcdcdcdcdcd) on beta"
        );
    }
}
