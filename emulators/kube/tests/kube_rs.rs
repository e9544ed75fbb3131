//! kube-rs 5 as a client: the behaviour a controller relies on.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube_emulator::{KubeEmulatorConfig, KubeFaults};
use serde_json::json;

#[tokio::test]
async fn custom_resources_round_trip_through_every_verb() {
    let (kube, client) = start().await;
    install_crds(&client).await;
    create_namespace(&client, "kafka").await;
    let api = topics(&client, "kafka");

    let created = api
        .create(&PostParams::default(), &topic("orders", 3))
        .await
        .expect("created");
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let rv: u64 = created
        .metadata
        .resource_version
        .as_deref()
        .expect("rv")
        .parse()
        .expect("numeric rv");

    let got = api.get("orders").await.expect("get");
    assert_eq!(got.data["spec"]["partitions"], 3);

    let list = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
    let list_rv: u64 = list
        .metadata
        .resource_version
        .as_deref()
        .expect("list rv")
        .parse()
        .expect("numeric");
    assert!(list_rv >= rv);

    let mut replaced = got.clone();
    replaced.data["spec"]["managementPolicy"] = json!("Observe");
    let replaced = api
        .replace("orders", &PostParams::default(), &replaced)
        .await
        .expect("replace");
    assert_eq!(replaced.data["spec"]["managementPolicy"], "Observe");
    assert_eq!(replaced.metadata.generation, Some(2));

    let patched = api
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"managementPolicy": "Create"}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(patched.data["spec"]["managementPolicy"], "Create");

    let json_patched = api
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([{"op": "replace", "path": "/spec/managementPolicy", "value": "Observe"}]))
                    .expect("a JSON patch"),
            ),
        )
        .await
        .expect("json patch");
    assert_eq!(json_patched.data["spec"]["managementPolicy"], "Observe");

    let applied = api
        .patch(
            "audit",
            &PatchParams::apply("test-manager").force(),
            &Patch::Apply(json!({
                "apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic",
                "metadata": {"name": "audit"},
                "spec": {"partitions": 1, "replicationFactor": 2}
            })),
        )
        .await
        .expect("apply creates");
    assert_eq!(applied.metadata.generation, Some(1));
    let managers: Vec<_> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, vec!["test-manager".to_string()]);

    api.delete("orders", &DeleteParams::default())
        .await
        .expect("delete");
    let err = api_error(api.get("orders").await);
    assert_eq!(err.code, 404);
    assert_eq!(
        err.message,
        "kafkatopics.kafka.hdinsight.dev \"orders\" not found"
    );
    assert_eq!(err.reason, "NotFound");
    kube.shutdown().await;
}

#[tokio::test]
async fn stale_writes_conflict_and_duplicates_already_exist() {
    let (kube, client) = start().await;
    install_crds(&client).await;
    create_namespace(&client, "kafka").await;
    let api = topics(&client, "kafka");
    api.create(&PostParams::default(), &topic("orders", 3))
        .await
        .expect("created");

    let mut fetched = api.get("orders").await.expect("get");
    fetched.metadata.name = Some("copy".into());
    let err = api_error(api.create(&PostParams::default(), &fetched).await);
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            400,
            "resourceVersion should not be set on objects to be created"
        )
    );

    let dup = api_error(
        api.create(&PostParams::default(), &topic("orders", 3))
            .await,
    );
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(
        dup.message,
        "kafkatopics.kafka.hdinsight.dev \"orders\" already exists"
    );

    let first = api.get("orders").await.expect("get");
    let mut a = first.clone();
    a.data["spec"]["managementPolicy"] = json!("Observe");
    api.replace("orders", &PostParams::default(), &a)
        .await
        .expect("first writer wins");
    let mut b = first.clone();
    b.data["spec"]["managementPolicy"] = json!("Create");
    let err = api_error(api.replace("orders", &PostParams::default(), &b).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on kafkatopics.kafka.hdinsight.dev \"orders\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // A merge patch carrying a stale resourceVersion is a precondition too.
    let stale = first.metadata.resource_version.clone().expect("rv");
    let err = api_error(
        api.patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": stale}, "spec": {"managementPolicy": "Create"}})),
        )
        .await,
    );
    assert_eq!(err.code, 409);

    // Custom resources cannot be replaced without a resourceVersion.
    let mut unconditional = first.clone();
    unconditional.metadata.resource_version = None;
    let err = api_error(
        api.replace("orders", &PostParams::default(), &unconditional)
            .await,
    );
    assert_eq!(err.code, 422);
    kube.shutdown().await;
}

