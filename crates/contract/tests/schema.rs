//! The contract's JSON form, checked: the JSON schema of each type is rendered and
//! compared with its checked-in file in `docs/schema/` (`UPDATE_SCHEMA=1 cargo test -p
//! contract` rewrites them; review the diff: a change there is a change of the
//! contract clients rely on), and example documents keep their exact JSON through the
//! types and back.

use std::path::{Path, PathBuf};

use contract::{Answer, Event, Request, Status};
use serde_json::Value;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema")
}

/// Each type's schema file and its rendering now.
fn schemas() -> Vec<(&'static str, String)> {
    let render = |schema: schemars::Schema| {
        let mut text = serde_json::to_string_pretty(&schema).expect("a schema renders");
        text.push('\n');
        text
    };
    vec![
        ("status.schema.json", render(schemars::schema_for!(Status))),
        ("event.schema.json", render(schemars::schema_for!(Event))),
        ("request.schema.json", render(schemars::schema_for!(Request))),
        ("answer.schema.json", render(schemars::schema_for!(Answer))),
        ("inventory.schema.json", render(schemars::schema_for!(contract::Inventory))),
        ("config-edit.schema.json", render(schemars::schema_for!(contract::ConfigEditRequest))),
        (
            "config-edit-answer.schema.json",
            render(schemars::schema_for!(contract::ConfigEditAnswer)),
        ),
    ]
}

#[test]
fn schemas_match_the_checked_in_files() {
    let update = std::env::var_os("UPDATE_SCHEMA").is_some();
    let mut differ = Vec::new();
    for (name, rendered) in schemas() {
        let path = schema_dir().join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk == rendered {
            continue;
        }
        if update {
            std::fs::write(&path, &rendered).expect("docs/schema is writable");
            eprintln!("updated docs/schema/{name}");
        } else {
            differ.push(name);
        }
    }
    assert!(
        differ.is_empty(),
        "docs/schema/{{{}}} differ from the types; run `UPDATE_SCHEMA=1 cargo test -p contract` \
         and review the diff",
        differ.join(",")
    );
}

/// Every schema file in docs/schema is one the test renders (no stale file stays).
#[test]
fn no_stale_schema_file() {
    let known: Vec<&str> = schemas().iter().map(|(name, _)| *name).collect();
    for entry in std::fs::read_dir(schema_dir()).expect("docs/schema exists") {
        let name = entry.expect("a directory entry").file_name().to_string_lossy().into_owned();
        if name.ends_with(".schema.json") {
            assert!(known.contains(&name.as_str()), "docs/schema/{name}: no type renders it");
        }
    }
}

/// `text` parsed as `T` and rendered again is the same JSON.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(text: &str) -> T {
    let before: Value = serde_json::from_str(text).expect("valid JSON");
    let typed: T = serde_json::from_value(before.clone()).expect("the JSON fits the type");
    let after = serde_json::to_value(&typed).expect("renders");
    assert_eq!(before, after, "the JSON changed through the type");
    typed
}

