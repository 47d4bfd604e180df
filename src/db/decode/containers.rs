//! Values made of other values: arrays, records (composite types and anonymous `ROW(...)`), ranges and
//! multiranges, and pgvector's vectors. Elements are decoded through `decode::value`, so any element type the
//! decoder knows works inside any container.

use serde_json::Value;
use tokio_postgres::types::{Field, Kind, Type};

use super::numeric::{float4_text, float4_to_json, numeric_text};
use super::reader::{Fail, Reader, Res, malformed};
use super::value;

/// PostgreSQL's limit on array dimensions (MAXDIM).
const MAX_DIMS: i32 = 6;

/// An array of any number of dimensions → nested JSON arrays, NULL elements as `null`; lower bounds are dropped.
///
/// Wire format: `int32 ndim, int32 has_nulls, uint32 element oid`, `ndim × (int32 length, int32 lower bound)`,
/// then every element in row-major order as `int32 length` (-1 for NULL) and its bytes.
///
/// `elem` is the element type when the array type names it; `None` (the pseudo-type `anyarray`, in catalog views
/// such as `pg_stats`) takes the built-in type of the element OID in the header.
pub(crate) fn array(elem: Option<&Type>, bytes: &[u8], depth: usize) -> Res<Value> {
    let mut r = Reader::new(bytes);
    let ndim = r.i32()?;
    let _has_nulls = r.i32()?;
    let elem_oid = r.u32()?;
    let elem = match elem.cloned().or_else(|| Type::from_oid(elem_oid)) {
        Some(t) => t,
        None => return Err(Fail::Unsupported(format!("array of type oid {elem_oid}"))),
    };
    let elem = &elem;
    if ndim == 0 {
        r.finish()?;
        return Ok(Value::Array(Vec::new()));
    }
    if !(1..=MAX_DIMS).contains(&ndim) {
        return malformed(format!("array with {ndim} dimensions"));
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    let mut total: usize = 1;
    for _ in 0..ndim {
        let len = r.i32()?;
        let _lower_bound = r.i32()?;
        let len = usize::try_from(len).or_else(|_| malformed(format!("array dimension of length {len}")))?;
        dims.push(len);
        total = total.saturating_mul(len);
    }
    // Every element takes at least its 4-byte length: refuse counts the bytes cannot hold before allocating.
    if total.saturating_mul(4) > r.remaining() {
        return malformed(format!("array of {total} elements in {} bytes", r.remaining()));
    }
    let mut items = Vec::with_capacity(total);
    for _ in 0..total {
        items.push(match r.chunk()? {
            None => Value::Null,
            Some(b) => value(elem, b, depth + 1)?,
        });
    }
    r.finish()?;
    Ok(nest(&mut items.into_iter(), &dims))
}

fn nest(items: &mut std::vec::IntoIter<Value>, dims: &[usize]) -> Value {
    match dims {
        [] => Value::Null,
        [n] => Value::Array(items.take(*n).collect()),
        [n, rest @ ..] => Value::Array((0..*n).map(|_| nest(items, rest)).collect()),
    }
}

/// A composite value → a JSON array of its field values, in order.
///
/// Wire format: `int32 field count`, then per field `uint32 type oid, int32 length` (-1 for NULL) and its bytes.
/// The field types come from the composite type when it is known (`fields`), else (anonymous records) from the
/// built-in type of each field's OID. A field of an unknown non-built-in type is kept if its bytes are plain
/// text (enums, citext, …) and refused otherwise.
pub(crate) fn record(fields: Option<&[Field]>, bytes: &[u8], depth: usize) -> Res<Value> {
    let mut r = Reader::new(bytes);
    let n = r.i32()?;
    if n < 0 || (n as usize).saturating_mul(8) > r.remaining() {
        return malformed(format!("record of {n} fields in {} bytes", r.remaining()));
    }
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        let oid = r.u32()?;
        let Some(b) = r.chunk()? else {
            out.push(Value::Null);
            continue;
        };
        let known = fields.and_then(|f| f.get(i)).map(Field::type_).filter(|t| t.oid() == oid).cloned();
        let v = match known.or_else(|| Type::from_oid(oid)) {
            Some(t) => value(&t, b, depth + 1)?,
            None => match super::plain_text(b) {
                Some(s) => Value::String(s),
                None => return Err(Fail::Unsupported(format!("record field of type oid {oid}"))),
            },
        };
        out.push(v);
    }
    r.finish()?;
    Ok(Value::Array(out))
}

