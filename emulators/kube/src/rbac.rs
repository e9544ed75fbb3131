//! Authorization: the request attributes as kube-apiserver derives them, the RBAC authorizer
//! over the stored Roles, ClusterRoles, RoleBindings and ClusterRoleBindings, the default
//! cluster roles a real cluster starts with, and the access reviews.
//!
//! Upstream: k8s.io/apiserver `pkg/endpoints/request/requestinfo.go` (attributes),
//! kubernetes `plugin/pkg/auth/authorizer/rbac/rbac.go` and `pkg/apis/rbac/v1/evaluation_helpers.go`
//! (rule semantics), `pkg/registry/rbac/validation/rule.go` (which bindings apply),
//! k8s.io/apiserver `pkg/endpoints/handlers/responsewriters/errors.go` (the 403 message).
//! ClusterRole `aggregationRule` is not evaluated: aggregated ClusterRoles have only the rules
//! written into them.

use std::collections::HashMap;

use http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::authn::{self, AUTHENTICATED, MASTERS, UNAUTHENTICATED, UserInfo};
use crate::resources::{RBAC_GROUP, ResourceDef};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::{Shared, lock, query_bool};
use crate::status::ApiError;
use crate::store::{Store, WriteOptions};

/// What a request asks to do (k8s.io/apiserver `authorizer.Attributes`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Attributes {
    pub verb: String,
    /// A request for an API resource (else a non-resource URL such as `/version`).
    pub resource_request: bool,
    pub path: String,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

/// Subresources of a namespace: `/api/v1/namespaces/NS/status` is the namespace's status,
/// not a resource `status` in namespace NS.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// The name a list or watch is restricted to, as `NewRequestInfo` takes it: decoding the query
/// into `ListOptions` must succeed (a selector that does not parse leaves the request unnamed),
/// the field selector's `RequiresExactMatch("metadata.name")` gives the name, and the name
/// must be a valid path segment (`path.IsValidPathSegmentName`: not `.` or `..`, no `/` or
/// `%`).
fn name_from_selectors(q: &HashMap<String, String>) -> Option<String> {
    if let Some(labels) = q.get("labelSelector") {
        LabelSelector::parse(labels).ok()?;
    }
    let fields = FieldSelector::parse(q.get("fieldSelector")?).ok()?;
    let name = fields.requires_exact_match("metadata.name")?;
    let valid = !matches!(name, "." | "..") && !name.contains(['/', '%']);
    valid.then(|| name.to_string())
}

/// The attributes of a request, as `RequestInfoFactory.NewRequestInfo` derives them.
pub(crate) fn request_attributes(
    method: &Method,
    path: &str,
    q: &HashMap<String, String>,
) -> Attributes {
    let mut a = Attributes {
        path: path.to_string(),
        verb: method.as_str().to_lowercase(),
        ..Attributes::default()
    };
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
        _ => return a,
    };
    a.resource_request = true;
    a.api_group = group.to_string();
    a.api_version = version.to_string();
    a.verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
    .to_string();
    let mut current: &[&str] = rest;
    if current[0] == "namespaces" && current.len() > 1 {
        a.namespace = current[1].to_string();
        if current.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&current[2]) {
            current = &current[2..];
        }
    }
    a.resource = current[0].to_string();
    if let Some(name) = current.get(1) {
        a.name = name.to_string();
    }
    if let Some(sub) = current.get(2) {
        a.subresource = sub.to_string();
    }
    if a.name.is_empty() && a.verb == "get" {
        a.verb = if query_bool(q, "watch") {
            "watch"
        } else {
            "list"
        }
        .into();
        if let Some(name) = name_from_selectors(q) {
            a.name = name;
        }
    }
    if a.name.is_empty() && a.verb == "delete" {
        a.verb = "deletecollection".into();
    }
    a
}

/// One rule of a Role or ClusterRole.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    #[serde(rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups.iter().any(|g| g == "*" || g == group)
}

fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        r == "*"
            || r == combined
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty() || rule.resource_names.iter().any(|n| n == name)
}

fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|u| {
        u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
    })
}

/// Whether one rule allows the request (`RuleAllows` in rbac.go).
pub(crate) fn rule_allows(a: &Attributes, rule: &PolicyRule) -> bool {
    if a.resource_request {
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        verb_matches(rule, &a.verb)
            && api_group_matches(rule, &a.api_group)
            && resource_matches(rule, &combined, &a.subresource)
            && resource_name_matches(rule, &a.name)
    } else {
        verb_matches(rule, &a.verb) && non_resource_url_matches(rule, &a.path)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct RoleRef {
    kind: String,
    name: String,
}

/// Whether a binding's subject is the user (`appliesToUser` in rule.go). A ServiceAccount
/// subject without a namespace means the binding's namespace.
fn applies_to_user(user: &UserInfo, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.in_group(&subject.name),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                binding_namespace
            } else {
                subject.namespace.as_str()
            };
            !ns.is_empty() && user.name == authn::service_account_username(ns, &subject.name)
        }
        _ => false,
    }
}

fn describe_subject(s: &Subject, binding_namespace: &str) -> String {
    match s.kind.as_str() {
        "ServiceAccount" => {
            let ns = if s.namespace.is_empty() {
                binding_namespace
            } else {
                s.namespace.as_str()
            };
            format!("{} {:?}", s.kind, format!("{}/{}", s.name, ns))
        }
        _ => format!("{} {:?}", s.kind, s.name),
    }
}

fn parse<T: for<'de> Deserialize<'de> + Default>(v: Option<&Value>) -> T {
    v.cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn rbac_def(store: &Store, plural: &str) -> Option<std::sync::Arc<ResourceDef>> {
    store.find(RBAC_GROUP, "v1", plural)
}

fn role_rules(store: &Store, plural: &str, namespace: &str, name: &str) -> Vec<PolicyRule> {
    rbac_def(store, plural)
        .and_then(|def| store.get(&def, namespace, name).ok())
        .map(|role| parse(role.get("rules")))
        .unwrap_or_default()
}

/// Calls `visit(source, rule)` for every rule that applies to the user in `namespace` (cluster
/// bindings first, then the bindings of the namespace), until it returns false.
fn visit_rules(
    store: &Store,
    user: &UserInfo,
    namespace: &str,
    mut visit: impl FnMut(&str, &PolicyRule) -> bool,
) {
    if let Some(def) = rbac_def(store, "clusterrolebindings") {
        for binding in store.list(&def, None) {
            let subjects: Vec<Subject> = parse(binding.get("subjects"));
            let Some(subject) = subjects.iter().find(|s| applies_to_user(user, s, "")) else {
                continue;
            };
            let role_ref: RoleRef = parse(binding.get("roleRef"));
            if role_ref.kind != "ClusterRole" {
                continue;
            }
            let source = format!(
                "ClusterRoleBinding {:?} of ClusterRole {:?} to {}",
                text(&binding, "/metadata/name"),
                role_ref.name,
                describe_subject(subject, "")
            );
            for rule in role_rules(store, "clusterroles", "", &role_ref.name) {
                if !visit(&source, &rule) {
                    return;
                }
            }
        }
    }
    if namespace.is_empty() {
        return;
    }
    if let Some(def) = rbac_def(store, "rolebindings") {
        for binding in store.list(&def, Some(namespace)) {
            let subjects: Vec<Subject> = parse(binding.get("subjects"));
            let Some(subject) = subjects
                .iter()
                .find(|s| applies_to_user(user, s, namespace))
            else {
                continue;
            };
            let role_ref: RoleRef = parse(binding.get("roleRef"));
            let rules = match role_ref.kind.as_str() {
                "Role" => role_rules(store, "roles", namespace, &role_ref.name),
                "ClusterRole" => role_rules(store, "clusterroles", "", &role_ref.name),
                _ => continue,
            };
            let source = format!(
                "RoleBinding {:?} of {} {:?} to {}",
                format!("{}/{namespace}", text(&binding, "/metadata/name")),
                role_ref.kind,
                role_ref.name,
                describe_subject(subject, namespace)
            );
            for rule in rules {
                if !visit(&source, &rule) {
                    return;
                }
            }
        }
    }
}

/// (allowed, reason) for a user: members of system:masters may do anything (kube-apiserver's
/// privileged-group authorizer), everyone else what their bindings allow.
pub(crate) fn decide(store: &Store, user: &UserInfo, a: &Attributes) -> (bool, String) {
    if user.in_group(MASTERS) {
        return (true, String::new());
    }
    let mut reason = None;
    visit_rules(store, user, &a.namespace, |source, rule| {
        if rule_allows(a, rule) {
            reason = Some(format!("RBAC: allowed by {source}"));
            false
        } else {
            true
        }
    });
    match reason {
        Some(r) => (true, r),
        None => (false, String::new()),
    }
}

/// `User "x" cannot list resource "secrets" in API group "" at the cluster scope`.
pub(crate) fn forbidden_message(user: &UserInfo, a: &Attributes) -> String {
    if !a.resource_request {
        return format!("User {:?} cannot {} path {:?}", user.name, a.verb, a.path);
    }
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    if a.namespace.is_empty() {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
            user.name, a.verb, resource, a.api_group
        )
    } else {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
            user.name, a.verb, resource, a.api_group, a.namespace
        )
    }
}

