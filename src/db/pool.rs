//! The query-role connection pool: bounded, with an acquire timeout so a saturated server answers "busy"
//! quickly instead of queueing calls forever (the origin's pool of 3 with no timeout, P1), and sized by load
//! between its bounds: connections open on demand up to `max_size`, those idle longer than `idle_timeout` are
//! closed down to `min_idle`, and `min_idle` are kept open ready for the next calls ([`adapt`]).

use std::time::Duration;

use anyhow::Result;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use super::bounded::BoundedConnect;
use super::endpoint::Endpoint;

#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_size: usize,
    pub acquire_timeout: Duration,
    /// Connections kept open when the server is quiet.
    pub min_idle: usize,
    /// How long a connection may stay unused before it is closed (while more than `min_idle` are open).
    pub idle_timeout: Duration,
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
        Self {
            max_size: 16,
            acquire_timeout: Duration::from_secs(5),
            min_idle: 2,
            idle_timeout: Duration::from_secs(300),
        }
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

/// Keeps `pool` between its bounds for as long as it exists (it holds only a weak reference): each tick closes the
/// connections unused for `idle_timeout` while more than `min_idle` are open, and opens connections up to
/// `min_idle` (at start, and after a database restart emptied the pool). Ticks every half idle timeout, at most
/// every 30 s.
pub async fn adapt(weak: deadpool_postgres::WeakPool, settings: PoolSettings) {
    let tick = (settings.idle_timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(30));
    loop {
        let Some(pool) = weak.upgrade() else { return };
        shrink(&pool, settings);
        warm(&pool, settings.min_idle.min(settings.max_size)).await;
        drop(pool);
        tokio::time::sleep(tick).await;
    }
}

/// Closes idle connections unused for the idle timeout, keeping at least `min_idle` open.
fn shrink(pool: &Pool, settings: PoolSettings) {
    let mut open = pool.status().size;
    let closed = pool.retain(|_, metrics| {
        let keep = open <= settings.min_idle || metrics.last_used() < settings.idle_timeout;
        if !keep {
            open -= 1;
        }
        keep
    });
    if !closed.removed.is_empty() {
        tracing::debug!(closed = closed.removed.len(), open = closed.retained, "closed idle database connections");
    }
}

/// Opens connections until `min` are open (a failure is left for the next tick, and for the calls to report).
async fn warm(pool: &Pool, min: usize) {
    let missing = min.saturating_sub(pool.status().size);
    if missing == 0 {
        return;
    }
    let opened = futures_util::future::join_all((0..missing).map(|_| pool.get())).await;
    // Dropped together, they go back to the pool unused (and so clean).
    drop(opened);
}
