//! The Entra ID side: the client-credentials token endpoint with its AADSTS errors, OpenID
//! discovery, JWKS, and the bearer-token check the proxy runs on every call.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, StatusCode};
use jsonwebtoken::{Algorithm, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::assertion;
use crate::config::AppConfig;
use crate::server::{Head, Reply, Shared, percent_decode};

/// Claims of the access tokens the emulator mints (a v1.0 app-only token, as Entra issues for
/// resources that do not ask for v2 tokens).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub aio: String,
    pub appid: String,
    pub appidacr: String,
    pub idp: String,
    pub idtyp: String,
    pub oid: String,
    pub rh: String,
    pub sub: String,
    pub tid: String,
    pub uti: String,
    pub ver: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Overrides for a token minted through [`crate::Control::mint_token`], for tests of the
/// proxy's token checks. Unset fields take what the token endpoint would issue.
#[derive(Clone, Debug, Default)]
pub struct TokenSpec {
    /// `appid`; default: the first configured app.
    pub client_id: Option<String>,
    /// `groups`; default: the app's groups.
    pub groups: Option<Vec<String>>,
    /// `aud`; default: the configured resource.
    pub audience: Option<String>,
    /// `iss`; default: `https://sts.windows.net/{tenant}/`.
    pub issuer: Option<String>,
    /// `exp - iat`; default: the configured token lifetime.
    pub lifetime_seconds: Option<i64>,
    /// Shifts `iat`/`nbf`/`exp` (negative: a token issued in the past).
    pub issued_offset_seconds: i64,
    /// Shifts `nbf` relative to `iat` (positive: not valid yet).
    pub not_before_offset_seconds: i64,
}

fn timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// An Entra error body: `error`, `error_description` starting `AADSTS<code>: `, `error_codes`,
/// `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
fn aad_error(status: StatusCode, error: &str, code: u32, message: &str) -> Reply {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = uuid::Uuid::new_v4().to_string();
    let timestamp = timestamp();
    Reply::json(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
    .header(CACHE_CONTROL, "no-store, no-cache")
    .header(PRAGMA, "no-cache")
}

fn unknown_tenant(tenant: &str) -> Reply {
    aad_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

fn missing(parameter: &str) -> Reply {
    aad_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{parameter}'."),
    )
}

/// The tenant id, or one of the tenant's domain names when configured.
fn known_tenant(shared: &Shared, tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(&shared.config.tenant_id)
        || shared
            .config
            .tenant_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(tenant))
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unplus = |s: &str| percent_decode(&s.replace('+', " "));
    Some((unplus(id), unplus(secret)))
}

/// A stable service principal object id for apps configured without one.
pub(crate) fn object_id(app: &AppConfig) -> String {
    if !app.object_id.is_empty() {
        return app.object_id.clone();
    }
    let digest = Sha256::digest(format!("service-principal:{}", app.client_id).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) fn token(shared: &Shared, tenant: &str, head: &Head, body: &Bytes) -> Reply {
    // Like Entra, only a form body is read: JSON or a missing content type reads as no
    // parameters at all (so `grant_type` is reported missing).
    let form = form_of(head, body);
    let basic = basic_credentials(&head.headers);
    let client_id = form
        .get("client_id")
        .cloned()
        .filter(|id| !id.is_empty())
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()));
    let reply = token_checked(shared, tenant, head, &form, basic, client_id.as_deref());
    reply.client(client_id)
}

fn token_checked(
    shared: &Shared,
    tenant: &str,
    head: &Head,
    form: &HashMap<String, String>,
    basic: Option<(String, String)>,
    client_id: Option<&str>,
) -> Reply {
    if head.method != Method::POST {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900561,
            &format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
                head.method
            ),
        );
    }
    if !known_tenant(shared, tenant) {
        return unknown_tenant(tenant);
    }
    let Some(grant_type) = form.get("grant_type").filter(|g| !g.is_empty()) else {
        return missing("grant_type");
    };
    if grant_type != "client_credentials" {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    let Some(client_id) = client_id else {
        return missing("client_id");
    };
    let Some(scope) = form.get("scope").filter(|s| !s.trim().is_empty()) else {
        return missing("scope");
    };
    if shared.config.scope_checked_first
        && let Err(reply) = check_scope(shared, tenant, scope)
    {
        return reply;
    }
    let app = {
        let state = shared.lock();
        state
            .apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
            .cloned()
    };
    let Some(app) = app else {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        );
    };
    if app.disabled {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            7000112,
            &format!("Application '{client_id}'({client_id}) is disabled."),
        );
    }
    if let Some(assertion) = form.get("client_assertion").filter(|a| !a.is_empty()) {
        if let Err(reply) = check_assertion(shared, &app, form, assertion, head) {
            return reply;
        }
    } else if let Err(reply) = check_secret(&app, client_id, form, basic) {
        return reply;
    }
    if !shared.config.scope_checked_first
        && let Err(reply) = check_scope(shared, tenant, scope)
    {
        return reply;
    }
    issue(shared, &app)
}

