//! A decoded protobuf message, written as the JSON Go's encoder writes the same Go struct.
//!
//! The rules are encoding/json's applied to the struct client-go's decoder would fill: fields
//! in declaration order, `omitempty` leaving out zero scalars, empty slices and maps and nil
//! pointers; a nil slice or map without `omitempty` is `null`; a struct is always written; and
//! the types with their own JSON form (`Time`, `Quantity`, `IntOrString`, raw JSON, the schema
//! unions) written as their `MarshalJSON` does. So a protobuf body and the JSON a Go client
//! would have sent for the same object store the same thing.

use base64::Engine;
use serde_json::{Map, Number, Value};

use super::table::{Field, Scalar, Table, Ty};
use super::wire::{Reader, Wire};

/// How deeply messages may nest (protobuf's usual recursion limit). JSONSchemaProps holds
/// itself, so without a limit a small hostile body could nest deep enough to overflow the stack.
const MAX_DEPTH: usize = 100;

thread_local! {
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts one level of nesting for as long as it lives.
struct Nested;

impl Nested {
    fn enter() -> Result<Nested, String> {
        let depth = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        let guard = Nested;
        if depth > MAX_DEPTH {
            return Err(format!("messages nest more than {MAX_DEPTH} deep"));
        }
        Ok(guard)
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Decodes message `m` of `table` from `bytes`.
pub(crate) fn message(table: &Table, m: usize, bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let _nested = Nested::enter()?;
    let msg = &table.messages[m];
    let mut seen: Vec<Vec<Wire>> = vec![Vec::new(); msg.fields.len()];
    let mut reader = Reader::new(bytes);
    while let Some(next) = reader.field() {
        let (number, wire) = next.map_err(|e| format!("{}: {e}", short(&msg.name)))?;
        // Unknown field numbers are skipped, as protobuf readers do (a newer client's fields).
        if let Some(i) = msg.field(number) {
            seen[i].push(wire);
        }
    }
    let mut out = Map::new();
    for (field, wires) in msg.fields.iter().zip(&seen) {
        let value = field_value(table, field, wires)
            .map_err(|e| format!("{}.{}: {e}", short(&msg.name), field.json))?;
        match value {
            Some(Value::Object(inner)) if field.inline => out.extend(inner),
            Some(v) => {
                out.insert(field.json.clone(), v);
            }
            None => {}
        }
    }
    Ok(out)
}

/// `api/core/v1.Pod` → `Pod`, for error messages.
fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// The JSON value of one field from its occurrences on the wire; `None` leaves it out.
fn field_value(table: &Table, f: &Field, wires: &[Wire]) -> Result<Option<Value>, String> {
    let value = go_value(table, f, wires)?;
    if f.omitzero
        && value
            .as_ref()
            .is_some_and(|v| v.is_null() || is_zero_scalar(&f.ty, v))
    {
        return Ok(None);
    }
    Ok(value)
}

fn go_value(table: &Table, f: &Field, wires: &[Wire]) -> Result<Option<Value>, String> {
    if f.repeated {
        let mut items = Vec::new();
        for w in wires {
            push_elements(table, &f.ty, *w, &mut items)?;
        }
        return Ok(if items.is_empty() {
            nil(f)
        } else {
            Some(Value::Array(items))
        });
    }
    if let Ty::Map(key, value) = &f.ty {
        let mut map = Map::new();
        for w in wires {
            let (k, v) = map_entry(table, *key, value, *w)?;
            map.insert(k, v);
        }
        return Ok(if map.is_empty() {
            nil(f)
        } else {
            Some(Value::Object(map))
        });
    }
    // A field seen twice: the last wins, as in protobuf.
    let Some(wire) = wires.last() else {
        return Ok(if f.pointer { nil(f) } else { zero(table, f)? });
    };
    let value = convert(table, &f.ty, *wire)?;
    if matches!(&value, Value::Array(items) if items.is_empty()) {
        return Ok(nil(f)); // a named slice with no items decodes to nil
    }
    if f.omitempty && !f.pointer && is_zero_scalar(&f.ty, &value) {
        return Ok(None);
    }
    Ok(Some(value))
}

/// A nil pointer, slice or map: left out under `omitempty`, else `null`.
fn nil(f: &Field) -> Option<Value> {
    (!f.omitempty).then_some(Value::Null)
}

/// A non-pointer field absent from the wire: the Go zero value's JSON.
fn zero(table: &Table, f: &Field) -> Result<Option<Value>, String> {
    Ok(match &f.ty {
        Ty::Scalar(Scalar::Bytes) | Ty::Items(_) | Ty::Map(..) => nil(f),
        Ty::Scalar(_) if f.omitempty => None,
        Ty::Scalar(Scalar::String) => Some(Value::String(String::new())),
        Ty::Scalar(Scalar::Bool) => Some(Value::Bool(false)),
        Ty::Scalar(_) | Ty::IntOrString => Some(Value::from(0)),
        Ty::Message(m) => Some(Value::Object(message(table, *m, &[])?)),
        Ty::Duration => Some(Value::from("0s")),
        Ty::Quantity => Some(Value::from("0")),
        Ty::Time
        | Ty::MicroTime
        | Ty::Json
        | Ty::SchemaOrArray
        | Ty::SchemaOrBool
        | Ty::SchemaOrStrings => Some(Value::Null),
    })
}

fn is_zero_scalar(ty: &Ty, v: &Value) -> bool {
    match (ty, v) {
        (Ty::Scalar(Scalar::String | Scalar::Bytes), Value::String(s)) => s.is_empty(),
        (Ty::Scalar(Scalar::Bool), Value::Bool(b)) => !b,
        (Ty::Scalar(_), Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// One occurrence of a repeated field: one element, or several when numbers are packed.
fn push_elements(table: &Table, ty: &Ty, wire: Wire, out: &mut Vec<Value>) -> Result<(), String> {
    let packable = matches!(ty, Ty::Scalar(s) if !matches!(s, Scalar::String | Scalar::Bytes));
    match (packable, wire) {
        (true, Wire::Bytes(bytes)) => {
            let mut r = Reader::new(bytes);
            while !r.is_empty() {
                let w = match ty {
                    Ty::Scalar(Scalar::Double) => Wire::Fixed64(r.fixed64()?),
                    Ty::Scalar(Scalar::Float) => Wire::Fixed32(r.fixed32()?),
                    _ => Wire::Varint(r.varint()?),
                };
                out.push(convert(table, ty, w)?);
            }
        }
        _ => out.push(convert(table, ty, wire)?),
    }
    Ok(())
}

fn map_entry(
    table: &Table,
    key: Scalar,
    value: &Ty,
    wire: Wire,
) -> Result<(String, Value), String> {
    let Wire::Bytes(bytes) = wire else {
        return Err("a map entry is not length-delimited".into());
    };
    let (mut k, mut v) = (None, None);
    let mut r = Reader::new(bytes);
    while let Some(next) = r.field() {
        match next? {
            (1, w) => k = Some(w),
            (2, w) => v = Some(w),
            _ => {}
        }
    }
    let k = match k {
        Some(w) => match convert(table, &Ty::Scalar(key), w)? {
            Value::String(s) => s,
            other => other.to_string(),
        },
        None => String::new(),
    };
    let v = match v {
        Some(w) => convert(table, value, w)?,
        None => match value {
            Ty::Message(m) => Value::Object(message(table, *m, &[])?),
            Ty::Scalar(Scalar::String) => Value::from(""),
            Ty::Quantity => Value::from("0"),
            _ => Value::Null,
        },
    };
    Ok((k, v))
}

fn bytes_of<'a>(wire: Wire<'a>, what: &str) -> Result<&'a [u8], String> {
    match wire {
        Wire::Bytes(b) => Ok(b),
        other => Err(format!("expected {what} (length-delimited), got {other:?}")),
    }
}

/// The fields of a small special message by number (last occurrence wins).
fn fields_of(bytes: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, String> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while let Some(next) = r.field() {
        out.push(next?);
    }
    Ok(out)
}

fn varint_of(fields: &[(u32, Wire)], n: u32) -> u64 {
    fields
        .iter()
        .rev()
        .find_map(|(k, w)| match (k, w) {
            (k, Wire::Varint(v)) if *k == n => Some(*v),
            _ => None,
        })
        .unwrap_or(0)
}

fn bytes_field<'a>(fields: &[(u32, Wire<'a>)], n: u32) -> Option<&'a [u8]> {
    fields.iter().rev().find_map(|(k, w)| match (k, w) {
        (k, Wire::Bytes(b)) if *k == n => Some(*b),
        _ => None,
    })
}

