//! Product description embeddings: computed for every product at seed time (batched, with progress), stored with
//! the model's name, in a vector column whose dimension follows the model.

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use pgvector::Vector;

use super::provider::Embedder;
use crate::db::endpoint::Endpoint;

const BATCH: usize = 32;

/// The text embedded for a product: name, type, category, description, and what the type is for; with its SHA-256,
/// for the products whose stored embedding is missing, from another model, or from another text.
const PRODUCT_TEXTS: &str = "
    SELECT product_id, text, sha256(convert_to(text, 'UTF8')) AS text_sha256
    FROM (
        SELECT p.product_id, e.description_embedding IS NULL AS missing, e.embedding_model,
               e.embedded_text_sha256,
               p.product_name || '. ' || initcap(t.type_name) || ', ' || initcap(c.category_name) || '. '
                   || p.product_description || coalesce(' ' || t.type_description, '') AS text
        FROM retail.products p
        JOIN retail.product_types t ON t.type_id = p.type_id
        JOIN retail.categories c ON c.category_id = p.category_id
        JOIN retail.product_description_embeddings e ON e.product_id = p.product_id
    ) texts
    WHERE $1 OR missing OR embedding_model IS DISTINCT FROM $2
       OR embedded_text_sha256 IS DISTINCT FROM sha256(convert_to(text, 'UTF8'))
    ORDER BY length(text), product_id";

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
    for chunk in rows.chunks(BATCH) {
        let texts: Vec<String> = chunk.iter().map(|r| r.get(1)).collect();
        let vectors = embedder.embed(texts).await.context("embedding product descriptions failed")?;
        for (row, v) in chunk.iter().zip(vectors) {
            let (id, sha): (i32, Vec<u8>) = (row.get(0), row.get(2));
            tx.execute(&update, &[&id, &Vector::from(v), &embedder.model_id(), &sha]).await?;
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
