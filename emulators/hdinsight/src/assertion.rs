//! Client assertions at the token endpoint: a JWT signed with a certificate of the app
//! registration, or a token of an external issuer matched by a federated identity credential.
//!
//! What Entra checks and the codes it answers with:
//! - certificate credentials
//!   (https://learn.microsoft.com/entra/identity-platform/certificate-credentials): header
//!   `alg` RS256 with `x5t` (SHA-1 thumbprint) or PS256 with `x5t#S256` (SHA-256 thumbprint);
//!   claims `aud` = the tenant's v2.0 token endpoint, `iss` = `sub` = the client id, `exp`,
//!   `nbf`;
//! - workload identity federation
//!   (https://learn.microsoft.com/entra/workload-id/workload-identity-federation): the token's
//!   `iss`, `sub` and `aud` must match one federated credential of the app exactly; the issuer's
//!   OpenID discovery document and keys are fetched over HTTPS to verify the signature;
//! - error codes, from https://learn.microsoft.com/entra/identity-platform/reference-error-codes:
//!   AADSTS700027 (client assertion failed signature validation / key not found), AADSTS700024
//!   (client assertion is not within its valid time range), AADSTS50027 (invalid JWT: unexpected
//!   issuer or audience, token format not valid, external token failed signature verification),
//!   AADSTS70021 (no matching federated identity record found for presented assertion).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{AppConfig, FederatedCredential};

/// Why an assertion was refused: the AADSTS code and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: u32,
    pub message: String,
}

fn refuse(code: u32, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// A JWT split into its decoded header and claims, and the parts that were signed.
pub(crate) struct Jwt<'a> {
    pub header: Value,
    pub claims: Value,
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
}

pub(crate) fn parse(token: &str) -> Result<Jwt<'_>, Refusal> {
    let malformed = || refuse(50027, "Invalid JWT token. Token format not valid.");
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let json = |part: &str| -> Result<Value, Refusal> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| malformed())?;
        value.is_object().then_some(value).ok_or_else(malformed)
    };
    Ok(Jwt {
        header: json(h)?,
        claims: json(c)?,
        signing_input: &token[..h.len() + 1 + c.len()],
        signature: URL_SAFE_NO_PAD.decode(s).map_err(|_| malformed())?,
    })
}

fn claim<'v>(claims: &'v Value, name: &str) -> Option<&'v str> {
    claims.get(name).and_then(Value::as_str)
}

/// `aud` as a list (a JWT may carry one string or an array).
fn audiences(claims: &Value) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// `exp` and `nbf` against `now`, with `leeway` seconds either way: AADSTS700024.
fn check_time(claims: &Value, now: i64, leeway: i64) -> Result<(), Refusal> {
    let outside = |detail: &str| {
        refuse(
            700024,
            format!("Client assertion is not within its valid time range. {detail}"),
        )
    };
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
        return Err(refuse(
            50027,
            "Invalid JWT token. The token has no expiration (exp).",
        ));
    };
    if now > exp.saturating_add(leeway) {
        return Err(outside(&format!(
            "Current time: {now}, assertion valid to: {exp}."
        )));
    }
    if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64)
        && nbf > now.saturating_add(leeway)
    {
        return Err(outside(&format!(
            "Current time: {now}, assertion valid from: {nbf}."
        )));
    }
    Ok(())
}

/// Thumbprints of a registered certificate, as the header names them.
struct Registered {
    der: CertificateDer<'static>,
    sha1: String,
    sha256: String,
}

fn registered(app: &AppConfig) -> Vec<Registered> {
    app.certificates
        .iter()
        .filter_map(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).ok())
        .map(|der| {
            let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref());
            Registered {
                sha1: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
                sha256: URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_ref())),
                der,
            }
        })
        .collect()
}

/// Whether the assertion names a certificate (`x5t` / `x5t#S256`) rather than coming from a
/// federated issuer.
pub(crate) fn is_certificate_assertion(jwt: &Jwt<'_>) -> bool {
    jwt.header.get("x5t").is_some() || jwt.header.get("x5t#S256").is_some()
}

