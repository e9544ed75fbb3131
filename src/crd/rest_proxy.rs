// kube's `printcolumn(...)` arguments repeat `type_ = "string"`, which clippy mistakes for
// duplicated attributes.
#![allow(clippy::duplicated_attributes)]

//! `KafkaRestProxy`: one HDInsight cluster's Kafka REST endpoint and the credentials to use it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
pub const DEFAULT_SCOPE: &str = "https://hib.azurehdinsight.net/.default";
pub const DEFAULT_REQUESTS_PER_SECOND: i32 = 100;
pub const DEFAULT_BURST: i32 = 200;
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: i32 = 16;
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: i32 = 10;
/// At most this many brokers are listed in `status.brokers`.
pub const MAX_BROKERS_IN_STATUS: usize = 100;
/// Broker host names and racks in status are cut to this many characters.
pub const MAX_BROKER_TEXT: usize = 253;

/// Keys the credentials Secret must hold.
pub const SECRET_KEY_TENANT_ID: &str = "tenantId";
pub const SECRET_KEY_CLIENT_ID: &str = "clientId";
pub const SECRET_KEY_CLIENT_SECRET: &str = "clientSecret";
/// Keys of a kubernetes.io/tls Secret.
pub const SECRET_KEY_TLS_CRT: &str = "tls.crt";
pub const SECRET_KEY_TLS_KEY: &str = "tls.key";
/// Audience of the ServiceAccount tokens exchanged at Entra ID.
pub const WORKLOAD_IDENTITY_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Where the cluster's Kafka REST proxy is and how to authenticate to it. KafkaTopics refer to
/// it with spec.proxyRef.
#[derive(CustomResource, KubeSchema, Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "kafka.hdinsight.dev",
    version = "v1alpha1",
    kind = "KafkaRestProxy",
    plural = "kafkarestproxies",
    singular = "kafkarestproxy",
    shortname = "hkrp",
    category = "hdinsight",
    namespaced,
    status = "KafkaRestProxyStatus",
    doc = "The Kafka REST proxy of one Azure HDInsight cluster and the service principal used to call it.",
    printcolumn(name = "ENDPOINT", type_ = "string", json_path = ".spec.endpoint"),
    printcolumn(
        name = "TOPICS",
        type_ = "integer",
        json_path = ".status.topicCount",
        description = "Topics listed by the cluster"
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "REASON",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("isURL(self.endpoint) && (self.endpoint.startsWith('https://') || (has(self.allowInsecureHttp) && self.allowInsecureHttp && self.endpoint.startsWith('http://')))").message("spec.endpoint must be an https:// URL (http:// only with allowInsecureHttp: true)").field_path(".endpoint"))]
#[serde(rename_all = "camelCase")]
pub struct KafkaRestProxySpec {
    /// The cluster's Kafka REST proxy URL, e.g. https://mycluster-kafkarest.azurehdinsight.net.
    /// Its host must be one the operator allows (by default the HDInsight domains); no user
    /// information (user@host).
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("!self.matches('^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@')").message("endpoint must not carry user information (user@host)"))]
    pub endpoint: String,

    /// Allow an http:// endpoint. Only for test clusters: tokens would travel in clear text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,

    /// Entra ID authority host. Defaults to https://login.microsoftonline.com; use
    /// https://login.microsoftonline.us (US Government) or
    /// https://login.partner.microsoftonline.cn (China) for sovereign clouds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("isURL(self) && self.startsWith('https://')").message("authority must be an https:// URL"))]
    #[x_kube(validation = Rule::new("!self.matches('^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@')").message("authority must not carry user information (user@host)"))]
    pub authority: Option<String>,

    /// OAuth scope of the token. Defaults to https://hib.azurehdinsight.net/.default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.endsWith('/.default')").message("scope must end with /.default (client-credentials tokens)"))]
    pub scope: Option<String>,

    /// Where the service principal's credentials are.
    pub credentials: ProxyCredentials,

    /// Extra trust roots (PEM) for the proxy's TLS certificate, from a Secret in this namespace.
    /// TLS verification is always on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<SecretKeyReference>,

    /// Which namespaces' KafkaTopics may use this proxy. Defaults to this namespace only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_topic_namespaces: Option<AllowedTopicNamespaces>,

    /// Client-side limits for calls to this proxy, shared by all topics that use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ProxyLimits>,
}

