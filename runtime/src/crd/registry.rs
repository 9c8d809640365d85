//! What derived custom resources and `#[controller]` functions register, so an operator binary
//! can print its CRDs and its RBAC role without hand-kept lists.
//!
//! `#[derive(CustomResource)]` submits one [`CustomResourceEntry`] per derived version and
//! `#[kubeforge::controller]` one [`ControllerEntry`] per reconcile function, through
//! [`inventory`]. [`crds`] merges the versions of each kind into one CustomResourceDefinition;
//! [`cluster_role`] / [`role`] merge and de-duplicate the RBAC rules of every controller.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Serialize;

/// Errors found while assembling the registered CRDs or printing manifests.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Several versions of a kind are registered and none is marked as the storage version.
    #[error(
        "CRD {crd} has {count} versions ({versions}) but none is the storage version: add `storage` \
         to the #[kubeforge(...)] attribute of exactly one of: {types}",
        count = .versions.len(), versions = .versions.join(", "), types = .types.join(", ")
    )]
    NoStorageVersion {
        /// `<plural>.<group>`.
        crd: String,
        /// The versions found.
        versions: Vec<String>,
        /// The Rust types deriving those versions.
        types: Vec<String>,
    },
    /// More than one version of a kind is marked `storage`.
    #[error(
        "CRD {crd} has {count} storage versions; exactly one is allowed: remove `storage` from all \
         but one of: {types}",
        count = .types.len(), types = .types.join(", ")
    )]
    MultipleStorageVersions {
        /// `<plural>.<group>`.
        crd: String,
        /// The Rust types marked `storage`.
        types: Vec<String>,
    },
    /// Two types derive the same version of the same kind.
    #[error(
        "CRD {crd} version {version} is derived twice, by {first} and {second}: give one of them another `version`"
    )]
    DuplicateVersion {
        /// `<plural>.<group>`.
        crd: String,
        /// The duplicated version.
        version: String,
        /// The first type.
        first: String,
        /// The second type.
        second: String,
    },
    /// Versions of one kind disagree on something a CRD holds once (scope, names).
    #[error("CRD {crd}: versions of one kind must share their {what}, but {detail}")]
    VersionMismatch {
        /// `<plural>.<group>`.
        crd: String,
        /// What differs (e.g. `scope`, `names`).
        what: &'static str,
        /// Which types say what, e.g. `a::V1 has "Namespaced", b::V2 has "Cluster"`.
        detail: String,
    },
    /// A generated CRD failed its own consistency check (e.g. a default that does not match its schema).
    #[error("CRD {crd} (from {ty}): {message}")]
    InvalidCrd {
        /// `<plural>.<group>`.
        crd: String,
        /// The Rust type.
        ty: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Serializing a manifest failed.
    #[error("failed to serialize manifest to YAML")]
    Yaml(#[from] serde_yaml::Error),
}

/// One derived version of a custom resource kind (submitted by `#[derive(CustomResource)]`).
#[derive(Debug, Clone, Copy)]
pub struct CustomResourceEntry {
    /// The Rust path of the root type, for error messages (e.g. `my_operator::v1::Memcached`).
    pub type_name: &'static str,
    /// API group.
    pub group: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Version.
    pub version: &'static str,
    /// Whether the type is explicitly marked `storage`.
    pub storage: bool,
    /// The single-version CRD of this type (its only version is marked storage).
    pub crd: fn() -> CustomResourceDefinition,
}
inventory::collect!(CustomResourceEntry);

/// One controller (submitted by `#[kubeforge::controller]`).
#[derive(Debug, Clone, Copy)]
pub struct ControllerEntry {
    /// The controller's name (the reconcile function's name unless given).
    pub name: &'static str,
    /// The RBAC rules the controller needs (primary, owned, watched and extra rules;
    /// events and leases are added by [`cluster_role`] / [`role`]).
    pub rules: fn() -> Vec<PolicyRule>,
}
inventory::collect!(ControllerEntry);

/// Every registered custom resource version, sorted by group, kind, version.
pub fn custom_resources() -> Vec<&'static CustomResourceEntry> {
    let mut all: Vec<_> = inventory::iter::<CustomResourceEntry>.into_iter().collect();
    all.sort_by_key(|e| (e.group, e.kind, e.version, e.type_name));
    all
}

/// Every registered controller, sorted by name.
pub fn controllers() -> Vec<&'static ControllerEntry> {
    let mut all: Vec<_> = inventory::iter::<ControllerEntry>.into_iter().collect();
    all.sort_by_key(|e| e.name);
    all
}

/// All registered CRDs: the versions of one kind merged into one CRD with exactly one storage version.
///
/// # Errors
/// When a kind with several versions has zero or several storage versions (the error names the
/// types to mark), when a version is derived twice, or when versions disagree on scope or names.
pub fn crds() -> Result<Vec<CustomResourceDefinition>, RegistryError> {
    merge_crds(custom_resources().into_iter().copied())
}

