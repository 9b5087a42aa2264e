//! The samplers against real sources (recorded `/proc` files, this machine's `/proc`, real
//! processes, real HTTP endpoints) writing into a real engine through `EngineSink`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{ExpositionServer, Reply};
use tally_engine::{
    Engine, EngineOptions, FieldValue, FsyncPolicy, PointBatch, PointRef, TagFilter,
};
use tally_ingest::samplers::{
    EngineSink, HostOptions, HostSampler, ProcessOptions, ProcessSampler, QueryLatency,
    SampleContext, Sampler, SamplerSet, SamplerState, ScrapeSampler, ScrapeTarget, SelfSampler,
    Vitals, VitalsSource,
};

fn context(timestamp_ns: i64) -> SampleContext<'static> {
    SampleContext {
        timestamp_ns,
        host: "node-1",
        interval: Duration::from_secs(10),
    }
}

fn field(point: &PointRef<'_, 'static>, key: &str) -> Option<FieldValue<'static>> {
    point
        .fields()
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone().into_owned())
}

fn tag<'b>(point: &PointRef<'b, 'static>, key: &str) -> Option<&'b str> {
    point
        .tags()
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_ref())
}

fn copy_proc_fixture(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc");
    std::fs::create_dir_all(to.join("net")).unwrap();
    for file in ["meminfo", "vmstat", "diskstats", "net/dev"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
    std::fs::copy(from.join("stat-1"), to.join("stat")).unwrap();
}

#[test]
fn host_sampler_turns_recorded_proc_files_into_telegraf_series() {
    let dir = tempfile::tempdir().unwrap();
    copy_proc_fixture(dir.path());
    let mut options = HostOptions::default();
    options.proc_root = dir.path().to_path_buf();
    options.disks = false;
    let mut sampler = HostSampler::new(options);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc/stat-2"),
        dir.path().join("stat"),
    )
    .unwrap();
    let mut batch = PointBatch::new();
    sampler.sample(&context(5), &mut batch).unwrap();

    let by = |m: &str| {
        batch
            .points()
            .filter(|p| p.measurement() == m)
            .collect::<Vec<_>>()
    };
    let cpus = by("cpu");
    assert_eq!(cpus.len(), 3, "cpu-total and two cores");
    let total = cpus
        .iter()
        .find(|p| tag(p, "cpu") == Some("cpu-total"))
        .unwrap();
    // 1000 ticks: 600 user, 100 system, 250 idle, 50 iowait.
    assert_eq!(field(total, "usage_user"), Some(FieldValue::Float(60.0)));
    assert_eq!(field(total, "usage_system"), Some(FieldValue::Float(10.0)));
    assert_eq!(field(total, "usage_idle"), Some(FieldValue::Float(25.0)));
    assert_eq!(field(total, "usage_iowait"), Some(FieldValue::Float(5.0)));
    assert_eq!(tag(total, "host"), Some("node-1"));
    assert!(cpus.iter().any(|p| tag(p, "cpu") == Some("cpu1")));

    let mem = &by("mem")[0];
    let kib = |v: i64| FieldValue::Integer(v * 1024);
    assert_eq!(field(mem, "total"), Some(kib(24617308)));
    assert_eq!(field(mem, "available"), Some(kib(22820736)));
    assert_eq!(field(mem, "buffered"), Some(kib(214880)));
    // Cached counts reclaimable slab, and used is what neither free, buffers nor cache hold.
    assert_eq!(field(mem, "cached"), Some(kib(3645420 + 170932)));
    assert_eq!(
        field(mem, "used"),
        Some(kib(24617308 - 18915212 - 214880 - 3645420 - 170932))
    );
    let Some(FieldValue::Float(pct)) = field(mem, "available_percent") else {
        panic!("no available_percent")
    };
    assert!((pct - 22820736.0 * 100.0 / 24617308.0).abs() < 1e-9);

    let swap = &by("swap")[0];
    assert_eq!(field(swap, "used"), Some(kib(2097148 - 1572860)));
    assert_eq!(field(swap, "in"), Some(FieldValue::Integer(1500 * 4096)));
    assert_eq!(field(swap, "out"), Some(FieldValue::Integer(4250 * 4096)));

    let diskio = by("diskio");
    assert_eq!(diskio.len(), 2, "devices that never did I/O are left out");
    let vda = diskio
        .iter()
        .find(|p| tag(p, "name") == Some("vda"))
        .unwrap();
    assert_eq!(field(vda, "reads"), Some(FieldValue::Integer(91340)));
    assert_eq!(
        field(vda, "write_bytes"),
        Some(FieldValue::Integer(18742808 * 512))
    );
    assert_eq!(field(vda, "io_time"), Some(FieldValue::Integer(379456)));

    let net = by("net");
    assert_eq!(net.len(), 1, "loopback is skipped");
    assert_eq!(tag(&net[0], "interface"), Some("eth0"));
    assert_eq!(
        field(&net[0], "bytes_recv"),
        Some(FieldValue::Integer(429951999))
    );
    assert_eq!(field(&net[0], "drop_out"), Some(FieldValue::Integer(3)));

    let system = &by("system")[0];
    assert_eq!(field(system, "n_cpus"), Some(FieldValue::Integer(2)));
    assert!(matches!(field(system, "load1"), Some(FieldValue::Float(_))));
}

