//! The MCP server handler: the origin's tools with the same names, parameters and result shapes, each call
//! resolving its caller, then going through the guard and the tenant transaction.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CacheScope, CallToolResult, ContentBlock, Implementation, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ResultType, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Map;
use tokio_util::sync::CancellationToken;

use super::output;
use super::text;
use crate::app::App;
use crate::auth::Principal;
use crate::auth::scopes::{PII_READ, Scope, ToolScopes};
use crate::db::{introspect, query};
use crate::embed::error::EmbedError;
use crate::guard::ReadOnlySql;
use crate::identity::{IDENTITY_HEADER, IdentityError};
use crate::search::{self, SearchMode, SearchRequest, SearchStatement};
use crate::tenant::{Access, PersonalData};
use crate::throttle::{CallPermit, Caller, Throttle};

/// Where a call's identity comes from.
#[derive(Debug, Clone)]
pub enum IdentitySource {
    /// The `x-rls-user-id` header of each HTTP request (development mode).
    Header,
    /// The verified bearer token of each HTTP request (`auth::Principal`, put there by `auth::http`), and the
    /// scope each tool needs.
    Token(ToolScopes),
    /// One identity for the whole process (stdio: `ZAVA_RLS_USER_ID`), checked per call like a header.
    Fixed(Option<String>),
}

#[derive(Clone)]
pub struct ZavaServer {
    app: Arc<App>,
    identity: IdentitySource,
    /// Limits checked by the handler itself: over stdio, where no HTTP layer stands in front.
    throttle: Option<Arc<Throttle>>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SchemaArgs {
    #[schemars(description = text::TABLE_NAMES)]
    pub table_names: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueryArgs {
    #[schemars(description = text::QUERY_ARG)]
    pub postgresql_query: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    #[schemars(description = text::SEARCH_QUERY)]
    pub query_description: String,
    #[schemars(description = text::SEARCH_MAX_ROWS)]
    pub max_rows: Option<i64>,
    #[schemars(description = text::SEARCH_THRESHOLD)]
    pub similarity_threshold: Option<f64>,
    #[schemars(description = text::SEARCH_MODE)]
    pub mode: Option<SearchMode>,
}

impl ZavaServer {
    pub fn new(app: Arc<App>, identity: IdentitySource) -> Self {
        Self { app, identity, throttle: None, tool_router: Self::tool_router() }
    }

    /// Checks `throttle` on every data tool call (stdio; over HTTP the limits are an HTTP layer, answered 429).
    pub fn with_throttle(mut self, throttle: Arc<Throttle>) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// The caller's place under its limits, or the tool error that refuses the call.
    async fn admit(&self, access: &Access) -> Result<Option<CallPermit>, CallToolResult> {
        let Some(throttle) = &self.throttle else { return Ok(None) };
        match throttle.admit(&Caller::tenant(&access.tenant)).await {
            Ok(permit) => Ok(Some(permit)),
            Err(refusal) => Err(output::error(refusal.to_string(), Map::new())),
        }
    }

    /// The caller and what it may see. Over HTTP every `x-rls-user-id` value is looked at (the HTTP layer already
    /// refuses a repeated one; this does not rely on it). Header and stdio identities are unverified and hold every
    /// scope (loopback development, a person's own process), so they see personal data in clear; a token sees it
    /// only with `pii:read`.
    fn access(&self, ctx: &RequestContext<RoleServer>) -> Result<Access, IdentityError> {
        match &self.identity {
            IdentitySource::Fixed(raw) => {
                Ok(Access::new(self.app.directory.resolve(raw.as_deref())?, PersonalData::Clear))
            }
            IdentitySource::Token(_) => match self.principal(ctx) {
                Some(p) => {
                    let pii = Scope::parse(PII_READ).is_ok_and(|s| p.granted.allows(&s));
                    Ok(Access::new(p.tenant.clone(), if pii { PersonalData::Clear } else { PersonalData::Masked }))
                }
                // `auth::http` lets no request through without one; never fall back to anything else.
                None => Err(IdentityError::Missing),
            },
            IdentitySource::Header => {
                let values = ctx.extensions.get::<http::request::Parts>().map(|p| p.headers.get_all(IDENTITY_HEADER));
                let texts = values.iter().flatten().map(|v| v.to_str().unwrap_or("<not text>"));
                Ok(Access::new(self.app.directory.resolve_all(texts)?, PersonalData::Clear))
            }
        }
    }
}

impl ZavaServer {
    /// The verified caller of an HTTP request with a bearer token.
    fn principal<'a>(&self, ctx: &'a RequestContext<RoleServer>) -> Option<&'a Principal> {
        ctx.extensions.get::<http::request::Parts>().and_then(|p| p.extensions.get::<Principal>())
    }
}

fn refusal(e: &IdentityError) -> CallToolResult {
    output::error(e.to_string(), Map::new())
}

