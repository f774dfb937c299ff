//! Who may reach a node through its local files: the runtime directory and the sockets
//! in it (`control.sock` for the CLI, `guard.sock` for the fence guard), the kernel's
//! credentials of each connection, the fence guard's token, and the rules for the
//! cluster key file and the state directory. `control` and `guard` use it; it decides
//! nothing about the cluster.
//!
//! **A socket exists only with its final mode.** bind(2) creates the socket file with
//! mode `0777 & ~umask`, and the umask is per process: setting it around a bind would
//! race every other thread that creates files meanwhile (agents on the blocking pool,
//! the journal), and a chmod after the bind leaves a window. So nothing here touches
//! the umask: [`bind`] binds in a fresh private directory (0700) inside the runtime
//! directory, gives the socket its mode and group there, and renames it into place.
//! The runtime directory itself is the daemon user's own, 0700, or 0750 with the admin
//! group as its group ([`prepare_runtime_dir`]).
//!
//! **Callers.** [`peer`] reads SO_PEERCRED: the user, group and PID of the process that
//! connected, as the kernel recorded them at `connect`. [`Access::check`] admits root,
//! the daemon's own user and members of the admin group (`tandem node --admin-group`),
//! and names the caller for the journal.
//!
//! **The guard's controller.** The guard takes commands only from a process of its own
//! user whose first line is `hello <token>`, the token being the runtime directory's
//! `guard.token` (0600), which the daemon that starts a guard writes and a restarted
//! daemon reads ([`accept_controller`], [`hello`]).

use std::fmt;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use engine::catalogue;
use nix::sys::socket::{getsockopt, sockopt};
use nix::unistd::{Gid, Group, Uid, User};

/// The runtime directory when `tandem node --runtime-dir` does not name one.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/tandem";

/// The fence guard's token in the runtime directory.
pub const GUARD_TOKEN_FILE: &str = "guard.token";

/// How long the guard waits for a new connection's `hello` line. The daemon sends it
/// right after connecting.
const HELLO_WAIT: Duration = Duration::from_millis(200);

/// Longest `hello` line read.
const HELLO_BYTES_MAX: usize = 128;

/// The group whose members may use the control socket besides root and the daemon's
/// user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminGroup {
    pub name: String,
    pub gid: u32,
}

impl AdminGroup {
    /// Looks `name` up in the group database (E5106 when it does not exist).
    pub fn lookup(name: &str) -> anyhow::Result<AdminGroup> {
        match Group::from_name(name) {
            Ok(Some(group)) => Ok(AdminGroup { name: name.to_string(), gid: group.gid.as_raw() }),
            Ok(None) => anyhow::bail!(
                "{}: the admin group `{name}` does not exist on this host (create it with \
                 `groupadd {name}`, or correct --admin-group)",
                catalogue::ADMIN_GROUP_UNKNOWN.code
            ),
            Err(e) => anyhow::bail!(
                "{}: cannot look the admin group `{name}` up: {e}",
                catalogue::ADMIN_GROUP_UNKNOWN.code
            ),
        }
    }
}

fn runtime_dir_error(dir: &Path, why: impl fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: the runtime directory {} {why}; remove it so that the daemon creates it, or pass \
         another --runtime-dir",
        catalogue::RUNTIME_DIR_UNSAFE.code,
        dir.display()
    )
}

/// The node's local ways in, as [`prepare`] left them.
pub struct Local {
    /// The runtime directory, absolute, private to the daemon's user.
    pub runtime_dir: PathBuf,
    /// Who may use the control socket.
    pub access: Access,
}

/// What `tandem node` checks and prepares before it opens anything: the state directory
/// (created 0755 when missing; refused when others may write to it, E5102), the key
/// file (E5101), the admin group (E5106) and the runtime directory (default
/// [`DEFAULT_RUNTIME_DIR`], E5103).
pub fn prepare(
    state_dir: &Path,
    key_file: &Path,
    runtime_dir: Option<&Path>,
    admin_group: Option<&str>,
) -> anyhow::Result<Local> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(state_dir)
        .with_context(|| format!("creating the state directory {}", state_dir.display()))?;
    check_state_dir(state_dir)?;
    check_key_file(key_file)?;
    let group = admin_group.map(AdminGroup::lookup).transpose()?;
    let runtime_dir = runtime_dir.unwrap_or(Path::new(DEFAULT_RUNTIME_DIR));
    prepare_runtime_dir(runtime_dir, group.as_ref())?;
    let runtime_dir =
        std::fs::canonicalize(runtime_dir).map_err(|e| runtime_dir_error(runtime_dir, e))?;
    Ok(Local { runtime_dir, access: Access::new(group) })
}

