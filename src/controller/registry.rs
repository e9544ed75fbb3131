//! One [`ProxyClient`] per `KafkaRestProxy`, shared by every topic that uses it, and the shared
//! topic list of each proxy.
//!
//! A client is rebuilt only when what it was built from changes: the proxy's spec or the
//! `resourceVersion` of its Secret(s), read from a metadata-only watch, so that resolving a
//! client on the hot path costs no Kubernetes request. Builds are single flight per proxy.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::allowlist::{Allowlist, NotAllowed};
use crate::auth::{
    ClientAuth, ClientCertificate, ClientCredentials, SecretString, ServiceAccountTokenSource,
};
use crate::crd::{
    CredentialKind, DEFAULT_AUTHORITY, DEFAULT_BURST, DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_REQUEST_TIMEOUT_SECONDS, DEFAULT_REQUESTS_PER_SECOND, DEFAULT_SCOPE, KafkaRestProxy,
    SECRET_KEY_CLIENT_ID, SECRET_KEY_CLIENT_SECRET, SECRET_KEY_TENANT_ID, SECRET_KEY_TLS_CRT,
    SECRET_KEY_TLS_KEY,
};
use crate::proxy::{Limits, ProxyClient, ProxyClientConfig, ProxyError, ProxyObserver};

/// Default key of the CA bundle in `caBundleSecretRef`.
pub const DEFAULT_CA_KEY: &str = "ca.crt";

/// Why no client could be built. Messages name Secrets and keys, never values.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// A Secret the proxy names (credentials, certificate or CA bundle) does not exist.
    #[error("{0}")]
    SecretNotFound(String),
    #[error("{0}")]
    Credentials(String),
    /// The spec breaks a rule the CRD states (an object that bypassed admission).
    #[error("{0}")]
    InvalidSpec(String),
    #[error("could not read Secret {0}: {1}")]
    Kube(String, String),
    /// Off the operator's allowlists: nothing was read or sent.
    #[error("{0}")]
    NotAllowed(#[from] NotAllowed),
}

/// What a client was built from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fingerprint {
    spec: u64,
    secret_version: Option<String>,
    ca_version: Option<String>,
}

/// Why a proxy's client was (re)built, logged with the build and kept on the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildReason {
    /// No client existed for the proxy (first use, or after `forget`).
    FirstUse,
    /// The KafkaRestProxy spec changed (a new generation).
    SpecChanged,
    /// The credentials Secret (or the certificate Secret) changed.
    CredentialsChanged,
    /// The CA Secret changed.
    CaChanged,
}

impl BuildReason {
    /// What changed between the fingerprint a client was built from and the current one.
    fn between(previous: Option<&Fingerprint>, current: &Fingerprint) -> Self {
        match previous {
            None => Self::FirstUse,
            Some(p) if p.spec != current.spec => Self::SpecChanged,
            Some(p) if p.secret_version != current.secret_version => Self::CredentialsChanged,
            Some(_) => Self::CaChanged,
        }
    }
}

/// A built client and its shared list cache.
pub struct ProxyEntry {
    pub client: ProxyClient,
    pub endpoint: String,
    /// Why this client was built.
    pub built_because: BuildReason,
    fingerprint: Fingerprint,
    list: tokio::sync::Mutex<Option<ListSnapshot>>,
}

struct ListSnapshot {
    at: Instant,
    result: Result<Arc<HashSet<String>>, ProxyError>,
}

impl ProxyEntry {
    /// The proxy's topic names, fetched at most once per `freshness` for all callers together.
    /// Callers that arrive while a list is in flight wait for it instead of sending their own.
    /// Failures are remembered for the same window, so an outage costs one call per window too.
    pub async fn topic_names(
        &self,
        freshness: Duration,
    ) -> Result<Arc<HashSet<String>>, ProxyError> {
        let mut guard = self.list.lock().await;
        if let Some(snapshot) = guard.as_ref()
            && snapshot.at.elapsed() < freshness
        {
            return snapshot.result.clone();
        }
        let result = self
            .client
            .list_topics()
            .await
            .map(|names| Arc::new(names.into_iter().collect::<HashSet<_>>()));
        *guard = Some(ListSnapshot {
            at: Instant::now(),
            result: result.clone(),
        });
        result
    }
}