/// A certificate-signed assertion of `app`. `token_endpoints` are the `aud` values accepted
/// (the endpoint under each name of the tenant).
pub(crate) fn check_certificate(
    app: &AppConfig,
    jwt: &Jwt<'_>,
    token_endpoints: &[String],
    now: i64,
    leeway: i64,
) -> Result<(), Refusal> {
    let alg = jwt.header.get("alg").and_then(Value::as_str).unwrap_or("");
    let (thumbprint, by_sha256) = match (
        jwt.header.get("x5t#S256").and_then(Value::as_str),
        jwt.header.get("x5t").and_then(Value::as_str),
    ) {
        (Some(t), _) => (t, true),
        (None, Some(t)) => (t, false),
        (None, None) => return Err(refuse(50027, "Invalid JWT token. No thumbprint (x5t).")),
    };
    let not_found = || {
        refuse(
            700027,
            format!(
                "Client assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                app.client_id
            ),
        )
    };
    let certificate = registered(app)
        .into_iter()
        .find(|r| {
            if by_sha256 {
                r.sha256 == thumbprint
            } else {
                r.sha1 == thumbprint
            }
        })
        .ok_or_else(not_found)?;
    let algorithm = match alg {
        "RS256" => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        "PS256" => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        other => {
            return Err(refuse(
                700027,
                format!(
                    "Client assertion failed signature validation. [Reason - The algorithm '{other}' is not supported.]"
                ),
            ));
        }
    };
    let signature_ok = webpki::EndEntityCert::try_from(&certificate.der).is_ok_and(|cert| {
        cert.verify_signature(algorithm, jwt.signing_input.as_bytes(), &jwt.signature)
            .is_ok()
    });
    if !signature_ok {
        return Err(refuse(
            700027,
            "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]",
        ));
    }
    let (iss, sub) = (claim(&jwt.claims, "iss"), claim(&jwt.claims, "sub"));
    if iss != Some(app.client_id.as_str()) || sub != Some(app.client_id.as_str()) {
        return Err(refuse(
            50027,
            format!(
                "Invalid JWT token. The client assertion's iss and sub must be the client id '{}'.",
                app.client_id
            ),
        ));
    }
    let aud = audiences(&jwt.claims);
    if !aud.iter().any(|a| token_endpoints.iter().any(|t| t == a)) {
        return Err(refuse(
            50027,
            format!(
                "Invalid JWT token. Unexpected audience '{}'; expected the token endpoint.",
                aud.join(" ")
            ),
        ));
    }
    check_time(&jwt.claims, now, leeway)
}

/// The federated credential of `app` that matches the token's issuer, subject and audience.
pub(crate) fn matching_credential<'a>(
    app: &'a AppConfig,
    jwt: &Jwt<'_>,
) -> Result<&'a FederatedCredential, Refusal> {
    let iss = claim(&jwt.claims, "iss").unwrap_or("");
    let sub = claim(&jwt.claims, "sub").unwrap_or("");
    let aud = audiences(&jwt.claims);
    app.federated_credentials
        .iter()
        .find(|f| {
            f.issuer == iss && f.subject == sub && aud.iter().any(|a| f.audiences.contains(a))
        })
        .ok_or_else(|| {
            refuse(
                70021,
                format!(
                    "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'.",
                    aud.join(",")
                ),
            )
        })
}

