//! `check` (what works and what does not, step by step) and `import` (KafkaTopic manifests
//! for the topics a cluster already has).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;

use crate::auth::{
    AuthError, ClientAuth, ClientCertificate, ClientCredentials, SecretString,
    ServiceAccountTokenSource,
};
use crate::cli::{CheckArgs, ConnectionArgs, DirectArgs, ImportArgs, ImportPolicy};
use crate::controller::registry::{self, client_config};
use crate::crd::{CredentialKind, KafkaRestProxy};
use crate::proxy::{Limits, NoopObserver, ProxyClient, ProxyClientConfig, ProxyError};

fn read_key(secret: &Secret, key: &str) -> anyhow::Result<String> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    registry::secret_value(secret, &name, key).map_err(|e| anyhow!("{e}"))
}

/// A client from a KafkaRestProxy in the cluster (through the current kubeconfig).
async fn client_from_proxy(namespace: &str, name: &str) -> anyhow::Result<ProxyClient> {
    let kube = kube::Client::try_default()
        .await
        .context("cannot configure the Kubernetes client")?;
    let proxy = Api::<KafkaRestProxy>::namespaced(kube.clone(), namespace)
        .get(name)
        .await
        .with_context(|| format!("cannot read KafkaRestProxy {namespace}/{name}"))?;
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), namespace);
    let read_secret = |name: String| {
        let secrets = secrets.clone();
        async move {
            secrets
                .get(&name)
                .await
                .with_context(|| format!("cannot read Secret {namespace}/{name}"))
        }
    };
    let kind = proxy.spec.credentials.kind().map_err(|e| anyhow!("{e}"))?;
    let credentials = match kind {
        CredentialKind::Secret(r) => {
            let secret = read_secret(r.name.clone()).await?;
            registry::secret_credentials(&secret, &format!("{namespace}/{}", r.name))
                .map_err(|e| anyhow!("{e}"))?
        }
        CredentialKind::Certificate(c) => {
            let secret = read_secret(c.secret_ref.name.clone()).await?;
            let certificate =
                registry::certificate_of(&secret, &format!("{namespace}/{}", c.secret_ref.name))
                    .map_err(|e| anyhow!("{e}"))?;
            ClientCredentials {
                tenant_id: c.tenant_id.clone(),
                client_id: c.client_id.clone(),
                auth: ClientAuth::Certificate(Arc::new(certificate)),
            }
        }
        CredentialKind::WorkloadIdentity(w) => ClientCredentials {
            tenant_id: w.tenant_id.clone(),
            client_id: w.client_id.clone(),
            auth: ClientAuth::Federated(Arc::new(ServiceAccountTokenSource::new(
                kube.clone(),
                namespace,
                &w.service_account_name,
            ))),
        },
    };
    let ca = match &proxy.spec.ca_bundle_secret_ref {
        Some(r) => {
            let s = read_secret(r.name.clone()).await?;
            Some(read_key(
                &s,
                r.key.as_deref().unwrap_or(registry::DEFAULT_CA_KEY),
            )?)
        }
        None => None,
    };
    let config = client_config(&proxy, credentials, ca).map_err(|e| anyhow!("{e}"))?;
    ProxyClient::new(config, Arc::new(NoopObserver)).map_err(|e| anyhow!("{e}"))
}

