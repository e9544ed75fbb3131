//! `sandbox bench --json --proxies --restart` on a small N, so that the modes the benchmark
//! figures in `docs/benchmarks.md` come from cannot rot. Counts only, never times.

use std::process::Command;

/// Runs the bench with `args` and returns the JSON object on the last line of its output.
fn bench(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .arg("bench")
        .args(args)
        .arg("--dir")
        .arg(dir.path().join("work"))
        .arg("--json")
        .env_remove("RUST_LOG")
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("| proxy calls per topic"), "{stdout}");
    let last = stdout.lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

/// The most describes a restart may cost in its first `window` seconds when each of `topics`
/// Ready topics is described at a uniformly random point of its description lifetime (90 % of
/// `resync`, see `docs/behaviour.md`), as the exact Binomial quantile that a correct operator
/// exceeds with probability below 10⁻⁹. Two seconds are added to the window for the requeue
/// jitter (±10 %) and for the bench seeing the new leader a poll after it took over. The bench's
/// own bound (1.5 · N · window / resync) holds for the thousands of topics of
/// `docs/benchmarks.md`, not for a few dozen: with 30 topics it is exceeded in about one run
/// in six. A describe storm (every topic at once) still exceeds this bound.
fn spread_bound(topics: u64, window: f64, resync: f64) -> u64 {
    let p = ((window + 2.0) / (0.9 * resync)).min(1.0);
    let n = topics;
    // P(X = k) for k = 0..=n, by the recurrence P(k+1) = P(k) · (n-k)/(k+1) · p/(1-p).
    let mut pk = (1.0 - p).powf(n as f64);
    let mut probs = Vec::new();
    for k in 0..=n {
        probs.push(pk);
        pk *= (n - k) as f64 / (k + 1) as f64 * p / (1.0 - p);
    }
    (0..=n)
        .find(|&b| probs[b as usize + 1..].iter().sum::<f64>() <= 1e-9)
        .unwrap_or(n)
}

#[test]
fn two_proxies_then_a_restart_that_costs_lists_not_describes() {
    let topics = 40u64;
    let resync = 30.0;
    let window = 5.0;
    let r = bench(&[
        "--topics",
        "40",
        "--proxies",
        "2",
        "--latency-ms",
        "5",
        "--visibility-ms",
        "500",
        "--resync-secs",
        "30",
        "--steady-periods",
        "0",
        "--restart",
        "--restart-window-secs",
        "5",
        "--timeout-secs",
        "120",
    ]);
    for key in [
        "topics",
        "proxies",
        "lower_bound_s",
        "target_s",
        "all_ready_s",
        "ready_p50_s",
        "ready_p95_s",
        "ready_p99_s",
        "proxy_calls_per_topic",
        "token_requests",
        "status_writes_per_topic",
        "operator_peak_rss_mib",
        "operator_cpu_s",
        "steady_status_writes",
        "steady_describes_per_topic_per_resync",
    ] {
        assert!(r.get(key).is_some(), "{key} missing from {r}");
    }
    assert_eq!(r["topics"], topics, "{r}");
    assert_eq!(r["proxies"], 2, "{r}");
    // Every topic created once and described once, spread over both clusters: each cluster is
    // an Entra ID of its own, so one token each.
    assert_eq!(r["creates"], topics, "{r}");
    assert_eq!(r["describes"], topics, "{r}");
    assert_eq!(r["token_requests"], 2, "one token per cluster: {r}");
    assert!(
        r["operator_peak_rss_mib"].as_f64().unwrap_or(0.0) > 0.0,
        "the operator's memory was read: {r}"
    );

    let restart = &r["restart"];
    assert_eq!(restart["window_s"], window, "{r}");
    // A restart with every topic Ready and current: nothing written, nothing flips, nothing
    // created; each proxy's list runs at once (a missing topic would be noticed) while the
    // describes are spread over the resync interval.
    assert_eq!(restart["status_writes"], 0, "{r}");
    assert_eq!(restart["ready_flips"], 0, "{r}");
    assert_eq!(restart["creates"], 0, "{r}");
    assert!(
        restart["lists"].as_u64().unwrap_or(0) >= 2,
        "the new process lists each cluster: {r}"
    );
    assert_eq!(
        restart["describes_bound"],
        1.5 * topics as f64 * window / resync,
        "{r}"
    );
    let bound = spread_bound(topics, window, resync);
    assert!(
        bound < topics,
        "the bound tells a storm from a spread: {bound}"
    );
    assert!(
        restart["describes_first_minute"]
            .as_u64()
            .unwrap_or(u64::MAX)
            <= bound,
        "describes after a restart are spread over the resync interval (≤ {bound}): {r}"
    );
}

#[test]
fn leader_failover_costs_what_a_restart_costs() {
    let topics = 30u64;
    let (resync, window) = (30.0, 4.0);
    let r = bench(&[
        "--topics",
        "30",
        "--latency-ms",
        "5",
        "--visibility-ms",
        "500",
        "--resync-secs",
        "30",
        "--steady-periods",
        "0",
        "--failover",
        "--lease-secs",
        "3",
        "--restart",
        "--restart-window-secs",
        "4",
        "--timeout-secs",
        "120",
    ]);
    assert_eq!(r["creates"], topics, "{r}");
    let f = &r["restart"];
    assert_eq!(f["kind"], "failover", "{r}");
    // The standby waits for the dead leader's Lease to expire, then takes over.
    assert!(f["takeover_s"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    assert_eq!(f["status_writes"], 0, "{r}");
    assert_eq!(f["ready_flips"], 0, "{r}");
    assert_eq!(f["creates"], 0, "{r}");
    assert!(
        f["lists"].as_u64().unwrap_or(0) >= 1,
        "the new leader lists the cluster: {r}"
    );
    let bound = spread_bound(topics, window, resync);
    assert!(
        bound < topics,
        "the bound tells a storm from a spread: {bound}"
    );
    assert!(
        f["describes_first_minute"].as_u64().unwrap_or(u64::MAX) <= bound,
        "describes after a takeover are spread over the resync interval (≤ {bound}): {r}"
    );
}

#[test]
fn spread_bound_is_the_exact_binomial_quantile() {
    // Checked against Σ C(n,k) pᵏ (1-p)ⁿ⁻ᵏ summed exactly: for n = 30, p = 6/27 the tail above
    // 22 is below 10⁻⁹ and the tail above 21 is not; for n = 40, p = 7/27 the same holds at 28.
    assert_eq!(spread_bound(30, 4.0, 30.0), 22);
    assert_eq!(spread_bound(40, 5.0, 30.0), 28);
    // A window as long as the lifetime allows every topic.
    assert_eq!(spread_bound(10, 30.0, 30.0), 10);
}
