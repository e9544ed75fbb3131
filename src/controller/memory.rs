//! Bounded per-object memories: what this process remembers about a KafkaTopic between
//! reconciles (a create it sent, a status it wrote, its last look at the topic).
//!
//! Each is keyed by the object's uid and forgets one object at a time: when the object is
//! deleted ([`Memory::forget`]), when the fact is no longer needed, or — when the memory is full —
//! the entry that was stored longest ago. Never all at once: clearing a memory of creates would
//! forget a create that was sent but not yet recorded, and the next reconcile would send it
//! again.

use std::collections::{BTreeMap, HashMap};

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
