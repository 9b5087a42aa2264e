//! The write-ahead log: numbered files of length- and crc-framed records, appended by writers,
//! fsynced by group commit, replayed at start. Format: `docs/format/wal.md`.
//!
//! A record is acknowledged only when it is as durable as the [`FsyncPolicy`] promises. Under
//! `always`, concurrent writers share fsyncs: the first writer to wait becomes the leader, syncs
//! everything written so far and wakes the others whose records that sync covered.
//!
//! Replay distinguishes a torn tail (the process died while appending: the last record of a
//! file is short or fails its crc and nothing valid follows it; such a record was never
//! acknowledged, so it is truncated with a log line) from corruption in the middle (a damaged
//! record followed by valid ones: start-up stops with the file and offset unless the operator
//! asked to skip damaged records).

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{EngineError, Result};
use crate::fsutil;
use crate::walspare::{SpareFile, Spares};

pub(crate) const WAL_MAGIC: &[u8; 8] = b"TALLYWAL";
pub(crate) const WAL_VERSION: u32 = 1;
pub(crate) const FILE_HEADER_LEN: usize = 16;
pub(crate) const FRAME_HEADER_LEN: usize = 12;
/// The largest record payload; a batch that would encode larger is split by the writer.
pub(crate) const MAX_RECORD_BYTES: usize = 256 << 20;
/// The length of the first WAL file a database opens with, written zero-filled before it is
/// used (at most the rotation size).
const FIRST_FILE_BYTES: u64 = 8 << 20;
/// The smallest spare WAL file; each is sized after what the previous files took (up to the
/// rotation size).
const MIN_SPARE_BYTES: u64 = 1 << 20;
/// Damage that contains a zero-filled, aligned sector of this size is an unwritten stretch of a
/// preallocated file.
const SECTOR: usize = 512;

/// How the WAL of one database is kept.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WalSettings {
    pub(crate) policy: FsyncPolicy,
    pub(crate) rotate_bytes: u64,
    /// Write the next file, zero-filled, before it is needed (see `walspare`).
    pub(crate) preallocate: bool,
    /// Free space a preallocated file must leave on the file system.
    pub(crate) min_free_bytes: u64,
}

/// When a write is made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsyncPolicy {
    /// Acknowledge a write only after the WAL is fsynced past it (concurrent writers share
    /// fsyncs). An acknowledged write survives power loss.
    Always,
    /// Acknowledge after the write reaches the OS; fsync every `Duration`. A crash of the
    /// process loses nothing; power loss can lose up to one interval of acknowledged writes.
    Interval(Duration),
    /// Never fsync the WAL (the OS writes it back when it likes). A crash of the process loses
    /// nothing; power loss can lose any amount of recent writes.
    Never,
}

impl FsyncPolicy {
    /// Parses `always`, `never` or `interval=<duration>` (durations like `100ms`, `1s`, `2m`).
    pub fn parse(text: &str) -> Option<FsyncPolicy> {
        let text = text.trim();
        match text {
            "always" => Some(FsyncPolicy::Always),
            "never" => Some(FsyncPolicy::Never),
            _ => {
                let d = text.strip_prefix("interval=")?;
                let d = parse_duration(d)?;
                if d.is_zero() {
                    None
                } else {
                    Some(FsyncPolicy::Interval(d))
                }
            }
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::Never => f.write_str("never"),
            FsyncPolicy::Interval(d) => write!(f, "interval={}ms", d.as_millis()),
        }
    }
}

/// Parses a duration such as `250ms`, `10s`, `5m`, `2h`, `7d`, `2w`, `3y` (a year is 365 days).
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        "w" => n.checked_mul(7 * 86_400_000)?,
        "y" => n.checked_mul(365 * 86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

pub(crate) fn wal_file_name(seq: u64) -> String {
    format!("{seq:020}.wal")
}

fn parse_wal_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 20 {
        return None;
    }
    stem.parse().ok()
}

/// Lists the WAL files in `dir` as (sequence, path), sorted by sequence.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut files = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(EngineError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(dir, e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_wal_file_name) {
            files.push((seq, entry.path()));
        }
    }
    files.sort_by_key(|(seq, _)| *seq);
    Ok(files)
}

fn frame_header(payload: &[u8]) -> [u8; FRAME_HEADER_LEN] {
    let mut header = [0u8; FRAME_HEADER_LEN];
    header[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    header[4..8].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let header_crc = crc32fast::hash(&header[0..8]);
    header[8..12].copy_from_slice(&header_crc.to_le_bytes());
    header
}

pub(crate) fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut header = [0u8; FILE_HEADER_LEN];
    header[0..8].copy_from_slice(WAL_MAGIC);
    header[8..12].copy_from_slice(&WAL_VERSION.to_le_bytes());
    header
}

