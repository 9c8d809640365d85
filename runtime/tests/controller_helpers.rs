//! Reconcile helpers against the embedded API server: status server-side apply, events with
//! series de-duplication.

mod controller_support;

use controller_support::*;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{ListParams, PostParams};
use kubeforge::controller::events::{EventRecord, EventType, Recorder, Reporter, object_reference};

fn deployment(name: &str) -> Deployment {
    let labels = std::collections::BTreeMap::from([("app".to_owned(), name.to_owned())]);
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns().into()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
                        image: Some("nginx".into()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

#[tokio::test]
async fn apply_status_writes_only_the_status() {
    let server = server().await;
    let api: Api<Deployment> = Api::namespaced(server.client(), ns());
    let created = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let status = DeploymentStatus {
        replicas: Some(2),
        ready_replicas: Some(1),
        ..DeploymentStatus::default()
    };
    let applied =
        kubeforge::controller::apply::apply_status(&api, "web", "kubeforge-test", &status)
            .await
            .unwrap();
    assert_eq!(
        applied.status.as_ref().and_then(|s| s.ready_replicas),
        Some(1)
    );
    let stored = api.get("web").await.unwrap();
    assert_eq!(stored.status.and_then(|s| s.replicas), Some(2));
    assert_eq!(stored.spec, created.spec, "the spec is untouched");
}

#[tokio::test]
async fn repeated_events_become_one_event_with_a_series() {
    let server = server().await;
    let api: Api<Deployment> = Api::namespaced(server.client(), ns());
    let web = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let recorder = Recorder::new(server.client(), Reporter::new("kubeforge-test"));
    let record = EventRecord {
        type_: EventType::Warning,
        reason: "ImagePullFailed".into(),
        note: Some("cannot pull nginx".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let regarding = object_reference(&web);
    for _ in 0..3 {
        recorder.publish(&record, &regarding).await.unwrap();
    }
    let other = EventRecord {
        reason: "Scaled".into(),
        type_: EventType::Normal,
        ..record.clone()
    };
    recorder.publish(&other, &regarding).await.unwrap();

    let events: Api<Event> = Api::namespaced(server.client(), ns());
    let list = events.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(
        list.len(),
        2,
        "three identical events fold into one: {list:#?}"
    );
    let warning = list
        .iter()
        .find(|e| e.reason.as_deref() == Some("ImagePullFailed"))
        .unwrap();
    assert_eq!(warning.series.as_ref().map(|s| s.count), Some(3));
    assert_eq!(
        warning.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("web")
    );
    assert_eq!(
        warning.reporting_controller.as_deref(),
        Some("kubeforge-test")
    );
    let normal = list
        .iter()
        .find(|e| e.reason.as_deref() == Some("Scaled"))
        .unwrap();
    assert!(normal.series.is_none(), "a single event has no series");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_context_recorder_reports_as_the_controller() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
    use std::sync::Arc;
    let server = server().await;
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .named("notifier")
        .complete(
            |cm: Arc<ConfigMap>, ctx: Context<()>| async move {
                let record = EventRecord {
                    type_: EventType::Normal,
                    reason: "Seen".into(),
                    note: None,
                    action: "Reconcile".into(),
                    secondary: None,
                };
                ctx.recorder()
                    .publish(&record, &object_reference(&*cm))
                    .await?;
                ctx.recorder()
                    .warning(cm.as_ref(), "LooksOdd", "no data keys")
                    .await?;
                Ok::<_, ReconcileError>(Action::await_change())
            },
            (),
        )
        .unwrap();
    let running = start(mgr);
    create_cm(&server, "watched", &[]).await;
    let events: Api<Event> = Api::namespaced(server.client(), ns());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let event = loop {
        let list = events.list(&ListParams::default()).await.unwrap().items;
        if let Some(e) = list
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Seen"))
        {
            break e;
        }
        assert!(tokio::time::Instant::now() < deadline, "no event published");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(event.reporting_controller.as_deref(), Some("notifier"));
    let warning = loop {
        let list = events.list(&ListParams::default()).await.unwrap().items;
        if let Some(e) = list
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("LooksOdd"))
        {
            break e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no one-line warning published"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.note.as_deref(), Some("no data keys"));
    assert_eq!(
        warning.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("watched")
    );
    assert_eq!(
        event.regarding.and_then(|r| r.kind).as_deref(),
        Some("ConfigMap")
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_the_cache_of_an_unwatched_type_names_the_builder_call_to_add() {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
    use parking_lot::Mutex;
    use std::sync::Arc;
    let server = server().await;
    let mut mgr = manager(&server, config()).await;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .named("reader")
        .complete(
            |_cm: Arc<ConfigMap>, ctx: Context<Arc<Mutex<Vec<String>>>>| async move {
                assert!(
                    ctx.lister::<ConfigMap>().is_ok(),
                    "the primary's cache is there"
                );
                if let Err(e) = ctx.lister::<Secret>() {
                    ctx.data().lock().push(e.to_string());
                }
                Ok::<_, ReconcileError>(Action::await_change())
            },
            seen.clone(),
        )
        .unwrap();
    let running = start(mgr);
    create_cm(&server, "any", &[]).await;
    eventually("the reconcile asked for Secrets", || {
        !seen.lock().is_empty()
    })
    .await;
    let message = seen.lock()[0].clone();
    assert!(
        message.contains("controller reader has no cache of Secret")
            && message.contains(".owns::<Secret>(Watch::new())"),
        "{message}"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_owned_creates_then_updates_a_child_with_its_controller_reference() {
    use k8s_openapi::api::core::v1::Secret;
    use kubeforge::controller::apply::apply_owned;
    let server = server().await;
    let owner = create_cm(&server, "site", &[]).await;
    let child = |value: &str| Secret {
        metadata: ObjectMeta {
            name: Some("site-credentials".into()),
            ..ObjectMeta::default()
        },
        string_data: Some([("token".to_owned(), value.to_owned())].into()),
        ..Secret::default()
    };
    let created = apply_owned(&server.client(), &owner, child("one"), "site-operator")
        .await
        .unwrap();
    assert_eq!(
        created.metadata.namespace.as_deref(),
        Some(ns()),
        "the owner's namespace"
    );
    let controller =
        kubeforge::controller::owner::controller_of(&created).expect("a controller reference");
    assert_eq!(
        (
            controller.kind.as_str(),
            controller.name.as_str(),
            Some(&controller.uid)
        ),
        ("ConfigMap", "site", owner.metadata.uid.as_ref())
    );
    let updated = apply_owned(&server.client(), &owner, child("two"), "site-operator")
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client(), ns());
    let live = secrets.get("site-credentials").await.unwrap();
    assert_eq!(
        live.metadata.resource_version,
        updated.metadata.resource_version
    );
    let token = live.data.unwrap_or_default().remove("token").map(|b| b.0);
    assert_eq!(
        token.as_deref(),
        Some(&b"two"[..]),
        "the second apply updated the child"
    );

    let other = create_cm(&server, "other-site", &[]).await;
    let err = apply_owned(&server.client(), &other, child("three"), "site-operator")
        .await
        .unwrap_err();
    assert!(
        matches!(err, kubeforge::controller::apply::ApplyError::Owner { .. }),
        "another controller owns it: {err}"
    );
}

/// A Deployment mounting the Secrets `secrets`.
fn deployment_mounting(name: &str, secrets: &[&str]) -> Deployment {
    use k8s_openapi::api::core::v1::{SecretVolumeSource, Volume};
    let mut d = deployment(name);
    if let Some(pod) = d.spec.template.spec.as_mut() {
        pod.volumes = Some(
            secrets
                .iter()
                .map(|s| Volume {
                    name: (*s).to_owned(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some((*s).to_owned()),
                        ..SecretVolumeSource::default()
                    }),
                    ..Volume::default()
                })
                .collect(),
        );
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_mapped_through_a_primary_index_reconciles_exactly_the_referencing_primaries() {
    use k8s_openapi::api::core::v1::Secret;
    use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
    use kubeforge::informer::ObjectKey;
    use parking_lot::Mutex;
    use std::sync::Arc;

    let server = server().await;
    let deployments: Api<Deployment> = Api::namespaced(server.client(), ns());
    for (name, secrets) in [("a", &["s1"][..]), ("b", &["s1", "s2"]), ("c", &["s2"])] {
        deployments
            .create(&PostParams::default(), &deployment_mounting(name, secrets))
            .await
            .unwrap();
    }
    let secrets: Api<Secret> = Api::namespaced(server.client(), ns());
    for name in ["s1", "s2"] {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    let mut mgr = manager(&server, config()).await;
    let by_secret = Watch::<Deployment>::new().index("secret", |d: &Deployment| {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let pod = d.spec.template.spec.as_ref();
        pod.and_then(|p| p.volumes.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|v| v.secret.as_ref()?.secret_name.as_ref())
            .map(|s| format!("{ns}/{s}"))
            .collect()
    });
    let builder = Controller::managed_by(&mut mgr).for_(by_secret);
    let lister = builder.primary_lister();
    // What the mapper answered, per Secret change: (secret, Deployment names).
    type Mapped = Vec<(String, Vec<String>)>;
    let mapped: Arc<Mutex<Mapped>> = Arc::default();
    let reconciled: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = mapped.clone();
    builder
        .watches(Watch::<Secret>::new(), move |secret: &Secret| {
            let name = secret.metadata.name.clone().unwrap_or_default();
            let keys: Vec<ObjectKey> = lister
                .by_index("secret", &format!("{}/{name}", ns()))
                .expect("the index is registered")
                .iter()
                .filter_map(|d| ObjectKey::from_obj(d.as_ref()).ok())
                .collect();
            let mut names: Vec<String> = keys.iter().map(|k| k.name().to_owned()).collect();
            names.sort();
            record.lock().push((name, names));
            keys
        })
        .complete(
            |d: Arc<Deployment>, ctx: Context<Arc<Mutex<Vec<String>>>>| async move {
                ctx.data()
                    .lock()
                    .push(d.metadata.name.clone().unwrap_or_default());
                Ok::<_, ReconcileError>(Action::await_change())
            },
            reconciled.clone(),
        )
        .unwrap();
    let running = start(mgr);
    eventually("the initial sync reconciled every Deployment", || {
        let r = reconciled.lock();
        ["a", "b", "c"].iter().all(|n| r.iter().any(|x| x == n))
    })
    .await;
    // (While the caches first fill, a Secret may be mapped before the Deployments are cached;
    // each Deployment is reconciled for its own initial add anyway.)

    // A change to s1 reconciles exactly a and b; one to s2, exactly b and c.
    mapped.lock().clear();
    reconciled.lock().clear();
    let patch = serde_json::json!({ "stringData": { "token": "rotated" } });
    secrets
        .patch(
            "s1",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    eventually("the s1 change reconciled a and b", || {
        let r = reconciled.lock();
        r.iter().any(|x| x == "a") && r.iter().any(|x| x == "b")
    })
    .await;
    // An update maps both the old and the new object, as controller-runtime's map handlers do.
    let expect = |secret: &str, names: [&str; 2]| {
        let m = mapped.lock().clone();
        assert!(
            !m.is_empty()
                && m.iter()
                    .all(|(s, keys)| s == secret && keys == &names.map(String::from)),
            "the {secret} change maps to the Deployments mounting it, and only those: {m:?}"
        );
    };
    expect("s1", ["a", "b"]);
    mapped.lock().clear();
    reconciled.lock().clear();
    secrets
        .patch(
            "s2",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    eventually("the s2 change reconciled b and c", || {
        let r = reconciled.lock();
        r.iter().any(|x| x == "b") && r.iter().any(|x| x == "c")
    })
    .await;
    expect("s2", ["b", "c"]);

    // One informer per type: the primary's lister and the controller share the Deployment cache.
    if let Some(faults) = server.faults_or_skip("a_watch_mapped_through_a_primary_index_reconciles_exactly_the_referencing_primaries (its request counts)") {
        assert_eq!(faults.request_count("list", Some("deployments")), 1);
        assert_eq!(faults.request_count("list", Some("secrets")), 1);
    }

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_an_unwatched_type_come_from_a_cache_started_on_first_use() {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
    use parking_lot::Mutex;
    use std::sync::Arc;

    let server = server().await;
    let secrets: Api<Secret> = Api::namespaced(server.client(), ns());
    let secret = |token: &str| Secret {
        metadata: ObjectMeta {
            name: Some("creds".into()),
            ..ObjectMeta::default()
        },
        data: Some([("token".to_owned(), ByteString(token.as_bytes().to_vec()))].into()),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &secret("one"))
        .await
        .unwrap();
    let mut mgr = manager(&server, config()).await;
    // The token each reconcile read, by ConfigMap.
    type Reads = Arc<Mutex<Vec<(String, String)>>>;
    let read: Reads = Arc::default();
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .reads::<Secret>()
        .named("reads")
        .complete(
            |cm: Arc<ConfigMap>, ctx: Context<Reads>| async move {
                let secrets = ctx.cache::<Secret>().await?;
                let token = secrets
                    .get(Some(ns()), "creds")
                    .and_then(|s| s.data.as_ref()?.get("token").cloned())
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .unwrap_or_default();
                let name = cm.metadata.name.clone().unwrap_or_default();
                ctx.data().lock().push((name, token));
                Ok::<_, ReconcileError>(Action::await_change())
            },
            read.clone(),
        )
        .unwrap();
    assert!(
        mgr.rbac_rules().iter().any(|r| r
            .resources
            .as_ref()
            .is_some_and(|res| res.contains(&"secrets".to_owned()))
            && r.verbs.contains(&"list".to_owned())),
        "reads::<Secret>() grants list on secrets: {:?}",
        mgr.rbac_rules()
    );
    let running = start(mgr);
    let faults = server.faults_or_skip(
        "reads_of_an_unwatched_type_come_from_a_cache_started_on_first_use (its request counts)",
    );
    if let Some(faults) = &faults {
        assert_eq!(
            faults.request_count("list", Some("secrets")),
            0,
            "nothing watches Secrets before the first read"
        );
    }

    create_cm(&server, "first", &[]).await;
    eventually("the first reconcile read the token", || {
        read.lock()
            .iter()
            .any(|(cm, t)| cm == "first" && t == "one")
    })
    .await;
    // The cache follows the Secret: a later reconcile reads the new token, with no new LIST and
    // no GET.
    secrets
        .replace("creds", &PostParams::default(), &{
            let mut s = secret("two");
            s.metadata.resource_version = None;
            s
        })
        .await
        .unwrap();
    read.lock().clear();
    let mut n = 0;
    loop {
        n += 1;
        create_cm(&server, &format!("later-{n}"), &[]).await;
        let name = format!("later-{n}");
        eventually("the later reconcile ran", || {
            read.lock().iter().any(|(cm, _)| cm == &name)
        })
        .await;
        if read.lock().iter().any(|(cm, t)| cm == &name && t == "two") {
            break;
        }
        assert!(
            n < 100,
            "the cache never saw the new token: {:?}",
            read.lock()
        );
    }
    if let Some(faults) = &faults {
        assert_eq!(
            faults.request_count("list", Some("secrets")),
            1,
            "one cache, listed once"
        );
        assert_eq!(
            faults.request_count("get", Some("secrets")),
            0,
            "reads never hit the API"
        );
    }

    running.stop().await;
}
