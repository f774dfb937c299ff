//! The node's side of the alerts (`[[alert]]`, the `alerts` crate): started with the
//! node; the loop hands it every event it journals (one `try_send`, never a wait), and
//! once a turn journals what the alert threads report back (W6101 a delivery failed
//! after its retries, W6102 events dropped on a full queue). Those reports are journaled
//! here, not handed back as events: the alert threads already pass a failure on to the
//! other targets, and never to the one that failed.

use std::sync::mpsc::Receiver;

use engine::catalogue::Severity;

use crate::journal;

/// The alert threads' handle, or nothing when the configuration has no `[[alert]]`.
#[derive(Default)]
pub(crate) struct Alerting {
    running: Option<(alerts::Alerts, Receiver<alerts::Event>)>,
}

impl Alerting {
    /// Starts the alert threads for `config`'s `[[alert]]`s as node `node`; refuses an
    /// unusable target file (E6001).
    pub(crate) fn start(config: &config::Config, node: &str) -> anyhow::Result<Alerting> {
        let running = alerts::start(node, &config.alerts).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Alerting { running })
    }

    /// Hands a journaled event to the alert threads (never blocks).
    pub(crate) fn offer(&self, entry: &journal::Entry) {
        let Some((alerts, _)) = &self.running else { return };
        let severity = match entry.severity.as_str() {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            _ => Severity::Info,
        };
        alerts.offer(alerts::Event {
            time: entry.time.clone(),
            code: entry.code.clone(),
            severity,
            node: entry.node.clone(),
            group: entry.group.clone(),
            resource: entry.resource.clone(),
            location: entry.location.clone(),
            message: entry.message.clone(),
        });
    }

    /// Journals what the alert threads reported since the last turn.
    pub(crate) fn journal_reports(&self, journal: &mut journal::Writer) {
        let Some((_, reports)) = &self.running else { return };
        while let Ok(event) = reports.try_recv() {
            journal.append(journal::Entry {
                id: 0,
                time: event.time,
                code: event.code,
                severity: event.severity.as_str().to_string(),
                node: event.node,
                group: event.group,
                resource: event.resource,
                location: event.location,
                message: event.message,
            });
        }
    }
}