#[tokio::test]
async fn generation_follows_spec_changes_only() {
    let (kube, client) = start().await;
    install_crds(&client).await;
    create_namespace(&client, "kafka").await;
    let api = topics(&client, "kafka");
    api.create(&PostParams::default(), &topic("orders", 3))
        .await
        .expect("created");

    let labelled = api
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
        )
        .await
        .expect("label patch");
    assert_eq!(
        labelled.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );

    let status = api
        .patch_status(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"partitions": 3}})),
        )
        .await
        .expect("status patch");
    assert_eq!(
        status.metadata.generation,
        Some(1),
        "status changes keep the generation"
    );

    let spec = api
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"managementPolicy": "Observe"}})),
        )
        .await
        .expect("spec patch");
    assert_eq!(spec.metadata.generation, Some(2));

    let rv_before = spec.metadata.resource_version.clone();
    let same = api
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"managementPolicy": "Observe"}})),
        )
        .await
        .expect("no-op patch");
    assert_eq!(
        same.metadata.resource_version, rv_before,
        "a no-op write changes nothing"
    );
    kube.shutdown().await;
}

#[tokio::test]
async fn status_subresource_is_separate_both_ways() {
    let (kube, client) = start().await;
    install_crds(&client).await;
    create_namespace(&client, "kafka").await;
    let api = topics(&client, "kafka");
    let mut with_status = topic("orders", 3);
    with_status.data["status"] = json!({"partitions": 99});
    let created = api
        .create(&PostParams::default(), &with_status)
        .await
        .expect("created");
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create"
    );

    let main = api
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"managementPolicy": "Observe"}, "status": {"partitions": 4}}),
            ),
        )
        .await
        .expect("main patch");
    assert_eq!(main.data["spec"]["managementPolicy"], "Observe");
    assert!(
        main.data.get("status").is_none(),
        "the main resource ignores status"
    );

    let status = api
        .patch_status(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 100}, "status": {"partitions": 4}})),
        )
        .await
        .expect("status patch");
    assert_eq!(status.data["status"]["partitions"], 4);
    assert_eq!(
        status.data["spec"]["partitions"], 3,
        "the status subresource ignores spec"
    );

    let stale = main.metadata.resource_version.clone().expect("rv");
    let err = api_error(
        api.patch_status(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": stale}, "status": {"partitions": 5}}),
            ),
        )
        .await,
    );
    assert_eq!(
        err.code, 409,
        "a stale resourceVersion in a status patch conflicts"
    );

    let stats = kube.control().stats();
    assert_eq!(stats.writes_to("kafkatopics", Some("status")), 2);
    assert_eq!(stats.writes_to("kafkatopics", None), 2);
    kube.shutdown().await;
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (name, tier) in [("a", "web"), ("b", "api"), ("c", "db")] {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"tier": tier, "app": "shop"}},
            "data": {"k": "v"}
        }))
        .expect("a ConfigMap");
        api.create(&PostParams::default(), &cm)
            .await
            .expect("created");
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect()
    };
    let lp = |s: &str| ListParams::default().labels(s);
    assert_eq!(
        names(api.list(&lp("tier=web")).await.expect("list")),
        vec!["a"]
    );
    assert_eq!(
        names(api.list(&lp("tier!=web")).await.expect("list")),
        vec!["b", "c"]
    );
    assert_eq!(
        names(api.list(&lp("tier in (api,db)")).await.expect("list")),
        vec!["b", "c"]
    );
    assert_eq!(
        names(api.list(&lp("tier notin (api,db)")).await.expect("list")),
        vec!["a"]
    );
    assert_eq!(names(api.list(&lp("app")).await.expect("list")).len(), 3);
    assert!(names(api.list(&lp("!app")).await.expect("list")).is_empty());
    let first = api
        .list(&ListParams::default().limit(2))
        .await
        .expect("first page");
    let token = first.metadata.continue_.clone().expect("a continue token");
    assert_eq!(first.metadata.remaining_item_count, Some(1));
    let first_rv = first.metadata.resource_version.clone();
    assert_eq!(names(first), vec!["a", "b"]);
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("second page");
    assert!(
        second.metadata.continue_.is_none(),
        "the last page has no token"
    );
    assert_eq!(
        second.metadata.resource_version, first_rv,
        "pages share the first page's version"
    );
    assert_eq!(names(second), vec!["c"]);
    let by_name = ListParams::default().fields("metadata.name=b");
    assert_eq!(names(api.list(&by_name).await.expect("list")), vec!["b"]);
    let by_ns = ListParams::default().fields("metadata.namespace=default");
    assert_eq!(
        names(
            Api::<ConfigMap>::all(client.clone())
                .list(&by_ns)
                .await
                .expect("list")
        )
        .len(),
        3
    );
    kube.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (kube, client) = start().await;
    install_crds(&client).await;
    create_namespace(&client, "kafka").await;
    let api = topics(&client, "kafka");
    let mut t = topic("orders", 3);
    t.metadata.finalizers = Some(vec!["kafka.hdinsight.dev/topic".into()]);
    api.create(&PostParams::default(), &t)
        .await
        .expect("created");

    api.delete("orders", &DeleteParams::default())
        .await
        .expect("delete accepted");
    let pending = api.get("orders").await.expect("still there");
    assert!(pending.metadata.deletion_timestamp.is_some());

    let late = api_error(
        api.patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["kafka.hdinsight.dev/topic", "late/one"]}}),
            ),
        )
        .await,
    );
    assert_eq!(
        late.code, 422,
        "no new finalizers during deletion: {}",
        late.message
    );

    api.patch(
        "orders",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("finalizer removed");
    assert_eq!(api_error(api.get("orders").await).code, 404);
    kube.shutdown().await;
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_not_found() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "x"}})).expect("a ConfigMap");
    let err = api_error(api.create(&PostParams::default(), &cm).await);
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"nope\" not found")
    );
    kube.shutdown().await;
}

