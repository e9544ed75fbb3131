//! Shared helpers: start an emulator, build kube-rs clients, load the repository's CRDs.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_emulator::{KubeEmulatorConfig, RunningKube};
use serde_json::json;

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("a valid socket address")
}

pub fn test_config() -> KubeEmulatorConfig {
    KubeEmulatorConfig {
        bookmark_interval: Duration::from_millis(200),
        ..KubeEmulatorConfig::default()
    }
}

pub async fn start() -> (RunningKube, kube::Client) {
    start_with(test_config()).await
}

pub async fn start_with(config: KubeEmulatorConfig) -> (RunningKube, kube::Client) {
    let kube = RunningKube::start(config, loopback())
        .await
        .expect("the emulator starts");
    let client = client_for(&kube).await;
    (kube, client)
}

pub async fn client_for(kube: &RunningKube) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&kube.kubeconfig_yaml()).expect("the kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig is usable");
    kube::Client::try_from(config).expect("a client")
}

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Creates the repository's CRDs (crds/*.yaml).
pub async fn install_crds(client: &kube::Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in ["kafkatopics.yaml", "kafkarestproxies.yaml"] {
        let text = std::fs::read_to_string(repo_dir().join("crds").join(file))
            .expect("the CRD file exists");
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("valid YAML");
        for value in docs {
            if value.is_null() {
                continue;
            }
            let crd: CustomResourceDefinition = serde_json::from_value(value).expect("a CRD");
            api.create(&PostParams::default(), &crd)
                .await
                .expect("the CRD is accepted");
        }
    }
}

pub fn topic_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kafka.hdinsight.dev", "v1alpha1", "KafkaTopic"),
        "kafkatopics",
    )
}

pub fn topics(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &topic_resource())
}

pub fn topic(name: &str, partitions: i64) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "kafka.hdinsight.dev/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": name},
        "spec": {"partitions": partitions, "replicationFactor": 3},
    }))
    .expect("a KafkaTopic")
}

pub async fn create_namespace(client: &kube::Client, name: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("a Namespace");
    api.create(&PostParams::default(), &ns)
        .await
        .expect("the namespace is created");
}

/// The API error of a failed call.
pub fn api_error<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// A test config with RBAC on.
pub fn rbac_config() -> KubeEmulatorConfig {
    KubeEmulatorConfig {
        rbac: true,
        ..test_config()
    }
}

/// Creates a ServiceAccount; returns its uid.
pub async fn create_service_account(client: &kube::Client, ns: &str, name: &str) -> String {
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("a ServiceAccount");
    api.create(&PostParams::default(), &sa)
        .await
        .expect("the ServiceAccount is created")
        .metadata
        .uid
        .expect("a uid")
}

/// A TokenRequest for a ServiceAccount (`audiences` empty: the API audiences).
pub async fn request_token(
    client: &kube::Client,
    ns: &str,
    name: &str,
    audiences: &[&str],
    expiration_seconds: Option<i64>,
) -> Result<k8s_openapi::api::authentication::v1::TokenRequest, kube::Error> {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
            expiration_seconds,
            ..Default::default()
        },
        ..Default::default()
    };
    api.create_token_request(name, &PostParams::default(), &request)
        .await
}

/// A client that presents `token`.
pub async fn client_with_token(kube: &RunningKube, token: &str) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&kube.kubeconfig_yaml_with_token(token))
        .expect("the kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("the kubeconfig is usable");
    kube::Client::try_from(config).expect("a client")
}

/// The claims of a JWT (not verified).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Applies a manifest (one object, JSON) through the dynamic API with the given client.
pub async fn create_object(client: &kube::Client, obj: serde_json::Value) {
    use kube::discovery::{ApiCapabilities, Scope};
    let api_version = obj["apiVersion"].as_str().expect("apiVersion").to_string();
    let kind = obj["kind"].as_str().expect("kind").to_string();
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let gvk = GroupVersionKind::gvk(group, version, &kind);
    let (resource, caps): (ApiResource, ApiCapabilities) =
        kube::discovery::pinned_kind(client, &gvk)
            .await
            .expect("the kind is served");
    let ns = obj["metadata"]["namespace"].as_str().map(String::from);
    let api: Api<DynamicObject> = match (caps.scope, ns) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), &ns, &resource),
        _ => Api::all_with(client.clone(), &resource),
    };
    let dynamic: DynamicObject = serde_json::from_value(obj).expect("an object");
    api.create(&PostParams::default(), &dynamic)
        .await
        .expect("the object is created");
}
