//! The one place where the engine maps files into memory.
//!
//! Everything outside this module sees a [`MappedFile`] as a plain `&[u8]`.
//!
//! The mmap contract the rest of the engine keeps: a mapped file is an immutable segment or
//! index file that Tally wrote completely, fsynced and renamed into place before mapping it; Tally
//! never truncates, rewrites or appends to such a file afterwards (compaction writes new files
//! and unlinks old ones, which leaves existing mappings valid on POSIX systems); and no code
//! writes through a mapping (the map is read-only). What this cannot rule out is another process
//! truncating the file underneath us, which would raise SIGBUS on access: the data directory is
//! locked (see `lock.rs`) and the operations guide tells operators not to edit it.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use crate::error::{EngineError, Result};

/// A read-only memory map of a whole file.
pub(crate) struct MappedFile {
    map: Option<memmap2::Mmap>,
}

impl MappedFile {
    /// Maps `file`, whose path is `path` (for errors). A zero-length file maps to an empty slice
    /// without calling mmap, which would fail on it.
    pub(crate) fn map(file: &File, path: &Path) -> Result<MappedFile> {
        let len = file.metadata().map_err(|e| EngineError::io(path, e))?.len();
        if len == 0 {
            return Ok(MappedFile { map: None });
        }
        #[expect(
            unsafe_code,
            reason = "memmap2::Mmap::map is unsafe because the file could change under the map"
        )]
        // SAFETY: the file is one of Tally's immutable files (see the module comment): it was
        // completely written and fsynced before it was renamed into place, Tally never modifies
        // it again, and the data directory lock keeps other Tally processes away. The map is
        // read-only, so no code can write through it.
        let map = unsafe { memmap2::Mmap::map(file) }.map_err(|e| EngineError::io(path, e))?;
        Ok(MappedFile { map: Some(map) })
    }
}

impl Deref for MappedFile {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.map {
            Some(map) => map,
            None => &[],
        }
    }
}
