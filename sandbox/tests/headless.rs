//! The README's sandbox command, headless: it must reach every example topic Ready and print
//! the table; each failure scenario must reach its own end state.

use std::process::Command;

fn sandbox(args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_sandbox"))
        .args(args)
        .arg("--exit-when-ready")
        .arg("--timeout")
        .arg("90")
        .arg("--dir")
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("sandbox runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The names of the KafkaTopics in `examples/topics.yaml`, which every scenario applies.
fn example_names() -> Vec<String> {
    let path = sandbox::env::repo_root().join("examples/topics.yaml");
    let text = std::fs::read_to_string(&path).expect("examples/topics.yaml");
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&text).expect("examples/topics.yaml is YAML");
    let names: Vec<String> = docs
        .into_iter()
        .filter(|v| v["kind"].as_str() == Some("KafkaTopic"))
        .filter_map(|v| v["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(!names.is_empty(), "no KafkaTopic in {}", path.display());
    names
}

/// The rows of `table` below its header, one per example topic (fails otherwise).
fn topic_rows<'t>(table: &'t [Vec<String>], out: &str) -> &'t [Vec<String>] {
    let rows = table.get(1..).unwrap_or_default();
    let mut names: Vec<&str> = rows
        .iter()
        .map(|r| r.first().map_or("", String::as_str))
        .collect();
    names.sort_unstable();
    let mut want = example_names();
    want.sort();
    assert_eq!(names, want, "one row per example topic:\n{out}");
    rows
}

/// The last table printed, as rows of cells.
fn last_table(stdout: &str) -> Vec<Vec<String>> {
    let start = stdout.rfind("NAME ").expect("a table was printed");
    stdout[start..]
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn examples_become_ready_and_the_table_shows_the_cluster() {
    let (ok, out, err) = sandbox(&[]);
    assert!(ok, "{out}\n{err}");
    let table = last_table(&out);
    topic_rows(&table, &out);
    assert_eq!(
        table[0],
        [
            "NAME",
            "TOPIC",
            "PARTITIONS",
            "RF",
            "URP",
            "READY",
            "REASON",
            "AGE"
        ]
    );
    let row = |name: &str| {
        table
            .iter()
            .find(|r| r[0] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {name}:\n{out}"))
    };
    assert_eq!(
        row("orders")[1..7],
        ["orders.v1", "12", "3", "0", "True", "Created"]
    );
    assert_eq!(
        row("payments")[1..7],
        ["payments", "6", "3", "0", "True", "Created"]
    );
    assert_eq!(
        row("audit-log")[1..7],
        ["audit-log", "3", "2", "0", "True", "Created"]
    );
    assert!(out.contains("kubectl get hkt -n kafka"), "{out}");
}

#[test]
fn wrong_secret_shows_the_aadsts_failure() {
    let (ok, out, err) = sandbox(&["--scenario", "wrong-secret"]);
    assert!(ok, "{out}\n{err}");
    let table = last_table(&out);
    for row in topic_rows(&table, &out) {
        assert_eq!(
            row[row.len() - 3..row.len() - 1],
            ["False", "AuthenticationFailed"]
        );
    }
}

#[test]
fn forbidden_and_drift_and_broker_down_reach_their_end_states() {
    let (ok, out, err) = sandbox(&["--scenario", "forbidden"]);
    assert!(ok, "{out}\n{err}");
    let table = last_table(&out);
    assert!(
        topic_rows(&table, &out)
            .iter()
            .all(|r| r.contains(&"Forbidden".to_string())),
        "{out}"
    );

    let (ok, out, err) = sandbox(&["--scenario", "drift"]);
    assert!(ok, "{out}\n{err}");
    let table = last_table(&out);
    let payments = table
        .iter()
        .find(|r| r[0] == "payments")
        .expect("payments row");
    assert_eq!(payments[2..7], ["3", "2", "0", "True", "Adopted"]);

    let (ok, out, err) = sandbox(&["--scenario", "broker-down"]);
    assert!(ok, "{out}\n{err}");
    let table = last_table(&out);
    assert!(
        topic_rows(&table, &out).iter().any(|r| r[4] != "0"),
        "under-replicated partitions show:\n{out}"
    );
}

#[test]
fn certificate_and_workload_identity_scenarios_reach_every_topic_ready() {
    for scenario in ["certificate", "workload-identity"] {
        let (ok, out, err) = sandbox(&["--scenario", scenario]);
        assert!(ok, "{scenario}: {out}\n{err}");
        let table = last_table(&out);
        for row in topic_rows(&table, &out) {
            assert_eq!(row[5..7], ["True", "Created"], "{scenario}: {out}");
        }
        assert!(out.contains("The KafkaRestProxy uses"), "{scenario}: {out}");
    }
}
