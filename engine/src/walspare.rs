//! WAL files made ready before they are needed: a background thread writes the file header and
//! zeros up to the file's length, fsyncs the file, renames it to its WAL name and fsyncs the
//! directory. Appending to such a file overwrites blocks the file system has already allocated
//! and recorded, so the WAL's `fdatasync` writes the data and commits no journal transaction
//! (ext4, XFS): a write's fsync then no longer queues behind a journal commit made by
//! compaction or a flush. Format: `docs/format/wal.md` ("Preallocated files").
//!
//! A spare is only ever used by the writer once its name is durable, so a crash never loses a
//! record to a file that was not yet named; an unfinished spare is a `.tmp` file removed at
//! start, and a finished one that was never used holds no records.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::fsutil;
use crate::wal::{self, FILE_HEADER_LEN};

/// A spare WAL file the writer may switch to.
pub(crate) struct SpareFile {
    pub(crate) seq: u64,
    pub(crate) file: File,
    /// Bytes of the file, all allocated: the header and zeros after it.
    pub(crate) len: u64,
}

enum Phase {
    Writing,
    /// Renamed to its WAL name; the directory fsync is running.
    Naming,
    Ready(SpareFile),
}

#[derive(Default)]
struct Slot {
    /// The sequence number being prepared, if any. A preparer whose number is no longer here
    /// was abandoned and removes its temporary file instead of naming it.
    seq: Option<u64>,
    phase: Option<Phase>,
}

struct Shared {
    slot: Mutex<Slot>,
    named: Condvar,
    closing: AtomicBool,
    /// Bytes of WAL files written zero-filled, since start.
    written: AtomicU64,
}

