//! Hostile tenants: what a namespace user can write — a KafkaRestProxy pointing at a server they
//! control, a KafkaTopic, the answers of their own proxy — must not crash the operator, reach a
//! host off the allowlists, take another namespace's topic, or read another namespace's Secret.
//!
//! Every scenario runs two tenants: the victim on the sandbox's emulator (127.0.0.1, namespace
//! `kafka`) and the attacker on a second HDInsight emulator at 127.0.0.2 with its own
//! namespace, Secret and KafkaRestProxy. Only loopback addresses are used.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use hdinsight_emulator::{
    AppConfig, EmulatorConfig, FaultRule, Faults, RunningEmulator, Transport,
};
use hdinsight_topic_operator::crd::{KafkaRestProxy, KafkaTopic};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, PostParams};
use sandbox::env::{CLIENT_SECRET, ClusterSettings, Env, create_or_keep};

/// The attacker's namespace.
const ATTACKER_NS: &str = "tenant-b";
const ATTACKER_TENANT: &str = "00000000-0000-0000-0000-0000000000b1";
const ATTACKER_CLIENT: &str = "00000000-0000-0000-0000-0000000000b2";
const ATTACKER_SECRET: &str = "attacker-client-secret";
const ATTACKER_GROUP: &str = "00000000-0000-0000-0000-0000000000b3";

/// The allowlists the tests run with: both loopback emulators, the emulators' scope. The
/// defaults (HDInsight and Entra domains only) would refuse them, as one scenario proves.
fn allow_both() -> Vec<(&'static str, &'static str)> {
    vec![
        ("HDI_ALLOWED_ENDPOINT_HOSTS", "127.0.0.1,127.0.0.2"),
        ("HDI_ALLOWED_AUTHORITY_HOSTS", "127.0.0.1,127.0.0.2"),
    ]
}

fn cluster() -> ClusterSettings {
    ClusterSettings {
        visibility_delay: Duration::from_millis(300),
        out_of_band_delay: Duration::from_millis(500),
        ..Default::default()
    }
}

/// The attacker's HDInsight emulator on 127.0.0.2.
async fn attacker_emulator(dir: &Path) -> RunningEmulator {
    attacker_emulator_with(dir, EmulatorConfig::default()).await
}

/// The attacker's HDInsight emulator on 127.0.0.2, with `base` for everything but the
/// identities.
async fn attacker_emulator_with(dir: &Path, base: EmulatorConfig) -> RunningEmulator {
    let config = EmulatorConfig {
        tenant_id: ATTACKER_TENANT.into(),
        cluster_group_id: ATTACKER_GROUP.into(),
        apps: vec![AppConfig {
            client_id: ATTACKER_CLIENT.into(),
            client_secret: ATTACKER_SECRET.into(),
            groups: vec![ATTACKER_GROUP.into()],
            ..Default::default()
        }],
        visibility_delay_ms: 300,
        ..base
    };
    let addr: SocketAddr = "127.0.0.2:0".parse().expect("loopback address");
    RunningEmulator::start(
        config,
        addr,
        Transport::Tls {
            dir: dir.join("attacker-hdinsight"),
        },
    )
    .await
    .expect("the attacker's emulator starts on 127.0.0.2")
}

/// The attacker's namespace with its Secret, CA Secret and a KafkaRestProxy `evil` pointing at
/// `endpoint` (authority `authority`), whose TLS is signed by `ca_pem`.
async fn install_attacker(
    env: &Env,
    endpoint: &str,
    authority: &str,
    ca_pem: &str,
    extra_spec: serde_json::Value,
) {
    install_attacker_secrets(env, ca_pem).await;
    attacker_proxy(env, "evil", endpoint, authority, extra_spec)
        .await
        .expect("the attacker's KafkaRestProxy is admitted");
}

/// The attacker's namespace, its credentials Secret `sp` and CA Secret `ca`.
async fn install_attacker_secrets(env: &Env, ca_pem: &str) {
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": ATTACKER_NS, "labels": {"team": "b"}}
    }))
    .expect("namespace");
    create_or_keep(&namespaces, &ns).await.expect("namespace");
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), ATTACKER_NS);
    let sp: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "sp", "namespace": ATTACKER_NS},
        "stringData": {"tenantId": ATTACKER_TENANT, "clientId": ATTACKER_CLIENT,
                       "clientSecret": ATTACKER_SECRET}
    }))
    .expect("secret");
    create_or_keep(&secrets, &sp).await.expect("secret");
    let ca: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ca", "namespace": ATTACKER_NS},
        "stringData": {"ca.crt": ca_pem}
    }))
    .expect("ca secret");
    create_or_keep(&secrets, &ca).await.expect("ca secret");
}

