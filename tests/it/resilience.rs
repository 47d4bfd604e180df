//! Resilience against the database going away (issue #12 §4), on the real binary and an external PostgreSQL (a
//! cluster addressed only by URL): `serve` starts while it is down (live, not ready with the reason, MCP 503 with
//! Retry-After), serves once it comes up, and when it restarts under load no call hangs and serving resumes by
//! itself (broken pooled connections are replaced).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zava_mcp::db::cluster::ManagedCluster;
use zava_mcp::db::secrets::Secrets;

use crate::binary::Serve;
use crate::harness::data_dir;

const HEAD_OFFICE: &str = "00000000-0000-0000-0000-000000000000";

fn zava(dir: &std::path::Path, admin_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zava-mcp"));
    cmd.arg("--data-dir").arg(dir).env("ZAVA_ADMIN_DATABASE_URL", admin_url).env("NO_COLOR", "1");
    for var in ["DATABASE_URL", "POSTGRES_DB_HOST", "ZAVA_CONTEXT_KEY", "ZAVA_IDENTITY", "ZAVA_METRICS"] {
        cmd.env_remove(var);
    }
    cmd
}

/// A count over the orders, as head office: `Ok(count)`, or the tool's error text.
async fn count(http: &reqwest::Client, url: &str) -> Result<i64, String> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "execute_sales_query", "arguments": {"postgresql_query": "SELECT count(*) FROM retail.orders"}}});
    let resp = crate::harness::mcp_post(http, url, &body).header("x-rls-user-id", HEAD_OFFICE).send().await;
    let r: Value = resp.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
    match r["result"]["structuredContent"]["r"][0][0].as_i64() {
        Some(n) => Ok(n),
        None => Err(r.to_string()),
    }
}

#[tokio::test]
async fn serve_starts_without_its_database_and_rides_out_a_restart() {
    // The external server, provisioned and seeded through an administrator URL, then stopped.
    let server_dir = data_dir();
    let server = ManagedCluster::new(server_dir.path()).unwrap();
    let lease = server.ensure_running().unwrap();
    let port = lease.port;
    let superuser = Secrets::load(&server.secrets_path()).unwrap().unwrap().superuser_password;
    let admin_url = format!("postgresql://postgres:{superuser}@127.0.0.1:{port}/postgres");
    let app_dir = tempfile::tempdir().unwrap();
    crate::harness::make_traversable(app_dir.path());
    let seed = zava(app_dir.path(), &admin_url).args(["db", "seed", "--customers", "300"]).output().unwrap();
    assert!(seed.status.success(), "{}", String::from_utf8_lossy(&seed.stderr));
    assert!(server.stop().unwrap());

    // Started while the database is down: live, not ready (and why), and MCP says to come back.
    let mut cmd = zava(app_dir.path(), &admin_url);
    cmd.args(["serve", "--http", "127.0.0.1:0", "--pool-timeout-ms", "2000", "--rate-limit", "off"]);
    let mut serve = Serve::spawn(app_dir.path(), cmd);
    let addr = serve.wait_for_log("/health/ready on http://");
    let http = crate::harness::http_client();
    let live = http.get(format!("http://{addr}/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = http.get(format!("http://{addr}/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["starting"], json!(true), "{ready}");
    assert!(ready["reason"].as_str().unwrap().contains("onnect"), "the reason names the connection: {ready}");
    let url = format!("http://{addr}/mcp");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let early = crate::harness::mcp_post(&http, &url, &body).header("x-rls-user-id", HEAD_OFFICE).send().await.unwrap();
    assert_eq!(early.status(), 503);
    assert_eq!(early.headers()["retry-after"], "2");
    let early: Value = early.json().await.unwrap();
    assert!(early["error"]["message"].as_str().unwrap().contains("starting"), "{early}");

    // The database comes up: serving starts by itself, on the same address, within the backoff.
    assert_eq!(server.revive().unwrap(), Some(port));
    let up = Instant::now();
    serve.url = serve.wait_for_log("serving MCP on ");
    assert_eq!(serve.url, url);
    let before = count(&http, &url).await.expect("a call once serving");
    assert!(before > 0);
    // At most one longest wait between attempts (10 s), and the start itself, on a busy machine.
    let noticed = up.elapsed();
    assert!(noticed < Duration::from_secs(25), "took {noticed:?} to notice the database: {}", serve.log_text());
    let ready = http.get(format!("http://{addr}/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // Restarted under load: while it is down calls fail promptly (no call hangs), readiness says so, and
    // afterwards the same answers come back without anyone touching zava-mcp.
    let load = {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let end = Instant::now() + Duration::from_secs(25);
            while Instant::now() < end {
                let started = Instant::now();
                let r = count(&http, &url).await;
                outcomes.push((started.elapsed(), r));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            outcomes
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.stop().unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let down = count(&http, &url).await;
    assert!(down.is_err(), "a call with the database down: {down:?}");
    let ready = http.get(format!("http://{addr}/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(server.revive().unwrap(), Some(port));
    let back = Instant::now();
    loop {
        if count(&http, &url).await == Ok(before) {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "serving did not resume after the restart: {}",
            serve.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outcomes = load.await.unwrap();
    let slowest = outcomes.iter().map(|(d, _)| *d).max().unwrap();
    assert!(slowest < Duration::from_secs(5), "a call took {slowest:?} while the database restarted: {outcomes:?}");
    let failed: Vec<usize> = outcomes.iter().enumerate().filter(|(_, (_, r))| r.is_err()).map(|(i, _)| i).collect();
    let last = &outcomes.last().unwrap().1;
    assert!(!failed.is_empty() && last.is_ok(), "calls {failed:?} of {} failed; the last: {last:?}", outcomes.len());
    assert!(serve.child.try_wait().unwrap().is_none(), "serve is still running");
    drop(serve);
    lease.release().unwrap();
    server.destroy().unwrap();
}
