//! Every value of a query result, of any type, as exact JSON.
//!
//! Model-written SQL can return any type, and the origin got this wrong: it turned `numeric` into strings,
//! dates into `str()` forms and collapsed duplicate column names (ORIGIN.md §7 C3, C4). Here a row is read
//! by position, never by name, and each value's raw bytes (the extended protocol returns them in PostgreSQL's
//! BINARY format) are decoded by type OID, kind or name, with no type known in advance.
//!
//! **Numbers are never changed.** An integer of magnitude at most 2^53 is a JSON integer. Any other `numeric`
//! (decoded by hand into its exact decimal text, `dscale` digits after the point) is a JSON number only if
//! parsing that text as an f64 and printing the f64 as serde_json does (ryu, shortest round-trip) denotes the same
//! decimal value, trailing fractional zeros aside: `19.90` → `19.9`, `33.00` → `33.0`, `1e-10` → `1e-10`.
//! Otherwise the exact text is kept as a string: `"12345678901234567890.123"`, `"9007199254740993"`. A client
//! that parses the JSON into doubles therefore never sees a different value, and nothing needs serde_json's
//! `arbitrary_precision` (which breaks rmcp). The same rule applies to the numbers inside `json`/`jsonb`.
//!
//! | PostgreSQL | JSON |
//! |---|---|
//! | NULL | `null` |
//! | bool | `true`/`false` |
//! | int2, int4, oid, xid, cid | number |
//! | int8, xid8 | number up to 2^53 in magnitude, else a string of the exact digits |
//! | float4, float8 | number; `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | numeric | number when exactly representable, else the exact string (`"12345678901234567890.123"`) |
//! | money | exact string without currency sign: `"-12.34"` |
//! | text, varchar, bpchar, name, "char", xml, citext, enums, unknown text-like types | string |
//! | uuid | hyphenated string |
//! | date, timestamp, timestamptz, time, timetz | ISO 8601 (`2024-05-01`, `2024-05-01T10:00:00`, `…Z` in UTC, `10:00:00+02:00`); `"infinity"` |
//! | interval | ISO 8601 duration (`P1Y2M3DT4H5M6.5S`, `PT0S`) |
//! | json, jsonb | the JSON value itself (its numbers by the numeric rule) |
//! | bytea | `"\\xdeadbeef"` |
//! | inet, cidr, macaddr, macaddr8, bit, varbit, pg_lsn, tid, jsonpath, geometric types | PostgreSQL's text form |
//! | vector, halfvec (pgvector) | array of numbers |
//! | sparsevec (pgvector) | its text form `"{1:1.5,3:2}/5"` |
//! | arrays (any element type, any dimensions; also `record[]` and `anyarray`) | nested arrays, lower bounds dropped |
//! | composite types, `ROW(...)` | array of field values |
//! | ranges, multiranges | text form, bounds rendered as above: `"[1,10)"`, `"{[1,3),[5,7)}"` |
//! | domains | as their base type |
//! | tsvector, tsquery, reg* (regclass, …), snapshots, other binary-only types | [`DecodeError::Unsupported`] with a cast hint |

mod containers;
mod datetime;
mod json;
mod numeric;
mod reader;
mod scalars;

use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Kind, Type};

use self::numeric::{decimal_to_json, float_to_json, float4_to_json, int_to_json, uint_to_json};
use self::reader::{Fail, Res, malformed};

/// Column metadata of a result: name and PostgreSQL type name (e.g. "numeric", "timestamptz", "_text", "vector").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnInfo {
    pub name: String,
    pub pg_type: String,
}

/// The columns of a prepared statement, in order (duplicate names are kept: a result is read by position).
pub fn columns(stmt_columns: &[tokio_postgres::Column]) -> Vec<ColumnInfo> {
    stmt_columns
        .iter()
        .map(|c| ColumnInfo { name: c.name().to_owned(), pg_type: c.type_().name().to_owned() })
        .collect()
}