/// A KafkaRestProxy `name` in the attacker's namespace using the attacker's Secrets.
async fn attacker_proxy(
    env: &Env,
    name: &str,
    endpoint: &str,
    authority: &str,
    extra_spec: serde_json::Value,
) -> Result<KafkaRestProxy, kube::Error> {
    let mut spec = serde_json::json!({
        "endpoint": endpoint,
        "authority": authority,
        "credentials": {"secretRef": {"name": "sp"}},
        "caBundleSecretRef": {"name": "ca"},
    });
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    let proxy: KafkaRestProxy = serde_json::from_value(serde_json::json!({
        "apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaRestProxy",
        "metadata": {"name": name, "namespace": ATTACKER_NS},
        "spec": spec,
    }))
    .expect("proxy");
    let proxies: Api<KafkaRestProxy> = Api::namespaced(env.client.clone(), ATTACKER_NS);
    proxies.create(&PostParams::default(), &proxy).await
}

/// Polls a KafkaRestProxy of the attacker's namespace until its Ready reason is `reason`.
async fn wait_proxy_reason(env: &Env, name: &str, reason: &str) -> KafkaRestProxy {
    let api: Api<KafkaRestProxy> = Api::namespaced(env.client.clone(), ATTACKER_NS);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = api.get_opt(name).await.ok().flatten();
        let found = p.as_ref().and_then(|p| {
            let s = p.status.as_ref()?;
            hdinsight_topic_operator::crd::find_condition(&s.conditions, "Ready")
                .map(|c| c.reason.clone())
        });
        if found.as_deref() == Some(reason)
            && let Some(p) = p
        {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "proxy {name}: reason {reason} not reached; last: {:?}",
            p.and_then(|p| p.status)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn attacker_topics(env: &Env) -> Api<KafkaTopic> {
    Api::namespaced(env.client.clone(), ATTACKER_NS)
}

/// A KafkaTopic in the attacker's namespace.
fn attacker_topic(name: &str, spec: serde_json::Value) -> KafkaTopic {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": {"name": name, "namespace": ATTACKER_NS},
        "spec": spec,
    }))
    .expect("topic")
}

