//! Write throughput of the embedded server in memory and with `data_dir` (every write durable on
//! disk before it is answered): N ConfigMaps created through `kube::Client` by 8 concurrent
//! writers, on the same server code, objects and client, the only difference being the data
//! directory. Prints creates/s and the p50 / p99 latency of one create, and the ratios.
//!
//! `cargo bench -p kubeforge-testkit --bench writes` (N from `KUBEFORGE_BENCH_OBJECTS`, default
//! 10000).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kubeforge_testkit::ApiServer;

const WRITERS: usize = 8;

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn run(server: &ApiServer, n: usize) -> Figures {
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in (w..n).step_by(WRITERS) {
                let mut cm = ConfigMap::default();
                cm.metadata.name = Some(format!("cm-{i:06}"));
                cm.data = Some([("config".to_string(), "x".repeat(512))].into());
                let t = Instant::now();
                api.create(&PostParams::default(), &cm)
                    .await
                    .expect("create");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("writer"));
    }
    let elapsed = start.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures {
        per_second: n as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:<24} {:>8.0} creates/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        f.per_second,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("KUBEFORGE_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!(
        "{n} ConfigMaps (512 B of data each), {WRITERS} concurrent writers, 2 runtime workers"
    );
    let memory = ApiServer::start().await.expect("server");
    let in_memory = run(&memory, n).await;
    print("in memory", &in_memory);
    memory.shutdown().await;

    let dir = tempfile::tempdir().expect("temp dir");
    let durable = ApiServer::builder()
        .data_dir(dir.path())
        .start()
        .await
        .expect("server with a data dir");
    let on_disk = run(&durable, n).await;
    print("data_dir (durable)", &on_disk);
    durable.shutdown().await;
    println!(
        "ratio data_dir / in-memory throughput = {:.2}",
        on_disk.per_second / in_memory.per_second
    );
    println!(
        "ratio data_dir / in-memory p99 = {:.2}",
        on_disk.p99.as_secs_f64() / in_memory.p99.as_secs_f64()
    );
}
