//! `kubeforge.toml`: the project file. It records what the generator made — the domain, the
//! name, the layout version, every resource and controller — so later commands know the
//! project, refuse to scaffold a kind twice, and a project can be re-scaffolded on a newer
//! layout.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// The project file's name, at the project root.
pub const FILE: &str = "kubeforge.toml";

/// The layout this CLI writes; a project of another layout is refused with a note.
pub const LAYOUT: &str = "kubeforge.rs/v1";

/// The contents of `kubeforge.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The scaffold layout version.
    pub layout: String,
    /// The domain custom resource groups default under (`--group cache` → `cache.<domain>`).
    pub domain: String,
    /// The project (crate, binary, Deployment) name.
    pub name: String,
    /// Every custom resource version `create api` made.
    #[serde(default, rename = "resource", skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    /// Every controller `create api` or `create controller` made.
    #[serde(default, rename = "controller", skip_serializing_if = "Vec::is_empty")]
    pub controllers: Vec<ControllerEntry>,
}

/// One version of a custom resource kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// The API group (`cache.example.com`).
    pub group: String,
    /// The version (`v1`).
    pub version: String,
    /// The kind (`Memcached`).
    pub kind: String,
    /// The plural resource name.
    pub plural: String,
    /// Namespaced (the default) or cluster-scoped.
    pub namespaced: bool,
    /// Whether this version is the storage version.
    pub storage: bool,
}

/// One controller.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ControllerEntry {
    /// The module under `src/controllers/` (and the controller's name).
    pub module: String,
    /// The primary kind.
    pub kind: String,
    /// Its API group (`""` for core).
    pub group: String,
    /// Its version.
    pub version: String,
    /// Whether the primary is a built-in kind (not a custom resource of this project).
    pub builtin: bool,
}

impl Project {
    /// Reads and checks the project file at `root`.
    pub fn read(root: &Path) -> anyhow::Result<Project> {
        let path = root.join(FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}: run this inside a kubeforge project (made by `kubeforge init`)",
                path.display()
            )
        })?;
        let project: Project = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} does not parse: {e}\nfix the file by hand (it is what `kubeforge init` and \
                 `kubeforge create` wrote), or restore it from version control",
                path.display()
            )
        })?;
        if project.layout != LAYOUT {
            bail!(
                "{} has layout {:?}, but this kubeforge writes {LAYOUT:?}: use the kubeforge \
                 version that made the project, or re-scaffold it with `kubeforge init` in a new \
                 directory and move the code over",
                path.display(),
                project.layout
            );
        }
        Ok(project)
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!(
            "# The kubeforge project file: what `kubeforge init` and `kubeforge create` made here.\n\
             # kubeforge reads it to know the project; edit it only to remove an entry whose files\n\
             # you deleted.\n{body}"
        )
    }

    /// Resources of `group`/`kind` (every version).
    pub fn versions_of(&self, group: &str, kind: &str) -> Vec<&Resource> {
        self.resources
            .iter()
            .filter(|r| r.group == group && r.kind == kind)
            .collect()
    }
}

/// The project root: the nearest directory at or above `start` holding `kubeforge.toml`.
pub fn find_root(start: &Path) -> anyhow::Result<PathBuf> {
    let start = std::path::absolute(start)?;
    for dir in start.ancestors() {
        if dir.join(FILE).is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    bail!(
        "no {FILE} in {} or any parent directory: run `kubeforge init` first, or cd into a \
         kubeforge project",
        start.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let project = Project {
            layout: LAYOUT.into(),
            domain: "example.com".into(),
            name: "op".into(),
            resources: vec![Resource {
                group: "cache.example.com".into(),
                version: "v1".into(),
                kind: "Memcached".into(),
                plural: "memcacheds".into(),
                namespaced: true,
                storage: true,
            }],
            controllers: Vec::new(),
        };
        std::fs::write(dir.path().join(FILE), project.to_toml()).unwrap();
        assert_eq!(Project::read(dir.path()).unwrap(), project);
        let nested = dir.path().join("src/api");
        std::fs::create_dir_all(&nested).unwrap();
        assert_eq!(find_root(&nested).unwrap(), dir.path());

        std::fs::write(
            dir.path().join(FILE),
            "layout = \"other/v9\"\ndomain = \"d\"\nname = \"n\"\n",
        )
        .unwrap();
        let err = Project::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("other/v9") && err.contains(LAYOUT), "{err}");
        std::fs::write(dir.path().join(FILE), "layout = [").unwrap();
        let err = Project::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("does not parse"), "{err}");
    }
}
