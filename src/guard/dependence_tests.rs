//! Which accepted statements the result cache may reuse: data-only reads must be recognised (or the cache is
//! useless), and every way of making a result depend on the clock, chance or the catalog must be caught (or the
//! cache serves a stale answer). Checked with PostgreSQL 15's own function catalog (`testdata`).

use super::legit_tests::catalog_policy;
use super::{Dependence, FunctionPolicy, ReadOnlySql};

fn dependence(sql: &str, policy: &FunctionPolicy) -> Dependence {
    ReadOnlySql::parse(sql, policy).unwrap_or_else(|e| panic!("{sql}: refused: {e}")).dependence()
}

/// Reads whose result follows from the data alone (the analytic mix's habits among them).
const DATA_ONLY: &[&str] = &[
    "SELECT count(*) FROM retail.orders",
    "SELECT store_name FROM stores ORDER BY 1",
    "SELECT date_trunc('month', o.order_date)::date AS month, SUM(oi.total_amount) FROM retail.orders o \
     JOIN retail.order_items oi ON oi.order_id = o.order_id GROUP BY 1 ORDER BY 1",
    "SELECT p.product_name, SUM(oi.total_amount) AS revenue FROM retail.order_items oi JOIN retail.orders o \
     USING (order_id) JOIN retail.products p USING (product_id) WHERE o.order_date >= date_trunc('quarter', \
     DATE '2026-06-15') - INTERVAL '3 months' AND o.order_date < date_trunc('quarter', DATE '2026-06-15') \
     GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    "SELECT EXTRACT(YEAR FROM order_date), to_char(order_date, 'YYYY-MM'), COUNT(*) FROM retail.orders GROUP BY 1, 2",
    "WITH m AS (SELECT store_id, ROUND(AVG(total_amount), 2) AS a FROM retail.order_items GROUP BY 1) \
     SELECT s.store_name, m.a, RANK() OVER (ORDER BY m.a DESC) FROM m JOIN retail.stores s USING (store_id)",
    "SELECT string_agg(category_name, ', ' ORDER BY category_name), jsonb_build_object('n', count(*)) \
     FROM retail.categories",
    "SELECT product_name FROM retail.products WHERE lower(product_name) LIKE '%hammer%' AND base_price > 10",
    "SELECT current_user, session_user, CURRENT_CATALOG FROM retail.stores LIMIT 1",
    "SELECT * FROM retail.inventory TABLESAMPLE BERNOULLI (10) REPEATABLE (42)",
    "SELECT date_trunc('day', order_date)::timestamp::date FROM retail.orders WHERE order_date > DATE '2025-01-01'",
    "VALUES (1, 'a'), (2, 'b')",
];

