//! Wiring: watches, caches and the two controllers, once per watched namespace (or once for
//! all namespaces).
//!
//! - KafkaTopics trigger a reconcile when their generation or the paused annotation changes;
//!   status-only changes (the operator's own writes) do not.
//! - A KafkaRestProxy that is created, changed or deleted re-triggers its topics.
//! - A Secret that changes (metadata-only watch: values are read only when a client is built)
//!   re-triggers the proxies that use it and their topics.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, future};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::crd::{KafkaRestProxy, KafkaTopic, PAUSED_ANNOTATION};
use crate::metrics::{Metrics, MetricsObserver};
use crate::server::Health;

use super::context::{Context, Settings};
use super::events::EventSink;
use super::ownership::TopicIndex;
use super::registry::ProxyRegistry;
use super::stores::{Stores, Synced, Triggers, queue_key};
use super::{contain, rest_proxy, topic};

/// How the controllers run.
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    /// Namespaces whose KafkaTopics are watched; empty means all.
    pub namespaces: Vec<String>,
    /// Namespaces whose KafkaRestProxies are served and Secrets watched; empty means the same
    /// as `namespaces`.
    pub proxy_namespaces: Vec<String>,
    pub settings: Settings,
    /// Reported in Events as the reporting instance (the pod name).
    pub instance: Option<String>,
}

/// An Api over one namespace, or all namespaces when `ns` is empty.
pub(crate) fn api<K>(client: &Client, ns: &str) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    if ns.is_empty() {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), ns)
    }
}