/// Merges the given entries by `group`/`kind` (what [`crds`] does with every registered entry).
///
/// # Errors
/// See [`crds`].
pub fn merge_crds(
    entries: impl IntoIterator<Item = CustomResourceEntry>,
) -> Result<Vec<CustomResourceDefinition>, RegistryError> {
    let mut by_kind: BTreeMap<(&'static str, &'static str), Vec<CustomResourceEntry>> =
        BTreeMap::new();
    for e in entries {
        by_kind.entry((e.group, e.kind)).or_default().push(e);
    }
    by_kind.into_values().map(merge_kind).collect()
}

fn merge_kind(
    mut entries: Vec<CustomResourceEntry>,
) -> Result<CustomResourceDefinition, RegistryError> {
    entries.sort_by_key(|e| (e.version, e.type_name));
    let built: Vec<(CustomResourceEntry, CustomResourceDefinition)> =
        entries.iter().map(|e| (*e, (e.crd)())).collect();
    let crd_name = built[0].1.metadata.name.clone().unwrap_or_default();
    for (entry, crd) in &built {
        let problems = crate::crd::check(crd);
        if !problems.is_empty() {
            return Err(RegistryError::InvalidCrd {
                crd: crd_name,
                ty: entry.type_name.to_string(),
                message: problems.join("; "),
            });
        }
    }
    for pair in built.windows(2) {
        if pair[0].0.version == pair[1].0.version {
            return Err(RegistryError::DuplicateVersion {
                crd: crd_name,
                version: pair[0].0.version.to_string(),
                first: pair[0].0.type_name.to_string(),
                second: pair[1].0.type_name.to_string(),
            });
        }
    }
    if built.len() == 1 {
        return Ok(built
            .into_iter()
            .next()
            .map(|(_, crd)| crd)
            .unwrap_or_default());
    }
    let storage: Vec<&CustomResourceEntry> =
        built.iter().map(|(e, _)| e).filter(|e| e.storage).collect();
    match storage.len() {
        1 => {}
        0 => {
            return Err(RegistryError::NoStorageVersion {
                crd: crd_name,
                versions: built.iter().map(|(e, _)| e.version.to_string()).collect(),
                types: built.iter().map(|(e, _)| e.type_name.to_string()).collect(),
            });
        }
        _ => {
            return Err(RegistryError::MultipleStorageVersions {
                crd: crd_name,
                types: storage.iter().map(|e| e.type_name.to_string()).collect(),
            });
        }
    }
    let storage_idx = built.iter().position(|(e, _)| e.storage).unwrap_or(0);
    let (base_entry, base) = &built[storage_idx];
    let mut merged = base.clone();
    merged.spec.versions.clear();
    for (entry, crd) in &built {
        check_same(
            &crd_name,
            base_entry,
            entry,
            "scope",
            &base.spec.scope,
            &crd.spec.scope,
        )?;
        check_names(
            &crd_name,
            base_entry,
            entry,
            &base.spec.names,
            &crd.spec.names,
        )?;
        for mut v in crd.spec.versions.clone() {
            v.storage = entry.storage;
            merged.spec.versions.push(v);
        }
    }
    // Kubernetes sorts versions by priority on its own; keep storage first for readers of the YAML.
    merged
        .spec
        .versions
        .sort_by_key(|v| (!v.storage, v.name.clone()));
    Ok(merged)
}

