//! Shared by the informer integration and model tests: a handler that checks every per-key
//! sequence it receives, and helpers to compare a cache with the server.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kube::Resource;
use kubeforge::informer::{DeletedObject, ResourceEventHandler};
use parking_lot::Mutex;

/// What a handler believes exists: `namespace/name → resourceVersion`.
pub type View = BTreeMap<String, String>;

/// A handler that records its view of the world and every rule it saw broken:
/// no update before add, no add while present, no delete of an absent object,
/// `old` of an update equal to the last state it received.
#[derive(Default)]
pub struct Checker {
    view: Mutex<View>,
    violations: Mutex<Vec<String>>,
    pub adds: AtomicUsize,
    pub updates: AtomicUsize,
    pub deletes: AtomicUsize,
    pub tombstones: AtomicUsize,
    /// Artificial slowness per notification.
    pub delay: Option<Duration>,
}

fn key_rv<K: Resource>(o: &K) -> (String, String) {
    let m = o.meta();
    let key = match &m.namespace {
        Some(ns) => format!("{ns}/{}", m.name.clone().unwrap_or_default()),
        None => m.name.clone().unwrap_or_default(),
    };
    (key, m.resource_version.clone().unwrap_or_default())
}

impl Checker {
    pub fn slow(delay: Duration) -> Self {
        Self {
            delay: Some(delay),
            ..Self::default()
        }
    }

    pub fn view(&self) -> View {
        self.view.lock().clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().clone()
    }

    fn pause(&self) {
        if let Some(d) = self.delay {
            std::thread::sleep(d);
        }
    }
}

impl<K: Resource + Send + Sync + 'static> ResourceEventHandler<K> for Checker {
    fn on_add(&self, obj: Arc<K>, _is_initial_list: bool) {
        self.pause();
        self.adds.fetch_add(1, Ordering::Relaxed);
        let (k, rv) = key_rv(&*obj);
        if let Some(prev) = self.view.lock().insert(k.clone(), rv) {
            self.violations
                .lock()
                .push(format!("add of {k} while present at {prev}"));
        }
    }

    fn on_update(&self, old: Arc<K>, new: Arc<K>) {
        self.pause();
        self.updates.fetch_add(1, Ordering::Relaxed);
        let (k, old_rv) = key_rv(&*old);
        let (_, new_rv) = key_rv(&*new);
        let mut view = self.view.lock();
        match view.get(&k) {
            None => self
                .violations
                .lock()
                .push(format!("update of {k} before add")),
            Some(seen) if *seen != old_rv => self.violations.lock().push(format!(
                "update of {k} from {old_rv} but last delivered {seen}"
            )),
            Some(_) => {}
        }
        view.insert(k, new_rv);
    }

    fn on_delete(&self, obj: DeletedObject<K>) {
        self.pause();
        self.deletes.fetch_add(1, Ordering::Relaxed);
        if obj.is_tombstone() {
            self.tombstones.fetch_add(1, Ordering::Relaxed);
        }
        let Some(key) = obj.key() else {
            self.violations.lock().push("delete without key".into());
            return;
        };
        if self.view.lock().remove(key.as_str()).is_none() {
            self.violations
                .lock()
                .push(format!("delete of {key} that was not present"));
        }
    }
}

/// The cache as `key → resourceVersion`.
pub fn cache_view<K: Resource>(lister: &kubeforge::informer::Lister<K>) -> View {
    lister.list().iter().map(|o| key_rv(&**o)).collect()
}

/// Objects as `key → resourceVersion`.
pub fn objects_view<'a, K: Resource + 'a>(objs: impl IntoIterator<Item = &'a K>) -> View {
    objs.into_iter().map(key_rv).collect()
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=kubeforge=debug`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