/// Creates the runtime directory if needed and makes it private: owned by the daemon's
/// user (refused otherwise, E5103), mode 0700, or 0750 with `group` as its group.
pub fn prepare_runtime_dir(dir: &Path, group: Option<&AdminGroup>) -> anyhow::Result<()> {
    let missing =
        std::fs::symlink_metadata(dir).is_err_and(|e| e.kind() == io::ErrorKind::NotFound);
    if missing {
        if let Err(e) = DirBuilder::new().recursive(true).mode(0o700).create(dir) {
            return Err(runtime_dir_error(dir, format_args!("cannot be created: {e}")));
        }
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| runtime_dir_error(dir, e))?;
    if !meta.is_dir() {
        return Err(runtime_dir_error(dir, "is not a directory"));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(runtime_dir_error(
            dir,
            format_args!("belongs to uid {}, not to the daemon's user (uid {me})", meta.uid()),
        ));
    }
    // Only a directory of the node's own is re-moded: never /run or /tmp by mistake.
    let entries = std::fs::read_dir(dir).map_err(|e| runtime_dir_error(dir, e))?;
    for entry in entries {
        let name = entry.map_err(|e| runtime_dir_error(dir, e))?.file_name();
        let name = name.to_string_lossy();
        let ours = matches!(name.as_ref(), "control.sock" | "guard.sock" | GUARD_TOKEN_FILE)
            || name.starts_with(".bind-")
            || name.starts_with(&format!(".{GUARD_TOKEN_FILE}."));
        if !ours {
            return Err(runtime_dir_error(
                dir,
                format_args!("holds other files (`{name}`): the node needs a directory of its own"),
            ));
        }
    }
    let mode = match group {
        Some(group) => {
            nix::unistd::chown(dir, None, Some(Gid::from_raw(group.gid))).map_err(|e| {
                runtime_dir_error(
                    dir,
                    format_args!("cannot be given to group `{}`: {e}", group.name),
                )
            })?;
            0o750
        }
        None => 0o700,
    };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(|e| runtime_dir_error(dir, e))?;
    Ok(())
}

/// Binds a listening socket `dir/name` that exists only with `mode` (and `group`): bound
/// in a fresh private directory, given its mode there, renamed into place (replacing a
/// stale socket of that name). `dir` must be the daemon user's.
pub fn bind(dir: &Path, name: &str, mode: u32, group: Option<u32>) -> io::Result<UnixListener> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let staging =
        dir.join(format!(".bind-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    // Left over by a process of the same PID that died here (after a reboot).
    let _ = std::fs::remove_dir_all(&staging);
    // At most 0700 whatever the umask is: the umask only takes bits away.
    DirBuilder::new().mode(0o700).create(&staging)?;
    let bound = (|| {
        let temp = staging.join(name);
        let listener = UnixListener::bind(&temp)?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))?;
        if let Some(gid) = group {
            nix::unistd::chown(&temp, None, Some(Gid::from_raw(gid)))?;
        }
        std::fs::rename(&temp, dir.join(name))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    bound
}

/// The kernel's credentials of a connected Unix socket's other end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
}

/// The credentials of `socket`'s peer (SO_PEERCRED: as of its `connect`).
pub fn peer(socket: &impl AsFd) -> io::Result<Peer> {
    let credentials = getsockopt(socket, sockopt::PeerCredentials)?;
    Ok(Peer { uid: credentials.uid(), gid: credentials.gid(), pid: credentials.pid() })
}

/// Who sent a request to the loop, as the journal names it: `alice (uid 1000, pid 4242)`
/// on the control socket, `alice (role operator, through the API from 10.0.0.5:50312)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A process on this host, through the control socket.
    Local {
        peer: Peer,
        /// The user's name, when the user database has one.
        user: Option<String>,
    },
    /// A user of the HTTPS API (`crate::api`): its name and role in the users file, and
    /// the client's address.
    Api { user: String, role: crate::api::users::Role, address: std::net::SocketAddr },
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Local { peer: Peer { uid, pid, .. }, user: Some(user) } => {
                write!(f, "{user} (uid {uid}, pid {pid})")
            }
            Caller::Local { peer: Peer { uid, pid, .. }, user: None } => {
                write!(f, "uid {uid} (pid {pid})")
            }
            Caller::Api { user, role, address } => {
                write!(f, "{user} (role {role}, through the API from {address})")
            }
        }
    }
}

