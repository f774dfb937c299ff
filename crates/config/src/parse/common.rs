//! What every section reader shares: names (E1006, E1007), a word from a fixed set
//! (E1021), addresses (E1017, E1019, E1020), the limit on repeated tables (E1030) and a
//! required list of sections that is missing (E1005). Each reports into the [`Ctx`]
//! and returns what it could read; none reads a section of its own.

use std::net::SocketAddr;

use engine::catalogue as codes;

use crate::model::Span;
use crate::reader::{suggest, Ctx, Entry, Fields};
use crate::values::{self, AddressError};

/// Reads `name` and checks it (E1007). An invalid name is still returned (the error
/// is reported), so that references to it do not cascade into more errors.
pub(super) fn read_name(
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
pub(super) fn duplicate_name(
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
pub(super) fn read_choice<T: Copy>(
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
pub(super) fn address_error(ctx: &mut Ctx<'_>, span: Span, error: AddressError) {
    let (code, error) = match error {
        AddressError::Ip(e) => (&codes::CONFIG_BAD_IP, e),
        AddressError::Port(e) => (&codes::CONFIG_BAD_PORT, e),
        AddressError::Shape(e) => (&codes::CONFIG_BAD_SOCKET_ADDRESS, e),
    };
    ctx.push_value_error(code, span, error);
}

pub(super) fn socket_address(ctx: &mut Ctx<'_>, entry: &Entry<'_>) -> Option<SocketAddr> {
    let text = ctx.string(entry)?;
    values::parse_socket_address(text).map_err(|e| address_error(ctx, entry.span.clone(), e)).ok()
}

/// Reports the first table beyond a limit (E1030).
pub(super) fn limit_exceeded(
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

/// A required list of sections that is missing or written as an empty array (a
/// wrong type is reported as such, not as missing).
pub(super) fn is_absent_or_empty(entry: Option<&Entry<'_>>) -> bool {
    match entry.map(|e| e.item) {
        None => true,
        Some(item) => item.as_array().is_some_and(|a| a.is_empty()),
    }
}

pub(super) fn missing_section(ctx: &mut Ctx<'_>, anchor: &Span, section: &str, what: &str) {
    ctx.push(
        &codes::CONFIG_MISSING_SECTION,
        anchor.clone(),
        format!("missing [[{section}]]: the cluster has no {what}"),
        format!("no [[{section}]] in this file"),
    )
    .help
    .push(format!("add at least one [[{section}]] table"));
}
