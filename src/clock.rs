//! Time arithmetic that cannot panic.
//!
//! `Instant + Duration`, `SystemTime + Duration` and `Duration::from_secs_f64` panic when the
//! result does not fit, and several durations come from outside the operator: a proxy's
//! `Retry-After` (seconds or an HTTP date), a token endpoint's `expires_in`, a user's flags and
//! specs. Every such computation goes through these functions, which clamp instead.

use std::time::{Duration, Instant, SystemTime};

/// The longest `Retry-After` honoured; a longer one (or a date further away) is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The longest delay ever scheduled: requeues, waits and deadlines. Far below the limits of the
/// clock and of tokio's timer wheel (about two years), far above any real setting.
pub const MAX_DELAY: Duration = Duration::from_secs(30 * 24 * 3600);

/// `now + d`, with `d` cut to [`MAX_DELAY`]; never panics.
pub fn instant_after(now: Instant, d: Duration) -> Instant {
    let d = d.min(MAX_DELAY);
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(1)))
        .unwrap_or(now)
}

/// `now + d`, with `d` cut to [`MAX_DELAY`]; never panics.
pub fn system_after(now: SystemTime, d: Duration) -> SystemTime {
    let d = d.min(MAX_DELAY);
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(1)))
        .unwrap_or(now)
}

/// A delay to schedule: at most [`MAX_DELAY`].
pub fn bounded_delay(d: Duration) -> Duration {
    d.min(MAX_DELAY)
}

/// `secs` seconds as a Duration: negative and NaN give zero, too large gives `max`.
pub fn secs_f64(secs: f64, max: Duration) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).map_or(max, |d| d.min(max))
}

/// `Retry-After` as a delay from `now`: delta-seconds or an HTTP date (RFC 9110 §10.2.3), cut to
/// [`MAX_RETRY_AFTER`]. A date in the past means zero; anything else is not a `Retry-After`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Any number of digits: a value too large for u64 is still "very long".
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at_ms = date.timestamp_millis();
    let now_ms = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    };
    let wait_ms = at_ms.saturating_sub(now_ms);
    if wait_ms <= 0 {
        return Some(Duration::ZERO);
    }
    // Round up to whole seconds: sending a few hundred milliseconds late is fine, early is not.
    let secs = u64::try_from(wait_ms).unwrap_or(u64::MAX).div_ceil(1000);
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates_are_bounded() {
        // RFC 9110 §10.2.3 examples: "Fri, 31 Dec 1999 23:59:59 GMT" and "120".
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn arithmetic_clamps_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(instant_after(now, Duration::MAX), now + MAX_DELAY);
        assert_eq!(
            instant_after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        let t = SystemTime::UNIX_EPOCH;
        assert_eq!(system_after(t, Duration::MAX), t + MAX_DELAY);
        assert_eq!(secs_f64(f64::INFINITY, MAX_DELAY), MAX_DELAY);
        assert_eq!(secs_f64(f64::NAN, MAX_DELAY), Duration::ZERO);
        assert_eq!(secs_f64(-1.0, MAX_DELAY), Duration::ZERO);
        assert_eq!(secs_f64(1e300, MAX_DELAY), MAX_DELAY);
        assert_eq!(secs_f64(1.5, MAX_DELAY), Duration::from_millis(1500));
        assert_eq!(bounded_delay(Duration::MAX), MAX_DELAY);
    }
}
