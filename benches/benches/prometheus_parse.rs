//! Prometheus exposition parsing speed, in samples per second, on what scrapes really return.
//!
//! Run from the repository root:
//!
//!     cargo bench -p tally-benches --bench prometheus_parse
//!
//! Inputs, built once outside the timed loop from the recorded fixtures of
//! `ingest/tests/fixtures/prometheus/`:
//! - `vllm`: a vLLM endpoint serving 16 models (histograms with 16-17 buckets, counters with
//!   `_created` companions, long label values), 1,137 samples in 119 KB;
//! - `node_exporter`: a real `prometheus-node-exporter` 1.5 scrape, 507 samples of short series
//!   among 1,073 lines (HELP and TYPE lines are half of it);
//! - `dcgm`: the DCGM exporter's per-GPU gauges for 64 GPUs, 1,152 samples in 264 KB.
//!
//! `parse` is the parser alone (the issue asks for at least 1 M samples/s); `parse_and_map`
//! adds the generic mapping into a point batch, what a scrape does before writing.

#![allow(
    clippy::expect_used,
    reason = "setup failures end the bench with the reason"
)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tally_engine::PointBatch;
use tally_ingest::prometheus::{ConvertOptions, Flavor, ParseOptions, parse, to_points};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ingest/tests/fixtures/prometheus")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `copies` copies of a fixture's sample lines with the value of `label` made unique per copy;
/// the HELP and TYPE lines are kept once per family, as an exporter writes them.
fn widen(text: &str, label: &str, copies: usize) -> String {
    let mut out = String::new();
    let mut samples_by_family: Vec<(Vec<&str>, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            if line.starts_with("# HELP")
                || samples_by_family.last().is_none_or(|f| !f.1.is_empty())
            {
                samples_by_family.push((Vec::new(), Vec::new()));
            }
            if let Some(family) = samples_by_family.last_mut() {
                family.0.push(line);
            }
        } else if let Some(family) = samples_by_family.last_mut() {
            family.1.push(line);
        }
    }
    for (comments, samples) in samples_by_family {
        for c in comments {
            out.push_str(c);
            out.push('\n');
        }
        for copy in 0..copies {
            for s in &samples {
                let needle = format!("{label}=\"");
                let line = match s.find(&needle) {
                    Some(at) => {
                        let start = at + needle.len();
                        format!("{}{copy}-{}", &s[..start], &s[start..])
                    }
                    None if copy == 0 => s.to_string(),
                    None => continue,
                };
                out.push_str(&line);
                out.push('\n');
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let inputs = [
        ("vllm", widen(&fixture("vllm-1.txt"), "model_name", 16)),
        ("node_exporter", fixture("node_exporter-1.txt")),
        ("dcgm", widen(&fixture("dcgm.txt"), "Hostname", 32)),
    ];
    let options = ParseOptions::new(Flavor::Text);
    let tags = [
        ("host".to_string(), "bench-host".to_string()),
        (
            "url".to_string(),
            "http://127.0.0.1:8000/metrics".to_string(),
        ),
    ];
    let mut group = c.benchmark_group("prometheus");
    for (name, body) in &inputs {
        let exposition = parse(body.as_bytes(), &options);
        assert!(
            exposition.errors.is_empty(),
            "{name}: {:?}",
            exposition.errors.first()
        );
        let samples = exposition.samples.len() as u64;
        eprintln!("{name}: {samples} samples, {} bytes", body.len());
        group.throughput(Throughput::Elements(samples));
        group.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| {
                black_box(parse(black_box(body.as_bytes()), &options))
                    .samples
                    .len()
            })
        });
        let mut batch = PointBatch::new();
        group.bench_function(format!("parse_and_map/{name}"), |b| {
            b.iter(|| {
                let exposition = parse(black_box(body.as_bytes()), &options);
                batch.clear();
                let report = to_points(
                    &exposition,
                    &ConvertOptions {
                        default_timestamp_ns: 1_700_000_000_000_000_000,
                        tags: &tags,
                    },
                    &mut batch,
                );
                black_box(report.points)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
