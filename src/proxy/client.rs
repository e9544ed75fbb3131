//! The proxy client: TLS setup, limits, retries and the eight proxy operations.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::Semaphore;
use url::Url;

use super::error::ProxyError;
use super::limits::{Limits, RateLimiter};
use super::model::{
    self, BrokerEndpoint, ConsumeResponse, PartitionMetadata, ProducerRecord, TopicCreationRecord,
    TopicPartitions,
};
use crate::auth::http::{BodyError, error_text, read_capped, retry_after, shorten};
use crate::auth::{AccessToken, AuthObserver, ClientCredentials, TokenProvider};

/// The scope of HDInsight's Kafka REST proxy.
pub const DEFAULT_SCOPE: &str = "https://hib.azurehdinsight.net/.default";
/// Largest response body read from the proxy (a consume answer holds at most 6 MB).
pub const BODY_LIMIT: usize = 8 * 1024 * 1024;
/// A call waits out a `Retry-After` (or backoff) of at most this long; a longer one fails the
/// call with `Throttled { retry_after }` so the caller can requeue instead of holding a task.
pub const MAX_IN_CALL_WAIT: Duration = Duration::from_secs(15);
/// Error bodies are kept to this many characters: they reach conditions in status, which every
/// reader of the namespace sees, and they come from a server the operator does not control.
const BODY_IN_ERRORS: usize = 200;
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Settings of one proxy client, normally built from a `KafkaRestProxy` and its Secret.
#[derive(Clone, Debug)]
pub struct ProxyClientConfig {
    /// `namespace/name` of the KafkaRestProxy; used in metrics, never secret.
    pub name: String,
    pub endpoint: Url,
    pub allow_insecure_http: bool,
    /// Entra ID host, e.g. `https://login.microsoftonline.com`.
    pub authority: Url,
    /// Usually [`DEFAULT_SCOPE`].
    pub scope: String,
    pub credentials: ClientCredentials,
    /// Extra trusted roots (PEM bundle) added to the webpki roots. Verification is never off.
    pub extra_ca_pem: Option<String>,
    pub limits: Limits,
    /// Transient retries per call.
    pub max_retries: u32,
}

impl ProxyClientConfig {
    /// Defaults for everything but the name, endpoint and credentials: the global Entra ID
    /// authority, [`DEFAULT_SCOPE`], default limits and 3 retries.
    pub fn new(name: impl Into<String>, endpoint: Url, credentials: ClientCredentials) -> Self {
        Self {
            name: name.into(),
            endpoint,
            allow_insecure_http: false,
            authority: Url::parse("https://login.microsoftonline.com")
                .expect("constant URL is valid"),
            scope: DEFAULT_SCOPE.to_string(),
            credentials,
            extra_ca_pem: None,
            limits: Limits::default(),
            max_retries: 3,
        }
    }
}

/// The proxy operations, as metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Status,
    Brokers,
    List,
    Describe,
    DescribePartition,
    Create,
    Produce,
    Consume,
}

impl Operation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Status => "status",
            Operation::Brokers => "brokers",
            Operation::List => "list",
            Operation::Describe => "describe",
            Operation::DescribePartition => "describe_partition",
            Operation::Create => "create",
            Operation::Produce => "produce",
            Operation::Consume => "consume",
        }
    }
}

/// Hooks for metrics. `proxy` is the client's name; every HTTP attempt is reported once.
pub trait ProxyObserver: Send + Sync {
    /// `status_class` is "2xx", "4xx", "5xx" or "error" (no HTTP answer, or an unreadable body).
    fn request(&self, _proxy: &str, _op: Operation, _status_class: &str, _elapsed: Duration) {}
    /// The proxy answered 429 or 503.
    fn throttled(&self, _proxy: &str) {}
    fn token_request(&self, _proxy: &str, _ok: bool) {}
    fn token_expiry(&self, _proxy: &str, _expires_at: SystemTime) {}
}

pub struct NoopObserver;
impl ProxyObserver for NoopObserver {}

/// Forwards token events to the proxy observer with the proxy's name.
struct TokenEvents {
    name: String,
    observer: Arc<dyn ProxyObserver>,
}

