//! Authentication: who a request is from (the admin token, a ServiceAccount token, or nobody),
//! and impersonation (`Impersonate-User`, `Impersonate-Group`, `Impersonate-Uid`,
//! `Impersonate-Extra-*`), as kube-apiserver's authentication and impersonation filters do.

use std::collections::BTreeMap;

use http::{HeaderMap, header};

use crate::rbac::{self, Attributes};
use crate::server::Shared;
use crate::serviceaccount;
use crate::status::ApiError;

/// The user of the admin kubeconfig.
pub const ADMIN_USER: &str = "kubernetes-admin";
/// The group whose members may do anything (kube-apiserver's privileged group).
pub const MASTERS: &str = "system:masters";
pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";
const SA_PREFIX: &str = "system:serviceaccount:";

/// An authenticated (or anonymous) user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn admin() -> Self {
        Self {
            name: ADMIN_USER.into(),
            groups: vec![MASTERS.into(), AUTHENTICATED.into()],
            ..Self::default()
        }
    }

    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS.into(),
            groups: vec![UNAUTHENTICATED.into()],
            ..Self::default()
        }
    }

    /// `system:serviceaccount:NS:NAME` with the groups kube-apiserver gives a ServiceAccount.
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> Self {
        Self {
            name: service_account_username(namespace, name),
            uid: uid.into(),
            groups: service_account_groups(namespace, true),
            ..Self::default()
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The `userInfo` of reviews.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"username": self.name, "groups": self.groups});
        if !self.uid.is_empty() {
            v["uid"] = serde_json::Value::String(self.uid.clone());
        }
        if !self.extra.is_empty() {
            v["extra"] = serde_json::json!(self.extra);
        }
        v
    }
}

pub(crate) fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SA_PREFIX}{namespace}:{name}")
}

fn service_account_groups(namespace: &str, authenticated: bool) -> Vec<String> {
    let mut groups = vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
    ];
    if authenticated {
        groups.push(AUTHENTICATED.into());
    }
    groups
}

/// `system:serviceaccount:NS:NAME` → (NS, NAME).
pub(crate) fn split_service_account(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SA_PREFIX)?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Who the request is from, after impersonation. 401 for a credential that is not valid.
pub(crate) fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let user = authenticate_token(shared, bearer(headers))?;
    impersonate(shared, user, headers)
}

/// The user a bearer token (or its absence) stands for.
pub(crate) fn authenticate_token(
    shared: &Shared,
    token: Option<&str>,
) -> Result<UserInfo, ApiError> {
    let config = &shared.config;
    let Some(token) = token else {
        return if config.rbac {
            // kube-apiserver's default: requests without credentials are system:anonymous,
            // and RBAC decides what they may do.
            Ok(UserInfo::anonymous())
        } else if config.token.is_some() {
            Err(ApiError::unauthorized())
        } else {
            Ok(UserInfo::admin())
        };
    };
    if config
        .token
        .as_deref()
        .is_some_and(|admin| constant_time_eq(admin.as_bytes(), token.as_bytes()))
    {
        return Ok(UserInfo::admin());
    }
    match serviceaccount::validate(shared, token) {
        Ok(user) => Ok(user),
        // Without RBAC and without a required token every request is the admin, whatever
        // credential it carries.
        Err(_) if !config.rbac && config.token.is_none() => Ok(UserInfo::admin()),
        Err(_) => Err(ApiError::unauthorized()),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(String::from)
        .collect()
}

/// Applies `Impersonate-*` headers: each requested attribute must be allowed by the verb
/// `impersonate` for the requesting user (k8s.io/apiserver pkg/endpoints/filters/impersonation.go).
fn impersonate(shared: &Shared, user: UserInfo, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let name = header_values(headers, "impersonate-user")
        .into_iter()
        .next();
    let groups = header_values(headers, "impersonate-group");
    let uid = header_values(headers, "impersonate-uid").into_iter().next();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in headers {
        if let Some(k) = key.as_str().strip_prefix("impersonate-extra-")
            && let Ok(v) = value.to_str()
        {
            let k = url::form_urlencoded::parse(k.as_bytes())
                .map(|(a, b)| {
                    if b.is_empty() {
                        a.into_owned()
                    } else {
                        format!("{a}={b}")
                    }
                })
                .collect::<String>();
            extra.entry(k).or_default().push(v.to_string());
        }
    }
    let Some(name) = name else {
        if groups.is_empty() && uid.is_none() && extra.is_empty() {
            return Ok(user);
        }
        return Err(ApiError::bad_request(
            "requested impersonation of groups, uid or extra without impersonating a user",
        ));
    };
    let check = |attrs: Attributes| rbac::authorize(shared, &user, &attrs);
    let impersonate = |resource: &str, group: &str, namespace: &str, name: &str| Attributes {
        verb: "impersonate".into(),
        resource_request: true,
        api_group: group.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..Attributes::default()
    };
    let mut new_groups = groups.clone();
    match split_service_account(&name) {
        Some((ns, sa)) => {
            check(impersonate("serviceaccounts", "", ns, sa))?;
            if groups.is_empty() {
                new_groups = service_account_groups(ns, false);
            }
        }
        None => check(impersonate("users", "", "", &name))?,
    }
    for g in &groups {
        check(impersonate("groups", "", "", g))?;
    }
    if let Some(uid) = &uid {
        check(impersonate("uids", "authentication.k8s.io", "", uid))?;
    }
    for (key, values) in &extra {
        for v in values {
            let mut attrs = impersonate("userextras", "authentication.k8s.io", "", v);
            attrs.subresource = key.clone();
            check(attrs)?;
        }
    }
    if name == ANONYMOUS {
        if !new_groups.iter().any(|g| g == UNAUTHENTICATED) {
            new_groups.push(UNAUTHENTICATED.into());
        }
    } else if !new_groups
        .iter()
        .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
    {
        new_groups.push(AUTHENTICATED.into());
    }
    Ok(UserInfo {
        name,
        uid: uid.unwrap_or_default(),
        groups: new_groups,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_user_names_split_into_namespace_and_name() {
        assert_eq!(
            split_service_account("system:serviceaccount:kafka-system:op"),
            Some(("kafka-system", "op"))
        );
        assert_eq!(split_service_account("system:serviceaccount:ns"), None);
        assert_eq!(split_service_account("alice"), None);
        assert_eq!(split_service_account("system:serviceaccount:ns:a:b"), None);
    }

    #[test]
    fn a_service_account_gets_the_groups_of_the_apiserver() {
        let u = UserInfo::service_account("kafka-system", "op", "u1");
        assert_eq!(u.name, "system:serviceaccount:kafka-system:op");
        assert_eq!(
            u.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:kafka-system",
                "system:authenticated"
            ]
        );
    }
}
