//! Connection handling, routing, latency and fault injection, and request accounting.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::{AppConfig, EmulatorConfig, RetryAfterAs, ThrottleAnswer};
use crate::keys::KeyRing;
use crate::model::Cluster;
use crate::observe::{FaultBody, FaultRule, Faults, LoggedRequest, RequestLog, Stats};
use crate::{control, entra, proxy};

/// Largest request body accepted.
const MAX_REQUEST_BODY: usize = 8 * 1024 * 1024;

pub(crate) struct State {
    pub cluster: Cluster,
    pub apps: Vec<AppConfig>,
    pub stats: Stats,
    pub log: RequestLog,
    pub faults: Faults,
    /// Proxy requests served so far: picks the management node of the next one.
    pub next_node: u64,
    /// Rate-limit buckets per client: tokens left and when they were counted.
    pub buckets: HashMap<String, (f64, Instant)>,
}

impl State {
    pub(crate) fn new(config: &EmulatorConfig) -> Self {
        State {
            cluster: Cluster::new(config),
            apps: config.apps.clone(),
            stats: Stats::default(),
            log: RequestLog::default(),
            faults: Faults::default(),
            next_node: 0,
            buckets: HashMap::new(),
        }
    }
}

/// What one listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Proxy and Entra paths on one listener.
    Both,
    /// The proxy (and the control API) only.
    Proxy,
    /// Entra only: token, discovery, keys (and the control API).
    Authority,
}

impl Role {
    fn serves(self, route: &Route) -> bool {
        let entra = matches!(
            route,
            Route::Token(_) | Route::Discovery(_) | Route::Jwks(_)
        );
        match self {
            Role::Both => true,
            Role::Proxy => !entra,
            Role::Authority => entra || matches!(route, Route::Control(_)),
        }
    }
}

pub(crate) struct Shared {
    pub config: EmulatorConfig,
    pub base_url: String,
    /// Where the Entra endpoints are served: `base_url`, or a listener of their own.
    pub authority_url: String,
    pub key: KeyRing,
    pub state: Mutex<State>,
    /// Fetches federated issuers' discovery documents and keys (trusting
    /// `federatedIssuerCaFile`).
    pub federation_http: Mutex<reqwest::Client>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Picks the first rule that matches `operation` and fires, and uses up one of its shots.
    fn fire_fault(&self, operation: &str, is_proxy: bool) -> Option<FaultRule> {
        let mut state = self.lock();
        for rule in &mut state.faults.rules {
            let matches = if rule.operations.is_empty() {
                is_proxy
            } else {
                rule.operations.iter().any(|op| op == operation)
            };
            if !matches || rule.remaining == Some(0) {
                continue;
            }
            if rule.probability < 1.0 && rand::random::<f64>() >= rule.probability {
                continue;
            }
            if let Some(left) = rule.remaining.as_mut() {
                *left -= 1;
            }
            return Some(rule.clone());
        }
        None
    }

    /// Takes one token from the caller's bucket; `Some` answer when the bucket is empty.
    fn throttle(&self, headers: &http::HeaderMap) -> Option<Reply> {
        let limit = self.config.rate_limit.as_ref()?;
        let client = entra::unverified_appid(headers).unwrap_or_default();
        let rate = limit.requests_per_second.max(0.001);
        let burst = f64::from(limit.burst.max(1));
        let now = Instant::now();
        let wait = {
            let mut state = self.lock();
            let (tokens, at) = state.buckets.entry(client.clone()).or_insert((burst, now));
            *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
            *at = now;
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                return None;
            }
            (1.0 - *tokens) / rate
        };
        let client = (!client.is_empty()).then_some(client);
        Some(match limit.answer {
            ThrottleAnswer::TooManyRequests => {
                // Whole seconds, rounded up, at least 1.
                let seconds = wait.ceil().clamp(1.0, 86_400.0) as u64;
                let value = match limit.retry_after_as {
                    RetryAfterAs::Seconds => seconds.to_string(),
                    RetryAfterAs::HttpDate => (chrono::Utc::now()
                        + chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(1)))
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string(),
                };
                Reply::error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    "Rate limit exceeded; retry later.",
                )
                .header(RETRY_AFTER, &value)
                .client(client)
            }
            ThrottleAnswer::GatewayBusy => {
                let mut reply = Reply::json(StatusCode::SERVICE_UNAVAILABLE, &Value::Null);
                reply.body = Bytes::from_static(
                    b"<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>",
                );
                reply.content_type = "text/html";
                reply.client(client)
            }
        })
    }

    fn record(&self, entry: LoggedRequest) {
        let mut state = self.lock();
        *state
            .stats
            .requests
            .entry(entry.operation.clone())
            .or_default()
            .entry(entry.status)
            .or_default() += 1;
        if entry.operation == "token" {
            state.stats.token_requests += 1;
        }
        state.log.push(entry);
    }
}

