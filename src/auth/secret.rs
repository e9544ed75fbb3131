//! Secret values that must never reach logs, errors or Debug output.

use std::fmt;

use sha2::{Digest, Sha256};

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

/// An Entra ID app registration's client credentials.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

impl ClientCredentials {
    /// SHA-256 over tenant, client id and secret (each length-prefixed, so fields cannot run into
    /// each other). Lets callers notice a changed Secret without keeping the old value around.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for part in [
            self.tenant_id.as_str(),
            self.client_id.as_str(),
            self.client_secret.expose(),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(secret: &str) -> ClientCredentials {
        ClientCredentials {
            tenant_id: "tenant".into(),
            client_id: "client".into(),
            client_secret: SecretString::new(secret),
        }
    }

    #[test]
    fn debug_and_display_hide_the_secret() {
        let c = creds("hunter2");
        assert_eq!(format!("{}", c.client_secret), "<redacted>");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.client_secret.expose(), "hunter2");
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
