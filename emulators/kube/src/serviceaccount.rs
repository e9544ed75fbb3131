//! ServiceAccount tokens: TokenRequest (`POST .../serviceaccounts/NAME/token`), validating the
//! tokens as bearer credentials, and service account issuer discovery
//! (`/.well-known/openid-configuration`, `/openid/v1/jwks`).
//!
//! Upstream: kubernetes `pkg/registry/core/serviceaccount/storage/token.go` (TokenRequest),
//! `pkg/serviceaccount/claims.go` (claims and their validation), `pkg/apis/authentication/
//! validation/validation.go` (expirationSeconds bounds), `pkg/serviceaccount/openidmetadata.go`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{SecondsFormat, TimeZone, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::authn::UserInfo;
use crate::server::{Shared, lock};
use crate::status::ApiError;

/// TokenRequest's default `expirationSeconds` (the API default).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest token a TokenRequest may ask for.
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// How far `exp` and `nbf` may be off (go-jose's `jwt.DefaultLeeway`).
const LEEWAY_SECONDS: u64 = 60;

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    n: String,
    e: String,
}

/// The issuer of ServiceAccount tokens: its URL, the API audiences, and the signing key
/// (generated on first use: 2048-bit RSA takes seconds in a debug build).
pub(crate) struct Issuer {
    pub issuer: String,
    /// Where the JWKS is served (the server's own URL).
    pub base_url: String,
    /// Tokens are accepted as credentials only with one of these audiences (kube-apiserver's
    /// `--api-audiences`, which defaults to the issuer).
    pub api_audiences: Vec<String>,
    key: OnceLock<Result<Arc<SigningKey>, String>>,
}

impl Issuer {
    pub fn new(issuer: String, base_url: String) -> Self {
        Self {
            api_audiences: vec![issuer.clone()],
            issuer,
            base_url,
            key: OnceLock::new(),
        }
    }

    fn key(&self) -> Result<Arc<SigningKey>, ApiError> {
        self.key
            .get_or_init(|| load_key().map(Arc::new).map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(|e| {
                ApiError::new(
                    500,
                    "InternalError",
                    format!("the service account signing key is not available: {e}"),
                )
            })
    }
}

static PROCESS_KEY: Mutex<Option<String>> = Mutex::new(None);
const CACHE_FILE: &str = "kube-emulator-service-account-key.pem";

/// The process-wide key, cached in the temporary directory so that test processes share it.
fn load_key() -> anyhow::Result<SigningKey> {
    let pem = {
        let mut cached = lock(&PROCESS_KEY);
        match cached.as_ref() {
            Some(pem) => pem.clone(),
            None => {
                let pem = load_or_create(&std::env::temp_dir().join(CACHE_FILE))?;
                *cached = Some(pem.clone());
                pem
            }
        }
    };
    let key = parse_key(&pem).context("the signing key is not an RSA private key")?;
    let pkcs1 = key
        .to_pkcs1_pem(LineEnding::LF)
        .context("encoding the signing key")?;
    let encoding = EncodingKey::from_rsa_pem(pkcs1.as_bytes()).context("an RS256 key")?;
    let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
    let decoding = DecodingKey::from_rsa_components(&n, &e).context("the verification key")?;
    // Like kube-apiserver: the key id is the SHA-256 of the public key's PKIX DER form.
    let der = key
        .to_public_key()
        .to_public_key_der()
        .context("encoding the public key")?;
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_bytes()));
    Ok(SigningKey {
        kid,
        encoding,
        decoding,
        n,
        e,
    })
}

fn parse_key(pem: &str) -> Option<rsa::RsaPrivateKey> {
    rsa::RsaPrivateKey::from_pkcs1_pem(pem)
        .ok()
        .or_else(|| rsa::RsaPrivateKey::from_pkcs8_pem(pem).ok())
}

fn load_or_create(path: &Path) -> anyhow::Result<String> {
    if let Ok(pem) = std::fs::read_to_string(path)
        && parse_key(&pem).is_some()
    {
        return Ok(pem);
    }
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .context("generating the RSA signing key")?;
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .context("encoding the signing key")?
        .to_string();
    // A unique file renamed into place: concurrent processes never read half a key.
    let tmp = PathBuf::from(format!("{}.{}.tmp", path.display(), uuid::Uuid::new_v4()));
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        out.write_all(pem.as_bytes())?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(pem)
}

