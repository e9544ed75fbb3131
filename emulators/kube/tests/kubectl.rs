//! kubectl 1.32 as a client. Without kubectl these tests fail under `CI` and are skipped
//! visibly elsewhere (the workspace's shared `tests/require`).

mod common;
#[path = "../../../tests/require/mod.rs"]
mod require;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use kube::api::{Patch, PatchParams};
use kube_emulator::RunningKube;
use serde_json::json;

struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
    cache: PathBuf,
    dir: PathBuf,
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    /// None (after a visible skip; a failure under CI) when kubectl is not installed.
    fn for_emulator(kube: &RunningKube) -> Option<Self> {
        let bin = require::require_tool("kubectl", Some("HDI_TEST_KUBECTL"))?;
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kube-emulator-kubectl-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let kubeconfig = dir.join("kubeconfig");
        kube.write_kubeconfig(&kubeconfig)
            .expect("the kubeconfig is written");
        Some(Self {
            bin,
            kubeconfig,
            cache: dir.join("cache"),
            dir,
        })
    }

    /// Like [`Self::for_emulator`], with the user of `kubeconfig_yaml` instead of the admin.
    fn with_kubeconfig(kube: &RunningKube, kubeconfig_yaml: &str) -> Option<Self> {
        let k = Self::for_emulator(kube)?;
        std::fs::write(&k.kubeconfig, kubeconfig_yaml).expect("the kubeconfig is written");
        Some(k)
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None).await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env("HOME", &self.dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl starts");
        if let Some(mut pipe) = child.stdin.take() {
            if let Some(input) = stdin {
                pipe.write_all(input.as_bytes())
                    .await
                    .expect("stdin written");
            }
            drop(pipe);
        }
        let out = child.wait_with_output().await.expect("kubectl finishes");
        Output {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.ok,
            "kubectl {args:?} failed: {}{}",
            out.stdout, out.stderr
        );
        out.stdout
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &str) -> String {
    repo_dir().join(p).to_string_lossy().into_owned()
}

/// The words of each line, so column alignment does not matter.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

