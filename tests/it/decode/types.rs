//! `db::decode` type by type: literals of every family the decoder knows (text-like, temporal, JSON, network,
//! geometric, containers, user-defined and extension types, pgvector) must decode to exactly the documented JSON;
//! where the rendering follows PostgreSQL's own output function, it is checked against `format('%s', x)`.

use serde_json::{Value, json};
use zava_mcp::db::decode::{self, DecodeError};

use super::{decode_error, row, same_as_text};
use crate::harness::TestDb;

#[tokio::test]
async fn anyarray_columns_use_the_element_type_on_the_wire() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    // pg_stats hides tables under row-level security, so use a table of our own.
    c.batch_execute("CREATE TABLE stats_probe AS SELECT generate_series(1, 8) AS n; ANALYZE stats_probe")
        .await
        .unwrap();
    let sql = "SELECT histogram_bounds FROM pg_stats WHERE tablename = 'stats_probe' AND attname = 'n'";
    let stmt = c.prepare(sql).await.unwrap();
    assert_eq!(decode::columns(stmt.columns())[0].pg_type, "anyarray");
    assert_eq!(row(&c, sql).await, vec![json!([1, 2, 3, 4, 5, 6, 7, 8])]);
}

#[tokio::test]
async fn text_like_types_uuid_bytea_money_and_bits() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    let got = row(
        &c,
        r#"SELECT 'abc', 'é😀'::text, 'x'::varchar(5), 'ab'::char(4), 'nm'::name, 'c'::"char", '<a/>'::xml,
                 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '\xdeadbeef'::bytea, ''::bytea,
                 '12.34'::money, '-1234.05'::money, B'10101'::bit(5), B'1'::varbit, '16/B374D848'::pg_lsn,
                 '(0,1)'::tid, '$.a[*] ? (@ > 1)'::jsonpath"#,
    )
    .await;
    assert_eq!(
        got,
        vec![
            json!("abc"),
            json!("é😀"),
            json!("x"),
            json!("ab  "),
            json!("nm"),
            json!("c"),
            json!("<a/>"),
            json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            json!("\\xdeadbeef"),
            json!("\\x"),
            json!("12.34"),
            json!("-1234.05"),
            json!("10101"),
            json!("1"),
            json!("16/B374D848"),
            json!("(0,1)"),
            json!("$.\"a\"[*]?(@ > 1)"),
        ]
    );
    same_as_text(&c, "bytea", &["\\x00ff", "\\x"], |s| s).await;
    same_as_text(&c, "varbit", &["", "0", "101010101"], |s| s).await;
}

#[tokio::test]
async fn dates_times_and_intervals_are_iso_8601() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    let got = row(
        &c,
        "SELECT '2024-05-01'::date, 'infinity'::date, '-infinity'::date, '0044-03-15 BC'::date,
                '2024-05-01 10:00:00.5'::timestamp, '-infinity'::timestamp,
                '2024-05-01 10:00:00+02'::timestamptz, 'infinity'::timestamptz, '2024-05-01 00:00:00.123456+00'::timestamptz,
                '10:00:00.123'::time, '24:00'::time, '10:00:00+05:30'::timetz, '10:00:00-08'::timetz,
                '1 year 2 mons 3 days 04:05:06.5'::interval, '0'::interval, '-1 mon 3 days'::interval,
                '-01:30:00'::interval",
    )
    .await;
    assert_eq!(
        got,
        vec![
            json!("2024-05-01"),
            json!("infinity"),
            json!("-infinity"),
            json!("-0043-03-15"),
            json!("2024-05-01T10:00:00.5"),
            json!("-infinity"),
            json!("2024-05-01T08:00:00Z"),
            json!("infinity"),
            json!("2024-05-01T00:00:00.123456Z"),
            json!("10:00:00.123"),
            json!("24:00:00"),
            json!("10:00:00+05:30"),
            json!("10:00:00-08:00"),
            json!("P1Y2M3DT4H5M6.5S"),
            json!("PT0S"),
            json!("P-1M3D"),
            json!("PT-1H-30M"),
        ]
    );

    // With IntervalStyle iso_8601, PostgreSQL prints exactly what the decoder produces.
    c.batch_execute("SET intervalstyle = iso_8601; SET datestyle = ISO; SET timezone = 'UTC'").await.unwrap();
    let intervals = [
        "1 year 2 mons 3 days 04:05:06.5",
        "-1 year -2 mons +3 days -04:05:06.25",
        "0",
        "1 microsecond",
        "-0.5 seconds",
        "100 hours",
        "178000000 years",
        "-178000000 years",
        "2147483647 days -2562047788:00:54.775807",
    ];
    same_as_text(&c, "interval", &intervals, |s| s).await;
    let stamps = ["2024-02-29 23:59:59.999999", "1970-01-01", "2000-01-01", "1999-12-31 12:00", "9999-12-31 23:59:59"];
    same_as_text(&c, "timestamp", &stamps, |s| s.replace(' ', "T")).await;
    same_as_text(&c, "timestamptz", &stamps, |s| s.replace(' ', "T").replace("+00", "Z")).await;
    same_as_text(&c, "date", &["2024-02-29", "0001-01-01", "1900-03-01", "2400-12-31"], |s| s).await;
    same_as_text(&c, "time", &["00:00", "23:59:59.999999", "12:00:00.01"], |s| s).await;
}