/// The 403 `Status` kube-apiserver sends for a denied request (`apierrors.NewForbidden`).
pub(crate) fn forbidden(user: &UserInfo, a: &Attributes) -> ApiError {
    let why = forbidden_message(user, a);
    // `apierrors.NewForbidden` with an empty GroupResource, as for a non-resource request.
    if a.resource.is_empty() {
        let mut e = ApiError::new(403, "Forbidden", format!("forbidden: {why}"));
        e.details = Some(json!({}));
        return e;
    }
    let qualified = if a.api_group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.api_group)
    };
    let message = if a.name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} {:?} is forbidden: {why}", a.name)
    };
    let mut details = serde_json::Map::new();
    if !a.name.is_empty() {
        details.insert("name".into(), json!(a.name));
    }
    if !a.api_group.is_empty() {
        details.insert("group".into(), json!(a.api_group));
    }
    details.insert("kind".into(), json!(a.resource));
    let mut e = ApiError::new(403, "Forbidden", message);
    e.details = Some(Value::Object(details));
    e
}

/// Ok when RBAC is off or allows the request; the 403 otherwise.
pub(crate) fn authorize(shared: &Shared, user: &UserInfo, a: &Attributes) -> Result<(), ApiError> {
    if !shared.config.rbac {
        return Ok(());
    }
    let (allowed, _) = decide(&lock(&shared.store), user, a);
    if allowed {
        Ok(())
    } else {
        Err(forbidden(user, a))
    }
}

