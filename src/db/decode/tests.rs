//! Dispatch-level tests of the decoder: built-in types by OID, error messages, the text heuristic for unknown
//! types, and the promise that no byte string, however malformed, makes it panic.

use serde_json::json;
use tokio_postgres::types::{Field, Kind, Type};

use super::reader::Fail;
use super::*;

fn custom(name: &str, kind: Kind) -> Type {
    Type::new(name.to_owned(), 20_000, kind, "public".to_owned())
}

#[test]
fn builtins_by_oid() {
    assert_eq!(value(&Type::BOOL, &[1], 0), Ok(json!(true)));
    assert!(value(&Type::BOOL, &[2], 0).is_err());
    assert_eq!(value(&Type::INT2, &(-7i16).to_be_bytes(), 0), Ok(json!(-7)));
    assert_eq!(value(&Type::INT8, &(1i64 << 60).to_be_bytes(), 0), Ok(json!("1152921504606846976")));
    assert_eq!(value(&Type::OID, &u32::MAX.to_be_bytes(), 0), Ok(json!(4_294_967_295_u32)));
    assert_eq!(value(&Type::FLOAT8, &f64::NAN.to_be_bytes(), 0), Ok(json!("NaN")));
    assert_eq!(value(&Type::TEXT, "héllo".as_bytes(), 0), Ok(json!("héllo")));
    assert_eq!(value(&Type::JSONB, b"\x01{\"a\": 1.10}", 0), Ok(json!({"a": 1.1})));
    assert_eq!(value(&Type::VOID, b"", 0), Ok(Value::Null));
    assert!(matches!(value(&Type::INT4, &[0, 0, 1], 0), Err(Fail::Malformed(_))));
    assert_eq!(value(&Type::TS_VECTOR, &[0, 0, 0, 0], 0), Err(Fail::Unsupported("tsvector".into())));
    assert_eq!(value(&Type::REGCLASS, &1259u32.to_be_bytes(), 0), Err(Fail::Unsupported("regclass".into())));
}

#[test]
fn user_defined_types_by_kind_and_name() {
    let mood = custom("mood", Kind::Enum(vec!["happy".into()]));
    assert_eq!(value(&mood, b"happy", 0), Ok(json!("happy")));
    let posint = custom("posint", Kind::Domain(Type::INT4));
    assert_eq!(value(&posint, &5i32.to_be_bytes(), 0), Ok(json!(5)));
    let pair = custom("pair", Kind::Composite(vec![Field::new("m".into(), mood.clone())]));
    let mut rec = 1i32.to_be_bytes().to_vec();
    rec.extend_from_slice(&mood.oid().to_be_bytes());
    rec.extend_from_slice(&3i32.to_be_bytes());
    rec.extend_from_slice(b"sad");
    assert_eq!(value(&pair, &rec, 0), Ok(json!(["sad"])));
    assert_eq!(value(&custom("citext", Kind::Simple), b"MiXeD", 0), Ok(json!("MiXeD")));
    assert_eq!(value(&custom("ltree", Kind::Simple), b"\x01a.b", 0), Ok(json!("a.b")));
    assert_eq!(value(&custom("hstore", Kind::Simple), &[0, 0, 0, 1], 0), Err(Fail::Unsupported("hstore".into())));
    assert_eq!(plain_text(b"tab\there\nok"), Some("tab\there\nok".into()));
    assert_eq!(plain_text(b"a\x00b"), None);
    assert_eq!(plain_text(&[0xff]), None);
}

#[test]
fn error_messages_tell_the_model_what_to_do() {
    let e = DecodeError::Unsupported { column: "doc".into(), pg_type: "tsvector".into() };
    assert_eq!(
        e.to_string(),
        "column `doc` has type `tsvector`, which cannot be returned; cast it to a returnable type in the query, \
         e.g. `doc::text`"
    );
    let e = DecodeError::Unsupported { column: "?column?".into(), pg_type: "tsquery".into() };
    assert!(e.to_string().ends_with("e.g. `<expression>::text`"), "{e}");
    let e = DecodeError::Malformed { column: "Total".into(), pg_type: "numeric".into(), reason: "truncated".into() };
    assert!(e.to_string().contains("(truncated)") && e.to_string().contains("`<expression>::text`"), "{e}");
}

/// A small deterministic generator (xorshift), so the fuzz cases are the same on every run.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 24) as u8
    }
}

fn every_kind_of_type() -> Vec<Type> {
    let mut types: Vec<Type> = [
        16, 17, 18, 19, 20, 21, 22, 23, 25, 26, 27, 28, 29, 30, 114, 142, 600, 601, 602, 603, 604, 628, 650, 700, 701,
        718, 774, 790, 829, 869, 1000, 1007, 1082, 1083, 1114, 1184, 1186, 1231, 1266, 1560, 1562, 1700, 2249, 2277,
        2287, 2950, 3220, 3614, 3802, 3904, 3906, 3910, 3912, 4072, 4451, 4532, 5069,
    ]
    .iter()
    .filter_map(|&oid| Type::from_oid(oid))
    .collect();
    for name in ["vector", "halfvec", "sparsevec", "ltree", "citext"] {
        types.push(custom(name, Kind::Simple));
    }
    types.push(custom("rec", Kind::Composite(vec![Field::new("a".into(), Type::NUMERIC)])));
    types.push(custom("dom", Kind::Domain(Type::INT4_ARRAY)));
    types
}

#[test]
fn no_bytes_make_the_decoder_panic() {
    let mut rng = Bytes(0x9E37_79B9_7F4A_7C15);
    for ty in every_kind_of_type() {
        for len in 0..48 {
            for _ in 0..64 {
                let bytes: Vec<u8> = (0..len).map(|_| rng.next()).collect();
                let _ = value(&ty, &bytes, 0);
            }
        }
    }
}

#[test]
fn corrupted_valid_values_fail_cleanly() {
    // Valid encodings, then every truncation and every single-byte corruption of them.
    let mut array = Vec::new();
    for x in [1i32, 0, 1700, 1, 1] {
        array.extend_from_slice(&x.to_be_bytes());
    }
    array.extend_from_slice(&10i32.to_be_bytes());
    array.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 1, 0, 1]);
    let cases: Vec<(Type, Vec<u8>)> = vec![
        (Type::NUMERIC_ARRAY, array),
        (Type::INT4_RANGE, vec![2, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 9]),
        (Type::RECORD, vec![0, 0, 0, 1, 0, 0, 0, 23, 0, 0, 0, 4, 0, 0, 0, 7]),
        (Type::INET, vec![2, 24, 0, 4, 10, 0, 0, 1]),
        (Type::JSONB, b"\x01{\"a\":[1,2.5,\"x\"]}".to_vec()),
        (Type::INTERVAL, vec![0; 16]),
    ];
    for (ty, good) in cases {
        assert!(value(&ty, &good, 0).is_ok(), "{ty}: the valid encoding must decode");
        for cut in 0..good.len() {
            let _ = value(&ty, &good[..cut], 0);
        }
        for i in 0..good.len() {
            for b in [0x00, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] = b;
                let _ = value(&ty, &bad, 0);
            }
        }
    }
}
