//! The inventory on this machine (loopback `lo` with 127.0.0.1/8, `heartbeat:Dummy`
//! with its `state` parameter where Debian's resource-agents is installed, the block
//! devices of /sys/block, systemd or its absence said), its deadline against a hung
//! agent, and the systemd part against a stand-in systemd on a private `dbus-daemon`
//! (ended by its process id).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use contract::{InventoryPart, OperState};
use zbus::zvariant::OwnedObjectPath;

use super::systemd::ListedUnit;
use super::*;

#[test]
fn this_machine_has_loopback_the_dummy_agent_and_its_block_devices() {
    let inventory = take(&Sources::host(), Some("alpha"));
    assert_eq!(inventory.node.as_deref(), Some("alpha"));
    assert!(!inventory.host.is_empty());
    let lo = inventory.interface("lo").expect("loopback");
    assert!(lo.loopback && lo.up, "{lo:?}");
    assert_eq!(lo.state, OperState::Unknown, "the kernel reports lo's operstate as unknown");
    let v4 = lo.addresses.iter().find(|a| a.address.is_ipv4()).expect("an IPv4 address on lo");
    assert_eq!((v4.address.to_string(), v4.prefix_len), ("127.0.0.1".into(), 8));
    assert_eq!(v4.scope, "host");
    assert!(inventory.problems_of(InventoryPart::Interfaces).next().is_none());
    // Block devices: each non-empty device of /sys/block is listed.
    let sized: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter(|d| {
            std::fs::read_to_string(d.path().join("size"))
                .is_ok_and(|s| s.trim().parse::<u64>().unwrap_or(0) > 0)
        })
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    for name in &sized {
        let device = inventory.block_devices.iter().find(|d| d.name == *name);
        let device = device.unwrap_or_else(|| panic!("{name}: {:?}", inventory.block_devices));
        assert!(device.size_bytes > 0 && device.path == format!("/dev/{name}"));
    }
    // The root file system's device shows where it is mounted.
    let root = inventory.block_devices.iter().find(|d| d.mount_points.iter().any(|p| p == "/"));
    if let Some(root) = root {
        assert!(root.fs_type.is_some(), "{root:?}");
    }
    // systemd: its units, or the fallback said.
    let systemd: Vec<_> = inventory.problems_of(InventoryPart::SystemdUnits).collect();
    if agents::systemd::booted() {
        assert!(systemd.is_empty(), "{systemd:?}");
        assert!(!inventory.systemd_units.is_empty());
    } else {
        assert_eq!(systemd.len(), 1, "{systemd:?}");
        assert_eq!(systemd[0].code, "W5325");
        assert!(systemd[0].message.contains("systemd is not running"), "{systemd:?}");
        assert!(inventory.systemd_units.is_empty());
    }
    // The Dummy agent of Debian's resource-agents, with its `state` parameter.
    let dummy = "/usr/lib/ocf/resource.d/heartbeat/Dummy";
    if let Err(missing) = testgate::path(dummy, "resource-agents") {
        testgate::cannot_run("this_machine_has_loopback_the_dummy_agent", &missing);
        return;
    }
    let agent = inventory.ocf_agent("heartbeat", "Dummy").expect("heartbeat:Dummy");
    assert_eq!(agent.meta_data_error, None);
    let state = agent.parameters.iter().find(|p| p.name == "state").expect("state");
    assert!(state.unique && !state.required, "{state:?}");
    assert_eq!(state.value_type.as_deref(), Some("string"));
    assert!(state.default.as_deref().is_some_and(|d| d.contains("Dummy")), "{state:?}");
    assert_eq!(state.shortdesc.as_deref(), Some("State file"));
    assert!(agent.actions.iter().any(|a| a.name == "monitor" && a.interval.is_some()));
    // The document is the contract's JSON.
    let text = serde_json::to_string(&inventory).unwrap();
    assert_eq!(serde_json::from_str::<contract::Inventory>(&text).unwrap(), inventory);
}

