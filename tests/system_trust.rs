//! The system's trust store counts: a CA installed there (how a corporate TLS-inspecting
//! proxy's CA usually reaches a pod) is trusted without `spec.caBundleSecretRef`. rustls reads
//! the store from `SSL_CERT_FILE` when it is set, as OpenSSL does.
//!
//! The store is read once per process, from the environment at that time, so the client runs
//! in a child process — this test binary again, started with `SSL_CERT_FILE` set — against an
//! emulator the parent runs.

use std::sync::Arc;

use hdinsight_emulator::{AppConfig, EmulatorConfig, RunningEmulator, Transport};
use hdinsight_topic_operator::auth::{ClientAuth, ClientCredentials, SecretString};
use hdinsight_topic_operator::proxy::{NoopObserver, ProxyClient, ProxyClientConfig};
use url::Url;

const TEST: &str = "a_ca_in_the_system_trust_store_is_trusted";
/// Set in the child: the emulator's base URL and tenant, space-separated.
const CHILD: &str = "HDI_SYSTEM_TRUST_CHILD";

fn client(base: &str, tenant: &str, extra_ca_pem: Option<String>) -> ProxyClient {
    let app = AppConfig::default();
    let base = Url::parse(base).expect("url");
    let mut config = ProxyClientConfig::new(
        "kafka/emulated",
        base.clone(),
        ClientCredentials {
            tenant_id: tenant.to_string(),
            client_id: app.client_id,
            auth: ClientAuth::Secret(SecretString::new(app.client_secret)),
        },
    );
    config.authority = base;
    config.extra_ca_pem = extra_ca_pem;
    ProxyClient::new(config, Arc::new(NoopObserver)).expect("client")
}

#[tokio::test]
async fn a_ca_in_the_system_trust_store_is_trusted() {
    if let Ok(target) = std::env::var(CHILD) {
        let (base, tenant) = target.split_once(' ').expect("base and tenant");
        client(base, tenant, None)
            .status()
            .await
            .expect("the proxy's certificate verifies through the system store");
        return;
    }
    let dir = std::env::temp_dir().join(format!("system-trust-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let emu = RunningEmulator::start(
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().expect("addr"),
        Transport::Tls { dir: dir.clone() },
    )
    .await
    .expect("emulator starts");
    let store = dir.join("system-store.pem");
    std::fs::write(&store, emu.ca_pem().expect("the emulator's CA")).expect("write store");

    let run_child = |store: Option<&std::path::Path>| {
        let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"));
        child
            .args([TEST, "--exact", "--nocapture"])
            .env(CHILD, format!("{} {}", emu.base_url(), emu.tenant_id()))
            .env_remove("SSL_CERT_DIR");
        match store {
            Some(path) => child.env("SSL_CERT_FILE", path),
            None => child.env_remove("SSL_CERT_FILE"),
        };
        child.output()
    };
    let trusted = run_child(Some(&store)).await.expect("child runs");
    assert!(
        trusted.status.success(),
        "with the CA in SSL_CERT_FILE: {}",
        String::from_utf8_lossy(&trusted.stdout)
    );
    assert_eq!(emu.control().stats().token_requests, 1);
    // Without it the same client fails the handshake: the store is what made the difference.
    let untrusted = run_child(None).await.expect("child runs");
    assert!(!untrusted.status.success(), "trusted without the CA");
    assert_eq!(emu.control().stats().token_requests, 1);
    let _ = std::fs::remove_dir_all(&dir);
}
