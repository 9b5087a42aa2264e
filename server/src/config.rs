//! tallyd's configuration: a TOML file whose every option also has a command-line flag
//! (flags win). Defaults make `tallyd` with no arguments useful. Reference:
//! `docs/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use tally_engine::{CompactionOptions, EngineOptions, FsyncPolicy, Retention};

use crate::units::{ByteSize, HumanDuration};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub listen: String,
    /// Directory holding all data.
    pub data_dir: PathBuf,
    /// error, warn, info, debug or trace (or a tracing filter such as `tally=debug`).
    pub log_level: String,
    /// `text` or `json`.
    pub log_format: String,
    pub storage: StorageConfig,
    pub http: HttpConfig,
    pub query: QueryConfig,
    pub dashboards: DashboardsConfig,
    pub snapshots: SnapshotsConfig,
    pub samplers: crate::samplers::SamplersConfig,
    pub alerts: crate::alerts::AlertsConfig,
    /// The SMTP server for email notifications (alerts and reports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<crate::notify::smtp::SmtpSettings>,
    pub reports: crate::reports::config::ReportsConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `always`, `interval=<duration>` or `never`.
    pub fsync: String,
    pub wal_rotate_size: ByteSize,
    pub wal_skip_corrupt: bool,
    /// Write each next WAL file, zero-filled, before it is needed.
    pub wal_preallocate: bool,
    pub chunk_span: HumanDuration,
    pub max_chunk_points: u32,
    pub block_duration: HumanDuration,
    pub flush_size: ByteSize,
    pub flush_interval: HumanDuration,
    pub max_head_memory: ByteSize,
    pub max_series_per_database: u64,
    /// How long raw points are kept (`inf` keeps them forever). Databases may override it.
    pub retention_raw: String,
    /// Rollup tiers and how long each is kept: `1m=90d,1h=3y` (`inf` for forever; empty for
    /// no tiers).
    pub retention_tiers: String,
    /// Background compaction (merging, rollups, retention).
    pub compaction: bool,
    /// Compact a time block this long after it ended.
    pub compaction_delay: HumanDuration,
    /// Compaction writes at most this much per second (0 = unthrottled).
    pub compaction_rate: ByteSize,
    /// The share of one core compaction may use, in percent (1 to 100).
    pub compaction_cpu_percent: u8,
    /// Refuse writes (507) while the data directory's file system has less free space.
    pub min_free_disk: ByteSize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body (and largest decompressed gzip body).
    pub max_body_size: ByteSize,
    /// Create a database on its first write instead of answering 404.
    pub auto_create_databases: bool,
    /// Writes running at once; more wait for a slot.
    pub max_concurrent_writes: u32,
    /// Longest line protocol line; longer lines are rejected (the others are stored).
    pub max_line_size: ByteSize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// Most series one SELECT may read; 0 = no limit.
    pub max_series: u64,
    /// Most points one SELECT may decode; 0 = no limit.
    pub max_points_scanned: u64,
    /// Most rows one statement may return; 0 = no limit.
    pub max_result_rows: u64,
    /// Longest a query may run.
    pub timeout: HumanDuration,
    /// Longest query text accepted.
    pub max_query_length: ByteSize,
}

/// Limits on the custom dashboards kept in `<data-dir>/dashboards/` (docs/dashboard.md).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardsConfig {
    /// Most custom dashboards stored.
    pub max_count: u32,
    /// Largest dashboard, as stored JSON and as a create or update request body.
    pub max_size: ByteSize,
}

impl Default for DashboardsConfig {
    fn default() -> Self {
        DashboardsConfig {
            max_count: 1000,
            max_size: ByteSize(1 << 20),
        }
    }
}

/// Snapshots for online backups (`POST /api/v1/snapshots`, docs/backup.md).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotsConfig {
    /// A snapshot not deleted is removed this long after its last request.
    pub ttl: HumanDuration,
}

