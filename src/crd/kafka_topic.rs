//! `KafkaTopic`: one Kafka topic on one HDInsight cluster.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Longest Kafka topic name.
pub const MAX_TOPIC_NAME_LEN: usize = 249;
/// At most this many partitions are listed in `status.partitionDetails`.
pub const MAX_PARTITION_DETAILS: usize = 1000;
/// At most this many broker ids are listed in one partition's `replicas` and `isr` (real
/// replication factors are single digits; a proxy answering more is not believed in full).
pub const MAX_REPLICAS_IN_STATUS: usize = 32;
/// `status.partitionDetails` is omitted when its JSON would exceed this many bytes, whatever the
/// proxy answered: status must stay far below etcd's object limit (1.5 MiB by default).
pub const PARTITION_DETAILS_BUDGET: usize = 128 * 1024;

// CEL rules are evaluated by the API server at admission. They are written against the whole
// object (`self`) so that transition rules can see `metadata.name` (the default topic name) and
// `status` (the observed partition count and replication factor).
const RULE_NAME_LENGTH: &str = "has(self.spec.topicName) || size(self.metadata.name) <= 249";
const RULE_TOPIC_NAME_IMMUTABLE: &str = "(has(self.spec.topicName) ? self.spec.topicName : self.metadata.name) == (has(oldSelf.spec.topicName) ? oldSelf.spec.topicName : oldSelf.metadata.name)";
// `namespace` is a CEL reserved word: Kubernetes exposes the field as `__namespace__`. The root's
// `metadata` shows CEL only `name` and `generateName`, not the namespace, so a rule cannot tell
// whether an added `proxyRef.namespace` names the topic's own namespace. It may be added only when
// it names the proxy already in use (`status.proxy`, "namespace/name", written by the operator);
// removing it is refused, since the default it falls back to cannot be checked.
const RULE_PROXY_REF_IMMUTABLE: &str = "(has(self.spec.proxyRef) ? self.spec.proxyRef.name : 'default') == (has(oldSelf.spec.proxyRef) ? oldSelf.spec.proxyRef.name : 'default') && ((has(self.spec.proxyRef) && has(self.spec.proxyRef.__namespace__)) == (has(oldSelf.spec.proxyRef) && has(oldSelf.spec.proxyRef.__namespace__)) ? (!(has(self.spec.proxyRef) && has(self.spec.proxyRef.__namespace__)) || self.spec.proxyRef.__namespace__ == oldSelf.spec.proxyRef.__namespace__) : (has(self.spec.proxyRef) && has(self.spec.proxyRef.__namespace__) && has(oldSelf.status) && has(oldSelf.status.proxy) && oldSelf.status.proxy == self.spec.proxyRef.__namespace__ + '/' + self.spec.proxyRef.name))";
const RULE_REPLICATION_FACTOR_IMMUTABLE: &str = "has(self.spec.replicationFactor) ? ((has(oldSelf.spec.replicationFactor) && self.spec.replicationFactor == oldSelf.spec.replicationFactor) || (!has(oldSelf.spec.replicationFactor) && has(oldSelf.status) && has(oldSelf.status.replicationFactor) && self.spec.replicationFactor == oldSelf.status.replicationFactor)) : !has(oldSelf.spec.replicationFactor)";
const RULE_PARTITIONS: &str = "has(self.spec.partitions) ? ((has(oldSelf.spec.partitions) && self.spec.partitions == oldSelf.spec.partitions) || (has(oldSelf.status) && has(oldSelf.status.partitions) && self.spec.partitions == oldSelf.status.partitions)) : !has(oldSelf.spec.partitions)";
const RULE_CONFIG_IMMUTABLE: &str = "has(self.spec.config) ? (has(oldSelf.spec.config) && self.spec.config == oldSelf.spec.config) : !has(oldSelf.spec.config)";

