//! Many writers and readers at once: totals add up, and every read sees each batch whole.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tally_engine::{
    ColumnValues, Engine, EngineOptions, FieldType, FieldValue, FsyncPolicy, PointBatch, TagFilter,
};

const WRITERS: u64 = 4;
const BATCHES: u64 = 150;
const POINTS: u64 = 20;

#[test]
fn concurrent_writers_and_readers_see_whole_batches_and_totals_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let options = EngineOptions {
        fsync: FsyncPolicy::Always,
        flush_bytes: 32 << 10,
        flush_interval: std::time::Duration::from_millis(50),
        ..EngineOptions::default()
    };
    let engine = Arc::new(Engine::open(dir.path(), options).unwrap());
    let db = engine.create_database("db").unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                for b in 0..BATCHES {
                    let mut batch = PointBatch::new();
                    for p in 0..POINTS {
                        // Fields a and b of one point always arrive together.
                        batch
                            .push(
                                "m",
                                [(Cow::Borrowed("writer"), Cow::Owned(w.to_string()))],
                                [
                                    (Cow::Borrowed("a"), FieldValue::Integer(1)),
                                    (Cow::Borrowed("b"), FieldValue::Integer(1)),
                                ],
                                ((b * POINTS + p) * 1_000_000) as i64,
                            )
                            .unwrap();
                    }
                    db.write(&batch).unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let db = db.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Relaxed) {
                    for w in 0..WRITERS {
                        let cols = db.select("m", None, &TagFilter::equal("writer", w.to_string()));
                        if cols.len() < 2 {
                            continue;
                        }
                        let ids: Vec<u32> = cols.iter().map(|c| c.id).collect();
                        let view = db.read(&ids, i64::MIN, i64::MAX).unwrap();
                        let counts: Vec<u64> = ids
                            .iter()
                            .map(|&id| {
                                view.pieces(id)
                                    .unwrap()
                                    .iter()
                                    .map(|p| u64::from(p.stats().count))
                                    .sum()
                            })
                            .collect();
                        assert_eq!(counts[0], counts[1], "a read saw half a batch");
                        assert_eq!(counts[0] % POINTS, 0, "a read saw part of a batch");
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    // Flushes run while the writers write, both kinds, so reads cross every state.
    let flusher = {
        let db = db.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut everything = false;
            while !done.load(Ordering::Relaxed) {
                db.flush(everything).unwrap();
                everything = !everything;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    flusher.join().unwrap();
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let mut total = 0u64;
    for col in db.select("m", Some("a"), &TagFilter::All) {
        let view = db.read(&[col.id], i64::MIN, i64::MAX).unwrap();
        let mut ts = Vec::new();
        let mut values = ColumnValues::new(FieldType::Integer);
        for piece in view.pieces(col.id).unwrap() {
            piece.decode_into(&mut ts, &mut values).unwrap();
            total += ts.len() as u64;
        }
    }
    assert_eq!(total, WRITERS * BATCHES * POINTS);
    assert!(
        db.stats().flushes > 0,
        "the test meant to flush while writing"
    );
}
