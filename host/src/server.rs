//! The transport: [`run`] binds nothing itself; it takes a bound listener,
//! accepts connections up to a cap, serves each with hyper (HTTP/1.1), and on
//! shutdown stops accepting and lets in-flight requests finish within a drain
//! limit.

use crate::http::{self, App};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

/// Limits of the transport.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// How long a client may take to send its request headers.
    pub header_timeout: Duration,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub drain: Duration,
}

/// Owns the accept loop (one per listening socket).
struct Listener {
    listener: TcpListener,
    app: Arc<App>,
    /// One permit per open connection: caps memory and file descriptors.
    connections: Arc<Semaphore>,
    limits: Limits,
}

/// Serve `app` on `listener` until `shutdown` completes, then drain.
pub async fn run(listener: TcpListener, app: Arc<App>, limits: Limits, shutdown: impl Future) {
    let graceful = GracefulShutdown::new();
    let listener = Listener {
        listener,
        app,
        connections: Arc::new(Semaphore::new(limits.max_connections)),
        limits,
    };
    tokio::select! {
        () = listener.accept_loop(&graceful) => {}
        _ = shutdown => info!("shutting down: no new connections"),
    }
    tokio::select! {
        () = graceful.shutdown() => info!("all connections closed"),
        () = tokio::time::sleep(limits.drain) => {
            warn!(drain = ?limits.drain, "drain limit reached; closing remaining connections");
        }
    }
}

impl Listener {
    async fn accept_loop(&self, graceful: &GracefulShutdown) {
        loop {
            let Ok(permit) = self.connections.clone().acquire_owned().await else {
                return; // the semaphore is never closed
            };
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, don't spin.
                    error!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let app = self.app.clone();
            let service = service_fn(move |request| {
                let app = app.clone();
                async move { http::handle(&app, request).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(self.limits.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                drop(permit);
            });
        }
    }
}
