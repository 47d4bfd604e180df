//! Row-level security semantics through the query role: who sees which rows.

use std::collections::BTreeSet;

use uuid::Uuid;
use zava_mcp::data::stores::STORES;
use zava_mcp::tenant::Tenant;

use crate::harness::{TestDb, count, scalar};

const TENANT_TABLES: [&str; 3] = ["orders", "order_items", "inventory"];

#[tokio::test]
async fn each_manager_sees_exactly_their_stores_rows() {
    let db = TestDb::new().await;
    for (i, store) in STORES.iter().enumerate() {
        let store_id = i as i32 + 1;
        let tenant = Tenant::from_uuid(store.manager);
        for table in TENANT_TABLES {
            let expected =
                db.owner_count(&format!("SELECT count(*) FROM retail.{table} WHERE store_id = {store_id}")).await;
            assert!(expected > 0, "{table} has no rows for {} in the test data", store.name);
            let rows = db.as_tenant(&tenant, &format!("SELECT count(*) FROM retail.{table}")).await.unwrap();
            assert_eq!(count(&rows), expected, "{} counting {table}", store.name);
            let stores = db
                .as_tenant(&tenant, &format!("SELECT DISTINCT store_id FROM retail.{table}"))
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, i32>(0))
                .collect::<Vec<_>>();
            assert_eq!(stores, [store_id], "{} sees other stores in {table}", store.name);
        }
    }
}

#[tokio::test]
async fn a_manager_sees_customers_assigned_to_or_ordering_at_their_store() {
    let db = TestDb::new().await;
    for (i, store) in STORES.iter().enumerate().step_by(3) {
        let store_id = i as i32 + 1;
        let owner = db.owner().await;
        let expected: BTreeSet<i32> = owner
            .query(
                "SELECT customer_id FROM zava_private.customers WHERE primary_store_id = $1
                 UNION SELECT customer_id FROM retail.orders WHERE store_id = $1",
                &[&store_id],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let seen: BTreeSet<i32> = db
            .as_tenant(&Tenant::from_uuid(store.manager), "SELECT customer_id FROM retail.customers")
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(seen, expected, "{}", store.name);
        let total = db.owner_count("SELECT count(*) FROM zava_private.customers").await;
        assert!((seen.len() as i64) < total, "{} sees every customer", store.name);
    }
}

#[tokio::test]
async fn head_office_sees_everything() {
    let db = TestDb::new().await;
    for table in ["orders", "order_items", "inventory", "customers"] {
        // The owner counts customers in the table behind the masking view (migration V10).
        let schema = if table == "customers" { "zava_private" } else { "retail" };
        let all = db.owner_count(&format!("SELECT count(*) FROM {schema}.{table}")).await;
        let rows = db.as_tenant(&Tenant::HeadOffice, &format!("SELECT count(*) FROM retail.{table}")).await.unwrap();
        assert_eq!(count(&rows), all, "{table}");
    }
}

#[tokio::test]
async fn a_regional_manager_sees_the_union_of_their_stores() {
    let db = TestDb::new().await;
    let tenant = Tenant::from_uuids([STORES[1].manager, STORES[5].manager]).unwrap();
    let rows = db.as_tenant(&tenant, "SELECT DISTINCT store_id FROM retail.orders ORDER BY 1").await.unwrap();
    assert_eq!(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(), [2, 6]);
    let expected = db.owner_count("SELECT count(*) FROM retail.order_items WHERE store_id IN (2, 6)").await;
    assert_eq!(count(&db.as_tenant(&tenant, "SELECT count(*) FROM retail.order_items").await.unwrap()), expected);
}

#[tokio::test]
async fn no_empty_or_unknown_identity_sees_no_tenant_rows_but_shared_data() {
    let db = TestDb::new().await;
    let unknown = Tenant::from_uuid(Uuid::from_u128(0x1111_1111_1111_1111_1111_1111_1111_1111));
    let no_context = db.query_role().await;
    for table in ["orders", "order_items", "inventory", "customers"] {
        let sql = format!("SELECT count(*) FROM retail.{table}");
        assert_eq!(count(&db.as_tenant(&unknown, &sql).await.unwrap()), 0, "unknown manager, {table}");
        assert_eq!(scalar::<i64>(&no_context, &sql).await, 0, "no context, {table}");
        no_context.batch_execute("BEGIN; SET LOCAL zava.tenant = ''").await.unwrap();
        let empty: i64 = scalar(&no_context, &sql).await;
        no_context.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(empty, 0, "empty context, {table}");
    }
    for (table, n) in [("stores", 8), ("categories", 9)] {
        let sql = format!("SELECT count(*) FROM retail.{table}");
        assert_eq!(count(&db.as_tenant(&unknown, &sql).await.unwrap()), n);
        assert_eq!(scalar::<i64>(&no_context, &sql).await, n);
    }
    let products = db.owner_count("SELECT count(*) FROM retail.products").await;
    assert_eq!(scalar::<i64>(&no_context, "SELECT count(*) FROM retail.products").await, products);
}

#[tokio::test]
async fn the_query_role_has_least_privilege() {
    let db = TestDb::new().await;
    let c = db.query_role().await;
    let row = c
        .query_one(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit, rolreplication
             FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    for i in 0..6 {
        assert!(!row.get::<_, bool>(i), "attribute {i} of the query role is set");
    }
    let owned: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owned, 0, "the query role owns relations");
    let ro: String = c.query_one("SHOW default_transaction_read_only", &[]).await.unwrap().get(0);
    assert_eq!(ro, "on");
    let forced: i64 = db
        .owner_count(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'retail' AND c.relkind = 'r' AND NOT (c.relrowsecurity AND c.relforcerowsecurity)",
        )
        .await;
    assert_eq!(forced, 0, "a retail table lacks forced row-level security");
    let writable: i64 = c
        .query_one(
            "SELECT count(*) FROM information_schema.role_table_grants
             WHERE grantee = current_user AND privilege_type <> 'SELECT'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(writable, 0);
}
