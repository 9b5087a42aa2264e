//! The engine's error type. Every variant carries what an operator needs to act: the file, the
//! byte offset, what was expected and what was found.

use std::io;
use std::path::PathBuf;

use crate::model::FieldType;

/// Errors of the storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("corrupt file {path} at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    #[error(
        "{path} was written by {kind} format version {found}; this tallyd reads up to version {supported}: \
         upgrade Tally or restore the directory from a backup written by this version"
    )]
    UnsupportedVersion {
        path: PathBuf,
        kind: &'static str,
        found: u32,
        supported: u32,
    },

    #[error(
        "data directory {path} is locked by another process ({holder}); stop that process or pass \
         another --data-dir"
    )]
    Locked { path: PathBuf, holder: String },

    #[error("database {name:?} does not exist")]
    DatabaseNotFound { name: String },

    #[error("database {name:?} already exists")]
    DatabaseExists { name: String },

    #[error("invalid database name {name:?}: {reason}")]
    InvalidDatabaseName { name: String, reason: &'static str },

    #[error(
        "the WAL record at byte {offset} of {path} is corrupt ({reason}) and is followed by valid \
         records; refusing to start so that no acknowledged write is dropped silently. Restore the \
         file from a backup, or start with `wal_skip_corrupt = true` (--wal-skip-corrupt) to skip \
         the damaged record and keep the rest"
    )]
    WalCorruptInMiddle {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    #[error(
        "writes are refused: the head holds {head_bytes} bytes, over the limit of {limit} bytes \
         (`max_head_bytes`) while a flush is running; retry after it finishes"
    )]
    MemoryPressure { head_bytes: u64, limit: u64 },

    #[error(
        "writes are refused: the file system holding {path} has less free space than \
         min_free_disk ({floor} bytes); free some space and writes resume by themselves"
    )]
    DiskSpaceLow { path: PathBuf, floor: u64 },

    #[error("the database {name:?} was dropped or the engine is shutting down")]
    Closed { name: String },

    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        option: &'static str,
        reason: String,
    },
}

impl EngineError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> EngineError {
        EngineError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> EngineError {
        EngineError::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }

    /// Whether the error means the disk is full (ENOSPC or EDQUOT): writes are refused until
    /// space returns, nothing is corrupted.
    pub fn is_disk_full(&self) -> bool {
        match self {
            EngineError::DiskSpaceLow { .. } => true,
            EngineError::Io { source, .. } => {
                matches!(
                    source.raw_os_error(),
                    Some(libc::ENOSPC) | Some(libc::EDQUOT)
                )
            }
            _ => false,
        }
    }
}

/// Why the engine refused one point of a batch; the other points of the batch are stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    #[error(
        "field type conflict: field {field:?} of measurement {measurement:?} is {existing}, \
         this write has {attempted}"
    )]
    FieldTypeConflict {
        measurement: String,
        field: String,
        existing: FieldType,
        attempted: FieldType,
    },

    #[error(
        "series limit reached: database {database:?} already holds {limit} series \
         (`max_series_per_database`); this point would create a new one"
    )]
    SeriesLimit { database: String, limit: u64 },

    #[error(
        "point is older than the raw retention of database {database:?} ({retention}) and would be \
         deleted at once; raise the retention to keep it"
    )]
    BeyondRetention { database: String, retention: String },

    #[error("column limit reached: database {database:?} holds {limit} columns")]
    ColumnLimit { database: String, limit: u64 },
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
