//! What every reconcile shares: the Kubernetes client, the caches ([`Stores`]), the proxy
//! clients, the Event sink, the per-topic memories, metrics and settings — and the per-object
//! failure counts behind the backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Resource;
use kube::runtime::controller::Action;
use rand::Rng;

use crate::crd::{KafkaTopic, KafkaTopicStatus};
use crate::metrics::Metrics;

use super::events::EventSink;
use super::memory::TopicMemories;
use super::plan::PlanSettings;
use super::registry::ProxyRegistry;
pub use super::stores::{Stores, Triggers, queue_key};

/// Operator settings the controllers use.
#[derive(Clone, Debug)]
pub struct Settings {
    pub plan: PlanSettings,
    /// How old a shared topic list may be when a reconcile uses it.
    pub list_freshness: Duration,
    pub max_concurrent_reconciles: u16,
    /// Where KafkaRestProxies may send credentials.
    pub allowlist: crate::allowlist::Allowlist,
    /// How long a status patch may take (see [`super::status::STATUS_WRITE_TIMEOUT`]).
    pub status_write_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            plan: PlanSettings::default(),
            list_freshness: Duration::from_secs(2),
            max_concurrent_reconciles: 64,
            allowlist: crate::allowlist::Allowlist::default(),
            status_write_timeout: super::status::STATUS_WRITE_TIMEOUT,
        }
    }
}

/// Shared by all reconciles.
pub struct Context {
    pub client: kube::Client,
    pub stores: Stores,
    pub triggers: Triggers,
    pub registry: ProxyRegistry,
    pub events: EventSink,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Consecutive failures per object, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// What this process remembers about each KafkaTopic.
    pub memory: TopicMemories,
    /// Namespace labels, for `allowedTopicNamespaces.from: Selector`.
    namespaces: Mutex<HashMap<String, (std::time::Instant, Arc<Namespace>)>>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        stores: Stores,
        triggers: Triggers,
        registry: ProxyRegistry,
        events: EventSink,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Self {
        Self {
            client,
            stores,
            triggers,
            registry,
            events,
            metrics,
            settings,
            failures: Mutex::default(),
            memory: TopicMemories::default(),
            namespaces: Mutex::default(),
        }
    }

