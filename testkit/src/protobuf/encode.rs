//! An object's JSON written as the protobuf message client-go's generated code would marshal.
//!
//! The reverse of [`super::json`]: the JSON is read as Go's decoder would fill the struct, and the
//! struct written as Kubernetes' gogo-generated `Marshal` writes it — fields in number order; a
//! non-pointer scalar or struct always written (its zero value when the JSON leaves it out); a
//! nil pointer, slice, map or byte slice left out; repeated numbers unpacked (proto2); map entries
//! sorted by key. So a client decodes the same object from the protobuf answer as from the JSON
//! one. JSON fields the message has no field for are dropped, as Go's decoder drops them.

use base64::Engine;
use serde_json::{Map, Value};

use super::table::{Field, Scalar, Table, Ty};

/// Writes message `m` of `table` from the JSON object `obj`.
pub(crate) fn message(table: &Table, m: usize, obj: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut fields: Vec<&Field> = table.messages[m].fields.iter().collect();
    fields.sort_by_key(|f| f.number);
    for f in fields {
        if f.inline {
            if let Ty::Message(inner) = f.ty {
                let mut buf = Vec::new();
                message(table, inner, obj, &mut buf);
                bytes_field(f.number, &buf, out);
            }
            continue;
        }
        field(table, f, obj.get(&f.json).filter(|v| !v.is_null()), out);
    }
}

/// One field from its JSON value (`None`: absent or `null`).
fn field(table: &Table, f: &Field, value: Option<&Value>, out: &mut Vec<u8>) {
    if f.repeated {
        for item in value.and_then(Value::as_array).into_iter().flatten() {
            one(table, f.number, &f.ty, Some(item), out);
        }
        return;
    }
    if let Ty::Map(key, value_ty) = &f.ty {
        let Some(map) = value.and_then(Value::as_object) else {
            return;
        };
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for k in keys {
            let mut entry = Vec::new();
            match key {
                Scalar::String => bytes_field(1, k.as_bytes(), &mut entry),
                _ => varint_field(1, k.parse::<i64>().unwrap_or_default() as u64, &mut entry),
            }
            one(table, 2, value_ty, Some(&map[k]), &mut entry);
            bytes_field(f.number, &entry, out);
        }
        return;
    }
    let nil_when_absent = f.pointer
        || matches!(
            f.ty,
            Ty::Scalar(Scalar::Bytes)
                | Ty::Items(_)
                | Ty::SchemaOrArray
                | Ty::SchemaOrBool
                | Ty::SchemaOrStrings
        );
    if value.is_none() && nil_when_absent {
        return;
    }
    one(table, f.number, &f.ty, value, out);
}

/// One value of type `ty` as field `number`; `None` writes the Go zero value.
fn one(table: &Table, number: u32, ty: &Ty, value: Option<&Value>, out: &mut Vec<u8>) {
    match ty {
        Ty::Scalar(s) => scalar(number, *s, value, out),
        Ty::Message(m) => {
            let empty = Map::new();
            let mut buf = Vec::new();
            message(
                table,
                *m,
                value.and_then(Value::as_object).unwrap_or(&empty),
                &mut buf,
            );
            bytes_field(number, &buf, out);
        }
        Ty::Items(elem) => {
            let mut buf = Vec::new();
            for item in value.and_then(Value::as_array).into_iter().flatten() {
                one(table, 1, elem, Some(item), &mut buf);
            }
            bytes_field(number, &buf, out);
        }
        Ty::Map(..) => {} // maps are fields, handled by `field`
        Ty::Time | Ty::MicroTime => {
            let mut buf = Vec::new();
            if let Some(ts) = value
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            {
                varint_field(1, ts.as_second() as u64, &mut buf);
                let nanos = if *ty == Ty::MicroTime {
                    ts.subsec_nanosecond() / 1000 * 1000
                } else {
                    0
                };
                varint_field(2, nanos as i64 as u64, &mut buf);
            }
            bytes_field(number, &buf, out);
        }
        Ty::Duration => {
            let nanos = value
                .and_then(Value::as_str)
                .and_then(parse_go_duration)
                .unwrap_or(0);
            let mut buf = Vec::new();
            varint_field(1, nanos as u64, &mut buf);
            bytes_field(number, &buf, out);
        }
        Ty::Quantity => {
            let text = match value {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => "0".into(),
            };
            let mut buf = Vec::new();
            bytes_field(1, text.as_bytes(), &mut buf);
            bytes_field(number, &buf, out);
        }
        Ty::IntOrString => {
            let mut buf = Vec::new();
            match value {
                Some(Value::String(s)) => {
                    varint_field(1, 1, &mut buf);
                    varint_field(2, 0, &mut buf);
                    bytes_field(3, s.as_bytes(), &mut buf);
                }
                other => {
                    let n = other.and_then(Value::as_i64).unwrap_or(0) as i32;
                    varint_field(1, 0, &mut buf);
                    varint_field(2, n as i64 as u64, &mut buf);
                    bytes_field(3, b"", &mut buf);
                }
            }
            bytes_field(number, &buf, out);
        }
        Ty::Json => {
            let mut buf = Vec::new();
            if let Some(v) = value {
                let raw = serde_json::to_vec(v).unwrap_or_default();
                bytes_field(1, &raw, &mut buf);
            }
            bytes_field(number, &buf, out);
        }
        Ty::SchemaOrArray | Ty::SchemaOrBool | Ty::SchemaOrStrings => {
            let mut buf = Vec::new();
            schema_union(table, ty, value, &mut buf);
            bytes_field(number, &buf, out);
        }
    }
}

