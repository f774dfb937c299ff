//! `tandem`: the one binary. A thin command-line layer over the library crates; each
//! subcommand lives in its own module and returns the process exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod disk;
mod explain;
mod keygen;
mod simulate;
mod validate;

#[derive(Parser)]
#[command(name = "tandem", version, about = "High-availability cluster manager")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a configuration file; print every error and each group's effective start order.
    Validate(validate::Args),
    /// Print the cause and fix for an error, warning or event code (e.g. W2101).
    Explain(explain::Args),
    /// Run the real decision core under simulated time and faults; report guarantee violations.
    Simulate(simulate::Args),
    /// The shared-disk area: `tandem disk init` formats it.
    Disk(disk::Args),
    /// Write a new cluster key to DIR/cluster.key (the API's TLS certificate comes with
    /// the API, later).
    Keygen(keygen::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Disk(args) => disk::run(args),
        Command::Keygen(args) => keygen::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
