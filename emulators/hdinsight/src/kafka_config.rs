//! Kafka's topic-level configs per version, as the broker checks them when a topic is created:
//! unknown names, values that do not parse as the config's type, and values outside its range
//! or set are refused.
//!
//! Source: Apache Kafka's `core/src/main/scala/kafka/log/LogConfig.scala` (`configDef`,
//! `validateNames`, `validateValues`), `clients/.../common/config/TopicConfig.java`,
//! `core/.../message/CompressionCodec.scala`, `core/.../api/ApiVersion.scala` and
//! `core/.../server/KafkaConfig.scala` (`ThrottledReplicaListValidator`), read at the release
//! tags 2.1.1, 2.4.1 and 3.2.0 — the Kafka versions of HDInsight 4.0, 5.0 and 5.1 — and the
//! value parsing of `clients/.../common/config/ConfigDef.java` (`parseType`). Configs that 3.2
//! defines as internal (`remote.storage.enable`, `local.retention.*`) are not part of its
//! documentation and are refused as unknown here.

use serde_json::Value;

/// A Kafka release line HDInsight ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KafkaVersion {
    /// HDInsight 4.0.
    V2_1,
    /// HDInsight 5.0.
    V2_4,
    /// HDInsight 5.1.
    V3_2,
}

impl KafkaVersion {
    /// The newest line, the default.
    pub const NEWEST: KafkaVersion = KafkaVersion::V3_2;

    /// Parses `"3.2.0"`, `"3.2"`, `"2.4.1"`, `"2.1.1"` and the like: the release lines
    /// HDInsight ships.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.trim().split('.');
        let line = (parts.next(), parts.next());
        let patch_ok = match parts.next() {
            None => true,
            Some(p) => !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()),
        };
        let version = match line {
            (Some("2"), Some("1")) => Some(KafkaVersion::V2_1),
            (Some("2"), Some("4")) => Some(KafkaVersion::V2_4),
            (Some("3"), Some("2")) => Some(KafkaVersion::V3_2),
            _ => None,
        };
        match version {
            Some(v) if patch_ok && parts.next().is_none() => Ok(v),
            _ => Err(format!(
                "Kafka version '{text}' is not one HDInsight ships; use 2.1 (HDInsight 4.0), 2.4 (5.0) or 3.2 (5.1)"
            )),
        }
    }

    fn minor_line(self) -> (u32, u32) {
        match self {
            KafkaVersion::V2_1 => (2, 1),
            KafkaVersion::V2_4 => (2, 4),
            KafkaVersion::V3_2 => (3, 2),
        }
    }
}

/// A config the broker refused: the key and Kafka's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRefusal {
    pub key: String,
    pub message: String,
}

#[derive(Clone, Copy)]
enum Kind {
    Int {
        min: Option<i64>,
    },
    Long {
        min: Option<i64>,
    },
    Double {
        min: f64,
        max: f64,
    },
    Bool,
    /// A string from a fixed set (Kafka compares these as given, except compression names,
    /// which are lower-cased first).
    OneOf(&'static [&'static str], bool),
    /// A comma-separated list whose items come from a fixed set.
    ListOf(&'static [&'static str]),
    /// `message.format.version`: an inter-broker protocol version the broker knows.
    ApiVersion,
    /// `*` or a list of `partition:brokerId`.
    ThrottledReplicas,
}

/// `LegacyRecord.RECORD_OVERHEAD_V0`: the smallest `segment.bytes`.
const RECORD_OVERHEAD_V0: i64 = 14;

const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

