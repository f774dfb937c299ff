//! The web console (PRODUCT.md section 6), served by every node's HTTPS API: the page at
//! `/`, its script and style sheet under `/console/`, sign-in at `/login` and sign-out
//! at `/logout`, and the small routes the page needs (`/v1/whoami`, `/v1/help`).
//!
//! The files are plain HTML, CSS and JavaScript in this directory, embedded in the
//! binary with `include_str!`: no build step, no CDN, the console works offline. Every
//! response of the console carries a strict Content-Security-Policy (scripts, styles and
//! connections from the node itself only: no inline script or style), `nosniff`, no
//! referrer and no framing.
//!
//! **Sessions.** `POST /login` takes a token from a form (never from a URL), checks it
//! as the bearer path does (the same argon2 check, rate limit and roles) and makes a
//! session: a random 256-bit id in a cookie (`HttpOnly; Secure; SameSite=Strict;
//! Path=/`), named after the node's port so that two nodes on one host keep apart. The
//! node keeps only the id's SHA-256, the user and the user's hash at sign-in, for
//! [`SESSION_FOR`] at most; the token itself is kept nowhere. A session ends at sign-out,
//! at its expiry, and as soon as its user is removed from the users file or has a new
//! token. The route guard ([`super::routes`]) takes the cookie where no bearer header is
//! given ([`Console::session_of`]); a request that changes something (`POST`) and
//! authenticates by the cookie must also carry `X-Tandem-Console: 1` or an `Origin` equal
//! to the node's own, else it is refused with 403 and E5302 (cross-site request forgery,
//! on top of SameSite).
//!
//! Sign-ins and sign-outs are logged with I5301 and I5303 (user, role, client address)
//! by the daemon's log; they are not journal entries, because the journal's ids are
//! given by the loop's writer only and the console does not go through the loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use engine::catalogue;
use rand_core::{OsRng, RngCore};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::auth::Authed;
use super::routes::ClientAddr;
use super::ApiState;
use crate::access::Caller;

/// A session's lifetime from sign-in: a working day; past it the console asks for the
/// token again.
pub const SESSION_FOR: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most: past it, the expired ones are forgotten, then the oldest.
pub const SESSIONS_MAX: usize = 1024;
/// The header the console's page sends with every request that changes something.
pub const CONSOLE_HEADER: &str = "x-tandem-console";

/// What every console response may load: its own script, style sheet and API, nothing
/// inline, nothing from elsewhere, in no frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

const INDEX_HTML: &str = include_str!("index.html");
const LOGIN_HTML: &str = include_str!("login.html");
const APP_JS: &str = include_str!("app.js");
const EDITOR_JS: &str = include_str!("editor.js");
const APP_CSS: &str = include_str!("app.css");

/// One signed-in browser.
struct Session {
    user: String,
    /// The user's token hash at sign-in: a new token (or a removed user) ends the session.
    hash: String,
    expires: Instant,
}

/// The console's state: its sessions, and each node's console address.
pub struct Console {
    /// The session cookie's name: `__Host-tandem-PORT`.
    cookie: String,
    /// By the SHA-256 of the session id.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    /// Each node's name and API address, in the configuration's order.
    nodes: Vec<(String, SocketAddr)>,
}

/// Why a request's session is not taken.
pub enum SessionRefusal {
    /// Unknown, expired, or its user removed or given a new token (401).
    Ended,
    /// A `POST` by cookie without the console's header or origin (403, E5302).
    CrossSite,
}

impl Console {
    /// The console of the API serving on `port`, with every node's API address.
    pub fn new(port: u16, nodes: Vec<(String, SocketAddr)>) -> Console {
        Console {
            cookie: format!("__Host-tandem-{port}"),
            sessions: Mutex::new(HashMap::new()),
            nodes,
        }
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    /// The session id the request's cookie holds, if any.
    fn cookie_of(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie)
            .map(|(_, value)| value.trim().to_string())
            .filter(|value| !value.is_empty())
    }

