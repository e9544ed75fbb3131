//! The outcome vocabulary of both controllers: every reason a condition can carry, every way a
//! reconcile can be blocked short of the proxy's answer, and — in one place each — what a block
//! means: its reason, whether a person has to act (`Stalled`) or time may fix it
//! (`Reconciling`), its message, whether it warrants a Warning Event, how long to wait before
//! the next attempt, and the metric label it is counted under (the reason).
//!
//! The planner (`plan.rs`, `rest_proxy.rs`) decides *when* an outcome applies; this module says
//! *what it is*. `docs/behaviour.md` and `docs/troubleshooting.md` explain each reason.

use std::time::Duration;

use crate::allowlist::NotAllowed;
use crate::auth::AuthError;
use crate::crd::{DesiredCondition, READY, RECONCILING, STALLED};
use crate::proxy::ProxyError;

use super::registry::ResolveError;

/// Stable condition reasons.
pub mod reason {
    pub const CREATED: &str = "Created";
    pub const ADOPTED: &str = "Adopted";
    pub const CREATING: &str = "Creating";
    pub const WAITING_FOR_VISIBILITY: &str = "WaitingForVisibility";
    pub const CREATE_UNCERTAIN: &str = "CreateUncertain";
    pub const NOT_VISIBLE: &str = "NotVisible";
    pub const CREATE_REJECTED: &str = "CreateRejected";
    pub const TOPIC_NOT_FOUND: &str = "TopicNotFound";
    pub const TOPIC_MISSING: &str = "TopicMissing";
    pub const PROXY_NOT_FOUND: &str = "ProxyNotFound";
    pub const PROXY_NOT_ALLOWED: &str = "ProxyNotAllowed";
    pub const ENDPOINT_NOT_ALLOWED: &str = "EndpointNotAllowed";
    pub const SCOPE_NOT_ALLOWED: &str = "ScopeNotAllowed";
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    pub const FORBIDDEN: &str = "Forbidden";
    pub const RESOURCE_CONFLICT: &str = "ResourceConflict";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const RETRYING: &str = "Retrying";
    /// KafkaRestProxy only: network error, timeout, 5xx or throttling on the way to the proxy
    /// or the token endpoint (topics report the same failures as `Retrying`).
    pub const UNREACHABLE: &str = "Unreachable";
    /// KafkaRestProxy only: token obtained; status, brokers and topic list answered.
    pub const CONNECTED: &str = "Connected";
    pub const RECONCILED: &str = "Reconciled";
    pub const PAUSED: &str = "Paused";
    pub const IN_SYNC: &str = "InSync";
    pub const DRIFTED: &str = "Drifted";
}

/// Every reason a KafkaRestProxy's conditions can carry; `docs/behaviour.md`,
/// `docs/troubleshooting.md` and the Argo CD health check list the same set.
pub const PROXY_REASONS: [&str; 9] = [
    reason::CONNECTED,
    reason::SECRET_NOT_FOUND,
    reason::CREDENTIALS_INVALID,
    reason::AUTHENTICATION_FAILED,
    reason::FORBIDDEN,
    reason::UNREACHABLE,
    reason::INVALID_SPEC,
    reason::ENDPOINT_NOT_ALLOWED,
    reason::SCOPE_NOT_ALLOWED,
];

/// Which controller reports an outcome: a few outcomes read differently on a KafkaRestProxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reporter {
    Topic,
    Proxy,
}

/// Why a reconcile could not reach the proxy, or must not.
#[derive(Clone, Debug, PartialEq)]
pub enum Blocked {
    Paused,
    InvalidSpec(String),
    ProxyNotFound(String),
    ProxyNotAllowed(String),
    /// The proxy's endpoint or authority is off the operator's allowlists.
    EndpointNotAllowed(String),
    /// The proxy's scope is off the operator's allowlist.
    ScopeNotAllowed(String),
    Conflict {
        owner: String,
    },
    /// A Secret the proxy names does not exist.
    SecretNotFound(String),
    CredentialsInvalid(String),
    AuthenticationFailed(String),
    Forbidden(String),
    /// A transient failure (5xx, timeout, throttling); `retry_after` from the server if any.
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
}

