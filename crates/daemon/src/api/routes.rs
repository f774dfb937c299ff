//! The API's route table ([`ROUTES`]): the router, the role each route needs and the
//! OpenAPI document are all built from it, so they cannot disagree. Every request goes
//! through the rate limit, then its route's guard (the bearer token or the console's
//! session cookie, and the role, then the body within its size and time limits), then its handler, which reaches the
//! daemon's loop through the control socket's bounded [`Call`] channel, never waiting
//! for room in it (full: 503).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::oneshot;

use super::auth::{Authed, Refusal};
use super::console;
use super::users::Role;
use super::ApiState;
use crate::access::Caller;
use crate::control::{Call, Request as Command};

/// The client's address, put on every request of its connection.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// What a route does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Status,
    Events,
    Switchover,
    Drain,
    Undrain,
    Maintenance,
    Clear,
    Metrics,
    AppHeartbeat,
    OpenApi,
    /// This node's inventory ([`crate::inventory`]).
    Inventory,
    /// The web console's page, its files, sign-in and sign-out ([`super::console`]).
    Console,
    ConsoleJs,
    ConsoleEditorJs,
    ConsoleCss,
    LoginForm,
    Login,
    Logout,
    Whoami,
    HelpIndex,
    Help,
    /// The configuration's generations and push ([`crate::configstore`]).
    ConfigShow,
    ConfigHistory,
    ConfigGet,
    ConfigCheck,
    ConfigPush,
    /// The nodes' own two phases of a push: signed with the cluster key, no user token.
    ConfigPrepare,
    ConfigCommit,
    /// A node that finds a newer generation in another's heartbeats fetches it here
    /// (signed with the cluster key, no user token; [`crate::configstore::sync`]).
    ConfigNewest,
    /// The console's configuration editor: edits made on the running text, checked,
    /// nothing saved ([`crate::configedit`]).
    ConfigEdit,
    /// A node's own inventory, for another node that was asked for it (signed with the
    /// cluster key, no user token).
    ConfigNodeInventory,
}

impl Action {
    /// A route only nodes call, authenticated by the cluster key's signature (401
    /// without it), not by a user's token.
    pub fn node_only(self) -> bool {
        matches!(self, Action::ConfigPrepare | Action::ConfigCommit | Action::ConfigNodeInventory)
            || self == Action::ConfigNewest
    }

    /// A route whose body is a whole configuration: it may be as large as a
    /// configuration file (16 MiB, [`crate::configstore::sync::BODY_BYTES_MAX`]) and take
    /// longer to arrive; every other route keeps the API's 64 KiB.
    pub fn takes_a_configuration(self) -> bool {
        matches!(self, Action::ConfigCheck | Action::ConfigPush | Action::ConfigPrepare)
    }

    /// A route outside the per-client rate limit: the console's files, answered from
    /// the binary's memory with no token check and no call to the loop, so they cost
    /// less than the limit's own bookkeeping. A browser fetches them with every page
    /// load; counted, a few reloads would spend the budget the page's reads need (and
    /// a refused script leaves a page that never runs).
    pub fn unmetered(self) -> bool {
        matches!(
            self,
            Action::ConsoleJs | Action::ConsoleEditorJs | Action::ConsoleCss | Action::LoginForm
        )
    }
}