const RANGE_EMPTY: u8 = 0x01;
const RANGE_LB_INC: u8 = 0x02;
const RANGE_UB_INC: u8 = 0x04;
const RANGE_LB_INF: u8 = 0x08;
const RANGE_UB_INF: u8 = 0x10;
const RANGE_LB_NULL: u8 = 0x20;
const RANGE_UB_NULL: u8 = 0x40;

/// A range → its text form, as PostgreSQL prints it: `[1,10)`, `(,5]`, `empty`. Bounds are rendered as this
/// decoder renders their type (so timestamps in ISO form: `[2024-01-01T00:00:00,2024-02-01T00:00:00)`), and
/// quoted when they contain a delimiter or space.
///
/// Wire format: `uint8 flags`, then each finite bound as `int32 length` and its bytes.
pub(crate) fn range(subtype: &Type, bytes: &[u8], depth: usize) -> Res<String> {
    let mut r = Reader::new(bytes);
    let flags = r.u8()?;
    if flags & RANGE_EMPTY != 0 {
        r.finish()?;
        return Ok("empty".to_owned());
    }
    let mut bound = |absent: u8| -> Res<String> {
        if flags & absent != 0 {
            return Ok(String::new());
        }
        match r.chunk()? {
            Some(b) => bound_text(subtype, b, depth).map(|s| quote_bound(&s)),
            None => malformed("range bound of length -1"),
        }
    };
    let lower = bound(RANGE_LB_INF | RANGE_LB_NULL)?;
    let upper = bound(RANGE_UB_INF | RANGE_UB_NULL)?;
    r.finish()?;
    let open = if flags & RANGE_LB_INC != 0 { '[' } else { '(' };
    let close = if flags & RANGE_UB_INC != 0 { ']' } else { ')' };
    Ok(format!("{open}{lower},{upper}{close}"))
}

/// A multirange → `{[1,3),[5,7)}`. Wire format: `int32 count`, then each range as `int32 length` and its bytes.
pub(crate) fn multirange(subtype: &Type, bytes: &[u8], depth: usize) -> Res<String> {
    let mut r = Reader::new(bytes);
    let n = r.i32()?;
    if n < 0 || (n as usize).saturating_mul(5) > r.remaining() {
        return malformed(format!("multirange of {n} ranges in {} bytes", r.remaining()));
    }
    let mut parts = Vec::with_capacity(n as usize);
    for _ in 0..n {
        match r.chunk()? {
            Some(b) => parts.push(range(subtype, b, depth + 1)?),
            None => return malformed("NULL range in a multirange"),
        }
    }
    r.finish()?;
    Ok(format!("{{{}}}", parts.join(",")))
}

