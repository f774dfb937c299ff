//! `[[group]]` and `[[group.resource]]`: group settings, node preference lists, the
//! nine resource kinds and their keys, and the checks within a group (duplicate
//! resource names, cluster-wide app names, single-node groups, stop timeouts against
//! the lease). Produces the engine's [`GroupSpec`]s and the parallel [`GroupConfig`]s.
//! No file system access here (`host.rs` checks that paths exist).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use engine::catalogue as codes;
use engine::{
    Failback, GroupSpec, NodeId, ResourceKind, ResourceSpec, GROUPS_MAX, RESOURCES_PER_GROUP_MAX,
};

use super::common::{duplicate_name, limit_exceeded, read_choice, read_name};
use super::nodes::NodePart;
use crate::model::{
    FilesystemParams, GroupConfig, IpParams, OcfParams, ProcessParams, ResourceConfig,
    ResourceParams, Span, Spanned,
};
use crate::reader::{suggest, Ctx, Entry, Fields, Table};
use crate::values;

/// Group defaults (PRODUCT.md section 2).
pub const FAILBACK_DELAY_DEFAULT: Duration = Duration::from_secs(30);
pub const MIGRATION_THRESHOLD_DEFAULT: u32 = 3;
pub const FAILURE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(600);
/// Resource defaults.
pub const MONITOR_INTERVAL_DEFAULT: Duration = Duration::from_secs(5);
pub const NIC_MONITOR_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
pub const MONITOR_TIMEOUT_DEFAULT: Duration = Duration::from_secs(20);
pub const START_TIMEOUT_DEFAULT: Duration = Duration::from_secs(20);
pub const STOP_TIMEOUT_DEFAULT: Duration = Duration::from_secs(20);

/// The keys of each resource kind besides the common ones.
pub(crate) const KIND_KEYS: &[(ResourceKind, &[&str])] = &[
    (
        ResourceKind::Filesystem,
        &["device", "mountpoint", "fstype", "options", "lock_standby", "fsck"],
    ),
    (ResourceKind::Ip, &["address", "interface"]),
    (ResourceKind::Nic, &["interface"]),
    (ResourceKind::Process, &["command", "cwd", "env", "user"]),
    (ResourceKind::Script, &["path"]),
    (ResourceKind::Lsb, &["service"]),
    (ResourceKind::Systemd, &["unit"]),
    (ResourceKind::Ocf, &["agent", "params"]),
    (ResourceKind::App, &["deadline"]),
];

pub(crate) struct GroupsPart {
    pub specs: Vec<GroupSpec>,
    pub configs: Vec<GroupConfig>,
}

pub(crate) fn read_groups(
    ctx: &mut Ctx<'_>,
    entry: Option<Entry<'_>>,
    nodes: &[NodePart],
) -> GroupsPart {
    let tables = entry.as_ref().map(|e| ctx.tables(e)).unwrap_or_default();
    let node_ids: HashMap<&str, NodeId> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.name.is_empty())
        .map(|(i, n)| (n.name.as_str(), NodeId(i as u16)))
        .collect();
    let mut part = GroupsPart {
        specs: Vec::with_capacity(tables.len()),
        configs: Vec::with_capacity(tables.len()),
    };
    let mut names: HashMap<String, Span> = HashMap::new();
    // App resources are addressed by name alone in the API: unique in the cluster.
    let mut app_names: HashMap<String, Span> = HashMap::new();
    for table in tables {
        if part.specs.len() == GROUPS_MAX {
            limit_exceeded(ctx, table.anchor.clone(), "groups", part.specs.len() + 1, GROUPS_MAX);
        }
        let (spec, config) = read_group(ctx, table, &node_ids, &mut names, &mut app_names);
        part.specs.push(spec);
        part.configs.push(config);
    }
    part
}