fn kind(version: KafkaVersion, name: &str) -> Option<Kind> {
    let since_2_4 = version >= KafkaVersion::V2_4;
    Some(match name {
        "segment.bytes" => Kind::Int {
            min: Some(RECORD_OVERHEAD_V0),
        },
        "segment.ms" => Kind::Long { min: Some(1) },
        "segment.jitter.ms"
        | "flush.messages"
        | "flush.ms"
        | "delete.retention.ms"
        | "min.compaction.lag.ms"
        | "file.delete.delay.ms"
        | "message.timestamp.difference.max.ms" => Kind::Long { min: Some(0) },
        "segment.index.bytes" | "max.message.bytes" | "index.interval.bytes" => {
            Kind::Int { min: Some(0) }
        }
        "min.insync.replicas" => Kind::Int { min: Some(1) },
        "retention.bytes" => Kind::Long { min: None },
        // No validator in 2.1; `atLeast(-1)` from 2.4 on.
        "retention.ms" => Kind::Long {
            min: since_2_4.then_some(-1),
        },
        // Added in 2.3.
        "max.compaction.lag.ms" if since_2_4 => Kind::Long { min: Some(1) },
        "min.cleanable.dirty.ratio" => Kind::Double { min: 0.0, max: 1.0 },
        "cleanup.policy" => Kind::ListOf(&["compact", "delete"]),
        "unclean.leader.election.enable" | "preallocate" | "message.downconversion.enable" => {
            Kind::Bool
        }
        "compression.type" => Kind::OneOf(COMPRESSION, true),
        "message.timestamp.type" => Kind::OneOf(&["CreateTime", "LogAppendTime"], false),
        "message.format.version" => Kind::ApiVersion,
        "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas" => {
            Kind::ThrottledReplicas
        }
        _ => return None,
    })
}

/// Kafka's `ConfigException` text.
fn invalid(name: &str, value: &Value, why: &str) -> ConfigRefusal {
    let shown = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    ConfigRefusal {
        key: name.to_string(),
        message: format!("Invalid value {shown} for configuration {name}: {why}"),
    }
}

