//! The embedding settings and the embed server as a person meets them, through the binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Every variable the embedding settings read, so the machine's own cannot leak in.
const EMBEDDING_VARS: &[&str] = &[
    "ZAVA_EMBEDDING_PROVIDER",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "ZAVA_EMBEDDING_MODEL",
    "ZAVA_EMBEDDING_DIMENSIONS",
    "AZURE_OPENAI_ENDPOINT",
    "EMBEDDING_MODEL_DEPLOYMENT_NAME",
    "AZURE_OPENAI_API_VERSION",
    "AZURE_OPENAI_API_KEY",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "ZAVA_EMBED_SERVER_API_KEY",
    "DATABASE_URL",
    "ZAVA_ADMIN_DATABASE_URL",
    "POSTGRES_DB_HOST",
];

fn zava(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zava-mcp"));
    cmd.arg("--data-dir").arg(dir).args(args);
    for var in EMBEDDING_VARS {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn bad_or_unreachable_embedding_providers_stop_a_command_before_any_database_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["serve", "--embedding-provider", "azure-openai"],
            "AZURE_OPENAI_ENDPOINT (--azure-openai-endpoint) is required",
        ),
        (&["embed", "--embedding-provider", "openai", "--openai-base-url", "localhost:11435"], "OPENAI_BASE_URL"),
        (&["stdio", "--embedding-timeout", "never"], "--embedding-timeout"),
        (&["serve", "--embedding-provider", "openai"], "OPENAI_API_KEY (--openai-api-key) is required"),
        (
            &[
                "db",
                "seed",
                "--embedding-provider",
                "openai",
                "--openai-base-url",
                "http://127.0.0.1:1/v1",
                "--embedding-max-retries",
                "0",
            ],
            "the embedding provider at http://127.0.0.1:1/v1 did not answer",
        ),
    ];
    for (args, needle) in cases {
        let out = zava(dir.path(), args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    assert!(!dir.path().join("pg").exists(), "no cluster may start for a command that cannot embed");
}

#[tokio::test]
async fn the_embed_server_command_serves_on_the_address_it_logs_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = zava(dir.path(), &["embed-server", "--listen", "127.0.0.1:0", "--api-key", "k-9"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let url = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("serving embeddings on http://") => {
                    let start = line.find("http://").unwrap();
                    break line[start..].split(|c: char| c.is_whitespace() || c == '"').next().unwrap().to_owned();
                }
                Some(Ok(line)) => seen.push(line),
                other => panic!("embed-server ended before it was ready ({other:?}): {}", seen.join("\n")),
            }
        };
        std::thread::spawn(move || for _ in lines {});
        url
    })
    .await
    .unwrap();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/v1/embeddings"), "{url}");
    let answer = crate::harness::http_client()
        .post(&url)
        .bearer_auth("k-9")
        .json(&json!({"model": "all-MiniLM-L6-v2", "input": ["hammer", "nails"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
}