fn read_group(
    ctx: &mut Ctx<'_>,
    table: Table<'_>,
    node_ids: &HashMap<&str, NodeId>,
    names: &mut HashMap<String, Span>,
    app_names: &mut HashMap<String, Span>,
) -> (GroupSpec, GroupConfig) {
    let anchor = table.anchor.clone();
    let mut fields = Fields::new(table);
    let name = read_name(ctx, &mut fields, "[[group]]");
    let (name, name_span) = name.unwrap_or_default();
    if !name.is_empty() {
        match names.get(&name) {
            Some(first) => {
                duplicate_name(ctx, "group", "", &name, name_span.clone(), &first.clone())
            }
            None => {
                names.insert(name.clone(), name_span.clone());
            }
        }
    }
    let what =
        if name.is_empty() { "[[group]]".to_string() } else { format!("[[group]] `{name}`") };
    let mut spec = GroupSpec {
        name: name.clone(),
        nodes: Vec::new(),
        failback: Failback::Manual,
        failback_delay: FAILBACK_DELAY_DEFAULT,
        migration_threshold: MIGRATION_THRESHOLD_DEFAULT,
        failure_timeout: FAILURE_TIMEOUT_DEFAULT,
        resources: Vec::new(),
    };
    let mut nodes_as_written = 0;
    if let Some(e) = fields.require(ctx, "nodes", &what) {
        (spec.nodes, nodes_as_written) = read_group_nodes(ctx, &e, &name, node_ids);
    }
    if let Some(e) = fields.get("failback") {
        spec.failback = read_choice(
            ctx,
            &e,
            "failback",
            &[("manual", Failback::Manual), ("auto", Failback::Auto)],
        )
        .unwrap_or(Failback::Manual);
    }
    if let Some(d) = fields.get("failback_delay").and_then(|e| ctx.duration(&e)) {
        spec.failback_delay = d;
    }
    if let Some(e) = fields.get("migration_threshold") {
        if let Some(n) = ctx.integer(&e) {
            match u32::try_from(n) {
                Ok(n) if n >= 1 => spec.migration_threshold = n,
                _ => {
                    ctx.push(
                        &codes::CONFIG_MIGRATION_THRESHOLD_OUT_OF_RANGE,
                        e.span.clone(),
                        format!("migration_threshold {n} is out of range"),
                        "must be 1 or more",
                    )
                    .help
                    .push("1 moves the group on the first failure; the default 3 restarts it in place twice first".into());
                }
            }
        }
    }
    if let Some(d) = fields.get("failure_timeout").and_then(|e| ctx.positive_duration(&e)) {
        spec.failure_timeout = d;
    }
    let mut config = GroupConfig { resources: Vec::new() };
    if let Some(e) = fields.get("resource") {
        for (rspec, rconfig) in read_group_resources(ctx, &e, &name, app_names) {
            spec.resources.push(rspec);
            config.resources.push(rconfig);
        }
    }
    fields.finish(ctx, &what, &|key| {
        let is_resource_key = matches!(key, "kind" | "monitor" | "start_timeout" | "stop_timeout")
            || KIND_KEYS.iter().any(|(_, keys)| keys.contains(&key));
        is_resource_key
            .then(|| format!("`{key}` is a resource key: put it in a [[group.resource]] table"))
    });
    if spec.nodes.len() == 1 && nodes_as_written == 1 {
        ctx.push(
            &codes::CONFIG_GROUP_SINGLE_NODE,
            name_span_or(&name_span, &anchor),
            format!("group `{name}` can run on only one node"),
            "no standby",
        )
        .help
        .push("add a second node to `nodes` so that the group can fail over".into());
    }
    (spec, config)
}

/// A group's `[[group.resource]]` tables: the resources that could be read, in order;
/// a name used twice in the group, or an app's name used twice in the cluster, is
/// reported.
fn read_group_resources(
    ctx: &mut Ctx<'_>,
    entry: &Entry<'_>,
    name: &str,
    app_names: &mut HashMap<String, Span>,
) -> Vec<(ResourceSpec, ResourceConfig)> {
    let mut resources = Vec::new();
    let tables = ctx.tables(entry);
    let mut resource_names: HashMap<String, Span> = HashMap::new();
    for (i, table) in tables.into_iter().enumerate() {
        if i == RESOURCES_PER_GROUP_MAX {
            limit_exceeded(
                ctx,
                table.anchor.clone(),
                &format!("resources in group `{name}`"),
                i + 1,
                RESOURCES_PER_GROUP_MAX,
            );
        }
        let resource = read_resource(ctx, table);
        if let Some((rname, span)) = &resource.name {
            match resource_names.get(rname) {
                Some(first) => duplicate_name(
                    ctx,
                    "resource",
                    &format!(" in group `{name}`"),
                    rname,
                    span.clone(),
                    &first.clone(),
                ),
                None => {
                    resource_names.insert(rname.clone(), span.clone());
                    if resource.kind == Some(ResourceKind::App) {
                        match app_names.get(rname) {
                            Some(first) => {
                                let first = first.clone();
                                duplicate_name(
                                    ctx,
                                    "app resource",
                                    "",
                                    rname,
                                    span.clone(),
                                    &first,
                                );
                                if let Some(d) = ctx.diagnostics.last_mut() {
                                    d.help.push("app resources are addressed by name alone (POST /v1/apps/NAME/heartbeat), so their names are unique in the cluster".into());
                                }
                            }
                            None => {
                                app_names.insert(rname.clone(), span.clone());
                            }
                        }
                    }
                }
            }
        }
        resources.extend(resource.built);
    }
    resources
}