/// An OCF root with `agents` (name, script body) under provider `test`.
fn ocf_root(agents: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("resource.d/test");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, body) in agents {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    root
}

#[test]
fn a_hung_agent_costs_its_timeout_and_broken_ones_are_reported_inside_the_document() {
    let good = r#"[ "$1" = meta-data ] && [ -n "$OCF_ROOT" ] && cat <<'X'
<resource-agent name="good" version="2"><parameters>
<parameter name="path" required="1"><content type="string"/></parameter>
</parameters></resource-agent>
X"#;
    let root = ocf_root(&[
        ("good", good),
        ("hangs", "exec sleep 60"),
        ("fails", "exit 5"),
        ("babbles", "echo 'usage: babbles'"),
    ]);
    let sources = Sources {
        ocf_root: root.path().to_path_buf(),
        call_timeout: Duration::from_millis(500),
        ..Sources::host()
    };
    let began = Instant::now();
    let inventory = take(&sources, None);
    assert!(began.elapsed() < Duration::from_secs(10), "{:?}", began.elapsed());
    let good = inventory.ocf_agent("test", "good").unwrap();
    assert_eq!(good.version.as_deref(), Some("2"));
    assert!(good.parameters[0].required && good.meta_data_error.is_none());
    let why = |name: &str| inventory.ocf_agent("test", name).unwrap().meta_data_error.clone();
    assert!(why("hangs").unwrap().starts_with("W5327: meta-data did not finish within"));
    assert!(why("fails").unwrap().contains("exited with 5"), "{:?}", why("fails"));
    assert!(why("babbles").unwrap().contains("no <resource-agent>"), "{:?}", why("babbles"));
    let problems: Vec<_> = inventory.problems_of(InventoryPart::OcfAgents).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].code, "W5327");
    assert!(problems[0].message.contains("3 of 4 agents"), "{problems:?}");
    // An OCF root that does not exist is a problem of its part, not a failed inventory.
    let sources = Sources { ocf_root: root.path().join("none"), ..Sources::host() };
    let inventory = take(&sources, None);
    let problem = inventory.problems_of(InventoryPart::OcfAgents).next().unwrap();
    assert_eq!(problem.code, "W5323");
    assert!(problem.message.contains("resource-agents"), "{problem:?}");
    assert!(inventory.interface("lo").is_some());
}

#[test]
fn the_whole_inventory_keeps_its_deadline_and_reports_what_was_not_reached() {
    let many: Vec<(String, &str)> = (0..6).map(|i| (format!("slow{i}"), "exec sleep 60")).collect();
    let agents: Vec<(&str, &str)> = many.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let root = ocf_root(&agents);
    let sources = Sources {
        ocf_root: root.path().to_path_buf(),
        call_timeout: Duration::from_secs(5),
        deadline: Duration::from_millis(700),
        ..Sources::host()
    };
    let began = Instant::now();
    let inventory = take(&sources, None);
    let took = began.elapsed();
    assert!(took < sources.deadline + PART_MARGIN + Duration::from_millis(500), "{took:?}");
    let errors: Vec<String> =
        inventory.ocf_agents.iter().filter_map(|a| a.meta_data_error.clone()).collect();
    assert_eq!(errors.len(), 6, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("deadline had come")), "{errors:?}");
}

/// A private bus daemon, ended by its process id.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start(test: &str) -> Option<Bus> {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("unix:path={}", dir.path().join("bus").display());
        let spawned = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address", &format!("--address={address}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = spawned else {
            testgate::cannot_run(
                test,
                "dbus-daemon is not installed (apt-get install dbus-daemon)",
            );
            return None;
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("unix:"), "dbus-daemon said {line:?}");
        Some(Bus { child, address: line.trim().to_string(), _dir: dir })
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listed(name: &str, description: &str, load: &str, active: &str, sub: &str) -> ListedUnit {
    let path = OwnedObjectPath::try_from("/org/freedesktop/systemd1/unit/x").unwrap();
    let none = OwnedObjectPath::try_from("/").unwrap();
    let strings = [name, description, load, active, sub, ""].map(str::to_string);
    let [a, b, c, d, e, f] = strings;
    (a, b, c, d, e, f, path, 0, String::new(), none)
}