#[test]
fn host_sampler_reports_a_broken_file_and_still_writes_the_other_series() {
    let dir = tempfile::tempdir().unwrap();
    copy_proc_fixture(dir.path());
    std::fs::write(dir.path().join("diskstats"), "   8 0 sda 1 2 x\n").unwrap();
    std::fs::remove_file(dir.path().join("net/dev")).unwrap();
    let mut options = HostOptions::default();
    options.proc_root = dir.path().to_path_buf();
    options.disks = false;
    let mut sampler = HostSampler::new(options);
    let mut batch = PointBatch::new();
    let err = sampler
        .sample(&context(5), &mut batch)
        .unwrap_err()
        .to_string();
    assert!(err.contains("diskstats") && err.contains("line 1"), "{err}");
    assert!(err.contains("net/dev"), "{err}");
    assert!(batch.points().any(|p| p.measurement() == "mem"));
    assert!(batch.points().any(|p| p.measurement() == "swap"));
}

#[test]
fn host_sampler_on_this_machine_writes_every_measurement() {
    let mut sampler = HostSampler::new(HostOptions::default());
    std::thread::sleep(Duration::from_millis(50));
    let mut batch = PointBatch::new();
    sampler.sample(&context(5), &mut batch).unwrap();
    for m in ["cpu", "mem", "swap", "system", "diskio"] {
        assert!(batch.points().any(|p| p.measurement() == m), "no {m}");
    }
}

