//! Engine behaviour through its public API: writes, reads, flushes, restarts.
#![allow(clippy::unwrap_used)]

mod common;

use std::borrow::Cow;
use std::collections::BTreeMap;

use common::{c, float_point, read_column};
use proptest::prelude::*;
use tally_engine::{
    Engine, EngineError, EngineOptions, FieldType, FieldValue, FsyncPolicy, PointBatch, TagFilter,
    WriteError,
};

fn options() -> EngineOptions {
    EngineOptions {
        fsync: FsyncPolicy::Never,
        ..EngineOptions::default()
    }
}

#[test]
fn points_survive_a_restart_without_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path(), options()).unwrap();
        let db = engine.create_database("telemetry").unwrap();
        let mut batch = PointBatch::new();
        for i in 0..100 {
            float_point(&mut batch, "a", i * 1_000_000_000, i as f64 * 0.5);
        }
        let summary = db.write(&batch).unwrap();
        assert_eq!(summary.points_written, 100);
        // Dropped without close: only the WAL holds the points.
    }
    let engine = Engine::open(dir.path(), options()).unwrap();
    let db = engine.database("telemetry").unwrap();
    let points = read_column(&db, "cpu", "a", "v");
    assert_eq!(points.len(), 100);
    assert_eq!(points[7], (7_000_000_000, FieldValue::Float(3.5)));
}

#[test]
fn points_survive_close_and_reopen_from_segments_with_the_wal_emptied() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path(), options()).unwrap();
        let db = engine.create_database("db").unwrap();
        let mut batch = PointBatch::new();
        // Three days of minutely points, crossing chunk spans and blocks.
        for i in 0..(3 * 1440) {
            float_point(&mut batch, "a", i * 60_000_000_000, (i % 97) as f64);
        }
        db.write(&batch).unwrap();
        engine.close().unwrap();
        let stats = db.stats();
        assert!(stats.segments >= 3, "{stats:?}");
        assert_eq!(stats.segment_points, 3 * 1440);
    }
    let wal_files: Vec<_> = std::fs::read_dir(dir.path().join("dbs/db/wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert!(
        wal_files.iter().all(|&len| len <= 16),
        "WAL not emptied: {wal_files:?}"
    );
    let engine = Engine::open(dir.path(), options()).unwrap();
    let db = engine.database("db").unwrap();
    let points = read_column(&db, "cpu", "a", "v");
    assert_eq!(points.len(), 3 * 1440);
    for (i, (t, v)) in points.iter().enumerate() {
        assert_eq!(*t, i as i64 * 60_000_000_000);
        assert_eq!(*v, FieldValue::Float((i % 97) as f64));
    }
}

#[test]
fn last_write_wins_on_equal_timestamps_in_the_head_across_flushes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let db = engine.create_database("db").unwrap();
    let write = |ts: i64, v: f64| {
        let mut batch = PointBatch::new();
        float_point(&mut batch, "a", ts, v);
        db.write(&batch).unwrap();
    };
    write(10, 1.0);
    write(20, 2.0);
    write(10, 3.0); // out of order, overwrites
    assert_eq!(
        read_column(&db, "cpu", "a", "v"),
        vec![(10, FieldValue::Float(3.0)), (20, FieldValue::Float(2.0))]
    );
    db.flush(true).unwrap();
    write(20, 4.0); // overwrites a point that is now in a segment
    write(5, 0.5);
    assert_eq!(
        read_column(&db, "cpu", "a", "v"),
        vec![
            (5, FieldValue::Float(0.5)),
            (10, FieldValue::Float(3.0)),
            (20, FieldValue::Float(4.0))
        ]
    );
    db.flush(true).unwrap();
    write(10, 9.0);
    drop(db);
    drop(engine);
    let engine = Engine::open(dir.path(), options()).unwrap();
    let db = engine.database("db").unwrap();
    assert_eq!(
        read_column(&db, "cpu", "a", "v"),
        vec![
            (5, FieldValue::Float(0.5)),
            (10, FieldValue::Float(9.0)),
            (20, FieldValue::Float(4.0))
        ]
    );
}

