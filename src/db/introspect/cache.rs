//! A bounded, expiring cache of rendered table blocks, keyed by tenant scope *and* table.
//!
//! The origin keyed its schema cache by table name alone and never expired it, so the RLS-filtered "Valid
//! Values" (the years a store has orders in) of whoever asked first were served to every tenant (ORIGIN.md
//! §2.5, §7 W6). Here a block is only ever returned for the scope it was computed under, and it expires after
//! a TTL so new data and schema changes show up.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use tokio_postgres::Client;

use super::{TableName, describe_blocks, render};

/// Rendered blocks per (tenant scope, table).
///
/// The scope must be [`crate::tenant::Tenant::scope`] of the tenant whose signed context opened the
/// transaction passed alongside it: the key is only as right as that pairing. Passing another tenant's scope
/// would file one tenant's block under the other's key.
#[derive(Clone)]
pub struct SchemaCache {
    blocks: Cache<(String, TableName), Arc<str>>,
}

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaCache").field("entries", &self.blocks.entry_count()).finish()
    }
}

impl SchemaCache {
    /// Blocks live for `ttl` after being computed; at most `max_entries` are kept (least recently used go).
    pub fn new(ttl: Duration, max_entries: u64) -> Self {
        Self { blocks: Cache::builder().time_to_live(ttl).max_capacity(max_entries).build() }
    }

    /// One table's block for `tenant_scope`: cached, or described now in `tx` and cached. A table the role
    /// cannot read gives the origin's not-found line, which is not cached.
    pub async fn get_or_describe(
        &self,
        tenant_scope: &str,
        tx: &Client,
        table: &TableName,
    ) -> Result<String, tokio_postgres::Error> {
        self.get_or_describe_all(tenant_scope, tx, std::slice::from_ref(table)).await
    }

    /// Like [`describe`](super::describe) for several tables: cached blocks are reused and all the missing
    /// ones are described together (three catalog queries however many there are).
    pub async fn get_or_describe_all(
        &self,
        tenant_scope: &str,
        tx: &Client,
        tables: &[TableName],
    ) -> Result<String, tokio_postgres::Error> {
        let mut blocks: Vec<Option<Arc<str>>> = Vec::with_capacity(tables.len());
        for table in tables {
            let block = self.blocks.get(&(tenant_scope.to_owned(), table.clone())).await;
            crate::telemetry::series::cache_lookup("schema", block.is_some());
            blocks.push(block);
        }
        let missing: Vec<TableName> =
            tables.iter().zip(&blocks).filter(|(_, b)| b.is_none()).map(|(t, _)| t.clone()).collect();
        let mut described = describe_blocks(tx, &missing).await?.into_iter().zip(&missing);
        let mut out = String::new();
        for (table, cached) in tables.iter().zip(blocks) {
            let block = match cached {
                Some(block) => block,
                None => match described.next() {
                    Some((Some(block), t)) => {
                        let block: Arc<str> = block.into();
                        self.blocks.insert((tenant_scope.to_owned(), t.clone()), block.clone()).await;
                        block
                    }
                    _ => render::not_found(table).into(),
                },
            };
            out.push_str(&block);
        }
        Ok(out)
    }

    /// Drops every cached block (after a migration or reseed, for instance).
    pub fn invalidate_all(&self) {
        self.blocks.invalidate_all();
    }

    /// How many blocks are cached, after pending evictions have been applied.
    pub async fn len(&self) -> u64 {
        self.blocks.run_pending_tasks().await;
        self.blocks.entry_count()
    }

    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }
}
