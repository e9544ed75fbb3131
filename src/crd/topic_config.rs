//! The topic-level configurations of the Kafka versions HDInsight ships — 2.1 (HDInsight 4.0),
//! 2.4 (HDInsight 5.0) and 3.2 (HDInsight 5.1) — as one table. From it come the KafkaTopic CRD's
//! CEL rules on `spec.config` (admission), the operator's own check of `spec.config` (objects
//! stored before those rules, clusters without CEL) and `docs/topic-config.md`.
//!
//! Source of the facts: Apache Kafka's `core/src/main/scala/kafka/log/LogConfig.scala`
//! (`configDef`: name, type, validator) at the tags 2.1.1, 2.4.1 and 3.2.3, with
//! `BrokerCompressionCodec.brokerCompressionOptions` (`kafka/message/CompressionCodec.scala`),
//! `ApiVersion.apply` and its versions (`kafka/api/ApiVersion.scala`) and
//! `ThrottledReplicaListValidator` (`kafka/server/ConfigHandler.scala`) at the same tags; the
//! same definitions are rendered as "Topic-Level Configs" on kafka.apache.org/21/configuration,
//! /24/configuration and /32/configuration. Left out: broker-only settings, and the three internal tiered-storage keys of
//! 3.2 (`remote.storage.enable`, `local.retention.ms`, `local.retention.bytes`, `defineInternal`,
//! left out of 3.2's documentation).

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// A Kafka release HDInsight ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KafkaVersion {
    /// Kafka 2.1, HDInsight 4.0.
    V2_1,
    /// Kafka 2.4, HDInsight 5.0.
    V2_4,
    /// Kafka 3.2, HDInsight 5.1.
    V3_2,
}

impl KafkaVersion {
    pub const ALL: [KafkaVersion; 3] = [KafkaVersion::V2_1, KafkaVersion::V2_4, KafkaVersion::V3_2];

    /// "2.1", "2.4", "3.2".
    pub fn label(self) -> &'static str {
        match self {
            KafkaVersion::V2_1 => "2.1",
            KafkaVersion::V2_4 => "2.4",
            KafkaVersion::V3_2 => "3.2",
        }
    }

    /// The HDInsight release that ships it.
    pub fn hdinsight(self) -> &'static str {
        match self {
            KafkaVersion::V2_1 => "4.0",
            KafkaVersion::V2_4 => "5.0",
            KafkaVersion::V3_2 => "5.1",
        }
    }
}

/// What a config's value must be, as Kafka's `ConfigDef` type and validator define it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConfigType {
    /// `LONG`, optionally `atLeast(min)`.
    Long { min: Option<i64> },
    /// `INT`, optionally `atLeast(min)`.
    Int { min: Option<i64> },
    /// `DOUBLE` with `between(min, max)`.
    Double { min: f64, max: f64 },
    /// `BOOLEAN`.
    Boolean,
    /// `STRING` with `ValidString.in(...)`.
    Enum(&'static [&'static str]),
    /// `LIST` with `ValidList.in(...)`: a comma-separated list of these words.
    List(&'static [&'static str]),
    /// `LIST` with `ThrottledReplicaListValidator`: `*`, or `partition:broker` pairs.
    ThrottledReplicas,
    /// `STRING` with `ApiVersionValidator`: a message format (inter-broker protocol) version.
    MessageFormatVersion,
}

/// One topic-level configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    /// The versions that know it.
    pub versions: &'static [KafkaVersion],
}

use KafkaVersion::{V2_1, V2_4, V3_2};
const ALL: &[KafkaVersion] = &[V2_1, V2_4, V3_2];
const SINCE_2_4: &[KafkaVersion] = &[V2_4, V3_2];