#[tokio::test]
async fn raw_watch_delivers_changes_and_bookmarks() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let start_rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let wp = WatchParams::default().timeout(30);
    let mut stream = api.watch(&wp, &start_rv).await.expect("watch").boxed();

    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "w"}, "data": {"a": "1"}})).expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("created");
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .expect("patched");
    api.delete("w", &DeleteParams::default())
        .await
        .expect("deleted");

    let mut seen = Vec::new();
    let mut bookmark = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while (seen.len() < 3 || !bookmark) && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(o)))) => {
                seen.push(format!("ADDED {}", o.data.expect("data")["a"]))
            }
            Ok(Ok(Some(WatchEvent::Modified(o)))) => {
                seen.push(format!("MODIFIED {}", o.data.expect("data")["a"]))
            }
            Ok(Ok(Some(WatchEvent::Deleted(_)))) => seen.push("DELETED".into()),
            Ok(Ok(Some(WatchEvent::Bookmark(b)))) => {
                let rv: u64 = b.metadata.resource_version.parse().expect("numeric");
                assert!(rv >= start_rv.parse::<u64>().expect("numeric"));
                bookmark = true;
            }
            other => panic!("unexpected watch item {other:?}"),
        }
    }
    assert_eq!(seen, vec!["ADDED 1", "MODIFIED 2", "DELETED"]);
    assert!(bookmark, "bookmarks arrive when allowed");
    kube.shutdown().await;
}

#[tokio::test]
async fn watching_from_a_compacted_version_gets_410() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    kube.control().compact();
    let mut stream = api
        .watch(&WatchParams::default(), "1")
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
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // Lists always succeed, whatever the version.
    api.list(&ListParams::default().at("1"))
        .await
        .expect("list");
    kube.shutdown().await;
}

async fn wait_for_names(
    stream: &mut (impl futures::Stream<Item = Result<ConfigMap, watcher::Error>> + Unpin),
    seen: &mut BTreeSet<String>,
    want: &[&str],
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !want.iter().all(|w| seen.contains(*w)) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(cm))) => {
                seen.insert(cm.metadata.name.unwrap_or_default());
            }
            // The watcher reports the 410 and relists on its own.
            Ok(Some(Err(_))) => {}
            Ok(None) => panic!("the watcher stream ended"),
            Err(_) => panic!("timed out waiting for {want:?}; saw {seen:?}"),
        }
    }
}

#[tokio::test]
async fn watcher_recovers_from_dropped_watches_and_compaction() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut stream = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    let create = |name: &'static str| {
        let api = api.clone();
        async move {
            let cm: ConfigMap =
                serde_json::from_value(json!({"metadata": {"name": name}})).expect("cm");
            api.create(&PostParams::default(), &cm)
                .await
                .expect("created");
        }
    };
    let mut seen = BTreeSet::new();
    create("one").await;
    wait_for_names(&mut stream, &mut seen, &["one"]).await;

    let opened = kube.control().stats().watches_opened;
    kube.control().drop_watches();
    create("two").await;
    wait_for_names(&mut stream, &mut seen, &["two"]).await;
    assert!(
        kube.control().stats().watches_opened > opened,
        "the watcher reconnected"
    );

    let lists = kube
        .control()
        .stats()
        .requests
        .get("list")
        .copied()
        .unwrap_or(0);
    kube.control().compact();
    kube.control().drop_watches();
    create("three").await;
    wait_for_names(&mut stream, &mut seen, &["three"]).await;
    assert!(
        kube.control()
            .stats()
            .requests
            .get("list")
            .copied()
            .unwrap_or(0)
            > lists,
        "after 410 the watcher relisted"
    );
    kube.shutdown().await;
}

