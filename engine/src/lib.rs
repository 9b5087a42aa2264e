//! Tally's storage engine.
//!
//! Writes arrive as a [`PointBatch`] for one database, are appended to that database's
//! write-ahead log, applied to the in-memory head and acknowledged once they are as durable as
//! the configured fsync policy promises. The head seals chunks and flushes them into immutable,
//! memory-mapped segment files; a manifest, replaced atomically, names the live files.
//!
//! Invariants: this crate knows nothing of HTTP, query syntax or async runtimes; input read from
//! disk is never trusted (every decoder checks bounds and reports corruption with file and
//! offset); `unsafe` lives in the `mmap` module alone.

mod codec;
mod model;

pub use model::{
    FieldType, FieldValue, MAX_NAME_BYTES, MAX_STRING_BYTES, MAX_TAGS, PointBatch, PointError,
    PointRef,
};