impl Blocked {
    /// The condition reason, which is also the metric label of the failed reconcile.
    pub fn reason(&self, reporter: Reporter) -> &'static str {
        match self {
            Self::Paused => reason::PAUSED,
            Self::InvalidSpec(_) => reason::INVALID_SPEC,
            Self::ProxyNotFound(_) => reason::PROXY_NOT_FOUND,
            Self::ProxyNotAllowed(_) => reason::PROXY_NOT_ALLOWED,
            Self::EndpointNotAllowed(_) => reason::ENDPOINT_NOT_ALLOWED,
            Self::ScopeNotAllowed(_) => reason::SCOPE_NOT_ALLOWED,
            Self::Conflict { .. } => reason::RESOURCE_CONFLICT,
            Self::SecretNotFound(_) => reason::SECRET_NOT_FOUND,
            Self::CredentialsInvalid(_) => reason::CREDENTIALS_INVALID,
            Self::AuthenticationFailed(_) => reason::AUTHENTICATION_FAILED,
            Self::Forbidden(_) => reason::FORBIDDEN,
            Self::Transient { .. } => match reporter {
                Reporter::Topic => reason::RETRYING,
                Reporter::Proxy => reason::UNREACHABLE,
            },
        }
    }

    /// Whether a person has to act (`Stalled=True`) rather than time fixing it
    /// (`Reconciling=True`). Pausing is neither: it is a choice, reported on its own condition.
    pub fn stalls(&self) -> bool {
        !matches!(self, Self::Paused | Self::Transient { .. })
    }

    /// The condition message: stable from one attempt to the next (see
    /// [`transient_message`]), so that a failing period costs few status writes.
    pub fn message(&self) -> String {
        match self {
            Self::InvalidSpec(m)
            | Self::ProxyNotFound(m)
            | Self::ProxyNotAllowed(m)
            | Self::EndpointNotAllowed(m)
            | Self::ScopeNotAllowed(m)
            | Self::SecretNotFound(m)
            | Self::CredentialsInvalid(m)
            | Self::AuthenticationFailed(m)
            | Self::Forbidden(m) => m.clone(),
            Self::Transient { message, .. } => message.clone(),
            Self::Conflict { owner } => format!(
                "KafkaTopic {owner} already manages this topic on this proxy (it is older); this one is ignored"
            ),
            Self::Paused => format!(
                "annotation {}=true: no calls to the proxy until it is removed",
                crate::crd::PAUSED_ANNOTATION
            ),
        }
    }

    /// Whether the block is worth a Warning Event on a topic (once per change of reason or
    /// message): the ones whose cause lies outside the manifest — Entra ID, group membership, an
    /// older claimant. The others are plain from the manifest or pass by themselves.
    pub fn warns(&self) -> bool {
        matches!(
            self,
            Self::AuthenticationFailed(_) | Self::Forbidden(_) | Self::Conflict { .. }
        )
    }

    /// How long to wait before the next attempt, `attempt` being the count of consecutive
    /// failures (0 for the first). A transient failure honours the server's `Retry-After`.
    /// Topics retry a block fixed by a change to Kubernetes objects slowly (the change triggers
    /// a reconcile anyway); failures whose fix lies outside Kubernetes (Entra ID, group
    /// membership) back off exponentially, as does every failure of a proxy.
    pub fn wait(&self, reporter: Reporter, attempt: u32, resync: Duration) -> Duration {
        let backoff = exponential_backoff(attempt);
        let retry_after = match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        };
        match (reporter, self) {
            (_, Self::Paused) => resync,
            (Reporter::Proxy, _) => retry_after.map_or(backoff, |r| backoff.max(r)),
            (Reporter::Topic, Self::Transient { .. }) => {
                retry_after.map_or(backoff, |r| r.max(Duration::from_secs(1)))
            }
            (Reporter::Topic, Self::AuthenticationFailed(_) | Self::Forbidden(_)) => backoff,
            (Reporter::Topic, _) => resync.min(Duration::from_secs(300)),
        }
    }

    /// `Ready`, `Reconciling` and `Stalled` for this block: `Ready=False` with the reason and
    /// message, and the message on whichever of `Stalled` (a person has to act) or
    /// `Reconciling` (time may fix it) is true. Topics keep their progress through transient
    /// failures and pauses (see `plan::finish_blocked`); everything else reads like this.
    pub fn conditions(&self, reporter: Reporter) -> Vec<DesiredCondition> {
        let reason = self.reason(reporter);
        let message = self.message();
        let stalls = self.stalls();
        let (reconciling, stalled) = if stalls {
            (String::new(), message.clone())
        } else {
            (message.clone(), String::new())
        };
        vec![
            DesiredCondition::new(READY, false, reason, message),
            DesiredCondition::new(RECONCILING, !stalls, reason, reconciling),
            DesiredCondition::new(STALLED, stalls, reason, stalled),
        ]
    }

    /// A failed proxy call.
    pub fn from_proxy(e: &ProxyError) -> Self {
        match e {
            ProxyError::NotSent(inner) => Self::from_proxy(inner),
            ProxyError::Forbidden { .. } => Self::Forbidden(e.to_string()),
            ProxyError::Unauthorized { .. } => Self::AuthenticationFailed(e.to_string()),
            ProxyError::Auth(a) => match a {
                AuthError::InvalidConfig(_) => Self::CredentialsInvalid(a.to_string()),
                a if a.is_transient() => Self::Transient {
                    message: transient_message(e),
                    retry_after: a.retry_after(),
                },
                a => Self::AuthenticationFailed(a.to_string()),
            },
            ProxyError::InvalidConfig(m) => Self::CredentialsInvalid(m.clone()),
            other => {
                tracing::debug!(error = %other, "transient proxy failure");
                Self::Transient {
                    message: transient_message(other),
                    retry_after: other.retry_after(),
                }
            }
        }
    }

    /// A proxy whose client could not be built. `proxy` names it ("KafkaRestProxy ns/name"),
    /// prefixed to what a topic reports about it.
    pub fn from_resolve(e: ResolveError, proxy: &str, reporter: Reporter) -> Self {
        match e {
            ResolveError::SecretNotFound(m) => Self::SecretNotFound(m),
            ResolveError::Credentials(m) => Self::CredentialsInvalid(m),
            ResolveError::InvalidSpec(m) => Self::InvalidSpec(match reporter {
                Reporter::Topic => format!("{proxy}: {m}"),
                Reporter::Proxy => m,
            }),
            ResolveError::NotAllowed(n) => n.into(),
            e @ ResolveError::Kube(..) => {
                // The Kubernetes error's text changes from one failure to the next: logged,
                // not written to status.
                tracing::debug!(error = %e, "reading the proxy's Secrets");
                Self::Transient {
                    message: format!("could not read {proxy}'s Secrets from Kubernetes"),
                    retry_after: None,
                }
            }
        }
    }
}

