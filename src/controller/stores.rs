//! The caches of watched objects, and where reconciles of other objects are requested.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tokio::sync::{mpsc, watch};

use crate::crd::{KafkaRestProxy, KafkaTopic};
use crate::metrics::WorkQueue;

use super::ownership::{Claim, TopicIndex};

/// Caches of the watched objects. With several watched namespaces there is one store per
/// namespace; lookups search them all.
#[derive(Clone, Default)]
pub struct Stores {
    /// The namespaces whose KafkaTopics are watched, `[""]` for all; `topics` and `indexes` are
    /// in the same order.
    pub namespaces: Vec<String>,
    pub topics: Vec<Store<KafkaTopic>>,
    /// The namespaces whose KafkaRestProxies and Secrets are watched (`--proxy-namespaces`, or
    /// else the topic namespaces), `[""]` for all; `proxies` and `secrets` are in this order.
    pub proxy_namespaces: Vec<String>,
    pub proxies: Vec<Store<KafkaRestProxy>>,
    /// Secret metadata: name, namespace, uid and resourceVersion only.
    pub secrets: Vec<Store<PartialObjectMeta<Secret>>>,
    /// Topic ownership, one index per topic watch.
    pub indexes: Vec<Arc<TopicIndex>>,
    /// Whether each cache holds its first full list, in the order of `topics`, `proxies` and
    /// `secrets` (see [`Synced`]).
    pub topics_synced: Vec<Synced>,
    pub proxies_synced: Vec<Synced>,
    pub secrets_synced: Vec<Synced>,
}

/// Whether one cache holds its first full list: set by its watch once the reflector has applied
/// the list, waited for by any number of tasks.
///
/// kube-runtime's own `Store::wait_until_ready` keeps a oneshot receiver behind a mutex, which
/// remembers only the waker that polled it last: when several tasks wait for one store — every
/// namespace's topic controller waits for every proxy and Secret cache, the readiness probe for
/// all of them, and the store's own controller for it — all but the last go unwoken. With ten or
/// more watched namespaces no topic controller ever started. Here `wait_until_ready` is left to
/// each store's own controller (its only waiter), and everything else asks these flags.
#[derive(Clone, Debug)]
pub struct Synced(Arc<watch::Sender<bool>>);

impl Default for Synced {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }
}

