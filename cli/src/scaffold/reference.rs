//! `kubeforge create controller --kind <K> --reference`: the project starts from kubeforge's
//! own implementation of Kubernetes' controller for `K` (crate `kubeforge-controllers`) instead
//! of an empty reconcile. The controller's files become `src/controllers/<module>/` (or
//! `<module>.rs`), the support they share (Pod ranking, adoption, expectations, hashes, status
//! writes) `src/controllers/reference/`, once; their `crate::` paths are rewritten to where the
//! copies live, and the crates they use are added to Cargo.toml. The sources are embedded from
//! `cli/reference-controllers`, a link to `controllers/src` (as `cli/templates` is to
//! `templates/`), so the CLI ships the code the workspace tests.

use anyhow::{Context as _, bail};
use include_dir::{Dir, include_dir};
use serde_json::json;

use crate::kinds::BuiltinKind;
use crate::scaffold::Changes;
use crate::templates::Templates;

/// `controllers/src`, embedded.
static SOURCES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/reference-controllers");

/// The shared modules the controllers reach through `crate::…` paths.
const SUPPORT: &[&str] = &[
    "claims.rs",
    "clock.rs",
    "expectations.rs",
    "hash.rs",
    "pods.rs",
    "revisions.rs",
    "writes.rs",
];

/// Each reference controller: its kind and group, and its files under `src/` (module root
/// first).
const CONTROLLERS: &[(&str, &str, &[&str])] = &[
    ("ReplicaSet", "apps", &["replicaset.rs"]),
    (
        "Deployment",
        "apps",
        &[
            "deployment/mod.rs",
            "deployment/rollout.rs",
            "deployment/status.rs",
        ],
    ),
    (
        "StatefulSet",
        "apps",
        &[
            "statefulset/mod.rs",
            "statefulset/identity.rs",
            "statefulset/revision.rs",
        ],
    ),
    (
        "DaemonSet",
        "apps",
        &[
            "daemonset/mod.rs",
            "daemonset/placement.rs",
            "daemonset/revision.rs",
            "daemonset/rollout.rs",
        ],
    ),
    ("Job", "batch", &["job/mod.rs", "job/indexes.rs"]),
    (
        "HorizontalPodAutoscaler",
        "autoscaling",
        &[
            "hpa/mod.rs",
            "hpa/behavior.rs",
            "hpa/calculator.rs",
            "hpa/metrics.rs",
            "hpa/proposal.rs",
            "hpa/quantity.rs",
            "hpa/reconcile.rs",
        ],
    ),
    (
        "Ingress",
        "networking.k8s.io",
        &[
            "ingress/mod.rs",
            "ingress/proxy.rs",
            "ingress/routes.rs",
            "ingress/tls.rs",
        ],
    ),
    (
        "NetworkPolicy",
        "networking.k8s.io",
        &[
            "networkpolicy/mod.rs",
            "networkpolicy/evaluator.rs",
            "networkpolicy/nft.rs",
        ],
    ),
    (
        "CronJob",
        "batch",
        &["cronjob/mod.rs", "cronjob/schedule.rs"],
    ),
];

/// The text of `controllers/src/<path>`.
fn source(path: &str) -> anyhow::Result<&'static str> {
    SOURCES
        .get_file(path)
        .and_then(|f| f.contents_utf8())
        .with_context(|| format!("the reference source {path} is not embedded in this kubeforge"))
}

/// Where the shared support goes, under `src/controllers/`.
const SUPPORT_MODULE: &str = "reference";

