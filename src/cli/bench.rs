//! `zava-mcp bench`: its flags and help; the work is in `crate::bench`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::bench::{BenchSettings, FloorSource};
use crate::config::DbSettings;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
zava-mcp bench                                   the light mix, 32 callers, 10 s per phase in 3 slices\n  \
zava-mcp bench --mix analytic --concurrency 8\n  \
zava-mcp bench --mix search --duration 20s --json\n  \
zava-mcp bench --concurrency 1 --identity seattle\n  \
zava-mcp bench --url http://127.0.0.1:8000/mcp    a server already running (header identities)\n\n\
Phases: `mcp (mix)` sends the whole mix over MCP; `mcp (SQL calls)` only its execute_sales_query calls (when the \
mix has others); `floor (SQL)` the same SQL straight to PostgreSQL as the query role, each call `BEGIN READ ONLY`, \
the caller's signed context and statement timeout, the statement, `ROLLBACK`, pipelined in one round trip. \
`ratio` is MCP calls/s over floor calls/s for the same SQL, callers and identities. The bench shares the machine \
with the server and PostgreSQL: its own CPU is printed so you can tell when it is the limit.")]
pub struct BenchArgs {
    /// The mix of calls: `light` (schema calls, indexed lookups, small counts), `analytic` (twelve store-manager
    /// questions over the full data), `search` (product searches, query embeddings never cached), or the path
    /// of a mix file (TOML like data/bench/light.toml).
    #[arg(long, default_value = "light", value_name = "NAME|FILE")]
    pub mix: String,
    /// Callers at once, each with a connection of its own (1 to 1024).
    #[arg(long, short = 'c', default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub concurrency: u16,
    /// How long each phase is measured: `10s`, `1m`.
    #[arg(long, short = 'd', default_value = "10s", value_parser = seconds, value_name = "TIME")]
    pub duration: Duration,
    /// Split each phase's measured time into this many slices and alternate the phases slice by slice (mix,
    /// SQL calls, floor, then again), so a machine whose speed drifts during the run weighs on every phase
    /// alike; each slice has its own warm-up. 1 runs each phase in one piece.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub rounds: u16,
    /// Calls made before each phase's measurement starts (connections opened, caches and plans warm).
    #[arg(long, default_value = "2s", value_parser = seconds_or_zero, value_name = "TIME")]
    pub warmup: Duration,
    /// Call as one identity only: a store (`seattle`), `head-office`, or a manager's UUID. Default: each call
    /// the next of the 8 store managers and head office.
    #[arg(long, value_name = "NAME")]
    pub identity: Option<String>,
    /// Load a server that is already running (its /mcp URL; it must take header identities). Default: start
    /// one on a scratch data directory. The floor then uses --data-dir or DATABASE_URL to reach its database.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Keep the started server's data here (seeded on first use, reused after) instead of a scratch directory
    /// deleted at the end: later runs start in about a second.
    #[arg(long, value_name = "DIR", conflicts_with = "url")]
    pub bench_dir: Option<PathBuf>,
    /// An argument for the started server's `serve`, e.g. `--server-arg=--pool-size=16` (repeatable).
    #[arg(long = "server-arg", value_name = "ARG", allow_hyphen_values = true, conflicts_with = "url")]
    pub server_args: Vec<String>,
    /// Whether the started server keeps results for reuse (its --result-cache). Off by default, so the MCP side
    /// runs every query as the floor does; `on` shows what the cache saves on a mix that repeats its SQL (hits
    /// and misses are printed apart, read from the server's /metrics).
    #[arg(long, value_enum, default_value = "off")]
    pub cache: OnOff,
    /// Whether to measure the floor.
    #[arg(long, value_enum, default_value = "on")]
    pub floor: OnOff,
    /// The floor's statement timeout in milliseconds (the server's default).
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=86_400_000))]
    pub statement_timeout_ms: u64,
    /// After the load, time each SQL call of the mix for the smallest store, a middle store and head office under
    /// zava-mcp's row-level security and under a plain `store_id = …` policy with normal statistics (made in an
    /// administrator transaction that is rolled back), and print the two side by side (`policies` in --json).
    /// Needs an administrator connection: the managed cluster has one.
    #[arg(long)]
    pub policies: bool,
    /// Also print the figures as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

fn seconds(s: &str) -> Result<Duration, String> {
    s.parse::<crate::db::backup::Every>().map(|e| e.0)
}

fn seconds_or_zero(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" || s.trim() == "0s" { Ok(Duration::ZERO) } else { seconds(s) }
}

pub(super) async fn bench(settings: DbSettings, args: BenchArgs) -> Result<()> {
    let bench = BenchSettings {
        mix: args.mix,
        concurrency: usize::from(args.concurrency),
        duration: args.duration,
        warmup: args.warmup,
        rounds: args.rounds as u32,
        identity: args.identity,
        url: args.url,
        data_dir: args.bench_dir,
        server_args: {
            let cache = if args.cache == OnOff::On { "--result-cache=on" } else { "--result-cache=off" };
            std::iter::once(cache.to_owned()).chain(args.server_args).collect()
        },
        floor: args.floor == OnOff::On,
        policies: args.policies,
        statement_timeout: Duration::from_millis(args.statement_timeout_ms),
        json: args.json,
    };
    crate::bench::run(bench, FloorSource(settings)).await
}
