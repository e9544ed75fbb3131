//! Emulator configuration: what the YAML file given with `--config` deserialises into.

use serde::{Deserialize, Serialize};

/// Everything that shapes one emulated tenant and cluster. Every field has a default, so an
/// empty YAML document is a valid configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct EmulatorConfig {
    /// The only tenant the token endpoint knows; any other tenant gets AADSTS90002.
    pub tenant_id: String,
    /// Object id of the security group chosen when the cluster was created.
    pub cluster_group_id: String,
    /// App registrations (service principals) of the tenant.
    pub apps: Vec<AppConfig>,
    /// Number of Kafka brokers; ids start at 1001.
    pub brokers: u32,
    /// How long a topic created through the proxy stays out of the list and 404 on describe.
    pub visibility_delay_ms: u64,
    /// How long topic creations and deletions made outside the proxy take to show.
    pub out_of_band_delay_ms: u64,
    /// `expires_in` of issued tokens.
    pub token_lifetime_seconds: u64,
    /// Clock skew tolerated when checking `exp`/`nbf` of a bearer token.
    pub token_leeway_seconds: u64,
    /// Added to every proxy call.
    pub latency_ms: u64,
    /// Body shape of a consume response.
    pub consume_shape: ConsumeShape,
    /// Whether `/v1/metadata/topics` lists `__consumer_offsets`.
    pub list_internal_topics: bool,
    /// Partitions of a topic whose create body has no `partition_count`.
    pub default_partitions: i32,
    /// Replication factor of a topic whose create body has no `replication_factor`.
    pub default_replication_factor: i32,
    /// The resource (audience) of the proxy; scopes must be `{resource}/.default`.
    pub resource: String,
    /// How a partition without a live replica reports its leader.
    pub leaderless_as: LeaderlessAs,
    /// Records kept per partition; older ones are dropped and `earliest_offset` moves on.
    pub retention_records: i64,
    /// Upper bound for `partition_count` on create (a 400 above it).
    pub max_partitions: i32,
    /// PEM file (PKCS#1 or PKCS#8) with the RSA key that signs tokens. When the file does not
    /// exist a key is generated and written there. When unset a key is generated once and cached
    /// in the system temporary directory (RSA key generation is slow in debug builds).
    pub signing_key_file: Option<String>,
    /// Management nodes behind the gateway, each with its own topic-list cache; requests go
    /// to them in turn. At least 1.
    pub management_nodes: u32,
    /// How much later than the first node every other node sees creates and out-of-band
    /// changes (list, describe, produce and consume alike).
    pub node_lag_ms: u64,
    /// Proxy error bodies: `{"error","message"}` JSON or the bare message as text.
    pub error_body: ErrorBodyAs,
    /// Status of a create whose topic exists already (visible or not).
    pub existing_topic_status: u16,
    /// Status of a create refused for its request (name, partitions, replication factor, body).
    pub invalid_request_status: u16,
    /// Whether `GET /v1/status` needs a bearer token like every other proxy call.
    pub status_needs_token: bool,
    /// How a broker endpoint reports its rack.
    pub rack_as: RackAs,
    /// What `latest_offset` means.
    pub latest_offset_as: LatestOffsetAs,
    /// The `NextOffset` header of a consume that returned nothing.
    pub empty_next_offset: EmptyNextOffset,
    /// The 200 body of status, create and produce.
    pub ok_body_as: OkBodyAs,
    /// Status of produce and consume on a topic the serving node does not list.
    pub invisible_data_status: u16,
    /// Status of produce and consume on a partition without a live replica.
    pub offline_data_status: u16,
    /// The token endpoint checks the scope and resource before the app and its secret.
    pub scope_checked_first: bool,
    /// The proxy's own throttling per client (unset: none).
    pub rate_limit: Option<RateLimit>,
    /// The cluster's Kafka version (2.1, 2.4 or 3.2, with or without a patch number): a
    /// create's `topic_properties` are checked against its topic-level configs.
    pub kafka_version: String,
    /// Status of a create refused for a topic config.
    pub config_refusal_status: u16,
    /// Domain names of the tenant (`contoso.onmicrosoft.com`) accepted in place of `tenantId`
    /// in token, discovery and key paths.
    pub tenant_domains: Vec<String>,
    /// How far Entra's clock runs ahead of the proxy's (negative: behind): shifts `iat`, `nbf`
    /// and `exp` of issued tokens.
    pub clock_skew_seconds: i64,
    /// Trust roots (PEM file) for fetching a federated credential issuer's discovery document
    /// and keys over HTTPS, in addition to the web PKI roots.
    pub federated_issuer_ca_file: Option<String>,
}

