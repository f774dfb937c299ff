//! `cluster.toml` -> [`Config`]: the whole file, one module per section (`[cluster]`,
//! `[timing]`, `[[link]]`, `[[node]]`, `[arbitration]`, `[[group]]` with its
//! `[[group.resource]]`s, `[[alert]]`, `[api]`), the checks across them, and the
//! assembly of the engine's [`ClusterSpec`]. This file owns the order in which the
//! sections are read (later ones are checked against earlier ones), syntax errors,
//! keys misplaced at the top level, and the assembly; `common.rs` what every section
//! reader shares.
//!
//! Every reader reports its problems into the [`Ctx`] and returns what it could read
//! (with placeholders where it could not), so that later sections are still checked
//! and one run lists every error. A [`Config`] is only assembled when no error was
//! reported, so placeholders never escape. No file system access here (`host.rs`).

mod alerts;
mod api;
mod arbitration;
mod cluster;
mod common;
mod groups;
mod links;
mod nodes;
mod timing;

use engine::catalogue as codes;
use engine::{ClusterSpec, LinkKind, LinkSpec, NodeSpec};
use toml::de::DeTable;

use crate::diagnostic::Diagnostic;
use crate::model::{AlertConfig, ApiConfig, ArbitrationConfig, Config, NodeConfig};
use crate::reader::{Ctx, Fields, Table};
use alerts::read_alerts;
pub use alerts::ALERTS_MAX;
use api::read_api;
use arbitration::{read_arbitration, ArbitrationPart};
use cluster::{read_cluster, ClusterPart};
use groups::GroupsPart;
pub use groups::{
    FAILBACK_DELAY_DEFAULT, FAILURE_TIMEOUT_DEFAULT, MIGRATION_THRESHOLD_DEFAULT,
    MONITOR_INTERVAL_DEFAULT, MONITOR_TIMEOUT_DEFAULT, NIC_MONITOR_INTERVAL_DEFAULT,
    START_TIMEOUT_DEFAULT, STOP_TIMEOUT_DEFAULT,
};
pub use links::LINK_PORT_DEFAULT;
use links::{read_links, LinkPart};
pub use nodes::API_PORT_DEFAULT;
use nodes::{read_nodes, NodePart};
use timing::{read_timing, TimingPart};
pub use timing::{HEARTBEAT_INTERVAL_MIN, LEASE_TIMEOUT_MIN, PEER_TIMEOUT_HEARTBEATS_MIN};

/// Parses and checks a whole file. `Ok` holds the configuration and its warnings;
/// `Err` every error and warning. Diagnostics are in file order.
pub fn parse(source: &str, file_name: &str) -> Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut ctx = Ctx::new(source, file_name);
    let (document, syntax_errors) = DeTable::parse_recoverable(source);
    if !syntax_errors.is_empty() {
        // Every syntax error the parser recovered from; the tree after recovery is not
        // checked further, as its errors would mostly be echoes of these.
        for error in &syntax_errors {
            syntax_error(&mut ctx, error);
        }
        ctx.diagnostics.sort_by_key(|d| d.span.start);
        return Err(ctx.diagnostics);
    }
    let mut top = Fields::new(Table::root(document.get_ref()));
    let sections = read_sections(&mut ctx, &mut top);
    top.finish(&mut ctx, "the file's top level", &misplaced_top_level_key);
    let Sections { cluster, links, nodes, .. } = &sections;
    if links.len() == 1 {
        ctx.push(
            &codes::CONFIG_SINGLE_LINK,
            links[0].anchor.clone(),
            format!("link `{}` is the only heartbeat link", links[0].name),
            "the only link",
        )
        .help
        .push(
            "when it fails the nodes lose each other; add a second network and a disk link".into(),
        );
    }

    if !ctx.has_errors() {
        // Defensive: an error-free file gives every node an API address (explicit, or
        // from a UDP link); if a path through the readers missed one, refuse the file.
        for node in nodes.iter().filter(|n| n.api.is_none()) {
            ctx.push(
                &codes::CONFIG_MISSING_KEY,
                cluster.anchor.clone(),
                format!("missing key `api` in [[node]] `{}`", node.name),
                "no API address could be derived",
            );
        }
    }
    let mut diagnostics = std::mem::take(&mut ctx.diagnostics);
    // File order; the sort is stable, so diagnostics at one place keep their order.
    diagnostics.sort_by_key(|d| d.span.start);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    Ok((assemble(sections, source, file_name), diagnostics))
}

