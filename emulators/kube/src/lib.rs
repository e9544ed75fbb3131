//! An in-memory Kubernetes API server for tests and local sandboxes.
//!
//! It serves the subset of the Kubernetes API that kube-rs clients (Api, watcher, reflector,
//! Controller, Lease-based leader election, Discovery) and kubectl use for this project:
//! discovery, namespaces, Secrets, ConfigMaps, Events, Leases, CustomResourceDefinitions and the
//! kinds they define, with the write rules of kube-apiserver (resourceVersion, optimistic
//! concurrency, generation, status subresource, finalizers), watches with bookmarks and 410
//! Gone, `kubectl get` tables, and fault knobs under `/_emulator/`. With
//! [`KubeEmulatorConfig::rbac`] it authenticates ServiceAccount tokens it issued (TokenRequest)
//! and authorizes every request against the stored Roles, ClusterRoles and bindings.
//!
//! The pipeline of a request: [`authn`] says who sent it, [`rbac`] whether they may, [`server`]
//! routes it and applies faults, [`store`] applies the write rules and records a change, and
//! every open watch stream filters the change feed.

mod admission;
mod authn;
mod discovery;
mod protobuf;
mod rbac;
mod resources;
mod selectors;
mod server;
mod serviceaccount;
mod status;
mod store;
mod table;
mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use server::{Shared, lock};

/// How the emulator behaves. `Debug` never shows the token.
#[derive(Clone)]
pub struct KubeEmulatorConfig {
    /// Watch events retained per resource; watching from an older resourceVersion gets 410.
    pub history_size: usize,
    /// Watch events older than this are forgotten as well (`None`: kept until `history_size`
    /// pushes them out). Watching from a resourceVersion older than the retained history gets
    /// 410 Gone, as from a real watch cache that has moved on.
    pub history_max_age: Option<Duration>,
    /// How long after a write its watch event reaches watchers (a watch cache lagging under
    /// load). Gets and lists stay current; bookmarks never run ahead of a delayed event.
    pub watch_delay: Duration,
    /// Serve https with a generated CA (IP SAN 127.0.0.1, DNS localhost); plain http otherwise.
    pub tls: bool,
    /// Bearer token every API request must carry, when set (written into the kubeconfig).
    pub token: Option<String>,
    /// How often watches that allow bookmarks get a BOOKMARK event.
    pub bookmark_interval: Duration,
    /// Authorize every request with RBAC (Roles, ClusterRoles and their bindings). The admin
    /// kubeconfig's user is in `system:masters`; a `token` is generated when none is set.
    /// Without it every authenticated request may do everything.
    pub rbac: bool,
    /// The `iss` of ServiceAccount tokens (and their default audience); the server's base URL
    /// when unset.
    pub service_account_issuer: Option<String>,
    /// Let unauthenticated clients read the issuer discovery documents (binds
    /// `system:service-account-issuer-discovery` to `system:unauthenticated` as well).
    pub anonymous_issuer_discovery: bool,
}

impl std::fmt::Debug for KubeEmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeEmulatorConfig")
            .field("history_size", &self.history_size)
            .field("history_max_age", &self.history_max_age)
            .field("watch_delay", &self.watch_delay)
            .field("tls", &self.tls)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("bookmark_interval", &self.bookmark_interval)
            .field("rbac", &self.rbac)
            .field("service_account_issuer", &self.service_account_issuer)
            .field(
                "anonymous_issuer_discovery",
                &self.anonymous_issuer_discovery,
            )
            .finish()
    }
}

impl Default for KubeEmulatorConfig {
    fn default() -> Self {
        Self {
            history_size: 10_000,
            history_max_age: None,
            watch_delay: Duration::ZERO,
            tls: true,
            token: None,
            bookmark_interval: Duration::from_secs(5),
            rbac: false,
            service_account_issuer: None,
            anonymous_issuer_discovery: false,
        }
    }
}

/// Request counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KubeStats {
    /// Requests by verb: get, list, watch, create, update, patch, delete.
    pub requests: BTreeMap<String, u64>,
    /// Write requests (create, update, patch, delete; whatever their outcome) by resource, e.g.
    /// `kafkatopics`, `kafkatopics/status`, `events`, `leases`.
    pub writes: BTreeMap<String, u64>,
    /// Watch streams opened.
    pub watches_opened: u64,
    /// Open watch streams ended by [`KubeControl::drop_watches`] (each stream counted once).
    #[serde(default)]
    pub watches_dropped: u64,
    /// Watch requests answered 410 `Expired` because their resourceVersion had left the
    /// retained history (after [`KubeControl::compact`] or past the history's size or age).
    #[serde(default)]
    pub watches_expired: u64,
    /// Requests answered with an injected fault ([`KubeFaults::write_error_status`]).
    #[serde(default)]
    pub injected_errors: u64,
    /// Every write that took effect (2xx), oldest first, at most [`APPLIED_WRITES_CAPACITY`]:
    /// which client made it and when, so a test can tell who wrote after a given moment.
    pub applied_writes: Vec<AppliedWrite>,
}

