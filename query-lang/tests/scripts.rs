//! Query tests as data: every `tests/scripts/*.tq` file loads points, runs queries against a
//! fresh engine and states the exact rows each query returns. `tests/scripts/README.md`
//! describes the format; `tests/scripts/influxdb_check.py` runs the same scripts against
//! InfluxDB 1.6 and reports where its answers differ, so that expectations follow InfluxDB
//! wherever Tally has the same feature.
//!
//! `UPDATE_SCRIPTS=1 cargo test -p tally-query --test scripts` rewrites the expected blocks
//! from the executor's current answers. The rewritten expectations are a draft, not a truth:
//! review every changed line against the documentation and InfluxDB before keeping it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test fails loudly by design; its helper module is private to this crate"
)]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tally_engine::EngineOptions;
use tally_ingest::line_protocol::Precision;
use tally_query::QueryLimits;

use support::{TestEngine, format_time, parse_time, render_results, test_options, tokens};

/// The database loads and queries use until a `database` line names another.
const DEFAULT_DATABASE: &str = "db";
/// `now()` unless a `now` line says otherwise: 2000-01-01T00:00:00Z, long after the 1970
/// timestamps the scripts write, and fixed so that results never depend on the clock.
const DEFAULT_NOW: i64 = 946_684_800_000_000_000;

/// One step of a script, with the line it starts on.
#[derive(Debug)]
enum Step {
    Engine(EngineOptions),
    Now(i64),
    Database(String),
    Create(String),
    Load {
        precision: Precision,
        lines: String,
    },
    Flush {
        everything: bool,
    },
    Compact,
    Limits(QueryLimits),
    Query {
        text: String,
        expected: Vec<String>,
        expected_start: usize,
        expected_end: usize,
    },
}

