//! Kubernetes quantities (`"250m"`, `"1.5"`, `"128Mi"`, `"1e3"`) as whole milli-units, the unit
//! the replica calculator works in (upstream `resource.Quantity.MilliValue`, which rounds up).

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Why a quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a Kubernetes quantity (a number with an optional suffix such as m, k, M, Gi, or \
     an exponent such as 1e3)"
)]
pub struct BadQuantity(pub String);

/// `q` in milli-units, rounded up (`"100m"` → 100, `"1"` → 1000, `"1Ki"` → 1,024,000).
///
/// # Errors
/// A string that is not a quantity.
pub fn milli(q: &Quantity) -> Result<i64, BadQuantity> {
    parse_milli(&q.0)
}

/// [`milli`] of a string.
///
/// # Errors
/// A string that is not a quantity.
pub fn parse_milli(text: &str) -> Result<i64, BadQuantity> {
    let bad = || BadQuantity(text.to_owned());
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale = match suffix {
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
        exp if exp.starts_with(['e', 'E']) => {
            let power: i32 = exp[1..].parse().map_err(|_| bad())?;
            10f64.powi(power)
        }
        _ => return Err(bad()),
    };
    let value = number * scale * 1000.0;
    if !value.is_finite() || value.abs() > i64::MAX as f64 {
        return Err(bad());
    }
    // Round up as MilliValue does, but not past float noise (0.1 × 1000 is 100.00000000000001).
    let rounded = (value - 1e-6).ceil();
    Ok(rounded as i64)
}

/// `milli` milli-units written as a quantity the way upstream's status shows it: whole units
/// when exact, milli-units otherwise.
pub fn from_milli(milli: i64) -> Quantity {
    if milli % 1000 == 0 {
        Quantity((milli / 1000).to_string())
    } else {
        Quantity(format!("{milli}m"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_and_exponents_become_milli_units() {
        for (text, want) in [
            ("250m", 250),
            ("1", 1000),
            ("1.5", 1500),
            ("0.1", 100),
            ("2k", 2_000_000),
            ("1Ki", 1_024_000),
            ("128Mi", 128 * 1024 * 1024 * 1000),
            ("1e3", 1_000_000),
            ("500n", 1),
            ("0", 0),
        ] {
            assert_eq!(parse_milli(text), Ok(want), "{text}");
        }
        assert_eq!(from_milli(1500).0, "1500m");
        assert_eq!(from_milli(2000).0, "2");
    }

    #[test]
    fn a_bad_quantity_is_named() {
        let err = parse_milli("12 cores").unwrap_err().to_string();
        assert!(err.contains("\"12 cores\""), "{err}");
        assert!(parse_milli("1Qi").is_err());
    }
}
