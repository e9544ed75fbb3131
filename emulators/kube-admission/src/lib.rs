//! Admission of custom resources the way kube-apiserver 1.32 does it, for the API server emulator.
//!
//! [`CompiledSchema::compile`] reads one CRD version's `openAPIV3Schema` once (regular
//! expressions and CEL rules compiled up front). [`CompiledSchema::admit`] then runs the
//! server's pipeline on each create or update:
//!
//! 1. prune unknown fields (keeping everything under `x-kubernetes-preserve-unknown-fields`,
//!    and `apiVersion`, `kind`, `metadata` at the root), drop `null`s of non-nullable fields,
//!    apply `default`s;
//! 2. validate `metadata.name` (DNS-1123 subdomain);
//! 3. validate against the structural schema (types, bounds, lengths, patterns, enums, required,
//!    list types), with ratcheting on update: values equal to the stored ones are not
//!    re-checked;
//! 4. unless step 3 found a blocking error, evaluate the `x-kubernetes-validations` CEL rules,
//!    transition rules (`oldSelf`) only where an old value exists;
//! 5. when admitted, store integral floats as integers (`2.0` as `2`), as Go re-encodes them.
//!
//! Errors are [`FieldError`]s worded like the server's; [`invalid_status`] builds the 422 body.

mod cel;
mod check;
mod comprehensions;
mod crd;
mod duration;
mod error;
mod gofmt;
mod mutate;
mod needs;
mod objectmeta;
mod program;
mod schema;
mod validate;

use serde_json::Value;

pub use crd::{
    PER_CALL_LIMIT, RuleReport, STATIC_ESTIMATED_COST_LIMIT, STATIC_ESTIMATED_CRD_COST_LIMIT,
    compile_rules, validate_crd,
};
pub use error::{FieldError, FieldErrorKind, invalid_status};

/// One CRD version's schema, ready to admit objects. `Send + Sync`: share it behind an `Arc`.
#[derive(Debug)]
pub struct CompiledSchema {
    root: schema::Node,
}

impl CompiledSchema {
    /// Reads `schema.openAPIV3Schema` of one CRD version. Fails on what kube-apiserver would
    /// refuse in a CRD: unknown types, patterns or CEL rules that do not compile.
    pub fn compile(openapi_v3_schema: &Value) -> Result<CompiledSchema, String> {
        let root = schema::Node::compile(openapi_v3_schema, "", 0)?;
        Ok(CompiledSchema { root })
    }

    /// The fields of `object` that [`admit`](Self::admit) would prune, as sorted paths
    /// (`spec.colour`, `spec.items[0].x`). kube-apiserver answers them with `unknown field
    /// "spec.colour"` warnings (`fieldValidation=Warn`, the default) or refuses the request with
    /// `strict decoding error: unknown field "spec.colour"` (`fieldValidation=Strict`, kubectl's
    /// default).
    pub fn unknown_fields(&self, object: &Value) -> Vec<String> {
        let mut out = Vec::new();
        mutate::unknown_fields(&self.root, object, true, "", &mut out);
        out.sort();
        out
    }

    /// Prunes unknown fields of `object` in place (unless `x-kubernetes-preserve-unknown-fields`),
    /// applies defaults, then validates. `old` is the stored object on update: it enables CEL
    /// transition rules (`oldSelf`) and ratcheting (checks on values unchanged from `old` are
    /// skipped, except transition rules).
    pub fn admit(&self, object: &mut Value, old: Option<&Value>) -> Result<(), Vec<FieldError>> {
        if !object.is_object() {
            return Err(vec![FieldError::new(
                FieldErrorKind::TypeInvalid,
                "<nil>",
                Some(Value::String(value_type(object).to_string())),
                "must be of type object",
            )]);
        }
        mutate::prune_and_default(&self.root, object, true);

        let mut errors = validate::metadata(object);
        errors.extend(validate::schema(&self.root, object, old));
        validate::list_types(&self.root, object, old, "", &mut errors);
        if errors.iter().any(|e| e.kind.blocks_cel()) {
            if self.root.rules_below {
                errors.push(FieldError::new(
                    FieldErrorKind::Invalid,
                    "<nil>",
                    Some(Value::Null),
                    "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
                ));
            }
        } else if self.root.rules_below {
            errors.extend(cel::evaluate(&self.root, object, old));
        }
        if errors.is_empty() {
            // Validated as decoded; stored as encoded.
            mutate::integral_floats_as_integers(object);
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The JSON type name kube-apiserver reports for a value in type errors.
pub(crate) fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        // Go decodes a number that is no int64 (a fraction, or beyond its range) as a float64.
        Value::Number(n) if n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_schema_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CompiledSchema>();
    }
}
