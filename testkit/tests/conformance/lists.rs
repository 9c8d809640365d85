//! Lists: shape, label and field selectors, pagination, resourceVersion semantics.

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams, VersionMatch};
use serde_json::json;

use crate::common::*;
use kubeforge_testkit::TestCluster;

async fn seed(api: &Api<ConfigMap>) {
    for (name, app, tier) in [
        ("a", "web", "front"),
        ("b", "web", "back"),
        ("c", "db", "back"),
        ("d", "cache", ""),
    ] {
        let labels: Vec<(&str, &str)> = if tier.is_empty() {
            vec![("app", app)]
        } else {
            vec![("app", app), ("tier", tier)]
        };
        api.create(&PostParams::default(), &cm(name, &labels))
            .await
            .expect("seed");
    }
}

fn names(l: &kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    l.items
        .iter()
        .filter_map(|o| o.metadata.name.clone())
        .collect()
}

#[tokio::test]
async fn lists_carry_kind_api_version_and_resource_version() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    seed(&api).await;
    let (code, body) = raw(
        &c.client(),
        "GET",
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        None,
        vec![],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["kind"], "ConfigMapList");
    assert_eq!(body["apiVersion"], "v1");
    assert!(
        body["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|r| r.parse::<u64>().is_ok())
    );
    assert_eq!(body["items"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn label_selectors_support_equality_and_set_operators() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    seed(&api).await;
    let cases = [
        ("app=web", vec!["a", "b"]),
        ("app==web", vec!["a", "b"]),
        ("app!=web", vec!["c", "d"]),
        ("app in (db,cache)", vec!["c", "d"]),
        ("app notin (web)", vec!["c", "d"]),
        ("tier", vec!["a", "b", "c"]),
        ("!tier", vec!["d"]),
        ("app=web,tier=back", vec!["b"]),
    ];
    for (sel, want) in cases {
        let got = api
            .list(&ListParams::default().labels(sel))
            .await
            .expect(sel);
        assert_eq!(names(&got), want, "selector {sel}");
    }
    assert_eq!(
        code(api.list(&ListParams::default().labels("app in (")).await),
        400
    );
}

#[tokio::test]
async fn field_selectors_match_metadata_and_pod_fields_and_reject_unknown_ones() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    seed(&api).await;
    let got = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .expect("by name");
    assert_eq!(names(&got), ["b"]);
    let got = api
        .list(&ListParams::default().fields("metadata.name!=b"))
        .await
        .expect("not name");
    assert_eq!(names(&got), ["a", "c", "d"]);
    let s = api_err(api.list(&ListParams::default().fields("data.k=v")).await);
    assert_eq!(s.code, 400);
    assert_eq!(
        s.message,
        r#""data.k" is not a known field selector: only "metadata.name", "metadata.namespace""#
    );

    let pods: Api<Pod> = Api::namespaced(c.client(), &ns);
    for (name, node) in [("p1", "n1"), ("p2", "n2")] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})).expect("pod");
        pods.create(&PostParams::default(), &p).await.expect("pod");
    }
    let on_n2 = pods
        .list(&ListParams::default().fields("spec.nodeName=n2"))
        .await
        .expect("nodeName");
    assert_eq!(
        on_n2
            .items
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect::<Vec<_>>(),
        ["p2"]
    );
    let pending = pods
        .list(&ListParams::default().fields("status.phase=Pending"))
        .await
        .expect("phase");
    assert_eq!(pending.items.len(), 2, "pods start Pending");
}

