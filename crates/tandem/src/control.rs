//! The commands that talk to a node: `tandem status`, `switchover`, `drain`, `undrain`,
//! `maintenance`, `clear`, and `tandem events`. They reach the local daemon through its
//! control socket, found by its runtime directory (`--runtime-dir`, default /run/tandem;
//! no configuration needed, so `tandem status` works with a missing or broken one, and
//! says so), or any node's HTTPS API with `--endpoint` and a token ([`crate::remote`]).
//! `tandem events` reads the local journal file itself (the state directory:
//! `--state-dir`, else `cluster.state_dir` of `--config`), or pages the API's journal.
//! What they send and read are the `contract` crate's types; each failure has its exit
//! code ([`crate::remote::EXIT_CODES`]).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use contract::{Event as Entry, Receiving, Request, Status};
use daemon::journal::read_journal;

use crate::remote::{Failure, Target as Socket};

/// Prints why a command failed; its exit code.
fn failed(failure: Failure) -> ExitCode {
    eprintln!("error: {}", failure.message());
    ExitCode::from(failure.exit_code())
}

/// Where the daemon's journal is.
#[derive(clap::Args, Clone)]
pub struct Where {
    /// The configuration file (to find the state directory).
    #[arg(long, default_value = config::DEFAULT_PATH, global = true)]
    config: PathBuf,
    /// The daemon's state directory (default: `cluster.state_dir` of the configuration).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
}

impl Where {
    fn state_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.state_dir {
            return Ok(dir.clone());
        }
        let (config, _) = config::load(&self.config).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(config.state_dir)
    }
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    place: Socket,
    /// The status document as JSON (docs/status.md; stable: keys are added, never renamed).
    #[arg(long)]
    json: bool,
    /// The local configuration: only looked at to say when it is missing or broken (the
    /// status comes from the running daemon either way).
    #[arg(long, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
}

pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let doc = match args.place.status() {
        Ok(doc) => doc,
        Err(failure) => return Ok(failed(failure)),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    if !args.place.is_remote() && config::load(&args.config).is_err() {
        eprintln!(
            "note: the local configuration {} is missing or invalid (`tandem validate {0}` \
             says why); below is the running cluster, as its daemon reports it",
            args.config.display()
        );
    }
    use std::io::IsTerminal;
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", render_status(&doc, color));
    Ok(ExitCode::SUCCESS)
}

/// `text` in the colour of what it says (a state, a severity), on a terminal only.
fn paint(text: &str, word: &str, color: bool) -> String {
    use anstyle::AnsiColor::{Blue, Green, Red, Yellow};
    if !color {
        return text.to_string();
    }
    let hue = match word {
        "working" | "standby" | "up" | "running" => Green,
        "booting" | "starting" | "stopping" => Blue,
        "offline" | "down" | "failed" | "error" => Red,
        "maintenance" | "drained" | "stopped" | "warning" | "LOCKED" => Yellow,
        _ => return text.to_string(),
    };
    let style = anstyle::Style::new().fg_color(Some(hue.into()));
    format!("{}{text}{}", style.render(), style.render_reset())
}

/// A fault in words: where, what, since when, seen by whom ("link private between
/// alpha and beta: heartbeat link down since 2026-11-25 10:42:07 UTC, seen by both").
fn fault_in_words(doc: &Status, f: &contract::FaultEntry) -> String {
    let what = engine::catalogue::lookup(&f.code).map_or("", |c| c.title);
    let since = f.since.replacen('T', " ", 1).replace('Z', " UTC");
    let seen = match f.seen_by.len() {
        0 => String::new(),
        n if n == doc.nodes.len() && n == 2 => ", seen by both".to_string(),
        n if n == doc.nodes.len() => ", seen by all".to_string(),
        1 if f.code == engine::catalogue::LINK_DOWN.code => {
            format!(", seen by {} only (the other way still carries heartbeats)", f.seen_by[0])
        }
        _ => format!(", seen by {}", f.seen_by.join(" and ")),
    };
    format!("{}: {what} since {since}{seen}", f.location)
}

