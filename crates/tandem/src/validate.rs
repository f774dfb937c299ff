//! `tandem validate [FILE]`: checks a configuration file with the `config` crate and
//! prints every diagnostic rustc-style (stderr), then, when the file is valid, a
//! summary and each group's effective start order (stdout). Host checks run as
//! warnings unless `--no-host-checks`. Exit 0 valid (warnings allowed), 1 invalid.
//!
//! Presentation only: what is wrong is decided by the `config` crate, the start order
//! by `engine::GroupSpec::start_order`.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use config::{Config, Diagnostic, Strictness};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(default_value = config::DEFAULT_PATH)]
    file: PathBuf,
    /// Print one JSON document on stdout instead of text (diagnostics included).
    #[arg(long)]
    json: bool,
    /// Do not check that this machine has the files, devices and interfaces the
    /// configuration names (useful when validating away from the nodes).
    #[arg(long)]
    no_host_checks: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (source, mut config, mut diagnostics) = match config::load(&args.file) {
        Ok((config, warnings)) => (config.source.clone(), Some(config), warnings),
        Err(invalid) => (invalid.source, None, invalid.diagnostics),
    };
    // A valid file that asks for what `tandem node` of this version cannot run (E1107)
    // is refused as a whole, as the node refuses it.
    let missing = config.as_ref().map(config::not_in_this_version).unwrap_or_default();
    if !missing.is_empty() {
        diagnostics.extend(missing);
        diagnostics.sort_by_key(|d| d.span.start);
        config = None;
    }
    if let (Some(config), false) = (&config, args.no_host_checks) {
        diagnostics.extend(config::host_checks(config, Strictness::Warn));
        diagnostics.sort_by_key(|d| d.span.start);
    }
    if args.json {
        println!("{}", json(&args, &source, config.as_ref(), &diagnostics));
    } else {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut text = String::new();
        for d in &diagnostics {
            text.push_str(&d.render_styled(&source, color));
            text.push('\n');
        }
        eprint!("{text}");
        if let Some(config) = &config {
            print!("{}", report(&args, config));
        }
        if let Some(summary) = config::summary(&diagnostics) {
            eprintln!("{summary}");
        }
    }
    Ok(if config.is_some() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// The text printed for a valid file.
fn report(args: &Args, config: &Config) -> String {
    let spec = &config.cluster;
    let resources: usize = spec.groups.iter().map(|g| g.resources.len()).sum();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: cluster `{}` is valid: {}, {}, {}, {}, {}; arbitration: {}",
        args.file.display(),
        spec.name,
        plural(spec.nodes.len(), "node"),
        plural(spec.links.len(), "link"),
        plural(spec.groups.len(), "group"),
        plural(resources, "resource"),
        plural(config.alerts.len(), "alert"),
        format!("{:?}", spec.arbitration).to_lowercase(),
    );
    if spec.groups.is_empty() {
        return out;
    }
    let _ = writeln!(out, "effective start order (stop is the reverse):");
    for group in &spec.groups {
        let nodes: Vec<&str> = group.nodes.iter().map(|n| spec.node(*n).name.as_str()).collect();
        let order: Vec<String> = group
            .start_order()
            .into_iter()
            .map(|r| {
                let resource = group.resource(r);
                format!("{} ({})", resource.name, resource.kind.as_str())
            })
            .collect();
        let order =
            if order.is_empty() { "(no resources)".to_string() } else { order.join(" -> ") };
        let _ = writeln!(out, "  group {} ({}): {order}", group.name, nodes.join(" -> "));
    }
    out
}

/// `--json`: `{"file", "valid", "errors", "warnings", "diagnostics": [...], "cluster",
/// "groups": [{"name", "nodes", "start_order": [{"name", "kind"}]}]}`; `cluster` and
/// `groups` only when valid.
fn json(args: &Args, source: &str, config: Option<&Config>, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::from("{");
    let _ = write!(out, "\"file\":{}", string(&args.file.display().to_string()));
    let _ = write!(out, ",\"valid\":{}", config.is_some());
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let _ = write!(out, ",\"errors\":{errors},\"warnings\":{}", diagnostics.len() - errors);
    out.push_str(",\"diagnostics\":[");
    for (i, d) in diagnostics.iter().enumerate() {
        let (line, column) = d.line_column(source);
        let help: Vec<String> = d.help.iter().map(|h| string(h)).collect();
        let _ = write!(
            out,
            "{}{{\"code\":{},\"severity\":{},\"message\":{},\"line\":{line},\"column\":{column},\"label\":{},\"help\":[{}]}}",
            if i == 0 { "" } else { "," },
            string(d.code.code),
            string(d.severity().as_str()),
            string(&d.message),
            string(&d.label),
            help.join(",")
        );
    }
    out.push(']');
    if let Some(config) = config {
        let spec = &config.cluster;
        let _ = write!(out, ",\"cluster\":{},\"groups\":[", string(&spec.name));
        for (i, group) in spec.groups.iter().enumerate() {
            let nodes: Vec<String> =
                group.nodes.iter().map(|n| string(&spec.node(*n).name)).collect();
            let order: Vec<String> = group
                .start_order()
                .into_iter()
                .map(|r| {
                    let resource = group.resource(r);
                    format!(
                        "{{\"name\":{},\"kind\":{}}}",
                        string(&resource.name),
                        string(resource.kind.as_str())
                    )
                })
                .collect();
            let _ = write!(
                out,
                "{}{{\"name\":{},\"nodes\":[{}],\"start_order\":[{}]}}",
                if i == 0 { "" } else { "," },
                string(&group.name),
                nodes.join(","),
                order.join(",")
            );
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::string;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