#[tokio::test]
async fn leases_support_leader_election_writes() {
    let (kube, client) = start().await;
    let api: Api<Lease> = Api::namespaced(client.clone(), "default");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "operator-leader"},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15,
                 "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": "2026-01-01T00:00:00.000000Z"}
    }))
    .expect("a Lease");
    let created = api
        .create(&PostParams::default(), &lease)
        .await
        .expect("created");

    let mut renewed = created.clone();
    if let Some(spec) = renewed.spec.as_mut() {
        spec.holder_identity = Some("pod-b".into());
    }
    let renewed = api
        .replace("operator-leader", &PostParams::default(), &renewed)
        .await
        .expect("renewed");
    assert_eq!(
        renewed.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("pod-b")
    );

    // A candidate holding the old version loses the race.
    let err = api_error(
        api.replace("operator-leader", &PostParams::default(), &created)
            .await,
    );
    assert_eq!(err.code, 409);
    assert_eq!(kube.control().stats().writes_to("leases", None), 3);
    kube.shutdown().await;
}

#[tokio::test]
async fn discovery_serves_kinds_from_new_crds() {
    let (kube, client) = start().await;
    install_crds(&client).await;
    let discovery = kube::Discovery::new(client.clone())
        .run()
        .await
        .expect("discovery");
    let (resource, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "kafka.hdinsight.dev",
            "v1alpha1",
            "KafkaTopic",
        ))
        .expect("KafkaTopic is served");
    assert_eq!(resource.plural, "kafkatopics");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(caps.subresources.iter().any(|(r, _)| r.plural == "status"));
    assert!(discovery.has_group("coordination.k8s.io"));
    assert!(discovery.has_group("events.k8s.io"));

    // Replacing a CRD with itself changes nothing, not even its condition times.
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .get("kafkatopics.kafka.hdinsight.dev")
        .await
        .expect("the CRD");
    let established = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Established"))
        .map(|c| c.status.clone());
    assert_eq!(established.as_deref(), Some("True"));
    let same = crds
        .replace(
            "kafkatopics.kafka.hdinsight.dev",
            &PostParams::default(),
            &crd,
        )
        .await
        .expect("replaced");
    assert_eq!(
        same.metadata.resource_version,
        crd.metadata.resource_version
    );
    kube.shutdown().await;
}

#[tokio::test]
async fn admission_rejects_invalid_custom_resources() {
    let (kube, client) = start().await;
    install_crds(&client).await;
    create_namespace(&client, "kafka").await;
    let api = topics(&client, "kafka");
    let err = api_error(api.create(&PostParams::default(), &topic("bad", 0)).await);
    assert_eq!(err.code, 422);
    assert_eq!(err.reason, "Invalid");
    assert!(
        err.message
            .starts_with("KafkaTopic.kafka.hdinsight.dev \"bad\" is invalid: spec.partitions"),
        "{}",
        err.message
    );
    kube.shutdown().await;
}

#[tokio::test]
async fn injected_faults_fail_writes_and_are_counted() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "f"}})).expect("cm");
    kube.control().set_faults(KubeFaults {
        write_error_status: Some(500),
        resources: vec!["configmaps".into()],
        ..KubeFaults::default()
    });
    assert_eq!(
        api_error(api.create(&PostParams::default(), &cm).await).code,
        500
    );
    // Other resources are untouched, reads are untouched.
    api.list(&ListParams::default())
        .await
        .expect("reads still work");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let s: Secret =
        serde_json::from_value(json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}))
            .expect("secret");
    let stored = secrets
        .create(&PostParams::default(), &s)
        .await
        .expect("secrets are not faulted");
    assert_eq!(
        stored.data.expect("data").get("k").map(|b| b.0.clone()),
        Some(b"v".to_vec()),
        "stringData lands in data"
    );
    kube.control().clear_faults();
    api.create(&PostParams::default(), &cm)
        .await
        .expect("works again");
    let stats = kube.control().stats();
    assert_eq!(stats.writes_to("configmaps", None), 2);
    assert_eq!(stats.requests.get("create").copied(), Some(3));
    kube.shutdown().await;
}

