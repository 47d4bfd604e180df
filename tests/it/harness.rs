//! The test harness: one throwaway PostgreSQL cluster per test binary, a fresh database per test.
//!
//! The cluster is started through zava-mcp's own `ManagedCluster` in a temporary data directory (a free port,
//! its own socket directory), bootstrapped, migrated and seeded at a small scale once; that database then serves
//! as the template every test clones (`CREATE DATABASE ... TEMPLATE`, ~100 ms). At exit the cluster is stopped
//! and its directory deleted.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio_postgres::{Client, Row};
use zava_mcp::config::DbSettings;
use zava_mcp::data::generate::GenOptions;
use zava_mcp::db::cluster::ManagedCluster;
use zava_mcp::db::context::{self, ContextKey, SignedContext};
use zava_mcp::db::endpoint::Endpoint;
use zava_mcp::db::roles::{DATABASE, OWNER, QUERY, Role};
use zava_mcp::provision::Database;
use zava_mcp::tenant::{Access, PersonalData, Tenant};

/// Customers in the template dataset: big enough for every store to have orders, small enough to be quick.
pub const TEMPLATE_CUSTOMERS: u32 = 3_000;

struct Shared {
    admin: Endpoint,
    owner: Endpoint,
    query: Endpoint,
    key: ContextKey,
    data_dir: std::path::PathBuf,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(1);

extern "C" fn stop_cluster_at_exit() {
    if let Some(s) = SHARED.get()
        && let Ok(c) = ManagedCluster::new(&s.data_dir)
    {
        let _ = c.destroy();
        let _ = std::fs::remove_dir_all(&s.data_dir);
    }
}

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        // Its own thread and runtime: tests each run on their own runtime, which must not be nested.
        std::thread::spawn(|| {
            let dir = tempfile::Builder::new().prefix("zava-test-").tempdir().expect("temp dir").keep();
            make_traversable(&dir);
            let settings = DbSettings::resolve(dir.clone(), None, None).expect("settings");
            let db = Database::open(&settings).expect("start the test cluster");
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async {
                db.init().await.expect("init");
                db.seed(GenOptions { seed: 42, customers: TEMPLATE_CUSTOMERS }, embedder(), false).await.expect("seed");
            });
            // SAFETY: registering a plain extern "C" function with no captured state.
            unsafe { libc::atexit(stop_cluster_at_exit) };
            let owner = db.endpoint(Role::Owner).unwrap().clone();
            let admin = owner.with_dbname("postgres").with_user("postgres", &secrets(&dir).superuser_password);
            Shared {
                admin,
                owner,
                query: db.endpoint(Role::Query).unwrap().clone(),
                key: db.context_key().clone(),
                data_dir: dir,
            }
        })
        .join()
        .expect("test cluster set-up panicked")
    })
}

fn secrets(dir: &std::path::Path) -> zava_mcp::db::secrets::Secrets {
    zava_mcp::db::secrets::Secrets::load(&dir.join("secrets.toml")).unwrap().unwrap()
}

/// The local embedding model, loaded once per test binary (installed by `scripts/setup.sh`).
pub fn embedder() -> &'static zava_mcp::embed::provider::Embedder {
    static EMBEDDER: OnceLock<zava_mcp::embed::provider::Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        zava_mcp::embed::provider::Embedder::local(None).expect("the embedding model is missing: run scripts/setup.sh")
    })
}

/// An HTTP client for talking to servers under test. zava-mcp builds reqwest with rustls but no default crypto
/// provider (no aws-lc build), so the process's provider is installed first.
pub fn http_client() -> reqwest::Client {
    zava_mcp::embed::remote::install_tls_provider();
    reqwest::Client::new()
}

/// A Streamable HTTP POST of one JSON-RPC message to `url` (the `/mcp` endpoint), with the headers every
/// request needs (`Accept` both ways, `MCP-Protocol-Version` 2025-11-25); callers add identity headers.
pub fn mcp_post(http: &reqwest::Client, url: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
    http.post(url)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(body)
}

/// The HTTP settings of a server under test: a free loopback port, Host `localhost` or `127.0.0.1` (with no
/// port or the server's own), the default origins (loopback on that port), a 64 KiB body limit.
pub fn http_settings(cors_origins: Vec<String>) -> zava_mcp::http::HttpSettings {
    zava_mcp::http::HttpSettings {
        addr: "127.0.0.1:0".parse().unwrap(),
        allowed_hosts: vec!["localhost".into(), "127.0.0.1".into()],
        allowed_origins: vec![],
        max_body_bytes: 64 * 1024,
        cors_origins,
        ..Default::default()
    }
}