/// Every section as read, with placeholders where it could not be.
struct Sections {
    cluster: ClusterPart,
    timing: TimingPart,
    links: Vec<LinkPart>,
    nodes: Vec<NodePart>,
    arbitration: ArbitrationPart,
    groups: GroupsPart,
    alerts: Vec<AlertConfig>,
    api: ApiConfig,
}

/// Reads every section of the file's top level, in the order later ones depend on.
fn read_sections(ctx: &mut Ctx<'_>, top: &mut Fields<'_>) -> Sections {
    let cluster = read_cluster(ctx, top.get("cluster"));
    let timing = read_timing(ctx, top.get("timing"));
    let links = read_links(ctx, top.get("link"), &cluster.anchor);
    let nodes = read_nodes(ctx, top.get("node"), &links, &cluster.anchor);
    let arbitration =
        read_arbitration(ctx, top.get("arbitration"), &links, nodes.len(), &cluster.anchor);
    let groups = groups::read_groups(ctx, top.get("group"), &nodes);
    let alerts = read_alerts(ctx, top.get("alert"));
    let api = read_api(ctx, top.get("api"));
    Sections { cluster, timing, links, nodes, arbitration, groups, alerts, api }
}

/// The hint for an unknown key at the file's top level that belongs somewhere else.
fn misplaced_top_level_key(key: &str) -> Option<String> {
    match key {
        "name" | "key_file" | "state_dir" => {
            Some(format!("`{key}` belongs in the [cluster] table"))
        }
        "heartbeat_interval" | "peer_timeout" | "lease_timeout" => {
            Some(format!("`{key}` belongs in the [timing] table"))
        }
        "nodes" | "links" | "groups" | "alerts" | "resource" | "resources" => {
            let singular = key.trim_end_matches('s');
            let singular = if singular == "resource" { "group.resource" } else { singular };
            Some(format!("sections are singular: write [[{singular}]] for each one"))
        }
        _ => None,
    }
}

/// The configuration of an error-free file.
fn assemble(sections: Sections, source: &str, file_name: &str) -> Config {
    let Sections { cluster, timing, links, nodes, arbitration, groups, alerts, api } = sections;
    let GroupsPart { specs, configs } = groups;
    let config = Config {
        cluster: ClusterSpec {
            name: cluster.name,
            timing: timing.effective(),
            nodes: nodes.iter().map(|n| NodeSpec { name: n.name.clone() }).collect(),
            links: links
                .iter()
                .map(|l| LinkSpec { name: l.name.clone(), kind: l.kind.unwrap_or(LinkKind::Udp) })
                .collect(),
            arbitration: arbitration.kind,
            groups: specs,
        },
        file_name: file_name.to_string(),
        source: source.to_string(),
        key_file: cluster.key_file,
        state_dir: cluster.state_dir,
        nodes: nodes
            .into_iter()
            .map(|n| NodeConfig {
                addresses: n.addresses,
                api: n.api.expect("an error-free file gives every node an API address"),
            })
            .collect(),
        links: links.into_iter().filter_map(|l| l.config).collect(),
        arbitration: ArbitrationConfig {
            witness: arbitration.witness,
            disk_link: arbitration.disk_link,
            kind_span: arbitration.kind_span,
        },
        groups: configs,
        alerts,
        api,
    };
    // Invariants of an error-free file; a failure here is a bug in this crate.
    assert_eq!(config.links.len(), config.cluster.links.len(), "every link has its config");
    config
}

fn syntax_error(ctx: &mut Ctx<'_>, error: &toml::de::Error) {
    let span = error.span().unwrap_or(0..0);
    let text = error.message().trim();
    if text == "duplicate key" {
        let key = ctx.source.get(span.clone()).unwrap_or("").trim_matches(['[', ']', ' ']);
        ctx.push(
            &codes::CONFIG_SYNTAX,
            span.clone(),
            format!("duplicate key `{key}`"),
            "defined before",
        )
        .help
        .push(
            "a key or [table] may appear only once; repeated sections are written [[name]]".into(),
        );
        return;
    }
    // The parser says e.g. "invalid basic string, expected `\"`".
    let (message, label) = match text.split_once(", expected ") {
        Some((what, expected)) => (what.to_string(), format!("expected {expected}")),
        None => (text.to_string(), "here".to_string()),
    };
    let quoted = message.starts_with("string values must be quoted");
    let bare = ctx.source.get(span.clone()).unwrap_or("").to_string();
    let d = ctx.push(&codes::CONFIG_SYNTAX, span, message, label);
    if quoted && !bare.is_empty() {
        d.help.push(format!("write \"{bare}\""));
    }
}
