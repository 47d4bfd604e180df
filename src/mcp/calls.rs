//! What each data tool does once its wrapper in `server` has started the clock: resolve the caller, take its
//! place under the limits, check and run, noting for the audit record what happened (`record::CallNote`).

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::Map;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::context::CallContext;
use super::output;
use super::record::CallNote;
use super::server::{QueryArgs, SchemaArgs, SearchArgs, ZavaServer};
use crate::db::call::{Shape, TenantCall};
use crate::db::{introspect, query};
use crate::embed::error::EmbedError;
use crate::results::Kept;
use crate::search::{self, SearchMode, SearchRequest, SearchStatement};
use crate::tenant::{Access, Tenant};
use crate::throttle::CallPermit;

/// A failed query's result, noted for the audit record.
fn failed(note: &mut CallNote, e: &query::QueryError) -> CallToolResult {
    note.query_failed(e);
    output::query_error(e)
}

impl ZavaServer {
    /// The caller's access and its place under the limits, or the result that refuses the call.
    async fn enter(
        &self,
        ctx: &CallContext<'_>,
        note: &mut CallNote,
    ) -> Result<(Access, Option<CallPermit>), CallToolResult> {
        let access = self.access(ctx).map_err(|e| {
            note.refused("identity");
            output::error(e.to_string(), Map::new())
        })?;
        tracing::Span::current().record("tenant", self.app.directory.label(&access.tenant).as_str());
        note.access = Some(access.clone());
        let permit = self.admit(&access).await.inspect_err(|_| note.refused("limit"))?;
        Ok((access, permit))
    }

