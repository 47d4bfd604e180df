//! The flags of `serve` and `stdio`: limits, the listener, and how HTTP callers are identified.

use super::*;
use crate::auth::IdentityMode;
use crate::db::fair::FairShare;

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
    /// Most connections one tenant (a store, a region, head office) may hold at once, so that one flooding
    /// assistant leaves the rest of the pool to the others; its further calls wait for its own. Default: half
    /// the pool.
    #[arg(long, env = "ZAVA_TENANT_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub tenant_connections: Option<u32>,
    /// How long a call waits for a free connection before answering "busy", in milliseconds.
    #[arg(long, env = "ZAVA_POOL_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub pool_timeout_ms: u64,
    /// How long a tenant's table descriptions stay cached, in seconds.
    #[arg(long, env = "ZAVA_SCHEMA_CACHE_TTL_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub schema_cache_ttl_secs: u64,
}

impl ServerArgs {
    pub fn settings(&self) -> Result<AppSettings> {
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
            pool: PoolSettings { max_size: self.pool_size as usize, acquire_timeout: wait },
            share,
            schema_cache_ttl: Duration::from_secs(self.schema_cache_ttl_secs),
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
