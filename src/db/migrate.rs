//! Versioned schema migrations (refinery, SQL files in `src/db/migrations/`), run as the owner.
//!
//! After the migrations, the owner also installs the tenant-context key: the one secret the policies verify
//! contexts with. The server must sign with the same key, so it is taken from the data directory's secrets.

use anyhow::{Context, Result};

use super::endpoint::Endpoint;

mod embedded {
    refinery::embed_migrations!("src/db/migrations");
}

/// The schema version from which `retail.customers` is a masking view over `zava_private.customers` (V10).
pub const CUSTOMERS_BEHIND_VIEW: i32 = 10;

/// The schema version from which the data has a version number, bumped by every change (V13, `crate::results`).
pub const DATA_VERSION: i32 = 13;

/// The newest schema version this binary knows.
pub fn latest_version() -> i32 {
    embedded::migrations::runner().get_migrations().iter().map(|m| m.version()).max().unwrap_or(0)
}

/// Applies pending migrations and installs the context key.
pub async fn migrate(owner: &Endpoint, context_key_hex: &str) -> Result<()> {
    let mut client = owner.connect().await?;
    let report = embedded::migrations::runner().run_async(&mut client).await.context("schema migration failed")?;
    for m in report.applied_migrations() {
        tracing::info!(version = m.version(), name = m.name(), "applied migration");
    }
    // A new schema may change what a query returns without touching a row: results kept before it are stale.
    if !report.applied_migrations().is_empty() && current_version(&client).await? >= DATA_VERSION {
        client.execute("SELECT zava_private.bump_data_version()", &[]).await.context("cannot bump the data version")?;
    }
    client
        .execute(
            "INSERT INTO zava_private.context_key (key) VALUES (decode($1, 'hex'))
             ON CONFLICT (only_row) DO UPDATE SET key = EXCLUDED.key",
            &[&context_key_hex],
        )
        .await
        .context("cannot install the tenant context key")?;
    Ok(())
}

/// The schema version a database is at (0 when it has none).
pub async fn current_version(client: &tokio_postgres::Client) -> Result<i32> {
    let exists: bool =
        client.query_one("SELECT to_regclass('public.refinery_schema_history') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client.query_one("SELECT coalesce(max(version), 0) FROM public.refinery_schema_history", &[]).await?.get(0))
}
