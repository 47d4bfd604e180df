//! The command line: what each command does, in words a person can act on.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::app::{App, AppSettings};
use crate::db::pool::PoolSettings;
use crate::db::query::Limits;
use crate::embed::products::embed_products;
use crate::embed::provider::Embedder;
use crate::embed::serve::{self as embed_server, EmbedServerSettings};
use crate::embed::settings::{EmbeddingArgs, EmbeddingSettings, ModelName, ProviderSettings, Secret, secret_arg};
use crate::http::HttpSettings;
use crate::mcp::server::{IdentitySource, ZavaServer};

use crate::config::{DEFAULT_DATA_DIR, DatabaseSource, DbSettings};
use crate::data::generate::GenOptions;
use crate::data::stores::{STORES, find_store};
use crate::db::cluster::{ClusterState, ManagedCluster};
use crate::db::context::SignedContext;
use crate::db::roles::Role;
use crate::provision::{Database, SeedReport};
use crate::tenant::Tenant;

#[derive(Debug, Parser)]
#[command(
    name = "zava-mcp",
    version,
    about = "A multi-tenant, read-only MCP server for the Zava DIY retail database",
    long_about = "zava-mcp lets AI assistants analyse the Zava DIY retail database safely: every store manager \
sees only their store's orders, line items, inventory and customers; head office sees everything.\n\n\
With no database configured it runs its own PostgreSQL cluster in the data directory (default ./.zava), creates \
the schema, and generates the full deterministic Zava dataset on first use. Point it at an existing server with \
DATABASE_URL (or the POSTGRES_DB_* variables) instead.",
    after_help = "Start here:\n  zava-mcp serve                        serve MCP at http://127.0.0.1:8000/mcp (first run creates the database)\n  \
zava-mcp db status                    what is running, schema version, row counts\n  \
zava-mcp db url --role query --as seattle   a psql URL that sees only Seattle's rows"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where zava-mcp keeps its PostgreSQL cluster, passwords and keys.
    #[arg(long, global = true, env = "ZAVA_DATA_DIR", default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Use an existing PostgreSQL server instead of the managed cluster (connect as the query role).
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// An administrator connection to that server, needed only to create roles, the database and the schema.
    #[arg(long, global = true, env = "ZAVA_ADMIN_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub admin_database_url: Option<String>,
    /// Log filter, e.g. `info`, `debug`, `zava_mcp=debug`.
    #[arg(long, global = true, env = "ZAVA_LOG", default_value = "info", value_name = "FILTER")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over Streamable HTTP at /mcp (creating and seeding the database on first use) until Ctrl-C.
    Serve(ServeArgs),
    /// Serve MCP over stdin/stdout for one user (Claude Desktop); the identity comes from ZAVA_RLS_USER_ID.
    Stdio(StdioArgs),
    /// Manage the database: cluster lifecycle, schema, dataset, connection URLs.
    #[command(subcommand)]
    Db(DbCommand),
    /// Embed product descriptions with the configured provider and model (default: the local all-MiniLM-L6-v2
    /// installed by scripts/setup.sh). Only products lacking an embedding from this model, unless --rebuild.
    Embed(EmbedArgs),
    /// Serve the local embedding model over HTTP in OpenAI's and Azure OpenAI's shapes (POST /v1/embeddings,
    /// POST /openai/deployments/{name}/embeddings), so several zava-mcp replicas can share one model process
    /// (`--embedding-provider openai --openai-base-url http://127.0.0.1:11435/v1`). Needs no database.
    EmbedServer(EmbedServerArgs),
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Re-embed every product (after changing the provider or model).
    #[arg(long)]
    pub rebuild: bool,
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
}

