//! Protobuf (`application/vnd.kubernetes.protobuf`) for built-in kinds: request bodies read,
//! answers and watch frames written.
//!
//! client-go's typed clients, and so kubectl's generator commands (`kubectl create deployment`,
//! `create configmap|secret|namespace|job --from=cronjob/…`) and kube-controller-manager, send
//! protobuf. A body is the magic `k8s\0` and a `runtime.Unknown` envelope: the `apiVersion` and
//! `kind`, and the object's own message. The object is decoded with the table of built-in types
//! ([`table`], generated from the Go types) into the JSON Go's encoder would write for it, and
//! from there follows the JSON path: objects are stored as JSON. Custom resources have no
//! protobuf form and get a 415, as from kube-apiserver. Answers go the other way ([`encode`],
//! [`watch_frame`]): the stored JSON is written as the bytes client-go's own serializer writes
//! for the same object, for clients whose `Accept` asks for protobuf (see `negotiate`).

mod encode;
mod fields;
mod json;
mod table;
mod wire;

use serde_json::Value;

pub(crate) use self::fields::{strict_problems, unknown_fields, yaml_duplicate};

use self::table::Table;
use self::wire::{Reader, Wire};

/// The media type of Kubernetes protobuf.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
const MAGIC: &[u8] = b"k8s\0";

/// Why a protobuf body could not be read.
#[derive(Debug, PartialEq)]
pub(crate) enum DecodeError {
    /// Not a well-formed body; the message says where.
    Invalid(String),
    /// Well-formed, but of a kind with no protobuf form here (a custom resource, say).
    UnknownKind { api_version: String, kind: String },
}

/// Decodes a protobuf request body into the object's JSON, `apiVersion` and `kind` included.
pub(crate) fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    let invalid = |e: String| DecodeError::Invalid(e);
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        invalid("it does not start with the Kubernetes protobuf prefix \"k8s\\0\"".into())
    })?;
    let (mut api_version, mut kind, mut raw, mut encoding) =
        (String::new(), String::new(), &[][..], String::new());
    let mut r = Reader::new(envelope);
    while let Some(next) = r.field() {
        match next.map_err(invalid)? {
            (1, Wire::Bytes(type_meta)) => {
                let mut t = Reader::new(type_meta);
                while let Some(next) = t.field() {
                    match next.map_err(invalid)? {
                        (1, Wire::Bytes(b)) => api_version = String::from_utf8_lossy(b).into(),
                        (2, Wire::Bytes(b)) => kind = String::from_utf8_lossy(b).into(),
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(b)) => raw = b,
            (3, Wire::Bytes(b)) => encoding = String::from_utf8_lossy(b).into(),
            _ => {}
        }
    }
    if !encoding.is_empty() {
        return Err(invalid(format!(
            "its content encoding {encoding:?} is not supported; send the object unencoded"
        )));
    }
    if kind.is_empty() {
        return Err(invalid("its envelope names no kind".into()));
    }
    let table = Table::get();
    let Some(m) = table.kind(&api_version, &kind) else {
        return Err(DecodeError::UnknownKind { api_version, kind });
    };
    let mut object = serde_json::Map::new();
    object.insert("kind".into(), Value::String(kind));
    object.insert("apiVersion".into(), Value::String(api_version));
    object.extend(json::message(table, m, raw).map_err(invalid)?);
    Ok(Value::Object(object))
}

/// Encodes an object's JSON (`apiVersion` and `kind` included) as a protobuf body, envelope and
/// all; `None` for kinds with no protobuf form (custom resources, `meta.k8s.io/v1` Tables).
pub(crate) fn encode(object: &Value) -> Option<Vec<u8>> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    let table = Table::get();
    let m = table.kind(api_version, kind)?;
    let mut raw = Vec::new();
    encode::message(table, m, object.as_object()?, &mut raw);
    Some(envelope(api_version, kind, &raw))
}

/// Whether objects of `apiVersion` + `kind` have a protobuf form (built-in kinds do).
pub(crate) fn has_kind(api_version: &str, kind: &str) -> bool {
    Table::get().kind(api_version, kind).is_some()
}

/// One frame of a protobuf watch stream (`application/vnd.kubernetes.protobuf;stream=watch`): a
/// 4-byte big-endian length, then a `WatchEvent` with no envelope whose object is the enveloped
/// object — what client-go's watch decoder reads. `None` when the object has no protobuf form.
pub(crate) fn watch_frame(event_type: &str, object: &Value) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    encode::bytes_field(1, &encode(object)?, &mut raw);
    let mut event = Vec::new();
    encode::bytes_field(1, event_type.as_bytes(), &mut event);
    encode::bytes_field(2, &raw, &mut event);
    let mut frame = (event.len() as u32).to_be_bytes().to_vec();
    frame.extend(event);
    Some(frame)
}

/// `k8s\0` and the `runtime.Unknown` holding a message: its type, the bytes, and the (empty)
/// content encoding and type, as client-go's serializer writes them.
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = Vec::new();
    encode::bytes_field(1, api_version.as_bytes(), &mut type_meta);
    encode::bytes_field(2, kind.as_bytes(), &mut type_meta);
    let mut out = MAGIC.to_vec();
    encode::bytes_field(1, &type_meta, &mut out);
    encode::bytes_field(2, raw, &mut out);
    encode::bytes_field(3, b"", &mut out);
    encode::bytes_field(4, b"", &mut out);
    out
}

