//! The `KafkaTopic` reconcile: resolve references, observe through the shared list and a
//! describe, let [`plan::decide`] choose, act, and write the status only if it changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;

use crate::crd::{
    KafkaRestProxy, KafkaTopic, KafkaTopicStatus, NamespacesFrom, PartitionDetail, READY,
};
use crate::proxy::{ProxyError, TopicCreationRecord, TopicPartitions};

use super::context::{Context, jitter};
use super::plan::{
    self, Blocked, CreateOutcome, Decision, Described, Finish, Observation, PlanInput,
};
use super::registry::ResolveError;
use super::selector;
use super::status::patch_status_if_changed;

/// A reconcile that could not finish: only Kubernetes writes fail this way; everything the
/// proxy does wrong ends in a status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing status: {0}")]
    Kube(#[from] kube::Error),
}

/// How a proxy failure blocks a reconcile.
pub fn blocked_from(e: &ProxyError) -> Blocked {
    use crate::auth::AuthError;
    match e {
        ProxyError::Forbidden { .. } => Blocked::Forbidden(e.to_string()),
        ProxyError::Unauthorized { .. } => Blocked::AuthenticationFailed(e.to_string()),
        ProxyError::Auth(a) => match a {
            AuthError::InvalidConfig(_) => Blocked::CredentialsInvalid(a.to_string()),
            a if a.is_transient() => Blocked::Transient {
                message: format!("token request failed: {a}"),
                retry_after: a.retry_after(),
            },
            a => Blocked::AuthenticationFailed(a.to_string()),
        },
        ProxyError::InvalidConfig(m) => Blocked::CredentialsInvalid(m.clone()),
        other => Blocked::Transient {
            message: other.to_string(),
            retry_after: other.retry_after(),
        },
    }
}

/// How an allowlist refusal blocks a reconcile.
pub fn blocked_not_allowed(n: crate::allowlist::NotAllowed) -> Blocked {
    match n {
        crate::allowlist::NotAllowed::Endpoint(m) => Blocked::EndpointNotAllowed(m),
        crate::allowlist::NotAllowed::Scope(m) => Blocked::ScopeNotAllowed(m),
    }
}

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
        ProxyError::Throttled { status: 429, .. } => Err(blocked_from(e)),
        ProxyError::Forbidden { .. }
        | ProxyError::Unauthorized { .. }
        | ProxyError::Auth(_)
        | ProxyError::InvalidConfig(_) => Err(blocked_from(e)),
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
                Err(e) => Err(Blocked::Transient {
                    message: format!("could not read namespace {topic_ns}: {e}"),
                    retry_after: None,
                }),
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

