//! The operator binary: parse the command line, set up logging, run the command.

use clap::{CommandFactory, FromArgMatches, Parser};
use hdinsight_topic_operator::cli::{Cli, Command, RunArgs};
use hdinsight_topic_operator::{app, check, crd, data, telemetry};

/// jemalloc rather than glibc's malloc: at 10,000 topics the operator's peak RSS fell from 116
/// to 87 MiB and its CPU per topic by a fifth (docs/benchmarks.md, "Round two, concluded").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The file name under which kubectl finds the binary as a plugin (`kubectl hdinsight …`).
const KUBECTL_PLUGIN: &str = "kubectl-hdinsight";

/// Whether the binary was started as the kubectl plugin: kubectl runs `kubectl-hdinsight`
/// from PATH with the arguments after `kubectl hdinsight`.
fn started_as_kubectl_plugin() -> bool {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_stem)
        .is_some_and(|name| name == KUBECTL_PLUGIN)
}

fn parse() -> Cli {
    if !started_as_kubectl_plugin() {
        return Cli::parse();
    }
    let mut command = Cli::command()
        .name("kubectl hdinsight")
        .bin_name("kubectl hdinsight");
    let cli = Cli::from_arg_matches(&command.get_matches_mut()).unwrap_or_else(|e| e.exit());
    if cli.command.is_none() {
        // As a plugin the operator's own default (run the controllers) would surprise: show
        // what the plugin can do instead.
        let _ = command.print_help();
        std::process::exit(2);
    }
    cli
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = parse();
    if let Err(e) = telemetry::init(cli.log.log_format, &cli.log.log_level) {
        eprintln!("error: {e:#}");
        return std::process::ExitCode::from(2);
    }
    let result = match cli.command {
        None => match RunArgs::from_env() {
            Ok(args) => app::run(args).await,
            Err(e) => e.exit(),
        },
        Some(Command::Run(args)) => app::run(*args).await,
        Some(Command::Crds) => {
            for (_, yaml) in crd::crd_documents() {
                print!("{yaml}");
            }
            Ok(())
        }
        Some(Command::Check(args)) => check::check(*args).await,
        Some(Command::Import(args)) => check::import(*args).await,
        Some(Command::Produce(args)) => data::produce(*args).await,
        Some(Command::Consume(args)) => data::consume(*args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
