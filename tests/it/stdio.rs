//! `zava-mcp stdio` driven with raw JSON-RPC lines, against a test database given by URL (the external-server
//! mode): the identity comes from the environment, and `notifications/cancelled` stops the PostgreSQL query.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};
use zava_mcp::data::stores::STORES;

use crate::harness::{TestDb, scalar};

struct StdioServer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    _data_dir: tempfile::TempDir,
}

impl Drop for StdioServer {
    fn drop(&mut self) {
        crate::binary::terminate(&mut self.child);
    }
}

impl StdioServer {
    fn start(db: &TestDb, identity: &str) -> StdioServer {
        Self::start_with(db, identity, &[])
    }

    fn start_with(db: &TestDb, identity: &str, env: &[(&str, &str)]) -> StdioServer {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_zava-mcp"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("stdio")
            .env("DATABASE_URL", db.query.url())
            .env("ZAVA_CONTEXT_KEY", &db.key_hex)
            .env("ZAVA_RLS_USER_ID", identity)
            .env_remove("ZAVA_ADMIN_DATABASE_URL")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut s = StdioServer { child, stdin, lines, _data_dir: dir };
        s.send(&json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
            "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}));
        assert_eq!(s.response(0)["result"]["serverInfo"]["name"], json!("zava-mcp"));
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    fn send(&mut self, msg: &Value) {
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The response to request `id` (other messages are skipped), within 30 s.
    fn response(&mut self, id: u64) -> Value {
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(30)).expect("no response from zava-mcp stdio");
            let v: Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("stdout carried a non-JSON line: {line}"));
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    fn query(&mut self, id: u64, sql: &str) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "execute_sales_query", "arguments": {"postgresql_query": sql}}}));
    }
}

#[tokio::test]
async fn stdio_serves_the_environment_identity_and_cancels_on_request() {
    let db = TestDb::new().await;
    let mut s = StdioServer::start(&db, &STORES[7].manager.to_string());
    s.query(1, "SELECT DISTINCT store_id FROM retail.orders");
    assert_eq!(s.response(1)["result"]["structuredContent"]["r"], json!([[8]]));

    s.query(2, "SELECT count(*) AS stdio_cancel_marker FROM retail.order_items a, retail.order_items b");
    let running = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
                   AND query LIKE '%stdio_cancel_marker%' AND pid <> pg_backend_pid()";
    let watch = db.superuser().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while scalar::<i64>(&watch, running).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the slow query never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2, "reason": "test"}}),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while scalar::<i64>(&watch, running).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the query kept running after notifications/cancelled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The server is still healthy and serving afterwards.
    s.query(3, "SELECT count(*) FROM retail.stores");
    assert_eq!(s.response(3)["result"]["structuredContent"]["r"], json!([[8]]));
}

#[tokio::test]
async fn over_stdio_a_caller_past_its_rate_gets_a_tool_error() {
    let db = TestDb::new().await;
    let seattle = zava_mcp::data::stores::STORES[0].manager.to_string();
    let mut server = StdioServer::start_with(&db, &seattle, &[("ZAVA_RATE_LIMIT", "2/min")]);
    for id in 1..=2 {
        server.query(id, "SELECT 1");
        assert_eq!(server.response(id)["result"]["isError"], json!(false));
    }
    server.query(3, "SELECT 1");
    let refused = server.response(3);
    assert_eq!(refused["result"]["isError"], json!(true), "{refused}");
    let text = refused["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("Too many calls") && text.contains("2/min"), "{text}");
}
