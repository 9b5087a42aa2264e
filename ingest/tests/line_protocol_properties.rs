//! Properties of the parser and writer over generated input: `parse(write(x)) == x`, no input
//! makes the parser panic or break its counts, and a bad line never changes how its neighbours
//! parse.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests may unwrap")]

use std::collections::HashSet;

use proptest::prelude::*;
use tally_engine::{FieldValue, PointBatch};
use tally_ingest::line_protocol::{ParseOptions, ParseReport, parse_lines, write_line};

const SERVER_TIME: i64 = 1_234_567_890;

/// A point in a form that compares floats by their bits.
#[derive(Clone, Debug, PartialEq)]
struct Point {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, Value)>,
    timestamp: i64,
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    FloatBits(u64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(String),
}

impl Value {
    fn of(value: &FieldValue<'_>) -> Value {
        match value {
            FieldValue::Float(f) => Value::FloatBits(f.to_bits()),
            FieldValue::Integer(i) => Value::Integer(*i),
            FieldValue::Unsigned(u) => Value::Unsigned(*u),
            FieldValue::Boolean(b) => Value::Boolean(*b),
            FieldValue::String(s) => Value::String(s.to_string()),
            other => panic!("unexpected field value {other:?}"),
        }
    }
}

fn snapshot(batch: &PointBatch<'_>) -> Vec<Point> {
    batch
        .points()
        .map(|p| Point {
            measurement: p.measurement().to_owned(),
            tags: p
                .tags()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fields: p
                .fields()
                .iter()
                .map(|(k, v)| (k.to_string(), Value::of(v)))
                .collect(),
            timestamp: p.timestamp(),
        })
        .collect()
}

fn parse(body: &[u8]) -> (Vec<Point>, Vec<u32>, ParseReport) {
    let mut batch = PointBatch::new();
    let mut point_lines = Vec::new();
    let report = parse_lines(
        body,
        &ParseOptions::new(SERVER_TIME),
        &mut batch,
        &mut point_lines,
    );
    (snapshot(&batch), point_lines, report)
}

/// Names mixing plain text with every character line protocol treats specially.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z_][a-z0-9_.-]{0,10}",
        3 => "[a-zA-Z0-9 ,=\"\\\\#\t\r\n\\x00é字😀]{1,8}",
        1 => "\\PC{0,6}",
    ]
}

fn field_value() -> impl Strategy<Value = FieldValue<'static>> {
    let special_float = prop_oneof![
        Just(-0.0),
        Just(0.0),
        Just(5e-324),
        Just(f64::MIN_POSITIVE / 3.0),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(1e16),
        Just(1e-5),
    ];
    prop_oneof![
        any::<f64>().prop_map(FieldValue::Float),
        special_float.prop_map(FieldValue::Float),
        any::<i64>().prop_map(FieldValue::Integer),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0)].prop_map(FieldValue::Integer),
        any::<u64>().prop_map(FieldValue::Unsigned),
        Just(FieldValue::Unsigned(u64::MAX)),
        any::<bool>().prop_map(FieldValue::Boolean),
        "\\PC{0,12}".prop_map(|s| FieldValue::String(s.into())),
        "[\"\\\\\n\r ,=a]{0,8}".prop_map(|s| FieldValue::String(s.into())),
    ]
}

#[derive(Clone, Debug)]
struct Input {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, FieldValue<'static>)>,
    timestamp: Option<i64>,
}

fn input() -> impl Strategy<Value = Input> {
    let tags = proptest::collection::btree_map(name(), name(), 0..5);
    let fields = proptest::collection::vec((name(), field_value()), 1..6);
    let timestamp = prop_oneof![
        Just(None),
        any::<i64>().prop_map(Some),
        prop_oneof![Just(i64::MIN + 2), Just(i64::MAX - 1), Just(-1), Just(0)].prop_map(Some),
    ];
    (name(), tags, fields, timestamp).prop_map(|(measurement, tags, fields, timestamp)| {
        let mut seen = HashSet::new();
        let fields = fields
            .into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect();
        Input {
            measurement,
            tags: tags.into_iter().collect(),
            fields,
            timestamp,
        }
    })
}

