//! Side by side with kube-derive: the same spec, derived by `kube::CustomResource` and by ours,
//! checked by the testkit's structural-schema checker. Each difference COMPARISON.md describes is
//! asserted here, so the document cannot silently go stale. Run with `--nocapture` to see both
//! schemas of every field.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Documented unit enum (schemars emits `oneOf` of consts).
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
pub enum Phase {
    /// Waiting.
    Pending,
    /// Done.
    Ready,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(tag = "type")]
pub enum Schedule {
    Cron { expression: String },
    Manual,
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum CountOrName {
    Count(i64),
    Name(String),
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    S3 { bucket: String },
    Volume { claim: String, size: Option<i32> },
}

#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
pub struct Node {
    pub value: String,
    #[serde(default)]
    pub children: Vec<Node>,
}

/// One spec with `$fields`, derived by kube-derive (`theirs::$kind`) and by kubeforge (`ours::$kind`).
macro_rules! both {
    ($module:ident, $kind:literal, { $($fields:tt)* }) => {
        mod $module {
            use super::*;
            pub mod theirs {
                use super::*;
                #[derive(kube::CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
                #[kube(group = "compare.example.com", version = "v1", kind = $kind, namespaced)]
                #[serde(rename_all = "camelCase")]
                pub struct Spec { $($fields)* }
            }
            pub mod ours {
                use super::*;
                #[derive(kubeforge::CustomResource, Serialize, Deserialize, Clone, Debug)]
                #[kubeforge(group = "compare.example.com", version = "v1", kind = $kind)]
                #[serde(rename_all = "camelCase")]
                pub struct Spec { $($fields)* }
            }
        }
    };
}

both!(set, "SetThing", { pub set: BTreeSet<String> });
both!(phase, "PhaseThing", { pub phase: Option<Phase> });
both!(tagged, "TaggedThing", { pub schedule: Schedule });
both!(untagged, "UntaggedThing", { pub count_or_name: CountOrName });
both!(tree, "TreeThing", { pub tree: Option<Node> });
both!(free, "FreeThing", { pub free_form: serde_json::Value, pub labels: BTreeMap<String, String> });
both!(small, "SmallThing", { pub small: u8 });
both!(external, "ExternalThing", { pub target: Target });
both!(k8s, "K8sThing", {
    pub max_unavailable: k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
    pub memory: Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    pub since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
});
both!(flat, "FlatThing", {
    pub name: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
});

fn spec_schema(crd: &CustomResourceDefinition) -> Value {
    let v = &crd.spec.versions[0];
    let s = serde_json::to_value(
        v.schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema"),
    )
    .expect("json");
    s["properties"]["spec"].clone()
}

fn structural_errors(crd: &CustomResourceDefinition) -> Vec<String> {
    let v = &crd.spec.versions[0];
    let s = serde_json::to_value(
        v.schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema"),
    )
    .expect("json");
    match kubeforge_testkit::schema::check_structural(&s) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// Both CRDs of a feature: ours must be structural; prints both spec schemas.
fn compare(
    name: &str,
    theirs: fn() -> CustomResourceDefinition,
    ours: fn() -> CustomResourceDefinition,
) -> (Result<Value, String>, Value) {
    let ours = ours();
    assert!(
        structural_errors(&ours).is_empty(),
        "{name}: ours is not structural: {:?}",
        structural_errors(&ours)
    );
    let theirs = std::panic::catch_unwind(theirs).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(ToString::to_string))
            .unwrap_or_default()
    });
    let o = spec_schema(&ours);
    match &theirs {
        Ok(t) => println!(
            "== {name}\n kube-derive: {}\n   structural errors: {:?}\n kubeforge:   {o}",
            spec_schema(t),
            structural_errors(t)
        ),
        Err(panic) => println!("== {name}\n kube-derive: crd() panics: {panic}\n kubeforge:   {o}"),
    }
    (
        theirs.map(|t| {
            let errors = structural_errors(&t);
            if errors.is_empty() {
                spec_schema(&t)
            } else {
                json!({"structural_errors": errors, "schema": spec_schema(&t)})
            }
        }),
        o,
    )
}

#[test]
fn sets_become_list_type_set_in_ours_only() {
    let (t, o) = compare("set", set::theirs::SetThing::crd, set::ours::SetThing::crd);
    let t = t.expect("kube-derive handles sets");
    assert!(t["properties"]["set"].get("uniqueItems").is_none());
    assert!(
        t["properties"]["set"]
            .get("x-kubernetes-list-type")
            .is_none()
    );
    assert_eq!(o["properties"]["set"]["x-kubernetes-list-type"], "set");
}

#[test]
fn optional_documented_enums_agree() {
    let (t, o) = compare(
        "phase",
        phase::theirs::PhaseThing::crd,
        phase::ours::PhaseThing::crd,
    );
    let t = t.expect("kube-derive handles Option<enum>");
    assert_eq!(
        o["properties"]["phase"]["enum"],
        json!(["Pending", "Ready"])
    );
    assert_eq!(
        t["properties"]["phase"]["enum"],
        json!(["Pending", "Ready"])
    );
    assert_eq!(o["properties"]["phase"]["nullable"], true);
}

