//! Scalar types whose binary form has a fixed, simple layout: text, bytes, identifiers, network addresses,
//! money, bit strings, log positions and the geometric types. Each returns the same text PostgreSQL's output
//! function would print (floats included, see `numeric::float8_text`), except where noted.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::numeric::float8_text;
use super::reader::{Reader, Res, malformed};

/// UTF-8 text (the binary form of every text-like type is its bytes; the connection's encoding is UTF-8).
pub(crate) fn utf8(bytes: &[u8]) -> Res<String> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        Err(e) => malformed(format!("text is not valid UTF-8: {e}")),
    }
}

/// Text behind a one-byte format version (`jsonb`, `jsonpath`, ltree's types): version 1 is the only one.
pub(crate) fn versioned_text(bytes: &[u8]) -> Res<&str> {
    match bytes.split_first() {
        Some((1, rest)) => std::str::from_utf8(rest).or_else(|e| malformed(format!("not valid UTF-8: {e}"))),
        Some((v, _)) => malformed(format!("unknown format version {v}")),
        None => malformed("empty value"),
    }
}

/// `bytea` in PostgreSQL's hex output form: `\x` then two lowercase hex digits per byte.
pub(crate) fn bytea(bytes: &[u8]) -> String {
    format!("\\x{}", hex::encode(bytes))
}

/// `"char"`: one byte; PostgreSQL prints bytes ≥ 0x80 as an octal escape and the zero byte as an empty string.
pub(crate) fn char1(bytes: &[u8]) -> Res<String> {
    match bytes {
        [] | [0] => Ok(String::new()),
        [b] if b.is_ascii() => Ok(char::from(*b).to_string()),
        [b] => Ok(format!("\\{b:03o}")),
        _ => malformed(format!("\"char\" of {} bytes", bytes.len())),
    }
}

/// `uuid`: 16 bytes → lowercase hyphenated.
pub(crate) fn uuid(bytes: &[u8]) -> Res<String> {
    match uuid::Uuid::from_slice(bytes) {
        Ok(u) => Ok(u.hyphenated().to_string()),
        Err(_) => malformed(format!("uuid of {} bytes", bytes.len())),
    }
}

const PGSQL_AF_INET: u8 = 2;
const PGSQL_AF_INET6: u8 = 3;

/// `inet`/`cidr`: `family, bits, is_cidr, nb` then `nb` address bytes. The prefix length is printed for `cidr`
/// always and for `inet` unless it covers the whole address (`192.168.0.1`, `192.168.0.1/24`, `10.0.0.0/8`).
pub(crate) fn inet(bytes: &[u8], cidr: bool) -> Res<String> {
    let mut r = Reader::new(bytes);
    let (family, bits, _is_cidr, nb) = (r.u8()?, r.u8()?, r.u8()?, r.u8()?);
    let addr = r.take(usize::from(nb))?;
    r.finish()?;
    let (text, max_bits) = match (family, addr) {
        (PGSQL_AF_INET, &[a, b, c, d]) => (Ipv4Addr::new(a, b, c, d).to_string(), 32),
        (PGSQL_AF_INET6, a) if a.len() == 16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(a);
            let v6 = Ipv6Addr::from(octets);
            // Like PostgreSQL (and unlike Rust), print IPv4-compatible addresses as `::1.2.3.4`.
            let compat = v6.segments()[..6].iter().all(|&w| w == 0) && v6.segments()[6] != 0;
            let text = if compat { format!("::{}", Ipv4Addr::new(a[12], a[13], a[14], a[15])) } else { v6.to_string() };
            (text, 128)
        }
        _ => return malformed(format!("network address of family {family} with {nb} bytes")),
    };
    if bits > max_bits {
        return malformed(format!("prefix length {bits} longer than the address"));
    }
    Ok(if cidr || bits != max_bits { format!("{text}/{bits}") } else { text })
}

