//! The kinds the server knows: built-ins and the ones CustomResourceDefinitions add.

use std::sync::Arc;

use serde_json::{Map, Value, json};

/// One printer column of a CRD version (`additionalPrinterColumns`).
#[derive(Clone, Debug)]
pub(crate) struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// How `kubectl get` rows are built for a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TableKind {
    Custom,
    Namespace,
    Secret,
    ConfigMap,
    CoreEvent,
    Event,
    Lease,
    /// NAME, CREATED AT (CRDs, Roles, ClusterRoles).
    Crd,
    ServiceAccount,
    /// RoleBindings and ClusterRoleBindings: NAME, ROLE, AGE.
    Binding,
}

/// One served group/version/resource.
#[derive(Clone, Debug)]
pub(crate) struct ResourceDef {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub has_status: bool,
    pub has_generation: bool,
    /// Defined by a CustomResourceDefinition (admission, strict update rules).
    pub custom: bool,
    /// Objects of this resource live under this storage key (`group/plural`); core and
    /// events.k8s.io events share one store like on a real server.
    pub storage: String,
    pub table: TableKind,
    pub columns: Vec<PrinterColumn>,
    /// `openAPIV3Schema` of this version (custom resources).
    pub schema: Option<Value>,
    /// The schema compiled for admission (custom resources).
    pub compiled: Option<Arc<kube_admission::CompiledSchema>>,
    /// Name of the CRD that serves this resource.
    pub crd_name: Option<String>,
    /// Field selectors this version declares (`selectableFields[].jsonPath` without the
    /// leading dot, e.g. `spec.color`), on top of `metadata.name` and `metadata.namespace`.
    pub selectable_fields: Vec<String>,
    /// Served only as `create` and never stored (the access and token reviews).
    pub create_only: bool,
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `kafkatopics.kafka.hdinsight.dev`, or `secrets` for the core group.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `KafkaTopic.kafka.hdinsight.dev`, or `Secret` for the core group.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            return vec!["create"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// Whether the stored form differs from the served one (events.k8s.io/v1 Event).
    fn is_events_v1(&self) -> bool {
        self.group == "events.k8s.io"
    }

    /// Whether [`Self::to_storage`] changes more than apiVersion and kind.
    pub fn stored_differs(&self) -> bool {
        self.is_events_v1()
    }

    /// Served form → stored form.
    pub fn to_storage(&self, mut obj: Value) -> Value {
        if self.is_events_v1() {
            obj = event_v1_to_core(obj);
        }
        obj
    }

    /// Stored form → served form, borrowed when they are the same (no conversion, and the
    /// stored apiVersion and kind are this version's): most reads copy nothing.
    pub fn served<'a>(&self, obj: &'a Value) -> std::borrow::Cow<'a, Value> {
        let same = !self.is_events_v1()
            && obj.get("kind").and_then(Value::as_str) == Some(self.kind.as_str())
            && obj.get("apiVersion").and_then(Value::as_str) == Some(self.api_version().as_str());
        if same {
            std::borrow::Cow::Borrowed(obj)
        } else {
            std::borrow::Cow::Owned(self.to_served(obj))
        }
    }

    /// Stored form → served form, with this version's apiVersion and kind.
    pub fn to_served(&self, obj: &Value) -> Value {
        let mut out = if self.is_events_v1() {
            event_core_to_v1(obj.clone())
        } else {
            obj.clone()
        };
        if let Some(map) = out.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(self.api_version()));
            map.insert("kind".into(), Value::String(self.kind.clone()));
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    singular: &str,
    kind: &str,
    namespaced: bool,
    short_names: &[&str],
    has_status: bool,
    has_generation: bool,
    table: TableKind,
) -> ResourceDef {
    ResourceDef {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: singular.into(),
        kind: kind.into(),
        namespaced,
        short_names: short_names.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        has_status,
        has_generation,
        custom: false,
        storage: format!(
            "{}/{}",
            if group == "events.k8s.io" { "" } else { group },
            plural
        ),
        table,
        columns: Vec::new(),
        schema: None,
        compiled: None,
        crd_name: None,
        selectable_fields: Vec::new(),
        create_only: false,
    }
}

