//! `tally-dump` against a running tallyd: an online backup under continuous ingest, exported
//! line protocol imported into an empty server, per-line import errors over HTTP, and the
//! snapshot endpoints. Needs the `tallyd` binary next to the test's directory (built by
//! `cargo build --workspace --bins` or `cargo test --workspace`) or at `$TALLYD_BIN`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

#[path = "dump_common.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tally_engine::{ColumnValues, Engine, FieldType, FieldValue, TagFilter};
use tally_tests::Tallyd;

/// Only the points of the given databases (a server may also hold its samplers' database).
fn only(points: &BTreeMap<String, String>, databases: &[&str]) -> BTreeMap<String, String> {
    points
        .iter()
        .filter(|(k, _)| databases.iter().any(|d| k.starts_with(&format!("{d}|"))))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

const LINES_PER_BATCH: i64 = 200;

struct Acknowledged {
    batch: i64,
    sent: Instant,
    acknowledged: Instant,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

#[test]
fn an_online_backup_under_continuous_ingest_holds_every_acknowledged_point_and_no_torn_batch() {
    let root = tempfile::tempdir().unwrap();
    let server = Tallyd::start_in(&root.path().join("data"), &[]);
    let port = server.port;
    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<Acknowledged>>> = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let stop = stop.clone();
        let log = log.clone();
        std::thread::spawn(move || {
            let mut batch = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let mut body = String::new();
                for line in 0..LINES_PER_BATCH {
                    let t = BASE + (batch * LINES_PER_BATCH + line) * 1_000_000;
                    body.push_str(&format!("load,writer=w1 batch={batch}i,line={line}i {t}\n"));
                }
                let sent = Instant::now();
                let response = tally_tests::request(
                    port,
                    "POST",
                    "/write?db=ingest&precision=ns",
                    &[],
                    body.as_bytes(),
                )
                .unwrap();
                assert_eq!(response.status, 204, "{}", response.text());
                log.lock().unwrap().push(Acknowledged {
                    batch,
                    sent,
                    acknowledged: Instant::now(),
                });
                batch += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    let backup_started = Instant::now();
    let backup = root.path().join("online.tar.zst");
    let run = dump_ok(&[
        "backup",
        "--host",
        &server.url(),
        "--output",
        path_str(&backup),
    ]);
    let backup_finished = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(run.stderr.contains("snapshot at"), "{}", run.stderr);

    // The server's write latency before and during the backup (printed, not asserted).
    let log = log.lock().unwrap();
    let mut before: Vec<Duration> = Vec::new();
    let mut during: Vec<Duration> = Vec::new();
    for entry in log.iter() {
        let latency = entry.acknowledged - entry.sent;
        if entry.acknowledged < backup_started {
            before.push(latency);
        } else if entry.sent <= backup_finished {
            during.push(latency);
        }
    }
    before.sort();
    during.sort();
    println!(
        "write latency of {LINES_PER_BATCH}-line batches: before the backup p50 {:?} p99 {:?} max {:?} ({} batches); during the backup ({:?}) p50 {:?} p99 {:?} max {:?} ({} batches)",
        percentile(&before, 0.5),
        percentile(&before, 0.99),
        before.last().copied().unwrap_or_default(),
        before.len(),
        backup_finished - backup_started,
        percentile(&during, 0.5),
        percentile(&during, 0.99),
        during.last().copied().unwrap_or_default(),
        during.len(),
    );
    let acknowledged_before: Vec<i64> = log
        .iter()
        .filter(|e| e.acknowledged < backup_started)
        .map(|e| e.batch)
        .collect();
    assert!(acknowledged_before.len() > 3, "the writer barely ran");
    drop(log);

    // The snapshot was released.
    let snapshots = server.request("GET", "/api/v1/snapshots", &[], b"").json();
    assert_eq!(snapshots["snapshots"], serde_json::json!([]), "{snapshots}");

    dump_ok(&["verify", path_str(&backup)]);
    let restored = root.path().join("restored");
    dump_ok(&[
        "restore",
        path_str(&backup),
        "--data-dir",
        path_str(&restored),
    ]);
    let engine = Engine::open(&restored, engine_options()).unwrap();
    let db = engine.database("ingest").unwrap();
    let mut lines_per_batch: BTreeMap<i64, i64> = BTreeMap::new();
    for column in db.select("load", Some("batch"), &TagFilter::All) {
        let view = db.read(&[column.id], i64::MIN, i64::MAX).unwrap();
        let mut ts = Vec::new();
        let mut values = ColumnValues::new(FieldType::Integer);
        for piece in view.pieces(column.id).unwrap() {
            piece.decode_into(&mut ts, &mut values).unwrap();
            for i in 0..ts.len() {
                if let Some(FieldValue::Integer(batch)) = values.get(i) {
                    *lines_per_batch.entry(batch).or_default() += 1;
                }
            }
        }
    }
    for batch in &acknowledged_before {
        assert_eq!(
            lines_per_batch.get(batch),
            Some(&LINES_PER_BATCH),
            "batch {batch}, acknowledged before the backup started, is not whole in it"
        );
    }
    for (batch, lines) in &lines_per_batch {
        assert_eq!(
            *lines, LINES_PER_BATCH,
            "batch {batch} is torn in the backup"
        );
    }
    println!(
        "backup holds {} whole batches; {} were acknowledged before it started",
        lines_per_batch.len(),
        acknowledged_before.len()
    );
}

#[test]
fn exported_line_protocol_loads_into_an_empty_server_with_the_same_points() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("source");
    build_dataset(&data, 2, 120);
    let original = all_points(&data);
    let export = root.path().join("all.lp.zst");
    let exported = dump_ok(&[
        "export",
        "--data-dir",
        path_str(&data),
        "--output",
        path_str(&export),
    ]);
    assert!(
        exported.stderr.contains("NaN or infinite values left out"),
        "{}",
        exported.stderr
    );
    let server_dir = root.path().join("server");
    let server = Tallyd::start_in(&server_dir, &[]);
    // The export names its databases (`# CONTEXT-DATABASE:`): no --db needed.
    let imported = dump(&[
        "import",
        path_str(&export),
        "--host",
        &server.url(),
        "--batch-lines",
        "700",
    ]);
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    server.stop();
    let loaded = only(&all_points(&server_dir), &["requests", "odd names ü"]);
    assert_same_points(
        &loaded,
        &finite_only(&original),
        "line protocol through a server",
    );
}

#[test]
fn import_into_a_server_reports_each_rejected_line_and_keeps_the_valid_ones() {
    let root = tempfile::tempdir().unwrap();
    let server_dir = root.path().join("server");
    let server = Tallyd::start_in(&server_dir, &[]);
    let input = root.path().join("mixed.lp");
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&format!("m,k=v f={i} {}\n", 1000 + i));
    }
    text.push_str("m,k=v f=\"now a string\" 2000\n");
    text.push_str("bad line without fields\n");
    text.push_str("m,k=v s=\"two\nlines\",f=9 3000\n");
    text.push_str("m,k=v f=10 4000\n");
    std::fs::write(&input, &text).unwrap();
    let run = dump(&[
        "import",
        path_str(&input),
        "--host",
        &server.url(),
        "--db",
        "mixed",
        "--batch-lines",
        "7",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("mixed.lp:51:"), "{}", run.stderr);
    assert!(run.stderr.contains("mixed.lp:52:"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("mixed.lp:53:") && !run.stderr.contains("mixed.lp:55:"),
        "{}",
        run.stderr
    );
    let answer = server.query("mixed", "SELECT count(f) FROM m");
    let rows = tally_tests::rows(&answer);
    assert_eq!(rows[0][1], serde_json::json!(52), "{answer}");
}

#[test]
fn snapshots_can_be_listed_streamed_and_deleted() {
    let root = tempfile::tempdir().unwrap();
    let server = Tallyd::start_in(&root.path().join("data"), &[]);
    let response = server.write("snap", "m v=1 1\nm v=2 2\n");
    assert_eq!(response.status, 204);
    let created = server.request("POST", "/api/v1/snapshots?db=snap", &[], b"");
    assert_eq!(created.status, 201, "{}", created.text());
    let description = created.json();
    let id = description["id"].as_str().unwrap().to_string();
    let files = description["files"].as_array().unwrap();
    let manifest = files.iter().find(|f| f["kind"] == "manifest").unwrap();
    let path = manifest["path"].as_str().unwrap();
    let streamed = server.request(
        "GET",
        &format!("/api/v1/snapshots/{id}/files/{path}"),
        &[],
        b"",
    );
    assert_eq!(streamed.status, 200);
    assert_eq!(
        streamed.body.len() as u64,
        manifest["size"].as_u64().unwrap()
    );
    assert_eq!(
        format!("{:08x}", crc32c::crc32c(&streamed.body)),
        manifest["crc32c"].as_str().unwrap()
    );
    let escape = server.request(
        "GET",
        &format!("/api/v1/snapshots/{id}/files/../../LOCK"),
        &[],
        b"",
    );
    assert_eq!(escape.status, 404);
    let unknown_db = server.request("POST", "/api/v1/snapshots?db=nope", &[], b"");
    assert_eq!(unknown_db.status, 404, "{}", unknown_db.text());
    assert!(root.path().join("data/snapshots").join(&id).exists());
    let deleted = server.request("DELETE", &format!("/api/v1/snapshots/{id}"), &[], b"");
    assert_eq!(deleted.status, 204);
    assert!(!root.path().join("data/snapshots").join(&id).exists());
    let again = server.request("DELETE", &format!("/api/v1/snapshots/{id}"), &[], b"");
    assert_eq!(again.status, 404);
}