struct WriterState {
    dir: PathBuf,
    file: File,
    /// A second handle on the current file, shared with the sync leader so that fsync runs
    /// without the writer lock.
    sync_handle: Arc<File>,
    seq: u64,
    /// Bytes in the current file.
    size: u64,
    /// Bytes of the current file that were allocated and zero-filled before use; appends
    /// within them need no metadata update.
    prealloc_end: u64,
    /// The lowest WAL sequence number not yet used by a file or a spare.
    next_seq: u64,
    /// Once the current file holds this many bytes, the next spare is started.
    spare_due: u64,
    /// Bytes appended past the preallocated part of their file, since open.
    grown_bytes: u64,
    /// The length of that spare.
    spare_len: u64,
    /// Bytes appended since the WAL was opened, over all files: the log sequence number.
    lsn: u64,
    rotate_bytes: u64,
    /// Set when a write or fsync failed in a way that leaves the file's state unknown; every
    /// later append fails until restart.
    broken: Option<String>,
}

struct SyncState {
    synced_lsn: u64,
    syncing: bool,
    failed: Option<String>,
}

/// The WAL of one database, open for appending.
pub(crate) struct Wal {
    writer: Mutex<WriterState>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    policy: FsyncPolicy,
    spares: Spares,
}

/// A locked WAL: appends made through it are ordered, and the caller may apply them to the
/// head before releasing the lock, so the head sees writes in WAL order.
pub(crate) struct WalGuard<'a> {
    state: MutexGuard<'a, WriterState>,
    wal: &'a Wal,
}

impl Wal {
    /// Creates a new WAL file numbered `seq` in `dir` and opens it for appending.
    pub(crate) fn create(dir: &Path, seq: u64, settings: WalSettings) -> Result<Wal> {
        fsutil::create_dir_durable(dir)?;
        let spares = Spares::new(dir, settings.preallocate, settings.min_free_bytes);
        let first_len = match FIRST_FILE_BYTES.min(settings.rotate_bytes) {
            len if spares.may_prepare(len) => len,
            _ => FILE_HEADER_LEN as u64,
        };
        let (file, sync_handle) = create_file(dir, seq, first_len)?;
        if first_len > FILE_HEADER_LEN as u64 {
            spares.count_written(first_len);
        }
        let (spare_due, spare_len) = spare_plan(first_len, 0, settings.rotate_bytes);
        Ok(Wal {
            writer: Mutex::new(WriterState {
                dir: dir.to_path_buf(),
                file,
                sync_handle,
                seq,
                size: FILE_HEADER_LEN as u64,
                prealloc_end: first_len,
                next_seq: seq + 1,
                spare_due,
                grown_bytes: 0,
                spare_len,
                lsn: 0,
                rotate_bytes: settings.rotate_bytes,
                broken: None,
            }),
            sync: Mutex::new(SyncState {
                synced_lsn: 0,
                syncing: false,
                failed: None,
            }),
            synced: Condvar::new(),
            policy: settings.policy,
            spares,
        })
    }

