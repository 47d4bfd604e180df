//! Graceful shutdown (issue #12 §4): when `serve` is told to stop, a call already running finishes within the
//! drain deadline, one still running at the deadline is cancelled in PostgreSQL too, and the server returns
//! soon after. The calls are held on table locks, so their length is ours to choose.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zava_mcp::app::{App, AppSettings};

use crate::harness::TestDb;

async fn call(url: &str, sql: &str) -> reqwest::Result<reqwest::Response> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "execute_sales_query", "arguments": {"postgresql_query": sql}}});
    crate::harness::mcp_post(&crate::harness::http_client(), url, &body)
        .header("x-rls-user-id", uuid::Uuid::nil().to_string())
        .send()
        .await
}

/// Statements holding `marker` that are running (or waiting on a lock) now.
async fn running(db: &TestDb, marker: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
    );
    crate::harness::scalar::<i64>(&db.superuser().await, &sql).await
}

#[tokio::test]
async fn a_shutdown_lets_calls_finish_until_the_deadline_then_cancels_the_rest() {
    let db = TestDb::new().await;
    let app: Arc<App> =
        App::start(&db.query, db.key.clone(), crate::harness::embedder().clone(), AppSettings::default())
            .await
            .unwrap();
    let mut settings = crate::harness::http_settings(vec![]);
    settings.drain_timeout = Duration::from_secs(3);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stop = shutdown.clone();
    let served = tokio::spawn(async move {
        zava_mcp::http::serve(app, &settings, stop, |addr| {
            let _ = tx.send(addr);
        })
        .await
    });
    let url = format!("http://{}/mcp", rx.await.unwrap());

    // Two locks the owner holds: the first is let go within the deadline, the second never.
    let (quick, stuck) = (db.owner().await, db.owner().await);
    quick.batch_execute("BEGIN; LOCK TABLE retail.stores IN ACCESS EXCLUSIVE MODE").await.unwrap();
    stuck.batch_execute("BEGIN; LOCK TABLE retail.categories IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let finishing = tokio::spawn(call_owned(url.clone(), "SELECT count(*) AS drain_quick FROM retail.stores"));
    let cancelled = tokio::spawn(call_owned(url.clone(), "SELECT count(*) AS drain_stuck FROM retail.categories"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while running(&db, "drain_quick").await + running(&db, "drain_stuck").await < 2 {
        assert!(Instant::now() < deadline, "the two calls never reached the database");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let started = Instant::now();
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(call(&url, "SELECT 1").await.is_err(), "a new connection was accepted while draining");
    quick.batch_execute("COMMIT").await.unwrap();
    let (status, body) = finishing.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["isError"], json!(false), "the call in flight finished: {body}");
    assert!(started.elapsed() < Duration::from_secs(3), "it finished before the deadline");

    // The other is cancelled at the deadline, in PostgreSQL too, and the server then returns.
    let (_, body) = cancelled.await.unwrap();
    assert_ne!(body["result"]["isError"], json!(false), "the stuck call did not succeed: {body}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(3) && waited < Duration::from_secs(8), "cancelled after {waited:?}");
    tokio::time::timeout(Duration::from_secs(5), served).await.expect("serve returned").unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(&db, "drain_stuck").await > 0 {
        assert!(Instant::now() < deadline, "the cancelled call's statement is still in the database");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stuck.batch_execute("ROLLBACK").await.unwrap();
}

async fn call_owned(url: String, sql: &'static str) -> (u16, Value) {
    match call(&url, sql).await {
        Ok(resp) => (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null)),
        Err(e) => (0, json!({"transport_error": e.to_string()})),
    }
}
