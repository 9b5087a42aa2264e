//! Shared pieces of the `tally-dump` tests: running the binary, an awkward data set written
//! through the engine, and canonical views of a data directory (every point, and the answers
//! to a set of queries) to compare before and after a round trip. Included by the other
//! `dump_*.rs` tests with `#[path]`; as a test target of its own it holds no tests.
#![allow(dead_code, reason = "each test file uses a different part")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tally_engine::{
    ColumnValues, Engine, EngineOptions, FieldType, FieldValue, PointBatch, TagFilter,
};

/// One day in nanoseconds.
pub(crate) const DAY: i64 = 86_400_000_000_000;
/// 2026-11-30T00:00:00Z.
pub(crate) const BASE: i64 = 1_795_996_800_000_000_000;

/// What one run of `tally-dump` did.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

pub(crate) fn dump_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tally-dump"));
    for variable in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        command.env_remove(variable);
    }
    command.stdin(Stdio::null());
    command
}

/// Runs `tally-dump args...`.
pub(crate) fn dump(args: &[&str]) -> Run {
    dump_command().args(args).output().unwrap().into()
}

/// Runs `tally-dump` and asserts it succeeded.
pub(crate) fn dump_ok(args: &[&str]) -> Run {
    let run = dump(args);
    assert_eq!(
        run.code, 0,
        "tally-dump {args:?} failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    run
}

pub(crate) fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Engine settings for tests: no fsync (speed), no background compaction (determinism).
pub(crate) fn engine_options() -> EngineOptions {
    let mut options = EngineOptions {
        fsync: tally_engine::FsyncPolicy::Never,
        ..EngineOptions::default()
    };
    options.compaction.enabled = false;
    options
}

/// A value of a point in the awkward data set.
pub(crate) enum V {
    F(f64),
    I(i64),
    U(u64),
    B(bool),
    S(&'static str),
}

fn field(value: &V) -> FieldValue<'static> {
    match value {
        V::F(f) => FieldValue::Float(*f),
        V::I(i) => FieldValue::Integer(*i),
        V::U(u) => FieldValue::Unsigned(*u),
        V::B(b) => FieldValue::Boolean(*b),
        V::S(s) => FieldValue::String((*s).into()),
    }
}

/// One point of a test data set: (measurement, tags, fields, time).
pub(crate) type TestPoint = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, V)>,
    i64,
);

/// Writes points through the engine.
pub(crate) fn write_points(engine: &Engine, database: &str, points: &[TestPoint]) {
    let db = engine.create_database(database).unwrap();
    let mut batch = PointBatch::new();
    for (measurement, tags, fields, time) in points {
        batch.start_point((*measurement).into());
        for (k, v) in tags {
            batch.add_tag((*k).into(), (*v).into());
        }
        for (k, v) in fields {
            batch.add_field((*k).into(), field(v));
        }
        batch.finish_point(*time).unwrap();
    }
    let summary = db.write(&batch).unwrap();
    assert!(summary.rejected.is_empty(), "{:?}", summary.rejected);
}

/// LLM request points over `days` days, one every `step_s` seconds, from BASE.
pub(crate) fn llm_points(days: i64, step_s: i64, offset: i64) -> Vec<TestPoint> {
    let models = ["gpt-4o", "claude-sonnet", "llama-70b"];
    let mut out = Vec::new();
    let n = days * 86_400 / step_s;
    for i in 0..n {
        let t = BASE + offset + i * step_s * 1_000_000_000;
        let model = models[(i % 3) as usize];
        out.push((
            "llm",
            vec![
                ("provider", if i % 2 == 0 { "openai" } else { "anthropic" }),
                ("model", model),
            ],
            vec![
                ("prompt_tokens", V::I(100 + i % 900)),
                ("completion_tokens", V::I(20 + (i * 7) % 500)),
                ("latency_ms", V::F(250.0 + ((i * 37) % 2000) as f64 * 0.5)),
                ("cost_usd", V::F(((i % 97) as f64) * 0.00013)),
            ],
            t,
        ));
    }
    out
}

