//! The built-in samplers inside tallyd: the `[samplers]` configuration section and its flags,
//! starting and stopping the samplers of `tally_ingest::samplers`, the vitals the `self` sampler
//! reads from the server, and each sampler's health in `/health` and `/metrics`.
//!
//! Out of the box `host`, `process`, `gpu` and `self` run every 10 s and write into the
//! database `telemetry`; scrape targets are configured one by one. Reference:
//! `docs/samplers.md`.
//!
//! The health of the samplers reaches `/health` and `/metrics` through [`status_layer`], a
//! middleware around the router that adds a `samplers` section to the `/health` answer and the
//! `tally_sampler_*` families to `/metrics`, and times `/query` requests for the `self`
//! sampler's query latencies; the handlers themselves are untouched.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tally_engine::Engine;
use tally_ingest::samplers::{
    self as ingest_samplers, EngineSink, GpuOptions, GpuSampler, HostOptions, HostSampler, Preset,
    ProcessOptions, ProcessSampler, QueryLatency, SamplerSet, SamplerState, SamplerStatus,
    SamplerStatuses, ScrapeSampler, ScrapeTarget, SelfSampler, Vitals, VitalsSource,
};

use crate::metrics::{Metrics, escape_label};
use crate::units::{ByteSize, HumanDuration};

/// `[samplers]`: the built-in samplers.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SamplersConfig {
    /// Turns every sampler off when false.
    pub enabled: bool,
    /// The database samplers write to (created on first write).
    pub database: String,
    /// The `host` tag; empty: this machine's host name.
    pub hostname: String,
    /// The interval of each sampler that does not set its own.
    pub interval: HumanDuration,
    pub host: HostSamplerConfig,
    pub process: ProcessSamplerConfig,
    pub gpu: GpuSamplerConfig,
    #[serde(rename = "self")]
    pub self_: SelfSamplerConfig,
    pub scrape: ScrapeConfig,
}

/// `[samplers.host]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HostSamplerConfig {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<HumanDuration>,
    /// Per-core `cpu` series besides `cpu-total`.
    pub per_cpu: bool,
    /// `disk` space series.
    pub disks: bool,
    /// Where `/proc` is mounted (a container reading its host's `/proc` mounts it elsewhere).
    pub proc_root: PathBuf,
}

/// `[samplers.process]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessSamplerConfig {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<HumanDuration>,
    /// Regular expressions matched against process names and command lines.
    pub patterns: Vec<String>,
}

/// `[samplers.gpu]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct GpuSamplerConfig {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<HumanDuration>,
    /// Path of `libnvidia-ml.so.1`; empty: the dynamic loader's search path.
    pub library: String,
}

/// `[samplers.self]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SelfSamplerConfig {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<HumanDuration>,
}

/// `[samplers.scrape]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Largest exposition body accepted from a target.
    pub max_body_size: ByteSize,
    pub targets: Vec<ScrapeTargetConfig>,
}

/// `[[samplers.scrape.targets]]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTargetConfig {
    pub url: String,
    #[serde(default = "default_interval")]
    pub interval: HumanDuration,
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
    /// `generic`, `vllm`, `tgi`, `llamacpp`, `dcgm` or `node_exporter`.
    #[serde(default = "default_preset")]
    pub preset: String,
    /// Tags added to every point of the target.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

