//! Query-string parameters of API requests, parsed and checked the way the real server does.

use std::collections::HashMap;

use crate::status::{ApiError, ApiResult};

/// Decoded `key=value` pairs of a query string (last value wins).
#[derive(Debug, Default, Clone)]
pub struct Query {
    params: HashMap<String, String>,
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut params = HashMap::new();
        for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.insert(percent_decode(k), percent_decode(v));
        }
        Query { params }
    }

    /// Sets a parameter (requests the server makes to itself, e.g. a dry run).
    pub fn set(&mut self, key: &str, value: &str) {
        self.params.insert(key.to_owned(), value.to_owned());
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean flag: `true`/`1` or `false`/`0`; anything else is a 400.
    /// A boolean parameter read as apimachinery's query conversion reads it: absent, `0` and
    /// `false` (any case) are false; any other value is true.
    pub fn flag(&self, key: &str) -> ApiResult<bool> {
        Ok(match self.get(key) {
            None => false,
            Some(v) => !(v == "0" || v.eq_ignore_ascii_case("false")),
        })
    }

    pub fn flag_opt(&self, key: &str) -> ApiResult<Option<bool>> {
        if self.get(key).is_none() {
            Ok(None)
        } else {
            self.flag(key).map(Some)
        }
    }

    /// A non-negative integer parameter.
    pub fn uint(&self, key: &str) -> ApiResult<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(|n| Some(n as u64))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid value for {key}: {v:?}; it must be a non-negative integer"
                    ))
                }),
        }
    }

    /// `resourceVersion`, which must be a number when present.
    pub fn resource_version(&self) -> ApiResult<Option<u64>> {
        match self.get("resourceVersion") {
            None => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid resource version: {v:?}; use a resourceVersion the server returned"
                ))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_selectors_and_flags() {
        let q = Query::parse(Some(
            "labelSelector=app%20in%20(a%2Cb)&watch=1&limit=5&x=%zz",
        ));
        assert_eq!(q.get("labelSelector"), Some("app in (a,b)"));
        assert!(q.flag("watch").expect("flag"));
        assert_eq!(q.uint("limit").expect("uint"), Some(5));
        assert_eq!(q.get("x"), Some("%zz"));
        assert!(Query::parse(Some("limit=-1")).uint("limit").is_err());
        assert!(
            Query::parse(Some("watch=maybe"))
                .flag("watch")
                .expect("flag"),
            "as kube-apiserver reads it"
        );
        assert!(
            !Query::parse(Some("watch=FALSE"))
                .flag("watch")
                .expect("flag")
        );
    }
}