/// Polls a topic of any namespace until `pred` holds.
async fn wait_in(
    api: &Api<KafkaTopic>,
    name: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&KafkaTopic) -> bool,
) -> KafkaTopic {
    let deadline = Instant::now() + timeout;
    loop {
        let t = api.get_opt(name).await.ok().flatten();
        if let Some(t) = &t
            && pred(t)
        {
            return t.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {what} not reached within {timeout:?}; last status: {:?}",
            t.and_then(|t| t.status)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_alive(op: &mut Operator) {
    assert!(
        matches!(op.child.try_wait(), Ok(None)),
        "the operator process died: {}",
        op.logs()
    );
    assert!(
        !op.logs().contains("panicked"),
        "the operator panicked: {}",
        op.logs()
    );
}

/// The victim's topics: created, Ready.
async fn victim_topics(env: &Env, prefix: &str, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}-{i}");
        create(env, &topic(&name, serde_json::json!({"partitions": 2}))).await;
        names.push(name);
    }
    names
}

// 1. No panic from external input -------------------------------------------------------------

/// A proxy answering `429` with `Retry-After: 18446744073709551615` once ended the process for
/// every tenant (`overflow when adding duration to instant`). Now the wait is cut to an hour,
/// the attacker's topic reports the retry, and the victim's topics go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_retry_after_from_an_attackers_proxy_crashes_nothing() {
    let (dir, env) = start(cluster()).await;
    let evil = attacker_emulator(dir.path()).await;
    evil.control().set_faults(Faults {
        rules: vec![FaultRule {
            status: 429,
            retry_after_seconds: Some(u64::MAX),
            ..FaultRule::status(&[], 429)
        }],
        ..Default::default()
    });
    install_attacker(
        &env,
        &evil.base_url(),
        &evil.base_url(),
        &evil.ca_pem().unwrap_or_default(),
        serde_json::json!({}),
    )
    .await;
    let mut op = spawn_operator(&env, &allow_both());
    let before = victim_topics(&env, "victim", 3).await;
    attacker_topics(&env)
        .create(
            &PostParams::default(),
            &attacker_topic("grab", serde_json::json!({"proxyRef": {"name": "evil"}})),
        )
        .await
        .expect("attacker topic");

    // The attacker's proxy did answer 429 with the huge Retry-After.
    let deadline = Instant::now() + Duration::from_secs(30);
    while evil.control().stats().total_status(429) < 1 {
        assert!(
            Instant::now() < deadline,
            "the attacker's proxy was never called"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let grab = wait_in(
        &attacker_topics(&env),
        "grab",
        Duration::from_secs(30),
        "Retrying",
        |t| condition(t, "Reconciling").is_some_and(|c| c.1 == "Retrying"),
    )
    .await;
    assert_eq!(ready(&grab).map(|r| r.0).as_deref(), Some("False"));
    assert_alive(&mut op);
    let sent_when_throttled = evil.control().stats().total_status(429);

    // The victim's topics are Ready, and a topic created after the attack is served too.
    for name in &before {
        wait_ready(&env, name).await;
    }
    let after = victim_topics(&env, "after", 1).await;
    wait_ready(&env, &after[0]).await;
    assert_alive(&mut op);
    // The Retry-After is honoured (cut to an hour, not ignored): nothing more reached the
    // attacker's proxy while the victim's topics were served.
    assert_eq!(
        evil.control().stats().total_status(429),
        sent_when_throttled,
        "a request went to the attacker's proxy before its (clamped) Retry-After expired"
    );
    assert_no_secrets(&op.logs(), &[CLIENT_SECRET, ATTACKER_SECRET]);
}

/// Durations out of range on the command line or in the environment are refused at start with
/// an error naming the flag; nothing panics.
#[test]
fn duration_flags_out_of_range_are_refused_at_start() {
    let exe = env!("CARGO_BIN_EXE_hdinsight-topic-operator");
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            &["run", "--resync-interval", "99999999999999999999h"],
            &[],
            "--resync-interval",
        ),
        (
            &["run"],
            &[("HDI_RESYNC_INTERVAL", "0s")],
            "--resync-interval",
        ),
        (
            &["run"],
            &[("HDI_LEASE_DURATION", "1e30h")],
            "--lease-duration",
        ),
        (
            &["run", "--visibility-timeout", "100000h"],
            &[],
            "--visibility-timeout",
        ),
    ];
    for (args, env, flag) in cases {
        let out = std::process::Command::new(exe)
            .args(*args)
            .envs(env.iter().copied())
            .env("KUBECONFIG", "/nonexistent")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} {env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?} {env:?}: {stderr}");
    }
}

// 3. Ownership counts only allowed namespaces --------------------------------------------------

