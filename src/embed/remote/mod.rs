//! Embeddings from a remote service: OpenAI or any OpenAI-compatible server, and Azure OpenAI.
//!
//! A remote provider fails in ways the local model does not: it is unreachable, slow, rate-limited, or it
//! refuses the credentials. [`RemoteEmbedder`] sends texts in batches, gives each request a timeout, repeats
//! requests that failed for a passing reason (no connection, timeout, 429, 5xx) with backoff, and stops calling
//! a provider that keeps failing ([`Breaker`]) so searches fail at once with a message instead of waiting.
//! Every failure is an [`EmbedError`] that says what to do.

mod azure;
mod client;
mod entra;
mod openai;
mod retry;

use std::time::{Duration, Instant, SystemTime};

use reqwest::StatusCode;

pub use client::{http_client, install_tls_provider};

use self::retry::Backoff;
use super::breaker::Breaker;
use super::error::EmbedError;
use super::settings::{AzureSettings, OpenAiSettings, RemoteTuning};
use super::wire;

/// The text embedded once at startup to check the provider answers and learn the vectors' length.
const PROBE_TEXT: &str = "zava-mcp dimension probe";

/// Which dialect the provider speaks (boxed: the two differ a lot in size, and there is one per process).
#[derive(Debug)]
enum Api {
    OpenAi(Box<openai::OpenAi>),
    Azure(Box<azure::Azure>),
}

impl Api {
    fn endpoint(&self) -> String {
        match self {
            Api::OpenAi(a) => a.endpoint(),
            Api::Azure(a) => a.endpoint(),
        }
    }

    async fn request(&self, http: &reqwest::Client, texts: &[String]) -> Result<reqwest::RequestBuilder, EmbedError> {
        match self {
            Api::OpenAi(a) => Ok(a.request(http, texts)),
            Api::Azure(a) => a.request(http, texts).await,
        }
    }
}

/// A remote embedding model, checked at construction: it answered, and its vectors have [`Self::dimension`]
/// entries.
#[derive(Debug)]
pub struct RemoteEmbedder {
    api: Api,
    http: reqwest::Client,
    tuning: RemoteTuning,
    breaker: Breaker,
    model_id: String,
    dimension: usize,
}

/// A failed attempt: what went wrong, and when the provider asked to be called again.
struct Failure {
    error: EmbedError,
    retry_after: Option<Duration>,
}

impl From<EmbedError> for Failure {
    fn from(error: EmbedError) -> Self {
        Failure { error, retry_after: None }
    }
}

impl RemoteEmbedder {
    pub async fn openai(settings: &OpenAiSettings, tuning: &RemoteTuning) -> Result<Self, EmbedError> {
        let url = &settings.base_url;
        if settings.api_key.is_some() && url.url().scheme() == "http" && !url.is_loopback() {
            tracing::warn!(%url, "OPENAI_API_KEY is sent over plain http: anyone on the network path can read it");
        }
        let api = openai::OpenAi::new(settings);
        let requested = api.requested_dimensions();
        let model_id = api.model_id();
        let embedder = Self::connect(Api::OpenAi(Box::new(api)), model_id, tuning).await?;
        match requested {
            Some(d) if d as usize != embedder.dimension => Err(EmbedError::InvalidResponse {
                endpoint: embedder.api.endpoint(),
                detail: format!(
                    "asked for {d} dimensions (ZAVA_EMBEDDING_DIMENSIONS) and got {}: this model cannot shorten its \
                     vectors; leave the setting out",
                    embedder.dimension
                ),
            }),
            _ => Ok(embedder),
        }
    }

    pub async fn azure(settings: &AzureSettings, tuning: &RemoteTuning) -> Result<Self, EmbedError> {
        let api = azure::Azure::new(settings);
        let model_id = api.model_id();
        Self::connect(Api::Azure(Box::new(api)), model_id, tuning).await
    }

