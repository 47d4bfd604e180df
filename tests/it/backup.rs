//! Backups (issue #12 §5) on a managed cluster of their own, with the real binary: `db backup` writes one
//! verified, private file with its checksum; the file restores into a scratch database; `db restore` while
//! `serve` runs brings the earlier data back exactly (row digests) after a `db seed` replaced it, and the server
//! serves the restored rows, search included; a damaged file or a missing `--yes` is refused; `serve
//! --backup-every` keeps only the newest backups.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zava_mcp::db::cluster::{ClusterState, ManagedCluster};
use zava_mcp::db::secrets::Secrets;

use crate::binary::{Serve, managed, output};
use crate::harness::data_dir;

/// The superuser of the cluster in `dir`, on database `db`.
async fn superuser(dir: &std::path::Path, db: &str) -> tokio_postgres::Client {
    let cluster = ManagedCluster::new(dir).unwrap();
    let ClusterState::Running { port, .. } = cluster.state() else { panic!("the cluster is not running") };
    let password = Secrets::load(&cluster.secrets_path()).unwrap().unwrap().superuser_password;
    let url = format!("postgresql://postgres:{password}@127.0.0.1:{port}/{db}");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// A digest of every row of the tenant tables and the catalog, in a fixed order.
async fn digest(client: &tokio_postgres::Client) -> String {
    let mut parts = Vec::new();
    for (table, key) in [
        ("zava_private.customers", "customer_id"),
        ("retail.orders", "order_id"),
        ("retail.order_items", "order_item_id"),
        ("retail.inventory", "store_id, product_id"),
        ("retail.products", "product_id"),
    ] {
        let sql =
            format!("SELECT count(*)::text || ':' || md5(string_agg(t::text, '|' ORDER BY {key})) FROM {table} t");
        let row = client.query_one(&sql, &[]).await.unwrap();
        parts.push(format!("{table}={}", row.get::<_, String>(0)));
    }
    parts.join(" ")
}

fn run_zava(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = managed(dir);
    cmd.args(args);
    cmd.output().unwrap()
}

async fn call(url: &str, name: &str, arguments: Value) -> Value {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
    let resp = crate::harness::mcp_post(&crate::harness::http_client(), url, &body)
        .header("x-rls-user-id", uuid::Uuid::nil().to_string())
        .send()
        .await
        .unwrap();
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_backup_restores_the_earlier_data_exactly_while_serve_keeps_serving() {
    let dir = data_dir();
    let seed = |customers: &str, seed: &str| {
        let mut cmd = managed(dir.path());
        cmd.args(["db", "seed", "--customers", customers, "--seed", seed]);
        output(cmd);
    };
    seed("300", "42");
    // Keep the cluster up between commands (each command's lease would otherwise stop it).
    output({
        let mut c = managed(dir.path());
        c.args(["db", "start"]);
        c
    });
    let before = digest(&superuser(dir.path(), "zava").await).await;

    let mut cmd = managed(dir.path());
    cmd.args(["db", "backup"]);
    let file = std::path::PathBuf::from(output(cmd).trim());
    assert_eq!(file.parent().unwrap(), dir.path().join("backups"));
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(file.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    let bytes = std::fs::read(&file).unwrap();
    let sums = std::fs::read_to_string(format!("{}.sha256", file.display())).unwrap();
    let name = file.file_name().unwrap().to_str().unwrap();
    assert_eq!(sums, format!("{}  {name}\n", hex::encode(Sha256::digest(&bytes))));

    // The file restores into a scratch database with the same rows.
    let admin = superuser(dir.path(), "postgres").await;
    admin.batch_execute("CREATE DATABASE scratch").await.unwrap();
    let cluster = ManagedCluster::new(dir.path()).unwrap();
    let ClusterState::Running { port, .. } = cluster.state() else { panic!() };
    let password = Secrets::load(&cluster.secrets_path()).unwrap().unwrap().superuser_password;
    let restored = std::process::Command::new("/usr/lib/postgresql/15/bin/pg_restore")
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--username", "postgres", "--dbname", "scratch"])
        .arg("--no-owner")
        .arg(&file)
        .env("PGPASSWORD", &password)
        .output()
        .unwrap();
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    assert_eq!(digest(&superuser(dir.path(), "scratch").await).await, before);

    // Other data replaces it; a server starts on it, with scheduled backups into a directory of their own.
    seed("200", "7");
    let replaced = digest(&superuser(dir.path(), "zava").await).await;
    assert_ne!(replaced, before);
    let scheduled = dir.path().join("scheduled");
    let mut cmd = managed(dir.path());
    cmd.args(["serve", "--http", "127.0.0.1:0", "--backup-every", "2s", "--backup-keep", "2", "--backup-dir"]);
    cmd.arg(&scheduled);
    let server = Serve::start(dir.path(), cmd);
    let count = "SELECT count(*) FROM retail.customers";
    let r = call(&server.url, "execute_sales_query", json!({"postgresql_query": count})).await;
    assert_eq!(r["result"]["structuredContent"]["r"], json!([[200]]), "{r}");

    // Refused: no --yes; a damaged copy (its checksum no longer matches).
    let out = run_zava(dir.path(), &["db", "restore", file.to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--yes"));
    let damaged = dir.path().join("damaged.dump");
    let mut broken = bytes.clone();
    let middle = broken.len() / 2;
    broken[middle] ^= 0xff;
    std::fs::write(&damaged, &broken).unwrap();
    std::fs::write(format!("{}.sha256", damaged.display()), &sums).unwrap();
    let out = run_zava(dir.path(), &["db", "restore", damaged.to_str().unwrap(), "--yes"]);
    assert!(!out.status.success(), "a damaged backup was restored");
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(digest(&superuser(dir.path(), "zava").await).await, replaced, "a refused restore changed nothing");

    // The restore, while serve runs: the earlier data exactly, and the server serves it.
    let out = run_zava(dir.path(), &["db", "restore", file.to_str().unwrap(), "--yes"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(digest(&superuser(dir.path(), "zava").await).await, before);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = call(&server.url, "execute_sales_query", json!({"postgresql_query": count})).await;
        if r["result"]["structuredContent"]["r"] == json!([[300]]) {
            break;
        }
        assert!(Instant::now() < deadline, "serve did not serve the restored data: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let search = json!({"query_description": "cordless drill", "max_rows": 3});
    let r = call(&server.url, "semantic_search_products", search).await;
    assert_eq!(r["result"]["isError"], json!(false), "search after a restore: {r}");

    // Scheduled backups: written, verified, and only the newest two kept.
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.log_text().matches("scheduled backup written and verified").count() < 3 {
        assert!(Instant::now() < deadline, "no scheduled backups: {}", server.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dumps = std::fs::read_dir(&scheduled)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_str().unwrap().ends_with(".dump"))
        .count();
    assert_eq!(dumps, 2, "{}", server.log_text());
    drop(server);
    output({
        let mut c = managed(dir.path());
        c.args(["db", "stop", "--force"]);
        c
    });
}
