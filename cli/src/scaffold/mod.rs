//! Changes to a project, planned in memory and written all at once: new files, and snippets
//! inserted at `// kubeforge:scaffold:<name>` markers. Nothing is written until every change
//! is known to be good — each Rust file still parses (syn) and is rustfmt-formatted — so a
//! command that fails leaves the project as it was.

pub mod builtin;
pub mod reference;
pub mod render;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// The comment prefix of a scaffold marker.
pub const MARKER: &str = "// kubeforge:scaffold:";

/// A planned set of file changes under a project root.
#[derive(Debug)]
pub struct Changes {
    root: PathBuf,
    force: bool,
    files: BTreeMap<PathBuf, Planned>,
}

#[derive(Debug)]
struct Planned {
    contents: String,
    existed: bool,
}

/// What [`Changes::commit`] did, for the command's summary.
#[derive(Debug, Default)]
pub struct Written {
    /// Files created.
    pub created: Vec<PathBuf>,
    /// Files changed.
    pub updated: Vec<PathBuf>,
}

impl Changes {
    /// Plans changes under `root`; with `force`, existing files may be replaced.
    pub fn new(root: &Path, force: bool) -> Changes {
        Changes {
            root: root.to_path_buf(),
            force,
            files: BTreeMap::new(),
        }
    }

