//! Entra ID client-credentials tokens, with a client secret, a certificate or a federated
//! (workload identity) token.
//!
//! A [`TokenProvider`] holds one app's credentials and hands out bearer tokens for the HDInsight
//! scope: cached until shortly before expiry, fetched by at most one request at a time (single
//! flight), invalidated on demand (a 401 from the proxy, a rotated Secret). Failures are typed
//! ([`AuthError`]) with the AADSTS code parsed out, and never carry the secret or a token.

mod assertion;
mod error;
mod exchange;
pub(crate) mod http;
mod secret;
mod service_account;
mod token;

pub use assertion::{ASSERTION_LIFETIME, AssertionSource, ClientCertificate, JWT_BEARER};
pub use error::AuthError;
pub use exchange::{MAX_TOKEN_LIFETIME_SECS, TOKEN_BODY_LIMIT, decode_rejection, decode_success};
pub use secret::{ClientAuth, ClientCredentials, SecretString};
pub use service_account::{
    SERVICE_ACCOUNT_TOKEN_MARGIN, SERVICE_ACCOUNT_TOKEN_SECONDS, ServiceAccountTokenSource,
    TOKEN_EXCHANGE_AUDIENCE,
};
pub use token::{AccessToken, AuthObserver, NoopAuthObserver, TokenProvider};
