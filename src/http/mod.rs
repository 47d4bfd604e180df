//! The HTTP face: Streamable HTTP at `/mcp` (stateless, so replicas need no session affinity) and health
//! probes, served by our own accept loop (`listen`: header read timeout, head size cap, TCP_NODELAY).
//! `hygiene` checks every request before rmcp does: exact Host and Origin allow-lists, repeated headers,
//! framing, body size and read timeout, JSON-RPC shape, `MCP-Protocol-Version`; rmcp's own Host, Origin and
//! body-size checks stay on behind it for the requests `direct` leaves to rmcp. `authority` parses what those checks compare. CORS is off unless
//! configured (no browser page needs to call this server directly).

mod authority;
mod direct;
mod hygiene;
mod listen;
mod ops;
mod starting;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::audit::AuditLog;
use crate::auth::Authenticator;
use crate::mcp::server::{IdentitySource, ZavaServer};
use crate::throttle::Throttle;
use authority::{AllowedHosts, AllowedOrigins};
pub use direct::CallLane;
pub use ops::MetricsListener;
pub use starting::Starting;

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    /// `Host` values accepted (DNS-rebinding protection). An entry with a port matches exactly that
    /// `host:port`; one without matches the host with no port or with the port the server listens on.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted, `scheme://host[:port]` compared exactly (`:*` explicitly allows any port;
    /// `null` allows `Origin: null`). Empty means the loopback origins on the server's own port.
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    /// Browser origins allowed to call the server cross-origin (CORS); none by default. Each is also accepted
    /// as an origin.
    pub cors_origins: Vec<String>,
    /// How long a client may take to send a request's head (request line and headers); then the connection is
    /// closed.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body; then it gets 408 and the connection is closed.
    pub body_read_timeout: Duration,
    /// Largest request head (request line and headers) accepted; a larger one gets 431.
    pub max_header_bytes: usize,
    /// Bearer tokens required (`--identity jwt`); `None`: the `x-rls-user-id` header is trusted (loopback
    /// development).
    pub auth: Option<Arc<Authenticator>>,
    /// Per-caller limits on tool calls (`throttle`); `None`: unlimited.
    pub throttle: Option<Arc<Throttle>>,
    /// Where each tool call's record goes (`audit`); `None`: no records.
    pub audit: Option<Arc<AuditLog>>,
    /// Where `/metrics` is served.
    pub metrics: MetricsListener,
    /// How long a shutdown waits for the calls in flight to finish before cancelling them (in PostgreSQL too).
    pub drain_timeout: Duration,
    /// Who answers plain stateless `tools/call` requests (`direct`).
    pub call_lane: CallLane,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            allowed_hosts: ["localhost", "127.0.0.1", "[::1]"].map(String::from).to_vec(),
            allowed_origins: vec![],
            max_body_bytes: 1024 * 1024,
            cors_origins: vec![],
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_header_bytes: 32 * 1024,
            auth: None,
            throttle: None,
            audit: None,
            metrics: MetricsListener::Same,
            drain_timeout: Duration::from_secs(10),
            call_lane: CallLane::Direct,
        }
    }
}

/// The routes for a server listening on `port` (which portless allowed hosts and the default origins name).
/// `draining` is cancelled when a shutdown starts (readiness fails from then on); `calls` when the calls still in
/// flight must be cancelled.
pub(crate) fn router(
    app: Arc<App>,
    settings: &HttpSettings,
    port: u16,
    draining: CancellationToken,
    calls: CancellationToken,
) -> Result<Router> {
    let policy = Arc::new(hygiene::Policy {
        hosts: AllowedHosts::new(&settings.allowed_hosts, port).map_err(anyhow::Error::msg)?,
        origins: AllowedOrigins::new(&settings.allowed_origins, &settings.cors_origins, port)
            .map_err(anyhow::Error::msg)?,
        max_body_bytes: settings.max_body_bytes,
        body_read_timeout: settings.body_read_timeout,
    });
    // rmcp's checks, kept as a second layer: everything the policy allows passes them too.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(settings.allowed_hosts.clone())
        .with_allowed_origins(policy.origins.raw().to_vec())
        .enforce_origin_validation()
        .with_max_request_body_bytes(settings.max_body_bytes)
        .with_cancellation_token(calls.clone());
    let identity = match &settings.auth {
        Some(auth) => IdentitySource::Token(auth.tool_scopes.clone()),
        None => IdentitySource::Header,
    };
    let handler = ZavaServer::new(app.clone(), identity).with_audit(settings.audit.clone());
    let for_rmcp = handler.clone();
    let rmcp = Arc::new(StreamableHttpService::new(
        move || Ok(for_rmcp.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    ));
    // axum clones a route's service for every request: behind an Arc that is a count, not a copy of rmcp's
    // settings (its host and origin lists) and our handler.
    let mcp = tower::service_fn(move |req: axum::extract::Request| {
        let rmcp = rmcp.clone();
        async move { Ok::<_, std::convert::Infallible>(rmcp.handle(req).await) }
    });
    // Layers run outermost first: hygiene (which reads the body and notes the tool called), then identity, then
    // the caller's limits, then the direct lane for plain tool calls.
    let mut mcp = Router::new().nest_service("/mcp", mcp);
    if settings.call_lane == CallLane::Direct {
        let lane = Arc::new(direct::Lane { server: handler, calls });
        mcp = mcp.layer(axum::middleware::from_fn_with_state(lane, direct::answer));
    }
    if let Some(throttle) = &settings.throttle {
        let limits = crate::throttle::http::Limits {
            throttle: throttle.clone(),
            audit: settings.audit.clone(),
            directory: Arc::new(app.directory.clone()),
        };
        mcp = mcp.layer(axum::middleware::from_fn_with_state(limits, crate::throttle::http::limit_calls));
    }
    let mcp = match &settings.auth {
        Some(auth) => mcp.layer(axum::middleware::from_fn_with_state(auth.clone(), crate::auth::http::require_token)),
        None => mcp.layer(axum::middleware::from_fn(crate::auth::http::refuse_tokens)),
    };
    let probes = ops::Probes { app, auth: settings.auth.clone(), throttle: settings.throttle.clone(), draining };
    let mut router = mcp
        .layer(axum::middleware::from_fn_with_state(policy, hygiene::guard_mcp))
        .merge(ops::routes(probes, settings.metrics == MetricsListener::Same));
    if let Some(auth) = &settings.auth {
        for path in auth.resource.metadata_paths() {
            let metadata = Router::new()
                .route(&path, axum::routing::get(crate::auth::http::resource_metadata))
                .with_state(auth.clone());
            router = router.merge(metadata);
        }
    }
    let router = router.layer(axum::middleware::from_fn(hygiene::check_request));
    Ok(match cors(&settings.cors_origins) {
        Some(layer) => router.layer(layer),
        None => router,
    })
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
            .expose_headers([HeaderName::from_static("mcp-session-id"), HeaderName::from_static("www-authenticate")]),
    )
}

