//! Field selectors and the watch-cache knobs (delivery delay, history by count and by age),
//! through kube-rs and raw HTTP, compared with what kube-apiserver does.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube_emulator::{KubeEmulatorConfig, RunningKube, WatchCacheSettings};
use serde_json::{Value, json};

/// One HTTP/1.1 request on a fresh connection (plain http); the status code and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout set");
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request written");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response read");
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

async fn http_async(
    addr: SocketAddr,
    method: &'static str,
    path: String,
    body: Option<String>,
) -> (u16, String) {
    tokio::task::spawn_blocking(move || http(addr, method, &path, body.as_deref()))
        .await
        .expect("the request task finishes")
}

fn plain() -> KubeEmulatorConfig {
    KubeEmulatorConfig {
        tls: false,
        ..test_config()
    }
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": value}}))
        .expect("a ConfigMap")
}

fn rv_of(cm: &ConfigMap) -> u64 {
    cm.metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("a numeric resourceVersion")
}

/// The API error of a failed call, as a Status.
fn bad_request<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String, String) {
    let status = api_error(result);
    (status.code, status.reason, status.message)
}

// ---------------------------------------------------------------------------------------------
// Field selectors

/// A CRD whose v1 declares `spec.color` and `spec.quantity` selectable, as in
/// apiextensions-apiserver test/integration/fieldselector_test.go.
async fn install_shirts(client: &kube::Client) -> Api<DynamicObject> {
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "shirts.tests.example.com"},
        "spec": {
            "group": "tests.example.com",
            "scope": "Namespaced",
            "names": {"plural": "shirts", "singular": "shirt", "kind": "Shirt", "listKind": "ShirtList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "selectableFields": [{"jsonPath": ".spec.color"}, {"jsonPath": ".spec.quantity"}],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "color": {"type": "string"},
                        "quantity": {"type": "integer"},
                        "size": {"type": "string"},
                    }},
                }}},
            }],
        },
    }))
    .expect("a CRD");
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .expect("the CRD is accepted");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("tests.example.com", "v1", "Shirt"),
        "shirts",
    );
    let api = Api::namespaced_with(client.clone(), "default", &ar);
    for (name, color, quantity, size) in [
        ("shirt1", "blue", 2, "S"),
        ("shirt2", "blue", 1, "M"),
        ("shirt3", "red", 2, "L"),
    ] {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "tests.example.com/v1", "kind": "Shirt",
            "metadata": {"name": name},
            "spec": {"color": color, "quantity": quantity, "size": size},
        }))
        .expect("a Shirt");
        api.create(&PostParams::default(), &obj)
            .await
            .expect("created");
    }
    api
}

