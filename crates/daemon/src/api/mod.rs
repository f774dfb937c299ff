//! The node's HTTPS API (`/v1/...`, [`routes::ROUTES`]): axum over hyper's HTTP/1.1,
//! rustls, bearer tokens of the users file ([`users`], [`auth`]) with roles; and the web
//! console at `/` with its sign-in and session cookie ([`console`]).
//!
//! It runs on a thread of its own with its own tokio runtime, so that TLS handshakes,
//! hash checks and slow clients never take the loop's thread; requests reach the loop
//! through the control socket's bounded `Call` channel, and a full channel answers 503
//! at once (the API never waits for room in it).
//!
//! Started by `tandem node` on the node's `api` address when `[api] tls_cert`, `tls_key`
//! and `users_file` all exist ([`start`]); without them the node runs without the API
//! and says so (W5108). Files that exist but cannot be used stop the start (E5109,
//! E5110, E5111). The users file is read again when its modification time changes.
//!
//! Limits, each in [`Limits`] with its reason: body size, per-client rate, connections,
//! and timeouts for the TLS handshake, the request head (also the idle time between
//! requests of a kept-alive connection), the body and the loop's answer.

pub mod auth;
pub mod console;
pub mod openapi;
pub mod rate;
pub mod routes;
pub mod tls;
pub mod users;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use engine::catalogue;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::control::Call;

/// Largest request body: the largest command body is a few dozen bytes; 64 KiB leaves
/// room for any future one and bounds what one request makes the node hold. The routes
/// that carry a whole configuration take more
/// ([`crate::configstore::sync::BODY_BYTES_MAX`], `routes::Action::takes_a_configuration`).
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// Requests per second per client address, sustained: far above what an operator, a
/// script polling the status or the web console needs.
pub const RATE_PER_SECOND: u32 = 20;
/// Requests a client may send at once before the sustained rate applies.
pub const RATE_BURST: u32 = 40;
/// Connections open at once: each holds a TLS session and a task; past it new
/// connections are closed at once, so a flood cannot exhaust memory or descriptors.
pub const CONNECTIONS_MAX: usize = 128;
/// TLS handshake: a client that does not finish it holds a connection slot no longer.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's head (method, path, headers), and the quiet time of a kept-alive
/// connection before its next request: a slow or silent client is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's body, from the end of its head.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The loop's answer to a command (answered once what it caused is journaled): the loop
/// answers in milliseconds; past this something is wrong and the client is told (504).
pub const ANSWER_WAIT: Duration = Duration::from_secs(30);

/// The API's limits (the constants above; tests use smaller ones).
#[derive(Clone, Debug)]
pub struct Limits {
    pub body_bytes: usize,
    pub per_second: u32,
    pub burst: u32,
    pub connections: usize,
    pub handshake: Duration,
    pub header_read: Duration,
    pub body_read: Duration,
    pub answer_wait: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            body_bytes: BODY_BYTES_MAX,
            per_second: RATE_PER_SECOND,
            burst: RATE_BURST,
            connections: CONNECTIONS_MAX,
            handshake: HANDSHAKE_TIMEOUT,
            header_read: HEADER_READ_TIMEOUT,
            body_read: BODY_READ_TIMEOUT,
            answer_wait: ANSWER_WAIT,
        }
    }
}

/// What the handlers share.
pub struct ApiState {
    pub calls: mpsc::Sender<Call>,
    pub auth: auth::Authenticator,
    pub rate: rate::RateLimiter,
    pub limits: Limits,
    /// The state directory, whose journal `GET /v1/events` reads.
    pub journal_dir: PathBuf,
    /// What `GET /metrics` shows (the loop counts into it).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Hands an application's heartbeat to its `app` resource's agent on this node.
    pub apps: AppHeartbeats,
    /// The web console's sessions and every node's console address.
    pub console: console::Console,
    /// The configuration's generations and push (`/v1/config...`; 503 without it).
    pub configs: Option<Arc<crate::configstore::Service>>,
    /// `GET /v1/nodes/{n}/inventory`: this node, the other nodes' API addresses, one
    /// inventory at a time.
    pub inventory: Arc<crate::inventory::Service>,
}

/// `POST /v1/apps/{name}/heartbeat`'s way to the `app` resource `name` on this node, with
/// the status text: `Err` says why it was not taken (no such app resource here).
pub type AppHeartbeats = Arc<dyn Fn(&str, Option<&str>) -> Result<(), String> + Send + Sync>;

