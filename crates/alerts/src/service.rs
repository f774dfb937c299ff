//! The threads: one runs every target's policy (the events' queue in, messages out),
//! one per target delivers (with retries for e-mail and webhooks); failures come back
//! as W6101 events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::{AlertConfig, AlertTarget};
use engine::catalogue::{self, CodeInfo};

use crate::email::Email;
use crate::message::Message;
use crate::policy::{Limits, Policy};
use crate::script::Script;
use crate::webhook::Webhook;
use crate::{tls, Event, StartError};

/// The loop's queue to the policy thread: room for a burst far larger than one fault
/// makes (a host crash is a handful of events), small enough to be no memory concern.
pub const QUEUE: usize = 1024;

/// The waits between attempts of an e-mail or a webhook call: five attempts within
/// about half a minute (plus each attempt's own timeout), so that a relay restarting
/// or a receiver's short hiccup loses nothing, and a dead one is reported within a
/// minute.
const RETRY_DELAYS: [Duration; 4] = [
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// The policy thread has nothing due: it looks again this late at the latest.
const IDLE: Duration = Duration::from_secs(3600);

struct Input {
    event: Event,
    /// The target whose failure this reports: it never receives it.
    not_to: Option<usize>,
}

/// The loop's side: never blocks.
pub struct Alerts {
    tx: SyncSender<Input>,
    dropped: Arc<AtomicU64>,
}

impl Alerts {
    /// Hands `event` over: one `try_send`; a full queue drops and counts it (reported
    /// once as W6102 when the queue takes events again).
    pub fn offer(&self, event: Event) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Input { event, not_to: None }) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

enum Target {
    Email(Box<Email>),
    Webhook(Webhook),
    Script(Script),
}

impl Target {
    fn kind(&self) -> &'static str {
        match self {
            Target::Email(_) => "email",
            Target::Webhook(_) => "webhook",
            Target::Script(_) => "script",
        }
    }

    /// Delivers with the retries of its kind; the last error when all failed.
    fn deliver(&self, message: &Message) -> Result<(), String> {
        let mut attempt = 0;
        loop {
            let result = match self {
                Target::Email(t) => t.send(message),
                Target::Webhook(t) => t.send(message),
                Target::Script(t) => t.send(message),
            };
            match result {
                Ok(()) => return Ok(()),
                Err((why, retry)) => {
                    let Some(delay) = RETRY_DELAYS.get(attempt).filter(|_| retry) else {
                        let tries = attempt + 1;
                        return Err(if tries > 1 {
                            format!("{why} ({tries} attempts)")
                        } else {
                            why
                        });
                    };
                    tracing::info!(
                        "alert {} not delivered yet ({why}): again in {delay:?}",
                        self.kind()
                    );
                    std::thread::sleep(*delay);
                    attempt += 1;
                }
            }
        }
    }
}

fn build(config: &AlertConfig) -> Result<Target, StartError> {
    let ca = |path: &Option<config::Spanned<std::path::PathBuf>>| {
        path.as_ref().map(|p| tls::read_ca(&p.value)).transpose()
    };
    let wrong = |message: String| StartError { code: &catalogue::ALERT_FILE_UNUSABLE, message };
    Ok(match &config.target {
        AlertTarget::Email { smtp, starttls, from, to, username, password_file, ca_file } => {
            let auth = match (username, password_file) {
                (Some(user), Some(file)) => Some((user.clone(), tls::read_password(file)?)),
                _ => None,
            };
            Target::Email(Box::new(
                Email::new(smtp, *starttls, from, to, auth, ca(ca_file)?).map_err(wrong)?,
            ))
        }
        AlertTarget::Webhook { url, ca_file } => {
            Target::Webhook(Webhook::new(url, ca(ca_file)?).map_err(wrong)?)
        }
        AlertTarget::Script { path } => Target::Script(Script { path: path.value.clone() }),
    })
}

