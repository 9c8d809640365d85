//! Where a generated project gets kubeforge from: a source checkout by path when the CLI runs
//! from one (or `--kubeforge-path` names one), else the published crates by version.
//!
//! A path dependency also seeds the project's `Cargo.lock` from the checkout's, so the project
//! resolves the same dependency versions as kubeforge's own workspace and, sharing its target
//! directory, reuses what that workspace already built.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// The workspace this CLI was built from (it may no longer exist).
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// How the generated `Cargo.toml` names kubeforge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A kubeforge source checkout (its root, holding `runtime/` and `testkit/`).
    Path(PathBuf),
    /// The published crates, at this CLI's version.
    Version(String),
}

impl Source {
    /// `explicit` (`--kubeforge-path`) if given, else the checkout this CLI was built from if it
    /// is still there, else the published version.
    pub fn choose(explicit: Option<&Path>) -> anyhow::Result<Source> {
        if let Some(dir) = explicit {
            let dir = std::path::absolute(dir)?;
            if !is_checkout(&dir) {
                bail!(
                    "--kubeforge-path {}: not a kubeforge source checkout (expected \
                     runtime/Cargo.toml and testkit/Cargo.toml in it)",
                    dir.display()
                );
            }
            return Ok(Source::Path(dir));
        }
        let built_from = Path::new(BUILT_FROM);
        if is_checkout(built_from) {
            return Ok(Source::Path(std::fs::canonicalize(built_from)?));
        }
        Ok(Source::Version(env!("CARGO_PKG_VERSION").to_owned()))
    }

    /// The `kubeforge = …` dependency line.
    pub fn runtime_dep(&self) -> String {
        self.dep("kubeforge", "runtime")
    }

    /// The `kubeforge-testkit = …` dependency line.
    pub fn testkit_dep(&self) -> String {
        self.dep("kubeforge-testkit", "testkit")
    }

    fn dep(&self, krate: &str, dir: &str) -> String {
        match self {
            Source::Path(root) => {
                let path = root.join(dir).display().to_string().replace('\\', "/");
                format!("{krate} = {{ path = {path:?} }}")
            }
            Source::Version(v) => format!("{krate} = \"{v}\""),
        }
    }

    /// The checkout's `Cargo.lock`, to start the project's from.
    pub fn lock_file(&self) -> Option<String> {
        match self {
            Source::Path(root) => std::fs::read_to_string(root.join("Cargo.lock")).ok(),
            Source::Version(_) => None,
        }
    }
}

fn is_checkout(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("runtime/Cargo.toml"))
        .is_ok_and(|t| t.contains("name = \"kubeforge\""))
        && dir.join("testkit/Cargo.toml").is_file()
}
