//! Present topics: drift, details, config state, looks, endpoint moves and the grace period.

use super::*;

#[test]
fn drift_is_reported_once_and_stays_ready() {
    let mut c = Case::new(json!({"partitions": 12, "replicationFactor": 3}), None);
    let obs = Observation {
        listed: true,
        described: Some(Described::Found(parts(6, &[1001, 1002]))),
        ..Default::default()
    };
    let f = finish(c.decide(&obs));
    assert_eq!(ready_reason(&f.status).0, "True");
    let drifted = find_condition(&f.status.conditions, DRIFTED)
        .cloned()
        .unwrap_or_else(|| panic!("no Drifted condition"));
    assert_eq!(drifted.status, "True");
    assert!(
        drifted
            .message
            .contains("spec.partitions is 12 but the cluster reports 6"),
        "{}",
        drifted.message
    );
    assert!(
        drifted
            .message
            .contains("spec.replicationFactor is 3 but the cluster reports 2"),
        "{}",
        drifted.message
    );
    assert!(
        f.events
            .iter()
            .any(|e| e.reason == reason::DRIFTED && e.warning)
    );
    c.topic.status = Some(f.status);
    let again = finish(c.decide(&obs));
    assert!(
        !again.events.iter().any(|e| e.reason == reason::DRIFTED),
        "Drifted is announced once"
    );
}

#[test]
fn under_replicated_and_offline_partitions_are_counted_and_announced_on_change() {
    let mut c = Case::new(json!({}), Some(present_status(3)));
    let mut p = parts(3, &[1001, 1002, 1003]);
    p[0].isr = vec![1001, 1003];
    p[1].leader = None;
    p[1].isr = vec![];
    let obs = Observation {
        listed: true,
        described: Some(Described::Found(p)),
        ..Default::default()
    };
    let f = finish(c.decide(&obs));
    assert_eq!(f.status.under_replicated_partitions, Some(2));
    assert_eq!(f.status.offline_partitions, Some(1));
    let reasons: Vec<_> = f.events.iter().map(|e| e.reason).collect();
    assert!(
        reasons.contains(&"UnderReplicated") && reasons.contains(&"PartitionsOffline"),
        "{reasons:?}"
    );
    assert_eq!(ready_reason(&f.status).0, "True");
    c.topic.status = Some(f.status);
    assert!(finish(c.decide(&obs)).events.is_empty());
}

#[test]
fn vanished_topic_is_recreated_only_after_list_and_describe_agree_for_the_grace_period() {
    let mut c = Case::new(json!({}), Some(present_status(3)));
    let ready = c.topic.status.clone().unwrap_or_default();
    c.settings.recreate_grace = Duration::from_secs(120);
    // Missing from the list: describe to confirm before anything else.
    assert_eq!(c.decide(&Observation::default()), Decision::Describe);
    let gone = Observation {
        described: Some(Described::NotFound),
        described_now: true,
        ..Default::default()
    };
    // The first miss changes nothing a user sees: only the time is noted.
    let f = finish(c.decide(&gone));
    assert_eq!(f.status.conditions, ready.conditions, "still Ready");
    assert_eq!(f.status.missing_since, Some(Time(ts(0))));
    assert_eq!(f.status.partitions, Some(3));
    assert!(f.events.is_empty());
    c.topic.status = Some(f.status);
    c.now = ts(60);
    let f = finish(c.decide(&gone));
    assert_eq!(
        ready_reason(&f.status),
        ("True".into(), reason::ADOPTED.into())
    );
    // Listed by one node while the other 404s on describe: not gone, the count starts over.
    let mixed = finish(c.decide(&Observation {
        listed: true,
        ..gone.clone()
    }));
    assert_eq!(mixed.status.missing_since, None);
    assert_eq!(mixed.status.conditions, ready.conditions);
    // Agreed gone through the whole grace period: TopicMissing, and on the next look that
    // still agrees, created again.
    c.now = ts(121);
    let missing = finish(c.decide(&gone));
    assert_eq!(
        ready_reason(&missing.status),
        ("False".into(), reason::TOPIC_MISSING.into())
    );
    assert_eq!(
        missing.status.partitions,
        Some(3),
        "the last observation is kept"
    );
    c.topic.status = Some(missing.status);
    c.now = ts(122);
    assert!(matches!(
        c.decide(&gone),
        Decision::Create {
            recreation: true,
            ..
        }
    ));
    // It came back instead: Ready again, missing_since cleared.
    let back = finish(c.decide(&Observation {
        listed: true,
        described: Some(Described::Found(parts(3, &[1001]))),
        ..Default::default()
    }));
    assert_eq!(back.status.missing_since, None);
    assert_eq!(ready_reason(&back.status).0, "True");
}