/// One row's values, in column order (duplicate column names are fine: positions, never names).
///
/// The row must come from the extended protocol (`query`, `query_portal`, …), whose results are binary.
pub fn row_values(row: &Row) -> Result<Vec<Value>, DecodeError> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let raw: Option<RawBytes<'_>> = row.try_get(i).map_err(|e| DecodeError::Malformed {
            column: col.name().to_owned(),
            pg_type: col.type_().name().to_owned(),
            reason: e.to_string(),
        })?;
        out.push(match raw {
            None => Value::Null,
            Some(RawBytes(bytes)) => value(col.type_(), bytes, 0).map_err(|f| DecodeError::new(col, f))?,
        });
    }
    Ok(out)
}

/// Why a value could not be turned into JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The column's type (or a type inside it, for arrays, records and ranges) has no JSON rendering here.
    Unsupported { column: String, pg_type: String },
    /// The bytes did not match the type's binary format (a server or decoder bug, not the query's fault).
    Malformed { column: String, pg_type: String, reason: String },
}

impl DecodeError {
    fn new(col: &tokio_postgres::Column, fail: Fail) -> Self {
        let (column, pg_type) = (col.name().to_owned(), col.type_().name().to_owned());
        match fail {
            Fail::Unsupported(_) => DecodeError::Unsupported { column, pg_type },
            Fail::Malformed(reason) => DecodeError::Malformed { column, pg_type, reason },
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Unsupported { column, pg_type } => write!(
                f,
                "column `{column}` has type `{pg_type}`, which cannot be returned; cast it to a returnable type in \
                 the query, e.g. `{}::text`",
                cast_target(column)
            ),
            DecodeError::Malformed { column, pg_type, reason } => write!(
                f,
                "column `{column}` (type `{pg_type}`) could not be decoded ({reason}); cast it in the query, e.g. \
                 `{}::text`",
                cast_target(column)
            ),
        }
    }
}

/// What to write before `::text` in a hint: the column's name when it is a plain identifier, else a placeholder
/// (`?column?` and quoted names are not something a model can cast as written).
fn cast_target(column: &str) -> &str {
    let plain = column.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && column.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain { column } else { "<expression>" }
}

impl std::error::Error for DecodeError {}

/// A value's raw bytes, whatever its type: the `FromSql` that accepts everything.
struct RawBytes<'a>(&'a [u8]);

impl<'a> FromSql<'a> for RawBytes<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawBytes(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Containers inside containers deeper than this are refused (PostgreSQL's own types never come close).
const MAX_NESTING: usize = 32;

/// OIDs from here on belong to user-defined and extension types (PostgreSQL's FirstNormalObjectId).
const FIRST_NORMAL_OID: u32 = 16_384;

/// One non-NULL value of type `ty` from its binary bytes.
pub(crate) fn value(ty: &Type, bytes: &[u8], depth: usize) -> Res<Value> {
    if depth > MAX_NESTING {
        return malformed(format!("values nested deeper than {MAX_NESTING} levels"));
    }
    match ty.kind() {
        Kind::Array(elem) => containers::array(Some(elem), bytes, depth),
        Kind::Domain(base) => value(base, bytes, depth + 1),
        Kind::Enum(_) => scalars::utf8(bytes).map(Value::String),
        Kind::Composite(fields) => containers::record(Some(fields), bytes, depth),
        Kind::Range(sub) => containers::range(sub, bytes, depth).map(Value::String),
        Kind::Multirange(sub) => containers::multirange(sub, bytes, depth).map(Value::String),
        _ if ty.oid() >= FIRST_NORMAL_OID => extension(ty, bytes),
        _ => builtin(ty, bytes, depth),
    }
}

/// Types of extensions and user-defined base types, known by name (they have no fixed OID).
fn extension(ty: &Type, bytes: &[u8]) -> Res<Value> {
    match ty.name() {
        "vector" => containers::vector(bytes, false),
        "halfvec" => containers::vector(bytes, true),
        "sparsevec" => containers::sparsevec(bytes).map(Value::String),
        "ltree" | "lquery" | "ltxtquery" => scalars::versioned_text(bytes).map(|s| Value::String(s.to_owned())),
        // citext and other text-like types send their text; binary layouts (hstore, PostGIS, …) are refused.
        _ => plain_text(bytes).map(Value::String).ok_or_else(|| Fail::Unsupported(ty.name().to_owned())),
    }
}

/// The bytes as a string if they look like text: valid UTF-8 with no control characters but tab and newlines.
/// Binary formats almost always contain a zero byte (in a length or a small integer), so they fail this test.
pub(crate) fn plain_text(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    (!s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))).then(|| s.to_owned())
}

