//! Running one guarded, model-written query inside the caller's tenant transaction, with caps.
//!
//! The statement goes through the extended protocol only (never the simple protocol, which would accept
//! several statements). Rows are fetched through a portal limited to `max_rows + 1`, so a `SELECT *` over
//! 400,000 line items never materialises more than the cap; values are decoded exactly (`db::decode`) and
//! counted against a byte cap. A cancellation (the client's `notifications/cancelled`, or the call being
//! dropped) cancels the running PostgreSQL statement, not just the wait for it, and the connection is discarded
//! rather than handed to the next caller: `db::call` says why, for this and every other caller's SQL.

use std::time::Duration;

use deadpool_postgres::PoolError;
use futures_util::TryStreamExt;
use serde_json::Value;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};
use tokio_util::sync::CancellationToken;

use super::call::{Connections, Shape, TenantCall, Unread};
use super::context::SignedContext;
use super::decode::{self, ColumnInfo};
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
    /// The caller's tenant already runs as many calls as its share of the connections (`db::fair`).
    #[error(
        "this store (or region) is already running as many queries at once as it may ({share}); wait for them to \
         finish before sending more"
    )]
    TenantBusy { share: usize },
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The caller cancelled the call or went away; the statement was stopped in the database.
    #[error("the call was cancelled by its caller, and its statement was stopped in the database")]
    Cancelled,
    /// The statement ran past the transaction's `statement_timeout`.
    #[error("PostgreSQL stopped the query: it ran longer than the {} limit for one query", limit_text(*.limit))]
    TimedOut { limit: Duration },
    /// The statement was cancelled by something other than this server on the caller's behalf (an administrator's
    /// `pg_cancel_backend`, a server shutting down): zava-mcp never lets its own cancels reach another call.
    #[error(
        "PostgreSQL cancelled the statement at someone else's request (an administrator, or a server shutting \
         down), not because of the query: run it again"
    )]
    Interrupted,
    /// One row (or another message) of the result was over the connection's bound (`db::bounded`).
    #[error("{message}")]
    TooLarge { message: String, hint: Option<String> },
    #[error("{message}")]
    Database { sqlstate: String, message: String, detail: Option<String>, hint: Option<String>, position: Option<u32> },
    #[error(transparent)]
    Decode(#[from] decode::DecodeError),
}

/// The SQLSTATE of a cancelled statement, whatever cancelled it.
pub(crate) const QUERY_CANCELED: &str = "57014";

