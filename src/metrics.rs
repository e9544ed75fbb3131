//! Prometheus metrics (OpenMetrics text at `/metrics`). Label values come from small fixed sets
//! (kinds, operations, outcomes, condition types) plus the proxy's namespace/name — never a topic
//! name, so cardinality stays bounded with thousands of topics. `docs/metrics.md` lists them.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindReasonLabels {
    pub kind: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyRequestLabels {
    pub proxy: String,
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyOperationLabels {
    pub proxy: String,
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyLabels {
    pub proxy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub proxy: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub condition: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyConditionLabels {
    /// The KafkaRestProxy the topics use, as namespace/name.
    pub proxy: String,
    pub condition: String,
    pub status: String,
}

/// KafkaTopics counted by (proxy as namespace/name, condition type, condition status).
pub type TopicCounts = std::collections::BTreeMap<(String, String, String), i64>;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<KindLabels, Counter>,
    pub reconcile_errors: Family<KindReasonLabels, Counter>,
    pub reconcile_duration: HistogramFamily<KindLabels>,
    pub reconciles_in_flight: Family<KindLabels, Gauge>,
    pub proxy_requests: Family<ProxyRequestLabels, Counter>,
    pub proxy_request_duration: HistogramFamily<ProxyOperationLabels>,
    pub proxy_throttled: Family<ProxyLabels, Counter>,
    pub token_requests: Family<TokenLabels, Counter>,
    pub token_expiry: Family<ProxyLabels, Gauge<f64, AtomicU64>>,
    pub topics: Family<ConditionLabels, Gauge>,
    pub topics_by_proxy: Family<ProxyConditionLabels, Gauge>,
    /// The label sets of `topics_by_proxy` last set, so that those of vanished proxies can be
    /// removed.
    topic_series: Arc<std::sync::Mutex<std::collections::BTreeSet<(String, String, String)>>>,
    pub status_writes: Family<KindLabels, Counter>,
    pub status_write_failures: Family<KindLabels, Counter>,
    pub status_write_duration: HistogramFamily<KindLabels>,
    pub queue_wait: HistogramFamily<KindLabels>,
    /// What waits for a KafkaTopic reconcile; read at every scrape.
    pub topic_queue: Arc<WorkQueue>,
    /// What waits for a KafkaRestProxy reconcile.
    pub proxy_queue: Arc<WorkQueue>,
}

fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hdinsight_topic_operator");
        let m = Self {
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Family::new_with_constructor(
                reconcile_histogram as fn() -> Histogram,
            ),
            reconciles_in_flight: Family::default(),
            proxy_requests: Family::default(),
            proxy_request_duration: Family::new_with_constructor(
                request_histogram as fn() -> Histogram,
            ),
            proxy_throttled: Family::default(),
            token_requests: Family::default(),
            token_expiry: Family::default(),
            topics: Family::default(),
            topics_by_proxy: Family::default(),
            topic_series: Arc::default(),
            status_writes: Family::default(),
            status_write_failures: Family::default(),
            status_write_duration: Family::new_with_constructor(
                request_histogram as fn() -> Histogram,
            ),
            queue_wait: Family::new_with_constructor(reconcile_histogram as fn() -> Histogram),
            topic_queue: Arc::default(),
            proxy_queue: Arc::default(),
            registry: Registry::default(),
        };
        registry.register("reconciles", "Reconciles by kind", m.reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in a failure, by kind and condition reason",
            m.reconcile_errors.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of one reconcile",
            prometheus_client::registry::Unit::Seconds,
            m.reconcile_duration.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now, by kind",
            m.reconciles_in_flight.clone(),
        );
        registry.register_with_unit(
            "reconcile_queue_wait",
            "Time from when a reconcile was due (a change, or a requeue coming due) to its start",
            prometheus_client::registry::Unit::Seconds,
            m.queue_wait.clone(),
        );
        registry.register_collector(Box::new(QueueDepth {
            topics: m.topic_queue.clone(),
            proxies: m.proxy_queue.clone(),
        }));
        registry.register(
            "proxy_requests",
            "Requests to the REST proxy by proxy, operation and outcome",
            m.proxy_requests.clone(),
        );
        registry.register_with_unit(
            "proxy_request_duration",
            "Latency of REST proxy requests",
            prometheus_client::registry::Unit::Seconds,
            m.proxy_request_duration.clone(),
        );
        registry.register(
            "proxy_throttled",
            "Responses 429/503 from the REST proxy (throttling)",
            m.proxy_throttled.clone(),
        );
        registry.register(
            "token_requests",
            "Token requests to Entra ID by proxy and result",
            m.token_requests.clone(),
        );
        registry.register_with_unit(
            "token_expiry_timestamp",
            "Unix time at which the cached token of a proxy expires",
            prometheus_client::registry::Unit::Seconds,
            m.token_expiry.clone(),
        );
        registry.register(
            "topics",
            "KafkaTopics by condition type and status",
            m.topics.clone(),
        );
        registry.register(
            "topics_by_proxy",
            "KafkaTopics by KafkaRestProxy, condition type and status",
            m.topics_by_proxy.clone(),
        );
        registry.register(
            "status_writes",
            "Status patches Kubernetes accepted, by kind",
            m.status_writes.clone(),
        );
        registry.register(
            "status_write_failures",
            "Status patches that failed or got no answer in time, by kind",
            m.status_write_failures.clone(),
        );
        registry.register_with_unit(
            "status_write_duration",
            "Latency of status patches, failed ones included",
            prometheus_client::registry::Unit::Seconds,
            m.status_write_duration.clone(),
        );
        Self { registry, ..m }
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    pub fn reconciled(&self, kind: &str, elapsed: Duration, failure_reason: Option<&str>) {
        let k = KindLabels {
            kind: kind.to_string(),
        };
        self.reconciles.get_or_create(&k).inc();
        self.reconcile_duration
            .get_or_create(&k)
            .observe(elapsed.as_secs_f64());
        if let Some(reason) = failure_reason {
            self.reconcile_errors
                .get_or_create(&KindReasonLabels {
                    kind: kind.to_string(),
                    reason: reason.to_string(),
                })
                .inc();
        }
    }
}

/// Counts a reconcile as running until dropped.
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    labels: KindLabels,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics
            .reconciles_in_flight
            .get_or_create(&self.labels)
            .dec();
    }
}

