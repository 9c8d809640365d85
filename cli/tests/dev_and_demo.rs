//! `kubeforge demo` (the README's first command) and `kubeforge dev` (the inner loop), run as a
//! user runs them.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use kubeforge_e2e::Kubectl;
use support::*;

#[test]
fn demo_scaffolds_builds_runs_and_shows_the_reconciles() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    let out = kubeforge(work.path(), &["demo", "--dir", &dir.display().to_string()]);
    for expected in [
        "kubeforge init",
        "kubeforge create api --group hello --version v1 --kind Greeting",
        "kubeforge create controller --kind Deployment",
        "reconciling Greeting",
        "the status the Greeting controller wrote",
        "type: Ready",
        "reconciled Deployment",
        "config/crd/bases/hello.demo.kubeforge.dev_greetings.yaml",
        "cargo test",
    ] {
        assert!(
            out.contains(expected),
            "the demo shows {expected:?}:\n{out}"
        );
    }
    assert!(
        dir.join("config/crd/bases/hello.demo.kubeforge.dev_greetings.yaml")
            .is_file()
    );
}

#[test]
fn dev_applies_runs_rebuilds_on_change_and_stops_cleanly() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("devop");
    kubeforge(work.path(), &["init", "devop", "--domain", "example.com"]);
    kubeforge(
        &dir,
        &[
            "create",
            "api",
            "--group",
            "shop",
            "--version",
            "v1",
            "--kind",
            "Order",
        ],
    );
    let kubeconfig = work.path().join("dev.kubeconfig");
    let log = work.path().join("dev.log");
    let mut dev = Command::new(KUBEFORGE)
        .args(["dev", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("kubeforge dev starts");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let started = |n: usize| log_text().matches("operator running").count() >= n;
    eventually(
        "the operator runs (first build)",
        Duration::from_secs(600),
        || started(1),
    );
    let kubectl = Kubectl::new(&kubeconfig).unwrap();
    let message = || {
        kubectl
            .run(&[
                "get",
                "orders",
                "order-v1-sample",
                "-n",
                "default",
                "-o",
                "jsonpath={.status.conditions[0].message}",
            ])
            .unwrap_or_default()
    };
    eventually(
        "the sample is applied and reconciled",
        Duration::from_secs(60),
        || message() == "the spec has been reconciled",
    );

    let controller = dir.join("src/controllers/order.rs");
    let code = std::fs::read_to_string(&controller).unwrap();
    std::fs::write(
        &controller,
        code.replace(
            "the spec has been reconciled",
            "reconciled by the new build",
        ),
    )
    .unwrap();
    eventually(
        "a change is rebuilt and restarted",
        Duration::from_secs(600),
        || started(2),
    );
    assert!(
        log_text().contains("change detected, rebuilding"),
        "{}",
        log_text()
    );
    eventually("the new build reconciles", Duration::from_secs(60), || {
        message() == "reconciled by the new build"
    });

    let binary = target_dir().join("debug/devop");
    let running = || {
        Command::new("pgrep")
            .args(["-f", &binary.display().to_string()])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(running(), "the operator is a running process");
    let sent = Command::new("kill")
        .args(["-INT", &dev.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = dev.wait().unwrap();
    assert!(
        status.success(),
        "dev exits 0 on Ctrl-C: {status}\n{}",
        log_text()
    );
    assert!(!running(), "no operator process is left behind");
}
