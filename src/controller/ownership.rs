//! Who owns a Kafka topic that several KafkaTopics name: an index kept from the watch stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::crd::KafkaTopic;

/// Who names which topic: (proxy namespace, proxy name, Kafka topic name) → the KafkaTopics
/// naming it, ordered oldest first. Kept up to date from the watch stream, so that finding the
/// owner of a topic costs a hash lookup instead of a scan of every KafkaTopic.
#[derive(Default)]
pub struct TopicIndex {
    inner: Mutex<IndexState>,
}

type IndexKey = (String, String, String);
/// (rank, creationTimestamp in ms, uid, "namespace/name"): a claimant that already holds the
/// topic (rank 0) first, then by age, then uid. creationTimestamp has one-second resolution, so
/// KafkaTopics applied together often tie; the uid alone would then let a newcomer take the
/// topic from the KafkaTopic that created or adopted it.
pub type Claim = (u8, i64, String, String);

/// Claims by topic, each list sorted. Nearly every topic has one claimant: a sorted `Vec`
/// holds it in one small allocation where a `BTreeSet` allocates a node for eleven.
type ByKey = HashMap<Arc<IndexKey>, Vec<Claim>>;
/// The topic each KafkaTopic (by uid) claims; the key is shared with `ByKey`.
type ByUid = HashMap<String, Arc<IndexKey>>;

#[derive(Default)]
struct IndexState {
    by_key: ByKey,
    by_uid: ByUid,
    /// A relist in progress: built aside and swapped in when complete.
    building: Option<(ByKey, ByUid)>,
}

fn claim_of(t: &KafkaTopic) -> Option<(IndexKey, Claim)> {
    let uid = t.metadata.uid.clone()?;
    let (pns, pname) = t.proxy_key();
    let created = t
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|c| c.0.as_millisecond())
        .unwrap_or(i64::MAX);
    let who = format!(
        "{}/{}",
        t.metadata.namespace.clone().unwrap_or_default(),
        t.metadata.name.clone().unwrap_or_default()
    );
    let rank = if holds_topic(t, &pns, &pname) { 0 } else { 1 };
    Some(((pns, pname, t.kafka_name()), (rank, created, uid, who)))
}

/// Whether `t`'s status says it holds its topic on that proxy: Ready, or its create is in
/// flight. A KafkaTopic in conflict is never Ready and never creates.
fn holds_topic(t: &KafkaTopic, proxy_ns: &str, proxy_name: &str) -> bool {
    let Some(status) = t.status.as_ref() else {
        return false;
    };
    let same_topic = status.topic_name.as_deref() == Some(t.kafka_name().as_str())
        && status.proxy.as_deref() == Some(format!("{proxy_ns}/{proxy_name}").as_str());
    let ready =
        crate::crd::find_condition(&status.conditions, "Ready").is_some_and(|c| c.status == "True");
    same_topic && (ready || status.create_requested_at.is_some())
}

fn index_insert(by_key: &mut ByKey, by_uid: &mut ByUid, t: &KafkaTopic) {
    index_remove(
        by_key,
        by_uid,
        t.metadata.uid.as_deref().unwrap_or_default(),
    );
    if let Some((key, claim)) = claim_of(t) {
        let uid = claim.2.clone();
        let key = match by_key.get_key_value(&key) {
            Some((shared, _)) => shared.clone(),
            None => Arc::new(key),
        };
        let claims = by_key.entry(key.clone()).or_default();
        let at = claims.binary_search(&claim).unwrap_or_else(|at| at);
        claims.insert(at, claim);
        by_uid.insert(uid, key);
    }
}

fn index_remove(by_key: &mut ByKey, by_uid: &mut ByUid, uid: &str) {
    if let Some(key) = by_uid.remove(uid)
        && let Some(claims) = by_key.get_mut(&key)
    {
        claims.retain(|c| c.2 != uid);
        if claims.is_empty() {
            by_key.remove(&key);
        }
    }
}

impl TopicIndex {
    /// Applies one watch event.
    pub fn observe(&self, event: &kube::runtime::watcher::Event<KafkaTopic>) {
        use kube::runtime::watcher::Event;
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *s;
        match event {
            Event::Init => state.building = Some(Default::default()),
            Event::InitApply(t) => {
                if let Some((k, u)) = state.building.as_mut() {
                    index_insert(k, u, t);
                }
            }
            Event::InitDone => {
                if let Some((k, u)) = state.building.take() {
                    state.by_key = k;
                    state.by_uid = u;
                }
            }
            Event::Apply(t) => index_insert(&mut state.by_key, &mut state.by_uid, t),
            Event::Delete(t) => index_remove(
                &mut state.by_key,
                &mut state.by_uid,
                t.metadata.uid.as_deref().unwrap_or_default(),
            ),
        }
    }