/// `BrokerCompressionCodec.brokerCompressionOptions`, the same in 2.1, 2.4 and 3.2.
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// The table: every topic-level config of Kafka 2.1, 2.4 and 3.2, in `LogConfig` order.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def("segment.bytes", ConfigType::Int { min: Some(14) }, ALL), // LegacyRecord.RECORD_OVERHEAD_V0
    def("segment.ms", ConfigType::Long { min: Some(1) }, ALL),
    def("segment.jitter.ms", ConfigType::Long { min: Some(0) }, ALL),
    def("segment.index.bytes", ConfigType::Int { min: Some(0) }, ALL),
    def("flush.messages", ConfigType::Long { min: Some(0) }, ALL),
    def("flush.ms", ConfigType::Long { min: Some(0) }, ALL),
    // No validator in any version: a negative size means no limit.
    def("retention.bytes", ConfigType::Long { min: None }, ALL),
    // atLeast(-1) since 2.4 (2.1 had no validator but read every negative value as -1).
    def("retention.ms", ConfigType::Long { min: Some(-1) }, ALL),
    def("max.message.bytes", ConfigType::Int { min: Some(0) }, ALL),
    def(
        "index.interval.bytes",
        ConfigType::Int { min: Some(0) },
        ALL,
    ),
    def(
        "delete.retention.ms",
        ConfigType::Long { min: Some(0) },
        ALL,
    ),
    def(
        "min.compaction.lag.ms",
        ConfigType::Long { min: Some(0) },
        ALL,
    ),
    def(
        "max.compaction.lag.ms",
        ConfigType::Long { min: Some(1) },
        SINCE_2_4,
    ),
    def(
        "file.delete.delay.ms",
        ConfigType::Long { min: Some(0) },
        ALL,
    ),
    def(
        "min.cleanable.dirty.ratio",
        ConfigType::Double { min: 0.0, max: 1.0 },
        ALL,
    ),
    def(
        "cleanup.policy",
        ConfigType::List(&["compact", "delete"]),
        ALL,
    ),
    def("unclean.leader.election.enable", ConfigType::Boolean, ALL),
    def("min.insync.replicas", ConfigType::Int { min: Some(1) }, ALL),
    def("compression.type", ConfigType::Enum(COMPRESSION_TYPES), ALL),
    def("preallocate", ConfigType::Boolean, ALL),
    def(
        "message.format.version",
        ConfigType::MessageFormatVersion,
        ALL,
    ),
    def(
        "message.timestamp.type",
        ConfigType::Enum(&["CreateTime", "LogAppendTime"]),
        ALL,
    ),
    def(
        "message.timestamp.difference.max.ms",
        ConfigType::Long { min: Some(0) },
        ALL,
    ),
    def(
        "leader.replication.throttled.replicas",
        ConfigType::ThrottledReplicas,
        ALL,
    ),
    def(
        "follower.replication.throttled.replicas",
        ConfigType::ThrottledReplicas,
        ALL,
    ),
    def("message.downconversion.enable", ConfigType::Boolean, ALL),
];

const fn def(
    name: &'static str,
    kind: ConfigType,
    versions: &'static [KafkaVersion],
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        kind,
        versions,
    }
}

/// The `ApiVersion` names each release accepts as `message.format.version`: every version
/// (`x.y-IVn`) and short version (`x.y`) of `ApiVersion.allVersions`.
fn message_format_versions(version: KafkaVersion) -> Vec<&'static str> {
    // (short version, its IVs), in ApiVersion order. Before 0.10.0 a version has no IV.
    const VERSIONS: &[(&str, &[&str], KafkaVersion)] = &[
        ("0.8.0", &[], V2_1),
        ("0.8.1", &[], V2_1),
        ("0.8.2", &[], V2_1),
        ("0.9.0", &[], V2_1),
        ("0.10.0", &["0.10.0-IV0", "0.10.0-IV1"], V2_1),
        ("0.10.1", &["0.10.1-IV0", "0.10.1-IV1", "0.10.1-IV2"], V2_1),
        ("0.10.2", &["0.10.2-IV0"], V2_1),
        ("0.11.0", &["0.11.0-IV0", "0.11.0-IV1", "0.11.0-IV2"], V2_1),
        ("1.0", &["1.0-IV0"], V2_1),
        ("1.1", &["1.1-IV0"], V2_1),
        ("2.0", &["2.0-IV0", "2.0-IV1"], V2_1),
        ("2.1", &["2.1-IV0", "2.1-IV1", "2.1-IV2"], V2_1),
        ("2.2", &["2.2-IV0", "2.2-IV1"], V2_4),
        ("2.3", &["2.3-IV0", "2.3-IV1"], V2_4),
        ("2.4", &["2.4-IV0", "2.4-IV1"], V2_4),
        ("2.5", &["2.5-IV0"], V3_2),
        ("2.6", &["2.6-IV0"], V3_2),
        ("2.7", &["2.7-IV0", "2.7-IV1", "2.7-IV2"], V3_2),
        ("2.8", &["2.8-IV0", "2.8-IV1"], V3_2),
        ("3.0", &["3.0-IV0", "3.0-IV1"], V3_2),
        ("3.1", &["3.1-IV0"], V3_2),
        ("3.2", &["3.2-IV0"], V3_2),
    ];
    let mut out = Vec::new();
    for (short, ivs, since) in VERSIONS {
        if *since <= version {
            out.push(*short);
            out.extend_from_slice(ivs);
        }
    }
    out
}