    pub(crate) fn lock(&self) -> WalGuard<'_> {
        WalGuard {
            state: self.writer.lock(),
            wal: self,
        }
    }

    /// Waits until everything up to `lsn` is as durable as the policy promises.
    pub(crate) fn wait_durable(&self, lsn: u64) -> Result<()> {
        if self.policy != FsyncPolicy::Always {
            return Ok(());
        }
        let mut sync = self.sync.lock();
        loop {
            if sync.synced_lsn >= lsn {
                return Ok(());
            }
            if let Some(reason) = &sync.failed {
                return Err(wal_broken(reason));
            }
            if sync.syncing {
                self.synced.wait(&mut sync);
                continue;
            }
            sync.syncing = true;
            drop(sync);
            let result = self.sync_current();
            sync = self.sync.lock();
            sync.syncing = false;
            match result {
                Ok(target) => sync.synced_lsn = sync.synced_lsn.max(target),
                Err(e) => sync.failed = Some(e.to_string()),
            }
            self.synced.notify_all();
        }
    }

    /// Fsyncs everything written so far; returns the lsn it covers. Used by the group-commit
    /// leader and by the interval syncer.
    pub(crate) fn sync_current(&self) -> Result<u64> {
        let (handle, target, path) = {
            let state = self.writer.lock();
            (
                state.sync_handle.clone(),
                state.lsn,
                state.dir.join(wal_file_name(state.seq)),
            )
        };
        handle.sync_data().map_err(|e| EngineError::io(path, e))?;
        Ok(target)
    }

    /// Fsyncs if the policy is not `never`; the interval syncer calls this.
    pub(crate) fn sync_for_interval(&self) -> Result<()> {
        if self.policy == FsyncPolicy::Never {
            return Ok(());
        }
        let target = self.sync_current()?;
        let mut sync = self.sync.lock();
        sync.synced_lsn = sync.synced_lsn.max(target);
        Ok(())
    }

    /// Stops preparing spare files and gives back the space preallocation holds: a ready
    /// spare (it holds no records) is deleted and the current file is cut back to its records.
    pub(crate) fn release_preallocated(&self) {
        self.spares.stop();
        let mut state = self.writer.lock();
        if let Some(spare) = self.spares.take_ready() {
            let path = state.dir.join(wal_file_name(spare.seq));
            drop(spare);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(file = %path.display(), error = %e, "could not remove an unused WAL file");
            }
        }
        if state.prealloc_end > state.size && state.broken.is_none() {
            let path = state.dir.join(wal_file_name(state.seq));
            let size = state.size;
            let cut = state.file.set_len(size).and_then(|()| {
                if self.policy == FsyncPolicy::Never {
                    Ok(())
                } else {
                    state.file.sync_all()
                }
            });
            match cut {
                Ok(()) => state.prealloc_end = size,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "could not cut a WAL file back to its records")
                }
            }
        }
    }

    /// Bytes appended since open (all files).
    pub(crate) fn lsn(&self) -> u64 {
        self.writer.lock().lsn
    }

    /// Bytes written zero-filled ahead of use since open, and bytes appended past the
    /// preallocated part of their file (each fsync of those commits the file-system journal).
    pub(crate) fn preallocation_bytes(&self) -> (u64, u64) {
        (self.spares.bytes_written(), self.writer.lock().grown_bytes)
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.release_preallocated();
    }
}

fn wal_broken(reason: &str) -> EngineError {
    EngineError::Io {
        path: PathBuf::from("wal"),
        source: std::io::Error::other(format!(
            "the WAL is unusable after an earlier failure ({reason}); restart tallyd to recover"
        )),
    }
}

/// When to start the next spare and how long to make it, for a file preallocated to `len`
/// bytes (the header alone when it was not) that follows one closed at `closed_size` bytes.
/// A preallocated file asks for a spare twice its length once it is half full; a plain file
/// asks at once for one twice what the closed file took.
fn spare_plan(len: u64, closed_size: u64, rotate_bytes: u64) -> (u64, u64) {
    let floor = MIN_SPARE_BYTES.min(rotate_bytes);
    if len > FILE_HEADER_LEN as u64 {
        (len / 2, len.saturating_mul(2).clamp(floor, rotate_bytes))
    } else {
        (0, closed_size.saturating_mul(2).clamp(floor, rotate_bytes))
    }
}

/// Creates WAL file `seq`, zero-filled to `len` bytes when that is more than its header.
fn create_file(dir: &Path, seq: u64, len: u64) -> Result<(File, Arc<File>)> {
    let path = dir.join(wal_file_name(seq));
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(|e| EngineError::io(&path, e))?;
    file.write_all(&file_header())
        .map_err(|e| EngineError::io(&path, e))?;
    let zeros = len.saturating_sub(FILE_HEADER_LEN as u64);
    fsutil::append_zeros_and_sync(&mut file, zeros, false, None)
        .map_err(|e| EngineError::io(&path, e))?;
    file.seek(SeekFrom::Start(FILE_HEADER_LEN as u64))
        .map_err(|e| EngineError::io(&path, e))?;
    fsutil::sync_dir(dir)?;
    let handle = file.try_clone().map_err(|e| EngineError::io(&path, e))?;
    Ok((file, Arc::new(handle)))
}

