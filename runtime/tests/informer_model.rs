//! Property test: random creates/updates/deletes interleaved with faults (dropped watches,
//! compaction answered with HTTP 410 or an ERROR event, failing lists, 429/500 on watch) against
//! an in-memory model of the API server. After quiescence, for every seed, the informer's cache
//! must equal the server and every handler's per-key view must be consistent.
//! `KUBEFORGE_MODEL_SEEDS=n` changes how many schedules run.

mod informer_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use informer_support::{Checker, View, cache_view, eventually};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectList, ObjectMeta, WatchEvent};
use kube::core::watch::{Bookmark, BookmarkMeta};
use kube::core::{ListMeta, Status, TypeMeta};
use kubeforge::informer::BackoffConfig;
use kubeforge::informer::{InformerOptions, ListWatch, SharedIndexInformer};
use kubeforge::informer::{ListRequest, WatchRequest, WatchStream};
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Tx = futures::channel::mpsc::UnboundedSender<Result<WatchEvent<ConfigMap>, kube::Error>>;

/// Every change the model server made: (resourceVersion, event).
#[derive(Clone)]
enum Change {
    Put(ConfigMap),
    Delete(ConfigMap),
}

#[derive(Default)]
struct Model {
    rv: u64,
    objects: BTreeMap<String, ConfigMap>,
    history: Vec<(u64, Change)>,
    /// Versions at or below this are gone from history.
    compacted: u64,
    watchers: Vec<Tx>,
    /// Paged list snapshots by token.
    snapshots: BTreeMap<String, (u64, Vec<ConfigMap>)>,
    fail_lists: u32,
    fail_watches: Vec<u16>,
    rng: Option<StdRng>,
    lists: u64,
    watches: u64,
}

struct ModelServer(Mutex<Model>);

fn status(code: u16, reason: &str) -> Box<Status> {
    Box::new(Status::failure("model server fault", reason).with_code(code))
}

fn event(change: &Change) -> WatchEvent<ConfigMap> {
    match change {
        Change::Put(o) => {
            if o.metadata.generation == Some(1) {
                WatchEvent::Added(o.clone())
            } else {
                WatchEvent::Modified(o.clone())
            }
        }
        Change::Delete(o) => WatchEvent::Deleted(o.clone()),
    }
}

impl ModelServer {
    fn new(seed: u64) -> Self {
        Self(Mutex::new(Model {
            rng: Some(StdRng::seed_from_u64(seed ^ 0x5eed)),
            rv: 1,
            ..Model::default()
        }))
    }

    fn mutate(&self, change_of: impl FnOnce(&mut Model, u64) -> Option<Change>) {
        let mut m = self.0.lock();
        let rv = m.rv + 1;
        let Some(change) = change_of(&mut m, rv) else {
            return;
        };
        m.rv = rv;
        m.history.push((rv, change.clone()));
        let ev = event(&change);
        m.watchers
            .retain(|tx| tx.unbounded_send(Ok(clone_event(&ev))).is_ok());
    }

    fn create_or_update(&self, name: &str) {
        let name = name.to_string();
        self.mutate(|m, rv| {
            let obj = match m.objects.get(&name) {
                Some(old) => {
                    let mut o = old.clone();
                    o.metadata.generation = Some(o.metadata.generation.unwrap_or(1) + 1);
                    o
                }
                None => ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some("ns".into()),
                        generation: Some(1),
                        ..Default::default()
                    },
                    ..Default::default()
                },
            };
            let mut obj = obj;
            obj.metadata.resource_version = Some(rv.to_string());
            m.objects.insert(name, obj.clone());
            Some(Change::Put(obj))
        });
    }

    fn delete(&self, name: &str) {
        self.mutate(|m, rv| {
            let mut o = m.objects.remove(name)?;
            o.metadata.resource_version = Some(rv.to_string());
            Some(Change::Delete(o))
        });
    }

    fn close_watches(&self) {
        self.0.lock().watchers.clear();
    }

    fn compact(&self) {
        let mut m = self.0.lock();
        m.compacted = m.rv;
        m.history.clear();
        m.snapshots.clear();
        // Open watches learn about it from an ERROR event, like etcd compaction.
        let watchers = std::mem::take(&mut m.watchers);
        for tx in watchers {
            let _ = tx.unbounded_send(Ok(WatchEvent::Error(status(410, "Expired"))));
        }
    }

    fn bookmark(&self) {
        let mut m = self.0.lock();
        let rv = m.rv.to_string();
        m.watchers.retain(|tx| {
            tx.unbounded_send(Ok(WatchEvent::Bookmark(Bookmark {
                types: TypeMeta::default(),
                metadata: BookmarkMeta {
                    resource_version: rv.clone(),
                    annotations: Default::default(),
                },
            })))
            .is_ok()
        });
    }

    fn view(&self) -> View {
        informer_support::objects_view(self.0.lock().objects.values())
    }
}