/// A buffered response.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub content_type: &'static str,
    pub body: Bytes,
    /// The calling app, when known.
    pub client: Option<String>,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, value: &Value) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            content_type: "application/json; charset=utf-8",
            body: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
            client: None,
        }
    }

    /// The proxy's error body: `{"error": code, "message": text}`.
    pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Self {
        Reply::json(status, &json!({"error": code, "message": message}))
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }

    /// The same reply with another status (an invalid status keeps the old one).
    pub(crate) fn status(mut self, status: u16) -> Self {
        if let Ok(status) = StatusCode::from_u16(status) {
            self.status = status;
        }
        self
    }

    /// An error reply's `message` as a `text/plain` body (other replies unchanged).
    pub(crate) fn error_as_text(mut self) -> Self {
        if self.status.as_u16() < 400 {
            return self;
        }
        if let Some(message) = serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        {
            self.body = Bytes::from(message);
            self.content_type = "text/plain; charset=utf-8";
        }
        self
    }

    pub(crate) fn client(mut self, client: Option<String>) -> Self {
        self.client = client;
        self
    }

    fn into_response(self) -> Response<Body> {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

/// Where a request goes. Path parameters are percent-decoded.
#[derive(Debug)]
pub(crate) enum Route {
    Token(String),
    Discovery(String),
    Jwks(String),
    Status,
    Create(String),
    Unsupported,
    Brokers,
    List,
    Describe(String),
    DescribePartition(String, String),
    Produce(String),
    Consume(String, String, String),
    Control(Vec<String>),
    Unknown,
}

impl Route {
    pub(crate) fn operation(&self) -> &'static str {
        match self {
            Route::Token(_) => "token",
            Route::Discovery(_) => "discovery",
            Route::Jwks(_) => "jwks",
            Route::Status => "status",
            Route::Create(_) => "create",
            Route::Unsupported => "unsupported",
            Route::Brokers => "brokers",
            Route::List => "list",
            Route::Describe(_) => "describe",
            Route::DescribePartition(..) => "describe_partition",
            Route::Produce(_) => "produce",
            Route::Consume(..) => "consume",
            Route::Control(_) => "control",
            Route::Unknown => "unknown",
        }
    }

    pub(crate) fn is_proxy(&self) -> bool {
        matches!(
            self,
            Route::Status
                | Route::Create(_)
                | Route::Unsupported
                | Route::Brokers
                | Route::List
                | Route::Describe(_)
                | Route::DescribePartition(..)
                | Route::Produce(_)
                | Route::Consume(..)
        )
    }
}

pub(crate) fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi * 16 + lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

pub(crate) fn classify(method: &Method, path: &str) -> Route {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let get = method == Method::GET;
    match s.as_slice() {
        ["_emulator", rest @ ..] => Route::Control(rest.iter().map(|x| (*x).to_string()).collect()),
        ["v1", "status"] if get => Route::Status,
        ["v1", "topics", t] if method == Method::PUT => Route::Create((*t).to_string()),
        ["v1", "metadata", "brokers"] if get => Route::Brokers,
        ["v1", "metadata", "topics"] if get => Route::List,
        ["v1", "metadata", "topics", t, "partitions"] if get => Route::Describe((*t).to_string()),
        ["v1", "metadata", "topics", t, "partitions", p] if get => {
            Route::DescribePartition((*t).to_string(), (*p).to_string())
        }
        ["v1", "producer", "topics", t] if method == Method::POST => {
            Route::Produce((*t).to_string())
        }
        ["v1", "consumer", "topics", t, "partitions", p, "offsets", o] if get => {
            Route::Consume((*t).to_string(), (*p).to_string(), (*o).to_string())
        }
        ["v1", "status"]
        | ["v1", "topics", _]
        | ["v1", "metadata", "brokers"]
        | ["v1", "metadata", "topics"]
        | ["v1", "metadata", "topics", _, "partitions"]
        | ["v1", "metadata", "topics", _, "partitions", _]
        | ["v1", "producer", "topics", _]
        | ["v1", "consumer", "topics", _, "partitions", _, "offsets", _] => Route::Unsupported,
        [tenant, "oauth2", "v2.0", "token"] => Route::Token((*tenant).to_string()),
        [tenant, "v2.0", ".well-known", "openid-configuration"] if get => {
            Route::Discovery((*tenant).to_string())
        }
        [tenant, "discovery", "v2.0", "keys"] if get => Route::Jwks((*tenant).to_string()),
        _ => Route::Unknown,
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, Reply> {
    match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => {
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(Reply::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request_too_large",
                    &format!("The request body exceeds {MAX_REQUEST_BODY} bytes."),
                ))
            } else {
                Err(Reply::error(
                    StatusCode::BAD_REQUEST,
                    "bad_request_body",
                    "The request body could not be read.",
                ))
            }
        }
    }
}

