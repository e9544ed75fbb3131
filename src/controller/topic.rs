//! The `KafkaTopic` reconcile: resolve references, observe through the shared list and a
//! describe, let [`plan::decide`] choose, act, and write the status only if it changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;

use crate::crd::{KafkaRestProxy, KafkaTopic, KafkaTopicStatus, NamespacesFrom, PartitionDetail};
use crate::proxy::{ProxyError, TopicCreationRecord, TopicPartitions};

use super::context::{Context, jitter};
use super::outcome::Reporter;
use super::plan::{
    self, Blocked, CreateOutcome, Decision, Described, Finish, Observation, PlanInput,
};
use super::registry::ResolveError;
use super::selector;
use super::status::{Error, patch_status_if_changed};

/// What a create's error means for the plan. `Err` when the create could not even be tried.
fn create_outcome(e: &ProxyError, request: &plan::CreateRequest) -> Result<CreateOutcome, Blocked> {
    let refused = |cause| {
        Ok(CreateOutcome::Rejected {
            message: e.to_string(),
            cause,
        })
    };
    match e {
        ProxyError::Rejected { status, body } => refused(plan::classify_refusal(
            *status,
            body,
            &request.topic_name,
            &request.config,
        )),
        ProxyError::NotFound { .. } => refused(plan::Refusal::Unclear),
        // The proxy has no create at all: about the request, not time.
        ProxyError::Unsupported { .. } => refused(plan::Refusal::Request),
        // 429: refused before any work was done; nothing was created.
        ProxyError::Throttled { status: 429, .. } => Err(Blocked::from_proxy(e)),
        // Never sent (a pending Retry-After, no connection, no token): nothing was created.
        ProxyError::NotSent(_) => Err(Blocked::from_proxy(e)),
        ProxyError::Forbidden { .. }
        | ProxyError::Unauthorized { .. }
        | ProxyError::Auth(_)
        | ProxyError::InvalidConfig(_) => Err(Blocked::from_proxy(e)),
        _ => Ok(CreateOutcome::Uncertain {
            message: e.to_string(),
        }),
    }
}

/// Partition details as the status shows them.
pub fn details(tp: &TopicPartitions) -> Vec<PartitionDetail> {
    let mut parts: Vec<PartitionDetail> = tp
        .partitions
        .iter()
        .map(|p| PartitionDetail {
            partition: p.partition_id,
            leader: p.leader.as_ref().map(|l| l.id).filter(|id| *id >= 0),
            replicas: p.replicas.iter().map(|b| b.id).collect(),
            isr: p.isr.iter().map(|b| b.id).collect(),
        })
        .collect();
    parts.sort_by_key(|p| p.partition);
    parts
}

/// Whether topics of `topic_ns` may use `proxy`.
async fn namespace_allowed(
    ctx: &Context,
    proxy: &KafkaRestProxy,
    topic_ns: &str,
) -> Result<bool, Blocked> {
    let proxy_ns = proxy.namespace().unwrap_or_default();
    if proxy_ns == topic_ns {
        return Ok(true);
    }
    let allowed = proxy
        .spec
        .allowed_topic_namespaces
        .clone()
        .unwrap_or_default();
    match allowed.from.unwrap_or(NamespacesFrom::Same) {
        NamespacesFrom::Same => Ok(false),
        NamespacesFrom::All => Ok(true),
        NamespacesFrom::Selector => {
            let Some(sel) = allowed.selector else {
                return Ok(false);
            };
            match ctx.namespace(topic_ns).await {
                Ok(ns) => Ok(selector::matches(&sel, ns.labels())),
                Err(e) => {
                    tracing::debug!(namespace = topic_ns, error = %e, "reading a namespace");
                    Err(Blocked::Transient {
                        message: format!("could not read namespace {topic_ns}"),
                        retry_after: None,
                    })
                }
            }
        }
    }
}

