//! A typed, span-keeping reader over a parsed TOML document (`toml::de::DeTable`, the
//! span-keeping tree of the `toml` crate's parser, not serde) that reports problems and
//! carries on, so one run lists every error of the file (serde's deserialisation stops
//! at the first). `toml::de::DeTable` rather than a `toml_edit` document: it keeps the
//! same spans, recovers from syntax errors (so all of them are listed), and parses
//! about twice as fast, which matters for files of thousands of groups.
//!
//! [`Ctx`] collects diagnostics; [`Table`] is a TOML table of either form (`[x]` or
//! `{ ... }`) with the place to point at when a key is missing; [`Fields`] reads a
//! table's keys and, when done, reports every key that nobody asked for as unknown
//! (with a "did you mean" from the keys that were asked for). This file knows TOML
//! types, not what `cluster.toml` means: the sections live in `parse/`, one file each.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use engine::catalogue::{self as codes, CodeInfo};
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, LineIndex};
use crate::model::{Span, Spanned};
use crate::values::{self, ValueError};

/// The diagnostics of one parse, and the source they point into.
pub(crate) struct Ctx<'s> {
    pub source: &'s str,
    pub file_name: Arc<str>,
    pub diagnostics: Vec<Diagnostic>,
    lines: Option<LineIndex>,
}

impl<'s> Ctx<'s> {
    pub fn new(source: &'s str, file_name: &str) -> Ctx<'s> {
        Ctx { source, file_name: file_name.into(), diagnostics: Vec::new(), lines: None }
    }

    /// Adds a diagnostic; the returned reference lets the caller add help lines.
    pub fn push(
        &mut self,
        code: &'static CodeInfo,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> &mut Diagnostic {
        self.diagnostics.push(Diagnostic {
            code,
            message: message.into(),
            file_name: self.file_name.clone(),
            span,
            label: label.into(),
            help: Vec::new(),
        });
        self.diagnostics.last_mut().expect("just pushed")
    }

    pub fn push_value_error(&mut self, code: &'static CodeInfo, span: Span, error: ValueError) {
        let d = self.push(code, span, error.message, error.label);
        d.help.extend(error.help);
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// 1-based line of a byte offset, for "first defined on line N".
    pub fn line_of(&mut self, offset: usize) -> usize {
        let source = self.source;
        self.lines.get_or_insert_with(|| LineIndex::new(source)).line_column(source, offset).0
    }

    fn wrong_type(&mut self, entry: &Entry<'_>, expected: &str, help: Option<&str>) {
        let d = self.push(
            &codes::CONFIG_WRONG_TYPE,
            entry.span.clone(),
            format!("`{}` must be {expected}, found {}", entry.key, type_name(entry.item)),
            format!("expected {expected}"),
        );
        d.help.extend(help.map(String::from));
    }

    pub fn string<'a>(&mut self, entry: &Entry<'a>) -> Option<&'a str> {
        match entry.item.as_str() {
            Some(s) => Some(s),
            None => {
                self.wrong_type(entry, "a string", Some("strings are written in double quotes"));
                None
            }
        }
    }

