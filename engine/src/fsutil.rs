//! File-system helpers: durable atomic replacement, directory fsync and the data-directory lock.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{EngineError, Result};

/// Fsyncs a directory so that renames and creations inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let file = File::open(dir).map_err(|e| EngineError::io(dir, e))?;
    file.sync_all().map_err(|e| EngineError::io(dir, e))
}

/// Writes `bytes` to `path` so that after a crash the path holds either the old content or the
/// new content, never a mix: write a temporary file, fsync it, rename it over `path`, fsync the
/// directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_renamed(path, bytes)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// [`write_atomic`] but for the directory fsync, which the caller owes before anything refers
/// to `path` (one fsync then covers several files).
pub(crate) fn write_renamed(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    {
        let mut file = File::create(&tmp).map_err(|e| EngineError::io(&tmp, e))?;
        write_and_sync(&mut file, bytes).map_err(|e| EngineError::io(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| EngineError::io(path, e))
}

/// Bytes of a large file written out to the disk at a time before its final fsync.
const WRITEBACK_PIECE: usize = 512 * 1024;

/// Writes `bytes` to `file` and fsyncs it. On ext4 (ordered data) a journal commit waits for
/// the dirty data of every file it covers, so a write-ahead log fsync that runs while a
/// segment is written would wait for the whole segment to reach the disk; the segment's data
/// is therefore written out piece by piece first (`sync_file_range`, which commits no
/// journal), leaving the final fsync little but metadata to write.
fn write_and_sync(file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
    if bytes.len() <= WRITEBACK_PIECE {
        file.write_all(bytes)?;
        return file.sync_all();
    }
    write_out_in_pieces(file, bytes.chunks(WRITEBACK_PIECE), false, None).map(|_| ())
}

/// Appends `len` zero bytes to `file`, written out piece by piece as [`write_and_sync`] does,
/// then fsyncs it. With `paced`, it rests after each piece as long as the piece took, so that
/// the disk keeps room for other writers' fsyncs. Returns `Ok(false)` without the fsync when
/// `stop` is set between pieces.
pub(crate) fn append_zeros_and_sync(
    file: &mut File,
    len: u64,
    paced: bool,
    stop: Option<&AtomicBool>,
) -> std::io::Result<bool> {
    let zeros = vec![0u8; WRITEBACK_PIECE];
    let pieces = (0..len)
        .step_by(WRITEBACK_PIECE)
        .map(|at| &zeros[..(len - at).min(WRITEBACK_PIECE as u64) as usize]);
    write_out_in_pieces(file, pieces, paced, stop)
}

/// Writes `pieces` one after another at the file's position, each written out to the disk
/// before the next (with `paced`, then a rest as long as the piece took), then fsyncs the
/// file. `Ok(false)`, without the fsync, when `stop` was set between pieces.
fn write_out_in_pieces<'a>(
    file: &mut File,
    pieces: impl Iterator<Item = &'a [u8]>,
    paced: bool,
    stop: Option<&AtomicBool>,
) -> std::io::Result<bool> {
    let mut offset = file.stream_position()?;
    for piece in pieces {
        if stop.is_some_and(|stop| stop.load(Ordering::Relaxed)) {
            return Ok(false);
        }
        let started = std::time::Instant::now();
        file.write_all(piece)?;
        write_out(file, offset, piece.len())?;
        offset += piece.len() as u64;
        if paced {
            std::thread::sleep(started.elapsed());
        }
    }
    file.sync_all()?;
    Ok(true)
}

/// Writes `len` bytes of `file` from `offset` out to the disk and waits for them.
#[cfg(target_os = "linux")]
fn write_out(file: &File, offset: u64, len: usize) -> std::io::Result<()> {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Ok(());
    };
    #[expect(
        unsafe_code,
        reason = "sync_file_range(2) through libc has no safe wrapper in std"
    )]
    // SAFETY: the descriptor is valid for the duration of the call (`file` is borrowed) and
    // sync_file_range does not touch this process's memory.
    let rc = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset,
            len,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Elsewhere the final fsync writes everything.
#[cfg(not(target_os = "linux"))]
fn write_out(_file: &File, _offset: u64, _len: usize) -> std::io::Result<()> {
    Ok(())
}

/// The temporary name a file is written under before it is renamed into place. Leftovers with
/// this suffix are removed at start.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Creates `dir` and its parents, and fsyncs the parent so the new directory survives a crash.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Free bytes available to unprivileged users on the file system holding `path`.
pub(crate) fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
    #[expect(
        unsafe_code,
        reason = "statvfs(3) through libc has no safe wrapper in std"
    )]
    // SAFETY: `c_path` is a valid NUL-terminated string for the duration of the call, and
    // `stat` is a properly sized, zero-initialised struct statvfs that the call fills.
    let (rc, stat) = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        let rc = libc::statvfs(c_path.as_ptr(), &mut stat);
        (rc, stat)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The fields are u64 on 64-bit Linux but narrower elsewhere.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(stat.f_bavail).saturating_mul(u64::from(stat.f_frsize)))
}

/// An exclusive advisory lock on a data directory, held for the life of the engine. The lock
/// is released by the kernel when the process exits, even by SIGKILL, so a crash never leaves
/// a directory locked.
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join("LOCK");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| EngineError::io(&path, e))?;
        // flock is per open file description, so a second open in this process is refused
        // too: that is what tests that open a directory twice expect.
        #[expect(
            unsafe_code,
            reason = "flock(2) through libc has no safe wrapper in std"
        )]
        // SAFETY: the descriptor is valid for the duration of the call (`file` is alive) and
        // flock does not touch memory.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let holder = fs::read_to_string(&path)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "unknown process".to_string());
                return Err(EngineError::Locked {
                    path: dir.to_path_buf(),
                    holder,
                });
            }
            return Err(EngineError::io(&path, err));
        }
        file.set_len(0).map_err(|e| EngineError::io(&path, e))?;
        let _ = writeln!(file, "pid {}", std::process::id());
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_directory_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).err().unwrap();
        match err {
            EngineError::Locked { holder, .. } => {
                assert_eq!(holder, format!("pid {}", std::process::id()))
            }
            other => panic!("expected Locked, got {other}"),
        }
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn write_atomic_replaces_content_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("MANIFEST");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!tmp_path(&path).exists());
    }
}
