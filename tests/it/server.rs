//! The MCP server over HTTP, spawned in-process on port 0 against a fresh test database: tools, identity,
//! guard and database errors as tool results, caps, limits, and HTTP hygiene.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use zava_mcp::app::{App, AppSettings};
use zava_mcp::data::stores::STORES;

use crate::harness::TestDb;

const REDMOND: usize = 5;
const HEAD_OFFICE: &str = "00000000-0000-0000-0000-000000000000";

struct TestApp {
    url: String,
    http: reqwest::Client,
    db: TestDb,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    async fn spawn(settings: AppSettings) -> TestApp {
        Self::spawn_with_cors(settings, vec![]).await
    }

    async fn spawn_with_cors(settings: AppSettings, cors_origins: Vec<String>) -> TestApp {
        let db = TestDb::new().await;
        let embedder = crate::harness::embedder().clone();
        let app: Arc<App> = App::start(&db.query, db.key.clone(), embedder, settings).await.unwrap();
        let (addr, shutdown) = crate::harness::serve_http(app, cors_origins).await;
        TestApp { url: format!("http://{addr}"), http: crate::harness::http_client(), db, shutdown }
    }

    fn post(&self, identity: Option<&str>, body: &Value) -> reqwest::RequestBuilder {
        let mut req = crate::harness::mcp_post(&self.http, &format!("{}/mcp", self.url), body);
        if let Some(id) = identity {
            req = req.header("x-rls-user-id", id);
        }
        req
    }

