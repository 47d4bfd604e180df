//! A caller who cancels or goes away must never cancel someone else's statement (issue #10). The cancel request
//! PostgreSQL gets travels on a connection of its own and acts on whatever the backend runs when it arrives; these
//! tests make it arrive late on purpose (`proxy`), first deterministically on a pool of one connection, then under
//! bursts of departing and arriving HTTP clients for several tenants, checking every surviving call's answer.

mod proxy;
mod stress;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zava_mcp::app::{App, AppSettings};
use zava_mcp::db::endpoint::Endpoint;
use zava_mcp::db::pool::PoolSettings;
use zava_mcp::db::query::{self, Limits, QueryError};
use zava_mcp::guard::ReadOnlySql;
use zava_mcp::tenant::Tenant;

use self::proxy::{CancelProxy, Mode};
use crate::harness::{TestDb, in_clear};

/// A statement of a few hundred milliseconds: long enough to be caught running, short enough to end by itself
/// before its (held) cancel arrives.
const SHORT: &str = "SELECT count(*) AS short_marker FROM generate_series(1, 1500000)";
/// A statement of a second or more, running when the held cancel is let go.
const LONG: &str = "SELECT count(*) AS long_marker FROM generate_series(1, 6000000)";

/// The app under test, connected to the database through a [`CancelProxy`].
pub(crate) async fn app_behind_proxy(db: &TestDb, mode: Mode, pool_size: usize) -> (Arc<App>, CancelProxy) {
    let upstream: SocketAddr = format!("{}:{}", db.query.host, db.query.port).parse().unwrap();
    let proxy = CancelProxy::start(upstream, mode).await;
    let endpoint = Endpoint { host: "127.0.0.1".into(), port: proxy.addr.port(), ..db.query.clone() };
    let settings = AppSettings {
        pool: PoolSettings {
            max_size: pool_size,
            acquire_timeout: Duration::from_secs(20),
            min_idle: 0,
            ..PoolSettings::default()
        },
        ..Default::default()
    };
    let app = App::start(&endpoint, db.key.clone(), crate::harness::embedder().clone(), settings).await.unwrap();
    (app, proxy)
}

/// The backends running a statement containing `marker`.
async fn running(db: &TestDb, marker: &str) -> Vec<i32> {
    let sql = format!(
        "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%{marker}%' \
         AND pid <> pg_backend_pid()"
    );
    db.superuser().await.query(&sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
}

async fn wait_running(db: &TestDb, marker: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if !running(db, marker).await.is_empty() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "`{marker}` never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sql(app: &App, text: &str) -> ReadOnlySql {
    ReadOnlySql::parse(text, &app.functions).unwrap()
}

/// How the first caller leaves.
#[derive(Clone, Copy, Debug)]
enum Departure {
    /// Its call is dropped (an HTTP client that disconnects).
    WentAway,
    /// It sends `notifications/cancelled`.
    Cancelled,
}

/// Caller A leaves while its short statement runs; its cancel request is held by the proxy while A's statement
/// ends by itself and caller B's long statement starts on the pool's one connection; then the cancel goes
/// through. Before the fix, B's statement was the one PostgreSQL cancelled.
async fn late_cancel_spares_the_next_caller(departure: Departure) {
    let db = TestDb::new().await;
    let (app, proxy) = app_behind_proxy(&db, Mode::Hold, 1).await;
    let redmond = app.sign(&in_clear(Tenant::from_uuid(zava_mcp::data::stores::STORES[5].manager)));
    let seattle = app.sign(&in_clear(Tenant::from_uuid(zava_mcp::data::stores::STORES[0].manager)));
    let limits = Limits::default();

    let a_cancel = CancellationToken::new();
    let a = tokio::spawn({
        let (app, sql, token) = (app.clone(), sql(&app, SHORT), a_cancel.clone());
        async move { query::run(&app.db, &redmond, &sql, limits, &token).await }
    });
    wait_running(&db, "short_marker").await;
    match departure {
        Departure::WentAway => a.abort(),
        Departure::Cancelled => a_cancel.cancel(),
    }
    proxy.wait_held(1).await;
    // A's statement ends by itself: its cancel has not reached PostgreSQL.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !running(&db, "short_marker").await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "A's statement never ended");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let b = tokio::spawn({
        let (app, sql, seattle) = (app.clone(), sql(&app, LONG), seattle.clone());
        async move { query::run(&app.db, &seattle, &sql, limits, &CancellationToken::new()).await }
    });
    wait_running(&db, "long_marker").await;
    proxy.release().await;

    let b = b.await.unwrap();
    let out = b.unwrap_or_else(|e| panic!("{departure:?}: B failed although nobody cancelled it: {e}"));
    assert_eq!(out.rows, vec![vec![serde_json::json!(6_000_000)]]);
    if let Departure::Cancelled = departure {
        assert!(matches!(a.await.unwrap(), Err(QueryError::Cancelled)));
    }
    assert_eq!(proxy.cancels.load(std::sync::atomic::Ordering::SeqCst), 1, "A's departure sends one cancel");
    // The discarded connection was replaced, not leaked: the pool of one still serves.
    let again = query::run(&app.db, &seattle, &sql(&app, "SELECT 1 AS one"), limits, &CancellationToken::new()).await;
    assert_eq!(again.unwrap().rows, vec![vec![serde_json::json!(1)]]);
    assert!(app.db.pool().status().size <= 1);
}

