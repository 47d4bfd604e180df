//! Benchmark: local sentence-embedding throughput (all-MiniLM-L6-v2 with candle on this machine's CPU).
//!
//! Run with `cargo bench --bench embed` after `scripts/setup.sh` installed the model. It prints the load time,
//! milliseconds per single short query (what one uncached `semantic_search_products` call pays), per query
//! when 8 concurrent queries are embedded as one batch, and per sentence in batches of 64 ~47-token product
//! descriptions (bulk seeding; the catalog's descriptions are 37-67 tokens), 100 iterations of each, and what
//! the single-query figure means for issue #4's goal of 200 uncached searches/s. Numbers are wall-clock on a
//! shared machine: compare runs side by side, not across days.

use std::time::{Duration, Instant};

use zava_mcp::embed::local::LocalModel;

const ITERATIONS: usize = 100;
const GOAL_SEARCHES_PER_SEC: f64 = 200.0;

fn main() -> anyhow::Result<()> {
    let dir = LocalModel::default_dir();
    let started = Instant::now();
    let model = LocalModel::load(&dir)?;
    println!("load {} from {}: {:.0} ms", model.model_id(), dir.display(), ms(started.elapsed()));

    let queries = [
        "cordless drill with battery",
        "exterior paint for wood siding",
        "red running shoes",
        "copper pipe fittings",
        "led shop light",
        "garden hose that does not kink",
        "wood glue for furniture",
        "storage shelves for the garage",
    ];
    let single = per_call(|i| model.embed_batch(&[queries[i % queries.len()]]))?;
    let eight = per_call(|_| model.embed_batch(&queries))?;

    let descriptions: Vec<String> = (0..64)
        .map(|i| {
            format!(
                "Item {i}: a durable exterior latex paint in satin finish that resists mildew, fading and peeling, \
                 covers up to 400 square feet per gallon, dries in one hour and cleans up with soap and water."
            )
        })
        .collect();
    let refs: Vec<&str> = descriptions.iter().map(String::as_str).collect();
    let batch = per_call(|_| model.embed_batch(&refs))?;

    println!("single query: {single:.2} ms ({:.0} queries/s)", 1000.0 / single);
    println!("8 queries in one batch: {eight:.1} ms, {:.2} ms/query ({:.0} queries/s)", eight / 8.0, 8000.0 / eight);
    println!("batch of 64 descriptions: {batch:.0} ms, {:.2} ms/sentence", batch / 64.0);
    println!(
        "issue #4 goal {GOAL_SEARCHES_PER_SEC:.0} uncached searches/s: query embedding alone allows {:.2}x one at a \
         time, {:.2}x batched by 8",
        1000.0 / single / GOAL_SEARCHES_PER_SEC,
        8000.0 / eight / GOAL_SEARCHES_PER_SEC
    );
    Ok(())
}

/// Mean milliseconds per call of `f` over [`ITERATIONS`] calls, after one warm-up call.
fn per_call<T>(mut f: impl FnMut(usize) -> anyhow::Result<T>) -> anyhow::Result<f64> {
    f(0)?;
    let started = Instant::now();
    for i in 0..ITERATIONS {
        f(i)?;
    }
    Ok(ms(started.elapsed()) / ITERATIONS as f64)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
