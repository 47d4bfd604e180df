//! The flags of `serve` and `stdio`: limits, the listener, and how HTTP callers are identified.

use super::*;
use crate::audit::{AuditLog, AuditSettings, FileSettings};
use crate::auth::IdentityMode;
use crate::db::fair::FairShare;
use crate::throttle::ThrottleSettings;
use crate::throttle::rate::RateLimit;

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
    /// Connections kept open when the server is quiet (opened at start, and again after the database restarts);
    /// the pool grows from there with load up to --pool-size.
    #[arg(long, env = "ZAVA_POOL_MIN_IDLE", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub pool_min_idle: u32,
    /// Close a pooled connection unused for this many seconds, while more than --pool-min-idle are open.
    #[arg(long, env = "ZAVA_POOL_IDLE_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub pool_idle_timeout_secs: u64,
    /// Most connections one tenant (a store, a region, head office) may hold at once, so that one flooding
    /// assistant leaves the rest of the pool to the others; its further calls wait for its own. Default: half
    /// the pool.
    #[arg(long, env = "ZAVA_TENANT_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub tenant_connections: Option<u32>,
    /// How long a call waits for a free connection before answering "busy", in milliseconds.
    #[arg(long, env = "ZAVA_POOL_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub pool_timeout_ms: u64,
    /// Tool calls one caller may make: `300/min` (a minute's worth may come as a burst), `10/s`, `5000/h`, or
    /// `off`; per role with `ROLE=RATE` (roles: store_manager, regional_manager, head_office), comma-separated,
    /// later entries winning. A caller is a token's subject, an API key, or a header identity.
    #[arg(long, env = "ZAVA_RATE_LIMIT", value_delimiter = ',', value_name = "[ROLE=]RATE", default_value = "300/min")]
    pub rate_limit: Vec<String>,
    /// Tool calls one caller may run at the same time, per role as for --rate-limit (e.g. `8,head_office=16`).
    #[arg(long, env = "ZAVA_MAX_CONCURRENT", value_delimiter = ',', value_name = "[ROLE=]N", default_value = "8")]
    pub max_concurrent: Vec<String>,
    /// Redis shared by the replicas (`redis://[:password@]host:6379/0`): the limits' counts and the kept
    /// results (see --result-cache-local). Without it each process counts and keeps for itself.
    #[arg(long, env = "ZAVA_REDIS_URL", value_name = "URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Append one JSON line per tool call to this file (who, which stores, which tool, the SQL's fingerprint,
    /// rows, bytes, duration, outcome); never tokens, keys or the SQL's values. Rotated by size.
    #[arg(long, env = "ZAVA_AUDIT_LOG", value_name = "PATH")]
    pub audit_log: Option<std::path::PathBuf>,
    /// Rotate the audit log when it reaches this many megabytes.
    #[arg(long, env = "ZAVA_AUDIT_MAX_MB", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub audit_max_mb: u64,
    /// How many rotated audit logs to keep (PATH.1 … PATH.N).
    #[arg(long, env = "ZAVA_AUDIT_KEEP", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub audit_keep: u64,
    /// Record a SHA-256 of each token's subject instead of the subject itself.
    #[arg(long, env = "ZAVA_AUDIT_HASH_SUBJECTS")]
    pub audit_hash_subjects: bool,
    /// How long a tenant's table descriptions stay cached, in seconds.
    #[arg(long, env = "ZAVA_SCHEMA_CACHE_TTL_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub schema_cache_ttl_secs: u64,
    /// Serve a query's result again, without running it, to the same caller asking the same SQL while the data
    /// is unchanged (every write moves the data version on; see ARCHITECTURE.md). Only queries whose result
    /// depends on the data alone are kept: not those reading the clock (now(), CURRENT_DATE, 'today'), chance,
    /// the catalog or a sample, nor EXPLAIN. `auto`: on for the managed database, off for DATABASE_URL (turn it
    /// on there only if every writer goes through zava-mcp's version triggers).
    #[arg(long, env = "ZAVA_RESULT_CACHE", value_enum, default_value = "auto", value_name = "auto|on|off")]
    pub result_cache: crate::results::CacheMode,
    /// How long a kept result may be served at most, in seconds, whatever the data version says.
    #[arg(long, env = "ZAVA_RESULT_CACHE_TTL_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub result_cache_ttl_secs: u64,
    /// Most memory the kept results take, in megabytes.
    #[arg(long, env = "ZAVA_RESULT_CACHE_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub result_cache_mb: u64,
    /// Keep results in this process only, even with --redis-url (which otherwise shares them between replicas:
    /// a question one replica answered, the others answer from Redis, under the same keys and time to live).
    #[arg(long, env = "ZAVA_RESULT_CACHE_LOCAL")]
    pub result_cache_local: bool,
}

impl ServerArgs {
    /// The audit log, opened (a path that cannot be written stops the start).
    pub fn audit(&self) -> Result<Option<std::sync::Arc<AuditLog>>> {
        let Some(path) = &self.audit_log else { return Ok(None) };
        let file =
            FileSettings { path: path.clone(), max_bytes: self.audit_max_mb << 20, keep: self.audit_keep as usize };
        Ok(Some(AuditLog::open(AuditSettings { file, hash_subjects: self.audit_hash_subjects })?))
    }

