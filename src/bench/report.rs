//! What `zava-mcp bench` prints: a table per phase and per call, the CPU each side used, the server's memory,
//! and with `--json` a last line holding the figures as one object.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::load::PhaseResult;
use super::stats::Percentiles;

/// One measured phase, with the CPU used meanwhile (in cores: CPU seconds per second).
pub(crate) struct PhaseReport {
    pub(crate) name: &'static str,
    pub(crate) result: PhaseResult,
    pub(crate) cpu: CpuUse,
    /// The server's resident memory at the phase's end, in MiB.
    pub(crate) rss_mb: Option<f64>,
    /// The server's result-cache lookups over the measured part (from its /metrics), when it serves them.
    pub(crate) cache: Option<CacheCounts>,
}

impl PhaseReport {
    /// Adds one more slice of the same phase to `total`: calls and time summed, CPU averaged over the measured
    /// time, memory as at the last slice's end.
    pub(crate) fn add(total: &mut Option<PhaseReport>, slice: PhaseReport) {
        let Some(sum) = total else {
            *total = Some(slice);
            return;
        };
        let (a, b) = (sum.result.elapsed.as_secs_f64(), slice.result.elapsed.as_secs_f64());
        let mean = |x: f64, y: f64| if a + b > 0.0 { (x * a + y * b) / (a + b) } else { x };
        let both = |x: Option<f64>, y: Option<f64>| Some(mean(x?, y?));
        sum.cpu = CpuUse {
            server: both(sum.cpu.server, slice.cpu.server),
            postgres: both(sum.cpu.postgres, slice.cpu.postgres),
            bench: mean(sum.cpu.bench, slice.cpu.bench),
        };
        sum.result.recorder.merge(slice.result.recorder);
        sum.result.elapsed += slice.result.elapsed;
        sum.rss_mb = slice.rss_mb.or(sum.rss_mb);
        sum.cache = match (sum.cache, slice.cache) {
            (Some(x), Some(y)) => Some(CacheCounts { hits: x.hits + y.hits, misses: x.misses + y.misses }),
            (x, y) => x.or(y),
        };
    }
}

/// Result-cache lookups that found a kept result (`hits`) and that ran the query (`misses`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheCounts {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
}

