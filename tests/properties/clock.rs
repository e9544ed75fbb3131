//! Time arithmetic on values from outside.

use super::*;
use crate::planner::{at, previous_status};

// ---------------------------------------------------------------------------------------------
// Time arithmetic on values from outside: a `Retry-After` (seconds or HTTP date) from any proxy
// or token endpoint, token lifetimes, duration flags, backoff and jitter. None may panic (one
// panic on `Instant + Duration` used to end the process for every tenant), and every delay
// that reaches a scheduler is bounded.

fn retry_after_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        "[0-9]{1,40}",
        // HTTP dates from year 1 to 9999, past and future (RFC 9110 §5.6.7 IMF-fixdate is a
        // subset of what RFC 2822 parsing accepts).
        (-62_000_000_000i64..253_000_000_000i64).prop_map(|s| {
            chrono::DateTime::from_timestamp(s, 0)
                .map(|d| d.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
                .unwrap_or_default()
        }),
        ".{0,40}",
    ]
}

fn system_time() -> impl Strategy<Value = SystemTime> {
    (any::<u64>(), any::<bool>()).prop_map(|(s, before)| {
        let d = Duration::from_secs(s);
        if before {
            SystemTime::UNIX_EPOCH.checked_sub(d)
        } else {
            SystemTime::UNIX_EPOCH.checked_add(d)
        }
        .unwrap_or(SystemTime::UNIX_EPOCH)
    })
}

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (0u64..100_000).prop_map(Duration::from_millis),
        Just(Duration::MAX),
        Just(Duration::ZERO),
    ]
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn retry_after_is_bounded_whatever_the_header_says(
        value in retry_after_value(),
        now in system_time(),
    ) {
        use hdinsight_topic_operator::clock::{MAX_RETRY_AFTER, parse_retry_after};
        if let Some(d) = parse_retry_after(&value, now) {
            prop_assert!(d <= MAX_RETRY_AFTER);
        }
    }

    #[test]
    fn clock_arithmetic_never_panics(d in any_duration(), now in system_time(), f in any::<f64>()) {
        use hdinsight_topic_operator::clock::{
            MAX_DELAY, bounded_delay, instant_after, secs_f64, system_after,
        };
        let start = std::time::Instant::now();
        let later = instant_after(start, d);
        prop_assert!(later >= start && later.duration_since(start) <= MAX_DELAY);
        let t = system_after(now, d);
        prop_assert!(t >= now);
        prop_assert!(secs_f64(f, MAX_DELAY) <= MAX_DELAY);
        prop_assert!(bounded_delay(d) <= MAX_DELAY);
        // What a reconcile hands to the scheduler: a bounded delay, jittered by ±10 %.
        let jittered = hdinsight_topic_operator::controller::context::jitter(bounded_delay(d));
        prop_assert!(jittered <= MAX_DELAY + MAX_DELAY / 10);
    }

    #[test]
    fn a_throttled_topic_requeues_within_bounds(
        retry in any_duration(),
        attempt in any::<u32>(),
        prev in previous_status(),
    ) {
        use hdinsight_topic_operator::clock::{MAX_DELAY, bounded_delay};
        let topic: KafkaTopic = serde_json::from_value(json!({
            "apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic",
            "metadata": {"name": "t", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {}
        })).expect("topic");
        let mut topic = topic;
        topic.status = Some(prev);
        let f = plan::finish_blocked(
            &topic,
            &Blocked::Transient { message: "429".into(), retry_after: Some(retry) },
            at(0),
            &PlanSettings::default(),
            attempt,
        );
        prop_assert!(bounded_delay(f.requeue_after) <= MAX_DELAY);
        prop_assert!(plan::exponential_backoff(attempt) <= Duration::from_secs(300));
    }

    #[test]
    fn duration_flags_parse_or_refuse_without_panicking(
        text in prop_oneof![
            "[0-9]{1,30}(\\.[0-9]{0,5})?(ms|s|m|h)?",
            ".{0,20}",
        ],
    ) {
        use hdinsight_topic_operator::cli::{parse_duration, parse_positive_duration};
        if let Ok(d) = parse_duration(&text) {
            prop_assert!(d <= hdinsight_topic_operator::clock::MAX_DELAY);
        }
        if let Ok(d) = parse_positive_duration(&text) {
            prop_assert!(!d.is_zero());
        }
    }

    #[test]
    fn token_lifetimes_are_bounded(secs in any::<u64>()) {
        let body = format!(r#"{{"access_token":"a","expires_in":{secs}}}"#);
        match decode_success(body.as_bytes()) {
            Ok((_, lifetime)) => prop_assert!(lifetime <= Duration::from_secs(7 * 24 * 3600)),
            Err(e) => prop_assert!(matches!(e, AuthError::Malformed(_))),
        }
    }
}
