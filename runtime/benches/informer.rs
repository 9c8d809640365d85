//! Informer benchmark: `cargo bench -p kubeforge --bench informer` (prints figures).
//!
//! 1. Initial sync of N realistic Pods (~3.8 KiB JSON each) seeded into the embedded API server
//!    (served from this process), synced by a child process per contender so each one's peak RSS
//!    (`VmHWM`) is its own: kubeforge's informer (3 indexes), kube-runtime's `watcher` +
//!    `reflector`, client-go's `SharedIndexInformer` (the Go harness `bench/clientgo`, same 3
//!    indexes, JSON, paginated LIST of 500), and decode-only (`serde_json` of the same list pages
//!    into `ObjectList<Pod>`). The client-go binary comes from `KUBEFORGE_CLIENTGO_BENCH`, else
//!    `~/.cache/kubeforge/control-plane/v1.37.2/clientgo-bench` (`bash scripts/control-plane.sh`
//!    builds it); without it the run goes on with the other contenders.
//! 2. Relist: peak RSS while a synced kubeforge informer relists, vs its steady RSS.
//! 3. Steady watch throughput through FIFO → indexer → 4 handlers (typed and compact caches),
//!    and dispatch latency p50/p99 at a fixed 10k events/s (a synthetic watch stream, so the
//!    server is not measured).
//! 4. kubeforge's cache modes (typed, compact, metadata-only) and kube-runtime, each under the
//!    system allocator and mimalloc (`informer_parts/modes.rs`): sync, peak and steady RSS,
//!    relist peak, `get` and `list` latency; every target printed as `ratio <what> = <value>`.
//!
//! `KUBEFORGE_BENCH_SIZES=10000` (comma-separated) shortens the run; `KUBEFORGE_BENCH_ONLY=modes`
//! runs part 4 alone (and client-go, for its ratios).
//!
//! Equal work: part 1 runs every contender twice, once keeping `metadata.managedFields` (kubeforge
//! with its transform off) and once dropping them (kubeforge's default; kube-runtime through its
//! stream's `modify`, client-go through `SetTransform`, decode-only skipping them in the page as
//! kubeforge's reflector does). Ratios compare contenders within one mode only. Also the same for
//! all: the server, the objects, JSON, a paginated LIST of 500. What differs, and is printed in the
//! header: allocator (Rust: the system allocator; Go: its own, GOGC=100), threads (Rust children:
//! a 2-worker tokio runtime; client-go: GOMAXPROCS = the machine's cores), indexes (kubeforge and
//! client-go: namespace, one label key's value (`app.kubernetes.io/name`), owner uid; kube-runtime's
//! store and decode-only: none — they do less).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ListParams, ObjectList, ObjectMeta, PostParams, WatchEvent};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use kubeforge::informer::{
    ApiListWatch, HandlerFns, InformerOptions, ListWatch, SharedIndexInformer,
};
use kubeforge::informer::{
    IndexFnError, IndexValue, Indexers, LABEL_INDEX, OWNER_UID_INDEX, owner_uid_index,
};
use kubeforge::informer::{ListRequest, RawPage, WatchRequest, WatchStream};
use serde_json::{Value, json};

#[path = "informer_parts/modes.rs"]
mod modes;

/// The system allocator or mimalloc, as each child process is told (`KUBEFORGE_BENCH_ALLOCATOR`).
#[global_allocator]
static ALLOCATOR: kubeforge_bench_alloc::Chosen = kubeforge_bench_alloc::Chosen;

const NAMESPACES: usize = 10;

/// The label key both kubeforge's and client-go's label index use.
const LABEL_KEY: &str = "app.kubernetes.io/name";

/// The client-go harness binary: `KUBEFORGE_CLIENTGO_BENCH`, then the control-plane cache.
fn clientgo_bench_binary() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("KUBEFORGE_CLIENTGO_BENCH") {
        let p = std::path::PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let home = std::env::var_os("HOME")?;
    let p = std::path::PathBuf::from(home)
        .join(".cache/kubeforge/control-plane/v1.37.2/clientgo-bench");
    p.is_file().then_some(p)
}

/// client-go's figures: the harness prints one JSON line (see bench/clientgo/README.md).
#[derive(serde::Deserialize)]
struct ClientGoResult {
    objects: u64,
    seconds: f64,
    peak_rss_bytes: u64,
}