    /// The caller of a request by its session cookie: `None` when the request has a
    /// bearer header (which takes precedence) or no session cookie, so that the bearer
    /// path decides. `state` gives the users file, read again when it changed.
    pub fn session_of(
        &self,
        state: &ApiState,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Result<Authed, SessionRefusal>> {
        if headers.contains_key(header::AUTHORIZATION) {
            return None;
        }
        let id = self.cookie_of(headers)?;
        let key: [u8; 32] = Sha256::digest(id.as_bytes()).into();
        let (user, hash) = {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            match sessions.get(&key) {
                Some(s) if s.expires > Instant::now() => (s.user.clone(), s.hash.clone()),
                Some(_) => {
                    sessions.remove(&key);
                    return Some(Err(SessionRefusal::Ended));
                }
                None => return Some(Err(SessionRefusal::Ended)),
            }
        };
        let role = match state.auth.user(&user) {
            Some((role, now)) if now == hash => role,
            _ => {
                self.sessions.lock().expect("sessions lock").remove(&key);
                return Some(Err(SessionRefusal::Ended));
            }
        };
        if !matches!(*method, Method::GET | Method::HEAD) && !from_the_console(headers) {
            return Some(Err(SessionRefusal::CrossSite));
        }
        Some(Ok(Authed { user, role }))
    }

    /// A new session for `user` whose token hash is `hash`: its id.
    fn open(&self, user: &str, hash: String) -> String {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let id = hex::encode(secret);
        let key: [u8; 32] = Sha256::digest(id.as_bytes()).into();
        let now = Instant::now();
        let mut sessions = self.sessions.lock().expect("sessions lock");
        if sessions.len() >= SESSIONS_MAX {
            sessions.retain(|_, s| s.expires > now);
        }
        if sessions.len() >= SESSIONS_MAX {
            let oldest = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(key, Session { user: user.to_string(), hash, expires: now + SESSION_FOR });
        id
    }

    /// Ends the request's session; its user, if it had one.
    fn close(&self, headers: &HeaderMap) -> Option<String> {
        let id = self.cookie_of(headers)?;
        let key: [u8; 32] = Sha256::digest(id.as_bytes()).into();
        self.sessions.lock().expect("sessions lock").remove(&key).map(|s| s.user)
    }

    /// The `Set-Cookie` value that gives the browser session `id`.
    fn set_cookie(&self, id: &str) -> String {
        format!(
            "{}={id}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
            self.cookie,
            SESSION_FOR.as_secs()
        )
    }

    /// The `Set-Cookie` value that makes the browser drop the session cookie.
    fn clear_cookie(&self) -> String {
        format!("{}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0", self.cookie)
    }

    /// Puts each node's console address into the status document's `nodes[].api`.
    pub fn add_api_addresses(&self, status: &mut Value) {
        let Some(nodes) = status.get_mut("nodes").and_then(Value::as_array_mut) else { return };
        for node in nodes {
            let address = self
                .nodes
                .iter()
                .find(|(name, _)| node.get("name").and_then(Value::as_str) == Some(name.as_str()))
                .map(|(_, address)| format!("https://{address}/"));
            if let (Some(address), Some(node)) = (address, node.as_object_mut()) {
                node.insert("api".into(), Value::String(address));
            }
        }
    }
}

/// Whether a request comes from the console's own page: its header, or an `Origin`
/// equal to the node's own (`https://` and the `Host` the browser asked for).
fn from_the_console(headers: &HeaderMap) -> bool {
    if headers.get(CONSOLE_HEADER).is_some_and(|v| v.as_bytes() == b"1") {
        return true;
    }
    same_origin(headers) == Some(true)
}

/// `Some(true)` when the `Origin` header is the node's own, `Some(false)` when it is
/// another, `None` without one.
fn same_origin(headers: &HeaderMap) -> Option<bool> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    Some(matches!((origin, host), (Some(o), Some(h)) if o == format!("https://{h}")))
}

/// The answer to a request refused for `refusal`.
pub fn refused(refusal: SessionRefusal) -> Response {
    match refusal {
        SessionRefusal::Ended => {
            api_error(StatusCode::UNAUTHORIZED, "the console session has ended; sign in at /login")
        }
        SessionRefusal::CrossSite => cross_site(),
    }
}

fn cross_site() -> Response {
    let code = &catalogue::CONSOLE_CROSS_SITE;
    let message = format!(
        "{}: {}: a request by the console's cookie must carry `X-Tandem-Console: 1` or the \
         node's own Origin",
        code.code, code.title
    );
    api_error(StatusCode::FORBIDDEN, &message)
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"ok": false, "error": message}))).into_response()
}

