//! `serve` (Streamable HTTP) and `stdio`.

use super::*;
use crate::auth::IdentityMode;
use crate::provision::Vectors;

/// What `serve`'s flags decide before anything starts, checked together (also by `config check`).
pub(super) struct ServePlan {
    pub http: HttpSettings,
    /// Bearer tokens are verified (`--identity jwt`).
    pub jwt: bool,
    /// Callers bring a token or an API key (not a trusted header).
    pub tokens: bool,
}

impl ServePlan {
    pub fn of(args: &ServeArgs) -> Result<ServePlan> {
        let http = HttpSettings {
            addr: args.http,
            allowed_hosts: args.allowed_hosts.clone(),
            allowed_origins: args.allowed_origins.iter().filter(|o| !o.trim().is_empty()).cloned().collect(),
            max_body_bytes: args.max_body_bytes as usize,
            metrics: args.metrics,
            call_lane: args.call_lane,
            drain_timeout: std::time::Duration::from_secs(args.drain_timeout_secs),
            cors_origins: args.cors_origins.iter().filter(|o| !o.trim().is_empty()).cloned().collect(),
            ..HttpSettings::default()
        };
        let modes: std::collections::BTreeSet<IdentityMode> = args.identity.iter().copied().collect();
        if modes.contains(&IdentityMode::Header) && modes.len() > 1 {
            bail!(
                "--identity header cannot be combined with jwt or api-key: anyone could skip the token by sending \
                 the header"
            );
        }
        let (jwt, api_keys) = (modes.contains(&IdentityMode::Jwt), modes.contains(&IdentityMode::ApiKey));
        if api_keys && args.jwt.api_keys_file.is_none() {
            bail!("--identity api-key needs --api-keys-file (make keys with `zava-mcp api-key`)");
        }
        let tokens = jwt || api_keys;
        if !args.http.ip().is_loopback() && !tokens {
            if !args.allow_remote_header_identity {
                bail!(
                    "refusing to serve header identities on {}: anyone who can reach it could claim any store. \
                     Listen on 127.0.0.1, use --identity jwt, or pass --allow-remote-header-identity if a proxy \
                     in front sets x-rls-user-id itself",
                    args.http
                );
            }
            tracing::warn!(addr = %args.http, "serving trusted x-rls-user-id headers on a non-loopback address");
        }
        if tokens {
            args.jwt.resource(args.http)?;
            args.jwt.tool_scopes()?;
        }
        if jwt {
            args.jwt.settings()?;
        }
        Ok(ServePlan { http, jwt, tokens })
    }
}

pub(super) async fn serve(settings: &DbSettings, args: ServeArgs) -> Result<()> {
    let ServePlan { http, jwt, tokens } = ServePlan::of(&args)?;
    let embedder = embedder(&args.embedding).await?;
    let shutdown = CancellationToken::new();
    stop_on_signal(shutdown.clone())?;
    // Listening first: while the database is not reachable yet the probes answer (live, not ready and why).
    let starting = crate::http::Starting::default();
    let server = crate::http::Server::bind(&http, shutdown.clone(), starting.clone()).await?;
    let opened = tokio::select! {
        opened = open_with_retries(settings, &args, &embedder, &starting, server.addr()) => opened,
        () = shutdown.cancelled() => {
            server.stop().await;
            return Ok(());
        }
    };
    let (db, app) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            server.stop().await;
            return Err(e);
        }
    };
    let served = async {
        let mut http = http;
        http.throttle = Some(crate::throttle::Throttle::start(args.server.throttle()?).await?);
        http.audit = args.server.audit()?;
        if tokens {
            let auth = args.jwt.authenticator(args.http, jwt, app.directory.clone(), &settings.data_dir).await?;
            http.auth = Some(std::sync::Arc::new(auth));
        }
        let identity = match &http.auth {
            Some(auth) => format!("bearer tokens for {}", auth.resource.as_str()),
            None => "x-rls-user-id header".to_owned(),
        };
        if let (Some(cluster), Ok(query)) = (db.cluster(), db.endpoint(Role::Query)) {
            let supervised = crate::db::cluster::supervise::supervise(cluster.clone(), query.port, shutdown.clone());
            tokio::spawn(supervised);
        }
        if let Some(every) = args.backup_every {
            let target = db.admin_on_served()?;
            let dir = args.backup_dir.clone().unwrap_or_else(|| settings.data_dir.join("backups"));
            tracing::info!(every = ?every.0, keep = args.backup_keep, dir = %dir.display(), "scheduled backups on");
            let keep = args.backup_keep as usize;
            tokio::spawn(crate::db::backup::run_scheduled(target, dir, every, keep, shutdown.clone()));
        }
        let stores = app.directory.len();
        server
            .serve(app, &http, |addr| {
                tracing::info!(stores, "serving MCP on http://{addr}/mcp (identity: {identity}); press Ctrl-C to stop");
            })
            .await
    };
    let result = served.await;
    shutdown.cancel();
    let closed = tokio::task::spawn_blocking(move || db.close()).await?;
    result?;
    closed
}

