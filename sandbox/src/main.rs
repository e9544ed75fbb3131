//! `cargo run -p sandbox`: both emulators, the example manifests and the operator in one
//! command, with a live `kubectl get hkt` table. `sandbox bench` measures the operator at scale.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Parser, Subcommand, ValueEnum};
use futures::FutureExt;
use hdinsight_topic_operator::controller::context::Settings;
use hdinsight_topic_operator::controller::plan::PlanSettings;
use hdinsight_topic_operator::controller::runner::{self, RunConfig};
use hdinsight_topic_operator::crd::{DRIFTED, KafkaTopic, is_true};
use hdinsight_topic_operator::metrics::Metrics;
use hdinsight_topic_operator::server::Health;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};

use sandbox::env::{CLIENT_SECRET, ClusterSettings, Env, NAMESPACE};
use sandbox::{bench, table};

#[derive(Parser, Debug)]
#[command(
    name = "sandbox",
    about = "The operator against emulated HDInsight and Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    up: UpArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Start everything, apply the examples and show the topics (the default).
    Up(UpArgs),
    /// Measure the operator at scale (use a release build).
    Bench(bench::BenchArgs),
    /// Run the operator itself (used by `bench` to measure it as a separate process).
    #[command(hide = true)]
    Operator(Box<hdinsight_topic_operator::cli::RunArgs>),
}

#[derive(Parser, Debug, Clone)]
struct UpArgs {
    /// Show a failure path instead of the happy one.
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// Exit (0) once the scenario's end state is reached, instead of running until Ctrl-C.
    #[arg(long)]
    exit_when_ready: bool,
    /// Give up (exit 1) after this many seconds with --exit-when-ready.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Where the kubeconfig and the emulator CA are written.
    #[arg(long, default_value = ".sandbox")]
    dir: PathBuf,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// `payments` already exists with other partitions and replication factor.
    Drift,
    /// A broker goes down once every topic is Ready: under-replicated partitions appear.
    BrokerDown,
    /// The Secret holds a wrong client secret: AADSTS7000215.
    WrongSecret,
    /// The app is not in the cluster's security group: 403.
    Forbidden,
    /// No client secret: the proxy uses a certificate registered on the app.
    Certificate,
    /// No client secret: the proxy uses workload identity (a ServiceAccount token exchanged
    /// at Entra ID through a federated credential).
    WorkloadIdentity,
}

/// The operator's allocator (src/main.rs): `sandbox bench` measures the operator as this
/// binary's `operator` command.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Some(Cmd::Operator(args)) => {
            init_logs("info");
            runtime.block_on(hdinsight_topic_operator::app::run(*args))
        }
        Some(Cmd::Bench(args)) => {
            init_logs("warn");
            runtime.block_on(bench::run(args))
        }
        Some(Cmd::Up(args)) => {
            init_logs("warn");
            runtime.block_on(up(args))
        }
        None => {
            init_logs("warn");
            runtime.block_on(up(cli.up))
        }
    }
}

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Short timings so that every path shows within seconds.
fn sandbox_settings() -> Settings {
    Settings {
        plan: PlanSettings {
            visibility_timeout: Duration::from_secs(60),
            recreate_grace: Duration::from_secs(20),
            resync_interval: Duration::from_secs(10),
            uncertain_retry: Duration::from_secs(5),
        },
        list_freshness: Duration::from_millis(500),
        max_concurrent_reconciles: 64,
        allowlist: sandbox::env::loopback_allowlist(),
        ..Settings::default()
    }
}

