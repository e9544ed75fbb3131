//! The bad day: faults injected through both emulators' control APIs while the operator binary
//! works. Every scenario ends with every topic Ready and checks the invariants: no topic
//! created twice, no retry storm, no request before a `Retry-After` expired, no secret or token
//! in the operator's trace-level logs, the process alive and its memory bounded.
//!
//! Timings are shortened (seconds instead of minutes); `docs/reliability.md` lists what each
//! scenario proves.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use hdinsight_emulator::{FaultBody, FaultRule, Faults, LoggedRequest};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use sandbox::env::{CLIENT_ID, CLIENT_SECRET, ClusterSettings, Env, NAMESPACE, PROXY_NAME};

fn cluster() -> ClusterSettings {
    ClusterSettings {
        visibility_delay: Duration::from_millis(500),
        out_of_band_delay: Duration::from_millis(1000),
        ..Default::default()
    }
}

/// Successful creates per topic path, from the emulator's request log.
fn successful_creates(log: &[LoggedRequest]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in log {
        if r.operation == "create" && (200..300).contains(&r.status) {
            *m.entry(r.path.clone()).or_insert(0) += 1;
        }
    }
    m
}

fn assert_invariants(env: &Env, op: &mut Operator, topics: usize, max_calls_per_topic: f64) {
    let log = env.hdi.control().request_log();
    for (path, n) in successful_creates(&log) {
        assert_eq!(n, 1, "{path} was created {n} times");
    }
    let proxy_calls = log.iter().filter(|r| r.operation != "token").count();
    assert!(
        (proxy_calls as f64) <= max_calls_per_topic * topics as f64 + 50.0,
        "retry storm: {proxy_calls} proxy calls for {topics} topics: {:?}",
        log.iter().filter(|r| r.operation != "token").fold(
            std::collections::BTreeMap::<(String, u16), usize>::new(),
            |mut m, r| {
                *m.entry((r.operation.clone(), r.status)).or_default() += 1;
                m
            }
        )
    );
    assert!(
        op.child.try_wait().ok().flatten().is_none(),
        "the operator exited:\n{}",
        op.logs()
    );
    assert_no_secrets(&op.logs(), &[CLIENT_SECRET]);
    let rss_mib = peak_rss_mib(op.child.id());
    assert!(rss_mib < 300.0, "operator peak RSS {rss_mib} MiB");
}

/// The peak resident memory of a process (`VmHWM`), in MiB. A memory bound that cannot be read
/// fails the test instead of passing as 0.
fn peak_rss_mib(pid: u32) -> f64 {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {path} for the memory bound: {e}"));
    let kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{path} has no VmHWM line:\n{status}"));
    assert!(kib > 0.0, "{path} reports a peak RSS of 0");
    kib / 1024.0
}

