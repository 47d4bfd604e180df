//! Benchmark: local sentence-embedding throughput (all-MiniLM-L6-v2 with candle on this machine's CPU).
//!
//! Run with `cargo bench --bench embed` after `scripts/setup.sh` installed the model. It prints the load time,
//! milliseconds per single short query (what one uncached `semantic_search_products` call pays) and per
//! sentence in batches of 64 ~45-token product descriptions (bulk seeding), 100 iterations of each, and the
//! searches per second the single-query figure allows against issue #4's goal of 200. Numbers are wall-clock
//! on a shared machine: compare runs side by side, not across days.

use std::time::{Duration, Instant};

use zava_mcp::embed::local::LocalModel;

const ITERATIONS: usize = 100;
const BATCH: usize = 64;
const GOAL_SEARCHES_PER_SEC: f64 = 200.0;

fn main() -> anyhow::Result<()> {
    let dir = LocalModel::default_dir();
    let started = Instant::now();
    let model = LocalModel::load(&dir)?;
    println!("load {} from {}: {:.0} ms", model.model_id(), dir.display(), ms(started.elapsed()));

    let queries = ["cordless drill with battery", "exterior paint for wood siding", "red running shoes"];
    model.embed_batch(&queries)?; // warm-up
    let started = Instant::now();
    for i in 0..ITERATIONS {
        model.embed_batch(&[queries[i % queries.len()]])?;
    }
    let per_query = ms(started.elapsed()) / ITERATIONS as f64;

    let descriptions: Vec<String> = (0..BATCH)
        .map(|i| {
            format!(
                "Item {i}: a durable exterior latex paint in satin finish that resists mildew, fading and peeling, \
                 covers up to 400 square feet per gallon and cleans up with soap and water."
            )
        })
        .collect();
    let refs: Vec<&str> = descriptions.iter().map(String::as_str).collect();
    model.embed_batch(&refs)?; // warm-up
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        model.embed_batch(&refs)?;
    }
    let per_batch = ms(started.elapsed()) / ITERATIONS as f64;

    let searches_per_sec = 1000.0 / per_query;
    println!("single query: {per_query:.2} ms ({searches_per_sec:.0} embeddings/s on one caller)");
    println!("batch of {BATCH}: {per_batch:.1} ms, {:.2} ms/sentence", per_batch / BATCH as f64);
    println!(
        "issue #4 goal {GOAL_SEARCHES_PER_SEC:.0} searches/s uncached: {:.2}x from query embedding alone",
        searches_per_sec / GOAL_SEARCHES_PER_SEC
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
