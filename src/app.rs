//! The running application, built once and shared by every transport: the query-role pool, the context key,
//! the directory of known managers, the SQL function policy, the schema cache and the limits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::db::CancelTarget;
use crate::db::call::Connections;
use crate::db::context::{CONTEXT_VALIDITY, ContextKey, SignedContext};
use crate::db::endpoint::Endpoint;
use crate::db::fair::FairShare;
use crate::db::introspect::SchemaCache;
use crate::db::pool::{self, PoolSettings};
use crate::db::query::Limits;
use crate::embed::products;
use crate::embed::provider::{Embedder, QueryEmbedder};
use crate::guard::{FunctionPolicy, ImplicitCall, Verdicts};
use crate::identity::Directory;
use crate::results::{ResultCache, ResultCacheSettings};
use crate::tenant::Access;

/// Tunables of a running server (from flags and environment, see `cli`).
#[derive(Debug, Clone)]
pub struct AppSettings {
    pub limits: Limits,
    pub pool: PoolSettings,
    /// Each tenant's share of the pool (`db::fair`).
    pub share: FairShare,
    pub schema_cache_ttl: Duration,
    /// Results kept for reuse (`results`); off unless the caller turns it on.
    pub results: ResultCacheSettings,
    /// The caller embeds the product catalog while the app serves (`embed::products::complete`): start without
    /// its vectors (searches answer by keyword until they are in) instead of refusing to.
    pub vectors_follow: bool,
}

impl Default for AppSettings {
    fn default() -> Self {
        let pool = PoolSettings::default();
        Self {
            limits: Limits::default(),
            pool,
            share: FairShare::half_of(pool.max_size, pool.acquire_timeout),
            schema_cache_ttl: Duration::from_secs(300),
            results: ResultCacheSettings::default(),
            vectors_follow: false,
        }
    }
}

pub struct App {
    /// The query role's pooled connections; every caller's SQL runs through [`Connections::in_tenant_tx`].
    pub db: Connections,
    pub key: ContextKey,
    pub directory: Directory,
    pub functions: FunctionPolicy,
    /// The guard's verdicts on what each tenant sent before (`guard::Verdicts`).
    pub verdicts: Verdicts,
    pub schemas: SchemaCache,
    /// Results of data-only reads, per access and data version (`results`), when on.
    pub results: Option<ResultCache>,
    /// Whether the catalog's vectors are in (semantic and hybrid search need them).
    pub vectors: Arc<products::CatalogVectors>,
    pub embeddings: QueryEmbedder,
    pub settings: AppSettings,
}

impl App {
    /// Connects as the query role and loads what every call needs. Refuses to serve with a role that could
    /// bypass row-level security (the origin's W1): a superuser, a BYPASSRLS role or the tables' owner.
    pub async fn start(
        query: &Endpoint,
        key: ContextKey,
        embedder: Embedder,
        settings: AppSettings,
    ) -> Result<Arc<App>> {
        let pool = pool::build(query, settings.pool, settings.limits.max_bytes)?;
        tokio::spawn(pool::adapt(pool.weak(), settings.pool));
        let client = pool.get().await.context("cannot connect to the database as the query role")?;
        let row = client
            .query_one(
                "SELECT r.rolsuper OR r.rolbypassrls
                        OR EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid
                                   AND c.relnamespace = 'retail'::regnamespace)
                 FROM pg_roles r WHERE r.rolname = current_user",
                &[],
            )
            .await
            .context("cannot inspect the query role")?;
        anyhow::ensure!(
            !row.get::<_, bool>(0),
            "refusing to serve as `{}`: it is a superuser, has BYPASSRLS or owns the retail tables, so row-level \
             security would not apply. Connect as the query role (zava_query); see `zava-mcp db url --role query`",
            query.user
        );
        let directory = Directory::load(&client).await.context("cannot read retail.stores")?;
        anyhow::ensure!(!directory.is_empty(), "retail.stores is empty: seed the database first (`zava-mcp db seed`)");
        let functions = load_function_policy(&client).await?;
        let ready = match products::stored_model(&client).await? {
            Some((model, dim)) if model == embedder.model_id() && dim as usize == embedder.dimension() => true,
            // This process embeds the catalog while it serves (`embed::products::complete`).
            _ if settings.vectors_follow => false,
            Some((model, dim)) => anyhow::bail!(
                "the product embeddings were made with {model} ({dim} dimensions) but the configured model is {} ({} \
                 dimensions): run `zava-mcp embed --rebuild`",
                embedder.model_id(),
                embedder.dimension()
            ),
            None => anyhow::bail!("no product embeddings yet: run `zava-mcp embed`"),
        };
        drop(client);
        let schemas = SchemaCache::new(settings.schema_cache_ttl, 10_000);
        let embeddings = QueryEmbedder::new(embedder, 10_000);
        let results = match &settings.results {
            r if r.enabled => {
                tracing::info!(
                    max_mb = r.max_bytes >> 20,
                    ttl_s = r.ttl.as_secs(),
                    shared = r.redis_url.is_some(),
                    "result cache on: data-only reads are served again until the data changes"
                );
                Some(ResultCache::start(r, crate::results::version::followed(query)).await?)
            }
            _ => None,
        };
        Ok(Arc::new(App {
            db: Connections::new(pool, settings.share, CancelTarget::new(query.config())),
            key,
            directory,
            functions,
            verdicts: Verdicts::default(),
            schemas,
            results,
            vectors: Arc::new(products::CatalogVectors::new(ready)),
            embeddings,
            settings,
        }))
    }

    pub fn sign(&self, access: &Access) -> SignedContext {
        SignedContext::sign(access, &self.key, CONTEXT_VALIDITY)
    }
}

/// Reads the functions and operators of the callable schemas, for the guard's catalog checks.
async fn load_function_policy(client: &tokio_postgres::Client) -> Result<FunctionPolicy> {
    let functions = client
        .query(
            "SELECT n.nspname::text, p.proname::text, p.provolatile::text FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname IN ('pg_catalog', 'public', 'retail')",
            &[],
        )
        .await
        .context("cannot read the function catalog")?;
    // What runs a function without naming it: operators, casts (cast functions and type input functions).
    let implicit = client
        .query(
            "SELECT 'o', o.oprname::text, p.proname::text, p.provolatile::text FROM pg_operator o
             JOIN pg_proc p ON p.oid = o.oprcode
             WHERE o.oprnamespace IN ('pg_catalog'::regnamespace, 'public'::regnamespace)
             UNION ALL
             SELECT 'c', t.typname::text, p.proname::text, p.provolatile::text FROM pg_cast c
             JOIN pg_type t ON t.oid = c.casttarget JOIN pg_proc p ON p.oid = c.castfunc
             UNION ALL
             SELECT 'c', t.typname::text, p.proname::text, p.provolatile::text FROM pg_type t
             JOIN pg_proc p ON p.oid = t.typinput",
            &[],
        )
        .await
        .context("cannot read the operator and cast catalog")?;
    let volatility = |r: &tokio_postgres::Row, i| r.get::<_, String>(i).chars().next().unwrap_or('v');
    Ok(FunctionPolicy::from_catalog(
        functions.iter().map(|r| (r.get(0), r.get(1), volatility(r, 2))),
        implicit.iter().map(|r| {
            let how = if r.get::<_, String>(0) == "o" { ImplicitCall::Operator } else { ImplicitCall::Cast };
            (how, r.get(1), r.get(2), volatility(r, 3))
        }),
    ))
}
