//! The planner: `plan::decide` and `plan::finish_blocked` on arbitrary inputs.

use super::*;

// ---------------------------------------------------------------------------------------------
// (d) plan::decide and plan::finish_blocked
// ---------------------------------------------------------------------------------------------

const BASE_SECOND: i64 = 1_800_000_000;

pub(crate) fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(BASE_SECOND + secs).unwrap_or_default()
}

/// Instants within about three hours of the base, so that every threshold is crossed.
fn instant() -> impl Strategy<Value = Timestamp> {
    (-10_000i64..10_000).prop_map(at)
}

fn reason_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Created",
            "Adopted",
            "Creating",
            "WaitingForVisibility",
            "CreateUncertain",
            "NotVisible",
            "CreateRejected",
            "TopicNotFound",
            "TopicMissing",
            "SecretNotFound",
            "Retrying",
            "Reconciled",
            "Paused",
            "InSync",
            "Drifted",
            "InvalidSpec",
        ])
        .prop_map(str::to_string),
        "[A-Za-z]{0,12}",
    ]
}

/// Conditions with unique types (the CRD declares the list a map keyed by type).
fn conditions() -> impl Strategy<Value = Vec<Condition>> {
    let one = |type_: &'static str| {
        prop::option::of((
            prop::sample::select(vec!["True", "False", "Unknown"]),
            reason_text(),
            ".{0,16}",
            instant(),
            prop::option::of(0i64..5),
        ))
        .prop_map(move |c| {
            c.map(|(status, reason, message, ltt, generation)| Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason,
                message,
                observed_generation: generation,
                last_transition_time: Time(ltt),
            })
        })
    };
    (
        one(READY),
        one(RECONCILING),
        one(STALLED),
        one(DRIFTED),
        one(PAUSED),
        one("SomethingElse"),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(a, b, c, d, e, f, rotate)| {
            let mut list: Vec<Condition> = [a, b, c, d, e, f].into_iter().flatten().collect();
            if !list.is_empty() {
                let by = rotate.index(list.len());
                list.rotate_left(by);
            }
            list
        })
}

fn partition(id: i32, replicas: Vec<i32>, isr_len: usize, leader: bool) -> PartitionDetail {
    PartitionDetail {
        partition: id,
        leader: if leader {
            replicas.first().copied()
        } else {
            None
        },
        isr: replicas.iter().take(isr_len).copied().collect(),
        replicas,
    }
}

/// Small arbitrary partition lists, and large regular ones around the 1000-entry cap.
fn partitions() -> impl Strategy<Value = Vec<PartitionDetail>> {
    prop_oneof![
        4 => prop::collection::vec(
            (any::<i32>(), prop::collection::vec(any::<i32>(), 0..4), 0usize..4, any::<bool>())
                .prop_map(|(id, r, isr, leader)| partition(id, r, isr, leader)),
            0..8,
        ),
        1 => (995usize..1010).prop_map(|n| {
            (0..n)
                .map(|p| partition(i32::try_from(p).unwrap_or(i32::MAX), vec![1001, 1002], 2, true))
                .collect()
        }),
    ]
}

