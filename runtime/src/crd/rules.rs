//! Checking a custom resource against its CRD's CEL validation rules (`x-kubernetes-validations`)
//! without a server: the evaluator the embedded test server uses, callable from a unit test.

use kube::Resource;
use kube::core::CustomResourceExt;
use serde::Serialize;

pub use kubeforge_cel::{Reason, RuleError};

/// Evaluates every CEL rule of `K`'s CRD (the version `K` is) against `obj`, and against `old`
/// when checking an update (transition rules compare with it). Returns the failures as the API
/// server would report them; empty means the object would be accepted by its rules.
///
/// For a derived `Rollout` whose spec has `validation(rule = "self.minReplicas <=
/// self.maxReplicas", …, field_path = ".minReplicas")`, `check_rules(&rollout, None)` on a
/// rollout breaking it returns one error printing as `spec.minReplicas: Invalid value:
/// minReplicas must not exceed maxReplicas` (the macros corpus tests exactly this).
///
/// Only the rules are checked here; the schema's other validations (types, bounds, patterns)
/// are the server's (or the embedded test server's) to apply.
pub fn check_rules<K>(obj: &K, old: Option<&K>) -> Vec<RuleError>
where
    K: CustomResourceExt + Resource<DynamicType = ()> + Serialize,
{
    let version = K::version(&());
    let crd = K::crd();
    let Some(schema) = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == version)
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
    else {
        return Vec::new();
    };
    let to_json = |o: &K| serde_json::to_value(o).unwrap_or_default();
    let old = old.map(to_json);
    kubeforge_cel::validate(&schema, &to_json(obj), old.as_ref())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use serde_json::json;

    #[test]
    fn a_crd_whose_rule_does_not_compile_is_a_registry_problem() {
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "metadata": {"name": "things.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "things", "kind": "Thing"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                        "type": "object", "x-kubernetes-validations": [{"rule": "self.a <"}]}}}}}]}
        }))
        .expect("crd");
        let problems = crate::crd::check(&crd);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("\"self.a <\"")
                && problems[0].contains("properties[spec].x-kubernetes-validations[0].rule"),
            "{problems:?}"
        );
    }
}
