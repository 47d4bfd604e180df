//! The embedding provider the server is configured with, behind one interface, plus the query cache.
//!
//! Local inference is CPU-bound and blocking, so it runs on the blocking thread pool, never on the async
//! runtime's workers. Query embeddings are cached in process, keyed by model and text: repeated searches (the
//! same question from several stores, a model retrying) skip inference entirely.

use std::sync::Arc;

use anyhow::{Context, Result};
use moka::future::Cache;

use super::local::LocalModel;

/// Which embedding implementation to use.
#[derive(Clone)]
pub enum Embedder {
    /// A sentence-transformers model run in process with candle (the default; works offline).
    Local(Arc<LocalModel>),
}

impl Embedder {
    /// Loads the local model from `dir` (default: where `scripts/setup.sh` installs all-MiniLM-L6-v2).
    pub fn local(dir: Option<&std::path::Path>) -> Result<Self> {
        let dir = dir.map(std::path::Path::to_path_buf).unwrap_or_else(LocalModel::default_dir);
        Ok(Embedder::Local(Arc::new(LocalModel::load(&dir)?)))
    }

    pub fn model_id(&self) -> &str {
        match self {
            Embedder::Local(m) => m.model_id(),
        }
    }

    pub fn dimension(&self) -> usize {
        match self {
            Embedder::Local(m) => m.dimension(),
        }
    }

    /// Embeds a batch of texts without blocking the async runtime.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        match self {
            Embedder::Local(m) => {
                let m = m.clone();
                tokio::task::spawn_blocking(move || {
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    m.embed_batch(&refs)
                })
                .await
                .context("the embedding task failed")?
            }
        }
    }
}

/// Query embeddings with an in-process cache.
#[derive(Clone)]
pub struct QueryEmbedder {
    embedder: Embedder,
    cache: Cache<(String, String), Arc<Vec<f32>>>,
}

impl QueryEmbedder {
    pub fn new(embedder: Embedder, max_entries: u64) -> Self {
        Self { embedder, cache: Cache::builder().max_capacity(max_entries).build() }
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// The embedding of one query text, from the cache when it was seen before.
    pub async fn embed(&self, text: &str) -> Result<Arc<Vec<f32>>> {
        let key = (self.embedder.model_id().to_owned(), text.to_owned());
        if let Some(v) = self.cache.get(&key).await {
            return Ok(v);
        }
        let mut vectors = self.embedder.embed(vec![text.to_owned()]).await?;
        let v = Arc::new(vectors.pop().context("the model returned no embedding")?);
        self.cache.insert(key, v.clone()).await;
        Ok(v)
    }
}
