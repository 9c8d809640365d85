//! `kubeforge create webhook`: defaulting, validation and conversion webhooks for one of the
//! project's custom resources, in `src/webhooks/<kind>.rs`, registered with the manager through
//! `src/webhooks/mod.rs` (kubebuilder's `create webhook`).

use std::path::Path;

use anyhow::bail;
use serde_json::json;

use crate::names;
use crate::project::{self, Project};
use crate::scaffold::Changes;
use crate::templates::Templates;

/// Arguments of `kubeforge create webhook`.
#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    /// The kind, one of this project's custom resources.
    #[arg(long)]
    pub kind: String,
    /// Its API group, when two of the project's kinds share the name (default: the only one).
    #[arg(long)]
    pub group: Option<String>,
    /// A mutating webhook that fills in defaults.
    #[arg(long)]
    pub defaulting: bool,
    /// A validating webhook.
    #[arg(long)]
    pub validation: bool,
    /// A conversion webhook between the kind's versions (it needs two).
    #[arg(long)]
    pub conversion: bool,
    /// Replace `src/webhooks/<kind>.rs` if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Scaffolds the webhooks; returns what to tell the user.
pub fn create_webhook(
    root: &Path,
    args: &WebhookArgs,
    templates: Option<&Path>,
) -> anyhow::Result<String> {
    if !(args.defaulting || args.validation || args.conversion) {
        bail!("say which webhooks to create: --defaulting, --validation and/or --conversion");
    }
    let project = Project::read(root)?;
    names::check_kind(&args.kind)?;
    let mut groups: Vec<&str> = project
        .resources
        .iter()
        .filter(|r| r.kind == args.kind)
        .map(|r| r.group.as_str())
        .collect();
    groups.dedup();
    let group = match (&args.group, groups.as_slice()) {
        (_, []) => bail!(
            "{} is not a custom resource of this project ({}); create it first with `kubeforge \
             create api --group <group> --version v1 --kind {}`",
            args.kind,
            project::FILE,
            args.kind
        ),
        (Some(g), _) => groups
            .iter()
            .find(|have| *have == g || have.split('.').next() == Some(g.as_str()))
            .map(|g| (*g).to_owned())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} has no group {g} here (it has {})",
                    args.kind,
                    groups.join(", ")
                )
            })?,
        (None, [only]) => (*only).to_owned(),
        (None, several) => bail!(
            "{} exists in several groups ({}); pass --group",
            args.kind,
            several.join(", ")
        ),
    };
    let versions = project.versions_of(&group, &args.kind);
    let hub = versions
        .iter()
        .find(|r| r.storage)
        .or(versions.first())
        .map(|r| r.version.clone())
        .expect("the kind has a version");
    let spokes: Vec<_> = versions
        .iter()
        .filter(|r| r.version != hub)
        .map(|r| json!({"version": r.version, "alias": format!("{}{}", args.kind, r.version.to_uppercase())}))
        .collect();
    if args.conversion && spokes.is_empty() {
        bail!(
            "--conversion converts between versions, and {} has one ({hub}); add another with \
             `kubeforge create api --group {group} --version <v2> --kind {}` first",
            args.kind,
            args.kind
        );
    }
    let module = names::snake(&args.kind);
    let vars = json!({
        "kind": args.kind,
        "kind_snake": module,
        "group": group,
        "version": hub,
        "plural": versions[0].plural,
        "module": module,
        "defaulting": args.defaulting,
        "validation": args.validation,
        "admission": args.defaulting || args.validation,
        "conversion": args.conversion,
        "spokes": if args.conversion { spokes } else { Vec::new() },
    });
    let t = Templates::load(templates)?;
    let mut changes = Changes::new(root, args.force);
    let file = format!("src/webhooks/{module}.rs");
    changes.create(&file, t.render("webhook/kind.rs", &vars)?)?;
    if !root.join("src/webhooks/mod.rs").exists() {
        changes.create("src/webhooks/mod.rs", t.render("webhook/mod.rs", &vars)?)?;
    }
    changes.insert(
        "src/webhooks/mod.rs",
        "webhook-modules",
        &t.render("webhook/mod.snippet", &vars)?,
    )?;
    changes.insert(
        "src/webhooks/mod.rs",
        "webhooks",
        &t.render("webhook/wire.snippet", &vars)?,
    )?;
    changes.insert(
        "src/main.rs",
        "modules",
        &t.render("webhook/main_mod.snippet", &vars)?,
    )?;
    changes.insert(
        "src/main.rs",
        "webhooks",
        &t.render("webhook/main_wire.snippet", &vars)?,
    )?;
    let written = changes.commit()?;
    let what: Vec<&str> = [
        (args.defaulting, "defaulting"),
        (args.validation, "validation"),
        (args.conversion, "conversion"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    Ok(format!(
        "Created the {} webhooks of {} in {file} ({} files written).\nNext: write their rules in \
         {file}, then `kubeforge generate` to write config/webhook/ and config/certmanager/ \
         (deploying them needs cert-manager in the cluster).",
        what.join(", "),
        args.kind,
        written.created.len() + written.updated.len()
    ))
}
