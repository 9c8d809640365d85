//! Which templates each command renders, with which variables, to which files and markers.
//!
//! Variables: `init/*` and `config/*` see `name`, `domain`, `example_group`, `kubeforge_dep`,
//! `testkit_dep`; `api/*` see `group`, `version`, `kind`, `kind_snake`, `kind_lower`, `plural`,
//! `cluster`, `storage`, `module`, `sample_file`; `controller/builtin.rs` sees `kind`, `group`,
//! `version`, `module`, `summary`, `imports`, `owns` and `watches` (each with `kind`, `var`, and
//! for watches `mapper` and `code`), `both` and `rbac`.

use serde::Serialize;
use serde_json::json;

use super::Changes;
use super::builtin::{self, Related};
use crate::kinds::{self, BuiltinKind};
use crate::names;
use crate::templates::Templates;

/// The files `kubeforge init` writes: (template, path in the project).
const INIT_FILES: &[(&str, &str)] = &[
    ("init/Cargo.toml", "Cargo.toml"),
    ("init/main.rs", "src/main.rs"),
    ("init/api_mod.rs", "src/api/mod.rs"),
    ("init/controllers_mod.rs", "src/controllers/mod.rs"),
    ("init/tests_operator.rs", "tests/operator.rs"),
    ("init/tests_support.rs", "tests/support/mod.rs"),
    ("init/Dockerfile", "Dockerfile"),
    ("init/dockerignore", ".dockerignore"),
    ("init/gitignore", ".gitignore"),
    ("init/Makefile", "Makefile"),
    ("init/README.md", "README.md"),
    (
        "config/default/kustomization.yaml",
        "config/default/kustomization.yaml",
    ),
    (
        "config/crd/kustomization.yaml",
        "config/crd/kustomization.yaml",
    ),
    (
        "config/rbac/kustomization.yaml",
        "config/rbac/kustomization.yaml",
    ),
    ("config/rbac/role.yaml", "config/rbac/role.yaml"),
    (
        "config/rbac/role_binding.yaml",
        "config/rbac/role_binding.yaml",
    ),
    (
        "config/rbac/service_account.yaml",
        "config/rbac/service_account.yaml",
    ),
    (
        "config/rbac/leader_election_role.yaml",
        "config/rbac/leader_election_role.yaml",
    ),
    (
        "config/rbac/leader_election_role_binding.yaml",
        "config/rbac/leader_election_role_binding.yaml",
    ),
    (
        "config/manager/kustomization.yaml",
        "config/manager/kustomization.yaml",
    ),
    ("config/manager/manager.yaml", "config/manager/manager.yaml"),
    (
        "config/manager/metrics_service.yaml",
        "config/manager/metrics_service.yaml",
    ),
    (
        "config/samples/kustomization.yaml",
        "config/samples/kustomization.yaml",
    ),
];

/// The variables of `init`.
#[derive(Debug, Serialize)]
pub struct InitVars {
    /// Project name.
    pub name: String,
    /// Domain.
    pub domain: String,
    /// An example group for the README (`<first label of the name>.<domain>`).
    pub example_group: String,
    /// The `kubeforge = …` dependency line.
    pub kubeforge_dep: String,
    /// The `kubeforge-testkit = …` dependency line.
    pub testkit_dep: String,
}

/// Plans every file of a new project.
pub fn init(changes: &mut Changes, t: &Templates, vars: &InitVars) -> anyhow::Result<()> {
    for (template, path) in INIT_FILES {
        changes.create(path, t.render(template, vars)?)?;
    }
    Ok(())
}

/// The variables of one custom resource version.
#[derive(Debug, Serialize)]
pub struct ApiVars {
    /// Full API group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// `cron_tab`.
    pub kind_snake: String,
    /// `crontab`.
    pub kind_lower: String,
    /// Plural resource name.
    pub plural: String,
    /// Cluster-scoped.
    pub cluster: bool,
    /// The storage version.
    pub storage: bool,
    /// The controller module (`cron_tab`).
    pub module: String,
    /// `config/samples/<file>`.
    pub sample_file: String,
}

/// Plans the resource type (and its version module on first use), its sample and test.
pub fn api_resource(changes: &mut Changes, t: &Templates, vars: &ApiVars) -> anyhow::Result<()> {
    let version_dir = format!("src/api/{}", vars.version);
    let version_mod = format!("{version_dir}/mod.rs");
    if changes.current(&version_mod)?.is_none() {
        changes.create(&version_mod, t.render("api/version_mod.rs", vars)?)?;
        changes.insert(
            "src/api/mod.rs",
            "versions",
            &t.render("api/version.snippet", vars)?,
        )?;
    }
    changes.create(
        &format!("{version_dir}/{}.rs", vars.kind_snake),
        t.render("api/types.rs", vars)?,
    )?;
    changes.insert(&version_mod, "kinds", &t.render("api/kind.snippet", vars)?)?;
    let sample = format!("config/samples/{}", vars.sample_file);
    changes.create(&sample, t.render("api/sample.yaml", vars)?)?;
    add_kustomize_resource(
        changes,
        "config/samples/kustomization.yaml",
        &vars.sample_file,
    )?;
    changes.insert(
        "tests/operator.rs",
        "tests",
        &t.render("api/test.snippet", vars)?,
    )?;
    Ok(())
}

