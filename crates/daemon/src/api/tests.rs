//! The API over real TLS and HTTP on 127.0.0.1, with a stand-in for the loop that
//! answers every call: the route table's auth, the limits, the OpenAPI document.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::routes::{Action, ROUTES};
use super::users::{hash_token, new_token, Role, User, UsersFile};
use super::*;
use crate::access::Caller;

struct Fixture {
    _dir: tempfile::TempDir,
    server: Option<ApiServer>,
    ca: String,
    tokens: Vec<(Role, String)>,
    callers: Arc<Mutex<Vec<(String, Caller)>>>,
}

fn fixture(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = tls::new_ca().unwrap();
    let node = tls::node_certificate(&ca.key, "alpha", IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
    let (cert, key) = (dir.path().join("alpha.crt"), dir.path().join("alpha.key"));
    std::fs::write(&cert, node.cert).unwrap();
    std::fs::write(&key, node.key).unwrap();
    let mut users = UsersFile::default();
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let token = new_token(role.as_str());
        users.users.push(User { name: role.as_str().into(), role, hash: hash_token(&token) });
        tokens.push((role, token));
    }
    let users_file = dir.path().join("users.toml");
    users.save(&users_file).unwrap();
    let (calls, mut rx) = mpsc::channel::<Call>(4);
    let callers = Arc::new(Mutex::new(Vec::new()));
    let seen = callers.clone();
    std::thread::spawn(move || {
        while let Some(call) = rx.blocking_recv() {
            let answer = match call.request {
                crate::control::Request::Status => serde_json::from_value(json!({"ok": true,
                    "status": {"cluster": "t", "reported_by": "alpha", "nodes": [], "links": [],
                        "groups": [], "leases": [], "faults": [], "receiving": [],
                        "journal": {"durable_id": 0, "queued": 0, "dropped": 0, "error": null}}}))
                .unwrap(),
                _ => crate::control::Answer::taken(),
            };
            seen.lock().unwrap().push((crate::control::describe(&call.request), call.caller));
            let _ = call.answer.send(answer);
        }
    });
    let state = ApiState {
        calls,
        auth: auth::Authenticator::new(users_file).unwrap(),
        rate: rate::RateLimiter::new(limits.per_second, limits.burst),
        limits,
        journal_dir: dir.path().to_path_buf(),
        metrics: Arc::default(),
        apps: Arc::new(|name: &str, _: Option<&str>| match name {
            "app" => Ok(()),
            other => Err(format!("no app resource {other} on this node")),
        }),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = tls::server_config(&cert, &key).unwrap();
    let server = ApiServer::spawn(listener, config, state).unwrap();
    Fixture { _dir: dir, server: Some(server), ca: ca.cert, tokens, callers }
}

impl Fixture {
    fn port(&self) -> u16 {
        self.server.as_ref().unwrap().address.port()
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        use rustls::pki_types::pem::PemObject;
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(self.ca.as_bytes()).unwrap())
            .unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(tls::provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    fn agent(&self) -> ureq::Agent {
        ureq::AgentBuilder::new()
            .tls_config(self.client_config())
            .timeout(Duration::from_secs(10))
            .build()
    }

    fn token(&self, role: Role) -> &str {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }

    /// One request: its status and body (0 when no HTTP answer came).
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let url = format!("https://127.0.0.1:{}{path}", self.port());
        let mut request = self.agent().request(method, &url);
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        let result = if body.is_empty() { request.call() } else { request.send_string(body) };
        match result {
            Ok(response) => (response.status(), response.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, response)) => {
                (code, response.into_string().unwrap_or_default())
            }
            Err(ureq::Error::Transport(_)) => (0, String::new()),
        }
    }

    /// A raw TLS connection (handshake done).
    fn raw(&self) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let connection = rustls::ClientConnection::new(self.client_config(), name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", self.port())).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut stream = rustls::StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        stream
    }
}

fn concrete(path: &str) -> String {
    path.replace("{g}", "db").replace("{n}", "beta").replace("{name}", "app")
}

fn body_for(action: Action) -> &'static str {
    match action {
        Action::Maintenance => r#"{"on": true}"#,
        Action::Switchover => r#"{"to": "beta"}"#,
        _ => "",
    }
}

