//! The search query itself, one statement for all three modes.
//!
//! The semantic half scores every product exactly (cosine similarity to the query; the catalog is a few hundred
//! products, so an exact scan costs a fraction of a millisecond and misses nothing; every stored and query vector is
//! unit-length, so the similarity is the inner product `<#>`, cheaper than `<=>`) and then groups by aisle: each product
//! also gets `TYPE_WEIGHT` times the best similarity within its product type. Store managers ask for jobs ("cut
//! curves in plywood"), and a small sentence model is much surer about which aisle serves a job than about which
//! single product does; grouping puts the whole right aisle first, best match first within it. The keyword half
//! ranks by `ts_rank_cd` over an OR of the query's stemmed words (a product matching most words first; one
//! matching a single word still qualifies). Hybrid adds the two by Reciprocal Rank Fusion, `1 / (K + rank)`, with
//! the keyword half weighted down; a query that is exactly a SKU puts that product first whatever the mode
//! (the similarity threshold does not apply to it). The weights are the best measured by `cargo bench --bench search` on
//! `data/search_eval.toml`. The similarity threshold filters on cosine distance wherever an embedding is
//! involved, as in the origin.

use pgvector::Vector;
use tokio_postgres::{Client, Statement};

use super::{SearchMode, SearchRequest};

/// Candidates each half contributes before fusion (at least `max_rows`).
const CANDIDATES: i64 = 60;
/// How much the best similarity within a product's type adds to its own.
const TYPE_WEIGHT: f64 = 5.0;
/// The RRF constant: small, so the top of each ranking counts for much more than its tail.
const RRF_K: f64 = 5.0;
/// The keyword half's weight in hybrid fusion (the semantic half's is 1).
const KEYWORD_WEIGHT: f64 = 0.3;

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

/// The statement's text, a macro so that head office's copy can be made from it at compile time.
macro_rules! search_sql {
    () => {
        "
WITH q AS (
    SELECT $2::vector AS embedding,
           nullif(replace(plainto_tsquery('english', $1)::text, '&', '|'), '')::tsquery AS words
), scored AS MATERIALIZED (
    SELECT e.product_id, p.type_id, -(e.description_embedding <#> q.embedding) AS similarity
    FROM retail.product_description_embeddings e
    JOIN retail.products p ON p.product_id = e.product_id
    CROSS JOIN q
    WHERE $5 <> 'keyword' AND q.embedding IS NOT NULL AND e.description_embedding IS NOT NULL
), semantic AS (
    SELECT product_id, row_number() OVER (ORDER BY score DESC, product_id) AS rank
    FROM (SELECT s.product_id, s.similarity + $8 * b.best AS score
          FROM scored s
          JOIN (SELECT type_id, max(similarity) AS best FROM scored GROUP BY type_id) b USING (type_id)
          ORDER BY score DESC, s.product_id
          LIMIT $4) top
), keyword AS (
    SELECT e.product_id,
           row_number() OVER (ORDER BY ts_rank_cd(e.search_document, q.words, 32) DESC, e.product_id) AS rank
    FROM retail.product_description_embeddings e, q
    WHERE $5 <> 'semantic' AND q.words IS NOT NULL AND e.search_document @@ q.words
    ORDER BY rank
    LIMIT $4
), exact AS (
    SELECT product_id, true AS exact_sku FROM retail.products WHERE sku = upper(btrim($1))
), fused AS (
    SELECT product_id, coalesce(x.exact_sku, false) AS exact_sku,
           coalesce(1.0 / ($6::float8 + s.rank), 0) + $9 * coalesce(1.0 / ($6::float8 + k.rank), 0) AS score
    FROM semantic s FULL JOIN keyword k USING (product_id) FULL JOIN exact x USING (product_id)
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
WHERE $5 = 'keyword' OR d.distance <= $3 OR f.exact_sku
ORDER BY f.exact_sku DESC, f.score DESC, d.distance NULLS LAST, p.product_id
LIMIT $7"
    };
}

const SQL: &str = search_sql!();
/// The same statement under another text for head office, so that each connection prepares it once per role. A
/// prepared plan over tables with row-level security belongs to the role it was made for, and PostgreSQL plans
/// it again whenever the role differs from the last execution's: with head office's calls (their own role) mixed
/// among the managers', one statement for both was planned anew on about one call in five.
const SQL_HEAD_OFFICE: &str = concat!(search_sql!(), "\n-- head office");

/// The search statement, prepared on one connection. Planning it costs more than running it, so each connection
/// prepares it once (the server keeps it in the pool's per-connection statement cache).
#[derive(Clone)]
pub struct SearchStatement(Statement);

impl SearchStatement {
    pub async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        client.prepare(SQL).await.map(Self)
    }

    /// Prepared once per pooled connection and role (head office or the managers'), then reused.
    pub async fn prepare_cached(
        client: &deadpool_postgres::ClientWrapper,
        head_office: bool,
    ) -> Result<Self, tokio_postgres::Error> {
        client.prepare_cached(if head_office { SQL_HEAD_OFFICE } else { SQL }).await.map(Self)
    }
}

/// Searches inside `tx` (the caller's tenant transaction, on the connection `statement` was prepared on).
/// `embedding` is the query's embedding; it may be None only in keyword mode.
pub async fn search(
    tx: &Client,
    statement: &SearchStatement,
    request: &SearchRequest,
    embedding: Option<Vec<f32>>,
) -> Result<Vec<SearchHit>, tokio_postgres::Error> {
    let mode = match request.mode {
        SearchMode::Semantic => "semantic",
        SearchMode::Keyword => "keyword",
        SearchMode::Hybrid => "hybrid",
    };
    let embedding = embedding.map(Vector::from);
    let rows = tx
        .query(
            &statement.0,
            &[
                &request.text,
                &embedding,
                &request.max_distance(),
                &CANDIDATES.max(request.max_rows as i64),
                &mode,
                &RRF_K,
                &(request.max_rows as i64),
                &TYPE_WEIGHT,
                &KEYWORD_WEIGHT,
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