/// Plans the controller of a custom resource version.
pub fn api_controller(changes: &mut Changes, t: &Templates, vars: &ApiVars) -> anyhow::Result<()> {
    changes.create(
        &format!("src/controllers/{}.rs", vars.module),
        t.render("api/controller.rs", vars)?,
    )?;
    wire_controller(changes, t, &vars.module)
}

/// Adds the controller module and its `setup` call at the markers.
fn wire_controller(changes: &mut Changes, t: &Templates, module: &str) -> anyhow::Result<()> {
    let vars = json!({ "module": module });
    changes.insert(
        "src/controllers/mod.rs",
        "controllers",
        &t.render("api/controller_mod.snippet", &vars)?,
    )?;
    changes.insert(
        "src/main.rs",
        "controllers",
        &t.render("api/wire.snippet", &vars)?,
    )
}

/// Plans a controller for the built-in `kind` (with the watches the scaffold knows for it).
pub fn builtin_controller(
    changes: &mut Changes,
    t: &Templates,
    kind: &BuiltinKind,
    module: &str,
) -> anyhow::Result<()> {
    let known = builtin::knowledge(kind.kind, kind.group);
    let resolve = |r: &Related| {
        kinds::resolve(
            r.kind,
            Some(if r.group.is_empty() { "core" } else { r.group }),
            None,
        )
        .map_err(anyhow::Error::from)
    };
    let mut imports = vec![kind.rust_path.to_owned()];
    let mut owns = Vec::new();
    let mut watches = Vec::new();
    for r in known.map(|k| k.owns).unwrap_or_default() {
        let b = resolve(r)?;
        imports.push(b.rust_path.to_owned());
        owns.push(json!({ "kind": b.kind, "plural": b.plural, "var": var_name(b.kind) }));
    }
    for r in known.map(|k| k.watches).unwrap_or_default() {
        let b = resolve(r)?;
        imports.push(b.rust_path.to_owned());
        let (mapper, template) = r.mapper.unwrap_or_default();
        watches.push(json!({
            "kind": b.kind,
            "var": format!("cached_{}", var_name(b.kind)),
            "mapper": mapper,
            "code": t.render(&format!("controller/mappers/{template}.rs"), &json!({}))?,
        }));
    }
    imports.sort();
    imports.dedup();
    let rbac: Vec<_> = known
        .map(|k| k.rbac)
        .unwrap_or_default()
        .iter()
        .map(|(group, resources, verbs)| json!({ "group": group, "resources": resources, "verbs": verbs }))
        .collect();
    let vars = json!({
        "kind": kind.kind,
        "group": kind.group,
        "version": kind.version,
        "module": module,
        "summary": known.map(|k| k.summary).unwrap_or_default(),
        "imports": imports,
        "both": !owns.is_empty() && !watches.is_empty(),
        "owns": owns,
        "watches": watches,
        "rbac": rbac,
    });
    changes.create(
        &format!("src/controllers/{module}.rs"),
        t.render("controller/builtin.rs", &vars)?,
    )?;
    wire_controller(changes, t, module)
}

/// `PersistentVolumeClaim` → `persistent_volume_claims`.
fn var_name(kind: &str) -> String {
    names::default_plural(&names::snake(kind))
}

/// Adds `entry` to the `resources:` list of a kustomization the generator owns.
pub fn add_kustomize_resource(changes: &mut Changes, rel: &str, entry: &str) -> anyhow::Result<()> {
    let text = changes
        .current(rel)?
        .unwrap_or_else(|| "resources: []\n".into());
    let mut resources = kustomize_resources(&text, rel)?;
    if resources.iter().any(|r| r == entry) {
        return Ok(());
    }
    resources.push(entry.to_owned());
    changes.replace(rel, set_kustomize_resources(&text, &resources));
    Ok(())
}

/// The `resources:` of a kustomization.
pub fn kustomize_resources(text: &str, rel: &str) -> anyhow::Result<Vec<String>> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| anyhow::anyhow!("{rel} is not valid YAML ({e}); fix it or restore it"))?;
    Ok(doc
        .get("resources")
        .and_then(|r| r.as_sequence())
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// `text` with its `resources:` list replaced, keeping the comments and other keys.
pub fn set_kustomize_resources(text: &str, resources: &[String]) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    let mut done = false;
    while let Some(line) = lines.next() {
        if !done && line.starts_with("resources:") {
            done = true;
            while lines
                .peek()
                .is_some_and(|l| l.starts_with("- ") || l.starts_with("  -"))
            {
                lines.next();
            }
            out.push_str(&render_list(resources));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !done {
        out.push_str(&render_list(resources));
    }
    out
}

fn render_list(resources: &[String]) -> String {
    if resources.is_empty() {
        return "resources: []\n".into();
    }
    let mut s = String::from("resources:\n");
    for r in resources {
        s.push_str(&format!("- {r}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kustomize_lists_keep_comments() {
        let text = "# generated\nresources: []\nimages: []\n";
        let one = set_kustomize_resources(text, &["a.yaml".into()]);
        assert_eq!(one, "# generated\nresources:\n- a.yaml\nimages: []\n");
        let two = set_kustomize_resources(&one, &["a.yaml".into(), "b.yaml".into()]);
        assert_eq!(
            kustomize_resources(&two, "k").unwrap(),
            vec!["a.yaml", "b.yaml"]
        );
        assert!(two.starts_with("# generated\n") && two.ends_with("images: []\n"));
    }
}