    /// Calls a tool and returns the JSON-RPC `result`.
    async fn call(&self, identity: Option<&str>, tool: &str, args: Value) -> Value {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": args}});
        let resp = self.post(identity, &body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.unwrap();
        v.get("result").cloned().unwrap_or_else(|| panic!("no result: {v}"))
    }

    async fn query(&self, identity: Option<&str>, sql: &str) -> Value {
        self.call(identity, "execute_sales_query", json!({"postgresql_query": sql})).await
    }
}

fn manager(i: usize) -> String {
    STORES[i].manager.to_string()
}

fn is_error(result: &Value) -> bool {
    result["isError"] == json!(true)
}

#[tokio::test]
async fn tools_are_listed_with_annotations_and_an_output_schema() {
    let app = TestApp::spawn(AppSettings::default()).await;
    let v: Value = app
        .post(None, &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tools = v["result"]["tools"].as_array().unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        ["execute_sales_query", "get_current_utc_date", "get_multiple_table_schemas", "semantic_search_products"]
    );
    for t in tools {
        assert_eq!(t["annotations"]["readOnlyHint"], json!(true), "{}", t["name"]);
        assert_eq!(t["annotations"]["openWorldHint"], json!(false), "{}", t["name"]);
    }
    let query = tools.iter().find(|t| t["name"] == "execute_sales_query").unwrap();
    assert_eq!(query["outputSchema"]["required"], json!(["c", "r", "n"]));
    assert!(query["inputSchema"]["properties"]["postgresql_query"].is_object());
}

#[tokio::test]
async fn a_store_manager_sees_only_their_store_in_the_origins_compact_shape() {
    let app = TestApp::spawn(AppSettings::default()).await;
    let sql = "SELECT store_id, count(*) AS n FROM retail.orders GROUP BY store_id ORDER BY store_id";
    let r = app.query(Some(&manager(REDMOND)), sql).await;
    assert!(!is_error(&r), "{r}");
    let text: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
    let expected = app.db.owner_count("SELECT count(*) FROM retail.orders WHERE store_id = 6").await;
    assert_eq!(text, json!({"c": ["store_id", "n"], "r": [[6, expected]], "n": 1}));
    let keys: Vec<&str> = r["content"][0]["text"].as_str().unwrap().split('"').skip(1).step_by(2).take(1).collect();
    assert_eq!(keys, ["c"], "the compact text starts with \"c\"");
    assert_eq!(r["structuredContent"]["t"], json!(["int4", "int8"]));
    let all = app.query(Some(HEAD_OFFICE), sql).await;
    assert_eq!(all["structuredContent"]["n"], json!(8));
}

#[tokio::test]
async fn missing_malformed_and_unknown_identities_are_refused() {
    let app = TestApp::spawn(AppSettings::default()).await;
    for id in [None, Some(""), Some("seattle"), Some("11111111-1111-1111-1111-111111111111")] {
        for (tool, args) in [
            ("execute_sales_query", json!({"postgresql_query": "SELECT count(*) FROM retail.stores"})),
            ("get_multiple_table_schemas", json!({"table_names": ["retail.stores"]})),
        ] {
            let r = app.call(id, tool, args).await;
            assert!(is_error(&r), "{id:?} {tool}: {r}");
            assert!(r["structuredContent"]["err"].as_str().unwrap().contains("identity"), "{r}");
        }
    }
    let date = app.call(None, "get_current_utc_date", json!({})).await;
    let text = date["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("Current UTC Date/Time: 20") && text.ends_with('Z') && text.len() == 50, "{text}");
}

#[tokio::test]
async fn refused_and_failing_sql_come_back_as_tool_errors_the_model_can_act_on() {
    let app = TestApp::spawn(AppSettings::default()).await;
    let id = manager(0);
    let refused = app.query(Some(&id), "DELETE FROM retail.orders").await;
    assert!(
        is_error(&refused) && refused["structuredContent"]["err"].as_str().unwrap().contains("SELECT"),
        "{refused}"
    );
    let missing = app.query(Some(&id), "SELECT nope FROM retail.orders").await;
    assert!(is_error(&missing));
    assert_eq!(missing["structuredContent"]["sqlstate"], json!("42703"));
    assert!(missing["structuredContent"]["position"].as_u64().is_some(), "{missing}");
    assert!(!missing.to_string().contains("nope FROM"), "the SQL text must not be echoed back: {missing}");
    let before = app.db.owner_count("SELECT count(*) FROM retail.orders").await;
    assert_eq!(before, app.db.owner_count("SELECT count(*) FROM retail.orders").await);
}

#[tokio::test]
async fn large_results_are_capped_with_a_note_steering_to_aggregation() {
    let settings = AppSettings {
        limits: zava_mcp::db::query::Limits { max_rows: 50, ..Default::default() },
        ..Default::default()
    };
    let app = TestApp::spawn(settings).await;
    let r = app.query(Some(HEAD_OFFICE), "SELECT * FROM retail.order_items").await;
    let s = &r["structuredContent"];
    assert_eq!((s["n"].clone(), s["truncated"].clone()), (json!(50), json!(true)));
    assert!(s["note"].as_str().unwrap().contains("aggregate"));
    let tiny = AppSettings {
        limits: zava_mcp::db::query::Limits { max_bytes: 2048, ..Default::default() },
        ..Default::default()
    };
    let app = TestApp::spawn(tiny).await;
    let r = app.query(Some(HEAD_OFFICE), "SELECT * FROM retail.products").await;
    assert_eq!(r["structuredContent"]["truncated"], json!(true));
    assert!(r["content"][0]["text"].as_str().unwrap().len() < 2048 + 400);
    let empty = app.query(Some(HEAD_OFFICE), "SELECT * FROM retail.stores WHERE false").await;
    assert_eq!(empty["structuredContent"]["msg"], json!("No rows"));
}

#[tokio::test]
async fn a_slow_query_is_stopped_by_the_statement_timeout() {
    let settings = AppSettings {
        limits: zava_mcp::db::query::Limits { statement_timeout: Duration::from_millis(300), ..Default::default() },
        ..Default::default()
    };
    let app = TestApp::spawn(settings).await;
    let slow = "SELECT count(*) FROM retail.order_items a, retail.order_items b";
    let r = app.query(Some(HEAD_OFFICE), slow).await;
    assert!(is_error(&r), "{r}");
    assert_eq!(r["structuredContent"]["sqlstate"], json!("57014"));
    assert!(r["structuredContent"]["hint"].as_str().unwrap().contains("aggregate"));
}

#[tokio::test]
async fn schemas_are_described_per_tenant_and_bad_names_listed() {
    let app = TestApp::spawn(AppSettings::default()).await;
    let r = app
        .call(Some(&manager(REDMOND)), "get_multiple_table_schemas", json!({"table_names": ["retail.orders"]}))
        .await;
    let text = r["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("\n\n# Table: retail.orders") && text.contains("(MANY_TO_ONE)"), "{text}");
    let bad =
        app.call(Some(&manager(REDMOND)), "get_multiple_table_schemas", json!({"table_names": ["retail.nope"]})).await;
    assert!(is_error(&bad));
    assert!(bad["structuredContent"]["err"].as_str().unwrap().contains("retail.order_items"), "{bad}");
}

#[tokio::test]
async fn http_hygiene_refuses_bad_origins_hosts_and_bodies() {
    let app = TestApp::spawn(AppSettings::default()).await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let origin = app.post(None, &list).header("Origin", "http://evil.example").send().await.unwrap();
    assert_eq!(origin.status(), 403);
    let host = app.post(None, &list).header("Host", "evil.example").send().await.unwrap();
    assert_eq!(host.status(), 403);
    let huge = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "execute_sales_query",
        "arguments": {"postgresql_query": format!("SELECT '{}'", "x".repeat(100_000))}}});
    assert_eq!(app.post(Some(HEAD_OFFICE), &huge).send().await.unwrap().status(), 413);
    let version = app
        .http
        .post(format!("{}/mcp", app.url))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "1999-01-01")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(version.status(), 400);
    // No CORS unless configured: a preflight gets no Access-Control-Allow-Origin.
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/mcp", app.url))
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers().get("access-control-allow-origin").is_none());
    let ready = app.http.get(format!("{}/health/ready", app.url)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(app.http.get(format!("{}/health/live", app.url)).send().await.unwrap().status(), 200);
}

