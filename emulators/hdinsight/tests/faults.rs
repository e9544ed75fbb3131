//! Fault injection: fixed statuses with Retry-After, shot counts, probabilities, broken bodies,
//! latency — and that every faulted request is counted.

mod common;

use std::time::{Duration, Instant};

use common::{Env, fast_config};
use hdinsight_emulator::{EmulatorConfig, FaultBody, FaultRule, Faults};
use serde_json::{Value, json};

fn instant_config() -> EmulatorConfig {
    EmulatorConfig {
        visibility_delay_ms: 0,
        ..fast_config()
    }
}

#[tokio::test]
async fn status_fault_with_retry_after_hits_only_the_listed_operations() {
    let env = Env::start(instant_config()).await;
    let control = env.emulator.control();
    let token = env.token().await;
    control.set_faults(Faults {
        rules: vec![FaultRule {
            retry_after_seconds: Some(3),
            ..FaultRule::status(&["create"], 503)
        }],
        ..Faults::default()
    });
    for _ in 0..3 {
        let response = env
            .http
            .put(env.url("/v1/topics/blocked"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.headers()["retry-after"], "3");
        let body: Value = response.json().await.expect("JSON error body");
        assert!(body["error"].is_string() && body["message"].is_string());
    }
    assert!(
        control.topic_names().iter().all(|t| t != "blocked"),
        "a faulted create has no effect"
    );
    assert_eq!(env.get_json(&token, "/v1/metadata/topics").await.0, 200);
    let stats = control.stats();
    assert_eq!(stats.count_status("create", 503), 3);
    assert_eq!(stats.creates_per_topic.get("blocked"), Some(&3));
    assert_eq!(stats.count_status("list", 200), 1);
}

#[tokio::test]
async fn remaining_limits_how_often_a_rule_fires_and_empty_operations_cover_the_proxy() {
    let env = Env::start(instant_config()).await;
    let control = env.emulator.control();
    control.set_faults(Faults {
        rules: vec![FaultRule {
            remaining: Some(2),
            ..FaultRule::status(&[], 500)
        }],
        ..Faults::default()
    });
    // The token endpoint is not a proxy operation.
    let token = env.token().await;
    let statuses: Vec<u16> = futures_statuses(&env, &token, 4).await;
    assert_eq!(statuses, [500, 500, 200, 200]);
    assert_eq!(control.faults().rules[0].remaining, Some(0));
}

async fn futures_statuses(env: &Env, token: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(env.get_json(token, "/v1/metadata/brokers").await.0);
    }
    out
}

#[tokio::test]
async fn probability_decides_how_often_a_rule_fires() {
    let env = Env::start(instant_config()).await;
    let control = env.emulator.control();
    let token = env.token().await;
    control.set_faults(Faults {
        rules: vec![FaultRule {
            probability: 0.0,
            ..FaultRule::status(&["status"], 500)
        }],
        ..Faults::default()
    });
    for _ in 0..20 {
        assert_eq!(env.get_json(&token, "/v1/status").await.0, 200);
    }
    control.set_faults(Faults {
        rules: vec![FaultRule {
            probability: 0.5,
            ..FaultRule::status(&["status"], 500)
        }],
        ..Faults::default()
    });
    for _ in 0..200 {
        env.get_json(&token, "/v1/status").await;
    }
    let failed = control.stats().count_status("status", 500);
    assert!(
        (50..=150).contains(&failed),
        "about half of 200 failed: {failed}"
    );
}

