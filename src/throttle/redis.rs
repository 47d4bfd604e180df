//! Limits shared by every replica through Redis (`ZAVA_REDIS_URL`).
//!
//! Each check is one Lua script, so it is atomic across replicas: the rate is the same GCRA as in process
//! (`throttle::rate`), on Redis's own clock (`TIME`), so replicas' clocks need not agree; the concurrency cap is a
//! counter per caller, taken and given back by each call. A counter left behind by a replica that died mid-call
//! expires after the longest a call may take, so a crash cannot lock a caller out for good.
//!
//! Keys hold a SHA-256 of the caller, never a subject or an identity in clear.

use std::time::Duration;

use anyhow::{Context, Result};
use redis::aio::ConnectionManager;
use redis::{Script, ScriptInvocation};
use sha2::{Digest, Sha256};

use super::rate::RateLimit;

/// Returns 0 when the call is allowed (and stores the new TAT), else the microseconds to wait.
const RATE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next = tat + interval
if next - now > period then return next - now - period end
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.floor((next - now) / 1000) + 1)
return 0
";

/// Returns 1 and counts the call when fewer than ARGV[1] run, else 0.
const ACQUIRE: &str = r"
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return 0
end
return 1
";

/// Gives one call back, never below zero.
const RELEASE: &str = r"
local n = redis.call('DECR', KEYS[1])
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n
";

#[derive(Clone)]
pub(crate) struct RedisCells {
    connection: ConnectionManager,
    /// How long a call's concurrency count survives its replica.
    orphan_after: Duration,
    rate: std::sync::Arc<Script>,
    acquire: std::sync::Arc<Script>,
    release: std::sync::Arc<Script>,
}

impl RedisCells {
    /// Connects (the connection manager reconnects by itself afterwards). `url` is never logged: it may hold a
    /// password.
    pub async fn connect(url: &str, orphan_after: Duration) -> Result<Self> {
        let client = redis::Client::open(url).context("ZAVA_REDIS_URL is not a Redis URL (redis://host:port/db)")?;
        let connection = tokio::time::timeout(Duration::from_secs(5), client.get_connection_manager())
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer within 5 s"))?
            .context("cannot reach Redis (ZAVA_REDIS_URL): start it, or unset the URL to keep limits in process")?;
        Ok(Self {
            connection,
            orphan_after,
            rate: Script::new(RATE).into(),
            acquire: Script::new(ACQUIRE).into(),
            release: Script::new(RELEASE).into(),
        })
    }

    async fn run(&self, invocation: ScriptInvocation<'_>) -> redis::RedisResult<i64> {
        let mut connection = self.connection.clone();
        tokio::time::timeout(Duration::from_secs(2), invocation.invoke_async(&mut connection))
            .await
            .unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::Io, "Redis did not answer in 2 s"))))
    }

    /// Takes one call from the caller's budget: `Ok(Err(wait))` when over it.
    pub async fn take(&self, caller: &str, limit: RateLimit) -> redis::RedisResult<Result<(), Duration>> {
        let mut invocation = self.rate.prepare_invoke();
        invocation
            .key(key("rate", caller))
            .arg(limit.interval().as_micros() as i64)
            .arg(limit.period.as_micros() as i64);
        let wait = self.run(invocation).await?;
        Ok(if wait <= 0 { Ok(()) } else { Err(Duration::from_micros(wait as u64)) })
    }

    /// Counts one running call if fewer than `limit` run.
    pub async fn acquire(&self, caller: &str, limit: u32) -> redis::RedisResult<bool> {
        let mut invocation = self.acquire.prepare_invoke();
        invocation.key(key("running", caller)).arg(limit).arg(self.orphan_after.as_millis() as i64);
        Ok(self.run(invocation).await? == 1)
    }

    pub async fn release(&self, caller: &str) -> redis::RedisResult<()> {
        let mut invocation = self.release.prepare_invoke();
        invocation.key(key("running", caller));
        self.run(invocation).await.map(|_| ())
    }

    /// One round trip, for the readiness probe.
    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut connection = self.connection.clone();
        redis::cmd("PING").query_async::<String>(&mut connection).await.map(|_| ())
    }
}

fn key(kind: &str, caller: &str) -> String {
    format!("zava:{kind}:{}", hex::encode(&Sha256::digest(caller.as_bytes())[..16]))
}
