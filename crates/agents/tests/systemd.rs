//! The `systemd` agent's D-Bus path against a stand-in for systemd: a private
//! `dbus-daemon` (started by the test on a socket in its own temporary directory, ended
//! by its process id) on which the test serves a small `org.freedesktop.systemd1`
//! (Manager `LoadUnit`/`StartUnit`/`StopUnit`, job objects that disappear when their
//! job is done, units with `ActiveState` and a service `Result`). It checks what the
//! agent asks and how it judges the answers, not systemd itself: this machine is not
//! booted with systemd. Without `dbus-daemon` it fails under the test command (which
//! installs it) and skips loudly under a plain `cargo test` (`testgate`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use agents::systemd::SystemdAgent;
use agents::Agent;
use engine::OpResult;
use zbus::blocking::Connection;
use zbus::zvariant::OwnedObjectPath;

const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a job of the stand-in runs.
const JOB_TIME: Duration = Duration::from_millis(100);

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
        // It prints its address once it listens.
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

/// Unit name -> (ActiveState, Result).
type Units = Arc<Mutex<HashMap<String, (String, String)>>>;

fn unit_path(name: &str) -> String {
    let escaped: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("/org/freedesktop/systemd1/unit/{escaped}")
}

struct Manager {
    units: Units,
    connection: Arc<Mutex<Option<Connection>>>,
    next_job: Mutex<u32>,
}

struct Unit {
    name: String,
    units: Units,
}

struct Service {
    name: String,
    units: Units,
}

struct Job;

impl Manager {
    /// Queues a job that, after [`JOB_TIME`], leaves the unit in the state `outcome`
    /// gives (`hang.service`'s job never ends).
    async fn job(
        &self,
        server: &zbus::ObjectServer,
        name: String,
        outcome: fn(&str) -> (String, String),
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        if name.starts_with("missing") {
            return Err(zbus::fdo::Error::Failed(format!("Unit {name} not found.")));
        }
        self.load(server, &name).await?;
        let id = {
            let mut next = self.next_job.lock().unwrap();
            *next += 1;
            *next
        };
        let path = format!("/org/freedesktop/systemd1/job/{id}");
        server.at(path.as_str(), Job).await?;
        if name != "hang.service" {
            let (units, connection, job) =
                (Arc::clone(&self.units), Arc::clone(&self.connection), path.clone());
            thread::spawn(move || {
                thread::sleep(JOB_TIME);
                units.lock().unwrap().insert(name.clone(), outcome(&name));
                if let Some(connection) = connection.lock().unwrap().as_ref() {
                    let _ = connection.object_server().remove::<Job, _>(job.as_str());
                }
            });
        }
        Ok(OwnedObjectPath::try_from(path).unwrap())
    }

