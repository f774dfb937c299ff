//! The agents' conformance suite: every implemented kind that runs something (process,
//! script, lsb, ocf with a test OCF agent, and `heartbeat:Dummy` when Debian's
//! `resource-agents` is installed) passes the same lifecycle checks against real
//! processes; `nic` and `app`, which run nothing, have their own checks at the end. Each case lives
//! in its own temporary directory and kills every process it started (by process id and
//! process group, never by name) when it ends, even on failure. The kind-specific
//! checks (a hung start is killed; SIGTERM ignored escalates to SIGKILL; systemd's
//! coded failure where it is not the init system; OCF required parameters; `process` re-attaching after a restart)
//! are here too. It must not install anything: what a test needs and does not find
//! fails it under the test command and skips it loudly otherwise (`testgate`).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use agents::{build, Agent, Context};
use config::{OcfParams, ProcessParams, ResourceParams, Spanned};
use engine::OpResult;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::{getpgid, Pid};
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_secs(5);
const DUMMY: &str = "/usr/lib/ocf/resource.d/heartbeat/Dummy";

fn spanned<T>(value: T) -> Spanned<T> {
    Spanned { value, span: 0..0 }
}

/// How a case's resource is made to die behind the agent's back.
enum Death {
    /// SIGKILL the process whose id is in this file.
    Kill(PathBuf),
    /// Remove this state file (agents with no process, like Dummy).
    Remove(PathBuf),
}

/// One resource under test, in its own directory; dropping it kills what it started.
struct Case {
    name: &'static str,
    agent: Box<dyn Agent>,
    /// Files holding ids of processes the case may have left running.
    pid_files: Vec<PathBuf>,
    death: Death,
    dir: TempDir,
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = self.agent.stop(Duration::from_secs(2));
        for file in &self.pid_files {
            if let Some(pid) = read_pid(file) {
                kill_everything_of(pid);
            }
        }
    }
}

fn read_pid(file: &Path) -> Option<Pid> {
    let text = fs::read_to_string(file).ok()?;
    text.trim().parse::<i32>().ok().filter(|pid| *pid > 1).map(Pid::from_raw)
}

/// The process id in `file`, once written (a process writes it just after its start).
fn wait_for_pid(file: &Path) -> Pid {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(pid) = read_pid(file) {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid in {}", file.display());
        thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILLs `pid`, its process group and the group `pid` would lead (the recorded id
/// may be a group's whose leader is gone), never our own group.
fn kill_everything_of(pid: Pid) {
    let ours = getpgid(None).ok();
    for group in [getpgid(Some(pid)).ok(), Some(pid)].into_iter().flatten() {
        if Some(group) != ours && group.as_raw() > 1 {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
    let _ = kill(pid, Signal::SIGKILL);
}

/// The live (not zombie) processes of process group `group`, from /proc.
fn live_members(group: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == group.to_string() {
            found.push(pid);
        }
    }
    found
}

/// Whether `pid` is a live process (a zombie is not).
fn alive(pid: Pid) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rfind(')').map(|i| &stat[i + 2..i + 3]) != Some("Z"),
        Err(_) => false,
    }
}

/// A fresh directory under cargo's target directory (where executables surely may run,
/// unlike a `/tmp` mounted `noexec`).
fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("agents-conformance-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

fn write_executable(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A shell resource script that runs `sleep` in the background, monitored through a
/// pid file in `$DIR`. `status` is its status action, `not_running` that action's
/// "not running" exit code. If `$DIR/hang` exists, start hangs.
fn service_script(dir_line: &str, status: &str, not_running: u8) -> String {
    format!(
        r#"#!/bin/sh
{dir_line}
PIDFILE="$DIR/daemon.pid"
running() {{
    [ -s "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE")
    [ -r "/proc/$pid/stat" ] || return 1
    state=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -c1)
    [ "$state" != Z ]
}}
case "$1" in
start)
    echo $$ > "$DIR/start.pgid"
    if [ -e "$DIR/hang" ]; then sleep 1000; fi
    running && exit 0
    sleep 1000 >/dev/null 2>&1 &
    echo $! > "$PIDFILE"
    exit 0 ;;
stop)
    if running; then
        kill "$(cat "$PIDFILE")"
        i=0
        while running && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
        running && exit 1
    fi
    rm -f "$PIDFILE"
    exit 0 ;;
{status})
    running && exit 0
    exit {not_running} ;;
meta-data)
    cat <<'END'
<?xml version="1.0"?>
<resource-agent name="sleeper" version="1">
<parameters>
<parameter name="state" required="1" unique="1"><content type="string"/></parameter>
<parameter name="comment" required="0"><content type="string"/></parameter>
</parameters>
<actions><action name="start" timeout="20s"/></actions>
</resource-agent>
END
    exit 0 ;;
*)
    exit 3 ;;