/// The stand-in's manager: `ListUnits` and `ListUnitFiles` as systemd answers them.
struct Manager;

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    fn list_units(&self) -> Vec<ListedUnit> {
        vec![
            listed("web.service", "The web server", "loaded", "active", "running"),
            listed("srv-data.mount", "/srv/data", "loaded", "active", "mounted"),
            listed("dev-vda.device", "The disk", "loaded", "active", "plugged"),
            listed("gone.service", "", "not-found", "inactive", "dead"),
        ]
    }

    fn list_unit_files(&self) -> Vec<(String, String)> {
        [
            ("/lib/systemd/system/web.service", "enabled"),
            ("/lib/systemd/system/backup.timer", "disabled"),
            ("/lib/systemd/system/getty@.service", "enabled"),
            ("/lib/systemd/system/multi-user.target", "static"),
        ]
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .to_vec()
    }
}

#[test]
fn systemd_units_are_listed_over_dbus_with_their_states_and_files() {
    let test = "systemd_units_are_listed_over_dbus_with_their_states_and_files";
    let Some(bus) = Bus::start(test) else { return };
    let _server = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .serve_at("/org/freedesktop/systemd1", Manager)
        .unwrap()
        .name("org.freedesktop.systemd1")
        .unwrap()
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let units = systemd::discover(&SystemdBus::Address(bus.address.clone()), deadline).unwrap();
    let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        names,
        ["backup.timer", "getty@.service", "gone.service", "srv-data.mount", "web.service"]
    );
    let web = &units[4];
    assert_eq!(web.description.as_deref(), Some("The web server"));
    assert_eq!((web.load_state.as_str(), web.active_state.as_str()), ("loaded", "active"));
    assert_eq!(
        (web.sub_state.as_deref(), web.file_state.as_deref()),
        (Some("running"), Some("enabled"))
    );
    let backup = &units[0];
    assert_eq!(
        (backup.load_state.as_str(), backup.active_state.as_str()),
        ("not-loaded", "inactive")
    );
    assert_eq!(
        (backup.sub_state.as_deref(), backup.file_state.as_deref()),
        (None, Some("disabled"))
    );
    let gone = &units[2];
    assert_eq!((gone.description.as_deref(), gone.file_state.as_deref()), (None, None));
    // A bus without systemd on it: the part fails with D-Bus's reason, in time.
    drop(_server);
    let answer = systemd::discover(&SystemdBus::Address(bus.address.clone()), deadline);
    let Err(systemd::Failure::Failed(why)) = answer else { panic!("{answer:?}") };
    assert!(why.contains("ServiceUnknown") || why.contains("systemd"), "{why}");
}

#[test]
fn what_dbus_returns_is_joined_by_name() {
    let units = vec![
        listed("a.service", "A", "loaded", "failed", "failed"),
        listed("b.socket", "B", "loaded", "active", "listening"),
    ];
    let files = vec![
        ("/etc/systemd/system/a.service".to_string(), "masked".to_string()),
        ("/lib/systemd/system/a.service".to_string(), "enabled".to_string()),
        ("/lib/systemd/system/c.timer".to_string(), "static".to_string()),
    ];
    let joined = systemd::join(units, files);
    assert_eq!(joined.len(), 2, "{joined:?}");
    assert_eq!(joined[0].active_state, "failed");
    assert_eq!(joined[0].file_state.as_deref(), Some("masked"), "the first file listed wins");
    assert_eq!((joined[1].name.as_str(), joined[1].load_state.as_str()), ("c.timer", "not-loaded"));
}