fn bootstrap_meta(name: &str) -> Value {
    json!({
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn get_urls(urls: &[&str]) -> Value {
    json!({"nonResourceURLs": urls, "verbs": ["get"]})
}

fn group_subject(group: &str) -> Value {
    json!({"apiGroup": RBAC_GROUP, "kind": "Group", "name": group})
}

/// The default ClusterRoles and ClusterRoleBindings this emulator starts with: the ones of
/// kubernetes `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go` that decide what
/// any authenticated user, and a ServiceAccount, may do.
pub(crate) fn default_policy(anonymous_issuer_discovery: bool) -> Vec<(&'static str, Value)> {
    let role = |name: &str, rules: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": bootstrap_meta(name), "rules": rules})
    };
    let binding = |name: &str, subjects: Vec<Value>| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": bootstrap_meta(name),
               "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
               "subjects": subjects})
    };
    let mut issuer_subjects = vec![group_subject("system:serviceaccounts")];
    if anonymous_issuer_discovery {
        issuer_subjects.push(group_subject(UNAUTHENTICATED));
    }
    vec![
        (
            "clusterroles",
            role(
                "cluster-admin",
                json!([
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]},
                ]),
            ),
        ),
        (
            "clusterroles",
            role(
                "system:discovery",
                json!([get_urls(&[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ])]),
            ),
        ),
        (
            "clusterroles",
            role(
                "system:basic-user",
                json!([
                    {"apiGroups": ["authorization.k8s.io"],
                     "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                     "verbs": ["create"]},
                    {"apiGroups": ["authentication.k8s.io"],
                     "resources": ["selfsubjectreviews"], "verbs": ["create"]},
                ]),
            ),
        ),
        (
            "clusterroles",
            role(
                "system:public-info-viewer",
                json!([get_urls(&[
                    "/healthz",
                    "/livez",
                    "/readyz",
                    "/version",
                    "/version/"
                ])]),
            ),
        ),
        (
            "clusterroles",
            role(
                "system:service-account-issuer-discovery",
                json!([get_urls(&[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ])]),
            ),
        ),
        (
            "clusterrolebindings",
            binding("cluster-admin", vec![group_subject(MASTERS)]),
        ),
        (
            "clusterrolebindings",
            binding("system:discovery", vec![group_subject(AUTHENTICATED)]),
        ),
        (
            "clusterrolebindings",
            binding("system:basic-user", vec![group_subject(AUTHENTICATED)]),
        ),
        (
            "clusterrolebindings",
            binding(
                "system:public-info-viewer",
                vec![group_subject(AUTHENTICATED), group_subject(UNAUTHENTICATED)],
            ),
        ),
        (
            "clusterrolebindings",
            binding("system:service-account-issuer-discovery", issuer_subjects),
        ),
    ]
}

/// Stores the default policy.
pub(crate) fn seed(store: &mut Store, anonymous_issuer_discovery: bool) -> anyhow::Result<()> {
    for (plural, obj) in default_policy(anonymous_issuer_discovery) {
        let def =
            rbac_def(store, plural).ok_or_else(|| anyhow::anyhow!("{plural} are not served"))?;
        store
            .create(&def, "", obj, &WriteOptions::default())
            .map_err(|e| anyhow::anyhow!("seeding {plural}: {}", e.message))?;
    }
    Ok(())
}

fn review_invalid(def: &ResourceDef, field: &str, value: &str, why: &str) -> ApiError {
    ApiError::invalid(
        def,
        "",
        &[(
            field.to_string(),
            format!("Invalid value: {value:?}: {why}"),
            "FieldValueInvalid",
        )],
    )
}

