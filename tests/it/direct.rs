//! The direct lane (`http::direct`) against rmcp's handler: one app served twice, once with each `--call-lane`,
//! the same requests sent to both, the answers compared byte for byte once parsed (the date tool's clock
//! aside). Every shape of call is here: each tool, every identity kind, bad and missing arguments, guard
//! refusals, capped results, string and number ids, trace context in `_meta`, each protocol-version header, and
//! the requests the lane leaves to rmcp (an unknown tool, the 2026-07-28 lifecycle, a weighted `Accept`).

use std::sync::Arc;

use serde_json::{Value, json};
use zava_mcp::app::{App, AppSettings};
use zava_mcp::data::stores::STORES;
use zava_mcp::http::CallLane;

use crate::harness::TestDb;

const HEAD_OFFICE: &str = "00000000-0000-0000-0000-000000000000";

/// One request: its body, the identity header, and the headers that differ from `harness::mcp_post`'s (which
/// replace them).
struct Case {
    what: &'static str,
    body: Value,
    identity: Option<String>,
    headers: Vec<(&'static str, &'static str)>,
}

fn call(what: &'static str, identity: Option<&str>, tool: &str, args: Value) -> Case {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": args}});
    Case { what, body, identity: identity.map(str::to_owned), headers: vec![] }
}

fn sql(q: &str) -> Value {
    json!({"postgresql_query": q})
}

fn cases() -> Vec<Case> {
    let redmond = STORES.iter().find(|s| s.name.ends_with("Redmond")).unwrap().manager.to_string();
    let (r, ho) = (Some(redmond.as_str()), Some(HEAD_OFFICE));
    let two = format!("{},{}", STORES[0].manager, STORES[1].manager);
    let mut cases = vec![
        call("a count for a store", r, "execute_sales_query", sql("SELECT count(*) FROM retail.orders")),
        call("a count for head office", ho, "execute_sales_query", sql("SELECT count(*) AS n FROM retail.orders")),
        call("two stores", Some(&two), "execute_sales_query", sql("SELECT DISTINCT store_id FROM retail.orders")),
        call("rows cut at the cap", r, "execute_sales_query", sql("SELECT * FROM retail.order_items")),
        call("a guard refusal", r, "execute_sales_query", sql("DELETE FROM retail.orders")),
        call("a database error", ho, "execute_sales_query", sql("SELECT 1/0")),
        call("an unknown table", r, "execute_sales_query", sql("SELECT * FROM retail.nope")),
        call("no identity", None, "execute_sales_query", sql("SELECT 1")),
        call("a malformed identity", Some("not-a-uuid"), "execute_sales_query", sql("SELECT 1")),
        call("missing arguments", r, "execute_sales_query", json!({})),
        call("a wrongly typed argument", r, "execute_sales_query", json!({"postgresql_query": 5})),
        call("an extra argument", r, "execute_sales_query", json!({"postgresql_query": "SELECT 1", "x": 1})),
        call("schemas", r, "get_multiple_table_schemas", json!({"table_names": ["retail.orders", "retail.stores"]})),
        call("a bad table name", r, "get_multiple_table_schemas", json!({"table_names": ["pg_authid"]})),
        call("schemas without arguments", r, "get_multiple_table_schemas", json!(null)),
        call("a search", r, "semantic_search_products", json!({"query_description": "outdoor electrical box"})),
        call(
            "a keyword search",
            ho,
            "semantic_search_products",
            json!({"query_description": "drill", "mode": "keyword"}),
        ),
        call("a search out of range", r, "semantic_search_products", json!({"query_description": "x", "max_rows": 0})),
        call("a bad search mode", r, "semantic_search_products", json!({"query_description": "x", "mode": "psychic"})),
        call("the date", None, "get_current_utc_date", json!({})),
        call("an unknown tool", r, "drop_everything", json!({})),
    ];
    let mut string_id = call("a string id", r, "execute_sales_query", sql("SELECT 2"));
    string_id.body["id"] = json!("req-é");
    let mut traced = call("traceparent in _meta", r, "execute_sales_query", sql("SELECT 3"));
    traced.body["params"]["_meta"] = json!({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"});
    let mut no_arguments = call("no arguments member", r, "execute_sales_query", json!(null));
    no_arguments.body["params"].as_object_mut().unwrap().remove("arguments");
    let mut old_era = call("protocol 2025-03-26", r, "execute_sales_query", sql("SELECT 4"));
    old_era.headers.push(("MCP-Protocol-Version", "2025-03-26"));
    let mut weighted = call("a weighted Accept (rmcp's)", r, "execute_sales_query", sql("SELECT 5"));
    weighted.headers.push(("Accept", "application/json;q=0.9, text/event-stream"));
    let mut json_only = call("Accept without SSE (rmcp's 406)", r, "execute_sales_query", sql("SELECT 6"));
    json_only.headers.push(("Accept", "application/json"));
    let mut new_era = call("protocol 2026-07-28 (rmcp's)", r, "execute_sales_query", sql("SELECT 7"));
    new_era.headers.extend([
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "execute_sales_query"),
    ]);
    new_era.body["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "differential", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    cases.extend([string_id, traced, no_arguments, old_era, weighted, json_only, new_era]);
    cases
}

/// Status, content type and body (parsed when JSON), with the date tool's clock blanked.
async fn answer(http: &reqwest::Client, url: &str, case: &Case) -> (u16, String, Value) {
    let mut req = http.post(url).json(&case.body);
    if let Some(id) = &case.identity {
        req = req.header("x-rls-user-id", id);
    }
    let defaults = [("Accept", "application/json, text/event-stream"), ("MCP-Protocol-Version", "2025-11-25")];
    let unset = defaults.into_iter().filter(|(d, _)| !case.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(d)));
    for (name, value) in case.headers.iter().copied().chain(unset) {
        req = req.header(name, value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let kind = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = resp.text().await.unwrap();
    let mut body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if let Some(t) = body.pointer_mut("/result/content/0/text")
        && t.as_str().is_some_and(|t| t.starts_with("Current UTC Date/Time: "))
    {
        *t = json!("Current UTC Date/Time: <now>");
    }
    (status, kind, body)
}

#[tokio::test]
async fn the_direct_lane_answers_every_call_exactly_as_rmcp_does() {
    let db = TestDb::new().await;
    let settings =
        AppSettings { limits: zava_mcp::db::query::Limits { max_rows: 5, ..Default::default() }, ..Default::default() };
    let app: Arc<App> =
        App::start(&db.query, db.key.clone(), crate::harness::embedder().clone(), settings).await.unwrap();
    let served = |lane| {
        let app = app.clone();
        async move {
            let http = zava_mcp::http::HttpSettings { call_lane: lane, ..crate::harness::http_settings(vec![]) };
            crate::harness::serve_http_with(app, http).await
        }
    };
    let (direct, stop_direct) = served(CallLane::Direct).await;
    let (rmcp, stop_rmcp) = served(CallLane::Rmcp).await;
    let http = crate::harness::http_client();
    let mut differences = vec![];
    for case in cases() {
        let a = answer(&http, &format!("http://{direct}/mcp"), &case).await;
        let b = answer(&http, &format!("http://{rmcp}/mcp"), &case).await;
        if a != b {
            differences.push(format!("{}:\n  direct {a:?}\n  rmcp   {b:?}", case.what));
        }
        if case.what == "a count for a store" {
            assert_eq!(a.0, 200, "{a:?}");
            assert_eq!(a.2["result"]["isError"], json!(false), "{a:?}");
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    stop_direct.cancel();
    stop_rmcp.cancel();
}
