//! Blocked reconciles: every block's conditions, transient failures, pauses and warning Events.

use super::*;

#[test]
fn blocked_reasons_map_to_conditions() {
    let settings = PlanSettings::default();
    let t = topic(json!({}), None);
    for (blocked, reason, stalled) in [
        (
            Blocked::ProxyNotFound("no KafkaRestProxy team-a/default".into()),
            reason::PROXY_NOT_FOUND,
            true,
        ),
        (
            Blocked::ProxyNotAllowed("not allowed".into()),
            reason::PROXY_NOT_ALLOWED,
            true,
        ),
        (
            Blocked::SecretNotFound("Secret team-a/sp does not exist".into()),
            reason::SECRET_NOT_FOUND,
            true,
        ),
        (
            Blocked::CredentialsInvalid("Secret sp lacks clientSecret".into()),
            reason::CREDENTIALS_INVALID,
            true,
        ),
        (
            Blocked::AuthenticationFailed("AADSTS7000215: invalid client secret".into()),
            reason::AUTHENTICATION_FAILED,
            true,
        ),
        (
            Blocked::Forbidden("not a member".into()),
            reason::FORBIDDEN,
            true,
        ),
        (
            Blocked::Conflict {
                owner: "team-a/first".into(),
            },
            reason::RESOURCE_CONFLICT,
            true,
        ),
        (
            Blocked::InvalidSpec("spec.config.x: bad".into()),
            reason::INVALID_SPEC,
            true,
        ),
    ] {
        let f = finish_blocked(&t, &blocked, ts(0), &settings, 0);
        assert_eq!(
            ready_reason(&f.status),
            ("False".into(), reason.into()),
            "{blocked:?}"
        );
        assert_eq!(
            is_true(&f.status.conditions, STALLED),
            stalled,
            "{blocked:?}"
        );
    }
    let f = finish_blocked(
        &t,
        &Blocked::Conflict {
            owner: "team-a/first".into(),
        },
        ts(0),
        &settings,
        0,
    );
    assert!(
        f.status
            .conditions
            .iter()
            .any(|c| c.message.contains("team-a/first"))
    );
    assert_eq!(f.events.len(), 1);
    let auth = finish_blocked(
        &t,
        &Blocked::AuthenticationFailed("AADSTS7000215".into()),
        ts(0),
        &settings,
        3,
    );
    assert_eq!(
        auth.requeue_after,
        Duration::from_secs(8),
        "authentication failures back off exponentially"
    );
}

#[test]
fn transient_failures_keep_a_ready_topic_ready_and_honour_retry_after() {
    let settings = PlanSettings::default();
    let t = topic(json!({}), Some(present_status(3)));
    let f = finish_blocked(
        &t,
        &Blocked::Transient {
            message: "proxy answered 503".into(),
            retry_after: Some(Duration::from_secs(7)),
        },
        ts(10),
        &settings,
        0,
    );
    assert_eq!(ready_reason(&f.status).0, "True");
    assert!(is_true(&f.status.conditions, RECONCILING));
    assert_eq!(f.requeue_after, Duration::from_secs(7));
    let fresh = topic(json!({}), None);
    let f = finish_blocked(
        &fresh,
        &Blocked::Transient {
            message: "timeout".into(),
            retry_after: None,
        },
        ts(10),
        &settings,
        2,
    );
    assert_eq!(
        ready_reason(&f.status),
        ("False".into(), reason::RETRYING.into())
    );
    assert_eq!(f.requeue_after, Duration::from_secs(4));
}

#[test]
fn paused_keeps_ready_and_adds_paused() {
    let settings = PlanSettings::default();
    let t = topic(json!({}), Some(present_status(3)));
    let f = finish_blocked(&t, &Blocked::Paused, ts(10), &settings, 0);
    assert_eq!(ready_reason(&f.status).0, "True");
    assert!(is_true(&f.status.conditions, PAUSED));
    assert!(f.events.is_empty());
    // One condition of each type: the earlier Reconciling (and any Paused) are replaced.
    let types: Vec<&str> = f
        .status
        .conditions
        .iter()
        .map(|c| c.type_.as_str())
        .collect();
    for t in [READY, RECONCILING, STALLED, PAUSED] {
        assert_eq!(
            types.iter().filter(|x| **x == t).count(),
            1,
            "{t} in {types:?}"
        );
    }
    let mut paused = topic(json!({}), Some(f.status.clone()));
    paused.metadata.generation = t.metadata.generation;
    let again = finish_blocked(&paused, &Blocked::Paused, ts(20), &settings, 0);
    assert_eq!(again.status, f.status, "pausing twice changes nothing");
}

#[test]
fn a_warning_block_is_announced_once_per_reason_and_message() {
    let settings = PlanSettings::default();
    let t = topic(json!({}), Some(present_status(3)));
    let forbidden = |m: &str| Blocked::Forbidden(m.into());
    let first = finish_blocked(&t, &forbidden("not in the group"), ts(10), &settings, 1);
    assert_eq!(first.events.len(), 1);
    assert!(first.events[0].warning);
    let t = topic(json!({}), Some(first.status));
    // The same again: no Event.
    let same = finish_blocked(&t, &forbidden("not in the group"), ts(20), &settings, 2);
    assert!(same.events.is_empty());
    // Another message, or another reason with the same message: announced.
    let other = finish_blocked(
        &t,
        &forbidden("still not in the group"),
        ts(20),
        &settings,
        2,
    );
    assert_eq!(other.events.len(), 1);
    let auth = finish_blocked(
        &t,
        &Blocked::AuthenticationFailed("not in the group".into()),
        ts(20),
        &settings,
        2,
    );
    assert_eq!(auth.events.len(), 1);
    // Blocks plain from the manifest are never announced, not even the first time.
    let t = topic(json!({}), Some(present_status(3)));
    let missing = finish_blocked(
        &t,
        &Blocked::SecretNotFound("Secret kafka/hdi-sp does not exist".into()),
        ts(10),
        &settings,
        1,
    );
    assert!(missing.events.is_empty(), "{:?}", missing.events);
}
