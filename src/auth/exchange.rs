//! The client-credentials grant (RFC 6749 §4.4) through the `oauth2` crate, with Entra ID's
//! wire types and our own HTTP client.
//!
//! `oauth2` builds the form and parses the answer; what stays ours is the transport: the
//! operator's reqwest client (its TLS roots, timeouts and proxy settings), a capped body read,
//! `Retry-After`, and the mapping of every outcome onto [`AuthError`] without any secret in it.
//! Certificate and workload-identity credentials are sent as a JWT client assertion
//! (RFC 7523 §2.2): no client secret, `client_assertion_type` and `client_assertion` as extra
//! form parameters.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse,
    RequestTokenError, Scope, StandardRevocableToken, TokenUrl,
};
use serde::{Deserialize, Serialize};
use url::Url;

use super::assertion::JWT_BEARER;
use super::error::AuthError;
use super::http::{BodyError, error_text, read_capped, retry_after};
use super::secret::SecretString;

/// Largest token endpoint response we read; real ones are a few KiB.
pub const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// The longest token lifetime accepted from the token endpoint (a week).
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// How the app proves who it is in one token request.
pub(crate) enum Credential<'a> {
    /// `client_secret` in the form body (Entra ID's `client_secret_post`).
    Secret(&'a SecretString),
    /// `client_assertion` + `client_assertion_type` (RFC 7523), no secret.
    Assertion(&'a SecretString),
}

impl Credential<'_> {
    fn secret(&self) -> &str {
        match self {
            Credential::Secret(s) | Credential::Assertion(s) => s.expose(),
        }
    }
}

/// What one token request came to.
pub(crate) enum Outcome {
    /// A token and its lifetime.
    Token(String, Duration),
    /// A 4xx answer: Entra ID refused the credential or the request.
    Rejected(AuthError),
}

/// The `oauth2` client for Entra ID: our error and token types, a token URL and nothing else.
type EntraClient = oauth2::Client<
    EntraErrorResponse,
    EntraTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Sends one client-credentials request to `token_url` and maps the answer. Every error text
/// has `credential` scrubbed from it.
pub(crate) async fn request_token(
    http: &reqwest::Client,
    token_url: &Url,
    client_id: &str,
    scope: &str,
    credential: Credential<'_>,
) -> Result<Outcome, AuthError> {
    let mut client: EntraClient = oauth2::Client::new(ClientId::new(client_id.to_string()))
        .set_token_uri(TokenUrl::from_url(token_url.clone()))
        // Entra ID takes the credential in the body (client_secret_post); Basic auth would need
        // the secret URL-encoded twice, which Entra does not expect.
        .set_auth_type(AuthType::RequestBody);
    if let Credential::Secret(secret) = &credential {
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    let mut request = client
        .exchange_client_credentials()
        .add_scope(Scope::new(scope.to_string()));
    if let Credential::Assertion(assertion) = &credential {
        request = request
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", assertion.expose().to_string());
    }
    let transport = Transport::new(http);
    let result = request.request_async(&transport).await;
    let status = transport.status();
    match result {
        Ok(response) => response.validate().map(|(t, d)| Outcome::Token(t, d)),
        Err(RequestTokenError::Request(e)) => Err(e),
        Err(RequestTokenError::ServerResponse(parsed)) => Ok(Outcome::Rejected(rejection(
            status,
            parsed,
            &transport.body(),
            client_id,
            credential.secret(),
        ))),
        // A 4xx whose body is not Entra's error JSON (or is empty): the text itself, scrubbed.
        Err(RequestTokenError::Parse(_, body)) if is_client_error(status) => {
            Ok(Outcome::Rejected(rejection(
                status,
                EntraErrorResponse::default(),
                &body,
                client_id,
                credential.secret(),
            )))
        }
        Err(RequestTokenError::Other(_)) if is_client_error(status) => {
            Ok(Outcome::Rejected(rejection(
                status,
                EntraErrorResponse::default(),
                &transport.body(),
                client_id,
                credential.secret(),
            )))
        }
        Err(RequestTokenError::Parse(e, _)) => Err(AuthError::Malformed(scrub(
            &format!("token response is not JSON: {e}"),
            credential.secret(),
        ))),
        Err(RequestTokenError::Other(text)) => Err(AuthError::Malformed(scrub(
            &format!("token response: {text}"),
            credential.secret(),
        ))),
    }
}

fn is_client_error(status: Option<u16>) -> bool {
    matches!(status, Some(400..=499))
}

/// The HTTP client `oauth2` calls: the operator's reqwest client, one request, body capped at
/// [`TOKEN_BODY_LIMIT`]. 429 and 5xx never reach `oauth2` (it would read any non-200 as an
/// OAuth error body and drop the status); they become [`AuthError::Throttled`] and
/// [`AuthError::Server`] here. 200 and 4xx go on to `oauth2`, and the status and body are
/// kept for the rejection text.
struct Transport<'h> {
    http: &'h reqwest::Client,
    seen: Mutex<Option<(u16, Vec<u8>)>>,
}

