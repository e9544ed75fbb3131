//! Every wire-contract guess has a knob: each test sets one away from its default and checks
//! what a client sees.

mod common;

use common::{CLIENT_ID, Env, fast_config};
use hdinsight_emulator::{
    EmptyNextOffset, EmulatorConfig, ErrorBodyAs, LatestOffsetAs, OkBodyAs, RackAs,
};
use serde_json::{Value, json};

fn instant() -> EmulatorConfig {
    EmulatorConfig {
        visibility_delay_ms: 0,
        ..fast_config()
    }
}

#[tokio::test]
async fn existing_topic_and_invalid_request_statuses_are_knobs() {
    let env = Env::start(EmulatorConfig {
        existing_topic_status: 409,
        invalid_request_status: 422,
        ..instant()
    })
    .await;
    let token = env.token().await;
    assert_eq!(env.put_topic(&token, "taken", None).await.0, 200);
    let (status, body) = env.put_topic(&token, "taken", None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "topic_already_exists");
    for (topic, body) in [
        ("bad name", None),
        ("ok", Some(json!({"partition_count": 0}))),
        ("ok", Some(json!({"replication_factor": 9}))),
        ("ok", Some(json!({"partition_count": "four"}))),
        ("ok", Some(json!({"topic_properties": []}))),
    ] {
        let (status, answer) = env.put_topic(&token, topic, body.clone()).await;
        assert_eq!(status, 422, "{topic} {body:?}: {answer}");
    }
    // The defaults: both 400.
    let env = Env::start(instant()).await;
    let token = env.token().await;
    assert_eq!(env.put_topic(&token, "taken", None).await.0, 200);
    assert_eq!(env.put_topic(&token, "taken", None).await.0, 400);
    assert_eq!(env.put_topic(&token, "bad name", None).await.0, 400);
}

#[tokio::test]
async fn status_without_token_is_a_knob() {
    let env = Env::start(instant()).await;
    let response = env
        .http
        .get(env.url("/v1/status"))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        response.status().as_u16(),
        401,
        "by default every call needs a token"
    );
    let env = Env::start(EmulatorConfig {
        status_needs_token: false,
        ..instant()
    })
    .await;
    let response = env
        .http
        .get(env.url("/v1/status"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 200);
    let response = env
        .http
        .get(env.url("/v1/metadata/topics"))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        response.status().as_u16(),
        401,
        "only the status call is open"
    );
}

#[tokio::test]
async fn error_bodies_can_be_plain_text() {
    let env = Env::start(EmulatorConfig {
        error_body: ErrorBodyAs::Text,
        ..instant()
    })
    .await;
    let token = env.token().await;
    let response = env
        .get(&token, "/v1/metadata/topics/nothing-here/partitions")
        .await;
    assert_eq!(response.status().as_u16(), 404);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ASCII")
            .starts_with("text/plain")
    );
    let text = response.text().await.expect("a body");
    assert_eq!(text, "Topic 'nothing-here' not found.");
    let response = env
        .http
        .get(env.url("/v1/metadata/topics"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 401);
    assert!(serde_json::from_str::<Value>(&response.text().await.expect("a body")).is_err());
}

#[tokio::test]
async fn rack_can_be_null_or_absent() {
    for (rack_as, check) in [
        (
            RackAs::Set,
            (|b: &Value| b["rack"].is_string()) as fn(&Value) -> bool,
        ),
        (RackAs::Null, |b: &Value| {
            b.get("rack") == Some(&Value::Null)
        }),
        (RackAs::Absent, |b: &Value| b.get("rack").is_none()),
    ] {
        let env = Env::start(EmulatorConfig {
            rack_as,
            ..instant()
        })
        .await;
        let token = env.token().await;
        let (status, body) = env.get_json(&token, "/v1/metadata/brokers").await;
        assert_eq!(status, 200);
        let brokers = body["brokers"].as_array().expect("a list");
        assert!(!brokers.is_empty());
        assert!(brokers.iter().all(check), "{rack_as:?}: {body}");
        assert_eq!(env.put_topic(&token, "r", None).await.0, 200);
        let (_, body) = env
            .get_json(&token, "/v1/metadata/topics/r/partitions")
            .await;
        let leader = &body["partitions"][0]["leader"];
        assert!(check(leader), "{rack_as:?}: {leader}");
    }
}

#[tokio::test]
async fn latest_offset_can_mean_the_last_record() {
    for (latest_as, want_empty, want_after_three) in [
        (LatestOffsetAs::LogEnd, 0, 3),
        (LatestOffsetAs::LastRecord, -1, 2),
    ] {
        let env = Env::start(EmulatorConfig {
            latest_offset_as: latest_as,
            ..instant()
        })
        .await;
        let token = env.token().await;
        assert_eq!(
            env.put_topic(&token, "o", Some(json!({"partition_count": 1})))
                .await
                .0,
            200
        );
        let (_, body) = env
            .get_json(&token, "/v1/metadata/topics/o/partitions/0")
            .await;
        assert_eq!(body["latest_offset"], want_empty, "{latest_as:?}");
        assert!(env.emulator.control().produce("o", 0, 3));
        let (_, body) = env
            .get_json(&token, "/v1/metadata/topics/o/partitions/0")
            .await;
        assert_eq!(body["latest_offset"], want_after_three, "{latest_as:?}");
    }
}

