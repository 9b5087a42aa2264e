//! Codec benchmarks over the side-by-side benchmark's dataset (`../shared/bench/gen.py
//! --scale small`), split into per-series, per-field columns and cut into chunks as the engine
//! cuts them (at most 720 points, never across an hour).
//!
//! Run with:
//!
//!     cargo bench -p tally-benches --bench codecs
//!
//! It first prints a table of compressed bytes per value (timestamps + values) for our chosen
//! encodings, plain Gorilla (delta-of-delta timestamps, XOR floats, delta-of-delta integers)
//! and zstd level 3 over the raw 16-byte points of each chunk; then criterion measures encode
//! and decode throughput per field, for the whole dataset, and for the single codecs the
//! engine leans on (Gorilla XOR, Decimal, IntPacked, timestamps). A filter narrows the run:
//! `cargo bench -p tally-benches --bench codecs -- decimal`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use tally_benches::{Column, ColumnValues, Dataset};
use tally_engine::codec::{
    self, FloatAppender, IntAppender, TsAppender, TsEncoding, ValueEncoding, Values,
};

/// One chunk encoded the way a sealed segment stores it.
struct EncodedChunk {
    count: usize,
    ts_encoding: TsEncoding,
    ts_bytes: Vec<u8>,
    value_encoding: ValueEncoding,
    value_bytes: Vec<u8>,
    value_type: &'static str,
}

fn chunk_values<'a>(column: &'a Column, range: std::ops::Range<usize>) -> Values<'a> {
    match &column.values {
        ColumnValues::Float(values) => Values::Float(&values[range]),
        ColumnValues::Integer(values) => Values::Integer(&values[range]),
        ColumnValues::Unsigned(values) => Values::Unsigned(&values[range]),
        ColumnValues::Boolean(values) => Values::Boolean(&values[range]),
        ColumnValues::String(values) => Values::String(&values[range]),
    }
}

fn encode_chunks(columns: &[&Column]) -> Vec<EncodedChunk> {
    let mut encoded = Vec::new();
    for column in columns {
        for range in &column.chunks {
            let mut ts_bytes = Vec::new();
            let ts_encoding =
                codec::encode_timestamps(&column.timestamps[range.clone()], &mut ts_bytes);
            let mut value_bytes = Vec::new();
            let value_encoding =
                codec::encode_values(chunk_values(column, range.clone()), &mut value_bytes);
            encoded.push(EncodedChunk {
                count: range.len(),
                ts_encoding,
                ts_bytes,
                value_encoding,
                value_bytes,
                value_type: column.values.type_name(),
            });
        }
    }
    encoded
}

/// Reused output buffers, as a query's scan keeps them.
#[derive(Default)]
struct Buffers {
    timestamps: Vec<i64>,
    floats: Vec<f64>,
    integers: Vec<i64>,
    unsigned: Vec<u64>,
    booleans: Vec<bool>,
    strings: Vec<String>,
}

fn decode_chunk(chunk: &EncodedChunk, buffers: &mut Buffers) {
    buffers.timestamps.clear();
    let decoded = codec::decode_timestamps(
        chunk.ts_encoding,
        &chunk.ts_bytes,
        chunk.count,
        &mut buffers.timestamps,
    );
    debug_assert!(decoded.is_ok());
    decode_values(chunk, buffers);
}

fn decode_values(chunk: &EncodedChunk, buffers: &mut Buffers) {
    let (encoding, data, count) = (chunk.value_encoding, &chunk.value_bytes[..], chunk.count);
    let decoded = match chunk.value_type {
        "float" => {
            buffers.floats.clear();
            codec::decode_f64(encoding, data, count, &mut buffers.floats)
        }
        "integer" => {
            buffers.integers.clear();
            codec::decode_i64(encoding, data, count, &mut buffers.integers)
        }
        "unsigned" => {
            buffers.unsigned.clear();
            codec::decode_u64(encoding, data, count, &mut buffers.unsigned)
        }
        "boolean" => {
            buffers.booleans.clear();
            codec::decode_bool(encoding, data, count, &mut buffers.booleans)
        }
        _ => {
            buffers.strings.clear();
            codec::decode_strings(encoding, data, count, &mut buffers.strings)
        }
    };
    debug_assert!(decoded.is_ok());
}

#[derive(Default, Clone, Copy)]
struct Sizes {
    points: usize,
    ours: usize,
    gorilla: usize,
    zstd: usize,
}

impl Sizes {
    fn add(&mut self, other: Sizes) {
        self.points += other.points;
        self.ours += other.ours;
        self.gorilla += other.gorilla;
        self.zstd += other.zstd;
    }
}