/// How many applied writes [`KubeStats::applied_writes`] keeps (oldest dropped first).
pub const APPLIED_WRITES_CAPACITY: usize = 100_000;

/// One write that took effect.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedWrite {
    /// When the emulator applied it.
    pub at: std::time::SystemTime,
    /// The bearer token the client sent ("" without one): with `token` unset in the config
    /// every token is accepted, so tests give each client its own to tell them apart.
    pub client: String,
    pub verb: String,
    /// `kafkatopics/status`, `leases`, …
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl KubeStats {
    /// Write requests to a resource (`"kafkatopics"`) or one of its subresources
    /// (`Some("status")`).
    pub fn writes_to(&self, resource: &str, subresource: Option<&str>) -> u64 {
        let key = match subresource {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_string(),
        };
        self.writes.get(&key).copied().unwrap_or(0)
    }
}

/// Fault knobs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KubeFaults {
    /// Status returned by writes (e.g. 500, or 429 with `Retry-After: 1`).
    pub write_error_status: Option<u16>,
    /// Share of writes that fail, 0.0..=1.0; 0.0 with a status set means every write.
    pub write_error_probability: f64,
    /// Resources the faults apply to (`kafkatopics`, `kafkatopics/status`); empty = all.
    pub resources: Vec<String>,
    /// Extra latency of every API request to the selected resources.
    pub latency_ms: u64,
    /// A network partition between one client and the server: requests bearing this token
    /// (to `stall_resources`) are held without effect until the fault is cleared, then answered
    /// 503 — they never take effect, like packets lost on the way. Other clients are unaffected.
    #[serde(default)]
    pub stall_token: Option<String>,
    /// Resources the stall applies to (`leases`, `kafkatopics/status`); empty = all.
    #[serde(default)]
    pub stall_resources: Vec<String>,
}

/// The watch-cache knobs of a running emulator (`GET`/`POST /_emulator/watch-cache`).
/// In a `POST` every field is optional: missing ones keep their value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchCacheSettings {
    /// Milliseconds between a write and its watch event reaching watchers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_delay_ms: Option<u64>,
    /// Watch events retained per resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_size: Option<usize>,
    /// Milliseconds after which a watch event is forgotten; 0 means no age limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_max_age_ms: Option<u64>,
}

/// In-process control of a running emulator.
#[derive(Clone)]
pub struct KubeControl {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for KubeControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeControl")
            .field("addr", &self.shared.addr)
            .finish()
    }
}

impl KubeControl {
    pub fn stats(&self) -> KubeStats {
        lock(&self.shared.stats).clone()
    }

    /// Ends every open watch stream now.
    pub fn drop_watches(&self) {
        self.shared.drop_all_watches();
    }

    /// Forgets the retained history: watching from any resourceVersion handed out before now
    /// gets 410 Gone. Open watches keep running (combine with [`Self::drop_watches`]).
    pub fn compact(&self) {
        lock(&self.shared.store).compact();
    }

    pub fn set_faults(&self, f: KubeFaults) {
        *lock(&self.shared.faults) = f;
    }

    /// Stalls every request of the client sending `token` to `resources` (empty: all) until
    /// [`Self::clear_faults`]; see [`KubeFaults::stall_token`].
    pub fn stall_client(&self, token: &str, resources: &[&str]) {
        let mut f = lock(&self.shared.faults);
        f.stall_token = Some(token.to_string());
        f.stall_resources = resources.iter().map(|r| (*r).to_string()).collect();
    }

    pub fn clear_faults(&self) {
        *lock(&self.shared.faults) = KubeFaults::default();
    }

    /// Watch events reach watchers `delay` after their write from now on (events already on
    /// their way keep their order). Gets and lists are unaffected.
    pub fn set_watch_delay(&self, delay: Duration) {
        *lock(&self.shared.watch_delay) = delay;
    }

    /// Retains at most `size` watch events per resource (at least 1); older ones are
    /// forgotten now.
    pub fn set_history_size(&self, size: usize) {
        let mut store = lock(&self.shared.store);
        let retention = store.retention();
        store.set_retention(store::Retention { size, ..retention });
    }

    /// Forgets watch events older than `max_age` (`None`: no age limit), starting now.
    pub fn set_history_max_age(&self, max_age: Option<Duration>) {
        let mut store = lock(&self.shared.store);
        let retention = store.retention();
        store.set_retention(store::Retention {
            max_age,
            ..retention
        });
    }

    /// The current watch-cache knobs (every field set).
    pub fn watch_cache(&self) -> WatchCacheSettings {
        self.shared.watch_cache()
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).current_rv()
    }
}

/// A running emulator; [`RunningKube::shutdown`] stops it.
pub struct RunningKube {
    addr: SocketAddr,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RunningKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningKube")
            .field("addr", &self.addr)
            .field("tls", &self.ca_pem.is_some())
            .finish()
    }
}

fn base_url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        // Listening on every interface: clients reach it (and the certificate names it) as
        // the loopback address.
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("{scheme}://{addr}")
}

