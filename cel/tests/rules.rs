//! The rules of a schema evaluated against objects, as kube-apiserver reports them.

use kubeforge_cel::library::FUNCTIONS;
use kubeforge_cel::{Reason, check_compiles, validate};
use serde_json::{Value, json};

/// A schema whose `spec` carries `rules`, with a few typed fields to write rules about.
fn spec_schema(rules: Value) -> Value {
    json!({"type": "object", "properties": {
        "metadata": {"type": "object"},
        "spec": {"type": "object", "x-kubernetes-validations": rules, "properties": {
            "min": {"type": "integer"}, "max": {"type": "integer"},
            "name": {"type": "string"},
            "items": {"type": "array", "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}})
}

fn messages(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<String> {
    validate(schema, obj, old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn every_supported_library_function_evaluates_as_documented() {
    let mut unsupported = Vec::new();
    for f in FUNCTIONS {
        if !f.supported {
            unsupported.push(format!("{} {} ({})", f.library, f.signature, f.example));
            continue;
        }
        let schema = json!({"type": "object", "x-kubernetes-validations": [{"rule": f.example}]});
        let errors = messages(&schema, &json!({}), None);
        assert!(
            errors.is_empty(),
            "{} {}: {errors:?}",
            f.library,
            f.signature
        );
    }
    // Counted, not silently passed: the table says which functions are missing.
    println!(
        "{} functions unsupported:\n  {}",
        unsupported.len(),
        unsupported.join("\n  ")
    );
    assert!(FUNCTIONS.iter().filter(|f| f.supported).count() >= 25);
}

#[test]
fn a_failing_rule_reports_its_message_at_its_node() {
    let schema = spec_schema(
        json!([{"rule": "self.min <= self.max", "message": "min must not exceed max"}]),
    );
    assert_eq!(
        messages(&schema, &json!({"spec": {"min": 3, "max": 1}}), None),
        ["spec: Invalid value: min must not exceed max"]
    );
    assert!(messages(&schema, &json!({"spec": {"min": 1, "max": 3}}), None).is_empty());
}

#[test]
fn without_a_message_the_rule_itself_is_shown() {
    let schema = spec_schema(json!([{"rule": "self.min > 0"}]));
    assert_eq!(
        messages(&schema, &json!({"spec": {"min": 0}}), None),
        ["spec: Invalid value: failed rule: self.min > 0"]
    );
}

#[test]
fn message_expression_reason_and_field_path_shape_the_error() {
    let schema = spec_schema(json!([{
        "rule": "self.items.size() <= 2",
        "messageExpression": "'at most 2 items, not ' + string(self.items.size())",
        "reason": "FieldValueForbidden",
        "fieldPath": ".items",
    }]));
    let errors = validate(&schema, &json!({"spec": {"items": ["a", "b", "c"]}}), None);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].reason, Reason::Forbidden);
    assert_eq!(
        errors[0].to_string(),
        "spec.items: Forbidden: at most 2 items, not 3"
    );
    // A messageExpression that fails falls back to the message.
    let schema = spec_schema(
        json!([{"rule": "false", "message": "plain", "messageExpression": "self.nope"}]),
    );
    assert_eq!(
        messages(&schema, &json!({"spec": {}}), None),
        ["spec: Invalid value: plain"]
    );
}

#[test]
fn scalar_rules_show_the_value_and_run_for_each_item_and_map_value() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "items": {"type": "array", "items": {"type": "string",
            "x-kubernetes-validations": [{"rule": "self.size() <= 3", "message": "too long"}]}},
        "labels": {"type": "object", "additionalProperties": {"type": "integer",
            "x-kubernetes-validations": [{"rule": "self % 2 == 0", "message": "must be even"}]}}}}}});
    let obj = json!({"spec": {"items": ["ok", "toolong"], "labels": {"a": 2, "b": 3}}});
    assert_eq!(
        messages(&schema, &obj, None),
        [
            "spec.items[1]: Invalid value: \"toolong\": too long",
            "spec.labels[b]: Invalid value: 3: must be even",
        ]
    );
}

#[test]
fn transition_rules_run_only_on_updates_of_an_existing_value() {
    let schema =
        spec_schema(json!([{"rule": "self.name == oldSelf.name", "message": "name is immutable"}]));
    let v1 = json!({"spec": {"name": "a"}});
    let v2 = json!({"spec": {"name": "b"}});
    assert!(
        messages(&schema, &v1, None).is_empty(),
        "a create has no oldSelf"
    );
    assert!(messages(&schema, &v1, Some(&v1)).is_empty());
    assert_eq!(
        messages(&schema, &v2, Some(&v1)),
        ["spec: Invalid value: name is immutable"]
    );
    // optionalOldSelf: evaluated on create too, with oldSelf an empty optional.
    let schema = spec_schema(
        json!([{"rule": "oldSelf.hasValue() || self.name == 'first'",
        "optionalOldSelf": true, "message": "must be created as first"}]),
    );
    assert_eq!(
        messages(&schema, &v1, None),
        ["spec: Invalid value: must be created as first"]
    );
    assert!(messages(&schema, &v2, Some(&v1)).is_empty());
}

#[test]
fn an_unchanged_value_is_not_refused_by_a_newer_rule() {
    // Ratcheting: the stored object predates the rule; an update that leaves spec alone passes.
    let schema = spec_schema(json!([{"rule": "self.min > 0"}]));
    let stored = json!({"spec": {"min": 0}, "status": {"x": 1}});
    let update = json!({"spec": {"min": 0}, "status": {"x": 2}});
    assert!(messages(&schema, &update, Some(&stored)).is_empty());
    let changed = json!({"spec": {"min": -1}});
    assert_eq!(messages(&schema, &changed, Some(&stored)).len(), 1);
}

#[test]
fn list_map_items_are_correlated_by_key_other_lists_are_not() {
    let item_rule = json!([{"rule": "self.port == oldSelf.port", "message": "port is immutable"}]);
    let schema = |list_type: Value| {
        let mut list = json!({"type": "array", "items": {"type": "object",
            "x-kubernetes-validations": item_rule,
            "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}});
        if let Value::Object(extra) = list_type {
            list.as_object_mut().unwrap().extend(extra);
        }
        json!({"type": "object", "properties": {"ports": list}})
    };
    let old = json!({"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]});
    let new = json!({"ports": [{"name": "https", "port": 8443}, {"name": "http", "port": 80}]});
    let map =
        schema(json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}));
    assert_eq!(
        messages(&map, &new, Some(&old)),
        ["ports[0]: Invalid value: port is immutable"]
    );
    let atomic = schema(json!({}));
    assert!(
        messages(&atomic, &new, Some(&old)).is_empty(),
        "no oldSelf for atomic list items"
    );
}

#[test]
fn root_rules_see_the_name_but_not_the_rest_of_metadata() {
    let schema = json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "self.metadata.name.startsWith('app-')", "message": "name must start with app-"},
        {"rule": "!has(self.metadata.labels)", "message": "labels are not visible"}]});
    let obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "db", "labels": {"a": "b"}}});
    assert_eq!(
        messages(&schema, &obj, None),
        [": Invalid value: name must start with app-"]
    );
}