    /// A string that must not be empty.
    pub fn nonempty_string<'a>(&mut self, entry: &Entry<'a>) -> Option<&'a str> {
        let s = self.string(entry)?;
        if s.trim().is_empty() {
            self.push(
                &codes::CONFIG_INVALID_VALUE,
                entry.span.clone(),
                format!("`{}` is empty", entry.key),
                "must not be empty",
            );
            return None;
        }
        Some(s)
    }

    pub fn bool(&mut self, entry: &Entry<'_>) -> Option<bool> {
        match entry.item.as_bool() {
            Some(b) => Some(b),
            None => {
                let help = entry
                    .item
                    .as_str()
                    .filter(|s| matches!(*s, "true" | "false"))
                    .map(|_| "write true or false without quotes");
                self.wrong_type(entry, "a boolean (true or false)", help);
                None
            }
        }
    }

    /// An integer; values beyond i64 saturate (every caller checks a smaller range).
    pub fn integer(&mut self, entry: &Entry<'_>) -> Option<i64> {
        match entry.item {
            DeValue::Integer(i) => {
                let digits = i.as_str();
                Some(match i128::from_str_radix(digits, i.radix()) {
                    Ok(n) => i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX }),
                    Err(_) if digits.starts_with('-') => i64::MIN,
                    Err(_) => i64::MAX,
                })
            }
            _ => {
                let help = entry
                    .item
                    .as_str()
                    .filter(|s| s.parse::<i64>().is_ok())
                    .map(|_| "write the number without quotes");
                self.wrong_type(entry, "an integer", help);
                None
            }
        }
    }

    pub fn duration(&mut self, entry: &Entry<'_>) -> Option<Duration> {
        let Some(text) = entry.item.as_str() else {
            let help = match entry.item {
                DeValue::Integer(n) => {
                    let n = n.as_str();
                    format!("durations are strings with a unit: write \"{n}ms\" or \"{n}s\"")
                }
                _ => format!("durations are strings: {}", values::DURATION_UNITS_HELP),
            };
            self.wrong_type(entry, "a duration string", Some(&help));
            return None;
        };
        match values::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.push_value_error(&codes::CONFIG_BAD_DURATION, entry.span.clone(), e);
                None
            }
        }
    }

    /// A duration that must be greater than zero.
    pub fn positive_duration(&mut self, entry: &Entry<'_>) -> Option<Duration> {
        let d = self.duration(entry)?;
        if d.is_zero() {
            self.push(
                &codes::CONFIG_ZERO_DURATION,
                entry.span.clone(),
                format!("`{}` must be greater than zero", entry.key),
                "zero",
            );
            return None;
        }
        Some(d)
    }

    /// An absolute path.
    pub fn path(&mut self, entry: &Entry<'_>) -> Option<Spanned<PathBuf>> {
        let text = self.nonempty_string(entry)?;
        if !text.starts_with('/') {
            let d = self.push(
                &codes::CONFIG_INVALID_VALUE,
                entry.span.clone(),
                format!("`{}` must be an absolute path, found \"{text}\"", entry.key),
                "relative path",
            );
            d.help
                .push("paths start with '/': the daemon does not run in a fixed directory".into());
            return None;
        }
        Some(Spanned { value: PathBuf::from(text), span: entry.span.clone() })
    }

    /// A table in either form; a wrong type is reported.
    pub fn table<'a>(&mut self, entry: &Entry<'a>) -> Option<Table<'a>> {
        match entry.item {
            DeValue::Table(t) => Some(Table { map: t, anchor: entry.span.clone() }),
            _ => {
                self.wrong_type(entry, "a table", None);
                None
            }
        }
    }

    /// A list of tables: `[[key]]` sections or an array of inline tables.
    pub fn tables<'a>(&mut self, entry: &Entry<'a>) -> Vec<Table<'a>> {
        match entry.item {
            // `[[key]]` sections and `key = [{ ... }]` look the same here.
            DeValue::Array(array) => {
                let mut out = Vec::with_capacity(array.len());
                for element in array.iter() {
                    match element.get_ref() {
                        DeValue::Table(t) => out.push(Table { map: t, anchor: element.span() }),
                        other => {
                            self.push(
                                &codes::CONFIG_WRONG_TYPE,
                                element.span(),
                                format!(
                                    "elements of `{}` must be tables, found {}",
                                    entry.key,
                                    type_name(other)
                                ),
                                "expected a table",
                            );
                        }
                    }
                }
                out
            }
            _ => {
                let help = format!("write a [[{}]] section for each one", entry.key);
                self.wrong_type(entry, "an array of tables", Some(&help));
                Vec::new()
            }
        }
    }

    /// An array whose elements must all be strings; `None` (and diagnostics) if not.
    pub fn strings<'a>(&mut self, entry: &Entry<'a>) -> Option<Vec<(&'a str, Span)>> {
        let Some(array) = entry.item.as_array() else {
            self.wrong_type(entry, "an array of strings", Some("write [\"a\", \"b\"]"));
            return None;
        };
        let mut out = Vec::with_capacity(array.len());
        let mut ok = true;
        for element in array.iter() {
            let span = element.span();
            match element.get_ref().as_str() {
                Some(s) => out.push((s, span)),
                None => {
                    ok = false;
                    self.push(
                        &codes::CONFIG_WRONG_TYPE,
                        span,
                        format!(
                            "elements of `{}` must be strings, found {}",
                            entry.key,
                            type_name(element.get_ref())
                        ),
                        "expected a string",
                    );
                }
            }
        }
        ok.then_some(out)
    }

    /// A table whose values must all be strings (env, params).
    pub fn string_table<'a>(&mut self, entry: &Entry<'a>) -> Option<Vec<(&'a str, Span, &'a str)>> {
        let table = self.table(entry)?;
        let mut out = Vec::new();
        let mut ok = true;
        for (key, key_span, item, span) in table.entries() {
            match item.as_str() {
                Some(s) => out.push((key, key_span, s)),
                None => {
                    ok = false;
                    self.push(
                        &codes::CONFIG_WRONG_TYPE,
                        span,
                        format!(
                            "values of `{}` must be strings, found {} for `{key}`",
                            entry.key,
                            type_name(item)
                        ),
                        "expected a string",
                    )
                    .help
                    .push("write numbers and switches in quotes here, e.g. \"1\"".into());
                }
            }
        }
        ok.then_some(out)
    }
}

