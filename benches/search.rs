//! Benchmark: product search relevance and throughput, side by side for the three modes.
//!
//! Run with `cargo bench --bench search`. It starts a throwaway managed cluster, seeds a small dataset (the
//! catalog is the same at any size), embeds the products with the local model, then runs every labelled query
//! in `data/search_eval.toml` in each mode and prints precision@5 and MRR (a result is relevant when its
//! "CATEGORY / TYPE" is listed for the query); `-- --misses` also lists the queries whose top 5 are not all
//! relevant. Then it measures searches per second through the real path (query embedding + tenant transaction +
//! SQL) for one caller and for eight concurrent callers (whose query embeddings the model computes in batches),
//! uncached and with the query-embedding cache warm, and the query embedding alone. It also times embedding every
//! product (what a first `serve` adds to the dataset's generation).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use zava_mcp::data::generate::GenOptions;
use zava_mcp::db::context::{self, CONTEXT_VALIDITY, SignedContext};
use zava_mcp::db::endpoint::Endpoint;
use zava_mcp::db::roles::Role;
use zava_mcp::embed::provider::{Embedder, QueryEmbedder};
use zava_mcp::search::{SearchHit, SearchMode, SearchRequest, SearchStatement, search};
use zava_mcp::tenant::{Access, PersonalData, Tenant};

mod support;

#[derive(Deserialize)]
struct EvalSet {
    query: Vec<Labelled>,
}

#[derive(Deserialize)]
struct Labelled {
    text: String,
    relevant: Vec<String>,
}

impl Labelled {
    fn is_relevant(&self, hit: &SearchHit) -> bool {
        self.relevant.contains(&format!("{} / {}", hit.category_name, hit.type_name))
    }
}

/// `text` with the case of its letters flipped by the bits of `variant`: a distinct cache key for the same tokens
/// (the model is uncased), so "computed" measures real query lengths rather than texts with a counter appended.
fn recased(text: &str, variant: usize) -> String {
    let mut bits = variant + 1;
    text.chars()
        .map(|c| {
            if !c.is_ascii_alphabetic() {
                return c;
            }
            let flip = bits & 1 == 1;
            bits >>= 1;
            if flip { c.to_ascii_uppercase() } else { c }
        })
        .collect()
}

