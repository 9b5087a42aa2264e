//! Time to render the weekly report templates over 30 days of data (`gen.py --days 30`, with
//! fewer hosts, GPUs and requests than the default scale so it loads in about a minute), with
//! rollup tiers (the database compacted with `compact_all`, so tiers exist and the query engine
//! reads them) and without (`raw_only`, every query on raw points). Each template renders to
//! HTML over the last 7 days of the data; the trends template also reads 4 weeks of history.
//!
//! Run with:
//!
//!     cargo bench -p tally-benches --bench reports
//!
//! `REPORTS_DAYS`, `REPORTS_HOSTS`, `REPORTS_GPUS`, `REPORTS_LLM_RATE` change the dataset;
//! `REPORTS_RUNS` the number of renders per case (the median is printed).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use tally_engine::{CompactionOptions, Engine, EngineOptions, FsyncPolicy, PointBatch};
use tally_ingest::line_protocol::{self, ParseOptions};
use tally_server::reports::Reports;
use tally_server::reports::config::ReportsConfig;

/// The end of gen.py's window, 2026-12-01T00:00:00Z.
const END_NS: i64 = 1_796_083_200_000_000_000;
const DAY_NS: i64 = 86_400_000_000_000;
const TEMPLATES: [&str; 4] = ["llm-usage", "gpu-utilisation", "latency", "trends"];

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn load(engine: &Engine, days: &str) -> u64 {
    let out = Command::new("python3")
        .arg(tally_benches::Dataset::generator_path())
        .args(["--scale", "small", "--seed", "1", "--days", days])
        .args(["--hosts", &env("REPORTS_HOSTS", "1")])
        .args(["--gpus", &env("REPORTS_GPUS", "2")])
        .args(["--llm-rate", &env("REPORTS_LLM_RATE", "0.2")])
        .output()
        .expect("python3 gen.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = engine.create_database("telemetry").expect("db");
    let mut values = 0u64;
    for chunk in out
        .stdout
        .split(|b| *b == b'\n')
        .collect::<Vec<_>>()
        .chunks(10_000)
    {
        let body = chunk.join(&b'\n');
        let mut batch = PointBatch::new();
        let mut errors = Vec::new();
        line_protocol::parse_lines(&body, &ParseOptions::new(0), &mut batch, &mut errors);
        values += db.write(&batch).expect("write").values_written as u64;
    }
    db.flush(true).expect("flush");
    values
}

fn median_ms(reports: &Reports, name: &str, raw_only: bool, runs: usize) -> (f64, usize) {
    // One untimed run that also checks every query answered: the page cache is then warm for
    // both cases alike.
    let json = reports
        .render_period(name, END_NS - 7 * DAY_NS, END_NS, "json", raw_only)
        .expect("render");
    let text = String::from_utf8(json).expect("report JSON");
    assert!(
        text.contains("\"errors\": []"),
        "{name} (raw_only {raw_only}) had errors: {text}"
    );
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let html = reports
            .render_period(name, END_NS - 7 * DAY_NS, END_NS, "html", raw_only)
            .expect("render");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        bytes = html.len();
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], bytes)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("reports: bench");
        return;
    }
    let days = env("REPORTS_DAYS", "30");
    let runs: usize = env("REPORTS_RUNS", "3").parse().expect("REPORTS_RUNS");
    let temp = tempfile::tempdir().expect("tempdir");
    let options = EngineOptions {
        fsync: FsyncPolicy::Never,
        compaction: CompactionOptions {
            enabled: false,
            bytes_per_second: 0,
            cpu_percent: 100,
            ..CompactionOptions::default()
        },
        ..EngineOptions::default()
    };
    let engine = Arc::new(Engine::open(temp.path(), options).expect("open"));
    let started = Instant::now();
    let values = load(&engine, &days);
    println!(
        "reports: {values} values over {days} days loaded in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let records = engine
        .database("telemetry")
        .expect("db")
        .compact_all()
        .expect("compact");
    println!(
        "reports: compacted {} blocks (rollup tiers built) in {:.1}s",
        records.len(),
        started.elapsed().as_secs_f64()
    );
    let reports = Reports::open(engine.clone(), &ReportsConfig::default(), None, temp.path())
        .expect("reports");
    for name in TEMPLATES {
        let (tiers, bytes) = median_ms(&reports, name, false, runs);
        let (raw, _) = median_ms(&reports, name, true, runs);
        println!(
            "reports: {name:<16} 7-day HTML ({bytes} bytes): with tiers {tiers:8.1} ms, raw only {raw:8.1} ms, {:.1}x",
            raw / tiers
        );
    }
}