/// Credentials of the Entra ID service principal: exactly one of secretRef, certificate and
/// workloadIdentity.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("(has(self.secretRef) ? 1 : 0) + (has(self.certificate) ? 1 : 0) + (has(self.workloadIdentity) ? 1 : 0) == 1").message("credentials must set exactly one of secretRef, certificate and workloadIdentity"))]
#[serde(rename_all = "camelCase")]
pub struct ProxyCredentials {
    /// A Secret in this namespace with the keys tenantId, clientId and clientSecret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,
    /// A certificate registered on the app registration: the operator signs a client assertion
    /// with its key instead of sending a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateCredentials>,
    /// A ServiceAccount in this namespace whose tokens Entra ID trusts through a federated
    /// credential of the app (workload identity federation): no secret at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_identity: Option<WorkloadIdentityCredentials>,
}

/// Which credential kind a proxy uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CredentialKind<'a> {
    Secret(&'a SecretReference),
    Certificate(&'a CertificateCredentials),
    WorkloadIdentity(&'a WorkloadIdentityCredentials),
}

impl ProxyCredentials {
    /// The one credential kind set, or why the spec is invalid (the CRD's rule, re-checked for
    /// objects that bypassed admission).
    pub fn kind(&self) -> Result<CredentialKind<'_>, String> {
        match (&self.secret_ref, &self.certificate, &self.workload_identity) {
            (Some(s), None, None) => Ok(CredentialKind::Secret(s)),
            (None, Some(c), None) => Ok(CredentialKind::Certificate(c)),
            (None, None, Some(w)) => Ok(CredentialKind::WorkloadIdentity(w)),
            _ => Err(
                "spec.credentials must set exactly one of secretRef, certificate and workloadIdentity"
                    .into(),
            ),
        }
    }

    /// The Secret the credentials are read from, if any (workload identity needs none).
    pub fn secret_name(&self) -> Option<&str> {
        match self.kind().ok()? {
            CredentialKind::Secret(s) => Some(&s.name),
            CredentialKind::Certificate(c) => Some(&c.secret_ref.name),
            CredentialKind::WorkloadIdentity(_) => None,
        }
    }
}

/// A certificate credential of the app registration.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateCredentials {
    /// A kubernetes.io/tls Secret in this namespace: tls.crt (the certificate uploaded to the
    /// app registration, PEM) and tls.key (its RSA private key, PEM).
    pub secret_ref: SecretReference,
    /// Directory (tenant) id.
    #[schemars(length(min = 1, max = 253))]
    pub tenant_id: String,
    /// Application (client) id.
    #[schemars(length(min = 1, max = 253))]
    pub client_id: String,
}

/// A federated credential of the app that trusts this cluster's ServiceAccount tokens.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadIdentityCredentials {
    /// The ServiceAccount in this namespace; the federated credential's subject is
    /// system:serviceaccount:NAMESPACE:NAME.
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: String,
    /// Directory (tenant) id.
    #[schemars(length(min = 1, max = 253))]
    pub tenant_id: String,
    /// Application (client) id.
    #[schemars(length(min = 1, max = 253))]
    pub client_id: String,
}

/// A Secret in the proxy's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key of a Secret in the proxy's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyReference {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key holding PEM certificates. Defaults to ca.crt (the key cert-manager and
    /// kubernetes.io/tls Secrets use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub key: Option<String>,
}

/// Which namespaces may use the proxy (like Gateway API allowedRoutes).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("(has(self.from) && self.from == 'Selector') == has(self.selector)").message("selector is required with from: Selector, and allowed only then"))]
#[serde(rename_all = "camelCase")]
pub struct AllowedTopicNamespaces {
    /// Same (default): only this namespace. All: every namespace. Selector: namespaces whose
    /// labels match selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NamespacesFrom>,
    /// Namespace label selector, used with from: Selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Source of allowed namespaces.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum NamespacesFrom {
    /// Only the proxy's own namespace.
    #[default]
    Same,
    /// Every namespace.
    All,
    /// Namespaces matching the selector.
    Selector,
}

