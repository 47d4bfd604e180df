//! The end of one tool call: its metrics (`telemetry::series`) and its audit record (`audit`), both from what the
//! call noted on its way.

use std::time::Instant;

use rmcp::model::CallToolResult;

use super::context::CallContext;
use super::server::{IdentitySource, ZavaServer};
use crate::audit::{AuditRecord, Outcome};
use crate::db::query::QueryError;
use crate::telemetry::series::ToolCall;
use crate::tenant::Access;

/// What a call noted for its record: who it resolved to, the SQL's fingerprint, rows, and why it stopped.
#[derive(Debug, Default)]
pub(crate) struct CallNote {
    pub access: Option<Access>,
    pub fingerprint: Option<String>,
    pub rows: Option<usize>,
    /// The cap that cut the result (`rows` or `bytes`).
    pub truncated: Option<&'static str>,
    outcome: Option<(Outcome, String)>,
}

impl CallNote {
    /// Refused before it ran (identity, guard, limit, arguments).
    pub fn refused(&mut self, reason: &str) {
        self.outcome = Some((Outcome::Refused, reason.to_owned()));
    }

    /// It ran and failed.
    pub fn failed(&mut self, reason: &str) {
        self.outcome = Some((Outcome::Failed, reason.to_owned()));
    }

    pub fn query_failed(&mut self, e: &QueryError) {
        match e {
            QueryError::Busy | QueryError::TenantBusy { .. } => self.refused(&format!("query:{}", e.code())),
            _ => self.failed(&format!("query:{}", e.code())),
        }
    }
}

impl ZavaServer {
    /// Counts the call in the metrics and writes its audit record, when auditing is on.
    pub(super) async fn record(
        &self,
        tool: &'static str,
        ctx: &CallContext<'_>,
        started: Instant,
        mut note: CallNote,
        result: &CallToolResult,
    ) {
        if note.outcome.is_none() && result.is_error == Some(true) {
            note.outcome = Some((Outcome::Failed, "error".to_owned()));
        }
        let bytes = result.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.len()).sum();
        let tenant = note.access.as_ref().map(|a| self.app.directory.label(&a.tenant));
        ToolCall {
            tool,
            tenant: tenant.as_ref(),
            outcome: note.outcome.as_ref().map_or(Outcome::Ok, |(o, _)| *o),
            reason: note.outcome.as_ref().map(|(_, r)| r.as_str()),
            elapsed: started.elapsed(),
            rows: note.rows,
            bytes,
            truncated: note.truncated,
        }
        .observe();
        let Some(audit) = &self.audit else { return };
        let parts = ctx.parts;
        let principal = match (&self.identity, ctx.principal(), &note.access) {
            (IdentitySource::Token(_), Some(p), _) => audit.principal(&p.subject),
            (IdentitySource::Fixed(_), _, Some(a)) => format!("stdio:{}", a.tenant.scope()),
            (IdentitySource::Header, _, Some(a)) => format!("header:{}", a.tenant.scope()),
            _ => "unresolved".to_owned(),
        };
        let mut record = AuditRecord::new(tool, ctx.id.to_string(), principal, started.elapsed());
        if let Some(access) = &note.access {
            record.stores = self.app.directory.describe(&access.tenant);
        }
        record.fingerprint = note.fingerprint;
        record.rows = note.rows;
        record.bytes = Some(bytes);
        if let Some((outcome, reason)) = note.outcome {
            (record.outcome, record.reason) = (outcome, Some(reason));
        }
        // Over HTTP (stateless: no initialize is remembered) the client is its User-Agent; over stdio, what it
        // said in `initialize`.
        record.client = match parts {
            Some(p) => p
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(200).collect()),
            None => ctx
                .peer
                .and_then(|peer| peer.peer_info())
                .map(|info| format!("{} {}", info.client_info.name, info.client_info.version)),
        };
        audit.record(&record).await;
    }
}
