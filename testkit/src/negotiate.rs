//! What an answer looks like, from the request's `Accept` header, as kube-apiserver negotiates it:
//! the encoding (JSON, YAML, or protobuf for built-in kinds) and the shape (the objects
//! themselves, a `meta.k8s.io` Table for `kubectl get`, or `PartialObjectMetadata` for metadata
//! clients — client-go's `metadata` package, kube-rs's `get_metadata` and `metadata_watcher`).
//!
//! Handlers write JSON; [`render`] turns it into the negotiated form, and watch streams ask
//! [`Output::event`] for each frame. A client that accepts nothing the server can write gets
//! kube-apiserver's 406.

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Response};
use serde_json::{Value, json};

use crate::protobuf;
use crate::status::ApiError;

/// How answers are encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Encoding {
    Json,
    Yaml,
    Protobuf,
}

/// What answers hold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// The objects (or list, or Status) themselves.
    Objects,
    /// `meta.k8s.io/v1` Table rows, as `kubectl get` asks for.
    Table,
    /// `PartialObjectMetadata(List)` of this `meta.k8s.io` version: metadata only.
    Metadata { version: String },
}

/// The negotiated form of a request's answers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Output {
    pub encoding: Encoding,
    pub shape: Shape,
}

impl Output {
    pub(crate) const JSON: Output = Output {
        encoding: Encoding::Json,
        shape: Shape::Objects,
    };

    /// Whether handlers may send their JSON as it is.
    pub(crate) fn is_plain_json(&self) -> bool {
        *self == Output::JSON
    }

    /// The Content-Type of a watch stream in this form.
    pub(crate) fn watch_content_type(&self) -> &'static str {
        match self.encoding {
            Encoding::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
            _ => "application/json",
        }
    }

    /// One watch event: a JSON line, or a length-prefixed protobuf frame. The object is already
    /// in its shape (see [`Output::reshape`]).
    pub(crate) fn event(&self, event_type: &str, object: &Value) -> Vec<u8> {
        if self.encoding == Encoding::Protobuf
            && let Some(frame) = protobuf::watch_frame(event_type, object)
        {
            return frame;
        }
        let mut line =
            serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
        line.push(b'\n');
        line
    }

    /// An object, list or Status in this output's shape: metadata clients get
    /// `PartialObjectMetadata` (or its list, items included); Status answers stay as they are.
    /// Table shaping is done by the handlers, which know the columns.
    pub(crate) fn reshape(&self, v: Value) -> Value {
        let Shape::Metadata { version } = &self.shape else {
            return v;
        };
        let api_version = format!("meta.k8s.io/{version}");
        let partial = |item: &Value| json!({"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": item["metadata"]});
        match v.get("kind").and_then(Value::as_str) {
            Some("Status") => v,
            _ if v.get("items").is_some_and(Value::is_array) => json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": api_version,
                "metadata": v["metadata"],
                "items": v["items"].as_array().into_iter().flatten().map(partial).collect::<Vec<_>>(),
            }),
            _ => partial(&v),
        }
    }

    /// Encodes a JSON answer in this output's encoding, with its Content-Type.
    fn encode(&self, v: &Value) -> (Vec<u8>, &'static str) {
        match self.encoding {
            Encoding::Protobuf => {
                if let Some(bytes) = protobuf::encode(v) {
                    return (bytes, protobuf::MEDIA_TYPE);
                }
            }
            Encoding::Yaml => {
                if let Ok(text) = serde_yaml::to_string(v) {
                    return (text.into_bytes(), "application/yaml");
                }
            }
            Encoding::Json => {}
        }
        (
            serde_json::to_vec(v).unwrap_or_default(),
            "application/json",
        )
    }
}

/// The media types answers can be written in, for the 406 message.
const ACCEPTED: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// Picks the answer's form from `Accept`: the first acceptable clause by quality, then order.
/// `protobuf_ok` says whether the resource's kind has a protobuf form (built-in kinds do, custom
/// resources do not); `watch` whether the answer is a stream (which has no YAML form).
pub(crate) fn negotiate(
    headers: &HeaderMap,
    protobuf_ok: bool,
    watch: bool,
) -> Result<Output, ApiError> {
    let mut clauses: Vec<(f32, &str)> = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| (quality(c), c))
        .collect();
    if clauses.is_empty() {
        return Ok(Output::JSON);
    }
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0)); // stable: equal qualities keep their order
    clauses
        .iter()
        .filter(|(q, _)| *q > 0.0)
        .find_map(|(_, clause)| acceptable(clause, protobuf_ok, watch))
        .ok_or_else(|| {
            ApiError::new(
                406,
                "NotAcceptable",
                format!("only the following media types are accepted: {ACCEPTED}"),
            )
        })
}