/// Verifies a federated token's signature with the issuer's published keys (discovery
/// document → `jwks_uri` → key by `kid`), then its time range.
pub(crate) async fn check_federated(
    http: &reqwest::Client,
    credential: &FederatedCredential,
    jwt: &Jwt<'_>,
    now: i64,
    leeway: i64,
) -> Result<(), Refusal> {
    let unreachable = |what: &str| {
        refuse(
            50027,
            format!(
                "Invalid JWT token. External ID token from issuer '{}' failed signature verification: {what}.",
                credential.issuer
            ),
        )
    };
    if !credential.issuer.starts_with("https://") {
        return Err(unreachable("the issuer is not an https URL"));
    }
    let get = |url: String| async move {
        let response = http
            .get(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|_| unreachable(&format!("cannot fetch {url}")))?;
        if !response.status().is_success() {
            return Err(unreachable(&format!(
                "{url} answered {}",
                response.status().as_u16()
            )));
        }
        response
            .json::<Value>()
            .await
            .map_err(|_| unreachable(&format!("{url} is not JSON")))
    };
    let discovery = get(format!(
        "{}/.well-known/openid-configuration",
        credential.issuer.trim_end_matches('/')
    ))
    .await?;
    if discovery.get("issuer").and_then(Value::as_str) != Some(credential.issuer.as_str()) {
        return Err(unreachable("the discovery document names another issuer"));
    }
    let jwks_uri = discovery
        .get("jwks_uri")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("https://"))
        .ok_or_else(|| unreachable("the discovery document has no https jwks_uri"))?;
    let jwks = get(jwks_uri.to_string()).await?;
    if jwt.header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(unreachable("the token is not signed with RS256"));
    }
    let kid = jwt.header.get("kid").and_then(Value::as_str);
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let verified = keys
        .iter()
        .filter(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
        .filter_map(|k| {
            let n = URL_SAFE_NO_PAD.decode(k.get("n")?.as_str()?).ok()?;
            let e = URL_SAFE_NO_PAD.decode(k.get("e")?.as_str()?).ok()?;
            Some(ring::signature::RsaPublicKeyComponents { n, e })
        })
        .any(|key| {
            key.verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                jwt.signing_input.as_bytes(),
                &jwt.signature,
            )
            .is_ok()
        });
    if !verified {
        return Err(unreachable("no published key verifies the signature"));
    }
    check_time(&jwt.claims, now, leeway)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_with(cert_pem: &str) -> AppConfig {
        AppConfig {
            client_id: "app-1".into(),
            certificates: vec![cert_pem.to_string()],
            ..AppConfig::default()
        }
    }

    /// Signs `claims` the way a client does: RS256 + x5t or PS256 + x5t#S256.
    fn sign(key_pem: &str, cert_pem: &str, pss: bool, claims: &Value) -> String {
        use rustls::pki_types::PrivatePkcs8KeyDer;
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("cert");
        let header = if pss {
            serde_json::json!({"alg": "PS256", "typ": "JWT",
                "x5t#S256": URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_ref()))})
        } else {
            let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der.as_ref());
            serde_json::json!({"alg": "RS256", "typ": "JWT",
                "x5t": URL_SAFE_NO_PAD.encode(sha1.as_ref())})
        };
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
        let pair = ring::signature::RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()).expect("rsa");
        let mut sig = vec![0; pair.public().modulus_len()];
        let padding: &dyn ring::signature::RsaEncoding = if pss {
            &ring::signature::RSA_PSS_SHA256
        } else {
            &ring::signature::RSA_PKCS1_SHA256
        };
        pair.sign(
            padding,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    const AUD: &str = "https://127.0.0.1/t1/oauth2/v2.0/token";

    fn claims(now: i64) -> Value {
        serde_json::json!({"aud": AUD, "iss": "app-1", "sub": "app-1",
            "jti": "j", "nbf": now, "iat": now, "exp": now + 300})
    }

    #[test]
    fn both_documented_header_forms_are_accepted_and_each_refusal_has_its_code() {
        let c = crate::keys::client_certificate("emulator-assertion").expect("cert");
        let app = app_with(&c.cert_pem);
        let aud = vec![AUD.to_string()];
        let now = 1_700_000_000;
        for pss in [true, false] {
            let token = sign(&c.key_pem, &c.cert_pem, pss, &claims(now));
            let jwt = parse(&token).expect("jwt");
            assert!(is_certificate_assertion(&jwt));
            assert_eq!(check_certificate(&app, &jwt, &aud, now, 300), Ok(()));
            // Expired (beyond the leeway): 700024.
            let late = check_certificate(&app, &jwt, &aud, now + 1000, 300).expect_err("late");
            assert_eq!(late.code, 700024);
        }
        // Another certificate of the same key is not registered: 700027, key not found.
        let other = crate::keys::client_certificate("emulator-assertion").expect("cert");
        let token = sign(&other.key_pem, &other.cert_pem, true, &claims(now));
        let e = check_certificate(&app, &parse(&token).expect("jwt"), &aud, now, 300)
            .expect_err("unregistered");
        assert_eq!(e.code, 700027);
        assert!(e.message.contains("The key was not found"), "{}", e.message);
        // Signed by a different key but naming the registered certificate: 700027, signature.
        let foreign = crate::keys::client_certificate("emulator-assertion-foreign").expect("cert");
        let forged = sign(&foreign.key_pem, &c.cert_pem, true, &claims(now));
        let e = check_certificate(&app, &parse(&forged).expect("jwt"), &aud, now, 300)
            .expect_err("forged");
        assert_eq!(e.code, 700027);
        assert!(e.message.contains("signature value"), "{}", e.message);
        // Wrong audience or issuer: 50027.
        let mut wrong = claims(now);
        wrong["aud"] = "https://elsewhere/t1/oauth2/v2.0/token".into();
        let token = sign(&c.key_pem, &c.cert_pem, true, &wrong);
        let e =
            check_certificate(&app, &parse(&token).expect("jwt"), &aud, now, 300).expect_err("aud");
        assert_eq!(e.code, 50027);
        let mut wrong = claims(now);
        wrong["iss"] = "app-2".into();
        let token = sign(&c.key_pem, &c.cert_pem, true, &wrong);
        let e =
            check_certificate(&app, &parse(&token).expect("jwt"), &aud, now, 300).expect_err("iss");
        assert_eq!(e.code, 50027);
        // Not a JWT at all: 50027, never a panic.
        for garbage in ["", "a.b", "a.b.c", "..", "a.b.c.d"] {
            assert_eq!(
                parse(garbage).err().map(|r| r.code),
                Some(50027),
                "{garbage:?}"
            );
        }
        // Well formed but unsigned and naming no certificate: refused, not accepted.
        let unsigned = parse("e30.e30.").expect("structure");
        assert!(!is_certificate_assertion(&unsigned));
        let e = check_certificate(&app, &unsigned, &aud, now, 300).expect_err("unsigned");
        assert_eq!(e.code, 50027);
    }

    #[test]
    fn federated_match_needs_issuer_subject_and_audience() {
        let app = AppConfig {
            client_id: "app-1".into(),
            federated_credentials: vec![FederatedCredential {
                issuer: "https://issuer.example".into(),
                subject: "system:serviceaccount:kafka:writer".into(),
                audiences: vec!["api://AzureADTokenExchange".into()],
            }],
            ..AppConfig::default()
        };
        let token = |iss: &str, sub: &str, aud: &str| {
            let claims = serde_json::json!({"iss": iss, "sub": sub, "aud": [aud], "exp": 1});
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#),
                URL_SAFE_NO_PAD.encode(claims.to_string()),
                URL_SAFE_NO_PAD.encode("sig")
            )
        };
        let ok = token(
            "https://issuer.example",
            "system:serviceaccount:kafka:writer",
            "api://AzureADTokenExchange",
        );
        assert!(matching_credential(&app, &parse(&ok).expect("jwt")).is_ok());
        for bad in [
            token(
                "https://other.example",
                "system:serviceaccount:kafka:writer",
                "api://AzureADTokenExchange",
            ),
            token(
                "https://issuer.example",
                "system:serviceaccount:kafka:reader",
                "api://AzureADTokenExchange",
            ),
            token(
                "https://issuer.example",
                "system:serviceaccount:kafka:writer",
                "https://kubernetes.default.svc",
            ),
        ] {
            let e = matching_credential(&app, &parse(&bad).expect("jwt")).expect_err("no match");
            assert_eq!(e.code, 70021);
            assert!(
                e.message
                    .starts_with("No matching federated identity record")
            );
        }
    }
}
