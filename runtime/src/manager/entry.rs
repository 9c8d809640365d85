//! The operator binary's entry point: one call gives every operator the same command line.
//!
//! ```no_run
//! use std::sync::Arc;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
//!
//! async fn reconcile(_cm: Arc<ConfigMap>, _ctx: Context<()>) -> Result<Action, ReconcileError> {
//!     Ok(Action::await_change())
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     kubeforge::manager::entry::run("my-operator", async |mgr| {
//!         Controller::managed_by(mgr).for_::<ConfigMap>(Watch::new()).complete(reconcile, ())?;
//!         Ok(())
//!     })
//!     .await
//! }
//! ```
//!
//! Subcommands: `run` (the default), `crds` (every registered CRD as YAML), `rbac` (the
//! ClusterRole, or a Role with `--namespace`), `webhooks` (the webhook configurations and CRD
//! conversions of the registered webhooks). Flags: `--kubeconfig`, `--namespace`,
//! `--leader-elect`, `--metrics-bind-address`, `--health-probe-bind-address`,
//! `--webhook-bind-address`, `--webhook-cert-dir` (used when the operator registers webhooks),
//! `--log-format`.
//!
//! The setup closure returns `anyhow::Result` because it is the operator's `main` code, where
//! any error just needs to be reported.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::manager::leader_election::LeaderElectionConfig;
use crate::manager::{Manager, ManagerConfig};

/// The operator's command line.
#[derive(Debug, Parser)]
#[command(about = "A Kubernetes operator built with kubeforge")]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of `run`, also accepted without the subcommand (`op --kubeconfig k` runs).
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controllers (the default).
    Run(RunArgs),
    /// Print every registered CustomResourceDefinition as YAML, for `kubectl apply -f -`.
    Crds,
    /// Print the RBAC ClusterRole the operator needs (a Role with --namespace), as YAML.
    Rbac {
        /// Print a namespaced Role for this namespace instead of a ClusterRole.
        #[arg(long)]
        namespace: Option<String>,
        /// Include the Lease permissions leader election needs.
        #[arg(long)]
        leader_elect: bool,
    },
    /// Print the webhook configurations of the registered webhooks, and for each converted kind
    /// a partial CRD holding its `spec.conversion`, as YAML (what `kubeforge generate` writes to
    /// config/webhook/manifests.yaml and merges into the CRDs).
    Webhooks {
        /// The Service kube-apiserver reaches the webhook server through.
        #[arg(long, default_value = "webhook-service")]
        service_name: String,
        /// Its namespace.
        #[arg(long, default_value = "system")]
        service_namespace: String,
        /// Prefix of the configurations' names.
        #[arg(long, default_value = "")]
        name_prefix: String,
        /// The cert-manager Certificate (`<namespace>/<name>`) whose CA cert-manager injects.
        #[arg(long)]
        inject_ca_from: Option<String>,
    },
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of `run`.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Elect a leader so that only one replica reconciles.
    #[arg(long)]
    pub leader_elect: bool,
    /// Namespace of the leader election Lease (default: --namespace, else `default`).
    #[arg(long)]
    pub leader_election_namespace: Option<String>,
    /// Address of `/metrics`; `0` disables it.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_bind_address: String,
    /// Address of `/healthz` and `/readyz`; `0` disables it.
    #[arg(long, default_value = "0.0.0.0:8081")]
    pub health_probe_bind_address: String,
    /// Address of the webhook server (served only when the operator registers webhooks).
    #[arg(long, default_value = "0.0.0.0:9443")]
    pub webhook_bind_address: String,
    /// Directory of the webhook server's `tls.crt` and `tls.key` (re-read when they change).
    #[arg(long, default_value = "/tmp/k8s-webhook-server/serving-certs")]
    pub webhook_cert_dir: PathBuf,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Seconds in-flight reconciles get to finish on SIGTERM.
    #[arg(long, default_value_t = 30)]
    pub graceful_shutdown_timeout: u64,
}

/// Why the operator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// A bind address did not parse.
    #[error(
        "invalid {flag} {value:?}: expected host:port (e.g. 0.0.0.0:8080, :8080) or 0 to disable"
    )]
    BadAddress {
        /// The flag.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// The kubeconfig could not be loaded.
    #[error("failed to load the kubeconfig: {0}; pass --kubeconfig or set KUBECONFIG")]
    Kubeconfig(String),
}

/// Parses `host:port`, `:port` (all interfaces) or `0` (disabled).
pub fn parse_bind_address(
    flag: &'static str,
    value: &str,
) -> Result<Option<SocketAddr>, EntryError> {
    let bad = || EntryError::BadAddress {
        flag,
        value: value.to_owned(),
    };
    match value.trim() {
        "0" | "" => Ok(None),
        v if v.starts_with(':') => format!("0.0.0.0{v}").parse().map(Some).map_err(|_| bad()),
        v => v.parse().map(Some).map_err(|_| bad()),
    }
}