#[test]
fn observe_policy_never_creates() {
    let c = Case::new(json!({"managementPolicy": "Observe"}), None);
    let f = finish(c.decide(&Observation {
        described: Some(Described::NotFound),
        ..Default::default()
    }));
    assert_eq!(
        ready_reason(&f.status),
        ("False".into(), reason::TOPIC_NOT_FOUND.into())
    );
    // Someone has to create it: Stalled (kstatus "Failed"), not Reconciling.
    assert!(is_true(&f.status.conditions, STALLED));
    assert!(!is_true(&f.status.conditions, RECONCILING));
    // Looked for again on the list's cadence, not once per resync interval.
    assert_eq!(f.requeue_after, Duration::from_secs(30));
    assert!(f.events.is_empty());
    // It appears: Ready by itself, Stalled cleared, adopted.
    let mut appeared = Case::new(json!({"managementPolicy": "Observe"}), Some(f.status));
    appeared.now = ts(31);
    let f = finish(appeared.decide(&Observation {
        listed: true,
        described: Some(Described::Found(parts(3, &[1001, 1002]))),
        ..Default::default()
    }));
    assert_eq!(
        ready_reason(&f.status),
        ("True".into(), reason::ADOPTED.into())
    );
    assert!(!is_true(&f.status.conditions, STALLED));
    // One that existed is reported gone only when list and describe agree through the
    // grace period (a lagging management node proves nothing).
    let mut c = Case::new(
        json!({"managementPolicy": "Observe"}),
        Some(present_status(3)),
    );
    let ready = c.topic.status.clone().unwrap_or_default();
    let gone = Observation {
        described: Some(Described::NotFound),
        ..Default::default()
    };
    let f = finish(c.decide(&gone));
    assert_eq!(f.status.conditions, ready.conditions);
    c.topic.status = Some(f.status);
    c.now = ts(301);
    let f = finish(c.decide(&gone));
    assert_eq!(ready_reason(&f.status).1, reason::TOPIC_NOT_FOUND);
    assert!(is_true(&f.status.conditions, STALLED));
    assert!(
        matches!(c.decide(&gone), Decision::Finish(_)),
        "Observe never creates"
    );
}

#[test]
fn config_state_says_whether_spec_config_is_known_to_be_in_effect() {
    let config = json!({"config": {"retention.ms": 604800000}});
    let present = |c: &Case| {
        finish(c.decide(&Observation {
            listed: true,
            described: Some(Described::Found(parts(3, &[1001, 1002]))),
            ..Default::default()
        }))
    };
    // Created by this operator with spec.config: Applied.
    let mut created = Case::new(config.clone(), None);
    let mut requested = KafkaTopicStatus {
        create_requested_at: Some(Time(ts(0))),
        ..Default::default()
    };
    created.topic.status = Some(requested.clone());
    created.now = ts(2);
    let f = present(&created);
    assert_eq!(ready_reason(&f.status).1, reason::CREATED);
    assert_eq!(f.status.config_state, Some(ConfigState::Applied));
    let (status, _, message) = drifted(&f.status);
    assert_eq!(status, "False");
    assert!(message.contains(CONFIG_NOT_COMPARED), "{message}");
    assert!(!message.contains("the cluster matches"), "{message}");
    // Adopted (existed before): Unverifiable; the proxy cannot read config back.
    let f = present(&Case::new(config.clone(), None));
    assert_eq!(ready_reason(&f.status).1, reason::ADOPTED);
    assert_eq!(f.status.config_state, Some(ConfigState::Unverifiable));
    assert!(drifted(&f.status).2.contains(CONFIG_NOT_COMPARED));
    // Drifted partitions with a config: the message still says config is not compared.
    let f = present(&Case::new(
        json!({"partitions": 6, "config": {"retention.ms": 604800000}}),
        None,
    ));
    let (status, _, message) = drifted(&f.status);
    assert_eq!(status, "True");
    assert!(message.contains("spec.partitions is 6"), "{message}");
    assert!(message.contains(CONFIG_NOT_COMPARED), "{message}");
    // Without spec.config there is nothing to report.
    requested.conditions.clear();
    let mut plain = Case::new(json!({}), Some(requested));
    plain.now = ts(2);
    let f = present(&plain);
    assert_eq!(f.status.config_state, None);
    assert_eq!(drifted(&f.status).2, "the cluster matches the spec");
    // Kept while the topic looks missing (nothing visible changes in the grace period).
    let mut c = Case::new(config, Some(present(&created).status));
    c.now = ts(10);
    let f = finish(c.decide(&Observation {
        described: Some(Described::NotFound),
        ..Default::default()
    }));
    assert_eq!(f.status.config_state, Some(ConfigState::Applied));
}

