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

/// How long a sent Event is remembered for deduplication (kube-runtime's and client-go's
/// `CACHE_TTL`, measured from the Event's last observation).
const DEDUP_TTL: SignedDuration = SignedDuration::from_mins(6);

/// How often remembered Events past their TTL are swept out.
const SWEEP_EVERY: SignedDuration = SignedDuration::from_secs(60);

/// Publishes Events as kube-runtime's `Recorder` does — one Event per object version and
/// reason, repeated occurrences within six minutes counted in its `series` — while remembering
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
/// includes the object's resourceVersion, as in kube-runtime and client-go, so an Event about a
/// changed object is a new Event.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    warning: bool,
    reason: &'static str,
    uid: Option<String>,
    resource_version: Option<String>,
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
        if let Err(e) = self.send(&reference, event).await {
            tracing::warn!(error = %e, reason = event.reason, "could not publish Event");
        }
    }

    async fn send(
        &self,
        reference: &ObjectReference,
        event: &EventSpec,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = Key {
            warning: event.warning,
            reason: event.reason,
            uid: reference.uid.clone(),
            resource_version: reference.resource_version.clone(),
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
            metadata: ObjectMeta {
                namespace: reference.namespace.clone(),
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

    async fn emulator() -> (kube_emulator::RunningKube, kube::Client) {
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
        (kube, client)
    }

    async fn events(client: &kube::Client) -> Vec<K8sEvent> {
        let api: Api<K8sEvent> = Api::namespaced(client.clone(), "default");
        let mut list = api.list(&Default::default()).await.expect("events").items;
        list.sort_by_key(|e| e.metadata.name.clone());
        list
    }

    /// kube-runtime's `Recorder` semantics, against the Kubernetes emulator: the same reason
    /// about the same object version is one Event whose `series` counts the repeats (and keeps
    /// the first note, as client-go's isomorphic events do); another reason, another object
    /// version or the end of the TTL makes a new Event.
    #[tokio::test]
    async fn repeats_are_counted_in_one_event_per_object_version() {
        let (_kube, client) = emulator().await;
        let sink = EventSink::new(client.clone(), reporter());
        let v1 = reference("u1", "10");
        sink.send(&v1, &spec("CreateRejected", "first"))
            .await
            .expect("send");
        sink.send(&v1, &spec("CreateRejected", "second"))
            .await
            .expect("send");
        sink.send(&v1, &spec("CreateRejected", "third"))
            .await
            .expect("send");
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
        assert_eq!(e.regarding.as_ref(), Some(&v1));
        assert!(
            e.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("orders.")),
            "{e:?}"
        );

        sink.send(&v1, &spec("ProxyNotFound", "other"))
            .await
            .expect("send");
        sink.send(&reference("u1", "11"), &spec("CreateRejected", "newer"))
            .await
            .expect("send");
        let got = events(&client).await;
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(
            got.iter().filter(|e| e.series.is_none()).count(),
            2,
            "{got:#?}"
        );
        assert_eq!(sink.remembered_len(), 3);
    }

    #[tokio::test]
    async fn an_event_past_the_ttl_is_sent_again_and_forgotten() {
        let (_kube, client) = emulator().await;
        let sink =
            EventSink::with_ttl(client.clone(), reporter(), SignedDuration::from_millis(200));
        let v1 = reference("u1", "10");
        sink.send(&v1, &spec("CreateRejected", "first"))
            .await
            .expect("send");
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        sink.send(&v1, &spec("CreateRejected", "again"))
            .await
            .expect("send");
        let got = events(&client).await;
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got.iter().all(|e| e.series.is_none()), "{got:#?}");
        // The expired occurrence is swept out at the next sweep, not kept forever.
        sink.sent.lock().expect("lock").next_sweep = None;
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert_eq!(
            sink.remembered(
                &Key {
                    warning: true,
                    reason: "Other",
                    uid: None,
                    resource_version: None,
                    kind: None,
                },
                Timestamp::now()
            ),
            None
        );
        assert_eq!(sink.remembered_len(), 0);
    }

    #[tokio::test]
    async fn a_failed_send_is_not_remembered() {
        let (kube, client) = emulator().await;
        let sink = EventSink::new(client.clone(), reporter());
        kube.control().set_faults(kube_emulator::KubeFaults {
            write_error_status: Some(500),
            resources: vec!["events".into()],
            ..Default::default()
        });
        let v1 = reference("u1", "10");
        assert!(
            sink.send(&v1, &spec("CreateRejected", "lost"))
                .await
                .is_err()
        );
        assert_eq!(sink.remembered_len(), 0);
        // Once the server takes writes again, the Event is created, not patched.
        kube.control()
            .set_faults(kube_emulator::KubeFaults::default());
        sink.send(&v1, &spec("CreateRejected", "kept"))
            .await
            .expect("send");
        let got = events(&client).await;
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0].note.as_deref(), Some("kept"));
    }
}