/// The crates the reference code uses beyond what `kubeforge init` puts in Cargo.toml, at the
/// versions `kubeforge-controllers` builds with (its Cargo.toml).
const DEPENDENCIES: &[(&str, &str)] = &[
    (
        "kube",
        r#"{ version = "5", default-features = false, features = ["client", "jsonpatch"] }"#,
    ),
    ("jiff", r#"{ version = "0.2", features = ["serde"] }"#),
    ("parking_lot", r#""0.12""#),
    ("futures", r#""0.3""#),
    ("json-patch", r#""4""#),
];

/// What only the CronJob controller's schedules need.
const CRON_DEPENDENCIES: &[(&str, &str)] = &[
    ("croner", r#""3""#),
    (
        "chrono",
        r#"{ version = "0.4", default-features = false, features = ["std", "clock"] }"#,
    ),
    ("chrono-tz", r#""0.10""#),
];

/// What only the HorizontalPodAutoscaler's metrics client needs (raw requests to the metrics
/// APIs).
const HPA_DEPENDENCIES: &[(&str, &str)] = &[("http", r#""1""#)];

/// What only the Ingress controller's proxy needs, at the versions kubeforge-controllers uses.
const INGRESS_DEPENDENCIES: &[(&str, &str)] = &[
    ("http", r#""1""#),
    ("hyper", r#"{ version = "1", features = ["full"] }"#),
    ("hyper-util", r#"{ version = "0.1", features = ["full"] }"#),
    ("http-body-util", r#""0.1""#),
    ("bytes", r#""1""#),
    (
        "rustls",
        r#"{ version = "0.23", default-features = false, features = ["ring", "std", "tls12", "logging"] }"#,
    ),
    (
        "tokio-rustls",
        r#"{ version = "0.26", default-features = false, features = ["ring", "tls12", "logging"] }"#,
    ),
    ("arc-swap", r#""1""#),
    ("tokio-util", r#""0.7""#),
];

/// What only the NetworkPolicy enforcer needs: CIDRs, and the stop token of its runnable.
const NETWORK_POLICY_DEPENDENCIES: &[(&str, &str)] =
    &[("ipnet", r#""2""#), ("tokio-util", r#""0.7""#)];

/// What the Ingress controller's unit tests need: certificates for the TLS tests.
const INGRESS_DEV_DEPENDENCIES: &[(&str, &str)] = &[("rcgen", r#""0.14""#)];

/// The crates `kind`'s reference controller needs beyond [`DEPENDENCIES`].
fn extra_dependencies(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "CronJob" => CRON_DEPENDENCIES,
        "HorizontalPodAutoscaler" => HPA_DEPENDENCIES,
        "Ingress" => INGRESS_DEPENDENCIES,
        "NetworkPolicy" => NETWORK_POLICY_DEPENDENCIES,
        _ => &[],
    }
}

/// The crates the unit tests of `kind`'s reference controller need.
fn extra_dev_dependencies(kind: &str) -> &'static [(&'static str, &'static str)] {
    match kind {
        "Ingress" => INGRESS_DEV_DEPENDENCIES,
        _ => &[],
    }
}

/// The files of the reference controller for `kind`, if kubeforge has one.
fn reference_files(kind: &BuiltinKind) -> Option<&'static [&'static str]> {
    CONTROLLERS
        .iter()
        .find(|(k, group, _)| *k == kind.kind && *group == kind.group)
        .map(|(_, _, files)| *files)
}

/// Plans the reference controller for `kind` as the project's module `module`.
pub fn reference_controller(
    changes: &mut Changes,
    t: &Templates,
    kind: &BuiltinKind,
    module: &str,
) -> anyhow::Result<()> {
    let Some(files) = reference_files(kind) else {
        bail!(
            "kubeforge has no reference controller for {}: --reference works for {}; leave it \
             out for a controller skeleton",
            kind.kind,
            reference_kinds()
        );
    };
    let single_file = files.len() == 1;
    let origin = format!(
        "//!\n//! Started from kubeforge's reference {} controller (kubeforge-controllers {}, \
         `kubeforge create controller --kind {} --reference`): this copy is yours to change.\n",
        kind.kind,
        env!("CARGO_PKG_VERSION"),
        kind.kind
    );
    for (i, path) in files.iter().enumerate() {
        let rel = if single_file {
            format!("src/controllers/{module}.rs")
        } else {
            let within = path.split_once('/').map_or(*path, |(_, p)| p);
            format!("src/controllers/{module}/{within}")
        };
        let mut text = rewrite_paths(source(path)?);
        if i == 0 {
            text = after_module_docs(&text, &origin);
        }
        changes.create(&rel, text)?;
    }
    add_support(changes, t)?;
    add_dependencies(
        changes,
        extra_dependencies(kind.kind),
        extra_dev_dependencies(kind.kind),
    )?;
    let vars = json!({ "module": module });
    changes.insert(
        "src/controllers/mod.rs",
        "controllers",
        &t.render("api/controller_mod.snippet", &vars)?,
    )?;
    changes.insert(
        "src/main.rs",
        "controllers",
        &t.render("controller/reference_wire.snippet", &vars)?,
    )
}

/// The kinds `--reference` accepts, for messages.
pub fn reference_kinds() -> String {
    let kinds: Vec<&str> = CONTROLLERS.iter().map(|(kind, _, _)| *kind).collect();
    kinds.join(", ")
}

/// The shared support, the first time a reference controller is added; later ones use (and
/// never overwrite) the copy the project has.
fn add_support(changes: &mut Changes, t: &Templates) -> anyhow::Result<()> {
    let root = format!("src/controllers/{SUPPORT_MODULE}/mod.rs");
    if changes.current(&root)?.is_some() {
        return Ok(());
    }
    let modules: Vec<&str> = SUPPORT.iter().map(|f| f.trim_end_matches(".rs")).collect();
    changes.create(
        &root,
        t.render(
            "controller/reference_mod.rs",
            &json!({ "modules": modules }),
        )?,
    )?;
    for file in SUPPORT {
        changes.create(
            &format!("src/controllers/{SUPPORT_MODULE}/{file}"),
            rewrite_paths(source(file)?),
        )?;
    }
    changes.insert(
        "src/controllers/mod.rs",
        "controllers",
        &format!("pub mod {SUPPORT_MODULE};\n"),
    )
}

/// `crate::x` in the reference crate is `crate::controllers::reference::x` in the project: the
/// controllers only reach the shared support through `crate::`.
fn rewrite_paths(text: &str) -> String {
    text.replace(
        "crate::",
        &format!("crate::controllers::{SUPPORT_MODULE}::"),
    )
}

/// `insert` after the file's leading `//!` block (the module docs), with the lint allowance a
/// copied module needs: the reference keeps public what the project may not call yet.
fn after_module_docs(text: &str, insert: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let docs = lines.iter().take_while(|l| l.starts_with("//!")).count();
    let mut out = lines[..docs].join("\n");
    out.push('\n');
    out.push_str(insert);
    out.push_str("\n#![allow(dead_code)]\n");
    out.push_str(&lines[docs..].join("\n"));
    out.push('\n');
    out
}

/// Adds the crates the reference code uses to `[dependencies]` (and its unit tests to
/// `[dev-dependencies]`), leaving any the project already names (at whatever version it chose)
/// alone.
fn add_dependencies(
    changes: &mut Changes,
    extra: &[(&'static str, &'static str)],
    dev: &[(&'static str, &'static str)],
) -> anyhow::Result<()> {
    let wanted: Vec<_> = DEPENDENCIES.iter().chain(extra).copied().collect();
    add_to_table(changes, "dependencies", &wanted)?;
    add_to_table(changes, "dev-dependencies", dev)
}

/// Adds `wanted` to the manifest's `[table]` (after its header), but not the crates it has.
fn add_to_table(changes: &mut Changes, table: &str, wanted: &[(&str, &str)]) -> anyhow::Result<()> {
    let manifest = changes
        .current("Cargo.toml")?
        .context("the project has no Cargo.toml")?;
    let parsed: toml::Table = manifest
        .parse()
        .context("Cargo.toml is not valid TOML; fix it and run again")?;
    let present = parsed
        .get(table)
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    let lines: Vec<String> = wanted
        .iter()
        .filter(|(name, _)| !present.contains_key(*name))
        .map(|(name, spec)| format!("{name} = {spec}"))
        .collect();
    if lines.is_empty() {
        return Ok(());
    }
    let header = format!("[{table}]");
    let Some(at) = manifest.lines().position(|l| l.trim() == header) else {
        bail!(
            "Cargo.toml has no `{header}` table; add one, then run again (the reference \
             controller needs: {})",
            lines.join(", ")
        );
    };
    let mut out: Vec<String> = manifest.lines().map(str::to_owned).collect();
    out.insert(at + 1, lines.join("\n"));
    out.insert(
        at + 1,
        "# Used by the reference controllers (kubeforge create controller --reference).".into(),
    );
    changes.replace("Cargo.toml", out.join("\n") + "\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module of the controllers crate (but its lib.rs and main.rs) is listed, so a copied
    /// controller never misses one, and every listed file is embedded.
    #[test]
    fn every_reference_source_is_listed_and_embedded() {
        let mut listed: Vec<&str> = SUPPORT.to_vec();
        for (_, _, files) in CONTROLLERS {
            listed.extend(files.iter());
        }
        let mut embedded = Vec::new();
        let mut dirs = vec![&SOURCES];
        while let Some(dir) = dirs.pop() {
            dirs.extend(dir.dirs());
            for file in dir.files() {
                let path = file.path().to_string_lossy().into_owned();
                if path.ends_with(".rs") && !matches!(path.as_str(), "lib.rs" | "main.rs") {
                    embedded.push(path);
                }
            }
        }
        listed.sort_unstable();
        embedded.sort();
        assert_eq!(listed, embedded);
    }

    #[test]
    fn the_module_docs_stay_first_and_paths_point_at_the_copies() {
        let text = "//! A controller.\n//! More.\n\nuse crate::pods;\n";
        let out = after_module_docs(&rewrite_paths(text), "//!\n//! Started from X.\n");
        assert_eq!(
            out,
            "//! A controller.\n//! More.\n//!\n//! Started from X.\n\n#![allow(dead_code)]\n\n\
             use crate::controllers::reference::pods;\n"
        );
    }
}
