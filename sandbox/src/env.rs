//! Both emulators, a Kubernetes client for them, and the example setup applied to them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hdinsight_emulator::{AppConfig, EmulatorConfig, RunningEmulator, Transport};
use hdinsight_topic_operator::crd::{
    KafkaRestProxy, KafkaRestProxySpec, KafkaTopic, SecretKeyReference,
};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Resource, ResourceExt};
use kube_emulator::{KubeEmulatorConfig, RunningKube};
use serde::de::DeserializeOwned;

/// The example Secret's values: the emulator is configured to accept exactly these.
pub const TENANT_ID: &str = "00000000-0000-0000-0000-000000000001";
pub const CLIENT_ID: &str = "00000000-0000-0000-0000-00000000a001";
pub const CLIENT_SECRET: &str = "sandbox-client-secret";
pub const CLUSTER_GROUP_ID: &str = "00000000-0000-0000-0000-0000000000c1";
pub const NAMESPACE: &str = "kafka";
/// Name of the example KafkaRestProxy.
pub const PROXY_NAME: &str = "default";
/// The kubernetes.io/tls Secret of certificate credentials.
pub const CERTIFICATE_SECRET: &str = "app-cert";
/// The ServiceAccount of workload identity credentials.
pub const WORKLOAD_SERVICE_ACCOUNT: &str = "kafka-writer";

/// The operator's allowlists refuse everything but the HDInsight and Entra domains by default;
/// the emulators listen on loopback addresses, which are listed here explicitly.
pub const LOOPBACK_HOSTS: &str = "127.0.0.1,127.0.0.2";

/// The environment that lets an operator process reach the emulators.
pub fn sandbox_allowlist_env() -> [(&'static str, &'static str); 2] {
    [
        ("HDI_ALLOWED_ENDPOINT_HOSTS", LOOPBACK_HOSTS),
        ("HDI_ALLOWED_AUTHORITY_HOSTS", LOOPBACK_HOSTS),
    ]
}

/// The allowlist of an in-process operator that talks to the emulators.
pub fn loopback_allowlist() -> hdinsight_topic_operator::allowlist::Allowlist {
    use hdinsight_topic_operator::allowlist::{Allowlist, HostPattern};
    let hosts: Vec<HostPattern> = LOOPBACK_HOSTS
        .split(',')
        .filter_map(|h| HostPattern::parse(h).ok())
        .collect();
    Allowlist {
        endpoint_hosts: hosts.clone(),
        authority_hosts: hosts,
        ..Allowlist::default()
    }
}

/// The repository root (the sandbox crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Settings of the emulated HDInsight cluster.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    pub visibility_delay: Duration,
    pub out_of_band_delay: Duration,
    pub latency: Duration,
    pub app_in_group: bool,
    pub token_lifetime: Duration,
    /// Further changes to the emulated cluster (management nodes, rate limit, clock skew…).
    pub emulator: Option<fn(&mut EmulatorConfig)>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            visibility_delay: Duration::from_secs(2),
            out_of_band_delay: Duration::from_secs(3),
            latency: Duration::ZERO,
            app_in_group: true,
            token_lifetime: Duration::from_secs(3599),
            emulator: None,
        }
    }
}

pub struct Env {
    pub dir: PathBuf,
    pub hdi: RunningEmulator,
    pub kube: RunningKube,
    pub kubeconfig: PathBuf,
    pub client: Client,
    /// The settings every emulated cluster of this environment is started with.
    pub cluster: ClusterSettings,
}

impl Env {
    /// Starts both emulators (HTTPS, generated CAs) and writes `dir/kubeconfig`.
    pub async fn start(dir: &Path, cluster: &ClusterSettings) -> anyhow::Result<Self> {
        Self::start_with(dir, cluster, false).await
    }

    /// Like [`Env::start`], with the Kubernetes emulator authorizing every request with RBAC.
    /// `client` and `dir/kubeconfig` are the admin (system:masters); give the operator the
    /// identity of a ServiceAccount with [`Env::service_account_kubeconfig`].
    pub async fn start_rbac(dir: &Path, cluster: &ClusterSettings) -> anyhow::Result<Self> {
        Self::start_with(dir, cluster, true).await
    }

