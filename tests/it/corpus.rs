//! The adversarial corpus (`tests/corpus/attacks.toml`), run through the real MCP path as the Redmond manager,
//! then, for what the guard refused, straight against PostgreSQL as the query role with Redmond's signed
//! context. Every answer on both paths is checked for other stores' data; after each family every tenant must
//! still be served and a fresh connection must still open. The test prints which layer stopped each family.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use zava_mcp::app::{App, AppSettings};
use zava_mcp::data::stores::STORES;
use zava_mcp::db::context;
use zava_mcp::db::query::Limits;
use zava_mcp::tenant::Tenant;

use crate::harness::{TestDb, scalar};

const CORPUS: &str = include_str!("../corpus/attacks.toml");
/// Redmond's manager is the sixth store (store_id 6).
const REDMOND: usize = 5;
const REDMOND_STORE: i64 = 6;

#[derive(Deserialize)]
struct Corpus {
    family: Vec<Family>,
}

#[derive(Deserialize)]
struct Family {
    name: String,
    mcp: Expect,
    database: Expect,
    #[serde(default)]
    attempts: Vec<String>,
    #[serde(default)]
    templates: Vec<String>,
    #[serde(default)]
    fills: Vec<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum Expect {
    Refused,
    Refuses,
    OwnRows,
    Survives,
    Skip,
}

impl Family {
    fn attempts(&self) -> Vec<String> {
        let expanded = self.templates.iter().flat_map(|t| self.fills.iter().map(move |f| t.replace("{}", f)));
        self.attempts.iter().cloned().chain(expanded).collect()
    }
}

/// Which layer answered an attempt on the MCP path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Guard,
    Database,
    Limits,
    Served,
}

fn layer_of(result: &Value) -> Layer {
    if result["isError"] != json!(true) {
        return Layer::Served;
    }
    let text = result["structuredContent"]["err"].as_str().unwrap_or_default();
    if text.starts_with("Query refused") {
        Layer::Guard
    } else if text.starts_with("PostgreSQL query failed") {
        Layer::Database
    } else {
        Layer::Limits
    }
}

/// What Redmond must never see: the emails of customers who neither belong to Redmond nor ordered there (the
/// customers policy shows a store its own customers and those who bought from it), and rows of orders, order items
/// or inventory of another store.
struct Oracle {
    foreign_emails: HashSet<String>,
    /// OIDs of the tables whose `store_id` must be Redmond's in every row Redmond sees.
    store_tables: Vec<u32>,
}

impl Oracle {
    async fn load(db: &TestDb) -> Oracle {
        let owner = db.owner().await;
        let rows = owner
            .query(
                "SELECT email FROM zava_private.customers c WHERE primary_store_id <> $1
                 AND NOT EXISTS (SELECT 1 FROM retail.orders o WHERE o.customer_id = c.customer_id AND o.store_id = $1)",
                &[&(REDMOND_STORE as i32)],
            )
            .await
            .unwrap();
        let foreign_emails = rows.iter().map(|r| r.get::<_, String>(0).to_lowercase()).collect();
        let tables = owner
            .query(
                "SELECT oid FROM pg_class WHERE oid IN ('retail.orders'::regclass, 'retail.order_items'::regclass,
                 'retail.inventory'::regclass)",
                &[],
            )
            .await
            .unwrap();
        Oracle { foreign_emails, store_tables: tables.iter().map(|r| r.get::<_, u32>(0)).collect() }
    }

    /// Panics if `text` holds the email of a customer Redmond may not see.
    fn assert_no_email_in(&self, text: &str, what: &str) {
        let lower = text.to_lowercase();
        let is_email_char = |c: char| c.is_ascii_alphanumeric() || "._%+-@".contains(c);
        for token in lower.split(|c: char| !is_email_char(c)).filter(|t| t.contains('@')) {
            assert!(!self.foreign_emails.contains(token), "{what}: leaked another store's customer email {token}");
        }
    }

    /// Which result columns are the `store_id` of orders, order items or inventory, as PostgreSQL describes the
    /// statement (prepared as Redmond; a statement that does not prepare has none).
    async fn store_columns(&self, db: &TestDb, sql: &str) -> Vec<bool> {
        let mut client = db.query_role().await;
        let tenant = Tenant::from_uuid(STORES[REDMOND].manager);
        let Ok(tx) = context::begin(&mut client, &db.context(&tenant), Duration::from_secs(2)).await else {
            return Vec::new();
        };
        let Ok(stmt) = tx.prepare(sql).await else { return Vec::new() };
        stmt.columns()
            .iter()
            .map(|c| c.name() == "store_id" && c.table_oid().is_some_and(|t| self.store_tables.contains(&t)))
            .collect()
    }

    /// Panics if a store column of `rows` holds another store.
    fn assert_only_redmond(&self, store_columns: &[bool], rows: &[Vec<Value>], what: &str) {
        for (i, _) in store_columns.iter().enumerate().filter(|(_, is_store)| **is_store) {
            for row in rows {
                let v = &row[i];
                assert!(v.is_null() || v == &json!(REDMOND_STORE), "{what}: a row of store {v}");
            }
        }
    }
}

