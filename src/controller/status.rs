//! Status writes: a JSON merge patch of exactly what changed, sent only when something did.

use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::crd::FIELD_MANAGER;

/// The JSON merge patch (RFC 7386) that turns `old` into `new`, or `None` when they are equal.
/// Removed keys become `null`; arrays are replaced whole.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(p) = merge_diff(ov, nv) {
                            patch.insert(k.clone(), p);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            Some(Value::Object(patch))
        }
        _ => Some(new.clone()),
    }
}

/// Patches the status subresource when `new` differs from `old`. Returns the object as the
/// server stored it when it wrote, `None` when nothing had changed.
pub async fn patch_status_if_changed<K, S>(
    api: &Api<K>,
    name: &str,
    old: Option<&S>,
    new: &S,
) -> Result<Option<K>, kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let old = match old {
        Some(o) => serde_json::to_value(o).map_err(kube::Error::SerdeError)?,
        None => Value::Object(Map::new()),
    };
    let new = serde_json::to_value(new).map_err(kube::Error::SerdeError)?;
    let Some(diff) = merge_diff(&old, &new) else {
        return Ok(None);
    };
    let patch = serde_json::json!({ "status": diff });
    let stored = api
        .patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(Some(stored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_contains_only_changes_and_nulls_for_removals() {
        let old = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "gone": true});
        let new = json!({"a": 1, "b": {"c": 2, "d": 4}, "e": [1, 2, 3], "new": "x"});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"b": {"d": 4}, "e": [1, 2, 3], "new": "x", "gone": null}))
        );
        assert_eq!(merge_diff(&new, &new), None);
    }
}
