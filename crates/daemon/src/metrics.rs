//! The node's Prometheus metrics (`GET /metrics`, OpenMetrics text), with `prometheus-client`.
//!
//! Two kinds of families:
//! - **Counted by the loop** as things happen, on atomics (no lock, nothing the loop can
//!   wait on): heartbeats sent per link, failovers per group and the last one's
//!   duration, agent operations' durations (histograms per kind and operation), lease
//!   renewals by result, disk jobs' latency (from the core's issue to the worker's end).
//! - **Read from the status document** at each scrape ([`Metrics::encode`]): per link
//!   and node pair up, RTT and loss; heartbeats received and rejected by reason per
//!   link; each node's and each group's state (one series per possible state, 1 for the
//!   current one: the "state set" idiom), each group's owner, each lease's time left.
//!   The scrape asks the loop for the status through the same bounded path as any
//!   status request, so a scrape costs the loop what `tandem status` costs.
//!
//! A failover's duration runs from the last "peer offline" (E2104) this node declared,
//! if it came at most [`FAILOVER_WINDOW`] before the takeover (W4111), else from the
//! takeover itself, to the group running here (I4102).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use engine::catalogue;
use engine::{Instant, OpKind};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A takeover this long after the last peer loss is counted from the takeover itself.
pub const FAILOVER_WINDOW: Duration = Duration::from_secs(60);

