//! Kept results shared by every replica through Redis (`--redis-url`, unless `--result-cache-local`): a question
//! one replica answered is answered from memory by the others, which a load balancer spreading an assistant's
//! calls over replicas would otherwise defeat.
//!
//! The rules are the process cache's (`results`): the key is a SHA-256 of the caller's whole access, the data
//! version and the SQL text, so neither a tenant, nor a query, nor a value is in Redis in clear, and nothing kept
//! for one access is found by another; entries expire after the cache's time to live; only successful data-only
//! results are written. Redis is a second level: a process looks in its own memory first, and a Redis that is
//! slow or gone costs a miss, never an error.
//!
//! A restore puts an older data version back, and numbers after it name other data than before. Every replica
//! drops the shared results when its own follower sees the version go back, and, so that a restore made while
//! every replica was down is caught too, Redis keeps the highest version any replica has seen: a replica whose
//! first version is below that mark flushes the shared results and lowers the mark.
//!
//! Replicas sharing one Redis database must serve one PostgreSQL database: give each deployment its own Redis
//! database (the `/N` of the URL).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use rmcp::model::CallToolResult;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::version::DataVersion;
use super::{Kept, ResultKey};

/// Every shared result's key starts with this; the high-water mark is `MARK`.
const PREFIX: &str = "zava:result:";
const MARK: &str = "zava:results-version";

/// How long one Redis command may take before it counts as a miss.
const ANSWER_WITHIN: Duration = Duration::from_millis(500);

/// How often the version is compared with the mark.
const CHECK_MARK: Duration = Duration::from_secs(5);

/// Raises the mark to ARGV[1]. With ARGV[2] = 1 (a replica's first look), a version below the mark means the data
/// went back while no replica watched: the mark is set to it and the answer is 1.
const OBSERVE: &str = r"
local mark = tonumber(redis.call('GET', KEYS[1]) or '0')
local seen = tonumber(ARGV[1])
if seen < mark and ARGV[2] == '1' then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
if seen > mark then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
";

/// A kept result as Redis holds it.
#[derive(Serialize, Deserialize)]
struct Stored {
    result: CallToolResult,
    rows: usize,
    truncated: Option<String>,
}

/// The shared level of the result cache.
#[derive(Clone)]
pub(crate) struct SharedResults {
    connection: ConnectionManager,
    ttl: Duration,
    observe: Arc<redis::Script>,
}

impl SharedResults {
    /// Connects (the connection manager reconnects by itself afterwards); an unreachable Redis stops the start,
    /// as it does for the limits. `url` is never logged: it may hold a password.
    pub(crate) async fn connect(url: &str, ttl: Duration) -> Result<Self> {
        let client = redis::Client::open(url).context("ZAVA_REDIS_URL is not a Redis URL (redis://host:port/db)")?;
        let connection = tokio::time::timeout(Duration::from_secs(5), client.get_connection_manager())
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer within 5 s"))?
            .context("cannot reach Redis for the shared result cache (ZAVA_REDIS_URL): start it, or pass --result-cache-local")?;
        Ok(Self { connection, ttl, observe: Arc::new(redis::Script::new(OBSERVE)) })
    }