/// A duration as a person reads a limit: "30 s", "1.5 s", "500 ms".
fn limit_text(d: Duration) -> String {
    match d.as_millis() {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms % 1000 == 0 => format!("{} s", ms / 1000),
        ms => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

impl QueryError {
    /// A short, stable name of the failure, for audit records (the SQLSTATE for database errors).
    pub fn code(&self) -> String {
        match self {
            QueryError::Busy => "busy".into(),
            QueryError::TenantBusy { .. } => "tenant_busy".into(),
            QueryError::Unavailable(_) => "unavailable".into(),
            QueryError::Cancelled => "cancelled".into(),
            QueryError::TimedOut { .. } => "timed_out".into(),
            QueryError::Interrupted => "interrupted".into(),
            QueryError::TooLarge { .. } => "too_large".into(),
            QueryError::Database { sqlstate, .. } => format!("sqlstate_{sqlstate}"),
            QueryError::Decode(_) => "decode".into(),
        }
    }

    /// A database error as the caller should read it. `timeout` is the statement timeout the call ran under.
    pub(crate) fn from_pg(e: tokio_postgres::Error, timeout: Duration) -> Self {
        let Some(db) = e.as_db_error() else {
            return QueryError::Unavailable(e.to_string());
        };
        let sqlstate = db.code().code().to_owned();
        if db.message().starts_with(super::bounded::MESSAGE_TOO_LARGE) {
            return QueryError::TooLarge { message: db.message().to_owned(), hint: db.hint().map(str::to_owned) };
        }
        if sqlstate == QUERY_CANCELED {
            // PostgreSQL says which: "canceling statement due to statement timeout" or "... user request".
            if db.message().contains("statement timeout") {
                return QueryError::TimedOut { limit: timeout };
            }
            tracing::warn!(message = db.message(), "a statement was cancelled by someone other than its caller");
            return QueryError::Interrupted;
        }
        let position = match db.position() {
            Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p),
            _ => None,
        };
        QueryError::Database {
            sqlstate,
            message: db.message().to_owned(),
            detail: db.detail().map(str::to_owned),
            hint: db.hint().map(str::to_owned),
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

/// Runs `sql` for the tenant whose signed context is `ctx`, in one round trip to PostgreSQL: the transaction's
/// opening, the statement, the ROLLBACK and the session check, pipelined.
pub async fn run(
    db: &Connections,
    ctx: &SignedContext,
    sql: &ReadOnlySql,
    limits: Limits,
    cancel: &CancellationToken,
) -> Result<QueryOutput, QueryError> {
    // The summary costs a parse: only worth it when traces are exported.
    let summary = if crate::telemetry::traces::exporting() { sql.summary() } else { "SELECT".to_owned() };
    let call = TenantCall { ctx, timeout: limits.statement_timeout, summary: &summary, shape: Shape::OneTrip };
    db.in_tenant_tx(call, cancel, async |_| Ok(()), async |client, (), unread| fetch(client, sql, limits, unread).await)
        .await
}

/// Runs the SQL as one unnamed extended-protocol statement (never the simple protocol, which would run text
/// after a `;`), sent in the same round trip as the transaction's opening and end (`db::call`), and reads its
/// rows as they arrive, so that the caps bound memory, not just the answer.
///
/// The columns come with the first row, so an empty result has none: `{"c":[],"r":[],"n":0,"msg":"No rows"}`,
/// as the origin answered (a description would cost two more round trips, on what under row-level security is
/// a common answer).
///
/// Rows are decoded one by one; at the first row over a cap, reading stops and the call marks the result
/// [`Unread`]: the statement is cancelled in PostgreSQL and its connection discarded (`db::call` says why a
/// cancelled connection is never reused), so a `SELECT *` over 400,000 line items costs PostgreSQL no more than
/// what fits in the socket's buffers before the cancel arrives, and the server one reconnection. A result
/// within the caps is read to its end and its connection reused. No named statement or portal is made, so the
/// call also runs through a connection pooler in transaction mode.
async fn fetch(client: &Client, sql: &ReadOnlySql, limits: Limits, unread: &Unread) -> Result<QueryOutput, QueryError> {
    if crate::telemetry::traces::exporting()
        && let Some(fingerprint) = sql.fingerprint()
    {
        tracing::Span::current().record("db.query.fingerprint", fingerprint);
    }
    let t = limits.statement_timeout;
    let pg = |e| QueryError::from_pg(e, t);
    let no_params = std::iter::empty::<(&(dyn ToSql + Sync), Type)>();
    let stream = client.query_typed_raw(sql.as_str(), no_params).await.map_err(pg)?;
    let mut stream = std::pin::pin!(stream);
    let mut collected = Collector::new(limits);
    while let Some(row) = stream.try_next().await.map_err(pg)? {
        if !collected.push(&row)? {
            unread.mark();
            break;
        }
    }
    let out = collected.finish();
    tracing::Span::current().record("db.response.returned_rows", out.rows.len());
    Ok(out)
}

/// A result being read: rows decoded as they arrive and counted against the caps (the byte cap counts each
/// row's compact JSON, as the result will show it, without building the text).
pub struct Collector {
    limits: Limits,
    out: QueryOutput,
    bytes: usize,
}

impl Collector {
    pub fn new(limits: Limits) -> Self {
        Self { limits, out: QueryOutput { columns: Vec::new(), rows: Vec::new(), truncated: None }, bytes: 0 }
    }

    /// Takes one more row, or, when it is over a cap, marks the result truncated and answers `false`: stop
    /// reading.
    pub fn push(&mut self, row: &Row) -> Result<bool, decode::DecodeError> {
        let out = &mut self.out;
        if out.rows.is_empty() {
            out.columns = decode::columns(row.columns());
        }
        if out.rows.len() == self.limits.max_rows {
            out.truncated = Some(Truncation::Rows(self.limits.max_rows));
            return Ok(false);
        }
        let values = decode::row_values(row)?;
        let mut size = ByteCount(1);
        // Writing JSON into a counter cannot fail.
        let _ = serde_json::to_writer(&mut size, &values);
        if self.bytes + size.0 > self.limits.max_bytes {
            out.truncated = Some(Truncation::Bytes(self.limits.max_bytes));
            return Ok(false);
        }
        self.bytes += size.0;
        out.rows.push(values);
        Ok(true)
    }

    pub fn finish(self) -> QueryOutput {
        self.out
    }
}

/// An `io::Write` that only counts what is written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