/// The config named `name`, if any of the three versions knows it.
pub fn lookup(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The value as Kafka receives it (a string), or None for a value that is no integer or string.
/// Booleans stored before the int-or-string schema are read as "true"/"false".
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn is_integer(s: &str, digits: usize) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    !body.is_empty() && body.len() <= digits && body.bytes().all(|b| b.is_ascii_digit())
}

fn is_decimal(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    exponent_ok
        && !(int.is_empty() && frac.is_empty())
        && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
}

impl TopicConfigDef {
    /// The versions as "2.1, 2.4, 3.2".
    pub fn version_labels(&self) -> String {
        self.versions
            .iter()
            .map(|v| v.label())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The type as the docs name it.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ConfigType::Long { .. } => "long",
            ConfigType::Int { .. } => "int",
            ConfigType::Double { .. } => "double",
            ConfigType::Boolean => "boolean",
            ConfigType::Enum(_) | ConfigType::MessageFormatVersion => "string",
            ConfigType::List(_) | ConfigType::ThrottledReplicas => "list",
        }
    }

    /// The inclusive range of an int or long config: its `atLeast` bound (else the type's
    /// minimum) to the type's maximum.
    pub fn integer_range(&self) -> Option<(i64, i64)> {
        match self.kind {
            ConfigType::Long { min } => Some((min.unwrap_or(i64::MIN), i64::MAX)),
            ConfigType::Int { min } => {
                Some((min.unwrap_or(i64::from(i32::MIN)), i64::from(i32::MAX)))
            }
            _ => None,
        }
    }

    /// What is allowed, in words; admission's messages and the docs use it.
    pub fn allowed(&self) -> String {
        match self.kind {
            ConfigType::Long { .. } | ConfigType::Int { .. } => {
                let (lo, hi) = self.integer_range().unwrap_or_default();
                format!("an integer from {lo} to {hi}")
            }
            ConfigType::Double { min, max } => {
                format!("a number from {min} to {max}, e.g. \"0.5\"")
            }
            ConfigType::Boolean => "\"true\" or \"false\"".to_string(),
            ConfigType::Enum(values) => format!("one of {}", values.join(", ")),
            ConfigType::List(values) => {
                format!("a comma-separated list of {}", values.join(", "))
            }
            ConfigType::ThrottledReplicas => {
                "\"*\" or a comma-separated list of partition:broker pairs".to_string()
            }
            ConfigType::MessageFormatVersion => {
                "a Kafka version the cluster knows, e.g. 2.1, 2.4-IV1, 3.2".to_string()
            }
        }
    }

    /// Checks one value as the three versions would; the error says what is allowed.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let name = self.name;
        let bad = || format!("spec.config.{name}: must be {}", self.allowed());
        // ConfigDef.parseType trims every string value (String.trim) before reading it.
        let text = text(value).ok_or_else(bad)?;
        let s = text.trim_matches(|c: char| c <= ' ').to_string();
        let ok = match self.kind {
            ConfigType::Long { min } => {
                is_integer(&s, 19) && s.parse::<i64>().is_ok_and(|n| min.is_none_or(|m| n >= m))
            }
            ConfigType::Int { min } => {
                is_integer(&s, 10)
                    && s.parse::<i32>()
                        .is_ok_and(|n| min.is_none_or(|m| i64::from(n) >= m))
            }
            ConfigType::Double { min, max } => {
                is_decimal(&s) && s.parse::<f64>().is_ok_and(|n| n >= min && n <= max)
            }
            // Kafka reads booleans with equalsIgnoreCase; admission asks for lower case.
            ConfigType::Boolean => {
                s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")
            }
            ConfigType::Enum(values) => values.contains(&s.as_str()),
            ConfigType::List(values) => s
                .split(',')
                .all(|item| values.contains(&item.trim_matches(' '))),
            ConfigType::ThrottledReplicas => {
                s.trim_matches(' ') == "*"
                    || s.split(',').all(|pair| {
                        pair.trim_matches(' ')
                            .split_once(':')
                            .is_some_and(|(p, b)| {
                                is_integer(p, 10)
                                    && is_integer(b, 10)
                                    && !p.starts_with('-')
                                    && !b.starts_with('-')
                            })
                    })
            }
            ConfigType::MessageFormatVersion => {
                // ApiVersion.apply: the first two dot-separated segments (three for 0.x) name it.
                let n = if s.starts_with("0.") { 3 } else { 2 };
                let key = s.split('.').take(n).collect::<Vec<_>>().join(".");
                KafkaVersion::ALL
                    .iter()
                    .any(|v| message_format_versions(*v).contains(&key.as_str()))
            }
        };
        if ok { Ok(()) } else { Err(bad()) }
    }

    /// The CEL condition that the value `self['<name>']` is allowed. Values are int-or-string,
    /// so each condition reads the value through `string(...)`, which works for both forms.
    fn cel_condition(&self) -> String {
        let v = format!("string(self['{}'])", self.name);
        let words = |values: &[&str]| {
            values
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(",")
        };
        match self.kind {
            ConfigType::Long { min } | ConfigType::Int { min } => {
                let int = matches!(self.kind, ConfigType::Int { .. });
                let digits = if int { 10 } else { 19 };
                // int() runs for every value: a value past the type's range then fails its
                // evaluation instead of passing on the regex alone.
                let sign = if min.is_some_and(|m| m >= 0) {
                    ""
                } else {
                    "-?"
                };
                let (lo, hi) = self.integer_range().unwrap_or_default();
                let mut c =
                    format!("{v}.matches('^{sign}[0-9]{{1,{digits}}}$') && int({v}) >= {lo}");
                if int {
                    c.push_str(&format!(" && int({v}) <= {hi}"));
                }
                c
            }
            ConfigType::Double { min, max } => format!(
                "{v}.matches('^([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$') && double({v}) >= {min:?} && double({v}) <= {max:?}"
            ),
            ConfigType::Boolean => format!("{v} in ['true','false']"),
            ConfigType::Enum(values) => format!("{v} in [{}]", words(values)),
            ConfigType::List(values) => {
                let alt = values.join("|");
                format!("{v}.matches('^ *({alt}) *(, *({alt}) *)*$')")
            }
            ConfigType::ThrottledReplicas => {
                format!("{v}.matches('^ *([*]|[0-9]+:[0-9]+( *, *[0-9]+:[0-9]+)*) *$')")
            }
            ConfigType::MessageFormatVersion => format!(
                "{v}.matches('^(0[.](8[.][0-2]|9[.]0|1[01][.]0|10[.][12])|1[.][01]|2[.][0-8]|3[.][0-2])(-IV[0-2])?([.].*)?$')"
            ),
        }
    }
}