/// What re-triggers a topic: its generation and whether it is paused.
fn topic_trigger_hash(t: &KafkaTopic) -> Option<u64> {
    let mut h = DefaultHasher::new();
    t.metadata.generation.hash(&mut h);
    t.is_paused().hash(&mut h);
    t.annotations().get(PAUSED_ANNOTATION).hash(&mut h);
    Some(h.finish())
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What follows a KafkaTopic watch event once the cache holds it. This process's own copy of a
/// status it wrote is dropped only once a reconcile can no longer read an older one from the
/// cache; a deletion forgets everything remembered about the object and wakes the claimants
/// of its Kafka topic; the end of the first list marks the cache synced.
fn topic_cached(
    ctx: &Context,
    synced: &Synced,
    ev: &Result<watcher::Event<KafkaTopic>, watcher::Error>,
) {
    match ev {
        Ok(watcher::Event::Apply(t) | watcher::Event::InitApply(t)) => {
            ctx.memory.cache_caught_up(t);
        }
        Ok(watcher::Event::Delete(t)) => ctx.topic_deleted(t),
        _ => mark_synced(synced, ev),
    }
}

/// Sets `synced` once a watch's reflector has applied its first full list; to be called on
/// every event after `reflect`.
fn mark_synced<K, E>(synced: &Synced, ev: &Result<watcher::Event<K>, E>) {
    if let Ok(watcher::Event::InitDone) = ev {
        synced.set();
    }
}

/// Keeps, of a KafkaTopic's metadata, what a reconcile reads: its identity and versions
/// (name, namespace, uid, resourceVersion, generation, creationTimestamp — the owner of a topic
/// is the oldest claimant), a deletion in progress, and the paused annotation. Labels, the other
/// annotations (kubectl's copy of the whole object, GitOps tools' tracking ids), managedFields
/// and owner references are for other readers; 10,000 cached topics would hold them all.
/// Spec and status stay whole: the plan reads both, and the status write diffs against it.
fn slim_topic(t: &mut KafkaTopic) {
    let m = &mut t.metadata;
    let paused = m
        .annotations
        .as_mut()
        .and_then(|a| a.remove_entry(PAUSED_ANNOTATION));
    m.annotations = paused.map(|(k, v)| [(k, v)].into());
    m.labels = None;
    m.managed_fields = None;
    m.owner_references = None;
}

/// Keeps what the Secret watch needs to notice a change — and nothing of the Secret's other
/// metadata: annotations such as kubectl's last-applied-configuration hold the Secret's data.
fn secret_identity(s: &mut PartialObjectMeta<Secret>) {
    let m = &s.metadata;
    s.metadata = kube::api::ObjectMeta {
        name: m.name.clone(),
        namespace: m.namespace.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        ..Default::default()
    };
}

/// The KafkaRestProxy now points at another cluster: one Event on it. Its topics, re-triggered
/// with every proxy change, are reconciled against the new cluster (see `plan::cluster_changed`).
fn announce_cluster_change(ctx: &Arc<Context>, proxy: &KafkaRestProxy, before: &str, after: &str) {
    let topics = ctx
        .stores
        .topics_of_proxy(&proxy.namespace().unwrap_or_default(), &proxy.name_any())
        .len();
    tracing::info!(proxy = %queue_key(proxy), %before, %after, topics, "the proxy's endpoint changed: its topics move to the new cluster");
    let event = super::plan::EventSpec {
        warning: false,
        reason: "ClusterChanged",
        note: format!(
            "the endpoint changed from {before} to {after}: its {topics} KafkaTopics are reconciled against the new cluster (existing topics adopted, missing ones created)"
        ),
    };
    let ctx = ctx.clone();
    let proxy = proxy.clone();
    tokio::spawn(async move { ctx.events.publish(&proxy, &event).await });
}

/// Logs what a controller's stream yields besides reconciled objects. A failed reconcile has
/// been logged at warn by its error policy, and a trigger for an object that was deleted
/// meanwhile is routine: both at debug. Anything else — the watch failing, the scheduler
/// failing — is worth a look: warn.
fn log_controller_error<E1, E2>(
    kind: &'static str,
    error: &kube::runtime::controller::Error<E1, E2>,
) where
    E1: std::error::Error + 'static,
    E2: std::error::Error + 'static,
{
    use kube::runtime::controller::Error;
    match error {
        Error::ReconcilerFailed(..) | Error::ObjectNotFound(_) => {
            tracing::debug!(kind, %error, "controller");
        }
        _ => tracing::warn!(kind, %error, "controller stream error"),
    }
}

/// Everything a watch of one namespace needs.
struct Wiring<S> {
    client: Client,
    ctx: Arc<Context>,
    shutdown: S,
}

/// The KafkaTopic watch and controller of one namespace. Topics are judged against the proxy
/// and Secret caches: the controller starts once those have their first full list (as
/// controllers wait for their informers to sync), or a restart would report every topic whose
/// proxy is not cached yet as ProxyNotFound for a moment.
fn topic_controller<S>(
    w: &Wiring<S>,
    ns: &str,
    store: Store<KafkaTopic>,
    writer: reflector::store::Writer<KafkaTopic>,
    index: Arc<TopicIndex>,
    synced: Synced,
    triggered: mpsc::UnboundedReceiver<reflector::ObjectRef<KafkaTopic>>,
) -> Task
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let seen_ctx = w.ctx.clone();
    let trigger_queue = w.ctx.metrics.topic_queue.clone();
    let topic_stream = watcher(api::<KafkaTopic>(&w.client, ns), watcher::Config::default())
        .default_backoff()
        .inspect(move |ev| {
            if let Ok(ev) = ev {
                index.observe(ev);
            }
        })
        // The cache keeps only the metadata reconciles read (see `slim_topic`).
        .modify(slim_topic)
        .reflect(writer)
        .inspect(move |ev| topic_cached(&seen_ctx, &synced, ev))
        .applied_objects()
        .predicate_filter(topic_trigger_hash, Default::default())
        .inspect(move |t| {
            if let Ok(t) = t {
                trigger_queue.changed(&queue_key(t), Instant::now());
            }
        });
    let topics = Controller::for_stream(topic_stream, store)
        .with_config(
            ControllerConfig::default().concurrency(w.ctx.settings.max_concurrent_reconciles),
        )
        .reconcile_on(UnboundedReceiverStream::new(triggered))
        .graceful_shutdown_on(w.shutdown.clone())
        .run(
            |t, c| contain::contained(t.clone(), c.clone(), topic::reconcile(t, c)),
            topic::error_policy,
            w.ctx.clone(),
        )
        .for_each(|r| {
            if let Err(e) = r {
                log_controller_error("KafkaTopic", &e);
            }
            future::ready(())
        });
    let caches = w.ctx.stores.clone();
    let stop = w.shutdown.clone();
    Box::pin(async move {
        tokio::select! {
            () = caches.proxies_and_secrets_synced() => topics.await,
            _ = stop => {}
        }
    })
}

