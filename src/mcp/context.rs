//! What a tool call needs from the request that carried it, whichever way the request came: through rmcp's
//! handler (stdio, and the HTTP requests `http::direct` leaves to rmcp) or through `http::direct`, which answers
//! plain stateless `tools/call` POSTs without rmcp's per-request service. The tools see only this, so both ways
//! run the same code and give the same answer.

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, MetaObject, RequestId};
use rmcp::service::{Peer, RequestContext};
use tokio_util::sync::CancellationToken;

use super::server::{QueryArgs, SchemaArgs, SearchArgs};
use crate::auth::Principal;

/// The request behind one tool call.
pub(crate) struct CallContext<'a> {
    /// The JSON-RPC request id (log lines, the audit record).
    pub(crate) id: &'a RequestId,
    /// The request's `_meta` (`traceparent`).
    pub(crate) meta: &'a MetaObject,
    /// The HTTP request's head (identity header, `traceparent`, `User-Agent`, the verified `Principal`); `None`
    /// over stdio.
    pub(crate) parts: Option<&'a http::request::Parts>,
    /// Cancelled when the call must stop: the client went away or cancelled it, or a drain ran out of time.
    pub(crate) ct: &'a CancellationToken,
    /// Over stdio, the session's peer (the client named in `initialize`, for the audit record).
    pub(crate) peer: Option<&'a Peer<RoleServer>>,
}

impl<'a> CallContext<'a> {
    /// The context rmcp's handler gives a tool.
    pub(crate) fn of(ctx: &'a RequestContext<RoleServer>) -> Self {
        let parts = ctx.extensions.get::<http::request::Parts>();
        Self { id: &ctx.id, meta: &ctx.meta, parts, ct: &ctx.ct, peer: parts.is_none().then_some(&ctx.peer) }
    }

    pub(crate) fn headers(&self) -> Option<&'a http::HeaderMap> {
        self.parts.map(|p| &p.headers)
    }

    /// The verified caller of an HTTP request with a bearer token (put there by `auth::http`).
    pub(crate) fn principal(&self) -> Option<&'a Principal> {
        self.parts.and_then(|p| p.extensions.get::<Principal>())
    }
}

/// One call of one of the server's tools, its arguments parsed.
#[derive(Debug)]
pub(crate) enum Invocation {
    Date,
    Schemas(SchemaArgs),
    Search(SearchArgs),
    Query(QueryArgs),
}

impl Invocation {
    /// The call of tool `name` with `arguments`, parsed exactly as rmcp parses them (absent arguments are an
    /// empty object; a tool without parameters ignores them): `None` for a tool this server does not have, the
    /// why the arguments do not fit.
    pub(crate) fn parse(name: &str, arguments: Option<JsonObject>) -> Option<Result<Invocation, BadArguments>> {
        fn args<T: serde::de::DeserializeOwned>(arguments: Option<JsonObject>) -> Result<T, BadArguments> {
            serde_json::from_value(serde_json::Value::Object(arguments.unwrap_or_default()))
                .map_err(|e| BadArguments(format!("failed to deserialize parameters: {e}")))
        }
        Some(match name {
            "get_current_utc_date" => Ok(Invocation::Date),
            "get_multiple_table_schemas" => args(arguments).map(Invocation::Schemas),
            "semantic_search_products" => args(arguments).map(Invocation::Search),
            "execute_sales_query" => args(arguments).map(Invocation::Query),
            _ => return None,
        })
    }
}

/// Arguments that do not fit a tool's parameters, in rmcp's words.
#[derive(Debug)]
pub(crate) struct BadArguments(String);

impl BadArguments {
    /// The tool error rmcp answers for them.
    pub(crate) fn into_result(self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(self.0)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: serde_json::Value) -> Option<JsonObject> {
        v.as_object().cloned()
    }

    #[test]
    fn arguments_are_parsed_as_rmcp_parses_them() {
        assert!(Invocation::parse("drop_tables", None).is_none());
        assert!(matches!(
            Invocation::parse("get_current_utc_date", object(json!({"x": 1}))),
            Some(Ok(Invocation::Date))
        ));
        let q = Invocation::parse("execute_sales_query", object(json!({"postgresql_query": "SELECT 1"})));
        let Some(Ok(Invocation::Query(QueryArgs { postgresql_query }))) = q else { panic!("{q:?}") };
        assert_eq!(postgresql_query, "SELECT 1");
        let Some(Err(missing)) = Invocation::parse("execute_sales_query", None) else { panic!("no error") };
        let missing = missing.into_result();
        assert_eq!(missing.is_error, Some(true));
        let text = &missing.content[0].as_text().unwrap().text;
        assert_eq!(text, "failed to deserialize parameters: missing field `postgresql_query`");
    }
}