#[test]
fn a_type_conflict_rejects_only_its_point_and_names_both_types() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let db = engine.create_database("db").unwrap();
    let mut batch = PointBatch::new();
    batch
        .push(
            "llm",
            [(c("model"), c("a"))],
            [(c("tokens"), FieldValue::Integer(5))],
            1,
        )
        .unwrap();
    batch
        .push(
            "llm",
            [(c("model"), c("b"))],
            [(c("tokens"), FieldValue::Float(5.5))],
            2,
        )
        .unwrap();
    batch
        .push(
            "llm",
            [(c("model"), c("b"))],
            [(c("tokens"), FieldValue::Integer(6))],
            3,
        )
        .unwrap();
    let summary = db.write(&batch).unwrap();
    assert_eq!(summary.points_written, 2);
    assert_eq!(summary.rejected.len(), 1);
    assert_eq!(summary.rejected[0].point, 1);
    let expected = WriteError::FieldTypeConflict {
        measurement: "llm".into(),
        field: "tokens".into(),
        existing: FieldType::Integer,
        attempted: FieldType::Float,
    };
    assert_eq!(summary.rejected[0].error, expected);
    assert_eq!(
        expected.to_string(),
        "field type conflict: field \"tokens\" of measurement \"llm\" is integer, this write has float"
    );
    // The same conflict against an existing column goes through the fast path.
    let mut batch = PointBatch::new();
    batch
        .push(
            "llm",
            [(c("model"), c("a"))],
            [(c("tokens"), FieldValue::Boolean(true))],
            4,
        )
        .unwrap();
    let summary = db.write(&batch).unwrap();
    assert_eq!(summary.points_written, 0);
    assert!(matches!(
        summary.rejected[0].error,
        WriteError::FieldTypeConflict {
            existing: FieldType::Integer,
            attempted: FieldType::Boolean,
            ..
        }
    ));
    assert_eq!(
        db.field_keys("llm"),
        vec![("tokens".to_string(), FieldType::Integer)]
    );
}

#[test]
fn the_series_limit_rejects_only_points_that_would_create_a_series() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EngineOptions {
        max_series_per_database: 2,
        ..options()
    };
    let engine = Engine::open(dir.path(), opts).unwrap();
    let db = engine.create_database("db").unwrap();
    let mut batch = PointBatch::new();
    for host in ["a", "b", "c", "a"] {
        float_point(&mut batch, host, 1, 1.0);
    }
    let summary = db.write(&batch).unwrap();
    assert_eq!(summary.points_written, 3);
    assert_eq!(summary.rejected.len(), 1);
    assert_eq!(summary.rejected[0].point, 2);
    assert!(matches!(
        summary.rejected[0].error,
        WriteError::SeriesLimit { limit: 2, .. }
    ));
}

#[test]
fn negative_timestamps_and_every_type_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let db = engine.create_database("db").unwrap();
    let mut batch = PointBatch::new();
    let fields = vec![
        (c("f"), FieldValue::Float(-0.0)),
        (c("i"), FieldValue::Integer(i64::MIN)),
        (c("u"), FieldValue::Unsigned(u64::MAX)),
        (c("b"), FieldValue::Boolean(true)),
        (c("s"), FieldValue::String("héllo \"world\"".into())),
    ];
    batch
        .push(
            "m",
            [(c("host"), c("a"))],
            fields.clone(),
            -1_000_000_000_000,
        )
        .unwrap();
    db.write(&batch).unwrap();
    for flush in [false, true] {
        if flush {
            db.flush(true).unwrap();
        }
        for (name, value) in &fields {
            let got = read_column(&db, "m", "a", name);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].0, -1_000_000_000_000);
            match (&got[0].1, value) {
                (FieldValue::Float(a), FieldValue::Float(b)) => {
                    assert_eq!(a.to_bits(), b.to_bits())
                }
                (a, b) => assert_eq!(a, b),
            }
        }
    }
}