#[tokio::test]
async fn garbage_and_truncated_bodies_of_successes_come_with_200() {
    let env = Env::start(instant_config()).await;
    let control = env.emulator.control();
    let token = env.token().await;
    control.set_faults(Faults {
        rules: vec![FaultRule {
            body: FaultBody::Garbage,
            remaining: Some(1),
            ..FaultRule::status(&["list"], 500)
        }],
        ..Faults::default()
    });
    let response = env.get(&token, "/v1/metadata/topics").await;
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response.bytes().await.expect("a body");
    assert!(!bytes.is_empty());
    assert!(
        serde_json::from_slice::<Value>(&bytes).is_err(),
        "garbage is not JSON"
    );

    // A truncated create takes effect: the answer is lost, not the request.
    control.set_faults(Faults {
        rules: vec![FaultRule {
            body: FaultBody::Truncated,
            ..FaultRule::status(&["create", "describe"], 200)
        }],
        ..Faults::default()
    });
    let response = env
        .http
        .put(env.url("/v1/topics/half"))
        .bearer_auth(&token)
        .json(&json!({"partition_count": 3}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 200);
    let response = env.get(&token, "/v1/metadata/topics/half/partitions").await;
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response.bytes().await.expect("a body");
    assert!(bytes.starts_with(b"{\"partitions\""), "{bytes:?}");
    assert!(
        serde_json::from_slice::<Value>(&bytes).is_err(),
        "cut in half: {bytes:?}"
    );
    control.clear_faults();
    let (status, body) = env
        .get_json(&token, "/v1/metadata/topics/half/partitions")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["partitions"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn oversized_body_is_valid_json_of_the_requested_size() {
    let env = Env::start(instant_config()).await;
    let token = env.token().await;
    env.emulator.control().set_faults(Faults {
        rules: vec![FaultRule {
            body: FaultBody::Oversized { bytes: 3_000_000 },
            ..FaultRule::status(&["list"], 200)
        }],
        ..Faults::default()
    });
    let response = env.get(&token, "/v1/metadata/topics").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.content_length(), Some(3_000_000));
    let bytes = response.bytes().await.expect("the whole body");
    assert_eq!(bytes.len(), 3_000_000);
    let value: Value = serde_json::from_slice(&bytes).expect("valid JSON");
    assert!(value["padding"].is_string());
}

#[tokio::test]
async fn stalled_body_sends_a_prefix_then_pauses() {
    let env = Env::start(instant_config()).await;
    let token = env.token().await;
    env.emulator.control().set_faults(Faults {
        rules: vec![FaultRule {
            // Long, so that the checks below fall inside the stall on a busy machine too.
            body: FaultBody::Stall {
                after_bytes: 5,
                seconds: 6,
            },
            remaining: Some(1),
            ..FaultRule::status(&["brokers"], 200)
        }],
        ..Faults::default()
    });
    let started = Instant::now();
    let mut response = env.get(&token, "/v1/metadata/brokers").await;
    assert_eq!(response.status().as_u16(), 200);
    let first = response
        .chunk()
        .await
        .expect("a chunk")
        .expect("some bytes");
    assert_eq!(first.len(), 5);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the prefix comes at once"
    );
    // A client with a short read timeout gives up during the stall.
    let waited = tokio::time::timeout(Duration::from_millis(500), response.chunk()).await;
    assert!(waited.is_err(), "the body stalls");
    let rest = response.chunk().await.expect("the rest").expect("bytes");
    let mut whole = first.to_vec();
    whole.extend_from_slice(&rest);
    while let Some(more) = response.chunk().await.expect("more") {
        whole.extend_from_slice(&more);
    }
    let value: Value = serde_json::from_slice(&whole).expect("complete JSON after the stall");
    assert_eq!(value["brokers"].as_array().map(Vec::len), Some(3));
    assert!(started.elapsed() >= Duration::from_secs(6));
}

#[tokio::test]
async fn configured_and_injected_latency_slow_proxy_calls() {
    let env = Env::start(EmulatorConfig {
        latency_ms: 150,
        ..instant_config()
    })
    .await;
    let token = env.token().await;
    let started = Instant::now();
    env.get_json(&token, "/v1/status").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    env.emulator.control().set_faults(Faults {
        extra_latency_ms: 300,
        ..Faults::default()
    });
    let started = Instant::now();
    env.get_json(&token, "/v1/status").await;
    assert!(started.elapsed() >= Duration::from_millis(450));
}

#[tokio::test]
async fn an_applied_fault_creates_the_topic_and_answers_the_error() {
    let env = Env::start(instant_config()).await;
    let control = env.emulator.control();
    let token = env.token().await;
    control.set_faults(Faults {
        rules: vec![FaultRule {
            applied: true,
            remaining: Some(1),
            ..FaultRule::status(&["create"], 500)
        }],
        ..Faults::default()
    });
    let (status, body) = env
        .put_topic(&token, "half-heard", Some(json!({"partition_count": 2})))
        .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "injected_fault");
    assert!(
        env.list(&token).await.contains(&"half-heard".to_string()),
        "the create took effect although the caller saw a 500"
    );
    // The retry meets the topic the first attempt made.
    let (status, body) = env.put_topic(&token, "half-heard", None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "topic_already_exists");
    let stats = control.stats();
    assert_eq!(stats.creates_per_topic.get("half-heard"), Some(&2));
    assert_eq!(
        stats.created_per_topic.get("half-heard"),
        Some(&1),
        "one create took effect"
    );
    let log = control.request_log();
    assert!(
        log.iter()
            .filter(|r| r.operation == "create")
            .all(|r| r.client.as_deref() == Some(common::CLIENT_ID)),
        "an applied fault still knows the caller: {log:?}"
    );
}

