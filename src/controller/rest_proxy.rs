//! The `KafkaRestProxy` reconcile: read the Secret, obtain a token, call status, brokers and
//! list, and report what works in a precise `Ready` condition. [`observe`] does the IO; the
//! pure [`plan`] turns what it found into the new status and the next look.

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
use super::outcome::{Blocked, Reporter, exponential_backoff};
pub use super::outcome::{PROXY_REASONS, reason::CONNECTED};
use super::status::{Error, patch_status_if_changed};

/// What one look at a proxy that answered everything found.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub brokers: Vec<BrokerStatus>,
    /// Whether brokers were left out of `brokers` (see [`bounded_brokers`]).
    pub brokers_truncated: bool,
    pub topic_count: usize,
}

/// Everything [`plan`] needs.
pub struct ProxyPlanInput<'a> {
    pub previous: &'a KafkaRestProxyStatus,
    pub generation: Option<i64>,
    /// The look; on failure, what blocked it.
    pub seen: &'a Result<Seen, Blocked>,
    /// Consecutive failures including this one (0 after a success).
    pub attempt: u32,
    pub now: Timestamp,
    pub resync_interval: Duration,
}

/// The end of a proxy reconcile.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyFinish {
    pub status: KafkaRestProxyStatus,
    /// When to look again (before jitter).
    pub requeue_after: Duration,
    /// The proxy just became usable: the topics waiting for it should look again now.
    pub wake_topics: bool,
    /// The failure's reason, as the reconcile metrics label it.
    pub failure: Option<&'static str>,
}

/// Decides the new status of a proxy from what its look found. A failed look keeps the
/// brokers and topic count of the last good one: they say what the cluster was, and the
/// conditions say it cannot be reached now.
pub fn plan(input: &ProxyPlanInput<'_>) -> ProxyFinish {
    let mut status = input.previous.clone();
    status.observed_generation = input.generation;
    let (conditions, requeue_after, failure) = match input.seen {
        Ok(seen) => {
            status.brokers = seen.brokers.clone();
            status.brokers_truncated = seen.brokers_truncated.then_some(true);
            status.topic_count = Some(i32::try_from(seen.topic_count).unwrap_or(i32::MAX));
            status.capabilities = Some(ProxyCapabilities::hdinsight_v1());
            let conditions = vec![
                DesiredCondition::new(
                    READY,
                    true,
                    CONNECTED,
                    "token obtained; status, brokers and topic list answered",
                ),
                DesiredCondition::new(RECONCILING, false, CONNECTED, ""),
                DesiredCondition::new(STALLED, false, CONNECTED, ""),
            ];
            (conditions, input.resync_interval, None)
        }
        Err(blocked) => (
            blocked.conditions(Reporter::Proxy),
            blocked.wait(Reporter::Proxy, input.attempt, input.resync_interval),
            Some(blocked.reason(Reporter::Proxy)),
        ),
    };
    status.conditions = merge_conditions(
        &input.previous.conditions,
        &conditions,
        input.generation,
        &Time(input.now),
    );
    ProxyFinish {
        status,
        requeue_after: requeue_after.max(Duration::from_secs(1)),
        wake_topics: input.seen.is_ok() && !is_true(&input.previous.conditions, READY),
        failure,
    }
}

