//! Start-up: an operator started where the CRDs are not installed says so, stays not-ready,
//! starts once they appear, and stops within seconds of SIGTERM in every phase of its life
//! (waiting for the CRDs, waiting for the Lease, running).

mod common;

use std::time::{Duration, Instant};

use common::*;
use kube::api::{Api, PostParams};
use sandbox::env::{CLIENT_SECRET, ClusterSettings, Env};

/// How long the operator may take to exit after SIGTERM.
const EXIT_WITHIN: Duration = Duration::from_secs(15);

/// Both emulators and the chart's RBAC, but no CRDs, no namespace, no proxy.
async fn start_without_crds() -> (tempfile::TempDir, Env) {
    start_emulators(ClusterSettings::default(), rendered_chart(), false).await
}

async fn wait_log(op: &Operator, what: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = op.logs();
        if logs.contains(needle) {
            return logs;
        }
        assert!(Instant::now() < deadline, "{what} not logged: {logs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends SIGTERM and asserts a clean exit within [`EXIT_WITHIN`].
fn assert_stops_promptly(op: &mut Operator, phase: &str) {
    let sent = Instant::now();
    let code = op.terminate();
    let took = sent.elapsed();
    assert_eq!(code, Some(0), "{phase}: exit status; logs: {}", op.logs());
    assert!(
        took < EXIT_WITHIN,
        "{phase}: the operator took {took:?} to exit after SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_crds_it_says_what_is_missing_stays_unready_and_stops_on_sigterm() {
    let (_dir, env) = start_without_crds().await;
    let mut op = spawn_operator(&env, &[]);
    let logs = wait_log(&op, "the missing CRD", "kafkatopics.kafka.hdinsight.dev").await;
    let line = logs
        .lines()
        .find(|l| l.contains("kafkatopics.kafka.hdinsight.dev"))
        .unwrap_or_default();
    assert!(line.contains("ERROR"), "logged as an error: {line}");
    assert!(
        line.contains("kafkarestproxies.kafka.hdinsight.dev"),
        "both CRDs named: {line}"
    );
    assert!(
        line.contains("kubectl apply") && line.contains("crds/") && line.contains("Helm"),
        "says how to install them: {line}"
    );
    let health = logged_addr(&op, "health_addr").expect("health address logged");
    // Still not ready a few checks later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(http_get(&health, "/readyz").await.0, 503);
    assert_eq!(http_get(&health, "/livez").await.0, 200);
    assert_stops_promptly(&mut op, "waiting for the CRDs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_that_arrive_later_start_it_and_it_stops_promptly_while_running() {
    let (_dir, env) = start_without_crds().await;
    let mut op = spawn_operator(&env, &[]);
    wait_log(&op, "the missing CRD", "kafkatopics.kafka.hdinsight.dev").await;
    env.install(CLIENT_SECRET)
        .await
        .expect("CRDs and proxy installed");
    create(&env, &topic("late", serde_json::json!({"partitions": 1}))).await;
    wait_ready(&env, "late").await;
    wait_operator_ready(&op).await;
    assert!(op.logs().contains("the CRDs are installed now"));
    assert_stops_promptly(&mut op, "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_waiting_for_the_lease_stops_promptly() {
    use k8s_openapi::api::coordination::v1::Lease;
    let (_dir, env) = start(ClusterSettings::default()).await;
    // Another replica holds the Lease, renewed just now, for an hour.
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), RELEASE_NAMESPACE);
    let now = k8s_openapi::jiff::Timestamp::now();
    let lease: Lease = serde_json::from_value(serde_json::json!({
        "metadata": {"name": lease_name(), "namespace": RELEASE_NAMESPACE},
        "spec": {
            "holderIdentity": "another-replica",
            "leaseDurationSeconds": 3600,
            "acquireTime": now.to_string(),
            "renewTime": now.to_string(),
        }
    }))
    .expect("a Lease");
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("Lease created");
    let mut op = spawn_operator(&env, &[("HDI_LEADER_ELECTION", "true")]);
    wait_log(&op, "waiting for leadership", "waiting for leadership").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_stops_promptly(&mut op, "waiting for the Lease");
}

/// Every watched namespace adds a topic controller, a proxy controller and a Secret watch, and
/// the topic controllers and the readiness probe all wait for the same caches. With fifteen
/// namespaces (47 tasks) the operator still becomes ready and a topic in the last namespace
/// still becomes Ready: kube-runtime's `Store::wait_until_ready` wakes only the task that polled
/// it last, and waiting on it from many tasks once left every topic controller asleep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fifteen_watched_namespaces_every_controller_starts() {
    let (_dir, env) = start(ClusterSettings::default()).await;
    let mut watched: Vec<String> = (1..=14).map(|i| format!("team-{i:02}")).collect();
    watched.push(sandbox::env::NAMESPACE.to_string());
    let watched = watched.join(",");
    let mut op = spawn_operator(&env, &[("HDI_WATCH_NAMESPACES", watched.as_str())]);
    create(&env, &topic("many", serde_json::json!({"partitions": 1}))).await;
    wait_ready(&env, "many").await;
    wait_operator_ready(&op).await;
    assert_stops_promptly(&mut op, "running with fifteen namespaces");
}
