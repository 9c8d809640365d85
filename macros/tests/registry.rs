//! What the derives and `#[controller]` register, as the operator binary's `crds` / `rbac`
//! subcommands see it: versions merged with exactly one storage version (errors name the types
//! to mark), CRD consistency errors, and RBAC rules inferred, merged and de-duplicated.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use k8s_openapi::api::rbac::v1::PolicyRule;
use kubeforge::crd::registry::{self, CustomResourceEntry, RegistryError};
use kubeforge::{CustomResource, controller};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Two versions of one kind, neither marked `storage`.
mod gadget {
    use super::*;

    pub mod v1 {
        use super::*;
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
        #[kubeforge(group = "gadgets.example.com", version = "v1", kind = "Gadget")]
        pub struct GadgetSpec {
            pub size: i32,
        }
    }

    pub mod v2 {
        use super::*;
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
        #[kubeforge(group = "gadgets.example.com", version = "v2", kind = "Gadget")]
        pub struct GadgetSpec {
            pub size: i64,
        }
    }
}

/// A resource whose scale subresource reads a status field that does not exist.
mod broken {
    use super::*;

    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "broken.example.com", version = "v1", status = BrokenStatus,
        scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.ready"))]
    pub struct BrokenSpec {
        pub replicas: i32,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    pub struct BrokenStatus {
        pub replicas: i32,
    }

    /// A default the build cannot check (an object for a struct type) and the server would reject.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "broken.example.com", version = "v1", kind = "BadDefault")]
    pub struct BadDefaultSpec {
        #[kubeforge(default_json = r#"{"port": "eighty"}"#)]
        pub endpoint: Option<Endpoint>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    pub struct Endpoint {
        pub port: i32,
    }
}

/// The memcached operator's primary type.
mod cache {
    use super::*;

    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "cache.example.com", version = "v1", status = MemcachedStatus, storage)]
    pub struct MemcachedSpec {
        pub size: i32,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    pub struct MemcachedStatus {
        pub ready: i32,
    }
}

/// Generated code reaches kubeforge through `crate_path` when it is re-exported elsewhere.
mod reexported {
    pub use kubeforge as kf;
}

mod via_reexport {
    use super::*;

    #[derive(kubeforge::CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "paths.example.com", version = "v1", crate_path = crate::reexported::kf)]
    pub struct PathedSpec {
        #[kubeforge(minimum = 1)]
        pub size: i32,
        pub nested: Nested,
    }

    #[derive(kubeforge::KubeSchema, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(crate_path = crate::reexported::kf)]
    pub struct Nested {
        #[kubeforge(max_length = 3)]
        pub code: String,
    }
}

/// A spec that brings its own `JsonSchema` (here schemars' derive) with `schema = "manual"`.
mod manual {
    use super::*;

    #[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "manual.example.com", version = "v1", schema = "manual")]
    pub struct HandmadeSpec {
        #[schemars(range(min = 2))]
        pub size: Option<i32>,
    }
}

#[test]
fn a_manual_schema_is_still_made_structural() {
    let crds = registry::merge_crds([entry("manual::Handmade")]).expect("crd");
    let schema = serde_json::to_value(&crds[0].spec.versions[0].schema).expect("json");
    let size = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["size"];
    assert_eq!(size["minimum"], 2.0);
    assert_eq!(size["nullable"], true);
    assert_eq!(size["type"], "integer");
}

#[controller(for = via_reexport::Pathed, crate_path = crate::reexported::kf)]
#[allow(dead_code)]
async fn reconcile_pathed() {}

#[test]
fn crate_path_redirects_generated_code() {
    let crds = registry::merge_crds([entry("via_reexport::Pathed")]).expect("crd");
    let schema = serde_json::to_value(&crds[0].spec.versions[0].schema).expect("json");
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["properties"]["size"]["minimum"], 1.0);
    assert_eq!(
        spec["properties"]["nested"]["properties"]["code"]["maxLength"],
        3
    );
    assert!(
        registry::controllers()
            .iter()
            .any(|c| c.name == "reconcile_pathed")
    );
}

#[controller(for = cache::Memcached, owns(Deployment, Service), watches(ConfigMap),
    rbac(groups = [""], resources = ["secrets"], verbs = ["get"]))]
#[allow(dead_code)]
async fn reconcile_memcached() {}