async fn serve_connection<I>(io: I, shared: Arc<Shared>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| server::handle(shared.clone(), req));
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder.serve_connection(TokioIo::new(io), service).await {
        debug!(error = %e, "connection ended with an error");
    }
}

impl RunningKube {
    /// Binds `addr` (port 0 picks one) and serves until [`RunningKube::shutdown`].
    pub async fn start(mut config: KubeEmulatorConfig, addr: SocketAddr) -> anyhow::Result<Self> {
        if config.rbac && config.token.is_none() {
            // Under RBAC the admin credential must not be guessable.
            config.token = Some(format!("admin-{}", uuid::Uuid::new_v4().simple()));
        }
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let (acceptor, ca_pem) = if config.tls {
            let (a, pem) = tls::acceptor(addr.ip())?;
            (Some(a), Some(pem))
        } else {
            (None, None)
        };
        let (tx, _) = broadcast::channel(16_384);
        let (drop_watches, _) = watch::channel(0u64);
        let base_url = base_url(addr, ca_pem.is_some());
        let issuer = serviceaccount::Issuer::new(
            config
                .service_account_issuer
                .clone()
                .unwrap_or_else(|| base_url.clone()),
            base_url,
        );
        let mut store = store::Store::new(
            store::Retention {
                size: config.history_size,
                max_age: config.history_max_age,
            },
            tx,
        );
        rbac::seed(&mut store, config.anonymous_issuer_discovery)?;
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            watch_delay: Mutex::new(config.watch_delay),
            config,
            addr,
            stats: Mutex::new(KubeStats::default()),
            faults: Mutex::new(KubeFaults::default()),
            drop_watches,
            issuer,
        });
        let (stop, mut stop_rx) = oneshot::channel::<()>();
        let loop_shared = shared.clone();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => {
                        let stream = match accepted {
                            Ok((stream, _)) => stream,
                            Err(e) => {
                                warn!(error = %e, "accept failed");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        };
                        let _ = stream.set_nodelay(true);
                        let shared = loop_shared.clone();
                        match &acceptor {
                            Some(acceptor) => {
                                let acceptor = acceptor.clone();
                                conns.spawn(async move {
                                    match acceptor.accept(stream).await {
                                        Ok(tls) => serve_connection(tls, shared).await,
                                        Err(e) => debug!(error = %e, "TLS handshake failed"),
                                    }
                                });
                            }
                            None => {
                                conns.spawn(serve_connection(stream, shared));
                            }
                        }
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
            loop_shared.drop_all_watches();
            conns.abort_all();
            while conns.join_next().await.is_some() {}
        });
        Ok(Self {
            addr,
            ca_pem,
            shared,
            stop: Some(stop),
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (or `http://` without TLS).
    pub fn base_url(&self) -> String {
        base_url(self.addr, self.ca_pem.is_some())
    }

    /// The `iss` of the ServiceAccount tokens this server issues and accepts.
    pub fn service_account_issuer(&self) -> String {
        self.shared.issuer.issuer.clone()
    }

    /// The CA certificate (PEM) that signed the server certificate, when serving https.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// A kubeconfig with context `emulator` (namespace `default`) for the admin user.
    pub fn kubeconfig_yaml(&self) -> String {
        // Without any credentials kubectl would prompt for a user name; when no token is
        // required the server ignores this one.
        let token = self
            .shared
            .config
            .token
            .clone()
            .unwrap_or_else(|| "kube-emulator".to_string());
        self.kubeconfig_yaml_with_token(&token)
    }

    /// A kubeconfig like [`Self::kubeconfig_yaml`] whose user presents `token` (e.g. a
    /// ServiceAccount token from TokenRequest).
    pub fn kubeconfig_yaml_with_token(&self, token: &str) -> String {
        let mut cluster = format!("    server: {}\n", self.base_url());
        if let Some(pem) = &self.ca_pem {
            let data = base64::engine::general_purpose::STANDARD.encode(pem);
            cluster.push_str(&format!("    certificate-authority-data: {data}\n"));
        }
        let user = format!(
            "  user:\n    token: {}\n",
            serde_json::Value::String(token.to_string())
        );
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: emulator\n  cluster:\n{cluster}contexts:\n- name: emulator\n  context:\n    cluster: emulator\n    user: emulator\n    namespace: default\ncurrent-context: emulator\npreferences: {{}}\nusers:\n- name: emulator\n{user}"
        )
    }

    pub fn write_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
            .with_context(|| format!("writing the kubeconfig to {}", path.display()))
    }

    pub fn control(&self) -> KubeControl {
        KubeControl {
            shared: self.shared.clone(),
        }
    }

    /// Stops accepting, ends open watches and connections.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningKube {
    /// Dropping without [`RunningKube::shutdown`] still stops the server (in the background).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_token() {
        let config = KubeEmulatorConfig {
            token: Some("very-secret-token".into()),
            ..KubeEmulatorConfig::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("very-secret-token"), "{text}");
        assert!(text.contains("<redacted>"));
    }

    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn the_control_handle_can_be_shared_across_tasks() {
        assert_send_sync::<KubeControl>();
    }
}