esac
"#
    )
}

fn context(dir: &Path) -> Context {
    let mut context = Context::new("rsc", dir.join("log"));
    context.ocf_root = dir.join("ocf");
    context.init_dir = dir.join("init.d");
    context
}

fn process_case(script: &str) -> Case {
    let dir = temp_dir();
    let pid_file = dir.path().join("daemon.pid");
    let script = script.replace("PIDFILE", &pid_file.display().to_string());
    let params = ResourceParams::Process(ProcessParams {
        command: spanned(vec!["/bin/sh".into(), "-c".into(), script]),
        cwd: Some(spanned(dir.path().to_path_buf())),
        env: BTreeMap::from([("TANDEM_TEST".into(), "1".into())]),
        user: None,
    });
    let agent = build(&params, &context(dir.path())).unwrap();
    Case {
        name: "process",
        agent,
        pid_files: vec![pid_file.clone()],
        death: Death::Kill(pid_file),
        dir,
    }
}

fn script_case() -> Case {
    let dir = temp_dir();
    let path = dir.path().join("bin/service");
    let dir_line = format!("DIR='{}'", dir.path().display());
    write_executable(&path, &service_script(&dir_line, "status", 3));
    let params = ResourceParams::Script { path: spanned(path) };
    let agent = build(&params, &context(dir.path())).unwrap();
    service_case("script", agent, dir)
}

fn lsb_case() -> Case {
    let dir = temp_dir();
    let dir_line = format!("DIR='{}'", dir.path().display());
    write_executable(&dir.path().join("init.d/sleeper"), &service_script(&dir_line, "status", 3));
    let params = ResourceParams::Lsb { service: spanned("sleeper".into()) };
    let agent = build(&params, &context(dir.path())).unwrap();
    service_case("lsb", agent, dir)
}

fn ocf_params(provider: &str, agent_type: &str, params: &[(&str, String)]) -> ResourceParams {
    ResourceParams::Ocf(OcfParams {
        provider: provider.into(),
        agent_type: agent_type.into(),
        agent_span: 0..0,
        params: params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
    })
}