#[test]
fn discovery_lists_measurements_tags_fields_and_series() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let db = engine.create_database("db").unwrap();
    let mut batch = PointBatch::new();
    batch
        .push(
            "gpu",
            [(c("gpu"), c("0")), (c("host"), c("n1"))],
            [(c("util"), FieldValue::Integer(5))],
            1,
        )
        .unwrap();
    batch
        .push(
            "gpu",
            [(c("gpu"), c("1")), (c("host"), c("n2"))],
            [
                (c("util"), FieldValue::Integer(5)),
                (c("power"), FieldValue::Float(1.0)),
            ],
            1,
        )
        .unwrap();
    batch
        .push(
            "llm",
            [(c("model"), c("x"))],
            [(c("cost"), FieldValue::Float(0.1))],
            1,
        )
        .unwrap();
    db.write(&batch).unwrap();
    assert_eq!(db.measurements(), vec!["gpu", "llm"]);
    assert_eq!(db.tag_keys("gpu"), vec!["gpu", "host"]);
    assert_eq!(
        db.tag_values("gpu", "host", &TagFilter::All),
        vec!["n1", "n2"]
    );
    assert_eq!(
        db.tag_values("gpu", "host", &TagFilter::equal("gpu", "1")),
        vec!["n2"]
    );
    assert_eq!(
        db.tag_values("llm", "host", &TagFilter::All),
        Vec::<String>::new()
    );
    assert_eq!(
        db.field_keys("gpu"),
        vec![
            ("power".to_string(), FieldType::Float),
            ("util".to_string(), FieldType::Integer)
        ]
    );
    assert_eq!(db.series("gpu", &TagFilter::All).len(), 2);
    assert_eq!(db.select("gpu", Some("util"), &TagFilter::All).len(), 2);
    assert_eq!(
        db.select("gpu", None, &TagFilter::equal("host", "n2"))
            .len(),
        2
    );
    // The catalog survives a flush and a restart (index files, then WAL replay).
    db.flush(true).unwrap();
    let mut batch = PointBatch::new();
    batch
        .push(
            "gpu",
            [(c("gpu"), c("2")), (c("host"), c("n3"))],
            [(c("util"), FieldValue::Integer(1))],
            2,
        )
        .unwrap();
    db.write(&batch).unwrap();
    drop(db);
    drop(engine);
    let engine = Engine::open(dir.path(), options()).unwrap();
    let db = engine.database("db").unwrap();
    assert_eq!(
        db.tag_values("gpu", "host", &TagFilter::All),
        vec!["n1", "n2", "n3"]
    );
    assert_eq!(db.select("gpu", Some("util"), &TagFilter::All).len(), 3);
}

#[test]
fn databases_are_created_listed_dropped_and_a_directory_cannot_be_opened_twice() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    engine.create_database("a/b c").unwrap();
    engine.create_database("z").unwrap();
    engine.create_database("z").unwrap();
    assert_eq!(engine.database_names(), vec!["a/b c", "z"]);
    assert!(matches!(
        Engine::open(dir.path(), options()),
        Err(EngineError::Locked { .. })
    ));
    engine.drop_database("z").unwrap();
    assert!(matches!(
        engine.drop_database("z"),
        Err(EngineError::DatabaseNotFound { .. })
    ));
    assert!(engine.create_database("").is_err());
    drop(engine);
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert_eq!(engine.database_names(), vec!["a/b c"]);
}

#[test]
fn creates_interrupted_by_a_crash_are_forgotten_at_start_and_damage_is_not() {
    let dir = tempfile::tempdir().unwrap();
    drop(Engine::open(dir.path(), options()).unwrap());
    let dbs = dir.path().join("dbs");
    // Killed before the rename into place, and (as creates were before it) before the
    // manifest of a directory under the database's own name was written.
    std::fs::create_dir(dbs.join(".creating-x")).unwrap();
    std::fs::write(dbs.join(".creating-x/MANIFEST"), b"partial").unwrap();
    std::fs::create_dir(dbs.join("y")).unwrap();
    std::fs::write(dbs.join("y/MANIFEST.tmp"), b"partial").unwrap();
    std::fs::create_dir(dbs.join("empty")).unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    assert!(engine.database_names().is_empty());
    for leftover in [".creating-x", "y", "empty"] {
        assert!(!dbs.join(leftover).exists(), "{leftover}");
    }
    engine.create_database("x").unwrap();
    assert!(!dbs.join(".creating-x").exists());
    drop(engine);
    // A directory that holds more than temporary files and no manifest is damage: refused.
    std::fs::create_dir_all(dbs.join("w/wal")).unwrap();
    assert!(matches!(
        Engine::open(dir.path(), options()),
        Err(EngineError::Corrupt { .. })
    ));
}

