//! `[[alert]]`: where events are sent (e-mail, a webhook or a script) and from which
//! severity on; at most [`ALERTS_MAX`] of them.

use std::time::Duration;

use engine::catalogue::{self as codes, Severity};

use super::common::{address_error, limit_exceeded, read_choice};
use crate::model::{AlertConfig, AlertTarget, Spanned};
use crate::reader::{Ctx, Entry, Fields};
use crate::values;
use std::path::PathBuf;

/// At most this many `[[alert]]` tables.
pub const ALERTS_MAX: usize = 32;

/// `gather`'s default: long enough that what one fault makes a node log in the same
/// moment (a host crash: links down, peer offline, taking over its groups) goes out as
/// one message, short enough that the message still comes at once.
pub const GATHER_DEFAULT: Duration = Duration::from_secs(2);

/// `rate_limit`'s default: at most one message a minute per target, so that a flapping
/// link sends one message and then, once it is quiet for a minute, one summary.
pub const RATE_LIMIT_DEFAULT: Duration = Duration::from_secs(60);

/// The longest `gather`: past this a message is late rather than gathered.
const GATHER_MAX: Duration = Duration::from_secs(60);

pub(super) fn read_alerts(ctx: &mut Ctx<'_>, entry: Option<Entry<'_>>) -> Vec<AlertConfig> {
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
        let gather = fields.get("gather").map_or(Some(GATHER_DEFAULT), |e| {
            let d = ctx.positive_duration(&e)?;
            if d > GATHER_MAX {
                ctx.push(
                    &codes::CONFIG_INVALID_VALUE,
                    e.span.clone(),
                    format!("`gather` is {d:?}"),
                    "at most 60s: past that a message is late rather than gathered",
                );
                return None;
            }
            Some(d)
        });
        let rate_limit = fields
            .get("rate_limit")
            .map_or(Some(RATE_LIMIT_DEFAULT), |e| ctx.positive_duration(&e));
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
                Some(url.to_string())
            })
            .and_then(|url| {
                let ca_file = read_optional_path(ctx, &mut fields, "ca_file")?;
                Some(AlertTarget::Webhook { url, ca_file })
            }),
            Some(_) => fields
                .require(ctx, "path", "an [[alert]] of kind \"script\"")
                .and_then(|e| ctx.path(&e))
                .map(|path| AlertTarget::Script { path }),
            None => {
                fields.allow(&[
                    "smtp",
                    "starttls",
                    "from",
                    "to",
                    "username",
                    "password_file",
                    "ca_file",
                    "url",
                    "path",
                ]);
                None
            }
        };
        let kind_name = ["email", "webhook", "script"].get(usize::from(kind.unwrap_or(9))).copied();
        fields.finish(ctx, what, &|key| {
            let owner = match key {
                "smtp" | "starttls" | "from" | "to" | "username" | "password_file" => "email",
                "url" => "webhook",
                "ca_file" => "email\" or \"webhook",
                "path" => "script",
                _ => return None,
            };
            kind_name.map(|k| format!("`{key}` applies to alerts of kind \"{owner}\", not \"{k}\""))
        });
        if let (Some(target), Some(min_severity), Some(gather), Some(rate_limit)) =
            (target, min_severity, gather, rate_limit)
        {
            alerts.push(AlertConfig { min_severity, gather, rate_limit, target });
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
    let username = fields.get("username").map(|e| ctx.nonempty_string(&e).map(str::to_string));
    let password_file = read_optional_path(ctx, fields, "password_file");
    // AUTH needs both; a password never stands in the file itself.
    let auth_ok = match (&username, &password_file) {
        (Some(_), Some(None)) | (None, Some(Some(_))) => {
            let (present, missing) = if username.is_some() {
                ("username", "password_file")
            } else {
                ("password_file", "username")
            };
            let span = fields.table.anchor.clone();
            ctx.push(
                &codes::CONFIG_MISSING_KEY,
                span,
                format!("`{present}` without `{missing}`"),
                "SMTP AUTH needs both `username` and `password_file` (a file readable by root only)",
            );
            false
        }
        _ => true,
    };
    let ca_file = read_optional_path(ctx, fields, "ca_file");
    if !auth_ok {
        return None;
    }
    Some(AlertTarget::Email {
        smtp: smtp?,
        starttls: starttls?,
        from: from?,
        to: to?,
        username: username.flatten(),
        password_file: password_file?,
        ca_file: ca_file?,
    })
}

/// An optional path key: `Some(None)` when absent, `None` when present and invalid.
fn read_optional_path(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    key: &'static str,
) -> Option<Option<Spanned<PathBuf>>> {
    match fields.get(key) {
        Some(e) => ctx.path(&e).map(Some),
        None => Some(None),
    }
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
