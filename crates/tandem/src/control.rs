//! The commands that talk to the local daemon through its control socket (until the
//! HTTP API exists): `tandem status`, `switchover`, `drain`, `undrain`, `maintenance`,
//! `clear`, and `tandem events`, which reads the journal file itself. The daemon is
//! found by its runtime directory (`--runtime-dir`, default /run/tandem; no
//! configuration needed, so `tandem status` works with a broken one), the journal by the
//! state directory (`--state-dir`, else `cluster.state_dir` of `--config`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use daemon::control::{call, Request};
use daemon::journal::{read_journal, Entry};
use serde_json::Value;

/// Where the daemon's control socket is.
#[derive(clap::Args, Clone)]
pub struct Socket {
    /// The daemon's runtime directory (`tandem node --runtime-dir`).
    #[arg(long, default_value = daemon::access::DEFAULT_RUNTIME_DIR, global = true)]
    runtime_dir: PathBuf,
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
    /// The status document as JSON (PRODUCT.md section 5).
    #[arg(long)]
    json: bool,
}

pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let answer = call(&args.place.runtime_dir, &Request::Status)?;
    let doc = &answer["status"];
    if args.json {
        println!("{}", serde_json::to_string_pretty(doc)?);
    } else {
        print!("{}", render_status(doc));
    }
    Ok(ExitCode::SUCCESS)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// The status document as text for people.
pub fn render_status(doc: &Value) -> String {
    let mut out = String::new();
    let list = |key: &str| doc[key].as_array().cloned().unwrap_or_default();
    out.push_str(&format!(
        "cluster {} (as {} sees it)\n",
        text(&doc["cluster"]),
        text(&doc["reported_by"])
    ));
    out.push_str("nodes:\n");
    for n in list("nodes") {
        out.push_str(&format!("  {:<16} {}\n", text(&n["name"]), text(&n["state"])));
    }
    out.push_str("links:\n");
    for l in list("links") {
        let nodes: Vec<String> =
            l["nodes"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
        let rtt = l["rtt_ms"].as_f64().map(|r| format!(" rtt {r:.2} ms")).unwrap_or_default();
        let loss = l["loss_percent"].as_f64().map(|p| format!(" loss {p:.1}%")).unwrap_or_default();
        out.push_str(&format!(
            "  {:<10} {:<24} {}{rtt}{loss}\n",
            text(&l["link"]),
            nodes.join(" - "),
            text(&l["state"])
        ));
    }
    out.push_str(&render_receiving(&list("receiving")));
    out.push_str("groups:\n");
    for g in list("groups") {
        let lock = if g["locked"] == Value::Bool(true) {
            format!("  LOCKED: {}", text(&g["lock_reason"]))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  {:<16} {:<9} on {}{lock}\n",
            text(&g["name"]),
            text(&g["state"]),
            text(&g["owner"])
        ));
        for r in g["resources"].as_array().cloned().unwrap_or_default() {
            out.push_str(&format!(
                "    {:<14} {:<10} {:<9} failures {}\n",
                text(&r["name"]),
                text(&r["kind"]),
                text(&r["state"]),
                text(&r["fail_count"])
            ));
        }
    }
    let faults = list("faults");
    if !faults.is_empty() {
        out.push_str("faults:\n");
        for f in faults {
            out.push_str(&format!(
                "  {} {:<8} {} since {}\n",
                text(&f["code"]),
                text(&f["severity"]),
                text(&f["where"]),
                text(&f["since"])
            ));
        }
    }
    out
}

/// The `receiving` part of the status document: per UDP link, what was rejected (by
/// reason, by source), the kernel's drops and a flood in progress; nothing for a link
/// where nothing was rejected or dropped.
fn render_receiving(links: &[Value]) -> String {
    let mut out = String::new();
    let count = |v: &Value| v.as_u64().unwrap_or(0);
    for l in links {
        let (rejected, drops) = (count(&l["rejected"]), count(&l["kernel_drops"]));
        if rejected == 0 && drops == 0 {
            continue;
        }
        let mut reasons: Vec<(String, u64)> = l["rejected_by_reason"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), count(v))).collect())
            .unwrap_or_default();
        reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
        let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        let mut sources: Vec<String> = l["rejected_by_source"]
            .as_array()
            .map(|a| {
                a.iter()
                    .take(4)
                    .map(|s| format!("{} {}", text(&s["source"]), count(&s["count"])))
                    .collect()
            })
            .unwrap_or_default();
        let others = count(&l["rejected_other_sources"]);
        if others > 0 {
            sources.push(format!("other sources {others}"));
        }
        let flood = match &l["flood"] {
            Value::Null => String::new(),
            f => format!(
                "  FLOOD for {:.1} s, peak {}/s",
                count(&f["for_ms"]) as f64 / 1000.0,
                count(&f["peak_per_second"])
            ),
        };
        out.push_str(&format!(
            "  {:<10} rejected {rejected} ({}) from {}; kernel drops {drops}{flood}\n",
            text(&l["link"]),
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
    call(&place.runtime_dir, &request)?;
    println!("accepted; follow it with `tandem events --follow` or `tandem status`");
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    place: Where,
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
        let fresh: Vec<Entry> = read_journal(&dir)?.into_iter().filter(|e| e.id > last).collect();
        for entry in fresh {
            print_entry(&entry, args.json, args.bell)?;
            last = entry.id;
        }
    }
}
