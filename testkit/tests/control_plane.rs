//! The real control plane (etcd + kube-apiserver built by `bash scripts/control-plane.sh`):
//! it starts, serves built-in kinds and CRDs through the client and the kubeconfig it hands
//! out, and leaves no process behind — after `stop`, after a panic, and after an abort.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kubeforge_testkit::control_plane::ControlPlane;
use serde_json::json;

const WIDGET_CRD: &str = r#"
# A kustomization-style document that is not a CRD is skipped, as envtest does.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: []
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.test.kubeforge.dev
spec:
  group: test.kubeforge.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {type: integer}
"#;

/// True while `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
        Err(_) => false,
    }
}

/// Waits a little for the kernel to finish killing `pid` (parent-death kills are asynchronous).
fn gone_within(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !alive(pid)
}

fn pids(plane: &ControlPlane) -> (u32, u32) {
    match plane.pids() {
        (Some(etcd), Some(apiserver)) => (etcd, apiserver),
        other => panic!("a started control plane reports both pids, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_configmaps_and_crds_then_stops_without_orphans() -> anyhow::Result<()> {
    let manifests = tempfile::tempdir()?;
    std::fs::write(manifests.path().join("widgets.yaml"), WIDGET_CRD)?;

    let plane = ControlPlane::start().await?;
    let (etcd, apiserver) = pids(&plane);
    assert!(
        alive(etcd) && alive(apiserver),
        "both processes run while the plane is up"
    );
    assert!(
        plane.url().starts_with("https://127.0.0.1:"),
        "{}",
        plane.url()
    );

    // A built-in kind through the admin client: real metadata comes back.
    let config_maps: Api<ConfigMap> = Api::namespaced(plane.client(), "default");
    let created = config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "settings"},
                "data": {"mode": "real"}
            }))?,
        )
        .await?;
    assert!(created.metadata.uid.is_some() && created.metadata.resource_version.is_some());

    // The kubeconfig it hands out works on its own (CA + token), as kubectl would use it.
    let from_file = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(plane.kubeconfig_path())?,
        &Default::default(),
    )
    .await?;
    let other_client = kube::Client::try_from(from_file)?;
    let fetched = Api::<ConfigMap>::namespaced(other_client, "default")
        .get("settings")
        .await?;
    assert_eq!(
        fetched
            .data
            .unwrap_or_default()
            .get("mode")
            .map(String::as_str),
        Some("real")
    );

    // CRDs from a directory: installed and Established before install_crds returns.
    let installed = plane.install_crds([manifests.path()]).await?;
    assert_eq!(installed.len(), 1, "only the CRD document is installed");
    let established = installed[0]
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    assert!(established, "install_crds returns Established CRDs");

    let gvk = GroupVersionKind::gvk("test.kubeforge.dev", "v1", "Widget");
    let widgets: Api<DynamicObject> = Api::namespaced_with(
        plane.client(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "widgets"),
    );
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "test.kubeforge.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"replicas": 3}
    }))?;
    widgets.create(&PostParams::default(), &widget).await?;
    assert_eq!(widgets.get("w1").await?.data["spec"]["replicas"], 3);
    // The real server enforces the schema: a string where an integer belongs is 422 Invalid.
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "test.kubeforge.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w2"},
        "spec": {"replicas": "three"}
    }))?;
    match widgets.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 422, "{status:?}"),
        other => panic!("an invalid Widget must be rejected with 422, got {other:?}"),
    }

    let controller_manager = plane.controller_manager_pid();
    let dir = plane.dir().to_path_buf();
    plane.stop();
    if let Some(pid) = controller_manager {
        assert!(
            !alive(pid),
            "kube-controller-manager (pid {pid}) is gone after stop"
        );
    }
    assert!(!alive(etcd), "etcd (pid {etcd}) is gone after stop");
    assert!(
        !alive(apiserver),
        "kube-apiserver (pid {apiserver}) is gone after stop"
    );
    assert!(!dir.exists(), "the temp dir {} is removed", dir.display());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_test_leaves_no_processes() {
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let test = tokio::spawn(async move {
        let plane = ControlPlane::start().await.expect("control plane starts");
        *record.lock().expect("pid slot") = Some(pids(&plane));
        panic!("a test failing while the control plane runs");
    });
    let outcome = test.await;
    assert!(
        outcome.as_ref().is_err_and(|e| e.is_panic()),
        "the task panicked"
    );
    let (etcd, apiserver) = seen
        .lock()
        .expect("pid slot")
        .expect("the control plane started before the panic");
    assert!(!alive(etcd), "etcd (pid {etcd}) was killed while unwinding");
    assert!(
        !alive(apiserver),
        "kube-apiserver (pid {apiserver}) was killed while unwinding"
    );
}

const ABORT_CHILD_ENV: &str = "KUBEFORGE_TESTKIT_ABORT_CHILD";

