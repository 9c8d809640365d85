//! Many watchers of a large object cost the server one copy of each event, not one per watcher.
//! (500 watchers of a large ConfigMap once drove the embedded server to 10 GiB.) Its own test
//! binary, so that no other test's allocations run in the process whose memory it reads.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WATCHERS: usize = 200;
const UPDATES: usize = 4;
const OBJECT_MIB: usize = 1;

/// The process's resident set, in MiB.
fn rss_mib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_that_do_not_read_share_one_copy_of_each_event() {
    let server = kubeforge_testkit::ApiServer::start().await.expect("server");
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let value = |c: char| c.to_string().repeat(OBJECT_MIB * 1024 * 1024 - 4096);
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("large".into());
    cm.data = Some([("v".to_string(), value('a'))].into());
    let created = api
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let rv = created.metadata.resource_version.expect("rv");

    // Watchers that never read: everything sent to them stays queued in the server.
    let mut conns = Vec::new();
    for _ in 0..WATCHERS {
        let mut s = TcpStream::connect(("127.0.0.1", server.port()))
            .await
            .expect("connect");
        let req = format!(
            "GET /api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv} HTTP/1.1\r\nHost: localhost\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.expect("request");
        conns.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_mib();
    for (i, c) in ('b'..).take(UPDATES).enumerate() {
        let patch = serde_json::json!({"data": {"v": value(c), "i": i.to_string()}});
        api.patch("large", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("update");
    }
    // Let every watcher's task take its events.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown = rss_mib().saturating_sub(before);
    let copies = WATCHERS * UPDATES * OBJECT_MIB;
    println!(
        "RSS grew {grown} MiB for {WATCHERS} watchers × {UPDATES} updates of {OBJECT_MIB} MiB (one copy per watcher would be {copies} MiB)"
    );
    assert!(
        grown < copies / 8,
        "RSS grew {grown} MiB: the events are copied per watcher (one copy each would be {copies} MiB)"
    );
    drop(conns);
}
