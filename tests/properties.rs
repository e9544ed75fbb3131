//! Property tests and decoder fuzzing: generated inputs, including hostile ones, against the
//! pure parts of the operator.
//!
//! - spec checks: `validate_topic_name`, `normalize_config` and `plan::validate` compared with
//!   independent reference predicates and with the CRD's own admission rules;
//! - the planner: `plan::decide` and `plan::finish_blocked` on arbitrary observations and
//!   previous statuses, driven through the same loop the reconciler runs;
//! - the decoders of proxy and token responses on arbitrary bytes, valid encodings and their
//!   truncations.
//!
//! Case counts are modest so the file runs in seconds in a debug build; `PROPTEST_CASES=N`
//! overrides them for a longer run. `docs/reliability.md` describes what each group covers.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use hdinsight_topic_operator::auth::{AuthError, decode_rejection, decode_success};
use hdinsight_topic_operator::controller::plan::{
    self, Blocked, CreateOutcome, Decision, Described, DesiredTopic, Finish, Observation,
    PlanInput, PlanSettings, Refusal,
};
use hdinsight_topic_operator::crd::{
    ConfigState, DRIFTED, KafkaTopic, KafkaTopicStatus, MAX_PARTITION_DETAILS, MAX_TOPIC_NAME_LEN,
    ManagementPolicy, PAUSED, PartitionDetail, READY, RECONCILING, STALLED, find_condition,
    normalize_config, validate_topic_name,
};
use hdinsight_topic_operator::proxy::{
    BrokerEndpoint, ConsumeRecord, PartitionMetadata, ProxyError, TopicCreationRecord,
    TopicPartitions, decode_brokers, decode_consume, decode_partition, decode_text,
    decode_topic_list, decode_topic_partitions,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::CustomResourceExt;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// `n` cases, or `PROPTEST_CASES` when it is set (for a longer run).
fn cases(n: u32) -> Config {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    Config::with_cases(n)
}

// ---------------------------------------------------------------------------------------------
// Shared generators
// ---------------------------------------------------------------------------------------------

/// Strings near and far from valid Kafka topic names.
fn name_candidates() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._-]{0,40}",
        "[a-zA-Z0-9._-]{240,255}",
        Just(".".to_string()),
        Just("..".to_string()),
        Just("...".to_string()),
        Just(String::new()),
        any::<String>(),
        // A valid name with one arbitrary character inside.
        (
            "[a-zA-Z0-9._-]{0,20}",
            any::<char>(),
            "[a-zA-Z0-9._-]{0,20}"
        )
            .prop_map(|(a, c, b)| format!("{a}{c}{b}")),
        // Multi-byte characters: the length limit is about characters, not bytes.
        "[äöü漢a]{120,260}",
    ]
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(".{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Config keys: mostly Kafka-like names, sometimes anything.
fn config_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9][a-zA-Z0-9._-]{0,30}",
        1 => ".{0,12}",
    ]
}

/// Config values: mostly scalars, sometimes nested or null.
fn config_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => json_leaf().prop_filter("scalar", |v| !v.is_null()),
        1 => json_value(),
    ]
}

fn config_map() -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop::collection::btree_map(config_key(), config_value(), 0..8)
}

fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

// ---------------------------------------------------------------------------------------------
// (a) validate_topic_name
// ---------------------------------------------------------------------------------------------