/// The request head handlers need.
pub(crate) struct Head {
    pub method: Method,
    pub query: Option<String>,
    pub headers: http::HeaderMap,
    /// The management node serving a proxy request (0 for everything else).
    pub node: u32,
    /// For a token request with a federated client assertion: the outcome of checking it
    /// against the issuer's published keys (fetched before the request is dispatched).
    pub federated: Option<Result<(), crate::assertion::Refusal>>,
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    role: Role,
    request: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let mut route = classify(&parts.method, &path);
    if !role.serves(&route) {
        route = Route::Unknown;
    }
    let node = if route.is_proxy() {
        let nodes = u64::from(shared.config.management_nodes.max(1));
        let mut state = shared.lock();
        let node = state.next_node % nodes;
        state.next_node = state.next_node.wrapping_add(1);
        u32::try_from(node).unwrap_or(0)
    } else {
        0
    };
    let mut head = Head {
        method: parts.method.clone(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        node,
        federated: None,
    };
    if let Route::Control(segments) = &route {
        let reply = match read_body(body).await {
            Ok(body) => control::handle(&shared, &head.method, segments, &body),
            Err(reply) => reply,
        };
        return reply.into_response();
    }
    let operation = route.operation();
    let (extra_latency_ms, token_down) = {
        let state = shared.lock();
        (
            state.faults.extra_latency_ms,
            state.faults.token_endpoint_down,
        )
    };
    let configured = if route.is_proxy() {
        shared.config.latency_ms
    } else {
        0
    };
    let latency = extra_latency_ms.saturating_add(configured);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let body = read_body(body).await;
    if let (Route::Token(_), Ok(bytes)) = (&route, &body) {
        head.federated = entra::verify_federated(&shared, &head, bytes).await;
    }
    let (response, client) = if operation == "token" && token_down {
        let reply = Reply::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "error": "temporarily_unavailable",
                "error_description": "The token service is temporarily unavailable.",
            }),
        );
        (reply.into_response(), None)
    } else if let Some(reply) = route
        .is_proxy()
        .then(|| shared.throttle(&head.headers))
        .flatten()
    {
        let client = reply.client.clone();
        (reply.into_response(), client)
    } else {
        match shared.fire_fault(operation, route.is_proxy()) {
            Some(rule) => injected(&shared, &route, &head, body, &rule),
            None => {
                let reply = match body {
                    Ok(body) => dispatch(&shared, &route, &head, &body),
                    Err(reply) => reply,
                };
                let client = reply.client.clone();
                (reply.into_response(), client)
            }
        }
    };
    if let Route::Create(topic) = &route {
        *shared
            .lock()
            .stats
            .creates_per_topic
            .entry(topic.clone())
            .or_default() += 1;
    }
    shared.record(LoggedRequest {
        at: SystemTime::now(),
        method: head.method.to_string(),
        path,
        operation: operation.to_string(),
        status: response.status().as_u16(),
        client,
        node: route.is_proxy().then_some(node),
    });
    response
}

fn dispatch(shared: &Shared, route: &Route, head: &Head, body: &Bytes) -> Reply {
    match route {
        Route::Token(tenant) => entra::token(shared, tenant, head, body),
        Route::Discovery(tenant) => entra::discovery(shared, tenant),
        Route::Jwks(tenant) => entra::jwks(shared, tenant),
        Route::Unknown => Reply::error(StatusCode::NOT_FOUND, "not_found", "No such resource."),
        Route::Control(_) => Reply::error(StatusCode::NOT_FOUND, "not_found", "No such resource."),
        proxy_route => proxy::handle(shared, proxy_route, head, body),
    }
}

