//! The alert policy of one target, pure: events and instants in, messages out; no I/O
//! and no clock (the caller passes `now`), so that tests drive it step by step.
//!
//! - **Minimum severity**: events below the target's `min_severity` are not counted at
//!   all.
//! - **Coalescing**: the first qualifying event opens a gather window (`gather`, 2 s by
//!   default); everything that arrives in it goes out as one [`Message`]. A host crash
//!   makes the survivor log several events within a second (links down, peer offline,
//!   taking over the group): one message.
//! - **De-duplication**: the same (code, node, group, location) again is counted on the
//!   entry already held, not added.
//! - **Rate limit**: at most one message per `rate_limit` (60 s by default) after the
//!   first. What arrives meanwhile is held and counted. An event of a kind not yet seen
//!   in this storm goes out as soon as the limit allows (with what was held so far, as
//!   its suppressed part), so a new fault is not hidden behind a flapping link.
//! - **Storm summary**: held repeats go out as one summary once no qualifying event came
//!   for a whole `rate_limit` (the storm is over), or after [`STORM_REPORT_EVERY`] if it
//!   never ends. A flapping link therefore sends one message, then one summary.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use engine::catalogue::Severity;

use crate::message::{Counted, Kind, Message};
use crate::Event;

/// A storm that never goes quiet still sends a summary this often: four a hour is news
/// without being a storm of its own.
pub const STORM_REPORT_EVERY: Duration = Duration::from_secs(15 * 60);

/// One target's knobs (`min_severity`, `gather`, `rate_limit` of its `[[alert]]`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub min_severity: Severity,
    pub gather: Duration,
    pub rate_limit: Duration,
}

/// What de-duplicates: the same code about the same thing.
type Key = (String, String, Option<String>, Option<String>);

fn key_of(event: &Event) -> Key {
    (event.code.clone(), event.node.clone(), event.group.clone(), event.location.clone())
}

/// Held back by the rate limit.
#[derive(Debug)]
struct Held {
    entry: Counted,
    /// Its kind was new to the storm when it came: it goes out once the limit allows.
    fresh: bool,
}

/// One target's state.
#[derive(Debug)]
pub struct Policy {
    limits: Limits,
    /// The open gather window: when it opened and what it holds.
    gathering: Option<(Instant, Vec<Counted>)>,
    last_sent: Option<Instant>,
    last_qualifying: Option<Instant>,
    held: Vec<Held>,
    /// When the first of `held` came.
    held_since: Option<Instant>,
    /// Kinds already sent or held in this storm.
    storm: BTreeSet<Key>,
}

impl Policy {
    pub fn new(limits: Limits) -> Policy {
        Policy {
            limits,
            gathering: None,
            last_sent: None,
            last_qualifying: None,
            held: Vec::new(),
            held_since: None,
            storm: BTreeSet::new(),
        }
    }

    /// Takes one event that happened (was handed over) at `now`; whether it qualified.
    pub fn offer(&mut self, now: Instant, event: &Event) -> bool {
        if event.severity < self.limits.min_severity {
            return false;
        }
        let quiet = self.last_qualifying.is_none_or(|t| now >= t + self.limits.rate_limit);
        if quiet && self.held.is_empty() {
            self.storm.clear();
        }
        self.last_qualifying = Some(now);
        let key = key_of(event);
        if let Some((_, events)) = &mut self.gathering {
            merge(events, event);
            self.storm.insert(key);
            return true;
        }
        let limited = self.last_sent.is_some_and(|t| now < t + self.limits.rate_limit);
        if limited || self.storm.contains(&key) || !self.held.is_empty() {
            let fresh = !self.storm.contains(&key);
            match self.held.iter_mut().find(|h| key_of(&h.entry.event) == key) {
                Some(h) => h.entry.add(event),
                None => self.held.push(Held { entry: Counted::new(event.clone()), fresh }),
            }
            self.held_since.get_or_insert(now);
            self.storm.insert(key);
        } else {
            self.gathering = Some((now, vec![Counted::new(event.clone())]));
            self.storm.insert(key);
        }
        true
    }