/// An optional value as text, `-` when absent.
fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The status document as text for people (`color`: states in their colours).
pub fn render_status(doc: &Status, color: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!("cluster {} (as {} sees it)\n", doc.cluster, doc.reported_by));
    out.push_str("nodes:\n");
    for n in &doc.nodes {
        let state = paint(n.state.as_str(), n.state.as_str(), color);
        out.push_str(&format!("  {:<16} {state}\n", n.name));
    }
    out.push_str("links:\n");
    for l in &doc.links {
        let rtt = l.rtt_ms.map(|r| format!(" rtt {r:.2} ms")).unwrap_or_default();
        let loss = l.loss_percent.map(|p| format!(" loss {p:.1}%")).unwrap_or_default();
        out.push_str(&format!(
            "  {:<10} {:<24} {}{rtt}{loss}\n",
            l.link,
            l.nodes.join(" - "),
            paint(l.state.as_str(), l.state.as_str(), color)
        ));
    }
    out.push_str(&render_receiving(&doc.receiving));
    out.push_str("groups:\n");
    for g in &doc.groups {
        let lock = if g.locked {
            format!("  {}: {}", paint("LOCKED", "LOCKED", color), or_dash(g.lock_reason.as_ref()))
        } else {
            String::new()
        };
        let state = paint(&format!("{:<9}", g.state.as_str()), g.state.as_str(), color);
        out.push_str(&format!("  {:<16} {state} on {}{lock}\n", g.name, or_dash(g.owner.as_ref())));
        for r in &g.resources {
            out.push_str(&format!(
                "    {:<14} {:<10} {:<9} failures {}\n",
                r.name, r.kind, r.state, r.fail_count
            ));
        }
    }
    if !doc.faults.is_empty() {
        out.push_str("faults:\n");
        for f in &doc.faults {
            let severity = f.severity.as_str();
            let severity = paint(&format!("{severity:<8}"), severity, color);
            out.push_str(&format!("  {} {severity} {}\n", f.code, fault_in_words(doc, f)));
        }
    }
    out
}

/// The `receiving` part of the status document: per UDP link, what was rejected (by
/// reason, by source), the kernel's drops and a flood in progress; nothing for a link
/// where nothing was rejected or dropped.
fn render_receiving(links: &[Receiving]) -> String {
    let mut out = String::new();
    for l in links {
        let (rejected, drops) = (l.rejected, l.kernel_drops);
        if rejected == 0 && drops == 0 {
            continue;
        }
        let mut reasons: Vec<(&String, u64)> =
            l.rejected_by_reason.iter().map(|(k, n)| (k, *n)).collect();
        reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
        let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        let mut sources: Vec<String> = l
            .rejected_by_source
            .iter()
            .take(4)
            .map(|s| format!("{} {}", s.source, s.count))
            .collect();
        let others = l.rejected_other_sources;
        if others > 0 {
            sources.push(format!("other sources {others}"));
        }
        let flood = match &l.flood {
            None => String::new(),
            Some(f) => format!(
                "  FLOOD for {:.1} s, peak {}/s",
                f.for_ms as f64 / 1000.0,
                f.peak_per_second
            ),
        };
        out.push_str(&format!(
            "  {:<10} rejected {rejected} ({}) from {}; kernel drops {drops}{flood}\n",
            l.link,
            reasons.join(", "),
            sources.join(", ")
        ));
    }
    if out.is_empty() {
        return out;
    }
    format!("received on this node:\n{out}")
}

#[derive(clap::Args)]
pub struct SwitchoverArgs {
    #[command(flatten)]
    place: Socket,
    /// The group to move.
    group: String,
    /// The node to move it to (default: the next eligible node).
    #[arg(long)]
    to: Option<String>,
}

pub fn switchover(args: SwitchoverArgs) -> anyhow::Result<ExitCode> {
    send(&args.place, Request::Switchover { group: args.group, to: args.to })
}

#[derive(clap::Args)]
pub struct NodeArg {
    #[command(flatten)]
    place: Socket,
    node: String,
}

pub fn drain(args: NodeArg, on: bool) -> anyhow::Result<ExitCode> {
    let request =
        if on { Request::Drain { node: args.node } } else { Request::Undrain { node: args.node } };
    send(&args.place, request)
}

#[derive(clap::Args)]
pub struct MaintenanceArgs {
    #[command(flatten)]
    place: Socket,
    #[arg(value_parser = ["on", "off"])]
    mode: String,
}

pub fn maintenance(args: MaintenanceArgs) -> anyhow::Result<ExitCode> {
    send(&args.place, Request::Maintenance { on: args.mode == "on" })
}

#[derive(clap::Args)]
pub struct ClearArgs {
    #[command(flatten)]
    place: Socket,
    group: String,
    #[arg(long)]
    resource: Option<String>,
}

