//! What `tandem demo` prints: progress lines stamped with the time since the start, the
//! cluster's live state as a compact table, events and the client's observations as they
//! arrive. Colours only when stdout is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>). It only formats and prints; it reads no state itself.

use std::io::IsTerminal as _;
use std::time::Instant;

use contract::{Event as Entry, LinkState, Severity, Status};

/// A style for a piece of text (an ANSI SGR code on a terminal, nothing otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    Bold,
    Dim,
    Good,
    Warn,
    Bad,
    Accent,
}

impl Paint {
    fn sgr(self) -> &'static str {
        match self {
            Paint::Bold => "1",
            Paint::Dim => "2",
            Paint::Good => "32",
            Paint::Warn => "33",
            Paint::Bad => "1;31",
            Paint::Accent => "1;36",
        }
    }

    /// The style of a state word of the status document.
    fn of_state(state: &str) -> Paint {
        match state {
            "up" | "running" | "working" | "standby" => Paint::Good,
            "down" | "offline" | "failed" | "blocked" | "fenced" => Paint::Bad,
            "stopped" | "-" => Paint::Dim,
            _ => Paint::Warn,
        }
    }

    /// The style of an event's severity.
    fn of_severity(severity: &str) -> Paint {
        match severity {
            "error" => Paint::Bad,
            "warning" => Paint::Warn,
            _ => Paint::Dim,
        }
    }
}

/// The indentation of lines that belong to the step above them.
const INDENT: &str = "          ";

pub struct Screen {
    start: Instant,
    colour: bool,
}

impl Screen {
    pub fn new() -> Screen {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Screen { start: Instant::now(), colour: std::io::stdout().is_terminal() && !no_color }
    }

    pub fn paint(&self, paint: Paint, text: &str) -> String {
        if self.colour {
            format!("\x1b[{}m{text}\x1b[0m", paint.sgr())
        } else {
            text.to_string()
        }
    }

    fn stamp(&self) -> String {
        self.paint(Paint::Dim, &format!("[{:>5.1}s]", self.start.elapsed().as_secs_f64()))
    }

    pub fn title(&self, text: &str) {
        println!("{}", self.paint(Paint::Bold, text));
    }

    /// A step of the story.
    pub fn step(&self, text: &str) {
        println!("{} {text}", self.stamp());
    }

    /// A step that matters most (the crash, the outcome).
    pub fn headline(&self, text: &str) {
        println!("{} {}", self.stamp(), self.paint(Paint::Accent, text));
    }

    /// A line under the step above.
    pub fn detail(&self, text: &str) {
        println!("{INDENT}{text}");
    }

    /// Something the demo left out, and why.
    pub fn skipped(&self, what: &str, why: &str) {
        println!("{INDENT}{} {what}: {why}", self.paint(Paint::Warn, "skipped"));
    }

    pub fn warning(&self, text: &str) {
        println!("{} {}", self.stamp(), self.paint(Paint::Warn, text));
    }

    /// An event of a node's journal; `offset_ms` is its time relative to the crash.
    pub fn event(&self, entry: &Entry, offset_ms: Option<i64>) {
        let when = when(offset_ms);
        let mut context = Vec::new();
        context.extend(entry.group.clone());
        context.extend(entry.resource.clone());
        let context = if context.is_empty() {
            String::new()
        } else {
            self.paint(Paint::Dim, &format!(" [{}]", context.join("/")))
        };
        println!(
            "{when} {:<6} {} {}{context}",
            entry.node,
            self.paint(Paint::of_severity(&entry.severity), &entry.code),
            entry.message
        );
    }

    /// What the client saw, at `offset_ms` from the crash.
    pub fn client(&self, offset_ms: Option<i64>, text: &str) {
        println!("{} {:<6} {}", when(offset_ms), "client", self.paint(Paint::Bold, text));
    }

    /// The cluster as `view` (a status document) shows it; the group's resources as
    /// `owner` (the owner's own document, which knows them) shows them.
    pub fn state(&self, view: &Status, owner: Option<&Status>) {
        for line in self.state_lines(view, owner) {
            println!("{INDENT}{line}");
        }
    }

    fn word(&self, state: &str) -> String {
        self.paint(Paint::of_state(state), state)
    }