/// Polls `cond` every 50 ms until it holds; fails naming `what` after `timeout`.
async fn until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rule(ops: &[&str], status: u16, probability: f64) -> FaultRule {
    FaultRule {
        operations: ops.iter().map(|s| s.to_string()).collect(),
        status,
        probability,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_5xx_half_the_time_during_a_burst() {
    let (_dir, env) = start(cluster()).await;
    let mut op = spawn_operator(&env, &[]);
    env.hdi.control().set_faults(Faults {
        rules: vec![rule(&[], 500, 0.5)],
        ..Default::default()
    });
    let names = apply_many(&env, "burst", 40).await;
    // The fault stays until it has answered a quarter of the creates with 500.
    let control = env.hdi.control();
    until(Duration::from_secs(30), "10 creates answered 500", || {
        control.stats().count_status("create", 500) >= 10
    })
    .await;
    env.hdi.control().clear_faults();
    let served_500 = env.hdi.control().stats().total_status(500);
    assert!(served_500 >= 10, "{served_500} answers of 500 served");
    all_ready(&env, &names, Duration::from_secs(90)).await;
    assert_invariants(&env, &mut op, 40, 12.0);
}

/// A create that got a 500 (and did not happen) while its status could not be recorded: the
/// next reconcile must still treat it as unclear and send it again, not wait for a topic that
/// was never created and end up NotVisible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclear_create_that_could_not_be_recorded_is_sent_again() {
    let (_dir, env) = start(cluster()).await;
    let mut op = spawn_operator(&env, &[]);
    env.hdi.control().set_faults(Faults {
        rules: vec![FaultRule {
            remaining: Some(1),
            ..rule(&["create"], 500, 1.0)
        }],
        ..Default::default()
    });
    env.kube.control().set_faults(kube_emulator::KubeFaults {
        write_error_status: Some(500),
        resources: vec!["kafkatopics/status".into()],
        ..Default::default()
    });
    let names = apply_many(&env, "unclear", 1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !env
        .hdi
        .control()
        .request_log()
        .iter()
        .any(|r| r.operation == "create" && r.status == 500)
    {
        assert!(
            Instant::now() < deadline,
            "no create was sent: {}",
            op.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let a status write fail, then let them through.
    let kube = env.kube.control();
    until(Duration::from_secs(20), "a status write refused", || {
        kube.stats().injected_errors >= 1
    })
    .await;
    env.kube.control().clear_faults();
    // The uncertain retry is 2 s here and the visibility timeout 20 s: Ready well before the
    // latter means the create was retried rather than waited for.
    all_ready(&env, &names, Duration::from_secs(15)).await;
    let creates: Vec<u16> = env
        .hdi
        .control()
        .request_log()
        .iter()
        .filter(|r| r.operation == "create")
        .map(|r| r.status)
        .collect();
    assert_eq!(creates.first(), Some(&500));
    assert_eq!(
        creates.iter().filter(|s| (200..300).contains(*s)).count(),
        1,
        "{creates:?}"
    );
    assert_invariants(&env, &mut op, 1, 20.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_retry_after_is_never_cut_short() {
    let (_dir, env) = start(cluster()).await;
    // One request in flight at a time: every request is then sent after the answer before it
    // was read, so a request logged less than Retry-After after a 429 was sent too early.
    // With several in flight, requests sent before the 429 arrived may be logged after it,
    // as late as a loaded emulator gets to them, and no window tells them apart.
    proxies(&env)
        .patch(
            PROXY_NAME,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"limits": {"maxConcurrentRequests": 1}}})),
        )
        .await
        .expect("proxy patched");
    let mut op = spawn_operator(&env, &[]);
    let names = apply_many(&env, "thr", 10).await;
    all_ready(&env, &names, Duration::from_secs(40)).await;
    env.hdi.control().set_faults(Faults {
        rules: vec![FaultRule {
            retry_after_seconds: Some(3),
            ..rule(&[], 429, 1.0)
        }],
        ..Default::default()
    });
    let started = SystemTime::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    env.hdi.control().clear_faults();
    // From the request log: after each 429, the next request sent after that answer waits 3 s.
    let log: Vec<LoggedRequest> = env
        .hdi
        .control()
        .request_log()
        .into_iter()
        .filter(|r| r.at >= started && r.operation != "token")
        .collect();
    let throttled: Vec<&LoggedRequest> = log.iter().filter(|r| r.status == 429).collect();
    assert!(!throttled.is_empty(), "the fault fired");
    for t in &throttled {
        // Both times are stamped by the emulator as it answers; the next request cannot be
        // answered before the client read the 429 and waited 3 s. (A millisecond of slack
        // for the log's order of two answers stamped at once.)
        let early = log.iter().filter(|r| {
            r.at.duration_since(t.at)
                .is_ok_and(|d| d > Duration::from_millis(1) && d < Duration::from_millis(2950))
        });
        let early: Vec<_> = early.map(|r| (r.operation.clone(), r.status)).collect();
        assert!(
            early.is_empty(),
            "requests sent before Retry-After expired: {early:?}"
        );
    }
    assert!(
        log.len() < 60,
        "{} requests during 8 s of throttling: not a storm",
        log.len()
    );
    let more = apply_many(&env, "after", 3).await;
    all_ready(&env, &more, Duration::from_secs(40)).await;
    assert_invariants(&env, &mut op, 13, 20.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_down_longer_than_a_token_lives() {
    let (_dir, env) = start(ClusterSettings {
        token_lifetime: Duration::from_secs(6),
        ..cluster()
    })
    .await;
    let mut op = spawn_operator(&env, &[]);
    let names = apply_many(&env, "tok", 5).await;
    all_ready(&env, &names, Duration::from_secs(40)).await;
    let before = topics(&env).get("tok-000").await.expect("topic");
    env.hdi.control().set_faults(Faults {
        token_endpoint_down: true,
        ..Default::default()
    });
    let down_at = SystemTime::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    // The fault fired: the operator asked for a token while the endpoint was down, and got none.
    let refused: Vec<u16> = env
        .hdi
        .control()
        .request_log()
        .into_iter()
        .filter(|r| r.operation == "token" && r.at >= down_at)
        .map(|r| r.status)
        .collect();
    assert!(
        !refused.is_empty() && refused.iter().all(|s| *s == 503),
        "token requests during the outage: {refused:?}"
    );
    let during = topics(&env).get("tok-000").await.expect("topic");
    assert_eq!(
        ready(&during).map(|r| r.0).as_deref(),
        Some("True"),
        "a transient outage keeps Ready"
    );
    env.hdi.control().clear_faults();
    let more = apply_many(&env, "tok-after", 2).await;
    all_ready(&env, &more, Duration::from_secs(60)).await;
    let after = topics(&env).get("tok-000").await.expect("topic");
    let ltt = |t: &hdinsight_topic_operator::crd::KafkaTopic| {
        t.status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.last_transition_time.clone())
    };
    assert_eq!(ltt(&before), ltt(&after), "Ready never flapped");
    assert_invariants(&env, &mut op, 7, 40.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_and_back_shows_and_clears_under_replication() {
    let (_dir, env) = start(cluster()).await;
    let mut op = spawn_operator(&env, &[]);
    create(
        &env,
        &topic(
            "replicated",
            serde_json::json!({"partitions": 6, "replicationFactor": 3}),
        ),
    )
    .await;
    wait_ready(&env, "replicated").await;
    assert!(env.hdi.control().broker_down(1002));
    let t = wait_topic(
        &env,
        "replicated",
        Duration::from_secs(30),
        "URP > 0",
        |t| {
            t.status
                .as_ref()
                .and_then(|s| s.under_replicated_partitions)
                .is_some_and(|u| u > 0)
        },
    )
    .await;
    assert_eq!(ready(&t).map(|r| r.0).as_deref(), Some("True"));
    assert!(env.hdi.control().broker_up(1002));
    wait_topic(
        &env,
        "replicated",
        Duration::from_secs(30),
        "URP back to 0",
        |t| {
            t.status
                .as_ref()
                .and_then(|s| s.under_replicated_partitions)
                == Some(0)
        },
    )
    .await;
    let warnings: Vec<_> = events_of(&env, "replicated")
        .await
        .into_iter()
        .filter(|e| e.0 == "Warning")
        .collect();
    assert!(!warnings.is_empty(), "a Warning Event on under-replication");
    assert_invariants(&env, &mut op, 1, 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_dropped_and_history_compacted_during_a_burst() {
    let (_dir, env) = start(cluster()).await;
    let mut op = spawn_operator(&env, &[]);
    wait_operator_ready(&op).await;
    let kube = env.kube.control();
    let before = kube.stats();
    // Each round waits for the operator to watch again before the next cut: every cut lands
    // on live streams, not on the gap between two. Every other cut follows a compaction, so
    // the resumed watch is answered 410 Expired and the operator must relist.
    let chaos = tokio::spawn(async move {
        // Watches answered 410 are opened and end at once: only the others are live.
        let live = |s: kube_emulator::KubeStats| s.watches_opened - s.watches_expired;
        for i in 0..20 {
            let opened = live(kube.stats());
            if i % 2 == 1 {
                kube.compact();
            }
            kube.drop_watches();
            until(
                Duration::from_secs(20),
                "the operator watches again",
                || live(kube.stats()) > opened,
            )
            .await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    let names = apply_many(&env, "watch", 30).await;
    chaos.await.expect("the chaos task completed its 20 rounds");
    all_ready(&env, &names, Duration::from_secs(60)).await;
    let after = env.kube.control().stats();
    let dropped = after.watches_dropped - before.watches_dropped;
    let expired = after.watches_expired - before.watches_expired;
    assert!(dropped >= 20, "{dropped} open watches were cut");
    assert!(
        expired >= 1,
        "no resumed watch was answered 410 Expired after a compaction"
    );
    assert_invariants(&env, &mut op, 30, 12.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_burst_and_restarted() {
    let (_dir, env) = start(cluster()).await;
    // Creates take effect at once but their answers are held: the first operator cannot
    // record any create it sent before it dies.
    env.hdi.control().set_faults(Faults {
        rules: vec![FaultRule {
            body: FaultBody::Stall {
                after_bytes: 4,
                seconds: 120,
            },
            ..rule(&["create"], 200, 1.0)
        }],
        ..Default::default()
    });
    let mut first = spawn_operator(&env, &[]);
    let names = apply_many(&env, "kill", 30).await;
    let control = env.hdi.control();
    until(Duration::from_secs(30), "5 creates received", || {
        control.stats().creates_per_topic.len() >= 5
    })
    .await;
    first.kill();
    // The kill landed with creates that took effect but were never recorded.
    let created: Vec<String> = env
        .hdi
        .control()
        .stats()
        .created_per_topic
        .into_keys()
        .collect();
    let recorded: Vec<String> = topics(&env)
        .list(&Default::default())
        .await
        .expect("KafkaTopics listed")
        .items
        .into_iter()
        .filter(|t| {
            t.status
                .as_ref()
                .is_some_and(|s| s.create_requested_at.is_some() || s.partitions.is_some())
        })
        .filter_map(|t| t.metadata.name)
        .collect();
    let unrecorded: Vec<&String> = created.iter().filter(|n| !recorded.contains(n)).collect();
    assert!(
        created.len() >= 5 && unrecorded.len() == created.len(),
        "at the kill: created {created:?}, recorded {recorded:?}"
    );
    env.hdi.control().clear_faults();
    let mut second = spawn_operator(&env, &[]);
    all_ready(&env, &names, Duration::from_secs(60)).await;
    let stalled: Vec<_> = topics(&env)
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| condition(t, "Stalled").is_some_and(|c| c.0 == "True"))
        .collect();
    assert!(stalled.is_empty());
    assert_invariants(&env, &mut second, 30, 12.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_rotation_recovers_without_restart() {
    let (_dir, env) = start(ClusterSettings {
        token_lifetime: Duration::from_secs(6),
        ..cluster()
    })
    .await;
    let mut op = spawn_operator(&env, &[]);
    let names = apply_many(&env, "rot", 3).await;
    all_ready(&env, &names, Duration::from_secs(40)).await;
    // The old secret is revoked in Entra ID and a new one issued…
    assert!(
        env.hdi
            .control()
            .set_app_secret(CLIENT_ID, "rotated-secret-value")
    );
    // …and the Secret in the cluster is updated a moment later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let patched_at = SystemTime::now();
    let secrets: kube::Api<Secret> = kube::Api::namespaced(env.client.clone(), NAMESPACE);
    let patch = serde_json::json!({"stringData": {"clientSecret": "rotated-secret-value"}});
    secrets
        .patch("hdi-sp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("Secret updated");
    let more = apply_many(&env, "rot-after", 2).await;
    all_ready(&env, &more, Duration::from_secs(40)).await;
    // The rotation took effect: the first token past the old one's life is issued to the new
    // secret (the old one is refused by then), and no token request fails after it.
    let control = env.hdi.control();
    until(
        Duration::from_secs(20),
        "a token issued after the rotation",
        || {
            control
                .request_log()
                .iter()
                .any(|r| r.operation == "token" && r.at >= patched_at && r.status == 200)
        },
    )
    .await;
    let log = env.hdi.control().request_log();
    let last_token = log
        .iter()
        .rev()
        .find(|r| r.operation == "token")
        .map(|r| r.status);
    assert_eq!(last_token, Some(200), "tokens come with the new secret");
    assert_no_secrets(&op.logs(), &["rotated-secret-value"]);
    assert_invariants(&env, &mut op, 5, 40.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_truncated_oversized_and_stalled_answers_are_survived() {
    let (_dir, env) = start(cluster()).await;
    let mut op = spawn_operator(&env, &[]);
    let names = apply_many(&env, "bad", 4).await;
    all_ready(&env, &names, Duration::from_secs(40)).await;
    for body in [
        FaultBody::Garbage,
        FaultBody::Truncated,
        FaultBody::Oversized {
            bytes: 64 * 1024 * 1024,
        },
        FaultBody::Stall {
            after_bytes: 8,
            seconds: 40,
        },
    ] {
        let set_at = SystemTime::now();
        env.hdi.control().set_faults(Faults {
            rules: vec![FaultRule {
                body: body.clone(),
                ..rule(&["describe", "list"], 200, 1.0)
            }],
            ..Default::default()
        });
        // The fault answered at least two reads (every describe and list matches it).
        let control = env.hdi.control();
        until(Duration::from_secs(30), &format!("{body:?} served"), || {
            control
                .request_log()
                .iter()
                .filter(|r| r.at >= set_at && matches!(r.operation.as_str(), "describe" | "list"))
                .count()
                >= 2
        })
        .await;
        assert!(
            op.child.try_wait().ok().flatten().is_none(),
            "the operator survived {body:?}"
        );
    }
    env.hdi.control().clear_faults();
    let more = apply_many(&env, "bad-after", 2).await;
    all_ready(&env, &more, Duration::from_secs(60)).await;
    assert_invariants(&env, &mut op, 6, 100.0);
}

// ---------------------------------------------------------------------------------------------
// The unhappy cluster: situations time fixes, and the operator must not call them failures.
// Each scenario samples every KafkaTopic's conditions while it runs and asserts: never
// `Stalled`, never `TopicMissing`, every topic created exactly once (the emulator's
// `createdPerTopic`, which counts creates that took effect whatever the caller was answered),
// and no `TopicRecreated` Event.

use std::sync::{Arc, Mutex};

use hdinsight_emulator::{EmulatorConfig, RateLimit, RetryAfterAs, ThrottleAnswer};

/// Every condition seen while sampling that time fixes and a user must not be paged for.
struct Sampler {
    seen: Arc<Mutex<Vec<String>>>,
    samples: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Lists the KafkaTopics every 150 ms and notes any Stalled=True or TopicMissing.
    fn start(env: &Env) -> Sampler {
        let api = topics(env);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let samples = Arc::new(Mutex::new(0usize));
        let (seen_in, samples_in) = (seen.clone(), samples.clone());
        let task = tokio::spawn(async move {
            loop {
                if let Ok(list) = api.list(&Default::default()).await {
                    for t in &list.items {
                        let name = t.metadata.name.clone().unwrap_or_default();
                        let bad = [
                            condition(t, "Stalled")
                                .filter(|c| c.0 == "True")
                                .map(|c| format!("{name}: Stalled {} {}", c.1, c.2)),
                            ready(t)
                                .filter(|r| r.1 == "TopicMissing")
                                .map(|r| format!("{name}: TopicMissing {}", r.2)),
                        ];
                        if let Ok(mut seen) = seen_in.lock() {
                            seen.extend(bad.into_iter().flatten());
                        }
                    }
                    if let Ok(mut n) = samples_in.lock() {
                        *n += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        });
        Sampler {
            seen,
            samples,
            task,
        }
    }

    /// Stops sampling and asserts nothing a person would be paged for was ever shown.
    fn assert_calm(self) {
        self.task.abort();
        let samples = self.samples.lock().map(|n| *n).unwrap_or(0);
        assert!(
            samples >= 3,
            "only {samples} samples: the sampler did not run"
        );
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        let mut distinct = seen.clone();
        distinct.sort();
        distinct.dedup();
        assert!(
            distinct.is_empty(),
            "conditions time fixes were reported as failures ({} samples):\n{}",
            seen.len(),
            distinct.into_iter().take(10).collect::<Vec<_>>().join("\n")
        );
    }
}

/// Every name created exactly once on the cluster, and nothing else created.
fn assert_created_once(env: &Env, names: &[String]) {
    let created = env.hdi.control().stats().created_per_topic;
    for name in names {
        assert_eq!(
            created.get(name),
            Some(&1),
            "{name} was created {:?} times",
            created.get(name)
        );
    }
    let extra: Vec<_> = created.keys().filter(|k| !names.contains(k)).collect();
    assert!(extra.is_empty(), "unexpected creates: {extra:?}");
}

/// No topic was announced as re-created, and no refusal was announced for these topics.
async fn assert_no_alarm_events(env: &Env, names: &[String]) {
    use k8s_openapi::api::events::v1::Event;
    let api: kube::Api<Event> = kube::Api::namespaced(env.client.clone(), NAMESPACE);
    let events = api
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let alarms: Vec<String> = events
        .iter()
        .filter(|e| {
            let about = e
                .regarding
                .as_ref()
                .and_then(|r| r.name.clone())
                .unwrap_or_default();
            names.contains(&about)
                && matches!(
                    e.reason.as_deref(),
                    Some("TopicRecreated" | "CreateRejected" | "NotVisible")
                )
        })
        .map(|e| format!("{:?} {:?}", e.reason, e.note))
        .collect();
    assert!(alarms.is_empty(), "{alarms:?}");
}

/// The Ready reason of each topic.
async fn ready_reasons(env: &Env, names: &[String]) -> HashMap<String, String> {
    topics(env)
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| names.contains(&t.metadata.name.clone().unwrap_or_default()))
        .map(|t| {
            (
                t.metadata.name.clone().unwrap_or_default(),
                ready(&t).map(|r| r.1).unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_that_happen_but_are_answered_500() {
    let (_dir, env) = start(cluster()).await;
    let mut op = spawn_operator(&env, &[]);
    let sampler = Sampler::start(&env);
    // Half the creates take effect and are answered 500 anyway.
    env.hdi.control().set_faults(Faults {
        rules: vec![FaultRule {
            applied: true,
            ..rule(&["create"], 500, 0.5)
        }],
        ..Default::default()
    });
    let names = apply_many(&env, "applied", 20).await;
    all_ready(&env, &names, Duration::from_secs(45)).await;
    let answered_500 = env.hdi.control().stats().count_status("create", 500);
    assert!(answered_500 > 0, "the fault fired");
    sampler.assert_calm();
    assert_created_once(&env, &names);
    assert_no_alarm_events(&env, &names).await;
    // Our own creates: Created, whatever answer they got — never Adopted.
    let reasons = ready_reasons(&env, &names).await;
    assert!(reasons.values().all(|r| r == "Created"), "{reasons:?}");
    assert_invariants(&env, &mut op, 20, 20.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_management_nodes_three_seconds_apart_and_100_topics() {
    let (_dir, env) = start(ClusterSettings {
        emulator: Some(|c: &mut EmulatorConfig| {
            c.management_nodes = 2;
            c.node_lag_ms = 3000;
        }),
        ..cluster()
    })
    .await;
    // The recreate grace must outlast the nodes' lag (the default, 5 min, does by far).
    let mut op = spawn_operator(&env, &[("HDI_RECREATE_GRACE", "5s")]);
    let sampler = Sampler::start(&env);
    let names = apply_many(&env, "lag", 100).await;
    all_ready(&env, &names, Duration::from_secs(45)).await;
    // Two resync rounds more (3 s each) while lagging views of fresh topics come and go.
    tokio::time::sleep(Duration::from_secs(7)).await;
    sampler.assert_calm();
    assert_created_once(&env, &names);
    assert_no_alarm_events(&env, &names).await;
    let stats = env.hdi.control().stats();
    assert!(
        stats.count_status("describe", 404) > 0,
        "the lagging node did answer 404 for listed topics"
    );
    assert_invariants(&env, &mut op, 100, 12.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_out_of_band_just_before_the_apply() {
    let (_dir, env) = start(ClusterSettings {
        // Long enough for a loaded machine to send every create before the topics are listed
        // (the scenario's point); started only once the operator is ready.
        out_of_band_delay: Duration::from_secs(12),
        ..cluster()
    })
    .await;
    let mut op = spawn_operator(&env, &[]);
    wait_operator_ready(&op).await;
    let sampler = Sampler::start(&env);
    let names: Vec<String> = (0..10).map(|i| format!("oob-{i:03}")).collect();
    for name in &names {
        env.hdi
            .control()
            .create_topic_out_of_band(name, 3, 3)
            .expect("created by another tool");
    }
    for name in &names {
        create(&env, &topic(name, serde_json::json!({"partitions": 3}))).await;
    }
    // The proxy refuses the creates ("already exists") long before it lists the topics.
    let t = wait_reason(&env, "oob-000", "WaitingForVisibility").await;
    assert_eq!(
        condition(&t, "Reconciling").map(|c| c.0).as_deref(),
        Some("True")
    );
    all_ready(&env, &names, Duration::from_secs(60)).await;
    sampler.assert_calm();
    let reasons = ready_reasons(&env, &names).await;
    assert!(reasons.values().all(|r| r == "Adopted"), "{reasons:?}");
    assert!(
        env.hdi.control().stats().created_per_topic.is_empty(),
        "no create of the operator took effect"
    );
    // Every topic's create was refused at least once, and sent again no more often than
    // every --uncertain-retry (2 s here) while the topic stayed hidden: at most once more per
    // 2 s of the 12 s delay, plus one for a wait the delay cuts. A create per poll would be
    // about one a second.
    let refused = env.hdi.control().stats().count_status("create", 400);
    assert!(
        (10..=10 * (1 + 12 / 2 + 1)).contains(&refused),
        "{refused} refused creates for 10 topics"
    );
    assert_no_alarm_events(&env, &names).await;
    assert_invariants(&env, &mut op, 10, 30.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxys_own_rate_limit_during_a_200_topic_burst() {
    let (_dir, env) = start(ClusterSettings {
        emulator: Some(|c: &mut EmulatorConfig| {
            c.rate_limit = Some(RateLimit {
                requests_per_second: 60.0,
                burst: 60,
                answer: ThrottleAnswer::TooManyRequests,
                retry_after_as: RetryAfterAs::HttpDate,
            });
        }),
        ..cluster()
    })
    .await;
    let mut op = spawn_operator(&env, &[]);
    let sampler = Sampler::start(&env);
    let names = apply_many(&env, "rl", 200).await;
    all_ready(&env, &names, Duration::from_secs(55)).await;
    sampler.assert_calm();
    assert!(
        env.hdi.control().stats().total_status(429) > 0,
        "the rate limit was hit"
    );
    assert_created_once(&env, &names);
    assert_no_alarm_events(&env, &names).await;
    assert_invariants(&env, &mut op, 200, 12.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signing_key_rotates_mid_run() {
    let (_dir, env) = start(cluster()).await;
    let mut op = spawn_operator(&env, &[]);
    let sampler = Sampler::start(&env);
    let mut names = apply_many(&env, "key", 10).await;
    all_ready(&env, &names, Duration::from_secs(30)).await;
    let old_kid = env.hdi.control().signing_kid();
    // The old key leaves the JWKS at once: the cached token is refused (unknown kid).
    env.hdi
        .control()
        .rotate_signing_key(Duration::ZERO)
        .expect("rotated");
    assert_ne!(env.hdi.control().signing_kid(), old_kid);
    names.extend(apply_many(&env, "key-after", 10).await);
    all_ready(&env, &names, Duration::from_secs(30)).await;
    let stats = env.hdi.control().stats();
    assert!(stats.total_status(401) > 0, "the old token was refused");
    assert!(
        stats.tokens_issued.get(CLIENT_ID).copied().unwrap_or(0) >= 2,
        "a new token was fetched"
    );
    sampler.assert_calm();
    assert_created_once(&env, &names);
    assert_no_alarm_events(&env, &names).await;
    assert_invariants(&env, &mut op, 20, 20.0);
}

/// Entra's clock two minutes ahead of or behind the proxy's, with one-minute tokens. Ahead,
/// the proxy allows 150 s of skew, so tokens are valid at once. Behind, it allows 75 s, so a
/// token is refused by the proxy 15 s after it was issued, 15 s before the operator would
/// refresh it: every token ends in a 401, a refresh and a retry.
async fn skewed(adjust: fn(&mut EmulatorConfig), prefix: &str, refused_tokens: bool) {
    let (_dir, env) = start(ClusterSettings {
        token_lifetime: Duration::from_secs(60),
        emulator: Some(adjust),
        ..cluster()
    })
    .await;
    let mut op = spawn_operator(&env, &[]);
    let sampler = Sampler::start(&env);
    let mut names = apply_many(&env, prefix, 10).await;
    all_ready(&env, &names, Duration::from_secs(30)).await;
    // Past the first token's end on the proxy's clock.
    tokio::time::sleep(Duration::from_secs(32)).await;
    names.extend(apply_many(&env, &format!("{prefix}-late"), 5).await);
    all_ready(&env, &names, Duration::from_secs(20)).await;
    let refused = env.hdi.control().stats().total_status(401);
    assert_eq!(refused > 0, refused_tokens, "{refused} tokens refused");
    sampler.assert_calm();
    assert_created_once(&env, &names);
    assert_no_alarm_events(&env, &names).await;
    assert_invariants(&env, &mut op, 15, 30.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_two_minutes_ahead() {
    skewed(
        |c| {
            c.clock_skew_seconds = 120;
            c.token_leeway_seconds = 150;
        },
        "ahead",
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_two_minutes_behind() {
    skewed(
        |c| {
            c.clock_skew_seconds = -120;
            c.token_leeway_seconds = 75;
        },
        "behind",
        true,
    )
    .await;
}

/// The other side: a refusal that time does not fix is reported — once, naming the key — and
/// does not hold up the topics around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_the_clusters_kafka_refuses_is_stalled_naming_the_key() {
    let (_dir, env) = start(ClusterSettings {
        // HDInsight 4.0's Kafka 2.1 has no max.compaction.lag.ms (it came with 2.3).
        emulator: Some(|c: &mut EmulatorConfig| c.kafka_version = "2.1.1".to_string()),
        ..cluster()
    })
    .await;
    let mut op = spawn_operator(&env, &[]);
    create(
        &env,
        &topic(
            "compacted",
            serde_json::json!({"config": {"cleanup.policy": "compact", "max.compaction.lag.ms": 60000}}),
        ),
    )
    .await;
    let fine = apply_many(&env, "beside", 3).await;
    let t = wait_topic(&env, "compacted", Duration::from_secs(30), "Stalled", |t| {
        condition(t, "Stalled").is_some_and(|c| c.0 == "True")
    })
    .await;
    let (_, reason, message) = condition(&t, "Stalled").unwrap_or_default();
    assert_eq!(reason, "CreateRejected");
    assert!(
        message.contains("config max.compaction.lag.ms"),
        "{message}"
    );
    all_ready(&env, &fine, Duration::from_secs(30)).await;
    let warnings: Vec<_> = events_of(&env, "compacted")
        .await
        .into_iter()
        .filter(|e| e.1 == "CreateRejected")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        env.hdi
            .control()
            .topic_names()
            .iter()
            .all(|n| n != "compacted")
    );
    assert_invariants(&env, &mut op, 4, 20.0);
}

// ---------------------------------------------------------------------------------------------
// Production timings. Every other scenario runs with a 3 s resync, which would hide a topic
// requeued at the resync interval instead of its short poll. These run the operator with the
// default `--resync-interval` (10 min) and assert that a topic is Ready within a few seconds of
// the moment the proxy can show it: a requeue regression leaves it waiting for minutes.

/// Time a latency-sensitive path may take beyond the emulator's own delay: the visibility
/// poll (half the time waited, from 0.5 s) or the first backoffs (1, 2, 4, 8 s), the shared
/// list's freshness (2 s by default), and a loaded machine running other tests beside it
/// (a few seconds when unloaded). Still a twentieth of the 10-minute resync a requeue
/// regression would wait for.
const PRODUCTION_SLACK: Duration = Duration::from_secs(30);

/// The operator with its default resync interval (the other test timings stay short).
fn spawn_production_operator(env: &Env) -> Operator {
    spawn_operator_without(env, &[], &["HDI_RESYNC_INTERVAL"])
}

/// Waits until every topic is Ready=True; fails after `within`, counted from `since`.
async fn ready_within(env: &Env, names: &[String], since: Instant, within: Duration) {
    let left = within.saturating_sub(since.elapsed());
    all_ready(env, names, left).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_resync_a_new_topic_is_ready_once_the_proxy_lists_it() {
    let visibility = Duration::from_millis(500);
    let (_dir, env) = start(ClusterSettings {
        visibility_delay: visibility,
        ..cluster()
    })
    .await;
    let op = spawn_production_operator(&env);
    wait_operator_ready(&op).await;
    let applied = Instant::now();
    let names = apply_many(&env, "prod-new", 3).await;
    ready_within(&env, &names, applied, visibility + PRODUCTION_SLACK).await;
    assert_created_once(&env, &names);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_resync_a_topic_listed_late_is_ready_once_it_is_listed() {
    // Long enough that the topic goes through Creating and WaitingForVisibility first.
    let visibility = Duration::from_secs(4);
    let (_dir, env) = start(ClusterSettings {
        visibility_delay: visibility,
        ..cluster()
    })
    .await;
    let op = spawn_production_operator(&env);
    wait_operator_ready(&op).await;
    let applied = Instant::now();
    let names = apply_many(&env, "prod-late", 2).await;
    // The delay applied: the created topic was not listed at first, so not Ready.
    let control = env.hdi.control();
    until(Duration::from_secs(10), "both creates took effect", || {
        control.stats().created_per_topic.len() == 2
    })
    .await;
    let early = topics(&env).get(&names[0]).await.expect("topic");
    assert_ne!(
        ready(&early).map(|r| r.0).as_deref(),
        Some("True"),
        "Ready before the proxy lists the topic"
    );
    ready_within(&env, &names, applied, visibility + PRODUCTION_SLACK).await;
    assert_created_once(&env, &names);
}

/// The proxy is Ready before it breaks, so its own check (every resync, 10 min) does not see
/// the outage and does not wake the topics when it ends: the topics' own retries must.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_resync_topics_recover_soon_after_the_proxy_is_fixed() {
    let (_dir, env) = start(cluster()).await;
    let op = spawn_production_operator(&env);
    wait_operator_ready(&op).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let proxy = proxies(&env)
            .get("default")
            .await
            .expect("the KafkaRestProxy");
        let conditions = proxy.status.map(|s| s.conditions).unwrap_or_default();
        if hdinsight_topic_operator::crd::find_condition(&conditions, "Ready")
            .is_some_and(|c| c.status == "True")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the KafkaRestProxy is not Ready: {conditions:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The proxy's check listed the topics; that list is reused for the list freshness (300 ms
    // here). Once it is stale, every topic's first call meets the broken proxy.
    tokio::time::sleep(Duration::from_millis(600)).await;
    env.hdi.control().set_faults(Faults {
        rules: vec![rule(&[], 500, 1.0)],
        ..Default::default()
    });
    let names = apply_many(&env, "prod-fix", 3).await;
    // Every topic is blocked by the broken proxy, retrying, before it is fixed.
    for name in &names {
        wait_reason(&env, name, "Retrying").await;
    }
    assert!(env.hdi.control().stats().total_status(500) >= 3);
    assert!(env.hdi.control().stats().created_per_topic.is_empty());
    env.hdi.control().clear_faults();
    let fixed = Instant::now();
    ready_within(
        &env,
        &names,
        fixed,
        cluster().visibility_delay + PRODUCTION_SLACK,
    )
    .await;
    assert_created_once(&env, &names);
}