/// The token request's form, as [`token`] reads it.
fn form_of(head: &Head, body: &Bytes) -> HashMap<String, String> {
    let is_form = head
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if is_form {
        url::form_urlencoded::parse(body).into_owned().collect()
    } else {
        HashMap::new()
    }
}

/// Entra's clock, in seconds since the epoch.
fn entra_now(shared: &Shared) -> i64 {
    chrono::Utc::now()
        .timestamp()
        .saturating_add(shared.config.clock_skew_seconds)
}

fn leeway(shared: &Shared) -> i64 {
    i64::try_from(shared.config.token_leeway_seconds).unwrap_or(300)
}

/// The answer to a refused assertion: 401 `invalid_client` for the app's own credential
/// (signature, time range), 400 `invalid_request` for a token that does not fit (format,
/// issuer, audience, no federated credential).
fn refused(refusal: &assertion::Refusal) -> Reply {
    let (status, error) = match refusal.code {
        700027 | 700024 => (StatusCode::UNAUTHORIZED, "invalid_client"),
        _ => (StatusCode::BAD_REQUEST, "invalid_request"),
    };
    aad_error(status, error, refusal.code, &refusal.message)
}

/// For a token request with a federated client assertion: the federated credential it matches
/// and the check of its signature with the issuer's published keys. `None` for every other
/// request (those are checked in full when dispatched).
pub(crate) async fn verify_federated(
    shared: &Shared,
    head: &Head,
    body: &Bytes,
) -> Option<Result<(), assertion::Refusal>> {
    let form = form_of(head, body);
    let token = form.get("client_assertion").filter(|a| !a.is_empty())?;
    let client_id = form.get("client_id")?;
    let jwt = assertion::parse(token).ok()?;
    if assertion::is_certificate_assertion(&jwt) {
        return None;
    }
    let app = {
        let state = shared.lock();
        state
            .apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
            .cloned()
    }?;
    let credential = match assertion::matching_credential(&app, &jwt) {
        Ok(c) => c.clone(),
        Err(refusal) => return Some(Err(refusal)),
    };
    let http = shared
        .federation_http
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Some(
        assertion::check_federated(&http, &credential, &jwt, entra_now(shared), leeway(shared))
            .await,
    )
}

/// A client assertion in place of the secret: signed with a registered certificate, or a
/// federated token (checked before dispatch, see [`verify_federated`]).
fn check_assertion(
    shared: &Shared,
    app: &AppConfig,
    form: &HashMap<String, String>,
    token: &str,
    head: &Head,
) -> Result<(), Reply> {
    match form.get("client_assertion_type").filter(|t| !t.is_empty()) {
        None => return Err(missing("client_assertion_type")),
        Some(t) if t != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" => {
            return Err(aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                &format!("Invalid JWT token. Unsupported client_assertion_type '{t}'."),
            ));
        }
        Some(_) => {}
    }
    let jwt = assertion::parse(token).map_err(|r| refused(&r))?;
    if assertion::is_certificate_assertion(&jwt) {
        let mut endpoints = vec![format!(
            "{}/{}/oauth2/v2.0/token",
            shared.authority_url, shared.config.tenant_id
        )];
        for domain in &shared.config.tenant_domains {
            endpoints.push(format!(
                "{}/{domain}/oauth2/v2.0/token",
                shared.authority_url
            ));
        }
        assertion::check_certificate(app, &jwt, &endpoints, entra_now(shared), leeway(shared))
            .map_err(|r| refused(&r))
    } else {
        match &head.federated {
            Some(Ok(())) => Ok(()),
            Some(Err(r)) => Err(refused(r)),
            // Not verified before dispatch (the app was not found then): no match.
            None => Err(refused(
                &assertion::matching_credential(app, &jwt)
                    .err()
                    .unwrap_or_else(|| assertion::Refusal {
                        code: 50027,
                        message: "Invalid JWT token. The assertion could not be verified.".into(),
                    }),
            )),
        }
    }
}