async fn with_examples(k: &Kubectl) {
    let out = k.ok(&["apply", "-f", &path("crds")]).await;
    assert!(
        out.contains(
            "customresourcedefinition.apiextensions.k8s.io/kafkatopics.kafka.hdinsight.dev created"
        ),
        "{out}"
    );
    k.ok(&["create", "namespace", "kafka"]).await;
    let out = k.ok(&["apply", "-f", &path("examples")]).await;
    for line in [
        "kafkarestproxy.kafka.hdinsight.dev/default created",
        "secret/hdi-sp created",
        "kafkatopic.kafka.hdinsight.dev/orders created",
        "kafkatopic.kafka.hdinsight.dev/payments created",
        "kafkatopic.kafka.hdinsight.dev/audit-log created",
    ] {
        assert!(out.contains(line), "missing {line:?} in {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_crds_and_examples_and_prints_columns() {
    let (kube, client) = start().await;
    let Some(k) = Kubectl::for_emulator(&kube) else {
        return;
    };
    with_examples(&k).await;

    // Re-applying is idempotent for the custom resources.
    let again = k.ok(&["apply", "-f", &path("examples/topics.yaml")]).await;
    assert!(
        again.contains("kafkatopic.kafka.hdinsight.dev/orders unchanged"),
        "{again}"
    );

    topics(&client, "kafka")
        .patch_status(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "topicName": "orders.v1", "partitions": 12, "replicationFactor": 3, "underReplicatedPartitions": 0,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Created", "message": "created",
                                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]
            }})),
        )
        .await
        .expect("status set");

    let table = rows(&k.ok(&["get", "hkt", "-n", "kafka"]).await);
    assert_eq!(
        table[0],
        [
            "NAME",
            "TOPIC",
            "PARTITIONS",
            "RF",
            "URP",
            "READY",
            "REASON",
            "AGE"
        ]
    );
    let orders = table
        .iter()
        .find(|r| r[0] == "orders")
        .expect("an orders row");
    assert_eq!(
        orders[1..7],
        ["orders.v1", "12", "3", "0", "True", "Created"]
    );
    let names: Vec<&str> = table[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(names, ["audit-log", "orders", "payments"]);

    let wide = rows(&k.ok(&["get", "hkt", "-n", "kafka", "-o", "wide"]).await);
    assert_eq!(
        wide[0].last().map(String::as_str),
        Some("PROXY"),
        "priority-1 columns show with -o wide"
    );

    let krp = rows(&k.ok(&["get", "hkrp", "-n", "kafka"]).await);
    assert_eq!(
        krp[0],
        ["NAME", "ENDPOINT", "TOPICS", "READY", "REASON", "AGE"]
    );
    assert_eq!(
        krp[1][..2],
        ["default", "https://mycluster-kafkarest.azurehdinsight.net"]
    );

    let yaml = k
        .ok(&["get", "hkt", "orders", "-n", "kafka", "-o", "yaml"])
        .await;
    let doc: serde_json::Value = serde_saphyr::from_str(&yaml).expect("kubectl prints YAML");
    assert_eq!(doc["spec"]["partitions"], 12);
    assert_eq!(doc["spec"]["topicName"], "orders.v1");
    assert_eq!(doc["metadata"]["generation"], 1);
    assert_eq!(doc["status"]["conditions"][0]["type"], "Ready");

    let secrets = rows(&k.ok(&["get", "secrets", "-n", "kafka"]).await);
    assert_eq!(secrets[0], ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(secrets[1][..3], ["hdi-sp", "Opaque", "3"]);
    kube.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rejects_unknown_and_invalid_fields_like_the_server() {
    let (kube, _client) = start().await;
    let Some(k) = Kubectl::for_emulator(&kube) else {
        return;
    };
    with_examples(&k).await;
    let typo = "apiVersion: kafka.hdinsight.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {name: t, namespace: kafka}\nspec: {partitions: 1, replicationFactor: 1, partitons: 2}\n";
    let out = k.run_with_stdin(&["apply", "-f", "-"], Some(typo)).await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("strict decoding error: unknown field \"spec.partitons\""),
        "{}",
        out.stderr
    );

    let out = k
        .run_with_stdin(&["apply", "--validate=warn", "-f", "-"], Some(typo))
        .await;
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("Warning: unknown field \"spec.partitons\""),
        "{}",
        out.stderr
    );
    let stored = k
        .ok(&["get", "hkt", "t", "-n", "kafka", "-o", "jsonpath={.spec}"])
        .await;
    assert!(
        !stored.contains("partitons"),
        "unknown fields are pruned: {stored}"
    );
    k.ok(&["delete", "hkt", "t", "-n", "kafka"]).await;

    let invalid = "apiVersion: kafka.hdinsight.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {name: t, namespace: kafka}\nspec: {partitions: 0, replicationFactor: 1}\n";
    let out = k.run_with_stdin(&["apply", "-f", "-"], Some(invalid)).await;
    assert!(!out.ok);
    assert!(
        out.stderr
            .contains("The KafkaTopic \"t\" is invalid: spec.partitions: Invalid value: 0"),
        "{}",
        out.stderr
    );
    kube.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_sees_the_ready_condition() {
    let (kube, client) = start().await;
    let Some(k) = Kubectl::for_emulator(&kube) else {
        return;
    };
    with_examples(&k).await;
    let early = k
        .run(&[
            "wait",
            "--for=condition=Ready",
            "hkt/orders",
            "-n",
            "kafka",
            "--timeout=1s",
        ])
        .await;
    assert!(!early.ok, "not Ready yet: {}", early.stdout);

    let api = topics(&client, "kafka");
    let waiter = tokio::spawn({
        let kubeconfig = k.kubeconfig.clone();
        let cache = k.cache.clone();
        let bin = k.bin.clone();
        async move {
            tokio::process::Command::new(bin)
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .arg("--cache-dir")
                .arg(cache)
                .args([
                    "wait",
                    "--for=condition=Ready",
                    "hkt/orders",
                    "-n",
                    "kafka",
                    "--timeout=60s",
                ])
                .output()
                .await
                .expect("kubectl wait runs")
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    api.patch_status(
        "orders",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": [{
            "type": "Ready", "status": "True", "reason": "Created", "message": "created",
            "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1
        }]}})),
    )
    .await
    .expect("status set");
    let out = waiter.await.expect("the waiter finishes");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("kafkatopic.kafka.hdinsight.dev/orders condition met")
    );
    kube.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_and_deletes_objects() {
    let (kube, _client) = start().await;
    let Some(k) = Kubectl::for_emulator(&kube) else {
        return;
    };
    with_examples(&k).await;
    let out = k
        .ok(&[
            "create",
            "secret",
            "generic",
            "extra",
            "-n",
            "kafka",
            "--from-literal=clientSecret=abc",
        ])
        .await;
    assert!(out.contains("secret/extra created"), "{out}");
    let data = k
        .ok(&[
            "get",
            "secret",
            "extra",
            "-n",
            "kafka",
            "-o",
            "jsonpath={.data.clientSecret}",
        ])
        .await;
    assert_eq!(data, "YWJj");

    let out = k.ok(&["delete", "secret", "extra", "-n", "kafka"]).await;
    assert!(out.contains("secret \"extra\" deleted"), "{out}");
    let out = k.ok(&["delete", "hkt", "payments", "-n", "kafka"]).await;
    assert!(
        out.contains("kafkatopic.kafka.hdinsight.dev \"payments\" deleted"),
        "{out}"
    );
    let gone = k.run(&["get", "hkt", "payments", "-n", "kafka"]).await;
    assert!(!gone.ok);
    assert!(
        gone.stderr
            .contains("kafkatopics.kafka.hdinsight.dev \"payments\" not found"),
        "{}",
        gone.stderr
    );

    let out = k.ok(&["delete", "namespace", "kafka"]).await;
    assert!(out.contains("namespace \"kafka\" deleted"), "{out}");
    let left = k.ok(&["get", "hkt", "-A"]).await;
    assert!(
        left.trim().is_empty(),
        "namespace deletion removes its objects: {left}"
    );
    kube.shutdown().await;
}

