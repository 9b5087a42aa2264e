//! Corruption: damaged WAL, segment, index and manifest files are reported with the file and
//! offset, never panic the process, and leave undamaged columns readable.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::float_point;
use tally_engine::{Engine, EngineError, EngineOptions, FsyncPolicy, PointBatch, TagFilter};

fn options() -> EngineOptions {
    EngineOptions {
        fsync: FsyncPolicy::Never,
        ..EngineOptions::default()
    }
}

/// A data directory with hosts a and b flushed into segments and more points in the WAL.
fn build() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let db = engine.create_database("db").unwrap();
    for host in ["a", "b"] {
        let mut batch = PointBatch::new();
        for i in 0..500 {
            float_point(&mut batch, host, i * 1_000_000_000, i as f64 * 1.25);
        }
        db.write(&batch).unwrap();
    }
    db.flush(true).unwrap();
    for i in 0..3 {
        let mut batch = PointBatch::new();
        float_point(&mut batch, "a", 1_000_000_000_000 + i, 7.0);
        db.write(&batch).unwrap();
    }
    drop(db);
    drop(engine);
    dir
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn flip(path: &Path, offset: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[offset] ^= 0x5a;
    std::fs::write(path, data).unwrap();
}

fn read_all(engine: &Engine, host: &str) -> tally_engine::Result<usize> {
    let db = engine.database("db").unwrap();
    let mut n = 0;
    for col in db.select("cpu", Some("v"), &TagFilter::equal("host", host)) {
        let view = db.read(&[col.id], i64::MIN, i64::MAX)?;
        let mut ts = Vec::new();
        let mut values = tally_engine::ColumnValues::new(tally_engine::FieldType::Float);
        for piece in view.pieces(col.id)? {
            piece.decode_into(&mut ts, &mut values)?;
            n += ts.len();
        }
    }
    Ok(n)
}

#[test]
fn a_damaged_chunk_is_reported_with_file_and_offset_and_other_columns_stay_readable() {
    let dir = build();
    let segment = &files_with_suffix(dir.path(), ".tseg")[0];
    // Column of host a is the first in the file; damage the first byte of its first chunk's
    // payload, just after the 80-byte chunk header.
    flip(segment, 16 + 80);
    let engine = Engine::open(dir.path(), options()).unwrap();
    match read_all(&engine, "a") {
        Err(EngineError::Corrupt {
            path,
            offset,
            reason,
        }) => {
            assert_eq!(&path, segment);
            assert_eq!(offset, 16 + 80, "{reason}");
            assert!(
                (16..16 + 200).contains(&offset),
                "offset {offset}: {reason}"
            );
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected a Corrupt error, got {other:?}"),
    }
    assert_eq!(read_all(&engine, "b").unwrap(), 500);
}

#[test]
fn a_damaged_segment_footer_stops_open_with_the_file_named() {
    let dir = build();
    let segment = &files_with_suffix(dir.path(), ".tseg")[0];
    let len = std::fs::metadata(segment).unwrap().len() as usize;
    flip(segment, len - 40 - 10);
    match Engine::open(dir.path(), options()) {
        Err(EngineError::Corrupt { path, reason, .. }) => {
            assert_eq!(&path, segment);
            assert!(reason.contains("footer"), "{reason}");
        }
        other => panic!("expected a Corrupt error, got {:?}", other.err()),
    }
}

#[test]
fn a_segment_from_a_future_version_is_refused_by_name() {
    let dir = build();
    let segment = &files_with_suffix(dir.path(), ".tseg")[0];
    let mut data = std::fs::read(segment).unwrap();
    data[8] = 9;
    std::fs::write(segment, data).unwrap();
    let err = Engine::open(dir.path(), options()).err().unwrap();
    assert!(
        matches!(
            &err,
            EngineError::UnsupportedVersion {
                found: 9,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&*segment.to_string_lossy()),
        "{err}"
    );
}

#[test]
fn a_damaged_index_file_stops_open_with_the_file_named() {
    let dir = build();
    let index = &files_with_suffix(dir.path(), ".tidx")[0];
    flip(index, 20);
    match Engine::open(dir.path(), options()) {
        Err(EngineError::Corrupt { path, .. }) => assert_eq!(&path, index),
        other => panic!("expected a Corrupt error, got {:?}", other.err()),
    }
}

#[test]
fn a_damaged_wal_record_in_the_middle_stops_open_unless_skipping_is_allowed() {
    let dir = build();
    let wal = files_with_suffix(dir.path(), ".wal");
    let wal = wal
        .iter()
        .find(|p| std::fs::metadata(p).unwrap().len() > 16)
        .unwrap();
    // The first record after the file header: damage its payload.
    flip(wal, 16 + 12 + 3);
    match Engine::open(dir.path(), options()) {
        Err(EngineError::WalCorruptInMiddle { path, offset, .. }) => {
            assert_eq!(&path, wal);
            assert_eq!(offset, 16);
        }
        other => panic!("expected WalCorruptInMiddle, got {:?}", other.err()),
    }
    let skipping = EngineOptions {
        wal_skip_corrupt: true,
        ..options()
    };
    let engine = Engine::open(dir.path(), skipping).unwrap();
    // The segment data and the later records are all still there.
    assert_eq!(read_all(&engine, "b").unwrap(), 500);
    assert!(read_all(&engine, "a").unwrap() >= 500);
}

#[test]
fn a_damaged_manifest_stops_open_with_the_file_named() {
    let dir = build();
    let manifest = &files_with_suffix(dir.path(), "MANIFEST")[0];
    flip(manifest, 12);
    match Engine::open(dir.path(), options()) {
        Err(EngineError::Corrupt { path, .. }) => assert_eq!(&path, manifest),
        other => panic!("expected a Corrupt error, got {:?}", other.err()),
    }
}

/// Random damage anywhere in any file: open and reads end in a value or a typed error that
/// names a file, never in a panic.
#[test]
fn random_damage_to_any_file_never_panics() {
    let pristine = build();
    let mut files = Vec::new();
    for suffix in [".tseg", ".tidx", ".wal", "MANIFEST"] {
        files.extend(files_with_suffix(pristine.path(), suffix));
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..120 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let copy = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), copy.path());
        let victim = &files[(seed as usize) % files.len()];
        let victim = copy
            .path()
            .join(victim.strip_prefix(pristine.path()).unwrap());
        let len = std::fs::metadata(&victim).unwrap().len() as usize;
        if len == 0 {
            continue;
        }
        let at = (seed >> 20) as usize % len;
        if round % 5 == 4 {
            // Truncation instead of a flip.
            let data = std::fs::read(&victim).unwrap();
            std::fs::write(&victim, &data[..at]).unwrap();
        } else {
            flip(&victim, at);
        }
        match Engine::open(copy.path(), options()) {
            Ok(engine) => {
                for host in ["a", "b"] {
                    if let Err(e) = read_all(&engine, host) {
                        assert_names_a_file(&e);
                    }
                }
            }
            Err(e) => assert_names_a_file(&e),
        }
    }
}

fn assert_names_a_file(e: &EngineError) {
    match e {
        EngineError::Corrupt { path, .. }
        | EngineError::WalCorruptInMiddle { path, .. }
        | EngineError::UnsupportedVersion { path, .. }
        | EngineError::Io { path, .. } => assert!(!path.as_os_str().is_empty(), "{e}"),
        other => panic!("unexpected error kind: {other}"),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}