impl Default for SnapshotsConfig {
    fn default() -> Self {
        SnapshotsConfig {
            ttl: HumanDuration(Duration::from_secs(3600)),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8086".into(),
            data_dir: PathBuf::from("./tally-data"),
            log_level: "info".into(),
            log_format: "text".into(),
            storage: StorageConfig::default(),
            http: HttpConfig::default(),
            query: QueryConfig::default(),
            dashboards: DashboardsConfig::default(),
            snapshots: SnapshotsConfig::default(),
            samplers: crate::samplers::SamplersConfig::default(),
            alerts: crate::alerts::AlertsConfig::default(),
            reports: crate::reports::config::ReportsConfig::default(),
            smtp: None,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        let e = EngineOptions::default();
        StorageConfig {
            fsync: "always".into(),
            wal_rotate_size: ByteSize(e.wal_rotate_bytes),
            wal_skip_corrupt: e.wal_skip_corrupt,
            wal_preallocate: e.wal_preallocate,
            chunk_span: HumanDuration(e.chunk_span),
            max_chunk_points: e.max_chunk_points as u32,
            block_duration: HumanDuration(e.block_duration),
            flush_size: ByteSize(e.flush_bytes),
            flush_interval: HumanDuration(e.flush_interval),
            max_head_memory: ByteSize(e.max_head_bytes),
            max_series_per_database: e.max_series_per_database,
            retention_raw: "7d".into(),
            retention_tiers: "1m=90d,1h=3y".into(),
            compaction: true,
            compaction_delay: HumanDuration(e.compaction.delay),
            compaction_rate: ByteSize(e.compaction.bytes_per_second),
            compaction_cpu_percent: e.compaction.cpu_percent,
            min_free_disk: ByteSize(1 << 30),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_size: ByteSize(25 << 20),
            auto_create_databases: true,
            max_concurrent_writes: 16,
            max_line_size: ByteSize(1 << 20),
        }
    }
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            max_series: 100_000,
            max_points_scanned: 2_000_000_000,
            max_result_rows: 1_000_000,
            timeout: HumanDuration(Duration::from_secs(60)),
            max_query_length: ByteSize(1 << 20),
        }
    }
}

