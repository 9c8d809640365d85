//! Table-driven tests: schema (and object) in, the apiserver's messages out.

use super::*;
use serde_json::{Value, json};

fn structural_errors(schema: Value) -> Vec<String> {
    match check_structural_at(&schema, "schema") {
        Ok(()) => Vec::new(),
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
    }
}

/// A schema of the shape kube-derive and controller-gen generate, using every feature.
fn widget_schema() -> Value {
    json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}},
            "spec": {
                "type": "object",
                "required": ["image"],
                "x-kubernetes-validations": [{"rule": "self.replicas <= 10", "message": "too many replicas"}],
                "properties": {
                    "image": {"type": "string", "minLength": 1, "maxLength": 30, "pattern": "^[a-z0-9./:-]+$"},
                    "replicas": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 10, "default": 1},
                    "ratio": {"type": "number", "exclusiveMinimum": true, "minimum": 0, "multipleOf": 0.5},
                    "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "mode": {"type": "string", "enum": ["Fast", "Slow"], "default": "Slow"},
                    "started": {"type": "string", "format": "date-time"},
                    "id": {"type": "string", "format": "uuid"},
                    "note": {"type": "string", "nullable": true},
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set", "maxItems": 3},
                    "ports": {
                        "type": "array",
                        "minItems": 1,
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {"name": {"type": "string"}, "port": {"type": "integer", "default": 80}}
                        }
                    },
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 2, "minProperties": 1},
                    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"level": {"type": "integer"}}},
                    "template": {
                        "type": "object",
                        "x-kubernetes-embedded-resource": true,
                        "x-kubernetes-preserve-unknown-fields": true
                    },
                    "limits": {
                        "type": "object",
                        "default": {},
                        "properties": {"cpu": {"type": "string", "default": "1"}, "memory": {"type": "string"}}
                    },
                    "choice": {
                        "type": "object",
                        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                        "oneOf": [{"required": ["a"]}, {"required": ["b"]}]
                    },
                    "flag": {"type": "boolean"}
                }
            },
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
        }
    })
}

#[test]
fn a_generated_style_schema_is_structural() {
    assert_eq!(structural_errors(widget_schema()), Vec::<String>::new());
}

