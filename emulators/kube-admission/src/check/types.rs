//! CEL types, and the declarations kube-apiserver derives from a structural schema
//! (apiserver `pkg/cel/common/schemas.go` `SchemaDeclType`, `pkg/cel/types.go`): which fields
//! rules can see, their types, their minimum serialized sizes and the maximum number of
//! elements the cost estimator assumes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::cel::escape;

/// `celconfig.MaxRequestSizeBytes`: 3 MiB.
pub(crate) const MAX_REQUEST_SIZE_BYTES: i64 = 3 * 1024 * 1024;
const MAX_DURATION_SIZE_JSON: i64 = 32;
const MAX_DATETIME_SIZE_JSON: i64 = 32;
const MIN_DURATION_SIZE_JSON: i64 = 3;
const JSON_DATE_SIZE: i64 = 12;
const MIN_DATETIME_SIZE_JSON: i64 = 21;
const MIN_STRING_SIZE: i64 = 2;
const MIN_BOOL_SIZE: i64 = 4;
const MIN_NUMBER_SIZE: i64 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scalar {
    Bool,
    Int,
    Double,
    String,
    Bytes,
    Duration,
    Timestamp,
    Dyn,
}

#[derive(Debug)]
pub(crate) enum DeclKind {
    /// Fields by their CEL (escaped) names.
    Object(BTreeMap<String, Arc<Decl>>),
    List(Arc<Decl>),
    /// String keys.
    Map(Arc<Decl>),
    Scalar(Scalar),
}

/// One `DeclType`.
#[derive(Debug)]
pub(crate) struct Decl {
    pub(crate) kind: DeclKind,
    pub(crate) max_elements: i64,
    pub(crate) min_size: i64,
}

impl Decl {
    fn scalar(s: Scalar, min_size: i64, max_elements: i64) -> Arc<Decl> {
        Arc::new(Decl {
            kind: DeclKind::Scalar(s),
            max_elements,
            min_size,
        })
    }

    /// The declaration reached by a cost-estimation path (`@items`, `@values`, `@keys`, field
    /// names), as apiextensions' `sizeEstimator` walks it.
    pub(crate) fn at_path(self: &Arc<Decl>, path: &[String]) -> Option<Arc<Decl>> {
        let mut cur = self.clone();
        for name in path {
            let next = match (&cur.kind, name.as_str()) {
                (DeclKind::List(e) | DeclKind::Map(e), "@items" | "@values") => e.clone(),
                (DeclKind::Map(_), "@keys") => string_key(),
                (DeclKind::Object(fields), n) => fields.get(n)?.clone(),
                _ => return None,
            };
            cur = next;
        }
        Some(cur)
    }

    /// The CEL type of this declaration; objects are named like `MaybeAssignTypeName` names them.
    pub(crate) fn ty(self: &Arc<Decl>, name: &str) -> Ty {
        match &self.kind {
            DeclKind::Object(_) => Ty::Object(Arc::from(name), self.clone()),
            DeclKind::List(e) => Ty::List(Box::new(e.ty(&format!("{name}.@idx")))),
            DeclKind::Map(e) => Ty::Map(
                Box::new(Ty::String),
                Box::new(e.ty(&format!("{name}.@elem"))),
            ),
            DeclKind::Scalar(s) => match s {
                Scalar::Bool => Ty::Bool,
                Scalar::Int => Ty::Int,
                Scalar::Double => Ty::Double,
                Scalar::String => Ty::String,
                Scalar::Bytes => Ty::Bytes,
                Scalar::Duration => Ty::Duration,
                Scalar::Timestamp => Ty::Timestamp,
                Scalar::Dyn => Ty::Dyn,
            },
        }
    }
}

fn string_key() -> Arc<Decl> {
    // `apiservercel.StringType`: no MaxElements.
    Decl::scalar(Scalar::String, MIN_STRING_SIZE, 0)
}

