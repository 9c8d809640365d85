//! The control plane's etcd, spoken to directly over its plain-HTTP client port through etcd's
//! JSON gateway (`/v3/...`): compaction, which is how a real cluster loses history (kube-apiserver
//! compacts every five minutes). Tests use it to make "410 Gone" happen on the real server as
//! the embedded server's `Faults::compact` does on its own.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Compacts etcd up to its current revision (physically), so every older revision is gone.
/// Returns the revision compacted to.
///
/// # Errors
/// When etcd cannot be reached or answers something other than a revision.
pub async fn compact(port: u16) -> std::io::Result<i64> {
    // Any range read answers with the store's current revision in its header.
    let range = post_json(port, "/v3/kv/range", &json!({ "key": "AA==", "limit": 1 })).await?;
    let revision = range["header"]["revision"]
        .as_str()
        .and_then(|r| r.parse::<i64>().ok())
        .ok_or_else(|| invalid(format!("no revision in etcd's answer: {range}")))?;
    post_json(
        port,
        "/v3/kv/compaction",
        &json!({ "revision": revision.to_string(), "physical": true }),
    )
    .await?;
    Ok(revision)
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// `POST path` with a JSON body on etcd's client port (HTTP/1.0, so the answer ends with the
/// connection); the JSON body of a 200 answer.
async fn post_json(port: u16, path: &str, body: &Value) -> std::io::Result<Value> {
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("etcd {path} timed out"),
            )
        })??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(invalid(format!("etcd {path}: {head} {body}")));
    }
    serde_json::from_str(body).map_err(|e| invalid(format!("etcd {path}: {e}: {body}")))
}
