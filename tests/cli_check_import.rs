//! `check`, `import`, `produce` and `consume` of the operator binary against the HDInsight
//! emulator (no Kubernetes needed: the direct flags), also as the kubectl plugin.

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
    let mut command = Command::new(env!("CARGO_BIN_EXE_hdinsight-topic-operator"));
    command.args(args);
    run_command(command, emu, dir, secret)
}

/// Runs `command` with the direct connection flags for `emu` appended.
fn run_command(
    mut command: Command,
    emu: &RunningEmulator,
    dir: &std::path::Path,
    secret: &str,
) -> (bool, String, String) {
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, format!("{secret}\n")).expect("secret file");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, emu.ca_pem().unwrap_or_default()).expect("ca file");
    let out = command
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
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&out).expect("yaml");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_go_through_the_proxy() {
    let dir = tempfile::tempdir().expect("dir");
    let emu = emulator(dir.path(), true).await;
    emu.control()
        .create_topic_out_of_band("orders", 2, 3)
        .expect("created");
    for (key, value, partition) in [
        ("k1", "first", "0"),
        ("k2", "second\tline", "1"),
        ("k3", "third", "0"),
    ] {
        let (ok, out, err) = run(
            &[
                "produce",
                "--topic",
                "orders",
                "--key",
                key,
                "--value",
                value,
                "--partition",
                partition,
            ],
            &emu,
            dir.path(),
            SECRET,
        );
        assert!(ok, "{out}{err}");
        assert_eq!(out, "produced 1 record to orders\n");
    }
    // Everything, partition by partition, from the earliest offset.
    let (ok, out, err) = run(&["consume", "--topic", "orders"], &emu, dir.path(), SECRET);
    assert!(ok, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "0\t0\t\"k1\"\t\"first\"",
            "0\t1\t\"k3\"\t\"third\"",
            "1\t0\t\"k2\"\t\"second\\tline\"",
        ],
        "{out}"
    );
    // One partition, from an offset, bounded by --count.
    let (ok, out, err) = run(
        &[
            "consume",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--offset",
            "1",
            "--count",
            "1",
        ],
        &emu,
        dir.path(),
        SECRET,
    );
    assert!(ok, "{out}{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["0\t1\t\"k3\"\t\"third\""]
    );
    let (ok, _, err) = run(
        &["consume", "--topic", "orders", "--partition", "7"],
        &emu,
        dir.path(),
        SECRET,
    );
    assert!(!ok);
    assert!(err.contains("orders has no partition 7"), "{err}");
    // The records really reached the cluster's log: the emulator's own count per partition.
    let stats = emu.control().stats();
    assert_eq!(stats.requests["produce"].get(&200), Some(&3), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_with_a_topic_writes_a_record_and_reads_it_back() {
    let dir = tempfile::tempdir().expect("dir");
    let emu = emulator(dir.path(), true).await;
    emu.control()
        .create_topic_out_of_band("smoke", 1, 3)
        .expect("created");
    let (ok, out, err) = run(&["check", "--topic", "smoke"], &emu, dir.path(), SECRET);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("[ok]   POST /v1/producer/topics/smoke: 1 record to partition 0"),
        "{out}"
    );
    assert!(
        out.contains(
            "[ok]   GET /v1/consumer/topics/smoke/partitions/0: read the record back at offset 0"
        ),
        "{out}"
    );
    // A second check reads its own record, not the first one.
    let (ok, out, err) = run(&["check", "--topic", "smoke"], &emu, dir.path(), SECRET);
    assert!(ok, "{out}{err}");
    assert!(out.contains("read the record back at offset 1"), "{out}");

    let (ok, out, _) = run(&["check", "--topic", "absent"], &emu, dir.path(), SECRET);
    assert!(!ok);
    assert!(
        out.contains("[FAIL] GET /v1/metadata/topics/absent/partitions"),
        "{out}"
    );
}

