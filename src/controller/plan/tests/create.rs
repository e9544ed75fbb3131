//! Creating: absent topics, accepted, refused and uncertain creates.

use super::*;

#[test]
fn absent_topic_with_policy_create_is_created_without_a_describe_first() {
    let c = Case::new(
        json!({"partitions": 12, "replicationFactor": 3, "config": {"retention.ms": 1000}}),
        None,
    );
    match c.decide(&Observation::default()) {
        Decision::Create {
            request,
            recreation,
        } => {
            assert!(!recreation);
            assert_eq!(request.topic_name, "orders");
            assert_eq!(request.partitions, Some(12));
            assert_eq!(request.replication_factor, Some(3));
            assert_eq!(request.config.get("retention.ms"), Some(&json!(1000)));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn accepted_create_reports_creating_and_emits_created() {
    let c = Case::new(json!({}), None);
    let f = finish(c.decide(&Observation {
        created: Some(CreateOutcome::Accepted),
        ..Default::default()
    }));
    assert_eq!(
        ready_reason(&f.status),
        ("False".into(), reason::CREATING.into())
    );
    assert!(is_true(&f.status.conditions, RECONCILING));
    assert_eq!(f.status.create_requested_at, Some(Time(ts(0))));
    // Which topic on which proxy: what the ownership index and `kubectl get` read.
    assert_eq!(
        f.status.topic_name.as_deref(),
        Some(c.desired.topic_name.as_str())
    );
    assert_eq!(f.status.proxy.as_deref(), Some(c.desired.proxy.as_str()));
    assert_eq!(
        f.status.proxy_endpoint.as_deref(),
        Some("https://c-kafkarest.example")
    );
    assert_eq!(
        f.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
        vec![reason::CREATED]
    );
    assert_eq!(f.requeue_after, Duration::from_millis(500));
}

#[test]
fn a_fresh_create_stays_creating_without_a_status_change() {
    let mut c = Case::new(json!({}), None);
    let created = finish(c.decide(&Observation {
        created: Some(CreateOutcome::Accepted),
        ..Default::default()
    }))
    .status;
    c.topic.status = Some(created.clone());
    c.now = ts(1);
    let f = finish(c.decide(&Observation::default()));
    assert_eq!(
        f.status, created,
        "nothing to write while it is still Creating"
    );
    assert_eq!(f.requeue_after, Duration::from_millis(500));
    c.now = ts(3);
    let f = finish(c.decide(&Observation::default()));
    assert_eq!(ready_reason(&f.status).1, reason::WAITING_FOR_VISIBILITY);
}

#[test]
fn created_but_not_listed_waits_with_growing_poll_then_stalls_not_visible() {
    let mut c = Case::new(json!({}), None);
    let created = finish(c.decide(&Observation {
        created: Some(CreateOutcome::Accepted),
        ..Default::default()
    }))
    .status;
    c.topic.status = Some(created);
    c.now = ts(4);
    let f = finish(c.decide(&Observation::default()));
    assert_eq!(ready_reason(&f.status).1, reason::WAITING_FOR_VISIBILITY);
    assert!(is_true(&f.status.conditions, RECONCILING));
    assert_eq!(
        f.requeue_after,
        Duration::from_secs(2),
        "half the time waited"
    );
    assert!(f.events.is_empty());
    c.now = ts(100);
    assert_eq!(
        finish(c.decide(&Observation::default())).requeue_after,
        Duration::from_secs(30)
    );
    // The visibility timeout (600 s) is the first instant past the wait.
    assert_eq!(c.settings.visibility_timeout, Duration::from_secs(600));
    c.now = ts(599);
    assert!(matches!(
        c.decide(&Observation::default()),
        Decision::Finish(_)
    ));
    c.now = ts(600);
    assert_eq!(c.decide(&Observation::default()), Decision::Describe);
    let at_timeout = finish(c.decide(&Observation {
        described: Some(Described::NotFound),
        described_now: true,
        ..Default::default()
    }));
    assert_eq!(ready_reason(&at_timeout.status).1, reason::NOT_VISIBLE);
    // Past the timeout a describe double-checks; a 404 makes it NotVisible + Stalled, once.
    c.now = ts(601);
    assert_eq!(c.decide(&Observation::default()), Decision::Describe);
    let f = finish(c.decide(&Observation {
        described: Some(Described::NotFound),
        described_now: true,
        ..Default::default()
    }));
    assert_eq!(
        ready_reason(&f.status),
        ("False".into(), reason::NOT_VISIBLE.into())
    );
    assert!(is_true(&f.status.conditions, STALLED));
    assert_eq!(f.events.len(), 1);
    c.topic.status = Some(f.status);
    let again = finish(c.decide(&Observation {
        described: Some(Described::NotFound),
        described_now: true,
        ..Default::default()
    }));
    assert!(again.events.is_empty(), "NotVisible is announced once");
}

#[test]
fn listed_topic_is_described_and_becomes_ready_with_details() {
    let mut c = Case::new(json!({"partitions": 3}), None);
    c.topic.status = Some(
        finish(c.decide(&Observation {
            created: Some(CreateOutcome::Accepted),
            ..Default::default()
        }))
        .status,
    );
    assert_eq!(
        c.decide(&Observation {
            listed: true,
            ..Default::default()
        }),
        Decision::Describe
    );
    let mut p = parts(3, &[1001, 1002, 1003]);
    p.reverse();
    let f = finish(c.decide(&Observation {
        listed: true,
        described: Some(Described::Found(p)),
        described_now: true,
        ..Default::default()
    }));
    assert_eq!(
        ready_reason(&f.status),
        ("True".into(), reason::CREATED.into())
    );
    assert_eq!(f.status.partitions, Some(3));
    assert_eq!(f.status.replication_factor, Some(3));
    assert_eq!(f.status.under_replicated_partitions, Some(0));
    let details = f.status.partition_details.clone().unwrap_or_default();
    assert_eq!(
        details.iter().map(|d| d.partition).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(!is_true(&f.status.conditions, DRIFTED));
    assert!(f.events.is_empty(), "Created was announced at create time");
    assert_eq!(f.requeue_after, c.settings.resync_interval);
}

#[test]
fn existing_topic_on_first_sight_is_adopted() {
    let c = Case::new(json!({}), None);
    let f = finish(c.decide(&Observation {
        listed: true,
        described: Some(Described::Found(parts(6, &[1001, 1002]))),
        ..Default::default()
    }));
    assert_eq!(
        ready_reason(&f.status),
        ("True".into(), reason::ADOPTED.into())
    );
    assert_eq!(
        f.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
        vec![reason::ADOPTED]
    );
    assert_eq!(f.status.create_requested_at, None);
}

fn rejected(cause: Refusal, message: &str) -> Observation {
    Observation {
        created: Some(CreateOutcome::Rejected {
            message: message.into(),
            cause,
        }),
        ..Default::default()
    }
}

#[test]
fn a_create_refused_because_the_topic_exists_waits_and_adopts_never_stalls() {
    let mut c = Case::new(json!({}), None);
    let refused = rejected(Refusal::Exists, "HTTP 400: Topic 'orders' already exists.");
    assert_eq!(c.decide(&refused), Decision::Describe, "re-observe first");
    let adopted = finish(c.decide(&Observation {
        described: Some(Described::Found(parts(1, &[1001]))),
        ..refused.clone()
    }));
    assert_eq!(
        ready_reason(&adopted.status),
        ("True".into(), reason::ADOPTED.into())
    );
    // Not visible yet (the proxy's list is a cache): wait, Reconciling, no Event.
    let waiting = finish(c.decide(&Observation {
        described: Some(Described::NotFound),
        ..refused.clone()
    }));
    assert_eq!(
        ready_reason(&waiting.status),
        ("False".into(), reason::WAITING_FOR_VISIBILITY.into())
    );
    let message = find_condition(&waiting.status.conditions, READY)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.starts_with("the proxy says it already exists"),
        "{message}"
    );
    let unclear = finish(c.decide(&Observation {
        described: Some(Described::NotFound),
        ..rejected(Refusal::Unclear, "HTTP 400")
    }));
    let message = find_condition(&unclear.status.conditions, READY)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        message.starts_with("the proxy refused the create without saying why"),
        "{message}"
    );
    assert!(is_true(&waiting.status.conditions, RECONCILING));
    assert!(!is_true(&waiting.status.conditions, STALLED));
    assert!(waiting.events.is_empty(), "{:?}", waiting.events);
    assert_eq!(
        waiting.status.create_requested_at, None,
        "no create of ours happened"
    );
    // Later reconciles keep waiting without sending the create again…
    c.topic.status = Some(waiting.status);
    c.now = ts(1);
    let still = finish(c.decide(&Observation::default()));
    assert_eq!(
        ready_reason(&still.status).1,
        reason::WAITING_FOR_VISIBILITY
    );
    assert!(!is_true(&still.status.conditions, STALLED));
    // …until it shows: Adopted, with an Event.
    c.now = ts(2);
    assert_eq!(
        c.decide(&Observation {
            listed: true,
            ..Default::default()
        }),
        Decision::Describe
    );
    let found = finish(c.decide(&Observation {
        listed: true,
        described: Some(Described::Found(parts(1, &[1001]))),
        ..Default::default()
    }));
    assert_eq!(
        ready_reason(&found.status),
        ("True".into(), reason::ADOPTED.into())
    );
    assert!(found.events.iter().any(|e| e.reason == reason::ADOPTED));
    // Still invisible after uncertain_retry: look, then send the create again (in case the
    // topic went away meanwhile); if the proxy still says it exists, the wait goes on.
    c.now = ts(31);
    assert_eq!(c.decide(&Observation::default()), Decision::Describe);
    assert!(matches!(
        c.decide(&Observation {
            described: Some(Described::NotFound),
            ..Default::default()
        }),
        Decision::Create {
            recreation: false,
            ..
        }
    ));
    let again = finish(c.decide(&Observation {
        described: Some(Described::NotFound),
        ..refused
    }));
    assert!(!is_true(&again.status.conditions, STALLED));
    // The next create waits uncertain_retry from that refused one, not from the first: the
    // condition keeps its transition time, so without this every poll after 30 s would send
    // a create (one a second per waiting topic, for as long as the proxy hides the topic).
    c.topic.status = Some(again.status);
    c.last_refused_create = Some(ts(31));
    for now in [32, 45, 60] {
        c.now = ts(now);
        let waiting = finish(c.decide(&Observation::default()));
        assert_eq!(
            ready_reason(&waiting.status).1,
            reason::WAITING_FOR_VISIBILITY
        );
        // Polls the list meanwhile, and is back when the next create is due.
        assert!(
            waiting.requeue_after <= Duration::from_secs(61 - now as u64),
            "{now}: {:?}",
            waiting.requeue_after
        );
    }
    c.now = ts(61);
    assert_eq!(c.decide(&Observation::default()), Decision::Describe);
    // A refusal remembered from before the wait began does not postpone the create.
    c.last_refused_create = Some(ts(-5));
    c.now = ts(31);
    assert_eq!(c.decide(&Observation::default()), Decision::Describe);
}

#[test]
fn a_refusal_listed_on_one_node_is_a_topic_that_exists() {
    let c = Case::new(json!({}), None);
    // Listed by one management node, 404 on describe from the other: it exists.
    let f = finish(c.decide(&Observation {
        listed: true,
        described: Some(Described::NotFound),
        ..rejected(Refusal::Request, "HTTP 400: invalid")
    }));
    assert_eq!(ready_reason(&f.status).1, reason::WAITING_FOR_VISIBILITY);
    assert!(!is_true(&f.status.conditions, STALLED));
}

#[test]
fn an_uncertain_create_that_turns_out_to_have_happened_is_created() {
    let mut c = Case::new(json!({}), None);
    let f = finish(c.decide(&Observation {
        created: Some(CreateOutcome::Uncertain {
            message: "HTTP 500".into(),
        }),
        ..Default::default()
    }));
    c.topic.status = Some(f.status);
    c.now = ts(31);
    // The retry meets the topic the first attempt made.
    let f = finish(c.decide(&Observation {
        described: Some(Described::NotFound),
        ..rejected(Refusal::Exists, "HTTP 400: exists")
    }));
    assert_eq!(ready_reason(&f.status).1, reason::WAITING_FOR_VISIBILITY);
    assert!(f.status.create_requested_at.is_some());
    c.topic.status = Some(f.status);
    c.now = ts(32);
    let f = finish(c.decide(&Observation {
        listed: true,
        described: Some(Described::Found(parts(1, &[1001]))),
        ..Default::default()
    }));
    assert_eq!(
        ready_reason(&f.status),
        ("True".into(), reason::CREATED.into())
    );
}

#[test]
fn refusals_about_the_request_stall_naming_the_cause_with_one_event() {
    for (cause, fragment) in [
        (
            Refusal::Config {
                key: Some("retention.ms".into()),
            },
            "config retention.ms",
        ),
        (Refusal::Config { key: None }, "a config"),
        (Refusal::Request, "replication factor"),
    ] {
        let mut c = Case::new(json!({"config": {"retention.ms": 1000}}), None);
        let obs = Observation {
            described: Some(Described::NotFound),
            ..rejected(cause.clone(), "HTTP 400: nope")
        };
        let f = finish(c.decide(&obs));
        assert_eq!(
            ready_reason(&f.status),
            ("False".into(), reason::CREATE_REJECTED.into())
        );
        assert!(is_true(&f.status.conditions, STALLED));
        let stalled = find_condition(&f.status.conditions, STALLED).map(|c| c.message.clone());
        assert!(
            stalled
                .as_deref()
                .is_some_and(|m| m.contains(fragment) && m.contains("HTTP 400: nope")),
            "{cause:?}: {stalled:?}"
        );
        assert_eq!(f.events.len(), 1);
        assert!(f.events[0].warning && f.events[0].reason == reason::CREATE_REJECTED);
        // A minute later the same refusal: same status, no second Event.
        c.topic.status = Some(f.status.clone());
        c.now = ts(61);
        let again = finish(c.decide(&obs));
        assert!(again.events.is_empty(), "{cause:?}: {:?}", again.events);
        assert_eq!(again.status, f.status);
        // Refused for another reason: a new situation, a new Event.
        let other = Observation {
            described: Some(Described::NotFound),
            ..rejected(cause.clone(), "HTTP 400: something else")
        };
        assert_eq!(finish(c.decide(&other)).events.len(), 1, "{cause:?}");
        // The same words on a Stalled condition that is not True (kept from an older
        // version): not stalled before, so announced.
        let mut unstalled = f.status.clone();
        for cond in &mut unstalled.conditions {
            if cond.type_ == STALLED {
                cond.status = "False".into();
            }
        }
        c.topic.status = Some(unstalled);
        assert_eq!(finish(c.decide(&obs)).events.len(), 1, "{cause:?}");
    }
}

#[test]
fn an_unexplained_refusal_waits_then_stalls_after_the_visibility_timeout() {
    let mut c = Case::new(json!({}), None);
    let obs = Observation {
        described: Some(Described::NotFound),
        ..rejected(Refusal::Unclear, "HTTP 400: ")
    };
    let f = finish(c.decide(&obs));
    assert_eq!(ready_reason(&f.status).1, reason::WAITING_FOR_VISIBILITY);
    assert!(!is_true(&f.status.conditions, STALLED));
    c.topic.status = Some(f.status);
    c.now = ts(601);
    let f = finish(c.decide(&obs));
    assert_eq!(ready_reason(&f.status).1, reason::CREATE_REJECTED);
    assert!(is_true(&f.status.conditions, STALLED));
}

#[test]
fn refusals_are_classified_from_the_status_and_the_text() {
    let config = json!({"retention.ms": 1, "local.retention.ms": 2});
    let config = config.as_object().cloned().unwrap_or_default();
    let cases = [
        (409, "", Refusal::Exists),
        (
            400,
            r#"{"error":"topic_already_exists","message":"Topic 'orders' already exists."}"#,
            Refusal::Exists,
        ),
        (400, "Topic orders exists", Refusal::Exists),
        (
            400,
            "Invalid value -5 for configuration retention.ms: Value must be at least -1",
            Refusal::Config {
                key: Some("retention.ms".into()),
            },
        ),
        (
            400,
            "Unknown topic config name: local.retention.ms",
            Refusal::Config {
                key: Some("local.retention.ms".into()),
            },
        ),
        (
            400,
            "Unknown topic config name: segment.ms",
            Refusal::Config { key: None },
        ),
        (
            400,
            "Replication factor: 4 larger than available brokers: 3.",
            Refusal::Request,
        ),
        (
            400,
            "Number of partitions must be larger than 0",
            Refusal::Request,
        ),
        (400, "", Refusal::Unclear),
        (422, "<html>Bad Request</html>", Refusal::Unclear),
    ];
    for (status, body, want) in cases {
        assert_eq!(
            classify_refusal(status, body, "orders", &config),
            want,
            "{status} {body}"
        );
    }
    // A topic name that looks like a config key is not one.
    assert_eq!(
        classify_refusal(
            400,
            "Topic 'retention.ms-audit' already exists.",
            "retention.ms-audit",
            &config
        ),
        Refusal::Exists
    );
}

#[test]
fn an_uncertain_create_is_not_repeated_once_the_policy_is_observe() {
    let mut c = Case::new(json!({}), None);
    let f = finish(c.decide(&Observation {
        created: Some(CreateOutcome::Uncertain {
            message: "503".into(),
        }),
        ..Default::default()
    }));
    let mut observed = Case::new(json!({"managementPolicy": "Observe"}), Some(f.status));
    observed.now = ts(601);
    let decision = observed.decide(&Observation {
        described: Some(Described::NotFound),
        described_now: true,
        ..Default::default()
    });
    assert!(
        !matches!(decision, Decision::Create { .. }),
        "an Observe topic was created: {decision:?}"
    );
    c.now = ts(601);
    assert!(matches!(
        c.decide(&Observation {
            described: Some(Described::NotFound),
            described_now: true,
            ..Default::default()
        }),
        Decision::Create { .. }
    ));
}

#[test]
fn uncertain_create_waits_then_looks_and_tries_again() {
    let mut c = Case::new(json!({}), None);
    let f = finish(c.decide(&Observation {
        created: Some(CreateOutcome::Uncertain {
            message: "503".into(),
        }),
        ..Default::default()
    }));
    assert_eq!(ready_reason(&f.status).1, reason::CREATE_UNCERTAIN);
    c.topic.status = Some(f.status);
    c.now = ts(10);
    let f = finish(c.decide(&Observation::default()));
    assert_eq!(
        ready_reason(&f.status).1,
        reason::CREATE_UNCERTAIN,
        "no second create before uncertain_retry"
    );
    c.now = ts(31);
    assert_eq!(c.decide(&Observation::default()), Decision::Describe);
    assert!(matches!(
        c.decide(&Observation {
            described: Some(Described::NotFound),
            ..Default::default()
        }),
        Decision::Create {
            recreation: false,
            ..
        }
    ));
}

#[test]
fn a_transient_failure_keeps_an_uncertain_create_uncertain() {
    let mut c = Case::new(json!({}), None);
    let f = finish(c.decide(&Observation {
        created: Some(CreateOutcome::Uncertain {
            message: "500".into(),
        }),
        ..Default::default()
    }));
    c.topic.status = Some(f.status);
    c.now = ts(1);
    let blocked = finish_blocked(
        &c.topic,
        &Blocked::Transient {
            message: "list: HTTP 500".into(),
            retry_after: None,
        },
        c.now,
        &PlanSettings::default(),
        1,
    );
    assert_eq!(ready_reason(&blocked.status).1, reason::CREATE_UNCERTAIN);
    c.topic.status = Some(blocked.status);
    c.now = ts(31);
    assert_eq!(c.decide(&Observation::default()), Decision::Describe);
}

#[test]
fn only_a_refusal_without_a_create_on_record_waits_for_an_existing_topic() {
    let waiting = |ready: &str, reason_: &str| KafkaTopicStatus {
        conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: READY.into(),
            status: ready.into(),
            reason: reason_.into(),
            message: String::new(),
            last_transition_time: Time(ts(5)),
            observed_generation: Some(1),
        }],
        ..Default::default()
    };
    let refused_exists = waiting("False", reason::WAITING_FOR_VISIBILITY);
    assert_eq!(waiting_for_existing(&refused_exists), Some(Time(ts(5))));
    // Our own create on record, or the topic seen: not waiting for someone else's topic.
    let ours = KafkaTopicStatus {
        create_requested_at: Some(Time(ts(0))),
        ..refused_exists.clone()
    };
    assert_eq!(waiting_for_existing(&ours), None);
    let seen = KafkaTopicStatus {
        partitions: Some(3),
        ..refused_exists.clone()
    };
    assert_eq!(waiting_for_existing(&seen), None);
    // Only a Ready=False WaitingForVisibility says so.
    assert_eq!(
        waiting_for_existing(&waiting("True", reason::WAITING_FOR_VISIBILITY)),
        None
    );
    assert_eq!(
        waiting_for_existing(&waiting("False", reason::CREATING)),
        None
    );
}