impl Metrics {
    fn queue(&self, kind: &str) -> &WorkQueue {
        if kind == "KafkaRestProxy" {
            &self.proxy_queue
        } else {
            &self.topic_queue
        }
    }

    /// Marks the reconcile of `kind` object `key` ("namespace/name") as running until the guard
    /// is dropped: takes it off the queue and records how long it waited there.
    pub fn reconcile_started(&self, kind: &str, key: &str) -> InFlight<'_> {
        let labels = KindLabels {
            kind: kind.to_string(),
        };
        if let Some(waited) = self.queue(kind).started(key, Instant::now()) {
            self.queue_wait
                .get_or_create(&labels)
                .observe(waited.as_secs_f64());
        }
        self.reconciles_in_flight.get_or_create(&labels).inc();
        InFlight {
            metrics: self,
            labels,
        }
    }

    /// Sets the topics gauges from counts per (proxy, condition type, status). `topics` always
    /// has every condition/status pair (0 where none), so that its presence says that this
    /// replica reconciles; `topics_by_proxy` has every pair for each proxy in use, and the series
    /// of a proxy that no topic uses any more are removed, so its cardinality follows the proxies.
    pub fn set_topic_counts(&self, counts: &TopicCounts) {
        const CONDITIONS: [&str; 5] = ["Ready", "Reconciling", "Stalled", "Drifted", "Paused"];
        const STATUSES: [&str; 2] = ["True", "False"];
        let count = |proxy: Option<&str>, condition: &str, status: &str| -> i64 {
            counts
                .iter()
                .filter(|((p, c, s), _)| {
                    proxy.is_none_or(|want| p == want) && c == condition && s == status
                })
                .map(|(_, n)| *n)
                .sum()
        };
        for condition in CONDITIONS {
            for status in STATUSES {
                self.topics
                    .get_or_create(&ConditionLabels {
                        condition: condition.to_string(),
                        status: status.to_string(),
                    })
                    .set(count(None, condition, status));
            }
        }
        let proxies: std::collections::BTreeSet<&String> =
            counts.keys().map(|(proxy, _, _)| proxy).collect();
        let mut current = std::collections::BTreeSet::new();
        for proxy in proxies {
            for condition in CONDITIONS {
                for status in STATUSES {
                    let labels = ProxyConditionLabels {
                        proxy: proxy.clone(),
                        condition: condition.to_string(),
                        status: status.to_string(),
                    };
                    self.topics_by_proxy.get_or_create(&labels).set(count(
                        Some(proxy),
                        condition,
                        status,
                    ));
                    current.insert((labels.proxy, labels.condition, labels.status));
                }
            }
        }
        let mut seen = self
            .topic_series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (proxy, condition, status) in seen.difference(&current) {
            self.topics_by_proxy.remove(&ProxyConditionLabels {
                proxy: proxy.clone(),
                condition: condition.clone(),
                status: status.clone(),
            });
        }
        *seen = current;
    }

    /// Records that the reconcile of `kind` object `key` asked to run again after `after`.
    pub fn requeued(&self, kind: &str, key: &str, after: Duration) {
        self.queue(kind).requeued(key, after, Instant::now());
    }

    /// Records one status patch sent to Kubernetes: how long it took and whether it was
    /// accepted.
    pub fn status_write(&self, kind: &str, elapsed: Duration, accepted: bool) {
        let labels = KindLabels {
            kind: kind.to_string(),
        };
        self.status_write_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if accepted {
            self.status_writes.get_or_create(&labels).inc();
        } else {
            self.status_write_failures.get_or_create(&labels).inc();
        }
    }
}