/// A second controller that also owns Deployments and reads secrets: its rules merge with the first's.
#[controller(for = Deployment, name = "deployment-auditor", owns(ConfigMap), reads(Namespace),
    rbac(groups = [""], resources = ["secrets"], verbs = ["get", "list"]))]
#[allow(dead_code)]
async fn audit_deployments() {}

fn entry(name: &str) -> CustomResourceEntry {
    *registry::custom_resources()
        .into_iter()
        .find(|e| e.type_name.ends_with(name))
        .unwrap_or_else(|| panic!("{name} is registered"))
}

#[test]
fn two_versions_without_a_storage_version_name_the_types_to_mark() {
    let err = registry::merge_crds([entry("v1::Gadget"), entry("v2::Gadget")])
        .expect_err("no storage version");
    assert!(
        matches!(err, RegistryError::NoStorageVersion { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("gadgets.gadgets.example.com"), "{msg}");
    assert!(
        msg.contains("registry::gadget::v1::Gadget")
            && msg.contains("registry::gadget::v2::Gadget"),
        "{msg}"
    );
    assert!(msg.contains("add `storage`"), "{msg}");
    // The same error surfaces from `crds()`, which the `crds` subcommand prints.
    assert!(registry::crds().is_err());
}

#[test]
fn two_storage_versions_are_an_error_naming_both() {
    let mut v1 = entry("v1::Gadget");
    let mut v2 = entry("v2::Gadget");
    v1.storage = true;
    v2.storage = true;
    let err = registry::merge_crds([v1, v2]).expect_err("two storage versions");
    let msg = err.to_string();
    assert!(
        matches!(err, RegistryError::MultipleStorageVersions { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("v1::Gadget")
            && msg.contains("v2::Gadget")
            && msg.contains("remove `storage`"),
        "{msg}"
    );
}

#[test]
fn one_storage_version_merges_the_versions_into_one_crd() {
    let mut v2 = entry("v2::Gadget");
    v2.storage = true;
    let crds = registry::merge_crds([entry("v1::Gadget"), v2]).expect("merged");
    assert_eq!(crds.len(), 1);
    let versions: Vec<(String, bool)> = crds[0]
        .spec
        .versions
        .iter()
        .map(|v| (v.name.clone(), v.storage))
        .collect();
    assert_eq!(
        versions,
        [("v2".to_string(), true), ("v1".to_string(), false)]
    );
    // Each version keeps its own schema: v1's size is int32, v2's int64.
    let format = |i: usize| {
        let s = serde_json::to_value(
            crds[0].spec.versions[i]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        s["properties"]["spec"]["properties"]["size"]["format"].clone()
    };
    assert_eq!(format(0), "int64");
    assert_eq!(format(1), "int32");
}

#[test]
fn the_same_version_derived_twice_is_an_error() {
    let err =
        registry::merge_crds([entry("v1::Gadget"), entry("v1::Gadget")]).expect_err("duplicate");
    assert!(err.to_string().contains("derived twice"), "{err}");
}

#[test]
fn a_scale_path_naming_no_field_is_reported_before_the_crd_is_applied() {
    let err = registry::merge_crds([entry("broken::Broken")]).expect_err("bad scale path");
    let msg = err.to_string();
    assert!(msg.contains("`.status.ready` names no field"), "{msg}");
    assert!(msg.contains("registry::broken::Broken"), "{msg}");
}

#[test]
fn a_default_that_does_not_match_its_schema_is_reported() {
    let err = registry::merge_crds([entry("broken::BadDefault")]).expect_err("bad default");
    let msg = err.to_string();
    assert!(
        msg.contains(".spec.endpoint") && msg.contains("not of type integer"),
        "{msg}"
    );
}

fn has(rules: &[PolicyRule], group: &str, resource: &str, verbs: &[&str]) -> bool {
    rules.iter().any(|r| {
        r.api_groups.as_deref() == Some(&[group.to_string()][..])
            && r.resources
                .as_ref()
                .is_some_and(|rs| rs.iter().any(|x| x == resource))
            && verbs.iter().all(|v| r.verbs.iter().any(|x| x == v))
    })
}

#[test]
fn controllers_register_with_their_inferred_rules() {
    let names: Vec<&str> = registry::controllers().iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "deployment-auditor",
            "reconcile_memcached",
            "reconcile_pathed"
        ]
    );
    let role = registry::cluster_role("memcached-operator", false);
    let rules = role.rules.expect("rules");
    // primary
    assert!(has(
        &rules,
        "cache.example.com",
        "memcacheds",
        &["get", "list", "watch", "update", "patch"]
    ));
    assert!(has(
        &rules,
        "cache.example.com",
        "memcacheds/status",
        &["get", "update", "patch"]
    ));
    assert!(has(
        &rules,
        "cache.example.com",
        "memcacheds/finalizers",
        &["update"]
    ));
    assert!(
        !has(&rules, "cache.example.com", "memcacheds", &["create"]),
        "the primary is not created by its controller"
    );
    // owned: full CRUD; watched: read only
    let crud = [
        "create", "delete", "get", "list", "patch", "update", "watch",
    ];
    assert!(has(&rules, "apps", "deployments", &crud));
    assert!(has(&rules, "", "services", &crud));
    assert!(
        has(&rules, "", "configmaps", &crud),
        "owned by the second controller"
    );
    // reads(Namespace): get/list/watch, for the reconciler's `ctx.cache::<Namespace>()`
    assert!(has(&rules, "", "namespaces", &["get", "list", "watch"]));
    // extra rules merged: get from one controller, get+list from the other
    assert!(has(&rules, "", "secrets", &["get", "list"]));
    // events: events.k8s.io only (the recorder writes no core v1 Events)
    assert!(!has(&rules, "", "events", &["create"]));
    assert!(has(&rules, "events.k8s.io", "events", &["create", "patch"]));
    assert!(!rules.iter().any(|r| {
        r.resources
            .as_ref()
            .is_some_and(|rs| rs.contains(&"leases".to_string()))
    }));
}

#[test]
fn merged_rules_have_no_duplicates() {
    let rules = registry::cluster_role("x", true).rules.expect("rules");
    let mut seen = std::collections::BTreeSet::new();
    for r in &rules {
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                assert!(
                    seen.insert((g.clone(), res.clone())),
                    "{g}/{res} appears in two rules: {rules:#?}"
                );
            }
        }
        let mut verbs = r.verbs.clone();
        verbs.dedup();
        assert_eq!(verbs, r.verbs, "verbs sorted and unique");
    }
    // apps/deployments is owned by one controller and primary of another: the union.
    assert!(has(
        &rules,
        "apps",
        "deployments",
        &[
            "create", "delete", "get", "list", "patch", "update", "watch"
        ]
    ));
}

#[test]
fn leader_election_adds_leases() {
    let rules = registry::cluster_role("x", true).rules.expect("rules");
    assert!(has(
        &rules,
        "coordination.k8s.io",
        "leases",
        &[
            "get", "list", "watch", "create", "update", "patch", "delete"
        ]
    ));
}

#[test]
fn a_namespaced_operator_gets_a_role_with_the_same_rules() {
    let role = registry::role("memcached-operator", "cache-system", true);
    assert_eq!(role.metadata.namespace.as_deref(), Some("cache-system"));
    assert_eq!(
        role.rules,
        registry::cluster_role("memcached-operator", true).rules
    );
}

#[test]
fn manifests_print_as_multi_document_yaml() {
    let yaml = registry::rbac_yaml("memcached-operator", None, false).expect("yaml");
    assert!(yaml.starts_with("---\n"), "{yaml}");
    assert!(
        yaml.contains("kind: ClusterRole") && yaml.contains("name: memcached-operator"),
        "{yaml}"
    );
    let role = registry::rbac_yaml("memcached-operator", Some("ns"), false).expect("yaml");
    assert!(
        role.contains("kind: Role") && role.contains("namespace: ns"),
        "{role}"
    );
    let crd =
        registry::to_yaml(&[cache::Memcached::crd(), gadget::v1::Gadget::crd()]).expect("yaml");
    assert_eq!(crd.matches("---\n").count(), 2, "{crd}");
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&crd)
        .map(|d| serde_yaml::Value::deserialize(d).expect("yaml doc"))
        .collect();
    assert_eq!(docs.len(), 2);
}

