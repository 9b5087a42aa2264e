//! End to end: the built-in samplers of a real tallyd. With the default configuration on this
//! machine (no NVIDIA driver) it stores host, process and self series and reports the GPU
//! sampler disabled; scraping a real `prometheus-node-exporter` and a real `prometheus` stores
//! the values those endpoints served.
//!
//! Needs the Debian packages `prometheus` and `prometheus-node-exporter` (`.ci/run` installs
//! them); the tests fail, naming the package, when they are missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tally_tests::{Tallyd, free_port, request, rows};

/// A child process killed when dropped.
struct Peer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require(program: &str, package: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(program);
    assert!(
        path.exists(),
        "{} is missing: install the Debian package `{package}` (apt-get install -y {package}); .ci/run does",
        path.display()
    );
    path
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let r = request(port, "GET", path, &[], b"").ok()?;
    (r.status == 200).then(|| r.text())
}

/// A copy of `sleep` named like an inference server, so that the default patterns match it.
fn fake_inference_server(name: &str) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join(name);
    // Copied by `cp`, not by this process: a file this process held open for writing could be
    // inherited by a child that another test thread forks at that moment, and executing it
    // would then fail with "text file busy".
    let copied = Command::new("cp")
        .arg("/bin/sleep")
        .arg(&program)
        .status()
        .unwrap();
    assert!(copied.success(), "cp /bin/sleep failed");
    let child = Command::new(&program).arg("600").spawn().unwrap();
    Peer {
        child,
        port: 0,
        _dir: dir,
    }
}

fn node_exporter() -> Peer {
    let program = require("prometheus-node-exporter", "prometheus-node-exporter");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(program)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("node_exporter.log")).unwrap())
        .spawn()
        .unwrap();
    wait_until("node_exporter to answer", Duration::from_secs(30), || {
        get(port, "/metrics").is_some()
    });
    Peer {
        child,
        port,
        _dir: dir,
    }
}

