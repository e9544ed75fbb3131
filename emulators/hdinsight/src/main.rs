//! `hdinsight-emulator --listen ADDR [--authority-listen ADDR] [--config FILE] (--tls-dir DIR | --plain-http)`

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use hdinsight_emulator::{EmulatorConfig, RunningEmulator, Transport};

/// Emulates an HDInsight Kafka REST proxy and its Entra ID token endpoint.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "HDI_EMULATOR_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Serve the Entra endpoints (token, discovery, keys) on a listener of their own at this
    /// address, so that authority and proxy endpoint differ as in Azure; port 0 picks one.
    #[arg(long, env = "HDI_EMULATOR_AUTHORITY_LISTEN")]
    authority_listen: Option<SocketAddr>,
    /// YAML configuration (camelCase keys, all optional).
    #[arg(long, env = "HDI_EMULATOR_CONFIG")]
    config: Option<PathBuf>,
    /// Serve HTTPS with a generated CA written to DIR/ca.pem.
    #[arg(long, env = "HDI_EMULATOR_TLS_DIR", conflicts_with = "plain_http")]
    tls_dir: Option<PathBuf>,
    /// Serve plain HTTP.
    #[arg(long, env = "HDI_EMULATOR_PLAIN_HTTP")]
    plain_http: bool,
    /// Load topics from FILE at start (if it exists) and save them there on SIGINT/SIGTERM.
    #[arg(long, env = "HDI_EMULATOR_STATE_FILE")]
    state_file: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            if text.trim().is_empty() {
                EmulatorConfig::default()
            } else {
                serde_saphyr::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
        }
        None => EmulatorConfig::default(),
    };
    let transport = match (&args.tls_dir, args.plain_http) {
        (Some(dir), false) => Transport::Tls { dir: dir.clone() },
        (None, true) => Transport::PlainHttp,
        _ => anyhow::bail!("choose exactly one of --tls-dir DIR and --plain-http"),
    };
    let emulator = RunningEmulator::start_with_authority(
        config,
        args.listen,
        args.authority_listen,
        transport,
    )
    .await?;
    if let Some(path) = &args.state_file
        && path.exists()
    {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let topics =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        emulator
            .control()
            .import_topics(topics)
            .map_err(|err| anyhow::anyhow!("loading {}: {err}", path.display()))?;
    }
    println!("listening on {}", emulator.base_url());
    if args.authority_listen.is_some() {
        println!("authority on {}", emulator.authority_url());
    }
    wait_for_signal().await?;
    if let Some(path) = &args.state_file {
        let topics = emulator.control().export_topics();
        let text = serde_json::to_string_pretty(&topics)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    emulator.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