/// Points with names, values and times that are hard to carry: escaped names, unicode,
/// extreme integers, special floats (NaN and infinities among them), negative timestamps,
/// strings with quotes, backslashes and line breaks.
pub(crate) fn awkward_points() -> Vec<TestPoint> {
    vec![
        (
            "we ird,name =x\"",
            vec![("t k=", "v,1 =ü"), ("host", "node-1")],
            vec![("f \"q,=", V::F(1.5)), ("n", V::I(-3))],
            -1,
        ),
        (
            "we ird,name =x\"",
            vec![("t k=", "v,1 =ü"), ("host", "node-1")],
            vec![("f \"q,=", V::F(-0.0)), ("n", V::I(i64::MIN))],
            -1_000_000_000_000_000,
        ),
        (
            "gpu",
            vec![("model", "ソネット"), ("host", "node-1")],
            vec![
                ("util", V::F(97.25)),
                ("big", V::U(u64::MAX)),
                ("small", V::I(i64::MIN)),
                ("max", V::I(i64::MAX)),
                ("ok", V::B(true)),
                ("msg", V::S("say \"hi\" \\o/\nsecond line ✓")),
            ],
            BASE,
        ),
        (
            "gpu",
            vec![("model", "ソネット"), ("host", "node-1")],
            vec![
                ("util", V::F(f64::NAN)),
                ("ok", V::B(false)),
                ("msg", V::S("")),
            ],
            BASE + 1,
        ),
        (
            "gpu",
            vec![("model", "ソネット"), ("host", "node-1")],
            vec![
                ("util", V::F(f64::INFINITY)),
                ("tiny", V::F(5e-324)),
                ("huge", V::F(f64::MAX)),
            ],
            BASE + 2,
        ),
        (
            "gpu",
            vec![("model", "ソネット"), ("host", "node-2")],
            vec![("util", V::F(f64::NEG_INFINITY))],
            BASE + 3,
        ),
        (
            "gpu",
            vec![("model", "ソネット"), ("host", "node-2")],
            vec![("util", V::F(0.1)), ("big", V::U(0))],
            BASE + 4,
        ),
    ]
}

/// A data directory with two databases: `requests` (LLM requests over three days, flushed
/// into segments, plus points left in the WAL) and `odd names ü` (the awkward points).
pub(crate) fn build_dataset(dir: &Path, days: i64, step_s: i64) {
    let engine = Engine::open(dir, engine_options()).unwrap();
    for chunk in llm_points(days, step_s, 0).chunks(20_000) {
        write_points(&engine, "requests", chunk);
    }
    engine.database("requests").unwrap().flush(true).unwrap();
    write_points(&engine, "odd names ü", &awkward_points());
    engine.database("odd names ü").unwrap().flush(true).unwrap();
    // Left in the WAL: a few more requests, and one more awkward point.
    write_points(&engine, "requests", &llm_points(1, 3600, days * DAY)[..5]);
    write_points(
        &engine,
        "odd names ü",
        &[(
            "gpu",
            vec![("model", "ソネット"), ("host", "node-3")],
            vec![("util", V::F(f64::NAN)), ("n", V::I(7))],
            -5,
        )],
    );
    drop(engine);
}

fn value_text(value: &FieldValue<'_>) -> String {
    match value {
        FieldValue::Float(f) => format!("float:{:016x}", f.to_bits()),
        FieldValue::Integer(i) => format!("integer:{i}"),
        FieldValue::Unsigned(u) => format!("unsigned:{u}"),
        FieldValue::Boolean(b) => format!("boolean:{b}"),
        FieldValue::String(s) => format!("string:{s:?}"),
        other => format!("{other:?}"),
    }
}