/// The topic to create (policy Create) or observe (policy Observe). The REST proxy cannot delete
/// topics, change their configuration or add partitions, so deleting a KafkaTopic keeps the
/// topic, and its settings are fixed once it exists.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "kafka.hdinsight.dev",
    version = "v1alpha1",
    kind = "KafkaTopic",
    plural = "kafkatopics",
    singular = "kafkatopic",
    shortname = "hkt",
    category = "hdinsight",
    namespaced,
    status = "KafkaTopicStatus",
    doc = "A Kafka topic on an Azure HDInsight cluster, created and observed through the cluster's Kafka REST proxy.",
    printcolumn(name = "TOPIC", type_ = "string", json_path = ".status.topicName", description = "Kafka topic name"),
    printcolumn(name = "PARTITIONS", type_ = "integer", json_path = ".status.partitions", description = "Partitions reported by the cluster"),
    printcolumn(name = "RF", type_ = "integer", json_path = ".status.replicationFactor", description = "Replication factor reported by the cluster"),
    printcolumn(name = "URP", type_ = "integer", json_path = ".status.underReplicatedPartitions", description = "Under-replicated partitions"),
    printcolumn(name = "READY", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "REASON", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "AGE", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "PROXY", type_ = "string", json_path = ".status.proxyEndpoint", priority = 1),
    validation = Rule::new(RULE_NAME_LENGTH).message("metadata.name is used as the Kafka topic name and may be at most 249 characters; set spec.topicName"),
    validation = Rule::new(RULE_TOPIC_NAME_IMMUTABLE).message("the Kafka topic name (spec.topicName, or metadata.name when it is absent) is immutable").field_path(".spec.topicName"),
    validation = Rule::new(RULE_PROXY_REF_IMMUTABLE).message("spec.proxyRef is immutable: a topic cannot move to another proxy (proxyRef.namespace may be added only when it names the proxy in use, status.proxy, and cannot be removed)").field_path(".spec.proxyRef"),
    validation = Rule::new(RULE_REPLICATION_FACTOR_IMMUTABLE).message("spec.replicationFactor is immutable: the REST proxy cannot change it (it may only be added when equal to status.replicationFactor)").field_path(".spec.replicationFactor"),
    validation = Rule::new(RULE_PARTITIONS).message("spec.partitions cannot change: the REST proxy cannot add partitions (it may only be set to the observed status.partitions)").field_path(".spec.partitions"),
    validation = Rule::new(RULE_CONFIG_IMMUTABLE).message("spec.config is immutable: the REST proxy cannot change a topic's configuration").field_path(".spec.config"),
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicSpec {
    /// The KafkaRestProxy to create the topic through. Defaults to the KafkaRestProxy named
    /// `default` in this namespace. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_ref: Option<ProxyReference>,

    /// The Kafka topic name: letters, digits, '.', '_' and '-', at most 249 characters, not "."
    /// or "..". Defaults to metadata.name. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._-]+$"))]
    #[x_kube(validation = Rule::new("self != '.' && self != '..'").message("topic name may not be '.' or '..'"))]
    pub topic_name: Option<String>,

    /// Number of partitions at creation. Defaults to the cluster's default. The REST proxy cannot
    /// add partitions: this may later only be changed to the value in status.partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub partitions: Option<i32>,

    /// Replication factor at creation. Defaults to the cluster's default. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32))]
    pub replication_factor: Option<i32>,

    /// Kafka topic configuration applied at creation, e.g. `retention.ms: 604800000` or
    /// `cleanup.policy: compact`. Values are integers or strings: write booleans and fractions
    /// as strings ("true", "0.5"). Immutable: the REST proxy can neither change nor read back a
    /// topic's configuration.
    // The values are int-or-string (not free-form) so that the API server can expose the map to
    // CEL; a map whose values have no type is invisible to every rule. Values stay JSON here so
    // that objects stored with booleans before this schema still deserialise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "config_schema")]
    pub config: Option<BTreeMap<String, serde_json::Value>>,

    /// `Create` (default): create the topic if it is missing, then observe it. `Observe`: never
    /// create; only report what the cluster has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_policy: Option<ManagementPolicy>,
}

/// Reference to a KafkaRestProxy.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyReference {
    /// Name of the KafkaRestProxy.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the KafkaRestProxy. Defaults to the KafkaTopic's namespace. The proxy must
    /// allow this namespace in spec.allowedTopicNamespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// Whether the operator creates a missing topic.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ManagementPolicy {
    /// Create the topic if it is missing, then observe it.
    #[default]
    Create,
    /// Never create the topic; only report what the cluster has.
    Observe,
}

/// Whether `spec.config` is known to be in effect (`status.configState`).
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConfigState {
    /// This operator created the topic with spec.config, and the create took effect.
    Applied,
    /// The topic existed before it was adopted: its config cannot be read through the REST
    /// proxy, so spec.config cannot be confirmed.
    Unverifiable,
}