/// Runs `texts` as default-mode searches from `clients` concurrent callers; returns (searches, seconds).
async fn throughput(
    endpoint: &Endpoint,
    ctx: &SignedContext,
    embeddings: &QueryEmbedder,
    texts: Vec<String>,
    clients: usize,
) -> anyhow::Result<(usize, f64)> {
    let texts = Arc::new(texts);
    let next = Arc::new(AtomicUsize::new(0));
    let mut connections = Vec::new();
    for _ in 0..clients {
        let client = endpoint.connect().await?;
        let statement = SearchStatement::prepare(&client).await?;
        connections.push((client, statement));
    }
    let started = Instant::now();
    let workers: Vec<_> = connections
        .into_iter()
        .map(|(mut client, statement)| {
            let (texts, next, ctx, embeddings) = (texts.clone(), next.clone(), ctx.clone(), embeddings.clone());
            tokio::spawn(async move {
                while let Some(text) = texts.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let request = SearchRequest::new(text, Some(20), None, None)?;
                    let embedding = embeddings.embed(text).await?.as_ref().clone();
                    let tx = context::begin(&mut client, &ctx, Duration::from_secs(30)).await?;
                    search(tx.client(), &statement, &request, Some(embedding)).await?;
                    tx.rollback().await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    Ok((texts.len(), started.elapsed().as_secs_f64()))
}

fn main() -> anyhow::Result<()> {
    // As the server does: one thread per model batch, batches in parallel.
    // SAFETY: no other thread exists yet.
    unsafe { zava_mcp::embed::local::prefer_one_thread_per_batch() };
    let show_misses = std::env::args().any(|a| a == "--misses");
    let eval: EvalSet = toml::from_str(include_str!("../data/search_eval.toml"))?;
    let embedder = Embedder::local(None)?;
    support::with_throwaway_database(async |db| {
        let started = Instant::now();
        db.seed(GenOptions { seed: 42, customers: 200 }, &embedder, false).await?;
        let seeded = started.elapsed();
        let owner = db.endpoint(Role::Owner)?.clone();
        let started = Instant::now();
        let bar = indicatif::ProgressBar::hidden();
        let n = zava_mcp::embed::products::embed_products(&owner, &embedder, true, &bar).await?;
        println!(
            "seed with 200 customers, products embedded: {:.1} s; re-embedding all {n} products: {:.1} s\n",
            seeded.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        let query_endpoint = db.endpoint(Role::Query)?.clone();
        let ctx = SignedContext::sign(
            &Access::new(Tenant::HeadOffice, PersonalData::Masked),
            db.context_key(),
            CONTEXT_VALIDITY,
        );
        let mut client = query_endpoint.connect().await?;
        let statement = SearchStatement::prepare(&client).await?;
        let cache = QueryEmbedder::new(embedder.clone(), 10_000);

        println!("relevance over {} labelled queries (data/search_eval.toml)", eval.query.len());
        println!("{:>9} {:>13} {:>8}", "mode", "precision@5", "MRR");
        for mode in [SearchMode::Semantic, SearchMode::Keyword, SearchMode::Hybrid] {
            let (mut precision, mut mrr) = (0.0, 0.0);
            for q in &eval.query {
                let request = SearchRequest::new(&q.text, Some(5), Some(0.0), Some(mode))?;
                let embedding = match mode {
                    SearchMode::Keyword => None,
                    _ => Some(cache.embed(&q.text).await?.as_ref().clone()),
                };
                let tx = context::begin(&mut client, &ctx, Duration::from_secs(30)).await?;
                let hits = search(tx.client(), &statement, &request, embedding).await?;
                tx.rollback().await?;
                let relevant: Vec<bool> = hits.iter().map(|h| q.is_relevant(h)).collect();
                let found = relevant.iter().filter(|r| **r).count();
                precision += found as f64 / 5.0;
                mrr += relevant.iter().position(|r| *r).map_or(0.0, |i| 1.0 / (i as f64 + 1.0));
                if show_misses && found < 5 {
                    println!("  [{mode:?}] {found}/5 {:?} (want {:?})", q.text, q.relevant);
                    for (h, ok) in hits.iter().zip(&relevant) {
                        println!("      {} {} ({})", if *ok { "+" } else { "-" }, h.product_name, h.type_name);
                    }
                }
            }
            let n = eval.query.len() as f64;
            println!("{:>9} {:>13.3} {:>8.3}", format!("{mode:?}").to_lowercase(), precision / n, mrr / n);
        }

        println!("\nthroughput, default mode, max_rows 20, queries from the eval set; one connection per caller");
        println!("{:>8} {:>10} {:>12} {:>10}", "callers", "embedding", "searches/s", "ms each");
        for callers in [1usize, 8, 32] {
            for warm in [false, true] {
                // Computed: every text is new to the cache but reads the same to the (uncased) model.
                let texts: Vec<String> = eval
                    .query
                    .iter()
                    .cycle()
                    .take(if warm { 2000 } else { 400 })
                    .enumerate()
                    .map(|(n, q)| if warm { q.text.clone() } else { recased(&q.text, n * 10 + callers) })
                    .collect();
                let embeddings = if warm { cache.clone() } else { QueryEmbedder::new(embedder.clone(), 10_000) };
                let (n, secs) = throughput(&query_endpoint, &ctx, &embeddings, texts, callers).await?;
                println!(
                    "{callers:>8} {:>10} {:>12.0} {:>10.2}",
                    if warm { "cached" } else { "computed" },
                    n as f64 / secs,
                    secs * 1000.0 * callers as f64 / n as f64
                );
            }
        }
        println!("\nquery embedding alone (no database), computed");
        for callers in [1usize, 8, 32] {
            let embeddings = QueryEmbedder::new(embedder.clone(), 10_000);
            let texts: Vec<String> = eval
                .query
                .iter()
                .cycle()
                .take(400)
                .enumerate()
                .map(|(n, q)| recased(&q.text, n * 10 + callers + 5))
                .collect();
            let texts = Arc::new(texts);
            let next = Arc::new(AtomicUsize::new(0));
            let started = Instant::now();
            let workers: Vec<_> = (0..callers)
                .map(|_| {
                    let (texts, next, embeddings) = (texts.clone(), next.clone(), embeddings.clone());
                    tokio::spawn(async move {
                        while let Some(text) = texts.get(next.fetch_add(1, Ordering::Relaxed)) {
                            embeddings.embed(text).await?;
                        }
                        anyhow::Ok(())
                    })
                })
                .collect();
            for w in workers {
                w.await??;
            }
            let secs = started.elapsed().as_secs_f64();
            println!("{callers:>8} {:>10} {:>12.0}", "computed", texts.len() as f64 / secs);
        }
        Ok(())
    })
}