fn ocf_case() -> Case {
    let dir = temp_dir();
    let path = dir.path().join("ocf/resource.d/tandem-test/sleeper");
    write_executable(&path, &service_script(r#"DIR="$OCF_RESKEY_state""#, "monitor", 7));
    let params =
        ocf_params("tandem-test", "sleeper", &[("state", dir.path().display().to_string())]);
    let agent = build(&params, &context(dir.path())).unwrap();
    service_case("ocf", agent, dir)
}

fn service_case(name: &'static str, agent: Box<dyn Agent>, dir: TempDir) -> Case {
    let pid_file = dir.path().join("daemon.pid");
    let pid_files = vec![pid_file.clone(), dir.path().join("start.pgid")];
    Case { name, agent, pid_files, death: Death::Kill(pid_file), dir }
}

/// `heartbeat:Dummy` from Debian's resource-agents, when installed.
fn dummy_case() -> Option<Case> {
    if let Err(missing) = testgate::path(DUMMY, "resource-agents") {
        testgate::cannot_run("the heartbeat:Dummy case", &missing);
        return None;
    }
    let dir = temp_dir();
    let state = dir.path().join("dummy.state");
    let params = ocf_params("heartbeat", "Dummy", &[("state", state.display().to_string())]);
    let mut context = Context::new("rsc", dir.path().join("log"));
    context.ocf_root = PathBuf::from(agents::DEFAULT_OCF_ROOT);
    let agent = build(&params, &context).unwrap();
    Some(Case {
        name: "ocf heartbeat:Dummy",
        agent,
        pid_files: Vec::new(),
        death: Death::Remove(state),
        dir,
    })
}

const SLEEPER: &str = "echo $$ > 'PIDFILE'; exec sleep 1000";

/// Every case of the shared suite.
fn all_cases() -> Vec<Case> {
    let mut cases = vec![process_case(SLEEPER), script_case(), lsb_case(), ocf_case()];
    cases.extend(dummy_case());
    cases
}

fn assert_result(case: &Case, what: &str, got: OpResult, want: OpResult) {
    assert_eq!(got, want, "{}: {what}", case.name);
}

#[test]
fn lifecycle_is_idempotent() {
    for case in all_cases() {
        let a = &case.agent;
        assert_result(&case, "probe when stopped", a.probe(TIMEOUT), OpResult::NotRunning);
        assert_result(&case, "monitor when stopped", a.monitor(TIMEOUT), OpResult::NotRunning);
        assert_result(&case, "start", a.start(TIMEOUT), OpResult::Ok);
        assert_result(&case, "monitor after start", a.monitor(TIMEOUT), OpResult::Ok);
        assert_result(&case, "probe after start", a.probe(TIMEOUT), OpResult::Ok);
        assert_result(&case, "second start", a.start(TIMEOUT), OpResult::Ok);
        assert_result(&case, "monitor after second start", a.monitor(TIMEOUT), OpResult::Ok);
        assert_result(&case, "stop", a.stop(TIMEOUT), OpResult::Ok);
        assert_result(&case, "monitor after stop", a.monitor(TIMEOUT), OpResult::NotRunning);
        let second = a.stop(TIMEOUT);
        assert!(
            matches!(second, OpResult::Ok | OpResult::NotRunning),
            "{}: second stop: {second:?}",
            case.name
        );
        assert_result(&case, "probe after stop", a.probe(TIMEOUT), OpResult::NotRunning);
        if let Death::Kill(file) = &case.death {
            if let Some(pid) = read_pid(file) {
                assert!(!alive(pid), "{}: process {pid} still runs after stop", case.name);
            }
        }
    }
}

#[test]
fn a_resource_that_dies_is_not_running() {
    for case in all_cases() {
        assert_result(&case, "start", case.agent.start(TIMEOUT), OpResult::Ok);
        assert_result(&case, "monitor", case.agent.monitor(TIMEOUT), OpResult::Ok);
        match &case.death {
            Death::Kill(file) => {
                let pid = wait_for_pid(file);
                kill(pid, Signal::SIGKILL).unwrap();
            }
            Death::Remove(file) => fs::remove_file(file).unwrap(),
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut last = case.agent.monitor(TIMEOUT);
        while last != OpResult::NotRunning && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
            last = case.agent.monitor(TIMEOUT);
        }
        assert_result(&case, "monitor after death", last, OpResult::NotRunning);
    }
}

/// Kinds whose start runs an agent (a `process` start is a spawn: it cannot hang).
#[test]
fn a_hung_start_is_killed_with_its_group_and_reported_timeout() {
    for case in [script_case(), lsb_case(), ocf_case()] {
        fs::write(case.dir.path().join("hang"), "").unwrap();
        let timeout = Duration::from_millis(500);
        let began = Instant::now();
        assert_result(&case, "hung start", case.agent.start(timeout), OpResult::Timeout);
        let took = began.elapsed();
        assert!(took < timeout + Duration::from_secs(1), "{}: took {took:?}", case.name);
        let group = read_pid(&case.dir.path().join("start.pgid")).expect("start wrote its pgid");
        let left = live_members(group.as_raw());
        assert!(left.is_empty(), "{}: processes left in group {group}: {left:?}", case.name);
    }
}

#[test]
fn stop_escalates_to_sigkill_when_sigterm_is_ignored() {
    let case = process_case("trap '' TERM; echo $$ > 'PIDFILE'; exec sleep 1000");
    assert_result(&case, "start", case.agent.start(TIMEOUT), OpResult::Ok);
    let pid = wait_for_pid(&case.dir.path().join("daemon.pid"));
    let stop_timeout = Duration::from_secs(1);
    let began = Instant::now();
    assert_result(&case, "stop", case.agent.stop(stop_timeout), OpResult::Ok);
    let took = began.elapsed();
    // `Ok` means it was reaped within the timeout by the agent's own clock; this bound
    // only adds the call's overhead on a loaded machine.
    assert!(took <= stop_timeout + Duration::from_millis(200), "stop took {took:?}");
    assert!(took >= stop_timeout / 2, "stop took only {took:?}: was SIGTERM ignored?");
    assert!(!alive(pid), "process {pid} survived the stop");
    assert_result(&case, "monitor", case.agent.monitor(TIMEOUT), OpResult::NotRunning);
}

#[test]
fn a_process_that_exits_at_once_is_not_running() {
    let case = process_case("echo $$ > 'PIDFILE'; exit 1");
    assert_result(&case, "start", case.agent.start(TIMEOUT), OpResult::Ok);
    let deadline = Instant::now() + Duration::from_secs(3);
    while case.agent.monitor(TIMEOUT) != OpResult::NotRunning && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_result(&case, "monitor", case.agent.monitor(TIMEOUT), OpResult::NotRunning);
}

#[test]
fn a_missing_program_fails_to_start() {
    let dir = temp_dir();
    let params = ResourceParams::Script { path: spanned(dir.path().join("missing")) };
    let agent = build(&params, &context(dir.path())).unwrap();
    let OpResult::Failed(message) = agent.start(TIMEOUT) else { panic!("start succeeded") };
    assert!(message.contains("missing"), "{message}");
}

#[test]
fn ocf_start_without_a_required_parameter_fails() {
    let case = ocf_case();
    let params = ocf_params("tandem-test", "sleeper", &[]);
    let agent = build(&params, &context(case.dir.path())).unwrap();
    let OpResult::Failed(message) = agent.start(TIMEOUT) else { panic!("start succeeded") };
    assert!(message.contains("state"), "{message}");
    assert!(!case.dir.path().join("start.pgid").exists(), "start ran anyway");
}

#[test]
fn ocf_exit_codes_carry_their_meaning() {
    let dir = temp_dir();
    write_executable(&dir.path().join("ocf/resource.d/tandem-test/broken"), "#!/bin/sh\nexit 5\n");
    let agent = build(&ocf_params("tandem-test", "broken", &[]), &context(dir.path())).unwrap();
    let OpResult::Failed(message) = agent.monitor(TIMEOUT) else { panic!("monitor succeeded") };
    assert!(message.contains("exited with 5") && message.contains("not installed"), "{message}");
}

#[test]
fn systemd_fails_with_a_stable_message_where_it_is_not_init() {
    const TEST: &str = "systemd_fails_with_a_stable_message_where_it_is_not_init";
    if agents::systemd::booted() {
        // This host runs systemd: the test runs again where it does not seem to, in a
        // mount namespace of its own with an empty /run/systemd (root only).
        if std::env::var_os("TANDEM_TEST_HIDDEN_SYSTEMD").is_some() {
            panic!("/run/systemd/system is still there inside the private mount namespace");
        }
        if let Err(missing) =
            testgate::root().and_then(|()| testgate::program("unshare", "util-linux"))
        {
            testgate::cannot_run(TEST, &format!("this host runs systemd and hiding it: {missing}"));
            return;
        }
        let status = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t tmpfs tandem-test /run/systemd && exec \"$0\" --exact \"$1\" --nocapture",
            )
            .arg(std::env::current_exe().unwrap())
            .arg(TEST)
            .env("TANDEM_TEST_HIDDEN_SYSTEMD", "1")
            .status()
            .unwrap();
        assert!(status.success(), "the test failed with systemd hidden: {status}");
        return;
    }
    let dir = temp_dir();
    let params = ResourceParams::Systemd { unit: spanned("x.service".into()) };
    let agent = build(&params, &context(dir.path())).unwrap();
    for result in
        [agent.start(TIMEOUT), agent.stop(TIMEOUT), agent.monitor(TIMEOUT), agent.probe(TIMEOUT)]
    {
        let OpResult::Failed(message) = result else { panic!("{result:?}") };
        let want = format!("E4303: {}", agents::systemd::NOT_BOOTED);
        assert!(message.starts_with(&want), "{message}");
        assert!(message.contains("x.service"), "{message}");
    }
}

#[test]
fn ip_and_filesystem_resources_build_an_agent() {
    let ip = ResourceParams::Ip(config::IpParams {
        address: "192.0.2.1".parse().unwrap(),
        prefix_len: 24,
        interface: None,
    });
    let filesystem = ResourceParams::Filesystem(config::FilesystemParams {
        device: spanned(PathBuf::from("/dev/nonexistent")),
        mountpoint: PathBuf::from("/nonexistent"),
        fstype: "ext4".into(),
        options: None,
        lock_standby: false,
        fsck: false,
    });
    for params in [ip, filesystem] {
        let agent = build(&params, &Context::new("rsc", "/nonexistent")).expect("built");
        assert_ne!(agent.probe(TIMEOUT), OpResult::Ok, "{params:?} runs nowhere");
    }
}

#[test]
fn a_new_process_agent_reattaches_to_the_running_process() {
    let case = process_case(SLEEPER);
    assert_result(&case, "start", case.agent.start(TIMEOUT), OpResult::Ok);
    let pid = wait_for_pid(&case.dir.path().join("daemon.pid"));
    // What a daemon restart leaves: the process runs, its agent object is gone.
    let params = ResourceParams::Process(ProcessParams {
        command: spanned(vec!["/bin/sh".into(), "-c".into(), SLEEPER.into()]),
        cwd: None,
        env: BTreeMap::new(),
        user: None,
    });
    let fresh = build(&params, &context(case.dir.path())).unwrap();
    assert_result(&case, "probe by a new agent", fresh.probe(TIMEOUT), OpResult::Ok);
    assert_result(&case, "monitor by a new agent", fresh.monitor(TIMEOUT), OpResult::Ok);
    assert_result(&case, "start by a new agent", fresh.start(TIMEOUT), OpResult::Ok);
    assert_eq!(live_members(pid.as_raw()), vec![pid.as_raw()], "a second process was started");
    assert_result(&case, "stop by a new agent", fresh.stop(TIMEOUT), OpResult::Ok);
    assert!(!alive(pid), "process {pid} survived the stop");
    assert_result(&case, "probe after stop", fresh.probe(TIMEOUT), OpResult::NotRunning);
    assert!(!case.dir.path().join("log/rsc.pid").exists(), "state file left after stop");
}

/// The state file cannot be written (a directory stands where the temporary file goes:
/// a real failure, for root too): the start fails with its code and undoes itself, since
/// a restarted daemon would not find an unrecorded process and would start a second one.
#[test]
fn a_start_that_cannot_record_its_process_fails_with_a_code_and_leaves_nothing() {
    let case = process_case(SLEEPER);
    let state = case.dir.path().join("log/rsc.pid");
    fs::create_dir_all(agents::files::temporary_of(&state)).unwrap();
    let result = case.agent.start(TIMEOUT);
    let OpResult::Failed(message) = &result else { panic!("start: {result:?}") };
    assert!(message.starts_with("E4307: "), "{message}");
    assert!(message.contains("rsc.pid"), "{message}");
    // The process it started (named in the message) is gone, and nothing is recorded.
    let pid: i32 = message
        .split("process ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|pid| pid.parse().ok())
        .expect("the message names the process");
    assert!(!alive(Pid::from_raw(pid)), "the unrecorded process {pid} still runs");
    assert!(!state.exists());
    assert_eq!(case.agent.monitor(TIMEOUT), OpResult::NotRunning);
    // Once the directory is writable again the start succeeds and is recorded.
    fs::remove_dir(agents::files::temporary_of(&state)).unwrap();
    assert_eq!(case.agent.start(TIMEOUT), OpResult::Ok);
    assert!(state.is_file());
}

#[test]
fn a_stale_state_file_whose_pid_was_reused_is_not_running() {
    let dir = temp_dir();
    let params = ResourceParams::Process(ProcessParams {
        command: spanned(vec!["/bin/sh".into(), "-c".into(), SLEEPER.into()]),
        cwd: None,
        env: BTreeMap::new(),
        user: None,
    });
    let context = context(dir.path());
    // Our own process stands for a process that reused the recorded id; its start time
    // is not the recorded one.
    let me = std::process::id();
    let start = agents::process::start_time(me).expect("our own start time");
    fs::create_dir_all(&context.log_dir).unwrap();
    let state = context.log_dir.join("rsc.pid");
    fs::write(&state, format!("{me} {}\n", start + 1)).unwrap();
    let agent = build(&params, &context).unwrap();
    assert_eq!(agent.probe(TIMEOUT), OpResult::NotRunning, "a reused pid was taken as running");
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    assert!(!state.exists(), "stale state file kept");
    // The matching start time is taken as running (so the check above can fail).
    fs::write(&state, format!("{me} {start}\n")).unwrap();
    let agent = build(&params, &context).unwrap();
    assert_eq!(agent.probe(TIMEOUT), OpResult::Ok);
    fs::remove_file(&state).unwrap();
}

fn nic_agent(interface: &str) -> Box<dyn Agent> {
    let params = ResourceParams::Nic { interface: spanned(interface.into()) };
    build(&params, &Context::new("nic", "/nonexistent")).unwrap()
}

#[test]
fn nic_loopback_is_up() {
    let agent = nic_agent("lo");
    assert_eq!(agent.probe(TIMEOUT), OpResult::Ok, "{:?}", agent.detail());
    assert_eq!(agent.monitor(TIMEOUT), OpResult::Ok, "{:?}", agent.detail());
    assert_eq!(agent.detail(), None);
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
}

#[test]
fn nic_missing_interface_is_not_running() {
    let agent = nic_agent("tandemnone0");
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
    let detail = agent.detail().expect("no detail");
    assert!(detail.contains("tandemnone0") && detail.contains("does not exist"), "{detail}");
}

const APP_DEADLINE: Duration = Duration::from_millis(500);

fn app_agent(dir: &Path) -> Box<dyn Agent> {
    let params = ResourceParams::App { deadline: APP_DEADLINE };
    build(&params, &context(dir)).unwrap()
}

/// Monitors `agent` until it answers `want` or 3 s pass; the last answer.
fn monitor_until(agent: &dyn Agent, want: OpResult) -> OpResult {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let got = agent.monitor(TIMEOUT);
        if got == want || Instant::now() >= deadline {
            return got;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The app lifecycle with heartbeats sent by `send` (a `KEY=VALUE` datagram).
fn app_lifecycle(send: &dyn Fn(&Path, &str)) {
    let dir = temp_dir();
    let agent = app_agent(dir.path());
    let socket = agent.notify_socket().expect("no notify socket");
    assert_eq!(socket, context(dir.path()).notify_socket());
    assert_eq!(agent.probe(TIMEOUT), OpResult::NotRunning, "probe before start");
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
    assert!(socket.exists(), "start did not bind {}", socket.display());
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok, "second start");
    // The application has one deadline after the start for its first heartbeat.
    assert_eq!(agent.monitor(TIMEOUT), OpResult::Ok, "monitor just after start");
    thread::sleep(APP_DEADLINE + Duration::from_millis(100));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning, "no heartbeat since the start");
    send(&socket, "READY=1\nSTATUS=warming up");
    assert_eq!(monitor_until(agent.as_ref(), OpResult::Ok), OpResult::Ok, "after READY=1");
    // Heartbeats within the deadline keep it running, past the deadline of the first.
    for _ in 0..4 {
        thread::sleep(APP_DEADLINE / 3);
        send(&socket, "WATCHDOG=1");
    }
    thread::sleep(Duration::from_millis(50));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::Ok, "after WATCHDOG=1 heartbeats");
    thread::sleep(APP_DEADLINE + Duration::from_millis(100));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning, "after silence");
    let detail = agent.detail().expect("no detail");
    assert!(detail.contains("warming up"), "{detail}");
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    assert!(!socket.exists(), "stop left {}", socket.display());
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning, "monitor after stop");
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok, "second stop");
}