/// Identifies a create sent for this object (not another object naming the same topic).
fn create_key(topic: &KafkaTopic, desired: &plan::DesiredTopic) -> String {
    format!(
        "{}/{}/{}",
        topic.metadata.uid.as_deref().unwrap_or_default(),
        desired.proxy,
        desired.topic_name
    )
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
            ResolveError::SecretNotFound(m) => Blocked::SecretNotFound(m),
            ResolveError::Credentials(m) => Blocked::CredentialsInvalid(m),
            ResolveError::InvalidSpec(m) => {
                Blocked::InvalidSpec(format!("KafkaRestProxy {proxy_ns}/{proxy_name}: {m}"))
            }
            ResolveError::NotAllowed(n) => blocked_not_allowed(n),
            e @ ResolveError::Kube(..) => Blocked::Transient {
                message: e.to_string(),
                retry_after: None,
            },
        })?;

    let mut previous = topic.status.clone().unwrap_or_default();
    if previous.create_requested_at.is_none()
        && previous.partitions.is_none()
        && let Some((at, uncertain)) = ctx.remembered_create(&create_key(topic, &desired))
    {
        // The create was sent but recording it failed: do not send it again before its time.
        // One without a clear answer stays uncertain, so that it is retried if nothing appears.
        previous.create_requested_at = Some(Time(at));
        if uncertain {
            previous.conditions.retain(|c| c.type_ != READY);
            previous.conditions.push(Condition {
                type_: READY.into(),
                status: "False".into(),
                reason: plan::reason::CREATE_UNCERTAIN.into(),
                message: "the last create got no clear answer".into(),
                last_transition_time: Time(at),
                observed_generation: topic.metadata.generation,
            });
        }
    }
    // A topic waiting to appear wants a recent list: lists are shared, so this costs at most a
    // few list calls per second for all waiting topics together.
    let waiting = previous.create_requested_at.is_some() && previous.partitions.is_none();
    let freshness = if waiting {
        ctx.settings.list_freshness.min(Duration::from_millis(500))
    } else {
        ctx.settings.list_freshness
    };
    let names = entry
        .topic_names(freshness)
        .await
        .map_err(|e| blocked_from(&e))?;
    let mut obs = Observation {
        listed: names.contains(&desired.topic_name),
        ..Default::default()
    };
    // decide() asks for at most a describe, a create and a describe again.
    let who = format!("{topic_ns}/{}", topic.name_any());
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
        };
        let decision = plan::decide(&input, &obs);
        tracing::debug!(topic = %who, listed = obs.listed, described = ?obs.described.as_ref().map(|d| matches!(d, Described::Found(_))), created = ?obs.created, next = decision_name(&decision), "plan");
        match decision {
            Decision::Finish(f) => return Ok(f),
            Decision::Describe => {
                let described = match entry.client.describe_topic(&desired.topic_name).await {
                    Ok(tp) => Described::Found(details(&tp)),
                    Err(e) if e.is_not_found() => Described::NotFound,
                    Err(e) => return Err(blocked_from(&e)),
                };
                obs.described = Some(described);
                obs.described_now = true;
            }
            Decision::Create {
                request,
                recreation,
            } => {
                if recreation {
                    ctx.publish(topic, &plan::recreation_event(&desired)).await;
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
                    ctx.remember_create(
                        &create_key(topic, &desired),
                        Timestamp::now().max(now),
                        uncertain,
                    );
                }
                if matches!(outcome, CreateOutcome::Rejected { .. }) {
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
            let mut f = plan::finish_blocked(&topic, &blocked, now, &ctx.settings.plan, attempt);
            if let Blocked::Transient {
                retry_after: Some(r),
                ..
            } = &blocked
            {
                f.requeue_after = f.requeue_after.max(*r);
            }
            tracing::debug!(
                topic = %format!("{}/{}", topic.namespace().unwrap_or_default(), topic.name_any()),
                reason = blocked_reason(&blocked),
                attempt,
                "blocked"
            );
            (f, Some(blocked_reason(&blocked)))
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
        ctx.publish(&*topic, event).await;
    }
    Ok(ctx.requeue(&*topic, jitter(finish.requeue_after)))
}

fn blocked_reason(b: &Blocked) -> &'static str {
    match b {
        Blocked::Paused => "Paused",
        Blocked::InvalidSpec(_) => plan::reason::INVALID_SPEC,
        Blocked::ProxyNotFound(_) => plan::reason::PROXY_NOT_FOUND,
        Blocked::ProxyNotAllowed(_) => plan::reason::PROXY_NOT_ALLOWED,
        Blocked::EndpointNotAllowed(_) => plan::reason::ENDPOINT_NOT_ALLOWED,
        Blocked::ScopeNotAllowed(_) => plan::reason::SCOPE_NOT_ALLOWED,
        Blocked::Conflict { .. } => plan::reason::RESOURCE_CONFLICT,
        Blocked::SecretNotFound(_) => plan::reason::SECRET_NOT_FOUND,
        Blocked::CredentialsInvalid(_) => plan::reason::CREDENTIALS_INVALID,
        Blocked::AuthenticationFailed(_) => plan::reason::AUTHENTICATION_FAILED,
        Blocked::Forbidden(_) => plan::reason::FORBIDDEN,
        Blocked::Transient { .. } => plan::reason::RETRYING,
    }
}

async fn write(topic: &KafkaTopic, ctx: &Context, finish: &Finish) -> Result<(), kube::Error> {
    let api: Api<KafkaTopic> =
        Api::namespaced(ctx.client.clone(), &topic.namespace().unwrap_or_default());
    // `topic` carries what the server has as far as this process knows (see `reconcile`).
    let old: KafkaTopicStatus = topic.status.clone().unwrap_or_default();
    let stored =
        patch_status_if_changed(&api, &topic.name_any(), Some(&old), &finish.status).await?;
    if let Some(stored) = stored {
        ctx.metrics.status_written("KafkaTopic");
        ctx.remember_status(&stored);
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
