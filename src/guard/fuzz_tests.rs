//! Property tests: the guard never panics, whatever the text, and what it accepts keeps its promises.
//!
//! Inputs are generated with a fixed-seed xorshift generator (reproducible, no dependency): random bytes,
//! soups of SQL tokens, mutations of the attack and legitimate corpora, and pathological nesting. Nothing
//! here measures time: there are no timing asserts (they flake on shared machines); the size cap and the
//! parser's own depth limits are what bound the work.

use super::legit_tests::{GRAMMAR, LEGIT};
use super::tests::{ATTACKS, variant};
use super::{FunctionPolicy, GuardError, MAX_SQL_BYTES, ReadOnlySql};

/// xorshift64*: small, deterministic, good enough to shake a parser.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "WITH",
    "AS",
    "(",
    ")",
    ",",
    ";",
    "'",
    "\"",
    "$$",
    "$t$",
    "/*",
    "*/",
    "--",
    "\n",
    "::",
    "E'\\'",
    "U&\"",
    "1",
    "1.5e3",
    "x",
    "retail.orders",
    "pg_sleep",
    "set_config",
    "(1)",
    "INSERT",
    "DELETE",
    "UPDATE",
    "EXPLAIN",
    "ANALYZE",
    "FOR UPDATE",
    "INTO",
    "LATERAL",
    "ROWS FROM",
    "TABLESAMPLE",
    "OVER",
    "[",
    "]",
    "*",
    "+",
    "||",
    "=",
    "->>",
    "@>",
    "<=>",
    "'[1,2]'::vector",
    "DO",
    "COPY",
    "SET",
    "CALL",
    "é",
    "☕",
    "\0",
    "\\",
    "zava_private.context_key",
    "VALUES",
    "TABLE",
    "UNION",
    "CASE",
    "END",
    "NULL",
    " ",
];

