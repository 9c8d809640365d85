//! Rate limiters deciding how long a failed item waits before its next try (client-go
//! `util/workqueue/default_rate_limiters.go`).

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Decides the delay of a rate-limited re-add, per item.
pub trait RateLimiter<T>: Send + Sync {
    /// The delay before `item` may be processed again; records one more failure of `item`.
    fn when(&self, item: &T) -> Duration;
    /// Stops tracking `item` (call after it succeeded), resetting its backoff.
    fn forget(&self, item: &T);
    /// How many times `item` has been rate-limited since it was last forgotten.
    fn num_requeues(&self, item: &T) -> u32;
}

/// Per-item exponential backoff: `base * 2^failures`, capped at `max`.
pub struct ItemExponential<T> {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<T, u32>>,
}

impl<T> fmt::Debug for ItemExponential<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemExponential")
            .field("base", &self.base)
            .field("max", &self.max)
            .finish()
    }
}

impl<T> ItemExponential<T> {
    /// Backoff starting at `base`, doubling on each failure, never above `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Hash + Eq + Clone + Send + Sync> RateLimiter<T> for ItemExponential<T> {
    fn when(&self, item: &T) -> Duration {
        let mut failures = self.failures.lock();
        let entry = failures.entry(item.clone()).or_insert(0);
        let exp = *entry;
        *entry = entry.saturating_add(1);
        2u32.checked_pow(exp)
            .and_then(|factor| self.base.checked_mul(factor))
            .map_or(self.max, |d| d.min(self.max))
    }

    fn forget(&self, item: &T) {
        self.failures.lock().remove(item);
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.failures.lock().get(item).copied().unwrap_or(0)
    }
}

/// `fast` for the first `max_fast` failures of an item, `slow` after that.
pub struct FastSlow<T> {
    fast: Duration,
    slow: Duration,
    max_fast: u32,
    failures: Mutex<HashMap<T, u32>>,
}

impl<T> fmt::Debug for FastSlow<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastSlow")
            .field("fast", &self.fast)
            .field("slow", &self.slow)
            .field("max_fast", &self.max_fast)
            .finish()
    }
}

impl<T> FastSlow<T> {
    /// `fast` while an item has failed at most `max_fast` times, then `slow`.
    pub fn new(fast: Duration, slow: Duration, max_fast: u32) -> Self {
        Self {
            fast,
            slow,
            max_fast,
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Hash + Eq + Clone + Send + Sync> RateLimiter<T> for FastSlow<T> {
    fn when(&self, item: &T) -> Duration {
        let mut failures = self.failures.lock();
        let entry = failures.entry(item.clone()).or_insert(0);
        *entry = entry.saturating_add(1);
        if *entry <= self.max_fast {
            self.fast
        } else {
            self.slow
        }
    }

    fn forget(&self, item: &T) {
        self.failures.lock().remove(item);
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.failures.lock().get(item).copied().unwrap_or(0)
    }
}

/// An overall token bucket (`qps` refill, `burst` capacity), shared by all items: bounds the
/// retry rate of the whole queue. Like `rate.Limiter.Reserve().Delay()`, every call reserves a
/// token, possibly in the future.
#[derive(Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    /// Tokens available at `last`; negative when tokens have been reserved ahead.
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `qps` per second.
    pub fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            qps: qps.max(f64::MIN_POSITIVE),
            burst,
            state: Mutex::new(BucketState {
                tokens: burst,
                last: Instant::now(),
            }),
        }
    }
}

impl TokenBucket {
    /// Reserves one token at `now`; the wait until it is available.
    fn reserve_at(&self, now: Instant) -> Duration {
        let mut state = self.state.lock();
        let elapsed = now.saturating_duration_since(state.last).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.qps).min(self.burst);
        state.last = now;
        state.tokens -= 1.0;
        if state.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-state.tokens / self.qps)
        }
    }
}

impl<T> RateLimiter<T> for TokenBucket {
    fn when(&self, _item: &T) -> Duration {
        self.reserve_at(Instant::now())
    }

    fn forget(&self, _item: &T) {}

    fn num_requeues(&self, _item: &T) -> u32 {
        0
    }
}

/// The maximum of several limiters; every limiter sees every call.
pub struct MaxOf<T> {
    limiters: Vec<Box<dyn RateLimiter<T>>>,
}

impl<T> fmt::Debug for MaxOf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaxOf")
            .field("limiters", &self.limiters.len())
            .finish()
    }
}

