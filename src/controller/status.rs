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

    #[test]
    fn a_value_that_changes_type_is_replaced_whole() {
        let old = json!({"spec": {"a": 1}, "n": 1});
        let new = json!({"spec": "text", "n": {"x": 1}});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"spec": "text", "n": {"x": 1}}))
        );
        assert_eq!(merge_diff(&json!(1), &json!(2)), Some(json!(2)));
    }

    /// Against the in-process Kubernetes emulator: the status is written when it changed, and
    /// no request at all is sent when it did not.
    #[tokio::test]
    async fn status_is_patched_only_when_it_changed() {
        use crate::crd::{KafkaTopic, KafkaTopicStatus};
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        use kube::CustomResourceExt;
        use kube::api::PostParams;

        let kube = kube_emulator::RunningKube::start(
            kube_emulator::KubeEmulatorConfig {
                tls: false,
                ..Default::default()
            },
            "127.0.0.1:0".parse().expect("address"),
        )
        .await
        .expect("emulator");
        let url = kube.base_url().parse().expect("url");
        let client = kube::Client::try_from(kube::Config::new(url)).expect("client");
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &KafkaTopic::crd())
            .await
            .expect("CRD");
        let topics: Api<KafkaTopic> = Api::namespaced(client, "default");
        let spec: crate::crd::KafkaTopicSpec = serde_json::from_value(json!({})).expect("spec");
        let mut created = None;
        for _ in 0..100 {
            match topics
                .create(
                    &PostParams::default(),
                    &KafkaTopic::new("orders", spec.clone()),
                )
                .await
            {
                Ok(t) => {
                    created = Some(t);
                    break;
                }
                // The CRD is not served yet.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
        assert!(created.is_some(), "the KafkaTopic could not be created");
        let writes = || {
            kube.control()
                .stats()
                .writes
                .get("kafkatopics/status")
                .copied()
                .unwrap_or(0)
        };

        let first = KafkaTopicStatus {
            observed_generation: Some(1),
            topic_name: Some("orders".into()),
            partitions: Some(3),
            ..Default::default()
        };
        let stored = patch_status_if_changed(&topics, "orders", None, &first)
            .await
            .expect("patch")
            .expect("a first status is written");
        assert_eq!(stored.status.as_ref(), Some(&first));
        assert_eq!(writes(), 1);

        // Unchanged: nothing is sent.
        let again = patch_status_if_changed(&topics, "orders", Some(&first), &first)
            .await
            .expect("no patch");
        assert!(again.is_none());
        assert_eq!(writes(), 1);

        // One field changed and one removed: the stored status follows.
        let second = KafkaTopicStatus {
            partitions: Some(6),
            topic_name: None,
            ..first.clone()
        };
        let stored = patch_status_if_changed(&topics, "orders", Some(&first), &second)
            .await
            .expect("patch")
            .expect("a changed status is written");
        assert_eq!(stored.status.as_ref(), Some(&second));
        assert_eq!(writes(), 2);
        let read = topics.get("orders").await.expect("get");
        assert_eq!(read.status, Some(second));
        kube.shutdown().await;
    }
}
