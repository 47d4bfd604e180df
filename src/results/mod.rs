//! Results of `execute_sales_query` kept for reuse: an assistant asks the same question again (a retry, the same
//! report each morning, several people of one store asking alike), and a kept result costs a lookup instead of a
//! query, which for an analytic question over the whole year is tens of milliseconds of the database's CPU.
//!
//! A result is served again only when running the statement again could not return anything else:
//! - the statement depends on nothing but the rows its caller may see (`guard::Dependence::DataOnly`: no clock,
//!   chance, catalog, sample or plan);
//! - the key holds the caller's whole access (stores and personal-data grant, `Access::cache_key`), so nothing
//!   kept for one tenant is ever served to another; the SQL text exactly; and the data version (`version`), which
//!   every committed change to the data moves on, so a kept result is never older than the data it was read from;
//! - only successful results are kept; errors, cancellations and timeouts are not.
//!
//! When the version is not known (the connection that follows it is down), nothing is kept or served. The cache
//! is bounded by bytes and entries expire after a time to live, whatever the version says. It is on by default
//! only on the managed database, whose every writer goes through the version triggers (V13); for an external
//! database (`DATABASE_URL`) it is opt-in, since other systems may write around them (replication, disabled
//! triggers).

pub(crate) mod shared;
pub(crate) mod version;

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use rmcp::model::CallToolResult;

use crate::guard::{Dependence, ReadOnlySql};
use crate::tenant::Access;
use shared::SharedResults;
use version::DataVersion;

/// Whether results are kept, as configured (`--result-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheMode {
    /// On for the managed database, off for an external one.
    Auto,
    On,
    Off,
}

impl CacheMode {
    /// Whether the cache is on, for a database that is managed (`managed`) or external.
    pub fn enabled(self, managed: bool) -> bool {
        match self {
            CacheMode::Auto => managed,
            CacheMode::On => true,
            CacheMode::Off => false,
        }
    }
}

/// The result cache's bounds.
#[derive(Clone, PartialEq, Eq)]
pub struct ResultCacheSettings {
    pub enabled: bool,
    /// How long a kept result may be served, whatever the data version says.
    pub ttl: Duration,
    /// What the kept results may take in all (their JSON, roughly twice: text and structured content).
    pub max_bytes: u64,
    /// Redis, to share kept results between replicas (`results::shared`); `None`: this process only. Never
    /// logged (it may hold a password).
    pub redis_url: Option<String>,
}

impl std::fmt::Debug for ResultCacheSettings {
    /// Without the Redis URL, which may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultCacheSettings")
            .field("enabled", &self.enabled)
            .field("ttl", &self.ttl)
            .field("max_bytes", &self.max_bytes)
            .field("shared", &self.redis_url.is_some())
            .finish()
    }
}

impl Default for ResultCacheSettings {
    /// Off: a server built in code (tests, embedding) opts in.
    fn default() -> Self {
        Self { enabled: false, ttl: Duration::from_secs(600), max_bytes: 64 << 20, redis_url: None }
    }
}

/// One kept result, with what the call's audit record notes of it.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub result: CallToolResult,
    pub rows: usize,
    pub truncated: Option<&'static str>,
}

/// The key of one kept result: who asked (their whole access), the data version, and the SQL text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ResultKey {
    access: String,
    version: u64,
    sql: String,
}

/// Results kept per (access, data version, SQL text), in this process and, when configured, in Redis.
pub struct ResultCache {
    entries: Cache<ResultKey, Arc<Kept>>,
    version: Arc<DataVersion>,
    shared: Option<SharedResults>,
}

impl std::fmt::Debug for ResultCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultCache")
            .field("entries", &self.entries.entry_count())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl ResultCache {
    /// The cache, connected to Redis when `settings` name one (an unreachable Redis is an error).
    pub(crate) async fn start(settings: &ResultCacheSettings, version: Arc<DataVersion>) -> anyhow::Result<Self> {
        let shared = match &settings.redis_url {
            Some(url) => Some(SharedResults::connect(url, settings.ttl).await?),
            None => None,
        };
        Ok(Self::new(settings, version, shared))
    }

    pub(crate) fn new(
        settings: &ResultCacheSettings,
        version: Arc<DataVersion>,
        shared: Option<SharedResults>,
    ) -> Self {
        let entries = Cache::builder()
            .weigher(|key: &ResultKey, kept: &Arc<Kept>| {
                let text: usize = kept.result.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.len()).sum();
                u32::try_from(key.access.len() + key.sql.len() + 2 * text + 256).unwrap_or(u32::MAX)
            })
            .max_capacity(settings.max_bytes)
            .time_to_live(settings.ttl)
            .build();
        if let Some(shared) = &shared {
            shared.clone().watch(&version);
        }
        let cache = Self { entries, version, shared };
        cache.version.on_rewind({
            let (entries, shared) = (cache.entries.clone(), cache.shared.clone());
            // Weak: the version holds this closure.
            let version = Arc::downgrade(&cache.version);
            move || {
                entries.invalidate_all();
                let now = version.upgrade().and_then(|v| v.current());
                if let (Some(shared), Some(now)) = (shared.clone(), now) {
                    tokio::spawn(async move {
                        shared.flush().await;
                        shared.set_mark(now).await;
                    });
                }
            }
        });
        cache
    }

    /// The key under which this call's result may be kept, or why it may not (for the metrics).
    pub(crate) fn key(&self, access: &Access, sql: &ReadOnlySql) -> Result<ResultKey, &'static str> {
        if let Dependence::Other(_) = sql.dependence() {
            return Err("not_data_only");
        }
        let version = self.version.current().ok_or("version_unknown")?;
        Ok(ResultKey { access: access.cache_key(), version, sql: sql.as_str().to_owned() })
    }

    /// The result kept under `key`, if any: this process's first, then the one shared in Redis.
    pub(crate) async fn get(&self, key: &ResultKey) -> Option<Arc<Kept>> {
        let mut kept = self.entries.get(key).await;
        if kept.is_none()
            && let Some(shared) = &self.shared
        {
            let found = shared.get(key).await.map(Arc::new);
            crate::telemetry::series::cache_lookup("result_shared", found.is_some());
            if let Some(found) = &found
                && self.version.current() == Some(key.version)
            {
                self.entries.insert(key.clone(), found.clone()).await;
            }
            kept = found;
        }
        crate::telemetry::series::cache_lookup("result", kept.is_some());
        kept
    }

    /// Keeps a successful result, unless the data moved on while it ran (it would never be asked for again); it
    /// is shared in Redis from a task of its own, so the caller does not wait for it.
    pub(crate) async fn keep(&self, key: ResultKey, kept: Kept) {
        if self.version.current() == Some(key.version) {
            let kept = Arc::new(kept);
            if let Some(shared) = self.shared.clone() {
                let (key, kept) = (key.clone(), kept.clone());
                tokio::spawn(async move { shared.put(&key, &kept).await });
            }
            self.entries.insert(key, kept).await;
        }
    }

    /// The data version results are kept under now, if known.
    pub fn data_version(&self) -> Option<u64> {
        self.version.current()
    }

    /// How many results are kept (after pending evictions), for tests and `/metrics`.
    pub async fn len(&self) -> u64 {
        self.entries.run_pending_tasks().await;
        self.entries.entry_count()
    }

    pub async fn is_empty(&self) -> bool {
        self.len().await == 0
    }
}

#[cfg(test)]
mod tests;