#[derive(Debug, Args)]
pub struct EmbedServerArgs {
    /// Address to listen on (default 127.0.0.1:11435: this machine only). To serve other machines, listen on
    /// e.g. 0.0.0.0:11435 and set --api-key.
    #[arg(long, env = "ZAVA_EMBED_SERVER_LISTEN", default_value = embed_server::DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Require this key from every caller, as `Authorization: Bearer <key>` or `api-key: <key>` (what the
    /// openai and azure-openai providers send); wrong or missing keys get 401.
    #[arg(long, env = "ZAVA_EMBED_SERVER_API_KEY", hide_env_values = true, value_name = "KEY", value_parser = secret_arg)]
    pub api_key: Option<Secret>,
    /// The name callers use for the model (the request's `model`, or the Azure deployment name). Default: the
    /// model directory's name, e.g. all-MiniLM-L6-v2.
    #[arg(long, env = "ZAVA_EMBED_SERVER_MODEL_NAME", value_name = "NAME")]
    pub model_name: Option<String>,
    /// The sentence-transformers model directory to serve. Default: where scripts/setup.sh installs
    /// all-MiniLM-L6-v2.
    #[arg(long, env = "ZAVA_EMBEDDING_MODEL_DIR", value_name = "DIR")]
    pub embedding_model_dir: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "ZAVA_EMBED_SERVER_MAX_BODY_BYTES", default_value_t = 16_777_216, value_parser = clap::value_parser!(u32).range(1024..=1_073_741_824))]
    pub max_body_bytes: u32,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create the cluster (when managed), the roles, the database and the schema. Safe to run again.
    Init,
    /// Generate the Zava dataset and load it, replacing the current data (initialises first if needed).
    Seed(SeedArgs),
    /// Start the managed cluster and keep it running after this command exits (until `db stop`).
    Start {
        #[command(flatten)]
        embedding: EmbeddingArgs,
    },
    /// Stop the managed cluster.
    Stop {
        /// Stop even while other zava-mcp processes are using it.
        #[arg(long)]
        force: bool,
    },
    /// Stop and start the managed cluster.
    Restart {
        #[command(flatten)]
        embedding: EmbeddingArgs,
    },
    /// Show the cluster state, schema version, dataset and row counts per table.
    Status,
    /// Print a connection URL a person can give to psql.
    Url(UrlArgs),
    /// Delete the managed cluster and its data (the next command creates a fresh one).
    Reset {
        /// Confirm that all data in the data directory's cluster may be deleted.
        #[arg(long)]
        yes: bool,
    },
}

/// Limits and resources of a running server, shared by `serve` and `stdio`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Most rows one query returns; the rest is cut with a note telling the model to aggregate.
    #[arg(long, env = "ZAVA_MAX_ROWS", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_rows: u32,
    /// Most bytes of JSON one query returns.
    #[arg(long, env = "ZAVA_MAX_RESULT_BYTES", default_value_t = 262_144, value_parser = clap::value_parser!(u32).range(1024..=67_108_864))]
    pub max_result_bytes: u32,
    /// How long one query may run before PostgreSQL stops it, in milliseconds.
    #[arg(long, env = "ZAVA_STATEMENT_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub statement_timeout_ms: u64,
    /// Database connections in the pool.
    #[arg(long, env = "ZAVA_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,
    /// How long a call waits for a free connection before answering "busy", in milliseconds.
    #[arg(long, env = "ZAVA_POOL_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub pool_timeout_ms: u64,
    /// How long a tenant's table descriptions stay cached, in seconds.
    #[arg(long, env = "ZAVA_SCHEMA_CACHE_TTL_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub schema_cache_ttl_secs: u64,
}

impl ServerArgs {
    pub fn settings(&self) -> AppSettings {
        AppSettings {
            limits: Limits {
                max_rows: self.max_rows as usize,
                max_bytes: self.max_result_bytes as usize,
                statement_timeout: Duration::from_millis(self.statement_timeout_ms),
            },
            pool: PoolSettings {
                max_size: self.pool_size as usize,
                acquire_timeout: Duration::from_millis(self.pool_timeout_ms),
            },
            schema_cache_ttl: Duration::from_secs(self.schema_cache_ttl_secs),
        }
    }
}

