//! Throttling without churn: a 429 storm writes each topic's status at most twice (into
//! `Retrying` and out), and a create refused locally by a pending `Retry-After` — never sent —
//! is a plain retry, not an uncertain create.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hdinsight_emulator::{FaultRule, Faults};
use sandbox::env::{ClusterSettings, Env};

fn status_writes(env: &Env) -> u64 {
    env.kube
        .control()
        .stats()
        .writes_to("kafkatopics", Some("status"))
}

fn reconciling(t: &hdinsight_topic_operator::crd::KafkaTopic) -> Option<(String, String)> {
    condition(t, "Reconciling").map(|c| (c.0, c.1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_writes_each_status_at_most_twice() {
    let (_dir, env) = start(ClusterSettings {
        visibility_delay: Duration::from_millis(200),
        ..ClusterSettings::default()
    })
    .await;
    let _op = spawn_operator(&env, &[]);
    let names = apply_many(&env, "storm", 20).await;
    all_ready(&env, &names, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = status_writes(&env);

    // Every list and describe is throttled, with a Retry-After that varies from answer to
    // answer (1 or 2 s): nothing of it may reach a condition message.
    let throttle = |retry: u64, probability: f64| FaultRule {
        retry_after_seconds: Some(retry),
        probability,
        ..FaultRule::status(&["list", "describe"], 429)
    };
    env.hdi.control().set_faults(Faults {
        rules: vec![throttle(1, 0.5), throttle(2, 1.0)],
        ..Default::default()
    });
    // The storm lasts until every topic has been Retrying while Ready and the proxy has
    // answered ten 429s — several failed rounds of the shared list and the describes, each
    // with its own Retry-After (the client sends nothing while one is pending, so a round
    // costs one or two answers, not one per topic) — however fast or slow the machine is.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut retrying: std::collections::HashSet<String> = Default::default();
    let throttled = || {
        let stats = env.hdi.control().stats();
        stats.count_status("list", 429) + stats.count_status("describe", 429)
    };
    while retrying.len() < names.len() || throttled() < 10 {
        assert!(
            Instant::now() < deadline,
            "the storm did not reach every topic: {} of {} seen Retrying, {} 429s served",
            retrying.len(),
            names.len(),
            throttled()
        );
        let list = topics(&env).list(&Default::default()).await.expect("list");
        for t in &list.items {
            if reconciling(t).is_some_and(|r| r.0 == "True" && r.1 == "Retrying")
                && ready(t).is_some_and(|r| r.0 == "True")
            {
                retrying.insert(t.metadata.name.clone().unwrap_or_default());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.hdi.control().clear_faults();

    // Out of Retrying again.
    for name in &names {
        wait_topic(&env, name, Duration::from_secs(40), "Reconciled", |t| {
            reconciling(t).is_some_and(|r| r.0 == "False")
                && ready(t).is_some_and(|r| r.0 == "True")
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = status_writes(&env) - before;
    eprintln!(
        "{writes} status writes for {} topics during the storm",
        names.len()
    );
    assert!(
        writes <= 2 * names.len() as u64,
        "{writes} status writes for {} topics: at most two each (into Retrying and out)",
        names.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_held_back_by_a_pending_retry_after_is_not_uncertain() {
    let (_dir, env) = start(ClusterSettings {
        visibility_delay: Duration::from_millis(200),
        ..ClusterSettings::default()
    })
    .await;
    // A long list freshness: the new topic's reconcile reads the list taken before the
    // Retry-After and goes straight to its create, which the client's gate holds back.
    let _op = spawn_operator(&env, &[("HDI_LIST_FRESHNESS", "120s")]);
    create(&env, &topic("steady", serde_json::json!({"partitions": 1}))).await;
    wait_ready(&env, "steady").await;

    // The next describe (the Ready topic's resync) is answered 503 with a Retry-After longer
    // than a call waits in place: the client refuses every request until then.
    let hdi = env.hdi.control();
    hdi.set_faults(Faults {
        rules: vec![FaultRule {
            retry_after_seconds: Some(20),
            remaining: Some(1),
            ..FaultRule::status(&["describe"], 503)
        }],
        ..Default::default()
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    while hdi.stats().count_status("describe", 503) == 0 {
        assert!(Instant::now() < deadline, "the resync describe came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gate_closed = Instant::now();
    create(&env, &topic("held", serde_json::json!({"partitions": 1}))).await;

    // While the gate is closed: no create leaves, and the topic is never CreateUncertain.
    let mut reasons = Vec::new();
    loop {
        let t = topics(&env).get("held").await.expect("held");
        if let Some(r) = ready(&t) {
            if reasons.last() != Some(&r.1) {
                reasons.push(r.1.clone());
            }
            if r.0 == "True" {
                break;
            }
        }
        if gate_closed.elapsed() < Duration::from_secs(15) {
            assert_eq!(
                hdi.stats().creates_per_topic.get("held").copied(),
                None,
                "nothing is sent while the Retry-After is pending"
            );
        }
        assert!(
            gate_closed.elapsed() < Duration::from_secs(60),
            "held: not Ready; reasons so far {reasons:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !reasons.iter().any(|r| r == "CreateUncertain"),
        "a create that was never sent is not uncertain: {reasons:?}"
    );
    assert!(reasons.iter().any(|r| r == "Retrying"), "{reasons:?}");
    assert_eq!(hdi.stats().creates_per_topic.get("held").copied(), Some(1));
}
