//! `zava-mcp embed-server`: the local model behind an OpenAI-compatible HTTP API.
//!
//! It exists so several zava-mcp replicas can share one model process (each configured with
//! `--embedding-provider openai --openai-base-url http://host:11435/v1`), and so the remote providers can be
//! tested against a real server. It answers `POST /v1/embeddings` in OpenAI's request and response shapes
//! (`input` as a string or an array of strings, `encoding_format` float or base64, `usage`, errors as
//! `{"error": {"message", "type", "code"}}`), the same on Azure OpenAI's route
//! `POST /openai/deployments/{deployment}/embeddings?api-version=…`, and `GET /v1/models`. With an API key
//! set, requests must carry it as `Authorization: Bearer` or `api-key`. Inference runs on the blocking pool,
//! at most one batch per CPU at a time.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::local::LocalModel;
use super::provider::Embedder;
use super::settings::{ModelName, Secret};
use super::wire::{ApiError, EmbeddingItem, EmbeddingList, EncodingFormat, ErrorDetail, Usage, Vector};

/// The default address: loopback only, next to Ollama's 11434.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:11435";
/// OpenAI's limit on inputs per request.
pub const MAX_INPUTS: usize = 2048;
/// Texts run through the model at once: larger batches pad more and need much more memory.
const MODEL_BATCH: usize = 32;

#[derive(Debug, Clone)]
pub struct EmbedServerSettings {
    pub addr: SocketAddr,
    /// Required from every caller when set.
    pub api_key: Option<Secret>,
    /// The model name callers ask for (and the Azure deployment name); default: the model directory's name.
    pub model_name: Option<ModelName>,
    pub max_body_bytes: usize,
}

impl EmbedServerSettings {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, api_key: None, model_name: None, max_body_bytes: 16 * 1024 * 1024 }
    }
}

struct Served {
    model: Arc<LocalModel>,
    /// What callers call it: `all-MiniLM-L6-v2`; the full id `sentence-transformers/all-MiniLM-L6-v2` works too.
    name: String,
    /// SHA-256 of the API key: comparing digests takes the same time wherever the keys differ.
    key_digest: Option<[u8; 32]>,
    inference: Semaphore,
}

/// Which of the two APIs a request came through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    OpenAi,
    Azure,
}

/// The routes, serving `embedder`'s local model.
pub fn router(embedder: &Embedder, settings: &EmbedServerSettings) -> Result<Router> {
    let Some(model) = embedder.local_model() else {
        bail!("the embed server serves the local model; run it with --embedding-provider local");
    };
    let default_name = model.model_id().rsplit('/').next().unwrap_or(model.model_id()).to_owned();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let served = Arc::new(Served {
        model: model.clone(),
        name: settings.model_name.as_ref().map_or(default_name, |n| n.as_str().to_owned()),
        key_digest: settings.api_key.as_ref().map(|k| Sha256::digest(k.expose().as_bytes()).into()),
        inference: Semaphore::new(cpus),
    });
    Ok(Router::new()
        .route("/v1/embeddings", post(openai))
        .route("/openai/deployments/{deployment}/embeddings", post(azure))
        .route("/v1/models", get(models))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .fallback(unknown)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .with_state(served))
}

/// Binds `settings.addr` and serves until `shutdown` is cancelled; the bound address goes to `on_bound`.
pub async fn serve(
    embedder: &Embedder,
    settings: &EmbedServerSettings,
    shutdown: CancellationToken,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<()> {
    let router = router(embedder, settings)?;
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .with_context(|| format!("cannot listen on {}", settings.addr))?;
    on_bound(listener.local_addr()?);
    axum::serve(listener, router).with_graceful_shutdown(async move { shutdown.cancelled().await }).await?;
    Ok(())
}

/// A refused request, answered in OpenAI's error shape.
struct Refusal {
    status: StatusCode,
    message: String,
    code: &'static str,
}

fn error(status: StatusCode, message: impl Into<String>, code: &'static str) -> Refusal {
    Refusal { status, message: message.into(), code }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let kind = if self.status.is_server_error() { "server_error" } else { "invalid_request_error" };
        let detail =
            ErrorDetail { message: self.message, kind: Some(kind.into()), param: None, code: Some(self.code.into()) };
        (self.status, Json(ApiError { error: detail })).into_response()
    }
}

async fn openai(
    State(served): State<Arc<Served>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    served.authorise(&headers)?;
    served.answer(Route::OpenAi, body).await
}

async fn azure(
    State(served): State<Arc<Served>>,
    Path(deployment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Refusal> {
    let has_version =
        query.unwrap_or_default().split('&').any(|p| p.strip_prefix("api-version=").is_some_and(|v| !v.is_empty()));
    if !has_version {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Missing the api-version query parameter, e.g. ?api-version=2024-02-01",
            "missing_api_version",
        ));
    }
    served.authorise(&headers)?;
    if !served.knows(&deployment) {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("The API deployment `{deployment}` does not exist; this server has `{}`", served.name),
            "DeploymentNotFound",
        ));
    }
    served.answer(Route::Azure, body).await
}

