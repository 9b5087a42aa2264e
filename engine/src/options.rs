//! Engine settings, with the defaults documented in `docs/configuration.md`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::error::{EngineError, Result};
use crate::wal::FsyncPolicy;

/// Settings of the storage engine.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// When a write is acknowledged (default `always`).
    pub fsync: FsyncPolicy,
    /// Start a new WAL file once the current one reaches this size (default 64 MiB).
    pub wal_rotate_bytes: u64,
    /// Skip corrupt WAL records in the middle of a file at start instead of refusing to start
    /// (default false).
    pub wal_skip_corrupt: bool,
    /// Write each next WAL file, zero-filled, before it is needed, so that a write's fsync
    /// commits no file-system journal transaction (default true; see `docs/storage.md`).
    pub wal_preallocate: bool,
    /// Chunks never cross a multiple of this duration (default 1 h).
    pub chunk_span: Duration,
    /// Most points per chunk (default 1024; at most 65536).
    pub max_chunk_points: usize,
    /// Segment files cover one block of this duration (default 1 day); a multiple of
    /// `chunk_span`.
    pub block_duration: Duration,
    /// Flush when the head holds this many bytes (default 64 MiB).
    pub flush_bytes: u64,
    /// Flush sealed chunks at least this often (default 10 min).
    pub flush_interval: Duration,
    /// Refuse writes (retry later) while the head and the data being flushed hold this many
    /// bytes (default 1 GiB).
    pub max_head_bytes: u64,
    /// Most series per database; 0 means no limit (default 1,000,000).
    pub max_series_per_database: u64,
    /// How long data is kept, raw and in each rollup tier (defaults for every database; a
    /// database may override them).
    pub retention: Retention,
    /// Background compaction, rollups and retention.
    pub compaction: CompactionOptions,
    /// Refuse writes while the file system holding the data directory has less free space
    /// than this (0 turns the check off; default 0, tallyd's default is 1 GiB).
    pub min_free_disk_bytes: u64,
    /// Where "now" comes from (retention, compaction); tests use a manual clock.
    pub clock: Clock,
}

/// How long data is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Raw points; `None` keeps them forever (the engine's default; tallyd's is 7 days).
    pub raw: Option<Duration>,
    /// Rollup tiers, finest first: each keeps count, sum, min, max, first, last and a quantile
    /// sketch per column and bucket of its resolution.
    pub tiers: Vec<Tier>,
}

/// A rollup tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tier {
    pub resolution: Duration,
    /// `None` keeps the tier forever.
    pub retention: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw: None,
            tiers: vec![
                Tier {
                    resolution: Duration::from_secs(60),
                    retention: None,
                },
                Tier {
                    resolution: Duration::from_secs(3600),
                    retention: None,
                },
            ],
        }
    }
}

impl Retention {
    /// The defaults of DESIGN.md and tallyd: raw 7 days, 1 m tier 90 days, 1 h tier 3 years.
    pub fn standard() -> Retention {
        Retention {
            raw: Some(Duration::from_secs(7 * 86_400)),
            tiers: vec![
                Tier {
                    resolution: Duration::from_secs(60),
                    retention: Some(Duration::from_secs(90 * 86_400)),
                },
                Tier {
                    resolution: Duration::from_secs(3600),
                    retention: Some(Duration::from_secs(3 * 365 * 86_400)),
                },
            ],
        }
    }
}

/// Background compaction settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionOptions {
    pub enabled: bool,
    /// How often the background thread looks for work (default 30 s).
    pub check_interval: Duration,
    /// A block is compacted (merged, rolled up) once it ended this long ago (default 10 min),
    /// or earlier when it holds `max_segments_per_block` segments.
    pub delay: Duration,
    pub max_segments_per_block: usize,
    /// Compaction writes at most this many bytes per second, so ingest and queries keep their
    /// latency (default 32 MiB/s; 0 = unthrottled).
    pub bytes_per_second: u64,
    /// The share of one core compaction may keep busy, in percent (1 to 100; default 25):
    /// after each piece of work it sleeps long enough to stay under it, so a busy ingest path
    /// on a small machine is not starved.
    pub cpu_percent: u8,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            enabled: true,
            check_interval: Duration::from_secs(30),
            delay: Duration::from_secs(600),
            max_segments_per_block: 8,
            bytes_per_second: 32 << 20,
            cpu_percent: 25,
        }
    }
}

