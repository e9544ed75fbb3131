//! End to end: what status says, against both emulators with the operator under the chart's
//! RBAC — one test per KafkaRestProxy reason (and what its topics show), the CA bundle's
//! default key, Observe of a missing topic, `status.configState`, `import` and the
//! break-glass delete and re-apply.
//!
//! The kstatus meaning of the conditions follows kubernetes-sigs/cli-utils
//! `pkg/kstatus/status/generic.go` (Reconciling=True → InProgress, Stalled=True → Failed).

mod common;

use std::time::{Duration, Instant};

use common::*;
use hdinsight_emulator::{FaultRule, Faults};
use hdinsight_topic_operator::crd::{ConfigState, KafkaRestProxy, KafkaTopic};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use sandbox::env::{CLIENT_SECRET, ClusterSettings, NAMESPACE, PROXY_NAME};

fn fast_cluster() -> ClusterSettings {
    ClusterSettings {
        visibility_delay: Duration::from_millis(500),
        out_of_band_delay: Duration::from_millis(500),
        ..Default::default()
    }
}

/// A condition of an object's status as (status, reason, message).
fn proxy_condition(p: &KafkaRestProxy, type_: &str) -> Option<(String, String, String)> {
    let c = p
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits until the proxy's `Ready` reason is `reason` for its current generation; returns it.
async fn wait_proxy_reason(env: &sandbox::env::Env, reason: &str) -> KafkaRestProxy {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = proxies(env).get(PROXY_NAME).await.expect("proxy");
        if proxy_condition(&p, "Ready").is_some_and(|c| c.1 == reason)
            && p.status.as_ref().and_then(|s| s.observed_generation) == p.metadata.generation
        {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy never reported {reason}: {:?}",
            p.status.map(|s| s.conditions)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Asserts the kstatus triple of a proxy: Ready=False with `reason`, and `Stalled` (a person
/// must act) or `Reconciling` (time may fix it), never both.
fn assert_proxy_blocked(p: &KafkaRestProxy, reason: &str, stalled: bool) {
    let ready = proxy_condition(p, "Ready").expect("Ready");
    assert_eq!((ready.0.as_str(), ready.1.as_str()), ("False", reason));
    let s = proxy_condition(p, "Stalled").expect("Stalled");
    let r = proxy_condition(p, "Reconciling").expect("Reconciling");
    assert_eq!(s.0 == "True", stalled, "Stalled: {s:?}");
    assert_eq!(r.0 == "True", !stalled, "Reconciling: {r:?}");
}

fn assert_topic_stalled(t: &KafkaTopic, reason: &str) {
    assert_eq!(
        ready(t).map(|r| (r.0, r.1)),
        Some(("False".to_string(), reason.to_string()))
    );
    assert_eq!(
        condition(t, "Stalled").map(|c| (c.0, c.1)),
        Some(("True".to_string(), reason.to_string()))
    );
}

fn secrets(env: &sandbox::env::Env) -> Api<Secret> {
    Api::namespaced(env.client.clone(), NAMESPACE)
}

async fn patch_proxy(env: &sandbox::env::Env, patch: serde_json::Value) {
    proxies(env)
        .patch(PROXY_NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("proxy patched");
}

fn creates(env: &sandbox::env::Env, topic: &str) -> u64 {
    env.hdi
        .control()
        .stats()
        .creates_per_topic
        .get(topic)
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_secret_not_found_on_the_proxy_and_its_topics_until_it_appears() {
    let (_dir, env) = start(fast_cluster()).await;
    let sp = secrets(&env)
        .get("hdi-sp")
        .await
        .expect("the example Secret");
    secrets(&env)
        .delete("hdi-sp", &DeleteParams::default())
        .await
        .expect("secret deleted");
    let op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({"partitions": 2}))).await;

    let p = wait_proxy_reason(&env, "SecretNotFound").await;
    assert_proxy_blocked(&p, "SecretNotFound", true);
    let message = proxy_condition(&p, "Ready")
        .map(|c| c.2)
        .unwrap_or_default();
    assert!(message.contains("kafka/hdi-sp"), "{message}");
    let t = wait_reason(&env, "orders", "SecretNotFound").await;
    assert_topic_stalled(&t, "SecretNotFound");
    assert_eq!(
        creates(&env, "orders"),
        0,
        "nothing is sent without credentials"
    );

    // The Secret appears: both recover without a restart or a change to either object.
    let mut again = sp.clone();
    again.metadata = kube::api::ObjectMeta {
        name: sp.metadata.name.clone(),
        namespace: sp.metadata.namespace.clone(),
        ..Default::default()
    };
    secrets(&env)
        .create(&PostParams::default(), &again)
        .await
        .expect("secret re-created");
    let p = wait_proxy_reason(&env, "Connected").await;
    assert_eq!(
        proxy_condition(&p, "Stalled").map(|c| c.0).as_deref(),
        Some("False")
    );
    let t = wait_ready(&env, "orders").await;
    assert_eq!(ready(&t).map(|r| r.1).as_deref(), Some("Created"));
    assert_no_secrets(&op.logs(), &[CLIENT_SECRET]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_without_a_key_is_credentials_invalid_naming_the_key() {
    let (_dir, env) = start(fast_cluster()).await;
    // A merge patch with null removes the key from the Secret.
    secrets(&env)
        .patch(
            "hdi-sp",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"clientId": null}})),
        )
        .await
        .expect("secret patched");
    let _op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({}))).await;
    let p = wait_proxy_reason(&env, "CredentialsInvalid").await;
    assert_proxy_blocked(&p, "CredentialsInvalid", true);
    let message = proxy_condition(&p, "Ready")
        .map(|c| c.2)
        .unwrap_or_default();
    assert!(message.contains("clientId"), "{message}");
    let t = wait_reason(&env, "orders", "CredentialsInvalid").await;
    assert_topic_stalled(&t, "CredentialsInvalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_refusing_the_secret_is_authentication_failed_with_the_aadsts_code() {
    let (_dir, env) = start(fast_cluster()).await;
    secrets(&env)
        .patch(
            "hdi-sp",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"stringData": {"clientSecret": "not-the-secret"}})),
        )
        .await
        .expect("secret patched");
    let op = spawn_operator(&env, &[]);
    let p = wait_proxy_reason(&env, "AuthenticationFailed").await;
    assert_proxy_blocked(&p, "AuthenticationFailed", true);
    let message = proxy_condition(&p, "Ready")
        .map(|c| c.2)
        .unwrap_or_default();
    assert!(message.contains("AADSTS7000215"), "{message}");
    assert_no_secrets(&op.logs(), &["not-the-secret"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_answering_403_is_forbidden() {
    let (_dir, env) = start(ClusterSettings {
        app_in_group: false,
        ..fast_cluster()
    })
    .await;
    let _op = spawn_operator(&env, &[]);
    let p = wait_proxy_reason(&env, "Forbidden").await;
    assert_proxy_blocked(&p, "Forbidden", true);
    let message = proxy_condition(&p, "Ready")
        .map(|c| c.2)
        .unwrap_or_default();
    assert!(message.contains("security group"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_unreachable_and_the_ca_bundle_key_defaults_to_ca_crt() {
    let (_dir, env) = start(fast_cluster()).await;
    // Without the CA bundle the emulator's certificate is not trusted: a TLS error, which time
    // does not fix but which is a connection failure — Unreachable, Reconciling, not Stalled.
    patch_proxy(
        &env,
        serde_json::json!({"spec": {"caBundleSecretRef": null}}),
    )
    .await;
    let _op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({"partitions": 1}))).await;
    let p = wait_proxy_reason(&env, "Unreachable").await;
    assert_proxy_blocked(&p, "Unreachable", false);
    // The topic retries: Reconciling, never Stalled.
    let t = wait_reason(&env, "orders", "Retrying").await;
    assert_eq!(
        condition(&t, "Reconciling").map(|c| c.0).as_deref(),
        Some("True")
    );
    assert_eq!(
        condition(&t, "Stalled").map(|c| c.0).as_deref(),
        Some("False")
    );

    // The example's CA Secret holds only `ca.crt`: naming the Secret without a key is enough.
    let ca = secrets(&env).get("hdi-ca").await.expect("CA secret");
    let keys: Vec<String> = ca
        .data
        .as_ref()
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(keys, vec!["ca.crt".to_string()]);
    patch_proxy(
        &env,
        serde_json::json!({"spec": {"caBundleSecretRef": {"name": "hdi-ca"}}}),
    )
    .await;
    let p = proxies(&env).get(PROXY_NAME).await.expect("proxy");
    assert_eq!(
        p.spec.ca_bundle_secret_ref.and_then(|r| r.key),
        None,
        "no key stored (no CRD default)"
    );
    wait_proxy_reason(&env, "Connected").await;
    wait_ready(&env, "orders").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_5xx_is_unreachable_while_a_ready_topic_stays_ready() {
    let (_dir, env) = start(fast_cluster()).await;
    let _op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({"partitions": 1}))).await;
    wait_ready(&env, "orders").await;
    wait_proxy_reason(&env, "Connected").await;

    env.hdi.control().set_faults(Faults {
        rules: vec![FaultRule {
            operations: ["status", "brokers", "list", "describe"]
                .map(String::from)
                .to_vec(),
            status: 503,
            ..Default::default()
        }],
        ..Default::default()
    });
    let p = wait_proxy_reason(&env, "Unreachable").await;
    assert_proxy_blocked(&p, "Unreachable", false);
    // The topic that was Ready stays Ready and shows the retry on Reconciling.
    let t = wait_topic(
        &env,
        "orders",
        Duration::from_secs(40),
        "Reconciling=True Retrying",
        |t| condition(t, "Reconciling").is_some_and(|c| c.0 == "True" && c.1 == "Retrying"),
    )
    .await;
    assert_eq!(ready(&t).map(|r| r.0).as_deref(), Some("True"));
    assert_eq!(
        condition(&t, "Stalled").map(|c| c.0).as_deref(),
        Some("False")
    );

    env.hdi.control().clear_faults();
    wait_proxy_reason(&env, "Connected").await;
    wait_topic(&env, "orders", Duration::from_secs(40), "retry over", |t| {
        condition(t, "Reconciling").is_some_and(|c| c.0 == "False")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_proxy_spec_that_bypassed_admission_is_invalid_spec() {
    let (_dir, env) = start(fast_cluster()).await;
    // As on a cluster whose CRD predates the rule: drop the "exactly one credential kind" rule.
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let name = "kafkarestproxies.kafka.hdinsight.dev";
    let crd = crds.get(name).await.expect("the KafkaRestProxy CRD");
    let mut value = serde_json::to_value(&crd).expect("CRD as JSON");
    let credentials = value
        .pointer_mut(
            "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/credentials",
        )
        .and_then(|c| c.as_object_mut())
        .expect("spec.credentials in the schema");
    assert!(credentials.remove("x-kubernetes-validations").is_some());
    let crd: CustomResourceDefinition = serde_json::from_value(value).expect("CRD");
    crds.replace(name, &PostParams::default(), &crd)
        .await
        .expect("CRD replaced");
    patch_proxy(
        &env,
        serde_json::json!({"spec": {"credentials": {"workloadIdentity": {
            "serviceAccountName": "kafka-writer",
            "tenantId": sandbox::env::TENANT_ID,
            "clientId": sandbox::env::CLIENT_ID,
        }}}}),
    )
    .await;
    let _op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({}))).await;
    let p = wait_proxy_reason(&env, "InvalidSpec").await;
    assert_proxy_blocked(&p, "InvalidSpec", true);
    let t = wait_reason(&env, "orders", "InvalidSpec").await;
    assert_topic_stalled(&t, "InvalidSpec");
    let message = ready(&t).map(|r| r.2).unwrap_or_default();
    assert!(
        message.starts_with(&format!("KafkaRestProxy {NAMESPACE}/{PROXY_NAME}:")),
        "{message}"
    );
    assert_eq!(creates(&env, "orders"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_and_scopes_off_the_allowlists_are_endpoint_and_scope_not_allowed() {
    let (_dir, env) = start(fast_cluster()).await;
    // The emulator listens on 127.0.0.1; this operator allows only 127.0.0.2.
    let mut op = spawn_operator(&env, &[("HDI_ALLOWED_ENDPOINT_HOSTS", "127.0.0.2")]);
    let p = wait_proxy_reason(&env, "EndpointNotAllowed").await;
    assert_proxy_blocked(&p, "EndpointNotAllowed", true);
    op.kill();
    drop(op);

    let _op = spawn_operator(&env, &[]);
    wait_proxy_reason(&env, "Connected").await;
    patch_proxy(
        &env,
        serde_json::json!({"spec": {"scope": "https://storage.azure.com/.default"}}),
    )
    .await;
    let p = wait_proxy_reason(&env, "ScopeNotAllowed").await;
    assert_proxy_blocked(&p, "ScopeNotAllowed", true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_of_a_missing_topic_is_stalled_and_becomes_ready_when_it_appears() {
    let (_dir, env) = start(fast_cluster()).await;
    let _op = spawn_operator(&env, &[]);
    create(
        &env,
        &topic("audit", serde_json::json!({"managementPolicy": "Observe"})),
    )
    .await;
    let t = wait_reason(&env, "audit", "TopicNotFound").await;
    assert_topic_stalled(&t, "TopicNotFound");
    assert_eq!(
        condition(&t, "Reconciling").map(|c| c.0).as_deref(),
        Some("False")
    );

    // Someone creates it on the cluster; nothing changes on the KafkaTopic, yet it turns Ready.
    env.hdi
        .control()
        .create_topic_out_of_band("audit", 3, 2)
        .expect("created out of band");
    let t = wait_ready(&env, "audit").await;
    assert_eq!(ready(&t).map(|r| r.1).as_deref(), Some("Adopted"));
    assert_eq!(
        condition(&t, "Stalled").map(|c| c.0).as_deref(),
        Some("False")
    );
    assert_eq!(t.status.as_ref().and_then(|s| s.partitions), Some(3));
    assert_eq!(creates(&env, "audit"), 0, "Observe never creates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_state_is_applied_for_our_create_and_unverifiable_for_an_adopted_topic() {
    let (_dir, env) = start(fast_cluster()).await;
    env.hdi
        .control()
        .create_topic_out_of_band("legacy", 2, 3)
        .expect("created out of band");
    let _op = spawn_operator(&env, &[]);
    let config = serde_json::json!({"retention.ms": 86400000, "cleanup.policy": "delete"});
    create(
        &env,
        &topic(
            "orders",
            serde_json::json!({"partitions": 2, "config": config}),
        ),
    )
    .await;
    create(
        &env,
        &topic("legacy", serde_json::json!({"config": config})),
    )
    .await;
    create(&env, &topic("plain", serde_json::json!({"partitions": 1}))).await;

    let orders = wait_ready(&env, "orders").await;
    assert_eq!(ready(&orders).map(|r| r.1).as_deref(), Some("Created"));
    assert_eq!(
        orders.status.as_ref().and_then(|s| s.config_state),
        Some(ConfigState::Applied)
    );
    // The config really went with the create.
    let props = env
        .hdi
        .control()
        .topic_properties("orders")
        .unwrap_or_default();
    let retention = props.get("retention.ms");
    assert!(
        retention.is_some_and(|v| v.as_i64() == Some(86400000) || v.as_str() == Some("86400000")),
        "{props:?}"
    );
    let drifted = condition(&orders, "Drifted").expect("Drifted");
    assert_eq!(drifted.0, "False");
    assert!(
        drifted.2.contains("spec.config cannot be compared"),
        "{drifted:?}"
    );
    assert!(!drifted.2.contains("matches the spec"), "{drifted:?}");

    let legacy = wait_ready(&env, "legacy").await;
    assert_eq!(ready(&legacy).map(|r| r.1).as_deref(), Some("Adopted"));
    assert_eq!(
        legacy.status.as_ref().and_then(|s| s.config_state),
        Some(ConfigState::Unverifiable)
    );
    assert!(
        condition(&legacy, "Drifted").is_some_and(|c| c.2.contains("cannot be compared")),
        "{:?}",
        condition(&legacy, "Drifted")
    );

    let plain = wait_ready(&env, "plain").await;
    assert_eq!(plain.status.as_ref().and_then(|s| s.config_state), None);
    // Shown as a field a user reads: absent, not an empty string.
    let raw = serde_json::to_value(&plain.status).expect("status as JSON");
    assert!(raw.get("configState").is_none(), "{raw}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_delete_and_reapply_keeps_the_topic_and_adopts_it_unverifiable() {
    let (_dir, env) = start(fast_cluster()).await;
    let _op = spawn_operator(&env, &[]);
    let spec = |retention: i64| serde_json::json!({"partitions": 2, "config": {"retention.ms": retention}});
    create(&env, &topic("orders", spec(604800000))).await;
    let t = wait_ready(&env, "orders").await;
    assert_eq!(
        t.status.as_ref().and_then(|s| s.config_state),
        Some(ConfigState::Applied)
    );
    assert_eq!(creates(&env, "orders"), 1);
    env.hdi.control().produce("orders", 0, 5);

    // The config is changed on the cluster with Kafka's tools (not through the proxy, which
    // cannot), and the manifest follows: delete the KafkaTopic, apply it with the new value.
    topics(&env)
        .delete("orders", &DeleteParams::default())
        .await
        .expect("deleted");
    let deadline = Instant::now() + Duration::from_secs(20);
    while topics(&env)
        .get_opt("orders")
        .await
        .ok()
        .flatten()
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "no finalizer may hold the object"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        env.hdi
            .control()
            .topic_names()
            .contains(&"orders".to_string()),
        "deleting the KafkaTopic keeps the topic"
    );
    create(&env, &topic("orders", spec(86400000))).await;
    let t = wait_ready(&env, "orders").await;
    assert_eq!(ready(&t).map(|r| r.1).as_deref(), Some("Adopted"));
    assert_eq!(
        t.status.as_ref().and_then(|s| s.config_state),
        Some(ConfigState::Unverifiable)
    );
    assert_eq!(creates(&env, "orders"), 1, "adopted: no second create");
    // Still the same topic: its data is there.
    assert!(
        env.hdi
            .control()
            .export_topics()
            .to_string()
            .contains("\"latest\":5"),
        "the topic's records survived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_topic_with_uneven_replicas_is_not_drifted() {
    let (_dir, env) = start(fast_cluster()).await;
    // Partition 1 lost a replica (a reassignment on the cluster): replica counts 3 and 2. The
    // status reports the smallest, 2; import must write the same.
    env.hdi
        .control()
        .import_topics(serde_json::json!([{
            "name": "payments",
            "partitions": [
                {"replicas": [1001, 1002, 1003], "earliest": 0, "latest": 0},
                {"replicas": [1002, 1003], "earliest": 0, "latest": 0},
            ],
        }]))
        .expect("topics imported into the emulator");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hdinsight-topic-operator"))
        .args([
            "import",
            "--proxy",
            PROXY_NAME,
            "--proxy-namespace",
            NAMESPACE,
        ])
        .args(["--namespace", NAMESPACE])
        .env("KUBECONFIG", &env.kubeconfig)
        .output()
        .expect("import runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<KafkaTopic> = serde_saphyr::from_multiple(&text).expect("KafkaTopic manifests");
    assert_eq!(docs.len(), 1, "{text}");
    let manifest = &docs[0];
    assert_eq!(manifest.spec.replication_factor, Some(2), "{text}");
    assert_eq!(manifest.spec.partitions, Some(2), "{text}");

    let _op = spawn_operator(&env, &[]);
    topics(&env)
        .create(&PostParams::default(), manifest)
        .await
        .expect("the imported manifest is accepted");
    let name = manifest.metadata.name.clone().unwrap_or_default();
    let t = wait_ready(&env, &name).await;
    assert_eq!(ready(&t).map(|r| r.1).as_deref(), Some("Adopted"));
    assert_eq!(
        t.status.as_ref().and_then(|s| s.replication_factor),
        Some(2)
    );
    assert_eq!(
        condition(&t, "Drifted").map(|c| c.0).as_deref(),
        Some("False"),
        "{:?}",
        condition(&t, "Drifted")
    );
}
