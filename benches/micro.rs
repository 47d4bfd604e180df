//! Micro-benchmarks (Criterion) for the two pieces of per-call work that run on the server's own CPU whatever
//! the database does, so that a regression in either shows before it shows in `zava-mcp bench`:
//!
//! - `guard`: the SQL guard (`ReadOnlySql::parse`: pg_query's parse and the walk over the tree) on every
//!   `execute_sales_query` statement of the light and analytic mixes in `data/bench/`, in queries/s, on a
//!   guard-sized runtime thread as in the server (where it runs inline, without a hand-off);
//! - `encoder`: rows as PostgreSQL sent them (binary) decoded into JSON values, counted against the caps
//!   (`query::Collector`, as a call reads them) and turned into the tool's result (`output::query_result`: the
//!   compact text and the structured content), in rows/s, for a narrow row (a key
//!   and a count) and a wide one of mixed types (text, numeric, timestamptz, date, uuid, bool, arrays, jsonb).
//!
//! Run with `cargo bench --bench micro` (`-- guard` or `-- encoder` for one group). The encoder's rows come from
//! a throwaway managed cluster started once, before anything is timed.

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use serde::Deserialize;
use zava_mcp::db::query::{Collector, Limits};
use zava_mcp::db::roles::Role;
use zava_mcp::guard::{FunctionPolicy, ReadOnlySql};
use zava_mcp::mcp::output;

mod support;

#[derive(Deserialize)]
struct Mix {
    call: Vec<Call>,
}

#[derive(Deserialize)]
struct Call {
    tool: String,
    arguments: toml::Table,
}

/// Every `execute_sales_query` statement of a mix file in `data/bench/`.
fn mix_sql(name: &str) -> Vec<String> {
    let path = format!("{}/data/bench/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let mix: Mix = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let sql: Vec<String> = mix
        .call
        .into_iter()
        .filter(|c| c.tool == "execute_sales_query")
        .filter_map(|c| c.arguments.get("postgresql_query").and_then(|v| v.as_str()).map(str::to_owned))
        .collect();
    assert!(!sql.is_empty(), "{path} has no execute_sales_query call");
    sql
}

fn guard(c: &mut Criterion) {
    let policy = FunctionPolicy::builtin();
    // On the server's runtime threads (guard-sized, like these) the guard runs where it is called; timed there.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let runtime = zava_mcp::guard::guard_sized(builder.worker_threads(1)).build().expect("a runtime");
    let mut group = c.benchmark_group("guard");
    for mix in ["light", "analytic"] {
        let statements = std::sync::Arc::new(mix_sql(mix));
        for sql in statements.iter() {
            ReadOnlySql::parse(sql, &policy).unwrap_or_else(|e| panic!("the guard refuses a {mix} query: {e}\n{sql}"));
        }
        group.throughput(Throughput::Elements(statements.len() as u64));
        group.bench_function(BenchmarkId::new("parse", mix), |b| {
            b.iter_custom(|iterations| {
                let (statements, policy) = (statements.clone(), policy.clone());
                let timed = runtime.spawn(async move {
                    let started = Instant::now();
                    for _ in 0..iterations {
                        for sql in statements.iter() {
                            std::hint::black_box(ReadOnlySql::parse(std::hint::black_box(sql), &policy).is_ok());
                        }
                    }
                    started.elapsed()
                });
                runtime.block_on(timed).expect("the timed loop")
            })
        });
    }
    group.finish();
}

/// A narrow row as the light mix's lookups return, and a wide one with a value of most of the types a model's
/// SQL brings back.
const SHAPES: [(&str, &str); 2] = [
    ("narrow", "SELECT i AS order_id, i % 97 AS items FROM generate_series(1, 1000) AS i"),
    (
        "wide",
        "SELECT i AS product_id, 'Cordless drill ' || i AS product_name, (i * 1.25)::numeric(10, 2) AS base_price, \
         timestamptz '2024-05-01 10:00:00+00' + i * interval '37 minutes' AS ordered_at, \
         date '2024-01-01' + i AS order_date, md5(i::text)::uuid AS customer_id, i % 3 = 0 AS in_stock, \
         ARRAY[i, i + 1, i + 2] AS related, jsonb_build_object('qty', i % 9, 'note', 'aisle ' || i % 40) AS extra, \
         NULL::text AS missing \
         FROM generate_series(1, 1000) AS i",
    ),
];

fn encoder(c: &mut Criterion) {
    let fetched = support::with_throwaway_database(async |db| {
        let client = db.endpoint(Role::Query)?.connect().await?;
        let mut fetched = Vec::new();
        for (name, sql) in SHAPES {
            fetched.push((name, client.query(sql, &[]).await?));
        }
        Ok(fetched)
    })
    .expect("a throwaway cluster to fetch the rows from");
    let limits = Limits { max_rows: 10_000, max_bytes: 64 << 20, ..Limits::default() };
    let mut group = c.benchmark_group("encoder");
    for (name, rows) in &fetched {
        group.throughput(Throughput::Elements(rows.len() as u64));
        group.bench_with_input(BenchmarkId::new("rows_to_result", name), rows, |b, rows| {
            b.iter(|| {
                let mut collected = Collector::new(limits);
                for row in rows {
                    assert!(collected.push(row).expect("decodable"), "within the caps");
                }
                std::hint::black_box(output::query_result(collected.finish()))
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    guard(&mut c);
    encoder(&mut c);
    c.final_summary();
}