#[derive(Debug, Serialize, Deserialize)]
struct Ref {
    name: String,
    uid: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct KubernetesClaim {
    namespace: String,
    serviceaccount: Ref,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    aud: Vec<String>,
    exp: i64,
    iat: i64,
    iss: String,
    jti: String,
    #[serde(rename = "kubernetes.io")]
    kubernetes: KubernetesClaim,
    nbf: i64,
    sub: String,
}

fn service_account_def(shared: &Shared) -> Option<Arc<crate::resources::ResourceDef>> {
    lock(&shared.store).find("", "v1", "serviceaccounts")
}

fn invalid_token_request(name: &str, value: i64, why: &str) -> ApiError {
    let message = format!("Invalid value: {value}: {why}");
    let mut e = ApiError::new(
        422,
        "Invalid",
        format!(
            "TokenRequest.authentication.k8s.io {name:?} is invalid: spec.expirationSeconds: {message}"
        ),
    );
    e.details = Some(json!({
        "name": name,
        "group": "authentication.k8s.io",
        "kind": "TokenRequest",
        "causes": [{"reason": "FieldValueInvalid", "message": message, "field": "spec.expirationSeconds"}],
    }));
    e
}

/// `POST /api/v1/namespaces/NS/serviceaccounts/NAME/token`.
pub(crate) fn token_request(
    shared: &Shared,
    namespace: &str,
    name: &str,
    body: &Value,
) -> Result<(u16, Value), ApiError> {
    if let Some(kind) = body.get("kind").and_then(Value::as_str)
        && kind != "TokenRequest"
    {
        return Err(ApiError::bad_request(format!(
            "the kind of the object ({kind}) does not match TokenRequest"
        )));
    }
    let request_name = body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let expiration = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| ApiError::bad_request("spec.expirationSeconds must be an integer"))?,
    };
    if expiration < MIN_EXPIRATION_SECONDS {
        return Err(invalid_token_request(
            request_name,
            expiration,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        return Err(invalid_token_request(
            request_name,
            expiration,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if spec.get("boundObjectRef").is_some_and(|r| !r.is_null()) {
        return Err(ApiError::bad_request(
            "binding a token to an object (boundObjectRef) is not supported by this emulator",
        ));
    }
    let def = service_account_def(shared)
        .ok_or_else(|| ApiError::new(500, "InternalError", "serviceaccounts are not served"))?;
    let sa = lock(&shared.store).get(&def, namespace, name)?;
    let uid = sa
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences = shared.issuer.api_audiences.clone();
    }
    let key = shared.issuer.key()?;
    let now = Utc::now().timestamp();
    let claims = Claims {
        aud: audiences.clone(),
        exp: now + expiration,
        iat: now,
        iss: shared.issuer.issuer.clone(),
        jti: uuid::Uuid::new_v4().to_string(),
        kubernetes: KubernetesClaim {
            namespace: namespace.to_string(),
            serviceaccount: Ref {
                name: name.to_string(),
                uid,
            },
        },
        nbf: now,
        sub: crate::authn::service_account_username(namespace, name),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| {
        ApiError::new(
            500,
            "InternalError",
            format!("failed to generate token: {e}"),
        )
    })?;
    let expires = Utc
        .timestamp_opt(claims.exp, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default();
    let mut metadata = body.get("metadata").cloned().unwrap_or(json!({}));
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["creationTimestamp"] = Value::Null;
    Ok((
        201,
        json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": metadata,
            "spec": {"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": null},
            "status": {"token": token, "expirationTimestamp": expires},
        }),
    ))
}

/// The user of a ServiceAccount token that is valid as an API credential now.
pub(crate) fn validate(shared: &Shared, token: &str) -> Result<UserInfo, String> {
    validate_for(shared, token, &[]).map(|(u, _)| u)
}

/// Validates a token for `audiences` (the API audiences when empty): signature, issuer,
/// audience, `exp`/`nbf`, and that the ServiceAccount still exists with the same uid. Returns
/// the user and the audiences of the token that were asked for.
pub(crate) fn validate_for(
    shared: &Shared,
    token: &str,
    audiences: &[String],
) -> Result<(UserInfo, Vec<String>), String> {
    if token.split('.').count() != 3 {
        return Err("not a service account token".into());
    }
    let wanted: Vec<String> = if audiences.is_empty() {
        shared.issuer.api_audiences.clone()
    } else {
        audiences.to_vec()
    };
    let key = shared.issuer.key().map_err(|e| e.message)?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if header.alg != Algorithm::RS256 {
        return Err("unexpected signing algorithm".into());
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[shared.issuer.issuer.as_str()]);
    validation.set_audience(&wanted);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
        .map_err(|e| format!("invalid bearer token: {e}"))?;
    let claims = data.claims;
    let ns = claims.kubernetes.namespace.as_str();
    let name = claims.kubernetes.serviceaccount.name.as_str();
    if claims.sub != crate::authn::service_account_username(ns, name) {
        return Err("the subject does not match the service account claim".into());
    }
    let def = service_account_def(shared).ok_or("serviceaccounts are not served")?;
    let sa = lock(&shared.store)
        .get(&def, ns, name)
        .map_err(|_| format!("service account {ns}/{name} does not exist"))?;
    if sa.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(format!("service account {ns}/{name} has been deleted"));
    }
    let uid = sa
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    if uid != claims.kubernetes.serviceaccount.uid {
        return Err(format!(
            "service account UID ({uid}) does not match claim ({})",
            claims.kubernetes.serviceaccount.uid
        ));
    }
    let matched = claims
        .aud
        .iter()
        .filter(|a| wanted.contains(a))
        .cloned()
        .collect();
    Ok((UserInfo::service_account(ns, name, uid), matched))
}

/// `/.well-known/openid-configuration`.
pub(crate) fn openid_configuration(shared: &Shared) -> Value {
    json!({
        "issuer": shared.issuer.issuer,
        "jwks_uri": format!("{}/openid/v1/jwks", shared.issuer.base_url),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// `/openid/v1/jwks`.
pub(crate) fn jwks(shared: &Shared) -> Result<Value, ApiError> {
    let key = shared.issuer.key()?;
    Ok(json!({"keys": [{
        "use": "sig",
        "kty": "RSA",
        "kid": key.kid,
        "alg": "RS256",
        "n": key.n,
        "e": key.e,
    }]}))
}
