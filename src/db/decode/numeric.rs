//! Numbers: PostgreSQL's binary `numeric` decoded by hand into its exact decimal text, and the rules that turn
//! integers, floats and decimals into JSON without ever changing a value.
//!
//! JSON numbers are read by most consumers as IEEE doubles, and serde_json (without `arbitrary_precision`, which
//! would break rmcp) can only hold i64, u64 or f64. So a value becomes a JSON number only when the number we
//! print denotes exactly the value PostgreSQL holds; otherwise it becomes a string of its exact digits.

use serde_json::{Number, Value};

use super::reader::{Reader, Res, malformed};

/// 2^53: the largest magnitude below which every integer is exactly representable as an f64.
pub(crate) const MAX_SAFE_INTEGER: u64 = 1 << 53;

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// The exact text of a binary `numeric` (as PostgreSQL's `numeric_out` prints it): `dscale` digits after the
/// point, `NaN`, `Infinity` or `-Infinity`.
///
/// Wire format: `int16 ndigits, int16 weight, uint16 sign, int16 dscale`, then `ndigits` base-10000 digits
/// (`int16` each, 0..=9999); digit `k` is worth `10000^(weight - k)`.
pub(crate) fn numeric_text(bytes: &[u8]) -> Res<String> {
    let mut r = Reader::new(bytes);
    let ndigits = r.i16()?;
    let weight = r.i16()?;
    let sign = r.u16()?;
    let dscale = r.i16()?;
    let special = match sign {
        NUMERIC_NAN => Some("NaN"),
        NUMERIC_PINF => Some("Infinity"),
        NUMERIC_NINF => Some("-Infinity"),
        NUMERIC_POS | NUMERIC_NEG => None,
        other => return malformed(format!("numeric with unknown sign 0x{other:04X}")),
    };
    if let Some(s) = special {
        return Ok(s.to_owned());
    }
    if ndigits < 0 || dscale < 0 {
        return malformed(format!("numeric with ndigits {ndigits} and dscale {dscale}"));
    }
    let mut digits = Vec::with_capacity(ndigits as usize);
    for _ in 0..ndigits {
        let d = r.i16()?;
        if !(0..=9999).contains(&d) {
            return malformed(format!("numeric digit {d} out of range"));
        }
        digits.push(d);
    }
    r.finish()?;
    let digit = |k: i32| -> i16 { usize::try_from(k).ok().and_then(|k| digits.get(k).copied()).unwrap_or(0) };

    let weight = i32::from(weight);
    let dscale = dscale as usize;
    let mut out = String::with_capacity(4 * (weight.max(0) as usize + 1) + dscale + 2);
    if sign == NUMERIC_NEG {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        out.push_str(&digit(0).to_string());
        for k in 1..=weight {
            out.push_str(&format!("{:04}", digit(k)));
        }
    }
    if dscale > 0 {
        out.push('.');
        let start = out.len();
        let mut k = weight + 1;
        while out.len() - start < dscale {
            out.push_str(&format!("{:04}", digit(k)));
            k += 1;
        }
        out.truncate(start + dscale);
    }
    Ok(out)
}

/// A decimal string (numeric's text, or a JSON number token) as JSON.
///
/// The rule: an integer of magnitude at most 2^53 becomes a JSON integer. Anything else becomes a JSON number
/// only if parsing it as an f64 and printing that f64 the way serde_json does (ryu's shortest form) gives the same
/// numeric value, compared as normalised decimals (sign, significant digits, exponent; trailing fractional zeros
/// and a trailing point do not count). Otherwise, and for `NaN`/`Infinity`/`-Infinity`, the exact string is
/// kept. So `19.90` → `19.9`, `33.00` → `33.0`, `1e-10` → `1e-10`, but `12345678901234567890.123` →
/// `"12345678901234567890.123"` and `9007199254740993` → `"9007199254740993"`.
pub(crate) fn decimal_to_json(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return int_to_json(i);
    }
    if let Ok(f) = text.parse::<f64>()
        && let Some(n) = Number::from_f64(f)
        && same_decimal(&n.to_string(), text)
    {
        return Value::Number(n);
    }
    Value::String(text.to_owned())
}

/// A signed integer: a JSON number up to 2^53 in magnitude, beyond that a string of its exact digits.
pub(crate) fn int_to_json(v: i64) -> Value {
    if v.unsigned_abs() <= MAX_SAFE_INTEGER { Value::from(v) } else { Value::String(v.to_string()) }
}

/// An unsigned integer, by the same rule as [`int_to_json`].
pub(crate) fn uint_to_json(v: u64) -> Value {
    if v <= MAX_SAFE_INTEGER { Value::from(v) } else { Value::String(v.to_string()) }
}