/// One range bound as text: numerics keep every digit; everything else is its JSON rendering, unquoted.
fn bound_text(subtype: &Type, bytes: &[u8], depth: usize) -> Res<String> {
    let base = match subtype.kind() {
        Kind::Domain(base) => base,
        _ => subtype,
    };
    if *base == Type::NUMERIC {
        return numeric_text(bytes);
    }
    Ok(match value(subtype, bytes, depth + 1)? {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// Quotes a bound the way `range_out` does: when empty or containing `"\(),[]` or whitespace, with `"` and `\`
/// doubled.
fn quote_bound(s: &str) -> String {
    let needs =
        s.is_empty() || s.chars().any(|c| matches!(c, '"' | '\\' | '(' | ')' | '[' | ']' | ',') || c.is_whitespace());
    if !needs {
        return s.to_owned();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push(c);
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// pgvector's `vector` (`uint16 dim, uint16 unused`, then `dim` big-endian f32) and `halfvec` (the same with
/// IEEE half floats) → a JSON array of numbers.
pub(crate) fn vector(bytes: &[u8], half: bool) -> Res<Value> {
    let mut r = Reader::new(bytes);
    let dim = usize::from(r.u16()?);
    let _unused = r.u16()?;
    let size = if half { 2 } else { 4 };
    if r.remaining() != dim * size {
        return malformed(format!("vector of {dim} dimensions in {} bytes", r.remaining()));
    }
    let mut out = Vec::with_capacity(dim);
    for _ in 0..dim {
        let x = if half { f16_to_f32(r.u16()?) } else { r.f32()? };
        out.push(float4_to_json(x));
    }
    Ok(Value::Array(out))
}

/// pgvector's `sparsevec` → its text form `{1:1.5,3:2}/5` (1-based indices, then the dimension).
///
/// Wire format: `int32 dim, int32 nnz, int32 unused`, `nnz × int32` 0-based indices, `nnz × f32` values.
pub(crate) fn sparsevec(bytes: &[u8]) -> Res<String> {
    let mut r = Reader::new(bytes);
    let dim = r.i32()?;
    let nnz = r.i32()?;
    let _unused = r.i32()?;
    if dim < 0 || nnz < 0 || r.remaining() != (nnz as usize).saturating_mul(8) {
        return malformed(format!("sparsevec of dimension {dim} with {nnz} values in {} bytes", r.remaining()));
    }
    let mut indices = Vec::with_capacity(nnz as usize);
    for _ in 0..nnz {
        indices.push(i64::from(r.i32()?) + 1);
    }
    let mut parts = Vec::with_capacity(nnz as usize);
    for i in indices {
        parts.push(format!("{i}:{}", float4_text(r.f32()?)));
    }
    Ok(format!("{{{}}}/{dim}", parts.join(",")))
}

/// IEEE 754 binary16 → f32 (exact: every half value is an f32 value).
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn int4_array(dims: &[(i32, i32)], elems: &[Option<i32>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(dims.len() as i32).to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&23u32.to_be_bytes());
        for (len, lb) in dims {
            b.extend_from_slice(&len.to_be_bytes());
            b.extend_from_slice(&lb.to_be_bytes());
        }
        for e in elems {
            match e {
                Some(v) => {
                    b.extend_from_slice(&4i32.to_be_bytes());
                    b.extend_from_slice(&v.to_be_bytes());
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        b
    }

    #[test]
    fn arrays_nest_by_dimension() {
        let two_by_two = int4_array(&[(2, 1), (2, 0)], &[Some(1), Some(2), Some(3), None]);
        assert_eq!(array(Some(&Type::INT4), &two_by_two, 0).unwrap(), json!([[1, 2], [3, null]]));
        assert_eq!(array(Some(&Type::INT4), &int4_array(&[], &[]), 0).unwrap(), json!([]));
        // More elements claimed than bytes present.
        assert!(array(Some(&Type::INT4), &int4_array(&[(1_000_000, 1)], &[Some(1)]), 0).is_err());
        assert!(array(Some(&Type::INT4), &int4_array(&[(-1, 1)], &[]), 0).is_err());
        assert!(array(Some(&Type::INT4), &int4_array(&[(1, 1); 7], &[Some(1)]), 0).is_err());
        let mut extra = int4_array(&[(1, 1)], &[Some(1)]);
        extra.push(0);
        assert!(array(Some(&Type::INT4), &extra, 0).is_err());
    }

    #[test]
    fn ranges_print_like_postgres() {
        let mut b = vec![RANGE_LB_INC];
        for v in [1i32, 10] {
            b.extend_from_slice(&4i32.to_be_bytes());
            b.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(range(&Type::INT4, &b, 0).unwrap(), "[1,10)");
        assert_eq!(range(&Type::INT4, &[RANGE_EMPTY], 0).unwrap(), "empty");
        let mut lower_inf = vec![RANGE_LB_INF | RANGE_UB_INC];
        lower_inf.extend_from_slice(&4i32.to_be_bytes());
        lower_inf.extend_from_slice(&5i32.to_be_bytes());
        assert_eq!(range(&Type::INT4, &lower_inf, 0).unwrap(), "(,5]");
        assert!(range(&Type::INT4, &[RANGE_LB_INC], 0).is_err());
        assert_eq!(quote_bound("a b"), "\"a b\"");
        assert_eq!(quote_bound("x\"y"), "\"x\"\"y\"");
        assert_eq!(quote_bound(""), "\"\"");
    }

    #[test]
    fn pgvector_types() {
        let mut v = vec![0, 2, 0, 0];
        v.extend_from_slice(&1.5f32.to_be_bytes());
        v.extend_from_slice(&0.1f32.to_be_bytes());
        assert_eq!(vector(&v, false).unwrap(), json!([1.5, 0.1]));
        assert!(vector(&v[..7], false).is_err());
        let h = [0u8, 2, 0, 0, 0x3e, 0x00, 0xc0, 0x00]; // 1.5, -2
        assert_eq!(vector(&h, true).unwrap(), json!([1.5, -2.0]));
        let mut s = Vec::new();
        for x in [5i32, 2, 0, 0, 2] {
            s.extend_from_slice(&x.to_be_bytes());
        }
        s.extend_from_slice(&1.5f32.to_be_bytes());
        s.extend_from_slice(&2f32.to_be_bytes());
        assert_eq!(sparsevec(&s).unwrap(), "{1:1.5,3:2}/5");
        assert!(sparsevec(&s[..20]).is_err());
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c01).is_nan());
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
    }
}