#[tokio::test]
async fn a_configured_token_is_required() {
    let config = KubeEmulatorConfig {
        token: Some("s3cret-token".into()),
        ..test_config()
    };
    let (kube, client) = start_with(config).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .expect("the kubeconfig carries the token");

    let yaml = kube.kubeconfig_yaml().replace("s3cret-token", "wrong");
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).expect("parses");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let wrong = kube::Client::try_from(config).expect("client");
    let api: Api<ConfigMap> = Api::namespaced(wrong, "default");
    assert_eq!(api_error(api.list(&ListParams::default()).await).code, 401);
    kube.shutdown().await;
}

#[tokio::test]
async fn plain_http_serves_the_same_api() {
    let config = KubeEmulatorConfig {
        tls: false,
        ..test_config()
    };
    let (kube, client) = start_with(config).await;
    assert!(kube.base_url().starts_with("http://127.0.0.1:"));
    assert!(kube.ca_pem().is_none());
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.list(&ListParams::default())
        .await
        .expect("list over http");
    kube.shutdown().await;
}

#[tokio::test]
async fn events_written_as_events_k8s_io_are_core_events_too() {
    let (kube, client) = start().await;
    let v1: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "default");
    let ev: k8s_openapi::api::events::v1::Event = serde_json::from_value(json!({
        "metadata": {"generateName": "orders."},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "hdinsight-topic-operator",
        "reportingInstance": "pod-a",
        "action": "Reconcile", "reason": "Created", "type": "Normal", "note": "topic created",
        "regarding": {"kind": "KafkaTopic", "name": "orders", "namespace": "default"}
    }))
    .expect("an Event");
    let created = v1
        .create(&PostParams::default(), &ev)
        .await
        .expect("created");
    let name = created.metadata.name.expect("generated name");
    assert!(name.starts_with("orders."));
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, "default");
    let seen = core
        .get(&name)
        .await
        .expect("the same event through core v1");
    assert_eq!(seen.message.as_deref(), Some("topic created"));
    assert_eq!(seen.involved_object.name.as_deref(), Some("orders"));
    assert_eq!(kube.control().stats().writes_to("events", None), 1);
    kube.shutdown().await;
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for name in ["s1", "s2"] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("cm");
        api.create(&PostParams::default(), &cm)
            .await
            .expect("created");
    }
    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initial = BTreeSet::new();
    let deadline = Duration::from_secs(10);
    loop {
        match tokio::time::timeout(deadline, stream.try_next()).await {
            Ok(Ok(Some(watcher::Event::InitApply(cm)))) => {
                initial.insert(cm.metadata.name.unwrap_or_default());
            }
            Ok(Ok(Some(watcher::Event::InitDone))) => break,
            Ok(Ok(Some(_))) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        initial,
        BTreeSet::from(["s1".to_string(), "s2".to_string()])
    );
    assert_eq!(
        kube.control().stats().requests.get("list"),
        None,
        "no list request was needed"
    );
    kube.shutdown().await;
}

#[tokio::test]
async fn metadata_only_reads_and_watches() {
    let (kube, client) = start().await;
    let api: Api<Secret> = Api::namespaced(client.clone(), "default");
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds", "labels": {"a": "b"}},
        "stringData": {"clientSecret": "do-not-show"}
    }))
    .expect("secret");
    api.create(&PostParams::default(), &s)
        .await
        .expect("created");
    let meta = api.get_metadata("creds").await.expect("metadata");
    assert_eq!(
        meta.metadata
            .labels
            .and_then(|l| l.get("a").cloned())
            .as_deref(),
        Some("b")
    );
    let list = api
        .list_metadata(&ListParams::default())
        .await
        .expect("metadata list");
    assert_eq!(list.items.len(), 1);
    let raw = client
        .request_text(
            http::Request::get("/api/v1/namespaces/default/secrets")
                .header("Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json")
                .body(Vec::new())
                .expect("a request"),
        )
        .await
        .expect("raw list");
    assert!(
        raw.contains("PartialObjectMetadataList") && !raw.contains("clientSecret"),
        "{raw}"
    );

    let meta_api: Api<kube::core::PartialObjectMeta<Secret>> =
        Api::namespaced(client.clone(), "default");
    let mut stream = watcher(meta_api, watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("in time")
        .expect("no error")
        .expect("an object");
    assert_eq!(first.metadata.name.as_deref(), Some("creds"));
    kube.shutdown().await;
}

