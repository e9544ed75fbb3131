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

use super::context::{Context, EventSink, Settings, Stores, TopicIndex, Triggers, queue_key};
use super::registry::ProxyRegistry;
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

/// Drops what no reconcile reads from a cached object.
fn slim<K: kube::Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
    if let Some(a) = obj.meta_mut().annotations.as_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
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
    tokio::spawn(async move { ctx.publish(&proxy, &event).await });
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
        let (ttx, trx) = mpsc::unbounded_channel();
        triggers.topics.insert(ns.clone(), ttx);
        topic_writers.push((tw, trx));
    }
    for ns in &proxy_namespaces {
        let (proxies, pw) = reflector::store::<KafkaRestProxy>();
        let (secrets, sw) = reflector::store::<PartialObjectMeta<Secret>>();
        stores.proxies.push(proxies);
        stores.secrets.push(secrets);
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

    let mut tasks: Vec<Task> = Vec::new();
    for (i, (tw, trx)) in topic_writers.into_iter().enumerate() {
        let ns = namespaces[i].clone();
        let topic_store: Store<KafkaTopic> = stores.topics[i].clone();

        // Topics.
        let index = stores.indexes[i].clone();
        let seen_ctx = ctx.clone();
        let trigger_queue = ctx.metrics.topic_queue.clone();
        let topic_stream = watcher(api::<KafkaTopic>(&client, &ns), watcher::Config::default())
            .default_backoff()
            .inspect(move |ev| {
                if let Ok(ev) = ev {
                    index.observe(ev);
                }
            })
            // The cache keeps what reconciles read: not the managedFields nor kubectl's copy of
            // the whole object, which would double the memory of 10,000 cached topics.
            .modify(slim)
            .reflect(tw)
            // After the cache has the object: this process's own copy of a status it wrote is
            // dropped only once a reconcile can no longer read an older one from the cache.
            .inspect(move |ev| match ev {
                Ok(watcher::Event::Apply(t) | watcher::Event::InitApply(t)) => {
                    seen_ctx.cache_caught_up(t);
                }
                Ok(watcher::Event::Delete(t)) => seen_ctx.topic_deleted(t),
                _ => {}
            })
            .applied_objects()
            .predicate_filter(topic_trigger_hash, Default::default())
            .inspect(move |t| {
                if let Ok(t) = t {
                    trigger_queue.changed(&queue_key(t), Instant::now());
                }
            });
        let topics = Controller::for_stream(topic_stream, topic_store)
            .with_config(
                ControllerConfig::default().concurrency(config.settings.max_concurrent_reconciles),
            )
            .reconcile_on(UnboundedReceiverStream::new(trx))
            .graceful_shutdown_on(shutdown.clone())
            .run(
                |t, c| contain::contained(t.clone(), c.clone(), topic::reconcile(t, c)),
                topic::error_policy,
                ctx.clone(),
            )
            .for_each(|r| {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "topic controller");
                }
                future::ready(())
            });
        // Topics are judged against the proxy and Secret caches: not before those have their
        // first full list (as controllers wait for their informers to sync), or a restart
        // would report every topic whose proxy is not cached yet as ProxyNotFound for a moment.
        let synced = stores.clone();
        let stop = shutdown.clone();
        let topics = async move {
            let caches = async {
                for s in synced.proxies.iter() {
                    let _ = s.wait_until_ready().await;
                }
                for s in synced.secrets.iter() {
                    let _ = s.wait_until_ready().await;
                }
            };
            tokio::select! {
                _ = caches => topics.await,
                _ = stop => {}
            }
        };
        tasks.push(Box::pin(topics));
    }

    for (i, (pw, sw, prx)) in proxy_writers.into_iter().enumerate() {
        let ns = proxy_namespaces[i].clone();
        let proxy_store: Store<KafkaRestProxy> = stores.proxies[i].clone();

        // Proxies: live changes re-trigger their topics.
        let wake_ctx = ctx.clone();
        let mut generations: HashMap<String, Option<i64>> = HashMap::new();
        let mut endpoints: HashMap<String, String> = HashMap::new();
        let proxy_trigger_queue = ctx.metrics.proxy_queue.clone();
        let proxy_stream = watcher(
            api::<KafkaRestProxy>(&client, &ns),
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
        .reflect(pw)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default())
        .inspect(move |p| {
            if let Ok(p) = p {
                proxy_trigger_queue.changed(&queue_key(p), Instant::now());
            }
        });
        let proxies = Controller::for_stream(proxy_stream, proxy_store)
            .with_config(ControllerConfig::default().concurrency(4))
            .reconcile_on(UnboundedReceiverStream::new(prx))
            .graceful_shutdown_on(shutdown.clone())
            .run(
                |p, c| contain::contained(p.clone(), c.clone(), rest_proxy::reconcile(p, c)),
                rest_proxy::error_policy,
                ctx.clone(),
            )
            .for_each(|r| {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "proxy controller");
                }
                future::ready(())
            });
        tasks.push(Box::pin(proxies));

        // Secrets (metadata only).
        let secret_ctx = ctx.clone();
        let secrets = watcher(
            api::<PartialObjectMeta<Secret>>(&client, &ns),
            watcher::Config::default(),
        )
        .default_backoff()
        .inspect(move |ev| {
            let s = match ev {
                Ok(watcher::Event::Apply(s)) | Ok(watcher::Event::Delete(s)) => s,
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
        .reflect(sw)
        .take_until(shutdown.clone())
        .for_each(|_| future::ready(()));
        tasks.push(Box::pin(secrets));
    }

    // The topics-by-condition gauge, from the cache every 10 s.
    let gauge_ctx = ctx.clone();
    let gauge_stop = shutdown.clone();
    tasks.push(Box::pin(async move {
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
            _ = gauge_stop => {}
        }
    }));

    // Ready once every cache has its first full list.
    let ready_stores = stores.clone();
    let ready_stop = shutdown.clone();
    tasks.push(Box::pin(async move {
        let synced = async {
            for s in &ready_stores.topics {
                let _ = s.wait_until_ready().await;
            }
            for s in &ready_stores.proxies {
                let _ = s.wait_until_ready().await;
            }
            for s in &ready_stores.secrets {
                let _ = s.wait_until_ready().await;
            }
            tracing::info!("caches synced; reconciling");
            health.set_ready();
        };
        tokio::select! {
            _ = synced => {}
            _ = ready_stop => {}
        }
    }));

    future::join_all(tasks).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
