//! End-to-end harness: both emulators in this process (through the sandbox's setup), the
//! operator binary as a child process with short timings, and helpers to wait for conditions.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdinsight_topic_operator::crd::{KafkaRestProxy, KafkaTopic, find_condition};
use kube::api::{Api, ListParams, PostParams};
use sandbox::env::{CLIENT_SECRET, ClusterSettings, Env, NAMESPACE};

/// A running operator process; killed on drop.
pub struct Operator {
    pub child: Child,
    pub log: Arc<Mutex<String>>,
}

impl Operator {
    pub fn logs(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        None
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Timings short enough for tests.
pub const OPERATOR_ENV: &[(&str, &str)] = &[
    ("HDI_RESYNC_INTERVAL", "3s"),
    ("HDI_VISIBILITY_TIMEOUT", "20s"),
    ("HDI_RECREATE_GRACE", "2s"),
    ("HDI_LIST_FRESHNESS", "300ms"),
    ("HDI_UNCERTAIN_RETRY", "2s"),
    ("HDI_METRICS_ADDR", "127.0.0.1:0"),
    ("HDI_HEALTH_ADDR", "127.0.0.1:0"),
    ("HDI_LEASE_DURATION", "3s"),
    // The emulators listen on loopback addresses, which the default allowlists refuse.
    ("HDI_ALLOWED_ENDPOINT_HOSTS", sandbox::env::LOOPBACK_HOSTS),
    ("HDI_ALLOWED_AUTHORITY_HOSTS", sandbox::env::LOOPBACK_HOSTS),
    // Trace level for our code: the leak checks read everything it could ever log.
    (
        "HDI_LOG_LEVEL",
        "hdinsight_topic_operator=trace,kube=info,info",
    ),
];

/// Starts the operator binary against `env`, with `extra` environment on top of the defaults.
pub fn spawn_operator(env: &Env, extra: &[(&str, &str)]) -> Operator {
    spawn_operator_without(env, extra, &[])
}

/// [`spawn_operator`], leaving the variables `without` unset (their defaults apply).
pub fn spawn_operator_without(env: &Env, extra: &[(&str, &str)], without: &[&str]) -> Operator {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hdinsight-topic-operator"));
    cmd.arg("run")
        .env("KUBECONFIG", &env.kubeconfig)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in OPERATOR_ENV.iter().chain(extra) {
        if !without.contains(k) {
            cmd.env(k, v);
        }
    }
    let mut child = cmd.spawn().expect("the operator binary starts");
    let log = Arc::new(Mutex::new(String::new()));
    if let Some(stderr) = child.stderr.take() {
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("E2E_SHOW_LOGS").is_some() {
                    eprintln!("operator: {line}");
                }
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
    }
    Operator { child, log }
}

/// Both emulators with CRDs, namespace, Secrets and the KafkaRestProxy installed.
pub async fn start(cluster: ClusterSettings) -> (tempfile::TempDir, Env) {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = Env::start(dir.path(), &cluster)
        .await
        .expect("emulators start");
    env.install(CLIENT_SECRET).await.expect("setup applied");
    (dir, env)
}

pub fn topics(env: &Env) -> Api<KafkaTopic> {
    Api::namespaced(env.client.clone(), NAMESPACE)
}

pub fn proxies(env: &Env) -> Api<KafkaRestProxy> {
    Api::namespaced(env.client.clone(), NAMESPACE)
}

/// A KafkaTopic from a JSON spec.
pub fn topic(name: &str, spec: serde_json::Value) -> KafkaTopic {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "kafka.hdinsight.dev/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }))
    .expect("valid KafkaTopic")
}

pub async fn create(env: &Env, t: &KafkaTopic) {
    topics(env)
        .create(&PostParams::default(), t)
        .await
        .expect("KafkaTopic created");
}

/// The condition `type_` of a topic as (status, reason, message).
pub fn condition(t: &KafkaTopic, type_: &str) -> Option<(String, String, String)> {
    let c = find_condition(&t.status.as_ref()?.conditions, type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

pub fn ready(t: &KafkaTopic) -> Option<(String, String, String)> {
    condition(t, "Ready")
}

/// Polls the topic until `pred` holds; panics with the last state after `timeout`.
pub async fn wait_topic(
    env: &Env,
    name: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&KafkaTopic) -> bool,
) -> KafkaTopic {
    let api = topics(env);
    let deadline = Instant::now() + timeout;
    loop {
        let t = api.get_opt(name).await.ok().flatten();
        if let Some(t) = &t
            && pred(t)
        {
            return t.clone();
        }
        if Instant::now() > deadline {
            panic!(
                "{name}: {what} not reached within {timeout:?}; last status: {}",
                t.and_then(|t| t.status)
                    .map(|s| serde_json::to_string_pretty(&s).unwrap_or_default())
                    .unwrap_or_else(|| "none".into())
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn wait_ready(env: &Env, name: &str) -> KafkaTopic {
    wait_topic(env, name, Duration::from_secs(40), "Ready=True", |t| {
        ready(t).is_some_and(|(s, _, _)| s == "True")
    })
    .await
}

pub async fn wait_reason(env: &Env, name: &str, reason: &str) -> KafkaTopic {
    wait_topic(env, name, Duration::from_secs(40), reason, |t| {
        ready(t).is_some_and(|(_, r, _)| r == reason)
    })
    .await
}

/// Events about a KafkaTopic, as (type, reason, note).
pub async fn events_of(env: &Env, name: &str) -> Vec<(String, String, String)> {
    use k8s_openapi::api::events::v1::Event;
    let api: Api<Event> = Api::namespaced(env.client.clone(), NAMESPACE);
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

/// Asserts that no credential ever reached the operator's output.
pub fn assert_no_secrets(logs: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !logs.contains(s),
            "a secret value appears in the operator's logs"
        );
    }
    // Access tokens are JWTs: base64url JSON headers start with "eyJ".
    assert!(
        !logs.contains("eyJ"),
        "something that looks like a token appears in the operator's logs"
    );
}

/// The address the operator logged for `which` ("health_addr" or "metrics_addr").
pub fn logged_addr(op: &Operator, which: &str) -> Option<String> {
    let logs = op.logs();
    let plain: String = strip_ansi(&logs);
    let at = plain.find(&format!("{which}="))? + which.len() + 1;
    Some(
        plain[at..]
            .split(|c: char| c.is_whitespace())
            .next()?
            .to_string(),
    )
}

/// Waits (up to 20 s) until the operator reports ready on `/readyz`; returns its health and
/// metrics addresses.
pub async fn wait_operator_ready(op: &Operator) -> (String, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let (Some(health), Some(metrics)) = (
            logged_addr(op, "health_addr"),
            logged_addr(op, "metrics_addr"),
        ) && http_get(&health, "/readyz").await.0 == 200
        {
            return (health, metrics);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the operator did not become ready: {}",
            op.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// GET `http://{addr}{path}` → (status, body), with a plain HTTP/1.0 request.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
