//! The server side of the console's configuration editor (`POST /v1/config/edit`,
//! docs/console.md "Changing the configuration from the console"): the browser sends
//! edits ([`contract::ConfigEdit`]: add, change or remove a group, a resource, a node's
//! address, a value of `[cluster]`/`[timing]`/`[arbitration]`/`[api]`, an alert), never
//! TOML; this module makes them on the running generation's text with `toml_edit`, so
//! the operator's comments, order and layout stay as they were (a changed value keeps
//! its trailing comment, a new resource takes the indentation of its group's last
//! one), then checks the result as `tandem validate` does on this node (host checks as
//! warnings, [`crate::configstore::Service::check`]) and answers the text, its diff
//! against the running one, every diagnostic with the key it is about ([`places`]),
//! what would change and the text as JSON for the form.
//!
//! It saves nothing: the console pushes the text it was given with `POST /v1/config`
//! (the two-phase push of [`crate::configstore`], which checks it again on every node).
//! An edit that cannot be made on the text (a group that is not there: E1341; a new
//! resource without `kind`, a part written inline: E1342) makes none of the edits.

use contract::{
    ConfigDiagnostic, ConfigEdit, ConfigEditAnswer, ConfigEditRequest, EditDiagnostic, EditFields,
    EditValue,
};
use engine::catalogue::{
    CodeInfo, CONFIG_EDIT_MALFORMED, CONFIG_EDIT_NO_SUCH_THING, CONFIG_GENERATION_MOVED_ON,
};
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// The sections whose keys [`ConfigEdit::SetValue`] sets.
pub const SECTIONS: &[&str] = &["cluster", "timing", "arbitration", "api"];
/// Most edits in one request: a form makes a handful; the body limit (64 KiB) bounds it
/// anyway.
pub const EDITS_MAX: usize = 256;
/// Keys of every resource kind, written after the kind's own keys in a new resource.
const COMMON_RESOURCE_KEYS: &[&str] = &["monitor", "start_timeout", "stop_timeout"];

/// Why an edit was not made: its code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static CodeInfo,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.code, self.message)
    }
}

fn missing(message: String) -> Refusal {
    Refusal { code: &CONFIG_EDIT_NO_SUCH_THING, message }
}

fn malformed(message: String) -> Refusal {
    Refusal { code: &CONFIG_EDIT_MALFORMED, message }
}

/// `text` with `edits` made in order; the first edit that cannot be made (its index)
/// and why, and then none is made.
pub fn edit(text: &str, edits: &[ConfigEdit]) -> Result<String, (Option<usize>, Refusal)> {
    if edits.len() > EDITS_MAX {
        let why = format!("{} edits in one request; at most {EDITS_MAX}", edits.len());
        return Err((None, malformed(why)));
    }
    let mut doc: DocumentMut = text.parse().map_err(|e| {
        (None, malformed(format!("the running configuration is not TOML the editor reads: {e}")))
    })?;
    for (index, one) in edits.iter().enumerate() {
        make(&mut doc, one).map_err(|why| (Some(index), why))?;
    }
    Ok(doc.to_string())
}