fn string_field(fields: &[(u32, Wire)], n: u32) -> String {
    bytes_field(fields, n)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// One value of type `ty` from the wire.
fn convert(table: &Table, ty: &Ty, wire: Wire) -> Result<Value, String> {
    match ty {
        Ty::Scalar(s) => scalar(*s, wire),
        Ty::Message(m) => Ok(Value::Object(message(
            table,
            *m,
            bytes_of(wire, "a message")?,
        )?)),
        Ty::Items(elem) => {
            let mut items = Vec::new();
            for (n, w) in fields_of(bytes_of(wire, "a list")?)? {
                if n == 1 {
                    push_elements(table, elem, w, &mut items)?;
                }
            }
            Ok(Value::Array(items))
        }
        Ty::Map(..) => Err("a map outside a field".into()),
        Ty::Time | Ty::MicroTime => time(ty == &Ty::MicroTime, bytes_of(wire, "a time")?),
        Ty::Duration => {
            let f = fields_of(bytes_of(wire, "a duration")?)?;
            Ok(Value::String(go_duration(varint_of(&f, 1) as i64)))
        }
        Ty::Quantity => {
            let s = string_field(&fields_of(bytes_of(wire, "a quantity")?)?, 1);
            Ok(Value::String(if s.is_empty() { "0".into() } else { s }))
        }
        Ty::IntOrString => {
            let f = fields_of(bytes_of(wire, "an int-or-string")?)?;
            Ok(match varint_of(&f, 1) {
                0 => Value::from(varint_of(&f, 2) as i64 as i32),
                _ => Value::String(string_field(&f, 3)),
            })
        }
        Ty::Json => {
            let raw = bytes_field(&fields_of(bytes_of(wire, "raw JSON")?)?, 1).unwrap_or_default();
            if raw.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(raw).map_err(|e| format!("the embedded JSON is not valid: {e}"))
        }
        Ty::SchemaOrArray | Ty::SchemaOrBool | Ty::SchemaOrStrings => {
            schema_union(table, ty, bytes_of(wire, "a schema")?)
        }
    }
}

fn scalar(s: Scalar, wire: Wire) -> Result<Value, String> {
    Ok(match (s, wire) {
        (Scalar::String, Wire::Bytes(b)) => Value::String(String::from_utf8_lossy(b).into_owned()),
        (Scalar::Bytes, Wire::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Scalar::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        (Scalar::Int32, Wire::Varint(v)) => Value::from(v as i64 as i32),
        (Scalar::Int64, Wire::Varint(v)) => Value::from(v as i64),
        (Scalar::Uint32, Wire::Varint(v)) => Value::from(v as u32),
        (Scalar::Uint64, Wire::Varint(v)) => Value::from(v),
        (Scalar::Double, Wire::Fixed64(v)) => float(f64::from_bits(v))?,
        (Scalar::Float, Wire::Fixed32(v)) => {
            // Go writes a float32 with the shortest digits that round-trip as float32.
            float(f32::from_bits(v).to_string().parse().unwrap_or(f64::NAN))?
        }
        (s, w) => return Err(format!("expected {s:?}, got {w:?}")),
    })
}

/// A float as Go's encoder writes it: integral values without a fraction.
fn float(f: f64) -> Result<Value, String> {
    if !f.is_finite() {
        return Err(format!("{f} has no JSON form"));
    }
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return Ok(Value::from(f as i64));
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("{f} has no JSON form"))
}

/// `Time` (seconds; Go drops the nanoseconds when decoding) or `MicroTime` (microseconds), in
/// UTC as RFC 3339; an empty message is the zero time, which Go writes as `null`.
fn time(micro: bool, bytes: &[u8]) -> Result<Value, String> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let f = fields_of(bytes)?;
    let seconds = varint_of(&f, 1) as i64;
    let ts = jiff::Timestamp::from_second(seconds).map_err(|e| format!("time {seconds}: {e}"))?;
    let text = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(Value::String(if micro {
        let nanos = (varint_of(&f, 2) as i64 as i32).clamp(0, 999_999_999);
        format!("{text}.{:06}Z", nanos / 1000)
    } else {
        format!("{text}Z")
    }))
}

