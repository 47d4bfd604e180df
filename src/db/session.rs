//! Handing a pooled connection back after a caller's call: only in a clean state, or not at all.
//!
//! Every call ends its tenant transaction with ROLLBACK, which undoes everything transaction-scoped. What a call
//! could still leave behind is session-scoped: an advisory lock, a setting changed for the session (the tenant
//! context, row security, the read-only default), a role switch, a prepared statement, a holdable cursor, a
//! LISTEN. The guard refuses every way to make one and the database revokes the functions behind them
//! (`db/hardening.sql`); this is the third layer. After the ROLLBACK the connection answers
//! [`CLEAN_SESSION_CHECK`] (migration V8), in the same round trip, and a connection that is not clean, or cannot
//! say, is discarded instead of returned: the pool opens a fresh one when it needs it. The check costs PostgreSQL
//! about 0.1 ms a call (pgbench, one client: 0.185 ms against 0.086 ms for `SELECT 1`).

use deadpool_postgres::Object;

/// The question asked after every call: does the session carry anything, and is it still the login role (a
/// `SET ROLE` shows as `current_user <> session_user`, which only the caller's side of the function can see).
pub const CLEAN_SESSION_CHECK: &str = "SELECT zava_private.session_is_clean() AND current_user = session_user";

/// Returns `client` to the pool if its session is clean, else closes it. Call it right after dropping the
/// call's transaction: the drop queues its ROLLBACK without waiting, and the check is pipelined behind it, so
/// ending a call costs one round trip, as a plain ROLLBACK did. If this future is dropped before the answer
/// comes (the caller went away at the last moment), the connection is discarded: it is never handed on unchecked.
pub(crate) async fn release(client: Object) {
    let mut pending = Unchecked(Some(client));
    let client = pending.0.as_ref().expect("held until checked");
    let clean = match client.prepare_cached(CLEAN_SESSION_CHECK).await {
        Ok(statement) => client.query_one(&statement, &[]).await.map(|r| r.get::<_, bool>(0)),
        Err(e) => Err(e),
    };
    let client = pending.0.take().expect("held until checked");
    match clean {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                "discarded a database connection: a call left session state on it (an advisory lock, a session \
                 setting, a prepared statement, a cursor or a LISTEN), past the guard and the revokes"
            );
            discard(client);
        }
        Err(e) => {
            tracing::warn!(error = %e, "discarded a database connection whose state could not be checked");
            discard(client);
        }
    }
}

/// A connection whose session check has not answered yet: dropped as it is, it is discarded, not pooled.
struct Unchecked(Option<Object>);

impl Drop for Unchecked {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            discard(client);
        }
    }
}

/// Takes the connection out of the pool for good: it closes now, and the pool opens a new one when needed.
pub(crate) fn discard(client: Object) {
    drop(Object::take(client));
}
