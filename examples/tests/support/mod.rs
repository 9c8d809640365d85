//! What the example operators' end-to-end tests share: running an operator binary's subcommands,
//! running the operator itself (killed when the test ends), and waiting on a condition.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running operator process, killed when dropped (so a failing test leaves nothing behind).
pub struct Operator(Child);

impl Operator {
    /// Runs `bin` against `kubeconfig` with the metrics and probe servers off, its log (stderr)
    /// written to `log` and `env` set.
    pub fn start(
        bin: &str,
        kubeconfig: &Path,
        log: &Path,
        env: &[(&str, &Path)],
    ) -> anyhow::Result<Self> {
        Self::start_with_args(bin, kubeconfig, log, env, &[])
    }

    /// [`start`](Self::start) with extra flags.
    pub fn start_with_args(
        bin: &str,
        kubeconfig: &Path,
        log: &Path,
        env: &[(&str, &Path)],
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "--metrics-bind-address",
                "0",
                "--health-probe-bind-address",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ok(Self(cmd.spawn()?))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Polls `check` until it returns `Some` (up to 30 s), or fails naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The standard output of `bin args` (e.g. the operator's `crds` subcommand), which must succeed.
pub fn output(bin: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{bin} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}