#[test]
fn check_structural_paths_start_at_the_contract_root() {
    let errs = check_structural(&json!({"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"replicas": {}}}}}))
    .unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "spec.validation.openAPIV3Schema.properties[spec].properties[replicas].type: Required value: must not be empty for specified object fields"
    );
    assert_eq!(errs[0].reason, FieldErrorType::Required);
    assert_eq!(errs[0].reason.reason(), "FieldValueRequired");
    assert_eq!(
        errs[0].message,
        "Required value: must not be empty for specified object fields"
    );
}

#[test]
fn crd_versions_with_one_schema_are_reported_at_the_hoisted_path() {
    let bad = json!({"type": "object", "properties": {"a": {}}});
    let good = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let spec = |schemas: &[&Value]| {
        json!({"versions": schemas.iter().enumerate().map(|(i, s)| json!({
            "name": format!("v{}", i + 1), "schema": {"openAPIV3Schema": s}})).collect::<Vec<_>>()})
    };
    let paths = |spec: Value| -> Vec<String> {
        check_crd_spec_schemas(&spec)
            .into_iter()
            .map(|e| e.path)
            .collect()
    };
    // As kube-apiserver 1.37 answers these three CRDs.
    assert_eq!(
        paths(spec(&[&bad, &bad])),
        ["spec.validation.openAPIV3Schema.properties[a].type"]
    );
    assert_eq!(
        paths(spec(&[&bad, &good])),
        ["spec.versions[0].schema.openAPIV3Schema.properties[a].type"]
    );
    assert_eq!(
        paths(spec(&[&good, &bad])),
        ["spec.versions[1].schema.openAPIV3Schema.properties[a].type"]
    );
}

/// (what is wrong, schema, expected errors in order)
fn structural_cases() -> Vec<(&'static str, Value, Vec<&'static str>)> {
    vec![
        (
            "root without type",
            json!({"properties": {"a": {"type": "string"}}}),
            vec!["schema.type: Required value: must not be empty at the root"],
        ),
        (
            "root not an object",
            json!({"type": "string"}),
            vec![r#"schema.type: Invalid value: "string": must be object at the root"#],
        ),
        (
            "field without type",
            json!({"type": "object", "properties": {"a": {"description": "x"}}}),
            vec![
                "schema.properties[a].type: Required value: must not be empty for specified object fields",
            ],
        ),
        (
            "array items without type",
            json!({"type": "object", "properties": {"a": {"type": "array", "items": {}}}}),
            vec![
                "schema.properties[a].items.type: Required value: must not be empty for specified array items",
            ],
        ),
        (
            "array without items",
            json!({"type": "object", "properties": {"a": {"type": "array"}}}),
            vec!["schema.properties[a].items: Required value: must be specified"],
        ),
        (
            "preserve-unknown-fields and int-or-string need no type",
            json!({"type": "object", "properties": {
                "p": {"x-kubernetes-preserve-unknown-fields": true},
                "i": {"x-kubernetes-int-or-string": true}}}),
            vec![],
        ),
        (
            "uniqueItems",
            json!({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": true, "items": {"type": "string"}}}}),
            vec![
                "schema.properties[a].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            ],
        ),
        (
            "$ref",
            json!({"type": "object", "properties": {"a": {"type": "object", "$ref": "#/definitions/x"}}}),
            vec!["schema.properties[a].$ref: Forbidden: $ref is not supported"],
        ),
        (
            "definitions",
            json!({"type": "object", "definitions": {"x": {"type": "string"}}}),
            vec!["schema.definitions: Forbidden: definitions is not supported"],
        ),
        (
            "id",
            json!({"type": "object", "id": "x"}),
            vec!["schema.id: Forbidden: id is not supported"],
        ),
        (
            "additionalItems",
            json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}, "additionalItems": false}}}),
            vec![
                "schema.properties[a].additionalItems: Forbidden: additionalItems is not supported",
            ],
        ),
        (
            "patternProperties",
            json!({"type": "object", "patternProperties": {"^x": {"type": "string"}}}),
            vec!["schema.patternProperties: Forbidden: patternProperties is not supported"],
        ),
        (
            "dependencies",
            json!({"type": "object", "dependencies": {"a": ["b"]}}),
            vec!["schema.dependencies: Forbidden: dependencies is not supported"],
        ),
        (
            "type null",
            json!({"type": "object", "properties": {"a": {"type": "null"}}}),
            vec![
                r#"schema.properties[a].type: Unsupported value: "null": supported values: "array", "boolean", "integer", "number", "object", "string""#,
                "schema.properties[a].type: Forbidden: type cannot be set to null, use nullable as an alternative",
            ],
        ),
        (
            "items as an array",
            json!({"type": "object", "properties": {"a": {"type": "array", "items": [{"type": "string"}]}}}),
            vec![
                "schema.properties[a].items: Forbidden: items must be a schema object and not an array",
            ],
        ),
        (
            "additionalProperties with properties",
            json!({"type": "object", "properties": {"a": {"type": "object",
                "properties": {"x": {"type": "string"}}, "additionalProperties": {"type": "string"}}}}),
            vec![
                "schema.properties[a].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
            ],
        ),
        (
            "additionalProperties at the root",
            json!({"type": "object", "additionalProperties": {"type": "string"}}),
            vec!["schema.additionalProperties: Forbidden: must not be used at the root"],
        ),
        (
            "preserve-unknown-fields false",
            json!({"type": "object", "properties": {"a": {"type": "object", "x-kubernetes-preserve-unknown-fields": false}}}),
            vec![
                "schema.properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined",
            ],
        ),
        (
            "generic keywords inside allOf/anyOf/oneOf/not",
            json!({"type": "object", "properties": {"a": {"type": "string",
                "allOf": [{"type": "string", "default": "x", "title": "t", "description": "d", "nullable": true}],
                "anyOf": [{"x-kubernetes-preserve-unknown-fields": true, "x-kubernetes-embedded-resource": true}],
                "oneOf": [{"x-kubernetes-int-or-string": true, "x-kubernetes-list-type": "set", "x-kubernetes-list-map-keys": ["k"]}],
                "not": {"x-kubernetes-map-type": "atomic", "additionalProperties": {}, "x-kubernetes-validations": [{"rule": "true"}]}}}}),
            vec![
                // The OpenAPI checks run inside value validations too, before the structural ones.
                "schema.properties[a].not.type: Required value: must be object if x-kubernetes-map-type is specified",
                "schema.properties[a].oneOf[0].type: Required value: must be array if x-kubernetes-list-type is specified",
                r#"schema.properties[a].oneOf[0].x-kubernetes-list-type: Invalid value: "set": must be map if x-kubernetes-list-map-keys is non-empty"#,
                "schema.properties[a].allOf[0].default: Forbidden: must be undefined to be structural",
                "schema.properties[a].allOf[0].description: Forbidden: must be empty to be structural",
                "schema.properties[a].allOf[0].nullable: Forbidden: must be false to be structural",
                "schema.properties[a].allOf[0].title: Forbidden: must be empty to be structural",
                "schema.properties[a].allOf[0].type: Forbidden: must be empty to be structural",
                "schema.properties[a].anyOf[0].x-kubernetes-embedded-resource: Forbidden: must be false to be structural",
                "schema.properties[a].anyOf[0].x-kubernetes-preserve-unknown-fields: Forbidden: must be false to be structural",
                "schema.properties[a].not.additionalProperties: Forbidden: must be undefined to be structural",
                "schema.properties[a].not.x-kubernetes-map-type: Forbidden: must be undefined to be structural",
                "schema.properties[a].not.x-kubernetes-validations: Forbidden: must be empty to be structural",
                "schema.properties[a].oneOf[0].x-kubernetes-int-or-string: Forbidden: must be false to be structural",
                "schema.properties[a].oneOf[0].x-kubernetes-list-map-keys: Forbidden: must be empty to be structural",
                "schema.properties[a].oneOf[0].x-kubernetes-list-type: Forbidden: must be undefined to be structural",
            ],
        ),
        (
            "the int-or-string anyOf and allOf[0].anyOf patterns are allowed",
            json!({"type": "object", "properties": {
                "a": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "b": {"x-kubernetes-int-or-string": true, "allOf": [
                    {"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9]+%?$"}]}}}),
            vec![],
        ),
        (
            "the int-or-string anyOf shape is exempt even without int-or-string (as upstream)",
            json!({"type": "object", "properties": {
                "a": {"type": "string", "anyOf": [{"type": "integer"}, {"type": "string"}]}}}),
            vec![],
        ),
        (
            "other typed anyOf alternatives are not",
            json!({"type": "object", "properties": {
                "a": {"type": "string", "anyOf": [{"type": "string"}, {"type": "integer"}]}}}),
            vec![
                "schema.properties[a].anyOf[0].type: Forbidden: must be empty to be structural",
                "schema.properties[a].anyOf[1].type: Forbidden: must be empty to be structural",
            ],
        ),
        (
            "int-or-string with preserve-unknown-fields or embedded-resource",
            json!({"type": "object", "properties": {"a": {"x-kubernetes-int-or-string": true,
                "x-kubernetes-preserve-unknown-fields": true}}}),
            vec![
                "schema.properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true",
            ],
        ),
        (
            "metadata at the root beyond name and generateName",
            json!({"type": "object", "properties": {"metadata": {"type": "object",
                "properties": {"labels": {"type": "object"}}}}}),
            vec![
                "schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
            ],
        ),
        (
            "metadata with a description",
            json!({"type": "object", "properties": {"metadata": {"type": "object", "description": "m"}}}),
            vec![
                "schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
            ],
        ),
        (
            "metadata constraining name and generateName is fine",
            json!({"type": "object", "properties": {"metadata": {"type": "object",
                "properties": {"name": {"type": "string", "pattern": "^a"}, "generateName": {"type": "string"}}}}}),
            vec![],
        ),
        (
            "metadata not an object",
            json!({"type": "object", "properties": {"metadata": {"type": "string"}}}),
            vec![r#"schema.properties[metadata].type: Invalid value: "string": must be object"#],
        ),
        (
            "a nested field called metadata is unrestricted",
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}}}}),
            vec![],
        ),
        (
            "metadata in a value validation at the root",
            json!({"type": "object", "properties": {"metadata": {"type": "object"}},
                "allOf": [{"properties": {"metadata": {"required": ["name"]}}}]}),
            vec![
                "schema.allOf[0].properties[metadata]: Forbidden: must not be specified in a nested context",
            ],
        ),
        (
            "kind and apiVersion at the root must be strings",
            json!({"type": "object", "properties": {"kind": {"type": "integer"}}}),
            vec![r#"schema.properties[kind].type: Invalid value: "integer": must be string"#],
        ),
        (
            "embedded resource without type object or properties",
            json!({"type": "object", "properties": {"t": {"x-kubernetes-embedded-resource": true}}}),
            vec![
                "schema.properties[t].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
                "schema.properties[t].type: Required value: must be object if x-kubernetes-embedded-resource is true",
            ],
        ),
        (
            "list-type on a non-array",
            json!({"type": "object", "properties": {"a": {"type": "object", "x-kubernetes-list-type": "set"}}}),
            vec![
                r#"schema.properties[a].type: Invalid value: "object": must be array if x-kubernetes-list-type is specified"#,
            ],
        ),
        (
            "unknown list-type",
            json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "bag"}}}),
            vec![
                r#"schema.properties[a].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map""#,
            ],
        ),
        (
            "list-type map without keys",
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "map",
                "items": {"type": "object", "properties": {"n": {"type": "string"}}}}}}),
            vec![
                "schema.properties[a].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map",
            ],
        ),
        (
            "list-map-keys without list-type map",
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "set",
                "x-kubernetes-list-map-keys": ["n"], "items": {"type": "string"}}}}),
            vec![
                r#"schema.properties[a].x-kubernetes-list-type: Invalid value: "set": must be map if x-kubernetes-list-map-keys is non-empty"#,
            ],
        ),
        (
            "list-type map of scalars",
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["n"], "items": {"type": "string"}}}}),
            vec![
                r#"schema.properties[a].items.type: Invalid value: "string": must be object if parent array's x-kubernetes-list-type is map"#,
            ],
        ),
        (
            "list map keys must be item properties, scalar, required or defaulted, and distinct",
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["missing", "obj", "opt", "ok", "ok", "def"],
                "items": {"type": "object", "required": ["obj", "ok"], "properties": {
                    "obj": {"type": "object"}, "opt": {"type": "string"}, "ok": {"type": "string"},
                    "def": {"type": "string", "default": "x"}}}}}}),
            vec![
                r#"schema.properties[a].x-kubernetes-list-map-keys: Invalid value: ["missing","obj","opt","ok","ok","def"]: entries must all be names of item properties"#,
                r#"schema.properties[a].items.properties[obj].type: Invalid value: "object": must be a scalar type if parent array's x-kubernetes-list-type is map"#,
                "schema.properties[a].items.properties[opt].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                r#"schema.properties[a].x-kubernetes-list-map-keys: Invalid value: ["missing","obj","opt","ok","ok","def"]: must not contain duplicate entries"#,
            ],
        ),
        (
            "list-type set of granular objects",
            json!({"type": "object", "properties": {"a": {"type": "array", "x-kubernetes-list-type": "set",
                "items": {"type": "object", "properties": {"n": {"type": "string"}}}}}}),
            vec![
                "schema.properties[a].items.x-kubernetes-map-type: Invalid value: null: must be atomic as item of a list with x-kubernetes-list-type=set",
            ],
        ),
        (
            "map-type on a non-object and unknown map-type",
            json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string"}, "x-kubernetes-map-type": "bag"}}}),
            vec![
                r#"schema.properties[a].type: Invalid value: "array": must be object if x-kubernetes-map-type is specified"#,
                r#"schema.properties[a].x-kubernetes-map-type: Unsupported value: "bag": supported values: "atomic", "granular""#,
            ],
        ),
        (
            "pattern with lookahead (not RE2)",
            json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "^(?=a)"}}}),
            vec![
                r#"schema.properties[a].pattern: Invalid value: "^(?=a)": must be a valid regular expression, but isn't: error parsing regexp: invalid or unsupported Perl syntax: `(?=`"#,
            ],
        ),
        (
            "pattern with a backreference (not RE2)",
            json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "(a)\\1"}}}),
            vec![
                r#"schema.properties[a].pattern: Invalid value: "(a)\\1": must be a valid regular expression, but isn't: error parsing regexp: invalid escape sequence: `\1`"#,
            ],
        ),
        (
            "patterns Go accepts: \\Q…\\E, named groups, Unicode and POSIX classes",
            json!({"type": "object", "properties": {"a": {"type": "string",
                "pattern": "^\\Qa.b\\E(?P<x>\\p{L})(?<y>[[:alpha:]])\\d\\z"}}}),
            vec![],
        ),
        (
            "patterns Go refuses, with Go's messages",
            json!({"type": "object", "properties": {
                "z": {"type": "string", "pattern": "a\\Z"},
                "p": {"type": "string", "pattern": "a++"},
                "c": {"type": "string", "pattern": "[a"},
                "g": {"type": "string", "pattern": "(a"}}}),
            vec![
                r#"schema.properties[c].pattern: Invalid value: "[a": must be a valid regular expression, but isn't: error parsing regexp: missing closing ]: `[a`"#,
                r#"schema.properties[g].pattern: Invalid value: "(a": must be a valid regular expression, but isn't: error parsing regexp: missing closing ): `(a`"#,
                r#"schema.properties[p].pattern: Invalid value: "a++": must be a valid regular expression, but isn't: error parsing regexp: invalid nested repetition operator: `++`"#,
                r#"schema.properties[z].pattern: Invalid value: "a\\Z": must be a valid regular expression, but isn't: error parsing regexp: invalid escape sequence: `\Z`"#,
            ],
        ),
        (
            "CEL fieldPath must name a field",
            json!({"type": "object", "properties": {"a": {"type": "object",
                "properties": {"b": {"type": "array", "items": {"type": "string"}}},
                "x-kubernetes-validations": [
                    {"rule": "true", "fieldPath": ".b[0]"},
                    {"rule": "true", "fieldPath": "['b']"},
                    {"rule": "true", "fieldPath": ".c"},
                    {"rule": "true", "fieldPath": " "}]}}}),
            vec![
                r#"schema.properties[a].x-kubernetes-validations[2].fieldPath: Invalid value: ".c": must be a valid path"#,
                r#"schema.properties[a].x-kubernetes-validations[3].fieldPath: Invalid value: " ": must be non-empty if specified"#,
                r#"schema.properties[a].x-kubernetes-validations[3].fieldPath: Invalid value: " ": must be a valid path"#,
            ],
        ),
        (
            "defaults skip list-type uniqueness; item paths are joined as upstream joins them",
            json!({"type": "object", "properties": {
                "s": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}, "default": ["a", "a"]},
                "m": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
                    "items": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}}}, "default": [{}]}}}),
            vec!["schema.properties[m].default.[0].k: Required value"],
        ),
        (
            "CEL rule shape",
            json!({"type": "object", "properties": {"a": {"type": "string", "x-kubernetes-validations": [
                {"rule": " "},
                {"rule": "self != ''", "message": "line\nbreak"},
                {"rule": "self != ''\n&& true"},
                {"rule": "true", "reason": "Bogus", "messageExpression": " "}
            ]}}}),
            vec![
                "schema.properties[a].x-kubernetes-validations[0].rule: Required value: rule is not specified",
                r#"schema.properties[a].x-kubernetes-validations[1].message: Invalid value: "line\nbreak": must not contain line breaks"#,
                "schema.properties[a].x-kubernetes-validations[2].message: Required value: message must be specified if rule contains line breaks",
                "schema.properties[a].x-kubernetes-validations[3].messageExpression: Required value: messageExpression must be non-empty if specified",
                r#"schema.properties[a].x-kubernetes-validations[3].reason: Unsupported value: "Bogus": supported values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired""#,
            ],
        ),
        (
            "the root's value validations must name structurally specified fields",
            json!({"type": "object", "properties": {"a": {"type": "object",
                "properties": {"x": {"type": "string"}}}},
                "anyOf": [{"properties": {"a": {"properties": {"x": {"minLength": 1}, "y": {"minLength": 1}}}}},
                          {"properties": {"a": {"items": {"minLength": 1}}}}]}),
            vec![
                "schema.properties[a].items: Required value: because it is defined in schema.anyOf[1].properties[a].items",
                "schema.properties[a].properties[y]: Required value: because it is defined in schema.anyOf[0].properties[a].properties[y]",
            ],
        ),
        (
            "nested value validations are not checked for completeness (as upstream)",
            json!({"type": "object", "properties": {"a": {"type": "object",
                "properties": {"x": {"type": "string"}},
                "anyOf": [{"properties": {"y": {"minLength": 1}}}]}}}),
            vec![],
        ),
        (
            "defaults must validate",
            json!({"type": "object", "properties": {"a": {"type": "integer", "default": "one"},
                "b": {"type": "object", "properties": {"c": {"type": "integer", "minimum": 2}}, "default": {"c": 1}}}}),
            vec![
                r#"schema.properties[a].default: Invalid value: "string":  in body must be of type integer: "string""#,
                "schema.properties[b].default.c: Invalid value: 1: c in body should be greater than or equal to 2",
            ],
        ),
        (
            "defaults must be pruned",
            json!({"type": "object", "properties": {"b": {"type": "object",
                "properties": {"c": {"type": "integer"}}, "default": {"c": 1, "extra": true}}}}),
            vec![
                r#"schema.properties[b].default: Invalid value: {"c":1,"extra":true}: must not have unknown fields"#,
            ],
        ),
        (
            "defaults are validated as written, without their nested defaults",
            json!({"type": "object", "properties": {"b": {"type": "object", "default": {}, "required": ["c"],
                "properties": {"c": {"type": "integer", "default": 3}}}}}),
            vec!["schema.properties[b].default.c: Required value"],
        ),
        (
            "no defaults in top-level metadata",
            json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {"name": "x"}}}}),
            vec![
                "schema.properties[metadata].default: Forbidden: must not be set in top-level metadata",
            ],
        ),
        (
            "no embedded resources inside metadata",
            json!({"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true, "properties": {"metadata": {"type": "object",
                "properties": {"x": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}}}}}),
            vec![
                "schema.properties[spec].properties[metadata].properties[x].x-kubernetes-embedded-resource: Forbidden: must not be used inside of resource meta",
            ],
        ),
    ]
}

