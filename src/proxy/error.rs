//! Typed proxy errors. Bodies are opaque text from the proxy, shortened, with our token removed.

use std::time::Duration;

use crate::auth::AuthError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    /// HTTP 401 even after one token refresh and retry.
    #[error(
        "the proxy rejected the access token (HTTP 401) even after a token refresh; check the cluster's Entra ID settings: {body}"
    )]
    Unauthorized { body: String },
    /// HTTP 403: the app is authenticated but not allowed on the cluster.
    #[error("the app is not a member of the cluster's security group (HTTP 403): {body}")]
    Forbidden { body: String },
    #[error("not found (HTTP 404): {body}")]
    NotFound { body: String },
    /// Any other 4xx (400 …).
    #[error("the proxy rejected the request (HTTP {status}): {body}")]
    Rejected { status: u16, body: String },
    /// HTTP 405: the proxy has no such operation.
    #[error("the proxy does not support this operation (HTTP 405): {body}")]
    Unsupported { body: String },
    /// HTTP 429 or 503.
    #[error("the proxy is throttling requests (HTTP {status}){}", crate::auth::http::retry_after_suffix(*retry_after))]
    Throttled {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Any other 5xx.
    #[error("the proxy failed (HTTP {status}): {body}")]
    Server { status: u16, body: String },
    #[error("could not reach the proxy: {0}")]
    Transport(String),
    #[error("the proxy did not answer in time")]
    Timeout,
    #[error("the proxy sent a malformed response: {0}")]
    Malformed(String),
    #[error("the proxy's response exceeds {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("no access token: {0}")]
    Auth(#[source] AuthError),
    #[error("invalid proxy client configuration: {0}")]
    InvalidConfig(String),
    /// A create that failed before anything was sent (a pending `Retry-After`, no connection,
    /// no token): nothing can have been created.
    #[error("{0} (the create was not sent)")]
    NotSent(Box<ProxyError>),
}

impl From<AuthError> for ProxyError {
    fn from(e: AuthError) -> Self {
        ProxyError::Auth(e)
    }
}

impl ProxyError {
    /// Worth retrying unchanged: 5xx, 429/503, transport errors, timeouts, and transient token
    /// errors.
    pub fn is_transient(&self) -> bool {
        match self {
            ProxyError::Throttled { .. }
            | ProxyError::Server { .. }
            | ProxyError::Transport(_)
            | ProxyError::Timeout => true,
            ProxyError::Auth(e) => e.is_transient(),
            ProxyError::NotSent(e) => e.is_transient(),
            _ => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProxyError::Throttled { retry_after, .. } => *retry_after,
            ProxyError::Auth(e) => e.retry_after(),
            ProxyError::NotSent(e) => e.retry_after(),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, ProxyError::NotFound { .. })
    }

    /// A short fixed label for metrics and event reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyError::Unauthorized { .. } => "unauthorized",
            ProxyError::Forbidden { .. } => "forbidden",
            ProxyError::NotFound { .. } => "not_found",
            ProxyError::Rejected { .. } => "rejected",
            ProxyError::Unsupported { .. } => "unsupported",
            ProxyError::Throttled { .. } => "throttled",
            ProxyError::Server { .. } => "server",
            ProxyError::Transport(_) => "transport",
            ProxyError::Timeout => "timeout",
            ProxyError::Malformed(_) => "malformed",
            ProxyError::BodyTooLarge { .. } => "body_too_large",
            ProxyError::Auth(_) => "auth",
            ProxyError::InvalidConfig(_) => "invalid_config",
            ProxyError::NotSent(e) => e.kind(),
        }
    }

    /// HTTP status behind the error, if the proxy answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProxyError::Unauthorized { .. } => Some(401),
            ProxyError::Forbidden { .. } => Some(403),
            ProxyError::NotFound { .. } => Some(404),
            ProxyError::Unsupported { .. } => Some(405),
            ProxyError::Rejected { status, .. }
            | ProxyError::Throttled { status, .. }
            | ProxyError::Server { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_message_says_what_to_fix() {
        let e = ProxyError::Forbidden { body: "no".into() };
        assert_eq!(
            e.to_string(),
            "the app is not a member of the cluster's security group (HTTP 403): no"
        );
    }

    #[test]
    fn transient_classification() {
        assert!(ProxyError::Timeout.is_transient());
        assert!(
            ProxyError::Server {
                status: 500,
                body: String::new()
            }
            .is_transient()
        );
        let t = ProxyError::Throttled {
            status: 429,
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(t.is_transient());
        assert_eq!(t.retry_after(), Some(Duration::from_secs(2)));
        assert!(
            !ProxyError::NotFound {
                body: String::new()
            }
            .is_transient()
        );
        assert!(
            ProxyError::NotFound {
                body: String::new()
            }
            .is_not_found()
        );
        assert!(
            !ProxyError::Rejected {
                status: 400,
                body: String::new()
            }
            .is_transient()
        );
        assert!(!ProxyError::Malformed(String::new()).is_transient());
        assert!(ProxyError::Auth(AuthError::Timeout).is_transient());
        assert!(!ProxyError::Auth(AuthError::InvalidConfig(String::new())).is_transient());
    }

    #[test]
    fn kinds_and_statuses() {
        let t = ProxyError::Throttled {
            status: 503,
            retry_after: None,
        };
        assert_eq!((t.kind(), t.status()), ("throttled", Some(503)));
        assert_eq!(ProxyError::Timeout.kind(), "timeout");
        assert_eq!(ProxyError::Timeout.status(), None);
        assert_eq!(
            ProxyError::Forbidden {
                body: String::new()
            }
            .status(),
            Some(403)
        );
    }
}