/// The writer's documented refusals, restated independently of its code.
fn writable(input: &Input) -> bool {
    fn name_ok(name: &str, specials: &[u8]) -> bool {
        !name.is_empty()
            && !name.ends_with('\\')
            && !name.contains('\n')
            && !name
                .as_bytes()
                .windows(2)
                .any(|w| w[0] == b'\\' && specials.contains(&w[1]))
    }
    let finite: Vec<&(String, FieldValue<'static>)> = input
        .fields
        .iter()
        .filter(|(_, v)| !matches!(v, FieldValue::Float(f) if !f.is_finite()))
        .collect();
    input
        .timestamp
        .is_none_or(|t| (i64::MIN + 2..=i64::MAX - 1).contains(&t))
        && name_ok(&input.measurement, b", =\"")
        && !input.measurement.starts_with(['#', '\t', '\0'])
        && input
            .tags
            .iter()
            .all(|(k, v)| name_ok(k, b", =") && name_ok(v, b", =") && k != "time")
        && !finite.is_empty()
        && finite
            .iter()
            .all(|(k, _)| name_ok(k, b", =\"") && k != "time")
        && !finite[0].0.starts_with(['\t', '\0'])
}

fn write(input: &Input, out: &mut String) -> bool {
    let tags: Vec<(&str, &str)> = input
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let fields: Vec<(&str, FieldValue<'_>)> = input
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    write_line(out, &input.measurement, &tags, &fields, input.timestamp).is_ok()
}

fn expected_point(input: &Input) -> Point {
    let mut tags = input.tags.clone();
    tags.sort();
    Point {
        measurement: input.measurement.clone(),
        tags,
        fields: input
            .fields
            .iter()
            .filter(|(_, v)| !matches!(v, FieldValue::Float(f) if !f.is_finite()))
            .map(|(k, v)| (k.clone(), Value::of(v)))
            .collect(),
        timestamp: input.timestamp.unwrap_or(SERVER_TIME),
    }
}

/// InfluxDB's line splitter, restated: whether a line followed by a line break and more lines
/// ends at that line break (it does not when it leaves a string open or ends in a backslash).
fn ends_at_its_line_break(line: &[u8]) -> bool {
    let mut body = line.to_vec();
    body.extend_from_slice(b"\nx y");
    let (mut i, mut in_fields, mut quoted, mut equals, mut commas) = (0, false, false, 0, 0);
    while i < body.len() {
        let b = body[i];
        if b == b'\\' && i + 2 < body.len() {
            i += 2;
            continue;
        }
        in_fields |= b == b' ';
        if in_fields {
            if !quoted && b == b'=' {
                equals += 1;
            } else if !quoted && b == b',' {
                commas += 1;
            } else if b == b'"' && equals > commas {
                quoted = !quoted;
            }
        }
        if b == b'\n' && !quoted {
            return i == line.len();
        }
        i += 1;
    }
    false
}

/// Bytes that exercise the parser's every branch, and now and then any byte.
fn line_bytes() -> impl Strategy<Value = Vec<u8>> {
    let syntax_byte = prop_oneof![
        4 => prop::sample::select(b"abmt ,=\"\\01-.5eiuTf#\t\r".to_vec()),
        1 => any::<u8>(),
    ];
    proptest::collection::vec(syntax_byte, 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn written_points_parse_back_to_the_same_point(input in input()) {
        let mut line = String::new();
        let written = write(&input, &mut line);
        prop_assert_eq!(written, writable(&input), "line {:?}", line);
        if written {
            let (points, _, report) = parse(line.as_bytes());
            prop_assert!(report.errors.is_empty(), "{:?} from {:?}", report.errors, line);
            prop_assert_eq!(points, vec![expected_point(&input)], "line {:?}", line);
        } else {
            prop_assert!(line.is_empty());
        }
    }

    #[test]
    fn many_written_points_in_one_body_parse_back_in_order(inputs in proptest::collection::vec(input(), 1..8)) {
        let mut body = String::new();
        let mut expected = Vec::new();
        for input in &inputs {
            if write(input, &mut body) {
                expected.push(expected_point(input));
            }
        }
        let (points, _, report) = parse(body.as_bytes());
        prop_assert!(report.errors.is_empty(), "{:?} from {:?}", report.errors, body);
        prop_assert_eq!(points, expected, "body {:?}", body);
    }

    #[test]
    fn no_body_makes_the_parser_panic_or_miscount(
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(line_bytes(), 0..8).prop_map(|lines| lines.join(&b'\n')),
        ]
    ) {
        let (points, point_lines, report) = parse(&body);
        prop_assert_eq!(report.lines_total, report.points + report.lines_rejected());
        prop_assert_eq!(points.len(), report.points as usize);
        prop_assert_eq!(point_lines.len(), points.len());
        prop_assert!(point_lines.windows(2).all(|w| w[0] < w[1]));
        // One error at most per line, in body order, never on a line that gave a point.
        prop_assert!(report.errors.windows(2).all(|w| w[0].line < w[1].line), "{:?}", report.errors);
        prop_assert!(report.errors.iter().all(|e| !point_lines.contains(&e.line)));
        let physical_lines = body.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        for error in &report.errors {
            prop_assert!(error.line >= 1 && error.line <= physical_lines && error.column >= 1, "{:?}", error);
        }
        for line in &point_lines {
            prop_assert!(*line >= 1 && *line <= physical_lines);
        }
    }

    #[test]
    fn a_bad_line_never_changes_how_its_neighbours_parse(
        lines in proptest::collection::vec(prop_oneof![
            input().prop_map(|input| {
                let mut line = String::new();
                write(&input, &mut line);
                line.pop();
                line.into_bytes()
            }),
            line_bytes(),
        ], 1..8)
    ) {
        let lines: Vec<Vec<u8>> = lines.into_iter().filter(|l| ends_at_its_line_break(l)).collect();
        let mut expected_points = Vec::new();
        let mut expected_errors = Vec::new();
        let mut first_line = 1u32;
        for line in &lines {
            let (points, _, report) = parse(line);
            expected_points.extend(points);
            expected_errors.extend(
                report.errors.iter().map(|e| (e.line + first_line - 1, e.column, e.kind.clone())),
            );
            first_line += line.iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        }
        let body = lines.join(&b'\n');
        let (points, _, report) = parse(&body);
        let errors: Vec<_> = report.errors.iter().map(|e| (e.line, e.column, e.kind.clone())).collect();
        prop_assert_eq!(points, expected_points, "body {:?}", String::from_utf8_lossy(&body));
        prop_assert_eq!(errors, expected_errors, "body {:?}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn the_line_model_agrees_with_the_parser_on_a_swallowing_line() {
    // The model above must say "no" for lines the parser would continue past their break,
    // or the independence property would pass by skipping nothing.
    assert!(!ends_at_its_line_break(b"m s=\"open"));
    assert!(!ends_at_its_line_break(b"m a=1 1\\"));
    assert!(ends_at_its_line_break(b"m s=\"closed\" 1"));
    let (points, point_lines, _) = parse(b"m s=\"open\nm v=1 2\" 3");
    assert_eq!(point_lines, [1]);
    assert_eq!(points[0].fields[0].1, Value::String("open\nm v=1 2".into()));
}