#[tokio::test]
async fn next_offset_of_an_empty_read_can_be_omitted() {
    for (knob, want) in [
        (EmptyNextOffset::Requested, Some("5")),
        (EmptyNextOffset::Omitted, None),
    ] {
        let env = Env::start(EmulatorConfig {
            empty_next_offset: knob,
            ..instant()
        })
        .await;
        let token = env.token().await;
        assert_eq!(
            env.put_topic(&token, "e", Some(json!({"partition_count": 1})))
                .await
                .0,
            200
        );
        let response = env
            .get(&token, "/v1/consumer/topics/e/partitions/0/offsets/5")
            .await;
        assert_eq!(response.status().as_u16(), 200);
        let header = response
            .headers()
            .get("nextoffset")
            .map(|v| v.to_str().expect("ASCII").to_string());
        assert_eq!(header.as_deref(), want, "{knob:?}");
        // With records the header is always there.
        assert!(env.emulator.control().produce("e", 0, 1));
        let response = env
            .get(&token, "/v1/consumer/topics/e/partitions/0/offsets/0")
            .await;
        assert_eq!(response.headers()["nextoffset"], "1");
    }
}

#[tokio::test]
async fn ok_bodies_can_be_objects() {
    let env = Env::start(EmulatorConfig {
        ok_body_as: OkBodyAs::Object,
        ..instant()
    })
    .await;
    let token = env.token().await;
    let (status, body) = env.put_topic(&token, "k", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["message"], "Topic k created.");
    let (_, body) = env.get_json(&token, "/v1/status").await;
    assert!(body["message"].is_string(), "{body}");
    let response = env
        .http
        .post(env.url("/v1/producer/topics/k"))
        .bearer_auth(&token)
        .json(&json!({"records": [{"value": "v"}]}))
        .send()
        .await
        .expect("answers");
    let body: Value = response.json().await.expect("JSON");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("1 record")),
        "{body}"
    );
}

#[tokio::test]
async fn data_statuses_for_invisible_topics_and_offline_partitions_are_knobs() {
    let env = Env::start(EmulatorConfig {
        visibility_delay_ms: 60_000,
        invisible_data_status: 400,
        offline_data_status: 503,
        brokers: 1,
        ..fast_config()
    })
    .await;
    let token = env.token().await;
    assert_eq!(env.put_topic(&token, "hidden", None).await.0, 200);
    let produce = |topic: &'static str| {
        env.http
            .post(env.url(&format!("/v1/producer/topics/{topic}")))
            .bearer_auth(&token)
            .json(&json!({"records": [{"value": "v", "partition": 0}]}))
            .send()
    };
    assert_eq!(
        produce("hidden").await.expect("answers").status().as_u16(),
        400
    );
    let (status, _) = env
        .get_json(&token, "/v1/consumer/topics/hidden/partitions/0/offsets/0")
        .await;
    assert_eq!(status, 400);
    // A topic that is visible but whose only broker is down.
    let control = env.emulator.control();
    control
        .import_topics(json!([{"name": "lonely", "partitions": [{"replicas": [1001], "earliest": 0, "latest": 0}]}]))
        .expect("imported");
    assert!(control.broker_down(1001));
    assert_eq!(
        produce("lonely").await.expect("answers").status().as_u16(),
        503
    );
    let (status, _) = env
        .get_json(&token, "/v1/consumer/topics/lonely/partitions/0/offsets/0")
        .await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn the_scope_can_be_checked_before_the_secret() {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("client_secret", "wrong"),
        ("scope", "https://hib.azurehdinsight.net"),
    ];
    let env = Env::start(instant()).await;
    let (status, body) = env.token_form(&form).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(7000215))
    );
    let env = Env::start(EmulatorConfig {
        scope_checked_first: true,
        ..instant()
    })
    .await;
    let (status, body) = env.token_form(&form).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (400, Some(1002012))
    );
}

#[test]
fn knobs_read_from_yaml() {
    let config: EmulatorConfig = serde_saphyr::from_str(
        "existingTopicStatus: 409\ninvalidRequestStatus: 422\nstatusNeedsToken: false\nerrorBody: text\nrackAs: absent\nlatestOffsetAs: lastRecord\nemptyNextOffset: omitted\nokBodyAs: object\ninvisibleDataStatus: 400\nofflineDataStatus: 503\nscopeCheckedFirst: true\nmanagementNodes: 3\nnodeLagMs: 3000\n",
    )
    .expect("valid YAML");
    assert_eq!(config.existing_topic_status, 409);
    assert_eq!(config.rack_as, RackAs::Absent);
    assert_eq!(config.error_body, ErrorBodyAs::Text);
    assert_eq!(config.management_nodes, 3);
    assert!(config.scope_checked_first && !config.status_needs_token);
}