/// Every point of every database: "db|measurement|tags|field|time" -> "type:value" (floats by
/// their bits, so NaN and -0 compare exactly).
pub(crate) fn all_points(dir: &Path) -> BTreeMap<String, String> {
    let engine = Engine::open(dir, engine_options()).unwrap();
    let mut out = BTreeMap::new();
    for name in engine.database_names() {
        let db = engine.database(&name).unwrap();
        for measurement in db.measurements() {
            for column in db.select(&measurement, None, &TagFilter::All) {
                let view = db.read(&[column.id], i64::MIN, i64::MAX).unwrap();
                let mut ts = Vec::new();
                let mut values = ColumnValues::new(FieldType::Float);
                for piece in view.pieces(column.id).unwrap() {
                    piece.decode_into(&mut ts, &mut values).unwrap();
                    for (i, t) in ts.iter().enumerate() {
                        let value = values.get(i).unwrap();
                        out.insert(
                            format!(
                                "{name}|{measurement}|{:?}|{}|{t}",
                                column.tags, column.field
                            ),
                            value_text(&value),
                        );
                    }
                }
            }
        }
    }
    out
}

/// The points line protocol can carry: without NaN and infinite floats.
pub(crate) fn finite_only(points: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    points
        .iter()
        .filter(|(_, v)| {
            v.strip_prefix("float:")
                .and_then(|bits| u64::from_str_radix(bits, 16).ok())
                .is_none_or(|bits| f64::from_bits(bits).is_finite())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The queries whose answers must survive a round trip.
pub(crate) const QUERIES: &[(&str, &str)] = &[
    ("requests", "SHOW MEASUREMENTS"),
    ("requests", "SHOW SERIES"),
    ("requests", "SHOW FIELD KEYS"),
    ("requests", "SHOW TAG VALUES WITH KEY = \"model\""),
    (
        "requests",
        "SELECT count(latency_ms), sum(completion_tokens), max(latency_ms), min(cost_usd) FROM llm GROUP BY model",
    ),
    (
        "requests",
        "SELECT mean(latency_ms) FROM llm WHERE time >= 1795996800000000000 AND time < 1796256000000000000 GROUP BY time(1h), provider",
    ),
    (
        "requests",
        "SELECT * FROM llm WHERE model = 'gpt-4o' LIMIT 50",
    ),
    ("odd names ü", "SHOW MEASUREMENTS"),
    ("odd names ü", "SELECT * FROM gpu"),
    ("odd names ü", "SELECT * FROM /^we/"),
];

/// The answers to [`QUERIES`] on a data directory, as text.
pub(crate) fn answers(dir: &Path) -> Vec<String> {
    let engine = Engine::open(dir, engine_options()).unwrap();
    QUERIES
        .iter()
        .map(|(db, q)| {
            let options = tally_query::QueryOptions {
                database: Some((*db).to_string()),
                now_ns: Some(BASE + 10 * DAY),
                ..Default::default()
            };
            format!(
                "{db}: {q}\n{:?}",
                tally_query::execute(&engine, q, &options)
            )
        })
        .collect()
}

/// A directory's files (relative paths) and sizes, for finding files to damage.
pub(crate) fn files_under(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::metadata(&path).unwrap().len()));
            }
        }
    }
    out.sort();
    out
}

/// Asserts two point maps are equal, showing the first differences rather than both maps.
pub(crate) fn assert_same_points(
    got: &BTreeMap<String, String>,
    expected: &BTreeMap<String, String>,
    context: &str,
) {
    let mut differences = Vec::new();
    for (key, value) in expected {
        match got.get(key) {
            Some(v) if v == value => {}
            Some(v) => differences.push(format!("{key}: got {v}, expected {value}")),
            None => differences.push(format!("{key}: missing (expected {value})")),
        }
    }
    for (key, value) in got {
        if !expected.contains_key(key) {
            differences.push(format!("{key}: unexpected {value}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{context}: {} differences in {} points, first:\n{}",
        differences.len(),
        expected.len(),
        differences
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
