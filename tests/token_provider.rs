//! Token provider against small local token endpoints: caching, single flight, typed errors,
//! bounded and timed responses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hdinsight_topic_operator::auth::{
    AccessToken, AuthError, AuthObserver, ClientAuth, ClientCredentials, NoopAuthObserver,
    SecretString, TokenProvider,
};
use url::Url;

const SECRET: &str = "very-secret-value";

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    addr
}

fn credentials() -> ClientCredentials {
    ClientCredentials {
        tenant_id: "tenant-1".into(),
        client_id: "app-1".into(),
        auth: ClientAuth::Secret(SecretString::new(SECRET)),
    }
}

fn provider(addr: SocketAddr, observer: Arc<dyn AuthObserver>) -> TokenProvider {
    let authority = Url::parse(&format!("http://{addr}")).expect("url");
    TokenProvider::new(
        reqwest::Client::new(),
        &authority,
        "https://hib.azurehdinsight.net/.default",
        credentials(),
        observer,
    )
    .expect("valid config")
}

/// A token endpoint that counts requests, waits `delay`, and answers with `answer(n)`.
fn token_endpoint<F>(hits: Arc<AtomicUsize>, delay: Duration, answer: F) -> Router
where
    F: Fn(usize, String) -> Response + Clone + Send + Sync + 'static,
{
    Router::new().route(
        "/{tenant}/oauth2/v2.0/token",
        post(move |body: Bytes| {
            let hits = hits.clone();
            let answer = answer.clone();
            async move {
                let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(delay).await;
                answer(n, String::from_utf8_lossy(&body).into_owned())
            }
        }),
    )
}

fn ok_token(n: usize, expires_in: u64) -> Response {
    axum::Json(serde_json::json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": format!("token-{n}"),
    }))
    .into_response()
}

#[derive(Default)]
struct CountingObserver {
    ok: AtomicUsize,
    failed: AtomicUsize,
    expiries: AtomicUsize,
}

impl AuthObserver for CountingObserver {
    fn token_request(&self, ok: bool) {
        if ok { &self.ok } else { &self.failed }.fetch_add(1, Ordering::SeqCst);
    }
    fn token_expiry(&self, _expires_at: SystemTime) {
        self.expiries.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_callers_cause_exactly_one_token_request() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(
        hits.clone(),
        Duration::from_millis(200),
        |n, form| {
            // The grant is a client-credentials form with the configured fields.
            let fields: Vec<(String, String)> = url::form_urlencoded::parse(form.as_bytes())
                .into_owned()
                .collect();
            let has = |k: &str, v: &str| fields.iter().any(|(a, b)| a == k && b == v);
            if has("grant_type", "client_credentials")
                && has("client_id", "app-1")
                && has("client_secret", SECRET)
                && has("scope", "https://hib.azurehdinsight.net/.default")
            {
                ok_token(n, 3599)
            } else {
                (StatusCode::BAD_REQUEST, "unexpected form").into_response()
            }
        },
    ))
    .await;
    let observer = Arc::new(CountingObserver::default());
    let provider = Arc::new(provider(addr, observer.clone()));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let p = provider.clone();
            tokio::spawn(async move { p.token().await })
        })
        .collect();
    for task in tasks {
        let token = task.await.expect("task").expect("token");
        assert_eq!(token.secret(), "token-1");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(observer.ok.load(Ordering::SeqCst), 1);
    assert_eq!(observer.expiries.load(Ordering::SeqCst), 1);
    // Cached afterwards; the expiry is about an hour away.
    provider.token().await.expect("cached");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let expires = provider.expires_at().expect("cached token");
    let left = expires.duration_since(SystemTime::now()).expect("future");
    assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3599));
}