fn default_interval() -> HumanDuration {
    HumanDuration(ingest_samplers::DEFAULT_INTERVAL)
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

fn default_preset() -> String {
    Preset::Generic.name().to_string()
}

impl Default for SamplersConfig {
    fn default() -> Self {
        SamplersConfig {
            enabled: true,
            database: ingest_samplers::DEFAULT_DATABASE.to_string(),
            hostname: String::new(),
            interval: default_interval(),
            host: HostSamplerConfig::default(),
            process: ProcessSamplerConfig::default(),
            gpu: GpuSamplerConfig::default(),
            self_: SelfSamplerConfig::default(),
            scrape: ScrapeConfig::default(),
        }
    }
}

impl Default for HostSamplerConfig {
    fn default() -> Self {
        let o = HostOptions::default();
        HostSamplerConfig {
            enabled: true,
            interval: None,
            per_cpu: o.per_cpu,
            disks: o.disks,
            proc_root: o.proc_root,
        }
    }
}

impl Default for ProcessSamplerConfig {
    fn default() -> Self {
        ProcessSamplerConfig {
            enabled: true,
            interval: None,
            patterns: ProcessOptions::default().patterns,
        }
    }
}

impl Default for GpuSamplerConfig {
    fn default() -> Self {
        GpuSamplerConfig {
            enabled: true,
            interval: None,
            library: String::new(),
        }
    }
}

impl Default for SelfSamplerConfig {
    fn default() -> Self {
        SelfSamplerConfig {
            enabled: true,
            interval: None,
        }
    }
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        ScrapeConfig {
            max_body_size: ByteSize(32 << 20),
            targets: Vec::new(),
        }
    }
}

/// The flags of the `[samplers]` section, flattened into tallyd's command line.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct SamplersCli {
    /// Run the built-in samplers: true or false [default: true].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_ENABLED",
        value_name = "BOOL",
        help_heading = "Samplers"
    )]
    pub samplers_enabled: Option<bool>,
    /// Database the samplers write to [default: telemetry].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_DATABASE",
        value_name = "DB",
        help_heading = "Samplers"
    )]
    pub samplers_database: Option<String>,
    /// Value of the host tag [default: this machine's host name].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_HOSTNAME",
        value_name = "NAME",
        help_heading = "Samplers"
    )]
    pub samplers_hostname: Option<String>,
    /// Interval of every sampler without its own [default: 10s].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_INTERVAL",
        value_name = "DURATION",
        help_heading = "Samplers"
    )]
    pub samplers_interval: Option<String>,
    /// Run the host sampler (cpu, mem, swap, system, disk, diskio, net) [default: true].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_HOST_ENABLED",
        value_name = "BOOL",
        help_heading = "Samplers"
    )]
    pub samplers_host_enabled: Option<bool>,
    /// Interval of the host sampler.
    #[arg(
        long,
        env = "TALLY_SAMPLERS_HOST_INTERVAL",
        value_name = "DURATION",
        help_heading = "Samplers"
    )]
    pub samplers_host_interval: Option<String>,
    /// Write per-core cpu series [default: true].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_HOST_PER_CPU",
        value_name = "BOOL",
        help_heading = "Samplers"
    )]
    pub samplers_host_per_cpu: Option<bool>,
    /// Write disk space series [default: true].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_HOST_DISKS",
        value_name = "BOOL",
        help_heading = "Samplers"
    )]
    pub samplers_host_disks: Option<bool>,
    /// Where /proc is mounted [default: /proc].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_HOST_PROC_ROOT",
        value_name = "DIR",
        help_heading = "Samplers"
    )]
    pub samplers_host_proc_root: Option<PathBuf>,
    /// Run the process sampler (procstat) [default: true].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_PROCESS_ENABLED",
        value_name = "BOOL",
        help_heading = "Samplers"
    )]
    pub samplers_process_enabled: Option<bool>,
    /// Interval of the process sampler.
    #[arg(
        long,
        env = "TALLY_SAMPLERS_PROCESS_INTERVAL",
        value_name = "DURATION",
        help_heading = "Samplers"
    )]
    pub samplers_process_interval: Option<String>,
    /// A process pattern (regex on name or command line); repeat it; replaces the default list.
    #[arg(
        long = "samplers-process-pattern",
        value_name = "REGEX",
        help_heading = "Samplers"
    )]
    pub samplers_process_patterns: Vec<String>,
    /// Run the GPU sampler (nvidia_smi) [default: true].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_GPU_ENABLED",
        value_name = "BOOL",
        help_heading = "Samplers"
    )]
    pub samplers_gpu_enabled: Option<bool>,
    /// Interval of the GPU sampler.
    #[arg(
        long,
        env = "TALLY_SAMPLERS_GPU_INTERVAL",
        value_name = "DURATION",
        help_heading = "Samplers"
    )]
    pub samplers_gpu_interval: Option<String>,
    /// Path of libnvidia-ml.so.1 [default: the loader's search path].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_GPU_LIBRARY",
        value_name = "FILE",
        help_heading = "Samplers"
    )]
    pub samplers_gpu_library: Option<String>,
    /// Run the self sampler (tally) [default: true].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_SELF_ENABLED",
        value_name = "BOOL",
        help_heading = "Samplers"
    )]
    pub samplers_self_enabled: Option<bool>,
    /// Interval of the self sampler.
    #[arg(
        long,
        env = "TALLY_SAMPLERS_SELF_INTERVAL",
        value_name = "DURATION",
        help_heading = "Samplers"
    )]
    pub samplers_self_interval: Option<String>,
    /// Largest exposition body accepted from a scrape target [default: 32MiB].
    #[arg(
        long,
        env = "TALLY_SAMPLERS_SCRAPE_MAX_BODY_SIZE",
        value_name = "SIZE",
        help_heading = "Samplers"
    )]
    pub samplers_scrape_max_body_size: Option<String>,
    /// Add a scrape target: URL[,preset=P][,interval=D][,timeout=D][,tag.KEY=VALUE]; repeat it.
    #[arg(
        long = "scrape-target",
        value_name = "URL[,KEY=VALUE]",
        help_heading = "Samplers"
    )]
    pub scrape_targets: Vec<String>,
}

