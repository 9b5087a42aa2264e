//! Engine benchmarks over the side-by-side benchmark's dataset (`gen.py --scale small`, about
//! 1 M field values): in-process batched ingest with the default durability (fsync always,
//! group commit, two writer threads as on this 2-core machine), and a full scan that decodes
//! every chunk of every column.
//!
//! Run with:
//!
//!     cargo bench -p tally-benches --bench engine
//!
//! Before measuring it prints the stored bytes per value after a flush.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::borrow::Cow;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use tally_engine::{
    ColumnValues, Database, Engine, EngineOptions, FieldType, PointBatch, TagFilter,
};
use tally_ingest::line_protocol::{self, ParseOptions};

/// The dataset as owned batches of 5,000 lines (what a client sends per request).
fn batches(lp: &[u8]) -> Vec<PointBatch<'static>> {
    let mut out = Vec::new();
    let text = std::str::from_utf8(lp).expect("gen.py writes UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    for chunk in lines.chunks(5000) {
        let body = chunk.join("\n");
        let mut batch = PointBatch::new();
        let mut point_lines = Vec::new();
        let report = line_protocol::parse_lines(
            body.as_bytes(),
            &ParseOptions::new(0),
            &mut batch,
            &mut point_lines,
        );
        assert!(report.errors.is_empty(), "{:?}", report.errors.first());
        // Own every string so the batch outlives the body.
        let mut owned = PointBatch::new();
        for p in batch.points() {
            owned
                .push(
                    p.measurement().to_string(),
                    p.tags()
                        .iter()
                        .map(|(k, v)| (Cow::Owned(k.to_string()), Cow::Owned(v.to_string()))),
                    p.fields()
                        .iter()
                        .map(|(k, v)| (Cow::Owned(k.to_string()), v.clone().into_owned())),
                    p.timestamp(),
                )
                .expect("valid point");
        }
        out.push(owned);
    }
    out
}

fn load(db: &Arc<Database>, batches: &[PointBatch<'static>], threads: usize) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..threads {
            let db = db.clone();
            let next = next.clone();
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(batch) = batches.get(i) else { break };
                    db.write(batch).expect("write");
                }
            });
        }
    });
}

fn engine_benches(c: &mut Criterion) {
    let lp = tally_benches::line_protocol("small").expect("gen.py");
    let batches = batches(&lp);
    let values: u64 = batches.iter().map(|b| b.n_values() as u64).sum();

    // Stored bytes per value after a flush, for the record.
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::open(dir.path(), EngineOptions::default()).expect("open");
        load(
            &engine.create_database("bench").expect("create database"),
            &batches,
            2,
        );
        engine.close().expect("close");
        let db = engine.database("bench").expect("db");
        let stats = db.stats();
        eprintln!(
            "engine: {values} values stored in {} segment bytes = {:.3} bytes/value ({} segments)",
            stats.segment_bytes,
            stats.segment_bytes as f64 / values as f64,
            stats.segments
        );
    }

    let mut group = c.benchmark_group("engine");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(values));
    group.bench_function("ingest_fsync_always_2_writers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("tempdir");
                let engine = Engine::open(dir.path(), EngineOptions::default()).expect("open");
                // Creating the database (which writes its first WAL file) is not ingest.
                let db = engine.create_database("bench").expect("create database");
                let started = Instant::now();
                load(&db, &batches, 2);
                total += started.elapsed();
                drop(engine);
            }
            total
        })
    });

    // Full scan: every chunk of every column decoded, from segments.
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), EngineOptions::default()).expect("open");
    load(
        &engine.create_database("bench").expect("create database"),
        &batches,
        2,
    );
    engine.flush_all().expect("flush");
    let db = engine.database("bench").expect("db");
    let mut columns = Vec::new();
    for m in db.measurements() {
        columns.extend(db.select(&m, None, &TagFilter::All));
    }
    group.bench_function("full_scan_decode", |b| {
        let mut ts = Vec::new();
        let mut vals = ColumnValues::new(FieldType::Float);
        b.iter(|| {
            let ids: Vec<u32> = columns.iter().map(|c| c.id).collect();
            let view = db.read(&ids, i64::MIN, i64::MAX).expect("read");
            let mut n = 0usize;
            for c in &columns {
                for piece in view.pieces(c.id).expect("pieces") {
                    piece.decode_into(&mut ts, &mut vals).expect("decode");
                    n += ts.len();
                }
            }
            black_box(n)
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    engine_benches(&mut c);
    c.final_summary();
}
