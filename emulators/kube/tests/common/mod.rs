//! Shared helpers: start an emulator, build kube-rs clients, load the repository's CRDs.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_emulator::{KubeEmulatorConfig, RunningKube};
use serde::Deserialize;
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
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).expect("valid YAML");
            if value.is_null() {
                continue;
            }
            let crd: CustomResourceDefinition = serde_yaml::from_value(value).expect("a CRD");
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
