//! `zava-mcp bench --policies`: each SQL call of the mix timed under zava-mcp's row-level security and under a
//! plain design, for the smallest store, a middle store and head office, so a policy that plans badly for some
//! store shows query by query (issue #13: "at least as fast as a plain `store_id` policy").
//!
//! "Ours" is what the server runs: the query role, the caller's signed context opened as the server opens it, the
//! policies of the migrations (`store_id = ANY ((SELECT tenant_store_ids()))` for managers, a one-time check of
//! the context for head office's role, V12) and no statistics on the tenant key (V5, so estimates do not tell one
//! store another's size). "Plain" is the textbook design a single-purpose app would use: a policy
//! `store_id = current_setting(…)::integer` on orders, order items and inventory, normal statistics on
//! `store_id`, and no filter at all for head office (the tables' owner). It is made inside one administrator
//! transaction that is rolled back, so the database is left as it was; while it stands it holds the tables'
//! locks, so it runs after the load, between two passes of "ours" whose samples are pooled. Customers stay behind
//! their view in both (its rule reads the signed context, which both set).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tokio_postgres::Client;

use super::callers::Caller;
use super::mix::Mix;
use crate::data::stores::STORES;
use crate::db::context::{self, CONTEXT_VALIDITY, ContextKey, SignedContext};
use crate::db::endpoint::Endpoint;
use crate::tenant::HEAD_OFFICE_ID;

/// Timed runs of each query per identity and design (after one untimed run).
const RUNS: usize = 7;

/// The statement timeout of "ours" (the server's opening sets one; plain runs have none).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Slower than plain by more than this share counts as slower: below it, the machine's noise decides.
const NOISE: f64 = 0.10;

/// The tables whose tenant rule is a policy on `store_id`.
const POLICY_TABLES: [&str; 3] = ["orders", "order_items", "inventory"];

/// Where the comparison connects.
pub(crate) struct PolicyTarget {
    pub(crate) query: Endpoint,
    /// A superuser on the served database: it replaces the policies inside its transaction.
    pub(crate) admin: Endpoint,
    /// The role that owns the retail tables (head office's plain reading).
    pub(crate) owner_role: String,
    pub(crate) key: ContextKey,
}

/// One query for one identity: median milliseconds under each design.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub(crate) query: String,
    pub(crate) identity: String,
    pub(crate) ours_ms: f64,
    pub(crate) plain_ms: f64,
}

impl Timing {
    fn ratio(&self) -> f64 {
        self.ours_ms / self.plain_ms.max(1e-6)
    }

    fn slower(&self) -> bool {
        self.ratio() > 1.0 + NOISE
    }
}

/// One identity compared, and the store its plain policy lets through (`None`: head office, every row).
struct Subject {
    caller: Caller,
    store: Option<i32>,
}

/// The identities compared: the store with the fewest orders, the middle one, and head office.
async fn subjects(admin: &Client) -> Result<Vec<Subject>> {
    let rows = admin
        .query("SELECT store_id FROM retail.orders GROUP BY store_id ORDER BY count(*), store_id", &[])
        .await
        .context("cannot count each store's orders")?;
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    anyhow::ensure!(!ids.is_empty(), "retail.orders is empty: seed the database first");
    let store = |id: i32| {
        let spec = usize::try_from(id - 1).ok().and_then(|i| STORES.get(i)).context("a store_id without a store")?;
        Ok::<_, anyhow::Error>(Subject { caller: Caller::new(spec.name, spec.manager), store: Some(id) })
    };
    let mut chosen = vec![store(ids[0])?];
    if ids.len() > 2 {
        chosen.push(store(ids[ids.len() / 2])?);
    }
    chosen.push(Subject { caller: Caller::new("head office", HEAD_OFFICE_ID), store: None });
    Ok(chosen)
}

/// Runs the comparison for every SQL call of `mix`.
pub(crate) async fn compare(target: &PolicyTarget, mix: &Mix) -> Result<Vec<Timing>> {
    let queries: Vec<(&str, &str)> =
        mix.calls.iter().filter_map(|c| c.sql.as_deref().map(|sql| (c.label.as_str(), sql))).collect();
    let admin = target.admin.connect().await.context("--policies needs an administrator connection")?;
    let subjects = subjects(&admin).await?;
    let query = target.query.connect().await?;
    let ours = |who: &Subject| {
        let context = SignedContext::sign(&who.caller.access, &target.key, CONTEXT_VALIDITY);
        context::opening(&context, STATEMENT_TIMEOUT)
    };
    let mut samples = pass(&query, &subjects, &queries, ours, "ROLLBACK").await?;
    let plain = plain_pass(&admin, target, &subjects, &queries).await?;
    for (samples, more) in samples.iter_mut().zip(pass(&query, &subjects, &queries, ours, "ROLLBACK").await?) {
        samples.extend(more);
    }
    let mut timings = Vec::new();
    let mut cells = samples.into_iter().zip(plain);
    for (label, _) in &queries {
        for who in &subjects {
            let (ours, plain) = cells.next().context("a timing per query and identity")?;
            timings.push(Timing {
                query: (*label).to_owned(),
                identity: who.caller.name.clone(),
                ours_ms: median(ours),
                plain_ms: median(plain),
            });
        }
    }
    Ok(timings)
}

