//! Attacks on tenant isolation and read-only access by SQL the model might write. Each test asserts on data:
//! which rows came back and whether anything changed, never on the wording of an error.

use std::time::Duration;

use zava_mcp::data::stores::STORES;
use zava_mcp::db::context::{ContextKey, SignedContext};
use zava_mcp::tenant::Tenant;

use crate::harness::{TestDb, count, in_clear};

const SEATTLE: i32 = 1;
const HEAD_OFFICE_SCOPE: &str = "'v1;*;9999999999;00;0000000000000000000000000000000000000000000000000000000000000000'";

fn seattle() -> Tenant {
    Tenant::from_uuid(STORES[0].manager)
}

/// Runs `sql` as Seattle's manager and checks that whatever came back holds only Seattle's rows: either the
/// statement failed, or every `store_id` in its first column is Seattle's.
async fn only_seattle(db: &TestDb, sql: &str) {
    if let Ok(rows) = db.as_tenant(&seattle(), sql).await {
        for r in &rows {
            let store: Option<i32> = r.get(0);
            assert!(store.is_none_or(|s| s == SEATTLE), "`{sql}` returned store {store:?}");
        }
    }
}

#[tokio::test]
async fn set_config_anywhere_in_a_query_cannot_switch_tenant() {
    let db = TestDb::new().await;
    let hijack = format!("set_config('zava.tenant', {HEAD_OFFICE_SCOPE}, true)");
    for sql in [
        format!("SELECT store_id, {hijack} FROM retail.orders"),
        format!("SELECT store_id FROM retail.orders WHERE {hijack} IS NOT NULL"),
        format!("SELECT store_id FROM retail.orders ORDER BY {hijack}"),
        format!("SELECT o.store_id FROM (SELECT {hijack}) s, LATERAL (SELECT store_id FROM retail.orders) o"),
        format!("WITH s AS MATERIALIZED (SELECT {hijack}) SELECT store_id FROM retail.orders, s"),
        format!("SELECT store_id FROM retail.orders WHERE store_id IN (SELECT 2 WHERE {hijack} IS NOT NULL)"),
        format!("SELECT store_id FROM retail.orders WHERE pg_catalog.{hijack} IS NOT NULL"),
        "SELECT store_id, set_config('role', 'zava_owner', true) FROM retail.orders".to_owned(),
        "SELECT store_id, set_config('session_authorization', 'zava_owner', true) FROM retail.orders".to_owned(),
        "SELECT store_id, set_config('row_security', 'off', true) FROM retail.orders".to_owned(),
    ] {
        only_seattle(&db, &sql).await;
    }
}

#[tokio::test]
async fn a_forged_tampered_expired_or_foreign_context_sees_nothing() {
    let db = TestDb::new().await;
    let valid = db.context(&seattle());
    let parts: Vec<&str> = valid.as_str().split(';').collect();
    let tampered = format!("{};*;{}", parts[0], parts[2..].join(";"));
    let expired = SignedContext::sign(&in_clear(Tenant::HeadOffice), &db.key, Duration::ZERO);
    let foreign = SignedContext::sign(
        &in_clear(Tenant::HeadOffice),
        &ContextKey::from_hex(&"42".repeat(32)).unwrap(),
        Duration::from_secs(600),
    );
    let c = db.query_role().await;
    for forged in [
        HEAD_OFFICE_SCOPE.trim_matches('\'').to_owned(),
        tampered,
        expired.as_str().to_owned(),
        foreign.as_str().to_owned(),
    ] {
        // As if SQL had slipped a SET past every other guard (session- and transaction-level).
        c.batch_execute(&format!("SET zava.tenant = '{forged}'")).await.unwrap();
        for table in ["orders", "order_items", "inventory", "customers"] {
            let n: i64 = c.query_one(&format!("SELECT count(*) FROM retail.{table}"), &[]).await.unwrap().get(0);
            assert_eq!(n, 0, "{table} visible with context {forged}");
        }
    }
    // The genuine context still works on the same connection.
    c.batch_execute(&format!("SET zava.tenant = '{}'", valid.as_str())).await.unwrap();
    let seattle_orders = db.owner_count("SELECT count(*) FROM retail.orders WHERE store_id = 1").await;
    assert_eq!(c.query_one("SELECT count(*) FROM retail.orders", &[]).await.unwrap().get::<_, i64>(0), seattle_orders);
}