impl From<NotAllowed> for Blocked {
    fn from(n: NotAllowed) -> Self {
        match n {
            NotAllowed::Endpoint(m) => Self::EndpointNotAllowed(m),
            NotAllowed::Scope(m) => Self::ScopeNotAllowed(m),
        }
    }
}

/// 1 s doubling per consecutive failure, capped at 5 minutes.
pub fn exponential_backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(8)).min(Duration::from_secs(300))
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

#[cfg(test)]
mod tests {
    use super::*;

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

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn transient(retry_after: Option<Duration>) -> Blocked {
        Blocked::Transient {
            message: "the proxy failed (HTTP 500)".into(),
            retry_after,
        }
    }

    #[test]
    fn every_block_has_one_reason_stall_and_event() {
        use Reporter::{Proxy, Topic};
        // (block, topic reason, proxy reason, stalls, warns)
        let table = [
            (
                Blocked::Paused,
                reason::PAUSED,
                reason::PAUSED,
                false,
                false,
            ),
            (
                Blocked::InvalidSpec("x".into()),
                reason::INVALID_SPEC,
                reason::INVALID_SPEC,
                true,
                false,
            ),
            (
                Blocked::ProxyNotFound("x".into()),
                reason::PROXY_NOT_FOUND,
                reason::PROXY_NOT_FOUND,
                true,
                false,
            ),
            (
                Blocked::ProxyNotAllowed("x".into()),
                reason::PROXY_NOT_ALLOWED,
                reason::PROXY_NOT_ALLOWED,
                true,
                false,
            ),
            (
                Blocked::EndpointNotAllowed("x".into()),
                reason::ENDPOINT_NOT_ALLOWED,
                reason::ENDPOINT_NOT_ALLOWED,
                true,
                false,
            ),
            (
                Blocked::ScopeNotAllowed("x".into()),
                reason::SCOPE_NOT_ALLOWED,
                reason::SCOPE_NOT_ALLOWED,
                true,
                false,
            ),
            (
                Blocked::Conflict {
                    owner: "ns/a".into(),
                },
                reason::RESOURCE_CONFLICT,
                reason::RESOURCE_CONFLICT,
                true,
                true,
            ),
            (
                Blocked::SecretNotFound("x".into()),
                reason::SECRET_NOT_FOUND,
                reason::SECRET_NOT_FOUND,
                true,
                false,
            ),
            (
                Blocked::CredentialsInvalid("x".into()),
                reason::CREDENTIALS_INVALID,
                reason::CREDENTIALS_INVALID,
                true,
                false,
            ),
            (
                Blocked::AuthenticationFailed("x".into()),
                reason::AUTHENTICATION_FAILED,
                reason::AUTHENTICATION_FAILED,
                true,
                true,
            ),
            (
                Blocked::Forbidden("x".into()),
                reason::FORBIDDEN,
                reason::FORBIDDEN,
                true,
                true,
            ),
            (
                transient(None),
                reason::RETRYING,
                reason::UNREACHABLE,
                false,
                false,
            ),
        ];
        for (blocked, topic, proxy, stalls, warns) in table {
            assert_eq!(blocked.reason(Topic), topic, "{blocked:?}");
            assert_eq!(blocked.reason(Proxy), proxy, "{blocked:?}");
            assert_eq!(blocked.stalls(), stalls, "{blocked:?}");
            assert_eq!(blocked.warns(), warns, "{blocked:?}");
        }
        assert_eq!(
            Blocked::Conflict {
                owner: "ns/a".into()
            }
            .message(),
            "KafkaTopic ns/a already manages this topic on this proxy (it is older); this one is ignored"
        );
        assert!(
            Blocked::Paused
                .message()
                .contains(crate::crd::PAUSED_ANNOTATION)
        );
        assert_eq!(Blocked::Forbidden("403 text".into()).message(), "403 text");
        assert_eq!(transient(None).message(), "the proxy failed (HTTP 500)");
    }