/// The KafkaRestProxy watch and controller of one namespace. A proxy that is created, changed
/// or deleted re-triggers its topics; a changed endpoint is announced.
fn proxy_controller<S>(
    w: &Wiring<S>,
    ns: &str,
    store: Store<KafkaRestProxy>,
    writer: reflector::store::Writer<KafkaRestProxy>,
    synced: Synced,
    triggered: mpsc::UnboundedReceiver<reflector::ObjectRef<KafkaRestProxy>>,
) -> Task
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let wake_ctx = w.ctx.clone();
    let mut generations: HashMap<String, Option<i64>> = HashMap::new();
    let mut endpoints: HashMap<String, String> = HashMap::new();
    let proxy_trigger_queue = w.ctx.metrics.proxy_queue.clone();
    let proxy_stream = watcher(
        api::<KafkaRestProxy>(&w.client, ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .inspect(move |ev| {
        let (p, live) = match ev {
            Ok(watcher::Event::InitApply(p)) => (p, false),
            Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::Delete(p)) => (p, true),
            _ => return,
        };
        let key = format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any());
        let deleted = matches!(ev, Ok(watcher::Event::Delete(_)));
        let changed = generations.get(&key) != Some(&p.metadata.generation);
        if deleted {
            generations.remove(&key);
            endpoints.remove(&key);
            wake_ctx.registry.forget(&key);
            wake_ctx.metrics.proxy_queue.forget(&key);
        } else {
            let endpoint = p.spec.endpoint.clone();
            if let Some(before) = endpoints.insert(key.clone(), endpoint.clone())
                && live
                && before != endpoint
            {
                announce_cluster_change(&wake_ctx, p, &before, &endpoint);
            }
            generations.insert(key, p.metadata.generation);
        }
        if live && (changed || deleted) {
            let ns = p.namespace().unwrap_or_default();
            for t in wake_ctx.stores.topics_of_proxy(&ns, &p.name_any()) {
                wake_ctx.triggers.topic(&t);
            }
        }
    })
    .reflect(writer)
    .inspect(move |ev| mark_synced(&synced, ev))
    .applied_objects()
    .predicate_filter(predicates::generation, Default::default())
    .inspect(move |p| {
        if let Ok(p) = p {
            proxy_trigger_queue.changed(&queue_key(p), Instant::now());
        }
    });
    Box::pin(
        Controller::for_stream(proxy_stream, store)
            .with_config(ControllerConfig::default().concurrency(4))
            .reconcile_on(UnboundedReceiverStream::new(triggered))
            .graceful_shutdown_on(w.shutdown.clone())
            .run(
                |p, c| contain::contained(p.clone(), c.clone(), rest_proxy::reconcile(p, c)),
                rest_proxy::error_policy,
                w.ctx.clone(),
            )
            .for_each(|r| {
                if let Err(e) = r {
                    log_controller_error("KafkaRestProxy", &e);
                }
                future::ready(())
            }),
    )
}

/// The metadata-only Secret watch of one namespace: a changed Secret re-triggers the proxies
/// that use it and their topics.
fn secret_watch<S>(
    w: &Wiring<S>,
    ns: &str,
    writer: reflector::store::Writer<PartialObjectMeta<Secret>>,
    synced: Synced,
) -> Task
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let secret_ctx = w.ctx.clone();
    Box::pin(
        watcher(
            api::<PartialObjectMeta<Secret>>(&w.client, ns),
            watcher::Config::default(),
        )
        .default_backoff()
        .inspect(move |ev| {
            let s = match ev {
                Ok(watcher::Event::Apply(s)) | Ok(watcher::Event::Delete(s)) => s,
                Err(error) => {
                    tracing::warn!(%error, "Secret watch error");
                    return;
                }
                _ => return,
            };
            let ns = s.namespace().unwrap_or_default();
            let name = s.name_any();
            for store in &secret_ctx.stores.proxies {
                for p in store.state_filter(|p| {
                    p.namespace().as_deref() == Some(ns.as_str())
                        && (p.spec.credentials.secret_name() == Some(name.as_str())
                            || p.spec
                                .ca_bundle_secret_ref
                                .as_ref()
                                .is_some_and(|r| r.name == name))
                }) {
                    secret_ctx.triggers.proxy(&p);
                    for t in secret_ctx.stores.topics_of_proxy(&ns, &p.name_any()) {
                        secret_ctx.triggers.topic(&t);
                    }
                }
            }
        })
        .modify(secret_identity)
        .reflect(writer)
        .inspect(move |ev| mark_synced(&synced, ev))
        .take_until(w.shutdown.clone())
        .for_each(|_| future::ready(())),
    )
}

