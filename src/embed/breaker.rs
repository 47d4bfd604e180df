//! A circuit breaker for a remote embedding provider, so that a provider that is down costs callers nothing.
//!
//! Without it every semantic search would wait for timeouts and retries before failing. The breaker is
//! **closed** while calls succeed; after [`BreakerSettings::failure_threshold`] failed calls in a row it
//! **opens** and refuses calls at once for [`BreakerSettings::cool_down`]; then it lets exactly one probe call
//! through (**half-open**): its success closes the breaker, its failure opens it for another cool-down.
//!
//! Only failures that say the provider is unavailable count (no connection, timeouts, 429, 5xx): a refused API
//! key or a bad request means it answered. Outcomes of calls admitted before the breaker opened are ignored
//! while it is open; only the probe decides. Time is passed in, so the state machine is tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Failed calls in a row that open the breaker.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls before letting a probe through.
    pub cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self { failure_threshold: 5, cool_down: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
        failures: u32,
    },
    /// The cool-down is over and one probe call is on its way.
    HalfOpen {
        failures: u32,
    },
}

/// The breaker's state for operators (the values of `zava_embedding_circuit_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    Closed = 0,
    HalfOpen = 1,
    Open = 2,
}

impl Circuit {
    pub fn name(self) -> &'static str {
        match self {
            Circuit::Closed => "closed",
            Circuit::HalfOpen => "half_open",
            Circuit::Open => "open",
        }
    }
}

/// Why a call was refused without being tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Failed calls in a row that opened the breaker.
    pub failures: u32,
    /// When a call may be tried again (zero while a probe is under way).
    pub retry_in: Duration,
}

#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: Mutex<State>,
}

/// Permission to make one call. Report how it went with [`Ticket::succeeded`] or [`Ticket::failed`]; a ticket
/// dropped without a report (the caller went away) lets the next caller probe instead.
#[must_use = "report the outcome of the call"]
#[derive(Debug)]
pub struct Ticket<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self { settings, state: Mutex::new(State::Closed { failures: 0 }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value, valid whatever a panicking holder did: recover it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lets a call through, or refuses it while the breaker is open (or a probe is under way).
    pub fn admit(&self, now: Instant) -> Result<Ticket<'_>, Refusal> {
        let mut state = self.state();
        match *state {
            State::Closed { .. } => Ok(Ticket { breaker: self, probe: false, reported: false }),
            State::Open { until, failures } if now >= until => {
                *state = State::HalfOpen { failures };
                Ok(Ticket { breaker: self, probe: true, reported: false })
            }
            State::Open { until, failures } => Err(Refusal { failures, retry_in: until - now }),
            State::HalfOpen { failures } => Err(Refusal { failures, retry_in: Duration::ZERO }),
        }
    }

    /// The state as `/metrics` exports it: after its cool-down an open breaker lets the next call probe.
    pub fn circuit(&self, now: Instant) -> Circuit {
        match *self.state() {
            State::Closed { .. } => Circuit::Closed,
            State::Open { until, .. } if now < until => Circuit::Open,
            State::Open { .. } | State::HalfOpen { .. } => Circuit::HalfOpen,
        }
    }

    /// Whether calls are being refused right now (for logs and tests).
    pub fn is_open(&self, now: Instant) -> bool {
        match *self.state() {
            State::Closed { .. } => false,
            State::Open { until, .. } => now < until,
            State::HalfOpen { .. } => true,
        }
    }

    fn report(&self, probe: bool, outcome: Option<bool>, now: Instant) {
        let mut state = self.state();
        let open = |failures| State::Open { until: now + self.settings.cool_down, failures };
        *state = match (*state, outcome) {
            (State::Closed { .. }, Some(true)) => State::Closed { failures: 0 },
            (State::Closed { failures }, Some(false)) => {
                let failures = failures + 1;
                if failures >= self.settings.failure_threshold { open(failures) } else { State::Closed { failures } }
            }
            (State::HalfOpen { .. }, Some(true)) if probe => State::Closed { failures: 0 },
            (State::HalfOpen { failures }, Some(false)) if probe => open(failures + 1),
            // The probe's caller went away: the next caller probes instead.
            (State::HalfOpen { failures }, None) if probe => State::Open { until: now, failures },
            (unchanged, _) => unchanged,
        };
    }
}

