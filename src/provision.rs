//! Bringing a database to a serving state: the cluster (when managed), roles, schema, key, and the dataset.
//!
//! Every CLI command and the server go through [`Database::open`], so the embedded default and an external
//! server follow the same steps, and a fresh data directory becomes a fully seeded database on first use.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::{DatabaseSource, DbSettings};
use crate::data::encode::{checksum, encode};
use crate::data::generate::{Dataset, GenOptions};
use crate::data::load;
use crate::db::cluster::{ClusterLease, ManagedCluster};
use crate::db::context::ContextKey;
use crate::db::endpoint::Endpoint;
use crate::db::roles::{DATABASE, OWNER, Role};
use crate::db::secrets::Secrets;
use crate::db::status::{self, DatabaseStatus};
use crate::db::{bootstrap, migrate};
use crate::embed::products::embed_products;
use crate::embed::provider::Embedder;

/// An open database: endpoints for each role, and the managed cluster's lease when there is one.
pub struct Database {
    data_dir: std::path::PathBuf,
    lease: Option<ClusterLease>,
    admin: Option<Endpoint>,
    owner: Option<Endpoint>,
    query: Endpoint,
    secrets: Secrets,
    context_key: ContextKey,
}

/// What a seed did, for the person who asked.
pub struct SeedReport {
    pub options: GenOptions,
    pub checksum: String,
    pub rows: usize,
    pub generate: Duration,
    pub load: Duration,
}

