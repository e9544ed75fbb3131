//! The in-memory Kafka cluster: brokers, topics, partitions, offsets, and the metadata cache
//! that makes new topics show up late.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{EmulatorConfig, LatestOffsetAs, LeaderlessAs, RackAs};
use crate::kafka_config::{self, ConfigRefusal, KafkaVersion};

pub(crate) const CONSUMER_OFFSETS: &str = "__consumer_offsets";
const CONSUMER_OFFSETS_PARTITIONS: i32 = 50;
const BROKER_PORT: i32 = 9092;

#[derive(Clone, Debug)]
pub(crate) struct Broker {
    pub id: i32,
    pub host: String,
    pub rack: Option<String>,
    pub up: bool,
}

impl Broker {
    fn endpoint(&self, rack_as: RackAs) -> Value {
        let mut endpoint = json!({"hostName": self.host, "port": BROKER_PORT, "id": self.id});
        let rack = match rack_as {
            RackAs::Set => Some(json!(self.rack)),
            RackAs::Null => Some(Value::Null),
            RackAs::Absent => None,
        };
        if let (Some(rack), Some(map)) = (rack, endpoint.as_object_mut()) {
            map.insert("rack".to_string(), rack);
        }
        endpoint
    }
}

#[derive(Clone, Debug)]
pub(crate) struct StoredRecord {
    pub key: Option<String>,
    pub value: String,
    pub timestamp_ms: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct Partition {
    pub replicas: Vec<i32>,
    pub earliest: i64,
    pub latest: i64,
    /// Records produced over HTTP, by offset. Offsets without an entry (advanced through the
    /// control API) read back as generated records.
    pub records: BTreeMap<i64, StoredRecord>,
    pub created_ms: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct Topic {
    pub partitions: Vec<Partition>,
    /// Listed and describable from this instant on.
    pub visible_at: Instant,
    /// Deleted out of band: still listed until this instant.
    pub gone_at: Option<Instant>,
    pub properties: serde_json::Map<String, Value>,
    next_partition: usize,
}

impl Topic {
    /// Whether a management node whose cache lags `lag` behind lists and describes the topic.
    fn visible(&self, now: Instant, lag: Duration) -> bool {
        now >= later(self.visible_at, lag) && !self.gone(now, lag)
    }

    /// Whether a node lagging `lag` has seen the out-of-band deletion.
    fn gone(&self, now: Instant, lag: Duration) -> bool {
        self.gone_at.is_some_and(|at| now >= later(at, lag))
    }
}

/// Why a topic could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CreateError {
    InvalidName(String),
    Invalid(String),
    Exists,
    InvalidConfig(ConfigRefusal),
}

impl CreateError {
    pub(crate) fn code(&self) -> &'static str {
        match self {
            CreateError::InvalidName(_) => "invalid_topic_name",
            CreateError::Invalid(_) => "invalid_request",
            CreateError::Exists => "topic_already_exists",
            CreateError::InvalidConfig(_) => "invalid_config",
        }
    }

    pub(crate) fn message(&self, topic: &str) -> String {
        match self {
            CreateError::InvalidName(why) => format!("Invalid topic name '{topic}': {why}"),
            CreateError::Invalid(why) => why.clone(),
            CreateError::Exists => format!("Topic '{topic}' already exists."),
            CreateError::InvalidConfig(refusal) => refusal.message.clone(),
        }
    }
}

/// Why a produce or consume call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DataError {
    UnknownTopic,
    UnknownPartition(i32),
    Offline(i32),
}

pub(crate) struct Cluster {
    pub brokers: Vec<Broker>,
    pub topics: BTreeMap<String, Topic>,
    leaderless_as: LeaderlessAs,
    rack_as: RackAs,
    latest_offset_as: LatestOffsetAs,
    kafka_version: KafkaVersion,
    retention: i64,
    /// The lag of the slowest management node: a deleted topic is dropped only once every node
    /// stopped listing it.
    max_lag: Duration,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `now + delay`, or a century from now for absurd delays (instead of an overflow).
fn later(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// Kafka's legal topic names: 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub(crate) fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".to_string());
    }
    if name.len() > 249 {
        return Err("the name is longer than 249 characters".to_string());
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' are not allowed".to_string());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "'{}' is not allowed; use only ASCII letters, digits, '.', '_' and '-'",
            bad.escape_default()
        ));
    }
    Ok(())
}