/// `kubectl get --field-selector` is answered like kube-apiserver: the KafkaTopic CRD declares
/// no `selectableFields`, so only the metadata can be selected on (apiextensions-apiserver
/// pkg/apiserver/conversion/converter.go), Secrets also on `type`
/// (kubernetes pkg/apis/core/v1/conversion.go), ConfigMaps only on the metadata
/// (apimachinery pkg/runtime/conversion.go).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_field_selectors_are_answered_with_the_servers_words() {
    let (kube, _client) = start().await;
    let Some(k) = Kubectl::for_emulator(&kube) else {
        return;
    };
    with_examples(&k).await;
    let refused = k
        .run(&[
            "get",
            "hkt",
            "-n",
            "kafka",
            "--field-selector",
            "spec.topicName=x",
        ])
        .await;
    assert!(!refused.ok, "{}", refused.stdout);
    // kubectl wraps the server's message in its own words.
    assert!(
        refused.stderr.contains(
            r#"Error from server (BadRequest): Unable to find "kafka.hdinsight.dev/v1alpha1, Resource=kafkatopics" that match label selector "", field selector "spec.topicName=x": field label not supported: spec.topicName"#
        ),
        "{}",
        refused.stderr
    );
    let out = k
        .ok(&[
            "get",
            "hkt",
            "-n",
            "kafka",
            "--field-selector",
            "metadata.name=orders",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(out.trim(), "kafkatopic.kafka.hdinsight.dev/orders");
    let out = k
        .ok(&[
            "get",
            "hkt",
            "-A",
            "--field-selector",
            "metadata.namespace!=kafka",
            "-o",
            "name",
        ])
        .await;
    assert!(out.trim().is_empty(), "{out}");

    let out = k
        .ok(&[
            "get",
            "secrets",
            "-n",
            "kafka",
            "--field-selector",
            "type=Opaque",
            "-o",
            "name",
        ])
        .await;
    assert!(out.contains("secret/hdi-sp"), "{out}");
    let refused = k
        .run(&["get", "cm", "-n", "kafka", "--field-selector", "data.a=b"])
        .await;
    assert!(!refused.ok);
    assert!(
        refused.stderr.contains(
            r#"Error from server (BadRequest): Unable to find "/v1, Resource=configmaps" that match label selector "", field selector "data.a=b": "data.a" is not a known field selector: only "metadata.name", "metadata.namespace""#
        ),
        "{}",
        refused.stderr
    );
    kube.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_api_resources_lists_the_custom_kinds() {
    let (kube, _client) = start().await;
    let Some(k) = Kubectl::for_emulator(&kube) else {
        return;
    };
    k.ok(&["apply", "-f", &path("crds")]).await;
    let table = rows(&k.ok(&["api-resources"]).await);
    assert_eq!(
        table[0],
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    );
    assert!(table.contains(&vec![
        "kafkatopics".to_string(),
        "hkt".into(),
        "kafka.hdinsight.dev/v1alpha1".into(),
        "true".into(),
        "KafkaTopic".into()
    ]));
    assert!(
        table
            .iter()
            .any(|r| r[0] == "kafkarestproxies" && r[1] == "hkrp")
    );
    assert!(
        table
            .iter()
            .any(|r| r[0] == "leases" && r.contains(&"coordination.k8s.io/v1".to_string()))
    );
    // Our category is `hdinsight`: `kafka` is left to Strimzi's and Confluent's kinds, so that
    // `kubectl get kafka` on a cluster with both installed shows only theirs.
    let ours = rows(
        &k.ok(&["api-resources", "--categories=hdinsight", "-o", "name"])
            .await,
    );
    assert_eq!(ours.len(), 2, "{ours:?}");
    let kafka = k
        .ok(&["api-resources", "--categories=kafka", "-o", "name"])
        .await;
    assert!(kafka.trim().is_empty(), "{kafka}");
    k.ok(&["create", "namespace", "kafka"]).await;
    k.ok(&["apply", "-f", &path("examples")]).await;
    let listed = k
        .ok(&["get", "hdinsight", "-n", "kafka", "-o", "name"])
        .await;
    assert!(
        listed.contains("kafkatopic.kafka.hdinsight.dev/orders")
            && listed.contains("kafkarestproxy.kafka.hdinsight.dev/default"),
        "{listed}"
    );
    kube.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_service_accounts_and_tokens() {
    let (kube, _client) = start_with(rbac_config()).await;
    let Some(k) = Kubectl::for_emulator(&kube) else {
        return;
    };
    k.ok(&["create", "namespace", "kafka-system"]).await;
    let out = k
        .ok(&["create", "serviceaccount", "op", "-n", "kafka-system"])
        .await;
    assert!(out.contains("serviceaccount/op created"), "{out}");
    let table = rows(&k.ok(&["get", "sa", "-n", "kafka-system"]).await);
    assert_eq!(table[0], ["NAME", "SECRETS", "AGE"]);
    assert_eq!(table[1][..2], ["op", "0"]);

    let token = k
        .ok(&[
            "create",
            "token",
            "op",
            "-n",
            "kafka-system",
            "--audience=https://vault.example",
            "--duration=20m",
        ])
        .await;
    let claims = jwt_claims(token.trim());
    assert_eq!(claims["aud"], json!(["https://vault.example"]));
    assert_eq!(claims["sub"], "system:serviceaccount:kafka-system:op");
    assert_eq!(
        claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0),
        1200
    );
    let default = k.ok(&["create", "token", "op", "-n", "kafka-system"]).await;
    let claims = jwt_claims(default.trim());
    assert_eq!(claims["aud"], json!([kube.base_url()]));
    assert_eq!(
        claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0),
        3600
    );

    // The server's bounds and errors, as kubectl prints them.
    let short = k
        .run(&[
            "create",
            "token",
            "op",
            "-n",
            "kafka-system",
            "--duration=1m",
        ])
        .await;
    assert!(!short.ok);
    assert!(
        short.stderr.contains(
            "error: failed to create token: TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        ),
        "{}",
        short.stderr
    );
    let missing = k
        .run(&["create", "token", "nobody", "-n", "kafka-system"])
        .await;
    assert!(!missing.ok);
    assert!(
        missing
            .stderr
            .contains("serviceaccounts \"nobody\" not found"),
        "{}",
        missing.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_and_forbidden_requests_of_a_service_account() {
    let (kube, _client) = start_with(rbac_config()).await;
    let Some(admin) = Kubectl::for_emulator(&kube) else {
        return;
    };
    admin.ok(&["create", "namespace", "kafka-system"]).await;
    admin
        .ok(&["create", "serviceaccount", "op", "-n", "kafka-system"])
        .await;
    let as_sa = [
        "auth",
        "can-i",
        "list",
        "secrets",
        "-n",
        "kafka-system",
        "--as=system:serviceaccount:kafka-system:op",
    ];
    let before = admin.run(&as_sa).await;
    assert!(!before.ok, "can-i exits 1 for no");
    assert_eq!(before.stdout.trim(), "no");
    admin
        .ok(&[
            "create",
            "role",
            "read-secrets",
            "--verb=get,list",
            "--resource=secrets",
            "-n",
            "kafka-system",
        ])
        .await;
    admin
        .ok(&[
            "create",
            "rolebinding",
            "read-secrets",
            "--role=read-secrets",
            "--serviceaccount=kafka-system:op",
            "-n",
            "kafka-system",
        ])
        .await;
    assert_eq!(admin.ok(&as_sa).await.trim(), "yes");
    let table = rows(
        &admin
            .ok(&["get", "rolebindings", "-n", "kafka-system"])
            .await,
    );
    assert_eq!(table[0], ["NAME", "ROLE", "AGE"]);
    assert_eq!(table[1][..2], ["read-secrets", "Role/read-secrets"]);

    // The same questions from a kubeconfig that presents the ServiceAccount's token.
    let token = admin
        .ok(&["create", "token", "op", "-n", "kafka-system"])
        .await;
    let Some(sa) = Kubectl::with_kubeconfig(&kube, &kube.kubeconfig_yaml_with_token(token.trim()))
    else {
        return;
    };
    assert_eq!(
        sa.ok(&["auth", "can-i", "list", "secrets", "-n", "kafka-system"])
            .await
            .trim(),
        "yes"
    );
    for denied in [
        vec!["auth", "can-i", "delete", "secrets", "-n", "kafka-system"],
        vec!["auth", "can-i", "list", "secrets", "-A"],
        vec![
            "auth",
            "can-i",
            "create",
            "rolebindings",
            "-n",
            "kafka-system",
        ],
    ] {
        let out = sa.run(&denied).await;
        assert!(!out.ok, "{denied:?}");
        assert_eq!(out.stdout.trim(), "no", "{denied:?}");
    }
    // SelfSubjectRulesReview: the rules of the RoleBinding and of the default policy.
    let list = rows(
        &sa.ok(&["auth", "can-i", "--list", "-n", "kafka-system"])
            .await,
    );
    assert!(
        list.iter()
            .any(|r| r.first().map(String::as_str) == Some("secrets")
                && r.last().map(String::as_str) == Some("list]")),
        "{list:?}"
    );
    assert!(
        list.iter().any(|r| r.first().map(String::as_str)
            == Some("selfsubjectaccessreviews.authorization.k8s.io")),
        "{list:?}"
    );
    assert!(
        list.iter()
            .any(|r| r.first().map(String::as_str) == Some("[/api/*]")),
        "{list:?}"
    );
    let whoami = sa.ok(&["auth", "whoami"]).await;
    assert!(
        whoami.contains("system:serviceaccount:kafka-system:op"),
        "{whoami}"
    );
    let all = sa.run(&["get", "secrets", "-A"]).await;
    assert!(!all.ok);
    assert!(
        all.stderr.contains(
            "Error from server (Forbidden): secrets is forbidden: User \"system:serviceaccount:kafka-system:op\" cannot list resource \"secrets\" in API group \"\" at the cluster scope"
        ),
        "{}",
        all.stderr
    );
    let mine = sa.run(&["get", "secrets", "-n", "kafka-system"]).await;
    assert!(mine.ok, "{}", mine.stderr);
    assert!(
        mine.stderr.contains("No resources found"),
        "{}",
        mine.stderr
    );
}

/// helm from `HDI_TEST_HELM` or `PATH`; None (with a note) when absent, a failure when `CI` is set.
fn helm() -> Option<PathBuf> {
    let found = std::env::var_os("HDI_TEST_HELM")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join("helm"))
                .find(|p| p.is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "helm is required when CI is set: put it on PATH or set HDI_TEST_HELM"
        );
        eprintln!("note: helm not found (HDI_TEST_HELM or PATH); skipping this test");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_the_rendered_chart_and_its_permissions_hold() {
    let Some(helm) = helm() else {
        return;
    };
    let (kube, _client) = start_with(rbac_config()).await;
    let Some(k) = Kubectl::for_emulator(&kube) else {
        return;
    };
    let rendered = std::process::Command::new(&helm)
        .args(["template", "hto", &path("charts/hdinsight-topic-operator")])
        .args(["--namespace", "kafka-system"])
        .output()
        .expect("helm runs");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    // The kinds this server serves (no Deployment, Service or PodDisruptionBudget).
    let served = [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "CustomResourceDefinition",
    ];
    let manifest: Vec<String> = String::from_utf8_lossy(&rendered.stdout)
        .split("\n---")
        .filter(|doc| {
            doc.lines().any(|l| {
                l.strip_prefix("kind: ")
                    .is_some_and(|kind| served.contains(&kind.trim()))
            })
        })
        .map(String::from)
        .collect();
    assert!(manifest.len() >= 7, "{manifest:?}");
    let manifest = manifest.join("\n---\n");
    k.ok(&["create", "namespace", "kafka-system"]).await;
    k.ok(&["create", "namespace", "kafka"]).await;
    let out = k
        .run_with_stdin(&["apply", "-f", "-"], Some(&manifest))
        .await;
    assert!(out.ok, "{}{}", out.stdout, out.stderr);
    for line in [
        "serviceaccount/hto-hdinsight-topic-operator created",
        "clusterrole.rbac.authorization.k8s.io/hto-hdinsight-topic-operator created",
        "clusterrolebinding.rbac.authorization.k8s.io/hto-hdinsight-topic-operator created",
        "role.rbac.authorization.k8s.io/hto-hdinsight-topic-operator-leader-election created",
        "rolebinding.rbac.authorization.k8s.io/hto-hdinsight-topic-operator-leader-election created",
    ] {
        assert!(
            out.stdout.contains(line),
            "missing {line:?} in {}",
            out.stdout
        );
    }
    let again = k
        .run_with_stdin(&["apply", "-f", "-"], Some(&manifest))
        .await;
    assert!(again.ok, "{}", again.stderr);
    assert!(
        again.stdout.contains(
            "clusterrole.rbac.authorization.k8s.io/hto-hdinsight-topic-operator unchanged"
        ),
        "{}",
        again.stdout
    );

    let sa = "--as=system:serviceaccount:kafka-system:hto-hdinsight-topic-operator";
    for (args, expected) in [
        (vec!["list", "kafkatopics", "-A"], "yes"),
        (
            vec![
                "patch",
                "kafkatopics",
                "--subresource=status",
                "-n",
                "kafka",
            ],
            "yes",
        ),
        (vec!["patch", "kafkatopics", "-n", "kafka"], "no"),
        (vec!["delete", "kafkatopics", "-n", "kafka"], "no"),
        (vec!["watch", "secrets", "-A"], "yes"),
        (vec!["create", "secrets", "-n", "kafka"], "no"),
        (vec!["create", "events.events.k8s.io", "-n", "kafka"], "yes"),
        (vec!["create", "leases", "-n", "kafka-system"], "yes"),
        (
            vec![
                "update",
                "leases/hto-hdinsight-topic-operator",
                "-n",
                "kafka-system",
            ],
            "yes",
        ),
        (vec!["update", "leases/another", "-n", "kafka-system"], "no"),
        (
            vec![
                "update",
                "leases/hto-hdinsight-topic-operator",
                "-n",
                "kafka",
            ],
            "no",
        ),
    ] {
        let mut full = vec!["auth", "can-i"];
        full.extend(args.iter().copied());
        full.push(sa);
        let out = k.run(&full).await;
        assert_eq!(out.stdout.trim(), expected, "{full:?}: {}", out.stderr);
    }
}