fn names(list: kube::core::ObjectList<DynamicObject>) -> Vec<String> {
    list.items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_select_on_their_selectable_fields_only() {
    let (kube, client) = start().await;
    let shirts = install_shirts(&client).await;
    let by = |s: &str| ListParams::default().fields(s);
    assert_eq!(
        names(shirts.list(&by("spec.color=blue")).await.expect("list")),
        vec!["shirt1", "shirt2"]
    );
    assert_eq!(
        names(shirts.list(&by("spec.quantity=2")).await.expect("list")),
        vec!["shirt1", "shirt3"]
    );
    assert_eq!(
        names(
            shirts
                .list(&by("spec.color==blue,spec.quantity!=2"))
                .await
                .expect("list")
        ),
        vec!["shirt2"]
    );
    assert_eq!(
        names(
            shirts
                .list(&by("metadata.name=shirt3"))
                .await
                .expect("list")
        ),
        vec!["shirt3"]
    );
    // `spec.size` exists in the schema but is not declared selectable: the server's words from
    // apiextensions-apiserver pkg/apiserver/conversion/converter.go ConvertFieldLabel.
    assert_eq!(
        bad_request(shirts.list(&by("spec.size=M")).await),
        (
            400,
            "BadRequest".into(),
            "field label not supported: spec.size".into()
        )
    );
    // A watch with such a selector is refused before it starts (handlers/get.go
    // parseListOptions), not answered with an ERROR event.
    assert_eq!(
        bad_request(
            shirts
                .watch(&WatchParams::default().fields("spec.nosuchfield=xyz"), "0")
                .await
                .map(|_| ())
        ),
        (
            400,
            "BadRequest".into(),
            "field label not supported: spec.nosuchfield".into()
        )
    );
    // deletecollection filters the same way.
    shirts
        .delete_collection(&DeleteParams::default(), &by("spec.color=red"))
        .await
        .expect("deletecollection");
    assert_eq!(
        names(shirts.list(&ListParams::default()).await.expect("list")),
        vec!["shirt1", "shirt2"]
    );
    kube.shutdown().await;
}

/// As in fieldselector_test.go testWatch: an object updated out of the selection is DELETED
/// for the selecting watcher, one updated into it ADDED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selecting_watches_see_shirts_leave_and_enter_the_selection() {
    let (kube, client) = start().await;
    let shirts = install_shirts(&client).await;
    let rv = shirts
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("a list version");
    let mut stream = shirts
        .watch(&WatchParams::default().fields("spec.color=blue"), &rv)
        .await
        .expect("watch")
        .boxed();
    let pp = PatchParams::default();
    shirts
        .patch(
            "shirt2",
            &pp,
            &Patch::Merge(json!({"spec": {"color": "green"}})),
        )
        .await
        .expect("patched");
    shirts
        .patch(
            "shirt3",
            &pp,
            &Patch::Merge(json!({"spec": {"color": "blue"}})),
        )
        .await
        .expect("patched");
    shirts
        .patch(
            "shirt3",
            &pp,
            &Patch::Merge(json!({"spec": {"quantity": 5}})),
        )
        .await
        .expect("patched");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(o)))) => seen.push(format!("ADDED {}", o.name_any())),
            Ok(Ok(Some(WatchEvent::Modified(o)))) => {
                seen.push(format!("MODIFIED {}", o.name_any()))
            }
            Ok(Ok(Some(WatchEvent::Deleted(o)))) => seen.push(format!("DELETED {}", o.name_any())),
            Ok(Ok(Some(WatchEvent::Bookmark(_)))) => {}
            other => panic!("unexpected watch item {other:?}; saw {seen:?}"),
        }
    }
    assert_eq!(
        seen,
        vec!["DELETED shirt2", "ADDED shirt3", "MODIFIED shirt3"]
    );
    kube.shutdown().await;
}

/// Built-in kinds keep the fields kube-apiserver registers for them
/// (kubernetes pkg/apis/core/v1/conversion.go), and the others only the metadata
/// (apimachinery pkg/runtime/conversion.go DefaultMetaV1FieldSelectorConversion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_kinds_keep_their_own_field_selectors() {
    let (kube, client) = start_with(plain()).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    for (name, type_) in [("tls", "kubernetes.io/tls"), ("plain", "Opaque")] {
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": name}, "type": type_,
            "data": {"tls.crt": "", "tls.key": ""},
        }))
        .expect("a Secret");
        secrets
            .create(&PostParams::default(), &s)
            .await
            .expect("created");
    }
    let listed = secrets
        .list(&ListParams::default().fields("type=kubernetes.io/tls"))
        .await
        .expect("list");
    let got: Vec<_> = listed.items.iter().map(|s| s.name_any()).collect();
    assert_eq!(got, vec!["tls"]);
    assert_eq!(
        bad_request(
            secrets
                .list(&ListParams::default().fields("data.tls.crt="))
                .await
        ),
        (
            400,
            "BadRequest".into(),
            "field label not supported: data.tls.crt".into()
        )
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        bad_request(cms.list(&ListParams::default().fields("data.v=1")).await),
        (
            400,
            "BadRequest".into(),
            r#""data.v" is not a known field selector: only "metadata.name", "metadata.namespace""#
                .into()
        )
    );

    // Raw HTTP: the Status body, and the syntax errors of fields.ParseSelector.
    let addr = kube.addr();
    let (code, body) = http_async(
        addr,
        "GET",
        "/api/v1/namespaces/default/configmaps?fieldSelector=spec.foo%3Dx".into(),
        None,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let status: Value = serde_json::from_str(&body).expect("a Status");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(
        status["message"],
        r#""spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace""#
    );
    let (code, body) = http_async(
        addr,
        "GET",
        "/api/v1/namespaces/default/secrets?fieldSelector=type".into(),
        None,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("invalid selector: 'type'; can't understand 'type'"),
        "{body}"
    );
    // An escaped comma is part of the value (fields.EscapeValue).
    let (code, body) = http_async(
        addr,
        "GET",
        "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Dtls%5C%2Cx".into(),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("a list");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));
    // Namespaces: `status.phase`, and no `metadata.namespace`.
    let (code, body) = http_async(
        addr,
        "GET",
        "/api/v1/namespaces?fieldSelector=status.phase%3DActive,metadata.name%3Ddefault".into(),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("a list");
    assert_eq!(list["items"][0]["metadata"]["name"], "default");
    let (code, body) = http_async(
        addr,
        "GET",
        "/api/v1/namespaces?fieldSelector=metadata.namespace%3Dx".into(),
        None,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("field label not supported: metadata.namespace"),
        "{body}"
    );
    kube.shutdown().await;
}