    /// The current text of `rel`: as planned, else as on disk (`None` when absent).
    pub fn current(&self, rel: &str) -> anyhow::Result<Option<String>> {
        if let Some(p) = self.files.get(Path::new(rel)) {
            return Ok(Some(p.contents.clone()));
        }
        let path = self.root.join(rel);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Plans a new file. A file that exists with other contents is refused unless `--force`.
    pub fn create(&mut self, rel: &str, contents: String) -> anyhow::Result<()> {
        let existed = self.root.join(rel).exists();
        if existed && !self.force {
            let same = std::fs::read_to_string(self.root.join(rel)).is_ok_and(|t| t == contents);
            if !same {
                bail!(
                    "{rel} already exists; kubeforge does not overwrite files you may have \
                     edited: move it away, or pass --force to replace it"
                );
            }
        }
        self.files
            .insert(PathBuf::from(rel), Planned { contents, existed });
        Ok(())
    }

    /// Plans a file that kubeforge owns (e.g. generated manifests): always replaced.
    pub fn replace(&mut self, rel: &str, contents: String) {
        let existed = self.root.join(rel).exists();
        self.files
            .insert(PathBuf::from(rel), Planned { contents, existed });
    }

    /// Inserts `snippet` before the line holding marker `name` in `rel`, indented like the
    /// marker. Idempotent: a snippet whose lines are already there is not added again.
    pub fn insert(&mut self, rel: &str, name: &str, snippet: &str) -> anyhow::Result<()> {
        let Some(text) = self.current(rel)? else {
            bail!(
                "{rel} is missing, so the `{MARKER}{name}` marker in it is too: restore the file \
                 (from version control, or from a fresh `kubeforge init`)"
            );
        };
        let updated = insert_at_marker(&text, rel, name, snippet)?;
        let existed = self.root.join(rel).exists();
        self.files.insert(
            PathBuf::from(rel),
            Planned {
                contents: updated,
                existed,
            },
        );
        Ok(())
    }

    /// Checks every planned Rust file (it parses; it is formatted with rustfmt when rustfmt is
    /// installed), then writes all files, each atomically (a temporary file renamed over).
    pub fn commit(mut self) -> anyhow::Result<Written> {
        let mut rust: Vec<&mut Planned> = Vec::new();
        for (rel, planned) in &mut self.files {
            if rel.extension().is_some_and(|e| e == "rs") {
                syn::parse_file(&planned.contents).map_err(|e| {
                    anyhow::anyhow!(
                        "{} would not parse after this change ({e}); nothing was written. Is a \
                         marker inside an item it should not be in?",
                        rel.display()
                    )
                })?;
                rust.push(planned);
            }
        }
        let sources: Vec<&str> = rust.iter().map(|p| p.contents.as_str()).collect();
        if let Some(formatted) = rustfmt(&sources) {
            for (planned, text) in rust.into_iter().zip(formatted) {
                planned.contents = text;
            }
        }
        let mut written = Written::default();
        for (rel, planned) in &self.files {
            let path = self.root.join(rel);
            let unchanged = planned.existed
                && std::fs::read_to_string(&path).is_ok_and(|t| t == planned.contents);
            if unchanged {
                continue;
            }
            write_atomically(&path, &planned.contents)?;
            if planned.existed {
                written.updated.push(rel.clone());
            } else {
                written.created.push(rel.clone());
            }
        }
        Ok(written)
    }
}

/// `text` with `snippet` inserted before the marker line `name` (see [`Changes::insert`]).
pub fn insert_at_marker(
    text: &str,
    rel: &str,
    name: &str,
    snippet: &str,
) -> anyhow::Result<String> {
    let marker = format!("{MARKER}{name}");
    let lines: Vec<&str> = text.lines().collect();
    let Some(at) = lines.iter().position(|l| l.trim() == marker) else {
        bail!(
            "{rel} has no `{marker}` line: kubeforge adds code only at its markers. Put the line \
             back where it belongs (see the file `kubeforge init` writes) and run the command \
             again; nothing was changed"
        );
    };
    let wanted: Vec<&str> = snippet
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let have: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
    if wanted.is_empty() || have.windows(wanted.len()).any(|w| w == wanted.as_slice()) {
        return Ok(text.to_owned());
    }
    let indent: String = lines[at]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    let mut out: Vec<String> = lines[..at].iter().map(|l| (*l).to_owned()).collect();
    for line in snippet.trim_end_matches('\n').lines() {
        out.push(if line.trim().is_empty() {
            String::new()
        } else {
            format!("{indent}{line}")
        });
    }
    out.extend(lines[at..].iter().map(|l| (*l).to_owned()));
    let mut joined = out.join("\n");
    if text.ends_with('\n') {
        joined.push('\n');
    }
    Ok(joined)
}

/// `sources` each formatted by `rustfmt --edition 2024` reading stdin (so it does not follow
/// `mod` declarations to files that do not exist yet), all processes started before any is
/// waited for, so that a command stays fast; `None` when rustfmt is not installed or fails (the
/// caller keeps the unformatted text, which still parses).
fn rustfmt(sources: &[&str]) -> Option<Vec<String>> {
    if sources.is_empty() {
        return Some(Vec::new());
    }
    let binary = rustfmt_binary();
    let mut children = Vec::new();
    for source in sources {
        let mut child = Command::new(&binary)
            .args(["--edition", "2024", "--emit", "stdout"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        // rustfmt reads all of stdin before it writes, so writing first cannot deadlock.
        child.stdin.take()?.write_all(source.as_bytes()).ok()?;
        children.push(child);
    }
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().ok()?;
            out.status
                .success()
                .then(|| String::from_utf8(out.stdout).ok())
                .flatten()
        })
        .collect()
}

/// The toolchain's rustfmt binary, asked of rustup once (each call through rustup's proxy
/// costs ~10 ms), else `rustfmt` on the PATH.
fn rustfmt_binary() -> PathBuf {
    Command::new("rustup")
        .args(["which", "rustfmt"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("rustfmt"))
}

fn write_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: &str = "fn setup() {\n    // kubeforge:scaffold:controllers\n    Ok(())\n}\n";

    #[test]
    fn inserts_before_the_marker_with_its_indent_once() {
        let once = insert_at_marker(MAIN, "src/main.rs", "controllers", "a::setup()?;\n").unwrap();
        assert_eq!(
            once,
            "fn setup() {\n    a::setup()?;\n    // kubeforge:scaffold:controllers\n    Ok(())\n}\n"
        );
        let twice =
            insert_at_marker(&once, "src/main.rs", "controllers", "a::setup()?;\n").unwrap();
        assert_eq!(twice, once, "idempotent");
    }

    #[test]
    fn a_missing_marker_names_file_and_marker() {
        let err = insert_at_marker("fn main() {}\n", "src/main.rs", "controllers", "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("src/main.rs") && err.contains("// kubeforge:scaffold:controllers"),
            "{err}"
        );
    }

    #[test]
    fn nothing_is_written_when_a_rust_file_would_not_parse() {
        let dir = tempfile::tempdir().unwrap();
        let mut changes = Changes::new(dir.path(), false);
        changes.create("a.txt", "fine".into()).unwrap();
        changes.create("src/lib.rs", "fn broken( {".into()).unwrap();
        let err = changes.commit().unwrap_err().to_string();
        assert!(
            err.contains("src/lib.rs") && err.contains("nothing was written"),
            "{err}"
        );
        assert!(!dir.path().join("a.txt").exists());
    }

    #[test]
    fn existing_files_are_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.md"), "mine").unwrap();
        let mut changes = Changes::new(dir.path(), false);
        let err = changes
            .create("README.md", "theirs".into())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("README.md") && err.contains("--force"),
            "{err}"
        );
        let mut forced = Changes::new(dir.path(), true);
        forced.create("README.md", "theirs".into()).unwrap();
        let written = forced.commit().unwrap();
        assert_eq!(written.updated, vec![PathBuf::from("README.md")]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
            "theirs"
        );
    }
}
