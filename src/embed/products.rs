//! Product description embeddings: computed for every product at seed time (batched, with progress), stored with
//! the model's name, in a vector column whose dimension follows the model.

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use pgvector::Vector;

use super::provider::Embedder;
use crate::db::endpoint::Endpoint;

const BATCH: usize = 32;

/// The text embedded for a product: name, type, category, description.
const PRODUCT_TEXTS: &str =
    "SELECT p.product_id, p.product_name || '. ' || initcap(t.type_name) || ', ' || initcap(c.category_name)
        || '. ' || p.product_description
    FROM retail.products p
    JOIN retail.product_types t ON t.type_id = p.type_id
    JOIN retail.categories c ON c.category_id = p.category_id
    JOIN retail.product_description_embeddings e ON e.product_id = p.product_id
    WHERE $1 OR e.description_embedding IS NULL OR e.embedding_model IS DISTINCT FROM $2
    ORDER BY p.product_id";

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

/// Embeds the products that lack an embedding from this model (all of them with `rebuild`), as the owner.
/// Returns how many were embedded.
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
             SET description_embedding = $2, embedding_model = $3, created_at = now() WHERE product_id = $1",
        )
        .await?;
    for chunk in rows.chunks(BATCH) {
        let texts: Vec<String> = chunk.iter().map(|r| r.get(1)).collect();
        let vectors = embedder.embed(texts).await.context("embedding product descriptions failed")?;
        for (row, v) in chunk.iter().zip(vectors) {
            let id: i32 = row.get(0);
            tx.execute(&update, &[&id, &Vector::from(v), &embedder.model_id()]).await?;
        }
        bar.inc(chunk.len() as u64);
    }
    tx.commit().await?;
    Ok(rows.len())
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
             CREATE INDEX idx_product_description_embedding_hnsw ON retail.product_description_embeddings
                 USING hnsw (description_embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200);"
        ))
        .await?;
    }
    Ok(())
}
