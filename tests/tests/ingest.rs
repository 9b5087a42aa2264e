//! End to end: writes through the real tallyd over HTTP, restarts, crashes, malformed input.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tally_tests::{Tallyd, rows};

fn count(t: &Tallyd, db: &str, q: &str) -> i64 {
    let answer = t.query(db, q);
    rows(&answer)
        .first()
        .and_then(|r| r.get(1))
        .and_then(|v| v.as_i64())
        .unwrap_or(0)
}

#[test]
fn ping_health_and_version_headers_satisfy_influxdb_clients() {
    let t = Tallyd::start(&[]);
    let r = t.request("GET", "/ping", &[], b"");
    assert_eq!(r.status, 204);
    assert!(r.header("x-influxdb-version").unwrap().starts_with("1.8"));
    assert_eq!(r.header("x-tally-version"), Some(env!("CARGO_PKG_VERSION")));
    let r = t.request("GET", "/health", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "pass");
    t.stop();
}

#[test]
fn points_written_are_read_back_after_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t = Tallyd::start_in(&data, &[]);
    let mut body = String::new();
    for i in 0..1000 {
        body.push_str(&format!(
            "cpu,host=h{} usage={}.5,n={}i {}\n",
            i % 4,
            i,
            i,
            1_700_000_000_000_000_000i64 + i * 1_000_000_000
        ));
    }
    let r = t.write("telemetry", &body);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(count(&t, "telemetry", "SELECT count(usage) FROM cpu"), 1000);
    t.stop();
    let t = Tallyd::start_in(&data, &[]);
    assert_eq!(count(&t, "telemetry", "SELECT count(usage) FROM cpu"), 1000);
    let answer = t.query("telemetry", "SELECT sum(n) FROM cpu WHERE host = 'h1'");
    assert_eq!(
        rows(&answer)[0][1],
        serde_json::json!((0..1000).filter(|i| i % 4 == 1).sum::<i64>())
    );
    t.stop();
}

#[test]
fn acknowledged_writes_survive_sigkill_during_a_write_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut acknowledged: Vec<u64> = Vec::new();
    for round in 0..5u64 {
        let t = Tallyd::start_in(&data, &[]);
        let port = t.port;
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..3u64)
            .map(|w| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    let mut batch = (round * 1_000_000) + w * 100_000;
                    while !stop.load(Ordering::Relaxed) {
                        let mut body = String::new();
                        for j in 0..50 {
                            body.push_str(&format!(
                                "load,batch={batch} v={j}i {}\n",
                                1_700_000_000_000_000_000i64 + j
                            ));
                        }
                        match tally_tests::request(
                            port,
                            "POST",
                            "/write?db=crash",
                            &[],
                            body.as_bytes(),
                        ) {
                            Ok(r) if r.status == 204 => acked.push(batch),
                            _ => break,
                        }
                        batch += 1;
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300 + round * 150));
        t.kill();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            acknowledged.extend(w.join().unwrap());
        }
        let t = Tallyd::start_in(&data, &[]);
        let answer = t.query("crash", "SELECT count(v) FROM load GROUP BY batch");
        let series = answer["results"][0]["series"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut stored = std::collections::HashMap::new();
        for s in &series {
            let batch: u64 = s["tags"]["batch"].as_str().unwrap().parse().unwrap();
            stored.insert(batch, s["values"][0][1].as_i64().unwrap());
        }
        for b in &acknowledged {
            assert_eq!(
                stored.get(b),
                Some(&50),
                "round {round}: acknowledged batch {b} lost or torn"
            );
        }
        for (b, n) in &stored {
            assert_eq!(*n, 50, "round {round}: batch {b} is torn");
        }
        t.stop();
    }
    assert!(
        acknowledged.len() > 20,
        "too few writes were acknowledged to prove anything"
    );
}

