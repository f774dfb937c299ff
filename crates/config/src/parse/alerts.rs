//! `[[alert]]`: where events are sent (e-mail, a webhook or a script) and from which
//! severity on; at most [`ALERTS_MAX`] of them.

use engine::catalogue::{self as codes, Severity};

use super::common::{address_error, limit_exceeded, read_choice};
use crate::model::{AlertConfig, AlertTarget};
use crate::reader::{Ctx, Entry, Fields};
use crate::values;

/// At most this many `[[alert]]` tables.
pub const ALERTS_MAX: usize = 32;

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
