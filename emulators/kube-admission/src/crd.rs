//! What kube-apiserver checks in a CustomResourceDefinition's schemas when it is created or
//! updated (apiextensions-apiserver `pkg/apis/apiextensions/validation/validation.go`
//! `ValidateCustomResourceDefinitionOpenAPISchema`, `cel_validation.go`, and
//! `pkg/apiserver/schema/validation.go` `ValidateStructural`), with the server's field paths and
//! wording.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::check::{self, types::Decl, types::DeclKind, types::MAX_REQUEST_SIZE_BYTES};
use crate::error::{FieldError, FieldErrorKind};
use crate::gofmt;

/// `StaticEstimatedCostLimit`: the largest static cost of one expression.
pub const STATIC_ESTIMATED_COST_LIMIT: u64 = 10_000_000;
/// `StaticEstimatedCRDCostLimit`: the largest total of a schema's expressions.
pub const STATIC_ESTIMATED_CRD_COST_LIMIT: u64 = 100_000_000;
/// `celconfig.PerCallLimit`: the runtime cost limit of one evaluation.
pub const PER_CALL_LIMIT: u64 = 1_000_000;

const OPENAPI_V3_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
const VALIDATION_REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// One `x-kubernetes-validations` rule as the API server compiles it in a CRD.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleReport {
    /// Path of the schema node holding the rule, relative to the openAPIV3Schema: "" for the
    /// root, "properties[spec].properties[config]", "properties[spec].items",
    /// "properties[spec].additionalProperties" ...
    pub schema_path: String,
    /// Index of the rule in that node's x-kubernetes-validations.
    pub index: usize,
    pub rule: String,
    /// Static cost estimate (cel-go's CostEstimate.Max), when the rule compiled.
    pub max_cost: Option<u64>,
    /// Cardinality of the node (`MaxCardinality`); None = unbounded.
    pub max_cardinality: Option<u64>,
    /// The compile error's detail as the API server prints it.
    pub error: Option<String>,
}

/// Compiles every rule of one openAPIV3Schema the way kube-apiserver does when it validates a
/// CRD (Kubernetes 1.32 environment, per-call limit `PER_CALL_LIMIT`).
pub fn compile_rules(open_api_v3_schema: &Value) -> Vec<RuleReport> {
    let mut w = Walker::new(false);
    // Report every rule, even where the schema has errors that would stop a CRD write first.
    w.compile_despite_schema_errors = true;
    w.walk(
        open_api_v3_schema,
        "",
        "",
        true,
        Some(Ctx::root(open_api_v3_schema)),
        &Ssv::default(),
    );
    w.reports
}

/// Everything kube-apiserver checks in the schemas of a CustomResourceDefinition when it is
/// created (`old` = None) or updated (`old` = the stored CRD).
pub fn validate_crd(crd: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let versions: Vec<&Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    // The internal API holds one schema in spec.validation when all versions agree, and that is
    // the path the server reports.
    let schemas: Vec<Option<&Value>> = versions.iter().map(|v| v.get("schema")).collect();
    let identical = !schemas.is_empty() && schemas.iter().all(|s| *s == schemas[0]);
    let subresources: Vec<Option<&Value>> =
        versions.iter().map(|v| v.get("subresources")).collect();
    let subresources_identical =
        !subresources.is_empty() && subresources.iter().all(|s| *s == subresources[0]);
    let old_versions: Vec<&Value> = old
        .and_then(|o| o.pointer("/spec/versions"))
        .and_then(Value::as_array)
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    let old_non_structural = old_versions.iter().any(|v| {
        v.pointer("/schema/openAPIV3Schema")
            .is_some_and(|s| !structural_errors(s, "").is_empty())
    });
    let old_invalid_types = old_versions.iter().any(|v| {
        v.pointer("/schema/openAPIV3Schema")
            .is_some_and(has_invalid_type)
    });
    for (i, version) in versions.iter().enumerate() {
        if identical && i > 0 {
            break;
        }
        let Some(schema) = version.pointer("/schema/openAPIV3Schema") else {
            continue;
        };
        let base = if identical {
            "spec.validation".to_string()
        } else {
            format!("spec.versions[{i}].schema")
        };
        let name = version.get("name").and_then(Value::as_str).unwrap_or("");
        // Per-expression costs are not enforced again on a schema that did not change.
        let unchanged = old_versions.iter().any(|o| {
            o.get("name").and_then(Value::as_str) == Some(name)
                && o.get("schema") == version.get("schema")
        });
        let has_status = if subresources_identical {
            subresources[0].is_some_and(|s| s.get("status").is_some())
        } else {
            version.pointer("/subresources/status").is_some()
        };
        let opts = Opts {
            suppress_per_expression_cost: unchanged,
            require_structural: !old_non_structural,
            require_valid_type: !old_invalid_types,
            has_status,
        };
        errors.extend(validate_schema(schema, &base, &opts));
    }
    // `validateCustomResourceDefinitionSpec`: every version has a schema (on update, only if
    // the stored CRD had one for every version: existing data is not tightened).
    let all_schemas = |vs: &[&Value]| {
        vs.iter()
            .all(|v| v.pointer("/schema/openAPIV3Schema").is_some())
    };
    if old.is_none() || all_schemas(&old_versions) {
        for (i, version) in versions.iter().enumerate() {
            if version.pointer("/schema/openAPIV3Schema").is_none() {
                errors.push(FieldError::new(
                    FieldErrorKind::Required,
                    format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    None,
                    "schemas are required",
                ));
            }
        }
    }
    if !versions.is_empty() {
        let storage = versions
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .count();
        if storage != 1 {
            errors.push(FieldError::new(
                FieldErrorKind::Invalid,
                "spec.versions",
                crd.pointer("/spec/versions").cloned(),
                "must have exactly one version marked as storage version",
            ));
        }
    }
    // `ValidateCustomResourceDefinitionSubresources`, per version or once when all agree.
    if subresources_identical {
        if let Some(sub) = subresources[0] {
            errors.extend(subresource_errors(sub, "spec.subresources"));
        }
    } else {
        for (i, sub) in subresources.iter().enumerate() {
            if let Some(sub) = sub {
                errors.extend(subresource_errors(
                    sub,
                    &format!("spec.versions[{i}].subresources"),
                ));
            }
        }
    }
    // `ValidateCustomResourceDefinitionStoredVersions`. On update the server validates the
    // stored status with the new storage version appended (the strategy's PrepareForUpdate
    // ignores the status sent); on create it validates the status it sets itself, so a create
    // is checked against the storedVersions the CRD carries, if any.
    let old_stored = old
        .and_then(|o| o.pointer("/status/storedVersions"))
        .and_then(Value::as_array);
    let stored = match old_stored {
        Some(prev) => {
            let mut s = prev.clone();
            let storage = versions
                .iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .and_then(|v| v.get("name"));
            if let Some(name) = storage
                && !s.contains(name)
            {
                s.push(name.clone());
            }
            Some(s)
        }
        None => crd
            .pointer("/status/storedVersions")
            .and_then(Value::as_array)
            .cloned(),
    };
    if let Some(stored) = stored {
        errors.extend(stored_version_errors(&stored, &versions));
    }
    errors
}

