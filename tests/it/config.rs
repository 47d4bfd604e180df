//! The layered configuration (issue #12 §3) on the real binary: defaults < zava-mcp.toml < environment
//! (`NAME` or `NAME_FILE`) < command line, shown by `config check` with where each value came from and secrets
//! masked; every mistake stops the start naming the setting; a file value reaches a running `serve`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

use crate::binary::{Serve, zava};
use crate::harness::TestDb;

/// The binary in `cwd` with none of the variables a developer's shell might hold for these settings.
fn bare(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zava-mcp"));
    cmd.current_dir(cwd).env("NO_COLOR", "1");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("ZAVA_") || name.starts_with("POSTGRES_") || name.starts_with("AZURE_") {
            cmd.env_remove(&*name);
        }
    }
    cmd.env_remove("DATABASE_URL").env_remove("OPENAI_API_KEY");
    cmd
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The line of `config check` for `key` in `[section]`.
fn line<'a>(report: &'a str, section: &str, key: &str) -> &'a str {
    let body = report.split(&format!("\n[{section}]\n")).nth(1).unwrap_or_else(|| panic!("no [{section}]: {report}"));
    let body = body.split("\n[").next().unwrap();
    body.lines()
        .find(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key} is not set")))
        .unwrap_or_else(|| panic!("no {section}.{key}: {report}"))
}

#[test]
fn config_check_shows_every_layer_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    // Found without --config, in the working directory.
    std::fs::write(
        dir.path().join("zava-mcp.toml"),
        "[limits]\nmax_rows = 50\nmax_result_bytes = 2048\n[database]\npool_size = 2\n\
         url = \"postgresql://zava_query:file-pw-123@db.example:5432/zava\"\n\
         [identity]\nmode = [\"jwt\"]\nresource_uri = \"https://mcp.zava.example/mcp\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("openai-key"), "sk-from-a-file-456\n").unwrap();
    let out = bare(dir.path())
        .args(["config", "check", "--pool-size", "4"])
        .env("ZAVA_MAX_RESULT_BYTES", "4096")
        .env("ZAVA_POOL_SIZE", "8")
        .env("OPENAI_API_KEY_FILE", dir.path().join("openai-key"))
        .env("POSTGRES_PASSWORD", "origin-pw-789")
        .env("ZAVA_MAX_ROW", "3")
        .env("ZAVA_JWT_ISSUER", "")
        .env("ZAVA_POOL_TIMEOUT_MS", " ")
        .output()
        .unwrap();
    let (report, log) = text(&out);
    assert!(out.status.success(), "{report}{log}");
    assert!(report.starts_with("# configuration file: zava-mcp.toml"), "{report}");
    assert!(line(&report, "limits", "max_rows").ends_with("# zava-mcp.toml"), "the file beats the default");
    let bytes = line(&report, "limits", "max_result_bytes");
    assert!(bytes.starts_with("max_result_bytes = 4096") && bytes.ends_with("# env ZAVA_MAX_RESULT_BYTES"), "{bytes}");
    let pool = line(&report, "database", "pool_size");
    assert!(pool.starts_with("pool_size = 4 ") && pool.ends_with("# command line"), "{pool}");
    // A variable set to nothing is unset, not an empty value.
    assert!(line(&report, "database", "pool_timeout_ms").ends_with("# default"));
    assert!(line(&report, "identity", "jwt_issuer").starts_with("# jwt_issuer is not set"));
    assert!(line(&report, "identity", "mode").starts_with("mode = [\"jwt\"]"));
    let url = line(&report, "database", "url");
    assert!(url.contains("postgresql://zava_query:****@db.example:5432/zava"), "{url}");
    let key = line(&report, "embedding", "openai_api_key");
    assert!(key.starts_with("openai_api_key = \"****\"") && key.contains("env OPENAI_API_KEY_FILE ("), "{key}");
    assert!(line(&report, "audit", "log").starts_with("# log is not set"));
    assert!(report.contains("POSTGRES_PASSWORD=****"), "the origin's variables are listed: {report}");
    assert!(report.contains("ZAVA_MAX_ROW is not a zava-mcp setting and is ignored (did you mean ZAVA_MAX_ROWS?)"));
    assert!(log.contains("ZAVA_MAX_ROW is not a zava-mcp setting"), "and the log says so: {log}");
    assert!(report.trim_end().ends_with("# ok: the configuration is valid for `serve`"), "{report}");
    for secret in ["file-pw-123", "sk-from-a-file-456", "origin-pw-789"] {
        assert!(!report.contains(secret) && !log.contains(secret), "{secret} shown");
    }
    // The same file given by path, from elsewhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let config = dir.path().join("zava-mcp.toml");
    let out = bare(elsewhere.path()).arg("config").arg("check").env("ZAVA_CONFIG", &config).output().unwrap();
    let (report, log) = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(line(&report, "limits", "max_rows").starts_with("max_rows = 50"), "{report}");
}

