//! The `KafkaRestProxy` reconcile: read the Secret, obtain a token, call status, brokers and
//! list, and report what works in a precise `Ready` condition.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;

use crate::crd::{
    BrokerStatus, DesiredCondition, KafkaRestProxy, KafkaRestProxyStatus, MAX_BROKER_TEXT,
    MAX_BROKERS_IN_STATUS, ProxyCapabilities, READY, RECONCILING, STALLED, is_true,
    merge_conditions,
};

use super::context::{Context, jitter};
use super::plan::{self, Blocked, reason};
use super::registry::ResolveError;
use super::status::patch_status_if_changed;
use super::topic::{Error, blocked_from, blocked_not_allowed};

/// Reason of a proxy that answered everything.
pub const CONNECTED: &str = "Connected";

/// Every reason a KafkaRestProxy's conditions can carry; `docs/behaviour.md`,
/// `docs/troubleshooting.md` and the Argo CD health check list the same set.
pub const PROXY_REASONS: [&str; 9] = [
    CONNECTED,
    reason::SECRET_NOT_FOUND,
    reason::CREDENTIALS_INVALID,
    reason::AUTHENTICATION_FAILED,
    reason::FORBIDDEN,
    reason::UNREACHABLE,
    reason::INVALID_SPEC,
    reason::ENDPOINT_NOT_ALLOWED,
    reason::SCOPE_NOT_ALLOWED,
];

/// The reason a proxy reports for `blocked`, and whether a person has to act (`Stalled`) or
/// time may fix it (`Reconciling`).
pub fn proxy_reason(blocked: &Blocked) -> (&'static str, bool) {
    match blocked {
        Blocked::SecretNotFound(_) => (reason::SECRET_NOT_FOUND, true),
        Blocked::CredentialsInvalid(_) => (reason::CREDENTIALS_INVALID, true),
        Blocked::AuthenticationFailed(_) => (reason::AUTHENTICATION_FAILED, true),
        Blocked::Forbidden(_) => (reason::FORBIDDEN, true),
        Blocked::InvalidSpec(_) => (reason::INVALID_SPEC, true),
        Blocked::EndpointNotAllowed(_) => (reason::ENDPOINT_NOT_ALLOWED, true),
        Blocked::ScopeNotAllowed(_) => (reason::SCOPE_NOT_ALLOWED, true),
        Blocked::Transient { .. } => (reason::UNREACHABLE, false),
        // Topic-only outcomes: a proxy reconcile never produces them. Were one to appear, it
        // is retried like a transient failure rather than given a reason outside the set.
        Blocked::Paused
        | Blocked::ProxyNotFound(_)
        | Blocked::ProxyNotAllowed(_)
        | Blocked::Conflict { .. } => (reason::UNREACHABLE, false),
    }
}

fn blocked_message(blocked: &Blocked) -> String {
    match blocked {
        Blocked::SecretNotFound(m)
        | Blocked::CredentialsInvalid(m)
        | Blocked::AuthenticationFailed(m)
        | Blocked::Forbidden(m)
        | Blocked::InvalidSpec(m)
        | Blocked::EndpointNotAllowed(m)
        | Blocked::ScopeNotAllowed(m)
        | Blocked::ProxyNotFound(m)
        | Blocked::ProxyNotAllowed(m) => m.clone(),
        Blocked::Transient { message, .. } => message.clone(),
        Blocked::Conflict { owner } => format!("conflict with {owner}"),
        Blocked::Paused => "paused".into(),
    }
}

fn conditions_for(ok: Result<(), &Blocked>) -> Vec<DesiredCondition> {
    match ok {
        Ok(()) => vec![
            DesiredCondition::new(
                READY,
                true,
                CONNECTED,
                "token obtained; status, brokers and topic list answered",
            ),
            DesiredCondition::new(RECONCILING, false, CONNECTED, ""),
            DesiredCondition::new(STALLED, false, CONNECTED, ""),
        ],
        Err(b) => {
            let (reason, permanent) = proxy_reason(b);
            let message = blocked_message(b);
            vec![
                DesiredCondition::new(READY, false, reason, message.clone()),
                DesiredCondition::new(
                    RECONCILING,
                    !permanent,
                    reason,
                    if permanent {
                        String::new()
                    } else {
                        message.clone()
                    },
                ),
                DesiredCondition::new(
                    STALLED,
                    permanent,
                    reason,
                    if permanent { message } else { String::new() },
                ),
            ]
        }
    }
}