    /// Where the status of `name` goes, timed and counted under `kind`.
    pub fn status_target<'a, K>(
        &'a self,
        api: &'a kube::Api<K>,
        name: &'a str,
        kind: &'static str,
    ) -> super::status::StatusTarget<'a, K> {
        super::status::StatusTarget {
            api,
            name,
            kind,
            metrics: &self.metrics,
            timeout: self.settings.status_write_timeout,
        }
    }

    fn key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
        format!("{}/{}", K::kind(&()), queue_key(obj))
    }

    /// Marks the reconcile of `obj` as running (off the work queue, in flight) until the guard
    /// is dropped.
    pub fn reconcile_started<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
    ) -> crate::metrics::InFlight<'_> {
        self.metrics
            .reconcile_started(&K::kind(&()), &queue_key(obj))
    }

    /// Requeues `obj` after `after`, and tells the work-queue metric when it will be due.
    /// The delay is cut to [`crate::clock::MAX_DELAY`]: kube-runtime's scheduler panics on a
    /// deadline beyond its timer's range.
    pub fn requeue<K: Resource<DynamicType = ()>>(&self, obj: &K, after: Duration) -> Action {
        let after = crate::clock::bounded_delay(after);
        self.metrics.requeued(&K::kind(&()), &queue_key(obj), after);
        Action::requeue(after)
    }

    /// Counts a failure and returns how many in a row this object has had.
    pub fn failed<K: Resource<DynamicType = ()>>(&self, obj: &K) -> u32 {
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = f.entry(Self::key(obj)).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    pub fn succeeded<K: Resource<DynamicType = ()>>(&self, obj: &K) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Self::key(obj));
    }

    /// `topic` was deleted: its remembered write, failure count and queue entry go with it, and
    /// the other KafkaTopics that named the same topic are woken at once — the next in line
    /// becomes the owner now, not at its next requeue.
    pub fn topic_deleted(&self, topic: &KafkaTopic) {
        for (_, _, uid, who) in self.stores.claims(topic) {
            if Some(uid.as_str()) == topic.metadata.uid.as_deref() {
                continue;
            }
            if let Some((ns, name)) = who.split_once('/')
                && let Some(t) = self.stores.topic(ns, name)
            {
                self.triggers.topic(&t);
            }
        }
        self.succeeded(topic);
        if let Some(uid) = topic.metadata.uid.as_deref() {
            self.memory.forget(uid);
        }
        self.metrics.topic_queue.forget(&queue_key(topic));
    }

    /// The topic's status, the newest of three copies: the one the reconcile was handed, the
    /// one the cache holds now (it may have moved on since), and this process's own last write
    /// (the cache may not show it yet). resourceVersions are compared as numbers, which every
    /// API server uses; when they are not numbers the copy handed in is trusted.
    ///
    /// The own-write copy is dropped as soon as the cache shows it ([`Self::cache_caught_up`]);
    /// because the copy handed to a reconcile can be older than the cache by then, the cache's
    /// current copy is consulted too.
    pub fn fresher_status(&self, topic: &KafkaTopic) -> KafkaTopicStatus {
        let rv_of = |t: &KafkaTopic| {
            t.metadata
                .resource_version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok())
        };
        let (Some(uid), Some(handed_rv)) = (topic.metadata.uid.as_deref(), rv_of(topic)) else {
            return topic.status.clone().unwrap_or_default();
        };
        let mut newest_rv = handed_rv;
        let mut newest: Option<KafkaTopicStatus> = None;
        if let (Some(ns), Some(name)) = (
            topic.metadata.namespace.as_deref(),
            topic.metadata.name.as_deref(),
        ) && let Some(current) = self.stores.topic(ns, name)
            && current.metadata.uid.as_deref() == Some(uid)
            && let Some(rv) = rv_of(&current)
            && rv > newest_rv
        {
            newest_rv = rv;
            newest = Some(current.status.clone().unwrap_or_default());
        }
        if let Some(written) = self.memory.write_newer_than(uid, newest_rv) {
            return written;
        }
        newest.unwrap_or_else(|| topic.status.clone().unwrap_or_default())
    }

    /// A namespace, cached for a minute.
    pub async fn namespace(&self, name: &str) -> Result<Arc<Namespace>, kube::Error> {
        if let Some((at, ns)) = self
            .namespaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            && at.elapsed() < Duration::from_secs(60)
        {
            return Ok(ns.clone());
        }
        let api: kube::Api<Namespace> = kube::Api::all(self.client.clone());
        let ns = Arc::new(api.get(name).await?);
        self.namespaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (std::time::Instant::now(), ns.clone()));
        Ok(ns)
    }
}

#[cfg(test)]
impl Context {
    /// A context whose Kubernetes client points at a closed port, for unit tests.
    pub(crate) fn offline(stores: Stores) -> Context {
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let reporter = kube::runtime::events::Reporter {
            controller: "test".into(),
            instance: None,
        };
        Context::new(
            client.clone(),
            stores,
            Triggers::default(),
            ProxyRegistry::new(client.clone(), Arc::new(crate::proxy::NoopObserver)),
            EventSink::new(client, reporter),
            Arc::new(Metrics::new()),
            Settings::default(),
        )
    }
}

