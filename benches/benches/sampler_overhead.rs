//! What the default samplers cost: CPU (percent of one core) and memory (resident set growth)
//! of `host`, `process`, `gpu` and `self` running together at their default 10 s interval,
//! writing into a real engine, measured over several minutes.
//!
//! Run from the repository root (5 minutes by default):
//!
//!     cargo bench -p tally-benches --bench sampler_overhead
//!     TALLY_OVERHEAD_SECONDS=600 TALLY_OVERHEAD_INTERVAL=10s cargo bench -p tally-benches --bench sampler_overhead
//!
//! How it measures: the process's CPU time is `utime + stime` of `/proc/self/stat` (clock ticks
//! of 1/100 s, Linux's USER_HZ), read after the samplers are set up and again at the end; each
//! sampler thread's share comes from `/proc/self/task/<tid>/stat`. Memory is `VmRSS` of
//! `/proc/self/status` before the samplers are created, after their setup and at the end; the
//! difference is what the samplers (and the points they wrote into the engine's head) added. The engine's own background thread is
//! included in the process figure. Where no NVIDIA driver is installed the GPU sampler is
//! disabled, as in tallyd, and costs nothing.

#![allow(
    clippy::expect_used,
    reason = "setup failures end the bench with the reason"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tally_engine::{Engine, EngineOptions, FsyncPolicy};
use tally_ingest::samplers::{
    EngineSink, GpuOptions, GpuSampler, HostOptions, HostSampler, ProcessOptions, ProcessSampler,
    SamplerSet, SelfSampler, Vitals, VitalsSource,
};

/// Linux reports `/proc` CPU times in these units (USER_HZ), whatever the kernel's HZ.
const TICKS_PER_SECOND: f64 = 100.0;

fn cpu_ticks(stat: &str) -> Option<u64> {
    // Fields after the command name, which is in parentheses and may hold blanks.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn process_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| cpu_ticks(&s))
        .unwrap_or(0)
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_ascii_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// CPU ticks of each thread whose name starts with `sampler-`.
fn sampler_thread_ticks() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let name = name.trim().to_string();
        if !name.starts_with("sampler-") {
            continue;
        }
        if let Some(ticks) = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|s| cpu_ticks(&s))
        {
            out.push((name, ticks));
        }
    }
    out.sort();
    out
}

struct EngineVitals(Arc<Engine>);

impl VitalsSource for EngineVitals {
    fn vitals(&self) -> Vitals {
        let (mut points, mut series) = (0, 0);
        for name in self.0.database_names() {
            if let Some(db) = self.0.database(&name) {
                let stats = db.stats();
                points += stats.points_written;
                series += stats.series;
            }
        }
        Vitals::new(points, 0, series, 0, 0, 0, 0, 0, None)
    }
}

fn parse_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(s) = text.strip_suffix("ms") {
        return s.parse::<u64>().ok().map(|ms| ms / 1000);
    }
    let (number, factor) = match text.chars().last()? {
        's' => (&text[..text.len() - 1], 1),
        'm' => (&text[..text.len() - 1], 60),
        'h' => (&text[..text.len() - 1], 3600),
        _ => (text, 1),
    };
    number.parse::<u64>().ok().map(|n| n * factor)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that is not this bench's name skips it.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"sampler_overhead".contains(&a))
    {
        return;
    }
    let seconds = std::env::var("TALLY_OVERHEAD_SECONDS")
        .ok()
        .and_then(|s| parse_seconds(&s))
        .unwrap_or(300);
    let interval = Duration::from_secs(
        std::env::var("TALLY_OVERHEAD_INTERVAL")
            .ok()
            .and_then(|s| parse_seconds(&s))
            .unwrap_or(10)
            .max(1),
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let engine = Arc::new(
        Engine::open(
            dir.path(),
            EngineOptions {
                fsync: FsyncPolicy::Never,
                ..EngineOptions::default()
            },
        )
        .expect("engine"),
    );
    let rss_before_samplers = rss_bytes();
    let sink = Arc::new(EngineSink::new(engine.clone(), "telemetry"));
    let mut set = SamplerSet::new(sink, "bench-host");
    let gpu = match GpuSampler::open(&GpuOptions::default()) {
        Ok(gpu) => {
            let memory = gpu.process_memory();
            set.spawn("gpu", interval, Box::new(gpu)).expect("thread");
            Some(memory)
        }
        Err(e) => {
            eprintln!("gpu sampler disabled: {e}");
            None
        }
    };
    let process = ProcessSampler::new(ProcessOptions::default()).expect("default patterns");
    let process = match gpu {
        Some(memory) => process.with_gpu_memory(memory),
        None => process,
    };
    set.spawn(
        "host",
        interval,
        Box::new(HostSampler::new(HostOptions::default())),
    )
    .expect("thread");
    set.spawn("process", interval, Box::new(process))
        .expect("thread");
    set.spawn(
        "self",
        interval,
        Box::new(SelfSampler::new(Arc::new(EngineVitals(engine.clone())))),
    )
    .expect("thread");

    let rss_start = rss_bytes();
    let ticks_start = process_ticks();
    let threads_start = sampler_thread_ticks();
    let started = Instant::now();
    eprintln!(
        "running the default samplers every {interval:?} for {seconds} s (set TALLY_OVERHEAD_SECONDS to change)"
    );
    std::thread::sleep(Duration::from_secs(seconds));
    let wall = started.elapsed().as_secs_f64();
    let ticks = process_ticks().saturating_sub(ticks_start);
    let rss_end = rss_bytes();
    let threads_end = sampler_thread_ticks();
    let statuses = set.statuses().snapshot();
    set.stop(Duration::from_secs(10));

    let cpu_percent = ticks as f64 / TICKS_PER_SECOND / wall * 100.0;
    println!("sampler_overhead: {seconds} s at a {interval:?} interval");
    println!(
        "  process CPU: {:.3} % of one core ({ticks} ticks of 10 ms in {wall:.1} s)",
        cpu_percent
    );
    for (name, end) in &threads_end {
        let start = threads_start
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, t)| *t);
        println!(
            "  {name}: {:.3} % of one core",
            (end - start) as f64 / TICKS_PER_SECOND / wall * 100.0
        );
    }
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "  RSS: {:.2} MiB before the samplers, {:.2} MiB after their setup, {:.2} MiB at the end",
        mib(rss_before_samplers),
        mib(rss_start),
        mib(rss_end)
    );
    println!(
        "  memory the samplers added: {:.2} MiB (setup {:.2} MiB, growth while running {:.2} MiB)",
        mib(rss_end.saturating_sub(rss_before_samplers)),
        mib(rss_start.saturating_sub(rss_before_samplers)),
        mib(rss_end.saturating_sub(rss_start))
    );
    for s in statuses {
        println!(
            "  {}: {} runs, {} failures, {} points, last run {:?}",
            s.name, s.runs, s.failures, s.points_written, s.last_duration
        );
    }
    drop(dir);
}
