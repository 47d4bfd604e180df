//! Bulk-loads a generated dataset into the retail schema, replacing what was there, in one transaction.
//!
//! The fast path: drop the secondary indexes and foreign keys (remembering their definitions), TRUNCATE,
//! COPY every table (FREEZE, so no later vacuum is needed), put the foreign keys and indexes back, record the
//! dataset, COMMIT, then ANALYZE. Readers see either the old data or the new, never a half-loaded state.
//! Row-level security is forced on these tables and PostgreSQL refuses COPY FROM under RLS, so the owner lifts
//! FORCE for the duration of the transaction; a failure rolls that back too.

use anyhow::{Context, Result};
use bytes::Bytes;
use futures_util::SinkExt;
use indicatif::ProgressBar;
use tokio_postgres::Transaction;

use super::encode::TableCopy;
use super::generate::GenOptions;
use crate::db::endpoint::Endpoint;

const CHUNK: usize = 1 << 20;

/// Tables whose data the seed replaces, in TRUNCATE order.
const TABLES: &str = "retail.order_items, retail.orders, retail.inventory, zava_private.customers, \
    retail.product_description_embeddings, retail.products, retail.product_types, retail.categories, retail.stores";

/// The SERIAL columns whose sequences must continue after the loaded ids.
const SEQUENCES: [(&str, &str); 7] = [
    ("retail.stores", "store_id"),
    ("retail.categories", "category_id"),
    ("retail.product_types", "type_id"),
    ("retail.products", "product_id"),
    ("zava_private.customers", "customer_id"),
    ("retail.orders", "order_id"),
    ("retail.order_items", "order_item_id"),
];