    /// The message due at `now`, if any (call until `None`).
    pub fn poll(&mut self, now: Instant) -> Option<Message> {
        if let Some((opened, _)) = &self.gathering {
            if now >= *opened + self.limits.gather {
                let (_, events) = self.gathering.take()?;
                return Some(self.sent(now, Kind::Events, events, Vec::new()));
            }
            return None;
        }
        if self.held.is_empty() || self.last_sent.is_some_and(|t| now < t + self.limits.rate_limit)
        {
            return None;
        }
        if self.held.iter().any(|h| h.fresh) {
            let (fresh, stale): (Vec<Held>, Vec<Held>) =
                std::mem::take(&mut self.held).into_iter().partition(|h| h.fresh);
            let events = fresh.into_iter().map(|h| h.entry).collect();
            let suppressed = stale.into_iter().map(|h| h.entry).collect();
            return Some(self.sent(now, Kind::Events, events, suppressed));
        }
        let quiet = self.last_qualifying.is_some_and(|t| now >= t + self.limits.rate_limit);
        let long = self.held_since.is_some_and(|t| now >= t + STORM_REPORT_EVERY);
        if quiet || long {
            let suppressed = std::mem::take(&mut self.held).into_iter().map(|h| h.entry).collect();
            return Some(self.sent(now, Kind::Summary, Vec::new(), suppressed));
        }
        None
    }

    /// When [`Policy::poll`] may next have a message (`None`: only after an event).
    pub fn deadline(&self) -> Option<Instant> {
        if let Some((opened, _)) = &self.gathering {
            return Some(*opened + self.limits.gather);
        }
        if self.held.is_empty() {
            return None;
        }
        let allowed = self.last_sent.map(|t| t + self.limits.rate_limit);
        let due = if self.held.iter().any(|h| h.fresh) {
            allowed
        } else {
            let quiet = self.last_qualifying.map(|t| t + self.limits.rate_limit);
            let long = self.held_since.map(|t| t + STORM_REPORT_EVERY);
            let end = quiet.into_iter().chain(long).min();
            end.max(allowed)
        };
        due.or(self.held_since)
    }

    fn sent(
        &mut self,
        now: Instant,
        kind: Kind,
        events: Vec<Counted>,
        suppressed: Vec<Counted>,
    ) -> Message {
        self.last_sent = Some(now);
        if !suppressed.is_empty() || kind == Kind::Summary {
            self.held_since = None;
        }
        Message::new(kind, events, suppressed)
    }
}

