//! Label selectors (equality and set-based) and field selectors.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::resources::ResourceDef;

#[derive(Clone, Debug, PartialEq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<Requirement>);

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// A label key, as `validation.IsQualifiedName` (k8s.io/apimachinery pkg/util/validation)
/// accepts one: an optional DNS-1123 subdomain prefix and `/`, then a name of at most 63
/// characters, `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn valid_key(k: &str) -> bool {
    let (prefix, name) = match k.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, k),
    };
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let name_ok = name.len() <= 63
        && alnum(name.chars().next())
        && alnum(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    name_ok && prefix.is_none_or(dns1123_subdomain)
}

/// `validation.IsDNS1123Subdomain`: at most 253 characters, dot-separated labels of lowercase
/// letters, digits and `-`, each starting and ending with a letter or digit.
fn dns1123_subdomain(s: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    s.len() <= 253
        && s.split('.').all(|label| {
            edge(label.chars().next())
                && edge(label.chars().last())
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised set of values, found {rest:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Eq(k.trim().into(), v.trim().into())
            } else if let Some(idx) = part.find(" notin ") {
                Requirement::NotIn(part[..idx].trim().into(), parse_set(&part[idx + 7..])?)
            } else if let Some(idx) = part.find(" in ") {
                Requirement::In(part[..idx].trim().into(), parse_set(&part[idx + 4..])?)
            } else if let Some(idx) = part.find(" notin(") {
                Requirement::NotIn(part[..idx].trim().into(), parse_set(&part[idx + 6..])?)
            } else if let Some(idx) = part.find(" in(") {
                Requirement::In(part[..idx].trim().into(), parse_set(&part[idx + 3..])?)
            } else {
                Requirement::Exists(part.trim().to_string())
            };
            let key = match &req {
                Requirement::Eq(k, _)
                | Requirement::NotEq(k, _)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _)
                | Requirement::Exists(k)
                | Requirement::NotExists(k) => k,
            };
            if !valid_key(key) {
                return Err(format!(
                    "unable to parse requirement: invalid label key {key:?}"
                ));
            }
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// The operator of one field selector term.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldOp {
    Equals,
    NotEquals,
}

/// One `field=value` / `field!=value` term (value unescaped).
#[derive(Clone, Debug, PartialEq)]
struct FieldTerm {
    field: String,
    op: FieldOp,
    value: String,
}

/// A parsed `fieldSelector`, as `k8s.io/apimachinery/pkg/fields.ParseSelector` reads it:
/// comma-separated terms (a `\,` is part of a value), each `field=value`, `field==value` or
/// `field!=value` split at the first operator, the value unescaped (`\\`, `\,`, `\=`).
/// Nothing is trimmed: `a = b` has the field `"a "`, as upstream.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<FieldTerm>);

/// `fields.splitTerms`: commas split terms unless escaped; the escape stays in the term.
fn split_field_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// `fields.splitTerm`: the first `!=`, `==` or `=` (in that order of preference at a position).
fn split_field_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, kind) in [
            ("!=", FieldOp::NotEquals),
            ("==", FieldOp::Equals),
            ("=", FieldOp::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], kind, value));
            }
        }
    }
    None
}

/// `fields.UnescapeValue`.
fn unescape_field_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ));
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                // Go prints the rune with %v: its code point.
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ));
            }
            other => out.push(other),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".into());
    }
    Ok(out)
}

