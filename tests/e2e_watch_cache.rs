//! End to end: the operator binary behind a watch cache like a loaded kube-apiserver's. Its
//! informers see every write (its own status writes included) a few hundred milliseconds late,
//! and the watch history expires within a second, so a watch resumed after a pause is answered
//! 410 Expired and must relist. Whatever the lag, a user must see every topic Ready, each
//! created once at the proxy, and no more status writes than without the lag.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use kube::api::{Patch, PatchParams};
use sandbox::env::{ClusterSettings, Env};

fn cluster() -> ClusterSettings {
    ClusterSettings {
        visibility_delay: Duration::from_millis(500),
        out_of_band_delay: Duration::from_millis(1000),
        ..Default::default()
    }
}

/// Every topic got exactly one create request at the proxy, and no other topic got any.
fn assert_created_once(env: &Env, names: &[String]) {
    let creates: BTreeMap<String, u64> = env.hdi.control().stats().creates_per_topic;
    let want: BTreeMap<String, u64> = names.iter().map(|n| (n.clone(), 1)).collect();
    assert_eq!(creates, want, "one create per topic");
}

fn status_writes(env: &Env) -> u64 {
    env.kube
        .control()
        .stats()
        .writes_to("kafkatopics", Some("status"))
}

fn kube_requests(env: &Env, verb: &str) -> u64 {
    env.kube
        .control()
        .stats()
        .requests
        .get(verb)
        .copied()
        .unwrap_or(0)
}

/// At most three status writes per topic, the target in `docs/benchmarks.md`: one
/// recording the create, one reporting it Ready, and one more when a poll finds the topic not
/// yet listed. Two in the usual case (2.0 per topic measured there); a reconcile
/// that meets the lag cannot cost a fourth.
fn assert_status_writes(writes: u64, topics: usize) {
    assert!(
        writes <= 3 * topics as u64,
        "{writes} status writes for {topics} topics"
    );
}

/// The level of each log line (the second word once colours are removed).
fn error_lines(logs: &str) -> Vec<String> {
    logs.lines()
        .map(|l| {
            let mut plain = String::new();
            let mut escape = false;
            for c in l.chars() {
                match c {
                    '\u{1b}' => escape = true,
                    'm' if escape => escape = false,
                    _ if escape => {}
                    c => plain.push(c),
                }
            }
            plain
        })
        .filter(|l| l.split_whitespace().nth(1) == Some("ERROR"))
        .collect()
}

/// With nothing changing, two resync periods (3 s each) write no status at all.
async fn assert_steady(env: &Env) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = status_writes(env);
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        status_writes(env),
        before,
        "a resync that finds nothing new writes nothing"
    );
}

/// The operator's informers lag every write by 400 ms, its own status writes included, while
/// its reads are current: a reconcile triggered in between sees an object older than the one
/// it wrote. Topics still become Ready once, with at most three status writes each (the
/// documented target; two in the usual case) and none in a steady state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_become_ready_once_behind_a_lagging_watch_cache() {
    let (_dir, env) = start(cluster()).await;
    env.kube
        .control()
        .set_watch_delay(Duration::from_millis(400));
    let op = spawn_operator(&env, &[]);
    wait_operator_ready(&op).await;
    let names = apply_many(&env, "lag", 12).await;
    all_ready(&env, &names, Duration::from_secs(60)).await;
    assert_created_once(&env, &names);
    let writes = status_writes(&env);
    assert_status_writes(writes, names.len());

    // A spec change under the same lag: one more round, not a storm.
    let patch = serde_json::json!({"metadata": {"labels": {"team": "payments"}}});
    topics(&env)
        .patch(&names[0], &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("labelled");
    assert_steady(&env).await;
    assert_created_once(&env, &names);
    let errors = error_lines(&op.logs());
    assert!(errors.is_empty(), "errors logged: {errors:#?}");
}

