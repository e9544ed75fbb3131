//! Secret values that must never reach logs, errors or Debug output.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::assertion::{AssertionSource, ClientCertificate};

/// A secret string (client secret, access token). `Debug` and `Display` print `<redacted>`;
/// the value is only reachable through [`SecretString::expose`]. Deliberately not `Serialize`.
#[derive(Clone)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How an app proves its identity at the token endpoint.
#[derive(Clone)]
pub enum ClientAuth {
    /// A client secret (`client_secret`).
    Secret(SecretString),
    /// A JWT signed with a certificate registered on the app (`client_assertion`).
    Certificate(Arc<ClientCertificate>),
    /// A token of another identity provider trusted through a federated credential
    /// (`client_assertion`, workload identity federation).
    Federated(Arc<dyn AssertionSource>),
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAuth::Secret(s) => f.debug_tuple("Secret").field(s).finish(),
            ClientAuth::Certificate(c) => f.debug_tuple("Certificate").field(c).finish(),
            ClientAuth::Federated(s) => f.debug_tuple("Federated").field(&s.describe()).finish(),
        }
    }
}

impl From<SecretString> for ClientAuth {
    fn from(secret: SecretString) -> Self {
        ClientAuth::Secret(secret)
    }
}

/// An Entra ID app registration's client credentials.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub auth: ClientAuth,
}

impl ClientCredentials {
    /// Credentials with a client secret.
    pub fn with_secret(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            auth: ClientAuth::Secret(SecretString::new(secret)),
        }
    }

    /// SHA-256 over tenant, client id and the credential (each length-prefixed, so fields
    /// cannot run into each other). Lets callers notice a changed Secret without keeping the old
    /// value around.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        let certificate;
        let source;
        let credential: &[u8] = match &self.auth {
            ClientAuth::Secret(s) => s.expose().as_bytes(),
            ClientAuth::Certificate(c) => {
                certificate = c.fingerprint();
                &certificate
            }
            ClientAuth::Federated(s) => {
                source = s.describe();
                source.as_bytes()
            }
        };
        for part in [
            self.tenant_id.as_bytes(),
            self.client_id.as_bytes(),
            credential,
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(secret: &str) -> ClientCredentials {
        ClientCredentials::with_secret("tenant", "client", secret)
    }

    #[test]
    fn debug_and_display_hide_the_secret() {
        let c = creds("hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        let ClientAuth::Secret(secret) = &c.auth else {
            panic!("a secret")
        };
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn fingerprint_changes_with_any_field() {
        let a = creds("s1");
        assert_eq!(a.fingerprint(), creds("s1").fingerprint());
        assert_ne!(a.fingerprint(), creds("s2").fingerprint());
        let mut b = creds("s1");
        b.client_id = "clien".into();
        b.tenant_id = "tenantt".into();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
