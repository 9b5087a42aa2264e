//! Queries answered from rollup tiers agree with the same queries forced to raw data: exactly
//! for count, sum, mean, min, max, first, last and spread (sums within float rounding), within
//! the sketch's relative error for percentiles and medians; EXPLAIN says which tier answered.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use tally_engine::{
    Clock, CompactionOptions, Engine, EngineOptions, FieldValue, FsyncPolicy, PointBatch,
};
use tally_query::{QueryOptions, Value};

const DAY: i64 = 86_400_000_000_000;
/// 2026-11-01T00:00:00Z
const T0: i64 = 1_793_491_200_000_000_000;

fn setup() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * DAY);
    let options = EngineOptions {
        fsync: FsyncPolicy::Never,
        clock,
        compaction: CompactionOptions {
            enabled: false,
            ..CompactionOptions::default()
        },
        ..EngineOptions::default()
    };
    let engine = Engine::open(dir.path(), options).unwrap();
    let db = engine.create_database("db").unwrap();
    // Three days of 10-second samples from 3 hosts, a float and an integer field, with a
    // deterministic wobble; written in two halves so blocks have several segments.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for half in 0..2 {
        let mut batch = PointBatch::new();
        for i in 0..(3 * 8640) {
            if i % 2 != half {
                continue;
            }
            for host in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let t = T0 + i * 10_000_000_000 + host * 1_000_000;
                batch
                    .push(
                        "gpu",
                        [(Cow::Borrowed("host"), Cow::Owned(format!("h{host}")))],
                        [
                            (
                                Cow::Borrowed("power"),
                                FieldValue::Float(50.0 + (seed % 4000) as f64 / 10.0),
                            ),
                            (
                                Cow::Borrowed("util"),
                                FieldValue::Integer((seed % 101) as i64),
                            ),
                        ],
                        t,
                    )
                    .unwrap();
            }
        }
        db.write(&batch).unwrap();
        db.flush(true).unwrap();
    }
    db.compact_all().unwrap();
    (dir, engine)
}

fn run(engine: &Engine, q: &str, raw_only: bool) -> Vec<tally_query::ResultSeries> {
    let options = QueryOptions {
        database: Some("db".into()),
        now_ns: Some(T0 + 10 * DAY),
        raw_only,
        ..QueryOptions::default()
    };
    let results = tally_query::execute(engine, q, &options).unwrap();
    assert!(results[0].error.is_none(), "{q}: {:?}", results[0].error);
    results[0].series.clone()
}

fn close(a: &Value, b: &Value, relative: f64) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            (x - y).abs() <= relative * x.abs().max(y.abs()) + 1e-9
        }
        // Integer estimates are rounded: half a unit more.
        (Value::Integer(x), Value::Integer(y)) if relative > 1e-9 => {
            ((x - y).abs() as f64) <= relative * (*x).abs().max((*y).abs()) as f64 + 0.5
        }
        (x, y) => x == y,
    }
}

fn compare(engine: &Engine, q: &str, relative: f64) {
    let tiered = run(engine, q, false);
    let raw = run(engine, q, true);
    assert_eq!(tiered.len(), raw.len(), "{q}");
    assert!(!raw.is_empty(), "{q} returned nothing");
    for (t, r) in tiered.iter().zip(&raw) {
        assert_eq!(
            (&t.name, &t.tags, &t.columns),
            (&r.name, &r.tags, &r.columns),
            "{q}"
        );
        assert_eq!(t.values.len(), r.values.len(), "{q}");
        for (row_t, row_r) in t.values.iter().zip(&r.values) {
            for (a, b) in row_t.iter().zip(row_r) {
                assert!(
                    close(a, b, relative),
                    "{q}: tier {a:?} vs raw {b:?} in {row_t:?} / {row_r:?}"
                );
            }
        }
    }
}

fn explain(engine: &Engine, q: &str) -> String {
    let series = run(engine, &format!("EXPLAIN {q}"), false);
    series[0]
        .values
        .iter()
        .map(|r| format!("{:?}\n", r[0]))
        .collect()
}

