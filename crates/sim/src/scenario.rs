//! Scenario files (`crates/sim/scenarios/*.scn`): a cluster, a list of timed actions
//! and the expected transition summary, in the spirit of Pacemaker's scenario tests and
//! rust-analyzer's data-driven tests. This module parses the format and runs a
//! scenario on the scripted simulator; the test harness compares the summary with the
//! `---- expect` section (`UPDATE_EXPECT=1` rewrites it).
//!
//! The format, one statement per line, `#` starts a comment:
//!
//! ```text
//! # what the scenario shows
//! cluster two-node                 # a built-in cluster, or a path such as examples/x.toml
//! arbitration none                 # optional: disk | witness | none (overrides the cluster)
//! at 10s crash alpha               # at TIME ACTION ...
//! at 12s admin beta switchover db to alpha
//! run 40s                          # run until this time, then print the final state
//! ---- expect
//!     ...the summary...
//! ```
//!
//! Actions: `crash N`, `restart N`, `kill-daemon N`, `poison N [from M]` (a poison
//! pill in N's mailbox for its current daemon), `shutdown N` (a stop signal, as
//! SIGTERM to `tandem node`: the engine hands its groups over and the daemon exits once
//! it is quiescent, its guard disarmed, or at the shutdown deadline with its guard armed;
//! `restart N` starts it again), `pause-daemon N [FOR]` (its loop
//! stops, as with SIGSTOP; with FOR it resumes after that long), `resume-daemon N`,
//! `cut LINK A B`, `cut-one-way LINK
//! FROM TO`, `heal LINK A B` (LINK may be `all`), `lose-storage N`, `restore-storage N`,
//! `fail-monitor N G/R`, `fail-start N G/R [COUNT|always]`, `fail-stop N G/R
//! [COUNT|always]`, `hang N G/R [COUNT]`, `crash-resource N G/R`, `nic-down N G/R`,
//! `nic-up N G/R`, `admin N switchover G [to N2]`, `admin N drain N2`, `admin N undrain
//! N2`, `admin N maintenance on|off`, `admin N clear G[/R]`. Times are `500ms`, `10s` or
//! `2m`.
//!
//! It must not read files itself (the caller resolves a cluster path) nor decide what
//! a scenario should produce.

use std::time::Duration;

use engine::{AdminCommand, ArbitrationKind, ClusterSpec, GroupId, LinkId, NodeId, ResourceId};

use crate::core::Core;
use crate::sim::{Options, Sim};

/// The line that separates the script from the expected summary.
pub const EXPECT_MARKER: &str = "---- expect";

/// The most actions one scenario may hold.
pub const ACTIONS_MAX: usize = 1_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// A built-in cluster name or a path.
    pub cluster: String,
    pub arbitration: Option<ArbitrationKind>,
    /// (time, line number, the action's words)
    pub actions: Vec<(Duration, usize, Vec<String>)>,
    pub run_until: Duration,
    /// The text before the expect marker, verbatim.
    pub script: String,
    /// The expected summary (empty if the file has no expect section yet).
    pub expected: String,
}

/// Splits a scenario file and checks its script's syntax (not its names: those need the
/// cluster, see [`run`]).
pub fn parse(text: &str) -> Result<Scenario, String> {
    let (script, expected) = match text.find(EXPECT_MARKER) {
        Some(i) => {
            let rest = &text[i + EXPECT_MARKER.len()..];
            (&text[..i], rest.strip_prefix('\n').unwrap_or(rest))
        }
        None => (text, ""),
    };
    let mut cluster = None;
    let mut arbitration = None;
    let mut actions = Vec::new();
    let mut run_until = None;
    for (index, raw) in script.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let fail = |why: &str| format!("line {line_no}: {why}: `{line}`");
        match words[0] {
            "cluster" if words.len() == 2 => cluster = Some(words[1].to_owned()),
            "arbitration" if words.len() == 2 => {
                arbitration = Some(match words[1] {
                    "disk" => ArbitrationKind::Disk,
                    "witness" => ArbitrationKind::Witness,
                    "none" => ArbitrationKind::None,
                    _ => return Err(fail("arbitration is disk, witness or none")),
                });
            }
            "at" if words.len() >= 3 => {
                let time = parse_duration(words[1]).ok_or_else(|| fail("bad time"))?;
                if actions.len() >= ACTIONS_MAX {
                    return Err(fail("too many actions"));
                }
                if actions.last().is_some_and(|(t, _, _)| *t > time) {
                    return Err(fail("actions must be in time order"));
                }
                actions.push((time, line_no, words[2..].iter().map(|w| (*w).to_owned()).collect()));
            }
            "run" if words.len() == 2 => {
                run_until = Some(parse_duration(words[1]).ok_or_else(|| fail("bad time"))?);
            }
            _ => return Err(fail("expected `cluster`, `arbitration`, `at` or `run`")),
        }
    }
    let cluster = cluster.ok_or("no `cluster` line")?;
    let run_until = run_until.ok_or("no `run` line")?;
    if actions.last().is_some_and(|(t, _, _)| *t > run_until) {
        return Err("an action comes after the `run` time".to_owned());
    }
    Ok(Scenario {
        cluster,
        arbitration,
        actions,
        run_until,
        script: script.to_owned(),
        expected: expected.to_owned(),
    })
}

