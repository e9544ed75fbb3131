//! The Helm chart as a cluster would receive it: `helm template` for every values combination
//! CI checks, each object deserialised into its k8s-openapi type (and serialised back without
//! losing a field, so a misspelt or misplaced key fails), then the properties a reviewer would
//! check by hand: security context, probes, flags the binary accepts, least-privilege RBAC,
//! the metrics Service and ServiceMonitor, NetworkPolicy, PodDisruptionBudget, namespaces,
//! CRDs; the value sets the chart must refuse; what the package ships.
//!
//! Needs helm: `HDI_TEST_HELM` (set by .ci/run) or `helm` on PATH. Under `CI` a missing helm
//! fails; elsewhere the tests print SKIPPED and pass. The Kubernetes-schema validation of the
//! same renders (kubernetes-validate, 1.30 and newest), the PrometheusRule, the admission
//! policies and the Argo CD health checks are in `.ci/chart-check`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use hdinsight_topic_operator::cli::{Cli, Command as CliCommand};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const CHART: &str = "charts/hdinsight-topic-operator";
const RELEASE: &str = "hto";
const NAMESPACE: &str = "kafka-system";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// helm, from HDI_TEST_HELM or PATH. None (with a visible note) outside CI.
fn helm() -> Option<PathBuf> {
    let from_env = std::env::var_os("HDI_TEST_HELM").map(PathBuf::from);
    let found = from_env.filter(|p| p.exists()).or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("helm"))
                .find(|p| p.exists())
        })
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "helm is required in CI (HDI_TEST_HELM or PATH)"
        );
        println!("SKIPPED: helm is not installed (set HDI_TEST_HELM)");
    }
    found
}

/// One values combination and what it must produce.
struct Scenario {
    name: &'static str,
    args: &'static [&'static str],
    replicas: i32,
    watch: &'static [&'static str],
    proxies: &'static [&'static str],
    monitor: bool,
    crds: bool,
    pdb: bool,
    netpol: bool,
    /// Namespaces other than the release's and the watched/proxy ones that objects may go to.
    extra_namespaces: &'static [&'static str],
}

const DEFAULTS: Scenario = Scenario {
    name: "defaults",
    args: &[],
    replicas: 2,
    watch: &[],
    proxies: &[],
    monitor: false,
    crds: true,
    pdb: true,
    netpol: false,
    extra_namespaces: &[],
};

/// The value sets .ci/chart-check rendered before these checks moved here, plus everything on
/// (`ci/all-values.yaml`).
fn scenarios() -> Vec<Scenario> {
    vec![
        DEFAULTS,
        Scenario {
            name: "watch-namespaces",
            args: &["--set", "watchNamespaces={kafka,payments}"],
            watch: &["kafka", "payments"],
            ..DEFAULTS
        },
        Scenario {
            name: "proxy-namespaces",
            args: &["--set", "proxyNamespaces={kafka-system}"],
            proxies: &["kafka-system"],
            ..DEFAULTS
        },
        Scenario {
            name: "network-policy",
            args: &["--set", "networkPolicy.enabled=true"],
            netpol: true,
            ..DEFAULTS
        },
        Scenario {
            name: "service-monitor",
            args: &["--set", "metrics.serviceMonitor.enabled=true"],
            monitor: true,
            ..DEFAULTS
        },
        Scenario {
            name: "no-crds",
            args: &["--set", "crds.install=false"],
            crds: false,
            ..DEFAULTS
        },
        Scenario {
            name: "single-replica",
            args: &["--set", "replicaCount=1"],
            replicas: 1,
            pdb: false,
            ..DEFAULTS
        },
        Scenario {
            name: "all-values",
            args: &["-f", "charts/hdinsight-topic-operator/ci/all-values.yaml"],
            replicas: 3,
            watch: &["kafka", "payments"],
            proxies: &["kafka-system", "kafka"],
            monitor: true,
            netpol: true,
            // The Grafana dashboard ConfigMap goes where the Grafana sidecar looks.
            extra_namespaces: &["monitoring"],
            ..DEFAULTS
        },
    ]
}

