//! Topic configs checked against the cluster's Kafka version (facts from Kafka's LogConfig at
//! the release tags 2.1.1, 2.4.1 and 3.2.0; see `src/kafka_config.rs`).

mod common;

use common::{Env, fast_config, loopback};
use hdinsight_emulator::{EmulatorConfig, RunningEmulator, Transport};
use serde_json::json;

fn on(version: &str) -> EmulatorConfig {
    EmulatorConfig {
        visibility_delay_ms: 0,
        kafka_version: version.to_string(),
        ..fast_config()
    }
}

#[tokio::test]
async fn a_refused_config_is_a_400_naming_the_key_and_creates_nothing() {
    let env = Env::start(on("3.2.0")).await;
    let token = env.token().await;
    let (status, body) = env
        .put_topic(
            &token,
            "strict",
            Some(json!({"partition_count": 1, "topic_properties": {"retention.ms": 604800000, "cleanup.policy": "compact,forever"}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_config");
    let message = body["message"].as_str().expect("a message");
    assert!(message.contains("cleanup.policy"), "{message}");
    assert!(
        !env.emulator
            .control()
            .topic_names()
            .contains(&"strict".to_string())
    );
    assert_eq!(
        env.emulator
            .control()
            .stats()
            .created_per_topic
            .get("strict"),
        None
    );
    let (status, body) = env
        .put_topic(
            &token,
            "typo",
            Some(json!({"topic_properties": {"retention.msec": 1}})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "Unknown topic config name: retention.msec");
    // Good configs, numbers and strings alike, are stored as sent.
    let good = json!({"retention.ms": 604800000, "min.insync.replicas": "2"});
    let (status, body) = env
        .put_topic(&token, "fine", Some(json!({"topic_properties": good})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        env.emulator
            .control()
            .topic_properties("fine")
            .map(serde_json::Value::Object),
        Some(good)
    );
}

#[tokio::test]
async fn an_existing_topic_is_reported_before_its_configs() {
    let env = Env::start(on("3.2")).await;
    let token = env.token().await;
    assert_eq!(env.put_topic(&token, "twice", None).await.0, 200);
    let (status, body) = env
        .put_topic(
            &token,
            "twice",
            Some(json!({"topic_properties": {"nonsense": 1}})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "topic_already_exists");
}

#[tokio::test]
async fn the_refusal_status_is_a_knob_and_versions_differ() {
    let env = Env::start(EmulatorConfig {
        config_refusal_status: 422,
        ..on("2.1.1")
    })
    .await;
    let token = env.token().await;
    // max.compaction.lag.ms came with Kafka 2.3: HDInsight 4.0's Kafka 2.1 does not know it.
    let lag = json!({"topic_properties": {"max.compaction.lag.ms": 60000}});
    let (status, body) = env.put_topic(&token, "lagged", Some(lag.clone())).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("max.compaction.lag.ms"))
    );
    let env = Env::start(on("2.4.1")).await;
    let token = env.token().await;
    assert_eq!(env.put_topic(&token, "lagged", Some(lag)).await.0, 200);
}

#[tokio::test]
async fn a_kafka_version_hdinsight_does_not_ship_is_refused_at_start() {
    for bad in ["3.3.0", "1.1.0", "two"] {
        let started = RunningEmulator::start(on(bad), loopback(), Transport::PlainHttp).await;
        let err = started.expect_err("refused").to_string();
        assert!(err.contains(bad), "{err}");
    }
    assert_eq!(
        EmulatorConfig::default().kafka_version,
        "3.2.0",
        "the newest by default"
    );
}