#[test]
fn a_mistake_in_any_layer_stops_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let written = std::cell::Cell::new(0);
    let file = |body: &str| {
        written.set(written.get() + 1);
        let path = dir.path().join(format!("{}.toml", written.get()));
        std::fs::write(&path, body).unwrap();
        path
    };
    std::fs::write(dir.path().join("zero"), "0\n").unwrap();
    std::fs::write(dir.path().join("ten"), "10\n").unwrap();
    let cases: Vec<(Command, &str)> = vec![
        (
            {
                let mut c = bare(dir.path());
                c.arg("--config").arg(file("[limits]\nmax_row = 5\n")).arg("serve");
                c
            },
            "unknown key `max_row` in [limits] (did you mean `max_rows`?)",
        ),
        (
            {
                let mut c = bare(dir.path());
                c.arg("--config").arg(file("[limit]\nmax_rows = 5\n")).args(["db", "status"]);
                c
            },
            "unknown section [limit] (did you mean `limits`?)",
        ),
        (
            {
                let mut c = bare(dir.path());
                c.arg("--config").arg(file("[database]\npool_size = 0\n")).args(["config", "check"]);
                c
            },
            "database.pool_size = \"0\": invalid value '0' for '--pool-size <POOL_SIZE>': 0 is not in 1..=1000",
        ),
        (
            {
                let mut c = bare(dir.path());
                c.arg("--config").arg(file("[identity]\nmode = \"jwtt\"\n")).args(["config", "check"]);
                c
            },
            "[possible values: header, jwt, api-key]",
        ),
        (
            {
                let mut c = bare(dir.path());
                c.arg("--config").arg(file("[audit]\nhash_subjects = \"yes\"\n")).args(["config", "check"]);
                c
            },
            "audit.hash_subjects is a switch: write true or false",
        ),
        (
            {
                let mut c = bare(dir.path());
                c.args(["--config", "missing.toml", "serve"]);
                c
            },
            "configuration file missing.toml: cannot read it",
        ),
        (
            {
                let mut c = bare(dir.path());
                c.args(["config", "check"]).env("ZAVA_MAX_ROWS", "0");
                c
            },
            "note: the value came from the environment variable ZAVA_MAX_ROWS",
        ),
        (
            {
                let mut c = bare(dir.path());
                c.args(["config", "check"]).env("ZAVA_MAX_ROWS_FILE", dir.path().join("zero"));
                c
            },
            "note: the value came from env ZAVA_MAX_ROWS_FILE (",
        ),
        (
            {
                let mut c = bare(dir.path());
                c.args(["config", "check"])
                    .env("ZAVA_MAX_ROWS", "10")
                    .env("ZAVA_MAX_ROWS_FILE", dir.path().join("ten"));
                c
            },
            "both ZAVA_MAX_ROWS and ZAVA_MAX_ROWS_FILE are set",
        ),
        (
            {
                let mut c = bare(dir.path());
                c.args(["config", "check", "--identity", "jwt", "--http", "0.0.0.0:8000"]);
                c
            },
            "--identity jwt on 0.0.0.0:8000 needs --resource-uri",
        ),
        (
            {
                let mut c = bare(dir.path());
                c.args(["config", "check", "--tenant-connections", "20", "--pool-size", "4"]);
                c
            },
            "--tenant-connections 20 is more than the pool's 4 connections",
        ),
    ];
    for (mut cmd, needle) in cases {
        let shown = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
        let out = cmd.output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{shown} succeeded: {stdout}");
        assert!(stderr.contains(needle), "{shown}: wanted {needle:?} in {stderr}");
    }
    // None of these started anything.
    assert!(!dir.path().join(".zava").exists());
}

#[tokio::test]
async fn a_value_in_the_file_reaches_a_running_serve() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    crate::harness::make_traversable(dir.path());
    let config = dir.path().join("zava-mcp.toml");
    std::fs::write(&config, "[limits]\nmax_rows = 3\n[http]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let mut cmd = zava(dir.path(), &db);
    cmd.env_remove("ZAVA_MAX_ROWS").env_remove("ZAVA_HTTP").arg("--config").arg(&config).arg("serve");
    let serve = Serve::start(dir.path(), cmd);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "execute_sales_query",
        "arguments": {"postgresql_query": "SELECT g FROM generate_series(1, 10) g"}}});
    let resp = crate::harness::mcp_post(&crate::harness::http_client(), &serve.url, &body)
        .header("x-rls-user-id", "00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap();
    let r: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(r["result"]["structuredContent"]["r"], json!([[1], [2], [3]]), "{r}");
}
