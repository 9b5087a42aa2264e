//! Fuzz targets: each takes arbitrary bytes and must return without panicking, whatever the
//! bytes. They run under libFuzzer (`cargo fuzz`, nightly) and under the stable harness
//! (`fuzz-stable`), and every input that ever failed is kept in `regressions/<target>/` and
//! replayed by this crate's tests.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tally_engine::PointBatch;
use tally_ingest::line_protocol::{self, ParseOptions};

/// The targets, by name.
pub const TARGETS: &[&str] = &[
    "line_protocol",
    "query_parser",
    "chunk",
    "segment",
    "wal",
    "prometheus_text",
];

/// Runs one target on one input. Panics (the fuzzer's signal) only on a bug.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "line_protocol" => line_protocol_target(data),
        "query_parser" => query_parser_target(data),
        "chunk" => tally_engine::fuzzing::chunk(data),
        "segment" => tally_engine::fuzzing::segment(data),
        "wal" => tally_engine::fuzzing::wal(data),
        "prometheus_text" => prometheus_text_target(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

fn line_protocol_target(data: &[u8]) {
    let mut batch = PointBatch::new();
    let mut lines = Vec::new();
    let report = line_protocol::parse_lines(data, &ParseOptions::new(0), &mut batch, &mut lines);
    assert_eq!(batch.len(), lines.len(), "every point has a line number");
    assert_eq!(report.points as usize, batch.len());
    assert!(
        report.points + report.lines_rejected() <= report.lines_total,
        "lines add up"
    );
}

/// Both flavors of the exposition parser, then the mapping to points: no panic, every sample
/// names a family, and no more samples and errors than lines.
fn prometheus_text_target(data: &[u8]) {
    use tally_ingest::prometheus::{self, ConvertOptions, Flavor, ParseOptions};
    for flavor in [Flavor::Text, Flavor::OpenMetrics] {
        let exposition = prometheus::parse(data, &ParseOptions::new(flavor));
        let lines = data.iter().filter(|&&b| b == b'\n').count() + 2;
        assert!(
            exposition.samples.len() + exposition.lines_rejected() as usize <= lines,
            "samples and errors add up to at most the lines"
        );
        for sample in &exposition.samples {
            assert!(
                exposition.family(sample).is_some(),
                "every sample has a family"
            );
        }
        let tags = [("host".to_string(), "fuzz".to_string())];
        let mut batch = PointBatch::new();
        let report = prometheus::to_points(
            &exposition,
            &ConvertOptions {
                default_timestamp_ns: 0,
                tags: &tags,
            },
            &mut batch,
        );
        assert_eq!(report.points as usize, batch.len());
    }
}

fn query_parser_target(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(query) = tally_query::parse_query(&text) {
        // What parses must print as text that parses again.
        let printed: Vec<String> = query.statements.iter().map(|s| s.to_string()).collect();
        for p in printed {
            assert!(
                tally_query::parse_statement(&p).is_ok(),
                "printed statement does not parse: {p}"
            );
        }
        for s in &query.statements {
            let _ = tally_query::validate(s, &text);
        }
    }
    let _ = tally_query::complete(&text, text.len() / 2);
}

/// A small deterministic generator (xorshift) for the stable harness.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// One mutation of `input`: flip, insert, delete, duplicate a range, splice a dictionary word.
pub fn mutate(input: &[u8], rng: &mut Rng, dictionary: &[&[u8]]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(6) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.next_u64() as u8);
            }
            2 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = 1 + rng.below(8.min(out.len() - i));
                out.drain(i..i + n);
            }
            3 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = 1 + rng.below(16.min(out.len() - i));
                let piece = out[i..i + n].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, piece);
            }
            4 if !dictionary.is_empty() => {
                let word = dictionary[rng.below(dictionary.len())];
                let at = rng.below(out.len() + 1);
                out.splice(at..at, word.iter().copied());
            }
            _ if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = [0u8, 0xff, b'\\', b'"', b'\n', b' ', b',', b'='][rng.below(8)];
            }
            _ => out.push(rng.next_u64() as u8),
        }
    }
    if out.len() > 1 << 16 {
        out.truncate(1 << 16);
    }
    out
}