impl<'h> Transport<'h> {
    fn new(http: &'h reqwest::Client) -> Self {
        Self {
            http,
            seen: Mutex::new(None),
        }
    }

    fn status(&self) -> Option<u16> {
        self.lock().as_ref().map(|(s, _)| *s)
    }

    fn body(&self) -> Vec<u8> {
        self.lock()
            .as_ref()
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u16, Vec<u8>)>> {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, AuthError> {
        let request = reqwest::Request::try_from(request)
            .map_err(|e| AuthError::InvalidConfig(format!("token request: {}", error_text(&e))))?;
        let response = self.http.execute(request).await.map_err(|e| {
            if e.is_timeout() {
                AuthError::Timeout
            } else {
                AuthError::Transport(error_text(&e))
            }
        })?;
        let status = response.status();
        let retry = retry_after(response.headers());
        let headers = response.headers().clone();
        let body = read_capped(response, TOKEN_BODY_LIMIT)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge => AuthError::Malformed(format!(
                    "the response body exceeds {TOKEN_BODY_LIMIT} bytes"
                )),
                BodyError::Timeout => AuthError::Timeout,
                BodyError::Transport(t) => AuthError::Transport(t),
            })?;
        match status.as_u16() {
            200 | 400..=428 | 430..=499 => {}
            429 => return Err(AuthError::Throttled { retry_after: retry }),
            code @ 500..=599 => return Err(AuthError::Server { status: code }),
            // RFC 6749 §5.1: a token comes with 200 OK. Anything else (a redirect to a login
            // page, 204) is not an answer to the grant.
            other => {
                return Err(AuthError::Malformed(format!(
                    "unexpected HTTP status {other}"
                )));
            }
        }
        *self.lock() = Some((status.as_u16(), body.clone()));
        let mut response = oauth2::http::Response::new(body);
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for Transport<'_> {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, AuthError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// `expires_in` is an integer on the wire; some servers send it as a string.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum Seconds {
    Int(u64),
    Text(String),
}

/// A successful token response (RFC 6749 §5.1) as Entra ID sends it. Fields are optional here
/// so that a missing one is reported by name by [`EntraTokenResponse::validate`].
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct EntraTokenResponse {
    #[serde(default = "no_token")]
    access_token: oauth2::AccessToken,
    #[serde(default = "bearer")]
    token_type: BasicTokenType,
    #[serde(default)]
    expires_in: Option<Seconds>,
}

fn no_token() -> oauth2::AccessToken {
    oauth2::AccessToken::new(String::new())
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

impl EntraTokenResponse {
    /// The token and its lifetime, or why the response is unusable.
    fn validate(self) -> Result<(String, Duration), AuthError> {
        let token = self.access_token.into_secret();
        if token.is_empty() {
            return Err(AuthError::Malformed(
                "token response has no access_token".into(),
            ));
        }
        let secs = match self.expires_in {
            Some(Seconds::Int(n)) => n,
            Some(Seconds::Text(s)) => s.trim().parse().map_err(|_| {
                AuthError::Malformed("token response has a non-numeric expires_in".into())
            })?,
            None => {
                return Err(AuthError::Malformed(
                    "token response has no expires_in".into(),
                ));
            }
        };
        // Entra ID issues tokens for at most a day; anything beyond a week is not a real answer
        // (and would overflow the clock when added to it).
        if secs > MAX_TOKEN_LIFETIME_SECS {
            return Err(AuthError::Malformed(format!(
                "token response has an implausible expires_in ({secs} s)"
            )));
        }
        Ok((token, Duration::from_secs(secs)))
    }
}

impl oauth2::TokenResponse for EntraTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &oauth2::AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        match &self.expires_in {
            Some(Seconds::Int(n)) => Some(Duration::from_secs(*n)),
            Some(Seconds::Text(s)) => s.trim().parse().ok().map(Duration::from_secs),
            None => None,
        }
    }

    fn refresh_token(&self) -> Option<&oauth2::RefreshToken> {
        None
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        None
    }
}