    pub(super) async fn get_multiple_table_schemas_call(
        &self,
        args: SchemaArgs,
        ctx: &CallContext<'_>,
        note: &mut CallNote,
    ) -> CallToolResult {
        let (access, _permit) = match self.enter(ctx, note).await {
            Ok(entered) => entered,
            Err(refused) => return refused,
        };
        let timeout = self.app.settings.limits.statement_timeout;
        let pg = |e: tokio_postgres::Error| query::QueryError::from_pg(e, timeout);
        let described = self.in_tenant_tx(&access, ctx.ct, async |tx| {
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
        match described.await {
            Ok(Ok(text)) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Ok(Err(invalid)) => {
                note.refused("arguments");
                output::error(invalid, Map::new())
            }
            Err(e) => failed(note, &e),
        }
    }

    pub(super) async fn semantic_search_products_call(
        &self,
        args: SearchArgs,
        ctx: &CallContext<'_>,
        note: &mut CallNote,
    ) -> CallToolResult {
        let (access, _permit) = match self.enter(ctx, note).await {
            Ok(entered) => entered,
            Err(refused) => return refused,
        };
        let request =
            match SearchRequest::new(&args.query_description, args.max_rows, args.similarity_threshold, args.mode) {
                Ok(r) => r,
                Err(e) => {
                    note.refused("arguments");
                    return output::error(e.to_string(), Map::new());
                }
            };
        match self.search(&access, &request, ctx.ct, note).await {
            Ok(result) => result,
            Err(e) => failed(note, &e),
        }
    }

    pub(super) async fn execute_sales_query_call(
        &self,
        args: QueryArgs,
        ctx: &CallContext<'_>,
        note: &mut CallNote,
    ) -> CallToolResult {
        let (access, _permit) = match self.enter(ctx, note).await {
            Ok(entered) => entered,
            Err(refused) => return refused,
        };
        let checked = self
            .app
            .verdicts
            .check(&access.tenant.scope(), &args.postgresql_query, &self.app.functions)
            .instrument(tracing::info_span!("guard"))
            .await;
        let sql = match checked {
            Ok(sql) => sql,
            Err(e) => {
                note.refused(&format!("guard:{}", e.code()));
                return output::guard_error(&e);
            }
        };
        if self.audit.is_some() {
            note.fingerprint = sql.fingerprint();
        }
        // A line per successful call is debug: at thousands of calls a second it would be most of the log (and a
        // sixth of the server's CPU); the audit log is the per-call record. Failures stay at info.
        let who = || self.app.directory.describe(&access.tenant);
        let key = match &self.app.results {
            Some(cache) => match cache.key(&access, &sql) {
                Ok(key) => match cache.get(&key).await {
                    Some(kept) => {
                        tracing::debug!(tenant = %who(), rows = kept.rows, "query (result kept from an earlier call)");
                        (note.rows, note.truncated) = (Some(kept.rows), kept.truncated);
                        return kept.result.clone();
                    }
                    None => Some(key),
                },
                Err(reason) => {
                    crate::telemetry::series::result_cache_bypassed(reason);
                    None
                }
            },
            None => None,
        };
        let started = std::time::Instant::now();
        let result = query::run(&self.app.db, &self.app.sign(&access), &sql, self.app.settings.limits, ctx.ct).await;
        match result {
            Ok(out) => {
                tracing::debug!(tenant = %who(), rows = out.rows.len(), ms = started.elapsed().as_millis() as u64, "query");
                note.rows = Some(out.rows.len());
                note.truncated = out.truncated.map(|t| match t {
                    query::Truncation::Rows(_) => "rows",
                    query::Truncation::Bytes(_) => "bytes",
                });
                let result = output::query_result(out);
                if let (Some(cache), Some(key)) = (&self.app.results, key) {
                    let kept = Kept { result: result.clone(), rows: note.rows.unwrap_or(0), truncated: note.truncated };
                    cache.keep(key, kept).await;
                }
                result
            }
            Err(e) => {
                tracing::info!(tenant = %who(), error = %e, "query failed");
                failed(note, &e)
            }
        }
    }

    async fn search(
        &self,
        access: &Access,
        request: &SearchRequest,
        cancel: &CancellationToken,
        note: &mut CallNote,
    ) -> Result<CallToolResult, query::QueryError> {
        // Until the catalog's vectors are in (a server that has just seeded its database), rank by keyword.
        let keyword;
        let pending = request.mode != SearchMode::Keyword && !self.app.vectors.ready();
        let request = if pending {
            keyword = SearchRequest { mode: SearchMode::Keyword, ..request.clone() };
            &keyword
        } else {
            request
        };
        let embedding = match request.mode {
            SearchMode::Keyword => None,
            _ => match self.app.embeddings.embed(&request.text).instrument(tracing::info_span!("embedding")).await {
                Ok(v) => Some(v.as_ref().clone()),
                Err(e) => {
                    let cause = EmbedError::from_anyhow(&e);
                    tracing::warn!(error = %cause, "query embedding failed");
                    note.failed("embedding");
                    return Ok(output::semantic_search_unavailable(&cause));
                }
            },
        };
        let timeout = self.app.settings.limits.statement_timeout;
        let head_office = matches!(access.tenant, Tenant::HeadOffice);
        let hits = self
            .app
            .db
            .in_tenant_tx(
                TenantCall {
                    ctx: &self.app.sign(access),
                    timeout,
                    summary: "SELECT retail.products",
                    shape: Shape::OneTrip,
                },
                cancel,
                async |client| SearchStatement::prepare_cached(client, head_office).await,
                async |tx, s, _| {
                    search::search(tx, &s, request, embedding).await.map_err(|e| query::QueryError::from_pg(e, timeout))
                },
            )
            .await?;
        note.rows = Some(hits.len());
        Ok(output::search_result(&hits, request.threshold_percent, pending.then_some(output::VECTORS_PENDING)))
    }

    /// Runs `work` in the caller's read-only tenant transaction on a pooled connection (`db::call`).
    async fn in_tenant_tx<T>(
        &self,
        access: &Access,
        cancel: &CancellationToken,
        work: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, query::QueryError>,
    ) -> Result<T, query::QueryError> {
        let timeout = self.app.settings.limits.statement_timeout;
        self.app
            .db
            .in_tenant_tx(
                TenantCall { ctx: &self.app.sign(access), timeout, summary: "SELECT pg_catalog", shape: Shape::Steps },
                cancel,
                async |_| Ok(()),
                async |tx, (), _| work(tx).await,
            )
            .await
    }
}
