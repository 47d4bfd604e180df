//! Benchmark: product search relevance and throughput, side by side for the three modes.
//!
//! Run with `cargo bench --bench search`. It starts a throwaway managed cluster, seeds a small dataset (the
//! catalog is the same at any size), embeds the products with the local model, then runs every labelled query
//! in `data/search_eval.toml` in each mode and prints precision@5 and MRR (a result is relevant when its
//! "CATEGORY / TYPE" is listed for the query). Then it measures searches per second through the real path
//! (query embedding + tenant transaction + SQL), uncached and with the query-embedding cache warm.

use std::time::{Duration, Instant};

use serde::Deserialize;
use zava_mcp::config::DbSettings;
use zava_mcp::data::generate::GenOptions;
use zava_mcp::db::context::{self, CONTEXT_VALIDITY, SignedContext};
use zava_mcp::db::roles::Role;
use zava_mcp::embed::provider::{Embedder, QueryEmbedder};
use zava_mcp::provision::Database;
use zava_mcp::search::{SearchMode, SearchRequest, search};
use zava_mcp::tenant::Tenant;

#[derive(Deserialize)]
struct EvalSet {
    query: Vec<Labelled>,
}

#[derive(Deserialize)]
struct Labelled {
    text: String,
    relevant: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let eval: EvalSet = toml::from_str(include_str!("../data/search_eval.toml"))?;
    let dir = tempfile::Builder::new().prefix("zava-bench-").tempdir()?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    let settings = DbSettings::resolve(dir.path().to_owned(), None, None)?;
    let db = Database::open(&settings)?;
    let embedder = Embedder::local(None)?;
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(async {
        db.init().await?;
        db.seed(GenOptions { seed: 42, customers: 200 }, &embedder, false).await?;
        let query_endpoint = db.endpoint(Role::Query)?.clone();
        let ctx = SignedContext::sign(&Tenant::HeadOffice, db.context_key(), CONTEXT_VALIDITY);
        let mut client = query_endpoint.connect().await?;
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
                let hits = search(&tx, &request, embedding).await?;
                tx.rollback().await?;
                let relevant: Vec<bool> = hits
                    .iter()
                    .map(|h| q.relevant.contains(&format!("{} / {}", h.category_name, h.type_name)))
                    .collect();
                precision += relevant.iter().filter(|r| **r).count() as f64 / 5.0;
                mrr += relevant.iter().position(|r| *r).map_or(0.0, |i| 1.0 / (i as f64 + 1.0));
            }
            let n = eval.query.len() as f64;
            println!("{:>9} {:>13.3} {:>8.3}", format!("{mode:?}").to_lowercase(), precision / n, mrr / n);
        }

        println!("\nthroughput, one connection, hybrid, max_rows 20 (queries from the eval set)");
        for (label, warm) in [("uncached", false), ("cache hit", true)] {
            let fresh = QueryEmbedder::new(embedder.clone(), 10_000);
            let cache = if warm { &cache } else { &fresh };
            let started = Instant::now();
            let mut n = 0;
            for q in eval.query.iter().cycle().take(if warm { 1000 } else { eval.query.len() * 2 }) {
                let request = SearchRequest::new(&q.text, Some(20), None, Some(SearchMode::Hybrid))?;
                // Uncached: a new text each time (a suffix defeats the cache but not the model's work).
                let text = if warm { q.text.clone() } else { format!("{} #{n}", q.text) };
                let embedding = cache.embed(&text).await?.as_ref().clone();
                let tx = context::begin(&mut client, &ctx, Duration::from_secs(30)).await?;
                search(&tx, &request, Some(embedding)).await?;
                tx.rollback().await?;
                n += 1;
            }
            let secs = started.elapsed().as_secs_f64();
            println!("{label:>10}: {:>7.0} searches/s ({:.2} ms each)", n as f64 / secs, secs * 1000.0 / n as f64);
        }
        anyhow::Ok(())
    });
    drop(rt);
    if let Some(c) = db.cluster().cloned() {
        drop(db);
        c.destroy()?;
    }
    result
}