fn make(doc: &mut DocumentMut, edit: &ConfigEdit) -> Result<(), Refusal> {
    match edit {
        ConfigEdit::PutGroup { name, fields } => {
            forbid(fields, &["name", "resource"], "a group's")?;
            let groups = tables(doc.as_table_mut(), "group", true)?;
            match find(groups, name) {
                Some(index) => {
                    let group = groups.get_mut(index).expect("found");
                    set_fields(group, fields);
                }
                None => {
                    let mut group = Table::new();
                    group.decor_mut().set_prefix("\n");
                    group.insert("name", toml_edit::value(name.as_str()));
                    set_fields(&mut group, fields);
                    groups.push(group);
                }
            }
            Ok(())
        }
        ConfigEdit::RemoveGroup { name } => {
            let groups = tables(doc.as_table_mut(), "group", false)?;
            let index = find(groups, name).ok_or_else(|| no_group(name))?;
            groups.remove(index);
            Ok(())
        }
        ConfigEdit::PutResource { group, name, fields } => {
            forbid(fields, &["name"], "a resource's")?;
            let groups = tables(doc.as_table_mut(), "group", false)?;
            let index = find(groups, group).ok_or_else(|| no_group(group))?;
            let table = groups.get_mut(index).expect("found");
            put_resource(table, group, name, fields)
        }
        ConfigEdit::RemoveResource { group, name } => {
            let groups = tables(doc.as_table_mut(), "group", false)?;
            let index = find(groups, group).ok_or_else(|| no_group(group))?;
            let table = groups.get_mut(index).expect("found");
            let resources =
                tables(table, "resource", false).map_err(|_| no_resource(group, name))?;
            let at = find(resources, name).ok_or_else(|| no_resource(group, name))?;
            resources.remove(at);
            if resources.is_empty() {
                table.remove("resource");
            }
            Ok(())
        }
        ConfigEdit::SetNodeAddress { node, link, address } => {
            set_node_address(doc, node, link, address.as_deref())
        }
        ConfigEdit::SetValue { section, key, value } => set_value(doc, section, key, value),
        ConfigEdit::PutAlert { index, fields } => {
            let alerts = tables(doc.as_table_mut(), "alert", true)?;
            match index {
                Some(index) => {
                    let alert = alerts.get_mut(*index).ok_or_else(|| no_alert(*index))?;
                    set_fields(alert, fields);
                }
                None => {
                    let Some(Some(EditValue::String(kind))) = fields.get("kind") else {
                        return Err(malformed("a new alert needs its `kind`".into()));
                    };
                    let mut alert = Table::new();
                    alert.decor_mut().set_prefix("\n");
                    alert.insert("kind", toml_edit::value(kind.as_str()));
                    set_fields(&mut alert, fields);
                    alerts.push(alert);
                }
            }
            Ok(())
        }
        ConfigEdit::RemoveAlert { index } => {
            let alerts = tables(doc.as_table_mut(), "alert", false)?;
            if *index >= alerts.len() {
                return Err(no_alert(*index));
            }
            alerts.remove(*index);
            if alerts.is_empty() {
                doc.as_table_mut().remove("alert");
            }
            Ok(())
        }
    }
}

/// Sets (or, with `None`, removes) node `node`'s address on link `link`.
fn set_node_address(
    doc: &mut DocumentMut,
    node: &str,
    link: &str,
    address: Option<&str>,
) -> Result<(), Refusal> {
    let links = tables(doc.as_table_mut(), "link", false)?;
    if find(links, link).is_none() {
        return Err(missing(format!("the configuration has no [[link]] `{link}`")));
    }
    let nodes = tables(doc.as_table_mut(), "node", false)?;
    let index = find(nodes, node)
        .ok_or_else(|| missing(format!("the configuration has no [[node]] `{node}`")))?;
    let table = nodes.get_mut(index).expect("found");
    if !table.contains_key("addresses") {
        if address.is_none() {
            return Ok(());
        }
        let mut inline = InlineTable::new();
        inline.decor_mut().set_prefix(" ");
        table.insert("addresses", Item::Value(Value::InlineTable(inline)));
        indent_new_key(table, "addresses");
    }
    let addresses = table
        .get_mut("addresses")
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| malformed(format!("node `{node}`'s addresses are not a table")))?;
    match address {
        Some(address) => match addresses.get_mut(link) {
            Some(item) => {
                let old = item.as_value().cloned();
                *item = Item::Value(keep_decor(old.as_ref(), address.into()));
            }
            None => {
                addresses.insert(link, Item::Value(address.into()));
            }
        },
        None => {
            addresses.remove(link);
        }
    }
    Ok(())
}