/// A double: a JSON number when finite; `"NaN"`, `"Infinity"` or `"-Infinity"` otherwise (JSON has no such
/// numbers).
pub(crate) fn float_to_json(v: f64) -> Value {
    match Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None => Value::String(non_finite(v).to_owned()),
    }
}

/// A real: widened through its shortest decimal text, so `0.1::real` gives `0.1`, not `0.10000000149011612`.
pub(crate) fn float4_to_json(v: f32) -> Value {
    if !v.is_finite() {
        return Value::String(non_finite(f64::from(v)).to_owned());
    }
    float_to_json(v.to_string().parse::<f64>().unwrap_or(f64::from(v)))
}

fn non_finite(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// A float as PostgreSQL prints it (`float8out`/`float4out` since PostgreSQL 12): the shortest exact digits, in
/// fixed notation when the decimal exponent is in `-4..max_fixed_exp` (15 for double, 6 for real), else like
/// `1e+20` or `1.5e-05`.
pub(crate) fn pg_float_text(display: String, scientific: &str, max_fixed_exp: i32) -> String {
    match scientific.split_once('e').and_then(|(m, e)| Some((m, e.parse::<i32>().ok()?))) {
        Some((mantissa, exp)) if !(-4..max_fixed_exp).contains(&exp) => {
            format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs())
        }
        _ => display,
    }
}

/// A double in PostgreSQL's text form.
pub(crate) fn float8_text(v: f64) -> String {
    if !v.is_finite() {
        return non_finite(v).to_owned();
    }
    pg_float_text(v.to_string(), &format!("{v:e}"), 15)
}

/// A real in PostgreSQL's text form.
pub(crate) fn float4_text(v: f32) -> String {
    if !v.is_finite() {
        return non_finite(f64::from(v)).to_owned();
    }
    pg_float_text(v.to_string(), &format!("{v:e}"), 6)
}

/// Whether two decimal strings (optionally with an exponent) denote the same number.
pub(crate) fn same_decimal(a: &str, b: &str) -> bool {
    matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
}

