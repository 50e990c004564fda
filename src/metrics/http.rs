//! The HTTP server of `/metrics`, `/healthz` and `/readyz`: axum routes on hyper's HTTP/1
//! connections, with the limits a port reachable from a network needs.
//!
//! The accept loop is ours rather than `axum::serve` because `axum::serve` sets no timer on
//! hyper, so hyper's header read timeout would never fire: a client that connects and sends
//! nothing (or trickles bytes) would hold its connection, and its task, forever.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower_http::timeout::TimeoutLayer;

use super::Metrics;

/// The Prometheus text exposition format, version 0.0.4.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What `/healthz` and `/readyz` report.
#[derive(Default)]
pub struct Health {
    /// The processing loop is running (false before it starts and once it has stopped).
    pub live: AtomicBool,
    /// The consumer has partitions and the orders table has caught up.
    pub ready: AtomicBool,
    /// The orders table has read what the orders topic held at start-up.
    pub orders_caught_up: AtomicBool,
    /// Why the processing loop is stuck (aborts in a row, no commit progress), if it is:
    /// `/healthz` fails with this reason while it is set.
    stuck: std::sync::Mutex<Option<String>>,
}

impl Health {
    /// Marks the loop stuck with a reason, or clears it (`None`) once a commit went through.
    pub fn set_stuck(&self, why: Option<String>) {
        *self.stuck.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    pub fn stuck(&self) -> Option<String> {
        self.stuck.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `/healthz`: `Ok` while the processing loop runs and is not stuck, else why not. A
    /// failing liveness probe means "restart me", so it fails only for what a restart can fix.
    pub fn liveness(&self) -> Result<(), String> {
        if !self.live.load(Ordering::Relaxed) {
            // Before the loop starts (start-up) and after it stops (shutdown, fatal error).
            return Err("processing loop not running".into());
        }
        match self.stuck() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// `/readyz`: `Ok` once the consumer has partitions, all restored, and the orders table has caught up,
    /// else the first thing still missing.
    pub fn readiness(&self) -> Result<(), String> {
        if self.ready.load(Ordering::Relaxed) {
            Ok(())
        } else if !self.live.load(Ordering::Relaxed) {
            Err("processing loop not running".into())
        } else if !self.orders_caught_up.load(Ordering::Relaxed) {
            Err("orders table catching up".into())
        } else {
            Err("no partitions assigned yet, or some still restoring".into())
        }
    }
}

/// The server's bounds. Every one of them keeps a misbehaving or hostile client from holding
/// resources without end; the defaults suit Prometheus and Kubernetes probes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection must deliver a complete request head within this time after it opens (or
    /// after its previous response): a silent or trickling client, or an idle keep-alive
    /// connection, is closed when it runs out.
    pub header_read_timeout: Duration,
    /// A handler that has not answered by then gets a 503; also the time in-flight requests
    /// get to finish at a graceful shutdown or at the end of a connection's lifetime.
    pub request_timeout: Duration,
    /// A connection is closed (gracefully, between requests) after this long, so a client
    /// that stops reading its response cannot keep it open.
    pub connection_lifetime: Duration,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            connection_lifetime: Duration::from_secs(60),
            max_connections: 64,
        }
    }
}

/// A request head larger than this is refused (hyper's smallest allowed buffer is 8 KiB):
/// with `max_connections`, it bounds the memory that clients can make the server hold.
const MAX_BUF_SIZE: usize = 16 * 1024;
/// Back-off after a failed `accept` (out of file descriptors, usually): retrying at once would
/// spin on the same error.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Binds the metrics address. Binding is separate from serving so that a port already in use
/// stops start-up with a clear message.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves with the default [`Limits`] until `shutdown` turns true (or its sender is dropped).
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: watch::Receiver<bool>,
) {
    serve_with(listener, metrics, health, Limits::default(), shutdown).await
}

/// Serves until `shutdown` turns true (or its sender is dropped), then stops accepting, lets
/// the requests in flight finish (at most `request_timeout`) and returns.
pub async fn serve_with(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = router(metrics, health, limits.request_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Tells the connection tasks to finish their request and close.
    let (closing_tx, closing) = watch::channel(false);
    if let Ok(addr) = listener.local_addr() {
        tracing::debug!(%addr, "metrics server listening");
    }
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        // A slot first, then accept: at the limit, new connections wait in the backlog.
        let permit = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed; nothing left to serve if it were
            },
        };
        let accepted = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                tokio::spawn(connection(
                    stream,
                    peer,
                    app.clone(),
                    limits,
                    closing.clone(),
                    permit,
                ));
            }
            Err(error) => {
                drop(permit);
                tracing::warn!(
                    %error,
                    retry_in_ms = backoff.as_millis() as u64,
                    "metrics server: accepting a connection failed"
                );
                tokio::select! {
                    _ = stopped(&mut shutdown) => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    // Every connection holds a slot: having them all back means every connection closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let grace = limits.request_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::debug!("metrics server: connections still open at shutdown, dropped");
    }
    tracing::debug!("metrics server stopped");
}

/// Resolves once the value turns true or the sender is gone.
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_SIZE);
    let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                // Timeouts, resets and malformed requests: the client's problem, not ours.
                tracing::debug!(%peer, %error, "metrics connection closed on an error");
            }
            return;
        }
        _ = tokio::time::sleep(limits.connection_lifetime) => {}
        _ = stopped(&mut closing) => {}
    }
    // Finish the request in hand, if any, then close; a client that will not take its
    // response is dropped when the grace runs out.
    conn.as_mut().graceful_shutdown();
    match tokio::time::timeout(limits.request_timeout, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%peer, %error, "metrics connection closed on an error"),
        Err(_) => tracing::debug!(%peer, "metrics connection dropped after the grace period"),
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

fn router(metrics: Arc<Metrics>, health: Arc<Health>, request_timeout: Duration) -> Router {
    // Other methods on these paths get axum's 405 with `Allow: GET,HEAD`.
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(AppState { metrics, health })
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
}

async fn render_metrics(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        app.metrics.render(),
    )
        .into_response()
}

async fn healthz(State(app): State<AppState>) -> Response {
    probe(app.health.liveness(), "live")
}

async fn readyz(State(app): State<AppState>) -> Response {
    probe(app.health.readiness(), "ready")
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

fn probe(state: Result<(), String>, what: &str) -> Response {
    match state {
        Ok(()) => (StatusCode::OK, format!("{what}\n")).into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not {what}: {why}\n"),
        )
            .into_response(),
    }
}