fn flag(s: &Value, k: &str) -> bool {
    s.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn int(s: &Value, k: &str) -> Option<i64> {
    s.get(k)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

fn type_of(s: &Value) -> &str {
    s.get("type").and_then(Value::as_str).unwrap_or("")
}

/// `SchemaDeclType`: `None` when the schema is not exposed to CEL.
pub(crate) fn schema_decl(s: &Value, is_resource_root: bool) -> Option<Arc<Decl>> {
    if !s.is_object() {
        return None;
    }
    if flag(s, "x-kubernetes-int-or-string") {
        let max = match int(s, "maxLength") {
            Some(m) => m.max(0) * 4,
            None => MAX_REQUEST_SIZE_BYTES - 2,
        };
        return Some(Decl::scalar(Scalar::Dyn, 1, max));
    }
    let with_meta;
    let s = if is_resource_root {
        with_meta = with_type_and_object_meta(s);
        &with_meta
    } else {
        s
    };
    match type_of(s) {
        "array" => {
            let items = s.get("items").filter(|i| i.is_object())?;
            let item = schema_decl(items, flag(items, "x-kubernetes-embedded-resource"))?;
            let max = match int(s, "maxItems") {
                Some(m) => m.max(0),
                None => (MAX_REQUEST_SIZE_BYTES - 2) / (item.min_size + 1),
            };
            Some(Arc::new(Decl {
                kind: DeclKind::List(item),
                max_elements: max,
                min_size: 2,
            }))
        }
        "object" => {
            if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                let values = schema_decl(ap, flag(ap, "x-kubernetes-embedded-resource"))?;
                let max = match int(s, "maxProperties") {
                    Some(m) => m.max(0),
                    None => (MAX_REQUEST_SIZE_BYTES - 2) / (values.min_size + 6),
                };
                return Some(Arc::new(Decl {
                    kind: DeclKind::Map(values),
                    max_elements: max,
                    min_size: 2,
                }));
            }
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut fields = BTreeMap::new();
            let mut min_size = 2;
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    let Some(ft) = schema_decl(prop, flag(prop, "x-kubernetes-embedded-resource"))
                    else {
                        continue;
                    };
                    if required.contains(&name.as_str())
                        && prop.get("default").is_none_or(Value::is_null)
                    {
                        min_size += name.len() as i64 + ft.min_size + 4;
                    }
                    if let Some(escaped) = escape(name) {
                        fields.insert(escaped, ft);
                    }
                }
            }
            Some(Arc::new(Decl {
                kind: DeclKind::Object(fields),
                max_elements: 0,
                min_size,
            }))
        }
        "string" => {
            let format = s.get("format").and_then(Value::as_str).unwrap_or("");
            let per_request = match format {
                "duration" => MAX_DURATION_SIZE_JSON,
                "date" => JSON_DATE_SIZE,
                "date-time" => MAX_DATETIME_SIZE_JSON,
                _ => MAX_REQUEST_SIZE_BYTES - 2,
            };
            Some(match format {
                "byte" => Decl::scalar(
                    Scalar::Bytes,
                    MIN_STRING_SIZE,
                    int(s, "maxLength").map_or(per_request, |m| m.max(0)),
                ),
                "duration" => Decl::scalar(Scalar::Duration, MIN_DURATION_SIZE_JSON, per_request),
                "date" => Decl::scalar(Scalar::Timestamp, JSON_DATE_SIZE, per_request),
                "date-time" => Decl::scalar(Scalar::Timestamp, MIN_DATETIME_SIZE_JSON, per_request),
                _ => {
                    let max = if let Some(m) = int(s, "maxLength") {
                        m.max(0) * 4
                    } else if let Some(e) = s
                        .get("enum")
                        .and_then(Value::as_array)
                        .filter(|e| !e.is_empty())
                    {
                        e.iter()
                            .filter_map(Value::as_str)
                            .map(|v| v.len() as i64)
                            .max()
                            .unwrap_or(0)
                    } else {
                        per_request
                    };
                    Decl::scalar(Scalar::String, MIN_STRING_SIZE, max)
                }
            })
        }
        "boolean" => Some(Decl::scalar(Scalar::Bool, MIN_BOOL_SIZE, 0)),
        "number" => Some(Decl::scalar(Scalar::Double, MIN_NUMBER_SIZE, 0)),
        "integer" => Some(Decl::scalar(Scalar::Int, MIN_NUMBER_SIZE, 0)),
        _ => None,
    }
}

/// `WithTypeAndObjectMeta`: `kind`, `apiVersion`, `metadata.name` and `metadata.generateName`
/// are always visible at the root of a resource, and nothing else of `metadata`.
fn with_type_and_object_meta(s: &Value) -> Value {
    let props = s.get("properties").and_then(Value::as_object);
    let is = |v: Option<&Value>, t: &str| v.is_some_and(|v| type_of(v) == t);
    let already = props.is_some_and(|p| {
        is(p.get("kind"), "string")
            && is(p.get("apiVersion"), "string")
            && is(p.get("metadata"), "object")
            && p.get("metadata")
                .and_then(|m| m.get("properties"))
                .and_then(Value::as_object)
                .is_some_and(|mp| {
                    is(mp.get("name"), "string") && is(mp.get("generateName"), "string")
                })
    });
    if already {
        return s.clone();
    }
    let mut out = s.clone();
    let string = serde_json::json!({"type": "string"});
    if let Some(o) = out.as_object_mut() {
        let mut p = props.cloned().unwrap_or_default();
        p.insert("kind".into(), string.clone());
        p.insert("apiVersion".into(), string.clone());
        p.insert(
            "metadata".into(),
            serde_json::json!({"type": "object", "properties": {"name": string, "generateName": string}}),
        );
        o.insert("properties".into(), Value::Object(p));
    }
    out
}