#[tokio::test]
async fn a_caller_who_went_away_never_cancels_the_next_callers_statement() {
    late_cancel_spares_the_next_caller(Departure::WentAway).await;
}

#[tokio::test]
async fn a_caller_who_cancelled_never_cancels_the_next_callers_statement() {
    late_cancel_spares_the_next_caller(Departure::Cancelled).await;
}

/// A cancelled call still stops its statement in PostgreSQL promptly (the cancel is sent before the connection
/// is dropped), and says what happened.
#[tokio::test]
async fn a_cancelled_call_stops_its_statement_and_says_so() {
    let db = TestDb::new().await;
    let (app, proxy) = app_behind_proxy(&db, Mode::Delay(Duration::ZERO), 2).await;
    let head_office = app.sign(&in_clear(Tenant::HeadOffice));
    let token = CancellationToken::new();
    let call = tokio::spawn({
        let (app, sql, token) = (app.clone(), sql(&app, &LONG.replace("6000000", "600000000")), token.clone());
        async move { query::run(&app.db, &head_office, &sql, Limits::default(), &token).await }
    });
    wait_running(&db, "long_marker").await;
    token.cancel();
    let e = call.await.unwrap().unwrap_err();
    assert!(matches!(e, QueryError::Cancelled), "{e:?}");
    assert_eq!(e.to_string(), "the call was cancelled by its caller, and its statement was stopped in the database");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !running(&db, "long_marker").await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the statement kept running after the cancel");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(proxy.cancels.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A statement stopped by `statement_timeout` says so, with the real limit, and is not mistaken for a cancel.
#[tokio::test]
async fn a_timed_out_statement_names_its_real_limit() {
    let db = TestDb::new().await;
    let (app, _proxy) = app_behind_proxy(&db, Mode::Delay(Duration::ZERO), 1).await;
    let limits = Limits { statement_timeout: Duration::from_millis(250), ..Default::default() };
    let sql = sql(&app, &LONG.replace("6000000", "600000000"));
    let e = query::run(&app.db, &app.sign(&in_clear(Tenant::HeadOffice)), &sql, limits, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::TimedOut { limit } if limit == Duration::from_millis(250)), "{e:?}");
    assert_eq!(e.to_string(), "PostgreSQL stopped the query: it ran longer than the 250 ms limit for one query");
}
