//! One module per subcommand: each holds its clap arguments and an `exec` that does the work.

pub mod serve;

use clap::{Parser, Subcommand};

/// kubeforge: scaffold, build and run Kubernetes operators in Rust.
#[derive(Debug, Parser)]
#[command(name = "kubeforge", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the embedded Kubernetes API server until Ctrl-C (for kubectl and operators).
    Serve(serve::Args),
}

/// Runs the chosen subcommand.
pub fn exec(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::exec(args),
    }
}
