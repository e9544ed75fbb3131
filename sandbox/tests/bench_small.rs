//! A small benchmark run, so that `sandbox bench` cannot rot. It asserts counts only (calls per
//! topic, topic lists, the steady call rate, token requests, status writes, zero steady-state
//! writes), with bounds derived from the run's configuration (topic count, resync interval,
//! list freshness, steady-state window), never from times it measured.

use std::process::Command;

#[test]
fn fifty_topics_cost_one_create_one_describe_and_no_steady_state_writes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args([
            "bench",
            "--topics",
            "50",
            "--latency-ms",
            "5",
            "--visibility-ms",
            "500",
            "--resync-secs",
            "10",
            "--steady-periods",
            "1",
            "--list-freshness-ms",
            "2000",
            "--timeout-secs",
            "120",
        ])
        .arg("--dir")
        .arg(dir.path().join("work"))
        .arg("--json")
        .arg(&json)
        .env_remove("RUST_LOG")
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(r["creates"], 50, "{r}");
    // Counted when the last topic is Ready: the first Ready topic's resync describe falls due
    // 9 s (less its jitter) after it, which leaves a loaded machine time to ready the rest.
    assert_eq!(
        r["describes"], 50,
        "one describe per topic on the way to Ready: {r}"
    );
    assert_eq!(r["token_requests"], 1, "{r}");
    assert!(
        r["status_writes_per_topic"].as_f64().unwrap_or(9.0) <= 3.0,
        "{r}"
    );
    assert_eq!(r["steady_status_writes"], 0, "{r}");
    let per_resync = r["steady_describes_per_topic_per_resync"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        (0.5..=1.5).contains(&per_resync),
        "each topic is described about once per resync: {r}"
    );
    assert!(stdout.contains("| proxy calls per topic"), "{stdout}");

    // The configuration the bounds come from.
    let n = 50u64;
    let resync_secs = 10u64;
    let periods = 1u64;
    let freshness_ms = 2000u64;
    let steady_secs = resync_secs * periods;
    assert_eq!(r["resync_secs"], resync_secs, "{r}");
    assert_eq!(r["list_freshness_ms"], freshness_ms, "{r}");
    assert_eq!(r["steady_secs"].as_f64(), Some(steady_secs as f64), "{r}");

    // Topic lists are shared by every topic of a proxy (one proxy here). On the way to Ready
    // each topic is reconciled at least twice (create, then seen listed), so a list per
    // reconcile would cost at least 2N; shared, they are a handful. N / 2 leaves room for a
    // slow machine (lists for waiting topics are at most 0.5 s apart) and catches a list per
    // reconcile.
    let lists = r["lists"].as_u64().unwrap_or(u64::MAX);
    assert!(
        lists <= n / 2,
        "{lists} topic lists for {n} topics on one proxy: lists are not shared\n{r}"
    );
    // In the steady state a list is reused for its freshness: at most one per freshness
    // period of the window, plus one for a period the window cuts.
    let steady_lists = r["steady_lists"].as_u64().unwrap_or(u64::MAX);
    let max_steady_lists = steady_secs * 1000 / freshness_ms + 1;
    assert!(
        steady_lists <= max_steady_lists,
        "{steady_lists} topic lists in {steady_secs} s of steady state (freshness {freshness_ms} \
         ms allows {max_steady_lists})\n{r}"
    );
    // The steady call rate: each topic described once per resync (a topic whose reconcile
    // falls on both edges of the window once more), the shared lists, and the proxy's own
    // check (status and brokers) once per resync.
    let max_calls = n * (periods + 1) + max_steady_lists + 2 * (periods + 1);
    let max_per_minute = max_calls as f64 * 60.0 / steady_secs as f64;
    let per_minute = r["steady_proxy_calls_per_minute"]
        .as_f64()
        .unwrap_or(f64::MAX);
    assert!(
        per_minute <= max_per_minute,
        "{per_minute:.0} proxy calls per minute in the steady state; {n} topics, a {resync_secs} \
         s resync and {freshness_ms} ms list freshness allow {max_per_minute:.0}\n{r}"
    );
}