fn scalar(number: u32, s: Scalar, value: Option<&Value>, out: &mut Vec<u8>) {
    let int = || value.and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)));
    match s {
        Scalar::String => {
            let text = value.and_then(Value::as_str).unwrap_or_default();
            bytes_field(number, text.as_bytes(), out);
        }
        Scalar::Bytes => {
            let data = value
                .and_then(Value::as_str)
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .unwrap_or_default();
            bytes_field(number, &data, out);
        }
        Scalar::Bool => {
            let b = value.and_then(Value::as_bool).unwrap_or(false);
            varint_field(number, b as u64, out);
        }
        // int32 and int64 alike: negative numbers sign-extended to ten bytes, as Go does.
        Scalar::Int32 => varint_field(number, int().unwrap_or(0) as i32 as i64 as u64, out),
        Scalar::Int64 => varint_field(number, int().unwrap_or(0) as u64, out),
        Scalar::Uint32 | Scalar::Uint64 => {
            let n = value.and_then(Value::as_u64).unwrap_or(0);
            varint_field(number, n, out);
        }
        Scalar::Double => {
            let f = value.and_then(Value::as_f64).unwrap_or(0.0);
            key(number, 1, out);
            out.extend(f.to_bits().to_le_bytes());
        }
        Scalar::Float => {
            let f = value.and_then(Value::as_f64).unwrap_or(0.0) as f32;
            key(number, 5, out);
            out.extend(f.to_bits().to_le_bytes());
        }
    }
}

/// The apiextensions schema unions, filled as their `UnmarshalJSON` fills them.
fn schema_union(table: &Table, ty: &Ty, value: Option<&Value>, out: &mut Vec<u8>) {
    let schema = |number: u32, v: &Map<String, Value>, out: &mut Vec<u8>| {
        let mut buf = Vec::new();
        message(table, table.schema_props, v, &mut buf);
        bytes_field(number, &buf, out);
    };
    match (ty, value) {
        (Ty::SchemaOrBool, Some(Value::Bool(b))) => varint_field(1, *b as u64, out),
        (Ty::SchemaOrBool, Some(Value::Object(o))) => {
            varint_field(1, 1, out);
            schema(2, o, out);
        }
        (_, Some(Value::Object(o))) => schema(1, o, out),
        (Ty::SchemaOrArray, Some(Value::Array(items))) => {
            for o in items.iter().filter_map(Value::as_object) {
                schema(2, o, out);
            }
        }
        (Ty::SchemaOrStrings, Some(Value::Array(items))) => {
            for s in items.iter().filter_map(Value::as_str) {
                bytes_field(2, s.as_bytes(), out);
            }
        }
        _ => {}
    }
}

/// Go's `time.ParseDuration`: "1h2m3.5s", "1.5ms", "-90s", "0".
pub(crate) fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * unit;
    }
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

fn key(number: u32, wire_type: u8, out: &mut Vec<u8>) {
    varint(u64::from(number) << 3 | u64::from(wire_type), out);
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

pub(crate) fn varint_field(number: u32, n: u64, out: &mut Vec<u8>) {
    key(number, 0, out);
    varint(n, out);
}

pub(crate) fn bytes_field(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    key(number, 2, out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_go_parses_them() {
        for (text, nanos) in [
            ("0", 0),
            ("0s", 0),
            ("1ns", 1),
            ("1.5µs", 1_500),
            ("1.5ms", 1_500_000),
            ("1m0s", 60_000_000_000),
            ("1h2m3.5s", 3_723_500_000_000),
            ("-1m30s", -90_000_000_000),
        ] {
            assert_eq!(parse_go_duration(text), Some(nanos), "{text}");
            assert_eq!(
                super::super::json::go_duration(nanos),
                if text == "0" { "0s" } else { text }
            );
        }
        assert_eq!(parse_go_duration("5 parsecs"), None);
    }
}
