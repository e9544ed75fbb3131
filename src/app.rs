//! `run`: health and metrics servers, optional leader election, the controllers, and a
//! graceful stop on SIGTERM or Ctrl-C.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::Shared;
use tracing::{error, info};

use crate::cli::RunArgs;
use crate::controller::context::Settings;
use crate::controller::plan::PlanSettings;
use crate::controller::runner::{self, RunConfig};
use crate::leader::{self, LeaseConfig};
use crate::metrics::Metrics;
use crate::server::{self, Health};

type Signal = Shared<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>;

/// Resolves on SIGTERM or SIGINT.
fn termination() -> Signal {
    let fut: Pin<Box<dyn Future<Output = ()> + Send + Sync>> = Box::pin(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        info!("termination signal received; stopping");
    });
    fut.shared()
}

/// How often a start-up without the CRDs checks again, and how many checks between two
/// repetitions of the error.
const CRD_CHECK_PERIOD: std::time::Duration = std::time::Duration::from_secs(2);
const CRD_LOG_EVERY: u32 = 30;

/// The CRDs the API server does not serve, by name: a list of each kind (at most one object,
/// in the first watched namespace) answered 404. Other failures (permissions, connectivity)
/// are left to the controllers, which retry and report them.
async fn missing_crds(client: &kube::Client, topic_ns: &str, proxy_ns: &str) -> Vec<String> {
    use crate::controller::runner::api;
    use kube::CustomResourceExt;
    use kube::api::ListParams;
    let one = ListParams::default().limit(1);
    let mut missing = Vec::new();
    let topics = api::<crate::crd::KafkaTopic>(client, topic_ns)
        .list_metadata(&one)
        .await;
    if matches!(topics, Err(kube::Error::Api(ref s)) if s.code == 404) {
        missing.push(crate::crd::KafkaTopic::crd_name().to_string());
    }
    let proxies = api::<crate::crd::KafkaRestProxy>(client, proxy_ns)
        .list_metadata(&one)
        .await;
    if matches!(proxies, Err(kube::Error::Api(ref s)) if s.code == 404) {
        missing.push(crate::crd::KafkaRestProxy::crd_name().to_string());
    }
    missing
}

/// Waits until the API server serves both CRDs, saying what is missing and how to install it
/// (at once, then every minute). The operator stays not-ready meanwhile.
async fn wait_for_crds(client: &kube::Client, topic_ns: &str, proxy_ns: &str) {
    let mut checks = 0u32;
    loop {
        let missing = missing_crds(client, topic_ns, proxy_ns).await;
        if missing.is_empty() {
            if checks > 0 {
                info!("the CRDs are installed now; starting");
            }
            return;
        }
        if checks.is_multiple_of(CRD_LOG_EVERY) {
            error!(
                missing = %missing.join(", "),
                "the API server does not serve the CustomResourceDefinition(s) {}: install them with `kubectl apply --server-side -f crds/` (or `hdinsight-topic-operator crds | kubectl apply --server-side -f -`), or with the Helm chart (crds.install=true, the default); the operator checks again every {}s and starts once they are served",
                missing.join(", "),
                CRD_CHECK_PERIOD.as_secs()
            );
        }
        checks = checks.saturating_add(1);
        tokio::time::sleep(CRD_CHECK_PERIOD).await;
    }
}

/// The settings `run` passes to the controllers.
pub fn settings(args: &RunArgs) -> Settings {
    Settings {
        plan: PlanSettings {
            visibility_timeout: args.visibility_timeout,
            recreate_grace: args.recreate_grace,
            resync_interval: args.resync_interval,
            uncertain_retry: args.uncertain_retry,
        },
        list_freshness: args.list_freshness,
        max_concurrent_reconciles: args.max_concurrent_reconciles.max(1),
        allowlist: crate::allowlist::Allowlist {
            endpoint_hosts: args.allowed_endpoint_hosts.clone(),
            authority_hosts: args.allowed_authority_hosts.clone(),
            scopes: args.allowed_scopes.clone(),
        },
        status_write_timeout: crate::controller::status::STATUS_WRITE_TIMEOUT,
    }
}

/// Runs the operator until a termination signal (exit 0) or the loss of leadership (error, so
/// that the process restarts and competes again).
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| anyhow::anyhow!("cannot configure the Kubernetes client: {e}"))?;
    let metrics = Arc::new(Metrics::new());
    let health = Health::default();
    let stop = termination();

    let (health_addr, health_task) = server::serve(
        args.health_addr,
        server::health_router(health.clone()),
        stop.clone(),
    )
    .await?;
    let (metrics_addr, metrics_task) = server::serve(
        args.metrics_addr,
        server::metrics_router(metrics.clone()),
        stop.clone(),
    )
    .await?;
    info!(%health_addr, %metrics_addr, "serving health and metrics");

    // Without the CRDs there is nothing to watch: say so, stay not-ready, and stop on a signal.
    let first = |v: &[String]| {
        v.iter()
            .find(|n| !n.is_empty())
            .cloned()
            .unwrap_or_default()
    };
    let topic_ns = first(&args.watch_namespaces);
    let proxy_ns = if args.proxy_namespaces.iter().any(|n| !n.is_empty()) {
        first(&args.proxy_namespaces)
    } else {
        topic_ns.clone()
    };
    tokio::select! {
        () = wait_for_crds(&client, &topic_ns, &proxy_ns) => {}
        () = stop.clone() => {
            let _ = tokio::join!(health_task, metrics_task);
            return Ok(());
        }
    }

    let instance = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("pid-{}", std::process::id()));
    let leadership = if args.leader_election {
        let namespace = args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_string());
        let config = LeaseConfig {
            name: args.lease_name.clone(),
            namespace,
            identity: format!("{instance}-{}", uuid_suffix()),
            duration: args.lease_duration,
        };
        // A standby has nothing to sync: it reports ready so that rolling updates proceed.
        health.set_ready();
        info!(lease = %config.name, namespace = %config.namespace, "waiting for leadership");
        tokio::select! {
            l = leader::acquire(client.clone(), config) => Some(l),
            _ = stop.clone() => {
                let _ = tokio::join!(health_task, metrics_task);
                return Ok(());
            }
        }
    } else {
        None
    };

    let config = RunConfig {
        namespaces: args
            .watch_namespaces
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        proxy_namespaces: args
            .proxy_namespaces
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        settings: settings(&args),
        instance: Some(instance),
    };

    // Stop gracefully on a signal. Leadership lost is different: another replica may take the
    // Lease once its deadline passes, so nothing in flight may finish — every reconcile is
    // dropped where it stands (the process exits; no drain, no further write).
    let lost: Pin<Box<dyn Future<Output = ()> + Send>> = match &leadership {
        Some(l) => {
            let mut rx = l.watch();
            Box::pin(async move {
                while !*rx.borrow() {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            })
        }
        None => Box::pin(futures::future::pending()),
    };
    tokio::select! {
        result = runner::run(client, config, metrics, stop.clone(), health) => result?,
        () = lost => {
            error!("leadership lost; every reconcile is aborted and the process exits so that a restart competes again");
            std::process::exit(2);
        }
    }

    if let Some(l) = leadership {
        l.release().await;
    }
    let _ = tokio::join!(health_task, metrics_task);
    Ok(())
}

fn uuid_suffix() -> String {
    use rand::Rng;
    format!("{:08x}", rand::rng().random::<u32>())
}
