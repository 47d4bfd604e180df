//! The audit log and the secrets that must never be written (issue #11 §5), against the real binary: a
//! `serve --identity jwt,api-key --audit-log` with debug logging is called with development tokens, an API key,
//! a forged token and none, and with SQL the guard refuses; then every call's record is checked, and the
//! server's whole log and the audit file are searched for each secret the run used: the tokens, the API key, the
//! database password, the context key and the development signing key.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zava_mcp::data::stores::STORES;

use crate::binary::{Serve, output, zava};
use crate::harness::TestDb;

const RESOURCE: &str = "http://127.0.0.1/mcp";

fn serve(dir: &std::path::Path, db: &TestDb, keys: &std::path::Path, audit: &std::path::Path) -> Serve {
    let mut cmd = zava(dir, db);
    cmd.args(["serve", "--http", "127.0.0.1:0", "--identity", "jwt,api-key", "--resource-uri", RESOURCE]);
    cmd.arg("--api-keys-file").arg(keys).arg("--audit-log").arg(audit);
    cmd.env("ZAVA_LOG", "debug");
    Serve::start(dir, cmd)
}

async fn call(url: &str, authorization: Option<&str>, id: u64, sql: &str) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "execute_sales_query", "arguments": {"postgresql_query": sql}}});
    let mut req =
        crate::harness::mcp_post(&crate::harness::http_client(), url, &body).header("User-Agent", "audit-test/1.0");
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

fn records(path: &std::path::Path, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<Value> = std::fs::File::open(path)
            .map(|f| {
                BufReader::new(f).lines().map_while(Result::ok).map(|l| serde_json::from_str(&l).unwrap()).collect()
            })
            .unwrap_or_default();
        if lines.len() >= want || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn every_call_is_recorded_and_no_secret_reaches_a_log() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    crate::harness::make_traversable(dir.path());
    let token = |args: &[&str]| {
        let mut cmd = zava(dir.path(), &db);
        cmd.arg("token").args(args).args(["--audience", RESOURCE]);
        output(cmd).trim().to_owned()
    };
    let seattle = token(&["--rls-user-id", "seattle"]);
    let head_office = token(&["--role", "head-office", "--scope", "pii:read"]);
    let mut cmd = zava(dir.path(), &db);
    cmd.args(["api-key", "--name", "nightly-report", "--as", "redmond"]);
    let printed = output(cmd);
    let api_key = printed.lines().next().unwrap().trim().to_owned();
    let entry: String = printed.lines().skip_while(|l| !l.starts_with("[[key]]")).collect::<Vec<_>>().join("\n");
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, entry).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let server = serve(dir.path(), &db, &keys, &audit);

    let bearer = |t: &str| format!("Bearer {t}");
    let (status, body) =
        call(&server.url, Some(&bearer(&seattle)), 1, "SELECT count(*) FROM retail.orders WHERE store_id = 1").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&server.url, Some(&bearer(&seattle)), 2, "DELETE FROM retail.orders").await;
    assert_eq!((status, body["result"]["isError"].clone()), (200, json!(true)), "{body}");
    let (status, body) = call(&server.url, Some(&bearer(&api_key)), 3, "SELECT count(*) FROM retail.orders").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) =
        call(&server.url, Some(&bearer(&head_office)), 4, "SELECT email FROM retail.customers LIMIT 2").await;
    assert_eq!(status, 200);
    let mut forged = seattle.clone();
    forged.replace_range(forged.len() - 6.., "AAAAAA");
    assert_eq!(call(&server.url, Some(&bearer(&forged)), 5, "SELECT 1").await.0, 401);
    assert_eq!(call(&server.url, None, 6, "SELECT 1").await.0, 401);
    assert_eq!(call(&server.url, Some("Bearer zava_nope_nope"), 7, "SELECT 1").await.0, 401);

    // One record per call that reached a tool, in the order they finished.
    let recs = records(&audit, 4);
    assert_eq!(recs.len(), 4, "{recs:#?}");
    let by_id =
        |id: &str| recs.iter().find(|r| r["request_id"] == json!(id)).unwrap_or_else(|| panic!("{id}: {recs:#?}"));
    let first = by_id("1");
    assert_eq!(first["tool"], json!("execute_sales_query"));
    assert_eq!(first["stores"], json!(STORES[0].name));
    assert_eq!((first["outcome"].clone(), first["rows"].clone()), (json!("ok"), json!(1)));
    assert!(first["fingerprint"].as_str().is_some_and(|f| f.len() == 16), "{first}");
    assert!(first["bytes"].as_u64().unwrap() > 0 && first["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(first["client"], json!("audit-test/1.0"));
    assert!(first["principal"].as_str().is_some_and(|p| !p.is_empty() && p != "unresolved"), "{first}");
    let refused = by_id("2");
    assert_eq!(
        (refused["outcome"].clone(), refused["reason"].clone()),
        (json!("refused"), json!("guard:data_modifying"))
    );
    assert!(refused.get("fingerprint").is_none(), "refused SQL is not fingerprinted");
    let machine = by_id("3");
    assert_eq!(machine["principal"], json!("api-key:nightly-report"));
    assert_eq!(machine["stores"], json!(STORES[5].name));
    assert_eq!(by_id("4")["stores"], json!("head office"));
    // No literal of the SQL is recorded.
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert!(!audit_text.contains("store_id = 1") && !audit_text.contains("DELETE"), "{audit_text}");

    // No secret anywhere: not in the server's debug log, not in the audit log.
    let log_text = std::fs::read_to_string(&server.log).unwrap();
    assert!(log_text.contains("refused a request"), "the log saw the refusals: {log_text}");
    let dev_key = std::fs::read_to_string(dir.path().join("dev-token.key")).unwrap();
    let password = db.query.password.clone().expect("the query role has a password");
    let secret_of_key = api_key.strip_prefix("zava_").and_then(|k| k.split_once('_')).unwrap().1.to_owned();
    let emails: Vec<String> =
        db.owner_values("SELECT email FROM zava_private.customers ORDER BY customer_id LIMIT 2").await;
    for (what, secret) in [
        ("a store manager's token", seattle.as_str()),
        ("head office's token", head_office.as_str()),
        ("a forged token", forged.as_str()),
        ("the token's signature", seattle.rsplit('.').next().unwrap()),
        ("an API key", api_key.as_str()),
        ("an API key's secret", secret_of_key.as_str()),
        ("the database password", password.as_str()),
        ("the context key", db.key_hex.as_str()),
        ("the development signing key", dev_key.trim()),
        ("a customer's email", emails[0].as_str()),
    ] {
        assert!(secret.len() >= 8, "{what} is too short to search for");
        let line = log_text.lines().find(|l| l.contains(secret)).unwrap_or_default();
        assert!(line.is_empty(), "{what} is in the server's log: {}", line.chars().take(300).collect::<String>());
        assert!(!audit_text.contains(secret), "{what} is in the audit log");
    }
}