/// Looks at a proxy: its client (Secret, token), then status, brokers and the topic list.
async fn observe(proxy: &KafkaRestProxy, ctx: &Context) -> Result<Seen, Blocked> {
    let ns = proxy.namespace().unwrap_or_default();
    let entry = ctx
        .registry
        .resolve(proxy, &ctx.stores.secrets_for(&ns))
        .await
        .map_err(|e| {
            Blocked::from_resolve(
                e,
                &format!("KafkaRestProxy {ns}/{}", proxy.name_any()),
                Reporter::Proxy,
            )
        })?;
    entry
        .client
        .status()
        .await
        .map_err(|e| Blocked::from_proxy(&e))?;
    let answered = entry
        .client
        .brokers()
        .await
        .map_err(|e| Blocked::from_proxy(&e))?;
    let (brokers, brokers_truncated) = bounded_brokers(answered);
    let names = entry
        .topic_names(ctx.settings.list_freshness)
        .await
        .map_err(|e| Blocked::from_proxy(&e))?;
    Ok(Seen {
        brokers,
        brokers_truncated,
        topic_count: names.len(),
    })
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
#[tracing::instrument(skip_all, fields(proxy = %format!("{}/{}", proxy.namespace().unwrap_or_default(), proxy.name_any())))]
pub async fn reconcile(proxy: Arc<KafkaRestProxy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let _running = ctx.reconcile_started(&*proxy);
    let seen = observe(&proxy, &ctx).await;
    let attempt = match &seen {
        Ok(_) => {
            ctx.succeeded(&*proxy);
            0
        }
        Err(_) => ctx.failed(&*proxy),
    };
    let previous = proxy.status.clone().unwrap_or_default();
    let finish = plan(&ProxyPlanInput {
        previous: &previous,
        generation: proxy.metadata.generation,
        seen: &seen,
        attempt,
        now: Timestamp::now(),
        resync_interval: ctx.settings.plan.resync_interval,
    });
    let api: Api<KafkaRestProxy> =
        Api::namespaced(ctx.client.clone(), &proxy.namespace().unwrap_or_default());
    let name = proxy.name_any();
    let target = ctx.status_target(&api, &name, "KafkaRestProxy");
    let wrote = patch_status_if_changed(&target, proxy.status.as_ref(), &finish.status).await;
    ctx.metrics.reconciled(
        "KafkaRestProxy",
        started.elapsed(),
        match &wrote {
            Err(_) => Some("StatusWriteFailed"),
            Ok(_) => finish.failure,
        },
    );
    wrote?;
    if finish.wake_topics {
        let ns = proxy.namespace().unwrap_or_default();
        for t in ctx.stores.topics_of_proxy(&ns, &name) {
            ctx.triggers.topic(&t);
        }
    }
    Ok(ctx.requeue(&*proxy, jitter(finish.requeue_after)))
}

/// After a failed status write: back off.
pub fn error_policy(proxy: Arc<KafkaRestProxy>, error: &Error, ctx: Arc<Context>) -> Action {
    let attempt = ctx.failed(&*proxy);
    tracing::warn!(proxy = %proxy.name_any(), %error, attempt, "reconcile failed");
    ctx.requeue(&*proxy, jitter(exponential_backoff(attempt)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::outcome::reason;
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
            assert!(PROXY_REASONS.contains(&reason));
            let previous = connected();
            let seen = Err(blocked.clone());
            let finish = plan(&input(&previous, &seen, 3));
            let get = |t: &str| {
                finish
                    .status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == t)
                    .map(|c| (c.status == "True", c.reason.clone(), c.message.clone()))
            };
            let message = blocked.message();
            let (on_stalled, on_reconciling) = if stalled {
                (message.clone(), String::new())
            } else {
                (String::new(), message.clone())
            };
            assert_eq!(get(READY), Some((false, reason.into(), message)));
            assert_eq!(get(STALLED), Some((stalled, reason.into(), on_stalled)));
            assert_eq!(
                get(RECONCILING),
                Some((!stalled, reason.into(), on_reconciling))
            );
            assert_eq!(finish.failure, Some(reason));
            assert!(!finish.wake_topics);
            // What the last good look saw stays: the conditions say it is not reachable now.
            assert_eq!(finish.status.brokers, previous.brokers);
            assert_eq!(finish.status.topic_count, Some(7));
            assert_eq!(finish.status.observed_generation, Some(2));
            // The third failure in a row: 8 s of backoff.
            assert_eq!(finish.requeue_after, Duration::from_secs(8), "{blocked:?}");
        }
    }

    fn connected() -> KafkaRestProxyStatus {
        let seen = Ok(Seen {
            brokers: vec![BrokerStatus {
                id: 1001,
                host: "wn0".into(),
                port: Some(9092),
                rack: None,
            }],
            brokers_truncated: false,
            topic_count: 7,
        });
        plan(&input(&KafkaRestProxyStatus::default(), &seen, 0)).status
    }

    fn input<'a>(
        previous: &'a KafkaRestProxyStatus,
        seen: &'a Result<Seen, Blocked>,
        attempt: u32,
    ) -> ProxyPlanInput<'a> {
        ProxyPlanInput {
            previous,
            generation: Some(2),
            seen,
            attempt,
            now: Timestamp::from_second(1_700_000_000).unwrap_or_default(),
            resync_interval: Duration::from_secs(600),
        }
    }

    #[test]
    fn a_proxy_that_answers_is_connected_and_wakes_its_topics_once() {
        let first = connected();
        let ready = find(&first, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", CONNECTED)
        );
        assert_eq!(first.topic_count, Some(7));
        assert_eq!(first.brokers.len(), 1);
        assert_eq!(first.brokers_truncated, None);
        assert!(first.capabilities.is_some());
        let seen = Ok(Seen {
            brokers: vec![],
            brokers_truncated: true,
            topic_count: 9,
        });
        // Ready before: nothing to wake, and the next look at the resync interval.
        let again = plan(&input(&first, &seen, 0));
        assert!(!again.wake_topics);
        assert_eq!(again.failure, None);
        assert_eq!(again.requeue_after, Duration::from_secs(600));
        assert_eq!(again.status.topic_count, Some(9));
        assert_eq!(again.status.brokers_truncated, Some(true));
        // Not Ready before (a failure, or never looked at): the waiting topics are woken.
        assert!(plan(&input(&KafkaRestProxyStatus::default(), &seen, 0)).wake_topics);
        let failed = plan(&input(&first, &Err(Blocked::Forbidden("403".into())), 1));
        assert!(plan(&input(&failed.status, &seen, 0)).wake_topics);
    }

    #[test]
    fn a_proxy_waits_for_the_longer_of_its_backoff_and_retry_after() {
        let previous = connected();
        let throttled = |secs| {
            Err(Blocked::Transient {
                message: "the proxy is throttling requests (HTTP 429)".into(),
                retry_after: Some(Duration::from_secs(secs)),
            })
        };
        // Retry-After 30 s on the first failure (backoff 2 s): 30 s.
        assert_eq!(
            plan(&input(&previous, &throttled(30), 1)).requeue_after,
            Duration::from_secs(30)
        );
        // Retry-After 1 s on the sixth failure (backoff 64 s): 64 s.
        assert_eq!(
            plan(&input(&previous, &throttled(1), 6)).requeue_after,
            Duration::from_secs(64)
        );
        // Never sooner than a second, whatever the server says.
        assert_eq!(
            plan(&input(&previous, &throttled(0), 0)).requeue_after,
            Duration::from_secs(1)
        );
    }

    fn find<'a>(
        status: &'a KafkaRestProxyStatus,
        type_: &str,
    ) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        crate::crd::find_condition(&status.conditions, type_).expect("condition")
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
        // Exactly as many as the status holds: all kept, nothing left out.
        let exactly: Vec<BrokerEndpoint> = (0..MAX_BROKERS_IN_STATUS as i32)
            .map(|i| BrokerEndpoint {
                id: i,
                host_name: format!("wn{i}"),
                port: 9092,
                rack: None,
            })
            .collect();
        let (all, truncated) = bounded_brokers(exactly);
        assert!(!truncated);
        assert_eq!(all.len(), MAX_BROKERS_IN_STATUS);
    }
}
