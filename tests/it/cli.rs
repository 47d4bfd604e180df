//! The binary as a person uses it: bad input gets a clear error, and an external server (here, a cluster we
//! start ourselves and address only by URL) is provisioned and served like the embedded default.

use std::process::{Command, Output};

use zava_mcp::db::cluster::ManagedCluster;
use zava_mcp::db::secrets::Secrets;

use crate::harness::data_dir;

fn zava(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zava-mcp"));
    cmd.arg("--data-dir").arg(dir).args(args);
    for var in ["DATABASE_URL", "ZAVA_ADMIN_DATABASE_URL", "POSTGRES_DB_HOST", "POSTGRES_DB_PORT", "ZAVA_CONTEXT_KEY"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied()).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Arguments, environment, and a word the error must contain.
type Case = (&'static [&'static str], &'static [(&'static str, &'static str)], &'static str);

#[test]
fn bad_settings_and_arguments_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [Case; 8] = [
        (&["db", "status"], &[("POSTGRES_DB_HOST", "localhost"), ("POSTGRES_DB_PORT", "eighty")], "POSTGRES_DB_PORT"),
        (&["db", "status"], &[("DATABASE_URL", "mysql://nope")], "DATABASE_URL"),
        (&["db", "seed", "--customers", "0"], &[], "--customers"),
        (
            &["db", "url", "--role", "query", "--as", "tacomaa"],
            &[("DATABASE_URL", "postgresql://zava_query@127.0.0.1:1/zava")],
            "store name",
        ),
        (&["db", "reset"], &[], "--yes"),
        (&["serve", "--http", "0.0.0.0:0"], &[], "--allow-remote-header-identity"),
        (&["serve", "--max-rows", "0"], &[], "--max-rows"),
        (&["stdio", "--statement-timeout-ms", "soon"], &[], "--statement-timeout-ms"),
    ];
    for (args, env, needle) in cases {
        let out = zava(dir.path(), args, env);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    // None of these created a cluster.
    assert!(!dir.path().join("pg").exists());
}

#[test]
fn an_external_server_is_provisioned_through_an_admin_url_and_served_with_the_query_role() {
    // The "external" server: a cluster addressed only through URLs from here on.
    let server_dir = data_dir();
    let server = ManagedCluster::new(server_dir.path()).unwrap();
    let lease = server.ensure_running().unwrap();
    let superuser = Secrets::load(&server.secrets_path()).unwrap().unwrap().superuser_password;
    let admin_url = format!("postgresql://postgres:{superuser}@127.0.0.1:{}/postgres", lease.port);

    let app_dir = tempfile::tempdir().unwrap();
    let env = [("ZAVA_ADMIN_DATABASE_URL", admin_url.as_str())];
    let seed = zava(app_dir.path(), &["db", "seed", "--customers", "400"], &env);
    assert!(seed.status.success(), "{}", stderr(&seed));
    assert!(!app_dir.path().join("pg").exists(), "an external database must not start a managed cluster");

    let url = zava(app_dir.path(), &["db", "url", "--role", "query", "--as", "seattle"], &env);
    assert!(url.status.success(), "{}", stderr(&url));
    let url = String::from_utf8(url.stdout).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stores: Vec<i32> = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url.trim(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
            .query("SELECT DISTINCT store_id FROM retail.orders", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    assert_eq!(stores, [1]);

    let status = zava(app_dir.path(), &["db", "status"], &env);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success() && text.contains("database: external") && text.contains("400 customers"), "{text}");
    assert!(
        text.contains("embeddings: 568 of 568 products by sentence-transformers/all-MiniLM-L6-v2 (384 dimensions)"),
        "{text}"
    );
    lease.release().unwrap();
    server.destroy().unwrap();
}