/// How a field selector sees a field an object leaves unset: the Go zero value's text ("false",
/// "0", ""), as kube-apiserver computes field sets from the typed object. `None` for paths that
/// are not a scalar field of a built-in kind.
pub(crate) fn unset_field_text(api_version: &str, kind: &str, path: &str) -> Option<&'static str> {
    use table::Scalar;
    Some(match Table::get().scalar_at(api_version, kind, path)? {
        Scalar::Bool => "false",
        Scalar::String | Scalar::Bytes => "",
        _ => "0",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each fixture, written by Go's protobuf serializer, decodes to exactly the JSON Go's JSON
    /// serializer writes for the object decoded from those bytes.
    #[test]
    fn bodies_from_client_go_decode_to_the_json_client_go_would_send() {
        for (path, pb, want) in fixtures() {
            let got = decode(&pb).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
            assert_eq!(got, want, "{}", path.display());
        }
    }

    /// Every fixture: its path, the protobuf body client-go wrote, and the JSON it stands for.
    fn fixtures() -> Vec<(std::path::PathBuf, Vec<u8>, Value)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/protobuf/fixtures");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("fixtures") {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "pb") {
                continue;
            }
            let pb = std::fs::read(&path).unwrap();
            let json = std::fs::read(path.with_extension("json")).unwrap();
            out.push((path, pb, serde_json::from_slice(&json).unwrap()));
        }
        assert!(out.len() >= 10, "only {} fixtures", out.len());
        out
    }

    /// Each fixture's JSON encodes to exactly the bytes Go's protobuf serializer wrote.
    #[test]
    fn objects_encode_to_the_bytes_client_go_writes() {
        for (path, want, json) in fixtures() {
            let got = encode(&json).unwrap_or_else(|| panic!("{}: no message", path.display()));
            if got != want {
                let back = decode(&got).map(|v| v.to_string());
                panic!(
                    "{}: encoded bytes differ\n got {:?}\nwant {:?}\nwhich decode to {back:?}",
                    path.display(),
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
            }
        }
    }

    /// A watch event frames as kube-apiserver frames it for client-go.
    #[test]
    fn watch_events_frame_as_kube_apiserver_frames_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/protobuf/fixtures");
        let want = std::fs::read(dir.join("configmap.watch-frame")).unwrap();
        let object: Value =
            serde_json::from_slice(&std::fs::read(dir.join("configmap.json")).unwrap()).unwrap();
        assert_eq!(watch_frame("MODIFIED", &object), Some(want));
        let custom = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Gizmo"});
        assert_eq!(watch_frame("ADDED", &custom), None);
    }

    /// Damaged bodies (bytes changed, cut short) are errors or some object, never a panic; a
    /// schema nested a thousand deep is refused rather than overflowing the stack.
    #[test]
    fn damaged_and_hostile_bodies_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let mut tried = 0;
        for (_, pb, _) in fixtures() {
            for _ in 0..300 {
                let mut bad = pb.clone();
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(MAGIC.len()..bad.len());
                    bad[i] = rng.random();
                }
                bad.truncate(rng.random_range(MAGIC.len()..=bad.len()));
                let _ = decode(&bad);
                tried += 1;
            }
        }
        assert!(tried > 3000);

        // JSONSchemaProps { not: JSONSchemaProps { not: … } } a thousand deep (`not` is field 28).
        let mut schema: Vec<u8> = Vec::new();
        for _ in 0..1000 {
            let mut outer = vec![0xe2, 0x01]; // field 28, length-delimited
            outer.extend(varint(schema.len()));
            outer.extend(&schema);
            schema = outer;
        }
        let meta = [
            &[0x0a, 23][..],
            b"apiextensions.k8s.io/v1",
            &[0x12, 24],
            b"CustomResourceDefinition",
        ]
        .concat();
        let mut body = MAGIC.to_vec();
        body.push(0x0a);
        body.extend(varint(meta.len()));
        body.extend(&meta);
        // CRD.spec(2).versions(7)[0].schema(4).openAPIV3Schema(1) = the nested schema
        let nest =
            |field: u8, inner: Vec<u8>| [vec![field << 3 | 2], varint(inner.len()), inner].concat();
        let crd = nest(2, nest(7, nest(4, nest(1, schema))));
        body.push(0x12);
        body.extend(varint(crd.len()));
        body.extend(&crd);
        let Err(DecodeError::Invalid(e)) = decode(&body) else {
            panic!("a 1000-deep schema was accepted")
        };
        assert!(e.contains("nest more than"), "{e}");
    }

    fn varint(mut n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out
    }

    #[test]
    fn bad_bodies_are_errors_that_say_what_is_wrong() {
        let Err(DecodeError::Invalid(e)) = decode(b"{\"kind\":\"Pod\"}") else {
            panic!()
        };
        assert!(e.contains("k8s\\0"), "{e}");
        // A custom kind: the envelope is fine, the kind has no protobuf form.
        let mut body = MAGIC.to_vec();
        let meta = [&[0x0a, 14][..], b"example.com/v1", &[0x12, 5], b"Gizmo"].concat();
        body.extend([0x0a, meta.len() as u8]);
        body.extend(&meta);
        assert_eq!(
            decode(&body),
            Err(DecodeError::UnknownKind {
                api_version: "example.com/v1".into(),
                kind: "Gizmo".into()
            })
        );
        // A truncated object.
        let mut pod = MAGIC.to_vec();
        let meta = [&[0x0a, 2][..], b"v1", &[0x12, 3], b"Pod"].concat();
        pod.extend([0x0a, meta.len() as u8]);
        pod.extend(&meta);
        pod.extend([0x12, 3, 0x0a, 9, 0x0a]);
        let Err(DecodeError::Invalid(e)) = decode(&pod) else {
            panic!()
        };
        assert!(e.contains("Pod"), "{e}");
    }
}