impl CacheCounts {
    fn share(self) -> f64 {
        self.hits as f64 / (self.hits + self.misses).max(1) as f64
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuUse {
    pub(crate) server: Option<f64>,
    pub(crate) postgres: Option<f64>,
    pub(crate) bench: f64,
}

/// Everything one run measured.
pub(crate) struct Report {
    pub(crate) mix: String,
    pub(crate) description: String,
    pub(crate) concurrency: usize,
    pub(crate) duration_s: f64,
    /// Slices each phase was measured in, the phases alternating.
    pub(crate) rounds: u32,
    pub(crate) identities: String,
    pub(crate) server: String,
    pub(crate) ready_s: Option<f64>,
    pub(crate) peak_rss_mb: Option<f64>,
    /// The whole mix over MCP.
    pub(crate) mix_phase: PhaseReport,
    /// Only the mix's SQL calls over MCP (when the mix has other calls too and the floor runs).
    pub(crate) sql_phase: Option<PhaseReport>,
    pub(crate) floor: Option<PhaseReport>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

impl Report {
    /// The MCP phase compared with the floor: the SQL-only phase when there is one.
    fn compared(&self) -> &PhaseReport {
        self.sql_phase.as_ref().unwrap_or(&self.mix_phase)
    }

    fn percentiles(phase: &PhaseReport) -> Percentiles {
        Percentiles::of(&phase.result.recorder.all_sorted())
    }

    pub(crate) fn ratio(&self) -> Option<f64> {
        let floor = self.floor.as_ref()?.result.rps();
        (floor > 0.0).then(|| self.compared().result.rps() / floor)
    }

    fn errors(&self) -> u64 {
        [Some(&self.mix_phase), self.sql_phase.as_ref(), self.floor.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| p.result.recorder.error_count())
            .sum()
    }

    fn rss_mb(&self) -> Option<f64> {
        [Some(&self.mix_phase), self.sql_phase.as_ref()].into_iter().flatten().filter_map(|p| p.rss_mb).reduce(f64::max)
    }

    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "mix {} ({}); {} callers; {:.0} s measured per phase{}",
            self.mix,
            self.description,
            self.concurrency,
            self.duration_s,
            match self.rounds {
                1 => String::new(),
                n => format!(", in {n} slices alternating with the other phases"),
            }
        );
        let _ = writeln!(out, "identities: {}; server: {}", self.identities, self.server);
        if let Some(ready) = self.ready_s {
            let _ = writeln!(out, "the server was ready {ready:.2} s after it was started");
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<16} {:>9} {:>8} {:>8} {:>8} {:>7} {:>11} {:>11} {:>10} {:>8}",
            "phase", "calls/s", "p50 ms", "p95 ms", "p99 ms", "errors", "server cpu", "postgres", "bench cpu", "rss MB"
        );
        for phase in [Some(&self.mix_phase), self.sql_phase.as_ref(), self.floor.as_ref()].into_iter().flatten() {
            let p = Self::percentiles(phase);
            let _ = writeln!(
                out,
                "{:<16} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>11} {:>11} {:>10.2} {:>8}",
                phase.name,
                phase.result.rps(),
                p.p50,
                p.p95,
                p.p99,
                phase.result.recorder.error_count(),
                opt(phase.cpu.server, 2),
                opt(phase.cpu.postgres, 2),
                phase.cpu.bench,
                opt(phase.rss_mb, 1),
            );
        }
        let _ = writeln!(out, "(cpu in cores: CPU seconds per second of the phase)");
        let _ = writeln!(out, "\nper call, {}:", self.mix_phase.name);
        let _ = writeln!(
            out,
            "{:<44} {:>9} {:>8} {:>8} {:>8} {:>7}",
            "call", "calls/s", "p50 ms", "p95 ms", "p99 ms", "errors"
        );
        let rec = &self.mix_phase.result.recorder;
        let secs = self.mix_phase.result.elapsed.as_secs_f64().max(1e-9);
        let labels: std::collections::BTreeSet<&String> = rec.ok.keys().chain(rec.errors.keys()).collect();
        for label in labels {
            let mut v = rec.ok.get(label).cloned().unwrap_or_default();
            v.sort_unstable();
            let p = Percentiles::of(&v);
            let errors = rec.errors.get(label).map_or(0, |(n, _)| *n);
            let name: String = label.chars().take(44).collect();
            let _ = writeln!(
                out,
                "{name:<44} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {errors:>7}",
                v.len() as f64 / secs,
                p.p50,
                p.p95,
                p.p99
            );
        }
        if let (Some(ratio), Some(floor)) = (self.ratio(), self.floor.as_ref()) {
            let added = Self::percentiles(self.compared()).p50 - Self::percentiles(floor).p50;
            let _ = writeln!(
                out,
                "\nratio {ratio:.3} ({} / floor); median added by zava-mcp {added:.3} ms per call",
                self.compared().name
            );
        }
        for phase in [Some(&self.mix_phase), self.sql_phase.as_ref()].into_iter().flatten() {
            if let Some(c) = phase.cache.filter(|c| c.hits + c.misses > 0) {
                let _ = writeln!(
                    out,
                    "result cache, {}: {:.1}% of the looked-up queries served from kept results ({} kept, {} run)",
                    phase.name,
                    100.0 * c.share(),
                    c.hits,
                    c.misses
                );
            }
        }
        if let Some(peak) = self.peak_rss_mb {
            let _ = writeln!(
                out,
                "server memory: {} MB at the end of the load, {peak:.1} MB at its peak",
                opt(self.rss_mb(), 1)
            );
        }
        for phase in [Some(&self.mix_phase), self.sql_phase.as_ref(), self.floor.as_ref()].into_iter().flatten() {
            for (label, (n, first)) in &phase.result.recorder.errors {
                let _ = writeln!(out, "{}: {label}: {n} failed; the first: {first}", phase.name);
            }
        }
        out
    }

    pub(crate) fn json(&self) -> Value {
        let compared = self.compared();
        let p = Self::percentiles(compared);
        let floor_p = self.floor.as_ref().map(Self::percentiles);
        json!({
            "mix": self.mix,
            "concurrency": self.concurrency,
            "duration_s": self.duration_s,
            "rounds": self.rounds,
            "mcp_rps": round(compared.result.rps(), 1),
            "mix_rps": round(self.mix_phase.result.rps(), 1),
            "floor_rps": self.floor.as_ref().map(|f| round(f.result.rps(), 1)),
            "ratio": self.ratio().map(|r| round(r, 3)),
            "p50_ms": round(p.p50, 3),
            "p95_ms": round(p.p95, 3),
            "p99_ms": round(p.p99, 3),
            "floor_p50_ms": floor_p.map(|f| round(f.p50, 3)),
            "added_p50_ms": floor_p.map(|f| round(p.p50 - f.p50, 3)),
            "errors": self.errors(),
            "rss_mb": self.rss_mb().map(|r| round(r, 1)),
            "peak_rss_mb": self.peak_rss_mb.map(|r| round(r, 1)),
            "ready_s": self.ready_s.map(|r| round(r, 3)),
            "server_cpu": compared.cpu.server.map(|c| round(c, 2)),
            "postgres_cpu": compared.cpu.postgres.map(|c| round(c, 2)),
            "bench_cpu": round(compared.cpu.bench, 2),
            "cache_hits": compared.cache.map(|c| c.hits),
            "cache_misses": compared.cache.map(|c| c.misses),
        })
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}
