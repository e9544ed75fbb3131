//! Proxy client against small local mock servers, for exact wire shapes and failure modes:
//! status mapping, retries and their limits, Retry-After, token refresh on 401, body caps,
//! stalled and malformed bodies, rate and concurrency limits.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hdinsight_topic_operator::auth::{ClientAuth, ClientCredentials, SecretString};
use hdinsight_topic_operator::proxy::{
    NoopObserver, Operation, ProducerRecord, ProxyClient, ProxyClientConfig, ProxyError,
    ProxyObserver, TopicCreationRecord,
};
use serde_json::json;
use url::Url;

/// One request the mock proxy saw.
#[derive(Clone, Debug)]
struct Hit {
    at: Instant,
    wall: SystemTime,
    method: String,
    path: String,
    authorization: String,
    body: String,
}

type Answer = Arc<dyn Fn(&Hit, usize) -> (Duration, Response) + Send + Sync>;

struct Mock {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
    tokens: Arc<AtomicUsize>,
}

impl Mock {
    /// A token endpoint issuing `tok-1`, `tok-2`, … and a proxy answering with `answer(hit, n)`
    /// (n counts proxy requests from 1) after the returned delay.
    async fn start(
        answer: impl Fn(&Hit, usize) -> (Duration, Response) + Send + Sync + 'static,
    ) -> Self {
        let answer: Answer = Arc::new(answer);
        let hits = Arc::new(Mutex::new(Vec::<Hit>::new()));
        let tokens = Arc::new(AtomicUsize::new(0));
        let token_counter = tokens.clone();
        let proxy_hits = hits.clone();
        let router = Router::new()
            .route(
                "/{tenant}/oauth2/v2.0/token",
                post(move || {
                    let n = token_counter.fetch_add(1, Ordering::SeqCst) + 1;
                    async move {
                        axum::Json(json!({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":format!("tok-{n}")}))
                    }
                }),
            )
            .fallback(move |req: Request| {
                let hits = proxy_hits.clone();
                let answer = answer.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
                    let hit = Hit {
                        at: Instant::now(),
                        wall: SystemTime::now(),
                        method: parts.method.to_string(),
                        path: parts
                            .uri
                            .path_and_query()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default(),
                        authorization: parts
                            .headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string(),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    };
                    let n = {
                        let mut hits = hits.lock().expect("lock");
                        hits.push(hit.clone());
                        hits.len()
                    };
                    let (delay, response) = answer(&hit, n);
                    tokio::time::sleep(delay).await;
                    response
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        Mock { addr, hits, tokens }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("lock").clone()
    }

    fn token_requests(&self) -> usize {
        self.tokens.load(Ordering::SeqCst)
    }

    fn config(&self) -> ProxyClientConfig {
        config_for(self.addr, self.addr)
    }

    fn client(&self, tweak: impl FnOnce(&mut ProxyClientConfig)) -> ProxyClient {
        let mut config = self.config();
        tweak(&mut config);
        ProxyClient::new(config, Arc::new(NoopObserver)).expect("valid config")
    }
}

fn config_for(endpoint: SocketAddr, authority: SocketAddr) -> ProxyClientConfig {
    let credentials = ClientCredentials {
        tenant_id: "tenant-1".into(),
        client_id: "app-1".into(),
        auth: ClientAuth::Secret(SecretString::new("client-secret-value")),
    };
    let mut config = ProxyClientConfig::new(
        "kafka/proxy",
        Url::parse(&format!("http://{endpoint}")).expect("url"),
        credentials,
    );
    config.authority = Url::parse(&format!("http://{authority}")).expect("url");
    config.allow_insecure_http = true;
    config
}

fn json_response(status: StatusCode, body: serde_json::Value) -> (Duration, Response) {
    (Duration::ZERO, (status, axum::Json(body)).into_response())
}

fn status_only(status: StatusCode, body: &str) -> (Duration, Response) {
    (Duration::ZERO, (status, body.to_string()).into_response())
}

fn with_header(status: StatusCode, name: &'static str, value: String) -> (Duration, Response) {
    let mut headers = HeaderMap::new();
    headers.insert(name, value.parse().expect("header value"));
    (Duration::ZERO, (status, headers, "busy").into_response())
}

fn broker(id: i32) -> serde_json::Value {
    json!({"hostName": format!("wn{id}-kafka"), "port": 9092, "id": id, "rack": "/fd0/ud0"})
}

#[test]
fn clients_and_their_calls_can_be_shared_across_tasks() {
    fn shared<T: Send + Sync + 'static>(_: &T) {}
    fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
    let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let client = ProxyClient::new(config_for(addr, addr), Arc::new(NoopObserver)).expect("client");
    shared(&client);
    shared(client.token_provider());
    let c = client.clone();
    spawnable(async move { c.list_topics().await });
    let c = client.clone();
    spawnable(async move { c.create_topic("t", &TopicCreationRecord::default()).await });
    let c = client;
    spawnable(async move { c.consume("t", 0, 0, 1).await });
}

#[test]
fn plain_http_needs_an_explicit_opt_in() {
    let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
    let mut config = config_for(addr, addr);
    config.allow_insecure_http = false;
    let err = ProxyClient::new(config, Arc::new(NoopObserver)).expect_err("http refused");
    assert!(matches!(err, ProxyError::InvalidConfig(_)), "{err:?}");
    assert!(err.to_string().contains("plain HTTP"));

    let mut config = config_for(addr, addr);
    config.extra_ca_pem =
        Some("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into());
    let err = ProxyClient::new(config, Arc::new(NoopObserver)).expect_err("bad CA");
    assert!(matches!(err, ProxyError::InvalidConfig(_)), "{err:?}");
}

#[tokio::test]
async fn requests_carry_the_bearer_token_and_exact_wire_shapes() {
    let mock = Mock::start(|hit, _| match (hit.method.as_str(), hit.path.as_str()) {
        ("GET", "/v1/status") => status_only(StatusCode::OK, "\"running\""),
        ("GET", "/v1/metadata/brokers") => json_response(StatusCode::OK, json!({"brokers":[broker(1001), broker(1002)]})),
        ("GET", "/v1/metadata/topics") => {
            json_response(StatusCode::OK, json!({"topics":["orders","__consumer_offsets","payments"]}))
        }
        ("GET", "/v1/metadata/topics/orders/partitions") => json_response(
            StatusCode::OK,
            json!({"topic":"orders","partitions":[
                {"partition_id":0,"earliest_offset":0,"latest_offset":10,"leader":broker(1001),"replicas":[broker(1001),broker(1002)],"isr":[broker(1001)]},
                {"partition_id":1,"earliest_offset":0,"latest_offset":0,"leader":{"hostName":"","port":-1,"id":-1},"replicas":[broker(1002)],"isr":[]}
            ]}),
        ),
        ("GET", "/v1/metadata/topics/orders/partitions/1") => json_response(
            StatusCode::OK,
            json!({"partition_id":1,"earliest_offset":0,"latest_offset":0,"leader":null,"replicas":[broker(1002)],"isr":[]}),
        ),
        ("PUT", "/v1/topics/orders") => status_only(StatusCode::OK, "\"created\""),
        ("POST", "/v1/producer/topics/orders") => status_only(StatusCode::OK, "produced"),
        ("GET", "/v1/consumer/topics/orders/partitions/0/offsets/5?count=2") => {
            // The Swagger shape: a bare array; the header name in another case.
            let body = json!([
                {"key":"k5","value":"v5","partition":0,"offset":5,"timestamp":1700000000000_i64,"timestampType":"CreateTime"},
                {"key":null,"value":"v6","partition":0,"offset":6,"timestamp":1700000000001_i64,"timestampType":"LogAppendTime"}
            ]);
            let mut headers = HeaderMap::new();
            headers.insert("NEXTOFFSET", "7".parse().expect("header"));
            (Duration::ZERO, (StatusCode::OK, headers, axum::Json(body)).into_response())
        }
        ("GET", "/v1/consumer/topics/orders/partitions/0/offsets/7?count=1") => {
            json_response(StatusCode::OK, json!({"records":[]}))
        }
        _ => status_only(StatusCode::NOT_FOUND, "no such path"),
    })
    .await;
    let client = mock.client(|_| {});
    assert_eq!(client.name(), "kafka/proxy");
    assert_eq!(client.status().await.expect("status"), "running");
    let brokers = client.brokers().await.expect("brokers");
    assert_eq!(
        brokers.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![1001, 1002]
    );
    assert_eq!(brokers[0].host_name, "wn1001-kafka");
    assert_eq!(
        client.list_topics().await.expect("list"),
        vec!["orders", "payments"]
    );

    let described = client.describe_topic("orders").await.expect("describe");
    assert_eq!(described.partitions.len(), 2);
    assert_eq!(
        described.partitions[0].leader.as_ref().map(|l| l.id),
        Some(1001)
    );
    assert_eq!(described.partitions[0].replicas.len(), 2);
    assert_eq!(
        described.partitions[1].leader, None,
        "leader id -1 means no leader"
    );
    let p1 = client
        .describe_partition("orders", 1)
        .await
        .expect("partition");
    assert_eq!(p1.leader, None, "leader null means no leader");

    let mut record = TopicCreationRecord {
        partition_count: Some(6),
        replication_factor: Some(3),
        ..Default::default()
    };
    record
        .topic_properties
        .insert("retention.ms".into(), json!(604800000));
    assert_eq!(
        client
            .create_topic("orders", &record)
            .await
            .expect("create"),
        "created"
    );
    let records = [ProducerRecord {
        value: json!({"a":1}),
        key: Some(json!("k")),
        partition: None,
    }];
    assert_eq!(
        client.produce("orders", &records).await.expect("produce"),
        "produced"
    );

    let consumed = client.consume("orders", 0, 5, 2).await.expect("consume");
    assert_eq!(consumed.next_offset, Some(7));
    assert_eq!(consumed.records.len(), 2);
    assert_eq!(consumed.records[1].key, None);
    assert_eq!(
        consumed.records[1].timestamp_type.as_deref(),
        Some("LogAppendTime")
    );
    let empty = client
        .consume("orders", 0, 7, 1)
        .await
        .expect("consume object shape");
    assert!(empty.records.is_empty());
    assert_eq!(empty.next_offset, None);

    let hits = mock.hits();
    assert!(
        hits.iter().all(|h| h.authorization == "Bearer tok-1"),
        "{hits:?}"
    );
    assert_eq!(mock.token_requests(), 1);
    let create = hits
        .iter()
        .find(|h| h.method == "PUT")
        .expect("create sent");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&create.body).expect("json"),
        json!({"partition_count":6,"replication_factor":3,"topic_properties":{"retention.ms":604800000}})
    );
    let produce = hits
        .iter()
        .find(|h| h.method == "POST")
        .expect("produce sent");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&produce.body).expect("json"),
        json!({"records":[{"value":{"a":1},"key":"k"}]})
    );
}

#[tokio::test]
async fn topic_names_are_escaped_into_one_path_segment() {
    let mock = Mock::start(|_, _| status_only(StatusCode::NOT_FOUND, "unknown topic")).await;
    let client = mock.client(|_| {});
    let err = client.describe_topic("a/b c").await.expect_err("not found");
    assert!(err.is_not_found());
    assert_eq!(
        mock.hits()[0].path,
        "/v1/metadata/topics/a%2Fb%20c/partitions"
    );
}

#[tokio::test]
async fn status_codes_map_to_typed_errors() {
    let long_body = "y".repeat(5000);
    let lb = long_body.clone();
    let mock = Mock::start(move |hit, _| match hit.path.as_str() {
        "/v1/metadata/topics/forbidden/partitions" => {
            status_only(StatusCode::FORBIDDEN, "not in group")
        }
        "/v1/metadata/topics/missing/partitions" => status_only(StatusCode::NOT_FOUND, "unknown"),
        "/v1/metadata/topics/echo/partitions" => {
            // A server that echoes the Authorization header must not leak it into errors.
            status_only(
                StatusCode::BAD_REQUEST,
                &format!("bad: {}", hit.authorization),
            )
        }
        "/v1/metadata/topics/long/partitions" => status_only(StatusCode::BAD_REQUEST, &lb),
        "/v1/topics/method" => status_only(StatusCode::METHOD_NOT_ALLOWED, "no"),
        _ => status_only(StatusCode::IM_A_TEAPOT, "teapot"),
    })
    .await;
    let client = mock.client(|c| c.max_retries = 0);
    let err = client.describe_topic("forbidden").await.expect_err("403");
    assert_eq!(
        err.to_string(),
        "the app is not a member of the cluster's security group (HTTP 403): not in group"
    );
    assert!(!err.is_transient());
    assert!(
        client
            .describe_topic("missing")
            .await
            .expect_err("404")
            .is_not_found()
    );
    let err = client.describe_topic("echo").await.expect_err("400");
    assert!(
        matches!(err, ProxyError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("tok-1"), "{err}");
    let err = client.describe_topic("long").await.expect_err("400");
    match &err {
        ProxyError::Rejected { body, .. } => assert!(body.chars().count() <= 301, "{}", body.len()),
        other => panic!("unexpected {other:?}"),
    }
    let err = client
        .create_topic("method", &TopicCreationRecord::default())
        .await
        .expect_err("405");
    assert!(matches!(err, ProxyError::Unsupported { .. }), "{err:?}");
    let err = client.describe_topic("other").await.expect_err("418");
    assert!(
        matches!(err, ProxyError::Rejected { status: 418, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn transient_failures_are_retried_up_to_max_retries() {
    let mock = Mock::start(|_, n| {
        if n <= 2 {
            status_only(StatusCode::INTERNAL_SERVER_ERROR, "boom")
        } else {
            json_response(StatusCode::OK, json!({"topics":["a"]}))
        }
    })
    .await;
    let client = mock.client(|c| c.max_retries = 3);
    assert_eq!(
        client.list_topics().await.expect("third try succeeds"),
        vec!["a"]
    );
    assert_eq!(mock.hits().len(), 3);

    let always = Mock::start(|_, _| status_only(StatusCode::BAD_GATEWAY, "down")).await;
    let client = always.client(|c| c.max_retries = 2);
    let err = client.list_topics().await.expect_err("gives up");
    assert!(
        matches!(err, ProxyError::Server { status: 502, .. }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(always.hits().len(), 3, "one try plus two retries");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let mock = Mock::start(|_, _| status_only(StatusCode::BAD_REQUEST, "invalid")).await;
    let client = mock.client(|c| c.max_retries = 5);
    client.list_topics().await.expect_err("400");
    assert_eq!(mock.hits().len(), 1);
}

#[tokio::test]
async fn create_is_never_repeated_once_the_proxy_may_have_seen_it() {
    for status in [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let mock = Mock::start(move |_, _| status_only(status, "failed")).await;
        let client = mock.client(|c| c.max_retries = 5);
        let err = client
            .create_topic("t", &TopicCreationRecord::default())
            .await
            .expect_err("fails");
        assert!(err.is_transient(), "{err:?}");
        assert_eq!(
            mock.hits().len(),
            1,
            "create after HTTP {status} must not be retried"
        );
    }
    // A timeout: the proxy may have created the topic, so no retry either.
    let slow = Mock::start(|_, _| (Duration::from_secs(5), StatusCode::OK.into_response())).await;
    let client = slow.client(|c| {
        c.max_retries = 5;
        c.limits.request_timeout = Duration::from_millis(300);
    });
    let err = client
        .create_topic("t", &TopicCreationRecord::default())
        .await
        .expect_err("timeout");
    assert!(matches!(err, ProxyError::Timeout), "{err:?}");
    assert_eq!(slow.hits().len(), 1);
}

#[tokio::test]
async fn create_is_retried_when_the_connection_was_refused() {
    // The token endpoint is up; the proxy port refuses connections until a server binds it.
    let tokens = Mock::start(|_, _| status_only(StatusCode::NOT_FOUND, "")).await;
    let port_holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let proxy_addr = port_holder.local_addr().expect("addr");
    drop(port_holder);
    let mut config = config_for(proxy_addr, tokens.addr);
    config.max_retries = 10;
    let client = ProxyClient::new(config, Arc::new(NoopObserver)).expect("client");
    let creates = Arc::new(AtomicUsize::new(0));
    let counter = creates.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let router = Router::new().fallback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "\"ok\"" }
        });
        let listener = tokio::net::TcpListener::bind(proxy_addr)
            .await
            .expect("rebind");
        axum::serve(listener, router).await.expect("serve");
    });
    let reply = client
        .create_topic("t", &TopicCreationRecord::default())
        .await
        .expect("created");
    assert_eq!(reply, "ok");
    assert_eq!(creates.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retry_after_http_date_is_honoured() {
    let date_sent = Arc::new(Mutex::new(None::<SystemTime>));
    let ds = date_sent.clone();
    let mock = Mock::start(move |_, n| {
        if n == 1 {
            let at = SystemTime::now() + Duration::from_secs(2);
            // Whole seconds on the wire; the client may not send before this instant.
            let at = SystemTime::UNIX_EPOCH
                + Duration::from_secs(
                    at.duration_since(SystemTime::UNIX_EPOCH)
                        .expect("epoch")
                        .as_secs(),
                );
            *ds.lock().expect("lock") = Some(at);
            let date =
                chrono::DateTime::<chrono::Utc>::from(at).format("%a, %d %b %Y %H:%M:%S GMT");
            with_header(
                StatusCode::SERVICE_UNAVAILABLE,
                "retry-after",
                date.to_string(),
            )
        } else {
            json_response(StatusCode::OK, json!({"topics":[]}))
        }
    })
    .await;
    let client = mock.client(|c| c.max_retries = 3);
    client.list_topics().await.expect("succeeds after waiting");
    let hits = mock.hits();
    assert_eq!(hits.len(), 2);
    let not_before = date_sent.lock().expect("lock").expect("date sent");
    assert!(
        hits[1].wall >= not_before,
        "retried at {:?}, not before {not_before:?}",
        hits[1].wall
    );
    assert!(hits[1].at.duration_since(hits[0].at) >= Duration::from_millis(900));
}

#[tokio::test]
async fn retry_after_holds_back_every_call_of_the_client() {
    let mock = Mock::start(|_, n| {
        if n == 1 {
            with_header(StatusCode::TOO_MANY_REQUESTS, "retry-after", "1".into())
        } else {
            json_response(StatusCode::OK, json!({"topics":[]}))
        }
    })
    .await;
    let client = mock.client(|c| c.max_retries = 0);
    let err = client
        .list_topics()
        .await
        .expect_err("throttled, no retries");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(matches!(err, ProxyError::Throttled { status: 429, .. }));
    // Another call right after must wait for the Retry-After too.
    let other = client.clone();
    other.status().await.expect("second call");
    let hits = mock.hits();
    assert_eq!(hits.len(), 2);
    assert!(hits[1].at.duration_since(hits[0].at) >= Duration::from_millis(990));
}

#[tokio::test]
async fn long_retry_after_fails_fast_without_sending() {
    let mock =
        Mock::start(|_, _| with_header(StatusCode::TOO_MANY_REQUESTS, "retry-after", "120".into()))
            .await;
    let client = mock.client(|c| c.max_retries = 3);
    let started = Instant::now();
    let err = client.list_topics().await.expect_err("throttled");
    assert!(err.retry_after() >= Some(Duration::from_secs(119)));
    let err = client.list_topics().await.expect_err("still blocked");
    assert!(matches!(err, ProxyError::Throttled { .. }));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(mock.hits().len(), 1, "nothing sent while Retry-After runs");
}

#[tokio::test]
async fn a_retry_after_of_exactly_the_in_call_limit_is_waited_in_place() {
    use hdinsight_topic_operator::proxy::MAX_IN_CALL_WAIT;
    let limit = MAX_IN_CALL_WAIT.as_secs();
    let mock = Mock::start(move |_, n| {
        if n == 1 {
            with_header(
                StatusCode::SERVICE_UNAVAILABLE,
                "retry-after",
                limit.to_string(),
            )
        } else {
            json_response(StatusCode::OK, json!({"topics": []}))
        }
    })
    .await;
    let client = mock.client(|c| c.max_retries = 1);
    let started = Instant::now();
    assert_eq!(
        client.list_topics().await.expect("answered after the wait"),
        Vec::<String>::new()
    );
    assert!(started.elapsed() >= MAX_IN_CALL_WAIT);
    assert_eq!(mock.hits().len(), 2);
}

#[tokio::test]
async fn a_longer_retry_after_extends_the_block_and_a_shorter_one_never_cuts_it() {
    // 1 s is waited in place; then 120 s fails the call and blocks the client.
    let mock = Mock::start(|_, n| {
        let secs = if n == 1 { "1" } else { "120" };
        with_header(StatusCode::TOO_MANY_REQUESTS, "retry-after", secs.into())
    })
    .await;
    let client = mock.client(|c| c.max_retries = 3);
    client.list_topics().await.expect_err("throttled");
    assert_eq!(mock.hits().len(), 2);
    // Past the first Retry-After, within the second: nothing is sent.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let err = client.list_topics().await.expect_err("still blocked");
    assert!(
        matches!(err, ProxyError::Throttled { status: 429, .. }),
        "{err}"
    );
    assert_eq!(
        mock.hits().len(),
        2,
        "sent while the 120 s Retry-After runs"
    );
}

#[tokio::test]
async fn an_empty_topic_name_is_refused_before_anything_is_sent() {
    let mock = Mock::start(|_, _| json_response(StatusCode::OK, json!({}))).await;
    let client = mock.client(|_| {});
    match client.describe_topic("").await {
        Err(ProxyError::InvalidConfig(m)) => assert_eq!(m, "the topic name is empty"),
        other => panic!("an empty topic name was not refused: {other:?}"),
    }
    assert!(mock.hits().is_empty(), "a request was sent");
}

#[tokio::test]
async fn a_client_that_replaces_another_keeps_its_retry_after() {
    let mock =
        Mock::start(|_, _| with_header(StatusCode::TOO_MANY_REQUESTS, "retry-after", "120".into()))
            .await;
    let old = mock.client(|c| c.max_retries = 0);
    old.list_topics().await.expect_err("throttled");
    assert_eq!(mock.hits().len(), 1);
    // A rotated Secret builds a new client: it inherits the pending Retry-After and sends
    // nothing either.
    let new = mock.client(|c| c.max_retries = 0);
    new.continue_from(&old);
    let err = new.list_topics().await.expect_err("still blocked");
    assert!(
        matches!(err, ProxyError::Throttled { status: 429, .. }),
        "{err}"
    );
    assert_eq!(
        mock.hits().len(),
        1,
        "the new client sent while Retry-After runs"
    );
    // Without the hand-over a fresh client would have asked.
    let fresh = mock.client(|c| c.max_retries = 0);
    fresh.list_topics().await.expect_err("throttled");
    assert_eq!(mock.hits().len(), 2);
}

#[test]
fn a_client_debugs_as_its_name_endpoint_and_app_but_never_its_secret() {
    let config = config_for(
        "127.0.0.1:1".parse().expect("addr"),
        "127.0.0.1:2".parse().expect("addr"),
    );
    let client = ProxyClient::new(config, Arc::new(NoopObserver)).expect("valid config");
    let shown = format!("{client:?}");
    assert!(shown.starts_with("ProxyClient {"), "{shown}");
    for part in ["kafka/proxy", "http://127.0.0.1:1/", "app-1"] {
        assert!(shown.contains(part), "{part} missing from {shown}");
    }
    assert!(!shown.contains("client-secret-value"), "{shown}");
}

#[tokio::test]
async fn unauthorized_refreshes_the_token_once() {
    let mock = Mock::start(|hit, _| {
        if hit.authorization == "Bearer tok-1" {
            status_only(StatusCode::UNAUTHORIZED, "expired")
        } else {
            json_response(StatusCode::OK, json!({"topics":["a"]}))
        }
    })
    .await;
    let client = mock.client(|c| c.max_retries = 0);
    assert_eq!(client.list_topics().await.expect("refreshed"), vec!["a"]);
    assert_eq!(mock.token_requests(), 2);
    // Also for create: a 401 means nothing was created.
    assert!(
        client
            .create_topic("t", &TopicCreationRecord::default())
            .await
            .is_ok()
    );

    let always = Mock::start(|_, _| status_only(StatusCode::UNAUTHORIZED, "bad audience")).await;
    let client = always.client(|c| c.max_retries = 3);
    let err = client.list_topics().await.expect_err("401 twice");
    assert!(matches!(err, ProxyError::Unauthorized { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(always.hits().len(), 2);
    assert_eq!(always.token_requests(), 2);
}

#[tokio::test]
async fn malformed_oversized_and_stalled_bodies_are_typed_errors() {
    let mock = Mock::start(|hit, _| match hit.path.as_str() {
        "/v1/metadata/topics" => status_only(StatusCode::OK, "<html>garbage</html>"),
        "/v1/metadata/brokers" => {
            status_only(StatusCode::OK, "{\"brokers\":[{\"hostName\":\"a\",\"po")
        }
        "/v1/metadata/topics/big/partitions" => {
            (Duration::ZERO, "z".repeat(9 * 1024 * 1024).into_response())
        }
        "/v1/metadata/topics/bigchunked/partitions" => {
            let chunks = futures::stream::iter(
                (0..200).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 64 * 1024]))),
            );
            (Duration::ZERO, Response::new(Body::from_stream(chunks)))
        }
        _ => {
            let first = futures::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"{\"topic\":"))
            });
            let stream = futures::StreamExt::chain(first, futures::stream::pending());
            (Duration::ZERO, Response::new(Body::from_stream(stream)))
        }
    })
    .await;
    // Bodies are read within the request timeout: a generous one for the large bodies (8 MiB
    // through a debug build on a loaded machine), a short one for the stalled body.
    let client = mock.client(|c| {
        c.max_retries = 0;
        c.limits.request_timeout = Duration::from_secs(10);
    });
    let short = mock.client(|c| {
        c.max_retries = 0;
        c.limits.request_timeout = Duration::from_millis(400);
    });
    let err = client.list_topics().await.expect_err("garbage");
    assert!(matches!(err, ProxyError::Malformed(_)), "{err:?}");
    let err = client.brokers().await.expect_err("truncated");
    assert!(matches!(err, ProxyError::Malformed(_)), "{err:?}");
    let err = client.describe_topic("big").await.expect_err("too large");
    assert!(
        matches!(err, ProxyError::BodyTooLarge { limit } if limit == 8 * 1024 * 1024),
        "{err:?}"
    );
    let err = client
        .describe_topic("bigchunked")
        .await
        .expect_err("too large");
    assert!(matches!(err, ProxyError::BodyTooLarge { .. }), "{err:?}");
    let started = Instant::now();
    let err = short.describe_topic("stalled").await.expect_err("stalled");
    assert!(matches!(err, ProxyError::Timeout), "{err:?}");
    // The body never ends: only the 400 ms timeout ends the call.
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.is_transient());
}

