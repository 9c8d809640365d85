//! The templates the generator renders: the `templates/` folder embedded at build time, or a
//! folder given with `--templates`. Handlebars in strict mode (a variable a template uses but
//! the generator does not give is an error) and without HTML escaping.

use std::path::Path;

use anyhow::{Context as _, bail};
use handlebars::Handlebars;
use include_dir::{Dir, include_dir};
use serde::Serialize;

/// The templates shipped with the CLI (`cli/templates` links to the workspace's `templates/`).
static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// The file extension of a template.
const EXT: &str = ".hbs";

/// A set of named templates (`init/main.rs` for `templates/init/main.rs.hbs`).
pub struct Templates {
    hb: Handlebars<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("count", &self.hb.get_templates().len())
            .finish()
    }
}

impl Templates {
    /// The templates in `dir` when given, else the embedded ones.
    pub fn load(dir: Option<&Path>) -> anyhow::Result<Templates> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        match dir {
            Some(dir) => load_dir(&mut hb, dir, dir)?,
            None => load_embedded(&mut hb, &EMBEDDED)?,
        }
        if hb.get_templates().is_empty() {
            bail!(
                "no templates (*.hbs) found{}",
                dir.map(|d| format!(" in {}", d.display()))
                    .unwrap_or_default()
            );
        }
        Ok(Templates { hb })
    }

    /// Renders template `name` (e.g. `init/main.rs`) with `data`.
    pub fn render(&self, name: &str, data: &impl Serialize) -> anyhow::Result<String> {
        if !self.hb.has_template(name) {
            bail!(
                "template {name}{EXT} is missing; a --templates folder must hold every file of \
                 kubeforge's templates/ (copy it and edit the copy)"
            );
        }
        self.hb
            .render(name, data)
            .with_context(|| format!("rendering template {name}{EXT}"))
    }
}

fn register(hb: &mut Handlebars<'static>, path: &Path, text: &str) -> anyhow::Result<()> {
    let rel = path.to_string_lossy().replace('\\', "/");
    let Some(name) = rel.strip_suffix(EXT) else {
        return Ok(());
    };
    hb.register_template_string(name, text)
        .with_context(|| format!("template {rel} does not parse"))
}

fn load_embedded(hb: &mut Handlebars<'static>, dir: &Dir<'static>) -> anyhow::Result<()> {
    for file in dir.files() {
        let text = file
            .contents_utf8()
            .with_context(|| format!("template {} is not UTF-8", file.path().display()))?;
        register(hb, file.path(), text)?;
    }
    for sub in dir.dirs() {
        load_embedded(hb, sub)?;
    }
    Ok(())
}

fn load_dir(hb: &mut Handlebars<'static>, root: &Path, dir: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading the templates folder {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            load_dir(hb, root, &path)?;
        } else if path.to_string_lossy().ends_with(EXT) {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading template {}", path.display()))?;
            register(hb, path.strip_prefix(root).unwrap_or(&path), &text)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_templates_load_and_render_strictly() {
        let t = Templates::load(None).unwrap();
        let out = t
            .render(
                "config/rbac/service_account.yaml",
                &serde_json::json!({"name": "op"}),
            )
            .unwrap();
        assert!(out.contains("app.kubernetes.io/name: op"), "{out}");
        let err = t
            .render("config/rbac/service_account.yaml", &serde_json::json!({}))
            .unwrap_err();
        assert!(format!("{err:#}").contains("name"), "{err:#}");
        assert!(t.render("no/such", &()).is_err());
    }
}
