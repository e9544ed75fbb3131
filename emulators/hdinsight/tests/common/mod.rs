//! Helpers shared by the integration tests: an emulator on 127.0.0.1:0 over HTTPS and a
//! reqwest client that trusts its CA.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use hdinsight_emulator::{EmulatorConfig, RunningEmulator, Transport};
use serde_json::Value;

pub const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
pub const SECRET: &str = "emulator-secret";
pub const SCOPE: &str = "https://hib.azurehdinsight.net/.default";

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hdi-emulator-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// A configuration with short delays so tests run fast.
pub fn fast_config() -> EmulatorConfig {
    EmulatorConfig {
        visibility_delay_ms: 300,
        out_of_band_delay_ms: 600,
        ..EmulatorConfig::default()
    }
}

pub struct Env {
    pub emulator: RunningEmulator,
    pub http: reqwest::Client,
    pub dir: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        // Best effort: the directory only holds the generated CA and server certificate.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Env {
    pub async fn start(config: EmulatorConfig) -> Env {
        Self::start_on(config, None).await
    }

    /// Entra on a listener of its own, as in Azure.
    pub async fn start_split(config: EmulatorConfig) -> Env {
        Self::start_on(config, Some(loopback())).await
    }

    async fn start_on(config: EmulatorConfig, authority: Option<SocketAddr>) -> Env {
        let dir = temp_dir();
        let emulator = RunningEmulator::start_with_authority(
            config,
            loopback(),
            authority,
            Transport::Tls { dir: dir.clone() },
        )
        .await
        .expect("the emulator starts");
        let ca = emulator.ca_pem().expect("an HTTPS emulator has a CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA PEM"))
            .timeout(Duration::from_secs(20))
            .build()
            .expect("a reqwest client");
        Env {
            emulator,
            http,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.emulator.base_url(), path)
    }

    pub fn token_url(&self) -> String {
        self.emulator.token_url()
    }

    /// Requests a token with the given form and returns status and JSON body.
    pub async fn token_form(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .http
            .post(self.token_url())
            .form(form)
            .send()
            .await
            .expect("the token endpoint answers");
        let status = response.status().as_u16();
        (
            status,
            response.json().await.expect("a JSON token response"),
        )
    }

    /// A token for the default app.
    pub async fn token(&self) -> String {
        self.token_for(CLIENT_ID, SECRET).await
    }

    pub async fn token_for(&self, client_id: &str, secret: &str) -> String {
        let (status, body) = self
            .token_form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", SCOPE),
            ])
            .await;
        assert_eq!(status, 200, "token request failed: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token is a string")
            .to_string()
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("the proxy answers")
    }

    pub async fn get_json(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self.get(token, path).await;
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn put_topic(&self, token: &str, topic: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .http
            .put(self.url(&format!("/v1/topics/{topic}")))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the proxy answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn list(&self, token: &str) -> Vec<String> {
        let (status, body) = self.get_json(token, "/v1/metadata/topics").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body["topics"].clone()).expect("topics is a list of names")
    }
}
