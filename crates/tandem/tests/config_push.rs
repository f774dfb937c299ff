//! One configuration pushed to every node, end to end: two real `tandem node`s on
//! loopback with their HTTPS APIs, each with its own configuration file. A valid change
//! pushed with `tandem config push` reaches both (the new generation in both stores and
//! both files, journaled, the restart it needs named); an invalid one and one that a
//! single node's host cannot run (an OCF agent only beta has) are refused whole with the
//! diagnostics, and nothing changes on either node; `restore` pushes an earlier
//! generation again; `show`, `diff` and `history` read it, through the API and the
//! local control socket.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/api_cluster.rs"]
mod api_cluster;
use api_cluster::{agent, ApiCluster, TANDEM};

struct Push {
    cluster: ApiCluster,
    files: [PathBuf; 2],
    admin: String,
}

impl Push {
    fn url(&self, node: usize, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.cluster.api[node])
    }

    fn ca(&self) -> PathBuf {
        self.cluster.dir.path().join("ca.crt")
    }

    fn get(&self, node: usize, path: &str) -> Value {
        let response = agent(&self.ca())
            .get(&self.url(node, path))
            .set("Authorization", &format!("Bearer {}", self.admin))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.cluster.logs()));
        response.into_json().unwrap()
    }

    /// `POST /v1/config` on alpha: the HTTP status and the answer.
    fn post(&self, toml: &str, generation: u64) -> (u16, Value) {
        let body = serde_json::json!({"toml": toml, "generation": generation}).to_string();
        let result = agent(&self.ca())
            .post(&self.url(0, "/v1/config"))
            .set("Authorization", &format!("Bearer {}", self.admin))
            .send_string(&body);
        match result {
            Ok(r) => (r.status(), r.into_json().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
            Err(e) => panic!("{e}"),
        }
    }

    /// `tandem config ARGS` through alpha's API: exit code, stdout, stderr.
    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let endpoint = self.url(0, "");
        let out = Command::new(TANDEM)
            .arg("config")
            .args(args)
            .args(["--endpoint", &endpoint, "--ca"])
            .arg(self.ca())
            .env("TANDEM_TOKEN", &self.admin)
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    /// Both nodes' generation and hash, and their files' texts.
    fn state(&self) -> Vec<(u64, String, String)> {
        (0..2)
            .map(|node| {
                let doc = self.get(node, "/v1/config");
                let file = std::fs::read_to_string(&self.files[node]).unwrap();
                (doc["generation"].as_u64().unwrap(), doc["hash"].as_str().unwrap().into(), file)
            })
            .collect()
    }

    fn journal_codes(&self, node: &str) -> Vec<String> {
        let path = self.cluster.dir.path().join(node).join("journal.jsonl");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| format!("{} {}", e["code"].as_str().unwrap_or(""), e["message"]))
            .collect()
    }
}

fn sha256(text: &str) -> String {
    use std::fmt::Write as _;
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let mut hex = String::new();
    let _ = write!(hex, "{}", String::from_utf8_lossy(&out.stdout).split(' ').next().unwrap());
    hex
}

