//! The proxy's own throttling: a token bucket per client, answered 429 with `Retry-After` (in
//! seconds or as an HTTP date) or as a gateway 503 without it.

mod common;

use std::time::Duration;

use common::{CLIENT_ID, Env, SECRET, fast_config};
use hdinsight_emulator::{AppConfig, EmulatorConfig, RateLimit, RetryAfterAs, ThrottleAnswer};

const OTHER_ID: &str = "33333333-3333-3333-3333-333333333333";
const OTHER_SECRET: &str = "other-secret";

fn limited(answer: ThrottleAnswer, retry_after_as: RetryAfterAs) -> EmulatorConfig {
    let first = AppConfig::default();
    let other = AppConfig {
        client_id: OTHER_ID.to_string(),
        client_secret: OTHER_SECRET.to_string(),
        ..AppConfig::default()
    };
    EmulatorConfig {
        apps: vec![first, other],
        rate_limit: Some(RateLimit {
            // One token every 4 s: a burst of a few requests stays inside one refill on a
            // busy machine too.
            requests_per_second: 0.25,
            burst: 3,
            answer,
            retry_after_as,
        }),
        ..fast_config()
    }
}

#[tokio::test]
async fn a_client_over_its_burst_gets_429_with_retry_after_seconds_and_others_do_not() {
    let env = Env::start(limited(
        ThrottleAnswer::TooManyRequests,
        RetryAfterAs::Seconds,
    ))
    .await;
    let token = env.token_for(CLIENT_ID, SECRET).await;
    let other = env.token_for(OTHER_ID, OTHER_SECRET).await;
    for _ in 0..3 {
        assert_eq!(env.get_json(&token, "/v1/metadata/brokers").await.0, 200);
    }
    let response = env.get(&token, "/v1/metadata/brokers").await;
    assert_eq!(response.status().as_u16(), 429);
    // The time to the next token (4 s less what the requests took), in whole seconds up.
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("whole seconds");
    assert!((1..=4).contains(&retry_after), "{retry_after}");
    // Another client has its own bucket; the token endpoint is not throttled.
    assert_eq!(env.get_json(&other, "/v1/metadata/brokers").await.0, 200);
    env.token_for(CLIENT_ID, SECRET).await;
    // Four seconds refill one request at one per 4 s.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(env.get_json(&token, "/v1/metadata/brokers").await.0, 200);
    assert_eq!(env.get_json(&token, "/v1/metadata/brokers").await.0, 429);
    let stats = env.emulator.control().stats();
    assert_eq!(stats.count_status("brokers", 429), 2);
    let throttled = env
        .emulator
        .control()
        .request_log()
        .into_iter()
        .filter(|r| r.status == 429)
        .all(|r| r.client.as_deref() == Some(CLIENT_ID));
    assert!(throttled, "the log names the throttled client");
}

#[tokio::test]
async fn retry_after_can_be_an_http_date() {
    let env = Env::start(limited(
        ThrottleAnswer::TooManyRequests,
        RetryAfterAs::HttpDate,
    ))
    .await;
    let token = env.token().await;
    for _ in 0..3 {
        env.get_json(&token, "/v1/status").await;
    }
    let response = env.get(&token, "/v1/status").await;
    assert_eq!(response.status().as_u16(), 429);
    let value = response.headers()["retry-after"]
        .to_str()
        .expect("ASCII")
        .to_string();
    let at = chrono::DateTime::parse_from_rfc2822(&value).expect("an HTTP date");
    let ahead = at.timestamp() - chrono::Utc::now().timestamp();
    assert!((0..=5).contains(&ahead), "{value} is {ahead}s ahead");
    assert!(value.ends_with(" GMT"), "{value}");
}

#[tokio::test]
async fn a_busy_gateway_answers_503_without_retry_after() {
    let env = Env::start(limited(ThrottleAnswer::GatewayBusy, RetryAfterAs::Seconds)).await;
    let token = env.token().await;
    assert_eq!(env.put_topic(&token, "burst", None).await.0, 200);
    for _ in 0..2 {
        assert_eq!(env.get_json(&token, "/v1/status").await.0, 200);
    }
    let (status, _) = env.put_topic(&token, "burst-2", None).await;
    assert_eq!(status, 503);
    assert!(
        !env.emulator
            .control()
            .topic_names()
            .contains(&"burst-2".to_string()),
        "a throttled create has no effect"
    );
    let response = env.get(&token, "/v1/metadata/topics").await;
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().get("retry-after").is_none());
    assert!(response.text().await.expect("a body").contains("503"));
}