fn duration_flag(name: &str, text: &str) -> anyhow::Result<HumanDuration> {
    HumanDuration::parse(text).map_err(|e| anyhow::anyhow!("--{name}: {e}"))
}

/// Parses `--scrape-target URL[,preset=P][,interval=D][,timeout=D][,tag.KEY=VALUE]`.
pub(crate) fn parse_target_flag(text: &str) -> anyhow::Result<ScrapeTargetConfig> {
    let mut parts = text.split(',');
    let url = parts.next().unwrap_or_default().trim().to_string();
    let mut target = ScrapeTargetConfig {
        url,
        interval: default_interval(),
        timeout: default_timeout(),
        preset: default_preset(),
        tags: BTreeMap::new(),
    };
    for part in parts {
        let Some((key, value)) = part.split_once('=') else {
            anyhow::bail!("--scrape-target {text:?}: {part:?} is not KEY=VALUE");
        };
        match key.trim() {
            "preset" => target.preset = value.trim().to_string(),
            "interval" => target.interval = duration_flag("scrape-target interval", value)?,
            "timeout" => target.timeout = duration_flag("scrape-target timeout", value)?,
            other => match other.strip_prefix("tag.") {
                Some(tag) if !tag.is_empty() => {
                    target.tags.insert(tag.to_string(), value.to_string());
                }
                _ => anyhow::bail!(
                    "--scrape-target {text:?}: unknown option {other:?}; expected preset, interval, timeout or tag.KEY"
                ),
            },
        }
    }
    Ok(target)
}

impl SamplersConfig {
    /// Applies the flags over the file's values.
    pub fn apply_flags(&mut self, cli: &SamplersCli) -> anyhow::Result<()> {
        if let Some(v) = cli.samplers_enabled {
            self.enabled = v;
        }
        if let Some(v) = &cli.samplers_database {
            self.database = v.clone();
        }
        if let Some(v) = &cli.samplers_hostname {
            self.hostname = v.clone();
        }
        if let Some(v) = &cli.samplers_interval {
            self.interval = duration_flag("samplers-interval", v)?;
        }
        if let Some(v) = cli.samplers_host_enabled {
            self.host.enabled = v;
        }
        if let Some(v) = &cli.samplers_host_interval {
            self.host.interval = Some(duration_flag("samplers-host-interval", v)?);
        }
        if let Some(v) = cli.samplers_host_per_cpu {
            self.host.per_cpu = v;
        }
        if let Some(v) = cli.samplers_host_disks {
            self.host.disks = v;
        }
        if let Some(v) = &cli.samplers_host_proc_root {
            self.host.proc_root = v.clone();
        }
        if let Some(v) = cli.samplers_process_enabled {
            self.process.enabled = v;
        }
        if let Some(v) = &cli.samplers_process_interval {
            self.process.interval = Some(duration_flag("samplers-process-interval", v)?);
        }
        if !cli.samplers_process_patterns.is_empty() {
            self.process.patterns = cli.samplers_process_patterns.clone();
        }
        if let Some(v) = cli.samplers_gpu_enabled {
            self.gpu.enabled = v;
        }
        if let Some(v) = &cli.samplers_gpu_interval {
            self.gpu.interval = Some(duration_flag("samplers-gpu-interval", v)?);
        }
        if let Some(v) = &cli.samplers_gpu_library {
            self.gpu.library = v.clone();
        }
        if let Some(v) = cli.samplers_self_enabled {
            self.self_.enabled = v;
        }
        if let Some(v) = &cli.samplers_self_interval {
            self.self_.interval = Some(duration_flag("samplers-self-interval", v)?);
        }
        if let Some(v) = &cli.samplers_scrape_max_body_size {
            self.scrape.max_body_size = ByteSize::parse(v)
                .map_err(|e| anyhow::anyhow!("--samplers-scrape-max-body-size: {e}"))?;
        }
        for target in &cli.scrape_targets {
            self.scrape.targets.push(parse_target_flag(target)?);
        }
        Ok(())
    }

