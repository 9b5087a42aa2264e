//! The writer: one point to one line that [`super::parse_lines`] reads back as the same point.

use std::fmt::Write as _;

use tally_engine::FieldValue;

use super::error::{NamePart, WriteLineError, excerpt};
use super::{MAX_TIMESTAMP_NS, MIN_TIMESTAMP_NS};

const MEASUREMENT_SPECIALS: &[u8] = b", =\"";
const TAG_SPECIALS: &[u8] = b", =";
const FIELD_KEY_SPECIALS: &[u8] = b", =\"";

/// Appends one line of line protocol, ending in `\n`, for a point with nanosecond timestamp
/// `timestamp_ns` (none: the reader's clock decides).
///
/// Names are escaped exactly as the parser unescapes them, floats are written in the shortest
/// form that reads back to the same bits (`-0`, `5e-324`), integers end in `i`, unsigned
/// integers in `u` (InfluxDB 1.x refuses `u`; 2.x and Tally read it).
///
/// Line protocol has no syntax for NaN or infinity (InfluxDB rejects them), so such float
/// fields are skipped, as Telegraf does; a point left without fields is refused with
/// [`WriteLineError::NoWritableFields`]. Names that no line can carry are refused with
/// [`WriteLineError::UnwritableName`]: empty names, names ending in a backslash (it would
/// escape the delimiter after it), names with a backslash right before a character that must
/// be escaped there (InfluxDB's line splitter and name scanner read `\\,` differently, so no
/// spelling is safe), names holding a line break, the tag or field key `time`, a
/// measurement starting with `#` (a comment), a tab or a NUL, and a first field key starting
/// with a tab or a NUL (the parser skips those as whitespace). Tags are written in the order
/// given; the engine's limits (name lengths, tag count, duplicate keys) are left to the reader.
/// On error `out` is left as it was.
pub fn write_line(
    out: &mut String,
    measurement: &str,
    tags: &[(&str, &str)],
    fields: &[(&str, FieldValue<'_>)],
    timestamp_ns: Option<i64>,
) -> Result<(), WriteLineError> {
    let start_len = out.len();
    let result = write_line_unchecked_on_error(out, measurement, tags, fields, timestamp_ns);
    if result.is_err() {
        out.truncate(start_len);
    }
    result
}

fn write_line_unchecked_on_error(
    out: &mut String,
    measurement: &str,
    tags: &[(&str, &str)],
    fields: &[(&str, FieldValue<'_>)],
    timestamp_ns: Option<i64>,
) -> Result<(), WriteLineError> {
    if let Some(timestamp) = timestamp_ns
        && !(MIN_TIMESTAMP_NS..=MAX_TIMESTAMP_NS).contains(&timestamp)
    {
        return Err(WriteLineError::TimestampOutOfRange { timestamp });
    }
    check_name(measurement, NamePart::Measurement, MEASUREMENT_SPECIALS)?;
    if measurement.starts_with(['#', '\t', '\0']) {
        return Err(unwritable(
            measurement,
            NamePart::Measurement,
            "it starts with '#', a tab or a NUL, which a reader takes for a comment or whitespace",
        ));
    }
    write_escaped(out, measurement, MEASUREMENT_SPECIALS);
    for &(key, value) in tags {
        check_name(key, NamePart::TagKey, TAG_SPECIALS)?;
        check_not_reserved(key, NamePart::TagKey)?;
        check_name(value, NamePart::TagValue, TAG_SPECIALS)?;
        out.push(',');
        write_escaped(out, key, TAG_SPECIALS);
        out.push('=');
        write_escaped(out, value, TAG_SPECIALS);
    }
    out.push(' ');
    let mut n_written = 0usize;
    for (key, value) in fields {
        if let FieldValue::Float(float) = value
            && !float.is_finite()
        {
            continue;
        }
        check_name(key, NamePart::FieldKey, FIELD_KEY_SPECIALS)?;
        check_not_reserved(key, NamePart::FieldKey)?;
        if n_written == 0 && key.starts_with(['\t', '\0']) {
            return Err(unwritable(
                key,
                NamePart::FieldKey,
                "the first field key starts with a tab or a NUL, which a reader skips as whitespace",
            ));
        }
        if n_written > 0 {
            out.push(',');
        }
        write_escaped(out, key, FIELD_KEY_SPECIALS);
        out.push('=');
        write_value(out, value);
        n_written += 1;
    }
    if n_written == 0 {
        return Err(WriteLineError::NoWritableFields);
    }
    if let Some(timestamp) = timestamp_ns {
        // Writing to a String cannot fail.
        let _ = write!(out, " {timestamp}");
    }
    out.push('\n');
    Ok(())
}

fn unwritable(name: &str, part: NamePart, reason: &'static str) -> WriteLineError {
    WriteLineError::UnwritableName {
        part,
        name: excerpt(name),
        reason,
    }
}

fn check_name(name: &str, part: NamePart, specials: &[u8]) -> Result<(), WriteLineError> {
    if name.is_empty() {
        return Err(unwritable(name, part, "it is empty"));
    }
    if name.ends_with('\\') {
        return Err(unwritable(
            name,
            part,
            "it ends in a backslash, which would escape the delimiter after it",
        ));
    }
    if name.contains('\n') {
        return Err(unwritable(name, part, "it holds a line break"));
    }
    let bytes = name.as_bytes();
    if bytes
        .windows(2)
        .any(|pair| pair[0] == b'\\' && specials.contains(&pair[1]))
    {
        return Err(unwritable(
            name,
            part,
            "it has a backslash right before a character that needs escaping",
        ));
    }
    Ok(())
}

fn check_not_reserved(key: &str, part: NamePart) -> Result<(), WriteLineError> {
    if key == "time" {
        return Err(unwritable(key, part, "\"time\" names the time column"));
    }
    Ok(())
}

/// Puts a backslash before each byte of `specials`; every other byte, backslashes included,
/// goes out as it is, which the parser's left-to-right unescaping reads back unchanged.
fn write_escaped(out: &mut String, name: &str, specials: &[u8]) {
    if !name.bytes().any(|b| specials.contains(&b)) {
        out.push_str(name);
        return;
    }
    for c in name.chars() {
        if c.is_ascii() && specials.contains(&(c as u8)) {
            out.push('\\');
        }
        out.push(c);
    }
}

fn write_value(out: &mut String, value: &FieldValue<'_>) {
    // Writing to a String cannot fail.
    let _ = match value {
        FieldValue::Float(float) => {
            write_float(out, *float);
            Ok(())
        }
        FieldValue::Integer(integer) => write!(out, "{integer}i"),
        FieldValue::Unsigned(unsigned) => write!(out, "{unsigned}u"),
        FieldValue::Boolean(boolean) => write!(out, "{boolean}"),
        FieldValue::String(text) => {
            out.push('"');
            for c in text.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
            Ok(())
        }
        // A value type added to the engine later has no line protocol syntax yet.
        _ => Ok(()),
    };
}

/// Writes a finite float with the shortest digits that read back to the same f64 (Ryū):
/// positional from 1e-5 up to 1e16, with an exponent outside that (`1e16`, `1.5e-7`), and
/// without a decimal point when it has no fraction: line protocol reads a bare `1` as a float.
/// The output is the one Rust's `{}` (inside the range) and `{:e}` (outside) give, at a
/// fraction of their cost — exports format hundreds of millions of values — except for a value
/// exactly halfway between two shortest candidates (such as -789771469833187.25 written with
/// 16 digits), where Ryū takes the even last digit and Rust the higher one: both read back to
/// the same f64.
pub fn write_float(out: &mut String, float: f64) {
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(float);
    out.push_str(text.strip_suffix(".0").unwrap_or(text));
}

/// Writes a finite float as JSON reads it back as a float: like [`write_float`], but integral
/// values keep their `.0`.
pub fn write_float_json(out: &mut String, float: f64) {
    let mut buffer = ryu::Buffer::new();
    out.push_str(buffer.format_finite(float));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        measurement: &str,
        tags: &[(&str, &str)],
        fields: &[(&str, FieldValue<'_>)],
        timestamp: Option<i64>,
    ) -> Result<String, WriteLineError> {
        let mut out = String::new();
        write_line(&mut out, measurement, tags, fields, timestamp).map(|()| out)
    }

    #[test]
    fn writes_each_value_type_with_its_suffix() {
        let text = line(
            "m",
            &[("host", "a")],
            &[
                ("f", FieldValue::Float(1.0)),
                ("i", FieldValue::Integer(-3)),
                ("u", FieldValue::Unsigned(u64::MAX)),
                ("b", FieldValue::Boolean(true)),
                ("s", FieldValue::String("say \"hi\" \\o/".into())),
            ],
            Some(-5),
        )
        .unwrap();
        assert_eq!(
            text,
            "m,host=a f=1,i=-3i,u=18446744073709551615u,b=true,s=\"say \\\"hi\\\" \\\\o/\" -5\n"
        );
    }

    #[test]
    fn escapes_specials_per_section_and_leaves_other_backslashes_alone() {
        let text = line(
            "c,p u=x\"y\\z",
            &[("t k", "v=a\"b")],
            &[("f,k\"", FieldValue::Integer(1))],
            None,
        )
        .unwrap();
        assert_eq!(text, "c\\,p\\ u\\=x\\\"y\\z,t\\ k=v\\=a\"b f\\,k\\\"=1i\n");
    }

    #[test]
    fn floats_use_an_exponent_only_for_extreme_magnitudes() {
        let cases = [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.5, "1.5"),
            (1e15, "1000000000000000"),
            (1e16, "1e16"),
            (0.0001, "0.0001"),
            (1e-7, "1e-7"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e308"),
        ];
        for (float, expected) in cases {
            let mut out = String::new();
            write_float(&mut out, float);
            assert_eq!(out, expected);
        }
    }

    /// What the formatter must equal: Rust's shortest round-trip digits, positional inside
    /// [1e-5, 1e16) and with an exponent outside.
    fn std_formatted(float: f64) -> String {
        let magnitude = float.abs();
        if magnitude != 0.0 && !(1e-5..1e16).contains(&magnitude) {
            format!("{float:e}")
        } else {
            format!("{float}")
        }
    }

    #[test]
    fn floats_at_the_edges_of_the_positional_range_format_as_rust_does() {
        let mut cases = vec![
            1e-5,
            9.999999999999999e-6,
            f64::from_bits(1e-5f64.to_bits() + 1),
            1e16,
            9999999999999998.0,
            f64::from_bits(1e16f64.to_bits() + 1),
            f64::MIN_POSITIVE,
            f64::EPSILON,
            0.1 + 0.2,
            123456789.0,
        ];
        cases.extend(cases.clone().into_iter().map(|f| -f));
        for float in cases {
            let mut out = String::new();
            write_float(&mut out, float);
            assert_eq!(out, std_formatted(float), "{float:?}");
            let mut json = String::new();
            write_float_json(&mut json, float);
            assert_eq!(json.parse::<f64>().ok(), Some(float), "{json}");
        }
    }

    /// Whether `ours` and `rust` are the two shortest candidates around a value exactly halfway
    /// between them: same length and form, last digits one apart, both reading back to `bits`.
    fn is_other_halfway_candidate(ours: &str, rust: &str, bits: u64) -> bool {
        let last_digit = |text: &str| {
            let mantissa = text.split('e').next().unwrap_or(text);
            mantissa.bytes().rev().find(u8::is_ascii_digit)
        };
        let stem = |text: &str| {
            let mantissa = text.split('e').next().unwrap_or(text);
            mantissa[..mantissa.len() - 1].to_string() + text.find('e').map_or("", |at| &text[at..])
        };
        ours.len() == rust.len()
            && stem(ours) == stem(rust)
            && last_digit(ours)
                .zip(last_digit(rust))
                .is_some_and(|(a, b)| a.abs_diff(b) == 1)
            && ours.parse::<f64>().ok().map(f64::to_bits) == Some(bits)
            && rust.parse::<f64>().ok().map(f64::to_bits) == Some(bits)
    }

    #[test]
    fn a_value_halfway_between_two_shortest_candidates_reads_back_exactly() {
        let float = f64::from_bits(14_053_045_409_527_242_522); // -789771469833187.25
        let mut out = String::new();
        write_float(&mut out, float);
        assert_eq!(out, "-789771469833187.2");
        assert!(is_other_halfway_candidate(
            &out,
            &std_formatted(float),
            float.to_bits()
        ));
    }

    proptest::proptest! {
        #[test]
        fn every_finite_float_formats_as_rust_does(bits in proptest::prelude::any::<u64>()) {
            let float = f64::from_bits(bits);
            if float.is_finite() {
                let mut out = String::new();
                write_float(&mut out, float);
                let rust = std_formatted(float);
                if out != rust {
                    proptest::prop_assert!(
                        is_other_halfway_candidate(&out, &rust, bits),
                        "{} against Rust's {}", out, rust
                    );
                }
                let mut json = String::new();
                write_float_json(&mut json, float);
                proptest::prop_assert!(json.contains(['.', 'e']), "{}", json);
                proptest::prop_assert_eq!(json.parse::<f64>().ok().map(f64::to_bits), Some(bits));
            }
        }

        #[test]
        fn ordinary_decimals_format_as_rust_does(mantissa in -10_000_000i64..10_000_000, scale in -12i32..20) {
            let float = mantissa as f64 * 10f64.powi(scale);
            let mut out = String::new();
            write_float(&mut out, float);
            proptest::prop_assert_eq!(out, std_formatted(float));
        }
    }

    #[test]
    fn non_finite_floats_are_skipped_and_a_point_left_without_fields_is_refused() {
        let text = line(
            "m",
            &[],
            &[
                ("nan", FieldValue::Float(f64::NAN)),
                ("ok", FieldValue::Float(2.0)),
            ],
            None,
        )
        .unwrap();
        assert_eq!(text, "m ok=2\n");
        let mut out = String::from("kept\n");
        let error = write_line(
            &mut out,
            "m",
            &[],
            &[("inf", FieldValue::Float(f64::INFINITY))],
            Some(1),
        )
        .unwrap_err();
        assert_eq!(error, WriteLineError::NoWritableFields);
        assert_eq!(out, "kept\n");
    }

    #[test]
    fn names_no_line_can_carry_are_refused() {
        let float = [("v", FieldValue::Float(1.0))];
        type Point<'p> = (
            &'p str,
            &'p [(&'p str, &'p str)],
            &'p [(&'p str, FieldValue<'p>)],
        );
        let refused: [Point<'_>; 11] = [
            ("", &[], &float),
            ("m\\", &[], &float),
            ("m\\ x", &[], &float),
            ("m", &[("k\\=", "v")], &float),
            ("#m", &[], &float),
            ("\tm", &[], &float),
            ("m", &[("k", "a\nb")], &float),
            ("m", &[("time", "a")], &float),
            ("m", &[("k", "")], &float),
            ("m", &[], &[("time", FieldValue::Float(1.0))]),
            ("m", &[], &[("\tv", FieldValue::Float(1.0))]),
        ];
        for (measurement, tags, fields) in refused {
            let error = line(measurement, tags, fields, None).unwrap_err();
            assert!(
                matches!(error, WriteLineError::UnwritableName { .. }),
                "{measurement:?} {tags:?} {fields:?}: {error}"
            );
        }
    }

    #[test]
    fn timestamps_outside_the_readable_range_are_refused() {
        let float = [("v", FieldValue::Float(1.0))];
        assert!(line("m", &[], &float, Some(i64::MAX)).is_err());
        assert!(line("m", &[], &float, Some(i64::MIN + 1)).is_err());
        assert!(line("m", &[], &float, Some(i64::MAX - 1)).is_ok());
        assert!(line("m", &[], &float, Some(i64::MIN + 2)).is_ok());
    }
}