/// A client from the direct flags.
fn client_from_flags(d: &DirectArgs) -> anyhow::Result<ProxyClient> {
    let missing = |what: &str| anyhow!("{what} is required (or use --proxy)");
    let endpoint = d.endpoint.clone().ok_or_else(|| missing("--endpoint"))?;
    let tenant_id = d.tenant.clone().ok_or_else(|| missing("--tenant"))?;
    let client_id = d.client_id.clone().ok_or_else(|| missing("--client-id"))?;
    let read = |p: &std::path::PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let auth = match (&d.client_certificate_file, &d.client_key_file) {
        (Some(cert), Some(key)) => ClientAuth::Certificate(Arc::new(
            ClientCertificate::from_pem(read(cert)?.as_bytes(), read(key)?.as_bytes())
                .map_err(|e| anyhow!("{e}"))?,
        )),
        _ => {
            let secret_file = d.client_secret_file.clone().ok_or_else(|| {
                missing("--client-secret-file (or --client-certificate-file and --client-key-file)")
            })?;
            ClientAuth::Secret(SecretString::new(
                read(&secret_file)?.trim_end_matches(['\r', '\n']),
            ))
        }
    };
    let extra_ca_pem = match &d.ca_file {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let config = ProxyClientConfig {
        name: "check".into(),
        endpoint: url::Url::parse(&endpoint).with_context(|| format!("--endpoint {endpoint:?}"))?,
        allow_insecure_http: false,
        authority: url::Url::parse(&d.authority)
            .with_context(|| format!("--authority {:?}", d.authority))?,
        scope: d.scope.clone(),
        credentials: ClientCredentials {
            tenant_id,
            client_id,
            auth,
        },
        extra_ca_pem,
        limits: Limits::default(),
        max_retries: 1,
    };
    ProxyClient::new(config, Arc::new(NoopObserver)).map_err(|e| anyhow!("{e}"))
}

async fn client(
    proxy: Option<&str>,
    namespace: &str,
    d: &DirectArgs,
) -> anyhow::Result<ProxyClient> {
    match proxy {
        Some(name) => client_from_proxy(namespace, name).await,
        None => client_from_flags(d),
    }
}

/// A client for the cluster the connection flags name.
pub async fn connect(c: &ConnectionArgs) -> anyhow::Result<ProxyClient> {
    client(c.proxy.as_deref(), &c.namespace, &c.direct).await
}

/// What to do about an error, for a person reading `check`'s output.
pub fn hint(e: &ProxyError) -> Option<&'static str> {
    match e {
        ProxyError::Forbidden { .. } => Some(
            "add the app's service principal to the security group chosen when the cluster was created (Kafka REST proxy settings)",
        ),
        ProxyError::Unauthorized { .. } => Some(
            "the proxy rejected the token: check that the tenant and scope belong to this cluster",
        ),
        ProxyError::Auth(a) => match a.aadsts() {
            Some(7_000_215) => {
                Some("the client secret is wrong: copy the secret's Value, not its ID")
            }
            Some(7_000_222) => {
                Some("the client secret has expired: create a new one and update the Secret")
            }
            Some(700_016) => {
                Some("no app with this client id in the tenant: check clientId and tenantId")
            }
            Some(90_002) => {
                Some("the tenant does not exist: check tenantId and the authority (cloud)")
            }
            Some(1_002_012) | Some(500_011) => {
                Some("the scope must be https://hib.azurehdinsight.net/.default")
            }
            _ if matches!(a, AuthError::Transport(_) | AuthError::Timeout) => {
                Some("the token endpoint is unreachable: check --authority and outbound network")
            }
            _ => None,
        },
        ProxyError::Transport(_) | ProxyError::Timeout => {
            Some("the proxy is unreachable: check the endpoint, DNS, firewall and CA")
        }
        _ => None,
    }
}

pub(crate) fn line(out: &mut String, ok: bool, step: &str, detail: &str) {
    let _ = writeln!(
        out,
        "{} {step}: {detail}",
        if ok { "[ok]  " } else { "[FAIL]" }
    );
}

pub(crate) fn fail(out: &mut String, step: &str, e: &ProxyError) {
    line(out, false, step, &e.to_string());
    if let Some(h) = hint(e) {
        let _ = writeln!(out, "       hint: {h}");
    }
}

/// Runs the checks and returns the report and whether everything worked.
pub async fn run_checks(client: &ProxyClient) -> (String, bool) {
    let mut out = String::new();
    let mut all_ok = true;
    match client.status().await {
        Ok(_) => {
            let expires = client
                .token_expires_at()
                .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok())
                .map(|d| format!("valid for {} more minutes", d.as_secs() / 60))
                .unwrap_or_else(|| "obtained".into());
            line(&mut out, true, "token", &expires);
            line(&mut out, true, "GET /v1/status", "answered");
        }
        Err(ProxyError::Auth(a)) => {
            fail(&mut out, "token", &ProxyError::Auth(a));
            return (out, false);
        }
        Err(e) => {
            line(&mut out, true, "token", "obtained");
            fail(&mut out, "GET /v1/status", &e);
            all_ok = false;
        }
    }
    match client.brokers().await {
        Ok(b) => {
            let ids: Vec<String> = b.iter().map(|b| b.id.to_string()).collect();
            line(
                &mut out,
                true,
                "GET /v1/metadata/brokers",
                &format!("{} brokers ({})", b.len(), ids.join(", ")),
            );
        }
        Err(e) => {
            fail(&mut out, "GET /v1/metadata/brokers", &e);
            all_ok = false;
        }
    }
    match client.list_topics().await {
        Ok(t) => line(
            &mut out,
            true,
            "GET /v1/metadata/topics",
            &format!("{} topics", t.len()),
        ),
        Err(e) => {
            fail(&mut out, "GET /v1/metadata/topics", &e);
            all_ok = false;
        }
    }
    (out, all_ok)
}

pub async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let client = connect(&args.connection).await?;
    let (mut report, mut ok) = run_checks(&client).await;
    if let Some(topic) = &args.topic {
        if ok {
            let (trip, trip_ok) = crate::data::round_trip(&client, topic).await;
            report.push_str(&trip);
            ok = trip_ok;
        } else {
            line(
                &mut report,
                false,
                &format!("produce and consume on {topic}"),
                "skipped: the checks above failed",
            );
        }
    }
    print!("{report}");
    if !ok {
        bail!("some checks failed");
    }
    Ok(())
}

/// Whether `name` can be a Kubernetes object name (RFC 1123 subdomain).
pub fn is_k8s_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
}

