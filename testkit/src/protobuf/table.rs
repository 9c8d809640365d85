//! The table of built-in types: for every kind, its message; for every message, its fields.
//!
//! `table.json` is generated from the Go types of Kubernetes (client-go's scheme, the
//! apiextensions and apiregistration groups) by `scripts/protobuf-table.sh`, which reads each
//! struct field's protobuf tag, JSON name and Go type by reflection. Regenerate it when the
//! Kubernetes version moves; the fixtures beside it come from the same run.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A scalar as the wire and Go's JSON encoder see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Double,
    Float,
}

/// A field's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    Scalar(Scalar),
    /// An embedded message: an index into [`Table::messages`].
    Message(usize),
    /// `metav1.Time`: RFC 3339 seconds, `null` when zero.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds.
    MicroTime,
    /// `metav1.Duration`: Go's duration text ("1m30s").
    Duration,
    /// `resource.Quantity`: its canonical string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `RawExtension`, `FieldsV1`, apiextensions `JSON`: JSON bytes in field 1.
    Json,
    /// `JSONSchemaPropsOrArray`: a schema or a list of schemas.
    SchemaOrArray,
    /// `JSONSchemaPropsOrBool`: a schema or a boolean.
    SchemaOrBool,
    /// `JSONSchemaPropsOrStringArray`: a schema or a list of property names.
    SchemaOrStrings,
    /// A named slice (`Verbs`, `ExtraValue`) wrapped as a message of `repeated items = 1`.
    Items(Box<Ty>),
    /// A map: repeated entries of `key = 1`, `value = 2`.
    Map(Scalar, Box<Ty>),
}

/// One field of a message.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub number: u32,
    /// The JSON name; empty for an inline (embedded) struct whose fields join the parent's.
    pub json: String,
    pub ty: Ty,
    pub repeated: bool,
    /// A Go pointer: present means set, even to a zero value.
    pub pointer: bool,
    /// `omitempty`: Go's JSON encoder leaves out a zero scalar, an empty slice or map, a nil pointer.
    pub omitempty: bool,
    /// `omitzero` (Go 1.24): the zero value is left out (`creationTimestamp`).
    pub omitzero: bool,
    pub inline: bool,
}

/// One message: its Go type name and fields in declaration order.
#[derive(Debug)]
pub(crate) struct Message {
    pub name: String,
    pub fields: Vec<Field>,
}

impl Message {
    pub(crate) fn field(&self, number: u32) -> Option<usize> {
        self.fields.iter().position(|f| f.number == number)
    }
}

/// Every built-in kind's message.
#[derive(Debug)]
pub(crate) struct Table {
    kinds: HashMap<String, usize>,
    pub messages: Vec<Message>,
    /// `JSONSchemaProps`, which the schema unions hold.
    pub schema_props: usize,
    /// `ObjectMeta`, every object's `metadata` (custom resources' too).
    pub object_meta: usize,
}

#[derive(serde::Deserialize)]
struct RawTable {
    kinds: HashMap<String, String>,
    messages: HashMap<String, Vec<(u32, String, String, String)>>,
}