#[test]
fn structural_rules_report_the_apiservers_errors() {
    let mut failures = Vec::new();
    for (what, schema, want) in structural_cases() {
        let got = structural_errors(schema);
        if got != want {
            failures.push(format!("{what}:\n  got:  {got:#?}\n  want: {want:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn widget(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec})
}

fn validation_errors(obj: Value) -> Vec<String> {
    validate(&widget_schema(), &obj)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// (what is wrong, spec, expected errors)
fn validation_cases() -> Vec<(&'static str, Value, Vec<&'static str>)> {
    vec![
        (
            "a valid object",
            json!({"image": "nginx:1", "replicas": 3, "port": "http", "ratio": 1.5,
            "tags": ["a", "b"], "ports": [{"name": "a"}, {"name": "b"}], "labels": {"x": "y"},
            "started": "2024-01-02T03:04:05Z", "id": "123e4567-e89b-12d3-a456-426614174000",
            "note": null, "choice": {"a": "x"}, "template": {"apiVersion": "v1", "kind": "Pod"}}),
            vec![],
        ),
        (
            "a whole float is an integer",
            json!({"image": "x", "replicas": 2.0}),
            vec![],
        ),
        (
            "integer given a string",
            json!({"image": "x", "replicas": "3"}),
            vec![
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
            ],
        ),
        (
            "integer (format int32) given a fraction",
            json!({"image": "x", "replicas": 1.5}),
            vec![
                r#"<nil>: Invalid value: "": Checked value must be of type integer with format int32 in spec.replicas"#,
                r#"spec.replicas: Invalid value: "float64": spec.replicas in body must be of type int32: "float64""#,
            ],
        ),
        (
            "integer given a fraction",
            json!({"image": "x", "ports": [{"name": "a", "port": 1.5}]}),
            vec![
                r#"<nil>: Invalid value: "": Checked value must be of type integer (default format) in spec.ports[0].port"#,
                r#"spec.ports[0].port: Invalid value: "number": spec.ports[0].port in body must be of type integer: "number""#,
            ],
        ),
        (
            "boolean given a number",
            json!({"image": "x", "flag": 1}),
            vec![
                r#"spec.flag: Invalid value: "integer": spec.flag in body must be of type boolean: "integer""#,
            ],
        ),
        (
            "required field missing",
            json!({}),
            vec!["spec.image: Required value"],
        ),
        (
            "a required spec missing (null here means: no spec at all)",
            json!(null),
            vec!["spec: Required value"],
        ),
        (
            "null in a non-nullable field",
            json!({"image": null}),
            vec![
                r#"spec.image: Invalid value: "null": spec.image in body must be of type string: "null""#,
            ],
        ),
        (
            "enum",
            json!({"image": "x", "mode": "Medium"}),
            vec![r#"spec.mode: Unsupported value: "Medium": supported values: "Fast", "Slow""#],
        ),
        (
            "maximum",
            json!({"image": "x", "replicas": 11}),
            vec![
                "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
            ],
        ),
        (
            "minimum",
            json!({"image": "x", "replicas": -1}),
            vec![
                "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
            ],
        ),
        (
            "exclusive minimum, and multipleOf truncated for integers (as kube-openapi)",
            json!({"image": "x", "ratio": 0}),
            vec![
                "spec.ratio: Invalid value: 0: factor MultipleOf declared for spec.ratio must be positive: 0",
                "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0",
            ],
        ),
        (
            "multipleOf",
            json!({"image": "x", "ratio": 0.7}),
            vec!["spec.ratio: Invalid value: 0.7: spec.ratio in body should be a multiple of 0.5"],
        ),
        (
            "minLength (string checks stop at the first failure)",
            json!({"image": ""}),
            vec![
                r#"spec.image: Invalid value: "": spec.image in body should be at least 1 chars long"#,
            ],
        ),
        (
            "maxLength",
            json!({"image": "a".repeat(31)}),
            vec!["spec.image: Too long: may not be more than 30 bytes"],
        ),
        (
            "pattern",
            json!({"image": "NGINX"}),
            vec![
                r#"spec.image: Invalid value: "NGINX": spec.image in body should match '^[a-z0-9./:-]+$'"#,
            ],
        ),
        (
            "date-time format",
            json!({"image": "x", "started": "yesterday"}),
            vec![
                r#"spec.started: Invalid value: "yesterday": spec.started in body must be of type date-time: "yesterday""#,
            ],
        ),
        (
            "uuid format",
            json!({"image": "x", "id": "nope"}),
            vec![r#"spec.id: Invalid value: "nope": spec.id in body must be of type uuid: "nope""#],
        ),
        (
            "int-or-string",
            json!({"image": "x", "port": true}),
            vec![
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
                r#"<nil>: Invalid value: "": "spec.port" must validate at least one schema (anyOf)"#,
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer: "boolean""#,
            ],
        ),
        (
            "maxItems",
            json!({"image": "x", "tags": ["a", "b", "c", "d"]}),
            vec!["spec.tags: Too many: 4: must have at most 3 items"],
        ),
        (
            "minItems",
            json!({"image": "x", "ports": []}),
            vec!["spec.ports: Invalid value: 0: spec.ports in body should have at least 1 items"],
        ),
        (
            "set duplicates",
            json!({"image": "x", "tags": ["a", "b", "a"]}),
            vec![r#"spec.tags[2]: Duplicate value: "a""#],
        ),
        (
            "map key duplicates and item validation",
            json!({"image": "x", "ports": [{"name": "a"}, {"name": "a", "port": "x"}, {}]}),
            vec![
                r#"spec.ports[1].port: Invalid value: "string": spec.ports[1].port in body must be of type integer: "string""#,
                "spec.ports[2].name: Required value",
                r#"spec.ports[1]: Duplicate value: {"name":"a"}"#,
            ],
        ),
        (
            "additionalProperties schema and maxProperties",
            json!({"image": "x", "labels": {"a": "1", "b": 2, "c": "3"}}),
            vec![
                "spec.labels: Too many: 3: must have at most 2 items",
                r#"spec.labels.b: Invalid value: "integer": spec.labels.b in body must be of type string: "integer""#,
            ],
        ),
        (
            "minProperties",
            json!({"image": "x", "labels": {}}),
            vec![
                "spec.labels: Invalid value: 0: spec.labels in body should have at least 1 properties",
            ],
        ),
        (
            "preserve-unknown-fields still validates known fields",
            json!({"image": "x", "config": {"level": "high", "other": 1}}),
            vec![
                r#"spec.config.level: Invalid value: "string": spec.config.level in body must be of type integer: "string""#,
            ],
        ),
        (
            "embedded resource needs apiVersion and kind",
            json!({"image": "x", "template": {"metadata": {}}}),
            vec![
                "spec.template.apiVersion: Required value",
                "spec.template.kind: Required value",
            ],
        ),
        (
            "oneOf none valid",
            json!({"image": "x", "choice": {}}),
            vec![
                r#"<nil>: Invalid value: "": "spec.choice" must validate one and only one schema (oneOf). Found none valid"#,
                "spec.choice.a: Required value",
            ],
        ),
        (
            "oneOf both valid",
            json!({"image": "x", "choice": {"a": "1", "b": "2"}}),
            vec![
                r#"<nil>: Invalid value: "": "spec.choice" must validate one and only one schema (oneOf). Found 2 valid alternatives"#,
            ],
        ),
    ]
}

#[test]
fn validation_reports_the_apiservers_errors() {
    let mut failures = Vec::new();
    for (what, spec, want) in validation_cases() {
        let obj = if spec.is_null() {
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
        } else {
            widget(spec)
        };
        let got = validation_errors(obj);
        if got != want {
            failures.push(format!("{what}:\n  got:  {got:#?}\n  want: {want:#?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn formats_are_checked_like_kube_openapi() {
    // (format, value, valid) — compared with kube-apiserver 1.37.
    let cases = [
        ("date-time", "2024-01-02T03:04:05.123+01:00", true),
        ("date-time", "2024-01-02t03:04:05z", true),
        ("date-time", "2024-01-02 03:04:05", false),
        ("date-time", "2024-01-02T03:04Z", false),
        ("date-time", "2024-01-02T03:04:05", false),
        ("date-time", "2024-02-30T00:00:00Z", false),
        ("date-time", "2024-01-02T03:04:60Z", false),
        ("date", "2024-01-02", true),
        ("date", "2024-1-2", false),
        ("byte", "aGVsbG8=", true),
        ("byte", "aGVsbG8", false),
        ("byte", "", false),
        ("ipv4", "1.2.3.4", true),
        ("ipv4", "::1", false),
        ("ipv6", "::1", true),
        ("cidr", "10.0.0.0/8", true),
        ("cidr", "10.0.0.0/33", false),
        ("hostname", "EXAMPLE.com", true),
        ("hostname", "-bad.com", false),
        ("email", "a@b.c", true),
        ("email", "nope", false),
        ("mac", "0011.2233.4455", true),
        ("mac", "zz", false),
        ("duration", "3 days", true),
        ("duration", "1h30m", true),
        ("duration", "5", false),
        ("uuid4", "123e4567-e89b-42d3-a456-426614174000", true),
        ("uuid4", "123e4567-e89b-12d3-a456-426614174000", false),
        ("uri", "http://x", true),
        ("uri", "not a uri", false),
        ("no-such-format", "anything", true),
    ];
    for (format, value, valid) in cases {
        let schema =
            json!({"type": "object", "properties": {"f": {"type": "string", "format": format}}});
        let errs = validate(&schema, &json!({"f": value}));
        assert_eq!(errs.is_empty(), valid, "{format} {value:?}: {errs:?}");
        if !valid {
            assert_eq!(
                errs[0].to_string(),
                format!(
                    "f: Invalid value: {value:?}: f in body must be of type {format}: {value:?}"
                )
            );
        }
    }
}

#[test]
fn a_nullable_null_must_still_be_in_the_enum() {
    let schema = json!({"type": "object", "properties": {"n": {"type": "string", "nullable": true, "enum": ["a"]}}});
    let errs: Vec<String> = validate(&schema, &json!({"n": null}))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        vec![r#"n: Unsupported value: null: supported values: "a""#]
    );
}

#[test]
fn validation_errors_carry_status_cause_reasons() {
    let obj = widget(
        json!({"mode": "Other", "tags": ["a", "a", "b", "c"], "image": "a".repeat(40), "replicas": "x"}),
    );
    let reasons: Vec<(String, &str)> = validate(&widget_schema(), &obj)
        .into_iter()
        .map(|e| (e.path, e.reason.reason()))
        .collect();
    for want in [
        ("spec.image".to_string(), "FieldValueTooLong"),
        ("spec.mode".to_string(), "FieldValueNotSupported"),
        ("spec.replicas".to_string(), "FieldValueTypeInvalid"),
        ("spec.tags".to_string(), "FieldValueTooMany"),
        ("spec.tags[1]".to_string(), "FieldValueDuplicate"),
    ] {
        assert!(
            reasons.contains(&(want.0.clone(), want.1)),
            "{want:?} in {reasons:?}"
        );
    }
    let meta = widget(json!({"image": "x"}));
    let mut long_name = meta.clone();
    long_name["metadata"]["name"] = json!("a".repeat(21));
    assert_eq!(
        validate(&widget_schema(), &long_name)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec!["metadata.name: Too long: may not be more than 20 bytes"],
        "the schema may constrain metadata.name"
    );
}

/// (what, object before, object after pruning)
#[test]
fn pruning_drops_unknown_fields_like_the_apiserver() {
    let cases = vec![
        (
            "unknown fields at every level go; apiVersion, kind and metadata stay",
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "bogus": 1},
                "extra": 1, "spec": {"image": "x", "unknown": {"a": 1}, "ports": [{"name": "a", "junk": 1}]},
                "status": {"phase": "Ok", "other": 2}}),
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                "spec": {"image": "x", "ports": [{"name": "a"}]}, "status": {"phase": "Ok"}}),
        ),
        (
            "preserve-unknown-fields keeps unknown fields, still prunes known subtrees",
            json!({"spec": {"config": {"level": 1, "free": {"deep": true}}, "template": {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "nope": 1}, "spec": {"x": 1}}}}),
            json!({"spec": {"config": {"level": 1, "free": {"deep": true}}, "template": {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}}}}),
        ),
        (
            "additionalProperties schemas keep their keys",
            json!({"spec": {"labels": {"a": "1", "b": "2"}}}),
            json!({"spec": {"labels": {"a": "1", "b": "2"}}}),
        ),
        (
            "nulls: nullable kept, defaulted kept for defaulting, others dropped",
            json!({"spec": {"note": null, "mode": null, "image": null}}),
            json!({"spec": {"note": null, "mode": null}}),
        ),
    ];
    for (what, mut obj, want) in cases {
        prune(&widget_schema(), &mut obj);
        assert_eq!(obj, want, "{what}");
    }
}

/// (what, object before, object after defaulting)
#[test]
fn defaulting_follows_the_apiserver() {
    let cases = vec![
        (
            "missing fields of an existing object get defaults, nested defaults apply inside defaults",
            json!({"spec": {"image": "x"}}),
            json!({"spec": {"image": "x", "replicas": 1, "mode": "Slow", "limits": {"cpu": "1"}}}),
        ),
        (
            "set values are kept",
            json!({"spec": {"image": "x", "replicas": 5, "mode": "Fast", "limits": {"cpu": "2"}}}),
            json!({"spec": {"image": "x", "replicas": 5, "mode": "Fast", "limits": {"cpu": "2"}}}),
        ),
        (
            "no parent, no default: a missing spec is not created",
            json!({"metadata": {"name": "w"}}),
            json!({"metadata": {"name": "w"}}),
        ),
        (
            "a null in a non-nullable defaulted field gets the default",
            json!({"spec": {"image": "x", "mode": null, "limits": {}}}),
            json!({"spec": {"image": "x", "replicas": 1, "mode": "Slow", "limits": {"cpu": "1"}}}),
        ),
        (
            "list items get item defaults",
            json!({"spec": {"image": "x", "ports": [{"name": "a"}, {"name": "b", "port": 8080}]}}),
            json!({"spec": {"image": "x", "replicas": 1, "mode": "Slow", "limits": {"cpu": "1"},
                "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 8080}]}}),
        ),
    ];
    for (what, mut obj, want) in cases {
        apply_defaults(&widget_schema(), &mut obj);
        assert_eq!(obj, want, "{what}");
    }
    let nullable = json!({"type": "object", "properties": {"n": {"type": "string", "nullable": true, "default": "d"}}});
    let mut obj = json!({"n": null});
    apply_defaults(&nullable, &mut obj);
    assert_eq!(obj, json!({"n": null}), "a nullable null stays null");
    let pruned_default = json!({"type": "object", "properties": {"o": {"type": "object",
        "properties": {"a": {"type": "integer"}}, "default": {"a": 1, "junk": 2}}}});
    let mut obj = json!({});
    apply_defaults(&pruned_default, &mut obj);
    assert_eq!(obj, json!({"o": {"a": 1}}), "defaults are pruned");
}

#[test]
fn prune_default_validate_pipeline_accepts_and_rejects() {
    let schema = widget_schema();
    let mut obj = widget(json!({"image": "nginx", "surplus": true}));
    prune(&schema, &mut obj);
    apply_defaults(&schema, &mut obj);
    assert_eq!(validate(&schema, &obj), Vec::<FieldError>::new());
    assert_eq!(obj["spec"]["replicas"], json!(1));
    assert!(obj["spec"].get("surplus").is_none());
}
