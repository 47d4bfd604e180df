//! Row-level security semantics through the query role: who sees which rows.

use std::collections::BTreeSet;
use std::time::Duration;

use uuid::Uuid;
use zava_mcp::data::stores::STORES;
use zava_mcp::db::context;
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

/// What one role may do in the database: (kind, object, privilege) for every grant on an object the owner owns.
async fn grants_of(db: &TestDb, role: &str) -> BTreeSet<String> {
    let sql = format!(
        "SELECT 'schema ' || n.nspname || ' ' || a.privilege_type FROM pg_namespace n, aclexplode(n.nspacl) a
             WHERE a.grantee = '{role}'::regrole
         UNION ALL SELECT 'relation ' || c.oid::regclass::text || ' ' || a.privilege_type
             FROM pg_class c, aclexplode(c.relacl) a WHERE a.grantee = '{role}'::regrole
         UNION ALL SELECT 'column ' || c.oid::regclass::text || '.' || t.attname
             FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid, aclexplode(t.attacl) a
             WHERE a.grantee = '{role}'::regrole
         UNION ALL SELECT 'function ' || p.oid::regprocedure::text || ' ' || a.privilege_type
             FROM pg_proc p, aclexplode(p.proacl) a WHERE a.grantee = '{role}'::regrole"
    );
    db.owner_values::<String>(&sql).await.into_iter().collect()
}

#[tokio::test]
async fn the_head_office_role_may_do_what_the_query_role_may_and_nothing_more() {
    let db = TestDb::new().await;
    let query = grants_of(&db, "zava_query").await;
    assert!(query.contains("relation retail.orders SELECT"), "{query:?}");
    assert_eq!(
        grants_of(&db, "zava_head_office").await,
        query,
        "a grant to zava_query is missing from zava_head_office"
    );
    let c = db.query_role().await;
    let row = c
        .query_one(
            "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit, rolreplication,
                    pg_has_role('zava_query', oid, 'MEMBER'), pg_has_role('zava_query', oid, 'USAGE')
             FROM pg_roles WHERE rolname = 'zava_head_office'",
            &[],
        )
        .await
        .unwrap();
    for i in 0..7 {
        assert!(!row.get::<_, bool>(i), "attribute {i} of the head-office role is set");
    }
    assert!(row.get::<_, bool>(7), "the query role cannot switch to the head-office role");
    assert!(!row.get::<_, bool>(8), "the query role inherits the head-office role's policies without switching");
}

#[tokio::test]
async fn the_head_office_role_shows_nothing_without_head_offices_signed_context() {
    let db = TestDb::new().await;
    let c = db.query_role().await;
    let tenant = Tenant::from_uuid(STORES[0].manager);
    let manager = db.context(&tenant);
    for table in ["orders", "order_items", "inventory", "customers"] {
        let sql = format!("SELECT count(*) FROM retail.{table}");
        // A manager's context through the head-office role: the tables' head-office policy lets nothing through,
        // and customers (a view whose own rule reads the context) show exactly that manager's.
        let own = if table == "customers" { count(&db.as_tenant(&tenant, &sql).await.unwrap()) } else { 0 };
        assert!(table != "customers" || own > 0, "the manager sees no customers at all");
        for (context, expected) in [("", 0), ("v2;*;-;99999999999;00;forged", 0), (manager.as_str(), own)] {
            c.batch_execute(&format!(
                "BEGIN READ ONLY; SET LOCAL ROLE zava_head_office; SET LOCAL zava.tenant = '{context}'"
            ))
            .await
            .unwrap();
            let seen: i64 = scalar(&c, &sql).await;
            c.batch_execute("ROLLBACK").await.unwrap();
            assert_eq!(seen, expected, "{table} as the head-office role with context `{context}`");
        }
    }
    // The switch is session state: a connection left switched is not clean (and so not handed on).
    c.batch_execute("SET ROLE zava_head_office").await.unwrap();
    assert!(!scalar::<bool>(&c, "SELECT zava_private.session_is_clean()").await);
    c.batch_execute("RESET ROLE").await.unwrap();
    assert!(scalar::<bool>(&c, "SELECT zava_private.session_is_clean()").await);
}