/// PRODUCT.md section 5's example status document, with what the daemon adds to it,
/// keeps every key and value through [`Status`].
#[test]
fn the_example_status_document_keeps_its_json() {
    let text = std::fs::read_to_string(schema_dir().join("status.example.json")).unwrap();
    let status: Status = round_trip(&text);
    assert_eq!(status.cluster, "erp");
    assert_eq!(status.group("db").map(|g| g.state), Some(contract::GroupState::Running));
    assert_eq!(status.faults[0].location, "link private between alpha and beta");
    let answer = format!(r#"{{"ok": true, "status": {text}}}"#);
    let answer: Answer = round_trip(&answer);
    assert_eq!(answer.accepted().unwrap().status.map(|s| s.reported_by), Some("alpha".into()));
}

#[test]
fn answers_have_todays_json() {
    let json = |a: &Answer| serde_json::to_string(a).unwrap();
    assert_eq!(json(&Answer::taken()), r#"{"ok":true}"#);
    assert_eq!(json(&Answer::refused("no group `x`")), r#"{"ok":false,"error":"no group `x`"}"#);
    let failed = Answer { journal_error: Some("disk full".into()), ..Answer::taken() };
    assert_eq!(json(&failed), r#"{"ok":true,"journal_error":"disk full"}"#);
    let refused: Answer = round_trip(r#"{"ok": false, "error": "E5104: not allowed"}"#);
    assert_eq!(refused.accepted(), Err("E5104: not allowed".to_string()));
}

#[test]
fn requests_have_a_stable_json_form() {
    let r: Request =
        serde_json::from_str(r#"{"command":"switchover","group":"db","to":null}"#).unwrap();
    assert_eq!(r, Request::Switchover { group: "db".into(), to: None });
    let text = serde_json::to_string(&Request::Maintenance { on: true }).unwrap();
    assert_eq!(text, r#"{"command":"maintenance","on":true}"#);
    round_trip::<Request>(r#"{"command":"clear","group":"db","resource":"data"}"#);
    round_trip::<Request>(r#"{"command":"status"}"#);
}

#[test]
fn events_keep_the_journal_line_form() {
    let line = r#"{"id":7,"time":"2026-11-25T10:42:07Z","code":"E2101","severity":"warning","node":"alpha","where":"link private between alpha and beta","message":"link private down"}"#;
    let event: Event = round_trip(line);
    assert_eq!(serde_json::to_string(&event).unwrap(), line);
    assert_eq!(event.group, None);
}

/// Each state's `as_str` (and `Display`) is the word serde writes for it.
#[test]
fn words_are_the_json_form() {
    fn check<T: serde::Serialize + std::fmt::Display>(all: &[T], as_str: impl Fn(&T) -> &str) {
        for value in all {
            let json = serde_json::to_value(value).unwrap();
            assert_eq!(json, Value::String(as_str(value).to_string()));
            assert_eq!(value.to_string(), as_str(value));
        }
    }
    check(contract::NodeState::ALL, |v| v.as_str());
    check(contract::LinkState::ALL, |v| v.as_str());
    check(contract::GroupState::ALL, |v| v.as_str());
    check(contract::ResourceState::ALL, |v| v.as_str());
    check(contract::ResourceKind::ALL, |v| v.as_str());
    check(contract::Severity::ALL, |v| v.as_str());
}

/// An inventory document keeps its JSON through [`contract::Inventory`]: `type` is a
/// parameter's key, states are their words, absent values are `null`.
#[test]
fn an_inventory_document_keeps_its_json() {
    let text = r#"{"host": "h1", "node": "alpha", "taken_at": "2026-11-25T10:42:07Z",
        "took_ms": 812,
        "interfaces": [{"name": "lo", "index": 1, "state": "unknown", "up": true,
            "carrier": true, "mac": "00:00:00:00:00:00", "mtu": 65536, "loopback": true,
            "addresses": [{"address": "127.0.0.1", "prefix_len": 8, "scope": "host"}]}],
        "block_devices": [{"name": "vda1", "path": "/dev/vda1", "dev": "254:1",
            "parent": "vda", "size_bytes": 1048576, "read_only": false, "fs_type": "ext4",
            "uuid": null, "label": null, "mount_points": ["/srv"]}],
        "ocf_agents": [{"provider": "heartbeat", "name": "Dummy",
            "path": "/usr/lib/ocf/resource.d/heartbeat/Dummy", "version": "1.0",
            "shortdesc": "Example", "longdesc": null,
            "parameters": [{"name": "state", "required": false, "unique": true,
                "type": "string", "default": "/run/x", "shortdesc": "State file",
                "longdesc": null, "options": []}],
            "actions": [{"name": "start", "timeout": "20s", "interval": null, "depth": null}],
            "meta_data_error": null}],
        "systemd_units": [],
        "lsb_scripts": [{"name": "dbus", "path": "/etc/init.d/dbus", "executable": true,
            "lsb_header": true, "short_description": "D-Bus"}],
        "problems": [{"part": "systemd_units", "code": "W5325",
            "message": "systemd is not running on this host"}]}"#;
    let inventory: contract::Inventory = round_trip(text);
    assert_eq!(inventory.ocf_agent("heartbeat", "Dummy").unwrap().parameters[0].name, "state");
    assert_eq!(inventory.interface("lo").unwrap().state, contract::OperState::Unknown);
    let problem = inventory.problems_of(contract::InventoryPart::SystemdUnits).next().unwrap();
    assert_eq!(problem.code, "W5325");
    for part in contract::InventoryPart::ALL {
        let json = serde_json::to_value(part).unwrap();
        assert_eq!(json, Value::String(part.as_str().to_string()));
        assert!(serde_json::to_value(&inventory).unwrap().get(part.as_str()).is_some());
    }
}