/// A token bucket per client (the `appid` of the bearer token; requests without a readable
/// token share one bucket) over every proxy operation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RateLimit {
    /// Refill rate.
    pub requests_per_second: f64,
    /// Bucket size: requests allowed at once after a quiet spell.
    pub burst: u32,
    /// How a throttled request is answered.
    pub answer: ThrottleAnswer,
    /// The form of `Retry-After` on a 429.
    pub retry_after_as: RetryAfterAs,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            requests_per_second: 50.0,
            burst: 100,
            answer: ThrottleAnswer::TooManyRequests,
            retry_after_as: RetryAfterAs::Seconds,
        }
    }
}

/// How the emulator answers a request over its rate limit.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ThrottleAnswer {
    /// 429 with `Retry-After`.
    #[default]
    TooManyRequests,
    /// 503 from the gateway, without `Retry-After`.
    GatewayBusy,
}

/// The form of a `Retry-After` header (RFC 9110 §10.2.3 allows both).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RetryAfterAs {
    /// Whole seconds, at least 1.
    #[default]
    Seconds,
    /// An IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
    HttpDate,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            tenant_id: "00000000-0000-0000-0000-0000000000aa".to_string(),
            cluster_group_id: "22222222-2222-2222-2222-222222222222".to_string(),
            apps: vec![AppConfig::default()],
            brokers: 3,
            visibility_delay_ms: 2000,
            out_of_band_delay_ms: 30_000,
            token_lifetime_seconds: 3599,
            token_leeway_seconds: 0,
            latency_ms: 0,
            consume_shape: ConsumeShape::Object,
            list_internal_topics: false,
            default_partitions: 4,
            default_replication_factor: 0,
            resource: "https://hib.azurehdinsight.net".to_string(),
            leaderless_as: LeaderlessAs::Null,
            retention_records: 100_000,
            max_partitions: 10_000,
            signing_key_file: None,
            management_nodes: 2,
            node_lag_ms: 0,
            error_body: ErrorBodyAs::Json,
            existing_topic_status: 400,
            invalid_request_status: 400,
            status_needs_token: true,
            rack_as: RackAs::Set,
            latest_offset_as: LatestOffsetAs::LogEnd,
            empty_next_offset: EmptyNextOffset::Requested,
            ok_body_as: OkBodyAs::String,
            invisible_data_status: 404,
            offline_data_status: 500,
            scope_checked_first: false,
            rate_limit: None,
            kafka_version: "3.2.0".to_string(),
            config_refusal_status: 400,
            tenant_domains: Vec::new(),
            clock_skew_seconds: 0,
            federated_issuer_ca_file: None,
        }
    }
}

impl EmulatorConfig {
    /// How far node `node` (counted from 0) lags behind the cluster.
    pub fn node_lag(&self, node: u32) -> std::time::Duration {
        if node == 0 {
            std::time::Duration::ZERO
        } else {
            std::time::Duration::from_millis(self.node_lag_ms)
        }
    }

    /// The lag of the slowest node.
    pub fn max_node_lag(&self) -> std::time::Duration {
        self.node_lag(self.management_nodes.max(1) - 1)
    }

    /// The replication factor used when a create body has none: the configured value, or
    /// `min(3, brokers)` when that is 0 or less.
    pub fn effective_default_replication_factor(&self) -> i32 {
        if self.default_replication_factor > 0 {
            self.default_replication_factor
        } else {
            i32::try_from(self.brokers.min(3)).unwrap_or(3)
        }
    }
}