    #[test]
    fn waits_follow_the_reporter_the_block_and_retry_after() {
        use Reporter::{Proxy, Topic};
        let resync = secs(600);
        // Backoff: 1 s doubling per consecutive failure, capped at 5 minutes.
        assert_eq!(exponential_backoff(0), secs(1));
        assert_eq!(exponential_backoff(3), secs(8));
        assert_eq!(exponential_backoff(8), secs(256));
        assert_eq!(exponential_backoff(9), secs(256));
        assert_eq!(exponential_backoff(u32::MAX), secs(256));
        // A pause waits for the resync, whatever the count.
        assert_eq!(Blocked::Paused.wait(Topic, 5, resync), resync);
        // Topics: Retry-After when given (at least 1 s), else backoff.
        assert_eq!(transient(Some(secs(30))).wait(Topic, 1, resync), secs(30));
        assert_eq!(transient(Some(secs(1))).wait(Topic, 6, resync), secs(1));
        assert_eq!(
            transient(Some(Duration::ZERO)).wait(Topic, 6, resync),
            secs(1)
        );
        assert_eq!(transient(None).wait(Topic, 3, resync), secs(8));
        // Fixed outside Kubernetes: backoff.
        assert_eq!(
            Blocked::Forbidden("x".into()).wait(Topic, 3, resync),
            secs(8)
        );
        assert_eq!(
            Blocked::AuthenticationFailed("x".into()).wait(Topic, 2, resync),
            secs(4)
        );
        // Fixed by a change to Kubernetes objects: slowly, at most every 5 minutes.
        assert_eq!(
            Blocked::SecretNotFound("x".into()).wait(Topic, 0, resync),
            secs(300)
        );
        assert_eq!(
            Blocked::InvalidSpec("x".into()).wait(Topic, 0, secs(20)),
            secs(20)
        );
        // Proxies: the longer of backoff and Retry-After, for every failure.
        assert_eq!(transient(Some(secs(30))).wait(Proxy, 1, resync), secs(30));
        assert_eq!(transient(Some(secs(1))).wait(Proxy, 6, resync), secs(64));
        assert_eq!(transient(None).wait(Proxy, 2, resync), secs(4));
        assert_eq!(
            Blocked::SecretNotFound("x".into()).wait(Proxy, 4, resync),
            secs(16)
        );
    }

