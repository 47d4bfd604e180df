//! Request hygiene: the checks every request passes before rmcp (or a health probe) sees it.
//!
//! This exists because the layers below are lenient where an attacker needs them to be. rmcp compares `Host` and
//! `Origin` loosely (an unparsable port counts as none, an entry without a port matches any port) and looks at
//! the first of repeated headers only; hyper accepts an absolute-form target naming another host and a
//! `Transfer-Encoding` whose codings it then ignores; rmcp answers a broken chunked body with 500 and a body
//! that is not JSON with 415; `x-rls-user-id` read with `get` hides a second value. So, in front of them:
//!
//! - [`check_request`] (every route): headers that may appear once appear at most once; `Host` is present and
//!   well-formed; an absolute-form target names the same authority as `Host`; `Transfer-Encoding` is `chunked`
//!   or absent (else 501) and `Content-Encoding` `identity` or absent (else 415).
//! - [`guard_mcp`] (`/mcp`): `Host` and `Origin` exactly in the allow-lists (403), a known
//!   `MCP-Protocol-Version`, the body read here within the size limit (413) and the body read timeout (408),
//!   read errors answered 400, and a body that is not one JSON-RPC message answered 400.
//!
//! rmcp's own Host, Origin and size checks stay on behind these, as a second layer, for the requests `direct` leaves
//! to rmcp. Every refusal has a
//! JSON-RPC error body (`id` null) and closes the connection, whose framing can no longer be trusted.

use crate::auth::http::CalledTool;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use http_body_util::BodyExt;
use rmcp::model::{ClientJsonRpcMessage, ProtocolVersion};
use serde_json::json;

use super::authority::{AllowedHosts, AllowedOrigins, Authority, Origin};
use super::direct::ParsedCall;

/// Headers a request may carry at most once, as they are spelled in refusals.
const SINGLE_HEADERS: [&str; 10] = [
    "Host",
    "Origin",
    "Authorization",
    "x-rls-user-id",
    "MCP-Protocol-Version",
    "Content-Type",
    "Content-Length",
    "Mcp-Session-Id",
    "Mcp-Method",
    "Mcp-Name",
];

/// JSON-RPC: the request is not a valid request object (also used for HTTP-level refusals, as rmcp does).
const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC: the body is not JSON at all.
const PARSE_ERROR: i32 = -32700;

/// What `/mcp` accepts: built once per server from its settings and the port it listens on.
#[derive(Debug)]
pub(crate) struct Policy {
    pub(crate) hosts: AllowedHosts,
    pub(crate) origins: AllowedOrigins,
    pub(crate) max_body_bytes: usize,
    pub(crate) body_read_timeout: Duration,
}

/// Why a request is refused: answered with a JSON-RPC error body, and the connection is closed after it.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    code: i32,
    message: String,
}

fn refuse(status: StatusCode, code: i32, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

fn bad_request(message: impl Into<String>) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, INVALID_REQUEST, message)
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// Every route: repeated headers, `Host` syntax, absolute-form targets and transfer and content codings.
pub(crate) async fn check_request(req: Request, next: Next) -> Response {
    match check_framing(&req) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.into_response(),
    }
}

fn check_framing(req: &Request) -> Result<(), Refusal> {
    let headers = req.headers();
    for name in SINGLE_HEADERS {
        let n = headers.get_all(name).iter().count();
        if n > 1 {
            return Err(bad_request(format!("Bad Request: the {name} header appears {n} times; send it once")));
        }
    }
    let host = request_host(headers)?;
    if let Some(target) = req.uri().authority() {
        // Absolute form (`POST http://host/mcp`): it names the host the request is for, so it must be this one.
        let scheme_ok = matches!(req.uri().scheme_str(), Some("http" | "https"));
        let same = Authority::parse(target.as_str()).is_ok_and(|t| t == host);
        if !scheme_ok || !same {
            return Err(bad_request(format!(
                "Bad Request: the request target names `{target}`, which is not the Host header's `{host}`"
            )));
        }
    }
    check_codings(headers)
}