fn helm_template(helm: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(helm)
        .args(["template", RELEASE, CHART, "--namespace", NAMESPACE])
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {} failed: {e}", helm.display()));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn render(helm: &Path, scenario: &Scenario) -> Vec<Value> {
    let text = helm_template(helm, scenario.args)
        .unwrap_or_else(|e| panic!("[{}] helm template failed: {e}", scenario.name));
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("[{}] helm renders YAML: {e}", scenario.name))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// `value` without nulls (an absent field and a null one mean the same to the API server).
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Paths present in `original` but not in `back` (fields the typed object does not have).
fn lost_fields(original: &Value, back: &Value, path: &str, lost: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => lost_fields(v, w, &format!("{path}.{k}"), lost),
                    None => lost.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                lost_fields(v, w, &format!("{path}[{i}]"), lost);
            }
        }
        (a, b) if a != b => lost.push(format!("{path}: {a} became {b}")),
        _ => {}
    }
}

/// `doc` as its k8s-openapi type; panics if it does not deserialise or loses a field on the
/// way back (k8s-openapi ignores unknown fields, so a typo would otherwise pass).
fn typed<T: DeserializeOwned + Serialize>(scenario: &str, doc: &Value) -> T {
    let what = format!(
        "[{scenario}] {}/{}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    );
    let original = without_nulls(doc);
    let object: T = serde_json::from_value(original.clone())
        .unwrap_or_else(|e| panic!("{what} is not a valid object of its kind: {e}"));
    let back = serde_json::to_value(&object).expect("serialises");
    let mut lost = Vec::new();
    lost_fields(&original, &back, "", &mut lost);
    assert!(
        lost.is_empty(),
        "{what} has fields its kind does not know: {lost:?}"
    );
    object
}

/// Every object of one render, typed.
#[derive(Default)]
struct Rendered {
    deployments: Vec<Deployment>,
    service_accounts: Vec<ServiceAccount>,
    services: Vec<Service>,
    config_maps: Vec<ConfigMap>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    network_policies: Vec<NetworkPolicy>,
    pdbs: Vec<PodDisruptionBudget>,
    crds: Vec<CustomResourceDefinition>,
    /// No k8s-openapi type exists for the Prometheus operator's kinds.
    service_monitors: Vec<Value>,
    prometheus_rules: Vec<Value>,
    /// (kind, name, namespace) of every object.
    placement: Vec<(String, String, Option<String>)>,
}

fn classify(scenario: &str, docs: &[Value]) -> Rendered {
    let mut r = Rendered::default();
    for doc in docs {
        let api_version = doc["apiVersion"].as_str().unwrap_or_default();
        let kind = doc["kind"].as_str().unwrap_or_default();
        r.placement.push((
            kind.to_string(),
            doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            doc["metadata"]["namespace"].as_str().map(String::from),
        ));
        match (api_version, kind) {
            ("apps/v1", "Deployment") => r.deployments.push(typed(scenario, doc)),
            ("v1", "ServiceAccount") => r.service_accounts.push(typed(scenario, doc)),
            ("v1", "Service") => r.services.push(typed(scenario, doc)),
            ("v1", "ConfigMap") => r.config_maps.push(typed(scenario, doc)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                r.cluster_roles.push(typed(scenario, doc))
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                r.cluster_role_bindings.push(typed(scenario, doc))
            }
            ("rbac.authorization.k8s.io/v1", "Role") => r.roles.push(typed(scenario, doc)),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
                r.role_bindings.push(typed(scenario, doc))
            }
            ("networking.k8s.io/v1", "NetworkPolicy") => {
                r.network_policies.push(typed(scenario, doc))
            }
            ("policy/v1", "PodDisruptionBudget") => r.pdbs.push(typed(scenario, doc)),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                r.crds.push(typed(scenario, doc))
            }
            ("monitoring.coreos.com/v1", "ServiceMonitor") => r.service_monitors.push(doc.clone()),
            ("monitoring.coreos.com/v1", "PrometheusRule") => r.prometheus_rules.push(doc.clone()),
            other => {
                panic!("[{scenario}] the chart renders {other:?}, which this test does not know")
            }
        }
    }
    r
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

