//! `db::decode` against the real PostgreSQL 15 + pgvector: values read through the extended protocol (so in
//! binary) must come back as exactly the JSON documented in the module. This file holds the shared helpers and
//! the contract tests: numbers exact whichever form they take, real retail rows keeping their money values
//! exact (ORIGIN.md C3), duplicate column names surviving (C4), and unsupported types naming a cast. `types`
//! goes through every other type family.

use serde_json::{Value, json};
use tokio_postgres::Client;
use zava_mcp::db::decode::{self, ColumnInfo, DecodeError};

use crate::harness::TestDb;

mod types;

/// The decoded values of the first row of `sql`.
pub(super) async fn row(client: &Client, sql: &str) -> Vec<Value> {
    let rows = client.query(sql, &[]).await.unwrap_or_else(|e| panic!("`{sql}`: {e}"));
    decode::row_values(&rows[0]).unwrap_or_else(|e| panic!("`{sql}`: {e}"))
}

/// The decode error for the first row of `sql`.
pub(super) async fn decode_error(client: &Client, sql: &str) -> DecodeError {
    let rows = client.query(sql, &[]).await.unwrap_or_else(|e| panic!("`{sql}`: {e}"));
    decode::row_values(&rows[0]).expect_err(sql)
}

/// Every row of `SELECT x, format('%s', x) FROM (VALUES ...) v(x)`: the decoded value must be the string
/// PostgreSQL's output function prints (after `fix` for deliberate differences, such as the `T` in timestamps).
/// (`format` rather than `::text`: some casts to text differ from the output function, e.g. inet's.)
pub(super) async fn same_as_text(client: &Client, ty: &str, literals: &[&str], fix: fn(String) -> String) {
    let values = literals.iter().map(|l| format!("('{l}'::{ty})")).collect::<Vec<_>>().join(",");
    let sql = format!("SELECT x, format('%s', x) FROM (VALUES {values}) v(x)");
    let rows = client.query(&sql, &[]).await.unwrap_or_else(|e| panic!("`{sql}`: {e}"));
    assert_eq!(rows.len(), literals.len());
    for r in &rows {
        let decoded = decode::row_values(r).unwrap();
        let text: String = r.get(1);
        assert_eq!(decoded[0], json!(fix(text.clone())), "{ty} {text}");
    }
}

#[tokio::test]
async fn numbers_are_numbers_when_exact_and_strings_when_not() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    let got = row(
        &c,
        "SELECT 1.5::numeric, 'NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric, 19.90::numeric(10,2),
                33.00::numeric, 0::numeric, -0.5::numeric, 1e-10::numeric, 100::numeric(10,2),
                123456789012345678901234567890.123456789::numeric, 12345678901234567890.123::numeric,
                9007199254740993::numeric, 9007199254740992::numeric, 1.500::numeric",
    )
    .await;
    assert_eq!(
        got,
        vec![
            json!(1.5),
            json!("NaN"),
            json!("Infinity"),
            json!("-Infinity"),
            json!(19.9),
            json!(33.0),
            json!(0),
            json!(-0.5),
            json!(1e-10),
            json!(100.0),
            json!("123456789012345678901234567890.123456789"),
            json!("12345678901234567890.123"),
            json!("9007199254740993"),
            json!(9007199254740992_i64),
            json!(1.5),
        ]
    );
    assert_eq!(serde_json::to_string(&got[5]).unwrap(), "33.0");

    let got = row(
        &c,
        "SELECT 1::int2, -2::int4, 9007199254740992::int8, 9007199254740993::int8, (-9223372036854775807 - 1)::int8,
                42::oid, 1.5::float8, 'NaN'::float8, 'Infinity'::float4, '-Infinity'::float8, 0.1::real,
                '5'::xid8, true, false, NULL::int, NULL::numeric",
    )
    .await;
    assert_eq!(
        got,
        vec![
            json!(1),
            json!(-2),
            json!(9007199254740992_i64),
            json!("9007199254740993"),
            json!("-9223372036854775808"),
            json!(42),
            json!(1.5),
            json!("NaN"),
            json!("Infinity"),
            json!("-Infinity"),
            json!(0.1),
            json!(5),
            json!(true),
            json!(false),
            Value::Null,
            Value::Null,
        ]
    );
}

/// `(negative, significant digits, exponent)` of a decimal string, to compare values rather than spellings.
fn normalised(s: &str) -> (bool, String, i64) {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (mantissa, exp) = s.split_once(['e', 'E']).map_or((s, 0), |(m, e)| (m, e.parse::<i64>().unwrap()));
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{int}{frac}");
    let trimmed = all.trim_end_matches('0');
    let exp = exp - frac.len() as i64 + (all.len() - trimmed.len()) as i64;
    let digits = trimmed.trim_start_matches('0');
    if digits.is_empty() { (false, String::new(), 0) } else { (neg, digits.to_owned(), exp) }
}