/// The oldest claimant of `topic`'s Kafka topic whose namespace `proxy` allows, as
/// "namespace/name", unless that is `topic` itself.
async fn owner_among_allowed(
    ctx: &Context,
    proxy: &KafkaRestProxy,
    topic: &KafkaTopic,
) -> Result<Option<String>, Blocked> {
    for (_, _, uid, who) in ctx.stores.claims(topic) {
        if Some(uid.as_str()) == topic.metadata.uid.as_deref() {
            return Ok(None);
        }
        let claimant_ns = who.split_once('/').map_or("", |(ns, _)| ns);
        if namespace_allowed(ctx, proxy, claimant_ns).await? {
            return Ok(Some(who));
        }
    }
    Ok(None)
}

/// The topic a remembered create was sent for, "proxy/topic".
fn create_key(desired: &plan::DesiredTopic) -> String {
    format!("{}/{}", desired.proxy, desired.topic_name)
}

/// Everything up to the finish, or why it was blocked.
async fn plan_topic(topic: &KafkaTopic, ctx: &Context, now: Timestamp) -> Result<Finish, Blocked> {
    if topic.is_paused() {
        return Err(Blocked::Paused);
    }
    let desired = plan::validate(topic).map_err(Blocked::InvalidSpec)?;
    let topic_ns = topic.namespace().unwrap_or_default();
    let (proxy_ns, proxy_name) = topic.proxy_key();
    // Right after start, topics are reconciled while the proxy and Secret caches may still be
    // filling: a proxy or Secret missing from them then means nothing yet.
    let filling = || Blocked::Transient {
        message: "the operator's caches are still being filled".into(),
        retry_after: Some(Duration::from_millis(500)),
    };
    let proxy = match ctx.stores.proxy(&proxy_ns, &proxy_name) {
        Some(proxy) => proxy,
        None if !ctx.stores.synced() => return Err(filling()),
        None => {
            return Err(Blocked::ProxyNotFound(format!(
                "KafkaRestProxy {proxy_ns}/{proxy_name} does not exist"
            )));
        }
    };
    if !namespace_allowed(ctx, &proxy, &topic_ns).await? {
        return Err(Blocked::ProxyNotAllowed(format!(
            "KafkaRestProxy {proxy_ns}/{proxy_name} does not allow topics from namespace {topic_ns} (spec.allowedTopicNamespaces)"
        )));
    }
    // The oldest KafkaTopic (creationTimestamp, then uid) naming the same topic owns it —
    // among those whose namespace this proxy allows: a claimant the proxy refuses can neither
    // take the topic nor be named to its owner.
    if let Some(owner) = owner_among_allowed(ctx, &proxy, topic).await? {
        return Err(Blocked::Conflict { owner });
    }
    let entry = ctx
        .registry
        .resolve(&proxy, &ctx.stores.secrets_for(&proxy_ns))
        .await
        .map_err(|e| match e {
            ResolveError::Credentials(_) | ResolveError::SecretNotFound(_)
                if !ctx.stores.synced() =>
            {
                filling()
            }
            e => Blocked::from_resolve(
                e,
                &format!("KafkaRestProxy {proxy_ns}/{proxy_name}"),
                Reporter::Topic,
            ),
        })?;

    let uid = topic.metadata.uid.clone().unwrap_or_default();
    let previous = topic.status.clone().unwrap_or_default();
    // A create this process sent whose recording in status failed.
    let sent_create = ctx
        .memory
        .remembered_create(&uid, &create_key(&desired))
        .map(|(at, uncertain)| plan::SentCreate { at, uncertain });
    // A topic waiting to appear wants a recent list: lists are shared, so this costs at most a
    // few list calls per second for all waiting topics together.
    let waiting = (previous.create_requested_at.is_some() || sent_create.is_some())
        && previous.partitions.is_none();
    let freshness = if waiting {
        ctx.settings.list_freshness.min(Duration::from_millis(500))
    } else {
        ctx.settings.list_freshness
    };
    let names = entry
        .topic_names(freshness)
        .await
        .map_err(|e| Blocked::from_proxy(&e))?;
    let mut obs = Observation {
        listed: names.contains(&desired.topic_name),
        ..Default::default()
    };
    // decide() asks for at most a describe, a create and a describe again.
    let who = format!("{topic_ns}/{}", topic.name_any());
    let last_look = ctx.memory.last_look(&uid);
    // Where a Ready topic inherited from a previous process gets its first describe: a random
    // point within the resync interval, so that a restart costs lists, not a describe storm.
    let first_look_after = last_look.is_none().then(|| {
        use rand::Rng;
        let lifetime = plan::description_lifetime(&ctx.settings.plan);
        let ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=ms))
    });
    for _ in 0..6 {
        // Each decision at the time of its observations: a create is stamped when it was
        // answered, not when the reconcile began (a busy client may queue it for a while).
        let input = PlanInput {
            generation: topic.metadata.generation,
            desired: &desired,
            proxy_endpoint: &entry.endpoint,
            previous: &previous,
            now: Timestamp::now().max(now),
            settings: &ctx.settings.plan,
            last_look: last_look.as_ref(),
            first_look_after,
            sent_create,
            last_refused_create: ctx.memory.last_refusal(&uid, &create_key(&desired)),
        };
        let decision = plan::decide(&input, &obs);
        tracing::debug!(topic = %who, listed = obs.listed, described = ?obs.described.as_ref().map(|d| matches!(d, Described::Found(_))), created = ?obs.created, next = decision_name(&decision), "plan");
        match decision {
            Decision::Finish(f) => return Ok(f),
            Decision::Describe => {
                let described = match entry.client.describe_topic(&desired.topic_name).await {
                    Ok(tp) => Described::Found(details(&tp)),
                    Err(e) if e.is_not_found() => Described::NotFound,
                    Err(e) => return Err(Blocked::from_proxy(&e)),
                };
                obs.described = Some(described);
                obs.described_now = true;
            }
            Decision::Create {
                request,
                recreation,
            } => {
                if recreation {
                    ctx.events
                        .publish(topic, &plan::recreation_event(&desired))
                        .await;
                }
                let record = TopicCreationRecord {
                    partition_count: request.partitions,
                    replication_factor: request.replication_factor,
                    topic_properties: request.config.clone().into_iter().collect(),
                };
                let outcome = match entry
                    .client
                    .create_topic(&request.topic_name, &record)
                    .await
                {
                    Ok(_) => CreateOutcome::Accepted,
                    Err(e) => create_outcome(&e, &request)?,
                };
                if !matches!(outcome, CreateOutcome::Rejected { .. }) {
                    let uncertain = matches!(outcome, CreateOutcome::Uncertain { .. });
                    ctx.memory.remember_create(
                        &uid,
                        &create_key(&desired),
                        Timestamp::now().max(now),
                        uncertain,
                    );
                }
                if matches!(outcome, CreateOutcome::Rejected { .. }) {
                    ctx.memory.remember_refusal(
                        &uid,
                        &create_key(&desired),
                        Timestamp::now().max(now),
                    );
                    obs.described = None;
                }
                obs.created = Some(outcome);
            }
        }
    }
    Err(Blocked::Transient {
        message: "the reconcile did not settle; trying again".into(),
        retry_after: None,
    })
}