/// One route: method, path (axum's and OpenAPI's `{name}` syntax), the role it needs
/// (`None`: anyone) and what it does.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub need: Option<Role>,
    pub action: Action,
    pub summary: &'static str,
}

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/v1/status",
        need: Some(Role::Viewer),
        action: Action::Status,
        summary: "The status document: nodes, links, groups, resources, leases, faults",
    },
    Route {
        method: "GET",
        path: "/v1/events",
        need: Some(Role::Viewer),
        action: Action::Events,
        summary:
            "A page of this node's journal after `since` (`{\"events\": [...], \"next\": ID}`); \
                  with `Accept: text/event-stream`, a live stream of its new entries",
    },
    Route {
        method: "POST",
        path: "/v1/groups/{g}/switchover",
        need: Some(Role::Operator),
        action: Action::Switchover,
        summary: "Planned move of group g (to node `to`, or the best other node)",
    },
    Route {
        method: "POST",
        path: "/v1/nodes/{n}/drain",
        need: Some(Role::Operator),
        action: Action::Drain,
        summary: "Move every group off node n and keep them off",
    },
    Route {
        method: "POST",
        path: "/v1/nodes/{n}/undrain",
        need: Some(Role::Operator),
        action: Action::Undrain,
        summary: "Allow drained node n to run groups again",
    },
    Route {
        method: "POST",
        path: "/v1/maintenance",
        need: Some(Role::Admin),
        action: Action::Maintenance,
        summary: "Maintenance on (stop acting on resources; they keep running) or off",
    },
    Route {
        method: "POST",
        path: "/v1/groups/{g}/clear",
        need: Some(Role::Operator),
        action: Action::Clear,
        summary: "Forget group g's failures (all its resources, or `resource`) and unlock it",
    },
    Route {
        method: "GET",
        path: "/metrics",
        need: Some(Role::Viewer),
        action: Action::Metrics,
        summary: "Prometheus metrics (OpenMetrics text): links, heartbeats, groups, leases, \
                  failovers, agent operations, disk jobs",
    },
    Route {
        method: "POST",
        path: "/v1/apps/{name}/heartbeat",
        need: Some(Role::App),
        action: Action::AppHeartbeat,
        summary: "The `app` resource `name` is alive (`{\"status\": \"...\"}` optional): an \
                  app token whose user is named after the app, sent to the node that runs it",
    },
    Route {
        method: "GET",
        path: "/v1/openapi.json",
        need: None,
        action: Action::OpenApi,
        summary: "This API's OpenAPI 3.1 document",
    },
    Route {
        method: "GET",
        path: "/",
        need: Some(Role::Viewer),
        action: Action::Console,
        summary: "The web console (HTML); a browser without a session is sent to /login",
    },
    Route {
        method: "GET",
        path: "/console/app.js",
        need: None,
        action: Action::ConsoleJs,
        summary: "The web console's script",
    },
    Route {
        method: "GET",
        path: "/console/editor.js",
        need: None,
        action: Action::ConsoleEditorJs,
        summary: "The web console's configuration editor (a script)",
    },
    Route {
        method: "GET",
        path: "/console/app.css",
        need: None,
        action: Action::ConsoleCss,
        summary: "The web console's style sheet",
    },
    Route {
        method: "GET",
        path: "/login",
        need: None,
        action: Action::LoginForm,
        summary: "The web console's sign-in form (HTML)",
    },
    Route {
        method: "POST",
        path: "/login",
        need: None,
        action: Action::Login,
        summary: "Sign in with a token (form field `token`): a session cookie (HttpOnly, \
                  Secure, SameSite=Strict) and a redirect to the console; 401 for a bad token",
    },
    Route {
        method: "POST",
        path: "/logout",
        need: None,
        action: Action::Logout,
        summary: "Sign out: the session ends on the node and its cookie is dropped",
    },
    Route {
        method: "GET",
        path: "/v1/whoami",
        need: Some(Role::Viewer),
        action: Action::Whoami,
        summary: "The caller's user and role (`{\"user\": ..., \"role\": ...}`)",
    },
    Route {
        method: "GET",
        path: "/v1/help",
        need: Some(Role::Viewer),
        action: Action::HelpIndex,
        summary: "Every code of the catalogue with its severity, title and area",
    },
    Route {
        method: "GET",
        path: "/v1/help/{code}",
        need: Some(Role::Viewer),
        action: Action::Help,
        summary: "One code's severity, title, cause and fix (as `tandem explain` shows it)",
    },
    Route {
        method: "GET",
        path: "/v1/config",
        need: Some(Role::Viewer),
        action: Action::ConfigShow,
        summary: "The running configuration: `toml`, `generation`, `hash` (SHA-256), the \
                  generation the daemon runs and what waits for a restart",
    },
    Route {
        method: "GET",
        path: "/v1/config/history",
        need: Some(Role::Viewer),
        action: Action::ConfigHistory,
        summary: "The generations this node keeps (`{\"generations\": [...]}`, oldest first): \
                  hash, time, who pushed it, through which node, what changed",
    },
    Route {
        method: "GET",
        path: "/v1/config/history/{generation}",
        need: Some(Role::Viewer),
        action: Action::ConfigGet,
        summary: "One kept generation, with its text (404 when not kept, E1312)",
    },
    Route {
        method: "POST",
        path: "/v1/config/check",
        need: Some(Role::Viewer),
        action: Action::ConfigCheck,
        summary: "Check `toml` as `tandem validate` does on this node (diagnostics with codes, \
                  line and column; host checks as warnings) and what would change; applies \
                  nothing",
    },
    Route {
        method: "POST",
        path: "/v1/config",
        need: Some(Role::Admin),
        action: Action::ConfigPush,
        summary: "Push `toml` as the generation after `generation` (the one it was based on): \
                  checked on every node against its host, then applied on every node; \
                  refused whole (409) with every node's diagnostics",
    },
    Route {
        method: "POST",
        path: "/v1/config/node/prepare",
        need: None,
        action: Action::ConfigPrepare,
        summary: "Nodes only (signed with the cluster key): check a pushed configuration \
                  against this node's host and hold it for the apply",
    },
    Route {
        method: "POST",
        path: "/v1/config/node/commit",
        need: None,
        action: Action::ConfigCommit,
        summary: "Nodes only (signed with the cluster key): apply the configuration held \
                  for this generation",
    },
    Route {
        method: "POST",
        path: crate::configstore::sync::NEWEST_PATH,
        need: None,
        action: Action::ConfigNewest,
        summary: "Nodes only (signed with the cluster key): this node's newest generation \
                  with its text, and whether it descends from the caller's `generation` and \
                  `hash` (a node that was down catches up)",
    },
    Route {
        method: "GET",
        path: "/v1/nodes/{n}/inventory",
        need: Some(Role::Admin),
        action: Action::Inventory,
        summary: "What node n has to choose from: network interfaces and addresses, block \
                  devices and file systems, OCF agents with their meta-data, systemd units, \
                  LSB scripts (asked of another node, that node fetches it from n over their \
                  signed node call; 502 with n's `endpoint` when n does not answer, E1343)",
    },
    Route {
        method: "POST",
        path: "/v1/config/edit",
        need: Some(Role::Admin),
        action: Action::ConfigEdit,
        summary: "Make `edits` (groups, resources, node addresses, section values, alerts) on \
                  the text of generation `generation`, keeping its comments and layout: the \
                  text, its diff against the running one, its diagnostics with the key each \
                  is about, what would change; saves nothing (409 E1302 on another \
                  generation, 422 E1341/E1342 for an edit that cannot be made)",
    },
    Route {
        method: "GET",
        path: crate::inventory::NODE_PATH,
        need: None,
        action: Action::ConfigNodeInventory,
        summary: "Nodes only (signed with the cluster key): this node's inventory, for the \
                  node that was asked for it",
    },
];