#[test]
fn app_heartbeats_from_a_datagram_sender() {
    app_lifecycle(&|socket, text| {
        let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
        sender.send_to(text.as_bytes(), socket).unwrap();
    });
}

#[test]
fn app_heartbeats_from_systemd_notify() {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join("systemd-notify").is_file()))
        .unwrap_or(false);
    if !found {
        testgate::cannot_run(
            "app_heartbeats_from_systemd_notify",
            "systemd-notify is not on PATH (apt-get install systemd)",
        );
        return;
    }
    app_lifecycle(&|socket, text| {
        let args: Vec<String> = text
            .split('\n')
            .map(|line| match line {
                "READY=1" => "--ready".to_string(),
                other => other.to_string(),
            })
            .collect();
        let status = std::process::Command::new("systemd-notify")
            .args(&args)
            .env("NOTIFY_SOCKET", socket)
            .status()
            .unwrap();
        assert!(status.success(), "systemd-notify {args:?}: {status}");
    });
}

#[test]
fn app_ignores_oversized_datagrams_and_takes_daemon_heartbeats() {
    let dir = temp_dir();
    let agent = app_agent(dir.path());
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
    let socket = agent.notify_socket().unwrap();
    let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
    thread::sleep(APP_DEADLINE + Duration::from_millis(100));
    let mut big = b"READY=1\n".to_vec();
    big.resize(agents::app::DATAGRAM_MAX_BYTES + 1, b'x');
    sender.send_to(&big, &socket).unwrap();
    thread::sleep(Duration::from_millis(200));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning, "an oversized datagram counted");
    assert!(agent.record_heartbeat(Some("from the API")));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::Ok, "after record_heartbeat");
    thread::sleep(APP_DEADLINE + Duration::from_millis(100));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
    assert!(agent.detail().unwrap().contains("from the API"));
    assert!(!nic_agent("lo").record_heartbeat(None), "a nic took a heartbeat");
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
}