    #[test]
    fn conditions_put_the_message_where_the_action_is() {
        let get = |conds: &[DesiredCondition], t: &str| {
            conds
                .iter()
                .find(|c| c.type_ == t)
                .map(|c| (c.status, c.reason.to_string(), c.message.clone()))
        };
        let stalled = Blocked::Forbidden("join the group".into()).conditions(Reporter::Topic);
        assert_eq!(
            get(&stalled, READY),
            Some((false, "Forbidden".into(), "join the group".into()))
        );
        assert_eq!(
            get(&stalled, STALLED),
            Some((true, "Forbidden".into(), "join the group".into()))
        );
        assert_eq!(
            get(&stalled, RECONCILING),
            Some((false, "Forbidden".into(), String::new()))
        );
        let waiting = transient(None).conditions(Reporter::Proxy);
        let m = "the proxy failed (HTTP 500)".to_string();
        assert_eq!(
            get(&waiting, READY),
            Some((false, "Unreachable".into(), m.clone()))
        );
        assert_eq!(
            get(&waiting, STALLED),
            Some((false, "Unreachable".into(), String::new()))
        );
        assert_eq!(
            get(&waiting, RECONCILING),
            Some((true, "Unreachable".into(), m))
        );
    }

    #[test]
    fn errors_map_to_blocks() {
        let body = || "b".to_string();
        assert!(matches!(
            Blocked::from_proxy(&ProxyError::Forbidden { body: body() }),
            Blocked::Forbidden(_)
        ));
        assert!(matches!(
            Blocked::from_proxy(&ProxyError::Unauthorized { body: body() }),
            Blocked::AuthenticationFailed(_)
        ));
        assert!(matches!(
            Blocked::from_proxy(&ProxyError::InvalidConfig("bad CA".into())),
            Blocked::CredentialsInvalid(m) if m == "bad CA"
        ));
        // Not sent: judged by what stopped it.
        assert!(matches!(
            Blocked::from_proxy(&ProxyError::NotSent(Box::new(ProxyError::Forbidden {
                body: body()
            }))),
            Blocked::Forbidden(_)
        ));
        let throttled = Blocked::from_proxy(&ProxyError::Throttled {
            status: 429,
            retry_after: Some(secs(9)),
        });
        assert_eq!(
            throttled,
            Blocked::Transient {
                message: "the proxy is throttling requests (HTTP 429)".into(),
                retry_after: Some(secs(9)),
            }
        );
        // Token errors: configuration, refusal, or time.
        assert!(matches!(
            Blocked::from_proxy(&ProxyError::Auth(AuthError::InvalidConfig("x".into()))),
            Blocked::CredentialsInvalid(_)
        ));
        let rejected = AuthError::Rejected {
            status: 401,
            error: "invalid_client".into(),
            aadsts: Some(7_000_215),
            description: "bad secret".into(),
            client_id: "app".into(),
        };
        assert!(matches!(
            Blocked::from_proxy(&ProxyError::Auth(rejected)),
            Blocked::AuthenticationFailed(m) if m.contains("AADSTS7000215")
        ));
        assert_eq!(
            Blocked::from_proxy(&ProxyError::Auth(AuthError::Throttled {
                retry_after: Some(secs(5))
            })),
            Blocked::Transient {
                message:
                    "token request failed: the token endpoint is throttling requests (HTTP 429)"
                        .into(),
                retry_after: Some(secs(5)),
            }
        );
        // Allowlists.
        assert_eq!(
            Blocked::from(NotAllowed::Endpoint("e".into())),
            Blocked::EndpointNotAllowed("e".into())
        );
        assert_eq!(
            Blocked::from(NotAllowed::Scope("s".into())),
            Blocked::ScopeNotAllowed("s".into())
        );
        // A proxy that cannot be built: a topic names the proxy, the proxy itself need not.
        let proxy = "KafkaRestProxy kafka/default";
        assert_eq!(
            Blocked::from_resolve(
                ResolveError::InvalidSpec("spec.x".into()),
                proxy,
                Reporter::Topic
            ),
            Blocked::InvalidSpec("KafkaRestProxy kafka/default: spec.x".into())
        );
        assert_eq!(
            Blocked::from_resolve(
                ResolveError::InvalidSpec("spec.x".into()),
                proxy,
                Reporter::Proxy
            ),
            Blocked::InvalidSpec("spec.x".into())
        );
        assert_eq!(
            Blocked::from_resolve(
                ResolveError::SecretNotFound("s".into()),
                proxy,
                Reporter::Topic
            ),
            Blocked::SecretNotFound("s".into())
        );
        assert_eq!(
            Blocked::from_resolve(
                ResolveError::Credentials("c".into()),
                proxy,
                Reporter::Proxy
            ),
            Blocked::CredentialsInvalid("c".into())
        );
        assert_eq!(
            Blocked::from_resolve(
                ResolveError::NotAllowed(NotAllowed::Scope("s".into())),
                proxy,
                Reporter::Proxy
            ),
            Blocked::ScopeNotAllowed("s".into())
        );
        assert_eq!(
            Blocked::from_resolve(
                ResolveError::Kube("kafka/hdi-sp".into(), "connection reset 10:00:01".into()),
                proxy,
                Reporter::Proxy
            ),
            Blocked::Transient {
                message: "could not read KafkaRestProxy kafka/default's Secrets from Kubernetes"
                    .into(),
                retry_after: None,
            }
        );
    }

