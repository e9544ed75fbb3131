//! A small benchmark run, so that `sandbox bench` cannot rot. It asserts counts only (calls per
//! topic, token requests, status writes, zero steady-state writes), never times.

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
            "4",
            "--steady-periods",
            "2",
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
}
