//! Compaction, rollup tiers, retention, deletion and the disk-space guard, driven by a manual
//! clock.
#![allow(clippy::unwrap_used)]

mod common;

use std::borrow::Cow;
use std::time::Duration;

use common::{c, float_point, read_column};
use tally_engine::{
    Clock, ColumnValues, CompactionOptions, Engine, EngineError, EngineOptions, FieldType,
    FieldValue, FsyncPolicy, PointBatch, Retention, TagFilter, Tier, WriteError,
};

const HOUR: i64 = 3_600_000_000_000;
const DAY: i64 = 24 * HOUR;
/// 2026-11-01T00:00:00Z
const T0: i64 = 1_793_491_200_000_000_000;

fn options(clock: &Clock) -> EngineOptions {
    EngineOptions {
        fsync: FsyncPolicy::Never,
        clock: clock.clone(),
        // Tests drive compaction themselves.
        compaction: CompactionOptions {
            enabled: false,
            delay: Duration::from_secs(600),
            ..CompactionOptions::default()
        },
        ..EngineOptions::default()
    }
}

fn write_minutely(
    db: &tally_engine::Database,
    host: &str,
    from: i64,
    minutes: i64,
    value: impl Fn(i64) -> f64,
) {
    let mut batch = PointBatch::new();
    for i in 0..minutes {
        float_point(&mut batch, host, from + i * 60_000_000_000, value(i));
    }
    let summary = db.write(&batch).unwrap();
    assert!(
        summary.rejected.is_empty(),
        "{:?}",
        summary.rejected.first()
    );
}

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("dbs/db"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tseg")
        })
        .count()
}

#[test]
fn compaction_merges_a_blocks_segments_and_builds_its_rollups() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * DAY);
    let engine = Engine::open(dir.path(), options(&clock)).unwrap();
    let db = engine.create_database("db").unwrap();
    // Two days written in three flushes, with overlaps and overwrites.
    write_minutely(&db, "a", T0, 1440, |i| i as f64);
    db.flush(true).unwrap();
    write_minutely(&db, "a", T0 + DAY, 1440, |i| (i * 2) as f64);
    db.flush(true).unwrap();
    write_minutely(&db, "a", T0 + 600 * 60_000_000_000, 10, |_| -1.0); // overwrites 10 points
    db.flush(true).unwrap();
    let before = read_column(&db, "cpu", "a", "v");
    assert_eq!(before.len(), 2880);
    assert_eq!(segment_files(dir.path()), 3);
    let records = db.compact_all().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r.outcome == "done"));
    // Per block: one raw segment and one per tier (1m, 1h).
    assert_eq!(segment_files(dir.path()), 6);
    assert_eq!(read_column(&db, "cpu", "a", "v"), before);
    // Nothing left to do.
    assert!(db.compact_all().unwrap().is_empty());

    // Tiered reads: whole hours come from the 1h rollups and agree with raw data.
    let col = db.select("cpu", Some("v"), &TagFilter::All)[0].id;
    let view = db.read_tiered(&[col], T0, T0 + 2 * DAY - 1, HOUR).unwrap();
    assert_eq!(view.tier_use().rollup_blocks, 2);
    assert_eq!(view.tier_use().raw_blocks, 0);
    let rows = view.rollup_rows(col).unwrap();
    let total: u64 = rows.iter().map(|(_, r)| r.counts.iter().sum::<u64>()).sum();
    assert_eq!(total, 2880);
    let mut raw_sum = 0.0;
    for (_, v) in &before {
        if let FieldValue::Float(x) = v {
            raw_sum += x;
        }
    }
    let mut rollup_sum = 0.0;
    for (_, r) in &rows {
        if let ColumnValues::Float(s) = &r.sum {
            rollup_sum += s.iter().sum::<f64>();
        }
    }
    assert!(
        (raw_sum - rollup_sum).abs() < 1e-6,
        "{raw_sum} vs {rollup_sum}"
    );
    // A range cutting an hour in two reads that block's raw data instead.
    let view = db
        .read_tiered(&[col], T0 + HOUR / 2, T0 + 2 * DAY - 1, HOUR)
        .unwrap();
    assert_eq!(view.tier_use().raw_blocks, 1);
    assert_eq!(view.tier_use().rollup_blocks, 1);

    // Late data for a rolled-up block sends it back to raw until it is compacted again.
    write_minutely(&db, "a", T0 + 5, 1, |_| 99.0);
    db.flush(true).unwrap();
    let view = db.read_tiered(&[col], T0, T0 + 2 * DAY - 1, HOUR).unwrap();
    assert_eq!(
        (view.tier_use().raw_blocks, view.tier_use().rollup_blocks),
        (1, 1)
    );
    db.compact_all().unwrap();
    let view = db.read_tiered(&[col], T0, T0 + 2 * DAY - 1, HOUR).unwrap();
    assert_eq!(
        (view.tier_use().raw_blocks, view.tier_use().rollup_blocks),
        (0, 2)
    );
    assert_eq!(read_column(&db, "cpu", "a", "v").len(), 2881);
}

