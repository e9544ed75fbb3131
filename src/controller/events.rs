//! Kubernetes Events about KafkaTopics and KafkaRestProxies.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::Reporter;
use serde_json::json;

use super::plan::EventSpec;

/// How long a sent Event is remembered for deduplication (kube-runtime 5.0's `CACHE_TTL`,
/// measured from the Event's last observation).
const DEDUP_TTL: SignedDuration = SignedDuration::from_mins(6);

/// How often remembered Events past their TTL are swept out.
const SWEEP_EVERY: SignedDuration = SignedDuration::from_secs(60);

/// Publishes Events as kube-runtime's `Recorder` does — one Event per object and reason,
/// repeated occurrences within six minutes counted in its `series` — while remembering
/// only what deduplication needs. The `Recorder` keeps a copy of every Event it sent (about
/// 2 KiB each: 20 MiB after a burst of 10,000 topics) and sweeps them all on every publish.
pub struct EventSink {
    client: kube::Client,
    reporter: Reporter,
    ttl: SignedDuration,
    sent: Mutex<Sent>,
}

/// The Events this process sent in the last [`DEDUP_TTL`].
#[derive(Default)]
struct Sent {
    by_key: HashMap<Key, Occurrences>,
    next_sweep: Option<Timestamp>,
}

/// What makes two Events the same one: kube-runtime's `EventKey` (type, action, reason,
/// reporter, the regarding object's reference) with its constant parts left out. The reference
/// `Resource::object_ref` makes has no resourceVersion, so it comes down to the object's kind
/// and uid.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    warning: bool,
    reason: &'static str,
    uid: Option<String>,
    kind: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Occurrences {
    /// When the Event was created (its name ends in this time, in nanoseconds).
    created: Timestamp,
    last: Timestamp,
    count: i32,
}

