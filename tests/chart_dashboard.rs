//! The chart's Grafana dashboard: every query names metrics the operator exports and
//! `docs/metrics.md` documents, with labels they have; and the chart renders it as the ConfigMap
//! Grafana's sidecar loads, only when asked.
#![allow(clippy::unwrap_used)]

#[path = "require/mod.rs"]
mod require;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use hdinsight_topic_operator::metrics::Metrics;
use regex::Regex;
use serde_json::Value;

const PREFIX: &str = "hdinsight_topic_operator_";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dashboard_text() -> String {
    std::fs::read_to_string(
        root().join("charts/hdinsight-topic-operator/files/grafana-dashboard.json"),
    )
    .unwrap()
}

/// Every PromQL expression of the dashboard: panel targets and template variable queries.
fn expressions(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            out.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = var["query"]["query"].as_str() {
            out.push(q.to_string());
        }
    }
    out
}

/// Documented metrics (name without prefix, as in the table) → their labels.
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
    let row = Regex::new(r"^\| `([a-z_]+)` \| [a-z]+ \| ([^|]*) \|").unwrap();
    let label = Regex::new(r"`([a-z_]+)`").unwrap();
    doc.lines()
        .filter_map(|l| row.captures(l))
        .map(|c| {
            let labels = label
                .captures_iter(&c[2])
                .map(|m| m[1].to_string())
                .collect();
            (c[1].to_string(), labels)
        })
        .collect()
}

/// Metric families the operator exports (OpenMetrics `# TYPE` lines) → their type. A family
/// shows up once it has a series, so every one is given one through the operator's own calls.
fn exported() -> BTreeMap<String, String> {
    use hdinsight_topic_operator::metrics::{MetricsObserver, TopicCounts};
    use hdinsight_topic_operator::proxy::{Operation, ProxyObserver};
    use std::time::Duration;
    let metrics = std::sync::Arc::new(Metrics::new());
    metrics.reconciled("KafkaTopic", Duration::from_millis(5), Some("Forbidden"));
    metrics.requeued("KafkaTopic", "kafka/orders", Duration::ZERO);
    let in_flight = metrics.reconcile_started("KafkaTopic", "kafka/orders");
    metrics.status_write("KafkaTopic", Duration::from_millis(4), true);
    metrics.status_write("KafkaTopic", Duration::from_secs(10), false);
    let mut counts = TopicCounts::new();
    counts.insert(("kafka/default".into(), "Ready".into(), "True".into()), 1);
    metrics.set_topic_counts(&counts);
    let observer = MetricsObserver(metrics.clone());
    observer.request(
        "kafka/default",
        Operation::List,
        "2xx",
        Duration::from_millis(3),
    );
    observer.throttled("kafka/default");
    observer.token_request("kafka/default", true);
    observer.token_expiry("kafka/default", std::time::SystemTime::now());
    let text = metrics.encode().unwrap();
    drop(in_flight);
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.to_string()))
        .collect()
}

/// The family a sample name in a query belongs to, with the suffix the docs use.
fn family_of(sample: &str, exported: &BTreeMap<String, String>) -> Option<(String, String)> {
    if let Some(kind) = exported.get(sample) {
        return Some((sample.to_string(), kind.clone()));
    }
    for suffix in ["_total", "_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix)
            && let Some(kind) = exported.get(base)
        {
            return Some((base.to_string(), kind.clone()));
        }
    }
    None
}

