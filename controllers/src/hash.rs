//! The `pod-template-hash` of a Deployment's template: one ReplicaSet per distinct template.
//!
//! Upstream hashes the Go struct's `spew` dump with FNV-32a; this hashes the template's JSON
//! with FNV-32a (plus the collision count, as upstream), and encodes the number the same way
//! (`rand.SafeEncodeString` of its decimal digits). The values therefore differ from
//! kube-controller-manager's for the same template, but have the same properties: stable for
//! a template, different for a different one, and bumped by `status.collisionCount`.

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// The label (on ReplicaSets, their selectors and their Pods) carrying the hash.
pub const LABEL: &str = "pod-template-hash";

/// Upstream's alphabet for generated strings: no vowels, no confusable characters.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// FNV-1a, 32 bits, continuing from `hash` (start with `0x811c_9dc5`).
pub(crate) fn fnv1a32(bytes: &[u8], mut hash: u32) -> u32 {
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The hash of `template` (without its own `pod-template-hash` label) and `collision_count`.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut template = template.clone();
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(LABEL);
    }
    let json = serde_json::to_vec(&template).unwrap_or_default();
    let mut hash = fnv1a32(&json, 0x811c_9dc5);
    if let Some(count) = collision_count {
        hash = fnv1a32(&count.to_le_bytes(), hash);
    }
    safe_encode(hash)
}

/// `hash` as upstream names things by it (`rand.SafeEncodeString` of its decimal digits).
pub(crate) fn safe_encode(hash: u32) -> String {
    hash.to_string()
        .bytes()
        .map(|d| char::from(ALPHABET[usize::from(d) % ALPHABET.len()]))
        .collect()
}

/// Two templates are the same rollout target once their hash labels are ignored (upstream
/// `EqualIgnoreHash`).
pub fn same_template(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(LABEL);
            if labels.is_empty() {
                t.metadata.as_mut().expect("metadata").labels = None;
            }
        }
        serde_json::to_value(t).unwrap_or_default()
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn template(image: &str, hash: Option<&str>) -> PodTemplateSpec {
        let mut labels = std::collections::BTreeMap::from([("app".to_owned(), "web".to_owned())]);
        if let Some(h) = hash {
            labels.insert(LABEL.into(), h.into());
        }
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..ObjectMeta::default()
            }),
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                containers: vec![k8s_openapi::api::core::v1::Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn hash_is_stable_ignores_its_own_label_and_changes_with_template_or_collisions() {
        let a = template("nginx:1", None);
        let h = template_hash(&a, None);
        assert!(h.bytes().all(|c| ALPHABET.contains(&c)), "{h}");
        assert_eq!(template_hash(&template("nginx:1", Some(&h)), None), h);
        assert_ne!(template_hash(&template("nginx:2", None), None), h);
        assert_ne!(template_hash(&a, Some(1)), h);
        assert!(same_template(&a, &template("nginx:1", Some("x"))));
        assert!(!same_template(&a, &template("nginx:2", None)));
    }
}