impl AuthObserver for TokenEvents {
    fn token_request(&self, ok: bool) {
        self.observer.token_request(&self.name, ok);
    }
    fn token_expiry(&self, expires_at: SystemTime) {
        self.observer.token_expiry(&self.name, expires_at);
    }
}

/// Client of one Kafka REST proxy. Cheap to clone; clones share the connection pool, token
/// cache and limits.
#[derive(Clone)]
pub struct ProxyClient {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    endpoint: Url,
    http: reqwest::Client,
    tokens: TokenProvider,
    limiter: RateLimiter,
    permits: Semaphore,
    request_timeout: Duration,
    max_retries: u32,
    observer: Arc<dyn ProxyObserver>,
    /// No request may be sent before this instant (the latest `Retry-After`), with the status
    /// that set it.
    blocked_until: Mutex<Option<(Instant, u16)>>,
}

impl fmt::Debug for ProxyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyClient")
            .field("name", &self.inner.name)
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("client_id", &self.inner.tokens.client_id())
            .finish_non_exhaustive()
    }
}

/// A 2xx answer.
struct Reply {
    headers: HeaderMap,
    body: Vec<u8>,
}

/// Why one attempt failed.
enum Failure {
    /// HTTP 401 with the token that was refused.
    Unauthorized { token: AccessToken, body: String },
    /// Anything else; `sent` says whether the request may have reached the proxy.
    Error { error: ProxyError, sent: bool },
}

impl Failure {
    fn before_send(error: ProxyError) -> Self {
        Failure::Error { error, sent: false }
    }
    fn after_send(error: ProxyError) -> Self {
        Failure::Error { error, sent: true }
    }
}