fn run_clientgo(
    bin: &std::path::Path,
    n: usize,
    kubeconfig: &std::path::Path,
    mode: ManagedFields,
) -> Option<Figures> {
    let mut cmd = Command::new(bin);
    cmd.arg("--kubeconfig").arg(kubeconfig).args([
        "--label-key",
        LABEL_KEY,
        "--expect",
        &n.to_string(),
    ]);
    if mode == ManagedFields::Drop {
        cmd.arg("--drop-managed-fields");
    }
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            println!("  client-go        could not run {}: {e}", bin.display());
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed = stdout
        .lines()
        .find_map(|l| serde_json::from_str::<ClientGoResult>(l).ok());
    match parsed {
        Some(r) if out.status.success() => Some(Figures {
            secs: r.seconds,
            objects: r.objects,
            peak_mib: r.peak_rss_bytes as f64 / 1048576.0,
            extra: BTreeMap::new(),
        }),
        _ => {
            println!(
                "  client-go        {} failed ({}): {}",
                bin.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
    }
}

fn main() {
    if let Ok(role) = std::env::var("KUBEFORGE_BENCH_CHILD") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        rt.block_on(child(&role));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(parent());
}

// ---------------------------------------------------------------------------------------------
// Parent: serves, seeds, runs children, prints tables.

#[derive(Debug, Clone, Default)]
struct Figures {
    secs: f64,
    objects: u64,
    peak_mib: f64,
    extra: BTreeMap<String, f64>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.objects as f64 / self.secs
    }
}

/// Whether every contender keeps `metadata.managedFields` in its cache, or every one drops them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ManagedFields {
    Keep,
    Drop,
}

impl ManagedFields {
    const BOTH: [ManagedFields; 2] = [ManagedFields::Keep, ManagedFields::Drop];

    fn name(self) -> &'static str {
        match self {
            ManagedFields::Keep => "keep",
            ManagedFields::Drop => "drop",
        }
    }

    /// The mode a child process was started in.
    fn from_env() -> Self {
        match std::env::var("KUBEFORGE_BENCH_MANAGED_FIELDS").as_deref() {
            Ok("keep") => ManagedFields::Keep,
            _ => ManagedFields::Drop,
        }
    }
}

/// One size's initial-sync figures, by (managedFields mode, contender).
type SyncRow = BTreeMap<(&'static str, &'static str), Figures>;

/// Runs every part of the benchmark, then prints its tables.
async fn parent() {
    let sizes = bench_sizes();
    println!(
        "kubeforge informer benchmark (release={})",
        !cfg!(debug_assertions)
    );
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "allocator: Rust contenders the system allocator (part 4: each also under mimalloc), client-go Go's (GOGC=100)\n\
         threads: Rust children a 2-worker tokio runtime; client-go GOMAXPROCS={cores} (all cores)\n\
         indexes: kubeforge and client-go namespace + label value + owner uid; kube-runtime and decode-only none\n\
         managedFields: every contender runs twice, keeping them (keep) and dropping them (drop)"
    );
    let sample = serde_json::to_vec(&pod_json(0)).expect("serialize").len();
    println!("pod JSON size: {sample} bytes\n");

    let clientgo = clientgo_bench_binary();
    match &clientgo {
        Some(p) => println!("client-go harness: {}", p.display()),
        None => println!(
            "client-go harness not found (KUBEFORGE_CLIENTGO_BENCH unset and not in \
             ~/.cache/kubeforge/control-plane/v1.37.2/): build it with \
             `bash scripts/control-plane.sh`; running without the client-go column"
        ),
    }

    let mut sync_rows = Vec::new();
    let mut mode_rows = Vec::new();
    for &n in &sizes {
        let (sync, modes) = initial_sync(n, clientgo.as_deref()).await;
        sync_rows.push((n, sync));
        mode_rows.push((n, modes));
    }

    if std::env::var("KUBEFORGE_BENCH_ONLY").as_deref() == Ok("modes") {
        modes::print(&mode_rows, &sync_rows);
        return;
    }
    let (tp, p50, p99, sent) = steady_watch().await;
    let compact_tp = dispatch_throughput(InformerOptions::default().compact()).await;

    print_sync_table(&sync_rows);
    print_ratios(&sync_rows);
    modes::print(&mode_rows, &sync_rows);
    println!(
        "ratio compact dispatch throughput / typed = {:.2}",
        compact_tp / tp
    );
    println!("\n== steady watch (synthetic stream → FIFO → indexer (3 indexes) → 4 handlers) ==");
    println!("throughput: {tp:.0} events/s typed, {compact_tp:.0} compact (target ≥ 50k)");
    println!(
        "dispatch latency at 10k events/s ({sent} events): p50 {p50:.1} µs, p99 {p99:.1} µs (target p99 < 1 ms)"
    );
}

