//! What the listeners answer before the server is ready to serve (the database not reachable yet): live, not
//! ready with the reason, and 503 with `Retry-After` for everything else, so an orchestrator keeps the process and
//! routes no traffic to it, and a client knows to come back. Every response closes its connection, so that once
//! the real routes are in place no client stays on a connection that still answers "starting".

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// Why the server is not serving yet, shared between the start-up loop and the listeners.
#[derive(Debug, Clone, Default)]
pub struct Starting {
    state: Arc<Mutex<StartingState>>,
}

#[derive(Debug, Clone, Default)]
struct StartingState {
    reason: Option<String>,
    attempts: u32,
    retry_in_s: Option<f64>,
}

impl Starting {
    /// Records a failed attempt and when the next one is.
    pub fn failed(&self, reason: &str, retry_in: std::time::Duration) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.reason = Some(reason.to_owned());
        s.attempts += 1;
        s.retry_in_s = Some(retry_in.as_secs_f64());
    }

    fn snapshot(&self) -> StartingState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The routes while starting.
pub(super) fn routes(starting: Starting) -> Router {
    Router::new()
        .route("/health/live", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/health/ready", get(ready))
        .fallback(unavailable)
        .with_state(starting)
        .layer(axum::middleware::map_response(close_connection))
}

async fn ready(State(starting): State<Starting>) -> Response {
    let s = starting.snapshot();
    let reason = s.reason.unwrap_or_else(|| "starting: connecting to the database".to_owned());
    let body = json!({
        "status": "not ready",
        "reason": reason,
        "database": {"ok": false, "error": reason, "attempts": s.attempts, "retry_in_s": s.retry_in_s},
        "starting": true,
        "draining": false,
    });
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

async fn unavailable(State(starting): State<Starting>) -> Response {
    let reason = starting.snapshot().reason.unwrap_or_else(|| "connecting to the database".to_owned());
    let message = format!("zava-mcp is starting and cannot serve yet ({reason}); retry in a few seconds");
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": message}});
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    response
}

async fn close_connection(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