fn stored_version_errors(stored: &[Value], versions: &[&Value]) -> Vec<FieldError> {
    let fld = "status.storedVersions";
    if stored.is_empty() {
        return vec![FieldError::new(
            FieldErrorKind::Invalid,
            fld,
            Some(Value::Array(Vec::new())),
            "must have at least one stored version",
        )];
    }
    let mut errs = Vec::new();
    let mut unmatched: Vec<(usize, &str)> = stored
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.as_str().map(|s| (i, s)))
        .collect();
    for v in versions {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        let known = stored.iter().any(|s| s.as_str() == Some(name));
        if v.get("storage").and_then(Value::as_bool) == Some(true) && !known {
            errs.push(FieldError::new(
                FieldErrorKind::Invalid,
                fld,
                Some(Value::Array(stored.to_vec())),
                format!("must have the storage version {name}"),
            ));
        }
        unmatched.retain(|(_, s)| *s != name);
    }
    for (i, s) in unmatched {
        errs.push(FieldError::new(
            FieldErrorKind::Invalid,
            format!("{fld}[{i}]"),
            Some(Value::String(s.to_string())),
            "must appear in spec.versions",
        ));
    }
    errs
}

/// `validateSimpleJSONPath`.
fn simple_json_path_error(p: &str, fld: &str) -> Option<FieldError> {
    let detail = if p.is_empty() {
        "must not be empty"
    } else if !p.starts_with('.') {
        "must be a simple json path starting with ."
    } else {
        return None;
    };
    Some(FieldError::new(
        FieldErrorKind::Invalid,
        fld,
        Some(Value::String(p.to_string())),
        detail,
    ))
}

/// The scale subresource's paths (`ValidateCustomResourceDefinitionSubresources`).
fn subresource_errors(sub: &Value, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(scale) = sub.get("scale").filter(|s| s.is_object()) else {
        return errs;
    };
    let paths: [(&str, &[&str], &str); 2] = [
        (
            "specReplicasPath",
            &[".spec."],
            "should be a json path under .spec",
        ),
        (
            "statusReplicasPath",
            &[".status."],
            "should be a json path under .status",
        ),
    ];
    for (key, prefixes, detail) in paths {
        let fld = format!("{base}.scale.{key}");
        match scale.get(key).and_then(Value::as_str).unwrap_or("") {
            "" => errs.push(FieldError::new(FieldErrorKind::Required, fld, None, "")),
            p => {
                if let Some(e) = simple_json_path_error(p, &fld) {
                    errs.push(e);
                } else if !prefixes.iter().any(|x| p.starts_with(x)) {
                    errs.push(FieldError::new(
                        FieldErrorKind::Invalid,
                        fld,
                        Some(Value::String(p.to_string())),
                        detail,
                    ));
                }
            }
        }
    }
    if let Some(p) = scale
        .get("labelSelectorPath")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    {
        let fld = format!("{base}.scale.labelSelectorPath");
        if let Some(e) = simple_json_path_error(p, &fld) {
            errs.push(e);
        } else if !p.starts_with(".spec.") && !p.starts_with(".status.") {
            errs.push(FieldError::new(
                FieldErrorKind::Invalid,
                fld,
                Some(Value::String(p.to_string())),
                "should be a json path under either .spec or .status",
            ));
        }
    }
    errs
}

struct Opts {
    suppress_per_expression_cost: bool,
    require_structural: bool,
    require_valid_type: bool,
    has_status: bool,
}

fn has_invalid_type(s: &Value) -> bool {
    let mut bad = false;
    visit(s, &mut |n| {
        if let Some(t) = n.get("type").and_then(Value::as_str)
            && !t.is_empty()
            && !OPENAPI_V3_TYPES.contains(&t)
        {
            bad = true;
        }
    });
    bad
}

fn visit(s: &Value, f: &mut impl FnMut(&Value)) {
    if !s.is_object() {
        return;
    }
    f(s);
    if let Some(p) = s.get("properties").and_then(Value::as_object) {
        for v in p.values() {
            visit(v, f);
        }
    }
    for k in ["items", "additionalProperties", "not"] {
        if let Some(v) = s.get(k) {
            visit(v, f);
        }
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = s.get(k).and_then(Value::as_array) {
            for v in list {
                visit(v, f);
            }
        }
    }
}

/// `ValidateCustomResourceValidation` for one schema: `base` is `spec.validation` or
/// `spec.versions[i].schema`.
fn validate_schema(schema: &Value, base: &str, opts: &Opts) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let root = format!("{base}.openAPIV3Schema");
    if opts.has_status {
        let allowed = [
            "description",
            "type",
            "format",
            "title",
            "maximum",
            "exclusiveMaximum",
            "minimum",
            "exclusiveMinimum",
            "maxLength",
            "minLength",
            "pattern",
            "maxItems",
            "minItems",
            "uniqueItems",
            "multipleOf",
            "required",
            "items",
            "properties",
            "externalDocs",
            "example",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-validations",
        ];
        if let Some(obj) = schema.as_object() {
            for (k, v) in obj {
                // The server skips fields holding Go's zero value: null (a nil pointer, slice
                // or map), false (a plain bool) and "" (a plain string). `[]` and `{}` decode
                // to non-nil empty slices, maps or structs, so they count.
                let zero = v.is_null()
                    || v == &Value::Bool(false)
                    || (v.as_str() == Some("")
                        && matches!(
                            k.as_str(),
                            "id" | "$schema"
                                | "description"
                                | "type"
                                | "format"
                                | "title"
                                | "pattern"
                        ));
                if zero {
                    continue;
                }
                if k == "type" {
                    if v.as_str() != Some("object") {
                        errors.push(FieldError::new(
                            FieldErrorKind::Invalid,
                            format!("{root}.type"),
                            Some(v.clone()),
                            "only \"object\" is allowed as the type at the root of the schema if the status subresource is enabled",
                        ));
                        break;
                    }
                    continue;
                }
                if !allowed.contains(&k.as_str()) {
                    errors.push(FieldError::new(
                        FieldErrorKind::Invalid,
                        root.clone(),
                        None,
                        "only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the status subresource is enabled",
                    ));
                    break;
                }
            }
        }
    }
    if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        errors.push(FieldError::new(
            FieldErrorKind::Forbidden,
            format!("{root}.nullable"),
            None,
            "nullable cannot be true at the root",
        ));
    }
    let mut ctx = None;
    let init_error = structural_init_error(schema);
    if opts.require_structural && init_error.is_none() {
        let structural = structural_errors(schema, &root);
        if structural.is_empty() {
            let defaults = default_errors(schema, &root);
            if defaults.is_empty() {
                ctx = Some(Ctx::root(schema));
            } else {
                errors.extend(defaults);
            }
        } else {
            errors.extend(structural);
        }
    }
    let mut w = Walker::new(opts.suppress_per_expression_cost);
    w.require_valid_type = opts.require_valid_type;
    let (schema_errs, cel_errs) = w.walk(schema, &root, "", true, ctx, &Ssv::default());
    errors.extend(schema_errs);
    errors.extend(cel_errs);
    // A schema the structural conversion refuses is reported only when nothing else is: the
    // other checks say the same more precisely.
    if opts.require_structural
        && errors.is_empty()
        && let Some(message) = init_error
    {
        errors.push(FieldError::new(
            FieldErrorKind::Invalid,
            root.clone(),
            Some(Value::String(String::new())),
            message,
        ));
    }
    if w.total > STATIC_ESTIMATED_CRD_COST_LIMIT {
        for (path, _) in &w.most_expensive {
            errors.push(FieldError::new(
                FieldErrorKind::Forbidden,
                path.clone(),
                None,
                "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema",
            ));
        }
        errors.push(FieldError::new(
            FieldErrorKind::Forbidden,
            root,
            None,
            cost_error_message(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                w.total,
                STATIC_ESTIMATED_CRD_COST_LIMIT,
            ),
        ));
    }
    errors
}