    async fn load(&self, server: &zbus::ObjectServer, name: &str) -> zbus::fdo::Result<String> {
        let path = unit_path(name);
        self.units
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_insert(("inactive".into(), "success".into()));
        let unit = Unit { name: name.to_string(), units: Arc::clone(&self.units) };
        server.at(path.as_str(), unit).await?;
        let service = Service { name: name.to_string(), units: Arc::clone(&self.units) };
        server.at(path.as_str(), service).await?;
        Ok(path)
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    async fn load_unit(
        &self,
        name: String,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        let path = self.load(server, &name).await?;
        Ok(OwnedObjectPath::try_from(path).unwrap())
    }

    async fn start_unit(
        &self,
        name: String,
        _mode: String,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        self.job(server, name, |name| match name {
            "broken.service" => ("failed".into(), "exit-code".into()),
            _ => ("active".into(), "success".into()),
        })
        .await
    }

    async fn stop_unit(
        &self,
        name: String,
        _mode: String,
        #[zbus(object_server)] server: &zbus::ObjectServer,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        self.job(server, name, |_| ("inactive".into(), "success".into())).await
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl Unit {
    #[zbus(property)]
    fn active_state(&self) -> String {
        self.units.lock().unwrap().get(&self.name).map(|s| s.0.clone()).unwrap_or_default()
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Service")]
impl Service {
    #[zbus(property)]
    fn result(&self) -> String {
        self.units.lock().unwrap().get(&self.name).map(|s| s.1.clone()).unwrap_or_default()
    }
}

#[zbus::interface(name = "org.freedesktop.systemd1.Job")]
impl Job {
    #[zbus(property)]
    fn state(&self) -> String {
        "running".into()
    }
}

/// Serves the stand-in systemd on `bus`; the connection lives as long as the result.
fn serve(bus: &Bus) -> (Connection, Units) {
    let units: Units = Arc::default();
    let slot = Arc::new(Mutex::new(None));
    let manager = Manager {
        units: Arc::clone(&units),
        connection: Arc::clone(&slot),
        next_job: Mutex::new(0),
    };
    let connection = zbus::blocking::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .serve_at("/org/freedesktop/systemd1", manager)
        .unwrap()
        .name("org.freedesktop.systemd1")
        .unwrap()
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(connection.clone());
    (connection, units)
}

#[test]
fn units_start_stop_and_are_monitored_over_dbus() {
    let Some(bus) = Bus::start("units_start_stop_and_are_monitored_over_dbus") else { return };
    let (_server, units) = serve(&bus);
    let agent = SystemdAgent::on_bus("web.service".into(), &bus.address);
    assert_eq!(agent.probe(TIMEOUT), OpResult::NotRunning);
    assert_eq!(agent.detail().unwrap(), "unit web.service is inactive");
    let began = Instant::now();
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok);
    assert!(began.elapsed() >= JOB_TIME, "start did not wait for its job");
    assert_eq!(agent.monitor(TIMEOUT), OpResult::Ok);
    assert_eq!(agent.start(TIMEOUT), OpResult::Ok, "a second start");
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok);
    assert_eq!(units.lock().unwrap()["web.service"].0, "inactive");
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
    assert_eq!(agent.stop(TIMEOUT), OpResult::Ok, "a second stop (no job)");
    // systemd marks a dead service failed: not running, with its result.
    units.lock().unwrap().insert("web.service".into(), ("failed".into(), "signal".into()));
    assert_eq!(agent.monitor(TIMEOUT), OpResult::NotRunning);
    assert_eq!(agent.detail().unwrap(), "unit web.service is failed (result: signal)");
}

#[test]
fn failures_carry_their_codes_and_a_hung_job_times_out() {
    let Some(bus) = Bus::start("failures_carry_their_codes_and_a_hung_job_times_out") else {
        return;
    };
    let (_server, _units) = serve(&bus);
    let broken = SystemdAgent::on_bus("broken.service".into(), &bus.address);
    assert_eq!(
        broken.start(TIMEOUT),
        OpResult::Failed(
            "E4305: unit broken.service is failed after its start job (result: exit-code)".into()
        )
    );
    let missing = SystemdAgent::on_bus("missing.service".into(), &bus.address);
    let OpResult::Failed(message) = missing.start(TIMEOUT) else { panic!("started") };
    assert!(message.starts_with("E4304: unit missing.service: org.freedesktop.DBus.Error.Failed"));
    let hung = SystemdAgent::on_bus("hang.service".into(), &bus.address);
    let timeout = Duration::from_millis(500);
    let began = Instant::now();
    assert_eq!(hung.start(timeout), OpResult::Timeout);
    let took = began.elapsed();
    assert!(took < timeout + Duration::from_millis(300), "took {took:?}");
    let nowhere = SystemdAgent::on_bus("web.service".into(), "unix:path=/nonexistent/bus");
    let OpResult::Failed(message) = nowhere.monitor(TIMEOUT) else { panic!("monitored") };
    assert!(message.starts_with("E4304: unit web.service:"), "{message}");
}