/// `500ms`, `10s`, `2m`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => Some(Duration::from_secs(number.checked_mul(60)?)),
        _ => None,
    }
}

/// Runs a parsed scenario on `spec` (the cluster it names, already loaded) and returns
/// the transition summary followed by the final state and any violation.
pub fn run<C: Core>(scenario: &Scenario, mut spec: ClusterSpec) -> Result<String, String> {
    if let Some(kind) = scenario.arbitration {
        spec.arbitration = kind;
    }
    let mut sim: Sim<C> = Sim::scripted(spec, Options::scripted());
    for (time, line_no, words) in &scenario.actions {
        sim.run_until(*time);
        apply(&mut sim, words)
            .map_err(|why| format!("line {line_no}: {why}: `{}`", words.join(" ")))?;
    }
    sim.run_until(scenario.run_until);
    let mut out = sim.summary();
    out.push_str(&final_state(&sim));
    for v in sim.violations() {
        out.push_str(&format!(
            "!! {} at {} ms: {}\n",
            v.guarantee.code(),
            v.at_ns / 1_000_000,
            v.message
        ));
    }
    Ok(out)
}

/// Where each group runs at the end (ground truth).
fn final_state<C: Core>(sim: &Sim<C>) -> String {
    let spec = sim.spec().clone();
    let mut out = format!("---- at {} ms\n", sim.now().as_millis());
    for g in spec.group_ids() {
        let group = spec.group(g);
        let mut parts = Vec::new();
        for n in spec.node_ids() {
            let running: Vec<&str> = (0..group.resources.len())
                .map(|r| ResourceId(r as u16))
                .filter(|r| sim.is_running(n, g, *r))
                .map(|r| group.resource(r).name.as_str())
                .collect();
            if !running.is_empty() {
                parts.push(format!("{} ({})", spec.node(n).name, running.join(", ")));
            }
        }
        let place = if parts.is_empty() { "nowhere".to_owned() } else { parts.join("; ") };
        out.push_str(&format!("{}: runs on {place}\n", group.name));
    }
    out
}

struct Names<'a>(&'a ClusterSpec);

impl Names<'_> {
    fn node(&self, name: &str) -> Result<NodeId, String> {
        self.0.node_id(name).ok_or_else(|| format!("no node named {name}"))
    }
    fn group(&self, name: &str) -> Result<GroupId, String> {
        self.0.group_id(name).ok_or_else(|| format!("no group named {name}"))
    }
    fn resource(&self, path: &str) -> Result<(GroupId, ResourceId), String> {
        let (g, r) =
            path.split_once('/').ok_or_else(|| format!("{path}: expected GROUP/RESOURCE"))?;
        let group = self.group(g)?;
        let index = self.0.group(group).resources.iter().position(|res| res.name == r);
        let resource = index.ok_or_else(|| format!("group {g} has no resource {r}"))?;
        Ok((group, ResourceId(resource as u16)))
    }
    /// A link name, or `all` (None).
    fn link(&self, name: &str) -> Result<Option<LinkId>, String> {
        if name == "all" {
            return Ok(None);
        }
        let index = self.0.links.iter().position(|l| l.name == name);
        index.map(|i| Some(LinkId(i as u16))).ok_or_else(|| format!("no link named {name}"))
    }
}