#[tokio::test]
async fn apply_removes_fields_its_manager_stops_applying() {
    let (kube, client) = start().await;
    install_crds(&client).await;
    create_namespace(&client, "kafka").await;
    let api = topics(&client, "kafka");
    api.create(&PostParams::default(), &topic("orders", 3))
        .await
        .expect("created");
    let pp = PatchParams::apply("status-writer").force();
    let first = json!({
        "apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": {"name": "orders"},
        "status": {"partitions": 3, "missingSince": "2026-01-01T00:00:00Z"}
    });
    let applied = api
        .patch_status("orders", &pp, &Patch::Apply(&first))
        .await
        .expect("status applied");
    assert_eq!(
        applied.data["status"]["missingSince"],
        "2026-01-01T00:00:00Z"
    );
    let second = json!({
        "apiVersion": "kafka.hdinsight.dev/v1alpha1", "kind": "KafkaTopic",
        "metadata": {"name": "orders"},
        "status": {"partitions": 3}
    });
    let applied = api
        .patch_status("orders", &pp, &Patch::Apply(&second))
        .await
        .expect("status applied");
    assert!(
        applied.data["status"].get("missingSince").is_none(),
        "{:?}",
        applied.data
    );
    assert_eq!(applied.data["status"]["partitions"], 3);
    let rv = applied.metadata.resource_version.clone();
    let again = api
        .patch_status("orders", &pp, &Patch::Apply(&second))
        .await
        .expect("re-applied");
    assert_eq!(
        again.metadata.resource_version, rv,
        "re-applying the same configuration is a no-op"
    );
    kube.shutdown().await;
}

/// A minimal controller marking every topic Ready for its generation, as the operator does.
async fn mark_ready(
    topic: std::sync::Arc<kube::api::DynamicObject>,
    client: std::sync::Arc<kube::Client>,
) -> Result<kube::runtime::controller::Action, kube::Error> {
    let ns = topic.metadata.namespace.clone().unwrap_or_default();
    let name = topic.metadata.name.clone().unwrap_or_default();
    let generation = topic.metadata.generation.unwrap_or(0);
    let ready_for = topic
        .data
        .pointer("/status/observedGeneration")
        .and_then(serde_json::Value::as_i64);
    if ready_for != Some(generation) {
        topics(&client, &ns)
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"observedGeneration": generation, "conditions": [{
                    "type": "Ready", "status": "True", "reason": "Created", "message": "ok",
                    "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation
                }]}})),
            )
            .await?;
    }
    Ok(kube::runtime::controller::Action::await_change())
}

async fn wait_until_ready(api: &Api<kube::api::DynamicObject>, names: &[&str], generation: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = api.list(&ListParams::default()).await.expect("list");
        let ready = names.iter().all(|n| {
            list.items.iter().any(|t| {
                t.metadata.name.as_deref() == Some(*n)
                    && t.data
                        .pointer("/status/observedGeneration")
                        .and_then(serde_json::Value::as_i64)
                        == Some(generation)
            })
        });
        if ready {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "topics {names:?} never became Ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_converges_and_survives_watch_faults() {
    let (kube, client) = start().await;
    install_crds(&client).await;
    create_namespace(&client, "kafka").await;
    let api = topics(&client, "kafka");
    let all: Api<kube::api::DynamicObject> = Api::all_with(client.clone(), &topic_resource());
    let controller =
        kube::runtime::Controller::new_with(all, watcher::Config::default(), topic_resource())
            .run(
                mark_ready,
                |_, _, _| kube::runtime::controller::Action::requeue(Duration::from_millis(100)),
                std::sync::Arc::new(client.clone()),
            )
            .for_each(|_| async {});
    let running = tokio::spawn(controller);

    for name in ["a", "b", "c"] {
        api.create(&PostParams::default(), &topic(name, 1))
            .await
            .expect("created");
    }
    wait_until_ready(&api, &["a", "b", "c"], 1).await;

    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"managementPolicy": "Observe"}})),
    )
    .await
    .expect("spec change");
    wait_until_ready(&api, &["a"], 2).await;

    kube.control().drop_watches();
    api.create(&PostParams::default(), &topic("d", 1))
        .await
        .expect("created");
    wait_until_ready(&api, &["d"], 1).await;

    kube.control().compact();
    kube.control().drop_watches();
    api.create(&PostParams::default(), &topic("e", 1))
        .await
        .expect("created");
    wait_until_ready(&api, &["e"], 1).await;

    // Once converged, the controller's own status writes do not retrigger more writes.
    let writes = kube
        .control()
        .stats()
        .writes_to("kafkatopics", Some("status"));
    assert_eq!(writes, 6, "one status write per topic and generation");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        kube.control()
            .stats()
            .writes_to("kafkatopics", Some("status")),
        writes
    );
    running.abort();
    kube.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_writes_reach_a_watcher() {
    let n: usize = std::env::var("KUBE_EMULATOR_LOAD_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut stream = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    let started = std::time::Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(
                    json!({"metadata": {"name": format!("cm-{i}")}, "data": {"i": i.to_string()}}),
                )
                .expect("cm");
                api.create(&PostParams::default(), &cm)
                    .await
                    .expect("created");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let created = started.elapsed();
    let mut seen = BTreeSet::new();
    while seen.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), stream.next()).await {
            Ok(Some(Ok(cm))) => {
                seen.insert(cm.metadata.name.unwrap_or_default());
            }
            Ok(Some(Err(_))) => {}
            other => panic!("watcher stopped after {} objects: {other:?}", seen.len()),
        }
    }
    let list = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), n);
    eprintln!(
        "{n} creates in {created:?}, all watched in {:?}",
        started.elapsed()
    );
    kube.shutdown().await;
}