impl EventSink {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Self::with_ttl(client, reporter, DEDUP_TTL)
    }

    fn with_ttl(client: kube::Client, reporter: Reporter, ttl: SignedDuration) -> Self {
        Self {
            client,
            reporter,
            ttl,
            sent: Mutex::new(Sent::default()),
        }
    }

    /// Publishes an Event about `obj`. Failures are logged, never fatal.
    pub async fn publish<K: Resource<DynamicType = ()>>(&self, obj: &K, event: &EventSpec) {
        let reference = obj.object_ref(&());
        if let Err(e) = self.send(&reference, event, Timestamp::now()).await {
            tracing::warn!(error = %e, reason = event.reason, "could not publish Event");
        }
    }

    /// Sends `event` about `reference` as happening at `now`.
    async fn send(
        &self,
        reference: &ObjectReference,
        event: &EventSpec,
        now: Timestamp,
    ) -> Result<(), kube::Error> {
        let key = Key {
            warning: event.warning,
            reason: event.reason,
            uid: reference.uid.clone(),
            kind: reference.kind.clone(),
        };
        let seen = self.remembered(&key, now);
        let namespace = reference.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        let occurrences = match seen {
            Some(o) => {
                let count = o.count.saturating_add(1);
                // The Event as first sent, with its series: only the series changes.
                let series = EventSeries {
                    count,
                    last_observed_time: MicroTime(now),
                };
                events
                    .patch(
                        &event_name(reference, &self.reporter, o.created),
                        &PatchParams::default(),
                        &Patch::Merge(json!({ "series": series })),
                    )
                    .await?;
                Occurrences {
                    last: now,
                    count,
                    ..o
                }
            }
            None => {
                events
                    .create(
                        &PostParams::default(),
                        &self.new_event(reference, event, now),
                    )
                    .await?;
                Occurrences {
                    created: now,
                    last: now,
                    count: 1,
                }
            }
        };
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.by_key.insert(key, occurrences);
        Ok(())
    }

    /// The occurrences of `key` within the TTL; sweeps out expired Events once a minute.
    fn remembered(&self, key: &Key, now: Timestamp) -> Option<Occurrences> {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = |o: &Occurrences| o.last.checked_add(self.ttl).is_ok_and(|end| end > now);
        if sent.next_sweep.is_none_or(|at| now >= at) {
            sent.by_key.retain(|_, o| fresh(o));
            sent.next_sweep = now.checked_add(SWEEP_EVERY).ok();
        }
        sent.by_key.get(key).copied().filter(fresh)
    }

    /// kube-runtime's `Recorder::generate_event`.
    fn new_event(
        &self,
        reference: &ObjectReference,
        event: &EventSpec,
        now: Timestamp,
    ) -> K8sEvent {
        K8sEvent {
            action: Some("Reconcile".into()),
            reason: Some(event.reason.into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(reference.clone()),
            note: Some(truncate(&event.note, 1000)),
            // The namespace is the request's.
            metadata: ObjectMeta {
                name: Some(event_name(reference, &self.reporter, now)),
                ..Default::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(if event.warning { "Warning" } else { "Normal" }.into()),
            ..Default::default()
        }
    }

    #[cfg(test)]
    fn remembered_len(&self) -> usize {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_key
            .len()
    }
}

/// An Event's name: the object's name and the creation time in hexadecimal nanoseconds.
fn event_name(reference: &ObjectReference, reporter: &Reporter, created: Timestamp) -> String {
    format!(
        "{}.{:x}",
        reference.name.as_ref().unwrap_or(&reporter.controller),
        created.as_nanosecond()
    )
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
    }

    fn reporter() -> Reporter {
        Reporter {
            controller: "hdinsight-topic-operator".into(),
            instance: Some("operator-0".into()),
        }
    }

    fn reference(uid: &str, rv: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("hdinsight.azure.com/v1alpha1".into()),
            kind: Some("KafkaTopic".into()),
            name: Some("orders".into()),
            namespace: Some("default".into()),
            uid: Some(uid.into()),
            resource_version: Some(rv.into()),
            field_path: None,
        }
    }

    fn spec(reason: &'static str, note: &str) -> EventSpec {
        EventSpec {
            warning: true,
            reason,
            note: note.into(),
        }
    }

    async fn events(client: &kube::Client) -> Vec<K8sEvent> {
        let api: Api<K8sEvent> = Api::namespaced(client.clone(), "default");
        let mut list = api.list(&Default::default()).await.expect("events").items;
        list.sort_by_key(|e| e.metadata.name.clone());
        list
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).expect("time")
    }

    fn topic(uid: &str, rv: &str) -> crate::crd::KafkaTopic {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "hdinsight.azure.com/v1alpha1", "kind": "KafkaTopic",
            "metadata": {"name": "orders", "namespace": "default", "uid": uid,
                "resourceVersion": rv},
            "spec": {}
        }))
        .expect("topic")
    }

    /// kube-runtime's `Recorder` semantics, against the Kubernetes emulator: the same reason
    /// about the same object is one Event whose `series` counts the repeats, whatever the
    /// object's version, and keeps the first note (kube-runtime patches the series onto the
    /// Event as first sent); another reason or another object makes a new Event.
    #[tokio::test]
    async fn repeats_are_counted_in_one_event_per_object() {
        let (_kube, client) = crate::controller::test_kube().await;
        let sink = EventSink::new(client.clone(), reporter());
        let t = topic("u1", "10");
        sink.publish(&t, &spec("CreateRejected", "first")).await;
        sink.publish(&topic("u1", "11"), &spec("CreateRejected", "second"))
            .await;
        sink.publish(&t, &spec("CreateRejected", "third")).await;
        let got = events(&client).await;
        assert_eq!(got.len(), 1, "{got:#?}");
        let e = &got[0];
        assert_eq!(e.series.as_ref().map(|s| s.count), Some(3));
        assert_eq!(e.note.as_deref(), Some("first"));
        assert_eq!(e.reason.as_deref(), Some("CreateRejected"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.action.as_deref(), Some("Reconcile"));
        assert_eq!(
            e.reporting_controller.as_deref(),
            Some("hdinsight-topic-operator")
        );
        assert_eq!(e.reporting_instance.as_deref(), Some("operator-0"));
        assert_eq!(e.regarding.as_ref(), Some(&t.object_ref(&())));
        assert_eq!(e.metadata.namespace.as_deref(), Some("default"));

        let now = Timestamp::now();
        sink.send(&t.object_ref(&()), &spec("ProxyNotFound", "other"), now)
            .await
            .expect("another reason");
        let other = topic("u2", "10").object_ref(&());
        let later = now
            .checked_add(SignedDuration::from_millis(1))
            .expect("time");
        sink.send(&other, &spec("CreateRejected", "newer"), later)
            .await
            .expect("another object");
        let got = events(&client).await;
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(
            got.iter().filter(|e| e.series.is_none()).count(),
            2,
            "{got:#?}"
        );
        assert_eq!(sink.remembered_len(), 3);
    }

    /// The TTL runs from the last occurrence (kube-runtime keeps an Event while
    /// `lastObservedTime + CACHE_TTL > now`), the Event's name and times are the send's, and
    /// expired Events are swept out once a minute.
    #[tokio::test]
    async fn the_ttl_runs_from_the_last_occurrence() {
        let (_kube, client) = crate::controller::test_kube().await;
        let sink = EventSink::with_ttl(client.clone(), reporter(), SignedDuration::from_secs(10));
        let v1 = reference("u1", "10");
        let rejected = spec("CreateRejected", "n");
        let send = |s: i64| sink.send(&v1, &rejected, at(s));
        send(0).await.expect("send");
        send(8).await.expect("send");
        // 8 s after the last occurrence: still the same Event.
        send(16).await.expect("send");
        let got = events(&client).await;
        assert_eq!(got.len(), 1, "{got:#?}");
        let e = &got[0];
        assert_eq!(e.event_time.as_ref().map(|t| t.0), Some(at(0)));
        assert_eq!(
            e.metadata.name.as_deref(),
            Some(format!("orders.{:x}", at(0).as_nanosecond()).as_str())
        );
        let series = e.series.as_ref().expect("series");
        assert_eq!((series.count, series.last_observed_time.0), (3, at(16)));
        // Exactly the TTL after the last occurrence it is gone: a new Event.
        send(26).await.expect("send");
        let got = events(&client).await;
        assert_eq!(got.len(), 2, "{got:#?}");
        // Not swept before a minute has passed since the last sweep (at 0)...
        let other = Key {
            warning: false,
            reason: "Other",
            uid: None,
            kind: None,
        };
        assert_eq!(sink.remembered(&other, at(59)), None);
        assert_eq!(sink.remembered_len(), 1);
        // ...then everything expired is.
        assert_eq!(sink.remembered(&other, at(60)), None);
        assert_eq!(sink.remembered_len(), 0);
    }

    #[tokio::test]
    async fn a_failed_send_is_not_remembered() {
        let (kube, client) = crate::controller::test_kube().await;
        let sink = EventSink::new(client.clone(), reporter());
        kube.control().set_faults(kube_emulator::KubeFaults {
            write_error_status: Some(500),
            resources: vec!["events".into()],
            ..Default::default()
        });
        let v1 = reference("u1", "10");
        let now = Timestamp::now();
        assert!(
            sink.send(&v1, &spec("CreateRejected", "lost"), now)
                .await
                .is_err()
        );
        assert_eq!(sink.remembered_len(), 0);
        // Once the server takes writes again, the Event is created, not patched.
        kube.control()
            .set_faults(kube_emulator::KubeFaults::default());
        sink.send(&v1, &spec("CreateRejected", "kept"), now)
            .await
            .expect("send");
        let got = events(&client).await;
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0].note.as_deref(), Some("kept"));
    }
}
