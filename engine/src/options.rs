//! Engine settings, with the defaults documented in `docs/configuration.md`.

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
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            fsync: FsyncPolicy::Always,
            wal_rotate_bytes: 64 << 20,
            wal_skip_corrupt: false,
            chunk_span: Duration::from_secs(3600),
            max_chunk_points: 1024,
            block_duration: Duration::from_secs(86_400),
            flush_bytes: 64 << 20,
            flush_interval: Duration::from_secs(600),
            max_head_bytes: 1 << 30,
            max_series_per_database: 1_000_000,
        }
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
        Ok(())
    }
}