/// The least and most time between two attempts to reach the database at start-up: a database that comes
/// back is noticed within 10 s, and a long outage costs one connection attempt every 10 s.
const FIRST_RETRY: std::time::Duration = std::time::Duration::from_millis(500);
const LONGEST_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens the database (starting the managed cluster, provisioning and seeding on first use) and the app over it,
/// trying again with capped exponential backoff while the database is unreachable for now (an external server
/// still starting, restarting or down); any other failure stops the start.
async fn open_with_retries(
    settings: &DbSettings,
    args: &ServeArgs,
    embedder: &Embedder,
    starting: &crate::http::Starting,
    addr: std::net::SocketAddr,
) -> Result<(Database, std::sync::Arc<App>)> {
    let mut wait = FIRST_RETRY;
    loop {
        let attempt = async {
            let s = settings.clone();
            let db = tokio::task::spawn_blocking(move || Database::open(&s)).await??;
            let started = async {
                if let Some(report) = db.ensure_ready(embedder, Vectors::Later, true).await? {
                    print_seed(&report);
                }
                let query = db.endpoint(Role::Query)?;
                let settings = server_settings(&db, &args.server)?;
                let app = App::start(query, db.context_key().clone(), embedder.clone(), settings).await?;
                embed_while_serving(&db, embedder, &app)?;
                Ok(app)
            };
            match started.await {
                Ok(app) => Ok((db, app)),
                Err(e) => {
                    let _ = tokio::task::spawn_blocking(move || db.close()).await;
                    Err(e)
                }
            }
        };
        match attempt.await {
            Ok(opened) => return Ok(opened),
            Err(e) if crate::db::transient::is_transient(&e) => {
                let reason = format!("{e:#}");
                starting.failed(&reason, wait);
                tracing::warn!(
                    retry_in_s = wait.as_secs_f64(),
                    "the database is not reachable yet ({reason}); /health/ready on http://{addr} says so; trying again"
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_RETRY);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The app's settings for this database: the result cache's `auto` follows whether it is managed, and the
/// catalog is embedded while serving where zava-mcp provisions the database (it has the owner's connection).
fn server_settings(db: &Database, args: &ServerArgs) -> Result<AppSettings> {
    let mut settings = args.settings(db.cluster().is_some())?;
    settings.vectors_follow = db.endpoint(Role::Owner).is_ok();
    Ok(settings)
}

/// Embeds, in the background, the catalog products that lack a vector, where zava-mcp provisions the database:
/// the server answers meanwhile, searching by keyword until the vectors are in.
fn embed_while_serving(db: &Database, embedder: &Embedder, app: &std::sync::Arc<App>) -> Result<()> {
    if let Ok(owner) = db.endpoint(Role::Owner) {
        let (owner, embedder, vectors) = (owner.clone(), embedder.clone(), app.vectors.clone());
        // Driven on a thread of the blocking pool: the borrows in the embedding stream make its future unfit
        // for `tokio::spawn` (not provably Send for every lifetime).
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(crate::embed::products::complete(owner, embedder, vectors));
        });
    }
    Ok(())
}

pub(super) async fn stdio(settings: &DbSettings, args: StdioArgs) -> Result<()> {
    use rmcp::ServiceExt;
    let embedder = embedder(&args.embedding).await?;
    with_db(settings, async |db| {
        // stdout carries the protocol: nothing else may be printed there.
        if let Some(r) = db.ensure_ready(&embedder, Vectors::Later, false).await? {
            tracing::info!(rows = r.rows, "seeded the database");
        }
        let settings = server_settings(db, &args.server)?;
        let app = App::start(db.endpoint(Role::Query)?, db.context_key().clone(), embedder.clone(), settings).await?;
        embed_while_serving(db, &embedder, &app)?;
        match app.directory.resolve(args.rls_user_id.as_deref()) {
            Ok(t) => tracing::info!(tenant = %app.directory.describe(&t), "serving MCP on stdio"),
            Err(e) => tracing::warn!("{e}; every tool call that reads data will be refused"),
        }
        let throttle = crate::throttle::Throttle::start(args.server.throttle()?).await?;
        let server = ZavaServer::new(app, IdentitySource::Fixed(args.rls_user_id.clone()))
            .with_throttle(throttle)
            .with_audit(args.server.audit()?);
        let running = server.serve(rmcp::transport::stdio()).await.context("cannot start the stdio transport")?;
        running.waiting().await.context("the stdio session failed")?;
        Ok(())
    })
    .await
}