impl Database {
    /// Opens the database (starting the managed cluster if needed) without changing its schema or data.
    pub fn open(settings: &DbSettings) -> Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create the data directory {}", settings.data_dir.display()))?;
        match &settings.source {
            DatabaseSource::Managed => {
                let cluster = ManagedCluster::new(&settings.data_dir)?;
                let lease = cluster.ensure_running()?;
                let secrets =
                    Secrets::load(&cluster.secrets_path())?.context("the managed cluster has no secrets file")?;
                let admin = Endpoint::loopback(lease.port, "postgres", "postgres", &secrets.superuser_password);
                let owner = admin.with_dbname(DATABASE).with_user(OWNER, &secrets.owner_password);
                let query = admin.with_dbname(DATABASE).with_user(crate::db::roles::QUERY, &secrets.query_password);
                let key = settings.context_key.clone().unwrap_or_else(|| secrets.context_key.clone());
                Ok(Self {
                    data_dir: settings.data_dir.clone(),
                    context_key: ContextKey::from_hex(&key)?,
                    lease: Some(lease),
                    admin: Some(admin),
                    owner: Some(owner),
                    query,
                    secrets,
                })
            }
            DatabaseSource::External { serve, admin } => {
                let path = settings.data_dir.join("secrets.toml");
                let mut secrets = Secrets::load_or_create(&path)?;
                if let Some(key) = &settings.context_key {
                    secrets.context_key = key.clone();
                }
                let mut query = (**serve).clone();
                if query.password.is_none() && query.user == crate::db::roles::QUERY {
                    query.password = Some(secrets.query_password.clone());
                }
                let owner =
                    admin.as_ref().map(|a| a.with_dbname(&serve.dbname).with_user(OWNER, &secrets.owner_password));
                Ok(Self {
                    data_dir: settings.data_dir.clone(),
                    context_key: ContextKey::from_hex(&secrets.context_key)?,
                    lease: None,
                    admin: admin.as_deref().cloned(),
                    owner,
                    query,
                    secrets,
                })
            }
        }
    }

    pub fn endpoint(&self, role: Role) -> Result<&Endpoint> {
        match role {
            Role::Query => Ok(&self.query),
            Role::Owner => self.owner.as_ref().context(
                "no owner connection: set ZAVA_ADMIN_DATABASE_URL (or --admin-database-url) to an administrator \
                 account so zava-mcp can create its roles and schema",
            ),
        }
    }

    /// An administrator's connection to the served database (backups and restores read past row-level security).
    pub fn admin_on_served(&self) -> Result<Endpoint> {
        let admin = self.admin.as_ref().context(
            "backups need an administrator connection: set ZAVA_ADMIN_DATABASE_URL (or --admin-database-url)",
        )?;
        Ok(admin.with_dbname(&self.query.dbname))
    }

    /// `db backup`: one verified backup file in `dir` (`db::backup`).
    pub fn backup(&self, dir: &std::path::Path) -> Result<crate::db::backup::Backup> {
        crate::db::backup::backup(&self.admin_on_served()?, dir)
    }

    /// `db restore`: the backup's data in place of the current data, then the schema brought to this binary's
    /// version and the hardening applied again (a backup may be older than the binary). The query role's open
    /// connections are closed afterwards, so a running server's pool reconnects to the restored objects instead
    /// of keeping statements prepared against the dropped ones.
    pub async fn restore(&self, backup: &crate::db::backup::Backup) -> Result<()> {
        let admin = self.admin_on_served()?;
        // Roles and extensions first: the backup's objects refer to them.
        self.init().await?;
        let schemas: Vec<String> = admin
            .connect()
            .await?
            .query(
                "SELECT DISTINCT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let restore_from = admin.clone();
        let backup = backup.clone();
        tokio::task::spawn_blocking(move || crate::db::backup::restore(&restore_from, &backup, &schemas)).await??;
        self.init().await?;
        let client = admin.connect().await?;
        // A dump carries no planner statistics; without them the first queries would plan blind.
        client.batch_execute("ANALYZE").await.context("the restore committed, but ANALYZE failed")?;
        client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND usename = $2",
                &[&self.query.dbname, &self.query.user],
            )
            .await
            .context("the restore committed, but the query role's connections could not be closed")?;
        Ok(())
    }

    pub fn context_key(&self) -> &ContextKey {
        &self.context_key
    }

    /// Creates roles, database and schema (idempotent).
    pub async fn init(&self) -> Result<()> {
        let admin = self.admin.as_ref().context(
            "initialising an external database needs an administrator connection: set ZAVA_ADMIN_DATABASE_URL",
        )?;
        bootstrap::bootstrap(admin, &self.query.dbname, &self.secrets).await?;
        migrate::migrate(self.endpoint(Role::Owner)?, &self.secrets.context_key).await
    }

    /// An exclusive lock on `provision.lock` in the data directory, held while creating or seeding.
    pub async fn provisioning_turn(&self) -> Result<std::fs::File> {
        let path = self.data_dir.join("provision.lock");
        tokio::task::spawn_blocking(move || -> Result<std::fs::File> {
            let f = std::fs::File::options().create(true).truncate(false).write(true).open(&path)?;
            f.lock()?;
            Ok(f)
        })
        .await?
    }

    pub async fn status(&self) -> Result<DatabaseStatus> {
        let owner = self.endpoint(Role::Owner)?.connect().await?;
        status::read(&owner).await
    }

    /// Generates and loads a dataset, replacing the current one. `progress` draws a bar on the terminal.
    /// Then embeds every product's description with `embedder` (semantic search needs it).
    pub async fn seed(&self, options: GenOptions, embedder: &Embedder, progress: bool) -> Result<SeedReport> {
        let report = self.load_dataset(options, progress).await?;
        let pb = bar(progress, 0);
        embed_products(self.endpoint(Role::Owner)?, embedder, true, &pb).await?;
        pb.finish_and_clear();
        Ok(report)
    }

    /// Generates and loads a dataset, replacing the current one, without embedding it.
    async fn load_dataset(&self, options: GenOptions, progress: bool) -> Result<SeedReport> {
        if options.customers == 0 {
            bail!("--customers must be at least 1");
        }
        let started = Instant::now();
        let spinner = bar(progress, 1);
        spinner.set_message(format!("generating {} customers (seed {})", options.customers, options.seed));
        let (tables, sum) = tokio::task::spawn_blocking(move || {
            let data = Dataset::generate(options);
            let tables = encode(&data);
            let sum = checksum(&tables);
            (tables, sum)
        })
        .await?;
        spinner.finish_and_clear();
        let generate = started.elapsed();
        let rows = tables.iter().map(|t| t.rows).sum();
        let loading = Instant::now();
        let pb = bar(progress, load::steps(tables.len()));
        load::load(self.endpoint(Role::Owner)?, &tables, options, &sum, &pb).await?;
        pb.finish_and_clear();
        Ok(SeedReport { options, checksum: sum, rows, generate, load: loading.elapsed() })
    }

    /// Makes the database ready to serve: schema current and a dataset loaded (full scale when missing).
    /// Processes sharing the data directory take turns, so only the first one creates and seeds.
    /// Products missing an embedding from `embedder`'s model (a new model, an interrupted seed) are embedded now
    /// (`Vectors::Now`), or left to the caller (`Vectors::Later`: a server embeds them while it serves,
    /// `embed::products::complete`).
    pub async fn ensure_ready(
        &self,
        embedder: &Embedder,
        vectors: Vectors,
        progress: bool,
    ) -> Result<Option<SeedReport>> {
        if self.owner.is_none() {
            return Ok(None); // external, serve-only: the operator provisions it
        }
        let _turn = self.provisioning_turn().await?;
        self.init().await?;
        if self.status().await?.is_seeded() {
            let filled = crate::data::load::backfill_type_descriptions(self.endpoint(Role::Owner)?).await?;
            if filled > 0 {
                tracing::info!(types = filled, "added product type descriptions for search (schema upgrade)");
            }
            if vectors == Vectors::Now {
                let pb = bar(progress, 0);
                let n = embed_products(self.endpoint(Role::Owner)?, embedder, false, &pb).await?;
                pb.finish_and_clear();
                if n > 0 {
                    tracing::info!(products = n, model = embedder.model_id(), "embedded product descriptions");
                }
            }
            return Ok(None);
        }
        tracing::info!("no dataset yet: generating the full Zava dataset (once)");
        match vectors {
            Vectors::Now => self.seed(GenOptions::default(), embedder, progress).await.map(Some),
            Vectors::Later => self.load_dataset(GenOptions::default(), progress).await.map(Some),
        }
    }

    /// Gives the managed cluster back (it stops if nobody else uses it and nobody pinned it).
    pub fn close(self) -> Result<()> {
        match self.lease {
            Some(lease) => lease.release(),
            None => Ok(()),
        }
    }

    pub fn cluster(&self) -> Option<&ManagedCluster> {
        self.lease.as_ref().map(|l| l.cluster())
    }
}

/// When `Database::ensure_ready` embeds the products that lack a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vectors {
    /// Before it returns.
    Now,
    /// Not at all: the caller embeds them while it serves.
    Later,
}

fn bar(visible: bool, len: u64) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("valid progress template"),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}