/// Names are shared by every version of a kind: report the first attribute that differs, on
/// which versions, and the fix — not the two structs.
fn check_names(
    crd: &str,
    a_entry: &CustomResourceEntry,
    b_entry: &CustomResourceEntry,
    a: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionNames,
    b: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionNames,
) -> Result<(), RegistryError> {
    let list = |v: &Option<Vec<String>>| format!("{:?}", v.clone().unwrap_or_default());
    let fields: [(&'static str, &str, String, String); 5] = [
        ("plural", "plural", a.plural.clone(), b.plural.clone()),
        (
            "singular",
            "singular",
            format!("{:?}", a.singular),
            format!("{:?}", b.singular),
        ),
        (
            "short names",
            "short_name",
            list(&a.short_names),
            list(&b.short_names),
        ),
        (
            "categories",
            "category",
            list(&a.categories),
            list(&b.categories),
        ),
        (
            "list kind",
            "kind",
            format!("{:?}", a.list_kind),
            format!("{:?}", b.list_kind),
        ),
    ];
    for (what, attribute, x, y) in fields {
        if x != y {
            return Err(RegistryError::VersionMismatch {
                crd: crd.to_string(),
                what,
                detail: format!(
                    "version {} ({}) has {x} and version {} ({}) has {y}; give every version the \
                     same `{attribute}` in its #[kubeforge(...)] attribute",
                    a_entry.version, a_entry.type_name, b_entry.version, b_entry.type_name
                ),
            });
        }
    }
    check_same(crd, a_entry, b_entry, "names", a, b)
}

fn check_same<T: PartialEq + std::fmt::Debug>(
    crd: &str,
    a_entry: &CustomResourceEntry,
    b_entry: &CustomResourceEntry,
    what: &'static str,
    a: &T,
    b: &T,
) -> Result<(), RegistryError> {
    if a == b {
        return Ok(());
    }
    Err(RegistryError::VersionMismatch {
        crd: crd.to_string(),
        what,
        detail: format!(
            "{} has {a:?}, {} has {b:?}",
            a_entry.type_name, b_entry.type_name
        ),
    })
}

// ---------------------------------------------------------------------------------------------
// RBAC
// ---------------------------------------------------------------------------------------------

const PRIMARY_VERBS: &[&str] = &["get", "list", "watch", "update", "patch"];
const STATUS_VERBS: &[&str] = &["get", "update", "patch"];
const FINALIZER_VERBS: &[&str] = &["update"];
const OWNED_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const WATCHED_VERBS: &[&str] = &["get", "list", "watch"];
const EVENT_VERBS: &[&str] = &["create", "patch"];
const LEASE_VERBS: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// One rule: the verbs allowed on resources of API groups (optionally only named objects).
pub fn rule(
    groups: &[&str],
    resources: &[&str],
    verbs: &[&str],
    resource_names: &[&str],
) -> PolicyRule {
    let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        resource_names: (!resource_names.is_empty()).then(|| strings(resource_names)),
        non_resource_urls: None,
    }
}

/// Rules for a controller's primary type `K`: get/list/watch/update/patch on it,
/// get/update/patch on `<plural>/status`, update on `<plural>/finalizers`.
pub fn primary_rules<K: Resource<DynamicType = ()>>() -> Vec<PolicyRule> {
    primary_rules_of::<K>()
}

/// [`primary_rules`] for any `K` whose dynamic type has a default (what the controller builder takes).
pub(crate) fn primary_rules_of<K>() -> Vec<PolicyRule>
where
    K: Resource,
    K::DynamicType: Default,
{
    let dt = K::DynamicType::default();
    let (group, plural) = (K::group(&dt), K::plural(&dt));
    vec![
        rule(&[&group], &[&plural], PRIMARY_VERBS, &[]),
        rule(&[&group], &[&format!("{plural}/status")], STATUS_VERBS, &[]),
        rule(
            &[&group],
            &[&format!("{plural}/finalizers")],
            FINALIZER_VERBS,
            &[],
        ),
    ]
}

/// Rules for a type the controller owns (creates and deletes): full CRUD.
pub fn owned_rules<K: Resource<DynamicType = ()>>() -> Vec<PolicyRule> {
    owned_rules_of::<K>()
}

/// [`owned_rules`] for any `K` whose dynamic type has a default (what the controller builder takes).
pub(crate) fn owned_rules_of<K>() -> Vec<PolicyRule>
where
    K: Resource,
    K::DynamicType: Default,
{
    let dt = K::DynamicType::default();
    vec![rule(
        &[&K::group(&dt)],
        &[&K::plural(&dt)],
        OWNED_VERBS,
        &[],
    )]
}

/// Rules for a type the controller only watches: get/list/watch.
pub fn watched_rules<K: Resource<DynamicType = ()>>() -> Vec<PolicyRule> {
    watched_rules_of::<K>()
}

/// [`watched_rules`] for any `K` whose dynamic type has a default (what the controller builder takes).
pub(crate) fn watched_rules_of<K>() -> Vec<PolicyRule>
where
    K: Resource,
    K::DynamicType: Default,
{
    let dt = K::DynamicType::default();
    vec![rule(
        &[&K::group(&dt)],
        &[&K::plural(&dt)],
        WATCHED_VERBS,
        &[],
    )]
}

/// Rules every operator needs besides its controllers': events.k8s.io events create/patch (the
/// recorder writes only those; core v1 events are not needed), and coordination.k8s.io leases
/// when leader election is on.
pub fn operator_rules(leader_election: bool) -> Vec<PolicyRule> {
    let mut rules = vec![rule(&["events.k8s.io"], &["events"], EVENT_VERBS, &[])];
    if leader_election {
        rules.push(rule(
            &["coordination.k8s.io"],
            &["leases"],
            LEASE_VERBS,
            &[],
        ));
    }
    rules
}

