//! `kubeforge create controller --kind <K> --reference` end to end: a project started from
//! kubeforge's reference controllers builds and passes its tests, `kubeforge generate`
//! derives their RBAC, and the operator runs them — a ReplicaSet applied with real kubectl to
//! `kubeforge serve` gets its Pods from the copied controller. Kinds without a reference, and a
//! second copy over the first, are refused with a message that says what to do.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kubeforge_e2e::Kubectl;
use support::*;

const REFERENCE_KINDS: &[(&str, &str)] = &[
    ("ReplicaSet", "replica_set.rs"),
    ("Deployment", "deployment/mod.rs"),
    ("StatefulSet", "stateful_set/mod.rs"),
    ("DaemonSet", "daemon_set/mod.rs"),
    ("Job", "job/mod.rs"),
    ("CronJob", "cron_job/mod.rs"),
    (
        "HorizontalPodAutoscaler",
        "horizontal_pod_autoscaler/mod.rs",
    ),
    ("Ingress", "ingress/mod.rs"),
    ("NetworkPolicy", "network_policy/mod.rs"),
];

#[test]
fn a_project_started_from_the_reference_controllers_builds_and_runs_them() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("workloads");
    kubeforge(
        work.path(),
        &["init", "workloads", "--domain", "example.com"],
    );
    for (kind, root) in REFERENCE_KINDS {
        let out = kubeforge(
            &dir,
            &["create", "controller", "--kind", kind, "--reference"],
        );
        assert!(out.contains("reference controller, copied"), "{out}");
        let text = std::fs::read_to_string(dir.join("src/controllers").join(root)).unwrap();
        assert!(
            text.contains(&format!(
                "Started from kubeforge's reference {kind} controller"
            )),
            "{root} says where it came from:\n{text}"
        );
        assert!(
            !text.contains("use crate::pods"),
            "paths point at the copies"
        );
    }
    assert!(dir.join("src/controllers/reference/pods.rs").is_file());
    let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
    assert!(
        main.contains("controllers::stateful_set::setup(mgr)?;"),
        "{main}"
    );
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert_eq!(manifest.matches("\ncroner = ").count(), 1, "{manifest}");

    // Refused, and nothing written: a kind without a reference, a second copy.
    let before = snapshot(&dir);
    let err = kubeforge_fails(
        &dir,
        &["create", "controller", "--kind", "ConfigMap", "--reference"],
    );
    assert!(
        err.contains("no reference controller for ConfigMap") && err.contains("StatefulSet"),
        "{err}"
    );
    let err = kubeforge_fails(
        &dir,
        &["create", "controller", "--kind", "Job", "--reference"],
    );
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(snapshot(&dir), before, "a refused command writes nothing");

    cargo(&dir, &["build"]);
    let out = kubeforge(&dir, &["generate"]);
    assert!(out.contains("Manifests written"), "{out}");
    let role = std::fs::read_to_string(dir.join("config/rbac/role.yaml")).unwrap();
    for resource in [
        "pods",
        "controllerrevisions",
        "persistentvolumeclaims",
        "nodes",
    ] {
        assert!(
            role.contains(resource),
            "the role covers {resource}:\n{role}"
        );
    }
    runs_a_replicaset(work.path());
    // The copied modules' own unit tests and the project's tests pass in the project.
    cargo(&dir, &["test"]);
}

/// The operator, run against `kubeforge serve`, gives a ReplicaSet applied with kubectl its
/// three Pods and reports them in its status.
fn runs_a_replicaset(work: &Path) {
    let serve = Serve::start(work);
    let kubectl = Kubectl::new(&serve.kubeconfig).unwrap();
    let log = work.join("operator.log");
    let mut operator = Command::new(target_dir().join("debug/workloads"))
        .args(["--kubeconfig"])
        .arg(&serve.kubeconfig)
        .args([
            "--metrics-bind-address",
            "0",
            "--health-probe-bind-address",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the generated operator starts");
    kubectl
        .apply(
            "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web, namespace: default}\n\
             spec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  template:\n    \
             metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx}]}\n",
            &[],
        )
        .unwrap();
    eventually(
        "the copied ReplicaSet controller created 3 Pods owned by web",
        Duration::from_secs(60),
        || {
            kubectl
                .run(&[
                    "get",
                    "pods",
                    "-n",
                    "default",
                    "-l",
                    "app=web",
                    "-o",
                    "jsonpath={.items[*].metadata.ownerReferences[0].name}",
                ])
                .is_ok_and(|s| s.split_whitespace().filter(|n| *n == "web").count() == 3)
        },
    );
    eventually("web reports 3 replicas", Duration::from_secs(60), || {
        kubectl
            .run(&[
                "get",
                "replicaset",
                "web",
                "-n",
                "default",
                "-o",
                "jsonpath={.status.replicas}",
            ])
            .is_ok_and(|s| s == "3")
    });
    let _ = operator.kill();
    let _ = operator.wait();
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logs.contains("panicked"), "{logs}");
}
