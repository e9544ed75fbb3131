//! Admission of custom resources against their CRD's schema, by the `kube-admission` crate:
//! pruning of unknown fields, defaults, structural validation and CEL rules; plus the
//! `fieldValidation` handling of unknown fields (Strict: an error, Warn: `Warning` headers,
//! Ignore: silently dropped).

use serde_json::Value;

use crate::resources::ResourceDef;
use crate::status::ApiError;
use crate::store::{FieldValidation, WriteOptions};

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
    let unknown = match opts.field_validation {
        FieldValidation::Ignore => Vec::new(),
        FieldValidation::Warn | FieldValidation::Strict => schema.unknown_fields(obj),
    };
    let described: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    // Like the server, strict decoding fails before any validation runs.
    if !described.is_empty() && opts.field_validation == FieldValidation::Strict {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            def.kind,
            def.version,
            def.kind,
            described.join(", ")
        )));
    }
    if let Ok(mut warnings) = opts.warnings.lock() {
        warnings.extend(described);
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    schema.admit(obj, old).map_err(|errors| {
        ApiError::from_body(
            422,
            kube_admission::invalid_status(&def.kind, &def.group, &name, &errors),
        )
    })
}
