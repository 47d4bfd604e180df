//! The legitimate counterpart of the attack corpus: analytic SQL a model writes against the retail schema.
//! Every query must pass the built-in policy and the catalog policy (fed with the real `pg_proc` of
//! PostgreSQL 15 with pgvector, `testdata/pg15_functions.txt`), so the guard does not get in the way of real
//! work. `GRAMMAR` adds one example of each construct of the read grammar, so none is refused as unknown.

use super::tests::variant;
use super::{FunctionPolicy, GuardError, ReadOnlySql};

/// The functions of PostgreSQL 15 with pgvector, as the server reads them from `pg_proc` at start-up.
const CATALOG: &str = include_str!("testdata/pg15_functions.txt");

pub(super) fn catalog_policy() -> FunctionPolicy {
    let rows = CATALOG.lines().filter(|line| !line.starts_with('#')).flat_map(|line| {
        let mut parts = line.splitn(3, '|');
        let (schema, volatility, names) = (parts.next(), parts.next(), parts.next());
        let (schema, volatility) = (schema.unwrap_or_default(), volatility.and_then(|v| v.chars().next()));
        let volatility = volatility.unwrap_or('v');
        names.unwrap_or_default().split_whitespace().map(move |name| (schema.to_owned(), name.to_owned(), volatility))
    });
    // Rows of internal schemas are ignored: their functions stay uncallable by name alone.
    let internal = [("zava_private", "tenant_store_ids", 's'), ("zava_crypto", "hmac", 'i')];
    FunctionPolicy::from_catalog(rows.chain(internal.map(|(s, n, v)| (s.to_owned(), n.to_owned(), v))), Vec::new())
}