/// A KafkaTopic in a namespace the victim's proxy does not allow, created first and naming the
/// victim's topic, neither takes the topic nor is named to its owner; when the owner goes, the
/// next allowed claimant takes over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_from_a_disallowed_namespace_takes_nothing() {
    let (dir, env) = start(cluster()).await;
    let evil = attacker_emulator(dir.path()).await;
    install_attacker(
        &env,
        &evil.base_url(),
        &evil.base_url(),
        &evil.ca_pem().unwrap_or_default(),
        serde_json::json!({}),
    )
    .await;
    // A long resync, so that "at once" below cannot be a periodic requeue.
    let mut extra = allow_both();
    extra.push(("HDI_RESYNC_INTERVAL", "120s"));
    let mut op = spawn_operator(&env, &extra);

    // The attacker claims the victim's topic name on the victim's proxy, first.
    attacker_topics(&env)
        .create(
            &PostParams::default(),
            &attacker_topic(
                "squat",
                serde_json::json!({"topicName": "orders",
                                   "proxyRef": {"name": "default", "namespace": "kafka"}}),
            ),
        )
        .await
        .expect("attacker topic");
    wait_in(
        &attacker_topics(&env),
        "squat",
        Duration::from_secs(30),
        "ProxyNotAllowed",
        |t| ready(t).is_some_and(|r| r.1 == "ProxyNotAllowed"),
    )
    .await;

    // The victim's topic, newer, is the owner: created and Ready, the attacker nowhere named.
    create(&env, &topic("orders", serde_json::json!({"partitions": 3}))).await;
    let orders = wait_ready(&env, "orders").await;
    let shown = serde_json::to_string(&orders.status).unwrap_or_default();
    assert!(
        !shown.contains("tenant-b") && !shown.contains("squat"),
        "{shown}"
    );
    assert!(
        env.hdi
            .control()
            .topic_names()
            .contains(&"orders".to_string()),
        "the victim's topic was created on the victim's cluster"
    );
    let events = events_of(&env, "orders").await;
    assert!(!events.is_empty(), "no Events about orders to check");
    for (_, reason, note) in events {
        assert!(
            !note.contains("tenant-b") && !note.contains("squat"),
            "{reason}: {note}"
        );
    }
    // The attacker learns nothing new either: still ProxyNotAllowed, no owner named.
    let squat = attacker_topics(&env).get("squat").await.expect("squat");
    let (_, reason, message) = ready(&squat).expect("condition");
    assert_eq!(reason, "ProxyNotAllowed");
    assert!(!message.contains("kafka/orders"), "{message}");

    // A second claimant in the allowed namespace is a real conflict, naming the owner.
    create(
        &env,
        &topic("orders-copy", serde_json::json!({"topicName": "orders"})),
    )
    .await;
    let copy = wait_reason(&env, "orders-copy", "ResourceConflict").await;
    assert!(ready(&copy).is_some_and(|r| r.2.contains("kafka/orders")));

    // The owner goes: the next allowed claimant is woken at once (the resync is 120 s and a
    // conflict is requeued after 120 s too), not the older attacker.
    topics(&env)
        .delete("orders", &Default::default())
        .await
        .expect("delete");
    let deleted_at = Instant::now();
    // Within seconds; 60 s leaves room for a loaded machine and is half the 120 s requeue.
    wait_topic(&env, "orders-copy", Duration::from_secs(60), "Ready", |t| {
        ready(t).is_some_and(|r| r.0 == "True")
    })
    .await;
    assert!(deleted_at.elapsed() < Duration::from_secs(60));
    let squat = attacker_topics(&env).get("squat").await.expect("squat");
    assert_eq!(
        ready(&squat).map(|r| r.1).as_deref(),
        Some("ProxyNotAllowed")
    );
    assert_eq!(
        evil.control().stats().count("create"),
        0,
        "nothing about this reached the attacker's cluster"
    );
    assert_alive(&mut op);
}

// 2. Allowlists, secure by default -------------------------------------------------------------

/// The default allowlists (HDInsight and Entra domains) refuse a loopback endpoint: the victim's
/// emulator at 127.0.0.1 receives nothing at all — no token request, no proxy call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_allowlists_refuse_a_loopback_endpoint() {
    let (_dir, env) = start(cluster()).await;
    let mut op = spawn_operator_without(
        &env,
        &[],
        &["HDI_ALLOWED_ENDPOINT_HOSTS", "HDI_ALLOWED_AUTHORITY_HOSTS"],
    );
    create(&env, &topic("orders", serde_json::json!({}))).await;
    let t = wait_reason(&env, "orders", "EndpointNotAllowed").await;
    assert_eq!(
        condition(&t, "Stalled").map(|c| c.0).as_deref(),
        Some("True")
    );
    assert!(
        ready(&t)
            .is_some_and(|r| r.2.contains("127.0.0.1") && r.2.contains("--allowed-endpoint-hosts")),
        "{:?}",
        ready(&t)
    );
    let proxy = proxies(&env).get("default").await.expect("proxy");
    let c = hdinsight_topic_operator::crd::find_condition(
        &proxy.status.as_ref().expect("status").conditions,
        "Ready",
    )
    .cloned()
    .expect("Ready");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "EndpointNotAllowed")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        env.hdi.control().request_log().is_empty(),
        "the off-list host received requests: {:?}",
        env.hdi.control().request_log()
    );
    assert_alive(&mut op);
}