/// Most journal entries in one page of `GET /v1/events`.
pub const EVENTS_PAGE_MAX: usize = 1000;

/// How often a live event stream looks at the journal, and sends a comment when there
/// was nothing (so that proxies and clients see the stream alive).
const STREAM_POLL: Duration = Duration::from_millis(250);
const STREAM_KEEPALIVE: Duration = Duration::from_secs(15);

/// The body of `POST /v1/groups/{g}/switchover` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchoverBody {
    /// The node to move to; the best other node if absent.
    pub to: Option<String>,
}

/// The body of `POST /v1/maintenance`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceBody {
    pub on: bool,
}

/// The body of `POST /v1/apps/{name}/heartbeat` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    /// The application's status text (kept as the last one, cut to 256 bytes).
    pub status: Option<String>,
}

/// The body of `POST /v1/config`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigPushBody {
    /// The configuration's TOML text.
    pub toml: String,
    /// The generation the text was based on (`GET /v1/config`): refused (E1302) if the
    /// running one is another.
    pub generation: u64,
}

/// The body of `POST /v1/config/check`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigCheckBody {
    /// The configuration's TOML text.
    pub toml: String,
}

/// The body of `POST /v1/groups/{g}/clear` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearBody {
    /// Only this resource's failures; the whole group's if absent.
    pub resource: Option<String>,
}

