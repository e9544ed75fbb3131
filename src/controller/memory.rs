//! Bounded per-object memories: what this process remembers about a KafkaTopic between
//! reconciles (a create it sent, a status it wrote, its last look at the topic), kept
//! together in [`TopicMemories`].
//!
//! Each is keyed by the object's uid and forgets one object at a time: when the object is
//! deleted ([`Memory::forget`]), when the fact is no longer needed, or — when the memory is full —
//! the entry that was stored longest ago. Never all at once: clearing a memory of creates would
//! forget a create that was sent but not yet recorded, and the next reconcile would send it
//! again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::jiff::Timestamp;

use super::plan::{LastLook, LookUpdate};
use crate::crd::{KafkaTopic, KafkaTopicStatus};

/// A map from uid to `V` holding at most `capacity` entries, evicting the oldest stored first.
#[derive(Debug)]
pub struct Memory<V> {
    capacity: usize,
    next: u64,
    /// Insertion sequence → uid: the oldest entry is the first.
    order: BTreeMap<u64, String>,
    entries: HashMap<String, (u64, V)>,
}

impl<V> Memory<V> {
    /// A memory of at most `capacity` objects (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            next: 0,
            order: BTreeMap::new(),
            entries: HashMap::new(),
        }
    }

    /// Stores `value` for `uid` as its newest entry; evicts the oldest entries beyond capacity.
    pub fn remember(&mut self, uid: &str, value: V) {
        self.forget(uid);
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        self.order.insert(seq, uid.to_string());
        self.entries.insert(uid.to_string(), (seq, value));
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }

    pub fn get(&self, uid: &str) -> Option<&V> {
        self.entries.get(uid).map(|(_, v)| v)
    }

    /// Forgets `uid` only; returns what was remembered.
    pub fn forget(&mut self, uid: &str) -> Option<V> {
        let (seq, value) = self.entries.remove(uid)?;
        self.order.remove(&seq);
        Some(value)
    }

    /// Forgets `uid` when its entry satisfies `pred`.
    pub fn forget_if(&mut self, uid: &str, pred: impl FnOnce(&V) -> bool) {
        if self.get(uid).is_some_and(pred) {
            self.forget(uid);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Creates sent but not yet recorded in a status: a handful at a time (a create is forgotten
/// once a status write records it), so the bound only matters when writes keep failing.
pub const MAX_REMEMBERED_CREATES: usize = 50_000;
/// Own status writes the cache has not shown yet.
pub const MAX_REMEMBERED_WRITES: usize = 200_000;
/// Last looks: one per KafkaTopic (the partition details of the last description).
pub const MAX_REMEMBERED_LOOKS: usize = 200_000;
/// Refused creates: one per KafkaTopic whose create the proxy refused (a few, normally).
pub const MAX_REMEMBERED_REFUSALS: usize = 50_000;

/// A create this process sent.
#[derive(Clone, Debug)]
struct RememberedCreate {
    /// "proxy/topic": a KafkaTopic's uid keeps its topic and proxy, but a memory of another
    /// object's create must never apply.
    topic: String,
    at: Timestamp,
    uncertain: bool,
}

/// What this process remembers about each KafkaTopic, by uid; [`TopicMemories::forget`] drops
/// all of it for one object.
pub struct TopicMemories {
    /// Creates this process sent, until a status write records them (in case recording
    /// failed).
    creates: Mutex<Memory<RememberedCreate>>,
    /// The status this process last wrote, with the resourceVersion the server gave it: the
    /// cache may not have caught up with it yet.
    written: Mutex<Memory<(u64, KafkaTopicStatus)>>,
    /// This process's last look at each topic (a description, or a status inherited from a
    /// previous process).
    looks: Mutex<Memory<LastLook>>,
    /// The last create this process sent that the proxy refused ("proxy/topic", when): a
    /// create refused because the topic exists is sent again only `--uncertain-retry` after
    /// the previous one, not on every poll.
    refusals: Mutex<Memory<(String, Timestamp)>>,
}

impl Default for TopicMemories {
    fn default() -> Self {
        Self {
            creates: Mutex::new(Memory::new(MAX_REMEMBERED_CREATES)),
            written: Mutex::new(Memory::new(MAX_REMEMBERED_WRITES)),
            looks: Mutex::new(Memory::new(MAX_REMEMBERED_LOOKS)),
            refusals: Mutex::new(Memory::new(MAX_REMEMBERED_REFUSALS)),
        }
    }
}

impl TopicMemories {
    /// Records a create of `topic` (a "proxy/topic" key) sent at `at` for the KafkaTopic `uid`;
    /// `uncertain` when it got no clear answer.
    pub fn remember_create(&self, uid: &str, topic: &str, at: Timestamp, uncertain: bool) {
        self.creates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remember(
                uid,
                RememberedCreate {
                    topic: topic.to_string(),
                    at,
                    uncertain,
                },
            );
    }

    /// The create this process sent for `uid` and `topic` and has not seen recorded yet.
    pub fn remembered_create(&self, uid: &str, topic: &str) -> Option<(Timestamp, bool)> {
        self.creates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .filter(|c| c.topic == topic)
            .map(|c| (c.at, c.uncertain))
    }

    /// A status write recorded the create of `uid` (or the topic is present): the memory is
    /// no longer needed.
    pub fn create_recorded(&self, uid: &str) {
        self.creates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(uid);
    }

    /// Records that the proxy refused a create of `topic` ("proxy/topic") sent at `at` for the
    /// KafkaTopic `uid`.
    pub fn remember_refusal(&self, uid: &str, topic: &str, at: Timestamp) {
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remember(uid, (topic.to_string(), at));
    }

    /// When the proxy last refused a create of `topic` this process sent for `uid`.
    pub fn last_refusal(&self, uid: &str, topic: &str) -> Option<Timestamp> {
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .filter(|(t, _)| t == topic)
            .map(|(_, at)| *at)
    }

    /// This process's last look at the topic of `uid`.
    pub fn last_look(&self, uid: &str) -> Option<LastLook> {
        self.looks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .cloned()
    }

    /// Applies what a reconcile decided about its last look.
    pub fn update_look(&self, uid: &str, update: &LookUpdate) {
        let mut looks = self.looks.lock().unwrap_or_else(|e| e.into_inner());
        match update {
            LookUpdate::Keep => {}
            LookUpdate::Remember(look) => looks.remember(uid, (**look).clone()),
            LookUpdate::Forget => {
                looks.forget(uid);
            }
        }
    }

    /// Records a status this process wrote.
    pub fn remember_status(&self, stored: &KafkaTopic) {
        let (Some(uid), Some(rv), Some(status)) = (
            stored.metadata.uid.clone(),
            stored
                .metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok()),
            stored.status.clone(),
        ) else {
            return;
        };
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remember(&uid, (rv, status));
    }

    /// The watch stream delivered `topic`: once it shows this process's own last write (or a
    /// newer version), the remembered copy is dropped, so that 10,000 Ready topics are not held
    /// twice until their next resync.
    pub fn cache_caught_up(&self, topic: &KafkaTopic) {
        let (Some(uid), Some(seen)) = (
            topic.metadata.uid.as_deref(),
            topic
                .metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok()),
        ) else {
            return;
        };
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget_if(uid, |(rv, _)| seen >= *rv);
    }

    /// Forgets everything remembered about the KafkaTopic `uid`, and nothing else.
    pub fn forget(&self, uid: &str) {
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(uid);
        self.creates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(uid);
        self.looks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(uid);
        self.refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(uid);
    }

    /// How many own status writes the cache has not shown yet.
    #[cfg(test)]
    pub(crate) fn remembered_statuses(&self) -> usize {
        self.written.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The status this process wrote for `uid` when the server gave it a resourceVersion newer
    /// than `than`; a copy no newer than that is no longer needed and is dropped.
    pub fn write_newer_than(&self, uid: &str, than: u64) -> Option<KafkaTopicStatus> {
        let mut w = self.written.lock().unwrap_or_else(|e| e.into_inner());
        match w.get(uid) {
            Some((rv, status)) if *rv > than => Some(status.clone()),
            Some(_) => {
                w.forget(uid);
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_memory_evicts_the_oldest_entry_only() {
        let mut m = Memory::new(3);
        m.remember("a", 1);
        m.remember("b", 2);
        m.remember("c", 3);
        m.remember("d", 4);
        assert_eq!(m.len(), 3);
        assert_eq!(m.get("a"), None, "the oldest goes first");
        assert_eq!(
            (m.get("b"), m.get("c"), m.get("d")),
            (Some(&2), Some(&3), Some(&4))
        );
        // Storing again makes an entry the newest: "b" now outlives "c".
        m.remember("b", 20);
        m.remember("e", 5);
        assert_eq!(m.get("c"), None);
        assert_eq!(m.get("b"), Some(&20));
    }

    #[test]
    fn forgetting_one_object_leaves_the_others() {
        let mut m = Memory::new(10);
        for (i, uid) in ["a", "b", "c"].into_iter().enumerate() {
            m.remember(uid, i);
        }
        assert_eq!(m.forget("b"), Some(1));
        assert_eq!(m.forget("b"), None);
        assert_eq!((m.get("a"), m.get("c")), (Some(&0), Some(&2)));
        m.forget_if("a", |v| *v == 99);
        assert_eq!(
            m.get("a"),
            Some(&0),
            "forget_if keeps an entry that does not match"
        );
        m.forget_if("a", |v| *v == 0);
        assert_eq!(m.get("a"), None);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn the_newest_entry_survives_any_amount_of_pressure() {
        // A create sent a moment ago is the newest entry: a flood of older (or later, but
        // fewer than the capacity) entries never evicts it — unlike a memory cleared when full.
        let mut m = Memory::new(100);
        for i in 0..99 {
            m.remember(&format!("old-{i}"), i);
        }
        m.remember("pending", 1_000);
        for i in 0..99 {
            m.remember(&format!("new-{i}"), i);
        }
        assert_eq!(m.get("pending"), Some(&1_000));
        assert_eq!(m.len(), 100);
        assert!(m.get("old-98").is_none());
    }
}