#[test]
fn every_route_refuses_without_a_token_a_bad_one_and_a_too_low_role() {
    let limits = Limits { per_second: 1000, burst: 1000, ..Limits::default() };
    let f = fixture(limits);
    for route in ROUTES {
        let path = concrete(route.path);
        let body = body_for(route.action);
        let what = format!("{} {}", route.method, route.path);
        let (code, _) = f.call(route.method, &path, None, body);
        let expected = if route.need.is_some() { 401 } else { 200 };
        assert_eq!(code, expected, "{what} without a token");
        let (code, _) = f.call(route.method, &path, Some("viewer.0000"), body);
        assert_eq!(code, expected, "{what} with a bad token");
        let forged = new_token("admin");
        let (code, _) = f.call(route.method, &path, Some(&forged), body);
        assert_eq!(code, expected, "{what} with an admin-looking token that is not admin's");
        for role in Role::ALL {
            let (code, text) = f.call(route.method, &path, Some(f.token(role)), body);
            let allowed = route.need.is_none_or(|need| role.may(need));
            let expected = if allowed { 200 } else { 403 };
            assert_eq!(code, expected, "{what} as {role}: {text}");
        }
    }
    // A 401 says how to authenticate.
    let url = format!("https://127.0.0.1:{}/v1/status", f.port());
    match f.agent().get(&url).call() {
        Err(ureq::Error::Status(401, response)) => {
            assert_eq!(response.header("WWW-Authenticate"), Some(r#"Bearer realm="tandem""#));
        }
        other => panic!("{other:?}"),
    }
    // The commands reached the loop with their caller: user, role and address.
    let callers = f.callers.lock().unwrap();
    let (what, caller) =
        callers.iter().find(|(what, _)| what.starts_with("switchover")).expect("a switchover");
    assert_eq!(what, "switchover of group `db` to beta");
    let text = caller.to_string();
    assert!(text.starts_with("operator (role operator, through the API from 127.0.0.1:"), "{text}");
    // The viewer's status calls came as the viewer; no refused call reached the loop.
    assert!(callers.iter().all(|(_, c)| matches!(c, Caller::Api { .. })));
    assert!(!callers.iter().any(|(what, c)| what != "status"
        && matches!(c, Caller::Api { role: Role::Viewer | Role::App, .. })));
}

#[test]
fn the_openapi_document_has_every_route_and_nothing_else() {
    let f = fixture(Limits::default());
    let (code, text) = f.call("GET", "/v1/openapi.json", None, "");
    assert_eq!(code, 200);
    let document: Value = serde_json::from_str(&text).unwrap();
    let mut documented = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    documented.sort();
    let mut routed: Vec<String> =
        ROUTES.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    routed.sort();
    assert_eq!(documented, routed);
    // And the router serves those (not 404) and nothing else.
    let admin = f.token(Role::Admin).to_string();
    for route in ROUTES {
        // The app's own route takes the app's token only.
        let token = match route.need {
            Some(Role::App) => f.token(Role::App).to_string(),
            _ => admin.clone(),
        };
        let (code, _) =
            f.call(route.method, &concrete(route.path), Some(&token), body_for(route.action));
        assert_eq!(code, 200, "{} {}", route.method, route.path);
    }
    for path in ["/", "/v1/config", "/v1/nodes/beta/inventory"] {
        assert_eq!(f.call("GET", path, Some(&admin), "").0, 404, "GET {path}");
        assert_eq!(f.call("POST", path, Some(&admin), "{}").0, 404, "POST {path}");
    }
    assert_eq!(document["paths"]["/v1/maintenance"]["post"]["requestBody"]["required"], true);
}

#[test]
fn an_app_token_reports_for_its_own_app_only_and_metrics_are_served() {
    let f = fixture(Limits { per_second: 1000, burst: 1000, ..Limits::default() });
    let app = f.token(Role::App).to_string();
    let body = r#"{"status": "serving"}"#;
    assert_eq!(f.call("POST", "/v1/apps/app/heartbeat", Some(&app), body).0, 200);
    let (code, text) = f.call("POST", "/v1/apps/other/heartbeat", Some(&app), body);
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("reports for app app only"), "{text}");
    let (code, text) = f.call("POST", "/v1/apps/app/heartbeat", Some(&app), r#"{"bogus": 1}"#);
    assert_eq!(code, 400, "{text}");
    let viewer = f.token(Role::Viewer).to_string();
    let (code, text) = f.call("GET", "/metrics", Some(&viewer), "");
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("# TYPE tandem_disk_job_seconds histogram"), "{text}");
}

#[test]
fn a_body_over_the_limit_is_refused() {
    let f = fixture(Limits::default());
    let admin = f.token(Role::Admin).to_string();
    let padding = " ".repeat(BODY_BYTES_MAX);
    let (code, _) =
        f.call("POST", "/v1/maintenance", Some(&admin), &format!(r#"{{"on": true}}{padding}"#));
    assert_eq!(code, 413);
    let fits = " ".repeat(BODY_BYTES_MAX - 20);
    let (code, _) =
        f.call("POST", "/v1/maintenance", Some(&admin), &format!(r#"{{"on": true}}{fits}"#));
    assert_eq!(code, 200);
}

#[test]
fn a_client_over_its_rate_gets_429() {
    let f = fixture(Limits { per_second: 1, burst: 3, ..Limits::default() });
    for _ in 0..3 {
        assert_eq!(f.call("GET", "/v1/openapi.json", None, "").0, 200);
    }
    let url = format!("https://127.0.0.1:{}/v1/status", f.port());
    match f.agent().get(&url).call() {
        Err(ureq::Error::Status(429, response)) => {
            assert_eq!(response.header("Retry-After"), Some("1"));
        }
        other => panic!("{other:?}"),
    }
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(f.call("GET", "/v1/openapi.json", None, "").0, 200, "refilled");
}

#[test]
fn connections_over_the_limit_are_closed() {
    let f = fixture(Limits { connections: 2, ..Limits::default() });
    let held = [f.raw(), f.raw()];
    assert_eq!(f.call("GET", "/v1/openapi.json", None, "").0, 0, "a third connection");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (code, _) = f.call("GET", "/v1/openapi.json", None, "");
        if code == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no slot came free");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the server closes `stream` within `within` (read returns end of stream or an
/// error); what it sent before is returned.
fn closed_within(stream: &mut impl Read, within: Duration) -> Option<String> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
        }
    }
    (started.elapsed() < within).then(|| String::from_utf8_lossy(&got).into_owned())
}

#[test]
fn slow_and_silent_clients_are_closed() {
    let short = Duration::from_millis(500);
    let limits =
        Limits { handshake: short, header_read: short, body_read: short, ..Limits::default() };
    let f = fixture(limits);
    // No handshake at all.
    let mut tcp = TcpStream::connect(("127.0.0.1", f.port())).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(closed_within(&mut tcp, Duration::from_secs(3)).is_some(), "silent before TLS");
    // Half a request head.
    let mut stream = f.raw();
    stream.write_all(b"GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert!(closed_within(&mut stream, Duration::from_secs(3)).is_some(), "half a head");
    // A body that never ends.
    let mut stream = f.raw();
    let head = format!(
        "POST /v1/maintenance HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 20\r\n\r\n{{\"on\"",
        f.token(Role::Admin)
    );
    stream.write_all(head.as_bytes()).unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(3)).expect("closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // Idle after a request on a kept-alive connection.
    let mut stream = f.raw();
    stream.write_all(b"GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let answer = closed_within(&mut stream, Duration::from_secs(3)).expect("closed when idle");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_full_channel_answers_503_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let token = new_token("watcher");
    let users = UsersFile {
        users: vec![User { name: "watcher".into(), role: Role::Viewer, hash: hash_token(&token) }],
    };
    let users_file = dir.path().join("users.toml");
    users.save(&users_file).unwrap();
    // A loop that takes nothing: the channel's one place is taken, then full.
    let (calls, _rx) = mpsc::channel::<Call>(1);
    let (answer, _pending) = tokio::sync::oneshot::channel();
    let caller = Caller::Api {
        user: "x".into(),
        role: Role::Viewer,
        address: "127.0.0.1:1".parse().unwrap(),
    };
    calls.try_send(Call { request: crate::control::Request::Status, caller, answer }).ok().unwrap();
    let ca = tls::new_ca().unwrap();
    let node = tls::node_certificate(&ca.key, "alpha", IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
    let (cert, key) = (dir.path().join("a.crt"), dir.path().join("a.key"));
    std::fs::write(&cert, node.cert).unwrap();
    std::fs::write(&key, node.key).unwrap();
    let state = ApiState {
        calls,
        auth: auth::Authenticator::new(users_file).unwrap(),
        rate: rate::RateLimiter::new(100, 100),
        limits: Limits::default(),
        journal_dir: dir.path().to_path_buf(),
        metrics: Arc::default(),
        apps: Arc::new(|name: &str, _: Option<&str>| match name {
            "app" => Ok(()),
            other => Err(format!("no app resource {other} on this node")),
        }),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server =
        ApiServer::spawn(listener, tls::server_config(&cert, &key).unwrap(), state).unwrap();
    let f = Fixture {
        _dir: dir,
        server: Some(server),
        ca: ca.cert,
        tokens: vec![(Role::Viewer, token)],
        callers: Arc::default(),
    };
    let started = Instant::now();
    let (code, text) = f.call("GET", "/v1/status", Some(f.token(Role::Viewer)), "");
    assert_eq!(code, 503, "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
}
