//! The spec checks: topic names, config normalisation and `plan::validate` against the CRD.

use super::*;
use crate::decoders::bytes_of;

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