struct Server {
    url: String,
    http: reqwest::Client,
    _shutdown: tokio_util::sync::CancellationToken,
}

impl Server {
    async fn call(&self, identity: &str, sql: &str) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "execute_sales_query", "arguments": {"postgresql_query": sql}}});
        let resp = crate::harness::mcp_post(&self.http, &format!("{}/mcp", self.url), &body)
            .header("x-rls-user-id", identity)
            .send()
            .await
            .unwrap_or_else(|e| panic!("`{sql}`: the server did not answer: {e}"));
        assert_eq!(resp.status(), 200, "`{sql}`");
        let v: Value = resp.json().await.unwrap();
        v.get("result").cloned().unwrap_or_else(|| panic!("`{sql}`: no result: {v}"))
    }
}

/// Runs `sql` as Redmond without the guard: the query role, a tenant transaction, the extended protocol.
async fn straight(db: &TestDb, sql: &str) -> Result<Vec<Vec<Value>>, String> {
    let mut client = db.query_role().await;
    let tenant = Tenant::from_uuid(STORES[REDMOND].manager);
    let tx =
        context::begin(&mut client, &db.context(&tenant), Duration::from_secs(2)).await.map_err(|e| e.to_string())?;
    let stmt = tx.prepare(sql).await.map_err(|e| crate::harness::db_error(&e))?;
    let rows = tx.query(&stmt, &[]).await.map_err(|e| crate::harness::db_error(&e))?;
    let values: Result<Vec<_>, String> =
        rows.iter().map(|r| zava_mcp::db::decode::row_values(r).map_err(|e| e.to_string())).collect();
    values
}

/// Every tenant is served with its own count, and a fresh query-role connection opens.
async fn everyone_is_served(app: &Server, db: &TestDb, expected: &BTreeMap<String, i64>, after: &str) {
    for (identity, want) in expected {
        let r = app.call(identity, "SELECT count(*) AS n FROM retail.orders").await;
        assert_eq!(r["structuredContent"]["r"][0][0], json!(want), "after {after}: {identity} is not served: {r}");
    }
    let fresh = db.query_role().await;
    assert_eq!(scalar::<i32>(&fresh, "SELECT 1").await, 1, "after {after}");
}