#[derive(Debug)]
struct Script {
    path: PathBuf,
    lines: Vec<String>,
    steps: Vec<(usize, Step)>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let units = [
        ("ms", 1_000_000u64),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    for (unit, nanos) in units {
        if let Some(number) = text.strip_suffix(unit)
            && let Ok(n) = number.parse::<u64>()
        {
            return Ok(Duration::from_nanos(n * nanos));
        }
    }
    Err(format!(
        "`{text}` is not a duration such as 10s, 500ms, 2m or 1h"
    ))
}

fn parse_engine(arguments: &str) -> Result<EngineOptions, String> {
    let defaults = EngineOptions::default();
    let (mut span, mut block, mut points) = (
        defaults.chunk_span,
        defaults.block_duration,
        defaults.max_chunk_points,
    );
    for argument in arguments.split_whitespace() {
        let (key, value) = argument
            .split_once('=')
            .ok_or_else(|| format!("`{argument}` is not key=value"))?;
        match key {
            "chunk_span" => span = parse_duration(value)?,
            "block_duration" => block = parse_duration(value)?,
            "max_chunk_points" => {
                points = value
                    .parse()
                    .map_err(|_| format!("`{value}` is not a number"))?
            }
            other => return Err(format!("unknown engine setting `{other}`")),
        }
    }
    Ok(test_options(span, block, points))
}

fn parse_limits(arguments: &str) -> Result<QueryLimits, String> {
    let mut limits = QueryLimits::default();
    if arguments.trim() == "default" {
        return Ok(limits);
    }
    for argument in arguments.split_whitespace() {
        let (key, value) = argument
            .split_once('=')
            .ok_or_else(|| format!("`{argument}` is not key=value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("`{value}` is not a number"))?;
        match key {
            "max_series" => limits.max_series = n,
            "max_points_scanned" => limits.max_points_scanned = n,
            "max_result_rows" => limits.max_result_rows = n,
            other => return Err(format!("unknown limit `{other}`")),
        }
    }
    Ok(limits)
}

fn parse_precision(text: &str) -> Result<Precision, String> {
    match text {
        "" | "ns" => Ok(Precision::Nanoseconds),
        "u" => Ok(Precision::Microseconds),
        "ms" => Ok(Precision::Milliseconds),
        "s" => Ok(Precision::Seconds),
        other => Err(format!("unknown precision `{other}`; use ns, u, ms or s")),
    }
}

/// Lines from `start` up to the next blank line (or the end).
fn block(lines: &[String], start: usize) -> usize {
    let mut end = start;
    while end < lines.len() && !lines[end].trim().is_empty() {
        end += 1;
    }
    end
}

fn parse_script(path: &Path) -> Result<Script, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    if !lines.first().is_some_and(|l| l.starts_with("# ")) {
        return Err("a script opens with a `# ` comment saying what it proves".into());
    }
    let mut steps = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        let number = i + 1;
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let at = |e: String| format!("line {number}: {e}");
        match word {
            "" => {}
            _ if line.starts_with('#') => {}
            // Notes for influxdb_check.py about the query that follows.
            "influxdb" => {}
            "engine" => steps.push((number, Step::Engine(parse_engine(rest).map_err(at)?))),
            "now" => {
                let now =
                    parse_time(rest.trim()).ok_or_else(|| at(format!("`{rest}` is not a time")))?;
                steps.push((number, Step::Now(now)));
            }
            "database" => steps.push((number, Step::Database(rest.trim().to_string()))),
            "create" => steps.push((number, Step::Create(rest.trim().to_string()))),
            "flush" => steps.push((
                number,
                Step::Flush {
                    everything: rest.trim() == "all",
                },
            )),
            "compact" => steps.push((number, Step::Compact)),
            "limits" => steps.push((number, Step::Limits(parse_limits(rest).map_err(at)?))),
            "load" => {
                let precision = parse_precision(rest.trim()).map_err(at)?;
                let end = block(&lines, i + 1);
                let mut body = lines[i + 1..end].join("\n");
                body.push('\n');
                steps.push((
                    number,
                    Step::Load {
                        precision,
                        lines: body,
                    },
                ));
                i = end;
                continue;
            }
            "query" => {
                let end = block(&lines, i + 1);
                steps.push((
                    number,
                    Step::Query {
                        text: rest.to_string(),
                        expected: lines[i + 1..end].to_vec(),
                        expected_start: i + 1,
                        expected_end: end,
                    },
                ));
                i = end;
                continue;
            }
            other => return Err(at(format!("unknown directive `{other}`"))),
        }
        i += 1;
    }
    if !steps.iter().any(|(_, s)| matches!(s, Step::Query { .. })) {
        return Err("a script runs at least one query".into());
    }
    Ok(Script {
        path: path.to_path_buf(),
        lines,
        steps,
    })
}

/// What a query returned, and where its expected block lies in the script (for UPDATE_SCRIPTS).
struct Output {
    expected_start: usize,
    expected_end: usize,
    got: Vec<String>,
}

/// A query whose answer differs from its script.
struct Failure {
    line: usize,
    query: String,
    expected: Vec<String>,
    got: Vec<String>,
}

/// Runs a script; returns each query's actual output (for UPDATE_SCRIPTS) and the failures.
fn run_script(script: &Script) -> Result<(Vec<Output>, Vec<Failure>), String> {
    let mut engine: Option<TestEngine> = None;
    let mut now = DEFAULT_NOW;
    let mut database = DEFAULT_DATABASE.to_string();
    let mut limits = QueryLimits::default();
    let mut outputs = Vec::new();
    let mut failures = Vec::new();
    let defaults = || {
        let d = EngineOptions::default();
        test_options(d.chunk_span, d.block_duration, d.max_chunk_points)
    };
    for (number, step) in &script.steps {
        let at = |e: String| format!("line {number}: {e}");
        match step {
            Step::Engine(options) => {
                if engine.is_some() {
                    return Err(at(
                        "`engine` must come before the first load or query".into()
                    ));
                }
                engine = Some(TestEngine::open(options.clone()));
            }
            Step::Now(t) => now = *t,
            Step::Database(name) => database = name.clone(),
            Step::Create(name) => {
                open(&mut engine, defaults()).database(name);
            }
            Step::Load { precision, lines } => {
                open(&mut engine, defaults())
                    .load(&database, lines, *precision)
                    .map_err(at)?;
            }
            Step::Flush { everything } => {
                let engine = open(&mut engine, defaults());
                for name in engine.engine.database_names() {
                    engine
                        .database(&name)
                        .flush(*everything)
                        .map_err(|e| at(e.to_string()))?;
                }
            }
            Step::Compact => {
                let engine = open(&mut engine, defaults());
                for name in engine.engine.database_names() {
                    let db = engine.database(&name);
                    db.flush(true).map_err(|e| at(e.to_string()))?;
                    db.compact_all().map_err(|e| at(e.to_string()))?;
                }
            }
            Step::Limits(l) => limits = l.clone(),
            Step::Query {
                text,
                expected,
                expected_start,
                expected_end,
            } => {
                let engine = open(&mut engine, defaults());
                let got = match engine.query(&database, now, limits.clone(), text) {
                    Ok(results) => render_results(&results),
                    Err(error) => {
                        let mut lines = vec!["parse error:".to_string()];
                        lines.extend(error.to_string().lines().map(str::to_string));
                        lines
                    }
                };
                let same = got.len() == expected.len()
                    && got
                        .iter()
                        .zip(expected)
                        .all(|(g, e)| tokens(g) == tokens(e));
                if !same {
                    failures.push(Failure {
                        line: *number,
                        query: text.clone(),
                        expected: expected.clone(),
                        got: got.clone(),
                    });
                }
                outputs.push(Output {
                    expected_start: *expected_start,
                    expected_end: *expected_end,
                    got,
                });
            }
        }
    }
    Ok((outputs, failures))
}

/// The script's engine, opened with default settings on first use.
fn open(engine: &mut Option<TestEngine>, options: EngineOptions) -> &TestEngine {
    engine.get_or_insert_with(|| TestEngine::open(options))
}

fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/scripts")
}