#[tokio::test]
async fn the_key_and_the_crypto_functions_are_out_of_reach() {
    let db = TestDb::new().await;
    for sql in [
        "SELECT count(*) FROM zava_private.context_key",
        "SELECT count(*) FROM zava_private.dataset",
        "SELECT count(*) FROM public.refinery_schema_history",
        "SELECT length(zava_crypto.hmac('x', 'y', 'sha256'))::bigint",
    ] {
        assert!(db.as_tenant(&seattle(), sql).await.is_err(), "`{sql}` succeeded");
    }
    // The context functions themselves only ever answer for the caller.
    let rows = db.as_tenant(&seattle(), "SELECT zava_private.tenant_store_ids()").await.unwrap();
    assert_eq!(rows[0].get::<_, Vec<i32>>(0), [SEATTLE]);
}

#[tokio::test]
async fn role_and_row_security_switches_are_refused() {
    let db = TestDb::new().await;
    let c = db.query_role().await;
    for stmt in ["SET ROLE zava_owner", "SET SESSION AUTHORIZATION zava_owner", "SET ROLE postgres"] {
        assert!(c.batch_execute(stmt).await.is_err(), "`{stmt}` succeeded");
    }
    // row_security = off makes PostgreSQL raise instead of filtering: it never returns unfiltered rows.
    c.batch_execute("SET row_security = off").await.unwrap();
    assert!(c.query("SELECT store_id FROM retail.orders", &[]).await.is_err());
}

#[tokio::test]
async fn the_query_role_cannot_change_anything() {
    let db = TestDb::new().await;
    let before =
        db.owner_count("SELECT (SELECT count(*) FROM retail.orders) + (SELECT count(*) FROM retail.stores)").await;
    let c = db.query_role().await;
    for stmt in [
        "INSERT INTO retail.stores (store_name, rls_user_id) VALUES ('x', '00000000-0000-0000-0000-000000000001')",
        "UPDATE retail.stores SET rls_user_id = '00000000-0000-0000-0000-000000000000'",
        "DELETE FROM retail.orders",
        "TRUNCATE retail.orders",
        "CREATE TABLE public.loot AS SELECT 1",
        "CREATE TEMP TABLE loot (x int)",
        "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "DO $$ BEGIN PERFORM 1; END $$",
        "COPY retail.orders TO PROGRAM 'true'",
        "ALTER TABLE retail.orders DISABLE ROW LEVEL SECURITY",
        "GRANT SELECT ON zava_private.context_key TO zava_query",
    ] {
        // Even in an explicitly read-write transaction, privileges refuse it.
        let r = c.batch_execute(&format!("BEGIN READ WRITE; {stmt}; COMMIT")).await;
        let _ = c.batch_execute("ROLLBACK").await;
        assert!(r.is_err(), "`{stmt}` succeeded");
    }
    let after =
        db.owner_count("SELECT (SELECT count(*) FROM retail.orders) + (SELECT count(*) FROM retail.stores)").await;
    assert_eq!(before, after);
    assert_eq!(db.owner_count("SELECT count(*) FROM pg_class WHERE relname = 'loot'").await, 0);
}

#[tokio::test]
async fn functions_that_run_sql_or_spy_on_sessions_are_revoked() {
    let db = TestDb::new().await;
    for sql in [
        "SELECT query_to_xml('SELECT * FROM retail.orders', true, false, '')::text",
        "SELECT cursor_to_xml('c', 1, true, false, '')::text",
        "SELECT * FROM ts_stat('SELECT to_tsvector(store_id::text) FROM retail.orders')",
        "SELECT count(*) FROM pg_stat_activity",
        "SELECT pg_cancel_backend(pg_backend_pid())",
        "SELECT pg_sleep(0)",
        "SELECT count(*) FROM pg_stat_user_tables",
    ] {
        assert!(db.as_tenant(&seattle(), sql).await.is_err(), "`{sql}` succeeded");
    }
    // Column statistics of row-secured tables are hidden from the query role.
    let rows = db
        .as_tenant(&seattle(), "SELECT count(*) FROM pg_stats WHERE schemaname = 'retail' AND tablename = 'orders'")
        .await;
    assert_eq!(count(&rows.unwrap()), 0);
}

