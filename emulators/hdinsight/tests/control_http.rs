//! The control API over HTTP under `/_emulator/`, unauthenticated.

mod common;

use std::time::Duration;

use common::{CLIENT_ID, Env, SCOPE, fast_config};
use hdinsight_emulator::{EmulatorConfig, RunningEmulator, Transport};
use serde_json::{Value, json};

async fn call(env: &Env, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = env
        .http
        .request(method, env.url(&format!("/_emulator/{path}")));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the control API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn control_api_over_http_drives_the_emulator() {
    let env = Env::start(EmulatorConfig {
        out_of_band_delay_ms: 0,
        ..fast_config()
    })
    .await;
    use reqwest::Method;
    let token = env.token().await;

    let (status, _) = call(
        &env,
        Method::POST,
        "topics",
        Some(json!({"name": "made-by-cli", "partitions": 2, "replicationFactor": 3})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = call(
        &env,
        Method::POST,
        "topics",
        Some(json!({"name": "made-by-cli"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(env.list(&token).await, vec!["made-by-cli".to_string()]);

    let (status, _) = call(
        &env,
        Method::POST,
        "topics/made-by-cli/partitions/1/produce",
        Some(json!({"count": 4})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, p) = env
        .get_json(&token, "/v1/metadata/topics/made-by-cli/partitions/1")
        .await;
    assert_eq!(p["latest_offset"], 4);

    assert_eq!(
        call(&env, Method::POST, "brokers/1002/down", None).await.0,
        200
    );
    let (_, brokers) = env.get_json(&token, "/v1/metadata/brokers").await;
    assert_eq!(brokers["brokers"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        call(&env, Method::POST, "brokers/1002/up", None).await.0,
        200
    );
    assert_eq!(
        call(&env, Method::POST, "brokers/999/up", None).await.0,
        404
    );

    let (status, _) = call(
        &env,
        Method::POST,
        "faults",
        Some(json!({"rules": [{"operations": ["list"], "status": 429, "retryAfterSeconds": 2}]})),
    )
    .await;
    assert_eq!(status, 200);
    let response = env.get(&token, "/v1/metadata/topics").await;
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let (_, faults) = call(&env, Method::GET, "faults", None).await;
    assert_eq!(faults["rules"][0]["status"], 429);
    assert_eq!(call(&env, Method::DELETE, "faults", None).await.0, 200);
    assert_eq!(
        env.get(&token, "/v1/metadata/topics")
            .await
            .status()
            .as_u16(),
        200
    );
    let (status, body) = call(&env, Method::POST, "faults", Some(json!({"rules": "nope"}))).await;
    assert_eq!(status, 400, "{body}");

    assert_eq!(
        call(&env, Method::DELETE, "topics/made-by-cli", None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&env, Method::DELETE, "topics/made-by-cli", None)
            .await
            .0,
        404
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(env.list(&token).await.is_empty());

    let (status, _) = call(
        &env,
        Method::POST,
        &format!("apps/{CLIENT_ID}/secret"),
        Some(json!({"clientSecret": "second"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = env
        .token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", common::SECRET),
            ("scope", SCOPE),
        ])
        .await;
    assert_eq!(status, 401, "the old secret stopped working");
    env.token_for(CLIENT_ID, "second").await;

    let (status, stats) = call(&env, Method::GET, "stats", None).await;
    assert_eq!(status, 200);
    assert_eq!(stats["requests"]["list"]["429"], 1);
    assert_eq!(stats["tokensIssued"][CLIENT_ID], 2);
    assert_eq!(stats["tokenRequests"], 3);
    let (status, requests) = call(&env, Method::GET, "requests", None).await;
    assert_eq!(status, 200);
    let requests = requests.as_array().expect("a list");
    assert!(
        requests.iter().all(|r| r["operation"] != "control"),
        "control calls are not logged"
    );
    let throttled = requests
        .iter()
        .find(|r| r["status"] == 429)
        .expect("the throttled request is logged");
    assert_eq!(throttled["method"], "GET");
    assert_eq!(throttled["path"], "/v1/metadata/topics");
    assert_eq!(throttled["operation"], "list");

    assert_eq!(call(&env, Method::POST, "reset", None).await.0, 200);
    let (_, stats) = call(&env, Method::GET, "stats", None).await;
    assert_eq!(stats["tokenRequests"], 0);
    env.token().await;
    assert_eq!(call(&env, Method::GET, "nothing", None).await.0, 404);
}

#[tokio::test]
async fn plain_http_transport_serves_the_same_api() {
    let emulator = RunningEmulator::start(fast_config(), common::loopback(), Transport::PlainHttp)
        .await
        .expect("starts");
    assert!(emulator.base_url().starts_with("http://127.0.0.1:"));
    assert!(emulator.ca_pem().is_none());
    let http = reqwest::Client::new();
    let body: Value = http
        .post(emulator.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", common::SECRET),
            ("scope", SCOPE),
        ])
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    let token = body["access_token"].as_str().expect("a token");
    let status = http
        .get(format!("{}/v1/status", emulator.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers")
        .status();
    assert_eq!(status.as_u16(), 200);
    let url = emulator.base_url();
    emulator.shutdown().await;
    assert!(
        http.get(format!("{url}/v1/status")).send().await.is_err(),
        "stopped"
    );
}

#[tokio::test]
async fn tls_directory_holds_the_ca_and_startup_is_fast() {
    let dir = common::temp_dir();
    // The first start in a process may generate the signing key; later ones must be quick.
    let first = RunningEmulator::start(
        fast_config(),
        common::loopback(),
        Transport::Tls { dir: dir.clone() },
    )
    .await
    .expect("starts");
    let started = std::time::Instant::now();
    let second = RunningEmulator::start(
        fast_config(),
        common::loopback(),
        Transport::Tls { dir: dir.join("b") },
    )
    .await
    .expect("starts");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(1), "startup took {elapsed:?}");
    let ca = std::fs::read_to_string(dir.join("ca.pem")).expect("ca.pem written");
    assert_eq!(Some(ca), first.ca_pem());
    assert!(first.base_url().starts_with("https://127.0.0.1:"));
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test]
async fn exported_topics_come_back_visible_in_a_new_emulator() {
    let a = Env::start(fast_config()).await;
    let token = a.token().await;
    a.put_topic(
        &token,
        "survivor",
        Some(json!({"partition_count": 2, "topic_properties": {"cleanup.policy": "compact"}})),
    )
    .await;
    a.emulator.control().produce("survivor", 1, 7);
    let saved = a.emulator.control().export_topics();

    let b = Env::start(fast_config()).await;
    b.emulator.control().import_topics(saved).expect("imported");
    let token = b.token().await;
    assert_eq!(b.list(&token).await, vec!["survivor".to_string()]);
    let (_, p) = b
        .get_json(&token, "/v1/metadata/topics/survivor/partitions/1")
        .await;
    assert_eq!(p["latest_offset"], 7);
    assert_eq!(
        b.emulator
            .control()
            .topic_properties("survivor")
            .expect("exists")["cleanup.policy"],
        "compact"
    );
    assert!(
        b.emulator
            .control()
            .import_topics(json!([{"name": "bad name", "partitions": []}]))
            .is_err()
    );
    assert!(
        b.emulator
            .control()
            .import_topics(json!({"not": "a list"}))
            .is_err()
    );
    assert_eq!(
        b.list(&token).await,
        vec!["survivor".to_string()],
        "a failed import changes nothing"
    );
}
