//! `[[link]]`: the heartbeat links, each a UDP network (with its port) or the shared
//! disk (with its path); names unique, at most `LINKS_MAX` of them.

use std::collections::HashMap;

use engine::catalogue as codes;
use engine::{LinkKind, LINKS_MAX};

use super::common::{
    duplicate_name, is_absent_or_empty, limit_exceeded, missing_section, read_choice, read_name,
};
use crate::model::{LinkConfig, Span};
use crate::reader::{Ctx, Entry, Fields};

/// A link's port when `port` is absent.
pub const LINK_PORT_DEFAULT: u16 = 5405;

pub(crate) struct LinkPart {
    pub name: String,
    pub anchor: Span,
    /// `None` when the kind was missing or invalid.
    pub kind: Option<LinkKind>,
    pub config: Option<LinkConfig>,
}

pub(super) fn read_links(
    ctx: &mut Ctx<'_>,
    entry: Option<Entry<'_>>,
    cluster_anchor: &Span,
) -> Vec<LinkPart> {
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