fn merge(list: &mut Vec<Counted>, event: &Event) {
    let key = key_of(event);
    match list.iter_mut().find(|c| key_of(&c.event) == key) {
        Some(c) => c.add(event),
        None => list.push(Counted::new(event.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: &str, severity: Severity, group: Option<&str>) -> Event {
        Event {
            time: "2026-12-07T10:42:07Z".into(),
            code: code.into(),
            severity,
            node: "beta".into(),
            group: group.map(str::to_string),
            resource: None,
            location: Some("node beta".into()),
            message: format!("{code} happened"),
        }
    }

    fn policy() -> Policy {
        Policy::new(Limits {
            min_severity: Severity::Warning,
            gather: Duration::from_secs(2),
            rate_limit: Duration::from_secs(60),
        })
    }

    fn at(t0: Instant, secs: f64) -> Instant {
        t0 + Duration::from_secs_f64(secs)
    }

    /// Polls every 100 ms from `from` to `to` (seconds) and returns what came, with when.
    fn run(p: &mut Policy, t0: Instant, from: f64, to: f64) -> Vec<(f64, Message)> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= to {
            while let Some(m) = p.poll(at(t0, t)) {
                out.push((t, m));
            }
            t += 0.1;
        }
        out
    }

    #[test]
    fn below_min_severity_is_not_counted() {
        let t0 = Instant::now();
        let mut p = policy();
        assert!(!p.offer(t0, &ev("I4101", Severity::Info, Some("web"))));
        assert_eq!(p.deadline(), None);
        assert!(run(&mut p, t0, 0.0, 120.0).is_empty());
        assert!(p.offer(t0, &ev("E2104", Severity::Error, None)));
    }

    #[test]
    fn a_host_crash_is_one_message_naming_the_most_severe_event() {
        let t0 = Instant::now();
        let mut p = policy();
        p.offer(at(t0, 0.0), &ev("W2101", Severity::Warning, None));
        p.offer(at(t0, 0.1), &ev("W2101", Severity::Warning, None));
        p.offer(at(t0, 0.3), &ev("E2104", Severity::Error, None));
        p.offer(at(t0, 0.9), &ev("W4111", Severity::Warning, Some("web")));
        assert_eq!(p.deadline(), Some(at(t0, 2.0)));
        assert!(p.poll(at(t0, 1.9)).is_none());
        let out = run(&mut p, t0, 2.0, 300.0);
        assert_eq!(out.len(), 1, "{out:?}");
        let (t, m) = &out[0];
        assert!((*t - 2.0).abs() < 1e-9);
        assert_eq!(m.kind, Kind::Events);
        assert_eq!(m.events.len(), 3, "deduplicated W2101");
        assert_eq!(m.events[0].count, 2);
        assert_eq!(m.headline().event.code, "E2104");
        assert!(m.subject().contains("E2104") && m.subject().contains("beta"), "{}", m.subject());
        assert!(m.suppressed.is_empty());
    }

    #[test]
    fn a_flapping_link_sends_one_message_then_one_summary() {
        let t0 = Instant::now();
        let mut p = policy();
        let mut out = Vec::new();
        // Down every 5 s for 5 minutes.
        for i in 0..60 {
            let t = f64::from(i) * 5.0;
            p.offer(at(t0, t), &ev("W2101", Severity::Warning, None));
            out.extend(run(&mut p, t0, t, t + 4.95));
        }
        out.extend(run(&mut p, t0, 300.0, 600.0));
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].1.kind, Kind::Events);
        assert!((out[0].0 - 2.0).abs() < 1e-6);
        let (t, summary) = &out[1];
        assert_eq!(summary.kind, Kind::Summary);
        // The last flap at 295 s, quiet for a minute.
        assert!((*t - 355.0).abs() < 0.11, "{t}");
        assert_eq!(summary.suppressed_total(), 59);
        assert!(summary.subject().contains("59"), "{}", summary.subject());
    }

    #[test]
    fn a_new_fault_in_a_storm_goes_out_when_the_limit_allows() {
        let t0 = Instant::now();
        let mut p = policy();
        let mut out = Vec::new();
        for i in 0..30 {
            let t = f64::from(i) * 5.0;
            p.offer(at(t0, t), &ev("W2101", Severity::Warning, None));
            if i == 4 {
                p.offer(at(t0, t), &ev("E4102", Severity::Error, Some("db")));
            }
            out.extend(run(&mut p, t0, t, t + 4.95));
        }
        out.extend(run(&mut p, t0, 150.0, 400.0));
        let kinds: Vec<_> = out.iter().map(|(t, m)| (t.round() as u64, m.kind)).collect();
        assert_eq!(kinds, [(2, Kind::Events), (62, Kind::Events), (205, Kind::Summary)], "{out:?}");
        assert_eq!(out[1].1.events[0].event.code, "E4102");
        assert_eq!(out[1].1.suppressed_total(), 12, "W2101 at 5..=60 s");
        assert_eq!(out[2].1.suppressed_total(), 17, "W2101 at 65..=145 s");
    }

    #[test]
    fn after_quiet_the_next_fault_is_a_new_message() {
        let t0 = Instant::now();
        let mut p = policy();
        p.offer(t0, &ev("E2104", Severity::Error, None));
        assert_eq!(run(&mut p, t0, 0.0, 100.0).len(), 1);
        p.offer(at(t0, 100.0), &ev("E2104", Severity::Error, None));
        let out = run(&mut p, t0, 100.0, 300.0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.kind, Kind::Events);
        assert!((out[0].0 - 102.0).abs() < 1e-6);
    }

    #[test]
    fn a_storm_that_never_ends_still_reports() {
        let t0 = Instant::now();
        let mut p = policy();
        let mut out = Vec::new();
        for i in 0..(20 * 60 / 10) {
            let t = f64::from(i) * 10.0;
            p.offer(at(t0, t), &ev("W2101", Severity::Warning, None));
            out.extend(run(&mut p, t0, t, t + 9.95));
        }
        let kinds: Vec<_> = out.iter().map(|(t, m)| (t.round() as u64, m.kind)).collect();
        assert_eq!(kinds, [(2, Kind::Events), (910, Kind::Summary)], "{kinds:?}");
    }

    #[test]
    fn deadline_is_when_poll_has_something() {
        let t0 = Instant::now();
        let mut p = policy();
        p.offer(t0, &ev("W2101", Severity::Warning, None));
        let d = p.deadline().unwrap();
        assert!(p.poll(d - Duration::from_millis(1)).is_none());
        assert!(p.poll(d).is_some());
        p.offer(at(t0, 10.0), &ev("W2101", Severity::Warning, None));
        let d = p.deadline().unwrap();
        assert_eq!(d, at(t0, 70.0));
        assert!(p.poll(d - Duration::from_millis(1)).is_none());
        assert_eq!(p.poll(d).map(|m| m.kind), Some(Kind::Summary));
        assert_eq!(p.deadline(), None);
    }
}
