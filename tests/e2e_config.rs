//! End to end: a KafkaTopic whose `spec.config` admission would refuse today, stored under an
//! older CRD without the config rules (or on a cluster without CEL), is stopped by the
//! operator's own check of the same table — `Stalled` `InvalidSpec` naming the key — and no
//! create reaches the proxy.

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use sandbox::env::ClusterSettings;

fn fast_cluster() -> ClusterSettings {
    ClusterSettings {
        visibility_delay: Duration::from_millis(700),
        out_of_band_delay: Duration::from_millis(1200),
        ..Default::default()
    }
}

/// Replaces the installed KafkaTopic CRD with one whose `spec.config` has no CEL rules, as the
/// CRD was before they existed.
async fn install_crd_without_config_rules(env: &sandbox::env::Env) {
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let mut crd = crds
        .get("kafkatopics.kafka.hdinsight.dev")
        .await
        .expect("the KafkaTopic CRD is installed");
    let mut value = serde_json::to_value(&crd).expect("CRD as JSON");
    let config = value
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/config")
        .and_then(|c| c.as_object_mut())
        .expect("spec.config in the schema");
    assert!(config.remove("x-kubernetes-validations").is_some());
    crd = serde_json::from_value(value).expect("CRD from JSON");
    crds.replace(
        "kafkatopics.kafka.hdinsight.dev",
        &PostParams::default(),
        &crd,
    )
    .await
    .expect("CRD replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_outside_the_table_stalls_before_any_create() {
    let (_dir, env) = start(fast_cluster()).await;
    install_crd_without_config_rules(&env).await;
    let cases = [
        (
            "typo",
            serde_json::json!({"retention.msec": 1000}),
            "spec.config.retention.msec: not a topic-level config of Kafka 2.1 (HDInsight 4.0), 2.4 (HDInsight 5.0), 3.2 (HDInsight 5.1); see docs/topic-config.md",
        ),
        (
            "bad-policy",
            serde_json::json!({"cleanup.policy": "compact,purge"}),
            "spec.config.cleanup.policy: must be a comma-separated list of compact, delete",
        ),
        (
            "bad-ratio",
            serde_json::json!({"min.cleanable.dirty.ratio": "2"}),
            "spec.config.min.cleanable.dirty.ratio: must be a number from 0 to 1, e.g. \"0.5\"",
        ),
    ];
    for (name, config, _) in &cases {
        create(&env, &topic(name, serde_json::json!({ "config": config }))).await;
    }
    // A valid config next to them is created as usual.
    create(
        &env,
        &topic(
            "good",
            serde_json::json!({"config": {"cleanup.policy": "compact,delete", "retention.ms": -1, "preallocate": "true"}}),
        ),
    )
    .await;
    let _op = spawn_operator(&env, &[]);

    for (name, _, message) in &cases {
        let t = wait_reason(&env, name, "InvalidSpec").await;
        assert_eq!(
            condition(&t, "Stalled"),
            Some(("True".into(), "InvalidSpec".into(), (*message).to_string())),
            "{name}"
        );
    }
    wait_ready(&env, "good").await;
    let stats = env.hdi.control().stats();
    for (name, _, _) in &cases {
        assert_eq!(stats.creates_per_topic.get(*name), None, "{name}");
    }
    assert_eq!(stats.creates_per_topic.get("good").copied(), Some(1));
}
