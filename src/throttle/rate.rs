//! A rate as `300/min`, and the generic cell rate algorithm (GCRA) that enforces it.
//!
//! GCRA is a token bucket kept as one number per caller: the *theoretical arrival time* (TAT) of its next call.
//! Each call moves the TAT on by the emission interval (period / calls); a call is allowed while the TAT stays
//! within one period of now, so a caller may burst a whole period's calls and then continues at the rate. The
//! same arithmetic runs in process ([`MemoryCells`]) and, for replicas sharing limits, inside Redis
//! (`throttle::redis`).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `calls` per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub calls: u32,
    pub period: Duration,
}

impl RateLimit {
    /// The time one call uses up of the budget.
    pub fn interval(&self) -> Duration {
        self.period / self.calls
    }
}

impl FromStr for RateLimit {
    type Err = String;

    /// `N/s`, `N/min` or `N/h` (also `sec`, `second`, `m`, `minute`, `hour`), N from 1 to 1,000,000.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a rate: write calls per unit, such as 300/min, 10/s or 5000/h");
        let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let calls: u32 = n.trim().parse().map_err(|_| bad())?;
        if !(1..=1_000_000).contains(&calls) {
            return Err(format!("`{s}`: the number of calls must be from 1 to 1000000"));
        }
        let period = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Self { calls, period })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.calls)
    }
}

/// One GCRA step: given the stored TAT (`None`: a caller with no recent calls) and now, both as offsets on one
/// clock, the TAT to store if the call is allowed, or how long to wait before one would be.
pub(crate) fn step(limit: RateLimit, tat: Option<Duration>, now: Duration) -> Result<Duration, Duration> {
    let next = tat.unwrap_or(now).max(now) + limit.interval();
    if next - now > limit.period { Err(next - now - limit.period) } else { Ok(next) }
}

/// Every caller's TAT in this process. Entries whose TAT has passed mean the same as no entry, so they are
/// swept once the map grows: its size is bounded by the callers of the last period.
pub(crate) struct MemoryCells {
    epoch: Instant,
    cells: Mutex<HashMap<String, Duration>>,
}

const SWEEP_ABOVE: usize = 4096;

impl MemoryCells {
    pub fn new() -> Self {
        Self { epoch: Instant::now(), cells: Mutex::default() }
    }

    /// Takes one call from `key`'s budget, or says how long until one is available.
    pub fn take(&self, key: &str, limit: RateLimit) -> Result<(), Duration> {
        let now = self.epoch.elapsed();
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        if cells.len() > SWEEP_ABOVE {
            cells.retain(|_, tat| *tat > now);
        }
        let next = step(limit, cells.get(key).copied(), now)?;
        cells.insert(key.to_owned(), next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        let r: RateLimit = "300/min".parse().unwrap();
        assert_eq!((r.calls, r.period, r.interval()), (300, Duration::from_secs(60), Duration::from_millis(200)));
        assert_eq!(r.to_string(), "300/min");
        assert_eq!("10 / S".parse::<RateLimit>().unwrap().to_string(), "10/s");
        assert_eq!("5000/hour".parse::<RateLimit>().unwrap().to_string(), "5000/h");
        for bad in ["300", "0/min", "x/min", "300/day", "-1/s", "2000000/s"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_burst_of_one_period_then_the_rate() {
        let limit = RateLimit { calls: 3, period: Duration::from_secs(3) };
        let mut tat = None;
        let now = Duration::from_secs(100);
        for _ in 0..3 {
            tat = Some(step(limit, tat, now).unwrap());
        }
        let wait = step(limit, tat, now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1), "the fourth call waits one interval");
        assert!(step(limit, tat, now + wait).is_ok(), "and then goes through");
        // A caller idle for long starts again with a full burst.
        assert!(step(limit, tat, now + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn memory_cells_keep_callers_apart() {
        let cells = MemoryCells::new();
        let limit = RateLimit { calls: 2, period: Duration::from_secs(60) };
        assert!(cells.take("a", limit).is_ok() && cells.take("a", limit).is_ok());
        let wait = cells.take("a", limit).unwrap_err();
        assert!(wait > Duration::from_secs(29) && wait <= Duration::from_secs(30), "{wait:?}");
        assert!(cells.take("b", limit).is_ok(), "another caller has its own budget");
    }
}