/// The clients of all proxies.
pub struct ProxyRegistry {
    kube: kube::Client,
    allowlist: Allowlist,
    observer: Arc<dyn ProxyObserver>,
    entries: Mutex<HashMap<String, Arc<ProxyEntry>>>,
    builds: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What identifies the spec a client was built from: the object's uid and generation (the API
/// server bumps the generation on every spec change), read without serialising anything.
fn spec_hash(proxy: &KafkaRestProxy) -> u64 {
    let mut h = DefaultHasher::new();
    proxy.metadata.uid.hash(&mut h);
    proxy.metadata.generation.hash(&mut h);
    if proxy.metadata.generation.is_none() {
        // Without a generation (an API server that does not set one), fall back to the spec.
        serde_json::to_string(&proxy.spec)
            .unwrap_or_default()
            .hash(&mut h);
    }
    h.finish()
}

fn secret_version(
    secrets: &Store<PartialObjectMeta<Secret>>,
    namespace: &str,
    name: &str,
) -> Option<String> {
    secrets
        .get(&ObjectRef::new(name).within(namespace))
        .and_then(|s| s.metadata.resource_version.clone())
}

/// Reads one key of a Secret as text. Trailing newlines (from `--from-file`) are dropped.
pub fn secret_value(secret: &Secret, secret_name: &str, key: &str) -> Result<String, ResolveError> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|s| s.as_bytes().to_vec())
        })
        .ok_or_else(|| {
            ResolveError::Credentials(format!("Secret {secret_name} has no key {key:?}"))
        })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        ResolveError::Credentials(format!(
            "Secret {secret_name} key {key:?} is not UTF-8 text"
        ))
    })?;
    let text = text.trim_end_matches(['\r', '\n']).to_string();
    if text.trim().is_empty() {
        return Err(ResolveError::Credentials(format!(
            "Secret {secret_name} key {key:?} is empty"
        )));
    }
    Ok(text)
}

/// Client-secret credentials from a Secret with tenantId, clientId and clientSecret.
pub fn secret_credentials(
    secret: &Secret,
    qualified: &str,
) -> Result<ClientCredentials, ResolveError> {
    Ok(ClientCredentials {
        tenant_id: secret_value(secret, qualified, SECRET_KEY_TENANT_ID)?,
        client_id: secret_value(secret, qualified, SECRET_KEY_CLIENT_ID)?,
        auth: ClientAuth::Secret(SecretString::new(secret_value(
            secret,
            qualified,
            SECRET_KEY_CLIENT_SECRET,
        )?)),
    })
}

/// The certificate and key of a kubernetes.io/tls Secret (tls.crt, tls.key).
pub fn certificate_of(secret: &Secret, qualified: &str) -> Result<ClientCertificate, ResolveError> {
    let cert = secret_value(secret, qualified, SECRET_KEY_TLS_CRT)?;
    let key = secret_value(secret, qualified, SECRET_KEY_TLS_KEY)?;
    ClientCertificate::from_pem(cert.as_bytes(), key.as_bytes()).map_err(|e| {
        // "invalid token configuration: tls.key ..." → "Secret ns/name: tls.key ..."
        let detail = match e {
            crate::auth::AuthError::InvalidConfig(m) => m,
            other => other.to_string(),
        };
        ResolveError::Credentials(format!("Secret {qualified}: {detail}"))
    })
}

/// The client limits a proxy's spec asks for.
pub fn limits_of(proxy: &KafkaRestProxy) -> Limits {
    let l = proxy.spec.limits.clone().unwrap_or_default();
    let positive = |v: Option<i32>, d: i32| u32::try_from(v.unwrap_or(d)).unwrap_or(0);
    Limits {
        requests_per_second: positive(l.requests_per_second, DEFAULT_REQUESTS_PER_SECOND),
        burst: positive(l.burst, DEFAULT_BURST).max(1),
        max_concurrent: positive(l.max_concurrent_requests, DEFAULT_MAX_CONCURRENT_REQUESTS).max(1),
        request_timeout: Duration::from_secs(u64::from(positive(
            l.request_timeout_seconds,
            DEFAULT_REQUEST_TIMEOUT_SECONDS,
        )))
        .max(Duration::from_secs(1)),
    }
}

