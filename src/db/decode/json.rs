//! `json`/`jsonb` values into `serde_json::Value` without rounding their numbers.
//!
//! serde_json (without `arbitrary_precision`, which rmcp cannot live with) parses every non-integer into an f64,
//! so `{"a": 12345678901234567890.123}` would silently become `1.2345678901234567e19`. This small parser keeps
//! each number token's text and applies the same rule as `numeric` (`numeric::decimal_to_json`): a JSON number
//! when that is exact, otherwise the exact digits as a string. String tokens are unescaped by serde_json itself.
//! Object keys come out in serde_json's map order (sorted), and a repeated key keeps its last value.

use serde_json::{Map, Value};

use super::numeric::decimal_to_json;
use super::reader::{Res, malformed};

/// Nesting deeper than this is refused rather than risking the stack (serde_json's own limit is 128).
const MAX_DEPTH: usize = 512;

/// Parses one JSON document.
pub(crate) fn parse(text: &str) -> Res<Value> {
    let mut p = Parser { text, pos: 0 };
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos != text.len() {
        return p.error("trailing characters");
    }
    Ok(v)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn error<T>(&self, what: &str) -> Res<T> {
        malformed(format!("invalid JSON at byte {}: {what}", self.pos))
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Res<()> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.error(&format!("expected `{}`", char::from(c)))
        }
    }

    fn value(&mut self, depth: usize) -> Res<Value> {
        if depth > MAX_DEPTH {
            return self.error(&format!("nested deeper than {MAX_DEPTH} levels"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            _ => self.error("expected a value"),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Res<Value> {
        if self.text[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            self.error("unknown literal")
        }
    }

    fn object(&mut self, depth: usize) -> Res<Value> {
        self.pos += 1; // '{'
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return self.error("expected an object key");
            }
            let key = self.string()?;
            self.expect(b':')?;
            self.skip_ws();
            let v = self.value(depth + 1)?;
            map.insert(key, v);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                _ => return self.error("expected `,` or `}`"),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Res<Value> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return self.error("expected `,` or `]`"),
            }
        }
    }

    /// A string token, unescaped by serde_json (which knows every escape, surrogate pairs included).
    fn string(&mut self) -> Res<String> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        let mut i = start + 1;
        loop {
            match bytes.get(i) {
                None => return self.error("unterminated string"),
                Some(b'"') => break,
                Some(b'\\') => i += 2,
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        serde_json::from_str::<String>(&self.text[start..self.pos])
            .or_else(|e| malformed(format!("invalid JSON string at byte {start}: {e}")))
    }

    /// A number token, checked against JSON's grammar, then kept exact.
    fn number(&mut self) -> Res<Value> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
            self.pos += 1;
        }
        let token = &self.text[start..self.pos];
        if !is_json_number(token.as_bytes()) {
            return malformed(format!("invalid JSON number `{token}` at byte {start}"));
        }
        Ok(decimal_to_json(token))
    }
}

/// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` (any magnitude).
fn is_json_number(t: &[u8]) -> bool {
    let mut i = usize::from(t.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while t.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match t.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if t.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == t.len()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_documents_exactly() {
        assert_eq!(parse(r#" {"a": [1, 2.50, -3e2, true, null], "b": {"c": "x\"\u00e9\ud83d\ude00"}} "#).unwrap(), {
            json!({"a": [1, 2.5, -300.0, true, null], "b": {"c": "x\"é😀"}})
        });
        assert_eq!(parse("12345678901234567890.123").unwrap(), json!("12345678901234567890.123"));
        assert_eq!(parse("[9007199254740993, 0.1]").unwrap(), json!(["9007199254740993", 0.1]));
        assert_eq!(parse("[]").unwrap(), json!([]));
        assert_eq!(parse(r#"{"a":1,"a":2}"#).unwrap(), json!({"a": 2}));
        assert_eq!(parse(r#""""#).unwrap(), json!(""));
        assert_eq!(parse("[1e400, 0, -0.0, 1E+2]").unwrap(), json!(["1e400", 0, -0.0, 100.0]));
    }

    #[test]
    fn rejects_malformed_documents() {
        for bad in [
            "",
            "{",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{1:2}",
            "01",
            "1.",
            "-",
            "1e",
            "tru",
            "\"abc",
            "\"\\\"",
            "[1]x",
            "\"\\q\"",
            "+1",
            "{\"a\":}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert!(parse(&deep).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
    }
}