pub(crate) fn previous_status() -> impl Strategy<Value = KafkaTopicStatus> {
    (
        (
            prop::option::of(0i64..5),
            prop::option::of(prop_oneof![Just("orders".to_string()), "[a-z]{1,6}"]),
            prop::option::of(prop_oneof![
                Just("team-a/default".to_string()),
                "[a-z]{1,6}/[a-z]{1,6}"
            ]),
            prop::option::of(prop_oneof![1..64i32, any::<i32>()]),
            prop::option::of(prop_oneof![1..4i32, any::<i32>()]),
            prop::option::of(any::<i32>()),
            prop::option::of(any::<i32>()),
        ),
        (
            prop::option::of(partitions().prop_map(|mut p| {
                p.truncate(MAX_PARTITION_DETAILS);
                p
            })),
            prop::option::of(any::<bool>()),
            prop::option::of(instant().prop_map(Time)),
            prop::option::of(instant().prop_map(Time)),
            conditions(),
            prop::option::of(prop::sample::select(vec![
                ConfigState::Applied,
                ConfigState::Unverifiable,
            ])),
        ),
    )
        .prop_map(
            |(
                (
                    observed_generation,
                    topic_name,
                    proxy,
                    partitions,
                    replication_factor,
                    urp,
                    offline,
                ),
                (
                    partition_details,
                    truncated,
                    create_requested_at,
                    missing_since,
                    conditions,
                    config_state,
                ),
            )| KafkaTopicStatus {
                observed_generation,
                topic_name,
                proxy,
                proxy_endpoint: Some("https://c-kafkarest.example".into()),
                partitions,
                replication_factor,
                under_replicated_partitions: urp,
                offline_partitions: offline,
                partition_details,
                partition_details_truncated: truncated,
                create_requested_at,
                missing_since,
                config_state,
                conditions,
            },
        )
}

fn desired_topic() -> impl Strategy<Value = DesiredTopic> {
    (
        prop::option::of(prop_oneof![1..64i32, any::<i32>()]),
        prop::option::of(prop_oneof![1..4i32, any::<i32>()]),
        prop::sample::select(vec![ManagementPolicy::Create, ManagementPolicy::Observe]),
    )
        .prop_map(|(partitions, replication_factor, policy)| DesiredTopic {
            topic_name: "orders".into(),
            proxy: "team-a/default".into(),
            partitions,
            replication_factor,
            config: serde_json::Map::new(),
            policy,
        })
}

fn settings() -> impl Strategy<Value = PlanSettings> {
    let secs = || prop_oneof![Just(0u64), 1u64..2_000, Just(600u64)].prop_map(Duration::from_secs);
    (secs(), secs(), secs(), secs()).prop_map(|(v, r, s, u)| PlanSettings {
        visibility_timeout: v,
        recreate_grace: r,
        resync_interval: s,
        uncertain_retry: u,
    })
}

fn described() -> impl Strategy<Value = Described> {
    prop_oneof![
        partitions().prop_map(Described::Found),
        Just(Described::NotFound),
    ]
}

fn create_outcome() -> impl Strategy<Value = CreateOutcome> {
    prop_oneof![
        Just(CreateOutcome::Accepted),
        (".{0,16}", refusal())
            .prop_map(|(message, cause)| CreateOutcome::Rejected { message, cause }),
        ".{0,16}".prop_map(|message| CreateOutcome::Uncertain { message }),
    ]
}

fn refusal() -> impl Strategy<Value = Refusal> {
    prop_oneof![
        Just(Refusal::Exists),
        Just(Refusal::Config { key: None }),
        Just(Refusal::Config {
            key: Some("retention.ms".to_string())
        }),
        Just(Refusal::Request),
        Just(Refusal::Unclear),
    ]
}

fn observation() -> impl Strategy<Value = Observation> {
    (
        any::<bool>(),
        prop::option::of(described()),
        any::<bool>(),
        prop::option::of(create_outcome()),
    )
        .prop_map(|(listed, described, described_now, created)| Observation {
            listed,
            described,
            described_now,
            created,
        })
}

#[derive(Debug, Clone)]
struct Scene {
    generation: Option<i64>,
    desired: DesiredTopic,
    previous: KafkaTopicStatus,
    now: Timestamp,
    settings: PlanSettings,
}

impl Scene {
    fn input(&self) -> PlanInput<'_> {
        PlanInput {
            generation: self.generation,
            desired: &self.desired,
            proxy_endpoint: "https://c-kafkarest.example",
            previous: &self.previous,
            now: self.now,
            settings: &self.settings,
            last_look: None,
            first_look_after: None,
            sent_create: None,
            last_refused_create: None,
        }
    }
}

fn scene() -> impl Strategy<Value = Scene> {
    (
        prop::option::of(0i64..5),
        desired_topic(),
        previous_status(),
        instant(),
        settings(),
    )
        .prop_map(|(generation, desired, previous, now, settings)| Scene {
            generation,
            desired,
            previous,
            now,
            settings,
        })
}

