//! Benchmark: full-scale generate + load + index into a real PostgreSQL cluster on this machine.
//!
//! Run with `cargo bench --bench seed`. It starts a throwaway managed cluster, creates the schema, then seeds
//! the full Zava dataset (50,000 customers) several times, printing each phase and the ratio to the 20 s
//! target. Numbers are wall-clock on a shared machine: compare runs side by side, not across days.

use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use zava_mcp::data::encode::{checksum, encode};
use zava_mcp::data::generate::{Dataset, GenOptions};
use zava_mcp::data::load::load;
use zava_mcp::db::roles::Role;

mod support;

const TARGET: Duration = Duration::from_secs(20);
const RUNS: usize = 3;

fn main() -> anyhow::Result<()> {
    support::with_throwaway_database(async |db| {
        let owner = db.endpoint(Role::Owner)?.clone();
        let options = GenOptions::default();
        println!("full-scale seed: {} customers, seed {}, {RUNS} runs", options.customers, options.seed);
        println!(
            "{:>4} {:>10} {:>10} {:>10} {:>10} {:>12} {:>9}",
            "run", "generate", "encode", "load", "total", "rows/s", "/target"
        );
        let mut best = Duration::MAX;
        for run in 1..=RUNS {
            let t0 = Instant::now();
            let data = Dataset::generate(options);
            let t1 = Instant::now();
            let tables = encode(&data);
            let sum = checksum(&tables);
            let t2 = Instant::now();
            load(&owner, &tables, options, &sum, &ProgressBar::hidden()).await?;
            let t3 = Instant::now();
            let rows: usize = tables.iter().map(|t| t.rows).sum();
            let total = t3 - t0;
            best = best.min(total);
            println!(
                "{run:>4} {:>9.2}s {:>9.2}s {:>9.2}s {:>9.2}s {:>12.0} {:>8.2}x",
                (t1 - t0).as_secs_f64(),
                (t2 - t1).as_secs_f64(),
                (t3 - t2).as_secs_f64(),
                total.as_secs_f64(),
                rows as f64 / total.as_secs_f64(),
                total.as_secs_f64() / TARGET.as_secs_f64()
            );
        }
        println!(
            "best {:.2}s = {:.2} of the {}s target",
            best.as_secs_f64(),
            best.as_secs_f64() / TARGET.as_secs_f64(),
            TARGET.as_secs()
        );
        Ok(())
    })
}