fn check_secret(
    app: &AppConfig,
    client_id: &str,
    form: &HashMap<String, String>,
    basic: Option<(String, String)>,
) -> Result<(), Reply> {
    let secret = form
        .get("client_secret")
        .cloned()
        .filter(|s| !s.is_empty())
        .or_else(|| basic.map(|(_, secret)| secret).filter(|s| !s.is_empty()));
    let Some(secret) = secret else {
        return Err(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    if secret != app.client_secret {
        return Err(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        ));
    }
    if app.secret_expired {
        return Err(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            &format!(
                "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."
            ),
        ));
    }
    Ok(())
}

/// A token for `app`.
fn issue(shared: &Shared, app: &AppConfig) -> Reply {
    let lifetime = i64::try_from(shared.config.token_lifetime_seconds).unwrap_or(3599);
    let access_token = mint(
        shared,
        &TokenSpec {
            client_id: Some(app.client_id.clone()),
            groups: Some(app.groups.clone()),
            lifetime_seconds: Some(lifetime),
            ..TokenSpec::default()
        },
    );
    let Some(access_token) = access_token else {
        return aad_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            "There was an error issuing a token.",
        );
    };
    *shared
        .lock()
        .stats
        .tokens_issued
        .entry(app.client_id.clone())
        .or_default() += 1;
    Reply::json(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }),
    )
    .header(CACHE_CONTROL, "no-store, no-cache")
    .header(PRAGMA, "no-cache")
}

/// The scope must be `{resource}/.default` of the configured resource.
fn check_scope(shared: &Shared, tenant: &str, scope: &str) -> Result<(), Reply> {
    // OIDC scopes some libraries add are ignored; the resource scope is what counts, and a
    // token is for one resource only.
    let resource_scopes: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !matches!(*s, "openid" | "profile" | "offline_access"))
        .collect();
    if resource_scopes.len() > 1 {
        return Err(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            70011,
            &format!(
                "The provided value for the input parameter 'scope' is not valid. One or more scopes in '{scope}' are not compatible with each other."
            ),
        ));
    }
    let resource_scope = resource_scopes.first().copied().unwrap_or("");
    let Some(resource) = resource_scope.strip_suffix("/.default") else {
        return Err(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {resource_scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    if resource.trim_end_matches('/') != shared.config.resource.trim_end_matches('/') {
        return Err(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            &format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        ));
    }
    Ok(())
}

/// Signs a token. `None` only if signing itself fails.
pub(crate) fn mint(shared: &Shared, spec: &TokenSpec) -> Option<String> {
    let config = &shared.config;
    let app = {
        let state = shared.lock();
        match &spec.client_id {
            Some(id) => state
                .apps
                .iter()
                .find(|a| a.client_id.eq_ignore_ascii_case(id))
                .cloned()
                .unwrap_or_else(|| AppConfig {
                    client_id: id.clone(),
                    groups: Vec::new(),
                    ..AppConfig::default()
                }),
            None => state.apps.first().cloned().unwrap_or_default(),
        }
    };
    // Entra's clock runs `clockSkewSeconds` off the proxy's.
    let now = chrono::Utc::now()
        .timestamp()
        .saturating_add(config.clock_skew_seconds)
        .saturating_add(spec.issued_offset_seconds);
    let lifetime = spec
        .lifetime_seconds
        .unwrap_or_else(|| i64::try_from(config.token_lifetime_seconds).unwrap_or(3599));
    let issuer = spec
        .issuer
        .clone()
        .unwrap_or_else(|| issuer(&config.tenant_id));
    let oid = object_id(&app);
    let claims = AccessClaims {
        aud: spec
            .audience
            .clone()
            .unwrap_or_else(|| config.resource.clone()),
        idp: issuer.clone(),
        iss: issuer,
        iat: now,
        nbf: now.saturating_add(spec.not_before_offset_seconds),
        exp: now.saturating_add(lifetime),
        aio: uuid::Uuid::new_v4().simple().to_string(),
        appid: app.client_id.clone(),
        appidacr: "1".to_string(),
        idtyp: "app".to_string(),
        oid: oid.clone(),
        rh: "0.emulator".to_string(),
        sub: oid,
        tid: config.tenant_id.clone(),
        uti: uuid::Uuid::new_v4().simple().to_string(),
        ver: "1.0".to_string(),
        groups: spec.groups.clone().unwrap_or(app.groups),
    };
    let mut header = Header::new(Algorithm::RS256);
    let key = shared.key.current();
    header.kid = Some(key.kid.clone());
    header.x5t = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.encoding).ok()
}

