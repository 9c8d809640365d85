//! PATCH bodies: JSON merge patch, JSON patch, and strategic merge patch.

use serde_json::Value;

use crate::status::{ApiError, ApiResult};

/// The patch types the server accepts, by Content-Type.
pub const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> ApiResult<PatchType> {
        match ct {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(other, PATCH_TYPES)),
        }
    }
}

fn parse_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))
}

/// Applies a (non-apply) patch to `current`. `kind` (`apps/v1/Deployment`) selects the merge
/// keys of strategic merge patch.
pub fn apply_patch(
    kind_of_patch: PatchType,
    current: &Value,
    body: &[u8],
    kind: &str,
) -> ApiResult<Value> {
    let mut doc = current.clone();
    match kind_of_patch {
        PatchType::Merge => {
            let p = parse_json(body)?;
            if !p.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut doc, &p);
        }
        PatchType::Json => {
            let p = parse_json(body)?;
            let ops: json_patch::Patch = serde_json::from_value(p).map_err(|e| {
                ApiError::bad_request(format!(
                    "the JSON patch is not a list of valid operations: {e}"
                ))
            })?;
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the JSON patch could not be applied: {e}"),
                )
            })?;
        }
        PatchType::Strategic => {
            let p = parse_json(body)?;
            if !p.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            doc = crate::strategic::strategic_merge(current, &p, kind).map_err(|e| {
                ApiError::bad_request(format!(
                    "the strategic merge patch could not be applied: {e}"
                ))
            })?;
        }
        PatchType::Apply => {
            return Err(ApiError::internal(
                "server-side apply is handled by the apply module",
            ));
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_null_removes_a_key() {
        let cur = json!({"data": {"a": "1", "b": "2"}});
        let out = apply_patch(
            PatchType::Merge,
            &cur,
            br#"{"data": {"a": null, "c": "3"}}"#,
            "v1/ConfigMap",
        )
        .expect("patched");
        assert_eq!(out, json!({"data": {"b": "2", "c": "3"}}));
    }

    #[test]
    fn json_patch_test_failure_is_422() {
        let cur = json!({"data": {"a": "1"}});
        let err = apply_patch(
            PatchType::Json,
            &cur,
            br#"[{"op": "test", "path": "/data/a", "value": "2"}]"#,
            "v1/ConfigMap",
        );
        assert_eq!(err.map_err(|e| e.code), Err(422));
        assert_eq!(
            PatchType::from_content_type("text/plain").map_err(|e| e.code),
            Err(415)
        );
    }
}