#[test]
fn exact_aggregates_from_tiers_equal_raw_answers() {
    let (_dir, engine) = setup();
    let range = "time >= '2026-11-01T00:00:00Z' AND time < '2026-11-04T00:00:00Z'";
    for q in [
        format!("SELECT count(power), sum(power), mean(power), min(power), max(power), first(power), last(power), spread(power) FROM gpu WHERE {range} GROUP BY time(1h), host"),
        format!("SELECT count(util), sum(util), mean(util), min(util), max(util), first(util), last(util), spread(util) FROM gpu WHERE {range} GROUP BY time(6h)"),
        format!("SELECT sum(util) / count(util) AS avg FROM gpu WHERE {range} GROUP BY time(1d), host"),
        format!("SELECT mean(power) FROM gpu WHERE {range} GROUP BY time(5m), host"),
        format!("SELECT max(power), last(util) FROM gpu WHERE {range}"),
        // Bounds that cut buckets: the cut blocks are read raw.
        "SELECT sum(util), count(util) FROM gpu WHERE time >= '2026-11-01T00:30:00Z' AND time < '2026-11-03T12:15:00Z' GROUP BY time(1h)".to_string(),
        // Unbounded end: the last bucket runs to now().
        "SELECT count(power), max(power) FROM gpu WHERE time >= '2026-11-02T00:00:00Z' GROUP BY time(1h) fill(none)".to_string(),
    ] {
        compare(&engine, &q, 1e-12);
    }
    let plan = explain(
        &engine,
        &format!("SELECT mean(power) FROM gpu WHERE {range} GROUP BY time(1h)"),
    );
    assert!(plan.contains("tier: 1h rollups for 3 block(s)"), "{plan}");
    let plan = explain(
        &engine,
        &format!("SELECT mean(power) FROM gpu WHERE {range} GROUP BY time(5m)"),
    );
    assert!(plan.contains("tier: 1m rollups"), "{plan}");
    let plan = explain(
        &engine,
        &format!("SELECT mean(power) FROM gpu WHERE {range} GROUP BY time(90s)"),
    );
    assert!(
        plan.contains("tier: raw (GROUP BY time is not a multiple"),
        "{plan}"
    );
    let plan = explain(
        &engine,
        &format!("SELECT stddev(power) FROM gpu WHERE {range} GROUP BY time(1h)"),
    );
    assert!(
        plan.contains("tier: raw (stddev needs every point)"),
        "{plan}"
    );
}

#[test]
fn percentiles_from_tiers_are_within_the_sketch_error() {
    let (_dir, engine) = setup();
    let range = "time >= '2026-11-01T00:00:00Z' AND time < '2026-11-04T00:00:00Z'";
    // The sketch keeps every value within 1 % of its true value at the same rank.
    compare(
        &engine,
        &format!(
            "SELECT p99(power), p50(power), percentile(power, 90) FROM gpu WHERE {range} GROUP BY time(1h), host"
        ),
        0.0101,
    );
    compare(
        &engine,
        &format!("SELECT p95(util) FROM gpu WHERE {range} GROUP BY time(1d)"),
        0.0101,
    );
}

#[test]
fn tier_queries_read_rows_not_points() {
    let (_dir, engine) = setup();
    let q = "SELECT mean(power) FROM gpu WHERE time >= '2026-11-01T00:00:00Z' AND time < '2026-11-04T00:00:00Z' GROUP BY time(1h)";
    let analyze = |raw_only: bool| -> String {
        let series = run(&engine, &format!("EXPLAIN ANALYZE {q}"), raw_only);
        series[0]
            .values
            .iter()
            .map(|r| format!("{:?}\n", r[0]))
            .collect()
    };
    let tiered = analyze(false);
    assert!(
        tiered.contains("rollup rows read: 216"),
        "3 hosts x 72 hours:\n{tiered}"
    );
    assert!(tiered.contains("(0 points)"), "{tiered}");
    let raw = analyze(true);
    assert!(raw.contains("rollup rows read: 0"), "{raw}");
}