/// Kafka's rule, written independently of the operator: 1 to 249 characters from
/// `[a-zA-Z0-9._-]`, and not "." or "..".
fn reference_topic_name_ok(name: &str) -> bool {
    let len = name.chars().count();
    (1..=249).contains(&len)
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn topic_names_are_accepted_exactly_when_kafka_accepts_them(name in name_candidates()) {
        let verdict = validate_topic_name(&name);
        prop_assert_eq!(verdict.is_ok(), reference_topic_name_ok(&name), "{:?}: {:?}", name, verdict);
        if let Err(message) = verdict {
            prop_assert!(message.starts_with("the topic name"), "{}", message);
            if name.chars().count() > MAX_TOPIC_NAME_LEN {
                prop_assert!(message.contains("249"), "{}", message);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (b) normalize_config
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn config_normalisation_keeps_scalars_and_names_the_first_bad_key(config in config_map()) {
        let result = normalize_config(&config);
        let first_bad = config.iter().find(|(_, v)| !is_scalar(v)).map(|(k, _)| k);
        match (result, first_bad) {
            (Ok(out), None) => {
                prop_assert_eq!(out.len(), config.len());
                for (key, input) in &config {
                    let output = out.get(key);
                    prop_assert!(output.is_some(), "key {:?} lost", key);
                    let output = output.cloned().unwrap_or(Value::Null);
                    match input {
                        Value::String(_) => prop_assert_eq!(&output, input),
                        Value::Bool(b) => prop_assert_eq!(output, Value::String(b.to_string())),
                        Value::Number(n) if n.is_i64() || n.is_u64() => prop_assert_eq!(&output, input),
                        Value::Number(n) => {
                            // Other numbers become text that reads back as the same number.
                            let text = output.as_str().map(str::to_string);
                            prop_assert!(text.is_some(), "{:?} became {:?}", n, output);
                            let parsed = text.unwrap_or_default().parse::<f64>().ok();
                            prop_assert_eq!(parsed, n.as_f64());
                        }
                        other => prop_assert!(false, "{:?} was accepted", other),
                    }
                }
            }
            (Err(message), Some(key)) => {
                let prefix = format!("spec.config.{key}:");
                prop_assert!(message.starts_with(&prefix), "{:?} does not start with {:?}", message, prefix);
            }
            (result, bad) => prop_assert!(false, "result {:?} but first bad key {:?}", result, bad),
        }
    }

    /// What the proxy receives: the normalised config in a `TopicCreationRecord` survives the
    /// JSON encoding unchanged, every value a string or an integer.
    #[test]
    fn normalised_config_reaches_the_proxy_unchanged(config in config_map()) {
        if let Ok(out) = normalize_config(&config) {
            let record = TopicCreationRecord {
                partition_count: Some(1),
                replication_factor: None,
                topic_properties: out.clone().into_iter().collect(),
            };
            let body = bytes_of(&record);
            let back: Result<TopicCreationRecord, _> = serde_json::from_slice(&body);
            prop_assert!(back.is_ok(), "{:?}", back.err());
            let back = back.unwrap_or_default();
            prop_assert_eq!(&back, &record);
            for v in back.topic_properties.values() {
                prop_assert!(v.is_string() || v.is_i64() || v.is_u64(), "{:?}", v);
            }
        }
    }

    #[test]
    fn config_normalisation_is_idempotent(config in config_map()) {
        if let Ok(once) = normalize_config(&config) {
            let again = normalize_config(&once.clone().into_iter().collect());
            prop_assert_eq!(again, Ok(once));
        }
    }

    #[test]
    fn config_normalisation_never_panics_on_any_json(value in json_value(), key in ".{0,10}") {
        let config: BTreeMap<String, Value> = [(key, value)].into_iter().collect();
        let _ = normalize_config(&config);
    }
}

// ---------------------------------------------------------------------------------------------
// (c) plan::validate against the CRD's admission rules
// ---------------------------------------------------------------------------------------------

fn topic_schema() -> Value {
    serde_json::to_value(KafkaTopic::crd())
        .map(|crd| crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone())
        .unwrap_or(Value::Null)
}

/// The structural (OpenAPI) constraints of `spec`, as the generated CRD states them. The test
/// `reference_schema_matches_the_generated_crd` keeps this in step with the CRD.
fn schema_admits(spec: &Value) -> bool {
    let chars = |v: &Value| v.as_str().map(|s| s.chars().count());
    let int_in = |v: &Value, lo: i64, hi: i64| {
        v.is_null() || v.as_i64().is_some_and(|n| (lo..=hi).contains(&n))
    };
    let topic_name_ok = match &spec["topicName"] {
        Value::Null => true,
        Value::String(s) => {
            (1..=249).contains(&s.chars().count())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        }
        _ => false,
    };
    let proxy_ok = match &spec["proxyRef"] {
        Value::Null => true,
        r => {
            chars(&r["name"]).is_some_and(|n| (1..=253).contains(&n))
                && (r["namespace"].is_null()
                    || chars(&r["namespace"]).is_some_and(|n| (1..=63).contains(&n)))
        }
    };
    let config_ok = spec["config"].as_object().is_none_or(|m| m.len() <= 100);
    topic_name_ok
        && proxy_ok
        && config_ok
        && int_in(&spec["partitions"], 1, 100_000)
        && int_in(&spec["replicationFactor"], 1, 32)
}

#[test]
fn reference_schema_matches_the_generated_crd() {
    let schema = topic_schema();
    let spec = &schema["properties"]["spec"]["properties"];
    assert_eq!(spec["topicName"]["minLength"], json!(1));
    assert_eq!(spec["topicName"]["maxLength"], json!(249));
    assert_eq!(spec["topicName"]["pattern"], json!("^[a-zA-Z0-9._-]+$"));
    assert_eq!(spec["partitions"]["minimum"], json!(1.0));
    assert_eq!(spec["partitions"]["maximum"], json!(100000.0));
    assert_eq!(spec["replicationFactor"]["minimum"], json!(1.0));
    assert_eq!(spec["replicationFactor"]["maximum"], json!(32.0));
    assert_eq!(spec["config"]["maxProperties"], json!(100));
    assert_eq!(
        spec["proxyRef"]["properties"]["name"]["maxLength"],
        json!(253)
    );
    assert_eq!(
        spec["proxyRef"]["properties"]["namespace"]["maxLength"],
        json!(63)
    );
    // Anything else would need a matching line in `schema_admits`.
    let mut fields: Vec<&String> = spec
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    fields.sort();
    assert_eq!(
        fields,
        [
            "config",
            "managementPolicy",
            "partitions",
            "proxyRef",
            "replicationFactor",
            "topicName"
        ]
    );
}

/// DNS-1123 subdomain names, the only kind the API server stores, up to 253 characters.
fn object_name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9]([a-z0-9.-]{0,40}[a-z0-9])?", "[a-z0-9]{245,253}",]
}

fn spec_json() -> impl Strategy<Value = Value> {
    (
        prop::option::of(name_candidates()),
        prop::option::of(prop_oneof![1..=100_000i32, any::<i32>()]),
        prop::option::of(prop_oneof![1..=32i32, any::<i32>()]),
        prop::option::of(config_map()),
        prop::option::of(prop_oneof![Just("Create"), Just("Observe")]),
        prop::option::of((".{1,20}", prop::option::of("[a-z0-9-]{1,63}"))),
    )
        .prop_map(|(topic_name, partitions, rf, config, policy, proxy)| {
            let mut spec = serde_json::Map::new();
            if let Some(v) = topic_name {
                spec.insert("topicName".into(), json!(v));
            }
            if let Some(v) = partitions {
                spec.insert("partitions".into(), json!(v));
            }
            if let Some(v) = rf {
                spec.insert("replicationFactor".into(), json!(v));
            }
            if let Some(v) = config {
                spec.insert("config".into(), json!(v));
            }
            if let Some(v) = policy {
                spec.insert("managementPolicy".into(), json!(v));
            }
            if let Some((name, namespace)) = proxy {
                let mut r = json!({ "name": name });
                if let Some(ns) = namespace {
                    r["namespace"] = json!(ns);
                }
                spec.insert("proxyRef".into(), r);
            }
            Value::Object(spec)
        })
}

fn topic_object(name: &str, spec: &Value) -> Value {
    json!({
        "apiVersion": "kafka.hdinsight.dev/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": name, "namespace": "team-a", "generation": 1},
        "spec": spec,
    })
}

