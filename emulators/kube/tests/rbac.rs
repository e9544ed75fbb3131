//! RBAC, ServiceAccounts and TokenRequest through kube-rs, against an emulator in RBAC mode.

mod common;

use common::*;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SelfSubjectAccessReview,
    SelfSubjectAccessReviewSpec, SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
    SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const NS: &str = "kafka-system";
const SA: &str = "op";

/// An RBAC emulator with namespace `kafka-system`, ServiceAccount `op` and a token for it.
async fn with_service_account() -> (kube_emulator::RunningKube, kube::Client, kube::Client) {
    with_service_account_in(rbac_config()).await
}

async fn with_service_account_in(
    config: kube_emulator::KubeEmulatorConfig,
) -> (kube_emulator::RunningKube, kube::Client, kube::Client) {
    let (kube, admin) = start_with(config).await;
    create_namespace(&admin, NS).await;
    create_service_account(&admin, NS, SA).await;
    let token = request_token(&admin, NS, SA, &[], None)
        .await
        .expect("a token")
        .status
        .expect("a status")
        .token;
    let sa = client_with_token(&kube, &token).await;
    (kube, admin, sa)
}

fn role(ns: &str, name: &str, rules: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": name, "namespace": ns}, "rules": rules})
}

fn role_binding(ns: &str, name: &str, kind: &str, role: &str) -> serde_json::Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": name, "namespace": ns},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
           "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": NS}]})
}

/// Which bindings apply: kubernetes `pkg/registry/rbac/validation/rule.go` (ClusterRoleBindings
/// everywhere, RoleBindings in their namespace); the 403 wording:
/// k8s.io/apiserver `pkg/endpoints/handlers/responsewriters/errors.go` (`forbiddenMessage`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_may_do_what_its_roles_allow_and_nothing_else() {
    let (_kube, admin, sa) = with_service_account().await;
    // Discovery is allowed to every authenticated user (system:discovery).
    let version = sa.apiserver_version().await.expect("/version");
    assert_eq!(version.major, "1");
    sa.list_api_groups().await.expect("/apis");

    let secrets: Api<Secret> = Api::all(sa.clone());
    let denied = api_error(secrets.list(&ListParams::default()).await);
    assert_eq!(denied.code, 403);
    assert_eq!(denied.reason, "Forbidden");
    assert_eq!(
        denied.message,
        "secrets is forbidden: User \"system:serviceaccount:kafka-system:op\" cannot list resource \"secrets\" in API group \"\" at the cluster scope"
    );
    let in_ns: Api<ConfigMap> = Api::namespaced(sa.clone(), NS);
    assert_eq!(
        api_error(in_ns.list(&ListParams::default()).await).message,
        "configmaps is forbidden: User \"system:serviceaccount:kafka-system:op\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"kafka-system\""
    );

    create_object(
        &admin,
        role(
            NS,
            "read-configmaps",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]),
        ),
    )
    .await;
    create_object(
        &admin,
        role_binding(NS, "read-configmaps", "Role", "read-configmaps"),
    )
    .await;
    in_ns
        .list(&ListParams::default())
        .await
        .expect("a RoleBinding grants list in its namespace");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "c"}})).expect("a ConfigMap");
    assert_eq!(
        api_error(in_ns.create(&PostParams::default(), &cm).await).message,
        "configmaps is forbidden: User \"system:serviceaccount:kafka-system:op\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"kafka-system\""
    );
    // A RoleBinding never grants anything outside its namespace.
    let cluster_wide: Api<ConfigMap> = Api::all(sa.clone());
    assert_eq!(
        api_error(cluster_wide.list(&ListParams::default()).await).code,
        403
    );
    let other: Api<ConfigMap> = Api::namespaced(sa.clone(), "default");
    assert_eq!(
        api_error(other.list(&ListParams::default()).await).code,
        403
    );

    // A ClusterRole bound by a ClusterRoleBinding grants cluster-wide.
    create_object(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "secret-reader"},
               "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}),
    )
    .await;
    create_object(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "op-reads-secrets"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "secret-reader"},
               "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": NS}]}),
    )
    .await;
    secrets
        .list(&ListParams::default())
        .await
        .expect("the ClusterRoleBinding grants list of secrets everywhere");
    // A ClusterRole bound by a RoleBinding grants in the binding's namespace only (the usual
    // way to hand out `edit` per namespace).
    create_object(
        &admin,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": "lease-reader"},
               "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list"]}]}),
    )
    .await;
    create_object(
        &admin,
        role_binding(NS, "read-leases", "ClusterRole", "lease-reader"),
    )
    .await;
    Api::<Lease>::namespaced(sa.clone(), NS)
        .list(&ListParams::default())
        .await
        .expect("a RoleBinding to a ClusterRole grants in its namespace");
    for denied in [
        Api::<Lease>::all(sa.clone()),
        Api::namespaced(sa.clone(), "default"),
    ] {
        assert_eq!(
            api_error(denied.list(&ListParams::default()).await).code,
            403
        );
    }
    // Permissions follow the stored objects: deleting the binding takes them away.
    let crbs: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(admin.clone());
    crbs.delete("op-reads-secrets", &DeleteParams::default())
        .await
        .expect("deleted");
    assert_eq!(
        api_error(secrets.list(&ListParams::default()).await).code,
        403
    );
    // The admin kubeconfig's user is in system:masters.
    Api::<Namespace>::all(admin.clone())
        .list(&ListParams::default())
        .await
        .expect("the admin may do anything");
}

