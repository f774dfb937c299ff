//! The console's configuration editor against two real `tandem node`s on loopback with
//! their HTTPS APIs: the node asked for another node's inventory fetches it from that
//! node (the signed node call), so a client asks one node for every node's; edits made
//! through `POST /v1/config/edit` give a text that, pushed, reaches both nodes; an
//! invalid edit is answered with its diagnostic and, pushed anyway, refused by every
//! node with nothing applied.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "support/api_cluster.rs"]
mod api_cluster;
use api_cluster::{agent, ApiCluster};

struct Two {
    cluster: ApiCluster,
    admin: String,
    operator: String,
}

impl Two {
    fn url(&self, node: usize, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.cluster.api[node])
    }

    /// One request as `token`: the HTTP status and the JSON answer.
    fn call(
        &self,
        node: usize,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let request = agent(&self.cluster.dir.path().join("ca.crt"))
            .request(method, &self.url(node, path))
            .timeout(Duration::from_secs(40))
            .set("Authorization", &format!("Bearer {token}"));
        let result = match body {
            Some(body) => request.send_string(&body.to_string()),
            None => request.call(),
        };
        match result {
            Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
            Err(e) => (0, Value::String(e.to_string())),
        }
    }
}

fn start() -> (Two, api_cluster::Daemons) {
    let cluster = ApiCluster::new("edit", "");
    let dir = cluster.dir.path();
    // The cluster CA is in the configuration already (ApiCluster).
    let text = std::fs::read_to_string(&cluster.config).unwrap();
    let files = [dir.join("alpha.toml"), dir.join("beta.toml")];
    for file in &files {
        std::fs::write(file, &text).unwrap();
    }
    let admin = cluster.user("ada", "admin");
    let operator = cluster.user("otto", "operator");
    let daemons = cluster.start_with([(&files[0], &[]), (&files[1], &[])]);
    let two = Two { cluster, admin, operator };
    let deadline = Instant::now() + Duration::from_secs(20);
    for node in 0..2 {
        while two.call(node, "GET", "/v1/config", &two.admin, None).0 != 200 {
            assert!(Instant::now() < deadline, "no API\n{}", two.cluster.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (two, daemons)
}

#[test]
fn another_nodes_inventory_comes_through_the_node_asked_and_an_edit_reaches_both() {
    let (two, _daemons) = start();
    // Alpha is asked for beta's inventory: beta took it (its node), alpha fetched it.
    let (code, inventory) = two.call(0, "GET", "/v1/nodes/beta/inventory", &two.admin, None);
    assert_eq!(code, 200, "{inventory}\n{}", two.cluster.logs());
    assert_eq!(inventory["node"], "beta", "{inventory}");
    assert!(inventory["interfaces"].as_array().unwrap().iter().any(|i| i["name"] == "lo"));
    let (code, inventory) = two.call(1, "GET", "/v1/nodes/alpha/inventory", &two.admin, None);
    assert_eq!(code, 200, "{inventory}");
    assert_eq!(inventory["node"], "alpha");
    // Still an admin's document, wherever it comes from; the node route wants a node.
    let (code, _) = two.call(0, "GET", "/v1/nodes/beta/inventory", &two.operator, None);
    assert_eq!(code, 403);
    let (code, answer) = two.call(1, "GET", "/v1/config/node/inventory", &two.admin, None);
    assert_eq!(code, 401, "{answer}");

    // An edit through alpha: a group with a resource; nothing saved yet.
    let (_, running) = two.call(0, "GET", "/v1/config", &two.admin, None);
    let generation = running["generation"].as_u64().unwrap();
    let edits = json!([
        {"op": "put_group", "name": "web", "fields": {"nodes": ["alpha", "beta"]}},
        {"op": "put_resource", "group": "web", "name": "api",
         "fields": {"kind": "app", "deadline": "5s"}},
    ]);
    let body = json!({"generation": generation, "edits": edits});
    let (code, answer) = two.call(0, "POST", "/v1/config/edit", &two.admin, Some(body));
    assert_eq!(code, 200, "{answer}");
    assert_eq!((answer["ok"].as_bool(), answer["valid"].as_bool()), (Some(true), Some(true)));
    let text = answer["toml"].as_str().unwrap().to_string();
    assert!(text.starts_with(running["toml"].as_str().unwrap()), "{text}");
    assert!(answer["diff"].as_str().unwrap().contains("+name = \"web\""), "{answer}");
    let (_, now) = two.call(1, "GET", "/v1/config", &two.admin, None);
    assert_eq!(now["generation"].as_u64(), Some(generation), "the edit saved nothing");
    // Saved as the console does: the text pushed; both nodes have it, with the restart
    // it needs named.
    let push = json!({"toml": text, "generation": generation});
    let (code, pushed) = two.call(0, "POST", "/v1/config", &two.admin, Some(push));
    assert_eq!(code, 200, "{pushed}\n{}", two.cluster.logs());
    let changes = pushed["outcome"]["changes"].as_array().unwrap();
    assert!(
        changes.iter().any(|c| c["what"] == "group `web` added" && c["live"] == false),
        "{pushed}"
    );
    for node in 0..2 {
        let (_, doc) = two.call(node, "GET", "/v1/config", &two.admin, None);
        assert_eq!(doc["generation"].as_u64(), Some(generation + 1), "{doc}");
        assert_eq!(doc["toml"].as_str(), Some(text.as_str()));
    }

    // An invalid edit: its diagnostic with its code and key; pushed anyway, refused by
    // every node and nothing applied.
    let edits = json!([{"op": "put_resource", "group": "web", "name": "vip",
        "fields": {"kind": "ip", "address": "10.0.0.300/24"}}]);
    let body = json!({"generation": generation + 1, "edits": edits});
    let (code, answer) = two.call(0, "POST", "/v1/config/edit", &two.admin, Some(body));
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["valid"], false, "{answer}");
    let e1018 = answer["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "E1018")
        .unwrap_or_else(|| panic!("{answer}"))
        .clone();
    assert_eq!(e1018["path"], json!(["group", "web", "resource", "vip", "address"]));
    let push = json!({"toml": answer["toml"], "generation": generation + 1});
    let (code, refused) = two.call(0, "POST", "/v1/config", &two.admin, Some(push));
    assert_eq!(code, 409, "{refused}");
    for node in 0..2 {
        let (_, doc) = two.call(node, "GET", "/v1/config", &two.admin, None);
        assert_eq!(doc["generation"].as_u64(), Some(generation + 1), "{doc}");
    }
}