/// `(negative, significant digits, exponent)` with no leading or trailing zeros; zero is `(false, "", 0)`.
fn canonical(s: &str) -> Option<(bool, String, i64)> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let all: String = format!("{int}{frac}");
    let trimmed = all.trim_end_matches('0');
    let exp = exp.checked_sub(frac.len() as i64)?.checked_add((all.len() - trimmed.len()) as i64)?;
    let digits = trimmed.trim_start_matches('0');
    if digits.is_empty() {
        return Some((false, String::new(), 0));
    }
    Some((neg, digits.to_owned(), exp))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Builds numeric's binary form.
    fn bin(weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(digits.len() as i16).to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&sign.to_be_bytes());
        v.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    fn text(weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> String {
        numeric_text(&bin(weight, sign, dscale, digits)).unwrap()
    }

    #[test]
    fn numeric_zero_and_small_values() {
        assert_eq!(text(0, NUMERIC_POS, 0, &[]), "0");
        assert_eq!(text(0, NUMERIC_POS, 2, &[]), "0.00");
        assert_eq!(text(-1, NUMERIC_NEG, 1, &[5000]), "-0.5");
        assert_eq!(text(-3, NUMERIC_POS, 10, &[100]), "0.0000000001");
        assert_eq!(text(0, NUMERIC_POS, 2, &[19, 9000]), "19.90");
        assert_eq!(text(0, NUMERIC_POS, 3, &[1, 5000]), "1.500");
        assert_eq!(text(0, NUMERIC_POS, 0, &[7]), "7");
    }

    #[test]
    fn numeric_large_exact_values() {
        // 123456789012345678901234567890.123456789
        let digits = [12, 3456, 7890, 1234, 5678, 9012, 3456, 7890, 1234, 5678, 9000];
        assert_eq!(text(7, NUMERIC_POS, 9, &digits), "123456789012345678901234567890.123456789");
        // 10^20 stored with trailing zero digits stripped.
        assert_eq!(text(5, NUMERIC_POS, 0, &[1]), "100000000000000000000");
        assert_eq!(text(1, NUMERIC_NEG, 0, &[1, 0]), "-10000");
    }

    #[test]
    fn numeric_specials() {
        assert_eq!(text(0, NUMERIC_NAN, 0, &[]), "NaN");
        assert_eq!(text(0, NUMERIC_PINF, 0, &[]), "Infinity");
        assert_eq!(text(0, NUMERIC_NINF, 0, &[]), "-Infinity");
    }

    #[test]
    fn numeric_rejects_malformed_bytes() {
        assert!(numeric_text(&[]).is_err());
        assert!(numeric_text(&[0, 1, 0, 0, 0, 0, 0, 0]).is_err(), "missing digit");
        assert!(numeric_text(&bin(0, NUMERIC_POS, 0, &[10000])).is_err(), "digit out of range");
        assert!(numeric_text(&bin(0, NUMERIC_POS, 0, &[-1])).is_err(), "negative digit");
        assert!(numeric_text(&bin(0, 0x1234, 0, &[1])).is_err(), "bad sign");
        assert!(numeric_text(&bin(0, NUMERIC_POS, -1, &[1])).is_err(), "negative dscale");
        let mut extra = bin(0, NUMERIC_POS, 0, &[1]);
        extra.push(0);
        assert!(numeric_text(&extra).is_err(), "trailing bytes");
        assert!(numeric_text(&[0xff, 0xff, 0, 0, 0, 0, 0, 0]).is_err(), "negative ndigits");
    }

    #[test]
    fn decimals_become_numbers_only_when_exact() {
        assert_eq!(decimal_to_json("0"), json!(0));
        assert_eq!(decimal_to_json("-0.5"), json!(-0.5));
        assert_eq!(decimal_to_json("19.90"), json!(19.9));
        assert_eq!(decimal_to_json("33.00").to_string(), "33.0");
        assert_eq!(decimal_to_json("1.500"), json!(1.5));
        assert_eq!(decimal_to_json("0.0000000001").to_string(), "1e-10");
        assert_eq!(decimal_to_json("9007199254740992"), json!(9007199254740992_i64));
        assert_eq!(decimal_to_json("9007199254740993"), json!("9007199254740993"));
        assert_eq!(decimal_to_json("-9007199254740993"), json!("-9007199254740993"));
        assert_eq!(decimal_to_json("100000000000000000000").to_string(), "1e+20");
        assert_eq!(decimal_to_json("12345678901234567890.123"), json!("12345678901234567890.123"));
        assert_eq!(
            decimal_to_json("123456789012345678901234567890.123456789"),
            json!("123456789012345678901234567890.123456789")
        );
        assert_eq!(
            decimal_to_json("0.1000000000000000055511151231257827"),
            json!("0.1000000000000000055511151231257827")
        );
        assert_eq!(decimal_to_json("NaN"), json!("NaN"));
        assert_eq!(decimal_to_json("Infinity"), json!("Infinity"));
        assert_eq!(decimal_to_json("-Infinity"), json!("-Infinity"));
    }

    #[test]
    fn canonical_forms_compare_values_not_spelling() {
        assert!(same_decimal("33.0", "33.00"));
        assert!(same_decimal("1e20", "100000000000000000000"));
        assert!(same_decimal("1.5e-7", "0.00000015"));
        assert!(same_decimal("0", "-0.000"));
        assert!(!same_decimal("1.5", "-1.5"));
        assert!(!same_decimal("1.2345678901234568e29", "123456789012345678901234567890"));
        assert!(!same_decimal("abc", "abc"));
        assert!(!same_decimal("", ""));
    }

    #[test]
    fn integers_floats_and_their_limits() {
        assert_eq!(int_to_json(9007199254740992), json!(9007199254740992_i64));
        assert_eq!(int_to_json(-9007199254740992), json!(-9007199254740992_i64));
        assert_eq!(int_to_json(9007199254740993), json!("9007199254740993"));
        assert_eq!(int_to_json(i64::MIN), json!("-9223372036854775808"));
        assert_eq!(uint_to_json(u64::MAX), json!("18446744073709551615"));
        assert_eq!(float_to_json(f64::NAN), json!("NaN"));
        assert_eq!(float_to_json(f64::INFINITY), json!("Infinity"));
        assert_eq!(float_to_json(f64::NEG_INFINITY), json!("-Infinity"));
        assert_eq!(float4_to_json(0.1), json!(0.1));
        assert_eq!(float4_to_json(f32::NEG_INFINITY), json!("-Infinity"));
    }

    #[test]
    fn floats_print_like_postgres() {
        assert_eq!(float8_text(1.5), "1.5");
        assert_eq!(float8_text(0.0001), "0.0001");
        assert_eq!(float8_text(0.00001), "1e-05");
        assert_eq!(float8_text(1e20), "1e+20");
        assert_eq!(float8_text(-1.25e100), "-1.25e+100");
        assert_eq!(float8_text(123456789012345.0), "123456789012345");
        assert_eq!(float8_text(1e15), "1e+15");
        assert_eq!(float8_text(0.0), "0");
        assert_eq!(float8_text(-0.0), "-0");
        assert_eq!(float8_text(f64::NAN), "NaN");
        assert_eq!(float4_text(123456.0), "123456");
        assert_eq!(float4_text(1e6), "1e+06");
        assert_eq!(float4_text(0.1), "0.1");
    }
}
