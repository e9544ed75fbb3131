//! A KafkaRestProxy whose endpoint changes has moved to another cluster: its topics are
//! reconciled against the new one at once — existing ones adopted, missing ones created — with
//! no recreate grace and no `TopicRecreated`, and one `ClusterChanged` Event on the proxy.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hdinsight_emulator::{AppConfig, EmulatorConfig, RunningEmulator, Transport};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use sandbox::env::{
    CLIENT_ID, CLIENT_SECRET, CLUSTER_GROUP_ID, ClusterSettings, NAMESPACE, PROXY_NAME, TENANT_ID,
};

/// The new cluster: the same tenant and app (a move within one Entra ID tenant), its own
/// endpoint and TLS certificate authority.
async fn new_cluster(dir: &std::path::Path) -> RunningEmulator {
    let config = EmulatorConfig {
        tenant_id: TENANT_ID.into(),
        cluster_group_id: CLUSTER_GROUP_ID.into(),
        apps: vec![AppConfig {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            groups: vec![CLUSTER_GROUP_ID.into()],
            ..Default::default()
        }],
        visibility_delay_ms: 200,
        out_of_band_delay_ms: 200,
        ..Default::default()
    };
    RunningEmulator::start(
        config,
        "127.0.0.1:0".parse().expect("address"),
        Transport::Tls {
            dir: dir.join("new-cluster"),
        },
    )
    .await
    .expect("the new cluster's emulator starts")
}

fn proxy_endpoint(t: &hdinsight_topic_operator::crd::KafkaTopic) -> Option<String> {
    t.status.as_ref()?.proxy_endpoint.clone()
}

fn ready_since(t: &hdinsight_topic_operator::crd::KafkaTopic) -> Option<String> {
    let c = hdinsight_topic_operator::crd::find_condition(&t.status.as_ref()?.conditions, "Ready")?;
    Some(c.last_transition_time.0.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_change_moves_the_topics_to_the_new_cluster_at_once() {
    let (dir, env) = start(ClusterSettings {
        visibility_delay: Duration::from_millis(200),
        ..ClusterSettings::default()
    })
    .await;
    // A long recreate grace: a move that waited for it would time the test out.
    let _op = spawn_operator(&env, &[("HDI_RECREATE_GRACE", "120s")]);
    let names = ["orders", "payments", "audit"];
    for name in names {
        create(&env, &topic(name, serde_json::json!({"partitions": 2}))).await;
    }
    // An observed topic, made by someone else on the old cluster.
    env.hdi
        .control()
        .create_topic_out_of_band("ledger", 1, 3)
        .expect("ledger on the old cluster");
    create(
        &env,
        &topic("ledger", serde_json::json!({"managementPolicy": "Observe"})),
    )
    .await;
    for name in names {
        wait_ready(&env, name).await;
    }
    wait_ready(&env, "ledger").await;
    let old_endpoint = env.hdi.base_url();
    let before = topics(&env).get("orders").await.expect("orders");
    assert_eq!(
        proxy_endpoint(&before).as_deref(),
        Some(old_endpoint.as_str())
    );

    // The new cluster already has `orders` (its data was mirrored), not the others.
    let new = new_cluster(dir.path()).await;
    for (name, partitions) in [("orders", 2), ("ledger", 1)] {
        new.control()
            .create_topic_out_of_band(name, partitions, 3)
            .expect("a topic on the new cluster");
    }
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Trust both clusters' CAs, then point the proxy at the new cluster.
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NAMESPACE);
    let bundle = format!(
        "{}\n{}",
        env.hdi.ca_pem().unwrap_or_default(),
        new.ca_pem().unwrap_or_default()
    );
    secrets
        .patch(
            "hdi-ca",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"stringData": {"ca.crt": bundle}})),
        )
        .await
        .expect("CA bundle");
    let moved_at = Instant::now();
    proxies(&env)
        .patch(
            PROXY_NAME,
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"spec": {
                "endpoint": new.base_url(),
                "authority": new.authority_url(),
            }})),
        )
        .await
        .expect("proxy moved");

    let new_endpoint = new.base_url();
    for name in names {
        wait_topic(
            &env,
            name,
            Duration::from_secs(30),
            "moved and Ready",
            |t| {
                proxy_endpoint(t).as_deref() == Some(new_endpoint.as_str())
                    && ready(t).is_some_and(|r| r.0 == "True")
            },
        )
        .await;
    }
    assert!(
        moved_at.elapsed() < Duration::from_secs(30),
        "no recreate grace (120 s) was waited"
    );
    let orders = topics(&env).get("orders").await.expect("orders");
    assert_eq!(ready(&orders).map(|r| r.1).as_deref(), Some("Adopted"));
    assert_eq!(
        ready_since(&orders),
        ready_since(&before),
        "Ready on both clusters: its lastTransitionTime stays"
    );
    for name in ["payments", "audit"] {
        let t = topics(&env).get(name).await.expect("topic");
        assert_eq!(ready(&t).map(|r| r.1).as_deref(), Some("Created"), "{name}");
        assert_eq!(
            t.status.as_ref().and_then(|s| s.missing_since.clone()),
            None,
            "{name}"
        );
    }
    let observed = wait_topic(&env, "ledger", Duration::from_secs(30), "moved", |t| {
        proxy_endpoint(t).as_deref() == Some(new_endpoint.as_str())
    })
    .await;
    assert_eq!(
        ready(&observed).map(|r| (r.0, r.1)),
        Some(("True".to_string(), "Adopted".to_string())),
        "the observed topic is observed on the new cluster"
    );

    // One create per missing topic on the new cluster; none for the one that was there.
    let stats = new.control().stats();
    assert_eq!(stats.creates_per_topic.get("payments").copied(), Some(1));
    assert_eq!(stats.creates_per_topic.get("audit").copied(), Some(1));
    assert_eq!(stats.creates_per_topic.get("orders").copied(), None);
    assert_eq!(stats.creates_per_topic.get("ledger").copied(), None);
    let old_creates = env.hdi.control().stats().count("create");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.hdi.control().stats().count("create"),
        old_creates,
        "nothing is sent to the old cluster any more"
    );

    for name in names {
        let events = events_of(&env, name).await;
        assert!(
            events.iter().all(|e| e.1 != "TopicRecreated"),
            "{name}: {events:?}"
        );
    }
    let proxy_events: Vec<_> = events_of(&env, PROXY_NAME)
        .await
        .into_iter()
        .filter(|e| e.1 == "ClusterChanged")
        .collect();
    assert_eq!(proxy_events.len(), 1, "{proxy_events:?}");
    assert!(
        proxy_events[0].2.contains(&new_endpoint),
        "{proxy_events:?}"
    );
}
