//! Entry points for fuzz targets and their regression tests: each feeds untrusted bytes to one
//! decoder the engine uses on disk data and must return (an error is fine), never panic.
//! Not part of the stable API.

use crate::catalog::Catalog;
use crate::chunk::{ColumnValues, decode_chunk};
use crate::head::{Head, HeadOptions};
use crate::model::FieldType;
use crate::segment::{Segment, SegmentMeta};

/// Decodes `data` as one chunk (header and payload): as raw points, and as rollup rows with
/// and without their sketches, merging every row's sketch.
pub fn chunk(data: &[u8]) {
    if let Ok(rows) = crate::chunk::decode_rollup_chunk(data) {
        let mut merged = crate::sketch::Sketch::default();
        for row in 0..rows.len() {
            let _ = rows.merge_sketch_into(row, &mut merged);
        }
    }
    let mut rows = crate::rollup::RollupRows::new(FieldType::Float);
    let without_sketches = crate::rollup::RollupParts {
        sketches: false,
        ..crate::rollup::RollupParts::ALL
    };
    for parts in [
        crate::rollup::RollupParts::COUNTS,
        without_sketches,
        crate::rollup::RollupParts::ALL,
    ] {
        if crate::chunk::decode_rollup_chunk_into(data, parts, &mut rows).is_ok() {
            let mut merged = crate::sketch::Sketch::default();
            for row in 0..rows.len() {
                let _ = rows.merge_sketch_into(row, &mut merged);
            }
        }
    }
    let mut ts = Vec::new();
    let mut values = ColumnValues::new(FieldType::Float);
    if let Ok(header) = decode_chunk(data, &mut ts, &mut values) {
        assert_eq!(
            ts.len(),
            header.stats.count as usize,
            "BUG: decoded count differs from the header"
        );
        assert_eq!(
            values.len(),
            ts.len(),
            "BUG: decoded value and timestamp counts differ"
        );
    }
}

/// Valid rollup chunks (float and integer rows with sketches, small and large enough to be
/// zstd-wrapped) for fuzzers to start from.
pub fn rollup_chunk_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for n in [5i64, 3_000] {
        let ts: Vec<i64> = (0..n).map(|i| i * 7_000_000_000).collect();
        for values in [
            ColumnValues::Float(
                (0..n)
                    .map(|i| ((i * 37) % 1000) as f64 * 0.25 - 10.0)
                    .collect(),
            ),
            ColumnValues::Integer((0..n).map(|i| i * i - 50).collect()),
        ] {
            let mut rows = crate::rollup::RollupRows::new(values.field_type());
            rows.add_points(&ts, &values, 60_000_000_000);
            for storage in [
                crate::chunk::SketchStorage::Compressed,
                crate::chunk::SketchStorage::Plain,
            ] {
                let mut chunk = Vec::new();
                crate::chunk::encode_rollup_chunk(&rows, storage, &mut chunk);
                seeds.push(chunk);
            }
        }
    }
    seeds
}

/// Replays `data` as the bytes of a WAL file into an empty catalog and head.
pub fn wal(data: &[u8]) {
    let mut catalog = Catalog::default();
    let mut head = Head::new(HeadOptions::default());
    let mut report = crate::wal::ReplayReport::default();
    let _ = crate::wal::replay_file(
        std::path::Path::new("fuzz.wal"),
        data,
        true,
        &mut report,
        &mut |record| {
            crate::database::apply_record(&mut catalog, &mut head, record.payload).map_err(|e| {
                crate::error::EngineError::corrupt(record.path, record.offset, e.reason)
            })
        },
    );
}

/// Opens `data` as a segment file (written to a temporary file, since segments are mapped)
/// and decodes every chunk of every column.
pub fn segment(data: &[u8]) {
    let Ok(dir) = tempfile_dir() else { return };
    let path = dir.join("fuzz.tseg");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    // The block in the trailer must match the manifest's; take it from the trailer so the
    // fuzzer reaches the footer and chunk checks.
    let (block_start, block_end) = trailer_block(data);
    let meta = SegmentMeta {
        file_name: "fuzz.tseg".into(),
        seq: 1,
        block_start,
        block_end,
        size: data.len() as u64,
        min_time: i64::MIN,
        max_time: i64::MAX,
        n_columns: 0,
        n_points: 0,
        resolution: 0,
        recency: 1,
        built_from: 0,
        applied_tombstones: 0,
    };
    if let Ok(segment) = Segment::open(&path, meta) {
        let mut ts = Vec::new();
        let mut values = ColumnValues::new(FieldType::Float);
        let mut index = 0;
        while let Some(entry) = segment.entry_at(index) {
            let _ = segment.for_each_chunk(&entry, |_, _, bytes| {
                let _ = decode_chunk(bytes, &mut ts, &mut values);
                Ok(true)
            });
            let _ = segment.find(entry.column);
            index += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn trailer_block(data: &[u8]) -> (i64, i64) {
    let n = data.len();
    if n < 40 {
        return (0, 0);
    }
    let t = &data[n - 40..];
    let word = |o: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&t[o..o + 8]);
        i64::from_le_bytes(a)
    };
    (word(16), word(24))
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tally-fuzz-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
