//! Reading a refused create's answer.

/// Why the proxy refused a create, as far as its answer tells. The proxy's error bodies are
/// undocumented, so this is a reading of the status code and the text, and every class is
/// checked against what the cluster shows before anything is reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The topic exists already (HTTP 409, or the answer says it exists): time fixes this — the
    /// topic shows up once the proxy's caches catch up.
    Exists,
    /// A topic config was refused; `key` when the answer names one of the spec's keys.
    Config { key: Option<String> },
    /// The request itself: the name, the partition count or the replication factor.
    Request,
    /// The answer gives no reason.
    Unclear,
}

/// Reads a refused create's answer: HTTP 409 or a text saying the topic exists → `Exists`; a
/// text naming one of the request's config keys (or speaking of a config) → `Config`; a text
/// about partitions, the replication factor or the name, or calling the request invalid →
/// `Request`; anything else → `Unclear`. The topic's own name is removed from the text first,
/// so that a name like `retention.ms-audit` is not mistaken for a config key.
pub fn classify_refusal(
    status: u16,
    body: &str,
    topic_name: &str,
    config: &serde_json::Map<String, serde_json::Value>,
) -> Refusal {
    if status == 409 {
        return Refusal::Exists;
    }
    let text = if topic_name.is_empty() {
        body.to_ascii_lowercase()
    } else {
        body.replace(topic_name, "").to_ascii_lowercase()
    };
    // The longest key first: `retention.ms` must not win over `local.retention.ms`.
    let mut keys: Vec<&String> = config.keys().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    if let Some(key) = keys
        .into_iter()
        .find(|k| text.contains(&k.to_ascii_lowercase()))
    {
        return Refusal::Config {
            key: Some(key.clone()),
        };
    }
    if text.contains("exist") {
        return Refusal::Exists;
    }
    if text.contains("config") {
        return Refusal::Config { key: None };
    }
    if ["partition", "replication", "name", "invalid"]
        .iter()
        .any(|w| text.contains(w))
    {
        return Refusal::Request;
    }
    Refusal::Unclear
}