#[test]
fn internally_tagged_enums_panic_in_kube_derive_and_discriminate_in_ours() {
    let (t, o) = compare(
        "tagged",
        tagged::theirs::TaggedThing::crd,
        tagged::ours::TaggedThing::crd,
    );
    let panic = t.expect_err("kube-derive cannot merge the tag's per-variant schemas");
    assert!(panic.contains("must be identical"), "{panic}");
    assert_eq!(
        o["properties"]["schedule"]["properties"]["type"]["enum"],
        json!(["Cron", "Manual"])
    );
    assert_eq!(
        o["properties"]["schedule"]["oneOf"][0]["properties"]["type"],
        json!({"enum": ["Cron"]})
    );
}

#[test]
fn untagged_int_or_string_enums() {
    let (t, o) = compare(
        "untagged",
        untagged::theirs::UntaggedThing::crd,
        untagged::ours::UntaggedThing::crd,
    );
    assert_eq!(
        o["properties"]["countOrName"],
        json!({"x-kubernetes-int-or-string": true})
    );
    let t = t.expect("kube-derive builds a CRD");
    assert!(
        t["structural_errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("countOrName")),
        "{t}"
    );
}

#[test]
fn recursive_types_keep_a_ref_in_kube_derive() {
    let (t, o) = compare(
        "tree",
        tree::theirs::TreeThing::crd,
        tree::ours::TreeThing::crd,
    );
    let t = t.expect("kube-derive builds a CRD");
    assert!(
        t.get("structural_errors").is_some(),
        "kube-derive's recursive schema is not structural: {t}"
    );
    assert_eq!(
        o["properties"]["tree"]["properties"]["children"]["items"],
        json!({"x-kubernetes-preserve-unknown-fields": true})
    );
}

#[test]
fn free_form_values_preserve_unknown_fields_in_ours_and_have_no_type_in_kube_derive() {
    let (t, o) = compare(
        "free",
        free::theirs::FreeThing::crd,
        free::ours::FreeThing::crd,
    );
    let t = t.expect("kube-derive builds a CRD");
    assert_eq!(
        o["properties"]["freeForm"],
        json!({"x-kubernetes-preserve-unknown-fields": true})
    );
    assert_eq!(t["schema"]["properties"]["freeForm"], json!({}));
    assert!(
        t["structural_errors"][0]
            .as_str()
            .is_some_and(|e| e.contains("freeForm")),
        "{t}"
    );
}

#[test]
fn integer_formats_are_mapped_to_openapi_formats_in_ours() {
    let (t, o) = compare(
        "small",
        small::theirs::SmallThing::crd,
        small::ours::SmallThing::crd,
    );
    let t = t.expect("kube-derive handles u8");
    assert_eq!(o["properties"]["small"]["format"], "int32");
    assert_eq!(t["properties"]["small"]["format"], "uint8");
}

#[test]
fn flattened_maps_preserve_unknown_fields_in_both() {
    let (t, o) = compare(
        "flat",
        flat::theirs::FlatThing::crd,
        flat::ours::FlatThing::crd,
    );
    let t = t.expect("kube-derive handles flatten");
    assert_eq!(o["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(t["x-kubernetes-preserve-unknown-fields"], true);
}

#[test]
fn externally_tagged_enums_agree() {
    let (t, o) = compare(
        "external",
        external::theirs::ExternalThing::crd,
        external::ours::ExternalThing::crd,
    );
    let t = t.expect("kube-derive handles externally tagged enums");
    let (t, o) = (&t["properties"]["target"], &o["properties"]["target"]);
    assert_eq!(
        o["oneOf"],
        json!([{"required": ["s3"]}, {"required": ["volume"]}])
    );
    assert_eq!(t["oneOf"], o["oneOf"]);
    assert_eq!(
        t["properties"]["volume"]["properties"]
            .as_object()
            .map(|p| p.len()),
        Some(2)
    );
    assert_eq!(
        o["properties"]["volume"]["properties"]
            .as_object()
            .map(|p| p.len()),
        Some(2)
    );
}

#[test]
fn kubernetes_value_types_agree() {
    let (t, o) = compare("k8s", k8s::theirs::K8sThing::crd, k8s::ours::K8sThing::crd);
    let t = t.expect("kube-derive handles k8s-openapi types");
    for (field, key, value) in [
        ("maxUnavailable", "x-kubernetes-int-or-string", json!(true)),
        ("memory", "x-kubernetes-int-or-string", json!(true)),
        ("memory", "nullable", json!(true)),
        ("since", "format", json!("date-time")),
        ("since", "type", json!("string")),
    ] {
        assert_eq!(o["properties"][field][key], value, "ours: {field}.{key}");
        assert_eq!(
            t["properties"][field][key], value,
            "kube-derive: {field}.{key}"
        );
    }
}

#[test]
fn names_and_resource_impls_agree() {
    use kube::Resource;
    assert_eq!(
        set::ours::SetThing::crd_name(),
        set::theirs::SetThing::crd_name()
    );
    assert_eq!(
        set::ours::SetThing::plural(&()),
        set::theirs::SetThing::plural(&())
    );
    assert_eq!(
        set::ours::SetThing::api_version(&()),
        set::theirs::SetThing::api_version(&())
    );
    let (o, t) = (set::ours::SetThing::crd(), set::theirs::SetThing::crd());
    // Ours also fills in listKind (the server would default it to `<Kind>List`).
    assert_eq!(o.spec.names.list_kind.as_deref(), Some("SetThingList"));
    assert_eq!(t.spec.names.list_kind, None);
    assert_eq!(
        (
            &o.spec.names.plural,
            &o.spec.names.singular,
            &o.spec.names.kind
        ),
        (
            &t.spec.names.plural,
            &t.spec.names.singular,
            &t.spec.names.kind
        )
    );
    assert_eq!(o.spec.scope, t.spec.scope);
}