/// The router of [`ROUTES`] over `state`.
pub fn router(state: Arc<ApiState>) -> Router {
    let mut router: Router<Arc<ApiState>> = Router::new();
    for route in ROUTES {
        let filter = match route.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            other => unreachable!("no route uses {other}"),
        };
        let handler: MethodRouter<Arc<ApiState>> = match route.action {
            Action::Status => on(filter, status),
            Action::Events => on(filter, events),
            Action::Switchover => on(filter, switchover),
            Action::Drain => on(filter, drain),
            Action::Undrain => on(filter, undrain),
            Action::Maintenance => on(filter, maintenance),
            Action::Clear => on(filter, clear),
            Action::Metrics => on(filter, metrics),
            Action::AppHeartbeat => on(filter, app_heartbeat),
            Action::OpenApi => on(filter, openapi),
            Action::Inventory => on(filter, inventory),
            Action::Console => on(filter, console::page),
            Action::ConsoleJs => on(filter, console::app_js),
            Action::ConsoleEditorJs => on(filter, console::editor_js),
            Action::ConsoleCss => on(filter, console::app_css),
            Action::LoginForm => on(filter, console::login_form),
            Action::Login => on(filter, console::login),
            Action::Logout => on(filter, console::logout),
            Action::Whoami => on(filter, console::whoami),
            Action::HelpIndex => on(filter, console::help_index),
            Action::Help => on(filter, console::help_code),
            Action::ConfigShow => on(filter, config_show),
            Action::ConfigHistory => on(filter, config_history),
            Action::ConfigGet => on(filter, config_get),
            Action::ConfigCheck => on(filter, config_check),
            Action::ConfigPush => on(filter, config_push),
            Action::ConfigPrepare => on(filter, config_prepare),
            Action::ConfigCommit => on(filter, config_commit),
            Action::ConfigNewest => on(filter, config_newest),
            Action::ConfigEdit => on(filter, config_edit),
            Action::ConfigNodeInventory => on(filter, config_node_inventory),
        };
        let mut guarded = handler.layer(from_fn_with_state((state.clone(), route.need), guard));
        if route.action.takes_a_configuration() {
            // Read by the guard, which this layer wraps.
            guarded = guarded.layer(Extension(LargeBody));
        }
        if route.action == Action::Console {
            guarded = guarded.layer(axum::middleware::from_fn(console::to_login));
        }
        router = router.route(route.path, guarded);
    }
    router
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route (see /v1/openapi.json)") })
        .layer(from_fn_with_state(state.clone(), rate))
        .with_state(state)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"ok": false, "error": message}))).into_response()
}

fn client(request: &Request) -> SocketAddr {
    request.extensions().get::<ClientAddr>().map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0)
}

/// The per-client rate limit (429 with `Retry-After`), but for the
/// [`Action::unmetered`] routes (fixed paths).
async fn rate(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let unmetered = ROUTES.iter().any(|r| {
        r.action.unmetered() && r.path == request.uri().path() && r.method == request.method()
    });
    if unmetered {
        return next.run(request).await;
    }
    if let Err(wait) = state.rate.take(client(&request).ip()) {
        let mut response =
            error(StatusCode::TOO_MANY_REQUESTS, "too many requests from this address");
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return response;
    }
    next.run(request).await
}

/// Marks a route whose body is a whole configuration ([`Action::takes_a_configuration`]).
#[derive(Clone, Copy, Debug)]
struct LargeBody;

/// How long a configuration's body may take to arrive (16 MiB on a slow link).
const LARGE_BODY_READ: Duration = Duration::from_secs(60);

