//! Client assertions: the JWT an app sends instead of a client secret.
//!
//! Two sources: a certificate registered on the app registration (the operator signs the
//! assertion itself, [`ClientCertificate`]), and a token issued by another identity provider
//! that Entra ID trusts through a federated credential ([`AssertionSource`], e.g. a Kubernetes
//! ServiceAccount token).
//!
//! The certificate assertion follows Microsoft's "Microsoft identity platform application
//! authentication certificate credentials"
//! (https://learn.microsoft.com/entra/identity-platform/certificate-credentials): header
//! `alg: PS256`, `typ: JWT`, `x5t#S256` = base64url SHA-256 thumbprint of the certificate's DER;
//! claims `aud` = the v2.0 token endpoint, `iss` = `sub` = the client id, a fresh `jti`, and
//! `nbf`/`iat`/`exp` spanning a few minutes.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PSS_SHA256, RsaKeyPair};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use super::error::AuthError;
use super::secret::SecretString;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a signed assertion is valid. Entra ID only needs it for the one token request, and
/// Microsoft's example uses ten minutes; five leaves room for clock skew without inviting replay.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// A certificate and its RSA private key, from a `kubernetes.io/tls` Secret. `Debug` shows the
/// thumbprint only.
pub struct ClientCertificate {
    key: RsaKeyPair,
    thumbprint_s256: String,
    fingerprint: [u8; 32],
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint_s256)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// The first certificate of `cert_pem` (the leaf; a chain may follow) and the RSA key of
    /// `key_pem` (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`). The key must belong to the
    /// certificate. Errors name what is wrong, never the key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, AuthError> {
        let cert = CertificateDer::from_pem_slice(cert_pem).map_err(|e| {
            AuthError::InvalidConfig(format!("tls.crt holds no PEM certificate ({e})"))
        })?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
            AuthError::InvalidConfig("tls.key holds no PEM private key".to_string())
        })?;
        let key = match &key {
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            _ => {
                return Err(AuthError::InvalidConfig(
                    "tls.key is not an RSA key; Entra ID accepts RSA certificates only".into(),
                ));
            }
        }
        .map_err(|e| {
            AuthError::InvalidConfig(format!(
                "tls.key is not a usable RSA private key ({e}); Entra ID accepts RSA keys of 2048 bits or more"
            ))
        })?;
        // The certificate's SubjectPublicKeyInfo carries the RSAPublicKey DER verbatim in its
        // BIT STRING, so a key that belongs to the certificate is found inside it.
        let public = key.public().as_ref();
        if !cert
            .as_ref()
            .windows(public.len())
            .any(|window| window == public)
        {
            return Err(AuthError::InvalidConfig(
                "tls.key does not belong to the certificate in tls.crt".into(),
            ));
        }
        let digest = Sha256::digest(cert.as_ref());
        let mut fingerprint = Sha256::new();
        fingerprint.update(cert.as_ref());
        fingerprint.update(public);
        Ok(Self {
            key,
            thumbprint_s256: URL_SAFE_NO_PAD.encode(digest),
            fingerprint: fingerprint.finalize().into(),
        })
    }

    /// Base64url SHA-256 thumbprint of the certificate (the assertion's `x5t#S256`).
    pub fn thumbprint_s256(&self) -> &str {
        &self.thumbprint_s256
    }

    /// Identifies the certificate and key without holding either.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// A signed assertion for `client_id` at `audience` (the token endpoint URL), valid from
    /// `now` for [`ASSERTION_LIFETIME`].
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: SystemTime,
    ) -> Result<SecretString, AuthError> {
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| AuthError::InvalidConfig("the system clock is before 1970".into()))?
            .as_secs();
        let header = serde_json::json!({
            "alg": "PS256",
            "typ": "JWT",
            "x5t#S256": self.thumbprint_s256,
        });
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": iat,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME.as_secs(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PSS_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| AuthError::InvalidConfig("signing the client assertion failed".into()))?;
        Ok(SecretString::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        )))
    }
}

/// A JWT from another identity provider, exchanged at Entra ID through a federated credential
/// (workload identity federation). Implementations cache the token themselves.
#[async_trait::async_trait]
pub trait AssertionSource: Send + Sync {
    /// A token valid for at least the next token request.
    async fn assertion(&self) -> Result<SecretString, AuthError>;
    /// Forget a cached token (Entra ID refused it).
    fn invalidate(&self) {}
    /// What the source is, for messages (never the token).
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let c = hdinsight_emulator::client_certificate(name).expect("client certificate");
        (c.cert_pem, c.key_pem)
    }

    fn decode(part: &str) -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("json")
    }

    #[test]
    fn the_assertion_has_the_header_and_claims_entra_documents() {
        let (cert_pem, key_pem) = pair("assertion-test");
        let cert = ClientCertificate::from_pem(cert_pem.as_bytes(), key_pem.as_bytes())
            .expect("certificate");
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let aud = "https://login.microsoftonline.com/t1/oauth2/v2.0/token";
        let jwt = cert.assertion("app-1", aud, now).expect("signed");
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = decode(parts[0]);
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["typ"], "JWT");
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("der");
        assert_eq!(
            header["x5t#S256"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(der.as_ref()))
        );
        let claims = decode(parts[1]);
        assert_eq!(claims["aud"], aud);
        assert_eq!(claims["iss"], "app-1");
        assert_eq!(claims["sub"], "app-1");
        assert_eq!(claims["nbf"], 1_700_000_000u64);
        assert_eq!(claims["exp"], 1_700_000_300u64);
        let again = cert.assertion("app-1", aud, now).expect("signed");
        assert_ne!(
            decode(again.expose().split('.').nth(1).expect("claims"))["jti"],
            claims["jti"],
            "each assertion has its own jti"
        );
        // Debug shows neither the key nor an assertion.
        assert!(!format!("{cert:?}").contains("PRIVATE"));
        assert!(!format!("{jwt:?}").contains(parts[2]));
    }

    #[test]
    fn a_key_of_another_certificate_or_no_rsa_key_is_a_typed_error() {
        let (cert_pem, _) = pair("assertion-test");
        let (_, other_key) = pair("assertion-other");
        let e = ClientCertificate::from_pem(cert_pem.as_bytes(), other_key.as_bytes())
            .expect_err("mismatch");
        assert_eq!(
            e.to_string(),
            "invalid token configuration: tls.key does not belong to the certificate in tls.crt"
        );
        let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ec key");
        let e = ClientCertificate::from_pem(cert_pem.as_bytes(), ec.serialize_pem().as_bytes())
            .expect_err("ec");
        assert!(e.to_string().contains("RSA"), "{e}");
        let e = ClientCertificate::from_pem(b"not pem", b"").expect_err("garbage");
        assert!(matches!(e, AuthError::InvalidConfig(_)));
    }
}