/// Client-side limits for calls to the proxy.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyLimits {
    /// Sustained requests per second (token bucket). Defaults to 100; 0 means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub requests_per_second: Option<i32>,
    /// Requests that may be sent at once after a quiet period. Defaults to 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000))]
    pub burst: Option<i32>,
    /// Requests in flight at once. Defaults to 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub max_concurrent_requests: Option<i32>,
    /// Timeout of one request in seconds. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 300))]
    pub request_timeout_seconds: Option<i32>,
}

/// What the operator found when it last checked the proxy.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaRestProxyStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The cluster's brokers, by id; at most 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub brokers: Vec<BrokerStatus>,
    /// True when the cluster reported more than 100 brokers and brokers lists the first 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers_truncated: Option<bool>,
    /// Topics the cluster lists (internal topics excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_count: Option<i32>,
    /// What the REST proxy can do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<ProxyCapabilities>,
}

/// One broker.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokerStatus {
    /// Broker id.
    pub id: i32,
    /// Host name.
    pub host: String,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Rack (fault and update domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

/// Operations the REST proxy supports.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyCapabilities {
    pub create_topic: bool,
    pub delete_topic: bool,
    pub alter_config: bool,
    pub add_partitions: bool,
}

impl ProxyCapabilities {
    /// What the HDInsight Kafka REST proxy v1 offers.
    pub fn hdinsight_v1() -> Self {
        Self {
            create_topic: true,
            delete_topic: false,
            alter_config: false,
            add_partitions: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn credentials(value: serde_json::Value) -> ProxyCredentials {
        serde_json::from_value(value).expect("credentials")
    }

    #[test]
    fn exactly_one_credential_kind_names_its_secret() {
        let secret = credentials(json!({"secretRef": {"name": "sp"}}));
        assert!(matches!(secret.kind(), Ok(CredentialKind::Secret(r)) if r.name == "sp"));
        assert_eq!(secret.secret_name(), Some("sp"));

        let certificate = credentials(json!({"certificate": {
            "tenantId": "t", "clientId": "c", "secretRef": {"name": "tls-sp"}}}));
        assert!(matches!(
            certificate.kind(),
            Ok(CredentialKind::Certificate(_))
        ));
        assert_eq!(certificate.secret_name(), Some("tls-sp"));

        let federated = credentials(json!({"workloadIdentity": {
            "tenantId": "t", "clientId": "c", "serviceAccountName": "kafka"}}));
        assert!(
            matches!(federated.kind(), Ok(CredentialKind::WorkloadIdentity(w))
            if w.service_account_name == "kafka")
        );
        assert_eq!(federated.secret_name(), None);
    }

    #[test]
    fn none_or_several_credential_kinds_are_refused() {
        for value in [
            json!({}),
            json!({"secretRef": {"name": "sp"},
                   "workloadIdentity": {"tenantId": "t", "clientId": "c", "serviceAccountName": "k"}}),
            json!({"secretRef": {"name": "sp"},
                   "certificate": {"tenantId": "t", "clientId": "c", "secretRef": {"name": "x"}}}),
        ] {
            let c = credentials(value.clone());
            let err = c.kind().expect_err("refused");
            assert!(err.contains("exactly one"), "{value}: {err}");
            assert_eq!(c.secret_name(), None, "{value}");
        }
    }

    #[test]
    fn the_hdinsight_proxy_can_only_create_topics() {
        // hdinsight-rest-proxy.md: no delete-topic, alter-config or add-partitions operation.
        assert_eq!(
            ProxyCapabilities::hdinsight_v1(),
            ProxyCapabilities {
                create_topic: true,
                delete_topic: false,
                alter_config: false,
                add_partitions: false,
            }
        );
    }
}