/// Every query here was also checked with `EXPLAIN` against PostgreSQL 15 with the retail schema.
pub(super) const LEGIT: &[&str] = &[
    "SELECT store_name FROM retail.stores ORDER BY store_name",
    "SELECT s.store_name, SUM(oi.total_amount) AS revenue FROM retail.order_items oi JOIN retail.stores s ON s.store_id = oi.store_id GROUP BY s.store_name ORDER BY revenue DESC LIMIT 10",
    "WITH monthly AS (SELECT date_trunc('month', o.order_date) AS month, SUM(oi.total_amount) AS revenue FROM retail.orders o JOIN retail.order_items oi ON oi.order_id = o.order_id GROUP BY 1) SELECT month, revenue, revenue - LAG(revenue) OVER (ORDER BY month) AS change FROM monthly ORDER BY month",
    "SELECT product_id, store_id, stock_level, RANK() OVER (PARTITION BY store_id ORDER BY stock_level DESC) AS r, ROW_NUMBER() OVER w AS n FROM retail.inventory WINDOW w AS (ORDER BY product_id)",
    "SELECT DISTINCT ON (o.customer_id) o.customer_id, o.order_date FROM retail.orders o ORDER BY o.customer_id, o.order_date DESC",
    "SELECT s.store_name, top.product_name FROM retail.stores s CROSS JOIN LATERAL (SELECT p.product_name FROM retail.order_items oi JOIN retail.products p USING (product_id) WHERE oi.store_id = s.store_id GROUP BY p.product_name ORDER BY SUM(oi.quantity) DESC LIMIT 3) top",
    "SELECT COUNT(*) FILTER (WHERE discount_percent > 0) AS discounted, COUNT(*) AS all_items FROM retail.order_items",
    "SELECT c.category_name, s.store_name, SUM(oi.total_amount) FROM retail.order_items oi JOIN retail.products p ON p.product_id = oi.product_id JOIN retail.categories c ON c.category_id = p.category_id JOIN retail.stores s ON s.store_id = oi.store_id GROUP BY GROUPING SETS ((c.category_name), (s.store_name), ())",
    "SELECT store_id, product_id, SUM(quantity), GROUPING(store_id, product_id) FROM retail.order_items GROUP BY ROLLUP (store_id, product_id)",
    "SELECT jsonb_build_object('store', store_name, 'online', is_online) ->> 'store' AS name FROM retail.stores WHERE jsonb_build_object('online', is_online) @> '{\"online\": true}'",
    "SELECT store_name FROM retail.stores WHERE ARRAY[store_id] <@ ARRAY[1, 2, 3] AND store_id = ANY (ARRAY[1, 2])",
    "SELECT product_id, description_embedding <=> '[1,2]'::vector AS distance FROM retail.product_description_embeddings ORDER BY distance LIMIT 5",
    "SELECT product_id, vector_dims(description_embedding), cosine_distance(description_embedding, description_embedding) FROM retail.product_description_embeddings LIMIT 1",
    "SELECT EXTRACT(YEAR FROM order_date) AS y, EXTRACT(MONTH FROM order_date) AS m, COUNT(*) FROM retail.orders GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT d::date AS day, COUNT(o.order_id) FROM generate_series(DATE '2024-01-01', DATE '2024-01-31', INTERVAL '1 day') AS d LEFT JOIN retail.orders o ON o.order_date = d::date GROUP BY 1 ORDER BY 1",
    "SELECT c.category_name, string_agg(pt.type_name, ', ' ORDER BY pt.type_name) AS types FROM retail.categories c JOIN retail.product_types pt USING (category_id) GROUP BY c.category_name",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total_amount) AS median, percentile_disc(0.9) WITHIN GROUP (ORDER BY quantity) FROM retail.order_items",
    "SELECT product_name, CASE WHEN base_price > 100 THEN 'premium' WHEN base_price > 20 THEN 'standard' ELSE 'budget' END AS tier, COALESCE(gross_margin_percent, 0) AS margin FROM retail.products",
    "SELECT s.store_name, (SELECT COUNT(*) FROM retail.orders o WHERE o.store_id = s.store_id) AS orders FROM retail.stores s",
    "SELECT product_name FROM retail.products p WHERE product_id IN (SELECT product_id FROM retail.inventory WHERE stock_level = 0) AND NOT EXISTS (SELECT 1 FROM retail.order_items oi WHERE oi.product_id = p.product_id)",
    "EXPLAIN SELECT * FROM retail.orders WHERE store_id = 1",
    "EXPLAIN (FORMAT JSON, COSTS false, VERBOSE) SELECT count(*) FROM retail.order_items",
    "EXPLAIN (ANALYZE false) SELECT 1",
    "EXPLAIN (ANALYZE off, BUFFERS off) SELECT 1",
    "TABLE retail.stores",
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT * FROM (VALUES (1, 'one'), (2, 'two')) AS v(n, word)",
    "SELECT 1 /* ; DROP TABLE retail.orders; */ AS one -- ; DELETE FROM retail.orders\n",
    "SELECT $tag$ DROP TABLE retail.orders; $tag$ AS text, $$;COMMIT;$$ AS more",
    "SELECT 'it''s; DROP TABLE x' AS s, E'\\x3B' AS semicolon",
    "SELECT store_id FROM retail.orders UNION SELECT store_id FROM retail.inventory EXCEPT SELECT 99 INTERSECT SELECT 1",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT * FROM n",
    "WITH t AS MATERIALIZED (SELECT store_id, COUNT(*) AS c FROM retail.orders GROUP BY 1) SELECT * FROM t WHERE c > 10",
    "SELECT COUNT(*) FROM retail.orders WHERE order_date >= CURRENT_DATE - INTERVAL '30 days' AND order_date < now()",
    "SELECT product_name FROM retail.products ORDER BY random() LIMIT 5",
    "SELECT * FROM retail.order_items TABLESAMPLE SYSTEM (1) REPEATABLE (42)",
    "SELECT count(*) FROM retail.orders TABLESAMPLE BERNOULLI (10)",
    "SELECT 1;",
    "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'retail' ORDER BY table_name, ordinal_position",
    "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'retail' AND c.relkind = 'r'",
    "SELECT product_name, ts_rank(to_tsvector('english', product_description), q) FROM retail.products, plainto_tsquery('english', 'cordless drill') q WHERE to_tsvector('english', product_description) @@ q",
    "SELECT product_name FROM retail.products WHERE product_name ILIKE '%hammer%' OR product_name ~* 'saw$' OR sku LIKE 'PW-%'",
    "SELECT ROUND(SUM(total_amount) / NULLIF(SUM(quantity), 0), 2) AS avg_unit, AVG(unit_price)::numeric(10, 2) FROM retail.order_items",
    "SELECT to_char(order_date, 'YYYY-MM') AS month, COUNT(*) FROM retail.orders GROUP BY 1 ORDER BY 1",
    "SELECT * FROM unnest(ARRAY['a', 'b', 'c']) WITH ORDINALITY AS t(letter, n)",
    "SELECT json_agg(json_build_object('id', store_id, 'name', store_name) ORDER BY store_id) FROM retail.stores",
    "SELECT order_date, SUM(COUNT(*)) OVER (ORDER BY order_date ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) FROM retail.orders GROUP BY order_date",
    "SELECT product_name, base_price FROM retail.products ORDER BY base_price DESC FETCH FIRST 5 ROWS WITH TIES",
    "SELECT GREATEST(cost, 1), LEAST(base_price, 100) FROM retail.products WHERE base_price BETWEEN 10 AND 20 AND gross_margin_percent IS DISTINCT FROM 33",
    "SELECT * FROM json_to_record('{\"a\": 1, \"b\": \"x\"}') AS t(a int, b text)",
    "SELECT \"store_name\" FROM \"retail\".\"stores\" WHERE (store_id, is_online) IN ((1, false), (2, true))",
    "SELECT CAST(total_amount AS integer), SUBSTRING(sku FROM 1 FOR 3), POSITION('-' IN sku), TRIM(BOTH ' ' FROM product_name) FROM retail.order_items JOIN retail.products USING (product_id)",
    "SELECT created_at AT TIME ZONE 'UTC', date_part('dow', created_at), age(created_at) FROM retail.customers",
    "SELECT current_setting('zava.tenant', true) IS NOT NULL AS has_context, current_user, version() LIKE 'PostgreSQL%'",
    "SELECT 'café ☕' AS s, length('naïve'), upper(first_name) FROM retail.customers LIMIT 1",
    "SELECT (SELECT MAX(order_date) FROM retail.orders) - (SELECT MIN(order_date) FROM retail.orders) AS span_days",
    "SELECT s.store_name, x.total FROM retail.stores s LEFT JOIN LATERAL (SELECT SUM(total_amount) AS total FROM retail.order_items oi WHERE oi.store_id = s.store_id) x ON true",
];

