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
    /// The controllers to run, comma-separated: names from `replicaset,deployment,statefulset,
    /// daemonset,job,cronjob,horizontalpodautoscaling,ingress,networkpolicy`, `*` for all but
    /// `ingress` and `networkpolicy` (they take ports and the host's nftables, so they run only
    /// when named), `-name` to leave one out of `*`.
    #[arg(long, value_delimiter = ',', default_value = "*", global = true)]
    controllers: Vec<String>,
    /// How often each HorizontalPodAutoscaler is evaluated, in seconds.
    #[arg(long, default_value_t = 15, global = true)]
    horizontal_pod_autoscaler_sync_period: u64,
    /// The HorizontalPodAutoscaler's tolerance: usage within this fraction of the target
    /// leaves the replica count alone.
    #[arg(long, default_value_t = 0.1, global = true)]
    horizontal_pod_autoscaler_tolerance: f64,
    /// The Ingress proxy's HTTP listener.
    #[arg(long, default_value = "0.0.0.0:8000", global = true)]
    ingress_http_address: std::net::SocketAddr,
    /// The Ingress proxy's HTTPS listener (`none` for no HTTPS).
    #[arg(long, default_value = "0.0.0.0:8443", global = true)]
    ingress_https_address: String,
    /// The IngressClass `spec.controller` value whose Ingresses the proxy serves.
    #[arg(long, default_value = kubeforge_controllers::ingress::DEFAULT_CONTROLLER, global = true)]
    ingress_class_controller: String,
    /// The address written to served Ingresses' `status.loadBalancer` (default: the HTTP
    /// listener's, unless it listens on all addresses).
    #[arg(long, global = true)]
    ingress_status_address: Option<std::net::IpAddr>,
    /// The node whose Pods the NetworkPolicy enforcer filters (default: `$NODE_NAME`, else the
    /// host name).
    #[arg(long, global = true)]
    networkpolicy_node_name: Option<String>,
    /// The bridge the node's Pods hang off.
    #[arg(long, default_value = "cni0", global = true)]
    networkpolicy_bridge: String,
    /// The nftables `inet` table the enforcer owns.
    #[arg(long, default_value = "kubeforge_netpol", global = true)]
    networkpolicy_table: String,
    #[command(flatten)]
    operator: Cli,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let controllers = args.controllers.clone();
    let options = match options(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("kubeforge-controller-manager: {e}");
            return ExitCode::from(2);
        }
    };
    run_cli("kubeforge-controller-manager", args.operator, async |mgr| {
        let chosen = kubeforge_controllers::setup_with(mgr, &controllers, &options)?;
        tracing::info!(controllers = ?chosen, "controllers registered");
        Ok(())
    })
    .await
}

/// The controllers' options from the command line.
fn options(args: &Args) -> Result<kubeforge_controllers::Options, String> {
    let https = match args.ingress_https_address.as_str() {
        "none" | "" => None,
        addr => Some(addr.parse().map_err(|e| {
            format!("invalid --ingress-https-address {addr:?}: {e} (expected host:port or none)")
        })?),
    };
    if !(0.0..1.0).contains(&args.horizontal_pod_autoscaler_tolerance) {
        return Err(format!(
            "invalid --horizontal-pod-autoscaler-tolerance {}: expected a fraction in [0, 1)",
            args.horizontal_pod_autoscaler_tolerance
        ));
    }
    let mut options = kubeforge_controllers::Options::default();
    options.hpa.sync_period =
        std::time::Duration::from_secs(args.horizontal_pod_autoscaler_sync_period.max(1));
    options.hpa.calculator.tolerance = args.horizontal_pod_autoscaler_tolerance;
    options.ingress.http = args.ingress_http_address;
    options.ingress.https = https;
    options.ingress.controller = args.ingress_class_controller.clone();
    options.ingress.status_address = args.ingress_status_address;
    if let Some(node) = &args.networkpolicy_node_name {
        options.networkpolicy.node_name.clone_from(node);
    }
    options
        .networkpolicy
        .bridge
        .clone_from(&args.networkpolicy_bridge);
    options
        .networkpolicy
        .table
        .clone_from(&args.networkpolicy_table);
    Ok(options)
}