fn fixed<const N: usize>(bytes: &[u8]) -> Res<[u8; N]> {
    bytes.try_into().or_else(|_| malformed(format!("{} bytes where {N} were expected", bytes.len())))
}

/// PostgreSQL's built-in types, by OID (see `pg_type.dat`).
fn builtin(ty: &Type, bytes: &[u8], depth: usize) -> Res<Value> {
    let string = |s: String| Ok(Value::String(s));
    match ty.oid() {
        16 => match fixed::<1>(bytes)? {
            [0] => Ok(Value::Bool(false)),
            [1] => Ok(Value::Bool(true)),
            [b] => malformed(format!("bool byte {b}")),
        },
        21 => Ok(Value::from(i16::from_be_bytes(fixed(bytes)?))),
        23 => Ok(Value::from(i32::from_be_bytes(fixed(bytes)?))),
        20 => Ok(int_to_json(i64::from_be_bytes(fixed(bytes)?))),
        // oid, xid, cid: unsigned 32-bit; xid8: unsigned 64-bit.
        26 | 28 | 29 => Ok(Value::from(u32::from_be_bytes(fixed(bytes)?))),
        5069 => Ok(uint_to_json(u64::from_be_bytes(fixed(bytes)?))),
        700 => Ok(float4_to_json(f32::from_be_bytes(fixed(bytes)?))),
        701 => Ok(float_to_json(f64::from_be_bytes(fixed(bytes)?))),
        1700 => numeric::numeric_text(bytes).map(|s| decimal_to_json(&s)),
        790 => scalars::money(bytes).and_then(string),
        // text, name, bpchar, varchar, xml, unknown, cstring, refcursor, pg_node_tree: the bytes are the text.
        25 | 19 | 1042 | 1043 | 142 | 705 | 2275 | 1790 | 194 => scalars::utf8(bytes).and_then(string),
        18 => scalars::char1(bytes).and_then(string),
        2950 => scalars::uuid(bytes).and_then(string),
        17 => string(scalars::bytea(bytes)),
        114 => json::parse(&scalars::utf8(bytes)?),
        3802 => json::parse(scalars::versioned_text(bytes)?),
        4072 => string(scalars::versioned_text(bytes)?.to_owned()),
        1082 => datetime::date(bytes).and_then(string),
        1114 => datetime::timestamp(bytes, false).and_then(string),
        1184 => datetime::timestamp(bytes, true).and_then(string),
        1083 => datetime::time(bytes).and_then(string),
        1266 => datetime::timetz(bytes).and_then(string),
        1186 => datetime::interval(bytes).and_then(string),
        869 => scalars::inet(bytes, false).and_then(string),
        650 => scalars::inet(bytes, true).and_then(string),
        829 => scalars::macaddr(bytes, 6).and_then(string),
        774 => scalars::macaddr(bytes, 8).and_then(string),
        1560 | 1562 => scalars::bits(bytes).and_then(string),
        3220 => scalars::pg_lsn(bytes).and_then(string),
        27 => scalars::tid(bytes).and_then(string),
        600 | 601 | 602 | 603 | 604 | 628 | 718 => scalars::geometric(ty.name(), bytes).and_then(string),
        2249 => containers::record(None, bytes, depth),
        2287 => containers::array(Some(&Type::RECORD), bytes, depth), // record[]
        2277 => containers::array(None, bytes, depth),                // anyarray
        2278 => Ok(Value::Null),                                      // void
        _ => Err(Fail::Unsupported(ty.name().to_owned())),
    }
}

#[cfg(test)]
mod tests;