/// A valid object name for a Kafka topic name that is not one: lowercased, other characters
/// replaced by `-`, with a short hash so that `A_b` and `a-b` do not collide.
pub fn object_name_for(topic: &str) -> String {
    if is_k8s_name(topic) {
        return topic.to_string();
    }
    let mut base: String = topic
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    base = base
        .split('.')
        .map(|l| l.trim_matches('-'))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    base.truncate(200);
    let base = base.trim_end_matches(['-', '.']);
    let hash = {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(topic.as_bytes());
        format!("{:02x}{:02x}{:02x}", d[0], d[1], d[2])
    };
    if base.is_empty() {
        format!("topic-{hash}")
    } else {
        format!("{base}-{hash}")
    }
}

/// One KafkaTopic manifest.
pub fn manifest(
    topic: &str,
    namespace: &str,
    proxy_ref: &str,
    partitions: Option<i32>,
    replication_factor: Option<i32>,
    policy: ImportPolicy,
) -> anyhow::Result<String> {
    let (proxy_ns, proxy_name) = match proxy_ref.split_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, proxy_ref),
    };
    let name = object_name_for(topic);
    let mut spec = serde_json::Map::new();
    let mut proxy = BTreeMap::new();
    proxy.insert("name", json!(proxy_name));
    if let Some(ns) = proxy_ns {
        proxy.insert("namespace", json!(ns));
    }
    spec.insert("proxyRef".into(), json!(proxy));
    if name != topic {
        spec.insert("topicName".into(), json!(topic));
    }
    if let Some(p) = partitions {
        spec.insert("partitions".into(), json!(p));
    }
    if let Some(r) = replication_factor {
        spec.insert("replicationFactor".into(), json!(r));
    }
    spec.insert(
        "managementPolicy".into(),
        json!(match policy {
            ImportPolicy::Observe => "Observe",
            ImportPolicy::Create => "Create",
        }),
    );
    let doc = json!({
        "apiVersion": "kafka.hdinsight.dev/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    });
    Ok(format!(
        "---\n# Topic configs cannot be read through the REST proxy: add spec.config by hand if you want it recorded.\n{}",
        serde_saphyr::to_string(&doc)?
    ))
}

/// Partitions and replication factor of a described topic exactly as the operator's status
/// reports them (the same summary: the replication factor is the smallest replica count of any
/// partition), so that an imported manifest never shows `Drifted` at once. None for a topic
/// the proxy describes without partitions.
pub fn observed_sizes(tp: &crate::proxy::TopicPartitions) -> (Option<i32>, Option<i32>) {
    if tp.partitions.is_empty() {
        return (None, None);
    }
    let summary = crate::controller::plan::summarize(&crate::controller::topic::details(tp));
    (Some(summary.partitions), Some(summary.replication_factor))
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let client = client(args.proxy.as_deref(), &args.proxy_namespace, &args.direct).await?;
    let proxy_ref = args
        .proxy_ref
        .clone()
        .or_else(|| {
            args.proxy.as_ref().map(|p| {
                if args.proxy_namespace == args.namespace {
                    p.clone()
                } else {
                    format!("{}/{p}", args.proxy_namespace)
                }
            })
        })
        .ok_or_else(|| anyhow!("--proxy-ref is required with the direct flags"))?;
    if args.include_internal {
        bail!(
            "--include-internal: the proxy client filters internal topics (names starting with __); they cannot be imported yet"
        );
    }
    let mut names = client
        .list_topics()
        .await
        .map_err(|e| anyhow!("listing topics: {e}"))?;
    names.sort();
    let mut out = String::new();
    for name in &names {
        let tp = client
            .describe_topic(name)
            .await
            .map_err(|e| anyhow!("describing {name}: {e}"))?;
        let (partitions, rf) = observed_sizes(&tp);
        out.push_str(&manifest(
            name,
            &args.namespace,
            &proxy_ref,
            partitions,
            rf,
            args.policy,
        )?);
    }
    print!("{out}");
    eprintln!("{} KafkaTopic manifests written", names.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_stay_readable_and_distinct() {
        assert_eq!(object_name_for("orders.v1"), "orders.v1");
        let a = object_name_for("Orders_V1");
        let b = object_name_for("orders-v1");
        assert!(a.starts_with("orders-v1-"), "{a}");
        assert_eq!(b, "orders-v1");
        assert_ne!(a, b);
        assert!(is_k8s_name(&a));
        assert!(is_k8s_name(&object_name_for("__weird..name__")));
        assert!(is_k8s_name(&object_name_for("___")));
    }

    #[test]
    fn manifest_uses_topic_name_only_when_needed() {
        let m = manifest(
            "Orders_V1",
            "kafka",
            "hdi",
            Some(3),
            Some(2),
            ImportPolicy::Observe,
        )
        .expect("yaml");
        assert!(m.contains("topicName: Orders_V1"), "{m}");
        assert!(m.contains("managementPolicy: Observe"), "{m}");
        assert!(m.contains("partitions: 3"), "{m}");
        let m = manifest(
            "audit",
            "kafka",
            "infra/hdi",
            None,
            None,
            ImportPolicy::Create,
        )
        .expect("yaml");
        assert!(!m.contains("topicName"), "{m}");
        assert!(m.contains("namespace: infra"), "{m}");
    }
}
