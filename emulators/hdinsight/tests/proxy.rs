//! The proxy: token checks, create and its visibility delay, validation, 405s, metadata shapes,
//! brokers going down, produce and consume.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{CLIENT_ID, Env, fast_config};
use hdinsight_emulator::{AppConfig, ConsumeShape, EmulatorConfig, LeaderlessAs, TokenSpec};
use serde_json::{Value, json};

fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn proxy_rejects_missing_malformed_expired_and_foreign_tokens_with_401() {
    let env = Env::start(fast_config()).await;
    let control = env.emulator.control();
    let good = env.token().await;
    let (status, _) = env.get_json(&good, "/v1/status").await;
    assert_eq!(status, 200);

    let response = env
        .http
        .get(env.url("/v1/metadata/topics"))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 401, "no Authorization header");
    assert!(response.headers().contains_key("www-authenticate"));

    let mut tampered = good.clone();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let expired = control.mint_token(&TokenSpec {
        issued_offset_seconds: -7200,
        lifetime_seconds: Some(3599),
        ..TokenSpec::default()
    });
    let early = control.mint_token(&TokenSpec {
        not_before_offset_seconds: 600,
        ..TokenSpec::default()
    });
    let wrong_aud = control.mint_token(&TokenSpec {
        audience: Some("https://management.azure.com".to_string()),
        ..TokenSpec::default()
    });
    let wrong_iss = control.mint_token(&TokenSpec {
        issuer: Some("https://sts.windows.net/99999999-9999-9999-9999-999999999999/".to_string()),
        ..TokenSpec::default()
    });
    for (name, token) in [
        ("garbage", "not-a-jwt".to_string()),
        ("tampered signature", tampered),
        ("expired", expired),
        ("not yet valid", early),
        ("wrong audience", wrong_aud),
        ("wrong issuer", wrong_iss),
    ] {
        let (status, body) = env.get_json(&token, "/v1/metadata/topics").await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(body["error"], "unauthorized", "{name}: {body}");
    }
    // A 401 never creates anything.
    let (status, _) = env.put_topic("not-a-jwt", "sneaky", None).await;
    assert_eq!(status, 401);
    assert!(!control.topic_names().contains(&"sneaky".to_string()));
    assert_eq!(
        control.stats().creates_per_topic.get("sneaky"),
        Some(&1),
        "attempts are counted"
    );
    let stats = control.stats();
    assert_eq!(stats.count_status("list", 401), 7);
    assert_eq!(stats.count_status("create", 401), 1);
}

