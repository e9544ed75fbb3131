//! Kubernetes Events about KafkaTopics and KafkaRestProxies.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use super::plan::EventSpec;

/// The Event recorder, in shards. kube's `Recorder` deduplicates by keeping every Event it
/// sent for a few minutes and sweeps that cache on every publish, which costs O(events) per
/// Event — quadratic in a burst of thousands of topics. Each object always goes to the same
/// shard, so deduplication is unchanged, and each sweep is 1/SHARDS as long.
pub struct EventSink {
    shards: Vec<Recorder>,
}

impl EventSink {
    pub const SHARDS: usize = 32;

    pub fn new(client: kube::Client, reporter: kube::runtime::events::Reporter) -> Self {
        Self {
            shards: (0..Self::SHARDS)
                .map(|_| Recorder::new(client.clone(), reporter.clone()))
                .collect(),
        }
    }

    fn shard(&self, reference: &k8s_openapi::api::core::v1::ObjectReference) -> &Recorder {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        reference.uid.hash(&mut h);
        reference.name.hash(&mut h);
        reference.namespace.hash(&mut h);
        &self.shards[(h.finish() as usize) % self.shards.len()]
    }

    /// Publishes an Event about `obj`. Failures are logged, never fatal.
    pub async fn publish<K: Resource<DynamicType = ()>>(&self, obj: &K, event: &EventSpec) {
        let ev = Event {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason.to_string(),
            note: Some(truncate(&event.note, 1000)),
            action: "Reconcile".to_string(),
            secondary: None,
        };
        let reference = obj.object_ref(&());
        if let Err(e) = self.shard(&reference).publish(&ev, &reference).await {
            tracing::warn!(error = %e, reason = event.reason, "could not publish Event");
        }
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
