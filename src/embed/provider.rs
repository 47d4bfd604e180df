//! The embedding provider the server is configured with, behind one interface, plus the query cache.
//!
//! Local inference is CPU-bound and blocking, so it runs on the blocking thread pool, never on the async
//! runtime's workers. Query embeddings are cached in process, keyed by model and text: repeated searches (the
//! same question from several stores, a model retrying) skip inference entirely.

use std::sync::Arc;

use anyhow::{Context, Result};
use moka::future::Cache;

use super::batch::{BatchError, Batcher};
use super::error::EmbedError;
use super::local::LocalModel;
use super::remote::RemoteEmbedder;
use super::settings::{EmbeddingSettings, Precision, ProviderSettings};

/// Which embedding implementation to use.
#[derive(Clone)]
pub enum Embedder {
    /// A sentence-transformers model run in process with candle (the default; works offline).
    Local(Arc<LocalModel>),
    /// An OpenAI-compatible or Azure OpenAI service, with timeouts, retries and a circuit breaker.
    Remote(Arc<RemoteEmbedder>),
}

impl Embedder {
    /// Loads the local model from `dir` (default: where `scripts/setup.sh` installs all-MiniLM-L6-v2) in the
    /// default precision.
    pub fn local(dir: Option<&std::path::Path>) -> Result<Self> {
        Self::local_in(dir, Precision::Auto)
    }

    /// [`Embedder::local`] with the linear layers' arithmetic chosen.
    pub fn local_in(dir: Option<&std::path::Path>, precision: Precision) -> Result<Self> {
        let dir = dir.map(std::path::Path::to_path_buf).unwrap_or_else(LocalModel::default_dir);
        Ok(Embedder::Local(Arc::new(LocalModel::load_in(&dir, precision)?)))
    }

    /// The configured provider, ready to embed: the local model loaded, or a remote one that answered a probe
    /// (which is how its vectors' length is learnt). A provider that cannot be reached stops startup here.
    pub async fn from_settings(settings: &EmbeddingSettings) -> Result<Self> {
        let remote = match &settings.provider {
            ProviderSettings::Local { model_dir, precision } => {
                let (dir, precision) = (model_dir.clone(), *precision);
                return tokio::task::spawn_blocking(move || Embedder::local_in(dir.as_deref(), precision))
                    .await
                    .context("loading the embedding model failed")?;
            }
            ProviderSettings::OpenAi(s) => RemoteEmbedder::openai(s, &settings.remote).await,
            ProviderSettings::AzureOpenAi(s) => RemoteEmbedder::azure(s, &settings.remote).await,
        };
        let remote = remote.map_err(|e| {
            let hint = if e.is_transient() {
                "; start it, or choose another with --embedding-provider (ZAVA_EMBEDDING_PROVIDER)"
            } else {
                ""
            };
            anyhow::anyhow!("the configured embedding provider is not usable: {e}{hint}")
        })?;
        Ok(Embedder::Remote(Arc::new(remote)))
    }

    pub fn model_id(&self) -> &str {
        match self {
            Embedder::Local(m) => m.model_id(),
            Embedder::Remote(r) => r.model_id(),
        }
    }

    pub fn dimension(&self) -> usize {
        match self {
            Embedder::Local(m) => m.dimension(),
            Embedder::Remote(r) => r.dimension(),
        }
    }

    /// How many batches are worth running at once: one per free core for the local model; a few for a remote
    /// provider, whose batches mostly wait on the network.
    pub fn parallel_batches(&self) -> usize {
        match self {
            Embedder::Local(_) => super::local::parallel_batches(),
            Embedder::Remote(_) => 4,
        }
    }

    /// The remote provider's circuit breaker state; `None` for the local model, which has none.
    pub fn circuit_state(&self) -> Option<super::breaker::Circuit> {
        match self {
            Embedder::Local(_) => None,
            Embedder::Remote(r) => Some(r.circuit()),
        }
    }

    /// `local` or `remote`, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Embedder::Local(_) => "local",
            Embedder::Remote(_) => "remote",
        }
    }

    /// The in-process model, when that is the provider (`zava-mcp embed-server` serves it).
    pub fn local_model(&self) -> Option<&Arc<LocalModel>> {
        match self {
            Embedder::Local(m) => Some(m),
            Embedder::Remote(_) => None,
        }
    }

    /// Embeds a batch of texts without blocking the async runtime: one unit-length vector per text, in order.
    /// The error is an [`EmbedError`] (find it with [`EmbedError::in_chain`]).
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        self.try_embed(texts).await.map_err(anyhow::Error::new)
    }

    /// [`Embedder::embed`] with its error typed.
    pub async fn try_embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        match self {
            Embedder::Local(m) => {
                let m = m.clone();
                tokio::task::spawn_blocking(move || {
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    m.embed_batch(&refs)
                })
                .await
                .map_err(|e| EmbedError::Local(format!("the embedding task failed: {e}")))?
                .map_err(|e| EmbedError::Local(format!("{e:#}")))
            }
            Embedder::Remote(r) => r.embed(texts).await,
        }
    }
}

/// Query embeddings: cached in process, and batched with whatever other queries are waiting for the model.
#[derive(Clone)]
pub struct QueryEmbedder {
    embedder: Embedder,
    batcher: Batcher<EmbedError>,
    cache: Cache<(String, String), Arc<Vec<f32>>>,
}

impl QueryEmbedder {
    /// Must be called inside a tokio runtime (it starts the batching task).
    pub fn new(embedder: Embedder, max_entries: u64) -> Self {
        let model = embedder.clone();
        let in_flight = embedder.parallel_batches();
        let batcher = Batcher::spawn(
            move |texts| {
                let model = model.clone();
                async move {
                    let started = std::time::Instant::now();
                    let result = model.try_embed(texts).await;
                    crate::telemetry::series::embedding(model.kind(), result.is_ok(), started.elapsed());
                    result
                }
            },
            in_flight,
        );
        Self { embedder, batcher, cache: Cache::builder().max_capacity(max_entries).build() }
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// The embedding of one query text, from the cache when it was seen before. Concurrent requests for the same
    /// text share one computation.
    pub async fn embed(&self, text: &str) -> Result<Arc<Vec<f32>>> {
        let key = (self.embedder.model_id().to_owned(), text.to_owned());
        let computed = std::sync::atomic::AtomicBool::new(false);
        let found = self
            .cache
            .try_get_with(key, async {
                computed.store(true, std::sync::atomic::Ordering::Relaxed);
                self.batcher.embed(text.to_owned()).await.map(Arc::new)
            })
            .await;
        crate::telemetry::series::cache_lookup("query_embedding", !computed.into_inner());
        found.map_err(|e| match e.as_ref() {
            BatchError::Embed(inner) => anyhow::Error::new(inner.clone()),
            other => anyhow::anyhow!("{other}"),
        })
    }
}