/// How callers prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IdentityMode {
    /// The `x-rls-user-id` header, trusted as sent: for development on loopback only.
    Header,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Address to listen on.
    #[arg(long, env = "ZAVA_HTTP", default_value = "127.0.0.1:8000", value_name = "ADDR")]
    pub http: std::net::SocketAddr,
    /// How callers are identified.
    #[arg(long, env = "ZAVA_IDENTITY", value_enum, default_value = "header")]
    pub identity: IdentityMode,
    /// Serve header identities on a non-loopback address anyway. Anyone who can reach the port can then
    /// claim any store: only behind a proxy that sets the header itself.
    #[arg(long)]
    pub allow_remote_header_identity: bool,
    /// Host header values to accept, comma-separated (add your public name behind a proxy). An entry with a
    /// port matches exactly that host:port; one without matches the host with no port or with the port served.
    #[arg(long, env = "ZAVA_ALLOWED_HOSTS", value_delimiter = ',', default_value = "localhost,127.0.0.1,[::1]")]
    pub allowed_hosts: Vec<String>,
    /// Browser origins to accept, comma-separated, each `scheme://host[:port]` compared exactly (`:*` for any
    /// port, `null` for `Origin: null`); requests with any other `Origin` get 403. None given: the loopback
    /// origins on the port served (http://localhost:PORT, http://127.0.0.1:PORT, http://[::1]:PORT).
    #[arg(long, env = "ZAVA_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Browser origins allowed to call the server cross-origin (CORS), comma-separated; none by default. Each
    /// is also accepted as an origin.
    #[arg(long, env = "ZAVA_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "ZAVA_MAX_BODY_BYTES", default_value_t = 1_048_576, value_parser = clap::value_parser!(u32).range(1024..=67_108_864))]
    pub max_body_bytes: u32,
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
}

#[derive(Debug, Args)]
pub struct StdioArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The caller: a store manager UUID (several, comma-separated, for a regional manager) or the head
    /// office UUID 00000000-0000-0000-0000-000000000000.
    #[arg(long = "rls-user-id", env = "ZAVA_RLS_USER_ID", value_name = "UUID")]
    pub rls_user_id: Option<String>,
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Number of customers; orders (~4 per customer) and line items scale with it. 50,000 is full scale.
    #[arg(long, default_value_t = GenOptions::FULL_SCALE_CUSTOMERS, value_parser = clap::value_parser!(u32).range(1..=5_000_000))]
    pub customers: u32,
    /// Random seed: the same seed and size always produce byte-identical data.
    #[arg(long, default_value_t = GenOptions::DEFAULT_SEED)]
    pub seed: u64,
    #[command(flatten)]
    pub embedding: EmbeddingArgs,
}

#[derive(Debug, Args)]
pub struct UrlArgs {
    /// Which role to connect as.
    #[arg(long, value_enum, default_value = "query")]
    pub role: Role,
    /// With `--role query`: act as this tenant. A store name (`seattle`, `online`, ...), a manager UUID,
    /// several UUIDs separated by commas (a regional manager), or `head-office`. Without it the query role
    /// sees no store's orders, items, inventory or customers.
    #[arg(long = "as", value_name = "TENANT")]
    pub tenant: Option<String>,
    /// How long a tenant URL stays valid, in minutes.
    #[arg(long, default_value_t = 480, value_parser = clap::value_parser!(u64).range(1..=10_080))]
    pub valid_minutes: u64,
}

/// Parses `--as`: a store name, `head-office`, or manager UUIDs.
pub fn parse_tenant(s: &str) -> Result<Tenant> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("head-office") || t.eq_ignore_ascii_case("headoffice") {
        return Ok(Tenant::HeadOffice);
    }
    if let Some(store) = find_store(t) {
        return Ok(Tenant::from_uuid(store.manager));
    }
    t.parse::<Tenant>().map_err(|e| {
        let names: Vec<&str> = STORES.iter().map(|s| s.name.trim_start_matches("Zava Retail ")).collect();
        anyhow::anyhow!("{e}; or use a store name ({}) or head-office", names.join(", ").to_lowercase())
    })
}