#[test]
fn a_provider_and_its_tokens_show_what_they_are_but_never_a_secret() {
    let provider = provider(
        "127.0.0.1:9".parse().expect("addr"),
        Arc::new(NoopAuthObserver),
    );
    assert_eq!(provider.client_id(), "app-1");
    let shown = format!("{provider:?}");
    for part in [
        "TokenProvider {",
        "http://127.0.0.1:9/tenant-1/oauth2/v2.0/token",
        "https://hib.azurehdinsight.net/.default",
        "app-1",
    ] {
        assert!(shown.contains(part), "{part} missing from {shown}");
    }
    assert!(!shown.contains(SECRET), "{shown}");
    let token = AccessToken::new("eyJ.the-token", SystemTime::UNIX_EPOCH);
    let shown = format!("{token:?}");
    assert!(shown.starts_with("AccessToken {"), "{shown}");
    assert!(shown.contains("expires_at"), "{shown}");
    assert!(!shown.contains("the-token"), "{shown}");
}

#[tokio::test]
async fn invalidate_fetches_a_new_token() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(hits.clone(), Duration::ZERO, |n, _| {
        ok_token(n, 3599)
    }))
    .await;
    let provider = provider(addr, Arc::new(NoopAuthObserver));
    assert_eq!(provider.token().await.expect("token").secret(), "token-1");
    provider.invalidate();
    assert_eq!(provider.expires_at(), None);
    assert_eq!(provider.token().await.expect("token").secret(), "token-2");
    // Invalidating a token that is no longer cached keeps the current one.
    let stale = hdinsight_topic_operator::auth::AccessToken::new("token-1", SystemTime::now());
    provider.invalidate_token(&stale);
    let current = provider.token().await.expect("token");
    assert_eq!(current.secret(), "token-2");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // Invalidating the cached token (the proxy answered 401 to it) fetches a new one.
    provider.invalidate_token(&current);
    assert_eq!(provider.expires_at(), None);
    assert_eq!(provider.token().await.expect("token").secret(), "token-3");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed_at_half_their_lifetime() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(hits.clone(), Duration::ZERO, |n, _| {
        ok_token(n, 2)
    }))
    .await;
    let provider = provider(addr, Arc::new(NoopAuthObserver));
    assert_eq!(provider.token().await.expect("token").secret(), "token-1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(provider.token().await.expect("token").secret(), "token-1");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(provider.token().await.expect("token").secret(), "token-2");
}

