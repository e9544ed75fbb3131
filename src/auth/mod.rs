//! Entra ID client-credentials tokens.
//!
//! A [`TokenProvider`] holds one app's credentials and hands out bearer tokens for the HDInsight
//! scope: cached until shortly before expiry, fetched by at most one request at a time (single
//! flight), invalidated on demand (a 401 from the proxy, a rotated Secret). Failures are typed
//! ([`AuthError`]) with the AADSTS code parsed out, and never carry the secret or a token.

mod error;
pub(crate) mod http;
mod secret;
mod token;

pub use error::AuthError;
pub use secret::{ClientCredentials, SecretString};
pub use token::{
    AccessToken, AuthObserver, MAX_TOKEN_LIFETIME_SECS, NoopAuthObserver, TokenProvider,
    decode_rejection, decode_success,
};
