//! The admission rules of the generated CRDs, run through the Kubernetes emulator's admission
//! pipeline (structural schema, then CEL) as the API server would: naming rules on create,
//! immutability rules on update.
#![allow(clippy::unwrap_used)]

use hdinsight_topic_operator::crd::{KafkaRestProxy, KafkaTopic};
use kube::CustomResourceExt;
use kube_admission::CompiledSchema;
use serde_json::{Value, json};

fn schema_of(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    let v = serde_json::to_value(crd).unwrap();
    v["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn topic(name: &str, spec: Value, status: Option<Value>) -> Value {
    let mut obj = json!({
        "apiVersion": "kafka.hdinsight.dev/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": spec,
    });
    if let Some(s) = status {
        obj["status"] = s;
    }
    obj
}

/// The admission failures for `new` (update from `old` when given), as the API server's
/// "field: Invalid value: ...: message" strings.
fn failures(schema: &Value, new: &Value, old: Option<&Value>) -> Vec<String> {
    let compiled = CompiledSchema::compile(schema).expect("the CRD schema compiles");
    let mut object = new.clone();
    match compiled.admit(&mut object, old) {
        Ok(()) => vec![],
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    }
}

fn topic_schema() -> Value {
    schema_of(KafkaTopic::crd())
}

#[test]
fn a_complete_topic_is_accepted() {
    let t = topic(
        "orders",
        json!({"proxyRef": {"name": "main", "namespace": "kafka-system"}, "topicName": "orders.v1", "partitions": 12,
               "replicationFactor": 3, "config": {"retention.ms": 604800000, "cleanup.policy": "delete", "unclean.leader.election.enable": "false", "min.cleanable.dirty.ratio": "0.5"},
               "managementPolicy": "Create"}),
        None,
    );
    assert_eq!(failures(&topic_schema(), &t, None), Vec::<String>::new());
}

#[test]
fn dot_names_are_refused() {
    for bad in [".", ".."] {
        let t = topic("x", json!({"topicName": bad}), None);
        let f = failures(&topic_schema(), &t, None);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(
            f[0].contains("spec.topicName") && f[0].contains("'.' or '..'"),
            "{f:?}"
        );
    }
}

#[test]
fn long_metadata_name_needs_a_topic_name() {
    let long = "a".repeat(250);
    let f = failures(&topic_schema(), &topic(&long, json!({}), None), None);
    assert!(
        f.iter().any(|m| m.contains("at most 249 characters")),
        "{f:?}"
    );
    assert!(
        failures(
            &topic_schema(),
            &topic(&long, json!({"topicName": "short"}), None),
            None
        )
        .is_empty()
    );
}

const UNKNOWN: &str = "not a topic-level config of Kafka 2.1 (HDInsight 4.0), 2.4 (HDInsight 5.0), 3.2 (HDInsight 5.1); see docs/topic-config.md";

fn config_failures(config: Value) -> Vec<String> {
    failures(
        &topic_schema(),
        &topic("t", json!({ "config": config }), None),
        None,
    )
}

#[test]
fn unknown_config_keys_are_refused_naming_the_key() {
    // A typo, a broker-only setting (Kafka's "Broker Configs", not "Topic-Level Configs",
    // kafka.apache.org/32/documentation.html) and a name that is no config at all.
    for key in ["retention.msec", "log.retention.hours", "bad key!"] {
        assert_eq!(
            config_failures(json!({"retention.ms": 1000, key: 1})),
            vec![format!(
                "spec.config: Invalid value: \"object\": spec.config.{key}: {UNKNOWN}"
            )]
        );
    }
}

// One good and one bad value per type; the facts are those of Kafka's LogConfig.configDef
// (core/src/main/scala/kafka/log/LogConfig.scala at 2.1.1, 2.4.1 and 3.2.3).
#[test]
fn config_values_are_checked_by_type_range_and_enum() {
    let long_from = |min: &str| format!("an integer from {min} to 9223372036854775807");
    let int_from = |min: &str| format!("an integer from {min} to 2147483647");
    let bool_words = "\"true\" or \"false\"".to_string();
    let policy = "a comma-separated list of compact, delete".to_string();
    let replicas = "\"*\" or a comma-separated list of partition:broker pairs".to_string();
    let cases: Vec<(&str, Value, Value, String)> = vec![
        ("retention.ms", json!(-1), json!(-2), long_from("-1")),
        (
            "retention.ms",
            json!("604800000"),
            json!("7d"),
            long_from("-1"),
        ),
        (
            "retention.bytes",
            json!(-1),
            json!("1GB"),
            long_from("-9223372036854775808"),
        ),
        ("segment.bytes", json!(1048576), json!(13), int_from("14")),
        (
            "max.message.bytes",
            json!("2147483647"),
            json!("2147483648"),
            int_from("0"),
        ),
        ("min.insync.replicas", json!("2"), json!(0), int_from("1")),
        (
            "min.cleanable.dirty.ratio",
            json!("0.5"),
            json!("1.01"),
            "a number from 0 to 1, e.g. \"0.5\"".into(),
        ),
        (
            "unclean.leader.election.enable",
            json!("true"),
            json!("yes"),
            bool_words.clone(),
        ),
        ("preallocate", json!("false"), json!(1), bool_words),
        (
            "cleanup.policy",
            json!("compact,delete"),
            json!("compact,purge"),
            policy.clone(),
        ),
        ("cleanup.policy", json!("delete"), json!(""), policy),
        (
            "compression.type",
            json!("zstd"),
            json!("brotli"),
            "one of uncompressed, zstd, lz4, snappy, gzip, producer".into(),
        ),
        (
            "message.timestamp.type",
            json!("LogAppendTime"),
            json!("logappendtime"),
            "one of CreateTime, LogAppendTime".into(),
        ),
        (
            "message.format.version",
            json!("2.4-IV1"),
            json!("4.0"),
            "a Kafka version the cluster knows, e.g. 2.1, 2.4-IV1, 3.2".into(),
        ),
        (
            "leader.replication.throttled.replicas",
            json!("0:101, 1:102"),
            json!("0-101"),
            replicas.clone(),
        ),
        (
            "follower.replication.throttled.replicas",
            json!("*"),
            json!("all"),
            replicas,
        ),
        (
            "max.compaction.lag.ms",
            json!("9223372036854775807"),
            json!(0),
            long_from("1"),
        ),
    ];
    for (key, good, bad, allowed) in cases {
        assert_eq!(
            config_failures(json!({ key: good })),
            Vec::<String>::new(),
            "{key}: {good}"
        );
        assert_eq!(
            config_failures(json!({ key: bad })),
            vec![format!(
                "spec.config: Invalid value: \"object\": spec.config.{key}: must be {allowed}"
            )],
            "{key}: {bad}"
        );
    }
}

#[test]
fn a_realistic_config_is_accepted() {
    assert_eq!(
        config_failures(json!({
            "cleanup.policy": "compact,delete", "retention.ms": -1, "retention.bytes": "-1",
            "segment.ms": 3600000, "min.compaction.lag.ms": 0, "delete.retention.ms": "86400000",
            "compression.type": "producer", "message.downconversion.enable": "true",
            "message.timestamp.difference.max.ms": "9223372036854775807", "message.format.version": "2.1"
        })),
        Vec::<String>::new()
    );
}

#[test]
fn config_values_are_integers_or_strings() {
    // x-kubernetes-int-or-string: a real API server refuses other JSON types there.
    for (value, kind) in [
        (json!(false), "boolean"),
        (json!(0.5), "number"),
        (json!({"a": 1}), "object"),
        (json!([1]), "array"),
    ] {
        let f = failures(
            &topic_schema(),
            &topic(
                "t",
                json!({"config": {"unclean.leader.election.enable": value}}),
                None,
            ),
            None,
        );
        assert!(
            f.iter()
                .any(|m| m.contains("spec.config.unclean.leader.election.enable")
                    && m.contains(kind)),
            "{kind}: {f:?}"
        );
    }
    let ok = topic(
        "t",
        json!({"config": {"retention.ms": 604800000, "unclean.leader.election.enable": "false"}}),
        None,
    );
    assert_eq!(failures(&topic_schema(), &ok, None), Vec::<String>::new());
}

#[test]
fn a_stored_boolean_config_stays_updatable_while_config_is_unchanged() {
    // Objects stored before config values were typed may hold a boolean; ratcheting lets an
    // update that leaves config alone through (here: pausing the topic's policy).
    let s = topic_schema();
    let old = topic(
        "t",
        json!({"config": {"unclean.leader.election.enable": false}}),
        None,
    );
    let new = topic(
        "t",
        json!({"config": {"unclean.leader.election.enable": false}, "managementPolicy": "Observe"}),
        None,
    );
    assert_eq!(failures(&s, &new, Some(&old)), Vec::<String>::new());
}

#[test]
fn partitions_may_only_move_to_the_observed_count() {
    let s = topic_schema();
    let old = topic(
        "t",
        json!({"partitions": 3}),
        Some(json!({"partitions": 6})),
    );
    // Increase to a value the cluster does not report: refused, naming the field.
    let f = failures(
        &s,
        &topic(
            "t",
            json!({"partitions": 12}),
            Some(json!({"partitions": 6})),
        ),
        Some(&old),
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0].starts_with("spec.partitions") || f[0].contains("spec.partitions"),
        "{f:?}"
    );
    // Bringing the manifest in line with an out-of-band change: accepted.
    assert!(
        failures(
            &s,
            &topic(
                "t",
                json!({"partitions": 6}),
                Some(json!({"partitions": 6}))
            ),
            Some(&old)
        )
        .is_empty()
    );
    // Unchanged: accepted.
    assert!(failures(&s, &old.clone(), Some(&old)).is_empty());
    // Removing it: refused.
    assert!(
        !failures(
            &s,
            &topic("t", json!({}), Some(json!({"partitions": 6}))),
            Some(&old)
        )
        .is_empty()
    );
    // Adding it equal to the observed count: accepted; different: refused.
    let old_unset = topic("t", json!({}), Some(json!({"partitions": 6})));
    assert!(
        failures(
            &s,
            &topic(
                "t",
                json!({"partitions": 6}),
                Some(json!({"partitions": 6}))
            ),
            Some(&old_unset)
        )
        .is_empty()
    );
    assert!(
        !failures(
            &s,
            &topic(
                "t",
                json!({"partitions": 7}),
                Some(json!({"partitions": 6}))
            ),
            Some(&old_unset)
        )
        .is_empty()
    );
}

