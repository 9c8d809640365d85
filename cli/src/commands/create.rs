//! `kubeforge create api` (a custom resource version and its controller), `kubeforge create
//! controller` (a controller for a built-in kind) and `kubeforge create webhook` (in
//! [`super::create_webhook`]).

use std::path::Path;

use anyhow::bail;

use crate::kinds;
use crate::names;
use crate::project::{self, ControllerEntry, Project, Resource};
use crate::scaffold::reference;
use crate::scaffold::render::{self, ApiVars};
use crate::scaffold::{Changes, Written};
use crate::templates::Templates;

/// What to create.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// A custom resource kind (or a new version of one), its controller, a sample and a test.
    #[command(
        after_help = "Examples:\n  kubeforge create api --group cache --version v1 --kind Memcached\n  \
                            kubeforge create api --group cache --version v2 --kind Memcached   # a second version\n  \
                            kubeforge create api --group infra --version v1alpha1 --kind Cluster --cluster"
    )]
    Api(ApiArgs),
    /// A typed controller for a built-in kind (see `kubeforge kinds`).
    #[command(
        after_help = "Examples:\n  kubeforge create controller --kind Deployment\n  \
                            kubeforge create controller --kind Event --group events.k8s.io\n  \
                            kubeforge create controller --kind StatefulSet --reference   # start from kubeforge's StatefulSet controller"
    )]
    Controller(ControllerArgs),
    /// Defaulting, validation and conversion webhooks for one of the project's kinds.
    #[command(
        after_help = "Examples:\n  kubeforge create webhook --kind Memcached --defaulting --validation\n  \
                            kubeforge create webhook --kind Memcached --conversion   # between its versions"
    )]
    Webhook(super::create_webhook::WebhookArgs),
}

/// Arguments of `kubeforge create api`.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The API group: a name under the project's domain (`cache` → `cache.<domain>`), or a full
    /// DNS subdomain.
    #[arg(long)]
    pub group: String,
    /// The API version: v1, v1alpha1, v2beta3, …
    #[arg(long)]
    pub version: String,
    /// The kind, UpperCamelCase.
    #[arg(long)]
    pub kind: String,
    /// The plural resource name (default: the kind, lower-cased and pluralised).
    #[arg(long)]
    pub plural: Option<String>,
    /// Make the kind cluster-scoped (default: namespaced).
    #[arg(long)]
    pub cluster: bool,
    /// Make this version the storage version (for a second version of a kind).
    #[arg(long)]
    pub storage: bool,
    /// Do not create the resource type (it exists; only add its controller).
    #[arg(long)]
    pub no_resource: bool,
    /// Do not create a controller.
    #[arg(long)]
    pub no_controller: bool,
}

/// Arguments of `kubeforge create controller`.
#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// The built-in kind, e.g. Deployment (also accepted: its plural or lower case).
    #[arg(long)]
    pub kind: String,
    /// Its API group when the kind exists in several (`core` for the core group).
    #[arg(long)]
    pub group: Option<String>,
    /// Its API version (default: the preferred one).
    #[arg(long)]
    pub version: Option<String>,
    /// Start from kubeforge's own implementation of Kubernetes' controller for the kind
    /// (ReplicaSet, Deployment, StatefulSet, DaemonSet, Job, CronJob), copied into the project,
    /// instead of an empty reconcile.
    #[arg(long)]
    pub reference: bool,
}

/// Runs `create api` or `create controller` in the project around the current directory.
pub fn exec(command: Command, templates: Option<&Path>) -> anyhow::Result<()> {
    let root = project::find_root(Path::new("."))?;
    let summary = match command {
        Command::Api(args) => create_api(&root, &args, templates)?,
        Command::Controller(args) => create_controller(&root, &args, templates)?,
        Command::Webhook(args) => super::create_webhook::create_webhook(&root, &args, templates)?,
    };
    println!("{summary}");
    Ok(())
}

