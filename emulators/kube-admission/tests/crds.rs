//! Admission against the repository's own CRDs (`crds/*.yaml`), with the messages kube-apiserver
//! prints.
#![allow(clippy::unwrap_used)]

use kube_admission::{CompiledSchema, FieldError, FieldErrorKind, invalid_status};
use serde_json::{Value, json};

fn schema(file: &str) -> CompiledSchema {
    let path = format!("{}/../../crds/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    CompiledSchema::compile(&crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]).unwrap()
}

fn topics() -> CompiledSchema {
    schema("kafkatopics.yaml")
}

fn proxies() -> CompiledSchema {
    schema("kafkarestproxies.yaml")
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

fn proxy(spec: Value) -> Value {
    json!({"apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaRestProxy",
           "metadata": {"name": "main", "namespace": "kafka-system"}, "spec": spec})
}

/// The messages of the errors admission reports (empty when admitted).
fn messages(s: &CompiledSchema, obj: &Value, old: Option<&Value>) -> Vec<String> {
    let mut obj = obj.clone();
    match s.admit(&mut obj, old) {
        Ok(()) => vec![],
        Err(errors) => errors.into_iter().map(|e| e.message).collect(),
    }
}

const BLOCKED: &str = "<nil>: Invalid value: \"null\": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

#[test]
fn a_complete_topic_is_admitted_unchanged() {
    let t = topic(
        "orders",
        json!({"proxyRef": {"name": "main", "namespace": "kafka-system"}, "topicName": "orders.v1",
               "partitions": 12, "replicationFactor": 3, "managementPolicy": "Create",
               "config": {"retention.ms": 604800000, "cleanup.policy": "delete", "unclean.leader.election.enable": "false"}}),
        Some(json!({"partitions": 12, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Created", "message": "", "lastTransitionTime": "2026-01-02T03:04:05Z"}]})),
    );
    let mut admitted = t.clone();
    topics().admit(&mut admitted, None).unwrap();
    assert_eq!(admitted, t);
}

#[test]
fn unknown_fields_are_pruned_and_config_values_are_ints_or_strings() {
    let mut t = topic(
        "orders",
        json!({"topicName": "orders", "colour": "blue", "proxyRef": {"name": "p", "port": 1},
               "config": {"retention.ms": "1000", "segment.bytes": 1048576, "preallocate": "true",
                          "min.cleanable.dirty.ratio": "0.5"}}),
        Some(json!({"partitions": 3, "extra": 1})),
    );
    t["metadata"]["labels"] = json!({"team": "a"});
    t["unknownTopLevel"] = json!({"a": 1});
    topics().admit(&mut t, None).unwrap();
    assert_eq!(
        t,
        json!({
            "apiVersion": "kafka.hdinsight.dev/v1alpha1",
            "kind": "KafkaTopic",
            "metadata": {"name": "orders", "namespace": "team-a", "labels": {"team": "a"}},
            "spec": {"topicName": "orders", "proxyRef": {"name": "p"},
                     "config": {"retention.ms": "1000", "segment.bytes": 1048576, "preallocate": "true",
                                "min.cleanable.dirty.ratio": "0.5"}},
            "status": {"partitions": 3},
        })
    );
}

// spec.config values are x-kubernetes-int-or-string: booleans and fractions must be written as
// strings, as a real server's schema validation demands (kube-openapi type errors).
#[test]
fn config_values_of_other_types_are_refused() {
    let t = topic(
        "orders",
        json!({"config": {"preallocate": true, "min.cleanable.dirty.ratio": 0.5}}),
        None,
    );
    assert_eq!(
        messages(&topics(), &t, None),
        vec![
            "spec.config.min.cleanable.dirty.ratio: Invalid value: \"number\": spec.config.min.cleanable.dirty.ratio in body must be of type integer,string: \"number\"",
            "spec.config.preallocate: Invalid value: \"boolean\": spec.config.preallocate in body must be of type integer,string: \"boolean\"",
            BLOCKED,
        ]
    );
}

#[test]
fn defaults_of_the_schema_are_applied() {
    let mut t = topic(
        "orders",
        json!({}),
        Some(json!({"partitionDetails": [{"partition": 0, "leader": 1001}]})),
    );
    topics().admit(&mut t, None).unwrap();
    assert_eq!(
        t["status"]["partitionDetails"][0],
        json!({"partition": 0, "leader": 1001, "isr": [], "replicas": []})
    );
}

#[test]
fn bounds_are_checked_with_the_servers_words() {
    let s = topics();
    assert_eq!(
        messages(&s, &topic("t", json!({"partitions": 0}), None), None),
        vec![
            "spec.partitions: Invalid value: 0: spec.partitions in body should be greater than or equal to 1"
        ]
    );
    assert_eq!(
        messages(&s, &topic("t", json!({"partitions": 100001}), None), None),
        vec![
            "spec.partitions: Invalid value: 100001: spec.partitions in body should be less than or equal to 100000"
        ]
    );
    assert_eq!(
        messages(
            &s,
            &topic("t", json!({"replicationFactor": 33}), None),
            None
        ),
        vec![
            "spec.replicationFactor: Invalid value: 33: spec.replicationFactor in body should be less than or equal to 32"
        ]
    );
    assert!(messages(&s, &topic("t", json!({"partitions": 100000}), None), None).is_empty());
}

#[test]
fn required_fields_are_required() {
    let s = topics();
    let mut no_spec = topic("t", json!({}), None);
    no_spec.as_object_mut().unwrap().remove("spec");
    assert_eq!(
        messages(&s, &no_spec, None),
        vec!["spec: Required value", BLOCKED]
    );
    assert_eq!(
        messages(
            &s,
            &topic("t", json!({"proxyRef": {"namespace": "x"}}), None),
            None
        ),
        vec!["spec.proxyRef.name: Required value", BLOCKED]
    );
}

#[test]
fn enums_list_the_supported_values() {
    assert_eq!(
        messages(
            &topics(),
            &topic("t", json!({"managementPolicy": "Delete"}), None),
            None
        ),
        vec![
            "spec.managementPolicy: Unsupported value: \"Delete\": supported values: \"Create\", \"Observe\"",
            BLOCKED
        ]
    );
}

#[test]
fn nullable_fields_accept_null() {
    let mut t = topic(
        "t",
        json!({"managementPolicy": null, "partitions": null}),
        None,
    );
    topics().admit(&mut t, None).unwrap();
    assert_eq!(
        t["spec"],
        json!({"managementPolicy": null, "partitions": null})
    );
}

#[test]
fn string_length_and_pattern() {
    let s = topics();
    assert_eq!(
        messages(
            &s,
            &topic("t", json!({"topicName": "a".repeat(250)}), None),
            None
        ),
        vec![
            "spec.topicName: Too long: may not be more than 249 bytes",
            BLOCKED
        ]
    );
    assert_eq!(
        messages(
            &s,
            &topic("t", json!({"topicName": "bad name!"}), None),
            None
        ),
        vec![
            "spec.topicName: Invalid value: \"bad name!\": spec.topicName in body should match '^[a-zA-Z0-9._-]+$'"
        ]
    );
    assert_eq!(
        messages(&s, &topic("t", json!({"topicName": ""}), None), None),
        vec![
            "spec.topicName: Invalid value: \"\": spec.topicName in body should be at least 1 chars long"
        ]
    );
}

#[test]
fn types_are_checked_and_whole_floats_are_integers() {
    let s = topics();
    assert_eq!(
        messages(&s, &topic("t", json!({"partitions": "3"}), None), None),
        vec![
            "spec.partitions: Invalid value: \"string\": spec.partitions in body must be of type integer: \"string\"",
            BLOCKED
        ]
    );
    assert_eq!(
        messages(&s, &topic("t", json!({"partitions": 3.5}), None), None),
        vec![
            "spec.partitions: Invalid value: \"number\": spec.partitions in body must be of type integer: \"number\"",
            BLOCKED
        ]
    );
    assert_eq!(
        messages(&s, &topic("t", json!({"proxyRef": "main"}), None), None),
        vec![
            "spec.proxyRef: Invalid value: \"string\": spec.proxyRef in body must be of type object: \"string\"",
            BLOCKED
        ]
    );
    let mut whole = topic("t", json!({"partitions": 3.0}), None);
    s.admit(&mut whole, None).unwrap();
    assert_eq!(whole["spec"]["partitions"], json!(3));
    assert!(whole["spec"]["partitions"].is_i64());
}

#[test]
fn int32_fields_refuse_larger_numbers() {
    let f = messages(
        &topics(),
        &topic(
            "t",
            json!({}),
            Some(json!({"offlinePartitions": 2147483648_i64})),
        ),
        None,
    );
    assert_eq!(
        f,
        vec![
            "<nil>: Invalid value: \"\": Checked value must be of type integer with format int32 in status.offlinePartitions"
        ]
    );
}

#[test]
fn date_times_must_be_rfc3339() {
    let cond = |t: &str| {
        topic(
            "t",
            json!({}),
            Some(
                json!({"conditions": [{"type": "Ready", "status": "True", "reason": "R", "message": "", "lastTransitionTime": t}]}),
            ),
        )
    };
    let s = topics();
    assert!(messages(&s, &cond("2026-01-02T03:04:05.123+01:00"), None).is_empty());
    assert_eq!(
        messages(&s, &cond("yesterday"), None),
        vec![
            "status.conditions[0].lastTransitionTime: Invalid value: \"yesterday\": status.conditions[0].lastTransitionTime in body must be of type date-time: \"yesterday\"",
            BLOCKED
        ]
    );
}

#[test]
fn map_lists_refuse_duplicate_keys() {
    let c = json!({"type": "Ready", "status": "True", "reason": "R", "message": "", "lastTransitionTime": "2026-01-02T03:04:05Z"});
    let t = topic("t", json!({}), Some(json!({"conditions": [c.clone(), c]})));
    assert_eq!(
        messages(&topics(), &t, None),
        vec!["status.conditions[1]: Duplicate value: map[string]interface {}{\"type\":\"Ready\"}"]
    );
}

#[test]
fn metadata_name_must_be_a_dns_subdomain() {
    assert_eq!(
        messages(
            &topics(),
            &topic("Bad_Name", json!({"topicName": "ok"}), None),
            None
        ),
        vec![
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ]
    );
    // apimachinery validation.go IsDNS1123Subdomain: at most 253 characters, inclusive.
    let longest = "a".repeat(253);
    assert!(
        messages(
            &topics(),
            &topic(&longest, json!({"topicName": "ok"}), None),
            None
        )
        .is_empty()
    );
    let long = "a".repeat(254);
    assert_eq!(
        messages(
            &topics(),
            &topic(&long, json!({"topicName": "ok"}), None),
            None
        ),
        vec![format!(
            "metadata.name: Invalid value: \"{long}\": must be no more than 253 characters"
        )]
    );
}

#[test]
fn topic_names_dot_and_dot_dot_are_refused() {
    for bad in [".", ".."] {
        assert_eq!(
            messages(
                &topics(),
                &topic("t", json!({"topicName": bad}), None),
                None
            ),
            vec!["spec.topicName: Invalid value: \"string\": topic name may not be '.' or '..'"]
        );
    }
}

#[test]
fn a_long_metadata_name_needs_a_topic_name() {
    let long = "a".repeat(250);
    assert_eq!(
        messages(&topics(), &topic(&long, json!({}), None), None),
        vec![
            "<nil>: Invalid value: \"object\": metadata.name is used as the Kafka topic name and may be at most 249 characters; set spec.topicName"
        ]
    );
    assert!(
        messages(
            &topics(),
            &topic(&long, json!({"topicName": "short"}), None),
            None
        )
        .is_empty()
    );
}

#[test]
fn config_keys_and_count_are_limited() {
    let s = topics();
    assert_eq!(
        messages(
            &s,
            &topic("t", json!({"config": {"bad key!": "x"}}), None),
            None
        ),
        vec![
            "spec.config: Invalid value: \"object\": spec.config.bad key!: not a topic-level config of Kafka 2.1 (HDInsight 4.0), 2.4 (HDInsight 5.0), 3.2 (HDInsight 5.1); see docs/topic-config.md"
        ]
    );
    let many: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("k{i}"), json!(i))).collect();
    assert_eq!(
        messages(&s, &topic("t", json!({"config": many}), None), None),
        vec![
            "spec.config: Too many: 101: must have at most 100 items",
            BLOCKED
        ]
    );
}

#[test]
fn partitions_may_only_move_to_the_observed_count() {
    let s = topics();
    let refused = "spec.partitions: Invalid value: \"object\": spec.partitions cannot change: the REST proxy cannot add partitions (it may only be set to the observed status.partitions)";
    let old = topic(
        "t",
        json!({"partitions": 3}),
        Some(json!({"partitions": 6})),
    );
    let with = |p: Value| topic("t", p, Some(json!({"partitions": 6})));
    assert_eq!(
        messages(&s, &with(json!({"partitions": 12})), Some(&old)),
        vec![refused]
    );
    assert!(messages(&s, &with(json!({"partitions": 6})), Some(&old)).is_empty());
    assert!(messages(&s, &old, Some(&old)).is_empty());
    assert_eq!(messages(&s, &with(json!({})), Some(&old)), vec![refused]);
    let old_unset = topic("t", json!({}), Some(json!({"partitions": 6})));
    assert!(messages(&s, &with(json!({"partitions": 6})), Some(&old_unset)).is_empty());
    assert_eq!(
        messages(&s, &with(json!({"partitions": 7})), Some(&old_unset)),
        vec![refused]
    );
    // On create the transition rule does not apply.
    assert!(messages(&s, &with(json!({"partitions": 12})), None).is_empty());
}

#[test]
fn topic_name_is_immutable_but_may_spell_out_the_default() {
    let s = topics();
    let refused = "spec.topicName: Invalid value: \"object\": the Kafka topic name (spec.topicName, or metadata.name when it is absent) is immutable";
    let old = topic("orders", json!({}), None);
    assert!(
        messages(
            &s,
            &topic("orders", json!({"topicName": "orders"}), None),
            Some(&old)
        )
        .is_empty()
    );
    assert_eq!(
        messages(
            &s,
            &topic("orders", json!({"topicName": "orders.v2"}), None),
            Some(&old)
        ),
        vec![refused]
    );
    let named = topic("orders", json!({"topicName": "orders.v1"}), None);
    assert_eq!(
        messages(&s, &topic("orders", json!({}), None), Some(&named)),
        vec![refused]
    );
}

#[test]
fn proxy_ref_is_immutable_but_may_spell_out_the_default() {
    let s = topics();
    let refused = "spec.proxyRef: Invalid value: \"object\": spec.proxyRef is immutable: a topic cannot move to another proxy (proxyRef.namespace may be added only when it names the proxy in use, status.proxy, and cannot be removed)";
    let old = topic("t", json!({}), None);
    assert!(
        messages(
            &s,
            &topic("t", json!({"proxyRef": {"name": "default"}}), None),
            Some(&old)
        )
        .is_empty()
    );
    assert_eq!(
        messages(
            &s,
            &topic("t", json!({"proxyRef": {"name": "other"}}), None),
            Some(&old)
        ),
        vec![refused]
    );
    let old = topic(
        "t",
        json!({"proxyRef": {"name": "p", "namespace": "a"}}),
        None,
    );
    assert_eq!(
        messages(
            &s,
            &topic(
                "t",
                json!({"proxyRef": {"name": "p", "namespace": "b"}}),
                None
            ),
            Some(&old)
        ),
        vec![refused]
    );
}

#[test]
fn replication_factor_and_config_are_immutable() {
    let s = topics();
    let rf = "spec.replicationFactor: Invalid value: \"object\": spec.replicationFactor is immutable: the REST proxy cannot change it (it may only be added when equal to status.replicationFactor)";
    let config = "spec.config: Invalid value: \"object\": spec.config is immutable: the REST proxy cannot change a topic's configuration";
    let old = topic(
        "t",
        json!({"replicationFactor": 3, "config": {"retention.ms": 1000}}),
        Some(json!({"replicationFactor": 3})),
    );
    let new = |spec: Value| topic("t", spec, Some(json!({"replicationFactor": 3})));
    assert_eq!(
        messages(
            &s,
            &new(json!({"replicationFactor": 2, "config": {"retention.ms": 1000}})),
            Some(&old)
        ),
        vec![rf]
    );
    assert_eq!(
        messages(
            &s,
            &new(json!({"replicationFactor": 3, "config": {"retention.ms": 2000}})),
            Some(&old)
        ),
        vec![config]
    );
    assert_eq!(
        messages(&s, &new(json!({"replicationFactor": 3})), Some(&old)),
        vec![config]
    );
    assert!(
        messages(
            &s,
            &new(json!({"replicationFactor": 3, "config": {"retention.ms": 1000}, "managementPolicy": "Observe"})),
            Some(&old)
        )
        .is_empty()
    );
    let old = topic("t", json!({}), Some(json!({"replicationFactor": 3})));
    assert!(messages(&s, &new(json!({"replicationFactor": 3})), Some(&old)).is_empty());
    assert_eq!(
        messages(&s, &new(json!({"replicationFactor": 2})), Some(&old)),
        vec![rf]
    );
}

#[test]
fn status_updates_pass_the_same_rules() {
    // The status subresource stores the whole object: rules run on it too, and an unchanged
    // spec keeps passing.
    let s = topics();
    let old = topic(
        "t",
        json!({"partitions": 3}),
        Some(json!({"partitions": 3})),
    );
    let new = topic(
        "t",
        json!({"partitions": 3}),
        Some(json!({"partitions": 6, "topicName": "t"})),
    );
    assert!(messages(&s, &new, Some(&old)).is_empty());
}

#[test]
fn proxy_endpoint_must_be_https_unless_allowed() {
    let s = proxies();
    let spec = |extra: Value| {
        let mut spec = json!({"credentials": {"secretRef": {"name": "sp"}}});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        proxy(spec)
    };
    let https = "spec.endpoint: Invalid value: \"object\": spec.endpoint must be an https:// URL (http:// only with allowInsecureHttp: true)";
    assert!(
        messages(
            &s,
            &spec(json!({"endpoint": "https://c-kafkarest.azurehdinsight.net"})),
            None
        )
        .is_empty()
    );
    assert_eq!(
        messages(
            &s,
            &spec(json!({"endpoint": "http://c-kafkarest.azurehdinsight.net"})),
            None
        ),
        vec![https]
    );
    assert!(
        messages(
            &s,
            &spec(json!({"endpoint": "http://127.0.0.1:8080", "allowInsecureHttp": true})),
            None
        )
        .is_empty()
    );
    assert_eq!(
        messages(&s, &spec(json!({"endpoint": "not a url"})), None),
        vec![https]
    );
    assert_eq!(
        messages(
            &s,
            &spec(json!({"endpoint": "https://x", "allowedTopicNamespaces": {"from": "Selector"}})),
            None
        ),
        vec![
            "spec.allowedTopicNamespaces: Invalid value: \"object\": selector is required with from: Selector, and allowed only then"
        ]
    );
    assert_eq!(
        messages(
            &s,
            &spec(json!({"endpoint": "https://x", "scope": "https://hib.azurehdinsight.net"})),
            None
        ),
        vec![
            "spec.scope: Invalid value: \"string\": scope must end with /.default (client-credentials tokens)"
        ]
    );
    assert_eq!(
        messages(&s, &proxy(json!({"endpoint": "https://x"})), None),
        vec!["spec.credentials: Required value", BLOCKED]
    );
}

#[test]
fn errors_become_a_422_status() {
    let mut t = topic("orders", json!({"partitions": 0}), None);
    let errors = topics().admit(&mut t, None).unwrap_err();
    assert_eq!(
        invalid_status("KafkaTopic", "kafka.hdinsight.dev", "orders", &errors),
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "KafkaTopic.kafka.hdinsight.dev \"orders\" is invalid: spec.partitions: Invalid value: 0: spec.partitions in body should be greater than or equal to 1",
            "reason": "Invalid",
            "details": {"name": "orders", "group": "kafka.hdinsight.dev", "kind": "KafkaTopic", "causes": [
                {"reason": "FieldValueInvalid", "message": "Invalid value: 0: spec.partitions in body should be greater than or equal to 1", "field": "spec.partitions"}
            ]},
            "code": 422,
        })
    );
    let mut t = topic("orders", json!({"managementPolicy": "Delete"}), None);
    let errors = topics().admit(&mut t, None).unwrap_err();
    assert_eq!(errors[0].kind, FieldErrorKind::NotSupported);
    assert_eq!(errors[0].field, "spec.managementPolicy");
    assert_eq!(errors[0].value, Some(json!("Delete")));
    assert_eq!(
        errors[0].detail,
        "supported values: \"Create\", \"Observe\""
    );
    let status = invalid_status("KafkaTopic", "kafka.hdinsight.dev", "orders", &errors);
    assert_eq!(
        status["message"],
        format!(
            "KafkaTopic.kafka.hdinsight.dev \"orders\" is invalid: [spec.managementPolicy: Unsupported value: \"Delete\": supported values: \"Create\", \"Observe\", {BLOCKED}]"
        )
    );
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueNotSupported"
    );
    assert_eq!(status["details"]["causes"][1]["field"], "<nil>");
}

