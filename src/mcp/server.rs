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
use tracing::Instrument;

use super::context::{CallContext, Invocation};
use super::output;
use super::record::CallNote;
use super::text;
use crate::app::App;
use crate::audit::AuditLog;
use crate::auth::scopes::{PII_READ, Scope, ToolScopes};
use crate::identity::{IDENTITY_HEADER, IdentityError};
use crate::search::SearchMode;
use crate::telemetry::series::InFlight;
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
    pub(super) app: Arc<App>,
    pub(super) identity: IdentitySource,
    /// Limits checked by the handler itself: over stdio, where no HTTP layer stands in front.
    throttle: Option<Arc<Throttle>>,
    /// Where each call's record goes (`--audit-log`).
    pub(super) audit: Option<Arc<AuditLog>>,
    /// Built once per process: the tools' descriptions and JSON schemas cost more than a light call to make, and
    /// in stateless HTTP a handler is made for every request.
    tool_router: Arc<ToolRouter<Self>>,
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
        static TOOLS: std::sync::OnceLock<Arc<ToolRouter<ZavaServer>>> = std::sync::OnceLock::new();
        let tool_router = TOOLS.get_or_init(|| Arc::new(Self::tool_router())).clone();
        Self { app, identity, throttle: None, audit: None, tool_router }
    }

    /// Checks `throttle` on every data tool call (stdio; over HTTP the limits are an HTTP layer, answered 429).
    pub fn with_throttle(mut self, throttle: Arc<Throttle>) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// Records every data tool call in `audit`.
    pub fn with_audit(mut self, audit: Option<Arc<AuditLog>>) -> Self {
        self.audit = audit;
        self
    }

    /// The caller's place under its limits, or the tool error that refuses the call.
    pub(super) async fn admit(&self, access: &Access) -> Result<Option<CallPermit>, CallToolResult> {
        let Some(throttle) = &self.throttle else { return Ok(None) };
        match throttle.admit(&Caller::tenant(&access.tenant)).await {
            Ok(permit) => Ok(Some(permit)),
            Err(refusal) => {
                crate::telemetry::series::rate_limited(refusal.limit_name());
                Err(output::error(refusal.to_string(), Map::new()))
            }
        }
    }

    /// The caller and what it may see. Over HTTP every `x-rls-user-id` value is looked at (the HTTP layer already
    /// refuses a repeated one; this does not rely on it). Header and stdio identities are unverified and hold every
    /// scope (loopback development, a person's own process), so they see personal data in clear; a token sees it
    /// only with `pii:read`.
    pub(super) fn access(&self, ctx: &CallContext<'_>) -> Result<Access, IdentityError> {
        match &self.identity {
            IdentitySource::Fixed(raw) => {
                Ok(Access::new(self.app.directory.resolve(raw.as_deref())?, PersonalData::Clear))
            }
            IdentitySource::Token(_) => match ctx.principal() {
                Some(p) => {
                    let pii = Scope::parse(PII_READ).is_ok_and(|s| p.granted.allows(&s));
                    Ok(Access::new(p.tenant.clone(), if pii { PersonalData::Clear } else { PersonalData::Masked }))
                }
                // `auth::http` lets no request through without one; never fall back to anything else.
                None => Err(IdentityError::Missing),
            },
            IdentitySource::Header => {
                let values = ctx.headers().map(|h| h.get_all(IDENTITY_HEADER));
                let texts = values.iter().flatten().map(|v| v.to_str().unwrap_or("<not text>"));
                Ok(Access::new(self.app.directory.resolve_all(texts)?, PersonalData::Clear))
            }
        }
    }

    /// Runs one tool call, however it arrived (rmcp's handler or `http::direct`): the data tools inside their
    /// span, timed, counted and recorded.
    pub(crate) async fn invoke(&self, invocation: Invocation, ctx: &CallContext<'_>) -> CallToolResult {
        let tool = match &invocation {
            Invocation::Date => {
                let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
                return CallToolResult::success(vec![ContentBlock::text(format!("Current UTC Date/Time: {now}"))]);
            }
            Invocation::Schemas(_) => "get_multiple_table_schemas",
            Invocation::Search(_) => "semantic_search_products",
            Invocation::Query(_) => "execute_sales_query",
        };
        let (started, _in_flight) = (std::time::Instant::now(), InFlight::start());
        let mut note = CallNote::default();
        let work = async {
            match invocation {
                Invocation::Date => unreachable!("answered above"),
                Invocation::Schemas(args) => self.get_multiple_table_schemas_call(args, ctx, &mut note).await,
                Invocation::Search(args) => self.semantic_search_products_call(args, ctx, &mut note).await,
                Invocation::Query(args) => self.execute_sales_query_call(args, ctx, &mut note).await,
            }
        };
        let result = work.instrument(call_span(tool, ctx)).await;
        self.record(tool, ctx, started, note, &result).await;
        result
    }
}

/// The span around one tool call: every log line inside it carries the JSON-RPC request id, the trace id, the
/// tool and (once resolved) the tenant's label. Exported as a trace, it is the server span `tools/call TOOL`,
/// continuing the caller's trace when the request carries `traceparent` (in `_meta`, else in its HTTP headers).
fn call_span(tool: &'static str, ctx: &CallContext<'_>) -> tracing::Span {
    let span = tracing::info_span!(
        "call",
        otel.name = format!("tools/call {tool}"),
        otel.kind = "server",
        request_id = %ctx.id,
        trace_id = tracing::field::Empty,
        tool,
        tenant = tracing::field::Empty,
    );
    crate::telemetry::traces::adopt(&span, crate::telemetry::traces::parent(ctx.meta, ctx.headers()));
    span
}

#[tool_router]
impl ZavaServer {
    #[tool(
        description = text::DATE,
        annotations(title = "Current UTC date", read_only_hint = true, idempotent_hint = false, open_world_hint = false)
    )]
    async fn get_current_utc_date(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        Ok(self.invoke(Invocation::Date, &CallContext::of(&ctx)).await)
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
        Ok(self.invoke(Invocation::Schemas(args), &CallContext::of(&ctx)).await)
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
        Ok(self.invoke(Invocation::Search(args), &CallContext::of(&ctx)).await)
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
        Ok(self.invoke(Invocation::Query(args), &CallContext::of(&ctx)).await)
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
        let principal = CallContext::of(&context).principal();
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