    /// Checks every option; errors name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        tally_engine::validate_database_name(&self.database)
            .map_err(|e| anyhow::anyhow!("samplers.database: {e}"))?;
        let intervals = [
            ("samplers.interval", Some(self.interval)),
            ("samplers.host.interval", self.host.interval),
            ("samplers.process.interval", self.process.interval),
            ("samplers.gpu.interval", self.gpu.interval),
            ("samplers.self.interval", self.self_.interval),
        ];
        for (key, interval) in intervals {
            if let Some(i) = interval
                && i.0 < ingest_samplers::MIN_INTERVAL
            {
                anyhow::bail!("{key} must be at least 100ms, not {i}");
            }
        }
        ingest_samplers::validate_patterns(&self.process.patterns)
            .map_err(|e| anyhow::anyhow!("samplers.process.patterns: {e}"))?;
        for (i, t) in self.scrape.targets.iter().enumerate() {
            let key = format!("samplers.scrape.targets[{i}]");
            let preset = Preset::parse(&t.preset).ok_or_else(|| {
                anyhow::anyhow!(
                    "{key}.preset {:?} is unknown; expected generic, vllm, tgi, llamacpp, dcgm or node_exporter",
                    t.preset
                )
            })?;
            if t.interval.0 < ingest_samplers::MIN_INTERVAL {
                anyhow::bail!("{key}.interval must be at least 100ms, not {}", t.interval);
            }
            ScrapeSampler::new(self.target(t, preset))
                .map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
        }
        Ok(())
    }

    fn interval_of(&self, own: Option<HumanDuration>) -> Duration {
        own.unwrap_or(self.interval).0
    }

    fn target(&self, t: &ScrapeTargetConfig, preset: Preset) -> ScrapeTarget {
        let mut target = ScrapeTarget::new(&t.url)
            .with_preset(preset)
            .with_interval(t.interval.0)
            .with_timeout(t.timeout.0)
            .with_tags(t.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
        target.max_body_bytes = self.scrape.max_body_size.0;
        target
    }
}

/// Query latencies of the current sampling interval, kept by [`status_layer`].
#[derive(Default)]
struct LatencyWindow {
    /// Milliseconds; at most `MAX_KEPT` are kept, the rest overwrite older ones in turn.
    kept: Mutex<(Vec<f64>, u64)>,
}

const MAX_KEPT: usize = 4096;

impl LatencyWindow {
    fn record(&self, elapsed: Duration) {
        if let Ok(mut guard) = self.kept.lock() {
            let (kept, seen) = &mut *guard;
            let ms = elapsed.as_secs_f64() * 1000.0;
            if kept.len() < MAX_KEPT {
                kept.push(ms);
            } else {
                let slot = (*seen as usize) % MAX_KEPT;
                kept[slot] = ms;
            }
            *seen += 1;
        }
    }