fn end_state_reached(scenario: Option<Scenario>, topics: &[KafkaTopic], broker_down: bool) -> bool {
    let reason_everywhere = |r: &str| {
        !topics.is_empty()
            && topics.iter().all(|t| {
                t.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == r)
                })
            })
    };
    match scenario {
        None | Some(Scenario::Certificate) | Some(Scenario::WorkloadIdentity) => {
            table::all_ready(topics)
        }
        Some(Scenario::Drift) => {
            table::all_ready(topics)
                && topics.iter().any(|t| {
                    t.status
                        .as_ref()
                        .is_some_and(|s| is_true(&s.conditions, DRIFTED))
                })
        }
        Some(Scenario::BrokerDown) => {
            broker_down
                && table::all_ready(topics)
                && topics.iter().any(|t| {
                    t.status
                        .as_ref()
                        .and_then(|s| s.under_replicated_partitions)
                        .is_some_and(|u| u > 0)
                })
        }
        Some(Scenario::WrongSecret) => reason_everywhere("AuthenticationFailed"),
        Some(Scenario::Forbidden) => reason_everywhere("Forbidden"),
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let cluster = ClusterSettings {
        app_in_group: args.scenario != Some(Scenario::Forbidden),
        ..Default::default()
    };
    println!("Starting the emulated HDInsight cluster and Kubernetes API server…");
    let env = Env::start(&args.dir, &cluster).await?;
    let secret = if args.scenario == Some(Scenario::WrongSecret) {
        "not-the-secret"
    } else {
        CLIENT_SECRET
    };
    env.install(secret).await?;
    match args.scenario {
        Some(Scenario::Certificate) => {
            env.use_certificate("sandbox").await?;
            println!(
                "The KafkaRestProxy uses certificate credentials (Secret {NAMESPACE}/{}).",
                sandbox::env::CERTIFICATE_SECRET
            );
        }
        Some(Scenario::WorkloadIdentity) => {
            env.use_workload_identity(None).await?;
            println!(
                "The KafkaRestProxy uses workload identity (ServiceAccount {NAMESPACE}/{}).",
                sandbox::env::WORKLOAD_SERVICE_ACCOUNT
            );
        }
        _ => {}
    }
    if args.scenario == Some(Scenario::Drift) {
        // Someone created `payments` by hand with other settings before it was declared.
        env.hdi
            .control()
            .create_topic_out_of_band("payments", 3, 2)
            .map_err(anyhow::Error::msg)?;
        tokio::time::sleep(cluster.out_of_band_delay + Duration::from_millis(500)).await;
    }
    let names = env.apply_example_topics().await?;
    println!(
        "Applied the KafkaRestProxy and {} KafkaTopics from examples/ to namespace {NAMESPACE}.\n",
        names.len()
    );

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = {
        let mut rx = stop_rx.clone();
        async move {
            while !*rx.borrow() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
        .boxed()
        .shared()
    };
    let operator = tokio::spawn(runner::run(
        env.client.clone(),
        RunConfig {
            namespaces: vec![],
            proxy_namespaces: vec![],
            settings: sandbox_settings(),
            instance: Some("sandbox".into()),
        },
        Arc::new(Metrics::new()),
        stop,
        Health::default(),
    ));

    let api: Api<KafkaTopic> = Api::namespaced(env.client.clone(), NAMESPACE);
    let started = Instant::now();
    let mut last_shown: Option<Vec<Vec<String>>> = None;
    let mut broker_down = false;
    let mut reached = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let topics = api.list(&ListParams::default()).await?.items;
        let rows = table::rows(&topics, Timestamp::now());
        let key: Vec<Vec<String>> = rows.iter().map(|r| r[..7].to_vec()).collect();
        if last_shown.as_ref() != Some(&key) {
            println!("{}", table::render(&rows));
            last_shown = Some(key);
        }
        if args.scenario == Some(Scenario::BrokerDown) && !broker_down && table::all_ready(&topics)
        {
            env.hdi.control().broker_down(1002);
            broker_down = true;
            println!(
                "Broker 1002 is down now; the next describe shows under-replicated partitions.\n"
            );
        }
        if !reached && end_state_reached(args.scenario, &topics, broker_down) {
            reached = true;
            let kubeconfig = env.kubeconfig.display();
            println!(
                "Done in {:.1}s. Keep playing:",
                started.elapsed().as_secs_f64()
            );
            println!("  KUBECONFIG={kubeconfig} kubectl get hkt -n {NAMESPACE}");
            println!("  KUBECONFIG={kubeconfig} kubectl get hkrp -n {NAMESPACE}");
            println!("  KUBECONFIG={kubeconfig} kubectl describe hkt orders -n {NAMESPACE}");
            println!("  KUBECONFIG={kubeconfig} kubectl apply -f examples/topics.yaml");
            if args.exit_when_ready {
                break;
            }
            println!("Press Ctrl-C to stop.");
        }
        if args.exit_when_ready && started.elapsed() > Duration::from_secs(args.timeout) {
            let _ = stop_tx.send(true);
            bail!("the end state was not reached within {}s", args.timeout);
        }
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), operator).await;
    Ok(())
}