    /// Embeds one probe text, so a provider that is down or misconfigured stops the process at startup.
    async fn connect(api: Api, model_id: String, tuning: &RemoteTuning) -> Result<Self, EmbedError> {
        let http = client::http_client(tuning.timeout).map_err(|e| EmbedError::Unreachable {
            endpoint: api.endpoint(),
            detail: format!("cannot set up an HTTP client: {}", cause(&e)),
        })?;
        let breaker = Breaker::new(tuning.breaker);
        let mut embedder = Self { api, http, tuning: *tuning, breaker, model_id, dimension: 0 };
        let probe = embedder.embed_batch(&[PROBE_TEXT.to_owned()], None).await?;
        embedder.dimension = probe[0].len();
        tracing::info!(model = %embedder.model_id, dimension = embedder.dimension, endpoint = %embedder.api.endpoint(), "embedding provider answered");
        Ok(embedder)
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// One unit-length vector per text, in order, requested in batches of at most `batch_size` texts.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.tuning.batch_size.max(1)) {
            vectors.extend(self.embed_batch(batch, Some(self.dimension)).await?);
        }
        Ok(vectors)
    }

    /// The circuit breaker's state now.
    pub fn circuit(&self) -> super::breaker::Circuit {
        self.breaker.circuit(Instant::now())
    }

    /// One request's worth of texts, through the breaker, with retries.
    async fn embed_batch(&self, texts: &[String], dimension: Option<usize>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ticket = self.breaker.admit(Instant::now()).map_err(|refusal| EmbedError::CircuitOpen {
            endpoint: self.api.endpoint(),
            failures: refusal.failures,
            retry_in: refusal.retry_in,
        })?;
        let result = self.with_retries(texts, dimension).await;
        match &result {
            Err(e) if e.is_transient() => {
                ticket.failed(Instant::now());
                if self.breaker.is_open(Instant::now()) {
                    tracing::warn!(endpoint = %self.api.endpoint(), cool_down_s = self.tuning.breaker.cool_down.as_secs_f64(), error = %e, "embedding provider keeps failing: calls fail fast for a while");
                }
            }
            _ => ticket.succeeded(Instant::now()),
        }
        result
    }

    async fn with_retries(&self, texts: &[String], dimension: Option<usize>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let backoff = Backoff { base: self.tuning.base_backoff, max: self.tuning.max_backoff };
        let mut retry = 0;
        loop {
            let failure = match self.attempt(texts, dimension).await {
                Ok(vectors) => return Ok(vectors),
                Err(failure) => failure,
            };
            let attempts = retry + 1;
            if !failure.error.is_transient() || retry >= self.tuning.max_retries {
                return Err(match failure.error {
                    EmbedError::Unreachable { endpoint, detail } if attempts > 1 => {
                        EmbedError::Unreachable { endpoint, detail: format!("{detail}; tried {attempts} times") }
                    }
                    e => e,
                });
            }
            let wait = match failure.retry_after {
                Some(asked) if asked > self.tuning.max_backoff => return Err(failure.error),
                Some(asked) => asked,
                None => backoff.delay(retry),
            };
            tracing::debug!(retry = attempts, wait_ms = wait.as_millis() as u64, error = %failure.error, "retrying the embedding request");
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    /// One HTTP request and the reading of its answer.
    async fn attempt(&self, texts: &[String], dimension: Option<usize>) -> Result<Vec<Vec<f32>>, Failure> {
        let endpoint = || self.api.endpoint();
        let unreachable = |e: reqwest::Error| {
            let detail = if e.is_timeout() {
                format!("no answer within {} s", self.tuning.timeout.as_secs_f64())
            } else {
                cause(&e)
            };
            Failure::from(EmbedError::Unreachable { endpoint: endpoint(), detail })
        };
        let response = self.api.request(&self.http, texts).await?.send().await.map_err(unreachable)?;
        let status = response.status();
        let retry_after = retry::retry_after(response.headers(), SystemTime::now());
        let body = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return wire::parse_embeddings(&body, texts.len(), dimension)
                .map_err(|detail| EmbedError::InvalidResponse { endpoint: endpoint(), detail }.into());
        }
        let message = wire::error_message(&body);
        let (endpoint, code) = (endpoint(), status.as_u16());
        let error = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                if let Api::Azure(a) = &self.api {
                    a.refused().await;
                }
                let credential = match &self.api {
                    Api::OpenAi(a) => a.credential(),
                    Api::Azure(a) => a.credential(),
                };
                EmbedError::Refused { endpoint, credential, status: code, message }
            }
            StatusCode::NOT_FOUND => {
                let what = match &self.api {
                    Api::OpenAi(a) => a.missing(),
                    Api::Azure(a) => a.missing(),
                };
                EmbedError::NotFound { endpoint, what, status: code, message }
            }
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                EmbedError::Unavailable { endpoint, status: code, message }
            }
            s if s.is_server_error() => EmbedError::Unavailable { endpoint, status: code, message },
            _ => EmbedError::Rejected { endpoint, status: code, message },
        };
        Err(Failure { error, retry_after })
    }
}

/// The innermost cause of an HTTP error ("Connection refused (os error 111)"), which says more than reqwest's
/// own "error sending request".
fn cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    let inner = source.to_string();
    if e.is_connect() && !inner.to_lowercase().contains("connect") { format!("cannot connect: {inner}") } else { inner }
}
