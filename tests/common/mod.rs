//! End-to-end harness: both emulators in this process (through the sandbox's setup), the
//! operator binary as a child process with short timings, and helpers to wait for conditions.
//!
//! The Kubernetes emulator runs with RBAC: the objects `helm template` renders from the chart
//! (ServiceAccount, ClusterRole/Roles and bindings, the leader-election Role) are applied, and
//! the operator authenticates as the chart's ServiceAccount with a token from TokenRequest, so
//! a permission the chart lacks fails a test. helm is found through `HDI_TEST_HELM` or `PATH`; without
//! it the suite fails when `CI` is set, and elsewhere runs without RBAC after saying so
//! (through [`require`], which every test needing an external tool uses).

#![allow(dead_code)]

#[path = "../require/mod.rs"]
pub mod require;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdinsight_topic_operator::crd::{KafkaRestProxy, KafkaTopic, find_condition};
use kube::api::{Api, ListParams, PostParams};
use sandbox::env::{CLIENT_SECRET, ClusterSettings, Env, NAMESPACE, create_or_keep, repo_root};

/// The release the chart is rendered as, and its namespace (where the operator's
/// ServiceAccount and Lease live).
pub const RELEASE: &str = "hto";
pub const RELEASE_NAMESPACE: &str = "kafka-system";

/// What the harness takes from the rendered chart.
pub struct RenderedChart {
    /// Every rendered object (JSON).
    pub docs: Vec<serde_json::Value>,
    /// The operator's ServiceAccount.
    pub service_account: String,
    /// The Lease name the Deployment passes (`--lease-name=`).
    pub lease_name: String,
}

fn helm_binary() -> Option<PathBuf> {
    require::find_tool("helm", Some("HDI_TEST_HELM"))
}

fn render_chart(helm: &std::path::Path, extra: &[&str]) -> RenderedChart {
    let chart = repo_root().join("charts/hdinsight-topic-operator");
    let out = Command::new(helm)
        .arg("template")
        .arg(RELEASE)
        .arg(&chart)
        .args(["--namespace", RELEASE_NAMESPACE])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("running {} failed: {e}", helm.display()));
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut docs = Vec::new();
    let values: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&text).expect("helm renders valid YAML");
    for value in values {
        if !value.is_null() {
            docs.push(value);
        }
    }
    let of_kind = |kind: &'static str| {
        docs.iter()
            .filter(move |d| d.get("kind").and_then(|k| k.as_str()) == Some(kind))
    };
    let service_account = of_kind("ServiceAccount")
        .find_map(|d| d.pointer("/metadata/name")?.as_str().map(String::from))
        .expect("the chart renders a ServiceAccount");
    let lease_name = of_kind("Deployment")
        .flat_map(|d| {
            d.pointer("/spec/template/spec/containers/0/args")
                .and_then(|a| a.as_array())
                .cloned()
                .unwrap_or_default()
        })
        .find_map(|a| a.as_str()?.strip_prefix("--lease-name=").map(String::from))
        .expect("the Deployment passes --lease-name");
    RenderedChart {
        docs,
        service_account,
        lease_name,
    }
}

/// The chart rendered once per test binary; None (outside CI) when helm is not installed.
pub fn rendered_chart() -> Option<&'static RenderedChart> {
    static CHART: OnceLock<Option<RenderedChart>> = OnceLock::new();
    CHART
        .get_or_init(|| match helm_binary() {
            Some(helm) => Some(render_chart(&helm, &[])),
            None => {
                require::degrade(
                    "helm is not installed (put it on PATH or set HDI_TEST_HELM): the end-to-end \
                     tests of this binary run WITHOUT the chart's RBAC",
                );
                None
            }
        })
        .as_ref()
}

/// The chart rendered with extra `helm template` arguments (e.g. `--set`), not cached; None
/// when [`rendered_chart`] is None.
pub fn render_chart_with(extra: &[&str]) -> Option<RenderedChart> {
    rendered_chart()?;
    helm_binary().map(|helm| render_chart(&helm, extra))
}

/// The Lease the operator's leader election uses (in [`RELEASE_NAMESPACE`]).
pub fn lease_name() -> String {
    rendered_chart()
        .map(|c| c.lease_name.clone())
        .unwrap_or_else(|| "hdinsight-topic-operator".into())
}

/// The kubeconfig the operator runs with: the chart's ServiceAccount under RBAC.
const OPERATOR_KUBECONFIG: &str = "operator.kubeconfig";

/// A running operator process; killed on drop. Under the chart's RBAC, dropping it fails the
/// test if the API server ever denied the operator a request (the chart lacks a permission),
/// unless [`Operator::expect_denials`] was called.
pub struct Operator {
    pub child: Child,
    pub log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    denials_expected: bool,
}

/// The log lines of API requests the server denied (its 403 message).
pub fn denials(logs: &str) -> Vec<&str> {
    logs.lines()
        .filter(|l| l.contains("is forbidden: User"))
        .collect()
}