/// Events select on the involved object through either API (kubernetes
/// pkg/registry/core/event/strategy.go, pkg/apis/events/v1/conversion.go).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_select_on_the_object_they_are_about() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event;
    let (kube, client) = start().await;
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    for (name, about, type_) in [("e1", "orders", "Normal"), ("e2", "payments", "Warning")] {
        let e: Event = serde_json::from_value(json!({
            "metadata": {"name": name},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "reportingController": "hdinsight-topic-operator",
            "reportingInstance": "op-0",
            "action": "Reconcile", "reason": "Created", "type": type_,
            "regarding": {"apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic", "name": about, "namespace": "default"},
        }))
        .expect("an Event");
        events
            .create(&PostParams::default(), &e)
            .await
            .expect("created");
    }
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let got = core
        .list(
            &ListParams::default()
                .fields("involvedObject.kind=KafkaTopic,involvedObject.name=orders"),
        )
        .await
        .expect("list");
    assert_eq!(
        got.items.iter().map(|e| e.name_any()).collect::<Vec<_>>(),
        vec!["e1"]
    );
    let got = core
        .list(
            &ListParams::default()
                .fields("type=Warning,reportingComponent=hdinsight-topic-operator"),
        )
        .await
        .expect("list");
    assert_eq!(
        got.items.iter().map(|e| e.name_any()).collect::<Vec<_>>(),
        vec!["e2"]
    );
    let got = events
        .list(&ListParams::default().fields("regarding.name=payments"))
        .await
        .expect("list");
    assert_eq!(
        got.items.iter().map(|e| e.name_any()).collect::<Vec<_>>(),
        vec!["e2"]
    );
    assert_eq!(
        bad_request(
            events
                .list(&ListParams::default().fields("note=hello"))
                .await
        ),
        (
            400,
            "BadRequest".into(),
            "field label not supported: note".into()
        )
    );
    kube.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Delivery delay

/// Reads watch events until `name` shows up with `value`; returns when it arrived and the
/// bookmarks seen before it.
async fn until_seen(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
    name: &str,
    value: &str,
) -> (Instant, Vec<u64>) {
    let mut bookmarks = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(cm) | WatchEvent::Modified(cm))))
                if cm.name_any() == name
                    && cm
                        .data
                        .as_ref()
                        .and_then(|d| d.get("v"))
                        .map(String::as_str)
                        == Some(value) =>
            {
                return (Instant::now(), bookmarks);
            }
            Ok(Ok(Some(WatchEvent::Bookmark(b)))) => {
                bookmarks.push(b.metadata.resource_version.parse().expect("numeric"));
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("unexpected watch item {other:?} waiting for {name}={value}"),
        }
    }
}

