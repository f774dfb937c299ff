//! `[cluster]`: the cluster's name, the key file and the state directory (E1005 when
//! the section is missing). The section's header is where cluster-wide problems point.

use std::path::PathBuf;

use engine::catalogue as codes;

use super::common::read_name;
use crate::model::{Span, Spanned};
use crate::reader::{Ctx, Entry, Fields};

pub(crate) const DEFAULT_KEY_FILE: &str = "/etc/tandem/cluster.key";
pub(crate) const DEFAULT_STATE_DIR: &str = "/var/lib/tandem";

pub(super) struct ClusterPart {
    pub(super) name: String,
    /// The `[cluster]` header, or the file's start; where cluster-wide problems point.
    pub(super) anchor: Span,
    pub(super) key_file: Spanned<PathBuf>,
    pub(super) state_dir: PathBuf,
}

pub(super) fn read_cluster(ctx: &mut Ctx<'_>, entry: Option<Entry<'_>>) -> ClusterPart {
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