/// Whether a statement containing `marker` is still running in the database.
async fn running(db: &TestDb, marker: &str) -> bool {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%{marker}%' \
         AND pid <> pg_backend_pid()"
    );
    crate::harness::scalar::<i64>(&db.superuser().await, &sql).await > 0
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_its_running_query() {
    let app = TestApp::spawn(AppSettings::default()).await;
    let slow = "SELECT count(*) AS gone_away_marker FROM retail.order_items a, retail.order_items b";
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "execute_sales_query", "arguments": {"postgresql_query": slow}}});
    let request = app.post(Some(HEAD_OFFICE), &body).timeout(Duration::from_millis(1500)).send();
    let watcher = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !running(&app.db, "gone_away_marker").await {
            assert!(tokio::time::Instant::now() < deadline, "the slow query never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (sent, ()) = tokio::join!(request, watcher);
    assert!(sent.is_err(), "the request should have timed out on the client side");
    // The client is gone; the statement must stop well before its 30 s timeout.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while running(&app.db, "gone_away_marker").await {
        assert!(tokio::time::Instant::now() < deadline, "the query kept running after the client went away");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn both_protocol_eras_are_served_statelessly() {
    let app = TestApp::spawn(AppSettings::default()).await;
    // 2025-era clients initialize first; the server echoes a version it knows.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
        "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let post = |version: &str, body: &Value| {
        app.http
            .post(format!("{}/mcp", app.url))
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", version)
            .header("x-rls-user-id", manager(REDMOND))
            .json(body)
    };
    let v: Value = post("2025-06-18", &init).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["result"]["protocolVersion"], json!("2025-06-18"), "{v}");
    assert_eq!(v["result"]["serverInfo"]["name"], json!("zava-mcp"));
    assert!(v["result"]["instructions"].as_str().unwrap().contains("get_multiple_table_schemas"));
    // 2026-07-28 clients send no initialize: the protocol state travels in each request's _meta.
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}});
    let discover = json!({"jsonrpc": "2.0", "id": 2, "method": "server/discover", "params": {"_meta": meta}});
    let v: Value = post("2026-07-28", &discover)
        .header("Mcp-Method", "server/discover")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["result"].is_object(), "{v}");
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"_meta": meta,
        "name": "execute_sales_query", "arguments": {"postgresql_query": "SELECT DISTINCT store_id FROM retail.orders"}}});
    let resp = post("2026-07-28", &call)
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "execute_sales_query")
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["result"]["structuredContent"]["r"], json!([[6]]), "{v}");
}

