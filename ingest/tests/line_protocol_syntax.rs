//! What the parser accepts and how it reads it. Each expectation was checked against InfluxDB
//! 1.6.7 (written to `/write`, read back with `/query`), except where a test says Tally differs.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests may unwrap")]

use tally_engine::{FieldValue, PointBatch};
use tally_ingest::line_protocol::{
    LineErrorKind, ParseOptions, ParseReport, Precision, parse_lines,
};

const SERVER_TIME: i64 = 1_700_000_123_456_789_012;

struct Parsed<'a> {
    batch: PointBatch<'a>,
    point_lines: Vec<u32>,
    report: ParseReport,
}

fn parse_with(body: &[u8], options: ParseOptions) -> Parsed<'_> {
    let mut batch = PointBatch::new();
    let mut point_lines = Vec::new();
    let report = parse_lines(body, &options, &mut batch, &mut point_lines);
    Parsed {
        batch,
        point_lines,
        report,
    }
}

fn parse(body: &str) -> Parsed<'_> {
    parse_with(body.as_bytes(), ParseOptions::new(SERVER_TIME))
}

/// Parses a one-point body that must be accepted and returns its fields.
fn fields_of(body: &str) -> Vec<(String, FieldValue<'static>)> {
    let parsed = parse(body);
    assert!(
        parsed.report.errors.is_empty(),
        "{body:?}: {:?}",
        parsed.report.errors
    );
    let point = parsed.batch.point(0).unwrap();
    point
        .fields()
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone().into_owned()))
        .collect()
}

fn only_error(body: &str) -> LineErrorKind {
    let parsed = parse(body);
    assert_eq!(
        parsed.report.errors.len(),
        1,
        "{body:?}: {:?}",
        parsed.report.errors
    );
    parsed.report.errors[0].kind.clone()
}

#[test]
fn all_ten_boolean_spellings_are_read() {
    let fields = fields_of("m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE 1");
    let values: Vec<_> = fields.into_iter().map(|(_, v)| v).collect();
    let expected: Vec<_> = [
        true, true, true, true, true, false, false, false, false, false,
    ]
    .map(FieldValue::Boolean)
    .into();
    assert_eq!(values, expected);
}

#[test]
fn float_forms_influxdb_accepts_are_read() {
    let fields = fields_of("m a=1e5,b=.5,c=1.,d=1E-3,e=-.5,f=1e+2,g=01,h=-01.50,i=1.e5,j=1e-500 1");
    let values: Vec<f64> = fields
        .iter()
        .map(|(_, v)| match v {
            FieldValue::Float(f) => *f,
            other => panic!("not a float: {other:?}"),
        })
        .collect();
    assert_eq!(
        values,
        [1e5, 0.5, 1.0, 1e-3, -0.5, 100.0, 1.0, -1.5, 1e5, 0.0]
    );
}

#[test]
fn negative_zero_keeps_its_sign() {
    for body in ["m a=-0 1", "m a=-0.0 1"] {
        let fields = fields_of(body);
        let FieldValue::Float(value) = fields[0].1 else {
            panic!("not a float")
        };
        assert_eq!(value.to_bits(), (-0.0f64).to_bits(), "{body}");
    }
}

#[test]
fn a_bare_integer_is_a_float_and_suffixes_choose_integer_and_unsigned() {
    let fields = fields_of("m a=1,b=1i,c=1u,d=-0i,e=007i 1");
    let values: Vec<_> = fields.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        [
            FieldValue::Float(1.0),
            FieldValue::Integer(1),
            FieldValue::Unsigned(1),
            FieldValue::Integer(0),
            FieldValue::Integer(7)
        ]
    );
}

#[test]
fn integer_and_unsigned_extremes_are_read_exactly() {
    let fields = fields_of(
        "m a=9223372036854775807i,b=-9223372036854775808i,c=18446744073709551615u,d=0u 1",
    );
    let values: Vec<_> = fields.into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        values,
        [
            FieldValue::Integer(i64::MAX),
            FieldValue::Integer(i64::MIN),
            FieldValue::Unsigned(u64::MAX),
            FieldValue::Unsigned(0)
        ]
    );
}