async fn models(State(served): State<Arc<Served>>, headers: HeaderMap) -> Result<Response, Refusal> {
    served.authorise(&headers)?;
    let list = json!({"object": "list", "data": [{"id": served.name, "object": "model", "owned_by": "zava-mcp"}]});
    Ok(Json(list).into_response())
}

async fn unknown(method: Method, uri: Uri) -> Refusal {
    error(StatusCode::NOT_FOUND, format!("Unknown request URL: {method} {}", uri.path()), "unknown_url")
}

/// A parsed, valid request.
struct Request {
    texts: Vec<String>,
    format: EncodingFormat,
}

impl Served {
    fn knows(&self, model: &str) -> bool {
        model == self.name || model == self.model.model_id()
    }

    fn authorise(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let Some(expected) = &self.key_digest else { return Ok(()) };
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let given = header("authorization").and_then(|v| v.strip_prefix("Bearer ")).or_else(|| header("api-key"));
        match given {
            None => Err(error(
                StatusCode::UNAUTHORIZED,
                "You didn't provide an API key: send it as `Authorization: Bearer <key>` or `api-key: <key>`",
                "missing_api_key",
            )),
            Some(key) if Sha256::digest(key.trim().as_bytes()).as_slice() == expected => Ok(()),
            Some(_) => Err(error(StatusCode::UNAUTHORIZED, "Incorrect API key provided", "invalid_api_key")),
        }
    }

    /// Embeds the texts of an authorised request.
    async fn answer(&self, route: Route, body: Result<Bytes, BytesRejection>) -> Result<Response, Refusal> {
        let body = body.map_err(|r| error(r.status(), r.body_text(), "invalid_body"))?;
        let request = self.parse(route, &body)?;
        let _turn = self
            .inference
            .acquire()
            .await
            .map_err(|_| error(StatusCode::SERVICE_UNAVAILABLE, "shutting down", "unavailable"))?;
        let model = self.model.clone();
        let texts = request.texts;
        let (tokens, vectors) = tokio::task::spawn_blocking(move || -> Result<(usize, Vec<Vec<f32>>)> {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let tokens = model.count_tokens(&refs)?.iter().sum();
            let mut vectors = Vec::with_capacity(refs.len());
            for chunk in refs.chunks(MODEL_BATCH) {
                vectors.extend(model.embed_batch(chunk)?);
            }
            Ok((tokens, vectors))
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r)
        .map_err(|e| {
            tracing::error!(error = %format!("{e:#}"), "embedding failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, format!("The model failed: {e:#}"), "model_error")
        })?;
        let data = vectors
            .into_iter()
            .enumerate()
            .map(|(index, v)| EmbeddingItem {
                object: "embedding".into(),
                index,
                embedding: Vector::encode(v, request.format),
            })
            .collect();
        let usage = Usage { prompt_tokens: tokens, total_tokens: tokens };
        Ok(Json(EmbeddingList { object: "list".into(), data, model: self.name.clone(), usage }).into_response())
    }

    /// Reads the JSON body the way OpenAI does, refusing what this server cannot do with a 400 that says why.
    fn parse(&self, route: Route, body: &[u8]) -> Result<Request, Refusal> {
        let bad = |message: String| error(StatusCode::BAD_REQUEST, message, "invalid_request");
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| bad(format!("We could not parse the JSON body of your request ({e})")))?;
        let Value::Object(fields) = value else {
            return Err(bad("The request body must be a JSON object".into()));
        };
        match (route, fields.get("model")) {
            (Route::OpenAi, None) => return Err(bad("You must provide a model parameter".into())),
            (_, Some(Value::String(m))) if route == Route::Azure || self.knows(m) => {}
            (Route::Azure, None) => {}
            (_, Some(Value::String(m))) => {
                return Err(error(
                    StatusCode::NOT_FOUND,
                    format!("The model `{m}` does not exist; this server has `{}`", self.name),
                    "model_not_found",
                ));
            }
            (_, Some(_)) => return Err(bad("'model' must be a string".into())),
        }
        let texts = match fields.get("input") {
            None => return Err(bad("'input' is a required property".into())),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) if items.is_empty() => return Err(bad("'input' is an empty array".into())),
            Some(Value::Array(items)) if items.len() > MAX_INPUTS => {
                return Err(bad(format!("'input' has {} items; at most {MAX_INPUTS} per request", items.len())));
            }
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(_) | Value::Array(_) => Err(bad("token arrays are not supported: send text".into())),
                    _ => Err(bad("'input' must be a string or an array of strings".into())),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("'input' must be a string or an array of strings".into())),
        };
        if let Some(i) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(bad(format!("'input[{i}]' is empty: an empty text has no embedding")));
        }
        let format = match fields.get("encoding_format") {
            None | Some(Value::Null) => EncodingFormat::Float,
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| bad(format!("'encoding_format' must be \"float\" or \"base64\", not {v}")))?,
        };
        match fields.get("dimensions") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64() == Some(self.model.dimension() as u64) => {}
            Some(v) => {
                return Err(bad(format!(
                    "'dimensions' is {v}, but this model makes {}-dimensional vectors and cannot shorten them",
                    self.model.dimension()
                )));
            }
        }
        Ok(Request { texts, format })
    }
}