#[tokio::test]
async fn json_is_the_value_itself_with_exact_numbers() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    let got = row(
        &c,
        r#"SELECT '{"a":[1,2]}'::jsonb, '{"b": 1, "a": 12345678901234567890.123}'::json,
                  '{"x": [1.50, -0, 1e2, "s\"\u00e9", null, true, {}]}'::jsonb, '"s"'::jsonb, 'null'::json,
                  '[9007199254740993]'::jsonb"#,
    )
    .await;
    assert_eq!(
        got,
        vec![
            json!({"a": [1, 2]}),
            json!({"a": "12345678901234567890.123", "b": 1}),
            json!({"x": [1.5, 0, 100, "s\"é", null, true, {}]}),
            json!("s"),
            Value::Null,
            json!(["9007199254740993"]),
        ]
    );
}

#[tokio::test]
async fn network_and_geometric_types_print_like_postgres() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    let got = row(&c, "SELECT '192.168.0.1/24'::inet, '192.168.0.1'::inet, '08:00:2b:01:02:03'::macaddr").await;
    assert_eq!(got, vec![json!("192.168.0.1/24"), json!("192.168.0.1"), json!("08:00:2b:01:02:03")]);
    let inets = ["192.168.0.1/24", "10.0.0.1", "10.0.0.1/32", "::1", "2001:db8::1/64", "::ffff:1.2.3.4", "fe80::"];
    same_as_text(&c, "inet", &inets, |s| s).await;
    same_as_text(&c, "inet", &["::1.2.3.4", "::0.0.0.1/120"], |s| s).await;
    same_as_text(&c, "cidr", &["10.0.0.0/8", "192.168.0.1/32", "2001:db8::/32", "::/0"], |s| s).await;
    same_as_text(&c, "macaddr8", &["08:00:2b:01:02:03:04:05"], |s| s).await;
    let points = ["(1.5,-2)", "(1e20,0.00001)", "(0.0001,123456789012345)", "(1e15,-0)", "(NaN,Infinity)"];
    same_as_text(&c, "point", &points, |s| s).await;
    same_as_text(&c, "lseg", &["[(0,0),(1,1.5)]"], |s| s).await;
    same_as_text(&c, "box", &["(1,1),(0,0)"], |s| s).await;
    same_as_text(&c, "path", &["((0,0),(1,1),(2,0))", "[(0,0),(1,1)]"], |s| s).await;
    same_as_text(&c, "polygon", &["((0,0),(1,1),(2,0))"], |s| s).await;
    same_as_text(&c, "line", &["{1,2,3}"], |s| s).await;
    same_as_text(&c, "circle", &["<(1,2),3.5>"], |s| s).await;
}