#[test]
fn topic_name_is_immutable_but_may_spell_out_the_default() {
    let s = topic_schema();
    let old = topic("orders", json!({}), None);
    assert!(
        failures(
            &s,
            &topic("orders", json!({"topicName": "orders"}), None),
            Some(&old)
        )
        .is_empty()
    );
    let f = failures(
        &s,
        &topic("orders", json!({"topicName": "orders.v2"}), None),
        Some(&old),
    );
    assert!(
        f.iter()
            .any(|m| m.contains("spec.topicName") && m.contains("immutable")),
        "{f:?}"
    );
    let named = topic("orders", json!({"topicName": "orders.v1"}), None);
    assert!(!failures(&s, &topic("orders", json!({}), None), Some(&named)).is_empty());
}

#[test]
fn proxy_ref_is_immutable_but_may_spell_out_the_default() {
    let s = topic_schema();
    let old = topic("t", json!({}), None);
    assert!(
        failures(
            &s,
            &topic("t", json!({"proxyRef": {"name": "default"}}), None),
            Some(&old)
        )
        .is_empty()
    );
    let f = failures(
        &s,
        &topic("t", json!({"proxyRef": {"name": "other"}}), None),
        Some(&old),
    );
    assert!(f.iter().any(|m| m.contains("spec.proxyRef")), "{f:?}");
    let old = topic(
        "t",
        json!({"proxyRef": {"name": "p", "namespace": "a"}}),
        None,
    );
    let f = failures(
        &s,
        &topic(
            "t",
            json!({"proxyRef": {"name": "p", "namespace": "b"}}),
            None,
        ),
        Some(&old),
    );
    assert!(f.iter().any(|m| m.contains("spec.proxyRef")), "{f:?}");
}

