//! Part 4 of the informer benchmark: kubeforge's cache modes side by side, each synced by its
//! own child process under each allocator.
//!
//! Modes: `typed` (the default: `Arc<Pod>`s), `compact` (LZ4-compressed JSON, 1,024 decoded
//! objects hot) and `metadata-only` (`PartialObjectMeta<Pod>`: no spec or status — it does
//! less, and says so in its name). Every mode drops `managedFields`, keeps the same three
//! indexes and lists pages of 500 from the same server. Per child: initial sync time and peak
//! RSS, steady RSS, peak RSS while relisting everything, `get` latency over random keys (so a
//! compact cache mostly decodes), `list` latency and the peak RSS a `list` adds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::PartialObjectMeta;
use kube::{Api, Resource};
use kubeforge::informer::{
    ApiListWatch, InformerOptions, ListWatch, MetadataListWatch, SharedIndexInformer,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    LISTS_DONE, ModeRow, Relistable, SyncRow, index_run_and_sync, peak_mib, reset_peak, rss_mib,
};

/// The modes, as child roles `mode:<name>`.
pub(super) const MODES: [&str; 3] = ["typed", "compact", "metadata-only"];

/// The allocators every mode runs under.
pub(super) const ALLOCATORS: [&str; 2] = ["system", "mimalloc"];

/// Runs the child for `mode` against the server's Pods; prints its `RESULT` line.
pub(super) async fn child(mode: &str, api: &Api<Pod>, n: u64) {
    let options = InformerOptions::default();
    match mode {
        "typed" => measure(ApiListWatch::new(api), options, n).await,
        "compact" => measure(ApiListWatch::new(api), options.compact(), n).await,
        "metadata-only" => {
            measure::<PartialObjectMeta<Pod>, _>(MetadataListWatch::new(api), options, n).await
        }
        other => panic!("unknown cache mode {other}"),
    }
}

/// The p-th quantile of `samples` (sorted here).
fn quantile(samples: &mut [f64], q: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let i = ((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1));
    samples.get(i).copied().unwrap_or(f64::NAN)
}

async fn measure<K, L>(lw: L, options: InformerOptions, n: u64)
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
    L: ListWatch<Object = K>,
{
    let t = Instant::now();
    let trigger = Arc::new(AtomicBool::new(false));
    let informer = SharedIndexInformer::from_list_watch(
        Relistable {
            inner: lw,
            trigger: Some(trigger.clone()),
        },
        options,
    );
    index_run_and_sync(&informer).await;
    let secs = t.elapsed().as_secs_f64();
    let lister = informer.lister();
    let objects = lister.len();
    let sync_peak = peak_mib();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let steady = rss_mib();
    let live = kubeforge_bench_alloc::live_bytes() as f64 / 1048576.0;

    // Relist everything (a 410 on the open watch), as after a long disconnection.
    reset_peak();
    let lists = LISTS_DONE.load(Ordering::SeqCst);
    trigger.store(true, Ordering::SeqCst);
    let relist = Instant::now();
    while LISTS_DONE.load(Ordering::SeqCst) <= lists || lister.len() as u64 != n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let the process loop drain the Replaced deltas.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let relist_secs = relist.elapsed().as_secs_f64();
    let relist_peak = peak_mib();

    // `get` of random keys: 20,000 reads.
    let keys = lister.list_keys();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut gets = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = &keys[(state % keys.len() as u64) as usize];
        let t = Instant::now();
        let found = lister.get_by_key(key);
        gets.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(found.is_some(), "every listed key reads back");
    }
    // `list` of everything, last: in a compact cache it decodes every object at once.
    reset_peak();
    let rounds = if n > 20_000 { 3 } else { 10 };
    let mut lists_ms = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let all = lister.list();
        lists_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(all.len() as u64, n);
    }
    let list_peak = peak_mib();
    println!(
        "RESULT secs={secs} objects={objects} peak_mib={sync_peak} steady_mib={steady} live_mib={live} \
         relist_peak_mib={relist_peak} relist_secs={relist_secs} get_p50_us={} get_p99_us={} \
         list_p50_ms={} list_max_ms={} list_peak_mib={list_peak} allocator_is_mimalloc={}",
        quantile(&mut gets, 0.5),
        quantile(&mut gets, 0.99),
        quantile(&mut lists_ms, 0.5),
        quantile(&mut lists_ms, 1.0),
        u8::from(kubeforge_bench_alloc::name() == "mimalloc"),
    );
}