/// Lengths of the WAL files of database `name`, in order.
fn wal_lengths(dir: &std::path::Path, name: &str) -> Vec<u64> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("dbs").join(name).join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect()
}

fn wait_while_a_spare_is_written(wal: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let writing = || {
        std::fs::read_dir(wal)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"))
    };
    while writing() {
        assert!(
            std::time::Instant::now() < deadline,
            "a spare WAL file took a minute"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn wal_files_are_written_zero_filled_ahead_and_replay_as_plain_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mib = 1u64 << 20;
    let opts = EngineOptions {
        wal_rotate_bytes: mib,
        ..options()
    };
    let written = 3_000i64;
    {
        let engine = Engine::open(dir.path(), opts.clone()).unwrap();
        let db = engine.create_database("db").unwrap();
        // The first file is zero-filled to its full length before the database opens.
        assert_eq!(wal_lengths(dir.path(), "db"), vec![mib]);
        let wal = dir.path().join("dbs/db/wal");
        for i in 0..written {
            let mut batch = PointBatch::new();
            // About 1.2 KB of WAL per batch: a file fills after ~850 batches.
            for host in 0..100 {
                float_point(&mut batch, &format!("h{host}"), i * 1_000_000_000, i as f64);
            }
            db.write(&batch).unwrap();
            if i % 100 == 0 {
                // A file grows past its length while its spare is still being written; the
                // writer here leaves the spare time, however slow the disk.
                wait_while_a_spare_is_written(&wal);
            }
        }
        let lengths = wal_lengths(dir.path(), "db");
        // Records moved on to spares rather than growing one file: a file left for a spare
        // is cut back to its records, a little short of its length.
        assert!(lengths.len() >= 3, "{lengths:?}");
        assert!(
            lengths.iter().any(|&l| l < mib && l > mib - 4096),
            "{lengths:?}"
        );
        let stats = db.stats();
        assert!(
            stats.wal_bytes_preallocated >= 3 * mib,
            "{}",
            stats.wal_bytes_preallocated
        );
        assert!(stats.wal_bytes_grown < stats.wal_bytes_appended / 2);
    }
    // A spare whose writing was cut short by a crash is removed at start.
    let wal = dir.path().join("dbs/db/wal");
    std::fs::write(wal.join("00000000000000099999.wal.tmp"), [0u8; 100]).unwrap();
    let engine = Engine::open(dir.path(), opts).unwrap();
    assert!(!wal.join("00000000000000099999.wal.tmp").exists());
    let db = engine.database("db").unwrap();
    for host in ["h0", "h99"] {
        let points = read_column(&db, "cpu", host, "v");
        assert_eq!(points.len() as i64, written, "{host}");
        assert_eq!(points[100], (100_000_000_000, FieldValue::Float(100.0)));
    }
}

#[test]
fn without_preallocation_wal_files_grow_from_their_header() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        dir.path(),
        EngineOptions {
            wal_preallocate: false,
            ..options()
        },
    )
    .unwrap();
    let db = engine.create_database("db").unwrap();
    assert_eq!(wal_lengths(dir.path(), "db"), vec![16]);
    let mut batch = PointBatch::new();
    float_point(&mut batch, "a", 0, 1.0);
    db.write(&batch).unwrap();
    let stats = db.stats();
    assert_eq!(stats.wal_bytes_preallocated, 0);
    assert_eq!(stats.wal_bytes_grown, stats.wal_bytes_appended);
    db.flush(true).unwrap();
    let lengths = wal_lengths(dir.path(), "db");
    assert_eq!(lengths.len(), 1, "{lengths:?}");
    assert!(lengths[0] < 100, "{lengths:?}");
}

