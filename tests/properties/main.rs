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

mod clock;
mod decoders;
mod planner;
mod spec;