    /// The window's quantiles, and a new empty window.
    fn take(&self) -> Option<QueryLatency> {
        let (mut kept, seen) = self.kept.lock().ok().map(|mut g| std::mem::take(&mut *g))?;
        if kept.is_empty() {
            return None;
        }
        kept.sort_by(f64::total_cmp);
        let at = |q: f64| kept[((kept.len() - 1) as f64 * q).round() as usize];
        Some(QueryLatency {
            count: seen,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: kept[kept.len() - 1],
        })
    }
}

/// What the `self` sampler reads from the server.
struct ServerVitals {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    data_dir: PathBuf,
    latencies: Arc<LatencyWindow>,
}

/// Bytes of `*.wal` files under `dir`, two levels deep (`<db>/wal/*.wal`).
fn wal_bytes(dir: &std::path::Path, depth: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() && depth > 0 {
            total += wal_bytes(&path, depth - 1);
        } else if meta.is_file() && path.extension().is_some_and(|e| e == "wal") {
            total += meta.len();
        }
    }
    total
}

impl VitalsSource for ServerVitals {
    fn vitals(&self) -> Vitals {
        let (mut points, mut rejected, mut series, mut segments, mut head) = (0, 0, 0, 0, 0);
        for name in self.engine.database_names() {
            if let Some(db) = self.engine.database(&name) {
                let s = db.stats();
                points += s.points_written;
                rejected += s.points_rejected;
                series += s.series;
                segments += s.segment_bytes;
                head += s.head_bytes;
            }
        }
        Vitals::new(
            points,
            rejected,
            series,
            wal_bytes(&self.data_dir, 3),
            segments,
            head,
            self.metrics.queries.load(Ordering::Relaxed),
            self.metrics.query_errors.load(Ordering::Relaxed),
            self.latencies.take(),
        )
    }
}

/// The running samplers of a tallyd.
pub(crate) struct Samplers {
    set: Mutex<Option<SamplerSet>>,
    statuses: SamplerStatuses,
    latencies: Arc<LatencyWindow>,
}