/// The attributes a SubjectAccessReview spec asks about.
fn review_attributes(def: &ResourceDef, spec: &Value) -> Result<Attributes, ApiError> {
    let s = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or("").to_string();
    match (
        spec.get("resourceAttributes").filter(|v| v.is_object()),
        spec.get("nonResourceAttributes").filter(|v| v.is_object()),
    ) {
        (Some(ra), None) => Ok(Attributes {
            verb: s(ra, "verb"),
            resource_request: true,
            namespace: s(ra, "namespace"),
            api_group: s(ra, "group"),
            api_version: s(ra, "version"),
            resource: s(ra, "resource"),
            subresource: s(ra, "subresource"),
            name: s(ra, "name"),
            path: String::new(),
        }),
        (None, Some(nra)) => Ok(Attributes {
            verb: s(nra, "verb"),
            path: s(nra, "path"),
            ..Attributes::default()
        }),
        (Some(_), Some(_)) => Err(review_invalid(
            def,
            "spec.nonResourceAttributes",
            "",
            "cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => Err(review_invalid(
            def,
            "spec.resourceAttributes",
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The decision of an access review: every request is allowed when RBAC is off.
fn review_decision(shared: &Shared, user: &UserInfo, a: &Attributes) -> Value {
    let (allowed, reason) = if shared.config.rbac {
        decide(&lock(&shared.store), user, a)
    } else {
        (true, String::new())
    };
    let mut status = json!({"allowed": allowed});
    if !reason.is_empty() {
        status["reason"] = json!(reason);
    }
    status
}

/// The rules of a SelfSubjectRulesReview.
fn rules_status(shared: &Shared, user: &UserInfo, namespace: &str) -> Value {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    if !shared.config.rbac || user.in_group(MASTERS) {
        resource_rules.push(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        non_resource_rules.push(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }
    if shared.config.rbac {
        let store = lock(&shared.store);
        visit_rules(&store, user, namespace, |_, rule| {
            if !rule.resources.is_empty() {
                let mut r = json!({"verbs": rule.verbs, "apiGroups": rule.api_groups,
                                   "resources": rule.resources});
                if !rule.resource_names.is_empty() {
                    r["resourceNames"] = json!(rule.resource_names);
                }
                resource_rules.push(r);
            }
            if !rule.non_resource_urls.is_empty() {
                non_resource_rules
                    .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
            }
            true
        });
    }
    json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
           "incomplete": false})
}

/// Answers a create of one of the review kinds (authorization.k8s.io, authentication.k8s.io).
pub(crate) fn review(
    shared: &Shared,
    user: &UserInfo,
    def: &ResourceDef,
    body: &Value,
) -> Result<(u16, Value), ApiError> {
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let status = match def.kind.as_str() {
        "SelfSubjectAccessReview" => review_decision(shared, user, &review_attributes(def, &spec)?),
        "SubjectAccessReview" => {
            let subject = UserInfo {
                name: spec
                    .get("user")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                uid: spec
                    .get("uid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                groups: strings(spec.get("groups")),
                extra: spec
                    .get("extra")
                    .and_then(|e| serde_json::from_value(e.clone()).ok())
                    .unwrap_or_default(),
            };
            if subject.name.is_empty() && subject.groups.is_empty() {
                return Err(review_invalid(
                    def,
                    "spec.user",
                    "",
                    "at least one of user or group must be specified",
                ));
            }
            review_decision(shared, &subject, &review_attributes(def, &spec)?)
        }
        "SelfSubjectRulesReview" => {
            let ns = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
            if ns.is_empty() {
                return Err(ApiError::bad_request("no namespace on request"));
            }
            rules_status(shared, user, ns)
        }
        "SelfSubjectReview" => json!({"userInfo": user.to_json()}),
        "TokenReview" => {
            let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
            match crate::serviceaccount::validate_for(
                shared,
                token,
                &strings(spec.get("audiences")),
            ) {
                Ok((u, audiences)) => {
                    json!({"authenticated": true, "user": u.to_json(), "audiences": audiences})
                }
                Err(e) => json!({"authenticated": false, "error": e}),
            }
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    // The object as sent (the server read an object), its metadata kept, with a status.
    let mut out = body.as_object().cloned().unwrap_or_default();
    let mut metadata = match out.remove("metadata") {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    metadata.insert("creationTimestamp".into(), Value::Null);
    out.insert("apiVersion".into(), json!(def.api_version()));
    out.insert("kind".into(), json!(def.kind));
    out.insert("metadata".into(), Value::Object(metadata));
    out.insert("spec".into(), spec);
    out.insert("status".into(), status);
    Ok((201, Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // Expected attributes from k8s.io/apiserver pkg/endpoints/request/requestinfo_test.go.
    #[test]
    fn attributes_follow_the_request_info_factory() {
        let a = request_attributes(&Method::GET, "/api/v1/namespaces/other/pods/foo", &q(&[]));
        assert_eq!(
            (
                a.verb.as_str(),
                a.namespace.as_str(),
                a.resource.as_str(),
                a.name.as_str()
            ),
            ("get", "other", "pods", "foo")
        );
        let a = request_attributes(&Method::GET, "/api/v1/pods", &q(&[]));
        assert_eq!((a.verb.as_str(), a.namespace.as_str()), ("list", ""));
        let a = request_attributes(
            &Method::GET,
            "/api/v1/namespaces/other/pods",
            &q(&[("watch", "true")]),
        );
        assert_eq!(a.verb, "watch");
        let a = request_attributes(
            &Method::GET,
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases",
            &q(&[("fieldSelector", "metadata.name=lock")]),
        );
        assert_eq!(
            (a.verb.as_str(), a.name.as_str(), a.api_group.as_str()),
            ("list", "lock", "coordination.k8s.io")
        );
        let a = request_attributes(&Method::DELETE, "/api/v1/namespaces/other/pods", &q(&[]));
        assert_eq!(a.verb, "deletecollection");
        let a = request_attributes(&Method::PUT, "/api/v1/namespaces/other/finalize", &q(&[]));
        assert_eq!(
            (
                a.verb.as_str(),
                a.resource.as_str(),
                a.name.as_str(),
                a.namespace.as_str()
            ),
            ("update", "namespaces", "other", "other")
        );
        let a = request_attributes(&Method::PUT, "/api/v1/namespaces/other/status", &q(&[]));
        assert_eq!(
            (a.resource.as_str(), a.subresource.as_str()),
            ("namespaces", "status")
        );
        let a = request_attributes(
            &Method::PATCH,
            "/apis/kafka.hdinsight.dev/v1alpha1/namespaces/ns/kafkatopics/t/status",
            &q(&[]),
        );
        assert_eq!(
            (a.verb.as_str(), a.subresource.as_str()),
            ("patch", "status")
        );
        let a = request_attributes(&Method::GET, "/apis/rbac.authorization.k8s.io/v1", &q(&[]));
        assert!(!a.resource_request);
        assert_eq!(
            (a.verb.as_str(), a.path.as_str()),
            ("get", "/apis/rbac.authorization.k8s.io/v1")
        );
    }

    /// The verb and name of a list or watch, from `TestFieldSelectorParsing` in
    /// k8s.io/apiserver pkg/endpoints/request/requestinfo_test.go, and the boolean decoding of
    /// `watch` (`Convert_Slice_string_To_bool` in k8s.io/apimachinery pkg/runtime/conversion.go:
    /// only `0` and `false`, in any case, are false; the empty value is true).
    #[test]
    fn lists_are_named_by_a_valid_metadata_name_selector_only() {
        let cases = [
            ("", "list", ""),
            ("fieldSelector=metadata.name=name1", "list", "name1"),
            (
                "watch=true&fieldSelector=metadata.name=name1",
                "watch",
                "name1",
            ),
            ("fieldSelector=foo=bar", "list", ""),
            ("fieldSelector=metadata.name=name1,foo", "list", ""),
            (
                "fieldSelector=metadata.name=name1,foo&watch=true",
                "watch",
                "",
            ),
            (
                "fieldSelector=metadata.name=name1,foo&watch=false",
                "list",
                "",
            ),
            // `==` names too; `!=` does not.
            ("fieldSelector=metadata.name==name1", "list", "name1"),
            ("fieldSelector=metadata.name!=name1", "list", ""),
            // The first exact match in sorted order, beside other terms.
            ("fieldSelector=spec.x=1,metadata.name=b", "list", "b"),
            // Not a valid path segment: the request stays unnamed.
            ("fieldSelector=metadata.name=a%2Fb", "list", ""),
            ("fieldSelector=metadata.name=..", "list", ""),
            ("fieldSelector=metadata.name=a%25", "list", ""),
            // A label selector that does not parse fails the whole decode.
            (
                "fieldSelector=metadata.name=name1&labelSelector=a%20in%20(",
                "list",
                "",
            ),
            (
                "fieldSelector=metadata.name=name1&labelSelector=team=a",
                "list",
                "name1",
            ),
            ("watch=1", "watch", ""),
            ("watch=yes", "watch", ""),
            ("watch=", "watch", ""),
            ("watch=TRUE", "watch", ""),
            ("watch=0", "list", ""),
            ("watch=False", "list", ""),
        ];
        for (query, verb, name) in cases {
            let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let a = request_attributes(&Method::GET, "/apis/group/version/resource", &params);
            assert_eq!((a.verb.as_str(), a.name.as_str()), (verb, name), "{query}");
        }
    }

    fn rule(v: Value) -> PolicyRule {
        serde_json::from_value(v).expect("a rule")
    }

    fn resource(verb: &str, group: &str, res: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: res.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "ns".into(),
            ..Attributes::default()
        }
    }

    // Semantics of kubernetes pkg/apis/rbac/v1/evaluation_helpers.go (VerbMatches,
    // APIGroupMatches, ResourceMatches, ResourceNameMatches, NonResourceURLMatches) combined as
    // RuleAllows in plugin/pkg/auth/authorizer/rbac/rbac.go.
    #[test]
    fn verbs_groups_and_wildcards() {
        let r =
            rule(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}));
        assert!(rule_allows(&resource("get", "", "secrets", "", "s"), &r));
        assert!(rule_allows(&resource("list", "", "secrets", "", ""), &r));
        assert!(!rule_allows(&resource("watch", "", "secrets", "", ""), &r));
        assert!(!rule_allows(
            &resource("get", "apps", "secrets", "", "s"),
            &r
        ));
        assert!(!rule_allows(
            &resource("get", "", "configmaps", "", "c"),
            &r
        ));
        let all = rule(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
        assert!(rule_allows(
            &resource("escalate", "rbac.authorization.k8s.io", "roles", "", "r"),
            &all
        ));
        assert!(rule_allows(
            &resource("patch", "x", "things", "status", "t"),
            &all
        ));
    }

    #[test]
    fn subresources_need_their_own_rule_or_a_star_slash_rule() {
        let main = rule(
            json!({"apiGroups": ["kafka.hdinsight.dev"], "resources": ["kafkatopics"], "verbs": ["patch"]}),
        );
        let status = resource("patch", "kafka.hdinsight.dev", "kafkatopics", "status", "t");
        assert!(
            !rule_allows(&status, &main),
            "the resource does not cover its status"
        );
        let sub = rule(
            json!({"apiGroups": ["kafka.hdinsight.dev"], "resources": ["kafkatopics/status"], "verbs": ["patch"]}),
        );
        assert!(rule_allows(&status, &sub));
        assert!(!rule_allows(
            &resource("patch", "kafka.hdinsight.dev", "kafkatopics", "", "t"),
            &sub
        ));
        let any_status =
            rule(json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["patch"]}));
        assert!(rule_allows(&status, &any_status));
        assert!(!rule_allows(
            &resource("patch", "x", "things", "scale", "t"),
            &any_status
        ));
        assert!(!rule_allows(
            &resource("patch", "x", "things", "", "t"),
            &any_status
        ));
    }

    #[test]
    fn resource_names_restrict_named_requests_only() {
        let r = rule(
            json!({"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                            "resourceNames": ["lock"], "verbs": ["get", "update", "list", "create"]}),
        );
        assert!(rule_allows(
            &resource("get", "coordination.k8s.io", "leases", "", "lock"),
            &r
        ));
        assert!(!rule_allows(
            &resource("get", "coordination.k8s.io", "leases", "", "other"),
            &r
        ));
        // list, watch and create carry no name: a rule with resourceNames never matches them.
        assert!(!rule_allows(
            &resource("list", "coordination.k8s.io", "leases", "", ""),
            &r
        ));
        assert!(!rule_allows(
            &resource("create", "coordination.k8s.io", "leases", "", ""),
            &r
        ));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_a_trailing_star() {
        let r = rule(json!({"nonResourceURLs": ["/apis/*", "/version"], "verbs": ["get"]}));
        let path = |p: &str, verb: &str| Attributes {
            verb: verb.into(),
            path: p.into(),
            ..Attributes::default()
        };
        assert!(rule_allows(&path("/apis/apps/v1", "get"), &r));
        assert!(rule_allows(&path("/apis/", "get"), &r));
        assert!(!rule_allows(&path("/apis", "get"), &r));
        assert!(rule_allows(&path("/version", "get"), &r));
        assert!(!rule_allows(&path("/version/", "get"), &r));
        assert!(!rule_allows(&path("/version", "post"), &r));
        // A resource rule never allows a path, and a path rule never a resource.
        let res = rule(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
        assert!(!rule_allows(&path("/version", "get"), &res));
        assert!(!rule_allows(&resource("get", "", "version", "", ""), &r));
    }

    #[test]
    fn service_account_subjects_default_to_the_binding_namespace() {
        let user = UserInfo::service_account("ns", "op", "u");
        let bare = Subject {
            kind: "ServiceAccount".into(),
            name: "op".into(),
            namespace: String::new(),
        };
        assert!(applies_to_user(&user, &bare, "ns"));
        assert!(!applies_to_user(&user, &bare, "other"));
        assert!(
            !applies_to_user(&user, &bare, ""),
            "a cluster binding needs the namespace"
        );
        let group = Subject {
            kind: "Group".into(),
            name: "system:serviceaccounts:ns".into(),
            namespace: String::new(),
        };
        assert!(applies_to_user(&user, &group, ""));
        let other_user = Subject {
            kind: "User".into(),
            name: "system:serviceaccount:ns:op".into(),
            namespace: String::new(),
        };
        assert!(
            applies_to_user(&user, &other_user, ""),
            "a User subject matches by name"
        );
    }

    // Wording of forbiddenMessage in k8s.io/apiserver
    // pkg/endpoints/handlers/responsewriters/errors.go and apierrors.NewForbidden.
    #[test]
    fn the_forbidden_status_reads_like_kube_apiserver() {
        let user = UserInfo::service_account("kafka-system", "op", "u");
        let mut a = resource("list", "", "secrets", "", "");
        a.namespace.clear();
        let e = forbidden(&user, &a);
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "secrets is forbidden: User \"system:serviceaccount:kafka-system:op\" cannot list resource \"secrets\" in API group \"\" at the cluster scope"
        );
        // StatusDetails omits empty fields (`omitempty`): no name or group here.
        assert_eq!(e.details, Some(json!({"kind": "secrets"})));
        let a = resource("get", "coordination.k8s.io", "leases", "", "lock");
        let e = forbidden(&user, &a);
        assert_eq!(
            e.message,
            "leases.coordination.k8s.io \"lock\" is forbidden: User \"system:serviceaccount:kafka-system:op\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"ns\""
        );
        assert_eq!(
            e.details,
            Some(json!({"name": "lock", "group": "coordination.k8s.io", "kind": "leases"}))
        );
        let a = resource("patch", "kafka.hdinsight.dev", "kafkatopics", "status", "t");
        assert!(
            forbidden(&user, &a)
                .message
                .contains("cannot patch resource \"kafkatopics/status\"")
        );
        let p = Attributes {
            verb: "get".into(),
            path: "/metrics".into(),
            ..Attributes::default()
        };
        assert_eq!(
            forbidden(&user, &p).message,
            "forbidden: User \"system:serviceaccount:kafka-system:op\" cannot get path \"/metrics\""
        );
        assert_eq!(forbidden(&user, &p).details, Some(json!({})));
    }
}