/// The reconciles that are due and have not started, for one kind: objects changed (a watch
/// event that passed the trigger filter, or a re-trigger by their proxy or Secret) and objects
/// whose requested requeue time has come. kube-runtime keeps its queue to itself, so this
/// mirrors it from the same inputs. A reconcile start takes the object off; a deletion forgets
/// it. Objects are held by a 64-bit hash of their key so that 10,000 topics cost well under 1 MB.
#[derive(Debug, Default)]
pub struct WorkQueue {
    entries: Mutex<HashMap<u64, Waiting>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Waiting {
    /// The first change not yet reconciled.
    changed: Option<Instant>,
    /// When the last reconcile asked to run again.
    due: Option<Instant>,
}

impl Waiting {
    /// Since when this object has been waiting at `now`, if it is.
    fn waiting_since(&self, now: Instant) -> Option<Instant> {
        let due = self.due.filter(|d| *d <= now);
        match (self.changed, due) {
            (Some(c), Some(d)) => Some(c.min(d)),
            (c, d) => c.or(d),
        }
    }
}

fn queue_key(key: &str) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl WorkQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiting>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `key` changed at `now`: it is due at once.
    pub fn changed(&self, key: &str, now: Instant) {
        let mut e = self.lock();
        let w = e.entry(queue_key(key)).or_default();
        w.changed.get_or_insert(now);
    }

    /// The reconcile of `key` asked to run again `after` from `now`.
    pub fn requeued(&self, key: &str, after: Duration, now: Instant) {
        self.lock().entry(queue_key(key)).or_default().due =
            Some(crate::clock::instant_after(now, after));
    }

    /// A reconcile of `key` starts at `now`; how long it waited, if it was due.
    pub fn started(&self, key: &str, now: Instant) -> Option<Duration> {
        let w = self.lock().remove(&queue_key(key))?;
        w.waiting_since(now).map(|since| now.duration_since(since))
    }

    /// `key` was deleted: nothing will run for it.
    pub fn forget(&self, key: &str) {
        self.lock().remove(&queue_key(key));
    }

    /// How many reconciles are due at `now` and have not started.
    pub fn depth(&self, now: Instant) -> usize {
        self.lock()
            .values()
            .filter(|w| w.waiting_since(now).is_some())
            .count()
    }
}

/// Encodes `reconcile_queue_depth` at scrape time (it changes as requeue times come due).
#[derive(Debug)]
struct QueueDepth {
    topics: Arc<WorkQueue>,
    proxies: Arc<WorkQueue>,
}