impl WalGuard<'_> {
    /// Appends one record; returns the lsn just past it, to pass to [`Wal::wait_durable`].
    /// A failed write is rolled back (the file is truncated to its previous length) so a later
    /// append after, say, a full disk frees up does not follow a half-written record.
    pub(crate) fn append(&mut self, payload: &[u8]) -> Result<u64> {
        let state = &mut *self.state;
        if let Some(reason) = &state.broken {
            return Err(wal_broken(reason));
        }
        if payload.len() > MAX_RECORD_BYTES {
            return Err(EngineError::InvalidOption {
                option: "batch size",
                reason: format!(
                    "a WAL record of {} bytes exceeds the limit of {MAX_RECORD_BYTES} bytes",
                    payload.len()
                ),
            });
        }
        let n = (FRAME_HEADER_LEN + payload.len()) as u64;
        if state.size >= state.rotate_bytes {
            self.rotate()?;
        } else if state.size + n > state.prealloc_end
            && let Some(spare) = self.wal.spares.take_ready()
        {
            // The current file would grow: move on to the ready spare.
            self.switch_file(Some(spare))?;
        }
        let state = &mut *self.state;
        let header = frame_header(payload);
        let path = state.dir.join(wal_file_name(state.seq));
        let result = state
            .file
            .write_all(&header)
            .and_then(|()| state.file.write_all(payload));
        if let Err(e) = result {
            let rollback = state
                .file
                .set_len(state.size)
                .and_then(|()| state.file.seek(SeekFrom::Start(state.size)).map(|_| ()));
            if let Err(rollback_error) = rollback {
                state.broken = Some(format!(
                    "write failed ({e}) and truncating back failed ({rollback_error})"
                ));
            }
            state.prealloc_end = state.prealloc_end.min(state.size);
            return Err(EngineError::io(path, e));
        }
        state.grown_bytes += (state.size + n).saturating_sub(state.size.max(state.prealloc_end));
        state.size += n;
        state.lsn += n;
        if state.size >= state.spare_due {
            state.spare_due = u64::MAX;
            if self.wal.spares.prepare(state.next_seq, state.spare_len) {
                state.next_seq += 1;
            }
        }
        Ok(state.lsn)
    }

    /// Closes the current file (fsynced, so everything before it is durable) and starts the
    /// next one: the spare if one is ready, else a new file. Returns the sequence number of the
    /// new file.
    pub(crate) fn rotate(&mut self) -> Result<u64> {
        let spare = self.wal.spares.take_or_abandon();
        self.switch_file(spare)
    }

    /// Moves appends on to `spare` or, without one, a new plain file (creating a zero-filled
    /// one here would hold up every writer).
    fn switch_file(&mut self, spare: Option<SpareFile>) -> Result<u64> {
        let state = &mut *self.state;
        if let Some(reason) = &state.broken {
            return Err(wal_broken(reason));
        }
        let path = state.dir.join(wal_file_name(state.seq));
        if self.wal.policy != FsyncPolicy::Never
            && let Err(e) = state.file.sync_data()
        {
            state.broken = Some(format!("fsync of {} failed: {e}", path.display()));
            return Err(EngineError::io(path, e));
        }
        let (file, handle, seq, prealloc_end) = match spare {
            Some(spare) => {
                let spare_path = state.dir.join(wal_file_name(spare.seq));
                let io = |e| EngineError::io(&spare_path, e);
                let handle = spare.file.try_clone().map_err(io)?;
                let mut file = spare.file;
                file.seek(SeekFrom::Start(FILE_HEADER_LEN as u64))
                    .map_err(io)?;
                (file, Arc::new(handle), spare.seq, spare.len)
            }
            None => {
                let len = FILE_HEADER_LEN as u64;
                let (file, handle) = create_file(&state.dir, state.next_seq, len)?;
                (file, handle, state.next_seq, len)
            }
        };
        let closed_size = state.size;
        let closed = std::mem::replace(&mut state.file, file);
        if state.prealloc_end > closed_size {
            // The closed file's unused zeros are given back (it stays until a flush deletes
            // it, and snapshots link it); the cut needs no fsync, replay reads either length.
            if let Err(e) = closed.set_len(closed_size) {
                tracing::debug!(file = %path.display(), error = %e, "could not cut a closed WAL file back to its records");
            }
        }
        state.sync_handle = handle;
        state.seq = seq;
        state.next_seq = state.next_seq.max(seq + 1);
        state.size = FILE_HEADER_LEN as u64;
        state.prealloc_end = prealloc_end;
        if self.wal.policy != FsyncPolicy::Never {
            let mut sync = self.wal.sync.lock();
            sync.synced_lsn = sync.synced_lsn.max(state.lsn);
        }
        (state.spare_due, state.spare_len) =
            spare_plan(prealloc_end, closed_size, state.rotate_bytes);
        Ok(seq)
    }
}

/// One record met during replay.
pub(crate) struct ReplayedRecord<'a> {
    pub(crate) payload: &'a [u8],
    pub(crate) path: &'a Path,
    pub(crate) offset: u64,
}