fn clone_event(e: &WatchEvent<ConfigMap>) -> WatchEvent<ConfigMap> {
    match e {
        WatchEvent::Added(o) => WatchEvent::Added(o.clone()),
        WatchEvent::Modified(o) => WatchEvent::Modified(o.clone()),
        WatchEvent::Deleted(o) => WatchEvent::Deleted(o.clone()),
        WatchEvent::Bookmark(b) => WatchEvent::Bookmark(b.clone()),
        WatchEvent::Error(s) => WatchEvent::Error(s.clone()),
    }
}

fn parse_rv(rv: &str) -> Option<u64> {
    rv.parse().ok()
}

struct Handle(Arc<ModelServer>);

impl ListWatch for Handle {
    type Object = ConfigMap;

    fn list<'a>(
        &'a self,
        req: &'a ListRequest,
    ) -> BoxFuture<'a, Result<ObjectList<ConfigMap>, kube::Error>> {
        let result = (|| {
            let mut m = self.0.0.lock();
            m.lists += 1;
            if m.fail_lists > 0 {
                m.fail_lists -= 1;
                return Err(kube::Error::Api(status(500, "InternalError")));
            }
            let (list_rv, items, offset) = match &req.continue_token {
                Some(token) => {
                    let (id, offset) = token.split_once(':').unwrap_or((token, "0"));
                    let Some((rv, items)) = m.snapshots.get(id).cloned() else {
                        return Err(kube::Error::Api(status(410, "Expired")));
                    };
                    (rv, items, offset.parse::<usize>().unwrap_or(0))
                }
                None => {
                    if let Some(rv) = parse_rv(&req.resource_version)
                        && rv != 0
                        && rv < m.compacted
                    {
                        return Err(kube::Error::Api(status(410, "Expired")));
                    }
                    (m.rv, m.objects.values().cloned().collect::<Vec<_>>(), 0)
                }
            };
            let limit = req.limit.map(|l| l as usize).unwrap_or(usize::MAX);
            let end = offset.saturating_add(limit).min(items.len());
            let page = items[offset..end].to_vec();
            let continue_ = (end < items.len()).then(|| {
                let id = format!("snap{}", m.lists);
                m.snapshots.insert(id.clone(), (list_rv, items.clone()));
                format!("{id}:{end}")
            });
            Ok(ObjectList {
                types: TypeMeta::default(),
                metadata: ListMeta {
                    resource_version: Some(list_rv.to_string()),
                    continue_,
                    ..Default::default()
                },
                items: page,
            })
        })();
        async move { result }.boxed()
    }

    fn watch<'a>(
        &'a self,
        req: &'a WatchRequest,
    ) -> BoxFuture<'a, Result<WatchStream<ConfigMap>, kube::Error>> {
        let result = (|| {
            let mut m = self.0.0.lock();
            m.watches += 1;
            if let Some(code) = m.fail_watches.pop() {
                return Err(kube::Error::Api(status(code, "Fault")));
            }
            let from = parse_rv(&req.resource_version).unwrap_or(m.rv);
            let (tx, rx) = futures::channel::mpsc::unbounded();
            if from < m.compacted {
                // 410 both ways: as the HTTP status or as the first event of the stream.
                let as_event = m.rng.as_mut().is_some_and(|r| r.random_bool(0.5));
                if !as_event {
                    return Err(kube::Error::Api(status(410, "Expired")));
                }
                let _ = tx.unbounded_send(Ok(WatchEvent::Error(status(410, "Expired"))));
                return Ok(rx.boxed());
            }
            for (rv, change) in &m.history {
                if *rv > from {
                    let _ = tx.unbounded_send(Ok(event(change)));
                }
            }
            m.watchers.push(tx);
            Ok(rx.boxed())
        })();
        async move { result }.boxed()
    }

    fn describe(&self) -> String {
        "configmaps (model server)".into()
    }
}