#[test]
fn validate_accepts_every_spec_admission_accepts() {
    let schema = topic_schema();
    let compiled = kube_cel::compile_schema(&schema);
    let mut runner = TestRunner::new(cases(400));
    let result = runner.run(&(object_name(), spec_json()), |(name, spec)| {
        let object = topic_object(&name, &spec);
        let topic: KafkaTopic = match serde_json::from_value(object.clone()) {
            Ok(t) => t,
            // Only objects the API server could hand to the operator.
            Err(_) => return Ok(()),
        };
        let verdict = plan::validate(&topic);
        let admitted =
            schema_admits(&spec) && kube_cel::validate_compiled(&compiled, &object, None).is_ok();
        if !admitted {
            return Ok(());
        }
        let config = topic.spec.config.clone().unwrap_or_default();
        match config.iter().find(|(_, v)| !is_scalar(v)) {
            // Admission keeps config values free-form; the operator refuses nulls and nesting
            // and names the key (documented in `normalize_config`).
            Some((key, _)) => {
                let message = verdict.err().unwrap_or_default();
                prop_assert!(
                    message.starts_with(&format!("spec.config.{key}:")),
                    "{}",
                    message
                );
            }
            None => {
                prop_assert!(
                    verdict.is_ok(),
                    "admitted {} but refused: {:?}",
                    object,
                    verdict
                );
                let desired = verdict.unwrap_or_else(|_| unreachable_desired());
                let expected_name = topic.spec.topic_name.clone().unwrap_or(name.clone());
                prop_assert_eq!(desired.topic_name, expected_name);
                prop_assert_eq!(desired.partitions, topic.spec.partitions);
                prop_assert_eq!(desired.replication_factor, topic.spec.replication_factor);
                prop_assert_eq!(desired.config.len(), config.len());
                let (ns, proxy) = topic.proxy_key();
                prop_assert_eq!(desired.proxy, format!("{ns}/{proxy}"));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

fn unreachable_desired() -> DesiredTopic {
    DesiredTopic {
        topic_name: String::new(),
        proxy: String::new(),
        partitions: None,
        replication_factor: None,
        config: serde_json::Map::new(),
        policy: ManagementPolicy::Create,
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn validate_never_panics_on_any_spec(
        name in prop_oneof![object_name(), any::<String>()],
        spec in spec_json(),
        status_name in prop::option::of(name_candidates()),
        status_proxy in prop::option::of(".{0,20}"),
    ) {
        let mut object = topic_object(&name, &spec);
        let mut status = serde_json::Map::new();
        if let Some(n) = &status_name {
            status.insert("topicName".into(), json!(n));
        }
        if let Some(p) = &status_proxy {
            status.insert("proxy".into(), json!(p));
        }
        object["status"] = Value::Object(status);
        if let Ok(topic) = serde_json::from_value::<KafkaTopic>(object) {
            match plan::validate(&topic) {
                Ok(desired) => {
                    prop_assert!(reference_topic_name_ok(&desired.topic_name));
                    // A rename or a move recorded in the status is refused.
                    if let Some(n) = &status_name {
                        prop_assert_eq!(n, &desired.topic_name);
                    }
                    if let Some(p) = &status_proxy {
                        prop_assert_eq!(p, &desired.proxy);
                    }
                }
                Err(message) => prop_assert!(message.starts_with("spec."), "{}", message),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (d) plan::decide and plan::finish_blocked
// ---------------------------------------------------------------------------------------------

const BASE_SECOND: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
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

fn previous_status() -> impl Strategy<Value = KafkaTopicStatus> {
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

// ---------------------------------------------------------------------------------------------
// Decoder fuzzing: proxy responses
// ---------------------------------------------------------------------------------------------

/// Arbitrary bytes, JSON-looking byte soup, and arbitrary JSON documents.
fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(
            prop::sample::select(b"{}[]\":,0123456789-.eE truefalsnl\\u".to_vec()),
            0..128
        ),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// The same document with every float replaced by an integer.
fn without_floats(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => Value::from(n.as_f64().unwrap_or_default() as i64),
        Value::Array(a) => Value::Array(a.into_iter().map(without_floats).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, without_floats(v))).collect())
        }
        other => other,
    }
}

fn broker() -> impl Strategy<Value = BrokerEndpoint> {
    (
        ".{0,12}",
        any::<i32>(),
        any::<i32>(),
        prop::option::of(".{0,8}"),
    )
        .prop_map(|(host_name, port, id, rack)| BrokerEndpoint {
            host_name,
            port,
            id,
            rack,
        })
}

fn partition_metadata() -> impl Strategy<Value = PartitionMetadata> {
    (
        any::<i32>(),
        any::<i64>(),
        any::<i64>(),
        prop::option::of(broker()),
        prop::collection::vec(broker(), 0..3),
        prop::collection::vec(broker(), 0..3),
    )
        .prop_map(
            |(partition_id, earliest_offset, latest_offset, leader, replicas, isr)| {
                PartitionMetadata {
                    partition_id,
                    earliest_offset,
                    latest_offset,
                    leader,
                    replicas,
                    isr,
                }
            },
        )
}

/// What decoding gives back for a partition: a leader with a negative id means "no leader".
fn as_decoded(mut p: PartitionMetadata) -> PartitionMetadata {
    p.leader = p.leader.filter(|l| l.id >= 0);
    p
}

fn consume_record() -> impl Strategy<Value = ConsumeRecord> {
    (
        prop::option::of(".{0,12}"),
        prop::option::of(".{0,24}"),
        any::<i32>(),
        any::<i64>(),
        prop::option::of(any::<i64>()),
        prop::option::of(
            prop::sample::select(vec!["CreateTime", "LogAppendTime"]).prop_map(str::to_string),
        ),
    )
        .prop_map(
            |(key, value, partition, offset, timestamp, timestamp_type)| ConsumeRecord {
                key,
                value,
                partition,
                offset,
                timestamp,
                timestamp_type,
            },
        )
}

fn bytes_of(v: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Every proper prefix of `body` is refused by `decode`.
fn truncations_fail<T: std::fmt::Debug, E>(
    body: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, E>,
) -> Result<(), TestCaseError> {
    for cut in 0..body.len() {
        let got = decode(&body[..cut]);
        prop_assert!(
            got.is_err(),
            "prefix {:?} decoded as {:?}",
            String::from_utf8_lossy(&body[..cut]),
            got.ok()
        );
    }
    Ok(())
}

/// A decoder error says what was being decoded. (That the client turns it into a `Malformed`
/// proxy error that is not retried is checked through the real client below, in
/// `hostile_bodies_reach_callers_as_malformed_errors_that_are_not_retried`.)
fn typed(what: &str, error: String) -> Result<(), TestCaseError> {
    prop_assert!(error.starts_with(&format!("{what}: ")), "{}", error);
    Ok(())
}

/// The decoders' errors as callers get them: a local proxy answers 200 with hostile bodies
/// (the same strategy as the property above), and the real client must return the decoder's
/// failure as `ProxyError::Malformed` naming what it decoded, not retried; a body the decoder
/// accepts must be accepted.
#[tokio::test]
async fn hostile_bodies_reach_callers_as_malformed_errors_that_are_not_retried() {
    use hdinsight_topic_operator::auth::{ClientAuth, ClientCredentials, SecretString};
    use hdinsight_topic_operator::proxy::{NoopObserver, ProxyClient, ProxyClientConfig};
    use proptest::strategy::ValueTree as _;
    use std::sync::{Arc, Mutex};

    let body = Arc::new(Mutex::new(Vec::<u8>::new()));
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (served, counted) = (body.clone(), hits.clone());
    let router = axum::Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            axum::routing::post(|| async {
                axum::Json(
                    json!({ "token_type": "Bearer", "access_token": "t", "expires_in": 3600 }),
                )
            }),
        )
        .fallback(move || {
            let bytes = served.lock().map(|b| b.clone()).unwrap_or_default();
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { ([("content-type", "application/json")], bytes) }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    let url = url::Url::parse(&format!("http://{addr}")).expect("url");
    let mut config = ProxyClientConfig::new(
        "kafka/proxy",
        url.clone(),
        ClientCredentials {
            tenant_id: "tenant-1".into(),
            client_id: "app-1".into(),
            auth: ClientAuth::Secret(SecretString::new("a-client-secret-value")),
        },
    );
    config.authority = url;
    config.allow_insecure_http = true;
    let client = ProxyClient::new(config, Arc::new(NoopObserver)).expect("valid config");

    let mut runner = TestRunner::deterministic();
    let mut refused = 0;
    for _ in 0..96 {
        let sample = hostile_body()
            .new_tree(&mut runner)
            .expect("a body")
            .current();
        *body.lock().expect("body") = sample.clone();
        let before = hits.load(std::sync::atomic::Ordering::SeqCst);
        let got = client.list_topics().await;
        let sent = hits.load(std::sync::atomic::Ordering::SeqCst) - before;
        match (decode_topic_list(&sample), got) {
            (Err(_), Err(ProxyError::Malformed(m))) => {
                refused += 1;
                assert!(m.starts_with("topic list: "), "{m}");
                assert!(!ProxyError::Malformed(m).is_transient());
                assert_eq!(sent, 1, "a malformed answer is not asked again");
            }
            (Ok(_), Ok(_)) => {}
            (decoded, got) => panic!(
                "body {:?}: decoder {decoded:?}, client {got:?}",
                String::from_utf8_lossy(&sample)
            ),
        }
        let got = client.brokers().await;
        match (decode_brokers(&sample), got) {
            (Err(_), Err(ProxyError::Malformed(m))) => {
                assert!(m.starts_with("broker list: "), "{m}")
            }
            (Ok(_), Ok(_)) => {}
            (decoded, got) => panic!(
                "body {:?}: decoder {decoded:?}, client {got:?}",
                String::from_utf8_lossy(&sample)
            ),
        }
    }
    assert!(refused >= 10, "only {refused} of the bodies were refused");
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn proxy_decoders_never_panic_and_fail_typed(body in hostile_body(), header in prop::option::of(".{0,12}")) {
        if let Err(e) = decode_brokers(&body) { typed("broker list", e)?; }
        if let Err(e) = decode_topic_list(&body) { typed("topic list", e)?; }
        if let Err(e) = decode_topic_partitions(&body) { typed("topic partitions", e)?; }
        if let Err(e) = decode_partition(&body) { typed("partition metadata", e)?; }
        match decode_consume(&body, header.as_deref()) {
            Ok(r) => {
                let expected = header.as_deref().map(|h| h.trim().parse::<i64>().ok());
                prop_assert_eq!(Some(r.next_offset), expected.or(Some(None)));
            }
            Err(e) => prop_assert!(
                e.starts_with("consumed records: ") || e.starts_with("NextOffset header"),
                "{}", e
            ),
        }
        let _ = decode_text(&body);
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn broker_lists_round_trip_in_both_shapes(brokers in prop::collection::vec(broker(), 0..5)) {
        let bare = bytes_of(&brokers);
        let wrapped = bytes_of(&json!({ "brokers": brokers }));
        prop_assert_eq!(decode_brokers(&bare), Ok(brokers.clone()));
        prop_assert_eq!(decode_brokers(&wrapped), Ok(brokers));
        truncations_fail(&bare, decode_brokers)?;
        truncations_fail(&wrapped, decode_brokers)?;
    }

    #[test]
    fn topic_lists_round_trip_without_internal_topics(
        names in prop::collection::vec(prop_oneof![".{0,12}", "__[a-z_]{0,8}"], 0..8)
    ) {
        let body = bytes_of(&json!({ "topics": names }));
        let expected: Vec<String> = names.iter().filter(|n| !n.starts_with("__")).cloned().collect();
        prop_assert_eq!(decode_topic_list(&body), Ok(expected));
        truncations_fail(&body, decode_topic_list)?;
    }

    #[test]
    fn topic_partitions_round_trip(
        topic in ".{0,16}",
        parts in prop::collection::vec(partition_metadata(), 0..4),
    ) {
        let value = TopicPartitions { topic, partitions: parts };
        let body = bytes_of(&value);
        let expected = TopicPartitions {
            topic: value.topic.clone(),
            partitions: value.partitions.iter().cloned().map(as_decoded).collect(),
        };
        prop_assert_eq!(decode_topic_partitions(&body), Ok(expected));
        truncations_fail(&body, decode_topic_partitions)?;
    }

    #[test]
    fn partition_metadata_round_trips(p in partition_metadata()) {
        let body = bytes_of(&p);
        prop_assert_eq!(decode_partition(&body), Ok(as_decoded(p)));
        truncations_fail(&body, decode_partition)?;
    }

    #[test]
    fn consume_responses_round_trip_in_both_shapes(
        records in prop::collection::vec(consume_record(), 0..4),
        next in prop::option::of(any::<i64>()),
        pad in "[ \t]{0,2}",
    ) {
        let header = next.map(|n| format!("{pad}{n}{pad}"));
        let bare = bytes_of(&records);
        let wrapped = bytes_of(&json!({ "records": records }));
        for body in [&bare, &wrapped] {
            let decoded = decode_consume(body, header.as_deref());
            prop_assert!(decoded.is_ok(), "{:?}", decoded);
            let decoded = decoded.unwrap_or_default();
            prop_assert_eq!(&decoded.records, &records);
            prop_assert_eq!(decoded.next_offset, next);
            truncations_fail(body, |b| decode_consume(b, header.as_deref()))?;
        }
    }

    #[test]
    fn consume_values_that_are_not_strings_are_kept_as_json_text(
        value in json_value().prop_map(without_floats),
    ) {
        let body = bytes_of(&json!([{ "key": null, "value": value, "partition": 0, "offset": 0 }]));
        let decoded = decode_consume(&body, None).unwrap_or_default();
        let expected = match &value {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        prop_assert_eq!(decoded.records.first().and_then(|r| r.value.clone()), expected);
    }

    /// Regression (found by these properties): serde_json parses floats with a fast algorithm that may be off by
    /// one unit in the last place, so a consumed value such as `-2.1930587468033362e-187` is
    /// shown as `-2.193058746803336e-187`. serde_json's `float_roundtrip` feature fixes it.
    #[test]
    fn consume_values_with_floats_are_kept_exactly(f in any::<f64>()) {
        let value = serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
        let body = bytes_of(&json!([{ "value": [value], "partition": 0, "offset": 0 }]));
        let decoded = decode_consume(&body, None).unwrap_or_default();
        prop_assert_eq!(
            decoded.records.first().and_then(|r| r.value.clone()),
            Some(json!([value]).to_string())
        );
    }

    #[test]
    fn text_bodies_unquote_json_strings(text in ".{0,32}") {
        prop_assert_eq!(decode_text(&bytes_of(&text)), text);
    }
}

// ---------------------------------------------------------------------------------------------
// Decoder fuzzing: token responses
// ---------------------------------------------------------------------------------------------

/// Neither Display nor Debug of `e` shows `secret`, or its first 12 characters.
fn assert_secret_hidden(e: &AuthError, secret: &str) -> Result<(), TestCaseError> {
    let shown = e.to_string();
    let debug = format!("{e:?}");
    let head: String = secret.chars().take(12).collect();
    prop_assert!(
        !shown.contains(&head),
        "Display shows the secret: {}",
        shown
    );
    prop_assert!(!debug.contains(&head), "Debug shows the secret: {}", debug);
    Ok(())
}

/// A realistic client secret: long enough that it cannot occur in our own message text.
fn client_secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9~_.-]{8}Q~[A-Za-z0-9~_.-]{24,30}"
}

proptest! {
    #![proptest_config(cases(1000))]

    #[test]
    fn token_decoders_never_panic_and_fail_typed(
        body in hostile_body(),
        status in 400u16..500,
        secret in client_secret(),
    ) {
        match decode_success(&body) {
            Ok((token, _)) => prop_assert!(!token.is_empty()),
            Err(e) => {
                prop_assert!(matches!(e, AuthError::Malformed(_)), "{:?}", e);
                prop_assert!(!e.is_transient());
            }
        }
        let e = decode_rejection(status, &body, "app-1", &secret);
        prop_assert!(matches!(&e, AuthError::Rejected { status: s, .. } if *s == status), "{:?}", e);
        prop_assert!(!e.is_transient());
        prop_assert!(e.to_string().contains("app-1"));
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn token_successes_round_trip_and_truncations_fail(
        token in "[A-Za-z0-9._-]{1,64}",
        lifetime in 0u64..=7 * 86_400,
        as_text in any::<bool>(),
        extra in prop::option::of(json_value()),
    ) {
        let mut body = json!({ "token_type": "Bearer", "access_token": token });
        body["expires_in"] = if as_text { json!(lifetime.to_string()) } else { json!(lifetime) };
        if let Some(extra) = extra {
            body["ext_expires_in"] = extra;
        }
        let bytes = bytes_of(&body);
        let decoded = decode_success(&bytes);
        prop_assert!(decoded.is_ok(), "{:?}", decoded.err());
        let (got, d) = decoded.unwrap_or_default();
        prop_assert_eq!(got, token);
        prop_assert_eq!(d, Duration::from_secs(lifetime));
        for cut in 0..bytes.len() {
            let got = decode_success(&bytes[..cut]);
            prop_assert!(matches!(got, Err(AuthError::Malformed(_))), "prefix {} decoded", cut);
        }
    }

    #[test]
    fn aadsts_error_bodies_round_trip(
        code in any::<u32>(),
        with_codes in any::<bool>(),
        error in prop::sample::select(vec!["invalid_client", "invalid_request", "unauthorized_client", ""]),
        detail in "[A-Za-z ,.']{0,40}",
        status in 400u16..500,
    ) {
        let description = format!("AADSTS{code}: {detail}\r\nTrace ID: 1\r\nCorrelation ID: 2");
        let mut body = json!({ "error": error, "error_description": description });
        if with_codes {
            body["error_codes"] = json!([code]);
        }
        let bytes = bytes_of(&body);
        let e = decode_rejection(status, &bytes, "app-1", "not-in-the-body");
        prop_assert_eq!(e.aadsts(), Some(code));
        match &e {
            AuthError::Rejected { status: s, error: got, description: d, .. } => {
                prop_assert_eq!(*s, status);
                prop_assert_eq!(got.as_str(), error);
                let expected = format!("AADSTS{code}: {detail}");
                prop_assert_eq!(d.as_str(), expected.trim());
            }
            other => prop_assert!(false, "{:?}", other),
        }
        let shown = e.to_string();
        prop_assert!(shown.starts_with(&format!("AADSTS{code}: ")), "{}", shown);
        // Truncated bodies still give a typed rejection with the status, never a panic.
        for cut in 0..bytes.len() {
            let t = decode_rejection(status, &bytes[..cut], "app-1", "not-in-the-body");
            prop_assert!(matches!(t, AuthError::Rejected { status: s, .. } if s == status), "prefix {}: {:?}", cut, t);
        }
    }

    /// Entra ID error bodies that echo the client secret in the description (first line, later
    /// lines, no JSON at all): the error shown to users (Display, Debug) never contains it.
    #[test]
    fn rejections_never_show_a_secret_echoed_in_the_description(
        secret in client_secret(),
        place in 0usize..4,
        before in "[A-Za-z ]{0,200}",
        code in prop::option::of(any::<u32>()),
    ) {
        let description = format!("AADSTS7000215: {before}{secret}");
        let bytes = match place {
            0 => bytes_of(&json!({ "error": "invalid_client", "error_description": description })),
            1 => bytes_of(&json!({ "error": "invalid_client", "error_description": description, "error_codes": code.map(|c| vec![c]) })),
            2 => bytes_of(&json!({ "error": "invalid_client", "error_description": format!("{before}\r\n{secret}") })),
            _ => description.into_bytes(),
        };
        assert_secret_hidden(&decode_rejection(401, &bytes, "app-1", &secret), &secret)?;
    }

    /// Regression (found by these properties): the description is cut to 300 characters before the secret is
    /// scrubbed, so a secret that straddles the cut is shown up to the cut. Scrubbing before
    /// shortening fixes it.
    #[test]

    fn rejections_never_show_part_of_a_secret_cut_at_the_length_limit(
        secret in client_secret(),
        before in "[A-Za-z ]{250,300}",
    ) {
        let description = format!("AADSTS7000215: {before}{secret}");
        let bytes = bytes_of(&json!({ "error": "invalid_client", "error_description": description }));
        assert_secret_hidden(&decode_rejection(401, &bytes, "app-1", &secret), &secret)?;
    }

    /// Regression (found by these properties): only the description is scrubbed; a server echoing the secret in
    /// the `error` field has it shown in Display and Debug.
    #[test]

    fn rejections_never_show_a_secret_echoed_in_the_error_code(secret in client_secret()) {
        let bytes = bytes_of(&json!({ "error": secret, "error_description": "AADSTS7000215: Invalid client secret provided." }));
        assert_secret_hidden(&decode_rejection(401, &bytes, "app-1", &secret), &secret)?;
    }

    /// A decoded lifetime can be turned into an expiry time.
    ///
    /// Regression (found by these properties): `expires_in` is accepted up to `u64::MAX` seconds, and the token
    /// provider adds it to the current time (`SystemTime + Duration`, `Instant + Duration`),
    /// which panics on overflow: a token endpoint answering `"expires_in": 9223372036854775807`
    /// crashes the token request instead of failing it as malformed.
    #[test]

    fn decoded_lifetimes_can_be_added_to_the_clock(lifetime in prop_oneof![any::<u64>(), 0u64..100_000]) {
        let body = bytes_of(&json!({ "access_token": "t", "expires_in": lifetime }));
        if let Ok((_, d)) = decode_success(&body) {
            prop_assert!(
                SystemTime::now().checked_add(d).is_some(),
                "expires_in {} decodes to a lifetime that overflows the clock", lifetime
            );
        }
    }
}

/// The finding behind `decoded_lifetimes_can_be_added_to_the_clock`, end to end: a token endpoint
/// answering an absurd `expires_in` must give a typed error, not a panic in the token request.
#[tokio::test]
async fn a_huge_token_lifetime_is_a_typed_error_not_a_panic() {
    use hdinsight_topic_operator::auth::TokenProvider;
    use hdinsight_topic_operator::auth::{ClientCredentials, NoopAuthObserver, SecretString};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let router = axum::Router::new().route(
        "/{tenant}/oauth2/v2.0/token",
        axum::routing::post(|| async {
            axum::Json(
                json!({ "token_type": "Bearer", "access_token": "t", "expires_in": i64::MAX }),
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let provider = TokenProvider::new(
        reqwest::Client::new(),
        &url::Url::parse(&format!("http://{addr}")).expect("url"),
        "https://hib.azurehdinsight.net/.default",
        ClientCredentials {
            tenant_id: "tenant-1".into(),
            client_id: "app-1".into(),
            auth: hdinsight_topic_operator::auth::ClientAuth::Secret(SecretString::new(
                "a-client-secret-value",
            )),
        },
        std::sync::Arc::new(NoopAuthObserver),
    )
    .expect("valid config");
    // Run it as its own task so that a panic is observed as a join error.
    let outcome = tokio::spawn(async move { provider.token().await.map(|_| ()) }).await;
    match outcome {
        Err(join) => panic!("the token request panicked: {join}"),
        Ok(result) => assert!(matches!(result, Err(AuthError::Malformed(_))), "{result:?}"),
    }
}

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