/// The watch history expires after 800 ms. The operator is paused while topics are created
/// and its watches are cut; by the time it resumes, the creates have left the history, so its
/// watch resumes into 410 Expired and it must relist to find them. They are then created once
/// and become Ready as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_created_while_the_history_expired_are_found_by_a_relist() {
    let (_dir, env) = start(cluster()).await;
    env.kube
        .control()
        .set_history_max_age(Some(Duration::from_millis(800)));
    let op = spawn_operator(&env, &[]);
    wait_operator_ready(&op).await;
    let first = apply_many(&env, "early", 3).await;
    all_ready(&env, &first, Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // In a steady state the operator does not list on its own.
    let lists_before = kube_requests(&env, "list");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(kube_requests(&env, "list"), lists_before);

    let expired_before = env.kube.control().stats().watches_expired;
    let dropped_before = env.kube.control().stats().watches_dropped;
    // Frozen (SIGSTOP) like a long pause or a partition: its watches fall far behind.
    let pause = {
        let env_kube = env.kube.control();
        let pid = op.child.id();
        tokio::task::spawn_blocking(move || {
            let pid = pid.to_string();
            let stopped = Command::new("kill").args(["-STOP", &pid]).status();
            assert!(stopped.is_ok_and(|s| s.success()), "the operator is paused");
            // The open watches end while it cannot read them.
            env_kube.drop_watches();
            std::thread::sleep(Duration::from_millis(2500));
            let resumed = Command::new("kill").args(["-CONT", &pid]).status();
            assert!(resumed.is_ok_and(|s| s.success()), "the operator resumes");
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = apply_many(&env, "late", 5).await;
    pause.await.expect("the pause ends");

    let mut names = first.clone();
    names.extend(later.iter().cloned());
    all_ready(&env, &names, Duration::from_secs(60)).await;
    // The fault happened as staged: open watches were cut during the pause, a resumed watch
    // was answered 410 Expired, and the operator relisted.
    let stats = env.kube.control().stats();
    assert!(
        stats.watches_dropped > dropped_before,
        "no open watch was cut during the pause"
    );
    assert!(
        stats.watches_expired > expired_before,
        "no resumed watch was answered 410 Expired"
    );
    assert!(
        kube_requests(&env, "list") > lists_before,
        "the resumed watch was answered 410 and the operator relisted"
    );
    assert_created_once(&env, &names);
    let writes = status_writes(&env);
    assert_status_writes(writes, names.len());
    assert_steady(&env).await;
}

/// Both at once, during a burst of ten waves: events arrive 300 ms late and are forgotten
/// after 100 ms. Each wave's watches are cut 150 ms after its writes, while their events are
/// still on their way but already forgotten, so the resumed watch is answered 410 Expired and
/// the operator relists, again and again. (The cut is staged inside that window rather than
/// left to chance: a cut that finds nothing in flight resumes cleanly and tests nothing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_behind_a_lagging_forgetful_watch_cache() {
    let (_dir, env) = start(cluster()).await;
    let kube = env.kube.control();
    kube.set_watch_delay(Duration::from_millis(300));
    kube.set_history_max_age(Some(Duration::from_millis(100)));
    let op = spawn_operator(&env, &[]);
    wait_operator_ready(&op).await;
    let before = kube.stats();
    let watches_before = before.watches_opened;
    let lists_before = kube_requests(&env, "list");
    let mut names = Vec::new();
    for wave in 0..10 {
        names.extend(apply_many(&env, &format!("burst{wave}"), 3).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
        kube.drop_watches();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    all_ready(&env, &names, Duration::from_secs(90)).await;
    let after = kube.stats();
    assert!(after.watches_opened >= watches_before + 10);
    assert!(
        after.watches_dropped >= before.watches_dropped + 10,
        "the cuts ended {} open watches",
        after.watches_dropped - before.watches_dropped
    );
    assert!(
        after.watches_expired > before.watches_expired,
        "no resumed watch was answered 410 Expired"
    );
    assert!(
        kube_requests(&env, "list") > lists_before,
        "resumed watches were answered 410 and the operator relisted"
    );
    assert_created_once(&env, &names);
    let writes = status_writes(&env);
    assert_status_writes(writes, names.len());
    assert_steady(&env).await;
    drop(op);
}

/// A restarted operator reads every cache anew. Topics are judged only once the proxy and
/// Secret caches have their first full list, as controllers wait for their informers to sync:
/// otherwise a topic reconciled first was reported `ProxyNotFound` (Ready=False) for a moment
/// and written back, two needless status writes and a flapping Ready per topic and restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_nothing_to_do_writes_no_status() {
    let (_dir, env) = start(cluster()).await;
    let mut op = spawn_operator(&env, &[]);
    wait_operator_ready(&op).await;
    let names = apply_many(&env, "restart", 20).await;
    all_ready(&env, &names, Duration::from_secs(60)).await;
    for round in 0..4 {
        op.kill();
        let before = status_writes(&env);
        op = spawn_operator(&env, &[]);
        let (_, metrics) = wait_operator_ready(&op).await;
        // Every topic is reconciled once the caches are synced: wait until the new process
        // has finished a reconcile per topic (each counted after its status write, if any).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let done = metric(&metrics, "reconciles_total", "kind=\"KafkaTopic\"").await;
            if done >= names.len() as f64 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "restart {round}: only {done} reconciles of {} topics",
                names.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            status_writes(&env) - before,
            0,
            "restart {round} rewrote statuses; operator log:\n{}",
            op.logs()
                .lines()
                .filter(|l| l.contains("blocked"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    all_ready(&env, &names, Duration::from_secs(10)).await;
    assert_created_once(&env, &names);
}