/// `ResourceNameMatches` and `ResourceMatches` of kubernetes
/// `pkg/apis/rbac/v1/evaluation_helpers.go`; a `metadata.name` field selector names a list as in
/// k8s.io/apiserver `pkg/endpoints/request/requestinfo.go`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_names_and_subresources_are_enforced() {
    let (_kube, admin, sa) = with_service_account().await;
    // The chart's leader-election Role: create any Lease, everything else only on one name.
    create_object(
        &admin,
        role(
            NS,
            "leader",
            json!([
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                 "resourceNames": ["lock"], "verbs": ["get", "update", "patch", "list"]},
            ]),
        ),
    )
    .await;
    create_object(&admin, role_binding(NS, "leader", "Role", "leader")).await;
    let leases: Api<Lease> = Api::namespaced(sa.clone(), NS);
    for name in ["lock", "other"] {
        let lease: Lease =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("a Lease");
        leases
            .create(&PostParams::default(), &lease)
            .await
            .expect("create is not limited to names");
    }
    leases.get("lock").await.expect("the named Lease");
    leases
        .patch(
            "lock",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"holderIdentity": "me"}})),
        )
        .await
        .expect("patch of the named Lease");
    assert_eq!(
        api_error(leases.get("other").await).message,
        "leases.coordination.k8s.io \"other\" is forbidden: User \"system:serviceaccount:kafka-system:op\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kafka-system\""
    );
    assert_eq!(
        api_error(leases.list(&ListParams::default()).await).code,
        403,
        "list carries no name: resourceNames never allow it"
    );
    // A list restricted to one name by a field selector is authorized for that name.
    let one = leases
        .list(&ListParams::default().fields("metadata.name=lock"))
        .await
        .expect("list of the named Lease");
    assert_eq!(one.items.len(), 1);
    assert_eq!(
        api_error(
            leases
                .list(&ListParams::default().fields("metadata.name=other"))
                .await
        )
        .code,
        403
    );

    // The status subresource is a resource of its own.
    install_crds(&admin).await;
    topics(&admin, NS)
        .create(&PostParams::default(), &topic("t", 1))
        .await
        .expect("a topic");
    create_object(
        &admin,
        role(
            NS,
            "status-writer",
            json!([
                {"apiGroups": ["kafka.hdinsight.dev"], "resources": ["kafkatopics"], "verbs": ["get"]},
                {"apiGroups": ["kafka.hdinsight.dev"], "resources": ["kafkatopics/status"], "verbs": ["patch"]},
            ]),
        ),
    )
    .await;
    create_object(
        &admin,
        role_binding(NS, "status-writer", "Role", "status-writer"),
    )
    .await;
    let mine = topics(&sa, NS);
    mine.get("t").await.expect("get is allowed");
    mine.patch_status(
        "t",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"observedGeneration": 1}})),
    )
    .await
    .expect("the status may be patched");
    let denied = api_error(
        mine.patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await,
    );
    assert_eq!(
        denied.message,
        "kafkatopics.kafka.hdinsight.dev \"t\" is forbidden: User \"system:serviceaccount:kafka-system:op\" cannot patch resource \"kafkatopics\" in API group \"kafka.hdinsight.dev\" in the namespace \"kafka-system\""
    );
}

