//! Prometheus metrics (OpenMetrics text at `/metrics`). Label values come from small fixed sets
//! (kinds, operations, outcomes, condition types) plus the proxy's namespace/name — never a topic
//! name, so cardinality stays bounded with thousands of topics. `docs/metrics.md` lists them.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

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
    pub status_writes: Family<KindLabels, Counter>,
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
            status_writes: Family::default(),
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
            "status_writes",
            "Status patches sent to Kubernetes, by kind",
            m.status_writes.clone(),
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
    /// Marks a reconcile of `kind` as running until the guard is dropped.
    pub fn in_flight(&self, kind: &str) -> InFlight<'_> {
        let labels = KindLabels {
            kind: kind.to_string(),
        };
        self.reconciles_in_flight.get_or_create(&labels).inc();
        InFlight {
            metrics: self,
            labels,
        }
    }

    /// Sets the topics gauge from (condition type, status) counts; pairs not given are set to 0.
    pub fn set_topic_counts(&self, counts: &std::collections::BTreeMap<(String, String), i64>) {
        for condition in ["Ready", "Reconciling", "Stalled", "Drifted", "Paused"] {
            for status in ["True", "False"] {
                let n = counts
                    .get(&(condition.to_string(), status.to_string()))
                    .copied()
                    .unwrap_or(0);
                self.topics
                    .get_or_create(&ConditionLabels {
                        condition: condition.to_string(),
                        status: status.to_string(),
                    })
                    .set(n);
            }
        }
    }

    pub fn status_written(&self, kind: &str) {
        self.status_writes
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .inc();
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
}
