//! The floor: the mix's SQL sent straight to PostgreSQL through tokio-postgres, as the query role, in the same
//! per-call transaction the server opens (read only, the caller's signed context, the statement timeout), with
//! the whole call pipelined into one round trip. What zava-mcp adds to a call is its time over this.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::callers::Caller;
use super::load::pick;
use super::mix::Mix;
use super::stats::Recorder;
use crate::db::context::{self, CONTEXT_VALIDITY, ContextKey, SignedContext};
use crate::db::endpoint::Endpoint;

/// Where the floor connects and how it signs.
#[derive(Debug, Clone)]
pub(crate) struct FloorTarget {
    pub(crate) query: Endpoint,
    pub(crate) key: ContextKey,
    pub(crate) statement_timeout: Duration,
}

impl FloorTarget {
    /// One floor caller: a connection of its own, and for each call the server's own opening (`BEGIN READ ONLY`,
    /// head office's role, the context, the timeout), the statement (extended protocol, unnamed), `ROLLBACK`, sent
    /// before the first answer is read.
    pub(crate) fn caller(
        &self,
        worker: usize,
        mix: Arc<Mix>,
        callers: Arc<Vec<Caller>>,
        measure_from: Instant,
        end: Instant,
    ) -> impl std::future::Future<Output = Result<Recorder>> + Send + use<> {
        let target = self.clone();
        async move {
            let client = target.query.connect().await?;
            let mut recorder = Recorder::default();
            let mut k = 0usize;
            while Instant::now() < end {
                let (call_at, who) = pick(worker, k, &mix, callers.len());
                k += 1;
                let call = &mix.calls[call_at];
                let Some(sql) = call.sql.as_deref() else { continue };
                let started = Instant::now();
                let context = SignedContext::sign(&callers[who].access, &target.key, CONTEXT_VALIDITY);
                let begin = context::opening(&context, target.statement_timeout);
                let (opened, rows, closed) = tokio::join!(
                    client.batch_execute(&begin),
                    client.query_typed(sql, &[]),
                    client.batch_execute("ROLLBACK")
                );
                if started < measure_from {
                    continue;
                }
                match (opened, rows, closed) {
                    (Ok(()), Ok(_), Ok(())) => recorder.success(&call.label, started.elapsed()),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => recorder.failure(&call.label, || {
                        e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned())
                    }),
                }
                if client.is_closed() {
                    anyhow::bail!("the floor's connection to PostgreSQL closed");
                }
            }
            Ok(recorder)
        }
    }
}
