//! The token cache: one client-credentials grant at a time (single flight), cached until shortly
//! before expiry, typed errors. The grant itself is in [`super::exchange`].

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use url::Url;

use super::error::AuthError;
use super::exchange::{Credential, Outcome, request_token};
use super::secret::{ClientAuth, ClientCredentials, SecretString};
/// Default time for one token request, body included.
pub const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Tokens are refreshed this long before they expire (or at half their lifetime if shorter).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A failed early refresh falls back to the current token while it has at least this long
/// left (or a quarter of its lifetime, when that is shorter).
pub const REFRESH_GUARD: Duration = Duration::from_secs(30);
/// After a failed early refresh, the next attempt waits this long (at most half the time left).
pub const REFRESH_RETRY: Duration = Duration::from_secs(10);

/// A bearer token and when it expires. `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    expires_at: SystemTime,
}

impl AccessToken {
    pub fn new(secret: impl Into<String>, expires_at: SystemTime) -> Self {
        Self {
            secret: SecretString::new(secret),
            expires_at,
        }
    }

    /// The token, for the `Authorization` header only.
    pub fn secret(&self) -> &str {
        self.secret.expose()
    }

    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &self.secret)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Hooks for metrics: one call per token request and one per token obtained.
pub trait AuthObserver: Send + Sync {
    fn token_request(&self, _ok: bool) {}
    fn token_expiry(&self, _expires_at: SystemTime) {}
}

pub struct NoopAuthObserver;
impl AuthObserver for NoopAuthObserver {}

struct Cached {
    token: AccessToken,
    lifetime: Duration,
    refresh_at: Instant,
}

#[derive(Default)]
struct State {
    token: Option<Cached>,
    /// Number of token requests finished; a caller that saw this change while it waited for the
    /// flight shares that request's outcome instead of starting another.
    completed: u64,
    /// The error of request number `.0`, handed to the callers that waited for it.
    last_error: Option<(u64, AuthError)>,
}

/// Hands out access tokens for one app and scope. `Send + Sync`; share it with an `Arc`.
///
/// Rules: a token is reused until [`REFRESH_MARGIN`] before its expiry, or until half its
/// lifetime when that comes first; at most one token request is in flight, and every caller that
/// waited for it gets its result (token or error) instead of starting another request. When such
/// an early refresh fails, the current token keeps being used while it is valid for at least
/// [`REFRESH_GUARD`] (or a quarter of its lifetime), with another refresh attempt after
/// [`REFRESH_RETRY`].
pub struct TokenProvider {
    http: reqwest::Client,
    token_url: Url,
    scope: String,
    credentials: ClientCredentials,
    observer: Arc<dyn AuthObserver>,
    timeout: Duration,
    state: Mutex<State>,
    flight: tokio::sync::Mutex<()>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("token_url", &self.token_url.as_str())
            .field("scope", &self.scope)
            .field("client_id", &self.credentials.client_id)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    /// `authority` is the Entra ID host (`https://login.microsoftonline.com`); the token endpoint
    /// is `{authority}/{tenant}/oauth2/v2.0/token`.
    pub fn new(
        http: reqwest::Client,
        authority: &Url,
        scope: &str,
        credentials: ClientCredentials,
        observer: Arc<dyn AuthObserver>,
    ) -> Result<Self, AuthError> {
        let token_url = token_url(authority, &credentials.tenant_id)?;
        if credentials.client_id.trim().is_empty() {
            return Err(AuthError::InvalidConfig("the client id is empty".into()));
        }
        if scope.trim().is_empty() {
            return Err(AuthError::InvalidConfig("the scope is empty".into()));
        }
        Ok(Self {
            http,
            token_url,
            scope: scope.to_string(),
            credentials,
            observer,
            timeout: TOKEN_TIMEOUT,
            state: Mutex::new(State::default()),
            flight: tokio::sync::Mutex::new(()),
        })
    }

