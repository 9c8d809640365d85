//! `kubeforge-controller-manager`: runs the chosen reference controllers against a cluster.
//!
//! ```sh
//! kubeforge-controller-manager --controllers replicaset,deployment --kubeconfig ~/.kube/config
//! kubeforge-controller-manager --controllers '*' rbac     # the ClusterRole they need
//! ```

use std::process::ExitCode;

use clap::Parser;
use kubeforge::manager::entry::{Cli, run_cli};

/// The reference controllers' command line: the operator's flags and subcommands, and which
/// controllers to run.
#[derive(Debug, Parser)]
#[command(
    name = "kubeforge-controller-manager",
    about = "Kubernetes' workload controllers on the kubeforge runtime"
)]
struct Args {
    /// The controllers to run, comma-separated: names from `replicaset,deployment,statefulset,daemonset,job,cronjob`, `*` for
    /// all, `-name` to leave one out of `*`.
    #[arg(long, value_delimiter = ',', default_value = "*", global = true)]
    controllers: Vec<String>,
    #[command(flatten)]
    operator: Cli,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let controllers = args.controllers;
    run_cli("kubeforge-controller-manager", args.operator, async |mgr| {
        let chosen = kubeforge_controllers::setup(mgr, &controllers)?;
        tracing::info!(controllers = ?chosen, "controllers registered");
        Ok(())
    })
    .await
}