impl<T> MaxOf<T> {
    /// Combines `limiters`; the longest delay wins.
    pub fn new(limiters: Vec<Box<dyn RateLimiter<T>>>) -> Self {
        Self { limiters }
    }
}

impl<T> RateLimiter<T> for MaxOf<T> {
    fn when(&self, item: &T) -> Duration {
        self.limiters
            .iter()
            .map(|l| l.when(item))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    fn forget(&self, item: &T) {
        for limiter in &self.limiters {
            limiter.forget(item);
        }
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.limiters
            .iter()
            .map(|l| l.num_requeues(item))
            .max()
            .unwrap_or(0)
    }
}

/// client-go's `DefaultControllerRateLimiter`: per-item exponential 5 ms → 1000 s, and an overall
/// bucket of 10 qps with a burst of 100.
pub fn default_controller_rate_limiter<T>() -> MaxOf<T>
where
    T: Hash + Eq + Clone + Send + Sync + 'static,
{
    MaxOf::new(vec![
        Box::new(ItemExponential::new(
            Duration::from_millis(5),
            Duration::from_secs(1000),
        )),
        Box::new(TokenBucket::new(10.0, 100)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_from_base_and_caps_at_max() {
        let limiter = ItemExponential::new(Duration::from_millis(5), Duration::from_secs(1000));
        let delays: Vec<_> = (0..5).map(|_| limiter.when(&"a")).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(delays, vec![ms(5), ms(10), ms(20), ms(40), ms(80)]);
        assert_eq!(limiter.num_requeues(&"a"), 5);
        assert_eq!(limiter.when(&"b"), ms(5), "items back off independently");
        for _ in 0..100 {
            limiter.when(&"a");
        }
        assert_eq!(
            limiter.when(&"a"),
            Duration::from_secs(1000),
            "capped, no overflow"
        );
        limiter.forget(&"a");
        assert_eq!(limiter.num_requeues(&"a"), 0);
        assert_eq!(limiter.when(&"a"), ms(5), "forget resets the backoff");
    }

    #[test]
    fn fast_slow_switches_after_max_fast_attempts() {
        let limiter = FastSlow::new(Duration::from_millis(5), Duration::from_secs(10), 3);
        let delays: Vec<_> = (0..5).map(|_| limiter.when(&1)).collect();
        let fast = Duration::from_millis(5);
        let slow = Duration::from_secs(10);
        assert_eq!(delays, vec![fast, fast, fast, slow, slow]);
        limiter.forget(&1);
        assert_eq!(limiter.when(&1), fast);
    }

    #[test]
    fn bucket_allows_burst_then_spaces_by_rate() {
        let bucket = TokenBucket::new(10.0, 100);
        let t0 = bucket.state.lock().last;
        for _ in 0..100 {
            assert_eq!(bucket.reserve_at(t0), Duration::ZERO);
        }
        let next = bucket.reserve_at(t0);
        assert!((next.as_secs_f64() - 0.1).abs() < 1e-9, "{next:?}");
        let after = bucket.reserve_at(t0);
        assert!((after.as_secs_f64() - 0.2).abs() < 1e-9, "{after:?}");
        // One second later 10 tokens came back, 2 of which were reserved ahead.
        let t1 = t0 + Duration::from_secs(1);
        for _ in 0..8 {
            assert_eq!(bucket.reserve_at(t1), Duration::ZERO);
        }
        assert!(bucket.reserve_at(t1) > Duration::ZERO);
    }

    #[test]
    fn max_of_default_takes_the_longest_delay() {
        let limiter = default_controller_rate_limiter::<String>();
        let x = "x".to_owned();
        assert_eq!(limiter.when(&x), Duration::from_millis(5));
        assert_eq!(limiter.when(&x), Duration::from_millis(10));
        assert_eq!(limiter.num_requeues(&x), 2);
        // Exhaust the bucket with other items: the 101st call waits for the bucket, not the item.
        for i in 0..98 {
            let _ = limiter.when(&format!("k{i}"));
        }
        let d = limiter.when(&"fresh".to_owned());
        assert!(
            // ~100 ms, less the refill during the test's first microseconds.
            d >= Duration::from_millis(90),
            "bucket delay dominates: {d:?}"
        );
        limiter.forget(&x);
        assert_eq!(limiter.num_requeues(&x), 0);
    }
}