#[tokio::test]
async fn the_kube_rs_recorder_publishes_and_aggregates_events() {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let (kube, client) = start().await;
    let reporter = Reporter {
        controller: "hdinsight-topic-operator".into(),
        instance: Some("pod-a".into()),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let regarding = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some("target".into()),
        namespace: Some("default".into()),
        ..Default::default()
    };
    let ev = Event {
        type_: EventType::Warning,
        reason: "ProxyUnreachable".into(),
        note: Some("the proxy did not answer".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder
        .publish(&ev, &regarding)
        .await
        .expect("first publish creates");
    recorder
        .publish(&ev, &regarding)
        .await
        .expect("second publish patches the series");
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client, "default");
    let events = core.list(&ListParams::default()).await.expect("list");
    assert_eq!(
        events.items.len(),
        1,
        "the repeat aggregates into one event"
    );
    let only = &events.items[0];
    assert_eq!(only.reason.as_deref(), Some("ProxyUnreachable"));
    assert_eq!(only.series.as_ref().and_then(|s| s.count), Some(2));
    let stats = kube.control().stats();
    assert_eq!(stats.writes_to("events", None), 2);
    kube.shutdown().await;
}

#[tokio::test]
async fn deleting_a_namespace_waits_for_finalizers_of_its_objects() {
    use k8s_openapi::api::core::v1::Namespace;
    let (kube, client) = start().await;
    create_namespace(&client, "team").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .expect("cm");
    let free: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "free"}})).expect("cm");
    cms.create(&PostParams::default(), &held)
        .await
        .expect("created");
    cms.create(&PostParams::default(), &free)
        .await
        .expect("created");

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .expect("delete accepted");
    let ns = namespaces.get("team").await.expect("still there");
    assert_eq!(
        ns.status.and_then(|s| s.phase).as_deref(),
        Some("Terminating")
    );
    assert_eq!(
        api_error(cms.get("free").await).code,
        404,
        "objects without finalizers go at once"
    );
    let late: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "late"}})).expect("cm");
    assert_eq!(
        api_error(cms.create(&PostParams::default(), &late).await).code,
        403
    );

    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("finalizer removed");
    assert_eq!(
        api_error(namespaces.get("team").await).code,
        404,
        "the namespace goes with its last object"
    );
    assert_eq!(
        api_error(namespaces.delete("default", &DeleteParams::default()).await).code,
        403
    );
    kube.shutdown().await;
}

#[tokio::test]
async fn selector_watches_see_objects_leave_and_enter_the_selection() {
    let (kube, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = api
        .watch(&WatchParams::default().labels("app=shop").timeout(30), &rv)
        .await
        .expect("watch")
        .boxed();
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "m", "labels": {"app": "shop"}}}))
            .expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("created");
    api.patch(
        "m",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .expect("relabelled");
    api.patch(
        "m",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "shop"}}})),
    )
    .await
    .expect("relabelled back");
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(_)))) => kinds.push("ADDED"),
            Ok(Ok(Some(WatchEvent::Modified(_)))) => kinds.push("MODIFIED"),
            Ok(Ok(Some(WatchEvent::Deleted(_)))) => kinds.push("DELETED"),
            Ok(Ok(Some(WatchEvent::Bookmark(_)))) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds, ["ADDED", "DELETED", "ADDED"]);
    kube.shutdown().await;
}

#[tokio::test]
async fn deleting_a_crd_stops_serving_its_kind() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let (kube, client) = start().await;
    install_crds(&client).await;
    create_namespace(&client, "kafka").await;
    let api = topics(&client, "kafka");
    api.create(&PostParams::default(), &topic("orders", 1))
        .await
        .expect("created");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("kafkatopics.kafka.hdinsight.dev", &DeleteParams::default())
        .await
        .expect("deleted");
    assert_eq!(api_error(api.list(&ListParams::default()).await).code, 404);
    install_crds_again_without_topics(&client).await;
    let list = api
        .list(&ListParams::default())
        .await
        .expect("served again");
    assert!(
        list.items.is_empty(),
        "the old objects went with the old CRD"
    );
    kube.shutdown().await;
}