#[test]
fn retention_removes_expired_blocks_whole_and_the_catalog_forgets_empty_series() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + DAY / 2);
    let mut opts = options(&clock);
    opts.retention = Retention {
        raw: Some(Duration::from_secs(86_400)),
        tiers: vec![Tier {
            resolution: Duration::from_secs(3600),
            retention: Some(Duration::from_secs(10 * 86_400)),
        }],
    };
    let engine = Engine::open(dir.path(), opts.clone()).unwrap();
    let db = engine.create_database("db").unwrap();
    // Days 1 to 3 (T0 .. T0+3d); "now" is the end of day 3.
    for day in 0..3 {
        write_minutely(&db, "a", T0 + day * DAY, 1440, |i| i as f64);
    }
    write_minutely(&db, "gone", T0, 60, |_| 1.0);
    db.flush(true).unwrap();
    db.compact_all().unwrap();
    // Now it is the end of day 3.
    clock.set_ns(T0 + 3 * DAY);
    db.apply_retention().unwrap();
    // Raw data of days 1 and 2 ended more than a day ago: gone; day 3 stays raw.
    let raw = read_column(&db, "cpu", "a", "v");
    assert_eq!(raw.len(), 1440);
    assert!(raw.iter().all(|(t, _)| *t >= T0 + 2 * DAY));
    // The 1h tier still answers for the three days.
    let col = db.select("cpu", Some("v"), &TagFilter::equal("host", "a"))[0].id;
    let view = db.read_tiered(&[col], T0, T0 + 3 * DAY - 1, HOUR).unwrap();
    let rows: u64 = view
        .rollup_rows(col)
        .unwrap()
        .iter()
        .map(|(_, r)| r.len() as u64)
        .sum();
    assert_eq!(
        rows, 72,
        "the two expired days and the kept one, all from hourly rollups"
    );
    assert_eq!(
        (view.tier_use().rollup_blocks, view.tier_use().raw_blocks),
        (3, 0)
    );
    // Writes older than the raw retention are refused, with the retention in the message.
    let mut batch = PointBatch::new();
    float_point(&mut batch, "a", T0, 1.0);
    let summary = db.write(&batch).unwrap();
    assert!(
        matches!(&summary.rejected[0].error, WriteError::BeyondRetention { retention, .. } if retention == "1d"),
        "{:?}",
        summary.rejected
    );
    // Eleven days on, the tier has expired too and host "gone" has no data anywhere.
    clock.advance(Duration::from_secs(11 * 86_400));
    db.apply_retention().unwrap();
    db.apply_retention().unwrap();
    assert!(read_column(&db, "cpu", "gone", "v").is_empty());
    assert!(
        db.select("cpu", None, &TagFilter::equal("host", "gone"))
            .is_empty(),
        "the catalog still lists the expired series"
    );
    assert!(db.tag_values("cpu", "host", &TagFilter::All).is_empty());
    // The forgetting survives a restart, and the key can be written again as a new series.
    drop(db);
    drop(engine);
    let engine = Engine::open(dir.path(), opts).unwrap();
    let db = engine.database("db").unwrap();
    assert!(db.tag_values("cpu", "host", &TagFilter::All).is_empty());
    write_minutely(&db, "gone", T0 + 14 * DAY, 1, |_| 5.0);
    assert_eq!(
        read_column(&db, "cpu", "gone", "v"),
        vec![(T0 + 14 * DAY, FieldValue::Float(5.0))]
    );
}

#[test]
fn delete_hides_points_at_once_compaction_removes_them_and_later_writes_survive() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * DAY);
    let opts = options(&clock);
    let engine = Engine::open(dir.path(), opts.clone()).unwrap();
    let db = engine.create_database("db").unwrap();
    write_minutely(&db, "a", T0, 120, |i| i as f64);
    write_minutely(&db, "b", T0, 120, |i| i as f64);
    // Half in a segment, half still in the head.
    db.flush(true).unwrap();
    write_minutely(&db, "a", T0 + 120 * 60_000_000_000, 60, |i| i as f64);
    let report = db
        .delete(
            Some("cpu"),
            &TagFilter::equal("host", "a"),
            T0 + 30 * 60_000_000_000,
            T0 + 150 * 60_000_000_000 - 1,
        )
        .unwrap();
    assert_eq!(report.columns, 1);
    assert!(!report.dropped);
    assert_eq!(read_column(&db, "cpu", "a", "v").len(), 180 - 120);
    assert_eq!(read_column(&db, "cpu", "b", "v").len(), 120);
    // A write after the deletion into its range is kept.
    write_minutely(&db, "a", T0 + 40 * 60_000_000_000, 1, |_| 7.0);
    assert_eq!(read_column(&db, "cpu", "a", "v").len(), 61);
    // Restart: the tombstone is durable.
    drop(db);
    drop(engine);
    let engine = Engine::open(dir.path(), opts.clone()).unwrap();
    let db = engine.database("db").unwrap();
    assert_eq!(read_column(&db, "cpu", "a", "v").len(), 61);
    db.flush(true).unwrap();
    db.compact_all().unwrap();
    let points = read_column(&db, "cpu", "a", "v");
    assert_eq!(points.len(), 61);
    assert!(points.contains(&(T0 + 40 * 60_000_000_000, FieldValue::Float(7.0))));
    let manifest = std::fs::read(dir.path().join("dbs/db/MANIFEST")).unwrap();
    drop(db);
    drop(engine);
    // The tombstone was applied and dropped: a restart without it gives the same answer.
    let engine = Engine::open(dir.path(), opts).unwrap();
    assert_eq!(
        read_column(&engine.database("db").unwrap(), "cpu", "a", "v").len(),
        61
    );
    assert!(!manifest.is_empty());
}

