//! The type meta and object meta of embedded resources in `default` values, as
//! apiextensions-apiserver `pkg/apiserver/schema/objectmeta` coerces (`coerce.go`) and
//! validates (`validation.go`) them, on raw `openAPIV3Schema` JSON.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::error::{FieldError, FieldErrorKind};

// k8s.io/apimachinery pkg/util/validation/validation.go: the formats and messages.
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";

fn anchored(fmt: &str) -> Regex {
    Regex::new(&format!("^{fmt}$")).expect("valid regex")
}

static QUALIFIED_NAME: LazyLock<Regex> = LazyLock::new(|| anchored(QUALIFIED_NAME_FMT));
static LABEL_VALUE: LazyLock<Regex> =
    LazyLock::new(|| anchored(&format!("({QUALIFIED_NAME_FMT})?")));
static DNS1123_SUBDOMAIN: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_SUBDOMAIN_FMT));
static DNS1123_LABEL: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1123_LABEL_FMT));
static DNS1035_LABEL: LazyLock<Regex> = LazyLock::new(|| anchored(DNS1035_LABEL_FMT));

/// `RegexError`: the message, examples and the format (two spaces before each "or", as the
/// Go code builds it).
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        examples.join(" or ")
    )
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// A length limit and a format, each reported on its own (`IsDNS1123Label` and its kin).
fn length_and_format(
    s: &str,
    max: usize,
    re: &Regex,
    msg: &str,
    fmt: &str,
    examples: &[&str],
) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > max {
        errs.push(max_len_error(max));
    }
    if !re.is_match(s) {
        errs.push(regex_error(msg, fmt, examples));
    }
    errs
}

fn dns1123_label(s: &str) -> Vec<String> {
    let examples = ["my-name", "123-abc"];
    length_and_format(
        s,
        63,
        &DNS1123_LABEL,
        DNS1123_LABEL_MSG,
        DNS1123_LABEL_FMT,
        &examples,
    )
}

/// `IsDNS1123Subdomain` (also `metadata.name` of a custom resource).
pub(crate) fn dns1123_subdomain(s: &str) -> Vec<String> {
    let examples = ["example.com"];
    length_and_format(
        s,
        253,
        &DNS1123_SUBDOMAIN,
        DNS1123_SUBDOMAIN_MSG,
        DNS1123_SUBDOMAIN_FMT,
        &examples,
    )
}

fn dns1035_label(s: &str) -> Vec<String> {
    let examples = ["my-name", "abc-123"];
    length_and_format(
        s,
        63,
        &DNS1035_LABEL,
        DNS1035_LABEL_MSG,
        DNS1035_LABEL_FMT,
        &examples,
    )
}

/// `IsQualifiedName`: an optional DNS-1123 subdomain prefix and `/`, then a name of at most 63
/// characters; every problem found, worded as the server words it.
fn qualified_name(s: &str) -> Vec<String> {
    let examples = ["MyName", "my.name", "123-abc"];
    let parts: Vec<&str> = s.split('/').collect();
    let mut errs = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &examples)
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !QUALIFIED_NAME.is_match(name) {
        errs.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &examples)
        ));
    }
    errs
}

/// `IsValidLabelValue`.
fn label_value(s: &str) -> Vec<String> {
    let examples = ["MyValue", "my_value", "12345"];
    let fmt = format!("({QUALIFIED_NAME_FMT})?");
    length_and_format(s, 63, &LABEL_VALUE, LABEL_VALUE_MSG, &fmt, &examples)
}

