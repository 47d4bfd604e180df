//! One caller's turn on a pooled connection: every path that runs SQL for a caller goes through
//! [`Connections::in_tenant_tx`], so what happens to the connection when a call ends, is cancelled or is dropped
//! is decided in one place.
//!
//! # Why a cancelled call's connection is discarded, never reused
//!
//! A cancel request does not travel on the connection it cancels: it is a separate connection to the server
//! carrying the backend's process id and secret key, and the server acts on it whenever it arrives, on whatever
//! that backend is running at that moment. If the cancelled statement has just ended by itself, the cancel lands
//! on the backend's *next* statement. Handing the connection to the next caller would let one tenant's departure
//! stop another tenant's query with "canceling statement due to user request" (issue #10).
//!
//! Waiting instead cannot be made safe from the client side: an error coming back proves the cancel was
//! consumed, but a statement that ended normally proves nothing (the cancel may still be on its way, and the
//! server only ignores one that reaches an idle backend, not one that reaches a backend that has already read the
//! next caller's command). So a connection whose call was cancelled, or whose caller went away while it was in
//! use, is closed, and the pool opens a fresh one when it needs it (a few milliseconds, paid only by
//! cancellations). A late cancel then finds a backend that is gone (its process id may be reused, but the secret
//! key is per backend, so it cannot match).
//!
//! The cancel is still sent first, so a long statement stops promptly: closing our side alone would leave the
//! backend computing until it next writes to the socket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use deadpool_postgres::{ClientWrapper, Object, Pool};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::CancelTarget;
use super::context::{self, SignedContext};
use super::fair::{FairShare, TenantSlots};
use super::query::QueryError;
use super::session;

/// The query role's connections: the pool, each tenant's share of it (`db::fair`), and where cancel requests
/// for its connections go.
pub struct Connections {
    pool: Pool,
    slots: TenantSlots,
    share: FairShare,
    cancel_to: CancelTarget,
}

impl Connections {
    pub fn new(pool: Pool, share: FairShare, cancel_to: CancelTarget) -> Self {
        Self { pool, slots: TenantSlots::new(share), share, cancel_to }
    }

