//! Alert rule evaluation cost: 1,000 rules over the side-by-side benchmark's dataset
//! (`../shared/bench/gen.py --scale small`: 8 hosts, 64 GPUs, LLM requests over one day),
//! evaluated every 10 s, and the latency from a condition becoming true to a webhook receiving
//! the notification.
//!
//! The evaluator runs on a hand-moved clock, 10 s per round, so a round costs exactly what one
//! real round costs without waiting for the wall clock; CPU is the process's user + system time
//! (`/proc/self/stat`, every thread, in clock ticks of 10 ms) over the measured rounds, and the
//! share of a core is that time over the rounds' simulated 10 s each.
//!
//! Run: `cargo bench -p tally-benches --bench alert_rules` (needs `tally-server` as a
//! dev-dependency of this crate). Prints one line per measurement.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tally_engine::{Engine, EngineOptions, PointBatch};
use tally_ingest::line_protocol::{self, ParseOptions};
use tally_query::QueryLimits;
use tally_server::alerts::{
    AlertMetrics, Alerts, AlertsConfig, AlertsOptions, Clock, ReceiverConfig,
};
use tally_server::units::HumanDuration;

const S: i64 = 1_000_000_000;
/// 2026-11-30T12:00:00Z, the middle of the dataset's day.
const START: i64 = 1_796_040_000 * S;
const ROUNDS: u32 = 30;
const INTERVAL_S: i64 = 10;

struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now_ns(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Process CPU time (user + system, all threads) in seconds.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields[11].parse().expect("utime");
    let stime: f64 = fields[12].parse().expect("stime");
    // Linux reports in USER_HZ ticks, 100 per second on every common configuration.
    (utime + stime) / 100.0
}

fn load_dataset(engine: &Engine) -> usize {
    let lp = tally_benches::line_protocol("small").expect("gen.py");
    let text = std::str::from_utf8(&lp).expect("gen.py writes UTF-8");
    let db = engine.create_database("bench").expect("create database");
    let lines: Vec<&str> = text.lines().collect();
    for chunk in lines.chunks(5000) {
        let body = chunk.join("\n");
        let mut batch = PointBatch::new();
        let mut point_lines = Vec::new();
        let report = line_protocol::parse_lines(
            body.as_bytes(),
            &ParseOptions::new(0),
            &mut batch,
            &mut point_lines,
        );
        assert!(report.errors.is_empty(), "{:?}", report.errors.first());
        db.write(&batch).expect("write");
    }
    lines.len()
}

/// The kinds of rules an operator writes over this dataset; each query is shared by many rules
/// with different thresholds, as when every team sets its own.
const QUERIES: &[(&str, &str, &str)] = &[
    (
        "SELECT max(temp_c) FROM gpu WHERE time > now() - 1m AND time <= now() GROUP BY host, gpu",
        "last",
        "> ",
    ),
    (
        "SELECT mean(util_pct) FROM gpu WHERE time > now() - 5m AND time <= now() GROUP BY host",
        "last",
        "< ",
    ),
    (
        "SELECT max(power_w) FROM gpu WHERE time > now() - 5m AND time <= now() GROUP BY host, gpu",
        "last",
        "> ",
    ),
    (
        "SELECT max(mem_used_mib) FROM gpu WHERE time > now() - 5m AND time <= now() GROUP BY host",
        "last",
        "> ",
    ),
    (
        "SELECT mean(cpu_pct) FROM hw WHERE time > now() - 5m AND time <= now() GROUP BY host",
        "last",
        "> ",
    ),
    (
        "SELECT mean(load1) FROM hw WHERE time > now() - 5m AND time <= now() GROUP BY host",
        "last",
        "> ",
    ),
    (
        "SELECT last(cpu_pct) FROM hw WHERE time > now() - 1h AND time <= now() GROUP BY host",
        "age",
        "> ",
    ),
    (
        "SELECT p95(latency_ms) FROM llm WHERE time > now() - 15m AND time <= now() GROUP BY model",
        "last",
        "> ",
    ),
    (
        "SELECT sum(cost_usd) FROM llm WHERE time > now() - 1h AND time <= now() GROUP BY provider",
        "last",
        "> ",
    ),
    (
        "SELECT count(latency_ms) FROM llm WHERE status != 'ok' AND time > now() - 10m AND time <= now() GROUP BY provider",
        "last",
        "> ",
    ),
    (
        "SELECT anomaly(p95(latency_ms), 30) FROM llm WHERE time > now() - 4h GROUP BY time(5m), model",
        "last",
        "> ",
    ),
    (
        "SELECT forecast(max(temp_c), 1h, 'linear') FROM gpu WHERE time > now() - 6h GROUP BY time(10m), host",
        "max",
        "> ",
    ),
];

