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

mod auth_args;
mod bench;
mod config;
mod db;
mod serve;
mod serve_args;
mod token;

use db::{db, print_seed};
use serve::{serve, stdio};
pub use serve_args::{ServeArgs, ServerArgs, StdioArgs};

use crate::config::{DEFAULT_DATA_DIR, DatabaseSource, DbSettings};
use crate::data::generate::GenOptions;
use crate::data::stores::{STORES, find_store};
use crate::db::cluster::{ClusterState, ManagedCluster};
use crate::db::context::SignedContext;
use crate::db::roles::Role;
use crate::provision::{Database, SeedReport};
use crate::tenant::{Access, PersonalData, Tenant};

#[derive(Debug, Parser)]
#[command(
    name = "zava-mcp",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("ZAVA_GIT_REVISION"), ", built ", env!("ZAVA_BUILD_DATE"), ")"),
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
    /// A configuration file (TOML; `zava-mcp config example` prints one with every key). Default:
    /// ./zava-mcp.toml when it exists. Its values sit below the environment and the command line.
    #[arg(long, global = true, env = "ZAVA_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Where zava-mcp keeps its PostgreSQL cluster, passwords and keys.
    #[arg(long, global = true, env = "ZAVA_DATA_DIR", default_value = DEFAULT_DATA_DIR, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Use an existing PostgreSQL server instead of the managed cluster (connect as the query role).
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// An administrator connection to that server, needed only to create roles, the database and the schema.
    #[arg(long, global = true, env = "ZAVA_ADMIN_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub admin_database_url: Option<String>,
    /// Log filter, e.g. `info`, `debug`, `zava_mcp=debug`. The MCP library (rmcp) is held at `warn` whatever
    /// is asked: its debug lines would carry tool results, which hold tenant and personal data, and its info
    /// lines are three per request.
    #[arg(long, global = true, env = "ZAVA_LOG", default_value = "info", value_name = "FILTER")]
    pub log: String,
    /// Log line format: `text` for people, `json` (one JSON object per line, for a log collector), or `auto`:
    /// text when standard error is a terminal, JSON otherwise.
    #[arg(long, global = true, env = "ZAVA_LOG_FORMAT", value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    /// Send traces to this OpenTelemetry collector over OTLP (e.g. http://127.0.0.1:4318 for HTTP/protobuf, which
    /// adds /v1/traces, or http://127.0.0.1:4317 for gRPC). Off when unset. A tool call continues the trace of a
    /// `traceparent` in the request's `_meta` or HTTP headers. OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
    /// OTEL_TRACES_SAMPLER and OTEL_BSP_* are honoured.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// The full URL for traces, used as is (instead of the endpoint's /v1/traces).
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", value_name = "URL")]
    pub otlp_traces_endpoint: Option<String>,
    /// How traces travel: `http/protobuf` (the OpenTelemetry default) or `grpc`.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_PROTOCOL", value_enum, default_value = "http/protobuf")]
    pub otlp_protocol: crate::telemetry::traces::OtlpProtocol,
}

impl GlobalArgs {
    /// Where traces go, if anywhere.
    pub fn traces(&self) -> crate::telemetry::traces::TraceSettings {
        crate::telemetry::traces::TraceSettings {
            endpoint: self.otlp_endpoint.clone(),
            traces_endpoint: self.otlp_traces_endpoint.clone(),
            protocol: self.otlp_protocol,
        }
    }
}

