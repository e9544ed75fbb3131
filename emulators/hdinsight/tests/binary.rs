//! The `hdinsight-emulator` binary: YAML config, the "listening on" line, SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const CONFIG: &str = r#"
tenantId: 0000aaaa-0000-0000-0000-000000000001
clusterGroupId: group-1
apps:
  - clientId: app-1
    clientSecret: s3cret
    groups: [group-1]
brokers: 5
visibilityDelayMs: 0
consumeShape: array
leaderlessAs: minusOne
"#;

#[test]
fn binary_prints_its_url_serves_the_config_and_stops_on_sigterm() {
    let dir = common::temp_dir();
    let config = dir.join("emulator.yaml");
    std::fs::write(&config, CONFIG).expect("write the config");
    let state = dir.join("state.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hdinsight-emulator"))
        .args(["--listen", "127.0.0.1:0", "--plain-http", "--config"])
        .arg(&config)
        .arg("--state-file")
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let brokers = runtime.block_on(async {
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!(
                "{url}/0000aaaa-0000-0000-0000-000000000001/oauth2/v2.0/token"
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "app-1"),
                ("client_secret", "s3cret"),
                ("scope", common::SCOPE),
            ])
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("JSON");
        let token = token["access_token"].as_str().expect("a token").to_string();
        let created = http
            .put(format!("{url}/v1/topics/kept"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answers");
        assert_eq!(created.status().as_u16(), 200);
        let brokers: Value = http
            .get(format!("{url}/v1/metadata/brokers"))
            .bearer_auth(token)
            .send()
            .await
            .expect("answers")
            .json()
            .await
            .expect("JSON");
        brokers
    });
    assert_eq!(brokers["brokers"].as_array().map(Vec::len), Some(5));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            assert!(exit.success(), "exit status {exit}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the emulator did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state file written"))
            .expect("JSON state");
    let names: Vec<&str> = saved
        .as_array()
        .expect("a topic list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"kept"), "{saved}");
}

#[test]
fn binary_refuses_a_bad_config_and_a_missing_transport() {
    let dir = common::temp_dir();
    let config = dir.join("bad.yaml");
    std::fs::write(&config, "brokers: many\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_hdinsight-emulator"))
        .args(["--listen", "127.0.0.1:0", "--plain-http", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad.yaml"));
    std::fs::write(&config, "brokrs: 3\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_hdinsight-emulator"))
        .args(["--listen", "127.0.0.1:0", "--plain-http", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(!output.status.success(), "a misspelt key is refused");
    let output = Command::new(env!("CARGO_BIN_EXE_hdinsight-emulator"))
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--plain-http"));
}

#[test]
fn authority_listen_puts_entra_on_its_own_port() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hdinsight-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--authority-listen",
            "127.0.0.1:0",
            "--plain-http",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut next = || lines.next().and_then(Result::ok).unwrap_or_default();
    let (first, second) = (next(), next());
    let base = first.strip_prefix("listening on ").map(str::to_string);
    let authority = second.strip_prefix("authority on ").map(str::to_string);
    let _ = child.kill();
    let _ = child.wait();
    let (base, authority) = (
        base.unwrap_or_else(|| panic!("unexpected first line {first:?}")),
        authority.unwrap_or_else(|| panic!("unexpected second line {second:?}")),
    );
    assert!(authority.starts_with("http://127.0.0.1:"), "{authority}");
    assert_ne!(base, authority);
}