fn count(word: Option<&String>) -> Result<u32, String> {
    match word.map(String::as_str) {
        None => Ok(1),
        Some("always") => Ok(u32::MAX),
        Some(n) => n.parse().map_err(|_| format!("{n}: expected a count or `always`")),
    }
}

/// `poison N [from M]`: the node and the sender (`None`: an operator).
fn poison_args(names: &Names<'_>, w: &[&str]) -> Result<(NodeId, Option<NodeId>), String> {
    let node = names.node(w.get(1).copied().ok_or("missing argument")?)?;
    let from = match (w.get(2), w.get(3)) {
        (None, _) => None,
        (Some(&"from"), Some(other)) => Some(names.node(other)?),
        _ => return Err("expected `poison N` or `poison N from M`".to_owned()),
    };
    Ok((node, from))
}

/// `pause-daemon N [FOR]`.
fn pause<C: Core>(sim: &mut Sim<C>, names: &Names<'_>, w: &[&str]) -> Result<(), String> {
    let node = names.node(w.get(1).copied().ok_or("missing argument")?)?;
    match w.get(2) {
        None => sim.pause_daemon(node),
        Some(text) => {
            let lasting = parse_duration(text)
                .ok_or_else(|| format!("{text}: expected a time such as 5s"))?;
            sim.pause_daemon_for(node, lasting)
        }
    };
    Ok(())
}

