//! The limits in front of `/mcp`: each `tools/call` is admitted or answered 429 with `Retry-After`, before it
//! reaches the MCP service. Other requests (initialize, lists, pings) are not counted: they cost nothing.
//!
//! It runs inside the identity layer, so a token's principal is known; with header identities the caller is the
//! header's value (a malformed one is counted as itself, and refused by the tool anyway).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use super::{Caller, Refusal, Throttle};
use crate::audit::{AuditLog, AuditRecord, Outcome};
use crate::auth::Principal;
use crate::auth::http::CalledTool;
use crate::identity::{Directory, IDENTITY_HEADER};

/// What the layer needs: the limits, and where a refused call is recorded.
#[derive(Clone)]
pub(crate) struct Limits {
    pub throttle: Arc<Throttle>,
    pub audit: Option<Arc<AuditLog>>,
    /// Shared: the middleware's state is cloned for every request.
    pub directory: Arc<Directory>,
}

pub(crate) async fn limit_calls(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    let Some(CalledTool(tool, id)) = req.extensions().get::<CalledTool>().cloned() else {
        return next.run(req).await;
    };
    let started = std::time::Instant::now();
    let caller = match req.extensions().get::<Principal>() {
        Some(p) => Caller::principal(p),
        None => header_caller(&req),
    };
    let permit = match limits.throttle.admit(&caller).await {
        Ok(p) => p,
        Err(refusal) => {
            crate::telemetry::series::rate_limited(refusal.limit_name());
            if let Some(audit) = &limits.audit {
                audit.record(&refusal_record(&limits, audit, &req, &tool, id, started, &refusal)).await;
            }
            let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32000, "message": refusal.to_string()}});
            let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(refusal.retry_after_secs()));
            return response;
        }
    };
    let response = next.run(req).await;
    // The call may still be streaming its answer: the permit goes back when the body has been sent or dropped.
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::new(Holding { body, _permit: permit }))
}

/// A response body that holds the call's permit until it has been sent or dropped, and keeps the body's size: a
/// body remade from a stream has none, which sent every answer in chunked encoding (and, to an HTTP/1.0 client,
/// without a length on a kept-alive connection).
struct Holding {
    body: Body,
    _permit: super::CallPermit,
}

impl hyper::body::Body for Holding {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The audit record of a call refused here, before it reached the tool.
fn refusal_record(
    limits: &Limits,
    audit: &AuditLog,
    req: &Request,
    tool: &str,
    id: String,
    started: std::time::Instant,
    refusal: &Refusal,
) -> AuditRecord {
    let principal = req.extensions().get::<Principal>();
    let who = match principal {
        Some(p) => audit.principal(&p.subject),
        None => format!("header:{}", header_values(req)),
    };
    let mut record = AuditRecord::new(tool, id, who, started.elapsed());
    if let Some(p) = principal {
        record.stores = limits.directory.describe(&p.tenant);
    }
    record.outcome = Outcome::Refused;
    record.reason = Some(match refusal {
        Refusal::Rate { .. } => "limit:rate".into(),
        Refusal::Concurrency { .. } => "limit:concurrency".into(),
    });
    record.client =
        req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(200).collect());
    record
}

fn header_values(req: &Request) -> String {
    let values: Vec<&str> =
        req.headers().get_all(IDENTITY_HEADER).iter().map(|v| v.to_str().unwrap_or("<not text>")).collect();
    values.join(",").chars().take(256).collect()
}

fn header_caller(req: &Request) -> Caller {
    let values: Vec<&str> =
        req.headers().get_all(IDENTITY_HEADER).iter().map(|v| v.to_str().unwrap_or("<not text>")).collect();
    let raw = values.join(",");
    match raw.parse() {
        Ok(tenant) => Caller::tenant(&tenant),
        Err(_) => Caller {
            key: format!("header:{}", raw.chars().take(256).collect::<String>()),
            role: super::Role::StoreManager,
        },
    }
}
