//! The size limits kube-apiserver and etcd put on what is stored: ConfigMap and Secret data of at
//! most 1 MiB (the API's validation), and objects no larger than etcd's default request limit,
//! 1.5 MiB. (Request bodies over 3 MiB are refused before they are read, in `handlers`.)

use serde_json::Value;

use crate::resources::ResourceInfo;
use crate::status::{ApiError, ApiResult, Cause};

/// `core.MaxSecretSize`: the most data a ConfigMap or Secret holds, in bytes.
const MAX_DATA_BYTES: usize = 1024 * 1024;

/// etcd's default `--max-request-bytes`: a larger object cannot be written.
const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// Refuses a ConfigMap whose `data` and `binaryData`, or a Secret whose `data`, add up to more
/// than 1 MiB (values only, binary values decoded), with the real server's 422.
pub fn check_data(info: &ResourceInfo, name: &str, obj: &Value) -> ApiResult<()> {
    if !info.group.is_empty() || info.custom.is_some() {
        return Ok(());
    }
    let (total, field) = match info.kind.as_str() {
        "ConfigMap" => (
            values_len(&obj["data"], false) + values_len(&obj["binaryData"], true),
            "[]",
        ),
        "Secret" => (values_len(&obj["data"], true), "data"),
        _ => return Ok(()),
    };
    if total <= MAX_DATA_BYTES {
        return Ok(());
    }
    Err(ApiError::invalid(
        &info.group,
        &info.kind,
        name,
        vec![Cause {
            reason: "FieldValueTooLong".into(),
            message: format!("Too long: may not be more than {MAX_DATA_BYTES} bytes"),
            field: field.into(),
        }],
    ))
}

/// The summed length of a map's string values; base64 values are counted decoded.
fn values_len(map: &Value, base64: bool) -> usize {
    map.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.as_str())
        .map(|s| match base64 {
            true => {
                (s.len() / 4 * 3).saturating_sub(s.bytes().rev().take_while(|&b| b == b'=').count())
            }
            false => s.len(),
        })
        .sum()
}

/// Refuses an object too large for etcd, as kube-apiserver passes on etcd's refusal (a 500).
pub fn check_object(obj: &Value) -> ApiResult<()> {
    let mut counter = ByteCount(0);
    if serde_json::to_writer(&mut counter, obj).is_ok() && counter.0 <= MAX_OBJECT_BYTES {
        return Ok(());
    }
    Err(ApiError::new(500, "", "etcdserver: request is too large"))
}

/// Counts serialised bytes without keeping them.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
