//! Running one guarded, model-written query inside the caller's tenant transaction, with caps.
//!
//! The statement goes through the extended protocol only (never the simple protocol, which would accept
//! several statements). Rows are fetched through a portal limited to `max_rows + 1`, so a `SELECT *` over
//! 400,000 line items never materialises more than the cap; values are decoded exactly (`db::decode`) and
//! counted against a byte cap. A cancellation (the client's `notifications/cancelled`, or the call being
//! dropped) cancels the running PostgreSQL statement, not just the wait for it, and the connection is discarded
//! rather than handed to the next caller (the cancel request may land after the statement ended).

use std::time::Duration;

use deadpool_postgres::{Object, Pool, PoolError};
use futures_util::TryStreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::CancelTarget;
use super::context::{self, SignedContext};
use super::decode::{self, ColumnInfo};
use super::session;
use crate::guard::ReadOnlySql;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub statement_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_rows: 500, max_bytes: 256 * 1024, statement_timeout: Duration::from_secs(30) }
    }
}

/// Why a result was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    Rows(usize),
    Bytes(usize),
}

#[derive(Debug)]
pub struct QueryOutput {
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: Option<Truncation>,
}

/// A failed query, with what a model needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("the server is busy (all database connections are in use); try again in a moment")]
    Busy,
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("the query was cancelled")]
    Cancelled,
    /// One row (or another message) of the result was over the connection's bound (`db::bounded`).
    #[error("{message}")]
    TooLarge { message: String, hint: Option<String> },
    #[error("{message}")]
    Database { sqlstate: String, message: String, detail: Option<String>, hint: Option<String>, position: Option<u32> },
    #[error(transparent)]
    Decode(#[from] decode::DecodeError),
}

impl QueryError {
    fn from_pg(e: tokio_postgres::Error, timeout: Duration) -> Self {
        let Some(db) = e.as_db_error() else {
            return QueryError::Unavailable(e.to_string());
        };
        let sqlstate = db.code().code().to_owned();
        if db.message().starts_with(super::bounded::MESSAGE_TOO_LARGE) {
            return QueryError::TooLarge { message: db.message().to_owned(), hint: db.hint().map(str::to_owned) };
        }
        let mut hint = db.hint().map(str::to_owned);
        if sqlstate == "57014" && hint.is_none() {
            hint = Some(format!(
                "The query ran longer than {} s and was stopped. Filter (for example by date range) or aggregate more.",
                timeout.as_secs()
            ));
        }
        let position = match db.position() {
            Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
            _ => None,
        };
        QueryError::Database {
            sqlstate,
            message: db.message().to_owned(),
            detail: db.detail().map(str::to_owned),
            hint,
            position,
        }
    }
}

impl From<PoolError> for QueryError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Timeout(_) => QueryError::Busy,
            other => QueryError::Unavailable(other.to_string()),
        }
    }
}

/// Runs `sql` for the tenant whose signed context is `ctx`.
pub async fn run(
    pool: &Pool,
    cancel_to: &CancelTarget,
    ctx: &SignedContext,
    sql: &ReadOnlySql,
    limits: Limits,
    cancel: &CancellationToken,
) -> Result<QueryOutput, QueryError> {
    let client = tokio::select! {
        c = pool.get() => c?,
        _ = cancel.cancelled() => return Err(QueryError::Cancelled),
    };
    let token = client.cancel_token();
    let mut call = InFlight { client: Some(client), cancel_to: cancel_to.clone() };
    let finished = {
        let work = async {
            let tx = context::begin(call.client(), ctx, limits.statement_timeout)
                .await
                .map_err(|e| QueryError::Unavailable(format!("{e:#}")))?;
            fetch(&tx, sql, limits).await
            // Dropping `tx` queues its ROLLBACK; `session::release` waits for it.
        };
        tokio::select! {
            r = work => Some(r),
            _ = cancel.cancelled() => None,
        }
    };
    let client = call.finish();
    match finished {
        Some(result) => {
            session::release(client).await;
            result
        }
        None => {
            if let Err(e) = cancel_to.cancel(&token).await {
                tracing::warn!(error = %e, "could not ask PostgreSQL to cancel a cancelled call's statement");
            }
            // The cancel may reach PostgreSQL after the statement ended: never hand this connection on.
            session::discard(client);
            Err(QueryError::Cancelled)
        }
    }
}

/// Fetches the result as it arrives, so that the byte cap bounds memory, not just the answer: rows are decoded
/// one by one from the portal's stream and fetching stops at the first row over a cap (the rest of the batch is
/// read and dropped by the connection, one message at a time; `db::bounded` bounds one message).
async fn fetch(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &ReadOnlySql,
    limits: Limits,
) -> Result<QueryOutput, QueryError> {
    let t = limits.statement_timeout;
    let pg = |e| QueryError::from_pg(e, t);
    let stmt = tx.prepare(sql.as_str()).await.map_err(pg)?;
    let columns = decode::columns(stmt.columns());
    let portal = tx.bind(&stmt, &[]).await.map_err(pg)?;
    let stream = tx.query_portal_raw(&portal, (limits.max_rows + 1) as i32).await.map_err(pg)?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    let mut truncated = None;
    while let Some(row) = stream.try_next().await.map_err(pg)? {
        if rows.len() == limits.max_rows {
            truncated = Some(Truncation::Rows(limits.max_rows));
            break;
        }
        let values = decode::row_values(&row)?;
        let size = serde_json::to_string(&values).map(|s| s.len() + 1).unwrap_or(0);
        if bytes + size > limits.max_bytes {
            truncated = Some(Truncation::Bytes(limits.max_bytes));
            break;
        }
        bytes += size;
        rows.push(values);
    }
    Ok(QueryOutput { columns, rows, truncated })
}

/// A pooled connection while a caller's statement runs on it. If the call is dropped before it finishes (the
/// caller went away), the statement is cancelled in PostgreSQL and the connection discarded, never handed to the
/// next caller: the cancel request travels on a connection of its own and may arrive after the statement ended,
/// and would then stop whatever that connection runs next.
struct InFlight {
    client: Option<Object>,
    cancel_to: CancelTarget,
}

impl InFlight {
    fn client(&mut self) -> &mut Object {
        self.client.as_mut().expect("the connection stays in flight until `finish` or drop")
    }

    /// The call ended (with a result or by its caller's cancellation): the connection is the caller's again.
    fn finish(mut self) -> Object {
        self.client.take().expect("`finish` takes the connection once")
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        let token = client.cancel_token();
        session::discard(client);
        let target = self.cancel_to.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = target.cancel(&token).await {
                    tracing::warn!(error = %e, "could not ask PostgreSQL to cancel the statement of a caller who left");
                }
            });
        }
    }
}