/// Go's `%q` for the field names that reach error messages.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// The field selectors a kind supports: the label conversion the real server registers for it
/// (`scheme.AddFieldLabelConversionFunc`, or `runtime.DefaultMetaV1FieldSelectorConversion`
/// when none is registered; `crConverter.ConvertFieldLabel` for custom resources). Returns the
/// internal field name the object's field set uses.
fn convert_field_label(def: &ResourceDef, label: &str) -> Result<String, String> {
    let unsupported = || Err(format!("field label not supported: {label}"));
    let ok = |l: &str| Ok(l.to_string());
    if def.custom {
        // k8s.io/apiextensions-apiserver/pkg/apiserver/conversion/converter.go
        return match label {
            "metadata.name" => ok(label),
            "metadata.namespace" if def.namespaced => ok(label),
            _ if def.selectable_fields.iter().any(|f| f == label) => ok(label),
            _ => unsupported(),
        };
    }
    match (def.group.as_str(), def.plural.as_str()) {
        // k8s.io/kubernetes/pkg/apis/core/v1/conversion.go
        ("", "secrets") => match label {
            "type" | "metadata.namespace" | "metadata.name" => ok(label),
            _ => unsupported(),
        },
        ("", "namespaces") => match label {
            "status.phase" | "metadata.name" => ok(label),
            _ => unsupported(),
        },
        ("", "events") => match label {
            "involvedObject.kind"
            | "involvedObject.namespace"
            | "involvedObject.name"
            | "involvedObject.uid"
            | "involvedObject.apiVersion"
            | "involvedObject.resourceVersion"
            | "involvedObject.fieldPath"
            | "reason"
            | "reportingComponent"
            | "source"
            | "type"
            | "metadata.namespace"
            | "metadata.name" => ok(label),
            _ => unsupported(),
        },
        // k8s.io/kubernetes/pkg/apis/events/v1/conversion.go: the events.k8s.io names map to
        // the core field set.
        ("events.k8s.io", "events") => match label {
            "reason" | "source" | "type" | "metadata.namespace" | "metadata.name" => ok(label),
            "reportingController" => ok("reportingComponent"),
            _ => match label.strip_prefix("regarding.") {
                Some(
                    rest @ ("kind" | "namespace" | "name" | "uid" | "apiVersion"
                    | "resourceVersion" | "fieldPath"),
                ) => Ok(format!("involvedObject.{rest}")),
                _ => unsupported(),
            },
        },
        // k8s.io/apimachinery/pkg/runtime/conversion.go DefaultMetaV1FieldSelectorConversion
        _ => match label {
            "metadata.name" | "metadata.namespace" => ok(label),
            _ => Err(format!(
                "{} is not a known field selector: only {}, {}",
                go_quote(label),
                go_quote("metadata.name"),
                go_quote("metadata.namespace")
            )),
        },
    }
}

fn text_at<'a>(obj: &'a Value, path: &str) -> &'a str {
    obj.pointer(path).and_then(Value::as_str).unwrap_or("")
}

