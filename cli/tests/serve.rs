//! `kubeforge serve` as a user runs it: start, use with kubectl, stop with SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use kubeforge_e2e::Kubectl;

#[test]
fn serve_writes_a_kubeconfig_kubectl_can_use_and_stops_on_sigterm() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kf.kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kubeforge"))
        .args(["serve", "--port", "0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    for line in lines.by_ref() {
        let line = line?;
        let done = line.contains("Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let banner = banner.join("\n");
    assert!(
        banner.contains("listening on http://127.0.0.1:"),
        "{banner}"
    );
    assert!(
        banner.contains(&kubeconfig.display().to_string()),
        "{banner}"
    );

    let kubectl = Kubectl::new(&kubeconfig)?;
    let namespaces = kubectl.run(&["get", "namespaces", "-o", "name"])?;
    for ns in ["default", "kube-system", "kube-public"] {
        assert!(
            namespaces.contains(&format!("namespace/{ns}")),
            "{namespaces}"
        );
    }
    kubectl.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n",
        &[],
    )?;
    assert!(
        kubectl
            .run(&["get", "ns", "team-a", "-o", "name"])?
            .contains("team-a")
    );
    // The README's walkthrough: generator commands (protobuf bodies) work as on a cluster.
    kubectl.run(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ])?;
    kubectl.run(&["scale", "deployment", "web", "--replicas=3"])?;
    let replicas = kubectl.run(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas}",
    ])?;
    assert_eq!(replicas.trim(), "3");

    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            assert!(
                status.success(),
                "serve should exit cleanly on SIGTERM, got {status}"
            );
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "kubeforge serve did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

#[test]
fn serve_reports_an_unwritable_kubeconfig_path() -> anyhow::Result<()> {
    let output = Command::new(env!("CARGO_BIN_EXE_kubeforge"))
        .args([
            "serve",
            "--port",
            "0",
            "--kubeconfig-out",
            "/nonexistent-dir/x/kubeconfig",
        ])
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/nonexistent-dir/x/kubeconfig") && stderr.contains("--kubeconfig-out"),
        "the error should name the path and the flag to fix it:\n{stderr}"
    );
    Ok(())
}