/// The value as text, the way the proxy hands it on to Kafka (numbers and booleans become
/// their JSON text).
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn check_value(
    version: KafkaVersion,
    name: &str,
    kind: Kind,
    value: &Value,
) -> Result<(), ConfigRefusal> {
    let Some(raw) = text(value) else {
        return Err(invalid(name, value, "Expected a string, number or boolean"));
    };
    match kind {
        Kind::Int { min } | Kind::Long { min } => {
            let parsed = match kind {
                Kind::Int { .. } => raw
                    .parse::<i32>()
                    .map(i64::from)
                    .map_err(|_| invalid(name, value, "Not a number of type INT"))?,
                _ => raw
                    .parse::<i64>()
                    .map_err(|_| invalid(name, value, "Not a number of type LONG"))?,
            };
            if let Some(min) = min
                && parsed < min
            {
                return Err(invalid(
                    name,
                    value,
                    &format!("Value must be at least {min}"),
                ));
            }
        }
        Kind::Double { min, max } => {
            let parsed = raw
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| invalid(name, value, "Not a number of type DOUBLE"))?;
            if parsed < min {
                return Err(invalid(
                    name,
                    value,
                    &format!("Value must be at least {min}"),
                ));
            }
            if parsed > max {
                return Err(invalid(
                    name,
                    value,
                    &format!("Value must be no more than {max}"),
                ));
            }
        }
        Kind::Bool => {
            if !raw.eq_ignore_ascii_case("true") && !raw.eq_ignore_ascii_case("false") {
                return Err(invalid(
                    name,
                    value,
                    "Expected value to be either true or false",
                ));
            }
        }
        Kind::OneOf(allowed, lower) => {
            let probe = if lower {
                raw.to_ascii_lowercase()
            } else {
                raw.clone()
            };
            if !allowed.contains(&probe.as_str()) {
                return Err(invalid(
                    name,
                    value,
                    &format!("String must be one of: {}", allowed.join(", ")),
                ));
            }
        }
        Kind::ListOf(allowed) => {
            for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if !allowed.contains(&item) {
                    return Err(invalid(
                        name,
                        value,
                        &format!(
                            "Invalid value {item}; the valid values are [{}]",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
        }
        Kind::ApiVersion => {
            if !api_version_known(version, &raw) {
                return Err(invalid(
                    name,
                    value,
                    &format!("Version `{raw}` is not a valid version"),
                ));
            }
        }
        Kind::ThrottledReplicas => {
            let ok = raw == "*"
                || raw
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .all(|item| {
                        item.split_once(':').is_some_and(|(p, b)| {
                            p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
                        })
                    });
            if !ok {
                return Err(invalid(
                    name,
                    value,
                    "Value must be a list of partition:brokerId pairs or the wildcard '*'",
                ));
            }
        }
    }
    Ok(())
}

/// `ApiVersion(text)`: `major.minor[.patch][-IVn]` for a release line from 0.8 up to the
/// broker's own.
fn api_version_known(version: KafkaVersion, raw: &str) -> bool {
    let base = raw.split_once("-IV").map_or(raw, |(base, iv)| {
        if iv.chars().all(|c| c.is_ascii_digit()) && !iv.is_empty() {
            base
        } else {
            "invalid"
        }
    });
    let parts: Vec<&str> = base.split('.').collect();
    let numbers: Option<Vec<u32>> = parts.iter().map(|p| p.parse::<u32>().ok()).collect();
    let Some(numbers) = numbers else {
        return false;
    };
    let line = match numbers.as_slice() {
        // 0.x versions carry three parts (0.10.2), later ones two (2.1) or three (2.1.0).
        [0, minor, _] | [0, minor, _, _] => (0, *minor),
        [major, minor] | [major, minor, _] if *major > 0 => (*major, *minor),
        _ => return false,
    };
    let known_zero = (0, 8)..=(0, 11);
    let (top_major, top_minor) = version.minor_line();
    known_zero.contains(&line)
        || (((1, 0)..=(top_major, top_minor)).contains(&line) && valid_line(line))
}

fn valid_line((major, minor): (u32, u32)) -> bool {
    match major {
        1 => minor <= 1,
        2 => minor <= 8,
        3 => minor <= 9,
        _ => false,
    }
}

/// Checks a create's `topic_properties` against `version`'s topic configs. The first refused
/// key, in name order, is reported.
pub(crate) fn check(
    version: KafkaVersion,
    properties: &serde_json::Map<String, Value>,
) -> Result<(), ConfigRefusal> {
    let mut names: Vec<&String> = properties.keys().collect();
    names.sort();
    for name in names {
        let Some(kind) = kind(version, name) else {
            return Err(ConfigRefusal {
                key: name.clone(),
                message: format!("Unknown topic config name: {name}"),
            });
        };
        if let Some(value) = properties.get(name) {
            check_value(version, name, kind, value)?;
        }
    }
    // `validateValues` (2.3 and later): the compaction lags must not cross.
    if version >= KafkaVersion::V2_4 {
        let long = |key: &str, default: i64| {
            properties
                .get(key)
                .and_then(text)
                .and_then(|t| t.parse::<i64>().ok())
                .unwrap_or(default)
        };
        let min = long("min.compaction.lag.ms", 0);
        let max = long("max.compaction.lag.ms", i64::MAX);
        if min > max {
            return Err(ConfigRefusal {
                key: "min.compaction.lag.ms".to_string(),
                message: format!(
                    "conflict topic config setting min.compaction.lag.ms ({min}) > max.compaction.lag.ms ({max})"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn versions_hdinsight_ships_parse_and_others_do_not() {
        for (text, want) in [
            ("2.1.1", KafkaVersion::V2_1),
            ("2.1", KafkaVersion::V2_1),
            ("2.4.1", KafkaVersion::V2_4),
            ("3.2.0", KafkaVersion::V3_2),
        ] {
            assert_eq!(KafkaVersion::parse(text), Ok(want), "{text}");
        }
        for bad in ["", "3", "3.3.0", "1.1.0", "3.2.x", "3.2.0.1", "latest"] {
            assert!(KafkaVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_samples_values_pass_on_every_version() {
        // Microsoft's sample sends numbers and strings alike.
        let sample = props(
            json!({"retention.ms": 604800000, "min.insync.replicas": "2",
            "cleanup.policy": "compact,delete", "compression.type": "LZ4",
            "unclean.leader.election.enable": false, "min.cleanable.dirty.ratio": "0.5",
            "message.format.version": "2.1-IV2", "leader.replication.throttled.replicas": "0:1001,1:1002"}),
        );
        for v in [KafkaVersion::V2_1, KafkaVersion::V2_4, KafkaVersion::V3_2] {
            assert_eq!(check(v, &sample), Ok(()), "{v:?}");
        }
    }

    #[test]
    fn refusals_name_the_key() {
        let cases = [
            (
                json!({"retention.msx": 1}),
                "retention.msx",
                "Unknown topic config name",
            ),
            (json!({"retention.ms": "soon"}), "retention.ms", "LONG"),
            (json!({"retention.ms": -2}), "retention.ms", "at least -1"),
            (json!({"segment.bytes": 13}), "segment.bytes", "at least 14"),
            (
                json!({"segment.bytes": 3_000_000_000_i64}),
                "segment.bytes",
                "INT",
            ),
            (
                json!({"min.insync.replicas": 0}),
                "min.insync.replicas",
                "at least 1",
            ),
            (
                json!({"min.cleanable.dirty.ratio": 1.5}),
                "min.cleanable.dirty.ratio",
                "no more than 1",
            ),
            (
                json!({"cleanup.policy": "compact,forever"}),
                "cleanup.policy",
                "forever",
            ),
            (
                json!({"compression.type": "brotli"}),
                "compression.type",
                "one of",
            ),
            (
                json!({"message.timestamp.type": "createtime"}),
                "message.timestamp.type",
                "one of",
            ),
            (
                json!({"preallocate": "yes"}),
                "preallocate",
                "true or false",
            ),
            (
                json!({"message.format.version": "3.3"}),
                "message.format.version",
                "not a valid version",
            ),
            (
                json!({"follower.replication.throttled.replicas": "0-1001"}),
                "follower.replication.throttled.replicas",
                "partition:brokerId",
            ),
            (
                json!({"min.compaction.lag.ms": 10, "max.compaction.lag.ms": 5}),
                "min.compaction.lag.ms",
                "conflict",
            ),
            (
                json!({"retention.bytes": {"x": 1}}),
                "retention.bytes",
                "Expected",
            ),
        ];
        for (value, key, fragment) in cases {
            let refusal = check(KafkaVersion::V3_2, &props(value.clone())).expect_err("refused");
            assert_eq!(refusal.key, key, "{value}");
            assert!(
                refusal.message.contains(fragment),
                "{value}: {}",
                refusal.message
            );
        }
    }

    #[test]
    fn versions_differ_where_kafka_did() {
        // max.compaction.lag.ms arrived in 2.3.
        let lag = props(json!({"max.compaction.lag.ms": 1000}));
        assert!(check(KafkaVersion::V2_1, &lag).is_err());
        assert!(check(KafkaVersion::V2_4, &lag).is_ok());
        // retention.ms has no lower bound in 2.1 and `atLeast(-1)` in 2.4.
        let forever = props(json!({"retention.ms": -5}));
        assert!(check(KafkaVersion::V2_1, &forever).is_ok());
        assert!(check(KafkaVersion::V2_4, &forever).is_err());
        // A message format newer than the broker is unknown to it.
        let format = props(json!({"message.format.version": "2.4"}));
        assert!(check(KafkaVersion::V2_1, &format).is_err());
        assert!(check(KafkaVersion::V2_4, &format).is_ok());
        // 3.2's internal tiered-storage configs are not documented topic configs.
        let remote = props(json!({"remote.storage.enable": true}));
        assert!(check(KafkaVersion::V3_2, &remote).is_err());
    }
}
