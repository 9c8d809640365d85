//! Random values of a corpus type survive the trip through the API server unchanged:
//! serialise → create on the embedded server → read back → deserialise gives the same value (no
//! field pruned, no valid value refused), for the corpus types with the shapes the derive once got
//! wrong (`shapes`) and the enums whose variants differ in shape (`unions`).

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, PostParams};
use proptest::prelude::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use crate::types::shapes::{Bounds, Replicas, Shape, ShapeSpec, Trigger, WebhookTrigger};
use crate::types::unions::{
    Alert, ImageRef, KnownImage, Limit, Pipeline, PipelineSpec, Source, Step, WaitArgs,
};

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

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..1000i32).prop_map(|replicas| Step::Scale { replicas }),
        (any::<u32>(), proptest::option::of("[a-z ]{0,10}"))
            .prop_map(|(seconds, reason)| Step::Wait(WaitArgs { seconds, reason })),
        Just(Step::Pause),
    ]
}

fn pipeline() -> impl Strategy<Value = PipelineSpec> {
    let source = prop_oneof![
        "[a-z]{1,8}".prop_map(Source::Name),
        (
            "https://[a-z]{1,8}\\.example\\.com",
            proptest::option::of("v[0-9]")
        )
            .prop_map(|(url, revision)| Source::Git { url, revision }),
    ];
    let image = prop_oneof![
        Just(ImageRef::Known(KnownImage::Nginx)),
        Just(ImageRef::Known(KnownImage::Redis)),
        // Any other reference (a known name would read back as `Known`, as serde tries it first).
        "[a-z]{1,6}/[a-z]{1,6}:[0-9]".prop_map(ImageRef::Custom),
    ];
    // Fractions that are not whole (a whole float is written as an integer and reads back a count).
    let limit = prop_oneof![
        any::<i64>().prop_map(Limit::Count),
        (-1000i32..1000, 1..4i32)
            .prop_map(|(n, q)| Limit::Fraction(f64::from(n) + f64::from(q) / 4.0)),
    ];
    let alert = proptest::option::of(prop_oneof![
        "[a-z]{1,6}@example\\.com".prop_map(Alert::Email),
        "https://[a-z]{1,8}\\.example\\.com".prop_map(|url| Alert::Webhook { url }),
    ]);
    (
        prop::collection::vec(step(), 0..4),
        source,
        image,
        limit,
        alert,
    )
        .prop_map(|(steps, source, image, limit, alert)| PipelineSpec {
            steps,
            source,
            image,
            limit,
            alert,
        })
}

/// Creates 64 random objects of `K` on a fresh embedded server and asserts that what the server
/// returns, and what a later read gives, deserialise to the value sent.
fn round_trip<K, S>(crd: CustomResourceDefinition, specs: S, make: fn(&str, S::Value) -> K)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned
        + HasSpec,
    S: Strategy,
{
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _context = runtime.enter(); // kube clients need a runtime when they are built
    let server = runtime
        .block_on(kubeforge_testkit::ApiServer::start())
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(server.client());
    runtime
        .block_on(crds.create(&PostParams::default(), &crd))
        .expect("the CRD is accepted");
    let objects: Api<K> = Api::namespaced(server.client(), "default");
    let counter = std::sync::atomic::AtomicU32::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let result = runner.run(&specs, |spec| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("object-{n}");
        let sent = make(&name, spec);
        let stored = runtime.block_on(async {
            // The first create may race the CRD becoming served.
            for _ in 0..50 {
                match objects.create(&PostParams::default(), &sent).await {
                    Err(kube::Error::Api(e)) if e.code == 404 => {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    other => return other,
                }
            }
            objects.create(&PostParams::default(), &sent).await
        });
        let stored =
            stored.map_err(|e| TestCaseError::fail(format!("refused: {e}\n{:?}", sent.spec())))?;
        prop_assert_eq!(stored.spec(), sent.spec());
        let read = runtime
            .block_on(objects.get(&name))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(read.spec(), sent.spec());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The spec of a corpus root type, compared after the round trip.
trait HasSpec {
    type Spec: PartialEq + std::fmt::Debug;
    fn spec(&self) -> &Self::Spec;
}

impl HasSpec for Shape {
    type Spec = ShapeSpec;
    fn spec(&self) -> &ShapeSpec {
        &self.spec
    }
}

impl HasSpec for Pipeline {
    type Spec = PipelineSpec;
    fn spec(&self) -> &PipelineSpec {
        &self.spec
    }
}

#[test]
fn random_shapes_round_trip_through_the_embedded_server() {
    round_trip(Shape::crd(), spec(), Shape::new);
}

#[test]
fn random_pipelines_round_trip_through_the_embedded_server() {
    round_trip(Pipeline::crd(), pipeline(), Pipeline::new);
}
