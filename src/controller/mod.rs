//! Controllers for `KafkaTopic` and `KafkaRestProxy`.

pub mod contain;
pub mod context;
pub mod events;
pub mod memory;
pub mod outcome;
pub mod ownership;
pub mod plan;
pub mod registry;
pub mod rest_proxy;
pub mod runner;
pub mod selector;
pub mod status;
pub mod stores;
pub mod topic;

/// The in-process Kubernetes emulator (plain HTTP on a loopback port) and a client of it, for
/// unit tests of code that talks to Kubernetes.
#[cfg(test)]
pub(crate) async fn test_kube() -> (kube_emulator::RunningKube, kube::Client) {
    let kube = kube_emulator::RunningKube::start(
        kube_emulator::KubeEmulatorConfig {
            tls: false,
            ..Default::default()
        },
        "127.0.0.1:0".parse().expect("address"),
    )
    .await
    .expect("emulator");
    let url = kube.base_url().parse().expect("url");
    let client = kube::Client::try_from(kube::Config::new(url)).expect("client");
    (kube, client)
}