#[test]
fn chunk_statistics_describe_whole_hour_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options()).unwrap();
    let db = engine.create_database("db").unwrap();
    let mut batch = PointBatch::new();
    let hour = 3_600_000_000_000i64;
    for i in 0..720 {
        float_point(&mut batch, "a", i * 10_000_000_000, i as f64);
    }
    db.write(&batch).unwrap();
    db.flush(true).unwrap();
    let col = db.select("cpu", Some("v"), &TagFilter::All)[0].id;
    let view = db.read(&[col], 0, 2 * hour).unwrap();
    let pieces = view.pieces(col).unwrap();
    assert_eq!(pieces.len(), 2);
    for (k, piece) in pieces.iter().enumerate() {
        let s = piece.stats();
        assert!(piece.is_stored_chunk());
        assert_eq!(s.count, 360);
        assert_eq!(s.min_time, k as i64 * hour);
        match s.values {
            tally_engine::ValueStats::Float {
                sum,
                min,
                max,
                first,
                last,
            } => {
                let lo = (k * 360) as f64;
                let hi = lo + 359.0;
                assert_eq!((min, max, first, last), (lo, hi, lo, hi));
                assert_eq!(sum, (lo + hi) * 180.0);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Write(Vec<(u8, i64, i32)>),
    Flush(bool),
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec((0u8..3, -50i64..200, any::<i32>()), 1..40).prop_map(Op::Write),
        1 => any::<bool>().prop_map(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Random writes (with duplicates and out-of-order timestamps), flushes and restarts give
    /// the same answers as a BTreeMap where the last write wins.
    #[test]
    fn engine_agrees_with_a_last_write_wins_model(ops in proptest::collection::vec(op(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        // Tiny chunks and spans, so a few points cross every boundary.
        let opts = EngineOptions {
            chunk_span: std::time::Duration::from_secs(1),
            block_duration: std::time::Duration::from_secs(4),
            max_chunk_points: 4,
            ..options()
        };
        let mut engine = Engine::open(dir.path(), opts.clone()).unwrap();
        let mut db = engine.create_database("db").unwrap();
        let mut model: BTreeMap<(u8, i64), i32> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Write(points) => {
                    let mut batch = PointBatch::new();
                    for (host, t, v) in &points {
                        batch.push(
                            "m",
                            [(Cow::Borrowed("host"), Cow::Owned(host.to_string()))],
                            [(Cow::Borrowed("v"), FieldValue::Integer(i64::from(*v)))],
                            t * 250_000_000,
                        ).unwrap();
                        model.insert((*host, *t), *v);
                    }
                    db.write(&batch).unwrap();
                }
                Op::Flush(everything) => { db.flush(everything).unwrap(); }
                Op::Compact => { db.compact_all().unwrap(); }
                Op::Reopen => {
                    drop(db);
                    drop(engine);
                    engine = Engine::open(dir.path(), opts.clone()).unwrap();
                    db = engine.database("db").unwrap();
                }
            }
            for host in 0u8..3 {
                let got = read_column(&db, "m", &host.to_string(), "v");
                let want: Vec<(i64, FieldValue<'static>)> = model
                    .range((host, i64::MIN)..=(host, i64::MAX))
                    .map(|((_, t), v)| (t * 250_000_000, FieldValue::Integer(i64::from(*v))))
                    .collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}

#[test]
fn a_snapshot_holds_every_write_before_it_and_opens_as_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("data"), options()).unwrap();
    let db = engine.create_database("db").unwrap();
    let mut batch = PointBatch::new();
    for i in 0..500 {
        float_point(&mut batch, "a", i * 1_000_000_000, i as f64);
    }
    db.write(&batch).unwrap();
    db.flush(true).unwrap();
    let mut batch = PointBatch::new();
    for i in 500..700 {
        float_point(&mut batch, "a", i * 1_000_000_000, i as f64);
    }
    db.write(&batch).unwrap(); // only in the WAL
    let target = dir.path().join("snap");
    let snapshot = engine.snapshot(&target, None).unwrap();
    assert_eq!(snapshot.len(), 1);
    assert!(
        snapshot[0]
            .1
            .files
            .iter()
            .any(|(p, _)| p.to_string_lossy().ends_with(".tseg"))
    );
    let mut batch = PointBatch::new();
    float_point(&mut batch, "a", 10_000_000_000_000, 1.0);
    db.write(&batch).unwrap(); // after the snapshot
    db.flush(true).unwrap(); // deletes the WAL files the snapshot linked
    assert!(
        engine.snapshot(&target, None).is_err(),
        "an existing target must be refused"
    );
    let copy = Engine::open(&target, options()).unwrap();
    let points = read_column(&copy.database("db").unwrap(), "cpu", "a", "v");
    assert_eq!(points.len(), 700);
    assert_eq!(points[699], (699_000_000_000, FieldValue::Float(699.0)));
}