#[test]
fn an_uncertain_create_found_done_is_announced_as_created_once() {
    let mut c = Case::new(json!({}), None);
    let f = finish(c.decide(&Observation {
        created: Some(CreateOutcome::Uncertain {
            message: "HTTP 500".into(),
        }),
        ..Default::default()
    }));
    assert!(
        f.events.is_empty(),
        "nothing to announce yet: {:?}",
        f.events
    );
    c.topic.status = Some(f.status);
    c.now = ts(5);
    let found = Observation {
        listed: true,
        described: Some(Described::Found(parts(1, &[1001]))),
        described_now: true,
        ..Default::default()
    };
    let f = finish(c.decide(&found));
    assert_eq!(
        ready_reason(&f.status),
        ("True".into(), reason::CREATED.into())
    );
    assert_eq!(
        f.events
            .iter()
            .map(|e| (e.warning, e.reason))
            .collect::<Vec<_>>(),
        vec![(false, reason::CREATED)]
    );
    // Seen again: nothing new to say.
    c.topic.status = Some(f.status);
    c.now = ts(600);
    assert!(finish(c.decide(&found)).events.is_empty());
}

#[test]
fn an_uncertain_create_is_retried_at_the_visibility_timeout_when_that_comes_first() {
    let mut c = Case::new(json!({}), None);
    c.settings.visibility_timeout = Duration::from_secs(60);
    c.settings.uncertain_retry = Duration::from_secs(900);
    let f = finish(c.decide(&Observation {
        created: Some(CreateOutcome::Uncertain {
            message: "HTTP 502".into(),
        }),
        ..Default::default()
    }));
    c.topic.status = Some(f.status);
    c.now = ts(59);
    assert_eq!(
        ready_reason(&finish(c.decide(&Observation::default())).status).1,
        reason::CREATE_UNCERTAIN
    );
    c.now = ts(61);
    let not_there = Observation {
        described: Some(Described::NotFound),
        described_now: true,
        ..Default::default()
    };
    assert!(matches!(
        c.decide(&not_there),
        Decision::Create {
            recreation: false,
            ..
        }
    ));
}