/// Who may use the control socket: root, the daemon's own user, and members of the
/// admin group.
#[derive(Clone, Debug)]
pub struct Access {
    me: u32,
    group: Option<AdminGroup>,
}

impl Access {
    pub fn new(group: Option<AdminGroup>) -> Access {
        Access { me: nix::unistd::geteuid().as_raw(), group }
    }

    /// The admin group, if any.
    pub fn group(&self) -> Option<&AdminGroup> {
        self.group.as_ref()
    }

    /// The caller if `peer` may use the control socket, else the refusal (E5104) as the
    /// CLI shows it. Blocking: reads the user and group databases (membership is read
    /// anew for every connection, so a change applies without a restart).
    pub fn check(&self, peer: Peer) -> Result<Caller, String> {
        let user = User::from_uid(Uid::from_raw(peer.uid)).ok().flatten();
        let caller = Caller::Local { peer, user: user.as_ref().map(|u| u.name.clone()) };
        if peer.uid == 0 || peer.uid == self.me {
            return Ok(caller);
        }
        if let Some(group) = &self.group {
            let member = peer.gid == group.gid
                || user.as_ref().is_some_and(|u| {
                    std::ffi::CString::new(u.name.as_str()).ok().is_some_and(|name| {
                        nix::unistd::getgrouplist(&name, Gid::from_raw(peer.gid))
                            .is_ok_and(|groups| groups.contains(&Gid::from_raw(group.gid)))
                    })
                });
            if member {
                return Ok(caller);
            }
        }
        let who = user.as_ref().map_or_else(|| format!("uid {}", peer.uid), |u| u.name.clone());
        let fix = match &self.group {
            Some(group) => format!(
                "run it as root, or add the user to the admin group: `usermod -aG {} {who}`",
                group.name
            ),
            None => "run it as root (`sudo tandem ...`), or start the node with \
                     `--admin-group GROUP` and add the user to GROUP"
                .to_string(),
        };
        Err(format!(
            "{}: {caller} may not use this node's control socket: only root, the daemon's \
             user (uid {}){} may; {fix}",
            catalogue::CONTROL_REFUSED.code,
            self.me,
            self.group.as_ref().map(|g| format!(" and the group `{}`", g.name)).unwrap_or_default()
        ))
    }
}

/// Writes a new guard token (random, hex) to `dir/guard.token`, mode 0600, replacing
/// any older one: done by the daemon that starts a guard, before it starts it.
pub fn new_guard_token(dir: &Path) -> io::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let temp = dir.join(format!(".{GUARD_TOKEN_FILE}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(token.as_bytes())?;
        std::fs::rename(&temp, dir.join(GUARD_TOKEN_FILE))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.map(|()| token)
}

/// The guard token of `dir` (written by the daemon that started the guard).
pub fn read_guard_token(dir: &Path) -> io::Result<String> {
    Ok(std::fs::read_to_string(dir.join(GUARD_TOKEN_FILE))?.trim().to_string())
}

/// The daemon's first line to the guard of runtime directory `dir`.
pub fn hello(stream: &mut UnixStream, dir: &Path) -> io::Result<()> {
    let token = read_guard_token(dir)?;
    stream.write_all(format!("hello {token}\n").as_bytes())
}

/// Accepts one connection on the guard's socket and returns it (blocking) when it comes
/// from a process of the guard's own user whose first line is `hello <token>`; anything
/// else is closed and logged (W5105). The line is read byte by byte so that the
/// commands after it stay in the socket for the guard's poll. A silent connection of
/// the guard's own user holds the guard for at most [`HELLO_WAIT`]; no other user can
/// hold it at all (refused before any read).
pub fn accept_controller(listener: &UnixListener, token: &str) -> Option<UnixStream> {
    let (stream, _) = listener.accept().ok()?;
    let foreign = |why: String| {
        tracing::warn!(
            code = catalogue::GUARD_FOREIGN.code,
            "{}: ignored a connection to the fence guard: {why}",
            catalogue::GUARD_FOREIGN.code
        );
        None
    };
    let peer = match peer(&stream) {
        Ok(peer) => peer,
        Err(e) => return foreign(format!("no credentials ({e})")),
    };
    let me = nix::unistd::geteuid().as_raw();
    if peer.uid != me {
        return foreign(format!(
            "uid {} (pid {}) is not the guard's user (uid {me})",
            peer.uid, peer.pid
        ));
    }
    stream.set_nonblocking(false).ok()?;
    let deadline = std::time::Instant::now() + HELLO_WAIT;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        // The whole line within HELLO_WAIT, however it trickles in.
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return foreign(format!("pid {} did not present the guard's token", peer.pid));
        }
        match (&stream).read(&mut byte) {
            // A daemon checking whether a guard listens closes without a word.
            Ok(0) if line.is_empty() => return None,
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) if line.len() < HELLO_BYTES_MAX => line.push(byte[0]),
            _ => return foreign(format!("pid {} did not present the guard's token", peer.pid)),
        }
    }
    let expected = format!("hello {token}");
    // Compared in full whatever the first difference (no timing hint).
    let same = line.len() == expected.len()
        && line.iter().zip(expected.bytes()).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0;
    if !same {
        return foreign(format!("pid {} presented a wrong token", peer.pid));
    }
    stream.set_read_timeout(None).ok()?;
    Some(stream)
}