#[tokio::test]
async fn committing_inside_the_tenant_transaction_drops_the_context_not_the_isolation() {
    let db = TestDb::new().await;
    let mut client = db.query_role().await;
    let tx = zava_mcp::db::context::begin(&mut client, &db.context(&seattle()), Duration::from_secs(30)).await.unwrap();
    let _ = tx.query("COMMIT", &[]).await;
    // Whatever runs next on this connection has no tenant context at all.
    let n: i64 = tx
        .query_one("SELECT count(*) FROM retail.orders WHERE store_id <> 1", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn explain_estimates_do_not_reveal_other_stores_volumes() {
    let db = TestDb::new().await;
    let estimate = |store: i32| {
        let db = &db;
        async move {
            let rows = db
                .as_tenant(&seattle(), &format!("EXPLAIN SELECT * FROM retail.orders WHERE store_id = {store}"))
                .await
                .unwrap();
            let plan: String = rows[0].get(0);
            plan.split("rows=").nth(1).and_then(|r| r.split(' ').next()).unwrap().to_owned()
        }
    };
    // Bellevue has about twelve times Kirkland's orders; the estimates must not say so.
    let (big, small) = (estimate(2).await, estimate(7).await);
    assert_eq!(big, small, "EXPLAIN reveals per-store volumes: {big} vs {small}");
}

/// The rows a plan's nodes dropped in filters, summed over the whole plan (EXPLAIN ANALYZE, JSON format).
fn rows_removed_by_filter(plan: &serde_json::Value) -> i64 {
    let own = plan.get("Rows Removed by Filter").and_then(serde_json::Value::as_i64).unwrap_or(0);
    let children = plan.get("Plans").and_then(serde_json::Value::as_array).into_iter().flatten();
    own + children.map(rows_removed_by_filter).sum::<i64>()
}

#[tokio::test]
async fn a_managers_query_visits_only_its_own_stores_rows() {
    // With the store in the index condition, no other store's row is read and dropped: the time a query takes says
    // nothing about other stores' volumes, and small stores do not pay for large ones.
    let db = TestDb::new().await;
    for (i, store) in STORES.iter().enumerate() {
        let tenant = Tenant::from_uuid(store.manager);
        for sql in [
            "SELECT count(*) FROM retail.orders",
            "SELECT count(*) FROM retail.order_items",
            "SELECT count(*) FROM retail.inventory",
            "SELECT count(*) FROM retail.orders WHERE order_date >= DATE '2024-01-01'",
            "SELECT p.product_name, sum(oi.total_amount) FROM retail.order_items oi \
             JOIN retail.products p USING (product_id) GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
        ] {
            let rows = db.as_tenant(&tenant, &format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).await.unwrap();
            let plan: serde_json::Value = rows[0].get(0);
            let removed = rows_removed_by_filter(&plan[0]["Plan"]);
            assert_eq!(
                removed,
                0,
                "store {}: `{sql}` read and dropped {removed} rows of other stores:\n{plan:#}",
                i + 1
            );
        }
    }
}

#[tokio::test]
async fn the_session_check_sees_what_a_call_could_leave_behind() {
    // What the server asks after every call before it reuses a connection (migration V8, `db::session`).
    async fn clean(c: &tokio_postgres::Client) -> bool {
        let check = zava_mcp::db::session::CLEAN_SESSION_CHECK;
        c.query_one(check, &[]).await.unwrap().get::<_, bool>(0)
    }
    let db = TestDb::new().await;
    let query = db.query_role().await;
    assert!(clean(&query).await, "a fresh connection is clean");
    for (dirty, undo) in [
        ("SET zava.tenant = 'v1;*;1;00;00'", "RESET zava.tenant"),
        ("SET row_security = off", "RESET row_security"),
        ("SET default_transaction_read_only = off", "RESET default_transaction_read_only"),
        ("PREPARE leftover AS SELECT 1", "DEALLOCATE leftover"),
        ("LISTEN leftover", "UNLISTEN leftover"),
        ("BEGIN; DECLARE leftover CURSOR WITH HOLD FOR SELECT 1; COMMIT", "CLOSE leftover"),
    ] {
        query.batch_execute(dirty).await.unwrap();
        assert!(!clean(&query).await, "not seen: {dirty}");
        query.batch_execute(undo).await.unwrap();
        assert!(clean(&query).await, "still dirty after {undo}");
    }
    // Advisory locks are not asked about (migration V11): the query role cannot take one, by PostgreSQL's own
    // privilege check, in or out of a transaction.
    for take in
        ["SELECT pg_advisory_lock(42)", "SELECT pg_try_advisory_lock(42)", "SELECT pg_advisory_lock_shared(1, 2)"]
    {
        let refused = query.batch_execute(take).await.expect_err(take);
        assert_eq!(refused.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{take}: {refused}");
    }
    assert!(clean(&query).await);
}
