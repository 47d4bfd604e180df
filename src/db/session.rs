//! Handing a pooled connection back after a caller's call: only in a clean state, or not at all.
//!
//! Every call ends its tenant transaction with ROLLBACK, which undoes everything transaction-scoped. What a call
//! could still leave behind is session-scoped: an advisory lock, a setting changed for the session, a prepared
//! statement, a holdable cursor, a LISTEN. The guard refuses every way to make one and the database revokes the
//! functions behind them (`db/hardening.sql`); this is the third layer. After the ROLLBACK the connection asks
//! `zava_private.session_is_clean()` (migration V8), in the same round trip, and a connection that is not clean,
//! or cannot say, is discarded instead of returned: the pool opens a fresh one when it needs it.

use deadpool_postgres::Object;

/// Returns `client` to the pool if its session is clean, else closes it. Call it right after dropping the
/// call's transaction: the drop queues its ROLLBACK without waiting, and the check is pipelined behind it, so
/// ending a call costs one round trip, as a plain ROLLBACK did.
pub(crate) async fn release(client: Object) {
    let clean = client.query_one("SELECT zava_private.session_is_clean()", &[]).await.map(|r| r.get::<_, bool>(0));
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

/// Takes the connection out of the pool for good: it closes now, and the pool opens a new one when needed.
pub(crate) fn discard(client: Object) {
    drop(Object::take(client));
}