/// Seed inputs and a dictionary for a target.
pub fn seeds(target: &str) -> (Vec<Vec<u8>>, Vec<&'static [u8]>) {
    match target {
        "line_protocol" => (
            vec![
                b"cpu,host=a,region=us\\ west usage=1.5,n=3i,ok=true,s=\"x\\\"y\" 1700000000000000000\n".to_vec(),
                b"# comment\n\nm v=1u\r\nm,t=\\,\\=\\  f=-1e-5\n".to_vec(),
            ],
            vec![b"=", b",", b" ", b"\\", b"\"", b"i", b"u", b"t", b"FALSE", b"1e400", b"\n", b"-9223372036854775808i"],
        ),
        "query_parser" => (
            vec![
                b"SELECT mean(gpu_util_pct) FROM gpu WHERE host = 'node-1' AND time > now() - 6h GROUP BY time(1m), gpu".to_vec(),
                b"SELECT sum(completion_tokens) / (sum(latency_ms) / 1000) AS tps FROM llm GROUP BY time(5m), model FILL(0)".to_vec(),
                b"SHOW TAG VALUES FROM \"cpu\" WITH KEY IN (host, \"region\") WHERE a =~ /x\\/y/ LIMIT 3; EXPLAIN ANALYZE SELECT p99(x) FROM m".to_vec(),
            ],
            vec![b"SELECT", b"FROM", b"WHERE", b"(", b")", b"'", b"\"", b"/", b"::", b"GROUP BY", b"time(", b"1h", b";", b"--", b"/*", b"=~"],
        ),
        "prometheus_text" => (
            vec![
                b"# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\nhttp_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\nmsdos{path=\"C:\\\\DIR\",error=\"x:\\n\\\"y\\\"\"} 1.4e9\n".to_vec(),
                b"# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\n# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum 1\ns_count 1\n".to_vec(),
                b"# TYPE c counter\n# UNIT c seconds\nc_total 4.2e6 1605281325.5 # {trace_id=\"a\"} 0.67\nc_created 1605281325.0\n{\"dotted.name\", \"l.x\"=\"v\"} -Inf\n# EOF\n".to_vec(),
            ],
            vec![b"{", b"}", b"=", b"\"", b"\\", b",", b" ", b"\n", b"# TYPE ", b"# HELP ", b"# EOF", b"_bucket", b"le=\"", b"+Inf", b"NaN", b"_total", b"histogram", b"summary"],
        ),
        "chunk" | "segment" | "wal" => (engine_seeds(target), vec![&[0u8; 8], &[0xffu8; 4], b"TALLYSEG", b"TALLYWAL"]),
        _ => (vec![Vec::new()], Vec::new()),
    }
}

/// Valid engine files to start from: written by a real engine in a temporary directory.
fn engine_seeds(target: &str) -> Vec<Vec<u8>> {
    use std::borrow::Cow;
    use tally_engine::{Engine, EngineOptions, FieldValue, FsyncPolicy};
    let dir = std::env::temp_dir().join(format!("tally-fuzz-seed-{}-{target}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = EngineOptions {
        fsync: FsyncPolicy::Never,
        ..EngineOptions::default()
    };
    let mut out = Vec::new();
    if let Ok(engine) = Engine::open(&dir, options)
        && let Ok(db) = engine.create_database("db")
    {
        let mut batch = PointBatch::new();
        for i in 0..200i64 {
            let _ = batch.push(
                "m",
                [(Cow::Borrowed("host"), Cow::Owned(format!("h{}", i % 3)))],
                [
                    (Cow::Borrowed("f"), FieldValue::Float(i as f64 * 0.25)),
                    (Cow::Borrowed("i"), FieldValue::Integer(i * i)),
                    (
                        Cow::Borrowed("s"),
                        FieldValue::String(format!("s{}", i % 5).into()),
                    ),
                    (Cow::Borrowed("b"), FieldValue::Boolean(i % 2 == 0)),
                ],
                i * 1_000_000_000,
            );
        }
        let _ = db.write(&batch);
        if target != "wal" {
            let _ = db.flush(true);
        }
        drop(db);
        drop(engine);
        let suffix = match target {
            "wal" => ".wal",
            _ => ".tseg",
        };
        collect_files(&dir, suffix, &mut out);
        if target == "chunk" {
            // Chunks start right after the 16-byte segment header.
            out = out
                .iter()
                .filter(|s| s.len() > 16 + 80)
                .map(|s| s[16..].to_vec())
                .collect();
            out.extend(tally_engine::fuzzing::rollup_chunk_seeds());
        }
        if target == "wal" {
            // A clean close cuts WAL files back to their records; a preallocated file a crash
            // left behind ends in zeros instead.
            let preallocated: Vec<Vec<u8>> = out
                .iter()
                .map(|s| {
                    let mut file = s.clone();
                    file.resize(s.len() + 2048, 0);
                    file
                })
                .collect();
            out.extend(preallocated);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    out.retain(|s| s.len() > 16);
    if out.is_empty() {
        out.push(vec![0; 64]);
    }
    out
}

fn collect_files(dir: &std::path::Path, suffix: &str, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, suffix, out);
        } else if p.to_string_lossy().ends_with(suffix)
            && let Ok(bytes) = std::fs::read(&p)
        {
            out.push(bytes);
        }
    }
}

/// Runs `target` on its seeds and `iterations` mutations of them; returns the first input
/// that panicked.
pub fn fuzz(target: &str, iterations: u64, seed: u64) -> Option<Vec<u8>> {
    let (seeds, dictionary) = seeds(target);
    let mut rng = Rng::new(seed);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut found = None;
    for input in &seeds {
        if std::panic::catch_unwind(|| run(target, input)).is_err() {
            found = Some(input.clone());
            break;
        }
    }
    if found.is_none() {
        for _ in 0..iterations {
            let base = &seeds[rng.below(seeds.len())];
            let input = mutate(base, &mut rng, &dictionary);
            if std::panic::catch_unwind(|| run(target, &input)).is_err() {
                found = Some(input);
                break;
            }
        }
    }
    std::panic::set_hook(previous);
    found
}
