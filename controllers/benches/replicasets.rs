//! 1,000 ReplicaSets × 10 Pods reconciled from empty, the bench playing kubelet (every Pod it
//! sees is made Running and Ready through the status subresource).
//!
//! Contenders, each a separate process so its peak RSS is its own, each on a fresh server:
//! - `kubeforge, embedded server`: `kubeforge-controller-manager --controllers replicaset`
//!   against the testkit's API server (served from this process).
//! - `kubeforge, real kube-apiserver` and `kube-controller-manager, real kube-apiserver`: the
//!   two controller managers against the same kind of server (kube-apiserver + etcd from
//!   `scripts/control-plane.sh`), each running only its ReplicaSet controller with 5 workers
//!   (`--concurrent-replicaset-syncs` 5, kubeforge's `concurrency(5)`) and no client-side rate
//!   limit (kube-controller-manager's `--kube-api-qps`/`--kube-api-burst` raised to 100000;
//!   kubeforge's client has none). kube-controller-manager runs twice: with its default
//!   protobuf wire format, and with JSON as kubeforge (kube-rs) speaks — the equal-work row.
//!
//! Prints, per contender: time from the first ReplicaSet created to every set reporting 10
//! ready replicas, peak RSS of the controller process (VmHWM), and reconciles per second (the
//! `workqueue_work_duration_seconds_count` of the ReplicaSet queue, which both expose, divided by
//! the time); then the kubeforge/kube-controller-manager ratios.
//!
//! `cargo bench -p kubeforge-controllers --bench replicasets` (KUBEFORGE_BENCH_SETS=100 for a
//! quick run). Needs `eval "$(bash scripts/control-plane.sh)"` for the real-server rows; without
//! the binaries those rows say they were skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use kubeforge_testkit::ApiServer;
use kubeforge_testkit::control_plane::{Binaries, ControlPlane};
use serde_json::json;
use tokio::time::Instant;

const PODS_PER_SET: i32 = 10;

/// One contender's figures.
struct Outcome {
    name: &'static str,
    seconds: f64,
    peak_rss_mib: f64,
    syncs: Option<u64>,
}

/// A controller manager under test, as a child process.
struct Contender {
    child: Child,
    metrics: String,
}

