//! The Kubernetes lists library (`isSorted`, `sum`, `min`, `max`) and the regex library
//! (`find`, `findAll`).

use std::cmp::Ordering;
use std::sync::Arc;

use cel::Value;
use cel::extractors::This;

use super::{Result, error};

pub(super) fn is_sorted(This(list): This<Arc<Vec<Value>>>) -> Result<bool> {
    for pair in list.windows(2) {
        match pair[0].partial_cmp(&pair[1]) {
            Some(Ordering::Greater) => return Ok(false),
            Some(_) => {}
            None => return Err(error("isSorted", "the list's items are not comparable")),
        }
    }
    Ok(true)
}

pub(super) fn sum(This(list): This<Arc<Vec<Value>>>) -> Result<Value> {
    let mut total = match list.first() {
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(Value::UInt(_)) => Value::UInt(0),
        _ => Value::Int(0),
    };
    for item in list.iter() {
        total = match (&total, item) {
            (Value::Int(a), Value::Int(b)) => Value::Int(
                a.checked_add(*b)
                    .ok_or_else(|| error("sum", "integer overflow"))?,
            ),
            (Value::UInt(a), Value::UInt(b)) => Value::UInt(
                a.checked_add(*b)
                    .ok_or_else(|| error("sum", "integer overflow"))?,
            ),
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            _ => return Err(error("sum", "the list holds items of different types")),
        };
    }
    Ok(total)
}

/// `min()` when `MIN`, `max()` otherwise; an empty list is an error, as in Kubernetes.
pub(super) fn extreme<const MIN: bool>(This(list): This<Arc<Vec<Value>>>) -> Result<Value> {
    let name = if MIN { "min" } else { "max" };
    let mut best = list
        .first()
        .ok_or_else(|| error(name, "the list is empty"))?;
    for item in list.iter().skip(1) {
        let order = item
            .partial_cmp(best)
            .ok_or_else(|| error(name, "the list's items are not comparable"))?;
        if (MIN && order == Ordering::Less) || (!MIN && order == Ordering::Greater) {
            best = item;
        }
    }
    Ok(best.clone())
}

pub(super) fn regex(function: &str, pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|e| error(function, e))
}

pub(super) fn find(This(text): This<Arc<String>>, pattern: Arc<String>) -> Result<Value> {
    let found = regex("find", &pattern)?
        .find(&text)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    Ok(Value::String(Arc::new(found)))
}

pub(super) fn find_all(This(text): This<Arc<String>>, pattern: Arc<String>) -> Result<Value> {
    let found: Vec<Value> = regex("findAll", &pattern)?
        .find_iter(&text)
        .map(|m| Value::String(Arc::new(m.as_str().to_string())))
        .collect();
    Ok(Value::List(Arc::new(found)))
}
