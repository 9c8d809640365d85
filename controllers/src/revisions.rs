//! ControllerRevisions of a set's Pod template, as the StatefulSet and DaemonSet controllers
//! keep them (upstream `pkg/controller/history`): the data a revision stores (the template as a
//! patch replacing the set's), the template a revision restores on rollback, and the hash that
//! names it — FNV-32a of that data's JSON plus the collision count, encoded as upstream encodes
//! generated names (the values differ from kube-controller-manager's, which hashes a Go dump).

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::json;

use crate::hash::{fnv1a32, safe_encode};

/// The revision's data: `template` as a patch replacing the set's template.
pub fn data_of(template: &PodTemplateSpec) -> serde_json::Value {
    let mut template = serde_json::to_value(template).unwrap_or_default();
    if let Some(t) = template.as_object_mut() {
        t.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The template a revision restores, if its data holds one.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.0.get("spec")?.get("template")?.clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// The hash naming the revision of `template` (`<set>-<hash>`), bumped by `collision_count`.
pub fn hash_of(template: &PodTemplateSpec, collision_count: i32) -> String {
    let data = serde_json::to_vec(&data_of(template)).unwrap_or_default();
    let mut hash = fnv1a32(&data, 0x811c_9dc5);
    if collision_count > 0 {
        hash = fnv1a32(collision_count.to_string().as_bytes(), hash);
    }
    safe_encode(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_restores_its_template_and_the_hash_follows_template_and_collisions() {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1"}]},
        }))
        .unwrap();
        let revision = ControllerRevision {
            data: k8s_openapi::apimachinery::pkg::runtime::RawExtension(data_of(&template)),
            ..ControllerRevision::default()
        };
        assert_eq!(template_of(&revision), Some(template.clone()));
        let mut other = template.clone();
        other.spec.as_mut().unwrap().containers[0].image = Some("nginx:2".into());
        assert_eq!(hash_of(&template, 0), hash_of(&template, 0));
        assert_ne!(hash_of(&template, 0), hash_of(&other, 0));
        assert_ne!(hash_of(&template, 0), hash_of(&template, 1));
    }
}