#[test]
fn proxy_ref_namespace_may_be_added_only_when_it_names_the_proxy_in_use() {
    let s = topic_schema();
    // The operator recorded the proxy in use: team-a/p.
    let old = topic(
        "t",
        json!({"proxyRef": {"name": "p"}}),
        Some(json!({"proxy": "team-a/p"})),
    );
    let same = topic(
        "t",
        json!({"proxyRef": {"name": "p", "namespace": "team-a"}}),
        None,
    );
    assert_eq!(failures(&s, &same, Some(&old)), Vec::<String>::new());
    // Pointing elsewhere by adding a namespace is a move to another proxy.
    let elsewhere = topic(
        "t",
        json!({"proxyRef": {"name": "p", "namespace": "attacker"}}),
        None,
    );
    let f = failures(&s, &elsewhere, Some(&old));
    assert!(f.iter().any(|m| m.contains("spec.proxyRef")), "{f:?}");
    // Without a recorded proxy the rule cannot tell, and refuses.
    let unobserved = topic("t", json!({"proxyRef": {"name": "p"}}), None);
    let f = failures(&s, &same, Some(&unobserved));
    assert!(f.iter().any(|m| m.contains("spec.proxyRef")), "{f:?}");
    // Also when proxyRef itself is added with a namespace.
    let bare = topic("t", json!({}), Some(json!({"proxy": "team-a/default"})));
    let added = topic(
        "t",
        json!({"proxyRef": {"name": "default", "namespace": "team-a"}}),
        None,
    );
    assert_eq!(failures(&s, &added, Some(&bare)), Vec::<String>::new());
    let added_elsewhere = topic(
        "t",
        json!({"proxyRef": {"name": "default", "namespace": "kafka-system"}}),
        None,
    );
    let f = failures(&s, &added_elsewhere, Some(&bare));
    assert!(f.iter().any(|m| m.contains("spec.proxyRef")), "{f:?}");
    // Removing a namespace is refused: the default it falls back to cannot be checked.
    let explicit = topic(
        "t",
        json!({"proxyRef": {"name": "p", "namespace": "team-a"}}),
        Some(json!({"proxy": "team-a/p"})),
    );
    let removed = topic("t", json!({"proxyRef": {"name": "p"}}), None);
    let f = failures(&s, &removed, Some(&explicit));
    assert!(f.iter().any(|m| m.contains("spec.proxyRef")), "{f:?}");
}

