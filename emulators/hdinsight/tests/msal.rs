//! MSAL Python against the emulator: runs `tests/msal_client.py` with the interpreter named by
//! `HDI_TEST_PYTHON` (which must have `msal` installed). Without it the test fails under `CI`
//! and is skipped visibly elsewhere (the workspace's shared `tests/require`).

mod common;
#[path = "../../../tests/require/mod.rs"]
mod require;

use common::{CLIENT_ID, Env, SCOPE, SECRET};
use hdinsight_emulator::EmulatorConfig;
use serde_json::Value;

#[tokio::test]
async fn msal_confidential_client_gets_a_token_and_lists_topics() {
    let Some(python) = require::require_var("HDI_TEST_PYTHON", "a python with msal installed")
    else {
        return;
    };
    // Entra on its own listener: MSAL's authority and the proxy endpoint differ as in Azure.
    let env = Env::start_split(EmulatorConfig {
        visibility_delay_ms: 0,
        ..common::fast_config()
    })
    .await;
    let token = env.token().await;
    env.put_topic(&token, "seen-by-msal", None).await;
    let ca = env.dir.join("ca.pem");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/msal_client.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("HDI_BASE_URL", env.emulator.base_url())
        .env("HDI_AUTHORITY_URL", env.emulator.authority_url())
        .env("HDI_TENANT", env.emulator.tenant_id())
        .env("HDI_CLIENT_ID", CLIENT_ID)
        .env("HDI_CLIENT_SECRET", SECRET)
        .env("HDI_SCOPE", SCOPE)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca)
        .output()
        .await
        .expect("the python interpreter runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "msal_client.py failed:\n{stdout}\n{stderr}"
    );
    let result: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(result["expires_in"], 3599, "{result}");
    assert_eq!(result["cached"], true, "MSAL reuses the token: {result}");
    assert_eq!(result["topics_status"], 200, "{result}");
    assert_eq!(
        result["topics"]["topics"],
        serde_json::json!(["seen-by-msal"])
    );
    assert_eq!(result["wrong_secret_error"], "invalid_client", "{result}");
    assert_eq!(result["wrong_secret_codes"], serde_json::json!([7000215]));
    let stats = env.emulator.control().stats();
    assert!(
        stats.count_status("discovery", 200) >= 1,
        "MSAL read the discovery document"
    );
    assert_eq!(
        stats.tokens_issued.get(CLIENT_ID),
        Some(&2),
        "one for Rust, one for MSAL"
    );
}