/// Merges and de-duplicates rules: verbs are unioned per (group, resource, resource names),
/// then resources of one group with identical verbs are combined into one rule. The output
/// order is deterministic (sorted), so printed manifests are stable across builds.
pub fn merge_rules(rules: impl IntoIterator<Item = PolicyRule>) -> Vec<PolicyRule> {
    type Key = (String, String, Vec<String>);
    let mut verbs_by: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
    let mut non_resource: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rules {
        if let Some(urls) = &r.non_resource_urls {
            for u in urls {
                non_resource
                    .entry(u.clone())
                    .or_default()
                    .extend(r.verbs.iter().cloned());
            }
        }
        let names: Vec<String> = {
            let mut n = r.resource_names.clone().unwrap_or_default();
            n.sort();
            n.dedup();
            n
        };
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                verbs_by
                    .entry((g.clone(), res.clone(), names.clone()))
                    .or_default()
                    .extend(r.verbs.iter().cloned());
            }
        }
    }
    // A wildcard verb covers every other verb on the same resource.
    for verbs in verbs_by.values_mut() {
        if verbs.contains("*") {
            verbs.retain(|v| v == "*");
        }
    }
    let mut grouped: BTreeMap<(String, Vec<String>, Vec<String>), BTreeSet<String>> =
        BTreeMap::new();
    for ((group, resource, names), verbs) in verbs_by {
        grouped
            .entry((group, names, verbs.into_iter().collect()))
            .or_default()
            .insert(resource);
    }
    let mut out: Vec<PolicyRule> = grouped
        .into_iter()
        .map(|((group, names, verbs), resources)| PolicyRule {
            api_groups: Some(vec![group]),
            resources: Some(resources.into_iter().collect()),
            verbs,
            resource_names: (!names.is_empty()).then_some(names),
            non_resource_urls: None,
        })
        .collect();
    for (url, verbs) in non_resource {
        out.push(PolicyRule {
            non_resource_urls: Some(vec![url]),
            verbs: verbs.into_iter().collect(),
            ..PolicyRule::default()
        });
    }
    out
}

fn all_rules(leader_election: bool, built: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut rules: Vec<PolicyRule> = controllers()
        .into_iter()
        .flat_map(|c| (c.rules)())
        .collect();
    rules.extend(built.iter().cloned());
    rules.extend(operator_rules(leader_election));
    merge_rules(rules)
}

/// The ClusterRole of the operator: every registered controller's rules plus events (and leases
/// with leader election), merged and de-duplicated.
pub fn cluster_role(name: &str, leader_election: bool) -> ClusterRole {
    cluster_role_with(name, leader_election, &[])
}

/// [`cluster_role`] plus `built`: the rules of controllers built with the
/// [`Controller`](crate::controller::Controller) builder ([`Manager::rbac_rules`](crate::manager::Manager::rbac_rules)).
pub fn cluster_role_with(name: &str, leader_election: bool, built: &[PolicyRule]) -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        rules: Some(all_rules(leader_election, built)),
        aggregation_rule: None,
    }
}

/// The Role of an operator that watches a single namespace (same rules as [`cluster_role`]).
pub fn role(name: &str, namespace: &str, leader_election: bool) -> Role {
    role_with(name, namespace, leader_election, &[])
}

/// [`role`] plus the rules of controllers built with the builder (see [`cluster_role_with`]).
pub fn role_with(name: &str, namespace: &str, leader_election: bool, built: &[PolicyRule]) -> Role {
    Role {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        },
        rules: Some(all_rules(leader_election, built)),
    }
}

/// Prints documents as multi-document YAML (`---` before each), the format `kubectl apply -f` reads.
///
/// # Errors
/// When a document cannot be serialized.
pub fn to_yaml<T: Serialize>(docs: &[T]) -> Result<String, RegistryError> {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(doc)?);
    }
    Ok(out)
}

/// All registered CRDs as multi-document YAML (the operator binary's `crds` subcommand).
///
/// # Errors
/// See [`crds`].
pub fn crds_yaml() -> Result<String, RegistryError> {
    to_yaml(&crds()?)
}

/// The operator's ClusterRole (or, with `namespace`, its Role) as YAML (the `rbac` subcommand).
///
/// # Errors
/// When serialization fails.
pub fn rbac_yaml(
    name: &str,
    namespace: Option<&str>,
    leader_election: bool,
) -> Result<String, RegistryError> {
    rbac_yaml_with(name, namespace, leader_election, &[])
}

/// [`rbac_yaml`] plus the rules of controllers built with the builder.
///
/// # Errors
/// When serialization fails.
pub fn rbac_yaml_with(
    name: &str,
    namespace: Option<&str>,
    leader_election: bool,
    built: &[PolicyRule],
) -> Result<String, RegistryError> {
    match namespace {
        Some(ns) => to_yaml(&[role_with(name, ns, leader_election, built)]),
        None => to_yaml(&[cluster_role_with(name, leader_election, built)]),
    }
}