/// Runs this test binary again as a child that starts a control plane and aborts (no unwinding,
/// no Drop); the kernel's parent-death signal must still take etcd and kube-apiserver down.
#[test]
fn an_aborted_test_process_leaves_no_processes() {
    if std::env::var_os(ABORT_CHILD_ENV).is_some() {
        let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
        let plane = runtime
            .block_on(ControlPlane::start())
            .expect("control plane starts");
        let (etcd, apiserver) = pids(&plane);
        let controller_manager = plane
            .controller_manager_pid()
            .map(|pid| format!(" {pid}"))
            .unwrap_or_default();
        println!("PIDS {etcd} {apiserver}{controller_manager}");
        std::process::abort();
    }

    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "an_aborted_test_process_leaves_no_processes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ABORT_CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("re-running the test binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest prints `test <name> ... ` on the same line, before our output.
        .find_map(|line| line.split_once("PIDS ").map(|(_, pids)| pids.to_string()))
        .expect("the child prints the pids of its control plane");
    let status = child.wait().expect("child exit");
    assert!(!status.success(), "the child aborted ({status})");

    let pids: Vec<u32> = line
        .split_whitespace()
        .map(|p| p.parse().expect("numeric pid"))
        .collect();
    assert!(pids.len() >= 2, "etcd and kube-apiserver at least: {line}");
    for pid in pids {
        assert!(
            gone_within(pid, Duration::from_secs(10)),
            "pid {pid} outlived the aborted test process"
        );
    }
}

/// The process-wide plane a test suite shares: one start, and its client keeps working from
/// other tests' runtimes after the runtime of the test that started it is gone.
#[test]
fn the_shared_plane_outlives_the_test_that_started_it() -> anyhow::Result<()> {
    let first = tokio::runtime::Runtime::new()?;
    let plane = first.block_on(ControlPlane::shared())?;
    first.block_on(async {
        let api: Api<ConfigMap> = Api::namespaced(plane.client(), "default");
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "shared-marker"}}))?,
        )
        .await?;
        anyhow::Ok(())
    })?;
    drop(first);

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    second.block_on(async {
        let again = ControlPlane::shared().await?;
        assert!(std::ptr::eq(plane, again), "one plane per process");
        let api: Api<ConfigMap> = Api::namespaced(again.client(), "default");
        assert!(api.get_opt("shared-marker").await?.is_some());
        anyhow::Ok(())
    })?;
    let (etcd, apiserver) = pids(plane);
    assert!(alive(etcd) && alive(apiserver), "still serving");
    Ok(())
}

const DISCOVER_CHILD_ENV: &str = "KUBEFORGE_TESTKIT_DISCOVER_CHILD";

/// Runs `Binaries::discover()` in a child (env vars are process-wide, tests run in parallel)
/// with exactly these asset variables set, and returns what it printed.
fn discover_with(vars: &[(&str, &std::path::Path)]) -> String {
    let mut command = Command::new(std::env::current_exe().expect("test binary path"));
    command
        .args([
            "--exact",
            "binaries_are_found_through_the_env_and_missing_ones_name_the_build_command",
            "--nocapture",
        ])
        .env(DISCOVER_CHILD_ENV, "1")
        .env_remove("TEST_ASSET_KUBE_APISERVER")
        .env_remove("TEST_ASSET_ETCD")
        .env_remove("KUBEBUILDER_ASSETS")
        // An empty cache, so only the variables under test can supply binaries.
        .env("KUBEFORGE_CACHE", "/nonexistent/kubeforge-cache");
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().expect("re-running the test binary");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn binaries_are_found_through_the_env_and_missing_ones_name_the_build_command() {
    if std::env::var_os(DISCOVER_CHILD_ENV).is_some() {
        match kubeforge_testkit::control_plane::Binaries::discover() {
            Ok(found) => println!(
                "FOUND {} {}",
                found.kube_apiserver.display(),
                found.etcd.display()
            ),
            Err(err) => println!("ERROR {err}"),
        }
        return;
    }

    let assets = tempfile::tempdir().expect("temp dir");
    for name in ["kube-apiserver", "etcd"] {
        std::fs::write(assets.path().join(name), "").expect("fake binary");
    }
    let apiserver = assets.path().join("kube-apiserver");
    let etcd = assets.path().join("etcd");

    let via_dir = discover_with(&[("KUBEBUILDER_ASSETS", assets.path())]);
    assert!(
        via_dir.contains(&format!("FOUND {} {}", apiserver.display(), etcd.display())),
        "{via_dir}"
    );

    let missing = std::path::Path::new("/nonexistent/etcd");
    let wrong = discover_with(&[
        ("KUBEBUILDER_ASSETS", assets.path()),
        ("TEST_ASSET_ETCD", missing),
    ]);
    assert!(
        wrong.contains("ERROR etcd not found")
            && wrong.contains("TEST_ASSET_ETCD=/nonexistent/etcd")
            && wrong.contains("bash scripts/control-plane.sh"),
        "an explicit path that does not exist is reported with the build command: {wrong}"
    );

    let nothing = discover_with(&[]);
    assert!(
        nothing.contains("ERROR kube-apiserver not found")
            && nothing
                .contains("/nonexistent/kubeforge-cache/control-plane/v1.37.2/kube-apiserver")
            && nothing.contains("bash scripts/control-plane.sh"),
        "{nothing}"
    );
}