impl Synced {
    /// The cache holds its first full list (for good: a later re-list keeps serving the old one).
    pub fn set(&self) {
        self.0.send_replace(true);
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once [`Synced::set`] has been called.
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`: the channel cannot close while this waits.
        let _ = rx.wait_for(|synced| *synced).await;
    }
}

impl Stores {
    /// The cached KafkaTopic `namespace/name`, as the cache has it now.
    pub fn topic(&self, namespace: &str, name: &str) -> Option<Arc<KafkaTopic>> {
        let key = ObjectRef::new(name).within(namespace);
        self.topics.iter().find_map(|s| s.get(&key))
    }

    pub fn proxy(&self, namespace: &str, name: &str) -> Option<Arc<KafkaRestProxy>> {
        let key = ObjectRef::new(name).within(namespace);
        self.proxies.iter().find_map(|s| s.get(&key))
    }

    /// Whether the proxy and Secret caches hold their first full list: before that, a
    /// KafkaRestProxy or Secret missing from them says nothing.
    pub fn synced(&self) -> bool {
        self.proxies_synced
            .iter()
            .chain(&self.secrets_synced)
            .all(Synced::is_set)
    }

    /// Returns once the proxy and Secret caches hold their first full list.
    pub async fn proxies_and_secrets_synced(&self) {
        for s in self.proxies_synced.iter().chain(&self.secrets_synced) {
            s.wait().await;
        }
    }

    /// Returns once every cache holds its first full list.
    pub async fn all_synced(&self) {
        for s in &self.topics_synced {
            s.wait().await;
        }
        self.proxies_and_secrets_synced().await;
    }

    /// The metadata store that holds `namespace`'s Secrets (an empty one if it is not watched).
    pub fn secrets_for(&self, namespace: &str) -> Store<PartialObjectMeta<Secret>> {
        self.proxy_namespaces
            .iter()
            .position(|n| n.is_empty() || n == namespace)
            .and_then(|i| self.secrets.get(i).cloned())
            .unwrap_or_else(empty_store)
    }

    /// Topics that name the given proxy.
    pub fn topics_of_proxy(&self, namespace: &str, name: &str) -> Vec<Arc<KafkaTopic>> {
        self.topics
            .iter()
            .flat_map(|s| {
                s.state_filter(|t| {
                    let (ns, n) = t.proxy_key();
                    ns == namespace && n == name
                })
            })
            .collect()
    }

    /// Every KafkaTopic naming the same Kafka topic on the same proxy as `topic` (itself
    /// included), the one holding the topic first, then oldest first (creationTimestamp, uid).
    pub fn claims(&self, topic: &KafkaTopic) -> Vec<Claim> {
        let mut all: Vec<Claim> = self.indexes.iter().flat_map(|i| i.claims(topic)).collect();
        all.sort();
        all.dedup();
        all
    }

    /// The oldest KafkaTopic naming the same Kafka topic on the same proxy as `topic`, as
    /// "namespace/name", when it is not `topic` itself. Counts every claimant, allowed or not:
    /// the reconcile uses [`Stores::claims`] and skips namespaces the proxy does not allow.
    pub fn owner_other_than(&self, topic: &KafkaTopic) -> Option<String> {
        let oldest = self.claims(topic).into_iter().next()?;
        if Some(oldest.2.as_str()) == topic.metadata.uid.as_deref() {
            None
        } else {
            Some(oldest.3)
        }
    }
}

fn empty_store<K>() -> Store<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (store, _writer) = kube::runtime::reflector::store::<K>();
    store
}

/// How the work-queue metric names an object: "namespace/name".
pub fn queue_key<K: Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

/// Where reconciles of other objects are requested (a proxy's change re-triggers its topics).
#[derive(Clone, Default)]
pub struct Triggers {
    /// Keyed by watched namespace ("" when all namespaces are watched).
    pub topics: HashMap<String, mpsc::UnboundedSender<ObjectRef<KafkaTopic>>>,
    pub proxies: HashMap<String, mpsc::UnboundedSender<ObjectRef<KafkaRestProxy>>>,
    /// The work-queue metrics, told of every trigger (the runner sets the operator's own).
    pub topic_queue: Arc<WorkQueue>,
    pub proxy_queue: Arc<WorkQueue>,
}

impl Triggers {
    fn pick<'a, T>(map: &'a HashMap<String, T>, ns: &str) -> Option<&'a T> {
        map.get(ns).or_else(|| map.get(""))
    }

    pub fn topic(&self, t: &KafkaTopic) {
        let ns = t.namespace().unwrap_or_default();
        if let Some(tx) = Self::pick(&self.topics, &ns) {
            self.topic_queue.changed(&queue_key(t), Instant::now());
            let _ = tx.send(ObjectRef::from_obj(t));
        }
    }

    pub fn proxy(&self, p: &KafkaRestProxy) {
        let ns = p.namespace().unwrap_or_default();
        if let Some(tx) = Self::pick(&self.proxies, &ns) {
            self.proxy_queue.changed(&queue_key(p), Instant::now());
            let _ = tx.send(ObjectRef::from_obj(p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// What kube-runtime's `Store::wait_until_ready` does not do: every task waiting for the
    /// cache wakes when it is set, however many there are and in whatever order they began.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiter_wakes_when_the_cache_is_synced() {
        let synced = Synced::default();
        assert!(!synced.is_set());
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                let s = synced.clone();
                tokio::spawn(async move { s.wait().await })
            })
            .collect();
        // Every waiter has polled (and parked) before the flag is set.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        synced.set();
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("a waiter was not woken")
                .expect("the waiter");
        }
        assert!(synced.is_set());
        // Waiting after the fact returns at once.
        tokio::time::timeout(Duration::from_secs(1), synced.wait())
            .await
            .expect("already synced");
    }

    /// Topics are judged against the proxy and Secret caches only once both hold their first
    /// list; the topic caches count for `all_synced` (the readiness probe), not for `synced`.
    #[tokio::test]
    async fn the_caches_count_as_synced_once_each_flag_is_set() {
        let stores = Stores {
            topics_synced: vec![Synced::default()],
            proxies_synced: vec![Synced::default(), Synced::default()],
            secrets_synced: vec![Synced::default(), Synced::default()],
            ..Default::default()
        };
        let flags = || {
            stores
                .proxies_synced
                .iter()
                .chain(&stores.secrets_synced)
                .cloned()
                .collect::<Vec<_>>()
        };
        for (i, flag) in flags().into_iter().enumerate() {
            assert!(!stores.synced(), "synced with only {i} of 4 flags set");
            let waiting = tokio::time::timeout(
                Duration::from_millis(20),
                stores.proxies_and_secrets_synced(),
            )
            .await;
            assert!(waiting.is_err(), "waited past {i} of 4 flags");
            flag.set();
        }
        assert!(stores.synced());
        tokio::time::timeout(Duration::from_secs(1), stores.proxies_and_secrets_synced())
            .await
            .expect("proxies and Secrets synced");
        let all = tokio::time::timeout(Duration::from_millis(20), stores.all_synced()).await;
        assert!(all.is_err(), "all synced without the topic cache");
        stores.topics_synced[0].set();
        tokio::time::timeout(Duration::from_secs(1), stores.all_synced())
            .await
            .expect("all synced");
    }
}