/// With only the victim's emulator on the lists, the attacker's proxies get nothing: an
/// endpoint off the list, an allowed endpoint with an authority off the list (a token request
/// carrying the client secret would go there), a scope off the list, and user information in a
/// URL (refused at admission). The attacker's host logs zero requests and the victim's topics
/// stay Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_off_the_allowlists_get_no_connection() {
    let (dir, env) = start(cluster()).await;
    let evil = attacker_emulator(dir.path()).await;
    let only_victim = [
        ("HDI_ALLOWED_ENDPOINT_HOSTS", "127.0.0.1"),
        ("HDI_ALLOWED_AUTHORITY_HOSTS", "127.0.0.1"),
    ];
    let mut op = spawn_operator(&env, &only_victim);
    let victims = victim_topics(&env, "victim", 2).await;
    install_attacker_secrets(&env, &evil.ca_pem().unwrap_or_default()).await;
    let victim_url = env.hdi.base_url();
    let evil_url = evil.base_url();
    attacker_proxy(
        &env,
        "endpoint-off",
        &evil_url,
        &victim_url,
        serde_json::json!({}),
    )
    .await
    .expect("admitted");
    attacker_proxy(
        &env,
        "authority-off",
        &victim_url,
        &evil_url,
        serde_json::json!({}),
    )
    .await
    .expect("admitted");
    attacker_proxy(
        &env,
        "scope-off",
        &victim_url,
        &victim_url,
        serde_json::json!({"scope": "https://management.azure.com/.default"}),
    )
    .await
    .expect("admitted");
    for (name, endpoint, authority) in [
        (
            "userinfo-endpoint",
            format!("https://user:pass@{}", &victim_url["https://".len()..]),
            victim_url.clone(),
        ),
        (
            "userinfo-authority",
            victim_url.clone(),
            format!("https://x@{}", &evil_url["https://".len()..]),
        ),
    ] {
        match attacker_proxy(&env, name, &endpoint, &authority, serde_json::json!({})).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 422, "{name}: {s:?}");
                assert!(
                    s.message.contains("user information"),
                    "{name}: {}",
                    s.message
                );
            }
            other => panic!("{name}: admitted: {other:?}"),
        }
    }
    for (proxy, reason) in [
        ("endpoint-off", "EndpointNotAllowed"),
        ("authority-off", "EndpointNotAllowed"),
        ("scope-off", "ScopeNotAllowed"),
    ] {
        attacker_topics(&env)
            .create(
                &PostParams::default(),
                &attacker_topic(
                    &format!("via-{proxy}"),
                    serde_json::json!({"proxyRef": {"name": proxy}}),
                ),
            )
            .await
            .expect("topic");
        let p = wait_proxy_reason(&env, proxy, reason).await;
        let stalled = hdinsight_topic_operator::crd::find_condition(
            &p.status.as_ref().expect("status").conditions,
            "Stalled",
        )
        .map(|c| c.status.clone());
        assert_eq!(stalled.as_deref(), Some("True"), "{proxy}");
        wait_in(
            &attacker_topics(&env),
            &format!("via-{proxy}"),
            Duration::from_secs(30),
            reason,
            |t| {
                ready(t).is_some_and(|r| r.1 == reason)
                    && condition(t, "Stalled").is_some_and(|c| c.0 == "True")
            },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        evil.control().request_log().is_empty(),
        "the off-list host received requests: {:?}",
        evil.control().request_log()
    );
    // The victim's emulator served the victim only: the scope-off proxy (allowed host, refused
    // scope) sent it no token request with the attacker's credentials.
    assert!(
        env.hdi
            .control()
            .request_log()
            .iter()
            .all(|r| r.client.as_deref() != Some(ATTACKER_CLIENT)),
        "a request with the attacker's credentials reached the victim's host"
    );
    for name in &victims {
        wait_ready(&env, name).await;
    }
    assert_alive(&mut op);
    assert_no_secrets(&op.logs(), &[CLIENT_SECRET, ATTACKER_SECRET]);
}

// 6. Bounded status ----------------------------------------------------------------------------

/// A proxy that answers with an enormous cluster — hundreds of brokers, a replication factor of
/// 40 — cannot push the status past its budget: brokers and replica lists are capped and
/// flagged, the counts still tell the truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_cluster_answer_keeps_status_bounded() {
    let (dir, env) = start(cluster()).await;
    let evil = attacker_emulator_with(
        dir.path(),
        EmulatorConfig {
            brokers: 300,
            out_of_band_delay_ms: 100,
            ..Default::default()
        },
    )
    .await;
    install_attacker(
        &env,
        &evil.base_url(),
        &evil.base_url(),
        &evil.ca_pem().unwrap_or_default(),
        serde_json::json!({}),
    )
    .await;
    let mut op = spawn_operator(&env, &allow_both());
    let victims = victim_topics(&env, "victim", 2).await;
    // Admission caps replicationFactor at 32, so the attacker's cluster has the topic already
    // (made with its own tools) and the KafkaTopic adopts it.
    evil.control()
        .create_topic_out_of_band("wide", 4, 40)
        .expect("out-of-band topic");
    attacker_topics(&env)
        .create(
            &PostParams::default(),
            &attacker_topic(
                "wide",
                serde_json::json!({"proxyRef": {"name": "evil"}, "managementPolicy": "Observe"}),
            ),
        )
        .await
        .expect("topic");
    let wide = wait_in(
        &attacker_topics(&env),
        "wide",
        Duration::from_secs(30),
        "Ready",
        |t| ready(t).is_some_and(|r| r.0 == "True"),
    )
    .await;
    let status = wide.status.clone().expect("status");
    assert_eq!(
        status.replication_factor,
        Some(40),
        "counts use the full answer"
    );
    assert_eq!(status.partition_details_truncated, Some(true));
    let details = status.partition_details.clone().expect("details shown");
    assert_eq!(details.len(), 4);
    assert!(
        details
            .iter()
            .all(|p| p.replicas.len() == 32 && p.isr.len() == 32)
    );

    let proxy = wait_proxy_reason(&env, "evil", "Connected").await;
    let ps = proxy.status.expect("status");
    assert_eq!(ps.brokers.len(), 100);
    assert_eq!(ps.brokers_truncated, Some(true));
    let size = serde_json::to_vec(&ps).expect("json").len()
        + serde_json::to_vec(&status).expect("json").len();
    assert!(size < 64 * 1024, "status of {size} bytes");

    for name in &victims {
        wait_ready(&env, name).await;
    }
    assert_alive(&mut op);
}

