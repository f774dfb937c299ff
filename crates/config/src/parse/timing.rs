//! `[timing]`: heartbeat interval, peer timeout and lease timeout, each with its
//! lower bound (E1027, E1026, E1028); invalid values fall back to the defaults for
//! the checks of later sections.

use std::time::Duration;

use engine::catalogue as codes;
use engine::Timing;

use crate::reader::{Ctx, Entry, Fields};
use crate::values::format_duration;

/// `heartbeat_interval` may not be shorter.
pub const HEARTBEAT_INTERVAL_MIN: Duration = Duration::from_millis(10);

/// `lease_timeout` may not be shorter.
pub const LEASE_TIMEOUT_MIN: Duration = Duration::from_millis(200);

/// `peer_timeout` must be at least this many heartbeat intervals.
pub const PEER_TIMEOUT_HEARTBEATS_MIN: u32 = 3;

/// Each value: `Some` when absent (the default) or valid, `None` when invalid.
pub(super) struct TimingPart {
    heartbeat_interval: Option<Duration>,
    peer_timeout: Option<Duration>,
    lease_timeout: Option<Duration>,
}

impl TimingPart {
    /// The timing to use for later checks (defaults in place of invalid values).
    pub(super) fn effective(&self) -> Timing {
        let default = Timing::default();
        Timing {
            heartbeat_interval: self.heartbeat_interval.unwrap_or(default.heartbeat_interval),
            peer_timeout: self.peer_timeout.unwrap_or(default.peer_timeout),
            lease_timeout: self.lease_timeout.unwrap_or(default.lease_timeout),
        }
    }
}

pub(super) fn read_timing(ctx: &mut Ctx<'_>, entry: Option<Entry<'_>>) -> TimingPart {
    let default = Timing::default();
    let mut part = TimingPart {
        heartbeat_interval: Some(default.heartbeat_interval),
        peer_timeout: Some(default.peer_timeout),
        lease_timeout: Some(default.lease_timeout),
    };
    let Some(table) = entry.and_then(|e| ctx.table(&e)) else { return part };
    let table_anchor = table.anchor.clone();
    let mut fields = Fields::new(table);
    let heartbeat = fields.get("heartbeat_interval");
    let peer = fields.get("peer_timeout");
    let lease = fields.get("lease_timeout");
    fields.finish(ctx, "[timing]", &|_| None);
    if let Some(e) = &heartbeat {
        part.heartbeat_interval = ctx.duration(e);
        if let Some(d) = part.heartbeat_interval.filter(|d| *d < HEARTBEAT_INTERVAL_MIN) {
            part.heartbeat_interval = None;
            ctx.push(
                &codes::CONFIG_HEARTBEAT_INTERVAL_TOO_SHORT,
                e.span.clone(),
                format!("heartbeat_interval {} is below 10ms", format_duration(d)),
                "too short",
            );
        }
    }
    if let Some(e) = &peer {
        part.peer_timeout = ctx.duration(e);
    }
    if let Some(e) = &lease {
        part.lease_timeout = ctx.duration(e);
        if let Some(d) = part.lease_timeout.filter(|d| *d < LEASE_TIMEOUT_MIN) {
            part.lease_timeout = None;
            let d = ctx.push(
                &codes::CONFIG_LEASE_TIMEOUT_TOO_SHORT,
                e.span.clone(),
                format!("lease_timeout {} is below 200ms", format_duration(d)),
                "too short",
            );
            d.help.push("a holder renews every lease_timeout/5 and must stop its groups within 0.4 x lease_timeout".into());
        }
    }
    if let (Some(hb), Some(peer_timeout)) = (part.heartbeat_interval, part.peer_timeout) {
        let minimum = hb * PEER_TIMEOUT_HEARTBEATS_MIN;
        if peer_timeout < minimum {
            let (span, label) = match (&peer, &heartbeat) {
                (Some(p), _) => {
                    (p.span.clone(), format!("must be at least {}", format_duration(minimum)))
                }
                (None, Some(h)) => (
                    h.span.clone(),
                    format!(
                        "peer_timeout (default {}) is too short for this",
                        format_duration(peer_timeout)
                    ),
                ),
                (None, None) => (table_anchor, String::new()),
            };
            ctx.push(
                &codes::CONFIG_PEER_TIMEOUT_TOO_SHORT,
                span,
                format!(
                    "peer_timeout {} is shorter than 3 x heartbeat_interval ({})",
                    format_duration(peer_timeout),
                    format_duration(hb)
                ),
                label,
            )
            .help
            .push(format!(
                "raise peer_timeout to {} or more, or shorten heartbeat_interval",
                format_duration(minimum)
            ));
            part.peer_timeout = None;
        }
    }
    part
}
