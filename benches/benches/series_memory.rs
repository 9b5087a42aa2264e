//! Memory per series at high cardinality: 1,000,000 series, each with one open chunk (one
//! point), held by the head and the series index. Prints the process's resident memory growth
//! per series (the target is at most 1 KiB).
//!
//! Run with:
//!
//!     cargo bench -p tally-benches --bench series_memory
//!
//! `SERIES=N` changes the count.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::borrow::Cow;
use std::time::{Duration, Instant};

use tally_engine::{Engine, EngineOptions, FieldValue, FsyncPolicy, PointBatch};

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("series_memory: bench");
        return;
    }
    let series: u64 = std::env::var("SERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let options = EngineOptions {
        fsync: FsyncPolicy::Never,
        // No flush may empty the head while measuring.
        flush_bytes: 64 << 30,
        max_head_bytes: 128 << 30,
        flush_interval: Duration::from_secs(3600),
        max_series_per_database: 0,
        ..EngineOptions::default()
    };
    let engine = Engine::open(dir.path(), options).expect("open");
    let db = engine.create_database("cardinality").expect("create");
    let before = rss_bytes();
    let started = Instant::now();
    let mut batch = PointBatch::new();
    for i in 0..series {
        batch
            .push(
                "requests",
                [
                    (
                        Cow::Borrowed("host"),
                        Cow::Owned(format!("host-{}", i % 64)),
                    ),
                    (
                        Cow::Borrowed("request_id"),
                        Cow::Owned(format!("req-{i:012}")),
                    ),
                ],
                [(
                    Cow::Borrowed("latency_ms"),
                    FieldValue::Float(i as f64 * 0.5),
                )],
                1_796_083_200_000_000_000 + i as i64,
            )
            .expect("point");
        if batch.len() == 10_000 {
            db.write(&batch).expect("write");
            batch.clear();
        }
    }
    if !batch.is_empty() {
        db.write(&batch).expect("write");
    }
    drop(batch);
    let after = rss_bytes();
    let stats = db.stats();
    println!(
        "series_memory: {} series in {:.1}s; resident memory grew {} bytes = {:.0} bytes per series \
         (head estimate {} bytes, {} columns)",
        stats.series,
        started.elapsed().as_secs_f64(),
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / series as f64,
        stats.head_bytes,
        stats.columns
    );
}
