//! Wire shapes of the Kafka REST proxy, with its exact (mixed snake/camel case) field names, and
//! the decoders that turn response bodies into them. Decoders are lenient where the contract is
//! vague (leader `null` or id -1, consume as array or object) and strict elsewhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Body of `PUT /v1/topics/{topic}`. `None` and empty fields are left out of the JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TopicCreationRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub topic_properties: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    #[serde(rename = "hostName")]
    pub host_name: String,
    pub port: i32,
    pub id: i32,
    #[serde(default)]
    pub rack: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMetadata {
    pub partition_id: i32,
    pub earliest_offset: i64,
    pub latest_offset: i64,
    /// `None` when the partition has no leader (`null`, absent, or a broker with id -1).
    #[serde(default, deserialize_with = "leader_or_none")]
    pub leader: Option<BrokerEndpoint>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub replicas: Vec<BrokerEndpoint>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub isr: Vec<BrokerEndpoint>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPartitions {
    pub topic: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub partitions: Vec<PartitionMetadata>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProducerRecord {
    pub value: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumeRecord {
    #[serde(default, deserialize_with = "text_or_json")]
    pub key: Option<String>,
    #[serde(default, deserialize_with = "text_or_json")]
    pub value: Option<String>,
    pub partition: i32,
    pub offset: i64,
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default, rename = "timestampType")]
    pub timestamp_type: Option<String>,
}

/// Records read from one partition, and the `NextOffset` response header when the proxy sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumeResponse {
    pub records: Vec<ConsumeRecord>,
    pub next_offset: Option<i64>,
}

fn leader_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<BrokerEndpoint>, D::Error> {
    #[derive(Deserialize)]
    struct Leader {
        #[serde(default, rename = "hostName")]
        host_name: Option<String>,
        #[serde(default)]
        port: Option<i32>,
        id: i32,
        #[serde(default)]
        rack: Option<String>,
    }
    let leader: Option<Leader> = Option::deserialize(d)?;
    Ok(leader.filter(|l| l.id >= 0).map(|l| BrokerEndpoint {
        host_name: l.host_name.unwrap_or_default(),
        port: l.port.unwrap_or_default(),
        id: l.id,
        rack: l.rack,
    }))
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Keys and values are strings on the wire; anything else is kept as its JSON text.
fn text_or_json<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// Why a body did not decode; the client turns it into `ProxyError::Malformed`.
pub(crate) fn malformed(what: &str, e: serde_json::Error) -> String {
    format!("{what}: {e}")
}

/// `{"brokers":[..]}`, or a bare array. Public so that the decoders can be exercised on
/// arbitrary bytes by the property tests; the client maps the error to `ProxyError::Malformed`.
pub fn decode_brokers(body: &[u8]) -> Result<Vec<BrokerEndpoint>, String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        Object { brokers: Vec<BrokerEndpoint> },
        Array(Vec<BrokerEndpoint>),
    }
    match serde_json::from_slice::<Shape>(body) {
        Ok(Shape::Object { brokers } | Shape::Array(brokers)) => Ok(brokers),
        Err(e) => Err(malformed("broker list", e)),
    }
}

/// `{"topics":[..]}` without internal topics (names starting with `__`).
pub fn decode_topic_list(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Topics {
        topics: Vec<String>,
    }
    let topics: Topics = serde_json::from_slice(body).map_err(|e| malformed("topic list", e))?;
    Ok(topics
        .topics
        .into_iter()
        .filter(|t| !t.starts_with("__"))
        .collect())
}

/// The body of `GET /v1/metadata/topics/{topic}/partitions`.
pub fn decode_topic_partitions(body: &[u8]) -> Result<TopicPartitions, String> {
    serde_json::from_slice(body).map_err(|e| malformed("topic partitions", e))
}

/// The body of `GET /v1/metadata/topics/{topic}/partitions/{partition}`.
pub fn decode_partition(body: &[u8]) -> Result<PartitionMetadata, String> {
    serde_json::from_slice(body).map_err(|e| malformed("partition metadata", e))
}

/// A bare array of records or `{"records":[..]}`; `next_offset` comes from the header.
pub fn decode_consume(
    body: &[u8],
    next_offset_header: Option<&str>,
) -> Result<ConsumeResponse, String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        Array(Vec<ConsumeRecord>),
        Object {
            #[serde(default, deserialize_with = "null_as_empty")]
            records: Vec<ConsumeRecord>,
        },
    }
    let records = match serde_json::from_slice::<Shape>(body) {
        Ok(Shape::Array(records) | Shape::Object { records }) => records,
        Err(e) => return Err(malformed("consumed records", e)),
    };
    let next_offset = match next_offset_header {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<i64>()
                .map_err(|_| format!("NextOffset header {v:?} is not an integer"))?,
        ),
    };
    Ok(ConsumeResponse {
        records,
        next_offset,
    })
}