fn decision_name(d: &Decision) -> &'static str {
    match d {
        Decision::Describe => "describe",
        Decision::Create {
            recreation: false, ..
        } => "create",
        Decision::Create {
            recreation: true, ..
        } => "recreate",
        Decision::Finish(_) => "finish",
    }
}

/// Reconciles one KafkaTopic.
#[tracing::instrument(skip_all, fields(topic = %format!("{}/{}", topic.namespace().unwrap_or_default(), topic.name_any())))]
pub async fn reconcile(topic: Arc<KafkaTopic>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let _running = ctx.reconcile_started(&*topic);
    let now = Timestamp::now();
    // The cache may not show this process's own last status write yet: plan from the newer.
    let fresher = ctx.fresher_status(&topic);
    let topic: Arc<KafkaTopic> = if topic.status.as_ref() == Some(&fresher) {
        topic
    } else {
        let mut view = (*topic).clone();
        view.status = Some(fresher);
        Arc::new(view)
    };
    let (finish, failure) = match plan_topic(&topic, &ctx, now).await {
        Ok(f) => {
            ctx.succeeded(&*topic);
            (f, None)
        }
        Err(blocked) => {
            let attempt = if matches!(blocked, Blocked::Paused) {
                0
            } else {
                ctx.failed(&*topic)
            };
            let f = plan::finish_blocked(&topic, &blocked, now, &ctx.settings.plan, attempt);
            let reason = blocked.reason(Reporter::Topic);
            tracing::debug!(
                topic = %format!("{}/{}", topic.namespace().unwrap_or_default(), topic.name_any()),
                reason,
                attempt,
                "blocked"
            );
            (f, Some(reason))
        }
    };
    let result = write(&topic, &ctx, &finish).await;
    ctx.metrics.reconciled(
        "KafkaTopic",
        started.elapsed(),
        failure.or(result.as_ref().err().map(|_| "StatusWriteFailed")),
    );
    result?;
    for event in &finish.events {
        ctx.events.publish(&*topic, event).await;
    }
    Ok(ctx.requeue(&*topic, jitter(finish.requeue_after)))
}

