//! `db::introspect` against the real database as the query role: which tables are offered, the exact markdown
//! the schema tool returns, relationships without ownership (ORIGIN.md C12), per-tenant valid values, request
//! validation, and a cache that never serves one tenant's block to another (the origin's W6).

use std::time::Duration;

use chrono::NaiveDate;
use uuid::Uuid;
use zava_mcp::data::stores::STORES;
use zava_mcp::db::context;
use zava_mcp::db::introspect::{self, SchemaCache, SchemaRequestError, TableName};
use zava_mcp::tenant::Tenant;

use crate::harness::TestDb;

const TIMEOUT: Duration = Duration::from_secs(30);

const RETAIL_TABLES: [&str; 9] = [
    "categories",
    "customers",
    "inventory",
    "order_items",
    "orders",
    "product_description_embeddings",
    "product_types",
    "products",
    "stores",
];

fn table(name: &str) -> TableName {
    name.parse().unwrap()
}

fn redmond() -> Tenant {
    Tenant::from_uuid(STORES[5].manager)
}

fn kirkland() -> Tenant {
    Tenant::from_uuid(STORES[6].manager)
}

/// The `retail.orders` block as `tenant` sees it, straight from the database (no cache).
async fn orders_block(db: &TestDb, tenant: &Tenant) -> String {
    let mut client = db.query_role().await;
    let tx = context::begin(&mut client, &db.context(tenant), TIMEOUT).await.unwrap();
    introspect::describe(tx.client(), &[table("retail.orders")]).await.unwrap()
}