/// The form a refusal (the 406 itself) is written in: protobuf if the client accepts it at all,
/// as kube-apiserver answers with a Status in the client's own media type.
pub(crate) fn refusal_output(headers: &HeaderMap) -> Output {
    let protobuf = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|c| c.trim().starts_with(protobuf::MEDIA_TYPE));
    Output {
        encoding: if protobuf {
            Encoding::Protobuf
        } else {
            Encoding::Json
        },
        shape: Shape::Objects,
    }
}

fn quality(clause: &str) -> f32 {
    params(clause)
        .find(|(k, _)| *k == "q")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(1.0)
}

fn params(clause: &str) -> impl Iterator<Item = (&str, &str)> {
    clause.split(';').skip(1).filter_map(|p| {
        let (k, v) = p.split_once('=')?;
        Some((k.trim(), v.trim().trim_matches('"')))
    })
}

/// The output one `Accept` clause asks for, if the server can write it.
fn acceptable(clause: &str, protobuf_ok: bool, watch: bool) -> Option<Output> {
    let media = clause.split(';').next()?.trim().to_ascii_lowercase();
    let encoding = match media.as_str() {
        "application/json" | "application/*" | "*/*" => Encoding::Json,
        "application/yaml" if !watch => Encoding::Yaml,
        "application/vnd.kubernetes.protobuf" if protobuf_ok => Encoding::Protobuf,
        _ => return None,
    };
    let param = |name: &str| params(clause).find(|(k, _)| *k == name).map(|(_, v)| v);
    let shape = match param("as") {
        None => Shape::Objects,
        Some(kind) => {
            let version = param("v")?;
            if param("g")? != "meta.k8s.io" || !matches!(version, "v1" | "v1beta1") {
                return None;
            }
            match kind {
                // Tables have no protobuf form.
                "Table" if encoding != Encoding::Protobuf => Shape::Table,
                "PartialObjectMetadata" | "PartialObjectMetadataList" => Shape::Metadata {
                    version: version.to_string(),
                },
                _ => return None,
            }
        }
    };
    Some(Output { encoding, shape })
}

/// A JSON answer from a handler, in the negotiated form.
pub(crate) async fn render(output: &Output, response: Response<Body>) -> Response<Body> {
    let is_json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if output.is_plain_json() || !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let (body, content_type) = output.encode(&output.reshape(value));
    parts.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str, protobuf_ok: bool) -> Result<Output, ApiError> {
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT, HeaderValue::from_str(value).unwrap());
        negotiate(&h, protobuf_ok, false)
    }

    #[test]
    fn clients_get_the_first_form_they_accept_that_the_server_can_write() {
        let proto = |shape| Output {
            encoding: Encoding::Protobuf,
            shape,
        };
        let json = |shape| Output {
            encoding: Encoding::Json,
            shape,
        };
        // client-go typed clients
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf, */*", true).unwrap(),
            proto(Shape::Objects)
        );
        // ... on a custom resource: JSON
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf, */*", false).unwrap(),
            Output::JSON
        );
        // kubectl get
        assert_eq!(
            accept(
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
                true
            )
            .unwrap(),
            json(Shape::Table)
        );
        // client-go's metadata client
        let metadata = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
        let v1 = Shape::Metadata {
            version: "v1".into(),
        };
        assert_eq!(accept(metadata, true).unwrap(), proto(v1.clone()));
        assert_eq!(accept(metadata, false).unwrap(), json(v1));
        // qualities, and clauses the server cannot write skipped
        assert_eq!(
            accept(
                "application/json;q=0.5, application/vnd.kubernetes.protobuf",
                true
            )
            .unwrap(),
            proto(Shape::Objects)
        );
        assert_eq!(
            accept(
                "application/vnd.kubernetes.protobuf;as=Table;g=meta.k8s.io;v=v1, application/json",
                true
            )
            .unwrap(),
            Output::JSON
        );
        let e = accept("text/html", true).unwrap_err();
        assert_eq!(e.code, 406);
        assert!(e.message.contains("application/json"), "{}", e.message);
        let e = accept("application/vnd.kubernetes.protobuf", false).unwrap_err();
        assert_eq!(e.code, 406);
    }

    #[test]
    fn metadata_clients_get_partial_object_metadata() {
        let out = Output {
            encoding: Encoding::Json,
            shape: Shape::Metadata {
                version: "v1".into(),
            },
        };
        let pod = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a"}, "spec": {}});
        assert_eq!(
            out.reshape(pod.clone()),
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "a"}})
        );
        let list = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "3"}, "items": [pod]});
        let got = out.reshape(list);
        assert_eq!(got["kind"], "PartialObjectMetadataList");
        assert_eq!(got["metadata"]["resourceVersion"], "3");
        assert_eq!(got["items"][0]["kind"], "PartialObjectMetadata");
        assert!(got["items"][0].get("spec").is_none());
        let status = json!({"kind": "Status", "apiVersion": "v1", "code": 404});
        assert_eq!(out.reshape(status.clone()), status);
    }
}