fn container(dep: &Deployment) -> &Container {
    let pod = dep
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod spec");
    assert_eq!(pod.containers.len(), 1, "one container");
    &pod.containers[0]
}

/// The Deployment: replicas, non-root and read-only, probes on the health port, the ports the
/// flags name, and arguments that `hdinsight-topic-operator run` parses.
fn check_deployment(s: &Scenario, r: &Rendered) {
    let n = s.name;
    assert_eq!(r.deployments.len(), 1, "[{n}] one Deployment");
    let dep = &r.deployments[0];
    let spec = dep.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(s.replicas), "[{n}] replicas");
    let pod = spec.template.spec.as_ref().expect("pod spec");
    let psc = pod.security_context.as_ref().expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true), "[{n}] runAsNonRoot");
    assert_eq!(psc.run_as_user, Some(65532), "[{n}] uid 65532");
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
        Some("RuntimeDefault"),
        "[{n}] seccomp"
    );
    assert!(
        pod.host_network != Some(true) && pod.host_pid != Some(true),
        "[{n}] no host namespaces"
    );
    let c = container(dep);
    let sc = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(
        sc.read_only_root_filesystem,
        Some(true),
        "[{n}] read-only root"
    );
    assert_eq!(
        sc.allow_privilege_escalation,
        Some(false),
        "[{n}] no escalation"
    );
    assert_eq!(sc.run_as_non_root, Some(true), "[{n}] container non-root");
    assert_ne!(sc.privileged, Some(true), "[{n}] not privileged");
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_string()]),
        "[{n}] drops ALL capabilities"
    );
    let ports: BTreeMap<String, i32> = c
        .ports
        .iter()
        .flatten()
        .filter_map(|p| Some((p.name.clone()?, p.container_port)))
        .collect();
    assert!(
        ports.contains_key("metrics") && ports.contains_key("health"),
        "[{n}] ports {ports:?}"
    );
    for (probe, path) in [
        (c.liveness_probe.as_ref(), "/livez"),
        (c.readiness_probe.as_ref(), "/readyz"),
    ] {
        let get = probe
            .and_then(|p| p.http_get.as_ref())
            .expect("an httpGet probe");
        assert_eq!(get.path.as_deref(), Some(path), "[{n}] probe path");
        assert_eq!(
            get.port,
            IntOrString::String("health".into()),
            "[{n}] probe port"
        );
    }
    assert!(
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .is_some_and(|r| !r.is_empty()),
        "[{n}] resource requests"
    );
    let args = c.args.clone().unwrap_or_default();
    // The binary parses what the chart passes: unknown flags and bad values fail here.
    let mut argv = vec!["hdinsight-topic-operator".to_string(), "run".to_string()];
    argv.extend(args.iter().cloned());
    let cli = Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("[{n}] `run` refuses the chart's arguments {args:?}: {e}"));
    assert!(matches!(cli.command, Some(CliCommand::Run(_))), "[{n}] run");
    for want in [
        "--leader-election".to_string(),
        format!("--lease-namespace={NAMESPACE}"),
        format!("--health-addr=0.0.0.0:{}", ports["health"]),
        format!("--metrics-addr=0.0.0.0:{}", ports["metrics"]),
    ] {
        assert!(args.contains(&want), "[{n}] missing {want} in {args:?}");
    }
    if s.name == "defaults" {
        assert!(
            args.contains(&"--log-format=json".to_string()),
            "[{n}] JSON logs by default"
        );
    }
    let listed = |flag: &str, values: &[&str]| {
        if values.is_empty() {
            assert!(
                !args.iter().any(|a| a.starts_with(flag)),
                "[{n}] {flag} set without a value for it"
            );
        } else {
            let want = format!("{flag}={}", values.join(","));
            assert!(args.contains(&want), "[{n}] missing {want}");
        }
    };
    listed("--watch-namespaces", s.watch);
    listed("--proxy-namespaces", s.proxies);
    let env: BTreeSet<&str> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
    assert!(
        env.contains("POD_NAME") && env.contains("POD_NAMESPACE"),
        "[{n}] POD_NAME and POD_NAMESPACE from the downward API"
    );
    let sa = pod.service_account_name.as_deref().unwrap_or_default();
    assert!(
        r.service_accounts
            .iter()
            .any(|a| name_of(&a.metadata) == sa),
        "[{n}] serviceAccountName {sa} is rendered"
    );
}

