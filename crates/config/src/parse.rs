//! `cluster.toml` -> [`Config`]: the sections `[cluster]`, `[timing]`, `[[link]]`,
//! `[[node]]`, `[arbitration]`, `[[alert]]` and `[api]`, the checks across them, and
//! the assembly of the engine's [`ClusterSpec`]. Groups and resources are in
//! `groups.rs`.
//!
//! Every reader reports its problems into the [`Ctx`] and returns what it could read
//! (with placeholders where it could not), so that later sections are still checked
//! and one run lists every error. A [`Config`] is only assembled when no error was
//! reported, so placeholders never escape. No file system access here (`host.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use engine::catalogue::{self as codes, Severity};
use engine::{
    ArbitrationKind, ClusterSpec, LinkId, LinkKind, LinkSpec, NodeSpec, Timing, LINKS_MAX,
    NODES_MAX,
};
use toml::de::DeTable;

use crate::diagnostic::Diagnostic;
use crate::groups::{self, GroupsPart};
use crate::model::{
    AlertConfig, AlertTarget, ApiConfig, ArbitrationConfig, Config, LinkConfig, NodeConfig, Span,
    Spanned,
};
use crate::reader::{suggest, Ctx, Entry, Fields, Table};
use crate::values::{self, format_duration, AddressError};

/// A link's port when `port` is absent.
pub const LINK_PORT_DEFAULT: u16 = 5405;
/// The API port of a node without `api`.
pub const API_PORT_DEFAULT: u16 = 7400;
/// At most this many `[[alert]]` tables.
pub const ALERTS_MAX: usize = 32;
/// `heartbeat_interval` may not be shorter.
pub const HEARTBEAT_INTERVAL_MIN: Duration = Duration::from_millis(10);
/// `lease_timeout` may not be shorter.
pub const LEASE_TIMEOUT_MIN: Duration = Duration::from_millis(200);
/// `peer_timeout` must be at least this many heartbeat intervals.
pub const PEER_TIMEOUT_HEARTBEATS_MIN: u32 = 3;

pub(crate) const DEFAULT_KEY_FILE: &str = "/etc/tandem/cluster.key";
pub(crate) const DEFAULT_STATE_DIR: &str = "/var/lib/tandem";

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

/// Reads `name` and checks it (E1007). An invalid name is still returned (the error
/// is reported), so that references to it do not cascade into more errors.
pub(crate) fn read_name(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    what: &str,
) -> Option<(String, Span)> {
    let entry = fields.require(ctx, "name", what)?;
    let name = ctx.string(&entry)?;
    if let Err(e) = values::check_name(name) {
        ctx.push_value_error(&codes::CONFIG_INVALID_NAME, entry.span.clone(), e);
    }
    Some((name.to_string(), entry.span))
}

/// Reports a second use of a name (E1006); `first` is where it was defined first and
/// `scope` where names must be unique ("" or " in group `db`").
pub(crate) fn duplicate_name(
    ctx: &mut Ctx<'_>,
    what: &str,
    scope: &str,
    name: &str,
    span: Span,
    first: &Span,
) {
    let line = ctx.line_of(first.start);
    ctx.push(
        &codes::CONFIG_DUPLICATE_NAME,
        span,
        format!("{what} `{name}` is defined twice{scope}"),
        "second definition",
    )
    .help
    .push(format!("the first {what} named `{name}`{scope} is on line {line}"));
}