#[tokio::test]
async fn the_adversarial_corpus_is_refused_or_harmless_at_every_layer() {
    let corpus: Corpus = toml::from_str(CORPUS).expect("tests/corpus/attacks.toml");
    let db = TestDb::new().await;
    let settings = AppSettings {
        limits: Limits { statement_timeout: Duration::from_secs(2), ..Default::default() },
        ..Default::default()
    };
    let app: Arc<App> =
        App::start(&db.query, db.key.clone(), crate::harness::embedder().clone(), settings).await.unwrap();
    let (addr, shutdown) = crate::harness::serve_http(app, vec![]).await;
    let server = Server { url: format!("http://{addr}"), http: crate::harness::http_client(), _shutdown: shutdown };
    let oracle = Oracle::load(&db).await;
    let redmond = STORES[REDMOND].manager.to_string();

    let mut expected = BTreeMap::new();
    expected.insert(
        zava_mcp::tenant::HEAD_OFFICE_ID.to_string(),
        db.owner_count("SELECT count(*) FROM retail.orders").await,
    );
    for (i, store) in STORES.iter().enumerate() {
        let n = db.owner_count(&format!("SELECT count(*) FROM retail.orders WHERE store_id = {}", i + 1)).await;
        expected.insert(store.manager.to_string(), n);
    }

    let mut table = Vec::new();
    let mut total = 0;
    for family in &corpus.family {
        let attempts = family.attempts();
        total += attempts.len();
        let mut layers: BTreeMap<Layer, usize> = BTreeMap::new();
        let (mut db_refused, mut db_own_rows) = (0, 0);
        for sql in &attempts {
            let what = format!("[{}] `{sql}`", family.name);
            let result = server.call(&redmond, sql).await;
            oracle.assert_no_email_in(&result.to_string(), &what);
            let layer = layer_of(&result);
            *layers.entry(layer).or_default() += 1;
            if layer == Layer::Served {
                let rows: Vec<Vec<Value>> =
                    serde_json::from_value(result["structuredContent"]["r"].clone()).unwrap_or_default();
                oracle.assert_only_redmond(&oracle.store_columns(&db, sql).await, &rows, &what);
            }
            match family.mcp {
                Expect::Refused => assert!(layer != Layer::Served, "{what} was served: {result}"),
                Expect::OwnRows | Expect::Survives => {}
                other => panic!("[{}] mcp = {other:?} is not an MCP expectation", family.name),
            }
            if layer != Layer::Guard || family.database == Expect::Skip {
                continue;
            }
            match straight(&db, sql).await {
                Err(_) => db_refused += 1,
                Ok(rows) => {
                    assert!(
                        family.database != Expect::Refuses,
                        "{what}: PostgreSQL alone ran it ({} rows)",
                        rows.len()
                    );
                    oracle.assert_no_email_in(&format!("{rows:?}"), &what);
                    oracle.assert_only_redmond(&oracle.store_columns(&db, sql).await, &rows, &what);
                    db_own_rows += 1;
                }
            }
        }
        everyone_is_served(&server, &db, &expected, &family.name).await;
        let count = |l| layers.get(&l).copied().unwrap_or(0);
        table.push(format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            family.name,
            attempts.len(),
            count(Layer::Guard),
            count(Layer::Database),
            count(Layer::Limits),
            count(Layer::Served),
            db_refused,
            db_own_rows
        ));
    }
    assert!(total >= 300, "the corpus has {total} attempts; it must keep at least 300");
    println!(
        "| family | attempts | guard | database | limits | served | without the guard: database refuses | \
         without the guard: own rows only |\n|---|---|---|---|---|---|---|---|\n{}",
        table.join("\n")
    );
    // No advisory lock survives anywhere in the cluster, and the pool's connections are clean.
    let superuser = db.superuser().await;
    let locks: i64 = scalar(&superuser, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").await;
    assert_eq!(locks, 0, "advisory locks were left behind");
}

#[tokio::test]
async fn every_retail_column_passes_the_guard_in_attribute_position() {
    // `t.col` is a call of `col(t)` when `t` has no such column, so the guard checks field names against the
    // function catalog; no real column may be refused for it.
    let db = TestDb::new().await;
    let app = App::start(&db.query, db.key.clone(), crate::harness::embedder().clone(), AppSettings::default())
        .await
        .unwrap();
    let owner = db.owner().await;
    let columns = owner
        .query(
            "SELECT c.relname::text, a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
             WHERE c.relnamespace = 'retail'::regnamespace AND c.relkind IN ('r', 'v', 'm') AND a.attnum > 0
               AND NOT a.attisdropped",
            &[],
        )
        .await
        .unwrap();
    assert!(columns.len() > 30);
    for row in &columns {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        for sql in
            [format!("SELECT t.{column} FROM retail.{table} t"), format!("SELECT (t).{column} FROM retail.{table} t")]
        {
            if let Err(e) = zava_mcp::guard::ReadOnlySql::parse(&sql, &app.functions) {
                panic!("`{sql}` refused: {e}");
            }
        }
    }
}