/// One case of the parser's malformed-input matrix (`ingest/tests/data/malformed.json`).
struct Case {
    name: String,
    body: Option<String>,
    body_hex: Option<String>,
    line: u32,
    column: u32,
    error: String,
    points: i64,
    precision: Option<String>,
    max_line_bytes: Option<u64>,
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ingest/tests/data/malformed.json"
    );
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            body: c["body"].as_str().map(String::from),
            body_hex: c["body_hex"].as_str().map(String::from),
            line: c["line"].as_u64().unwrap() as u32,
            column: c["column"].as_u64().unwrap() as u32,
            error: c["error"].as_str().unwrap().to_string(),
            points: c["points"].as_i64().unwrap(),
            precision: c["precision"].as_str().map(String::from),
            max_line_bytes: c["max_line_bytes"].as_u64(),
        })
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Every case of the parser's malformed-input matrix, through HTTP: a 400 naming the line,
/// column and reason, and the valid lines around it stored.
#[test]
fn the_malformed_input_matrix_rejects_only_the_bad_lines() {
    let cases = cases();
    assert!(cases.len() >= 40, "the matrix has {} cases", cases.len());
    let t = Tallyd::start(&[]);
    // Cases about the line length limit run against a server configured with their limit.
    let mut limited: Option<(u64, Tallyd)> = None;
    for (i, case) in cases.iter().enumerate() {
        let t = match case.max_line_bytes {
            None => &t,
            Some(limit) => {
                if limited.as_ref().is_none_or(|(l, _)| *l != limit) {
                    let flag = limit.to_string();
                    limited = Some((limit, Tallyd::start(&["--http-max-line-size", &flag])));
                }
                &limited.as_ref().unwrap().1
            }
        };
        let db = format!("m{i}");
        let body = match (&case.body, &case.body_hex) {
            (Some(b), _) => b.clone().into_bytes(),
            (None, Some(h)) => unhex(h),
            _ => panic!("case {} has no body", case.name),
        };
        let precision = case.precision.as_deref().unwrap_or("ns");
        let r = t.request(
            "POST",
            &format!("/write?db={db}&precision={precision}"),
            &[],
            &body,
        );
        assert_eq!(r.status, 400, "case {}: {}", case.name, r.text());
        let answer = r.json();
        let rejected = answer["rejected"].as_array().unwrap();
        let hit = rejected.iter().find(|e| e["line"] == case.line);
        let hit = hit.unwrap_or_else(|| {
            panic!(
                "case {}: no rejection on line {}: {answer}",
                case.name, case.line
            )
        });
        assert_eq!(hit["column"], case.column, "case {}: {answer}", case.name);
        assert_eq!(hit["reason"], case.error.as_str(), "case {}", case.name);
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .starts_with("partial write"),
            "case {}",
            case.name
        );
        assert_eq!(
            answer["written"], case.points,
            "case {}: {answer}",
            case.name
        );
        // The valid lines are stored: count every point of every measurement.
        let measurements = t.query(&db, "SHOW MEASUREMENTS");
        let mut stored = 0;
        for m in rows(&measurements) {
            let name = m[0].as_str().unwrap();
            let a = t.query(
                &db,
                &format!("SELECT * FROM \"{}\"", name.replace('"', "\\\"")),
            );
            for s in a["results"][0]["series"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                stored += s["values"].as_array().unwrap().len() as i64;
            }
        }
        assert_eq!(stored, case.points, "case {}: stored points", case.name);
    }
    t.stop();
}

#[test]
fn gzip_bodies_v2_writes_limits_and_type_conflicts_answer_as_documented() {
    let t = Tallyd::start(&[
        "--http-max-body-size",
        "64KiB",
        "--storage-max-series-per-database",
        "3",
    ]);
    // gzip
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"gz,host=a v=1 1\ngz,host=a v=2 2\n")
        .unwrap();
    let gz = enc.finish().unwrap();
    let r = t.request("POST", "/write?db=g", &[("Content-Encoding", "gzip")], &gz);
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(count(&t, "g", "SELECT count(v) FROM gz"), 2);
    // v2 API with bucket and precision
    let r = t.request(
        "POST",
        "/api/v2/write?org=x&bucket=v2db&precision=s",
        &[("Authorization", "Token abc")],
        b"m v=1 1700000000\n",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let answer = t.query("v2db", "SELECT v FROM m");
    assert_eq!(
        rows(&answer)[0][0],
        serde_json::json!(1_700_000_000_000_000_000i64)
    );
    let r = t.request("POST", "/api/v2/write?bucket=v2db", &[], b"m v=\"str\" 1\n");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "invalid");
    // 413 over the body limit
    let big = "m v=1 1\n".repeat(10_000);
    let r = t.request("POST", "/write?db=g", &[], big.as_bytes());
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("http.max_body_size"));
    // Missing db
    let r = t.request("POST", "/write", &[], b"m v=1 1\n");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("database is required"));
    // Type conflict names the field and both types; the other lines are stored.
    let r = t.write("g", "gz,host=a v=\"text\" 3\ngz,host=a v=3 4\n");
    assert_eq!(r.status, 400);
    let reason = r.json()["rejected"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("\"v\"") && reason.contains("float") && reason.contains("string"),
        "{reason}"
    );
    assert_eq!(count(&t, "g", "SELECT count(v) FROM gz"), 3);
    // Series limit: only the lines creating new series are refused.
    let r = t.write(
        "lim",
        "s,k=1 v=1 1\ns,k=2 v=1 1\ns,k=3 v=1 1\ns,k=4 v=1 1\ns,k=1 v=2 2\n",
    );
    assert_eq!(r.status, 400);
    let answer = r.json();
    assert_eq!(answer["written"], 4);
    assert_eq!(answer["rejected"][0]["line"], 4);
    assert!(
        answer["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("series limit")
    );
    // Metrics count what happened.
    let metrics = t.request("GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("tally_points_written_total{db=\"g\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("tally_series{db=\"lim\"} 3"), "{metrics}");
    assert!(
        metrics.contains("tally_http_requests_total{route=\"/write\",status=\"413\"} 1"),
        "{metrics}"
    );
    t.stop();
}