/// First and last order date of one store (all stores for `None`), as the owner sees them.
async fn date_range(db: &TestDb, store_id: Option<i32>) -> (NaiveDate, NaiveDate) {
    let owner = db.owner().await;
    let row = owner
        .query_one(
            "SELECT min(order_date), max(order_date) FROM retail.orders WHERE $1::int IS NULL OR store_id = $1",
            &[&store_id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn the_query_role_is_offered_exactly_the_nine_retail_tables() {
    let db = TestDb::new().await;
    let expected: Vec<String> = RETAIL_TABLES.iter().map(|t| format!("retail.{t}")).collect();
    let mut client = db.query_role().await;
    {
        let tx = context::begin(&mut client, &db.context(&Tenant::HeadOffice), TIMEOUT).await.unwrap();
        let tables = introspect::readable_tables(tx.client()).await.unwrap();
        assert_eq!(tables.iter().map(ToString::to_string).collect::<Vec<_>>(), expected);
    }
    // Privileges, not row security, decide the list: a caller without a context is offered the same tables.
    let tx = client.transaction().await.unwrap();
    let tables = introspect::readable_tables(tx.client()).await.unwrap();
    assert_eq!(tables.iter().map(ToString::to_string).collect::<Vec<_>>(), expected);
}

#[tokio::test]
async fn head_office_gets_the_origin_layout_for_orders() {
    let db = TestDb::new().await;
    let (first, last) = date_range(&db, None).await;
    let expected = format!(
        "\n\n# Table: retail.orders\n\n\
         **Purpose:** Order headers; revenue is in retail.order_items.total_amount\n\n\
         ## Schema\norder_id:integer, customer_id:integer, store_id:integer, order_date:date\n\n\
         ## Relationships\n\
         - `customer_id` → `retail.customers.customer_id` (MANY_TO_ONE)\n\
         - `store_id` → `retail.stores.store_id` (MANY_TO_ONE)\n\n\
         ## Valid Values\n\
         **Available Years:** 2020, 2021, 2022, 2023, 2024, 2025, 2026\n\
         **Date Range:** {first} to {last}\n\n\
         ## Query Hints\n\
         - Use `retail.orders` for queries about orders\n\
         - Join with `retail.customers` using `customer_id`\n\
         - Join with `retail.stores` using `store_id`\n"
    );
    assert_eq!(orders_block(&db, &Tenant::HeadOffice).await, expected);
}

#[tokio::test]
async fn every_table_describes_and_blocks_concatenate_in_request_order() {
    let db = TestDb::new().await;
    let mut client = db.query_role().await;
    let tx = context::begin(&mut client, &db.context(&Tenant::HeadOffice), TIMEOUT).await.unwrap();
    let tables: Vec<TableName> = RETAIL_TABLES.iter().rev().map(|t| table(&format!("retail.{t}"))).collect();
    let text = introspect::describe(tx.client(), &tables).await.unwrap();
    let headings: Vec<&str> = text.split("\n\n# Table: ").skip(1).map(|b| b.lines().next().unwrap()).collect();
    assert_eq!(headings, tables.iter().map(ToString::to_string).collect::<Vec<_>>());

    let one =
        |name: &str| text.split("\n\n# Table: ").find(|b| b.starts_with(&format!("{name}\n"))).unwrap().to_owned();
    let stores = one("retail.stores");
    assert!(stores.contains("**Purpose:** The 7 Washington stores and the online store\n"), "{stores}");
    assert!(stores.contains("## Column Notes\n- `rls_user_id`: Identity of the store manager\n"), "{stores}");
    assert!(stores.contains("**Stores Locations:** Zava Retail Bellevue, Zava Retail Everett,"), "{stores}");
    assert!(stores.ends_with("- Use is_online to tell the online store from physical stores\n"), "{stores}");
    let items = one("retail.order_items");
    assert!(items.contains("- Use `retail.order_items` for queries about order items\n"), "{items}");
    assert!(items.ends_with("- Revenue is SUM(total_amount) (after discount)\n"), "{items}");
    assert!(items.contains("unit_price:numeric, discount_percent:integer"), "{items}");
    let categories = one("retail.categories");
    assert!(categories.contains("**Purpose:** Table containing categories data\n"), "{categories}");
    assert!(categories.contains("**Valid Categories:** "), "{categories}");
    assert!(!categories.contains("## Relationships"), "{categories}");
    assert!(one("retail.product_types").contains("**Valid Product Types:** "));
    let embeddings = one("retail.product_description_embeddings");
    assert!(
        embeddings
            .contains("product_id:integer, description_embedding:vector(384), created_at:timestamp without time zone")
    );
    assert!(!one("retail.products").contains("## Valid Values"));

    // A table the role cannot read gets the origin's not-found line, like a vanished one.
    let twice = introspect::describe(tx.client(), &[table("retail.stores"), table("retail.stores")]).await.unwrap();
    assert_eq!(twice, format!("\n\n# Table: {stores}\n\n# Table: {stores}"));
    let missing =
        introspect::describe(tx.client(), &[table("zava_private.context_key"), table("retail.nope")]).await.unwrap();
    assert_eq!(
        missing,
        "**ERROR:** Table 'zava_private.context_key' not found\n**ERROR:** Table 'retail.nope' not found\n"
    );
}

#[tokio::test]
async fn relationships_come_from_pg_catalog_although_the_role_owns_nothing() {
    let db = TestDb::new().await;
    let mut client = db.query_role().await;
    let tx = context::begin(&mut client, &db.context(&redmond()), TIMEOUT).await.unwrap();
    let owned: i64 = tx
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owned, 0);
    // C12: what the origin read shows this role no foreign keys at all.
    let visible: i64 = tx
        .query_one(
            "SELECT count(*) FROM information_schema.table_constraints
             WHERE table_schema = 'retail' AND constraint_type = 'FOREIGN KEY'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(visible, 0, "information_schema now shows constraints to a SELECT-only role; C12 is moot");

    let text = introspect::describe(tx.client(), &[table("retail.order_items")]).await.unwrap();
    assert!(
        text.contains(
            "## Relationships\n\
             - `order_id` → `retail.orders.order_id` (MANY_TO_ONE)\n\
             - `store_id` → `retail.stores.store_id` (MANY_TO_ONE)\n\
             - `product_id` → `retail.products.product_id` (MANY_TO_ONE)\n\n"
        ),
        "{text}"
    );
    assert!(text.contains(
        "- Join with `retail.orders` using `order_id`\n\
         - Join with `retail.stores` using `store_id`\n\
         - Join with `retail.products` using `product_id`\n"
    ));
}

#[tokio::test]
async fn a_manager_sees_only_their_stores_years() {
    let db = TestDb::new().await;
    let years: Vec<i32> = db
        .owner_values(
            "SELECT DISTINCT EXTRACT(YEAR FROM order_date)::int FROM retail.orders WHERE store_id = 6 ORDER BY 1",
        )
        .await;
    let (first, last) = date_range(&db, Some(6)).await;
    let years = years.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let block = orders_block(&db, &redmond()).await;
    assert!(
        block
            .contains(&format!("## Valid Values\n**Available Years:** {years}\n**Date Range:** {first} to {last}\n\n")),
        "{block}"
    );
}

#[tokio::test]
async fn no_context_or_an_unknown_manager_gets_no_order_values() {
    let db = TestDb::new().await;
    let tables = [table("retail.orders"), table("retail.stores")];
    let unknown = {
        let mut client = db.query_role().await;
        let tx = context::begin(&mut client, &db.context(&Tenant::from_uuid(Uuid::new_v4())), TIMEOUT).await.unwrap();
        introspect::describe(tx.client(), &tables).await.unwrap()
    };
    let none = {
        let mut client = db.query_role().await;
        let tx = client.transaction().await.unwrap();
        introspect::describe(tx.client(), &tables).await.unwrap()
    };
    for text in [unknown, none] {
        let (orders, stores) = text.split_once("\n\n# Table: retail.stores").unwrap_or_else(|| panic!("{text}"));
        assert!(!orders.contains("Valid Values") && !orders.contains("Available Years"), "{orders}");
        assert!(orders.contains("## Relationships\n"), "{orders}");
        // Shared reference data stays readable for everyone.
        assert!(stores.contains("**Stores Locations:** "), "{stores}");
    }
}

fn readable() -> Vec<TableName> {
    RETAIL_TABLES.iter().map(|t| table(&format!("retail.{t}"))).collect()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

const VALID: &str = "['retail.categories', 'retail.customers', 'retail.inventory', 'retail.order_items', \
     'retail.orders', 'retail.product_description_embeddings', 'retail.product_types', 'retail.products', \
     'retail.stores']";

#[test]
fn resolve_validates_like_the_origin() {
    let readable = readable();
    let err = introspect::resolve(&[], &readable).unwrap_err();
    assert_eq!(err.to_string(), format!("table_names is required and cannot be empty; valid tables are: {VALID}"));

    let err = introspect::resolve(&names(&["retail.orders", "x", "it's", "x"]), &readable).unwrap_err();
    assert!(matches!(err, SchemaRequestError::Invalid { .. }));
    assert_eq!(err.to_string(), format!("Invalid table names: ['x', \"it's\"]. Valid tables are: {VALID}"));

    let many: Vec<String> = (0..21).map(|i| format!("retail.t{i}")).collect();
    assert_eq!(
        introspect::resolve(&many, &readable).unwrap_err(),
        SchemaRequestError::TooMany { requested: 21, max: introspect::MAX_TABLES }
    );
    // Twenty distinct names are fine as far as the limit goes (these are then simply unknown).
    assert!(matches!(introspect::resolve(&many[..20], &readable), Err(SchemaRequestError::Invalid { .. })));
}

#[test]
fn resolve_accepts_unqualified_and_differently_cased_names_once_each() {
    let readable = readable();
    let got = introspect::resolve(
        &names(&["orders", "RETAIL.Orders", " retail.stores ", "Order_Items", "retail.orders", "stores"]),
        &readable,
    )
    .unwrap();
    assert_eq!(got, [table("retail.orders"), table("retail.stores"), table("retail.order_items")]);
    // An unqualified name that two schemas share is ambiguous, so invalid.
    let mut two = readable.clone();
    two.push(table("sales.orders"));
    assert!(matches!(introspect::resolve(&names(&["orders"]), &two), Err(SchemaRequestError::Invalid { .. })));
    assert_eq!(introspect::resolve(&names(&["sales.orders"]), &two).unwrap(), [table("sales.orders")]);
}

#[tokio::test]
async fn the_cache_keeps_tenants_apart_and_reuses_a_tenants_own_block() {
    let db = TestDb::new().await;
    let orders = table("retail.orders");
    // The two tenants must see different valid values for the test to mean anything.
    let (head_first, head_last) = date_range(&db, None).await;
    let (kirk_first, kirk_last) = date_range(&db, Some(7)).await;
    assert_ne!((head_first, head_last), (kirk_first, kirk_last), "pick tenants whose order dates differ");

    let cache = SchemaCache::new(Duration::from_secs(600), 100);
    let cached = |tenant: Tenant| {
        let (db, cache, orders) = (&db, &cache, &orders);
        async move {
            let mut client = db.query_role().await;
            let tx = context::begin(&mut client, &db.context(&tenant), TIMEOUT).await.unwrap();
            cache.get_or_describe(&tenant.scope(), tx.client(), orders).await.unwrap()
        }
    };
    let head = cached(Tenant::HeadOffice).await;
    assert!(head.contains(&format!("**Date Range:** {head_first} to {head_last}\n")), "{head}");
    let kirk = cached(kirkland()).await;
    assert!(kirk.contains(&format!("**Date Range:** {kirk_first} to {kirk_last}\n")), "{kirk}");
    assert_eq!(kirk, orders_block(&db, &kirkland()).await);
    assert_eq!(cache.len().await, 2);

    // New data: a Kirkland order in 2031. Within the TTL both tenants get their own earlier block back...
    let owner = db.owner().await;
    owner
        .execute("INSERT INTO retail.orders (customer_id, store_id, order_date) VALUES (1, 7, '2031-06-01')", &[])
        .await
        .unwrap();
    assert!(orders_block(&db, &kirkland()).await.contains("2026, 2031\n**Date Range:**"));
    assert_eq!(cached(kirkland()).await, kirk, "Kirkland's block is served from the cache");
    assert_eq!(cached(Tenant::HeadOffice).await, head, "head office's block is served from the cache");
    // ...and a tenant not cached yet gets its own, fresh block, never another tenant's.
    let both = Tenant::from_uuids([STORES[5].manager, STORES[6].manager]).unwrap();
    let regional = cached(both.clone()).await;
    assert!(regional.contains("2026, 2031\n"), "{regional}");
    assert_eq!(regional, orders_block(&db, &both).await);
    assert_ne!(regional, kirk);
    assert_eq!(cache.len().await, 3);

    cache.invalidate_all();
    assert!(cached(kirkland()).await.contains("2031"));
}

#[tokio::test]
async fn cached_blocks_expire_and_batches_mix_cached_and_fresh_tables() {
    let db = TestDb::new().await;
    let cache = SchemaCache::new(Duration::from_millis(300), 100);
    let tables = [table("retail.orders"), table("retail.stores"), table("retail.nope")];
    let scope = kirkland().scope();
    let mut client = db.query_role().await;
    let first = {
        let tx = context::begin(&mut client, &db.context(&kirkland()), TIMEOUT).await.unwrap();
        cache.get_or_describe(&scope, tx.client(), &tables[0]).await.unwrap();
        cache.get_or_describe_all(&scope, tx.client(), &tables).await.unwrap()
    };
    {
        let tx = context::begin(&mut client, &db.context(&kirkland()), TIMEOUT).await.unwrap();
        assert_eq!(first, introspect::describe(tx.client(), &tables).await.unwrap());
    }
    assert_eq!(cache.len().await, 2, "the not-found line is not cached");

    let owner = db.owner().await;
    owner
        .execute("INSERT INTO retail.orders (customer_id, store_id, order_date) VALUES (1, 7, '2031-06-01')", &[])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let tx = context::begin(&mut client, &db.context(&kirkland()), TIMEOUT).await.unwrap();
    let after = cache.get_or_describe(&scope, tx.client(), &tables[0]).await.unwrap();
    assert!(after.contains("2031"), "expired blocks are described again: {after}");
}