/// Builds the client configuration from a proxy and its Secret contents.
pub fn client_config(
    proxy: &KafkaRestProxy,
    credentials: ClientCredentials,
    extra_ca_pem: Option<String>,
) -> Result<ProxyClientConfig, ResolveError> {
    let endpoint = url::Url::parse(&proxy.spec.endpoint).map_err(|e| {
        ResolveError::InvalidSpec(format!("spec.endpoint {:?}: {e}", proxy.spec.endpoint))
    })?;
    let authority_text = proxy
        .spec
        .authority
        .clone()
        .unwrap_or_else(|| DEFAULT_AUTHORITY.to_string());
    let authority = url::Url::parse(&authority_text).map_err(|e| {
        ResolveError::InvalidSpec(format!("spec.authority {authority_text:?}: {e}"))
    })?;
    let ns = proxy.metadata.namespace.clone().unwrap_or_default();
    let name = proxy.metadata.name.clone().unwrap_or_default();
    Ok(ProxyClientConfig {
        name: format!("{ns}/{name}"),
        endpoint,
        allow_insecure_http: proxy.spec.allow_insecure_http.unwrap_or(false),
        authority,
        scope: proxy
            .spec
            .scope
            .clone()
            .unwrap_or_else(|| DEFAULT_SCOPE.to_string()),
        credentials,
        extra_ca_pem,
        limits: limits_of(proxy),
        max_retries: 3,
    })
}

impl ProxyRegistry {
    pub fn new(kube: kube::Client, observer: Arc<dyn ProxyObserver>) -> Self {
        Self {
            kube,
            allowlist: Allowlist::default(),
            observer,
            entries: Mutex::new(HashMap::new()),
            builds: Mutex::new(HashMap::new()),
        }
    }

    /// Uses `allowlist` instead of the secure defaults.
    pub fn with_allowlist(mut self, allowlist: Allowlist) -> Self {
        self.allowlist = allowlist;
        self
    }

    /// Whether the operator's allowlists let `proxy` be used: checked on the spec's text before
    /// anything is read, built or resolved.
    pub fn allowed(&self, proxy: &KafkaRestProxy) -> Result<(), NotAllowed> {
        self.allowlist.check(
            &proxy.spec.endpoint,
            proxy.spec.authority.as_deref().unwrap_or(DEFAULT_AUTHORITY),
            proxy.spec.scope.as_deref().unwrap_or(DEFAULT_SCOPE),
        )
    }

    fn fingerprint(
        proxy: &KafkaRestProxy,
        secrets: &Store<PartialObjectMeta<Secret>>,
    ) -> Fingerprint {
        let ns = proxy.metadata.namespace.clone().unwrap_or_default();
        Fingerprint {
            spec: spec_hash(proxy),
            secret_version: proxy
                .spec
                .credentials
                .secret_name()
                .and_then(|name| secret_version(secrets, &ns, name)),
            ca_version: proxy
                .spec
                .ca_bundle_secret_ref
                .as_ref()
                .and_then(|r| secret_version(secrets, &ns, &r.name)),
        }
    }

