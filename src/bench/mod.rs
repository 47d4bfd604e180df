//! `zava-mcp bench`: load a zava-mcp over real MCP (Streamable HTTP, stateless POSTs) and, in the same run, send
//! the same SQL straight to PostgreSQL with the same per-call transaction (the floor), so the ratio of the two is
//! what the MCP/HTTP/JSON layer costs. It exists so performance work is measured side by side on one machine in
//! one run, never by timers in tests.
//!
//! `mix.rs` reads the mix, `callers.rs` the identities, `target.rs` starts the server, `load.rs` drives MCP,
//! `floor.rs` drives PostgreSQL, `policies.rs` compares the row-level security with a plain design query by query,
//! `stats.rs` measures, `report.rs` prints.

mod callers;
mod floor;
mod load;
mod mix;
mod policies;
mod report;
mod stats;
mod target;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::{DatabaseSource, DbSettings};
use crate::db::roles::Role;
use crate::provision::Database;
use load::{McpTarget, Phase, PhaseResult};
use report::{CacheCounts, CpuUse, PhaseReport, Report};
use stats::ProcSample;

/// What one bench run does, parsed from the command line.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// A built-in mix name or a mix file.
    pub mix: String,
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Slices each phase's measured time is cut into, the phases alternating slice by slice.
    pub rounds: u32,
    /// One identity instead of the rotation.
    pub identity: Option<String>,
    /// An already running server's `/mcp`; else the bench starts one.
    pub url: Option<String>,
    /// Where the started server keeps its data (kept); else a scratch directory, deleted afterwards.
    pub data_dir: Option<PathBuf>,
    /// Arguments added to the started server's `serve` command.
    pub server_args: Vec<String>,
    pub floor: bool,
    /// After the load, time each SQL call under the server's row-level security and under plain policies.
    pub policies: bool,
    /// The statement timeout the floor sets (the server's default).
    pub statement_timeout: Duration,
    pub json: bool,
}

/// The database the floor reaches, for a server at `--url`: the global settings (data directory or DATABASE_URL).
pub struct FloorSource(pub DbSettings);

