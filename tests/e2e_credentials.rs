//! End to end: KafkaRestProxies without a client secret — a certificate registered on the app,
//! and workload identity (a ServiceAccount token exchanged at Entra ID) — against both
//! emulators, with the operator under the chart's RBAC.
//!
//! Expected Entra behaviour: certificate credentials per
//! https://learn.microsoft.com/entra/identity-platform/certificate-credentials, workload
//! identity federation per https://learn.microsoft.com/entra/workload-id/workload-identity-federation,
//! and the AADSTS codes per https://learn.microsoft.com/entra/identity-platform/reference-error-codes
//! (700027: client assertion failed signature validation; 70021: no matching federated identity
//! record found for presented assertion).

mod common;

use std::time::Duration;

use common::*;
use kube::api::{Patch, PatchParams};
use sandbox::env::{CLIENT_SECRET, ClusterSettings, NAMESPACE, PROXY_NAME};

fn fast_cluster() -> ClusterSettings {
    ClusterSettings {
        visibility_delay: Duration::from_millis(700),
        out_of_band_delay: Duration::from_millis(1200),
        ..Default::default()
    }
}

/// Waits until the proxy reports Ready with `status` and returns its (reason, message).
async fn wait_proxy(env: &sandbox::env::Env, status: &str) -> (String, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let p = proxies(env).get(PROXY_NAME).await.expect("proxy");
        if let Some(c) = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            && c.status == status
            && p.status.as_ref().and_then(|s| s.observed_generation) == p.metadata.generation
        {
            return (c.reason.clone(), c.message.clone());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "proxy never became Ready={status}: {:?}",
            p.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_proxy_connects_and_a_rotated_certificate_recovers_without_restart() {
    let (_dir, env) = start(fast_cluster()).await;
    let cert = env.use_certificate("e2e-cert").await.expect("certificate");
    let op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({"partitions": 2}))).await;
    wait_ready(&env, "orders").await;
    assert!(
        env.hdi
            .control()
            .topic_names()
            .contains(&"orders".to_string()),
        "the topic exists on the cluster"
    );
    wait_proxy(&env, "True").await;

    // The app's registered certificate is replaced by another one (rotation on the Entra side
    // first): the Secret still holds the old one, Entra refuses it with AADSTS700027.
    let next = hdinsight_emulator::client_certificate("e2e-cert-next").expect("next cert");
    env.hdi
        .control()
        .set_app_certificates(sandbox::env::CLIENT_ID, vec![next.cert_pem.clone()]);
    // A new topic needs a token only once the cached one is gone: restart nothing, but
    // make the proxy rebuild by changing a field of its spec that does not matter.
    proxies(&env)
        .patch(
            PROXY_NAME,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"limits": {"burst": 199}}})),
        )
        .await
        .expect("proxy patched");
    let (reason, message) = wait_proxy(&env, "False").await;
    assert_eq!(reason, "AuthenticationFailed", "{message}");
    assert!(message.contains("AADSTS700027"), "{message}");

    // The Secret gets the new certificate: the registry rebuilds the credential, no restart.
    env.put_certificate_secret(&next).await.expect("secret");
    wait_proxy(&env, "True").await;
    create(
        &env,
        &topic("payments", serde_json::json!({"partitions": 1})),
    )
    .await;
    wait_ready(&env, "payments").await;

    let key_body = |pem: &str| {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    let (k1, k2) = (key_body(&cert.key_pem), key_body(&next.key_pem));
    let first_key_line = |pem: &str| {
        pem.lines()
            .find(|l| !l.starts_with("-----"))
            .unwrap_or_default()
            .to_string()
    };
    let (l1, l2) = (first_key_line(&cert.key_pem), first_key_line(&next.key_pem));
    assert_no_secrets(&op.logs(), &[&k1, &k2, &l1, &l2]);
    for name in ["orders", "payments"] {
        let events = events_of(&env, name).await;
        assert!(!events.is_empty(), "no Events about {name} to check");
        for (_, _, note) in events {
            assert!(!note.contains(&l1) && !note.contains(&l2), "{note}");
        }
    }
    // No client assertion (a JWT: "eyJ" header) in the logs either.
    assert!(
        !op.logs().contains("eyJhbGciOiJQUzI1NiI"),
        "an assertion reached the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_app_does_not_know_is_authentication_failed_with_700027() {
    let (_dir, env) = start(fast_cluster()).await;
    env.use_certificate("e2e-cert-registered")
        .await
        .expect("certificate");
    // The Secret holds a certificate that was never uploaded to the app registration.
    let stranger = hdinsight_emulator::client_certificate("e2e-cert-stranger").expect("cert");
    env.put_certificate_secret(&stranger).await.expect("secret");
    let _op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({}))).await;
    let t = wait_reason(&env, "orders", "AuthenticationFailed").await;
    let message = ready(&t).map(|r| r.2).unwrap_or_default();
    assert!(message.contains("AADSTS700027"), "{message}");
    assert!(
        !env.hdi
            .control()
            .stats()
            .creates_per_topic
            .contains_key("orders"),
        "nothing was created without a token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_identity_proxy_connects_with_a_service_account_token() {
    let (_dir, env) = start(fast_cluster()).await;
    env.use_workload_identity(None)
        .await
        .expect("workload identity");
    // No client secret anywhere: remove the Secret the example installed.
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    secrets
        .delete("hdi-sp", &Default::default())
        .await
        .expect("secret deleted");
    let op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({"partitions": 2}))).await;
    wait_ready(&env, "orders").await;
    wait_proxy(&env, "True").await;
    assert!(
        env.hdi
            .control()
            .topic_names()
            .contains(&"orders".to_string())
    );
    // Entra issued the access token to the app in exchange for the ServiceAccount token (the
    // only credential there is: the client-secret Secret is gone).
    assert!(
        env.hdi
            .control()
            .stats()
            .tokens_issued
            .get(sandbox::env::CLIENT_ID)
            .is_some_and(|n| *n >= 1),
        "no token was issued to the app"
    );
    assert!(
        !op.logs().contains("eyJhbGciOiJSUzI1NiI"),
        "a token reached the logs"
    );
    assert_no_secrets(&op.logs(), &[CLIENT_SECRET]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federated_credential_for_another_subject_is_authentication_failed_with_70021() {
    let (_dir, env) = start(fast_cluster()).await;
    env.use_workload_identity(Some("system:serviceaccount:kafka:someone-else"))
        .await
        .expect("workload identity");
    let _op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({}))).await;
    let t = wait_reason(&env, "orders", "AuthenticationFailed").await;
    let message = ready(&t).map(|r| r.2).unwrap_or_default();
    assert!(message.contains("AADSTS70021"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_credential_kinds_at_once_are_refused_at_admission() {
    let (_dir, env) = start(fast_cluster()).await;
    let both = serde_json::json!({"spec": {"credentials": {
        "secretRef": {"name": "hdi-sp"},
        "workloadIdentity": {"serviceAccountName": "w", "tenantId": "t", "clientId": "c"}
    }}});
    let e = proxies(&env)
        .patch(PROXY_NAME, &PatchParams::default(), &Patch::Merge(both))
        .await
        .expect_err("refused");
    assert!(
        e.to_string().contains(
            "credentials must set exactly one of secretRef, certificate and workloadIdentity"
        ),
        "{e}"
    );
    let none = serde_json::json!({"spec": {"credentials": {"secretRef": null}}});
    let e = proxies(&env)
        .patch(PROXY_NAME, &PatchParams::default(), &Patch::Merge(none))
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("exactly one"), "{e}");
}

/// `check --proxy` through the kubeconfig, for each credential kind of the example proxy.
fn check_proxy(env: &sandbox::env::Env) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hdinsight-topic-operator"))
        .args(["check", "--proxy", PROXY_NAME, "-n", NAMESPACE])
        .env("KUBECONFIG", &env.kubeconfig)
        .env_remove("RUST_LOG")
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_takes_each_credential_kind() {
    let (_dir, env) = start(fast_cluster()).await;
    let (ok, out) = check_proxy(&env);
    assert!(ok && out.contains("[ok]   token"), "secretRef: {out}");

    let cert = env.use_certificate("e2e-check-cert").await.expect("cert");
    let (ok, out) = check_proxy(&env);
    assert!(ok && out.contains("[ok]   token"), "certificate: {out}");
    let key_line = cert
        .key_pem
        .lines()
        .find(|l| !l.starts_with("-----"))
        .unwrap_or_default();
    assert!(!out.contains(key_line), "the key reached check's output");

    // Direct flags: the certificate and key files instead of a secret file.
    let dir = tempfile::tempdir().expect("dir");
    let (cert_file, key_file, ca_file) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert_file, &cert.cert_pem).expect("cert file");
    std::fs::write(&key_file, &cert.key_pem).expect("key file");
    std::fs::write(&ca_file, env.hdi.ca_pem().unwrap_or_default()).expect("ca file");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hdinsight-topic-operator"))
        .arg("check")
        .args(["--endpoint", &env.hdi.base_url()])
        .args(["--authority", &env.hdi.authority_url()])
        .args(["--tenant", sandbox::env::TENANT_ID])
        .args(["--client-id", sandbox::env::CLIENT_ID])
        .arg("--client-certificate-file")
        .arg(&cert_file)
        .arg("--client-key-file")
        .arg(&key_file)
        .arg("--ca-file")
        .arg(&ca_file)
        .output()
        .expect("binary runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && text.contains("[ok]   token"),
        "direct certificate: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    env.use_workload_identity(None)
        .await
        .expect("workload identity");
    let (ok, out) = check_proxy(&env);
    assert!(
        ok && out.contains("[ok]   token"),
        "workloadIdentity: {out}"
    );
}

/// The ServiceAccount token the operator exchanges: audience `api://AzureADTokenExchange`, the
/// shortest lifetime the API server grants (10 minutes), reused while it has time left, asked
/// for again once refused. A missing ServiceAccount is a typed error naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_are_short_lived_for_the_exchange_audience_and_cached() {
    use base64::Engine as _;
    use hdinsight_topic_operator::auth::{
        AssertionSource, AuthError, SERVICE_ACCOUNT_TOKEN_SECONDS, ServiceAccountTokenSource,
    };
    let (_dir, env) = start(fast_cluster()).await;
    env.use_workload_identity(None)
        .await
        .expect("workload identity");
    let source = ServiceAccountTokenSource::new(
        env.client.clone(),
        NAMESPACE,
        sandbox::env::WORKLOAD_SERVICE_ACCOUNT,
    );
    let first = source.assertion().await.expect("token");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(first.expose().split('.').nth(1).expect("claims"))
            .expect("base64url"),
    )
    .expect("json");
    let aud = claims["aud"].to_string();
    assert!(aud.contains("api://AzureADTokenExchange"), "{claims}");
    assert_eq!(
        claims["sub"],
        format!(
            "system:serviceaccount:{NAMESPACE}:{}",
            sandbox::env::WORKLOAD_SERVICE_ACCOUNT
        )
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap_or_default() - claims["iat"].as_i64().unwrap_or_default(),
        SERVICE_ACCOUNT_TOKEN_SECONDS
    );
    assert_eq!(env.kube.service_account_issuer(), claims["iss"]);
    let again = source.assertion().await.expect("token");
    assert_eq!(again.expose(), first.expose(), "the token is reused");
    source.invalidate();
    source
        .assertion()
        .await
        .expect("a new token after a refusal");

    let missing = ServiceAccountTokenSource::new(env.client.clone(), NAMESPACE, "nobody");
    match missing.assertion().await {
        Err(AuthError::InvalidConfig(m)) => {
            assert!(m.contains("ServiceAccount kafka/nobody"), "{m}")
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

/// Entra ID verifies a federated token with the issuer's published keys, fetched over HTTPS:
/// an issuer it cannot verify (here: its TLS certificate is not trusted) gets AADSTS50027,
/// however well the issuer, subject and audience match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_entra_cannot_verify_is_authentication_failed_with_50027() {
    let (_dir, env) = start(fast_cluster()).await;
    env.use_workload_identity(None)
        .await
        .expect("workload identity");
    // Trust only the HDInsight emulator's own CA: the Kubernetes issuer's TLS fails.
    env.hdi
        .control()
        .trust_federated_issuer_ca(&env.hdi.ca_pem().expect("a CA"))
        .expect("trust set");
    let _op = spawn_operator(&env, &[]);
    create(&env, &topic("orders", serde_json::json!({}))).await;
    let t = wait_reason(&env, "orders", "AuthenticationFailed").await;
    let message = ready(&t).map(|r| r.2).unwrap_or_default();
    assert!(message.contains("AADSTS50027"), "{message}");
    assert!(
        message.contains(&env.kube.service_account_issuer()),
        "the message names the issuer: {message}"
    );
}