fn apply<C: Core>(sim: &mut Sim<C>, words: &[String]) -> Result<(), String> {
    let spec = sim.spec().clone();
    let names = Names(&spec);
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let arg = |i: usize| w.get(i).copied().ok_or_else(|| "missing argument".to_owned());
    match w[0] {
        "crash" => drop(sim.crash(names.node(arg(1)?)?)),
        "restart" => drop(sim.restart(names.node(arg(1)?)?)),
        "kill-daemon" => drop(sim.kill_daemon(names.node(arg(1)?)?)),
        "poison" => {
            let (node, from) = poison_args(&names, &w)?;
            sim.poison_pill(node, from);
        }
        "shutdown" => drop(sim.shutdown(names.node(arg(1)?)?)),
        "pause-daemon" => pause(sim, &names, &w)?,
        "resume-daemon" => drop(sim.resume_daemon(names.node(arg(1)?)?)),
        "cut" | "heal" => {
            let link = names.link(arg(1)?)?;
            let (a, b) = (names.node(arg(2)?)?, names.node(arg(3)?)?);
            match (w[0], link) {
                ("cut", Some(l)) => drop(sim.cut(l, a, b)),
                ("cut", None) => drop(sim.cut_all(a, b)),
                (_, Some(l)) => drop(sim.heal(l, a, b)),
                (_, None) => drop(sim.heal_all_links(a, b)),
            }
        }
        "cut-one-way" => {
            let link = names.link(arg(1)?)?;
            let (from, to) = (names.node(arg(2)?)?, names.node(arg(3)?)?);
            match link {
                Some(l) => drop(sim.cut_one_way(l, from, to)),
                None => {
                    for l in spec.link_ids() {
                        sim.cut_one_way(l, from, to);
                    }
                }
            }
        }
        "lose-storage" => drop(sim.lose_storage(names.node(arg(1)?)?)),
        "restore-storage" => drop(sim.restore_storage(names.node(arg(1)?)?)),
        "fail-monitor" | "fail-start" | "fail-stop" | "hang" | "crash-resource" | "nic-down"
        | "nic-up" => {
            let node = names.node(arg(1)?)?;
            let (g, r) = names.resource(arg(2)?)?;
            let n = count(words.get(3))?;
            match w[0] {
                "fail-monitor" => drop(sim.fail_monitor(node, g, r)),
                "fail-start" => drop(sim.fail_start(node, g, r, n)),
                "fail-stop" => drop(sim.fail_stop(node, g, r, n)),
                "hang" => drop(sim.hang(node, g, r, n)),
                "crash-resource" => drop(sim.crash_resource(node, g, r)),
                "nic-down" => drop(sim.nic_down(node, g, r)),
                _ => drop(sim.nic_up(node, g, r)),
            }
        }
        "admin" => {
            let node = names.node(arg(1)?)?;
            let command = match arg(2)? {
                "switchover" => {
                    let group = names.group(arg(3)?)?;
                    let to = match (w.get(4), w.get(5)) {
                        (Some(&"to"), Some(target)) => Some(names.node(target)?),
                        (None, None) => None,
                        _ => return Err("expected `switchover GROUP [to NODE]`".into()),
                    };
                    AdminCommand::Switchover { group, to }
                }
                "drain" => AdminCommand::Drain(names.node(arg(3)?)?),
                "undrain" => AdminCommand::Undrain(names.node(arg(3)?)?),
                "maintenance" => match arg(3)? {
                    "on" => AdminCommand::Maintenance(true),
                    "off" => AdminCommand::Maintenance(false),
                    _ => return Err("expected `maintenance on|off`".into()),
                },
                "clear" => {
                    let target = arg(3)?;
                    if target.contains('/') {
                        let (group, r) = names.resource(target)?;
                        AdminCommand::Clear { group, resource: Some(r) }
                    } else {
                        AdminCommand::Clear { group: names.group(target)?, resource: None }
                    }
                }
                other => return Err(format!("unknown admin command {other}")),
            };
            sim.admin(node, command);
        }
        other => return Err(format!("unknown action {other}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::two_node;
    use crate::core::greedy::Greedy;

    #[test]
    fn parses_script_and_expect() {
        let text = "# demo\ncluster two-node\narbitration none\nat 1s crash alpha # boom\nrun 3s\n---- expect\nline\n";
        let s = parse(text).unwrap();
        assert_eq!(s.cluster, "two-node");
        assert_eq!(s.arbitration, Some(ArbitrationKind::None));
        assert_eq!(
            s.actions,
            vec![(Duration::from_secs(1), 4, vec!["crash".to_owned(), "alpha".to_owned()])]
        );
        assert_eq!(s.run_until, Duration::from_secs(3));
        assert_eq!(s.expected, "line\n");
        assert!(s.script.ends_with("run 3s\n"));
    }

    #[test]
    fn rejects_bad_scripts() {
        assert!(parse("cluster two-node\n").unwrap_err().contains("run"));
        assert!(parse("cluster two-node\nat 5s crash a\nat 1s crash a\nrun 9s\n")
            .unwrap_err()
            .contains("time order"));
        assert!(parse("cluster two-node\nat 5x crash a\nrun 9s\n").unwrap_err().contains("line 2"));
        assert!(parse("cluster two-node\nbogus\nrun 9s\n").is_err());
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn runs_and_names_unknown_things() {
        let s = parse("cluster two-node\nat 1s crash gamma\nrun 2s\n").unwrap();
        let err = run::<Greedy>(&s, two_node()).unwrap_err();
        assert!(err.contains("no node named gamma"), "{err}");
        let s = parse("cluster two-node\nat 1s fail-start alpha db/nope\nrun 2s\n").unwrap();
        assert!(run::<Greedy>(&s, two_node()).unwrap_err().contains("no resource nope"));
        let s = parse("cluster two-node\nat 5s crash alpha\nrun 10s\n").unwrap();
        let out = run::<Greedy>(&s, two_node()).unwrap();
        assert!(out.contains("** crash alpha"), "{out}");
        assert!(out.contains("---- at 10000 ms\ndb: runs on"), "{out}");
    }

    /// The greedy core never becomes quiescent: a stop signal ends its daemon only at the
    /// shutdown deadline, or at once on a second signal (the clean exit, and what the
    /// engine does on the way, are in `scenarios/shutdown-*.scn`).
    #[test]
    fn a_daemon_that_does_not_settle_exits_at_its_shutdown_deadline_or_a_second_signal() {
        let budget = two_node().shutdown_budget().as_millis() as u64;
        // Off the core's own wake-ups (heartbeats, renewals), so only the deadline wakes it.
        let s = parse("cluster two-node\nat 1234ms shutdown alpha\nrun 100s\n").unwrap();
        let out = run::<Greedy>(&s, two_node()).unwrap();
        let due = format!("{:>8} ms  alpha  I2114  shutdown took too long", 1_234 + budget);
        assert!(out.contains(&due), "{due}\n{out}");
        let s = parse("cluster two-node\nat 1s shutdown alpha\nat 2s shutdown alpha\nrun 60s\n")
            .unwrap();
        let out = run::<Greedy>(&s, two_node()).unwrap();
        let second = "    2000 ms  alpha  I2114  second stop signal: exiting at once";
        assert!(out.contains(second), "{out}");
        assert_eq!(out.matches("I2114").count(), 1, "{out}");
    }
}
