//! The accept loop: HTTP/1.1 connections served by hyper with limits `axum::serve` does not expose.
//!
//! axum 0.8's `serve` builds hyper's connection without a timer, so hyper's header read timeout never fires: a
//! client sending its headers a byte at a time keeps its connection (and its task and buffers) forever. Here each
//! connection gets a header read timeout (the whole head, not the gap between bytes), a cap on the size of the
//! head (431) and TCP_NODELAY; the body's own timeout is `hygiene`'s. Shutdown is graceful as axum's is: stop
//! accepting, let in-flight requests finish, close idle connections, return when every connection is gone.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_header_bytes: usize,
}

/// Serves `routes` on `listener` until `shutdown` is cancelled, then waits for open connections to finish. Each
/// new connection is served by the routes current when it is accepted (the start-up routes give way to the real
/// ones that way).
pub(crate) async fn run(
    listener: TcpListener,
    routes: tokio::sync::watch::Receiver<Router>,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes);
    // Every connection task holds a receiver; the loop's end waits until all are dropped.
    let (open_tx, open_rx) = tokio::sync::watch::channel(());
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Without TCP_NODELAY small writes wait for delayed ACKs (~40 ms a call).
        let _ = tcp.set_nodelay(true);
        let router = routes.borrow().clone();
        let service = router.map_request(|req: hyper::Request<Incoming>| req.map(axum::body::Body::new));
        let service = TowerToHyperService::new(service.map_err(|e: Infallible| match e {}));
        let connection = builder.serve_connection(TokioIo::new(tcp), service);
        let shutdown = shutdown.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(open_rx);
    drop(listener);
    open_tx.closed().await;
}

/// As axum does: a connection that failed before it was accepted is the client's business; anything else (too
/// many open files) is logged and the loop pauses so it does not spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