/// The one `Host` header, parsed strictly.
fn request_host(headers: &HeaderMap) -> Result<Authority, Refusal> {
    let value = headers.get(header::HOST).ok_or_else(|| bad_request("Bad Request: the Host header is missing"))?;
    let text = value.to_str().map_err(|_| bad_request("Bad Request: the Host header is not ASCII text"))?;
    Authority::parse(text).map_err(|why| bad_request(format!("Bad Request: the Host header is malformed: {why}")))
}

/// Codings of a list-valued header: comma-separated over all its lines, lower-cased, empty elements dropped.
fn codings(headers: &HeaderMap, name: header::HeaderName) -> Result<Vec<String>, Refusal> {
    let mut out = Vec::new();
    for value in headers.get_all(&name) {
        let text = value.to_str().map_err(|_| bad_request(format!("Bad Request: the {name} header is not text")))?;
        out.extend(text.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()));
    }
    Ok(out)
}

fn check_codings(headers: &HeaderMap) -> Result<(), Refusal> {
    let transfer = codings(headers, header::TRANSFER_ENCODING)?;
    if let Some(other) = transfer.iter().find(|c| *c != "chunked") {
        return Err(refuse(
            StatusCode::NOT_IMPLEMENTED,
            INVALID_REQUEST,
            format!("Not Implemented: transfer coding `{other}`; only chunked is understood"),
        ));
    }
    if transfer.len() > 1 {
        return Err(bad_request("Bad Request: chunked is applied more than once"));
    }
    let content = codings(headers, header::CONTENT_ENCODING)?;
    if let Some(other) = content.iter().find(|c| *c != "identity") {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            INVALID_REQUEST,
            format!("Unsupported Media Type: content coding `{other}`; send the body uncompressed"),
        ));
    }
    Ok(())
}

/// `/mcp`: allow-lists, protocol version, and the body, read here.
pub(crate) async fn guard_mcp(State(policy): State<std::sync::Arc<Policy>>, req: Request, next: Next) -> Response {
    if let Err(refusal) = check_peer(&policy, req.headers()).and_then(|()| check_protocol_version(req.headers())) {
        return refusal.into_response();
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match read_body(body, &parts.headers, &policy).await {
        Ok(bytes) => bytes,
        Err(refusal) => return refusal.into_response(),
    };
    if parts.method == Method::POST && is_json(&parts.headers) {
        match check_jsonrpc(&bytes) {
            Ok(message) => note_call(message, &mut parts.extensions),
            Err(refusal) => return refusal.into_response(),
        }
    }
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// `Host` in the allowed hosts (DNS rebinding) and `Origin`, when sent, in the allowed origins.
fn check_peer(policy: &Policy, headers: &HeaderMap) -> Result<(), Refusal> {
    let host = request_host(headers)?;
    if !policy.hosts.allows(&host) {
        tracing::warn!(%host, "refused a request for a Host that is not allowed (possible DNS rebinding)");
        return Err(refuse(StatusCode::FORBIDDEN, INVALID_REQUEST, format!("Forbidden: Host `{host}` is not allowed")));
    }
    let Some(value) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = value
        .to_str()
        .ok()
        .and_then(Origin::parse)
        .ok_or_else(|| bad_request("Bad Request: the Origin header is not `null` or scheme://host[:port]"))?;
    if !policy.origins.allows(&origin) {
        tracing::warn!(origin = %String::from_utf8_lossy(value.as_bytes()), "refused a request from an Origin that is not allowed");
        return Err(refuse(StatusCode::FORBIDDEN, INVALID_REQUEST, "Forbidden: this Origin is not allowed"));
    }
    Ok(())
}

/// Refuses a request naming an MCP protocol version this server does not speak (rmcp checks this only on
/// some paths). A request without the header is left to rmcp, which treats it as 2025-03-26.
fn check_protocol_version(headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(v) = headers.get("mcp-protocol-version") else {
        return Ok(());
    };
    let known = v.to_str().is_ok_and(|v| ProtocolVersion::KNOWN_VERSIONS.iter().any(|k| k.as_str() == v));
    if known {
        return Ok(());
    }
    let supported: Vec<&str> = ProtocolVersion::KNOWN_VERSIONS.iter().map(|k| k.as_str()).collect();
    Err(bad_request(format!("Bad Request: unsupported MCP-Protocol-Version; supported: {}", supported.join(", "))))
}

/// The whole body, within the size limit and the read timeout; a framing error (bad chunk size, truncated
/// chunk, connection gone) is the client's: 400.
async fn read_body(body: Body, headers: &HeaderMap, policy: &Policy) -> Result<Bytes, Refusal> {
    let max = policy.max_body_bytes;
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            INVALID_REQUEST,
            format!("Payload Too Large: the request body exceeds {max} bytes"),
        )
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let collect = async {
        let mut body = body;
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| bad_request(format!("Bad Request: the request body is malformed: {}", chain(&e))))?;
            if let Ok(data) = frame.into_data() {
                if data.len() > max - buf.len() {
                    return Err(too_large());
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(policy.body_read_timeout, collect).await {
        Ok(result) => result,
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            INVALID_REQUEST,
            format!("Request Timeout: the request body did not arrive within {:?}", policy.body_read_timeout),
        )),
    }
}

/// An error and its causes ("error reading a body from connection: invalid chunk size line").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let essence = v.split_once(';').map_or(v, |(essence, _)| essence);
        essence.trim().eq_ignore_ascii_case("application/json")
    })
}

