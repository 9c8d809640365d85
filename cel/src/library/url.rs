//! The Kubernetes URL library: `url('https://example.com:80/path?q=1')`, `isURL`, and the
//! `get…` members, with Go's `url.ParseRequestURI` rules for what is a URL (an absolute URL, or
//! an absolute path).

use std::sync::Arc;

use cel::Value;
use cel::extractors::This;

use super::{Result, error, tagged, untag};

/// The parts of a URL the members read.
struct Parts<'a> {
    scheme: &'a str,
    host: &'a str,
    path: &'a str,
    query: &'a str,
}

fn parse(s: &str) -> Option<Parts<'_>> {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return None;
    }
    let s = s.split_once('#').map_or(s, |(u, _)| u);
    let (rest, query) = s.split_once('?').unwrap_or((s, ""));
    if rest.starts_with('/') {
        return Some(Parts {
            scheme: "",
            host: "",
            path: rest,
            query,
        });
    }
    let (scheme, after) = rest.split_once(':')?;
    let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !valid_scheme {
        return None;
    }
    let (host, path) = match after.strip_prefix("//") {
        Some(authority) => {
            let end = authority.find('/').unwrap_or(authority.len());
            (&authority[..end], &authority[end..])
        }
        None if after.starts_with('/') => ("", after),
        None => return None,
    };
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    Some(Parts {
        scheme,
        host,
        path,
        query,
    })
}

pub(super) fn is_url(s: Arc<String>) -> bool {
    parse(&s).is_some()
}

pub(super) fn url(s: Arc<String>) -> Result<Value> {
    match parse(&s) {
        Some(_) => Ok(tagged("__url", &s)),
        None => Err(error(
            "url",
            format!("URL parse error during conversion from string: {s:?}"),
        )),
    }
}

fn parts(v: &Value) -> Result<Parts<'_>> {
    untag(v, "__url")
        .and_then(parse)
        .ok_or_else(|| error("url", "not a URL; use url('…')"))
}

fn string(s: &str) -> Value {
    Value::String(Arc::new(s.to_string()))
}

pub(super) fn scheme(This(v): This<Value>) -> Result<Value> {
    Ok(string(parts(&v)?.scheme))
}

/// The host with its port, IPv6 addresses in brackets.
pub(super) fn host(This(v): This<Value>) -> Result<Value> {
    Ok(string(parts(&v)?.host))
}

/// The host without its port (IPv6 without brackets).
pub(super) fn hostname(This(v): This<Value>) -> Result<Value> {
    let host = parts(&v)?.host;
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    Ok(string(name))
}

pub(super) fn port(This(v): This<Value>) -> Result<Value> {
    let host = parts(&v)?.host;
    let after_v6 = host.rsplit_once(']').map_or(host, |(_, rest)| rest);
    Ok(string(after_v6.rsplit_once(':').map_or("", |(_, p)| p)))
}

pub(super) fn escaped_path(This(v): This<Value>) -> Result<Value> {
    Ok(string(parts(&v)?.path))
}

/// The query as a map of each key to its list of values.
pub(super) fn query(This(v): This<Value>) -> Result<Value> {
    let mut out: std::collections::HashMap<String, Vec<Value>> = std::collections::HashMap::new();
    for pair in parts(&v)?.query.split('&').filter(|p| !p.is_empty()) {
        let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(k.to_string()).or_default().push(string(val));
    }
    let map: std::collections::HashMap<String, Value> = out
        .into_iter()
        .map(|(k, v)| (k, Value::List(Arc::new(v))))
        .collect();
    Ok(Value::Map(cel::objects::Map::from(map)))
}
