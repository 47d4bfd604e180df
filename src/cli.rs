//! The command line: what each command does, in words a person can act on.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tokio::signal::unix::{SignalKind, signal};

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
    after_help = "Start here:\n  zava-mcp serve                        bring up the database (first run: ~1 minute) and serve\n  \
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
    /// Bring the database up (creating and seeding it on first use) and serve until Ctrl-C.
    Serve,
    /// Manage the database: cluster lifecycle, schema, dataset, connection URLs.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create the cluster (when managed), the roles, the database and the schema. Safe to run again.
    Init,
    /// Generate the Zava dataset and load it, replacing the current data (initialises first if needed).
    Seed(SeedArgs),
    /// Start the managed cluster and keep it running after this command exits (until `db stop`).
    Start,
    /// Stop the managed cluster.
    Stop {
        /// Stop even while other zava-mcp processes are using it.
        #[arg(long)]
        force: bool,
    },
    /// Stop and start the managed cluster.
    Restart,
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

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Number of customers; orders (~4 per customer) and line items scale with it. 50,000 is full scale.
    #[arg(long, default_value_t = GenOptions::FULL_SCALE_CUSTOMERS, value_parser = clap::value_parser!(u32).range(1..=5_000_000))]
    pub customers: u32,
    /// Random seed: the same seed and size always produce byte-identical data.
    #[arg(long, default_value_t = GenOptions::DEFAULT_SEED)]
    pub seed: u64,
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
    let settings = cli.settings()?;
    match cli.command {
        Command::Serve => serve(&settings).await,
        Command::Db(cmd) => db(&settings, cmd).await,
    }
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

async fn serve(settings: &DbSettings) -> Result<()> {
    with_db(settings, async |db| {
        if let Some(report) = db.ensure_ready(true).await? {
            print_seed(&report);
        }
        let status = db.status().await.ok();
        if let Some(s) = status {
            let orders = s.row_counts.iter().find(|(t, _)| t == "retail.orders").map_or(0, |(_, n)| *n);
            tracing::info!(schema = s.schema_version, orders, "database ready");
        }
        // Listen before saying we are ready, so an early Ctrl-C or SIGTERM still shuts down cleanly.
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tracing::info!("connect with psql: `zava-mcp db url --role query --as seattle`; press Ctrl-C to stop");
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutting down");
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
            let report = with_db(settings, async |db| {
                let _turn = db.provisioning_turn().await?;
                db.init().await?;
                db.seed(GenOptions { seed: args.seed, customers: args.customers }, true).await
            })
            .await?;
            print_seed(&report);
        }
        DbCommand::Start | DbCommand::Restart => {
            require_managed(managed)?;
            if matches!(cmd, DbCommand::Restart) {
                cluster()?.stop()?;
            }
            let c = cluster()?;
            c.pin()?;
            with_db(settings, async |db| db.ensure_ready(true).await.map(|_| ())).await?;
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