/// The body must be one JSON-RPC message, parsed exactly as rmcp will parse it (serde_json's recursion limit
/// bounds nesting); anything else is 400 with -32700 (not JSON) or -32600 (not a JSON-RPC message).
fn check_jsonrpc(body: &[u8]) -> Result<ClientJsonRpcMessage, Refusal> {
    let invalid = match serde_json::from_slice::<ClientJsonRpcMessage>(body) {
        Ok(message) => return Ok(message),
        Err(invalid) => invalid,
    };
    Err(match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Err(e) => refuse(StatusCode::BAD_REQUEST, PARSE_ERROR, format!("Parse error: the body is not JSON: {e}")),
        Ok(_) => bad_request(format!("Invalid Request: the body is not one JSON-RPC message: {invalid}")),
    })
}

/// A `tools/call` request is noted on the request: the tool and id for the scope check and the limits (which
/// run before rmcp), the parsed call for `direct`.
fn note_call(message: ClientJsonRpcMessage, extensions: &mut axum::http::Extensions) {
    if let Some(call) = ParsedCall::of(message) {
        extensions.insert(CalledTool(call.params.name.to_string(), call.id.to_string()));
        extensions.insert(call);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A header map of `pairs`, repeated names appended.
    pub(in crate::http) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn status(r: Result<(), Refusal>) -> Option<u16> {
        r.err().map(|r| r.status.as_u16())
    }

    #[test]
    fn codings_other_than_chunked_and_identity_are_refused() {
        let te = |v| headers(&[("transfer-encoding", v)]);
        assert_eq!(status(check_codings(&te("chunked"))), None);
        assert_eq!(status(check_codings(&te("gzip, chunked"))), Some(501));
        let twice = headers(&[("transfer-encoding", "chunked"), ("transfer-encoding", "Chunked")]);
        assert_eq!(status(check_codings(&twice)), Some(400));
        assert_eq!(status(check_codings(&headers(&[("content-encoding", "identity")]))), None);
        assert_eq!(status(check_codings(&headers(&[("content-encoding", "identity, gzip")]))), Some(415));
    }

    #[test]
    fn only_one_jsonrpc_message_passes() {
        assert!(check_jsonrpc(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).is_ok());
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        for (body, code) in [
            (&b"not json"[..], PARSE_ERROR),
            (b"", PARSE_ERROR),
            (deep.as_bytes(), INVALID_REQUEST),
            (br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#, INVALID_REQUEST),
            (br#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#, INVALID_REQUEST),
            (br#"{"jsonrpc":"2.0","id":1}"#, INVALID_REQUEST),
        ] {
            let refusal = check_jsonrpc(body).unwrap_err();
            assert_eq!((refusal.status, refusal.code), (StatusCode::BAD_REQUEST, code), "{refusal:?}");
        }
    }

    #[tokio::test]
    async fn a_refusal_is_a_jsonrpc_error_that_closes_the_connection() {
        let response = bad_request("Bad Request: the Host header appears 2 times; send it once").into_response();
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let expected = json!({"jsonrpc": "2.0", "id": null,
            "error": {"code": -32600, "message": "Bad Request: the Host header appears 2 times; send it once"}});
        assert_eq!(v, expected);
    }
}