    /// The result another replica (or this one) shared under `key`, if any and if Redis answers in time.
    pub(crate) async fn get(&self, key: &ResultKey) -> Option<Kept> {
        let mut connection = self.connection.clone();
        let bytes: Option<Vec<u8>> = match tokio::time::timeout(ANSWER_WITHIN, connection.get(redis_key(key))).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "Redis did not answer a shared-result lookup");
                None
            }
            Err(_) => None,
        };
        let stored: Stored = serde_json::from_slice(&bytes?).ok()?;
        Some(Kept { result: stored.result, rows: stored.rows, truncated: stored.truncated.as_deref().map(truncation) })
    }

    /// Shares a successful result, for the cache's time to live.
    pub(crate) async fn put(&self, key: &ResultKey, kept: &Kept) {
        let stored =
            Stored { result: kept.result.clone(), rows: kept.rows, truncated: kept.truncated.map(str::to_owned) };
        let Ok(bytes) = serde_json::to_vec(&stored) else { return };
        let mut connection = self.connection.clone();
        let ttl = self.ttl.as_millis().max(1) as u64;
        let set = connection.pset_ex::<_, _, ()>(redis_key(key), bytes, ttl);
        if let Ok(Err(e)) = tokio::time::timeout(ANSWER_WITHIN, set).await {
            tracing::debug!(error = %e, "Redis did not take a shared result");
        }
    }

    /// Drops every shared result (the data went back).
    pub(crate) async fn flush(&self) {
        let mut connection = self.connection.clone();
        let flushed = async {
            let keys: Vec<String> = {
                let mut scan = connection.scan_match::<_, String>(format!("{PREFIX}*")).await?;
                let mut keys = Vec::new();
                while let Some(key) = futures_util::StreamExt::next(&mut scan).await {
                    keys.push(key?);
                }
                keys
            };
            for chunk in keys.chunks(500) {
                connection.unlink::<_, ()>(chunk).await?;
            }
            Ok::<usize, redis::RedisError>(keys.len())
        };
        match tokio::time::timeout(Duration::from_secs(30), flushed).await {
            Ok(Ok(n)) => tracing::warn!(results = n, "dropped the results shared in Redis: the data version went back"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not drop the results shared in Redis after a restore"),
            Err(_) => tracing::warn!("dropping the results shared in Redis after a restore took over 30 s: stopped"),
        }
    }

    /// Sets the mark to `version` (after this replica saw the data go back and flushed).
    pub(crate) async fn set_mark(&self, version: u64) {
        let mut connection = self.connection.clone();
        let _ = tokio::time::timeout(ANSWER_WITHIN, connection.set::<_, _, ()>(MARK, version)).await;
    }

    /// Raises the mark to `version`; on a replica's first look (`first`), `true` when `version` is below it.
    async fn went_back(&self, version: u64, first: bool) -> bool {
        let mut connection = self.connection.clone();
        let mut invocation = self.observe.prepare_invoke();
        invocation.key(MARK).arg(version).arg(u8::from(first));
        let answer = tokio::time::timeout(ANSWER_WITHIN, invocation.invoke_async::<i64>(&mut connection)).await;
        matches!(answer, Ok(Ok(1)))
    }

    /// Keeps the mark up to date with `version` for as long as it lives. The first version this replica knows
    /// is compared with the mark (a restore while no replica ran); later, the follower's own view of a version
    /// going back is what flushes ([`ResultCache::new`](super::ResultCache::new)), since between replicas a
    /// version a few milliseconds behind is normal.
    pub(crate) fn watch(self, version: &Arc<DataVersion>) {
        let version = Arc::downgrade(version);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CHECK_MARK);
            let mut first = true;
            loop {
                tick.tick().await;
                let Some(alive) = version.upgrade() else { return };
                let Some(now) = alive.current() else { continue };
                drop(alive);
                if self.went_back(now, first).await {
                    self.flush().await;
                }
                first = false;
            }
        });
    }
}

/// The Redis key of `key`: a SHA-256 of its three parts, each length-prefixed so no two keys hash alike.
fn redis_key(key: &ResultKey) -> String {
    let mut hash = Sha256::new();
    hash.update((key.access.len() as u64).to_le_bytes());
    hash.update(key.access.as_bytes());
    hash.update(key.version.to_le_bytes());
    hash.update(key.sql.as_bytes());
    format!("{PREFIX}{}", hex::encode(hash.finalize()))
}

/// A truncation reason read back from Redis, as the audit record names it.
fn truncation(reason: &str) -> &'static str {
    match reason {
        "rows" => "rows",
        "bytes" => "bytes",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hide_their_parts_and_differ_by_each() {
        let key = |access: &str, version: u64, sql: &str| {
            redis_key(&ResultKey { access: access.to_owned(), version, sql: sql.to_owned() })
        };
        let base = key("m:1;-", 7, "SELECT 1");
        assert!(base.starts_with(PREFIX) && base.len() == PREFIX.len() + 64, "{base}");
        assert!(!base.contains("SELECT") && !base.contains("m:1"), "{base}");
        assert_ne!(base, key("m:2;-", 7, "SELECT 1"));
        assert_ne!(base, key("m:1;-", 8, "SELECT 1"));
        assert_ne!(base, key("m:1;-", 7, "SELECT 2"));
        // Moving text between the parts moves the hash.
        assert_ne!(key("ab", 1, "c"), key("a", 1, "bc"));
    }
}