/// Scaffolds a resource version (and controller) in the project at `root`.
pub fn create_api(root: &Path, args: &ApiArgs, templates: Option<&Path>) -> anyhow::Result<String> {
    let mut project = Project::read(root)?;
    names::check_kind(&args.kind)?;
    names::check_version(&args.version)?;
    let group = if args.group.contains('.') {
        args.group.clone()
    } else {
        format!("{}.{}", args.group, project.domain)
    };
    names::check_group(&group)?;
    let plural = args
        .plural
        .clone()
        .unwrap_or_else(|| names::default_plural(&args.kind));
    names::check_dns_subdomain("--plural", &plural)?;
    let existing: Vec<Resource> = project
        .versions_of(&group, &args.kind)
        .into_iter()
        .cloned()
        .collect();
    check_version_fits(args, &group, &plural, &existing)?;
    check_kind_free(&project, args, &group)?;
    let module = names::snake(&args.kind);
    let has_controller = project.controllers.iter().any(|c| c.module == module);
    let want_controller = !args.no_controller && !has_controller;
    if !args.no_controller && has_controller && existing.is_empty() {
        bail!(
            "src/controllers/{module}.rs is already a controller (for another kind); rename that \
             module or choose another --kind"
        );
    }
    let storage = existing.is_empty() || args.storage;
    let vars = api_vars(args, &group, &plural, &module, storage);
    let templates = Templates::load(templates)?;
    let mut changes = Changes::new(root, false);
    if !args.no_resource {
        add_resource(
            &mut changes,
            &mut project,
            &templates,
            &vars,
            args,
            &existing,
        )?;
    }
    if want_controller {
        render::api_controller(&mut changes, &templates, &vars)?;
        project.controllers.push(ControllerEntry {
            module: module.clone(),
            kind: args.kind.clone(),
            group: group.clone(),
            version: args.version.clone(),
            builtin: false,
        });
    }
    changes.replace(project::FILE, project.to_toml());
    let written = changes.commit()?;
    Ok(api_summary(
        args,
        &group,
        &module,
        &project,
        want_controller,
        has_controller,
        &written,
    ))
}

/// Checks that this version can be added (or, with --no-resource, exists) next to the kind's
/// other versions, which must agree on scope and names.
fn check_version_fits(
    args: &ApiArgs,
    group: &str,
    plural: &str,
    existing: &[Resource],
) -> anyhow::Result<()> {
    let this_version = existing.iter().find(|r| r.version == args.version);
    if args.no_resource && this_version.is_none() {
        bail!(
            "--no-resource: {}/{} {} is not in {}; create it first (without --no-resource)",
            group,
            args.version,
            args.kind,
            project::FILE
        );
    }
    if !args.no_resource {
        if this_version.is_some() {
            bail!(
                "kind {} {group}/{} already exists in this project (src/api/{}/{}.rs); pick \
                 another --version to add a version, or another --kind",
                args.kind,
                args.version,
                args.version,
                names::snake(&args.kind)
            );
        }
        if let Some(first) = existing.first() {
            if first.namespaced == args.cluster {
                bail!(
                    "{} is {} in version {}; every version of a kind has the same scope: {} \
                     --cluster",
                    args.kind,
                    if first.namespaced {
                        "namespaced"
                    } else {
                        "cluster-scoped"
                    },
                    first.version,
                    if first.namespaced { "drop" } else { "add" }
                );
            }
            if first.plural != plural {
                bail!(
                    "{} has plural {:?} in version {}; every version of a kind has the same names: \
                     pass --plural {}",
                    args.kind,
                    first.plural,
                    first.version,
                    first.plural
                );
            }
        }
    }
    Ok(())
}

/// Checks that no other group of the project has this kind: the Rust type and the controller
/// module are named after the kind alone.
fn check_kind_free(project: &Project, args: &ApiArgs, group: &str) -> anyhow::Result<()> {
    if project
        .resources
        .iter()
        .any(|r| r.kind == args.kind && r.group != group)
    {
        bail!(
            "kind {} already exists in another group of this project; its Rust type and \
             controller module would clash: choose another --kind",
            args.kind
        );
    }
    Ok(())
}

/// The template variables of the resource, controller, sample and test files.
fn api_vars(args: &ApiArgs, group: &str, plural: &str, module: &str, storage: bool) -> ApiVars {
    ApiVars {
        group: group.to_string(),
        version: args.version.clone(),
        kind: args.kind.clone(),
        kind_snake: module.to_string(),
        kind_lower: args.kind.to_ascii_lowercase(),
        plural: plural.to_string(),
        cluster: args.cluster,
        storage,
        module: module.to_string(),
        sample_file: format!(
            "{}_{}_{}.yaml",
            group.split('.').next().unwrap_or(group),
            args.version,
            args.kind.to_ascii_lowercase()
        ),
    }
}