/// Starts the alert threads for `configs` as node `node`. The receiver yields W6101 and
/// W6102 events for the daemon to journal. `None` when there is no `[[alert]]`.
pub fn start(
    node: &str,
    configs: &[AlertConfig],
) -> Result<Option<(Alerts, Receiver<Event>)>, StartError> {
    if configs.is_empty() {
        return Ok(None);
    }
    let targets: Vec<Target> = configs.iter().map(build).collect::<Result<_, _>>()?;
    let (tx, rx) = mpsc::sync_channel::<Input>(QUEUE);
    let (journal_tx, journal_rx) = mpsc::channel::<Event>();
    let dropped = Arc::new(AtomicU64::new(0));
    let spawn_failed = |e: std::io::Error| StartError {
        code: &catalogue::ALERT_NOT_DELIVERED,
        message: format!("cannot start an alert thread: {e}"),
    };
    let mut senders = Vec::with_capacity(targets.len());
    for (index, target) in targets.into_iter().enumerate() {
        let (message_tx, message_rx) = mpsc::channel::<Message>();
        let delivery = Delivery {
            index,
            node: node.to_string(),
            target,
            journal: journal_tx.clone(),
            feed: tx.clone(),
        };
        std::thread::Builder::new()
            .name(format!("alert-{}", index + 1))
            .spawn(move || delivery.run(&message_rx))
            .map_err(spawn_failed)?;
        senders.push(message_tx);
    }
    let policies = configs
        .iter()
        .map(|c| {
            Policy::new(Limits {
                min_severity: c.min_severity,
                gather: c.gather,
                rate_limit: c.rate_limit,
            })
        })
        .collect();
    let gate = Gate {
        node: node.to_string(),
        policies,
        senders,
        dropped: dropped.clone(),
        journal: journal_tx,
    };
    std::thread::Builder::new()
        .name("alerts".into())
        .spawn(move || gate.run(&rx))
        .map_err(spawn_failed)?;
    Ok(Some((Alerts { tx, dropped }, journal_rx)))
}

/// The policy thread.
struct Gate {
    node: String,
    policies: Vec<Policy>,
    senders: Vec<Sender<Message>>,
    dropped: Arc<AtomicU64>,
    journal: Sender<Event>,
}

impl Gate {
    fn run(mut self, rx: &Receiver<Input>) {
        loop {
            let now = Instant::now();
            let next = self.policies.iter().filter_map(Policy::deadline).min();
            let wait = next.map_or(IDLE, |d| d.saturating_duration_since(now));
            match rx.recv_timeout(wait) {
                Ok(input) => {
                    self.report_dropped();
                    self.offer(&input);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            for (policy, sender) in self.policies.iter_mut().zip(&self.senders) {
                while let Some(message) = policy.poll(now) {
                    let _ = sender.send(message);
                }
            }
        }
    }

    fn offer(&mut self, input: &Input) {
        let now = Instant::now();
        for (i, policy) in self.policies.iter_mut().enumerate() {
            if input.not_to != Some(i) {
                policy.offer(now, &input.event);
            }
        }
    }

    fn report_dropped(&mut self) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped == 0 {
            return;
        }
        let event = own_event(
            &self.node,
            &catalogue::ALERT_EVENTS_DROPPED,
            None,
            format!(
                "alerts: {dropped} events were dropped: more than {QUEUE} waited for the alert \
                 thread (the journal has them all)"
            ),
        );
        tracing::warn!(code = event.code, "{}", event.message);
        let _ = self.journal.send(event.clone());
        self.offer(&Input { event, not_to: None });
    }
}

fn own_event(
    node: &str,
    code: &'static CodeInfo,
    location: Option<String>,
    message: String,
) -> Event {
    Event {
        time: crate::wall_now(),
        code: code.code.to_string(),
        severity: code.severity,
        node: node.to_string(),
        group: None,
        resource: None,
        location: location.or_else(|| Some(format!("node {node}"))),
        message,
    }
}

/// One target's delivery thread.
struct Delivery {
    index: usize,
    node: String,
    target: Target,
    journal: Sender<Event>,
    feed: SyncSender<Input>,
}

impl Delivery {
    fn run(self, rx: &Receiver<Message>) {
        while let Ok(message) = rx.recv() {
            let Err(why) = self.target.deliver(&message) else { continue };
            let n = self.index + 1;
            let kind = self.target.kind();
            let carried: Vec<&str> = message.all().map(|c| c.event.code.as_str()).collect();
            let text = format!(
                "alert {n} ({kind}) not delivered: {why}; it carried {} ({})",
                message.summary(),
                carried.join(", ")
            );
            let event = own_event(
                &self.node,
                &catalogue::ALERT_NOT_DELIVERED,
                Some(format!("alert {n} ({kind})")),
                text,
            );
            tracing::warn!(code = event.code, "{}", event.message);
            let _ = self.journal.send(event.clone());
            // Only news of events: a message of failures only, failing, is not passed on.
            let only_failures = message.all().all(|c| c.event.code.starts_with("W61"));
            if !only_failures {
                let _ = self.feed.try_send(Input { event, not_to: Some(self.index) });
            }
        }
    }
}