/// `macaddr` (6 bytes) and `macaddr8` (8 bytes) → `08:00:2b:01:02:03`.
pub(crate) fn macaddr(bytes: &[u8], len: usize) -> Res<String> {
    if bytes.len() != len {
        return malformed(format!("MAC address of {} bytes, expected {len}", bytes.len()));
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
}

/// `money`: `int64` cents → the exact amount without currency symbol or grouping, e.g. `-1234.05`. (The text
/// form depends on `lc_monetary`; two fractional digits is the C and en_US locale.)
pub(crate) fn money(bytes: &[u8]) -> Res<String> {
    let mut r = Reader::new(bytes);
    let cents = r.i64()?;
    r.finish()?;
    let abs = cents.unsigned_abs();
    Ok(format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, abs / 100, abs % 100))
}

/// `bit`/`varbit`: `int32` bit count, then the bits packed from the high bit → `0101…`.
pub(crate) fn bits(bytes: &[u8]) -> Res<String> {
    let mut r = Reader::new(bytes);
    let n = r.i32()?;
    let packed = r.rest();
    if n < 0 || packed.len() != (n as usize).div_ceil(8) {
        return malformed(format!("bit string of {n} bits in {} bytes", packed.len()));
    }
    Ok((0..n as usize).map(|i| if packed[i / 8] & (0x80 >> (i % 8)) != 0 { '1' } else { '0' }).collect())
}

/// `pg_lsn`: `uint64` → `16/B374D848`.
pub(crate) fn pg_lsn(bytes: &[u8]) -> Res<String> {
    let mut r = Reader::new(bytes);
    let v = r.u64()?;
    r.finish()?;
    Ok(format!("{:X}/{:X}", v >> 32, v & 0xFFFF_FFFF))
}

/// `tid`: `uint32` block, `uint16` offset → `(0,1)`.
pub(crate) fn tid(bytes: &[u8]) -> Res<String> {
    let mut r = Reader::new(bytes);
    let (block, offset) = (r.u32()?, r.u16()?);
    r.finish()?;
    Ok(format!("({block},{offset})"))
}

/// The geometric types, printed as PostgreSQL does: `point` `(x,y)`, `lseg` `[(x1,y1),(x2,y2)]`, `box`
/// `(x1,y1),(x2,y2)`, `path` `((…))` when closed or `[(…)]` when open, `polygon` `((…))`, `line` `{A,B,C}`,
/// `circle` `<(x,y),r>`.
pub(crate) fn geometric(name: &str, bytes: &[u8]) -> Res<String> {
    let mut r = Reader::new(bytes);
    let mut out = String::new();
    match name {
        "point" => push_point(&mut r, &mut out)?,
        "lseg" => {
            out.push('[');
            push_points(&mut r, &mut out, 2)?;
            out.push(']');
        }
        "box" => push_points(&mut r, &mut out, 2)?,
        "line" => {
            let (a, b, c) = (r.f64()?, r.f64()?, r.f64()?);
            let _ = write!(out, "{{{},{},{}}}", float8_text(a), float8_text(b), float8_text(c));
        }
        "circle" => {
            out.push('<');
            push_point(&mut r, &mut out)?;
            let _ = write!(out, ",{}>", float8_text(r.f64()?));
        }
        "path" => {
            let closed = r.u8()? != 0;
            let n = count(&mut r, 16)?;
            out.push(if closed { '(' } else { '[' });
            push_points(&mut r, &mut out, n)?;
            out.push(if closed { ')' } else { ']' });
        }
        "polygon" => {
            let n = count(&mut r, 16)?;
            out.push('(');
            push_points(&mut r, &mut out, n)?;
            out.push(')');
        }
        other => return malformed(format!("`{other}` is not a geometric type")),
    }
    r.finish()?;
    Ok(out)
}

/// An `int32` element count, checked against the bytes left (each element takes `size` bytes).
fn count(r: &mut Reader<'_>, size: usize) -> Res<usize> {
    let n = r.i32()?;
    if n < 0 || (n as usize).saturating_mul(size) > r.remaining() {
        return malformed(format!("count {n} does not fit the {} bytes left", r.remaining()));
    }
    Ok(n as usize)
}

