//! Handing a pooled connection back after a caller's call: only in a clean state, or not at all.
//!
//! Every call ends its tenant transaction with ROLLBACK, which undoes everything transaction-scoped. What a call
//! could still leave behind is session-scoped: a setting changed for the session (the tenant context, row
//! security, the read-only default), a role switch, a prepared statement, a holdable cursor, a LISTEN. The guard
//! refuses every way to make one and the database revokes the functions behind them (`db/hardening.sql`); this
//! is the third layer. After the ROLLBACK the connection answers [`CLEAN_SESSION_CHECK`] (migrations V8 and
//! V11), in the same round trip, and a connection that is not clean, or cannot say, is discarded instead of
//! returned: the pool opens a fresh one when it needs it. Session advisory locks are not asked about: the role
//! cannot take one (the functions are revoked, which PostgreSQL enforces), and asking meant reading the whole
//! lock table on every call (V11). The check costs PostgreSQL about 0.06 ms a call (pgbench, one client,
//! prepared, pipelined: 0.159 ms against 0.101 ms for `SELECT 1`).

use deadpool_postgres::{ClientWrapper, Object};

/// The question asked after every call: does the session carry anything, and is it still the login role (a
/// `SET ROLE` shows as `current_user <> session_user`, which only the caller's side of the function can see).
pub const CLEAN_SESSION_CHECK: &str = "SELECT zava_private.session_is_clean() AND current_user = session_user";

/// Ends the call's transaction with ROLLBACK and asks whether the session is clean. The check is pipelined
/// behind the ROLLBACK, so ending a call costs one round trip, as a plain ROLLBACK did (none of its own when
/// `db::call` sends both behind the call's statements). A ROLLBACK outside a transaction is only a warning.
pub(crate) async fn end(client: &ClientWrapper) -> Result<bool, tokio_postgres::Error> {
    let checked = async {
        let statement = client.prepare_cached(CLEAN_SESSION_CHECK).await?;
        client.query_one(&statement, &[]).await.map(|r| r.get::<_, bool>(0))
    };
    let (rolled_back, checked) = tokio::join!(client.batch_execute("ROLLBACK"), checked);
    rolled_back.and(checked)
}

/// Returns `client` to the pool if [`end`] said its session is clean, else closes it. A call that never got
/// that far (cancelled, or its caller went away) never comes here: `db::call` discards its connection.
pub(crate) fn settle(client: Object, ended: Result<bool, tokio_postgres::Error>) {
    match ended {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                "discarded a database connection: a call left session state on it (a session setting, a \
                 prepared statement, a cursor or a LISTEN), past the guard and the revokes"
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