/// Configuration bodies read at once, each up to 32 MiB: a bound on what clients make a
/// node hold (the node routes are authenticated only once their body is read).
static LARGE_BODIES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// A route's guard: the token (or, without a bearer header, the console's session
/// cookie) and the role (401, 403), then the body read whole within the size and time
/// limits (413, 408). The handler finds the caller as an extension.
async fn guard(
    State((state, need)): State<(Arc<ApiState>, Option<Role>)>,
    request: Request,
    next: Next,
) -> Response {
    let address = client(&request);
    let mut caller = None;
    if let Some(need) = need {
        let header = request.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        let by_cookie = state.console.session_of(&state, request.method(), request.headers());
        let checked = match by_cookie {
            Some(Err(refusal)) => return console::refused(refusal),
            Some(Ok(authed)) => Ok(authed),
            None => state.auth.check(header).await,
        };
        match checked {
            Err(refusal) => {
                let (message, challenge) = match refusal {
                    Refusal::Missing => ("a bearer token is needed", r#"Bearer realm="tandem""#),
                    Refusal::Bad => (
                        "the bearer token is not valid",
                        r#"Bearer realm="tandem", error="invalid_token""#,
                    ),
                };
                let mut response = error(StatusCode::UNAUTHORIZED, message);
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
                return response;
            }
            Ok(Authed { user, role }) if !role.may(need) => {
                let message = format!("user {user} has role {role}; this route needs {need}");
                return error(StatusCode::FORBIDDEN, &message);
            }
            Ok(Authed { user, role }) => caller = Some(Caller::Api { user, role, address }),
        }
    }
    let large = request.extensions().get::<LargeBody>().is_some();
    let (limit, read_time) = match large {
        true => (
            state.limits.body_bytes.max(crate::configstore::sync::BODY_BYTES_MAX),
            state.limits.body_read.max(LARGE_BODY_READ),
        ),
        false => (state.limits.body_bytes, state.limits.body_read),
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return error(StatusCode::PAYLOAD_TOO_LARGE, &format!("the body is over {limit} bytes"));
    }
    // Large bodies are read a few at a time: a node holds at most that many at once.
    let _turn = match large {
        true => match LARGE_BODIES.try_acquire() {
            Ok(turn) => Some(turn),
            Err(_) => {
                let message = "too many configurations being received at once; try again";
                return error(StatusCode::SERVICE_UNAVAILABLE, message);
            }
        },
        false => None,
    };
    let (mut parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(read_time, axum::body::to_bytes(body, limit)).await {
        Err(_) => return error(StatusCode::REQUEST_TIMEOUT, "the body came too slowly"),
        Ok(Err(_)) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, &format!("the body is over {limit} bytes"))
        }
        Ok(Ok(bytes)) => bytes,
    };
    if let Some(caller) = caller {
        parts.extensions.insert(caller);
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// Hands `command` to the loop and waits for its answer (the loop's own, as it is).
async fn ask(state: &ApiState, command: Command, caller: Caller) -> Result<Value, Response> {
    let answer = ask_loop(state, command, caller).await?;
    serde_json::to_value(answer)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// [`ask`], the answer as the loop gave it.
async fn ask_loop(
    state: &ApiState,
    command: Command,
    caller: Caller,
) -> Result<crate::control::Answer, Response> {
    let (answer, rx) = oneshot::channel();
    match state.calls.try_send(Call { request: command, caller, answer }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            let mut response =
                error(StatusCode::SERVICE_UNAVAILABLE, "the node is busy; try again");
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
            return Err(response);
        }
        Err(TrySendError::Closed(_)) => {
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the node is stopping"))
        }
    }
    match tokio::time::timeout(state.limits.answer_wait, rx).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(error(StatusCode::SERVICE_UNAVAILABLE, "the node is stopping")),
        Err(_) => Err(error(StatusCode::GATEWAY_TIMEOUT, "the node did not answer in time")),
    }
}

/// A command's answer: 200 when taken, 409 with the loop's reason when refused.
fn command_answer(answer: Result<Value, Response>) -> Response {
    match answer {
        Err(response) => response,
        Ok(answer) if answer["ok"] == Value::Bool(true) => Json(answer).into_response(),
        Ok(answer) => (StatusCode::CONFLICT, Json(answer)).into_response(),
    }
}

fn body_of<T: serde::de::DeserializeOwned + Default>(bytes: &Bytes) -> Result<T, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("bad request body: {e}")))
}

async fn status(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match ask(&state, Command::Status, caller).await {
        Err(response) => response,
        Ok(answer) if answer["ok"] == Value::Bool(true) => {
            let mut status = answer["status"].clone();
            state.console.add_api_addresses(&mut status);
            Json(status).into_response()
        }
        Ok(answer) => (StatusCode::SERVICE_UNAVAILABLE, Json(answer)).into_response(),
    }
}

async fn switchover(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(group): Path<String>,
    body: Bytes,
) -> Response {
    let body: SwitchoverBody = match body_of(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    command_answer(ask(&state, Command::Switchover { group, to: body.to }, caller).await)
}

async fn drain(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(node): Path<String>,
) -> Response {
    command_answer(ask(&state, Command::Drain { node }, caller).await)
}

async fn undrain(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(node): Path<String>,
) -> Response {
    command_answer(ask(&state, Command::Undrain { node }, caller).await)
}

async fn maintenance(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let body: MaintenanceBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad request body: {e}")),
    };
    command_answer(ask(&state, Command::Maintenance { on: body.on }, caller).await)
}

