//! A local identity provider for the bearer-token tests: OpenID Connect discovery and a JWKS over real HTTP,
//! with the test keys of `tests/fixtures/jwt`; it can rotate its keys, go down, and count the fetches. Tokens
//! are minted with jsonwebtoken, the same standard library a provider's SDK would use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};
use tokio::sync::RwLock;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt");

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

fn jwks(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

struct Shared {
    issuer: String,
    jwks: RwLock<Value>,
    down: AtomicBool,
    fetches: AtomicUsize,
}

#[derive(Clone)]
pub struct Idp {
    shared: Arc<Shared>,
}

impl Idp {
    pub async fn start() -> Idp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}/tenant-1/v2.0"),
            jwks: RwLock::new(jwks("jwks.json")),
            down: AtomicBool::new(false),
            fetches: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/tenant-1/v2.0/.well-known/openid-configuration", get(discovery))
            .route("/keys", get(keys))
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Idp { shared }
    }

    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    pub fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }

    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Publishes the next key set (rsa-2) beside the current one.
    pub async fn rotate(&self) {
        let mut keys = jwks("jwks.json")["keys"].as_array().unwrap().clone();
        keys.extend(jwks("jwks-next.json")["keys"].as_array().unwrap().iter().cloned());
        *self.shared.jwks.write().await = json!({"keys": keys});
    }
}

async fn discovery(State(s): State<Arc<Shared>>) -> Json<Value> {
    let base = s.issuer.split("/tenant-1").next().unwrap().to_owned();
    Json(json!({"issuer": s.issuer, "jwks_uri": format!("{base}/keys"),
        "authorization_endpoint": format!("{base}/authorize"), "token_endpoint": format!("{base}/token")}))
}

async fn keys(State(s): State<Arc<Shared>>) -> Response {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    if s.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    Json(s.jwks.read().await.clone()).into_response()
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A token's parts, valid by default for `issuer` and `audience`, changed by the test.
pub struct Mint {
    pub header: Header,
    pub claims: Map<String, Value>,
    pub key: EncodingKey,
}

impl Mint {
    pub fn rs256(issuer: &str, audience: &str) -> Mint {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-1".into());
        let now = now();
        let claims = json!({"iss": issuer, "aud": audience, "sub": "user-1", "iat": now, "nbf": now - 5,
            "exp": now + 600, "scope": "sales:read products:read"});
        Mint {
            header,
            claims: claims.as_object().unwrap().clone(),
            key: EncodingKey::from_rsa_pem(&fixture("rsa.pem")).unwrap(),
        }
    }

    pub fn claim(mut self, name: &str, value: Value) -> Mint {
        if value.is_null() {
            self.claims.remove(name);
        } else {
            self.claims.insert(name.into(), value);
        }
        self
    }

    pub fn sign(&self) -> String {
        jsonwebtoken::encode(&self.header, &self.claims, &self.key).unwrap()
    }
}