#[test]
fn dropping_series_forgets_them_at_once_and_the_key_can_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(T0 + 10 * DAY);
    let opts = options(&clock);
    let engine = Engine::open(dir.path(), opts.clone()).unwrap();
    let db = engine.create_database("db").unwrap();
    write_minutely(&db, "a", T0, 10, |i| i as f64);
    let mut batch = PointBatch::new();
    batch
        .push(
            "mem",
            [(c("host"), c("a"))],
            [(c("used"), FieldValue::Integer(1))],
            T0,
        )
        .unwrap();
    db.write(&batch).unwrap();
    let report = db
        .delete(Some("cpu"), &TagFilter::All, i64::MIN, i64::MAX)
        .unwrap();
    assert!(report.dropped);
    assert_eq!(db.measurements(), vec!["mem"]);
    assert!(read_column(&db, "cpu", "a", "v").is_empty());
    // The same key again is a new series; the field may even change type now.
    let mut batch = PointBatch::new();
    batch
        .push(
            "cpu",
            [(Cow::Borrowed("host"), Cow::Borrowed("a"))],
            [(Cow::Borrowed("v"), FieldValue::Integer(3))],
            T0 + DAY,
        )
        .unwrap();
    assert!(db.write(&batch).unwrap().rejected.is_empty());
    assert_eq!(
        db.field_keys("cpu"),
        vec![("v".to_string(), FieldType::Integer)]
    );
    db.flush(true).unwrap();
    db.compact_all().unwrap();
    drop(db);
    drop(engine);
    let engine = Engine::open(dir.path(), opts).unwrap();
    let db = engine.database("db").unwrap();
    assert_eq!(
        read_column(&db, "cpu", "a", "v"),
        vec![(T0 + DAY, FieldValue::Integer(3))]
    );
    assert_eq!(db.series("cpu", &TagFilter::All).len(), 1);
}

/// Fills a small tmpfs until the engine refuses writes: the refusal is a clear error, nothing
/// stored is damaged, and writes resume once space is freed.
#[test]
fn a_full_disk_refuses_writes_without_damage_and_recovers() {
    let mount = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mount.path())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "this test needs to mount a 4 MiB tmpfs (as root, or in a container allowed to mount); mount failed with {status}"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.path().to_path_buf());
    let clock = Clock::manual(T0 + 10 * DAY);
    let mut opts = options(&clock);
    opts.min_free_disk_bytes = 1 << 20;
    opts.wal_rotate_bytes = 256 << 10;
    let data = mount.path().join("data");
    let engine = Engine::open(&data, opts.clone()).unwrap();
    let db = engine.create_database("db").unwrap();
    // A filler file leaves little room.
    let filler = mount.path().join("filler");
    std::fs::write(&filler, vec![0u8; 2 << 20]).unwrap();
    let mut acknowledged = 0i64;
    let mut refused = None;
    // Values that do not compress, so flushes that shrink the WAL into segments still fill
    // the file system: the floor is reached whatever the flush timing.
    let mut noise = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..4000 {
        let mut batch = PointBatch::new();
        for i in 0..500 {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            float_point(
                &mut batch,
                "a",
                T0 + (round * 500 + i) * 1_000_000_000,
                (noise >> 11) as f64,
            );
        }
        match db.write(&batch) {
            Ok(_) => acknowledged += 500,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let error = refused.expect("the writes never hit the free-space floor");
    assert!(error.is_disk_full(), "{error}");
    assert!(
        matches!(
            error,
            EngineError::DiskSpaceLow { .. } | EngineError::Io { .. }
        ),
        "{error}"
    );
    // Space returns: writes resume by themselves (the check runs at most once a second).
    std::fs::remove_file(&filler).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let mut batch = PointBatch::new();
    float_point(&mut batch, "a", T0 + 1_000_000_000_000_000, 2.0);
    db.write(&batch).unwrap();
    acknowledged += 1;
    drop(db);
    drop(engine);
    let engine = Engine::open(&data, opts).unwrap();
    assert_eq!(
        read_column(&engine.database("db").unwrap(), "cpu", "a", "v").len() as i64,
        acknowledged
    );
}
