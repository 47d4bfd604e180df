//! The middleware in front of `/mcp` when tokens are required, and the metadata route.
//!
//! A request without a valid token gets 401 with `WWW-Authenticate: Bearer resource_metadata="…"` (plus
//! `error="invalid_token"` and the reason when one was presented); a valid token that maps to no stores gets
//! 403; a `tools/call` of a tool whose scope the token lacks gets 403 `insufficient_scope` naming the scope. The
//! verified [`Principal`] travels to the tools in the request's extensions.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use super::metadata;
use super::{AuthError, Authenticator, Principal};

/// The tool a `tools/call` request names, and the request's JSON-RPC id (as text), put in the request's
/// extensions by the HTTP hygiene layer.
#[derive(Debug, Clone)]
pub(crate) struct CalledTool(pub String, pub String);

pub(crate) async fn require_token(State(auth): State<Arc<Authenticator>>, mut req: Request, next: Next) -> Response {
    let authorization = req.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let principal = match auth.authenticate(authorization).await {
        Ok(p) => p,
        Err(e) => return refusal(&auth, &e),
    };
    if let Some(CalledTool(tool, _)) = req.extensions().get::<CalledTool>()
        && let Some(needed) = auth.tool_scopes.required(tool)
        && !principal.granted.allows(needed)
    {
        tracing::warn!(subject = %principal.subject, tool, scope = %needed, "refused a call: the token lacks its scope");
        crate::telemetry::series::auth_failure("insufficient_scope");
        let message = format!("Forbidden: `{tool}` needs the {needed} scope, which this token does not carry");
        let challenge = metadata::insufficient_scope(&auth.resource, needed);
        return respond(StatusCode::FORBIDDEN, Some(challenge), &message);
    }
    req.extensions_mut().insert::<Principal>(principal);
    next.run(req).await
}

fn refusal(auth: &Authenticator, e: &AuthError) -> Response {
    let reason = e.to_string();
    tracing::warn!(reason, "refused a request: authentication failed");
    crate::telemetry::series::auth_failure(e.code());
    match e {
        AuthError::Missing => {
            respond(StatusCode::UNAUTHORIZED, Some(metadata::unauthorized(&auth.resource, None)), &reason)
        }
        AuthError::NotBearer | AuthError::Token(_) | AuthError::ApiKey(_) | AuthError::NotAccepted(_) => {
            let challenge = metadata::unauthorized(&auth.resource, Some(&reason));
            respond(StatusCode::UNAUTHORIZED, Some(challenge), &format!("Unauthorized: {reason}"))
        }
        AuthError::NoTenant(_) => respond(StatusCode::FORBIDDEN, None, &format!("Forbidden: {reason}")),
    }
}

fn respond(status: StatusCode, challenge: Option<String>, message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32001, "message": message}});
    let mut response = (status, Json(body)).into_response();
    if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// In header mode a bearer token is refused rather than ignored: whoever sends one expects it to count.
pub(crate) async fn refuse_tokens(req: Request, next: Next) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION) {
        return respond(
            StatusCode::BAD_REQUEST,
            None,
            "Bad Request: this server runs with --identity header and takes no Authorization header; send \
             x-rls-user-id, or start it with --identity jwt",
        );
    }
    next.run(req).await
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`.
pub(crate) async fn resource_metadata(State(auth): State<Arc<Authenticator>>) -> Response {
    let doc = metadata::document(&auth.resource, auth.issuer(), &auth.tool_scopes.supported());
    let mut response = Json(doc).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}
