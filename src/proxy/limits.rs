//! Per-proxy request limits: a token bucket for the rate and a semaphore for concurrency.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits of one proxy client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Sustained requests per second; 0 = unlimited.
    pub requests_per_second: u32,
    /// Requests that may go out at once after a quiet period (0 is treated as 1).
    pub burst: u32,
    /// Requests in flight at once (0 is treated as 1).
    pub max_concurrent: u32,
    /// Time for one request, response body included.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            requests_per_second: 100,
            burst: 200,
            max_concurrent: 16,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A token bucket that hands out reservations: a caller takes a token even when the bucket is
/// empty (the balance goes negative) and sleeps until its token has been earned. Waiters are
/// served in arrival order and nobody busy-loops.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        let burst = f64::from(limits.burst.max(1));
        Self {
            rate: f64::from(limits.requests_per_second),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes over `previous`'s bucket (tokens left, as of when) when both have the same rate
    /// and burst, so that rebuilding a client (rotated credentials) does not refill it.
    pub(crate) fn continue_from(&self, previous: &RateLimiter) {
        if self.rate != previous.rate || self.burst != previous.burst {
            return;
        }
        let carried = *previous.state.lock().unwrap_or_else(|p| p.into_inner());
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = carried;
    }

    /// How long the caller must wait before sending; the token is taken immediately.
    pub(crate) fn reserve(&self) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = *state;
        let earned = now.saturating_duration_since(last).as_secs_f64() * self.rate;
        let balance = (tokens + earned).min(self.burst) - 1.0;
        *state = (balance, now);
        if balance >= 0.0 {
            Duration::ZERO
        } else {
            crate::clock::secs_f64(-balance / self.rate, crate::clock::MAX_DELAY)
        }
    }

    pub(crate) async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let l = RateLimiter::new(&Limits {
            requests_per_second: 10,
            burst: 3,
            ..Limits::default()
        });
        for _ in 0..3 {
            assert_eq!(l.reserve(), Duration::ZERO);
        }
        let w1 = l.reserve();
        let w2 = l.reserve();
        assert!(
            w1 > Duration::from_millis(80) && w1 <= Duration::from_millis(100),
            "{w1:?}"
        );
        assert!(
            w2 > Duration::from_millis(180) && w2 <= Duration::from_millis(200),
            "{w2:?}"
        );
    }

    #[test]
    fn defaults() {
        let l = Limits::default();
        assert_eq!(
            (
                l.requests_per_second,
                l.burst,
                l.max_concurrent,
                l.request_timeout
            ),
            (100, 200, 16, Duration::from_secs(30))
        );
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let l = RateLimiter::new(&Limits {
            requests_per_second: 0,
            burst: 0,
            ..Limits::default()
        });
        for _ in 0..10_000 {
            assert_eq!(l.reserve(), Duration::ZERO);
        }
    }

    #[test]
    fn a_rebuilt_limiter_continues_the_bucket_of_the_one_it_replaces() {
        let limits = Limits {
            requests_per_second: 1,
            burst: 2,
            ..Limits::default()
        };
        let old = RateLimiter::new(&limits);
        assert_eq!(old.reserve(), Duration::ZERO);
        assert_eq!(old.reserve(), Duration::ZERO);
        // The old bucket is empty: its successor must not start full.
        let new = RateLimiter::new(&limits);
        new.continue_from(&old);
        assert!(new.reserve() > Duration::from_millis(500));
        // Other limits: a fresh bucket of the new size.
        let other = RateLimiter::new(&Limits {
            requests_per_second: 5,
            burst: 3,
            ..Limits::default()
        });
        other.continue_from(&old);
        assert_eq!(other.reserve(), Duration::ZERO);
    }

    #[test]
    fn tokens_come_back_at_the_configured_rate() {
        let l = RateLimiter::new(&Limits {
            requests_per_second: 10,
            burst: 2,
            ..Limits::default()
        });
        assert_eq!(l.reserve(), Duration::ZERO);
        assert_eq!(l.reserve(), Duration::ZERO);
        // 10/s: 150 ms (or more, on a busy machine) earn at least one and a half tokens, so
        // one request goes out at once and the next waits at most for half a token (50 ms).
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(l.reserve(), Duration::ZERO);
        let w = l.reserve();
        assert!(w <= Duration::from_millis(50), "{w:?}");
    }

    #[test]
    fn a_quiet_period_refills_no_more_than_the_burst() {
        let l = RateLimiter::new(&Limits {
            requests_per_second: 10,
            burst: 2,
            ..Limits::default()
        });
        assert_eq!(l.reserve(), Duration::ZERO);
        assert_eq!(l.reserve(), Duration::ZERO);
        // 300 ms at 10/s would earn 3 tokens; the bucket holds 2, the third request waits
        // for a whole token (100 ms), less what the time since the first of them earned. A
        // busy machine may stretch that time, so it is measured rather than assumed small.
        std::thread::sleep(Duration::from_millis(300));
        let since = std::time::Instant::now();
        assert_eq!(l.reserve(), Duration::ZERO);
        assert_eq!(l.reserve(), Duration::ZERO);
        let w = l.reserve();
        assert!(w <= Duration::from_millis(100), "{w:?}");
        assert!(
            w + since.elapsed() >= Duration::from_millis(100),
            "{w:?} after {:?}: more than the burst was refilled",
            since.elapsed()
        );
    }

    #[test]
    fn a_rebuilt_limiter_with_another_rate_or_burst_starts_full() {
        let drained = |rate, burst| {
            let l = RateLimiter::new(&Limits {
                requests_per_second: rate,
                burst,
                ..Limits::default()
            });
            for _ in 0..burst {
                l.reserve();
            }
            l
        };
        // Only the rate differs.
        let new = RateLimiter::new(&Limits {
            requests_per_second: 2,
            burst: 2,
            ..Limits::default()
        });
        new.continue_from(&drained(1, 2));
        assert_eq!(new.reserve(), Duration::ZERO);
        // Only the burst differs.
        let new = RateLimiter::new(&Limits {
            requests_per_second: 1,
            burst: 3,
            ..Limits::default()
        });
        new.continue_from(&drained(1, 2));
        assert_eq!(new.reserve(), Duration::ZERO);
    }

    #[tokio::test]
    async fn acquire_waits_for_its_token() {
        let l = RateLimiter::new(&Limits {
            requests_per_second: 20,
            burst: 1,
            ..Limits::default()
        });
        let start = std::time::Instant::now();
        l.acquire().await;
        // The bucket is empty: the second request goes out one token (50 ms) after the first.
        l.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
    }
}
