//! `/metrics` (issue #12 §1) on the real binary: the series a call leaves, on a listener of its own
//! (`--metrics ADDR`, and then not beside `/mcp`), read back through a real Prometheus that scraped it; labels
//! stay bounded (stores and head office, never a subject).

mod prometheus;

use serde_json::{Value, json};
use zava_mcp::data::stores::STORES;

use crate::binary::{Serve, zava};
use crate::harness::TestDb;

async fn call(url: &str, identity: &str, name: &str, arguments: Value) -> Value {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
    let resp = crate::harness::mcp_post(&crate::harness::http_client(), url, &body)
        .header("x-rls-user-id", identity)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn sql(q: &str) -> Value {
    json!({"postgresql_query": q})
}

/// The value of the sample `series` (name and labels exactly as rendered) in a scrape.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn prometheus_scrapes_per_tool_red_metrics_with_bounded_labels() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    crate::harness::make_traversable(dir.path());
    let mut cmd = zava(dir.path(), &db);
    cmd.args(["serve", "--http", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--max-rows", "5"]);
    // A successful call's own line is at debug.
    cmd.env("ZAVA_LOG", "info,zava_mcp::mcp=debug");
    let mut server = Serve::start(dir.path(), cmd);
    let metrics_at = server.wait_for_log("serving /metrics and the health probes on http://");
    let seattle = STORES.iter().find(|s| s.name.ends_with("Seattle")).unwrap().manager.to_string();
    let head_office = uuid::Uuid::nil().to_string();

    for _ in 0..3 {
        let r = call(&server.url, &seattle, "execute_sales_query", sql("SELECT order_id FROM retail.orders")).await;
        assert_eq!(r["result"]["isError"], json!(false), "{r}");
    }
    let r = call(&server.url, &seattle, "execute_sales_query", sql("DELETE FROM retail.orders")).await;
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    let r = call(&server.url, &head_office, "execute_sales_query", sql("SELECT 1/0")).await;
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    let r = call(&server.url, "not-a-uuid", "execute_sales_query", sql("SELECT 1")).await;
    assert_eq!(r["result"]["isError"], json!(true), "{r}");
    let tables = json!({"table_names": ["retail.orders"]});
    for _ in 0..2 {
        call(&server.url, &head_office, "get_multiple_table_schemas", tables.clone()).await;
    }

    // A weighted Accept is rmcp's to negotiate: that call goes to rmcp, the eight above were answered directly.
    let date = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_current_utc_date"}});
    let resp = (crate::harness::http_client().post(&server.url).json(&date))
        .header("Accept", "application/json;q=0.9, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let http = crate::harness::http_client();
    let mcp_origin = server.url.strip_suffix("/mcp").unwrap().to_owned();
    let on_mcp = http.get(format!("{mcp_origin}/metrics")).send().await.unwrap();
    assert_eq!(on_mcp.status(), 404, "with --metrics ADDR the series are not on the MCP listener");
    let scrape = http.get(format!("http://{metrics_at}/metrics")).send().await.unwrap();
    assert!(scrape.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = scrape.text().await.unwrap();
    let q = "zava_tool_calls_total{tool=\"execute_sales_query\"";
    assert_eq!(sample(&text, &format!("{q},tenant=\"seattle\",outcome=\"ok\"}}")), Some(3.0), "{text}");
    assert_eq!(sample(&text, &format!("{q},tenant=\"seattle\",outcome=\"refused\"}}")), Some(1.0), "{text}");
    assert_eq!(sample(&text, &format!("{q},tenant=\"head_office\",outcome=\"failed\"}}")), Some(1.0), "{text}");
    assert_eq!(sample(&text, &format!("{q},tenant=\"unresolved\",outcome=\"refused\"}}")), Some(1.0), "{text}");
    let refusal = "zava_tool_refusals_total{tool=\"execute_sales_query\",reason=\"guard:data_modifying\"}";
    assert_eq!(sample(&text, refusal), Some(1.0), "{text}");
    let failure = "zava_tool_failures_total{tool=\"execute_sales_query\",reason=\"query:sqlstate_22012\"}";
    assert_eq!(sample(&text, failure), Some(1.0), "{text}");
    let cut = "zava_result_truncations_total{tool=\"execute_sales_query\",cap=\"rows\"}";
    assert_eq!(sample(&text, cut), Some(3.0), "{text}");
    assert_eq!(sample(&text, "zava_result_rows_total{tool=\"execute_sales_query\"}"), Some(15.0), "{text}");
    assert_eq!(sample(&text, "zava_tool_call_lanes_total{lane=\"direct\"}"), Some(8.0), "{text}");
    assert_eq!(sample(&text, "zava_tool_call_lanes_total{lane=\"rmcp\"}"), Some(1.0), "{text}");
    let schema = |r: &str| sample(&text, &format!("zava_cache_requests_total{{cache=\"schema\",result=\"{r}\"}}"));
    assert_eq!((schema("miss"), schema("hit")), (Some(1.0), Some(1.0)), "{text}");
    let ok_bucket = "zava_tool_call_duration_seconds_bucket{tool=\"execute_sales_query\",outcome=\"ok\",le=\"+Inf\"}";
    assert_eq!(sample(&text, ok_bucket), Some(3.0), "{text}");
    assert!(text.contains("le=\"0.005\""), "real latency buckets: {text}");
    assert_eq!(sample(&text, "zava_pool_max_connections"), Some(16.0), "{text}");
    assert_eq!(sample(&text, "zava_tool_calls_in_flight"), Some(0.0), "{text}");
    // Every tenant label is a store's short name, head office, several_stores or unresolved: never an identity.
    let allowed = ["seattle", "bellevue", "tacoma", "spokane", "everett", "redmond", "kirkland", "online"];
    for tenant in text.split("tenant=\"").skip(1).map(|r| r.split('"').next().unwrap()) {
        let bounded = allowed.contains(&tenant) || ["head_office", "several_stores", "unresolved"].contains(&tenant);
        assert!(bounded, "tenant label {tenant:?} in {text}");
    }
    assert!(!text.contains(&seattle) && !text.contains("not-a-uuid"), "{text}");

    // Not on a terminal, the log is JSON lines, and a tool call's lines carry its request id, tool and tenant.
    let lines: Vec<Value> =
        server.log_text().lines().map(|l| serde_json::from_str(l).expect("a JSON log line")).collect();
    let query = lines.iter().find(|l| l["message"] == "query").expect("a query line");
    assert_eq!(query["span"]["tenant"], "seattle", "{query}");
    assert_eq!(query["span"]["tool"], "execute_sales_query", "{query}");
    assert_eq!(query["span"]["request_id"], "1", "{query}");

    // A real Prometheus scrapes the listener and reads the series back through its query API.
    let prometheus = prometheus::Prometheus::scraping(&metrics_at).await;
    let ok = "sum(zava_tool_calls_total{job=\"zava-mcp\",tool=\"execute_sales_query\",outcome=\"ok\"})";
    assert_eq!(prometheus.value_when(ok, |v| v == 3.0).await, Some(3.0), "{}", server.log_text());
    let quantile =
        "histogram_quantile(0.5, sum by (le) (zava_tool_call_duration_seconds_bucket{tool=\"execute_sales_query\"}))";
    let median = prometheus.value_when(quantile, f64::is_finite).await.expect("a median latency");
    assert!(median > 0.0 && median < 30.0, "median {median}");
    assert_eq!(prometheus.value_when("up{job=\"zava-mcp\"}", |v| v == 1.0).await, Some(1.0));

    // Every query of the Grafana dashboard in the repo is valid PromQL over these series, and the call panels
    // show data.
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string("deploy/grafana/zava-mcp.json").unwrap()).unwrap();
    // Names as the server declares them (some appear in a scrape only once something happened: a 429, an open
    // circuit, a failed token).
    let source = std::fs::read_to_string("src/telemetry/series.rs").unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in
                expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("zava_"))
            {
                let base = name.trim_end_matches("_bucket");
                let declared = source.contains(&format!("\"{base}\""));
                assert!(declared, "{} uses {name}, which the server does not export", panel["title"]);
            }
            let expr = expr.replace("$job", "zava-mcp").replace("$instance", ".*").replace("$__rate_interval", "30s");
            let result = prometheus.evaluate(&expr).await;
            assert!(result.is_ok(), "{}: {expr}: {result:?}", panel["title"]);
        }
    }
    for _ in 0..3 {
        call(&server.url, &seattle, "execute_sales_query", sql("SELECT 1")).await;
    }
    let rate = "sum(rate(zava_tool_calls_total{job=~\"zava-mcp\"}[30s]))";
    assert!(prometheus.value_when(rate, |v| v > 0.0).await.is_some_and(|v| v > 0.0), "calls/s shows data");
}