/// The apiextensions schema unions, written as their `MarshalJSON` does.
fn schema_union(table: &Table, ty: &Ty, bytes: &[u8]) -> Result<Value, String> {
    let schema = |b: &[u8]| message(table, table.schema_props, b).map(Value::Object);
    let f = fields_of(bytes)?;
    let one = bytes_field(
        &f,
        match ty {
            Ty::SchemaOrBool => 2,
            _ => 1,
        },
    );
    let many: Vec<&[u8]> = f
        .iter()
        .filter_map(|(n, w)| match (n, w) {
            (2, Wire::Bytes(b)) if *ty != Ty::SchemaOrBool => Some(*b),
            _ => None,
        })
        .collect();
    match ty {
        Ty::SchemaOrArray if !many.is_empty() => many.into_iter().map(schema).collect(),
        Ty::SchemaOrStrings if !many.is_empty() => Ok(Value::Array(
            many.iter()
                .map(|b| Value::String(String::from_utf8_lossy(b).into_owned()))
                .collect(),
        )),
        Ty::SchemaOrBool if one.is_none() => Ok(Value::Bool(varint_of(&f, 1) != 0)),
        _ => one.map_or(Ok(Value::Null), schema),
    }
}

/// Go's `time.Duration.String()`: "1h2m3.5s", "1m0s", "1.5ms", "0s".
pub(crate) fn go_duration(nanos: i64) -> String {
    fn decimal(v: u64, unit: u64) -> String {
        let (whole, frac) = (v / unit, v % unit);
        if frac == 0 {
            return whole.to_string();
        }
        let digits = format!("{frac:0width$}", width = unit.ilog10() as usize);
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
    if nanos == 0 {
        return "0s".into();
    }
    let u = nanos.unsigned_abs();
    let text = if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", decimal(u, 1_000))
    } else if u < 1_000_000_000 {
        format!("{}ms", decimal(u, 1_000_000))
    } else {
        let (h, rest) = (u / 3_600_000_000_000, u % 3_600_000_000_000);
        let (m, s) = (rest / 60_000_000_000, rest % 60_000_000_000);
        let mut out = String::new();
        if h > 0 {
            out += &format!("{h}h");
        }
        if h > 0 || m > 0 {
            out += &format!("{m}m");
        }
        out + &decimal(s, 1_000_000_000) + "s"
    };
    if nanos < 0 { format!("-{text}") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_prints_them() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (1_500_000, "1.5ms"),
            (1_000_000_000, "1s"),
            (60_000_000_000, "1m0s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-90_000_000_000, "-1m30s"),
        ] {
            assert_eq!(go_duration(nanos), text, "{nanos}");
        }
    }
}
