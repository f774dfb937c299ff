//! The configuration store and the push's two phases, in process: atomic records,
//! history and hashes, a hand edit found at start, the changes described, node-call
//! signatures, and prepare/commit between two nodes' services (the HTTPS between them
//! is `crates/tandem/tests/config_push.rs`'s).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn config_text(dir: &Path, extra: &str) -> String {
    format!(
        r#"[cluster]
name = "erp"
key_file = "{d}/cluster.key"
state_dir = "{d}/state"

[[node]]
name = "alpha"
addresses = {{ private = "127.0.0.1:1" }}
api = "127.0.0.1:3"

[[node]]
name = "beta"
addresses = {{ private = "127.0.0.1:2" }}
api = "127.0.0.1:4"

[[link]]
name = "private"
kind = "udp"

[arbitration]
kind = "none"

[[group]]
name = "db"
nodes = ["alpha", "beta"]

  [[group.resource]]
  name = "data"
  kind = "process"
  command = ["/bin/true"]
{extra}"#,
        d = dir.display()
    )
}

/// A node's service over `dir` (its file `NODE.toml`, state `NODE/`), the loop stood in
/// for by a thread that takes every call.
fn service(dir: &Path, node: &str, text: &str) -> (Arc<Service>, Option<String>) {
    let file = dir.join(format!("{node}.toml"));
    if !file.exists() {
        std::fs::write(&file, text).unwrap();
    }
    let source = std::fs::read_to_string(&file).unwrap();
    let (config, _) = config::parse(&source, "cluster.toml").unwrap();
    let (calls, mut rx) = mpsc::channel::<Call>(4);
    std::thread::spawn(move || {
        while let Some(call) = rx.blocking_recv() {
            let _ = call.answer.send(Answer::taken());
        }
    });
    let key = wire::Key::new([7; 32]);
    Service::start(Setup {
        config: &config,
        file: &file,
        state_dir: &dir.join(node),
        node,
        key,
        calls,
    })
    .unwrap()
}

fn dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.key"), wire::Key::new([7; 32]).to_text()).unwrap();
    dir
}

fn meta(generation: u64, text: &str) -> Meta {
    Meta {
        generation,
        hash: hash(text),
        time: wall_now(),
        by: "test".into(),
        via: "alpha".into(),
        changes: Vec::new(),
    }
}

#[test]
fn the_hash_is_sha256_of_the_exact_text() {
    assert_eq!(hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_ne!(hash("a = 1\n"), hash("a = 1"));
}

#[test]
fn records_are_kept_in_order_and_a_torn_record_is_no_generation() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.newest().is_none());
    store.record(&meta(1, "one\n"), "one\n").unwrap();
    store.record(&meta(2, "two\n"), "two\n").unwrap();
    assert_eq!(store.newest().unwrap().1, "two\n");
    let generations: Vec<u64> = store.history().iter().map(|m| m.generation).collect();
    assert_eq!(generations, [1, 2]);
    assert_eq!(store.get(1).unwrap().1, "one\n");
    // A crash after the text but before the metadata: generation 3 does not exist.
    std::fs::write(store.text_path(3), "three\n").unwrap();
    assert_eq!(store.newest().unwrap().0.generation, 2);
    // A text that does not match its hash (changed under the store) is not taken.
    std::fs::write(store.text_path(2), "changed\n").unwrap();
    assert_eq!(store.newest().unwrap().0.generation, 1);
    assert!(store.get(2).is_none());
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(&store.dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn only_the_newest_generations_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for generation in 1..=(GENERATIONS_KEPT as u64 + 3) {
        let text = format!("g = {generation}\n");
        store.record(&meta(generation, &text), &text).unwrap();
    }
    let history = store.history();
    assert_eq!(history.len(), GENERATIONS_KEPT);
    assert_eq!(history[0].generation, 4);
    assert!(!store.text_path(1).exists());
}

