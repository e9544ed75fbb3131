//! Admission of custom resources against their CRD's schema.
//!
//! Not yet wired: the schema validation, pruning and CEL rules come from the `kube-admission`
//! crate; until it is connected every custom resource is admitted as sent.

use serde_json::Value;

use crate::resources::ResourceDef;
use crate::status::ApiError;

/// Validates (and prunes) `obj` against the CRD schema of `def`; `old` is the stored object on
/// updates, for transition rules.
pub(crate) fn admit(
    def: &ResourceDef,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let _ = (def, obj, old);
    Ok(())
}
