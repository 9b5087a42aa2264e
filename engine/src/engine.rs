//! The engine: a locked data directory holding databases, and the background thread that
//! flushes heads and runs interval fsyncs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::database::{Database, SnapshotFiles};
use crate::error::{EngineError, Result};
use crate::fsutil::{self, DirLock};
use crate::options::EngineOptions;
use crate::wal::FsyncPolicy;

const DATABASES_DIR: &str = "dbs";
const DROPPED_PREFIX: &str = ".dropped-";
/// A database being created lives under this prefix until its manifest is written, then is
/// renamed into place: a directory under a database's own name always has a manifest.
const CREATING_PREFIX: &str = ".creating-";

struct Shared {
    dir: PathBuf,
    options: Arc<EngineOptions>,
    databases: RwLock<BTreeMap<String, Arc<Database>>>,
    /// Serialises create and drop, so two creates of one name cannot race.
    admin: Mutex<()>,
    stop: Mutex<bool>,
    wake: Condvar,
    _lock: DirLock,
}

/// An open data directory.
pub struct Engine {
    shared: Arc<Shared>,
    background: Mutex<Vec<JoinHandle<()>>>,
}

/// Checks a database name: 1 to 255 bytes, no control characters.
pub fn validate_database_name(name: &str) -> Result<()> {
    let invalid = |reason| EngineError::InvalidDatabaseName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > 255 {
        return Err(invalid("it is longer than 255 bytes"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(invalid("it contains a control character"));
    }
    Ok(())
}

/// Whether `dir` is what a create interrupted before its manifest was written left under the
/// database's own name, as creates did before they were renamed into place: no manifest and
/// nothing but temporary files.
fn is_unfinished_create(dir: &Path) -> bool {
    if dir.join(crate::manifest::MANIFEST_FILE).exists() {
        return false;
    }
    std::fs::read_dir(dir).is_ok_and(|mut entries| {
        entries.all(|entry| {
            entry.is_ok_and(|e| {
                e.path().is_file()
                    && e.file_name()
                        .to_string_lossy()
                        .ends_with(fsutil::TMP_SUFFIX)
            })
        })
    })
}

/// The directory name of a database: the name with every byte outside `[A-Za-z0-9_-]`
/// percent-encoded, so any name is a safe, unique file name.
fn directory_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Engine {
    /// Opens (or creates) a data directory, recovering every database in it.
    pub fn open(dir: impl AsRef<Path>, options: EngineOptions) -> Result<Engine> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fsutil::create_dir_durable(&dir)?;
        let lock = DirLock::acquire(&dir)?;
        let dbs_dir = dir.join(DATABASES_DIR);
        fsutil::create_dir_durable(&dbs_dir)?;
        let options = Arc::new(options);
        let mut databases = BTreeMap::new();
        let entries = std::fs::read_dir(&dbs_dir).map_err(|e| EngineError::io(&dbs_dir, e))?;
        let mut paths: Vec<PathBuf> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| EngineError::io(&dbs_dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(DROPPED_PREFIX) || name.starts_with(CREATING_PREFIX) {
                // A drop interrupted after its rename, or a create before its own: finish the
                // drop, forget the create.
                let _ = std::fs::remove_dir_all(entry.path());
                continue;
            }
            if entry.path().is_dir() {
                if is_unfinished_create(&entry.path()) {
                    tracing::warn!(path = %entry.path().display(), "removing a database directory whose creation was interrupted");
                    std::fs::remove_dir_all(entry.path())
                        .map_err(|e| EngineError::io(entry.path(), e))?;
                    continue;
                }
                paths.push(entry.path());
            }
        }
        paths.sort();
        for path in paths {
            let db = Database::open(&path, options.clone())?;
            databases.insert(db.name().to_string(), Arc::new(db));
        }
        let shared = Arc::new(Shared {
            dir,
            options,
            databases: RwLock::new(databases),
            admin: Mutex::new(()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            _lock: lock,
        });
        let mut threads = Vec::new();
        {
            let shared = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("tally-flush".into())
                    .spawn(move || background_loop(&shared))
                    .map_err(|e| EngineError::io("<thread>", e))?,
            );
        }
        if shared.options.compaction.enabled {
            let shared = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("tally-compact".into())
                    .spawn(move || compaction_loop(&shared))
                    .map_err(|e| EngineError::io("<thread>", e))?,
            );
        }
        Ok(Engine {
            shared,
            background: Mutex::new(threads),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub fn options(&self) -> &EngineOptions {
        &self.shared.options
    }

    pub fn database(&self, name: &str) -> Option<Arc<Database>> {
        self.shared.databases.read().get(name).cloned()
    }

    /// Names of all databases, sorted.
    pub fn database_names(&self) -> Vec<String> {
        self.shared.databases.read().keys().cloned().collect()
    }

    /// The database `name`, created if it does not exist (as InfluxDB's `CREATE DATABASE`,
    /// creating an existing database is not an error).
    pub fn create_database(&self, name: &str) -> Result<Arc<Database>> {
        validate_database_name(name)?;
        if let Some(db) = self.database(name) {
            return Ok(db);
        }
        let _admin = self.shared.admin.lock();
        if let Some(db) = self.database(name) {
            return Ok(db);
        }
        let dbs = self.shared.dir.join(DATABASES_DIR);
        let dir = dbs.join(directory_name(name));
        let building = dbs.join(format!("{CREATING_PREFIX}{}", directory_name(name)));
        let db = Arc::new(Database::create(
            &building,
            &dir,
            name,
            self.shared.options.clone(),
        )?);
        self.shared
            .databases
            .write()
            .insert(name.to_string(), db.clone());
        tracing::info!(database = name, "created database");
        Ok(db)
    }

    /// Drops a database and deletes its files.
    pub fn drop_database(&self, name: &str) -> Result<()> {
        let _admin = self.shared.admin.lock();
        let Some(db) = self.shared.databases.write().remove(name) else {
            return Err(EngineError::DatabaseNotFound {
                name: name.to_string(),
            });
        };
        db.close();
        let _flush = db.wait_for_flush();
        let dir = db.dir().to_path_buf();
        let parent = self.shared.dir.join(DATABASES_DIR);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let trash = parent.join(format!("{DROPPED_PREFIX}{}-{stamp}", directory_name(name)));
        std::fs::rename(&dir, &trash).map_err(|e| EngineError::io(&dir, e))?;
        fsutil::sync_dir(&parent)?;
        std::fs::remove_dir_all(&trash).map_err(|e| EngineError::io(&trash, e))?;
        tracing::info!(database = name, "dropped database");
        Ok(())
    }

    /// Writes a consistent snapshot of the given databases (all when `None`) into `target`, a
    /// new directory on the same file system, laid out as a data directory: it opens with
    /// [`Engine::open`] and holds every write acknowledged before the call. Files are hard
    /// links, so this takes no time proportional to the data and never blocks writes for long.
    pub fn snapshot(
        &self,
        target: &Path,
        databases: Option<&[String]>,
    ) -> Result<Vec<(String, SnapshotFiles)>> {
        if target.exists() {
            return Err(EngineError::InvalidOption {
                option: "snapshot target",
                reason: format!("{} already exists", target.display()),
            });
        }
        let dbs: Vec<Arc<Database>> = match databases {
            None => self.shared.databases.read().values().cloned().collect(),
            Some(names) => names
                .iter()
                .map(|n| {
                    self.database(n)
                        .ok_or_else(|| EngineError::DatabaseNotFound { name: n.clone() })
                })
                .collect::<Result<_>>()?,
        };
        let root = target.join(DATABASES_DIR);
        fsutil::create_dir_durable(&root)?;
        let mut out = Vec::new();
        for db in dbs {
            let files = db.snapshot_into(&root.join(directory_name(db.name())))?;
            out.push((db.name().to_string(), files));
        }
        fsutil::sync_dir(&root)?;
        Ok(out)
    }

    /// Flushes every database's whole head into segments.
    pub fn flush_all(&self) -> Result<()> {
        let dbs: Vec<Arc<Database>> = self.shared.databases.read().values().cloned().collect();
        for db in dbs {
            db.flush(true)?;
        }
        Ok(())
    }

    /// Stops the background thread and flushes everything, so a restart replays no WAL, then
    /// gives back the disk space held by preallocated WAL files.
    pub fn close(&self) -> Result<()> {
        self.stop_background();
        self.flush_all()?;
        for db in self.shared.databases.read().values() {
            db.release_wal_space();
        }
        Ok(())
    }

    fn stop_background(&self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        for handle in self.background.lock().drain(..) {
            let _ = handle.join();
        }
    }

    /// Wakes the background thread (after writes that want a flush).
    pub fn nudge(&self) {
        self.shared.wake.notify_all();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_background();
    }
}

/// Retention and compaction, every `compaction.check_interval`, in a thread of its own so a
/// long compaction never delays a flush.
fn compaction_loop(shared: &Shared) {
    let mut last_round = Instant::now();
    loop {
        {
            let mut stop = shared.stop.lock();
            if *stop {
                return;
            }
            shared
                .wake
                .wait_for(&mut stop, shared.options.compaction.check_interval);
            if *stop {
                return;
            }
        }
        // The condition variable also wakes the flush thread; run only once per interval.
        if last_round.elapsed() < shared.options.compaction.check_interval {
            continue;
        }
        last_round = Instant::now();
        let dbs: Vec<Arc<Database>> = shared.databases.read().values().cloned().collect();
        for db in dbs {
            if *shared.stop.lock() {
                return;
            }
            crate::compaction::background_round(&db);
        }
    }
}

fn background_loop(shared: &Shared) {
    let tick = match shared.options.fsync {
        FsyncPolicy::Interval(d) => d.min(Duration::from_millis(500)),
        _ => Duration::from_millis(500),
    };
    let mut last_sync = Instant::now();
    loop {
        {
            let mut stop = shared.stop.lock();
            if *stop {
                return;
            }
            shared.wake.wait_for(&mut stop, tick);
            if *stop {
                return;
            }
        }
        let dbs: Vec<Arc<Database>> = shared.databases.read().values().cloned().collect();
        if let FsyncPolicy::Interval(every) = shared.options.fsync
            && last_sync.elapsed() >= every
        {
            last_sync = Instant::now();
            for db in &dbs {
                if let Err(e) = db.sync_wal_for_interval() {
                    tracing::error!(database = db.name(), error = %e, "interval fsync of the WAL failed");
                }
            }
        }
        for db in &dbs {
            let usage = db.head_usage();
            let full = usage.bytes() >= shared.options.flush_bytes;
            let due = db.since_last_flush() >= shared.options.flush_interval
                && (usage.sealed_bytes > 0 || usage.out_of_order_points > 0);
            if !(full || due || db.flush_wanted()) {
                continue;
            }
            // When open chunks hold most of the memory (many slow series), a flush of sealed
            // chunks would free little: flush everything.
            let everything = full && usage.sealed_bytes < usage.bytes() / 2;
            match db.flush(everything) {
                Ok(report) => tracing::debug!(
                    database = db.name(),
                    segments = report.segments_written,
                    points = report.points_written,
                    bytes = report.bytes_written,
                    "flushed"
                ),
                Err(e) => {
                    tracing::error!(database = db.name(), error = %e, "flush failed; will retry")
                }
            }
        }
    }
}