fn name_span_or(name_span: &Span, anchor: &Span) -> Span {
    if name_span.is_empty() {
        anchor.clone()
    } else {
        name_span.clone()
    }
}

/// The resolved nodes, and how many entries the list had as written.
fn read_group_nodes(
    ctx: &mut Ctx<'_>,
    entry: &Entry<'_>,
    group: &str,
    node_ids: &HashMap<&str, NodeId>,
) -> (Vec<NodeId>, usize) {
    let Some(list) = ctx.strings(entry) else { return (Vec::new(), 0) };
    let written = list.len();
    if list.is_empty() {
        ctx.push(
            &codes::CONFIG_GROUP_WITHOUT_NODES,
            entry.span.clone(),
            format!("group `{group}` has no nodes"),
            "empty list",
        )
        .help
        .push("list the nodes that may run the group, production node first: nodes = [\"alpha\", \"beta\"]".into());
        return (Vec::new(), 0);
    }
    let mut out: Vec<NodeId> = Vec::with_capacity(list.len());
    for (node, span) in list {
        match node_ids.get(node) {
            None => {
                let d = ctx.push(
                    &codes::CONFIG_UNKNOWN_NODE,
                    span,
                    format!("group `{group}` names unknown node `{node}`"),
                    "no [[node]] has this name",
                );
                if let Some(s) = suggest(node, node_ids.keys().copied()) {
                    d.help.push(format!("did you mean `{s}`?"));
                }
            }
            Some(id) if out.contains(id) => {
                ctx.push(
                    &codes::CONFIG_NODE_LISTED_TWICE,
                    span,
                    format!("group `{group}` lists node `{node}` twice"),
                    "listed before",
                );
            }
            Some(id) => out.push(*id),
        }
    }
    (out, written)
}

pub(crate) struct ResourcePart {
    pub name: Option<(String, Span)>,
    pub kind: Option<ResourceKind>,
    /// Present when the resource has no error.
    pub built: Option<(ResourceSpec, ResourceConfig)>,
}

fn read_resource(ctx: &mut Ctx<'_>, table: Table<'_>) -> ResourcePart {
    let errors_before = error_count(ctx);
    let anchor = table.anchor.clone();
    let mut fields = Fields::new(table);
    let name = read_name(ctx, &mut fields, "[[group.resource]]");
    let what = match &name {
        Some((n, _)) if !n.is_empty() => format!("resource `{n}`"),
        _ => "[[group.resource]]".to_string(),
    };
    let kind = fields.require(ctx, "kind", &what).and_then(|e| {
        let text = ctx.string(&e)?;
        let kind = ResourceKind::from_name(text);
        if kind.is_none() {
            let names = ResourceKind::ALL.map(ResourceKind::as_str);
            let d = ctx.push(
                &codes::CONFIG_UNKNOWN_RESOURCE_KIND,
                e.span.clone(),
                format!("unknown resource kind \"{text}\""),
                "not a resource kind",
            );
            match suggest(text, names) {
                Some(s) => d.help.push(format!("did you mean \"{s}\"?")),
                None => d.help.push(format!("the kinds are {}", names.join(", "))),
            }
        }
        kind
    });
    let interval_default = if kind == Some(ResourceKind::Nic) {
        NIC_MONITOR_INTERVAL_DEFAULT
    } else {
        MONITOR_INTERVAL_DEFAULT
    };
    let (mut monitor_interval, mut monitor_timeout) = (interval_default, MONITOR_TIMEOUT_DEFAULT);
    if let Some(monitor) = fields.get("monitor").and_then(|e| ctx.table(&e)) {
        let mut monitor_fields = Fields::new(monitor);
        if let Some(d) = monitor_fields.get("interval").and_then(|e| ctx.positive_duration(&e)) {
            monitor_interval = d;
        }
        if let Some(d) = monitor_fields.get("timeout").and_then(|e| ctx.positive_duration(&e)) {
            monitor_timeout = d;
        }
        monitor_fields.finish(ctx, &format!("the monitor of {what}"), &|_| None);
    }
    let start_timeout = fields
        .get("start_timeout")
        .and_then(|e| ctx.positive_duration(&e))
        .unwrap_or(START_TIMEOUT_DEFAULT);
    let stop_entry = fields.get("stop_timeout");
    let stop_timeout =
        stop_entry.and_then(|e| ctx.positive_duration(&e)).unwrap_or(STOP_TIMEOUT_DEFAULT);
    let params = match kind {
        Some(kind) => read_params(ctx, &mut fields, kind, &what),
        None => {
            for (_, keys) in KIND_KEYS {
                fields.allow(keys);
            }
            None
        }
    };
    fields.finish(ctx, &what, &|key| {
        let kind = kind?;
        let owners: Vec<&str> = KIND_KEYS
            .iter()
            .filter(|(_, keys)| keys.contains(&key))
            .map(|(k, _)| k.as_str())
            .collect();
        (!owners.is_empty()).then(|| {
            format!(
                "`{key}` is a key of {} resources, and this one is of kind \"{}\"",
                owners.join(" and "),
                kind.as_str()
            )
        })
    });
    let mut part = ResourcePart { name: name.clone(), kind, built: None };
    if error_count(ctx) == errors_before {
        if let (Some((name, _)), Some(kind), Some(params)) = (name, kind, params) {
            let lock_standby = matches!(&params, ResourceParams::Filesystem(fs) if fs.lock_standby);
            let spec = ResourceSpec {
                name,
                kind,
                monitor_interval,
                monitor_timeout,
                start_timeout,
                stop_timeout,
                lock_standby,
            };
            let config = ResourceConfig { span: anchor, params };
            part.built = Some((spec, config));
        }
    }
    part
}