async fn clear(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(group): Path<String>,
    body: Bytes,
) -> Response {
    let body: ClearBody = match body_of(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    command_answer(ask(&state, Command::Clear { group, resource: body.resource }, caller).await)
}

/// The metrics: the status-document families set from the loop's status, then every
/// family in the text format.
async fn metrics(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let answer = match ask_loop(&state, Command::Status, caller).await {
        Ok(answer) => answer,
        Err(response) => return response,
    };
    let Some(status) = answer.status else {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(answer)).into_response();
    };
    let text = state.metrics.encode(&status);
    // prometheus-client writes OpenMetrics text (`# EOF`, counters' `_total` samples
    // under their family's name), which Prometheus scrapes as such.
    let kind = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

/// An application's heartbeat: its token's user must be named after the app (an app
/// token reports for its own app only, 403 otherwise); handed to the app resource's
/// agent at once, not through the loop (the agent's monitor reads it).
async fn app_heartbeat(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let Caller::Api { user, .. } = &caller else {
        return error(StatusCode::FORBIDDEN, "an app token is needed");
    };
    if *user != name {
        return error(
            StatusCode::FORBIDDEN,
            &format!("the token of {user} reports for app {user} only"),
        );
    }
    let body: HeartbeatBody = match body_of(&body) {
        Ok(body) => body,
        Err(response) => return response,
    };
    match (state.apps)(&name, body.status.as_deref()) {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(why) => error(StatusCode::NOT_FOUND, &why),
    }
}

async fn openapi() -> Response {
    Json(super::openapi::document()).into_response()
}

#[derive(Debug, Deserialize)]
struct Since {
    since: Option<u64>,
}

/// The journal's entries after `since` (blocking read, off the async threads).
async fn entries_after(dir: std::path::PathBuf, since: u64) -> Vec<crate::journal::Entry> {
    tokio::task::spawn_blocking(move || {
        crate::journal::read_journal(&dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.id > since)
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// The journal files' sizes and modification times: what changes when entries are added
/// or the journal is rotated.
type JournalStamp = [Option<(u64, std::time::SystemTime)>; 2];

fn journal_stamp(dir: &std::path::Path) -> JournalStamp {
    let stat = |name: &str| {
        let meta = std::fs::metadata(dir.join(name)).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    };
    [stat(crate::journal::JOURNAL_FILE), stat(crate::journal::JOURNAL_OLD_FILE)]
}

async fn events(
    State(state): State<Arc<ApiState>>,
    Query(since): Query<Since>,
    headers: HeaderMap,
) -> Response {
    let since = since.since.unwrap_or(0);
    let streaming = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"));
    if !streaming {
        let mut page = entries_after(state.journal_dir.clone(), since).await;
        page.truncate(EVENTS_PAGE_MAX);
        let next = page.last().map_or(since, |e| e.id);
        return Json(json!({"events": page, "next": next})).into_response();
    }
    let dir = state.journal_dir.clone();
    let start = (since, std::time::Instant::now(), None);
    let stream = futures_util::stream::unfold(start, move |(last, quiet, mut seen)| {
        let dir = dir.clone();
        async move {
            loop {
                // The journal is read again only when its files changed (size or
                // modification time): an open stream costs a stat per poll.
                let stamp = journal_stamp(&dir);
                let fresh = match seen == Some(stamp) {
                    true => Vec::new(),
                    false => entries_after(dir.clone(), last).await,
                };
                seen = Some(stamp);
                if let Some(newest) = fresh.last().map(|e| e.id) {
                    let mut text = String::new();
                    for entry in &fresh {
                        let data = serde_json::to_string(entry).unwrap_or_default();
                        text.push_str(&format!(
                            "id: {}\nevent: {}\ndata: {data}\n\n",
                            entry.id, entry.code
                        ));
                    }
                    let item: Result<Bytes, std::convert::Infallible> = Ok(Bytes::from(text));
                    return Some((item, (newest, std::time::Instant::now(), seen)));
                }
                if quiet.elapsed() >= STREAM_KEEPALIVE {
                    return Some((
                        Ok(Bytes::from_static(b": alive\n\n")),
                        (last, std::time::Instant::now(), seen),
                    ));
                }
                tokio::time::sleep(STREAM_POLL).await;
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

/// A configuration request answered by the node's configuration service, on a blocking
/// thread (file I/O, and a push's calls to the other nodes).
async fn configs(
    state: &ApiState,
    request: Command,
    caller: Caller,
) -> Result<crate::control::Answer, Response> {
    let Some(service) = state.configs.clone() else {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "this node has no configuration store"));
    };
    tokio::task::spawn_blocking(move || service.answer(&request, &caller))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))
}

async fn config_show(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match configs(&state, Command::ConfigShow, caller).await {
        Err(response) => response,
        Ok(answer) => match answer.config {
            Some(doc) => Json(doc).into_response(),
            None => (StatusCode::SERVICE_UNAVAILABLE, Json(answer)).into_response(),
        },
    }
}

async fn config_history(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match configs(&state, Command::ConfigHistory, caller).await {
        Err(response) => response,
        Ok(answer) => {
            Json(json!({"generations": answer.history.unwrap_or_default()})).into_response()
        }
    }
}

async fn config_get(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(generation): Path<u64>,
) -> Response {
    match configs(&state, Command::ConfigGet { generation }, caller).await {
        Err(response) => response,
        Ok(answer) => match answer.config {
            Some(doc) => Json(doc).into_response(),
            None => (StatusCode::NOT_FOUND, Json(answer)).into_response(),
        },
    }
}

async fn config_check(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let body: ConfigCheckBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad request body: {e}")),
    };
    match configs(&state, Command::ConfigCheck { toml: body.toml }, caller).await {
        Err(response) => response,
        Ok(answer) => Json(answer.outcome).into_response(),
    }
}

/// A push: 200 with the outcome when applied, 409 with the reason and every node's
/// verdict when refused.
async fn config_push(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let body: ConfigPushBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad request body: {e}")),
    };
    let request = Command::ConfigPush { toml: body.toml, generation: body.generation };
    match configs(&state, request, caller).await {
        Err(response) => response,
        Ok(answer) if answer.ok => Json(answer).into_response(),
        Ok(answer) => (StatusCode::CONFLICT, Json(answer)).into_response(),
    }
}

/// A node call: its sender, once its signature checks out (401 otherwise, E1307).
fn node_caller(
    state: &ApiState,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Arc<crate::configstore::Service>, Response> {
    let Some(service) = state.configs.clone() else {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "this node has no configuration store"));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    match service.verify("POST", path, header, body) {
        Ok(_) => Ok(service),
        Err(why) => {
            tracing::warn!(
                code = engine::catalogue::CONFIG_NODE_CALL_UNAUTHENTICATED.code,
                "{why}"
            );
            Err(error(StatusCode::UNAUTHORIZED, &why))
        }
    }
}

async fn config_prepare(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = crate::configstore::PREPARE_PATH;
    let service = match node_caller(&state, path, &headers, &body) {
        Ok(service) => service,
        Err(response) => return response,
    };
    let from = headers
        .get(crate::configstore::NODE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: crate::configstore::PrepareBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad request body: {e}")),
    };
    match tokio::task::spawn_blocking(move || service.prepare(&from, &body)).await {
        Ok(verdict) => Json(verdict).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn config_commit(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = crate::configstore::COMMIT_PATH;
    let service = match node_caller(&state, path, &headers, &body) {
        Ok(service) => service,
        Err(response) => return response,
    };
    let body: crate::configstore::CommitBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad request body: {e}")),
    };
    match tokio::task::spawn_blocking(move || service.commit(&body)).await {
        Ok(Ok(())) => Json(json!({"ok": true})).into_response(),
        Ok(Err(why)) => {
            (StatusCode::CONFLICT, Json(json!({"ok": false, "error": why}))).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// A node that was down asks for this node's newest generation
/// ([`crate::configstore::sync`]).
async fn config_newest(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = crate::configstore::sync::NEWEST_PATH;
    let service = match node_caller(&state, path, &headers, &body) {
        Ok(service) => service,
        Err(response) => return response,
    };
    let body: crate::configstore::sync::NewestBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad request body: {e}")),
    };
    match tokio::task::spawn_blocking(move || service.newest_for(&body)).await {
        Ok(Ok(answer)) => Json(answer).into_response(),
        Ok(Err(why)) => error(StatusCode::CONFLICT, &why),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `GET /v1/nodes/{n}/inventory`: this node's inventory ([`own_inventory`]); another
/// node's, fetched from that node over the node call signed with the cluster key
/// ([`crate::inventory::fetch`]), so that a client asks one node for every node's; 502
/// with that node's API address (`endpoint`, E1343) when it does not answer (421, E5321,
/// without a configuration store to sign with); a node the configuration does not have:
/// 404 (E5322).
async fn inventory(State(state): State<Arc<ApiState>>, Path(node): Path<String>) -> Response {
    use engine::catalogue::{
        CONFIG_INVENTORY_NOT_FETCHED, INVENTORY_ELSEWHERE, INVENTORY_NO_SUCH_NODE,
    };
    let service = state.inventory.clone();
    if node == service.node {
        return own_inventory(&state).await;
    }
    let Some((name, address)) = service.apis.iter().find(|(name, _)| *name == node) else {
        let code = INVENTORY_NO_SUCH_NODE.code;
        let message = format!("{code}: the cluster has no node `{node}`");
        return (StatusCode::NOT_FOUND, Json(json!({"ok": false, "error": message, "code": code})))
            .into_response();
    };
    let endpoint = format!("https://{address}");
    if let Some(configs) = state.configs.clone() {
        let from = name.clone();
        let fetched =
            tokio::task::spawn_blocking(move || crate::inventory::fetch(&configs, &from)).await;
        let why = match fetched {
            Ok(Ok(inventory)) => return Json(inventory).into_response(),
            Ok(Err(why)) => why,
            Err(e) => e.to_string(),
        };
        let code = CONFIG_INVENTORY_NOT_FETCHED.code;
        let message = format!(
            "{code}: node {} could not fetch node {name}'s inventory ({why}); ask node {name} at \
             {endpoint}/v1/nodes/{name}/inventory",
            service.node
        );
        let body = json!({"ok": false, "error": message, "code": code, "node": name,
            "endpoint": endpoint});
        return (StatusCode::BAD_GATEWAY, Json(body)).into_response();
    }
    let code = INVENTORY_ELSEWHERE.code;
    let message = format!(
        "{code}: this is node {}, which takes the inventory of its own host only; ask node \
         {name} at {endpoint}/v1/nodes/{name}/inventory",
        service.node
    );
    let body = json!({"ok": false, "error": message, "code": code, "node": name,
        "endpoint": endpoint});
    (StatusCode::MISDIRECTED_REQUEST, Json(body)).into_response()
}

/// This node's inventory, taken on a blocking thread, one at a time, back within the
/// inventory's deadline (its parts' failures are inside the document).
async fn own_inventory(state: &ApiState) -> Response {
    let service = state.inventory.clone();
    let wait = service.sources.deadline + crate::inventory::PART_MARGIN;
    let Ok(Ok(_turn)) = tokio::time::timeout(wait, service.slot.acquire()).await else {
        let mut response =
            error(StatusCode::SERVICE_UNAVAILABLE, "another inventory is being taken; try again");
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(5));
        return response;
    };
    let taker = service.clone();
    let taken = tokio::task::spawn_blocking(move || {
        crate::inventory::take(&taker.sources, Some(&taker.node))
    })
    .await;
    match taken {
        Ok(inventory) => Json(inventory).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("the inventory failed: {e}")),
    }
}

/// `GET /v1/config/node/inventory`: this node's inventory for another node of the
/// cluster, once the call's signature checks out (401 otherwise, E1307).
async fn config_node_inventory(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let Some(service) = state.configs.clone() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "this node has no configuration store");
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Err(why) = service.verify("GET", crate::inventory::NODE_PATH, header, b"") {
        tracing::warn!(code = engine::catalogue::CONFIG_NODE_CALL_UNAUTHENTICATED.code, "{why}");
        return error(StatusCode::UNAUTHORIZED, &why);
    }
    own_inventory(&state).await
}

/// `POST /v1/config/edit`: the console's edits made on the running text and checked
/// ([`crate::configedit::answer`]); nothing saved.
async fn config_edit(State(state): State<Arc<ApiState>>, body: Bytes) -> Response {
    let request: contract::ConfigEditRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad request body: {e}")),
    };
    let Some(service) = state.configs.clone() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "this node has no configuration store");
    };
    match tokio::task::spawn_blocking(move || crate::configedit::answer(&service, &request)).await {
        Ok((status, answer)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, Json(answer)).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