/// (statement, why it is not data-only): each a way into the clock, chance, the catalog or a sample.
const OTHER: &[(&str, &str)] = &[
    ("SELECT count(*) FROM retail.orders WHERE order_date > now() - INTERVAL '30 days'", "the clock"),
    ("SELECT CURRENT_DATE - MAX(order_date) FROM retail.orders", "the clock"),
    ("SELECT count(*) FROM retail.orders WHERE order_date >= CURRENT_TIMESTAMP", "the clock"),
    ("SELECT LOCALTIMESTAMP(2), count(*) FROM retail.orders", "the clock"),
    ("SELECT count(*) FROM retail.orders WHERE order_date = 'today'", "'today' read as a date"),
    ("SELECT count(*) FROM retail.orders WHERE order_date < 'TOMORROW'::date", "literal"),
    ("SELECT count(*) FROM retail.orders WHERE order_date > DATE 'yesterday'", "typed literal"),
    ("SELECT count(*) FROM retail.orders WHERE order_date > E'to\\x64ay'", "an escaped literal"),
    ("SELECT count(*) FROM retail.orders WHERE order_date > $$ now $$", "a dollar-quoted literal"),
    ("SELECT count(*) FROM retail.orders WHERE order_date > ('to' || 'day')::date", "text made at run time"),
    ("SELECT count(*) FROM retail.orders WHERE order_date > CAST(concat('to', 'day') AS date)", "CAST"),
    ("SELECT count(*) FROM retail.orders WHERE order_date > date(concat('to', 'day'))", "function-style cast"),
    ("SELECT age(MAX(order_date)) FROM retail.orders", "age(x) counts from today"),
    ("SELECT (MAX(order_date)).age FROM retail.orders", "attribute notation for age(x)"),
    ("SELECT random(), count(*) FROM retail.orders", "chance"),
    ("SELECT gen_random_uuid() FROM retail.stores", "chance"),
    ("SELECT * FROM retail.inventory TABLESAMPLE SYSTEM (5)", "a random sample"),
    ("SELECT current_setting('TimeZone')", "a setting as a value"),
    ("SELECT transaction_timestamp(), statement_timestamp()", "the clock"),
    ("SELECT relname, reltuples FROM pg_class", "the catalog"),
    ("SELECT table_name FROM information_schema.tables", "the catalog"),
    ("SELECT * FROM pg_catalog.pg_stats_ext", "the catalog"),
    ("SELECT 'retail.orders'::regclass::oid", "catalog type"),
    ("SELECT has_table_privilege('retail.orders', 'SELECT')", "the catalog"),
    ("SELECT * FROM public.anything", "outside retail"),
    ("EXPLAIN SELECT count(*) FROM retail.orders", "a plan"),
    ("SELECT x FROM json_populate_record(NULL::retail.orders, '{}') x", "record from JSON"),
];

/// Data-only in fact, but the text does not show that the converted column is not text (which date/time input
/// would read, 'today' included): the cache leaves them alone rather than guess. `date_trunc('day', x)::date`
/// says the same and is reused.
const NOT_PROVABLE: &[&str] = &[
    "SELECT d::date, COUNT(o.order_id) FROM generate_series(DATE '2024-01-01', DATE '2024-01-31', INTERVAL '1 day') \
     AS d LEFT JOIN retail.orders o ON o.order_date = d::date GROUP BY 1",
    "SELECT order_date::date FROM retail.orders LIMIT 5",
    "SELECT CAST(o.order_date + INTERVAL '1 day' AS date) FROM retail.orders o LIMIT 5",
];

#[test]
fn conversions_of_run_time_values_into_dates_are_not_reused() {
    let policy = catalog_policy();
    for sql in NOT_PROVABLE {
        assert!(matches!(dependence(sql, &policy), Dependence::Other(_)), "{sql}");
    }
}

#[test]
fn data_only_reads_are_recognised() {
    let policy = catalog_policy();
    for sql in DATA_ONLY {
        assert_eq!(dependence(sql, &policy), Dependence::DataOnly, "{sql}");
    }
}

#[test]
fn the_clock_chance_and_the_catalog_are_caught() {
    let policy = catalog_policy();
    for (sql, why) in OTHER {
        assert!(matches!(dependence(sql, &policy), Dependence::Other(_)), "{sql} ({why}) was taken as data-only");
    }
}

#[test]
fn without_catalog_knowledge_nothing_that_calls_a_function_is_reused() {
    let builtin = FunctionPolicy::builtin();
    assert_eq!(dependence("SELECT store_name FROM retail.stores", &builtin), Dependence::DataOnly);
    assert!(matches!(dependence("SELECT count(*) FROM retail.orders", &builtin), Dependence::Other(_)));
}

#[test]
fn the_reason_names_what_was_found() {
    let policy = catalog_policy();
    let Dependence::Other(why) = dependence("SELECT now()", &policy) else { panic!("now() is data-only") };
    assert!(why.contains("function"), "{why}");
    let Dependence::Other(why) = dependence("EXPLAIN SELECT 1", &policy) else { panic!("EXPLAIN is data-only") };
    assert!(why.contains("plan"), "{why}");
}