impl ProxyClient {
    pub fn new(
        config: ProxyClientConfig,
        observer: Arc<dyn ProxyObserver>,
    ) -> Result<Self, ProxyError> {
        check_scheme("endpoint", &config.endpoint, config.allow_insecure_http)?;
        check_scheme("authority", &config.authority, config.allow_insecure_http)?;
        if config.endpoint.cannot_be_a_base() {
            return Err(ProxyError::InvalidConfig(format!(
                "endpoint {} is not a base URL",
                config.endpoint
            )));
        }
        let tls = tls_config(config.extra_ca_pem.as_deref())?;
        let request_timeout = config.limits.request_timeout;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .https_only(!config.allow_insecure_http)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "hdinsight-topic-operator/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| ProxyError::InvalidConfig(format!("HTTP client: {}", error_text(&e))))?;
        let token_events = Arc::new(TokenEvents {
            name: config.name.clone(),
            observer: observer.clone(),
        });
        let tokens = TokenProvider::new(
            http.clone(),
            &config.authority,
            &config.scope,
            config.credentials,
            token_events,
        )?
        .with_timeout(request_timeout);
        let permits = Semaphore::new(
            (config.limits.max_concurrent.max(1) as usize).min(Semaphore::MAX_PERMITS),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                name: config.name,
                endpoint: config.endpoint,
                http,
                tokens,
                limiter: RateLimiter::new(&config.limits),
                permits,
                request_timeout,
                max_retries: config.max_retries,
                observer,
                blocked_until: Mutex::new(None),
            }),
        })
    }

    /// Carries the client-side limits' state of `previous` (the client this one replaces,
    /// e.g. after a credential rotation) over: the token bucket when the limits are the same,
    /// and a pending `Retry-After` block. Call before the new client sends anything.
    pub fn continue_from(&self, previous: &ProxyClient) {
        self.inner.limiter.continue_from(&previous.inner.limiter);
        let blocked = *previous
            .inner
            .blocked_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if blocked.is_some() {
            *self
                .inner
                .blocked_until
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = blocked;
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    /// The token provider shared by this client's calls.
    pub fn token_provider(&self) -> &TokenProvider {
        &self.inner.tokens
    }

    pub fn invalidate_token(&self) {
        self.inner.tokens.invalidate();
    }

    pub fn token_expires_at(&self) -> Option<SystemTime> {
        self.inner.tokens.expires_at()
    }

    /// `GET /v1/status`: the proxy's status text.
    pub async fn status(&self) -> Result<String, ProxyError> {
        let reply = self
            .call(
                Operation::Status,
                Method::GET,
                &["v1", "status"],
                None,
                None,
            )
            .await?;
        Ok(model::decode_text(&reply.body))
    }

    /// `GET /v1/metadata/brokers`.
    pub async fn brokers(&self) -> Result<Vec<BrokerEndpoint>, ProxyError> {
        let reply = self
            .call(
                Operation::Brokers,
                Method::GET,
                &["v1", "metadata", "brokers"],
                None,
                None,
            )
            .await?;
        model::decode_brokers(&reply.body).map_err(malformed)
    }

    /// `GET /v1/metadata/topics`, without internal topics (names starting with `__`).
    pub async fn list_topics(&self) -> Result<Vec<String>, ProxyError> {
        let reply = self
            .call(
                Operation::List,
                Method::GET,
                &["v1", "metadata", "topics"],
                None,
                None,
            )
            .await?;
        model::decode_topic_list(&reply.body).map_err(malformed)
    }

    /// `GET /v1/metadata/topics/{topic}/partitions`.
    pub async fn describe_topic(&self, topic: &str) -> Result<TopicPartitions, ProxyError> {
        check_topic(topic)?;
        let reply = self
            .call(
                Operation::Describe,
                Method::GET,
                &["v1", "metadata", "topics", topic, "partitions"],
                None,
                None,
            )
            .await?;
        model::decode_topic_partitions(&reply.body).map_err(malformed)
    }

    /// `GET /v1/metadata/topics/{topic}/partitions/{partition}`.
    pub async fn describe_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionMetadata, ProxyError> {
        check_topic(topic)?;
        let partition = partition.to_string();
        let reply = self
            .call(
                Operation::DescribePartition,
                Method::GET,
                &["v1", "metadata", "topics", topic, "partitions", &partition],
                None,
                None,
            )
            .await?;
        model::decode_partition(&reply.body).map_err(malformed)
    }

    /// `PUT /v1/topics/{topic}`. Never retried once the request may have reached the proxy
    /// (only failures to connect, token errors and a single 401 refresh are retried): the
    /// caller re-observes the topic list instead, so a topic is never created twice by us.
    pub async fn create_topic(
        &self,
        topic: &str,
        record: &TopicCreationRecord,
    ) -> Result<String, ProxyError> {
        check_topic(topic)?;
        let body = serde_json::to_vec(record)
            .map_err(|e| ProxyError::InvalidConfig(format!("topic creation record: {e}")))?;
        let reply = self
            .call(
                Operation::Create,
                Method::PUT,
                &["v1", "topics", topic],
                None,
                Some(body),
            )
            .await?;
        Ok(model::decode_text(&reply.body))
    }

    /// `POST /v1/producer/topics/{topic}` with `{"records":[..]}`.
    pub async fn produce(
        &self,
        topic: &str,
        records: &[ProducerRecord],
    ) -> Result<String, ProxyError> {
        check_topic(topic)?;
        #[derive(serde::Serialize)]
        struct Batch<'a> {
            records: &'a [ProducerRecord],
        }
        let body = serde_json::to_vec(&Batch { records })
            .map_err(|e| ProxyError::InvalidConfig(format!("producer records: {e}")))?;
        let reply = self
            .call(
                Operation::Produce,
                Method::POST,
                &["v1", "producer", "topics", topic],
                None,
                Some(body),
            )
            .await?;
        Ok(model::decode_text(&reply.body))
    }

    /// `GET /v1/consumer/topics/{topic}/partitions/{partition}/offsets/{offset}?count={count}`.
    pub async fn consume(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        count: u32,
    ) -> Result<ConsumeResponse, ProxyError> {
        check_topic(topic)?;
        let partition = partition.to_string();
        let offset = offset.to_string();
        let reply = self
            .call(
                Operation::Consume,
                Method::GET,
                &[
                    "v1",
                    "consumer",
                    "topics",
                    topic,
                    "partitions",
                    &partition,
                    "offsets",
                    &offset,
                ],
                Some(("count", count.to_string())),
                None,
            )
            .await?;
        let next = reply
            .headers
            .get("nextoffset")
            .map(|v| v.to_str().unwrap_or("<not text>").to_string());
        model::decode_consume(&reply.body, next.as_deref()).map_err(malformed)
    }

    fn url(&self, segments: &[&str], query: Option<(&str, String)>) -> Result<Url, ProxyError> {
        let mut url = self.inner.endpoint.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .map_err(|()| ProxyError::InvalidConfig("endpoint is not a base URL".into()))?
            .pop_if_empty()
            .extend(segments);
        if let Some((key, value)) = query {
            url.query_pairs_mut().append_pair(key, &value);
        }
        Ok(url)
    }

    /// One proxy call with its retries. Returns the 2xx reply or the last error.
    async fn call(
        &self,
        op: Operation,
        method: Method,
        segments: &[&str],
        query: Option<(&str, String)>,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ProxyError> {
        let url = self.url(segments, query)?;
        let mut retries = 0u32;
        let mut refreshed = false;
        loop {
            let (error, delay) = match self.attempt(op, &method, &url, body.as_deref()).await {
                Ok(reply) => return Ok(reply),
                Err(Failure::Unauthorized { token, body }) => {
                    // The proxy checks the token before doing anything, so even a create is safe
                    // to repeat once with a fresh token.
                    self.inner.tokens.invalidate_token(&token);
                    if refreshed {
                        return Err(ProxyError::Unauthorized { body });
                    }
                    refreshed = true;
                    continue;
                }
                Err(Failure::Error { error, sent }) => {
                    // A create that never left tells its caller so: nothing can have been
                    // created, and it is not an uncertain create.
                    let give_up = |error| {
                        if op == Operation::Create && !sent {
                            ProxyError::NotSent(Box::new(error))
                        } else {
                            error
                        }
                    };
                    let may_repeat = op != Operation::Create || !sent;
                    if !error.is_transient() || !may_repeat || retries >= self.inner.max_retries {
                        return Err(give_up(error));
                    }
                    let delay = backoff(retries).max(error.retry_after().unwrap_or_default());
                    if delay > MAX_IN_CALL_WAIT {
                        return Err(give_up(error));
                    }
                    (error, delay)
                }
            };
            retries += 1;
            tracing::debug!(proxy = %self.inner.name, op = op.as_str(), retry = retries, ?delay, error = %error, "retrying proxy call");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        op: Operation,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
    ) -> Result<Reply, Failure> {
        let inner = &*self.inner;
        let token = inner
            .tokens
            .token()
            .await
            .map_err(|e| Failure::before_send(ProxyError::Auth(e)))?;
        inner.limiter.acquire().await;
        let _permit = inner.permits.acquire().await.map_err(|_| {
            Failure::before_send(ProxyError::InvalidConfig(
                "the proxy client is closed".into(),
            ))
        })?;
        self.wait_unblocked().await.map_err(Failure::before_send)?;

        let started = Instant::now();
        let sent =
            tokio::time::timeout(inner.request_timeout, self.send(method, url, body, &token)).await;
        let elapsed = started.elapsed();
        let (status, headers, body) = match sent {
            Err(_) => {
                inner.observer.request(&inner.name, op, "error", elapsed);
                return Err(Failure::after_send(ProxyError::Timeout));
            }
            Ok(Err(failure)) => {
                inner.observer.request(&inner.name, op, "error", elapsed);
                return Err(failure);
            }
            Ok(Ok(answer)) => answer,
        };
        inner
            .observer
            .request(&inner.name, op, status_class(status), elapsed);
        tracing::trace!(proxy = %inner.name, op = op.as_str(), %method, path = url.path(), status, elapsed_ms = elapsed.as_millis() as u64, "proxy answered");
        if (200..300).contains(&status) {
            return Ok(Reply { headers, body });
        }
        let text = body_text(&body, &token);
        let error = match status {
            401 => return Err(Failure::Unauthorized { token, body: text }),
            403 => ProxyError::Forbidden { body: text },
            404 => ProxyError::NotFound { body: text },
            405 => ProxyError::Unsupported { body: text },
            429 | 503 => {
                let retry_after = retry_after(&headers);
                inner.observer.throttled(&inner.name);
                if let Some(wait) = retry_after {
                    self.block_for(wait, status);
                }
                ProxyError::Throttled {
                    status,
                    retry_after,
                }
            }
            400..=499 => ProxyError::Rejected { status, body: text },
            500..=599 => ProxyError::Server { status, body: text },
            other => ProxyError::Malformed(format!("unexpected HTTP status {other}")),
        };
        Err(Failure::after_send(error))
    }

    /// Sends one request and reads its whole (capped) body.
    async fn send(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&[u8]>,
        token: &AccessToken,
    ) -> Result<(u16, HeaderMap, Vec<u8>), Failure> {
        let mut request = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token.secret())
            .header(ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = request.send().await.map_err(|e| {
            if e.is_connect() {
                // No connection, so nothing reached the proxy.
                Failure::before_send(ProxyError::Transport(error_text(&e)))
            } else if e.is_timeout() {
                Failure::after_send(ProxyError::Timeout)
            } else {
                Failure::after_send(ProxyError::Transport(error_text(&e)))
            }
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_capped(response, BODY_LIMIT).await.map_err(|e| {
            Failure::after_send(match e {
                BodyError::TooLarge => ProxyError::BodyTooLarge { limit: BODY_LIMIT },
                BodyError::Timeout => ProxyError::Timeout,
                BodyError::Transport(t) => ProxyError::Transport(t),
            })
        })?;
        Ok((status, headers, body))
    }

    fn block_for(&self, wait: Duration, status: u16) {
        let until = crate::clock::instant_after(Instant::now(), wait);
        let mut blocked = self
            .inner
            .blocked_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if blocked.is_none_or(|(current, _)| current < until) {
            *blocked = Some((until, status));
        }
    }

    /// Waits until no `Retry-After` is pending; a wait longer than [`MAX_IN_CALL_WAIT`] fails
    /// with `Throttled` without sending anything.
    async fn wait_unblocked(&self) -> Result<(), ProxyError> {
        loop {
            let blocked = *self
                .inner
                .blocked_until
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let Some((until, status)) = blocked else {
                return Ok(());
            };
            let now = Instant::now();
            if until <= now {
                return Ok(());
            }
            let remaining = until - now;
            if remaining > MAX_IN_CALL_WAIT {
                return Err(ProxyError::Throttled {
                    status,
                    retry_after: Some(remaining),
                });
            }
            tokio::time::sleep(remaining).await;
        }
    }
}

fn check_scheme(what: &str, url: &Url, allow_insecure_http: bool) -> Result<(), ProxyError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_insecure_http => Ok(()),
        "http" => Err(ProxyError::InvalidConfig(format!(
            "{what} {url} uses plain HTTP; use https, or allow insecure HTTP for test clusters only"
        ))),
        other => Err(ProxyError::InvalidConfig(format!(
            "{what} {url} has unsupported scheme {other:?}"
        ))),
    }
}

fn check_topic(topic: &str) -> Result<(), ProxyError> {
    if topic.is_empty() {
        return Err(ProxyError::InvalidConfig("the topic name is empty".into()));
    }
    Ok(())
}

/// The system's trusted roots: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the platform's
/// store. Read once per process; unreadable or unparsable entries are skipped (the compiled-in
/// roots still apply), and the count is logged once.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        tracing::debug!(
            certificates = found.certs.len(),
            errors = found.errors.len(),
            "system trust roots loaded"
        );
        found.certs
    })
}

