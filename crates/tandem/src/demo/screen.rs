//! What `tandem demo` prints: progress lines stamped with the time since the start, the
//! cluster's live state as a compact table, events and the client's observations as they
//! arrive. Colours only when stdout is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>). It only formats and prints; it reads no state itself.

use std::io::IsTerminal as _;
use std::time::Instant;

use daemon::journal::Entry;
use serde_json::Value;

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
    pub fn state(&self, view: &Value, owner: Option<&Value>) {
        for line in self.state_lines(view, owner) {
            println!("{INDENT}{line}");
        }
    }

    fn word(&self, state: &str) -> String {
        self.paint(Paint::of_state(state), state)
    }

    pub fn state_lines(&self, view: &Value, owner: Option<&Value>) -> Vec<String> {
        let list = |doc: &Value, key: &str| doc[key].as_array().cloned().unwrap_or_default();
        let mut lines = vec![self
            .paint(Paint::Dim, &format!("the cluster as {} sees it:", text(&view["reported_by"])))];
        let nodes: Vec<String> = list(view, "nodes")
            .iter()
            .map(|n| format!("{} {}", text(&n["name"]), self.word(&text(&n["state"]))))
            .collect();
        lines.push(format!("nodes   {}", nodes.join("   ")));
        let links: Vec<String> = list(view, "links")
            .iter()
            .map(|l| {
                let rtt = l["rtt_ms"]
                    .as_f64()
                    .filter(|_| l["state"] == "up")
                    .map(|r| self.paint(Paint::Dim, &format!(" {r:.2} ms")))
                    .unwrap_or_default();
                format!("{} {}{rtt}", text(&l["link"]), self.word(&text(&l["state"])))
            })
            .collect();
        lines.push(format!("links   {}", links.join("   ")));
        for group in list(view, "groups") {
            let name = text(&group["name"]);
            let owned = owner
                .and_then(|doc| list(doc, "groups").into_iter().find(|g| text(&g["name"]) == name));
            let resources: Vec<String> = owned
                .as_ref()
                .map(|g| list(g, "resources"))
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    format!(
                        "{} ({}) {}",
                        text(&r["name"]),
                        text(&r["kind"]),
                        self.word(&text(&r["state"]))
                    )
                })
                .collect();
            let lock = if group["locked"] == Value::Bool(true) {
                self.paint(Paint::Warn, &format!("  locked: {}", text(&group["lock_reason"])))
            } else {
                String::new()
            };
            lines.push(format!(
                "group   {name} {} on {}{lock}",
                self.word(&text(&group["state"])),
                self.paint(Paint::Bold, &text(&group["owner"]))
            ));
            if !resources.is_empty() {
                lines.push(format!("          {}", resources.join(" -> ")));
            }
        }
        let faults: Vec<String> = list(view, "faults")
            .iter()
            .map(|f| {
                let paint = if f["severity"] == "error" { Paint::Bad } else { Paint::Warn };
                format!("{} {}", self.paint(paint, &text(&f["code"])), text(&f["where"]))
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

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_table_is_compact_and_plain_without_a_terminal() {
        let screen = Screen { start: Instant::now(), colour: false };
        let view = serde_json::json!({
            "reported_by": "beta",
            "nodes": [{"name": "alpha", "state": "working"}, {"name": "beta", "state": "standby"}],
            "links": [{"link": "net1", "state": "up", "rtt_ms": 0.25},
                      {"link": "disk", "state": "down", "rtt_ms": null}],
            "groups": [{"name": "web", "state": "running", "owner": "alpha", "locked": false,
                        "resources": [{"name": "hello", "kind": "process", "state": "stopped"}]}],
            "faults": [{"code": "W2101", "severity": "warning", "where": "link disk"}],
        });
        let owner = serde_json::json!({
            "groups": [{"name": "web", "resources": [
                {"name": "hello", "kind": "process", "state": "running"}]}],
        });
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