#[test]
fn identical_messages_are_listed_once() {
    let e = FieldError {
        field: "spec.x".into(),
        kind: FieldErrorKind::Required,
        value: None,
        message: "spec.x: Required value".into(),
        detail: String::new(),
    };
    let status = invalid_status("Widget", "", "w", &[e.clone(), e]);
    assert_eq!(
        status["message"],
        "Widget \"w\" is invalid: spec.x: Required value"
    );
    assert_eq!(status["details"]["causes"].as_array().unwrap().len(), 2);
}

#[test]
fn admitting_many_topics_is_cheap() {
    let s = topics();
    let old = topic(
        "orders",
        json!({"topicName": "orders", "partitions": 6, "replicationFactor": 3, "config": {"retention.ms": 1000}}),
        Some(json!({"partitions": 6, "replicationFactor": 3})),
    );
    let start = std::time::Instant::now();
    for i in 0..2000 {
        let mut new = old.clone();
        new["status"]["observedGeneration"] = json!(i);
        s.admit(&mut new, Some(&old)).unwrap();
    }
    // Debug build on a shared machine: generous, but catches accidental per-call compilation.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn status_updates_of_large_topics_stay_cheap() {
    let s = topics();
    let details: Vec<Value> = (0..1000)
        .map(|p| json!({"partition": p, "leader": 1001, "replicas": [1001, 1002, 1003], "isr": [1001, 1002, 1003]}))
        .collect();
    let old = topic(
        "orders",
        json!({"partitions": 1000, "replicationFactor": 3}),
        Some(json!({"partitions": 1000, "partitionDetails": details, "observedGeneration": 1})),
    );
    let start = std::time::Instant::now();
    for i in 0..20 {
        let mut new = old.clone();
        new["status"]["partitionDetails"][0]["isr"] = json!([1001, 1002]);
        new["status"]["observedGeneration"] = json!(i + 2);
        s.admit(&mut new, Some(&old)).unwrap();
    }
    let per_call = start.elapsed() / 20;
    // Debug build on a shared machine; a release build is about ten times faster.
    assert!(
        per_call < std::time::Duration::from_millis(200),
        "{per_call:?}"
    );
    eprintln!("admit of a 1000-partition status update: {per_call:?}");
}

#[test]
fn unknown_fields_are_listed_for_warnings_and_strict_validation() {
    let mut t = topic(
        "orders",
        json!({"colour": "blue", "proxyRef": {"name": "p", "port": 1}, "config": {"retention.ms": "1000"}}),
        Some(json!({"partitionDetails": [{"partition": 0, "extra": true}]})),
    );
    t["unknownTopLevel"] = json!(1);
    t["metadata"]["labels"] = json!({"a": "b"});
    let s = topics();
    assert_eq!(
        s.unknown_fields(&t),
        vec![
            "spec.colour",
            "spec.proxyRef.port",
            "status.partitionDetails[0].extra",
            "unknownTopLevel"
        ]
    );
    s.admit(&mut t, None).unwrap();
    assert!(s.unknown_fields(&t).is_empty());
}