/// Go's `fmt.Sprint` of a JSON value found by a selectable field's path.
fn sprint(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// The field set a stored (core form) object is matched against: the kind's
/// `ToSelectableFields` / `GetAttrs` on the real server.
fn field_set(def: &ResourceDef, obj: &Value) -> BTreeMap<String, String> {
    let mut set = BTreeMap::new();
    set.insert(
        "metadata.name".to_string(),
        text_at(obj, "/metadata/name").to_string(),
    );
    set.insert(
        "metadata.namespace".to_string(),
        text_at(obj, "/metadata/namespace").to_string(),
    );
    if def.custom {
        // apiextensions-apiserver pkg/registry/customresource/strategy.go selectableFields:
        // fmt.Sprint of the value, "" when missing.
        for field in &def.selectable_fields {
            let value = field
                .split('.')
                .try_fold(obj, |cur, seg| cur.get(seg))
                .map(sprint)
                .unwrap_or_default();
            set.insert(field.clone(), value);
        }
        return set;
    }
    match (def.group.as_str(), def.plural.as_str()) {
        // pkg/registry/core/secret/strategy.go SelectableFields
        ("", "secrets") => {
            set.insert("type".into(), text_at(obj, "/type").into());
        }
        // pkg/registry/core/namespace/strategy.go NamespaceToSelectableFields
        ("", "namespaces") => {
            set.insert("status.phase".into(), text_at(obj, "/status/phase").into());
        }
        // pkg/registry/core/event/strategy.go ToSelectableFields (stored core form)
        ("", "events") | ("events.k8s.io", "events") => {
            for f in [
                "kind",
                "namespace",
                "name",
                "uid",
                "apiVersion",
                "resourceVersion",
                "fieldPath",
            ] {
                set.insert(
                    format!("involvedObject.{f}"),
                    text_at(obj, &format!("/involvedObject/{f}")).into(),
                );
            }
            let reporting = text_at(obj, "/reportingComponent");
            let mut source = text_at(obj, "/source/component");
            if source.is_empty() {
                source = reporting;
            }
            set.insert("reason".into(), text_at(obj, "/reason").into());
            set.insert("reportingComponent".into(), reporting.into());
            set.insert("source".into(), source.into());
            set.insert("type".into(), text_at(obj, "/type").into());
        }
        _ => {}
    }
    set
}

impl FieldSelector {
    /// `fields.ParseSelector`: syntax only.
    pub fn parse(selector: &str) -> Result<Self, String> {
        let mut parts = split_field_terms(selector);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, op, raw)) = split_field_term(part) else {
                return Err(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                ));
            };
            terms.push(FieldTerm {
                field: field.to_string(),
                op,
                value: unescape_field_value(raw)?,
            });
        }
        Ok(Self(terms))
    }

    /// `Selector.RequiresExactMatch`: the value of the first `field=value` (or `==`) term on
    /// `field`, in the parsed (sorted) order.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|t| t.field == field && t.op == FieldOp::Equals)
            .map(|t| t.value.as_str())
    }

    /// The list handler's `FieldSelector.Transform(ConvertFieldLabel)`: every field must be one
    /// the kind supports; the error is the server's (answered as 400 BadRequest).
    pub fn for_kind(mut self, def: &ResourceDef) -> Result<Self, String> {
        for term in &mut self.0 {
            term.field = convert_field_label(def, &term.field)?;
        }
        Ok(self)
    }

    /// Whether a stored-form object matches (a term on a field the object lacks compares "").
    pub fn matches(&self, def: &ResourceDef, stored: &Value) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let set = field_set(def, stored);
        self.0.iter().all(|t| {
            let have = set.get(&t.field).map(String::as_str).unwrap_or("");
            (have == t.value) == (t.op == FieldOp::Equals)
        })
    }
}