/// Checks and normalises `spec.config` into the `topic_properties` the proxy receives.
/// Integers stay numbers (as Microsoft's sample sends them), booleans and other numbers become
/// strings (Kafka reads every config value as a string); nested values and nulls are refused with
/// the offending key named. Names and values are checked against Kafka's topic-level configs by
/// `topic_config::check_config` (admission runs the same table as CEL rules).
pub fn normalize_config(
    config: &BTreeMap<String, serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    use serde_json::Value;
    let mut out = serde_json::Map::new();
    for (key, value) in config {
        let normalized = match value {
            Value::String(_) => value.clone(),
            Value::Number(n) if n.is_i64() || n.is_u64() => value.clone(),
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(b.to_string()),
            Value::Null => {
                return Err(format!(
                    "spec.config.{key}: a value is required (string, integer or boolean)"
                ));
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(format!(
                    "spec.config.{key}: values must be strings, integers or booleans, not a list or an object"
                ));
            }
        };
        out.insert(key.clone(), normalized);
    }
    Ok(out)
}

fn config_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "Kafka topic configuration applied at creation, e.g. `retention.ms: 604800000` or `cleanup.policy: compact`. Values are integers or strings: write booleans and fractions as strings (\"true\", \"0.5\"). Immutable: the REST proxy can neither change nor read back a topic's configuration.",
        "maxProperties": 100,
        "additionalProperties": { "x-kubernetes-int-or-string": true },
        "x-kubernetes-validations": super::topic_config::cel_rules()
    })
}

/// What the cluster reports about the topic.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The Kafka topic name in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// The KafkaRestProxy in use, as namespace/name.
    // Bounded so that the proxyRef rule, which compares against it, has a small cost estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 317))]
    pub proxy: Option<String>,
    /// The REST proxy endpoint the topic was created through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_endpoint: Option<String>,
    /// Partitions reported by the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Replication factor reported by the cluster (the smallest replica count of any partition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,
    /// Partitions whose in-sync replicas are fewer than their replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub under_replicated_partitions: Option<i32>,
    /// Partitions without a leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_partitions: Option<i32>,
    /// Leader, replicas and in-sync replicas (broker ids) of each partition; at most 1000
    /// entries, at most 32 broker ids per list, at most 128 KiB in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_details: Option<Vec<PartitionDetail>>,
    /// True when partitionDetails was omitted (more than 1000 partitions, or over its size
    /// budget) or a partition's replicas or isr list was cut to 32 entries. The counts above are
    /// always computed from the full answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_details_truncated: Option<bool>,
    /// When the operator asked the proxy to create the topic (most recent attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_requested_at: Option<Time>,
    /// Since when a topic that existed has been missing from the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_since: Option<Time>,
    /// Whether spec.config is known to be in effect on the cluster. `Applied`: this operator's
    /// create carried spec.config and took effect. `Unverifiable`: the topic existed before
    /// (adopted), so its config is whatever it was created with; the REST proxy cannot read a
    /// topic's config back. Absent while spec.config is empty or the topic has not been seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_state: Option<ConfigState>,
    /// Ready, Reconciling, Stalled, Drifted and Paused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// One partition as the cluster reports it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionDetail {
    /// Partition id.
    pub partition: i32,
    /// Broker id of the leader; absent when the partition is offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<i32>,
    /// Broker ids holding a replica.
    #[serde(default)]
    pub replicas: Vec<i32>,
    /// Broker ids of the in-sync replicas.
    #[serde(default)]
    pub isr: Vec<i32>,
}

impl KafkaTopic {
    /// The Kafka topic name: spec.topicName, or metadata.name.
    pub fn kafka_name(&self) -> String {
        self.spec
            .topic_name
            .clone()
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_default()
    }

    /// The effective management policy.
    pub fn policy(&self) -> ManagementPolicy {
        self.spec.management_policy.unwrap_or_default()
    }

    /// The referenced proxy as (namespace, name), defaults applied.
    pub fn proxy_key(&self) -> (String, String) {
        let own_ns = self.metadata.namespace.clone().unwrap_or_default();
        match &self.spec.proxy_ref {
            Some(r) => (r.namespace.clone().unwrap_or(own_ns), r.name.clone()),
            None => (own_ns, "default".to_string()),
        }
    }