type Perms = BTreeMap<(String, String), BTreeSet<String>>;

fn perms(n: &str, owner: &str, rules: Option<&Vec<PolicyRule>>) -> Perms {
    let mut out = Perms::new();
    for rule in rules.into_iter().flatten() {
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        for field in [&groups, &resources, &rule.verbs] {
            assert!(
                !field.iter().any(|v| v == "*"),
                "[{n}] {owner} has a wildcard"
            );
        }
        assert!(
            rule.non_resource_urls.as_ref().is_none_or(|u| u.is_empty()),
            "[{n}] {owner} grants nonResourceURLs"
        );
        for g in &groups {
            for r in &resources {
                out.entry((g.clone(), r.clone()))
                    .or_default()
                    .extend(rule.verbs.iter().cloned());
            }
        }
    }
    out
}

fn rules(list: &[(&str, &str, &[&str])]) -> Perms {
    list.iter()
        .map(|(g, r, v)| {
            (
                (g.to_string(), r.to_string()),
                v.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect()
}

/// What the operator may do on what it watches: read its kinds and Secrets, patch status,
/// write Events, request tokens of the ServiceAccounts workload-identity proxies name.
fn watch_rules() -> Perms {
    rules(&[
        (
            "kafka.hdinsight.dev",
            "kafkatopics",
            &["get", "list", "watch"],
        ),
        (
            "kafka.hdinsight.dev",
            "kafkarestproxies",
            &["get", "list", "watch"],
        ),
        ("kafka.hdinsight.dev", "kafkatopics/status", &["patch"]),
        ("kafka.hdinsight.dev", "kafkarestproxies/status", &["patch"]),
        ("", "secrets", &["get", "list", "watch"]),
        ("", "serviceaccounts/token", &["create"]),
        ("", "events", &["create", "patch"]),
        ("events.k8s.io", "events", &["create", "patch"]),
    ])
}

const PROXY_ONLY: [&str; 4] = [
    "kafkarestproxies",
    "kafkarestproxies/status",
    "secrets",
    "serviceaccounts/token",
];

/// RBAC: no wildcards, only status patches on our kinds, every role bound to the operator's
/// ServiceAccount alone, leases in the release namespace, Secrets only where proxies live.
fn check_rbac(s: &Scenario, r: &Rendered) {
    let n = s.name;
    let sa = name_of(&r.service_accounts[0].metadata).to_string();
    let subjects_ok = |subjects: Option<&Vec<k8s_openapi::api::rbac::v1::Subject>>| {
        let got: BTreeSet<(String, String, Option<String>)> = subjects
            .into_iter()
            .flatten()
            .map(|s| (s.kind.clone(), s.name.clone(), s.namespace.clone()))
            .collect();
        got == BTreeSet::from([(
            "ServiceAccount".to_string(),
            sa.clone(),
            Some(NAMESPACE.to_string()),
        )])
    };
    let mut cluster = Perms::new();
    for role in &r.cluster_roles {
        let name = name_of(&role.metadata);
        let p = perms(n, name, role.rules.as_ref());
        for ((g, res), verbs) in &p {
            assert!(
                g != "kafka.hdinsight.dev"
                    || !verbs
                        .iter()
                        .any(|v| ["update", "create", "delete", "deletecollection"]
                            .contains(&v.as_str())),
                "[{n}] {name} may {verbs:?} {res}: only status patch is allowed"
            );
            cluster
                .entry((g.clone(), res.clone()))
                .or_default()
                .extend(verbs.iter().cloned());
        }
        let binding = r
            .cluster_role_bindings
            .iter()
            .find(|b| b.role_ref.kind == "ClusterRole" && b.role_ref.name == name)
            .unwrap_or_else(|| panic!("[{n}] ClusterRole {name} is not bound"));
        assert!(
            subjects_ok(binding.subjects.as_ref()),
            "[{n}] {name} binds others"
        );
    }
    let mut lease_roles = Vec::new();
    let mut proxy_roles = BTreeMap::new();
    let mut watch_roles = BTreeMap::new();
    for role in &r.roles {
        let name = name_of(&role.metadata);
        let ns = role.metadata.namespace.clone().unwrap_or_default();
        let p = perms(n, name, role.rules.as_ref());
        for ((g, res), verbs) in &p {
            assert!(
                g != "kafka.hdinsight.dev"
                    || !verbs
                        .iter()
                        .any(|v| ["update", "create", "delete", "deletecollection"]
                            .contains(&v.as_str())),
                "[{n}] {name} may {verbs:?} {res}: only status patch is allowed"
            );
        }
        let binding = r
            .role_bindings
            .iter()
            .find(|b| {
                b.role_ref.kind == "Role"
                    && b.role_ref.name == name
                    && b.metadata.namespace.as_deref() == Some(ns.as_str())
            })
            .unwrap_or_else(|| panic!("[{n}] Role {name} in {ns} is not bound"));
        assert!(
            subjects_ok(binding.subjects.as_ref()),
            "[{n}] {name} binds others"
        );
        if p.contains_key(&("coordination.k8s.io".into(), "leases".into())) {
            lease_roles.push((ns, p));
        } else if name.ends_with("-proxies") {
            proxy_roles.insert(ns, p);
        } else {
            watch_roles.insert(ns, p);
        }
    }
    assert_eq!(lease_roles.len(), 1, "[{n}] one Role for leases");
    assert_eq!(
        lease_roles[0].0, NAMESPACE,
        "[{n}] the lease Role is in the release namespace"
    );
    assert_eq!(
        lease_roles[0].1,
        rules(&[(
            "coordination.k8s.io",
            "leases",
            &["get", "create", "update", "patch"]
        )]),
        "[{n}] lease Role"
    );
    let mut expected = watch_rules();
    if !s.proxies.is_empty() {
        expected.retain(|(_, res), _| !PROXY_ONLY.contains(&res.as_str()));
        let mut proxy_rules = watch_rules();
        proxy_rules.retain(|(_, res), _| !res.starts_with("kafkatopics"));
        let namespaces: BTreeSet<&str> = proxy_roles.keys().map(String::as_str).collect();
        assert_eq!(
            namespaces,
            s.proxies.iter().copied().collect(),
            "[{n}] proxy Roles"
        );
        for (ns, p) in &proxy_roles {
            assert_eq!(p, &proxy_rules, "[{n}] proxy Role in {ns}");
        }
        for res in ["secrets", "serviceaccounts/token"] {
            assert!(
                !cluster.contains_key(&(String::new(), res.to_string())),
                "[{n}] with proxyNamespaces a ClusterRole still grants {res}"
            );
        }
    } else {
        assert!(
            proxy_roles.is_empty(),
            "[{n}] proxy Roles without proxyNamespaces"
        );
    }
    let namespace_read = rules(&[("", "namespaces", &["get", "list", "watch"])]);
    if s.watch.is_empty() {
        let mut with_ns = expected.clone();
        with_ns.extend(namespace_read.clone());
        assert!(
            cluster == expected || cluster == with_ns,
            "[{n}] ClusterRoles grant {cluster:?}, expected exactly {expected:?} (+ namespaces read)"
        );
    } else {
        assert!(
            cluster.is_empty() || cluster == namespace_read,
            "[{n}] with watchNamespaces the ClusterRoles may only read namespaces: {cluster:?}"
        );
        let namespaces: BTreeSet<&str> = watch_roles.keys().map(String::as_str).collect();
        assert_eq!(
            namespaces,
            s.watch.iter().copied().collect(),
            "[{n}] watch Roles"
        );
        for (ns, p) in &watch_roles {
            assert_eq!(p, &expected, "[{n}] Role in {ns}");
        }
    }
}

/// The CRDs are crds/*.yaml plus labels and a keep annotation, or absent with crds.install=false.
fn check_crds(s: &Scenario, r: &Rendered) {
    let n = s.name;
    if !s.crds {
        assert!(
            r.crds.is_empty(),
            "[{n}] CRDs rendered although crds.install is false"
        );
        return;
    }
    let mut generated = BTreeMap::new();
    for file in ["kafkarestproxies.yaml", "kafkatopics.yaml"] {
        let text = std::fs::read_to_string(root().join("crds").join(file)).expect("crds/");
        for doc in serde_saphyr::from_multiple::<Value>(&text).expect("YAML") {
            if !doc.is_null() {
                let name = doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                generated.insert(name, doc);
            }
        }
    }
    assert_eq!(r.crds.len(), generated.len(), "[{n}] CRD count");
    for crd in &r.crds {
        let name = name_of(&crd.metadata);
        assert_eq!(
            crd.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("helm.sh/resource-policy"))
                .map(String::as_str),
            Some("keep"),
            "[{n}] CRD {name} is kept on uninstall"
        );
        let mut rendered = serde_json::to_value(crd).expect("serialises");
        if let Some(meta) = rendered["metadata"].as_object_mut() {
            meta.remove("labels");
            meta.remove("annotations");
        }
        let want = generated.get(name).map(without_nulls);
        assert_eq!(Some(rendered), want, "[{n}] CRD {name} differs from crds/");
    }
}

/// The metrics Service selects the pods and targets the metrics port; the ServiceMonitor (when
/// enabled) selects that Service in the release namespace and scrapes /metrics.
fn check_metrics(s: &Scenario, r: &Rendered) {
    let n = s.name;
    assert_eq!(r.services.len(), 1, "[{n}] one Service");
    let svc = &r.services[0];
    let spec = svc.spec.as_ref().expect("spec");
    let pod_labels = pod_labels(r);
    for (k, v) in spec.selector.iter().flatten() {
        assert_eq!(
            pod_labels.get(k),
            Some(v),
            "[{n}] the Service selects the operator pods"
        );
    }
    let targets: Vec<_> = spec
        .ports
        .iter()
        .flatten()
        .map(|p| p.target_port.clone())
        .collect();
    assert_eq!(
        targets,
        vec![Some(IntOrString::String("metrics".into()))],
        "[{n}] Service port"
    );
    if !s.monitor {
        assert!(
            r.service_monitors.is_empty(),
            "[{n}] ServiceMonitor rendered although disabled"
        );
        return;
    }
    assert_eq!(r.service_monitors.len(), 1, "[{n}] one ServiceMonitor");
    let sm = &r.service_monitors[0];
    let svc_labels = svc.metadata.labels.clone().unwrap_or_default();
    for (k, v) in sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
    {
        assert_eq!(
            svc_labels.get(k).map(String::as_str),
            v.as_str(),
            "[{n}] the ServiceMonitor selects the metrics Service"
        );
    }
    assert!(
        sm["spec"]["namespaceSelector"]["matchNames"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == NAMESPACE)),
        "[{n}] the ServiceMonitor looks in the release namespace"
    );
    let names: BTreeSet<&str> = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.name.as_deref())
        .collect();
    let endpoints = sm["spec"]["endpoints"].as_array().expect("endpoints");
    assert!(!endpoints.is_empty(), "[{n}] ServiceMonitor endpoints");
    for ep in endpoints {
        assert!(
            ep["port"].as_str().is_some_and(|p| names.contains(p)) && ep["path"] == "/metrics",
            "[{n}] ServiceMonitor endpoint {ep} scrapes the Service's /metrics"
        );
    }
}