/// A kind that is only ever created and answered, never stored.
fn review(group: &str, plural: &str, kind: &str) -> ResourceDef {
    let mut def = builtin(
        group,
        "v1",
        plural,
        &kind.to_lowercase(),
        kind,
        false,
        &[],
        false,
        false,
        TableKind::Crd,
    );
    def.create_only = true;
    def
}

/// The kinds served before any CRD exists.
pub(crate) fn builtins() -> Vec<ResourceDef> {
    let mut crd = builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
        true,
        TableKind::Crd,
    );
    crd.categories = vec!["api-extensions".into()];
    vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "namespace",
            "Namespace",
            false,
            &["ns"],
            true,
            false,
            TableKind::Namespace,
        ),
        builtin(
            "",
            "v1",
            "secrets",
            "secret",
            "Secret",
            true,
            &[],
            false,
            false,
            TableKind::Secret,
        ),
        builtin(
            "",
            "v1",
            "configmaps",
            "configmap",
            "ConfigMap",
            true,
            &["cm"],
            false,
            false,
            TableKind::ConfigMap,
        ),
        builtin(
            "",
            "v1",
            "events",
            "event",
            "Event",
            true,
            &["ev"],
            false,
            false,
            TableKind::CoreEvent,
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "events",
            "event",
            "Event",
            true,
            &["ev"],
            false,
            false,
            TableKind::Event,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "lease",
            "Lease",
            true,
            &[],
            false,
            false,
            TableKind::Lease,
        ),
        crd,
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "serviceaccount",
            "ServiceAccount",
            true,
            &["sa"],
            false,
            false,
            TableKind::ServiceAccount,
        ),
        builtin(
            RBAC_GROUP,
            "v1",
            "clusterroles",
            "clusterrole",
            "ClusterRole",
            false,
            &[],
            false,
            false,
            TableKind::Crd,
        ),
        builtin(
            RBAC_GROUP,
            "v1",
            "clusterrolebindings",
            "clusterrolebinding",
            "ClusterRoleBinding",
            false,
            &[],
            false,
            false,
            TableKind::Binding,
        ),
        builtin(
            RBAC_GROUP,
            "v1",
            "roles",
            "role",
            "Role",
            true,
            &[],
            false,
            false,
            TableKind::Crd,
        ),
        builtin(
            RBAC_GROUP,
            "v1",
            "rolebindings",
            "rolebinding",
            "RoleBinding",
            true,
            &[],
            false,
            false,
            TableKind::Binding,
        ),
        review(
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
        ),
        review(
            "authorization.k8s.io",
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
        ),
        review(
            "authorization.k8s.io",
            "subjectaccessreviews",
            "SubjectAccessReview",
        ),
        review(
            "authentication.k8s.io",
            "selfsubjectreviews",
            "SelfSubjectReview",
        ),
        review("authentication.k8s.io", "tokenreviews", "TokenReview"),
    ]
}