async fn run_schedule(seed: u64) -> Result<(), String> {
    let server = Arc::new(ModelServer::new(seed));
    let mut rng = StdRng::seed_from_u64(seed);
    let names: Vec<String> = (0..8).map(|i| format!("cm{i}")).collect();
    // Some objects exist before the informer starts.
    for n in names.iter().take(rng.random_range(0..5)) {
        server.create_or_update(n);
    }
    let options = InformerOptions::default()
        .page_size(rng.random_range(1..4))
        .backoff(BackoffConfig {
            initial: Duration::from_millis(1),
            cap: Duration::from_millis(5),
            ..BackoffConfig::default()
        });
    let informer = SharedIndexInformer::from_list_watch(Handle(server.clone()), options);
    let early = Arc::new(Checker::default());
    informer
        .add_event_handler(early.clone())
        .map_err(|e| e.to_string())?;
    let slow = Arc::new(Checker::slow(Duration::from_micros(200)));
    informer
        .add_event_handler(slow.clone())
        .map_err(|e| e.to_string())?;
    let run = tokio::spawn({
        let informer = informer.clone();
        async move { informer.run().await }
    });
    let mut late = None;
    let ops = rng.random_range(20..60);
    for i in 0..ops {
        let name = &names[rng.random_range(0..names.len())];
        match rng.random_range(0..100) {
            0..45 => server.create_or_update(name),
            45..70 => server.delete(name),
            70..78 => server.close_watches(),
            78..84 => server.compact(),
            84..88 => server.0.lock().fail_lists += 1,
            88..92 => {
                let code = if rng.random_bool(0.5) { 429 } else { 500 };
                server.0.lock().fail_watches.push(code);
                server.close_watches();
            }
            _ => server.bookmark(),
        }
        if i == ops / 2 {
            let c = Arc::new(Checker::default());
            informer
                .add_event_handler(c.clone())
                .map_err(|e| e.to_string())?;
            late = Some(c);
        }
        if rng.random_bool(0.3) {
            tokio::time::sleep(Duration::from_micros(rng.random_range(0..2000))).await;
        }
    }
    let want = server.view();
    let checkers: Vec<Arc<Checker>> = [Some(early), Some(slow), late]
        .into_iter()
        .flatten()
        .collect();
    let lister = informer.lister();
    let converged = eventually(Duration::from_secs(10), || {
        cache_view(&lister) == want && checkers.iter().all(|c| c.view() == want)
    })
    .await;
    informer.stop();
    let _ = run.await;
    if !converged {
        return Err(format!(
            "seed {seed}: did not converge\n server {want:?}\n cache  {:?}\n handlers {:?}",
            cache_view(&lister),
            checkers.iter().map(|c| c.view()).collect::<Vec<_>>()
        ));
    }
    for c in &checkers {
        let v = c.violations();
        if !v.is_empty() {
            return Err(format!(
                "seed {seed}: handler saw an inconsistent sequence: {v:?}"
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_schedules_with_faults_converge_with_consistent_handler_sequences() {
    let seeds: u64 = std::env::var("KUBEFORGE_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    for seed in 0..seeds {
        if let Err(e) = run_schedule(seed).await {
            failures.push(e);
        }
    }
    println!(
        "informer model: ran {seeds} schedules in {:?}, {} divergences",
        started.elapsed(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
