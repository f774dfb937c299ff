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

/// The fixture's nodes for the console: alpha is this API, beta another port.
fn console_nodes(port: u16) -> Vec<(String, std::net::SocketAddr)> {
    vec![
        ("alpha".into(), (Ipv4Addr::LOCALHOST, port).into()),
        ("beta".into(), (Ipv4Addr::LOCALHOST, 7999).into()),
    ]
}

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
                    "status": {"cluster": "t", "reported_by": "alpha",
                        "nodes": [{"name": "alpha", "state": "working"},
                            {"name": "beta", "state": "standby"}], "links": [],
                        "groups": [], "leases": [], "faults": [], "receiving": [],
                        "journal": {"durable_id": 0, "queued": 0, "dropped": 0, "error": null}}}))
                .unwrap(),
                _ => crate::control::Answer::taken(),
            };
            seen.lock().unwrap().push((crate::control::describe(&call.request), call.caller));
            let _ = call.answer.send(answer);
        }
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let configs = configs_of(dir.path(), calls.clone());
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
        console: console::Console::new(port, console_nodes(port)),
        configs: Some(configs),
        inventory: inventory_of(dir.path(), port),
    };
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
    // Alpha (this API) takes its own inventory; beta's is another node's (421).
    path.replace("{n}/inventory", "alpha/inventory")
        .replace("{g}", "db")
        .replace("{n}", "beta")
        .replace("{name}", "app")
        .replace("{code}", "W2101")
        .replace("{generation}", "1")
}

/// The fixture node's configuration (generation 1 of its store).
const FIXTURE_CONFIG: &str = r#"[cluster]
name = "t"
key_file = "/nonexistent/cluster.key"

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
"#;

/// `{"toml": FIXTURE_CONFIG, "generation": 1}`: a check of it, or a push of the same
/// text (which changes nothing).
static CONFIG_BODY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| json!({"toml": FIXTURE_CONFIG, "generation": 1}).to_string());
static CHECK_BODY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| json!({"toml": FIXTURE_CONFIG}).to_string());

/// The key the fixture's configuration service signs node calls with.
const FIXTURE_KEY: [u8; 32] = [7; 32];

/// The fixture's configuration service: alpha, its file and store in `dir`.
fn configs_of(
    dir: &std::path::Path,
    calls: mpsc::Sender<Call>,
) -> Arc<crate::configstore::Service> {
    let file = dir.join("cluster.toml");
    std::fs::write(&file, FIXTURE_CONFIG).unwrap();
    let (config, _) = config::parse(FIXTURE_CONFIG, "cluster.toml").unwrap();
    let setup = crate::configstore::Setup {
        config: &config,
        file: &file,
        state_dir: &dir.join("state"),
        node: "alpha",
        key: wire::Key::new(FIXTURE_KEY),
        calls,
    };
    crate::configstore::Service::start(setup).unwrap().0
}

fn body_for(action: Action) -> &'static str {
    match action {
        Action::Maintenance => r#"{"on": true}"#,
        Action::Switchover => r#"{"to": "beta"}"#,
        Action::ConfigPush => &CONFIG_BODY,
        Action::ConfigCheck => &CHECK_BODY,
        Action::ConfigEdit => r#"{"generation": 1, "edits": []}"#,
        _ => "",
    }
}