#[tool_router]
impl ZavaServer {
    #[tool(
        description = text::DATE,
        annotations(title = "Current UTC date", read_only_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    async fn get_current_utc_date(&self) -> String {
        format!("Current UTC Date/Time: {}", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"))
    }

    #[tool(
        description = text::SCHEMAS,
        annotations(title = "Table schemas", read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn get_multiple_table_schemas(
        &self,
        Parameters(args): Parameters<SchemaArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let access = match self.access(&ctx) {
            Ok(a) => a,
            Err(e) => return Ok(refusal(&e)),
        };
        let _permit = match self.admit(&access).await {
            Ok(p) => p,
            Err(refused) => return Ok(refused),
        };
        let timeout = self.app.settings.limits.statement_timeout;
        let pg = |e: tokio_postgres::Error| query::QueryError::from_pg(e, timeout);
        let described = self.in_tenant_tx(&access, &ctx.ct, async |tx| {
            let readable = introspect::readable_tables(tx).await.map_err(pg)?;
            let tables = match introspect::resolve(&args.table_names, &readable) {
                Ok(t) => t,
                Err(e) => return Ok(Err(e.to_string())),
            };
            let mut text = String::new();
            for table in &tables {
                text.push_str(&self.app.schemas.get_or_describe(&access.cache_key(), tx, table).await.map_err(pg)?);
            }
            Ok(Ok(text))
        });
        Ok(match described.await {
            Ok(Ok(text)) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Ok(Err(invalid)) => output::error(invalid, Map::new()),
            Err(e) => output::query_error(&e),
        })
    }

    #[tool(
        description = text::SEARCH,
        output_schema = output::query_output_schema(),
        annotations(title = "Search products", read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn semantic_search_products(
        &self,
        Parameters(args): Parameters<SearchArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let access = match self.access(&ctx) {
            Ok(a) => a,
            Err(e) => return Ok(refusal(&e)),
        };
        let _permit = match self.admit(&access).await {
            Ok(p) => p,
            Err(refused) => return Ok(refused),
        };
        let request =
            match SearchRequest::new(&args.query_description, args.max_rows, args.similarity_threshold, args.mode) {
                Ok(r) => r,
                Err(e) => return Ok(output::error(e.to_string(), Map::new())),
            };
        Ok(match self.search(&access, &request, &ctx.ct).await {
            Ok(result) => result,
            Err(e) => output::query_error(&e),
        })
    }

    #[tool(
        description = text::QUERY,
        output_schema = output::query_output_schema(),
        annotations(title = "Run a read-only sales query", read_only_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn execute_sales_query(
        &self,
        Parameters(args): Parameters<QueryArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let access = match self.access(&ctx) {
            Ok(a) => a,
            Err(e) => return Ok(refusal(&e)),
        };
        let _permit = match self.admit(&access).await {
            Ok(p) => p,
            Err(refused) => return Ok(refused),
        };
        let sql = match ReadOnlySql::parse(&args.postgresql_query, &self.app.functions) {
            Ok(sql) => sql,
            Err(e) => return Ok(output::guard_error(&e)),
        };
        let started = std::time::Instant::now();
        let result = query::run(&self.app.db, &self.app.sign(&access), &sql, self.app.settings.limits, &ctx.ct).await;
        let who = self.app.directory.describe(&access.tenant);
        Ok(match result {
            Ok(out) => {
                tracing::info!(tenant = %who, rows = out.rows.len(), ms = started.elapsed().as_millis() as u64, "query");
                output::query_result(&out)
            }
            Err(e) => {
                tracing::info!(tenant = %who, error = %e, "query failed");
                output::query_error(&e)
            }
        })
    }
}

impl ZavaServer {
    async fn search(
        &self,
        access: &Access,
        request: &SearchRequest,
        cancel: &CancellationToken,
    ) -> Result<CallToolResult, query::QueryError> {
        let embedding = match request.mode {
            SearchMode::Keyword => None,
            _ => match self.app.embeddings.embed(&request.text).await {
                Ok(v) => Some(v.as_ref().clone()),
                Err(e) => {
                    let cause = EmbedError::from_anyhow(&e);
                    tracing::warn!(error = %cause, "query embedding failed");
                    return Ok(output::semantic_search_unavailable(&cause));
                }
            },
        };
        let timeout = self.app.settings.limits.statement_timeout;
        let hits = self
            .app
            .db
            .in_tenant_tx(&self.app.sign(access), timeout, cancel, SearchStatement::prepare_cached, async |tx, s| {
                search::search(tx, &s, request, embedding).await.map_err(|e| query::QueryError::from_pg(e, timeout))
            })
            .await?;
        Ok(output::search_result(&hits, request.threshold_percent))
    }

    /// Runs `work` in the caller's read-only tenant transaction on a pooled connection (`db::call`).
    async fn in_tenant_tx<T>(
        &self,
        access: &Access,
        cancel: &CancellationToken,
        work: impl AsyncFnOnce(&tokio_postgres::Transaction<'_>) -> Result<T, query::QueryError>,
    ) -> Result<T, query::QueryError> {
        let timeout = self.app.settings.limits.statement_timeout;
        self.app
            .db
            .in_tenant_tx(&self.app.sign(access), timeout, cancel, async |_| Ok(()), async |tx, ()| work(tx).await)
            .await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for ZavaServer {
    /// The tools this caller may call: with a bearer token, those whose scope it carries (so the list differs
    /// by caller and is not cacheable across them).
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.tool_router.list_all();
        let principal = self.principal(&context);
        if let (Some(p), IdentitySource::Token(scopes)) = (principal, &self.identity) {
            tools.retain(|t| scopes.required(&t.name).is_none_or(|s| p.granted.allows(s)));
        }
        let hints = context.protocol_version().is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        let scope = if principal.is_some() { CacheScope::Private } else { CacheScope::Public };
        Ok(ListToolsResult {
            result_type: Some(ResultType::COMPLETE),
            tools,
            meta: None,
            next_cursor: None,
            ttl_ms: hints.then_some(0),
            cache_scope: hints.then_some(scope),
        })
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("zava-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(text::INSTRUCTIONS)
    }
}