pub async fn run(settings: BenchSettings, external: FloorSource) -> Result<()> {
    crate::embed::remote::install_tls_provider();
    let mix = Arc::new(mix::Mix::load(&settings.mix)?);
    if settings.policies {
        anyhow::ensure!(settings.floor, "--policies needs the floor's database connection: drop --floor off");
        anyhow::ensure!(mix.calls.iter().any(|c| c.sql.is_some()), "--policies needs a mix with SQL calls");
    }
    let callers = Arc::new(callers::callers(settings.identity.as_deref())?);
    let scratch;
    let (server, url, db_settings) = match &settings.url {
        Some(url) => (None, url.clone(), external.0),
        None => {
            let dir = match &settings.data_dir {
                Some(dir) => dir.clone(),
                None => {
                    scratch = tempfile::Builder::new()
                        .prefix("zava-bench-")
                        .tempdir()
                        .context("cannot make a scratch directory")?;
                    // PostgreSQL runs as its own user and must reach the cluster inside.
                    std::fs::set_permissions(scratch.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
                    scratch.path().to_owned()
                }
            };
            eprintln!("starting zava-mcp serve on {} (the first start seeds the dataset)...", dir.display());
            let server = tokio::task::spawn_blocking({
                let (dir, extra) = (dir.clone(), settings.server_args.clone());
                move || target::StartedServer::start(&dir, &extra, Duration::from_secs(600))
            })
            .await??;
            let url = server.url.clone();
            let db = DbSettings { data_dir: dir, source: DatabaseSource::Managed, context_key: None };
            (Some(server), url, db)
        }
    };
    let floor_target = if settings.floor && mix.calls.iter().any(|c| c.sql.is_some()) {
        let s = db_settings.clone();
        let db = tokio::task::spawn_blocking(move || Database::open(&s))
            .await?
            .context("the floor needs the database the server uses (or run with --floor off)")?;
        let target = floor::FloorTarget {
            query: db.endpoint(Role::Query)?.clone(),
            key: db.context_key().clone(),
            statement_timeout: settings.statement_timeout,
        };
        Some((target, db))
    } else {
        None
    };

    let rounds = settings.rounds.max(1);
    let phase =
        Phase { warmup: settings.warmup, duration: settings.duration / rounds, concurrency: settings.concurrency };
    let server_pid = server.as_ref().map(|s| s.pid());
    let postmaster = server.as_ref().and_then(|s| s.postmaster_pid());
    let mcp = McpTarget { url: url.clone() };
    let metrics = Some(format!("{}/metrics", url.trim_end_matches('/').trim_end_matches("/mcp")));
    let sql_mix = if floor_target.is_some() && !mix.all_sql() { mix.sql_only().map(Arc::new) } else { None };
    let (mut mix_phase, mut sql_phase, mut floor) = (None, None, None);
    for round in 1..=rounds {
        let slice = Slice { phase, round, rounds, server: server_pid, postmaster };
        let (m, c, t) = (mix.clone(), callers.clone(), mcp.clone());
        let report = measured("mcp (mix)", slice, metrics.clone(), move |i, from, end| {
            t.caller(i, m.clone(), c.clone(), from, end)
        })
        .await?;
        PhaseReport::add(&mut mix_phase, report);
        if let Some(sql_mix) = &sql_mix {
            let (m, c, t) = (sql_mix.clone(), callers.clone(), mcp.clone());
            let report = measured("mcp (SQL calls)", slice, metrics.clone(), move |i, from, end| {
                t.caller(i, m.clone(), c.clone(), from, end)
            })
            .await?;
            PhaseReport::add(&mut sql_phase, report);
        }
        if let Some((target, _)) = &floor_target {
            let floor_mix = sql_mix.clone().unwrap_or_else(|| mix.clone());
            let (target, callers) = (target.clone(), callers.clone());
            let slice = Slice { server: None, ..slice };
            let report = measured("floor (SQL)", slice, None, move |i, from, end| {
                target.caller(i, floor_mix.clone(), callers.clone(), from, end)
            })
            .await?;
            PhaseReport::add(&mut floor, report);
        }
    }
    let mix_phase = mix_phase.context("no phase ran")?;
    let peak_rss_mb = server_pid.and_then(ProcSample::of).map(|s| s.peak_rss_kib as f64 / 1024.0);
    let report = Report {
        mix: mix.name.clone(),
        description: mix.description.clone(),
        concurrency: settings.concurrency,
        duration_s: settings.duration.as_secs_f64(),
        rounds,
        identities: match callers.len() {
            1 => callers[0].name.clone(),
            n => format!("rotating over {n} (8 store managers and head office)"),
        },
        server: match &server {
            Some(_) => format!("zava-mcp {} started by the bench at {url}", env!("CARGO_PKG_VERSION")),
            None => format!("{url} (not started by the bench: no server CPU or memory)"),
        },
        ready_s: server.as_ref().map(|s| s.ready_after.as_secs_f64()),
        peak_rss_mb,
        mix_phase,
        sql_phase,
        floor,
    };
    let compared = match (&floor_target, settings.policies) {
        (Some((_, db)), true) => {
            eprintln!("comparing the row-level security with plain policies, query by query...");
            let target = policies::PolicyTarget {
                query: db.endpoint(Role::Query)?.clone(),
                admin: db.admin_on_served()?,
                owner_role: db.endpoint(Role::Owner)?.user.clone(),
                key: db.context_key().clone(),
            };
            Some(policies::compare(&target, &mix).await?)
        }
        _ => None,
    };
    print!("{}", report.text());
    if let Some(timings) = &compared {
        print!("{}", policies::text(timings));
    }
    if settings.json {
        let mut json = report.json();
        if let Some(timings) = &compared {
            json["policies"] = policies::json(timings);
        }
        println!("{json}");
    }
    if let Some((_, db)) = floor_target {
        tokio::task::spawn_blocking(move || db.close()).await??;
    }
    drop(server);
    Ok(())
}

/// One slice of a phase: the phase (its warm-up, its share of the measured time), which round of how many, and
/// whose CPU to measure.
#[derive(Debug, Clone, Copy)]
struct Slice {
    phase: Phase,
    round: u32,
    rounds: u32,
    server: Option<u32>,
    postmaster: Option<u32>,
}

/// Runs one slice of a phase with a progress line, and measures the CPU of the server, PostgreSQL and the bench
/// over the measured part (after the warm-up) and the server's memory at the end.
async fn measured<F, Fut>(name: &'static str, slice: Slice, metrics: Option<String>, caller: F) -> Result<PhaseReport>
where
    F: Fn(usize, Instant, Instant) -> Fut,
    Fut: std::future::Future<Output = Result<stats::Recorder>> + Send + 'static,
{
    let Slice { phase, server, postmaster, .. } = slice;
    let bar = indicatif::ProgressBar::new((phase.warmup + phase.duration).as_secs().max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:<22} [{bar:30}] {pos}/{len} s").expect("a valid template"),
    );
    bar.set_message(match slice.rounds {
        1 => name.to_owned(),
        n => format!("{name} {}/{n}", slice.round),
    });
    let sample = move || {
        (
            server.and_then(ProcSample::of).map(|s| s.cpu),
            postmaster.map(ProcSample::cpu_of_tree),
            ProcSample::of(std::process::id()).map(|s| s.cpu).unwrap_or_default(),
        )
    };
    // Sampled by the clock, not when the callers are done: a caller that finishes closes its connection, and
    // a PostgreSQL backend that has exited no longer counts in its postmaster's tree.
    let ticker = {
        let bar = bar.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut before = None;
            let mut cache_before = None;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                bar.set_position(started.elapsed().as_secs());
                if before.is_none() && started.elapsed() >= phase.warmup {
                    before = Some((Instant::now(), sample()));
                    cache_before = cache_counts(metrics.as_deref()).await;
                }
                if started.elapsed() >= phase.warmup + phase.duration {
                    let after = (Instant::now(), sample());
                    let cache = match (cache_before, cache_counts(metrics.as_deref()).await) {
                        (Some(a), Some(b)) => Some(CacheCounts {
                            hits: b.hits - a.hits.min(b.hits),
                            misses: b.misses - a.misses.min(b.misses),
                        }),
                        _ => None,
                    };
                    return (before.unwrap_or_else(|| (Instant::now(), sample())), after, cache);
                }
            }
        })
    };
    let result: PhaseResult = load::run_phase(phase, caller).await?;
    let (before, after, cache) = ticker.await?;
    bar.finish_and_clear();
    let secs = after.0.duration_since(before.0).as_secs_f64().max(1e-3);
    let per_second = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?).as_secs_f64() / secs);
    let cpu = CpuUse {
        server: per_second(before.1.0, after.1.0),
        postgres: per_second(before.1.1, after.1.1),
        bench: after.1.2.saturating_sub(before.1.2).as_secs_f64() / secs,
    };
    let rss_mb = server.and_then(ProcSample::of).map(|s| s.rss_kib as f64 / 1024.0);
    Ok(PhaseReport { name, result, cpu, rss_mb, cache })
}

/// The server's result-cache lookups so far, read from its Prometheus metrics (`None` when it serves none).
async fn cache_counts(metrics: Option<&str>) -> Option<CacheCounts> {
    let text = reqwest::get(metrics?).await.ok()?.error_for_status().ok()?.text().await.ok()?;
    let count = |result: &str| {
        let series = format!("zava_cache_requests_total{{cache=\"result\",result=\"{result}\"}}");
        text.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(0.0)
    };
    Some(CacheCounts { hits: count("hit") as u64, misses: count("miss") as u64 })
}
