//! `[[node]]`: the nodes, each with its address on every UDP link and the address it
//! serves the API on (by default on its first link address); names and addresses
//! unique, at most `NODES_MAX` of them.

use std::collections::HashMap;
use std::net::SocketAddr;

use engine::catalogue as codes;
use engine::{LinkKind, NODES_MAX};

use super::common::{
    address_error, duplicate_name, is_absent_or_empty, limit_exceeded, missing_section, read_name,
    socket_address,
};
use super::links::{LinkPart, LINK_PORT_DEFAULT};
use crate::model::{LinkConfig, Span};
use crate::reader::{suggest, Ctx, Entry, Fields, Table};
use crate::values;

/// The API port of a node without `api`.
pub const API_PORT_DEFAULT: u16 = 7400;

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

pub(super) fn read_nodes(
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