/// kubernetes `pkg/registry/core/serviceaccount/storage/token.go` (default audiences),
/// `pkg/apis/authentication/validation/validation.go` (10 minutes .. 2^32 s),
/// `pkg/serviceaccount/claims.go` (claims; the ServiceAccount must exist with the same uid).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_follow_the_apiserver() {
    let (kube, admin) = start_with(rbac_config()).await;
    create_namespace(&admin, NS).await;
    let uid = create_service_account(&admin, NS, SA).await;
    let issued = request_token(&admin, NS, SA, &[], None)
        .await
        .expect("a token");
    assert_eq!(
        issued.spec.audiences,
        [kube.service_account_issuer()],
        "the API audiences by default"
    );
    assert_eq!(issued.spec.expiration_seconds, Some(3600));
    let status = issued.status.expect("a status");
    let claims = jwt_claims(&status.token);
    assert_eq!(claims["iss"], kube.service_account_issuer());
    assert_eq!(claims["iss"], kube.base_url());
    assert_eq!(claims["sub"], "system:serviceaccount:kafka-system:op");
    assert_eq!(claims["aud"], json!([kube.base_url()]));
    assert_eq!(claims["kubernetes.io"]["namespace"], NS);
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], SA);
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["uid"], uid);
    let (iat, nbf, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["nbf"].as_i64().expect("nbf"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(exp - iat, 3600);
    assert_eq!(nbf, iat);
    assert_eq!(status.expiration_timestamp.0.as_second(), exp);

    let custom = request_token(&admin, NS, SA, &["vault"], Some(1200))
        .await
        .expect("a token")
        .status
        .expect("status")
        .token;
    let c = jwt_claims(&custom);
    assert_eq!(c["aud"], json!(["vault"]));
    assert_eq!(
        c["exp"].as_i64().unwrap_or(0) - c["iat"].as_i64().unwrap_or(0),
        1200
    );
    // Only a token for the API server's audience is an API credential.
    let vault = client_with_token(&kube, &custom).await;
    let e = api_error(vault.list_api_groups().await);
    assert_eq!((e.code, e.message.as_str()), (401, "Unauthorized"));

    let short = api_error(request_token(&admin, NS, SA, &[], Some(599)).await);
    assert_eq!(short.code, 422);
    assert_eq!(
        short.message,
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"
    );
    let long = api_error(request_token(&admin, NS, SA, &[], Some((1 << 32) + 1)).await);
    assert!(
        long.message
            .contains("may not specify a duration larger than 2^32 seconds")
    );
    let missing = api_error(request_token(&admin, NS, "nobody", &[], None).await);
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (404, "serviceaccounts \"nobody\" not found")
    );

    // TokenReview (authentication.k8s.io): who a token is, for which of the asked audiences
    // (the API server's when none are asked); a token for other audiences, or garbage, is
    // not authenticated. The audiences are `tokenAudiences` of kubernetes
    // pkg/serviceaccount/jwt.go: the token's audiences intersected with the requested ones,
    // an error when nothing is left.
    let reviews: Api<TokenReview> = Api::all(admin.clone());
    let review = |token: &str, audiences: &[&str]| {
        let request = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: (!audiences.is_empty())
                    .then(|| audiences.iter().map(|a| a.to_string()).collect()),
            },
            ..Default::default()
        };
        let reviews = reviews.clone();
        async move {
            reviews
                .create(&PostParams::default(), &request)
                .await
                .expect("a token review")
                .status
                .expect("status")
        }
    };
    let api = review(&status.token, &[]).await;
    assert_eq!(api.authenticated, Some(true));
    assert_eq!(
        api.user.and_then(|u| u.username).as_deref(),
        Some("system:serviceaccount:kafka-system:op")
    );
    assert_eq!(api.audiences, Some(vec![kube.service_account_issuer()]));
    let for_vault = review(&custom, &["vault", "other"]).await;
    assert_eq!(for_vault.authenticated, Some(true));
    assert_eq!(for_vault.audiences, Some(vec!["vault".to_string()]));
    for (token, audiences) in [(custom.as_str(), &[][..]), ("not-a-token", &[][..])] {
        let refused = review(token, audiences).await;
        assert_ne!(refused.authenticated, Some(true), "{token}");
        assert!(refused.error.is_some_and(|e| !e.is_empty()), "{token}");
    }

    // A token is a credential only while its ServiceAccount exists with the same uid.
    let sa = client_with_token(&kube, &status.token).await;
    sa.list_api_groups().await.expect("valid");
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), NS);
    accounts
        .delete(SA, &DeleteParams::default())
        .await
        .expect("deleted");
    assert_eq!(api_error(sa.list_api_groups().await).code, 401);
    create_service_account(&admin, NS, SA).await;
    assert_eq!(
        api_error(sa.list_api_groups().await).code,
        401,
        "a ServiceAccount created again has another uid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_are_unauthorized_and_anonymous_requests_get_only_public_info() {
    let (kube, _admin) = start_with(rbac_config()).await;
    let forged = client_with_token(&kube, "not-a-token").await;
    let e = api_error(forged.list_api_groups().await);
    assert_eq!((e.code, e.reason.as_str()), (401, "Unauthorized"));
    // A token signed by someone else.
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let fake = {
        use base64::Engine;
        let enc = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.c2lnbmF0dXJl",
            enc(&header),
            enc(&json!({"sub": "system:serviceaccount:kafka-system:op"}))
        )
    };
    assert_eq!(
        api_error(
            client_with_token(&kube, &fake)
                .await
                .list_api_groups()
                .await
        )
        .code,
        401
    );

    // No credentials at all: system:anonymous, allowed /version and /healthz only.
    let mut config = kube::Config::new(kube.base_url().parse().expect("a URL"));
    config.root_cert = kube.ca_pem().map(|pem| vec![rustls_pem_to_der(&pem)]);
    let anonymous = kube::Client::try_from(config).expect("a client");
    anonymous.apiserver_version().await.expect("public info");
    let e = api_error(
        Api::<Namespace>::all(anonymous.clone())
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(
        e.message,
        "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    let e = api_error(anonymous.list_api_groups().await);
    assert_eq!(
        e.message,
        "forbidden: User \"system:anonymous\" cannot get path \"/apis\""
    );
}

/// The DER bytes of the first certificate of a PEM text.
fn rustls_pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("a PEM certificate")
}