/// One app registration. `Debug` leaves the secret out.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AppConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Group object ids the app is a member of (they land in the token's `groups` claim).
    pub groups: Vec<String>,
    /// A disabled app gets AADSTS7000112.
    pub disabled: bool,
    /// An app whose secret expired gets AADSTS7000222.
    pub secret_expired: bool,
    /// Service principal object id (`oid`/`sub`); derived from the client id when empty.
    pub object_id: String,
    /// Certificates (PEM) uploaded to the app registration: a client assertion signed with one
    /// of their keys is accepted in place of the secret.
    pub certificates: Vec<String>,
    /// Federated identity credentials: a token of one of these issuers and subjects, for one of
    /// the audiences, is accepted as a client assertion (workload identity federation).
    pub federated_credentials: Vec<FederatedCredential>,
}

/// A federated identity credential of an app registration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FederatedCredential {
    /// The external issuer's URL (e.g. an AKS cluster's OIDC issuer); its
    /// `/.well-known/openid-configuration` and keys are fetched over HTTPS.
    pub issuer: String,
    /// The token's `sub`, e.g. `system:serviceaccount:NAMESPACE:NAME`.
    pub subject: String,
    /// Accepted `aud` values; Entra's recommended (and the default) is `api://AzureADTokenExchange`.
    pub audiences: Vec<String>,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("groups", &self.groups)
            .field("disabled", &self.disabled)
            .field("secret_expired", &self.secret_expired)
            .field("object_id", &self.object_id)
            .field("certificates", &self.certificates.len())
            .field("federated_credentials", &self.federated_credentials)
            .finish()
    }
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            client_id: "11111111-1111-1111-1111-111111111111".to_string(),
            client_secret: "emulator-secret".to_string(),
            groups: vec!["22222222-2222-2222-2222-222222222222".to_string()],
            disabled: false,
            secret_expired: false,
            object_id: String::new(),
            certificates: Vec::new(),
            federated_credentials: Vec::new(),
        }
    }
}

/// Body shape of `GET /v1/consumer/...`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ConsumeShape {
    /// `{"records":[...]}` plus a `NextOffset` header (Microsoft's current sample).
    #[default]
    Object,
    /// A bare array of records (the Swagger document).
    Array,
}

/// Shape of the proxy's error bodies (undocumented; clients must treat them as opaque).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ErrorBodyAs {
    /// `{"error":"<code>","message":"<text>"}`
    #[default]
    Json,
    /// The message as `text/plain`.
    Text,
}

/// How a broker endpoint reports its rack.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RackAs {
    /// `"rack": "/fd0/ud0"`
    #[default]
    Set,
    /// `"rack": null`
    Null,
    /// no `rack` field
    Absent,
}

/// What `latest_offset` in partition metadata means.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum LatestOffsetAs {
    /// The log end: the offset the next record gets.
    #[default]
    LogEnd,
    /// The offset of the last record (log end − 1; −1 for an empty partition).
    LastRecord,
}

/// The `NextOffset` header of a consume that returned no records.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum EmptyNextOffset {
    /// The requested offset.
    #[default]
    Requested,
    /// No header.
    Omitted,
}

/// The 200 body of status, create and produce.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum OkBodyAs {
    /// A JSON string.
    #[default]
    String,
    /// `{"message": "<the same text>"}`
    Object,
}

/// How a partition whose replicas are all down reports its leader.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum LeaderlessAs {
    /// `"leader": null`
    #[default]
    Null,
    /// `"leader": {"hostName":"","port":-1,"id":-1,"rack":null}`
    MinusOne,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_secrets_out() {
        let config = EmulatorConfig::default();
        let text = format!("{config:?}");
        assert!(!text.contains("emulator-secret"), "{text}");
        assert!(text.contains("11111111-1111-1111-1111-111111111111"));
    }

    #[test]
    fn yaml_keys_are_camel_case_and_typos_are_refused() {
        let config: EmulatorConfig = serde_saphyr::from_str(
            "visibilityDelayMs: 5\nconsumeShape: array\nleaderlessAs: minusOne\n",
        )
        .expect("valid YAML");
        assert_eq!(config.visibility_delay_ms, 5);
        assert_eq!(config.consume_shape, ConsumeShape::Array);
        assert_eq!(config.leaderless_as, LeaderlessAs::MinusOne);
        assert_eq!(config.brokers, 3, "unset keys keep their defaults");
        assert!(serde_saphyr::from_str::<EmulatorConfig>("visibilityDelay: 5\n").is_err());
    }
}