async fn observe(
    proxy: &KafkaRestProxy,
    ctx: &Context,
    status: &mut KafkaRestProxyStatus,
) -> Result<(), Blocked> {
    let ns = proxy.namespace().unwrap_or_default();
    let entry = ctx
        .registry
        .resolve(proxy, &ctx.stores.secrets_for(&ns))
        .await
        .map_err(|e| match e {
            ResolveError::SecretNotFound(m) => Blocked::SecretNotFound(m),
            ResolveError::Credentials(m) => Blocked::CredentialsInvalid(m),
            ResolveError::InvalidSpec(m) => Blocked::InvalidSpec(m),
            ResolveError::NotAllowed(n) => blocked_not_allowed(n),
            e @ ResolveError::Kube(..) => Blocked::Transient {
                message: e.to_string(),
                retry_after: None,
            },
        })?;
    entry.client.status().await.map_err(|e| blocked_from(&e))?;
    let answered = entry.client.brokers().await.map_err(|e| blocked_from(&e))?;
    let (brokers, truncated) = bounded_brokers(answered);
    let names = entry
        .topic_names(ctx.settings.list_freshness)
        .await
        .map_err(|e| blocked_from(&e))?;
    status.brokers = brokers;
    status.brokers_truncated = truncated.then_some(true);
    status.topic_count = Some(i32::try_from(names.len()).unwrap_or(i32::MAX));
    status.capabilities = Some(ProxyCapabilities::hdinsight_v1());
    Ok(())
}

/// `status.brokers` within bounds, whatever the proxy answered: sorted by id, at most
/// [`MAX_BROKERS_IN_STATUS`] entries, host names and racks cut to [`MAX_BROKER_TEXT`]
/// characters. Returns the brokers and whether any were left out.
pub fn bounded_brokers(answered: Vec<crate::proxy::BrokerEndpoint>) -> (Vec<BrokerStatus>, bool) {
    let cut = |t: &str| t.chars().take(MAX_BROKER_TEXT).collect::<String>();
    let mut brokers: Vec<BrokerStatus> = answered
        .into_iter()
        .map(|b| BrokerStatus {
            id: b.id,
            host: cut(&b.host_name),
            port: Some(b.port),
            rack: b.rack.as_deref().map(cut),
        })
        .collect();
    brokers.sort_by_key(|b| b.id);
    let truncated = brokers.len() > MAX_BROKERS_IN_STATUS;
    brokers.truncate(MAX_BROKERS_IN_STATUS);
    (brokers, truncated)
}

/// Reconciles one KafkaRestProxy.
pub async fn reconcile(proxy: Arc<KafkaRestProxy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let _running = ctx.reconcile_started(&*proxy);
    let previous = proxy.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = proxy.metadata.generation;
    let result = observe(&proxy, &ctx, &mut status).await;
    let requeue = match &result {
        Ok(()) => {
            ctx.succeeded(&*proxy);
            ctx.settings.plan.resync_interval
        }
        Err(b) => {
            let attempt = ctx.failed(&*proxy);
            let backoff = plan::exponential_backoff(attempt);
            match b {
                Blocked::Transient {
                    retry_after: Some(r),
                    ..
                } => backoff.max(*r),
                _ => backoff,
            }
        }
    };
    status.conditions = merge_conditions(
        &previous.conditions,
        &conditions_for(result.as_ref().map(|_| ())),
        proxy.metadata.generation,
        &Time(Timestamp::now()),
    );
    let api: Api<KafkaRestProxy> =
        Api::namespaced(ctx.client.clone(), &proxy.namespace().unwrap_or_default());
    let wrote =
        patch_status_if_changed(&api, &proxy.name_any(), proxy.status.as_ref(), &status).await;
    ctx.metrics.reconciled(
        "KafkaRestProxy",
        started.elapsed(),
        match (&result, &wrote) {
            (_, Err(_)) => Some("StatusWriteFailed"),
            (Err(b), _) => Some(proxy_reason(b).0),
            _ => None,
        },
    );
    if wrote?.is_some() {
        ctx.metrics.status_written("KafkaRestProxy");
    }
    // A proxy that just became usable wakes the topics that were waiting for it.
    let was_ready = is_true(&previous.conditions, READY);
    if result.is_ok() && !was_ready {
        let ns = proxy.namespace().unwrap_or_default();
        for t in ctx.stores.topics_of_proxy(&ns, &proxy.name_any()) {
            ctx.triggers.topic(&t);
        }
    }
    Ok(ctx.requeue(&*proxy, jitter(requeue.max(Duration::from_secs(1)))))
}