fn prometheus() -> Peer {
    let program = require("prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        "global:\n  scrape_interval: 1h\nscrape_configs: []\n",
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(program)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    wait_until("prometheus to be ready", Duration::from_secs(60), || {
        get(port, "/-/ready").is_some()
    });
    Peer {
        child,
        port,
        _dir: dir,
    }
}

/// The value of the first sample line that starts with `selector` followed by a blank.
fn served(body: &str, selector: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(selector).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{selector} not served"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// The only value of the first row of a one-value query, if any.
fn value(t: &Tallyd, q: &str) -> Option<serde_json::Value> {
    rows(&t.query("telemetry", q))
        .first()
        .and_then(|r| r.get(1))
        .cloned()
}

fn measurements(t: &Tallyd) -> Vec<String> {
    rows(&t.query("telemetry", "SHOW MEASUREMENTS"))
        .iter()
        .filter_map(|r| r.first().and_then(|v| v.as_str()).map(str::to_string))
        .collect()
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[test]
fn default_samplers_store_host_process_and_self_series_within_two_intervals_and_report_gpu_disabled()
 {
    let server = fake_inference_server("llama-server");
    let interval_ns: i64 = 2_000_000_000;
    let started = now_ns();
    // The default configuration, with a 2 s interval so that the test runs fast.
    let t = Tallyd::start(&["--samplers-interval", "2s"]);
    let expected = [
        "cpu", "mem", "swap", "system", "net", "diskio", "procstat", "tally",
    ];
    wait_until("every default series", Duration::from_secs(60), || {
        let m = measurements(&t);
        expected.iter().all(|e| m.iter().any(|x| x == e))
    });
    for m in expected {
        let first = rows(&t.query("telemetry", &format!("SELECT * FROM {m} LIMIT 1")));
        let time = first[0][0].as_i64().unwrap();
        // Two intervals after tallyd started, plus a second for starting the process on a
        // loaded machine: the first tick comes at most one interval after the samplers start.
        assert!(
            time <= started + 2 * interval_ns + 1_000_000_000,
            "{m}: first point at {time}, more than two intervals after the start at {started}"
        );
    }
    let pid = server.child.id();
    let procstat = rows(&t.query(
        "telemetry",
        &format!("SELECT last(memory_rss) FROM procstat WHERE pid = '{pid}' AND process_name = 'llama-server'"),
    ));
    assert!(procstat[0][1].as_i64().unwrap() > 0, "{procstat:?}");
    assert!(
        value(
            &t,
            "SELECT last(usage_idle) FROM cpu WHERE cpu = 'cpu-total'"
        )
        .is_some()
    );
    assert!(
        value(&t, "SELECT last(memory_rss) FROM tally")
            .unwrap()
            .as_i64()
            .unwrap()
            > 0
    );
    let hosts = rows(&t.query("telemetry", "SHOW TAG VALUES FROM mem WITH KEY = host"));
    assert_eq!(hosts.len(), 1, "{hosts:?}");

    let health = t.request("GET", "/health", &[], b"").json();
    assert_eq!(health["status"], "pass");
    let samplers = health["samplers"].as_array().unwrap();
    let by_name = |n: &str| {
        samplers
            .iter()
            .find(|s| s["name"] == n)
            .unwrap_or_else(|| panic!("no {n}: {health}"))
    };
    let gpu = by_name("gpu");
    assert_eq!(gpu["state"], "disabled", "{gpu}");
    assert!(
        gpu["reason"]
            .as_str()
            .unwrap()
            .contains("libnvidia-ml.so.1"),
        "{gpu}"
    );
    for name in ["host", "process", "self"] {
        let s = by_name(name);
        assert_eq!(s["state"], "ok", "{s}");
        assert!(s["runs"].as_u64().unwrap() >= 1, "{s}");
        assert!(s["last_duration_ms"].as_f64().is_some(), "{s}");
        assert!(s["last_error"].is_null(), "{s}");
    }
    assert!(
        health["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "sampler:gpu")
    );

    let metrics = t.request("GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("tally_sampler_enabled{sampler=\"gpu\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tally_sampler_enabled{sampler=\"host\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tally_sampler_runs_total{sampler=\"self\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tally_points_written_total"),
        "the server's own metrics are kept"
    );

    let log = t.log_text();
    let gpu_lines = log.lines().filter(|l| l.contains("libnvidia-ml")).count();
    assert_eq!(
        gpu_lines, 1,
        "one clear log line about the missing driver:\n{log}"
    );
    t.stop();
}

#[test]
fn scraping_a_real_node_exporter_stores_what_it_served() {
    let exporter = node_exporter();
    let target = format!(
        "http://127.0.0.1:{}/metrics,preset=node_exporter,interval=1s,tag.host=exporter-host",
        exporter.port
    );
    let t = Tallyd::start(&[
        "--samplers-host-enabled",
        "false",
        "--samplers-process-enabled",
        "false",
        "--samplers-gpu-enabled",
        "false",
        "--samplers-self-enabled",
        "false",
        "--scrape-target",
        &target,
    ]);
    let before_body = get(exporter.port, "/metrics").unwrap();
    let idle = "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}";
    let before = served(&before_body, idle);
    let before_ns = now_ns();
    let q = format!(
        "SELECT last(counter) FROM node_cpu_seconds_total WHERE cpu = '0' AND mode = 'idle' AND time > {before_ns}"
    );
    wait_until(
        "a scrape after the test's own",
        Duration::from_secs(60),
        || value(&t, &q).is_some(),
    );
    let after = served(&get(exporter.port, "/metrics").unwrap(), idle);
    let stored = value(&t, &q).unwrap().as_f64().unwrap();
    assert!(
        before <= stored && stored <= after,
        "{before} <= {stored} <= {after}"
    );

    // Values that do not change between scrapes are stored exactly.
    let mem_total = served(&before_body, "node_memory_MemTotal_bytes");
    let stored = value(&t, "SELECT last(gauge) FROM node_memory_MemTotal_bytes").unwrap();
    assert_eq!(stored.as_f64().unwrap(), mem_total);
    let boot = served(&before_body, "node_boot_time_seconds");
    assert_eq!(
        value(&t, "SELECT last(gauge) FROM node_boot_time_seconds")
            .unwrap()
            .as_f64()
            .unwrap(),
        boot
    );
    // The preset's host series carry the same numbers under Telegraf's names.
    let derived = value(
        &t,
        "SELECT last(total) FROM mem WHERE host = 'exporter-host'",
    )
    .unwrap();
    assert_eq!(derived.as_i64().unwrap() as f64, mem_total);
    let up = value(
        &t,
        "SELECT last(up) FROM scrape WHERE preset = 'node_exporter'",
    )
    .unwrap();
    assert_eq!(up.as_i64(), Some(1));
    let health = t.request("GET", "/health", &[], b"").json();
    let name = format!("scrape:http://127.0.0.1:{}/metrics", exporter.port);
    let status = health["samplers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name.as_str())
        .unwrap();
    assert_eq!(status["state"], "ok", "{status}");
    t.stop();
}

#[test]
fn scraping_a_real_prometheus_stores_its_counters_and_histograms() {
    let prom = prometheus();
    let target = format!("http://127.0.0.1:{}/metrics,interval=1s", prom.port);
    let t = Tallyd::start(&[
        "--samplers-host-enabled",
        "false",
        "--samplers-process-enabled",
        "false",
        "--samplers-gpu-enabled",
        "false",
        "--samplers-self-enabled",
        "false",
        "--scrape-target",
        &target,
    ]);
    let counter = "prometheus_http_requests_total{code=\"200\",handler=\"/metrics\"}";
    let bucket = "prometheus_http_request_duration_seconds_count{handler=\"/metrics\"}";
    // Prometheus counts a handler's requests from the first one on: make one.
    get(prom.port, "/metrics").unwrap();
    let body = get(prom.port, "/metrics").unwrap();
    let before = (served(&body, counter), served(&body, bucket));
    let before_ns = now_ns();
    let counter_q = format!(
        "SELECT last(counter) FROM prometheus_http_requests_total WHERE handler = '/metrics' AND code = '200' AND time > {before_ns}"
    );
    let histogram_q = format!(
        "SELECT last(\"+Inf\") FROM prometheus_http_request_duration_seconds WHERE handler = '/metrics' AND time > {before_ns}"
    );
    wait_until(
        "a scrape after the test's own",
        Duration::from_secs(60),
        || value(&t, &counter_q).is_some() && value(&t, &histogram_q).is_some(),
    );
    let body = get(prom.port, "/metrics").unwrap();
    let after = (served(&body, counter), served(&body, bucket));
    let stored_counter = value(&t, &counter_q).unwrap().as_f64().unwrap();
    assert!(
        before.0 <= stored_counter && stored_counter <= after.0,
        "{before:?} {stored_counter} {after:?}"
    );
    let stored_inf = value(&t, &histogram_q).unwrap().as_f64().unwrap();
    assert!(
        before.1 <= stored_inf && stored_inf <= after.1,
        "{before:?} {stored_inf} {after:?}"
    );
    // The +Inf bucket and the count of one histogram series are the same number.
    let count_q = histogram_q.replace("last(\"+Inf\")", "last(count)");
    let stored_count = value(&t, &count_q).unwrap().as_f64().unwrap();
    assert_eq!(stored_inf, stored_count);
    let version = rows(&t.query(
        "telemetry",
        "SHOW TAG VALUES FROM prometheus_build_info WITH KEY = version",
    ));
    let served_version = body
        .lines()
        .find(|l| l.starts_with("prometheus_build_info{"))
        .and_then(|l| l.split(",version=\"").nth(1))
        .and_then(|r| r.split('"').next())
        .unwrap();
    assert_eq!(version[0][1], served_version, "{version:?}");
    t.stop();
}
