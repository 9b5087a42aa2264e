//! Query execution benchmarks over the side-by-side benchmark's dataset (`gen.py --scale
//! default`, about 10 M field values, flushed into segments), measured in values aggregated per
//! second:
//!
//! - `stats_*`: aggregates whose buckets hold whole chunks, answered from chunk statistics;
//! - `decode_*`: aggregates whose buckets are smaller than a chunk, so every chunk is decoded;
//! - the four queries of the side-by-side benchmark (q1-q4), end to end through the executor.
//!
//! Run with:
//!
//!     cargo bench -p tally-benches --bench query_exec
//!
//! The rayon pool uses every core; per-core rates are these divided by the core count.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use tally_engine::{Engine, EngineOptions, FsyncPolicy, PointBatch};
use tally_ingest::line_protocol::{self, ParseOptions};
use tally_query::{QueryOptions, Value};

const T0: &str = "2026-11-30T00:00:00Z";
const T1: &str = "2026-12-01T00:00:00Z";

fn load(engine: &Engine, lp: &[u8]) {
    let db = engine.create_database("bench").expect("create");
    let text = std::str::from_utf8(lp).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    for chunk in lines.chunks(20_000) {
        let body = chunk.join("\n");
        let mut batch = PointBatch::new();
        let mut point_lines = Vec::new();
        line_protocol::parse_lines(
            body.as_bytes(),
            &ParseOptions::new(0),
            &mut batch,
            &mut point_lines,
        );
        db.write(&batch).expect("write");
    }
    engine.flush_all().expect("flush");
}

fn options() -> QueryOptions {
    QueryOptions {
        database: Some("bench".into()),
        ..QueryOptions::default()
    }
}

fn count(engine: &Engine, query: &str) -> u64 {
    let results = tally_query::execute(engine, query, &options()).expect("parse");
    let mut n = 0;
    for s in &results[0].series {
        for row in &s.values {
            for v in &row[1..] {
                if let Value::Integer(c) = v {
                    n += *c as u64;
                }
            }
        }
    }
    assert!(results[0].error.is_none(), "{:?}", results[0].error);
    n
}

fn query_benches(c: &mut Criterion) {
    let lp = tally_benches::line_protocol("default").expect("gen.py");
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(
        dir.path(),
        EngineOptions {
            fsync: FsyncPolicy::Never,
            ..EngineOptions::default()
        },
    )
    .expect("open");
    load(&engine, &lp);
    let range = format!("time >= '{T0}' AND time < '{T1}'");
    let cases = [
        (
            "stats_gpu_5_aggregates_1h",
            format!(
                "SELECT count(util_pct), sum(util_pct), mean(util_pct), min(power_w), max(power_w) FROM gpu WHERE {range} GROUP BY time(1h), host"
            ),
            format!(
                "SELECT count(util_pct), count(util_pct), count(util_pct), count(power_w), count(power_w) FROM gpu WHERE {range}"
            ),
        ),
        (
            "stats_llm_sum_tokens_1h",
            format!(
                "SELECT sum(completion_tokens) FROM llm WHERE {range} GROUP BY time(1h), model"
            ),
            format!("SELECT count(completion_tokens) FROM llm WHERE {range}"),
        ),
        (
            "decode_gpu_max_power_10m",
            format!("SELECT max(power_w) FROM gpu WHERE {range} GROUP BY time(10m), host"),
            format!("SELECT count(power_w) FROM gpu WHERE {range}"),
        ),
        (
            "decode_gpu_mean_util_1m",
            format!("SELECT mean(util_pct) FROM gpu WHERE {range} GROUP BY time(1m), host"),
            format!("SELECT count(util_pct) FROM gpu WHERE {range}"),
        ),
        (
            "decode_llm_p99_latency_1h",
            format!("SELECT p99(latency_ms) FROM llm WHERE {range} GROUP BY time(1h)"),
            format!("SELECT count(latency_ms) FROM llm WHERE {range}"),
        ),
    ];
    let mut group = c.benchmark_group("query");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    for (name, query, counting) in &cases {
        let values = count(&engine, counting);
        group.throughput(Throughput::Elements(values));
        group.bench_function(*name, |b| {
            b.iter(|| black_box(tally_query::execute(&engine, query, &options()).expect("parse")))
        });
    }
    // The side-by-side benchmark's queries.
    let q = [
        ("q1", "SELECT mean(util_pct) FROM gpu WHERE time >= '2026-11-30T18:00:00Z' AND time < '2026-12-01T00:00:00Z' GROUP BY time(1m), host".to_string()),
        ("q2", format!("SELECT sum(completion_tokens) FROM llm WHERE {range} GROUP BY time(1h), model")),
        ("q3", "SELECT last(power_w) FROM gpu WHERE time >= '2026-11-30T23:00:00Z' AND time < '2026-12-01T00:00:00Z' GROUP BY host, gpu".to_string()),
        ("q4", format!("SELECT max(power_w) FROM gpu WHERE {range} GROUP BY time(10m), host")),
    ];
    group.throughput(Throughput::Elements(1));
    for (name, query) in &q {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(tally_query::execute(&engine, query, &options()).expect("parse")))
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    query_benches(&mut c);
    c.final_summary();
}