/// Installs the tracing subscriber (`RUST_LOG`, default `info`) in `format`.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal, and never with NO_COLOR set (https://no-color.org): logs
    // written to a file or a pipe stay free of escape codes.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    // A subscriber may already be installed (tests, embedding): keep it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn client_for(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, EntryError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| EntryError::Kubeconfig(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| EntryError::Kubeconfig(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| EntryError::Kubeconfig(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| EntryError::Kubeconfig(e.to_string()))
}

/// The [`ManagerConfig`] the flags describe (leader election lease: `<operator>-leader`).
pub fn manager_config(operator: &str, args: &RunArgs) -> Result<ManagerConfig, EntryError> {
    let leader_election = args.leader_elect.then(|| {
        let ns = args
            .leader_election_namespace
            .clone()
            .or_else(|| args.namespace.clone())
            .unwrap_or_else(|| "default".to_owned());
        LeaderElectionConfig::new(ns, format!("{operator}-leader"))
    });
    Ok(ManagerConfig {
        namespace: args.namespace.clone(),
        leader_election,
        metrics_bind_address: parse_bind_address(
            "--metrics-bind-address",
            &args.metrics_bind_address,
        )?,
        health_probe_bind_address: parse_bind_address(
            "--health-probe-bind-address",
            &args.health_probe_bind_address,
        )?,
        graceful_shutdown_timeout: Duration::from_secs(args.graceful_shutdown_timeout),
        webhook: crate::webhook::WebhookServerConfig {
            bind_address: parse_bind_address("--webhook-bind-address", &args.webhook_bind_address)?
                .ok_or_else(|| EntryError::BadAddress {
                    flag: "--webhook-bind-address",
                    value: args.webhook_bind_address.clone(),
                })?,
            cert_dir: args.webhook_cert_dir.clone(),
        },
        ..ManagerConfig::default()
    })
}

/// Parses the process's arguments and runs the operator named `operator`; `setup` adds the
/// controllers to the manager. Returns the process exit code (errors are printed).
pub async fn run(
    operator: &str,
    setup: impl AsyncFnOnce(&mut Manager) -> anyhow::Result<()>,
) -> ExitCode {
    run_cli(operator, Cli::parse(), setup).await
}

/// [`run`] with already parsed arguments (tests, custom `main`s).
pub async fn run_cli(
    operator: &str,
    cli: Cli,
    setup: impl AsyncFnOnce(&mut Manager) -> anyhow::Result<()>,
) -> ExitCode {
    let result = match cli.command {
        Some(Command::Crds) => crate::crd::registry::crds_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(anyhow::Error::from),
        Some(Command::Rbac {
            namespace,
            leader_elect,
        }) => {
            let leader_elect = leader_elect || cli.run.leader_elect;
            let namespace = namespace.or(cli.run.namespace);
            rbac_yaml(operator, namespace.as_deref(), leader_elect, setup)
                .await
                .map(|yaml| print!("{yaml}"))
        }
        Some(Command::Webhooks {
            service_name,
            service_namespace,
            name_prefix,
            inject_ca_from,
        }) => {
            let endpoint = crate::webhook::Endpoint::Service {
                name: service_name,
                namespace: service_namespace,
            };
            webhooks_yaml(&endpoint, &name_prefix, inject_ca_from.as_deref(), setup)
                .await
                .map(|yaml| print!("{yaml}"))
        }
        Some(Command::Run(args)) => run_manager(operator, &args, setup).await,
        None => run_manager(operator, &cli.run, setup).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The operator's Role or ClusterRole as YAML (the `rbac` subcommand): the rules
/// `#[kubeforge::controller]` registered, plus those of every controller `setup` builds —
/// `setup` runs on a manager whose client points nowhere (nothing is started or contacted), so
/// a controller built with the builder alone gets its RBAC printed too.
///
/// # Errors
/// When `setup` fails or the role cannot be serialized.
pub async fn rbac_yaml(
    operator: &str,
    namespace: Option<&str>,
    leader_elect: bool,
    setup: impl AsyncFnOnce(&mut Manager) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let nowhere = kube::Config::new("http://127.0.0.1:9".parse()?);
    let client = kube::Client::try_from(nowhere)?;
    let config = ManagerConfig {
        namespace: namespace.map(str::to_owned),
        ..ManagerConfig::default()
    };
    let mut manager = Manager::new(client, config).await?;
    setup(&mut manager).await?;
    Ok(crate::crd::registry::rbac_yaml_with(
        operator,
        namespace,
        leader_elect,
        manager.rbac_rules(),
    )?)
}

/// The webhook manifests of the webhooks `setup` registers (see [`Command::Webhooks`]); an
/// empty string when it registers none.
pub async fn webhooks_yaml(
    endpoint: &crate::webhook::Endpoint,
    name_prefix: &str,
    inject_ca_from: Option<&str>,
    setup: impl AsyncFnOnce(&mut Manager) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let nowhere = kube::Config::new("http://127.0.0.1:9".parse()?);
    let client = kube::Client::try_from(nowhere)?;
    let config = ManagerConfig {
        // Registering binds the webhook address: a free port, so that this never clashes.
        webhook: crate::webhook::WebhookServerConfig {
            bind_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..crate::webhook::WebhookServerConfig::default()
        },
        ..ManagerConfig::default()
    };
    let mut manager = Manager::new(client, config).await?;
    setup(&mut manager).await?;
    if manager.webhook_addr().is_none() {
        return Ok(String::new()); // `setup` registered no webhook
    }
    let docs = manager
        .webhooks()?
        .manifests(endpoint, name_prefix, inject_ca_from);
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&doc)?);
    }
    Ok(out)
}

