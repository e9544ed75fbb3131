//! The `/_emulator/` control API over HTTP, and the binary.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube_emulator::{KubeEmulatorConfig, KubeStats, RunningKube};
use serde_json::{Value, json};

/// One HTTP/1.1 request on a fresh connection; returns the status code and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let (code, _, body) = http_full(addr, method, path, body, "");
    (code, body)
}

/// Like [`http`], with extra header lines; also returns the response head.
fn http_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout set");
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request written");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or((response.as_str(), ""));
    (code, head.to_string(), body.to_string())
}

async fn http_async(
    addr: SocketAddr,
    method: &'static str,
    path: &'static str,
    body: Option<String>,
) -> (u16, String) {
    tokio::task::spawn_blocking(move || http(addr, method, path, body.as_deref()))
        .await
        .expect("the request task finishes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_api_reports_stats_and_sets_faults() {
    let config = KubeEmulatorConfig {
        tls: false,
        token: Some("t0ken".into()),
        ..test_config()
    };
    let (kube, client) = start_with(config).await;
    let addr = kube.addr();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}})).expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("created");

    // The control API needs no token; the Kubernetes API does.
    let (code, body) = http_async(addr, "GET", "/_emulator/stats", None).await;
    assert_eq!(code, 200);
    let stats: KubeStats = serde_json::from_str(&body).expect("stats JSON");
    assert_eq!(stats.writes_to("configmaps", None), 1);
    assert_eq!(stats.requests.get("create"), Some(&1));
    let (code, body) = http_async(addr, "GET", "/api/v1/namespaces/default/configmaps", None).await;
    assert_eq!(code, 401, "{body}");

    let faults = json!({"write_error_status": 429, "write_error_probability": 1.0, "resources": ["configmaps"], "latency_ms": 0});
    let (code, _) = http_async(addr, "POST", "/_emulator/faults", Some(faults.to_string())).await;
    assert_eq!(code, 200);
    // Raw HTTP: kube-rs itself retries 429s.
    let (code, head, body) = tokio::task::spawn_blocking(move || {
        http_full(
            addr,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(r#"{"metadata":{"name":"b"}}"#),
            "Authorization: Bearer t0ken\r\n",
        )
    })
    .await
    .expect("the request task finishes");
    assert_eq!(code, 429, "{body}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    let status: Value = serde_json::from_str(&body).expect("a Status");
    assert_eq!(status["reason"], "TooManyRequests");
    let mut other = cm.clone();
    other.metadata.name = Some("b".into());
    let (code, _) = http_async(addr, "DELETE", "/_emulator/faults", None).await;
    assert_eq!(code, 200);
    api.create(&PostParams::default(), &other)
        .await
        .expect("faults cleared");

    let (code, _) = http_async(addr, "POST", "/_emulator/compact", None).await;
    assert_eq!(code, 200);
    let (code, _) = http_async(addr, "POST", "/_emulator/drop-watches", None).await;
    assert_eq!(code, 200);
    let (code, body) =
        http_async(addr, "POST", "/_emulator/faults", Some("{not json".into())).await;
    assert_eq!(code, 400, "{body}");
    let (code, _) = http_async(addr, "GET", "/_emulator/nothing", None).await;
    assert_eq!(code, 404);
    kube.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_status_errors() {
    let config = KubeEmulatorConfig {
        tls: false,
        ..test_config()
    };
    let kube = RunningKube::start(config, loopback())
        .await
        .expect("starts");
    let addr = kube.addr();
    let cases: [(&'static str, &'static str, Option<&str>, u16); 6] = [
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some("{broken"),
            400,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some("[1,2]"),
            400,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20(b",
            None,
            400,
        ),
        ("GET", "/apis/nope.example.com/v1/things", None, 404),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=abc",
            None,
            400,
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/configmaps",
            Some("{}"),
            405,
        ),
    ];
    for (method, path, body, want) in cases {
        let (code, text) = http_async(addr, method, path, body.map(String::from)).await;
        assert_eq!(code, want, "{method} {path}: {text}");
        let status: Value = serde_json::from_str(&text).expect("a Status body");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["code"], want);
    }
    kube.shutdown().await;
}

#[test]
fn the_binary_prints_its_url_writes_a_kubeconfig_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("kube-emulator-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let kubeconfig = dir.join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--plain-http",
            "--history-size",
            "50",
            "--kubeconfig-out",
        ])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the URL is printed");
    let url = line.trim();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let written = std::fs::read_to_string(&kubeconfig).expect("the kubeconfig is written");
    assert!(written.contains(&format!("server: {url}")), "{written}");
    let (code, body) = http(addr, "GET", "/version", None);
    assert_eq!(code, 200);
    assert!(body.contains("\"major\":\"1\""), "{body}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("the binary exits");
    assert!(exit.success(), "a clean exit on SIGTERM: {exit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_binary_authorizes_with_rbac_and_issues_tokens_for_its_issuer() {
    let dir = std::env::temp_dir().join(format!("kube-emulator-rbac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let kubeconfig = dir.join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--plain-http",
            "--rbac",
            "--sa-issuer",
            "https://issuer.example",
            "--kubeconfig-out",
        ])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the URL is printed");
    let addr: SocketAddr = line
        .trim()
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let written = std::fs::read_to_string(&kubeconfig).expect("the kubeconfig is written");
    let token = written
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .map(|t| t.trim_matches('"').to_string())
        .expect("the kubeconfig carries a token");
    assert!(
        token.starts_with("admin-") && token.len() > 20,
        "a generated admin token"
    );
    let admin = format!("Authorization: Bearer {token}\r\n");

    // Without credentials: system:anonymous, who may read /version and nothing else.
    assert_eq!(http(addr, "GET", "/version", None).0, 200);
    let (code, body) = http(addr, "GET", "/api/v1/namespaces", None);
    assert_eq!(code, 403);
    let status: Value = serde_json::from_str(&body).expect("a Status");
    assert_eq!(
        status["message"],
        "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    let (code, _, _) = http_full(
        addr,
        "GET",
        "/api/v1/namespaces",
        None,
        "Authorization: Bearer wrong\r\n",
    );
    assert_eq!(code, 401);
    let (code, _, _) = http_full(addr, "GET", "/api/v1/namespaces", None, &admin);
    assert_eq!(code, 200);

    let (code, _, body) = http_full(
        addr,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        Some(r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"op"}}"#),
        &admin,
    );
    assert_eq!(code, 201, "{body}");
    let (code, _, body) = http_full(
        addr,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/op/token",
        Some(r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{}}"#),
        &admin,
    );
    assert_eq!(code, 201, "{body}");
    let issued: Value = serde_json::from_str(&body).expect("a TokenRequest");
    let sa_token = issued["status"]["token"].as_str().expect("a token");
    let claims = {
        use base64::Engine;
        let payload = sa_token.split('.').nth(1).expect("a JWT");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url");
        serde_json::from_slice::<Value>(&bytes).expect("claims")
    };
    assert_eq!(claims["iss"], "https://issuer.example");
    assert_eq!(
        issued["spec"]["audiences"],
        json!(["https://issuer.example"])
    );
    let sa = format!("Authorization: Bearer {sa_token}\r\n");
    let (code, _, body) = http_full(addr, "GET", "/api/v1/namespaces/default/secrets", None, &sa);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("system:serviceaccount:default:op"), "{body}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    assert!(child.wait().expect("the binary exits").success());
    let _ = std::fs::remove_dir_all(&dir);
}