impl Cli {
    pub fn settings(&self) -> Result<DbSettings> {
        DbSettings::resolve(
            self.global.data_dir.clone(),
            self.global.database_url.clone(),
            self.global.admin_database_url.clone(),
        )
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    if let Command::EmbedServer(args) = cli.command {
        return embed_server(args).await;
    }
    let settings = cli.settings()?;
    match cli.command {
        Command::Serve(args) => serve(&settings, args).await,
        Command::Stdio(args) => stdio(&settings, args).await,
        Command::Db(cmd) => db(&settings, cmd).await,
        Command::Embed(args) => {
            let embedder = embedder(&args.embedding).await?;
            let n = with_db(&settings, async |db| {
                let bar = indicatif::ProgressBar::new(0);
                embed_products(db.endpoint(Role::Owner)?, &embedder, args.rebuild, &bar).await
            })
            .await?;
            println!("embedded {n} product descriptions with {}", embedder.model_id());
            Ok(())
        }
        Command::EmbedServer(_) => unreachable!("handled above"),
    }
}

/// The configured embedding provider, checked (settings) and ready (model loaded, or remote provider answered).
async fn embedder(args: &EmbeddingArgs) -> Result<Embedder> {
    Embedder::from_settings(&EmbeddingSettings::resolve(args)?).await
}

async fn embed_server(args: EmbedServerArgs) -> Result<()> {
    let model_name = args
        .model_name
        .as_deref()
        .map(|n| n.parse::<ModelName>().map_err(|e| anyhow::anyhow!("ZAVA_EMBED_SERVER_MODEL_NAME (--model-name) {e}")))
        .transpose()?;
    let api_key = args
        .api_key
        .as_ref()
        .map(|k| k.checked().map_err(|e| anyhow::anyhow!("ZAVA_EMBED_SERVER_API_KEY (--api-key) {e}")))
        .transpose()?;
    if !args.listen.ip().is_loopback() && api_key.is_none() {
        tracing::warn!(addr = %args.listen, "serving embeddings on a non-loopback address without --api-key: anyone who can reach it may use it");
    }
    let local = EmbeddingSettings {
        provider: ProviderSettings::Local { model_dir: args.embedding_model_dir.clone() },
        ..EmbeddingSettings::local()
    };
    let embedder = Embedder::from_settings(&local).await?;
    let settings =
        EmbedServerSettings { addr: args.listen, api_key, model_name, max_body_bytes: args.max_body_bytes as usize };
    let shutdown = CancellationToken::new();
    stop_on_signal(shutdown.clone())?;
    let model = embedder.model_id().to_owned();
    embed_server::serve(&embedder, &settings, shutdown, |addr| {
        tracing::info!(%model, "serving embeddings on http://{addr}/v1/embeddings (OpenAI) and http://{addr}/openai/deployments/<name>/embeddings (Azure); press Ctrl-C to stop");
    })
    .await
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM.
fn stop_on_signal(shutdown: CancellationToken) -> Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        shutdown.cancel();
        tracing::info!("shutting down");
    });
    Ok(())
}

/// Opens the database on a blocking thread (starting a cluster waits on processes), runs `f`, and always
/// gives the cluster back.
async fn with_db<T>(settings: &DbSettings, f: impl AsyncFnOnce(&Database) -> Result<T>) -> Result<T> {
    let s = settings.clone();
    let db = tokio::task::spawn_blocking(move || Database::open(&s)).await??;
    let result = f(&db).await;
    let closed = tokio::task::spawn_blocking(move || db.close()).await?;
    let value = result?;
    closed?;
    Ok(value)
}