fn pod_labels(r: &Rendered) -> BTreeMap<String, String> {
    r.deployments[0]
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

/// NetworkPolicy: the operator's pods, both directions, ingress only to metrics and health,
/// egress only to the API server, DNS and HTTPS; no rule without ports.
fn check_network_policy(s: &Scenario, r: &Rendered) {
    let n = s.name;
    if !s.netpol {
        assert!(
            r.network_policies.is_empty(),
            "[{n}] NetworkPolicy rendered although disabled"
        );
        return;
    }
    assert_eq!(r.network_policies.len(), 1, "[{n}] one NetworkPolicy");
    let spec = r.network_policies[0].spec.as_ref().expect("spec");
    let selector = spec
        .pod_selector
        .as_ref()
        .and_then(|s| s.match_labels.clone())
        .unwrap_or_default();
    let labels = pod_labels(r);
    assert!(
        !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
        "[{n}] the NetworkPolicy selects the operator's pods"
    );
    let mut types = spec.policy_types.clone().unwrap_or_default();
    types.sort();
    assert_eq!(types, ["Egress", "Ingress"], "[{n}] both directions");
    let port = |p: &k8s_openapi::api::networking::v1::NetworkPolicyPort| {
        let port = match &p.port {
            Some(IntOrString::Int(i)) => i.to_string(),
            Some(IntOrString::String(s)) => s.clone(),
            None => String::new(),
        };
        (port, p.protocol.clone().unwrap_or_else(|| "TCP".into()))
    };
    let ingress = spec.ingress.clone().unwrap_or_default();
    let egress = spec.egress.clone().unwrap_or_default();
    assert!(
        ingress
            .iter()
            .all(|r| r.ports.as_ref().is_some_and(|p| !p.is_empty()))
            && egress
                .iter()
                .all(|r| r.ports.as_ref().is_some_and(|p| !p.is_empty())),
        "[{n}] a rule without ports opens every port"
    );
    let ingress_ports: BTreeSet<_> = ingress
        .iter()
        .flat_map(|r| r.ports.iter().flatten().map(port))
        .collect();
    let egress_ports: BTreeSet<_> = egress
        .iter()
        .flat_map(|r| r.ports.iter().flatten().map(port))
        .collect();
    let set = |l: &[(&str, &str)]| {
        l.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        ingress_ports,
        set(&[("health", "TCP"), ("metrics", "TCP")]),
        "[{n}] ingress"
    );
    assert_eq!(
        egress_ports,
        set(&[
            ("53", "TCP"),
            ("53", "UDP"),
            ("443", "TCP"),
            ("6443", "TCP")
        ]),
        "[{n}] egress: the API server (443, 6443), DNS (53) and HTTPS (443)"
    );
}

/// A PodDisruptionBudget with minAvailable 1 when there is more than one replica, none for one
/// (it would block node drains).
fn check_pdb(s: &Scenario, r: &Rendered) {
    let n = s.name;
    if !s.pdb {
        assert!(
            r.pdbs.is_empty(),
            "[{n}] PodDisruptionBudget for a single replica"
        );
        return;
    }
    assert_eq!(r.pdbs.len(), 1, "[{n}] one PodDisruptionBudget");
    assert_eq!(
        r.pdbs[0]
            .spec
            .as_ref()
            .and_then(|s| s.min_available.clone()),
        Some(IntOrString::Int(1)),
        "[{n}] minAvailable 1"
    );
}

/// Cluster-scoped kinds have no namespace; everything else is in the release namespace, or in
/// a namespace the values name (watched, proxies, the dashboard's).
fn check_namespaces(s: &Scenario, r: &Rendered) {
    let n = s.name;
    for (kind, name, ns) in &r.placement {
        if [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
        ]
        .contains(&kind.as_str())
        {
            assert!(
                ns.is_none(),
                "[{n}] cluster-scoped {kind} {name} has a namespace"
            );
        } else {
            let ns = ns.as_deref().unwrap_or_default();
            assert!(
                ns == NAMESPACE
                    || s.watch.contains(&ns)
                    || s.proxies.contains(&ns)
                    || s.extra_namespaces.contains(&ns),
                "[{n}] {kind}/{name} is in namespace {ns:?}"
            );
        }
    }
}

#[test]
fn every_rendered_object_is_its_kind_and_keeps_the_chart_policies() {
    let Some(helm) = helm() else { return };
    for scenario in scenarios() {
        let docs = render(&helm, &scenario);
        let rendered = classify(scenario.name, &docs);
        check_deployment(&scenario, &rendered);
        check_rbac(&scenario, &rendered);
        check_crds(&scenario, &rendered);
        check_metrics(&scenario, &rendered);
        check_network_policy(&scenario, &rendered);
        check_pdb(&scenario, &rendered);
        check_namespaces(&scenario, &rendered);
        assert_eq!(
            rendered.prometheus_rules.len(),
            usize::from(scenario.name == "all-values"),
            "[{}] PrometheusRule only where enabled",
            scenario.name
        );
        println!("checked {}: {} objects", scenario.name, docs.len());
    }
}

#[test]
fn the_chart_refuses_values_that_cannot_work() {
    let Some(helm) = helm() else { return };
    for (why, set) in [
        ("a misspelt top-level value", "replicaCunt=2"),
        ("a misspelt nested value", "leaderElection.enable=false"),
        ("an unknown log format", "logging.format=xml"),
        (
            "two replicas without leader election",
            "replicaCount=2,leaderElection.enabled=false",
        ),
        ("a malformed duration", "controller.resyncInterval=soon"),
        (
            "a misspelt PrometheusRule value",
            "metrics.prometheusRule.enable=true",
        ),
        (
            "an extra alert label that would replace the severity",
            "metrics.prometheusRule.additionalLabels.severity=info",
        ),
    ] {
        assert!(
            helm_template(&helm, &["--set", set]).is_err(),
            "helm template accepted {why} ({set})"
        );
    }
}

#[test]
fn the_package_ships_crds_schema_and_notes_but_not_the_ci_values() {
    let Some(helm) = helm() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(&helm)
        .args(["package", CHART, "--destination"])
        .arg(dir.path())
        .current_dir(root())
        .output()
        .expect("helm package runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let package = std::fs::read_dir(dir.path())
        .expect("listing")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "tgz"))
        .expect("a .tgz");
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&package)
        .output()
        .expect("tar runs");
    assert!(listing.status.success());
    let files: BTreeSet<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(String::from)
        .collect();
    for f in [
        "files/crds/kafkatopics.yaml",
        "files/crds/kafkarestproxies.yaml",
        "values.schema.json",
        "templates/NOTES.txt",
    ] {
        assert!(
            files.contains(&format!("hdinsight-topic-operator/{f}")),
            "the package lacks {f}"
        );
    }
    assert!(
        !files
            .iter()
            .any(|f| f.starts_with("hdinsight-topic-operator/ci/")),
        "the package ships the ci/ values files"
    );
}

/// The chart's CRD files are the generated ones (tests/crds_current.rs keeps both current);
/// here: no file in the chart without a counterpart in crds/, and the other way round.
#[test]
fn the_chart_carries_exactly_the_generated_crd_files() {
    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .expect("directory")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".yaml"))
            .collect()
    };
    let generated = names(&root().join("crds"));
    let chart = names(&root().join(CHART).join("files/crds"));
    assert_eq!(chart, generated);
    for f in &generated {
        assert_eq!(
            std::fs::read(root().join("crds").join(f)).expect("read"),
            std::fs::read(root().join(CHART).join("files/crds").join(f)).expect("read"),
            "{f} differs between crds/ and the chart"
        );
    }
}