/// Checks `spec.config` against the table: an unknown key or a value none of the three versions
/// accepts is refused, naming the key.
pub fn check_config(config: &BTreeMap<String, Value>) -> Result<(), String> {
    config
        .iter()
        .try_for_each(|(key, value)| check_entry(key, value))
}

/// Checks one `spec.config` entry against the table.
pub fn check_entry(key: &str, value: &Value) -> Result<(), String> {
    lookup(key)
        .ok_or_else(|| unknown_key_message(key))?
        .check(value)
}

fn versions_phrase() -> String {
    KafkaVersion::ALL
        .iter()
        .map(|v| format!("{} (HDInsight {})", v.label(), v.hdinsight()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_key_message(key: &str) -> String {
    format!(
        "spec.config.{key}: not a topic-level config of Kafka {}; see docs/topic-config.md",
        versions_phrase()
    )
}

/// The `x-kubernetes-validations` of `spec.config`: one rule refusing unknown names (its message
/// names the first), then one per known name checking the value.
pub fn cel_rules() -> Vec<Value> {
    let names = TOPIC_CONFIGS
        .iter()
        .map(|d| format!("'{}'", d.name))
        .collect::<Vec<_>>()
        .join(",");
    let mut rules = vec![json!({
        "rule": format!("self.all(k, k in [{names}])"),
        "messageExpression": format!(
            "'spec.config.' + self.filter(k, !(k in [{names}]))[0] + ': not a topic-level config of Kafka {}; see docs/topic-config.md'",
            versions_phrase()
        ),
    })];
    for d in TOPIC_CONFIGS {
        rules.push(json!({
            "rule": format!("!('{}' in self) || ({})", d.name, d.cel_condition()),
            "message": format!("spec.config.{}: must be {}", d.name, d.allowed()),
        }));
    }
    rules
}

/// `docs/topic-config.md`, generated from the table.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str("# Topic configuration\n\n");
    out.push_str("<!-- Generated from src/crd/topic_config.rs by `UPDATE_DOCS=1 cargo test --test docs_current`. Do not edit. -->\n\n");
    out.push_str(&format!(
        "`spec.config` of a KafkaTopic takes the topic-level configs of the Kafka versions HDInsight ships: {}. \
The table below is what admission (the CRD's CEL rules) and the operator check before a topic is created. \
A name any of the three versions knows is accepted at admission, since the CRD cannot know the cluster's version; \
a name the cluster's own version does not know (for example `max.compaction.lag.ms` on HDInsight 4.0) is refused by the cluster when the topic is created, \
and the KafkaTopic then reports `Stalled` `CreateRejected` with the proxy's answer. Configuration is immutable: fixing it means deleting and re-applying the KafkaTopic.\n\n",
        versions_phrase()
    ));
    out.push_str("Values are integers or strings (`x-kubernetes-int-or-string`): write booleans and fractions as strings, e.g. `preallocate: \"true\"`, `min.cleanable.dirty.ratio: \"0.5\"`.\n\n");
    out.push_str("| Name | Type | Allowed values | Kafka versions |\n| --- | --- | --- | --- |\n");
    for d in TOPIC_CONFIGS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            d.name,
            d.type_name(),
            d.allowed().replace('|', "\\|"),
            d.version_labels()
        ));
    }
    out.push_str("\n## Where admission and Kafka differ\n\n");
    out.push_str("- Booleans: Kafka also accepts other letter cases (`TRUE`); admission asks for `true` or `false`. The operator accepts what Kafka accepts (letter case, spaces around a value), so objects stored before these rules keep working.\n");
    out.push_str("- `retention.ms`: Kafka 2.1 accepts any negative value (no time limit); admission asks for -1 or more, as 2.4 and 3.2 do.\n");
    out.push_str("- An integer beyond its type's range (2147483647 for int, 9223372036854775807 for long) fails admission with a CEL evaluation error (`Error executing function 'int'`) followed by the rule's message.\n");
    out.push_str("- `message.format.version`: admission checks the form (`2.4`, `2.4-IV1`, `2.4.1`); the operator checks the exact names of each release's `ApiVersion` (an `-IV` suffix the release does not have is refused before creation).\n");
    out.push_str("- `leader/follower.replication.throttled.replicas`: Kafka tolerates empty items in the list (`1:2,,3:4`); admission does not.\n");
    out.push_str("\n## Sources\n\n");
    out.push_str("Apache Kafka's `LogConfig.configDef` (`core/src/main/scala/kafka/log/LogConfig.scala`) at the tags 2.1.1, 2.4.1 and 3.2.3, \
with `BrokerCompressionCodec` (`kafka/message/CompressionCodec.scala`), `ApiVersion` (`kafka/api/ApiVersion.scala`) and \
`ThrottledReplicaListValidator` (`kafka/server/ConfigHandler.scala`) at the same tags; rendered as \"Topic-Level Configs\" in \
<https://kafka.apache.org/21/configuration>, <https://kafka.apache.org/24/configuration> and \
<https://kafka.apache.org/32/configuration>. The three internal tiered-storage keys 3.2 defines \
(`remote.storage.enable`, `local.retention.ms`, `local.retention.bytes`) are left out: they are undocumented in 3.2.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str, value: Value) -> bool {
        lookup(name).is_some_and(|d| d.check(&value).is_ok())
    }

    #[test]
    fn numbers_are_read_as_admission_reads_them() {
        // Integers: an optional '-', then at most 19 (long) or 10 (int) digits.
        for bad in ["+5", "-", "", "00000000000000000001", "5 5", "0x10"] {
            assert!(!ok("retention.ms", json!(bad)), "retention.ms {bad:?}");
        }
        assert!(ok("retention.ms", json!("0000000000000000001")));
        assert!(!ok("max.message.bytes", json!("00000000001")));
        assert!(ok("max.message.bytes", json!("0000000001")));
        // Decimals: digits with an optional fraction and exponent, nothing else.
        for good in ["5e-1", "5E-1", "0.5e+0", "1", ".5", "1.", "0"] {
            assert!(ok("min.cleanable.dirty.ratio", json!(good)), "{good:?}");
        }
        for bad in [
            "+0.5", "-0", ".", "1e", "5e+", "e5", "inf", "NaN", "0.5e1.0", "0,5",
        ] {
            assert!(!ok("min.cleanable.dirty.ratio", json!(bad)), "{bad:?}");
        }
    }

    #[test]
    fn throttled_replicas_are_partition_broker_pairs_or_a_star() {
        let key = "leader.replication.throttled.replicas";
        for good in ["*", " * ", "0:1001", "0:1001,1:1002", "0:1001, 1:1002"] {
            assert!(ok(key, json!(good)), "{good:?}");
        }
        for bad in ["-1:1001", "0:-1", "0:x", "x:1001", "0", "0:1001,", "**"] {
            assert!(!ok(key, json!(bad)), "{bad:?}");
        }
    }

    #[test]
    fn an_unknown_key_names_the_versions_it_was_checked_against() {
        let err = check_config(&BTreeMap::from_iter([(
            "retention.msx".to_string(),
            json!("1"),
        )]))
        .expect_err("unknown key");
        assert!(
            err.contains(
                "not a topic-level config of Kafka 2.1 (HDInsight 4.0), 2.4 (HDInsight 5.0), 3.2 (HDInsight 5.1)"
            ),
            "{err}"
        );
    }

    #[test]
    fn versions_and_types_are_named_as_the_docs_name_them() {
        let labels: Vec<_> = KafkaVersion::ALL
            .iter()
            .map(|v| (v.label(), v.hdinsight()))
            .collect();
        assert_eq!(labels, [("2.1", "4.0"), ("2.4", "5.0"), ("3.2", "5.1")]);
        let def = |name| lookup(name).expect(name);
        assert_eq!(
            def("message.downconversion.enable").version_labels(),
            "2.1, 2.4, 3.2"
        );
        assert_eq!(def("max.compaction.lag.ms").version_labels(), "2.4, 3.2");
        for (name, type_name) in [
            ("retention.ms", "long"),
            ("segment.bytes", "int"),
            ("min.cleanable.dirty.ratio", "double"),
            ("preallocate", "boolean"),
            ("cleanup.policy", "list"),
            ("compression.type", "string"),
        ] {
            assert_eq!(def(name).type_name(), type_name, "{name}");
        }
        assert_eq!(def("retention.ms").integer_range(), Some((-1, i64::MAX)));
        assert_eq!(
            def("segment.bytes").integer_range(),
            Some((14, i64::from(i32::MAX)))
        );
        assert_eq!(def("min.cleanable.dirty.ratio").integer_range(), None);
    }

    // Facts from LogConfig.scala at 2.1.1 / 2.4.1 / 3.2.3 (kafka.apache.org/21, /24, /32
    // "Topic-Level Configs").
    #[test]
    fn the_table_holds_the_facts_of_each_version() {
        // max.compaction.lag.ms came with KIP-354 in 2.3: absent from 2.1, in 2.4 and 3.2.
        let lag = lookup("max.compaction.lag.ms").map(|d| d.versions);
        assert_eq!(lag, Some(&[V2_4, V3_2][..]));
        // message.downconversion.enable (KIP-283, 2.0) is in all three.
        assert_eq!(
            lookup("message.downconversion.enable").map(|d| d.versions),
            Some(ALL)
        );
        // segment.bytes: INT, atLeast(LegacyRecord.RECORD_OVERHEAD_V0) = 14.
        assert!(ok("segment.bytes", json!(14)) && !ok("segment.bytes", json!(13)));
        assert!(!ok("segment.bytes", json!("2147483648")));
        // retention.ms: LONG atLeast(-1) (2.4, 3.2); retention.bytes: LONG, no validator.
        assert!(ok("retention.ms", json!(-1)) && !ok("retention.ms", json!(-2)));
        assert!(ok("retention.bytes", json!(-5)));
        assert!(ok("retention.ms", json!("9223372036854775807")));
        assert!(!ok("retention.ms", json!("9223372036854775808")));
        // min.cleanable.dirty.ratio: DOUBLE between(0, 1).
        assert!(ok("min.cleanable.dirty.ratio", json!("0.5")));
        assert!(!ok("min.cleanable.dirty.ratio", json!("1.5")));
        // cleanup.policy: LIST ValidList.in(compact, delete).
        assert!(ok("cleanup.policy", json!("compact,delete")));
        assert!(ok("cleanup.policy", json!("delete, compact")));
        assert!(!ok("cleanup.policy", json!("compact,purge")));
        // compression.type: brokerCompressionOptions (zstd since 2.1).
        assert!(ok("compression.type", json!("zstd")) && !ok("compression.type", json!("brotli")));
        // message.timestamp.type: in("CreateTime", "LogAppendTime").
        assert!(ok("message.timestamp.type", json!("LogAppendTime")));
        assert!(!ok("message.timestamp.type", json!("logappendtime")));
        // message.format.version: ApiVersion.apply (first two segments name the version).
        for good in ["0.10.2", "0.10.0-IV1", "2.1-IV2", "2.4.1", "3.2"] {
            assert!(ok("message.format.version", json!(good)), "{good}");
        }
        for bad in ["3.3", "2.1-IV3", "0.7.0", "two"] {
            assert!(!ok("message.format.version", json!(bad)), "{bad}");
        }
        // 3.0-IV1 is known to 3.2 only, but any of the three versions decides admission.
        assert!(message_format_versions(V3_2).contains(&"3.0-IV1"));
        assert!(!message_format_versions(V2_4).contains(&"3.0-IV1"));
        // Throttled replicas: '*' or partition:broker pairs.
        assert!(ok("leader.replication.throttled.replicas", json!("*")));
        assert!(ok(
            "follower.replication.throttled.replicas",
            json!("0:1, 1:2")
        ));
        assert!(!ok("follower.replication.throttled.replicas", json!("0-1")));
        // Booleans, as strings or as stored booleans.
        assert!(ok("preallocate", json!("true")) && ok("preallocate", json!(false)));
        assert!(!ok("preallocate", json!("yes")) && !ok("preallocate", json!(1)));
        // What Kafka's ConfigDef.parseType accepts: trimmed values, booleans in any case.
        assert!(ok("preallocate", json!(" TRUE ")) && ok("retention.ms", json!(" 1000")));
        // Broker-only settings are not topic configs.
        assert!(lookup("log.retention.hours").is_none());
        assert!(lookup("remote.storage.enable").is_none());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_naming_the_key() {
        let config: BTreeMap<String, Value> =
            serde_json::from_value(json!({"retention.ms": 1000, "retention.msec": 5}))
                .unwrap_or_default();
        let err = check_config(&config).err().unwrap_or_default();
        assert!(
            err.starts_with("spec.config.retention.msec: not a topic-level config"),
            "{err}"
        );
        let config: BTreeMap<String, Value> =
            serde_json::from_value(json!({"min.insync.replicas": "0"})).unwrap_or_default();
        assert_eq!(
            check_config(&config),
            Err("spec.config.min.insync.replicas: must be an integer from 1 to 2147483647".into())
        );
    }

    #[test]
    fn every_type_has_a_rule_and_a_message_naming_the_key() {
        let rules = cel_rules();
        assert_eq!(rules.len(), TOPIC_CONFIGS.len() + 1);
        for (rule, d) in rules.iter().skip(1).zip(TOPIC_CONFIGS) {
            let text = rule["rule"].as_str().unwrap_or_default();
            assert!(
                text.starts_with(&format!("!('{}' in self)", d.name)),
                "{text}"
            );
            let message = rule["message"].as_str().unwrap_or_default();
            assert!(message.contains(d.name), "{message}");
        }
    }
}