/// apiextensions-apiserver `pkg/apiserver/schema/convert.go` `NewStructural`: the schemas it
/// cannot convert at all (then neither structural nor default nor CEL checks run).
fn structural_init_error(s: &Value) -> Option<String> {
    let obj = s.as_object()?;
    // `validateUnsupportedFields`: strings and maps count when not empty (`len(…) > 0`),
    // `additionalItems` whenever it is there (a non-nil pointer).
    for (key, name) in [
        ("id", "id"),
        ("$schema", "schema"),
        ("$ref", "$ref"),
        ("patternProperties", "patternProperties"),
        ("dependencies", "dependencies"),
        ("additionalItems", "additionalItems"),
        ("definitions", "definitions"),
    ] {
        let set = match obj.get(key) {
            None | Some(Value::Null) => false,
            Some(_) if key == "additionalItems" => true,
            Some(Value::String(v)) => !v.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(_) => true,
        };
        if set {
            return Some(format!("OpenAPIV3Schema '{name}' is not supported"));
        }
    }
    if obj.get("items").is_some_and(Value::is_array) {
        return Some("OpenAPIV3Schema 'items' must be a schema, but is an array".into());
    }
    if obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        return Some(
            "internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined"
                .into(),
        );
    }
    let mut children: Vec<&Value> = Vec::new();
    children.extend(obj.get("items"));
    children.extend(obj.get("additionalProperties").filter(|a| a.is_object()));
    children.extend(obj.get("not"));
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        children.extend(props.values());
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = obj.get(k).and_then(Value::as_array) {
            children.extend(list);
        }
    }
    children.into_iter().find_map(structural_init_error)
}

/// A step from an embedded resource down to a node (`SurroundingObjectFunc` Child / Index).
#[derive(Clone)]
enum Step {
    Child(String),
    Index,
}

/// apiextensions-apiserver `pkg/apiserver/schema/defaulting/validation.go` `ValidateDefaults`:
/// every `default` (below `items` and `properties`) must be pruned already, have well-typed
/// and valid type and object meta in embedded resources, be valid against its schema and pass
/// the node's CEL rules. A default inside an embedded resource's metadata or type meta is
/// checked in the object it would land in (the resource with `apiVersion: validation/v1`,
/// `kind: Validation` where unset). The root is a resource.
fn default_errors(schema: &Value, root: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut steps = Vec::new();
    defaults_at(schema, root, schema, &mut steps, false, true, &mut errs);
    errs
}

fn defaults_at(
    s: &Value,
    path: &str,
    resource: &Value,
    steps: &mut Vec<Step>,
    inside_meta: bool,
    resource_root: bool,
    errs: &mut Vec<FieldError>,
) {
    if !s.is_object() {
        return;
    }
    let embedded = resource_root || flag(s, "x-kubernetes-embedded-resource");
    let (resource, inside_meta, outer_steps) = if embedded {
        (s, false, std::mem::take(steps))
    } else {
        (resource, inside_meta, Vec::new())
    };
    if let Some(d) = s.get("default").filter(|d| !d.is_null())
        && let Ok(node) = crate::schema::Node::compile(s, "", 0)
    {
        let at = child(path, "default");
        let nested = |e: FieldError| {
            // kube-openapi and the CEL validator name the value by the default's own path.
            let field = if e.field == "<nil>" || e.field.is_empty() {
                at.clone()
            } else {
                format!("{at}.{}", e.field)
            };
            let detail = match e.detail.strip_prefix(e.field.as_str()) {
                Some(rest) => format!("{field}{rest}"),
                None => e.detail.clone(),
            };
            FieldError::new(e.kind, field, e.value.clone(), detail)
        };
        let schema_and_rules = |errs: &mut Vec<FieldError>| {
            let schema_errs: Vec<FieldError> = crate::validate::value(&node, d)
                .into_iter()
                .map(nested)
                .collect();
            if schema_errs.is_empty() {
                errs.extend(crate::cel::evaluate(&node, d, None).into_iter().map(nested));
            } else {
                errs.extend(schema_errs);
            }
        };
        if inside_meta {
            let object = surrounding_object(d, steps);
            let meta_err = crate::objectmeta::coerce("", &object, resource, true)
                .map(|e| e.to_string())
                .or_else(|| {
                    let v = crate::objectmeta::validate("", &object, resource, true);
                    (!v.is_empty()).then(|| aggregate(&v))
                });
            match meta_err {
                Some(m) => errs.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    at.clone(),
                    Some(d.clone()),
                    format!("must result in valid metadata: {m}"),
                )),
                None => schema_and_rules(errs),
            }
        } else {
            let mut unknown = Vec::new();
            crate::mutate::unknown_fields(&node, d, embedded, "", &mut unknown);
            if !unknown.is_empty() {
                errs.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    at.clone(),
                    Some(d.clone()),
                    "must not have unknown fields",
                ));
            }
            if let Some(e) = crate::objectmeta::coerce(&at, d, s, embedded) {
                errs.push(e);
            } else {
                let v = crate::objectmeta::validate(&at, d, s, embedded);
                if v.is_empty() {
                    schema_and_rules(errs);
                } else {
                    errs.extend(v);
                }
            }
        }
    }
    // additionalProperties is not followed: defaults are forbidden there.
    if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        steps.push(Step::Index);
        defaults_at(
            items,
            &child(path, "items"),
            resource,
            steps,
            inside_meta,
            false,
            errs,
        );
        steps.pop();
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let meta = inside_meta
                || (embedded && matches!(k.as_str(), "metadata" | "apiVersion" | "kind"));
            steps.push(Step::Child(k.clone()));
            defaults_at(
                v,
                &format!("{}[{k}]", child(path, "properties")),
                resource,
                steps,
                meta,
                false,
                errs,
            );
            steps.pop();
        }
    }
    if embedded {
        *steps = outer_steps;
    }
}

/// `SurroundingObjectFunc`: the default placed where it lands in its resource, which gets
/// `apiVersion: validation/v1` and `kind: Validation` unless it sets them.
fn surrounding_object(d: &Value, steps: &[Step]) -> Value {
    let mut v = d.clone();
    for step in steps.iter().rev() {
        v = match step {
            Step::Child(k) => json!({ k.clone(): v }),
            Step::Index => Value::Array(vec![v]),
        };
    }
    if let Some(obj) = v.as_object_mut() {
        obj.entry("kind").or_insert_with(|| json!("Validation"));
        obj.entry("apiVersion")
            .or_insert_with(|| json!("validation/v1"));
    }
    v
}

