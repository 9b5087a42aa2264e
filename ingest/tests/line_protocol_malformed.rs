//! Runs the malformed-input matrix in `tests/data/malformed.json`.
//!
//! The file is a JSON list of cases. Each case is an object:
//!
//! - `name`: what the case is about, unique.
//! - `body`: the request body, or `body_hex` (lower-case hex of the bytes) for bodies that are not
//!   valid UTF-8.
//! - `line`, `column`: where the one rejected line is reported, both 1-based; the column counts
//!   characters, and a string value that spans lines restarts the count on each line.
//! - `error`: the exact reason text, i.e. the `Display` of `LineErrorKind`, without the
//!   `line L, column C: ` prefix that `LineError` adds.
//! - `points`: how many points the body still yields; every one has measurement `valid` (the
//!   valid lines around the bad one).
//! - optional `precision` (a v1 `precision=` value; default nanoseconds) and `max_line_bytes`
//!   (default 1 MiB); a consumer that cannot set them should skip the case.
//!
//! The HTTP end-to-end tests reuse this file against `tallyd`, so keep the format this simple.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests may unwrap")]

use std::collections::HashSet;

use serde_json::Value;
use tally_engine::PointBatch;
use tally_ingest::line_protocol::{ParseOptions, Precision, parse_lines};

struct Case {
    name: String,
    body: Vec<u8>,
    line: u32,
    column: u32,
    error: String,
    points: u32,
    precision: Precision,
    max_line_bytes: Option<usize>,
}

fn load_cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/malformed.json");
    let text = std::fs::read_to_string(path).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let list = json.as_array().expect("malformed.json holds a JSON list");
    list.iter().map(parse_case).collect()
}

fn parse_case(json: &Value) -> Case {
    let name = json["name"]
        .as_str()
        .expect("every case has a name")
        .to_owned();
    let body = match (json.get("body"), json.get("body_hex")) {
        (Some(body), None) => body.as_str().unwrap().as_bytes().to_vec(),
        (None, Some(hex)) => decode_hex(hex.as_str().unwrap()),
        _ => panic!("case {name}: needs exactly one of body and body_hex"),
    };
    let number = |key: &str| {
        json[key]
            .as_u64()
            .unwrap_or_else(|| panic!("case {name}: {key} must be a number"))
    };
    Case {
        body,
        line: u32::try_from(number("line")).unwrap(),
        column: u32::try_from(number("column")).unwrap(),
        error: json["error"].as_str().unwrap().to_owned(),
        points: u32::try_from(number("points")).unwrap(),
        precision: json.get("precision").map_or(Precision::Nanoseconds, |p| {
            Precision::from_v1(p.as_str().unwrap()).unwrap()
        }),
        max_line_bytes: json
            .get("max_line_bytes")
            .map(|n| usize::try_from(n.as_u64().unwrap()).unwrap()),
        name,
    }
}

fn decode_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn every_malformed_case_yields_its_documented_error_and_keeps_the_valid_lines() {
    let cases = load_cases();
    let mut failures = Vec::new();
    for case in &cases {
        let mut options = ParseOptions::new(0).with_precision(case.precision);
        if let Some(limit) = case.max_line_bytes {
            options.max_line_bytes = limit;
        }
        let mut batch = PointBatch::new();
        let mut point_lines = Vec::new();
        let report = parse_lines(&case.body, &options, &mut batch, &mut point_lines);

        let found: Vec<(u32, u32, String)> = report
            .errors
            .iter()
            .map(|e| (e.line, e.column, e.kind.to_string()))
            .collect();
        let expected = vec![(case.line, case.column, case.error.clone())];
        if found != expected {
            failures.push(format!(
                "{}: expected {expected:?}, found {found:?}",
                case.name
            ));
            continue;
        }
        let measurements: Vec<&str> = batch.points().map(|p| p.measurement()).collect();
        if report.points != case.points
            || batch.len() != case.points as usize
            || measurements.iter().any(|m| *m != "valid")
        {
            failures.push(format!(
                "{}: expected {} valid points, found {} ({measurements:?})",
                case.name, case.points, report.points
            ));
        }
        if point_lines.contains(&case.line) || point_lines.len() != batch.len() {
            failures.push(format!("{}: point lines {point_lines:?}", case.name));
        }
        if report.lines_total != report.points + 1 {
            failures.push(format!(
                "{}: {} lines counted",
                case.name, report.lines_total
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_matrix_is_large_and_its_names_are_unique() {
    let cases = load_cases();
    assert!(cases.len() >= 45, "only {} cases", cases.len());
    let names: HashSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len());
    assert!(
        cases.iter().any(|c| std::str::from_utf8(&c.body).is_err()),
        "no invalid UTF-8 case"
    );
}
