//! The exported series and the one recorder behind them.
//!
//! The recorder is process-wide (the `metrics` facade has one global recorder); it is installed the first time
//! `/metrics` is routed, so a process that never serves HTTP (stdio, the CLI) pays nothing for it. Counters and
//! histograms are updated where things happen; the pool and circuit gauges are read when a scrape asks.
//!
//! Names follow Prometheus' conventions: `zava_` prefix, base units (seconds, bytes), `_total` on counters.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::App;
use crate::audit::Outcome;
use crate::identity::TenantLabel;

/// Latency buckets for calls and their parts: from a cached schema lookup to a query near its timeout.
const SECONDS_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The recorder, installed on first use. If another recorder was installed first (a library user's own), the
/// series go there and `/metrics` renders an empty page rather than failing.
pub(crate) fn recorder() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .expect("the bucket list is not empty");
        let handle = match builder.install_recorder() {
            Ok(handle) => handle,
            Err(e) => {
                tracing::warn!(error = %e, "another metrics recorder is installed: /metrics will be empty");
                PrometheusBuilder::new().build_recorder().handle()
            }
        };
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        "zava_tool_calls_total",
        "Tool calls, by tool, tenant (a store, several_stores or head_office) and outcome (ok, refused, failed)."
    );
    describe_histogram!(
        "zava_tool_call_duration_seconds",
        "Time from a tool call's start to its result, by tool and outcome."
    );
    describe_counter!(
        "zava_tool_refusals_total",
        "Calls refused before they ran, by tool and reason (identity, limit, arguments, guard:<code>, query:busy, query:tenant_busy)."
    );
    describe_counter!(
        "zava_tool_failures_total",
        "Calls that ran and failed, by tool and reason (query:<code>, embedding)."
    );
    describe_counter!("zava_result_rows_total", "Rows returned by tools, by tool.");
    describe_counter!("zava_result_bytes_total", "Bytes of result text returned by tools, by tool.");
    describe_counter!(
        "zava_result_truncations_total",
        "Results cut at the row or byte cap, by tool and cap (rows, bytes)."
    );
    describe_gauge!("zava_tool_calls_in_flight", "Tool calls running now (a saturation signal for an autoscaler).");
    describe_gauge!("zava_pool_connections", "The query role's pooled connections, by state (idle, in_use).");
    describe_gauge!("zava_pool_max_connections", "The pool's upper bound.");
    describe_gauge!("zava_pool_waiting", "Calls waiting for a pooled connection now.");
    describe_histogram!("zava_pool_wait_seconds", "Time a call waited for a pooled connection.");
    describe_counter!(
        "zava_cache_requests_total",
        "Cache lookups, by cache (guard, schema, query_embedding, result) and result (hit, miss)."
    );
    describe_counter!(
        "zava_result_cache_bypassed_total",
        "Queries the result cache did not look up, by reason (not_data_only: the result depends on the clock, \
         chance or the catalog; version_unknown: the data version is not being followed)."
    );
    describe_histogram!(
        "zava_embedding_duration_seconds",
        "Time to embed one batch of query texts, by provider (local, remote) and outcome."
    );
    describe_gauge!(
        "zava_embedding_circuit_state",
        "The remote embedding provider's circuit: 0 closed, 1 half-open (probing), 2 open."
    );
    describe_counter!(
        "zava_rate_limited_total",
        "Calls refused by the per-caller limits, by limit (rate, concurrency)."
    );
    describe_counter!("zava_auth_failures_total", "Requests refused by authentication, by reason.");
    describe_counter!(
        "zava_tool_call_lanes_total",
        "tools/call requests over HTTP, by who answered them (direct: the server's own lane; rmcp: left to rmcp \
         for a feature only it serves, such as the 2026-07-28 per-request lifecycle)."
    );
    describe_gauge!("zava_build_info", "Always 1; the labels say which build is running.");
}

