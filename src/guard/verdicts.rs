//! The guard's verdicts on SQL a tenant has sent before, kept so that the same text is not parsed and walked
//! again: an assistant repeats its queries (a retry, the same count for each month it reports on), and on the
//! light mix the parse is about a tenth of the server's CPU per call.
//!
//! A verdict depends only on the text and the function policy, which is fixed for the life of the process, so
//! it never goes stale. It is still kept per tenant scope, never shared: a hit is faster than a parse, and a
//! cache shared across tenants would tell one store, by timing, which SQL another store's assistant had sent.
//! Refusals are kept like acceptances. The cache is bounded by the bytes of the SQL it holds, and entries not
//! asked for in a while go.

use std::time::Duration;

use moka::future::Cache;

use super::{FunctionPolicy, GuardError, ReadOnlySql};

/// What the cache may hold in all: the SQL texts and scopes of its keys (each verdict holds its text once more).
const MAX_BYTES: u64 = 16 << 20;

/// An entry not asked for in this long is dropped.
const IDLE: Duration = Duration::from_secs(600);

/// Verdicts per (tenant scope, SQL text).
#[derive(Clone)]
pub struct Verdicts {
    cache: Cache<(String, String), Result<ReadOnlySql, GuardError>>,
}

impl std::fmt::Debug for Verdicts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verdicts").field("entries", &self.cache.entry_count()).finish()
    }
}

impl Default for Verdicts {
    fn default() -> Self {
        Self::new(MAX_BYTES)
    }
}

impl Verdicts {
    pub fn new(max_bytes: u64) -> Self {
        let cache = Cache::builder()
            .weigher(|(scope, sql): &(String, String), _: &Result<ReadOnlySql, GuardError>| {
                u32::try_from(scope.len() + 2 * sql.len() + 64).unwrap_or(u32::MAX)
            })
            .max_capacity(max_bytes)
            .time_to_idle(IDLE)
            .build();
        Self { cache }
    }

    /// The guard's verdict on `sql` for the tenant whose scope is `scope`: the one given before, or
    /// [`ReadOnlySql::parse`]'s now (texts over the guard's size limit are refused without being kept).
    pub async fn check(&self, scope: &str, sql: &str, policy: &FunctionPolicy) -> Result<ReadOnlySql, GuardError> {
        if sql.len() > super::MAX_SQL_BYTES {
            return ReadOnlySql::parse(sql, policy);
        }
        let key = (scope.to_owned(), sql.to_owned());
        if let Some(verdict) = self.cache.get(&key).await {
            crate::telemetry::series::cache_lookup("guard", true);
            return verdict;
        }
        crate::telemetry::series::cache_lookup("guard", false);
        let verdict = ReadOnlySql::parse(sql, policy);
        self.cache.insert(key, verdict.clone()).await;
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANAGER: &str = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
    const OTHER: &str = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";

    #[tokio::test]
    async fn a_kept_verdict_is_the_guards_own() {
        let (verdicts, policy) = (Verdicts::default(), FunctionPolicy::builtin());
        for sql in ["SELECT count(*) FROM retail.orders", "DELETE FROM retail.orders", "SELECT 1; SELECT 2"] {
            let fresh = ReadOnlySql::parse(sql, &policy);
            assert_eq!(verdicts.check(MANAGER, sql, &policy).await, fresh, "{sql}");
            assert_eq!(verdicts.check(MANAGER, sql, &policy).await, fresh, "{sql}, kept");
        }
        verdicts.cache.run_pending_tasks().await;
        assert_eq!(verdicts.cache.entry_count(), 3);
    }

    #[tokio::test]
    async fn verdicts_are_kept_per_tenant_and_per_exact_text() {
        let (verdicts, policy) = (Verdicts::default(), FunctionPolicy::builtin());
        let sql = "SELECT count(*) FROM retail.orders";
        verdicts.check(MANAGER, sql, &policy).await.unwrap();
        verdicts.cache.run_pending_tasks().await;
        assert!(verdicts.cache.get(&(MANAGER.to_owned(), sql.to_owned())).await.is_some());
        assert!(verdicts.cache.get(&(OTHER.to_owned(), sql.to_owned())).await.is_none(), "another tenant's");
        let refused = "SELECT count(*) FROM retail.orders; DROP TABLE retail.orders";
        assert!(verdicts.check(MANAGER, refused, &policy).await.is_err(), "a different text is checked anew");
    }

    #[tokio::test]
    async fn texts_over_the_limit_are_refused_and_not_kept() {
        let (verdicts, policy) = (Verdicts::default(), FunctionPolicy::builtin());
        let long = format!("SELECT {}1", "1 + ".repeat(super::super::MAX_SQL_BYTES / 4));
        assert!(matches!(verdicts.check(MANAGER, &long, &policy).await, Err(GuardError::TooLong { .. })));
        verdicts.cache.run_pending_tasks().await;
        assert_eq!(verdicts.cache.entry_count(), 0);
    }

    #[tokio::test]
    async fn the_bound_is_in_bytes() {
        let (verdicts, policy) = (Verdicts::new(4_096), FunctionPolicy::builtin());
        for i in 0..200 {
            verdicts.check(MANAGER, &format!("SELECT {i} AS padding_{}", "x".repeat(40)), &policy).await.unwrap();
        }
        verdicts.cache.run_pending_tasks().await;
        assert!(verdicts.cache.weighted_size() <= 4_096, "{}", verdicts.cache.weighted_size());
    }
}