/// Bytes of one column under our encodings, plain Gorilla, and zstd over raw points.
fn column_sizes(column: &Column) -> Sizes {
    let mut sizes = Sizes::default();
    for range in &column.chunks {
        let timestamps = &column.timestamps[range.clone()];
        sizes.points += range.len();
        let mut bytes = Vec::new();
        codec::encode_timestamps(timestamps, &mut bytes);
        codec::encode_values(chunk_values(column, range.clone()), &mut bytes);
        sizes.ours += bytes.len();

        let mut gorilla_ts = TsAppender::new();
        timestamps.iter().for_each(|&ts| gorilla_ts.push(ts));
        sizes.gorilla += gorilla_ts.bytes().len();
        let mut raw: Vec<u8> = timestamps.iter().flat_map(|ts| ts.to_le_bytes()).collect();
        match &column.values {
            ColumnValues::Float(values) => {
                let mut appender = FloatAppender::new();
                values[range.clone()]
                    .iter()
                    .for_each(|&value| appender.push(value));
                sizes.gorilla += appender.bytes().len();
                raw.extend(
                    values[range.clone()]
                        .iter()
                        .flat_map(|value| value.to_le_bytes()),
                );
            }
            ColumnValues::Integer(values) => {
                let mut appender = IntAppender::new();
                values[range.clone()]
                    .iter()
                    .for_each(|&value| appender.push(value));
                sizes.gorilla += appender.bytes().len();
                raw.extend(
                    values[range.clone()]
                        .iter()
                        .flat_map(|value| value.to_le_bytes()),
                );
            }
            ColumnValues::Unsigned(values) => {
                let mut appender = IntAppender::new();
                values[range.clone()]
                    .iter()
                    .for_each(|&value| appender.push(value as i64));
                sizes.gorilla += appender.bytes().len();
                raw.extend(
                    values[range.clone()]
                        .iter()
                        .flat_map(|value| value.to_le_bytes()),
                );
            }
            // The dataset has neither; count them as ours so the columns stay comparable.
            ColumnValues::Boolean(_) | ColumnValues::String(_) => {
                let mut bytes = Vec::new();
                codec::encode_values(chunk_values(column, range.clone()), &mut bytes);
                sizes.gorilla += bytes.len();
                raw.extend_from_slice(&bytes);
            }
        }
        sizes.zstd += codec::zstd_compressed_len(&raw, 3);
    }
    sizes
}