    /// The per-caller limits, with each bad entry named.
    pub fn throttle(&self) -> Result<ThrottleSettings> {
        let defaults = ThrottleSettings::default();
        let rate = defaults
            .rate
            .with_entries(&self.rate_limit, |v| match v.trim() {
                "off" => Ok(None),
                v => v.parse::<RateLimit>().map(Some),
            })
            .map_err(|e| anyhow::anyhow!("--rate-limit: {e}"))?;
        let concurrent = defaults
            .concurrent
            .with_entries(&self.max_concurrent, |v| match v.trim().parse::<u32>() {
                Ok(n @ 1..=10_000) => Ok(n),
                _ => Err(format!("`{}` is not a number of calls from 1 to 10000", v.trim())),
            })
            .map_err(|e| anyhow::anyhow!("--max-concurrent: {e}"))?;
        let redis_url = self.shared_redis_url();
        // A dead replica's running calls stop counting once no call of theirs could still be running.
        let longest_call = Duration::from_millis(self.statement_timeout_ms) + Duration::from_secs(60);
        Ok(ThrottleSettings { rate, concurrent, redis_url, longest_call })
    }

    /// The Redis URL replicas share, if one is given.
    fn shared_redis_url(&self) -> Option<String> {
        self.redis_url.as_deref().map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned)
    }

    /// The server's settings, for the managed database (`managed`) or an external one.
    pub fn settings(&self, managed: bool) -> Result<AppSettings> {
        let wait = Duration::from_millis(self.pool_timeout_ms);
        let share = match self.tenant_connections {
            Some(n) if n > self.pool_size => bail!(
                "--tenant-connections {n} is more than the pool's {} connections (--pool-size); give at most {}",
                self.pool_size,
                self.pool_size
            ),
            Some(n) => FairShare { per_tenant: n as usize, wait },
            None => FairShare::half_of(self.pool_size as usize, wait),
        };
        Ok(AppSettings {
            limits: Limits {
                max_rows: self.max_rows as usize,
                max_bytes: self.max_result_bytes as usize,
                statement_timeout: Duration::from_millis(self.statement_timeout_ms),
            },
            pool: PoolSettings {
                max_size: self.pool_size as usize,
                acquire_timeout: wait,
                min_idle: (self.pool_min_idle as usize).min(self.pool_size as usize),
                idle_timeout: Duration::from_secs(self.pool_idle_timeout_secs),
            },
            share,
            schema_cache_ttl: Duration::from_secs(self.schema_cache_ttl_secs),
            results: crate::results::ResultCacheSettings {
                enabled: self.result_cache.enabled(managed),
                ttl: Duration::from_secs(self.result_cache_ttl_secs),
                max_bytes: self.result_cache_mb << 20,
                redis_url: self.shared_redis_url().filter(|_| !self.result_cache_local),
            },
            vectors_follow: false,
        })
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Address to listen on.
    #[arg(long, env = "ZAVA_HTTP", default_value = "127.0.0.1:8000", value_name = "ADDR")]
    pub http: std::net::SocketAddr,
    /// How callers are identified: `header` trusts x-rls-user-id as sent (loopback development); `jwt` requires
    /// OAuth bearer tokens from an identity provider (--jwt-issuer) or, without one, development tokens from
    /// `zava-mcp token`.
    #[arg(long, env = "ZAVA_IDENTITY", value_enum, value_delimiter = ',', default_value = "header")]
    pub identity: Vec<IdentityMode>,
    #[command(flatten)]
    pub jwt: super::auth_args::JwtArgs,
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
    /// Back up the served database this often (`24h`, `30m`, `7d`) into DATA_DIR/backups (or --backup-dir),
    /// each backup verified and kept with its SHA-256. Needs an administrator connection for an external server.
    #[arg(long, env = "ZAVA_BACKUP_EVERY", value_name = "INTERVAL")]
    pub backup_every: Option<crate::db::backup::Every>,
    /// How many scheduled backups to keep (the oldest are deleted after each new one).
    #[arg(long, env = "ZAVA_BACKUP_KEEP", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub backup_keep: u32,
    /// Directory for scheduled backups (default: DATA_DIR/backups).
    #[arg(long, env = "ZAVA_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<std::path::PathBuf>,
    /// On SIGTERM or Ctrl-C, how many seconds the calls in flight get to finish before they are cancelled (new
    /// connections are refused at once, and /health/ready answers 503).
    #[arg(long, env = "ZAVA_DRAIN_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub drain_timeout_secs: u64,
    /// Where to serve Prometheus metrics: `same` (at /metrics on the MCP listener), an address of its own such as
    /// 127.0.0.1:9464 (with /health/live and /health/ready beside it, and /metrics then off the MCP listener:
    /// use this when the MCP port is public), or `off`.
    #[arg(long, env = "ZAVA_METRICS", default_value = "same", value_name = "same|ADDR|off")]
    pub metrics: crate::http::MetricsListener,
    /// Who answers plain tool calls: `direct` (the server itself, for a stateless `tools/call` whose every rule
    /// it applies as rmcp would; anything else still goes to rmcp) or `rmcp` (every request through rmcp's generic
    /// stateless handler, a quarter more of the server's CPU a call; for comparison, or should the direct lane misbehave).
    #[arg(long, env = "ZAVA_CALL_LANE", default_value = "direct", value_name = "direct|rmcp")]
    pub call_lane: crate::http::CallLane,
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
