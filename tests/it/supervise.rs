//! The managed cluster under `serve` is supervised (issue #12 §4): its postmaster killed with SIGKILL, zava-mcp
//! starts it again (crash recovery) and serves within 10 s, with no person involved, saying so in its log.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zava_mcp::db::cluster::{ClusterState, ManagedCluster};

use crate::binary::{Serve, managed, output};
use crate::harness::data_dir;

async fn count(url: &str) -> Option<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "execute_sales_query",
        "arguments": {"postgresql_query": "SELECT count(*) FROM retail.orders"}}});
    let resp = crate::harness::mcp_post(&crate::harness::http_client(), url, &body)
        .header("x-rls-user-id", uuid::Uuid::nil().to_string())
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let body: Value = resp.json().await.ok()?;
    (body["result"]["isError"] == json!(false)).then(|| body["result"]["structuredContent"]["r"].clone())
}

#[tokio::test]
async fn a_killed_postmaster_is_restarted_and_serving_resumes_within_ten_seconds() {
    let dir = data_dir();
    output({
        let mut c = managed(dir.path());
        c.args(["db", "seed", "--customers", "200"]);
        c
    });
    let mut cmd = managed(dir.path());
    cmd.args(["serve", "--http", "127.0.0.1:0"]);
    let server = Serve::start(dir.path(), cmd);
    let before = count(&server.url).await.expect("serving before the kill");

    let cluster = ManagedCluster::new(dir.path()).unwrap();
    let ClusterState::Running { pid, .. } = cluster.state() else { panic!("the cluster is not running") };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    let killed = Instant::now();
    loop {
        if let Some(after) = count(&server.url).await {
            assert_eq!(after, before, "the same data after crash recovery");
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(10), "not serving 10 s after the kill: {}", server.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The log says what happened (its last line may trail the first answer by a moment).
    let said = |log: &str| log.contains("starting it again") && log.contains("serving again");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !said(&server.log_text()) {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ClusterState::Running { pid: revived, .. } = cluster.state() else { panic!("not running after revival") };
    assert_ne!(revived, pid);
}