/// Prepares spare WAL files for one WAL directory, one at a time.
pub(crate) struct Spares {
    dir: PathBuf,
    enabled: bool,
    /// Free space the file system keeps after a spare is written; below it none is prepared.
    min_free_bytes: u64,
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Spares {
    pub(crate) fn new(dir: &Path, enabled: bool, min_free_bytes: u64) -> Spares {
        Spares {
            dir: dir.to_path_buf(),
            enabled,
            min_free_bytes,
            shared: Arc::new(Shared {
                slot: Mutex::new(Slot::default()),
                named: Condvar::new(),
                closing: AtomicBool::new(false),
                written: AtomicU64::new(0),
            }),
            workers: Mutex::new(Vec::new()),
        }
    }

    /// Starts preparing WAL file `seq` of `len` bytes in the background, abandoning any earlier
    /// preparation that was not taken. Returns whether it started (the number is then used).
    pub(crate) fn prepare(&self, seq: u64, len: u64) -> bool {
        if !self.may_prepare(len) || self.shared.closing.load(Ordering::Relaxed) {
            return false;
        }
        {
            let mut slot = self.shared.slot.lock();
            slot.seq = Some(seq);
            slot.phase = Some(Phase::Writing);
        }
        let dir = self.dir.clone();
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("tally-wal-spare".into())
            .spawn(move || prepare_spare(&dir, seq, len, &shared));
        let mut workers = self.workers.lock();
        workers.retain(|w| !w.is_finished());
        match spawned {
            Ok(handle) => workers.push(handle),
            Err(e) => {
                tracing::warn!(error = %e, "could not start a thread to preallocate a WAL file");
                self.abandon(seq);
            }
        }
        true
    }

    /// Whether a file of `len` bytes may be preallocated: the setting is on and the file
    /// system keeps its free-space floor after it.
    pub(crate) fn may_prepare(&self, len: u64) -> bool {
        if !self.enabled {
            return false;
        }
        match fsutil::free_bytes(&self.dir) {
            Ok(free) if free < len.saturating_add(self.min_free_bytes) => {
                tracing::debug!(dir = %self.dir.display(), free, len, "too little free space to preallocate a WAL file");
                false
            }
            _ => true,
        }
    }

    /// The spare, if one is ready; never waits.
    pub(crate) fn take_ready(&self) -> Option<SpareFile> {
        let mut slot = self.shared.slot.lock();
        match slot.phase.take() {
            Some(Phase::Ready(spare)) => {
                slot.seq = None;
                Some(spare)
            }
            other => {
                slot.phase = other;
                None
            }
        }
    }

    /// The spare for a rotation that cannot be put off: one whose name is being made durable is
    /// waited for (a directory fsync); one still being written is abandoned.
    pub(crate) fn take_or_abandon(&self) -> Option<SpareFile> {
        let mut slot = self.shared.slot.lock();
        while matches!(slot.phase, Some(Phase::Naming)) {
            self.shared.named.wait(&mut slot);
        }
        slot.seq = None;
        match slot.phase.take() {
            Some(Phase::Ready(spare)) => Some(spare),
            _ => None,
        }
    }

    /// Counts `len` bytes of a WAL file written zero-filled outside a spare (a database's
    /// first file).
    pub(crate) fn count_written(&self, len: u64) {
        self.shared.written.fetch_add(len, Ordering::Relaxed);
    }

    /// Bytes of WAL files written zero-filled since start.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Waits until no spare is being written or named.
    #[cfg(test)]
    pub(crate) fn wait_settled(&self) {
        let mut slot = self.shared.slot.lock();
        while matches!(slot.phase, Some(Phase::Writing | Phase::Naming)) {
            self.shared
                .named
                .wait_for(&mut slot, std::time::Duration::from_millis(10));
        }
    }

    fn abandon(&self, seq: u64) {
        let mut slot = self.shared.slot.lock();
        if slot.seq == Some(seq) {
            slot.seq = None;
            slot.phase = None;
        }
    }

    /// Stops preparing spares and waits for the thread writing one, if any: the directory
    /// is about to go away, or the database is closing.
    pub(crate) fn stop(&self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        let workers: Vec<_> = self.workers.lock().drain(..).collect();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        self.stop();
    }
}

fn prepare_spare(dir: &Path, seq: u64, len: u64, shared: &Shared) {
    let path = dir.join(wal::wal_file_name(seq));
    let tmp = fsutil::tmp_path(&path);
    let written = write_spare(&tmp, len, &shared.closing);
    if let Ok(Some(_)) = &written {
        shared.written.fetch_add(len, Ordering::Relaxed);
    }
    let mut slot = shared.slot.lock();
    let wanted = slot.seq == Some(seq);
    let file = match written {
        Ok(Some(file)) if wanted => file,
        outcome => {
            if wanted {
                slot.seq = None;
                slot.phase = None;
            }
            drop(slot);
            if let Err(e) = outcome {
                tracing::warn!(file = %tmp.display(), error = %e, "could not preallocate a WAL file; the WAL grows its current file instead");
            }
            let _ = fs::remove_file(&tmp);
            return;
        }
    };
    if let Err(e) = fs::rename(&tmp, &path) {
        slot.seq = None;
        slot.phase = None;
        drop(slot);
        tracing::warn!(file = %path.display(), error = %e, "could not name a preallocated WAL file");
        let _ = fs::remove_file(&tmp);
        return;
    }
    slot.phase = Some(Phase::Naming);
    drop(slot);
    let synced = fsutil::sync_dir(dir);
    let mut slot = shared.slot.lock();
    match synced {
        Ok(()) if slot.seq == Some(seq) => {
            slot.phase = Some(Phase::Ready(SpareFile { seq, file, len }));
        }
        // Abandoned while its name was made durable: it stays, empty, until a flush removes it.
        Ok(()) => {}
        Err(e) => {
            // The file holds no records; replay reads it as empty wherever it ends up.
            tracing::warn!(dir = %dir.display(), error = %e, "could not make a preallocated WAL file's name durable");
            if slot.seq == Some(seq) {
                slot.seq = None;
                slot.phase = None;
            }
        }
    }
    shared.named.notify_all();
}

/// Writes a WAL file header and zeros up to `len` bytes into a new file at `tmp` and fsyncs it;
/// `None` when `stop` was set first.
fn write_spare(tmp: &Path, len: u64, stop: &AtomicBool) -> std::io::Result<Option<File>> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(tmp)?;
    file.write_all(&wal::file_header())?;
    let zeros = len.saturating_sub(FILE_HEADER_LEN as u64);
    if !fsutil::append_zeros_and_sync(&mut file, zeros, true, Some(stop))? {
        return Ok(None);
    }
    Ok(Some(file))
}