fn stream_body(
    chunks: impl futures::Stream<Item = Bytes> + Send + 'static,
    status: StatusCode,
    length: u64,
) -> Response<Body> {
    use futures::StreamExt as _;
    let mut response = Response::new(Body::from_stream(chunks.map(Ok::<_, Infallible>)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// Answers a request with a fired fault rule.
fn injected(
    shared: &Shared,
    route: &Route,
    head: &Head,
    body: Result<Bytes, Reply>,
    rule: &FaultRule,
) -> (Response<Body>, Option<String>) {
    let real = |body: Result<Bytes, Reply>| match body {
        Ok(body) => dispatch(shared, route, head, &body),
        Err(reply) => reply,
    };
    // With `applied`, the request takes effect first and its real answer is thrown away (the
    // bodies that carry the real answer run it themselves below).
    let mut body = body;
    let mut applied_client = None;
    if rule.applied
        && matches!(
            rule.body,
            FaultBody::Json | FaultBody::Garbage | FaultBody::Oversized { .. }
        )
    {
        let reply = real(std::mem::replace(&mut body, Ok(Bytes::new())));
        applied_client = reply.client;
    }
    let retry_after = rule.retry_after_seconds.map(|s| s.to_string());
    let with_retry = |reply: Reply| match &retry_after {
        Some(seconds) => reply.header(RETRY_AFTER, seconds),
        None => reply,
    };
    match &rule.body {
        FaultBody::Json => {
            let status =
                StatusCode::from_u16(rule.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reply = with_retry(Reply::error(
                status,
                "injected_fault",
                &format!(
                    "Fault injected by the emulator: status {}.",
                    status.as_u16()
                ),
            ));
            (reply.into_response(), applied_client)
        }
        FaultBody::Garbage => {
            let mut reply = with_retry(Reply::json(StatusCode::OK, &Value::Null));
            reply.body = Bytes::from_static(b"<html><body>\x00\xffnot json{{{\"</body>");
            (reply.into_response(), applied_client)
        }
        FaultBody::Truncated => {
            let mut reply = with_retry(real(body));
            let client = reply.client.clone();
            // A cut connection loses bytes, not the status line: a refused create stays
            // refused.
            let half = reply.body.len() / 2;
            reply.body = reply.body.slice(..half);
            (reply.into_response(), client)
        }
        FaultBody::Oversized { bytes } => {
            const CHUNK: u64 = 64 * 1024;
            let prefix = Bytes::from_static(b"{\"padding\":\"");
            let suffix = Bytes::from_static(b"\"}");
            let total = (*bytes).max(14);
            let fill = total - 14;
            let filler = futures::stream::unfold(fill, |left| async move {
                if left == 0 {
                    None
                } else {
                    let n = left.min(CHUNK);
                    let chunk = Bytes::from(vec![b'a'; usize::try_from(n).unwrap_or(0)]);
                    Some((chunk, left - n))
                }
            });
            use futures::StreamExt as _;
            let stream = futures::stream::once(async move { prefix })
                .chain(filler)
                .chain(futures::stream::once(async move { suffix }));
            let mut response = stream_body(stream, StatusCode::OK, total);
            if let Some(seconds) = retry_after.and_then(|s| HeaderValue::from_str(&s).ok()) {
                response.headers_mut().insert(RETRY_AFTER, seconds);
            }
            (response, applied_client)
        }
        FaultBody::Stall {
            after_bytes,
            seconds,
        } => {
            let reply = real(body);
            let client = reply.client.clone();
            let status = reply.status;
            let full = reply.body;
            let len = full.len();
            let cut = usize::try_from(*after_bytes)
                .unwrap_or(usize::MAX)
                .min(len.saturating_sub(1));
            let first = full.slice(..cut);
            let rest = full.slice(cut..);
            let pause = Duration::from_secs(*seconds);
            use futures::StreamExt as _;
            let stream = futures::stream::once(async move { first }).chain(futures::stream::once(
                async move {
                    tokio::time::sleep(pause).await;
                    rest
                },
            ));
            // A slow body does not change the status line either: a create refused because the
            // topic exists is a stalled refusal, not a stalled success.
            (
                stream_body(stream, status, u64::try_from(len).unwrap_or(0)),
                client,
            )
        }
    }
}

/// Accepts connections until `shutdown` fires, then drops every open connection.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    role: Role,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, role, request).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
    connections.shutdown().await;
}
