//! `tandem node`: runs the daemon for this node (the `daemon` crate), and the hidden
//! `tandem fence-guard` the daemon starts beside it. Exit 0 after a clean stop, 1 when
//! the node refused to start (configuration, host checks, key and state directory
//! permissions, runtime directory, sockets, disk area).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The configuration file.
    #[arg(long, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// This node's name in the configuration (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Where the journal and state live (default: `cluster.state_dir`).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Where the control socket (for `tandem status` and the other commands) and the fence
    /// guard's socket live; created private to the daemon's user.
    #[arg(long, default_value = daemon::access::DEFAULT_RUNTIME_DIR)]
    runtime_dir: PathBuf,
    /// A group whose members may use the control socket (`tandem status`, `switchover`,
    /// ...) besides root and the daemon's user.
    #[arg(long)]
    admin_group: Option<String>,
    /// A watchdog device (e.g. /dev/watchdog) that the fence guard feeds, and lets reset
    /// the machine when the node's resources cannot be stopped (the last resort).
    #[arg(long)]
    watchdog: Option<PathBuf>,
    /// Log lines as human text (`text`, the default) or one JSON object each (`json`).
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    daemon::init_logging(args.log_format == "json");
    let program = std::env::current_exe()?;
    let options = daemon::Options {
        config: args.config,
        name: args.name,
        state_dir: args.state_dir,
        runtime_dir: Some(args.runtime_dir),
        admin_group: args.admin_group,
        program,
        watchdog: args.watchdog,
    };
    match daemon::run(options) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("error: {error:#}");
            Ok(ExitCode::from(1))
        }
    }
}

#[derive(clap::Args)]
pub struct GuardArgs {
    #[arg(long)]
    config: PathBuf,
    #[arg(long)]
    name: String,
    #[arg(long)]
    state_dir: PathBuf,
    #[arg(long)]
    runtime_dir: PathBuf,
    #[arg(long)]
    watchdog: Option<PathBuf>,
}

pub fn guard(args: GuardArgs) -> anyhow::Result<ExitCode> {
    daemon::init_logging(false);
    let options = daemon::guard::GuardOptions {
        config: args.config,
        node: args.name,
        state_dir: args.state_dir,
        runtime_dir: args.runtime_dir,
        watchdog: args.watchdog,
    };
    daemon::guard::run_guard(&options)?;
    Ok(ExitCode::SUCCESS)
}
