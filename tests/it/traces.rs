//! Traces (issue #12 §2) from the real binary to a local OTLP receiver, over HTTP/protobuf and gRPC: a tool call
//! is a server span continuing the caller's W3C trace (from the HTTP headers or the request's `_meta`), with the
//! guard, pool-wait, database and embedding spans under it; the database span follows the OpenTelemetry
//! conventions and never carries the SQL's literals; the log lines inside the call carry its trace id.

mod collector;

use serde_json::{Value, json};

use crate::binary::{Serve, zava};
use crate::harness::TestDb;
use collector::{Collector, Received};

const HEAD_OFFICE: &str = "00000000-0000-0000-0000-000000000000";

async fn call(url: &str, headers: &[(&str, &str)], name: &str, arguments: Value, meta: Option<Value>) -> Value {
    let mut params = json!({"name": name, "arguments": arguments});
    if let Some(meta) = meta {
        params["_meta"] = meta;
    }
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
    let mut req =
        crate::harness::mcp_post(&crate::harness::http_client(), url, &body).header("x-rls-user-id", HEAD_OFFICE);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(r["result"]["isError"], json!(false), "{r}");
    r
}

fn serve(db: &TestDb, dir: &std::path::Path, protocol: &str, endpoint: &str) -> Serve {
    crate::harness::make_traversable(dir);
    let mut cmd = zava(dir, db);
    cmd.args(["serve", "--http", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .env("ZAVA_LOG_FORMAT", "json")
        // A successful call's own line is at debug.
        .env("ZAVA_LOG", "info,zava_mcp::mcp=debug");
    Serve::start(dir, cmd)
}

/// The span named `name` in trace `trace`.
fn named<'a>(spans: &'a [Received], trace: &str, name: &str) -> &'a Received {
    spans
        .iter()
        .find(|s| s.trace_id() == trace && s.span.name == name)
        .unwrap_or_else(|| panic!("no span {name} in trace {trace}: {spans:#?}"))
}

#[tokio::test]
async fn tool_calls_are_traced_over_http_protobuf_continuing_the_callers_trace() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::default();
    let endpoint = collector.http().await;
    let server = serve(&db, dir.path(), "http/protobuf", &endpoint);
    assert!(server.log_text().contains("exporting traces over OTLP"), "{}", server.log_text());

    // A trace started by the caller, sent as an HTTP header.
    let (trace_a, parent_a) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let traceparent = format!("00-{trace_a}-{parent_a}-01");
    let sql = "SELECT s.store_name, count(*) FROM retail.orders o JOIN retail.stores s USING (store_id) \
               WHERE o.order_id <> 987654321 GROUP BY 1";
    call(&server.url, &[("traceparent", &traceparent)], "execute_sales_query", json!({"postgresql_query": sql}), None)
        .await;
    // Another, in the request's `_meta` (SEP-414), which wins over a header.
    let (trace_b, parent_b) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let meta = json!({"traceparent": format!("00-{trace_b}-{parent_b}-01")});
    let other = "00-11111111111111111111111111111111-2222222222222222-01";
    let search = json!({"query_description": "cordless drill", "max_rows": 3});
    call(&server.url, &[("traceparent", other)], "semantic_search_products", search, Some(meta)).await;

    let spans = collector
        .wait_for("both calls' spans", |s| {
            // A parent ends after its children, so it may come in a later export batch: wait for every span
            // the assertions below read, not only the first ones to end.
            let has = |trace: &str, name: &str| s.iter().any(|x| x.trace_id() == trace && x.span.name == name);
            ["tools/call execute_sales_query", "guard", "pool.wait", "SELECT retail.orders retail.stores"]
                .iter()
                .all(|n| has(trace_a, n))
                && ["tools/call semantic_search_products", "embedding", "SELECT retail.products"]
                    .iter()
                    .all(|n| has(trace_b, n))
        })
        .await;
    let root = named(&spans, trace_a, "tools/call execute_sales_query");
    assert_eq!(root.parent_id(), parent_a, "the call continues the caller's span");
    assert_eq!(root.span.kind, 2, "a server span");
    assert_eq!(root.service, "zava-mcp");
    assert_eq!(root.attr("tool").as_deref(), Some("execute_sales_query"));
    assert_eq!(root.attr("tenant").as_deref(), Some("head_office"));
    for child in ["guard", "pool.wait"] {
        assert_eq!(named(&spans, trace_a, child).parent_id(), root.span_id(), "{child} under the call");
    }
    let db_span = named(&spans, trace_a, "SELECT retail.orders retail.stores");
    assert_eq!(db_span.parent_id(), root.span_id());
    assert_eq!(db_span.span.kind, 3, "a client span");
    assert_eq!(db_span.attr("db.system").as_deref(), Some("postgresql"));
    assert_eq!(db_span.attr("db.system.name").as_deref(), Some("postgresql"));
    assert_eq!(db_span.attr("db.query.summary").as_deref(), Some("SELECT retail.orders retail.stores"));
    assert_eq!(db_span.attr("db.response.returned_rows").as_deref(), Some("8"));
    assert!(db_span.attr("db.query.fingerprint").is_some_and(|f| f.len() == 16), "{db_span:?}");
    for span in spans.iter().filter(|s| s.trace_id() == trace_a) {
        let text = format!("{:?}", span.span);
        assert!(!text.contains("987654321") && !text.contains("store_name"), "SQL text in a span: {text}");
    }

    let search_root = named(&spans, trace_b, "tools/call semantic_search_products");
    assert_eq!(search_root.parent_id(), parent_b, "`_meta` wins over the header");
    assert_eq!(named(&spans, trace_b, "embedding").parent_id(), search_root.span_id());
    assert_eq!(named(&spans, trace_b, "SELECT retail.products").parent_id(), search_root.span_id());
    assert!(!spans.iter().any(|s| s.trace_id() == "11111111111111111111111111111111"));

    // Every log line of the first call carries its trace id (and the request id and tenant).
    let log = server.log_text();
    let query_line: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "query")
        .unwrap_or_else(|| panic!("no query line: {log}"));
    assert_eq!(query_line["span"]["trace_id"], json!(trace_a), "{query_line}");
    assert_eq!(query_line["span"]["request_id"], json!("7"), "{query_line}");
}

#[tokio::test]
async fn a_call_without_trace_context_starts_a_trace_exported_over_grpc() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::default();
    let endpoint = collector.grpc().await;
    let server = serve(&db, dir.path(), "grpc", &endpoint);
    call(
        &server.url,
        &[],
        "execute_sales_query",
        json!({"postgresql_query": "SELECT count(*) FROM retail.stores"}),
        None,
    )
    .await;
    let spans = collector
        .wait_for("the call's spans", |s| {
            ["SELECT retail.stores", "tools/call execute_sales_query"]
                .iter()
                .all(|n| s.iter().any(|x| x.span.name == *n))
        })
        .await;
    let root = spans.iter().find(|s| s.span.name == "tools/call execute_sales_query").expect("the call span");
    assert!(root.span.parent_span_id.is_empty(), "a new trace's root: {root:?}");
    assert_eq!(root.service, "zava-mcp");
    let db_span = spans.iter().find(|s| s.span.name == "SELECT retail.stores").unwrap();
    assert_eq!((db_span.trace_id(), db_span.parent_id()), (root.trace_id(), root.span_id()));
    // The log line names the new trace too.
    let log = server.log_text();
    assert!(log.contains(&format!("\"trace_id\":\"{}\"", root.trace_id())), "{log}");
}
