//! Workload identity: a Kubernetes ServiceAccount token, requested from the API server
//! (TokenRequest) for the audience Entra ID expects, exchanged as a client assertion.
//!
//! Entra ID's workload identity federation
//! (https://learn.microsoft.com/entra/workload-id/workload-identity-federation) trusts the token
//! when a federated credential of the app names its issuer (the cluster's OIDC issuer), its
//! subject (`system:serviceaccount:NAMESPACE:NAME`) and the audience
//! `api://AzureADTokenExchange`. The operator requests the token for the proxy's
//! ServiceAccount itself — cert-manager's pattern for per-issuer identities — so the
//! ServiceAccount needs no Pod, and the operator needs `create` on `serviceaccounts/token` where
//! proxies live.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};

use super::assertion::AssertionSource;
use super::error::AuthError;
use super::secret::SecretString;

/// Audience of the tokens (Entra ID's token exchange).
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Lifetime asked for: the shortest the API server grants (10 minutes). The token is only
/// presented to Entra ID when an access token is fetched.
pub const SERVICE_ACCOUNT_TOKEN_SECONDS: i64 = 600;
/// A cached token is replaced when less than this is left.
pub const SERVICE_ACCOUNT_TOKEN_MARGIN: Duration = Duration::from_secs(300);

struct Cached {
    token: SecretString,
    expires_at: SystemTime,
}

/// Tokens of one ServiceAccount, cached until [`SERVICE_ACCOUNT_TOKEN_MARGIN`] before expiry.
/// Callers are serialised by the [`super::TokenProvider`]'s single flight.
pub struct ServiceAccountTokenSource {
    api: Api<ServiceAccount>,
    namespace: String,
    name: String,
    cached: Mutex<Option<Cached>>,
}

impl ServiceAccountTokenSource {
    pub fn new(kube: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(kube, namespace),
            namespace: namespace.to_string(),
            name: name.to_string(),
            cached: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl AssertionSource for ServiceAccountTokenSource {
    async fn assertion(&self) -> Result<SecretString, AuthError> {
        if let Some(c) = self.lock().as_ref()
            && c.expires_at
                .duration_since(SystemTime::now())
                .is_ok_and(|left| left > SERVICE_ACCOUNT_TOKEN_MARGIN)
        {
            return Ok(c.token.clone());
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![TOKEN_EXCHANGE_AUDIENCE.to_string()],
                expiration_seconds: Some(SERVICE_ACCOUNT_TOKEN_SECONDS),
                bound_object_ref: None,
            },
            ..TokenRequest::default()
        };
        let what = self.describe();
        let answer = self
            .api
            .create_token_request(&self.name, &PostParams::default(), &request)
            .await
            .map_err(|e| match &e {
                // Refused (no such ServiceAccount, no RBAC permission): fixing it takes a person.
                kube::Error::Api(s) if (400..500).contains(&s.code) && s.code != 429 => {
                    AuthError::InvalidConfig(format!("cannot get a token of {what}: {}", s.message))
                }
                _ => AuthError::Transport(format!("cannot get a token of {what}: {e}")),
            })?;
        let status = answer.status.ok_or_else(|| {
            AuthError::Malformed(format!("the TokenRequest of {what} has no status"))
        })?;
        if status.token.is_empty() {
            return Err(AuthError::Malformed(format!(
                "the TokenRequest of {what} returned no token"
            )));
        }
        let expires_at = SystemTime::from(status.expiration_timestamp.0);
        let token = SecretString::new(status.token);
        *self.lock() = Some(Cached {
            token: token.clone(),
            expires_at,
        });
        Ok(token)
    }

    fn invalidate(&self) {
        *self.lock() = None;
    }

    fn describe(&self) -> String {
        format!("ServiceAccount {}/{}", self.namespace, self.name)
    }
}