/// The object counts to sync: `KUBEFORGE_BENCH_SIZES`, else 10k and 100k.
fn bench_sizes() -> Vec<usize> {
    std::env::var("KUBEFORGE_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// Part 1 for one size: a fresh server seeded with `n` pods, synced by each contender in turn.
async fn initial_sync(n: usize, clientgo: Option<&std::path::Path>) -> (SyncRow, ModeRow) {
    let server = kubeforge_testkit::ApiServer::start()
        .await
        .expect("start embedded server");
    let kubeconfig = seed(&server, n).await;

    let mut row = BTreeMap::new();
    // `KUBEFORGE_BENCH_ONLY=modes` runs part 4 alone (with client-go's row for its ratios).
    let only_modes = std::env::var("KUBEFORGE_BENCH_ONLY").as_deref() == Ok("modes");
    for mode in ManagedFields::BOTH {
        if only_modes {
            if let (ManagedFields::Drop, Some(bin)) = (mode, clientgo)
                && let Some(f) = run_clientgo(bin, n, &kubeconfig, mode)
            {
                print_figures("client-go", mode, n, &f);
                row.insert((mode.name(), "client-go"), f);
            }
            continue;
        }
        let relist: &[&'static str] = match mode {
            // Relist memory is kubeforge's own figure, in its default mode.
            ManagedFields::Drop => &["kubeforge-relist", "kubeforge-relist-paged"],
            ManagedFields::Keep => &[],
        };
        for &contender in ["decode-only", "kube-runtime", "kubeforge"]
            .iter()
            .chain(relist)
        {
            let f = run_child(contender, n, &kubeconfig, mode);
            print_figures(contender, mode, n, &f);
            row.insert((mode.name(), contender), f);
        }
        if let Some(bin) = clientgo
            && let Some(f) = run_clientgo(bin, n, &kubeconfig, mode)
        {
            print_figures("client-go", mode, n, &f);
            row.insert((mode.name(), "client-go"), f);
        }
    }
    // Part 4: the cache modes, and kube-runtime again, under each allocator (managedFields
    // dropped by all).
    let mut modes_row = ModeRow::new();
    for allocator in modes::ALLOCATORS {
        for mode in modes::MODES.iter().chain(&["kube-runtime"]) {
            let role = match *mode {
                "kube-runtime" => "kube-runtime".to_owned(),
                other => format!("mode:{other}"),
            };
            let f = run_child_with(&role, n, &kubeconfig, ManagedFields::Drop, allocator);
            print_figures(&format!("{mode} ({allocator})"), ManagedFields::Drop, n, &f);
            modes_row.insert((mode, allocator), f);
        }
    }
    server.shutdown().await;
    (row, modes_row)
}

/// One size's cache-mode figures, by (mode or `kube-runtime`, allocator).
type ModeRow = BTreeMap<(&'static str, &'static str), Figures>;

/// One contender's figures as they come in.
fn print_figures(contender: &str, mode: ManagedFields, n: usize, f: &Figures) {
    println!(
        "  {contender:<22} managedFields={:<4} n={n:<7} {:>7.2} s  {:>9.0} obj/s  peak RSS {:>8.1} MiB  {}",
        mode.name(),
        f.secs,
        f.rate(),
        f.peak_mib,
        f.extra
            .iter()
            .map(|(k, v)| format!("{k}={v:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// Fills the server with the bench namespaces and `n` pods, and writes the kubeconfig the
/// child processes connect with (its path is returned).
async fn seed(server: &kubeforge_testkit::ApiServer, n: usize) -> std::path::PathBuf {
    let client = server.client();
    for i in 0..NAMESPACES {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(format!("bench-{i}")),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
    }
    let t = Instant::now();
    // The ReplicaSets the pods name as their controller, so the server's garbage collector (like
    // kube-controller-manager's) keeps the pods; their uids go into the pods' ownerReferences.
    let owners = seed_replica_sets(server).await;
    let mut i = 0;
    while i < n {
        let batch: Vec<Value> = (i..(i + 5000).min(n))
            .map(|i| {
                let mut pod = pod_json(i);
                let key = (
                    pod["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    pod["metadata"]["ownerReferences"][0]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
                pod["metadata"]["ownerReferences"][0]["uid"] = json!(owners[&key]);
                pod
            })
            .collect();
        i += batch.len();
        server.seed("v1", "Pod", batch).expect("seed pods");
    }
    println!("seeded {n} pods in {:.1?}", t.elapsed());
    let dir = std::env::temp_dir().join(format!("kubeforge-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kubeconfig = dir.join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("write kubeconfig");
    kubeconfig
}

/// One ReplicaSet per app and namespace of [`pod_json`]'s pods; their uids by (namespace, name).
async fn seed_replica_sets(
    server: &kubeforge_testkit::ApiServer,
) -> BTreeMap<(String, String), String> {
    let sets: Vec<Value> = (0..NAMESPACES)
        .flat_map(|ns| {
            (0..50).map(move |app| {
                json!({
                    "metadata": {"name": format!("app-{app}-7d9f8c6b5d"), "namespace": format!("bench-{ns}")},
                    "spec": {
                        "selector": {"matchLabels": {"app.kubernetes.io/name": format!("app-{app}")}},
                        "template": {
                            "metadata": {"labels": {"app.kubernetes.io/name": format!("app-{app}")}},
                            "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.24.3"}]}
                        }
                    }
                })
            })
        })
        .collect();
    server
        .seed("apps/v1", "ReplicaSet", sets)
        .expect("seed replica sets");
    let listed = Api::<k8s_openapi::api::apps::v1::ReplicaSet>::all(server.client())
        .list(&ListParams::default())
        .await
        .expect("list replica sets");
    listed
        .items
        .into_iter()
        .map(|rs| {
            (
                (
                    rs.metadata.namespace.unwrap_or_default(),
                    rs.metadata.name.unwrap_or_default(),
                ),
                rs.metadata.uid.unwrap_or_default(),
            )
        })
        .collect()
}

/// The initial-sync table: each contender's time, rate and peak RSS per size and mode.
fn print_sync_table(sync_rows: &[(usize, SyncRow)]) {
    println!(
        "\n== initial sync (wall time to cache ready, objects/s, peak RSS of the syncing process) =="
    );
    println!("| objects | managedFields | contender | time | objects/s | peak RSS |");
    println!("|---|---|---|---|---|---|");
    for (n, row) in sync_rows {
        for mode in ManagedFields::BOTH {
            for c in [
                "kubeforge",
                "kube-runtime (no indexes)",
                "client-go",
                "decode-only (no cache)",
            ] {
                let key = c.split(' ').next().unwrap_or(c);
                let Some(f) = row.get(&(mode.name(), key)) else {
                    println!("| {n} | {} | {c} | not run | | |", mode.name());
                    continue;
                };
                println!(
                    "| {n} | {} | {c} | {:.2} s | {:.0} | {:.1} MiB |",
                    mode.name(),
                    f.secs,
                    f.rate(),
                    f.peak_mib
                );
            }
        }
    }
}

/// The ratios the targets are stated in, within one managedFields mode (equal work): kubeforge
/// against kube-runtime, decode-only and (when it ran) client-go; and kubeforge's relist peak
/// against its steady RSS.
fn print_ratios(sync_rows: &[(usize, SyncRow)]) {
    println!("\n== ratios (each within one managedFields mode: equal work) ==");
    println!(
        "| objects | managedFields | throughput kf/kube-runtime (≥1.2) | peak RSS kf/kube-runtime (≤0.7) | throughput kf/decode-only (≥0.7) | throughput kf/client-go (≥1.5) | peak RSS kf/client-go |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (n, row) in sync_rows {
        for mode in ManagedFields::BOTH {
            let m = mode.name();
            let (kf, kr, dec) = (
                &row[&(m, "kubeforge")],
                &row[&(m, "kube-runtime")],
                &row[&(m, "decode-only")],
            );
            let (cg_rate, cg_rss) = row.get(&(m, "client-go")).map_or_else(
                || ("not run".to_owned(), "not run".to_owned()),
                |cg| {
                    (
                        format!("{:.2}", kf.rate() / cg.rate()),
                        format!("{:.2}", kf.peak_mib / cg.peak_mib),
                    )
                },
            );
            println!(
                "| {n} | {m} | {:.2} | {:.2} | {:.2} | {cg_rate} | {cg_rss} |",
                kf.rate() / kr.rate(),
                kf.peak_mib / kr.peak_mib,
                kf.rate() / dec.rate(),
            );
        }
    }
    println!(
        "\n| objects | relist peak / steady (≤1.3), default | same, paged relist (page_size 500) |"
    );
    println!("|---|---|---|");
    for (n, row) in sync_rows {
        let relist = |f: &Figures| {
            let steady = f.extra.get("steady_mib").copied().unwrap_or(f64::NAN);
            let peak = f.extra.get("relist_peak_mib").copied().unwrap_or(f64::NAN);
            format!("{:.2} ({peak:.0} / {steady:.0} MiB)", peak / steady)
        };
        println!(
            "| {n} | {} | {} |",
            relist(&row[&("drop", "kubeforge-relist")]),
            relist(&row[&("drop", "kubeforge-relist-paged")])
        );
    }
}

fn run_child(role: &str, n: usize, kubeconfig: &std::path::Path, mode: ManagedFields) -> Figures {
    run_child_with(role, n, kubeconfig, mode, "system")
}

fn run_child_with(
    role: &str,
    n: usize,
    kubeconfig: &std::path::Path,
    mode: ManagedFields,
    allocator: &str,
) -> Figures {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .env("KUBEFORGE_BENCH_CHILD", role)
        .env(kubeforge_bench_alloc::VARIABLE, allocator)
        .env("KUBEFORGE_BENCH_MANAGED_FIELDS", mode.name())
        .env("KUBEFORGE_BENCH_N", n.to_string())
        .env("KUBEFORGE_BENCH_KUBECONFIG", kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the benchmark child process");
    // A contender that hangs must not hang the run: it gets a generous limit, then its row says
    // it timed out (NaN figures). (Its output is small: the pipes cannot fill up meanwhile.)
    let limit = Duration::from_secs(60 + n as u64 / 100);
    let started = Instant::now();
    while child.try_wait().expect("wait for the child").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            eprintln!(
                "  {role} managedFields={} n={n}: timed out after {limit:?}",
                mode.name()
            );
            let _ = child.wait();
            return Figures {
                secs: f64::NAN,
                peak_mib: f64::NAN,
                ..Figures::default()
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("the child's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "child {role} printed no RESULT line\nstdout: {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let mut f = Figures::default();
    for kv in line["RESULT ".len()..].split_whitespace() {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let v: f64 = v.parse().unwrap_or(f64::NAN);
        match k {
            "secs" => f.secs = v,
            "objects" => f.objects = v as u64,
            "peak_mib" => f.peak_mib = v,
            other => {
                f.extra.insert(other.to_string(), v);
            }
        }
    }
    f
}

// ---------------------------------------------------------------------------------------------
// Children: one contender each.

fn proc_status_kib(field: &str) -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn peak_mib() -> f64 {
    proc_status_kib("VmHWM:") / 1024.0
}

fn rss_mib() -> f64 {
    proc_status_kib("VmRSS:") / 1024.0
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` value 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn client_from_env() -> Client {
    let path = std::env::var("KUBEFORGE_BENCH_KUBECONFIG").expect("KUBEFORGE_BENCH_KUBECONFIG");
    let kc = Kubeconfig::read_from(path).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig");
    Client::try_from(config).expect("client")
}

async fn child(role: &str) {
    let n: u64 = std::env::var("KUBEFORGE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let client = client_from_env().await;
    let api: Api<Pod> = Api::all(client.clone());
    match role {
        "kubeforge" => {
            let (secs, objects, _) = kubeforge_sync(&api, None).await;
            println!(
                "RESULT secs={secs} objects={objects} peak_mib={}",
                peak_mib()
            );
        }
        "kubeforge-relist" | "kubeforge-relist-paged" => {
            let trigger = Arc::new(AtomicBool::new(false));
            let page_size = (role == "kubeforge-relist-paged").then_some(500);
            let (secs, objects, informer) =
                kubeforge_sync_with(&api, Some(trigger.clone()), page_size).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let steady = rss_mib();
            reset_peak();
            let lists = LISTS_DONE.load(Ordering::SeqCst);
            trigger.store(true, Ordering::SeqCst);
            let t = Instant::now();
            while LISTS_DONE.load(Ordering::SeqCst) <= lists || informer.lister().len() as u64 != n
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // Let the process loop drain the Replaced deltas.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let relist_secs = t.elapsed().as_secs_f64();
            println!(
                "RESULT secs={secs} objects={objects} peak_mib={} steady_mib={steady} relist_peak_mib={} relist_secs={relist_secs}",
                f64::NAN,
                peak_mib()
            );
        }
        "kube-runtime" => {
            use kube::runtime::{WatchStreamExt, reflector, watcher};
            let t = Instant::now();
            let (reader, writer) = reflector::store::<Pod>();
            let drop_managed_fields = ManagedFields::from_env() == ManagedFields::Drop;
            // With kube-runtime's recommended backoff (kubeforge and client-go back off too):
            // without it a failing watcher retries in a busy loop.
            let events = watcher(api, watcher::Config::default())
                .default_backoff()
                .modify(move |pod: &mut Pod| {
                    if drop_managed_fields {
                        pod.metadata.managed_fields = None;
                    }
                });
            let stream = reflector(writer, events)
                .applied_objects()
                .map(|_| ())
                .boxed();
            let drive = tokio::spawn(stream.for_each(|()| async {}));
            reader
                .wait_until_ready()
                .await
                .expect("kube-runtime store ready");
            let secs = t.elapsed().as_secs_f64();
            let objects = reader.len();
            let peak = peak_mib();
            tokio::time::sleep(Duration::from_millis(500)).await;
            println!(
                "RESULT secs={secs} objects={objects} peak_mib={peak} steady_mib={} live_mib={}",
                rss_mib(),
                kubeforge_bench_alloc::live_bytes() as f64 / 1048576.0
            );
            drive.abort();
        }
        "decode-only" => {
            // Fetch the same list pages as raw bytes first, then time decoding only.
            let mut pages: Vec<String> = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let lp = ListParams {
                    limit: Some(500),
                    continue_token: token.clone(),
                    ..ListParams::default()
                };
                let req = kube::core::Request::new("/api/v1/pods")
                    .list(&lp)
                    .expect("build list request");
                let text = client.request_text(req).await.expect("list page");
                let meta: Value = serde_json::from_str::<PartialList>(&text)
                    .map(|p| p.metadata)
                    .expect("page metadata");
                pages.push(text);
                token = meta["continue"]
                    .as_str()
                    .filter(|c| !c.is_empty())
                    .map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            let bytes: usize = pages.iter().map(String::len).sum();
            let skip_managed_fields = ManagedFields::from_env() == ManagedFields::Drop;
            reset_peak();
            let t = Instant::now();
            let mut objects = 0;
            for mut p in pages {
                if skip_managed_fields {
                    kubeforge::informer::hide_managed_fields(&mut p);
                }
                let list: ObjectList<Pod> = serde_json::from_str(&p).expect("decode");
                objects += list.items.len();
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "RESULT secs={secs} objects={objects} peak_mib={} mib_per_s={}",
                peak_mib(),
                bytes as f64 / 1048576.0 / secs
            );
        }
        other => match other.strip_prefix("mode:") {
            Some(mode) => modes::child(mode, &api, n).await,
            None => panic!("unknown benchmark child role {other}"),
        },
    }
}

#[derive(serde::Deserialize)]
struct PartialList {
    metadata: Value,
}

static LISTS_DONE: AtomicU64 = AtomicU64::new(0);

/// Wraps the real list-watch; when `trigger` is set, the open watch ends with a 410 ERROR
/// event so the informer relists (client-side, so the server needs no coordination).
struct Relistable<L> {
    inner: L,
    trigger: Option<Arc<AtomicBool>>,
}

impl<L: ListWatch> ListWatch for Relistable<L> {
    type Object = L::Object;
    fn list<'a>(
        &'a self,
        req: &'a ListRequest,
    ) -> BoxFuture<'a, Result<ObjectList<L::Object>, kube::Error>> {
        async move {
            let r = self.inner.list(req).await;
            if r.as_ref()
                .is_ok_and(|l| l.metadata.continue_.as_deref().unwrap_or("").is_empty())
            {
                LISTS_DONE.fetch_add(1, Ordering::SeqCst);
            }
            r
        }
        .boxed()
    }
    fn watch<'a>(
        &'a self,
        req: &'a WatchRequest,
    ) -> BoxFuture<'a, Result<WatchStream<L::Object>, kube::Error>> {
        async move {
            let s = self.inner.watch(req).await?;
            let Some(trigger) = self.trigger.clone() else {
                return Ok(s);
            };
            let fired = futures::stream::unfold(trigger, |t| async move {
                while !t.swap(false, Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let status =
                    kube::core::Status::failure("benchmark relist", "Expired").with_code(410);
                Some((Ok(WatchEvent::Error(Box::new(status))), t))
            });
            Ok(futures::stream::select(s, fired).boxed())
        }
        .boxed()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    /// Forwarded so kubeforge decodes pages on a blocking thread while the next one downloads,
    /// as an informer over `ApiListWatch` does.
    fn list_raw<'a>(
        &'a self,
        req: &'a ListRequest,
    ) -> Option<BoxFuture<'a, Result<RawPage<L::Object>, kube::Error>>> {
        let inner = self.inner.list_raw(req)?;
        Some(
            async move {
                let page = inner.await?;
                if !has_continue_token(&page.json) {
                    LISTS_DONE.fetch_add(1, Ordering::SeqCst);
                }
                Ok(page)
            }
            .boxed(),
        )
    }
}

/// Whether a raw list page carries a non-empty `metadata.continue` (Pods have no such key).
fn has_continue_token(json: &str) -> bool {
    json.match_indices("\"continue\"").any(|(i, m)| {
        let value = json[i + m.len()..].trim_start();
        let value = value.strip_prefix(':').unwrap_or(value).trim_start();
        value.starts_with('"') && !value.starts_with("\"\"")
    })
}

async fn kubeforge_sync(
    api: &Api<Pod>,
    trigger: Option<Arc<AtomicBool>>,
) -> (f64, usize, SharedIndexInformer<Pod>) {
    kubeforge_sync_with(api, trigger, None).await
}

async fn kubeforge_sync_with(
    api: &Api<Pod>,
    trigger: Option<Arc<AtomicBool>>,
    page_size: Option<u32>,
) -> (f64, usize, SharedIndexInformer<Pod>) {
    let t = Instant::now();
    let lw = Relistable {
        inner: ApiListWatch::new(api),
        trigger,
    };
    let options = InformerOptions {
        page_size,
        ..InformerOptions::default()
    };
    let informer = SharedIndexInformer::from_list_watch(lw, options);
    if ManagedFields::from_env() == ManagedFields::Keep {
        informer.set_transform(None).expect("not started yet");
    }
    index_run_and_sync(&informer).await;
    let secs = t.elapsed().as_secs_f64();
    let n = informer.lister().len();
    (secs, n, informer)
}

/// Adds the bench's two indexes (the namespace index is built in), runs `informer` and waits
/// until it has synced.
async fn index_run_and_sync<K>(informer: &SharedIndexInformer<K>)
where
    K: kube::Resource + Clone + std::fmt::Debug + Send + Sync + 'static,
{
    informer
        .add_indexers(
            Indexers::new()
                .with(LABEL_INDEX, app_label_index::<K>)
                .with(OWNER_UID_INDEX, owner_uid_index::<K>),
        )
        .expect("indexers");
    tokio::spawn({
        let informer = informer.clone();
        async move { informer.run().await }
    });
    informer.wait_for_sync().await;
}

/// The value of one label key, like the client-go harness's `label:<key>` index.
fn app_label_index<K: kube::Resource>(obj: &K) -> Result<Vec<IndexValue>, IndexFnError> {
    Ok(obj
        .meta()
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_KEY))
        .map(|v| vec![IndexValue::from(v.as_str())])
        .unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// Steady watch: synthetic events through the pipeline.

/// Serves an empty list, then a watch stream produced by `events`.
struct Synthetic {
    events: parking_lot::Mutex<Option<WatchStream<Pod>>>,
}

impl ListWatch for Synthetic {
    type Object = Pod;
    fn list<'a>(
        &'a self,
        _req: &'a ListRequest,
    ) -> BoxFuture<'a, Result<ObjectList<Pod>, kube::Error>> {
        async move {
            Ok(ObjectList {
                types: Default::default(),
                metadata: kube::core::ListMeta {
                    resource_version: Some("1".into()),
                    ..Default::default()
                },
                items: vec![],
            })
        }
        .boxed()
    }
    fn watch<'a>(
        &'a self,
        _req: &'a WatchRequest,
    ) -> BoxFuture<'a, Result<WatchStream<Pod>, kube::Error>> {
        let s = self.events.lock().take();
        async move { Ok(s.unwrap_or_else(|| futures::stream::pending().boxed())) }.boxed()
    }
    fn describe(&self) -> String {
        "synthetic pods".into()
    }
}

fn typed_pod(i: usize, rv: u64) -> Pod {
    let mut p: Pod = serde_json::from_value(pod_json(i)).expect("pod");
    p.metadata.resource_version = Some(rv.to_string());
    p
}

/// Runs `stream` through an informer with 3 indexes and 4 counting handlers; returns when all
/// handlers saw `expected` notifications. Handler 0 records latency via `on_event`.
async fn pipeline(
    stream: WatchStream<Pod>,
    expected: usize,
    on_event: Arc<dyn Fn(&Pod) + Send + Sync>,
    options: InformerOptions,
) -> Duration {
    let informer = SharedIndexInformer::from_list_watch(
        Synthetic {
            events: parking_lot::Mutex::new(Some(stream)),
        },
        options,
    );
    informer
        .add_indexers(
            Indexers::new()
                .with(LABEL_INDEX, app_label_index::<Pod>)
                .with(OWNER_UID_INDEX, owner_uid_index::<Pod>),
        )
        .expect("indexers");
    // `KUBEFORGE_BENCH_HANDLERS` (default 4) varies the handler count, to see its share.
    let handlers: usize = std::env::var("KUBEFORGE_BENCH_HANDLERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let counts: Vec<Arc<AtomicUsize>> = (0..handlers.max(1))
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    for (i, c) in counts.iter().enumerate() {
        let (a, u) = (c.clone(), c.clone());
        let (ea, eu) = (on_event.clone(), on_event.clone());
        let first = i == 0;
        informer
            .add_event_handler(
                HandlerFns::new()
                    .on_add(move |o: Arc<Pod>, _| {
                        if first {
                            ea(&o);
                        }
                        a.fetch_add(1, Ordering::Relaxed);
                    })
                    .on_update(move |_, o: Arc<Pod>| {
                        if first {
                            eu(&o);
                        }
                        u.fetch_add(1, Ordering::Relaxed);
                    }),
            )
            .expect("handler");
    }
    let t = Instant::now();
    let run = tokio::spawn({
        let informer = informer.clone();
        async move { informer.run().await }
    });
    while counts.iter().any(|c| c.load(Ordering::Relaxed) < expected) {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = t.elapsed();
    informer.stop();
    let _ = run.await;
    elapsed
}

/// Handler dispatch throughput: 100k Modified events over 1k objects through an informer with
/// `options`, as fast as the pipeline takes them.
async fn dispatch_throughput(options: InformerOptions) -> f64 {
    let objects = 1000;
    let total = 100_000;
    let base: Vec<Pod> = (0..objects).map(|i| typed_pod(i, 0)).collect();
    let events: Vec<Result<WatchEvent<Pod>, kube::Error>> = (0..total)
        .map(|i| {
            let mut p = base[i % objects].clone();
            p.metadata.resource_version = Some((i + 2).to_string());
            Ok(if i < objects {
                WatchEvent::Added(p)
            } else {
                WatchEvent::Modified(p)
            })
        })
        .collect();
    let elapsed = pipeline(
        futures::stream::iter(events).boxed(),
        total,
        Arc::new(|_| {}),
        options,
    )
    .await;
    // Each handler gets one notification per event, except when the FIFO merged a key's
    // queued deltas (then still one notification per delta); so `total` per handler.
    total as f64 / elapsed.as_secs_f64()
}

async fn steady_watch() -> (f64, f64, f64, usize) {
    let throughput = dispatch_throughput(InformerOptions::default()).await;
    let objects = 1000;
    let base: Vec<Pod> = (0..objects).map(|i| typed_pod(i, 0)).collect();

    // Latency at a fixed 10k events/s: 10 events every millisecond for 3 s.
    let rate_events = 30_000;
    let stamps: Arc<Vec<AtomicU64>> =
        Arc::new((0..rate_events).map(|_| AtomicU64::new(0)).collect());
    let latencies: Arc<parking_lot::Mutex<Vec<u64>>> = Arc::default();
    let origin = Instant::now();
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let producer = {
        let stamps = stamps.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let mut i = 0usize;
            while i < rate_events {
                tick.tick().await;
                for _ in 0..10 {
                    if i >= rate_events {
                        break;
                    }
                    let mut p = base[i % objects].clone();
                    p.metadata.resource_version = Some((i + 2).to_string());
                    stamps[i].store(origin.elapsed().as_nanos() as u64, Ordering::SeqCst);
                    let ev = if i < objects {
                        WatchEvent::Added(p)
                    } else {
                        WatchEvent::Modified(p)
                    };
                    let _ = tx.unbounded_send(Ok(ev));
                    i += 1;
                }
            }
        })
    };
    let (s2, l2) = (stamps.clone(), latencies.clone());
    let record: Arc<dyn Fn(&Pod) + Send + Sync> = Arc::new(move |p: &Pod| {
        let now = origin.elapsed().as_nanos() as u64;
        if let Some(i) = p
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<usize>().ok())
            .and_then(|v| v.checked_sub(2))
        {
            l2.lock()
                .push(now.saturating_sub(s2[i].load(Ordering::SeqCst)));
        }
    });
    pipeline(rx.boxed(), rate_events, record, InformerOptions::default()).await;
    let _ = producer.await;
    let mut l = latencies.lock().clone();
    l.sort_unstable();
    let pct = |q: f64| {
        l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    (throughput, pct(0.50), pct(0.99), l.len())
}

// ---------------------------------------------------------------------------------------------
// A realistic Pod: labels, annotations, an ownerReference, two managedFields entries, one
// container with env, resources, probe and volume mount, a projected volume, status with four
// conditions and a container status (~3.8 KiB as JSON).

fn pod_json(i: usize) -> Value {
    let ns = format!("bench-{}", i % NAMESPACES);
    let app = format!("app-{}", i % 50);
    let rs = format!("{app}-7d9f8c6b5d");
    let name = format!("{rs}-{i:06x}");
    let ts = "2026-11-27T06:00:00Z";
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                "app.kubernetes.io/name": app,
                "app.kubernetes.io/instance": format!("{app}-prod"),
                "app.kubernetes.io/version": "1.24.3",
                "pod-template-hash": "7d9f8c6b5d",
                "tier": if i.is_multiple_of(3) { "frontend" } else { "backend" }
            },
            "annotations": {
                "kubectl.kubernetes.io/restartedAt": ts,
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9090"
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": rs,
                "uid": format!("6b3c2a1e-0000-4000-8000-{:012x}", i % 50),
                "controller": true,
                "blockOwnerDeletion": true
            }],
            "managedFields": [
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": ts,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app.kubernetes.io/name": {}, "f:pod-template-hash": {}}, "f:ownerReferences": {".": {}, "k:{\"uid\":\"6b3c2a1e\"}": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:env": {}, "f:image": {}, "f:livenessProbe": {}, "f:resources": {}}}}}
                },
                {
                    "manager": "kubelet",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": ts,
                    "fieldsType": "FieldsV1",
                    "subresource": "status",
                    "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:lastTransitionTime": {}, "f:status": {}, "f:type": {}}}, "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {}, "f:podIP": {}, "f:startTime": {}}}
                }
            ]
        },
        "spec": {
            "containers": [{
                "name": "app",
                "image": format!("registry.example.com/team/{app}:1.24.3"),
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "env": [
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                    {"name": "DATABASE_URL", "value": "postgres://db.internal:5432/app"}
                ],
                "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent"
            }],
            "volumes": [{
                "name": "kube-api-access",
                "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ]}
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": format!("node-{}", i % 20),
            "schedulerName": "default-scheduler",
            "priority": 0,
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": ts},
                {"type": "Ready", "status": "True", "lastTransitionTime": ts},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": ts},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": ts}
            ],
            "hostIP": format!("10.0.{}.{}", i % 20, 10),
            "podIP": format!("10.244.{}.{}", (i / 250) % 250, i % 250),
            "podIPs": [{"ip": format!("10.244.{}.{}", (i / 250) % 250, i % 250)}],
            "startTime": ts,
            "qosClass": "Burstable",
            "containerStatuses": [{
                "name": "app",
                "state": {"running": {"startedAt": ts}},
                "lastState": {},
                "ready": true,
                "restartCount": 0,
                "image": format!("registry.example.com/team/{app}:1.24.3"),
                "imageID": "registry.example.com/team/app@sha256:3f1e2d4c5b6a79808f7e6d5c4b3a29181f0e1d2c3b4a5968778695a4b3c2d1e0",
                "containerID": format!("containerd://{:064x}", i),
                "started": true
            }]
        }
    })
}