/// Reads a word from a fixed set (E1021 otherwise, with a suggestion).
pub(crate) fn read_choice<T: Copy>(
    ctx: &mut Ctx<'_>,
    entry: &Entry<'_>,
    what: &str,
    choices: &[(&'static str, T)],
) -> Option<T> {
    let text = ctx.string(entry)?;
    if let Some((_, value)) = choices.iter().find(|(word, _)| *word == text) {
        return Some(*value);
    }
    let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
    let list = words.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", ");
    let d = ctx.push(
        &codes::CONFIG_UNKNOWN_VALUE,
        entry.span.clone(),
        format!("unknown {what} \"{text}\""),
        format!("expected one of {list}"),
    );
    if let Some(s) = suggest(text, words.iter().copied()) {
        d.help.push(format!("did you mean \"{s}\"?"));
    }
    None
}

/// Reports an address error with the code of its kind.
pub(crate) fn address_error(ctx: &mut Ctx<'_>, span: Span, error: AddressError) {
    let (code, error) = match error {
        AddressError::Ip(e) => (&codes::CONFIG_BAD_IP, e),
        AddressError::Port(e) => (&codes::CONFIG_BAD_PORT, e),
        AddressError::Shape(e) => (&codes::CONFIG_BAD_SOCKET_ADDRESS, e),
    };
    ctx.push_value_error(code, span, error);
}

fn socket_address(ctx: &mut Ctx<'_>, entry: &Entry<'_>) -> Option<SocketAddr> {
    let text = ctx.string(entry)?;
    values::parse_socket_address(text).map_err(|e| address_error(ctx, entry.span.clone(), e)).ok()
}

/// Reports the first table beyond a limit (E1030).
pub(crate) fn limit_exceeded(
    ctx: &mut Ctx<'_>,
    anchor: Span,
    what: &str,
    count: usize,
    max: usize,
) {
    ctx.push(
        &codes::CONFIG_LIMIT_EXCEEDED,
        anchor,
        format!("too many {what}: {count}, at most {max}"),
        format!("beyond the limit of {max}"),
    );
}

struct ClusterPart {
    name: String,
    /// The `[cluster]` header, or the file's start; where cluster-wide problems point.
    anchor: Span,
    key_file: Spanned<PathBuf>,
    state_dir: PathBuf,
}

fn read_cluster(ctx: &mut Ctx<'_>, entry: Option<Entry<'_>>) -> ClusterPart {
    let mut part = ClusterPart {
        name: String::new(),
        anchor: 0..0,
        key_file: Spanned { value: DEFAULT_KEY_FILE.into(), span: 0..0 },
        state_dir: DEFAULT_STATE_DIR.into(),
    };
    let Some(entry) = entry else {
        ctx.push(
            &codes::CONFIG_MISSING_SECTION,
            0..0,
            "missing [cluster] section",
            "the file has no [cluster] table",
        )
        .help
        .push("start the file with [cluster] and name = \"...\"".into());
        return part;
    };
    let Some(table) = ctx.table(&entry) else { return part };
    part.anchor = table.anchor.clone();
    part.key_file.span = table.anchor.clone();
    let mut fields = Fields::new(table);
    if let Some((name, _)) = read_name(ctx, &mut fields, "[cluster]") {
        part.name = name;
    }
    if let Some(path) = fields.get("key_file").and_then(|e| ctx.path(&e)) {
        part.key_file = path;
    }
    if let Some(path) = fields.get("state_dir").and_then(|e| ctx.path(&e)) {
        part.state_dir = path.value;
    }
    fields.finish(ctx, "[cluster]", &|_| None);
    part
}

/// Each value: `Some` when absent (the default) or valid, `None` when invalid.
struct TimingPart {
    heartbeat_interval: Option<Duration>,
    peer_timeout: Option<Duration>,
    lease_timeout: Option<Duration>,
}

impl TimingPart {
    /// The timing to use for later checks (defaults in place of invalid values).
    fn effective(&self) -> Timing {
        let default = Timing::default();
        Timing {
            heartbeat_interval: self.heartbeat_interval.unwrap_or(default.heartbeat_interval),
            peer_timeout: self.peer_timeout.unwrap_or(default.peer_timeout),
            lease_timeout: self.lease_timeout.unwrap_or(default.lease_timeout),
        }
    }
}

fn read_timing(ctx: &mut Ctx<'_>, entry: Option<Entry<'_>>) -> TimingPart {
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

pub(crate) struct LinkPart {
    pub name: String,
    pub anchor: Span,
    /// `None` when the kind was missing or invalid.
    pub kind: Option<LinkKind>,
    pub config: Option<LinkConfig>,
}

/// A required list of sections that is missing or written as an empty array (a
/// wrong type is reported as such, not as missing).
fn is_absent_or_empty(entry: Option<&Entry<'_>>) -> bool {
    match entry.map(|e| e.item) {
        None => true,
        Some(item) => item.as_array().is_some_and(|a| a.is_empty()),
    }
}

fn missing_section(ctx: &mut Ctx<'_>, anchor: &Span, section: &str, what: &str) {
    ctx.push(
        &codes::CONFIG_MISSING_SECTION,
        anchor.clone(),
        format!("missing [[{section}]]: the cluster has no {what}"),
        format!("no [[{section}]] in this file"),
    )
    .help
    .push(format!("add at least one [[{section}]] table"));
}

fn read_links(ctx: &mut Ctx<'_>, entry: Option<Entry<'_>>, cluster_anchor: &Span) -> Vec<LinkPart> {
    let tables = entry.as_ref().map(|e| ctx.tables(e)).unwrap_or_default();
    if is_absent_or_empty(entry.as_ref()) {
        missing_section(ctx, cluster_anchor, "link", "heartbeat links");
    }
    let mut links: Vec<LinkPart> = Vec::with_capacity(tables.len());
    let mut names: HashMap<String, Span> = HashMap::new();
    for table in tables {
        if links.len() == LINKS_MAX {
            limit_exceeded(ctx, table.anchor.clone(), "links", links.len() + 1, LINKS_MAX);
        }
        let mut fields = Fields::new(table);
        let anchor = fields.table.anchor.clone();
        let name = read_name(ctx, &mut fields, "[[link]]");
        let what = match &name {
            Some((n, _)) if !n.is_empty() => format!("[[link]] `{n}`"),
            _ => "[[link]]".to_string(),
        };
        if let Some((n, span)) = &name {
            match names.get(n) {
                Some(first) => duplicate_name(ctx, "link", "", n, span.clone(), &first.clone()),
                None => {
                    names.insert(n.clone(), span.clone());
                }
            }
        }
        let kind = fields.require(ctx, "kind", &what).and_then(|e| {
            read_choice(ctx, &e, "link kind", &[("udp", LinkKind::Udp), ("disk", LinkKind::Disk)])
        });
        let config = match kind {
            Some(LinkKind::Udp) => {
                let port = match fields.get("port") {
                    None => Some(LINK_PORT_DEFAULT),
                    Some(e) => read_port(ctx, &e),
                };
                port.map(|port| LinkConfig::Udp { port })
            }
            Some(LinkKind::Disk) => fields
                .require(ctx, "path", &what)
                .and_then(|e| ctx.path(&e))
                .map(|path| LinkConfig::Disk { path }),
            None => {
                fields.allow(&["port", "path"]);
                None
            }
        };
        fields.finish(ctx, &what, &|key| match (key, kind) {
            ("path", Some(LinkKind::Udp)) => {
                Some("`path` applies to links of kind \"disk\"".into())
            }
            ("port", Some(LinkKind::Disk)) => {
                Some("`port` applies to links of kind \"udp\"".into())
            }
            _ => None,
        });
        links.push(LinkPart {
            name: name.map(|(n, _)| n).unwrap_or_default(),
            anchor,
            kind,
            config,
        });
    }
    links
}

fn read_port(ctx: &mut Ctx<'_>, entry: &Entry<'_>) -> Option<u16> {
    let n = ctx.integer(entry)?;
    match u16::try_from(n) {
        Ok(port) if port > 0 => Some(port),
        _ => {
            ctx.push(
                &codes::CONFIG_BAD_PORT,
                entry.span.clone(),
                format!("invalid port {n}"),
                "ports are 1 to 65535",
            );
            None
        }
    }
}

pub(crate) struct NodePart {
    pub name: String,
    pub addresses: Vec<Option<SocketAddr>>,
    pub api: Option<SocketAddr>,
}

/// What the nodes are read against: the links, and the addresses taken so far.
struct NodeContext<'a> {
    links: &'a [LinkPart],
    link_index: HashMap<&'a str, usize>,
    /// Per link: address -> (node name).
    taken: Vec<HashMap<SocketAddr, String>>,
    /// API address -> (node name).
    api_taken: HashMap<SocketAddr, String>,
}

/// How messages name one `[[node]]` table, and where they point without a key.
struct NodeNaming {
    anchor: Span,
    /// "[[node]] `alpha`".
    what: String,
    /// "node `alpha`".
    label: String,
}

fn read_nodes(
    ctx: &mut Ctx<'_>,
    entry: Option<Entry<'_>>,
    links: &[LinkPart],
    cluster_anchor: &Span,
) -> Vec<NodePart> {
    let tables = entry.as_ref().map(|e| ctx.tables(e)).unwrap_or_default();
    if is_absent_or_empty(entry.as_ref()) {
        missing_section(ctx, cluster_anchor, "node", "nodes");
    }
    let mut shared = NodeContext {
        links,
        link_index: links.iter().enumerate().map(|(i, l)| (l.name.as_str(), i)).collect(),
        taken: vec![HashMap::new(); links.len()],
        api_taken: HashMap::new(),
    };
    let mut nodes: Vec<NodePart> = Vec::with_capacity(tables.len());
    let mut names: HashMap<String, Span> = HashMap::new();
    for table in tables {
        if nodes.len() == NODES_MAX {
            limit_exceeded(ctx, table.anchor.clone(), "nodes", nodes.len() + 1, NODES_MAX);
        }
        let mut fields = Fields::new(table);
        let anchor = fields.table.anchor.clone();
        let name = read_name(ctx, &mut fields, "[[node]]");
        let (name, what) = match name {
            Some((n, span)) => {
                match names.get(&n) {
                    Some(first) => {
                        duplicate_name(ctx, "node", "", &n, span.clone(), &first.clone())
                    }
                    None => {
                        names.insert(n.clone(), span);
                    }
                }
                let what =
                    if n.is_empty() { "[[node]]".to_string() } else { format!("[[node]] `{n}`") };
                (n, what)
            }
            None => (String::new(), "[[node]]".to_string()),
        };
        // How messages name this node ("node `alpha`").
        let label = if name.is_empty() {
            "a node without a name".to_string()
        } else {
            format!("node `{name}`")
        };
        let naming = NodeNaming { anchor, what, label };
        let addresses = read_node_addresses(ctx, fields.get("addresses"), &naming, &mut shared);
        let api = read_node_api(ctx, fields.get("api"), &naming, &addresses, &mut shared);
        fields.finish(ctx, &naming.what, &|_| None);
        nodes.push(NodePart { name, addresses, api });
    }
    nodes
}

/// A node's `addresses` (indexed by link); a UDP link without one is reported.
fn read_node_addresses(
    ctx: &mut Ctx<'_>,
    entry: Option<Entry<'_>>,
    naming: &NodeNaming,
    shared: &mut NodeContext<'_>,
) -> Vec<Option<SocketAddr>> {
    let NodeNaming { anchor, what, label } = naming;
    let links = shared.links;
    let mut addresses: Vec<Option<SocketAddr>> = vec![None; links.len()];
    match entry {
        None => {
            if links.iter().any(|l| l.kind == Some(LinkKind::Udp)) {
                ctx.push(
                    &codes::CONFIG_MISSING_KEY,
                    anchor.clone(),
                    format!("missing key `addresses` in {what}"),
                    "this table has no `addresses`",
                )
                .help
                .push("give the node's address on each UDP link, e.g. addresses = { private = \"192.168.50.1\" }".into());
            }
        }
        Some(entry) => {
            if let Some(table) = ctx.table(&entry) {
                let meant = read_addresses(
                    ctx,
                    label,
                    table.clone(),
                    links,
                    &shared.link_index,
                    &mut addresses,
                    &mut shared.taken,
                );
                for (index, link) in links.iter().enumerate() {
                    // A misspelt key already reported with "did you mean" this link
                    // is not reported again as a missing address.
                    if link.kind == Some(LinkKind::Udp)
                        && table.get(&link.name).is_none()
                        && !meant.contains(&index)
                    {
                        ctx.push(
                            &codes::CONFIG_MISSING_ADDRESS,
                            entry.key_span.clone(),
                            format!("{label} has no address on link `{}`", link.name),
                            format!("no `{}` here", link.name),
                        )
                        .help
                        .push(format!("add {} = \"IP\" to the node's addresses", link.name));
                    }
                }
            }
        }
    }
    addresses
}

/// A node's `api` address, by default on port [`API_PORT_DEFAULT`] of its first link
/// address; one address used by two nodes is reported.
fn read_node_api(
    ctx: &mut Ctx<'_>,
    entry: Option<Entry<'_>>,
    naming: &NodeNaming,
    addresses: &[Option<SocketAddr>],
    shared: &mut NodeContext<'_>,
) -> Option<SocketAddr> {
    let NodeNaming { anchor, what, label } = naming;
    let links = shared.links;
    let (api, api_span) = match entry {
        Some(e) => (socket_address(ctx, &e), e.span.clone()),
        None => {
            let default = addresses
                .iter()
                .flatten()
                .next()
                .map(|a| SocketAddr::new(a.ip(), API_PORT_DEFAULT));
            if default.is_none()
                && !links.is_empty()
                && links.iter().all(|l| l.kind == Some(LinkKind::Disk))
            {
                ctx.push(
                    &codes::CONFIG_MISSING_KEY,
                    anchor.clone(),
                    format!("missing key `api` in {what}"),
                    "this table has no `api`",
                )
                .help
                .push("without a UDP link there is no address to serve the API on by default; add api = \"IP:PORT\"".into());
            }
            (default, anchor.clone())
        }
    };
    if let Some(address) = api {
        match shared.api_taken.get(&address) {
            Some(other) => {
                ctx.push(
                    &codes::CONFIG_DUPLICATE_ADDRESS,
                    api_span,
                    format!("{other} and {label} would both serve the API on {address}"),
                    "already used by another node",
                )
                .help
                .push(format!(
                    "set `api` of each node to its own address; without `api` a node uses port {API_PORT_DEFAULT} of its first link address"
                ));
            }
            None => {
                shared.api_taken.insert(address, label.clone());
            }
        }
    }
    api
}

/// Reads one node's `addresses` table into `addresses` (indexed by link). Returns the
/// links suggested for misspelt keys.
fn read_addresses(
    ctx: &mut Ctx<'_>,
    label: &str,
    table: Table<'_>,
    links: &[LinkPart],
    link_index: &HashMap<&str, usize>,
    addresses: &mut [Option<SocketAddr>],
    taken: &mut [HashMap<SocketAddr, String>],
) -> Vec<usize> {
    let mut meant = Vec::new();
    for (link_name, key_span, item, span) in table.entries() {
        let entry = Entry { key: link_name, key_span: key_span.clone(), item, span: span.clone() };
        let Some(&index) = link_index.get(link_name) else {
            let d = ctx.push(
                &codes::CONFIG_UNKNOWN_LINK,
                key_span,
                format!("{label} has an address for unknown link `{link_name}`"),
                "no [[link]] has this name",
            );
            if let Some(s) = suggest(link_name, links.iter().map(|l| l.name.as_str())) {
                d.help.push(format!("did you mean `{s}`?"));
                meant.extend(link_index.get(s));
            }
            continue;
        };
        let Some(text) = ctx.string(&entry) else { continue };
        let link = &links[index];
        let port = match (link.kind, &link.config) {
            (Some(LinkKind::Disk), _) => {
                ctx.push(
                    &codes::CONFIG_ADDRESS_FOR_DISK_LINK,
                    key_span,
                    format!("{label} has an address for disk link `{link_name}`"),
                    "disk links have no addresses",
                )
                .help
                .push("the disk link's path is shared by every node; remove this entry".into());
                continue;
            }
            (_, Some(LinkConfig::Udp { port })) => *port,
            _ => LINK_PORT_DEFAULT,
        };
        let address = match values::parse_link_address(text, port) {
            Ok(address) => address,
            Err(e) => {
                address_error(ctx, span, e);
                continue;
            }
        };
        if address.ip().is_unspecified() || address.ip().is_multicast() {
            ctx.push(
                &codes::CONFIG_BAD_IP,
                span,
                format!("\"{text}\" cannot be a node's heartbeat address"),
                "not a unicast address of one node",
            );
            continue;
        }
        addresses[index] = Some(address);
        match taken[index].get(&address) {
            Some(other) => {
                ctx.push(
                    &codes::CONFIG_DUPLICATE_ADDRESS,
                    span,
                    format!(
                        "{other} and {label} have the same address {address} on link `{link_name}`"
                    ),
                    "already used by another node",
                )
                .help
                .push("nodes on one machine need different ports, e.g. \"127.0.0.1:5406\"".into());
            }
            None => {
                taken[index].insert(address, label.to_string());
            }
        }
    }
    meant
}

struct ArbitrationPart {
    kind: ArbitrationKind,
    witness: Option<SocketAddr>,
    disk_link: Option<LinkId>,
}

fn read_arbitration(
    ctx: &mut Ctx<'_>,
    entry: Option<Entry<'_>>,
    links: &[LinkPart],
    node_count: usize,
    cluster_anchor: &Span,
) -> ArbitrationPart {
    let mut part = ArbitrationPart { kind: ArbitrationKind::Disk, witness: None, disk_link: None };
    let mut anchor = cluster_anchor.clone();
    let mut kind_valid = true;
    let mut witness_entry = None;
    if let Some(table) = entry.and_then(|e| ctx.table(&e)) {
        anchor = table.anchor.clone();
        let mut fields = Fields::new(table);
        if let Some(e) = fields.get("kind") {
            anchor = e.span.clone();
            let choices = [
                ("disk", ArbitrationKind::Disk),
                ("witness", ArbitrationKind::Witness),
                ("none", ArbitrationKind::None),
            ];
            match read_choice(ctx, &e, "arbitration kind", &choices) {
                Some(kind) => part.kind = kind,
                None => kind_valid = false,
            }
        }
        witness_entry = fields.get("witness");
        if let Some(e) = &witness_entry {
            part.witness = socket_address(ctx, e);
        }
        fields.finish(ctx, "[arbitration]", &|_| None);
    }
    if !kind_valid {
        return part;
    }
    match part.kind {
        ArbitrationKind::Disk => {
            part.disk_link = disk_arbitration_link(ctx, links, node_count, anchor);
        }
        ArbitrationKind::Witness => {
            if witness_entry.is_none() {
                ctx.push(
                    &codes::CONFIG_WITNESS_WITHOUT_ADDRESS,
                    anchor,
                    "witness arbitration without a witness address",
                    "needs `witness = \"IP:PORT\"`",
                );
            }
        }
        ArbitrationKind::None => {
            if node_count >= 2 {
                ctx.push(
                    &codes::CONFIG_SPLIT_BRAIN_RISK,
                    anchor,
                    format!("no arbitration between {node_count} nodes: split brain is possible"),
                    "every lease request is granted",
                )
                .help
                .push("if every link fails at once, two nodes may run the same group".into());
            }
        }
    }
    if part.kind != ArbitrationKind::Witness {
        if let Some(e) = witness_entry {
            ctx.push(
                &codes::CONFIG_WITNESS_IGNORED,
                e.key_span.clone(),
                "`witness` is ignored: arbitration kind is not \"witness\"",
                "not used",
            );
            part.witness = None;
        }
    }
    part
}

/// The disk link that holds the leases under disk arbitration: there must be exactly
/// one (E1024 otherwise); with three nodes or more, W1106.
fn disk_arbitration_link(
    ctx: &mut Ctx<'_>,
    links: &[LinkPart],
    node_count: usize,
    anchor: Span,
) -> Option<LinkId> {
    let mut disk_link = None;
    let disks: Vec<usize> =
        (0..links.len()).filter(|&i| links[i].kind == Some(LinkKind::Disk)).collect();
    let unknown_kinds = links.iter().any(|l| l.kind.is_none());
    if disks.is_empty() && !unknown_kinds && !links.is_empty() {
        ctx.push(
            &codes::CONFIG_DISK_ARBITRATION_WITHOUT_DISK_LINK,
            anchor.clone(),
            "disk arbitration needs a disk link, and the cluster has none",
            "leases are kept on the disk link",
        )
        .help
        .push(
            "add a [[link]] with kind = \"disk\", or choose [arbitration] kind = \"witness\""
                .into(),
        );
    } else if disks.len() > 1 {
        let second = &links[disks[1]];
        ctx.push(
            &codes::CONFIG_DISK_ARBITRATION_WITHOUT_DISK_LINK,
            second.anchor.clone(),
            format!(
                "disk arbitration needs exactly one disk link; `{}` is a second one",
                second.name
            ),
            "second disk link",
        )
        .help
        .push("keep one disk link, which then holds the leases".into());
    } else if let Some(&i) = disks.first() {
        disk_link = Some(LinkId(i as u16));
    }
    if node_count >= 3 && disk_link.is_some() {
        ctx.push(
            &codes::CONFIG_DISK_ARBITRATION_MANY_NODES,
            anchor,
            format!(
                "disk arbitration between {node_count} nodes: safe only while the disk \
                 answers every write within the I/O timeout"
            ),
            "leases on the shared disk",
        )
        .help
        .push("a write the disk holds longer can free a group its holder still runs".into());
    }
    disk_link
}

fn read_alerts(ctx: &mut Ctx<'_>, entry: Option<Entry<'_>>) -> Vec<AlertConfig> {
    let tables = entry.as_ref().map(|e| ctx.tables(e)).unwrap_or_default();
    let mut alerts = Vec::with_capacity(tables.len());
    for (i, table) in tables.into_iter().enumerate() {
        if i == ALERTS_MAX {
            limit_exceeded(ctx, table.anchor.clone(), "alerts", i + 1, ALERTS_MAX);
        }
        let mut fields = Fields::new(table);
        let what = "[[alert]]";
        let kind = fields.require(ctx, "kind", what).and_then(|e| {
            read_choice(ctx, &e, "alert kind", &[("email", 0u8), ("webhook", 1), ("script", 2)])
        });
        let min_severity = fields.get("min_severity").map_or(Some(Severity::Warning), |e| {
            read_choice(
                ctx,
                &e,
                "severity",
                &[
                    ("info", Severity::Info),
                    ("warning", Severity::Warning),
                    ("error", Severity::Error),
                ],
            )
        });
        let target = match kind {
            Some(0) => read_email(ctx, &mut fields),
            Some(1) => fields.require(ctx, "url", "an [[alert]] of kind \"webhook\"").and_then(|e| {
                let url = ctx.nonempty_string(&e)?;
                let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
                let valid = matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace));
                if !valid {
                    ctx.push(
                        &codes::CONFIG_INVALID_VALUE,
                        e.span.clone(),
                        format!("invalid webhook URL \"{url}\""),
                        "expected an http:// or https:// URL",
                    );
                    return None;
                }
                Some(AlertTarget::Webhook { url: url.to_string() })
            }),
            Some(_) => fields
                .require(ctx, "path", "an [[alert]] of kind \"script\"")
                .and_then(|e| ctx.path(&e))
                .map(|path| AlertTarget::Script { path }),
            None => {
                fields.allow(&["smtp", "starttls", "from", "to", "url", "path"]);
                None
            }
        };
        let kind_name = ["email", "webhook", "script"].get(usize::from(kind.unwrap_or(9))).copied();
        fields.finish(ctx, what, &|key| {
            let owner = match key {
                "smtp" | "starttls" | "from" | "to" => "email",
                "url" => "webhook",
                "path" => "script",
                _ => return None,
            };
            kind_name.map(|k| format!("`{key}` applies to alerts of kind \"{owner}\", not \"{k}\""))
        });
        if let (Some(target), Some(min_severity)) = (target, min_severity) {
            alerts.push(AlertConfig { min_severity, target });
        }
    }
    alerts
}