pub fn clear(args: ClearArgs) -> anyhow::Result<ExitCode> {
    send(&args.place, Request::Clear { group: args.group, resource: args.resource })
}

fn send(place: &Socket, request: Request) -> anyhow::Result<ExitCode> {
    match place.ask(&request) {
        Ok(_) => {
            println!("accepted; follow it with `tandem events --follow` or `tandem status`");
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => Ok(failed(failure)),
    }
}

#[derive(clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    place: Where,
    /// With --endpoint: the node whose journal to page through its API.
    #[command(flatten)]
    node: Socket,
    /// Keep printing new events as they are journaled.
    #[arg(long)]
    follow: bool,
    /// Ring the terminal bell on every new warning or error (with --follow).
    #[arg(long)]
    bell: bool,
    /// One JSON object per line (the journal's own format).
    #[arg(long)]
    json: bool,
}

fn print_entry(entry: &Entry, json: bool, bell: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(entry)?)?;
    } else {
        let mut context = Vec::new();
        context.extend(entry.group.clone());
        context.extend(entry.resource.clone());
        let context =
            if context.is_empty() { String::new() } else { format!(" [{}]", context.join("/")) };
        let place = entry.location.as_deref().map(|w| format!(" ({w})")).unwrap_or_default();
        writeln!(
            out,
            "{} {} {:<7} {}{context} {}{place}",
            entry.time, entry.code, entry.severity, entry.node, entry.message
        )?;
    }
    if bell && entry.severity != "info" {
        write!(out, "\x07")?;
    }
    out.flush()?;
    Ok(())
}

pub fn events(args: EventsArgs) -> anyhow::Result<ExitCode> {
    if args.node.is_remote() {
        return Ok(remote_events(&args).unwrap_or_else(failed));
    }
    let dir = args.place.state_dir()?;
    let mut last = 0;
    for entry in read_journal(&dir)? {
        print_entry(&entry, args.json, false)?;
        last = entry.id;
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        // A read that fails (the journal being rotated, a disk hiccup) is tried again:
        // --follow --bell keeps watching until it is stopped.
        let fresh: Vec<Entry> = match read_journal(&dir) {
            Ok(all) => all.into_iter().filter(|e| e.id > last).collect(),
            Err(e) => {
                eprintln!("tandem events: cannot read the journal in {}: {e}", dir.display());
                continue;
            }
        };
        for entry in fresh {
            print_entry(&entry, args.json, args.bell)?;
            last = entry.id;
        }
    }
}

/// `tandem events --endpoint`: the node's journal through its API, page by page, then
/// (with --follow) what comes, asked for every half second.
fn remote_events(args: &EventsArgs) -> Result<ExitCode, Failure> {
    let mut last = 0;
    loop {
        let page = args.node.events_after(last)?;
        for entry in &page {
            print_entry(entry, args.json, args.bell && last > 0)
                .map_err(|e| Failure::Refused(e.to_string()))?;
            last = entry.id;
        }
        if page.is_empty() {
            if !args.follow {
                return Ok(ExitCode::SUCCESS);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example document of docs/status.md as people read it: columns padded,
    /// absent values as `-`, rejections under "received on this node".
    #[test]
    fn the_status_text_shows_every_part() {
        let text = include_str!("../../../docs/schema/status.example.json");
        let mut doc: Status = serde_json::from_str(text).unwrap();
        doc.groups[0].owner = None;
        let shown = render_status(&doc, false);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[0], "cluster erp (as alpha sees it)");
        assert!(lines.contains(&"  alpha            working"), "{shown}");
        assert!(lines.contains(&"  db               running   on -"), "{shown}");
        assert!(lines.contains(&"    data           filesystem running   failures 0"), "{shown}");
        assert!(shown.contains("rtt 0.21 ms loss 0.0%"), "{shown}");
        assert!(shown.contains("rejected 3 (3 bad_magic) from 127.0.0.9:7405 3"), "{shown}");
        assert!(
            shown.contains(
                "W2101 warning  link private between alpha and beta: heartbeat link down since \
                 2026-11-25 10:42:07 UTC, seen by both"
            ),
            "{shown}"
        );
        // In colour (a terminal), the states are painted; the words stay.
        let painted = render_status(&doc, true);
        assert!(painted.contains("\u{1b}[") && painted.contains("seen by both"), "{painted}");
    }
}