async fn get_json(client: &kube::Client, path: &str) -> Result<serde_json::Value, kube::Error> {
    let req = http::Request::get(path)
        .body(Vec::new())
        .expect("a request");
    client.request::<serde_json::Value>(req).await
}

/// kubernetes `pkg/serviceaccount/openidmetadata.go` (the discovery document and JWKS) and
/// the `system:service-account-issuer-discovery` binding of `bootstrappolicy/policy.go`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_discovery_publishes_the_key_that_verifies_the_tokens() {
    let (kube, admin, sa) = with_service_account().await;
    let config = get_json(&sa, "/.well-known/openid-configuration")
        .await
        .expect("ServiceAccounts may read the discovery document");
    assert_eq!(config["issuer"], kube.service_account_issuer());
    assert_eq!(
        config["jwks_uri"],
        format!("{}/openid/v1/jwks", kube.base_url())
    );
    assert_eq!(
        config["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    let jwks = get_json(&sa, "/openid/v1/jwks").await.expect("the JWKS");
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );

    // Verify a fresh token with the published key, as an external relying party would.
    let token = request_token(&admin, NS, SA, &["relying-party"], None)
        .await
        .expect("a token")
        .status
        .expect("status")
        .token;
    let header = jsonwebtoken::decode_header(&token).expect("a JWT header");
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().expect("n"),
        key["e"].as_str().expect("e"),
    )
    .expect("an RSA key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["relying-party"]);
    validation.set_issuer(&[kube.service_account_issuer()]);
    let verified =
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).expect("valid");
    assert_eq!(
        verified.claims["sub"],
        "system:serviceaccount:kafka-system:op"
    );
    let mut wrong = validation.clone();
    wrong.set_audience(&["someone-else"]);
    assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &wrong).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_flag_and_anonymous_discovery_are_honoured() {
    let (kube, admin) = start_with(kube_emulator::KubeEmulatorConfig {
        service_account_issuer: Some("https://issuer.example".into()),
        anonymous_issuer_discovery: true,
        ..rbac_config()
    })
    .await;
    create_namespace(&admin, NS).await;
    create_service_account(&admin, NS, SA).await;
    let token = request_token(&admin, NS, SA, &[], None)
        .await
        .expect("a token")
        .status
        .expect("status")
        .token;
    let claims = jwt_claims(&token);
    assert_eq!(claims["iss"], "https://issuer.example");
    assert_eq!(claims["aud"], json!(["https://issuer.example"]));
    client_with_token(&kube, &token)
        .await
        .list_api_groups()
        .await
        .expect("the issuer is also the API audience");
    let mut config = kube::Config::new(kube.base_url().parse().expect("a URL"));
    config.root_cert = kube.ca_pem().map(|pem| vec![rustls_pem_to_der(&pem)]);
    let anonymous = kube::Client::try_from(config).expect("a client");
    let doc = get_json(&anonymous, "/.well-known/openid-configuration")
        .await
        .expect("anonymous discovery is allowed");
    assert_eq!(doc["issuer"], "https://issuer.example");
}