#[test]
fn a_rule_that_cannot_be_evaluated_says_so() {
    let schema = spec_schema(json!([{"rule": "self.missing > 1"}]));
    let errors = messages(&schema, &json!({"spec": {}}), None);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("evaluating rule: self.missing > 1"),
        "{errors:?}"
    );
}

#[test]
fn rules_that_do_not_parse_are_found_with_their_place() {
    let schema = spec_schema(
        json!([{"rule": "self.min <"}, {"rule": "true", "messageExpression": "'a' +"}]),
    );
    let errors = check_compiles(&schema, "spec.validation.openAPIV3Schema");
    let places: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        places,
        [
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule",
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[1].messageExpression",
        ]
    );
    assert!(
        errors[0].to_string().contains("compilation failed"),
        "{}",
        errors[0]
    );
}

/// The README's function table, rendered from [`FUNCTIONS`].
fn function_table() -> String {
    let mut out = String::from(
        "| library | function | supported | example rule (holds) or why not |\n|---|---|---|---|\n",
    );
    for f in FUNCTIONS {
        let (status, note) = if f.supported {
            ("yes", format!("`{}`", f.example))
        } else {
            ("no", f.example.to_string())
        };
        out.push_str(&format!(
            "| {} | {} | {status} | {} |\n",
            f.library,
            f.signature.replace('|', "\\|"),
            note.replace('|', "\\|")
        ));
    }
    out
}

#[test]
fn the_readme_table_lists_every_function_with_its_status() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("cel/README.md");
    let start = readme.find("| library |").expect("the table");
    let end = readme[start..]
        .find("\n\n")
        .map_or(readme.len(), |e| start + e + 1);
    let table = function_table();
    if std::env::var_os("KUBEFORGE_BLESS").is_some() {
        std::fs::write(
            path,
            format!("{}{table}{}", &readme[..start], &readme[end..]),
        )
        .expect("write README");
        return;
    }
    assert_eq!(
        &readme[start..end],
        table,
        "cel/README.md's table is out of date: rerun with KUBEFORGE_BLESS=1"
    );
}
