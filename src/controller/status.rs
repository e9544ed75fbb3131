//! Status writes: a JSON merge patch of exactly what changed, sent only when something did.

use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::crd::FIELD_MANAGER;
use crate::metrics::Metrics;

/// How long a status patch may take before it counts as failed (and the reconcile is retried
/// with backoff). The API server's own request timeout is 60 s; a healthy one answers in
/// milliseconds, and a reconcile waiting longer holds its worker.
pub const STATUS_WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// A reconcile that could not finish: only Kubernetes writes fail this way; everything the
/// proxy does wrong ends in a status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing status: {0}")]
    Kube(#[from] kube::Error),
    #[error("writing status: no answer from Kubernetes within {0:?}")]
    Timeout(Duration),
}

/// Where a status patch goes and what it is counted as.
pub struct StatusTarget<'a, K> {
    pub api: &'a Api<K>,
    pub name: &'a str,
    /// The kind, as the metrics label it.
    pub kind: &'static str,
    pub metrics: &'a Metrics,
    pub timeout: Duration,
}

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
/// server stored it when it wrote, `None` when nothing had changed. A patch that is sent is
/// timed and counted (`status_write_duration`, `status_writes`, `status_write_failures`) and
/// given up after `target.timeout`.
pub async fn patch_status_if_changed<K, S>(
    target: &StatusTarget<'_, K>,
    old: Option<&S>,
    new: &S,
) -> Result<Option<K>, Error>
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
    let params = PatchParams::apply(FIELD_MANAGER);
    let patch = Patch::Merge(&patch);
    let started = Instant::now();
    let sent = target.api.patch_status(target.name, &params, &patch);
    let result = match tokio::time::timeout(target.timeout, sent).await {
        Ok(Ok(stored)) => Ok(Some(stored)),
        Ok(Err(e)) => Err(Error::Kube(e)),
        Err(_) => Err(Error::Timeout(target.timeout)),
    };
    target
        .metrics
        .status_write(target.kind, started.elapsed(), result.is_ok());
    result
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

        let (kube, client) = crate::controller::test_kube().await;
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
        let metrics = Metrics::new();
        let target = StatusTarget {
            api: &topics,
            name: "orders",
            kind: "KafkaTopic",
            metrics: &metrics,
            timeout: STATUS_WRITE_TIMEOUT,
        };
        let counted = |family: &prometheus_client::metrics::family::Family<
            crate::metrics::KindLabels,
            prometheus_client::metrics::counter::Counter,
        >| {
            family
                .get_or_create(&crate::metrics::KindLabels {
                    kind: "KafkaTopic".into(),
                })
                .get()
        };
        let stored = patch_status_if_changed(&target, None, &first)
            .await
            .expect("patch")
            .expect("a first status is written");
        assert_eq!(stored.status.as_ref(), Some(&first));
        assert_eq!(writes(), 1);

        // Unchanged: nothing is sent.
        assert_eq!(counted(&metrics.status_writes), 1);
        let again = patch_status_if_changed(&target, Some(&first), &first)
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
        assert_eq!(
            counted(&metrics.status_writes),
            1,
            "an unsent patch was counted"
        );
        let stored = patch_status_if_changed(&target, Some(&first), &second)
            .await
            .expect("patch")
            .expect("a changed status is written");
        assert_eq!(stored.status.as_ref(), Some(&second));
        assert_eq!(writes(), 2);
        let read = topics.get("orders").await.expect("get");
        assert_eq!(read.status, Some(second.clone()));
        assert_eq!(counted(&metrics.status_writes), 2);
        assert_eq!(counted(&metrics.status_write_failures), 0);

        // Refused by the server: an error, counted as a failure, nothing stored.
        kube.control().set_faults(kube_emulator::KubeFaults {
            write_error_status: Some(500),
            resources: vec!["kafkatopics/status".into()],
            ..Default::default()
        });
        let third = KafkaTopicStatus {
            partitions: Some(9),
            ..second.clone()
        };
        match patch_status_if_changed(&target, Some(&second), &third).await {
            Err(Error::Kube(_)) => {}
            other => panic!("a refused patch came back as {other:?}"),
        }
        assert_eq!(counted(&metrics.status_write_failures), 1);

        // No answer within the timeout: given up, counted as a failure.
        kube.control().set_faults(kube_emulator::KubeFaults {
            latency_ms: 2_000,
            resources: vec!["kafkatopics/status".into()],
            ..Default::default()
        });
        let impatient = StatusTarget {
            timeout: Duration::from_millis(200),
            ..target
        };
        match patch_status_if_changed(&impatient, Some(&second), &third).await {
            Err(e @ Error::Timeout(_)) => {
                assert_eq!(
                    e.to_string(),
                    "writing status: no answer from Kubernetes within 200ms"
                )
            }
            other => panic!("a patch without answer came back as {other:?}"),
        }
        assert_eq!(counted(&metrics.status_write_failures), 2);
        assert_eq!(counted(&metrics.status_writes), 2);
        kube.control().clear_faults();
        kube.shutdown().await;
    }
}
