//! Literal expressions in attributes → JSON values, checked at build time.

use serde_json::{Number, Value};
use syn::spanned::Spanned;
use syn::{Expr, Lit, UnOp};

/// Converts a literal expression (`3`, `-1.5`, `"x"`, `true`, `[1, 2]`) to JSON.
pub fn expr_to_json(expr: &Expr) -> Result<Value, darling::Error> {
    match expr {
        Expr::Lit(l) => lit_to_json(&l.lit),
        Expr::Group(g) => expr_to_json(&g.expr),
        Expr::Paren(p) => expr_to_json(&p.expr),
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => match expr_to_json(&u.expr)? {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Value::from(-i))
                } else {
                    Ok(Number::from_f64(-n.as_f64().unwrap_or_default()).map_or(Value::Null, Value::Number))
                }
            }
            _ => Err(darling::Error::custom("`-` applies to numbers only").with_span(expr)),
        },
        Expr::Array(a) => a.elems.iter().map(expr_to_json).collect::<Result<Vec<_>, _>>().map(Value::Array),
        Expr::Path(p) if p.path.is_ident("null") => Ok(Value::Null),
        _ => Err(darling::Error::custom(
            "expected a literal (`3`, `-1.5`, `\"text\"`, `true`, `[1, 2]`); for objects use `default_json = r#\"{...}\"#`",
        )
        .with_span(expr)),
    }
}

fn lit_to_json(lit: &Lit) -> Result<Value, darling::Error> {
    match lit {
        Lit::Str(s) => Ok(Value::String(s.value())),
        Lit::Bool(b) => Ok(Value::Bool(b.value)),
        Lit::Int(i) => i
            .base10_parse::<i64>()
            .map(Value::from)
            .or_else(|_| i.base10_parse::<u64>().map(Value::from))
            .map_err(|e| darling::Error::custom(format!("invalid integer: {e}")).with_span(lit)),
        Lit::Float(f) => f
            .base10_parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| darling::Error::custom("invalid number").with_span(lit)),
        _ => Err(
            darling::Error::custom("expected a string, number or boolean literal").with_span(lit),
        ),
    }
}

/// A numeric attribute value (`minimum = 1`, `maximum = 2.5`, `multiple_of = -3`).
pub fn expr_to_number(expr: &Expr) -> Result<Value, darling::Error> {
    match expr_to_json(expr)? {
        n @ Value::Number(_) => Ok(n),
        _ => Err(
            darling::Error::custom("expected a number, e.g. `minimum = 1`").with_span(&expr.span()),
        ),
    }
}
