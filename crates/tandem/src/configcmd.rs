//! `tandem config push FILE / show / diff FILE / history / restore GEN`: one
//! configuration for every node (PRODUCT.md section 3, item 10; docs/configuration-push.md).
//!
//! Presentation only: the node asked (the local daemon's control socket, or any node's
//! API with `--endpoint`, [`crate::remote`]) keeps the generations and makes the push
//! (`daemon::configstore`); these commands read and print what it answers. `push`
//! validates the file here first (as `tandem validate --no-host-checks`: each node
//! checks its own host), so that a broken file never leaves this machine. Exit codes
//! are the other node commands' ([`crate::remote::EXIT_CODES`]).

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use contract::{Answer, ConfigDocument, ConfigOutcome, Request};

use crate::remote::{Failure, Target};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    place: Target,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Validate FILE here, then push it to every node: checked on every node against its
    /// host, then applied on every node, or refused whole with every node's diagnostics.
    Push {
        file: PathBuf,
        /// The generation FILE was based on (refused if the running one moved on);
        /// default: the running generation, read just before the push.
        #[arg(long)]
        generation: Option<u64>,
        /// Print the node's answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the running configuration (its generation and hash on stderr).
    Show {
        /// An earlier generation this node keeps, instead of the running one.
        #[arg(long)]
        generation: Option<u64>,
        /// The whole document (toml, generation, hash, what waits for a restart) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// A unified diff of the running configuration (---) against FILE (+++).
    Diff { file: PathBuf },
    /// The generations the node keeps: hash, time, who pushed each, what changed.
    History {
        #[arg(long)]
        json: bool,
    },
    /// Push generation GEN's text again, as a new generation.
    Restore {
        generation: u64,
        #[arg(long)]
        json: bool,
    },
}

fn failed(failure: Failure) -> ExitCode {
    eprintln!("error: {}", failure.message());
    ExitCode::from(failure.exit_code())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let place = &args.place;
    let result = match args.command {
        Command::Show { generation, json } => show(place, generation, json),
        Command::History { json } => history(place, json),
        Command::Diff { file } => diff(place, &file),
        Command::Push { file, generation, json } => {
            let text = match read_valid(&file) {
                Ok(text) => text,
                Err(code) => return Ok(code),
            };
            push(place, &text, generation, json)
        }
        Command::Restore { generation, json } => {
            match document(place, Request::ConfigGet { generation }) {
                Ok(doc) => push(place, &doc.toml, None, json),
                Err(failure) => Err(failure),
            }
        }
    };
    Ok(result.unwrap_or_else(failed))
}

/// A configuration document the node answers with.
fn document(place: &Target, request: Request) -> Result<ConfigDocument, Failure> {
    let answer = place.ask_config(&request)?.accepted().map_err(Failure::Refused)?;
    answer.config.map(|d| *d).ok_or_else(|| Failure::Busy("the answer has no configuration".into()))
}

fn show(place: &Target, generation: Option<u64>, json: bool) -> Result<ExitCode, Failure> {
    let request = match generation {
        Some(generation) => Request::ConfigGet { generation },
        None => Request::ConfigShow,
    };
    let doc = document(place, request)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("# node {}: generation {}, sha256 {}", doc.node, doc.generation, doc.hash);
    if doc.running_generation != doc.generation {
        eprintln!(
            "# the daemon runs generation {} until it restarts: {}",
            doc.running_generation,
            doc.restart_needed.join(", ")
        );
    }
    if doc.file_edited {
        eprintln!(
            "# W1301: the configuration file on {} was edited by hand since (`tandem explain \
             W1301`)",
            doc.node
        );
    }
    print!("{}", doc.toml);
    Ok(ExitCode::SUCCESS)
}

fn history(place: &Target, json: bool) -> Result<ExitCode, Failure> {
    let answer = place.ask_config(&Request::ConfigHistory)?.accepted().map_err(Failure::Refused)?;
    let generations = answer.history.unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string_pretty(&generations).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    for g in &generations {
        let changes = if g.changes.is_empty() { "-".to_string() } else { g.changes.join(", ") };
        println!(
            "{:>6}  {}  {}  via {}  by {}\n        {changes}",
            g.generation,
            &g.hash[..12.min(g.hash.len())],
            g.time,
            g.via,
            g.by
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn diff(place: &Target, file: &std::path::Path) -> Result<ExitCode, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Refused(format!("cannot read {}: {e}", file.display())))?;
    let doc = document(place, Request::ConfigShow)?;
    print!("{}", unified(&doc, &text, &file.display().to_string()));
    Ok(ExitCode::SUCCESS)
}

/// The unified diff of the running text against `text` (nothing when they are equal).
fn unified(doc: &ConfigDocument, text: &str, name: &str) -> String {
    let diff = similar::TextDiff::from_lines(doc.toml.as_str(), text);
    let running = format!("running (node {}, generation {})", doc.node, doc.generation);
    diff.unified_diff().context_radius(3).header(&running, name).to_string()
}

/// FILE's text when it is a valid configuration for this version; the diagnostics
/// printed and exit 1 otherwise.
fn read_valid(file: &std::path::Path) -> Result<String, ExitCode> {
    let (config, mut diagnostics) = match config::load(file) {
        Ok((config, warnings)) => (Some(config), warnings),
        Err(invalid) => {
            eprint!("{}", invalid.render(color()));
            eprintln!("error: {} is not valid; nothing was pushed", file.display());
            return Err(ExitCode::from(1));
        }
    };
    let config = config.expect("valid");
    diagnostics.extend(config::not_in_this_version(&config));
    let mut text = String::new();
    for d in &diagnostics {
        text.push_str(&d.render_styled(&config.source, color()));
        text.push('\n');
    }
    eprint!("{text}");
    if diagnostics.iter().any(|d| d.is_error()) {
        eprintln!("error: {} cannot be run by tandem node; nothing was pushed", file.display());
        return Err(ExitCode::from(1));
    }
    Ok(config.source)
}

fn color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn push(
    place: &Target,
    text: &str,
    generation: Option<u64>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let generation = match generation {
        Some(generation) => generation,
        None => document(place, Request::ConfigShow)?.generation,
    };
    let answer = place.ask_config(&Request::ConfigPush { toml: text.to_string(), generation })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
    } else {
        print!("{}", render_push(&answer));
    }
    Ok(if answer.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// A push's answer for a person: every node's verdict and diagnostics, what changed and
/// when it takes effect, or why it was refused.
fn render_push(answer: &Answer) -> String {
    let mut out = String::new();
    let outcome: Option<&ConfigOutcome> = answer.outcome.as_deref();
    for verdict in outcome.map(|o| o.nodes.as_slice()).unwrap_or_default() {
        // An applied push went without the nodes that did not accept it: they were down.
        let word = match (verdict.accepted, answer.ok) {
            (true, _) => "accepted",
            (false, true) => "down, not asked",
            (false, false) => "REFUSED",
        };
        let _ = writeln!(out, "node {}: {word}", verdict.node);
        for d in &verdict.diagnostics {
            let _ = writeln!(
                out,
                "  {}[{}] line {}:{}: {} ({})",
                d.severity, d.code, d.line, d.column, d.message, d.label
            );
            for help in &d.help {
                let _ = writeln!(out, "    = help: {help}");
            }
        }
        if let Some(error) = &verdict.error {
            let _ = writeln!(out, "  {error}");
        }
    }
    match (answer.ok, outcome) {
        (true, Some(outcome)) => {
            let generation = outcome.generation.unwrap_or_default();
            if outcome.changes.is_empty() {
                let _ = writeln!(out, "no change: generation {generation} has this text");
            } else {
                let every = match outcome.nodes.iter().all(|v| v.accepted) {
                    true => "every node",
                    false => "every node that is up (the others take it when they come back)",
                };
                let _ = writeln!(out, "generation {generation} applied on {every}:");
            }
            for change in &outcome.changes {
                let when = if change.live {
                    "applied now".to_string()
                } else {
                    format!(
                        "takes effect when tandem node restarts on {}",
                        change.restart.join(", ")
                    )
                };
                let _ = writeln!(out, "  {}: {when}", change.what);
            }
        }
        _ => {
            let _ = writeln!(
                out,
                "error: {}",
                answer.error.as_deref().unwrap_or("the push was refused")
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_is_unified_and_empty_for_the_same_text() {
        let doc = ConfigDocument {
            node: "alpha".into(),
            generation: 4,
            hash: String::new(),
            toml: "a = 1\nb = 2\n".into(),
            running_generation: 4,
            restart_needed: Vec::new(),
            file_edited: false,
        };
        assert_eq!(unified(&doc, "a = 1\nb = 2\n", "new.toml"), "");
        let diff = unified(&doc, "a = 1\nb = 3\n", "new.toml");
        assert!(
            diff.starts_with("--- running (node alpha, generation 4)\n+++ new.toml\n"),
            "{diff}"
        );
        assert!(diff.contains("\n-b = 2\n+b = 3\n"), "{diff}");
    }
}