/// Sends READY=1 to `socket` as `user` with `systemd-notify`; whether it succeeded.
fn notify_as(user: &nix::unistd::User, socket: &Path) -> bool {
    use std::os::unix::process::CommandExt;
    std::process::Command::new("systemd-notify")
        .arg("--ready")
        .env("NOTIFY_SOCKET", socket)
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn app_socket_belongs_to_the_user_the_application_runs_as() {
    let needs = testgate::lab().and_then(|()| testgate::program("systemd-notify", "systemd"));
    if let Err(missing) = needs {
        testgate::cannot_run("app_socket_belongs_to_the_user_the_application_runs_as", &missing);
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("a user `nobody`");
    // The group: an application running as nobody, and its app resource.
    let application = ResourceParams::Process(ProcessParams {
        command: spanned(vec!["/bin/true".into()]),
        cwd: None,
        env: BTreeMap::new(),
        user: Some("nobody".into()),
    });
    let app = ResourceParams::App { deadline: APP_DEADLINE };
    assert_eq!(agents::socket_user([&application, &app]), Some("nobody"));
    assert_eq!(agents::socket_user([&app]), None);
    for owned in [false, true] {
        let dir = temp_dir();
        // The daemon's state directory lets everyone through; a temporary one does not.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let mut context = context(dir.path());
        if owned {
            context = context.with_socket_owner("nobody").unwrap();
        }
        fs::create_dir_all(&context.log_dir).unwrap();
        let agent = build(&app, &context).unwrap();
        assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
        let socket = agent.notify_socket().unwrap();
        thread::sleep(APP_DEADLINE + Duration::from_millis(100));
        assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
        let sent = notify_as(&nobody, &socket);
        assert_eq!(sent, owned, "owned: {owned}: systemd-notify as nobody succeeded: {sent}");
        if owned {
            use std::os::unix::fs::MetadataExt;
            let meta = fs::metadata(&socket).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o777), (nobody.uid.as_raw(), 0o600));
            assert_eq!(monitor_until(agent.as_ref(), OpResult::Ok), OpResult::Ok);
        } else {
            assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning, "a refused sender counted");
        }
        assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    }
    assert!(matches!(
        Context::new("x", "/nonexistent").with_socket_owner("tandem-no-such-user"),
        Err(agents::BuildError::UnknownUser(_))
    ));
}