#[path = "require/mod.rs"]
mod require;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_as_a_kubectl_plugin() {
    let Some(kubectl_path) = require::require_tool("kubectl", Some("HDI_TEST_KUBECTL")) else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let emu = emulator(dir.path(), true).await;
    emu.control()
        .create_topic_out_of_band("orders", 1, 3)
        .expect("created");
    // Installed as documented: the binary under the plugin's name on PATH.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::fs::copy(
        env!("CARGO_BIN_EXE_hdinsight-topic-operator"),
        bin.join("kubectl-hdinsight"),
    )
    .expect("plugin installed");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubectl = |args: &[&str]| {
        let mut c = Command::new(&kubectl_path);
        c.args(args).env("PATH", &path);
        c
    };
    let listed = kubectl(&["plugin", "list"]).output().expect("kubectl runs");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("kubectl-hdinsight"),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let (ok, out, err) = run_command(
        kubectl(&[
            "hdinsight",
            "produce",
            "--topic",
            "orders",
            "--value",
            "via-kubectl",
        ]),
        &emu,
        dir.path(),
        SECRET,
    );
    assert!(ok, "{out}{err}");
    let (ok, out, err) = run_command(
        kubectl(&["hdinsight", "consume", "--topic", "orders"]),
        &emu,
        dir.path(),
        SECRET,
    );
    assert!(ok, "{out}{err}");
    assert_eq!(out, "0\t0\tnull\t\"via-kubectl\"\n");
    // Without a command the plugin explains itself instead of starting the controllers.
    let bare = kubectl(&["hdinsight"]).output().expect("kubectl runs");
    assert!(!bare.status.success());
    let help = String::from_utf8_lossy(&bare.stdout);
    assert!(help.contains("Usage: kubectl hdinsight"), "{help}");
    for command in ["check", "import", "produce", "consume"] {
        assert!(help.contains(command), "{help}");
    }
}

/// The direct flags for `emu`, without a CA file: trust must come from elsewhere.
fn check_without_ca_file(emu: &RunningEmulator, dir: &std::path::Path) -> Command {
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("secret file");
    let mut c = Command::new(env!("CARGO_BIN_EXE_hdinsight-topic-operator"));
    c.arg("check")
        .args(["--endpoint", &emu.base_url()])
        .args(["--authority", &emu.base_url()])
        .args(["--tenant", emu.tenant_id()])
        .args(["--client-id", CLIENT])
        .arg("--client-secret-file")
        .arg(&secret_file)
        .env_remove("SSL_CERT_DIR")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_trust_store_is_trusted_beside_the_compiled_in_roots() {
    let dir = tempfile::tempdir().expect("dir");
    let emu = emulator(dir.path(), true).await;
    // A corporate CA installed in the system store: SSL_CERT_FILE names it.
    let system_ca = dir.path().join("system-ca.pem");
    std::fs::write(&system_ca, emu.ca_pem().unwrap_or_default()).expect("ca file");
    let out = check_without_ca_file(&emu, dir.path())
        .env("SSL_CERT_FILE", &system_ca)
        .output()
        .expect("binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("[ok]   token"), "{text}");
    // A system store without that CA: the emulator's certificate is not trusted.
    let other = tempfile::tempdir().expect("dir");
    let other_emu = emulator(other.path(), true).await;
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, other_emu.ca_pem().unwrap_or_default()).expect("ca file");
    let out = check_without_ca_file(&emu, dir.path())
        .env("SSL_CERT_FILE", &other_ca)
        .output()
        .expect("binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("[FAIL] token"), "{text}");
}

/// A minimal HTTP CONNECT proxy on 127.0.0.1 that records the targets it was asked for and
/// tunnels the bytes.
async fn connect_proxy() -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut client = BufReader::new(client);
                let mut request = String::new();
                if client.read_line(&mut request).await.is_err() {
                    return;
                }
                loop {
                    let mut header = String::new();
                    match client.read_line(&mut header).await {
                        Ok(n) if n > 2 => continue,
                        _ => break,
                    }
                }
                let Some(target) = request
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split_whitespace().next())
                    .map(str::to_string)
                else {
                    return;
                };
                log.lock().expect("log").push(target.clone());
                // Loopback only: this proxy never connects anywhere else.
                if !target.starts_with("127.") {
                    return;
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let mut client = client.into_inner();
                if client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_proxy_is_honoured_and_no_proxy_bypasses_it() {
    let dir = tempfile::tempdir().expect("dir");
    let emu = emulator(dir.path(), true).await;
    let (proxy, seen) = connect_proxy().await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, emu.ca_pem().unwrap_or_default()).expect("ca file");
    let out = check_without_ca_file(&emu, dir.path())
        .arg("--ca-file")
        .arg(&ca_file)
        .env("HTTPS_PROXY", format!("http://{proxy}"))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .expect("binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = emu.addr().to_string();
    let tunnels = seen.lock().expect("log").clone();
    // The token request and the proxy calls went through the tunnel (a connection pool may
    // reuse one tunnel for several requests).
    assert!(!tunnels.is_empty(), "no CONNECT was made");
    assert!(tunnels.iter().all(|t| *t == target), "{tunnels:?}");

    seen.lock().expect("log").clear();
    let out = check_without_ca_file(&emu, dir.path())
        .arg("--ca-file")
        .arg(&ca_file)
        .env("HTTPS_PROXY", format!("http://{proxy}"))
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        seen.lock().expect("log").len(),
        0,
        "NO_PROXY was not honoured"
    );
}
