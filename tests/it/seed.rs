//! Loading generated data into a real database: counts, determinism, and the schema left intact.

use indicatif::ProgressBar;
use zava_mcp::data::encode::{checksum, encode};
use zava_mcp::data::generate::{Dataset, GenOptions};
use zava_mcp::data::load::load;

use crate::harness::{TestDb, scalar};

const SCHEMA_SHAPE: &str =
    "SELECT (SELECT count(*) FROM pg_constraint WHERE connamespace IN ('retail'::regnamespace, 'zava_private'::regnamespace)
       AND contype = 'f') * 1000
    + (SELECT count(*) FROM pg_indexes WHERE schemaname IN ('retail', 'zava_private'))
    + (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname IN ('retail', 'zava_private') AND c.relforcerowsecurity) * 100000";

const ORDERS_DIGEST: &str = "SELECT md5(string_agg(format('%s|%s|%s|%s', o.order_id, o.customer_id, o.store_id, o.order_date), ',' ORDER BY o.order_id))
    || md5(string_agg(format('%s|%s|%s|%s', i.order_item_id, i.product_id, i.quantity, i.total_amount), ',' ORDER BY i.order_item_id))
    FROM retail.orders o JOIN retail.order_items i ON i.order_id = o.order_id";

async fn seed(db: &TestDb, options: GenOptions) -> (usize, String) {
    let tables = encode(&Dataset::generate(options));
    let sum = checksum(&tables);
    load(&db.owner, &tables, options, &sum, &ProgressBar::hidden()).await.unwrap();
    (tables.iter().find(|t| t.table == "retail.order_items").unwrap().rows, sum)
}

#[tokio::test]
async fn a_reseed_replaces_the_data_and_keeps_keys_indexes_and_policies() {
    let db = TestDb::new().await;
    let shape = db.owner_count(SCHEMA_SHAPE).await;
    assert!(shape > 900_000, "forced RLS, foreign keys and indexes expected, got {shape}");
    let options = GenOptions { seed: 7, customers: 800 };
    let (items, sum) = seed(&db, options).await;
    assert_eq!(db.owner_count("SELECT count(*) FROM retail.order_items").await, items as i64);
    assert_eq!(db.owner_count("SELECT count(*) FROM zava_private.customers").await, 800);
    assert_eq!(db.owner_count(SCHEMA_SHAPE).await, shape, "the load lost a key, an index or forced RLS");
    let recorded: String = scalar(&db.owner().await, "SELECT checksum FROM zava_private.dataset").await;
    assert_eq!(recorded, sum);
    // Sequences continue after the loaded ids.
    let next = db.owner_count("SELECT nextval(pg_get_serial_sequence('retail.orders', 'order_id'))").await;
    assert_eq!(next, db.owner_count("SELECT max(order_id)::bigint + 1 FROM retail.orders").await);
}

#[tokio::test]
async fn the_same_seed_loads_identical_rows() {
    let db = TestDb::new().await;
    let options = GenOptions { seed: 99, customers: 500 };
    let mut digests = Vec::new();
    for o in [options, GenOptions { seed: 100, ..options }, options] {
        seed(&db, o).await;
        digests.push(scalar::<String>(&db.owner().await, ORDERS_DIGEST).await);
    }
    let [first, other, again] = <[String; 3]>::try_from(digests).unwrap();
    assert_eq!(first, again);
    assert_ne!(first, other);
}

#[tokio::test]
async fn loaded_data_answers_the_origins_sample_questions() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    let years: Vec<String> = c
        .query("SELECT DISTINCT EXTRACT(YEAR FROM order_date)::text FROM retail.orders ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(years, ["2020", "2021", "2022", "2023", "2024", "2025", "2026"]);
    let online: String = scalar(&c, "SELECT store_name FROM retail.stores WHERE is_online").await;
    assert_eq!(online, "Zava Retail Online");
    let revenue: i64 = scalar(
        &c,
        "SELECT count(*) FROM (SELECT s.store_name, sum(oi.total_amount) FROM retail.order_items oi \
         JOIN retail.stores s USING (store_id) GROUP BY 1) t",
    )
    .await;
    assert_eq!(revenue, 8);
}