/// A copy of `sleep` named like an inference server, so that the default patterns match it.
struct FakeServer {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl FakeServer {
    fn start(name: &str) -> FakeServer {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join(name);
        // Copied by `cp`, not by this process: a file this process held open for writing could
        // be inherited by a child that another test thread forks at that moment, and executing
        // it would then fail with "text file busy".
        let copied = std::process::Command::new("cp")
            .arg("/bin/sleep")
            .arg(&program)
            .status()
            .unwrap();
        assert!(copied.success(), "cp /bin/sleep failed");
        let child = std::process::Command::new(&program)
            .arg("60")
            .spawn()
            .unwrap();
        FakeServer { child, _dir: dir }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn process_sampler_finds_inference_servers_by_default_pattern() {
    let server = FakeServer::start("llama-server");
    let mut sampler = ProcessSampler::new(ProcessOptions::default()).unwrap();
    let mut batch = PointBatch::new();
    sampler.sample(&context(5), &mut batch).unwrap();
    let pid = server.child.id().to_string();
    let point = batch
        .points()
        .find(|p| tag(p, "pid") == Some(pid.as_str()))
        .expect("the llama-server process is sampled");
    assert_eq!(point.measurement(), "procstat");
    assert_eq!(tag(&point, "process_name"), Some("llama-server"));
    assert_eq!(tag(&point, "pattern"), Some("llama-server"));
    assert!(matches!(field(&point, "memory_rss"), Some(FieldValue::Integer(n)) if n > 0));
    assert!(matches!(
        field(&point, "num_threads"),
        Some(FieldValue::Integer(1))
    ));
    assert!(matches!(field(&point, "num_fds"), Some(FieldValue::Integer(n)) if n >= 1));
    assert!(matches!(
        field(&point, "cpu_usage"),
        Some(FieldValue::Float(_))
    ));
}

/// A database needs its file descriptors: sysinfo would keep one `/proc/<pid>/stat` open per
/// process on the machine, and the sampler tells it not to.
#[test]
fn process_sampling_keeps_no_proc_files_open() {
    let mut sampler = ProcessSampler::new(ProcessOptions::default()).unwrap();
    sampler.sample(&context(5), &mut PointBatch::new()).unwrap();
    let held: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.starts_with("/proc/") && target.ends_with("/stat"))
        .collect();
    assert!(held.is_empty(), "open /proc stat files: {held:?}");
}

struct EngineVitals(Arc<Engine>);

impl VitalsSource for EngineVitals {
    fn vitals(&self) -> Vitals {
        let mut points = 0;
        let mut series = 0;
        for name in self.0.database_names() {
            if let Some(db) = self.0.database(&name) {
                let stats = db.stats();
                points += stats.points_written;
                series += stats.series;
            }
        }
        Vitals::new(
            points,
            0,
            series,
            0,
            0,
            0,
            3,
            0,
            Some(QueryLatency {
                count: 3,
                p50_ms: 1.0,
                p99_ms: 2.0,
                max_ms: 2.5,
            }),
        )
    }
}

fn open_engine(dir: &Path) -> Arc<Engine> {
    let options = EngineOptions {
        fsync: FsyncPolicy::Never,
        ..EngineOptions::default()
    };
    Arc::new(Engine::open(dir, options).unwrap())
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_sampler_set_writes_host_process_and_self_series_into_the_database() {
    let _server = FakeServer::start("llama-server");
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path());
    let sink = Arc::new(EngineSink::new(engine.clone(), "telemetry"));
    let mut set = SamplerSet::new(sink, "node-1");
    let interval = Duration::from_millis(200);
    set.spawn(
        "host",
        interval,
        Box::new(HostSampler::new(HostOptions::default())),
    )
    .unwrap();
    set.spawn(
        "process",
        interval,
        Box::new(ProcessSampler::new(ProcessOptions::default()).unwrap()),
    )
    .unwrap();
    set.spawn(
        "self",
        interval,
        Box::new(SelfSampler::new(Arc::new(EngineVitals(engine.clone())))),
    )
    .unwrap();
    let statuses = set.statuses();
    wait_for("two runs of every sampler", || {
        statuses.snapshot().iter().all(|s| s.runs >= 2)
    });
    let db = engine.database("telemetry").unwrap();
    let measurements = db.measurements();
    for m in ["cpu", "mem", "swap", "system", "procstat", "tally"] {
        assert!(
            measurements.iter().any(|x| x == m),
            "no {m} in {measurements:?}"
        );
    }
    assert_eq!(db.tag_values("cpu", "host", &TagFilter::All), ["node-1"]);
    let tally_fields: Vec<String> = db.field_keys("tally").into_iter().map(|(k, _)| k).collect();
    for f in [
        "points_written",
        "memory_rss",
        "cpu_usage",
        "query_latency_ms_p99",
    ] {
        assert!(
            tally_fields.iter().any(|x| x == f),
            "no tally.{f} in {tally_fields:?}"
        );
    }
    for status in statuses.snapshot() {
        assert_eq!(status.state, SamplerState::Ok, "{status:?}");
        assert!(status.points_written > 0, "{status:?}");
        assert!(status.last_duration.is_some() && status.last_run_ns.is_some());
        assert_eq!(
            status.last_run_ns.unwrap() % interval.as_nanos() as i64,
            0,
            "ticks are aligned"
        );
    }
    set.stop(Duration::from_secs(10));
    let runs: Vec<u64> = statuses.snapshot().iter().map(|s| s.runs).collect();
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<u64> = statuses.snapshot().iter().map(|s| s.runs).collect();
    assert_eq!(runs, after, "no run after stop");
}

#[test]
fn a_failing_or_slow_sampler_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path());
    let sink = Arc::new(EngineSink::new(engine.clone(), "telemetry"));
    let mut set = SamplerSet::new(sink, "node-1");
    let interval = Duration::from_millis(200);
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let failing = ScrapeTarget::new(format!("http://127.0.0.1:{closed_port}/metrics"));
    let slow_server = ExpositionServer::start(vec![Reply {
        delay: Duration::from_secs(3),
        ..Reply::text(b"slow_metric 1\n".to_vec())
    }]);
    let slow = ScrapeTarget::new(slow_server.url()).with_timeout(Duration::from_secs(10));
    let healthy_server = ExpositionServer::start(vec![Reply::text(b"healthy_metric 1\n".to_vec())]);
    let healthy = ScrapeTarget::new(healthy_server.url());
    set.spawn(
        "failing",
        interval,
        Box::new(ScrapeSampler::new(failing).unwrap()),
    )
    .unwrap();
    set.spawn(
        "slow",
        interval,
        Box::new(ScrapeSampler::new(slow).unwrap()),
    )
    .unwrap();
    set.spawn(
        "healthy",
        interval,
        Box::new(ScrapeSampler::new(healthy).unwrap()),
    )
    .unwrap();
    set.spawn(
        "host",
        interval,
        Box::new(HostSampler::new(HostOptions::default())),
    )
    .unwrap();
    let statuses = set.statuses();
    let get = |name: &str| {
        statuses
            .snapshot()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap()
    };
    wait_for("five healthy runs", || {
        get("healthy").runs >= 5 && get("host").runs >= 5 && get("failing").runs >= 5
    });
    let slow_status = get("slow");
    assert!(
        slow_status.runs <= 1,
        "the slow scrape is still in its first run: {slow_status:?}"
    );
    let failing_status = get("failing");
    assert_eq!(failing_status.state, SamplerState::Failing);
    assert_eq!(failing_status.failures, failing_status.runs);
    assert!(
        failing_status
            .last_error
            .as_deref()
            .unwrap()
            .contains(&closed_port.to_string())
    );
    assert_eq!(get("healthy").state, SamplerState::Ok);
    let db = engine.database("telemetry").unwrap();
    assert!(!db.series("healthy_metric", &TagFilter::All).is_empty());
    // The failed scrapes still record up = 0.
    assert!(db.measurements().iter().any(|m| m == "scrape"));
    set.stop(Duration::from_secs(10));
}

#[test]
fn disabled_samplers_are_listed_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path());
    let mut set = SamplerSet::new(Arc::new(EngineSink::new(engine, "telemetry")), "node-1");
    set.add_disabled("gpu", Duration::from_secs(10), "no NVIDIA driver");
    let statuses = set.statuses().snapshot();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].state, SamplerState::Disabled);
    assert_eq!(
        statuses[0].disabled_reason.as_deref(),
        Some("no NVIDIA driver")
    );
    assert_eq!(statuses[0].runs, 0);
}
