//! The `kubectl get hkt` table, rendered from the objects (no kubectl needed).

use hdinsight_topic_operator::crd::{KafkaTopic, READY, find_condition};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

pub const HEADER: [&str; 8] = [
    "NAME",
    "TOPIC",
    "PARTITIONS",
    "RF",
    "URP",
    "READY",
    "REASON",
    "AGE",
];

fn age(t: &KafkaTopic, now: Timestamp) -> String {
    let Some(created) = t.metadata.creation_timestamp.as_ref() else {
        return "<unknown>".into();
    };
    let secs = (now.as_second() - created.0.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s => format!("{}h", s / 3600),
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// One row per topic, sorted by name.
pub fn rows(topics: &[KafkaTopic], now: Timestamp) -> Vec<[String; 8]> {
    let mut rows: Vec<[String; 8]> = topics
        .iter()
        .map(|t| {
            let status = t.status.clone().unwrap_or_default();
            let ready = find_condition(&status.conditions, READY);
            [
                t.name_any(),
                status.topic_name.clone().unwrap_or_else(|| t.kafka_name()),
                opt(status.partitions),
                opt(status.replication_factor),
                opt(status.under_replicated_partitions),
                ready.map(|c| c.status.clone()).unwrap_or_default(),
                ready.map(|c| c.reason.clone()).unwrap_or_default(),
                age(t, now),
            ]
        })
        .collect();
    rows.sort();
    rows
}

/// Renders rows like kubectl: columns padded to their widest cell plus three spaces.
pub fn render(rows: &[[String; 8]]) -> String {
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(HEADER.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// Whether every topic is Ready=True.
pub fn all_ready(topics: &[KafkaTopic]) -> bool {
    !topics.is_empty()
        && topics.iter().all(|t| {
            t.status
                .as_ref()
                .and_then(|s| find_condition(&s.conditions, READY))
                .is_some_and(|c| c.status == "True")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_padded_columns() {
        let rows = vec![[
            "orders".to_string(),
            "orders.v1".into(),
            "12".into(),
            "3".into(),
            "0".into(),
            "True".into(),
            "Created".into(),
            "41s".into(),
        ]];
        let text = render(&rows);
        assert_eq!(
            text,
            "NAME     TOPIC       PARTITIONS   RF   URP   READY   REASON    AGE\norders   orders.v1   12           3    0     True    Created   41s\n"
        );
    }
}