#[test]
fn a_decimal_with_hundreds_of_digits_rounds_to_the_nearest_float() {
    let body = format!("m a=17976931348623158{} 1", "0".repeat(292));
    let fields = fields_of(&body);
    assert_eq!(fields[0].1, FieldValue::Float(f64::MAX));
}

#[test]
fn strings_keep_commas_spaces_equals_and_line_breaks() {
    let body = "m s=\"a,b=c d\",t=\"line1\nline2\",u=\"\",v=\"\\\"\" 1";
    let fields = fields_of(body);
    assert_eq!(fields[0].1, FieldValue::String("a,b=c d".into()));
    assert_eq!(fields[1].1, FieldValue::String("line1\nline2".into()));
    assert_eq!(fields[2].1, FieldValue::String("".into()));
    assert_eq!(fields[3].1, FieldValue::String("\"".into()));
}

#[test]
fn a_string_ending_in_an_escaped_backslash_is_closed_by_the_next_quote() {
    let fields = fields_of(r#"m s="ends\\",n=1 1"#);
    assert_eq!(fields[0].1, FieldValue::String("ends\\".into()));
    assert_eq!(fields[1].1, FieldValue::Float(1.0));
}

#[test]
fn quotes_and_hashes_inside_names_are_ordinary_characters() {
    let parsed = parse("m#x,t=x\"y a\"b=1 1");
    assert!(
        parsed.report.errors.is_empty(),
        "{:?}",
        parsed.report.errors
    );
    let point = parsed.batch.point(0).unwrap();
    assert_eq!(point.measurement(), "m#x");
    assert_eq!(point.tags()[0].1, "x\"y");
    assert_eq!(point.fields()[0].0, "a\"b");
}

#[test]
fn unicode_names_and_values_are_read() {
    let parsed = parse("mé,tä=ü 字=\"🙂\" 1");
    assert!(
        parsed.report.errors.is_empty(),
        "{:?}",
        parsed.report.errors
    );
    let point = parsed.batch.point(0).unwrap();
    assert_eq!(point.measurement(), "mé");
    assert_eq!(
        (point.tags()[0].0.as_ref(), point.tags()[0].1.as_ref()),
        ("tä", "ü")
    );
    assert_eq!(
        point.fields()[0],
        ("字".into(), FieldValue::String("🙂".into()))
    );
}

#[test]
fn an_equals_sign_opening_a_tag_value_is_part_of_it_as_in_influxdb() {
    let parsed = parse("m,t==x a=1 1");
    assert!(
        parsed.report.errors.is_empty(),
        "{:?}",
        parsed.report.errors
    );
    assert_eq!(parsed.batch.point(0).unwrap().tags()[0].1, "=x");
    assert!(matches!(
        only_error("m,t=x= a=1 1"),
        LineErrorKind::UnescapedEqualsInTagValue { .. }
    ));
}

#[test]
fn a_byte_order_mark_becomes_part_of_the_first_measurement_as_in_influxdb() {
    let parsed = parse("\u{feff}m a=1 1\nm a=2 2");
    assert_eq!(parsed.batch.point(0).unwrap().measurement(), "\u{feff}m");
    assert_eq!(parsed.batch.point(1).unwrap().measurement(), "m");
}

#[test]
fn tags_are_sorted_by_key() {
    let parsed = parse("m,zone=z,host=h,dc=d v=1 1");
    let point = parsed.batch.point(0).unwrap();
    let keys: Vec<&str> = point.tags().iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(keys, ["dc", "host", "zone"]);
}

#[test]
fn a_tag_and_a_field_may_share_a_key_and_time_may_name_a_measurement() {
    let parsed = parse("time,v=x v=1 1");
    assert!(
        parsed.report.errors.is_empty(),
        "{:?}",
        parsed.report.errors
    );
    assert_eq!(parsed.batch.point(0).unwrap().measurement(), "time");
}

#[test]
fn whitespace_is_skipped_where_influxdb_skips_it() {
    // Leading spaces, tabs and NULs; several spaces or tabs before the fields and before the
    // timestamp; trailing spaces.
    for body in [
        "  m a=1 5",
        "\tm a=1 5",
        "\0m a=1 5",
        "m  a=1  5",
        "m,t=x  a=1 5",
        "m \ta=1 \t 5",
        "m a=1 \x005",
        "m a=1 5   ",
    ] {
        let parsed = parse(body);
        assert!(
            parsed.report.errors.is_empty(),
            "{body:?}: {:?}",
            parsed.report.errors
        );
        assert_eq!(parsed.batch.point(0).unwrap().timestamp(), 5, "{body:?}");
    }
}

#[test]
fn a_tab_is_not_a_separator_inside_a_section() {
    assert!(matches!(
        only_error("m\ta=1\t1"),
        LineErrorKind::MissingFields
    ));
    assert!(matches!(
        only_error("m\ta=1 1"),
        LineErrorKind::MissingFieldValue { .. }
    ));
    assert!(matches!(
        only_error("m a=1\t1"),
        LineErrorKind::InvalidNumber { .. }
    ));
    assert!(matches!(
        only_error("m a=1 1\t"),
        LineErrorKind::InvalidTimestamp { .. }
    ));
}

#[test]
fn crlf_line_ends_are_accepted_unlike_influxdb_1x() {
    let parsed = parse("m a=1 1\r\nm s=\"x\" 2\r\nm b=2\r\n\r\n");
    assert!(
        parsed.report.errors.is_empty(),
        "{:?}",
        parsed.report.errors
    );
    assert_eq!(parsed.batch.len(), 3);
    assert_eq!(
        parsed.batch.point(1).unwrap().fields()[0].1,
        FieldValue::String("x".into())
    );
}

#[test]
fn blank_lines_and_comments_are_skipped_but_counted_in_line_numbers() {
    let body = "# header\n\nm a=1 1\n   \n  # indented comment\nm b=2 2\nbad\n";
    let parsed = parse(body);
    assert_eq!(parsed.report.lines_total, 3);
    assert_eq!(parsed.report.points, 2);
    assert_eq!(parsed.point_lines, [3, 6]);
    assert_eq!(parsed.report.errors.len(), 1);
    assert_eq!(parsed.report.errors[0].line, 7);
}

#[test]
fn an_empty_body_yields_nothing() {
    for body in ["", "\n\n", "# only a comment"] {
        let parsed = parse(body);
        assert_eq!(parsed.report, ParseReport::default(), "{body:?}");
        assert!(parsed.batch.is_empty());
    }
}

#[test]
fn a_string_spanning_lines_is_one_point_and_later_line_numbers_count_its_breaks() {
    let parsed = parse("m s=\"a\nb\nc\" 1\nm v=1 2\nbad");
    assert_eq!(parsed.point_lines, [1, 4]);
    assert_eq!(parsed.report.errors[0].line, 5);
}

#[test]
fn a_backslash_before_a_line_break_joins_the_lines_as_in_influxdb() {
    let parsed = parse("m a=1 1\\\nm b=2 2\nm c=3 3");
    assert_eq!(parsed.report.lines_total, 2);
    assert!(matches!(
        parsed.report.errors[0].kind,
        LineErrorKind::InvalidTimestamp { .. }
    ));
    assert_eq!(parsed.point_lines, [3]);
}

#[test]
fn an_unclosed_quote_rejects_only_its_own_line() {
    // InfluxDB would read everything after the quote as one bad line; Tally ends the line at
    // its line break, so the lines after it are kept.
    let parsed = parse("m v=1 1\nm s=\"open 2\nm v=3 3\nm s=\"x\" 4");
    assert_eq!(parsed.point_lines, [1, 3, 4]);
    assert_eq!(parsed.report.errors.len(), 1);
    assert_eq!(
        (parsed.report.errors[0].line, parsed.report.errors[0].column),
        (2, 5)
    );
}

#[test]
fn timestamps_are_scaled_by_the_precision() {
    let cases = [
        (Precision::Nanoseconds, 2),
        (Precision::Microseconds, 2_000),
        (Precision::Milliseconds, 2_000_000),
        (Precision::Seconds, 2_000_000_000),
        (Precision::Minutes, 120_000_000_000),
        (Precision::Hours, 7_200_000_000_000),
    ];
    for (precision, expected) in cases {
        let options = ParseOptions::new(SERVER_TIME).with_precision(precision);
        let parsed = parse_with(b"m a=1 2", options);
        assert_eq!(
            parsed.batch.point(0).unwrap().timestamp(),
            expected,
            "{precision:?}"
        );
    }
}

#[test]
fn timestamps_may_be_negative_and_have_leading_zeros() {
    let parsed =
        parse("m a=1 -5\nm a=1 007\nm a=1 -9223372036854775806\nm a=1 9223372036854775806");
    let times: Vec<i64> = parsed.batch.points().map(|p| p.timestamp()).collect();
    assert_eq!(times, [-5, 7, -9223372036854775806, 9223372036854775806]);
}

#[test]
fn the_largest_millisecond_timestamp_fits_and_the_next_overflows() {
    let options = ParseOptions::new(SERVER_TIME).with_precision(Precision::Milliseconds);
    let parsed = parse_with(
        b"m a=1 9223372036854\nm a=1 9223372036855\nm a=1 -9223372036854",
        options,
    );
    let times: Vec<i64> = parsed.batch.points().map(|p| p.timestamp()).collect();
    assert_eq!(
        times,
        [9_223_372_036_854_000_000, -9_223_372_036_854_000_000]
    );
    assert!(matches!(
        parsed.report.errors[0].kind,
        LineErrorKind::TimestampOutOfRange {
            precision: Precision::Milliseconds,
            ..
        }
    ));
}

#[test]
fn lines_without_a_timestamp_take_the_server_time_truncated_to_the_precision() {
    let parsed = parse("m a=1\nm a=1   ");
    let times: Vec<i64> = parsed.batch.points().map(|p| p.timestamp()).collect();
    assert_eq!(times, [SERVER_TIME, SERVER_TIME]);
    let options = ParseOptions::new(SERVER_TIME).with_precision(Precision::Seconds);
    let parsed = parse_with(b"m a=1", options);
    assert_eq!(
        parsed.batch.point(0).unwrap().timestamp(),
        1_700_000_123_000_000_000
    );
}

#[test]
fn errors_past_the_limit_are_counted_not_kept() {
    let mut options = ParseOptions::new(SERVER_TIME);
    options.max_errors = 2;
    let parsed = parse_with(b"bad\nbad\nm a=1 1\nbad\nbad", options);
    assert_eq!(parsed.report.errors.len(), 2);
    assert_eq!(parsed.report.errors_omitted, 2);
    assert_eq!(parsed.report.lines_rejected(), 4);
    assert_eq!(parsed.report.points, 1);
    assert_eq!(parsed.report.lines_total, 5);
}

#[test]
fn errors_render_with_line_and_column() {
    let parsed = parse("m a=1 1\nm a=1x 2");
    assert_eq!(
        parsed.report.errors[0].to_string(),
        "line 2, column 5: field \"a\" has invalid number \"1x\""
    );
}

#[test]
fn a_failed_line_leaves_no_trace_in_the_batch() {
    let parsed = parse("m,t=a a=1,b=2 1\nm,t=b a=1,b=2,a=3 2\nm,t=c a=1 3");
    assert_eq!(parsed.batch.len(), 2);
    assert_eq!(parsed.batch.n_values(), 3);
    let tag_values: Vec<&str> = parsed
        .batch
        .points()
        .map(|p| p.tags()[0].1.as_ref())
        .collect();
    assert_eq!(tag_values, ["a", "c"]);
}

#[test]
fn duplicate_keys_past_the_parser_check_are_still_caught_by_the_engine() {
    let mut fields: Vec<String> = (0..70).map(|k| format!("f{k}=1")).collect();
    fields.push("f69=2".into());
    let body = format!("m {} 1", fields.join(","));
    assert_eq!(
        only_error(&body),
        LineErrorKind::DuplicateFieldKey { key: "f69".into() }
    );
}