/// A TOML table of either form, and where to point when one of its keys is missing.
/// A table: `[x]` (its span is the header), `{ ... }` or an implicit table of dotted
/// keys (its span is the key's).
#[derive(Clone)]
pub(crate) struct Table<'a> {
    map: &'a DeTable<'a>,
    pub anchor: Span,
}

type Value<'a> = toml::Spanned<DeValue<'a>>;
type Key<'a> = toml::Spanned<toml::de::DeString<'a>>;

impl<'a> Table<'a> {
    pub fn root(table: &'a DeTable<'a>) -> Table<'a> {
        Table { map: table, anchor: 0..0 }
    }

    pub fn get(&self, key: &str) -> Option<Entry<'a>> {
        let (k, v) = self.map.get_key_value(key)?;
        Some(make_entry(k, v))
    }

    /// Every key with its span, value and value span.
    pub fn entries(&self) -> impl Iterator<Item = (&'a str, Span, &'a DeValue<'a>, Span)> + 'a {
        self.map.iter().map(|(k, v)| (k.get_ref().as_ref(), k.span(), v.get_ref(), v.span()))
    }
}

fn make_entry<'a>(key: &'a Key<'a>, value: &'a Value<'a>) -> Entry<'a> {
    Entry {
        key: key.get_ref().as_ref(),
        key_span: key.span(),
        item: value.get_ref(),
        span: value.span(),
    }
}

/// One `key = value` of a table.
#[derive(Clone)]
pub(crate) struct Entry<'a> {
    pub key: &'a str,
    pub key_span: Span,
    pub item: &'a DeValue<'a>,
    /// The value's span (for a table: its header or its key).
    pub span: Span,
}

/// Reads the keys of one table and reports the ones nobody read.
pub(crate) struct Fields<'a> {
    pub table: Table<'a>,
    known: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub fn new(table: Table<'a>) -> Fields<'a> {
        Fields { table, known: Vec::new() }
    }

    pub fn get(&mut self, key: &'static str) -> Option<Entry<'a>> {
        self.known.push(key);
        self.table.get(key)
    }

    /// Like `get`, reporting a missing key (E1004) at the table's anchor.
    pub fn require(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: &'static str,
        what: &str,
    ) -> Option<Entry<'a>> {
        let entry = self.get(key);
        if entry.is_none() {
            ctx.push(
                &codes::CONFIG_MISSING_KEY,
                self.table.anchor.clone(),
                format!("missing key `{key}` in {what}"),
                format!("this table has no `{key}`"),
            );
        }
        entry
    }

    /// Marks keys as known without reading them (they were read elsewhere).
    pub fn allow(&mut self, keys: &[&'static str]) {
        self.known.extend_from_slice(keys);
    }

    /// Reports every key that was not asked for, as E1002. `hint` may explain a key
    /// that belongs elsewhere (e.g. to another resource kind).
    pub fn finish(self, ctx: &mut Ctx<'_>, what: &str, hint: &dyn Fn(&str) -> Option<String>) {
        for (key, key_span, _, _) in self.table.entries() {
            if self.known.contains(&key) {
                continue;
            }
            let mut help = Vec::new();
            if let Some(h) = hint(key) {
                help.push(h);
            } else if let Some(s) = suggest(key, self.known.iter().copied()) {
                help.push(format!("did you mean `{s}`?"));
            }
            let d = ctx.push(
                &codes::CONFIG_UNKNOWN_KEY,
                key_span,
                format!("unknown key `{key}` in {what}"),
                "unknown key",
            );
            d.help = help;
        }
    }
}

/// The closest candidate to `word` if it is close enough to be a typing mistake.
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            let lower = word.to_ascii_lowercase();
            // A prefix of at least three letters ("warn" for "warning") is a near miss.
            let prefix =
                lower.len().min(c.len()) >= 3 && (c.starts_with(&lower) || lower.starts_with(c));
            let d = if c.eq_ignore_ascii_case(word) || prefix { 0 } else { edit_distance(word, c) };
            (d, c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best =
                (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

pub(crate) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["name", "kind", "port", "path"];
        assert_eq!(suggest("prot", keys), Some("port"));
        assert_eq!(suggest("nmae", keys), Some("name"));
        assert_eq!(suggest("Kind", keys), Some("kind"));
        assert_eq!(suggest("interval", keys), None);
        assert_eq!(suggest("nodes", ["node", "link"]), Some("node"));
        assert_eq!(suggest("warn", ["info", "warning", "error"]), Some("warning"));
        assert_eq!(suggest("automatic", ["manual", "auto"]), Some("auto"));
        assert_eq!(suggest("a", ["auto"]), None);
    }
}
