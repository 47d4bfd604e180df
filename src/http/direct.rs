//! The direct lane: a plain stateless `tools/call` POST answered without rmcp's per-request machinery.
//!
//! In stateless Streamable HTTP rmcp serves every request by making a service for it, spawning a task to run it
//! and another for the handler, passing the message through channels and a one-shot transport, and parsing the
//! body again; on the light mix that was 31% of the server's CPU, more than the tools and their database calls
//! together. A `tools/call` needs none of it: no session, no handshake, one request and one answer. So the body
//! `hygiene` has already parsed (into rmcp's own message types) is handed here, and when the request is one whose
//! every rule this lane knows, the tool runs at once through [`ZavaServer::invoke`], the same code rmcp's handler
//! calls, and its result goes out in rmcp's own answer types, shaped for the request's protocol version as rmcp
//! shapes it. Everything else goes on to rmcp unchanged: other methods, a tool this server does not have (rmcp's
//! error), the 2026-07-28 per-request lifecycle (`_meta` protocol fields, standard headers), input responses, an
//! `Accept` that rmcp would refuse or that weighs its media types. The differential test in `tests/it/direct.rs`
//! sends the same calls both ways and compares the answers.
//!
//! rmcp's second-layer Host, Origin and body-size checks do not run for a direct call: it has passed `hygiene`'s
//! exact ones, which are stricter. `--call-lane rmcp` turns the lane off (for comparison, or as an escape hatch).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    CallToolRequestParams, ClientJsonRpcMessage, ClientRequest, JsonRpcRequest, ProtocolVersion, RequestId,
    RequestMetaObject, ServerJsonRpcMessage, ServerResult,
};
use tokio_util::sync::CancellationToken;

use crate::mcp::context::{CallContext, Invocation};
use crate::mcp::server::ZavaServer;

/// How `/mcp` answers `tools/call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CallLane {
    /// Plain stateless calls answered by the server itself, everything else by rmcp.
    #[default]
    Direct,
    /// Every request through rmcp's generic stateless handler.
    Rmcp,
}

/// A single JSON-RPC `tools/call` request, parsed by `hygiene` (an extension of the request).
#[derive(Debug, Clone)]
pub(crate) struct ParsedCall {
    pub(crate) id: RequestId,
    /// The params' `_meta` (which rmcp's parser keeps apart from the other params).
    pub(crate) meta: RequestMetaObject,
    pub(crate) params: CallToolRequestParams,
}

impl ParsedCall {
    /// The call in `message`, when it is a `tools/call` request.
    pub(crate) fn of(message: ClientJsonRpcMessage) -> Option<ParsedCall> {
        let ClientJsonRpcMessage::Request(JsonRpcRequest { id, request: ClientRequest::CallToolRequest(call), .. }) =
            message
        else {
            return None;
        };
        let mut call = call;
        // rmcp's parser moves the params' `_meta` into the request's extensions.
        let meta = call.extensions.remove::<RequestMetaObject>().unwrap_or_default();
        Some(ParsedCall { id, meta, params: call.params })
    }
}

/// What the lane needs: the handler (made once, not per request) and the token that cancels calls at the end of a
/// drain.
pub(crate) struct Lane {
    pub(crate) server: ZavaServer,
    pub(crate) calls: CancellationToken,
}

