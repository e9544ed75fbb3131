//! An in-memory emulator of an Azure HDInsight Kafka REST proxy and the Entra ID endpoints its
//! clients get tokens from, faithful to `hdinsight-rest-proxy.md`.
//!
//! One listener serves everything (the paths do not overlap):
//! - Entra: `POST /{tenant}/oauth2/v2.0/token`, `GET /{tenant}/v2.0/.well-known/openid-configuration`,
//!   `GET /{tenant}/discovery/v2.0/keys`;
//! - the proxy: `/v1/...`, every call checked for a valid RS256 bearer token of a member of the
//!   cluster's security group;
//! - control: `/_emulator/...`, unauthenticated, the same operations as [`Control`].
//!
//! A request goes through: routing → latency (configured + injected) → fault rules → the
//! handler → stats and request log.

mod assertion;
mod config;
mod control;
mod entra;
mod kafka_config;
mod keys;
mod model;
mod observe;
mod proxy;
mod server;
mod tls;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    AppConfig, ConsumeShape, EmptyNextOffset, EmulatorConfig, ErrorBodyAs, FederatedCredential,
    LatestOffsetAs, LeaderlessAs, OkBodyAs, RackAs, RateLimit, RetryAfterAs, ThrottleAnswer,
};
pub use control::Control;
pub use entra::TokenSpec;
pub use kafka_config::KafkaVersion;
pub use keys::{ClientCertificatePem, client_certificate};
pub use observe::{FaultBody, FaultRule, Faults, LoggedRequest, REQUEST_LOG_CAPACITY, Stats};

/// Operation names used in [`Stats`], the request log and [`FaultRule::operations`].
pub const OPERATIONS: &[&str] = &[
    "token",
    "status",
    "create",
    "brokers",
    "list",
    "describe",
    "describe_partition",
    "produce",
    "consume",
    "discovery",
    "jwks",
    "unsupported",
    "unknown",
];

/// How the emulator listens.
#[derive(Clone, Debug)]
pub enum Transport {
    /// HTTPS with a generated CA; `dir` receives `ca.pem`, `server.pem` and `server-key.pem`.
    Tls { dir: PathBuf },
    /// Plain HTTP (MSAL refuses it; fine for Rust clients in tests).
    PlainHttp,
}

/// A started emulator. Dropping it stops the listener too; [`RunningEmulator::shutdown`] also
/// waits for open connections to close.
pub struct RunningEmulator {
    addr: SocketAddr,
    base_url: String,
    authority_url: String,
    ca_pem: Option<String>,
    control: Control,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl RunningEmulator {
    /// Binds `addr` (port 0 picks a free port) and serves the proxy and Entra there.
    pub async fn start(
        config: EmulatorConfig,
        addr: SocketAddr,
        transport: Transport,
    ) -> anyhow::Result<Self> {
        Self::start_with_authority(config, addr, None, transport).await
    }

    /// Like [`RunningEmulator::start`], and with `authority` set the Entra endpoints (token,
    /// discovery, keys) get a listener of their own there and the proxy listener answers them
    /// 404 — authority and endpoint differ as in Azure. Both listeners share the transport
    /// (one CA) and the control API.
    pub async fn start_with_authority(
        config: EmulatorConfig,
        addr: SocketAddr,
        authority: Option<SocketAddr>,
        transport: Transport,
    ) -> anyhow::Result<Self> {
        KafkaVersion::parse(&config.kafka_version).map_err(anyhow::Error::msg)?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr()?;
        let authority_listener = match authority {
            Some(at) => Some(
                TcpListener::bind(at)
                    .await
                    .with_context(|| format!("binding {at}"))?,
            ),
            None => None,
        };
        let host = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let key_file = config.signing_key_file.clone();
        let key = tokio::task::spawn_blocking(move || keys::SigningKey::load(key_file.as_deref()))
            .await
            .context("loading the signing key")??;
        let (tls, ca_pem, scheme) = match &transport {
            Transport::Tls { dir } => {
                let mut hosts = vec![host];
                if let Some(l) = &authority_listener {
                    hosts.push(l.local_addr()?.ip());
                }
                let (acceptor, ca) = tls::setup(dir, &hosts)?;
                (Some(acceptor), Some(ca), "https")
            }
            Transport::PlainHttp => (None, None, "http"),
        };
        let base_url = format!("{scheme}://{}", SocketAddr::new(host, addr.port()));
        let authority_url = match &authority_listener {
            Some(l) => {
                let at = l.local_addr()?;
                let ip = match at.ip() {
                    IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    ip => ip,
                };
                format!("{scheme}://{}", SocketAddr::new(ip, at.port()))
            }
            None => base_url.clone(),
        };
        let federation_http = federation_client(config.federated_issuer_ca_file.as_deref())?;
        let shared = Arc::new(server::Shared {
            federation_http: Mutex::new(federation_http),
            state: Mutex::new(server::State::new(&config)),
            config,
            base_url: base_url.clone(),
            authority_url: authority_url.clone(),
            key: keys::KeyRing::new(key),
        });
        let mut stops = Vec::new();
        let mut tasks = Vec::new();
        let proxy_role = if authority_listener.is_some() {
            server::Role::Proxy
        } else {
            server::Role::Both
        };
        let (stop, stopped) = oneshot::channel();
        stops.push(stop);
        tasks.push(tokio::spawn(server::serve(
            listener,
            tls.clone(),
            shared.clone(),
            proxy_role,
            stopped,
        )));
        if let Some(l) = authority_listener {
            let (stop, stopped) = oneshot::channel();
            stops.push(stop);
            tasks.push(tokio::spawn(server::serve(
                l,
                tls,
                shared.clone(),
                server::Role::Authority,
                stopped,
            )));
        }
        Ok(RunningEmulator {
            addr,
            base_url,
            authority_url,
            ca_pem,
            control: Control { shared },
            stops,
            tasks,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT` (or `http://`): the proxy endpoint, and the Entra authority
    /// host too unless it has a listener of its own.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The Entra authority host: [`RunningEmulator::base_url`], or the authority listener.
    pub fn authority_url(&self) -> String {
        self.authority_url.clone()
    }

    /// The CA that signed the server certificate (HTTPS only).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    pub fn tenant_id(&self) -> &str {
        &self.control.shared.config.tenant_id
    }

    /// The configuration the emulator runs with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.control.shared.config
    }

    /// `{authority_url}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority_url,
            self.tenant_id()
        )
    }

    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Stops accepting, closes open connections and waits for the server task.
    pub async fn shutdown(mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

/// The HTTPS client that fetches federated issuers' discovery documents and keys: TLS always
/// verified, trusting the certificates of `ca_file` (PEM) only.
fn federation_client(ca_file: Option<&str>) -> anyhow::Result<reqwest::Client> {
    let pem = match ca_file {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("reading {path}"))?),
        None => None,
    };
    federation_client_from_pem(pem.as_deref())
}

pub(crate) fn federation_client_from_pem(pem: Option<&[u8]>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10));
    if let Some(pem) = pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .context("the federated issuer CA holds no PEM certificates")?;
        if certs.is_empty() {
            anyhow::bail!("the federated issuer CA holds no PEM certificates");
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .context("building the federated issuer client")
}