fn flag(s: &Value, k: &str) -> bool {
    s.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn child(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

/// The schema of the field `k` of an object: a property, else additionalProperties.
fn field_schema<'a>(s: &'a Value, k: &str) -> Option<(&'a Value, bool)> {
    if let Some(p) = s.get("properties").and_then(|p| p.get(k)) {
        return Some((p, true));
    }
    s.get("additionalProperties")
        .filter(|a| a.is_object())
        .map(|a| (a, false))
}

fn key_path(path: &str, k: &str, named: bool) -> String {
    if named {
        child(path, k)
    } else {
        format!("{path}[{k}]")
    }
}

/// `json.Unmarshal` of `metadata` into `metav1.ObjectMeta`: the Go error text when a known
/// field has the wrong JSON type (unknown fields are ignored, null is always fine).
fn object_meta_error(meta: &Value) -> Option<String> {
    let Some(obj) = meta.as_object() else {
        if meta.is_null() {
            return None;
        }
        return Some(format!(
            "json: cannot unmarshal {} into Go value of type v1.ObjectMeta",
            json_kind(meta)
        ));
    };
    let wrong_as = |field: &str, what: &str, go: &str| {
        Some(format!(
            "json: cannot unmarshal {what} into Go struct field ObjectMeta.{field} of type {go}"
        ))
    };
    let wrong = |field: &str, v: &Value, go: &str| wrong_as(field, json_kind(v), go);
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "name" | "generateName" | "namespace" | "selfLink" | "uid" | "resourceVersion"
            | "creationTimestamp" | "deletionTimestamp"
                if !v.is_string() =>
            {
                return wrong(k, v, "string");
            }
            "generation" | "deletionGracePeriodSeconds" => {
                if let Some(what) = not_int64(v) {
                    return wrong_as(k, &what, "int64");
                }
            }
            "labels" | "annotations" => match v.as_object() {
                None => return wrong(k, v, "map[string]string"),
                Some(m) => {
                    if let Some((_, bad)) = m.iter().find(|(_, x)| !x.is_string() && !x.is_null()) {
                        return wrong(k, bad, "string");
                    }
                }
            },
            "finalizers" => match v.as_array() {
                None => return wrong(k, v, "[]string"),
                Some(a) => {
                    if let Some(bad) = a.iter().find(|x| !x.is_string() && !x.is_null()) {
                        return wrong(k, bad, "string");
                    }
                }
            },
            "ownerReferences" | "managedFields" => {
                let element = if k == "ownerReferences" {
                    "v1.OwnerReference"
                } else {
                    "v1.ManagedFieldsEntry"
                };
                match v.as_array() {
                    None => return wrong(k, v, &format!("[]{element}")),
                    Some(a) => {
                        if let Some(bad) = a.iter().find(|x| !x.is_object() && !x.is_null()) {
                            return wrong(k, bad, element);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// What Go's decoder names a value it cannot store in an `int64` (encoding/json decode.go
/// `literalStore`): the number with its text when it has a fraction or does not fit, else its
/// JSON kind. The server re-encodes the value first (coerce.go `GetObjectMeta` marshals the
/// unstructured metadata), so `2.0` arrives as `2` and fits. `None` when it fits.
fn not_int64(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_i64() => None,
        // Decoded as a float64 (too large for int64, or with a fraction), re-encoded as Go does.
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let fits = f.fract() == 0.0
                && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f);
            (!fits).then(|| format!("number {}", go_float(f)))
        }
        other => Some(json_kind(other).to_string()),
    }
}

/// A float64 as Go's encoding/json writes it (encode.go `floatEncoder`): the shortest decimal,
/// in exponent form (`1e+21`, `1e-7`) below 1e-6 or from 1e21 on.
fn go_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let e = format!("{f:e}");
        match e.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp:0>2}"),
            _ => e,
        }
    } else {
        format!("{f}")
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `objectmeta.Coerce` (without dropping invalid fields): the first type error of an embedded
/// resource's `apiVersion`, `kind` or `metadata` in `x`. `resource_root` treats `s` as an
/// embedded resource.
pub(crate) fn coerce(path: &str, x: &Value, s: &Value, resource_root: bool) -> Option<FieldError> {
    let embedded = resource_root || flag(s, "x-kubernetes-embedded-resource");
    match x {
        Value::Object(map) => {
            for (k, v) in map {
                if embedded {
                    match k.as_str() {
                        "apiVersion" | "kind" if !v.is_string() => {
                            return Some(FieldError::new(
                                FieldErrorKind::Invalid,
                                child(path, k),
                                Some(v.clone()),
                                "must be a string",
                            ));
                        }
                        "metadata" => {
                            if let Some(e) = object_meta_error(v) {
                                return Some(FieldError::new(
                                    FieldErrorKind::Invalid,
                                    child(path, "metadata"),
                                    Some(v.clone()),
                                    e,
                                ));
                            }
                        }
                        _ => {}
                    }
                }
                if let Some((sub, named)) = field_schema(s, k)
                    && let Some(e) = coerce(&key_path(path, k, named), v, sub, false)
                {
                    return Some(e);
                }
            }
            None
        }
        Value::Array(items) => {
            let sub = s.get("items").filter(|i| i.is_object())?;
            items
                .iter()
                .enumerate()
                .find_map(|(i, v)| coerce(&format!("{path}[{i}]"), v, sub, false))
        }
        _ => None,
    }
}

/// `objectmeta.Validate`: type meta and object meta of every embedded resource in `x`.
pub(crate) fn validate(path: &str, x: &Value, s: &Value, resource_root: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let embedded = resource_root || flag(s, "x-kubernetes-embedded-resource");
    match x {
        Value::Object(map) => {
            if embedded {
                embedded_resource(path, map, &mut errs);
            }
            for (k, v) in map {
                if let Some((sub, named)) = field_schema(s, k) {
                    errs.extend(validate(&key_path(path, k, named), v, sub, false));
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = s.get("items").filter(|i| i.is_object()) {
                for (i, v) in items.iter().enumerate() {
                    errs.extend(validate(&format!("{path}[{i}]"), v, sub, false));
                }
            }
        }
        _ => {}
    }
    errs
}

fn invalid(path: String, v: &Value, detail: impl Into<String>) -> FieldError {
    FieldError::new(FieldErrorKind::Invalid, path, Some(v.clone()), detail)
}

/// `validateEmbeddedResource`.
fn embedded_resource(path: &str, x: &serde_json::Map<String, Value>, errs: &mut Vec<FieldError>) {
    for k in ["apiVersion", "kind"] {
        if !x.contains_key(k) {
            errs.push(FieldError::new(
                FieldErrorKind::Required,
                child(path, k),
                None,
                "must not be empty",
            ));
        }
    }
    for (k, v) in x {
        match k.as_str() {
            "apiVersion" => match v.as_str() {
                None => errs.push(invalid(child(path, k), v, "must be a string")),
                Some("") => errs.push(invalid(child(path, k), v, "must not be empty")),
                Some(av) if av.matches('/').count() > 1 => errs.push(invalid(
                    child(path, k),
                    v,
                    format!("unexpected GroupVersion string: {av}"),
                )),
                Some(_) => {}
            },
            "kind" => match v.as_str() {
                None => errs.push(invalid(child(path, k), v, "must be a string")),
                Some("") => errs.push(invalid(child(path, k), v, "must not be empty")),
                Some(kind) => {
                    let problems = dns1035_label(&kind.to_lowercase());
                    if !problems.is_empty() {
                        errs.push(invalid(
                            child(path, k),
                            v,
                            format!(
                                "may have mixed case, but should otherwise match: {}",
                                problems.join(",")
                            ),
                        ));
                    }
                }
            },
            "metadata" => match object_meta_error(v) {
                Some(e) => errs.push(invalid(child(path, k), v, e)),
                None => object_meta(&child(path, "metadata"), v, errs),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
fn is_qualified_name(s: &str) -> bool {
    qualified_name(s).is_empty()
}

fn object_meta(path: &str, meta: &Value, errs: &mut Vec<FieldError>) {
    let get = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or("");
    let segment = |name: &str, prefix: bool| -> Option<String> {
        if !prefix && (name == "." || name == "..") {
            return Some(format!("may not be '{name}'"));
        }
        for bad in ["/", "%"] {
            if name.contains(bad) {
                return Some(format!("may not contain '{bad}'"));
            }
        }
        None
    };
    let generate_name = get("generateName");
    if !generate_name.is_empty()
        && let Some(d) = segment(generate_name, true)
    {
        errs.push(invalid(
            child(path, "generateName"),
            &Value::String(generate_name.into()),
            d,
        ));
    }
    let name = match get("name") {
        "" => "fakename",
        n => n,
    };
    if let Some(d) = segment(name, false) {
        errs.push(invalid(child(path, "name"), &Value::String(name.into()), d));
    }
    let namespace = get("namespace");
    if !namespace.is_empty() {
        for m in dns1123_label(namespace) {
            errs.push(invalid(
                child(path, "namespace"),
                &Value::String(namespace.into()),
                m,
            ));
        }
    }
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        for (k, v) in labels {
            for m in qualified_name(k) {
                errs.push(invalid(child(path, "labels"), &Value::String(k.clone()), m));
            }
            for m in label_value(v.as_str().unwrap_or("")) {
                errs.push(invalid(child(path, "labels"), v, m));
            }
        }
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let mut total = 0usize;
        for (k, v) in annotations {
            // A qualified name in any case.
            for m in qualified_name(&k.to_lowercase()) {
                errs.push(invalid(
                    child(path, "annotations"),
                    &Value::String(k.clone()),
                    m,
                ));
            }
            total += k.len() + v.as_str().map_or(0, str::len);
        }
        if total > 256 * 1024 {
            errs.push(FieldError::new(
                FieldErrorKind::TooLong,
                child(path, "annotations"),
                None,
                "may not be more than 262144 bytes",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // apimachinery pkg/util/validation/validation_test.go TestIsQualifiedName, every case.
    #[test]
    fn qualified_names() {
        let ok = [
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "1234",
            "simple/simple",
            "now-with-dashes/simple",
            "now-with-dashes/now-with-dashes",
            "now.with.dots/simple",
            "now-with.dashes-and.dots/simple",
            "1-num.2-num/3-num",
            "1234/5678",
            "1.2.3.4/5678",
            "Uppercase_Is_OK_123",
            "example.com/Uppercase_Is_OK_123",
            "requests.storage-foo",
            "example.com/MixedCase",
        ];
        let longest = format!("{}/{}", "a".repeat(253), "b".repeat(63));
        for ok in ok.iter().copied().chain([&"a".repeat(63)[..], &longest]) {
            assert!(is_qualified_name(ok), "{ok}");
        }
        let too_long_prefix = format!("{}/abc", "a".repeat(254));
        let bad = [
            "nospecialchars%^=@",
            "cantendwithadash-",
            "-cantstartwithadash-",
            "only/one/slash",
            "Example.com/abc",
            "example_com/abc",
            "example.com/",
            "/simple",
            "",
        ];
        for bad in bad
            .iter()
            .copied()
            .chain([&"a".repeat(64)[..], &too_long_prefix])
        {
            assert!(!is_qualified_name(bad), "{bad}");
        }
    }

    /// The validation errors of `x` under an embedded-resource schema, as text.
    fn embedded_errors(x: Value) -> Vec<String> {
        let s = json!({"type": "object", "x-kubernetes-embedded-resource": true,
            "properties": {"items": {"type": "array", "items": {
                "type": "object", "x-kubernetes-embedded-resource": true}}}});
        validate("d", &x, &s, false)
            .into_iter()
            .map(|e| e.message)
            .collect()
    }

    // apiextensions-apiserver pkg/apiserver/schema/objectmeta/validation.go
    // validateEmbeddedResource: apiVersion and kind required; apiVersion a string that
    // schema.ParseGroupVersion accepts (at most one '/'); kind a DNS-1035 label in any case.
    #[test]
    fn embedded_resources_need_a_group_version_and_a_kind() {
        assert!(embedded_errors(json!({"apiVersion": "apps/v1", "kind": "Deployment"})).is_empty());
        assert!(embedded_errors(json!({"apiVersion": "v1", "kind": "ConfigMap"})).is_empty());
        assert_eq!(
            embedded_errors(json!({"kind": "ConfigMap"})),
            vec!["d.apiVersion: Required value: must not be empty"]
        );
        assert_eq!(
            embedded_errors(json!({"apiVersion": "a/b/v1", "kind": "ConfigMap"})),
            vec!["d.apiVersion: Invalid value: \"a/b/v1\": unexpected GroupVersion string: a/b/v1"]
        );
        assert_eq!(
            embedded_errors(json!({"apiVersion": 1, "kind": "ConfigMap"})),
            vec!["d.apiVersion: Invalid value: 1: must be a string"]
        );
        assert_eq!(
            embedded_errors(json!({"apiVersion": "", "kind": "ConfigMap"})),
            vec!["d.apiVersion: Invalid value: \"\": must not be empty"]
        );
        // Each embedded resource in a list is validated, at its index.
        assert_eq!(
            embedded_errors(json!({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "ConfigMap"},
                {"apiVersion": "v1"},
            ]})),
            vec!["d.items[1].kind: Required value: must not be empty"]
        );
    }

    /// The validation errors of an embedded ConfigMap with `metadata`.
    fn meta_errors(meta: Value) -> Vec<String> {
        embedded_errors(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}))
    }

    // validation.go Validate → metav1 validation ValidateObjectMeta with
    // path.ValidatePathSegmentName (apimachinery api/validation/path/name.go), namespaces as
    // DNS-1123 labels, labels and annotations as qualified names (values as label values);
    // each problem its own error, worded by apimachinery pkg/util/validation/validation.go.
    #[test]
    fn embedded_metadata_is_validated_as_the_server_words_it() {
        assert!(
            meta_errors(json!({"name": "ok", "namespace": "ns", "labels": {"a": "b"}})).is_empty()
        );
        // No name is fine (a placeholder is validated); "." and ".." are not path segments.
        assert!(meta_errors(json!({"generateName": "cm-"})).is_empty());
        assert_eq!(
            meta_errors(json!({"name": ".."})),
            vec!["d.metadata.name: Invalid value: \"..\": may not be '..'"]
        );
        assert_eq!(
            meta_errors(json!({"name": "a/b"})),
            vec!["d.metadata.name: Invalid value: \"a/b\": may not contain '/'"]
        );
        // A prefix may be "." but not contain "%".
        assert!(meta_errors(json!({"generateName": "."})).is_empty());
        assert_eq!(
            meta_errors(json!({"generateName": "a%"})),
            vec!["d.metadata.generateName: Invalid value: \"a%\": may not contain '%'"]
        );
        let label_msg = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
        assert_eq!(
            meta_errors(json!({"namespace": "Bad"})),
            vec![format!(
                "d.metadata.namespace: Invalid value: \"Bad\": {label_msg}"
            )]
        );
        let long = "a".repeat(64);
        assert_eq!(
            meta_errors(json!({"namespace": long})),
            vec![format!(
                "d.metadata.namespace: Invalid value: \"{long}\": must be no more than 63 characters"
            )]
        );
        assert!(meta_errors(json!({"namespace": "a".repeat(63)})).is_empty());
        assert_eq!(
            meta_errors(json!({"labels": {"-x": "ok"}})),
            vec![
                "d.metadata.labels: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ]
        );
        assert_eq!(
            meta_errors(json!({"labels": {"x": "bad value"}})),
            vec![
                "d.metadata.labels: Invalid value: \"bad value\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
            ]
        );
        assert_eq!(
            meta_errors(json!({"labels": {"x": "v".repeat(64)}})),
            vec![format!(
                "d.metadata.labels: Invalid value: \"{}\": must be no more than 63 characters",
                "v".repeat(64)
            )]
        );
        // Annotation keys are qualified names in any case.
        assert!(meta_errors(json!({"annotations": {"Example.com/Key": "v"}})).is_empty());
        assert_eq!(
            meta_errors(json!({"annotations": {"a/b/c": "v"}})),
            vec![
                "d.metadata.annotations: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ]
        );
        assert_eq!(
            meta_errors(json!({"annotations": {"/b": "v"}})),
            vec!["d.metadata.annotations: Invalid value: \"/b\": prefix part must be non-empty"]
        );
    }

    // apimachinery api/validation/objectmeta.go ValidateAnnotationsSize: keys and values
    // together at most 256 KiB.
    #[test]
    fn annotations_hold_at_most_256_kib() {
        let fill = |n: usize| json!({"annotations": {"k": "v".repeat(n - 1)}});
        assert!(meta_errors(fill(262_144)).is_empty());
        assert_eq!(
            meta_errors(fill(262_145)),
            vec!["d.metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
        // Keys count too: two entries of 131,072 bytes each fit exactly.
        let half = "v".repeat(131_072 - 1);
        assert!(meta_errors(json!({"annotations": {"a": half, "b": half}})).is_empty());
        let over = "v".repeat(131_072);
        assert_eq!(
            meta_errors(json!({"annotations": {"a": half, "b": over}})).len(),
            1
        );
    }

    // validateEmbeddedResource: the kind may have mixed case but is otherwise a DNS-1035 label.
    #[test]
    fn an_embedded_kind_is_a_dns1035_label_in_any_case() {
        assert_eq!(
            embedded_errors(json!({"apiVersion": "v1", "kind": "1Map"})),
            vec![
                "d.kind: Invalid value: \"1Map\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
    }

    // coerce.go: the coercion of embedded resources in a list reaches every item.
    #[test]
    fn metadata_of_embedded_resources_in_lists_is_coerced() {
        let s = json!({"type": "array", "items": {"type": "object",
            "x-kubernetes-embedded-resource": true}});
        let e = coerce(
            "d",
            &json!([{"metadata": {"name": "ok"}}, {"metadata": {"name": 1}}]),
            &s,
            false,
        )
        .expect("error");
        assert_eq!(e.field, "d[1].metadata");
        assert!(coerce("d", &json!([{"metadata": {"name": "ok"}}]), &s, false).is_none());
    }

    /// The coercion error of `metadata` in an embedded resource, as text.
    fn meta_error(meta: Value) -> Option<String> {
        let s = json!({"type": "object", "x-kubernetes-embedded-resource": true});
        coerce("d", &json!({"metadata": meta}), &s, false).map(|e| e.detail)
    }

    // coerce.go GetObjectMeta unmarshals the metadata into metav1.ObjectMeta with
    // k8s.io/apimachinery/pkg/util/json; the messages are encoding/json's UnmarshalTypeError
    // ("json: cannot unmarshal <value> into Go struct field <Struct>.<field> of type <type>",
    // or "into Go value of type" for the top-level value), the value being the JSON kind, or
    // "number <text>" for a number an integer field cannot hold (decode.go literalStore).
    #[test]
    fn each_wrongly_typed_metadata_field_names_go_s_type() {
        let field = |f: &str, what: &str, ty: &str| {
            Some(format!(
                "json: cannot unmarshal {what} into Go struct field ObjectMeta.{f} of type {ty}"
            ))
        };
        assert_eq!(
            meta_error(json!("x")),
            Some("json: cannot unmarshal string into Go value of type v1.ObjectMeta".into())
        );
        assert_eq!(
            meta_error(json!([])),
            Some("json: cannot unmarshal array into Go value of type v1.ObjectMeta".into())
        );
        assert_eq!(meta_error(json!(null)), None);
        assert_eq!(
            meta_error(json!({"namespace": true})),
            field("namespace", "bool", "string")
        );
        assert_eq!(
            meta_error(json!({"generation": "1"})),
            field("generation", "string", "int64")
        );
        assert_eq!(
            meta_error(json!({"generation": 1.5})),
            field("generation", "number 1.5", "int64")
        );
        // Beyond int64: a float64 to the server, re-encoded in Go's notation.
        assert_eq!(
            meta_error(json!({"deletionGracePeriodSeconds": 18446744073709551615_u64})),
            field(
                "deletionGracePeriodSeconds",
                "number 18446744073709552000",
                "int64"
            )
        );
        assert_eq!(
            meta_error(json!({"generation": 1e21})),
            field("generation", "number 1e+21", "int64")
        );
        assert_eq!(
            meta_error(json!({"generation": 2.5e-7})),
            field("generation", "number 2.5e-7", "int64")
        );
        assert_eq!(meta_error(json!({"generation": 3})), None);
        // An int64 the server keeps as one, though as a float it would round up past the range.
        assert_eq!(meta_error(json!({"generation": i64::MAX})), None);
        assert_eq!(meta_error(json!({"generation": -3})), None);
        assert_eq!(meta_error(json!({"generation": 2.0})), None);
        assert_eq!(
            meta_error(json!({"labels": []})),
            field("labels", "array", "map[string]string")
        );
        assert_eq!(
            meta_error(json!({"annotations": {"a": "x", "b": 1}})),
            field("annotations", "number", "string")
        );
        assert_eq!(meta_error(json!({"labels": {"a": "x", "b": null}})), None);
        assert_eq!(
            meta_error(json!({"finalizers": "x"})),
            field("finalizers", "string", "[]string")
        );
        assert_eq!(
            meta_error(json!({"finalizers": ["a", {}]})),
            field("finalizers", "object", "string")
        );
        assert_eq!(meta_error(json!({"finalizers": ["a", null]})), None);
        assert_eq!(
            meta_error(json!({"ownerReferences": {}})),
            field("ownerReferences", "object", "[]v1.OwnerReference")
        );
        assert_eq!(
            meta_error(json!({"ownerReferences": [{}, 1]})),
            field("ownerReferences", "number", "v1.OwnerReference")
        );
        assert_eq!(
            meta_error(json!({"managedFields": [true]})),
            field("managedFields", "bool", "v1.ManagedFieldsEntry")
        );
        assert_eq!(meta_error(json!({"ownerReferences": [{}, null]})), None);
        // Unknown fields are ignored; null is always fine.
        assert_eq!(meta_error(json!({"colour": 1, "name": null})), None);
    }

    // apiextensions-apiserver pkg/apiserver/schema/objectmeta/coerce_test.go: a wrongly typed
    // name is a coercion error of metadata.
    #[test]
    fn wrongly_typed_metadata_does_not_coerce() {
        let s = json!({"type": "object", "x-kubernetes-embedded-resource": true});
        let e = coerce("d", &json!({"metadata": {"name": 42}}), &s, false).expect("error");
        assert_eq!(e.field, "d.metadata");
        assert!(coerce("d", &json!({"metadata": {"name": "x"}}), &s, false).is_none());
    }
}