fn issuer(tenant: &str) -> String {
    format!("https://sts.windows.net/{tenant}/")
}

fn unauthorized(message: &str) -> Reply {
    Reply::error(StatusCode::UNAUTHORIZED, "unauthorized", message).header(
        WWW_AUTHENTICATE,
        &format!("Bearer error=\"invalid_token\", error_description=\"{message}\""),
    )
}

/// The `appid` claim of a request's bearer token, read without checking the token (the
/// gateway's throttling keys on it before the proxy authenticates anything).
pub(crate) fn unverified_appid(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let payload = token.trim().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("appid")?.as_str().map(str::to_string)
}

/// Checks the bearer token of a proxy call: signature, `kid`, `aud`, `iss`, `exp`, `nbf`, then
/// membership of the cluster's security group.
pub(crate) fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<AccessClaims, Reply> {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(unauthorized("The request has no bearer token."));
    };
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(unauthorized(
                "The Authorization header is not a bearer token.",
            ));
        }
    };
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| unauthorized("The bearer token is malformed."))?;
    let Some(key) = header.kid.as_deref().and_then(|kid| shared.key.find(kid)) else {
        return Err(unauthorized(
            "The bearer token was signed with an unknown key.",
        ));
    };
    let config = &shared.config;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[config.resource.as_str()]);
    validation.set_issuer(&[issuer(&config.tenant_id)]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    validation.validate_nbf = true;
    validation.leeway = config.token_leeway_seconds;
    let data =
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation).map_err(|err| {
            unauthorized(match err.kind() {
                ErrorKind::ExpiredSignature => "The bearer token is expired.",
                ErrorKind::ImmatureSignature => "The bearer token is not valid yet.",
                ErrorKind::InvalidAudience => "The bearer token has the wrong audience.",
                ErrorKind::InvalidIssuer => "The bearer token has the wrong issuer.",
                ErrorKind::InvalidSignature => "The bearer token's signature is invalid.",
                _ => "The bearer token is malformed.",
            })
        })?;
    let claims = data.claims;
    if !claims
        .groups
        .iter()
        .any(|g| g.eq_ignore_ascii_case(&config.cluster_group_id))
    {
        return Err(Reply::error(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!(
                "The app '{}' is not a member of the cluster's security group '{}'; add its service principal to the group.",
                claims.appid, config.cluster_group_id
            ),
        )
        .client(Some(claims.appid.clone())));
    }
    Ok(claims)
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) fn discovery(shared: &Shared, tenant: &str) -> Reply {
    if !known_tenant(shared, tenant) {
        return unknown_tenant(tenant);
    }
    let base = format!("{}/{}", shared.authority_url, shared.config.tenant_id);
    Reply::json(
        StatusCode::OK,
        &json!({
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/v2.0"),
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
            "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "ver", "oid"],
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
        }),
    )
}

/// `GET /{tenant}/discovery/v2.0/keys`.
pub(crate) fn jwks(shared: &Shared, tenant: &str) -> Reply {
    if !known_tenant(shared, tenant) {
        return unknown_tenant(tenant);
    }
    let issuer = format!("{}/{}/v2.0", shared.authority_url, shared.config.tenant_id);
    let keys: Vec<serde_json::Value> = shared
        .key
        .served()
        .iter()
        .map(|key| {
            json!({
                "kty": "RSA",
                "use": "sig",
                "kid": key.kid,
                "x5t": key.kid,
                "n": key.n,
                "e": key.e,
                "issuer": issuer,
            })
        })
        .collect();
    Reply::json(StatusCode::OK, &json!({ "keys": keys }))
}