/// FNV-1a (64-bit) of a topic name: a stable choice of the broker that holds a topic's first
/// replica, the same on every run.
fn fnv1a(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// An index in `0..n` picked by a stable hash of `name`: the live broker that holds a topic's
/// first replica, the partition of a keyed record.
fn pick(name: &str, n: usize) -> usize {
    let n = u64::try_from(n.max(1)).unwrap_or(1);
    usize::try_from(fnv1a(name) % n).unwrap_or(0)
}

impl Cluster {
    pub(crate) fn new(config: &EmulatorConfig) -> Self {
        let brokers = (0..config.brokers.max(1))
            .map(|i| Broker {
                id: 1001 + i32::try_from(i).unwrap_or(0),
                host: format!("wn{i}-kafka.emulator.internal"),
                rack: Some(format!("/fd{}/ud{}", i % 3, i % 3)),
                up: true,
            })
            .collect();
        let mut cluster = Cluster {
            brokers,
            topics: BTreeMap::new(),
            leaderless_as: config.leaderless_as,
            rack_as: config.rack_as,
            latest_offset_as: config.latest_offset_as,
            kafka_version: KafkaVersion::parse(&config.kafka_version)
                .unwrap_or(KafkaVersion::NEWEST),
            retention: config.retention_records.max(1),
            max_lag: config.max_node_lag(),
        };
        let rf = config.effective_default_replication_factor();
        let now = Instant::now();
        let partitions = cluster.place(CONSUMER_OFFSETS, CONSUMER_OFFSETS_PARTITIONS, rf);
        cluster.topics.insert(
            CONSUMER_OFFSETS.to_string(),
            Topic {
                partitions,
                visible_at: now,
                gone_at: None,
                properties: serde_json::Map::new(),
                next_partition: 0,
            },
        );
        cluster
    }

    pub(crate) fn live_brokers(&self) -> usize {
        self.brokers.iter().filter(|b| b.up).count()
    }

    /// Round-robin placement over the live brokers, starting at a broker picked from the name;
    /// neighbouring brokers sit in different racks, so replicas spread over racks.
    fn place(&self, name: &str, partitions: i32, rf: i32) -> Vec<Partition> {
        let live: Vec<i32> = self.brokers.iter().filter(|b| b.up).map(|b| b.id).collect();
        let n = live.len().max(1);
        let start = pick(name, n);
        let rf = usize::try_from(rf).unwrap_or(1).min(live.len());
        let created_ms = now_ms();
        (0..usize::try_from(partitions).unwrap_or(0))
            .map(|p| Partition {
                replicas: (0..rf).map(|j| live[(start + p + j) % n]).collect(),
                earliest: 0,
                latest: 0,
                records: BTreeMap::new(),
                created_ms,
            })
            .collect()
    }

    /// Drops a topic whose out-of-band deletion became visible.
    fn purge(&mut self, name: &str, now: Instant) {
        if self
            .topics
            .get(name)
            .is_some_and(|t| t.gone(now, self.max_lag))
        {
            self.topics.remove(name);
        }
    }

    pub(crate) fn create(
        &mut self,
        name: &str,
        partitions: i32,
        rf: i32,
        max_partitions: i32,
        properties: serde_json::Map<String, Value>,
        visible_after: Duration,
    ) -> Result<(), CreateError> {
        validate_topic_name(name).map_err(CreateError::InvalidName)?;
        if partitions < 1 {
            return Err(CreateError::Invalid(format!(
                "Number of partitions must be larger than 0 (got {partitions})."
            )));
        }
        if partitions > max_partitions {
            return Err(CreateError::Invalid(format!(
                "Number of partitions {partitions} exceeds the limit of {max_partitions}."
            )));
        }
        if rf < 1 {
            return Err(CreateError::Invalid(format!(
                "Replication factor must be larger than 0 (got {rf})."
            )));
        }
        let live = self.live_brokers();
        if usize::try_from(rf).unwrap_or(usize::MAX) > live {
            return Err(CreateError::Invalid(format!(
                "Replication factor: {rf} larger than available brokers: {live}."
            )));
        }
        let now = Instant::now();
        self.purge(name, now);
        if self.topics.contains_key(name) {
            return Err(CreateError::Exists);
        }
        // Like the broker: an existing topic is reported before its configs are looked at.
        kafka_config::check(self.kafka_version, &properties).map_err(CreateError::InvalidConfig)?;
        let placed = self.place(name, partitions, rf);
        self.topics.insert(
            name.to_string(),
            Topic {
                partitions: placed,
                visible_at: later(now, visible_after),
                gone_at: None,
                properties,
                next_partition: 0,
            },
        );
        Ok(())
    }

    /// Marks a topic deleted; it stays visible for `after` if it was visible. Returns whether
    /// the topic existed.
    pub(crate) fn delete(&mut self, name: &str, after: Duration) -> bool {
        let now = Instant::now();
        self.purge(name, now);
        match self.topics.get_mut(name) {
            Some(topic) if topic.gone_at.is_none() => {
                if topic.visible(now, Duration::ZERO) {
                    topic.gone_at = Some(later(now, after));
                } else {
                    self.topics.remove(name);
                }
                true
            }
            _ => false,
        }
    }

    pub(crate) fn set_broker(&mut self, id: i32, up: bool) -> bool {
        match self.brokers.iter_mut().find(|b| b.id == id) {
            Some(broker) => {
                broker.up = up;
                true
            }
            None => false,
        }
    }

    fn broker(&self, id: i32) -> Option<&Broker> {
        // Ids are dense from 1001.
        usize::try_from(id - 1001)
            .ok()
            .and_then(|i| self.brokers.get(i))
            .filter(|b| b.id == id)
    }

    fn endpoint(&self, id: i32) -> Value {
        match self.broker(id) {
            Some(b) => b.endpoint(self.rack_as),
            None => json!({"hostName": "", "port": -1, "id": id, "rack": null}),
        }
    }

    pub(crate) fn brokers_json(&self) -> Value {
        let brokers: Vec<Value> = self
            .brokers
            .iter()
            .filter(|b| b.up)
            .map(|b| b.endpoint(self.rack_as))
            .collect();
        json!({ "brokers": brokers })
    }

    /// The topic list as a management node lagging `lag` has it cached.
    pub(crate) fn list(&mut self, include_internal: bool, lag: Duration) -> Vec<String> {
        let now = Instant::now();
        let max_lag = self.max_lag;
        let gone: Vec<String> = self
            .topics
            .iter()
            .filter(|(_, t)| t.gone(now, max_lag))
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            self.topics.remove(&name);
        }
        self.topics
            .iter()
            .filter(|(name, t)| {
                t.visible(now, lag) && (include_internal || !name.starts_with("__"))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn visible_topic(&mut self, name: &str, lag: Duration) -> Option<&mut Topic> {
        let now = Instant::now();
        self.purge(name, now);
        self.topics.get_mut(name).filter(|t| t.visible(now, lag))
    }

    fn partition_json(&self, id: usize, p: &Partition) -> Value {
        let isr: Vec<Value> = p
            .replicas
            .iter()
            .filter(|r| self.broker(**r).is_some_and(|b| b.up))
            .map(|r| self.endpoint(*r))
            .collect();
        let leader = p
            .replicas
            .iter()
            .find(|r| self.broker(**r).is_some_and(|b| b.up))
            .map(|r| self.endpoint(*r))
            .unwrap_or_else(|| match self.leaderless_as {
                LeaderlessAs::Null => Value::Null,
                LeaderlessAs::MinusOne => {
                    json!({"hostName": "", "port": -1, "id": -1, "rack": null})
                }
            });
        json!({
            "partition_id": id,
            "earliest_offset": p.earliest,
            "latest_offset": match self.latest_offset_as {
                LatestOffsetAs::LogEnd => p.latest,
                LatestOffsetAs::LastRecord => p.latest - 1,
            },
            "leader": leader,
            "replicas": p.replicas.iter().map(|r| self.endpoint(*r)).collect::<Vec<_>>(),
            "isr": isr,
        })
    }

    pub(crate) fn describe(&mut self, name: &str, lag: Duration) -> Option<Value> {
        self.visible_topic(name, lag)?;
        let topic = self.topics.get(name)?;
        let partitions: Vec<Value> = topic
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| self.partition_json(i, p))
            .collect();
        Some(json!({"topic": name, "partitions": partitions}))
    }

    pub(crate) fn describe_partition(
        &mut self,
        name: &str,
        partition: i32,
        lag: Duration,
    ) -> Option<Value> {
        self.visible_topic(name, lag)?;
        let topic = self.topics.get(name)?;
        let index = usize::try_from(partition).ok()?;
        let p = topic.partitions.get(index)?;
        Some(self.partition_json(index, p))
    }

    fn partition_online(&self, p: &Partition) -> bool {
        p.replicas
            .iter()
            .any(|r| self.broker(*r).is_some_and(|b| b.up))
    }

    /// Appends records; `cache` applies a management node's metadata cache lagging that much
    /// (HTTP produce).
    pub(crate) fn produce(
        &mut self,
        name: &str,
        records: Vec<(Option<i32>, Option<String>, String)>,
        cache: Option<Duration>,
    ) -> Result<Vec<(i32, i64)>, DataError> {
        let now = Instant::now();
        self.purge(name, now);
        let retention = self.retention;
        let topic = self.topics.get(name).ok_or(DataError::UnknownTopic)?;
        if cache.is_some_and(|lag| !topic.visible(now, lag)) {
            return Err(DataError::UnknownTopic);
        }
        let count = topic.partitions.len();
        let mut targets = Vec::with_capacity(records.len());
        let mut next = topic.next_partition;
        for (partition, key, _) in &records {
            let index = match (partition, key) {
                // Past the last partition: refused by the lookup below.
                (Some(p), _) => usize::try_from(*p).map_err(|_| DataError::UnknownPartition(*p))?,
                (None, Some(key)) => pick(key, count),
                (None, None) => {
                    next = (next + 1) % count.max(1);
                    next
                }
            };
            let Some(target) = topic.partitions.get(index) else {
                return Err(DataError::UnknownPartition(
                    i32::try_from(index).unwrap_or(-1),
                ));
            };
            if !self.partition_online(target) {
                return Err(DataError::Offline(i32::try_from(index).unwrap_or(-1)));
            }
            targets.push(index);
        }
        let timestamp_ms = now_ms();
        let topic = self.topics.get_mut(name).ok_or(DataError::UnknownTopic)?;
        topic.next_partition = next;
        let mut written = Vec::with_capacity(records.len());
        for ((_, key, value), index) in records.into_iter().zip(targets) {
            let Some(p) = topic.partitions.get_mut(index) else {
                continue;
            };
            let offset = p.latest;
            p.records.insert(
                offset,
                StoredRecord {
                    key,
                    value,
                    timestamp_ms,
                },
            );
            p.latest = p.latest.saturating_add(1);
            trim(p, retention);
            written.push((i32::try_from(index).unwrap_or(-1), offset));
        }
        Ok(written)
    }

    /// Advances a partition's log end by `n` generated records (control API).
    pub(crate) fn advance(&mut self, name: &str, partition: i32, n: usize) -> bool {
        let retention = self.retention;
        let Some(p) = self
            .topics
            .get_mut(name)
            .and_then(|t| t.partitions.get_mut(usize::try_from(partition).ok()?))
        else {
            return false;
        };
        p.latest = p
            .latest
            .saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        trim(p, retention);
        true
    }

    /// Reads up to `count` records from `offset` (moved up to the earliest offset), at most
    /// `max_bytes` of JSON. Returns the records and the next offset.
    pub(crate) fn consume(
        &mut self,
        name: &str,
        partition: i32,
        offset: i64,
        count: i64,
        max_bytes: usize,
        lag: Duration,
    ) -> Result<(Vec<Value>, i64), DataError> {
        let now = Instant::now();
        self.purge(name, now);
        let topic = self
            .topics
            .get(name)
            .filter(|t| t.visible(now, lag))
            .ok_or(DataError::UnknownTopic)?;
        let p = usize::try_from(partition)
            .ok()
            .and_then(|i| topic.partitions.get(i))
            .ok_or(DataError::UnknownPartition(partition))?;
        if !self.partition_online(p) {
            return Err(DataError::Offline(partition));
        }
        let start = offset.max(p.earliest);
        let end = p.latest.min(start.saturating_add(count.max(0)));
        let mut out = Vec::new();
        let mut size = 0usize;
        let mut next = offset.max(0);
        let mut at = start;
        while at < end {
            let (key, value, ts) = match p.records.get(&at) {
                Some(r) => (r.key.clone(), r.value.clone(), r.timestamp_ms),
                None => (None, format!("record-{at}"), p.created_ms),
            };
            let record = json!({
                "key": key,
                "value": value,
                "partition": partition,
                "offset": at,
                "timestamp": ts,
                "timestampType": "CreateTime",
            });
            // The record's JSON plus a separating comma.
            size += serde_json::to_string(&record).map_or(0, |text| text.len()) + 1;
            if size > max_bytes && !out.is_empty() {
                break;
            }
            out.push(record);
            next = at + 1;
            at += 1;
        }
        Ok((out, next))
    }
}

/// A topic as kept in a state file: placement, offsets and properties (records are not kept;
/// they read back as generated records).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SavedTopic {
    pub name: String,
    pub partitions: Vec<SavedPartition>,
    #[serde(default)]
    pub properties: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SavedPartition {
    pub replicas: Vec<i32>,
    pub earliest: i64,
    pub latest: i64,
}

impl Cluster {
    /// Every topic that exists and is not deleted, visible yet or not.
    pub(crate) fn save(&self) -> Vec<SavedTopic> {
        let now = Instant::now();
        self.topics
            .iter()
            .filter(|(_, t)| t.gone_at.is_none() || !t.gone(now, Duration::ZERO))
            .map(|(name, t)| SavedTopic {
                name: name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| SavedPartition {
                        replicas: p.replicas.clone(),
                        earliest: p.earliest,
                        latest: p.latest,
                    })
                    .collect(),
                properties: t.properties.clone(),
            })
            .collect()
    }

    /// Replaces the topics with saved ones, all visible at once.
    pub(crate) fn restore(&mut self, saved: Vec<SavedTopic>) -> Result<(), String> {
        let mut topics = BTreeMap::new();
        let now = Instant::now();
        let created_ms = now_ms();
        for topic in saved {
            validate_topic_name(&topic.name)
                .map_err(|why| format!("topic '{}': {why}", topic.name))?;
            if topic.partitions.is_empty() {
                return Err(format!("topic '{}' has no partitions", topic.name));
            }
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for p in topic.partitions {
                if p.replicas.iter().any(|r| self.broker(*r).is_none()) {
                    return Err(format!(
                        "topic '{}' has a replica on a broker this cluster does not have",
                        topic.name
                    ));
                }
                if p.earliest < 0 || p.latest < p.earliest {
                    return Err(format!("topic '{}' has impossible offsets", topic.name));
                }
                partitions.push(Partition {
                    replicas: p.replicas,
                    earliest: p.earliest,
                    latest: p.latest,
                    records: BTreeMap::new(),
                    created_ms,
                });
            }
            topics.insert(
                topic.name,
                Topic {
                    partitions,
                    visible_at: now,
                    gone_at: None,
                    properties: topic.properties,
                    next_partition: 0,
                },
            );
        }
        if !topics.contains_key(CONSUMER_OFFSETS)
            && let Some(internal) = self.topics.remove(CONSUMER_OFFSETS)
        {
            topics.insert(CONSUMER_OFFSETS.to_string(), internal);
        }
        self.topics = topics;
        Ok(())
    }
}

fn trim(p: &mut Partition, retention: i64) {
    let floor = p.latest.saturating_sub(retention);
    if floor > p.earliest {
        p.earliest = floor;
        p.records = p.records.split_off(&floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A delay too large to add to the clock means a century, never an overflow and never
    /// "now". (Any delay in milliseconds fits the monotonic clock here; `Duration::MAX` does
    /// not.)
    #[test]
    fn absurd_delays_end_a_century_from_now() {
        let now = Instant::now();
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        assert_eq!(later(now, Duration::MAX).duration_since(now), century);
        assert_eq!(
            later(now, Duration::from_secs(5)).duration_since(now),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn topic_names_follow_kafka_rules() {
        for good in ["a", "orders.v1", "A_b-c.9", &"x".repeat(249)] {
            assert!(validate_topic_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a b", "ü", "a/b", "a:b", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
    }

    /// A topic deleted out of band is listed until its deletion is seen; from then on its
    /// name is free and a create makes a new topic (the operator's recreate path).
    #[test]
    fn a_deleted_topic_frees_its_name_once_the_deletion_is_seen() {
        let mut cluster = Cluster::new(&EmulatorConfig::default());
        let create = |c: &mut Cluster, partitions| {
            c.create(
                "t",
                partitions,
                1,
                100,
                serde_json::Map::new(),
                Duration::ZERO,
            )
        };
        create(&mut cluster, 2).expect("created");
        assert!(cluster.delete("t", Duration::from_millis(300)));
        assert!(
            !cluster.delete("t", Duration::from_secs(60)),
            "a topic being deleted is not deleted again, nor its deletion pushed back"
        );
        assert!(matches!(create(&mut cluster, 4), Err(CreateError::Exists)));
        std::thread::sleep(Duration::from_millis(350));
        create(&mut cluster, 4).expect("created again once the deletion is seen");
        assert_eq!(cluster.topics["t"].partitions.len(), 4);
        assert!(cluster.topics["t"].gone_at.is_none());
    }

    /// Records with neither a partition nor a key go round-robin over the partitions; a keyed
    /// record goes where its key picks, every time.
    #[test]
    fn unkeyed_records_go_round_robin_and_keyed_ones_follow_their_key() {
        let mut cluster = Cluster::new(&EmulatorConfig::default());
        cluster
            .create("t", 3, 1, 100, serde_json::Map::new(), Duration::ZERO)
            .expect("created");
        let unkeyed = (0..6).map(|i| (None, None, format!("v{i}"))).collect();
        let written = cluster.produce("t", unkeyed, None).expect("produced");
        let partitions: Vec<i32> = written.iter().map(|(p, _)| *p).collect();
        assert_eq!(partitions, [1, 2, 0, 1, 2, 0]);
        let keyed = (0..3)
            .map(|i| (None, Some("orders-42".to_string()), format!("k{i}")))
            .collect();
        let written = cluster.produce("t", keyed, None).expect("produced");
        let want = i32::try_from(pick("orders-42", 3)).expect("small");
        assert!(written.iter().all(|(p, _)| *p == want), "{written:?}");
    }

    /// A consume returns whole records while their JSON (each with a separating comma) fits
    /// the byte limit, the limit itself included, and always at least one record.
    #[test]
    fn consume_stops_at_the_byte_limit() {
        let mut cluster = Cluster::new(&EmulatorConfig::default());
        cluster
            .create("t", 1, 1, 100, serde_json::Map::new(), Duration::ZERO)
            .expect("created");
        let records = (0..3)
            .map(|i| (Some(0), None, format!("value-{i}")))
            .collect();
        cluster.produce("t", records, None).expect("produced");
        let read = |c: &mut Cluster, max_bytes| {
            c.consume("t", 0, 0, 10, max_bytes, Duration::ZERO)
                .expect("consumed")
                .0
        };
        let all = read(&mut cluster, usize::MAX);
        assert_eq!(all.len(), 3);
        let sizes: Vec<usize> = all
            .iter()
            .map(|r| serde_json::to_string(r).expect("JSON").len() + 1)
            .collect();
        let two = sizes[0] + sizes[1];
        assert_eq!(read(&mut cluster, two).len(), 2, "exactly at the limit");
        assert_eq!(read(&mut cluster, two - 1).len(), 1);
        assert_eq!(
            read(&mut cluster, 1).len(),
            1,
            "one record even past the limit"
        );
    }

    /// A saved cluster holds the topics still listed (a deletion not yet seen included) and
    /// not those whose deletion is seen; a restore refuses offsets no partition can have.
    #[test]
    fn save_and_restore_keep_listed_topics_and_refuse_impossible_offsets() {
        let mut cluster = Cluster::new(&EmulatorConfig::default());
        for name in ["kept", "leaving", "gone"] {
            cluster
                .create(name, 1, 1, 100, serde_json::Map::new(), Duration::ZERO)
                .expect("created");
        }
        assert!(cluster.delete("leaving", Duration::from_secs(60)));
        assert!(cluster.delete("gone", Duration::ZERO));
        let saved: Vec<String> = cluster.save().into_iter().map(|t| t.name).collect();
        assert_eq!(saved, [CONSUMER_OFFSETS, "kept", "leaving"]);

        let broker = cluster.brokers[0].id;
        let topic = |earliest, latest| SavedTopic {
            name: "t".into(),
            partitions: vec![SavedPartition {
                replicas: vec![broker],
                earliest,
                latest,
            }],
            properties: serde_json::Map::new(),
        };
        for (earliest, latest) in [(-1, 5), (4, 3)] {
            assert_eq!(
                cluster.restore(vec![topic(earliest, latest)]),
                Err("topic 't' has impossible offsets".to_string()),
                "{earliest}..{latest}"
            );
        }
        for (earliest, latest) in [(0, 0), (3, 3), (2, 9)] {
            cluster
                .restore(vec![topic(earliest, latest)])
                .expect("possible offsets");
        }
        // The cluster's internal topic stays unless the saved topics bring their own.
        let names: Vec<&String> = cluster.topics.keys().collect();
        assert_eq!(names, [CONSUMER_OFFSETS, "t"]);
        let mut internal = topic(0, 7);
        internal.name = CONSUMER_OFFSETS.into();
        cluster.restore(vec![internal]).expect("restored");
        assert_eq!(cluster.topics[CONSUMER_OFFSETS].partitions.len(), 1);
        assert_eq!(cluster.topics[CONSUMER_OFFSETS].partitions[0].latest, 7);
    }

    /// The partition limit is inclusive: exactly the limit is created, one more is refused.
    #[test]
    fn the_partition_limit_is_inclusive() {
        let mut cluster = Cluster::new(&EmulatorConfig::default());
        let mut create = |name: &str, partitions| {
            cluster.create(
                name,
                partitions,
                1,
                8,
                serde_json::Map::new(),
                Duration::ZERO,
            )
        };
        create("at-limit", 8).expect("8 of at most 8");
        match create("over", 9) {
            Err(CreateError::Invalid(why)) => {
                assert_eq!(why, "Number of partitions 9 exceeds the limit of 8.");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Test vectors of FNV-1a 64 (draft-eastlake-fnv, "Test Vectors").
    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a("foobar"), 0x8594_4171_f739_67e8);
    }

    /// A one-partition topic's leader is the live broker its name picks, so the leaders of
    /// many small topics spread over the brokers.
    #[test]
    fn the_name_picks_the_first_replica() {
        let config = EmulatorConfig::default();
        let mut cluster = Cluster::new(&config);
        let mut leaders = std::collections::BTreeSet::new();
        for i in 0..12 {
            let name = format!("small-{i}");
            cluster
                .create(&name, 1, 1, 100, serde_json::Map::new(), Duration::ZERO)
                .expect("created");
            let leader = cluster.topics[&name].partitions[0].replicas[0];
            let pick = usize::try_from(fnv1a(&name) % 3).expect("small");
            assert_eq!(leader, cluster.brokers[pick].id, "{name}");
            leaders.insert(leader);
        }
        assert_eq!(leaders.len(), 3, "every broker leads a topic");
    }

    #[test]
    fn placement_spreads_leaders_and_racks() {
        let config = EmulatorConfig::default();
        let mut cluster = Cluster::new(&config);
        cluster
            .create("t", 6, 3, 100, serde_json::Map::new(), Duration::ZERO)
            .expect("created");
        let topic = &cluster.topics["t"];
        let leaders: std::collections::HashSet<i32> =
            topic.partitions.iter().map(|p| p.replicas[0]).collect();
        assert_eq!(leaders.len(), 3, "every broker leads some partition");
        for p in &topic.partitions {
            let racks: std::collections::HashSet<_> = p
                .replicas
                .iter()
                .map(|r| cluster.broker(*r).and_then(|b| b.rack.clone()))
                .collect();
            assert_eq!(racks.len(), 3);
        }
    }

    #[test]
    fn many_topics_describe_without_scanning() {
        let config = EmulatorConfig::default();
        let mut cluster = Cluster::new(&config);
        for i in 0..5000 {
            cluster
                .create(
                    &format!("t{i}"),
                    2,
                    3,
                    100,
                    serde_json::Map::new(),
                    Duration::ZERO,
                )
                .expect("created");
        }
        assert_eq!(cluster.list(false, Duration::ZERO).len(), 5000);
        let started = Instant::now();
        for i in 0..5000 {
            assert!(cluster.describe(&format!("t{i}"), Duration::ZERO).is_some());
        }
        // Generous even for a loaded debug build; a scan per describe would be far slower.
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
