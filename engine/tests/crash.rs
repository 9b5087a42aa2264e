//! Crash test: a child process writes batches and reports each acknowledged one; the parent
//! kills it with SIGKILL at random moments (flushes, checkpoints, compactions and retention
//! passes included, thanks to tiny thresholds and a compaction thread that runs every few
//! milliseconds), reopens the directory and checks that every acknowledged batch is there
//! whole, that no batch is there in part, and that no file is left half-written.
//!
//! The child writes two databases: `db`, kept forever, holds the batches it acknowledges; `old`
//! keeps raw data five minutes (by a manual clock the child moves 30 s per batch), so
//! retention deletes its blocks while the child runs.
//!
//! The child is this same test binary, started with `TALLY_CRASH_CHILD` set so that the
//! `crash_child` test turns into the writer loop.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tally_engine::{
    Clock, ColumnValues, CompactionOptions, Engine, EngineOptions, FieldType, FieldValue,
    FsyncPolicy, PointBatch, Retention, TagFilter,
};

const POINTS_PER_BATCH: i64 = 50;
const HOSTS: u64 = 4;

fn crash_options() -> EngineOptions {
    EngineOptions {
        fsync: FsyncPolicy::Always,
        flush_bytes: 16 << 10,
        max_head_bytes: 64 << 20,
        flush_interval: Duration::from_millis(200),
        wal_rotate_bytes: 64 << 10,
        chunk_span: Duration::from_secs(10),
        block_duration: Duration::from_secs(60),
        max_chunk_points: 64,
        compaction: CompactionOptions {
            enabled: true,
            check_interval: Duration::from_millis(20),
            delay: Duration::ZERO,
            max_segments_per_block: 2,
            bytes_per_second: 0,
            cpu_percent: 100,
        },
        ..EngineOptions::default()
    }
}

/// A batch for the `old` database, inside one block, a little younger than its retention.
fn old_batch(id: u64, now: i64) -> PointBatch<'static> {
    let minute = 60_000_000_000i64;
    let base = (now - 4 * minute).div_euclid(minute) * minute + (id % 50) as i64 * 1_000_000_000;
    let mut batch = PointBatch::new();
    for j in 0..POINTS_PER_BATCH {
        batch
            .push(
                "old",
                [],
                [(Cow::Borrowed("v"), FieldValue::Integer(id as i64))],
                base + j * 1_000_000,
            )
            .unwrap();
    }
    batch
}

/// Batch `id` writes POINTS_PER_BATCH points of host `id % HOSTS` at timestamps
/// `id * 1000 + j` (seconds), all with value `id`.
fn batch_for(id: u64) -> PointBatch<'static> {
    let mut batch = PointBatch::new();
    for j in 0..POINTS_PER_BATCH {
        batch
            .push(
                "crash",
                [(
                    Cow::Borrowed("host"),
                    Cow::Owned(format!("h{}", id % HOSTS)),
                )],
                [(Cow::Borrowed("v"), FieldValue::Integer(id as i64))],
                (id as i64 * 1000 + j) * 1_000_000_000,
            )
            .unwrap();
    }
    batch
}

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("TALLY_CRASH_CHILD") else {
        return;
    };
    let first: u64 = std::env::var("TALLY_CRASH_FIRST").unwrap().parse().unwrap();
    let clock = Clock::manual(1_796_083_200_000_000_000 + first as i64 * 1_000_000_000);
    let engine = Engine::open(
        &dir,
        EngineOptions {
            clock: clock.clone(),
            ..crash_options()
        },
    )
    .unwrap();
    let db = engine.create_database("db").unwrap();
    let old = engine.create_database("old").unwrap();
    old.set_retention(Retention {
        raw: Some(Duration::from_secs(300)),
        tiers: Vec::new(),
    })
    .unwrap();
    let mut id = first;
    loop {
        db.write(&batch_for(id)).unwrap();
        println!("ack {id}");
        // The old database's batches are not acknowledged: they only keep retention busy.
        let _ = old.write(&old_batch(id, clock.now_ns()));
        clock.advance(Duration::from_secs(30));
        id += 1;
        if id.is_multiple_of(7) {
            engine.nudge();
        }
    }
}