#[test]
fn every_route_refuses_without_a_token_a_bad_one_and_a_too_low_role() {
    let limits = Limits { per_second: 1000, burst: 1000, ..Limits::default() };
    let f = fixture(limits);
    for route in ROUTES {
        if route.action == Action::Login {
            // Its token comes in the form, not the header: the console's tests check it.
            continue;
        }
        let path = concrete(route.path);
        let body = body_for(route.action);
        let what = format!("{} {}", route.method, route.path);
        let (code, _) = f.call(route.method, &path, None, body);
        // The nodes' own routes take the cluster key's signature, never a user's token.
        let expected = if route.need.is_some() || route.action.node_only() { 401 } else { 200 };
        assert_eq!(code, expected, "{what} without a token");
        let (code, _) = f.call(route.method, &path, Some("viewer.0000"), body);
        assert_eq!(code, expected, "{what} with a bad token");
        let forged = new_token("admin");
        let (code, _) = f.call(route.method, &path, Some(&forged), body);
        assert_eq!(code, expected, "{what} with an admin-looking token that is not admin's");
        for role in Role::ALL {
            let (code, text) = f.call(route.method, &path, Some(f.token(role)), body);
            let allowed = route.need.is_none_or(|need| role.may(need));
            let expected = match allowed {
                _ if route.action.node_only() => 401,
                true => 200,
                false => 403,
            };
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
        // `POST /login` takes its token from the form: an empty one is refused (401).
        // The nodes' own routes take the cluster key's signature only (401).
        let expected =
            if route.action == Action::Login || route.action.node_only() { 401 } else { 200 };
        assert_eq!(code, expected, "{} {}", route.method, route.path);
    }
    for path in ["/v1/config/x", "/v1/nodes/beta/inventory/x"] {
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

/// A browser loading the console many times over spends none of its address's budget
/// on the console's files and sign-in form (served from memory): they keep coming, and
/// the page's reads still get their share; past the budget the reads get 429.
#[test]
fn the_console_files_are_outside_the_rate_limit() {
    let f = fixture(Limits { per_second: 1, burst: 2, ..Limits::default() });
    for _ in 0..10 {
        for path in ["/console/app.js", "/console/editor.js", "/console/app.css", "/login"] {
            assert_eq!(f.call("GET", path, None, "").0, 200, "{path}");
        }
    }
    let viewer = f.token(Role::Viewer).to_string();
    for _ in 0..2 {
        assert_eq!(f.call("GET", "/v1/status", Some(&viewer), "").0, 200);
    }
    assert_eq!(f.call("GET", "/v1/status", Some(&viewer), "").0, 429);
    assert_eq!(f.call("GET", "/console/app.js", None, "").0, 200, "a file, over the budget");
    // The sign-in itself is counted (each one checks a token).
    assert_eq!(f.call("POST", "/login", None, "token=x").0, 429);
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
        console: console::Console::new(0, Vec::new()),
        configs: None,
        inventory: inventory_of(dir.path(), 0),
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

// The web console: sign-in, the session cookie, CSRF, sign-out, help, its files.

/// An agent that does not follow redirects (a 303 is the answer to look at).
fn agent_no_redirects(f: &Fixture) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .tls_config(f.client_config())
        .timeout(Duration::from_secs(10))
        .redirects(0)
        .build()
}

/// The answer of `request` (sent with `body` if not empty), whatever its status.
fn answer_of(request: ureq::Request, body: &str) -> ureq::Response {
    let result = if body.is_empty() { request.call() } else { request.send_string(body) };
    match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(e) => panic!("no answer: {e}"),
    }
}

/// Signs in with `token` through the form: the answer.
fn sign_in(f: &Fixture, token: &str) -> ureq::Response {
    let url = format!("https://127.0.0.1:{}/login", f.port());
    let request =
        agent_no_redirects(f).post(&url).set("Content-Type", "application/x-www-form-urlencoded");
    answer_of(request, &format!("token={token}"))
}

/// The `Cookie` header of a sign-in's answer (`NAME=VALUE`).
fn cookie_of(response: &ureq::Response) -> String {
    let set = response.header("Set-Cookie").expect("a Set-Cookie header");
    set.split(';').next().unwrap().trim().to_string()
}

/// A request with the session `cookie`.
fn with_cookie(f: &Fixture, method: &str, path: &str, cookie: &str) -> ureq::Request {
    let url = format!("https://127.0.0.1:{}{path}", f.port());
    agent_no_redirects(f).request(method, &url).set("Cookie", cookie)
}

#[test]
fn console_sign_in_makes_a_session_cookie_that_authenticates_until_sign_out() {
    let f = fixture(Limits { per_second: 1000, burst: 1000, ..Limits::default() });
    let token = f.token(Role::Viewer).to_string();
    let response = sign_in(&f, &token);
    assert_eq!(response.status(), 303);
    assert_eq!(response.header("Location"), Some("/"));
    let set = response.header("Set-Cookie").unwrap().to_string();
    let name = format!("__Host-tandem-{}=", f.port());
    assert!(set.starts_with(&name), "{set}");
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.split("; ").any(|part| part == flag), "no {flag} in {set}");
    }
    let secret = token.split_once('.').unwrap().1;
    assert!(!set.contains(secret) && !set.contains(&token), "the token is not in the cookie");
    let cookie = cookie_of(&response);
    let id = cookie.strip_prefix(&name).unwrap();
    assert_eq!(id.len(), 64, "{cookie}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{cookie}");
    // The cookie authenticates the status (with every node's console address), the
    // page and whoami.
    let response = answer_of(with_cookie(&f, "GET", "/v1/status", &cookie), "");
    assert_eq!(response.status(), 200);
    let status: Value = response.into_json().unwrap();
    assert_eq!(status["nodes"][0]["api"], format!("https://127.0.0.1:{}/", f.port()));
    assert_eq!(status["nodes"][1]["api"], "https://127.0.0.1:7999/");
    let response = answer_of(with_cookie(&f, "GET", "/", &cookie).set("Accept", "text/html"), "");
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("Content-Type"), Some("text/html; charset=utf-8"));
    let response = answer_of(with_cookie(&f, "GET", "/v1/whoami", &cookie), "");
    let me: Value = response.into_json().unwrap();
    assert_eq!(me, json!({"user": "viewer", "role": "viewer"}));
    // A viewer's cookie gives no more than the viewer's role.
    let switch =
        with_cookie(&f, "POST", "/v1/groups/db/switchover", &cookie).set("X-Tandem-Console", "1");
    assert_eq!(answer_of(switch, "{}").status(), 403);
    // Sign-out needs the console's header too; then the session is gone on the node.
    let response = answer_of(with_cookie(&f, "POST", "/logout", &cookie), "");
    assert_eq!(response.status(), 403);
    assert!(response.into_string().unwrap().contains("E5302"));
    let response =
        answer_of(with_cookie(&f, "POST", "/logout", &cookie).set("X-Tandem-Console", "1"), "");
    assert_eq!(response.status(), 200);
    let cleared = response.header("Set-Cookie").unwrap();
    assert!(cleared.starts_with(&format!("{name};")) && cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(answer_of(with_cookie(&f, "GET", "/v1/status", &cookie), "").status(), 401);
    let response = answer_of(with_cookie(&f, "GET", "/", &cookie).set("Accept", "text/html"), "");
    assert_eq!(response.status(), 303, "a browser with an ended session goes to sign in");
    assert_eq!(response.header("Location"), Some("/login"));
}

