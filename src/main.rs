//! The operator binary: parse the command line, set up logging, run the command.

use clap::Parser;
use hdinsight_topic_operator::cli::{Cli, Command, RunArgs};
use hdinsight_topic_operator::{app, check, crd, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