/// Binds `settings.addr` and serves until `shutdown` is cancelled. Returns the bound address through
/// `on_bound` (useful with port 0). See [`Server::serve`].
pub async fn serve(
    app: Arc<App>,
    settings: &HttpSettings,
    shutdown: CancellationToken,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<()> {
    Server::bind(settings, shutdown, Starting::default()).await?.serve(app, settings, on_bound).await
}

/// The listeners, bound before the server can serve: until [`Server::serve`] they answer as [`starting`] says
/// (live, not ready with the reason from `Starting`, 503 otherwise).
pub struct Server {
    bound: SocketAddr,
    mcp: (tokio::sync::watch::Sender<Router>, tokio::task::JoinHandle<()>),
    operator: Option<(tokio::sync::watch::Sender<Router>, tokio::task::JoinHandle<()>)>,
    shutdown: CancellationToken,
}

impl Server {
    /// Binds the MCP listener (and the operator's, with `--metrics ADDR`) and answers there until `serve`.
    pub async fn bind(settings: &HttpSettings, shutdown: CancellationToken, starting: Starting) -> Result<Server> {
        let limits = listen::ConnectionLimits {
            header_read_timeout: settings.header_read_timeout,
            max_header_bytes: settings.max_header_bytes,
        };
        let spawn = |listener: tokio::net::TcpListener| {
            let routes = starting::routes(starting.clone()).layer(axum::middleware::from_fn(hygiene::check_request));
            let (tx, rx) = tokio::sync::watch::channel(routes);
            (tx, tokio::spawn(listen::run(listener, rx, limits, shutdown.clone())))
        };
        let listener = tokio::net::TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.addr))?;
        let bound = listener.local_addr()?;
        let operator = match settings.metrics {
            MetricsListener::At(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} for /metrics"))?;
                tracing::info!("serving /metrics and the health probes on http://{}", listener.local_addr()?);
                Some(spawn(listener))
            }
            MetricsListener::Same | MetricsListener::Off => None,
        };
        Ok(Server { bound, mcp: spawn(listener), operator, shutdown })
    }

    /// The MCP listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.bound
    }

    /// Stops the listeners without having served (start-up failed or was interrupted).
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.mcp.1.await;
        if let Some((_, task)) = self.operator {
            let _ = task.await;
        }
    }

    /// Serves `app` until the shutdown token is cancelled, then drains: no new connection is accepted,
    /// `/health/ready` answers 503 on the open ones, the calls in flight have `drain_timeout` to finish, and those
    /// still running then are cancelled (their statements too, by `db::call`); it returns when every connection
    /// is closed.
    pub async fn serve(self, app: Arc<App>, settings: &HttpSettings, on_bound: impl FnOnce(SocketAddr)) -> Result<()> {
        let shutdown = self.shutdown.clone();
        if let Some((routes, _)) = &self.operator {
            let probes = ops::Probes {
                app: app.clone(),
                auth: settings.auth.clone(),
                throttle: settings.throttle.clone(),
                draining: shutdown.clone(),
            };
            let _ = routes.send(ops::routes(probes, true).layer(axum::middleware::from_fn(hygiene::check_request)));
        }
        let calls = CancellationToken::new();
        let _ = self.mcp.0.send(router(app, settings, self.bound.port(), shutdown.clone(), calls.clone())?);
        on_bound(self.bound);
        let deadline = settings.drain_timeout;
        let watchdog = {
            let (draining, calls) = (shutdown.clone(), calls.clone());
            tokio::spawn(async move {
                draining.cancelled().await;
                tracing::info!(
                    deadline_s = deadline.as_secs_f64(),
                    "draining: no new connections; calls in flight may finish"
                );
                tokio::time::sleep(deadline).await;
                tracing::warn!("the drain deadline passed: cancelling the calls still running");
                calls.cancel();
            })
        };
        let _ = self.mcp.1.await;
        watchdog.abort();
        calls.cancel();
        if let Some((_, operator)) = self.operator {
            let _ = operator.await;
        }
        Ok(())
    }
}
