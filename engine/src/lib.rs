//! Tally's storage engine.
//!
//! Writes arrive as a [`PointBatch`] for one database, are appended to that database's
//! write-ahead log, applied to the in-memory head and acknowledged once they are as durable as
//! the configured fsync policy promises. The head seals chunks and flushes them into immutable,
//! memory-mapped segment files; a manifest, replaced atomically, names the live files.
//!
//! Start reading at [`Engine`] and [`Database`]: `Database::write` is the write path,
//! `Database::select` and `Database::read` the read path.
//!
//! Invariants: this crate knows nothing of HTTP, query syntax or async runtimes; input read from
//! disk is never trusted (every decoder checks bounds and reports corruption with file and
//! offset); `unsafe` lives in the `mmap` module and in `fsutil` (directory lock, free space,
//! write-out) alone: each a thin call the standard library lacks.

mod bytes;
mod catalog;
mod chunk;
#[doc(hidden)]
pub mod codec;
mod compaction;
mod database;
mod engine;
mod error;
mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
mod head;
mod index_file;
mod manifest;
mod mmap;
mod model;
#[doc(hidden)]
pub mod offline;
mod options;
mod read;
mod rollup;
mod segment;
mod sketch;
mod wal;
mod walrecord;
mod walspare;

pub use catalog::TagMatcher;
pub use chunk::{ChunkStats, ColumnValues, ValueStats};
pub use compaction::{
    CompactionRecord, DeleteReport, RetentionReport, format_duration, format_retention,
    parse_retention,
};
pub use database::{Database, DatabaseStats, FlushReport, Rejection, SnapshotFiles, WriteSummary};
pub use engine::{Engine, validate_database_name};
pub use error::{EngineError, Result, WriteError};
pub use model::{
    FieldType, FieldValue, MAX_NAME_BYTES, MAX_STRING_BYTES, MAX_TAGS, PointBatch, PointError,
    PointRef,
};
pub use options::{Clock, CompactionOptions, EngineOptions, Retention, Tier};
pub use read::{ColumnInfo, Piece, ReadView, TagFilter, TierUse};
pub use rollup::{PendingSketches, RollupParts, RollupRows, StoredSketches};
pub use sketch::Sketch;
pub use wal::FsyncPolicy;