#[test]
fn derived_types_work_with_kube_api() {
    use kube::Resource;
    assert_eq!(cache::Memcached::api_version(&()), "cache.example.com/v1");
    assert_eq!(cache::Memcached::plural(&()), "memcacheds");
    let obj = cache::Memcached::new("m", cache::MemcachedSpec { size: 2 });
    let v = serde_json::to_value(&obj).expect("json");
    assert_eq!(v["apiVersion"], "cache.example.com/v1");
    assert_eq!(v["kind"], "Memcached");
    assert_eq!(v["metadata"]["name"], "m");
    assert!(
        v.get("status").is_none(),
        "an absent status is not serialized: {v}"
    );
    let back: cache::Memcached = serde_json::from_value(v).expect("round trip");
    assert_eq!(back.spec.size, 2);
    // Api<K> accepts the type (compile-time check of its bounds).
    fn api_compiles(client: kube::Client) -> kube::Api<cache::Memcached> {
        kube::Api::namespaced(client, "default")
    }
    let _ = api_compiles;
}

/// A list map keyed by an optional field: kube-apiserver refuses such a CRD.
mod keyed {
    use super::*;

    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "keyed.example.com", version = "v1", kind = "Keyed")]
    pub struct KeyedSpec {
        #[kubeforge(list_type = "map", list_map_key = "name")]
        pub ports: Vec<Port>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
    pub struct Port {
        pub name: Option<String>,
        pub port: i32,
    }
}