/// kubernetes `pkg/registry/authorization/selfsubjectaccessreview/rest.go` and
/// `subjectaccessreview/rest.go`; the reason as `plugin/pkg/auth/authorizer/rbac/rbac.go` words it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_reviews_answer_for_the_caller_or_a_named_subject() {
    let (_kube, admin, sa) = with_service_account().await;
    create_object(
        &admin,
        role(
            NS,
            "read-secrets",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]),
        ),
    )
    .await;
    create_object(
        &admin,
        role_binding(NS, "read-secrets", "Role", "read-secrets"),
    )
    .await;
    let ask = |verb: &str, ns: &str| ResourceAttributes {
        verb: Some(verb.into()),
        resource: Some("secrets".into()),
        namespace: Some(ns.into()),
        ..Default::default()
    };
    let ssar = |attrs: ResourceAttributes| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(attrs),
            ..Default::default()
        },
        ..Default::default()
    };
    let reviews: Api<SelfSubjectAccessReview> = Api::all(sa.clone());
    let yes = reviews
        .create(&PostParams::default(), &ssar(ask("list", NS)))
        .await
        .expect("every authenticated user may ask")
        .status
        .expect("status");
    assert!(yes.allowed);
    assert_eq!(
        yes.reason.as_deref(),
        Some(
            "RBAC: allowed by RoleBinding \"read-secrets/kafka-system\" of Role \"read-secrets\" to ServiceAccount \"op/kafka-system\""
        )
    );
    let no = reviews
        .create(&PostParams::default(), &ssar(ask("delete", NS)))
        .await
        .expect("a review")
        .status
        .expect("status");
    assert!(!no.allowed);
    let elsewhere = reviews
        .create(&PostParams::default(), &ssar(ask("list", "")))
        .await
        .expect("a review")
        .status
        .expect("status");
    assert!(
        !elsewhere.allowed,
        "a RoleBinding does not grant cluster-wide"
    );

    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some("system:serviceaccount:kafka-system:op".into()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                "system:serviceaccounts:kafka-system".into(),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ask("get", NS)),
            ..Default::default()
        },
        ..Default::default()
    };
    let as_admin: Api<SubjectAccessReview> = Api::all(admin.clone());
    assert!(
        as_admin
            .create(&PostParams::default(), &sar)
            .await
            .expect("the admin may review anyone")
            .status
            .expect("status")
            .allowed
    );
    // A non-resource URL, for a user whose only grant comes through a group: `/version` is
    // granted to system:authenticated by the system:discovery binding, `/metrics` is not.
    for (user, path, verb, allowed) in [
        (Some("jane"), "/version", "get", true),
        (Some("jane"), "/metrics", "get", false),
        (Some("jane"), "/version", "post", false),
        (None, "/version", "get", true),
    ] {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.map(String::from),
                groups: Some(vec!["system:authenticated".into()]),
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path.into()),
                    verb: Some(verb.into()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let status = as_admin
            .create(&PostParams::default(), &review)
            .await
            .expect("a review")
            .status
            .expect("status");
        assert_eq!(status.allowed, allowed, "{user:?} {verb} {path}");
    }
    // The answer is the object sent, its metadata kept, with the decision in its status.
    let mut named = sar.clone();
    named.metadata.name = Some("check-op".into());
    named.metadata.labels = Some([("team".to_string(), "payments".to_string())].into());
    let answer = as_admin
        .create(&PostParams::default(), &named)
        .await
        .expect("a review");
    assert_eq!(answer.metadata.name.as_deref(), Some("check-op"));
    assert_eq!(answer.metadata.labels, named.metadata.labels);
    assert_eq!(answer.spec, named.spec);
    assert!(answer.status.is_some_and(|s| s.allowed));
    // Neither a user nor a group: refused as upstream's ValidateSubjectAccessReviewSpec does
    // (pkg/apis/authorization/validation/validation.go; the message is the "no subject" case of
    // its validation_test.go).
    let nobody = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            resource_attributes: Some(ask("get", NS)),
            ..Default::default()
        },
        ..Default::default()
    };
    let invalid = api_error(as_admin.create(&PostParams::default(), &nobody).await);
    assert_eq!(invalid.code, 422);
    assert!(
        invalid.message.ends_with(
            "spec.user: Invalid value: \"\": at least one of user or group must be specified"
        ),
        "{}",
        invalid.message
    );
    let as_sa: Api<SubjectAccessReview> = Api::all(sa.clone());
    assert_eq!(
        api_error(as_sa.create(&PostParams::default(), &sar).await).message,
        "subjectaccessreviews.authorization.k8s.io is forbidden: User \"system:serviceaccount:kafka-system:op\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope"
    );
}