#[tokio::test]
async fn head_office_plans_whole_table_reads_without_a_store_condition() {
    let db = TestDb::new().await;
    let total = db.owner_count("SELECT count(*) FROM retail.order_items").await;
    let plan = |tenant: Tenant| {
        let db = &db;
        async move {
            let mut c = db.query_role().await;
            let tx = context::begin(&mut c, &db.context(&tenant), Duration::from_secs(30)).await.unwrap();
            // A parallel scan's estimate is per process; one process keeps the figure comparable.
            tx.batch_execute("SET LOCAL max_parallel_workers_per_gather = 0").await.unwrap();
            let rows =
                tx.query("EXPLAIN (FORMAT JSON) SELECT sum(quantity) FROM retail.order_items", &[]).await.unwrap();
            rows[0].get::<_, serde_json::Value>(0)
        }
    };
    let head_office = plan(Tenant::HeadOffice).await;
    let text = head_office.to_string();
    assert!(!text.contains("store_id"), "head office's plan filters by store: {text}");
    // Under V9's `store_id = ANY (every store)` the scan was estimated at a twentieth of the table, and under a
    // bare `(SELECT tenant_is_head_office())` at half of it.
    let estimate = scan_estimate(&head_office[0]["Plan"], "order_items").expect("a scan of order_items");
    assert!(estimate >= total as f64 * 0.95, "head office's scan is estimated at {estimate} of {total} rows: {text}");
    // A manager's plan keeps the store condition that the (store_id, …) indexes answer.
    assert!(plan(Tenant::from_uuid(STORES[0].manager)).await.to_string().contains("store_id"));
    // The context functions run in a parallel query's leader, so tenant queries may still use workers.
    let unsafe_fns = db
        .owner_values::<String>(
            "SELECT p.oid::regprocedure::text FROM pg_proc p
             WHERE p.pronamespace = 'zava_private'::regnamespace AND p.proname ~ '^(tenant_|verified_context)'
               AND p.proparallel = 'u'",
        )
        .await;
    assert!(unsafe_fns.is_empty(), "parallel-unsafe context functions: {unsafe_fns:?}");
}

#[tokio::test]
async fn cross_type_datetime_comparisons_are_leakproof_and_never_fail() {
    let db = TestDb::new().await;
    let operators = db
        .owner_values::<String>(
            "SELECT format('%s|%s|%s|%s', o.oprname, o.oprleft::regtype, o.oprright::regtype, p.proleakproof)
             FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
             WHERE o.oprname IN ('<', '<=', '=', '<>', '>=', '>') AND o.oprleft <> o.oprright
               AND o.oprleft = ANY ('{date,timestamp,timestamptz}'::regtype[])
               AND o.oprright = ANY ('{date,timestamp,timestamptz}'::regtype[])",
        )
        .await;
    assert_eq!(operators.len(), 36, "{operators:?}");
    let extremes = |ty: &str| match ty {
        "date" => ["-infinity", "infinity", "4713-01-01 BC", "5874897-12-31", "2026-06-15"],
        _ => ["-infinity", "infinity", "4714-11-24 00:00 BC", "294276-12-31 23:59:59", "2026-06-15 12:00"],
    };
    let name = |ty: &str| {
        if ty == "timestamp without time zone" {
            "timestamp"
        } else if ty == "timestamp with time zone" {
            "timestamptz"
        } else {
            ty
        }
        .to_owned()
    };
    let mut comparisons = Vec::new();
    for op in &operators {
        let [op, left, right, leakproof] = op.split('|').collect::<Vec<_>>()[..] else { panic!("{op}") };
        assert_eq!(leakproof, "t", "{left} {op} {right} is not marked leakproof");
        let (left, right) = (name(left), name(right));
        for l in extremes(&left) {
            for r in extremes(&right) {
                comparisons.push(format!("('{l}'::{left} {op} '{r}'::{right})::int"));
            }
        }
    }
    // Every comparison at the types' extremes answers instead of raising an error (which could quote a value).
    let sql = format!("SELECT {}", comparisons.join(" + "));
    let sum: i32 = scalar(&db.query_role().await, &sql).await;
    assert!(sum > 0 && (sum as usize) < comparisons.len(), "{sum} of {}", comparisons.len());
}

/// The estimated rows of the first scan of `relation` in a JSON plan.
fn scan_estimate(node: &serde_json::Value, relation: &str) -> Option<f64> {
    if node["Relation Name"] == relation {
        return node["Plan Rows"].as_f64();
    }
    node["Plans"].as_array()?.iter().find_map(|child| scan_estimate(child, relation))
}