fn error_count(ctx: &Ctx<'_>) -> usize {
    ctx.diagnostics.iter().filter(|d| d.is_error()).count()
}

fn invalid(ctx: &mut Ctx<'_>, entry: &Entry<'_>, message: String, label: &str, help: &str) {
    let d = ctx.push(&codes::CONFIG_INVALID_VALUE, entry.span.clone(), message, label);
    if !help.is_empty() {
        d.help.push(help.to_string());
    }
}

/// A string without '/' or white space (unit, service, interface, file system type).
fn word(
    ctx: &mut Ctx<'_>,
    entry: &Entry<'_>,
    max_len: usize,
    help: &str,
) -> Option<Spanned<String>> {
    let text = ctx.nonempty_string(entry)?;
    if text.contains('/')
        || text.contains(char::is_whitespace)
        || text.len() > max_len
        || text == "."
        || text == ".."
    {
        invalid(
            ctx,
            entry,
            format!("invalid {} \"{text}\"", entry.key.replace('_', " ")),
            &format!("at most {max_len} characters, no '/' or spaces"),
            help,
        );
        return None;
    }
    Some(Spanned { value: text.to_string(), span: entry.span.clone() })
}

/// Linux interface names: 1 to 15 bytes (IFNAMSIZ - 1).
fn interface(ctx: &mut Ctx<'_>, entry: &Entry<'_>) -> Option<Spanned<String>> {
    word(ctx, entry, 15, "interface names are those `ip link` shows, such as \"eth0\"")
}

/// Names of env variables and OCF parameters.
fn identifiers<'a>(
    ctx: &mut Ctx<'_>,
    entry: &Entry<'a>,
    what: &str,
) -> Option<BTreeMap<String, String>> {
    let pairs = ctx.string_table(entry)?;
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (key, key_span, value) in pairs {
        let valid = !key.is_empty()
            && !key.as_bytes()[0].is_ascii_digit()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            ok = false;
            ctx.push(
                &codes::CONFIG_INVALID_VALUE,
                key_span,
                format!("invalid {what} name `{key}`"),
                "letters, digits and '_' only, not starting with a digit",
            );
            continue;
        }
        out.insert(key.to_string(), value.to_string());
    }
    ok.then_some(out)
}

fn read_params(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    kind: ResourceKind,
    what: &str,
) -> Option<ResourceParams> {
    let what = format!("{what} of kind \"{}\"", kind.as_str());
    match kind {
        ResourceKind::Filesystem => filesystem_params(ctx, fields, &what),
        ResourceKind::Ip => {
            let address = fields.require(ctx, "address", &what).and_then(|e| {
                let text = ctx.string(&e)?;
                values::parse_cidr(text)
                    .map_err(|err| {
                        ctx.push_value_error(&codes::CONFIG_BAD_CIDR, e.span.clone(), err)
                    })
                    .ok()
            });
            let interface = match fields.get("interface") {
                None => Some(None),
                Some(e) => interface(ctx, &e).map(Some),
            };
            let (address, prefix_len) = address?;
            Some(ResourceParams::Ip(IpParams { address, prefix_len, interface: interface? }))
        }
        ResourceKind::Nic => {
            let interface =
                fields.require(ctx, "interface", &what).and_then(|e| interface(ctx, &e));
            Some(ResourceParams::Nic { interface: interface? })
        }
        ResourceKind::Process => process_params(ctx, fields, &what),
        ResourceKind::Script => {
            let path = fields.require(ctx, "path", &what).and_then(|e| ctx.path(&e));
            Some(ResourceParams::Script { path: path? })
        }
        ResourceKind::Lsb => {
            let service = fields.require(ctx, "service", &what).and_then(|e| {
                word(ctx, &e, 255, "the name of a script in /etc/init.d, such as \"apache2\"")
            });
            Some(ResourceParams::Lsb { service: service? })
        }
        ResourceKind::Systemd => {
            let unit = fields.require(ctx, "unit", &what).and_then(|e| {
                word(ctx, &e, 255, "a unit name such as \"postgresql@15-main.service\"")
            });
            Some(ResourceParams::Systemd { unit: unit? })
        }
        ResourceKind::Ocf => ocf_params(ctx, fields, &what),
        ResourceKind::App => {
            let deadline =
                fields.require(ctx, "deadline", &what).and_then(|e| ctx.positive_duration(&e));
            Some(ResourceParams::App { deadline: deadline? })
        }
    }
}