pub async fn load(
    owner: &Endpoint,
    tables: &[TableCopy],
    options: GenOptions,
    checksum: &str,
    bar: &ProgressBar,
) -> Result<()> {
    let mut client = owner.connect().await?;
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL maintenance_work_mem = '512MB'; SET LOCAL synchronous_commit = off").await?;

    bar.set_message("dropping indexes and foreign keys");
    let indexes = secondary_indexes(&tx).await?;
    let foreign_keys = foreign_keys(&tx).await?;
    for (table, name, _) in &foreign_keys {
        tx.batch_execute(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}")).await?;
    }
    for (name, _) in &indexes {
        tx.batch_execute(&format!("DROP INDEX {name}")).await?;
    }
    tx.batch_execute(&format!("TRUNCATE {TABLES}")).await?;
    let forced: Vec<String> = tx
        .query("SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                WHERE n.nspname IN ('retail', 'zava_private') AND c.relkind = 'r' AND c.relforcerowsecurity", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in &forced {
        tx.batch_execute(&format!("ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY")).await?;
    }
    bar.inc(1);

    for t in tables {
        bar.set_message(format!("loading {} ({} rows)", t.table, t.rows));
        copy(&tx, t).await.with_context(|| format!("loading {} failed", t.table))?;
        bar.inc(1);
    }
    for (table, column) in SEQUENCES {
        tx.execute(
            &format!("SELECT setval(pg_get_serial_sequence($1, $2), coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"),
            &[&table, &column],
        )
        .await?;
    }

    bar.set_message("restoring foreign keys");
    for (table, name, definition) in &foreign_keys {
        tx.batch_execute(&format!("ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")).await?;
    }
    bar.inc(1);
    for (name, definition) in &indexes {
        bar.set_message(format!("building index {name}"));
        tx.batch_execute(definition).await?;
    }
    bar.inc(1);
    bar.set_message("building search documents");
    tx.batch_execute(SEARCH_ROWS).await?;
    tx.batch_execute(SEARCH_DOCUMENTS).await?;
    for t in &forced {
        tx.batch_execute(&format!("ALTER TABLE {t} FORCE ROW LEVEL SECURITY")).await?;
    }
    tx.execute(
        "INSERT INTO zava_private.dataset (seed, customers, checksum) VALUES ($1, $2, $3)
         ON CONFLICT (only_row) DO UPDATE SET seed = EXCLUDED.seed, customers = EXCLUDED.customers,
             checksum = EXCLUDED.checksum, loaded_at = now()",
        &[&(options.seed as i64), &(options.customers as i32), &checksum],
    )
    .await?;
    tx.commit().await?;

    bar.set_message("analyzing");
    client.batch_execute(&format!("ANALYZE {TABLES}")).await?;
    bar.inc(1);
    Ok(())
}

/// One search row per product, its full-text document filled by [`SEARCH_DOCUMENTS`]. Embeddings are filled in
/// afterwards by the embedding step.
const SEARCH_ROWS: &str = "INSERT INTO retail.product_description_embeddings (product_id)
    SELECT product_id FROM retail.products";

/// The full-text document of every product: SKU, name and type weigh most, then category, then the description,
/// then what the type is for.
const SEARCH_DOCUMENTS: &str = "UPDATE retail.product_description_embeddings e
    SET search_document = setweight(to_tsvector('simple', p.sku), 'A')
        || setweight(to_tsvector('english', p.product_name), 'A')
        || setweight(to_tsvector('english', t.type_name), 'A')
        || setweight(to_tsvector('english', c.category_name), 'B')
        || setweight(to_tsvector('english', p.product_description), 'C')
        || setweight(to_tsvector('english', coalesce(t.type_description, '')), 'D')
    FROM retail.products p
    JOIN retail.product_types t ON t.type_id = p.type_id
    JOIN retail.categories c ON c.category_id = p.category_id
    WHERE p.product_id = e.product_id";

/// A database seeded before product types had descriptions (schema V7) gets the built-in catalog's, matched by
/// type name, and its search documents rebuilt; the embedding step then re-embeds the products whose text changed.
/// Returns how many types were filled in.
pub async fn backfill_type_descriptions(owner: &Endpoint) -> Result<u64> {
    let mut client = owner.connect().await?;
    let missing: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM retail.product_types WHERE type_description IS NULL)", &[])
        .await?
        .get(0);
    if !missing {
        return Ok(0); // every start after the first: one cheap query
    }
    let tx = client.transaction().await?;
    let update = tx
        .prepare(
            "UPDATE retail.product_types t SET type_description = $3 FROM retail.categories c
             WHERE c.category_id = t.category_id AND c.category_name = $1 AND t.type_name = $2
               AND t.type_description IS NULL",
        )
        .await?;
    let mut filled = 0;
    for c in &super::catalog::Catalog::builtin().categories {
        for t in &c.types {
            filled += tx.execute(&update, &[&c.name, &t.name, &t.about]).await?;
        }
    }
    if filled > 0 {
        tx.batch_execute(SEARCH_ROWS).await?;
        tx.batch_execute(SEARCH_DOCUMENTS).await?;
    }
    tx.commit().await?;
    Ok(filled)
}

/// Progress steps `load` reports for `tables` tables.
pub fn steps(tables: usize) -> u64 {
    tables as u64 + 4
}

async fn copy(tx: &Transaction<'_>, t: &TableCopy) -> Result<()> {
    let sink = tx.copy_in(&t.copy_statement()).await?;
    futures_util::pin_mut!(sink);
    for chunk in t.text.chunks(CHUNK) {
        sink.send(Bytes::copy_from_slice(chunk)).await?;
    }
    sink.finish().await?;
    Ok(())
}

/// Indexes of the data tables (in `retail`, and the customers table in `zava_private`) that no constraint owns
/// (the ones safe to drop and rebuild).
async fn secondary_indexes(tx: &Transaction<'_>) -> Result<Vec<(String, String)>> {
    let rows = tx
        .query(
            "SELECT format('%I.%I', i.schemaname, i.indexname), i.indexdef FROM pg_indexes i
             WHERE i.schemaname IN ('retail', 'zava_private')
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                               WHERE c.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass)
             ORDER BY i.indexname",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn foreign_keys(tx: &Transaction<'_>) -> Result<Vec<(String, String, String)>> {
    let rows = tx
        .query(
            "SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
             WHERE contype = 'f' AND connamespace IN ('retail'::regnamespace, 'zava_private'::regnamespace) ORDER BY conrelid::regclass::text, conname",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}