impl Samplers {
    /// Starts every enabled sampler. A sampler that cannot start (no GPU driver, say) is logged
    /// once and listed as disabled with the reason; the others start regardless.
    pub(crate) fn start(
        config: &SamplersConfig,
        engine: &Arc<Engine>,
        metrics: &Arc<Metrics>,
        data_dir: &std::path::Path,
    ) -> Samplers {
        let latencies = Arc::new(LatencyWindow::default());
        let host = if config.hostname.is_empty() {
            ingest_samplers::host_name()
        } else {
            config.hostname.clone()
        };
        let sink = Arc::new(EngineSink::new(engine.clone(), config.database.clone()));
        let mut set = SamplerSet::new(sink, &host);
        let statuses = set.statuses();
        let off = "turned off in the configuration";
        let all_off = "all samplers are turned off in the configuration (samplers.enabled = false)";
        let start = |set: &mut SamplerSet,
                     name: &str,
                     interval: Duration,
                     sampler: Box<dyn ingest_samplers::Sampler>| {
            if let Err(e) = set.spawn(name, interval, sampler) {
                tracing::error!(sampler = name, error = %e, "cannot start the sampler thread");
                set.add_disabled(name, interval, &format!("cannot start its thread: {e}"));
            }
        };

        let gpu_interval = config.interval_of(config.gpu.interval);
        let mut gpu_memory = None;
        if !config.enabled || !config.gpu.enabled {
            set.add_disabled(
                "gpu",
                gpu_interval,
                if config.enabled { off } else { all_off },
            );
        } else {
            let mut options = GpuOptions::default();
            if !config.gpu.library.is_empty() {
                options.library_path = Some(config.gpu.library.clone().into());
            }
            match GpuSampler::open(&options) {
                Ok(gpu) => {
                    gpu_memory = Some(gpu.process_memory());
                    start(&mut set, "gpu", gpu_interval, Box::new(gpu));
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    set.add_disabled("gpu", gpu_interval, &e.to_string());
                }
            }
        }

        let host_interval = config.interval_of(config.host.interval);
        if config.enabled && config.host.enabled {
            let mut options = HostOptions::default();
            options.proc_root = config.host.proc_root.clone();
            options.per_cpu = config.host.per_cpu;
            options.disks = config.host.disks;
            start(
                &mut set,
                "host",
                host_interval,
                Box::new(HostSampler::new(options)),
            );
        } else {
            set.add_disabled(
                "host",
                host_interval,
                if config.enabled { off } else { all_off },
            );
        }

        let process_interval = config.interval_of(config.process.interval);
        if config.enabled && config.process.enabled {
            let mut options = ProcessOptions::default();
            options.patterns = config.process.patterns.clone();
            options.proc_root = config.host.proc_root.clone();
            match ProcessSampler::new(options) {
                Ok(sampler) => {
                    let sampler = match gpu_memory {
                        Some(memory) => sampler.with_gpu_memory(memory),
                        None => sampler,
                    };
                    start(&mut set, "process", process_interval, Box::new(sampler));
                }
                Err(e) => {
                    tracing::error!("process sampler: {e}");
                    set.add_disabled("process", process_interval, &e.to_string());
                }
            }
        } else {
            set.add_disabled(
                "process",
                process_interval,
                if config.enabled { off } else { all_off },
            );
        }

        let self_interval = config.interval_of(config.self_.interval);
        if config.enabled && config.self_.enabled {
            let vitals = Arc::new(ServerVitals {
                engine: engine.clone(),
                metrics: metrics.clone(),
                data_dir: data_dir.to_path_buf(),
                latencies: latencies.clone(),
            });
            start(
                &mut set,
                "self",
                self_interval,
                Box::new(SelfSampler::new(vitals)),
            );
        } else {
            set.add_disabled(
                "self",
                self_interval,
                if config.enabled { off } else { all_off },
            );
        }

        for t in &config.scrape.targets {
            let Some(preset) = Preset::parse(&t.preset) else {
                continue;
            };
            let target = config.target(t, preset);
            let name = target.sampler_name();
            if !config.enabled {
                set.add_disabled(&name, t.interval.0, all_off);
                continue;
            }
            match ScrapeSampler::new(target) {
                Ok(sampler) => start(&mut set, &name, t.interval.0, Box::new(sampler)),
                Err(e) => set.add_disabled(&name, t.interval.0, &e.to_string()),
            }
        }
        let running: Vec<String> = statuses
            .snapshot()
            .into_iter()
            .filter(|s| s.state != SamplerState::Disabled)
            .map(|s| s.name)
            .collect();
        tracing::info!(
            database = config.database.as_str(),
            host = host.as_str(),
            samplers = running.join(",").as_str(),
            "samplers started"
        );
        Samplers {
            set: Mutex::new(Some(set)),
            statuses,
            latencies,
        }
    }

    /// Stops every sampler; called before the engine closes.
    pub(crate) fn stop(&self) {
        let set = self.set.lock().ok().and_then(|mut s| s.take());
        if let Some(set) = set {
            set.stop(Duration::from_secs(10));
        }
    }

    fn health_json(&self) -> (serde_json::Value, Vec<serde_json::Value>) {
        let mut samplers = Vec::new();
        let mut checks = Vec::new();
        for s in self.statuses.snapshot() {
            samplers.push(serde_json::json!({
                "name": s.name,
                "state": s.state.name(),
                "interval_seconds": s.interval.as_secs_f64(),
                "reason": s.disabled_reason,
                "last_run_ns": s.last_run_ns,
                "last_duration_ms": s.last_duration.map(|d| d.as_secs_f64() * 1000.0),
                "last_error": s.last_error,
                "runs": s.runs,
                "failures": s.failures,
                "points_written": s.points_written,
            }));
            let (status, message) = match s.state {
                SamplerState::Ok | SamplerState::Starting => ("pass", "running".to_string()),
                SamplerState::Failing => ("warn", s.last_error.clone().unwrap_or_default()),
                SamplerState::Disabled => (
                    "pass",
                    format!(
                        "disabled: {}",
                        s.disabled_reason.clone().unwrap_or_default()
                    ),
                ),
                _ => ("pass", String::new()),
            };
            checks.push(serde_json::json!({
                "name": format!("sampler:{}", s.name),
                "status": status,
                "message": message,
            }));
        }
        (serde_json::Value::Array(samplers), checks)
    }

