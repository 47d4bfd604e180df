//! Per-caller limits (issue #11 §4, `throttle`): a flood from one caller gets 429 with `Retry-After` while the
//! others are served; a caller past its cap on calls at once is refused until one finishes; replicas sharing a
//! real Redis count together, and keep serving when it goes away; over stdio the refusal is a tool error.

pub(crate) mod redis_server;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use zava_mcp::app::{App, AppSettings};
use zava_mcp::audit::{AuditLog, AuditSettings, FileSettings};
use zava_mcp::data::stores::STORES;
use zava_mcp::http::HttpSettings;
use zava_mcp::throttle::rate::RateLimit;
use zava_mcp::throttle::{PerRole, Throttle, ThrottleSettings};

use self::redis_server::RedisServer;
use crate::harness::TestDb;

struct Replica {
    url: String,
    shutdown: CancellationToken,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn limits(rate: Option<&str>, concurrent: u32, redis_url: Option<String>) -> ThrottleSettings {
    ThrottleSettings {
        rate: PerRole::all(rate.map(|r| r.parse::<RateLimit>().unwrap())),
        concurrent: PerRole::all(concurrent),
        redis_url,
        ..ThrottleSettings::default()
    }
}

async fn replica(app: &Arc<App>, settings: ThrottleSettings) -> Replica {
    replica_with_audit(app, settings, None).await
}

async fn replica_with_audit(app: &Arc<App>, settings: ThrottleSettings, audit: Option<&std::path::Path>) -> Replica {
    let throttle = Throttle::start(settings).await.unwrap();
    let audit = audit.map(|path| {
        let file = FileSettings { path: path.to_owned(), max_bytes: 1 << 20, keep: 1 };
        AuditLog::open(AuditSettings { file, hash_subjects: false }).unwrap()
    });
    let http = HttpSettings { throttle: Some(throttle), audit, ..crate::harness::http_settings(vec![]) };
    let (addr, shutdown) = crate::harness::serve_http_with(app.clone(), http).await;
    Replica { url: format!("http://{addr}/mcp"), shutdown }
}

/// Status, `Retry-After` and body of one `tools/call` as store `store` (index into STORES).
async fn call(replica: &Replica, store: usize, sql: &str) -> (u16, Option<u64>, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "execute_sales_query", "arguments": {"postgresql_query": sql}}});
    let resp = crate::harness::mcp_post(&crate::harness::http_client(), &replica.url, &body)
        .header("x-rls-user-id", STORES[store].manager.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    // The limits hold the call's permit until its answer is sent, without losing the answer's length (no chunks).
    let length = resp.headers().get("content-length").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    assert!(length.is_some() && resp.headers().get("transfer-encoding").is_none(), "{:?}", resp.headers());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

async fn app(db: &TestDb) -> Arc<App> {
    App::start(&db.query, db.key.clone(), crate::harness::embedder().clone(), AppSettings::default()).await.unwrap()
}

#[tokio::test]
async fn a_flooding_caller_gets_429_while_the_others_are_served() {
    let db = TestDb::new().await;
    let app = app(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let server = replica_with_audit(&app, limits(Some("5/min"), 8, None), Some(&audit)).await;
    for _ in 0..5 {
        assert_eq!(call(&server, 0, "SELECT 1").await.0, 200);
    }
    let (status, retry, body) = call(&server, 0, "SELECT 1").await;
    assert_eq!(status, 429, "{body}");
    assert!(retry.is_some_and(|s| (1..=12).contains(&s)), "Retry-After {retry:?}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("5/min") && message.contains("retry in"), "{message}");
    // Redmond is another caller with its own budget.
    let (status, _, body) = call(&server, 5, "SELECT count(*) FROM retail.orders").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["result"]["structuredContent"]["r"][0][0].as_i64().unwrap() > 0);
    // The refused call is in the audit log too, with the others.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let records: Vec<Value> = loop {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if records.len() >= 7 || std::time::Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(records.len(), 7, "{records:#?}");
    let refused: Vec<&Value> = records.iter().filter(|r| r["outcome"] == json!("refused")).collect();
    assert_eq!(refused.len(), 1, "{records:#?}");
    assert_eq!(refused[0]["reason"], json!("limit:rate"));
    assert_eq!(refused[0]["principal"], json!(format!("header:{}", STORES[0].manager)));
    assert_eq!(refused[0]["tool"], json!("execute_sales_query"));
}

#[tokio::test]
async fn a_caller_at_its_cap_of_calls_at_once_waits_for_one_to_finish() {
    let db = TestDb::new().await;
    let app = app(&db).await;
    let server = Arc::new(replica(&app, limits(None, 1, None)).await);
    let lock = db.owner().await;
    lock.batch_execute("BEGIN; LOCK TABLE retail.inventory IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let held = {
        let server = server.clone();
        tokio::spawn(async move { call(&server, 0, "SELECT count(*) AS held_marker FROM retail.inventory").await })
    };
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE '%held_marker%' \
         AND wait_event_type = 'Lock'",
        db.query.dbname
    );
    while crate::harness::scalar::<i64>(&db.superuser().await, &sql).await == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, retry, body) = call(&server, 0, "SELECT 1").await;
    assert_eq!((status, retry), (429, Some(1)), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("1 tool calls at the same time"), "{body}");
    assert_eq!(call(&server, 5, "SELECT 1").await.0, 200, "another caller is not held up");
    lock.batch_execute("COMMIT").await.unwrap();
    assert_eq!(held.await.unwrap().0, 200);
    assert_eq!(call(&server, 0, "SELECT 1").await.0, 200, "the finished call gave its place back");
}

#[tokio::test]
async fn replicas_share_their_counts_through_redis_and_survive_its_loss() {
    let db = TestDb::new().await;
    let app = app(&db).await;
    let mut redis = RedisServer::start().await;
    let a = replica(&app, limits(Some("3/min"), 8, Some(redis.url()))).await;
    let b = replica(&app, limits(Some("3/min"), 8, Some(redis.url()))).await;
    for server in [&a, &b, &a] {
        assert_eq!(call(server, 0, "SELECT 1").await.0, 200);
    }
    let (status, retry, body) = call(&b, 0, "SELECT 1").await;
    assert_eq!(status, 429, "the second replica counts the first one's calls: {body}");
    assert!(retry.is_some_and(|s| (1..=20).contains(&s)), "Retry-After {retry:?}");
    assert_eq!(call(&b, 5, "SELECT 1").await.0, 200, "Redmond has its own budget on every replica");
    // Redis holds hashes of the callers, never their identities; and no running call is left counted.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let keys = loop {
        // Each call's place is given back just after its answer is sent.
        let keys = redis.keys().await;
        if keys.iter().all(|k| k.starts_with("zava:rate:")) || tokio::time::Instant::now() > deadline {
            break keys;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!keys.is_empty() && keys.iter().all(|k| k.starts_with("zava:rate:")), "{keys:?}");
    for k in &keys {
        assert!(!k.contains(&STORES[0].manager.to_string()), "{k}");
    }
    // Without Redis each replica counts for itself: calls go on.
    redis.stop();
    let (status, _, body) = call(&a, 5, "SELECT 1").await;
    assert_eq!(status, 200, "{body}");
}
