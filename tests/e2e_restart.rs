//! What a Secret rotation and a restart cost with a few hundred Ready topics over three
//! proxies: lists, not a describe per topic, and no status write at all.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use hdinsight_topic_operator::crd::KafkaRestProxy;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use sandbox::env::{CLIENT_ID, ClusterSettings, Env, NAMESPACE, PROXY_NAME};

const PROXIES: [&str; 3] = [PROXY_NAME, "proxy-b", "proxy-c"];
const TOPICS_PER_PROXY: usize = 100;
/// The resync interval the operator runs with here; a description stands in for a describe
/// for 90 % of it (the rest is the resync's jitter). Long enough that readying 300 topics on a
/// loaded machine and the rotation after it fit well inside the first description's lifetime,
/// and that a restart's window is a small share of the interval.
const RESYNC: Duration = Duration::from_secs(300);

fn lifetime() -> Duration {
    RESYNC - RESYNC / 10
}

/// The most describes `n` topics may cost over `elapsed` when each is described once per
/// description lifetime at a random point: twice the expected share, plus a few.
fn resync_share(n: usize, elapsed: Duration) -> u64 {
    (n as f64 * elapsed.as_secs_f64() / lifetime().as_secs_f64() * 2.0).ceil() as u64 + 5
}

async fn add_proxies(env: &Env) {
    let api: Api<KafkaRestProxy> = Api::namespaced(env.client.clone(), NAMESPACE);
    let default = api.get(PROXY_NAME).await.expect("the default proxy");
    for name in &PROXIES[1..] {
        let mut p = KafkaRestProxy::new(name, default.spec.clone());
        p.metadata.namespace = Some(NAMESPACE.into());
        api.create(&PostParams::default(), &p)
            .await
            .expect("proxy created");
    }
}

async fn create_topics(env: &Env) -> Vec<String> {
    let mut names = Vec::new();
    for proxy in PROXIES {
        let mut batch = Vec::new();
        for i in 0..TOPICS_PER_PROXY {
            let name = format!("{proxy}-t{i:03}");
            let t = topic(
                &name,
                serde_json::json!({"partitions": 1, "proxyRef": {"name": proxy}}),
            );
            names.push(name);
            batch.push(async move { create(env, &t).await });
        }
        futures::future::join_all(batch).await;
    }
    names
}

/// Every topic's conditions (type → status, reason, message, lastTransitionTime).
async fn conditions(env: &Env) -> BTreeMap<String, Vec<(String, String, String, String, String)>> {
    topics(env)
        .list(&Default::default())
        .await
        .expect("topics listed")
        .items
        .into_iter()
        .map(|t| {
            let conds = t
                .status
                .as_ref()
                .map(|s| {
                    s.conditions
                        .iter()
                        .map(|c| {
                            (
                                c.type_.clone(),
                                c.status.clone(),
                                c.reason.clone(),
                                c.message.clone(),
                                c.last_transition_time.0.to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (t.metadata.name.unwrap_or_default(), conds)
        })
        .collect()
}

fn status_writes(env: &Env) -> u64 {
    env.kube
        .control()
        .stats()
        .writes_to("kafkatopics", Some("status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_and_restart_cost_lists_not_a_describe_per_topic() {
    let (_dir, env) = start(ClusterSettings {
        visibility_delay: Duration::from_millis(200),
        ..ClusterSettings::default()
    })
    .await;
    add_proxies(&env).await;
    let resync = format!("{}s", RESYNC.as_secs());
    let extra = [("HDI_RESYNC_INTERVAL", resync.as_str())];
    let mut op = spawn_operator(&env, &extra);
    // Every description is younger than this: the first was taken after it.
    let applied = Instant::now();
    let names = create_topics(&env).await;
    let n = names.len();
    all_ready(&env, &names, Duration::from_secs(120)).await;
    // Let the last status writes land.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. A Secret rotation: every topic of the default proxy is reconciled with the new
    //    client. They were described moments ago: each reuses its description.
    let hdi = env.hdi.control();
    let before = hdi.stats();
    let writes_before = status_writes(&env);
    let start = Instant::now();
    assert!(hdi.set_app_secret(CLIENT_ID, "rotated-secret"));
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), NAMESPACE);
    secrets
        .patch(
            "hdi-sp",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"stringData": {"clientSecret": "rotated-secret"}})),
        )
        .await
        .expect("Secret rotated");
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = hdi.stats();
    let elapsed = start.elapsed();
    assert!(
        applied.elapsed() < lifetime(),
        "the rotation window must end before the first description expires"
    );
    let describes = after.count("describe") - before.count("describe");
    assert!(
        after.count("token") > before.count("token"),
        "the rotated Secret was used"
    );
    assert!(
        after.count("list") > before.count("list"),
        "the new client lists"
    );
    assert!(
        describes <= resync_share(n, elapsed),
        "a Secret rotation costs lists, not a describe per topic: {describes} describes for {n} topics in {elapsed:?}"
    );
    assert_eq!(status_writes(&env), writes_before, "no status writes");

    // 2. A restart: the new process lists each proxy at once and describes each Ready topic at
    //    a random point within its resync interval.
    let conditions_before = conditions(&env).await;
    assert_eq!(op.terminate(), Some(0), "{}", op.logs());
    let before = hdi.stats();
    let writes_before = status_writes(&env);
    let start = Instant::now();
    let op = spawn_operator(&env, &extra);
    wait_operator_ready(&op).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = hdi.stats();
    let elapsed = start.elapsed();
    let describes = after.count("describe") - before.count("describe");
    let lists = after.count("list") - before.count("list");
    assert!(
        lists >= PROXIES.len() as u64,
        "each proxy is listed at once after the restart: {lists} lists"
    );
    assert!(
        describes <= resync_share(n, elapsed),
        "a restart spreads its describes over the resync interval: {describes} describes for {n} topics in {elapsed:?} (bound {})",
        resync_share(n, elapsed)
    );
    assert_eq!(
        status_writes(&env),
        writes_before,
        "a restart writes nothing for Ready topics"
    );
    assert_eq!(
        conditions(&env).await,
        conditions_before,
        "no condition changes, not even its lastTransitionTime"
    );
}
