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
        ProxyError::NotSent(inner) => blocked_from(inner),
        ProxyError::Forbidden { .. } => Blocked::Forbidden(e.to_string()),
        ProxyError::Unauthorized { .. } => Blocked::AuthenticationFailed(e.to_string()),
        ProxyError::Auth(a) => match a {
            AuthError::InvalidConfig(_) => Blocked::CredentialsInvalid(a.to_string()),
            a if a.is_transient() => Blocked::Transient {
                message: transient_message(e),
                retry_after: a.retry_after(),
            },
            a => Blocked::AuthenticationFailed(a.to_string()),
        },
        ProxyError::InvalidConfig(m) => Blocked::CredentialsInvalid(m.clone()),
        other => {
            tracing::debug!(error = %other, "transient proxy failure");
            Blocked::Transient {
                message: transient_message(other),
                retry_after: other.retry_after(),
            }
        }
    }
}

/// What a transport error's text says went wrong, in words that do not change from one request
/// to the next (the text itself names the request's URL): enough to act on (a CA to trust, a
/// host name to fix) without a status write per request.
fn transport_cause(text: &str) -> &'static str {
    let t = text.to_ascii_lowercase();
    if t.contains("certificate") || t.contains("unknownissuer") {
        "its TLS certificate is not trusted (a private CA? set spec.caBundleSecretRef)"
    } else if t.contains("dns error")
        || t.contains("failed to lookup")
        || t.contains("name or service not known")
    {
        "its host name does not resolve"
    } else if t.contains("connection refused") {
        "connection refused"
    } else if t.contains("tls") || t.contains("handshake") {
        "the TLS handshake failed"
    } else if t.contains("reset") || t.contains("closed") || t.contains("broken pipe") {
        "the connection was closed"
    } else if t.contains("timed out") {
        "the connection timed out"
    } else {
        "network error"
    }
}

/// A transient failure in words that stay the same from one failure to the next: the kind
/// and the HTTP status, never the body (request ids, timestamps), a `Retry-After` countdown or
/// a transport error's text. Each new message would be a status write for every topic.
pub fn transient_message(e: &ProxyError) -> String {
    use crate::auth::AuthError;
    match e {
        ProxyError::NotSent(inner) => transient_message(inner),
        ProxyError::Throttled { status, .. } => {
            format!("the proxy is throttling requests (HTTP {status})")
        }
        ProxyError::Server { status, .. } => format!("the proxy failed (HTTP {status})"),
        ProxyError::Transport(text) => {
            format!("could not reach the proxy: {}", transport_cause(text))
        }
        ProxyError::Timeout => "the proxy did not answer in time".into(),
        ProxyError::Malformed(_) | ProxyError::BodyTooLarge { .. } => {
            "the proxy sent a response the operator cannot read".into()
        }
        ProxyError::Auth(a) => match a {
            AuthError::Throttled { .. } => {
                "token request failed: the token endpoint is throttling requests (HTTP 429)".into()
            }
            AuthError::Server { status, .. } => {
                format!("token request failed: the token endpoint failed (HTTP {status})")
            }
            AuthError::Transport(text) => format!(
                "token request failed: could not reach the token endpoint: {}",
                transport_cause(text)
            ),
            AuthError::Timeout => {
                "token request failed: the token endpoint did not answer in time".into()
            }
            other => format!("token request failed: {other}"),
        },
        other => match other.status() {
            Some(status) => format!("the proxy answered HTTP {status}"),
            None => format!("the proxy call failed ({})", other.kind()),
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
        // Never sent (a pending Retry-After, no connection, no token): nothing was created.
        ProxyError::NotSent(_) => Err(blocked_from(e)),
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
            ResolveError::SecretNotFound(m) => Blocked::SecretNotFound(m),
            ResolveError::Credentials(m) => Blocked::CredentialsInvalid(m),
            ResolveError::InvalidSpec(m) => {
                Blocked::InvalidSpec(format!("KafkaRestProxy {proxy_ns}/{proxy_name}: {m}"))
            }
            ResolveError::NotAllowed(n) => blocked_not_allowed(n),
            e @ ResolveError::Kube(..) => {
                tracing::debug!(error = %e, "resolving the proxy");
                Blocked::Transient {
                    message: format!(
                        "could not read KafkaRestProxy {proxy_ns}/{proxy_name}'s Secrets from Kubernetes"
                    ),
                    retry_after: None,
                }
            }
        })?;

    let uid = topic.metadata.uid.clone().unwrap_or_default();
    let previous = topic.status.clone().unwrap_or_default();
    // A create this process sent whose recording in status failed.
    let sent_create = ctx
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
        .map_err(|e| blocked_from(&e))?;
    let mut obs = Observation {
        listed: names.contains(&desired.topic_name),
        ..Default::default()
    };
    // decide() asks for at most a describe, a create and a describe again.
    let who = format!("{topic_ns}/{}", topic.name_any());
    let last_look = ctx.last_look(&uid);
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
                        &uid,
                        &create_key(&desired),
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
    if let Some(uid) = topic.metadata.uid.as_deref() {
        // The status on the server records the create (or the topic is there): the memory of
        // the create is no longer needed.
        if finish.status.create_requested_at.is_some() || finish.status.partitions.is_some() {
            ctx.create_recorded(uid);
        }
        ctx.update_look(uid, &finish.look);
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

    #[test]
    fn transport_failures_keep_their_cause_but_not_the_request() {
        let a = ProxyError::Transport("error sending request for url (https://h.example/v1/topics/a): client error (Connect): invalid peer certificate: UnknownIssuer".into());
        let b = ProxyError::Transport("error sending request for url (https://h.example/v1/topics/b): client error (Connect): invalid peer certificate: UnknownIssuer".into());
        assert_eq!(transient_message(&a), transient_message(&b));
        assert!(
            transient_message(&a).contains("caBundleSecretRef"),
            "{}",
            transient_message(&a)
        );
        let refused = ProxyError::Transport("error sending request for url (https://h.example/v1/topics): client error (Connect): tcp connect error: Connection refused (os error 111)".into());
        assert_eq!(
            transient_message(&refused),
            "could not reach the proxy: connection refused"
        );
        let dns = ProxyError::Transport("error sending request for url (https://nope.example/v1/topics): client error (Connect): dns error: failed to lookup address information".into());
        assert!(transient_message(&dns).ends_with("its host name does not resolve"));
    }

    #[test]
    fn transient_messages_carry_no_per_request_text() {
        let a = ProxyError::Throttled {
            status: 429,
            retry_after: Some(Duration::from_secs(7)),
        };
        let b = ProxyError::Throttled {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(transient_message(&a), transient_message(&b));
        assert!(!transient_message(&a).contains('7'));
        let s1 = ProxyError::Server {
            status: 500,
            body: r#"{"trace_id":"aaaa","timestamp":"10:00:01"}"#.into(),
        };
        let s2 = ProxyError::Server {
            status: 500,
            body: r#"{"trace_id":"bbbb","timestamp":"10:00:02"}"#.into(),
        };
        assert_eq!(transient_message(&s1), transient_message(&s2));
        assert_eq!(transient_message(&s1), "the proxy failed (HTTP 500)");
        assert_eq!(
            transient_message(&ProxyError::Transport(
                "tcp connect error 10.0.0.1:443".into()
            )),
            "could not reach the proxy: network error"
        );
    }
}
