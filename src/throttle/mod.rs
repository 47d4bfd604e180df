//! Per-caller limits on tool calls: a rate (token bucket, `rate`) and a cap on calls running at once.
//!
//! They exist for the runaway assistant: a loop that calls a tool as fast as it can would otherwise take the
//! database from every other store. The defaults (300 calls a minute, with a minute's worth as a burst, and 8 at
//! once) are far above what a person's assistant does and far below what a loop does. Limits are per role
//! (store manager, regional manager, head office), counted per caller (a token's subject, an API key, a header
//! identity), and shared by every replica when Redis is configured (`redis`). Over HTTP a refused call is a 429
//! with `Retry-After` (`http`); over stdio it is a tool error.
//!
//! If Redis stops answering, each replica falls back to its own counts (and says so in the log), so limits
//! loosen to per-replica ones rather than stopping every call.

pub(crate) mod http;
pub mod rate;
mod redis;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;

use crate::auth::Principal;
use crate::tenant::Tenant;
use rate::{MemoryCells, RateLimit};
use redis::RedisCells;

/// What a caller is, for choosing its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    StoreManager,
    RegionalManager,
    HeadOffice,
}

impl Role {
    const ALL: [Role; 3] = [Role::StoreManager, Role::RegionalManager, Role::HeadOffice];

    pub fn of(tenant: &Tenant) -> Role {
        match tenant {
            Tenant::HeadOffice => Role::HeadOffice,
            Tenant::Managers(ids) if ids.len() > 1 => Role::RegionalManager,
            Tenant::Managers(_) => Role::StoreManager,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Role::StoreManager => "store_manager",
            Role::RegionalManager => "regional_manager",
            Role::HeadOffice => "head_office",
        }
    }
}

/// One value per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerRole<T>([T; 3]);

impl<T: Copy> PerRole<T> {
    pub fn all(value: T) -> Self {
        Self([value; 3])
    }

    pub fn get(&self, role: Role) -> T {
        self.0[role as usize]
    }

    /// Applies `VALUE` (every role) and `ROLE=VALUE` entries in order; `parse` reads one value.
    pub fn with_entries(
        mut self,
        entries: &[String],
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Self, String> {
        for entry in entries {
            match entry.split_once('=') {
                Some((role, value)) => {
                    let wanted = role.trim().replace('-', "_").to_ascii_lowercase();
                    let role = Role::ALL.into_iter().find(|r| r.name() == wanted).ok_or_else(|| {
                        format!(
                            "`{}` is not a role; the roles are store_manager, regional_manager, head_office",
                            role.trim()
                        )
                    })?;
                    self.0[role as usize] = parse(value)?;
                }
                None => self = Self::all(parse(entry)?),
            }
        }
        Ok(self)
    }
}

/// The limits, parsed once from flags and environment.
#[derive(Clone)]
pub struct ThrottleSettings {
    /// `None`: no rate limit for that role.
    pub rate: PerRole<Option<RateLimit>>,
    pub concurrent: PerRole<u32>,
    /// Shared counts across replicas; never logged (it may hold a password).
    pub redis_url: Option<String>,
    /// The longest one call can take (its statement timeout and then some): how long a dead replica's count of
    /// running calls lingers in Redis.
    pub longest_call: Duration,
}

impl fmt::Debug for ThrottleSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleSettings")
            .field("rate", &self.rate)
            .field("concurrent", &self.concurrent)
            .field("redis", &self.redis_url.as_ref().map(|_| "(set)"))
            .field("longest_call", &self.longest_call)
            .finish()
    }
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            rate: PerRole::all(Some(RateLimit { calls: 300, period: Duration::from_secs(60) })),
            concurrent: PerRole::all(8),
            redis_url: None,
            longest_call: Duration::from_secs(120),
        }
    }
}

/// Who a limit is counted for: a verified principal, a header identity, or the one stdio process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    key: String,
    role: Role,
}

impl Caller {
    pub fn principal(p: &Principal) -> Self {
        // A token without `sub` is counted by the stores it maps to, never lumped with other such tokens.
        let key = if p.subject == "(no sub)" { format!("tenant:{}", p.tenant.scope()) } else { p.subject.clone() };
        Self { key: format!("sub:{key}"), role: Role::of(&p.tenant) }
    }

    pub fn tenant(tenant: &Tenant) -> Self {
        Self { key: format!("tenant:{}", tenant.scope()), role: Role::of(tenant) }
    }
}

/// Why a call was not let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "Too many calls: this caller is limited to {limit} tool calls and has used them up; retry in {} s",
        retry_secs(*.retry_after)
    )]
    Rate { limit: RateLimit, retry_after: Duration },
    #[error(
        "Too many calls at once: this caller may run {limit} tool calls at the same time; wait for one to \
         finish and retry"
    )]
    Concurrency { limit: u32 },
}

impl Refusal {
    /// Which limit refused: `rate` or `concurrency` (a metric label).
    pub fn limit_name(&self) -> &'static str {
        match self {
            Refusal::Rate { .. } => "rate",
            Refusal::Concurrency { .. } => "concurrency",
        }
    }
}

fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Refusal {
    /// For `Retry-After`: whole seconds, at least one.
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Refusal::Rate { retry_after, .. } => retry_secs(*retry_after).max(1),
            Refusal::Concurrency { .. } => 1,
        }
    }
}

/// The limits and their counts.
pub struct Throttle {
    settings: ThrottleSettings,
    rates: MemoryCells,
    running: Mutex<HashMap<String, u32>>,
    redis: Option<RedisCells>,
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle").field("shared", &self.redis.is_some()).finish_non_exhaustive()
    }
}