#[tokio::test]
async fn an_applied_stall_and_garbage_take_effect_and_an_unapplied_fault_does_not() {
    let env = Env::start(instant_config()).await;
    let control = env.emulator.control();
    let token = env.token().await;
    control.set_faults(Faults {
        rules: vec![FaultRule {
            applied: true,
            body: FaultBody::Garbage,
            remaining: Some(1),
            ..FaultRule::status(&["create"], 200)
        }],
        ..Faults::default()
    });
    let (status, body) = env.put_topic(&token, "garbled", None).await;
    assert_eq!(status, 200);
    assert!(body.is_string(), "garbage is no JSON: {body}");
    // A stall past the client's timeout: the client gives up, the topic exists.
    control.set_faults(Faults {
        rules: vec![FaultRule {
            body: FaultBody::Stall {
                after_bytes: 1,
                seconds: 5,
            },
            remaining: Some(1),
            ..FaultRule::status(&["create"], 200)
        }],
        ..Faults::default()
    });
    let impatient = env
        .http
        .put(env.url("/v1/topics/stalled"))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    let gave_up = match impatient {
        Err(err) => err.is_timeout(),
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(gave_up, "the client's timeout hit before the answer ended");
    control.set_faults(Faults {
        rules: vec![FaultRule {
            remaining: Some(1),
            ..FaultRule::status(&["create"], 503)
        }],
        ..Faults::default()
    });
    assert_eq!(env.put_topic(&token, "refused", None).await.0, 503);
    let names = control.topic_names();
    assert!(names.contains(&"garbled".to_string()));
    assert!(names.contains(&"stalled".to_string()));
    assert!(!names.contains(&"refused".to_string()));
    let created = control.stats().created_per_topic;
    assert_eq!(created.get("garbled"), Some(&1));
    assert_eq!(created.get("stalled"), Some(&1));
    assert_eq!(created.get("refused"), None);
}

/// A cut or slow connection loses bytes, never the status line: a create refused because its
/// topic exists is still a refusal when its answer is truncated or stalled, both on the wire and
/// in the request log that counts successful creates.
#[tokio::test]
async fn truncated_and_stalled_answers_keep_the_real_status() {
    let env = Env::start(EmulatorConfig {
        existing_topic_status: 409,
        ..instant_config()
    })
    .await;
    let control = env.emulator.control();
    let token = env.token().await;
    assert_eq!(env.put_topic(&token, "twice", None).await.0, 200);
    let stalled = FaultBody::Stall {
        after_bytes: 1,
        seconds: 30,
    };
    for body in [FaultBody::Truncated, stalled] {
        control.set_faults(Faults {
            rules: vec![FaultRule {
                body: body.clone(),
                remaining: Some(1),
                ..FaultRule::status(&["create"], 200)
            }],
            ..Faults::default()
        });
        // The status line arrives before the (possibly stalled) body.
        let response = env
            .http
            .put(env.url("/v1/topics/twice"))
            .bearer_auth(&token)
            .json(&json!({"partition_count": 3}))
            .send()
            .await
            .expect("the status line arrives");
        assert_eq!(response.status().as_u16(), 409, "{body:?}");
        drop(response);
    }
    let log = control.request_log();
    let creates: Vec<u16> = log
        .iter()
        .filter(|r| r.operation == "create")
        .map(|r| r.status)
        .collect();
    assert_eq!(creates, vec![200, 409, 409]);
    assert_eq!(control.stats().created_per_topic.get("twice"), Some(&1));
}