/// Sets (or, with `None`, removes) `key` of `[section]`.
fn set_value(
    doc: &mut DocumentMut,
    section: &str,
    key: &str,
    value: &Option<EditValue>,
) -> Result<(), Refusal> {
    if !SECTIONS.contains(&section) {
        let why = format!(
            "`{section}` is not a section whose values the editor sets ({})",
            SECTIONS.join(", ")
        );
        return Err(malformed(why));
    }
    let root = doc.as_table_mut();
    if !root.contains_key(section) {
        if value.is_none() {
            return Ok(());
        }
        let mut table = Table::new();
        table.decor_mut().set_prefix("\n");
        root.insert(section, Item::Table(table));
    }
    let table = root
        .get_mut(section)
        .and_then(Item::as_table_mut)
        .ok_or_else(|| malformed(format!("[{section}] is not written as a table")))?;
    let mut fields = EditFields::new();
    fields.insert(key.to_string(), value.clone());
    set_fields(table, &fields);
    Ok(())
}

fn no_group(name: &str) -> Refusal {
    missing(format!("the configuration has no [[group]] `{name}`"))
}

fn no_resource(group: &str, name: &str) -> Refusal {
    missing(format!("group `{group}` has no resource `{name}`"))
}

fn no_alert(index: usize) -> Refusal {
    missing(format!("the configuration has no alert {index} (they are counted from 0)"))
}

fn forbid(fields: &EditFields, keys: &[&str], whose: &str) -> Result<(), Refusal> {
    match keys.iter().find(|k| fields.contains_key(**k)) {
        Some(key) => Err(malformed(format!("{whose} `{key}` is not set through its fields"))),
        None => Ok(()),
    }
}

/// The array of tables `key` of `table` (`[[key]]`), created empty when absent and
/// `create`; an error for one written inline (`key = [{ ... }]`) or absent.
fn tables<'a>(
    table: &'a mut Table,
    key: &str,
    create: bool,
) -> Result<&'a mut ArrayOfTables, Refusal> {
    if !table.contains_key(key) {
        if !create {
            return Err(missing(format!("the configuration has no [[{key}]]")));
        }
        table.insert(key, Item::ArrayOfTables(ArrayOfTables::new()));
    }
    match table.get_mut(key) {
        Some(Item::ArrayOfTables(array)) => Ok(array),
        _ => Err(malformed(format!(
            "`{key}` is written inline (`{key} = [...]`); the editor changes [[{key}]] sections \
             only"
        ))),
    }
}

/// The index of the table named `name`.
fn find(array: &ArrayOfTables, name: &str) -> Option<usize> {
    array.iter().position(|t| t.get("name").and_then(Item::as_str) == Some(name))
}

/// Adds resource `name` to `group` (after its last one, indented like it), or sets the
/// fields of the one there.
fn put_resource(
    group: &mut Table,
    group_name: &str,
    name: &str,
    fields: &EditFields,
) -> Result<(), Refusal> {
    let resources = tables(group, "resource", true)?;
    if let Some(index) = find(resources, name) {
        set_fields(resources.get_mut(index).expect("found"), fields);
        return Ok(());
    }
    let Some(Some(EditValue::String(kind))) = fields.get("kind") else {
        let why = format!("the new resource `{name}` of group `{group_name}` needs its `kind`");
        return Err(malformed(why));
    };
    let indent = resources
        .iter()
        .last()
        .and_then(|t| t.decor().prefix()?.as_str().map(last_line))
        .unwrap_or_default();
    let mut resource = Table::new();
    resource.decor_mut().set_prefix(format!("\n{indent}"));
    resource.insert("name", toml_edit::value(name));
    resource.insert("kind", toml_edit::value(kind.as_str()));
    // The kind's own keys first, then the keys every kind has.
    let (common, own): (EditFields, EditFields) = fields
        .iter()
        .filter(|(k, _)| *k != "kind")
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, _)| COMMON_RESOURCE_KEYS.contains(&k.as_str()));
    set_fields(&mut resource, &own);
    set_fields(&mut resource, &common);
    for key in resource.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>() {
        if let Some(mut k) = resource.key_mut(&key) {
            k.leaf_decor_mut().set_prefix(indent.clone());
        }
    }
    resources.push(resource);
    Ok(())
}

/// The whitespace that starts the last line of a decor's prefix (its indentation).
fn last_line(prefix: &str) -> String {
    let line = prefix.rsplit('\n').next().unwrap_or_default();
    match line.chars().all(|c| c == ' ' || c == '\t') {
        true => line.to_string(),
        false => String::new(),
    }
}

