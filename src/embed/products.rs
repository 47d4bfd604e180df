//! Product description embeddings: computed for every product at seed time (batched, with progress), stored with
//! the model's name, in a vector column whose dimension follows the model.
//!
//! A product's vector blends two embeddings: its own text (name, type, category, description) and its type's
//! (type, category, and what the type is for), as `normalize(product + TYPE_BLEND * type)`. The type half carries
//! the everyday jobs the aisle serves; blending vectors rather than concatenating the texts keeps each product's
//! text short (embedding cost grows with length) and embeds each type's text once instead of once per product.
//! It also ranks better on `data/search_eval.toml` than the concatenated text did.

use std::collections::HashMap;

use anyhow::{Context, Result};
use futures_util::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use pgvector::Vector;

use super::provider::Embedder;
use crate::db::endpoint::Endpoint;

const BATCH: usize = 32;
/// The weight of the type's embedding in each product's vector (best measured of 0.5-2.0).
const TYPE_BLEND: f32 = 0.8;

/// The two texts embedded for a product, with the SHA-256 of both, for the products whose stored embedding is
/// missing, from another model, or from other texts.
const PRODUCT_TEXTS: &str = "
    SELECT product_id, product_text, type_text, sha256(convert_to(product_text || E'\\n' || type_text, 'UTF8'))
    FROM (
        SELECT p.product_id, e.description_embedding IS NULL AS missing, e.embedding_model,
               e.embedded_text_sha256,
               p.product_name || '. ' || initcap(t.type_name) || ', ' || initcap(c.category_name) || '. '
                   || p.product_description AS product_text,
               initcap(t.type_name) || ', ' || initcap(c.category_name) || '. ' || coalesce(t.type_description, '')
                   AS type_text
        FROM retail.products p
        JOIN retail.product_types t ON t.type_id = p.type_id
        JOIN retail.categories c ON c.category_id = p.category_id
        JOIN retail.product_description_embeddings e ON e.product_id = p.product_id
    ) texts
    WHERE $1 OR missing OR embedding_model IS DISTINCT FROM $2
       OR embedded_text_sha256 IS DISTINCT FROM sha256(convert_to(product_text || E'\\n' || type_text, 'UTF8'))
    ORDER BY length(product_text), product_id";