/// Checks the `old` database: every batch whole or gone, and every file in the directory named
/// by the manifest (leftovers of a killed compaction were cleaned up at open).
fn check_old(dir: &std::path::Path, engine: &Engine) {
    let Some(db) = engine.database("old") else {
        return;
    };
    let mut per_batch: BTreeMap<i64, i64> = BTreeMap::new();
    for col in db.select("old", Some("v"), &TagFilter::All) {
        let view = db.read(&[col.id], i64::MIN, i64::MAX).unwrap();
        let mut ts = Vec::new();
        let mut values = ColumnValues::new(FieldType::Integer);
        for piece in view.pieces(col.id).unwrap() {
            piece.decode_into(&mut ts, &mut values).unwrap();
            let ColumnValues::Integer(vals) = &values else {
                panic!("wrong type")
            };
            for v in vals {
                *per_batch.entry(*v).or_default() += 1;
            }
        }
    }
    for (batch, n) in per_batch {
        assert_eq!(
            n, POINTS_PER_BATCH,
            "old batch {batch} is torn ({n} points)"
        );
    }
    for entry in std::fs::read_dir(dir.join("dbs/old")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".tmp"),
            "a half-written file survived the restart: {name}"
        );
    }
}

/// Every stored point: host -> (timestamp -> value).
fn stored(dir: &std::path::Path) -> BTreeMap<u64, BTreeMap<i64, i64>> {
    let engine = Engine::open(dir, crash_options()).unwrap();
    check_old(dir, &engine);
    // A spare WAL file the kill interrupted is gone too.
    for db in ["db", "old"] {
        let Ok(entries) = std::fs::read_dir(dir.join("dbs").join(db).join("wal")) else {
            continue;
        };
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.ends_with(".tmp"),
                "a half-written WAL file survived the restart: {db}/wal/{name}"
            );
        }
    }
    let mut out = BTreeMap::new();
    let Some(db) = engine.database("db") else {
        return out;
    };
    for host in 0..HOSTS {
        let mut points = BTreeMap::new();
        let cols = db.select(
            "crash",
            Some("v"),
            &TagFilter::equal("host", format!("h{host}")),
        );
        for col in cols {
            let view = db.read(&[col.id], i64::MIN, i64::MAX).unwrap();
            let mut ts = Vec::new();
            let mut values = ColumnValues::new(FieldType::Integer);
            for piece in view.pieces(col.id).unwrap() {
                piece.decode_into(&mut ts, &mut values).unwrap();
                let ColumnValues::Integer(vals) = &values else {
                    panic!("wrong type")
                };
                for (t, v) in ts.iter().zip(vals) {
                    points.insert(*t / 1_000_000_000, *v);
                }
            }
        }
        out.insert(host, points);
    }
    out
}

#[test]
fn acknowledged_batches_survive_sigkill_and_none_is_torn() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<u64> = Vec::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let rounds = 25;
    for round in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let first = round * 1_000_000;
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("TALLY_CRASH_CHILD", dir.path())
            .env("TALLY_CRASH_FIRST", first.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut ids = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("ack ") {
                    ids.push(id.trim().parse::<u64>().unwrap());
                }
            }
            ids
        });
        // Let it run until it has acknowledged something, then a random extra moment.
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(150 + seed % 400));
        child.kill().unwrap();
        child.wait().unwrap();
        let ids = reader.join().unwrap();
        assert!(start.elapsed() < Duration::from_secs(120));
        acked.extend(ids);

        let stored = stored(dir.path());
        for &id in &acked {
            let host = stored.get(&(id % HOSTS)).unwrap();
            for j in 0..POINTS_PER_BATCH {
                let t = id as i64 * 1000 + j;
                assert_eq!(
                    host.get(&t),
                    Some(&(id as i64)),
                    "round {round}: acknowledged batch {id} lost point {j}"
                );
            }
        }
        // Unacknowledged batches (the one in flight at the kill) are whole or absent.
        for (host, points) in &stored {
            let mut per_batch: BTreeMap<i64, i64> = BTreeMap::new();
            for (t, v) in points {
                assert_eq!(
                    t / 1000,
                    *v,
                    "host {host}: point {t} holds another batch's value {v}"
                );
                *per_batch.entry(*v).or_default() += 1;
            }
            for (batch, n) in per_batch {
                assert_eq!(
                    n, POINTS_PER_BATCH,
                    "round {round}: batch {batch} is torn ({n} points)"
                );
            }
        }
    }
    assert!(
        acked.len() > rounds as usize,
        "the child acknowledged too little to prove anything"
    );
}
