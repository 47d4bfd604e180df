//! The HTTP face: Streamable HTTP at `/mcp` (stateless, so replicas need no session affinity) and health
//! probes. Host and Origin validation, the body limit and `MCP-Protocol-Version` checks are rmcp's, configured
//! here; CORS is off (no browser page needs to call this server directly).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::Request;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use rmcp::model::ProtocolVersion;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::db::migrate;
use crate::mcp::server::{IdentitySource, ZavaServer};

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    /// `Host` header values accepted (DNS-rebinding protection); loopback names by default.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted; empty means requests carrying any `Origin` header are refused.
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    /// Browser origins allowed to call the server cross-origin (CORS); none by default.
    pub cors_origins: Vec<String>,
}

pub fn router(app: Arc<App>, settings: &HttpSettings, shutdown: CancellationToken) -> Router {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(settings.allowed_hosts.clone())
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(shutdown);
    config = if settings.allowed_origins.is_empty() {
        config.enforce_origin_validation()
    } else {
        config.with_allowed_origins(settings.allowed_origins.clone())
    };
    let mcp_app = app.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(ZavaServer::new(mcp_app.clone(), IdentitySource::Header)),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let router = Router::new()
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn(check_protocol_version))
        .route("/health/live", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/health/ready", get(ready))
        .with_state(app);
    match cors(&settings.cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

/// CORS for the configured browser origins only; without any, no CORS headers are sent and browsers keep
/// pages of other origins from reading responses.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, HeaderValue, Method};
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()).collect();
    if origins.is_empty() {
        return None;
    }
    let headers = [
        "content-type",
        "accept",
        "authorization",
        "mcp-protocol-version",
        "mcp-session-id",
        "mcp-method",
        "mcp-name",
        "last-event-id",
        "x-rls-user-id",
    ]
    .map(HeaderName::from_static);
    Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers(headers)
            .expose_headers([HeaderName::from_static("mcp-session-id")]),
    )
}

/// Refuses a request naming an MCP protocol version this server does not speak (rmcp checks this only on
/// some paths). A request without the header is left to rmcp, which treats it as 2025-03-26.
async fn check_protocol_version(req: Request, next: Next) -> Response {
    for v in req.headers().get_all("mcp-protocol-version") {
        let known = v.to_str().is_ok_and(|v| ProtocolVersion::KNOWN_VERSIONS.iter().any(|k| k.as_str() == v));
        if !known {
            let supported: Vec<&str> = ProtocolVersion::KNOWN_VERSIONS.iter().map(|k| k.as_str()).collect();
            let message = format!("Bad Request: unsupported MCP-Protocol-Version; supported: {}", supported.join(", "));
            let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": message}});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    }
    next.run(req).await
}

/// Ready when the database answers as the query role and its schema is the one this binary expects.
async fn ready(State(app): State<Arc<App>>) -> impl IntoResponse {
    let check = async {
        let client = app.pool.get().await.map_err(|e| format!("database unreachable: {e}"))?;
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
    };
    match check.await {
        Ok(v) => (StatusCode::OK, Json(json!({"status": "ready", "schema_version": v}))),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not ready", "reason": reason}))),
    }
}

/// Binds `settings.addr` and serves until `shutdown` is cancelled. Returns the bound address through
/// `on_bound` (useful with port 0).
pub async fn serve(
    app: Arc<App>,
    settings: &HttpSettings,
    shutdown: CancellationToken,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.addr))?;
    on_bound(listener.local_addr()?);
    // Without TCP_NODELAY small SSE writes wait for delayed ACKs (~40 ms a call).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let router = router(app, settings, shutdown.clone());
    axum::serve(listener, router).with_graceful_shutdown(async move { shutdown.cancelled().await }).await?;
    Ok(())
}