async fn write(topic: &KafkaTopic, ctx: &Context, finish: &Finish) -> Result<(), Error> {
    let api: Api<KafkaTopic> =
        Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    let name = topic.name_any();
    let target = ctx.status_target(&api, &name, "KafkaTopic");
    // `topic` carries what the server has as far as this process knows (see `reconcile`).
    let old: KafkaTopicStatus = topic.status.clone().unwrap_or_default();
    if let Some(stored) = patch_status_if_changed(&target, Some(&old), &finish.status).await? {
        ctx.memory.remember_status(&stored);
    }
    if let Some(uid) = topic.metadata.uid.as_deref() {
        // The status on the server records the create (or the topic is there): the memory of
        // the create is no longer needed.
        if finish.status.create_requested_at.is_some() || finish.status.partitions.is_some() {
            ctx.memory.create_recorded(uid);
        }
        ctx.memory.update_look(uid, &finish.look);
    }
    Ok(())
}

/// After a failed status write: back off per object.
pub fn error_policy(topic: Arc<KafkaTopic>, error: &Error, ctx: Arc<Context>) -> Action {
    let attempt = ctx.failed(&*topic);
    tracing::warn!(
        topic = %format!("{}/{}", topic.namespace().unwrap_or_default(), topic.name_any()),
        %error,
        attempt,
        "reconcile failed"
    );
    ctx.requeue(
        &*topic,
        jitter(plan::exponential_backoff(attempt).max(Duration::from_secs(1))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> plan::CreateRequest {
        plan::CreateRequest {
            topic_name: "orders".into(),
            partitions: None,
            replication_factor: None,
            config: serde_json::Map::new(),
        }
    }

    #[test]
    fn a_create_refused_before_it_was_sent_is_not_uncertain() {
        // The Retry-After gate answered for the proxy (after an earlier 503): nothing left.
        let gated = ProxyError::NotSent(Box::new(ProxyError::Throttled {
            status: 503,
            retry_after: Some(Duration::from_secs(40)),
        }));
        match create_outcome(&gated, &request()) {
            Err(Blocked::Transient { retry_after, .. }) => {
                assert_eq!(retry_after, Some(Duration::from_secs(40)));
            }
            other => panic!("expected a plain retry, got {other:?}"),
        }
        // No connection at all.
        let refused = ProxyError::NotSent(Box::new(ProxyError::Transport("refused".into())));
        assert!(matches!(
            create_outcome(&refused, &request()),
            Err(Blocked::Transient { .. })
        ));
        // The same 503 answered by the proxy after the create was sent: it may have happened.
        let answered = ProxyError::Throttled {
            status: 503,
            retry_after: None,
        };
        assert!(matches!(
            create_outcome(&answered, &request()),
            Ok(CreateOutcome::Uncertain { .. })
        ));
    }
}