    fn metrics_text(&self) -> String {
        let statuses = self.statuses.snapshot();
        let mut out = String::new();
        type Getter = fn(&SamplerStatus) -> Option<f64>;
        let families: [(&str, &str, &str, Getter); 7] = [
            (
                "tally_sampler_enabled",
                "gauge",
                "Whether the sampler runs (0: disabled or unavailable).",
                |s| {
                    Some(if s.state == SamplerState::Disabled {
                        0.0
                    } else {
                        1.0
                    })
                },
            ),
            (
                "tally_sampler_last_run_success",
                "gauge",
                "Whether the sampler's last run succeeded.",
                |s| match s.state {
                    SamplerState::Ok => Some(1.0),
                    SamplerState::Failing => Some(0.0),
                    _ => None,
                },
            ),
            (
                "tally_sampler_last_run_timestamp_seconds",
                "gauge",
                "Tick time of the sampler's last run.",
                |s| s.last_run_ns.map(|ns| ns as f64 / 1e9),
            ),
            (
                "tally_sampler_last_duration_seconds",
                "gauge",
                "How long the sampler's last run took, writing included.",
                |s| s.last_duration.map(|d| d.as_secs_f64()),
            ),
            (
                "tally_sampler_runs_total",
                "counter",
                "Sampler runs since start.",
                |s| Some(s.runs as f64),
            ),
            (
                "tally_sampler_failures_total",
                "counter",
                "Sampler runs that failed.",
                |s| Some(s.failures as f64),
            ),
            (
                "tally_sampler_points_written_total",
                "counter",
                "Points the sampler stored.",
                |s| Some(s.points_written as f64),
            ),
        ];
        for (name, kind, help, get) in families {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for s in &statuses {
                if let Some(v) = get(s) {
                    let _ = writeln!(out, "{name}{{sampler=\"{}\"}} {v}", escape_label(&s.name));
                }
            }
        }
        out
    }
}

/// The largest `/health` or `/metrics` body the layer rewrites.
const MAX_STATUS_BODY: usize = 64 << 20;