impl Contender {
    fn kubeforge(kubeconfig: &Path) -> Contender {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_kubeforge-controller-manager"))
            .args(["--controllers", "replicaset", "run", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["--metrics-bind-address", &format!("127.0.0.1:{port}")])
            .args(["--health-probe-bind-address", "0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start kubeforge-controller-manager");
        Contender {
            child,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
        }
    }

    /// kube-controller-manager; `json` makes it talk JSON to the API server, as kubeforge does,
    /// instead of its default protobuf (cheaper for the server to encode and decode).
    fn kube_controller_manager(
        binary: &Path,
        kubeconfig: &Path,
        dir: &Path,
        json: bool,
    ) -> Contender {
        let port = free_port();
        let kubeconfig = kubeconfig.display();
        let content_type = if json {
            "application/json"
        } else {
            "application/vnd.kubernetes.protobuf"
        };
        let child = Command::new(binary)
            .args([
                format!("--kube-api-content-type={content_type}"),
                format!("--kubeconfig={kubeconfig}"),
                "--controllers=replicaset".into(),
                "--leader-elect=false".into(),
                "--concurrent-replicaset-syncs=5".into(),
                "--kube-api-qps=100000".into(),
                "--kube-api-burst=100000".into(),
                format!("--secure-port={port}"),
                "--bind-address=127.0.0.1".into(),
                format!("--cert-dir={}", dir.display()),
                "--authorization-always-allow-paths=/metrics".into(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kube-controller-manager");
        Contender {
            child,
            metrics: format!("https://127.0.0.1:{port}/metrics"),
        }
    }

    /// The `/metrics` text, once the process serves it.
    fn scrape(&self) -> Option<String> {
        let out = Command::new("curl")
            .args(["-sfk", "--max-time", "5", &self.metrics])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Reconciles done so far: items the ReplicaSet queue finished.
    fn syncs(&self) -> Option<u64> {
        let text = self.scrape()?;
        text.lines()
            .filter(|l| l.starts_with("workqueue_work_duration_seconds_count"))
            .filter(|l| l.contains("replicaset"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .max()
    }

    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    }

    async fn ready(&self) {
        let started = Instant::now();
        while self.scrape().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} did not serve /metrics within 60 s",
                self.metrics
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Contender {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn replicaset(i: usize) -> ReplicaSet {
    let labels = std::collections::BTreeMap::from([("set".to_owned(), format!("rs-{i}"))]);
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("rs-{i}")),
            ..ObjectMeta::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(PODS_PER_SET),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "app".into(),
                        image: Some("nginx:1".into()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            }),
            ..ReplicaSetSpec::default()
        },
        status: None,
    }
}

/// Plays kubelet until dropped: every Pod that appears is made Running and Ready.
fn kubelet(client: Client) -> tokio::task::JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client, "default");
    tokio::spawn(async move {
        let started = watcher(pods.clone(), watcher::Config::default())
            .applied_objects()
            .try_filter(|p| std::future::ready(p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running")))
            .map_err(|e| e.to_string())
            .map_ok(|pod| {
                let pods = pods.clone();
                async move {
                    let now = jiff::Timestamp::now().to_string();
                    let status = json!({"status": {
                        "phase": "Running",
                        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
                    }});
                    let params = PatchParams::default();
                    // A Pod deleted meanwhile needs nothing.
                    let _ = pods
                        .patch_status(&pod.name_any(), &params, &Patch::Merge(status))
                        .await;
                    Ok::<(), String>(())
                }
            })
            .try_buffer_unordered(32);
        let _ = started.try_collect::<Vec<()>>().await;
    })
}

/// Creates the sets and waits until each reports all its Pods ready; returns the seconds taken.
async fn run(client: Client, sets: usize) -> f64 {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let _kubelet = AbortOnDrop(kubelet(client));
    let started = Instant::now();
    futures::stream::iter(0..sets)
        .for_each_concurrent(16, |i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &replicaset(i))
                    .await
                    .expect("create a ReplicaSet");
            }
        })
        .await;
    loop {
        let list = api.list(&ListParams::default()).await.expect("list sets");
        let ready = list
            .items
            .iter()
            .filter(|rs| rs.status.as_ref().and_then(|s| s.ready_replicas) == Some(PODS_PER_SET))
            .count();
        if ready == sets {
            return started.elapsed().as_secs_f64();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "only {ready} of {sets} sets ready after 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn measure(name: &'static str, client: Client, contender: Contender, sets: usize) -> Outcome {
    contender.ready().await;
    let seconds = run(client, sets).await;
    Outcome {
        name,
        seconds,
        peak_rss_mib: contender.peak_rss_mib(),
        syncs: contender.syncs(),
    }
}

async fn embedded(sets: usize) -> Outcome {
    let server = ApiServer::start().await.expect("embedded server starts");
    let kubeconfig: PathBuf = server.kubeconfig_path().expect("kubeconfig").to_owned();
    let contender = Contender::kubeforge(&kubeconfig);
    let outcome = measure(
        "kubeforge, embedded server",
        server.client(),
        contender,
        sets,
    )
    .await;
    server.shutdown().await;
    outcome
}

/// Which controller manager runs on the real server.
#[derive(Clone, Copy)]
enum Real {
    Kubeforge,
    Upstream { json: bool },
}

async fn real(binaries: &Binaries, which: Real, sets: usize) -> Outcome {
    let plane = ControlPlane::builder()
        .binaries(binaries.clone())
        .without_controller_manager()
        .start()
        .await
        .expect("the control plane starts");
    let (name, contender) = match (which, &binaries.kube_controller_manager) {
        (Real::Upstream { json }, Some(kcm)) => (
            if json { KCM_JSON } else { KCM },
            Contender::kube_controller_manager(kcm, plane.kubeconfig_path(), plane.dir(), json),
        ),
        _ => (
            KUBEFORGE_REAL,
            Contender::kubeforge(plane.kubeconfig_path()),
        ),
    };
    let outcome = measure(name, plane.client(), contender, sets).await;
    plane.stop();
    outcome
}

const KUBEFORGE_REAL: &str = "kubeforge, real kube-apiserver";
const KCM: &str = "kube-controller-manager (protobuf), real kube-apiserver";
const KCM_JSON: &str = "kube-controller-manager (JSON, as kubeforge), real kube-apiserver";

fn print(outcomes: &[Outcome], sets: usize) {
    println!(
        "\n== {sets} ReplicaSets × {PODS_PER_SET} Pods from empty to all ready (the bench plays kubelet) =="
    );
    println!("| contender | time to all ready | peak RSS | reconciles | reconciles/s |");
    println!("|---|---|---|---|---|");
    for o in outcomes {
        let syncs = o.syncs.map_or("n/a".into(), |s| s.to_string());
        let rate = o
            .syncs
            .map_or("n/a".into(), |s| format!("{:.0}", s as f64 / o.seconds));
        println!(
            "| {} | {:.1} s | {:.1} MiB | {syncs} | {rate} |",
            o.name, o.seconds, o.peak_rss_mib
        );
    }
    let find = |name: &str| outcomes.iter().find(|o| o.name == name);
    if let Some(kf) = find(KUBEFORGE_REAL) {
        for other in [KCM, KCM_JSON] {
            if let Some(kcm) = find(other) {
                println!(
                    "kubeforge / {other}: time {:.2}×, peak RSS {:.2}×",
                    kf.seconds / kcm.seconds,
                    kf.peak_rss_mib / kcm.peak_rss_mib
                );
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: both run it once.
    let sets: usize = std::env::var("KUBEFORGE_BENCH_SETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut outcomes = vec![embedded(sets).await];
    match Binaries::discover() {
        Ok(binaries) if binaries.kube_controller_manager.is_some() => {
            outcomes.push(real(&binaries, Real::Kubeforge, sets).await);
            outcomes.push(real(&binaries, Real::Upstream { json: false }, sets).await);
            outcomes.push(real(&binaries, Real::Upstream { json: true }, sets).await);
        }
        other => println!(
            "skipped the real kube-apiserver rows: {}",
            other
                .err()
                .map_or("kube-controller-manager was not built".into(), |e| e
                    .to_string())
        ),
    }
    print(&outcomes, sets);
}
