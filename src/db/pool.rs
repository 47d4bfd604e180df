//! The query-role connection pool: bounded, with an acquire timeout so a saturated server answers "busy"
//! quickly instead of queueing calls forever (the origin's pool of 3 with no timeout, P1).

use std::time::Duration;

use anyhow::Result;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::endpoint::Endpoint;

#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_size: usize,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_size: 16, acquire_timeout: Duration::from_secs(5) }
    }
}

/// Builds the pool. Connections are opened lazily; `Fast` recycling is enough because every call ends its own
/// transaction with ROLLBACK and sets nothing at session level.
pub fn build(endpoint: &Endpoint, settings: PoolSettings) -> Result<Pool> {
    let manager =
        Manager::from_config(endpoint.config(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let timeout = Some(settings.acquire_timeout);
    Ok(Pool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(Runtime::Tokio1)
        .build()?)
}
