//! Line protocol parse and write speed on the side-by-side benchmark's dataset.
//!
//! Run from the repository root:
//!
//!     cargo bench -p tally-benches --bench line_protocol
//!
//! The input is `python3 ../shared/bench/gen.py --scale small` (about 200k lines, 28 MB, lines
//! with up to 4 tags and 5 fields), generated on the fly; set `TALLY_BENCH_LP=FILE` to read
//! another line protocol file instead. Throughput is reported in bytes and in lines.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tally_engine::{FieldValue, PointBatch, PointRef};
use tally_ingest::line_protocol::{ParseOptions, parse_lines, write_line};

fn load_input() -> Vec<u8> {
    if let Some(path) = std::env::var_os("TALLY_BENCH_LP") {
        return std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read TALLY_BENCH_LP={}: {e}",
                PathBuf::from(path).display()
            )
        });
    }
    let generator = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/gen.py");
    let output = Command::new("python3")
        .arg(&generator)
        .args(["--scale", "small"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", generator.display()));
    assert!(
        output.status.success(),
        "{} failed: {}",
        generator.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

struct OwnedPoint {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, FieldValue<'static>)>,
    timestamp: i64,
}

/// What `write_line` takes, built once outside the timed loop.
type BorrowedPoint<'p> = (
    &'p str,
    Vec<(&'p str, &'p str)>,
    Vec<(&'p str, FieldValue<'p>)>,
    i64,
);

impl OwnedPoint {
    fn of(point: PointRef<'_, '_>) -> OwnedPoint {
        OwnedPoint {
            measurement: point.measurement().to_owned(),
            tags: point
                .tags()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            fields: point
                .fields()
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone().into_owned()))
                .collect(),
            timestamp: point.timestamp(),
        }
    }

    fn borrow(&self) -> BorrowedPoint<'_> {
        (
            &self.measurement,
            self.tags
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            self.fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect(),
            self.timestamp,
        )
    }
}

fn count_lines(body: &[u8]) -> u64 {
    body.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .count() as u64
}

fn parse_benches(c: &mut Criterion) {
    let body = load_input();
    let n_lines = count_lines(&body);
    let options = ParseOptions::new(0);
    let mut batch = PointBatch::new();
    let mut point_lines = Vec::new();
    let report = parse_lines(&body, &options, &mut batch, &mut point_lines);
    assert!(
        report.errors.is_empty(),
        "the input has bad lines: {:?}",
        &report.errors[..1]
    );
    assert_eq!(u64::from(report.points), n_lines);

    let mut group = c.benchmark_group("line_protocol_parse");
    group.sample_size(10);
    for (name, throughput) in [
        ("bytes", Throughput::Bytes(body.len() as u64)),
        ("lines", Throughput::Elements(n_lines)),
    ] {
        group.throughput(throughput);
        group.bench_function(name, |b| {
            b.iter(|| {
                batch.clear();
                point_lines.clear();
                black_box(parse_lines(
                    black_box(&body),
                    &options,
                    &mut batch,
                    &mut point_lines,
                ))
            })
        });
    }
    group.finish();

    // Writing: the points just parsed, back to text (what `tally-dump export` does).
    let owned: Vec<OwnedPoint> = batch.points().map(OwnedPoint::of).collect();
    let borrowed: Vec<BorrowedPoint<'_>> = owned.iter().map(OwnedPoint::borrow).collect();
    let mut group = c.benchmark_group("line_protocol_write");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n_lines));
    let mut out = String::with_capacity(body.len());
    group.bench_function("lines", |b| {
        b.iter(|| {
            out.clear();
            for (measurement, tags, fields, timestamp) in &borrowed {
                let written = write_line(&mut out, measurement, tags, fields, Some(*timestamp));
                assert!(written.is_ok());
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, parse_benches);
criterion_main!(benches);