    pub fn state_lines(&self, view: &Status, owner: Option<&Status>) -> Vec<String> {
        let mut lines =
            vec![self.paint(Paint::Dim, &format!("the cluster as {} sees it:", view.reported_by))];
        let nodes: Vec<String> = view
            .nodes
            .iter()
            .map(|n| format!("{} {}", n.name, self.word(n.state.as_str())))
            .collect();
        lines.push(format!("nodes   {}", nodes.join("   ")));
        let links: Vec<String> = view
            .links
            .iter()
            .map(|l| {
                let rtt = l
                    .rtt_ms
                    .filter(|_| l.state == LinkState::Up)
                    .map(|r| self.paint(Paint::Dim, &format!(" {r:.2} ms")))
                    .unwrap_or_default();
                format!("{} {}{rtt}", l.link, self.word(l.state.as_str()))
            })
            .collect();
        lines.push(format!("links   {}", links.join("   ")));
        for group in &view.groups {
            let name = &group.name;
            let owned = owner.and_then(|doc| doc.group(name));
            let resources: Vec<String> = owned
                .map(|g| g.resources.as_slice())
                .unwrap_or_default()
                .iter()
                .map(|r| format!("{} ({}) {}", r.name, r.kind, self.word(r.state.as_str())))
                .collect();
            let lock = if group.locked {
                let reason = group.lock_reason.as_deref().unwrap_or("-");
                self.paint(Paint::Warn, &format!("  locked: {reason}"))
            } else {
                String::new()
            };
            lines.push(format!(
                "group   {name} {} on {}{lock}",
                self.word(group.state.as_str()),
                self.paint(Paint::Bold, group.owner.as_deref().unwrap_or("-"))
            ));
            if !resources.is_empty() {
                lines.push(format!("          {}", resources.join(" -> ")));
            }
        }
        let faults: Vec<String> = view
            .faults
            .iter()
            .map(|f| {
                let paint = if f.severity == Severity::Error { Paint::Bad } else { Paint::Warn };
                format!("{} {}", self.paint(paint, &f.code), f.location)
            })
            .collect();
        if !faults.is_empty() {
            lines.push(format!("faults  {}", faults.join("   ")));
        }
        lines
    }
}

/// The time column of events and client lines: from the crash, once there was one.
fn when(offset_ms: Option<i64>) -> String {
    match offset_ms {
        Some(ms) => format!("{:>+9.3}s", ms as f64 / 1000.0),
        None => INDENT.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_table_is_compact_and_plain_without_a_terminal() {
        let screen = Screen { start: Instant::now(), colour: false };
        let view: Status = serde_json::from_value(serde_json::json!({
            "cluster": "demo",
            "reported_by": "beta",
            "nodes": [{"name": "alpha", "state": "working"}, {"name": "beta", "state": "standby"}],
            "links": [{"link": "net1", "nodes": ["alpha", "beta"], "state": "up",
                       "last_heard_ms": 10, "rtt_ms": 0.25, "loss_percent": null},
                      {"link": "disk", "nodes": ["alpha", "beta"], "state": "down",
                       "last_heard_ms": null, "rtt_ms": null, "loss_percent": null}],
            "groups": [{"name": "web", "state": "running", "owner": "alpha", "locked": false,
                        "lock_reason": null,
                        "resources": [{"name": "hello", "kind": "process", "state": "stopped",
                                       "fail_count": 0}]}],
            "leases": [],
            "faults": [{"code": "W2101", "severity": "warning", "where": "link disk",
                        "since": "2026-11-25T10:42:07Z"}],
            "journal": {"durable_id": 1, "queued": 0, "dropped": 0, "error": null},
            "receiving": [],
        }))
        .unwrap();
        let mut owner = view.clone();
        owner.groups[0].resources[0].state = contract::ResourceState::Running;
        let lines = screen.state_lines(&view, Some(&owner));
        assert_eq!(
            lines,
            [
                "the cluster as beta sees it:",
                "nodes   alpha working   beta standby",
                "links   net1 up 0.25 ms   disk down",
                "group   web running on alpha",
                "          hello (process) running",
                "faults  W2101 link disk",
            ]
        );
    }
}