fn random_bytes(rng: &mut Rng) -> String {
    let bytes: Vec<u8> = (0..rng.below(200)).map(|_| rng.next() as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn token_soup(rng: &mut Rng) -> String {
    (0..rng.below(40)).map(|_| rng.pick(TOKENS)).collect::<Vec<_>>().join(" ")
}

fn mutation(rng: &mut Rng, seeds: &[&str]) -> String {
    let seed: Vec<char> = rng.pick(seeds).chars().collect();
    let (a, b) = (rng.below(seed.len() + 1), rng.below(seed.len() + 1));
    let (lo, hi) = (a.min(b), a.max(b));
    let head: String = seed[..lo].iter().collect();
    let middle: String = seed[lo..hi].iter().collect();
    let tail: String = seed[hi..].iter().collect();
    match rng.below(5) {
        0 => head,                                        // truncated
        1 => format!("{head}{}{tail}", rng.pick(TOKENS)), // a token spliced in
        2 => format!("{head}{middle}{middle}{tail}"),     // a slice duplicated
        3 => format!("{head}{tail}"),                     // a slice deleted
        _ => format!("{head}{}{tail}", middle.to_uppercase()),
    }
}

/// What must hold for every input: no panic (implicit), a sane refusal, and for what passes, that it is one
/// read statement which cannot smuggle a second one.
fn check(sql: &str, policy: &FunctionPolicy) {
    match ReadOnlySql::parse(sql, policy) {
        Ok(read) => {
            assert_eq!(read.as_str(), sql);
            let parsed = pg_query::parse(sql, pg_query::ParserOptions::DEFAULT).expect("accepted text parses");
            assert_eq!(parsed.protobuf.stmts.len(), 1, "{sql:?}");
            let kinds = parsed.statement_types();
            assert!(kinds == ["SelectStmt"] || kinds == ["ExplainStmt"], "{kinds:?}: {sql:?}");
            let smuggled = format!("{sql}\n; DROP TABLE retail.orders");
            assert!(ReadOnlySql::parse(&smuggled, policy).is_err(), "{smuggled:?}");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty() && message.chars().count() <= 400, "{message}");
            if let Some(p) = e.position() {
                assert!(p >= 1 && p <= sql.chars().count() + 1, "position {p} outside {sql:?}");
            }
        }
    }
}

#[test]
fn generated_and_garbage_text_never_panics() {
    let policies = [FunctionPolicy::builtin(), super::legit_tests::catalog_policy()];
    let seeds: Vec<&str> =
        ATTACKS.iter().map(|(sql, _, _)| *sql).chain(LEGIT.iter().copied()).chain(GRAMMAR.iter().copied()).collect();
    let mut rng = Rng(0x5EED_2A7A_D1E5_0001);
    for i in 0..3_000 {
        let sql = match i % 3 {
            0 => random_bytes(&mut rng),
            1 => token_soup(&mut rng),
            _ => mutation(&mut rng, &seeds),
        };
        check(&sql, &policies[i % 2]);
    }
}

#[test]
fn pathological_nesting_is_refused_or_passes_but_never_crashes() {
    let policy = FunctionPolicy::builtin();
    // Each case repeats its unit as often as the size cap allows.
    let room = |fixed: usize, unit: usize| (MAX_SQL_BYTES - 20 - fixed) / unit;
    let nest = |open: &str, inner: &str, close: &str| {
        let n = room(inner.len(), open.len() + close.len());
        format!("SELECT {}{inner}{}", open.repeat(n), close.repeat(n))
    };
    let chain = |first: &str, unit: &str| format!("SELECT {first}{}", unit.repeat(room(first.len(), unit.len())));
    let cases = [
        nest("(", "1", ")"),
        nest("(SELECT ", "1", ")"),
        nest("- ", "1", ""),
        nest("NOT ", "true", ""),
        nest("ARRAY[", "1", "]"),
        nest("abs(", "1", ")"),
        nest("CASE WHEN true THEN ", "1", " END"),
        nest("(WITH c AS (SELECT 1) SELECT * FROM c WHERE 1 IN ", "(1)", ")"),
        chain("1", " + 1"),
        chain("'a'", " || 'a'"),
        chain("1", ", 1"),
        chain("1", ";"),
        chain("1 FROM retail.stores", " NATURAL JOIN retail.orders"),
        format!(
            "WITH {} SELECT 1",
            (0..room(0, 20)).map(|i| format!("c{i} AS (SELECT 1)")).collect::<Vec<_>>().join(",")
        ),
        "(".repeat(MAX_SQL_BYTES),
    ];
    for sql in &cases {
        assert!(sql.len() <= MAX_SQL_BYTES, "{} bytes", sql.len());
        if let Err(e) = ReadOnlySql::parse(sql, &policy) {
            assert!(["TooComplex", "Syntax"].contains(&variant(&e)), "{e}");
        }
    }
    // Every depth around prost's limit of 100 messages: the deepest trees that still decode need the most
    // stack (this is what overflowed a 2 MiB thread before the guard got its own).
    let patterns: [(&str, &str, &str); 6] = [
        ("(SELECT ", "1", ")"),
        ("abs(", "1", ")"),
        ("ARRAY[", "1", "]"),
        ("CASE WHEN true THEN ", "1", " END"),
        ("- ", "1", ""),
        ("(1 + ", "1", ")"),
    ];
    for (open, inner, close) in patterns {
        for n in 10..=110 {
            let sql = format!("SELECT {}{inner}{}", open.repeat(n), close.repeat(n));
            if let Err(e) = ReadOnlySql::parse(&sql, &policy) {
                assert!(["TooComplex", "Syntax"].contains(&variant(&e)), "{e}");
            }
        }
    }
    for n in 10..=110 {
        let joins = format!("SELECT 1 FROM retail.stores{}", " NATURAL JOIN retail.orders".repeat(n));
        let _ = ReadOnlySql::parse(&joins, &policy);
        let concat = format!("SELECT 'a'{}", " || 'a'".repeat(n));
        let _ = ReadOnlySql::parse(&concat, &policy);
    }
    // The simplest deep cases must be refused as too deep, not as something else.
    let deep = format!("SELECT 1{}", " + 1".repeat(200));
    assert_eq!(ReadOnlySql::parse(&deep, &policy), Err(GuardError::TooComplex));
}

#[test]
fn the_size_cap_is_exact() {
    let policy = FunctionPolicy::builtin();
    let pad = |total: usize| format!("SELECT 1 /*{}*/", "x".repeat(total - "SELECT 1 /**/".len()));
    assert!(ReadOnlySql::parse(&pad(MAX_SQL_BYTES), &policy).is_ok());
    let too_long = pad(MAX_SQL_BYTES + 1);
    assert_eq!(
        ReadOnlySql::parse(&too_long, &policy),
        Err(GuardError::TooLong { len: MAX_SQL_BYTES + 1, max: MAX_SQL_BYTES })
    );
}

#[test]
fn positions_are_one_based_characters() {
    let policy = FunctionPolicy::builtin();
    let position = |sql: &str| ReadOnlySql::parse(sql, &policy).err().and_then(|e| e.position());
    // "é" and "☕" are one character each, though two and three bytes.
    assert_eq!(position("SELECT 'é☕', pg_sleep(1)"), Some(14));
    assert_eq!(position("SELECT 'é☕' FROMM x y"), Some(19), "PostgreSQL's own cursor position");
    assert_eq!(position("SELECT 'é'; SELECT 2"), Some(11), "the end of the first statement");
    assert_eq!(position("SELECT * FROM zava_private.context_key"), Some(15));
    assert_eq!(position("SELECT 1\0"), Some(9));
}

#[test]
fn messages_say_what_to_change() {
    let policy = FunctionPolicy::builtin();
    let message = |sql: &str| ReadOnlySql::parse(sql, &policy).map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        message("SELECT 1; DROP TABLE x"),
        "Only one statement per call: remove everything after the first statement (`; DROP TABLE x`)."
    );
    assert_eq!(
        message("DELETE FROM t"),
        "Only read-only queries are allowed: `DELETE` modifies data. Rewrite it as a SELECT."
    );
    assert_eq!(
        message("SELECT pg_sleep(1)"),
        "Function `pg_sleep` is not allowed (it can stall the database). Remove it."
    );
    assert!(message("SHOW zava.tenant").contains("current_setting"));
    assert!(message("SELECT 'x").starts_with("Invalid SQL: unterminated quoted string"));
    // Model text echoed back stays short and on one line.
    let long = format!("SELECT 1;\n{}", "SELECT 2;\n".repeat(1_000));
    let m = message(&long);
    assert!(m.chars().count() < 200 && !m.contains('\n'), "{m}");
    for (sql, _, _) in ATTACKS {
        let m = ReadOnlySql::parse(sql, &policy).map(|_| ()).unwrap_err().to_string();
        assert!(m.ends_with('.') && m.chars().count() <= 300, "{m}");
    }
}

#[test]
fn the_public_types_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<FunctionPolicy>();
    shareable::<ReadOnlySql>();
    shareable::<GuardError>();
}
