//! End to end, continued: visibility, out-of-band changes, namespaces, admission and the
//! steady state.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use sandbox::env::{ClusterSettings, NAMESPACE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_list_shows_waiting_for_visibility_then_ready() {
    let (_dir, env) = start(ClusterSettings {
        visibility_delay: Duration::from_secs(6),
        ..Default::default()
    })
    .await;
    let _op = spawn_operator(&env, &[]);
    create(&env, &topic("slow", serde_json::json!({"partitions": 4}))).await;
    wait_reason(&env, "slow", "Creating").await;
    let waiting = wait_reason(&env, "slow", "WaitingForVisibility").await;
    assert_eq!(
        condition(&waiting, "Reconciling").map(|c| c.0).as_deref(),
        Some("True")
    );
    let t = wait_ready(&env, "slow").await;
    assert_eq!(t.status.and_then(|s| s.partitions), Some(4));
    let stats = env.hdi.control().stats();
    assert_eq!(stats.creates_per_topic.get("slow").copied(), Some(1));
    assert_eq!(
        stats.count_status("describe", 404),
        0,
        "no describe is wasted before the topic is listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_partition_change_is_reported_as_drift_and_offline_partitions_counted() {
    let (_dir, env) = start(ClusterSettings {
        visibility_delay: Duration::from_millis(500),
        out_of_band_delay: Duration::from_millis(800),
        ..Default::default()
    })
    .await;
    let _op = spawn_operator(&env, &[("HDI_RECREATE_GRACE", "60s")]);
    create(
        &env,
        &topic(
            "clicks",
            serde_json::json!({"partitions": 3, "replicationFactor": 1}),
        ),
    )
    .await;
    wait_ready(&env, "clicks").await;
    // Someone recreates it by hand with more partitions.
    let control = env.hdi.control();
    assert!(control.delete_topic_out_of_band("clicks"));
    // Kafka refuses to create a topic that is still being deleted.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    control
        .create_topic_out_of_band("clicks", 5, 1)
        .expect("out-of-band create");
    let t = wait_topic(&env, "clicks", Duration::from_secs(30), "Drifted", |t| {
        condition(t, "Drifted").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(t.status.as_ref().and_then(|s| s.partitions), Some(5));
    assert_eq!(ready(&t).map(|r| r.0).as_deref(), Some("True"));
    let drift = condition(&t, "Drifted").map(|c| c.2).unwrap_or_default();
    assert!(drift.contains('3') && drift.contains('5'), "{drift}");

    // With replication factor 1, a broker down takes partitions offline.
    for id in [1001, 1002, 1003] {
        control.broker_down(id);
    }
    let t = wait_topic(
        &env,
        "clicks",
        Duration::from_secs(30),
        "offline > 0",
        |t| {
            t.status
                .as_ref()
                .and_then(|s| s.offline_partitions)
                .is_some_and(|o| o > 0)
        },
    )
    .await;
    assert!(t.status.as_ref().and_then(|s| s.offline_partitions) == Some(5));
    for id in [1001, 1002, 1003] {
        control.broker_up(id);
    }
    wait_topic(
        &env,
        "clicks",
        Duration::from_secs(30),
        "offline back to 0",
        |t| t.status.as_ref().and_then(|s| s.offline_partitions) == Some(0),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_namespaces_need_the_proxys_permission() {
    let (_dir, env) = start(ClusterSettings::default()).await;
    let _op = spawn_operator(&env, &[]);
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "team-b", "labels": {"kafka-access": "yes"}}
    }))
    .expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    let mut t = topic(
        "foreign",
        serde_json::json!({"proxyRef": {"name": "default", "namespace": NAMESPACE}}),
    );
    t.metadata.namespace = Some("team-b".into());
    let team_b: Api<hdinsight_topic_operator::crd::KafkaTopic> =
        Api::namespaced(env.client.clone(), "team-b");
    team_b
        .create(&PostParams::default(), &t)
        .await
        .expect("created");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let t = team_b.get("foreign").await.expect("get");
        if ready(&t).is_some_and(|r| r.1 == "ProxyNotAllowed") {
            assert!(ready(&t).is_some_and(|r| r.2.contains("team-b")));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", ready(&t));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        env.hdi.control().stats().creates_per_topic.get("foreign"),
        None
    );

    // The proxy opens up to namespaces with a label: the topic is re-triggered and created.
    let allow = serde_json::json!({"spec": {"allowedTopicNamespaces": {
        "from": "Selector", "selector": {"matchLabels": {"kafka-access": "yes"}}}}});
    proxies(&env)
        .patch("default", &PatchParams::default(), &Patch::Merge(&allow))
        .await
        .expect("proxy patched");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let t = team_b.get("foreign").await.expect("get");
        if ready(&t).is_some_and(|r| r.0 == "True") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", ready(&t));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_refuses_invalid_and_immutable_changes_with_the_field_named() {
    let (_dir, env) = start(ClusterSettings::default()).await;
    let api = topics(&env);
    let err = api
        .create(
            &PostParams::default(),
            &topic("zero", serde_json::json!({"partitions": 0})),
        )
        .await
        .expect_err("partitions 0 is refused");
    let text = err.to_string();
    assert!(text.contains("spec.partitions"), "{text}");

    let err = api
        .create(
            &PostParams::default(),
            &topic(
                "bad-name",
                serde_json::json!({"topicName": "no spaces allowed"}),
            ),
        )
        .await
        .expect_err("invalid Kafka name is refused");
    assert!(err.to_string().contains("spec.topicName"), "{err}");

    create(
        &env,
        &topic(
            "fixed",
            serde_json::json!({"partitions": 2, "replicationFactor": 2}),
        ),
    )
    .await;
    for (patch, field) in [
        (serde_json::json!({"spec": {"partitions": 4}}), "partitions"),
        (
            serde_json::json!({"spec": {"replicationFactor": 3}}),
            "replicationFactor",
        ),
        (
            serde_json::json!({"spec": {"topicName": "renamed"}}),
            "topicName",
        ),
    ] {
        let err = api
            .patch("fixed", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect_err("immutable field change is refused");
        let text = err.to_string();
        assert!(text.contains(field), "{field}: {text}");
        match err {
            kube::Error::Api(s) => assert_eq!(s.code, 422, "{s:?}"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_costs_one_describe_per_topic_per_resync_and_no_writes() {
    let (_dir, env) = start(ClusterSettings {
        visibility_delay: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let _op = spawn_operator(&env, &[]);
    for i in 0..10 {
        create(&env, &topic(&format!("steady-{i}"), serde_json::json!({}))).await;
    }
    for i in 0..10 {
        wait_ready(&env, &format!("steady-{i}")).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kube_before = env.kube.control().stats();
    let hdi_before = env.hdi.control().stats();
    // Resync is 3 s: about four resync periods.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let kube_after = env.kube.control().stats();
    let hdi_after = env.hdi.control().stats();
    // Every write by resource, minus Events and the Lease; the proxy's own status may catch
    // up once with the last topics in its count.
    let changed: Vec<(String, u64)> = kube_after
        .writes
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v - kube_before.writes.get(k).copied().unwrap_or(0),
            )
        })
        .filter(|(k, d)| *d > 0 && k != "events" && k != "leases")
        .collect();
    let proxy_status = kube_after.writes_to("kafkarestproxies", Some("status"))
        - kube_before.writes_to("kafkarestproxies", Some("status"));
    assert!(proxy_status <= 1, "{changed:?}");
    assert!(
        changed.iter().all(|(k, _)| k == "kafkarestproxies/status"),
        "no status or object writes in a steady state: {changed:?}"
    );
    assert_eq!(
        kube_after.writes_to("kafkatopics", Some("status")),
        kube_before.writes_to("kafkatopics", Some("status"))
    );
    let describes = hdi_after.count("describe") - hdi_before.count("describe");
    assert!(
        (25..=55).contains(&describes),
        "10 topics × 12 s / 3 s resync (±10 % jitter) ≈ 40 describes, saw {describes}"
    );
    assert_eq!(hdi_after.count("create"), hdi_before.count("create"));
    assert_eq!(
        hdi_after.count("token"),
        hdi_before.count("token"),
        "the token is cached"
    );
}

/// The chart's other RBAC layout: with `watchNamespaces` it grants Roles in those namespaces
/// only (plus reading namespaces), and the operator watching just them needs nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_one_namespace_works_with_the_charts_namespaced_roles() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let Some(chart) = render_chart_with(&["--set", &format!("watchNamespaces={{{NAMESPACE}}}")])
    else {
        eprintln!("note: helm not found; this test needs the chart's RBAC");
        return;
    };
    let kinds: Vec<(String, String)> = chart
        .docs
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or("").to_string(),
                d.pointer("/metadata/name")
                    .and_then(|n| n.as_str())
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    assert!(
        kinds.iter().any(|(k, _)| k == "Role") && kinds.iter().any(|(k, _)| k == "RoleBinding"),
        "{kinds:?}"
    );
    let (_dir, env) = start_with_chart(ClusterSettings::default(), Some(&chart)).await;
    // The operator's identity cannot read topics outside the namespace.
    let operator = sandbox::env::client_for(&env.dir.join("operator.kubeconfig"))
        .await
        .expect("the operator's client");
    let everywhere: Api<hdinsight_topic_operator::crd::KafkaTopic> = Api::all(operator.clone());
    match everywhere.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("listing topics cluster-wide should be forbidden: {other:?}"),
    }
    let configmaps: Api<ConfigMap> = Api::namespaced(operator, NAMESPACE);
    assert!(configmaps.list(&Default::default()).await.is_err());

    let _op = spawn_operator(&env, &[("HDI_WATCH_NAMESPACES", NAMESPACE)]);
    create(&env, &topic("scoped", serde_json::json!({}))).await;
    wait_ready(&env, "scoped").await;
}
