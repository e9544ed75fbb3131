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

#[test]
fn config_keys_must_be_kafka_names() {
    let f = failures(
        &topic_schema(),
        &topic("t", json!({"config": {"bad key!": "x"}}), None),
        None,
    );
    assert!(f.iter().any(|m| m.contains("config keys")), "{f:?}");
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
