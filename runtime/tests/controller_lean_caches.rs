//! The controller builder's lean caches, against the API server under test (embedded, or a real
//! kube-apiserver): children owned by metadata only (`owns_metadata`), a watched kind cached as
//! a projection (`Watch::project`) and compact (`Watch::compact`). Each still triggers
//! reconciles, and the reconciler reads exactly what the cache was asked to keep.

mod controller_support;

use std::sync::Arc;

use controller_support::*;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{PartialObjectMeta, PostParams};
use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
use kubeforge::informer::ObjectKey;
use parking_lot::Mutex;

/// What one reconcile of a ConfigMap read from its caches.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    /// Names and `kind` labels of the owned Secrets, from the metadata-only cache.
    secrets: Vec<(String, Option<String>)>,
    /// For each watched Service: (name, ports kept, selector kept, annotations kept).
    services: Vec<(String, usize, bool, bool)>,
    services_compact: bool,
}

async fn reconcile(
    cm: Arc<ConfigMap>,
    ctx: Context<Arc<Mutex<Vec<Seen>>>>,
) -> Result<Action, ReconcileError> {
    let secrets = ctx.lister::<PartialObjectMeta<Secret>>()?;
    let mut owned: Vec<(String, Option<String>)> = secrets
        .list()
        .iter()
        .filter(|s| {
            s.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| Some(&o.uid) == cm.metadata.uid.as_ref())
        })
        .map(|s| {
            let kind = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kind").cloned());
            (s.metadata.name.clone().unwrap_or_default(), kind)
        })
        .collect();
    owned.sort();
    let services = ctx.lister::<Service>()?;
    let mut seen_services: Vec<(String, usize, bool, bool)> = services
        .list()
        .iter()
        .map(|svc| {
            let spec = svc.spec.as_ref();
            (
                svc.metadata.name.clone().unwrap_or_default(),
                spec.and_then(|s| s.ports.as_ref()).map_or(0, Vec::len),
                spec.and_then(|s| s.selector.as_ref()).is_some(),
                svc.metadata.annotations.is_some(),
            )
        })
        .collect();
    seen_services.sort();
    ctx.data().lock().push(Seen {
        secrets: owned,
        services: seen_services,
        services_compact: services.is_compact(),
    });
    Ok(Action::await_change())
}

fn meta(name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns().into()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        annotations: Some([("team".to_string(), "a".to_string())].into()),
        ..ObjectMeta::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_only_children_and_a_compact_projection_trigger_and_read_back() {
    let server = server().await;
    let mut mgr = manager(&server, config()).await;
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .owns_metadata::<Secret>(Watch::new())
        .watches::<Service>(
            Watch::new()
                .project("ports-only", |svc: &mut Service| {
                    svc.metadata.annotations = None;
                    if let Some(spec) = svc.spec.as_mut() {
                        *spec = ServiceSpec {
                            ports: spec.ports.take(),
                            ..ServiceSpec::default()
                        };
                    }
                })
                .compact(),
            |_svc: &Service| vec![ObjectKey::new(Some(ns()), "site")],
        )
        .named("lean")
        .complete(reconcile, seen.clone())
        .unwrap();
    let running = start(mgr);

    let site = create_cm(&server, "site", &[]).await;
    let mut child = Secret {
        metadata: meta("creds", &[("kind", "db")]),
        string_data: Some([("password".to_string(), "hunter2".to_string())].into()),
        ..Secret::default()
    };
    kubeforge::controller::owner::set_controller_reference(&site, &mut child).unwrap();
    Api::<Secret>::namespaced(server.client(), ns())
        .create(&PostParams::default(), &child)
        .await
        .unwrap();
    let last = || seen.lock().last().cloned();
    eventually(
        "the owned Secret, cached as metadata, reconciled the site",
        || last().is_some_and(|s| s.secrets == [("creds".to_string(), Some("db".to_string()))]),
    )
    .await;

    let svc = Service {
        metadata: meta("front", &[("app", "web")]),
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                port: 80,
                ..Default::default()
            }]),
            selector: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        }),
        ..Service::default()
    };
    Api::<Service>::namespaced(server.client(), ns())
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    let front = |s: &Seen| {
        s.services
            .iter()
            .find(|(name, ..)| name == "front")
            .cloned()
    };
    eventually("the watched Service reconciled the site", || {
        last().is_some_and(|s| front(&s).is_some())
    })
    .await;
    let now = last().unwrap();
    assert_eq!(
        front(&now),
        Some(("front".to_string(), 1, false, false)),
        "the projection kept the ports and dropped the selector and annotations"
    );
    assert!(
        now.services_compact,
        "Watch::compact made the Service cache compact"
    );
    running.stop().await;
}
