//! Functions PostgreSQL calls without `f(x)` syntax (attribute notation, operators), the allow-list, and the
//! clock: each case is refused by the built-in and the catalog policy alike, and the legitimate look-alikes pass.

use super::functions::allowed_names;
use super::legit_tests::catalog_policy;
use super::tests::variant;
use super::{FunctionPolicy, ImplicitCall, ReadOnlySql};

/// Attribute notation and indirection in every clause: each is a call of a refused function.
const NOTATION: &[&str] = &[
    "SELECT (42::bigint).pg_try_advisory_lock",
    "SELECT (42::bigint).pg_advisory_lock",
    "SELECT (42::bigint).\"pg_advisory_lock\"",
    "SELECT (42::bigint).PG_ADVISORY_LOCK",
    "SELECT t.pg_advisory_lock FROM (SELECT 1::bigint) t",
    "SELECT t.x.pg_advisory_lock FROM (SELECT 1::bigint AS x) t",
    "SELECT (t.x).pg_advisory_lock FROM (SELECT 1::bigint AS x) t",
    "SELECT (ARRAY[1::bigint])[1].pg_advisory_lock",
    "SELECT (ARRAY[1::bigint])[1:1][1].pg_try_advisory_lock",
    "SELECT ('retail.orders'::regclass::oid).pg_stat_get_xact_tuples_fetched",
    "SELECT ('retail.orders'::regclass::oid).pg_stat_get_live_tuples",
    "SELECT ('customers_email_key'::regclass::oid).pg_stat_get_xact_tuples_returned",
    "SELECT ('retail.orders'::regclass).pg_relation_size",
    "SELECT ('retail.orders'::regclass).pg_total_relation_size",
    "SELECT (0.5::float8).setseed",
    "SELECT (1::float8).pg_sleep",
    "SELECT ('zava.tenant'::text).set_config",
    "SELECT (x).pg_advisory_lock FROM generate_series(1::bigint, 3::bigint) x",
    "SELECT g.pg_advisory_lock FROM generate_series(1::bigint, 200000::bigint) g",
    "SELECT count(*) FROM retail.orders WHERE (1::bigint).pg_try_advisory_lock",
    "SELECT store_id FROM retail.orders ORDER BY (1::bigint).pg_try_advisory_lock",
    "SELECT store_id FROM retail.orders GROUP BY store_id, (1::bigint).pg_try_advisory_lock",
    "SELECT store_id FROM retail.orders GROUP BY store_id HAVING (1::bigint).pg_try_advisory_lock",
    "WITH c AS (SELECT (1::bigint).pg_advisory_lock AS l) SELECT * FROM c",
    "SELECT * FROM retail.stores s, LATERAL (SELECT (s.store_id::bigint).pg_advisory_lock) l",
    "SELECT * FROM retail.stores s JOIN retail.orders o ON (o.order_id::bigint).pg_try_advisory_lock",
    "SELECT row_number() OVER (PARTITION BY (1::bigint).pg_try_advisory_lock) FROM retail.stores",
    "SELECT count(*) FILTER (WHERE (1::bigint).pg_try_advisory_lock) FROM retail.stores",
    "VALUES ((1::bigint).pg_advisory_lock)",
    "SELECT abs(((1::bigint).pg_advisory_lock)::int)",
    "SELECT CASE WHEN true THEN (1::bigint).pg_advisory_lock END",
    "SELECT 1 WHERE EXISTS (SELECT (1::bigint).pg_advisory_lock)",
    "EXPLAIN SELECT (1::bigint).pg_advisory_lock",
    "SELECT ((1::bigint).pg_advisory_lock).pg_advisory_unlock",
    "SELECT (ROW(1::bigint)).f1.pg_advisory_lock",
    "SELECT o.order_id FROM retail.orders o WHERE o.pg_stat_get_numscans IS NULL",
    "SELECT (s.store_id::oid).pg_stat_get_blocks_fetched FROM retail.stores s",
    "SELECT ((1::bigint)).pg_advisory_xact_lock",
    "SELECT ('x'::text).clock_timestamp",
    "SELECT (1).txid_current",
];

/// Calls outside the allow-list that a deny-list would have to know by name, and the clock.
const NOT_ALLOWED: &[&str] = &[
    "SELECT clock_timestamp()",
    "SELECT timeofday()",
    "SELECT extract(epoch FROM clock_timestamp())",
    "SELECT pg_catalog.clock_timestamp() - now()",
    "SELECT inet_server_addr()",
    "SELECT pg_postmaster_start_time()",
    "SELECT txid_current_snapshot()",
    "SELECT pg_current_snapshot()",
    "SELECT pg_current_wal_lsn()",
    "SELECT pg_sequence_last_value('retail.orders_order_id_seq')",
    "SELECT pg_column_size(o) FROM retail.orders o",
    "SELECT pg_database_size(current_database())",
    "SELECT txid_status(1000)",
    "SELECT pg_xact_commit_timestamp('1'::xid)",
    "SELECT pg_listening_channels()",
    "SELECT pg_notification_queue_usage()",
    "SELECT pg_get_keywords()",
    "SELECT brin_summarize_new_values('retail.orders'::regclass)",
    "SELECT gin_clean_pending_list('x'::regclass)",
    "SELECT pg_import_system_collations('pg_catalog')",
    "SELECT pg_trigger_depth()",
    "SELECT * FROM pg_options_to_table(ARRAY['a=b'])",
    "SELECT * FROM pg_show_all_settings()",
];