impl Ticket<'_> {
    /// The provider answered.
    pub fn succeeded(mut self, now: Instant) {
        self.reported = true;
        self.breaker.report(self.probe, Some(true), now);
    }

    /// The provider was unavailable.
    pub fn failed(mut self, now: Instant) {
        self.reported = true;
        self.breaker.report(self.probe, Some(false), now);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.report(self.probe, None, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(10);

    fn breaker() -> Breaker {
        Breaker::new(BreakerSettings { failure_threshold: 3, cool_down: COOL_DOWN })
    }

    fn fail(b: &Breaker, now: Instant) {
        b.admit(now).expect("admitted").failed(now);
    }

    #[test]
    fn opens_after_the_threshold_of_failures_in_a_row() {
        let (b, t0) = (breaker(), Instant::now());
        fail(&b, t0);
        fail(&b, t0);
        assert!(!b.is_open(t0));
        fail(&b, t0);
        assert!(b.is_open(t0));
        let refusal = b.admit(t0 + Duration::from_secs(4)).unwrap_err();
        assert_eq!(refusal, Refusal { failures: 3, retry_in: Duration::from_secs(6) });
    }

    #[test]
    fn a_success_resets_the_count() {
        let (b, t0) = (breaker(), Instant::now());
        fail(&b, t0);
        fail(&b, t0);
        b.admit(t0).unwrap().succeeded(t0);
        fail(&b, t0);
        fail(&b, t0);
        assert!(!b.is_open(t0), "two failures after a success must not open it");
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_through_and_its_success_closes() {
        let (b, t0) = (breaker(), Instant::now());
        (0..3).for_each(|_| fail(&b, t0));
        let later = t0 + COOL_DOWN;
        let probe = b.admit(later).expect("the probe is admitted");
        assert_eq!(b.admit(later).unwrap_err().retry_in, Duration::ZERO, "only one probe at a time");
        probe.succeeded(later);
        assert!(!b.is_open(later));
        b.admit(later).unwrap().succeeded(later);
    }

    #[test]
    fn a_failed_probe_reopens_for_another_cool_down() {
        let (b, t0) = (breaker(), Instant::now());
        (0..3).for_each(|_| fail(&b, t0));
        let later = t0 + COOL_DOWN + Duration::from_secs(1);
        b.admit(later).unwrap().failed(later);
        let refusal = b.admit(later).unwrap_err();
        assert_eq!(refusal, Refusal { failures: 4, retry_in: COOL_DOWN });
        assert!(b.admit(later + COOL_DOWN).is_ok(), "a new probe after the new cool-down");
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_caller_probe() {
        let (b, t0) = (breaker(), Instant::now());
        (0..3).for_each(|_| fail(&b, t0));
        drop(b.admit(t0 + COOL_DOWN).unwrap());
        let next = b.admit(t0 + COOL_DOWN).expect("the next caller probes");
        next.succeeded(t0 + COOL_DOWN);
        assert!(!b.is_open(t0 + COOL_DOWN));
    }

    #[test]
    fn late_outcomes_of_calls_admitted_before_opening_are_ignored() {
        let (b, t0) = (breaker(), Instant::now());
        let slow = b.admit(t0).unwrap();
        (0..3).for_each(|_| fail(&b, t0));
        slow.succeeded(t0);
        assert!(b.is_open(t0), "only the probe decides");
        let abandoned = b.admit(t0).err();
        assert!(abandoned.is_some());
    }
}