async fn run_manager(
    operator: &str,
    args: &RunArgs,
    setup: impl AsyncFnOnce(&mut Manager) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let config = manager_config(operator, args)?;
    let client = client_for(args.kubeconfig.as_ref()).await?;
    let mut manager = Manager::new(client, config).await?;
    setup(&mut manager).await?;
    tracing::info!(operator, "starting manager");
    manager.run().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_is_the_default_and_flags_parse() {
        let cli = Cli::try_parse_from([
            "op",
            "--namespace",
            "ns",
            "--leader-elect",
            "--log-format",
            "json",
            "--metrics-bind-address",
            ":9090",
            "--webhook-bind-address",
            "127.0.0.1:9444",
            "--webhook-cert-dir",
            "/certs",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.log_format, LogFormat::Json);
        let config = manager_config("op", &cli.run).unwrap();
        assert_eq!(config.namespace.as_deref(), Some("ns"));
        assert_eq!(
            config.metrics_bind_address,
            Some("0.0.0.0:9090".parse().unwrap())
        );
        assert_eq!(
            config.webhook.bind_address,
            "127.0.0.1:9444".parse().unwrap()
        );
        assert_eq!(config.webhook.cert_dir, PathBuf::from("/certs"));
        let lease = config.leader_election.unwrap();
        assert_eq!(
            (lease.lease_namespace.as_str(), lease.lease_name.as_str()),
            ("ns", "op-leader")
        );
    }

    #[test]
    fn crds_and_rbac_help_list_only_their_own_flags() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        for sub in ["crds", "rbac"] {
            let help = cli
                .find_subcommand_mut(sub)
                .expect("subcommand")
                .render_long_help()
                .to_string();
            for run_only in [
                "--metrics-bind-address",
                "--health-probe-bind-address",
                "--graceful-shutdown-timeout",
            ] {
                assert!(
                    !help.contains(run_only),
                    "`{sub} --help` lists {run_only}:\n{help}"
                );
            }
        }
        let run = cli
            .find_subcommand_mut("run")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(run.contains("--metrics-bind-address"), "{run}");
        assert!(Cli::try_parse_from(["op", "crds", "--metrics-bind-address", ":1"]).is_err());
    }

    #[tokio::test]
    async fn rbac_includes_controllers_built_with_the_builder_alone() {
        use crate::controller::{Action, Context, Controller, ReconcileError, Watch};
        use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
        async fn reconcile(
            _: std::sync::Arc<ConfigMap>,
            _: Context<()>,
        ) -> Result<Action, ReconcileError> {
            Ok(Action::await_change())
        }
        let yaml = rbac_yaml("op", None, false, async |mgr| {
            Controller::managed_by(mgr)
                .for_::<ConfigMap>(Watch::new())
                .owns::<Secret>(Watch::new())
                .watches::<Pod>(Watch::new(), |_| Vec::new())
                .complete(reconcile, ())?;
            Ok(())
        })
        .await
        .unwrap();
        let role: k8s_openapi::api::rbac::v1::ClusterRole = serde_yaml::from_str(&yaml).unwrap();
        let verbs = |resource: &str| -> Vec<String> {
            role.rules
                .iter()
                .flatten()
                .filter(|r| r.resources.iter().flatten().any(|x| x == resource))
                .flat_map(|r| r.verbs.clone())
                .collect()
        };
        assert!(verbs("configmaps").contains(&"update".to_owned()), "{yaml}");
        assert!(
            verbs("configmaps/status").contains(&"patch".to_owned()),
            "{yaml}"
        );
        assert!(verbs("secrets").contains(&"create".to_owned()), "{yaml}");
        assert_eq!(verbs("pods"), ["get", "list", "watch"], "{yaml}");
        assert!(verbs("events").contains(&"create".to_owned()), "{yaml}");
    }

    #[test]
    fn subcommands_and_disabled_addresses() {
        let cli = Cli::try_parse_from(["op", "rbac", "--namespace", "ns"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Rbac { namespace: Some(ref n), .. }) if n == "ns")
        );
        let cli = Cli::try_parse_from(["op", "crds"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Crds)));
        let cli = Cli::try_parse_from(["op", "run", "--health-probe-bind-address", "0"]).unwrap();
        let Some(Command::Run(run)) = cli.command else {
            panic!("`run` parses as the run subcommand");
        };
        assert_eq!(
            manager_config("op", &run)
                .unwrap()
                .health_probe_bind_address,
            None
        );
        let err = parse_bind_address("--metrics-bind-address", "nonsense").unwrap_err();
        assert!(err.to_string().contains("--metrics-bind-address"), "{err}");
        assert!(Cli::try_parse_from(["op", "--log-format", "xml"]).is_err());
    }
}
