//! Field errors worded like kube-apiserver's `field.Error` and the 422 `Status` built from them.

use serde_json::{Value, json};

use crate::gofmt;

/// The kind of a field error; the names follow `k8s.io/apimachinery/pkg/util/validation/field`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldErrorKind {
    Required,
    Invalid,
    NotSupported,
    TooLong,
    TooMany,
    TypeInvalid,
    Forbidden,
    Duplicate,
    /// `field.InternalError`.
    Internal,
}

impl FieldErrorKind {
    /// The words the API server prints for this kind ("Invalid value", "Required value", ...).
    pub fn label(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::Internal => "Internal error",
        }
    }

    /// The `reason` of a `Status` cause ("FieldValueInvalid", ...).
    pub fn cause_reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Internal => "InternalError",
        }
    }

    /// Errors after which kube-apiserver does not evaluate CEL rules at all.
    pub(crate) fn blocks_cel(self) -> bool {
        matches!(
            self,
            FieldErrorKind::NotSupported
                | FieldErrorKind::Required
                | FieldErrorKind::TooLong
                | FieldErrorKind::TooMany
                | FieldErrorKind::TypeInvalid
        )
    }
}

/// One reason an object was refused.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The field in kube-apiserver's notation: `spec.partitions`, `spec.config[retention.ms]`,
    /// `metadata.name`; `<nil>` for a rule on the root of the object without `fieldPath`.
    pub field: String,
    pub kind: FieldErrorKind,
    /// The value printed after the kind; `None` where the API server prints none.
    pub value: Option<Value>,
    /// The full text, e.g. `spec.partitions: Invalid value: 0: spec.partitions in body should be
    /// greater than or equal to 1`.
    pub message: String,
    /// Only the detail part, e.g. `spec.partitions in body should be greater than or equal to 1`.
    pub detail: String,
}

impl FieldError {
    pub(crate) fn new(
        kind: FieldErrorKind,
        field: impl Into<String>,
        value: Option<Value>,
        detail: impl Into<String>,
    ) -> FieldError {
        let field = field.into();
        let detail = detail.into();
        let message = format!("{field}: {}", body(kind, value.as_ref(), &detail));
        FieldError {
            field,
            kind,
            value,
            message,
            detail,
        }
    }

    /// An error whose value Go prints in a form JSON cannot carry (`%#v` of a struct): `printed`
    /// is that text, `value` the value as JSON.
    pub(crate) fn with_printed_value(
        kind: FieldErrorKind,
        field: impl Into<String>,
        value: Value,
        printed: &str,
        detail: impl Into<String>,
    ) -> FieldError {
        let field = field.into();
        let detail = detail.into();
        let mut body = format!("{}: {printed}", kind.label());
        if !detail.is_empty() {
            body.push_str(": ");
            body.push_str(&detail);
        }
        FieldError {
            message: format!("{field}: {body}"),
            field,
            kind,
            value: Some(value),
            detail,
        }
    }

    /// The text after `field: ` (Go's `ErrorBody`), which a `Status` cause carries.
    pub fn body(&self) -> String {
        match self
            .message
            .strip_prefix(self.field.as_str())
            .and_then(|r| r.strip_prefix(": "))
        {
            Some(b) => b.to_string(),
            None => body(self.kind, self.value.as_ref(), &self.detail),
        }
    }
}

fn body(kind: FieldErrorKind, value: Option<&Value>, detail: &str) -> String {
    let mut s = kind.label().to_string();
    let prints_value = !matches!(
        kind,
        FieldErrorKind::Required
            | FieldErrorKind::Forbidden
            | FieldErrorKind::TooLong
            | FieldErrorKind::Internal
    );
    if prints_value && let Some(v) = value {
        s.push_str(": ");
        s.push_str(&gofmt::bad_value(v));
    }
    if !detail.is_empty() {
        s.push_str(": ");
        s.push_str(detail);
    }
    s
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FieldError {}

/// The 422 `Status` kube-apiserver answers with when an object is invalid.
///
/// `kind` is e.g. `KafkaTopic`, `group` e.g. `kafka.hdinsight.dev` (empty for the core group).
/// Identical messages are listed once, several are joined in brackets, as `ErrorList.ToAggregate`
/// does.
pub fn invalid_status(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Value {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let mut unique: Vec<&str> = Vec::with_capacity(errors.len());
    for e in errors {
        if !unique.contains(&e.message.as_str()) {
            unique.push(&e.message);
        }
    }
    let message = match unique.as_slice() {
        [] => format!("{qualified} {} is invalid", gofmt::quote(name)),
        [one] => format!("{qualified} {} is invalid: {one}", gofmt::quote(name)),
        many => format!(
            "{qualified} {} is invalid: [{}]",
            gofmt::quote(name),
            many.join(", ")
        ),
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| {
            json!({
                "reason": e.kind.cause_reason(),
                "message": e.body(),
                "field": e.field,
            })
        })
        .collect();
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Invalid",
        "details": {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": causes,
        },
        "code": 422,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // apimachinery pkg/util/validation/field/errors.go ErrorBody: ": <detail>" only when there
    // is one; Error() is the field, ": ", and the body.
    #[test]
    fn printed_values_and_details_join_like_error_body() {
        let e = FieldError::with_printed_value(
            FieldErrorKind::Invalid,
            "spec.rule",
            Value::String("x".into()),
            "apiextensions.ValidationRule{Rule:\"x\"}",
            "",
        );
        assert_eq!(
            e.message,
            "spec.rule: Invalid value: apiextensions.ValidationRule{Rule:\"x\"}"
        );
        assert_eq!(e.to_string(), e.message);
        let e = FieldError::with_printed_value(
            FieldErrorKind::Invalid,
            "spec.rule",
            Value::String("x".into()),
            "R",
            "compilation failed",
        );
        assert_eq!(
            e.to_string(),
            "spec.rule: Invalid value: R: compilation failed"
        );
        assert_eq!(e.body(), "Invalid value: R: compilation failed");
    }
}