#[tokio::test]
async fn expired_token_from_the_endpoint_is_refused_after_its_lifetime() {
    let env = Env::start(EmulatorConfig {
        token_lifetime_seconds: 1,
        ..fast_config()
    })
    .await;
    let token = env.token().await;
    assert_eq!(env.get_json(&token, "/v1/status").await.0, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = env.get_json(&token, "/v1/status").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap_or("").contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn app_outside_the_cluster_group_gets_403_saying_so() {
    let outsider = "77777777-7777-7777-7777-777777777777";
    let env = Env::start(EmulatorConfig {
        apps: vec![
            AppConfig::default(),
            AppConfig {
                client_id: outsider.to_string(),
                client_secret: "s".to_string(),
                groups: vec!["some-other-group".to_string()],
                ..AppConfig::default()
            },
        ],
        ..fast_config()
    })
    .await;
    let token = env.token_for(outsider, "s").await;
    let (status, body) = env.get_json(&token, "/v1/metadata/topics").await;
    assert_eq!(status, 403, "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(
        message.contains(outsider) && message.contains("security group"),
        "{message}"
    );
    let log = env.emulator.control().request_log();
    assert_eq!(
        log.last().expect("logged").client.as_deref(),
        Some(outsider)
    );

    // Joining the group helps for tokens issued afterwards.
    let control = env.emulator.control();
    assert!(control.set_app_groups(outsider, vec![control_group(&env)]));
    let (status, _) = env.get_json(&token, "/v1/metadata/topics").await;
    assert_eq!(status, 403, "the old token still lacks the group");
    let token = env.token_for(outsider, "s").await;
    let (status, _) = env.get_json(&token, "/v1/metadata/topics").await;
    assert_eq!(status, 200);
}

fn control_group(env: &Env) -> String {
    env.emulator.config().cluster_group_id.clone()
}

#[tokio::test]
async fn created_topic_is_invisible_until_the_delay_passed() {
    let env = Env::start(EmulatorConfig {
        // Seconds: the checks below must run while the topic is still hidden, on a busy
        // machine too.
        visibility_delay_ms: 3000,
        ..fast_config()
    })
    .await;
    let token = env.token().await;
    let (status, body) = env
        .put_topic(
            &token,
            "orders",
            Some(json!({
                "partition_count": 6,
                "replication_factor": 2,
                "topic_properties": {"retention.ms": 604800000, "min.insync.replicas": "2"}
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.is_string(), "the create answer is a string: {body}");
    assert!(!env.list(&token).await.contains(&"orders".to_string()));
    let (status, _) = env
        .get_json(&token, "/v1/metadata/topics/orders/partitions")
        .await;
    assert_eq!(status, 404);
    // Exists although invisible: a second create is refused.
    let (status, body) = env.put_topic(&token, "orders", None).await;
    assert_eq!(status, 400, "{body}");

    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(env.list(&token).await, vec!["orders".to_string()]);
    let (status, body) = env
        .get_json(&token, "/v1/metadata/topics/orders/partitions")
        .await;
    assert_eq!(status, 200, "{body}");
    let partitions = body["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 6);
    assert!(
        partitions
            .iter()
            .all(|p| p["replicas"].as_array().map(Vec::len) == Some(2))
    );
    let (status, body) = env.put_topic(&token, "orders", None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "topic_already_exists");

    let control = env.emulator.control();
    assert_eq!(control.stats().creates_per_topic.get("orders"), Some(&3));
    let properties = control
        .topic_properties("orders")
        .expect("the topic exists");
    assert_eq!(properties["min.insync.replicas"], "2");
}

#[tokio::test]
async fn create_without_body_uses_the_defaults() {
    let env = Env::start(EmulatorConfig {
        visibility_delay_ms: 0,
        ..fast_config()
    })
    .await;
    let token = env.token().await;
    let (status, body) = env.put_topic(&token, "plain", None).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = env
        .get_json(&token, "/v1/metadata/topics/plain/partitions")
        .await;
    let partitions = body["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), 4);
    assert_eq!(partitions[0]["replicas"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn invalid_creates_are_400_and_create_nothing() {
    let env = Env::start(fast_config()).await;
    let token = env.token().await;
    let long = "x".repeat(250);
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("bad character", "bad%20name".to_string(), None),
        ("too long", long, None),
        (
            "zero partitions",
            "p0".to_string(),
            Some(json!({"partition_count": 0})),
        ),
        (
            "negative partitions",
            "pn".to_string(),
            Some(json!({"partition_count": -3})),
        ),
        (
            "zero replication",
            "r0".to_string(),
            Some(json!({"replication_factor": 0})),
        ),
        (
            "replication above brokers",
            "r4".to_string(),
            Some(json!({"replication_factor": 4})),
        ),
        (
            "partitions not a number",
            "pt".to_string(),
            Some(json!({"partition_count": "six"})),
        ),
        (
            "properties not an object",
            "po".to_string(),
            Some(json!({"topic_properties": [1]})),
        ),
    ];
    for (name, topic, body) in cases {
        let (status, answer) = env.put_topic(&token, &topic, body).await;
        assert_eq!(status, 400, "{name}: {answer}");
        assert!(answer["message"].is_string(), "{name}: {answer}");
    }
    let response = env
        .http
        .put(env.url("/v1/topics/malformed"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"partition_count\": 3,")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 400);
    // Only the internal topic exists.
    assert_eq!(
        env.emulator.control().topic_names(),
        vec!["__consumer_offsets".to_string()]
    );
    // A broker down lowers what replication factor is accepted.
    env.emulator.control().broker_down(1003);
    let (status, _) = env
        .put_topic(&token, "r3", Some(json!({"replication_factor": 3})))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn delete_patch_post_and_get_on_a_topic_are_405() {
    let env = Env::start(fast_config()).await;
    let token = env.token().await;
    env.put_topic(&token, "keep", None).await;
    for method in [
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
        reqwest::Method::POST,
        reqwest::Method::GET,
    ] {
        let response = env
            .http
            .request(method.clone(), env.url("/v1/topics/keep"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), 405, "{method}");
    }
    assert!(
        env.emulator
            .control()
            .topic_names()
            .contains(&"keep".to_string())
    );
    assert_eq!(
        env.emulator
            .control()
            .stats()
            .count_status("unsupported", 405),
        4
    );
    // Unknown paths are 404.
    let (status, _) = env.get_json(&token, "/v1/nothing-here").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn metadata_shapes_use_the_exact_field_names() {
    let env = Env::start(EmulatorConfig {
        visibility_delay_ms: 0,
        ..fast_config()
    })
    .await;
    let token = env.token().await;
    env.put_topic(
        &token,
        "shape",
        Some(json!({"partition_count": 2, "replication_factor": 3})),
    )
    .await;

    let (status, body) = env.get_json(&token, "/v1/metadata/brokers").await;
    assert_eq!(status, 200);
    let brokers = body["brokers"].as_array().expect("brokers");
    assert_eq!(brokers.len(), 3);
    assert_eq!(sorted_keys(&brokers[0]), ["hostName", "id", "port", "rack"]);
    assert_eq!(brokers[0]["id"], 1001);
    assert_eq!(brokers[0]["port"], 9092);
    assert_eq!(brokers[0]["hostName"], "wn0-kafka.emulator.internal");

    let (status, body) = env
        .get_json(&token, "/v1/metadata/topics/shape/partitions")
        .await;
    assert_eq!(status, 200);
    assert_eq!(sorted_keys(&body), ["partitions", "topic"]);
    assert_eq!(body["topic"], "shape");
    let p0 = &body["partitions"][0];
    assert_eq!(
        sorted_keys(p0),
        [
            "earliest_offset",
            "isr",
            "latest_offset",
            "leader",
            "partition_id",
            "replicas"
        ]
    );
    assert_eq!(p0["partition_id"], 0);
    assert_eq!(p0["earliest_offset"], 0);
    assert_eq!(p0["latest_offset"], 0);
    assert_eq!(
        sorted_keys(&p0["leader"]),
        ["hostName", "id", "port", "rack"]
    );
    assert_eq!(
        p0["leader"], p0["replicas"][0],
        "the preferred replica leads"
    );
    assert_eq!(p0["isr"], p0["replicas"]);
    let racks: std::collections::HashSet<_> = p0["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .map(|r| r["rack"].clone())
        .collect();
    assert_eq!(racks.len(), 3, "replicas spread over racks");

    let (status, single) = env
        .get_json(&token, "/v1/metadata/topics/shape/partitions/1")
        .await;
    assert_eq!(status, 200);
    assert_eq!(single, body["partitions"][1]);
    for path in [
        "/v1/metadata/topics/shape/partitions/2",
        "/v1/metadata/topics/nope/partitions",
        "/v1/metadata/topics/nope/partitions/0",
    ] {
        let (status, _) = env.get_json(&token, path).await;
        assert_eq!(status, 404, "{path}");
    }
}

#[tokio::test]
async fn internal_topics_are_listed_only_when_configured() {
    let hidden = Env::start(fast_config()).await;
    let token = hidden.token().await;
    assert!(hidden.list(&token).await.is_empty());
    let shown = Env::start(EmulatorConfig {
        list_internal_topics: true,
        ..fast_config()
    })
    .await;
    let token = shown.token().await;
    assert_eq!(
        shown.list(&token).await,
        vec!["__consumer_offsets".to_string()]
    );
}

async fn leader_ids(env: &Env, token: &str, topic: &str) -> Vec<(Value, Vec<i64>)> {
    let (status, body) = env
        .get_json(token, &format!("/v1/metadata/topics/{topic}/partitions"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            let isr = p["isr"]
                .as_array()
                .expect("isr")
                .iter()
                .map(|b| b["id"].as_i64().expect("id"))
                .collect();
            (p["leader"].clone(), isr)
        })
        .collect()
}

#[tokio::test]
async fn broker_down_shrinks_isr_moves_leaders_and_leaves_partitions_leaderless() {
    let env = Env::start(EmulatorConfig {
        visibility_delay_ms: 0,
        ..fast_config()
    })
    .await;
    let control = env.emulator.control();
    let token = env.token().await;
    env.put_topic(
        &token,
        "ha",
        Some(json!({"partition_count": 3, "replication_factor": 2})),
    )
    .await;
    let before = leader_ids(&env, &token, "ha").await;
    let victim = before[0].0["id"].as_i64().expect("a leader");
    assert!(control.broker_down(i32::try_from(victim).expect("small id")));
    assert!(!control.broker_down(4242), "unknown broker");

    let (_, brokers) = env.get_json(&token, "/v1/metadata/brokers").await;
    assert_eq!(brokers["brokers"].as_array().map(Vec::len), Some(2));
    let after = leader_ids(&env, &token, "ha").await;
    for ((_, isr_before), (leader, isr)) in before.iter().zip(&after) {
        assert!(!isr.contains(&victim), "the down broker left every ISR");
        assert_ne!(leader["id"].as_i64(), Some(victim), "leadership moved");
        assert!(isr.contains(&leader["id"].as_i64().expect("a live leader")));
        let shrink = usize::from(isr_before.contains(&victim));
        assert_eq!(isr.len(), isr_before.len() - shrink);
    }
    // Take every broker down: partitions have no leader.
    control.broker_down(1001);
    control.broker_down(1002);
    control.broker_down(1003);
    for (leader, isr) in leader_ids(&env, &token, "ha").await {
        assert!(leader.is_null(), "{leader}");
        assert!(isr.is_empty());
    }
    // Producing to a leaderless partition fails; back up, everything returns.
    let response = env
        .http
        .post(env.url("/v1/producer/topics/ha"))
        .bearer_auth(&token)
        .json(&json!({"records": [{"value": "x", "partition": 0}]}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 500);
    for id in 1001..=1003 {
        assert!(control.broker_up(id));
    }
    assert_eq!(leader_ids(&env, &token, "ha").await, before);
}

#[tokio::test]
async fn leaderless_partition_can_report_minus_one() {
    let env = Env::start(EmulatorConfig {
        visibility_delay_ms: 0,
        leaderless_as: LeaderlessAs::MinusOne,
        brokers: 1,
        ..fast_config()
    })
    .await;
    let token = env.token().await;
    env.put_topic(&token, "solo", None).await;
    env.emulator.control().broker_down(1001);
    let (_, body) = env
        .get_json(&token, "/v1/metadata/topics/solo/partitions/0")
        .await;
    assert_eq!(body["leader"]["id"], -1);
    assert_eq!(body["isr"], json!([]));
}

async fn produce(env: &Env, token: &str, topic: &str, records: Value) -> u16 {
    env.http
        .post(env.url(&format!("/v1/producer/topics/{topic}")))
        .bearer_auth(token)
        .json(&json!({ "records": records }))
        .send()
        .await
        .expect("answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn produce_and_consume_with_next_offset_header() {
    let env = Env::start(EmulatorConfig {
        visibility_delay_ms: 0,
        ..fast_config()
    })
    .await;
    let token = env.token().await;
    env.put_topic(&token, "events", Some(json!({"partition_count": 2})))
        .await;
    let sent_ms = epoch_ms();
    let status = produce(
        &env,
        &token,
        "events",
        json!([
            {"value": "first", "key": "k1", "partition": 1},
            {"value": {"n": 2}, "partition": 1},
            {"value": 3, "partition": 1},
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let (_, p1) = env
        .get_json(&token, "/v1/metadata/topics/events/partitions/1")
        .await;
    assert_eq!(p1["latest_offset"], 3);

    let response = env
        .get(
            &token,
            "/v1/consumer/topics/events/partitions/1/offsets/0?count=2",
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["nextoffset"], "2");
    let body: Value = response.json().await.expect("JSON");
    let records = body["records"].as_array().expect("records");
    assert_eq!(records.len(), 2);
    assert_eq!(
        sorted_keys(&records[0]),
        [
            "key",
            "offset",
            "partition",
            "timestamp",
            "timestampType",
            "value"
        ]
    );
    assert_eq!(records[0]["value"], "first");
    assert_eq!(records[0]["key"], "k1");
    assert_eq!(records[0]["offset"], 0);
    assert_eq!(records[0]["partition"], 1);
    assert_eq!(records[0]["timestampType"], "CreateTime");
    // CreateTime: the wall clock in milliseconds when the broker took the record.
    let stamped = records[0]["timestamp"].as_i64().expect("a number");
    assert!(
        (sent_ms..=epoch_ms()).contains(&stamped),
        "{stamped} not between {sent_ms} and now"
    );
    assert_eq!(records[1]["value"], "{\"n\":2}");

    // Default count is 1; past the end nothing comes back and NextOffset stays.
    let response = env
        .get(&token, "/v1/consumer/topics/events/partitions/1/offsets/2")
        .await;
    assert_eq!(response.headers()["nextoffset"], "3");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["records"][0]["value"], "3");
    let response = env
        .get(&token, "/v1/consumer/topics/events/partitions/1/offsets/9")
        .await;
    assert_eq!(response.headers()["nextoffset"], "9");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["records"], json!([]));

    // Offsets advanced without HTTP read back as generated records.
    assert!(env.emulator.control().produce("events", 0, 5));
    let (_, p0) = env
        .get_json(&token, "/v1/metadata/topics/events/partitions/0")
        .await;
    assert_eq!(p0["latest_offset"], 5);

    for (path, want) in [
        ("/v1/consumer/topics/events/partitions/7/offsets/0", 404),
        ("/v1/consumer/topics/nope/partitions/0/offsets/0", 404),
        ("/v1/consumer/topics/events/partitions/0/offsets/-1", 400),
        (
            "/v1/consumer/topics/events/partitions/0/offsets/0?count=0",
            400,
        ),
    ] {
        assert_eq!(
            env.get(&token, path).await.status().as_u16(),
            want,
            "{path}"
        );
    }
    assert_eq!(
        produce(&env, &token, "events", json!([{"key": "no value"}])).await,
        400
    );
    // Two partitions: 0 and 1. Partition 2 (the count itself), 5 and -1 do not exist.
    for partition in [2, 5, -1] {
        assert_eq!(
            produce(
                &env,
                &token,
                "events",
                json!([{"value": 1, "partition": partition}])
            )
            .await,
            404,
            "partition {partition}"
        );
    }
    assert_eq!(
        produce(&env, &token, "nope", json!([{"value": 1}])).await,
        404
    );
    let stats = env.emulator.control().stats();
    assert_eq!(stats.count_status("produce", 200), 1);
    assert_eq!(stats.count("consume"), 7);
}

#[tokio::test]
async fn consume_array_shape_and_retention_moves_earliest_offset() {
    let env = Env::start(EmulatorConfig {
        visibility_delay_ms: 0,
        consume_shape: ConsumeShape::Array,
        retention_records: 10,
        ..fast_config()
    })
    .await;
    let token = env.token().await;
    env.put_topic(&token, "arr", Some(json!({"partition_count": 1})))
        .await;
    assert_eq!(
        produce(&env, &token, "arr", json!([{"value": "a"}, {"value": "b"}])).await,
        200
    );
    let response = env
        .get(
            &token,
            "/v1/consumer/topics/arr/partitions/0/offsets/0?count=10",
        )
        .await;
    let body: Value = response.json().await.expect("JSON");
    let values: Vec<&str> = body
        .as_array()
        .expect("a bare array")
        .iter()
        .map(|r| r["value"].as_str().expect("string value"))
        .collect();
    assert_eq!(values, ["a", "b"]);

    env.emulator.control().produce("arr", 0, 25);
    let (_, p) = env
        .get_json(&token, "/v1/metadata/topics/arr/partitions/0")
        .await;
    assert_eq!(p["latest_offset"], 27);
    assert_eq!(p["earliest_offset"], 17);
    let response = env
        .get(&token, "/v1/consumer/topics/arr/partitions/0/offsets/0")
        .await;
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body[0]["offset"], 17, "reads start at the earliest offset");
}

#[tokio::test]
async fn out_of_band_changes_show_after_their_own_delay() {
    let env = Env::start(EmulatorConfig {
        visibility_delay_ms: 0,
        out_of_band_delay_ms: 3000,
        ..fast_config()
    })
    .await;
    let control = env.emulator.control();
    let token = env.token().await;
    env.put_topic(&token, "doomed", None).await;
    control
        .create_topic_out_of_band("cli-made", 3, 1)
        .expect("created");
    assert!(control.create_topic_out_of_band("cli-made", 3, 1).is_err());
    for bad in ["bad name", ".", "..", "", "ü"] {
        assert!(
            control.create_topic_out_of_band(bad, 3, 1).is_err(),
            "{bad:?}"
        );
    }
    assert!(
        control
            .create_topic_out_of_band(&"x".repeat(249), 1, 1)
            .is_ok()
    );
    assert!(control.delete_topic_out_of_band(&"x".repeat(249)));
    assert!(control.delete_topic_out_of_band("doomed"));
    assert!(!control.delete_topic_out_of_band("never-was"));
    // Deleted but still listed and described; created but not listed yet.
    assert_eq!(env.list(&token).await, vec!["doomed".to_string()]);
    assert_eq!(
        env.get_json(&token, "/v1/metadata/topics/doomed/partitions")
            .await
            .0,
        200
    );
    assert_eq!(
        env.get_json(&token, "/v1/metadata/topics/cli-made/partitions")
            .await
            .0,
        404
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(env.list(&token).await, vec!["cli-made".to_string()]);
    assert_eq!(
        env.get_json(&token, "/v1/metadata/topics/doomed/partitions")
            .await
            .0,
        404
    );
    // Gone for real: it can be created again.
    let (status, body) = env.put_topic(&token, "doomed", None).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn reset_restores_the_starting_state() {
    let env = Env::start(EmulatorConfig {
        visibility_delay_ms: 0,
        ..fast_config()
    })
    .await;
    let control = env.emulator.control();
    let token = env.token().await;
    env.put_topic(&token, "temp", None).await;
    control.broker_down(1001);
    control.set_app_secret(CLIENT_ID, "changed");
    control.reset();
    assert_eq!(control.stats(), Default::default());
    assert!(control.request_log().is_empty());
    let token = env.token().await;
    assert!(env.list(&token).await.is_empty());
    let (_, brokers) = env.get_json(&token, "/v1/metadata/brokers").await;
    assert_eq!(brokers["brokers"].as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_creates_and_describes() {
    let env = std::sync::Arc::new(
        Env::start(EmulatorConfig {
            visibility_delay_ms: 0,
            ..fast_config()
        })
        .await,
    );
    let token = env.token().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300 {
        let env = env.clone();
        let token = token.clone();
        tasks.spawn(async move {
            let topic = format!("bulk-{i}");
            let (status, body) = env.put_topic(&token, &topic, None).await;
            assert_eq!(status, 200, "{body}");
            let (status, body) = env
                .get_json(&token, &format!("/v1/metadata/topics/{topic}/partitions"))
                .await;
            assert_eq!(status, 200, "{body}");
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("a task finished without panicking");
    }
    assert_eq!(env.list(&token).await.len(), 300);
    let stats = env.emulator.control().stats();
    assert_eq!(stats.count_status("create", 200), 300);
    assert_eq!(stats.count_status("describe", 200), 300);
    assert_eq!(stats.creates_per_topic.len(), 300);
}

#[tokio::test]
async fn consume_stops_at_about_six_megabytes() {
    let env = Env::start(EmulatorConfig {
        visibility_delay_ms: 0,
        retention_records: 10_000_000,
        ..fast_config()
    })
    .await;
    let token = env.token().await;
    env.put_topic(&token, "big", Some(json!({"partition_count": 1})))
        .await;
    assert!(env.emulator.control().produce("big", 0, 1_000_000));
    let response = env
        .get(
            &token,
            "/v1/consumer/topics/big/partitions/0/offsets/0?count=1000000",
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let next: i64 = response.headers()["nextoffset"]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("a number");
    let bytes = response.bytes().await.expect("the body");
    assert!(bytes.len() <= 6 * 1024 * 1024, "{} bytes", bytes.len());
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    let records = body["records"].as_array().expect("records");
    assert!(!records.is_empty() && records.len() < 1_000_000);
    assert_eq!(
        next,
        records.last().expect("a record")["offset"]
            .as_i64()
            .expect("offset")
            + 1
    );
}

fn epoch_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(since.as_millis()).expect("fits")
}