/// `d` ± 10 %, so that many objects requeued together spread out.
pub fn jitter(d: Duration) -> Duration {
    let ms = d.as_millis().min(u128::from(u64::MAX)) as u64;
    if ms < 10 {
        return d;
    }
    let spread = ms / 10;
    let offset = rand::rng().random_range(0..=2 * spread);
    Duration::from_millis(ms - spread + offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::memory::{MAX_REMEMBERED_CREATES, MAX_REMEMBERED_WRITES};
    use crate::controller::ownership::tests::kt;
    use k8s_openapi::jiff::Timestamp;
    use std::time::Instant;

    fn offline_context() -> Context {
        offline_context_with(Stores::default())
    }

    fn offline_context_with(stores: Stores) -> Context {
        Context::offline(stores)
    }

    fn at_version(mut t: KafkaTopic, rv: u64, reason: &str) -> KafkaTopic {
        t.metadata.resource_version = Some(rv.to_string());
        t.status = Some(KafkaTopicStatus {
            topic_name: Some(reason.to_string()),
            ..Default::default()
        });
        t
    }

    #[tokio::test]
    async fn own_status_writes_are_kept_until_the_cache_shows_them() {
        let ctx = offline_context();
        let base = kt("a", "uid-a", 0, "a");
        ctx.memory
            .remember_status(&at_version(base.clone(), 10, "written"));
        assert_eq!(ctx.memory.remembered_statuses(), 1);

        // The cache is older than the write: the write is what a reconcile plans from, and an
        // older watch event does not drop it.
        let stale = at_version(base.clone(), 9, "stale");
        assert_eq!(
            ctx.fresher_status(&stale).topic_name.as_deref(),
            Some("written")
        );
        ctx.memory.cache_caught_up(&stale);
        assert_eq!(ctx.memory.remembered_statuses(), 1);

        // The watch delivered the write: the copy goes without waiting for a reconcile.
        ctx.memory
            .cache_caught_up(&at_version(base.clone(), 10, "written"));
        assert_eq!(ctx.memory.remembered_statuses(), 0);
        assert_eq!(
            ctx.fresher_status(&stale).topic_name.as_deref(),
            Some("stale")
        );

        // A deletion drops it, its queue entry and its failure count; another object's event does
        // not drop it.
        ctx.memory
            .remember_status(&at_version(base.clone(), 12, "written"));
        ctx.memory
            .cache_caught_up(&at_version(kt("b", "uid-b", 0, "b"), 99, "other"));
        assert_eq!(ctx.memory.remembered_statuses(), 1);
        ctx.metrics
            .topic_queue
            .changed(&queue_key(&base), Instant::now());
        assert_eq!(ctx.failed(&base), 1);
        ctx.topic_deleted(&at_version(base.clone(), 11, "deleted"));
        assert_eq!(ctx.memory.remembered_statuses(), 0);
        assert_eq!(ctx.metrics.topic_queue.depth(Instant::now()), 0);
        assert_eq!(
            ctx.failed(&base),
            1,
            "a topic created again starts without backoff"
        );
    }

    #[tokio::test]
    async fn a_reconcile_handed_an_old_copy_sees_the_write_the_cache_already_shows() {
        // The reconcile was handed version 9; meanwhile its own write (version 10) reached the
        // cache and the remembered copy was dropped. It must plan from version 10.
        let (store, mut writer) = kube::runtime::reflector::store::<KafkaTopic>();
        let ctx = offline_context_with(Stores {
            namespaces: vec![String::new()],
            topics: vec![store],
            ..Default::default()
        });
        let base = kt("a", "uid-a", 0, "a");
        let handed = at_version(base.clone(), 9, "stale");
        let written = at_version(base.clone(), 10, "written");
        ctx.memory.remember_status(&written);
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(written.clone()));
        ctx.memory.cache_caught_up(&written);
        assert_eq!(ctx.memory.remembered_statuses(), 0);
        assert_eq!(
            ctx.fresher_status(&handed).topic_name.as_deref(),
            Some("written")
        );

        // A newer copy handed in wins over an older cache; another object of the same name
        // (deleted and created again: another uid) is not mixed up with it.
        let newer = at_version(base.clone(), 11, "newer");
        assert_eq!(
            ctx.fresher_status(&newer).topic_name.as_deref(),
            Some("newer")
        );
        let mut reborn = at_version(kt("a", "uid-a2", 0, "a"), 3, "reborn");
        reborn.metadata.namespace = Some("ns".into());
        assert_eq!(
            ctx.fresher_status(&reborn).topic_name.as_deref(),
            Some("reborn")
        );
    }

    #[tokio::test]
    async fn a_refused_create_is_remembered_per_object_and_topic_until_the_object_goes() {
        let ctx = offline_context();
        let first = Timestamp::from_second(1_800_000_000).unwrap_or_default();
        let later = Timestamp::from_second(1_800_000_030).unwrap_or_default();
        ctx.memory
            .remember_refusal("uid-a", "ns/default/orders", first);
        ctx.memory
            .remember_refusal("uid-a", "ns/default/orders", later);
        ctx.memory.remember_refusal("uid-b", "ns/default/t", first);
        // The latest refusal counts; another topic of the same object (a moved proxyRef) or
        // another object never matches.
        assert_eq!(
            ctx.memory.last_refusal("uid-a", "ns/default/orders"),
            Some(later)
        );
        assert_eq!(ctx.memory.last_refusal("uid-a", "ns/other/orders"), None);
        assert_eq!(ctx.memory.last_refusal("uid-c", "ns/default/orders"), None);
        ctx.memory.forget("uid-a");
        assert_eq!(ctx.memory.last_refusal("uid-a", "ns/default/orders"), None);
        assert_eq!(
            ctx.memory.last_refusal("uid-b", "ns/default/t"),
            Some(first)
        );
    }

    #[tokio::test]
    async fn a_pending_create_survives_pressure_and_goes_with_its_object() {
        let ctx = offline_context();
        let at = Timestamp::from_second(1_800_000_000).unwrap_or_default();
        ctx.memory
            .remember_create("uid-pending", "ns/default/orders", at, true);
        // Far more own writes than the memory of writes holds: the old way cleared every
        // memory when full; now each evicts only its own oldest entries.
        for i in 0..(MAX_REMEMBERED_WRITES + 10) {
            let mut t = at_version(kt("x", &format!("uid-{i}"), 0, "x"), 5, "w");
            t.metadata.uid = Some(format!("uid-{i}"));
            ctx.memory.remember_status(&t);
        }
        assert_eq!(ctx.memory.remembered_statuses(), MAX_REMEMBERED_WRITES);
        assert_eq!(
            ctx.memory
                .remembered_create("uid-pending", "ns/default/orders"),
            Some((at, true))
        );
        // Another object's create, or another topic, never matches.
        assert_eq!(
            ctx.memory
                .remembered_create("uid-pending", "ns/default/other"),
            None
        );
        assert_eq!(
            ctx.memory.remembered_create("uid-0", "ns/default/orders"),
            None
        );
        // Recorded in a status: forgotten; other objects' memories stay.
        ctx.memory
            .remember_create("uid-other", "ns/default/t", at, false);
        ctx.memory.create_recorded("uid-pending");
        assert_eq!(
            ctx.memory
                .remembered_create("uid-pending", "ns/default/orders"),
            None
        );
        assert!(
            ctx.memory
                .remembered_create("uid-other", "ns/default/t")
                .is_some()
        );
        // Deleting a KafkaTopic forgets its memories only.
        let mut gone = kt("gone", "uid-other", 0, "t");
        gone.metadata.resource_version = Some("1".into());
        ctx.topic_deleted(&gone);
        assert!(
            ctx.memory
                .remembered_create("uid-other", "ns/default/t")
                .is_none()
        );
        assert_eq!(ctx.memory.remembered_statuses(), MAX_REMEMBERED_WRITES);
    }

    #[tokio::test]
    async fn a_full_memory_of_creates_evicts_the_oldest_first() {
        let ctx = offline_context();
        let at = Timestamp::from_second(1_800_000_000).unwrap_or_default();
        for i in 0..MAX_REMEMBERED_CREATES {
            ctx.memory
                .remember_create(&format!("uid-{i}"), "ns/default/t", at, false);
        }
        ctx.memory
            .remember_create("uid-new", "ns/default/t", at, true);
        assert!(
            ctx.memory
                .remembered_create("uid-0", "ns/default/t")
                .is_none()
        );
        assert!(
            ctx.memory
                .remembered_create("uid-1", "ns/default/t")
                .is_some()
        );
        assert!(
            ctx.memory
                .remembered_create("uid-new", "ns/default/t")
                .is_some()
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let j = jitter(Duration::from_secs(600));
            assert!(j >= Duration::from_secs(540) && j <= Duration::from_secs(660));
        }
        assert_eq!(jitter(Duration::from_millis(5)), Duration::from_millis(5));
    }
}