/// What the database holds: (model, dimension) of the stored embeddings, if any.
pub async fn stored_model(client: &tokio_postgres::Client) -> Result<Option<(String, i32)>> {
    let row = client
        .query_opt(
            "SELECT embedding_model, vector_dims(description_embedding) FROM retail.product_description_embeddings
             WHERE description_embedding IS NOT NULL GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1",
            &[],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// Whether the catalog's vectors are in: until they are, semantic and hybrid searches answer by keyword and say
/// so. A server that starts on a database it has just seeded serves at once and embeds the catalog meanwhile
/// ([`complete`]), instead of keeping every tool waiting for the model.
#[derive(Debug, Default)]
pub struct CatalogVectors {
    ready: std::sync::atomic::AtomicBool,
}

impl CatalogVectors {
    pub fn new(ready: bool) -> Self {
        Self { ready: std::sync::atomic::AtomicBool::new(ready) }
    }

    pub fn ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    fn set_ready(&self) {
        self.ready.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// How many times [`complete`] tries before it gives up (a remote provider down for minutes).
const ATTEMPTS: u32 = 5;

/// Embeds, as the owner, the products that lack an up-to-date vector from this model, while the server serves;
/// marks the catalog's vectors ready when done. A failure is retried with growing pauses, then left in the log
/// (`zava-mcp embed` does it by hand); searches answer by keyword meanwhile.
pub async fn complete(owner: Endpoint, embedder: Embedder, vectors: std::sync::Arc<CatalogVectors>) {
    let started = std::time::Instant::now();
    for attempt in 1..=ATTEMPTS {
        match embed_products(&owner, &embedder, false, &ProgressBar::hidden()).await {
            Ok(n) => {
                let first = !vectors.ready();
                vectors.set_ready();
                if n > 0 || first {
                    tracing::info!(
                        products = n,
                        model = embedder.model_id(),
                        secs = format!("{:.1}", started.elapsed().as_secs_f64()),
                        "embedded the product catalog: semantic and hybrid search are on"
                    );
                }
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                let pause = std::time::Duration::from_secs(5 * u64::from(attempt));
                tracing::warn!(
                    error = %format!("{e:#}"),
                    retry_in_s = pause.as_secs(),
                    "embedding the product catalog failed; searches answer by keyword until it is done"
                );
                tokio::time::sleep(pause).await;
            }
            Err(e) => tracing::error!(
                error = %format!("{e:#}"),
                "embedding the product catalog failed {ATTEMPTS} times; searches answer by keyword: run `zava-mcp \
                 embed` once the provider works"
            ),
        }
    }
}

/// Embeds the products that lack an up-to-date embedding from this model (all of them with `rebuild`), as the
/// owner. Texts go to the model sorted by length, so each batch pads to a similar length. Returns how many were
/// embedded.
pub async fn embed_products(owner: &Endpoint, embedder: &Embedder, rebuild: bool, bar: &ProgressBar) -> Result<usize> {
    let mut client = owner.connect().await?;
    let tx = client.transaction().await?;
    ensure_dimension(&tx, embedder.dimension()).await?;
    let rows = tx.query(PRODUCT_TEXTS, &[&rebuild, &embedder.model_id()]).await?;
    bar.set_length(rows.len() as u64);
    bar.set_message(format!("embedding products with {}", embedder.model_id()));
    let update = tx
        .prepare(
            "UPDATE retail.product_description_embeddings
             SET description_embedding = $2, embedding_model = $3, embedded_text_sha256 = $4, created_at = now()
             WHERE product_id = $1",
        )
        .await?;
    // Each type's text once, then the products' texts, several batches at once (one per core for the local
    // model); results come back in order. The few type texts are split evenly, so every core gets a share.
    let mut type_texts: Vec<String> = rows.iter().map(|r| r.get(2)).collect();
    type_texts.sort();
    type_texts.dedup();
    let share = type_texts.len().div_ceil(embedder.parallel_batches()).clamp(1, BATCH);
    let type_vectors: Vec<Vec<Vec<f32>>> = futures_util::stream::iter(type_texts.chunks(share))
        .map(|chunk| embedder.embed(chunk.to_vec()))
        .buffered(embedder.parallel_batches())
        .try_collect()
        .await
        .context("embedding product type descriptions failed")?;
    let type_vectors: Vec<Vec<f32>> = type_vectors.into_iter().flatten().collect();
    anyhow::ensure!(
        type_vectors.len() == type_texts.len(),
        "the embedder returned {} vectors for {} type texts",
        type_vectors.len(),
        type_texts.len()
    );
    let types: HashMap<String, Vec<f32>> = type_texts.into_iter().zip(type_vectors).collect();
    let mut batches = futures_util::stream::iter(rows.chunks(BATCH))
        .map(|chunk| async move {
            let texts: Vec<String> = chunk.iter().map(|r| r.get(1)).collect();
            (chunk, embedder.embed(texts).await)
        })
        .buffered(embedder.parallel_batches());
    while let Some((chunk, vectors)) = batches.next().await {
        let vectors = vectors.context("embedding product descriptions failed")?;
        for (row, product) in chunk.iter().zip(vectors) {
            let (id, type_text, sha): (i32, String, Vec<u8>) = (row.get(0), row.get(2), row.get(3));
            let blended = blend(&product, &types[&type_text])?;
            tx.execute(&update, &[&id, &Vector::from(blended), &embedder.model_id(), &sha]).await?;
        }
        bar.inc(chunk.len() as u64);
    }
    tx.commit().await?;
    if !rows.is_empty() {
        // The planner's statistics were taken before the vectors existed; searches join better with fresh ones.
        client.batch_execute("ANALYZE retail.product_description_embeddings").await?;
    }
    Ok(rows.len())
}

/// `normalize(product + TYPE_BLEND * kind)`.
fn blend(product: &[f32], kind: &[f32]) -> Result<Vec<f32>> {
    let mut v: Vec<f32> = product.iter().zip(kind).map(|(p, k)| p + TYPE_BLEND * k).collect();
    super::normalise(&mut v).map_err(anyhow::Error::msg).context("blending a product's and its type's vectors")?;
    Ok(v)
}

/// Makes the vector column match the model's dimension (a different model may have another), rebuilding its
/// HNSW index; existing embeddings of another dimension are dropped, since they cannot be compared anyway.
async fn ensure_dimension(tx: &tokio_postgres::Transaction<'_>, dimension: usize) -> Result<()> {
    let current: String = tx
        .query_one(
            "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
             WHERE a.attrelid = 'retail.product_description_embeddings'::regclass AND a.attname = 'description_embedding'",
            &[],
        )
        .await?
        .get(0);
    let wanted = format!("vector({dimension})");
    if current != wanted {
        tx.batch_execute(&format!(
            "DROP INDEX IF EXISTS retail.idx_product_description_embedding_hnsw;
             ALTER TABLE retail.product_description_embeddings
                 ALTER COLUMN description_embedding TYPE {wanted} USING NULL::{wanted};
             ALTER TABLE retail.product_description_embeddings ALTER COLUMN description_embedding SET STORAGE MAIN;
             CREATE INDEX idx_product_description_embedding_hnsw ON retail.product_description_embeddings
                 USING hnsw (description_embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200);"
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blend_is_unit_length_and_leans_towards_the_product() {
        let v = blend(&[1.0, 0.0], &[0.0, 1.0]).unwrap();
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(v[0] > v[1] && v[1] > 0.0, "{v:?}");
        assert!(blend(&[0.8, 0.0], &[-1.0, 0.0]).is_err(), "opposite vectors cancel: no direction to store");
    }
}
