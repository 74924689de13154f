//! Resource quantities (`500m`, `2Gi`, `1.5`, `1e3`), as k8s.io/apimachinery
//! `resource.Quantity` reads them.

use serde_json::Value;

/// The quantity's value in base units (cores, bytes); `None` when it is not a quantity.
pub fn parse(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_str(s),
        _ => None,
    }
}

fn parse_str(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    if num.is_empty() || num == "+" || num == "-" {
        return None;
    }
    let n: f64 = num.parse().ok()?;
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
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    Some(n * factor)
}

/// Bytes of a memory quantity, rounded up as the kubelet does.
pub fn bytes(v: &Value) -> Option<i64> {
    parse(v).map(|b| b.ceil() as i64)
}

/// Docker's `NanoCpus` for a CPU quantity.
pub fn nano_cpus(v: &Value) -> Option<i64> {
    parse(v).map(|c| (c * 1e9).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_in_every_notation() {
        assert_eq!(nano_cpus(&json!("500m")), Some(500_000_000));
        assert_eq!(nano_cpus(&json!("2")), Some(2_000_000_000));
        assert_eq!(nano_cpus(&json!(1.5)), Some(1_500_000_000));
        assert_eq!(bytes(&json!("2Gi")), Some(2 * 1024 * 1024 * 1024));
        assert_eq!(bytes(&json!("256M")), Some(256_000_000));
        assert_eq!(bytes(&json!("64Mi")), Some(64 * 1024 * 1024));
        assert_eq!(bytes(&json!("1e3")), Some(1000));
        assert_eq!(bytes(&json!("12Qi")), None);
        assert_eq!(bytes(&json!("Gi")), None);
        assert_eq!(bytes(&json!(true)), None);
    }
}