#[test]
fn a_cookie_post_without_the_console_header_or_origin_is_refused() {
    let f = fixture(Limits { per_second: 1000, burst: 1000, ..Limits::default() });
    let cookie = cookie_of(&sign_in(&f, f.token(Role::Operator)));
    let path = "/v1/groups/db/switchover";
    let response = answer_of(with_cookie(&f, "POST", path, &cookie), r#"{"to": "beta"}"#);
    assert_eq!(response.status(), 403);
    let text = response.into_string().unwrap();
    assert!(text.contains("E5302") && text.contains("X-Tandem-Console"), "{text}");
    let foreign = with_cookie(&f, "POST", path, &cookie).set("Origin", "https://evil.example");
    assert_eq!(answer_of(foreign, r#"{"to": "beta"}"#).status(), 403);
    assert!(f.callers.lock().unwrap().iter().all(|(what, _)| !what.starts_with("switchover")));
    let header = with_cookie(&f, "POST", path, &cookie).set("X-Tandem-Console", "1");
    assert_eq!(answer_of(header, r#"{"to": "beta"}"#).status(), 200);
    let origin = format!("https://127.0.0.1:{}", f.port());
    let same = with_cookie(&f, "POST", path, &cookie).set("Origin", &origin);
    assert_eq!(answer_of(same, r#"{"to": "beta"}"#).status(), 200);
    // The loop got them from the session's user.
    let callers = f.callers.lock().unwrap();
    let switchovers: Vec<_> =
        callers.iter().filter(|(what, _)| what.starts_with("switchover")).collect();
    assert_eq!(switchovers.len(), 2);
    let text = switchovers[0].1.to_string();
    assert!(text.starts_with("operator (role operator, through the API from 127.0.0.1:"), "{text}");
    drop(callers);
    // A bearer token needs no such header, even with a cookie beside it.
    let url = format!("https://127.0.0.1:{}{path}", f.port());
    let bearer = f
        .agent()
        .post(&url)
        .set("Authorization", &format!("Bearer {}", f.token(Role::Operator)))
        .set("Cookie", &cookie);
    assert_eq!(answer_of(bearer, "{}").status(), 200);
}

#[test]
fn a_bad_token_at_login_gets_401_and_no_cookie() {
    let f = fixture(Limits { per_second: 1000, burst: 1000, ..Limits::default() });
    for token in ["viewer.0000", &new_token("viewer"), &new_token("nobody"), ""] {
        let response = sign_in(&f, token);
        assert_eq!(response.status(), 401, "{token:?}");
        assert_eq!(response.header("Set-Cookie"), None, "{token:?}");
        let page = response.into_string().unwrap();
        assert!(page.contains(r#"id="login-error""#), "{page}");
    }
    // An app token cannot open the console.
    let response = sign_in(&f, f.token(Role::App));
    assert_eq!(response.status(), 403);
    assert_eq!(response.header("Set-Cookie"), None);
    // A sign-in posted from another site is refused, even with a good token.
    let url = format!("https://127.0.0.1:{}/login", f.port());
    let request = agent_no_redirects(&f)
        .post(&url)
        .set("Content-Type", "application/x-www-form-urlencoded")
        .set("Origin", "https://evil.example");
    let response = answer_of(request, &format!("token={}", f.token(Role::Admin)));
    assert_eq!(response.status(), 403);
    assert_eq!(response.header("Set-Cookie"), None);
    // A cookie the node never gave authenticates nothing.
    let forged = format!("__Host-tandem-{}={}", f.port(), "ab".repeat(32));
    assert_eq!(answer_of(with_cookie(&f, "GET", "/v1/status", &forged), "").status(), 401);
}

#[test]
fn a_session_ends_when_its_user_is_removed() {
    let f = fixture(Limits { per_second: 1000, burst: 1000, ..Limits::default() });
    let cookie = cookie_of(&sign_in(&f, f.token(Role::Operator)));
    assert_eq!(answer_of(with_cookie(&f, "GET", "/v1/status", &cookie), "").status(), 200);
    let path = f._dir.path().join("users.toml");
    let mut users = UsersFile::load(&path).unwrap();
    users.users.retain(|u| u.name != "operator");
    // The file is looked at once a second, by its modification time.
    std::thread::sleep(Duration::from_millis(1100));
    users.save(&path).unwrap();
    assert_eq!(answer_of(with_cookie(&f, "GET", "/v1/status", &cookie), "").status(), 401);
}

#[test]
fn help_lists_the_catalogue_and_explains_one_code() {
    let f = fixture(Limits::default());
    let viewer = f.token(Role::Viewer).to_string();
    let (code, text) = f.call("GET", "/v1/help", Some(&viewer), "");
    assert_eq!(code, 200, "{text}");
    let index: Value = serde_json::from_str(&text).unwrap();
    let codes = index["codes"].as_array().unwrap();
    assert_eq!(codes.len(), engine::catalogue::all().count());
    assert!(codes.iter().any(|c| c["code"] == "E5302" && c["severity"] == "error"));
    let (code, text) = f.call("GET", "/v1/help/w2101", Some(&viewer), "");
    assert_eq!(code, 200, "{text}");
    let help: Value = serde_json::from_str(&text).unwrap();
    let info = engine::catalogue::lookup("W2101").unwrap();
    assert_eq!(help["code"], "W2101");
    assert_eq!(help["title"], info.title);
    assert_eq!(help["cause"], info.cause);
    assert_eq!(help["fix"], info.fix);
    assert_eq!(help["severity"], "warning");
    assert_eq!(help["area"], "links and heartbeats");
    assert_eq!(f.call("GET", "/v1/help/E9999", Some(&viewer), "").0, 404);
    assert_eq!(f.call("GET", "/v1/help/W2101", None, "").0, 401);
}

#[test]
fn the_console_and_its_files_are_served_with_their_types_and_a_strict_policy() {
    let f = fixture(Limits { per_second: 1000, burst: 1000, ..Limits::default() });
    let get = |path: &str| {
        let url = format!("https://127.0.0.1:{}{path}", f.port());
        agent_no_redirects(&f).get(&url)
    };
    let secured = |response: &ureq::Response| {
        assert_eq!(
            response.header("Content-Security-Policy"),
            Some(console::CONTENT_SECURITY_POLICY),
            "{}",
            response.get_url()
        );
        assert_eq!(response.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(response.header("Referrer-Policy"), Some("same-origin"));
        assert!(!console::CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    };
    for (path, kind) in [
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/editor.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
    ] {
        let response = answer_of(get(path), "");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.header("Content-Type"), Some(kind), "{path}");
        assert_eq!(response.header("Cache-Control"), Some("no-cache"), "{path}");
        secured(&response);
        let tag = response.header("ETag").unwrap().to_string();
        let again = answer_of(get(path).set("If-None-Match", &tag), "");
        assert_eq!(again.status(), 304, "{path}");
    }
    // The sign-in form: posted, never a token in a URL.
    let response = answer_of(get("/login"), "");
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("Cache-Control"), Some("no-store"));
    secured(&response);
    let page = response.into_string().unwrap();
    assert!(page.contains(r#"<form id="login-form" method="post" action="/login""#), "{page}");
    assert!(page.contains(r#"type="password""#), "{page}");
    // Without a session: a browser is sent to sign in, another client gets a 401 page
    // that links there.
    let response = answer_of(get("/").set("Accept", "text/html,application/xhtml+xml"), "");
    assert_eq!(response.status(), 303);
    assert_eq!(response.header("Location"), Some("/login"));
    let response = answer_of(get("/"), "");
    assert_eq!(response.status(), 401);
    assert!(response.header("WWW-Authenticate").is_some());
    assert!(response.into_string().unwrap().contains(r#"href="/login""#));
    // With a token: the page, with no inline script or style.
    let viewer = format!("Bearer {}", f.token(Role::Viewer));
    let response = answer_of(get("/").set("Authorization", &viewer), "");
    assert_eq!(response.status(), 200);
    secured(&response);
    let page = response.into_string().unwrap();
    assert!(page.contains(r#"<script type="module" src="/console/app.js"></script>"#));
    assert!(page.contains(r#"<script type="module" src="/console/editor.js"></script>"#));
    assert_eq!(page.matches("<script").count(), 2, "two scripts, each from its file");
    assert!(!page.contains("<style") && !page.contains(" style="), "no inline style");
    for hook in [r#"id="topology""#, r#"id="help""#, r#"id="banner""#, r#"id="journal""#] {
        assert!(page.contains(hook), "no {hook}");
    }
}

// The inventory route: this node's own document, another node's fetched from it (502
// when it does not answer), an unknown node (404).

/// The fixture's inventory service: node alpha among [`console_nodes`], with an OCF root
/// of one small agent under `dir` (fast and the same on every machine).
fn inventory_of(dir: &std::path::Path, port: u16) -> Arc<crate::inventory::Service> {
    use std::os::unix::fs::PermissionsExt;
    let agents = dir.join("ocf/resource.d/test");
    std::fs::create_dir_all(&agents).unwrap();
    let agent = agents.join("thing");
    let meta_data = "<resource-agent name=\"thing\"><parameters><parameter name=\"size\">\
                     <content type=\"integer\"/></parameter></parameters></resource-agent>";
    std::fs::write(&agent, format!("#!/bin/sh\necho '{meta_data}'\n")).unwrap();
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sources = crate::inventory::Sources {
        ocf_root: dir.join("ocf"),
        init_dir: dir.join("init.d"),
        ..crate::inventory::Sources::host()
    };
    Arc::new(crate::inventory::Service::with_sources("alpha".into(), console_nodes(port), sources))
}

#[test]
fn the_inventory_is_this_nodes_own_and_another_nodes_is_sent_there() {
    let f = fixture(Limits { per_second: 1000, burst: 1000, ..Limits::default() });
    let admin = f.token(Role::Admin).to_string();
    let (code, text) = f.call("GET", "/v1/nodes/alpha/inventory", Some(&admin), "");
    assert_eq!(code, 200, "{text}");
    let inventory: contract::Inventory = serde_json::from_str(&text).unwrap();
    assert_eq!(inventory.node.as_deref(), Some("alpha"));
    assert!(inventory.interface("lo").is_some(), "{text}");
    let thing = inventory.ocf_agent("test", "thing").unwrap();
    assert_eq!(thing.parameters[0].value_type.as_deref(), Some("integer"));
    // Beta's inventory is fetched from beta by alpha (crates/tandem/tests/config_edit.rs
    // has two real nodes); beta does not answer here: 502 with its API address.
    let (code, text) = f.call("GET", "/v1/nodes/beta/inventory", Some(&admin), "");
    assert_eq!(code, 502, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["code"], "E1343");
    assert_eq!(answer["node"], "beta");
    assert_eq!(answer["endpoint"], "https://127.0.0.1:7999");
    let error = answer["error"].as_str().unwrap();
    assert!(error.starts_with("E1343: node alpha could not fetch node beta's inventory"), "{text}");
    // The node-only route wants the cluster key's signature.
    let (code, text) = f.call("GET", crate::inventory::NODE_PATH, Some(&admin), "");
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("E1307"), "{text}");
    let (code, text) = f.call("GET", "/v1/nodes/gamma/inventory", Some(&admin), "");
    assert_eq!(code, 404, "{text}");
    assert!(text.contains("E5322"), "{text}");
    // An operator may not (403), nor may anyone without a token (401).
    let operator = f.token(Role::Operator).to_string();
    assert_eq!(f.call("GET", "/v1/nodes/alpha/inventory", Some(&operator), "").0, 403);
    assert_eq!(f.call("GET", "/v1/nodes/alpha/inventory", None, "").0, 401);
}

/// The configuration routes over the fixture's store: the running text with its
/// generation and hash, a check's diagnostics with codes and line:column, a push on an
/// old generation refused (409, E1302), and the nodes' routes: unsigned or wrongly
/// signed calls refused (401, E1307), a call signed with the cluster key taken and
/// checked against this host.
#[test]
fn the_configuration_routes_show_check_refuse_and_take_signed_node_calls() {
    let f = fixture(Limits { per_second: 1000, burst: 1000, ..Limits::default() });
    let (viewer, admin) = (f.token(Role::Viewer).to_string(), f.token(Role::Admin).to_string());
    let (code, text) = f.call("GET", "/v1/config", Some(&viewer), "");
    assert_eq!(code, 200, "{text}");
    let doc: contract::ConfigDocument = serde_json::from_str(&text).unwrap();
    assert_eq!((doc.generation, doc.toml.as_str()), (1, FIXTURE_CONFIG));
    assert_eq!(doc.hash, crate::configstore::hash(FIXTURE_CONFIG));
    let (code, text) = f.call("GET", "/v1/config/history", Some(&viewer), "");
    assert_eq!(code, 200);
    let history: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(history["generations"][0]["generation"], 1);
    assert_eq!(f.call("GET", "/v1/config/history/9", Some(&viewer), "").0, 404);
    // A check as the user types: the diagnostics of `tandem validate`, as JSON.
    let broken = FIXTURE_CONFIG.replace("kind = \"none\"", "kind = \"nothing\"");
    let body = json!({"toml": broken}).to_string();
    let (code, text) = f.call("POST", "/v1/config/check", Some(&viewer), &body);
    assert_eq!(code, 200, "{text}");
    let outcome: contract::ConfigOutcome = serde_json::from_str(&text).unwrap();
    assert!(!outcome.valid);
    let error = outcome.nodes[0].diagnostics.iter().find(|d| d.code == "E1021").unwrap();
    assert_eq!((error.line, error.column), (20, 8), "{error:?}");
    // A push needs admin, and one based on an older generation is refused.
    let push = json!({"toml": broken, "generation": 0}).to_string();
    assert_eq!(f.call("POST", "/v1/config", Some(&viewer), &push).0, 403);
    let (code, text) = f.call("POST", "/v1/config", Some(&admin), &push);
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("E1302"), "{text}");
    // The nodes' own routes: signed with the cluster key, by another node of the cluster.
    let key = wire::Key::new(FIXTURE_KEY);
    let prepare = json!({"toml": FIXTURE_CONFIG, "base": 1,
        "base_hash": crate::configstore::hash(FIXTURE_CONFIG), "by": "test",
        "generation": 2})
    .to_string();
    let path = crate::configstore::PREPARE_PATH;
    let signed = |key: &wire::Key, node: &str| {
        let url = format!("https://127.0.0.1:{}{path}", f.port());
        let time =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let signature = crate::configstore::sign(key, "POST", path, node, time, prepare.as_bytes());
        let result = f
            .agent()
            .post(&url)
            .set(crate::configstore::NODE_HEADER, node)
            .set(crate::configstore::TIME_HEADER, &time.to_string())
            .set(crate::configstore::SIGNATURE_HEADER, &signature)
            .send_string(&prepare);
        match result {
            Ok(response) => (response.status(), response.into_string().unwrap()),
            Err(ureq::Error::Status(code, response)) => (code, response.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    let (code, text) = signed(&wire::Key::new([8; 32]), "beta");
    assert_eq!(code, 401);
    assert!(text.contains("E1307"), "{text}");
    // Alpha is this node: not a caller of its own node routes.
    assert_eq!(signed(&key, "alpha").0, 401);
    let (code, text) = signed(&key, "beta");
    assert_eq!(code, 200, "{text}");
    // Taken and checked against this host as the daemon checks at start: the fixture's
    // key file does not exist here (E1201), so this node refuses the text.
    let verdict: contract::NodeVerdict = serde_json::from_str(&text).unwrap();
    assert!(!verdict.accepted, "{verdict:?}");
    assert!(verdict.diagnostics.iter().any(|d| d.code == "E1201"), "{verdict:?}");
}

// The configuration editor's route (crates/daemon/src/configedit.rs).

/// The fixture's store given a commented configuration with a group as generation 2 (as
/// a push would have left it): its text.
fn commented_generation(f: &Fixture) -> String {
    let text = format!(
        "{FIXTURE_CONFIG}\n# The database: alpha first, beta takes over\n[[group]]\nname = \"db\"\n\
         nodes = [\"alpha\", \"beta\"]   # preference order\n\n  # reports its own health\n  \
         [[group.resource]]\n  name = \"data\"\n  kind = \"app\"\n  deadline = \"5s\"\n"
    );
    let store = crate::configstore::Store::open(&f._dir.path().join("state")).unwrap();
    let meta = crate::configstore::Meta {
        generation: 2,
        hash: crate::configstore::hash(&text),
        time: "2026-01-01T00:00:00Z".into(),
        by: "the test".into(),
        via: "alpha".into(),
        changes: vec!["group `db` added".into()],
    };
    store.record(&meta, &text).unwrap();
    std::fs::write(f._dir.path().join("cluster.toml"), &text).unwrap();
    text
}

fn edit_body(generation: u64, edits: Value) -> String {
    json!({"generation": generation, "edits": edits}).to_string()
}

/// Adding a resource to a group answers the text with the operator's comments kept, its
/// diff and what would change; an invalid edit answers its diagnostic with its code and
/// the key it is about; edits that cannot be made, or on another generation, are
/// refused with their codes; nothing is ever saved; only an admin may edit.
#[test]
fn the_editor_edits_the_running_text_checks_it_and_saves_nothing() {
    let f = fixture(Limits { per_second: 1000, burst: 1000, ..Limits::default() });
    let admin = f.token(Role::Admin).to_string();
    let running = commented_generation(&f);
    let add = json!([{"op": "put_resource", "group": "db", "name": "api",
        "fields": {"kind": "app", "deadline": "3s"}}]);
    let (code, text) = f.call("POST", "/v1/config/edit", Some(&admin), &edit_body(2, add.clone()));
    assert_eq!(code, 200, "{text}");
    let answer: contract::ConfigEditAnswer = serde_json::from_str(&text).unwrap();
    assert!(answer.ok && answer.valid, "{text}");
    assert_eq!(answer.generation, 2);
    let added = "\n  [[group.resource]]\n  name = \"api\"\n  kind = \"app\"\n  deadline = \"3s\"\n";
    assert_eq!(answer.toml, format!("{running}{added}"));
    assert!(answer.toml.contains("# The database: alpha first, beta takes over\n"));
    assert!(answer.toml.contains("nodes = [\"alpha\", \"beta\"]   # preference order\n"));
    assert!(answer.diff.contains("+  name = \"api\"\n"), "{}", answer.diff);
    assert!(answer.diff.starts_with("--- running (node alpha, generation 2)\n"), "{}", answer.diff);
    assert_eq!(answer.hash, crate::configstore::hash(&answer.toml));
    let change = answer.changes.iter().find(|c| c.what == "group `db` changed").unwrap();
    assert!(!change.live && change.restart == ["alpha", "beta"], "{change:?}");
    assert_eq!(answer.document["group"][0]["resource"][1]["name"], "api");
    // An invalid edit: its diagnostic, its code, the key it is about.
    let bad = json!([{"op": "put_resource", "group": "db", "name": "vip",
        "fields": {"kind": "ip", "address": "10.0.0.300/24"}}]);
    let (code, text) = f.call("POST", "/v1/config/edit", Some(&admin), &edit_body(2, bad));
    assert_eq!(code, 200, "{text}");
    let answer: contract::ConfigEditAnswer = serde_json::from_str(&text).unwrap();
    assert!(answer.ok && !answer.valid, "{text}");
    let e1018 = answer.diagnostics.iter().find(|d| d.diagnostic.code == "E1018").expect(&text);
    assert_eq!(e1018.path, ["group", "db", "resource", "vip", "address"]);
    assert_eq!(e1018.diagnostic.severity, contract::Severity::Error);
    // Edits that cannot be made (E1341, E1342), an old generation (E1302).
    let nope = json!([{"op": "remove_group", "name": "web"}]);
    let (code, text) = f.call("POST", "/v1/config/edit", Some(&admin), &edit_body(2, nope));
    assert_eq!(code, 422, "{text}");
    let answer: contract::ConfigEditAnswer = serde_json::from_str(&text).unwrap();
    assert!(!answer.ok && answer.edit == Some(0), "{text}");
    assert!(answer.error.as_deref().unwrap().starts_with("E1341: "), "{text}");
    assert_eq!(answer.toml, running);
    let kindless = json!([{"op": "put_resource", "group": "db", "name": "x", "fields": {}}]);
    let (code, text) = f.call("POST", "/v1/config/edit", Some(&admin), &edit_body(2, kindless));
    assert_eq!(code, 422, "{text}");
    assert!(text.contains("E1342: "), "{text}");
    let (code, text) = f.call("POST", "/v1/config/edit", Some(&admin), &edit_body(1, add.clone()));
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("E1302: "), "{text}");
    // Nothing was saved: the store's newest is still generation 2, the file unchanged.
    let (code, text) = f.call("GET", "/v1/config", Some(&admin), "");
    assert_eq!(code, 200, "{text}");
    let doc: contract::ConfigDocument = serde_json::from_str(&text).unwrap();
    assert_eq!((doc.generation, doc.toml.as_str()), (2, running.as_str()));
    let file = std::fs::read_to_string(f._dir.path().join("cluster.toml")).unwrap();
    assert_eq!(file, running);
    // Only an admin edits: an operator and a viewer get 403, nobody 401.
    for role in [Role::Operator, Role::Viewer] {
        let body = edit_body(2, add.clone());
        assert_eq!(f.call("POST", "/v1/config/edit", Some(f.token(role)), &body).0, 403);
    }
    assert_eq!(f.call("POST", "/v1/config/edit", None, &edit_body(2, add)).0, 401);
    // A body that is not an edit request: 400.
    let (code, _) = f.call("POST", "/v1/config/edit", Some(&admin), r#"{"edits": 3}"#);
    assert_eq!(code, 400);
}