#[test]
fn replication_factor_and_config_are_immutable() {
    let s = topic_schema();
    let old = topic(
        "t",
        json!({"replicationFactor": 3, "config": {"retention.ms": 1000}}),
        Some(json!({"replicationFactor": 3})),
    );
    let f = failures(
        &s,
        &topic(
            "t",
            json!({"replicationFactor": 2, "config": {"retention.ms": 1000}}),
            None,
        ),
        Some(&old),
    );
    assert!(
        f.iter().any(|m| m.contains("spec.replicationFactor")),
        "{f:?}"
    );
    let f = failures(
        &s,
        &topic(
            "t",
            json!({"replicationFactor": 3, "config": {"retention.ms": 2000}}),
            None,
        ),
        Some(&old),
    );
    assert!(f.iter().any(|m| m.contains("spec.config")), "{f:?}");
    let f = failures(
        &s,
        &topic("t", json!({"replicationFactor": 3}), None),
        Some(&old),
    );
    assert!(
        f.iter().any(|m| m.contains("spec.config")),
        "removing config must be refused: {f:?}"
    );
    // The management policy may change freely.
    let ok = topic(
        "t",
        json!({"replicationFactor": 3, "config": {"retention.ms": 1000}, "managementPolicy": "Observe"}),
        None,
    );
    assert_eq!(failures(&s, &ok, Some(&old)), Vec::<String>::new());
    // RF may be added when equal to what the cluster reports.
    let old = topic("t", json!({}), Some(json!({"replicationFactor": 3})));
    assert!(
        failures(
            &s,
            &topic("t", json!({"replicationFactor": 3}), None),
            Some(&old)
        )
        .is_empty()
    );
    assert!(
        !failures(
            &s,
            &topic("t", json!({"replicationFactor": 2}), None),
            Some(&old)
        )
        .is_empty()
    );
}

fn proxy(spec: Value) -> Value {
    json!({"apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaRestProxy", "metadata": {"name": "p", "namespace": "n"}, "spec": spec})
}

#[test]
fn proxy_endpoint_must_be_https_unless_allowed() {
    let s = schema_of(KafkaRestProxy::crd());
    let base = json!({"credentials": {"secretRef": {"name": "sp"}}});
    let with = |extra: Value| {
        let mut spec = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        proxy(spec)
    };
    assert!(
        failures(
            &s,
            &with(json!({"endpoint": "https://c-kafkarest.azurehdinsight.net"})),
            None
        )
        .is_empty()
    );
    let f = failures(
        &s,
        &with(json!({"endpoint": "http://c-kafkarest.azurehdinsight.net"})),
        None,
    );
    assert!(f.iter().any(|m| m.contains("https://")), "{f:?}");
    assert!(
        failures(
            &s,
            &with(json!({"endpoint": "http://127.0.0.1:8080", "allowInsecureHttp": true})),
            None
        )
        .is_empty()
    );
    assert!(!failures(&s, &with(json!({"endpoint": "not a url"})), None).is_empty());
    let f = failures(
        &s,
        &with(json!({"endpoint": "https://x", "allowedTopicNamespaces": {"from": "Selector"}})),
        None,
    );
    assert!(
        f.iter().any(|m| m.contains("selector is required")),
        "{f:?}"
    );
    let f = failures(
        &s,
        &with(json!({"endpoint": "https://x", "scope": "https://hib.azurehdinsight.net"})),
        None,
    );
    assert!(f.iter().any(|m| m.contains("/.default")), "{f:?}");
}

#[test]
fn an_integer_past_its_type_is_refused() {
    // Kafka reads a long with Long.parseLong: 2^63 is no long. CEL's int() fails on it, so the
    // rule fails its evaluation instead of passing on the regex; the evaluation error quotes the
    // rule's message (apiserver validation.go: "%v evaluating rule: %v", ruleErrorString).
    for (key, range) in [
        ("flush.ms", "0 to 9223372036854775807"),
        ("retention.ms", "-1 to 9223372036854775807"),
        ("segment.bytes", "14 to 2147483647"),
    ] {
        let f = config_failures(json!({ key: "9999999999999999999" }));
        assert_eq!(f.len(), 1, "{key}: {f:?}");
        assert!(
            f[0].starts_with("spec.config: Invalid value: \"object\": ")
                && f[0].ends_with(&format!(
                    "spec.config.{key}: must be an integer from {range}"
                )),
            "{f:?}"
        );
    }
}
