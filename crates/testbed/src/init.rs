//! The init of one lab host: the program that runs as PID 1 of the host's own PID
//! namespace, inside its own (private) mount namespace and its network namespace. It
//! sets up the host's view of the file system, says `ready`, and then only reaps: every
//! orphan of the host is re-parented to it and collected at once (the machine's own
//! PID 1 reaps only every second or two, LAB-NOTES), so a killed process never looks
//! alive. When it dies, the kernel kills everything else in the host: that is how the
//! lab crashes a host exactly.
//!
//! Set-up, in order: `/sys` is mounted afresh, so that `/sys/class/net` shows the host's
//! own interfaces (as `ip netns exec` does); then every `--bind SOURCE:TARGET` is
//! bind-mounted (the lab binds its per-host `etc-tandem`, `var-lib-tandem` and `run`
//! directories over `/etc/tandem`, `/var/lib/tandem` and `/run`). `/proc` is mounted by
//! `unshare --mount-proc`, which starts this program. It must not do anything else: it
//! runs no command, opens no socket and signals nobody.
//!
//! [`main`] is the whole program, so that any binary can carry it (the crate's
//! `testbed-init`, or a hidden subcommand of another tool given to
//! [`crate::LabBuilder::init_command`]).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

/// What the init prints on stdout once the host is set up.
pub const READY: &str = "ready";

/// Runs the init with its arguments (without the program name): `[--bind SOURCE:TARGET]...`.
/// Returns only on a set-up error (after printing it); otherwise it reaps until killed.
pub fn main(args: &[String]) -> ExitCode {
    match run(args) {
        Ok(never) => match never {},
        Err(error) => {
            eprintln!("testbed-init: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The uninhabited result of the reaping loop.
enum Never {}

fn run(args: &[String]) -> Result<Never, String> {
    let binds = parse(args)?;
    if std::process::id() != 1 {
        return Err("must run as PID 1 of a new PID namespace (unshare --pid --fork)".into());
    }
    // Block SIGCHLD before anything can exit, so that no wake-up is lost between reaping
    // and waiting: a blocked signal stays pending until `wait` takes it.
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&chld), None)
        .map_err(|e| format!("blocking SIGCHLD: {e}"))?;
    remount_sys()?;
    for (source, target) in &binds {
        mount(
            Some(Path::new(source)),
            Path::new(target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| format!("bind-mounting {source} on {target}: {e}"))?;
    }
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{READY}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    loop {
        reap_all();
        // Any child's exit (own or adopted) raises SIGCHLD; a failed wait only means
        // the loop reaps again.
        let _ = chld.wait();
    }
}

/// The `--bind SOURCE:TARGET` pairs of `args`.
fn parse(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut binds = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bind" => {
                let pair = args.next().ok_or("--bind needs SOURCE:TARGET")?;
                let (source, target) =
                    pair.split_once(':').ok_or_else(|| format!("--bind {pair}: no ':'"))?;
                binds.push((source.to_owned(), target.to_owned()));
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (usage: [--bind SOURCE:TARGET]...)"
                ))
            }
        }
    }
    Ok(binds)
}

/// Replaces `/sys` by a sysfs mounted from inside the host's network namespace.
fn remount_sys() -> Result<(), String> {
    match umount2("/sys", MntFlags::MNT_DETACH) {
        // Not mounted (a minimal root): mount it all the same.
        Ok(()) | Err(Errno::EINVAL) => {}
        Err(error) => return Err(format!("unmounting /sys: {error}")),
    }
    mount(Some("sysfs"), "/sys", Some("sysfs"), MsFlags::empty(), None::<&str>)
        .map_err(|e| format!("mounting /sys: {e}"))
}

/// Collects every child that has exited, without blocking.
fn reap_all() {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn binds_are_parsed_in_order() {
        let binds = parse(&strings(&["--bind", "/a:/b", "--bind", "/c:/d"])).unwrap();
        assert_eq!(binds, [("/a".into(), "/b".into()), ("/c".into(), "/d".into())]);
        assert!(parse(&strings(&["--bind"])).is_err());
        assert!(parse(&strings(&["--bind", "nocolon"])).is_err());
        assert!(parse(&strings(&["--other"])).is_err());
    }

    #[test]
    fn it_refuses_to_run_outside_a_pid_namespace() {
        // The test process is not PID 1: nothing is mounted, the reason is given.
        let error = run(&[]).err().expect("refused");
        assert!(error.contains("PID 1"), "{error}");
    }
}