/// Command line of tallyd. Every configuration option has a flag; flags override the file.
#[derive(Parser, Debug, Default)]
#[command(
    name = "tallyd",
    version,
    about = "Tally: a time-series database for LLM workloads (hardware, requests, cost).",
    long_about = "Tally samples the machine it runs on, accepts InfluxDB line protocol writes, \
stores everything in its own compressed columnar engine and answers an InfluxQL-like query \
language over HTTP.\n\nWith no arguments it serves on 127.0.0.1:8086 with data in ./tally-data.",
    after_help = "Examples:\n  tallyd\n  tallyd --listen 0.0.0.0:8086 --data-dir /var/lib/tally\n  \
tallyd --config /etc/tally/tally.toml --log-level debug\n  tallyd --print-config > tally.toml\n\n\
Every option is documented in docs/configuration.md."
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "TALLY_CONFIG", short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Address to listen on [default: 127.0.0.1:8086].
    #[arg(long, env = "TALLY_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data directory [default: ./tally-data].
    #[arg(long, env = "TALLY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace [default: info].
    #[arg(long, env = "TALLY_LOG_LEVEL", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "TALLY_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// When writes are acknowledged: always, interval=<duration>, never [default: always].
    #[arg(
        long,
        env = "TALLY_STORAGE_FSYNC",
        value_name = "POLICY",
        help_heading = "Storage"
    )]
    pub storage_fsync: Option<String>,
    /// Start a new WAL file at this size [default: 64MiB].
    #[arg(
        long,
        env = "TALLY_STORAGE_WAL_ROTATE_SIZE",
        value_name = "SIZE",
        help_heading = "Storage"
    )]
    pub storage_wal_rotate_size: Option<String>,
    /// Skip corrupt WAL records at start instead of refusing to start.
    #[arg(long, env = "TALLY_STORAGE_WAL_SKIP_CORRUPT", help_heading = "Storage")]
    pub storage_wal_skip_corrupt: bool,
    /// Write each next WAL file, zero-filled, before it is needed, so a write's fsync commits
    /// no file-system journal: true or false [default: true].
    #[arg(
        long,
        env = "TALLY_STORAGE_WAL_PREALLOCATE",
        value_name = "BOOL",
        help_heading = "Storage"
    )]
    pub storage_wal_preallocate: Option<bool>,
    /// Chunks never cross a multiple of this duration [default: 1h].
    #[arg(
        long,
        env = "TALLY_STORAGE_CHUNK_SPAN",
        value_name = "DURATION",
        help_heading = "Storage"
    )]
    pub storage_chunk_span: Option<String>,
    /// Most points per chunk [default: 1024].
    #[arg(
        long,
        env = "TALLY_STORAGE_MAX_CHUNK_POINTS",
        value_name = "N",
        help_heading = "Storage"
    )]
    pub storage_max_chunk_points: Option<u32>,
    /// Time covered by one segment file [default: 1d].
    #[arg(
        long,
        env = "TALLY_STORAGE_BLOCK_DURATION",
        value_name = "DURATION",
        help_heading = "Storage"
    )]
    pub storage_block_duration: Option<String>,
    /// Flush the head into segments at this size [default: 64MiB].
    #[arg(
        long,
        env = "TALLY_STORAGE_FLUSH_SIZE",
        value_name = "SIZE",
        help_heading = "Storage"
    )]
    pub storage_flush_size: Option<String>,
    /// Flush sealed chunks at least this often [default: 10m].
    #[arg(
        long,
        env = "TALLY_STORAGE_FLUSH_INTERVAL",
        value_name = "DURATION",
        help_heading = "Storage"
    )]
    pub storage_flush_interval: Option<String>,
    /// Refuse writes (503) while the head holds this much [default: 1GiB].
    #[arg(
        long,
        env = "TALLY_STORAGE_MAX_HEAD_MEMORY",
        value_name = "SIZE",
        help_heading = "Storage"
    )]
    pub storage_max_head_memory: Option<String>,
    /// Most series per database, 0 = unlimited [default: 1000000].
    #[arg(
        long,
        env = "TALLY_STORAGE_MAX_SERIES_PER_DATABASE",
        value_name = "N",
        help_heading = "Storage"
    )]
    pub storage_max_series_per_database: Option<u64>,
    /// Keep raw points this long, or `inf` [default: 7d].
    #[arg(
        long,
        env = "TALLY_STORAGE_RETENTION_RAW",
        value_name = "DURATION",
        help_heading = "Storage"
    )]
    pub storage_retention_raw: Option<String>,
    /// Rollup tiers and their retention, e.g. `1m=90d,1h=3y`; empty for none [default: 1m=90d,1h=3y].
    #[arg(
        long,
        env = "TALLY_STORAGE_RETENTION_TIERS",
        value_name = "TIERS",
        help_heading = "Storage"
    )]
    pub storage_retention_tiers: Option<String>,
    /// Background compaction, rollups and retention: true or false [default: true].
    #[arg(
        long,
        env = "TALLY_STORAGE_COMPACTION",
        value_name = "BOOL",
        help_heading = "Storage"
    )]
    pub storage_compaction: Option<bool>,
    /// Compact a time block this long after it ended [default: 10m].
    #[arg(
        long,
        env = "TALLY_STORAGE_COMPACTION_DELAY",
        value_name = "DURATION",
        help_heading = "Storage"
    )]
    pub storage_compaction_delay: Option<String>,
    /// Most bytes compaction writes per second, 0 = unthrottled [default: 32MiB].
    #[arg(
        long,
        env = "TALLY_STORAGE_COMPACTION_RATE",
        value_name = "SIZE",
        help_heading = "Storage"
    )]
    pub storage_compaction_rate: Option<String>,
    /// Share of one core compaction may use, in percent, 1 to 100 [default: 25].
    #[arg(long, env = "TALLY_STORAGE_COMPACTION_CPU_PERCENT", value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=100), help_heading = "Storage")]
    pub storage_compaction_cpu_percent: Option<u8>,
    /// Refuse writes while the disk has less free space than this [default: 1GiB].
    #[arg(
        long,
        env = "TALLY_STORAGE_MIN_FREE_DISK",
        value_name = "SIZE",
        help_heading = "Storage"
    )]
    pub storage_min_free_disk: Option<String>,

    /// Largest request body [default: 25MiB].
    #[arg(
        long,
        env = "TALLY_HTTP_MAX_BODY_SIZE",
        value_name = "SIZE",
        help_heading = "HTTP"
    )]
    pub http_max_body_size: Option<String>,
    /// Create databases on first write: true or false [default: true].
    #[arg(
        long,
        env = "TALLY_HTTP_AUTO_CREATE_DATABASES",
        value_name = "BOOL",
        help_heading = "HTTP"
    )]
    pub http_auto_create_databases: Option<bool>,
    /// Writes processed at once [default: 16].
    #[arg(
        long,
        env = "TALLY_HTTP_MAX_CONCURRENT_WRITES",
        value_name = "N",
        help_heading = "HTTP"
    )]
    pub http_max_concurrent_writes: Option<u32>,
    /// Longest line protocol line [default: 1MiB].
    #[arg(
        long,
        env = "TALLY_HTTP_MAX_LINE_SIZE",
        value_name = "SIZE",
        help_heading = "HTTP"
    )]
    pub http_max_line_size: Option<String>,

    /// Most series one SELECT may read, 0 = unlimited [default: 100000].
    #[arg(
        long,
        env = "TALLY_QUERY_MAX_SERIES",
        value_name = "N",
        help_heading = "Query"
    )]
    pub query_max_series: Option<u64>,
    /// Most points one SELECT may scan, 0 = unlimited [default: 2000000000].
    #[arg(
        long,
        env = "TALLY_QUERY_MAX_POINTS_SCANNED",
        value_name = "N",
        help_heading = "Query"
    )]
    pub query_max_points_scanned: Option<u64>,
    /// Most rows a statement may return, 0 = unlimited [default: 1000000].
    #[arg(
        long,
        env = "TALLY_QUERY_MAX_RESULT_ROWS",
        value_name = "N",
        help_heading = "Query"
    )]
    pub query_max_result_rows: Option<u64>,
    /// Longest a query may run [default: 60s].
    #[arg(
        long,
        env = "TALLY_QUERY_TIMEOUT",
        value_name = "DURATION",
        help_heading = "Query"
    )]
    pub query_timeout: Option<String>,
    /// Longest query text accepted [default: 1MiB].
    #[arg(
        long,
        env = "TALLY_QUERY_MAX_QUERY_LENGTH",
        value_name = "SIZE",
        help_heading = "Query"
    )]
    pub query_max_query_length: Option<String>,

    /// Most custom dashboards stored [default: 1000].
    #[arg(
        long,
        env = "TALLY_DASHBOARDS_MAX_COUNT",
        value_name = "N",
        help_heading = "Dashboards"
    )]
    pub dashboards_max_count: Option<u32>,
    /// Largest custom dashboard [default: 1MiB].
    #[arg(
        long,
        env = "TALLY_DASHBOARDS_MAX_SIZE",
        value_name = "SIZE",
        help_heading = "Dashboards"
    )]
    pub dashboards_max_size: Option<String>,

    /// Remove a snapshot this long after its last request [default: 1h].
    #[arg(
        long,
        env = "TALLY_SNAPSHOTS_TTL",
        value_name = "DURATION",
        help_heading = "Snapshots"
    )]
    pub snapshots_ttl: Option<String>,

    #[command(flatten)]
    pub samplers: crate::samplers::SamplersCli,

    #[command(flatten)]
    pub alerts: crate::alerts::AlertsCli,

    #[command(flatten)]
    pub reports: crate::reports::config::ReportsCli,
}