/// Entra ID's error response: RFC 6749 §5.2's `error` and `error_description`, plus Entra's
/// `error_codes` (the AADSTS numbers).
#[derive(Debug, Default, Deserialize, Serialize)]
pub(crate) struct EntraErrorResponse {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Option<Vec<u32>>,
}

// Shown only inside `oauth2`'s own error type, which never leaves this module.
impl fmt::Display for EntraErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.error.as_deref().unwrap_or("error response"))
    }
}

impl oauth2::ErrorResponse for EntraErrorResponse {}

/// Decodes a 2xx token response into the token and its lifetime. Public so that the decoder
/// can be exercised on arbitrary bytes by the property tests and the fuzzer.
pub fn decode_success(body: &[u8]) -> Result<(String, Duration), AuthError> {
    let parsed: EntraTokenResponse = serde_json::from_slice(body)
        .map_err(|e| AuthError::Malformed(format!("token response is not JSON: {e}")))?;
    parsed.validate()
}

/// Decodes a 4xx token response (Entra ID error JSON, or any text) into
/// [`AuthError::Rejected`], with `secret` scrubbed from the description.
pub fn decode_rejection(status: u16, body: &[u8], client_id: &str, secret: &str) -> AuthError {
    let parsed: EntraErrorResponse = serde_json::from_slice(body).unwrap_or_default();
    rejection(Some(status), parsed, body, client_id, secret)
}

/// [`AuthError::Rejected`] from a parsed error response; `raw` is the body, used as the
/// description when the JSON has none.
fn rejection(
    status: Option<u16>,
    parsed: EntraErrorResponse,
    raw: &[u8],
    client_id: &str,
    secret: &str,
) -> AuthError {
    let text = String::from_utf8_lossy(raw);
    let description_source = parsed.error_description.as_deref().unwrap_or(&text);
    // Scrub before shortening: a secret cut in half by the limit would not be found after.
    let first_line = scrub(
        description_source.lines().next().unwrap_or("").trim(),
        secret,
    );
    let description = super::http::shorten(&first_line, 300);
    let aadsts = parsed
        .error_codes
        .as_ref()
        .and_then(|codes| codes.first().copied())
        .or_else(|| aadsts_in(description_source));
    AuthError::Rejected {
        status: status.unwrap_or(400),
        error: super::http::shorten(
            &scrub(parsed.error.as_deref().unwrap_or_default(), secret),
            100,
        ),
        aadsts,
        description,
        client_id: client_id.to_string(),
    }
}

fn scrub(text: &str, secret: &str) -> String {
    if !secret.is_empty() && text.contains(secret) {
        text.replace(secret, "<redacted>")
    } else {
        text.to_string()
    }
}

/// The number after the first "AADSTS" in `text`.
fn aadsts_in(text: &str) -> Option<u32> {
    let start = text.find("AADSTS")? + "AADSTS".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_decoder_accepts_integer_and_string_lifetimes() {
        let (t, d) = decode_success(br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"abc"}"#)
            .expect("valid");
        assert_eq!((t.as_str(), d), ("abc", Duration::from_secs(3599)));
        let (_, d) = decode_success(br#"{"expires_in":"60","access_token":"abc"}"#).expect("valid");
        assert_eq!(d, Duration::from_secs(60));
        assert!(matches!(
            decode_success(b"<html>"),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            decode_success(br#"{"expires_in":1}"#),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            decode_success(br#"{"access_token":"x"}"#),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn rejection_decoder_reads_codes_and_first_line() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys are expired.\r\nTrace ID: 1\r\nCorrelation ID: 2","error_codes":[7000222]}"#;
        let e = decode_rejection(401, body, "app", "s3cret");
        match &e {
            AuthError::Rejected {
                status,
                error,
                aadsts,
                description,
                client_id,
            } => {
                assert_eq!(*status, 401);
                assert_eq!(error, "invalid_client");
                assert_eq!(*aadsts, Some(7000222));
                assert_eq!(
                    description,
                    "AADSTS7000222: The provided client secret keys are expired."
                );
                assert_eq!(client_id, "app");
            }
            other => panic!("unexpected {other:?}"),
        }
        // No error_codes: the code comes from the description.
        let e = decode_rejection(
            400,
            br#"{"error":"invalid_scope","error_description":"AADSTS1002012: bad scope"}"#,
            "app",
            "s",
        );
        assert_eq!(e.aadsts(), Some(1002012));
        // Not JSON at all, and echoing the secret: still typed, secret scrubbed.
        let e = decode_rejection(400, b"bad request for s3cret", "app", "s3cret");
        assert!(!e.to_string().contains("s3cret"));
        assert_eq!(e.aadsts(), None);
    }
}
