//! The metrics server over a real socket: endpoints, limits and shutdown.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{bind, serve_with, Health, Limits, Metrics, PROMETHEUS_TEXT};

/// A client that waits longer than this for anything is a failed test, not a hang.
const PATIENCE: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    health: Arc<Health>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

async fn start(limits: Limits) -> Server {
    let listener = bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let health = Arc::new(Health::default());
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(serve_with(
        listener,
        Arc::new(Metrics::new()),
        health.clone(),
        limits,
        shutdown,
    ));
    Server {
        addr,
        health,
        stop,
        task,
    }
}

fn quick() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(2),
        connection_lifetime: Duration::from_secs(30),
        max_connections: 64,
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

async fn send(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("a reply in time")
        .expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8 reply");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete reply");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, "GET", path).await
}

/// Reads until the server closes the connection; the time it took.
async fn until_closed(mut stream: TcpStream) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut sink))
        .await
        .expect("the server closes the connection");
    started.elapsed()
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let server = start(quick()).await;
    let reply = get(server.addr, "/metrics").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .head
            .contains(&format!("content-type: {PROMETHEUS_TEXT}")),
        "{}",
        reply.head
    );
    assert!(reply.body.contains("parley_orders_applied_total 0"));
}

#[tokio::test]
async fn healthz_follows_the_loop_and_says_why_not() {
    let server = start(quick()).await;
    let reply = get(server.addr, "/healthz").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (503, "not live: processing loop not running\n")
    );

    server.health.live.store(true, Ordering::Relaxed);
    let reply = get(server.addr, "/healthz").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "live\n"));

    server
        .health
        .set_stuck(Some("5 transactions aborted in a row".into()));
    let reply = get(server.addr, "/healthz").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (503, "not live: 5 transactions aborted in a row\n")
    );

    server.health.set_stuck(None);
    assert_eq!(get(server.addr, "/healthz").await.status, 200);

    server.health.live.store(false, Ordering::Relaxed);
    let reply = get(server.addr, "/healthz").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (503, "not live: processing loop not running\n")
    );
}

#[tokio::test]
async fn readyz_names_what_is_missing() {
    let server = start(quick()).await;
    let health = &server.health;
    let reply = get(server.addr, "/readyz").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (503, "not ready: processing loop not running\n")
    );

    health.live.store(true, Ordering::Relaxed);
    let reply = get(server.addr, "/readyz").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (503, "not ready: orders table catching up\n")
    );

    health.orders_caught_up.store(true, Ordering::Relaxed);
    let reply = get(server.addr, "/readyz").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            503,
            "not ready: no partitions assigned yet, or some still restoring\n"
        )
    );

    health.ready.store(true, Ordering::Relaxed);
    let reply = get(server.addr, "/readyz").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "ready\n"));
}

/// The image's `HEALTHCHECK` asks in HTTP/1.0 and reads the status line.
#[tokio::test]
async fn an_http_1_0_probe_is_answered_and_closed() {
    let server = start(quick()).await;
    server.health.live.store(true, Ordering::Relaxed);
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("answered and closed in time")
        .expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8 reply");
    assert!(raw.starts_with("HTTP/1.0 200 OK\r\n"), "{raw}");
    assert!(raw.ends_with("\r\n\r\nlive\n"), "{raw}");
}

#[tokio::test]
async fn other_paths_and_methods_are_refused() {
    let server = start(quick()).await;
    let reply = get(server.addr, "/nothing-here").await;
    assert_eq!((reply.status, reply.body.as_str()), (404, "not found\n"));

    let reply = send(server.addr, "POST", "/healthz").await;
    assert_eq!(reply.status, 405);
    assert!(reply.head.contains("allow: get,head"), "{}", reply.head);
    assert_eq!(send(server.addr, "DELETE", "/metrics").await.status, 405);
}

#[tokio::test]
async fn a_silent_client_is_closed_by_the_header_timeout() {
    let server = start(quick()).await;
    let silent = TcpStream::connect(server.addr).await.expect("connect");
    let waited = until_closed(silent).await;
    assert!(
        waited >= Duration::from_millis(400),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "closed after {waited:?}");
}

#[tokio::test]
async fn a_trickling_client_is_closed_before_its_request_is_complete() {
    let server = start(quick()).await;
    let stream = TcpStream::connect(server.addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    let started = Instant::now();
    // One byte every 100 ms: the whole request would take over 5 s.
    let trickle = async move {
        for byte in request {
            if wr.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::future::pending::<()>().await
    };
    let read = async move {
        let mut reply = Vec::new();
        let _ = rd.read_to_end(&mut reply).await;
        reply
    };
    let reply = tokio::time::timeout(PATIENCE, async {
        tokio::select! {
            reply = read => reply,
            _ = trickle => unreachable!(),
        }
    })
    .await
    .expect("the server closes the connection");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(!String::from_utf8_lossy(&reply).contains("200 OK"));
}

#[tokio::test]
async fn idle_connections_beyond_the_limit_wait_and_do_not_stop_the_probes() {
    let server = start(Limits {
        max_connections: 2,
        ..quick()
    })
    .await;
    server.health.live.store(true, Ordering::Relaxed);
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    // The idle ones hold both slots, then the next two; the probe gets in once they time out.
    let started = Instant::now();
    let reply = get(server.addr, "/healthz").await;
    let waited = started.elapsed();
    assert_eq!((reply.status, reply.body.as_str()), (200, "live\n"));
    assert!(
        waited >= Duration::from_millis(400),
        "answered after {waited:?}: the limit did not hold"
    );
    for stream in idle {
        until_closed(stream).await;
    }
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let server = start(Limits {
        header_read_timeout: Duration::from_secs(30),
        ..quick()
    })
    .await;
    let idle = TcpStream::connect(server.addr).await.expect("connect");
    // Let the server accept it before stopping.
    assert_eq!(get(server.addr, "/readyz").await.status, 503);
    server.stop.send(true).expect("server running");
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .expect("the server stops")
        .expect("no panic");
    assert!(until_closed(idle).await < Duration::from_secs(3));
    assert!(TcpStream::connect(server.addr).await.is_err());
}