    #[test]
    fn every_transport_cause_is_named() {
        let cause = |t: &str| transient_message(&ProxyError::Transport(t.into()));
        for (text, expected) in [
            (
                "invalid peer certificate: UnknownIssuer",
                "its TLS certificate is not trusted (a private CA? set spec.caBundleSecretRef)",
            ),
            (
                "invalid peer certificate: Expired",
                "its TLS certificate is not trusted (a private CA? set spec.caBundleSecretRef)",
            ),
            (
                "UnknownIssuer",
                "its TLS certificate is not trusted (a private CA? set spec.caBundleSecretRef)",
            ),
            (
                "dns error: no record found for query",
                "its host name does not resolve",
            ),
            (
                "failed to lookup address information",
                "its host name does not resolve",
            ),
            (
                "dns error: failed to lookup address",
                "its host name does not resolve",
            ),
            (
                "Name or service not known",
                "its host name does not resolve",
            ),
            (
                "tcp connect error: Connection refused",
                "connection refused",
            ),
            (
                "received fatal alert: HandshakeFailure",
                "the TLS handshake failed",
            ),
            ("connection reset by peer", "the connection was closed"),
            ("broken pipe", "the connection was closed"),
            ("operation timed out", "the connection timed out"),
            ("something else", "network error"),
        ] {
            assert_eq!(
                cause(text),
                format!("could not reach the proxy: {expected}"),
                "{text}"
            );
        }
        let token = |e: AuthError| transient_message(&ProxyError::Auth(e));
        assert_eq!(
            token(AuthError::Server { status: 503 }),
            "token request failed: the token endpoint failed (HTTP 503)"
        );
        assert_eq!(
            token(AuthError::Transport("connection refused".into())),
            "token request failed: could not reach the token endpoint: connection refused"
        );
        assert_eq!(
            token(AuthError::Timeout),
            "token request failed: the token endpoint did not answer in time"
        );
        assert_eq!(
            transient_message(&ProxyError::Timeout),
            "the proxy did not answer in time"
        );
        assert_eq!(
            transient_message(&ProxyError::BodyTooLarge { limit: 10 }),
            "the proxy sent a response the operator cannot read"
        );
        assert_eq!(
            transient_message(&ProxyError::NotSent(Box::new(ProxyError::Timeout))),
            "the proxy did not answer in time"
        );
        assert_eq!(
            transient_message(&ProxyError::NotFound { body: "x".into() }),
            "the proxy answered HTTP 404"
        );
    }
}