#[tokio::test]
async fn rate_limit_spaces_requests_after_the_burst() {
    let mock = Mock::start(|_, _| json_response(StatusCode::OK, json!({"topics":[]}))).await;
    let client = mock.client(|c| {
        c.limits.requests_per_second = 10;
        c.limits.burst = 2;
    });
    let started = Instant::now();
    for _ in 0..6 {
        client.list_topics().await.expect("list");
    }
    // 2 at once, then 4 more at 10 per second.
    assert!(
        started.elapsed() >= Duration::from_millis(380),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_caps_requests_in_flight() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (f, p) = (in_flight.clone(), peak.clone());
    let mock = Mock::start(move |_, _| {
        let now = f.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(now, Ordering::SeqCst);
        let f = f.clone();
        let stream = futures::stream::once(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            f.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from_static(b"{\"topics\":[]}"))
        });
        (Duration::ZERO, Response::new(Body::from_stream(stream)))
    })
    .await;
    let client = mock.client(|c| {
        c.limits.max_concurrent = 3;
        c.limits.requests_per_second = 0;
    });
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.list_topics().await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("list");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[derive(Default)]
struct Recorder {
    requests: Mutex<Vec<(String, Operation, String)>>,
    throttled: AtomicUsize,
    tokens: Mutex<Vec<bool>>,
    expiries: AtomicUsize,
}