#[tokio::test]
async fn a_failed_early_refresh_keeps_the_current_token_while_it_is_valid() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(hits.clone(), Duration::ZERO, |n, _| {
        if n == 1 {
            ok_token(n, 6)
        } else {
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }))
    .await;
    let provider = provider(addr, Arc::new(NoopAuthObserver));
    assert_eq!(provider.token().await.expect("token").secret(), "token-1");
    // Past half of the 6 s lifetime: a refresh is due, fails, and the current token is used.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(
        provider.token().await.expect("fallback").secret(),
        "token-1"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // The next attempt waits a little instead of hammering the endpoint.
    assert_eq!(
        provider.token().await.expect("fallback").secret(),
        "token-1"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // … of half the time left (1.4 s of 2.8 s), so it comes before the token expires: at 5.2 s
    // it is tried again, fails, and with under a quarter of the lifetime left the error
    // surfaces instead of a token about to expire.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let err = provider.token().await.expect_err("too close to expiry");
    assert!(matches!(err, AuthError::Server { status: 503 }), "{err:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // Without a token to fall back on, the error surfaces.
    provider.invalidate();
    let err = provider.token().await.expect_err("endpoint down");
    assert!(matches!(err, AuthError::Server { status: 503 }), "{err:?}");
}

#[tokio::test]
async fn aadsts_rejection_is_typed_and_never_shows_the_secret() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(hits.clone(), Duration::ZERO, |_, _| {
        let body = serde_json::json!({
            "error": "invalid_client",
            "error_description": format!("AADSTS7000215: Invalid client secret provided ({SECRET}).\r\nTrace ID: abc\r\nCorrelation ID: def\r\nTimestamp: 2026-01-01 00:00:00Z"),
            "error_codes": [7000215],
        });
        (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
    }))
    .await;
    let observer = Arc::new(CountingObserver::default());
    let provider = provider(addr, observer.clone());
    let err = provider.token().await.expect_err("rejected");
    assert_eq!(
        err.to_string(),
        "AADSTS7000215: invalid client secret for app app-1 (invalid_client, HTTP 401)"
    );
    assert_eq!(err.aadsts(), Some(7000215));
    assert!(!err.is_transient());
    match &err {
        AuthError::Rejected {
            description,
            status,
            ..
        } => {
            assert_eq!(*status, 401);
            assert!(!description.contains("Trace ID"), "{description}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!format!("{err:?}").contains(SECRET));
    assert_eq!(observer.failed.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_is_shared_by_everyone_who_waited_for_it() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(
        hits.clone(),
        Duration::from_millis(200),
        |_, _| StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    ))
    .await;
    let provider = Arc::new(provider(addr, Arc::new(NoopAuthObserver)));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let p = provider.clone();
            tokio::spawn(async move { p.token().await })
        })
        .collect();
    for task in tasks {
        let err = task.await.expect("task").expect_err("server error");
        assert!(matches!(err, AuthError::Server { status: 500 }), "{err:?}");
        assert!(err.is_transient());
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // A later call tries again.
    provider.token().await.expect_err("still failing");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

/// Callers that waited for a refresh get what its own caller got. Here the refresh fails
/// with the current token too close to expiry to fall back on (under a quarter of its 8 s
/// lifetime left), so the error surfaces for everyone, not a token for some and an error for
/// others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_share_a_failed_refresh_instead_of_the_token_it_refused() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(
        hits.clone(),
        Duration::from_millis(200),
        |n, _| {
            if n == 1 {
                ok_token(n, 8)
            } else {
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
        },
    ))
    .await;
    let provider = Arc::new(provider(addr, Arc::new(NoopAuthObserver)));
    assert_eq!(provider.token().await.expect("token").secret(), "token-1");
    // 6.5 s in: 1.5 s left, under the 2 s guard, but token-1 is still valid.
    tokio::time::sleep(Duration::from_millis(6300)).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let p = provider.clone();
            tokio::spawn(async move { p.token().await.map(|t| t.secret().to_owned()) })
        })
        .collect();
    for task in tasks {
        let outcome = task.await.expect("task");
        assert!(
            matches!(outcome, Err(AuthError::Server { status: 503 })),
            "{outcome:?}"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "one refresh for all callers"
    );
}

#[tokio::test]
async fn throttling_carries_retry_after() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(hits, Duration::ZERO, |_, _| {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().expect("header"));
        (StatusCode::TOO_MANY_REQUESTS, headers, "slow down").into_response()
    }))
    .await;
    let err = provider(addr, Arc::new(NoopAuthObserver))
        .token()
        .await
        .expect_err("throttled");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert!(err.is_transient());
}

/// RFC 6749 §5.1: a token comes with 200 OK and a JSON body (`application/json`). A 2xx
/// other than 200, or a token body sent as another media type, is not a token response.
#[tokio::test]
async fn success_other_than_200_json_is_malformed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(hits.clone(), Duration::ZERO, |n, _| {
        let body = serde_json::json!({"access_token": "t", "expires_in": 3599}).to_string();
        match n {
            1 => (
                StatusCode::CREATED,
                [("content-type", "application/json")],
                body,
            )
                .into_response(),
            2 => StatusCode::NO_CONTENT.into_response(),
            3 => (StatusCode::OK, [("content-type", "text/html")], body).into_response(),
            _ => ok_token(n, 3599),
        }
    }))
    .await;
    let provider = provider(addr, Arc::new(NoopAuthObserver));
    for what in ["201", "204", "text/html"] {
        let err = provider.token().await.expect_err(what);
        assert!(matches!(err, AuthError::Malformed(_)), "{what}: {err:?}");
        assert!(!err.is_transient(), "{what}");
    }
    let shown = format!(
        "{:?}",
        provider
            .token()
            .await
            .expect("the fourth answer is a token")
    );
    assert!(!shown.contains("token-4"), "Debug shows no token: {shown}");
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