/// A running call's place under its caller's concurrency cap; given back when dropped.
pub struct CallPermit {
    throttle: Arc<Throttle>,
    key: String,
    /// Counted in Redis (else in this process).
    shared: bool,
}

impl Throttle {
    /// The limits, connected to Redis when a URL is configured (an unreachable Redis is an error at start).
    pub async fn start(settings: ThrottleSettings) -> Result<Arc<Self>> {
        let redis = match &settings.redis_url {
            Some(url) => Some(RedisCells::connect(url, settings.longest_call * 2).await?),
            None => None,
        };
        Ok(Arc::new(Self { settings, rates: MemoryCells::new(), running: Mutex::default(), redis }))
    }

    /// Where counts are kept, and whether that store answers: for `/health/ready`.
    pub async fn status(&self) -> serde_json::Value {
        match &self.redis {
            None => serde_json::json!({"shared": false, "ok": true}),
            Some(r) => match r.ping().await {
                Ok(()) => serde_json::json!({"shared": true, "ok": true}),
                Err(e) => serde_json::json!({"shared": true, "ok": false, "reason": format!("Redis: {e}")}),
            },
        }
    }

    /// Lets one call of `caller` through, or says why not. Keep the permit until the call has finished.
    pub async fn admit(self: &Arc<Self>, caller: &Caller) -> Result<CallPermit, Refusal> {
        let limit = self.settings.concurrent.get(caller.role);
        let Some(shared) = self.acquire(&caller.key, limit).await else {
            tracing::warn!(role = caller.role.name(), limit, "refused a call: too many at once for this caller");
            return Err(Refusal::Concurrency { limit });
        };
        let permit = CallPermit { throttle: self.clone(), key: caller.key.clone(), shared };
        if let Some(limit) = self.settings.rate.get(caller.role)
            && let Err(retry_after) = self.take(&caller.key, limit).await
        {
            tracing::warn!(role = caller.role.name(), %limit, "refused a call: over the rate limit");
            return Err(Refusal::Rate { limit, retry_after });
        }
        Ok(permit)
    }

    async fn take(&self, key: &str, limit: RateLimit) -> Result<(), Duration> {
        if let Some(r) = &self.redis {
            match r.take(key, limit).await {
                Ok(answer) => return answer,
                Err(e) => tracing::warn!(error = %e, "Redis did not answer a rate check; counting in this process"),
            }
        }
        self.rates.take(key, limit)
    }

    /// `Some(shared)` when the call may run, counted in Redis (`true`) or in this process.
    async fn acquire(&self, key: &str, limit: u32) -> Option<bool> {
        if let Some(r) = &self.redis {
            match r.acquire(key, limit).await {
                Ok(admitted) => return admitted.then_some(true),
                Err(e) => {
                    tracing::warn!(error = %e, "Redis did not answer a concurrency check; counting in this process")
                }
            }
        }
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let n = running.entry(key.to_owned()).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(false)
    }

    fn release_local(&self, key: &str) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get_mut(key) {
            Some(n) if *n > 1 => *n -= 1,
            _ => {
                running.remove(key);
            }
        }
    }
}

impl Drop for CallPermit {
    fn drop(&mut self) {
        // A permit counted in process (no Redis, or Redis was down when it was taken) is given back there.
        if !self.shared {
            return self.throttle.release_local(&self.key);
        }
        let Some(r) = self.throttle.redis.clone() else { return };
        let key = std::mem::take(&mut self.key);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = r.release(&key).await {
                    tracing::warn!(error = %e, "could not give a call back to Redis; its count expires by itself");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rate: &str, concurrent: u32) -> ThrottleSettings {
        ThrottleSettings {
            rate: PerRole::all(Some(rate.parse().unwrap())),
            concurrent: PerRole::all(concurrent),
            ..ThrottleSettings::default()
        }
    }

    #[test]
    fn per_role_entries_apply_in_order() {
        let parse = |s: &str| s.trim().parse::<u32>().map_err(|e| e.to_string());
        let v = PerRole::all(8).with_entries(&["4".into(), "head-office=16".into()], parse).unwrap();
        assert_eq!((v.get(Role::StoreManager), v.get(Role::RegionalManager), v.get(Role::HeadOffice)), (4, 4, 16));
        let e = PerRole::all(8).with_entries(&["admin=3".into()], parse).unwrap_err();
        assert!(e.contains("store_manager, regional_manager, head_office"), "{e}");
    }

    #[tokio::test]
    async fn callers_are_limited_apart_and_permits_come_back() {
        let t = Throttle::start(settings("3/min", 2)).await.unwrap();
        let seattle = Caller::tenant(&Tenant::from_uuid(uuid::Uuid::from_u128(1)));
        let redmond = Caller::tenant(&Tenant::from_uuid(uuid::Uuid::from_u128(2)));
        let a = t.admit(&seattle).await.unwrap();
        let _b = t.admit(&seattle).await.unwrap();
        assert_eq!(t.admit(&seattle).await.err(), Some(Refusal::Concurrency { limit: 2 }));
        let _c = t.admit(&redmond).await.expect("another caller is not held up");
        drop(a);
        let _d = t.admit(&seattle).await.expect("a finished call frees its place");
        drop(_d);
        match t.admit(&seattle).await.err() {
            Some(r @ Refusal::Rate { .. }) => {
                assert!((19..=20).contains(&r.retry_after_secs()), "{r}");
                assert!(r.to_string().contains("3/min"), "{r}");
            }
            other => panic!("expected a rate refusal, got {other:?}"),
        }
    }
}