/// A running API server; dropping it stops it (see [`ApiServer::detach`]).
pub struct ApiServer {
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// Serves `state`'s routes on `listener` with `tls`, on a new thread.
    pub fn spawn(
        listener: std::net::TcpListener,
        tls: Arc<rustls::ServerConfig>,
        state: ApiState,
    ) -> anyhow::Result<ApiServer> {
        let address = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(8)
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("tandem-api".into())
            .spawn(move || runtime.block_on(serve(listener, tls, state, stopped)))?;
        Ok(ApiServer { address, stop: Some(stop), thread: Some(thread) })
    }

    /// Lets the server run for the rest of the process.
    pub fn detach(mut self) {
        // The sender kept alive for ever: the server's stop signal never comes.
        if let Some(stop) = self.stop.take() {
            std::mem::forget(stop);
        }
        self.thread.take();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The accept loop: a connection over the limit is closed at once; each other one gets
/// its TLS handshake, then HTTP/1.1 with the head timeout, in a task of its own.
async fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: ApiState,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let limits = state.limits.clone();
    let slots = Arc::new(Semaphore::new(limits.connections));
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = routes::router(Arc::new(state));
    loop {
        let (tcp, client) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => {
                    // Out of descriptors, most likely: let some close.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(tcp);
            continue;
        };
        let (acceptor, limits) = (acceptor.clone(), limits.clone());
        let app = app.clone().layer(axum::Extension(routes::ClientAddr(client)));
        tokio::spawn(async move {
            let _slot = slot;
            let Ok(Ok(stream)) = tokio::time::timeout(limits.handshake, acceptor.accept(tcp)).await
            else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                .await;
        });
    }
}

/// Starts the API of a node serving at `address` if `[api]`'s files exist: `Ok(None)`
/// (logged, W5108) if one is missing; an error with its code if one cannot be used or the
/// address cannot be bound. `nodes` are every node's name and API address (the console
/// links to the other nodes' consoles).
#[allow(clippy::too_many_arguments)]
pub fn start(
    api: &config::ApiConfig,
    address: SocketAddr,
    nodes: Vec<(String, SocketAddr)>,
    state_dir: &Path,
    calls: mpsc::Sender<Call>,
    metrics: Arc<crate::metrics::Metrics>,
    apps: AppHeartbeats,
    configs: Option<Arc<crate::configstore::Service>>,
) -> anyhow::Result<Option<ApiServer>> {
    let files =
        [("tls_cert", &api.tls_cert), ("tls_key", &api.tls_key), ("users_file", &api.users_file)];
    let missing: Vec<String> = files
        .iter()
        .filter(|(_, path)| !path.exists())
        .map(|(key, path)| format!("{key} {}", path.display()))
        .collect();
    if !missing.is_empty() {
        tracing::warn!(
            code = catalogue::API_NOT_STARTED.code,
            "{}: the HTTPS API is not started: missing {} (fix: {})",
            catalogue::API_NOT_STARTED.code,
            missing.join(", "),
            catalogue::API_NOT_STARTED.fix
        );
        return Ok(None);
    }
    let tls = tls::server_config(&api.tls_cert, &api.tls_key)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", catalogue::API_TLS_UNUSABLE.code))?;
    let auth = auth::Authenticator::new(api.users_file.clone())
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", catalogue::API_USERS_INVALID.code))?;
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("binding the API's address {address}"))
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", catalogue::API_BIND_FAILED.code))?;
    let limits = Limits::default();
    let rate = rate::RateLimiter::new(limits.per_second, limits.burst);
    let journal_dir = state_dir.to_path_buf();
    // This node is the one whose API address is `address`.
    let me = nodes.iter().find(|(_, a)| *a == address).map(|(name, _)| name.clone());
    let inventory = Arc::new(crate::inventory::Service::new(me.unwrap_or_default(), nodes.clone()));
    let console = console::Console::new(address.port(), nodes);
    let state = ApiState {
        calls,
        auth,
        rate,
        limits,
        journal_dir,
        metrics,
        apps,
        console,
        configs,
        inventory,
    };
    let server = ApiServer::spawn(listener, tls, state)?;
    tracing::info!("the HTTPS API serves at https://{}/v1/", server.address);
    Ok(Some(server))
}
