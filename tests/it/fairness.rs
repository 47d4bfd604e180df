//! One tenant's flood cannot starve the others (issue #11 §4, `db::fair`): while Seattle's calls hang (on a lock
//! the owner holds, so the test does not depend on the machine's speed), Redmond's are answered at once, and
//! Seattle never holds more than its share of the pool. The same flood with no share (a tenant may take the whole
//! pool) starves Redmond, so the test can tell the difference.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zava_mcp::app::{App, AppSettings};
use zava_mcp::data::stores::STORES;
use zava_mcp::db::fair::FairShare;
use zava_mcp::db::pool::PoolSettings;
use zava_mcp::db::query::{self, Limits};
use zava_mcp::guard::ReadOnlySql;
use zava_mcp::tenant::Tenant;

use crate::harness::{TestDb, in_clear};

const POOL: usize = 4;
const FLOOD: usize = 10;

async fn app(db: &TestDb, per_tenant: usize) -> Arc<App> {
    let wait = Duration::from_secs(30);
    let settings = AppSettings {
        pool: PoolSettings { max_size: POOL, acquire_timeout: wait, min_idle: 0, ..PoolSettings::default() },
        share: FairShare { per_tenant, wait },
        ..Default::default()
    };
    App::start(&db.query, db.key.clone(), crate::harness::embedder().clone(), settings).await.unwrap()
}

async fn call(app: &App, store: usize, sql: &str) -> Result<i64, query::QueryError> {
    let sql = ReadOnlySql::parse(sql, &app.functions).unwrap();
    let access = in_clear(Tenant::from_uuid(STORES[store].manager));
    let limits = Limits { statement_timeout: Duration::from_secs(60), ..Default::default() };
    let out = query::run(&app.db, &app.sign(&access), &sql, limits, &CancellationToken::new()).await?;
    Ok(out.rows[0][0].as_i64().unwrap())
}

/// How many backends wait on the lock the test holds.
async fn blocked(db: &TestDb) -> usize {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock' \
         AND query LIKE '%flood_marker%'",
        db.query.dbname
    );
    crate::harness::scalar::<i64>(&db.superuser().await, &sql).await as usize
}

/// Seattle floods calls that hang on a lock; returns the tasks once `expect_blocked` of them are stuck in the
/// database and the rest have had time to queue.
async fn flood(app: &Arc<App>, db: &TestDb, expect_blocked: usize) -> Vec<tokio::task::JoinHandle<i64>> {
    let tasks: Vec<_> = (0..FLOOD)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                call(&app, 0, "SELECT count(*) AS flood_marker FROM retail.inventory").await.expect("flood call")
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while blocked(db).await < expect_blocked {
        assert!(tokio::time::Instant::now() < deadline, "the flood never reached the database");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tasks
}

#[tokio::test]
async fn a_flooding_store_leaves_the_others_their_share_of_connections() {
    let db = TestDb::new().await;
    let lock = db.owner().await;
    let redmond_orders = db.owner_count("SELECT count(*) FROM retail.orders WHERE store_id = 6").await;

    // With fair shares: Seattle holds two connections, Redmond is served from the other two.
    let fair = app(&db, 2).await;
    lock.batch_execute("BEGIN; LOCK TABLE retail.inventory IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let seattle = flood(&fair, &db, 2).await;
    assert_eq!(blocked(&db).await, 2, "Seattle holds more than its share");
    let redmond = tokio::time::timeout(Duration::from_secs(10), call(&fair, 5, "SELECT count(*) FROM retail.orders"));
    assert_eq!(redmond.await.expect("Redmond starved by Seattle's flood").unwrap(), redmond_orders);
    lock.batch_execute("COMMIT").await.unwrap();
    let seattle_stock = db.owner_count("SELECT count(*) FROM retail.inventory WHERE store_id = 1").await;
    for t in seattle {
        assert_eq!(t.await.unwrap(), seattle_stock, "every queued Seattle call is served once the lock goes");
    }

    // Without a share (a tenant may take the whole pool), the same flood starves Redmond.
    let unfair = app(&db, POOL).await;
    lock.batch_execute("BEGIN; LOCK TABLE retail.inventory IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let seattle = flood(&unfair, &db, POOL).await;
    let redmond = tokio::time::timeout(Duration::from_secs(2), call(&unfair, 5, "SELECT count(*) FROM retail.orders"));
    assert!(redmond.await.is_err(), "with the whole pool Seattle's, Redmond should have waited");
    lock.batch_execute("COMMIT").await.unwrap();
    for t in seattle {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn a_tenant_past_its_share_for_too_long_is_told_why() {
    let db = TestDb::new().await;
    let wait = Duration::from_millis(200);
    let settings = AppSettings {
        pool: PoolSettings {
            max_size: 2,
            acquire_timeout: Duration::from_secs(30),
            min_idle: 0,
            ..PoolSettings::default()
        },
        share: FairShare { per_tenant: 1, wait },
        ..Default::default()
    };
    let app = App::start(&db.query, db.key.clone(), crate::harness::embedder().clone(), settings).await.unwrap();
    let lock = db.owner().await;
    lock.batch_execute("BEGIN; LOCK TABLE retail.inventory IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let held = {
        let app = app.clone();
        tokio::spawn(async move { call(&app, 0, "SELECT count(*) AS flood_marker FROM retail.inventory").await })
    };
    while blocked(&db).await < 1 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = call(&app, 0, "SELECT count(*) FROM retail.orders").await.unwrap_err();
    assert!(matches!(e, query::QueryError::TenantBusy { share: 1 }), "{e:?}");
    assert!(e.to_string().contains("as many queries at once as it may (1)"), "{e}");
    lock.batch_execute("COMMIT").await.unwrap();
    held.await.unwrap().unwrap();
}

/// The pool follows the load between its bounds (issue #12 §4): it opens `min_idle` connections at once, grows
/// on demand to `max_size`, closes connections left idle past the idle timeout down to `min_idle`, and opens them
/// again when they are gone (a database restart empties it).
#[tokio::test]
async fn the_pool_grows_with_load_and_shrinks_back_to_its_floor() {
    use zava_mcp::db::pool::{self, PoolSettings};
    let db = TestDb::new().await;
    let settings = PoolSettings {
        max_size: 6,
        acquire_timeout: Duration::from_secs(10),
        min_idle: 2,
        idle_timeout: Duration::from_millis(600),
    };
    let pool = pool::build(&db.query, settings, 1 << 20).unwrap();
    tokio::spawn(pool::adapt(pool.weak(), settings));
    let size = || pool.status().size;
    let wait_for = async |what: &str, want: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() != want {
            assert!(std::time::Instant::now() < deadline, "{what}: {} connections, not {want}", size());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    wait_for("warmed at start", 2).await;
    // Six calls at once: the pool grows to its bound and no further.
    let held: Vec<_> = futures_util::future::join_all((0..6).map(|_| pool.get())).await;
    assert!(held.iter().all(Result::is_ok));
    assert_eq!(size(), 6);
    drop(held);
    // Idle past the timeout: back to the floor, not below.
    wait_for("shrunk after the idle timeout", 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(size(), 2, "the floor is kept");
    // Connections lost (as a restart loses them) are opened again.
    pool.retain(|_, _| false);
    assert_eq!(size(), 0);
    wait_for("warmed again", 2).await;
    let client = pool.get().await.unwrap();
    assert_eq!(client.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0), 1);
}
