//! Every reconcile's tracing span says why it runs: the primary changed, an owned or a watched
//! object changed, a requeue, a retry after an error.

mod controller_support;

use std::sync::{Arc, OnceLock};

use controller_support::*;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
use kubeforge::informer::ObjectKey;
use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

type Spans = Mutex<Vec<(String, String)>>;

/// `(controller and object, trigger)` of every `reconcile` span opened in this process.
fn spans() -> &'static Spans {
    static SPANS: OnceLock<Spans> = OnceLock::new();
    SPANS.get_or_init(Mutex::default)
}

struct ReconcileSpans;

#[derive(Default)]
struct Fields {
    controller: String,
    object: String,
    trigger: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "controller" => self.controller = format!("{value:?}"),
            "object" => self.object = format!("{value:?}"),
            "trigger" => self.trigger = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for ReconcileSpans {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: LayerContext<'_, S>,
    ) {
        if attrs.metadata().name() == "reconcile" {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            let reconciled = format!("{} {}", fields.controller, fields.object);
            spans().lock().push((reconciled, fields.trigger));
        }
    }
}

/// The triggers of the reconciles so far of `controller object`, in order.
fn triggers_of(reconciled: &str) -> Vec<String> {
    spans()
        .lock()
        .iter()
        .filter(|(r, _)| r == reconciled)
        .map(|(_, t)| t.clone())
        .collect()
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns().into()),
        ..ObjectMeta::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reconcile_span_names_what_triggered_it() {
    tracing::subscriber::set_global_default(Registry::default().with(ReconcileSpans))
        .expect("the only subscriber of this test binary");
    let server = server().await;
    let mut mgr = manager(&server, config()).await;
    // 1st reconcile asks for a requeue, the 2nd fails, the rest succeed.
    let calls = Arc::new(Mutex::new(0_u32));
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .owns::<Secret>(Watch::new())
        .watches::<Service>(Watch::new(), |_svc: &Service| {
            vec![ObjectKey::new(Some(ns()), "site")]
        })
        .named("why")
        .complete(
            |cm: Arc<ConfigMap>, ctx: Context<Arc<Mutex<u32>>>| async move {
                if cm.metadata.name.as_deref() != Some("site") {
                    return Ok(Action::await_change());
                }
                let n = {
                    let mut calls = ctx.data().lock();
                    *calls += 1;
                    *calls
                };
                match n {
                    1 => Ok(Action::requeue(std::time::Duration::from_millis(100))),
                    2 => Err(ReconcileError::transient("not yet")),
                    _ => Ok(Action::await_change()),
                }
            },
            calls.clone(),
        )
        .unwrap();
    let running = start(mgr);

    let site = create_cm(&server, "site", &[]).await;
    eventually("the create, the requeue and the retry reconciled", || {
        triggers_of(&format!("why {}/site", ns())).len() >= 3
    })
    .await;
    assert_eq!(
        triggers_of(&format!("why {}/site", ns()))[..3],
        ["primary changed", "requeue", "retry after error"]
    );

    let mut child = Secret {
        metadata: meta("child"),
        ..Secret::default()
    };
    kubeforge::controller::owner::set_controller_reference(&site, &mut child).unwrap();
    Api::<Secret>::namespaced(server.client(), ns())
        .create(&PostParams::default(), &child)
        .await
        .unwrap();
    let owned = format!("owned Secret {}/child changed", ns());
    eventually("the owned Secret reconciled the site", || {
        triggers_of(&format!("why {}/site", ns())).contains(&owned)
    })
    .await;

    let svc = Service {
        metadata: meta("front"),
        spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
            ports: Some(vec![k8s_openapi::api::core::v1::ServicePort {
                port: 80,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Service::default()
    };
    Api::<Service>::namespaced(server.client(), ns())
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    let watched = format!("watched Service {}/front changed", ns());
    eventually("the watched Service reconciled the site", || {
        triggers_of(&format!("why {}/site", ns())).contains(&watched)
    })
    .await;

    running.stop().await;
}
