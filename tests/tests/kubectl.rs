//! Real `kubectl` against the embedded API server: what a user types must just work.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kubeforge_e2e::Kubectl;
use kubeforge_testkit::ApiServer;

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    kind: Widget
    plural: widgets
    singular: widget
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    - name: Color
      type: string
      jsonPath: .spec.color
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size:
                type: integer
                minimum: 1
              color:
                type: string
                default: blue
          status:
            type: object
            properties:
              ready:
                type: boolean
"#;

const WIDGET: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata:
  name: gizmo
  namespace: default
spec:
  size: 3
"#;

const DEPLOYMENT_AND_SERVICE: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
"#;

async fn server_and_kubectl() -> anyhow::Result<(ApiServer, Kubectl, tempfile::TempDir)> {
    let server = ApiServer::start().await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig)?;
    let kubectl = Kubectl::new(&kubeconfig)?;
    Ok((server, kubectl, dir))
}

/// Runs a blocking kubectl step off the async runtime that serves the API.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

fn wait_established(kubectl: &Kubectl) -> anyhow::Result<()> {
    kubectl.run(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ])?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_crd_and_custom_object_and_shows_printer_columns() -> anyhow::Result<()> {
    let (_server, kubectl, _dir) = server_and_kubectl().await?;
    blocking(move || {
        // Client-side apply, with kubectl's default validation on.
        let out = kubectl.apply(CRD, &[])?;
        assert!(out.contains("widgets.example.com created"), "{out}");
        wait_established(&kubectl)?;

        let resources = kubectl.run(&["api-resources", "--api-group=example.com"])?;
        assert!(
            resources.contains("widgets")
                && resources.contains("wd")
                && resources.contains("Widget"),
            "api-resources does not list the CRD:\n{resources}"
        );

        let out = kubectl.apply(WIDGET, &[])?;
        assert!(out.contains("widget.example.com/gizmo created"), "{out}");

        let table = kubectl.run(&["get", "widgets"])?;
        let header = table.lines().next().unwrap_or_default();
        assert!(
            header.contains("NAME") && header.contains("SIZE") && header.contains("COLOR"),
            "printer columns missing from `kubectl get widgets`:\n{table}"
        );
        let row = table
            .lines()
            .find(|l| l.starts_with("gizmo"))
            .unwrap_or_default();
        assert!(
            row.contains('3') && row.contains("blue"),
            "row should show size 3 and the schema default color blue:\n{table}"
        );

        // The short name works too, and the object round-trips as YAML.
        let yaml = kubectl.run(&["get", "wd", "gizmo", "-o", "yaml"])?;
        assert!(yaml.contains("size: 3"), "{yaml}");

        // Server-side apply changes the object and records the field manager.
        let changed = WIDGET.replace("size: 3", "size: 5");
        kubectl.apply(&changed, &["--server-side", "--field-manager=e2e"])?;
        let size = kubectl.run(&["get", "widget", "gizmo", "-o", "jsonpath={.spec.size}"])?;
        assert_eq!(size.trim(), "5");

        kubectl.run(&["delete", "widget", "gizmo"])?;
        let gone = kubectl.output(&["get", "widget", "gizmo"])?;
        assert!(!gone.status.success());
        assert!(
            String::from_utf8_lossy(&gone.stderr).contains("NotFound")
                || String::from_utf8_lossy(&gone.stderr).contains("not found"),
            "{}",
            String::from_utf8_lossy(&gone.stderr)
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rejects_object_violating_the_crd_schema() -> anyhow::Result<()> {
    let (_server, kubectl, _dir) = server_and_kubectl().await?;
    blocking(move || {
        kubectl.apply(CRD, &[])?;
        wait_established(&kubectl)?;
        let bad = WIDGET.replace("size: 3", "size: 0");
        let err = kubectl
            .apply(&bad, &[])
            .expect_err("size 0 violates minimum 1");
        let message = err.to_string();
        assert!(
            message.contains("spec.size") && message.contains("greater than or equal to 1"),
            "the error should name the field and the rule:\n{message}"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_builtin_kinds_client_and_server_side() -> anyhow::Result<()> {
    let (_server, kubectl, _dir) = server_and_kubectl().await?;
    blocking(move || {
        let out = kubectl.apply(DEPLOYMENT_AND_SERVICE, &[])?;
        assert!(out.contains("deployment.apps/web created"), "{out}");
        assert!(out.contains("service/web created"), "{out}");

        // Re-applying an unchanged manifest is a no-op, as on a real cluster.
        let again = kubectl.apply(DEPLOYMENT_AND_SERVICE, &[])?;
        assert!(again.contains("deployment.apps/web unchanged"), "{again}");

        let scaled = DEPLOYMENT_AND_SERVICE.replace("replicas: 2", "replicas: 4");
        kubectl.apply(&scaled, &["--server-side", "--force-conflicts"])?;
        let replicas = kubectl.run(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])?;
        assert_eq!(replicas.trim(), "4");

        kubectl.run(&["scale", "deployment/web", "--replicas=1"])?;
        let replicas = kubectl.run(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])?;
        assert_eq!(replicas.trim(), "1");

        let services = kubectl.run(&["get", "services"])?;
        assert!(services.lines().any(|l| l.starts_with("web")), "{services}");

        kubectl.run(&["delete", "deployment", "web", "--wait=true"])?;
        kubectl.run(&["delete", "service", "web"])?;
        let left = kubectl.run(&["get", "deployments,services", "-o", "name"])?;
        assert!(!left.contains("deployment.apps/web"), "{left}");
        assert!(!left.contains("service/web"), "{left}");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_sees_a_change() -> anyhow::Result<()> {
    let (_server, kubectl, _dir) = server_and_kubectl().await?;
    blocking(move || {
        kubectl.apply(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  mode: a\n",
            &[],
        )?;
        let mut watch = kubectl
            .command()
            .args(["get", "configmaps", "-w", "-o", "jsonpath={.metadata.name}={.data.mode}{\"\\n\"}"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = watch
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The watch first prints the current state...
        let first = rx.recv_timeout(Duration::from_secs(20))?;
        assert!(first.contains("settings=a"), "{first}");
        // ...then the change made by another command.
        kubectl.run(&["patch", "configmap", "settings", "-p", r#"{"data":{"mode":"b"}}"#])?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                seen.push(line.clone());
                if line.contains("settings=b") {
                    break;
                }
            }
        }
        watch.kill().ok();
        watch.wait().ok();
        assert!(
            seen.iter().any(|l| l.contains("settings=b")),
            "`kubectl get -w` did not show the change; saw {seen:?}"
        );
        Ok(())
    })
    .await
}
