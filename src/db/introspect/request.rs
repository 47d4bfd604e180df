//! Checking a `get_multiple_table_schemas` request against the tables the role may read.
//!
//! The origin accepted only its exact 8-name whitelist; here the whitelist is whatever [`super::readable_tables`]
//! returns, matched case-insensitively, with unambiguous unqualified names (`orders`) accepted as a convenience.
//! Error texts keep the origin's wording and its Python-list rendering, which assistants already know how to read.

use std::collections::HashSet;

use super::TableName;

/// Most distinct names one request may ask for.
pub const MAX_TABLES: usize = 20;

/// Longest echo of one rejected name, so a huge argument is not mirrored back whole.
const ECHO_CHARS: usize = 128;

/// Why a request names no describable tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaRequestError {
    #[error("table_names is required and cannot be empty; valid tables are: {}", py_list(.valid))]
    Empty { valid: Vec<String> },
    #[error("Invalid table names: {}. Valid tables are: {}", py_list(.invalid), py_list(.valid))]
    Invalid { invalid: Vec<String>, valid: Vec<String> },
    #[error("Too many table names: {requested} requested, at most {max} per call")]
    TooMany { requested: usize, max: usize },
}

/// Maps requested names onto `readable`, in request order, duplicates dropped.
///
/// A name matches `schema.table` case-insensitively (an exact-case match wins if case alone is ambiguous); a
/// name without a dot matches the one readable table of that name in any schema. Names that match nothing or
/// more than one table are invalid. More than [`MAX_TABLES`] distinct names are refused before any matching.
pub fn resolve(requested: &[String], readable: &[TableName]) -> Result<Vec<TableName>, SchemaRequestError> {
    let valid = || readable.iter().map(ToString::to_string).collect::<Vec<_>>();
    if requested.is_empty() {
        return Err(SchemaRequestError::Empty { valid: valid() });
    }
    let distinct: HashSet<String> = requested.iter().map(|r| r.trim().to_ascii_lowercase()).collect();
    if distinct.len() > MAX_TABLES {
        return Err(SchemaRequestError::TooMany { requested: distinct.len(), max: MAX_TABLES });
    }
    let mut tables = Vec::new();
    let mut invalid: Vec<String> = Vec::new();
    for name in requested {
        let name = name.trim();
        match lookup(name, readable) {
            Some(t) if !tables.contains(t) => tables.push(t.clone()),
            Some(_) => {}
            None => {
                let echo: String = name.chars().take(ECHO_CHARS).collect();
                if !invalid.contains(&echo) {
                    invalid.push(echo);
                }
            }
        }
    }
    if !invalid.is_empty() {
        return Err(SchemaRequestError::Invalid { invalid, valid: valid() });
    }
    Ok(tables)
}

fn lookup<'a>(name: &str, readable: &'a [TableName]) -> Option<&'a TableName> {
    let (schema, table) = match name.split_once('.') {
        Some((s, t)) => (Some(s), t),
        None => (None, name),
    };
    let matches = |exact: bool| {
        let eq = |a: &str, b: &str| if exact { a == b } else { a.eq_ignore_ascii_case(b) };
        readable.iter().filter(|r| eq(r.table(), table) && schema.is_none_or(|s| eq(r.schema(), s))).collect::<Vec<_>>()
    };
    match matches(false).as_slice() {
        [one] => Some(one),
        [] => None,
        _ => match matches(true).as_slice() {
            [one] => Some(one),
            _ => None,
        },
    }
}

/// A list as Python's `repr` prints it: `['a', 'b']`.
fn py_list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| py_repr(s)).collect::<Vec<_>>().join(", "))
}

/// A string as Python's `repr` prints it: single quotes unless the text has a `'` and no `"`, with
/// backslashes, the chosen quote and control characters escaped.
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x100 && c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_reprs() {
        assert_eq!(py_repr("x"), "'x'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_repr("a\\b\n\u{1}"), "'a\\\\b\\n\\x01'");
        assert_eq!(py_list(&[]), "[]");
        assert_eq!(py_list(&["a".into(), "b".into()]), "['a', 'b']");
    }

    #[test]
    fn exact_case_breaks_a_case_only_tie() {
        let readable = [
            TableName::from_catalog("s".into(), "T".into()),
            TableName::from_catalog("s".into(), "t".into()),
            TableName::from_catalog("u".into(), "t".into()),
        ];
        assert_eq!(lookup("s.T", &readable), Some(&readable[0]));
        assert_eq!(lookup("S.t", &readable), None, "ambiguous without an exact match");
        assert_eq!(lookup("t", &readable), None, "ambiguous across schemas");
        assert_eq!(lookup("T", &readable), Some(&readable[0]));
    }
}
