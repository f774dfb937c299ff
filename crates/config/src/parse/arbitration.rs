//! `[arbitration]`: who grants the group leases (the shared disk, a witness or
//! nobody), and the checks that the rest of the file fits the choice: exactly one disk
//! link for disk arbitration, a witness address for a witness, and the warnings for
//! disk arbitration between three nodes or more and for no arbitration at all.

use std::net::SocketAddr;

use engine::catalogue as codes;
use engine::{ArbitrationKind, LinkId, LinkKind};

use super::common::{read_choice, socket_address};
use super::links::LinkPart;
use crate::model::Span;
use crate::reader::{Ctx, Entry, Fields};

pub(super) struct ArbitrationPart {
    pub(super) kind: ArbitrationKind,
    pub(super) witness: Option<SocketAddr>,
    pub(super) disk_link: Option<LinkId>,
    /// Where the kind was written (or the section, or [cluster] when absent).
    pub(super) kind_span: Span,
}

pub(super) fn read_arbitration(
    ctx: &mut Ctx<'_>,
    entry: Option<Entry<'_>>,
    links: &[LinkPart],
    node_count: usize,
    cluster_anchor: &Span,
) -> ArbitrationPart {
    let mut part = ArbitrationPart {
        kind: ArbitrationKind::Disk,
        witness: None,
        disk_link: None,
        kind_span: cluster_anchor.clone(),
    };
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
    part.kind_span = anchor.clone();
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