#[tokio::test]
async fn a_saturated_pool_answers_busy_instead_of_queueing_forever() {
    let settings = AppSettings {
        pool: zava_mcp::db::pool::PoolSettings {
            max_size: 1,
            acquire_timeout: Duration::from_millis(300),
            min_idle: 0,
            ..Default::default()
        },
        limits: zava_mcp::db::query::Limits { statement_timeout: Duration::from_secs(5), ..Default::default() },
        ..Default::default()
    };
    let app = TestApp::spawn(settings).await;
    let slow =
        app.query(Some(HEAD_OFFICE), "SELECT count(*) AS busy_marker FROM retail.order_items a, retail.order_items b");
    let second = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !running(&app.db, "busy_marker").await {
            assert!(tokio::time::Instant::now() < deadline, "the slow query never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app.query(Some(HEAD_OFFICE), "SELECT 1").await
    };
    let (_, busy) = tokio::join!(slow, second);
    assert!(is_error(&busy), "{busy}");
    assert!(busy["structuredContent"]["err"].as_str().unwrap().contains("busy"), "{busy}");
}

#[tokio::test]
async fn cors_is_answered_only_for_configured_origins() {
    let app = TestApp::spawn_with_cors(AppSettings::default(), vec!["http://localhost:6274".into()]).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/mcp", app.url))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "x-rls-user-id, mcp-protocol-version")
            .send()
    };
    let ok = preflight("http://localhost:6274").await.unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], "http://localhost:6274");
    let other = preflight("http://localhost:9999").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn semantic_search_finds_outdoor_electrical_boxes_for_every_identity() {
    let app = TestApp::spawn(AppSettings::default()).await;
    let args = json!({"query_description": "waterproof electrical box for outdoor use", "max_rows": 5});
    for id in [HEAD_OFFICE.to_owned(), manager(0), manager(REDMOND), manager(7)] {
        let r = app.call(Some(&id), "semantic_search_products", args.clone()).await;
        assert!(!is_error(&r), "{r}");
        let s = &r["structuredContent"];
        assert_eq!(s["c"][4], json!("type_name"));
        assert_eq!(s["r"][0][4], json!("ELECTRICAL BOXES"), "{s}");
        let sp = s["r"][0][8].as_f64().unwrap();
        assert!((30.0..=100.0).contains(&sp), "{sp}");
    }
    for mode in ["semantic", "keyword", "hybrid"] {
        let r = app
            .call(
                Some(HEAD_OFFICE),
                "semantic_search_products",
                json!({"query_description": "15 amp circuit breaker", "mode": mode}),
            )
            .await;
        assert_eq!(r["structuredContent"]["r"][0][4], json!("CIRCUIT BREAKERS"), "{mode}: {r}");
    }
}

#[tokio::test]
async fn search_parameters_out_of_range_are_errors_not_empty_results() {
    let app = TestApp::spawn(AppSettings::default()).await;
    for args in [
        json!({"query_description": "hammer", "similarity_threshold": 120.0}),
        json!({"query_description": "hammer", "max_rows": 0}),
        json!({"query_description": "   "}),
        json!({"query_description": "hammer", "mode": "fuzzy"}),
    ] {
        let r = app.call(Some(HEAD_OFFICE), "semantic_search_products", args.clone()).await;
        assert!(is_error(&r), "{args}: {r}");
    }
    let strict = app
        .call(
            Some(HEAD_OFFICE),
            "semantic_search_products",
            json!({"query_description": "quantum flux capacitor", "similarity_threshold": 95.0, "mode": "semantic"}),
        )
        .await;
    assert_eq!(strict["structuredContent"]["msg"], json!("No products >= 95.0%"), "{strict}");
}
