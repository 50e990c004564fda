//! A deliberately small HTTP/1.1 server: three GET endpoints for Prometheus and probes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Metrics;

/// What `/healthz` and `/readyz` report.
#[derive(Default)]
pub struct Health {
    /// The processing loop is running (false once it has stopped on an error).
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
}

/// Serves until the task is dropped. Binding errors are returned to the caller, so a port
/// already in use stops start-up with a clear message.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, health: Arc<Health>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        let health = health.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            // Read until the end of the request head (we ignore any body).
            loop {
                match socket.read(&mut buf[len..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => len += n,
                }
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") || len == buf.len() {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let mut parts = head.split_whitespace();
            let method = parts.next().unwrap_or("");
            let path = parts.next().unwrap_or("");
            let (status, content_type, body) = match (method, path) {
                ("GET", "/metrics") => (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    metrics.render(),
                ),
                ("GET", "/healthz") => flag(health.live.load(Ordering::Relaxed), "live"),
                ("GET", "/readyz") => flag(health.ready.load(Ordering::Relaxed), "ready"),
                ("GET", _) => ("404 Not Found", "text/plain", "not found\n".into()),
                _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

fn flag(ok: bool, what: &str) -> (&'static str, &'static str, String) {
    if ok {
        ("200 OK", "text/plain", format!("{what}\n"))
    } else {
        (
            "503 Service Unavailable",
            "text/plain",
            format!("not {what}\n"),
        )
    }
}