/// Field selections that are columns, or calls of allowed functions: they must pass.
const LEGIT: &[&str] = &[
    "SELECT s.store_name, s.store_id FROM retail.stores s",
    "SELECT retail.stores.store_name FROM retail.stores",
    "SELECT (o).order_id FROM retail.orders o LIMIT 1",
    "SELECT x.count, x.sum FROM (SELECT count(*) AS count, sum(1) AS sum FROM retail.orders) x",
    "SELECT d.date, d.left FROM (SELECT now()::date AS date, 'a' AS left) d",
    "SELECT (ROW(1, 2)).f1",
    "SELECT (jsonb_build_object('a', 1)) -> 'a'",
    "SELECT (ARRAY[1, 2])[1]",
    "SELECT (t.r).x FROM (SELECT ROW(1) AS r) t(r)",
    "SELECT now(), statement_timestamp(), transaction_timestamp(), CURRENT_TIMESTAMP",
    "SELECT store_id FROM retail.orders ORDER BY store_id USING <",
    "SELECT 1 WHERE 1 = ANY (SELECT 1)",
    "SELECT current_setting('zava.tenant', true) IS NOT NULL",
];

fn policies() -> [(FunctionPolicy, &'static str); 2] {
    [(FunctionPolicy::builtin(), "builtin"), (catalog_policy(), "catalog")]
}

/// Every query must be refused as a forbidden function by both policies.
fn assert_forbidden_functions(queries: &[&str]) {
    for (policy, name) in policies() {
        for sql in queries {
            match ReadOnlySql::parse(sql, &policy) {
                Err(e) => assert_eq!(variant(&e), "ForbiddenFunction", "{name}: {sql}: {e}"),
                Ok(_) => panic!("{name} policy accepted {sql}"),
            }
        }
    }
}

#[test]
fn attribute_notation_calls_are_checked_like_calls() {
    assert!(NOTATION.len() >= 40);
    assert_forbidden_functions(NOTATION);
}

#[test]
fn functions_off_the_allow_list_and_the_clock_are_refused() {
    assert_forbidden_functions(NOT_ALLOWED);
}

#[test]
fn columns_and_allowed_functions_in_field_position_pass() {
    for (policy, name) in policies() {
        for sql in LEGIT {
            if let Err(e) = ReadOnlySql::parse(sql, &policy) {
                panic!("{name} policy refused {sql}: {e}");
            }
        }
    }
}

#[test]
fn refusals_name_the_call_and_say_what_to_do() {
    let e = ReadOnlySql::parse("SELECT (42::bigint).pg_try_advisory_lock", &catalog_policy()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("pg_try_advisory_lock(x)") && text.contains("locks"), "{text}");
    let e = ReadOnlySql::parse("SELECT clock_timestamp()", &catalog_policy()).unwrap_err();
    assert!(e.to_string().contains("now()"), "{e}");
    let e = ReadOnlySql::parse("SELECT inet_server_addr()", &catalog_policy()).unwrap_err();
    assert!(e.to_string().contains("aggregates"), "{e}");
}

#[test]
fn operators_and_casts_that_run_unsafe_functions_are_refused_wherever_they_are_used() {
    let functions = [("pg_catalog", "int4eq", 'i')].map(|(s, n, v)| (s.to_owned(), n.to_owned(), v));
    let implicit = [
        (ImplicitCall::Operator, "@@@", "pg_sleep", 'i'),
        (ImplicitCall::Operator, "=", "int4eq", 'i'),
        (ImplicitCall::Operator, "###", "some_volatile_fn", 'v'),
        (ImplicitCall::Cast, "spy", "pg_stat_get_live_tuples", 's'),
        (ImplicitCall::Cast, "int4", "int4in", 'i'),
    ]
    .map(|(how, o, f, v)| (how, o.to_owned(), f.to_owned(), v));
    let policy = FunctionPolicy::from_catalog(functions, implicit);
    for sql in [
        "SELECT 1 @@@ 2",
        "SELECT 1 ### 2",
        "SELECT 1 OPERATOR(pg_catalog.@@@) 2",
        "SELECT x FROM (VALUES (1)) v(x) ORDER BY x USING @@@",
        "SELECT 1 WHERE 1 @@@ ANY (SELECT 1)",
        "SELECT 1 WHERE 1 @@@ ANY (ARRAY[1])",
        "SELECT 'x'::spy",
        "SELECT CAST(1 AS pg_catalog.spy)",
        "SELECT spy 'literal'",
    ] {
        let e = ReadOnlySql::parse(sql, &policy).expect_err(sql);
        assert_eq!(variant(&e), "ForbiddenFunction", "{sql}: {e}");
    }
    ReadOnlySql::parse("SELECT 1 = 1, '1'::int4", &policy).unwrap();
}

#[test]
fn a_volatile_overload_of_an_allowed_name_is_refused() {
    let functions = [("pg_catalog", "lower", 'i'), ("public", "lower", 'v')];
    let policy = FunctionPolicy::from_catalog(functions.map(|(s, n, v)| (s.to_owned(), n.to_owned(), v)), Vec::new());
    let e = ReadOnlySql::parse("SELECT lower('A')", &policy).unwrap_err();
    assert!(e.to_string().contains("VOLATILE"), "{e}");
}

#[test]
fn every_allowed_name_exists_in_postgresql_15_and_none_is_denied() {
    let catalog = include_str!("testdata/pg15_functions.txt");
    let known: std::collections::HashSet<&str> = catalog
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.splitn(3, '|').nth(2).unwrap_or_default().split_whitespace())
        .collect();
    let mut count = 0;
    for (family, name) in allowed_names() {
        count += 1;
        assert!(super::functions::denied(name).is_none(), "{name} is both allowed and denied");
        if family != "newer" {
            assert!(known.contains(name), "[{family}] {name} is not a PostgreSQL 15 function");
        }
    }
    assert!(count > 250, "the allow-list has {count} names");
}