/// The declaration `decl` with every `MaxElements` replaced by the largest size actually
/// present in `values` (list lengths, map sizes, string lengths in characters), for bounding
/// the cost of evaluating a rule on these values.
pub(crate) fn actual_sizes(decl: &Arc<Decl>, values: &[&Value]) -> Arc<Decl> {
    let kind = match &decl.kind {
        DeclKind::Object(fields) => {
            let mut out = BTreeMap::new();
            for (name, fd) in fields {
                let children: Vec<&Value> = values
                    .iter()
                    .filter_map(|v| v.as_object())
                    .filter_map(|o| {
                        o.iter()
                            .find(|(k, _)| escape(k).as_deref() == Some(name.as_str()))
                            .map(|(_, v)| v)
                    })
                    .collect();
                out.insert(name.clone(), actual_sizes(fd, &children));
            }
            DeclKind::Object(out)
        }
        DeclKind::List(e) => {
            let items: Vec<&Value> = values
                .iter()
                .filter_map(|v| v.as_array())
                .flatten()
                .collect();
            DeclKind::List(actual_sizes(e, &items))
        }
        DeclKind::Map(e) => {
            let items: Vec<&Value> = values
                .iter()
                .filter_map(|v| v.as_object())
                .flat_map(|o| o.values())
                .collect();
            DeclKind::Map(actual_sizes(e, &items))
        }
        DeclKind::Scalar(s) => DeclKind::Scalar(*s),
    };
    let max = values
        .iter()
        .map(|v| match v {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            Value::String(s) => s.chars().count(),
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    Arc::new(Decl {
        kind,
        max_elements: max as i64,
        min_size: decl.min_size,
    })
}

/// A CEL type as cel-go's checker handles it.
#[derive(Clone, Debug)]
pub(crate) enum Ty {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    Duration,
    Timestamp,
    Dyn,
    Error,
    List(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    /// A schema object: its type name and declaration.
    Object(Arc<str>, Arc<Decl>),
    /// Library struct types (`kubernetes.Quantity`, `kubernetes.URL`, ...).
    Struct(&'static str),
    /// Opaque types (`optional_type(T)`, `net.IP`, `net.CIDR`).
    Opaque(&'static str, Vec<Ty>),
    Type(Box<Ty>),
    /// A type parameter: named (`A` in a declaration) or a fresh variable of the checker.
    Param(Arc<str>),
}

impl Ty {
    pub(crate) fn optional(t: Ty) -> Ty {
        Ty::Opaque("optional_type", vec![t])
    }

    pub(crate) fn is_dyn_or_error(&self) -> bool {
        matches!(self, Ty::Dyn | Ty::Error)
    }

    /// Same kind and name (`IsExactType` up to parameters).
    pub(crate) fn exact(&self, other: &Ty) -> bool {
        match (self, other) {
            (Ty::List(a), Ty::List(b)) | (Ty::Type(a), Ty::Type(b)) => a.exact(b),
            (Ty::Map(a, b), Ty::Map(c, d)) => a.exact(c) && b.exact(d),
            (Ty::Object(a, _), Ty::Object(b, _)) => a == b,
            (Ty::Struct(a), Ty::Struct(b)) => a == b,
            (Ty::Opaque(a, p), Ty::Opaque(b, q)) => {
                a == b && p.len() == q.len() && p.iter().zip(q).all(|(x, y)| x.exact(y))
            }
            (Ty::Param(a), Ty::Param(b)) => a == b,
            _ => {
                std::mem::discriminant(self) == std::mem::discriminant(other)
                    && !matches!(
                        self,
                        Ty::List(_)
                            | Ty::Map(..)
                            | Ty::Object(..)
                            | Ty::Struct(_)
                            | Ty::Opaque(..)
                            | Ty::Type(_)
                            | Ty::Param(_)
                    )
            }
        }
    }

    /// cel-go's `FormatCELType`.
    pub(crate) fn format(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Uint => "uint".into(),
            Ty::Double => "double".into(),
            Ty::String => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Null => "null".into(),
            Ty::Duration => "duration".into(),
            Ty::Timestamp => "timestamp".into(),
            Ty::Dyn => "dyn".into(),
            Ty::Error => "!error!".into(),
            Ty::List(e) => format!("list({})", e.format()),
            Ty::Map(k, v) => format!("map({}, {})", k.format(), v.format()),
            Ty::Object(name, _) => name.to_string(),
            Ty::Struct(name) => name.to_string(),
            Ty::Opaque(name, params) if params.is_empty() => name.to_string(),
            Ty::Opaque(name, params) => format!(
                "{name}({})",
                params.iter().map(Ty::format).collect::<Vec<_>>().join(", ")
            ),
            Ty::Type(t) => format!("type({})", t.format()),
            Ty::Param(n) => n.to_string(),
        }
    }

    /// Scalar types whose size cel-go fixes at 1 (`computeTypeSize`).
    pub(crate) fn is_scalar(&self) -> bool {
        match self {
            Ty::Bool | Ty::Double | Ty::Duration | Ty::Int | Ty::Timestamp | Ty::Uint => true,
            // cel-go v0.22 (1.32) has no exception for an optional of a scalar (v0.23 does).
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // cel-go common/types/types.go `IsExactType`: same kind, name and parameters, type
    // parameters by name.
    #[test]
    fn exact_types_agree_in_every_parameter() {
        let map = |k: Ty, v: Ty| Ty::Map(Box::new(k), Box::new(v));
        let opt = Ty::optional;
        let param = |n: &str| Ty::Param(std::sync::Arc::from(n));
        let same = [
            (map(Ty::String, Ty::Int), map(Ty::String, Ty::Int)),
            (opt(Ty::Int), opt(Ty::Int)),
            (param("A"), param("A")),
            (Ty::Int, Ty::Int),
        ];
        for (a, b) in same {
            assert!(a.exact(&b), "{} {}", a.format(), b.format());
        }
        let different = [
            (map(Ty::String, Ty::Int), map(Ty::String, Ty::String)),
            (map(Ty::Int, Ty::Int), map(Ty::String, Ty::Int)),
            (opt(Ty::Int), opt(Ty::String)),
            (opt(Ty::Int), Ty::Opaque("set", vec![Ty::Int])),
            (opt(Ty::Int), Ty::Opaque("optional_type", vec![])),
            (param("A"), param("B")),
            (Ty::Int, Ty::Uint),
        ];
        for (a, b) in different {
            assert!(!a.exact(&b), "{} {}", a.format(), b.format());
        }
        // `FormatCELType`: parameters in parentheses, none without.
        assert_eq!(opt(Ty::Int).format(), "optional_type(int)");
        assert_eq!(Ty::Opaque("net.IP", vec![]).format(), "net.IP");
    }

    // Expected sizes from apiserver pkg/cel/common/schemas.go and pkg/cel/limits.go.
    #[test]
    fn sizes_follow_the_api_server() {
        let d = schema_decl(&json!({"type": "string"}), false).expect("exposed");
        assert_eq!(d.max_elements, MAX_REQUEST_SIZE_BYTES - 2);
        let d = schema_decl(&json!({"type": "string", "maxLength": 10}), false).expect("exposed");
        assert_eq!(d.max_elements, 40);
        let d =
            schema_decl(&json!({"type": "string", "enum": ["a", "abc"]}), false).expect("exposed");
        assert_eq!(d.max_elements, 3);
        let d = schema_decl(
            &json!({"type": "array", "items": {"type": "integer"}}),
            false,
        )
        .expect("exposed");
        assert_eq!(d.max_elements, (MAX_REQUEST_SIZE_BYTES - 2) / 2);
        let d = schema_decl(
            &json!({"type": "object", "additionalProperties": {"type": "string"}}),
            false,
        )
        .expect("exposed");
        assert_eq!(d.max_elements, (MAX_REQUEST_SIZE_BYTES - 2) / 8);
        let d = schema_decl(
            &json!({"type": "object", "required": ["ab"], "properties": {"ab": {"type": "string"}}}),
            false,
        )
        .expect("exposed");
        assert_eq!(d.min_size, 2 + 2 + 2 + 4);
    }

    #[test]
    fn untyped_nodes_are_not_exposed() {
        assert!(
            schema_decl(
                &json!({"x-kubernetes-preserve-unknown-fields": true}),
                false
            )
            .is_none()
        );
        assert!(schema_decl(
            &json!({"type": "object", "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true}}),
            false
        )
        .is_none());
        assert!(schema_decl(&json!({"type": "array", "items": {}}), false).is_none());
        let d = schema_decl(&json!({"x-kubernetes-int-or-string": true}), false).expect("dyn");
        assert!(matches!(d.kind, DeclKind::Scalar(Scalar::Dyn)));
    }

    #[test]
    fn resource_roots_expose_name_and_generate_name_only() {
        let d = schema_decl(
            &json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"namespace": {"type": "string"}}}}}),
            true,
        )
        .expect("exposed");
        let DeclKind::Object(fields) = &d.kind else {
            panic!("object expected")
        };
        assert!(fields.contains_key("apiVersion") && fields.contains_key("kind"));
        let DeclKind::Object(meta) = &fields["metadata"].kind else {
            panic!("object expected")
        };
        assert_eq!(
            meta.keys().collect::<Vec<_>>(),
            vec!["generateName", "name"]
        );
    }
}
