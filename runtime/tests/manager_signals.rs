//! The operator binary entry point as a real process: `rbac` / `crds` print manifests, and
//! SIGTERM drains an in-flight reconcile before the process exits 0.

mod controller_support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use controller_support::*;
use kube::api::PostParams;
use tokio::time::Instant;

/// `target/<profile>/examples/configmap_operator`: built by `cargo test` with the other targets,
/// or here when only this test was selected.
fn example_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test executable path");
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target/<profile>/deps");
            let bin = profile_dir.join("examples").join(format!(
                "configmap_operator{}",
                std::env::consts::EXE_SUFFIX
            ));
            if !bin.is_file() {
                let status = Command::new(env!("CARGO"))
                    .args([
                        "build",
                        "-p",
                        "kubeforge",
                        "--example",
                        "configmap_operator",
                    ])
                    .status()
                    .expect("cargo runs");
                assert!(status.success(), "building the example failed");
            }
            assert!(
                bin.is_file(),
                "{} missing after building the example",
                bin.display()
            );
            bin
        })
        .clone()
}

#[test]
fn rbac_and_crds_subcommands_print_manifests() {
    let out = Command::new(example_binary()).arg("rbac").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8_lossy(&out.stdout);
    assert!(
        yaml.contains("kind: ClusterRole") && yaml.contains("name: configmap-operator"),
        "{yaml}"
    );
    let out = Command::new(example_binary())
        .args(["rbac", "--namespace", "team-a"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: Role"));
    let out = Command::new(example_binary()).arg("crds").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(example_binary())
        .args(["--log-format", "xml"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad flag value is refused");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_in_flight_reconcile_then_exits_cleanly() {
    let server = server().await;
    let dir = std::env::temp_dir().join(format!("kubeforge-signals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let port = free_port();
    let mut child = tokio::process::Command::new(example_binary())
        // The test's namespace only (on a real server, others hold other tests' objects).
        .args(["run", "--namespace", ns(), "--kubeconfig"])
        .arg(&kubeconfig)
        .args([
            "--metrics-bind-address",
            "0",
            "--health-probe-bind-address",
            &format!("127.0.0.1:{port}"),
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("operator starts");
    // The manager logs "stopping controllers" once a shutdown request has reached it.
    let (stopping_tx, stopping) = tokio::sync::oneshot::channel::<()>();
    let stderr = child.stderr.take().expect("piped stderr");
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut stopping_tx = Some(stopping_tx);
        // Read to the end, so that the operator never blocks on a full pipe.
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("stopping controllers")
                && let Some(tx) = stopping_tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err()
        || http_get(addr, "/readyz").await.0 != 200
    {
        assert!(Instant::now() < deadline, "operator never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let api = configmaps(&server);
    let mut cm = cm("slow", &[]);
    cm.metadata.labels = Some([("kubeforge.io/demo".to_owned(), "yes".to_owned())].into());
    cm.metadata.annotations = Some([("kubeforge.io/work-ms".to_owned(), "1500".to_owned())].into());
    api.create(&PostParams::default(), &cm).await.unwrap();
    let has = |cm: &k8s_openapi::api::core::v1::ConfigMap, key: &str| {
        cm.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(key))
    };
    loop {
        if has(&api.get("slow").await.unwrap(), "kubeforge.io/started") {
            break;
        }
        assert!(Instant::now() < deadline, "reconcile never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().expect("child pid");
    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the manager stops its controllers after SIGTERM")
        .expect("the operator logged that it stops its controllers");

    // Nothing new is taken any more: an object created while the in-flight reconcile drains (the
    // process, its informers and an idle worker are still up) stays untouched. Checked only after
    // the process exited, it could not fail.
    let mut later = cm.clone();
    later.metadata.name = Some("later".into());
    later.metadata.resource_version = None;
    api.create(&PostParams::default(), &later).await.unwrap();

    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("operator exits")
        .unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    assert!(
        has(&api.get("slow").await.unwrap(), "kubeforge.io/finished"),
        "the in-flight reconcile finished before exit"
    );
    assert!(
        !has(&api.get("later").await.unwrap(), "kubeforge.io/started"),
        "an object created after SIGTERM was reconciled"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_exits_without_waiting_for_the_reconcile() {
    let server = server().await;
    let dir = std::env::temp_dir().join(format!("kubeforge-signals2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let port = free_port();
    let mut child = tokio::process::Command::new(example_binary())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "--metrics-bind-address",
            "0",
            "--health-probe-bind-address",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("operator starts");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err()
        || http_get(addr, "/readyz").await.0 != 200
    {
        assert!(Instant::now() < deadline, "operator never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let api = configmaps(&server);
    let mut cm = cm("stuck", &[]);
    cm.metadata.labels = Some([("kubeforge.io/demo".to_owned(), "yes".to_owned())].into());
    cm.metadata.annotations =
        Some([("kubeforge.io/work-ms".to_owned(), "600000".to_owned())].into());
    api.create(&PostParams::default(), &cm).await.unwrap();
    let started = |cm: &k8s_openapi::api::core::v1::ConfigMap| {
        cm.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubeforge.io/started"))
    };
    while !started(&api.get("stuck").await.unwrap()) {
        assert!(Instant::now() < deadline, "reconcile never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().expect("child pid").to_string();
    let signalled = Instant::now();
    for _ in 0..2 {
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the second signal ends the process without waiting 30 s for the reconcile")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(15));
    let _ = std::fs::remove_dir_all(&dir);
}
