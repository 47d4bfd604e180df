//! The load: `concurrency` callers, each with a connection of its own, walking the mix's calls and the identity
//! rotation until the phase ends. One driver speaks MCP (a stateless JSON-RPC `tools/call` POST to `/mcp`); the
//! other is the floor (`floor.rs`). Calls finished during the warm-up are not recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::callers::Caller;
use super::mix::{Mix, MixCall};
use super::stats::Recorder;

/// How long a phase runs, and how much of its start is warm-up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Phase {
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) concurrency: usize,
}

/// What one phase measured.
#[derive(Debug)]
pub(crate) struct PhaseResult {
    pub(crate) recorder: Recorder,
    /// The measured time (the phase less its warm-up).
    pub(crate) elapsed: Duration,
}

impl PhaseResult {
    pub(crate) fn rps(&self) -> f64 {
        self.recorder.calls() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The `k`-th call of caller `worker`: which call of the mix and which identity. Identities advance with every
/// call and shift once per pass over the mix, so every call meets every identity.
pub(crate) fn pick(worker: usize, k: usize, mix: &Mix, callers: usize) -> (usize, usize) {
    let len = mix.order.len();
    let step = worker.wrapping_mul(7919) + k;
    (mix.order[step % len], (worker + k + k / len) % callers)
}

/// Runs `concurrency` copies of `caller` (given its index) until the phase ends and merges what they recorded.
pub(crate) async fn run_phase<F, Fut>(phase: Phase, caller: F) -> Result<PhaseResult>
where
    F: Fn(usize, Instant, Instant) -> Fut,
    Fut: std::future::Future<Output = Result<Recorder>> + Send + 'static,
{
    let start = Instant::now();
    let measure_from = start + phase.warmup;
    let end = measure_from + phase.duration;
    let tasks: Vec<_> = (0..phase.concurrency).map(|i| tokio::spawn(caller(i, measure_from, end))).collect();
    let mut recorder = Recorder::default();
    for task in tasks {
        recorder.merge(task.await.context("a bench caller panicked")??);
    }
    Ok(PhaseResult { recorder, elapsed: end.saturating_duration_since(measure_from) })
}

/// The MCP side: POSTs to `url`.
#[derive(Debug, Clone)]
pub(crate) struct McpTarget {
    pub(crate) url: String,
}

/// A JSON-RPC answer, read only as far as success or failure.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    result: Option<ToolResult>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ToolResult {
    #[serde(rename = "isError", default)]
    is_error: bool,
}

impl McpTarget {
    /// One MCP caller: a client with one keep-alive connection, the mix's request bodies serialised once (or,
    /// with `vary`, a search text made unique per call).
    pub(crate) fn caller(
        &self,
        worker: usize,
        mix: Arc<Mix>,
        callers: Arc<Vec<Caller>>,
        measure_from: Instant,
        end: Instant,
    ) -> impl std::future::Future<Output = Result<Recorder>> + Send + use<> {
        let url = self.url.clone();
        async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .timeout(Duration::from_secs(120))
                .build()
                .context("cannot make an HTTP client")?;
            let bodies: Vec<bytes::Bytes> = mix.calls.iter().map(|c| body(c, None).into()).collect();
            let mut recorder = Recorder::default();
            let mut k = 0usize;
            while Instant::now() < end {
                let (call_at, who) = pick(worker, k, &mix, callers.len());
                let call = &mix.calls[call_at];
                let payload =
                    if mix.vary { body(call, Some(worker * 1_000_000 + k)).into() } else { bodies[call_at].clone() };
                k += 1;
                let started = Instant::now();
                let outcome = send(&http, &url, &callers[who].header, payload).await;
                if started < measure_from {
                    continue;
                }
                match outcome {
                    Ok(()) => recorder.success(&call.label, started.elapsed()),
                    Err(e) => recorder.failure(&call.label, || e),
                }
            }
            Ok(recorder)
        }
    }
}

/// The JSON-RPC request of `call`; with `vary`, a number added to its search text.
fn body(call: &MixCall, vary: Option<usize>) -> Vec<u8> {
    let mut arguments = call.arguments.clone();
    if let (Some(n), Some(Value::String(text))) = (vary, arguments.get_mut("query_description")) {
        text.push_str(&format!(" {n}"));
    }
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": call.tool, "arguments": arguments}});
    serde_json::to_vec(&request).expect("JSON values serialise")
}

async fn send(http: &reqwest::Client, url: &str, identity: &str, payload: bytes::Bytes) -> Result<(), String> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("x-rls-user-id", identity)
        .body(payload)
        .send()
        .await
        .map_err(|e| format!("the request failed: {e}"))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| format!("the answer broke off: {e}"))?;
    let text = || String::from_utf8_lossy(&bytes).into_owned();
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", text()));
    }
    match serde_json::from_slice::<Answer>(&bytes) {
        Ok(Answer { result: Some(ToolResult { is_error: false }), error: None }) => Ok(()),
        Ok(_) => Err(text()),
        Err(e) => Err(format!("not a JSON-RPC answer ({e}): {}", text())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_caller_meets_every_call_and_identity() {
        let mix = Mix::load("analytic").unwrap();
        let mut seen = std::collections::HashSet::new();
        for k in 0..(12 * 9 * 2) {
            seen.insert(pick(3, k, &mix, 9));
        }
        assert_eq!(seen.len(), 12 * 9);
    }

    #[test]
    fn varied_search_texts_differ_per_call() {
        let mix = Mix::load("search").unwrap();
        let a = String::from_utf8(body(&mix.calls[0], Some(1))).unwrap();
        let b = String::from_utf8(body(&mix.calls[0], Some(2))).unwrap();
        assert_ne!(a, b);
        assert!(a.contains("\"name\":\"semantic_search_products\""), "{a}");
    }
}
