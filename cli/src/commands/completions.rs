//! `kubeforge completions <shell>`: a completion script for bash, zsh, fish, elvish or
//! PowerShell, generated from the command definitions (clap_complete).

use clap::CommandFactory;
use clap_complete::Shell;

/// Arguments of `kubeforge completions`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  kubeforge completions bash > ~/.local/share/bash-completion/completions/kubeforge"
)]
pub struct Args {
    /// The shell.
    shell: Shell,
}

/// Prints the script on stdout.
pub fn exec(args: Args) -> anyhow::Result<()> {
    let mut command = super::Cli::command();
    clap_complete::generate(
        args.shell,
        &mut command,
        "kubeforge",
        &mut std::io::stdout(),
    );
    Ok(())
}
