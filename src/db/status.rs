//! What `db status` reports: schema version, the loaded dataset, and row counts per table.

use anyhow::Result;
use tokio_postgres::Client;

use super::migrate;

pub struct DatabaseStatus {
    pub schema_version: i32,
    pub latest_version: i32,
    pub dataset: Option<(i64, i32, String)>,
    pub row_counts: Vec<(String, i64)>,
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
    if schema_version > 0 {
        for t in COUNTED {
            let n: i64 = owner.query_one(&format!("SELECT count(*) FROM retail.{t}"), &[]).await?.get(0);
            row_counts.push((format!("retail.{t}"), n));
        }
        dataset = owner
            .query_opt("SELECT seed, customers, checksum FROM zava_private.dataset", &[])
            .await?
            .map(|r| (r.get(0), r.get(1), r.get(2)));
    }
    Ok(DatabaseStatus { schema_version, latest_version: migrate::latest_version(), dataset, row_counts })
}

impl DatabaseStatus {
    pub fn is_current(&self) -> bool {
        self.schema_version == self.latest_version
    }

    pub fn is_seeded(&self) -> bool {
        self.dataset.is_some()
    }
}
