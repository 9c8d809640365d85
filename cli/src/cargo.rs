//! Building the user's operator with cargo and finding its binary (through cargo_metadata, so
//! a `CARGO_TARGET_DIR` or `.cargo/config.toml` target directory is honoured).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// The operator binary of the project at `root`, after building it.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The binary's path.
    pub binary: PathBuf,
}

/// Builds the binary `name` of the project at `root` (`cargo build --bin <name>`), with cargo's
/// progress and errors on the terminal.
pub fn build(root: &Path, name: &str) -> anyhow::Result<Operator> {
    eprintln!("Building {name} (cargo build)…");
    let status = Command::new(cargo())
        .args(["build", "--bin", name])
        .current_dir(root)
        .stdin(Stdio::null())
        .status()
        .context("running cargo; is the Rust toolchain installed?")?;
    if !status.success() {
        bail!(
            "`cargo build --bin {name}` failed in {} (its errors are above)",
            root.display()
        );
    }
    Ok(Operator {
        binary: target_dir(root)?.join("debug").join(name),
    })
}

/// The project's target directory.
pub fn target_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .cargo_path(cargo())
        .manifest_path(root.join("Cargo.toml"))
        .no_deps()
        .exec()
        .with_context(|| format!("reading the Cargo project in {}", root.display()))?;
    Ok(metadata.target_directory.into_std_path_buf())
}

impl Operator {
    /// Runs the binary with `args` and returns its standard output.
    pub fn output(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.binary)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.binary.display()))?;
        if !out.status.success() {
            bail!(
                "`{} {}` failed: {}",
                self.binary.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        String::from_utf8(out.stdout).context("the operator printed non-UTF-8 output")
    }
}

/// The cargo to run: `$CARGO` (set when we run under cargo) or `cargo` on the PATH.
fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}