/// The cluster: alpha's OCF_ROOT empty, beta's with the agent `test:agent`.
fn start() -> (Push, api_cluster::Daemons) {
    let cluster = ApiCluster::new("push", "");
    let dir = cluster.dir.path();
    // The cluster CA is in the configuration already (ApiCluster).
    let base = std::fs::read_to_string(&cluster.config).unwrap();
    assert!(base.contains("ca_file"));
    let files = [dir.join("alpha.toml"), dir.join("beta.toml")];
    for file in &files {
        std::fs::write(file, &base).unwrap();
    }
    let agent = dir.join("ocf-beta/resource.d/test/agent");
    std::fs::create_dir_all(agent.parent().unwrap()).unwrap();
    std::fs::write(&agent, "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(dir.join("ocf-alpha")).unwrap();
    let (alpha_root, beta_root) = (dir.join("ocf-alpha"), dir.join("ocf-beta"));
    let (alpha_root, beta_root) = (alpha_root.to_str().unwrap(), beta_root.to_str().unwrap());
    let admin = cluster.user("ada", "admin");
    let daemons = cluster.start_with([
        (&files[0], &[("OCF_ROOT", alpha_root)]),
        (&files[1], &[("OCF_ROOT", beta_root)]),
    ]);
    let push = Push { cluster, files, admin };
    let deadline = Instant::now() + Duration::from_secs(20);
    for node in 0..2 {
        loop {
            let ready = agent_get(&push, node).is_some();
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "no API\n{}", push.cluster.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (push, daemons)
}

fn agent_get(push: &Push, node: usize) -> Option<Value> {
    agent(&push.ca())
        .get(&push.url(node, "/v1/config"))
        .set("Authorization", &format!("Bearer {}", push.admin))
        .call()
        .ok()?
        .into_json()
        .ok()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_pushed_configuration_reaches_every_node_and_a_refused_one_changes_nothing() {
    let (push, _daemons) = start();
    let dir = push.cluster.dir.path().to_path_buf();
    let base = std::fs::read_to_string(&push.files[0]).unwrap();
    // Both nodes start at generation 1, the file's text.
    let state = push.state();
    assert_eq!(state[0], (1, sha256(&base), base.clone()));
    assert_eq!(state[1], state[0]);

    // A valid change: an alert target (live) and the timing (at the next restart).
    let new = base.replace("lease_timeout = \"1s\"", "lease_timeout = \"2s\"")
        + "\n[[alert]]\nkind = \"script\"\npath = \"/bin/true\"\nmin_severity = \"error\"\n";
    let file = write(&dir, "new.toml", &new);
    let (code, diff, _) = push.cli(&["diff", &file]);
    assert_eq!(code, 0);
    assert!(diff.contains("-lease_timeout = \"1s\"\n+lease_timeout = \"2s\""), "{diff}");
    let (code, out, err) = push.cli(&["push", &file]);
    assert_eq!(code, 0, "{out}{err}\n{}", push.cluster.logs());
    assert!(out.contains("node alpha: accepted") && out.contains("node beta: accepted"), "{out}");
    assert!(out.contains("generation 2 applied on every node"), "{out}");
    assert!(out.contains("alerts changed: applied now"), "{out}");
    assert!(
        out.contains("[timing] changed: takes effect when tandem node restarts on alpha, beta"),
        "{out}"
    );
    let state = push.state();
    for (node, name) in [(0, "alpha"), (1, "beta")] {
        assert_eq!(state[node], (2, sha256(&new), new.clone()), "{name}");
        let doc = push.get(node, "/v1/config");
        assert_eq!(doc["running_generation"], 1);
        assert_eq!(doc["restart_needed"], serde_json::json!(["[timing] changed"]));
        let journal = push.journal_codes(name);
        let applied = journal.iter().find(|l| l.starts_with("I1310")).expect("I1310");
        assert!(
            applied.contains("generation 2") && applied.contains("ada (role admin"),
            "{applied}"
        );
        assert!(applied.contains("through node alpha"), "{applied}");
        assert!(journal.iter().any(|l| l.starts_with("W1311") && l.contains("[timing] changed")));
    }
    let history = push.get(1, "/v1/config/history");
    assert_eq!(
        history["generations"][1]["changes"],
        serde_json::json!(["alerts changed", "[timing] changed"])
    );

    // An invalid file: refused by the CLI before it leaves this machine.
    let invalid = new.replace("lease_timeout = \"2s\"", "lease_timeout = \"soon\"");
    let (code, _, err) = push.cli(&["push", &write(&dir, "invalid.toml", &invalid)]);
    assert_eq!(code, 1);
    assert!(err.contains("E1015") && err.contains("nothing was pushed"), "{err}");
    // Pushed anyway (as the console would): refused by every node, with the diagnostics.
    let (code, answer) = push.post(&invalid, 2);
    assert_eq!(code, 409, "{answer}");
    for verdict in answer["outcome"]["nodes"].as_array().unwrap() {
        assert_eq!(verdict["accepted"], false, "{answer}");
        assert_eq!(
            verdict["diagnostics"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["code"] == "E1015")
                .count(),
            1
        );
    }
    assert_eq!(push.state()[0].0, 2);

    // Valid, but beta alone has the OCF agent: alpha's host refuses it, so nobody takes it.
    let ocf = new.clone()
        + "\n[[group]]\nname = \"svc\"\nnodes = [\"alpha\", \"beta\"]\n\n  [[group.resource]]\n  \
           name = \"thing\"\n  kind = \"ocf\"\n  agent = \"test:agent\"\n";
    let (code, out, _) = push.cli(&["push", &write(&dir, "ocf.toml", &ocf)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("node alpha: REFUSED") && out.contains("E1204"), "{out}");
    assert!(out.contains("node beta: accepted"), "{out}");
    assert!(out.contains("nothing was applied on any node"), "{out}");
    let state = push.state();
    assert_eq!(state[0], (2, sha256(&new), new.clone()));
    assert_eq!(state[1], state[0]);

    // A push based on generation 1 (someone else's view): refused, E1302.
    let (code, answer) = push.post(&base, 1);
    assert_eq!(code, 409);
    assert!(answer["error"].as_str().unwrap().starts_with("E1302"), "{answer}");

    // Restore generation 1: its text again, as generation 3 on both.
    let (code, out, err) = push.cli(&["restore", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    let state = push.state();
    assert_eq!(state[0], (3, sha256(&base), base.clone()));
    assert_eq!(state[1], state[0]);
    let (code, out, _) = push.cli(&["history"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().filter(|l| l.contains("  via alpha  ")).count(), 3, "{out}");
    // The local control socket answers the same.
    let local = Command::new(TANDEM)
        .args(["config", "show", "--runtime-dir"])
        .arg(dir.join("run-beta"))
        .output()
        .unwrap();
    assert!(local.status.success(), "{}", String::from_utf8_lossy(&local.stderr));
    assert_eq!(String::from_utf8_lossy(&local.stdout), base);
    assert!(String::from_utf8_lossy(&local.stderr).contains("generation 3"));
}

/// Stops node `index` of `daemons` as an operator would (SIGTERM) and waits for it.
fn stop(daemons: &mut api_cluster::Daemons, index: usize) {
    let child = &mut daemons.children[index];
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    child.wait().unwrap();
}

/// Starts node `name` again with its own file (beta with its OCF_ROOT), as
/// `ApiCluster::start_with` does; the process joins `daemons` (stopped on drop).
fn restart(push: &Push, daemons: &mut api_cluster::Daemons, index: usize) {
    let dir = push.cluster.dir.path();
    let name = ["alpha", "beta"][index];
    let log = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(format!("{name}.log")))
        .unwrap();
    let child = Command::new(TANDEM)
        .args(["node", "--config"])
        .arg(&push.files[index])
        .env("OCF_ROOT", dir.join(format!("ocf-{name}")))
        .args(["--name", name, "--state-dir"])
        .arg(dir.join(name))
        .arg("--runtime-dir")
        .arg(dir.join(format!("run-{name}")))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    daemons.children[index] = child;
}

/// Waits up to `secs` for `what` to hold.
fn until(push: &Push, secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "{what}\n{}", push.cluster.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn faults(push: &Push, node: usize) -> Vec<Value> {
    let status = agent_get_path(push, node, "/v1/status").unwrap_or_default();
    status["faults"].as_array().cloned().unwrap_or_default()
}

fn agent_get_path(push: &Push, node: usize, path: &str) -> Option<Value> {
    agent(&push.ca())
        .get(&push.url(node, path))
        .set("Authorization", &format!("Bearer {}", push.admin))
        .call()
        .ok()?
        .into_json()
        .ok()
}

fn generation(push: &Push, node: usize) -> Option<u64> {
    agent_get(push, node)?["generation"].as_u64()
}

#[test]
fn a_node_that_was_down_takes_the_generation_pushed_meanwhile_and_large_ones_push() {
    let (push, mut daemons) = start();
    let dir = push.cluster.dir.path().to_path_buf();
    let base = std::fs::read_to_string(&push.files[0]).unwrap();
    // beta stops (maintenance); alpha sees it down after peer_timeout (500 ms).
    stop(&mut daemons, 1);
    std::thread::sleep(Duration::from_millis(1500));
    // A configuration over the API's usual 64 KiB: a long comment and an alert target.
    let comment: String = (0..4000).map(|i| format!("# line {i} of a long comment\n")).collect();
    let new = format!(
        "{base}\n{comment}\n[[alert]]\nkind = \"script\"\npath = \"/bin/true\"\n\
         min_severity = \"error\"\n"
    );
    assert!(new.len() > 64 * 1024);
    let (code, out, err) = push.cli(&["push", &write(&dir, "new.toml", &new)]);
    assert_eq!(code, 0, "{out}{err}\n{}", push.cluster.logs());
    assert!(out.contains("node alpha: accepted"), "{out}");
    assert!(out.contains("node beta: down, not asked"), "{out}");
    assert!(out.contains("takes generation 2 from the others when it comes back"), "{out}");
    assert!(out.contains("generation 2 applied on every node that is up"), "{out}");
    assert_eq!(generation(&push, 0), Some(2));
    // beta comes back with generation 1 and takes generation 2 from alpha.
    restart(&push, &mut daemons, 1);
    until(&push, 20, "beta takes generation 2", || generation(&push, 1) == Some(2));
    assert_eq!(std::fs::read_to_string(&push.files[1]).unwrap(), new);
    let state = push.state();
    assert_eq!(state[1], (2, sha256(&new), new.clone()));
    let doc = push.get(1, "/v1/config");
    assert_eq!(doc["running_generation"], 1);
    let beta = push.journal_codes("beta");
    let taken = beta.iter().find(|l| l.starts_with("I1310")).expect("I1310 on beta");
    assert!(taken.contains("generation 2") && taken.contains("taken from node alpha"), "{taken}");
    let differs = beta.iter().find(|l| l.starts_with("W1313")).expect("W1313 on beta");
    assert!(differs.contains("configuration generation 2 on alpha, 1 on beta"), "{differs}");
    until(&push, 10, "I1314 on both", || {
        ["alpha", "beta"]
            .iter()
            .all(|n| push.journal_codes(n).iter().any(|l| l.starts_with("I1314")))
    });
    assert!(faults(&push, 0).iter().all(|f| f["code"] != "W1313"));
    assert!(push
        .journal_codes("alpha")
        .iter()
        .any(|l| l.starts_with("W1313") && l.contains("node beta has the older one")));
    // A large push through beta's local control socket: both take generation 3.
    let third = new.replace("min_severity = \"error\"", "min_severity = \"warning\"");
    let out = Command::new(TANDEM)
        .args(["config", "push", &write(&dir, "third.toml", &third), "--runtime-dir"])
        .arg(dir.join("run-beta"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("generation 3 applied on every node:"), "{text}");
    let state = push.state();
    assert_eq!(state[0], (3, sha256(&third), third.clone()));
    assert_eq!(state[1], state[0]);
}

#[test]
fn nodes_edited_by_hand_differently_say_so_until_one_is_pushed() {
    let (push, mut daemons) = start();
    let base = std::fs::read_to_string(&push.files[0]).unwrap();
    for index in [1, 0] {
        stop(&mut daemons, index);
    }
    let (on_alpha, on_beta) = (format!("{base}# edited on alpha\n"), format!("{base}# on beta\n"));
    std::fs::write(&push.files[0], &on_alpha).unwrap();
    std::fs::write(&push.files[1], &on_beta).unwrap();
    for index in [0, 1] {
        restart(&push, &mut daemons, index);
    }
    // Both record generation 2, each its own text: diverged, said on both, in the status.
    for (node, name) in [(0, "alpha"), (1, "beta")] {
        until(&push, 20, "E1316 in the status", || {
            faults(&push, node).iter().any(|f| f["code"] == "E1316")
        });
        let fault = faults(&push, node).into_iter().find(|f| f["code"] == "E1316").unwrap();
        let place = fault["where"].as_str().unwrap();
        assert!(place.starts_with("configuration generation 2 ("), "{place}");
        assert!(place.contains(") on alpha, 2 (") && place.ends_with(") on beta"), "{place}");
        let journal = push.journal_codes(name);
        assert!(journal.iter().any(|l| l.starts_with("W1301")), "{journal:?}");
        let diverged = journal.iter().find(|l| l.starts_with("E1316")).expect("E1316");
        assert!(diverged.contains("no automatic choice"), "{diverged}");
        assert_eq!(journal.iter().filter(|l| l.starts_with("E1316")).count(), 1, "{journal:?}");
    }
    // Nothing moved by itself.
    assert_eq!(std::fs::read_to_string(&push.files[1]).unwrap(), on_beta);
    assert_eq!(std::fs::read_to_string(&push.files[0]).unwrap(), on_alpha);
    // The operator chooses alpha's text: pushed through alpha, it replaces beta's.
    let (code, out, err) = push.cli(&["push", push.files[0].to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}\n{}", push.cluster.logs());
    assert!(out.contains("node beta: accepted"), "{out}");
    let state = push.state();
    assert_eq!(state[0], (3, sha256(&on_alpha), on_alpha.clone()));
    assert_eq!(state[1], state[0]);
    until(&push, 10, "the fault ends on both", || {
        (0..2).all(|n| faults(&push, n).iter().all(|f| f["code"] != "E1316"))
    });
    assert!(push.journal_codes("beta").iter().any(|l| l.starts_with("I1314")));
}