impl ProxyObserver for Recorder {
    fn request(&self, proxy: &str, op: Operation, status_class: &str, _elapsed: Duration) {
        self.requests
            .lock()
            .expect("lock")
            .push((proxy.to_string(), op, status_class.to_string()));
    }
    fn throttled(&self, _proxy: &str) {
        self.throttled.fetch_add(1, Ordering::SeqCst);
    }
    fn token_request(&self, _proxy: &str, ok: bool) {
        self.tokens.lock().expect("lock").push(ok);
    }
    fn token_expiry(&self, _proxy: &str, _expires_at: SystemTime) {
        self.expiries.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn observer_sees_every_attempt_throttling_and_tokens() {
    let mock = Mock::start(|_, n| match n {
        1 => with_header(StatusCode::TOO_MANY_REQUESTS, "retry-after", "0".into()),
        2 => status_only(StatusCode::INTERNAL_SERVER_ERROR, "x"),
        _ => json_response(StatusCode::OK, json!({"topics":[]})),
    })
    .await;
    let recorder = Arc::new(Recorder::default());
    let client = ProxyClient::new(mock.config(), recorder.clone()).expect("client");
    client.list_topics().await.expect("third attempt");
    let requests = recorder.requests.lock().expect("lock").clone();
    let classes: Vec<&str> = requests.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(classes, vec!["4xx", "5xx", "2xx"]);
    assert!(
        requests
            .iter()
            .all(|r| r.0 == "kafka/proxy" && r.1 == Operation::List)
    );
    assert_eq!(recorder.throttled.load(Ordering::SeqCst), 1);
    assert_eq!(*recorder.tokens.lock().expect("lock"), vec![true]);
    assert_eq!(recorder.expiries.load(Ordering::SeqCst), 1);
    assert!(client.token_expires_at().is_some());
    client.invalidate_token();
    assert!(client.token_expires_at().is_none());
}

#[tokio::test]
async fn token_errors_surface_as_auth_errors() {
    // Nothing listens on the authority.
    let mock = Mock::start(|_, _| json_response(StatusCode::OK, json!({"topics":[]}))).await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let mut config = config_for(mock.addr, dead_addr);
    config.max_retries = 1;
    let client = ProxyClient::new(config, Arc::new(NoopObserver)).expect("client");
    let err = client.list_topics().await.expect_err("no token");
    assert!(matches!(err, ProxyError::Auth(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(mock.hits().is_empty());
    assert!(!format!("{err:?}").contains("client-secret-value"));
}

// ---------------------------------------------------------------------------------------------
// Against the HDInsight emulator over HTTPS, trusting its CA through `extra_ca_pem`.

mod emulator {
    use super::*;
    use hdinsight_emulator::{
        AppConfig, ConsumeShape, EmulatorConfig, FaultBody, FaultRule, Faults, LeaderlessAs,
        RunningEmulator, Transport,
    };

    async fn start(config: EmulatorConfig) -> RunningEmulator {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "proxy-client-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        RunningEmulator::start(
            config,
            "127.0.0.1:0".parse().expect("addr"),
            Transport::Tls { dir },
        )
        .await
        .expect("emulator starts")
    }

    fn fast() -> EmulatorConfig {
        EmulatorConfig {
            visibility_delay_ms: 200,
            ..EmulatorConfig::default()
        }
    }

    fn config(emu: &RunningEmulator) -> ProxyClientConfig {
        let app = AppConfig::default();
        let base = Url::parse(&emu.base_url()).expect("url");
        let mut config = ProxyClientConfig::new(
            "kafka/emulated",
            base.clone(),
            ClientCredentials {
                tenant_id: emu.tenant_id().to_string(),
                client_id: app.client_id,
                auth: ClientAuth::Secret(SecretString::new(app.client_secret)),
            },
        );
        config.authority = base;
        config.extra_ca_pem = emu.ca_pem();
        config
    }

    fn client(emu: &RunningEmulator, tweak: impl FnOnce(&mut ProxyClientConfig)) -> ProxyClient {
        let mut config = config(emu);
        tweak(&mut config);
        ProxyClient::new(config, Arc::new(NoopObserver)).expect("client")
    }

    async fn wait_listed(client: &ProxyClient, topic: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !client
            .list_topics()
            .await
            .expect("list")
            .iter()
            .any(|t| t == topic)
        {
            assert!(Instant::now() < deadline, "{topic} never became visible");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn happy_path_over_tls_with_the_extra_ca() {
        let emu = start(fast()).await;
        let client = client(&emu, |_| {});
        client.status().await.expect("status");
        let brokers = client.brokers().await.expect("brokers");
        assert_eq!(brokers.len(), 3);

        let mut record = TopicCreationRecord {
            partition_count: Some(3),
            replication_factor: Some(2),
            ..Default::default()
        };
        record
            .topic_properties
            .insert("retention.ms".into(), json!(604800000));
        record
            .topic_properties
            .insert("min.insync.replicas".into(), json!("1"));
        client
            .create_topic("orders", &record)
            .await
            .expect("create");
        // The list is a cache: the topic shows up after the visibility delay.
        wait_listed(&client, "orders").await;
        let described = client.describe_topic("orders").await.expect("describe");
        assert_eq!(described.topic, "orders");
        assert_eq!(described.partitions.len(), 3);
        assert!(
            described
                .partitions
                .iter()
                .all(|p| p.replicas.len() == 2 && p.leader.is_some())
        );
        let p0 = client
            .describe_partition("orders", 0)
            .await
            .expect("partition");
        assert_eq!(p0.partition_id, 0);

        let records: Vec<ProducerRecord> = (0..5)
            .map(|i| ProducerRecord {
                value: json!(format!("v{i}")),
                key: Some(json!("k")),
                partition: Some(0),
            })
            .collect();
        client.produce("orders", &records).await.expect("produce");
        let consumed = client.consume("orders", 0, 0, 10).await.expect("consume");
        assert_eq!(consumed.records.len(), 5);
        assert_eq!(consumed.records[0].value.as_deref(), Some("v0"));
        assert_eq!(consumed.next_offset, Some(5));

        let stats = emu.control().stats();
        assert_eq!(stats.token_requests, 1, "one token for all calls");
        assert_eq!(stats.count("create"), 1);
        assert!(client.token_expires_at().is_some());
        emu.shutdown().await;
    }

    #[tokio::test]
    async fn consume_array_shape_and_leaderless_partitions() {
        let emu = start(EmulatorConfig {
            consume_shape: ConsumeShape::Array,
            leaderless_as: LeaderlessAs::MinusOne,
            brokers: 1,
            ..fast()
        })
        .await;
        let client = client(&emu, |_| {});
        let record = TopicCreationRecord {
            partition_count: Some(1),
            replication_factor: Some(1),
            ..Default::default()
        };
        client.create_topic("t", &record).await.expect("create");
        wait_listed(&client, "t").await;
        client
            .produce(
                "t",
                &[ProducerRecord {
                    value: json!("x"),
                    key: None,
                    partition: Some(0),
                }],
            )
            .await
            .expect("produce");
        let consumed = client.consume("t", 0, 0, 5).await.expect("consume");
        assert_eq!(consumed.records.len(), 1);
        let brokers = client.brokers().await.expect("brokers");
        assert!(emu.control().broker_down(brokers[0].id));
        let p = client.describe_partition("t", 0).await.expect("partition");
        assert_eq!(p.leader, None, "leader id -1 reads as no leader");
        assert!(p.isr.is_empty());
        assert!(
            client
                .describe_topic("absent")
                .await
                .expect_err("404")
                .is_not_found()
        );
    }

    #[tokio::test]
    async fn tls_is_verified_without_the_extra_ca() {
        let emu = start(fast()).await;
        let client = client(&emu, |c| c.extra_ca_pem = None);
        let err = client.status().await.expect_err("unknown CA");
        // The token request is the first to fail the handshake.
        assert!(
            matches!(err, ProxyError::Auth(_) | ProxyError::Transport(_)),
            "{err:?}"
        );
        assert_eq!(emu.control().stats().token_requests, 0);
    }

    #[tokio::test]
    async fn an_app_outside_the_cluster_group_is_forbidden() {
        let emu = start(fast()).await;
        emu.control()
            .set_app_groups(&AppConfig::default().client_id, vec![]);
        let client = client(&emu, |_| {});
        let err = client.list_topics().await.expect_err("403");
        assert!(matches!(err, ProxyError::Forbidden { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("the app is not a member of the cluster's security group (HTTP 403)")
        );
    }

    #[tokio::test]
    async fn a_rotated_secret_surfaces_as_aadsts_7000215() {
        let emu = start(fast()).await;
        let client = client(&emu, |_| {});
        client.list_topics().await.expect("works before rotation");
        emu.control()
            .set_app_secret(&AppConfig::default().client_id, "new-secret");
        client.invalidate_token();
        let err = client.list_topics().await.expect_err("old secret");
        match &err {
            ProxyError::Auth(auth) => {
                assert_eq!(auth.aadsts(), Some(7000215), "{auth}");
                assert!(
                    auth.to_string().contains("invalid client secret for app"),
                    "{auth}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!err.is_transient());
        assert!(!format!("{err:?}").contains("emulator-secret"));
    }

    #[tokio::test]
    async fn injected_5xx_are_retried_but_a_failed_create_is_sent_once() {
        let emu = start(fast()).await;
        let control = emu.control();
        control.set_faults(Faults {
            rules: vec![
                FaultRule {
                    remaining: Some(2),
                    ..FaultRule::status(&["list"], 500)
                },
                FaultRule {
                    remaining: Some(1),
                    ..FaultRule::status(&["create"], 500)
                },
            ],
            ..Faults::default()
        });
        let client = client(&emu, |c| c.max_retries = 3);
        client.list_topics().await.expect("third try");
        assert_eq!(control.stats().count("list"), 3);
        let err = client
            .create_topic("once", &TopicCreationRecord::default())
            .await
            .expect_err("500");
        assert!(
            matches!(err, ProxyError::Server { status: 500, .. }),
            "{err:?}"
        );
        assert_eq!(control.stats().count("create"), 1);
        // The caller decides what to do next; a second call goes through.
        client
            .create_topic("once", &TopicCreationRecord::default())
            .await
            .expect("create");
    }

    #[tokio::test]
    async fn retry_after_from_the_emulator_is_waited_out() {
        let emu = start(fast()).await;
        let control = emu.control();
        control.set_faults(Faults {
            rules: vec![FaultRule {
                retry_after_seconds: Some(1),
                remaining: Some(1),
                ..FaultRule::status(&["list"], 429)
            }],
            ..Faults::default()
        });
        let client = client(&emu, |_| {});
        client.list_topics().await.expect("after Retry-After");
        let lists: Vec<SystemTime> = control
            .request_log()
            .into_iter()
            .filter(|r| r.operation == "list")
            .map(|r| r.at)
            .collect();
        assert_eq!(lists.len(), 2);
        let gap = lists[1].duration_since(lists[0]).expect("ordered");
        assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    }

    #[tokio::test]
    async fn garbage_truncated_oversized_and_stalled_bodies() {
        let emu = start(fast()).await;
        let control = emu.control();
        let client = client(&emu, |c| {
            c.max_retries = 0;
            c.limits.request_timeout = Duration::from_millis(800);
        });
        client.list_topics().await.expect("warm up the token");
        type Check = fn(&ProxyError) -> bool;
        let cases: Vec<(FaultBody, Check)> = vec![
            (FaultBody::Garbage, |e| {
                matches!(e, ProxyError::Malformed(_))
            }),
            (FaultBody::Truncated, |e| {
                matches!(e, ProxyError::Malformed(_))
            }),
            (
                FaultBody::Oversized {
                    bytes: 9 * 1024 * 1024,
                },
                |e| matches!(e, ProxyError::BodyTooLarge { .. }),
            ),
            (
                FaultBody::Stall {
                    after_bytes: 5,
                    seconds: 5,
                },
                |e| matches!(e, ProxyError::Timeout),
            ),
        ];
        for (body, expected) in cases {
            control.set_faults(Faults {
                rules: vec![FaultRule {
                    body: body.clone(),
                    remaining: Some(1),
                    ..FaultRule::status(&["list"], 200)
                }],
                ..Faults::default()
            });
            let err = client.list_topics().await.expect_err("bad body");
            assert!(expected(&err), "{body:?} gave {err:?}");
        }
    }

    #[tokio::test]
    async fn token_endpoint_down_is_a_transient_auth_error() {
        let emu = start(fast()).await;
        emu.control().set_faults(Faults {
            token_endpoint_down: true,
            ..Faults::default()
        });
        let client = client(&emu, |c| c.max_retries = 1);
        let err = client.list_topics().await.expect_err("no token");
        assert!(matches!(err, ProxyError::Auth(_)), "{err:?}");
        assert!(err.is_transient());
        assert_eq!(emu.control().stats().count("list"), 0);
        emu.control().clear_faults();
        client.list_topics().await.expect("recovers");
    }
}