/// The headers every console response carries.
fn secured(mut response: Response, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null`
    // with the sign-in form's POST, which the origin check must refuse. No referrer
    // leaves for another site either way.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

fn html(status: StatusCode, body: String) -> Response {
    let response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body);
    secured(response.into_response(), "no-store")
}

/// Text made safe to put into HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn login_page(status: StatusCode, message: &str) -> Response {
    let message = match message {
        "" => String::new(),
        text => format!(r#"<p class="error" id="login-error" role="alert">{}</p>"#, escape(text)),
    };
    html(status, LOGIN_HTML.replace("<!--message-->", &message))
}

/// `GET /`: the console's page (the guard let a viewer through).
pub async fn page() -> Response {
    html(StatusCode::OK, INDEX_HTML.to_string())
}

/// Around `GET /`'s guard: a browser without a session is sent to `/login` (303); other
/// clients get the guard's 401 with a page that links there.
pub async fn to_login(request: Request, next: Next) -> Response {
    let browser = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let response = next.run(request).await;
    if response.status() != StatusCode::UNAUTHORIZED {
        return response;
    }
    if browser {
        let mut redirect = StatusCode::SEE_OTHER.into_response();
        redirect.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/login"));
        return secured(redirect, "no-store");
    }
    let challenge = response.headers().get(header::WWW_AUTHENTICATE).cloned();
    let mut page = html(
        StatusCode::UNAUTHORIZED,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tandem: sign \
         in</title></head><body><p>Sign in first: <a href=\"/login\">/login</a>.</p></body>\
         </html>\n"
            .to_string(),
    );
    if let Some(challenge) = challenge {
        page.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    }
    page
}

/// `GET /login`: the sign-in form.
pub async fn login_form() -> Response {
    login_page(StatusCode::OK, "")
}

/// The sign-in form's fields.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct LoginForm {
    /// The user's API token (`NAME.SECRET`, from `tandem user add`).
    #[serde(default)]
    pub token: String,
}

/// `POST /login`: checks the form's token; on success a session and its cookie, and
/// the browser sent to `/`.
pub async fn login(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let address = request.extensions().get::<ClientAddr>().map(|c| c.0);
    let headers = request.headers().clone();
    if same_origin(&headers) == Some(false) {
        return cross_site();
    }
    // Anything but a form with a token (another content type, a bad body) is no token.
    let form = axum::Form::<LoginForm>::from_request(request, &()).await.map(|f| f.0);
    let form = form.unwrap_or_default();
    let token = form.token.trim();
    if token.is_empty() {
        return login_page(StatusCode::UNAUTHORIZED, "Give your token to sign in.");
    }
    let authed = match state.auth.check(Some(&format!("Bearer {token}"))).await {
        Ok(authed) => authed,
        Err(_) => return login_page(StatusCode::UNAUTHORIZED, "That token is not valid."),
    };
    if !authed.role.may(super::users::Role::Viewer) {
        let message = format!(
            "The user {} has role {}, which cannot open the console.",
            authed.user, authed.role
        );
        return login_page(StatusCode::FORBIDDEN, &message);
    }
    let Some((_, hash)) = state.auth.user(&authed.user) else {
        return login_page(StatusCode::UNAUTHORIZED, "That token is not valid.");
    };
    let id = state.console.open(&authed.user, hash);
    let code = &catalogue::CONSOLE_SIGNED_IN;
    let from = address.map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
    tracing::info!(
        code = code.code,
        "{}: {} (role {}) signed in to the web console from {from}",
        code.code,
        authed.user,
        authed.role
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static("/"));
    if let Ok(cookie) = HeaderValue::from_str(&state.console.set_cookie(&id)) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    secured(response, "no-store")
}

/// `POST /logout`: ends the session (server side) and drops the cookie.
pub async fn logout(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let address = request.extensions().get::<ClientAddr>().map(|c| c.0);
    let headers = request.headers();
    if state.console.cookie_of(headers).is_some() && !from_the_console(headers) {
        return cross_site();
    }
    if let Some(user) = state.console.close(headers) {
        let code = &catalogue::CONSOLE_SIGNED_OUT;
        let from = address.map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
        tracing::info!(
            code = code.code,
            "{}: {user} signed out of the web console from {from}",
            code.code
        );
    }
    let mut response = Json(json!({"ok": true})).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&state.console.clear_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    secured(response, "no-store")
}

/// A static file with its content type, revalidated by its ETag (the files change only
/// with the binary).
fn asset(headers: &HeaderMap, body: &'static str, kind: &'static str, tag: &str) -> Response {
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = match matches {
        true => StatusCode::NOT_MODIFIED.into_response(),
        false => ([(header::CONTENT_TYPE, kind)], body).into_response(),
    };
    if let Ok(tag) = HeaderValue::from_str(tag) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    secured(response, "no-cache")
}

fn etag(body: &str) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(body.as_bytes()))[..32])
}

/// `GET /console/app.js`.
pub async fn app_js(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    let tag = TAG.get_or_init(|| etag(APP_JS));
    asset(&headers, APP_JS, "text/javascript; charset=utf-8", tag)
}

/// `GET /console/editor.js`: the configuration editor (docs/console.md, "Changing the
/// configuration from the console").
pub async fn editor_js(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    let tag = TAG.get_or_init(|| etag(EDITOR_JS));
    asset(&headers, EDITOR_JS, "text/javascript; charset=utf-8", tag)
}

/// `GET /console/app.css`.
pub async fn app_css(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    let tag = TAG.get_or_init(|| etag(APP_CSS));
    asset(&headers, APP_CSS, "text/css; charset=utf-8", tag)
}

/// `GET /v1/whoami`: the caller's user and role.
pub async fn whoami(Extension(caller): Extension<Caller>) -> Response {
    match caller {
        Caller::Api { user, role, .. } => Json(json!({"user": user, "role": role})).into_response(),
        Caller::Local { .. } => api_error(StatusCode::FORBIDDEN, "not an API caller"),
    }
}

fn help_entry(code: &catalogue::CodeInfo, whole: bool) -> Value {
    let mut entry = json!({
        "code": code.code,
        "severity": code.severity.as_str(),
        "title": code.title,
        "area": catalogue::area_name(code.code),
    });
    if whole {
        entry["cause"] = Value::from(code.cause);
        entry["fix"] = Value::from(code.fix);
    }
    entry
}

/// `GET /v1/help`: every code of the catalogue, with its severity, title and area.
pub async fn help_index() -> Response {
    let codes: Vec<Value> = catalogue::all().map(|c| help_entry(c, false)).collect();
    Json(json!({"codes": codes})).into_response()
}

/// `GET /v1/help/{code}`: one code's title, cause and fix (404 for no such code).
pub async fn help_code(Path(code): Path<String>) -> Response {
    match catalogue::lookup(&code) {
        Some(info) => Json(help_entry(info, true)).into_response(),
        None => api_error(
            StatusCode::NOT_FOUND,
            &format!("no code `{code}` in the catalogue (GET /v1/help lists them)"),
        ),
    }
}
