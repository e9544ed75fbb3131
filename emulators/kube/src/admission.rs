//! Admission of custom resources against their CRD's schema, by the `kube-admission` crate:
//! pruning of unknown fields, defaults, structural validation and CEL rules; plus the
//! `fieldValidation=Strict` check kubectl asks for (unknown fields are an error instead of
//! being dropped silently).

use serde_json::Value;

use crate::resources::ResourceDef;
use crate::status::ApiError;
use crate::store::{FieldValidation, WriteOptions};

/// Paths (in the API server's notation) present in `before` but pruned from `after`.
fn pruned_fields(before: &Value, after: &Value, prefix: &str, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in b {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match a.get(k) {
                    Some(av) => pruned_fields(v, av, &path, out),
                    None if !v.is_null() => out.push(path),
                    None => {}
                }
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                pruned_fields(bv, av, &format!("{prefix}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Validates (and prunes, defaults) `obj` against the CRD schema of `def`; `old` is the stored
/// object on updates, for transition rules and ratcheting.
pub(crate) fn admit(
    def: &ResourceDef,
    obj: &mut Value,
    old: Option<&Value>,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    let Some(schema) = &def.compiled else {
        return Ok(());
    };
    let before = (opts.field_validation != FieldValidation::Ignore).then(|| obj.clone());
    let result = schema.admit(obj, old);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(before) = before {
        let mut unknown = Vec::new();
        pruned_fields(&before, obj, "", &mut unknown);
        if !unknown.is_empty() && opts.field_validation == FieldValidation::Strict {
            let list = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {list}",
                def.kind, def.version, def.kind
            )));
        }
        if let Ok(mut warnings) = opts.warnings.lock() {
            warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")));
        }
    }
    result.map_err(|errors| {
        ApiError::from_body(
            422,
            kube_admission::invalid_status(&def.kind, &def.group, &name, &errors),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pruned_paths_are_reported_in_dotted_form() {
        let before =
            json!({"spec": {"a": 1, "typo": 2, "list": [{"x": 1, "y": 2}]}, "extra": null});
        let after = json!({"spec": {"a": 1, "list": [{"x": 1}]}});
        let mut out = Vec::new();
        pruned_fields(&before, &after, "", &mut out);
        assert_eq!(
            out,
            vec!["spec.list[0].y".to_string(), "spec.typo".to_string()]
        );
    }
}