/// The innermost `/mcp` layer: answers a direct call, or passes the request on to rmcp.
pub(crate) async fn answer(State(lane): State<Arc<Lane>>, mut req: Request, next: Next) -> Response {
    let Some(call) = req.extensions_mut().remove::<ParsedCall>() else {
        return next.run(req).await;
    };
    if !eligible(req.headers(), &call) {
        crate::telemetry::series::call_lane("rmcp");
        return next.run(req).await;
    }
    let ParsedCall { id, meta, params } = call;
    let Some(invocation) = Invocation::parse(&params.name, params.arguments) else {
        crate::telemetry::series::call_lane("rmcp");
        return next.run(req).await;
    };
    crate::telemetry::series::call_lane("direct");
    let (parts, _body) = req.into_parts();
    // Cancelled when the drain runs out of time, or when this future is dropped (the client went away).
    let ct = lane.calls.child_token();
    let _disconnect = ct.clone().drop_guard();
    let ctx = CallContext { id: &id, meta: &meta, parts: Some(&parts), ct: &ct, peer: None };
    let mut result = ServerResult::CallToolResult(match invocation {
        Ok(invocation) => lane.server.invoke(invocation, &ctx).await,
        Err(bad_arguments) => bad_arguments.into_result(),
    });
    // The shape rmcp gives peers before 2026-07-28 (the only ones this lane serves).
    result.strip_result_type_for_legacy_peer();
    result.strip_non_object_output_for_legacy_peer();
    match serde_json::to_vec(&ServerJsonRpcMessage::response(result, id)) {
        Ok(body) => {
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "could not serialise a tool result");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Whether every rule rmcp applies to this request is one this lane applies too.
fn eligible(headers: &HeaderMap, call: &ParsedCall) -> bool {
    let legacy_version = match headers.get("mcp-protocol-version").map(|v| v.to_str()) {
        None => true,
        // `hygiene` has refused unknown versions.
        Some(Ok(v)) => v < ProtocolVersion::V_2026_07_28.as_str(),
        Some(Err(_)) => false,
    };
    let lifecycle_meta = call.meta.0.0.keys().any(|k| k.starts_with("io.modelcontextprotocol/"));
    legacy_version
        && !lifecycle_meta
        && call.params.input_responses.is_none()
        && call.params.request_state.is_none()
        && accepts_json_and_sse(headers)
}

/// `Accept` names both `application/json` and `text/event-stream` (rmcp answers 406 otherwise). A media range
/// with a weight or a wildcard is left to rmcp's own negotiation.
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(text) = value.to_str() else { return false };
        for range in text.split(',') {
            let mut pieces = range.split(';');
            let essence = pieces.next().unwrap_or("").trim();
            if pieces.next().is_some() {
                return false;
            }
            json |= essence.eq_ignore_ascii_case("application/json");
            sse |= essence.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::hygiene::tests::headers;
    use serde_json::json;

    /// A `tools/call` with `params`, parsed as `hygiene` parses it.
    fn params(params: serde_json::Value) -> ParsedCall {
        let message = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
        ParsedCall::of(serde_json::from_value(message).unwrap()).unwrap()
    }

    const BOTH: (&str, &str) = ("accept", "application/json, text/event-stream");

    #[test]
    fn only_requests_whose_rules_the_lane_knows_are_direct() {
        let plain = params(json!({"name": "execute_sales_query", "arguments": {}}));
        assert!(eligible(&headers(&[BOTH]), &plain));
        assert!(eligible(&headers(&[BOTH, ("mcp-protocol-version", "2025-11-25")]), &plain));
        assert!(!eligible(&headers(&[BOTH, ("mcp-protocol-version", "2026-07-28")]), &plain));
        assert!(!eligible(&headers(&[("accept", "application/json")]), &plain));
        assert!(!eligible(&headers(&[("accept", "application/json, text/event-stream;q=0")]), &plain));
        assert!(!eligible(&headers(&[("accept", "*/*")]), &plain));
        assert!(eligible(&headers(&[("accept", "application/json"), ("accept", "text/event-stream")]), &plain));
        let versioned =
            params(json!({"name": "x", "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}));
        assert!(!eligible(&headers(&[BOTH]), &versioned));
        let traced = params(
            json!({"name": "x", "_meta": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}),
        );
        assert!(eligible(&headers(&[BOTH]), &traced));
        assert!(!eligible(&headers(&[BOTH]), &params(json!({"name": "x", "requestState": "s"}))));
    }
}