/// One finished tool call.
pub(crate) struct ToolCall<'a> {
    pub tool: &'static str,
    pub tenant: Option<&'a TenantLabel>,
    pub outcome: Outcome,
    pub reason: Option<&'a str>,
    pub elapsed: Duration,
    pub rows: Option<usize>,
    pub bytes: usize,
    pub truncated: Option<&'static str>,
}

impl ToolCall<'_> {
    pub(crate) fn observe(&self) {
        let outcome = match self.outcome {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        };
        let tenant = self.tenant.map_or("unresolved", TenantLabel::as_str).to_owned();
        counter!("zava_tool_calls_total", "tool" => self.tool, "tenant" => tenant, "outcome" => outcome).increment(1);
        histogram!("zava_tool_call_duration_seconds", "tool" => self.tool, "outcome" => outcome)
            .record(self.elapsed.as_secs_f64());
        if let Some(reason) = self.reason {
            let name = match self.outcome {
                Outcome::Refused => "zava_tool_refusals_total",
                _ => "zava_tool_failures_total",
            };
            counter!(name, "tool" => self.tool, "reason" => reason.to_owned()).increment(1);
        }
        if let Some(rows) = self.rows {
            counter!("zava_result_rows_total", "tool" => self.tool).increment(rows as u64);
        }
        counter!("zava_result_bytes_total", "tool" => self.tool).increment(self.bytes as u64);
        if let Some(cap) = self.truncated {
            counter!("zava_result_truncations_total", "tool" => self.tool, "cap" => cap).increment(1);
        }
    }
}

/// A tool call in flight, counted in `zava_tool_calls_in_flight` until dropped.
pub(crate) struct InFlight(());

impl InFlight {
    pub(crate) fn start() -> Self {
        gauge!("zava_tool_calls_in_flight").increment(1.0);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge!("zava_tool_calls_in_flight").decrement(1.0);
    }
}

pub(crate) fn pool_wait(waited: Duration) {
    histogram!("zava_pool_wait_seconds").record(waited.as_secs_f64());
}

pub(crate) fn cache_lookup(cache: &'static str, hit: bool) {
    counter!("zava_cache_requests_total", "cache" => cache, "result" => if hit { "hit" } else { "miss" }).increment(1);
}

pub(crate) fn result_cache_bypassed(reason: &'static str) {
    counter!("zava_result_cache_bypassed_total", "reason" => reason).increment(1);
}

pub(crate) fn embedding(provider: &'static str, ok: bool, took: Duration) {
    let outcome = if ok { "ok" } else { "failed" };
    histogram!("zava_embedding_duration_seconds", "provider" => provider, "outcome" => outcome)
        .record(took.as_secs_f64());
}

pub(crate) fn rate_limited(limit: &'static str) {
    counter!("zava_rate_limited_total", "limit" => limit).increment(1);
}

pub(crate) fn call_lane(lane: &'static str) {
    counter!("zava_tool_call_lanes_total", "lane" => lane).increment(1);
}

pub(crate) fn auth_failure(reason: &'static str) {
    counter!("zava_auth_failures_total", "reason" => reason).increment(1);
}

/// The scrape: the gauges read now, then every series in Prometheus' text format.
pub(crate) fn render(app: &App) -> String {
    let handle = recorder();
    let status = app.db.pool().status();
    gauge!("zava_pool_connections", "state" => "idle").set(status.available as f64);
    gauge!("zava_pool_connections", "state" => "in_use").set(status.size.saturating_sub(status.available) as f64);
    gauge!("zava_pool_max_connections").set(status.max_size as f64);
    gauge!("zava_pool_waiting").set(status.waiting as f64);
    if let Some(state) = app.embeddings.embedder().circuit_state() {
        gauge!("zava_embedding_circuit_state").set(state as u8 as f64);
    }
    gauge!("zava_build_info", "version" => env!("CARGO_PKG_VERSION"), "revision" => env!("ZAVA_GIT_REVISION")).set(1.0);
    handle.run_upkeep();
    handle.render()
}