/// Refuses a cluster key file that is not private (E5101): it must be a regular file
/// owned by root or by the daemon's user, with no permission for group or others (the
/// rule ssh applies to private keys).
pub fn check_key_file(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the cluster key {}", path.display()))?;
    let me = nix::unistd::geteuid().as_raw();
    let mode = meta.mode() & 0o7777;
    let problem = if !meta.is_file() {
        Some("is not a regular file".to_string())
    } else if meta.uid() != 0 && meta.uid() != me {
        Some(format!("belongs to uid {}, not to root (or the daemon's user, uid {me})", meta.uid()))
    } else if mode & 0o077 != 0 {
        Some(format!("has mode {mode:04o}: group or others may read or change it"))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => anyhow::bail!(
            "{}: the cluster key {shown} {problem}; nothing was started (fix: `chown root: \
             {shown}; chmod 600 {shown}`)",
            catalogue::KEY_FILE_EXPOSED.code,
            shown = path.display()
        ),
    }
}

/// Refuses a state directory that others may write to (E5102).
pub fn check_state_dir(dir: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot read the state directory {}", dir.display()))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 {
        anyhow::bail!(
            "{}: the state directory {shown} has mode {mode:04o}: any user may write to it; \
             nothing was started (fix: `chmod o-w {shown}`)",
            catalogue::STATE_DIR_EXPOSED.code,
            shown = dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn the_runtime_dir_is_private_and_ours() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("run/tandem");
        prepare_runtime_dir(&dir, None).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // A directory left open by someone is closed again.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        prepare_runtime_dir(&dir, None).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // With an admin group (here our own primary group): 0750 and that group.
        let gid = nix::unistd::getegid().as_raw();
        let group = AdminGroup { name: "ours".into(), gid };
        prepare_runtime_dir(&dir, Some(&group)).unwrap();
        assert_eq!(mode(&dir), 0o750);
        assert_eq!(std::fs::metadata(&dir).unwrap().gid(), gid);
        // Not a directory: refused with its code.
        let file = top.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = prepare_runtime_dir(&file, None).unwrap_err().to_string();
        assert!(err.starts_with("E5103") && err.contains("not a directory"), "{err}");
        // A directory with other files (`--runtime-dir /run` by mistake) is left alone.
        let shared = top.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(shared.join("other.pid"), "1").unwrap();
        let err = prepare_runtime_dir(&shared, None).unwrap_err().to_string();
        assert!(err.starts_with("E5103") && err.contains("`other.pid`"), "{err}");
        assert_eq!(mode(&shared), 0o755);
    }

    #[test]
    fn a_socket_never_exists_with_another_mode() {
        // A watcher looks at the socket's name as fast as it can while it is bound again
        // and again: it must only ever see the final mode (with a chmod after the bind,
        // it sees the umask's mode now and then).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.sock");
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = std::collections::BTreeSet::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(meta) = std::fs::symlink_metadata(&path) {
                        seen.insert(meta.mode() & 0o777);
                    }
                }
                seen
            })
        };
        for _ in 0..2000 {
            drop(bind(dir.path(), "test.sock", 0o600, None).unwrap());
        }
        stop.store(true, Ordering::Relaxed);
        let seen = watcher.join().unwrap();
        let seen: Vec<String> = seen.into_iter().map(|m| format!("{m:o}")).collect();
        assert_eq!(seen, ["600"], "modes the socket's name was seen with");
        assert_eq!(mode(&path), 0o600);
        // Nothing else is left in the directory.
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("test.sock")]);
    }

    #[test]
    fn a_key_file_must_be_private_and_ours() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("cluster.key");
        std::fs::write(&key, "x").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        check_key_file(&key).unwrap();
        for open in [0o644, 0o640, 0o604, 0o620] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(open)).unwrap();
            let err = check_key_file(&key).unwrap_err().to_string();
            assert!(err.starts_with("E5101") && err.contains("chmod 600"), "{open:o}: {err}");
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
        check_key_file(&key).unwrap();
        if nix::unistd::geteuid().is_root() {
            // Owned by another user (nobody): refused even with mode 0600.
            nix::unistd::chown(&key, Some(Uid::from_raw(65534)), None).unwrap();
            let err = check_key_file(&key).unwrap_err().to_string();
            assert!(err.starts_with("E5101") && err.contains("uid 65534"), "{err}");
        }
    }

    #[test]
    fn a_state_dir_writable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        check_state_dir(dir.path()).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_state_dir(dir.path()).unwrap_err().to_string();
        assert!(err.starts_with("E5102") && err.contains("chmod o-w"), "{err}");
    }

    #[test]
    fn the_guard_takes_a_controller_only_with_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let token = new_guard_token(dir.path()).unwrap();
        assert_eq!(mode(&dir.path().join(GUARD_TOKEN_FILE)), 0o600);
        assert_eq!(read_guard_token(dir.path()).unwrap(), token);
        let listener = bind(dir.path(), "guard.sock", 0o600, None).unwrap();
        let path = dir.path().join("guard.sock");
        let attempt = |first: &[u8]| {
            let mut client = UnixStream::connect(&path).unwrap();
            client.write_all(first).unwrap();
            client.write_all(b"disarm\n").unwrap();
            let accepted = accept_controller(&listener, &token);
            accepted.map(|stream| {
                // The command after the hello is still there to read.
                let mut rest = String::new();
                stream.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
                let _ = (&stream).take(7).read_to_string(&mut rest);
                rest
            })
        };
        assert_eq!(attempt(b"").as_deref(), None, "no hello");
        assert_eq!(attempt(b"hello wrong\n").as_deref(), None);
        assert_eq!(attempt(format!("hello {token}x\n").as_bytes()).as_deref(), None);
        let mut client = UnixStream::connect(&path).unwrap();
        hello(&mut client, dir.path()).unwrap();
        client.write_all(b"disarm\n").unwrap();
        let stream = accept_controller(&listener, &token).expect("the daemon's hello");
        let mut rest = [0u8; 7];
        (&stream).read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"disarm\n");
        // A probe that closes without a word is no controller.
        drop(UnixStream::connect(&path).unwrap());
        assert!(accept_controller(&listener, &token).is_none());
        // A connection that trickles (or says nothing) holds the guard for HELLO_WAIT.
        let mut slow = UnixStream::connect(&path).unwrap();
        slow.write_all(b"hel").unwrap();
        let started = std::time::Instant::now();
        assert!(accept_controller(&listener, &token).is_none());
        assert!(started.elapsed() < HELLO_WAIT + Duration::from_millis(100));
    }

    /// Run by [`a_process_of_another_user_is_no_controller`] as another user: connects to
    /// the socket it is given and presents the right token. Does nothing otherwise.
    #[test]
    fn helper_connects_with_the_token() {
        let (Ok(path), Ok(token)) =
            (std::env::var("ACCESS_HELPER_SOCKET"), std::env::var("ACCESS_HELPER_TOKEN"))
        else {
            return;
        };
        let mut client = UnixStream::connect(path).unwrap();
        // The guard may have closed the connection already (that is the point).
        let _ = client.write_all(format!("hello {token}\ndisarm\n").as_bytes());
        std::thread::sleep(Duration::from_millis(500));
    }

    #[test]
    fn a_process_of_another_user_is_no_controller() {
        if let Err(missing) = testgate::root() {
            testgate::cannot_run(
                "a_process_of_another_user_is_no_controller",
                &format!("{missing} (to run a client as nobody)"),
            );
            return;
        }
        use std::os::unix::process::CommandExt;
        // Reachable by nobody (a socket mode mistake): only the credentials stop it.
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let token = new_guard_token(dir.path()).unwrap();
        let listener = bind(dir.path(), "guard.sock", 0o666, None).unwrap();
        let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "access::tests::helper_connects_with_the_token", "--nocapture"])
            .env("ACCESS_HELPER_SOCKET", dir.path().join("guard.sock"))
            .env("ACCESS_HELPER_TOKEN", &token)
            .uid(65534)
            .gid(65534)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        listener.set_nonblocking(false).unwrap();
        assert!(accept_controller(&listener, &token).is_none(), "nobody became the controller");
        assert!(helper.wait().unwrap().success(), "the helper could not connect");
    }
}