fn script_paths() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(scripts_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tq"))
        .collect();
    paths.sort();
    paths
}

/// Writes the actual outputs into the script in place of its expected blocks.
fn rewrite(script: &Script, outputs: &[Output]) {
    let mut lines = Vec::new();
    let mut i = 0;
    for output in outputs {
        lines.extend(script.lines[i..output.expected_start].iter().cloned());
        lines.extend(output.got.iter().cloned());
        i = output.expected_end;
    }
    lines.extend(script.lines[i..].iter().cloned());
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&script.path, text).unwrap();
}

#[test]
fn every_query_script_gets_the_rows_it_states() {
    let update = std::env::var_os("UPDATE_SCRIPTS").is_some();
    let paths = script_paths();
    assert!(
        !paths.is_empty(),
        "no scripts in {}",
        scripts_dir().display()
    );
    let mut report = String::new();
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let script = match parse_script(path) {
            Ok(script) => script,
            Err(e) => {
                report.push_str(&format!("{name}: {e}\n"));
                continue;
            }
        };
        let (outputs, failures) = match run_script(&script) {
            Ok(result) => result,
            Err(e) => {
                report.push_str(&format!("{name}: {e}\n"));
                continue;
            }
        };
        if update && !failures.is_empty() {
            rewrite(&script, &outputs);
            continue;
        }
        for failure in failures {
            report.push_str(&format!(
                "{name}:{}: query {}\n  expected:\n    {}\n  got:\n    {}\n",
                failure.line,
                failure.query,
                failure.expected.join("\n    "),
                failure.got.join("\n    ")
            ));
        }
    }
    assert!(report.is_empty(), "query scripts failed:\n{report}");
}

#[test]
fn times_print_as_influxdb_prints_them_and_read_back() {
    for (ns, text) in [
        (0, "1970-01-01T00:00:00Z"),
        (10_000_000_000, "1970-01-01T00:00:10Z"),
        (-250_000_000, "1969-12-31T23:59:59.75Z"),
        (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456789Z"),
        (951_782_400_000_000_000, "2000-02-29T00:00:00Z"),
        (DEFAULT_NOW, "2000-01-01T00:00:00Z"),
    ] {
        assert_eq!(format_time(ns), text);
        assert_eq!(parse_time(text), Some(ns));
    }
}

#[test]
fn expected_blocks_compare_cells_not_spacing() {
    assert_eq!(
        tokens("time   mean  \"a  b\""),
        vec!["time", "mean", "\"a  b\""]
    );
    assert_eq!(
        tokens("\"say \\\"hi\\\"\" 2.0"),
        vec!["\"say \\\"hi\\\"\"", "2.0"]
    );
    assert_ne!(tokens("1 2"), tokens("1 2 3"));
}
