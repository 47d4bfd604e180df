//! The result cache against a real database: a kept result is served again only to the same caller for the same
//! SQL while the data is unchanged; every kind of write moves the data version on (V13's triggers on every table a
//! query can see); a result that follows the clock is never kept; and a lost connection to the version never
//! leaves a stale result being served. `shared`: replicas sharing kept results through a real Redis.

mod shared;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zava_mcp::app::{App, AppSettings};
use zava_mcp::data::stores::STORES;
use zava_mcp::results::ResultCacheSettings;

use crate::harness::{TestDb, scalar};

struct Served {
    app: Arc<App>,
    url: String,
    http: reqwest::Client,
    _shutdown: tokio_util::sync::CancellationToken,
}

impl Served {
    async fn start(db: &TestDb) -> Served {
        Served::start_with(db, None).await
    }

    /// A replica whose kept results are shared through the Redis at `redis_url`.
    async fn start_with(db: &TestDb, redis_url: Option<String>) -> Served {
        let results = ResultCacheSettings { enabled: true, redis_url, ..Default::default() };
        let settings = AppSettings { results, ..Default::default() };
        let app = App::start(&db.query, db.key.clone(), crate::harness::embedder().clone(), settings).await.unwrap();
        let (addr, shutdown) = crate::harness::serve_http(app.clone(), vec![]).await;
        let served =
            Served { app, url: format!("http://{addr}/mcp"), http: crate::harness::http_client(), _shutdown: shutdown };
        served.wait_for_version(|v| v.is_some()).await;
        served
    }

    fn cache(&self) -> &zava_mcp::results::ResultCache {
        self.app.results.as_ref().expect("the result cache is on")
    }

    async fn wait_for_version(&self, done: impl Fn(Option<u64>) -> bool) -> Option<u64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.cache().data_version();
            if done(v) {
                return v;
            }
            assert!(Instant::now() < deadline, "the data version stayed at {v:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The rows of `sql` as `identity` sees them.
    async fn rows(&self, identity: &str, sql: &str) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "execute_sales_query", "arguments": {"postgresql_query": sql}}});
        let resp = crate::harness::mcp_post(&self.http, &self.url, &body).header("x-rls-user-id", identity);
        let v: Value = resp.send().await.unwrap().json().await.unwrap();
        assert_ne!(v["result"]["isError"], json!(true), "`{sql}`: {v}");
        v["result"]["structuredContent"]["r"].clone()
    }
}

const NAME: &str = "SELECT product_name FROM retail.products WHERE product_id = 1";
const ORDERS: &str = "SELECT count(*) FROM retail.orders";

#[tokio::test]
async fn a_kept_result_is_served_until_the_data_changes() {
    let db = TestDb::new().await;
    let served = Served::start(&db).await;
    let redmond = STORES[5].manager.to_string();
    let first = served.rows(&redmond, NAME).await;
    assert_eq!(served.rows(&redmond, NAME).await, first);
    assert_eq!(served.cache().len().await, 1, "the second call was served from the kept result");

    let before = served.cache().data_version().unwrap();
    db.owner()
        .await
        .execute("UPDATE retail.products SET product_name = 'Renamed' WHERE product_id = 1", &[])
        .await
        .unwrap();
    served.wait_for_version(|v| v.is_some_and(|v| v > before)).await;
    assert_eq!(served.rows(&redmond, NAME).await, json!([["Renamed"]]), "a result kept before the change was served");

    // Each store sees its own count through the cache, and head office all of them.
    let mut counts = Vec::new();
    for identity in [STORES[0].manager.to_string(), redmond.clone(), zava_mcp::tenant::HEAD_OFFICE_ID.to_string()] {
        let once = served.rows(&identity, ORDERS).await;
        assert_eq!(served.rows(&identity, ORDERS).await, once, "{identity}");
        counts.push(once[0][0].as_i64().unwrap());
    }
    let expected = [
        db.owner_count("SELECT count(*) FROM retail.orders WHERE store_id = 1").await,
        db.owner_count("SELECT count(*) FROM retail.orders WHERE store_id = 6").await,
        db.owner_count("SELECT count(*) FROM retail.orders").await,
    ];
    assert_eq!(counts, expected, "a kept result crossed tenants");
}

#[tokio::test]
async fn results_that_follow_the_clock_are_never_kept() {
    let db = TestDb::new().await;
    let served = Served::start(&db).await;
    let redmond = STORES[5].manager.to_string();
    let clock = "SELECT now()::text, count(*) FROM retail.stores";
    let first = served.rows(&redmond, clock).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_ne!(served.rows(&redmond, clock).await, first, "now() was served from a kept result");
    assert!(served.cache().is_empty().await);
}

#[tokio::test]
async fn every_kind_of_write_to_every_visible_table_moves_the_version_on() {
    let db = TestDb::new().await;
    let mut owner = db.owner().await;
    let untriggered: Vec<String> = db
        .owner_values(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND n.nspname IN ('retail', 'zava_private')
               AND c.relname NOT IN ('context_key', 'data_version')
               AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'data_changed'
                               AND t.tgtype & 60 = 60)
             ORDER BY 1",
        )
        .await;
    assert!(untriggered.is_empty(), "tables whose writes would not move the data version on: {untriggered:?}");
    for write in [
        "UPDATE retail.stores SET store_name = store_name WHERE store_id = 1",
        "INSERT INTO retail.categories (category_name) VALUES ('Version test')",
        "DELETE FROM retail.inventory WHERE product_id = 1",
        "TRUNCATE retail.order_items",
        "UPDATE zava_private.customers SET email = email WHERE customer_id = 1",
    ] {
        let tx = owner.transaction().await.unwrap();
        let version = async |tx: &tokio_postgres::Transaction<'_>| -> i64 {
            tx.query_one("SELECT zava_private.data_version()", &[]).await.unwrap().get(0)
        };
        let before = version(&tx).await;
        tx.batch_execute(write).await.unwrap_or_else(|e| panic!("{write}: {e}"));
        let after = version(&tx).await;
        assert_eq!(after, before + 1, "{write}");
        tx.rollback().await.unwrap();
    }
    // The query role reads the number but cannot move it.
    let query = db.query_role().await;
    assert!(scalar::<i64>(&query, "SELECT zava_private.data_version()").await >= 1);
    let denied = query.execute("SELECT zava_private.bump_data_version()", &[]).await.unwrap_err();
    assert!(crate::harness::db_error(&denied).contains("permission denied"), "{denied}");
}

#[tokio::test]
async fn a_lost_version_connection_never_leaves_a_stale_result_served() {
    let db = TestDb::new().await;
    let served = Served::start(&db).await;
    let redmond = STORES[5].manager.to_string();
    served.rows(&redmond, NAME).await;
    // Cut the follower off: the change below is announced to nobody.
    let admin = db.superuser().await;
    let dbname = db.query.dbname.clone();
    let cut: i64 = scalar(
        &admin,
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = '{dbname}' AND query LIKE '%data_version%' AND pid <> pg_backend_pid()"
        ),
    )
    .await;
    assert_eq!(cut, 1, "the follower's connection");
    db.owner()
        .await
        .execute("UPDATE retail.products SET product_name = 'Unheard' WHERE product_id = 1", &[])
        .await
        .unwrap();
    // Within the follower's reconnection (well before its periodic read), the new name is what is served.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let rows = served.rows(&redmond, NAME).await;
        if rows == json!([["Unheard"]]) {
            break;
        }
        assert!(Instant::now() < deadline, "a stale result was still served: {rows}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
