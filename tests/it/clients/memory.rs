//! The real server process's memory under the largest results one can ask for: a gigabyte value, rows just under
//! the wire bound, rows just under the byte cap, all at once from many callers. The peak resident set is read
//! from `/proc` (reset to the current value first, so it covers this attack only) and must stay within a bound
//! that a server buffering whole values would blow through (a 1 GB value alone took it past 3 GB). It starts once
//! the server has embedded its catalog, so that work is not counted.

use super::*;

/// How much the server may grow above its resident set at the start of the attack.
const MAX_GROWTH_BYTES: u64 = 256 << 20;

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's /proc status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in status"));
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_largest_results_do_not_grow_the_server_beyond_a_bound() {
    let s = server();
    let pid = server_pid();
    // The catalog's embedding, in the background after the start, takes hundreds of MiB in a debug build: not
    // this attack's.
    wait_for_log("embedded the product catalog", Duration::from_secs(600));
    let http = crate::harness::http_client();
    let call = |sql: String| {
        let http = http.clone();
        let url = s.url.clone();
        async move {
            let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "execute_sales_query", "arguments": {"postgresql_query": sql}}});
            let resp = http
                .post(&url)
                .header("Accept", "application/json, text/event-stream")
                .header("MCP-Protocol-Version", "2025-11-25")
                .header("x-rls-user-id", HEAD_OFFICE)
                .json(&body)
                .send()
                .await
                .expect("the server answers");
            let v: Value = resp.json().await.expect("a JSON-RPC answer");
            v["result"].clone()
        }
    };
    // Warm the pool so that opening connections is not counted.
    futures_util::future::join_all((0..16).map(|_| call("SELECT 1".into()))).await;
    // Reset the peak to the current resident set (`5` in clear_refs), so VmHWM covers only what follows.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak resident set");
    let before = status_kib(pid, "VmRSS:") * 1024;
    let attack = [
        "SELECT repeat('x', 1000000000)",
        "SELECT repeat(md5(g::text), 32000) FROM generate_series(1, 400) g",
        "SELECT repeat('x', 200000) FROM generate_series(1, 2000)",
        "SELECT string_agg(repeat('y', 1000), '') FROM generate_series(1, 100000)",
    ];
    let calls = (0..32).map(|i| call(attack[i % attack.len()].to_owned()));
    let results = futures_util::future::join_all(calls).await;
    let peak = status_kib(pid, "VmHWM:") * 1024;
    for (i, r) in results.iter().enumerate() {
        let sql = attack[i % attack.len()];
        let text = r.to_string();
        assert!(
            r["isError"] == serde_json::json!(true) || r["structuredContent"]["truncated"] == serde_json::json!(true),
            "`{sql}` was neither refused nor truncated: {}",
            &text[..text.len().min(300)]
        );
    }
    // The gigabyte value is refused with the limit it broke, not with a dropped connection (calls that found
    // every connection busy answer so instead).
    let huge: Vec<&str> =
        results.iter().step_by(attack.len()).filter_map(|r| r["structuredContent"]["err"].as_str()).collect();
    assert!(
        huge.iter().any(|e| e.contains("larger than the server accepts") && e.contains("limit is")),
        "{huge:?}\n{}",
        server_log()
    );
    let growth = peak.saturating_sub(before);
    println!("server resident set: {} MiB before, peak {} MiB during 32 calls", before >> 20, peak >> 20);
    assert!(
        growth < MAX_GROWTH_BYTES,
        "the server grew by {} MiB (bound {} MiB)",
        growth >> 20,
        MAX_GROWTH_BYTES >> 20
    );
    // And it still serves.
    let ok = call("SELECT count(*) FROM retail.stores".into()).await;
    assert_eq!(ok["structuredContent"]["r"][0][0], serde_json::json!(8), "{ok}");
}