#[tokio::test]
async fn limit_and_continue_page_through_a_consistent_snapshot() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    for i in 0..7 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}"), &[]))
            .await
            .expect("create");
    }
    let first = api
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 3);
    // The objects left are counted (lists without selectors)...
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let token = first.metadata.continue_.clone().expect("continue token");
    // Changes after the first page are not visible in later pages of the same list.
    api.create(&PostParams::default(), &cm("cm-9", &[]))
        .await
        .expect("late create");
    api.delete("cm-5", &Default::default())
        .await
        .expect("late delete");
    let mut all = names(&first);
    let mut cont = Some(token);
    while let Some(t) = cont {
        let page = api
            .list(&ListParams::default().limit(3).continue_token(&t))
            .await
            .expect("next page");
        assert_eq!(
            page.metadata.resource_version, first.metadata.resource_version,
            "pages share the first page's resourceVersion"
        );
        all.extend(names(&page));
        cont = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        // ... in the snapshot, and not on the last page.
        let left = 7 - all.len() as i64;
        assert_eq!(
            page.metadata.remaining_item_count,
            cont.as_ref().map(|_| left),
            "{all:?}"
        );
    }
    assert_eq!(all, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());
    // With a selector, nothing is counted.
    let selected = api
        .list(&ListParams::default().limit(3).labels("!absent"))
        .await
        .expect("selected page");
    assert!(selected.metadata.continue_.is_some());
    assert_eq!(selected.metadata.remaining_item_count, None);
}

#[tokio::test]
async fn continue_tokens_expire_with_history_as_410() {
    // On the real backend: a kube-apiserver without watch cache (with it, a continued list is
    // served from the cache's snapshot, which etcd compaction does not reach).
    let c = TestCluster::from_env_uncached()
        .await
        .expect("a cluster (embedded, or the real control plane without watch cache)");
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    for i in 0..3 {
        api.create(&PostParams::default(), &cm(&format!("x{i}"), &[]))
            .await
            .expect("create");
    }
    let first = api
        .list(&ListParams::default().limit(1))
        .await
        .expect("page 1");
    api.create(&PostParams::default(), &cm("later", &[]))
        .await
        .expect("create");
    // The embedded server's history, or the control plane's etcd (as kube-apiserver's own
    // periodic compaction does).
    if !c.compact().await.expect("compact") {
        return skipped(
            "continue_tokens_expire_with_history_as_410",
            "an external cluster's etcd cannot be compacted from here",
        );
    }
    let s = api_err(
        api.list(
            &ListParams::default()
                .limit(1)
                .continue_token(first.metadata.continue_.as_deref().expect("token")),
        )
        .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
    assert!(
        s.message
            .starts_with("The provided continue parameter is too old"),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn resource_version_match_exact_reads_the_past_and_not_older_than_the_present() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    api.create(&PostParams::default(), &cm("old", &[]))
        .await
        .expect("create");
    let then = list_rv(&api).await;
    api.create(&PostParams::default(), &cm("new", &[]))
        .await
        .expect("create");
    let exact = api
        .list(
            &ListParams::default()
                .at(&then)
                .matching(VersionMatch::Exact),
        )
        .await
        .expect("exact");
    assert_eq!(names(&exact), ["old"]);
    assert_eq!(
        exact.metadata.resource_version.as_deref(),
        Some(then.as_str())
    );
    let newer = api
        .list(
            &ListParams::default()
                .at(&then)
                .matching(VersionMatch::NotOlderThan),
        )
        .await
        .expect("not older");
    assert_eq!(names(&newer), ["new", "old"]);
    let any = api
        .list(&ListParams::default().match_any())
        .await
        .expect("rv=0");
    assert_eq!(any.items.len(), 2);
    let (code, _) = raw(
        &c.client(),
        "GET",
        &format!("/api/v1/namespaces/{ns}/configmaps?resourceVersionMatch=Exact"),
        None,
        vec![],
    )
    .await;
    assert_eq!(code, 422, "resourceVersionMatch needs a resourceVersion");
}

#[tokio::test]
async fn all_namespace_lists_span_namespaces() {
    let c = cluster().await;
    let ns1 = namespace(&c.client()).await;
    let ns2 = namespace(&c.client()).await;
    for ns in [&ns1, &ns2] {
        Api::<ConfigMap>::namespaced(c.client(), ns)
            .create(
                &PostParams::default(),
                &cm("same-name", &[("suite", "span")]),
            )
            .await
            .expect("create");
    }
    let all: Api<ConfigMap> = Api::all(c.client());
    let got = all
        .list(&ListParams::default().labels("suite=span"))
        .await
        .expect("list");
    let mut nss: Vec<String> = got
        .items
        .iter()
        .filter_map(|o| o.metadata.namespace.clone())
        .filter(|n| *n == ns1 || *n == ns2)
        .collect();
    nss.sort();
    let mut want = vec![ns1, ns2];
    want.sort();
    assert_eq!(nss, want);
}