/// Sets (or, for `None`, removes) each field of `table`; a value that replaces another
/// keeps its decor (the spaces and the comment after it), a new key takes the
/// indentation of the table's first key.
fn set_fields(table: &mut Table, fields: &EditFields) {
    for (key, value) in fields {
        match value {
            None => {
                table.remove(key);
            }
            Some(value) => {
                match table.get_mut(key) {
                    // In place: the key keeps its decor (indentation, comments above).
                    Some(item) => {
                        let old = item.as_value().cloned();
                        *item = Item::Value(keep_decor(old.as_ref(), toml_value(value)));
                    }
                    None => {
                        table.insert(key, Item::Value(toml_value(value)));
                        indent_new_key(table, key);
                    }
                }
            }
        }
    }
}

/// Gives the new key `key` of `table` the indentation of the table's first key.
fn indent_new_key(table: &mut Table, key: &str) {
    let indent = table
        .iter()
        .next()
        .and_then(|(first, _)| table.key(first)?.leaf_decor().prefix()?.as_str().map(last_line))
        .unwrap_or_default();
    if let Some(mut k) = table.key_mut(key) {
        k.leaf_decor_mut().set_prefix(indent);
    }
}

/// `new` with `old`'s decor (the space before it and the comment after it).
fn keep_decor(old: Option<&Value>, mut new: Value) -> Value {
    if let Some(old) = old {
        *new.decor_mut() = old.decor().clone();
    }
    new
}

fn toml_value(value: &EditValue) -> Value {
    match value {
        EditValue::Bool(b) => Value::from(*b),
        EditValue::Integer(i) => Value::from(*i),
        EditValue::String(s) => Value::from(s.as_str()),
        EditValue::List(items) => {
            Value::Array(items.iter().map(String::as_str).collect::<toml_edit::Array>())
        }
        EditValue::Table(entries) => {
            let mut inline = InlineTable::new();
            for (k, v) in entries {
                inline.insert(k, Value::from(v.as_str()));
            }
            inline.fmt();
            Value::InlineTable(inline)
        }
    }
}

/// One key's or section's place in a text: its byte range and its path.
struct Place {
    start: usize,
    end: usize,
    path: Vec<String>,
    section: bool,
}

/// The places of `text`'s keys and sections (see [`contract::EditDiagnostic::path`]).
fn place_map(text: &str) -> Vec<Place> {
    let Ok(doc) = toml_edit::Document::parse(text.to_string()) else { return Vec::new() };
    let mut places = Vec::new();
    walk(doc.as_table(), &[], &mut places);
    places
}

fn walk(table: &Table, path: &[String], places: &mut Vec<Place>) {
    for (key, item) in table.iter() {
        let mut here = path.to_vec();
        here.push(key.to_string());
        let key_start = table.key(key).and_then(|k| k.span()).map(|s| s.start);
        match item {
            Item::Table(sub) => {
                if let Some(span) = sub.span() {
                    places.push(Place {
                        start: span.start,
                        end: span.end,
                        path: here.clone(),
                        section: true,
                    });
                }
                walk(sub, &here, places);
            }
            Item::ArrayOfTables(array) => {
                for (index, sub) in array.iter().enumerate() {
                    let mut entry = here.clone();
                    let name = sub.get("name").and_then(Item::as_str).filter(|_| key != "alert");
                    entry.push(name.map_or_else(|| index.to_string(), str::to_string));
                    if let Some(span) = sub.span() {
                        places.push(Place {
                            start: span.start,
                            end: span.end,
                            path: entry.clone(),
                            section: true,
                        });
                    }
                    walk(sub, &entry, places);
                }
            }
            Item::Value(value) => {
                let Some(span) = value.span() else { continue };
                let start = key_start.unwrap_or(span.start).min(span.start);
                places.push(Place { start, end: span.end, path: here.clone(), section: false });
                if let Value::InlineTable(inline) = value {
                    for (k, v) in inline.iter() {
                        let Some(span) = v.span() else { continue };
                        let start =
                            inline.key(k).and_then(|k| k.span()).map_or(span.start, |s| s.start);
                        let mut inner = here.clone();
                        inner.push(k.to_string());
                        places.push(Place { start, end: span.end, path: inner, section: false });
                    }
                }
            }
            Item::None => {}
        }
    }
}

