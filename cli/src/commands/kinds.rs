//! `kubeforge kinds`: the built-in kinds a controller can be created for.

use crate::kinds::KINDS;
use crate::scaffold::builtin;

/// Arguments of `kubeforge kinds`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  kubeforge kinds | grep apps")]
pub struct Args {}

/// Prints the table: kind, group, version, plural, scope; `*` marks the kinds whose
/// controllers the scaffold knows (their owned and watched kinds are generated too).
pub fn exec(_args: Args) -> anyhow::Result<()> {
    println!(
        "{:<34} {:<30} {:<9} {:<36} {:<10}",
        "KIND", "GROUP", "VERSION", "PLURAL", "SCOPE"
    );
    for k in KINDS.iter().filter(|k| k.watchable) {
        let known = if builtin::knowledge(k.kind, k.group).is_some() {
            "*"
        } else {
            ""
        };
        println!(
            "{:<34} {:<30} {:<9} {:<36} {:<10}",
            format!("{}{known}", k.kind),
            if k.group.is_empty() { "core" } else { k.group },
            k.version,
            k.plural,
            if k.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            },
        );
    }
    println!(
        "\n* the scaffold generates this kind's owned and watched kinds, their RBAC and mappers"
    );
    Ok(())
}
