//! Proves the derive on a corpus of resource types (`types.rs`): every generated CRD is
//! structural (our own walk and the testkit's checker), is accepted by the embedded API server
//! (and by a real kube-apiserver), which then accepts the objects that should pass and rejects
//! those that should fail; the YAML is snapshotted; the Rust types read back what the server stores.

mod roundtrip;
mod support;
mod types;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};
use support::{Case, assert_structural};

use types::*;

/// Builds a `Case` for a root type: its CRD, a deserializer, and example objects.
macro_rules! case {
    ($ty:ty, valid: [$($ok:expr),* $(,)?], invalid: [$(($bad:expr, $why:expr)),* $(,)?]) => {
        Case {
            name: stringify!($ty),
            crd: <$ty>::crd,
            parse: |v: &Value| serde_json::from_value::<$ty>(v.clone()).map(|_| ()).map_err(|e| e.to_string()),
            valid: vec![$($ok),*],
            invalid: vec![$(($bad, $why)),*],
        }
    };
}

/// Every resource of the corpus, with objects (their `spec` / `status`) the server must accept
/// and objects it must reject (with a fragment of the expected error).
pub fn corpus() -> Vec<Case> {
    vec![
        case!(memcached::Memcached,
            valid: [json!({"spec": {"size": 3, "image": "memcached:1.6"}}),
                    json!({"spec": {"image": "memcached", "memory": "64Mi"}})],
            invalid: [(json!({"spec": {"size": 11, "image": "memcached"}}), "spec.size"),
                      (json!({"spec": {"size": 0, "image": "memcached"}}), "spec.size"),
                      (json!({"spec": {"size": 2, "image": "UPPER CASE"}}), "spec.image"),
                      (json!({"spec": {"size": 2}}), "spec.image")]),
        case!(policy::ClusterPolicy,
            valid: [json!({"spec": {"action": "Deny", "mode": "enforce", "notBefore": "2024-01-01T00:00:00Z"}}),
                    json!({"spec": {"action": "Allow", "severity": "high"}})],
            invalid: [(json!({"spec": {"action": "Maybe"}}), "spec.action"),
                      (json!({"spec": {"action": "Allow", "mode": "loud"}}), "spec.mode"),
                      (json!({"spec": {"action": "Allow", "severity": "High"}}), "spec.severity"),
                      (json!({"spec": {"action": "Allow", "notBefore": "yesterday"}}), "spec.notBefore")]),
        case!(backup::Backup,
            valid: [json!({"spec": {"target": {"s3": {"bucket": "backups"}}, "schedule": {"type": "Cron", "expression": "@daily"}, "retention": 7}}),
                    json!({"spec": {"target": {"volume": {"claim_name": "c"}}, "schedule": {"type": "Manual"}, "retention": "30d", "notify": {"kind": "Slack", "config": "#ops"}}})],
            invalid: [(json!({"spec": {"target": {"s3": {"bucket": "b"}, "gcs": {"bucket": "c"}}, "schedule": {"type": "Manual"}}}), "spec.target"),
                      (json!({"spec": {"target": {}, "schedule": {"type": "Manual"}}}), "spec.target"),
                (json!({"spec": {"target": {"s3": {"bucket": "ab"}}, "schedule": {"type": "Manual"}}}), "spec.target.s3.bucket"),
                      (json!({"spec": {"target": {"gcs": {"bucket": "b"}}, "schedule": {"type": "Weekly"}}}), "spec.schedule"),
                      (json!({"spec": {"target": {"gcs": {"bucket": "b"}}, "schedule": {"type": "Cron"}}}), "spec.schedule"),
                      (json!({"spec": {"target": {"gcs": {"bucket": "b"}}, "schedule": {"type": "Manual"}, "retention": true}}), "spec.retention")]),
        case!(firewall::Firewall,
            valid: [json!({"spec": {"allowedCidrs": ["10.0.0.0/8"], "openPorts": [80, 443], "rules": [{"name": "web", "protocol": "TCP", "port": 80}, {"name": "web", "protocol": "UDP", "port": 80}], "tags": []}})],
            invalid: [(json!({"spec": {"allowedCidrs": ["a", "a"], "openPorts": [], "rules": [{"name": "x", "protocol": "TCP", "port": 1}], "tags": []}}), "spec.allowedCidrs"),
                      (json!({"spec": {"allowedCidrs": [], "openPorts": [1, 2, 3, 4], "rules": [{"name": "x", "protocol": "TCP", "port": 1}], "tags": []}}), "spec.openPorts"),
                      (json!({"spec": {"allowedCidrs": [], "openPorts": [], "rules": [], "tags": []}}), "spec.rules"),
                      (json!({"spec": {"allowedCidrs": [], "openPorts": [], "rules": [{"name": "x", "protocol": "SCTP", "port": 1}], "tags": []}}), "spec.rules[0].protocol"),
                      (json!({"spec": {"allowedCidrs": [], "openPorts": [], "rules": [{"name": "x", "protocol": "TCP", "port": 1}, {"name": "x", "protocol": "TCP", "port": 2}], "tags": []}}), "spec.rules[1]")]),
        case!(bundle::ConfigBundle,
            valid: [json!({"spec": {"settings": {"a": "1"}, "environments": {"prod": {"replicas": 3}}, "owner": {"team": "t"}, "weights": {"x": 0.5}}})],
            invalid: [(json!({"spec": {"settings": {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"}, "environments": {}, "owner": {"team": "t"}}}), "spec.settings"),
                      (json!({"spec": {"settings": {}, "environments": {"prod": {"replicas": "many"}}, "owner": {"team": "t"}}}), "spec.environments.prod.replicas"),
                      (json!({"spec": {"settings": {"a": 1}, "environments": {}, "owner": {"team": "t"}}}), "spec.settings.a"),
                      (json!({"spec": {"settings": {}, "environments": {}, "owner": {"team": "t"}, "weights": {}}}), "spec.weights")]),
        case!(workload::Workload,
            valid: [json!({"spec": {"maxUnavailable": 1, "maxSurge": "25%", "cpu": "500m", "memory": 1024, "selector": {"matchLabels": {"app": "x"}}, "startAfter": "2024-05-01T10:00:00Z"}})],
            invalid: [(json!({"spec": {"maxUnavailable": true, "cpu": "1", "selector": {}}}), "spec.maxUnavailable"),
                      (json!({"spec": {"maxUnavailable": 1, "cpu": "1", "selector": {}, "startAfter": "soon"}}), "spec.startAfter"),
                      (json!({"spec": {"maxUnavailable": 1, "cpu": "1", "selector": {"matchLabels": {"app": 1}}}}), "spec.selector.matchLabels.app")]),
        case!(plugin::Plugin,
            valid: [json!({"spec": {"name": "p", "config": {"any": ["thing", 1, {"nested": true}]}, "raw": {"version": "1", "unknown": {"kept": 1}}, "extraKey": 5}}),
                    json!({"spec": {"name": "p", "config": "just a string"}})],
            invalid: [(json!({"spec": {"name": 5, "config": {}}}), "spec.name")]),
        case!(job::TemplateJob,
            valid: [json!({"spec": {"object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}, "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})],
            invalid: [(json!({"spec": {"object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}, "template": {"spec": {"containers": [{"image": "busybox"}]}}}}), "spec.template.spec.containers[0].name"),
                      (json!({"spec": {"object": {"metadata": {"name": "x"}}, "template": {}}}), "spec.object")]),
        case!(rollout::Rollout,
            valid: [json!({"spec": {"name": "r", "minReplicas": 1, "maxReplicas": 2, "strategy": "canary", "steps": [{"weight": 10}]}})],
            invalid: [(json!({"spec": {"name": "r", "minReplicas": 1, "maxReplicas": 2, "strategy": "canary", "steps": [{"weight": -1}]}}), "spec.steps[0].weight")]),
        case!(tuning::Tuning,
            valid: [json!({"spec": {"ratio": 0.5, "blockSize": 64, "small": 255, "big": -5, "unsignedBig": 5, "label": "abcd", "offset": -10.5}})],
            invalid: [(json!({"spec": {"ratio": 1, "blockSize": 64, "small": 1, "big": 1, "unsignedBig": 1, "label": "abcd", "offset": 0}}), "spec.ratio"),
                      (json!({"spec": {"ratio": 0.5, "blockSize": 65, "small": 1, "big": 1, "unsignedBig": 1, "label": "abcd", "offset": 0}}), "spec.blockSize"),
                      (json!({"spec": {"ratio": 0.5, "blockSize": 64, "small": 256, "big": 1, "unsignedBig": 1, "label": "abcd", "offset": 0}}), "spec.small"),
                      (json!({"spec": {"ratio": 0.5, "blockSize": 64, "small": 1, "big": 1, "unsignedBig": -1, "label": "abcd", "offset": 0}}), "spec.unsignedBig"),
                      (json!({"spec": {"ratio": 0.5, "blockSize": 64, "small": 1, "big": 1, "unsignedBig": 1, "label": "ab", "offset": 0}}), "spec.label"),
                      (json!({"spec": {"ratio": 0.5, "blockSize": 64, "small": 1, "big": 1, "unsignedBig": 1, "label": "abcd", "offset": 11}}), "spec.offset")]),
        case!(defaults::Defaulted,
            valid: [json!({"spec": {}}), json!({"spec": {"port": 1, "logLevel": "debug"}})],
            invalid: [(json!({"spec": {"logLevel": "trace"}}), "spec.logLevel"),
                      (json!({"spec": {"policy": "Never"}}), "spec.policy")]),
        case!(tree::Tree,
            valid: [json!({"spec": {"root": {"value": "a", "children": [{"value": "b", "children": [{"value": "c"}]}]}}})],
            invalid: [(json!({"spec": {"root": {"children": []}}}), "spec.root.value")]),
        case!(widget::v1::Widget,
            valid: [json!({"spec": {"size": 3, "color": "red"}})],
            invalid: [(json!({"spec": {"size": -1}}), "spec.size")]),
        case!(documented::Documented,
            valid: [json!({"spec": {"field": "x", "other": 1}})],
            invalid: [(json!({"spec": {"field": "x", "other": "one"}}), "spec.other")]),
        case!(renamed::Renamed,
            valid: [json!({"spec": {"max-connections": 5, "TTL": 60, "mode": "fast", "limits": {"cpuPercent": 50, "memory": "64Mi"}}}),
                    json!({"spec": {"mode": {"careful": {"retries": 3}}}})],
            invalid: [(json!({"spec": {"limits": {"cpuPercent": 101}}}), "spec.limits.cpuPercent"),
                      (json!({"spec": {"limits": {"cpuPercent": 1, "memory": "lots"}}}), "spec.limits.memory"),
                      (json!({"spec": {"max-connections": "five"}}), "spec.max-connections")]),
        case!(pet::Pet,
            valid: [json!({"spec": {"species": "cat", "age": 3}})],
            invalid: [(json!({"spec": {"species": "cat"}}), "spec.age")]),
        case!(shapes::Shape,
            valid: [json!({"spec": {"ports": {"80": "web", "443": "tls"}, "memory": {"min": "64Mi", "max": "1Gi"}, "versions": {"min": "1.0", "max": "2.0"}, "trigger": {"type": "Webhook", "url": "https://hooks.example.com", "secret": "s"}, "offset": -3, "count": 4, "replicas": 3, "label": "ab"}}),
                    json!({"spec": {"ports": {}, "memory": {"min": "1", "max": "2"}, "versions": {"min": "a", "max": "b"}, "trigger": {"type": "Cron", "schedule": "@daily"}, "offset": 0, "count": 0, "replicas": 10, "label": "abcdefgh"}})],
            invalid: [(json!({"spec": {"ports": {"80": 5}, "memory": {"min": "1", "max": "2"}, "versions": {"min": "a", "max": "b"}, "trigger": {"type": "Cron", "schedule": "x"}, "offset": 0, "count": 0, "replicas": 1, "label": "ab"}}), "spec.ports.80"),
                      (json!({"spec": {"ports": {}, "memory": {"min": "1", "max": "2"}, "versions": {"min": 1, "max": 2}, "trigger": {"type": "Cron", "schedule": "x"}, "offset": 0, "count": 0, "replicas": 1, "label": "ab"}}), "spec.versions.min"),
                      (json!({"spec": {"ports": {}, "memory": {"min": "1", "max": "2"}, "versions": {"min": "a", "max": "b"}, "trigger": {"type": "Webhook"}, "offset": 0, "count": 0, "replicas": 1, "label": "ab"}}), "spec.trigger"),
                      (json!({"spec": {"ports": {}, "memory": {"min": "1", "max": "2"}, "versions": {"min": "a", "max": "b"}, "trigger": {"type": "Cron", "schedule": "x"}, "offset": 0, "count": 0, "replicas": 0, "label": "ab"}}), "spec.replicas"),
                      (json!({"spec": {"ports": {}, "memory": {"min": "1", "max": "2"}, "versions": {"min": "a", "max": "b"}, "trigger": {"type": "Cron", "schedule": "x"}, "offset": 0, "count": 0, "replicas": 1, "label": "x"}}), "spec.label")]),
        case!(unions::Pipeline,
            valid: [json!({"spec": {"steps": [{"op": "Scale", "args": {"replicas": 3}}, {"op": "Wait", "args": {"seconds": 30, "reason": "settle"}}, {"op": "Pause"}],
                                    "source": "main", "image": "nginx", "limit": 5, "alert": {"channel": "Email", "target": "ops@example.com"}}}),
                    json!({"spec": {"steps": [], "source": {"url": "https://git.example.com/app", "revision": "v1"}, "image": "registry.example.com/app:1", "limit": 0.25,
                                    "alert": {"channel": "Webhook", "target": {"url": "https://hooks.example.com"}}}})],
            invalid: [(json!({"spec": {"steps": [{"op": "Jump"}], "source": "main", "image": "nginx", "limit": 1}}), "spec.steps[0].op"),
                      (json!({"spec": {"steps": [{"op": "Scale", "args": {"replicas": -1}}], "source": "main", "image": "nginx", "limit": 1}}), "spec.steps[0].args.replicas"),
                      (json!({"spec": {"steps": [{"op": "Wait", "args": {"replicas": 1}}], "source": "main", "image": "nginx", "limit": 1}}), "spec.steps[0]"),
                      (json!({"spec": {"steps": [{"op": "Scale"}], "source": "main", "image": "nginx", "limit": 1}}), "spec.steps[0]"),
                      (json!({"spec": {"steps": [{"op": "Wait", "args": {"seconds": "long"}}], "source": "main", "image": "nginx", "limit": 1}}), "spec.steps[0].args.seconds"),
                      (json!({"spec": {"steps": [], "source": "main", "image": 5, "limit": 1}}), "spec.image"),
                      (json!({"spec": {"steps": [], "source": "main", "image": "nginx", "limit": "lots"}}), "spec.limit"),
                      (json!({"spec": {"steps": [], "source": "main", "image": "nginx", "limit": 1, "alert": {"channel": "Pager", "target": "x"}}}), "spec.alert.channel")]),
    ]
}

/// The CRDs the server gets: every kind once, versions merged (as `registry::crds()` does).
fn merged_crds() -> Vec<CustomResourceDefinition> {
    kubeforge::crd::registry::crds()
        .expect("the corpus registers exactly one storage version per kind")
}

#[test]
fn corpus_covers_at_least_fifteen_resource_types() {
    assert!(corpus().len() >= 15, "{} cases", corpus().len());
    // Every derived type registered itself (Widget has two versions, merged into one CRD).
    assert_eq!(
        kubeforge::crd::registry::custom_resources().len(),
        corpus().len() + 1
    );
    assert_eq!(merged_crds().len(), corpus().len());
}

#[test]
fn every_generated_crd_is_structural() {
    for crd in merged_crds() {
        for v in &crd.spec.versions {
            let schema = serde_json::to_value(
                v.schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .expect("schema"),
            )
            .expect("json");
            let name = format!(
                "{} {}",
                crd.metadata.name.as_deref().unwrap_or_default(),
                v.name
            );
            assert_structural(&name, &schema);
            if let Err(errors) = kubeforge_testkit::schema::check_structural(&schema) {
                panic!(
                    "{name}: the testkit's structural check failed:\n{}",
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
    }
}

#[test]
fn valid_examples_deserialize_into_the_rust_types() {
    for case in corpus() {
        let crd = serde_json::to_value((case.crd)()).expect("json");
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        for obj in &case.valid {
            // As the server stores it: with the schema's defaults filled in.
            let mut full = support::object(&case, obj, "x");
            kubeforge_testkit::schema::apply_defaults(schema, &mut full);
            if let Err(e) = (case.parse)(&full) {
                panic!(
                    "{}: valid example does not deserialize: {e}\n{full}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn crds_match_the_reviewed_snapshots() {
    for crd in merged_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        insta::assert_yaml_snapshot!(name, crd);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_server_accepts_the_crds_and_validates_objects() {
    let server = kubeforge_testkit::ApiServer::start()
        .await
        .expect("start the embedded server");
    support::exercise(server.client(), &merged_crds(), &corpus()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_kube_apiserver_accepts_the_crds_and_validates_objects() {
    let cp = kubeforge_testkit::control_plane::ControlPlane::shared()
        .await
        .expect("a real kube-apiserver (build it with `bash scripts/control-plane.sh`)");
    support::exercise(cp.client(), &merged_crds(), &corpus()).await;
}

#[test]
fn check_rules_evaluates_a_resources_cel_rules_without_a_server() {
    use kubeforge::crd::check_rules;
    use types::rollout::{Rollout, RolloutSpec, Step};
    let spec = |min: i32, max: i32, generation: Option<i64>| RolloutSpec {
        name: "r".into(),
        min_replicas: min,
        max_replicas: max,
        strategy: "canary".into(),
        generation,
        steps: vec![Step {
            weight: 10,
            pause_seconds: None,
        }],
    };
    let good = Rollout::new("r", spec(1, 2, Some(3)));
    assert_eq!(check_rules(&good, None), []);
    let messages = |r: &Rollout, old: Option<&Rollout>| -> Vec<String> {
        check_rules(r, old)
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        messages(&Rollout::new("r", spec(5, 2, Some(3))), None),
        ["spec.minReplicas: Invalid value: minReplicas must not exceed maxReplicas"]
    );
    // Transition rules: against the old object only.
    let mut moved = good.clone();
    moved.spec.strategy = "blue-green".into();
    assert_eq!(messages(&moved, None), Vec::<String>::new());
    assert_eq!(
        messages(&moved, Some(&good)).len(),
        1,
        "{:?}",
        messages(&moved, Some(&good))
    );
    let shrunk = Rollout::new("r", spec(1, 2, Some(1)));
    assert_eq!(
        messages(&shrunk, Some(&good)),
        ["spec.generation: Invalid value: 1: generation only grows"]
    );
}
