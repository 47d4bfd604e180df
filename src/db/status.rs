//! What `db status` reports: schema version, the loaded dataset, the product embeddings, and row counts per table.

use anyhow::Result;
use tokio_postgres::Client;

use super::migrate;

pub struct DatabaseStatus {
    pub schema_version: i32,
    pub latest_version: i32,
    pub dataset: Option<(i64, i32, String)>,
    pub row_counts: Vec<(String, i64)>,
    /// Per model and dimension: how many products have an embedding from it.
    pub embeddings: Vec<(String, i32, i64)>,
}

const COUNTED: [&str; 9] = [
    "stores",
    "categories",
    "product_types",
    "products",
    "customers",
    "inventory",
    "orders",
    "order_items",
    "product_description_embeddings",
];

/// Reads the status through an owner connection (which sees every row).
pub async fn read(owner: &Client) -> Result<DatabaseStatus> {
    let schema_version = migrate::current_version(owner).await?;
    let mut row_counts = Vec::new();
    let mut dataset = None;
    let mut embeddings = Vec::new();
    if schema_version > 0 {
        for t in COUNTED {
            // Customers live behind the masking view (migration V10); the owner counts the table itself.
            let hidden = t == "customers" && schema_version >= migrate::CUSTOMERS_BEHIND_VIEW;
            let source = if hidden { "zava_private" } else { "retail" };
            let n: i64 = owner.query_one(&format!("SELECT count(*) FROM {source}.{t}"), &[]).await?.get(0);
            row_counts.push((format!("retail.{t}"), n));
        }
        dataset = owner
            .query_opt("SELECT seed, customers, checksum FROM zava_private.dataset", &[])
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2)));
        embeddings = owner
            .query(
                "SELECT coalesce(embedding_model, 'unknown model'), vector_dims(description_embedding), count(*)
                 FROM retail.product_description_embeddings WHERE description_embedding IS NOT NULL
                 GROUP BY 1, 2 ORDER BY 3 DESC, 1",
                &[],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    }
    Ok(DatabaseStatus { schema_version, latest_version: migrate::latest_version(), dataset, row_counts, embeddings })
}

impl DatabaseStatus {
    pub fn is_current(&self) -> bool {
        self.schema_version == self.latest_version
    }

    pub fn is_seeded(&self) -> bool {
        self.dataset.is_some()
    }
}