async fn install_crds_again_without_topics(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let text =
        std::fs::read_to_string(repo_dir().join("crds/kafkatopics.yaml")).expect("the CRD file");
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).expect("a CRD");
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .expect("re-created");
}

// kube-apiserver refuses a CRD whose rules do not type-check against the structural schema
// (apiextensions-apiserver validation.go: "compilation failed: ..." at
// spec.validation.openAPIV3Schema...x-kubernetes-validations[i].rule), and accepts it once the
// rule reads a declared field.
#[tokio::test]
async fn crds_with_rules_that_do_not_compile_are_refused() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let (kube, client) = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = |rule: &str| -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"plural": "widgets", "kind": "Widget"},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object",
                        "properties": {"size": {"type": "integer"}},
                        "x-kubernetes-validations": [{"rule": rule}]}},
                }}}],
            },
        }))
        .expect("a CRD")
    };
    let err = api_error(
        crds.create(&PostParams::default(), &crd("self.colour == 'red'"))
            .await,
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains(
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.colour == 'red'\""
        ),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains("compilation failed: ERROR: <input>:1:5: undefined field 'colour'"),
        "{}",
        err.message
    );
    let err = api_error(
        crds.create(&PostParams::default(), &crd("self.size == 'red'"))
            .await,
    );
    assert!(
        err.message
            .contains("found no matching overload for '_==_' applied to '(int, string)'"),
        "{}",
        err.message
    );
    crds.create(&PostParams::default(), &crd("self.size <= 10"))
        .await
        .expect("a rule that type-checks is accepted");
    kube.shutdown().await;
}

/// A client whose kubeconfig carries `token` (accepted: the emulator runs without one).
async fn client_with_token(kube: &kube_emulator::RunningKube, token: &str) -> kube::Client {
    let yaml = kube
        .kubeconfig_yaml()
        .replace("token: \"kube-emulator\"", &format!("token: \"{token}\""));
    assert!(yaml.contains(token), "{yaml}");
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    kube::Client::try_from(config).expect("client")
}

#[tokio::test]
async fn a_stalled_client_is_partitioned_off_and_its_requests_never_take_effect() {
    let (kube, _) = start().await;
    let a = client_with_token(&kube, "replica-a").await;
    let b = client_with_token(&kube, "replica-b").await;
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("cm")
    };
    kube.control().stall_client("replica-a", &["configmaps"]);
    let api_a: Api<ConfigMap> = Api::namespaced(a.clone(), "default");
    let api_b: Api<ConfigMap> = Api::namespaced(b.clone(), "default");
    // The stalled client's write hangs; the other client and other resources are unaffected.
    let held =
        tokio::spawn(async move { api_a.create(&PostParams::default(), &cm("from-a")).await });
    api_b
        .create(&PostParams::default(), &cm("from-b"))
        .await
        .expect("the other client writes");
    let leases: Api<Lease> = Api::namespaced(a.clone(), "default");
    assert!(
        leases.list(&Default::default()).await.is_ok(),
        "other resources answer"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.is_finished(), "the stalled write is held");
    assert!(
        api_b.get_opt("from-a").await.expect("get").is_none(),
        "the stalled write did not take effect"
    );
    let writes = kube.control().stats().applied_writes;
    assert_eq!(writes.len(), 1, "{writes:?}");
    // The partition heals: the held request is answered 503 (a client may retry it).
    kube.control().clear_faults();
    let _ = held.await.expect("task");
    assert_eq!(
        (
            writes[0].client.as_str(),
            writes[0].resource.as_str(),
            writes[0].name.as_deref()
        ),
        ("replica-b", "configmaps", None)
    );
}

// On create kube-apiserver replaces the status before validating (apiextensions-apiserver
// pkg/registry/customresourcedefinition/strategy.go PrepareForCreate: the status is emptied and
// storedVersions set to the storage version), so a client's status is never refused.
#[tokio::test]
async fn a_crd_created_with_a_stale_status_is_judged_on_its_spec() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let (kube, client) = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for stored in [json!([]), json!(["v0"])] {
        let name = if stored == json!([]) {
            "gadgets"
        } else {
            "gizmos"
        };
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{name}.example.com")},
            "spec": {
                "group": "example.com",
                "names": {"plural": name, "kind": name.to_uppercase()},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
                }}}],
            },
            "status": {"storedVersions": stored},
        }))
        .expect("a CRD");
        crds.create(&PostParams::default(), &crd)
            .await
            .unwrap_or_else(|e| panic!("status {stored} refused: {e}"));
    }
    kube.shutdown().await;
}