pub(crate) const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The resources a CRD serves, one per served version; or the reason it is invalid.
pub(crate) fn defs_from_crd(
    crd: &Value,
    old: Option<&Value>,
) -> Result<Vec<ResourceDef>, Vec<(String, String, &'static str)>> {
    let mut causes = Vec::new();
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
    let text = |p: &str| {
        spec.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let group = text("/group");
    let plural = text("/names/plural");
    let kind = text("/names/kind");
    let singular = {
        let s = text("/names/singular");
        if s.is_empty() { kind.to_lowercase() } else { s }
    };
    let scope = text("/scope");
    if group.is_empty() {
        causes.push((
            "spec.group".into(),
            "Required value".into(),
            "FieldValueRequired",
        ));
    }
    if plural.is_empty() {
        causes.push((
            "spec.names.plural".into(),
            "Required value".into(),
            "FieldValueRequired",
        ));
    }
    if kind.is_empty() {
        causes.push((
            "spec.names.kind".into(),
            "Required value".into(),
            "FieldValueRequired",
        ));
    }
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push((
            "spec.scope".into(),
            format!(
                "Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""
            ),
            "FieldValueNotSupported",
        ));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push((
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"),
            "FieldValueInvalid",
        ));
    }
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push((
            "spec.versions".into(),
            "Invalid value: null: must have exactly one version marked as storage version".into(),
            "FieldValueInvalid",
        ));
    }
    let storage_count = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage_count != 1 {
        causes.push((
            "spec.versions".into(),
            format!("Invalid value: {storage_count}: must have exactly one version marked as storage version"),
            "FieldValueInvalid",
        ));
    }
    if !causes.is_empty() {
        return Err(causes);
    }
    // The schema checks kube-apiserver makes: structural schema, rules that type-check, costs.
    // On create the server first replaces the status, as its strategy's PrepareForCreate does
    // (apiextensions-apiserver pkg/registry/customresourcedefinition/strategy.go): no status
    // but the storage version as the only stored version, so a client's status is never judged.
    let prepared;
    let to_validate = if old.is_none() {
        let mut c = crd.clone();
        let storage: Vec<Value> = versions
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .filter_map(|v| v.get("name").cloned())
            .collect();
        c["status"] = serde_json::json!({ "storedVersions": storage });
        prepared = c;
        &prepared
    } else {
        crd
    };
    let schema_errors = kube_admission::validate_crd(to_validate, old);
    if !schema_errors.is_empty() {
        return Err(schema_errors
            .iter()
            .map(|e| (e.field.clone(), e.body(), e.kind.cause_reason()))
            .collect());
    }
    let strings = |p: &str| -> Vec<String> {
        spec.pointer(p)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut defs = Vec::new();
    for (index, version) in versions.iter().enumerate() {
        if version.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let vname = version
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let columns = version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| {
                cols.iter()
                    .map(|c| PrinterColumn {
                        name: c.get("name").and_then(Value::as_str).unwrap_or("").into(),
                        type_: c
                            .get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("string")
                            .into(),
                        format: c.get("format").and_then(Value::as_str).unwrap_or("").into(),
                        description: c
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .into(),
                        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                        json_path: c
                            .get("jsonPath")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .into(),
                    })
                    .collect()
            })
            .unwrap_or_else(|| {
                vec![PrinterColumn {
                    name: "Age".into(),
                    type_: "date".into(),
                    format: String::new(),
                    description: String::new(),
                    priority: 0,
                    json_path: ".metadata.creationTimestamp".into(),
                }]
            });
        // apiextensions-apiserver pkg/registry/customresource/strategy.go
        // prepareSelectableFields: the field's name is its jsonPath without the leading dot.
        let selectable_fields = version
            .get("selectableFields")
            .and_then(Value::as_array)
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                    .map(|p| p.trim_start_matches('.').to_string())
                    .collect()
            })
            .unwrap_or_default();
        let schema = version.pointer("/schema/openAPIV3Schema").cloned();
        let compiled = match &schema {
            Some(s) => match kube_admission::CompiledSchema::compile(s) {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    return Err(vec![(
                        format!("spec.versions[{index}].schema.openAPIV3Schema"),
                        format!("Invalid value: {e}"),
                        "FieldValueInvalid",
                    )]);
                }
            },
            None => None,
        };
        defs.push(ResourceDef {
            group: group.clone(),
            version: vname,
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced: scope == "Namespaced",
            short_names: strings("/names/shortNames"),
            categories: strings("/names/categories"),
            has_status: version.pointer("/subresources/status").is_some(),
            has_generation: true,
            custom: true,
            storage: format!("{group}/{plural}"),
            table: TableKind::Custom,
            columns,
            schema,
            compiled,
            crd_name: Some(name.to_string()),
            selectable_fields,
            create_only: false,
        });
    }
    Ok(defs)
}

