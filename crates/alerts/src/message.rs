//! One alert message: the events gathered in a window (each counted once per repeat)
//! and what the rate limit held back; its subject, text body and JSON body.

use serde::Serialize;

use crate::Event;

/// An event and how often it came in the window (the first's fields, the last's time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counted {
    #[serde(flatten)]
    pub event: Event,
    pub count: u32,
    /// When the last repeat came (the first's time is the event's).
    pub last_time: String,
}

impl Counted {
    pub fn new(event: Event) -> Counted {
        let last_time = event.time.clone();
        Counted { event, count: 1, last_time }
    }

    /// One more of the same.
    pub fn add(&mut self, event: &Event) {
        self.count = self.count.saturating_add(1);
        self.last_time = event.time.clone();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Events as they happen (with what was held back before them, if anything).
    Events,
    /// Only what the rate limit held back, once the storm is over.
    Summary,
}

/// What goes to one target at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub events: Vec<Counted>,
    /// Held back by the rate limit since the previous message.
    pub suppressed: Vec<Counted>,
}

#[derive(Serialize)]
struct Json<'a> {
    summary: String,
    kind: Kind,
    events: &'a [Counted],
    suppressed: &'a [Counted],
    suppressed_total: u64,
}

impl Message {
    pub fn new(kind: Kind, events: Vec<Counted>, suppressed: Vec<Counted>) -> Message {
        Message { kind, events, suppressed }
    }

    /// Every event the message carries (held ones too), in order.
    pub fn all(&self) -> impl Iterator<Item = &Counted> {
        self.events.iter().chain(&self.suppressed)
    }

    /// The events held back, repeats included.
    pub fn suppressed_total(&self) -> u64 {
        self.suppressed.iter().map(|c| u64::from(c.count)).sum()
    }

    /// The most severe event (the first of the most severe), of `events` if any.
    pub fn headline(&self) -> &Counted {
        let list = if self.events.is_empty() { &self.suppressed } else { &self.events };
        let mut best = &list[0];
        for c in list {
            if c.event.severity > best.event.severity {
                best = c;
            }
        }
        best
    }

    /// One line naming the most severe event with its code, node and group.
    pub fn summary(&self) -> String {
        let head = &self.headline().event;
        let mut about = format!("{} on {}", head.code, head.node);
        if let Some(group) = &head.group {
            about.push_str(&format!(", group {group}"));
        }
        match self.kind {
            Kind::Events => {
                let more = self.events.len() - 1;
                let more = match more {
                    0 => String::new(),
                    1 => " (+1 more event)".to_string(),
                    n => format!(" (+{n} more events)"),
                };
                format!("{about}: {}{more}", head.message)
            }
            Kind::Summary => format!(
                "{} alerts held back by the rate limit; most severe {about}: {}",
                self.suppressed_total(),
                head.message
            ),
        }
    }

    /// The e-mail subject.
    pub fn subject(&self) -> String {
        let head = &self.headline().event;
        format!("[tandem] {} {}", head.severity.as_str().to_uppercase(), self.summary())
    }

    /// The e-mail body: every event on a line of its own, then what was held back.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n\n", self.summary());
        if !self.events.is_empty() {
            out.push_str("Events:\n");
            for c in &self.events {
                out.push_str(&line(c));
            }
        }
        if !self.suppressed.is_empty() {
            out.push_str(&format!(
                "\nHeld back by the rate limit ({} in all):\n",
                self.suppressed_total()
            ));
            for c in &self.suppressed {
                out.push_str(&line(c));
            }
        }
        out.push_str("\n`tandem events` on the node shows the whole journal.\n");
        out
    }

    /// The webhook's body: a top-level summary, then every event with all its fields.
    pub fn json(&self) -> String {
        let json = Json {
            summary: self.summary(),
            kind: self.kind,
            events: &self.events,
            suppressed: &self.suppressed,
            suppressed_total: self.suppressed_total(),
        };
        // Strings and numbers only: encoding cannot fail.
        serde_json::to_string(&json).unwrap_or_default()
    }
}

fn line(c: &Counted) -> String {
    let e = &c.event;
    let mut out = format!("{} {} {} node {}", e.time, e.code, e.severity.as_str(), e.node);
    if let Some(group) = &e.group {
        out.push_str(&format!(" group {group}"));
    }
    if let Some(resource) = &e.resource {
        out.push_str(&format!(" resource {resource}"));
    }
    if let Some(location) = &e.location {
        out.push_str(&format!(" ({location})"));
    }
    out.push_str(&format!(": {}", e.message));
    if c.count > 1 {
        out.push_str(&format!(" [x{}, last {}]", c.count, c.last_time));
    }
    out.push('\n');
    out
}
