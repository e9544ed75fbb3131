//! `kube-emulator`: serve the in-memory Kubernetes API until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use kube_emulator::{KubeEmulatorConfig, RunningKube};

/// In-memory Kubernetes API server for tests and sandboxes.
#[derive(Parser, Debug)]
#[command(name = "kube-emulator", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "KUBE_EMULATOR_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write a kubeconfig for the server (context "emulator").
    #[arg(long, env = "KUBE_EMULATOR_KUBECONFIG_OUT")]
    kubeconfig_out: Option<PathBuf>,
    /// Serve plain http instead of https with a generated CA.
    #[arg(long, env = "KUBE_EMULATOR_PLAIN_HTTP")]
    plain_http: bool,
    /// Watch events retained per resource.
    #[arg(long, env = "KUBE_EMULATOR_HISTORY_SIZE", default_value_t = 10_000)]
    history_size: usize,
    /// Also forget watch events older than this many seconds (none: only --history-size).
    #[arg(long, env = "KUBE_EMULATOR_HISTORY_MAX_AGE_SECONDS")]
    history_max_age_seconds: Option<u64>,
    /// Deliver each watch event this many milliseconds after its write (gets and lists stay
    /// current).
    #[arg(long, env = "KUBE_EMULATOR_WATCH_DELAY_MS", default_value_t = 0)]
    watch_delay_ms: u64,
    /// Require this bearer token (it is written into the kubeconfig).
    #[arg(long, env = "KUBE_EMULATOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Authorize requests with RBAC (Roles, ClusterRoles and bindings). The kubeconfig's user
    /// is in system:masters; a token is generated unless --token is given.
    #[arg(long, env = "KUBE_EMULATOR_RBAC")]
    rbac: bool,
    /// Issuer (`iss`) of ServiceAccount tokens; defaults to the server's base URL.
    #[arg(long, env = "KUBE_EMULATOR_SA_ISSUER")]
    sa_issuer: Option<String>,
    /// Let unauthenticated clients read /.well-known/openid-configuration and /openid/v1/jwks.
    #[arg(long, env = "KUBE_EMULATOR_ANONYMOUS_ISSUER_DISCOVERY")]
    anonymous_issuer_discovery: bool,
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, so call it
/// before announcing readiness.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let config = KubeEmulatorConfig {
        history_size: args.history_size,
        history_max_age: args.history_max_age_seconds.map(Duration::from_secs),
        watch_delay: Duration::from_millis(args.watch_delay_ms),
        tls: !args.plain_http,
        token: args.token,
        rbac: args.rbac,
        service_account_issuer: args.sa_issuer,
        anonymous_issuer_discovery: args.anonymous_issuer_discovery,
        ..KubeEmulatorConfig::default()
    };
    let kube = RunningKube::start(config, args.listen).await?;
    if let Some(path) = &args.kubeconfig_out {
        kube.write_kubeconfig(path)?;
    }
    let stop = shutdown_signal()?;
    println!("{}", kube.base_url());
    stop.await;
    kube.shutdown().await;
    Ok(())
}