#[tokio::test]
async fn every_numeric_is_exact_whichever_form_it_takes() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    let sql = "SELECT x, x::text FROM (
                   SELECT (i * 7919 % 1000003)::numeric / 997 AS x FROM generate_series(1, 1500) i
                   UNION ALL SELECT round((i * 7919 % 1000003)::numeric / 97, 2) FROM generate_series(1, 1500) i
                   UNION ALL SELECT (10::numeric ^ i) * 1.5 FROM generate_series(-40, 40) i
                   UNION ALL SELECT -(2::numeric ^ i) FROM generate_series(0, 80) i
                   UNION ALL VALUES (0.000), (1e100), (-99999999.99), (0.1), (1e-1000)
               ) s";
    let rows = c.query(sql, &[]).await.unwrap();
    let (mut numbers, mut strings) = (0, 0);
    for r in &rows {
        let v = decode::row_values(r).unwrap();
        let text: String = r.get(1);
        match &v[0] {
            Value::String(s) => {
                assert_eq!(s, &text);
                strings += 1;
            }
            Value::Number(n) => {
                assert_eq!(normalised(&n.to_string()), normalised(&text), "{n} for {text}");
                if let Some(i) = n.as_i64() {
                    assert!(i.unsigned_abs() <= 1 << 53, "{i}");
                }
                numbers += 1;
            }
            other => panic!("{other} for {text}"),
        }
    }
    assert!(numbers > 1500 && strings > 1000, "{numbers} numbers, {strings} strings");
}

#[tokio::test]
async fn unsupported_types_name_the_column_and_suggest_a_cast() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    let e = decode_error(&c, "SELECT 'a fat cat'::tsvector AS doc").await;
    assert_eq!(e, DecodeError::Unsupported { column: "doc".into(), pg_type: "tsvector".into() });
    let msg = e.to_string();
    assert!(msg.contains("`doc`") && msg.contains("`tsvector`") && msg.contains("`doc::text`"), "{msg}");

    let e = decode_error(&c, "SELECT 1 AS ok, ARRAY['a'::tsvector] AS docs").await;
    assert_eq!(e, DecodeError::Unsupported { column: "docs".into(), pg_type: "_tsvector".into() });
    let e = decode_error(&c, "SELECT 'pg_class'::regclass").await;
    assert_eq!(e, DecodeError::Unsupported { column: "regclass".into(), pg_type: "regclass".into() });
    let e = decode_error(&c, "SELECT 'fat & rat'::tsquery").await;
    assert!(e.to_string().contains("`tsquery`"), "{e}");
    // The cast it suggests works.
    assert_eq!(row(&c, "SELECT 'a fat cat'::tsvector::text").await, vec![json!("'a' 'cat' 'fat'")]);
}

#[tokio::test]
async fn duplicate_column_names_keep_their_positions() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    assert_eq!(row(&c, "SELECT 1 AS a, 2 AS a, 'x' AS a").await, vec![json!(1), json!(2), json!("x")]);
    let stmt = c.prepare("SELECT 1 AS a, 2 AS a, 'x'::text AS b, ARRAY[1] AS c, '[1]'::vector AS v, 1.5 AS n").await;
    let columns = decode::columns(stmt.unwrap().columns());
    let expected = [("a", "int4"), ("a", "int4"), ("b", "text"), ("c", "_int4"), ("v", "vector"), ("n", "numeric")];
    let expected: Vec<ColumnInfo> =
        expected.iter().map(|(n, t)| ColumnInfo { name: (*n).into(), pg_type: (*t).into() }).collect();
    assert_eq!(columns, expected);
}

#[tokio::test]
async fn retail_rows_keep_money_exact() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    let rows = c.query("SELECT * FROM retail.order_items ORDER BY order_item_id LIMIT 5", &[]).await.unwrap();
    assert_eq!(rows.len(), 5);
    let texts = c
        .query(
            "SELECT unit_price::text, discount_amount::text, total_amount::text
             FROM retail.order_items ORDER BY order_item_id LIMIT 5",
            &[],
        )
        .await
        .unwrap();
    let columns: Vec<String> = decode::columns(rows[0].columns()).into_iter().map(|c| c.name).collect();
    assert_eq!(
        columns,
        [
            "order_item_id",
            "order_id",
            "store_id",
            "product_id",
            "quantity",
            "unit_price",
            "discount_percent",
            "discount_amount",
            "total_amount"
        ]
    );
    for (r, t) in rows.iter().zip(&texts) {
        let v = decode::row_values(r).unwrap();
        for i in [0, 1, 2, 3, 4, 6] {
            assert!(v[i].is_i64(), "{} = {}", columns[i], v[i]);
        }
        for (i, j) in [(5, 0), (7, 1), (8, 2)] {
            let text: String = t.get(j);
            let n = v[i].as_f64().unwrap_or_else(|| panic!("{} = {} is not a number", columns[i], v[i]));
            assert!(v[i].is_f64(), "{} = {}", columns[i], v[i]);
            assert_eq!(format!("{n:.2}"), text, "{}", columns[i]);
        }
    }

    // Aggregates of money: a sum has the column's scale and stays exact.
    let got =
        row(&c, "SELECT sum(total_amount), sum(total_amount)::text, avg(unit_price) FROM retail.order_items").await;
    let text = got[1].as_str().unwrap();
    assert_eq!(format!("{:.2}", got[0].as_f64().unwrap()), text);
    assert!(got[2].is_number() || got[2].is_string(), "{}", got[2]);

    let got =
        row(&c, "SELECT product_name, cost, base_price, gross_margin_percent FROM retail.products ORDER BY 1 LIMIT 1")
            .await;
    assert!(got[0].is_string() && got[1].is_f64() && got[2].is_f64() && got[3].is_f64(), "{got:?}");

    let orders = row(&c, "SELECT order_date, store_id FROM retail.orders ORDER BY order_id LIMIT 1").await;
    let date = orders[0].as_str().unwrap();
    assert!(date.len() == 10 && date.as_bytes()[4] == b'-', "{date}");
}