/// Samples per (query, identity), in that order: for each, `open` sent, the query timed, `close` sent (also after
/// a failure, whose error is the one reported).
async fn pass(
    client: &Client,
    subjects: &[Subject],
    queries: &[(&str, &str)],
    open: impl Fn(&Subject) -> String,
    close: &str,
) -> Result<Vec<Vec<Duration>>> {
    let mut out = Vec::new();
    for (_, sql) in queries {
        for who in subjects {
            client.batch_execute(&open(who)).await?;
            let samples = timed(client, sql).await;
            let closed = client.batch_execute(close).await;
            out.push(samples?);
            closed?;
        }
    }
    Ok(out)
}

/// Samples per (query, identity) under plain policies, made and dropped in one rolled-back transaction.
async fn plain_pass(
    admin: &Client,
    target: &PolicyTarget,
    subjects: &[Subject],
    queries: &[(&str, &str)],
) -> Result<Vec<Vec<Duration>>> {
    let mut setup = String::from("BEGIN;");
    for t in POLICY_TABLES {
        setup.push_str(&format!(
            " ALTER TABLE retail.{t} ALTER COLUMN store_id SET STATISTICS -1; DROP POLICY tenant_read ON retail.{t};
              CREATE POLICY plain_read ON retail.{t} FOR SELECT TO PUBLIC
                  USING (store_id = current_setting('zava.plain_store')::integer);"
        ));
    }
    setup.push_str(&format!(" ANALYZE {};", POLICY_TABLES.map(|t| format!("retail.{t}")).join(", ")));
    admin.batch_execute(&setup).await.context("cannot put the plain policies in place")?;
    let open = |who: &Subject| {
        let context = SignedContext::sign(&who.caller.access, &target.key, CONTEXT_VALIDITY);
        let role = if who.store.is_some() { &target.query.user } else { &target.owner_role };
        format!(
            "SET LOCAL ROLE \"{role}\"; SET LOCAL zava.plain_store = '{}'; SET LOCAL zava.tenant = '{}'",
            who.store.unwrap_or(0),
            context.as_str()
        )
    };
    let result = pass(admin, subjects, queries, open, "RESET ROLE").await;
    admin.batch_execute("ROLLBACK").await.context("cannot roll the plain policies back")?;
    result
}

/// One untimed run, then [`RUNS`] timed ones, each as one unnamed statement like the server's.
async fn timed(client: &Client, sql: &str) -> Result<Vec<Duration>> {
    client.query_typed(sql, &[]).await?;
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        client.query_typed(sql, &[]).await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples.get(samples.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// The table the bench prints.
pub(crate) fn text(timings: &[Timing]) -> String {
    let mut out = format!(
        "\nrow-level security against a plain store_id policy (median of {} runs each, ms; slower = more than {:.0}% \
         over plain):\n{:<44} {:<12} {:>8} {:>8} {:>6}\n",
        RUNS * 2,
        NOISE * 100.0,
        "query",
        "identity",
        "ours",
        "plain",
        "ratio"
    );
    for t in timings {
        let mark = if t.slower() { "  slower" } else { "" };
        let query: String = t.query.chars().take(44).collect();
        out.push_str(&format!(
            "{query:<44} {:<12} {:>8.2} {:>8.2} {:>6.2}{mark}\n",
            t.identity,
            t.ours_ms,
            t.plain_ms,
            t.ratio()
        ));
    }
    let slower = timings.iter().filter(|t| t.slower()).count();
    out.push_str(&format!(
        "{} of {} at least as fast as plain (within the noise)\n",
        timings.len() - slower,
        timings.len()
    ));
    out
}

/// The comparison in the bench's JSON line.
pub(crate) fn json(timings: &[Timing]) -> Value {
    let rows: Vec<Value> = timings
        .iter()
        .map(|t| {
            json!({"query": t.query, "identity": t.identity, "ours_ms": round(t.ours_ms), "plain_ms": round(t.plain_ms),
                   "ratio": round(t.ratio())})
        })
        .collect();
    json!({"slower": timings.iter().filter(|t| t.slower()).count(), "compared": timings.len(), "queries": rows})
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slower_means_beyond_the_noise() {
        let t = |ours, plain| Timing { query: "q".into(), identity: "i".into(), ours_ms: ours, plain_ms: plain };
        assert!(!t(1.05, 1.0).slower());
        assert!(t(1.2, 1.0).slower());
        assert!(!t(0.5, 1.0).slower());
        let printed = text(&[t(1.2, 1.0), t(0.9, 1.0)]);
        assert!(printed.contains("slower") && printed.contains("1 of 2 at least as fast"), "{printed}");
        assert_eq!(json(&[t(1.2, 1.0)])["slower"], 1);
    }

    #[test]
    fn the_median_is_the_middle_sample() {
        let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>();
        assert_eq!(median(ms(&[5, 1, 3])), 3.0);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