fn rules_file(n_rules: usize) -> String {
    let mut out = String::new();
    for i in 0..n_rules {
        let (query, value, comparison) = QUERIES[i % QUERIES.len()];
        let threshold = 10 + (i / QUERIES.len()) * 3;
        out.push_str(&format!(
            "[[rule]]\nname = \"rule_{i:04}\"\ndatabase = \"bench\"\nquery = {query:?}\nvalue = \"{value}\"\n\
             condition = \"{comparison}{threshold}\"\ninterval = \"{INTERVAL_S}s\"\nfor = \"30s\"\nreceivers = []\n\
             [rule.annotations]\nsummary = \"{{{{ $value }}}} over {threshold}\"\n\n"
        ));
    }
    out.push_str(&format!(
        "[[rule]]\nname = \"latency_probe\"\ndatabase = \"bench\"\n\
         query = \"SELECT last(v) FROM probe WHERE time > now() - 1m AND time <= now()\"\n\
         condition = \"> 0\"\ninterval = \"{INTERVAL_S}s\"\nreceivers = [\"hook\"]\n"
    ));
    out
}

/// A webhook receiver: the arrival instant of every POST goes to the channel.
fn webhook() -> (u16, mpsc::Receiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = tx.send(Instant::now());
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, rx)
}

fn main() {
    let n_rules: usize = std::env::var("TALLY_BENCH_RULES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path().join("data"), EngineOptions::default()).unwrap());
    let loaded = Instant::now();
    let lines = load_dataset(&engine);
    eprintln!(
        "loaded {lines} lines of gen.py --scale small in {:?}",
        loaded.elapsed()
    );

    let rules_path = dir.path().join("rules.toml");
    std::fs::write(&rules_path, rules_file(n_rules)).unwrap();
    let (port, arrivals) = webhook();
    let clock = Arc::new(ManualClock(AtomicI64::new(START)));
    let config = AlertsConfig {
        rules_file: Some(rules_path),
        default_database: "bench".into(),
        notify_backoff: HumanDuration(Duration::from_millis(100)),
        receivers: vec![ReceiverConfig {
            name: "hook".into(),
            kind: "webhook".into(),
            url: Some(format!("http://127.0.0.1:{port}/hook")),
            to: Vec::new(),
            headers: Default::default(),
            send_resolved: Some(false),
        }],
        ..AlertsConfig::default()
    };
    let alerts = Alerts::start(
        engine.clone(),
        AlertsOptions {
            config,
            smtp: None,
            data_dir: dir.path().join("data"),
            external_url: "http://127.0.0.1:8086".into(),
            limits: QueryLimits::default(),
            clock: clock.clone(),
            metrics: Arc::new(AlertMetrics::default()),
            background: false,
        },
    )
    .unwrap();

    // Warm-up: the first round fills caches and creates `_alerts`.
    alerts.evaluate_due();
    let rules = alerts.catalog().rules();
    let health = rules
        .columns
        .iter()
        .position(|c| c == "health")
        .expect("health column");
    let healthy = rules
        .rows
        .iter()
        .filter(|r| r[health] == tally_query::Value::String("ok".into()))
        .count();
    assert_eq!(
        healthy,
        rules.rows.len(),
        "every rule evaluates without error"
    );
    let cpu_before = process_cpu_seconds();
    let wall_before = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..ROUNDS {
        clock.0.fetch_add(INTERVAL_S * S, Ordering::SeqCst);
        let round = Instant::now();
        alerts.evaluate_due();
        slowest = slowest.max(round.elapsed());
    }
    let cpu = process_cpu_seconds() - cpu_before;
    let wall = wall_before.elapsed();
    let simulated = (ROUNDS as i64 * INTERVAL_S) as f64;
    println!(
        "alert_rules: {n_rules} rules every {INTERVAL_S}s over gen.py small: {:.2} % of a core \
         ({cpu:.2} s CPU over {ROUNDS} rounds = {simulated} s of evaluation time); \
         round wall time mean {:.1} ms, slowest {:.1} ms",
        cpu / simulated * 100.0,
        wall.as_secs_f64() * 1000.0 / f64::from(ROUNDS),
        slowest.as_secs_f64() * 1000.0,
    );

    // Notification latency: the probe's condition becomes true, the next evaluation sees it.
    let mut latencies = Vec::new();
    for i in 0..5 {
        clock.0.fetch_add(INTERVAL_S * S, Ordering::SeqCst);
        let now = clock.0.load(Ordering::SeqCst);
        let db = engine.database("bench").unwrap();
        let value = if i % 2 == 0 { 1 } else { -1 };
        let line = format!("probe v={value} {now}");
        let mut batch = PointBatch::new();
        let mut point_lines = Vec::new();
        let report = line_protocol::parse_lines(
            line.as_bytes(),
            &ParseOptions::new(now),
            &mut batch,
            &mut point_lines,
        );
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        db.write(&batch).unwrap();
        let start = Instant::now();
        alerts.evaluate_due();
        if value > 0 {
            let arrived = arrivals
                .recv_timeout(Duration::from_secs(10))
                .expect("webhook notification");
            latencies.push(arrived.duration_since(start));
        }
    }
    latencies.sort();
    println!(
        "alert_rules: condition seen by an evaluation -> webhook receipt: median {:.2} ms, max {:.2} ms \
         over {} notifications (add up to one interval, {INTERVAL_S}s, until the next evaluation)",
        latencies[latencies.len() / 2].as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0,
        latencies.len()
    );
    alerts.stop();
    engine.close().unwrap();
}