/// What replay found besides the records.
#[derive(Debug, Default)]
pub(crate) struct ReplayReport {
    pub(crate) files: usize,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    /// The highest sequence number seen, if any file was found.
    pub(crate) last_seq: Option<u64>,
    /// Torn tails that were truncated: (file, offset, reason).
    pub(crate) truncated: Vec<(PathBuf, u64, String)>,
    /// Damaged records skipped because the operator allowed it: (file, offset, reason).
    pub(crate) skipped: Vec<(PathBuf, u64, String)>,
}

/// Replays every record of the WAL files in `dir` numbered `first_seq` or higher, in order.
/// Torn tails are truncated on disk so the next start sees a clean file.
pub(crate) fn replay(
    dir: &Path,
    first_seq: u64,
    skip_corrupt: bool,
    mut apply: impl FnMut(ReplayedRecord<'_>) -> Result<()>,
) -> Result<ReplayReport> {
    let mut report = ReplayReport::default();
    for (seq, path) in list_files(dir)? {
        if seq < first_seq {
            continue;
        }
        report.files += 1;
        report.last_seq = Some(seq);
        let data = fs::read(&path).map_err(|e| EngineError::io(&path, e))?;
        let torn_before = report.truncated.len();
        let valid_len = replay_file(&path, &data, skip_corrupt, &mut report, &mut apply)?;
        // A preallocated file's zero-filled end is left in place; a torn tail is cut off.
        if report.truncated.len() > torn_before && (valid_len as usize) < data.len() {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| EngineError::io(&path, e))?;
            file.set_len(valid_len)
                .map_err(|e| EngineError::io(&path, e))?;
            file.sync_all().map_err(|e| EngineError::io(&path, e))?;
        }
    }
    Ok(report)
}