// 4. Secrets only where proxies live -----------------------------------------------------------

/// With `--proxy-namespaces kafka`, a KafkaRestProxy in the attacker's namespace is not served:
/// its topics report ProxyNotFound, its Secret is never used and its (allowed) host receives
/// nothing, while the victim's topics, whose proxy lives in `kafka`, are Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_outside_the_proxy_namespaces_are_not_served() {
    let (dir, env) = start(cluster()).await;
    let evil = attacker_emulator(dir.path()).await;
    install_attacker(
        &env,
        &evil.base_url(),
        &evil.base_url(),
        &evil.ca_pem().unwrap_or_default(),
        serde_json::json!({}),
    )
    .await;
    let mut extra = allow_both();
    extra.push(("HDI_PROXY_NAMESPACES", "kafka"));
    let mut op = spawn_operator(&env, &extra);
    let victims = victim_topics(&env, "victim", 2).await;
    attacker_topics(&env)
        .create(
            &PostParams::default(),
            &attacker_topic("own", serde_json::json!({"proxyRef": {"name": "evil"}})),
        )
        .await
        .expect("topic");
    wait_in(
        &attacker_topics(&env),
        "own",
        Duration::from_secs(30),
        "ProxyNotFound",
        |t| ready(t).is_some_and(|r| r.1 == "ProxyNotFound"),
    )
    .await;
    for name in &victims {
        wait_ready(&env, name).await;
    }
    let evil_proxy: Api<KafkaRestProxy> = Api::namespaced(env.client.clone(), ATTACKER_NS);
    assert_eq!(
        evil_proxy.get("evil").await.expect("proxy").status,
        None,
        "the operator wrote nothing on a proxy outside --proxy-namespaces"
    );
    assert!(
        evil.control().request_log().is_empty(),
        "the attacker's host received requests: {:?}",
        evil.control().request_log()
    );
    assert_alive(&mut op);
}

