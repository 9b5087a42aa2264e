//! Printing numbers for people: thousands separators, a sensible number of decimals, and the
//! unit. Machine-readable formats (JSON, CSV) carry the exact value next to this text.

use super::figures::Number;
use super::model::Unit;

/// Groups the digits of a non-negative integer text in threes: `1234567` → `1,234,567`.
fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number with `decimals` decimals and grouped thousands.
pub(crate) fn format_decimal(value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text.as_str(), None),
    };
    let sign = if value < 0.0 && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        "-"
    } else {
        ""
    };
    match fraction {
        Some(fraction) => format!("{sign}{}.{fraction}", group_thousands(whole)),
        None => format!("{sign}{}", group_thousands(whole)),
    }
}

/// Decimals that show about three significant digits of small numbers and none of large.
fn decimals_for(value: f64) -> usize {
    let magnitude = value.abs();
    if magnitude >= 100.0 || magnitude == 0.0 {
        0
    } else if magnitude >= 10.0 {
        1
    } else if magnitude >= 1.0 {
        2
    } else {
        3
    }
}

fn plain(value: Number) -> String {
    match value {
        Number::Integer(i) => format_decimal(i as f64, 0),
        Number::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format_decimal(f, 0),
        Number::Float(f) => format_decimal(f, decimals_for(f)),
    }
}

/// A value with its unit, as a report prints it.
pub(crate) fn format_value(value: Number, unit: Unit) -> String {
    let float = value.as_f64();
    match unit {
        Unit::None | Unit::Count => plain(value),
        Unit::Requests | Unit::Tokens => match value {
            Number::Integer(i) => format_decimal(i as f64, 0),
            Number::Float(f) => format_decimal(f, if f.abs() < 100.0 { 1 } else { 0 }),
        },
        Unit::Usd => {
            let decimals = if float.abs() < 1.0 && float != 0.0 {
                4
            } else {
                2
            };
            let text = format_decimal(float, decimals);
            match text.strip_prefix('-') {
                Some(rest) => format!("-${rest}"),
                None => format!("${text}"),
            }
        }
        Unit::Percent => format!("{} %", format_decimal(float, 1)),
        Unit::Ms => format!(
            "{} ms",
            format_decimal(float, if float.abs() < 100.0 { 1 } else { 0 })
        ),
        Unit::Hours => format!("{} h", format_decimal(float, 1)),
        Unit::Kwh => format!("{} kWh", format_decimal(float, decimals_for(float).max(1))),
        Unit::Watts => format!("{} W", format_decimal(float, 0)),
        Unit::Mib => format!("{} MiB", format_decimal(float, 0)),
        Unit::Bytes => format!("{} B", format_decimal(float, 0)),
        Unit::Celsius => format!("{} °C", format_decimal(float, 0)),
        Unit::Mhz => format!("{} MHz", format_decimal(float, 0)),
    }
}

/// A JSON cell as a report prints it.
pub(crate) fn format_json_cell(value: &serde_json::Value, unit: Unit) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => format_value(Number::Integer(i), unit),
            (None, Some(f)) => format_value(Number::Float(f), unit),
            (None, None) => n.to_string(),
        },
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_with_grouped_thousands_and_their_unit() {
        assert_eq!(
            format_value(Number::Integer(1_234_567), Unit::Tokens),
            "1,234,567"
        );
        assert_eq!(format_value(Number::Float(1234.5), Unit::Usd), "$1,234.50");
        assert_eq!(format_value(Number::Float(-0.01234), Unit::Usd), "-$0.0123");
        assert_eq!(format_value(Number::Float(12.345), Unit::Percent), "12.3 %");
        assert_eq!(format_value(Number::Float(15_000.0), Unit::Ms), "15,000 ms");
        assert_eq!(format_value(Number::Float(-0.04), Unit::Percent), "0.0 %");
        assert_eq!(format_value(Number::Float(999.96), Unit::None), "1,000");
    }
}