/// The cache-mode table, then every ratio as a line `ratio <what> = <value>`.
pub(super) fn print(mode_rows: &[(usize, ModeRow)], sync_rows: &[(usize, SyncRow)]) {
    println!(
        "\n== cache modes (managedFields dropped by all, 3 indexes, JSON pages of 500; relist: a 410 on the open watch) =="
    );
    println!(
        "| objects | mode | allocator | sync | objects/s | peak RSS | steady RSS | live heap | relist peak | get p50 / p99 | list p50 | peak RSS during list |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (n, row) in mode_rows {
        for ((mode, allocator), f) in row {
            let x = |k: &str| f.extra.get(k).copied().unwrap_or(f64::NAN);
            let name = match *mode {
                "metadata-only" => "metadata-only (no spec/status: does less)",
                "kube-runtime" => "kube-runtime (no indexes)",
                other => other,
            };
            println!(
                "| {n} | {name} | {allocator} | {:.2} s | {:.0} | {:.0} MiB | {:.0} MiB | {:.0} MiB | {:.0} MiB | {:.1} / {:.1} µs | {:.0} ms | {:.0} MiB |",
                f.secs,
                f.rate(),
                f.peak_mib,
                x("steady_mib"),
                x("live_mib"),
                x("relist_peak_mib"),
                x("get_p50_us"),
                x("get_p99_us"),
                x("list_p50_ms"),
                x("list_peak_mib"),
            );
        }
    }
    println!();
    for (n, row) in mode_rows {
        let client_go = sync_rows
            .iter()
            .find(|(m, _)| m == n)
            .and_then(|(_, r)| r.get(&("drop", "client-go")));
        for allocator in ALLOCATORS {
            let at = |mode: &'static str| row.get(&(mode, allocator));
            let ratio = |what: &str, v: f64| {
                println!("ratio {what} (n={n}, {allocator}) = {v:.2}");
            };
            let (Some(typed), Some(compact), Some(meta), Some(kr)) = (
                at("typed"),
                at("compact"),
                at("metadata-only"),
                at("kube-runtime"),
            ) else {
                continue;
            };
            if let Some(cg) = client_go {
                ratio(
                    "compact peak RSS / client-go",
                    compact.peak_mib / cg.peak_mib,
                );
                ratio(
                    "metadata-only peak RSS / client-go",
                    meta.peak_mib / cg.peak_mib,
                );
                ratio("typed peak RSS / client-go", typed.peak_mib / cg.peak_mib);
            }
            ratio(
                "typed peak RSS / kube-runtime",
                typed.peak_mib / kr.peak_mib,
            );
            ratio(
                "compact peak RSS / typed",
                compact.peak_mib / typed.peak_mib,
            );
            ratio(
                "compact sync throughput / typed",
                compact.rate() / typed.rate(),
            );
            for (mode, f) in [
                ("typed", typed),
                ("compact", compact),
                ("metadata-only", meta),
            ] {
                let x = |k: &str| f.extra.get(k).copied().unwrap_or(f64::NAN);
                ratio(
                    &format!("{mode} relist peak / steady"),
                    x("relist_peak_mib") / x("steady_mib"),
                );
            }
            let p99 = compact.extra.get("get_p99_us").copied().unwrap_or(f64::NAN);
            println!("figure compact get p99 (n={n}, {allocator}) = {p99:.1} µs (target ≤ 50)");
        }
        for mode in MODES.iter().chain(&["kube-runtime"]) {
            if let (Some(sys), Some(mi)) =
                (row.get(&(mode, "system")), row.get(&(mode, "mimalloc")))
            {
                println!(
                    "ratio {mode} peak RSS mimalloc / system (n={n}) = {:.2}",
                    mi.peak_mib / sys.peak_mib
                );
                println!(
                    "ratio {mode} sync throughput mimalloc / system (n={n}) = {:.2}",
                    mi.rate() / sys.rate()
                );
            }
        }
    }
}