fn push_point(r: &mut Reader<'_>, out: &mut String) -> Res<()> {
    let (x, y) = (r.f64()?, r.f64()?);
    let _ = write!(out, "({},{})", float8_text(x), float8_text(y));
    Ok(())
}

fn push_points(r: &mut Reader<'_>, out: &mut String, n: usize) -> Res<()> {
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        push_point(r, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f64s(vals: &[f64]) -> Vec<u8> {
        vals.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    #[test]
    fn network_addresses() {
        assert_eq!(inet(&[2, 24, 0, 4, 192, 168, 0, 1], false).unwrap(), "192.168.0.1/24");
        assert_eq!(inet(&[2, 32, 0, 4, 10, 0, 0, 1], false).unwrap(), "10.0.0.1");
        assert_eq!(inet(&[2, 32, 1, 4, 10, 0, 0, 1], true).unwrap(), "10.0.0.1/32");
        let mut v6 = vec![3, 128, 0, 16];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        assert_eq!(inet(&v6, false).unwrap(), "::1");
        assert!(inet(&[2, 33, 0, 4, 10, 0, 0, 1], false).is_err());
        assert!(inet(&[2, 32, 0, 16, 10, 0, 0, 1], false).is_err());
        assert!(inet(&[9, 32, 0, 4, 10, 0, 0, 1], false).is_err());
        assert_eq!(macaddr(&[8, 0, 0x2b, 1, 2, 3], 6).unwrap(), "08:00:2b:01:02:03");
        assert!(macaddr(&[8, 0], 6).is_err());
    }

    #[test]
    fn small_fixed_layouts() {
        assert_eq!(money(&1234i64.to_be_bytes()).unwrap(), "12.34");
        assert_eq!(money(&(-5i64).to_be_bytes()).unwrap(), "-0.05");
        assert_eq!(money(&i64::MIN.to_be_bytes()).unwrap(), "-92233720368547758.08");
        assert_eq!(bits(&[0, 0, 0, 5, 0b1010_1000]).unwrap(), "10101");
        assert_eq!(bits(&[0, 0, 0, 0]).unwrap(), "");
        assert!(bits(&[0, 0, 0, 9, 0]).is_err());
        assert!(bits(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert_eq!(pg_lsn(&0x16_B374_D848u64.to_be_bytes()).unwrap(), "16/B374D848");
        assert_eq!(tid(&[0, 0, 0, 0, 0, 1]).unwrap(), "(0,1)");
        assert_eq!(char1(b"a").unwrap(), "a");
        assert_eq!(char1(&[0xe9]).unwrap(), "\\351");
        assert_eq!(bytea(&[0xde, 0xad, 0xbe, 0xef]), "\\xdeadbeef");
        assert!(uuid(&[0; 15]).is_err());
        assert!(utf8(&[0xff]).is_err());
        assert_eq!(versioned_text(b"\x01{}").unwrap(), "{}");
        assert!(versioned_text(b"\x02{}").is_err());
        assert!(versioned_text(b"").is_err());
    }

    #[test]
    fn geometry() {
        assert_eq!(geometric("point", &f64s(&[1.5, -2.0])).unwrap(), "(1.5,-2)");
        assert_eq!(geometric("lseg", &f64s(&[0.0, 0.0, 1.0, 1.0])).unwrap(), "[(0,0),(1,1)]");
        assert_eq!(geometric("circle", &f64s(&[0.0, 0.0, 2.0])).unwrap(), "<(0,0),2>");
        let mut path = vec![0u8, 0, 0, 0, 2];
        path.extend(f64s(&[0.0, 0.0, 1.0, 1e20]));
        assert_eq!(geometric("path", &path).unwrap(), "[(0,0),(1,1e+20)]");
        let mut bad = vec![0, 0x7f, 0xff, 0xff, 0xff];
        bad.extend(f64s(&[0.0, 0.0]));
        assert!(geometric("polygon", &bad).is_err());
        assert!(geometric("point", &f64s(&[1.0])).is_err());
    }
}