/// One example of each construct of PostgreSQL's read grammar the walk must know (some are newer than the
/// server's PostgreSQL 15, which would reject them itself; the guard must not).
pub(super) const GRAMMAR: &[&str] = &[
    "SELECT * FROM XMLTABLE('/r/x' PASSING ('<r><x>1</x></r>'::xml) COLUMNS v int PATH '.', n FOR ORDINALITY)",
    "SELECT * FROM JSON_TABLE('[1,2]'::jsonb, '$[*]' COLUMNS (v int PATH '$'))",
    "SELECT '{}' IS JSON OBJECT, JSON_OBJECT('a': 1), JSON_ARRAY(1, 2), JSON_ARRAYAGG(x), JSON_OBJECTAGG(k: v) FROM (VALUES ('a', 1, 2)) t(k, v, x)",
    "SELECT JSON_VALUE('{\"a\":1}'::jsonb, '$.a' RETURNING int DEFAULT 0 ON ERROR), JSON_QUERY('{}'::jsonb, '$'), JSON_EXISTS('{}'::jsonb, '$.a'), JSON('{}'), JSON_SCALAR(1), JSON_SERIALIZE('{}'::json)",
    "SELECT ARRAY(SELECT 1), ROW(1, 'a'), (ARRAY[1,2,3])[1:2], s.* FROM retail.stores s",
    "SELECT 'a' COLLATE \"C\" < 'b', CURRENT_TIMESTAMP, CURRENT_USER, LOCALTIME, SESSION_USER, CURRENT_CATALOG",
    "SELECT $1::int",
    "SELECT (x).f1 FROM (SELECT ROW(1, 2)::record AS x) s",
    "SELECT true IS TRUE, NULL IS NULL, 1 IS NOT DISTINCT FROM 2, (DATE '2024-01-01', DATE '2024-02-01') OVERLAPS (DATE '2024-01-15', DATE '2024-03-01')",
    "SELECT 'abc' SIMILAR TO 'a%', XMLELEMENT(NAME x, 'v'), XMLSERIALIZE(CONTENT '<a/>'::xml AS text), NORMALIZE('a'), 'a' IS NORMALIZED",
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SEARCH DEPTH FIRST BY n SET ord CYCLE n SET is_cycle USING path SELECT * FROM t",
    "SELECT store_id FROM retail.orders GROUP BY DISTINCT store_id, ROLLUP(order_date), CUBE(customer_id) ORDER BY store_id USING <",
    "SELECT * FROM retail.orders NATURAL JOIN retail.stores JOIN ONLY retail.customers USING (customer_id) AS j",
    "SELECT sum(order_id) OVER (ORDER BY order_date RANGE BETWEEN INTERVAL '1 day' PRECEDING AND CURRENT ROW EXCLUDE TIES) FROM retail.orders",
    "SELECT CASE store_id WHEN 1 THEN 'one' END, NULLIF(1, 2), x::text[] FROM retail.stores, (SELECT '{a}' AS x) s",
    "SELECT * FROM retail.stores WHERE store_name = ANY (SELECT store_name FROM retail.stores) AND store_id > ALL (ARRAY[0])",
    "SELECT 1 WHERE EXISTS (SELECT 1) AND 1 IN (1, 2) AND 'a' LIKE 'a' ESCAPE '!' AND 1 BETWEEN SYMMETRIC 2 AND 0",
    "SELECT pg_typeof(1), format('%s', 1), concat_ws(',', 1, 2), regexp_replace('a', 'a', 'b'), split_part('a,b', ',', 2)",
    "SELECT * FROM generate_series(1, 3) WITH ORDINALITY AS g(v, n), LATERAL ROWS FROM (unnest(ARRAY[1]), generate_series(1, 2)) AS r(a, b)",
    "SELECT interval '1' day, TIMESTAMP WITH TIME ZONE '2024-01-01 00:00+00', B'101', X'1F', 1.5e3, -2::int",
    "SELECT substring('abc' from 2), overlay('abc' placing 'x' from 2), trim(leading 'a' from 'aab'), EXTRACT(epoch FROM now()), COLLATION FOR ('a')",
    "(SELECT 1 ORDER BY 1 LIMIT 1) UNION ALL (SELECT 2) ORDER BY 1 OFFSET 0 ROWS",
    "SELECT * FROM retail.stores s1 FULL JOIN retail.stores s2 ON s1.store_id = s2.store_id CROSS JOIN (SELECT 1) x",
];

