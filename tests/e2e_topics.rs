//! End to end: the operator binary against the Kubernetes and HDInsight emulators. Each test
//! starts its own emulators and operator, so they run in parallel without sharing state.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use sandbox::env::{CLIENT_SECRET, ClusterSettings, NAMESPACE};

fn fast_cluster() -> ClusterSettings {
    ClusterSettings {
        visibility_delay: Duration::from_millis(700),
        out_of_band_delay: Duration::from_millis(1200),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_topics_are_created_once_and_report_the_cluster() {
    let (_dir, env) = start(fast_cluster()).await;
    let op = spawn_operator(&env, &[]);
    let names = env.apply_example_topics().await.expect("examples applied");
    for name in &names {
        wait_ready(&env, name).await;
    }
    let orders = wait_ready(&env, "orders").await;
    let status = orders.status.clone().expect("status");
    assert_eq!(status.topic_name.as_deref(), Some("orders.v1"));
    assert_eq!(status.partitions, Some(12));
    assert_eq!(status.replication_factor, Some(3));
    assert_eq!(status.under_replicated_partitions, Some(0));
    assert_eq!(status.observed_generation, orders.metadata.generation);
    let details = status.partition_details.clone().expect("partition details");
    assert_eq!(details.len(), 12);
    for p in &details {
        assert_eq!(p.replicas.len(), 3);
        assert_eq!(p.leader, p.isr.first().copied(), "leader is the first ISR");
    }
    assert_eq!(ready(&orders).map(|r| r.1).as_deref(), Some("Created"));

    let stats = env.hdi.control().stats();
    for topic in ["orders.v1", "payments", "audit-log"] {
        assert_eq!(
            stats.creates_per_topic.get(topic).copied(),
            Some(1),
            "{topic} is created exactly once"
        );
    }
    assert_eq!(
        stats.count("unsupported"),
        0,
        "no delete or alter was tried"
    );
    let created = events_of(&env, "orders").await;
    assert!(
        created
            .iter()
            .any(|(t, r, _)| t == "Normal" && r == "Created"),
        "{created:?}"
    );

    // Nothing changes: two resyncs later not a single status write more.
    let before = env
        .kube
        .control()
        .stats()
        .writes_to("kafkatopics", Some("status"));
    tokio::time::sleep(Duration::from_secs(7)).await;
    let after = env
        .kube
        .control()
        .stats()
        .writes_to("kafkatopics", Some("status"));
    assert_eq!(
        after, before,
        "a resync that finds nothing new writes nothing"
    );
    assert_eq!(
        env.hdi
            .control()
            .stats()
            .creates_per_topic
            .get("orders.v1")
            .copied(),
        Some(1)
    );
    // Probes and metrics.
    let health = logged_addr(&op, "health_addr").expect("health address logged");
    assert_eq!(http_get(&health, "/livez").await.0, 200);
    assert_eq!(http_get(&health, "/readyz").await.0, 200);
    let metrics = logged_addr(&op, "metrics_addr").expect("metrics address logged");
    // The topics gauge is refreshed from the cache every 10 s.
    let ready_series = "hdinsight_topic_operator_topics{condition=\"Ready\",status=\"True\"} 3";
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (code, text) = loop {
        let (code, text) = http_get(&metrics, "/metrics").await;
        if text.contains(ready_series) || std::time::Instant::now() > deadline {
            break (code, text);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(code, 200);
    assert!(
        text.contains(
            "hdinsight_topic_operator_proxy_requests_total{proxy=\"kafka/default\",operation=\"create\",outcome=\"2xx\"} 3"
        ),
        "{text}"
    );
    assert!(
        text.contains("hdinsight_topic_operator_token_requests_total{proxy=\"kafka/default\",result=\"success\"} 1"),
        "{text}\n{}",
        op.logs()
            .lines()
            .filter(|l| l.contains("proxy client") || l.contains("token"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        text.contains("hdinsight_topic_operator_topics{condition=\"Ready\",status=\"True\"} 3"),
        "{text}"
    );
    assert_no_secrets(&text, &[CLIENT_SECRET]);
    assert_no_secrets(&op.logs(), &[CLIENT_SECRET]);
    // Logs to a pipe (pod logs, files) are plain text: no ANSI colour codes.
    assert!(!op.logs().is_empty());
    assert!(!op.logs().contains('\u{1b}'), "colour codes in piped logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_topic_is_adopted_and_its_drift_reported_once() {
    let (_dir, env) = start(fast_cluster()).await;
    env.hdi
        .control()
        .create_topic_out_of_band("payments", 3, 2)
        .expect("out-of-band create");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _op = spawn_operator(&env, &[]);
    create(
        &env,
        &topic(
            "payments",
            serde_json::json!({"partitions": 6, "replicationFactor": 3}),
        ),
    )
    .await;
    let t = wait_topic(&env, "payments", Duration::from_secs(30), "Drifted", |t| {
        condition(t, "Drifted").is_some_and(|c| c.0 == "True")
    })
    .await;
    let (ready_status, reason, _) = ready(&t).expect("Ready");
    assert_eq!(
        (ready_status.as_str(), reason.as_str()),
        ("True", "Adopted")
    );
    let drift = condition(&t, "Drifted").expect("Drifted").2;
    assert!(drift.contains('6') && drift.contains('3'), "{drift}");
    assert_eq!(
        env.hdi
            .control()
            .stats()
            .creates_per_topic
            .get("payments")
            .copied()
            .unwrap_or(0),
        0,
        "an existing topic is never created"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let drifted_events = events_of(&env, "payments")
        .await
        .into_iter()
        .filter(|e| e.1 == "Drifted")
        .count();
    assert_eq!(drifted_events, 1, "drift is announced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_policy_conflicts_and_pause_never_create() {
    let (_dir, env) = start(fast_cluster()).await;
    let _op = spawn_operator(&env, &[]);
    create(
        &env,
        &topic(
            "watched",
            serde_json::json!({"managementPolicy": "Observe"}),
        ),
    )
    .await;
    create(
        &env,
        &topic("first", serde_json::json!({"topicName": "shared"})),
    )
    .await;
    wait_ready(&env, "first").await;
    create(
        &env,
        &topic("second", serde_json::json!({"topicName": "shared"})),
    )
    .await;
    let mut paused = topic("paused", serde_json::json!({}));
    paused.metadata.annotations =
        Some([("kafka.hdinsight.dev/paused".to_string(), "true".to_string())].into());
    create(&env, &paused).await;

    let w = wait_reason(&env, "watched", "TopicNotFound").await;
    assert_eq!(ready(&w).map(|r| r.0).as_deref(), Some("False"));
    let s = wait_reason(&env, "second", "ResourceConflict").await;
    assert!(
        ready(&s).is_some_and(|r| r.2.contains("kafka/first")),
        "{:?}",
        ready(&s)
    );
    assert_eq!(
        condition(&s, "Stalled").map(|c| c.0).as_deref(),
        Some("True")
    );
    let p = wait_topic(&env, "paused", Duration::from_secs(20), "Paused", |t| {
        condition(t, "Paused").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert!(p.status.as_ref().and_then(|s| s.partitions).is_none());

    let stats = env.hdi.control().stats();
    assert_eq!(stats.creates_per_topic.get("watched"), None);
    assert_eq!(stats.creates_per_topic.get("paused"), None);
    assert_eq!(stats.creates_per_topic.get("shared").copied(), Some(1));

    // Deleting a KafkaTopic sends nothing to the proxy and keeps the topic.
    topics(&env)
        .delete("first", &DeleteParams::default())
        .await
        .expect("deleted");
    // With the owner gone, the other KafkaTopic takes the topic over: the operator has acted
    // on the deletion by then.
    let s = wait_ready(&env, "second").await;
    assert_eq!(ready(&s).map(|r| r.1).as_deref(), Some("Adopted"));
    let stats = env.hdi.control().stats();
    assert_eq!(stats.count("unsupported"), 0, "no delete reached the proxy");
    // The cluster still has the topic (not a counter of past creates, which never shrinks).
    assert!(
        env.hdi
            .control()
            .topic_names()
            .contains(&"shared".to_string()),
        "the topic stays on the cluster: {:?}",
        env.hdi.control().topic_names()
    );
    assert_eq!(stats.creates_per_topic.get("shared").copied(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_reported_with_aadsts_and_rotation_recovers_without_restart() {
    let (_dir, env) = start(fast_cluster()).await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NAMESPACE);
    let wrong = serde_json::json!({"stringData": {"clientSecret": "definitely-wrong-secret"}});
    secrets
        .patch("hdi-sp", &PatchParams::default(), &Patch::Merge(&wrong))
        .await
        .expect("secret patched");
    let op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({"partitions": 2}))).await;
    let t = wait_reason(&env, "orders", "AuthenticationFailed").await;
    let message = ready(&t).map(|r| r.2).unwrap_or_default();
    assert!(message.contains("AADSTS7000215"), "{message}");
    let proxy = proxies(&env).get("default").await.expect("proxy");
    let proxy_ready = proxy
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned());
    assert!(
        proxy_ready.as_ref().is_some_and(|c| c.status == "False"),
        "{proxy_ready:?}"
    );

    // Rotate: the right secret arrives; no restart.
    let right = serde_json::json!({"stringData": {"clientSecret": CLIENT_SECRET}});
    secrets
        .patch("hdi-sp", &PatchParams::default(), &Patch::Merge(&right))
        .await
        .expect("secret patched");
    wait_ready(&env, "orders").await;
    assert_no_secrets(&op.logs(), &[CLIENT_SECRET, "definitely-wrong-secret"]);
    let events = events_of(&env, "orders").await;
    for (_, _, note) in &events {
        assert!(!note.contains(CLIENT_SECRET) && !note.contains("definitely-wrong-secret"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_outside_the_security_group_is_forbidden() {
    let (_dir, env) = start(ClusterSettings {
        app_in_group: false,
        ..fast_cluster()
    })
    .await;
    let _op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({}))).await;
    let t = wait_reason(&env, "orders", "Forbidden").await;
    let message = ready(&t).map(|r| r.2).unwrap_or_default();
    assert!(message.contains("security group"), "{message}");
    assert_eq!(
        env.hdi.control().stats().creates_per_topic.get("orders"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_proxy_then_created_and_topic_deleted_out_of_band_is_recreated() {
    let (_dir, env) = start(fast_cluster()).await;
    let _op = spawn_operator(&env, &[]);
    create(
        &env,
        &topic("orphan", serde_json::json!({"proxyRef": {"name": "nope"}})),
    )
    .await;
    let o = wait_reason(&env, "orphan", "ProxyNotFound").await;
    assert_eq!(
        condition(&o, "Stalled").map(|c| c.0).as_deref(),
        Some("True")
    );

    create(&env, &topic("events", serde_json::json!({"partitions": 2}))).await;
    wait_ready(&env, "events").await;
    assert!(env.hdi.control().delete_topic_out_of_band("events"));
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while env
        .hdi
        .control()
        .stats()
        .creates_per_topic
        .get("events")
        .copied()
        != Some(2)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the topic was not created again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_ready(&env, "events").await;
    let events = events_of(&env, "events").await;
    assert!(
        events
            .iter()
            .any(|(t, r, _)| t == "Warning" && r == "TopicRecreated"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_leader_and_the_other_takes_over() {
    let (_dir, env) = start(fast_cluster()).await;
    // The Lease name and namespace come from the chart (see common::spawn_operator).
    let mut a = spawn_operator(
        &env,
        &[("HDI_LEADER_ELECTION", "true"), ("POD_NAME", "replica-a")],
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut b = spawn_operator(
        &env,
        &[("HDI_LEADER_ELECTION", "true"), ("POD_NAME", "replica-b")],
    );
    create(&env, &topic("one", serde_json::json!({}))).await;
    wait_ready(&env, "one").await;
    // The Lease names the one replica that leads (its identity starts with the pod name).
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(env.client.clone(), RELEASE_NAMESPACE);
    let holder = leases
        .get(&lease_name())
        .await
        .expect("the Lease exists")
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    let (leader, standby) = if holder.starts_with("replica-a-") {
        (&mut a, &mut b)
    } else if holder.starts_with("replica-b-") {
        (&mut b, &mut a)
    } else {
        panic!("no replica holds the Lease: {holder:?}")
    };
    assert!(leader.logs().contains("became leader"), "{}", leader.logs());
    leader.kill();
    create(&env, &topic("two", serde_json::json!({}))).await;
    // The Lease (3 s) expires, the standby takes it and starts its controllers: seconds,
    // with room for a loaded machine.
    let t = wait_topic(
        &env,
        "two",
        Duration::from_secs(60),
        "Ready after failover",
        |t| ready(t).is_some_and(|r| r.0 == "True"),
    )
    .await;
    assert!(t.status.is_some());
    assert!(standby.logs().contains("became leader"));
    // SIGTERM: a graceful stop, exit code 0, and the Lease is given up.
    assert_eq!(standby.terminate(), Some(0), "{}", standby.logs());
    let lease = leases.get(&lease_name()).await.expect("the Lease exists");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity),
        None,
        "the Lease was released"
    );
    assert_eq!(
        env.hdi
            .control()
            .stats()
            .creates_per_topic
            .get("one")
            .copied(),
        Some(1)
    );
}

/// The value of the series `name{labels}` in an OpenMetrics text.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    let prefix = format!("{name_and_labels} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_shows_in_the_queue_depth_and_drains_to_zero() {
    let (_dir, env) = start(ClusterSettings {
        latency: Duration::from_millis(150),
        visibility_delay: Duration::from_millis(300),
        ..fast_cluster()
    })
    .await;
    // One reconcile at a time, each at least two slow proxy calls: 12 new topics queue up.
    let op = spawn_operator(
        &env,
        &[
            ("HDI_MAX_CONCURRENT_RECONCILES", "1"),
            ("HDI_RESYNC_INTERVAL", "120s"),
        ],
    );
    let (_, metrics) = wait_operator_ready(&op).await;
    let depth_series = "hdinsight_topic_operator_reconcile_queue_depth{kind=\"KafkaTopic\"}";
    let (_, idle) = http_get(&metrics, "/metrics").await;
    assert_eq!(series(&idle, depth_series), Some(0.0), "{idle}");

    let names: Vec<String> = (0..12).map(|i| format!("backlog-{i}")).collect();
    futures::future::join_all(names.iter().map(|n| {
        let env = &env;
        async move {
            create(
                env,
                &topic(
                    n,
                    serde_json::json!({"partitions": 1, "replicationFactor": 1}),
                ),
            )
            .await
        }
    }))
    .await;

    let mut deepest = 0.0_f64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, text) = http_get(&metrics, "/metrics").await;
        deepest = deepest.max(series(&text, depth_series).unwrap_or(0.0));
        let list = topics(&env)
            .list(&Default::default())
            .await
            .expect("list topics");
        let ready = list
            .items
            .iter()
            .filter(|t| ready(t).is_some_and(|r| r.0 == "True"))
            .count();
        if ready == names.len() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{ready} of {} Ready; {}",
            names.len(),
            op.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        deepest >= 6.0,
        "a burst of 12 against one worker queues most of them; deepest seen {deepest}"
    );

    // Everything reconciled and the next resync far away: the queue is empty.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let text = loop {
        let (_, text) = http_get(&metrics, "/metrics").await;
        if series(&text, depth_series) == Some(0.0) || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(series(&text, depth_series), Some(0.0), "{text}");
    let waits = series(
        &text,
        "hdinsight_topic_operator_reconcile_queue_wait_seconds_count{kind=\"KafkaTopic\"}",
    )
    .unwrap_or(0.0);
    assert!(
        waits >= 12.0,
        "every queued topic's wait was recorded: {text}"
    );
}

/// The suite runs under the chart's RBAC: a permission the chart lacked would be denied to the
/// operator and fail the test. Shown here by taking one rule away on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_missing_from_the_chart_is_denied_to_the_operator() {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let Some(chart) = rendered_chart() else {
        eprintln!("note: helm not found; this test needs the chart's RBAC");
        return;
    };
    let (_dir, env) = start(fast_cluster()).await;
    let role_name = chart
        .docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole")
        .find(|d| d["rules"].to_string().contains("kafkatopics/status"))
        .and_then(|d| d.pointer("/metadata/name")?.as_str().map(String::from))
        .expect("the chart's ClusterRole grants the status");
    let roles: Api<ClusterRole> = Api::all(env.client.clone());
    let mut role = roles
        .get(&role_name)
        .await
        .expect("the ClusterRole is applied");
    if let Some(rules) = role.rules.as_mut() {
        for rule in rules.iter_mut() {
            if let Some(resources) = rule.resources.as_mut() {
                resources.retain(|r| r != "kafkatopics/status");
            }
        }
    }
    roles
        .replace(&role_name, &PostParams::default(), &role)
        .await
        .expect("the rule is taken away");
    let mut op = spawn_operator(&env, &[]);
    op.expect_denials();
    create(&env, &topic("denied", serde_json::json!({}))).await;
    let wanted = format!(
        "kafkatopics.kafka.hdinsight.dev \"denied\" is forbidden: User \"system:serviceaccount:{RELEASE_NAMESPACE}:{}\" cannot patch resource \"kafkatopics/status\" in API group \"kafka.hdinsight.dev\" in the namespace \"{NAMESPACE}\"",
        chart.service_account
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !op.logs().contains(&wanted) {
        assert!(
            std::time::Instant::now() < deadline,
            "the operator never reported the denial: {}",
            op.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = topics(&env).get("denied").await.expect("the topic");
    assert!(t.status.is_none(), "no status could be written");
}
