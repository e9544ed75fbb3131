//! `Status` error bodies, worded like kube-apiserver's.

use serde_json::{Value, json};

use crate::resources::ResourceDef;

/// An API error: becomes a `Status` object with `status: Failure`.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
    /// A complete Status body built elsewhere (admission's 422).
    pub raw: Option<Box<Value>>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
            raw: None,
        }
    }

    /// An error whose Status body is already built.
    pub fn from_body(code: u16, body: Value) -> Self {
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut err = Self::new(code, "Invalid", message);
        err.raw = Some(Box::new(body));
        err
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn not_found(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", def.qualified_resource(), name),
        )
        .with_details(json!({"name": name, "group": def.group, "kind": def.plural}))
    }

    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
        )
        .with_details(json!({"name": namespace, "kind": "namespaces"}))
    }

    pub fn already_exists(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", def.qualified_resource(), name),
        )
        .with_details(json!({"name": name, "group": def.group, "kind": def.plural}))
    }

    pub fn conflict(def: &ResourceDef, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                def.qualified_resource(),
                name
            ),
        )
        .with_details(json!({"name": name, "group": def.group, "kind": def.plural}))
    }

    pub fn precondition_conflict(def: &ResourceDef, name: &str, detail: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                def.qualified_resource(),
                name,
                detail
            ),
        )
        .with_details(json!({"name": name, "group": def.group, "kind": def.plural}))
    }

    /// 422 Invalid with one cause per `(field, message)`.
    pub fn invalid(
        def: &ResourceDef,
        name: &str,
        causes: &[(String, String, &'static str)],
    ) -> Self {
        let text = causes
            .iter()
            .map(|(field, msg, _)| format!("{field}: {msg}"))
            .collect::<Vec<_>>();
        let joined = if text.len() == 1 {
            text.join("")
        } else {
            format!("[{}]", text.join(", "))
        };
        Self::new(
            422,
            "Invalid",
            format!(
                "{} \"{}\" is invalid: {}",
                def.qualified_kind(),
                name,
                joined
            ),
        )
        .with_details(json!({
            "name": name,
            "group": def.group,
            "kind": def.kind,
            "causes": causes.iter().map(|(field, msg, reason)| json!({
                "reason": reason, "message": msg, "field": field
            })).collect::<Vec<_>>(),
        }))
    }

    pub fn forbidden(def_resource: &str, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{def_resource} \"{name}\" is forbidden: {why}"),
        )
        .with_details(json!({"name": name, "kind": def_resource}))
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {content_type:?}"
            ),
        )
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn injected(code: u16) -> Self {
        let reason = match code {
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            409 => "Conflict",
            _ => "Unknown",
        };
        let mut err = Self::new(code, reason, format!("injected fault: status {code}"));
        if code == 429 {
            err.retry_after = Some(1);
            err.details = Some(json!({"retryAfterSeconds": 1}));
        }
        err
    }

    /// The `Status` body.
    pub fn body(&self) -> Value {
        if let Some(raw) = &self.raw {
            return (**raw).clone();
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}
