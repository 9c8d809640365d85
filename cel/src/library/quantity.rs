//! The Kubernetes quantity library: `quantity('1Gi')`, comparisons, conversions, arithmetic.

use std::cmp::Ordering;
use std::sync::Arc;

use cel::Value;
use cel::extractors::This;

use super::{Result, error, tagged, untag};

/// A Kubernetes quantity (`500m`, `1Gi`, `2e3`) as a number.
pub(super) fn parse_quantity(s: &str) -> Option<f64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() || number == "+" || number == "-" || number.ends_with('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    Some(value * factor)
}

pub(super) fn quantity(s: Arc<String>) -> Result<Value> {
    match parse_quantity(&s) {
        Some(_) => Ok(tagged("__quantity", &s)),
        None => Err(error("quantity", format!("invalid quantity: {s:?}"))),
    }
}

pub(super) fn quantity_of(v: &Value) -> Result<f64> {
    untag(v, "__quantity")
        .and_then(parse_quantity)
        .ok_or_else(|| error("quantity", "not a quantity; use quantity('…')"))
}

/// The order of two quantities (or two semver versions, which share the comparison members).
pub(super) fn compare(a: &Value, b: &Value) -> Result<Ordering> {
    if let Some(order) = super::semver::order(a, b) {
        return Ok(order);
    }
    quantity_of(a)?
        .partial_cmp(&quantity_of(b)?)
        .ok_or_else(|| error("compareTo", "the quantities are not comparable"))
}

pub(super) fn compare_to(This(a): This<Value>, b: Value) -> Result<i64> {
    Ok(match compare(&a, &b)? {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    })
}

pub(super) fn as_integer(This(q): This<Value>) -> Result<i64> {
    let value = quantity_of(&q)?;
    if value.fract() != 0.0 || value.abs() > i64::MAX as f64 {
        return Err(error(
            "asInteger",
            "the quantity is not an integer that fits in int64",
        ));
    }
    Ok(value as i64)
}

/// `q.add(x)` / `q.sub(x)` (`sign` 1 or -1), `x` a quantity or an int.
pub(super) fn arithmetic(a: &Value, b: &Value, sign: f64) -> Result<Value> {
    let x = quantity_of(a)?;
    let y = match b {
        Value::Int(i) => *i as f64,
        other => quantity_of(other)?,
    };
    let sum = x + sign * y;
    let text = if sum.fract() == 0.0 && sum.abs() < 9e15 {
        format!("{}", sum as i64)
    } else {
        format!("{sum}")
    };
    Ok(tagged("__quantity", &text))
}