impl Operator {
    pub fn logs(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The output pipe is closed now: collect the last lines.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// This test takes a permission away on purpose: denials do not fail it.
    pub fn expect_denials(&mut self) {
        self.denials_expected = true;
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
        if std::thread::panicking() || self.denials_expected || rendered_chart().is_none() {
            return;
        }
        let logs = self.logs();
        let denied = denials(&logs);
        assert!(
            denied.is_empty(),
            "the API server denied the operator requests under the chart's RBAC:\n{}",
            denied.join("\n")
        );
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
    let kubeconfig = if rendered_chart().is_some() {
        env.dir.join(OPERATOR_KUBECONFIG)
    } else {
        env.kubeconfig.clone()
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hdinsight-topic-operator"));
    cmd.arg("run")
        .env("KUBECONFIG", &kubeconfig)
        // As the chart's Deployment: the Lease lives in the release namespace, under its name.
        .env("POD_NAMESPACE", RELEASE_NAMESPACE)
        .env("HDI_LEASE_NAME", lease_name())
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
    let mut reader = None;
    if let Some(stderr) = child.stderr.take() {
        let sink = log.clone();
        reader = Some(std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("E2E_SHOW_LOGS").is_some() {
                    eprintln!("operator: {line}");
                }
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        }));
    }
    Operator {
        child,
        log,
        reader,
        denials_expected: false,
    }
}

/// Both emulators with CRDs, namespace, Secrets and the KafkaRestProxy installed, the release
/// namespace, and (under RBAC) the chart's RBAC objects and the operator's kubeconfig.
pub async fn start(cluster: ClusterSettings) -> (tempfile::TempDir, Env) {
    start_with_chart(cluster, rendered_chart()).await
}

/// Like [`start`] with the RBAC objects of `chart` (None: no RBAC).
pub async fn start_with_chart(
    cluster: ClusterSettings,
    chart: Option<&RenderedChart>,
) -> (tempfile::TempDir, Env) {
    start_emulators(cluster, chart, true).await
}

/// Both emulators, the release namespace and (under RBAC) the chart's RBAC objects and the
/// operator's kubeconfig; with `install`, also the CRDs, the namespace, the Secrets and the
/// KafkaRestProxy ([`Env::install`]).
pub async fn start_emulators(
    cluster: ClusterSettings,
    chart: Option<&RenderedChart>,
    install: bool,
) -> (tempfile::TempDir, Env) {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = if chart.is_some() {
        Env::start_rbac(dir.path(), &cluster).await
    } else {
        Env::start(dir.path(), &cluster).await
    }
    .expect("emulators start");
    if install {
        env.install(CLIENT_SECRET).await.expect("setup applied");
    }
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    let release_ns = serde_json::from_value(serde_json::json!({
        "metadata": {"name": RELEASE_NAMESPACE}
    }))
    .expect("a Namespace");
    create_or_keep(&namespaces, &release_ns)
        .await
        .expect("the release namespace");
    if let Some(chart) = chart {
        let applied = env.apply_rbac(&chart.docs).await.expect("the chart's RBAC");
        assert!(
            applied >= 3,
            "the chart rendered only {applied} RBAC objects"
        );
        let path = env
            .service_account_kubeconfig(RELEASE_NAMESPACE, &chart.service_account)
            .await
            .expect("a token for the operator's ServiceAccount");
        std::fs::rename(&path, env.dir.join(OPERATOR_KUBECONFIG))
            .expect("the operator's kubeconfig");
    }
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

/// Events about a KafkaTopic, as (type, reason, note). A failed list fails the test: an empty
/// answer must mean "no Events", never "could not read them".
pub async fn events_of(env: &Env, name: &str) -> Vec<(String, String, String)> {
    use k8s_openapi::api::events::v1::Event;
    let api: Api<Event> = Api::namespaced(env.client.clone(), NAMESPACE);
    api.list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("listing the Events about {name}: {e}"))
        .items
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
    // Generous: a debug build starting beside other test binaries on a loaded machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
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

/// The value of the sample `name{labels}` (labels exactly as exported, e.g.
/// `kind="KafkaTopic"`) on the operator's `/metrics`; 0 when not exported yet.
pub async fn metric(metrics_addr: &str, name: &str, labels: &str) -> f64 {
    let (status, body) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200, "GET /metrics: {body}");
    let want = format!("hdinsight_topic_operator_{name}{{{labels}}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(want.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
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

/// Creates `n` topics `prefix-000…` (two partitions each).
pub async fn apply_many(env: &Env, prefix: &str, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}-{i:03}");
        create(env, &topic(&name, serde_json::json!({"partitions": 2}))).await;
        names.push(name);
    }
    names
}

/// Waits until every topic is Ready=True and its status reports the current generation; fails
/// naming one that is not after `timeout`.
pub async fn all_ready(env: &Env, names: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let list = topics(env)
            .list(&Default::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let pending: Vec<_> = names
            .iter()
            .filter(|n| {
                !list.iter().any(|t| {
                    t.metadata.name.as_deref() == Some(n.as_str())
                        && ready(t).is_some_and(|r| r.0 == "True")
                        && t.status.as_ref().and_then(|s| s.observed_generation)
                            == t.metadata.generation
                })
            })
            .collect();
        if pending.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} topics not Ready after {timeout:?}, e.g. {:?}",
            pending.len(),
            list.iter()
                .find(|t| t.metadata.name.as_ref() == pending.first().copied())
                .map(|t| (&t.metadata.name, ready(t)))
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