#[test]
fn every_read_construct_is_known() {
    let policy = FunctionPolicy::builtin();
    for sql in GRAMMAR {
        if let Err(e) = ReadOnlySql::parse(sql, &policy) {
            panic!("{}: {e}\n    {sql}", variant(&e));
        }
    }
}

#[test]
fn every_legitimate_query_passes() {
    assert!(LEGIT.len() >= 30, "the corpus must stay large");
    for (policy, name) in [(FunctionPolicy::builtin(), "builtin"), (catalog_policy(), "catalog")] {
        let failures: Vec<String> = LEGIT
            .iter()
            .filter_map(|sql| {
                ReadOnlySql::parse(sql, &policy).err().map(|e| format!("{}: {e}\n    {sql}", variant(&e)))
            })
            .collect();
        assert!(failures.is_empty(), "{name} policy refused:\n{}", failures.join("\n"));
    }
}

#[test]
fn the_text_is_kept_exactly_and_explain_is_flagged() {
    let policy = FunctionPolicy::builtin();
    for sql in LEGIT {
        let parsed = ReadOnlySql::parse(sql, &policy).expect(sql);
        assert_eq!(parsed.as_str(), *sql);
        assert_eq!(parsed.is_explain(), sql.starts_with("EXPLAIN"), "{sql}");
    }
}

#[test]
fn the_catalog_policy_adds_volatility_and_existence() {
    let catalog = catalog_policy();
    let builtin = FunctionPolicy::builtin();
    let refused = |sql: &str| match ReadOnlySql::parse(sql, &catalog) {
        Err(GuardError::ForbiddenFunction { reason, .. }) => reason,
        other => panic!("{sql}: expected a refused function, got {other:?}"),
    };
    // Not on the allow-list: refused by both policies, with or without catalog knowledge.
    for sql in ["SELECT pg_relation_size('retail.orders')", "SELECT * FROM retail.stores, setseed(0.5) s"] {
        assert!(ReadOnlySql::parse(sql, &builtin).is_err(), "{sql}");
        assert!(ReadOnlySql::parse(sql, &catalog).is_err(), "{sql}");
    }
    // Unknown names and names that exist only in an internal schema.
    for sql in ["SELECT no_such_function(1)", "SELECT tenant_store_ids()", "SELECT hmac('a', 'b', 'sha256')"] {
        assert!(ReadOnlySql::parse(sql, &catalog).is_err(), "{sql}");
    }
    // The allow-listed volatile functions pass; a qualified name must exist in that schema.
    ReadOnlySql::parse("SELECT random(), gen_random_uuid()", &catalog).unwrap();
    ReadOnlySql::parse("SELECT pg_catalog.round(1.5)", &catalog).unwrap();
    assert!(refused("SELECT retail.round(1.5)").contains("does not exist"));
    // An empty catalog refuses every call (fail closed), but not queries without calls.
    let empty = FunctionPolicy::from_catalog(Vec::new(), Vec::new());
    assert!(ReadOnlySql::parse("SELECT upper('a')", &empty).is_err());
    ReadOnlySql::parse("SELECT 1 + 1", &empty).unwrap();
}