/// A 4xx that is not Entra's error JSON (empty, or an HTML page from a proxy in between) is
/// still a typed rejection with its status, and never shows the secret.
#[tokio::test]
async fn rejections_without_entra_json_keep_their_status() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(hits, Duration::ZERO, |n, _| match n {
        1 => StatusCode::UNAUTHORIZED.into_response(),
        _ => (
            StatusCode::FORBIDDEN,
            [("content-type", "text/html")],
            format!("<html>Forbidden: {SECRET}</html>\nmore"),
        )
            .into_response(),
    }))
    .await;
    let provider = provider(addr, Arc::new(NoopAuthObserver));
    let err = provider.token().await.expect_err("401");
    match &err {
        AuthError::Rejected { status, aadsts, .. } => assert_eq!((*status, *aadsts), (401, None)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.is_transient());
    let err = provider.token().await.expect_err("403");
    match &err {
        AuthError::Rejected {
            status,
            description,
            ..
        } => {
            assert_eq!(*status, 403);
            assert_eq!(description, "<html>Forbidden: <redacted></html>");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!err.to_string().contains(SECRET) && !format!("{err:?}").contains(SECRET));
}

#[tokio::test]
async fn stalled_response_times_out() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(hits, Duration::ZERO, |_, _| {
        let first = futures::stream::once(async {
            Ok::<_, std::io::Error>(Bytes::from_static(b"{\"access_token\":\"tok"))
        });
        let stream = futures::StreamExt::chain(first, futures::stream::pending());
        Response::new(Body::from_stream(stream))
    }))
    .await;
    let provider =
        provider(addr, Arc::new(NoopAuthObserver)).with_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = provider.token().await.expect_err("stalled");
    assert!(matches!(err, AuthError::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn oversized_and_garbage_responses_are_malformed() {
    let hits = Arc::new(AtomicUsize::new(0));
    let addr = serve(token_endpoint(hits, Duration::ZERO, |n, _| {
        if n == 1 {
            "x".repeat(200 * 1024).into_response()
        } else {
            "<html>not json</html>".into_response()
        }
    }))
    .await;
    let provider = provider(addr, Arc::new(NoopAuthObserver));
    let err = provider.token().await.expect_err("oversized");
    assert!(matches!(err, AuthError::Malformed(_)), "{err:?}");
    let err = provider.token().await.expect_err("garbage");
    assert!(matches!(err, AuthError::Malformed(_)), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn unreachable_endpoint_is_a_transport_error() {
    // Bind and drop to get a loopback port that refuses connections.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = provider(addr, Arc::new(NoopAuthObserver))
        .token()
        .await
        .expect_err("refused");
    assert!(matches!(err, AuthError::Transport(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(!err.to_string().contains(SECRET));
}

#[test]
fn bad_configuration_is_rejected_up_front() {
    let authority = Url::parse("https://login.microsoftonline.com").expect("url");
    let mut creds = credentials();
    creds.tenant_id = String::new();
    let err = TokenProvider::new(
        reqwest::Client::new(),
        &authority,
        "scope/.default",
        creds,
        Arc::new(NoopAuthObserver),
    )
    .expect_err("empty tenant");
    assert!(matches!(err, AuthError::InvalidConfig(_)));
}

// ---------------------------------------------------------------------------------------------
// Against the HDInsight emulator's Entra ID token endpoint: single flight and the AADSTS rows.

mod emulator {
    use super::*;
    use hdinsight_emulator::{AppConfig, EmulatorConfig, RunningEmulator, Transport};

    const SCOPE: &str = "https://hib.azurehdinsight.net/.default";

    async fn start(config: EmulatorConfig) -> RunningEmulator {
        RunningEmulator::start(
            config,
            "127.0.0.1:0".parse().expect("addr"),
            Transport::PlainHttp,
        )
        .await
        .expect("emulator starts")
    }

    fn provider_for(
        emu: &RunningEmulator,
        tenant: &str,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> TokenProvider {
        TokenProvider::new(
            reqwest::Client::new(),
            &Url::parse(&emu.base_url()).expect("url"),
            scope,
            ClientCredentials {
                tenant_id: tenant.into(),
                client_id: client_id.into(),
                auth: ClientAuth::Secret(SecretString::new(secret)),
            },
            Arc::new(NoopAuthObserver),
        )
        .expect("config")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_token_request_for_a_thousand_callers() {
        let emu = start(EmulatorConfig {
            latency_ms: 100,
            ..EmulatorConfig::default()
        })
        .await;
        let app = AppConfig::default();
        let provider = Arc::new(provider_for(
            &emu,
            emu.tenant_id(),
            &app.client_id,
            &app.client_secret,
            SCOPE,
        ));
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let p = provider.clone();
                tokio::spawn(async move { p.token().await.map(|t| t.secret().to_string()) })
            })
            .collect();
        let mut tokens = std::collections::BTreeSet::new();
        for t in tasks {
            tokens.insert(t.await.expect("task").expect("token"));
        }
        assert_eq!(tokens.len(), 1);
        assert_eq!(emu.control().stats().token_requests, 1);
        let left = provider
            .expires_at()
            .expect("cached")
            .duration_since(SystemTime::now())
            .expect("future");
        assert!(left > Duration::from_secs(3500));
    }

    #[tokio::test]
    async fn every_aadsts_row_is_typed() {
        let wrong = AppConfig::default();
        let expired = AppConfig {
            client_id: "33333333-3333-3333-3333-333333333333".into(),
            client_secret: "old".into(),
            secret_expired: true,
            ..AppConfig::default()
        };
        let emu = start(EmulatorConfig {
            apps: vec![wrong.clone(), expired.clone()],
            ..EmulatorConfig::default()
        })
        .await;
        let tenant = emu.tenant_id().to_string();
        let rows: Vec<(&str, &str, &str, &str, u16, &str, u32)> = vec![
            (
                &tenant,
                &wrong.client_id,
                "not-the-secret",
                SCOPE,
                401,
                "invalid_client",
                7000215,
            ),
            (
                &tenant,
                &expired.client_id,
                "old",
                SCOPE,
                401,
                "invalid_client",
                7000222,
            ),
            (
                &tenant,
                &wrong.client_id,
                "",
                SCOPE,
                401,
                "invalid_client",
                7000218,
            ),
            (
                &tenant,
                "99999999-9999-9999-9999-999999999999",
                "some-secret-value",
                SCOPE,
                400,
                "unauthorized_client",
                700016,
            ),
            (
                "unknown-tenant.example",
                &wrong.client_id,
                &wrong.client_secret,
                SCOPE,
                400,
                "invalid_request",
                90002,
            ),
            (
                &tenant,
                &wrong.client_id,
                &wrong.client_secret,
                "https://hib.azurehdinsight.net",
                400,
                "invalid_scope",
                1002012,
            ),
            (
                &tenant,
                &wrong.client_id,
                &wrong.client_secret,
                "https://unknown.example/.default",
                400,
                "invalid_resource",
                500011,
            ),
        ];
        for (tenant, client_id, secret, scope, status, error, code) in rows {
            let err = provider_for(&emu, tenant, client_id, secret, scope)
                .token()
                .await
                .expect_err("rejected");
            match &err {
                AuthError::Rejected {
                    status: s,
                    error: e,
                    aadsts,
                    description,
                    client_id: c,
                } => {
                    assert_eq!(
                        (*s, e.as_str(), *aadsts),
                        (status, error, Some(code)),
                        "{err}"
                    );
                    assert!(
                        description.starts_with(&format!("AADSTS{code}: ")),
                        "{description}"
                    );
                    assert!(!description.contains('\n') && !description.contains("Trace ID"));
                    assert_eq!(c, client_id);
                }
                other => panic!("row {code}: unexpected {other:?}"),
            }
            let text = err.to_string();
            assert!(text.starts_with(&format!("AADSTS{code}: ")), "{text}");
            assert!(
                text.ends_with(&format!("for app {client_id} ({error}, HTTP {status})")),
                "{text}"
            );
            if !secret.is_empty() {
                assert!(!text.contains(secret) && !format!("{err:?}").contains(secret));
            }
            assert!(!err.is_transient());
        }
    }
}