impl Collector for QueueDepth {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = Instant::now();
        let mut family = encoder.encode_descriptor(
            "reconcile_queue_depth",
            "Reconciles that are due and have not started, by kind",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (kind, queue) in [
            ("KafkaTopic", &self.topics),
            ("KafkaRestProxy", &self.proxies),
        ] {
            let labels = KindLabels {
                kind: kind.to_string(),
            };
            let depth = i64::try_from(queue.depth(now)).unwrap_or(i64::MAX);
            ConstGauge::new(depth).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Feeds the proxy clients' observations into the metrics.
pub struct MetricsObserver(pub std::sync::Arc<Metrics>);

impl crate::proxy::ProxyObserver for MetricsObserver {
    fn request(
        &self,
        proxy: &str,
        op: crate::proxy::Operation,
        status_class: &str,
        elapsed: Duration,
    ) {
        self.0
            .proxy_requests
            .get_or_create(&ProxyRequestLabels {
                proxy: proxy.to_string(),
                operation: op.as_str().to_string(),
                outcome: status_class.to_string(),
            })
            .inc();
        self.0
            .proxy_request_duration
            .get_or_create(&ProxyOperationLabels {
                proxy: proxy.to_string(),
                operation: op.as_str().to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    fn throttled(&self, proxy: &str) {
        self.0
            .proxy_throttled
            .get_or_create(&ProxyLabels {
                proxy: proxy.to_string(),
            })
            .inc();
    }

    fn token_request(&self, proxy: &str, ok: bool) {
        self.0
            .token_requests
            .get_or_create(&TokenLabels {
                proxy: proxy.to_string(),
                result: if ok { "success" } else { "failure" }.to_string(),
            })
            .inc();
    }

    fn token_expiry(&self, proxy: &str, expires_at: std::time::SystemTime) {
        let secs = expires_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.0
            .token_expiry
            .get_or_create(&ProxyLabels {
                proxy: proxy.to_string(),
            })
            .set(secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_counted_per_proxy_and_a_vanished_proxy_leaves_no_series() {
        let m = Metrics::new();
        let mut counts = TopicCounts::new();
        counts.insert(("kafka/a".into(), "Ready".into(), "True".into()), 3);
        counts.insert(("kafka/b".into(), "Stalled".into(), "True".into()), 1);
        m.set_topic_counts(&counts);
        let text = m.encode().unwrap_or_default();
        let series = |proxy: &str| {
            text.lines()
                .filter(|l| {
                    l.starts_with("hdinsight_topic_operator_topics_by_proxy{")
                        && l.contains(&format!("proxy=\"{proxy}\""))
                })
                .count()
        };
        assert!(text.contains("hdinsight_topic_operator_topics_by_proxy{proxy=\"kafka/a\",condition=\"Ready\",status=\"True\"} 3"), "{text}");
        assert!(text.contains("hdinsight_topic_operator_topics_by_proxy{proxy=\"kafka/a\",condition=\"Stalled\",status=\"True\"} 0"), "{text}");
        assert!(text.contains("hdinsight_topic_operator_topics_by_proxy{proxy=\"kafka/b\",condition=\"Stalled\",status=\"True\"} 1"), "{text}");
        // The total over proxies, every pair present.
        assert!(
            text.contains(
                "hdinsight_topic_operator_topics{condition=\"Stalled\",status=\"True\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "hdinsight_topic_operator_topics{condition=\"Paused\",status=\"False\"} 0"
            ),
            "{text}"
        );
        assert_eq!((series("kafka/a"), series("kafka/b")), (10, 10), "{text}");
        counts.retain(|(proxy, _, _), _| proxy == "kafka/a");
        m.set_topic_counts(&counts);
        let text = m.encode().unwrap_or_default();
        assert_eq!(
            text.lines()
                .filter(
                    |l| l.starts_with("hdinsight_topic_operator_topics{") && l.contains("kafka/b")
                )
                .count(),
            0,
            "{text}"
        );
        assert!(text.contains("hdinsight_topic_operator_topics_by_proxy{proxy=\"kafka/a\",condition=\"Ready\",status=\"True\"} 3"), "{text}");
        // With no topics at all the totals stay, at 0.
        m.set_topic_counts(&TopicCounts::new());
        let text = m.encode().unwrap_or_default();
        assert!(
            text.contains("hdinsight_topic_operator_topics{condition=\"Ready\",status=\"True\"} 0"),
            "{text}"
        );
        assert!(
            !text.contains("hdinsight_topic_operator_topics_by_proxy{"),
            "{text}"
        );
    }

    #[test]
    fn encodes_openmetrics_with_prefix() {
        let m = Metrics::new();
        m.reconciled(
            "KafkaTopic",
            Duration::from_millis(20),
            Some("AuthenticationFailed"),
        );
        m.proxy_requests
            .get_or_create(&ProxyRequestLabels {
                proxy: "ns/p".into(),
                operation: "list_topics".into(),
                outcome: "2xx".into(),
            })
            .inc();
        let text = m.encode().unwrap_or_default();
        assert!(
            text.contains("hdinsight_topic_operator_reconciles_total{kind=\"KafkaTopic\"} 1"),
            "{text}"
        );
        assert!(text.contains("hdinsight_topic_operator_reconcile_errors_total{kind=\"KafkaTopic\",reason=\"AuthenticationFailed\"} 1"), "{text}");
        assert!(text.contains("hdinsight_topic_operator_proxy_requests_total{proxy=\"ns/p\",operation=\"list_topics\",outcome=\"2xx\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    fn depth_series(m: &Metrics, kind: &str) -> Option<i64> {
        let text = m.encode().unwrap_or_default();
        let prefix = format!("hdinsight_topic_operator_reconcile_queue_depth{{kind=\"{kind}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse().ok())
    }

    #[test]
    fn queue_depth_counts_changed_and_due_objects_until_they_start() {
        let q = WorkQueue::default();
        let t0 = Instant::now();
        assert_eq!(q.depth(t0), 0);

        // Two changes of one object are one queued reconcile; a second object is another.
        q.changed("kafka/a", t0);
        q.changed("kafka/a", t0 + Duration::from_millis(10));
        q.changed("kafka/b", t0);
        assert_eq!(q.depth(t0), 2);

        // Starting takes it off, and reports the wait since the first change.
        assert_eq!(
            q.started("kafka/a", t0 + Duration::from_millis(30)),
            Some(Duration::from_millis(30))
        );
        assert_eq!(q.depth(t0), 1);

        // A requeue is not queued until its time has come.
        q.requeued("kafka/a", Duration::from_secs(5), t0);
        assert_eq!(q.depth(t0 + Duration::from_secs(4)), 1);
        assert_eq!(q.depth(t0 + Duration::from_secs(5)), 2);
        assert_eq!(
            q.started("kafka/a", t0 + Duration::from_secs(7)),
            Some(Duration::from_secs(2)),
            "waited from when it came due"
        );

        // A change during a long requeue makes it due at once; a start before anything was due
        // (kube-runtime started it for another reason) reports no wait.
        q.requeued("kafka/c", Duration::from_secs(600), t0);
        assert_eq!(q.started("kafka/c", t0 + Duration::from_secs(1)), None);
        q.requeued("kafka/c", Duration::from_secs(600), t0);
        q.changed("kafka/c", t0 + Duration::from_secs(2));
        assert_eq!(q.depth(t0 + Duration::from_secs(2)), 2);

        // A deleted object is forgotten.
        q.forget("kafka/b");
        q.forget("kafka/c");
        assert_eq!(q.depth(t0 + Duration::from_secs(3)), 0);
        assert_eq!(q.started("kafka/b", t0), None);
    }

    #[test]
    fn queue_depth_is_exported_per_kind_and_wait_is_observed() {
        let m = Metrics::new();
        assert_eq!(depth_series(&m, "KafkaTopic"), Some(0));
        assert_eq!(depth_series(&m, "KafkaRestProxy"), Some(0));
        m.topic_queue.changed("kafka/a", Instant::now());
        m.topic_queue.changed("kafka/b", Instant::now());
        m.proxy_queue.changed("kafka/default", Instant::now());
        assert_eq!(depth_series(&m, "KafkaTopic"), Some(2));
        assert_eq!(depth_series(&m, "KafkaRestProxy"), Some(1));
        {
            let _running = m.reconcile_started("KafkaTopic", "kafka/a");
            assert_eq!(depth_series(&m, "KafkaTopic"), Some(1));
            let text = m.encode().unwrap_or_default();
            assert!(
                text.contains(
                    "hdinsight_topic_operator_reconciles_in_flight{kind=\"KafkaTopic\"} 1"
                ),
                "{text}"
            );
        }
        let text = m.encode().unwrap_or_default();
        assert!(
            text.contains(
                "hdinsight_topic_operator_reconcile_queue_wait_seconds_count{kind=\"KafkaTopic\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("hdinsight_topic_operator_reconciles_in_flight{kind=\"KafkaTopic\"} 0"),
            "{text}"
        );
        // Requeued far ahead: not queued.
        m.requeued("KafkaTopic", "kafka/a", Duration::from_secs(300));
        assert_eq!(depth_series(&m, "KafkaTopic"), Some(1));
        assert!(
            text.contains("# TYPE hdinsight_topic_operator_reconcile_queue_depth gauge"),
            "{text}"
        );
    }
}