fn drifted(status: &KafkaTopicStatus) -> (String, String, String) {
    find_condition(&status.conditions, DRIFTED)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

#[test]
fn same_inputs_give_an_identical_status_so_nothing_is_written() {
    let mut c = Case::new(json!({}), Some(present_status(3)));
    let obs = Observation {
        listed: true,
        described: Some(Described::Found(parts(3, &[1001, 1002, 1003]))),
        ..Default::default()
    };
    let first = finish(c.decide(&obs)).status;
    c.topic.status = Some(first.clone());
    c.now = ts(5000);
    assert_eq!(finish(c.decide(&obs)).status, first);
}

#[test]
fn partition_details_are_capped() {
    let c = Case::new(json!({}), None);
    let f = finish(c.decide(&Observation {
        listed: true,
        described: Some(Described::Found(parts(1001, &[1001]))),
        ..Default::default()
    }));
    assert_eq!(f.status.partitions, Some(1001));
    assert_eq!(f.status.partition_details, None);
    assert_eq!(f.status.partition_details_truncated, Some(true));
}

#[test]
fn replica_lists_and_the_details_size_are_bounded() {
    let wide = |n: usize, replicas: usize| -> Vec<PartitionDetail> {
        (0..n)
            .map(|i| PartitionDetail {
                partition: i32::try_from(i).unwrap_or(i32::MAX),
                leader: Some(1),
                replicas: (0..replicas as i32).collect(),
                isr: (0..replicas as i32).collect(),
            })
            .collect()
    };
    // 40 replicas each: lists cut to 32, flagged; counts from the full answer.
    let (shown, cut) = bounded_details(&wide(3, 40));
    let shown = shown.expect("small enough to show");
    assert!(cut);
    assert!(shown.iter().all(
        |p| p.replicas.len() == MAX_REPLICAS_IN_STATUS && p.isr.len() == MAX_REPLICAS_IN_STATUS
    ));
    assert_eq!(summarize(&wide(3, 40)).replication_factor, 40);
    // Within bounds: shown in full, not flagged.
    assert_eq!(bounded_details(&wide(3, 3)), (Some(wide(3, 3)), false));
    // 1000 partitions of 32 large broker ids would be ~700 KB: omitted, flagged.
    let mut big = wide(1000, 32);
    for p in &mut big {
        p.replicas = vec![i32::MAX; 32];
        p.isr = vec![i32::MAX; 32];
    }
    assert_eq!(bounded_details(&big), (None, true));
    assert!(serde_json::to_vec(&wide(1000, 3)).expect("json").len() < PARTITION_DETAILS_BUDGET);
}

#[test]
fn spec_violations_found_at_runtime_are_invalid_spec() {
    let mut status = present_status(3);
    status.topic_name = Some("orders.v0".into());
    let t = topic(json!({}), Some(status));
    assert!(
        validate(&t)
            .err()
            .unwrap_or_default()
            .contains("cannot be renamed")
    );
    let mut status = present_status(3);
    status.proxy = Some("other/default".into());
    let t = topic(json!({}), Some(status));
    assert!(
        validate(&t)
            .err()
            .unwrap_or_default()
            .contains("spec.proxyRef")
    );
    let t = topic(json!({"config": {"retention.ms": {"x": 1}}}), None);
    assert!(
        validate(&t)
            .err()
            .unwrap_or_default()
            .starts_with("spec.config.retention.ms")
    );
    // Config outside Kafka's topic-level table (docs/topic-config.md): an unknown name or
    // a value no supported version accepts.
    let t = topic(json!({"config": {"retention.msec": 1000}}), None);
    assert!(
        validate(&t)
            .err()
            .unwrap_or_default()
            .starts_with("spec.config.retention.msec: not a topic-level config")
    );
    let t = topic(json!({"config": {"cleanup.policy": "compact,purge"}}), None);
    assert_eq!(
        validate(&t).err().as_deref(),
        Some("spec.config.cleanup.policy: must be a comma-separated list of compact, delete")
    );
    let t = topic(json!({"topicName": "a b"}), None);
    assert!(
        validate(&t)
            .err()
            .unwrap_or_default()
            .starts_with("spec.topicName")
    );
}

const ENDPOINT: &str = "https://c-kafkarest.example";

fn look(at: Timestamp) -> LastLook {
    LastLook {
        at,
        endpoint: ENDPOINT.into(),
    }
}

#[test]
fn a_triggered_reconcile_reuses_a_recent_description() {
    let mut c = Case::new(json!({"partitions": 3}), Some(present_status(3)));
    let seen = parts(3, &[1001, 1002, 1003]);
    c.last_look = Some(look(ts(0)));
    c.now = ts(100);
    let listed = Observation {
        listed: true,
        ..Default::default()
    };
    let f = finish(c.decide(&listed));
    assert_eq!(Some(&f.status), c.topic.status.as_ref(), "nothing to write");
    assert!(f.events.is_empty());
    assert_eq!(f.look, LookUpdate::Keep);
    // Due when the description's lifetime (resync less its 10 % jitter) runs out.
    assert_eq!(f.requeue_after, Duration::from_secs(540 - 100));
    // At the resync it is described again, and the new description remembered.
    c.now = ts(540);
    assert_eq!(c.decide(&listed), Decision::Describe);
    let f = finish(c.decide(&Observation {
        listed: true,
        described: Some(Described::Found(seen.clone())),
        described_now: true,
        ..Default::default()
    }));
    assert_eq!(f.look, LookUpdate::Remember(Box::new(look(ts(540)))));
    // Not listed: the description proves nothing about now.
    c.now = ts(541);
    assert_eq!(c.decide(&Observation::default()), Decision::Describe);
    let f = finish(c.decide(&Observation {
        described: Some(Described::NotFound),
        described_now: true,
        ..Default::default()
    }));
    assert_eq!(f.look, LookUpdate::Forget);
}

#[test]
fn after_a_restart_a_current_ready_topic_is_described_at_its_share_of_the_resync() {
    let mut c = Case::new(json!({"partitions": 3}), Some(present_status(3)));
    c.first_look_after = Some(Duration::from_secs(123));
    let listed = Observation {
        listed: true,
        ..Default::default()
    };
    let f = finish(c.decide(&listed));
    assert_eq!(Some(&f.status), c.topic.status.as_ref(), "nothing to write");
    assert_eq!(f.requeue_after, Duration::from_secs(123));
    let LookUpdate::Remember(inherited) = f.look else {
        panic!("the inherited status is remembered: {:?}", f.look);
    };
    assert_eq!(inherited.endpoint, ENDPOINT);
    // A reconcile triggered before then (a Secret rotation) still costs no describe …
    c.last_look = Some(*inherited);
    c.first_look_after = None;
    c.now = ts(100);
    let f = finish(c.decide(&listed));
    assert_eq!(f.requeue_after, Duration::from_secs(23));
    assert_eq!(f.look, LookUpdate::Keep);
    // … and at its time it is described.
    c.now = ts(123);
    assert_eq!(c.decide(&listed), Decision::Describe);
    // A topic missing from the first list is looked at at once.
    c.last_look = None;
    c.first_look_after = Some(Duration::from_secs(123));
    c.now = ts(0);
    assert_eq!(c.decide(&Observation::default()), Decision::Describe);
}

#[test]
fn only_a_current_ready_status_stands_in_for_a_describe() {
    let listed = Observation {
        listed: true,
        ..Default::default()
    };
    // A spec change the previous process did not see yet.
    let mut c = Case::new(json!({"partitions": 3}), Some(present_status(3)));
    c.topic.metadata.generation = Some(2);
    c.first_look_after = Some(Duration::from_secs(5));
    assert_eq!(c.decide(&listed), Decision::Describe);
    // Not Ready (e.g. Stalled on credentials before the restart).
    let mut stalled = present_status(3);
    stalled.conditions.retain(|c| c.type_ != READY);
    let c2 = Case {
        first_look_after: Some(Duration::from_secs(5)),
        ..Case::new(json!({"partitions": 3}), Some(stalled))
    };
    assert_eq!(c2.decide(&listed), Decision::Describe);
    // A topic that looked missing before the restart.
    let mut missing = present_status(3);
    missing.missing_since = Some(Time(ts(-1)));
    let c3 = Case {
        first_look_after: Some(Duration::from_secs(5)),
        ..Case::new(json!({"partitions": 3}), Some(missing))
    };
    assert_eq!(c3.decide(&listed), Decision::Describe);
    // Ready but retrying after a failure when the previous process stopped.
    let retrying = finish_blocked(
        &topic(json!({"partitions": 3}), Some(present_status(3))),
        &Blocked::Transient {
            message: "the proxy failed (HTTP 500)".into(),
            retry_after: None,
        },
        ts(1),
        &PlanSettings::default(),
        1,
    )
    .status;
    let c4 = Case {
        first_look_after: Some(Duration::from_secs(5)),
        ..Case::new(json!({"partitions": 3}), Some(retrying))
    };
    assert_eq!(c4.decide(&listed), Decision::Describe);
}

#[test]
fn a_new_endpoint_adopts_the_topic_there_at_once_keeping_ready_since() {
    let before = present_status(3);
    let mut moved = before.clone();
    moved.proxy_endpoint = Some("https://old-kafkarest.example".into());
    moved.create_requested_at = Some(Time(ts(-50)));
    let mut c = Case::new(json!({"partitions": 3}), Some(moved));
    // A description of the old cluster is not reused.
    c.last_look = Some(LastLook {
        endpoint: "https://old-kafkarest.example".into(),
        ..look(ts(0))
    });
    c.now = ts(10);
    let listed = Observation {
        listed: true,
        ..Default::default()
    };
    assert_eq!(c.decide(&listed), Decision::Describe);
    let f = finish(c.decide(&Observation {
        listed: true,
        described: Some(Described::Found(parts(3, &[4, 5, 6]))),
        described_now: true,
        ..Default::default()
    }));
    assert_eq!(
        ready_reason(&f.status),
        ("True".into(), reason::ADOPTED.into())
    );
    assert_eq!(f.status.proxy_endpoint.as_deref(), Some(ENDPOINT));
    assert_eq!(f.status.create_requested_at, None);
    assert_eq!(
        f.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
        vec![reason::ADOPTED]
    );
    let since = |s: &KafkaTopicStatus| {
        find_condition(&s.conditions, READY).map(|c| c.last_transition_time.clone())
    };
    assert_eq!(since(&f.status), since(&before), "Ready all along");
}

#[test]
fn a_new_endpoint_without_the_topic_creates_it_without_grace_or_recreation() {
    let mut moved = present_status(3);
    moved.proxy_endpoint = Some("https://old-kafkarest.example".into());
    let c = Case::new(json!({"partitions": 3}), Some(moved.clone()));
    match c.decide(&Observation::default()) {
        Decision::Create { recreation, .. } => assert!(!recreation),
        other => panic!("expected a create at once, got {other:?}"),
    }
    // Policy Observe: reported absent at once, nothing created.
    let c = Case::new(
        json!({"partitions": 3, "managementPolicy": "Observe"}),
        Some(moved),
    );
    let f = finish(c.decide(&Observation::default()));
    assert_eq!(ready_reason(&f.status).1, reason::TOPIC_NOT_FOUND);
}

#[test]
fn waiting_messages_carry_no_times_so_polling_writes_nothing() {
    // Every poll while waiting, and every uncertain wait, produces the same status.
    let mut c = Case::new(json!({}), None);
    let uncertain = finish(c.decide(&Observation {
        created: Some(CreateOutcome::Uncertain {
            message: "HTTP 500: trace 1234 at 10:00:01".into(),
        }),
        ..Default::default()
    }))
    .status;
    let message =
        |s: &KafkaTopicStatus| find_condition(&s.conditions, READY).map(|c| c.message.clone());
    assert!(!message(&uncertain).unwrap_or_default().contains("1234"));
    c.topic.status = Some(uncertain.clone());
    c.now = ts(1);
    assert_eq!(finish(c.decide(&Observation::default())).status, uncertain);

    let mut c = Case::new(json!({}), None);
    let created = finish(c.decide(&Observation {
        created: Some(CreateOutcome::Accepted),
        ..Default::default()
    }))
    .status;
    c.topic.status = Some(created);
    c.now = ts(4);
    let waiting = finish(c.decide(&Observation::default())).status;
    c.topic.status = Some(waiting.clone());
    for t in [5, 17, 90, 400] {
        c.now = ts(t);
        assert_eq!(finish(c.decide(&Observation::default())).status, waiting);
    }
}

#[test]
fn a_create_whose_recording_failed_is_not_sent_again_before_its_time() {
    // Accepted: waits for visibility like a recorded one.
    let mut c = Case::new(json!({}), None);
    c.sent_create = Some(SentCreate {
        at: ts(0),
        uncertain: false,
    });
    c.now = ts(1);
    let f = finish(c.decide(&Observation::default()));
    assert_eq!(f.status.create_requested_at, Some(Time(ts(0))));
    assert!(is_true(&f.status.conditions, RECONCILING));
    // Without a clear answer: uncertain, and tried again only after --uncertain-retry.
    c.sent_create = Some(SentCreate {
        at: ts(0),
        uncertain: true,
    });
    let f = finish(c.decide(&Observation::default()));
    assert_eq!(ready_reason(&f.status).1, reason::CREATE_UNCERTAIN);
    c.now = ts(31);
    assert_eq!(c.decide(&Observation::default()), Decision::Describe);
    // A status that records a create (or the topic) wins over the memory.
    let c = Case {
        sent_create: Some(SentCreate {
            at: ts(0),
            uncertain: true,
        }),
        ..Case::new(json!({"partitions": 3}), Some(present_status(3)))
    };
    assert_eq!(
        c.decide(&Observation {
            listed: true,
            ..Default::default()
        }),
        Decision::Describe
    );
    // The adopted topic stays adopted: no create is recorded for it.
    let f = finish(c.decide(&Observation {
        listed: true,
        described: Some(Described::Found(parts(3, &[1001, 1002, 1003]))),
        described_now: true,
        ..Default::default()
    }));
    assert_eq!(f.status.create_requested_at, None);
    assert_eq!(ready_reason(&f.status).1, reason::ADOPTED);
    // An uncertain create that failed to be recorded after a transient failure: the memory,
    // not the transient failure, says what the topic is waiting for.
    let mut retrying = Case::new(json!({}), None).topic;
    retrying.status = None;
    let blocked = finish_blocked(
        &retrying,
        &Blocked::Transient {
            message: "the proxy failed (HTTP 500)".into(),
            retry_after: None,
        },
        ts(0),
        &PlanSettings::default(),
        1,
    );
    assert_eq!(ready_reason(&blocked.status).1, reason::RETRYING);
    let mut c = Case::new(json!({}), Some(blocked.status));
    c.sent_create = Some(SentCreate {
        at: ts(0),
        uncertain: true,
    });
    c.now = ts(1);
    let f = finish(c.decide(&Observation::default()));
    assert_eq!(ready_reason(&f.status).1, reason::CREATE_UNCERTAIN);
    assert_eq!(
        f.status
            .conditions
            .iter()
            .filter(|c| c.type_ == READY)
            .count(),
        1
    );
}

#[test]
fn a_reused_description_does_not_renew_the_look() {
    let mut c = Case::new(json!({"partitions": 3}), Some(present_status(3)));
    c.last_look = Some(LastLook {
        at: ts(0),
        endpoint: "https://c-kafkarest.example".into(),
    });
    c.now = ts(10);
    let reused = Observation {
        listed: true,
        described: Some(Described::Found(parts(3, &[1001, 1002, 1003]))),
        described_now: false,
        ..Default::default()
    };
    assert_eq!(finish(c.decide(&reused)).look, LookUpdate::Keep);
    let fresh = Observation {
        described_now: true,
        ..reused
    };
    assert_eq!(
        finish(c.decide(&fresh)).look,
        LookUpdate::Remember(Box::new(LastLook {
            at: ts(10),
            endpoint: "https://c-kafkarest.example".into(),
        }))
    );
}

#[test]
fn a_fresh_description_wins_over_a_reusable_status() {
    let mut c = Case::new(json!({"partitions": 3}), Some(present_status(3)));
    c.last_look = Some(LastLook {
        at: ts(0),
        endpoint: "https://c-kafkarest.example".into(),
    });
    c.now = ts(10);
    // Someone added partitions out of band; this reconcile described the topic anyway (a
    // change of the spec triggered it): what it saw is what the status says.
    let f = finish(c.decide(&Observation {
        listed: true,
        described: Some(Described::Found(parts(6, &[1001, 1002, 1003]))),
        described_now: true,
        ..Default::default()
    }));
    assert_eq!(f.status.partitions, Some(6));
    assert!(is_true(&f.status.conditions, DRIFTED));
}

#[test]
fn a_look_at_another_endpoint_never_stands_in_for_a_describe() {
    let mut c = Case::new(json!({"partitions": 3}), Some(present_status(3)));
    c.last_look = Some(LastLook {
        at: ts(0),
        endpoint: "https://other-kafkarest.example".into(),
    });
    c.now = ts(10);
    let listed = Observation {
        listed: true,
        ..Default::default()
    };
    assert_eq!(c.decide(&listed), Decision::Describe);
}

#[test]
fn a_missing_topic_is_looked_at_four_times_per_grace_period_until_it_ends() {
    let grace = |secs| PlanSettings {
        recreate_grace: Duration::from_secs(secs),
        ..PlanSettings::default()
    };
    let s = |secs| Duration::from_secs(secs);
    // A quarter of the grace, at most what remains, between 1 and 30 s.
    assert_eq!(within_grace(&grace(20), s(0)), Some(s(5)));
    assert_eq!(within_grace(&grace(20), s(17)), Some(s(3)));
    assert_eq!(
        within_grace(&grace(20), Duration::from_millis(19_800)),
        Some(s(1))
    );
    assert_eq!(within_grace(&grace(600), s(0)), Some(s(30)));
    // The grace is over at its last instant.
    assert_eq!(within_grace(&grace(20), s(20)), None);
    assert_eq!(within_grace(&grace(20), s(21)), None);
}

#[test]
fn the_details_bounds_are_inclusive() {
    use crate::crd::{MAX_PARTITION_DETAILS, MAX_REPLICAS_IN_STATUS, PARTITION_DETAILS_BUDGET};
    // Exactly as many partitions as shown.
    let (details, cut) = bounded_details(&parts(MAX_PARTITION_DETAILS as i32, &[1]));
    assert_eq!(details.map(|d| d.len()), Some(MAX_PARTITION_DETAILS));
    assert!(!cut);
    // Exactly as many replicas per list as shown.
    let ids: Vec<i32> = (1..=MAX_REPLICAS_IN_STATUS as i32).collect();
    let (details, cut) = bounded_details(&parts(3, &ids));
    assert!(!cut);
    assert!(
        details
            .unwrap_or_default()
            .iter()
            .all(|p| p.replicas.len() == MAX_REPLICAS_IN_STATUS)
    );
    // Exactly the byte budget: shown; one byte more: not.
    let size = |p: &[PartitionDetail]| serde_json::to_vec(p).map_or(usize::MAX, |v| v.len());
    let ones = vec![1; MAX_REPLICAS_IN_STATUS];
    // Start below the answer (later partitions have longer numbers), then step up.
    let mut n = (PARTITION_DETAILS_BUDGET / (size(&parts(1, &ones)) + 3)) as i32 - 2;
    assert!(size(&parts(n, &ones)) <= PARTITION_DETAILS_BUDGET);
    while size(&parts(n + 1, &ones)) <= PARTITION_DETAILS_BUDGET {
        n += 1;
    }
    let mut exact = parts(n, &ones);
    // Lengthen broker ids of the last partition one digit at a time up to the budget.
    let last = exact.len() - 1;
    'fill: for i in 0..2 * MAX_REPLICAS_IN_STATUS {
        for _ in 0..8 {
            if size(&exact) == PARTITION_DETAILS_BUDGET {
                break 'fill;
            }
            let list = if i < MAX_REPLICAS_IN_STATUS {
                &mut exact[last].replicas
            } else {
                &mut exact[last].isr
            };
            let id = &mut list[i % MAX_REPLICAS_IN_STATUS];
            *id = *id * 10 + 1;
        }
    }
    assert_eq!(size(&exact), PARTITION_DETAILS_BUDGET);
    let (details, cut) = bounded_details(&exact);
    assert!(details.is_some() && !cut, "the budget itself is allowed");
    exact[0].replicas[0] = 11;
    let (details, cut) = bounded_details(&exact);
    assert!(details.is_none() && cut, "one byte over the budget is not");
}