/// The 200 body of status/create/produce: "a string (content unknown)". A JSON string is
/// unquoted; anything else is returned as text.
pub fn decode_text(body: &[u8]) -> String {
    match serde_json::from_slice::<String>(body) {
        Ok(s) => s,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn creation_record_skips_empty_fields() {
        let empty = TopicCreationRecord::default();
        assert_eq!(serde_json::to_string(&empty).expect("serializes"), "{}");
        let mut props = BTreeMap::new();
        props.insert("retention.ms".to_string(), json!(604800000));
        props.insert("min.insync.replicas".to_string(), json!("2"));
        let full = TopicCreationRecord {
            partition_count: Some(6),
            replication_factor: Some(3),
            topic_properties: props,
        };
        assert_eq!(
            serde_json::to_value(&full).expect("serializes"),
            json!({"partition_count":6,"replication_factor":3,"topic_properties":{"min.insync.replicas":"2","retention.ms":604800000}})
        );
    }

    #[test]
    fn partition_leader_null_minus_one_and_present() {
        let broker = json!({"hostName":"wn0","port":9092,"id":1001,"rack":"/fd0/ud0"});
        let base = |leader: serde_json::Value| json!({"partition_id":0,"earliest_offset":0,"latest_offset":5,"leader":leader,"replicas":[broker.clone()],"isr":[]});
        let p = decode_partition(base(broker.clone()).to_string().as_bytes()).expect("valid");
        assert_eq!(p.leader.as_ref().map(|l| l.id), Some(1001));
        assert_eq!(
            p.leader.as_ref().and_then(|l| l.rack.clone()).as_deref(),
            Some("/fd0/ud0")
        );
        assert_eq!(p.replicas.len(), 1);
        assert_eq!(p.latest_offset, 5);
        let p = decode_partition(base(json!(null)).to_string().as_bytes()).expect("valid");
        assert_eq!(p.leader, None);
        let p = decode_partition(
            base(json!({"hostName":"","port":-1,"id":-1}))
                .to_string()
                .as_bytes(),
        )
        .expect("valid");
        assert_eq!(p.leader, None);
        let p = decode_partition(
            br#"{"partition_id":1,"earliest_offset":0,"latest_offset":0,"replicas":null}"#,
        )
        .expect("valid");
        assert!(p.leader.is_none() && p.replicas.is_empty() && p.isr.is_empty());
    }

    #[test]
    fn broker_rack_may_be_absent_or_null() {
        let b = decode_brokers(br#"{"brokers":[{"hostName":"a","port":1,"id":1},{"hostName":"b","port":2,"id":2,"rack":null}]}"#)
            .expect("valid");
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|b| b.rack.is_none()));
        assert_eq!(b[0].host_name, "a");
    }

    #[test]
    fn topic_list_filters_internal_topics() {
        let t = decode_topic_list(br#"{"topics":["a","__consumer_offsets","b_"]}"#).expect("valid");
        assert_eq!(t, vec!["a".to_string(), "b_".to_string()]);
        assert!(decode_topic_list(br#"{"topics":"a"}"#).is_err());
        assert!(decode_topic_list(br#"{"topi"#).is_err());
    }

    #[test]
    fn consume_accepts_array_and_object() {
        let rec = json!({"key":"k","value":"v","partition":0,"offset":3,"timestamp":1,"timestampType":"CreateTime"});
        let a = decode_consume(json!([rec.clone()]).to_string().as_bytes(), None).expect("valid");
        let o = decode_consume(json!({"records":[rec]}).to_string().as_bytes(), Some("4"))
            .expect("valid");
        assert_eq!(a.records, o.records);
        assert_eq!(a.next_offset, None);
        assert_eq!(o.next_offset, Some(4));
        assert_eq!(o.records[0].timestamp_type.as_deref(), Some("CreateTime"));
        assert!(decode_consume(b"[]", Some("x")).is_err());
        let n = decode_consume(
            br#"[{"key":null,"value":{"a":1},"partition":0,"offset":0}]"#,
            None,
        )
        .expect("valid");
        assert_eq!(n.records[0].key, None);
        assert_eq!(n.records[0].value.as_deref(), Some(r#"{"a":1}"#));
    }

    #[test]
    fn every_truncation_of_a_valid_body_is_an_error_not_a_panic() {
        let body = json!({"topic":"t","partitions":[{"partition_id":0,"earliest_offset":0,"latest_offset":1,
            "leader":{"hostName":"h","port":1,"id":1},"replicas":[],"isr":[]}]})
        .to_string();
        for cut in 0..body.len() {
            let prefix = &body.as_bytes()[..cut];
            assert!(decode_topic_partitions(prefix).is_err());
            assert!(decode_consume(prefix, None).is_err());
            assert!(decode_brokers(prefix).is_err());
            assert!(decode_topic_list(prefix).is_err());
            assert!(decode_partition(prefix).is_err());
        }
        assert!(decode_topic_partitions(body.as_bytes()).is_ok());
    }

    #[test]
    fn text_bodies() {
        assert_eq!(decode_text(br#""ok""#), "ok");
        assert_eq!(decode_text(b" running \n"), "running");
        assert_eq!(decode_text(br#"{"a":1}"#), r#"{"a":1}"#);
    }

    #[test]
    fn producer_record_wire_shape() {
        let r = ProducerRecord {
            value: json!({"x":1}),
            key: None,
            partition: Some(2),
        };
        assert_eq!(
            serde_json::to_value(&r).expect("serializes"),
            json!({"value":{"x":1},"partition":2})
        );
    }
}
