//! `kubeforge serve --data-dir`: state that survives a restart. The server is killed with SIGKILL
//! in the middle of concurrent writes; restarted on the same directory it holds every write it
//! acknowledged, its resourceVersions go on increasing, and a watch from before the restart gets
//! 410 (so an informer relists) rather than a silent gap.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchParams};
use support::Serve;

fn cm(name: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.to_string());
    cm.data = Some([("written".to_string(), name.to_string())].into());
    cm
}

fn rv_of(cm: &ConfigMap) -> u64 {
    cm.metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("a numeric resourceVersion")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_sigkill_and_resource_versions_go_on()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let flags = [std::ffi::OsStr::new("--data-dir"), data.as_os_str()];
    let first = Serve::start_with(dir.path(), &flags);
    let api: Api<ConfigMap> = Api::namespaced(first.client().await, "default");
    let before_kill = api
        .list(&ListParams::default())
        .await?
        .metadata
        .resource_version
        .expect("list rv");

    // Four writers create ConfigMaps as fast as they can; each acknowledged write is recorded.
    let acknowledged: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let api = api.clone();
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{w}-{i}");
                match api.create(&PostParams::default(), &cm(&name)).await {
                    Ok(created) => {
                        acknowledged
                            .lock()
                            .expect("lock")
                            .insert(name, rv_of(&created));
                    }
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Kill once a good number of writes went through, while the writers are still writing.
    for _ in 0..200 {
        if acknowledged.lock().expect("lock").len() >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    drop(first); // SIGKILL
    for w in writers {
        w.await?;
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 200,
        "only {} writes before the kill",
        acknowledged.len()
    );
    let last_acknowledged = acknowledged.values().copied().max().unwrap_or(0);

    let second = Serve::start_with(dir.path(), &flags);
    let api: Api<ConfigMap> = Api::namespaced(second.client().await, "default");
    let stored: BTreeMap<String, u64> = api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(|c| Some((c.metadata.name.clone()?, rv_of(c))))
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|(name, rv)| stored.get(*name) != Some(rv))
        .map(|(name, _)| name)
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes were lost or changed: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
    let after = api
        .create(&PostParams::default(), &cm("after-restart"))
        .await?;
    assert!(
        rv_of(&after) > last_acknowledged,
        "resourceVersions went back: {} after {last_acknowledged}",
        rv_of(&after)
    );
    // A watch from before the restart cannot be replayed: 410, never a silent gap.
    match api.watch(&WatchParams::default(), &before_kill).await {
        Ok(stream) => {
            use futures::TryStreamExt as _;
            let mut stream = Box::pin(stream);
            match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await {
                Ok(Ok(Some(kube::api::WatchEvent::Error(e)))) => assert_eq!(e.code, 410),
                other => panic!("a watch from before the restart must end with 410, got {other:?}"),
            }
        }
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 410, "{s:?}"),
        Err(e) => return Err(e.into()),
    }
    drop(second);
    println!(
        "{} acknowledged writes before SIGKILL, all present after the restart",
        acknowledged.len()
    );
    Ok(())
}