    /// Whether the paused annotation is set to "true".
    pub fn is_paused(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::PAUSED_ANNOTATION))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// Checks a Kafka topic name against Kafka's rules; the error says what is wrong.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the topic name is empty".into());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(format!(
            "the topic name is {} characters long; Kafka allows at most {MAX_TOPIC_NAME_LEN}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("the topic name may not be {name:?}"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "the topic name contains {c:?}; Kafka allows only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn config_is_normalised_for_the_proxy() {
        let config: BTreeMap<String, serde_json::Value> = serde_json::from_value(json!({
            "retention.ms": 604800000, "cleanup.policy": "compact", "unclean.leader.election.enable": false,
            "min.cleanable.dirty.ratio": 0.5, "min.insync.replicas": "2"
        }))
        .unwrap_or_default();
        let out = normalize_config(&config).unwrap_or_default();
        assert_eq!(
            serde_json::Value::Object(out),
            json!({
                "retention.ms": 604800000, "cleanup.policy": "compact", "unclean.leader.election.enable": "false",
                "min.cleanable.dirty.ratio": "0.5", "min.insync.replicas": "2"
            })
        );
    }

    #[test]
    fn nested_or_null_config_values_are_refused_naming_the_key() {
        for bad in [
            json!({"a.b": {"x": 1}}),
            json!({"a.b": [1]}),
            json!({"a.b": null}),
        ] {
            let config: BTreeMap<String, serde_json::Value> =
                serde_json::from_value(bad).unwrap_or_default();
            let err = normalize_config(&config).err().unwrap_or_default();
            assert!(err.starts_with("spec.config.a.b:"), "{err}");
        }
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a b", "ä", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }

    #[test]
    fn negative_and_large_integers_stay_numbers() {
        // retention.ms = -1 means "keep forever"; it goes out as the number the user wrote.
        let config: BTreeMap<String, serde_json::Value> = serde_json::from_value(json!({
            "retention.ms": -1, "retention.bytes": u64::MAX
        }))
        .unwrap_or_default();
        let out = normalize_config(&config).unwrap_or_default();
        assert_eq!(
            serde_json::Value::Object(out),
            json!({"retention.ms": -1, "retention.bytes": u64::MAX})
        );
    }

    fn topic(name: &str, namespace: &str, spec: serde_json::Value) -> KafkaTopic {
        let spec: KafkaTopicSpec = serde_json::from_value(spec).expect("spec");
        let mut t = KafkaTopic::new(name, spec);
        t.metadata.namespace = Some(namespace.into());
        t
    }

    #[test]
    fn names_and_proxy_default_from_the_object() {
        let t = topic("orders", "shop", json!({}));
        assert_eq!(t.kafka_name(), "orders");
        assert_eq!(t.proxy_key(), ("shop".to_string(), "default".to_string()));
        let t = topic(
            "orders",
            "shop",
            json!({"topicName": "shop.orders.v2", "proxyRef": {"name": "hdi"}}),
        );
        assert_eq!(t.kafka_name(), "shop.orders.v2");
        assert_eq!(t.proxy_key(), ("shop".to_string(), "hdi".to_string()));
        let t = topic(
            "orders",
            "shop",
            json!({"proxyRef": {"name": "hdi", "namespace": "kafka"}}),
        );
        assert_eq!(t.proxy_key(), ("kafka".to_string(), "hdi".to_string()));
    }

    #[test]
    fn the_paused_annotation_is_true_in_any_case_and_nothing_else() {
        let mut t = topic("orders", "shop", json!({}));
        assert!(!t.is_paused());
        for (value, paused) in [
            ("true", true),
            ("TRUE", true),
            ("false", false),
            ("yes", false),
        ] {
            t.metadata.annotations =
                Some([(crate::crd::PAUSED_ANNOTATION.to_string(), value.to_string())].into());
            assert_eq!(t.is_paused(), paused, "{value}");
        }
    }

    #[test]
    fn the_policy_defaults_and_follows_the_spec() {
        let t = topic("orders", "shop", json!({}));
        assert_eq!(t.policy(), ManagementPolicy::Create);
        let t = topic("orders", "shop", json!({"managementPolicy": "Observe"}));
        assert_eq!(t.policy(), ManagementPolicy::Observe);
    }
}
