//! The editor's edits on real texts: comments, order and indentation kept; every kind
//! of edit; refusals with their codes; diagnostics placed on the key they are about.

use std::collections::BTreeMap;

use super::*;

const TEXT: &str = r#"# The ERP cluster (edited by hand, comments must stay)
[cluster]
name = "erp"
key_file = "/nonexistent/cluster.key"

[timing]
peer_timeout = "1s"   # a link is down after this long

[[node]]
name = "alpha"
addresses = { private = "127.0.0.1:1" }
api = "127.0.0.1:3"

[[node]]
name = "beta"
addresses = { private = "127.0.0.1:2" }
api = "127.0.0.1:4"

[[link]]
name = "private"
kind = "udp"

[arbitration]
kind = "none"

[[group]]
name = "db"
nodes = ["alpha", "beta"]   # alpha first

  # the data, mounted first
  [[group.resource]]
  name = "data"
  kind = "process"
  command = ["/bin/sleep", "1000"]

[[alert]]
kind = "script"
path = "/bin/true"
"#;

fn fields(pairs: &[(&str, Option<EditValue>)]) -> EditFields {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn s(text: &str) -> Option<EditValue> {
    Some(EditValue::String(text.into()))
}

#[test]
fn adding_a_resource_keeps_comments_order_and_indentation() {
    let edits = [ConfigEdit::PutResource {
        group: "db".into(),
        name: "vip".into(),
        fields: fields(&[
            ("kind", s("ip")),
            ("address", s("10.0.0.100/24")),
            ("interface", s("lo")),
            ("start_timeout", s("5s")),
        ]),
    }];
    let out = edit(TEXT, &edits).unwrap();
    // Everything before is untouched, the new resource follows the last one, indented
    // like it, its kind's own keys before the common ones; the alert stays after.
    let added = "\n  [[group.resource]]\n  name = \"vip\"\n  kind = \"ip\"\n  \
                 address = \"10.0.0.100/24\"\n  interface = \"lo\"\n  start_timeout = \"5s\"\n";
    let expected = TEXT.replace("\n[[alert]]", &format!("{added}\n[[alert]]"));
    assert_eq!(out, expected, "{out}");
    let (config, _) = config::parse(&out, "t.toml").unwrap();
    assert_eq!(config.cluster.groups[0].resources.len(), 2);
}

#[test]
fn a_changed_value_keeps_its_comment_and_a_removed_key_goes() {
    let edits = [
        ConfigEdit::SetValue {
            section: "timing".into(),
            key: "peer_timeout".into(),
            value: s("2s"),
        },
        ConfigEdit::SetValue {
            section: "timing".into(),
            key: "lease_timeout".into(),
            value: s("3s"),
        },
        ConfigEdit::PutGroup {
            name: "db".into(),
            fields: fields(&[
                ("nodes", Some(EditValue::List(vec!["beta".into(), "alpha".into()]))),
                ("failback", s("auto")),
            ]),
        },
        ConfigEdit::PutResource {
            group: "db".into(),
            name: "data".into(),
            fields: fields(&[("command", None), ("kind", s("app")), ("deadline", s("5s"))]),
        },
    ];
    let out = edit(TEXT, &edits).unwrap();
    assert!(out.contains("peer_timeout = \"2s\"   # a link is down after this long\n"), "{out}");
    assert!(out.contains("lease_timeout = \"3s\"\n"), "{out}");
    assert!(out.contains("nodes = [\"beta\", \"alpha\"]   # alpha first\n"), "{out}");
    assert!(out.contains("failback = \"auto\""), "{out}");
    assert!(out.contains("  # the data, mounted first\n  [[group.resource]]"), "{out}");
    assert!(out.contains("  kind = \"app\"\n  deadline = \"5s\"\n"), "{out}");
    assert!(!out.contains("command"), "{out}");
    config::parse(&out, "t.toml").unwrap();
}

#[test]
fn groups_nodes_and_alerts_are_added_and_removed() {
    let mut table = BTreeMap::new();
    table.insert("interval".to_string(), "2s".to_string());
    let edits = [
        ConfigEdit::PutGroup {
            name: "web".into(),
            fields: fields(&[("nodes", Some(EditValue::List(vec!["beta".into()])))]),
        },
        ConfigEdit::PutResource {
            group: "web".into(),
            name: "app".into(),
            fields: fields(&[
                ("kind", s("app")),
                ("deadline", s("5s")),
                ("monitor", Some(EditValue::Table(table))),
            ]),
        },
        ConfigEdit::SetNodeAddress {
            node: "beta".into(),
            link: "private".into(),
            address: Some("127.0.0.1:9".into()),
        },
        ConfigEdit::RemoveAlert { index: 0 },
        ConfigEdit::PutAlert {
            index: None,
            fields: fields(&[("kind", s("webhook")), ("url", s("https://example.com/h"))]),
        },
        ConfigEdit::RemoveResource { group: "db".into(), name: "data".into() },
    ];
    let out = edit(TEXT, &edits).unwrap();
    let (config, _) = config::parse(&out, "t.toml").unwrap_or_else(|d| panic!("{d:?}\n{out}"));
    assert_eq!(config.cluster.groups.len(), 2, "{out}");
    assert_eq!(config.cluster.groups[1].name, "web");
    assert!(config.cluster.groups[0].resources.is_empty());
    assert!(out.contains("addresses = { private = \"127.0.0.1:9\" }"), "{out}");
    assert!(out.contains("monitor = { interval = \"2s\" }"), "{out}");
    assert!(!out.contains("/bin/true"), "{out}");
    assert!(out.contains("url = \"https://example.com/h\""), "{out}");
    // The group comes before the alerts, as written.
    assert!(out.find("name = \"web\"").unwrap() < out.find("[[alert]]").unwrap(), "{out}");
    let edits = [ConfigEdit::RemoveGroup { name: "db".into() }];
    let out = edit(TEXT, &edits).unwrap();
    assert!(!out.contains("[[group"), "{out}");
    assert!(out.contains("# The ERP cluster"), "{out}");
}

#[test]
fn edits_that_cannot_be_made_are_refused_with_their_code_and_none_is_made() {
    let put = |group: &str, kind: Option<EditValue>| ConfigEdit::PutResource {
        group: group.into(),
        name: "x".into(),
        fields: fields(&[("kind", kind)]),
    };
    let cases: Vec<(Vec<ConfigEdit>, usize, &str)> = vec![
        (vec![put("db", s("app")), put("nope", s("app"))], 1, "E1341"),
        (vec![put("db", None)], 0, "E1342"),
        (vec![ConfigEdit::RemoveResource { group: "db".into(), name: "x".into() }], 0, "E1341"),
        (vec![ConfigEdit::RemoveAlert { index: 3 }], 0, "E1341"),
        (
            vec![ConfigEdit::SetValue { section: "group".into(), key: "x".into(), value: None }],
            0,
            "E1342",
        ),
        (
            vec![ConfigEdit::SetNodeAddress {
                node: "gamma".into(),
                link: "private".into(),
                address: None,
            }],
            0,
            "E1341",
        ),
        (
            vec![ConfigEdit::PutGroup { name: "db".into(), fields: fields(&[("name", s("y"))]) }],
            0,
            "E1342",
        ),
    ];
    for (edits, index, code) in cases {
        let (at, why) = edit(TEXT, &edits).unwrap_err();
        assert_eq!((at, why.code.code), (Some(index), code), "{edits:?}: {why}");
    }
    let inline = "group = [{ name = \"db\", nodes = [\"a\"] }]\n[cluster]\nname = \"t\"\n";
    let edits = [ConfigEdit::RemoveGroup { name: "db".into() }];
    assert_eq!(edit(inline, &edits).unwrap_err().1.code.code, "E1342");
}

#[test]
fn diagnostics_are_placed_on_the_key_they_are_about() {
    let edits = [ConfigEdit::PutResource {
        group: "db".into(),
        name: "vip".into(),
        fields: fields(&[("kind", s("ip")), ("address", s("10.0.0.300/24"))]),
    }];
    let out = edit(TEXT, &edits).unwrap();
    let found = match config::parse(&out, "t.toml") {
        Ok(_) => panic!("10.0.0.300 is no address"),
        Err(found) => found,
    };
    let diagnostics: Vec<ConfigDiagnostic> = found
        .iter()
        .map(|d| {
            let (line, column) = d.line_column(&out);
            ConfigDiagnostic {
                code: d.code.code.to_string(),
                severity: contract::Severity::Error,
                message: d.message.clone(),
                line,
                column,
                label: d.label.clone(),
                help: d.help.clone(),
            }
        })
        .collect();
    let placed = places(&out, diagnostics);
    let e1018 = placed.iter().find(|d| d.diagnostic.code == "E1018").expect("E1018");
    assert_eq!(e1018.path, ["group", "db", "resource", "vip", "address"]);
    // A section's own place, a value inside an inline table, an alert by index.
    let at = |needle: &str, column: usize| {
        let line = TEXT.lines().position(|l| l.starts_with(needle)).expect(needle) + 1;
        let d = ConfigDiagnostic {
            code: "E1002".into(),
            severity: contract::Severity::Error,
            message: String::new(),
            line,
            column,
            label: String::new(),
            help: Vec::new(),
        };
        places(TEXT, vec![d]).remove(0).path
    };
    assert_eq!(at("peer_timeout", 1), ["timing", "peer_timeout"]);
    assert_eq!(
        at("addresses = { private = \"127.0.0.1:1", 15),
        ["node", "alpha", "addresses", "private"]
    );
    assert_eq!(at("path = \"/bin/true", 1), ["alert", "0", "path"]);
    assert_eq!(at("  [[group.resource]]", 3), ["group", "db", "resource", "data"]);
    assert_eq!(at("[timing]", 1), ["timing"]);
}

#[test]
fn the_document_and_the_diff() {
    let json = as_json(TEXT);
    assert_eq!(json["group"][0]["resource"][0]["name"], "data");
    assert_eq!(as_json("not = = toml"), serde_json::Value::Null);
    assert_eq!(diff(TEXT, TEXT, "alpha", 1), "");
    let edited = TEXT.replace("\"1s\"", "\"2s\"");
    let d = diff(TEXT, &edited, "alpha", 1);
    assert!(d.contains("--- running (node alpha, generation 1)\n+++ edited\n"), "{d}");
    assert!(d.contains("-peer_timeout = \"1s\""), "{d}");
    assert!(d.contains("+peer_timeout = \"2s\""), "{d}");
}