#[tokio::test]
async fn arrays_records_and_ranges() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    let got = row(
        &c,
        "SELECT ARRAY[[1,2],[3,NULL]]::int[], '{}'::int[], ARRAY['a',NULL]::text[], '[0:1]={5,6}'::int[],
                ARRAY[1.50, 2]::numeric[], ARRAY['2024-01-01'::date], ARRAY[[[1]],[[2]]], '1 2'::int2vector,
                ROW(1,'a'), ROW(1, ROW(2.5, NULL), ARRAY[1,2]), ARRAY[ROW(1,'x')], ROW()",
    )
    .await;
    assert_eq!(
        got,
        vec![
            json!([[1, 2], [3, null]]),
            json!([]),
            json!(["a", null]),
            json!([5, 6]),
            json!([1.5, 2]),
            json!(["2024-01-01"]),
            json!([[[1]], [[2]]]),
            json!([1, 2]),
            json!([1, "a"]),
            json!([1, [2.5, null], [1, 2]]),
            json!([[1, "x"]]),
            json!([]),
        ]
    );
    let got = row(
        &c,
        "SELECT '[1,10)'::int4range, numrange(1.50, 2.5), '[2024-01-01,2024-02-01)'::daterange,
                tstzrange('2024-01-01 00:00+00', 'infinity'), 'empty'::int4range, '(,5]'::int8range,
                tsrange('2024-01-01 10:00', NULL), '{[1,3),[5,7)}'::int4multirange, '{}'::int4multirange,
                ARRAY['[1,2)'::int4range]",
    )
    .await;
    assert_eq!(
        got,
        vec![
            json!("[1,10)"),
            json!("[1.50,2.5)"),
            json!("[2024-01-01,2024-02-01)"),
            json!("[2024-01-01T00:00:00Z,infinity)"),
            json!("empty"),
            json!("(,6)"),
            json!("[2024-01-01T10:00:00,)"),
            json!("{[1,3),[5,7)}"),
            json!("{}"),
            json!(["[1,2)"]),
        ]
    );
    same_as_text(&c, "int4range", &["[1,10)", "(,)", "empty", "[-5,)"], |s| s).await;
    same_as_text(&c, "numrange", &["[1.50,2.5)", "(0.000000001,12345678901234567890.123]"], |s| s).await;
}

#[tokio::test]
async fn user_defined_and_extension_types() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    c.batch_execute(
        "CREATE TYPE mood AS ENUM ('happy', 'sad');
         CREATE DOMAIN posint AS int CHECK (VALUE > 0);
         CREATE DOMAIN price AS numeric(10,2);
         CREATE TYPE pair AS (n numeric, label text, m mood);
         CREATE TYPE floatrange AS RANGE (subtype = float8);
         CREATE EXTENSION citext;
         CREATE EXTENSION ltree;
         CREATE EXTENSION hstore;",
    )
    .await
    .unwrap();
    let got = row(
        &c,
        "SELECT 'happy'::mood, 5::posint, 19.90::price, ROW(1.50, 'x', 'sad')::pair, ARRAY['sad'::mood, NULL],
                'MiXeD'::citext, ROW('happy'::mood, 2), floatrange(1.5, 2.5), 'a.b.c'::ltree,
                ARRAY[ROW(1, 'y', 'happy')::pair], ARRAY[3]::posint[]",
    )
    .await;
    assert_eq!(
        got,
        vec![
            json!("happy"),
            json!(5),
            json!(19.9),
            json!([1.5, "x", "sad"]),
            json!(["sad", null]),
            json!("MiXeD"),
            json!(["happy", 2]),
            json!("[1.5,2.5)"),
            json!("a.b.c"),
            json!([[1, "y", "happy"]]),
            json!([3]),
        ]
    );
    let e = decode_error(&c, "SELECT 'a=>1'::hstore AS h").await;
    assert_eq!(e, DecodeError::Unsupported { column: "h".into(), pg_type: "hstore".into() });
}

#[tokio::test]
async fn pgvector_types() {
    let db = TestDb::new().await;
    let c = db.owner().await;
    let got = row(
        &c,
        "SELECT '[1,2,3]'::vector, '[0.1,-1.5e-7,3e20]'::vector, '[1,2.5]'::halfvec, '{1:1.5,3:2}/5'::sparsevec,
                ARRAY['[1,2]'::vector], '[1,2]'::vector <-> '[1,2]'::vector",
    )
    .await;
    assert_eq!(
        got,
        vec![
            json!([1.0, 2.0, 3.0]),
            json!([0.1, -1.5e-7, 3e20]),
            json!([1.0, 2.5]),
            json!("{1:1.5,3:2}/5"),
            json!([[1.0, 2.0]]),
            json!(0.0),
        ]
    );
    same_as_text(&c, "sparsevec", &["{1:1.5,3:2}/5", "{}/3", "{2:1e-07}/2"], |s| s).await;
}
