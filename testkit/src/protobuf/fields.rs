//! Which JSON fields the built-in Go types have: strict decoding (unknown and duplicate fields),
//! and dropping the unknown ones as Go's decoder does.
//!
//! kube-apiserver decodes a built-in object into its Go struct, so a field the struct lacks is
//! dropped (`fieldValidation=Ignore|Warn`) or an error (`Strict`: `strict decoding error: unknown
//! field "spec.foo", duplicate field "spec.replicas"`, in the order the body has them). The
//! table's JSON names are the struct's, so the same table that reads protobuf answers this.
//! Custom resources get the same treatment for their `metadata` (an `ObjectMeta`); the rest of
//! their fields is the CRD schema's business.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::table::{Field, Table, Ty};

/// What a JSON value is expected to be.
#[derive(Clone, Copy)]
enum At<'t> {
    /// A built-in message: its fields are known.
    Message(usize),
    /// A value of one field type (for list elements and map values).
    Ty(&'t Ty),
    /// A custom resource's root: only `metadata` is known (as `ObjectMeta`).
    CustomRoot,
    /// Anything: no field is unknown.
    Any,
}

impl<'t> At<'t> {
    /// The expectation for a field's value.
    fn of_field(f: &'t Field) -> At<'t> {
        if f.repeated {
            // A repeated field's JSON is an array of its type; `Ty` handles arrays of anything.
            return At::Ty(&f.ty);
        }
        At::of_ty(&f.ty)
    }

    fn of_ty(ty: &'t Ty) -> At<'t> {
        match ty {
            Ty::Message(m) => At::Message(*m),
            Ty::Items(_)
            | Ty::Map(..)
            | Ty::SchemaOrArray
            | Ty::SchemaOrBool
            | Ty::SchemaOrStrings => At::Ty(ty),
            _ => At::Any,
        }
    }

    /// The expectation for `key`'s value in an object expected to be `self`; `None` when the
    /// key is unknown there.
    fn child(self, table: &'t Table, key: &str, root: bool) -> Option<At<'t>> {
        match self {
            At::Message(m) => match table.find(m, key) {
                Some(f) => Some(At::of_field(f)),
                None if root && (key == "apiVersion" || key == "kind") => Some(At::Any),
                None => None,
            },
            At::CustomRoot if key == "metadata" => Some(At::Message(table.object_meta)),
            At::Ty(Ty::Map(_, value)) => Some(At::of_ty(value)),
            At::Ty(Ty::SchemaOrArray | Ty::SchemaOrBool | Ty::SchemaOrStrings) => {
                At::Message(table.schema_props).child(table, key, false)
            }
            _ => Some(At::Any),
        }
    }

    /// The expectation for an element of an array expected to be `self`.
    fn element(self) -> At<'t> {
        match self {
            At::Ty(Ty::Items(elem)) => At::of_ty(elem),
            At::Ty(Ty::SchemaOrArray) => At::Ty(&Ty::SchemaOrBool), // a schema per element
            At::Ty(ty) => At::of_ty(ty),
            _ => At::Any,
        }
    }
}

/// The strict-decoding problems of a JSON body, in kube-apiserver's words and in the order the
/// body has them: `unknown field "spec.foo"` (for built-in kinds, and a custom resource's
/// metadata) and `duplicate field "spec.replicas"` (for all).
pub(crate) fn strict_problems(
    api_version: &str,
    kind: &str,
    body: &[u8],
) -> Result<Vec<String>, serde_json::Error> {
    let table = Table::get();
    let at = table
        .kind(api_version, kind)
        .map_or(At::CustomRoot, At::Message);
    let out = RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(body);
    Walk {
        table,
        at,
        path: String::new(),
        out: &out,
        stop_at_duplicate: false,
    }
    .deserialize(&mut de)?;
    Ok(out.into_inner())
}

/// The paths of the fields of `obj` its Go type lacks (for a custom resource: of its
/// `metadata`), removed from `obj` when `drop` is set.
pub(crate) fn unknown_fields(
    api_version: &str,
    kind: &str,
    obj: &mut Value,
    drop: bool,
) -> Vec<String> {
    let table = Table::get();
    let mut out = Vec::new();
    match table.kind(api_version, kind) {
        Some(m) => unknown_in(table, At::Message(m), obj, "", true, drop, &mut out),
        None => {
            if let Some(meta) = obj.get_mut("metadata") {
                let at = At::Message(table.object_meta);
                unknown_in(table, at, meta, "metadata", false, drop, &mut out);
            }
        }
    }
    out
}

fn unknown_in(
    table: &Table,
    at: At,
    v: &mut Value,
    path: &str,
    root: bool,
    drop: bool,
    out: &mut Vec<String>,
) {
    match v {
        Value::Object(map) => {
            let mut unknown = Vec::new();
            for (key, child) in map.iter_mut() {
                let child_path = join(path, key);
                match at.child(table, key, root) {
                    Some(child_at) => {
                        unknown_in(table, child_at, child, &child_path, false, drop, out)
                    }
                    None => {
                        out.push(child_path);
                        unknown.push(key.clone());
                    }
                }
            }
            if drop {
                for key in unknown {
                    map.remove(&key);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                unknown_in(
                    table,
                    at.element(),
                    item,
                    &format!("{path}[{i}]"),
                    false,
                    drop,
                    out,
                );
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The first key a YAML body sets twice in one map, as Go's YAML decoder words it
/// (`line 9: key "foo" already set in map`); `None` when there is none (or the YAML does not
/// parse, which its decoding reports).
pub(crate) fn yaml_duplicate(body: &[u8]) -> Option<String> {
    let out = RefCell::new(Vec::new());
    let walk = Walk {
        table: Table::get(),
        at: At::Any,
        path: String::new(),
        out: &out,
        stop_at_duplicate: true,
    };
    let err = walk
        .deserialize(serde_yaml::Deserializer::from_slice(body))
        .err()?;
    let key = out.into_inner().pop()?; // set by the walk when it stopped at a duplicate
    // serde_yaml places the error at the start of the map; the key's own line is found below it.
    let map_line = err.location().map_or(1, |l| l.line());
    let line = second_key_line(body, map_line, &key).unwrap_or(map_line);
    Some(format!("line {line}: key {key:?} already set in map"))
}

/// The line of the second `key:` of the block map whose first entry is on line `from`
/// (1-based), at that entry's indentation.
fn second_key_line(body: &[u8], from: usize, key: &str) -> Option<usize> {
    let text = std::str::from_utf8(body).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.get(from.checked_sub(1)?)?;
    let indent = first.len() - first.trim_start_matches([' ', '-']).len();
    let mut seen = 0;
    for (i, line) in lines.iter().enumerate().skip(from - 1) {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let this_indent = line.len() - line.trim_start_matches([' ', '-']).len();
        if this_indent < indent && i + 1 > from {
            return None; // the map ended
        }
        let entry = &line[this_indent.min(line.len())..];
        if this_indent == indent
            && [
                format!("{key}:"),
                format!("\"{key}\":"),
                format!("'{key}':"),
            ]
            .iter()
            .any(|k| entry.starts_with(k.as_str()))
        {
            seen += 1;
            if seen == 2 {
                return Some(i + 1);
            }
        }
    }
    None
}

/// Walks a JSON body as it is parsed, noting unknown and duplicate fields as they come.
struct Walk<'a> {
    table: &'a Table,
    at: At<'a>,
    path: String,
    out: &'a RefCell<Vec<String>>,
    /// Fail at the first duplicate key (leaving the key last in `out`), for its position.
    stop_at_duplicate: bool,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let root = self.path.is_empty();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = join(&self.path, &key);
            if !seen.insert(key.clone()) {
                if self.stop_at_duplicate {
                    self.out.borrow_mut().push(key);
                    return Err(serde::de::Error::custom("duplicate key"));
                }
                self.out
                    .borrow_mut()
                    .push(format!("duplicate field {path:?}"));
            }
            let Some(at) = self.at.child(self.table, &key, root) else {
                self.out
                    .borrow_mut()
                    .push(format!("unknown field {path:?}"));
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            map.next_value_seed(Walk {
                table: self.table,
                at,
                path,
                out: self.out,
                stop_at_duplicate: self.stop_at_duplicate,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let walk = Walk {
                table: self.table,
                at: self.at.element(),
                path: format!("{}[{i}]", self.path),
                out: self.out,
                stop_at_duplicate: self.stop_at_duplicate,
            };
            if seq.next_element_seed(walk)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The body kube-apiserver 1.37 answered with `strict decoding error: unknown field
    /// "metadata.unknownMeta", unknown field "spec.unknownField", duplicate field
    /// "spec.replicas", unknown field "spec.template.spec.containers[0].bogus", unknown field
    /// "spec.template.spec.containers[0].ports[0].what"`.
    #[test]
    fn strict_problems_come_in_the_order_of_the_body() {
        let body = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"my-dep","unknownMeta":"x","labels":{"app":"nginx"}},
"spec":{"unknownField":"foo","replicas":2,"replicas":3,"selector":{"matchLabels":{"app":"nginx"}},
"template":{"metadata":{"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx","bogus":1,"ports":[{"containerPort":80,"what":2}]}]}}}}"#;
        assert_eq!(
            strict_problems("apps/v1", "Deployment", body).unwrap(),
            [
                r#"unknown field "metadata.unknownMeta""#,
                r#"unknown field "spec.unknownField""#,
                r#"duplicate field "spec.replicas""#,
                r#"unknown field "spec.template.spec.containers[0].bogus""#,
                r#"unknown field "spec.template.spec.containers[0].ports[0].what""#,
            ]
        );
        // Maps, quantities, int-or-strings and raw JSON hold anything.
        let pod = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"annotations":{"x":"y"}},"spec":{"containers":[{"name":"a","resources":{"limits":{"cpu":"1"}},"livenessProbe":{"httpGet":{"port":"http"}}}]}}"#;
        assert_eq!(
            strict_problems("v1", "Pod", pod).unwrap(),
            Vec::<String>::new()
        );
        // A custom resource: duplicates anywhere, unknown fields only in its metadata.
        let cr = br#"{"apiVersion":"x.io/v1","kind":"Noxu","metadata":{"name":"a","bogus":1},"spec":{"foo":"a","foo":"b","bar":1}}"#;
        assert_eq!(
            strict_problems("x.io/v1", "Noxu", cr).unwrap(),
            [
                r#"unknown field "metadata.bogus""#,
                r#"duplicate field "spec.foo""#
            ]
        );
    }

    /// The e2e suite's body (FieldValidation "should detect duplicates in a CR when preserving
    /// unknown fields"), to which kube-apiserver answers `line 9: key "foo" already set in map`.
    #[test]
    fn yaml_duplicates_are_reported_with_their_line() {
        let body = b"\napiVersion: x.io/v1\nkind: Noxu\nmetadata:\n  name: mytest\nspec:\n  unknown: uk1\n  foo: foo1\n  foo: foo2\n  ports:\n  - name: x\n";
        assert_eq!(
            yaml_duplicate(body).as_deref(),
            Some(r#"line 9: key "foo" already set in map"#)
        );
        assert_eq!(yaml_duplicate(b"a: 1\nb: {a: 1}\n"), None);
        assert_eq!(
            yaml_duplicate(b"a: 1\nb:\n- x: 1\n  y: 2\n  x: 3\n").as_deref(),
            Some(r#"line 5: key "x" already set in map"#)
        );
    }

    #[test]
    fn unknown_fields_are_found_and_dropped() {
        let mut dep = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "unknownMeta": 1},
            "spec": {"replicas": 1, "bogus": true, "template": {"spec": {"containers": [{"name": "c", "what": 2}]}}}});
        let found = unknown_fields("apps/v1", "Deployment", &mut dep, true);
        assert_eq!(
            found,
            [
                "metadata.unknownMeta",
                "spec.bogus",
                "spec.template.spec.containers[0].what"
            ]
        );
        assert_eq!(
            dep,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"},
                "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c"}]}}}})
        );
        let mut cr = json!({"apiVersion": "x.io/v1", "kind": "Noxu", "metadata": {"name": "a", "bogus": 1}, "spec": {"any": 1}});
        assert_eq!(
            unknown_fields("x.io/v1", "Noxu", &mut cr, false),
            ["metadata.bogus"]
        );
        assert_eq!(cr["metadata"]["bogus"], 1);
    }
}
