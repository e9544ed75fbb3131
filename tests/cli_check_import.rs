//! `check` and `import` of the operator binary against the HDInsight emulator (no Kubernetes
//! needed: the direct flags).

use std::net::SocketAddr;
use std::process::Command;

use hdinsight_emulator::{AppConfig, EmulatorConfig, RunningEmulator, Transport};

const SECRET: &str = "check-test-secret";
const CLIENT: &str = "33333333-3333-3333-3333-333333333333";

async fn emulator(dir: &std::path::Path, in_group: bool) -> RunningEmulator {
    let base = EmulatorConfig::default();
    let config = EmulatorConfig {
        apps: vec![AppConfig {
            client_id: CLIENT.into(),
            client_secret: SECRET.into(),
            groups: if in_group {
                vec![base.cluster_group_id.clone()]
            } else {
                vec![]
            },
            ..Default::default()
        }],
        visibility_delay_ms: 0,
        out_of_band_delay_ms: 0,
        ..base
    };
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    RunningEmulator::start(
        config,
        addr,
        Transport::Tls {
            dir: dir.join("tls"),
        },
    )
    .await
    .expect("emulator starts")
}

fn run(
    args: &[&str],
    emu: &RunningEmulator,
    dir: &std::path::Path,
    secret: &str,
) -> (bool, String, String) {
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("secret file");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, emu.ca_pem().unwrap_or_default()).expect("ca file");
    let out = Command::new(env!("CARGO_BIN_EXE_hdinsight-topic-operator"))
        .args(args)
        .arg("--endpoint")
        .arg(emu.base_url())
        .arg("--authority")
        .arg(emu.base_url())
        .arg("--tenant")
        .arg(emu.tenant_id())
        .arg("--client-id")
        .arg(CLIENT)
        .arg("--client-secret-file")
        .arg(&secret_file)
        .arg("--ca-file")
        .arg(&ca_file)
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_each_step_and_the_precise_failure() {
    let dir = tempfile::tempdir().expect("dir");
    let emu = emulator(dir.path(), true).await;
    let (ok, out, err) = run(&["check"], &emu, dir.path(), SECRET);
    assert!(ok, "{out}{err}");
    assert!(out.contains("[ok]   token"), "{out}");
    assert!(
        out.contains("GET /v1/metadata/brokers: 3 brokers (1001, 1002, 1003)"),
        "{out}"
    );
    assert!(out.contains("GET /v1/metadata/topics: 0 topics"), "{out}");

    let (ok, out, err) = run(&["check"], &emu, dir.path(), "wrong-secret");
    assert!(!ok);
    assert!(
        out.contains("[FAIL] token") && out.contains("AADSTS7000215"),
        "{out}"
    );
    assert!(out.contains("hint: the client secret is wrong"), "{out}");
    assert!(!out.contains("wrong-secret") && !err.contains("wrong-secret"));

    let denied = emulator(&dir.path().join("denied"), false).await;
    let (ok, out, _) = run(&["check"], &denied, &dir.path().join("denied"), SECRET);
    assert!(!ok);
    assert!(out.contains("[ok]   token"), "{out}");
    assert!(out.contains("security group"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_prints_a_manifest_per_topic_with_observed_sizes() {
    let dir = tempfile::tempdir().expect("dir");
    let emu = emulator(dir.path(), true).await;
    emu.control()
        .create_topic_out_of_band("orders", 6, 3)
        .expect("created");
    emu.control()
        .create_topic_out_of_band("Legacy_Events", 2, 2)
        .expect("created");
    let (ok, out, err) = run(
        &["import", "--namespace", "kafka", "--proxy-ref", "hdi"],
        &emu,
        dir.path(),
        SECRET,
    );
    assert!(ok, "{out}{err}");
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&out)
        .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
        .collect();
    assert_eq!(docs.len(), 2, "{out}");
    let orders = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "orders")
        .expect("orders manifest");
    assert_eq!(orders["spec"]["partitions"], 6);
    assert_eq!(orders["spec"]["replicationFactor"], 3);
    assert_eq!(orders["spec"]["managementPolicy"], "Observe");
    assert_eq!(orders["spec"]["proxyRef"]["name"], "hdi");
    let legacy = docs
        .iter()
        .find(|d| d["spec"]["topicName"] == "Legacy_Events")
        .expect("legacy manifest");
    let name = legacy["metadata"]["name"].as_str().unwrap_or_default();
    assert!(name.starts_with("legacy-events-"), "{name}");
}