    async fn start_with(dir: &Path, cluster: &ClusterSettings, rbac: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let loopback: SocketAddr = "127.0.0.1:0".parse()?;
        let hdi = start_cluster(&dir.join("hdinsight"), cluster).await?;
        let kube_config = KubeEmulatorConfig {
            rbac,
            // As AKS's public OIDC issuer: Entra ID reads the discovery document and keys
            // without credentials.
            anonymous_issuer_discovery: true,
            ..KubeEmulatorConfig::default()
        };
        let kube = RunningKube::start(kube_config, loopback)
            .await
            .context("starting the Kubernetes emulator")?;
        // Entra (the HDInsight emulator) fetches the cluster's issuer keys over HTTPS for
        // workload identity federation: trust the Kubernetes emulator's CA.
        if let Some(ca) = kube.ca_pem() {
            hdi.control()
                .trust_federated_issuer_ca(&ca)
                .map_err(anyhow::Error::msg)
                .context("trusting the Kubernetes emulator's issuer")?;
        }
        let kubeconfig = dir.join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig)?;
        let client = client_for(&kubeconfig).await?;
        Ok(Self {
            dir: dir.to_path_buf(),
            hdi,
            kube,
            kubeconfig,
            client,
            cluster: cluster.clone(),
        })
    }

    /// CRDs, the namespace, the Secrets and the KafkaRestProxy pointing at the emulator.
    pub async fn install(&self, client_secret: &str) -> anyhow::Result<()> {
        install_crds(&self.client).await?;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(NAMESPACE.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        create_or_keep(&namespaces, &ns).await?;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), NAMESPACE);
        let mut sp: Secret = read_example("secret.yaml")?;
        let mut data = sp.string_data.take().unwrap_or_default();
        data.insert("clientSecret".into(), client_secret.into());
        sp.string_data = Some(data);
        create_or_keep(&secrets, &sp).await?;
        let ca = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("hdi-ca".into()),
                namespace: Some(NAMESPACE.into()),
                ..Default::default()
            },
            string_data: Some(
                [("ca.crt".to_string(), self.hdi.ca_pem().unwrap_or_default())].into(),
            ),
            ..Default::default()
        };
        create_or_keep(&secrets, &ca).await?;
        let mut proxy: KafkaRestProxy = read_example("kafkarestproxy.yaml")?;
        proxy.spec = KafkaRestProxySpec {
            endpoint: self.hdi.base_url(),
            authority: Some(self.hdi.authority_url()),
            ca_bundle_secret_ref: Some(SecretKeyReference {
                name: "hdi-ca".into(),
                key: Some("ca.crt".into()),
            }),
            ..proxy.spec
        };
        let proxies: Api<KafkaRestProxy> = Api::namespaced(self.client.clone(), NAMESPACE);
        create_or_keep(&proxies, &proxy).await?;
        Ok(())
    }

    /// Another emulated HDInsight cluster (its own REST proxy, Entra ID and CA, the same app
    /// and settings) and a KafkaRestProxy `name` in [`NAMESPACE`] pointing at it, using the
    /// example credentials Secret. Call after [`Env::install`].
    pub async fn add_cluster(&self, name: &str) -> anyhow::Result<RunningEmulator> {
        let hdi = start_cluster(&self.dir.join(format!("hdinsight-{name}")), &self.cluster).await?;
        if let Some(ca) = self.kube.ca_pem() {
            hdi.control()
                .trust_federated_issuer_ca(&ca)
                .map_err(anyhow::Error::msg)
                .context("trusting the Kubernetes emulator's issuer")?;
        }
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), NAMESPACE);
        let ca_secret = format!("hdi-ca-{name}");
        let ca = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(ca_secret.clone()),
                namespace: Some(NAMESPACE.into()),
                ..Default::default()
            },
            string_data: Some([("ca.crt".to_string(), hdi.ca_pem().unwrap_or_default())].into()),
            ..Default::default()
        };
        create_or_keep(&secrets, &ca).await?;
        let mut proxy: KafkaRestProxy = read_example("kafkarestproxy.yaml")?;
        proxy.metadata.name = Some(name.into());
        proxy.spec = KafkaRestProxySpec {
            endpoint: hdi.base_url(),
            authority: Some(hdi.authority_url()),
            ca_bundle_secret_ref: Some(SecretKeyReference {
                name: ca_secret,
                key: Some("ca.crt".into()),
            }),
            ..proxy.spec
        };
        let proxies: Api<KafkaRestProxy> = Api::namespaced(self.client.clone(), NAMESPACE);
        create_or_keep(&proxies, &proxy).await?;
        Ok(hdi)
    }

    /// Switches the example KafkaRestProxy to certificate credentials: registers a fresh
    /// certificate (key cached per `name`) on the app, stores it in the kubernetes.io/tls
    /// Secret `app-cert` (replacing what was there) and points the proxy at it. Returns the
    /// certificate and key, so tests can look for the key in logs.
    pub async fn use_certificate(
        &self,
        name: &str,
    ) -> anyhow::Result<hdinsight_emulator::ClientCertificatePem> {
        let cert = hdinsight_emulator::client_certificate(name)?;
        if !self
            .hdi
            .control()
            .set_app_certificates(CLIENT_ID, vec![cert.cert_pem.clone()])
        {
            bail!("the emulator has no app {CLIENT_ID}");
        }
        self.put_certificate_secret(&cert).await?;
        self.patch_credentials(serde_json::json!({
            "certificate": {
                "secretRef": {"name": CERTIFICATE_SECRET},
                "tenantId": TENANT_ID,
                "clientId": CLIENT_ID,
            }
        }))
        .await?;
        Ok(cert)
    }

    /// Writes `cert` to the kubernetes.io/tls Secret `app-cert` (created or replaced).
    pub async fn put_certificate_secret(
        &self,
        cert: &hdinsight_emulator::ClientCertificatePem,
    ) -> anyhow::Result<()> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), NAMESPACE);
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(CERTIFICATE_SECRET.into()),
                namespace: Some(NAMESPACE.into()),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            string_data: Some(
                [
                    ("tls.crt".to_string(), cert.cert_pem.clone()),
                    ("tls.key".to_string(), cert.key_pem.clone()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        match secrets.get_opt(CERTIFICATE_SECRET).await? {
            Some(existing) => {
                let mut replaced = secret;
                replaced.metadata.resource_version = existing.metadata.resource_version;
                secrets
                    .replace(CERTIFICATE_SECRET, &PostParams::default(), &replaced)
                    .await?;
            }
            None => {
                secrets.create(&PostParams::default(), &secret).await?;
            }
        }
        Ok(())
    }

    /// Switches the example KafkaRestProxy to workload identity: creates the ServiceAccount
    /// `kafka-writer`, gives the app a federated credential for it (this cluster's issuer,
    /// subject `system:serviceaccount:kafka:kafka-writer` unless `subject` says otherwise,
    /// audience `api://AzureADTokenExchange`) and points the proxy at it.
    pub async fn use_workload_identity(&self, subject: Option<&str>) -> anyhow::Result<()> {
        use k8s_openapi::api::core::v1::ServiceAccount;
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), NAMESPACE);
        let account: ServiceAccount = serde_json::from_value(serde_json::json!({
            "metadata": {"name": WORKLOAD_SERVICE_ACCOUNT, "namespace": NAMESPACE}
        }))?;
        create_or_keep(&accounts, &account).await?;
        let default_subject =
            format!("system:serviceaccount:{NAMESPACE}:{WORKLOAD_SERVICE_ACCOUNT}");
        let credential = hdinsight_emulator::FederatedCredential {
            issuer: self.kube.service_account_issuer(),
            subject: subject.unwrap_or(&default_subject).to_string(),
            audiences: vec!["api://AzureADTokenExchange".into()],
        };
        if !self
            .hdi
            .control()
            .set_app_federated_credentials(CLIENT_ID, vec![credential])
        {
            bail!("the emulator has no app {CLIENT_ID}");
        }
        self.patch_credentials(serde_json::json!({
            "workloadIdentity": {
                "serviceAccountName": WORKLOAD_SERVICE_ACCOUNT,
                "tenantId": TENANT_ID,
                "clientId": CLIENT_ID,
            }
        }))
        .await
    }

    /// Replaces the example KafkaRestProxy's `spec.credentials` with `credentials`.
    async fn patch_credentials(&self, credentials: serde_json::Value) -> anyhow::Result<()> {
        use kube::api::{Patch, PatchParams};
        let proxies: Api<KafkaRestProxy> = Api::namespaced(self.client.clone(), NAMESPACE);
        // A JSON merge patch: `null` removes the kinds not chosen.
        let mut all = serde_json::json!({
            "secretRef": null, "certificate": null, "workloadIdentity": null
        });
        if let (Some(all), Some(chosen)) = (all.as_object_mut(), credentials.as_object()) {
            for (k, v) in chosen {
                all.insert(k.clone(), v.clone());
            }
        }
        proxies
            .patch(
                PROXY_NAME,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"credentials": all}})),
            )
            .await
            .context("switching the KafkaRestProxy's credentials")?;
        Ok(())
    }

    /// Creates the ServiceAccounts, Roles, ClusterRoles, RoleBindings and ClusterRoleBindings
    /// among `docs` (a rendered manifest, e.g. `helm template` of the chart) as the admin;
    /// other kinds are left out. Returns how many objects were created or already there.
    pub async fn apply_rbac(&self, docs: &[serde_json::Value]) -> anyhow::Result<usize> {
        use k8s_openapi::api::core::v1::ServiceAccount;
        use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
        let mut applied = 0;
        for doc in docs {
            let kind = doc.get("kind").and_then(serde_json::Value::as_str);
            let ns = doc
                .pointer("/metadata/namespace")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("default");
            let c = self.client.clone();
            match kind {
                Some("ServiceAccount") => {
                    let o: ServiceAccount = serde_json::from_value(doc.clone())?;
                    create_or_keep(&Api::namespaced(c, ns), &o).await?;
                }
                Some("Role") => {
                    let o: Role = serde_json::from_value(doc.clone())?;
                    create_or_keep(&Api::namespaced(c, ns), &o).await?;
                }
                Some("RoleBinding") => {
                    let o: RoleBinding = serde_json::from_value(doc.clone())?;
                    create_or_keep(&Api::namespaced(c, ns), &o).await?;
                }
                Some("ClusterRole") => {
                    let o: ClusterRole = serde_json::from_value(doc.clone())?;
                    create_or_keep(&Api::all(c), &o).await?;
                }
                Some("ClusterRoleBinding") => {
                    let o: ClusterRoleBinding = serde_json::from_value(doc.clone())?;
                    create_or_keep(&Api::all(c), &o).await?;
                }
                _ => continue,
            }
            applied += 1;
        }
        Ok(applied)
    }

    /// Requests a token for the ServiceAccount `namespace/name` (TokenRequest, one hour) and
    /// writes a kubeconfig that presents it to `dir/NAME.kubeconfig`.
    pub async fn service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
    ) -> anyhow::Result<PathBuf> {
        use k8s_openapi::api::authentication::v1::TokenRequest;
        use k8s_openapi::api::core::v1::ServiceAccount;
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let issued = accounts
            .create_token_request(name, &PostParams::default(), &TokenRequest::default())
            .await
            .with_context(|| format!("requesting a token for {namespace}/{name}"))?;
        let token = issued
            .status
            .map(|s| s.token)
            .context("the TokenRequest has no token")?;
        let path = self.dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&path, self.kube.kubeconfig_yaml_with_token(&token))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The KafkaTopics of `examples/topics.yaml`.
    pub async fn apply_example_topics(&self) -> anyhow::Result<Vec<String>> {
        let text = std::fs::read_to_string(repo_root().join("examples/topics.yaml"))?;
        let topics: Api<KafkaTopic> = Api::namespaced(self.client.clone(), NAMESPACE);
        let mut names = Vec::new();
        for value in serde_saphyr::from_multiple::<serde_json::Value>(&text)? {
            if value.is_null() {
                continue;
            }
            let t: KafkaTopic = serde_json::from_value(value)?;
            names.push(t.name_any());
            create_or_keep(&topics, &t).await?;
        }
        Ok(names)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A client for the kubeconfig the Kubernetes emulator wrote.
/// One emulated HDInsight cluster (HTTPS with a generated CA under `dir`), Entra ID on a
/// listener of its own: authority and endpoint differ as in Azure.
async fn start_cluster(dir: &Path, cluster: &ClusterSettings) -> anyhow::Result<RunningEmulator> {
    let loopback: SocketAddr = "127.0.0.1:0".parse()?;
    let mut config = EmulatorConfig {
        tenant_id: TENANT_ID.into(),
        cluster_group_id: CLUSTER_GROUP_ID.into(),
        apps: vec![AppConfig {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            groups: if cluster.app_in_group {
                vec![CLUSTER_GROUP_ID.into()]
            } else {
                vec![]
            },
            ..Default::default()
        }],
        visibility_delay_ms: millis(cluster.visibility_delay),
        out_of_band_delay_ms: millis(cluster.out_of_band_delay),
        latency_ms: millis(cluster.latency),
        token_lifetime_seconds: cluster.token_lifetime.as_secs().max(1),
        ..Default::default()
    };
    if let Some(adjust) = cluster.emulator {
        adjust(&mut config);
    }
    RunningEmulator::start_with_authority(
        config,
        loopback,
        Some(loopback),
        Transport::Tls {
            dir: dir.to_path_buf(),
        },
    )
    .await
    .context("starting the HDInsight emulator")
}

pub async fn client_for(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Reads one manifest of `examples/`.
pub fn read_example<T: DeserializeOwned>(file: &str) -> anyhow::Result<T> {
    let path = repo_root().join("examples").join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Creates the object unless it exists.
pub async fn create_or_keep<K>(api: &Api<K>, obj: &K) -> anyhow::Result<()>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e)
            .with_context(|| format!("creating {}", obj.meta().name.clone().unwrap_or_default())),
    }
}

/// Applies the operator's CRDs and waits until both kinds are served.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    use kube::CustomResourceExt;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [KafkaTopic::crd(), KafkaRestProxy::crd()] {
        create_or_keep(&crds, &crd).await?;
    }
    let topics: Api<KafkaTopic> = Api::all(client.clone());
    let proxies: Api<KafkaRestProxy> = Api::all(client.clone());
    for _ in 0..100 {
        if topics.list(&ListParams::default().limit(1)).await.is_ok()
            && proxies.list(&ListParams::default().limit(1)).await.is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the CRDs were not served within 10 s")
}