/// The byte offset of 1-based `line` and character `column` in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let rest = &text[start.min(text.len())..];
    start + rest.char_indices().nth(column.saturating_sub(1)).map_or(rest.len(), |(i, _)| i)
}

/// Each diagnostic of `text` with the key or section it points at: the smallest key or
/// section range holding it, else the last section that starts before it.
pub fn places(text: &str, diagnostics: Vec<ConfigDiagnostic>) -> Vec<EditDiagnostic> {
    let map = place_map(text);
    diagnostics
        .into_iter()
        .map(|diagnostic| {
            let at = offset_of(text, diagnostic.line, diagnostic.column);
            let holding = map
                .iter()
                .filter(|p| p.start <= at && at < p.end.max(p.start + 1))
                .min_by_key(|p| p.end - p.start);
            let place = holding.or_else(|| {
                map.iter().filter(|p| p.section && p.start <= at).max_by_key(|p| p.start)
            });
            EditDiagnostic { diagnostic, path: place.map(|p| p.path.clone()).unwrap_or_default() }
        })
        .collect()
}

/// `text` as JSON (`null` when it does not parse).
pub fn as_json(text: &str) -> serde_json::Value {
    text.parse::<toml::Table>()
        .ok()
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The unified diff of the running text against the edited one.
pub fn diff(running: &str, edited: &str, node: &str, generation: u64) -> String {
    if running == edited {
        return String::new();
    }
    let header = format!("running (node {node}, generation {generation})");
    similar::TextDiff::from_lines(running, edited)
        .unified_diff()
        .context_radius(3)
        .header(&header, "edited")
        .to_string()
}

/// The answer to `POST /v1/config/edit` on the node of `service` (blocking: it reads
/// the store), with its HTTP status: 200 when the edits were made (valid or not), 409
/// when the newest generation is not the request's (E1302), 422 when an edit cannot be
/// made (E1341, E1342), 503 without a generation.
pub fn answer(
    service: &crate::configstore::Service,
    request: &ConfigEditRequest,
) -> (u16, ConfigEditAnswer) {
    let running = match service.show() {
        Ok(doc) => doc,
        Err(why) => return (503, refused(why, None, 0, String::new())),
    };
    if request.generation != running.generation {
        let why = format!(
            "{}: the edits are based on generation {}; node {} has generation {} now (reload \
             the editor and make them again)",
            CONFIG_GENERATION_MOVED_ON.code, request.generation, running.node, running.generation
        );
        return (409, refused(why, None, running.generation, running.toml));
    }
    let edited = match edit(&running.toml, &request.edits) {
        Ok(edited) => edited,
        Err((index, why)) => {
            return (422, refused(why.to_string(), index, running.generation, running.toml))
        }
    };
    let outcome = service.check(&edited);
    let diagnostics = outcome.nodes.into_iter().flat_map(|n| n.diagnostics).collect();
    let answer = ConfigEditAnswer {
        ok: true,
        error: None,
        edit: None,
        generation: running.generation,
        hash: outcome.hash,
        diff: diff(&running.toml, &edited, &running.node, running.generation),
        valid: outcome.valid,
        diagnostics: places(&edited, diagnostics),
        changes: outcome.changes,
        document: as_json(&edited),
        toml: edited,
    };
    (200, answer)
}

fn refused(why: String, edit: Option<usize>, generation: u64, toml: String) -> ConfigEditAnswer {
    ConfigEditAnswer {
        ok: false,
        error: Some(why),
        edit,
        generation,
        hash: crate::configstore::hash(&toml),
        diff: String::new(),
        valid: false,
        diagnostics: Vec::new(),
        changes: Vec::new(),
        document: as_json(&toml),
        toml,
    }
}

#[cfg(test)]
mod tests;