impl Table {
    /// The table, parsed on first use.
    pub(crate) fn get() -> &'static Table {
        static TABLE: OnceLock<Table> = OnceLock::new();
        TABLE.get_or_init(|| {
            Table::parse(include_str!("table.json"))
                .unwrap_or_else(|e| panic!("testkit/src/protobuf/table.json: {e}"))
        })
    }

    /// The message of `apiVersion` + `kind`, if it is a built-in kind.
    pub(crate) fn kind(&self, api_version: &str, kind: &str) -> Option<usize> {
        self.kinds.get(&format!("{api_version}/{kind}")).copied()
    }

    /// The scalar type of the field at the dotted JSON `path` of a kind's objects.
    pub(crate) fn scalar_at(&self, api_version: &str, kind: &str, path: &str) -> Option<Scalar> {
        let mut m = self.kind(api_version, kind)?;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let field = self.find(m, part)?;
            match (&field.ty, parts.peek()) {
                (Ty::Message(next), Some(_)) => m = *next,
                (Ty::Scalar(s), None) if !field.repeated => return Some(*s),
                _ => return None,
            }
        }
        None
    }

    /// A field by JSON name, looking through inline (embedded) structs.
    pub(crate) fn find(&self, m: usize, json: &str) -> Option<&Field> {
        self.messages[m].fields.iter().find_map(|f| match &f.ty {
            Ty::Message(inner) if f.inline => self.find(*inner, json),
            _ => (f.json == json).then_some(f),
        })
    }

    fn parse(text: &str) -> Result<Table, String> {
        let raw: RawTable = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut names: Vec<&String> = raw.messages.keys().collect();
        names.sort();
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut messages = Vec::with_capacity(names.len());
        for name in &names {
            let fields = raw.messages[*name]
                .iter()
                .map(|(number, json, ty, flags)| {
                    Ok(Field {
                        number: *number,
                        json: json.clone(),
                        ty: parse_ty(ty, &index).map_err(|e| format!("{name}.{json}: {e}"))?,
                        repeated: flags.contains('r'),
                        pointer: flags.contains('p'),
                        omitempty: flags.contains('o'),
                        omitzero: flags.contains('z'),
                        inline: flags.contains('i'),
                    })
                })
                .collect::<Result<_, String>>()?;
            messages.push(Message {
                name: (*name).clone(),
                fields,
            });
        }
        let kinds = raw
            .kinds
            .iter()
            .map(|(k, m)| {
                Ok((
                    k.clone(),
                    *index
                        .get(m.as_str())
                        .ok_or(format!("{k}: no message {m}"))?,
                ))
            })
            .collect::<Result<_, String>>()?;
        let schema_props = *index
            .get("apiextensions-apiserver/pkg/apis/apiextensions/v1.JSONSchemaProps")
            .ok_or("no JSONSchemaProps message")?;
        let object_meta = *index
            .get("apimachinery/pkg/apis/meta/v1.ObjectMeta")
            .ok_or("no ObjectMeta message")?;
        Ok(Table {
            kinds,
            messages,
            schema_props,
            object_meta,
        })
    }
}

fn parse_scalar(s: &str) -> Option<Scalar> {
    Some(match s {
        "string" => Scalar::String,
        "bytes" => Scalar::Bytes,
        "bool" => Scalar::Bool,
        "int32" => Scalar::Int32,
        "int64" => Scalar::Int64,
        "uint32" => Scalar::Uint32,
        "uint64" => Scalar::Uint64,
        "double" => Scalar::Double,
        "float" => Scalar::Float,
        _ => return None,
    })
}

fn parse_ty(s: &str, index: &HashMap<&str, usize>) -> Result<Ty, String> {
    if let Some(scalar) = parse_scalar(s) {
        return Ok(Ty::Scalar(scalar));
    }
    if let Some(name) = s.strip_prefix("m:") {
        return index
            .get(name)
            .map(|i| Ty::Message(*i))
            .ok_or_else(|| format!("no message {name}"));
    }
    if let Some(elem) = s.strip_prefix("items:") {
        return Ok(Ty::Items(Box::new(parse_ty(elem, index)?)));
    }
    if let Some(rest) = s.strip_prefix("map:") {
        let (key, value) = rest.split_once(':').ok_or("a map without a value type")?;
        let key = parse_scalar(key).ok_or_else(|| format!("map key {key}"))?;
        return Ok(Ty::Map(key, Box::new(parse_ty(value, index)?)));
    }
    Ok(match s {
        "time" => Ty::Time,
        "microtime" => Ty::MicroTime,
        "duration" => Ty::Duration,
        "quantity" => Ty::Quantity,
        "intorstring" => Ty::IntOrString,
        "json" => Ty::Json,
        "schema-or-array" => Ty::SchemaOrArray,
        "schema-or-bool" => Ty::SchemaOrBool,
        "schema-or-strings" => Ty::SchemaOrStrings,
        other => return Err(format!("unknown type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_table_parses_and_knows_the_built_in_kinds() {
        let t = Table::get();
        for (api_version, kind) in [
            ("v1", "ConfigMap"),
            ("apps/v1", "Deployment"),
            ("batch/v1", "Job"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            ("apiregistration.k8s.io/v1", "APIService"),
            ("apps/v1", "DeleteOptions"),
        ] {
            let m = t
                .kind(api_version, kind)
                .unwrap_or_else(|| panic!("{api_version} {kind}"));
            assert!(t.messages[m].name.ends_with(&format!(".{kind}")));
        }
        assert!(t.kind("example.com/v1", "Gizmo").is_none());
        assert_eq!(
            t.scalar_at("v1", "Node", "spec.unschedulable"),
            Some(Scalar::Bool)
        );
        assert_eq!(
            t.scalar_at("batch/v1", "Job", "status.succeeded"),
            Some(Scalar::Int32)
        );
        assert_eq!(
            t.scalar_at("v1", "Pod", "spec.nodeName"),
            Some(Scalar::String)
        );
        assert_eq!(t.scalar_at("v1", "Pod", "spec.containers"), None);
    }
}
