//! One module per subcommand: each holds its clap arguments and an `exec` that does the work.

pub mod completions;
pub mod create;
pub mod create_webhook;
pub mod demo;
pub mod dev;
pub mod generate;
pub mod init;
pub mod kinds;
pub mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// kubeforge: scaffold, build and run Kubernetes operators in Rust.
#[derive(Debug, Parser)]
#[command(
    name = "kubeforge",
    version,
    about,
    long_about = None,
    after_help = "Start with `kubeforge demo`, or:\n  kubeforge init my-operator --domain example.com\n  \
                  cd my-operator && kubeforge create api --group cache --version v1 --kind Memcached"
)]
pub struct Cli {
    /// Render templates from this folder instead of the built-in ones (a copy of kubeforge's
    /// templates/ folder, edited).
    #[arg(long, global = true, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new operator project.
    Init(init::Args),
    /// Add a custom resource (create api) or a controller for a built-in kind (create controller).
    #[command(subcommand)]
    Create(create::Command),
    /// Write config/crd/bases and config/rbac/role.yaml from the code (or check they are current).
    Generate(generate::Args),
    /// Run the operator on an embedded API server, rebuilding and restarting it on every change.
    Dev(dev::Args),
    /// Scaffold, build and run an example operator in a temporary directory, end to end.
    Demo(demo::Args),
    /// List the built-in kinds `create controller --kind` accepts.
    Kinds(kinds::Args),
    /// Print a shell completion script.
    Completions(completions::Args),
    /// Run the embedded Kubernetes API server until Ctrl-C (for kubectl and operators).
    Serve(serve::Args),
}

/// Runs the chosen subcommand.
pub fn exec(cli: Cli) -> anyhow::Result<()> {
    let templates = cli.templates.as_deref();
    match cli.command {
        Command::Init(args) => init::exec(args, templates),
        Command::Create(command) => create::exec(command, templates),
        Command::Generate(args) => generate::exec(args),
        Command::Dev(args) => dev::exec(args),
        Command::Demo(args) => demo::exec(args, templates),
        Command::Kinds(args) => kinds::exec(args),
        Command::Completions(args) => completions::exec(args),
        Command::Serve(args) => serve::exec(args),
    }
}