async fn serve(settings: &DbSettings, args: ServeArgs) -> Result<()> {
    let http = HttpSettings {
        addr: args.http,
        allowed_hosts: args.allowed_hosts.clone(),
        allowed_origins: args.allowed_origins.iter().filter(|o| !o.trim().is_empty()).cloned().collect(),
        max_body_bytes: args.max_body_bytes as usize,
        cors_origins: args.cors_origins.iter().filter(|o| !o.trim().is_empty()).cloned().collect(),
        ..HttpSettings::default()
    };
    if !args.http.ip().is_loopback() && args.identity == IdentityMode::Header {
        if !args.allow_remote_header_identity {
            bail!(
                "refusing to serve header identities on {}: anyone who can reach it could claim any store. Listen on \
                 127.0.0.1, or pass --allow-remote-header-identity if a proxy in front sets x-rls-user-id itself",
                args.http
            );
        }
        tracing::warn!(addr = %args.http, "serving trusted x-rls-user-id headers on a non-loopback address");
    }
    let embedder = embedder(&args.embedding).await?;
    with_db(settings, async |db| {
        if let Some(report) = db.ensure_ready(&embedder, true).await? {
            print_seed(&report);
        }
        let app =
            App::start(db.endpoint(Role::Query)?, db.context_key().clone(), embedder, args.server.settings()).await?;
        let shutdown = CancellationToken::new();
        stop_on_signal(shutdown.clone())?;
        let stores = app.directory.len();
        crate::http::serve(app, &http, shutdown, |addr| {
            tracing::info!(
                stores,
                "serving MCP on http://{addr}/mcp (identity: x-rls-user-id header); press Ctrl-C to stop"
            );
        })
        .await
    })
    .await
}

async fn stdio(settings: &DbSettings, args: StdioArgs) -> Result<()> {
    use rmcp::ServiceExt;
    let embedder = embedder(&args.embedding).await?;
    with_db(settings, async |db| {
        // stdout carries the protocol: nothing else may be printed there.
        if let Some(r) = db.ensure_ready(&embedder, false).await? {
            tracing::info!(rows = r.rows, "seeded the database");
        }
        let app =
            App::start(db.endpoint(Role::Query)?, db.context_key().clone(), embedder, args.server.settings()).await?;
        match app.directory.resolve(args.rls_user_id.as_deref()) {
            Ok(t) => tracing::info!(tenant = %app.directory.describe(&t), "serving MCP on stdio"),
            Err(e) => tracing::warn!("{e}; every tool call that reads data will be refused"),
        }
        let server = ZavaServer::new(app, IdentitySource::Fixed(args.rls_user_id.clone()));
        let running = server.serve(rmcp::transport::stdio()).await.context("cannot start the stdio transport")?;
        running.waiting().await.context("the stdio session failed")?;
        Ok(())
    })
    .await
}

async fn db(settings: &DbSettings, cmd: DbCommand) -> Result<()> {
    let managed = matches!(settings.source, DatabaseSource::Managed);
    let cluster = || ManagedCluster::new(&settings.data_dir);
    match cmd {
        DbCommand::Init => {
            with_db(settings, async |db| {
                let _turn = db.provisioning_turn().await?;
                db.init().await
            })
            .await?;
            println!("database initialised (schema version {})", crate::db::migrate::latest_version());
        }
        DbCommand::Seed(args) => {
            let embedder = embedder(&args.embedding).await?;
            let report = with_db(settings, async |db| {
                let _turn = db.provisioning_turn().await?;
                db.init().await?;
                db.seed(GenOptions { seed: args.seed, customers: args.customers }, &embedder, true).await
            })
            .await?;
            print_seed(&report);
        }
        DbCommand::Start { ref embedding } | DbCommand::Restart { ref embedding } => {
            require_managed(managed)?;
            let embedder = embedder(embedding).await?;
            if matches!(cmd, DbCommand::Restart { .. }) {
                cluster()?.stop()?;
            }
            let c = cluster()?;
            c.pin()?;
            with_db(settings, async |db| db.ensure_ready(&embedder, true).await.map(|_| ())).await?;
            if let ClusterState::Running { port, pid } = c.state() {
                println!("PostgreSQL is running on 127.0.0.1:{port} (pid {pid}); stop it with `zava-mcp db stop`");
            }
        }
        DbCommand::Stop { force } => {
            require_managed(managed)?;
            let c = cluster()?;
            if !force && c.has_other_users()? {
                bail!("other zava-mcp processes are using this cluster; stop them first, or pass --force");
            }
            let was_running = c.stop()?;
            println!("{}", if was_running { "PostgreSQL stopped" } else { "PostgreSQL was not running" });
        }
        DbCommand::Status => status(settings, managed).await?,
        DbCommand::Url(args) => {
            if managed {
                // Pin before the lease is released, or the release would stop the cluster under the URL.
                cluster()?.pin()?;
            }
            let url = with_db(settings, async |db| url(db, &args)).await?;
            if managed {
                eprintln!("(the managed cluster stays running for this URL; stop it with `zava-mcp db stop`)");
            }
            println!("{url}");
        }
        DbCommand::Reset { yes } => {
            require_managed(managed)?;
            if !yes {
                bail!(
                    "this deletes the cluster in {} and all its data; run again with --yes",
                    settings.data_dir.display()
                );
            }
            cluster()?.destroy()?;
            println!("deleted the managed cluster; the next command creates a fresh one");
        }
    }
    Ok(())
}

