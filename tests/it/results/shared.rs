//! Two replicas over one database sharing kept results through a real Redis: what one answered, the other
//! serves from Redis (and only to the same access); Redis holds hashes, never a tenant or SQL in clear; a write
//! moves both on; a version that goes back (a restore) empties Redis.

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::{Value, json};
use zava_mcp::data::stores::STORES;

use super::{NAME, Served};
use crate::harness::TestDb;
use crate::limits::redis_server::RedisServer;

/// The shared results Redis holds now.
async fn shared_keys(redis: &RedisServer) -> Vec<String> {
    redis.keys().await.into_iter().filter(|k| k.starts_with("zava:result:")).collect()
}

async fn wait_for_keys(redis: &RedisServer, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let keys = shared_keys(redis).await;
        if keys.len() == n {
            return keys;
        }
        assert!(Instant::now() < deadline, "Redis holds {keys:?}, not {n} shared results");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn replicas_serve_each_others_results_through_redis_and_drop_them_when_the_data_goes_back() {
    let db = TestDb::new().await;
    let redis = RedisServer::start().await;
    let a = Served::start_with(&db, Some(redis.url())).await;
    let b = Served::start_with(&db, Some(redis.url())).await;
    let (redmond, seattle) = (STORES[5].manager.to_string(), STORES[0].manager.to_string());

    let answer = a.rows(&redmond, NAME).await;
    let keys = wait_for_keys(&redis, 1).await;
    for key in redis.keys().await {
        assert!(!key.contains(&redmond) && !key.to_lowercase().contains("select"), "{key} in clear");
    }
    // Mark what Redis holds, so that serving it shows: B answers from Redis without running the query.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let stored: Vec<u8> = connection.get(&keys[0]).await.unwrap();
    let mut stored: Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored["result"]["structuredContent"]["r"], answer, "{stored}");
    stored["result"]["structuredContent"]["r"] = json!([["from Redis"]]);
    let () = connection.pset_ex(&keys[0], serde_json::to_vec(&stored).unwrap(), 60_000).await.unwrap();
    assert_eq!(b.rows(&redmond, NAME).await, json!([["from Redis"]]), "B served A's shared result");
    assert_eq!(b.cache().len().await, 1, "and keeps it in its own memory too");
    // Another store asking the same SQL has its own key: its answer is read from the database.
    assert_eq!(b.rows(&seattle, NAME).await, answer);
    wait_for_keys(&redis, 2).await;

    // A write moves every replica on: the marked result is no longer asked for.
    let before = b.cache().data_version().unwrap();
    db.owner()
        .await
        .execute("UPDATE retail.products SET product_name = 'Shared rename' WHERE product_id = 1", &[])
        .await
        .unwrap();
    b.wait_for_version(|v| v.is_some_and(|v| v > before)).await;
    assert_eq!(b.rows(&redmond, NAME).await, json!([["Shared rename"]]));
    wait_for_keys(&redis, 3).await;

    // The version goes back, as after a restore: every shared result is dropped.
    let now = b.cache().data_version().unwrap();
    db.owner().await.execute("UPDATE zava_private.data_version SET version = 1", &[]).await.unwrap();
    a.wait_for_version(|v| v.is_some_and(|v| v < now)).await;
    wait_for_keys(&redis, 0).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while connection.get::<_, Option<u64>>("zava:results-version").await.unwrap() != Some(1) {
        assert!(Instant::now() < deadline, "the highest version seen was not lowered to the restored one");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A restore while no replica watched: the first replica to start sees a version below the mark and flushes.
    let () = connection.set("zava:results-version", 1_000_000u64).await.unwrap();
    let () = connection.pset_ex("zava:result:left-from-before", b"{}", 60_000).await.unwrap();
    let _c = Served::start_with(&db, Some(redis.url())).await;
    wait_for_keys(&redis, 0).await;
}
