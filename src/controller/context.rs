//! What every reconcile shares: the Kubernetes client, the caches, the proxy clients, the
//! Event recorder, metrics and settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use rand::Rng;
use tokio::sync::mpsc;

use crate::crd::{KafkaRestProxy, KafkaTopic, KafkaTopicStatus};
use crate::metrics::{Metrics, WorkQueue};

use super::memory::Memory;
use super::plan::{EventSpec, LastLook, LookUpdate, PlanSettings};
use super::registry::ProxyRegistry;

/// Operator settings the controllers use.
#[derive(Clone, Debug)]
pub struct Settings {
    pub plan: PlanSettings,
    /// How old a shared topic list may be when a reconcile uses it.
    pub list_freshness: Duration,
    pub max_concurrent_reconciles: u16,
    /// Where KafkaRestProxies may send credentials.
    pub allowlist: crate::allowlist::Allowlist,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            plan: PlanSettings::default(),
            list_freshness: Duration::from_secs(2),
            max_concurrent_reconciles: 64,
            allowlist: crate::allowlist::Allowlist::default(),
        }
    }
}

/// Creates sent but not yet recorded in a status: a handful at a time (a create is forgotten
/// once a status write records it), so the bound only matters when writes keep failing.
const MAX_REMEMBERED_CREATES: usize = 50_000;
/// Own status writes the cache has not shown yet.
const MAX_REMEMBERED_WRITES: usize = 200_000;
/// Last looks: one per KafkaTopic (the partition details of the last description).
const MAX_REMEMBERED_LOOKS: usize = 200_000;

/// A create this process sent.
#[derive(Clone, Debug)]
struct RememberedCreate {
    /// "proxy/topic": a KafkaTopic's uid keeps its topic and proxy, but a memory of another
    /// object's create must never apply.
    topic: String,
    at: Timestamp,
    uncertain: bool,
}

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
        use futures::FutureExt as _;
        self.proxies
            .iter()
            .all(|s| s.wait_until_ready().now_or_never().is_some())
            && self
                .secrets
                .iter()
                .all(|s| s.wait_until_ready().now_or_never().is_some())
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
}

