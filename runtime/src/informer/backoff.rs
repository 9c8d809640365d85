//! Exponential backoff with jitter, as the reflector uses it between failed list/watch attempts.
//!
//! Same arithmetic as apimachinery's `wait.Backoff.DelayWithReset` at client-go HEAD
//! (`reflector.go` defaults): each delay is `d + rand[0,1) * jitter * d`, after which
//! `d = min(d * factor, cap)`; the state returns to the initial delay when more than
//! `reset_after` has passed since the last reset. The clock and the random draw can be injected
//! ([`Backoff::next_delay_at`]) so the arithmetic is testable without sleeping.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// Backoff parameters. `Default` is client-go's reflector backoff.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// First delay before jitter (client-go `defaultBackoffInit` = 800 ms).
    pub initial: Duration,
    /// Largest delay before jitter (`defaultBackoffMax` = 30 s).
    pub cap: Duration,
    /// Growth per step (2.0).
    pub factor: f64,
    /// Jitter fraction added on top (1.0: up to twice the delay).
    pub jitter: f64,
    /// Back to `initial` once this much time passed since the last reset (`defaultBackoffReset` = 2 min).
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(800),
            cap: Duration::from_secs(30),
            factor: 2.0,
            jitter: 1.0,
            reset_after: Duration::from_secs(120),
        }
    }
}

/// Backoff state shared by every retry path of one reflector.
#[derive(Debug)]
pub struct Backoff {
    config: BackoffConfig,
    /// The next delay before jitter.
    next: Duration,
    /// When the state was last reset.
    last_reset: Option<Instant>,
}

impl Backoff {
    /// Fresh state.
    pub fn new(config: BackoffConfig) -> Self {
        Self {
            next: config.initial,
            config,
            last_reset: None,
        }
    }

    /// The next delay to wait, with jitter; advances the state.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_at(Instant::now(), rand::rng().random::<f64>())
    }

    /// [`next_delay`](Self::next_delay) at time `now` with the random draw in `[0, 1)` supplied
    /// by the caller.
    pub fn next_delay_at(&mut self, now: Instant, unit_random: f64) -> Duration {
        match self.last_reset {
            Some(at) if now.duration_since(at) <= self.config.reset_after => {}
            _ => {
                self.next = self.config.initial;
                self.last_reset = Some(now);
            }
        }
        let base = self.next;
        let jittered = base.mul_f64(1.0 + unit_random.clamp(0.0, 1.0) * self.config.jitter);
        self.next = base.mul_f64(self.config.factor).min(self.config.cap);
        jittered
    }

    /// Forgets all failures; the next delay starts at `initial` again.
    pub fn reset(&mut self) {
        self.next = self.config.initial;
        self.last_reset = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_800ms_to_a_30s_cap_with_up_to_100_percent_jitter() {
        let t0 = Instant::now();
        let mut b = Backoff::new(BackoffConfig::default());
        let lows: Vec<u64> = (0..8)
            .map(|_| b.next_delay_at(t0, 0.0).as_millis() as u64)
            .collect();
        assert_eq!(
            lows,
            vec![800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        let mut b = Backoff::new(BackoffConfig::default());
        let high = b.next_delay_at(t0, 0.999_999);
        assert!(high < Duration::from_millis(1600) && high > Duration::from_millis(1599));
        for _ in 0..100 {
            let mut b = Backoff::new(BackoffConfig::default());
            let d = b.next_delay();
            assert!(
                d >= Duration::from_millis(800) && d < Duration::from_millis(1600),
                "{d:?}"
            );
        }
    }

    #[test]
    fn state_resets_when_more_than_two_minutes_passed_since_the_last_reset() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = Backoff::new(BackoffConfig::default());
        assert_eq!(b.next_delay_at(t0, 0.0), Duration::from_millis(800));
        assert_eq!(
            b.next_delay_at(t0 + s(60), 0.0),
            Duration::from_millis(1600)
        );
        // 121 s since the reset at the first call: back to the start, even though the last
        // failure was only 61 s ago (client-go HEAD's rule).
        assert_eq!(
            b.next_delay_at(t0 + s(121), 0.0),
            Duration::from_millis(800)
        );
        assert_eq!(
            b.next_delay_at(t0 + s(122), 0.0),
            Duration::from_millis(1600)
        );
        b.reset();
        assert_eq!(
            b.next_delay_at(t0 + s(123), 0.0),
            Duration::from_millis(800)
        );
    }
}