/// Disk jobs whose issue is remembered for their latency; older ones are forgotten (a
/// worker abandoned with its jobs never answers them).
const DISK_JOBS_TRACKED: usize = 256;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LinkLabel {
    link: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LinkPairLabel {
    link: String,
    node: String,
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    link: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    name: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OwnerLabel {
    group: String,
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    kind: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn operation_buckets() -> Histogram {
    // 1 ms to about 33 s: a monitor answers in milliseconds, a database starts in seconds.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The families (see the module doc).
pub struct Metrics {
    registry: Registry,
    heartbeats_sent: Family<LinkLabel, Counter>,
    failovers: Family<GroupLabel, Counter>,
    last_failover_seconds: Family<GroupLabel, FloatGauge>,
    operation_seconds: Histograms<OperationLabel>,
    lease_renewals: Family<ResultLabel, Counter>,
    disk_job_seconds: Histogram,
    link_up: Family<LinkPairLabel, Gauge>,
    link_rtt_seconds: Family<LinkPairLabel, FloatGauge>,
    link_loss_ratio: Family<LinkPairLabel, FloatGauge>,
    heartbeats_received: Family<LinkLabel, Counter>,
    heartbeats_rejected: Family<ReasonLabel, Counter>,
    node_state: Family<StateLabel, Gauge>,
    group_state: Family<StateLabel, Gauge>,
    group_owner: Family<OwnerLabel, Gauge>,
    lease_seconds_left: Family<GroupLabel, FloatGauge>,
    /// What the failover clock needs: the last peer loss, the takeovers under way.
    clock: Mutex<FailoverClock>,
}

#[derive(Default)]
struct FailoverClock {
    peer_lost: Option<Instant>,
    takeovers: BTreeMap<u32, Instant>,
    disk_jobs: BTreeMap<u64, Instant>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tandem");
        let m = Metrics {
            heartbeats_sent: Family::default(),
            failovers: Family::default(),
            last_failover_seconds: Family::default(),
            operation_seconds: Family::new_with_constructor(operation_buckets),
            lease_renewals: Family::default(),
            disk_job_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 14)),
            link_up: Family::default(),
            link_rtt_seconds: Family::default(),
            link_loss_ratio: Family::default(),
            heartbeats_received: Family::default(),
            heartbeats_rejected: Family::default(),
            node_state: Family::default(),
            group_state: Family::default(),
            group_owner: Family::default(),
            lease_seconds_left: Family::default(),
            clock: Mutex::new(FailoverClock::default()),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("heartbeats_sent", "Heartbeats sent, per link", m.heartbeats_sent.clone());
        r.register(
            "heartbeats_received",
            "Heartbeats accepted, per UDP link",
            m.heartbeats_received.clone(),
        );
        r.register(
            "heartbeats_rejected",
            "Packets refused on a UDP link, by reason",
            m.heartbeats_rejected.clone(),
        );
        r.register(
            "link_up",
            "1 if the link carries heartbeats between the two nodes",
            m.link_up.clone(),
        );
        r.register("link_rtt_seconds", "Round-trip time on the link", m.link_rtt_seconds.clone());
        r.register(
            "link_loss_ratio",
            "Share of the peer's heartbeats lost on the link (last minute)",
            m.link_loss_ratio.clone(),
        );
        r.register("node_state", "1 for each node's current state", m.node_state.clone());
        r.register("group_state", "1 for each group's current state", m.group_state.clone());
        r.register("group_owner", "1 for the node that runs the group", m.group_owner.clone());
        r.register(
            "lease_seconds_left",
            "Time left on the group's lease, as this node sees it",
            m.lease_seconds_left.clone(),
        );
        r.register("failovers", "Groups taken over by this node", m.failovers.clone());
        r.register(
            "last_failover_seconds",
            "The last failover's duration: from the peer declared offline (or the takeover) to the group running here",
            m.last_failover_seconds.clone(),
        );
        r.register(
            "operation_seconds",
            "Agent operations' durations, by resource kind and operation",
            m.operation_seconds.clone(),
        );
        r.register("lease_renewals", "Lease renewals, by result", m.lease_renewals.clone());
        r.register(
            "disk_job_seconds",
            "Disk jobs' latency, from their issue to the worker's end",
            m.disk_job_seconds.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A heartbeat went out on `link`.
    pub fn heartbeat_sent(&self, link: &str) {
        self.heartbeats_sent.get_or_create(&LinkLabel { link: link.into() }).inc();
    }

    /// An event the engine made (failovers are counted and timed from them).
    pub fn event(
        &self,
        code: &'static catalogue::CodeInfo,
        group: Option<(u32, &str)>,
        at: Instant,
    ) {
        let mut clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        if code.code == catalogue::PEER_LOST.code {
            clock.peer_lost = Some(at);
        }
        let Some((id, name)) = group else { return };
        if code.code == catalogue::FAILOVER.code {
            self.failovers.get_or_create(&GroupLabel { group: name.into() }).inc();
            let from = match clock.peer_lost {
                Some(lost) if at.saturating_since(lost) <= FAILOVER_WINDOW => lost,
                _ => at,
            };
            clock.takeovers.insert(id, from);
        } else if code.code == catalogue::GROUP_RUNNING.code {
            if let Some(from) = clock.takeovers.remove(&id) {
                let took = at.saturating_since(from).as_secs_f64();
                self.last_failover_seconds
                    .get_or_create(&GroupLabel { group: name.into() })
                    .set(took);
            }
        }
    }

    /// An agent operation on a resource of `kind` took `took`.
    pub fn operation(&self, kind: &str, op: OpKind, took: Duration) {
        let label = OperationLabel { kind: kind.into(), operation: op_name(op).into() };
        self.operation_seconds.get_or_create(&label).observe(took.as_secs_f64());
    }

    /// The arbitrator answered a renewal: `granted` or not.
    pub fn renewal(&self, granted: bool) {
        let result = if granted { "granted" } else { "failed" };
        self.lease_renewals.get_or_create(&ResultLabel { result: result.into() }).inc();
    }

    /// Disk job `id` was issued at `at`.
    pub fn disk_job_issued(&self, id: u64, at: Instant) {
        let mut clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        if clock.disk_jobs.len() >= DISK_JOBS_TRACKED {
            clock.disk_jobs.pop_first();
        }
        clock.disk_jobs.insert(id, at);
    }

    /// Disk job `id` ended on the worker at `ended`.
    pub fn disk_job_done(&self, id: u64, ended: Instant) {
        let issued = self.clock.lock().unwrap_or_else(|e| e.into_inner()).disk_jobs.remove(&id);
        if let Some(issued) = issued {
            self.disk_job_seconds.observe(ended.saturating_since(issued).as_secs_f64());
        }
    }

    /// The text format, with the status-document families set from `status`.
    pub fn encode(&self, status: &contract::Status) -> String {
        self.refresh(status);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    fn refresh(&self, status: &contract::Status) {
        self.link_up.clear();
        self.node_state.clear();
        self.group_state.clear();
        self.group_owner.clear();
        self.link_rtt_seconds.clear();
        self.link_loss_ratio.clear();
        self.lease_seconds_left.clear();
        for node in &status.nodes {
            for state in contract::NodeState::ALL {
                let label = StateLabel { name: node.name.clone(), state: state.as_str().into() };
                self.node_state.get_or_create(&label).set(i64::from(*state == node.state));
            }
        }
        for link in &status.links {
            let [a, b] = &link.nodes;
            let (node, peer) = if *a == status.reported_by {
                (a.clone(), b.clone())
            } else {
                (b.clone(), a.clone())
            };
            let label = LinkPairLabel { link: link.link.clone(), node, peer };
            let up = link.state == contract::LinkState::Up;
            self.link_up.get_or_create(&label).set(i64::from(up));
            if let Some(rtt) = link.rtt_ms {
                self.link_rtt_seconds.get_or_create(&label).set(rtt / 1000.0);
            }
            if let Some(loss) = link.loss_percent {
                self.link_loss_ratio.get_or_create(&label).set(loss / 100.0);
            }
        }
        for link in &status.receiving {
            let label = LinkLabel { link: link.link.clone() };
            set_counter(&self.heartbeats_received.get_or_create(&label), link.accepted);
            for (reason, n) in &link.rejected_by_reason {
                let label = ReasonLabel { link: link.link.clone(), reason: reason.clone() };
                set_counter(&self.heartbeats_rejected.get_or_create(&label), *n);
            }
        }
        for group in &status.groups {
            for state in contract::GroupState::ALL {
                let label = StateLabel { name: group.name.clone(), state: state.as_str().into() };
                self.group_state.get_or_create(&label).set(i64::from(*state == group.state));
            }
            if let Some(owner) = &group.owner {
                let label = OwnerLabel { group: group.name.clone(), node: owner.clone() };
                self.group_owner.get_or_create(&label).set(1);
            }
        }
        for lease in &status.leases {
            if let Some(ms) = lease.expires_in_ms {
                let label = GroupLabel { group: lease.group.clone() };
                self.lease_seconds_left.get_or_create(&label).set(ms as f64 / 1000.0);
            }
        }
    }
}

/// A counter read from a total the daemon keeps elsewhere: set, never decreased.
fn set_counter(counter: &Counter, total: u64) {
    use std::sync::atomic::Ordering;
    counter.inner().fetch_max(total, Ordering::Relaxed);
}

fn op_name(op: OpKind) -> &'static str {
    match op {
        OpKind::Start => "start",
        OpKind::Stop => "stop",
        OpKind::Monitor => "monitor",
        OpKind::Probe => "probe",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> contract::Status {
        let text = r#"{
          "cluster": "shop", "reported_by": "alpha",
          "nodes": [{"name": "alpha", "state": "working"}, {"name": "beta", "state": "standby"}],
          "links": [{"link": "lan", "nodes": ["alpha", "beta"], "state": "up",
                     "last_heard_ms": 40, "rtt_ms": 0.25, "loss_percent": 2.0}],
          "groups": [{"name": "web", "state": "running", "owner": "alpha", "locked": false,
                      "lock_reason": null, "resources": []}],
          "leases": [{"group": "web", "holder": "alpha", "expires_in_ms": 820}],
          "faults": [],
          "journal": {"durable_id": 1, "queued": 0, "dropped": 0, "error": null},
          "receiving": [{"link": "lan", "accepted": 12, "rejected": 3,
                         "rejected_by_reason": {"bad_tag": 3}, "rejected_by_source": [],
                         "rejected_other_sources": 0, "kernel_drops": 0,
                         "receive_buffer_bytes": null, "flood": null}]
        }"#;
        serde_json::from_str(text).expect("a status document")
    }

    #[test]
    fn the_status_document_becomes_state_sets_and_gauges() {
        let m = Metrics::new();
        let text = m.encode(&status());
        for line in [
            "tandem_link_up{link=\"lan\",node=\"alpha\",peer=\"beta\"} 1",
            "tandem_link_rtt_seconds{link=\"lan\",node=\"alpha\",peer=\"beta\"} 0.00025",
            "tandem_link_loss_ratio{link=\"lan\",node=\"alpha\",peer=\"beta\"} 0.02",
            "tandem_node_state{name=\"beta\",state=\"standby\"} 1",
            "tandem_node_state{name=\"beta\",state=\"working\"} 0",
            "tandem_group_state{name=\"web\",state=\"running\"} 1",
            "tandem_group_owner{group=\"web\",node=\"alpha\"} 1",
            "tandem_lease_seconds_left{group=\"web\"} 0.82",
            "tandem_heartbeats_received_total{link=\"lan\"} 12",
            "tandem_heartbeats_rejected_total{link=\"lan\",reason=\"bad_tag\"} 3",
        ] {
            assert!(text.contains(line), "no `{line}` in\n{text}");
        }
    }

    #[test]
    fn a_failover_is_counted_and_timed_from_the_peer_loss() {
        let m = Metrics::new();
        let s = |ms: u64| Instant::from_nanos(ms * 1_000_000);
        m.event(&catalogue::PEER_LOST, None, s(1_000));
        m.event(&catalogue::FAILOVER, Some((0, "web")), s(1_300));
        m.event(&catalogue::GROUP_RUNNING, Some((0, "web")), s(1_450));
        // A group running again later is no failover.
        m.event(&catalogue::GROUP_RUNNING, Some((0, "web")), s(9_000));
        m.operation("process", OpKind::Start, Duration::from_millis(20));
        m.renewal(true);
        m.disk_job_issued(7, s(10));
        m.disk_job_done(7, s(12));
        let text = m.encode(&status());
        for line in [
            "tandem_failovers_total{group=\"web\"} 1",
            "tandem_last_failover_seconds{group=\"web\"} 0.45",
            "tandem_operation_seconds_count{kind=\"process\",operation=\"start\"} 1",
            "tandem_lease_renewals_total{result=\"granted\"} 1",
            "tandem_disk_job_seconds_count 1",
        ] {
            assert!(text.contains(line), "no `{line}` in\n{text}");
        }
    }
}
