//! One structured record per tool call: who asked (a subject, hashed when configured), for which stores, which
//! tool, the shape of the SQL (pg_query's fingerprint, never its text or literals), how much came back, how long
//! it took, and how it ended (with the refusal's or failure's code). A store's data protection officer reads
//! these; so they never hold a token, key, password, connection string or a query's values.
//!
//! Records go to a JSON-lines file (`--audit-log PATH`, rotated by size, `file`).

mod file;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

pub use file::FileSettings;

/// What `serve`/`stdio` were told about auditing.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub file: FileSettings,
    /// Record `sha256:<hex>` of each subject instead of the subject.
    pub hash_subjects: bool,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Refused before it ran: identity, the SQL guard, a limit, bad arguments.
    Refused,
    /// It ran and failed (database error, timeout, cancellation).
    Failed,
}

/// One call, as it is recorded.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// Seconds since the Unix epoch, with microseconds.
    pub time: f64,
    pub request_id: String,
    pub principal: String,
    /// The stores the caller was resolved to (`head office` for every store); empty when it was not resolved.
    pub stores: String,
    pub tool: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    pub duration_ms: f64,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl AuditRecord {
    /// A record for a call that started `elapsed` ago; the rest is filled in by the caller.
    pub fn new(tool: &str, request_id: String, principal: String, elapsed: Duration) -> Self {
        let time = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        Self {
            time: (time * 1e6).round() / 1e6,
            request_id,
            principal,
            stores: String::new(),
            tool: tool.to_owned(),
            fingerprint: None,
            rows: None,
            bytes: None,
            duration_ms: (elapsed.as_secs_f64() * 1e6).round() / 1e3,
            outcome: Outcome::Ok,
            reason: None,
            client: None,
        }
    }
}

/// Where records go.
pub struct AuditLog {
    lines: mpsc::Sender<String>,
    hash_subjects: bool,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("hash_subjects", &self.hash_subjects).finish_non_exhaustive()
    }
}

impl AuditLog {
    pub fn open(settings: AuditSettings) -> Result<Arc<Self>> {
        Ok(Arc::new(Self { lines: file::start(settings.file)?, hash_subjects: settings.hash_subjects }))
    }

    /// The principal as it should be recorded.
    pub fn principal(&self, subject: &str) -> String {
        if self.hash_subjects {
            format!("sha256:{}", hex::encode(&Sha256::digest(subject.as_bytes())[..16]))
        } else {
            subject.to_owned()
        }
    }

    /// Queues one record; waits only if the writer is thousands of lines behind.
    pub async fn record(&self, record: &AuditRecord) {
        match serde_json::to_string(record) {
            Ok(line) => {
                if self.lines.send(line).await.is_err() {
                    tracing::error!("the audit writer has stopped; a record was lost");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot encode an audit record"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_can_be_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let file = FileSettings { path: dir.path().join("a.jsonl"), max_bytes: 1 << 20, keep: 1 };
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _guard = rt.enter();
        let log = AuditLog::open(AuditSettings { file, hash_subjects: true }).unwrap();
        let p = log.principal("alice@zava.example");
        assert!(p.starts_with("sha256:") && !p.contains("alice"), "{p}");
        assert_eq!(p, log.principal("alice@zava.example"));
    }
}
