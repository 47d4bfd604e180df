//! Dates, times, timestamps and intervals from their binary form into ISO 8601 text.
//!
//! Decoded by hand rather than through chrono so that every value PostgreSQL can hold has a rendering:
//! `infinity`/`-infinity`, years beyond 9999 and years before 1 AD (astronomical numbering: 1 BC is year 0000,
//! written with a sign outside 0000..=9999, e.g. `-0044-03-15`, `+10000-01-01`). Fractional seconds are printed
//! with their trailing zeros removed, as PostgreSQL does (`10:00:00.5`).

use std::fmt::Write;

use super::reader::{Reader, Res, malformed};

const USECS_PER_SEC: i64 = 1_000_000;
const USECS_PER_MINUTE: i64 = 60 * USECS_PER_SEC;
const USECS_PER_HOUR: i64 = 60 * USECS_PER_MINUTE;
const USECS_PER_DAY: i64 = 24 * USECS_PER_HOUR;
/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_UNIX_DAYS: i64 = 10_957;

/// `date`: `int32` days since 2000-01-01 → `YYYY-MM-DD`.
pub(crate) fn date(bytes: &[u8]) -> Res<String> {
    let mut r = Reader::new(bytes);
    let days = r.i32()?;
    r.finish()?;
    Ok(match days {
        i32::MAX => "infinity".to_owned(),
        i32::MIN => "-infinity".to_owned(),
        d => ymd(i64::from(d)),
    })
}

/// `timestamp` (no zone, `YYYY-MM-DDTHH:MM:SS[.ffffff]`) or `timestamptz` (in UTC, with a trailing `Z`):
/// `int64` microseconds since 2000-01-01 00:00:00.
pub(crate) fn timestamp(bytes: &[u8], utc: bool) -> Res<String> {
    let mut r = Reader::new(bytes);
    let micros = r.i64()?;
    r.finish()?;
    Ok(match micros {
        i64::MAX => "infinity".to_owned(),
        i64::MIN => "-infinity".to_owned(),
        m => {
            let mut s = ymd(m.div_euclid(USECS_PER_DAY));
            s.push('T');
            s.push_str(&clock(m.rem_euclid(USECS_PER_DAY)));
            if utc {
                s.push('Z');
            }
            s
        }
    })
}

/// `time`: `int64` microseconds since midnight → `HH:MM:SS[.ffffff]` (`24:00:00` is a valid time).
pub(crate) fn time(bytes: &[u8]) -> Res<String> {
    let mut r = Reader::new(bytes);
    let micros = r.i64()?;
    r.finish()?;
    checked_clock(micros)
}

/// `timetz`: `int64` microseconds since midnight, then `int32` zone offset in seconds *west* of UTC →
/// `HH:MM:SS[.ffffff]+HH:MM[:SS]`.
pub(crate) fn timetz(bytes: &[u8]) -> Res<String> {
    let mut r = Reader::new(bytes);
    let micros = r.i64()?;
    let west = r.i32()?;
    r.finish()?;
    let mut s = checked_clock(micros)?;
    let east = -i64::from(west);
    if east.abs() > 16 * 3600 {
        return malformed(format!("time zone offset {west} s out of range"));
    }
    let abs = east.abs();
    let _ = write!(s, "{}{:02}:{:02}", if east < 0 { '-' } else { '+' }, abs / 3600, abs % 3600 / 60);
    if abs % 60 != 0 {
        let _ = write!(s, ":{:02}", abs % 60);
    }
    Ok(s)
}

/// `interval`: `int64` microseconds, `int32` days, `int32` months → an ISO 8601 duration, exactly as
/// PostgreSQL's `IntervalStyle = iso_8601` prints it: years and months from the months, days, then hours,
/// minutes and seconds from the microseconds, each with its own sign (`P1Y2M3DT4H5M6.5S`, `P-1M3D`,
/// `PT-1H-30M`); zero is `PT0S`. A month is not a fixed number of days, so the parts are never merged.
pub(crate) fn interval(bytes: &[u8]) -> Res<String> {
    let mut r = Reader::new(bytes);
    let micros = r.i64()?;
    let days = r.i32()?;
    let months = r.i32()?;
    r.finish()?;
    // PostgreSQL 17 adds infinite intervals, encoded with every field at its extreme.
    if (micros, days, months) == (i64::MAX, i32::MAX, i32::MAX) {
        return Ok("infinity".to_owned());
    }
    if (micros, days, months) == (i64::MIN, i32::MIN, i32::MIN) {
        return Ok("-infinity".to_owned());
    }
    let (years, months) = (months / 12, months % 12);
    let hours = micros / USECS_PER_HOUR;
    let minutes = micros % USECS_PER_HOUR / USECS_PER_MINUTE;
    let secs = micros % USECS_PER_MINUTE / USECS_PER_SEC;
    let fsec = micros % USECS_PER_SEC;
    if years == 0 && months == 0 && days == 0 && micros == 0 {
        return Ok("PT0S".to_owned());
    }
    let mut s = String::from("P");
    for (v, unit) in [(i64::from(years), 'Y'), (i64::from(months), 'M'), (i64::from(days), 'D')] {
        if v != 0 {
            let _ = write!(s, "{v}{unit}");
        }
    }
    if micros != 0 {
        s.push('T');
        for (v, unit) in [(hours, 'H'), (minutes, 'M')] {
            if v != 0 {
                let _ = write!(s, "{v}{unit}");
            }
        }
        if secs != 0 || fsec != 0 {
            if secs < 0 || fsec < 0 {
                s.push('-');
            }
            let _ = write!(s, "{}{}S", secs.abs(), fraction(fsec.abs()));
        }
    }
    Ok(s)
}

