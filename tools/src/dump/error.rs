//! The errors of `tally-dump`, and the exit code each maps to.

use std::path::{Path, PathBuf};

use tally_engine::EngineError;

/// Exit codes (documented in `tally-dump --help` and `docs/backup.md`).
pub const EXIT_OK: u8 = 0;
/// Problems found (verify), a damaged backup refused (restore), lines rejected (import), or
/// the operation failed.
pub const EXIT_FAILED: u8 = 1;
/// The command line is wrong.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DumpError {
    /// A wrong command line: exit code 2.
    #[error("{0}")]
    Usage(String),

    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Engine(#[from] EngineError),

    #[error("{url}: {reason}")]
    Http { url: String, reason: String },

    #[error("backup {path}: {reason}")]
    Backup { path: PathBuf, reason: String },

    /// Verification found problems; the report was printed.
    #[error("{0}")]
    Problems(String),

    #[error("{0}")]
    Failed(String),
}

impl DumpError {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> DumpError {
        DumpError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub(crate) fn backup(path: impl AsRef<Path>, reason: impl Into<String>) -> DumpError {
        DumpError::Backup {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    pub(crate) fn http(url: impl Into<String>, reason: impl Into<String>) -> DumpError {
        DumpError::Http {
            url: url.into(),
            reason: reason.into(),
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            DumpError::Usage(_) => EXIT_USAGE,
            _ => EXIT_FAILED,
        }
    }
}