fn read_email(ctx: &mut Ctx<'_>, fields: &mut Fields<'_>) -> Option<AlertTarget> {
    let what = "an [[alert]] of kind \"email\"";
    let smtp = fields.require(ctx, "smtp", what).and_then(|e| {
        let text = ctx.string(&e)?;
        values::parse_host_port(text).map_err(|err| address_error(ctx, e.span.clone(), err)).ok()
    });
    let starttls = fields.get("starttls").map_or(Some(true), |e| ctx.bool(&e));
    let from = fields.require(ctx, "from", what).and_then(|e| {
        let text = ctx.string(&e)?;
        email_address(ctx, &e, text)
    });
    let to = fields.require(ctx, "to", what).and_then(|e| {
        let list = ctx.strings(&e)?;
        if list.is_empty() {
            ctx.push(&codes::CONFIG_INVALID_VALUE, e.span.clone(), "`to` is empty", "no recipient");
            return None;
        }
        let mut out = Vec::with_capacity(list.len());
        for (text, span) in list {
            let entry = Entry { span, ..e.clone() };
            out.push(email_address(ctx, &entry, text)?);
        }
        Some(out)
    });
    Some(AlertTarget::Email { smtp: smtp?, starttls: starttls?, from: from?, to: to? })
}

fn email_address(ctx: &mut Ctx<'_>, entry: &Entry<'_>, text: &str) -> Option<String> {
    let valid = text.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !text.contains(char::is_whitespace)
    });
    if !valid {
        ctx.push(
            &codes::CONFIG_INVALID_VALUE,
            entry.span.clone(),
            format!("invalid e-mail address \"{text}\""),
            "expected user@domain",
        );
        return None;
    }
    Some(text.to_string())
}

fn read_api(ctx: &mut Ctx<'_>, entry: Option<Entry<'_>>) -> ApiConfig {
    let mut api = ApiConfig {
        tls_cert: "/etc/tandem/tls.crt".into(),
        tls_key: "/etc/tandem/tls.key".into(),
        users_file: "/etc/tandem/users.toml".into(),
    };
    let Some(table) = entry.and_then(|e| ctx.table(&e)) else { return api };
    let mut fields = Fields::new(table);
    for (key, slot) in [
        ("tls_cert", &mut api.tls_cert),
        ("tls_key", &mut api.tls_key),
        ("users_file", &mut api.users_file),
    ] {
        if let Some(path) = fields.get(key).and_then(|e| ctx.path(&e)) {
            *slot = path.value;
        }
    }
    fields.finish(ctx, "[api]", &|_| None);
    api
}
