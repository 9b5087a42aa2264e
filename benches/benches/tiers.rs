//! Rollup tiers over 30 days (`gen.py --days 30`, with fewer hosts and requests than the
//! default scale so it runs in minutes on 2 cores):
//!
//! 1. load, flush and compact: compaction time, and disk use as bytes per raw value (raw
//!    segments, rollup segments, total);
//! 2. hourly mean and p99 over the 30 days, answered from the 1 h tier against the same query
//!    forced to raw data (`raw_only`): medians of 21 and 7 runs, interleaved, and their ratio;
//! 3. ingest throughput and per-batch write latency (p50, p99) into fresh databases with the
//!    default durability (fsync always), alone and while the first database compacts from
//!    scratch: three rounds of each, alternating, each writing a day of data into 8 databases
//!    in turn (about 400 batches of 5,000 lines), and the median of each measure.
//!
//! Run with:
//!
//!     cargo bench -p tally-benches --bench tiers
//!
//! `TIERS_DAYS`, `TIERS_HOSTS`, `TIERS_GPUS` and `TIERS_LLM_RATE` change the dataset;
//! `TIERS_EXPLAIN=1` prints each query's EXPLAIN ANALYZE;
//! `TIERS_TAIL=1` prints the tail of each ingest measurement's batch latencies and where in
//! its database's day each of the slowest batches fell;
//! `TIERS_COMPACTION_CPU=P` throttles the compaction that runs beside ingest to P % of a core
//! (default: the engine's default, 25); `TIERS_WAL_PREALLOCATE=0` turns WAL preallocation off
//! for the ingest measurements;
//! `TIERS_PROFILE_RUNS=N` runs only the tier queries, N times each, for a profiler;
//! `TIERS_DIR=path` keeps the loaded, compacted data there and reuses it on later runs;
//! `TIERS_QUERY='SELECT ... WHERE $range ...'` replaces the queries with one of your own.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use tally_engine::{CompactionOptions, Engine, EngineOptions, FsyncPolicy, PointBatch};
use tally_ingest::line_protocol::{self, ParseOptions};
use tally_query::QueryOptions;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn generate(days: &str, hosts: &str, gpus: &str, rate: &str) -> Vec<u8> {
    let generator = tally_benches::Dataset::generator_path();
    let out = Command::new("python3")
        .arg(&generator)
        .args([
            "--scale",
            "small",
            "--days",
            days,
            "--hosts",
            hosts,
            "--gpus",
            gpus,
            "--llm-rate",
            rate,
        ])
        .output()
        .expect("python3 gen.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn batches(lp: &[u8], lines_per_batch: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut n = 0;
    for line in lp.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        current.extend_from_slice(line);
        current.push(b'\n');
        n += 1;
        if n == lines_per_batch {
            out.push(std::mem::take(&mut current));
            n = 0;
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn write_all(db: &tally_engine::Database, bodies: &[Vec<u8>]) -> (u64, Vec<Duration>) {
    let mut values = 0u64;
    let mut latencies = Vec::with_capacity(bodies.len());
    for body in bodies {
        let mut batch = PointBatch::new();
        let mut lines = Vec::new();
        line_protocol::parse_lines(body, &ParseOptions::new(0), &mut batch, &mut lines);
        let started = Instant::now();
        let summary = db.write(&batch).expect("write");
        latencies.push(started.elapsed());
        values += summary.values_written as u64;
    }
    (values, latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64) * p / 100.0).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

/// One run of `query`, in milliseconds.
fn run_ms(engine: &Engine, query: &str, raw_only: bool) -> f64 {
    let options = QueryOptions {
        database: Some("tiers".into()),
        raw_only,
        ..QueryOptions::default()
    };
    let started = Instant::now();
    let results = tally_query::execute(engine, query, &options).expect("parse");
    assert!(results[0].error.is_none(), "{:?}", results[0].error);
    started.elapsed().as_secs_f64() * 1000.0
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Medians of the query from the tier (`TIER_RUNS` runs) and forced to raw data (`RAW_RUNS`),
/// the raw runs spread among the tier runs so that both meet the same load on a shared machine.
fn tier_and_raw_ms(engine: &Engine, query: &str) -> (f64, f64) {
    const TIER_RUNS: usize = 21;
    const RAW_RUNS: usize = 7;
    let (mut tier, mut raw) = (Vec::new(), Vec::new());
    for i in 0..TIER_RUNS {
        tier.push(run_ms(engine, query, false));
        if i % (TIER_RUNS / RAW_RUNS) == 0 && raw.len() < RAW_RUNS {
            raw.push(run_ms(engine, query, true));
        }
    }
    (median(tier), median(raw))
}

fn dir_bytes(dir: &std::path::Path, suffix: &str) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                total += dir_bytes(&p, suffix);
            } else if p.to_string_lossy().ends_with(suffix) {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("tiers: bench");
        return;
    }
    let days = env("TIERS_DAYS", "30");
    // TIERS_DIR keeps the loaded and compacted data between runs, for profiling the queries.
    let temp = tempfile::tempdir().expect("tempdir");
    let kept = std::env::var("TIERS_DIR")
        .ok()
        .map(std::path::PathBuf::from);
    let path = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let reuse = kept.is_some() && path.join("dbs/tiers").exists();
    let options = EngineOptions {
        fsync: FsyncPolicy::Never,
        // Unthrottled, to measure compaction's own speed; the ingest measurement below uses
        // the default throttle.
        compaction: CompactionOptions {
            enabled: false,
            bytes_per_second: 0,
            cpu_percent: 100,
            ..CompactionOptions::default()
        },
        ..EngineOptions::default()
    };
    let engine = Engine::open(&path, options).expect("open");
    let mut bodies = Vec::new();
    if !reuse {
        let lp = generate(
            &days,
            &env("TIERS_HOSTS", "2"),
            &env("TIERS_GPUS", "4"),
            &env("TIERS_LLM_RATE", "1"),
        );
        bodies = batches(&lp, 10_000);
        let db = engine.create_database("tiers").expect("db");
        let started = Instant::now();
        let (values, _) = write_all(&db, &bodies);
        db.flush(true).expect("flush");
        let load = started.elapsed();
        let raw_before = dir_bytes(&path, ".tseg");
        let started = Instant::now();
        let records = db.compact_all().expect("compact");
        let compaction = started.elapsed();
        let stats = db.stats();
        let total = dir_bytes(&path, ".tseg");
        println!(
            "tiers: {values} values over {days} days, loaded in {:.1}s; {} segments before compaction ({:.3} bytes/value)",
            load.as_secs_f64(),
            records.len(),
            raw_before as f64 / values as f64
        );
        println!(
            "tiers: unthrottled compaction of {} blocks took {:.1}s; after it: {} segments ({} rollup), {:.3} bytes per raw value in total",
            records.len(),
            compaction.as_secs_f64(),
            stats.segments,
            stats.rollup_segments,
            total as f64 / values as f64
        );
    }
    let t1 = "2026-12-01T00:00:00Z";
    let range = format!("time >= '{}' AND time < '{t1}'", start_of(&days));
    let mut queries = vec![
        (
            "gpu hourly mean and p99",
            format!("SELECT mean(power_w), p99(power_w) FROM gpu WHERE {range} GROUP BY time(1h)"),
        ),
        (
            "llm hourly mean and p99 latency per model",
            format!(
                "SELECT mean(latency_ms), p99(latency_ms) FROM llm WHERE {range} GROUP BY time(1h), model"
            ),
        ),
    ];
    if let Ok(q) = std::env::var("TIERS_QUERY") {
        queries = vec![("TIERS_QUERY", q.replace("$range", &range))];
    }
    for (name, q) in queries {
        if std::env::var("TIERS_EXPLAIN").is_ok() {
            let options = QueryOptions {
                database: Some("tiers".into()),
                ..QueryOptions::default()
            };
            let results = tally_query::execute(&engine, &format!("EXPLAIN ANALYZE {q}"), &options)
                .expect("parse");
            for series in &results[0].series {
                for row in &series.values {
                    println!("tiers: explain {name}: {row:?}");
                }
            }
        }
        if let Ok(n) = std::env::var("TIERS_PROFILE_RUNS") {
            // For a profiler: only the tier query, many times.
            for _ in 0..n.parse().unwrap_or(100) {
                run_ms(&engine, &q, false);
            }
            continue;
        }
        let (tier, raw) = tier_and_raw_ms(&engine, &q);
        println!(
            "tiers: {name}: 1h tier {tier:.2} ms, raw {raw:.2} ms, {:.1}x faster",
            raw / tier
        );
    }

    if std::env::var("TIERS_PROFILE_RUNS").is_ok() || reuse || bodies.is_empty() {
        return;
    }
    // Ingest into fresh databases alone, then while the first one compacts from scratch,
    // alternating so that a slow spell of the machine falls on both.
    let fresh = generate("1", "2", "4", "1");
    let fresh_bodies = batches(&fresh, 5_000);
    let measure = |name: &str, compact: bool| -> [f64; 3] {
        let dir2 = tempfile::tempdir().expect("tempdir");
        let engine2 = Engine::open(
            dir2.path(),
            EngineOptions {
                compaction: CompactionOptions {
                    enabled: false,
                    cpu_percent: std::env::var("TIERS_COMPACTION_CPU")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(CompactionOptions::default().cpu_percent),
                    ..CompactionOptions::default()
                },
                wal_preallocate: std::env::var("TIERS_WAL_PREALLOCATE").map_or(true, |v| v != "0"),
                ..EngineOptions::default()
            },
        )
        .expect("open");
        let targets: Vec<_> = (0..INGEST_DATABASES)
            .map(|k| engine2.create_database(&format!("ingest{k}")).expect("db"))
            .collect();
        let busy = engine2.create_database("tiers").expect("db");
        if compact {
            write_all(&busy, &bodies);
            busy.flush(true).expect("flush");
        }
        let compactor = compact.then(|| {
            let busy = busy.clone();
            std::thread::spawn(move || busy.compact_all().expect("compact").len())
        });
        let started = Instant::now();
        // Each batch's latency and its position in its database's day.
        let (mut n, mut timed) = (0, Vec::new());
        for target in &targets {
            let (values, batch_latencies) = write_all(target, &fresh_bodies);
            n += values;
            timed.extend(batch_latencies.into_iter().enumerate().map(|(i, d)| (d, i)));
        }
        let elapsed = started.elapsed();
        let compacted = compactor.map(|h| h.join().expect("join"));
        timed.sort();
        let latencies: Vec<Duration> = timed.iter().map(|(d, _)| *d).collect();
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        let p = |q: f64| ms(&percentile(&latencies, q));
        if std::env::var("TIERS_TAIL").is_ok() {
            let slowest = timed.iter().rev().take(12);
            let at: Vec<String> = slowest.clone().map(|(_, i)| i.to_string()).collect();
            let slowest: Vec<String> = slowest.map(|(d, _)| format!("{:.2}", ms(d))).collect();
            println!(
                "tiers: slowest batches' positions in their database: {}",
                at.join(" ")
            );
            println!(
                "tiers: latency tail {name}: p90 {:.2} p95 {:.2} p98 {:.2} ms; slowest {}",
                p(90.0),
                p(95.0),
                p(98.0),
                slowest.join(" ")
            );
        }
        let measures = [n as f64 / elapsed.as_secs_f64() / 1e6, p(50.0), p(99.0)];
        println!(
            "tiers: ingest {name}: {:.2} M values/s, {} batches, latency p50 {:.2} ms, p99 {:.2} ms{}",
            measures[0],
            latencies.len(),
            measures[1],
            measures[2],
            compacted.map_or(String::new(), |c| format!(
                " ({c} blocks compacted alongside)"
            ))
        );
        measures
    };
    let (mut alone, mut compacting) = (Vec::new(), Vec::new());
    for _ in 0..INGEST_ROUNDS {
        alone.push(measure("alone", false));
        compacting.push(measure("while compacting", true));
    }
    for (name, runs) in [("alone", alone), ("while compacting", compacting)] {
        let m = |k: usize| median(runs.iter().map(|r| r[k]).collect());
        println!(
            "tiers: ingest {name}, median of {INGEST_ROUNDS}: {:.2} M values/s, latency p50 {:.2} ms, p99 {:.2} ms",
            m(0),
            m(1),
            m(2)
        );
    }
}

/// Databases each ingest measurement writes a day of data into, one after another.
const INGEST_DATABASES: usize = 8;
/// Rounds of ingest alone and while compacting.
const INGEST_ROUNDS: usize = 3;

/// The window start for `days` days ending 2026-12-01.
fn start_of(days: &str) -> String {
    let days: i64 = days.parse().unwrap_or(30);
    let end = 1_796_083_200i64;
    let start = end - days * 86_400;
    let (y, m, d) = civil(start.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}T00:00:00Z")
}

fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
