//! `tandem`: the one binary. A thin command-line layer over the library crates; each
//! subcommand lives in its own module and returns the process exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod configcmd;
mod control;
mod demo;
mod disk;
mod explain;
mod hello;
mod inventory;
mod keygen;
mod node;
mod remote;
mod simulate;
mod user;
mod validate;

#[derive(Parser)]
#[command(
    name = "tandem",
    version,
    about = "High-availability cluster manager",
    after_help = remote::EXIT_CODES
)]
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
    /// A two-node cluster on this machine, a crash and the failover (as root: a lab of
    /// network namespaces with a virtual IP and a shared disk; otherwise on loopback).
    Demo(demo::Args),
    /// The shared-disk area: `tandem disk init` formats it.
    Disk(disk::Args),
    /// Write a new cluster key (DIR/cluster.key), the API's cluster CA (DIR/ca.crt,
    /// DIR/ca.key) and, with --config, each node's API certificate (DIR/NODE.crt, NODE.key).
    Keygen(keygen::Args),
    /// The HTTPS API's users: `add NAME --role R` (prints its token once), `remove`, `list`.
    User(user::Args),
    /// What this host has to choose from: interfaces, block devices, OCF agents with their
    /// parameters, systemd units, LSB scripts (taken here, without a running node).
    Inventory(inventory::Args),
    /// Run the daemon for this node.
    Node(node::Args),
    /// The cluster as the local node sees it.
    Status(control::StatusArgs),
    /// Planned move of a group to another node.
    Switchover(control::SwitchoverArgs),
    /// Move every group off a node and keep them off.
    Drain(control::NodeArg),
    /// Allow a drained node to run groups again.
    Undrain(control::NodeArg),
    /// `on`: stop acting on resources (they keep running); `off`: probe and resume.
    Maintenance(control::MaintenanceArgs),
    /// Forget a group's failures (all its resources, or one) and unlock it.
    Clear(control::ClearArgs),
    /// The local node's event journal.
    Events(control::EventsArgs),
    /// One configuration for every node: `push FILE`, `show`, `diff FILE`, `history`,
    /// `restore GEN`.
    Config(configcmd::Args),
    /// The fence guard the daemon starts beside itself (not for direct use).
    #[command(hide = true)]
    FenceGuard(node::GuardArgs),
    /// A tiny HTTP server answering with its node's name (demo and lab service).
    #[command(hide = true)]
    Hello(hello::Args),
    /// The client of `hello`: one line per attempt (demo, lab tests, benchmarks).
    #[command(hide = true)]
    Probe(hello::ProbeArgs),
    /// The lab's per-host init (`testbed::init`), so that labs built by `tandem demo`
    /// and tests need no other program: `LabBuilder::init_command([tandem, lab-init])`.
    #[command(hide = true)]
    LabInit {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Disk(args) => disk::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::User(args) => user::run(args),
        Command::Inventory(args) => inventory::run(args),
        Command::Node(args) => node::run(args),
        Command::Status(args) => control::status(args),
        Command::Switchover(args) => control::switchover(args),
        Command::Drain(args) => control::drain(args, true),
        Command::Undrain(args) => control::drain(args, false),
        Command::Maintenance(args) => control::maintenance(args),
        Command::Clear(args) => control::clear(args),
        Command::Events(args) => control::events(args),
        Command::Config(args) => configcmd::run(args),
        Command::FenceGuard(args) => node::guard(args),
        Command::Hello(args) => hello::run(args),
        Command::Probe(args) => hello::probe(args),
        Command::LabInit { args } => return testbed::init::main(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // 1, not 2: 2 is the argument parser's (`remote::EXIT_CODES`).
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