/// A source of the current time in nanoseconds since the epoch.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum Clock {
    #[default]
    System,
    /// A clock that moves only when told to.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(start_ns: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(start_ns)))
    }

    pub fn now_ns(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Sets a manual clock (no effect on the system clock).
    pub fn set_ns(&self, ns: i64) {
        if let Clock::Manual(t) = self {
            t.store(ns, Ordering::SeqCst);
        }
    }

    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(t) = self {
            t.fetch_add(
                i64::try_from(by.as_nanos()).unwrap_or(i64::MAX),
                Ordering::SeqCst,
            );
        }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            fsync: FsyncPolicy::Always,
            wal_rotate_bytes: 64 << 20,
            wal_preallocate: true,
            wal_skip_corrupt: false,
            chunk_span: Duration::from_secs(3600),
            max_chunk_points: 1024,
            block_duration: Duration::from_secs(86_400),
            flush_bytes: 64 << 20,
            flush_interval: Duration::from_secs(600),
            max_head_bytes: 1 << 30,
            max_series_per_database: 1_000_000,
            retention: Retention::default(),
            compaction: CompactionOptions::default(),
            min_free_disk_bytes: 0,
            clock: Clock::System,
        }
    }
}

impl Retention {
    /// Checks the tiers: resolutions of at least 1 s, increasing, each a multiple of the one
    /// before. (A tier bucket may straddle two blocks: each block then holds a row for its part
    /// of the bucket, and queries merge them.)
    pub fn validate(&self, chunk_span: Duration, block: Duration) -> Result<()> {
        let invalid = |reason: String| EngineError::InvalidOption {
            option: "retention",
            reason,
        };
        let _ = (chunk_span, block);
        let mut previous: Option<Duration> = None;
        for tier in &self.tiers {
            let r = tier.resolution;
            if r < Duration::from_secs(1) {
                return Err(invalid(format!("tier resolution {r:?} is below 1s")));
            }
            if let Some(p) = previous
                && (r <= p || r.as_nanos() % p.as_nanos() != 0)
            {
                return Err(invalid(format!(
                    "tier resolutions must increase, each a multiple of the previous ({p:?} then {r:?})"
                )));
            }
            previous = Some(r);
        }
        if self.tiers.len() > 8 {
            return Err(invalid("at most 8 tiers".into()));
        }
        Ok(())
    }
}

impl EngineOptions {
    pub(crate) fn chunk_span_ns(&self) -> i64 {
        i64::try_from(self.chunk_span.as_nanos()).unwrap_or(i64::MAX)
    }

    pub(crate) fn block_duration_ns(&self) -> i64 {
        i64::try_from(self.block_duration.as_nanos()).unwrap_or(i64::MAX)
    }

    /// Checks the settings against each other and their limits.
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |option: &'static str, reason: String| EngineError::InvalidOption { option, reason };
        let span = self.chunk_span_ns();
        let block = self.block_duration_ns();
        if span < 1_000_000_000 {
            return Err(invalid("chunk_span", "must be at least 1s".into()));
        }
        if block < span || block % span != 0 {
            return Err(invalid(
                "block_duration",
                format!(
                    "must be a multiple of chunk_span ({:?}), got {:?}",
                    self.chunk_span, self.block_duration
                ),
            ));
        }
        if !(2..=crate::codec::MAX_CHUNK_POINTS).contains(&self.max_chunk_points) {
            return Err(invalid(
                "max_chunk_points",
                format!(
                    "must be in 2..={}, got {}",
                    crate::codec::MAX_CHUNK_POINTS,
                    self.max_chunk_points
                ),
            ));
        }
        if self.wal_rotate_bytes < 1 << 16 {
            return Err(invalid(
                "wal_rotate_bytes",
                "must be at least 64 KiB".into(),
            ));
        }
        if self.flush_bytes == 0 || self.max_head_bytes <= self.flush_bytes {
            return Err(invalid(
                "max_head_bytes",
                format!(
                    "must be larger than flush_bytes ({}), got {}",
                    self.flush_bytes, self.max_head_bytes
                ),
            ));
        }
        if self.flush_interval.is_zero() {
            return Err(invalid("flush_interval", "must be positive".into()));
        }
        self.retention
            .validate(self.chunk_span, self.block_duration)?;
        if self.compaction.check_interval.is_zero() || self.compaction.max_segments_per_block < 2 {
            return Err(invalid(
                "compaction",
                "check_interval must be positive and max_segments_per_block at least 2".into(),
            ));
        }
        Ok(())
    }
}