pub(crate) fn replay_file(
    path: &Path,
    data: &[u8],
    skip_corrupt: bool,
    report: &mut ReplayReport,
    apply: &mut impl FnMut(ReplayedRecord<'_>) -> Result<()>,
) -> Result<u64> {
    if data.len() < FILE_HEADER_LEN {
        // The process died while creating the file: nothing in it was ever acknowledged.
        report
            .truncated
            .push((path.to_path_buf(), 0, "file header is incomplete".into()));
        tracing::warn!(file = %path.display(), "WAL file header is incomplete; truncating it");
        return Ok(0);
    }
    if &data[0..8] != WAL_MAGIC {
        return Err(EngineError::corrupt(
            path,
            0,
            "not a Tally WAL file (bad magic)",
        ));
    }
    let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
    if version != WAL_VERSION {
        return Err(EngineError::UnsupportedVersion {
            path: path.to_path_buf(),
            kind: "WAL",
            found: version,
            supported: WAL_VERSION,
        });
    }
    if data[12..16] != [0, 0, 0, 0] {
        return Err(EngineError::corrupt(
            path,
            12,
            "reserved WAL header bytes are not zero",
        ));
    }
    // A frame header is never all zeros, so no frame starts in the zeros a preallocated file
    // ends with: where they begin, the file ends cleanly.
    let data_end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut pos = FILE_HEADER_LEN;
    while pos < data_end {
        match check_frame(data, pos) {
            Ok(payload_len) => {
                let start = pos + FRAME_HEADER_LEN;
                apply(ReplayedRecord {
                    payload: &data[start..start + payload_len],
                    path,
                    offset: pos as u64,
                })?;
                report.records += 1;
                report.bytes += (FRAME_HEADER_LEN + payload_len) as u64;
                pos = start + payload_len;
            }
            Err(reason) => match find_next_frame(data, pos + 1, data_end) {
                Some(next) if has_zero_sector(data, pos, next) => {
                    tracing::warn!(
                        file = %path.display(), offset = pos, next_record = next, %reason,
                        "WAL has a stretch that was never written, with records after it: the \
                         machine stopped while they were being written, before the fsync that \
                         would have acknowledged them. Truncating there."
                    );
                    let reason = format!(
                        "{reason}; unwritten (zero) sectors before the record at offset {next}"
                    );
                    report
                        .truncated
                        .push((path.to_path_buf(), pos as u64, reason));
                    return Ok(pos as u64);
                }
                None => {
                    tracing::warn!(
                        file = %path.display(), offset = pos, %reason,
                        "WAL ends with a torn record (the process stopped mid-write); \
                         truncating it. It was never acknowledged."
                    );
                    report
                        .truncated
                        .push((path.to_path_buf(), pos as u64, reason));
                    return Ok(pos as u64);
                }
                Some(next) if skip_corrupt => {
                    tracing::error!(
                        file = %path.display(), offset = pos, skipped_bytes = next - pos, %reason,
                        "skipping a corrupt WAL record as wal_skip_corrupt allows"
                    );
                    report
                        .skipped
                        .push((path.to_path_buf(), pos as u64, reason));
                    pos = next;
                }
                Some(_) => {
                    return Err(EngineError::WalCorruptInMiddle {
                        path: path.to_path_buf(),
                        offset: pos as u64,
                        reason,
                    });
                }
            },
        }
    }
    Ok(pos as u64)
}

/// Checks the frame at `pos`; returns its payload length.
fn check_frame(data: &[u8], pos: usize) -> std::result::Result<usize, String> {
    let Some(header) = data.get(pos..pos + FRAME_HEADER_LEN) else {
        return Err(format!(
            "record header needs {FRAME_HEADER_LEN} bytes, {} remain",
            data.len() - pos
        ));
    };
    let header_crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if crc32fast::hash(&header[0..8]) != header_crc {
        return Err("record header checksum mismatch".into());
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_RECORD_BYTES {
        return Err(format!(
            "record length {len} exceeds the limit {MAX_RECORD_BYTES}"
        ));
    }
    let start = pos + FRAME_HEADER_LEN;
    let Some(payload) = data.get(start..start + len) else {
        return Err(format!(
            "record of {len} bytes runs past the end of the file"
        ));
    };
    let payload_crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if crc32fast::hash(payload) != payload_crc {
        return Err("record checksum mismatch".into());
    }
    Ok(len)
}

/// The offset of the first valid frame at or after `from` and before `data_end` (where the
/// file's zero-filled end begins), if any. The header crc makes this scan cheap: a random
/// position passes it with probability 2^-32.
fn find_next_frame(data: &[u8], from: usize, data_end: usize) -> Option<usize> {
    let end = data_end.min(data.len().saturating_sub(FRAME_HEADER_LEN - 1));
    (from..end).find(|&pos| check_frame(data, pos).is_ok())
}

/// Whether the damage `data[from..to]` (a bad frame at `from`, the next valid one at `to`)
/// holds a sector of a preallocated file that never reached the disk: zeros from `from` to the
/// end of its sector, or a whole aligned sector of zeros further on. A disk writes a sector
/// whole or not at all, and the writes after the last fsync may reach it in any order, so
/// such a gap ends the log. Damage by the disk or by hand rarely zeroes a sector.
fn has_zero_sector(data: &[u8], from: usize, to: usize) -> bool {
    let zero = |range: std::ops::Range<usize>| data[range].iter().all(|&b| b == 0);
    let first_end = (from / SECTOR + 1) * SECTOR;
    if first_end > to {
        return false;
    }
    zero(from..first_end)
        || (first_end..to)
            .step_by(SECTOR)
            .take_while(|&start| start + SECTOR <= to)
            .any(|start| zero(start..start + SECTOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(rotate_bytes: u64, preallocate: bool) -> WalSettings {
        WalSettings {
            policy: FsyncPolicy::Always,
            rotate_bytes,
            preallocate,
            min_free_bytes: 0,
        }
    }

    fn records(dir: &Path, skip: bool) -> Result<(Vec<Vec<u8>>, ReplayReport)> {
        let mut out = Vec::new();
        let report = replay(dir, 0, skip, |r| {
            out.push(r.payload.to_vec());
            Ok(())
        })?;
        Ok((out, report))
    }

    fn write_records(dir: &Path, payloads: &[&[u8]], rotate_bytes: u64) {
        let wal = Wal::create(dir, 1, settings(rotate_bytes, false)).unwrap();
        for p in payloads {
            let lsn = wal.lock().append(p).unwrap();
            wal.wait_durable(lsn).unwrap();
        }
    }

    #[test]
    fn records_replay_in_order_across_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let payloads: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 100 + i as usize]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        write_records(dir.path(), &refs, 1000);
        let (got, report) = records(dir.path(), false).unwrap();
        assert_eq!(got, payloads);
        assert!(
            report.files > 3,
            "expected rotation, got {} files",
            report.files
        );
        assert!(report.truncated.is_empty());
    }

    #[test]
    fn wal_replay_truncates_a_torn_last_record() {
        let dir = tempfile::tempdir().unwrap();
        write_records(dir.path(), &[b"first", b"second", b"third record"], 1 << 20);
        let path = dir.path().join(wal_file_name(1));
        let len = fs::metadata(&path).unwrap().len();
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 3).unwrap();
        let (got, report) = records(dir.path(), false).unwrap();
        assert_eq!(got, vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(report.truncated.len(), 1);
        // The file was cut back to the last good record, so a second replay is clean.
        let (again, report) = records(dir.path(), false).unwrap();
        assert_eq!(again.len(), 2);
        assert!(report.truncated.is_empty());
    }

    #[test]
    fn wal_replay_stops_at_corruption_in_the_middle_with_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        write_records(dir.path(), &[b"first", b"second", b"third"], 1 << 20);
        let path = dir.path().join(wal_file_name(1));
        let mut data = fs::read(&path).unwrap();
        let second_offset = FILE_HEADER_LEN + FRAME_HEADER_LEN + 5;
        data[second_offset + FRAME_HEADER_LEN + 1] ^= 0x40;
        fs::write(&path, &data).unwrap();
        match records(dir.path(), false) {
            Err(EngineError::WalCorruptInMiddle {
                path: p, offset, ..
            }) => {
                assert_eq!(p, path);
                assert_eq!(offset, second_offset as u64);
            }
            other => panic!("expected WalCorruptInMiddle, got {:?}", other.map(|r| r.0)),
        }
        let (got, report) = records(dir.path(), true).unwrap();
        assert_eq!(got, vec![b"first".to_vec(), b"third".to_vec()]);
        assert_eq!(report.skipped.len(), 1);
    }

    #[test]
    fn records_replay_in_order_across_preallocated_files() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, settings(4096, true)).unwrap();
        let mut payloads = Vec::new();
        for i in 0..200u32 {
            // Every other record waits for the spare, so both ways of moving on are taken:
            // to a ready spare, and past an unfinished one to a new file.
            if i % 2 == 0 {
                wal.spares.wait_settled();
            }
            let payload = vec![(i % 251) as u8; 50 + (i as usize * 7) % 300];
            let lsn = wal.lock().append(&payload).unwrap();
            wal.wait_durable(lsn).unwrap();
            payloads.push(payload);
        }
        wal.spares.wait_settled();
        let sizes = |dir: &Path| -> Vec<u64> {
            list_files(dir)
                .unwrap()
                .iter()
                .map(|(_, p)| fs::metadata(p).unwrap().len())
                .collect()
        };
        // A file left for a ready spare is cut back to its records, short of 4096 bytes; a
        // plain one grows to 4096 or past before it rotates.
        let before = sizes(dir.path());
        let left_for_a_spare = before.iter().filter(|&&len| len < 4096).count();
        assert!(
            left_for_a_spare >= 8,
            "{left_for_a_spare} files left for a spare: {before:?}"
        );
        // The process dies: no clean close cuts the last file back.
        std::mem::forget(wal);
        let (got, report) = records(dir.path(), false).unwrap();
        assert_eq!(got, payloads);
        assert!(report.truncated.is_empty(), "{:?}", report.truncated);
        assert_eq!(
            sizes(dir.path()),
            before,
            "replay must leave zero-filled ends in place"
        );
    }

    #[test]
    fn a_clean_close_gives_back_the_preallocated_space() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, settings(1 << 20, true)).unwrap();
        let payload = vec![7u8; 100_000];
        for _ in 0..6 {
            let lsn = wal.lock().append(&payload).unwrap();
            wal.wait_durable(lsn).unwrap();
        }
        // Past half of the first file: a spare is on its way.
        wal.spares.wait_settled();
        assert_eq!(list_files(dir.path()).unwrap().len(), 2);
        drop(wal);
        let files = list_files(dir.path()).unwrap();
        assert_eq!(files.len(), 1, "the unused spare is deleted: {files:?}");
        let records_len = FILE_HEADER_LEN + 6 * (FRAME_HEADER_LEN + payload.len());
        assert_eq!(fs::metadata(&files[0].1).unwrap().len(), records_len as u64);
        let (got, report) = records(dir.path(), false).unwrap();
        assert_eq!(got.len(), 6);
        assert!(report.truncated.is_empty());
    }

    #[test]
    fn a_torn_record_in_a_preallocated_file_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, settings(1 << 20, true)).unwrap();
        for payload in [&b"first"[..], b"second"] {
            let lsn = wal.lock().append(payload).unwrap();
            wal.wait_durable(lsn).unwrap();
        }
        let seq = wal.lock().state.seq;
        assert_eq!(seq, 1);
        // The process dies: no clean close cuts the file back.
        std::mem::forget(wal);
        let path = dir.path().join(wal_file_name(seq));
        let mut data = fs::read(&path).unwrap();
        assert_eq!(data.len(), 1 << 20);
        // Half of a third record's frame header: the process died while appending it.
        let end = FILE_HEADER_LEN + 2 * FRAME_HEADER_LEN + 11;
        data[end..end + 6].copy_from_slice(&frame_header(b"third")[..6]);
        fs::write(&path, &data).unwrap();
        let (got, report) = records(dir.path(), false).unwrap();
        assert_eq!(got, vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(report.truncated.len(), 1);
        assert_eq!(fs::metadata(&path).unwrap().len(), end as u64);
    }

    #[test]
    fn an_unwritten_stretch_with_records_after_it_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(wal_file_name(1));
        let mut data = file_header().to_vec();
        for payload in [&b"acknowledged"[..], b"in flight"] {
            data.extend_from_slice(&frame_header(payload));
            data.extend_from_slice(payload);
        }
        // The second record's sectors never reached the disk, a later one's did.
        let second = FILE_HEADER_LEN + FRAME_HEADER_LEN + 12;
        data.truncate(second);
        data.resize(4096, 0);
        data.extend_from_slice(&frame_header(b"later"));
        data.extend_from_slice(b"later");
        data.resize(8192, 0);
        fs::write(&path, &data).unwrap();
        let (got, report) = records(dir.path(), false).unwrap();
        assert_eq!(got, vec![b"acknowledged".to_vec()]);
        assert_eq!(report.truncated.len(), 1);
        assert_eq!(report.truncated[0].1, second as u64);
        assert!(
            report.truncated[0].2.contains("unwritten"),
            "{:?}",
            report.truncated
        );
    }

    /// A preallocated file after power loss: everything up to the last fsync (`synced`
    /// bytes) is on the disk, and each later sector either reached the disk or still holds
    /// the zeros it was preallocated with.
    fn after_power_loss(file: &[u8], synced: usize, lost: &[bool]) -> Vec<u8> {
        let mut disk = file.to_vec();
        for (sector, chunk) in disk.chunks_mut(SECTOR).enumerate() {
            let start = sector * SECTOR;
            if start + SECTOR > synced && lost.get(sector % lost.len()) == Some(&true) {
                let from = synced.saturating_sub(start);
                chunk[from..].fill(0);
            }
        }
        disk
    }

    proptest::proptest! {
        #[test]
        fn power_loss_in_a_preallocated_file_keeps_every_acknowledged_record(
            payloads in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..700), 1..12),
            acknowledged in 0usize..12,
            lost in proptest::collection::vec(proptest::prelude::any::<bool>(), 1..8),
        ) {
            let acknowledged = acknowledged.min(payloads.len());
            let mut file = file_header().to_vec();
            let mut synced = file.len();
            for (i, payload) in payloads.iter().enumerate() {
                file.extend_from_slice(&frame_header(payload));
                file.extend_from_slice(payload);
                if i < acknowledged {
                    synced = file.len();
                }
            }
            let padded = file.len().div_ceil(SECTOR) * SECTOR + 2 * SECTOR;
            file.resize(padded, 0);
            let disk = after_power_loss(&file, synced, &lost);
            let mut report = ReplayReport::default();
            let mut got = Vec::new();
            let replayed = replay_file(Path::new("p.wal"), &disk, false, &mut report, &mut |r| {
                got.push(r.payload.to_vec());
                Ok(())
            });
            proptest::prop_assert!(replayed.is_ok(), "{:?}", replayed.err());
            proptest::prop_assert!(got.len() >= acknowledged, "{} of {acknowledged}", got.len());
            proptest::prop_assert_eq!(&got[..], &payloads[..got.len()]);
        }
    }

    #[test]
    fn failed_fsync_policy_names_parse() {
        assert_eq!(FsyncPolicy::parse("always"), Some(FsyncPolicy::Always));
        assert_eq!(FsyncPolicy::parse("never"), Some(FsyncPolicy::Never));
        assert_eq!(
            FsyncPolicy::parse("interval=250ms"),
            Some(FsyncPolicy::Interval(Duration::from_millis(250)))
        );
        assert_eq!(FsyncPolicy::parse("interval=0s"), None);
        assert_eq!(FsyncPolicy::parse("sometimes"), None);
    }

    #[test]
    fn concurrent_writers_share_fsyncs_and_all_records_survive() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(Wal::create(dir.path(), 1, settings(1 << 16, true)).unwrap());
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    for i in 0..100u8 {
                        let lsn = wal.lock().append(&[t, i]).unwrap();
                        wal.wait_durable(lsn).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (got, _) = records(dir.path(), false).unwrap();
        assert_eq!(got.len(), 400);
        for t in 0..4u8 {
            let mine: Vec<u8> = got.iter().filter(|r| r[0] == t).map(|r| r[1]).collect();
            assert_eq!(
                mine,
                (0..100u8).collect::<Vec<_>>(),
                "writer {t} records out of order"
            );
        }
    }
}