/// Serves `app` over HTTP with [`http_settings`]; returns its address and the token that stops it.
pub async fn serve_http(
    app: std::sync::Arc<zava_mcp::app::App>,
    cors_origins: Vec<String>,
) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
    serve_http_with(app, http_settings(cors_origins)).await
}

/// Serves `app` over HTTP with the given settings; returns its address and the token that stops it.
pub async fn serve_http_with(
    app: std::sync::Arc<zava_mcp::app::App>,
    http: zava_mcp::http::HttpSettings,
) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        zava_mcp::http::serve(app, &http, stop, |addr| {
            let _ = tx.send(addr);
        })
        .await
        .unwrap();
    });
    (rx.await.unwrap(), shutdown)
}

/// When the tests run as root, the postgres user must be able to reach the temp directory.
pub fn make_traversable(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A fresh copy of the seeded database for one test.
pub struct TestDb {
    pub owner: Endpoint,
    pub query: Endpoint,
    pub key: ContextKey,
    /// The same key as hex, for a server process given the database by URL (`ZAVA_CONTEXT_KEY`).
    pub key_hex: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let s = shared();
        let name = format!("t{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::SeqCst));
        let admin = s.admin.connect().await.unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {DATABASE} OWNER {OWNER}")).await.unwrap();
        // Database-level privileges live in the shared catalog and are not copied from the template.
        admin
            .batch_execute(&format!(
                "REVOKE ALL ON DATABASE {name} FROM PUBLIC; GRANT CONNECT ON DATABASE {name} TO {QUERY};"
            ))
            .await
            .unwrap();
        TestDb {
            owner: s.owner.with_dbname(&name),
            query: s.query.with_dbname(&name),
            key: s.key.clone(),
            key_hex: secrets(&s.data_dir).context_key,
        }
    }

    pub async fn owner(&self) -> Client {
        self.owner.connect().await.unwrap()
    }

    /// The cluster's superuser, for observing what other sessions do (pg_stat_activity).
    pub async fn superuser(&self) -> Client {
        shared().admin.connect().await.unwrap()
    }

    /// A plain query-role connection with no tenant context at all.
    pub async fn query_role(&self) -> Client {
        self.query.connect().await.unwrap()
    }

    /// A context for `tenant` with personal data in clear (what header and stdio identities get), so that
    /// isolation tests compare the real values.
    pub fn context(&self, tenant: &Tenant) -> SignedContext {
        self.context_for(&in_clear(tenant.clone()))
    }

    pub fn context_for(&self, access: &Access) -> SignedContext {
        SignedContext::sign(access, &self.key, context::CONTEXT_VALIDITY)
    }

    /// Runs `sql` as `tenant` (personal data in clear) inside the server's tenant transaction; errors come back
    /// as text.
    pub async fn as_tenant(&self, tenant: &Tenant, sql: &str) -> Result<Vec<Row>, String> {
        self.as_access(&in_clear(tenant.clone()), sql).await
    }

    /// Runs `sql` with exactly `access` inside the server's tenant transaction; errors come back as text.
    pub async fn as_access(&self, access: &Access, sql: &str) -> Result<Vec<Row>, String> {
        let mut client = self.query_role().await;
        let tx = context::begin(&mut client, &self.context_for(access), Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        tx.query(sql, &[]).await.map_err(|e| db_error(&e))
    }

    /// The first column of every row of `sql`, from the owner's point of view (sees every row).
    pub async fn owner_values<T: for<'a> tokio_postgres::types::FromSql<'a>>(&self, sql: &str) -> Vec<T> {
        let rows = self.owner().await.query(sql, &[]).await.unwrap_or_else(|e| panic!("`{sql}`: {e}"));
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// One bigint from the owner's point of view (sees every row).
    pub async fn owner_count(&self, sql: &str) -> i64 {
        scalar(&self.owner().await, sql).await
    }
}

/// `tenant` seeing personal data in clear.
pub fn in_clear(tenant: Tenant) -> Access {
    Access::new(tenant, PersonalData::Clear)
}

pub fn db_error(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string())
}

/// The single value of a one-row, one-column query.
pub async fn scalar<T: for<'a> tokio_postgres::types::FromSql<'a>>(client: &Client, sql: &str) -> T {
    client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("`{sql}`: {e}")).get(0)
}

pub fn count(rows: &[Row]) -> i64 {
    rows[0].get(0)
}

/// A temporary data directory whose cluster is stopped when the test ends, even when it panics.
pub struct DataDir(tempfile::TempDir);

impl DataDir {
    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if let Ok(c) = ManagedCluster::new(self.0.path()) {
            let _ = c.destroy();
        }
    }
}

pub fn data_dir() -> DataDir {
    let dir = tempfile::Builder::new().prefix("zava-cluster-").tempdir().unwrap();
    make_traversable(dir.path());
    DataDir(dir)
}