/// k8s.io/apiserver `pkg/endpoints/filters/impersonation.go`: the verb `impersonate` on users,
/// groups and serviceaccounts, checked for the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_privileged_users_may_impersonate() {
    let (kube, admin, _sa) = with_service_account().await;
    let impersonating = |token: String, user: &str| {
        let yaml = kube.kubeconfig_yaml_with_token(&token);
        let user = user.to_string();
        async move {
            let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
            let mut config = kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .expect("config");
            config.auth_info.impersonate = Some(user);
            kube::Client::try_from(config).expect("client")
        }
    };
    let admin_token = kube
        .kubeconfig_yaml()
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .map(|t| t.trim_matches('"').to_string())
        .expect("the admin token");
    let as_sa = impersonating(admin_token, "system:serviceaccount:kafka-system:op").await;
    let e = api_error(
        Api::<Secret>::all(as_sa.clone())
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(
        e.message,
        "secrets is forbidden: User \"system:serviceaccount:kafka-system:op\" cannot list resource \"secrets\" in API group \"\" at the cluster scope",
        "the admin acts as the ServiceAccount"
    );
    let sa_token = request_token(&admin, NS, SA, &[], None)
        .await
        .expect("a token")
        .status
        .expect("status")
        .token;
    let escalating = impersonating(sa_token, "kubernetes-admin").await;
    let e = api_error(escalating.list_api_groups().await);
    assert_eq!(
        e.message,
        "users \"kubernetes-admin\" is forbidden: User \"system:serviceaccount:kafka-system:op\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
}

/// SelfSubjectRulesReview: a member of system:masters may do anything (`*` on everything,
/// as `cluster-admin` bound to system:masters grants); a ServiceAccount gets only the rules
/// of its bindings and of the default policy, never `*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_reviews_list_everything_for_masters_only() {
    let (_kube, admin, sa) = with_service_account().await;
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(NS.into()),
        },
        ..Default::default()
    };
    let star = |client: kube::Client| {
        let review = review.clone();
        async move {
            let status = Api::<SelfSubjectRulesReview>::all(client)
                .create(&PostParams::default(), &review)
                .await
                .expect("a rules review")
                .status
                .expect("status");
            let resources = status.resource_rules.iter().any(|r| {
                r.verbs == ["*"]
                    && r.api_groups.as_deref() == Some(&["*".to_string()][..])
                    && r.resources.as_deref() == Some(&["*".to_string()][..])
            });
            let urls = status.non_resource_rules.iter().any(|r| {
                r.verbs == ["*"] && r.non_resource_urls.as_deref() == Some(&["*".to_string()][..])
            });
            assert!(!status.incomplete);
            (resources, urls, status.non_resource_rules.len())
        }
    };
    let (resources, urls, _) = star(admin.clone()).await;
    assert!(resources && urls, "system:masters may do anything");
    let (resources, urls, non_resource) = star(sa.clone()).await;
    assert!(!resources && !urls, "a ServiceAccount is not an admin");
    // Without RBAC everyone may do anything (AlwaysAllow's RulesFor).
    let (_open_kube, _, open_sa) = with_service_account_in(test_config()).await;
    let (resources, urls, _) = star(open_sa).await;
    assert!(
        resources && urls,
        "without RBAC a ServiceAccount may do anything"
    );
    assert!(non_resource > 0, "the default policy's discovery URLs");

    // A rule limited to names lists them; a rule that is not leaves `resourceNames` out.
    create_object(
        &admin,
        role(
            NS,
            "the-lock",
            json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                    "resourceNames": ["lock"], "verbs": ["get", "update"]}]),
        ),
    )
    .await;
    create_object(&admin, role_binding(NS, "the-lock", "Role", "the-lock")).await;
    let rules = Api::<SelfSubjectRulesReview>::all(sa)
        .create(&PostParams::default(), &review)
        .await
        .expect("a rules review")
        .status
        .expect("status")
        .resource_rules;
    let names = |resource: &str| {
        rules
            .iter()
            .find(|r| {
                r.resources
                    .as_deref()
                    .is_some_and(|rs| rs.iter().any(|x| x == resource))
            })
            .map(|r| r.resource_names.clone())
    };
    assert_eq!(names("leases"), Some(Some(vec!["lock".to_string()])));
    assert_eq!(names("selfsubjectaccessreviews"), Some(None));
}