/// Shared by all reconciles.
pub struct Context {
    pub client: kube::Client,
    pub stores: Stores,
    pub triggers: Triggers,
    pub registry: ProxyRegistry,
    pub recorder: EventSink,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Consecutive failures per object, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Creates this process sent, by KafkaTopic uid, until a status write records them (in
    /// case recording failed).
    creates: Mutex<Memory<RememberedCreate>>,
    /// The status this process last wrote per KafkaTopic uid, with the resourceVersion the
    /// server gave it: the cache may not have caught up with it yet.
    written: Mutex<Memory<(u64, KafkaTopicStatus)>>,
    /// This process's last look at each topic (a description, or a status inherited from a
    /// previous process), by KafkaTopic uid.
    looks: Mutex<Memory<LastLook>>,
    /// Namespace labels, for `allowedTopicNamespaces.from: Selector`.
    namespaces: Mutex<HashMap<String, (std::time::Instant, Arc<Namespace>)>>,
}

impl Context {
    pub fn new(
        client: kube::Client,
        stores: Stores,
        triggers: Triggers,
        registry: ProxyRegistry,
        recorder: EventSink,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Self {
        Self {
            client,
            stores,
            triggers,
            registry,
            recorder,
            metrics,
            settings,
            failures: Mutex::default(),
            creates: Mutex::new(Memory::new(MAX_REMEMBERED_CREATES)),
            written: Mutex::new(Memory::new(MAX_REMEMBERED_WRITES)),
            looks: Mutex::new(Memory::new(MAX_REMEMBERED_LOOKS)),
            namespaces: Mutex::default(),
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
            self.forget(uid);
        }
        self.metrics.topic_queue.forget(&queue_key(topic));
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
    }

    /// How many own status writes the cache has not shown yet.
    #[cfg(test)]
    fn remembered_statuses(&self) -> usize {
        self.written.lock().unwrap_or_else(|e| e.into_inner()).len()
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
        let mut w = self.written.lock().unwrap_or_else(|e| e.into_inner());
        match w.get(uid) {
            Some((rv, status)) if *rv > newest_rv => return status.clone(),
            // The cache has caught up: the copy is no longer needed.
            Some(_) => {
                w.forget(uid);
            }
            None => {}
        }
        drop(w);
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
        if let Err(e) = self
            .recorder
            .shard(&reference)
            .publish(&ev, &reference)
            .await
        {
            tracing::warn!(error = %e, reason = event.reason, "could not publish Event");
        }
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
        ctx.remember_status(&at_version(base.clone(), 10, "written"));
        assert_eq!(ctx.remembered_statuses(), 1);

        // The cache is older than the write: the write is what a reconcile plans from, and an
        // older watch event does not drop it.
        let stale = at_version(base.clone(), 9, "stale");
        assert_eq!(
            ctx.fresher_status(&stale).topic_name.as_deref(),
            Some("written")
        );
        ctx.cache_caught_up(&stale);
        assert_eq!(ctx.remembered_statuses(), 1);

        // The watch delivered the write: the copy goes without waiting for a reconcile.
        ctx.cache_caught_up(&at_version(base.clone(), 10, "written"));
        assert_eq!(ctx.remembered_statuses(), 0);
        assert_eq!(
            ctx.fresher_status(&stale).topic_name.as_deref(),
            Some("stale")
        );

        // A deletion drops it, its queue entry and its failure count; another object's event does
        // not drop it.
        ctx.remember_status(&at_version(base.clone(), 12, "written"));
        ctx.cache_caught_up(&at_version(kt("b", "uid-b", 0, "b"), 99, "other"));
        assert_eq!(ctx.remembered_statuses(), 1);
        ctx.metrics
            .topic_queue
            .changed(&queue_key(&base), Instant::now());
        assert_eq!(ctx.failed(&base), 1);
        ctx.topic_deleted(&at_version(base.clone(), 11, "deleted"));
        assert_eq!(ctx.remembered_statuses(), 0);
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
        ctx.remember_status(&written);
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(written.clone()));
        ctx.cache_caught_up(&written);
        assert_eq!(ctx.remembered_statuses(), 0);
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
    async fn a_pending_create_survives_pressure_and_goes_with_its_object() {
        let ctx = offline_context();
        let at = Timestamp::from_second(1_800_000_000).unwrap_or_default();
        ctx.remember_create("uid-pending", "ns/default/orders", at, true);
        // Far more own writes than the memory of writes holds: the old way cleared every
        // memory when full; now each evicts only its own oldest entries.
        for i in 0..(MAX_REMEMBERED_WRITES + 10) {
            let mut t = at_version(kt("x", &format!("uid-{i}"), 0, "x"), 5, "w");
            t.metadata.uid = Some(format!("uid-{i}"));
            ctx.remember_status(&t);
        }
        assert_eq!(ctx.remembered_statuses(), MAX_REMEMBERED_WRITES);
        assert_eq!(
            ctx.remembered_create("uid-pending", "ns/default/orders"),
            Some((at, true))
        );
        // Another object's create, or another topic, never matches.
        assert_eq!(
            ctx.remembered_create("uid-pending", "ns/default/other"),
            None
        );
        assert_eq!(ctx.remembered_create("uid-0", "ns/default/orders"), None);
        // Recorded in a status: forgotten; other objects' memories stay.
        ctx.remember_create("uid-other", "ns/default/t", at, false);
        ctx.create_recorded("uid-pending");
        assert_eq!(
            ctx.remembered_create("uid-pending", "ns/default/orders"),
            None
        );
        assert!(ctx.remembered_create("uid-other", "ns/default/t").is_some());
        // Deleting a KafkaTopic forgets its memories only.
        let mut gone = kt("gone", "uid-other", 0, "t");
        gone.metadata.resource_version = Some("1".into());
        ctx.topic_deleted(&gone);
        assert!(ctx.remembered_create("uid-other", "ns/default/t").is_none());
        assert_eq!(ctx.remembered_statuses(), MAX_REMEMBERED_WRITES);
    }

    #[tokio::test]
    async fn a_full_memory_of_creates_evicts_the_oldest_first() {
        let ctx = offline_context();
        let at = Timestamp::from_second(1_800_000_000).unwrap_or_default();
        for i in 0..MAX_REMEMBERED_CREATES {
            ctx.remember_create(&format!("uid-{i}"), "ns/default/t", at, false);
        }
        ctx.remember_create("uid-new", "ns/default/t", at, true);
        assert!(ctx.remembered_create("uid-0", "ns/default/t").is_none());
        assert!(ctx.remembered_create("uid-1", "ns/default/t").is_some());
        assert!(ctx.remembered_create("uid-new", "ns/default/t").is_some());
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let j = jitter(Duration::from_secs(600));
            assert!(j >= Duration::from_secs(540) && j <= Duration::from_secs(660));
        }
        assert_eq!(jitter(Duration::from_millis(5)), Duration::from_millis(5));
    }

    fn kt(name: &str, uid: &str, created_s: i64, topic: &str) -> KafkaTopic {
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

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}

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

type ByKey = HashMap<IndexKey, std::collections::BTreeSet<Claim>>;
type ByUid = HashMap<String, (IndexKey, Claim)>;

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
        by_key.entry(key.clone()).or_default().insert(claim.clone());
        by_uid.insert(claim.2.clone(), (key, claim));
    }
}

fn index_remove(by_key: &mut ByKey, by_uid: &mut ByUid, uid: &str) {
    if let Some((key, claim)) = by_uid.remove(uid)
        && let Some(set) = by_key.get_mut(&key)
    {
        set.remove(&claim);
        if set.is_empty() {
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
        s.by_key
            .get(&key)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }
}
