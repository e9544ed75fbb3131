//! The control handle tests use in-process, and the same operations over HTTP under
//! `/_emulator/` (unauthenticated).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::entra::{self, TokenSpec};
use crate::observe::{Faults, LoggedRequest, Stats};
use crate::server::{Reply, Shared, State};

/// In-process handle on a running emulator. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct Control {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}

impl Control {
    /// Counters since start (or the last [`Control::reset`]).
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// The last requests served, oldest first (at most
    /// [`crate::REQUEST_LOG_CAPACITY`]).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.shared.lock().log.snapshot()
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// The injected faults, with the shots left on each rule.
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults = Faults::default();
    }

    /// Creates a topic the way the Kafka CLI on the cluster would: it shows up in the proxy
    /// after the out-of-band delay.
    pub fn create_topic_out_of_band(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
    ) -> Result<(), String> {
        let config = &self.shared.config;
        self.shared
            .lock()
            .cluster
            .create(
                name,
                partitions,
                replication_factor,
                config.max_partitions,
                serde_json::Map::new(),
                Duration::from_millis(config.out_of_band_delay_ms),
            )
            .map_err(|err| err.message(name))
    }

    /// Deletes a topic outside the proxy: it keeps being listed and described until the
    /// out-of-band delay passed. Returns whether the topic existed.
    pub fn delete_topic_out_of_band(&self, name: &str) -> bool {
        let after = Duration::from_millis(self.shared.config.out_of_band_delay_ms);
        self.shared.lock().cluster.delete(name, after)
    }

    /// Takes a broker down: it leaves every ISR and the broker list, leadership moves to the
    /// next live replica. Returns whether the broker exists.
    pub fn broker_down(&self, id: i32) -> bool {
        self.shared.lock().cluster.set_broker(id, false)
    }

    /// Brings a broker back; it rejoins the ISRs and regains preferred leadership.
    pub fn broker_up(&self, id: i32) -> bool {
        self.shared.lock().cluster.set_broker(id, true)
    }

    /// Runs `change` on the app `client_id` (case-insensitive, as Entra compares client ids).
    /// Returns whether the app exists.
    fn with_app(
        &self,
        client_id: &str,
        change: impl FnOnce(&mut crate::config::AppConfig),
    ) -> bool {
        let mut state = self.shared.lock();
        match state
            .apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
        {
            Some(app) => {
                change(app);
                true
            }
            None => false,
        }
    }

    /// Rotates an app's secret (the old one stops working, an expired flag is cleared).
    /// Returns whether the app exists.
    pub fn set_app_secret(&self, client_id: &str, secret: &str) -> bool {
        self.with_app(client_id, |app| {
            app.client_secret = secret.to_string();
            app.secret_expired = false;
        })
    }

    /// Replaces the certificates (PEM) registered on an app. Returns whether the app exists.
    pub fn set_app_certificates(&self, client_id: &str, certificates: Vec<String>) -> bool {
        self.with_app(client_id, |app| {
            app.certificates = certificates;
        })
    }

    /// Replaces an app's federated identity credentials. Returns whether the app exists.
    pub fn set_app_federated_credentials(
        &self,
        client_id: &str,
        credentials: Vec<crate::config::FederatedCredential>,
    ) -> bool {
        self.with_app(client_id, |app| {
            app.federated_credentials = credentials;
        })
    }

    /// Trusts `ca_pem` (instead of `federatedIssuerCaFile`) when fetching federated issuers'
    /// discovery documents and keys, e.g. a Kubernetes emulator started after this one.
    pub fn trust_federated_issuer_ca(&self, ca_pem: &str) -> Result<(), String> {
        let client = crate::federation_client_from_pem(Some(ca_pem.as_bytes()))
            .map_err(|e| format!("{e:#}"))?;
        *self
            .shared
            .federation_http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = client;
        Ok(())
    }

    /// Changes an app's group memberships; tokens issued from now on carry them.
    pub fn set_app_groups(&self, client_id: &str, groups: Vec<String>) -> bool {
        self.with_app(client_id, |app| {
            app.groups = groups;
        })
    }

    /// Advances a partition's log end by `n` records without HTTP (visible or not). Returns
    /// whether the partition exists.
    pub fn produce(&self, topic: &str, partition: i32, n: usize) -> bool {
        self.shared.lock().cluster.advance(topic, partition, n)
    }

    /// The `topic_properties` a topic was created with (`None`: no such topic). The proxy
    /// cannot read configs back; this lets tests see what a client sent.
    pub fn topic_properties(
        &self,
        name: &str,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.shared
            .lock()
            .cluster
            .topics
            .get(name)
            .map(|t| t.properties.clone())
    }

    /// Names of every topic the cluster holds right now, visible through the proxy or not.
    pub fn topic_names(&self) -> Vec<String> {
        self.shared.lock().cluster.topics.keys().cloned().collect()
    }

    /// The topics as JSON for a state file: names, replica placement, offsets and properties.
    pub fn export_topics(&self) -> serde_json::Value {
        serde_json::to_value(self.shared.lock().cluster.save()).unwrap_or_default()
    }

    /// Replaces all topics with ones from [`Control::export_topics`]; they are visible at
    /// once. On error nothing changes.
    pub fn import_topics(&self, topics: serde_json::Value) -> Result<(), String> {
        let saved: Vec<crate::model::SavedTopic> = serde_json::from_value(topics)
            .map_err(|err| format!("not a saved topic list: {err}"))?;
        self.shared.lock().cluster.restore(saved)
    }

    /// Topics, brokers, apps, stats, request log and faults back to the configured start.
    pub fn reset(&self) {
        *self.shared.lock() = State::new(&self.shared.config);
    }

    /// Rotates the signing key: new tokens are signed with a new key; the old key stays in
    /// the JWKS and valid on tokens for `keep_old`, then tokens it signed get 401 (unknown
    /// `kid`). Returns the new `kid`.
    pub fn rotate_signing_key(&self, keep_old: Duration) -> Result<String, String> {
        self.shared
            .key
            .rotate(keep_old)
            .map_err(|err| format!("{err:#}"))
    }

    /// The `kid` new tokens are signed with.
    pub fn signing_kid(&self) -> String {
        self.shared.key.current().kid.clone()
    }

    /// Mints a signed token with the emulator's key, bypassing the token endpoint (not
    /// counted in the stats). For tests of expired, early, wrong-audience tokens.
    pub fn mint_token(&self, spec: &TokenSpec) -> String {
        entra::mint(&self.shared, spec).unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewTopic {
    name: String,
    #[serde(default = "one")]
    partitions: i32,
    #[serde(default = "one")]
    replication_factor: i32,
}

fn one() -> i32 {
    1
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewSecret {
    client_secret: String,
}

#[derive(Deserialize)]
struct NewGroups {
    groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rotate {
    #[serde(default)]
    keep_old_seconds: u64,
}

#[derive(Deserialize)]
struct ProduceCount {
    count: usize,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, Reply> {
    serde_json::from_slice(body).map_err(|err| {
        Reply::error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("The body is not what this endpoint takes: {err}."),
        )
    })
}

fn done(found: bool, what: &str) -> Reply {
    if found {
        Reply::json(StatusCode::OK, &json!({"ok": true}))
    } else {
        Reply::error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("{what} not found."),
        )
    }
}

/// `/_emulator/...`.
pub(crate) fn handle(
    shared: &Arc<Shared>,
    method: &Method,
    segments: &[String],
    body: &Bytes,
) -> Reply {
    let control = Control {
        shared: shared.clone(),
    };
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result: Result<Reply, Reply> = (|| {
        Ok(match (method.as_str(), s.as_slice()) {
            ("GET", ["stats"]) => Reply::json(StatusCode::OK, &json!(control.stats())),
            ("GET", ["requests"]) => Reply::json(StatusCode::OK, &json!(control.request_log())),
            ("GET", ["faults"]) => Reply::json(StatusCode::OK, &json!(control.faults())),
            ("POST", ["faults"]) => {
                control.set_faults(parse::<Faults>(body)?);
                done(true, "")
            }
            ("DELETE", ["faults"]) => {
                control.clear_faults();
                done(true, "")
            }
            ("POST", ["topics"]) => {
                let topic = parse::<NewTopic>(body)?;
                match control.create_topic_out_of_band(
                    &topic.name,
                    topic.partitions,
                    topic.replication_factor,
                ) {
                    Ok(()) => Reply::json(StatusCode::CREATED, &json!({"ok": true})),
                    Err(message) => {
                        Reply::error(StatusCode::BAD_REQUEST, "invalid_request", &message)
                    }
                }
            }
            ("DELETE", ["topics", name]) => done(control.delete_topic_out_of_band(name), "Topic"),
            ("POST", ["topics", name, "partitions", p, "produce"]) => {
                let count = parse::<ProduceCount>(body)?.count;
                let p = p.parse::<i32>().unwrap_or(-1);
                done(control.produce(name, p, count), "Partition")
            }
            ("POST", ["brokers", id, direction @ ("down" | "up")]) => {
                let id = id.parse::<i32>().unwrap_or(-1);
                let found = if *direction == "down" {
                    control.broker_down(id)
                } else {
                    control.broker_up(id)
                };
                done(found, "Broker")
            }
            ("POST", ["apps", client_id, "secret"]) => {
                let secret = parse::<NewSecret>(body)?.client_secret;
                done(control.set_app_secret(client_id, &secret), "App")
            }
            ("POST", ["apps", client_id, "groups"]) => {
                let groups = parse::<NewGroups>(body)?.groups;
                done(control.set_app_groups(client_id, groups), "App")
            }
            ("POST", ["keys", "rotate"]) => {
                let keep = if body.iter().all(u8::is_ascii_whitespace) {
                    0
                } else {
                    parse::<Rotate>(body)?.keep_old_seconds
                };
                match control.rotate_signing_key(Duration::from_secs(keep)) {
                    Ok(kid) => Reply::json(StatusCode::OK, &json!({ "kid": kid })),
                    Err(message) => Reply::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "rotation_failed",
                        &message,
                    ),
                }
            }
            ("POST", ["reset"]) => {
                control.reset();
                done(true, "")
            }
            _ => Reply::error(
                StatusCode::NOT_FOUND,
                "not_found",
                "No such control endpoint.",
            ),
        })
    })();
    match result {
        Ok(reply) | Err(reply) => reply,
    }
}