    /// The claims on the topic `t` names, oldest first.
    pub fn claims(&self, t: &KafkaTopic) -> Vec<Claim> {
        let Some((key, _)) = claim_of(t) else {
            return vec![];
        };
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        s.by_key.get(&key).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::controller::stores::Stores;

    pub(crate) fn kt(name: &str, uid: &str, created_s: i64, topic: &str) -> KafkaTopic {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic",
            "metadata": {"name": name, "namespace": "ns", "uid": uid,
                "creationTimestamp": format!("2026-01-01T00:00:{created_s:02}Z")},
            "spec": {"topicName": topic}
        }))
        .expect("topic")
    }

    #[test]
    fn the_kafkatopic_holding_the_topic_keeps_it_against_a_same_second_newcomer() {
        use kube::runtime::watcher::Event;
        // Same creationTimestamp (one-second resolution); the newcomer's uid sorts first.
        let mut holder = kt("orders", "u9", 5, "t");
        let newcomer = kt("orders-copy", "u1", 5, "t");
        let stores = Stores {
            indexes: vec![Arc::new(TopicIndex::default())],
            ..Default::default()
        };
        stores.indexes[0].observe(&Event::Apply(holder.clone()));
        stores.indexes[0].observe(&Event::Apply(newcomer.clone()));
        // Before either holds the topic, age then uid decides.
        assert_eq!(
            stores.owner_other_than(&holder).as_deref(),
            Some("ns/orders-copy")
        );
        // Once one is Ready on it, it stays the owner.
        holder.status = serde_json::from_value(serde_json::json!({
            "topicName": "t", "proxy": "ns/default",
            "conditions": [{"type": "Ready", "status": "True", "reason": "Created", "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:06Z"}]
        }))
        .expect("status");
        stores.indexes[0].observe(&Event::Apply(holder.clone()));
        assert_eq!(stores.owner_other_than(&holder), None);
        assert_eq!(
            stores.owner_other_than(&newcomer).as_deref(),
            Some("ns/orders")
        );
        // A create in flight holds it too; a status for another proxy does not.
        holder.status = serde_json::from_value(serde_json::json!({
            "topicName": "t", "proxy": "ns/default", "createRequestedAt": "2026-01-01T00:00:06Z"
        }))
        .expect("status");
        stores.indexes[0].observe(&Event::Apply(holder.clone()));
        assert_eq!(stores.owner_other_than(&holder), None);
        holder.status = serde_json::from_value(serde_json::json!({
            "topicName": "t", "proxy": "elsewhere/default", "createRequestedAt": "2026-01-01T00:00:06Z"
        }))
        .expect("status");
        stores.indexes[0].observe(&Event::Apply(holder.clone()));
        assert_eq!(
            stores.owner_other_than(&holder).as_deref(),
            Some("ns/orders-copy")
        );
    }

    #[test]
    fn topic_index_orders_claims_and_follows_deletes_and_relists() {
        use kube::runtime::watcher::Event;
        let idx = TopicIndex::default();
        let older = kt("a", "u1", 1, "t");
        let newer = kt("b", "u2", 2, "t");
        let other = kt("c", "u3", 0, "x");
        for t in [&newer, &older, &other] {
            idx.observe(&Event::Apply(t.clone()));
        }
        let stores = Stores {
            indexes: vec![Arc::new(idx)],
            ..Default::default()
        };
        assert_eq!(stores.owner_other_than(&older), None);
        assert_eq!(stores.owner_other_than(&newer).as_deref(), Some("ns/a"));
        assert_eq!(stores.owner_other_than(&other), None);
        stores.indexes[0].observe(&Event::Delete(older.clone()));
        assert_eq!(stores.owner_other_than(&newer), None);
        // A relist replaces the index only when complete.
        stores.indexes[0].observe(&Event::Init);
        stores.indexes[0].observe(&Event::InitApply(older.clone()));
        assert_eq!(stores.owner_other_than(&newer), None);
        stores.indexes[0].observe(&Event::InitApply(newer.clone()));
        stores.indexes[0].observe(&Event::InitDone);
        assert_eq!(stores.owner_other_than(&newer).as_deref(), Some("ns/a"));
        assert!(
            stores.indexes[0].claims(&other).is_empty(),
            "c was not in the relist, so its claim is gone"
        );
    }
}