/// The status a real server gives an accepted CRD.
pub(crate) fn crd_status(crd: &Value, now: &str) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let mut accepted = names.clone();
    if let Some(map) = accepted.as_object_mut()
        && !map.contains_key("singular")
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        map.insert("singular".into(), Value::String(kind.to_lowercase()));
    }
    if let Some(map) = accepted.as_object_mut()
        && !map.contains_key("listKind")
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        map.insert("listKind".into(), Value::String(format!("{kind}List")));
    }
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let mut stored_versions: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in stored {
        if !stored_versions.contains(&v) {
            stored_versions.push(v);
        }
    }
    // Keep the transition time of conditions that were already True.
    let since = |type_: &str| {
        crd.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter().find(|c| {
                    c.get("type").and_then(Value::as_str) == Some(type_)
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            })
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| Value::String(now.to_string()))
    };
    let condition = |type_: &str, reason: &str, message: &str| {
        json!({
            "type": type_,
            "status": "True",
            "lastTransitionTime": since(type_),
            "reason": reason,
            "message": message,
        })
    };
    json!({
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": accepted,
        "storedVersions": stored_versions,
    })
}

fn move_field(from: &mut Map<String, Value>, to: &mut Map<String, Value>, a: &str, b: &str) {
    if let Some(v) = from.remove(a) {
        to.insert(b.into(), v);
    }
}

/// events.k8s.io/v1 Event → core v1 Event (the stored form).
fn event_v1_to_core(obj: Value) -> Value {
    let Value::Object(mut src) = obj else {
        return obj;
    };
    let mut out = Map::new();
    for key in [
        "metadata",
        "reason",
        "type",
        "action",
        "related",
        "eventTime",
        "reportingInstance",
    ] {
        move_field(&mut src, &mut out, key, key);
    }
    move_field(&mut src, &mut out, "regarding", "involvedObject");
    move_field(&mut src, &mut out, "note", "message");
    move_field(
        &mut src,
        &mut out,
        "reportingController",
        "reportingComponent",
    );
    move_field(&mut src, &mut out, "deprecatedSource", "source");
    move_field(
        &mut src,
        &mut out,
        "deprecatedFirstTimestamp",
        "firstTimestamp",
    );
    move_field(
        &mut src,
        &mut out,
        "deprecatedLastTimestamp",
        "lastTimestamp",
    );
    move_field(&mut src, &mut out, "deprecatedCount", "count");
    move_field(&mut src, &mut out, "series", "series");
    out.insert("apiVersion".into(), Value::String("v1".into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// core v1 Event → events.k8s.io/v1 Event.
fn event_core_to_v1(obj: Value) -> Value {
    let Value::Object(mut src) = obj else {
        return obj;
    };
    let mut out = Map::new();
    for key in [
        "metadata",
        "reason",
        "type",
        "action",
        "related",
        "eventTime",
        "reportingInstance",
        "series",
    ] {
        move_field(&mut src, &mut out, key, key);
    }
    move_field(&mut src, &mut out, "involvedObject", "regarding");
    move_field(&mut src, &mut out, "message", "note");
    move_field(
        &mut src,
        &mut out,
        "reportingComponent",
        "reportingController",
    );
    move_field(&mut src, &mut out, "source", "deprecatedSource");
    move_field(
        &mut src,
        &mut out,
        "firstTimestamp",
        "deprecatedFirstTimestamp",
    );
    move_field(
        &mut src,
        &mut out,
        "lastTimestamp",
        "deprecatedLastTimestamp",
    );
    move_field(&mut src, &mut out, "count", "deprecatedCount");
    Value::Object(out)
}