#[test]
fn a_list_map_keyed_by_an_optional_field_is_refused_with_the_fix() {
    let err = registry::merge_crds([entry("keyed::Keyed")]).expect_err("optional list map key");
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::InvalidCrd { .. }), "{msg}");
    assert!(
        msg.contains("`spec.ports` is a list map keyed by `name`")
            && msg.contains("Make `name` a plain (non-Option) field"),
        "{msg}"
    );
}

/// Two versions of a kind that disagree on a short name.
mod named {
    use super::*;

    pub mod v1 {
        use super::*;
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
        #[kubeforge(
            group = "named.example.com",
            version = "v1",
            kind = "Named",
            short_name = "nm",
            storage
        )]
        pub struct NamedSpec {
            pub size: i32,
        }
    }

    pub mod v2 {
        use super::*;
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
        #[kubeforge(group = "named.example.com", version = "v2", kind = "Named")]
        pub struct NamedSpec {
            pub size: i32,
        }
    }
}

#[test]
fn versions_disagreeing_on_names_name_the_attribute_and_the_versions() {
    let err = registry::merge_crds([entry("named::v1::Named"), entry("named::v2::Named")])
        .expect_err("short names differ");
    let msg = err.to_string();
    assert!(
        matches!(err, RegistryError::VersionMismatch { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("short names")
            && msg.contains("version v1 (")
            && msg.contains("[\"nm\"]")
            && msg.contains("version v2 (")
            && msg.contains("same `short_name`"),
        "{msg}"
    );
    assert!(
        !msg.contains("CustomResourceDefinitionNames"),
        "no Debug dump: {msg}"
    );
}

/// One declaration: a controller that `#[controller]` declares cannot be built by hand watching
/// something the attribute (and so the printed RBAC) leaves out.
#[tokio::test]
async fn a_hand_built_controller_cannot_watch_what_its_attribute_does_not_declare() {
    use kubeforge::controller::{Action, BuildError, Context, Controller, ReconcileError, Watch};
    use kubeforge::manager::{Manager, ManagerConfig};
    async fn reconcile(
        _: std::sync::Arc<Deployment>,
        _: Context<()>,
    ) -> Result<Action, ReconcileError> {
        Ok(Action::await_change())
    }
    let server = kubeforge_testkit::ApiServer::start().await.expect("server");
    let mut mgr = Manager::new(server.client(), ManagerConfig::default())
        .await
        .expect("manager");
    // As declared (for = Deployment, owns(ConfigMap)): fine.
    Controller::managed_by(&mut mgr)
        .for_::<Deployment>(Watch::new())
        .owns::<ConfigMap>(Watch::new())
        .named("deployment-auditor")
        .complete(reconcile, ())
        .expect("the declared watches");
    // Watching Services as well, which the attribute does not declare: refused at build time.
    let err = Controller::managed_by(&mut mgr)
        .for_::<Deployment>(Watch::new())
        .watches::<Service>(Watch::new(), |_| Vec::new())
        .named("deployment-auditor")
        .complete(reconcile, ())
        .expect_err("an undeclared watch");
    assert!(
        matches!(&err, BuildError::UndeclaredWatch { controller, resource }
            if controller == "deployment-auditor" && resource == "services"),
        "{err}"
    );
    assert!(err.to_string().contains("add it to the attribute"), "{err}");
}