fn flag<T>(name: &str, parsed: Result<T, String>) -> anyhow::Result<T> {
    parsed.map_err(|e| anyhow::anyhow!("--{name}: {e}"))
}

impl Config {
    /// Reads the configuration file (if any) and applies the flags.
    pub fn load(cli: &Cli) -> anyhow::Result<Config> {
        let mut config = match &cli.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_flags(cli)?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read configuration file {}: {e}", path.display())
        })?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("configuration file {}: {e}", path.display()))
    }

    fn apply_flags(&mut self, cli: &Cli) -> anyhow::Result<()> {
        if let Some(v) = &cli.listen {
            self.listen = v.clone();
        }
        if let Some(v) = &cli.data_dir {
            self.data_dir = v.clone();
        }
        if let Some(v) = &cli.log_level {
            self.log_level = v.clone();
        }
        if let Some(v) = &cli.log_format {
            self.log_format = v.clone();
        }
        let s = &mut self.storage;
        if let Some(v) = &cli.storage_fsync {
            s.fsync = v.clone();
        }
        if let Some(v) = &cli.storage_wal_rotate_size {
            s.wal_rotate_size = flag("storage-wal-rotate-size", ByteSize::parse(v))?;
        }
        if cli.storage_wal_skip_corrupt {
            s.wal_skip_corrupt = true;
        }
        if let Some(v) = cli.storage_wal_preallocate {
            s.wal_preallocate = v;
        }
        if let Some(v) = &cli.storage_chunk_span {
            s.chunk_span = flag("storage-chunk-span", HumanDuration::parse(v))?;
        }
        if let Some(v) = cli.storage_max_chunk_points {
            s.max_chunk_points = v;
        }
        if let Some(v) = &cli.storage_block_duration {
            s.block_duration = flag("storage-block-duration", HumanDuration::parse(v))?;
        }
        if let Some(v) = &cli.storage_flush_size {
            s.flush_size = flag("storage-flush-size", ByteSize::parse(v))?;
        }
        if let Some(v) = &cli.storage_flush_interval {
            s.flush_interval = flag("storage-flush-interval", HumanDuration::parse(v))?;
        }
        if let Some(v) = &cli.storage_max_head_memory {
            s.max_head_memory = flag("storage-max-head-memory", ByteSize::parse(v))?;
        }
        if let Some(v) = cli.storage_max_series_per_database {
            s.max_series_per_database = v;
        }
        if let Some(v) = &cli.storage_retention_raw {
            s.retention_raw = v.clone();
        }
        if let Some(v) = &cli.storage_retention_tiers {
            s.retention_tiers = v.clone();
        }
        if let Some(v) = cli.storage_compaction {
            s.compaction = v;
        }
        if let Some(v) = &cli.storage_compaction_delay {
            s.compaction_delay = flag("storage-compaction-delay", HumanDuration::parse(v))?;
        }
        if let Some(v) = &cli.storage_compaction_rate {
            s.compaction_rate = flag("storage-compaction-rate", ByteSize::parse(v))?;
        }
        if let Some(v) = cli.storage_compaction_cpu_percent {
            s.compaction_cpu_percent = v;
        }
        if let Some(v) = &cli.storage_min_free_disk {
            s.min_free_disk = flag("storage-min-free-disk", ByteSize::parse(v))?;
        }
        let h = &mut self.http;
        if let Some(v) = &cli.http_max_body_size {
            h.max_body_size = flag("http-max-body-size", ByteSize::parse(v))?;
        }
        if let Some(v) = cli.http_auto_create_databases {
            h.auto_create_databases = v;
        }
        if let Some(v) = cli.http_max_concurrent_writes {
            h.max_concurrent_writes = v;
        }
        if let Some(v) = &cli.http_max_line_size {
            h.max_line_size = flag("http-max-line-size", ByteSize::parse(v))?;
        }
        let q = &mut self.query;
        if let Some(v) = cli.query_max_series {
            q.max_series = v;
        }
        if let Some(v) = cli.query_max_points_scanned {
            q.max_points_scanned = v;
        }
        if let Some(v) = cli.query_max_result_rows {
            q.max_result_rows = v;
        }
        if let Some(v) = &cli.query_timeout {
            q.timeout = flag("query-timeout", HumanDuration::parse(v))?;
        }
        if let Some(v) = &cli.query_max_query_length {
            q.max_query_length = flag("query-max-query-length", ByteSize::parse(v))?;
        }
        if let Some(v) = cli.dashboards_max_count {
            self.dashboards.max_count = v;
        }
        if let Some(v) = &cli.dashboards_max_size {
            self.dashboards.max_size = flag("dashboards-max-size", ByteSize::parse(v))?;
        }
        if let Some(v) = &cli.snapshots_ttl {
            self.snapshots.ttl = flag("snapshots-ttl", HumanDuration::parse(v))?;
        }
        self.samplers.apply_flags(&cli.samplers)?;
        cli.alerts.apply(&mut self.alerts, &mut self.smtp)?;
        self.reports.apply_flags(&cli.reports)?;
        Ok(())
    }

    /// Checks every option and the engine's settings together.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        if !["text", "json"].contains(&self.log_format.as_str()) {
            anyhow::bail!(
                "log_format must be `text` or `json`, not {:?}",
                self.log_format
            );
        }
        if self.http.max_body_size.0 == 0 {
            anyhow::bail!("http.max_body_size must be positive");
        }
        if self.http.max_concurrent_writes == 0 {
            anyhow::bail!("http.max_concurrent_writes must be at least 1");
        }
        if self.query.timeout.0.is_zero() {
            anyhow::bail!("query.timeout must be positive");
        }
        if self.dashboards.max_count == 0 {
            anyhow::bail!("dashboards.max_count must be at least 1");
        }
        if self.dashboards.max_size.0 < 1024 {
            anyhow::bail!("dashboards.max_size must be at least 1KiB");
        }
        if !(1..=100).contains(&self.storage.compaction_cpu_percent) {
            anyhow::bail!(
                "storage.compaction_cpu_percent must be 1 to 100, not {}",
                self.storage.compaction_cpu_percent
            );
        }
        self.samplers.validate()?;
        self.alerts.validate(self.smtp.as_ref())?;
        self.reports.validate()?;
        self.engine_options()?
            .validate()
            .map_err(|e| anyhow::anyhow!("storage: {e}"))?;
        Ok(())
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listen.parse().map_err(|_| {
            anyhow::anyhow!(
                "listen address {:?} is not an IP address and port such as 127.0.0.1:8086",
                self.listen
            )
        })
    }

    pub fn engine_options(&self) -> anyhow::Result<EngineOptions> {
        let s = &self.storage;
        let fsync = FsyncPolicy::parse(&s.fsync).ok_or_else(|| {
            anyhow::anyhow!("storage.fsync must be `always`, `never` or `interval=<duration>` (e.g. interval=1s), not {:?}", s.fsync)
        })?;
        Ok(EngineOptions {
            fsync,
            wal_rotate_bytes: s.wal_rotate_size.0,
            wal_skip_corrupt: s.wal_skip_corrupt,
            wal_preallocate: s.wal_preallocate,
            chunk_span: s.chunk_span.0,
            max_chunk_points: s.max_chunk_points as usize,
            block_duration: s.block_duration.0,
            flush_bytes: s.flush_size.0,
            flush_interval: s.flush_interval.0,
            max_head_bytes: s.max_head_memory.0,
            max_series_per_database: s.max_series_per_database,
            retention: self.retention()?,
            compaction: CompactionOptions {
                enabled: s.compaction,
                delay: s.compaction_delay.0,
                bytes_per_second: s.compaction_rate.0,
                cpu_percent: s.compaction_cpu_percent,
                ..CompactionOptions::default()
            },
            min_free_disk_bytes: s.min_free_disk.0,
            ..EngineOptions::default()
        })
    }

    /// The default retention of databases, from `retention_raw` and `retention_tiers`.
    pub fn retention(&self) -> anyhow::Result<Retention> {
        let s = &self.storage;
        let spec = format!(
            "raw={};{}",
            s.retention_raw.trim(),
            s.retention_tiers.replace(',', ";")
        );
        tally_engine::parse_retention(&spec).map_err(|e| {
            anyhow::anyhow!(
                "storage.retention_raw / retention_tiers: {e} (expected e.g. retention_raw = \"7d\", retention_tiers = \"1m=90d,1h=3y\")"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip_through_toml() {
        let config = Config::default();
        config.validate().unwrap();
        let text = toml::to_string(&config).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn flags_override_the_file_and_bad_values_name_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tally.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\n[storage]\nfsync = \"never\"\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "tallyd",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9999",
        ]);
        let config = Config::load(&cli).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9999");
        assert_eq!(config.storage.fsync, "never");
        let cli = Cli::parse_from(["tallyd", "--storage-flush-size", "12XB"]);
        let err = Config::load(&cli).unwrap_err().to_string();
        assert!(
            err.contains("--storage-flush-size") && err.contains("XB"),
            "{err}"
        );
    }

    #[test]
    fn unknown_options_in_the_file_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tally.toml");
        std::fs::write(&path, "[storage]\nfsynk = \"never\"\n").unwrap();
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("fsynk"), "{err}");
    }
}