/// The invariants every new status keeps, whatever led to it.
fn check_status(
    previous: &[Condition],
    status: &KafkaTopicStatus,
    generation: Option<i64>,
    now: Timestamp,
) -> Result<(), TestCaseError> {
    for (i, c) in status.conditions.iter().enumerate() {
        prop_assert!(
            c.status == "True" || c.status == "False",
            "condition {} has status {:?}",
            c.type_,
            c.status
        );
        prop_assert!(
            status.conditions[..i].iter().all(|o| o.type_ != c.type_),
            "condition {} appears twice",
            c.type_
        );
        prop_assert_eq!(c.observed_generation, generation);
        // lastTransitionTime moves exactly when the status changes.
        match find_condition(previous, &c.type_) {
            Some(p) if p.status == c.status => prop_assert_eq!(
                &c.last_transition_time,
                &p.last_transition_time,
                "{} kept its status {} but its transition time moved",
                c.type_,
                c.status
            ),
            _ => prop_assert_eq!(
                &c.last_transition_time,
                &Time(now),
                "{} changed status but its transition time is not now",
                c.type_
            ),
        }
    }
    for t in [READY, RECONCILING, STALLED] {
        prop_assert!(
            find_condition(&status.conditions, t).is_some(),
            "no {} condition",
            t
        );
    }
    prop_assert!(
        status
            .partition_details
            .as_ref()
            .is_none_or(|d| d.len() <= MAX_PARTITION_DETAILS),
        "{} partition details",
        status.partition_details.as_ref().map_or(0, Vec::len)
    );
    prop_assert_eq!(status.observed_generation, generation);
    Ok(())
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn decide_never_panics_and_every_finish_keeps_the_status_invariants(
        scene in scene(),
        obs in observation(),
    ) {
        let input = scene.input();
        let decision = plan::decide(&input, &obs);
        // Pure: the same inputs give the same decision.
        prop_assert_eq!(&plan::decide(&input, &obs), &decision);
        match &decision {
            Decision::Finish(f) => {
                check_status(&scene.previous.conditions, &f.status, scene.generation, scene.now)?;
                // A described topic is reported from that description (unless a create was just
                // accepted or is uncertain: then it is still waiting).
                if let Some(Described::Found(parts)) = &obs.described
                    && (obs.created.is_none() || matches!(obs.created, Some(CreateOutcome::Rejected { .. })))
                {
                    let expected = i32::try_from(parts.len()).unwrap_or(i32::MAX);
                    prop_assert_eq!(f.status.partitions, Some(expected));
                    if parts.len() > MAX_PARTITION_DETAILS {
                        prop_assert_eq!(f.status.partition_details.as_ref(), None);
                        prop_assert_eq!(f.status.partition_details_truncated, Some(true));
                    } else {
                        prop_assert_eq!(f.status.partition_details.as_ref().map(Vec::len), Some(parts.len()));
                    }
                }
                prop_assert_eq!(f.status.topic_name.as_deref(), Some("orders"));
                // Never a hot loop (the shortest poll, while a created topic is expected, is 0.5 s), never
                // later than the resync (or a minute while stalled).
                prop_assert!(f.requeue_after >= Duration::from_millis(500).min(scene.settings.resync_interval), "{:?}", f.requeue_after);
                prop_assert!(f.requeue_after <= scene.settings.resync_interval.max(Duration::from_secs(60)), "{:?}", f.requeue_after);
            }
            Decision::Describe => prop_assert!(obs.described.is_none(), "describe asked twice"),
            Decision::Create { request, .. } => {
                prop_assert!(obs.created.is_none(), "a second create in one reconcile");
                prop_assert_eq!(scene.desired.policy, ManagementPolicy::Create, "Observe never creates");
                prop_assert_eq!(&request.topic_name, "orders");
                prop_assert_eq!(request.partitions, scene.desired.partitions);
            }
        }
    }

    /// The reconciler's loop (`controller::topic`): observe the list, then describe and create as
    /// the plan asks, with arbitrary answers from the proxy. It settles within the loop's six
    /// rounds, sends at most one create, and describes again only after a refused create.
    #[test]
    fn a_reconcile_sends_at_most_one_create_and_settles(
        scene in scene(),
        listed in any::<bool>(),
        describes in prop::collection::vec(described(), 2),
        outcome in create_outcome(),
    ) {
        let input = scene.input();
        let mut obs = Observation { listed, ..Default::default() };
        let mut creates = 0;
        let mut describes_sent = 0;
        let mut finish: Option<Finish> = None;
        for _ in 0..6 {
            match plan::decide(&input, &obs) {
                Decision::Finish(f) => {
                    finish = Some(f);
                    break;
                }
                Decision::Describe => {
                    prop_assert!(describes_sent < describes.len(), "more than {} describes", describes.len());
                    obs.described = Some(describes[describes_sent].clone());
                    obs.described_now = true;
                    describes_sent += 1;
                }
                Decision::Create { .. } => {
                    creates += 1;
                    prop_assert!(creates <= 1, "a second create in one reconcile");
                    if matches!(outcome, CreateOutcome::Rejected { .. }) {
                        obs.described = None;
                    }
                    obs.created = Some(outcome.clone());
                }
            }
        }
        let finish = finish.ok_or_else(|| TestCaseError::fail("the reconcile did not settle"))?;
        check_status(&scene.previous.conditions, &finish.status, scene.generation, scene.now)?;
        if creates == 1 && !matches!(outcome, CreateOutcome::Rejected { .. }) {
            prop_assert_eq!(finish.status.create_requested_at, Some(Time(scene.now)));
        }
    }

    /// Feeding a Ready result back as the previous status, with the same observation at the same
    /// moment, gives the same status: a steady topic causes no status write.
    #[test]
    fn a_ready_topic_reaches_a_fixed_point(
        scene in scene(),
        parts in partitions(),
    ) {
        let obs = Observation {
            listed: true,
            described: Some(Described::Found(parts)),
            ..Default::default()
        };
        if let Decision::Finish(first) = plan::decide(&scene.input(), &obs) {
            let next = Scene { previous: first.status.clone(), ..scene.clone() };
            match plan::decide(&next.input(), &obs) {
                Decision::Finish(second) => {
                    prop_assert_eq!(&second.status, &first.status);
                    prop_assert!(second.events.is_empty(), "events repeated: {:?}", second.events);
                }
                other => prop_assert!(false, "second round: {:?}", other),
            }
        } else {
            prop_assert!(false, "a described topic must finish");
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// The same for every observation without a create: a second reconcile that sees the same
    /// thing at the same moment writes the same status, so nothing flaps. (An Observe topic with
    /// a create on record is the finding below.)
    #[test]
    fn every_settled_outcome_is_a_fixed_point(scene in scene(), obs in observation()) {
        let obs = Observation { created: None, ..obs };
        if scene.desired.policy == ManagementPolicy::Observe && scene.previous.create_requested_at.is_some() {
            return Ok(());
        }
        if let Decision::Finish(first) = plan::decide(&scene.input(), &obs) {
            let next = Scene { previous: first.status.clone(), ..scene.clone() };
            if let Decision::Finish(second) = plan::decide(&next.input(), &obs) {
                prop_assert_eq!(&second.status, &first.status);
            }
        }
    }

    /// Regression (found by these properties): a topic created under policy Create, then switched to Observe,
    /// then deleted outside the operator: the first reconcile reports TopicNotFound and drops the
    /// observed partitions, the next one then sees "a create on record, never observed" and
    /// reports NotVisible ("the proxy accepted the create … still checking") with a warning
    /// Event, although nothing is being created.
    #[test]

    fn an_observed_topic_that_vanished_stays_topic_not_found(
        scene in scene(),
        created in instant(),
        partitions in 1..64i32,
    ) {
        let mut scene = scene;
        scene.desired.policy = ManagementPolicy::Observe;
        scene.previous.create_requested_at = Some(Time(created));
        scene.previous.partitions = Some(partitions);
        let obs = Observation { described: Some(Described::NotFound), described_now: true, ..Default::default() };
        if let Decision::Finish(first) = plan::decide(&scene.input(), &obs) {
            let next = Scene { previous: first.status.clone(), ..scene.clone() };
            if let Decision::Finish(second) = plan::decide(&next.input(), &obs) {
                let reason = |s: &KafkaTopicStatus| find_condition(&s.conditions, READY).map(|c| c.reason.clone());
                prop_assert_eq!(reason(&second.status), reason(&first.status));
                prop_assert!(second.events.is_empty(), "{:?}", second.events);
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// The summary of a description counts what the partitions show, and Ready reports drift
    /// exactly when the spec asks for another partition count or replication factor.
    #[test]
    fn summaries_and_drift_follow_the_partitions(scene in scene(), parts in partitions()) {
        let s = plan::summarize(&parts);
        prop_assert_eq!(usize::try_from(s.partitions).ok(), Some(parts.len()));
        let min_rf = parts.iter().map(|p| p.replicas.len()).min().unwrap_or(0);
        prop_assert_eq!(usize::try_from(s.replication_factor).ok(), Some(min_rf));
        let urp = parts.iter().filter(|p| p.isr.len() < p.replicas.len()).count();
        let offline = parts.iter().filter(|p| p.leader.is_none()).count();
        prop_assert_eq!(usize::try_from(s.under_replicated).ok(), Some(urp));
        prop_assert_eq!(usize::try_from(s.offline).ok(), Some(offline));
        let drift = plan::drift(&scene.desired, &s);
        let expected = usize::from(scene.desired.partitions.is_some_and(|p| p != s.partitions))
            + usize::from(scene.desired.replication_factor.is_some_and(|rf| rf != s.replication_factor));
        prop_assert_eq!(drift.len(), expected);
        let obs = Observation { listed: true, described: Some(Described::Found(parts)), ..Default::default() };
        if let Decision::Finish(f) = plan::decide(&scene.input(), &obs) {
            let drifted = find_condition(&f.status.conditions, DRIFTED).map(|c| c.status.as_str());
            prop_assert_eq!(drifted, Some(if drift.is_empty() { "False" } else { "True" }));
            prop_assert_eq!(find_condition(&f.status.conditions, READY).map(|c| c.status.as_str()), Some("True"));
            prop_assert_eq!(f.status.under_replicated_partitions, Some(s.under_replicated));
            prop_assert_eq!(f.status.offline_partitions, Some(s.offline));
        } else {
            prop_assert!(false, "a described topic must finish");
        }
    }

    /// The backoff of consecutive failures starts at 1 s and grows (at least doubling) until
    /// it levels off, at minutes rather than seconds and within 5 min, and stays there: a
    /// constant, or one that stops growing early, fails.
    #[test]
    fn backoff_grows_and_stays_bounded(attempt in any::<u32>(), later in any::<u32>()) {
        prop_assert_eq!(plan::exponential_backoff(0), Duration::from_secs(1));
        let now = plan::exponential_backoff(attempt);
        let next = plan::exponential_backoff(attempt.saturating_add(1));
        prop_assert!(now >= Duration::from_secs(1));
        prop_assert!(now <= Duration::from_secs(300));
        if next == now {
            // The plateau: reached at minutes, and kept whatever the attempt.
            prop_assert!(now >= Duration::from_secs(120), "levels off at {:?}", now);
            prop_assert_eq!(plan::exponential_backoff(attempt.saturating_add(later)), now);
        } else {
            prop_assert!(next >= now * 2 || next == Duration::from_secs(300), "{:?} then {:?}", now, next);
        }
    }
}

fn blocked() -> impl Strategy<Value = Blocked> {
    let text = || ".{0,24}";
    prop_oneof![
        Just(Blocked::Paused),
        text().prop_map(Blocked::InvalidSpec),
        text().prop_map(Blocked::ProxyNotFound),
        text().prop_map(Blocked::ProxyNotAllowed),
        text().prop_map(|owner| Blocked::Conflict { owner }),
        text().prop_map(Blocked::SecretNotFound),
        text().prop_map(Blocked::CredentialsInvalid),
        text().prop_map(Blocked::AuthenticationFailed),
        text().prop_map(Blocked::Forbidden),
        (
            text(),
            prop::option::of((0u64..4_000).prop_map(Duration::from_millis))
        )
            .prop_map(|(message, retry_after)| Blocked::Transient {
                message,
                retry_after
            }),
    ]
}

fn topic_with(status: Option<KafkaTopicStatus>, generation: Option<i64>) -> KafkaTopic {
    let mut t = KafkaTopic::new("orders", Default::default());
    t.metadata.namespace = Some("team-a".into());
    t.metadata.generation = generation;
    t.status = status;
    t
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn finish_blocked_never_panics_and_keeps_the_status_invariants(
        status in prop::option::of(previous_status()),
        generation in prop::option::of(0i64..5),
        blocked in blocked(),
        now in instant(),
        settings in settings(),
        attempt in any::<u32>(),
    ) {
        let topic = topic_with(status.clone(), generation);
        let previous = status.unwrap_or_default();
        let f = plan::finish_blocked(&topic, &blocked, now, &settings, attempt);
        check_status(&previous.conditions, &f.status, generation, now)?;
        let paused = matches!(blocked, Blocked::Paused);
        prop_assert_eq!(find_condition(&f.status.conditions, PAUSED).is_some(), paused);
        // What was observed is kept: a blocked reconcile learned nothing new about the cluster.
        prop_assert_eq!(f.status.partitions, previous.partitions);
        prop_assert_eq!(&f.status.partition_details, &previous.partition_details);
        let was_ready = find_condition(&previous.conditions, READY).is_some_and(|c| c.status == "True");
        let ready = find_condition(&f.status.conditions, READY).is_some_and(|c| c.status == "True");
        match &blocked {
            Blocked::Paused | Blocked::Transient { .. } => prop_assert_eq!(ready, was_ready),
            _ => {
                prop_assert!(!ready);
                prop_assert!(find_condition(&f.status.conditions, STALLED).is_some_and(|c| c.status == "True"));
            }
        }
        // Requeue: never a hot loop, never longer than the longest wait the inputs name.
        let longest = [Duration::from_secs(300), settings.resync_interval]
            .into_iter()
            .chain(match &blocked {
                Blocked::Transient { retry_after, .. } => *retry_after,
                _ => None,
            })
            .max()
            .unwrap_or_default();
        prop_assert!(f.requeue_after <= longest, "{:?} > {:?}", f.requeue_after, longest);
        prop_assert!(
            f.requeue_after >= settings.resync_interval.min(Duration::from_secs(1)),
            "requeue {:?}", f.requeue_after
        );
    }

    /// The same blocked reason twice in a row: the second time writes the same status and
    /// publishes no Event, so a persistent problem is announced once.
    #[test]
    fn a_repeated_block_is_announced_once_and_writes_nothing_new(
        status in prop::option::of(previous_status()),
        blocked in blocked(),
        now in instant(),
        later in 0i64..5_000,
        settings in settings(),
        attempt in 0u32..20,
    ) {
        let topic = topic_with(status, Some(1));
        let first = plan::finish_blocked(&topic, &blocked, now, &settings, attempt);
        let again = topic_with(Some(first.status.clone()), Some(1));
        let later = Timestamp::from_second(now.as_second() + later).unwrap_or(now);
        // A transient block names its retry delay, which grows with the attempt; every other
        // status is independent of the attempt.
        let next_attempt = if matches!(blocked, Blocked::Transient { .. }) { attempt } else { attempt + 1 };
        let second = plan::finish_blocked(&again, &blocked, later, &settings, next_attempt);
        prop_assert!(second.events.is_empty(), "announced again: {:?}", second.events);
        prop_assert_eq!(&second.status, &first.status);
    }
}
