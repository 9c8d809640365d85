//! Random values of a corpus type survive the trip through the API server unchanged:
//! serialise → create on the embedded server → read back → deserialise gives the same value (no
//! field pruned, no valid value refused).

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, PostParams};
use proptest::prelude::*;

use crate::types::shapes::{Bounds, Replicas, Shape, ShapeSpec, Trigger, WebhookTrigger};

fn quantity() -> impl Strategy<Value = Quantity> {
    prop::sample::select(vec!["0", "1", "500m", "64Mi", "1Gi", "2.5", "1e3"])
        .prop_map(|q| Quantity(q.to_owned()))
}

fn trigger() -> impl Strategy<Value = Trigger> {
    prop_oneof![
        "[a-z@* /0-9]{0,12}".prop_map(|schedule| Trigger::Cron { schedule }),
        (
            "https://[a-z]{1,8}\\.example\\.com",
            proptest::option::of("[a-zA-Z0-9]{0,8}")
        )
            .prop_map(|(url, secret)| Trigger::Webhook(WebhookTrigger { url, secret })),
    ]
}

fn spec() -> impl Strategy<Value = ShapeSpec> {
    (
        prop::collection::btree_map(any::<u16>(), "[a-z]{0,8}", 0..5),
        (quantity(), quantity()),
        ("[a-z0-9.]{0,6}", "[a-z0-9.]{0,6}"),
        trigger(),
        any::<isize>(),
        0..=(i64::MAX as usize),
        1..=10i32,
        "[a-z]{2,8}",
    )
        .prop_map(
            |(ports, (min, max), (vmin, vmax), trigger, offset, count, replicas, label)| {
                ShapeSpec {
                    ports,
                    memory: Bounds { min, max },
                    versions: Bounds {
                        min: vmin,
                        max: vmax,
                    },
                    trigger,
                    offset,
                    count,
                    replicas: Replicas(replicas),
                    label,
                }
            },
        )
}

#[test]
fn random_shapes_round_trip_through_the_embedded_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter(); // kube clients need a runtime when they are built
    let server = runtime
        .block_on(kubeforge_testkit::ApiServer::start())
        .unwrap();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(server.client());
    runtime
        .block_on(crds.create(&PostParams::default(), &Shape::crd()))
        .expect("the CRD is accepted");
    let shapes: Api<Shape> = Api::namespaced(server.client(), "default");
    let counter = std::sync::atomic::AtomicU32::new(0);
    proptest!(ProptestConfig::with_cases(64), |(spec in spec())| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sent = Shape::new(&format!("shape-{n}"), spec);
        let stored = runtime.block_on(async {
            // The first create may race the CRD becoming served.
            for _ in 0..50 {
                match shapes.create(&PostParams::default(), &sent).await {
                    Err(kube::Error::Api(e)) if e.code == 404 => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    other => return other,
                }
            }
            shapes.create(&PostParams::default(), &sent).await
        });
        let stored = stored.map_err(|e| TestCaseError::fail(format!("refused: {e}\n{:?}", sent.spec)))?;
        prop_assert_eq!(&stored.spec, &sent.spec);
        let read = runtime.block_on(shapes.get(&format!("shape-{n}"))).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&read.spec, &sent.spec);
    });
}