/// After a failed status write: back off.
pub fn error_policy(proxy: Arc<KafkaRestProxy>, error: &Error, ctx: Arc<Context>) -> Action {
    let attempt = ctx.failed(&*proxy);
    tracing::warn!(proxy = %proxy.name_any(), %error, attempt, "reconcile failed");
    ctx.requeue(&*proxy, jitter(plan::exponential_backoff(attempt)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::BrokerEndpoint;

    #[test]
    fn proxy_reasons_are_the_documented_set_with_kstatus_meaning() {
        let transient = Blocked::Transient {
            message: "connection refused".into(),
            retry_after: None,
        };
        for (blocked, reason, stalled) in [
            (
                Blocked::SecretNotFound("Secret kafka/hdi-sp does not exist".into()),
                reason::SECRET_NOT_FOUND,
                true,
            ),
            (
                Blocked::CredentialsInvalid("Secret kafka/hdi-sp has no key \"clientId\"".into()),
                reason::CREDENTIALS_INVALID,
                true,
            ),
            (
                Blocked::AuthenticationFailed("AADSTS7000215".into()),
                reason::AUTHENTICATION_FAILED,
                true,
            ),
            (Blocked::Forbidden("403".into()), reason::FORBIDDEN, true),
            (transient, reason::UNREACHABLE, false),
            (
                Blocked::InvalidSpec("spec.credentials: set exactly one".into()),
                reason::INVALID_SPEC,
                true,
            ),
            (
                Blocked::EndpointNotAllowed("host".into()),
                reason::ENDPOINT_NOT_ALLOWED,
                true,
            ),
            (
                Blocked::ScopeNotAllowed("scope".into()),
                reason::SCOPE_NOT_ALLOWED,
                true,
            ),
        ] {
            assert_eq!(proxy_reason(&blocked), (reason, stalled), "{blocked:?}");
            assert!(PROXY_REASONS.contains(&reason));
            let conditions = conditions_for(Err(&blocked));
            let get = |t: &str| {
                conditions
                    .iter()
                    .find(|c| c.type_ == t)
                    .map(|c| (c.status, c.reason))
            };
            assert_eq!(get(READY), Some((false, reason)));
            assert_eq!(get(STALLED), Some((stalled, reason)));
            assert_eq!(get(RECONCILING), Some((!stalled, reason)));
        }
        let ok = conditions_for(Ok(()));
        assert!(
            ok.iter()
                .any(|c| c.type_ == READY && c.status && c.reason == CONNECTED)
        );
    }

    #[test]
    fn the_documented_proxy_reasons_are_exactly_the_emitted_ones() {
        // docs/behaviour.md and docs/troubleshooting.md each have a KafkaRestProxy reasons
        // table; the Argo CD health check names the Stalled ones in its header.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let table_reasons = |file: &str| -> Vec<String> {
            let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            let section = text
                .split("## KafkaRestProxy")
                .nth(1)
                .unwrap_or_default()
                .split("\n## ")
                .next()
                .unwrap_or_default()
                .to_string();
            section
                .lines()
                .filter_map(|l| l.strip_prefix("| `"))
                .filter_map(|l| l.split('`').next())
                .map(String::from)
                .collect()
        };
        let emitted: Vec<String> = PROXY_REASONS.iter().map(|r| r.to_string()).collect();
        for file in ["docs/behaviour.md", "docs/troubleshooting.md"] {
            assert_eq!(table_reasons(file), emitted, "{file}");
        }
        let lua = std::fs::read_to_string(root.join("deploy/argocd/health-kafkarestproxy.lua"))
            .unwrap_or_default();
        let header: String = lua
            .lines()
            .take_while(|l| l.starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        for r in PROXY_REASONS {
            assert!(
                header.contains(r),
                "the Argo CD health check does not name {r}"
            );
        }
    }

    #[test]
    fn brokers_in_status_are_bounded() {
        let answered: Vec<BrokerEndpoint> = (0..250)
            .rev()
            .map(|i| BrokerEndpoint {
                id: i,
                host_name: "h".repeat(10_000),
                port: 9092,
                rack: Some("r".repeat(10_000)),
            })
            .collect();
        let (brokers, truncated) = bounded_brokers(answered);
        assert!(truncated);
        assert_eq!(brokers.len(), MAX_BROKERS_IN_STATUS);
        assert_eq!(brokers[0].id, 0, "sorted by id, the lowest kept");
        assert!(brokers.iter().all(|b| {
            b.host.len() == MAX_BROKER_TEXT
                && b.rack
                    .as_deref()
                    .is_some_and(|r| r.len() == MAX_BROKER_TEXT)
        }));
        let (few, truncated) = bounded_brokers(vec![BrokerEndpoint {
            id: 1001,
            host_name: "wn0".into(),
            port: 9092,
            rack: None,
        }]);
        assert!(!truncated);
        assert_eq!(few[0].host, "wn0");
    }
}
