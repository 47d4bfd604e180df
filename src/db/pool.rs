//! The query-role connection pool: bounded, with an acquire timeout so a saturated server answers "busy"
//! quickly instead of queueing calls forever (the origin's pool of 3 with no timeout, P1).

use std::time::Duration;

use anyhow::Result;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use super::bounded::BoundedConnect;
use super::endpoint::Endpoint;

#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_size: usize,
    pub acquire_timeout: Duration,
}

/// The longest message a connection accepts from PostgreSQL: a bound on one row of a result (`db::bounded`). A
/// row can be larger on the wire than in JSON (a small integer takes 6 bytes there, 2 in JSON), so it is four
/// times the result byte cap, and never less than 1 MiB (the server's own rows, such as product vectors, must
/// always fit).
fn message_bound(max_result_bytes: usize) -> u32 {
    max_result_bytes.saturating_mul(4).clamp(1 << 20, u32::MAX as usize) as u32
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self { max_size: 16, acquire_timeout: Duration::from_secs(5) }
    }
}

/// Builds the pool. Connections are opened lazily, through `db::bounded`; `Fast` recycling is enough because
/// every call ends its own transaction with ROLLBACK and `db::session` discards any connection left unclean.
pub fn build(endpoint: &Endpoint, settings: PoolSettings, max_result_bytes: usize) -> Result<Pool> {
    let connect = BoundedConnect { max_message: message_bound(max_result_bytes) };
    let manager =
        Manager::from_connect(endpoint.config(), connect, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let timeout = Some(settings.acquire_timeout);
    Ok(Pool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(Runtime::Tokio1)
        .build()?)
}