/// The topics-by-condition gauge, from the cache every 10 s.
fn topic_gauge<S>(w: &Wiring<S>) -> Task
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let gauge_ctx = w.ctx.clone();
    let stop = w.shutdown.clone();
    Box::pin(async move {
        let refresh = async {
            loop {
                let mut counts = crate::metrics::TopicCounts::new();
                for store in &gauge_ctx.stores.topics {
                    for t in store.state() {
                        let (ns, name) = t.proxy_key();
                        let proxy = format!("{ns}/{name}");
                        for c in t.status.iter().flat_map(|s| s.conditions.iter()) {
                            *counts
                                .entry((proxy.clone(), c.type_.clone(), c.status.clone()))
                                .or_insert(0i64) += 1;
                        }
                    }
                }
                gauge_ctx.metrics.set_topic_counts(&counts);
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            }
        };
        tokio::select! {
            _ = refresh => {}
            _ = stop => {}
        }
    })
}

/// Turns `health` ready once every cache has its first full list.
fn readiness<S>(w: &Wiring<S>, health: Health) -> Task
where
    S: Future<Output = ()> + Send + Sync + Clone + 'static,
{
    let stores = w.ctx.stores.clone();
    let stop = w.shutdown.clone();
    Box::pin(async move {
        let synced = async {
            stores.all_synced().await;
            tracing::info!("caches synced; reconciling");
            health.set_ready();
        };
        tokio::select! {
            _ = synced => {}
            _ = stop => {}
        }
    })
}

/// Runs the controllers until `shutdown` resolves. `health` turns ready once every cache has
/// synced.
pub async fn run(
    client: Client,
    config: RunConfig,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + Clone + 'static,
    health: Health,
) -> anyhow::Result<()> {
    let namespaces = if config.namespaces.is_empty() {
        vec![String::new()]
    } else {
        config.namespaces.clone()
    };
    let proxy_namespaces = if config.proxy_namespaces.is_empty() {
        namespaces.clone()
    } else {
        config.proxy_namespaces.clone()
    };

    let mut stores = Stores {
        namespaces: namespaces.clone(),
        proxy_namespaces: proxy_namespaces.clone(),
        ..Default::default()
    };
    let mut triggers = Triggers {
        topic_queue: metrics.topic_queue.clone(),
        proxy_queue: metrics.proxy_queue.clone(),
        ..Default::default()
    };
    let mut topic_writers = Vec::new();
    let mut proxy_writers = Vec::new();
    for ns in &namespaces {
        let (topics, tw) = reflector::store::<KafkaTopic>();
        stores.topics.push(topics);
        stores.indexes.push(Arc::new(TopicIndex::default()));
        stores.topics_synced.push(Synced::default());
        let (ttx, trx) = mpsc::unbounded_channel();
        triggers.topics.insert(ns.clone(), ttx);
        topic_writers.push((tw, trx));
    }
    for ns in &proxy_namespaces {
        let (proxies, pw) = reflector::store::<KafkaRestProxy>();
        let (secrets, sw) = reflector::store::<PartialObjectMeta<Secret>>();
        stores.proxies.push(proxies);
        stores.secrets.push(secrets);
        stores.proxies_synced.push(Synced::default());
        stores.secrets_synced.push(Synced::default());
        let (ptx, prx) = mpsc::unbounded_channel();
        triggers.proxies.insert(ns.clone(), ptx);
        proxy_writers.push((pw, sw, prx));
    }

    let reporter = Reporter {
        controller: crate::crd::FIELD_MANAGER.to_string(),
        instance: config.instance.clone(),
    };
    let registry = ProxyRegistry::new(client.clone(), Arc::new(MetricsObserver(metrics.clone())))
        .with_allowlist(config.settings.allowlist.clone());
    let ctx = Arc::new(Context::new(
        client.clone(),
        stores.clone(),
        triggers,
        registry,
        EventSink::new(client.clone(), reporter),
        metrics,
        config.settings.clone(),
    ));
    let wiring = Wiring {
        client,
        ctx,
        shutdown,
    };

    let mut tasks: Vec<Task> = Vec::new();
    for (i, (tw, trx)) in topic_writers.into_iter().enumerate() {
        tasks.push(topic_controller(
            &wiring,
            &namespaces[i],
            stores.topics[i].clone(),
            tw,
            stores.indexes[i].clone(),
            stores.topics_synced[i].clone(),
            trx,
        ));
    }
    for (i, (pw, sw, prx)) in proxy_writers.into_iter().enumerate() {
        let ns = &proxy_namespaces[i];
        tasks.push(proxy_controller(
            &wiring,
            ns,
            stores.proxies[i].clone(),
            pw,
            stores.proxies_synced[i].clone(),
            prx,
        ));
        tasks.push(secret_watch(
            &wiring,
            ns,
            sw,
            stores.secrets_synced[i].clone(),
        ));
    }
    tasks.push(topic_gauge(&wiring));
    tasks.push(readiness(&wiring, health));
    run_on_workers(tasks).await;
    Ok(())
}