#[test]
fn every_query_uses_documented_exported_metrics_and_their_labels() {
    let dashboard: Value = serde_json::from_str(&dashboard_text()).unwrap();
    let exprs = expressions(&dashboard);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let docs = documented();
    assert!(docs.len() >= 10, "the metrics table was not read: {docs:?}");
    let exported = exported();
    let metric = Regex::new(&format!(r"{PREFIX}[a-z_]+")).unwrap();
    let by = Regex::new(r"by \(([^)]*)\)").unwrap();
    let matcher = Regex::new(r"([a-z_]+)\s*(=~|!~|!=|=)").unwrap();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let samples: Vec<&str> = metric.find_iter(expr).map(|m| m.as_str()).collect();
        if samples.is_empty() {
            problems.push(format!("{expr}: names no operator metric"));
        }
        let mut allowed: BTreeSet<String> = ["job", "instance", "namespace"]
            .into_iter()
            .map(String::from)
            .collect();
        for sample in samples {
            let Some((family, kind)) = family_of(sample, &exported) else {
                problems.push(format!("{expr}: {sample} is not exported"));
                continue;
            };
            // The docs name counters with _total, as Prometheus shows them.
            let doc_name = family.trim_start_matches(PREFIX).to_string()
                + if kind == "counter" { "_total" } else { "" };
            match docs.get(&doc_name) {
                Some(labels) => allowed.extend(labels.iter().cloned()),
                None => problems.push(format!("{expr}: {doc_name} is not in docs/metrics.md")),
            }
            if kind == "histogram" {
                allowed.insert("le".into());
            }
            used.insert(doc_name);
        }
        for clause in by.captures_iter(expr) {
            for label in clause[1]
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
            {
                if !allowed.contains(label) {
                    problems.push(format!("{expr}: groups by {label}, which it does not have"));
                }
            }
        }
        for m in matcher.captures_iter(expr) {
            if !allowed.contains(&m[1]) {
                problems.push(format!(
                    "{expr}: matches on {}, which it does not have",
                    &m[1]
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // What the dashboard is for: each of these is shown.
    for needed in [
        "topics",
        "topics_by_proxy",
        "reconciles_total",
        "reconcile_errors_total",
        "proxy_requests_total",
        "proxy_request_duration_seconds",
        "proxy_throttled_total",
        "token_expiry_timestamp_seconds",
        "reconcile_queue_depth",
    ] {
        assert!(used.contains(needed), "no panel shows {needed}: {used:?}");
    }
}

#[test]
fn the_checker_catches_an_undocumented_metric_and_a_wrong_label() {
    // The check above must be able to fail: feed it what a broken dashboard would hold.
    let exported = exported();
    assert!(family_of(&format!("{PREFIX}no_such_metric_total"), &exported).is_none());
    let docs = documented();
    assert!(
        !docs["proxy_throttled_total"].contains("kind"),
        "proxy_throttled_total has no kind label: grouping by it must be flagged"
    );
    assert_eq!(
        family_of(
            &format!("{PREFIX}proxy_request_duration_seconds_bucket"),
            &exported
        ),
        Some((
            format!("{PREFIX}proxy_request_duration_seconds"),
            "histogram".to_string()
        ))
    );
}

/// helm, from HDI_TEST_HELM (set by .ci/run) or PATH; None after a visible skip outside CI.
fn helm() -> Option<PathBuf> {
    require::require_tool("helm", Some("HDI_TEST_HELM"))
}

fn render(helm: &Path, set: &[&str]) -> Vec<serde_json::Value> {
    let mut cmd = Command::new(helm);
    cmd.args(["template", "hto"])
        .arg(root().join("charts/hdinsight-topic-operator"))
        .args(["--namespace", "kafka-system"]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_saphyr::from_multiple::<serde_json::Value>(&text)
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

#[test]
fn the_chart_renders_the_dashboard_configmap_only_when_enabled() {
    let Some(helm) = helm() else { return };
    let is_dashboard = |d: &serde_json::Value| {
        d["kind"] == "ConfigMap" && d["metadata"]["labels"]["grafana_dashboard"] == "1"
    };
    assert!(!render(&helm, &[]).iter().any(is_dashboard));
    let docs = render(
        &helm,
        &[
            "grafanaDashboard.enabled=true",
            "grafanaDashboard.namespace=monitoring",
        ],
    );
    let maps: Vec<_> = docs.iter().filter(|d| is_dashboard(d)).collect();
    assert_eq!(maps.len(), 1);
    let map = maps[0];
    assert_eq!(map["metadata"]["namespace"], "monitoring");
    let json = map["data"]["hdinsight-topic-operator.json"]
        .as_str()
        .unwrap();
    let rendered: Value = serde_json::from_str(json).unwrap();
    let file: Value = serde_json::from_str(&dashboard_text()).unwrap();
    assert_eq!(
        rendered, file,
        "the ConfigMap carries the dashboard file unchanged"
    );
}
