//! What surrounds the real embed server in these tests: a spawner for axum apps on port 0, a front that injects
//! faults before forwarding to the embed server, and a Microsoft Entra ID token endpoint (the only part that
//! cannot run here for real).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A server running on its own task until stopped (or dropped).
pub struct Spawned {
    pub addr: SocketAddr,
    pub url: String,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Spawned {
    /// Stops the server and waits until its port is closed.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn(router: Router, addr: SocketAddr) -> Spawned {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled().await }).await.unwrap();
    });
    Spawned { addr, url: format!("http://{addr}"), shutdown, task: Some(task) }
}

/// A scripted answer the front gives instead of forwarding.
pub struct Fault {
    pub status: u16,
    pub headers: Vec<(&'static str, &'static str)>,
}

/// Answers the scripted faults in order, then forwards every request to `upstream`; counts requests.
pub struct Front {
    pub server: Spawned,
    pub requests: Arc<AtomicUsize>,
}

struct FrontState {
    upstream: String,
    faults: Mutex<VecDeque<Fault>>,
    requests: Arc<AtomicUsize>,
    http: reqwest::Client,
}

pub async fn front(upstream: &str, faults: Vec<Fault>) -> Front {
    let requests = Arc::new(AtomicUsize::new(0));
    let state = Arc::new(FrontState {
        upstream: upstream.to_owned(),
        faults: Mutex::new(faults.into()),
        requests: requests.clone(),
        http: crate::harness::http_client(),
    });
    let router = Router::new().fallback(forward).with_state(state);
    Front { server: spawn(router, "127.0.0.1:0".parse().unwrap()).await, requests }
}

async fn forward(State(s): State<Arc<FrontState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let fault = s.faults.lock().unwrap().pop_front();
    if let Some(f) = fault {
        let mut response = (
            StatusCode::from_u16(f.status).unwrap(),
            Json(json!({"error": {"message": format!("injected {}", f.status), "type": "server_error"}})),
        )
            .into_response();
        for (k, v) in f.headers {
            response.headers_mut().insert(k, v.parse().unwrap());
        }
        return response;
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = s.http.post(format!("{}{path}", s.upstream)).body(body);
    for name in ["content-type", "authorization", "api-key"] {
        if let Some(v) = headers.get(name) {
            request = request.header(name, v.clone());
        }
    }
    let answer = request.send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    (status, [("content-type", "application/json")], answer.bytes().await.unwrap()).into_response()
}

/// A Microsoft Entra ID token endpoint for one app registration: `POST /{tenant}/oauth2/v2.0/token` with the
/// client-credentials grant answers `token`, valid for `expires_in` seconds; anything else gets Entra's errors.
pub struct TokenEndpoint {
    pub server: Spawned,
    pub requests: Arc<AtomicUsize>,
}

struct Registration {
    tenant: String,
    client_id: String,
    client_secret: String,
    token: String,
    expires_in: u64,
    requests: Arc<AtomicUsize>,
}

pub async fn token_endpoint(
    tenant: &str,
    client_id: &str,
    client_secret: &str,
    token: &str,
    expires_in: u64,
) -> TokenEndpoint {
    let requests = Arc::new(AtomicUsize::new(0));
    let registration = Arc::new(Registration {
        tenant: tenant.into(),
        client_id: client_id.into(),
        client_secret: client_secret.into(),
        token: token.into(),
        expires_in,
        requests: requests.clone(),
    });
    let router =
        Router::new().route("/{tenant}/oauth2/v2.0/token", axum::routing::post(issue)).with_state(registration);
    TokenEndpoint { server: spawn(router, "127.0.0.1:0".parse().unwrap()).await, requests }
}

async fn issue(
    State(r): State<Arc<Registration>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    r.requests.fetch_add(1, Ordering::SeqCst);
    let field = |k: &str| form.get(k).map(String::as_str);
    let refuse = |status: StatusCode, error: &str, description: &str| {
        (status, Json(json!({"error": error, "error_description": description}))).into_response()
    };
    if tenant != r.tenant {
        return refuse(StatusCode::BAD_REQUEST, "invalid_tenant", "AADSTS90002: Tenant not found.");
    }
    if field("grant_type") != Some("client_credentials")
        || field("scope") != Some("https://cognitiveservices.azure.com/.default")
    {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request", "AADSTS900144: bad grant_type or scope.");
    }
    if field("client_id") != Some(&r.client_id) || field("client_secret") != Some(&r.client_secret) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
    }
    Json(json!({"token_type": "Bearer", "expires_in": r.expires_in, "ext_expires_in": r.expires_in, "access_token": r.token}))
        .into_response()
}