    /// The entry for `key` if it was built from what `fp` describes. Before the Secret cache
    /// has synced, a version it does not know yet matches whatever the entry was built from.
    fn cached(&self, key: &str, fp: &Fingerprint, synced: bool) -> Option<Arc<ProxyEntry>> {
        let same = |built: &Option<String>, seen: &Option<String>| match seen {
            Some(v) => built.as_ref() == Some(v),
            None => !synced || built.is_none(),
        };
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|e| {
                e.fingerprint.spec == fp.spec
                    && same(&e.fingerprint.secret_version, &fp.secret_version)
                    && same(&e.fingerprint.ca_version, &fp.ca_version)
            })
            .cloned()
    }

    /// Drops the client of a proxy (deleted proxy, or a Secret that became invalid).
    pub fn forget(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// The client for `proxy`, built or rebuilt if needed.
    pub async fn resolve(
        &self,
        proxy: &KafkaRestProxy,
        secrets: &Store<PartialObjectMeta<Secret>>,
    ) -> Result<Arc<ProxyEntry>, ResolveError> {
        let ns = proxy.metadata.namespace.clone().unwrap_or_default();
        let key = format!("{ns}/{}", proxy.metadata.name.clone().unwrap_or_default());
        if let Err(e) = self.allowed(proxy) {
            self.forget(&key);
            return Err(e.into());
        }
        let fp = Self::fingerprint(proxy, secrets);
        let synced = futures::FutureExt::now_or_never(secrets.wait_until_ready()).is_some();
        if let Some(entry) = self.cached(&key, &fp, synced) {
            return Ok(entry);
        }
        let lock = {
            let mut builds = self.builds.lock().unwrap_or_else(|e| e.into_inner());
            builds.entry(key.clone()).or_default().clone()
        };
        let _guard = lock.lock().await;
        if let Some(entry) = self.cached(&key, &fp, synced) {
            return Ok(entry);
        }
        let previous_entry = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let why = BuildReason::between(previous_entry.as_ref().map(|e| &e.fingerprint), &fp);
        tracing::info!(proxy = %key, reason = ?why, "building the proxy client");
        match self.build(proxy, &ns).await {
            Ok((client, built)) => {
                // A rebuilt client (rotated credentials, changed spec) keeps the rate-limit
                // bucket and any Retry-After block of the one it replaces.
                if let Some(previous) = &previous_entry {
                    client.continue_from(&previous.client);
                }
                // Versions the metadata store does not have yet are taken from the read, field
                // by field, so that the store catching up does not look like a change.
                let fingerprint = Fingerprint {
                    spec: fp.spec,
                    secret_version: fp.secret_version.clone().or(built.secret_version),
                    ca_version: fp.ca_version.clone().or(built.ca_version),
                };
                let entry = Arc::new(ProxyEntry {
                    endpoint: proxy.spec.endpoint.clone(),
                    client,
                    built_because: why,
                    fingerprint,
                    list: tokio::sync::Mutex::new(None),
                });
                self.entries
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, entry.clone());
                Ok(entry)
            }
            Err(e) => {
                self.forget(&key);
                Err(e)
            }
        }
    }

    async fn read_secret(&self, ns: &str, name: &str) -> Result<Secret, ResolveError> {
        let api: Api<Secret> = Api::namespaced(self.kube.clone(), ns);
        match api.get_opt(name).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(ResolveError::SecretNotFound(format!(
                "Secret {ns}/{name} does not exist"
            ))),
            Err(e) => Err(ResolveError::Kube(format!("{ns}/{name}"), e.to_string())),
        }
    }

    async fn build(
        &self,
        proxy: &KafkaRestProxy,
        ns: &str,
    ) -> Result<(ProxyClient, Fingerprint), ResolveError> {
        let kind = proxy
            .spec
            .credentials
            .kind()
            .map_err(ResolveError::InvalidSpec)?;
        let (credentials, secret_version) = match kind {
            CredentialKind::Secret(r) => {
                let secret = self.read_secret(ns, &r.name).await?;
                (
                    secret_credentials(&secret, &format!("{ns}/{}", r.name))?,
                    secret.metadata.resource_version.clone(),
                )
            }
            CredentialKind::Certificate(c) => {
                let secret = self.read_secret(ns, &c.secret_ref.name).await?;
                let certificate = certificate_of(&secret, &format!("{ns}/{}", c.secret_ref.name))?;
                (
                    ClientCredentials {
                        tenant_id: c.tenant_id.clone(),
                        client_id: c.client_id.clone(),
                        auth: ClientAuth::Certificate(Arc::new(certificate)),
                    },
                    secret.metadata.resource_version.clone(),
                )
            }
            CredentialKind::WorkloadIdentity(w) => (
                ClientCredentials {
                    tenant_id: w.tenant_id.clone(),
                    client_id: w.client_id.clone(),
                    auth: ClientAuth::Federated(Arc::new(ServiceAccountTokenSource::new(
                        self.kube.clone(),
                        ns,
                        &w.service_account_name,
                    ))),
                },
                None,
            ),
        };
        let (ca, ca_version) = match &proxy.spec.ca_bundle_secret_ref {
            Some(r) => {
                let ca_secret = self.read_secret(ns, &r.name).await?;
                let key = r.key.clone().unwrap_or_else(|| DEFAULT_CA_KEY.to_string());
                let pem = secret_value(&ca_secret, &format!("{ns}/{}", r.name), &key)?;
                (Some(pem), ca_secret.metadata.resource_version.clone())
            }
            None => (None, None),
        };
        let config = client_config(proxy, credentials, ca)?;
        let client = ProxyClient::new(config, self.observer.clone())
            .map_err(|e| ResolveError::Credentials(e.to_string()))?;
        Ok((
            client,
            Fingerprint {
                spec: 0,
                secret_version,
                ca_version,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::KafkaRestProxySpec;
    use k8s_openapi::ByteString;

    fn proxy(spec: serde_json::Value) -> KafkaRestProxy {
        let spec: KafkaRestProxySpec = serde_json::from_value(spec).expect("spec");
        let mut p = KafkaRestProxy::new("hdi", spec);
        p.metadata.namespace = Some("kafka".into());
        p
    }

    #[tokio::test]
    async fn a_proxy_off_the_allowlists_is_refused_before_anything_is_read() {
        // The Kubernetes client points at a closed port: reading the Secret would fail with a
        // Kube error, so NotAllowed proves the check came first.
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let registry = ProxyRegistry::new(client, Arc::new(crate::proxy::NoopObserver));
        let (store, _writer) = kube::runtime::reflector::store::<PartialObjectMeta<Secret>>();
        for (spec, endpoint_refused) in [
            (
                serde_json::json!({"endpoint": "https://attacker.example",
                                   "credentials": {"secretRef": {"name": "s"}}}),
                true,
            ),
            (
                serde_json::json!({"endpoint": "https://c.azurehdinsight.net",
                                   "authority": "https://169.254.169.254",
                                   "credentials": {"secretRef": {"name": "s"}}}),
                true,
            ),
            (
                serde_json::json!({"endpoint": "https://c.azurehdinsight.net",
                                   "scope": "https://vault.azure.net/.default",
                                   "credentials": {"secretRef": {"name": "s"}}}),
                false,
            ),
        ] {
            match registry.resolve(&proxy(spec.clone()), &store).await {
                Err(ResolveError::NotAllowed(NotAllowed::Endpoint(_))) if endpoint_refused => {}
                Err(ResolveError::NotAllowed(NotAllowed::Scope(_))) if !endpoint_refused => {}
                Err(other) => panic!("{spec}: {other}"),
                Ok(_) => panic!("{spec}: resolved"),
            }
        }
    }

    #[test]
    fn limits_default_and_zero_means_unlimited() {
        let p = proxy(serde_json::json!({
            "endpoint": "https://c-kafkarest.azurehdinsight.net",
            "credentials": {"secretRef": {"name": "s"}}
        }));
        let l = limits_of(&p);
        assert_eq!(l.requests_per_second, 100);
        assert_eq!(l.burst, 200);
        assert_eq!(l.max_concurrent, 16);
        assert_eq!(l.request_timeout, Duration::from_secs(10));
        let p = proxy(serde_json::json!({
            "endpoint": "https://c-kafkarest.azurehdinsight.net",
            "credentials": {"secretRef": {"name": "s"}},
            "limits": {"requestsPerSecond": 0, "maxConcurrentRequests": 64}
        }));
        let l = limits_of(&p);
        assert_eq!(l.requests_per_second, 0);
        assert_eq!(l.max_concurrent, 64);
    }

    #[test]
    fn secret_values_are_trimmed_and_missing_keys_named_without_values() {
        let s = Secret {
            data: Some(
                [
                    ("clientId".to_string(), ByteString(b"app\n".to_vec())),
                    ("clientSecret".to_string(), ByteString(b"  \n".to_vec())),
                ]
                .into(),
            ),
            ..Default::default()
        };
        assert_eq!(
            secret_value(&s, "kafka/sp", "clientId").expect("present"),
            "app"
        );
        let err = secret_value(&s, "kafka/sp", "tenantId").expect_err("missing");
        assert_eq!(err.to_string(), "Secret kafka/sp has no key \"tenantId\"");
        let err = secret_value(&s, "kafka/sp", "clientSecret").expect_err("blank");
        assert_eq!(
            err.to_string(),
            "Secret kafka/sp key \"clientSecret\" is empty"
        );
    }

    /// Both emulators (the sandbox's setup: the example Secret, CA Secret and KafkaRestProxy
    /// `kafka/default`), a registry that may reach them, and the proxy as stored.
    async fn sandbox() -> (
        tempfile::TempDir,
        sandbox::env::Env,
        ProxyRegistry,
        KafkaRestProxy,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cluster = sandbox::env::ClusterSettings {
            out_of_band_delay: Duration::ZERO,
            visibility_delay: Duration::ZERO,
            ..Default::default()
        };
        let env = sandbox::env::Env::start(dir.path(), &cluster)
            .await
            .expect("emulators");
        env.install(sandbox::env::CLIENT_SECRET)
            .await
            .expect("install");
        let hosts: Vec<crate::allowlist::HostPattern> = sandbox::env::LOOPBACK_HOSTS
            .split(',')
            .map(|h| crate::allowlist::HostPattern::parse(h).expect("host"))
            .collect();
        let registry = ProxyRegistry::new(env.client.clone(), Arc::new(crate::proxy::NoopObserver))
            .with_allowlist(Allowlist {
                endpoint_hosts: hosts.clone(),
                authority_hosts: hosts,
                ..Allowlist::default()
            });
        let proxies: Api<KafkaRestProxy> =
            Api::namespaced(env.client.clone(), sandbox::env::NAMESPACE);
        let proxy = proxies.get("default").await.expect("proxy");
        (dir, env, registry, proxy)
    }

    /// Puts the Secrets' current metadata into `writer`, as the operator's metadata watch does
    /// on a (re)list.
    async fn observe_secrets(
        env: &sandbox::env::Env,
        writer: &mut kube::runtime::reflector::store::Writer<PartialObjectMeta<Secret>>,
    ) {
        use kube::runtime::watcher::Event;
        let secrets: Api<Secret> = Api::namespaced(env.client.clone(), sandbox::env::NAMESPACE);
        writer.apply_watcher_event(&Event::Init);
        for name in ["hdi-sp", "hdi-ca"] {
            let meta = secrets.get_metadata(name).await.expect("secret metadata");
            writer.apply_watcher_event(&Event::InitApply(meta));
        }
        writer.apply_watcher_event(&Event::InitDone);
    }

    /// Changes a Secret without changing its data (a new resourceVersion, as a rotation has).
    async fn touch_secret(env: &sandbox::env::Env, name: &str, n: usize) {
        let secrets: Api<Secret> = Api::namespaced(env.client.clone(), sandbox::env::NAMESPACE);
        let patch = serde_json::json!({"metadata": {"labels": {"touched": n.to_string()}}});
        secrets
            .patch(
                name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
            .expect("patch secret");
    }

    #[tokio::test]
    async fn a_client_is_reused_until_its_spec_or_secrets_change() {
        let (_dir, env, registry, proxy) = sandbox().await;
        let (store, mut writer) = kube::runtime::reflector::store::<PartialObjectMeta<Secret>>();

        // Before the Secret cache has synced, unknown versions match what the client was built
        // from.
        let first = registry.resolve(&proxy, &store).await.expect("resolve");
        assert_eq!(first.endpoint, proxy.spec.endpoint);
        assert_eq!(first.built_because, BuildReason::FirstUse);
        let again = registry.resolve(&proxy, &store).await.expect("resolve");
        assert!(Arc::ptr_eq(&first, &again), "rebuilt without a change");

        // The cache catches up with the versions the build read: still no rebuild.
        observe_secrets(&env, &mut writer).await;
        let synced = registry.resolve(&proxy, &store).await.expect("resolve");
        assert!(
            Arc::ptr_eq(&first, &synced),
            "rebuilt when the cache synced"
        );

        // A new spec generation: rebuilt once, then reused.
        let mut changed = proxy.clone();
        changed.metadata.generation = Some(proxy.metadata.generation.unwrap_or(1) + 1);
        let rebuilt = registry.resolve(&changed, &store).await.expect("resolve");
        assert!(
            !Arc::ptr_eq(&first, &rebuilt),
            "a spec change kept the old client"
        );
        assert_eq!(rebuilt.built_because, BuildReason::SpecChanged);
        let reused = registry.resolve(&changed, &store).await.expect("resolve");
        assert!(Arc::ptr_eq(&rebuilt, &reused));

        // The credentials Secret changes: rebuilt.
        touch_secret(&env, "hdi-sp", 1).await;
        observe_secrets(&env, &mut writer).await;
        let rotated = registry.resolve(&changed, &store).await.expect("resolve");
        assert!(
            !Arc::ptr_eq(&reused, &rotated),
            "a Secret change kept the old client"
        );
        assert_eq!(rotated.built_because, BuildReason::CredentialsChanged);
        assert!(Arc::ptr_eq(
            &rotated,
            &registry.resolve(&changed, &store).await.expect("resolve")
        ));

        // The CA Secret changes: rebuilt.
        touch_secret(&env, "hdi-ca", 2).await;
        observe_secrets(&env, &mut writer).await;
        let new_ca = registry.resolve(&changed, &store).await.expect("resolve");
        assert!(
            !Arc::ptr_eq(&rotated, &new_ca),
            "a CA change kept the old client"
        );
        assert_eq!(new_ca.built_because, BuildReason::CaChanged);

        // Forgotten (the proxy was deleted and came back): built anew.
        registry.forget("kafka/default");
        let after_forget = registry.resolve(&changed, &store).await.expect("resolve");
        assert!(!Arc::ptr_eq(&new_ca, &after_forget));
        assert_eq!(after_forget.built_because, BuildReason::FirstUse);

        // The credentials Secret is gone: `SecretNotFound` naming it, and no client kept.
        let secrets: Api<Secret> = Api::namespaced(env.client.clone(), sandbox::env::NAMESPACE);
        secrets
            .delete("hdi-sp", &Default::default())
            .await
            .expect("delete");
        let mut rebuilt_spec = changed.clone();
        rebuilt_spec.metadata.generation = changed.metadata.generation.map(|g| g + 1);
        match registry.resolve(&rebuilt_spec, &store).await {
            Err(ResolveError::SecretNotFound(m)) => {
                assert_eq!(m, "Secret kafka/hdi-sp does not exist")
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("resolved without its Secret"),
        }
    }

    #[tokio::test]
    async fn the_topic_list_is_shared_within_its_freshness() {
        let (_dir, env, registry, proxy) = sandbox().await;
        let (store, _writer) = kube::runtime::reflector::store::<PartialObjectMeta<Secret>>();
        let entry = registry.resolve(&proxy, &store).await.expect("resolve");
        let lists = || {
            env.hdi
                .control()
                .stats()
                .requests
                .iter()
                .filter(|(op, _)| op.contains("list"))
                .flat_map(|(_, by_status)| by_status.values())
                .sum::<u64>()
        };
        let control = env.hdi.control();
        control
            .create_topic_out_of_band("orders", 1, 1)
            .expect("topic");
        let minute = Duration::from_secs(60);
        let names = entry.topic_names(minute).await.expect("list");
        assert!(names.contains("orders"), "{names:?}");
        assert_eq!(lists(), 1);

        // Within the minute: the same answer, no request, although the cluster changed.
        control
            .create_topic_out_of_band("payments", 1, 1)
            .expect("topic");
        let cached = entry.topic_names(minute).await.expect("list");
        assert_eq!(cached, names);
        assert_eq!(lists(), 1);

        // Past its freshness: listed again.
        let fresh = entry.topic_names(Duration::ZERO).await.expect("list");
        assert!(
            fresh.contains("orders") && fresh.contains("payments"),
            "{fresh:?}"
        );
        assert_eq!(lists(), 2);
    }
}