    /// The pool itself, for work that is not a caller's (health checks, startup).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs `work` in the caller's read-only tenant transaction (context `ctx`, statement timeout `timeout`),
    /// after `prepare` has prepared (or taken from the connection's cache) what it needs, then rolls back and
    /// hands the connection back only if its session is clean (`db::session`).
    ///
    /// The transaction is opened in the same round trip as `work`'s first statements: the opening (`BEGIN READ
    /// ONLY` and the `SET LOCAL`s, one simple-protocol message) is queued first and `work` is polled right
    /// after it, so PostgreSQL reads them in that order and answers them together. If the opening fails,
    /// its error is the call's: what `work` sent after it ran in an aborted transaction (and would, even in
    /// the impossible case of a failed `BEGIN`, have run read-only by the role's default and without a tenant
    /// context, so it sees no tenant's rows). With [`Shape::OneTrip`] the end of the transaction goes out in
    /// that round trip too.
    ///
    /// If `cancel` fires first (the caller's `notifications/cancelled`), or the returned future is dropped (the
    /// caller went away), the running statement is cancelled in PostgreSQL and the connection discarded.
    pub async fn in_tenant_tx<S, T>(
        &self,
        call: TenantCall<'_>,
        cancel: &CancellationToken,
        prepare: impl AsyncFnOnce(&ClientWrapper) -> Result<S, tokio_postgres::Error>,
        work: impl AsyncFnOnce(&Client, S, &Unread) -> Result<T, QueryError>,
    ) -> Result<T, QueryError> {
        let TenantCall { ctx, timeout, summary, shape } = call;
        // First one of the tenant's own slots, then a connection: a tenant at its share waits for itself only.
        let acquired = async {
            let slot = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(QueryError::Cancelled),
                s = self.slots.acquire(ctx.tenant_scope()) => s.ok_or(QueryError::TenantBusy { share: self.share.per_tenant })?,
            };
            let waiting = std::time::Instant::now();
            let client = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(QueryError::Cancelled),
                c = self.pool.get() => c?,
            };
            crate::telemetry::series::pool_wait(waiting.elapsed());
            Ok((slot, client))
        };
        let (_slot, client) = acquired.instrument(tracing::info_span!("pool.wait")).await?;
        let mut held = InFlight { client: Some(client), cancel_to: self.cancel_to.clone() };
        let finished = {
            // The database span, after the OpenTelemetry conventions for database calls: named by its summary
            // (operation and tables), never by the SQL's text or literals.
            let span = tracing::info_span!(
                "db",
                otel.name = summary,
                otel.kind = "client",
                db.system = "postgresql",
                db.system.name = "postgresql",
                db.namespace = crate::db::roles::DATABASE,
                db.query.summary = summary,
                db.query.fingerprint = tracing::field::Empty,
                db.response.returned_rows = tracing::field::Empty,
            );
            let work = async {
                let wrapper: &ClientWrapper = held.client();
                let client: &Client = wrapper;
                let pg = |e| QueryError::from_pg(e, timeout);
                let prepared = match prepare(wrapper).await {
                    Ok(prepared) => prepared,
                    // No transaction was opened; the session is asked about all the same.
                    Err(e) => return (Err(pg(e)), Some(session::end(wrapper).await)),
                };
                let opening = context::opening(ctx, timeout);
                let unread = Unread::default();
                let (opened, worked, ended) = match shape {
                    Shape::OneTrip => {
                        // The end is sent by its first poll, right after the work's; it is awaited only if the
                        // work read its statements to their end.
                        let mut end = std::pin::pin!(session::end(wrapper));
                        let mut early = None;
                        let send_end = std::future::poll_fn(|cx| {
                            if let Poll::Ready(r) = end.as_mut().poll(cx) {
                                early = Some(r);
                            }
                            Poll::Ready(())
                        });
                        let (opened, worked, ()) =
                            tokio::join!(client.batch_execute(&opening), work(client, prepared, &unread), send_end);
                        let ended = match early {
                            _ if unread.is_marked() => None,
                            Some(r) => Some(r),
                            None => Some(end.await),
                        };
                        (opened, worked, ended)
                    }
                    Shape::Steps => {
                        let (opened, worked) =
                            tokio::join!(client.batch_execute(&opening), work(client, prepared, &unread));
                        let ended = if unread.is_marked() { None } else { Some(session::end(wrapper).await) };
                        (opened, worked, ended)
                    }
                };
                (opened.map_err(pg).and(worked), ended)
            }
            .instrument(span);
            tokio::select! {
                r = work => Some(r),
                _ = cancel.cancelled() => None,
            }
        };
        match finished {
            Some((result, Some(ended))) => {
                session::settle(held.finish(), ended);
                result
            }
            // The work stopped reading a result before its end: the statement may still be running, so it is
            // cancelled (from a task of its own) and the connection discarded, as for a caller who went away.
            Some((result, None)) => {
                drop(held);
                result
            }
            None => {
                let client = held.finish();
                let token = client.cancel_token();
                if let Err(e) = self.cancel_to.cancel(&token).await {
                    tracing::warn!(error = %e, "could not ask PostgreSQL to cancel a cancelled call's statement");
                }
                session::discard(client);
                Err(QueryError::Cancelled)
            }
        }
    }
}

/// Lets a call's work say that it stopped reading a statement's result before its end (a result over the row or
/// byte cap): the statement may still be running, so the connection is not handed on (`db::call`).
#[derive(Debug, Default)]
pub struct Unread(AtomicBool);

impl Unread {
    fn is_marked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The work left a result unread.
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What a caller's turn on a connection runs as: the signed context, the statement timeout, the summary that
/// names its database span (operation and tables, never the SQL's text), and its [`Shape`].
#[derive(Debug, Clone, Copy)]
pub struct TenantCall<'a> {
    pub ctx: &'a SignedContext,
    pub timeout: Duration,
    pub summary: &'a str,
    pub shape: Shape,
}

/// How a call's statements share round trips with the end of its transaction (ROLLBACK and the session check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The work sends every statement it will send when it is first polled (one statement, or a `join!` of
    /// several), so the end goes out behind them and the whole call is one round trip. A work that waited for
    /// an answer before sending more would have its later statements run after the ROLLBACK, outside the
    /// tenant transaction (read only by the role's default, with no tenant context: no rows, not a leak).
    OneTrip,
    /// The work waits for answers between statements: the transaction ends after it, one round trip more.
    Steps,
}

/// A pooled connection while a caller's call runs on it. Dropped before [`InFlight::finish`] (the caller went
/// away), it discards the connection and sends the cancel from a task of its own.
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
