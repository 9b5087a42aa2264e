//! The `tallyd` binary.

use clap::Parser;
use tally_server::{Cli, Config};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tallyd: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    if cli.print_config {
        match toml::to_string(&config) {
            Ok(text) => {
                print!("{text}");
                return std::process::ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("tallyd: cannot print the configuration: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    if let Err(e) = tally_server::init_logging(&config) {
        eprintln!("tallyd: {e:#}");
        return std::process::ExitCode::from(2);
    }
    match tally_server::run(config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("tallyd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