/// Both selectors of a list or watch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    /// Whether a stored-form object of `def` is selected.
    pub fn matches(&self, def: &ResourceDef, stored: &Value) -> bool {
        self.labels.matches(stored) && self.fields.matches(def, stored)
    }

    /// Like [`Self::matches`] for an object in the form `def` serves.
    pub fn matches_served(&self, def: &ResourceDef, served: &Value) -> bool {
        if self.fields.0.is_empty() || !def.stored_differs() {
            return self.matches(def, served);
        }
        self.matches(def, &def.to_storage(served.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj() -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "tier": "front"}}})
    }

    #[test]
    fn set_based_and_equality_requirements() {
        let ok = |s: &str| LabelSelector::parse(s).expect("parses").matches(&obj());
        assert!(ok("app=web"));
        assert!(ok("app==web,tier!=back"));
        assert!(ok("app in (web, api)"));
        assert!(!ok("app notin (web)"));
        assert!(ok("tier"));
        assert!(ok("!missing"));
        assert!(!ok("!app"));
        assert!(ok("app in (web),tier notin (back,middle)"));
        // The lexer needs no space before the parenthesis.
        assert!(ok("app in(web,api)"));
        assert!(!ok("app in(api)"));
        assert!(ok("tier notin(back)"));
        assert!(!ok("app notin(web)"));
        assert!(!ok("app=api"));
    }

    /// Cases of `TestIsQualifiedName` in k8s.io/apimachinery pkg/util/validation
    /// validation_test.go, as label keys in a selector.
    #[test]
    fn label_keys_are_qualified_names() {
        let good = [
            "simple".to_string(),
            "now-with-dashes".into(),
            "1-starts-with-num".into(),
            "1234".into(),
            "simple/simple".into(),
            "now-with-dashes/simple".into(),
            "now-with-dashes/now-with-dashes".into(),
            "now.with.dots/simple".into(),
            "now-with.dashes-and.dots/simple".into(),
            "1-num.2-num/3-num".into(),
            "1234/5678".into(),
            "1.2.3.4/5678".into(),
            "Uppercase_Is_OK_123".into(),
            "example.com/Uppercase_Is_OK_123".into(),
            "requests.storage-foo".into(),
            "a".repeat(63),
            format!("{}/{}", "a".repeat(253), "b".repeat(63)),
        ];
        for key in &good {
            assert!(LabelSelector::parse(&format!("{key}=v")).is_ok(), "{key}");
        }
        let bad = [
            "nospecialchars%^@".to_string(),
            "cantendwithadash-".into(),
            "-cantstartwithadash-".into(),
            "only/one/slash".into(),
            "Example.com/abc".into(),
            "example_com/abc".into(),
            "example.com/".into(),
            "/simple".into(),
            "a".repeat(64),
            format!("{}/abc", "a".repeat(254)),
        ];
        for key in &bad {
            let e = LabelSelector::parse(&format!("{key}=v")).expect_err(key);
            assert!(e.contains("invalid label key"), "{key}: {e}");
        }
    }

    fn def(group: &str, plural: &str) -> ResourceDef {
        crate::resources::builtins()
            .into_iter()
            .find(|d| d.group == group && d.plural == plural)
            .expect("a built-in kind")
    }

    fn select(def: &ResourceDef, selector: &str, obj: &Value) -> Result<bool, String> {
        Ok(FieldSelector::parse(selector)?
            .for_kind(def)?
            .matches(def, obj))
    }

    #[test]
    fn field_selectors_on_name_and_namespace() {
        let cm = def("", "configmaps");
        let ok = |s: &str| select(&cm, s, &obj()).expect("a valid selector");
        assert!(ok("metadata.name=a"));
        assert!(ok("metadata.namespace==ns,metadata.name!=b"));
        assert!(!ok("metadata.name=b"));
        assert!(ok(""));
        // k8s.io/apimachinery/pkg/fields/selector.go parseSelector
        assert_eq!(
            FieldSelector::parse("bogus").expect_err("no operator"),
            "invalid selector: 'bogus'; can't understand 'bogus'"
        );
    }

    /// k8s.io/apimachinery/pkg/runtime/conversion.go DefaultMetaV1FieldSelectorConversion:
    /// kinds without a registered conversion (ConfigMap, Lease, CRD) know only the metadata.
    #[test]
    fn kinds_without_own_fields_refuse_others_with_the_default_message() {
        for (group, plural) in [
            ("", "configmaps"),
            ("coordination.k8s.io", "leases"),
            ("apiextensions.k8s.io", "customresourcedefinitions"),
        ] {
            let err = select(&def(group, plural), "spec.foo=x", &obj()).expect_err("refused");
            assert_eq!(
                err,
                r#""spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace""#
            );
        }
    }

    /// k8s.io/kubernetes pkg/apis/core/v1/conversion.go and pkg/registry/core/*/strategy.go.
    #[test]
    fn secrets_namespaces_and_events_have_their_own_fields() {
        let secret =
            json!({"metadata": {"name": "s", "namespace": "ns"}, "type": "kubernetes.io/tls"});
        let secrets = def("", "secrets");
        assert_eq!(
            select(&secrets, "type=kubernetes.io/tls", &secret),
            Ok(true)
        );
        assert_eq!(select(&secrets, "type!=Opaque", &secret), Ok(true));
        assert_eq!(
            select(&secrets, "data.x=1", &secret),
            Err("field label not supported: data.x".into())
        );

        let ns = json!({"metadata": {"name": "team"}, "status": {"phase": "Active"}});
        let namespaces = def("", "namespaces");
        assert_eq!(select(&namespaces, "status.phase=Active", &ns), Ok(true));
        // A namespace has no namespace field: the real server refuses the selector.
        assert_eq!(
            select(&namespaces, "metadata.namespace=x", &ns),
            Err("field label not supported: metadata.namespace".into())
        );

        // Stored (core) form of an event written by a controller through events.k8s.io.
        let event = json!({
            "metadata": {"name": "e", "namespace": "ns"},
            "involvedObject": {"kind": "KafkaTopic", "name": "orders", "namespace": "ns"},
            "reason": "Created", "type": "Normal", "reportingComponent": "op",
        });
        let core = def("", "events");
        assert_eq!(
            select(
                &core,
                "involvedObject.kind=KafkaTopic,involvedObject.name=orders",
                &event
            ),
            Ok(true)
        );
        assert_eq!(
            select(&core, "reason=Created,type=Normal", &event),
            Ok(true)
        );
        // `source` falls back to the reporting controller.
        assert_eq!(select(&core, "source=op", &event), Ok(true));
        assert_eq!(
            select(&core, "message=hi", &event),
            Err("field label not supported: message".into())
        );
        // events.k8s.io names map onto the same field set.
        let v1 = def("events.k8s.io", "events");
        assert_eq!(
            select(&v1, "regarding.name=orders,reportingController=op", &event),
            Ok(true)
        );
        assert_eq!(
            select(
                &v1,
                "reason=Created,type=Normal,metadata.name=e,metadata.namespace=ns",
                &event
            ),
            Ok(true)
        );
        assert_eq!(select(&v1, "type=Warning", &event), Ok(false));
        assert_eq!(
            select(&v1, "involvedObject.name=orders", &event),
            Err("field label not supported: involvedObject.name".into())
        );
    }

    /// apiextensions-apiserver pkg/apiserver/conversion/converter.go ConvertFieldLabel and
    /// pkg/registry/customresource/strategy.go selectableFields.
    #[test]
    fn custom_resources_select_on_declared_fields_only() {
        let mut shirts = def("", "configmaps");
        shirts.custom = true;
        shirts.group = "tests.example.com".into();
        shirts.selectable_fields = vec![
            "spec.color".into(),
            "spec.quantity".into(),
            "spec.branded".into(),
        ];
        let shirt = json!({"metadata": {"name": "s1", "namespace": "ns"}, "spec": {"color": "blue", "quantity": 2, "branded": false}});
        assert_eq!(
            select(&shirts, "spec.color=blue,spec.quantity=2", &shirt),
            Ok(true)
        );
        assert_eq!(select(&shirts, "spec.branded=false", &shirt), Ok(true));
        assert_eq!(select(&shirts, "spec.quantity!=2", &shirt), Ok(false));
        assert_eq!(
            select(&shirts, "spec.nosuchfield=xyz", &shirt),
            Err("field label not supported: spec.nosuchfield".into())
        );
        shirts.namespaced = false;
        assert_eq!(
            select(&shirts, "metadata.namespace=ns", &shirt),
            Err("field label not supported: metadata.namespace".into())
        );
        // A declared field the object lacks selects as "".
        let bare = json!({"metadata": {"name": "s2"}, "spec": {}});
        assert_eq!(select(&shirts, "spec.color=", &bare), Ok(true));
    }

    /// k8s.io/apimachinery/pkg/fields/selector_test.go TestSplitTerms / TestEscapeValue.
    #[test]
    fn values_follow_the_escaping_rules() {
        let cm = def("", "configmaps");
        let named = |n: &str| json!({"metadata": {"name": n, "namespace": "ns"}});
        assert_eq!(select(&cm, r"metadata.name=a\,b", &named("a,b")), Ok(true));
        assert_eq!(
            select(&cm, r"metadata.name=a\=b\\c", &named(r"a=b\c")),
            Ok(true)
        );
        assert_eq!(
            select(&cm, "metadata.name==a=b", &named("a=b")),
            Err("invalid field selector: unescaped character in value: 61".into())
        );
        assert_eq!(
            FieldSelector::parse(r"metadata.name=a\b").expect_err("bad escape"),
            r"invalid field selector: invalid escape sequence: \b"
        );
        assert_eq!(
            FieldSelector::parse(r"metadata.name=a\").expect_err("trailing escape"),
            r"invalid field selector: invalid escape sequence: \"
        );
        // `!=` wins over `=` at the same position; the value may be empty.
        assert_eq!(select(&cm, "metadata.name!=", &named("a")), Ok(true));
        // Nothing is trimmed: " metadata.name" is not a field the kind knows.
        assert!(select(&cm, "metadata.name=a, metadata.namespace=ns", &named("a")).is_err());
    }
}