fn require_managed(managed: bool) -> Result<()> {
    if !managed {
        bail!(
            "this command manages the embedded cluster; with DATABASE_URL set, manage that server with its own tools"
        );
    }
    Ok(())
}

fn url(db: &Database, args: &UrlArgs) -> Result<String> {
    let mut endpoint = db.endpoint(args.role)?.clone();
    match (&args.tenant, args.role) {
        (Some(t), Role::Query) => {
            let tenant = parse_tenant(t)?;
            let ctx = SignedContext::sign(&tenant, db.context_key(), Duration::from_secs(args.valid_minutes * 60));
            endpoint.options = Some(ctx.as_connect_option());
        }
        (Some(_), Role::Owner) => bail!("--as applies to the query role; the owner sees every row"),
        (None, _) => {}
    }
    Ok(endpoint.url())
}

async fn status(settings: &DbSettings, managed: bool) -> Result<()> {
    println!("data directory: {}", settings.data_dir.display());
    if managed {
        let c = ManagedCluster::new(&settings.data_dir)?;
        match c.state() {
            ClusterState::NotInitialized => {
                println!("cluster: not created yet (run `zava-mcp db init` or `zava-mcp serve`)");
                return Ok(());
            }
            ClusterState::Stopped => {
                println!("cluster: stopped (start it with `zava-mcp db start`)");
                return Ok(());
            }
            ClusterState::Running { pid, port } => {
                println!(
                    "cluster: running on 127.0.0.1:{port} (pid {pid}){}",
                    if c.is_pinned() { ", pinned" } else { "" }
                );
            }
        }
    } else {
        println!("database: external");
    }
    let s = with_db(settings, async |db| db.status().await).await?;
    println!(
        "schema version: {} of {}{}",
        s.schema_version,
        s.latest_version,
        if s.is_current() { " (current)" } else { " (run `zava-mcp db init`)" }
    );
    match &s.dataset {
        Some((seed, customers, sum)) => {
            println!("dataset: seed {seed}, {customers} customers, checksum {}", &sum[..16])
        }
        None => println!("dataset: none loaded (run `zava-mcp db seed`)"),
    }
    let products = s.row_counts.iter().find(|(t, _)| t == "retail.products").map_or(0, |(_, n)| *n);
    if s.embeddings.is_empty() && products > 0 {
        println!("embeddings: none (run `zava-mcp embed`)");
    }
    for (model, dimension, n) in &s.embeddings {
        println!("embeddings: {n} of {products} products by {model} ({dimension} dimensions)");
    }
    for (table, n) in &s.row_counts {
        println!("  {table:<42} {n:>9}");
    }
    Ok(())
}

fn print_seed(r: &SeedReport) {
    println!(
        "seeded {} rows ({} customers, seed {}) in {:.1}s (generate {:.1}s, load+index {:.1}s); checksum {}",
        r.rows,
        r.options.customers,
        r.options.seed,
        (r.generate + r.load).as_secs_f64(),
        r.generate.as_secs_f64(),
        r.load.as_secs_f64(),
        &r.checksum[..16]
    );
}