/// Runs every task on the runtime's worker threads and waits for all of them. Awaited in place
/// they would run wherever this future is polled — under `#[tokio::main]`, the main thread,
/// outside the worker pool — and every answer a worker read for a watch or a controller would
/// have to wake that thread: at 10,000 topics a fifth of the operator's CPU went to those
/// wake-ups. (The tasks wait for the caches through [`Synced`], which wakes every waiter.)
/// Dropping the returned future aborts the tasks (a lost Lease must stop every reconcile); a
/// task that panicked panics here, as it would have in place.
async fn run_on_workers(tasks: Vec<Task>) {
    let mut set = tokio::task::JoinSet::new();
    for task in tasks {
        set.spawn(task);
    }
    while let Some(done) = set.join_next().await {
        if let Err(e) = done
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache counts as synced once its reflector has applied the first full list — the
    /// `InitDone` that ends it — and not on the list's start or its objects.
    #[test]
    fn a_cache_is_marked_synced_at_the_end_of_its_first_list() {
        let synced = Synced::default();
        let t: KafkaTopic = serde_json::from_value(serde_json::json!({
            "apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic",
            "metadata": {"name": "t", "namespace": "ns"}, "spec": {}
        }))
        .expect("topic");
        let events: Vec<Result<watcher::Event<KafkaTopic>, watcher::Error>> = vec![
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(t.clone())),
            Ok(watcher::Event::Apply(t.clone())),
            Ok(watcher::Event::Delete(t)),
            Err(watcher::Error::NoResourceVersion),
        ];
        for ev in &events {
            mark_synced(&synced, ev);
            assert!(!synced.is_set(), "marked synced on {ev:?}");
        }
        mark_synced(
            &synced,
            &Ok::<_, watcher::Error>(watcher::Event::<KafkaTopic>::InitDone),
        );
        assert!(synced.is_set());
    }

    /// After the cache has a topic: an event showing this process's own write drops its
    /// remembered copy, a deletion forgets the object's failures and memories, and only the
    /// end of the first list marks the cache synced.
    #[tokio::test]
    async fn a_cached_topic_event_updates_the_memories_and_the_flag() {
        let ctx = Context::offline(Stores::default());
        let synced = Synced::default();
        let at = |rv: &str| -> KafkaTopic {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic",
                "metadata": {"name": "t", "namespace": "ns", "uid": "u1", "resourceVersion": rv},
                "spec": {}, "status": {"observedGeneration": 1}
            }))
            .expect("topic")
        };
        let ev = |e| Ok::<_, watcher::Error>(e);
        ctx.memory.remember_status(&at("10"));
        topic_cached(&ctx, &synced, &ev(watcher::Event::Apply(at("9"))));
        assert_eq!(ctx.memory.remembered_statuses(), 1, "an older version");
        topic_cached(&ctx, &synced, &ev(watcher::Event::InitApply(at("10"))));
        assert_eq!(
            ctx.memory.remembered_statuses(),
            0,
            "the write is in the cache"
        );

        ctx.memory.remember_status(&at("12"));
        assert_eq!(ctx.failed(&at("12")), 1);
        topic_cached(&ctx, &synced, &ev(watcher::Event::Delete(at("11"))));
        assert_eq!(
            ctx.memory.remembered_statuses(),
            0,
            "forgotten with the object"
        );
        assert_eq!(ctx.failed(&at("12")), 1, "its failures were forgotten too");
        assert!(!synced.is_set());
        topic_cached(&ctx, &synced, &ev(watcher::Event::InitDone));
        assert!(synced.is_set());
    }

    /// A panic in one of the tasks is not swallowed by running them on the workers.
    #[tokio::test]
    async fn a_task_that_panics_panics_the_run() {
        let tasks: Vec<Task> = vec![
            Box::pin(async {}),
            Box::pin(async { panic!("a watch task failed") }),
        ];
        let run = tokio::spawn(run_on_workers(tasks));
        let e = run.await.expect_err("the panic came through");
        assert!(e.is_panic());
    }

    /// Dropping the run (a lost Lease) stops every task it started.
    #[tokio::test]
    async fn dropping_the_run_aborts_its_tasks() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let task: Task = Box::pin(async move {
            loop {
                let _ = tx.send(());
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        let run = tokio::spawn(run_on_workers(vec![task]));
        rx.recv().await.expect("the task runs");
        run.abort();
        let _ = run.await;
        // Aborted: its sender is dropped and the channel closes.
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while rx.recv().await.is_some() {}
        })
        .await
        .expect("the task still runs after the run was dropped");
    }

    #[test]
    fn the_secret_cache_keeps_only_identity_and_version() {
        let mut s: PartialObjectMeta<Secret> = serde_json::from_value(serde_json::json!({
            "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": {
                "name": "sp", "namespace": "kafka", "uid": "u1", "resourceVersion": "42",
                "labels": {"team": "a"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                    "{\"stringData\":{\"clientSecret\":\"s3cret\"}}"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "o"}]
            }
        }))
        .expect("metadata");
        secret_identity(&mut s);
        let kept = serde_json::to_value(&s.metadata).expect("json");
        assert_eq!(
            kept,
            serde_json::json!({"name": "sp", "namespace": "kafka", "uid": "u1",
                               "resourceVersion": "42"})
        );
    }

    /// What a GitOps tool and kubectl put on a KafkaTopic stays out of the cache; what the
    /// reconcile reads stays in.
    #[test]
    fn the_topic_cache_keeps_spec_status_identity_and_the_paused_annotation() {
        let full = |paused: Option<&str>| {
            let mut annotations = serde_json::json!({
                "kubectl.kubernetes.io/last-applied-configuration": "{\"spec\":{}}",
                "argocd.argoproj.io/tracking-id": "app:kafka.hdinsight.dev/KafkaTopic:ns/orders"
            });
            if let Some(p) = paused {
                annotations[PAUSED_ANNOTATION] = p.into();
            }
            serde_json::json!({
                "apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic",
                "metadata": {
                    "name": "orders", "namespace": "ns", "uid": "u1", "resourceVersion": "42",
                    "generation": 3, "creationTimestamp": "2026-01-02T03:04:05Z",
                    "deletionTimestamp": "2026-01-02T04:04:05Z", "finalizers": ["x/y"],
                    "labels": {"app.kubernetes.io/instance": "payments"},
                    "annotations": annotations,
                    "managedFields": [{"manager": "argocd-controller", "operation": "Apply"}],
                    "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "o"}]
                },
                "spec": {"partitions": 3, "config": {"retention.ms": "1000"}},
                "status": {"observedGeneration": 3, "partitions": 3,
                           "conditions": [{"type": "Ready", "status": "True", "reason": "Created",
                                           "message": "m", "lastTransitionTime": "2026-01-02T03:04:06Z"}]}
            })
        };
        let mut t: KafkaTopic = serde_json::from_value(full(Some("true"))).expect("topic");
        slim_topic(&mut t);
        let kept = serde_json::to_value(&t).expect("json");
        let mut expected = full(Some("true"));
        expected["metadata"] = serde_json::json!({
            "name": "orders", "namespace": "ns", "uid": "u1", "resourceVersion": "42",
            "generation": 3, "creationTimestamp": "2026-01-02T03:04:05Z",
            "deletionTimestamp": "2026-01-02T04:04:05Z", "finalizers": ["x/y"],
            "annotations": {(PAUSED_ANNOTATION): "true"}
        });
        assert_eq!(kept, expected);
        assert!(t.is_paused());

        let mut t: KafkaTopic = serde_json::from_value(full(None)).expect("topic");
        slim_topic(&mut t);
        assert_eq!(t.metadata.annotations, None);
        assert_eq!(t.metadata.labels, None);
        assert!(!t.is_paused());
    }
}
