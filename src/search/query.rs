//! The search query itself, one statement for all three modes.
//!
//! Each half ranks at most `CANDIDATES` products: the semantic half by cosine distance (HNSW index, searched
//! with a wide `ef_search` so it is effectively exact at this catalog size), the keyword half by `ts_rank_cd`
//! over an OR of the query's stemmed words (so a product matching most words ranks first, and one matching a
//! single word still qualifies). Reciprocal Rank Fusion adds `1 / (K + rank)` from each half. The similarity
//! threshold filters on cosine distance wherever an embedding is involved, as in the origin.

use pgvector::Vector;
use tokio_postgres::Transaction;

use super::{SearchMode, SearchRequest};

/// Candidates each half contributes before fusion.
const CANDIDATES: i64 = 60;
/// The RRF constant (the usual 60: damps the advantage of the very top ranks).
const RRF_K: f64 = 60.0;

/// One product found.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub product_id: i32,
    pub sku: String,
    pub product_name: String,
    pub category_name: String,
    pub type_name: String,
    pub base_price: String,
    pub product_description: String,
    /// Cosine distance to the query (None in keyword mode).
    pub similarity_distance: Option<f64>,
    /// Similarity percent, `max(0, 1 - distance) * 100` rounded to 0.1 (None in keyword mode).
    pub sp: Option<f64>,
}

const SQL: &str = "
WITH q AS (
    SELECT $2::vector AS embedding,
           nullif(replace(plainto_tsquery('english', $1)::text, '&', '|'), '')::tsquery AS words
), semantic AS (
    SELECT e.product_id, row_number() OVER (ORDER BY e.description_embedding <=> q.embedding) AS rank
    FROM retail.product_description_embeddings e, q
    WHERE $5 <> 'keyword' AND q.embedding IS NOT NULL AND e.description_embedding IS NOT NULL
    ORDER BY e.description_embedding <=> q.embedding
    LIMIT $4
), keyword AS (
    SELECT e.product_id,
           row_number() OVER (ORDER BY ts_rank_cd(e.search_document, q.words, 32) DESC, e.product_id) AS rank
    FROM retail.product_description_embeddings e, q
    WHERE $5 <> 'semantic' AND q.words IS NOT NULL AND e.search_document @@ q.words
    ORDER BY ts_rank_cd(e.search_document, q.words, 32) DESC, e.product_id
    LIMIT $4
), fused AS (
    SELECT product_id,
           coalesce(1.0 / ($6::float8 + s.rank), 0) + coalesce(1.0 / ($6::float8 + k.rank), 0) AS score
    FROM semantic s FULL JOIN keyword k USING (product_id)
)
SELECT p.product_id, p.sku, p.product_name, c.category_name, t.type_name, p.base_price::text,
       p.product_description, d.distance
FROM fused f
JOIN retail.products p ON p.product_id = f.product_id
JOIN retail.categories c ON c.category_id = p.category_id
JOIN retail.product_types t ON t.type_id = p.type_id
JOIN retail.product_description_embeddings e ON e.product_id = f.product_id
CROSS JOIN q
CROSS JOIN LATERAL (SELECT e.description_embedding <=> q.embedding AS distance) d
WHERE $5 = 'keyword' OR d.distance <= $3
ORDER BY f.score DESC, d.distance NULLS LAST, p.product_id
LIMIT $7";

/// Searches inside `tx` (the caller's tenant transaction). `embedding` is the query's embedding; it may be None
/// only in keyword mode.
pub async fn search(
    tx: &Transaction<'_>,
    request: &SearchRequest,
    embedding: Option<Vec<f32>>,
) -> Result<Vec<SearchHit>, tokio_postgres::Error> {
    tx.batch_execute("SET LOCAL hnsw.ef_search = 200").await?;
    let mode = match request.mode {
        SearchMode::Semantic => "semantic",
        SearchMode::Keyword => "keyword",
        SearchMode::Hybrid => "hybrid",
    };
    let embedding = embedding.map(Vector::from);
    let rows = tx
        .query(
            SQL,
            &[
                &request.text,
                &embedding,
                &request.max_distance(),
                &CANDIDATES,
                &mode,
                &RRF_K,
                &(request.max_rows as i64),
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let distance: Option<f64> = r.get(7);
            SearchHit {
                product_id: r.get(0),
                sku: r.get(1),
                product_name: r.get(2),
                category_name: r.get(3),
                type_name: r.get(4),
                base_price: r.get(5),
                product_description: r.get(6),
                similarity_distance: distance,
                sp: distance.map(|d| ((1.0 - d).max(0.0) * 1000.0).round() / 10.0),
            }
        })
        .collect())
}
