//! Time as the controllers see it: the system clock, or a faster one so tests run a day of
//! CronJob schedule in seconds (upstream's controllers take a `clock.Clock` for the same
//! reason).

use std::fmt::Debug;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

/// A source of "now" and a conversion of waits into real time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// How long to really wait for `span` of this clock's time to pass.
    fn real(&self, span: SignedDuration) -> Duration;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn real(&self, span: SignedDuration) -> Duration {
        Duration::try_from(span).unwrap_or(Duration::ZERO)
    }
}

/// A clock that starts at a given time and runs `factor` times faster than real time.
#[derive(Clone, Copy, Debug)]
pub struct FastClock {
    start: Timestamp,
    since: Instant,
    factor: f64,
}

impl FastClock {
    /// Starts at `start`, advancing `factor` seconds per real second.
    pub fn new(start: Timestamp, factor: f64) -> Self {
        FastClock {
            start,
            since: Instant::now(),
            factor,
        }
    }
}

impl Clock for FastClock {
    fn now(&self) -> Timestamp {
        let elapsed = self.since.elapsed().as_secs_f64() * self.factor;
        self.start + SignedDuration::from_secs_f64(elapsed)
    }

    fn real(&self, span: SignedDuration) -> Duration {
        Duration::from_secs_f64((span.as_secs_f64() / self.factor).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_clock_runs_an_hour_in_a_second_and_scales_waits_back() {
        let clock = FastClock::new(Timestamp::UNIX_EPOCH, 3600.0);
        assert_eq!(
            clock.real(SignedDuration::from_hours(1)),
            Duration::from_secs(1)
        );
        std::thread::sleep(Duration::from_millis(10));
        let advanced = clock.now().duration_since(Timestamp::UNIX_EPOCH).as_secs();
        assert!(advanced >= 36, "{advanced}");
    }
}
