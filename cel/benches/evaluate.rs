//! What the CEL rules of a typical CRD cost per object written: a schema with a range rule, a
//! transition rule, a list rule with a macro and a rule on each of 10 list items (the shapes of
//! the macros corpus's Rollout), evaluated on create (no old object) and on update.
//!
//! `cargo bench -p kubeforge-cel --bench evaluate` (iterations from `KUBEFORGE_BENCH_ITERATIONS`,
//! default 20000). Prints µs per object.

use std::time::Instant;

use serde_json::json;

fn main() {
    let n: u32 = std::env::var("KUBEFORGE_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
            {"rule": "self.strategy == oldSelf.strategy", "message": "strategy is immutable"},
            {"rule": "self.steps.all(s, s.weight <= 100)", "message": "weights are percentages"}],
        "properties": {
            "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() > 0"}]},
            "minReplicas": {"type": "integer"}, "maxReplicas": {"type": "integer"},
            "strategy": {"type": "string"},
            "steps": {"type": "array", "items": {"type": "object",
                "x-kubernetes-validations": [{"rule": "self.weight >= 0 && self.weight <= 100"}],
                "properties": {"weight": {"type": "integer"}}}}}}}});
    let steps: Vec<_> = (0..10).map(|i| json!({"weight": i * 10})).collect();
    let obj = json!({"apiVersion": "deploy.example.com/v1", "kind": "Rollout",
        "metadata": {"name": "r"},
        "spec": {"name": "r", "minReplicas": 1, "maxReplicas": 3, "strategy": "canary", "steps": steps}});
    // Warm the compiled-rule cache, as a running server has.
    assert!(kubeforge_cel::validate(&schema, &obj, None).is_empty());
    println!(
        "{n} objects, 16 rule evaluations each (3 on spec, 1 on name, 1 on each of 10 steps; the transition rule only on update)"
    );
    for (label, old) in [("create", None), ("update", Some(&obj))] {
        let start = Instant::now();
        for _ in 0..n {
            let errors = kubeforge_cel::validate(&schema, &obj, old);
            assert!(errors.is_empty());
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        println!("{label:<8} {per:>8.1} µs per object");
    }
}