    /// Time allowed for one token request including its body (default [`TOKEN_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn client_id(&self) -> &str {
        &self.credentials.client_id
    }

    /// The token endpoint this provider posts to.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// A valid token: the cached one, or a fresh one from a single request shared by all callers.
    pub async fn token(&self) -> Result<AccessToken, AuthError> {
        let seen = {
            let state = self.lock();
            if let Some(token) = fresh(&state) {
                return Ok(token);
            }
            state.completed
        };
        let _flight = self.flight.lock().await;
        {
            let state = self.lock();
            if let Some(token) = fresh(&state) {
                return Ok(token);
            }
            // A request finished while we waited. If it brought a token (or kept the current
            // one), `fresh` handed it out above; if it failed, share its error, as its own
            // caller got it, rather than a token that caller was refused.
            if state.completed != seen
                && let Some((n, e)) = &state.last_error
                && *n == state.completed
            {
                return Err(e.clone());
            }
        }
        let result = self.fetch().await;
        self.observer.token_request(result.is_ok());
        let mut state = self.lock();
        state.completed += 1;
        match result {
            Ok((token, lifetime)) => {
                self.observer.token_expiry(token.expires_at);
                let margin = REFRESH_MARGIN.min(lifetime / 2);
                state.token = Some(Cached {
                    token: token.clone(),
                    lifetime,
                    refresh_at: crate::clock::instant_after(
                        Instant::now(),
                        lifetime.saturating_sub(margin),
                    ),
                });
                state.last_error = None;
                Ok(token)
            }
            Err(e) => {
                // An early refresh failed but the current token is still good for a while: keep
                // using it and try again a little later, so an Entra ID outage shorter than the
                // refresh margin goes unnoticed.
                if let Some(cached) = state.token.as_mut()
                    && let Ok(left) = cached.token.expires_at.duration_since(SystemTime::now())
                    && left > REFRESH_GUARD.min(cached.lifetime / 4)
                {
                    tracing::warn!(client_id = %self.credentials.client_id, error = %e, "token refresh failed; using the current token until it expires");
                    cached.refresh_at =
                        crate::clock::instant_after(Instant::now(), REFRESH_RETRY.min(left / 2));
                    return Ok(cached.token.clone());
                }
                state.last_error = Some((state.completed, e.clone()));
                Err(e)
            }
        }
    }

    /// Forget the cached token; the next [`token`](Self::token) call fetches a new one.
    pub fn invalidate(&self) {
        self.lock().token = None;
    }

    /// Forget `token` if it is still the cached one. Many requests failing with the same stale
    /// token then cause one refresh, not one each.
    pub fn invalidate_token(&self, token: &AccessToken) {
        let mut state = self.lock();
        if state
            .token
            .as_ref()
            .is_some_and(|c| c.token.secret() == token.secret())
        {
            state.token = None;
        }
    }

    /// Expiry of the cached token, if there is one.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.lock().token.as_ref().map(|c| c.token.expires_at)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent across a panic in another holder (plain field writes).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn fetch(&self) -> Result<(AccessToken, Duration), AuthError> {
        match tokio::time::timeout(self.timeout, self.fetch_inner()).await {
            Ok(result) => result,
            Err(_) => Err(AuthError::Timeout),
        }
    }

    async fn fetch_inner(&self) -> Result<(AccessToken, Duration), AuthError> {
        // The credential: a secret, or a JWT client assertion (RFC 7523) signed with the app's
        // certificate or issued by a federated identity provider. Either is scrubbed from any
        // rejection text.
        let assertion = match &self.credentials.auth {
            ClientAuth::Secret(_) => None,
            ClientAuth::Certificate(certificate) => Some(certificate.assertion(
                &self.credentials.client_id,
                self.token_url.as_str(),
                SystemTime::now(),
            )?),
            ClientAuth::Federated(source) => Some(source.assertion().await?),
        };
        let credential = match (&self.credentials.auth, &assertion) {
            (_, Some(assertion)) => Credential::Assertion(assertion),
            (ClientAuth::Secret(secret), None) => Credential::Secret(secret),
            (_, None) => {
                return Err(AuthError::InvalidConfig(
                    "no credential to send to the token endpoint".into(),
                ));
            }
        };
        let outcome = request_token(
            &self.http,
            &self.token_url,
            &self.credentials.client_id,
            &self.scope,
            credential,
        )
        .await?;
        match outcome {
            Outcome::Token(secret, lifetime) => {
                let now = SystemTime::now();
                Ok((
                    AccessToken::new(secret, crate::clock::system_after(now, lifetime)),
                    lifetime,
                ))
            }
            Outcome::Rejected(rejection) => {
                if let ClientAuth::Federated(source) = &self.credentials.auth {
                    // The federated token may be what was refused (expired, revoked): the next
                    // attempt asks for a new one.
                    source.invalidate();
                }
                Err(rejection)
            }
        }
    }
}

fn fresh(state: &State) -> Option<AccessToken> {
    state
        .token
        .as_ref()
        .filter(|c| Instant::now() < c.refresh_at)
        .map(|c| c.token.clone())
}

fn token_url(authority: &Url, tenant: &str) -> Result<Url, AuthError> {
    let tenant = tenant.trim();
    if tenant.is_empty() || tenant.contains('/') {
        return Err(AuthError::InvalidConfig(format!(
            "tenant id {tenant:?} is not a tenant id or domain"
        )));
    }
    if !matches!(authority.scheme(), "https" | "http") {
        return Err(AuthError::InvalidConfig(format!(
            "authority {authority} is not an https URL"
        )));
    }
    let mut url = authority.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| AuthError::InvalidConfig(format!("authority {authority} has no path")))?
        .pop_if_empty()
        .extend([tenant, "oauth2", "v2.0", "token"]);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_url_joins_authority_and_tenant() {
        let a = Url::parse("https://login.microsoftonline.com").expect("valid");
        assert_eq!(
            token_url(&a, "t1").expect("ok").as_str(),
            "https://login.microsoftonline.com/t1/oauth2/v2.0/token"
        );
        let b = Url::parse("https://127.0.0.1:8443/prefix/").expect("valid");
        assert_eq!(
            token_url(&b, "t1").expect("ok").as_str(),
            "https://127.0.0.1:8443/prefix/t1/oauth2/v2.0/token"
        );
        assert!(matches!(
            token_url(&a, ""),
            Err(AuthError::InvalidConfig(_))
        ));
        assert!(matches!(
            token_url(&a, "a/b"),
            Err(AuthError::InvalidConfig(_))
        ));
    }
}