/// The rendered chart: with `proxyNamespaces`, Secrets are readable only through a Role in each
/// listed namespace; without it, through the ClusterRole as before.
#[test]
fn the_chart_grants_secret_read_only_in_the_proxy_namespaces() {
    if helm().is_none() {
        return;
    }
    let render = render_chart;
    // (kind, namespace, name) of every (Cluster)Role granting `resource`.
    let granting = |docs: &[serde_json::Value], resource: &str| -> Vec<(String, String, String)> {
        docs.iter()
            .filter(|d| matches!(d["kind"].as_str(), Some("Role" | "ClusterRole")))
            .filter(|d| {
                d["rules"].as_array().into_iter().flatten().any(|r| {
                    r["resources"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|x| x.as_str() == Some(resource))
                })
            })
            .map(|d| {
                (
                    d["kind"].as_str().unwrap_or_default().to_string(),
                    d["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    d["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    };
    let confined = render(&["proxyNamespaces={kafka-system,platform}"]);
    let mut secrets = granting(&confined, "secrets");
    secrets.sort();
    assert_eq!(
        secrets,
        vec![
            (
                "Role".into(),
                "kafka-system".into(),
                "hto-hdinsight-topic-operator-proxies".into()
            ),
            (
                "Role".into(),
                "platform".into(),
                "hto-hdinsight-topic-operator-proxies".into()
            ),
        ]
    );
    assert_eq!(granting(&confined, "kafkarestproxies").len(), 2);
    assert!(
        granting(&confined, "kafkatopics")
            .iter()
            .all(|(kind, _, _)| kind == "ClusterRole")
    );
    let open = render(&[]);
    assert_eq!(
        granting(&open, "secrets"),
        vec![(
            "ClusterRole".into(),
            String::new(),
            "hto-hdinsight-topic-operator".into()
        )]
    );
}

/// The chart rendered by `helm template` with `set` values, as YAML documents.
fn render_chart(set: &[&str]) -> Vec<serde_json::Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let helm = common::require::find_tool("helm", Some("HDI_TEST_HELM"))
        .expect("helm (the test checked for it first)");
    let mut cmd = std::process::Command::new(helm);
    cmd.args([
        "template",
        "hto",
        "charts/hdinsight-topic-operator",
        "-n",
        "kafka-system",
    ])
    .current_dir(root);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("helm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    serde_saphyr::from_multiple::<serde_json::Value>(&text)
        .expect("helm renders valid YAML")
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

// 7. Chart: NetworkPolicy and bind addresses ---------------------------------------------------

/// `networkPolicy.enabled` renders one NetworkPolicy for the operator's pods: ingress only to
/// the metrics and health ports, egress only to the API server, DNS and HTTPS; the bind
/// addresses are values.
#[test]
fn the_chart_network_policy_opens_only_what_the_operator_uses() {
    if helm().is_none() {
        return;
    }
    let off = render_chart(&[]);
    assert!(
        !off.iter()
            .any(|d| d["kind"].as_str() == Some("NetworkPolicy"))
    );
    let on = render_chart(&[
        "networkPolicy.enabled=true",
        "networkPolicy.apiServer.cidrs={10.0.0.1/32}",
        "bindAddresses.metrics=127.0.0.1",
    ]);
    let nps: Vec<_> = on
        .iter()
        .filter(|d| d["kind"].as_str() == Some("NetworkPolicy"))
        .collect();
    assert_eq!(nps.len(), 1);
    let spec = &nps[0]["spec"];
    let ports = |rules: &serde_json::Value| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = rules
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["ports"].as_array().cloned().unwrap_or_default())
            .map(|p| {
                let port = match &p["port"] {
                    serde_json::Value::Number(n) => n.to_string(),
                    other => other.as_str().unwrap_or_default().to_string(),
                };
                (port, p["protocol"].as_str().unwrap_or("TCP").to_string())
            })
            .collect();
        out.sort();
        out.dedup();
        out
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        ports(&spec["ingress"]),
        vec![pair("health", "TCP"), pair("metrics", "TCP")]
    );
    assert_eq!(
        ports(&spec["egress"]),
        vec![
            pair("443", "TCP"),
            pair("53", "TCP"),
            pair("53", "UDP"),
            pair("6443", "TCP")
        ]
    );
    let api_rule = &spec["egress"][0];
    assert_eq!(
        api_rule["to"][0]["ipBlock"]["cidr"].as_str(),
        Some("10.0.0.1/32")
    );
    let args: Vec<String> = on
        .iter()
        .filter(|d| d["kind"].as_str() == Some("Deployment"))
        .flat_map(|d| {
            d["spec"]["template"]["spec"]["containers"][0]["args"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    assert!(
        args.contains(&"--metrics-addr=127.0.0.1:8080".to_string()),
        "{args:?}"
    );
    assert!(
        args.contains(&"--health-addr=0.0.0.0:8081".to_string()),
        "{args:?}"
    );
}

/// helm (`HDI_TEST_HELM` or PATH); None after a visible skip (a failure under CI).
fn helm() -> Option<std::path::PathBuf> {
    common::require::require_tool("helm", Some("HDI_TEST_HELM"))
}

// 5. Leader election that fences --------------------------------------------------------------

/// A kubeconfig for `env` that sends `token`: the Kubernetes emulator accepts any token, and
/// its stall fault and write log tell clients apart by it.
fn kubeconfig_with_token(env: &Env, token: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(&env.kubeconfig).expect("kubeconfig");
    let replaced = text.replace("token: \"kube-emulator\"", &format!("token: \"{token}\""));
    assert!(
        replaced.contains(token),
        "the kubeconfig carries no token line"
    );
    let path = env.dir.join(format!("kubeconfig-{token}"));
    std::fs::write(&path, replaced).expect("write kubeconfig");
    path
}

/// The leader's connection to the API server stalls (its Lease renewals never arrive, while
/// everything else it sends still would): it gives up at its renew deadline and aborts, the
/// standby takes over only after the lease ran out by its own clock, and the emulator's write
/// log shows no write of the old leader after the new one acquired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_writes_nothing_after_the_new_one_acquired() {
    use k8s_openapi::api::coordination::v1::Lease;
    // Without RBAC: the emulator then accepts any bearer token, and its stall fault and write
    // log tell the two replicas apart by theirs. Fencing does not depend on authorization; the
    // chart's leader-election permissions are exercised by the e2e two-replica test.
    let (_dir, env) = start_with_chart(cluster(), None).await;
    let a_config = kubeconfig_with_token(&env, "replica-a");
    let b_config = kubeconfig_with_token(&env, "replica-b");
    let replica = |name: &'static str, kubeconfig: &'static str| {
        vec![
            ("HDI_LEADER_ELECTION", "true"),
            ("HDI_LEASE_NAMESPACE", "default"),
            // The fence's margin is a third of the lease (the renew deadline is two thirds):
            // 2 s, for a status write in flight on a loaded machine.
            ("HDI_LEASE_DURATION", "6s"),
            ("POD_NAME", name),
            ("KUBECONFIG", kubeconfig),
        ]
    };
    let a_path: &'static str = Box::leak(a_config.display().to_string().into_boxed_str());
    let b_path: &'static str = Box::leak(b_config.display().to_string().into_boxed_str());
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), "default");
    // The name the harness gives the operator (the chart's Lease name when helm rendered it).
    let lease = lease_name();
    let holder = || async {
        leases
            .get_opt(&lease)
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec?.holder_identity)
            .unwrap_or_default()
    };
    let mut a = spawn_operator(&env, &replica("replica-a", a_path));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !holder().await.starts_with("replica-a") {
        assert!(
            Instant::now() < deadline,
            "replica-a never led: {}",
            a.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut b = spawn_operator(&env, &replica("replica-b", b_path));
    let first = victim_topics(&env, "before", 3).await;
    for name in &first {
        wait_ready(&env, name).await;
    }

    // Partition replica-a from the Lease only: if it did not fence itself, its status writes
    // would still land.
    env.kube.control().stall_client("replica-a", &["leases"]);
    let stalled_at = Instant::now();
    // Work arrives all through the handover, so the old leader has something to write.
    let mut during = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !holder().await.starts_with("replica-b") {
        assert!(
            Instant::now() < deadline,
            "replica-b never took over: {}",
            b.logs()
        );
        let name = format!("during-{}", during.len());
        create(&env, &topic(&name, serde_json::json!({}))).await;
        during.push(name);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let handover = stalled_at.elapsed();
    // The old leader is gone: it exited at its renew deadline (4 s of the 6 s lease).
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Ok(Some(status)) = a.child.try_wait() {
            break status.code();
        }
        assert!(
            Instant::now() < deadline,
            "replica-a still runs: {}",
            a.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, Some(2), "{}", a.logs());
    assert!(a.logs().contains("leadership lost"), "{}", a.logs());

    // The topics that came during the handover are served by the new leader.
    for name in &during {
        wait_ready(&env, name).await;
    }
    let writes = env.kube.control().stats().applied_writes;
    let acquired = writes
        .iter()
        .find(|w| w.client == "replica-b" && w.resource == "leases")
        .map(|w| w.at)
        .expect("replica-b's Lease write is logged");
    // The standby waited out a whole lease (6 s) by its own clock after the last renewal it
    // saw: measured from replica-a's last applied Lease write, not from when the stall began
    // (that renewal may have landed up to a renew period before it).
    let last_renewal = writes
        .iter()
        .filter(|w| w.client == "replica-a" && w.resource == "leases" && w.at < acquired)
        .map(|w| w.at)
        .max()
        .expect("replica-a renewed its Lease before the stall");
    let waited = acquired.duration_since(last_renewal).unwrap_or_default();
    assert!(
        waited >= Duration::from_secs(6),
        "took over {waited:?} after the last renewal (stall began {handover:?} before)"
    );
    let late: Vec<_> = writes
        .iter()
        .filter(|w| w.client == "replica-a" && w.at >= acquired)
        .collect();
    assert!(
        late.is_empty(),
        "the old leader wrote after the new one acquired: {late:?}"
    );
    assert!(
        writes
            .iter()
            .any(|w| w.client == "replica-a" && w.resource == "kafkatopics/status"),
        "replica-a did the work while it led"
    );
    env.kube.control().clear_faults();
    assert!(
        matches!(b.child.try_wait(), Ok(None)),
        "the new leader runs on: {}",
        b.logs()
    );
}