/// A watch cache under load lags the writes it reports (kube-apiserver serves watches from
/// the cacher, fed asynchronously from etcd: apiserver pkg/storage/cacher/cacher.go), while
/// the writer's own response, gets and lists show the new state at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_arrive_after_the_delay_while_reads_stay_current() {
    // Long, so that "no delay once it is set to zero" below holds on a busy machine too.
    let delay = Duration::from_secs(3);
    let (kube, client) = start_with(KubeEmulatorConfig {
        watch_delay: delay,
        ..test_config()
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .expect("created");
    let mut stream = api
        .watch(
            // kube-rs asks for bookmarks by default.
            &WatchParams::default(),
            &rv_of(&created).to_string(),
        )
        .await
        .expect("watch")
        .boxed();
    let written_at = Instant::now();
    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": "2"}})),
        )
        .await
        .expect("patched");
    // Reads see the write at once.
    let got = api.get("a").await.expect("get");
    assert_eq!(
        got.data
            .as_ref()
            .and_then(|d| d.get("v"))
            .map(String::as_str),
        Some("2")
    );
    let listed = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(
        listed.items[0]
            .data
            .as_ref()
            .and_then(|d| d.get("v"))
            .map(String::as_str),
        Some("2")
    );
    let (arrived, bookmarks) = until_seen(&mut stream, "a", "2").await;
    assert!(
        arrived.duration_since(written_at) >= delay - Duration::from_millis(20),
        "the event arrived {:?} after the write",
        arrived.duration_since(written_at)
    );
    // Bookmarks (every 200 ms here) kept coming, but never past the event still held back.
    assert!(!bookmarks.is_empty(), "bookmarks flow during the delay");
    assert!(
        bookmarks.iter().all(|b| *b < rv_of(&patched)),
        "a bookmark overtook the delayed event: {bookmarks:?} vs {}",
        rv_of(&patched)
    );

    // The delay changes at run time; order is kept.
    kube.control().set_watch_delay(Duration::ZERO);
    let started = Instant::now();
    for v in ["3", "4", "5"] {
        api.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": v}})),
        )
        .await
        .expect("patched");
    }
    until_seen(&mut stream, "a", "3").await;
    until_seen(&mut stream, "a", "4").await;
    until_seen(&mut stream, "a", "5").await;
    assert!(started.elapsed() < delay, "no delay once it is set to zero");
    kube.shutdown().await;
}