pub use crate::telemetry::subscriber::LogFormat;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over Streamable HTTP at /mcp (creating and seeding the database on first use) until Ctrl-C.
    Serve(Box<ServeArgs>),
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
    /// Print a development bearer token (one line) for `serve --identity jwt` without an identity provider,
    /// signed with the data directory's key: `zava-mcp token --rls-user-id seattle`.
    Token(token::TokenArgs),
    /// Check the configuration (file, environment, flags) and print what `serve` would use, where each value came
    /// from, secrets masked; or print a commented example file.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Make a static API key for a machine client (`serve --identity api-key`): prints the key once and the
    /// entry (argon2 hash, identity, scopes) to add to the --api-keys-file.
    ApiKey(token::ApiKeyArgs),
    /// Measure throughput and latency under load: a mix of tool calls over MCP from many callers, against the
    /// same SQL sent straight to PostgreSQL (the floor), with the CPU and memory each side used.
    Bench(Box<bench::BenchArgs>),
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
    #[arg(id = "embed_server_listen", long = "listen", env = "ZAVA_EMBED_SERVER_LISTEN", default_value = embed_server::DEFAULT_LISTEN, value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Require this key from every caller, as `Authorization: Bearer <key>` or `api-key: <key>` (what the
    /// openai and azure-openai providers send); wrong or missing keys get 401.
    #[arg(id = "embed_server_api_key", long = "api-key", env = "ZAVA_EMBED_SERVER_API_KEY", hide_env_values = true, value_name = "KEY", value_parser = secret_arg)]
    pub api_key: Option<Secret>,
    /// The name callers use for the model (the request's `model`, or the Azure deployment name). Default: the
    /// model directory's name, e.g. all-MiniLM-L6-v2.
    #[arg(
        id = "embed_server_model_name",
        long = "model-name",
        env = "ZAVA_EMBED_SERVER_MODEL_NAME",
        value_name = "NAME"
    )]
    pub model_name: Option<String>,
    /// The sentence-transformers model directory to serve. Default: where scripts/setup.sh installs
    /// all-MiniLM-L6-v2.
    #[arg(long, env = "ZAVA_EMBEDDING_MODEL_DIR", value_name = "DIR")]
    pub embedding_model_dir: Option<PathBuf>,
    /// The arithmetic of the model's linear layers: `auto` (8-bit integers on processors with AVX-512 VNNI, f32
    /// elsewhere), `int8` or `f32`.
    #[arg(long, env = "ZAVA_EMBEDDING_PRECISION", value_enum, default_value = "auto", value_name = "PRECISION")]
    pub embedding_precision: crate::embed::settings::Precision,
    /// Largest request body accepted, in bytes.
    #[arg(id = "embed_server_max_body_bytes", long = "max-body-bytes", env = "ZAVA_EMBED_SERVER_MAX_BODY_BYTES", default_value_t = 16_777_216, value_parser = clap::value_parser!(u32).range(1024..=1_073_741_824))]
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
    /// Back up the served database (pg_dump, custom format) into one new file, verified with pg_restore --list
    /// and kept with its SHA-256 (FILE.sha256); prints the file's path. Needs an administrator connection for an
    /// external server (ZAVA_ADMIN_DATABASE_URL).
    Backup {
        /// Directory for the backup file (default: DATA_DIR/backups, made private to this user).
        #[arg(long, value_name = "DIR")]
        output: Option<std::path::PathBuf>,
    },
    /// Restore a backup made by `db backup` into the served database, replacing its data in one transaction
    /// (a running `serve` keeps serving, and serves the restored data once it commits). The checksum file beside
    /// the backup is checked first.
    Restore {
        /// The backup file (`zava-<time>.dump`).
        file: std::path::PathBuf,
        /// Confirm that the database's current data may be replaced.
        #[arg(long)]
        yes: bool,
    },
    /// Delete the managed cluster and its data (the next command creates a fresh one).
    Reset {
        /// Confirm that all data in the data directory's cluster may be deleted.
        #[arg(long)]
        yes: bool,
    },
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
    /// With `--as`: show customers' email and phone in clear, as a token with the `pii:read` scope would.
    /// Without it they are masked (`j***@example.com`, `(***) ***-1234`).
    #[arg(long, requires = "tenant")]
    pub personal_data: bool,
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

pub async fn run(layers: crate::config::Layers) -> Result<()> {
    let cli = &layers.cli;
    if let Command::Config(cmd) = &cli.command {
        return config::config(&layers, cmd).await;
    }
    let cli = layers.cli;
    if let Command::EmbedServer(args) = cli.command {
        return embed_server(args).await;
    }
    if let Command::Token(args) = &cli.command {
        return token::token(&cli.global.data_dir, args);
    }
    if let Command::ApiKey(args) = &cli.command {
        return token::api_key(args);
    }
    let settings = cli.settings()?;
    match cli.command {
        Command::Serve(args) => serve(&settings, *args).await,
        Command::Stdio(args) => stdio(&settings, args).await,
        Command::Db(cmd) => db(&settings, cmd).await,
        Command::Bench(args) => bench::bench(settings, *args).await,
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
        Command::EmbedServer(_) | Command::Token(_) | Command::ApiKey(_) | Command::Config(_) => {
            unreachable!("handled above")
        }
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
        provider: ProviderSettings::Local {
            model_dir: args.embedding_model_dir.clone(),
            precision: args.embedding_precision,
        },
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