/// The keys of a `filesystem` resource.
fn filesystem_params(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    what: &str,
) -> Option<ResourceParams> {
    let device = fields.require(ctx, "device", what).and_then(|e| ctx.path(&e));
    let mountpoint = fields.require(ctx, "mountpoint", what).and_then(|e| ctx.path(&e));
    let fstype = fields.require(ctx, "fstype", what).and_then(|e| {
        word(ctx, &e, 32, "the type as mount -t takes it, such as \"ext4\" or \"xfs\"")
    });
    let options = match fields.get("options") {
        None => Some(None),
        Some(e) => ctx.nonempty_string(&e).map(|s| Some(s.to_string())),
    };
    let lock_standby = fields.get("lock_standby").map_or(Some(false), |e| ctx.bool(&e));
    let fsck = fields.get("fsck").map_or(Some(false), |e| ctx.bool(&e));
    Some(ResourceParams::Filesystem(FilesystemParams {
        device: device?,
        mountpoint: mountpoint?.value,
        fstype: fstype?.value,
        options: options?,
        lock_standby: lock_standby?,
        fsck: fsck?,
    }))
}

/// The keys of a `process` resource.
fn process_params(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    what: &str,
) -> Option<ResourceParams> {
    let command = fields.require(ctx, "command", what).and_then(|e| {
        let list = ctx.strings(&e)?;
        if list.is_empty() || list[0].0.trim().is_empty() {
            invalid(ctx, &e, "`command` is empty".into(), "no program", "write the program and its arguments: [\"/usr/bin/python3\", \"-m\", \"http.server\"]");
            return None;
        }
        let value = list.into_iter().map(|(s, _)| s.to_string()).collect();
        Some(Spanned { value, span: e.span.clone() })
    });
    let cwd = match fields.get("cwd") {
        None => Some(None),
        Some(e) => ctx.path(&e).map(Some),
    };
    let env = match fields.get("env") {
        None => Some(BTreeMap::new()),
        Some(e) => identifiers(ctx, &e, "environment variable"),
    };
    let user = match fields.get("user") {
        None => Some(None),
        Some(e) => word(ctx, &e, 32, "a user name from /etc/passwd").map(|w| Some(w.value)),
    };
    Some(ResourceParams::Process(ProcessParams {
        command: command?,
        cwd: cwd?,
        env: env?,
        user: user?,
    }))
}

/// The keys of an `ocf` resource.
fn ocf_params(ctx: &mut Ctx<'_>, fields: &mut Fields<'_>, what: &str) -> Option<ResourceParams> {
    let agent = fields.require(ctx, "agent", what).and_then(|e| {
        let text = ctx.string(&e)?;
        let parts = text.split_once(':').filter(|(p, t)| {
            let ok = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                    && !s.starts_with('.')
            };
            ok(p) && ok(t)
        });
        if parts.is_none() {
            invalid(
                ctx,
                &e,
                format!("invalid OCF agent \"{text}\""),
                "expected \"provider:type\"",
                "e.g. \"heartbeat:tomcat\": the agent is $OCF_ROOT/resource.d/heartbeat/tomcat",
            );
        }
        parts.map(|(p, t)| (p.to_string(), t.to_string(), e.span.clone()))
    });
    let params = match fields.get("params") {
        None => Some(BTreeMap::new()),
        Some(e) => identifiers(ctx, &e, "OCF parameter"),
    };
    let (provider, agent_type, agent_span) = agent?;
    Some(ResourceParams::Ocf(OcfParams { provider, agent_type, agent_span, params: params? }))
}
