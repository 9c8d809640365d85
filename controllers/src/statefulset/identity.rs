//! A StatefulSet Pod's identity and storage: the name `<set>-<ordinal>`, the labels naming it
//! and its revision, the hostname under the set's Service, and the PersistentVolumeClaims
//! `<template>-<set>-<ordinal>` from `volumeClaimTemplates`, owned as the retention policy says
//! (upstream `stateful_set_utils.go`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;

/// The label naming the revision a Pod was created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The label carrying the Pod's own name (a Service can select one member).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label carrying the Pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal in `<set>-<ordinal>` when `name` is a member of `set` (`None` otherwise).
pub fn ordinal_of(set: &str, name: &str) -> Option<i32> {
    let digits = name.strip_prefix(set)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A leading zero would name a different Pod than the ordinal prints back to.
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    digits.parse().ok()
}

/// The first ordinal (`spec.ordinals.start`, 0 when unset).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .unwrap_or(0)
}

/// `spec.replicas` (1 when unset, as the API server defaults it).
pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.replicas.unwrap_or(1)
}

/// The name of the claim of `template` for the Pod with `ordinal`.
pub fn claim_name(set: &StatefulSet, template: &PersistentVolumeClaim, ordinal: i32) -> String {
    format!("{}-{}-{ordinal}", template.name_any(), set.name_any())
}

/// The retention policy as (whenDeleted, whenScaled) `Delete` flags; unset means `Retain`.
fn retention(set: &StatefulSet) -> (bool, bool) {
    let policy = set.spec.persistent_volume_claim_retention_policy.as_ref();
    let delete = |v: Option<&String>| v.is_some_and(|v| v == "Delete");
    (
        delete(policy.and_then(|p| p.when_deleted.as_ref())),
        delete(policy.and_then(|p| p.when_scaled.as_ref())),
    )
}

/// Which owners a claim should name as controller under the set's retention policy: the set
/// (deleting the set deletes the claim) unless the Pod is scaled away, the Pod (deleting the
/// Pod on scale-down deletes the claim) only once it is.
pub fn wanted_claim_owners(set: &StatefulSet, scaled_down: bool) -> (bool, bool) {
    match retention(set) {
        (false, false) => (false, false),
        (true, false) => (true, false),
        (false, true) => (false, scaled_down),
        (true, true) => (!scaled_down, scaled_down),
    }
}

/// The claims the Pod with `ordinal` mounts: each template named for the Pod, labelled with the
/// set's selector labels, owned by `set_owner` when the policy says so.
pub fn claims_for(
    set: &StatefulSet,
    ordinal: i32,
    set_owner: Option<&OwnerReference>,
) -> Vec<PersistentVolumeClaim> {
    let selector_labels = set.spec.selector.match_labels.clone().unwrap_or_default();
    set.spec
        .volume_claim_templates
        .iter()
        .flatten()
        .map(|template| {
            let mut labels = template.metadata.labels.clone().unwrap_or_default();
            labels.extend(selector_labels.clone());
            let owners = wanted_claim_owners(set, false)
                .0
                .then(|| set_owner.cloned());
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(set, template, ordinal)),
                    namespace: set.namespace(),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    owner_references: owners.flatten().map(|o| vec![o]),
                    ..ObjectMeta::default()
                },
                spec: template.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// The Pod with `ordinal`, from `template` at `revision`: its name, identity labels, hostname
/// and subdomain, and a volume per claim template (replacing a template volume of that name).
pub fn new_pod(
    set: &StatefulSet,
    template: &PodTemplateSpec,
    revision: &str,
    ordinal: i32,
    owner: OwnerReference,
) -> Pod {
    let name = format!("{}-{ordinal}", set.name_any());
    let namespace = set.namespace().unwrap_or_default();
    let mut pod = crate::pods::from_template(template, &namespace, "", owner);
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name);
    spec.subdomain = set.spec.service_name.clone().filter(|s| !s.is_empty());
    let claims: Vec<(String, String)> = set
        .spec
        .volume_claim_templates
        .iter()
        .flatten()
        .map(|t| (t.name_any(), claim_name(set, t, ordinal)))
        .collect();
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(volume, claim)| Volume {
            name: volume.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: None,
            }),
            ..Volume::default()
        })
        .collect();
    volumes.extend(
        spec.volumes
            .take()
            .into_iter()
            .flatten()
            .filter(|v| !claims.iter().any(|(name, _)| *name == v.name)),
    );
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
    pod
}

/// The identity labels a member Pod lacks (someone removed them): `None` when it has them.
pub fn missing_identity(pod: &Pod, ordinal: i32) -> Option<BTreeMap<String, String>> {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let want = [
        (POD_NAME_LABEL, pod.name_any()),
        (POD_INDEX_LABEL, ordinal.to_string()),
    ];
    let missing: BTreeMap<String, String> = want
        .into_iter()
        .filter(|(k, v)| labels.get(*k) != Some(v))
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    (!missing.is_empty()).then_some(missing)
}

/// The revision a Pod was created from (its `controller-revision-hash` label).
pub fn revision_of(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_are_parsed_only_from_members_names() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "web-01"), None);
        assert_eq!(ordinal_of("web", "webapp-1"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
        // A set named `web-1` has members `web-1-0`; they are not members of `web`.
        assert_eq!(ordinal_of("web", "web-1-0"), None);
    }

    #[test]
    fn claim_owners_follow_the_retention_policy() {
        use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy as P;
        let with = |deleted: &str, scaled: &str| {
            let mut set = StatefulSet::default();
            set.spec.persistent_volume_claim_retention_policy = Some(P {
                when_deleted: Some(deleted.into()),
                when_scaled: Some(scaled.into()),
            });
            set
        };
        assert_eq!(
            wanted_claim_owners(&StatefulSet::default(), true),
            (false, false)
        );
        assert_eq!(
            wanted_claim_owners(&with("Delete", "Retain"), true),
            (true, false)
        );
        assert_eq!(
            wanted_claim_owners(&with("Retain", "Delete"), false),
            (false, false)
        );
        assert_eq!(
            wanted_claim_owners(&with("Retain", "Delete"), true),
            (false, true)
        );
        assert_eq!(
            wanted_claim_owners(&with("Delete", "Delete"), false),
            (true, false)
        );
        assert_eq!(
            wanted_claim_owners(&with("Delete", "Delete"), true),
            (false, true)
        );
    }
}
