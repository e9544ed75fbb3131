//! Typed token errors. None of them carries the client secret or a token.

use std::time::Duration;

use super::http::retry_after_suffix;

/// Why no access token could be obtained.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// Entra ID answered 4xx, e.g. `AADSTS7000215: invalid client secret for app <clientId>
    /// (invalid_client, HTTP 401)`. `description` holds the first line of `error_description`.
    #[error("{}", rejected_message(*status, error, *aadsts, description, client_id))]
    Rejected {
        status: u16,
        error: String,
        aadsts: Option<u32>,
        description: String,
        client_id: String,
    },
    /// HTTP 429 from the token endpoint.
    #[error("the token endpoint is throttling requests (HTTP 429){}", retry_after_suffix(*retry_after))]
    Throttled { retry_after: Option<Duration> },
    /// HTTP 5xx from the token endpoint.
    #[error("the token endpoint failed (HTTP {status}); retrying later")]
    Server { status: u16 },
    #[error("could not reach the token endpoint: {0}")]
    Transport(String),
    #[error("the token endpoint did not answer in time")]
    Timeout,
    #[error("the token endpoint sent a malformed response: {0}")]
    Malformed(String),
    #[error("invalid token configuration: {0}")]
    InvalidConfig(String),
}

impl AuthError {
    /// Worth retrying unchanged: throttling, 5xx, transport errors and timeouts.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AuthError::Throttled { .. }
                | AuthError::Server { .. }
                | AuthError::Transport(_)
                | AuthError::Timeout
        )
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AuthError::Throttled { retry_after } => *retry_after,
            _ => None,
        }
    }

    pub fn aadsts(&self) -> Option<u32> {
        match self {
            AuthError::Rejected { aadsts, .. } => *aadsts,
            _ => None,
        }
    }
}

/// What a known AADSTS code means, phrased for someone fixing the KafkaRestProxy's Secret.
fn aadsts_hint(code: u32) -> Option<&'static str> {
    Some(match code {
        7000215 => "invalid client secret",
        7000222 => "the client secret has expired",
        7000218 => "no client secret was sent",
        700016 => "the application is not found in the tenant",
        90002 => "the tenant is not found",
        1002012 => "the scope must end with /.default",
        500011 => "the resource of the scope is not found in the tenant",
        900144 => "a required field is missing from the token request",
        70003 => "the grant type is not supported",
        700027 => {
            "the client assertion's signature is invalid or its certificate is not registered on the app"
        }
        700024 => "the client assertion is not within its valid time range (check the clock)",
        70021 => {
            "no federated credential of the app matches the token's issuer, subject and audience"
        }
        _ => return None,
    })
}

fn rejected_message(
    status: u16,
    error: &str,
    aadsts: Option<u32>,
    description: &str,
    client_id: &str,
) -> String {
    let error = if error.is_empty() {
        "no error code"
    } else {
        error
    };
    match aadsts {
        Some(code) => {
            let what = match aadsts_hint(code) {
                Some(hint) => hint.to_string(),
                None => strip_aadsts_prefix(description).to_string(),
            };
            format!("AADSTS{code}: {what} for app {client_id} ({error}, HTTP {status})")
        }
        None if description.is_empty() => {
            format!("token request rejected for app {client_id} ({error}, HTTP {status})")
        }
        None => format!("{description} for app {client_id} ({error}, HTTP {status})"),
    }
}

fn strip_aadsts_prefix(description: &str) -> &str {
    match description.split_once(": ") {
        Some((head, rest)) if head.starts_with("AADSTS") => rest,
        _ => description,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_display_names_code_hint_app_and_status() {
        let e = AuthError::Rejected {
            status: 401,
            error: "invalid_client".into(),
            aadsts: Some(7000215),
            description: "AADSTS7000215: Invalid client secret provided.".into(),
            client_id: "app-1".into(),
        };
        assert_eq!(
            e.to_string(),
            "AADSTS7000215: invalid client secret for app app-1 (invalid_client, HTTP 401)"
        );
        assert_eq!(e.aadsts(), Some(7000215));
        assert!(!e.is_transient());
    }

    #[test]
    fn assertion_codes_get_hints_and_50027_keeps_its_varying_description() {
        let rejected = |code: u32, description: &str| AuthError::Rejected {
            status: 401,
            error: "invalid_client".into(),
            aadsts: Some(code),
            description: description.into(),
            client_id: "app-1".into(),
        };
        let e = rejected(
            70021,
            "AADSTS70021: No matching federated identity record found.",
        );
        assert_eq!(
            e.to_string(),
            "AADSTS70021: no federated credential of the app matches the token's issuer, subject and audience for app app-1 (invalid_client, HTTP 401)"
        );
        let e = rejected(
            50027,
            "AADSTS50027: Invalid JWT token. External ID token from issuer 'https://x' failed signature verification.",
        );
        assert!(e.to_string().contains("from issuer 'https://x'"), "{e}");
    }

    #[test]
    fn unknown_code_falls_back_to_the_description() {
        let e = AuthError::Rejected {
            status: 400,
            error: "invalid_request".into(),
            aadsts: Some(12345),
            description: "AADSTS12345: Something odd.".into(),
            client_id: "app-1".into(),
        };
        assert_eq!(
            e.to_string(),
            "AADSTS12345: Something odd. for app app-1 (invalid_request, HTTP 400)"
        );
    }

    #[test]
    fn transient_kinds() {
        assert!(AuthError::Timeout.is_transient());
        assert!(AuthError::Server { status: 503 }.is_transient());
        let t = AuthError::Throttled {
            retry_after: Some(Duration::from_secs(3)),
        };
        assert!(t.is_transient());
        assert_eq!(t.retry_after(), Some(Duration::from_secs(3)));
        assert!(!AuthError::Malformed("x".into()).is_transient());
        assert!(!AuthError::InvalidConfig("x".into()).is_transient());
    }
}
