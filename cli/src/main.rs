//! The `kubeforge` command line: scaffold, build and run Kubernetes operators in Rust.
//!
//! `init` writes a project, `create api` / `create controller` add to it at its scaffold
//! markers, `generate` writes the manifests that come from the code, `dev` runs the operator on
//! the embedded API server, `demo` does all of it once, `serve` runs the server alone.

mod cargo;
mod commands;
mod kinds;
mod local;
mod names;
mod project;
mod scaffold;
mod source;
mod templates;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never with NO_COLOR set, as the operators' logs.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();
    match commands::exec(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