fn checked_clock(micros: i64) -> Res<String> {
    if !(0..=USECS_PER_DAY).contains(&micros) {
        return malformed(format!("time of day {micros} µs out of range"));
    }
    Ok(clock(micros))
}

/// `HH:MM:SS[.ffffff]` for 0 ≤ `micros` ≤ 24 h.
fn clock(micros: i64) -> String {
    let h = micros / USECS_PER_HOUR;
    let m = micros % USECS_PER_HOUR / USECS_PER_MINUTE;
    let s = micros % USECS_PER_MINUTE / USECS_PER_SEC;
    format!("{h:02}:{m:02}:{s:02}{}", fraction(micros % USECS_PER_SEC))
}

/// `.ffffff` without trailing zeros, or nothing for whole seconds.
fn fraction(micros: i64) -> String {
    if micros == 0 {
        return String::new();
    }
    let digits = format!("{micros:06}");
    format!(".{}", digits.trim_end_matches('0'))
}

/// `YYYY-MM-DD` for a day count relative to 2000-01-01.
fn ymd(pg_days: i64) -> String {
    let (y, m, d) = civil_from_days(pg_days + PG_EPOCH_UNIX_DAYS);
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y > 9999 {
        format!("+{y}")
    } else {
        format!("-{:04}", y.unsigned_abs())
    };
    format!("{year}-{m:02}-{d:02}")
}

/// Proleptic Gregorian (year, month, day) from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(micros: i64, days: i32, months: i32) -> String {
        let mut b = micros.to_be_bytes().to_vec();
        b.extend_from_slice(&days.to_be_bytes());
        b.extend_from_slice(&months.to_be_bytes());
        interval(&b).unwrap()
    }

    #[test]
    fn dates_across_the_whole_range() {
        assert_eq!(date(&0i32.to_be_bytes()).unwrap(), "2000-01-01");
        assert_eq!(date(&(-1i32).to_be_bytes()).unwrap(), "1999-12-31");
        assert_eq!(date(&59i32.to_be_bytes()).unwrap(), "2000-02-29");
        assert_eq!(date(&i32::MAX.to_be_bytes()).unwrap(), "infinity");
        assert_eq!(date(&i32::MIN.to_be_bytes()).unwrap(), "-infinity");
        // PostgreSQL's limits: 4714-11-24 BC (Julian day 0) and 5874897-12-31.
        assert_eq!(date(&(-2_451_545i32).to_be_bytes()).unwrap(), "-4713-11-24");
        assert_eq!(date(&2_145_031_948i32.to_be_bytes()).unwrap(), "+5874897-12-31");
        assert!(date(&[0, 0]).is_err());
    }

    #[test]
    fn timestamps_and_times() {
        let ts = |m: i64, utc| timestamp(&m.to_be_bytes(), utc).unwrap();
        assert_eq!(ts(0, false), "2000-01-01T00:00:00");
        assert_eq!(ts(-1, true), "1999-12-31T23:59:59.999999Z");
        assert_eq!(ts(86_400_000_000 + 3_723_500_000, true), "2000-01-02T01:02:03.5Z");
        assert_eq!(ts(i64::MAX, true), "infinity");
        assert_eq!(ts(i64::MIN, false), "-infinity");
        assert_eq!(time(&45_296_000_001i64.to_be_bytes()).unwrap(), "12:34:56.000001");
        assert_eq!(time(&USECS_PER_DAY.to_be_bytes()).unwrap(), "24:00:00");
        assert!(time(&(-1i64).to_be_bytes()).is_err());
        let tz = |m: i64, west: i32| {
            let mut b = m.to_be_bytes().to_vec();
            b.extend_from_slice(&west.to_be_bytes());
            timetz(&b)
        };
        assert_eq!(tz(3_600_000_000, -7200).unwrap(), "01:00:00+02:00");
        assert_eq!(tz(0, 19_800 + 1).unwrap(), "00:00:00-05:30:01");
        assert_eq!(tz(0, 0).unwrap(), "00:00:00+00:00");
        assert!(tz(0, 100_000).is_err());
    }

    #[test]
    fn intervals_are_iso_8601_durations() {
        assert_eq!(iv(0, 0, 0), "PT0S");
        assert_eq!(iv(4 * USECS_PER_HOUR + 5 * USECS_PER_MINUTE + 6_500_000, 3, 14), "P1Y2M3DT4H5M6.5S");
        assert_eq!(iv(0, 3, -1), "P-1M3D");
        assert_eq!(iv(-(USECS_PER_HOUR + 30 * USECS_PER_MINUTE), 0, 0), "PT-1H-30M");
        assert_eq!(iv(-500_000, 0, 0), "PT-0.5S");
        assert_eq!(iv(USECS_PER_DAY * 2, 0, 0), "PT48H");
        assert_eq!(iv(0, 0, 24), "P2Y");
        assert_eq!(iv(i64::MAX, i32::MAX, i32::MAX), "infinity");
        assert!(interval(&[0; 15]).is_err());
    }
}
