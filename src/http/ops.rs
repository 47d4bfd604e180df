//! The operator's endpoints: `/health/live`, `/health/ready` and `/metrics`, on the MCP listener or on a listener
//! of their own (`--metrics ADDR`, which keeps the series off a public port).

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::auth::Authenticator;
use crate::db::migrate;
use crate::throttle::Throttle;

/// Where `/metrics` is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsListener {
    /// On the MCP listener, beside `/mcp`.
    Same,
    /// On a listener of its own (with the health probes), and not on the MCP one.
    At(SocketAddr),
    /// Nowhere.
    Off,
}

impl FromStr for MetricsListener {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "same" => Ok(MetricsListener::Same),
            "off" => Ok(MetricsListener::Off),
            addr => addr
                .parse()
                .map(MetricsListener::At)
                .map_err(|_| format!("`{s}` is not `same`, `off` or an address to listen on such as 127.0.0.1:9464")),
        }
    }
}

/// What the probes look at.
#[derive(Clone)]
pub(super) struct Probes {
    pub app: Arc<App>,
    pub auth: Option<Arc<Authenticator>>,
    pub throttle: Option<Arc<Throttle>>,
    /// Cancelled when the server starts shutting down: from then on it is not ready.
    pub draining: CancellationToken,
}

/// The probes, and `/metrics` when `metrics` is set.
pub(super) fn routes(probes: Probes, metrics: bool) -> Router {
    let mut router = Router::new()
        .route("/health/live", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/health/ready", get(ready));
    if metrics {
        // Installed before the first call, so nothing counted before the first scrape is lost.
        crate::telemetry::series::recorder();
        router = router.route("/metrics", get(scrape));
    }
    router.with_state(probes)
}

async fn scrape(State(probes): State<Probes>) -> Response {
    let text = crate::telemetry::series::render(&probes.app);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// The longest the database part of a probe may take: a probe polled every second must not pile up.
const DATABASE_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Ready when not shutting down, the database answers as the query role, its schema is the one this binary
/// expects, and (with tokens) the identity provider's keys are loaded. Each component says how it is; the
/// embedding provider and the limits store are reported but never make the server unready (keyword search and
/// in-process limits still work without them).
async fn ready(State(probes): State<Probes>) -> impl IntoResponse {
    let database = match tokio::time::timeout(DATABASE_PROBE_TIMEOUT, database(&probes.app)).await {
        Ok(Ok(version)) => json!({"ok": true, "schema_version": version}),
        Ok(Err(reason)) => json!({"ok": false, "error": reason}),
        Err(_) => json!({"ok": false, "error": "the database did not answer within 2 s"}),
    };
    let identity = match &probes.auth {
        Some(auth) => auth.status().await,
        None => json!({"mode": "header", "ok": true}),
    };
    let limits = match &probes.throttle {
        Some(t) => t.status().await,
        None => json!({"enabled": false}),
    };
    let embedder = probes.app.embeddings.embedder();
    let circuit = embedder.circuit_state();
    let embedding = json!({
        "provider": embedder.kind(),
        "model": embedder.model_id(),
        "ok": circuit.is_none_or(|c| c == crate::embed::breaker::Circuit::Closed),
        "circuit": circuit.map(|c| c.name()),
    });
    let draining = probes.draining.is_cancelled();
    let reason = if draining {
        Some("shutting down".to_owned())
    } else if database["ok"] != json!(true) {
        database["error"].as_str().map(str::to_owned)
    } else if identity["ok"] != json!(true) {
        Some("the identity provider's keys are not loaded".to_owned())
    } else {
        None
    };
    let mut body = json!({
        "status": if reason.is_none() { "ready" } else { "not ready" },
        "database": database,
        "embedding": embedding,
        "identity": identity,
        "limits": limits,
        "draining": draining,
    });
    if let Some(v) = body["database"].get("schema_version").cloned() {
        body["schema_version"] = v;
    }
    let status = match reason {
        None => StatusCode::OK,
        Some(reason) => {
            body["reason"] = Value::String(reason);
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (status, Json(body))
}

/// One round trip as the query role, and the schema version it reads.
async fn database(app: &App) -> Result<i32, String> {
    let client = app.db.pool().get().await.map_err(|e| format!("database unreachable: {e}"))?;
    let version: i32 = client
        .query_one("SELECT zava_private.schema_version()", &[])
        .await
        .map_err(|e| format!("cannot read the schema version: {e}"))?
        .get(0);
    let expected = migrate::latest_version();
    if version != expected {
        return Err(format!("schema version {version}, expected {expected}: run `zava-mcp db init`"));
    }
    Ok(version)
}