/// rustls with the ring provider and, as trusted roots, the compiled-in webpki roots, the
/// system's roots (a corporate TLS-inspecting proxy's CA is usually installed there) and the
/// extra PEM roots. There is no way to turn verification off.
fn tls_config(extra_ca_pem: Option<&str>) -> Result<rustls::ClientConfig, ProxyError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(pem) = extra_ca_pem.filter(|p| !p.trim().is_empty()) {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProxyError::InvalidConfig(format!("extra CA bundle: {e}")))?;
        if certs.is_empty() {
            return Err(ProxyError::InvalidConfig(
                "extra CA bundle holds no PEM certificate".into(),
            ));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| ProxyError::InvalidConfig(format!("extra CA certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ProxyError::InvalidConfig(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Full jitter: a random delay between zero and `base · 2^retry` (capped).
fn backoff(retry: u32) -> Duration {
    let cap = BACKOFF_BASE
        .saturating_mul(2u32.saturating_pow(retry.min(16)))
        .min(BACKOFF_MAX);
    let millis = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "error",
    }
}

/// An error body for messages: text, our token removed, anything shaped like a token (a JWT)
/// removed, control characters folded to spaces, shortened.
fn body_text(body: &[u8], token: &AccessToken) -> String {
    let mut text = String::from_utf8_lossy(body).trim().to_string();
    if !token.secret().is_empty() && text.contains(token.secret()) {
        text = text.replace(token.secret(), "<redacted>");
    }
    shorten(&scrub(&text), BODY_IN_ERRORS)
}

/// A decoding error of a proxy answer: decoder messages can quote the answer ("invalid type:
/// string \"…\""), so they are scrubbed and shortened like error bodies.
fn malformed(message: String) -> ProxyError {
    ProxyError::Malformed(shorten(&scrub(&message), BODY_IN_ERRORS))
}

/// Folds control characters (and runs of whitespace) into single spaces and replaces every
/// JWT-shaped word (`eyJ` and base64url) with `<redacted>`.
pub(crate) fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4096));
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.starts_with("eyJ") {
            out.push_str("<redacted>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == '=' {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out);
        if c.is_control() || c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_labels() {
        let all = [
            (Operation::Status, "status"),
            (Operation::Brokers, "brokers"),
            (Operation::List, "list"),
            (Operation::Describe, "describe"),
            (Operation::DescribePartition, "describe_partition"),
            (Operation::Create, "create"),
            (Operation::Produce, "produce"),
            (Operation::Consume, "consume"),
        ];
        for (op, label) in all {
            assert_eq!(op.as_str(), label);
        }
    }

    #[test]
    fn backoff_stays_within_its_cap() {
        for retry in 0..40 {
            let cap = BACKOFF_BASE
                .saturating_mul(2u32.saturating_pow(retry.min(16)))
                .min(BACKOFF_MAX);
            assert!(backoff(retry) <= cap);
        }
    }

    #[test]
    fn error_bodies_lose_the_token_and_length() {
        let token = AccessToken::new("tok-123", SystemTime::now());
        let text = body_text(b"bad token tok-123 here", &token);
        assert_eq!(text, "bad token <redacted> here");
        let long = "x".repeat(1000);
        assert_eq!(
            body_text(long.as_bytes(), &token).chars().count(),
            BODY_IN_ERRORS + 1
        );
        // Another token echoed back, control characters and line breaks: scrubbed.
        let text = body_text(
            b"denied\r\n\x1b[31mBearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\tend\x00",
            &token,
        );
        assert_eq!(text, "denied [31mBearer <redacted> end");
        // A JWT's base64url has '-' and '_': the whole word goes, not what follows them.
        assert_eq!(
            scrub("token eyJhb-Gc_iO.eyJz-dWI_i.c2-ln_x seen"),
            "token <redacted> seen"
        );
        // With no token to remove (none was obtained), the body is left as it is.
        assert_eq!(
            body_text(b"no such topic", &AccessToken::new("", SystemTime::now())),
            "no such topic"
        );
        // Decoder messages quote the answer: scrubbed and shortened the same way.
        let long = format!(
            "invalid type: string \"eyJhbGciOi.x.y\"\n{}",
            "z".repeat(500)
        );
        match malformed(long) {
            ProxyError::Malformed(m) => {
                assert!(
                    m.starts_with("invalid type: string \"<redacted>\" z"),
                    "{m}"
                );
                assert_eq!(m.chars().count(), BODY_IN_ERRORS + 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn extra_ca_must_be_pem() {
        assert!(matches!(
            tls_config(Some("not a pem")),
            Err(ProxyError::InvalidConfig(_))
        ));
        assert!(tls_config(None).is_ok());
    }
}