/// Writes the resource version's files and records it in the project file; with --storage,
/// takes the storage flag from the kind's other versions.
fn add_resource(
    changes: &mut Changes,
    project: &mut Project,
    templates: &Templates,
    vars: &ApiVars,
    args: &ApiArgs,
    existing: &[Resource],
) -> anyhow::Result<()> {
    render::api_resource(changes, templates, vars)?;
    if args.storage {
        for old in existing.iter().filter(|r| r.storage) {
            move_storage_away(changes, old, &args.kind)?;
        }
        for r in &mut project.resources {
            if r.group == vars.group && r.kind == args.kind {
                r.storage = false;
            }
        }
    }
    project.resources.push(Resource {
        group: vars.group.clone(),
        version: args.version.clone(),
        kind: args.kind.clone(),
        plural: vars.plural.clone(),
        namespaced: !args.cluster,
        storage: vars.storage,
    });
    Ok(())
}

/// What `create api` tells the user it did, and what to do next.
fn api_summary(
    args: &ApiArgs,
    group: &str,
    module: &str,
    project: &Project,
    want_controller: bool,
    has_controller: bool,
    written: &Written,
) -> String {
    let mut summary = format!("Created {} {group}/{}", args.kind, args.version);
    if want_controller {
        summary.push_str(&format!(
            " and its controller (src/controllers/{module}.rs)"
        ));
    } else if has_controller && !args.no_controller {
        summary.push_str(&format!(
            "; its controller stays src/controllers/{module}.rs (it reconciles {})",
            project
                .controllers
                .iter()
                .find(|c| c.module == module)
                .map_or("", |c| &c.version)
        ));
    }
    summary.push_str(&format!(
        "\n{} files created, {} updated. Next: edit the spec in src/api/{}/{module}.rs, then \
         `kubeforge generate` and `cargo test`.",
        written.created.len(),
        written.updated.len(),
        args.version
    ));
    summary
}

/// Removes `storage` from the attribute of an older version (the line the scaffold wrote).
fn move_storage_away(changes: &mut Changes, old: &Resource, kind: &str) -> anyhow::Result<()> {
    let rel = format!("src/api/{}/{}.rs", old.version, names::snake(kind));
    let text = changes.current(&rel)?.unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let storage_lines = lines.iter().filter(|l| l.trim() == "storage,").count();
    if storage_lines != 1 {
        bail!(
            "--storage: cannot find the `storage,` line of the #[kubeforge(...)] attribute in \
             {rel} (it holds the storage version now); remove `storage` there by hand and run \
             again without --storage, adding it to the new version yourself"
        );
    }
    let kept: Vec<&str> = lines
        .into_iter()
        .filter(|l| l.trim() != "storage,")
        .collect();
    changes.replace(&rel, kept.join("\n") + "\n");
    Ok(())
}

/// Scaffolds a controller for a built-in kind in the project at `root`.
pub fn create_controller(
    root: &Path,
    args: &ControllerArgs,
    templates: Option<&Path>,
) -> anyhow::Result<String> {
    let mut project = Project::read(root)?;
    if project.resources.iter().any(|r| r.kind == args.kind) {
        bail!(
            "{} is a custom resource of this project, not a built-in kind: its controller comes \
             with `kubeforge create api --group <g> --version <v> --kind {} --no-resource`",
            args.kind,
            args.kind
        );
    }
    let kind = kinds::resolve(&args.kind, args.group.as_deref(), args.version.as_deref())?;
    if !kind.watchable {
        bail!(
            "{} ({}) cannot be listed or watched (the API server only creates it), so no \
             controller can reconcile it; see `kubeforge kinds`",
            kind.kind,
            kind.rust_path
        );
    }
    let module = names::snake(kind.kind);
    if project.controllers.iter().any(|c| c.module == module) {
        bail!(
            "a controller for {} already exists (src/controllers/{module}.rs)",
            kind.kind
        );
    }
    let templates = Templates::load(templates)?;
    let mut changes = Changes::new(root, false);
    if args.reference {
        reference::reference_controller(&mut changes, &templates, kind, &module)?;
    } else {
        render::builtin_controller(&mut changes, &templates, kind, &module)?;
    }
    project.controllers.push(ControllerEntry {
        module: module.clone(),
        kind: kind.kind.into(),
        group: kind.group.into(),
        version: kind.version.into(),
        builtin: true,
    });
    changes.replace(project::FILE, project.to_toml());
    let written = changes.commit()?;
    let start = if args.reference {
        "kubeforge's reference controller, copied"
    } else {
        "a skeleton"
    };
    Ok(format!(
        "Created the {} controller ({}/{}) in src/controllers/{module} from {start}; {} files \
         created, {} updated. Next: `kubeforge generate` to refresh config/rbac/role.yaml.",
        kind.kind,
        if kind.group.is_empty() {
            "core"
        } else {
            kind.group
        },
        kind.version,
        written.created.len(),
        written.updated.len()
    ))
}