/// `ErrorList.ToAggregate()` text (apimachinery `aggregate.Error`): each message once, in
/// brackets when there are several.
fn aggregate(errs: &[FieldError]) -> String {
    let mut texts: Vec<String> = Vec::new();
    for text in errs.iter().map(FieldError::to_string) {
        if !texts.contains(&text) {
            texts.push(text);
        }
    }
    match texts.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// `getCostErrorMessage`.
pub(crate) fn cost_error_message(name: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let f = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{name} exceeds budget by factor of {f} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

/// A node's place in the schema, for `ValidateStructural`'s levels.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

fn type_of(s: &Value) -> &str {
    s.get("type").and_then(Value::as_str).unwrap_or("")
}

fn flag(s: &Value, k: &str) -> bool {
    s.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// `ValidateStructural`: the invariants a structural schema keeps, sorted by message as the
/// server sorts them.
fn structural_errors(schema: &Value, root: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    invariants(schema, Level::Root, root, &mut errs);
    errs.sort_by(|a, b| a.message.cmp(&b.message));
    errs
}

fn child(path: &str, c: &str) -> String {
    if path.is_empty() {
        c.to_string()
    } else {
        format!("{path}.{c}")
    }
}

fn invariants(s: &Value, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    let ty = type_of(s);
    let items = s.get("items").filter(|i| i.is_object());
    if ty == "array" && items.is_none() {
        errs.push(FieldError::new(
            FieldErrorKind::Required,
            child(path, "items"),
            None,
            "must be specified",
        ));
    }
    if let Some(i) = items {
        invariants(i, Level::Item, &child(path, "items"), errs);
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            invariants(
                v,
                Level::Field,
                &format!("{}[{k}]", child(path, "properties")),
                errs,
            );
        }
    }
    if let Some(ap) = s.get("additionalProperties").filter(|a| !a.is_null()) {
        if lvl == Level::Root {
            errs.push(FieldError::new(
                FieldErrorKind::Forbidden,
                child(path, "additionalProperties"),
                None,
                "must not be used at the root",
            ));
        }
        if ap.is_object() {
            invariants(ap, Level::Field, &child(path, "additionalProperties"), errs);
        }
    }
    let int_or_string = flag(s, "x-kubernetes-int-or-string");
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    let embedded = flag(s, "x-kubernetes-embedded-resource");
    if int_or_string && preserve {
        errs.push(FieldError::new(
            FieldErrorKind::Invalid,
            child(path, "x-kubernetes-preserve-unknown-fields"),
            Some(Value::Bool(true)),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        errs.push(FieldError::new(
            FieldErrorKind::Invalid,
            child(path, "x-kubernetes-embedded-resource"),
            Some(Value::Bool(true)),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    value_validation(s, path, errs);
    let check_metadata = lvl == Level::Root || embedded;
    if embedded && ty != "object" {
        if ty.is_empty() {
            errs.push(FieldError::new(
                FieldErrorKind::Required,
                child(path, "type"),
                None,
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            errs.push(FieldError::new(
                FieldErrorKind::Invalid,
                child(path, "type"),
                Some(Value::String(ty.into())),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if ty.is_empty() && !int_or_string && !preserve {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::new(
            FieldErrorKind::Required,
            child(path, "type"),
            None,
            detail,
        ));
    }
    if embedded && s.get("additionalProperties").is_some_and(|a| !a.is_null()) {
        errs.push(FieldError::new(
            FieldErrorKind::Forbidden,
            child(path, "additionalProperties"),
            None,
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        errs.push(FieldError::new(
            FieldErrorKind::Invalid,
            child(path, "type"),
            Some(Value::String(ty.into())),
            "must be object at the root",
        ));
    }
    let props = s.get("properties").and_then(Value::as_object);
    for meta_field in ["kind", "apiVersion"] {
        if check_metadata && let Some(p) = props.and_then(|p| p.get(meta_field)) {
            let t = type_of(p);
            if t != "string" {
                errs.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    format!("{}[{meta_field}].type", child(path, "properties")),
                    Some(Value::String(t.into())),
                    "must be string",
                ));
            }
        }
    }
    if let Some(meta) = props.and_then(|p| p.get("metadata")) {
        let mpath = format!("{}[metadata]", child(path, "properties"));
        if check_metadata && type_of(meta) != "object" {
            errs.push(FieldError::new(
                FieldErrorKind::Invalid,
                child(&mpath, "type"),
                Some(Value::String(type_of(meta).into())),
                "must be object",
            ));
        }
        if lvl == Level::Root && !metadata_only_names(meta) {
            errs.push(FieldError::new(
                FieldErrorKind::Forbidden,
                mpath,
                None,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    if embedded && !preserve && props.is_none_or(|p| p.is_empty()) {
        errs.push(FieldError::new(
            FieldErrorKind::Required,
            child(path, "properties"),
            None,
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// Root `metadata` may only restrict `name` and `generateName` (its `type` and `default` are
/// checked elsewhere); anything else, a `description` included, is refused as by
/// `validateStructuralMetadataInvariants`.
fn metadata_only_names(meta: &Value) -> bool {
    let Some(obj) = meta.as_object() else {
        return false;
    };
    for (k, v) in obj {
        match k.as_str() {
            "type" | "default" => {}
            "properties" => {
                let Some(p) = v.as_object() else {
                    return false;
                };
                let names = p.keys().all(|k| k == "name" || k == "generateName");
                if !names || p.is_empty() {
                    return false;
                }
            }
            _ if v.is_null() => {}
            _ => return false,
        }
    }
    true
}

/// `validateValueValidation`: `allOf`, `anyOf`, `oneOf` and `not` may only hold value
/// validations, never the structural parts.
fn value_validation(s: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let forbidden = [
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        (
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        ),
        (
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ),
        (
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ),
        (
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        ),
        ("x-kubernetes-validations", "must be empty to be structural"),
    ];
    let check = |branch: &Value, bpath: String, errs: &mut Vec<FieldError>| {
        let Some(obj) = branch.as_object() else {
            return;
        };
        for (k, detail) in forbidden {
            let set = match obj.get(k) {
                None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                Some(Value::String(s)) => !s.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                Some(_) => true,
            };
            if set {
                errs.push(FieldError::new(
                    FieldErrorKind::Forbidden,
                    child(&bpath, k),
                    None,
                    detail,
                ));
            }
        }
    };
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(list) = s.get(k).and_then(Value::as_array) {
            // The int-or-string anyOf pattern is allowed.
            if k == "anyOf" && is_int_or_string_any_of(list) {
                continue;
            }
            for (i, b) in list.iter().enumerate() {
                check(b, format!("{}[{i}]", child(path, k)), errs);
            }
        }
    }
    if let Some(n) = s.get("not") {
        check(n, child(path, "not"), errs);
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str)
        && let Err(e) = regex::Regex::new(p)
    {
        errs.push(FieldError::new(
            FieldErrorKind::Invalid,
            child(path, "pattern"),
            Some(Value::String(p.into())),
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
}

fn is_int_or_string_any_of(list: &[Value]) -> bool {
    list.len() == 2 && list[0] == json!({"type": "integer"}) && list[1] == json!({"type": "string"})
}

/// The CEL context of a schema node (`CELSchemaContext`).
#[derive(Clone)]
struct Ctx {
    /// Whether this node or an ancestor has rules (type information is only built there).
    in_scope: bool,
    /// The node's declaration: `Ok(None)` outside the scope of any rule.
    info: Result<Option<Arc<Decl>>, String>,
    max_cardinality: Option<u64>,
}

fn has_rules(s: &Value) -> bool {
    s.get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty())
}

const CONVERT_ERROR: &str = "unable to convert structural schema to CEL declarations";

impl Ctx {
    fn root(schema: &Value) -> Ctx {
        let in_scope = has_rules(schema);
        let info = if in_scope {
            check::types::schema_decl(schema, true)
                .map(Some)
                .ok_or_else(|| CONVERT_ERROR.to_string())
        } else {
            Ok(None)
        };
        Ctx {
            in_scope,
            info,
            max_cardinality: Some(1),
        }
    }

    /// `childContext` with the accessor's view of the parent's declaration.
    fn child(
        &self,
        parent_schema: &Value,
        child_schema: &Value,
        access: impl FnOnce(&Arc<Decl>) -> Option<Arc<Decl>>,
    ) -> Ctx {
        let in_scope = self.in_scope || has_rules(child_schema);
        let info = if !in_scope {
            Ok(None)
        } else {
            match &self.info {
                Err(e) if self.in_scope => Err(e.clone()),
                Ok(Some(parent)) if self.in_scope => match access(parent) {
                    Some(d) => Ok(Some(d)),
                    None => convert(child_schema),
                },
                _ => convert(child_schema),
            }
        };
        let max_cardinality = self
            .max_cardinality
            .and_then(|c| max_elements(parent_schema).map(|m| c.saturating_mul(m)));
        Ctx {
            in_scope,
            info,
            max_cardinality,
        }
    }
}

fn convert(s: &Value) -> Result<Option<Arc<Decl>>, String> {
    check::types::schema_decl(s, flag(s, "x-kubernetes-embedded-resource"))
        .map(Some)
        .ok_or_else(|| CONVERT_ERROR.to_string())
}

/// `extractMaxElements`: how many values of a child one value of `s` holds.
fn max_elements(s: &Value) -> Option<u64> {
    let bound = |k: &str| {
        s.get(k)
            .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
            .map(|v| v.max(0) as u64)
    };
    match type_of(s) {
        "object" if s.get("additionalProperties").is_some_and(|a| !a.is_null()) => {
            bound("maxProperties")
        }
        "array" => bound("maxItems"),
        _ => Some(1),
    }
}

/// The specStandardValidator state that flows down the schema.
#[derive(Clone, Default)]
struct Ssv {
    /// The list or map below which `oldSelf` cannot be correlated.
    forbid_old_self: Option<String>,
    inside_resource_meta: bool,
    /// Why `default` is not allowed here (`in top-level metadata`).
    forbidden_defaults: Option<String>,
}

struct Walker {
    reports: Vec<RuleReport>,
    total: u64,
    most_expensive: Vec<(String, u64)>,
    suppress_per_expression_cost: bool,
    require_valid_type: bool,
    compile_despite_schema_errors: bool,
}

/// Go's `%#v` of an `apiextensions.ValidationRule`.
fn rule_go_syntax(r: &Value) -> String {
    let s = |k: &str| gofmt::quote(r.get(k).and_then(Value::as_str).unwrap_or(""));
    let reason = if r.get("reason").is_some_and(|v| !v.is_null()) {
        "(*apiextensions.FieldValueErrorReason)(0xc000000000)"
    } else {
        "(*apiextensions.FieldValueErrorReason)(nil)"
    };
    let optional = if r.get("optionalOldSelf").is_some_and(|v| !v.is_null()) {
        "(*bool)(0xc000000000)"
    } else {
        "(*bool)(nil)"
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{optional}}}",
        s("rule"),
        s("message"),
        s("messageExpression"),
        s("fieldPath"),
    )
}

impl Walker {
    fn new(suppress: bool) -> Walker {
        Walker {
            reports: Vec::new(),
            total: 0,
            most_expensive: Vec::new(),
            suppress_per_expression_cost: suppress,
            require_valid_type: true,
            compile_despite_schema_errors: false,
        }
    }

    fn observe(&mut self, path: String, cost: u64) {
        self.total = self.total.saturating_add(cost);
        if cost < STATIC_ESTIMATED_CRD_COST_LIMIT / 100 {
            return;
        }
        self.most_expensive.push((path, cost));
        self.most_expensive.sort_by_key(|e| std::cmp::Reverse(e.1));
        self.most_expensive.truncate(4);
    }

    /// `ValidateCustomResourceDefinitionOpenAPISchema`: (schema errors, CEL errors).
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        s: &Value,
        fld: &str,
        schema_path: &str,
        is_root: bool,
        ctx: Option<Ctx>,
        ssv: &Ssv,
    ) -> (Vec<FieldError>, Vec<FieldError>) {
        let mut schema_errs = Vec::new();
        let mut cel_errs = Vec::new();
        if !s.is_object() {
            return (schema_errs, cel_errs);
        }
        let ty = type_of(s);
        // specStandardValidatorV3.validate
        if self.require_valid_type && !ty.is_empty() && !OPENAPI_V3_TYPES.contains(&ty) {
            schema_errs.push(FieldError::new(
                FieldErrorKind::NotSupported,
                child(fld, "type"),
                Some(Value::String(ty.into())),
                format!(
                    "supported values: {}",
                    OPENAPI_V3_TYPES
                        .iter()
                        .map(|t| gofmt::quote(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        for (k, detail) in [
            ("id", "id is not supported"),
            ("additionalItems", "additionalItems is not supported"),
            ("patternProperties", "patternProperties is not supported"),
            ("definitions", "definitions is not supported"),
            ("dependencies", "dependencies is not supported"),
            ("$ref", "$ref is not supported"),
        ] {
            // As Go decodes them: `id` is a string (set when not empty), `patternProperties`
            // and `definitions` maps (set when not empty), `additionalItems`, `dependencies`
            // and `$ref` pointers or a map (set when present at all, even `{}` or `""`).
            let set = match (k, s.get(k)) {
                (_, None | Some(Value::Null)) => false,
                ("id", Some(Value::String(v))) => !v.is_empty(),
                ("patternProperties" | "definitions", Some(Value::Object(o))) => !o.is_empty(),
                _ => true,
            };
            if set {
                schema_errs.push(FieldError::new(
                    FieldErrorKind::Forbidden,
                    child(fld, k),
                    None,
                    detail,
                ));
            }
        }
        if ty == "null" {
            schema_errs.push(FieldError::new(
                FieldErrorKind::Forbidden,
                child(fld, "type"),
                None,
                "type cannot be set to null, use nullable as an alternative",
            ));
        }
        if s.get("items").is_some_and(Value::is_array) {
            schema_errs.push(FieldError::new(
                FieldErrorKind::Forbidden,
                child(fld, "items"),
                None,
                "items must be a schema object and not an array",
            ));
        }
        if let Some(reason) = &ssv.forbidden_defaults
            && s.get("default").is_some_and(|d| !d.is_null())
        {
            schema_errs.push(FieldError::new(
                FieldErrorKind::Forbidden,
                child(fld, "default"),
                None,
                format!("must not be set {reason}"),
            ));
        }
        if ssv.inside_resource_meta && flag(s, "x-kubernetes-embedded-resource") {
            schema_errs.push(FieldError::new(
                FieldErrorKind::Forbidden,
                child(fld, "x-kubernetes-embedded-resource"),
                None,
                "must not be used inside of resource meta",
            ));
        }
        if flag(s, "uniqueItems") {
            schema_errs.push(FieldError::new(
                FieldErrorKind::Forbidden,
                child(fld, "uniqueItems"),
                None,
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            ));
        }
        let props = s
            .get("properties")
            .and_then(Value::as_object)
            .filter(|p| !p.is_empty());
        if let Some(ap) = s.get("additionalProperties").filter(|a| !a.is_null()) {
            if props.is_some() && *ap != Value::Bool(true) {
                schema_errs.push(FieldError::new(
                    FieldErrorKind::Forbidden,
                    child(fld, "additionalProperties"),
                    None,
                    "additionalProperties and properties are mutual exclusive",
                ));
            }
            if ap.is_object() {
                let mut sub = ssv.clone();
                if ssv.inside_resource_meta {
                    sub.forbidden_defaults =
                        Some("inside additionalProperties applying to object metadata".into());
                }
                let c = ctx.as_ref().map(|c| {
                    c.child(s, ap, |d| match &d.kind {
                        DeclKind::Map(e) => Some(e.clone()),
                        _ => None,
                    })
                });
                let (a, b) = self.walk(
                    ap,
                    &child(fld, "additionalProperties"),
                    &child(schema_path, "additionalProperties"),
                    false,
                    c,
                    &sub,
                );
                schema_errs.extend(a);
                cel_errs.extend(b);
            }
        }
        if let Some(props) = props {
            let map_type = s.get("x-kubernetes-map-type").and_then(Value::as_str);
            for (name, prop) in props {
                let mut sub = ssv.clone();
                // `MapIsCorrelatable`: granular (the default) and atomic maps correlate; a map
                // type the server does not know is assumed not to.
                if !matches!(map_type, None | Some("granular" | "atomic")) {
                    sub.forbid_old_self = Some(fld.to_string());
                }
                if (is_root || flag(s, "x-kubernetes-embedded-resource"))
                    && matches!(name.as_str(), "metadata" | "kind" | "apiVersion")
                {
                    sub.inside_resource_meta = true;
                    if is_root {
                        sub.forbidden_defaults = Some(format!("in top-level {name}"));
                    }
                }
                let c = ctx.as_ref().map(|c| {
                    c.child(s, prop, |d| match &d.kind {
                        DeclKind::Object(fields) => {
                            crate::cel::escape(name).and_then(|n| fields.get(&n).cloned())
                        }
                        _ => None,
                    })
                });
                let key = format!("properties[{name}]");
                let (a, b) = self.walk(
                    prop,
                    &child(fld, &key),
                    &child(schema_path, &key),
                    false,
                    c,
                    &sub,
                );
                schema_errs.extend(a);
                cel_errs.extend(b);
            }
        }
        for k in ["allOf", "oneOf", "anyOf"] {
            if let Some(list) = s.get(k).and_then(Value::as_array) {
                for (i, b) in list.iter().enumerate() {
                    let p = format!("{}[{i}]", child(fld, k));
                    let (a, _) = self.walk(b, &p, &p, false, None, ssv);
                    schema_errs.extend(a);
                }
            }
        }
        if let Some(n) = s.get("not").filter(|n| n.is_object()) {
            let (a, _) = self.walk(n, &child(fld, "not"), &child(fld, "not"), false, None, ssv);
            schema_errs.extend(a);
        }
        if let Some(items) = s.get("items").filter(|i| i.is_object()) {
            let mut sub = ssv.clone();
            if s.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
                sub.forbid_old_self = Some(fld.to_string());
            }
            let c = ctx.as_ref().map(|c| {
                c.child(s, items, |d| match &d.kind {
                    DeclKind::List(e) => Some(e.clone()),
                    _ => None,
                })
            });
            let (a, b) = self.walk(
                items,
                &child(fld, "items"),
                &child(schema_path, "items"),
                false,
                c,
                &sub,
            );
            schema_errs.extend(a);
            cel_errs.extend(b);
        }
        if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
            schema_errs.push(FieldError::new(
                FieldErrorKind::Invalid,
                child(fld, "x-kubernetes-preserve-unknown-fields"),
                Some(Value::Bool(false)),
                "must be true or undefined",
            ));
        }
        self.list_checks(s, fld, &mut schema_errs);
        self.map_list_keys(s, fld, &mut schema_errs);
        self.rules(
            s,
            fld,
            schema_path,
            ctx.as_ref(),
            ssv,
            &mut schema_errs,
            &mut cel_errs,
        );
        (schema_errs, cel_errs)
    }

    fn list_checks(&self, s: &Value, fld: &str, errs: &mut Vec<FieldError>) {
        let ty = type_of(s);
        let map_type = s.get("x-kubernetes-map-type").and_then(Value::as_str);
        if map_type.is_some() && ty != "object" {
            errs.push(type_requirement(
                fld,
                ty,
                "must be object if x-kubernetes-map-type is specified",
            ));
        }
        if let Some(m) = map_type
            && m != "atomic"
            && m != "granular"
        {
            errs.push(FieldError::new(
                FieldErrorKind::NotSupported,
                child(fld, "x-kubernetes-map-type"),
                Some(Value::String(m.into())),
                "supported values: \"atomic\", \"granular\"",
            ));
        }
        let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
        let items = s.get("items").filter(|i| i.is_object());
        if list_type.is_some() && ty != "array" {
            errs.push(type_requirement(
                fld,
                ty,
                "must be array if x-kubernetes-list-type is specified",
            ));
        } else if list_type == Some("set")
            && let Some(is) = items
        {
            match type_of(is) {
                "array" => {
                    if let Some(t) = is.get("x-kubernetes-list-type").and_then(Value::as_str)
                        && t != "atomic"
                    {
                        errs.push(FieldError::new(
                            FieldErrorKind::Invalid,
                            child(fld, "items.x-kubernetes-list-type"),
                            Some(Value::String(t.into())),
                            "must be atomic as item of a list with x-kubernetes-list-type=set",
                        ));
                    }
                }
                "object"
                    if is.get("x-kubernetes-map-type").and_then(Value::as_str)
                        != Some("atomic") =>
                {
                    errs.push(FieldError::new(
                        FieldErrorKind::Invalid,
                        child(fld, "items.x-kubernetes-map-type"),
                        Some(Value::Null),
                        "must be atomic as item of a list with x-kubernetes-list-type=set",
                    ));
                }
                _ => {}
            }
        }
        if let Some(l) = list_type
            && !matches!(l, "atomic" | "set" | "map")
        {
            errs.push(FieldError::new(
                FieldErrorKind::NotSupported,
                child(fld, "x-kubernetes-list-type"),
                Some(Value::String(l.into())),
                "supported values: \"atomic\", \"set\", \"map\"",
            ));
        }
        let keys: Vec<&str> = s
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !keys.is_empty() {
            match list_type {
                None => errs.push(FieldError::new(
                    FieldErrorKind::Required,
                    child(fld, "x-kubernetes-list-type"),
                    None,
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )),
                Some(l) if l != "map" => errs.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    child(fld, "x-kubernetes-list-type"),
                    Some(Value::String(l.into())),
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )),
                _ => {}
            }
        }
        if list_type == Some("map") {
            if keys.is_empty() {
                errs.push(FieldError::new(
                    FieldErrorKind::Required,
                    child(fld, "x-kubernetes-list-map-keys"),
                    None,
                    "must not be empty if x-kubernetes-list-type is map",
                ));
            }
            match items {
                // `items` given as an array of schemas (JSONSchemaPropsOrArray without Schema).
                None if s.get("items").is_some_and(Value::is_array) => errs.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    child(fld, "items"),
                    s.get("items").cloned(),
                    "must only have a single schema if x-kubernetes-list-type is map",
                )),
                None => errs.push(FieldError::new(
                    FieldErrorKind::Required,
                    child(fld, "items"),
                    None,
                    "must have a schema if x-kubernetes-list-type is map",
                )),
                Some(is) if type_of(is) != "object" => errs.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    child(fld, "items.type"),
                    Some(Value::String(type_of(is).into())),
                    "must be object if parent array's x-kubernetes-list-type is map",
                )),
                Some(is) => {
                    let key_list =
                        Value::Array(keys.iter().map(|k| Value::String(k.to_string())).collect());
                    let mut seen: Vec<&str> = Vec::new();
                    let iprops = is.get("properties").and_then(Value::as_object);
                    for k in &keys {
                        match iprops.and_then(|p| p.get(*k)) {
                            Some(ks) => {
                                if matches!(type_of(ks), "array" | "object") {
                                    errs.push(FieldError::new(
                                        FieldErrorKind::Invalid,
                                        format!("{}.items.properties[{k}].type", fld),
                                        Some(Value::String("object".into())),
                                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                                    ));
                                }
                            }
                            None => errs.push(FieldError::new(
                                FieldErrorKind::Invalid,
                                child(fld, "x-kubernetes-list-map-keys"),
                                Some(key_list.clone()),
                                "entries must all be names of item properties",
                            )),
                        }
                        if seen.contains(k) {
                            errs.push(FieldError::new(
                                FieldErrorKind::Invalid,
                                child(fld, "x-kubernetes-list-map-keys"),
                                Some(key_list.clone()),
                                "must not contain duplicate entries",
                            ));
                        }
                        seen.push(k);
                    }
                }
            }
        }
    }

    /// `validateMapListKeysMapSet`.
    fn map_list_keys(&self, s: &Value, fld: &str, errs: &mut Vec<FieldError>) {
        let Some(is) = s.get("items").filter(|i| i.is_object()) else {
            return;
        };
        let Some(lt) = s.get("x-kubernetes-list-type").and_then(Value::as_str) else {
            return;
        };
        if lt != "set" && lt != "map" {
            return;
        }
        if flag(is, "nullable") {
            errs.push(FieldError::new(
                FieldErrorKind::Forbidden,
                format!("{fld}.items.nullable"),
                None,
                format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
            ));
        }
        if lt != "map" {
            return;
        }
        let required: Vec<&str> = is
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let keys = s
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|k| k.iter().filter_map(Value::as_str).collect::<Vec<_>>())
            .unwrap_or_default();
        for k in keys {
            let Some(ks) = is.get("properties").and_then(|p| p.get(k)) else {
                continue;
            };
            let kpath = format!("{fld}.items.properties[{k}]");
            if !required.contains(&k) && ks.get("default").is_none_or(Value::is_null) {
                errs.push(FieldError::new(
                    FieldErrorKind::Required,
                    format!("{kpath}.default"),
                    None,
                    "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                ));
            }
            if flag(ks, "nullable") {
                errs.push(FieldError::new(
                    FieldErrorKind::Forbidden,
                    format!("{kpath}.nullable"),
                    None,
                    "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                ));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rules(
        &mut self,
        s: &Value,
        fld: &str,
        schema_path: &str,
        ctx: Option<&Ctx>,
        ssv: &Ssv,
        schema_errs: &mut Vec<FieldError>,
        cel_errs: &mut Vec<FieldError>,
    ) {
        let Some(rules) = s.get("x-kubernetes-validations").and_then(Value::as_array) else {
            return;
        };
        if rules.is_empty() {
            return;
        }
        let vpath = child(fld, "x-kubernetes-validations");
        let text = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        for (i, r) in rules.iter().enumerate() {
            let at = |c: &str| format!("{vpath}[{i}].{c}");
            let rule = text(r, "rule");
            let message = text(r, "message");
            let message_expression = text(r, "messageExpression");
            let field_path = text(r, "fieldPath");
            let trimmed_msg = message.trim();
            if rule.trim().is_empty() {
                schema_errs.push(FieldError::new(
                    FieldErrorKind::Required,
                    at("rule"),
                    None,
                    "rule is not specified",
                ));
            } else if !message.is_empty() && trimmed_msg.is_empty() {
                schema_errs.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    at("message"),
                    Some(Value::String(message.clone())),
                    "must be non-empty if specified",
                ));
            } else if trimmed_msg.contains(['\n', '\r']) {
                schema_errs.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    at("message"),
                    Some(Value::String(message.clone())),
                    "must not contain line breaks",
                ));
            } else if rule.trim().contains(['\n', '\r']) && trimmed_msg.is_empty() {
                schema_errs.push(FieldError::new(
                    FieldErrorKind::Required,
                    at("message"),
                    None,
                    "message must be specified if rule contains line breaks",
                ));
            }
            if !message_expression.is_empty() && message_expression.trim().is_empty() {
                schema_errs.push(FieldError::new(
                    FieldErrorKind::Required,
                    at("messageExpression"),
                    None,
                    "messageExpression must be non-empty if specified",
                ));
            }
            if let Some(reason) = r.get("reason").and_then(Value::as_str)
                && !VALIDATION_REASONS.contains(&reason)
            {
                schema_errs.push(FieldError::new(
                    FieldErrorKind::NotSupported,
                    at("reason"),
                    Some(Value::String(reason.into())),
                    format!(
                        "supported values: {}",
                        VALIDATION_REASONS
                            .iter()
                            .map(|r| gofmt::quote(r))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if !field_path.is_empty() && field_path.trim().is_empty() {
                schema_errs.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    at("fieldPath"),
                    Some(Value::String(field_path.clone())),
                    "must be non-empty if specified",
                ));
            }
            if field_path.contains(['\n', '\r']) {
                schema_errs.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    at("fieldPath"),
                    Some(Value::String(field_path.clone())),
                    "must not contain line breaks",
                ));
            }
            // `pathValid`: only a schema the structural conversion accepts is walked.
            if !field_path.is_empty()
                && structural_init_error(s).is_none()
                && !valid_field_path(&field_path, s)
            {
                schema_errs.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    at("fieldPath"),
                    Some(Value::String(field_path.clone())),
                    "must be a valid path",
                ));
            }
        }
        if !schema_errs.is_empty() && !self.compile_despite_schema_errors {
            return;
        }
        let Some(ctx) = ctx else {
            return;
        };
        if !ctx.in_scope {
            return;
        }
        let decl = match &ctx.info {
            Ok(Some(d)) => d.clone(),
            Ok(None) | Err(_) => {
                let detail = match &ctx.info {
                    Err(e) => format!(
                        "internal error: failed to construct type information for x-kubernetes-validations rules: {e}"
                    ),
                    _ => "internal error: failed to retrieve type information for x-kubernetes-validations".into(),
                };
                cel_errs.push(FieldError::new(
                    FieldErrorKind::Internal,
                    vpath.clone(),
                    None,
                    detail.clone(),
                ));
                for (i, r) in rules.iter().enumerate() {
                    self.reports.push(RuleReport {
                        schema_path: schema_path.to_string(),
                        index: i,
                        rule: text(r, "rule"),
                        max_cost: None,
                        max_cardinality: ctx.max_cardinality,
                        error: Some(detail.clone()),
                    });
                }
                return;
            }
        };
        let unbounded_cardinality = (MAX_REQUEST_SIZE_BYTES / (decl.min_size + 1)) as u64;
        for (i, r) in rules.iter().enumerate() {
            let at = |c: &str| format!("{vpath}[{i}].{c}");
            let rule = text(r, "rule");
            let message_expression = text(r, "messageExpression");
            let optional_old_self = r.get("optionalOldSelf").and_then(Value::as_bool) == Some(true);
            let result = if rule.trim().is_empty() {
                None
            } else {
                Some(check::compile_rule(
                    &rule,
                    Some(&message_expression),
                    &decl,
                    optional_old_self,
                ))
            };
            let max_cost = match &result {
                Some(Ok(c)) => c.max_cost,
                _ => 0,
            };
            let cardinality = ctx.max_cardinality.unwrap_or(unbounded_cardinality);
            let expression_cost = if max_cost == 0 {
                0
            } else {
                max_cost.saturating_mul(cardinality)
            };
            if !self.suppress_per_expression_cost && expression_cost > STATIC_ESTIMATED_COST_LIMIT {
                cel_errs.push(FieldError::new(
                    FieldErrorKind::Forbidden,
                    at("rule"),
                    None,
                    cost_error_message(
                        "estimated rule cost",
                        expression_cost,
                        STATIC_ESTIMATED_COST_LIMIT,
                    ),
                ));
            }
            self.observe(at("rule"), expression_cost);
            self.reports.push(RuleReport {
                schema_path: schema_path.to_string(),
                index: i,
                rule: rule.clone(),
                max_cost: match &result {
                    Some(Ok(c)) => Some(c.max_cost),
                    _ => None,
                },
                max_cardinality: ctx.max_cardinality,
                error: match &result {
                    Some(Err(e)) => Some(e.clone()),
                    _ => None,
                },
            });
            let Some(result) = result else {
                continue;
            };
            match result {
                Err(detail) => cel_errs.push(FieldError::with_printed_value(
                    FieldErrorKind::Invalid,
                    at("rule"),
                    r.clone(),
                    &rule_go_syntax(r),
                    detail,
                )),
                Ok(compiled) => {
                    if let Some(me) = &compiled.message_error {
                        cel_errs.push(FieldError::with_printed_value(
                            FieldErrorKind::Invalid,
                            at("messageExpression"),
                            r.clone(),
                            &rule_go_syntax(r),
                            me.clone(),
                        ));
                    } else if let Some(mc) = compiled.message_max_cost {
                        if !self.suppress_per_expression_cost && mc > STATIC_ESTIMATED_COST_LIMIT {
                            cel_errs.push(FieldError::new(
                                FieldErrorKind::Forbidden,
                                at("messageExpression"),
                                None,
                                cost_error_message(
                                    "estimated messageExpression cost",
                                    mc,
                                    STATIC_ESTIMATED_COST_LIMIT,
                                ),
                            ));
                        }
                        self.observe(at("messageExpression"), mc);
                    }
                    if compiled.uses_old_self {
                        if let Some(p) = &ssv.forbid_old_self {
                            cel_errs.push(FieldError::new(
                                FieldErrorKind::Invalid,
                                at("rule"),
                                Some(Value::String(rule.clone())),
                                format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {p}"),
                            ));
                        }
                    } else if let Some(o) = r.get("optionalOldSelf").filter(|v| !v.is_null()) {
                        cel_errs.push(FieldError::new(
                            FieldErrorKind::Invalid,
                            at("optionalOldSelf"),
                            Some(o.clone()),
                            "may not be set if oldSelf is not used in rule",
                        ));
                    }
                }
            }
        }
    }
}

fn type_requirement(fld: &str, ty: &str, detail: &str) -> FieldError {
    if ty.is_empty() {
        FieldError::new(FieldErrorKind::Required, child(fld, "type"), None, detail)
    } else {
        FieldError::new(
            FieldErrorKind::Invalid,
            child(fld, "type"),
            Some(Value::String(ty.into())),
            detail,
        )
    }
}

/// `ValidFieldPath`: `.a.b`, `['a.b']`, `.list[0]`-free paths to declared fields of `s`.
/// apiextensions-apiserver `pkg/apiserver/schema/cel/validation.go` `ValidFieldPath` (with array
/// notation allowed): field and map accessors (`.name`, `['quoted']`) valid for the schema.
fn valid_field_path(path: &str, s: &Value) -> bool {
    let tokens = field_path_tokens(path);
    let mut cur = Some(s);
    let mut i = 0;
    // `appendToPath`: a named field, or a key of additionalProperties.
    fn step<'a>(cur: Option<&'a Value>, name: &str) -> Result<Option<&'a Value>, ()> {
        let schema = cur.ok_or(())?;
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            props.get(name).map(Some).ok_or(())
        } else if let Some(ap) = schema.get("additionalProperties").filter(|a| !a.is_null()) {
            Ok(Some(ap).filter(|a| a.is_object()))
        } else {
            Err(())
        }
    }
    while i < tokens.len() {
        match tokens[i] {
            "[" => {
                let Some(tok) = tokens.get(i + 1) else {
                    return false;
                };
                let quoted = tok.len() >= 2 && tok.starts_with('\'') && tok.ends_with('\'');
                let Some(name) = quoted
                    .then(|| unescape_single_quote(&tok[1..tok.len() - 1]))
                    .flatten()
                else {
                    return false;
                };
                match step(cur, &name) {
                    Ok(next) => cur = next,
                    Err(()) => return false,
                }
                if tokens.get(i + 2) != Some(&"]") {
                    return false;
                }
                i += 3;
            }
            "." => {
                let Some(tok) = tokens.get(i + 1) else {
                    return false;
                };
                match step(cur, tok) {
                    Ok(next) => cur = next,
                    Err(()) => return false,
                }
                i += 2;
            }
            _ => return false,
        }
    }
    true
}

/// The tokens of `ValidFieldPath`'s scanner: the delimiters `.`, `[`, `]` alone, single-quoted
/// strings whole (delimiters inside ignored, `\'` not closing), other text between delimiters.
fn field_path_tokens(path: &str) -> Vec<&str> {
    let b = path.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while start < b.len() {
        let data = &b[start..];
        let mut len = data.len();
        if data[0] == b'\'' {
            if let Some(i) = (1..data.len()).find(|&i| data[i] == b'\'' && data[i - 1] != b'\\') {
                len = i + 1;
            }
        } else if let Some(i) = data.iter().position(|c| matches!(c, b'.' | b'[' | b']')) {
            len = if i == 0 { 1 } else { i };
        }
        // Splits fall on ASCII delimiters and quotes, so they are char boundaries.
        out.push(&path[start..start + len]);
        start += len;
    }
    out
}

/// `unescapeSingleQuote`: the escapes a quoted field path name may use.
fn unescape_single_quote(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(d) = chars.next() else {
            // A trailing backslash matches nothing in `\\.` and stays as it is.
            out.push(c);
            break;
        };
        out.push(match d {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\'' => '\'',
            '\\' => '\\',
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Wording from apiextensions-apiserver validation.go getCostErrorMessage.
    #[test]
    fn cost_messages_read_like_the_server() {
        assert_eq!(
            cost_error_message(
                "estimated rule cost",
                12_000_000,
                STATIC_ESTIMATED_COST_LIMIT
            ),
            "estimated rule cost exceeds budget by factor of 1.200000x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
        );
        assert!(
            cost_error_message(
                "estimated rule cost",
                25_000_000,
                STATIC_ESTIMATED_COST_LIMIT
            )
            .contains("factor of 2.5x")
        );
        assert!(
            cost_error_message("estimated rule cost", u64::MAX, STATIC_ESTIMATED_COST_LIMIT)
                .contains("factor of more than 100x")
        );
        // getCostErrorMessage's edges: `> 100.0` and `< 1.5`, so exactly 100 and 1.5 are
        // printed with one decimal.
        for (cost, factor) in [(1_000_000_000, "100.0x"), (15_000_000, "1.5x")] {
            let message =
                cost_error_message("estimated rule cost", cost, STATIC_ESTIMATED_COST_LIMIT);
            assert!(
                message.contains(&format!("factor of {factor} ")),
                "{message}"
            );
        }
    }
}