/// A kube-rs reflector behind a delayed watch still converges on the latest state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflector_lags_by_the_delay_and_then_converges() {
    let (kube, client) = start().await;
    kube.control().set_watch_delay(Duration::from_secs(2));
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let (reader, writer) = kube::runtime::reflector::store();
    let stream = watcher(api.clone(), watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while stream.next().await.is_some() {}
    });
    reader
        .wait_until_ready()
        .await
        .expect("the reflector syncs");
    api.create(&PostParams::default(), &config_map("lagging", "1"))
        .await
        .expect("created");
    // Looked at right after the create: well inside the 2 s delay even on a busy machine.
    assert!(
        reader.state().iter().all(|cm| cm.name_any() != "lagging"),
        "the reflector cannot see the object before the delay"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !reader.state().iter().any(|cm| cm.name_any() == "lagging") {
        assert!(Instant::now() < deadline, "the reflector never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    kube.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// History that expires

/// Events older than the history's age are forgotten on their own; resuming from before them
/// is answered like the watch cache does (apiserver pkg/storage/cacher/watch_cache_history.go
/// GetIntervalLocked): an ERROR event with a 410 `Expired` Status,
/// `too old resource version: RV (OLDEST)`. Resuming from a version after them still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_older_than_its_age_is_forgotten() {
    let (kube, client) = start_with(KubeEmulatorConfig {
        // Long enough for two creates and a watch on a busy machine.
        history_max_age: Some(Duration::from_secs(3)),
        ..test_config()
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = api
        .create(&PostParams::default(), &config_map("old", "1"))
        .await
        .expect("created");
    let before = rv_of(&first) - 1;
    let second = api
        .create(&PostParams::default(), &config_map("young", "1"))
        .await
        .expect("created");
    // Still within the age: resuming from before both writes replays both.
    let mut stream = api
        .watch(&WatchParams::default(), &before.to_string())
        .await
        .expect("watch")
        .boxed();
    until_seen(&mut stream, "old", "1").await;
    until_seen(&mut stream, "young", "1").await;
    drop(stream);

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut stream = api
        .watch(&WatchParams::default(), &before.to_string())
        .await
        .expect("watch")
        .boxed();
    // Bounded: a watch that is not answered 410 stays open, and the test must fail, not hang.
    match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("the watch answers within 10 s")
    {
        Ok(Some(WatchEvent::Error(e))) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
            assert_eq!(
                e.message,
                format!("too old resource version: {before} ({})", rv_of(&second))
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // From the newest forgotten change on, nothing is missing: the watch works.
    let mut stream = api
        .watch(&WatchParams::default(), &rv_of(&second).to_string())
        .await
        .expect("watch")
        .boxed();
    api.patch(
        "young",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .expect("patched");
    until_seen(&mut stream, "young", "2").await;
    // Lists never expire.
    api.list(&ListParams::default().at(&before.to_string()))
        .await
        .expect("list");
    kube.shutdown().await;
}

/// The count knob, changed at run time: history beyond it is forgotten at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shrinking_the_history_size_forgets_at_once() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let a = api
        .create(&PostParams::default(), &config_map("a", "1"))
        .await
        .expect("created");
    let b = api
        .create(&PostParams::default(), &config_map("b", "1"))
        .await
        .expect("created");
    kube.control().set_history_size(1);
    let mut stream = api
        .watch(&WatchParams::default(), &(rv_of(&a) - 1).to_string())
        .await
        .expect("watch")
        .boxed();
    // Bounded: a watch that is not answered 410 stays open, and the test must fail, not hang.
    match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("the watch answers within 10 s")
    {
        Ok(Some(WatchEvent::Error(e))) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert_eq!(
                e.message,
                format!(
                    "too old resource version: {} ({})",
                    rv_of(&a) - 1,
                    rv_of(&a)
                )
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // The one retained event is replayed.
    let mut stream = api
        .watch(&WatchParams::default(), &rv_of(&a).to_string())
        .await
        .expect("watch")
        .boxed();
    until_seen(&mut stream, "b", "1").await;
    assert_eq!(kube.control().watch_cache().history_size, Some(1));
    let _ = b;
    kube.shutdown().await;
}

/// kube-rs watchers treat the 410 as "relist" and carry on: with a short history and watches
/// dropped, a watcher still ends up with every object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_relists_after_its_history_expired() {
    let (kube, client) = start().await;
    kube.control()
        .set_history_max_age(Some(Duration::from_millis(300)));
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut stream = watcher(api.clone(), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    api.create(&PostParams::default(), &config_map("first", "1"))
        .await
        .expect("created");
    let mut seen = std::collections::BTreeSet::new();
    while !seen.contains("first") {
        let cm = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("in time")
            .expect("no error")
            .expect("an object");
        seen.insert(cm.name_any());
    }
    // Writes the watcher misses while its watch is down (the stream is not polled, so it
    // cannot resume), older than the history by the time it resumes: it must get 410 and
    // relist to see them.
    kube.control().drop_watches();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for name in ["second", "third"] {
        api.create(&PostParams::default(), &config_map(name, "1"))
            .await
            .expect("created");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut expired = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(seen.contains("second") && seen.contains("third")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(cm))) => {
                seen.insert(cm.name_any());
            }
            Ok(Some(Err(watcher::Error::WatchError(status)))) if status.code == 410 => {
                assert!(
                    status.message.starts_with("too old resource version: "),
                    "{status:?}"
                );
                expired = true;
            }
            Ok(Some(Err(e))) => panic!("unexpected watcher error {e}"),
            Ok(None) => panic!("the watcher ended"),
            Err(_) => panic!("the watcher never relisted; saw {seen:?}"),
        }
    }
    assert!(expired, "the resumed watch was answered with 410 Expired");
    kube.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Control over HTTP and the binary's flags

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_cache_knobs_are_set_over_http() {
    let kube = RunningKube::start(plain(), loopback())
        .await
        .expect("starts");
    let addr = kube.addr();
    let (code, body) = http_async(addr, "GET", "/_emulator/watch-cache".into(), None).await;
    assert_eq!(code, 200);
    let settings: WatchCacheSettings = serde_json::from_str(&body).expect("settings JSON");
    assert_eq!(
        settings,
        WatchCacheSettings {
            delivery_delay_ms: Some(0),
            history_size: Some(10_000),
            history_max_age_ms: Some(0),
        }
    );
    let (code, body) = http_async(
        addr,
        "POST",
        "/_emulator/watch-cache".into(),
        Some(r#"{"delivery_delay_ms": 250, "history_max_age_ms": 1500}"#.into()),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let settings: WatchCacheSettings = serde_json::from_str(&body).expect("settings JSON");
    assert_eq!(settings.delivery_delay_ms, Some(250));
    assert_eq!(settings.history_max_age_ms, Some(1500));
    assert_eq!(
        settings.history_size,
        Some(10_000),
        "unchanged when not sent"
    );
    assert_eq!(kube.control().watch_cache(), settings);
    // 0 lifts the age limit.
    let (code, body) = http_async(
        addr,
        "POST",
        "/_emulator/watch-cache".into(),
        Some(r#"{"history_max_age_ms": 0, "history_size": 5}"#.into()),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let settings: WatchCacheSettings = serde_json::from_str(&body).expect("settings JSON");
    assert_eq!(settings.history_max_age_ms, Some(0));
    assert_eq!(settings.history_size, Some(5));
    // A misspelt knob is refused rather than ignored.
    for bad in [r#"{"delay_ms": 5}"#, "{not json", r#"{"history_size": -1}"#] {
        let (code, body) = http_async(
            addr,
            "POST",
            "/_emulator/watch-cache".into(),
            Some(bad.into()),
        )
        .await;
        assert_eq!(code, 400, "{bad}: {body}");
        let status: Value = serde_json::from_str(&body).expect("a Status");
        assert_eq!(status["reason"], "BadRequest");
    }
    kube.shutdown().await;
}

#[test]
fn the_binary_takes_the_watch_cache_knobs_from_flags_and_environment() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-emulator"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--plain-http",
            "--watch-delay-ms",
            "300",
        ])
        .env("KUBE_EMULATOR_HISTORY_MAX_AGE_SECONDS", "90")
        .env("KUBE_EMULATOR_HISTORY_SIZE", "64")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the URL is printed");
    let addr: SocketAddr = line
        .trim()
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let (code, body) = http(addr, "GET", "/_emulator/watch-cache", None);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 200, "{body}");
    let settings: WatchCacheSettings = serde_json::from_str(&body).expect("settings JSON");
    assert_eq!(
        settings,
        WatchCacheSettings {
            delivery_delay_ms: Some(300),
            history_size: Some(64),
            history_max_age_ms: Some(90_000),
        }
    );
}

/// The wire format, knobs set over HTTP too: an expired watch is a 200 whose only line is an
/// `ERROR` event with the 410 Status (apiserver pkg/storage/cacher/cacher.go answers errors of
/// an accepted watch through `newErrWatcher`), and a delayed event is not on a watch that ends
/// before its delay while a get already shows the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_watches_show_the_delay_and_the_expired_history() {
    let kube = RunningKube::start(plain(), loopback())
        .await
        .expect("starts");
    let addr = kube.addr();
    let create = |name: &'static str| {
        http_async(
            addr,
            "POST",
            "/api/v1/namespaces/default/configmaps".into(),
            Some(format!(
                r#"{{"metadata":{{"name":"{name}"}},"data":{{"v":"1"}}}}"#
            )),
        )
    };
    let rv = |body: &str| -> u64 {
        let v: Value = serde_json::from_str(body).expect("an object");
        v["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .expect("a resourceVersion")
    };
    let (code, body) = create("first").await;
    assert_eq!(code, 201, "{body}");
    let first = rv(&body);
    let (code, _) = http_async(
        addr,
        "POST",
        "/_emulator/watch-cache".into(),
        Some(r#"{"history_max_age_ms": 200}"#.into()),
    )
    .await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, body) = http_async(
        addr,
        "GET",
        format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={}",
            first - 1
        ),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let line = body
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("one event line");
    let event: Value = serde_json::from_str(line).expect("a watch event");
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["kind"], "Status");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
    assert_eq!(
        event["object"]["message"],
        format!("too old resource version: {} ({first})", first - 1)
    );

    let (code, _) = http_async(
        addr,
        "POST",
        "/_emulator/watch-cache".into(),
        Some(r#"{"history_max_age_ms": 0, "delivery_delay_ms": 3000}"#.into()),
    )
    .await;
    assert_eq!(code, 200);
    let watch = http_async(
        addr,
        "GET",
        format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={first}&timeoutSeconds=1"
        ),
        None,
    );
    let write = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (code, body) = create("second").await;
        assert_eq!(code, 201, "{body}");
        let (code, body) = http_async(
            addr,
            "GET",
            "/api/v1/namespaces/default/configmaps/second".into(),
            None,
        )
        .await;
        assert_eq!(code, 200, "a get shows the write at once: {body}");
    };
    let ((code, body), ()) = tokio::join!(watch, write);
    assert_eq!(code, 200);
    assert!(
        !body.contains("\"second\""),
        "the event is still held back when the watch ends: {body}"
    );
    // Resuming from the same version later brings it: it was held back, not lost.
    let (code, _) = http_async(
        addr,
        "POST",
        "/_emulator/watch-cache".into(),
        Some(r#"{"delivery_delay_ms": 0}"#.into()),
    )
    .await;
    assert_eq!(code, 200);
    let (code, body) = http_async(
        addr,
        "GET",
        format!(
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={first}&timeoutSeconds=1"
        ),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        body.contains("\"ADDED\"") && body.contains("\"second\""),
        "{body}"
    );
    kube.shutdown().await;
}