fn print_size_table(dataset: &Dataset, by_field: &BTreeMap<String, Vec<&Column>>) {
    eprintln!();
    eprintln!(
        "codecs: {} points in {} columns, {} chunks (bytes per value = timestamp + value)",
        dataset.points(),
        dataset.columns.len(),
        dataset
            .columns
            .iter()
            .map(|column| column.chunks.len())
            .sum::<usize>()
    );
    eprintln!(
        "{:<24} {:>8} {:>8} {:>8} {:>8}  chosen value encodings",
        "field", "points", "ours", "gorilla", "zstd-3"
    );
    let mut total = Sizes::default();
    for (field, columns) in by_field {
        let mut sizes = Sizes::default();
        columns
            .iter()
            .for_each(|column| sizes.add(column_sizes(column)));
        total.add(sizes);
        let mut chosen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut ts_chosen: BTreeMap<&str, usize> = BTreeMap::new();
        for chunk in encode_chunks(columns) {
            *chosen.entry(chunk.value_encoding.name()).or_default() += 1;
            *ts_chosen.entry(chunk.ts_encoding.name()).or_default() += 1;
        }
        let describe = |counts: &BTreeMap<&str, usize>| {
            counts
                .iter()
                .map(|(name, count)| format!("{name} {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let per_value = |bytes: usize| bytes as f64 / sizes.points as f64;
        eprintln!(
            "{:<24} {:>8} {:>8.3} {:>8.3} {:>8.3}  {} | ts: {}",
            field,
            sizes.points,
            per_value(sizes.ours),
            per_value(sizes.gorilla),
            per_value(sizes.zstd),
            describe(&chosen),
            describe(&ts_chosen),
        );
    }
    let per_value = |bytes: usize| bytes as f64 / total.points as f64;
    eprintln!(
        "{:<24} {:>8} {:>8.3} {:>8.3} {:>8.3}",
        "whole dataset",
        total.points,
        per_value(total.ours),
        per_value(total.gorilla),
        per_value(total.zstd)
    );
    eprintln!();
}

fn main() {
    let dataset = match Dataset::generate("small") {
        Ok(dataset) => dataset,
        Err(error) => {
            eprintln!("codecs bench: cannot build the dataset: {error}");
            std::process::exit(1);
        }
    };
    let mut by_field: BTreeMap<String, Vec<&Column>> = BTreeMap::new();
    for column in &dataset.columns {
        by_field
            .entry(column.field.clone())
            .or_default()
            .push(column);
    }
    print_size_table(&dataset, &by_field);

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();

    let all_columns: Vec<&Column> = dataset.columns.iter().collect();
    let all_chunks = encode_chunks(&all_columns);
    let mut buffers = Buffers::default();

    {
        let mut group = criterion.benchmark_group("field");
        for (field, columns) in &by_field {
            let points: usize = columns.iter().map(|column| column.timestamps.len()).sum();
            group.throughput(Throughput::Elements(points as u64));
            group.bench_function(format!("encode/{field}"), |bencher| {
                bencher.iter(|| black_box(encode_chunks(black_box(columns))))
            });
            let chunks = encode_chunks(columns);
            group.bench_function(format!("decode/{field}"), |bencher| {
                bencher.iter(|| {
                    for chunk in &chunks {
                        decode_chunk(chunk, &mut buffers);
                    }
                })
            });
        }
        group.throughput(Throughput::Elements(dataset.points() as u64));
        group.bench_function("encode/whole dataset", |bencher| {
            bencher.iter(|| black_box(encode_chunks(black_box(&all_columns))))
        });
        group.bench_function("decode/whole dataset", |bencher| {
            bencher.iter(|| {
                for chunk in &all_chunks {
                    decode_chunk(chunk, &mut buffers);
                }
            })
        });
        group.finish();
    }

    let float_chunks: Vec<&[f64]> = dataset
        .columns
        .iter()
        .filter_map(|column| match &column.values {
            ColumnValues::Float(values) => Some((column, values)),
            _ => None,
        })
        .flat_map(|(column, values)| {
            column
                .chunks
                .iter()
                .map(move |range| &values[range.clone()])
        })
        .collect();
    let float_values: usize = float_chunks.iter().map(|chunk| chunk.len()).sum();
    {
        let mut group = criterion.benchmark_group("gorilla_xor");
        group.throughput(Throughput::Elements(float_values as u64));
        group.bench_function("encode (appender)", |bencher| {
            bencher.iter(|| {
                for chunk in &float_chunks {
                    let mut appender = FloatAppender::new();
                    chunk.iter().for_each(|&value| appender.push(value));
                    black_box(appender.bytes());
                }
            })
        });
        let encoded: Vec<(usize, Vec<u8>)> = float_chunks
            .iter()
            .map(|chunk| {
                let mut appender = FloatAppender::new();
                chunk.iter().for_each(|&value| appender.push(value));
                (chunk.len(), appender.bytes().to_vec())
            })
            .collect();
        group.bench_function("decode", |bencher| {
            bencher.iter(|| {
                for (count, bytes) in &encoded {
                    buffers.floats.clear();
                    let decoded = codec::decode_f64(
                        ValueEncoding::GorillaXor,
                        bytes,
                        *count,
                        &mut buffers.floats,
                    );
                    debug_assert!(decoded.is_ok());
                }
            })
        });
        group.finish();
    }

    for (name, encoding) in [
        ("decimal", ValueEncoding::Decimal),
        ("int_packed", ValueEncoding::IntPacked),
    ] {
        let chunks: Vec<&EncodedChunk> = all_chunks
            .iter()
            .filter(|chunk| chunk.value_encoding == encoding)
            .collect();
        let values: usize = chunks.iter().map(|chunk| chunk.count).sum();
        if values == 0 {
            continue;
        }
        let mut group = criterion.benchmark_group(name);
        group.throughput(Throughput::Elements(values as u64));
        group.bench_function("decode", |bencher| {
            bencher.iter(|| {
                for chunk in &chunks {
                    decode_values(chunk, &mut buffers);
                }
            })
        });
        group.finish();
    }

    {
        let mut group = criterion.benchmark_group("timestamps");
        group.throughput(Throughput::Elements(dataset.points() as u64));
        group.bench_function("decode (chosen)", |bencher| {
            bencher.iter(|| {
                for chunk in &all_chunks {
                    buffers.timestamps.clear();
                    let decoded = codec::decode_timestamps(
                        chunk.ts_encoding,
                        &chunk.ts_bytes,
                        chunk.count,
                        &mut buffers.timestamps,
                    );
                    debug_assert!(decoded.is_ok());
                }
            })
        });
        let dod_streams: Vec<(usize, Vec<u8>)> = dataset
            .columns
            .iter()
            .flat_map(|column| {
                column.chunks.iter().map(|range| {
                    let mut appender = TsAppender::new();
                    column.timestamps[range.clone()]
                        .iter()
                        .for_each(|&ts| appender.push(ts));
                    (range.len(), appender.bytes().to_vec())
                })
            })
            .collect();
        group.bench_function("decode (delta-of-delta)", |bencher| {
            bencher.iter(|| {
                for (count, bytes) in &dod_streams {
                    buffers.timestamps.clear();
                    let decoded = codec::decode_timestamps(
                        TsEncoding::DeltaOfDelta,
                        bytes,
                        *count,
                        &mut buffers.timestamps,
                    );
                    debug_assert!(decoded.is_ok());
                }
            })
        });
        group.finish();
    }

    criterion.final_summary();
}