#[test]
fn an_atomic_write_replaces_the_whole_file_and_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.toml");
    std::fs::write(&path, "old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    // A link to it: the target is replaced, the link stays.
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    write_atomic(&link, b"new", None).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
    // A write that cannot happen leaves the file as it was.
    let missing = dir.path().join("no-such-dir/cluster.toml");
    assert!(write_atomic(&missing, b"x", None).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
}

#[test]
fn the_first_start_records_generation_1_and_a_hand_edit_a_new_local_generation() {
    let dir = dir();
    let text = config_text(dir.path(), "");
    let (alpha, edited) = service(dir.path(), "alpha", &text);
    assert!(edited.is_none());
    let doc = alpha.show().unwrap();
    assert_eq!((doc.generation, doc.running_generation), (1, 1));
    assert_eq!(doc.hash, hash(&text));
    assert!(!doc.file_edited);
    drop(alpha);
    // The same file again: nothing new.
    let (alpha, edited) = service(dir.path(), "alpha", &text);
    assert!(edited.is_none());
    assert_eq!(alpha.show().unwrap().generation, 1);
    // Edited by hand while it ran: shown, and a push there is refused (E1305).
    let edit = text.replace("127.0.0.1:3", "127.0.0.1:5");
    std::fs::write(dir.path().join("alpha.toml"), &edit).unwrap();
    assert!(alpha.show().unwrap().file_edited);
    let answer = alpha.push(&config_text(dir.path(), "# x\n"), 1, "test");
    assert!(!answer.ok);
    assert!(answer.error.unwrap().contains("E1305"));
    drop(alpha);
    // At the next start it becomes generation 2 and says so (W1301's message).
    let (alpha, edited) = service(dir.path(), "alpha", &edit);
    assert!(edited.unwrap().contains("edited by hand"));
    let doc = alpha.show().unwrap();
    assert_eq!((doc.generation, doc.running_generation, doc.file_edited), (2, 2, false));
    let history = alpha.store.history();
    assert_eq!(history[1].changes, ["nodes changed"]);
    assert!(history[1].by.contains("hand edit"));
}

#[test]
fn changes_are_described_by_section_and_only_alerts_are_live() {
    let base = "[cluster]\nname = \"erp\"\n\n[timing]\nheartbeat_interval = \"100ms\"\n\n\
                [[group]]\nname = \"db\"\nnodes = [\"a\"]\n\n[[group]]\nname = \"web\"\nnodes = [\"a\"]\n";
    // Layout and comments are no change.
    let same = base.replace("[timing]\n", "# the timings\n[timing]   \n");
    assert!(describe_changes(base, &same).is_empty());
    let new = base
        .replace("100ms", "200ms")
        .replace("name = \"web\"\nnodes = [\"a\"]", "name = \"web\"\nnodes = [\"a\", \"b\"]")
        .replace("[[group]]\nname = \"db\"\nnodes = [\"a\"]\n\n", "")
        + "\n[[group]]\nname = \"mail\"\nnodes = [\"a\"]\n\n[[alert]]\nkind = \"script\"\npath = \"/x\"\n";
    let changes: Vec<(String, bool)> =
        describe_changes(base, &new).into_iter().map(|c| (c.what, c.live)).collect();
    assert_eq!(
        changes,
        [
            ("alerts changed".to_string(), true),
            ("group `db` removed".to_string(), false),
            ("group `mail` added".to_string(), false),
            ("group `web` changed".to_string(), false),
            ("[timing] changed".to_string(), false),
        ]
    );
}

#[test]
fn node_calls_are_signed_with_the_cluster_key_and_refused_otherwise() {
    let key = wire::Key::new([1; 32]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let headers = |node: &'static str, time: u64, signature: String| {
        move |name: &str| match name {
            NODE_HEADER => Some(node.to_string()),
            TIME_HEADER => Some(time.to_string()),
            SIGNATURE_HEADER => Some(signature.clone()),
            _ => None,
        }
    };
    let good = sign(&key, "POST", PREPARE_PATH, "alpha", now, b"{}");
    assert_eq!(
        verify(&key, "POST", PREPARE_PATH, headers("alpha", now, good.clone()), b"{}").unwrap(),
        "alpha"
    );
    let refusals = [
        // Another body, path, sender or key.
        verify(&key, "POST", PREPARE_PATH, headers("alpha", now, good.clone()), b"{ }"),
        verify(&key, "POST", COMMIT_PATH, headers("alpha", now, good.clone()), b"{}"),
        verify(&key, "POST", PREPARE_PATH, headers("beta", now, good.clone()), b"{}"),
        verify(&wire::Key::new([2; 32]), "POST", PREPARE_PATH, headers("alpha", now, good), b"{}"),
        // Too old, and not hex.
        verify(
            &key,
            "POST",
            PREPARE_PATH,
            headers(
                "alpha",
                now - 600,
                sign(&key, "POST", PREPARE_PATH, "alpha", now - 600, b"{}"),
            ),
            b"{}",
        ),
        verify(&key, "POST", PREPARE_PATH, headers("alpha", now, "zz".into()), b"{}"),
        verify(&key, "POST", PREPARE_PATH, |_: &str| None, b"{}"),
    ];
    for refusal in refusals {
        assert!(refusal.unwrap_err().starts_with("E1307"));
    }
}

/// Alpha's push as the coordinator would make it, driven by hand between two services.
fn prepare_body(text: &str, base: &ConfigDocument) -> PrepareBody {
    PrepareBody {
        toml: text.to_string(),
        base: base.generation,
        base_hash: base.hash.clone(),
        by: "alice".into(),
        generation: base.generation + 1,
        replacing: BTreeMap::new(),
    }
}

#[test]
fn both_phases_apply_one_generation_and_a_refusal_changes_nothing() {
    let dir = dir();
    let text = config_text(dir.path(), "");
    let (alpha, _) = service(dir.path(), "alpha", &text);
    let (beta, _) = service(dir.path(), "beta", &text);
    let base = alpha.show().unwrap();
    let new = config_text(dir.path(), "\n[timing]\nheartbeat_interval = \"200ms\"\n");
    let body = prepare_body(&new, &base);
    for node in [&alpha, &beta] {
        let verdict = node.prepare("alpha", &body);
        assert!(verdict.accepted, "{verdict:?}");
    }
    // Another coordinator is refused while alpha's push holds the place.
    let other = prepare_body(&config_text(dir.path(), "# other\n"), &base);
    let verdict = beta.prepare("gamma", &other);
    assert!(verdict.error.unwrap().starts_with("E1309"));
    let commit = CommitBody { generation: 2, hash: hash(&new) };
    alpha.commit(&commit).unwrap();
    beta.commit(&commit).unwrap();
    // Again: already applied, nothing else happens.
    beta.commit(&commit).unwrap();
    for (node, name) in [(&alpha, "alpha"), (&beta, "beta")] {
        let doc = node.show().unwrap();
        assert_eq!((doc.generation, doc.running_generation), (2, 1));
        assert_eq!(doc.restart_needed, ["[timing] changed"]);
        assert!(!doc.file_edited);
        let file = std::fs::read_to_string(dir.path().join(format!("{name}.toml"))).unwrap();
        assert_eq!(file, new);
        let history = node.store.history();
        assert_eq!(history.len(), 2);
        assert_eq!((history[1].by.as_str(), history[1].via.as_str()), ("alice", "alpha"));
    }
    // A commit of a text nobody checked is refused.
    let err = beta.commit(&CommitBody { generation: 3, hash: hash("x") }).unwrap_err();
    assert!(err.starts_with("E1308"), "{err}");
    // An invalid text: refused with its diagnostics, nothing held or changed.
    let base = alpha.show().unwrap();
    let invalid = new.replace("heartbeat_interval = \"200ms\"", "heartbeat_interval = \"fast\"");
    let verdict = beta.prepare("alpha", &prepare_body(&invalid, &base));
    assert!(!verdict.accepted);
    let errors: Vec<&ConfigDiagnostic> =
        verdict.diagnostics.iter().filter(|d| d.severity == contract::Severity::Error).collect();
    assert_eq!(errors.len(), 1, "{verdict:?}");
    assert_eq!(errors[0].code, "E1015");
    let line = invalid.lines().position(|l| l.contains("fast")).unwrap() + 1;
    assert_eq!((errors[0].line, errors[0].column), (line, 22));
    // A push based on an older generation is refused (E1302 where asked, E1306 on a peer).
    let stale = alpha.push(&config_text(dir.path(), "# stale\n"), 1, "bob");
    assert!(stale.error.unwrap().starts_with("E1302"));
    let old = ConfigDocument { generation: 1, ..base };
    let verdict = beta.prepare("alpha", &prepare_body(&config_text(dir.path(), "# stale\n"), &old));
    assert!(verdict.error.unwrap().starts_with("E1306"));
    assert_eq!(beta.show().unwrap().generation, 2);
}

#[test]
fn a_host_check_failure_refuses_on_the_node_that_lacks_it() {
    let dir = dir();
    let text = config_text(dir.path(), "");
    let (beta, _) = service(dir.path(), "beta", &text);
    let base = beta.show().unwrap();
    let missing = text.replace("/bin/true", "/nonexistent/program");
    let verdict = beta.prepare("alpha", &prepare_body(&missing, &base));
    assert!(!verdict.accepted);
    assert!(verdict.diagnostics.iter().any(|d| d.code == "E1201"), "{verdict:?}");
    // The check route reports the same as warnings (tandem validate's way).
    let outcome = beta.check(&missing);
    assert!(outcome.valid);
    assert!(outcome.nodes[0].diagnostics.iter().any(|d| d.code == "W1201"));
    assert!(beta.store.history().len() == 1);
}

#[test]
fn a_push_with_a_peer_not_reached_is_refused_whole() {
    let dir = dir();
    let text = config_text(dir.path(), "");
    let (alpha, _) = service(dir.path(), "alpha", &text);
    // beta's API (127.0.0.1:4) does not answer, and the CA file does not exist.
    let answer = alpha.push(&config_text(dir.path(), "# new\n"), 1, "alice");
    assert!(!answer.ok);
    let outcome = answer.outcome.unwrap();
    assert!(outcome.nodes[0].accepted);
    assert!(outcome.nodes[1].error.as_deref().unwrap().starts_with("E1304"), "{outcome:?}");
    assert_eq!(alpha.show().unwrap().generation, 1);
    assert_eq!(std::fs::read_to_string(dir.path().join("alpha.toml")).unwrap(), text);
    let _: PathBuf = dir.path().to_path_buf();
}

/// A time `ago` before now (a node last heard then).
fn before(ago: Duration) -> Instant {
    Instant::now().checked_sub(ago).expect("the clock is past boot by an hour")
}

#[test]
fn a_push_goes_without_a_node_that_is_down_and_not_without_one_that_is_up() {
    let dir = dir();
    let text = config_text(dir.path(), "");
    let (alpha, _) = service(dir.path(), "alpha", &text);
    let new = config_text(dir.path(), "# new\n");
    // beta was heard just now: up, its API not answering is a refusal (E1304).
    alpha.heard("beta", None, Instant::now());
    assert!(!alpha.down("beta"));
    let answer = alpha.push(&new, 1, "alice");
    assert!(!answer.ok, "{answer:?}");
    assert_eq!(alpha.show().unwrap().generation, 1);
    // beta not heard for an hour: down; the push goes ahead on alpha, half of two nodes.
    alpha.heard("beta", None, before(Duration::from_secs(3600)));
    assert!(alpha.down("beta"));
    let answer = alpha.push(&new, 1, "alice");
    assert!(answer.ok, "{answer:?}");
    let outcome = answer.outcome.unwrap();
    assert_eq!(outcome.generation, Some(2));
    let beta = &outcome.nodes[1];
    assert!(!beta.accepted);
    let error = beta.error.as_deref().unwrap();
    assert!(error.starts_with("E1304") && error.contains("takes generation 2"), "{error}");
    assert_eq!(alpha.show().unwrap().generation, 2);
    assert_eq!(std::fs::read_to_string(dir.path().join("alpha.toml")).unwrap(), new);
}

#[test]
fn fewer_than_half_the_nodes_never_push() {
    let dir = dir();
    let three = config_text(dir.path(), "")
        .replace("[[link]]", "[[node]]\nname = \"gamma\"\naddresses = { private = \"127.0.0.1:5\" }\napi = \"127.0.0.1:6\"\n\n[[link]]");
    let (alpha, _) = service(dir.path(), "alpha", &three);
    for node in ["beta", "gamma"] {
        alpha.heard(node, None, before(Duration::from_secs(3600)));
    }
    let answer = alpha.push(&format!("{three}# new\n"), 1, "alice");
    assert!(!answer.ok, "{answer:?}");
    let error = answer.error.unwrap();
    assert!(error.contains("at least half of the 3 nodes"), "{error}");
    assert_eq!(alpha.show().unwrap().generation, 1);
}

fn stamp(service: &Service) -> wire::ConfigStamp {
    service.stamp().unwrap()
}

#[test]
fn older_newer_and_diverged_generations_are_told_apart() {
    let dir = dir();
    let text = config_text(dir.path(), "");
    let (alpha, _) = service(dir.path(), "alpha", &text);
    let (beta, _) = service(dir.path(), "beta", &text);
    assert_eq!(beta.sync_from("alpha", stamp(&alpha)), sync::SyncOutcome::Agree);
    // A push reaches alpha alone (beta down): beta is older, and alpha keeps beta's.
    alpha.heard("beta", None, before(Duration::from_secs(3600)));
    let new = config_text(dir.path(), "# two\n");
    assert!(alpha.push(&new, 1, "alice").ok);
    assert_eq!(alpha.sync_from("beta", stamp(&beta)), sync::SyncOutcome::TheirsOlder);
    let asked = sync::NewestBody { generation: 1, hash: hash(&text) };
    let answer = alpha.newest_for(&asked).unwrap();
    assert!(answer.descends);
    assert_eq!((answer.meta.generation, answer.toml.as_str()), (2, new.as_str()));
    // beta edited by hand and restarted: its generation 2 is another text.
    let edited = config_text(dir.path(), "# edited on beta\n");
    std::fs::write(dir.path().join("beta.toml"), &edited).unwrap();
    drop(beta);
    let (beta, message) = service(dir.path(), "beta", &edited);
    assert!(message.is_some());
    assert_eq!(stamp(&beta).generation, 2);
    match alpha.sync_from("beta", stamp(&beta)) {
        sync::SyncOutcome::Diverged(why) => {
            assert!(why.starts_with("E1316"), "{why}");
            assert!(why.contains("on alpha") && why.contains("on beta"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let asked = sync::NewestBody { generation: 2, hash: hash(&edited) };
    assert!(!alpha.newest_for(&asked).unwrap().descends);
    // A generation 1 alpha does not keep with that text: diverged too.
    let foreign = wire::ConfigStamp { generation: 1, hash: [9; 32] };
    assert!(matches!(alpha.sync_from("beta", foreign), sync::SyncOutcome::Diverged(_)));
}

#[test]
fn a_push_replaces_the_generation_of_a_node_that_showed_another() {
    let dir = dir();
    let text = config_text(dir.path(), "");
    let (alpha, _) = service(dir.path(), "alpha", &text);
    // beta diverged: a hand edit recorded at its next start as generation 2.
    drop(service(dir.path(), "beta", &text));
    std::fs::write(dir.path().join("beta.toml"), config_text(dir.path(), "# beta's\n")).unwrap();
    let (beta, _) = service(dir.path(), "beta", &text);
    let beta_newest = beta.show().unwrap();
    assert_eq!(beta_newest.generation, 2);
    alpha.heard("beta", beta.stamp(), Instant::now());
    let newest = alpha.store.newest().unwrap().0;
    let replacing = alpha.replacing(&newest);
    assert_eq!(replacing["beta"], (2, beta_newest.hash.clone()));
    let chosen = config_text(dir.path(), "# the one we want\n");
    let body = PrepareBody {
        generation: 3,
        replacing: replacing.clone(),
        ..prepare_body(&chosen, &alpha.show().unwrap())
    };
    // Without the replacement beta refuses (E1306); with it, it accepts.
    let plain = PrepareBody { replacing: BTreeMap::new(), ..body.clone() };
    assert!(beta.prepare("alpha", &plain).error.unwrap().starts_with("E1306"));
    // What beta showed is no longer its newest: refused too.
    let stale = BTreeMap::from([("beta".to_string(), (2, hash("other")))]);
    let stale = PrepareBody { replacing: stale, ..body.clone() };
    assert!(beta.prepare("alpha", &stale).error.unwrap().starts_with("E1306"));
    for node in [&alpha, &beta] {
        let verdict = node.prepare("alpha", &body);
        assert!(verdict.accepted, "{verdict:?}");
    }
    let commit = CommitBody { generation: 3, hash: hash(&chosen) };
    alpha.commit(&commit).unwrap();
    beta.commit(&commit).unwrap();
    assert_eq!(stamp(&alpha), stamp(&beta));
    assert_eq!(stamp(&beta).generation, 3);
}
