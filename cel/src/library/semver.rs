//! The Kubernetes semver library: `semver('1.2.3')`, `isSemver`, `major`/`minor`/`patch`, and
//! comparisons (pre-release versions order before their release, as in semver 2.0).

use std::cmp::Ordering;
use std::sync::Arc;

use cel::Value;
use cel::extractors::This;

use super::{Result, error, tagged, untag};

/// `major.minor.patch[-pre][+build]`, numbers without leading zeros.
pub(super) fn parse(s: &str) -> Option<(u64, u64, u64, Option<&str>)> {
    let s = s.split_once('+').map_or(s, |(v, _)| v);
    let (core, pre) = match s.split_once('-') {
        Some((c, p)) if !p.is_empty() => (c, Some(p)),
        Some(_) => return None,
        None => (s, None),
    };
    let mut nums = core.split('.').map(|n| {
        let ok = !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
            && (n == "0" || !n.starts_with('0'));
        ok.then(|| n.parse::<u64>().ok()).flatten()
    });
    let v = (nums.next()??, nums.next()??, nums.next()??);
    if nums.next().is_some() {
        return None;
    }
    Some((v.0, v.1, v.2, pre))
}

pub(super) fn is_semver(s: Arc<String>) -> bool {
    parse(&s).is_some()
}

pub(super) fn semver(s: Arc<String>) -> Result<Value> {
    match parse(&s) {
        Some(_) => Ok(tagged("__semver", &s)),
        None => Err(error("semver", format!("could not parse {s:?} as semver"))),
    }
}

fn version(v: &Value) -> Option<(u64, u64, u64, Option<&str>)> {
    untag(v, "__semver").and_then(parse)
}

/// The order of two semver values, `None` when they are not both semver values.
pub(super) fn order(a: &Value, b: &Value) -> Option<Ordering> {
    let (a, b) = (version(a)?, version(b)?);
    Some(
        (a.0, a.1, a.2)
            .cmp(&(b.0, b.1, b.2))
            .then(match (a.3, b.3) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(x), Some(y)) => x.cmp(y),
            }),
    )
}

/// `major()`, `minor()` or `patch()`.
pub(super) fn part<const I: usize>(This(v): This<Value>) -> Result<i64> {
    let v = version(&v).ok_or_else(|| error("semver", "not a semver; use semver('…')"))?;
    Ok([v.0, v.1, v.2][I] as i64)
}