/// Middleware around the router: times `/query` for the `self` sampler, and adds the samplers'
/// health to `/health` (a `samplers` list and one `checks` entry each) and to `/metrics`.
pub(crate) async fn status_layer(
    State(samplers): State<Arc<Samplers>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let is_get = request.method() == Method::GET;
    let started = Instant::now();
    let response = next.run(request).await;
    match path.as_str() {
        "/query" => {
            samplers.latencies.record(started.elapsed());
            response
        }
        "/health" if is_get && response.status().is_success() => {
            let (mut parts, body) = response.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_STATUS_BODY).await else {
                return Response::from_parts(parts, Body::empty());
            };
            let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                return Response::from_parts(parts, Body::from(bytes));
            };
            let (list, checks) = samplers.health_json();
            if let Some(object) = json.as_object_mut() {
                object.insert("samplers".to_string(), list);
                match object.get_mut("checks").and_then(|c| c.as_array_mut()) {
                    Some(existing) => existing.extend(checks),
                    None => {
                        object.insert("checks".to_string(), serde_json::Value::Array(checks));
                    }
                }
            }
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(json.to_string()))
        }
        "/metrics" if is_get && response.status().is_success() => {
            let (mut parts, body) = response.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_STATUS_BODY).await else {
                return Response::from_parts(parts, Body::empty());
            };
            let mut text = bytes.to_vec();
            if !text.is_empty() && !text.ends_with(b"\n") {
                text.push(b'\n');
            }
            text.extend_from_slice(samplers.metrics_text().as_bytes());
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(text))
        }
        _ => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_run_host_process_gpu_and_self_every_ten_seconds_into_telemetry() {
        let c = SamplersConfig::default();
        assert!(
            c.enabled && c.host.enabled && c.process.enabled && c.gpu.enabled && c.self_.enabled
        );
        assert_eq!(c.database, "telemetry");
        assert_eq!(c.interval_of(c.host.interval), Duration::from_secs(10));
        assert!(c.process.patterns.iter().any(|p| p == "vllm"));
        assert!(c.scrape.targets.is_empty());
        c.validate().unwrap();
    }

    #[test]
    fn scrape_targets_come_from_toml_and_from_repeatable_flags() {
        let text = r#"
[samplers]
interval = "5s"
[samplers.host]
interval = "1s"
[[samplers.scrape.targets]]
url = "http://127.0.0.1:8000/metrics"
preset = "vllm"
interval = "15s"
tags = { cluster = "a" }
"#;
        let config: crate::Config = toml::from_str(text).unwrap();
        let s = &config.samplers;
        assert_eq!(s.interval_of(s.host.interval), Duration::from_secs(1));
        assert_eq!(s.interval_of(s.gpu.interval), Duration::from_secs(5));
        assert_eq!(s.scrape.targets[0].preset, "vllm");
        assert_eq!(s.scrape.targets[0].timeout.0, Duration::from_secs(5));
        assert_eq!(s.scrape.targets[0].tags["cluster"], "a");

        let cli = crate::Cli::parse_from([
            "tallyd",
            "--scrape-target",
            "http://h:9400/metrics,preset=dcgm,timeout=2s,tag.rack=r1",
            "--scrape-target",
            "http://h:9100/metrics",
            "--samplers-interval",
            "1s",
            "--samplers-gpu-enabled",
            "false",
            "--samplers-process-pattern",
            "my-server",
        ]);
        let config = crate::Config::load(&cli).unwrap();
        let s = &config.samplers;
        assert_eq!(s.scrape.targets.len(), 2);
        assert_eq!(s.scrape.targets[0].preset, "dcgm");
        assert_eq!(s.scrape.targets[0].timeout.0, Duration::from_secs(2));
        assert_eq!(s.scrape.targets[0].tags["rack"], "r1");
        assert_eq!(s.scrape.targets[1].preset, "generic");
        assert_eq!(s.interval.0, Duration::from_secs(1));
        assert!(!s.gpu.enabled);
        assert_eq!(s.process.patterns, ["my-server"]);
    }

    #[test]
    fn a_configuration_with_targets_round_trips_through_toml() {
        let mut config = crate::Config::default();
        config.samplers.host.interval = Some(HumanDuration(Duration::from_secs(3)));
        config
            .samplers
            .scrape
            .targets
            .push(parse_target_flag("http://h:1/metrics,preset=vllm,tag.a=b").unwrap());
        let text = toml::to_string(&config).unwrap();
        let back: crate::Config = toml::from_str(&text).unwrap();
        assert_eq!(back.samplers, config.samplers, "{text}");
    }

    #[test]
    fn bad_sampler_options_are_errors_naming_the_key() {
        let mut c = SamplersConfig::default();
        c.scrape
            .targets
            .push(parse_target_flag("http://x/metrics,preset=vlm").unwrap());
        let err = c.validate().unwrap_err().to_string();
        assert!(
            err.contains("samplers.scrape.targets[0].preset") && err.contains("vlm"),
            "{err}"
        );
        let mut c = SamplersConfig::default();
        c.scrape
            .targets
            .push(parse_target_flag("https://x/metrics").unwrap());
        assert!(c.validate().unwrap_err().to_string().contains("http://"));
        let mut c = SamplersConfig::default();
        c.host.interval = Some(HumanDuration(Duration::from_millis(10)));
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("samplers.host.interval")
        );
        let mut c = SamplersConfig::default();
        c.process.patterns = vec!["(".into()];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("samplers.process.patterns")
        );
        assert!(parse_target_flag("http://x/,colour=red").is_err());
        assert!(parse_target_flag("http://x/,interval=soon").is_err());
    }

    #[test]
    fn query_latency_windows_report_quantiles_once() {
        let w = LatencyWindow::default();
        assert!(w.take().is_none());
        for ms in 1..=100 {
            w.record(Duration::from_millis(ms));
        }
        let l = w.take().unwrap();
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 51.0).abs() < 1e-9, "{l:?}");
        assert!((l.p99_ms - 99.0).abs() < 1e-9, "{l:?}");
        assert!((l.max_ms - 100.0).abs() < 1e-9);
        assert!(w.take().is_none(), "the window starts afresh");
    }
}
