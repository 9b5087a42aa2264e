//! One database: its catalog, WAL, head and segments, the write path, flushing and recovery.
//!
//! Lock order (never taken in another order): `catalog` (write) → `order` → WAL writer →
//! `head` → `published`. Readers take `head` (read) → `published` (read), and `catalog` (read)
//! on its own.
//!
//! `order` serialises "append to the WAL, then apply to the head", so the head sees writes in
//! WAL order and replay reproduces exactly what readers saw; it also makes a flush's freeze, WAL
//! rotation and checkpoint one atomic step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use crate::catalog::{Catalog, CreateError, decode_series_key, encode_series_key};
use crate::chunk::ColumnValues;
use crate::error::{EngineError, Result, WriteError};
use crate::fsutil;
use crate::head::{EncodedChunk, FrozenHead, Head, HeadOptions, HeadUsage, chunks_from_points};
use crate::index_file::{self, IndexMeta};
use crate::manifest::{MANIFEST_FILE, Manifest, Tombstone};
use crate::model::{FieldType, FieldValue, PointBatch};
use crate::options::{EngineOptions, Retention};
use crate::read::{ChunkSource, ColumnInfo, ReadView, RollupSource, TagFilter, TierUse};
use crate::segment::{self, ColumnChunks, Segment};
use crate::wal::{self, Wal};
use crate::walrecord::{
    self, Definitions, KIND_CHECKPOINT, KIND_DEFINITIONS, KIND_POINTS, PointsEncoder,
};

/// A column id and its encoded chunks, in time order.
type ColumnChunkBytes = (u32, Vec<Vec<u8>>);

/// The oldest timestamps a write may still carry: a point whose block ends before the raw
/// retention's cutoff would be deleted at once, so it is refused, as InfluxDB refuses points
/// outside a retention policy.
struct Expiry {
    cutoff: Option<i64>,
    retention: Option<std::time::Duration>,
    block: i64,
    database: String,
}

impl Expiry {
    fn check(&self, ts: i64) -> Option<WriteError> {
        let cutoff = self.cutoff?;
        let block_end = ts
            .div_euclid(self.block)
            .saturating_mul(self.block)
            .saturating_add(self.block);
        (block_end <= cutoff).then(|| WriteError::BeyondRetention {
            database: self.database.clone(),
            retention: crate::compaction::format_duration(self.retention.unwrap_or_default()),
        })
    }
}

/// Rewrite all index files as one once there are this many.
const MAX_INDEX_FILES: usize = 8;

/// A point the engine refused; the other points of its batch were stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Index of the point in its batch.
    pub point: usize,
    pub error: WriteError,
}

/// What a write stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub points_written: usize,
    pub values_written: usize,
    pub rejected: Vec<Rejection>,
}

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub segments_written: usize,
    pub chunks_written: u64,
    pub points_written: u64,
    pub bytes_written: u64,
}

/// The files a snapshot holds: (path, size in bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFiles {
    pub files: Vec<(PathBuf, u64)>,
}

/// Counters for monitoring.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatabaseStats {
    pub series: u64,
    pub columns: u64,
    pub head_bytes: u64,
    pub head_points: u64,
    pub flushing_bytes: u64,
    pub segments: u64,
    pub segment_bytes: u64,
    pub segment_points: u64,
    pub wal_bytes_appended: u64,
    /// Bytes of WAL files written zero-filled ahead of use.
    pub wal_bytes_preallocated: u64,
    /// Bytes appended past the preallocated part of their WAL file.
    pub wal_bytes_grown: u64,
    pub points_written: u64,
    pub points_rejected: u64,
    pub flushes: u64,
    pub compactions: u64,
    pub compaction_failures: u64,
    pub compaction_bytes_written: u64,
    pub segments_expired: u64,
    pub bytes_expired: u64,
    /// Segments holding rollup rows (all tiers).
    pub rollup_segments: u64,
    pub tombstones: u64,
}

struct OrderState {
    /// Series and columns whose definitions are in the WAL (or index files).
    defined_series: u32,
    defined_columns: u32,
}

#[derive(Clone, Default)]
pub(crate) struct Published {
    /// Segments in recency order (oldest data first), raw and rollup.
    pub(crate) segments: Vec<Arc<Segment>>,
    /// Frozen heads being flushed, oldest first; newer than every segment.
    pub(crate) frozen: Vec<Arc<FrozenHead>>,
    /// Deletions queries must honour on segments not yet rewritten.
    pub(crate) tombstones: Arc<Vec<Tombstone>>,
}

pub struct Database {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    pub(crate) options: Arc<EngineOptions>,
    pub(crate) catalog: RwLock<Catalog>,
    order: Mutex<OrderState>,
    pub(crate) wal: Wal,
    pub(crate) head: RwLock<Head>,
    pub(crate) published: RwLock<Published>,
    pub(crate) manifest: Mutex<Manifest>,
    pub(crate) flush_lock: Mutex<()>,
    /// One compaction or retention pass at a time.
    pub(crate) compaction_lock: Mutex<()>,
    /// The effective retention (the engine's defaults, or the database's own setting).
    pub(crate) retention: RwLock<Retention>,
    pub(crate) compaction_log:
        Mutex<std::collections::VecDeque<crate::compaction::CompactionRecord>>,
    pub(crate) compaction_counters: crate::compaction::CompactionCounters,
    /// Set while the file system is below `min_free_disk_bytes`; checked at most every second.
    disk: Mutex<(Instant, bool)>,
    /// The next number for a segment or index file, and for a tombstone boundary.
    next_seq: AtomicU64,
    /// Column count at the previous retention pass (see `apply_retention`).
    pub(crate) retention_watermark: std::sync::atomic::AtomicU32,
    /// Set when deleted data may have left columns empty (see `apply_retention`).
    pub(crate) forget_check: AtomicBool,
    closed: AtomicBool,
    flush_wanted: AtomicBool,
    last_flush: Mutex<Instant>,
    points_written: AtomicU64,
    points_rejected: AtomicU64,
    flushes: AtomicU64,
}

fn wal_dir(dir: &Path) -> PathBuf {
    dir.join("wal")
}

/// A block's raw segments and its rollup segments.
type BlockSegments<'a> = (Vec<&'a Arc<Segment>>, Vec<&'a Arc<Segment>>);

impl Database {
    /// Creates a new, empty database directory at `dir`, built at `building` (a sibling, left
    /// over from an interrupted create or not there) and renamed into place once its manifest
    /// is written, so that a crash never leaves `dir` without one.
    pub(crate) fn create(
        building: &Path,
        dir: &Path,
        name: &str,
        options: Arc<EngineOptions>,
    ) -> Result<Database> {
        if building.exists() {
            std::fs::remove_dir_all(building).map_err(|e| EngineError::io(building, e))?;
        }
        fsutil::create_dir_durable(building)?;
        let manifest = Manifest {
            name: name.to_string(),
            next_file_seq: 1,
            ..Manifest::default()
        };
        manifest.store(building)?;
        std::fs::rename(building, dir).map_err(|e| EngineError::io(dir, e))?;
        fsutil::sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
        Database::open(dir, options)
    }

    /// Opens a database directory: loads the manifest, removes leftovers of interrupted
    /// flushes, loads the index files, maps the segments and replays the WAL.
    pub(crate) fn open(dir: &Path, options: Arc<EngineOptions>) -> Result<Database> {
        let started = Instant::now();
        let mut manifest = Manifest::load(dir)?.ok_or_else(|| {
            EngineError::corrupt(
                dir.join(MANIFEST_FILE),
                0,
                "the database directory has no MANIFEST",
            )
        })?;
        remove_leftovers(dir, &manifest)?;
        let mut catalog = Catalog::default();
        for meta in &manifest.index_files {
            index_file::load_index(
                &dir.join(&meta.file_name),
                meta,
                &mut catalog,
                &manifest.dead_series,
                &manifest.dead_columns,
            )?;
        }
        // Dropped and expired columns leave the catalog before the WAL is replayed, so new
        // writes of their series keys get new ids as they did before the restart.
        catalog.forget(&manifest.dead_columns);
        let mut segments = Vec::new();
        for meta in &manifest.segments {
            segments.push(Arc::new(Segment::open(
                &dir.join(&meta.file_name),
                meta.clone(),
            )?));
        }
        segments.sort_by_key(|s| s.meta.recency);
        let mut head = Head::new(head_options(&options));
        let wal_path = wal_dir(dir);
        let report = wal::replay(
            &wal_path,
            manifest.wal_start_seq,
            options.wal_skip_corrupt,
            |record| {
                apply_record(&mut catalog, &mut head, record.payload).map_err(|e| {
                    EngineError::corrupt(
                        record.path,
                        record.offset + wal::FRAME_HEADER_LEN as u64 + e.offset as u64,
                        e.reason,
                    )
                })
            },
        )?;
        let next_seq = manifest
            .next_file_seq
            .max(report.last_seq.map_or(0, |s| s + 1))
            .max(1);
        let wal = Wal::create(
            &wal_path,
            next_seq,
            wal::WalSettings {
                policy: options.fsync,
                rotate_bytes: options.wal_rotate_bytes,
                preallocate: options.wal_preallocate,
                min_free_bytes: options.min_free_disk_bytes,
            },
        )?;
        manifest.next_file_seq = next_seq + 1;
        if report.records > 0 || !report.truncated.is_empty() {
            tracing::info!(
                database = %manifest.name,
                records = report.records,
                bytes = report.bytes,
                files = report.files,
                torn_tails = report.truncated.len(),
                skipped = report.skipped.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "replayed the WAL"
            );
        }
        let defined_series = catalog.series_count();
        let defined_columns = catalog.column_count();
        let retention = crate::compaction::retention_from_manifest(&manifest)
            .unwrap_or_else(|| options.retention.clone());
        Ok(Database {
            name: manifest.name.clone(),
            dir: dir.to_path_buf(),
            options,
            catalog: RwLock::new(catalog),
            order: Mutex::new(OrderState {
                defined_series,
                defined_columns,
            }),
            wal,
            head: RwLock::new(head),
            published: RwLock::new(Published {
                segments,
                frozen: Vec::new(),
                tombstones: Arc::new(manifest.tombstones.clone()),
            }),
            retention: RwLock::new(retention),
            manifest: Mutex::new(manifest),
            flush_lock: Mutex::new(()),
            compaction_lock: Mutex::new(()),
            compaction_log: Mutex::new(std::collections::VecDeque::new()),
            compaction_counters: crate::compaction::CompactionCounters::default(),
            disk: Mutex::new((Instant::now() - std::time::Duration::from_secs(10), false)),
            next_seq: AtomicU64::new(next_seq + 1),
            retention_watermark: std::sync::atomic::AtomicU32::new(0),
            forget_check: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            flush_wanted: AtomicBool::new(false),
            last_flush: Mutex::new(Instant::now()),
            points_written: AtomicU64::new(0),
            points_rejected: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new number for a segment or index file (or a tombstone boundary).
    pub(crate) fn allocate_file_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    /// Stores `manifest` durably, with the current next file number. The directory is
    /// fsynced first: segments are renamed into place without it (`segment::write_segment`),
    /// and their names must be durable before a manifest refers to them.
    pub(crate) fn store_manifest(&self, manifest: &mut Manifest) -> Result<()> {
        manifest.next_file_seq = self.next_seq.load(Ordering::SeqCst);
        fsutil::sync_dir(&self.dir)?;
        manifest.store(&self.dir)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.release_wal_space();
    }

    /// Gives back the space preallocated WAL files hold beyond their records (at shutdown,
    /// after the final flush; writes after it grow the WAL as plain files).
    pub(crate) fn release_wal_space(&self) {
        self.wal.release_preallocated();
    }

    /// Waits for a running flush to finish and keeps others from starting while held.
    pub(crate) fn wait_for_flush(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.flush_lock.lock()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(EngineError::Closed {
                name: self.name.clone(),
            });
        }
        Ok(())
    }

    /// Stores a batch. Points the engine refuses (type conflicts, series limit) are listed in
    /// the summary; the others are acknowledged when this returns `Ok`, as durable as the
    /// fsync policy promises. An `Err` means nothing of the batch was acknowledged (parts of it
    /// may still become visible, as after any failed write).
    pub fn write(&self, batch: &PointBatch<'_>) -> Result<WriteSummary> {
        self.check_open()?;
        self.check_memory()?;
        self.check_disk()?;
        let mut summary = WriteSummary::default();
        if batch.is_empty() {
            return Ok(summary);
        }
        let expiry = self.expiry();
        // One entry per field value of the batch, in order: its column, or u32::MAX when the
        // point was rejected.
        let mut columns: Vec<u32> = Vec::with_capacity(batch.n_values());
        let mut key = Vec::with_capacity(128);
        let complete = {
            let catalog = self.catalog.read();
            resolve_existing(
                &catalog,
                batch,
                &expiry,
                &mut key,
                &mut columns,
                &mut summary.rejected,
            )
        };
        if !complete {
            columns.clear();
            summary.rejected.clear();
            self.resolve_creating(
                batch,
                &expiry,
                &mut key,
                &mut columns,
                &mut summary.rejected,
            )?;
        }
        let mut encoder = PointsEncoder::new(KIND_POINTS, batch.n_values() * 12 + 16);
        let mut values_written = 0usize;
        let mut next = 0usize;
        for point in batch.points() {
            let fields = point.fields();
            let cols = &columns[next..next + fields.len()];
            next += fields.len();
            if cols.first() == Some(&u32::MAX) {
                continue;
            }
            encoder.point(point.timestamp(), fields.len());
            for ((_, value), &column) in fields.iter().zip(cols) {
                encoder.value(column, value);
            }
            values_written += fields.len();
            summary.points_written += 1;
        }
        if summary.points_written == 0 {
            self.points_rejected
                .fetch_add(summary.rejected.len() as u64, Ordering::Relaxed);
            return Ok(summary);
        }
        let payload = encoder.finish();
        let lsn = {
            let _order = self.order.lock();
            let lsn = self.wal.lock().append(&payload)?;
            let mut head = self.head.write();
            let mut next = 0usize;
            for point in batch.points() {
                let fields = point.fields();
                let cols = &columns[next..next + fields.len()];
                next += fields.len();
                if cols.first() == Some(&u32::MAX) {
                    continue;
                }
                for ((_, value), &column) in fields.iter().zip(cols) {
                    head.append(column, value.field_type(), point.timestamp(), value);
                }
            }
            lsn
        };
        self.wal.wait_durable(lsn)?;
        summary.values_written = values_written;
        self.points_written
            .fetch_add(summary.points_written as u64, Ordering::Relaxed);
        self.points_rejected
            .fetch_add(summary.rejected.len() as u64, Ordering::Relaxed);
        if self.head.read().usage().bytes() >= self.options.flush_bytes {
            self.flush_wanted.store(true, Ordering::Relaxed);
        }
        Ok(summary)
    }

    /// Which timestamps are too old to keep.
    fn expiry(&self) -> Expiry {
        let retention = self.retention.read().raw;
        Expiry {
            cutoff: retention.map(|d| {
                self.options
                    .clock
                    .now_ns()
                    .saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            }),
            retention,
            block: self.options.block_duration_ns(),
            database: self.name.clone(),
        }
    }

    /// Refuses writes while the file system is below `min_free_disk_bytes` (checked at most
    /// once a second); they resume by themselves when space returns.
    fn check_disk(&self) -> Result<()> {
        let floor = self.options.min_free_disk_bytes;
        if floor == 0 {
            return Ok(());
        }
        let mut disk = self.disk.lock();
        if disk.0.elapsed() >= std::time::Duration::from_secs(1) {
            disk.0 = Instant::now();
            disk.1 = match fsutil::free_bytes(&self.dir) {
                Ok(free) => free < floor,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the free disk space; not refusing writes");
                    false
                }
            };
        }
        if disk.1 {
            return Err(EngineError::DiskSpaceLow {
                path: self.dir.clone(),
                floor,
            });
        }
        Ok(())
    }

    fn check_memory(&self) -> Result<()> {
        let head_bytes = self.head.read().usage().bytes();
        let flushing: u64 = self.published.read().frozen.iter().map(|f| f.bytes).sum();
        let total = head_bytes + flushing;
        if total >= self.options.max_head_bytes {
            self.flush_wanted.store(true, Ordering::Relaxed);
            return Err(EngineError::MemoryPressure {
                head_bytes: total,
                limit: self.options.max_head_bytes,
            });
        }
        Ok(())
    }

    /// Resolves every point under the catalog's write lock, creating series and columns, and
    /// logs their definitions before any point that uses them.
    fn resolve_creating(
        &self,
        batch: &PointBatch<'_>,
        expiry: &Expiry,
        key: &mut Vec<u8>,
        columns: &mut Vec<u32>,
        rejected: &mut Vec<Rejection>,
    ) -> Result<()> {
        let mut catalog = self.catalog.write();
        let series_before = catalog.series_count();
        let columns_before = catalog.column_count();
        let mut defs = Definitions::default();
        for (index, point) in batch.points().enumerate() {
            let fields = point.fields();
            let measurement = point.measurement();
            let reject = |columns: &mut Vec<u32>, rejected: &mut Vec<Rejection>, error| {
                columns.extend(std::iter::repeat_n(u32::MAX, fields.len()));
                rejected.push(Rejection {
                    point: index,
                    error,
                });
            };
            if let Some(error) = expiry.check(point.timestamp()) {
                reject(columns, rejected, error);
                continue;
            }
            // A type conflict rejects the point before it creates anything.
            if let Some(error) = fields.iter().find_map(|(f, v)| {
                let existing = catalog.field_type(measurement, f)?;
                (existing != v.field_type()).then(|| WriteError::FieldTypeConflict {
                    measurement: measurement.to_string(),
                    field: f.to_string(),
                    existing,
                    attempted: v.field_type(),
                })
            }) {
                reject(columns, rejected, error);
                continue;
            }
            key.clear();
            encode_series_key(key, measurement, point.tags());
            let hash = catalog.hash_key(key);
            let series = match catalog.find_series(key, hash) {
                Some(s) => s,
                None => {
                    let limit = self.options.max_series_per_database;
                    if limit > 0 && u64::from(catalog.series_count()) >= limit {
                        reject(
                            columns,
                            rejected,
                            WriteError::SeriesLimit {
                                database: self.name.clone(),
                                limit,
                            },
                        );
                        continue;
                    }
                    if catalog.series_count() == u32::MAX {
                        reject(
                            columns,
                            rejected,
                            WriteError::SeriesLimit {
                                database: self.name.clone(),
                                limit: u64::from(u32::MAX),
                            },
                        );
                        continue;
                    }
                    let s = catalog.add_series(key, hash);
                    defs.series.push((s, key.clone()));
                    s
                }
            };
            let new_columns = fields
                .iter()
                .filter(|(f, _)| catalog.find_column(series, f).is_none())
                .count() as u64;
            if u64::from(catalog.column_count()) + new_columns >= u64::from(u32::MAX) {
                reject(
                    columns,
                    rejected,
                    WriteError::ColumnLimit {
                        database: self.name.clone(),
                        limit: u64::from(u32::MAX) - 1,
                    },
                );
                continue;
            }
            for (field, value) in fields {
                let column = match catalog.find_column(series, field) {
                    Some((column, _)) => column,
                    None => match catalog.add_column(series, field, value.field_type()) {
                        Ok(column) => {
                            defs.columns.push((
                                column,
                                series,
                                value.field_type(),
                                field.to_string(),
                            ));
                            column
                        }
                        // Checked above; kept as an error rather than a panic.
                        Err(CreateError::TypeConflict { .. }) => u32::MAX,
                    },
                };
                columns.push(column);
            }
        }
        if defs.is_empty() {
            return Ok(());
        }
        let mut order = self.order.lock();
        let appended = self.wal.lock().append(&defs.encode());
        match appended {
            Ok(_) => {
                order.defined_series = catalog.series_count();
                order.defined_columns = catalog.column_count();
                Ok(())
            }
            Err(e) => {
                // Nothing may refer to ids whose definitions are not logged: forget them.
                catalog.truncate(series_before, columns_before);
                Err(e)
            }
        }
    }

    /// Requests a flush from the background thread.
    pub(crate) fn flush_wanted(&self) -> bool {
        self.flush_wanted.load(Ordering::Relaxed)
    }

    pub(crate) fn since_last_flush(&self) -> std::time::Duration {
        self.last_flush.lock().elapsed()
    }

    pub(crate) fn head_usage(&self) -> HeadUsage {
        self.head.read().usage()
    }

    pub(crate) fn sync_wal_for_interval(&self) -> Result<()> {
        self.wal.sync_for_interval()
    }

    /// Flushes the head's sealed chunks (with `everything`, all of the head) into segments.
    /// Open chunks that stay in the head are checkpointed into the new WAL file, so the older
    /// WAL files can be deleted.
    pub fn flush(&self, everything: bool) -> Result<FlushReport> {
        let _flushing = self.flush_lock.lock();
        self.flush_wanted.store(false, Ordering::Relaxed);
        *self.last_flush.lock() = Instant::now();
        let (frozen, new_wal_seq, series_cut, column_cut, checkpoint_lsn) = {
            let order = self.order.lock();
            let mut wal = self.wal.lock();
            let new_wal_seq = wal.rotate()?;
            let mut head = self.head.write();
            let frozen = Arc::new(head.freeze(everything));
            self.published.write().frozen.push(frozen.clone());
            let mut checkpoint = PointsEncoder::new(KIND_CHECKPOINT, 1024);
            let mut carried = 0usize;
            head.for_each_open_chunk(|column, ts, values| {
                for (i, &t) in ts.iter().enumerate() {
                    if let Some(v) = values.get(i) {
                        checkpoint.point(t, 1);
                        checkpoint.value(column, &v);
                        carried += 1;
                    }
                }
            });
            drop(head);
            let checkpoint_lsn = if carried > 0 {
                Some(wal.append(&checkpoint.finish()))
            } else {
                None
            };
            (
                frozen,
                new_wal_seq,
                order.defined_series,
                order.defined_columns,
                checkpoint_lsn,
            )
        };
        // The old WAL files may be deleted only once the checkpoint is on disk.
        let checkpoint_ok = match checkpoint_lsn {
            None => true,
            Some(Ok(_)) => match self.wal.sync_current() {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(database = %self.name, error = %e, "could not sync the WAL checkpoint; keeping older WAL files");
                    false
                }
            },
            Some(Err(e)) => {
                tracing::warn!(database = %self.name, error = %e, "could not write the WAL checkpoint; keeping older WAL files");
                false
            }
        };
        let result = self.write_frozen(&frozen, new_wal_seq, checkpoint_ok, series_cut, column_cut);
        if result.is_err() {
            // The frozen data stays published and in the older WAL files; a later flush
            // retries it.
            self.flush_wanted.store(true, Ordering::Relaxed);
        }
        result
    }

    fn write_frozen(
        &self,
        frozen: &Arc<FrozenHead>,
        new_wal_seq: u64,
        checkpoint_ok: bool,
        series_cut: u32,
        column_cut: u32,
    ) -> Result<FlushReport> {
        let mut report = FlushReport::default();
        let mut manifest = self.manifest.lock().clone();
        // Group the frozen chunks by block: block start -> (column -> encoded chunks).
        let block = self.options.block_duration_ns();
        let mut blocks: BTreeMap<i64, Vec<ColumnChunkBytes>> = BTreeMap::new();
        let head_options = head_options(&self.options);
        for (column, chunks) in &frozen.columns {
            for chunk in segment_chunks(chunks, &head_options)? {
                let block_start = chunk.0.div_euclid(block).saturating_mul(block);
                let entry = blocks.entry(block_start).or_default();
                match entry.last_mut() {
                    Some((c, list)) if c == column => list.push(chunk.1),
                    _ => entry.push((*column, vec![chunk.1])),
                }
            }
        }
        let mut new_segments = Vec::new();
        for (block_start, columns) in &blocks {
            let seq = self.allocate_file_seq();
            let refs: Vec<ColumnChunks<'_>> = columns
                .iter()
                .map(|(c, chunks)| ColumnChunks {
                    column: *c,
                    chunks: chunks.iter().map(|c| c.as_slice()).collect(),
                })
                .collect();
            report.chunks_written += refs.iter().map(|c| c.chunks.len() as u64).sum::<u64>();
            let meta = segment::write_segment(
                &self.dir,
                seq,
                *block_start,
                block_start.saturating_add(block),
                &refs,
            )?;
            report.points_written += meta.n_points;
            report.bytes_written += meta.size;
            new_segments.push(meta);
        }
        report.segments_written = new_segments.len();
        // Index: the series and columns defined before the rotation.
        if column_cut > manifest.indexed_columns() || series_cut > manifest.indexed_series() {
            let seq = self.allocate_file_seq();
            let catalog = self.catalog.read();
            let meta = if manifest.index_files.len() + 1 >= MAX_INDEX_FILES {
                let meta = index_file::write_index(
                    &self.dir, seq, &catalog, 0, series_cut, 0, column_cut,
                )?;
                manifest.index_files.clear();
                meta
            } else {
                index_file::write_index(
                    &self.dir,
                    seq,
                    &catalog,
                    manifest.indexed_series(),
                    series_cut,
                    manifest.indexed_columns(),
                    column_cut,
                )?
            };
            manifest.index_files.push(meta);
        }
        let old_index_files: Vec<IndexMeta> = self
            .manifest
            .lock()
            .index_files
            .iter()
            .filter(|m| !manifest.index_files.contains(m))
            .cloned()
            .collect();
        manifest.segments.extend(new_segments.iter().cloned());
        if checkpoint_ok {
            manifest.wal_start_seq = new_wal_seq;
        }
        self.next_seq.fetch_max(new_wal_seq + 1, Ordering::SeqCst);
        let mut opened = Vec::new();
        for meta in &new_segments {
            opened.push(Arc::new(Segment::open(
                &self.dir.join(&meta.file_name),
                meta.clone(),
            )?));
        }
        self.store_manifest(&mut manifest)?;
        *self.manifest.lock() = manifest.clone();
        {
            let mut published = self.published.write();
            published.segments.extend(opened);
            published.frozen.retain(|f| !Arc::ptr_eq(f, frozen));
        }
        self.flushes.fetch_add(1, Ordering::Relaxed);
        // Cleanup: files the new manifest no longer needs.
        for meta in old_index_files {
            let _ = std::fs::remove_file(self.dir.join(meta.file_name));
        }
        if let Ok(files) = wal::list_files(&wal_dir(&self.dir)) {
            for (seq, path) in files {
                if seq < manifest.wal_start_seq
                    && let Err(e) = std::fs::remove_file(&path)
                {
                    tracing::warn!(file = %path.display(), error = %e, "could not remove an old WAL file");
                }
            }
        }
        Ok(report)
    }

    /// Hard-links a consistent set of this database's files into `target` (a new directory on
    /// the same file system) and writes its manifest there: the segments and index files the
    /// manifest names, and the WAL files up to this instant. Writes are held only while the WAL
    /// rotates; flushes wait until the links exist. The copy opens as a database holding every
    /// write acknowledged before the call.
    pub fn snapshot_into(&self, target: &Path) -> Result<SnapshotFiles> {
        let _flushing = self.flush_lock.lock();
        let (manifest, last_wal) = {
            let _order = self.order.lock();
            let mut wal = self.wal.lock();
            let next = wal.rotate()?;
            (self.manifest.lock().clone(), next)
        };
        fsutil::create_dir_durable(&target.join("wal"))?;
        let mut files = Vec::new();
        let mut link = |from: PathBuf, to: PathBuf| -> Result<()> {
            std::fs::hard_link(&from, &to).map_err(|e| EngineError::io(&to, e))?;
            let size = std::fs::metadata(&to)
                .map_err(|e| EngineError::io(&to, e))?
                .len();
            files.push((to, size));
            Ok(())
        };
        for name in manifest
            .segments
            .iter()
            .map(|s| &s.file_name)
            .chain(manifest.index_files.iter().map(|i| &i.file_name))
        {
            link(self.dir.join(name), target.join(name))?;
        }
        for (seq, path) in wal::list_files(&wal_dir(&self.dir))? {
            if seq >= manifest.wal_start_seq && seq < last_wal {
                link(path, target.join("wal").join(wal::wal_file_name(seq)))?;
            }
        }
        // The copy's next file numbers must not collide with the WAL files it holds.
        let mut manifest = manifest;
        manifest.next_file_seq = manifest.next_file_seq.max(last_wal);
        manifest.store(target)?;
        let manifest_path = target.join(MANIFEST_FILE);
        let size = std::fs::metadata(&manifest_path)
            .map_err(|e| EngineError::io(&manifest_path, e))?
            .len();
        files.push((manifest_path, size));
        fsutil::sync_dir(&target.join("wal"))?;
        fsutil::sync_dir(target)?;
        Ok(SnapshotFiles { files })
    }

    /// Columns of `measurement` (only those of `field` when given) whose tags pass `filter`.
    pub fn select(
        &self,
        measurement: &str,
        field: Option<&str>,
        filter: &TagFilter,
    ) -> Vec<ColumnInfo> {
        let catalog = self.catalog.read();
        let Some(m) = catalog.measurements.get(measurement) else {
            return Vec::new();
        };
        let mut ids = match field {
            Some(f) => match m.fields.get(f) {
                Some(entry) => entry.columns.clone(),
                None => return Vec::new(),
            },
            None => m.columns.clone(),
        };
        if !matches!(filter, TagFilter::All) {
            ids &= filter.evaluate(&catalog, measurement);
        }
        ids.iter()
            .filter_map(|id| column_info(&catalog, id))
            .collect()
    }

    /// Information on one column.
    pub fn column(&self, id: u32) -> Option<ColumnInfo> {
        column_info(&self.catalog.read(), id)
    }

    /// Measurement names, sorted.
    pub fn measurements(&self) -> Vec<String> {
        self.catalog
            .read()
            .measurements
            .keys()
            .map(|k| k.to_string())
            .collect()
    }

    /// Field keys of a measurement with their types, sorted by key.
    pub fn field_keys(&self, measurement: &str) -> Vec<(String, FieldType)> {
        let catalog = self.catalog.read();
        catalog
            .measurements
            .get(measurement)
            .map(|m| {
                m.fields
                    .iter()
                    .map(|(k, f)| (k.to_string(), f.field_type))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Tag keys of a measurement, sorted.
    pub fn tag_keys(&self, measurement: &str) -> Vec<String> {
        let catalog = self.catalog.read();
        catalog
            .measurements
            .get(measurement)
            .map(|m| m.tag_keys.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }

    /// Values of tag `key` among the series of `measurement` that pass `filter`, sorted.
    pub fn tag_values(&self, measurement: &str, key: &str, filter: &TagFilter) -> Vec<String> {
        let catalog = self.catalog.read();
        let Some(m) = catalog.measurements.get(measurement) else {
            return Vec::new();
        };
        let mut scope = m.columns.clone();
        if !matches!(filter, TagFilter::All) {
            scope &= filter.evaluate(&catalog, measurement);
        }
        let Some(values) = catalog.postings.get(key) else {
            return Vec::new();
        };
        values
            .iter()
            .filter(|(_, bitmap)| !bitmap.is_disjoint(&scope))
            .map(|(v, _)| v.to_string())
            .collect()
    }

    /// Series of a measurement that pass `filter`: (measurement, sorted tags), sorted.
    pub fn series(
        &self,
        measurement: &str,
        filter: &TagFilter,
    ) -> Vec<(String, Vec<(String, String)>)> {
        let catalog = self.catalog.read();
        let Some(m) = catalog.measurements.get(measurement) else {
            return Vec::new();
        };
        let mut scope = m.columns.clone();
        if !matches!(filter, TagFilter::All) {
            scope &= filter.evaluate(&catalog, measurement);
        }
        let mut series: Vec<u32> = scope
            .iter()
            .filter_map(|c| catalog.column(c).map(|e| e.series))
            .collect();
        series.sort_unstable();
        series.dedup();
        let mut out: Vec<(String, Vec<(String, String)>)> = series
            .into_iter()
            .filter_map(|s| decode_series_key(catalog.series_key(s)))
            .map(|p| {
                (
                    p.measurement.to_string(),
                    p.tags
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Captures a consistent view of the given columns' raw data over `[min_time, max_time]`.
    pub fn read(&self, columns: &[u32], min_time: i64, max_time: i64) -> Result<ReadView> {
        self.read_tiered(columns, min_time, max_time, 0)
    }

    /// Like [`Database::read`], but for aggregate queries whose buckets are multiples of
    /// `resolution` (a rollup tier's, or 0 for raw data only): a block whose rollups at that
    /// resolution are up to date, and which the range covers in whole buckets, is read as
    /// rollup rows instead of raw chunks; a block whose raw data has expired is read from the
    /// finest rollup it has (its rows are then approximate at the range's edges). Writes
    /// newer than a block's rollups (late data) send that block back to raw chunks.
    pub fn read_tiered(
        &self,
        columns: &[u32],
        min_time: i64,
        max_time: i64,
        resolution: i64,
    ) -> Result<ReadView> {
        let mut ids = columns.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let head = self.head.read();
        let published = self.published.read().clone();
        let block = self.options.block_duration_ns();
        let mut out = Vec::with_capacity(ids.len());
        let mut rollups_out = Vec::new();
        let mut tier = TierUse {
            resolution,
            ..TierUse::default()
        };
        let mut memory: Vec<Arc<EncodedChunk>> = Vec::new();
        let masks_for = |segment: &Segment, column: u32| -> Vec<(i64, i64)> {
            published
                .tombstones
                .iter()
                .filter(|t| t.applies_to(&segment.meta) && t.columns.contains(column))
                .map(|t| (t.min_time, t.max_time))
                .collect()
        };
        let mut raw_blocks = BTreeSet::new();
        let mut rollup_blocks = BTreeSet::new();
        let mut approximate_blocks = BTreeSet::new();
        let mut blocks_without_raw = BTreeSet::new();
        for &column in &ids {
            // In memory: frozen heads and the head, always raw.
            let mut memory_sources = Vec::new();
            for frozen in &published.frozen {
                for chunk in frozen.chunks(column) {
                    let s = &chunk.header.stats;
                    if s.min_time <= max_time && s.max_time >= min_time {
                        memory_sources.push(ChunkSource::Memory(chunk.clone()));
                    }
                }
            }
            memory.clear();
            head.capture(column, min_time, max_time, &mut memory);
            memory_sources.extend(memory.drain(..).map(ChunkSource::Memory));
            let memory_blocks: BTreeSet<i64> = memory_sources
                .iter()
                .map(|c| {
                    c.header()
                        .stats
                        .min_time
                        .div_euclid(block)
                        .saturating_mul(block)
                })
                .collect();
            // Segments by block: raw segments, then rollup segments.
            let mut blocks: BTreeMap<i64, BlockSegments<'_>> = BTreeMap::new();
            // Blocks that still have raw data for the column, in the range or not: a rollup
            // segment's rows may reach into the range where the block's raw points do not,
            // and such a block has nothing in the range, not expired raw data.
            let mut blocks_with_raw_data = BTreeSet::new();
            for segment in &published.segments {
                if resolution > 0 && segment.meta.resolution == 0 && segment.find(column).is_some()
                {
                    blocks_with_raw_data.insert(segment.meta.block_start);
                }
                if segment.meta.max_time < min_time || segment.meta.min_time > max_time {
                    continue;
                }
                if segment.find(column).is_none() {
                    continue;
                }
                let entry = blocks.entry(segment.meta.block_start).or_default();
                if segment.meta.resolution == 0 {
                    entry.0.push(segment)
                } else {
                    entry.1.push(segment)
                }
            }
            let mut sources = Vec::new();
            let mut rollup_sources = Vec::new();
            for (block_start, (raw, rollups)) in &blocks {
                let block_end = block_start.saturating_add(block);
                let has_raw = !raw.is_empty()
                    || memory_blocks.contains(block_start)
                    || blocks_with_raw_data.contains(block_start);
                let mut choice: Option<(&Arc<Segment>, bool)> = None;
                if resolution > 0 {
                    let max_raw = raw.iter().map(|s| s.meta.recency).max().unwrap_or(0);
                    let fresh = rollups.iter().find(|s| {
                        s.meta.resolution == resolution
                            && s.meta.built_from >= max_raw
                            && !memory_blocks.contains(block_start)
                    });
                    // A bound cuts the block's rollup when it falls inside a tier bucket that
                    // holds some of the block: the bucket's row would count points outside
                    // the range, or be dropped with points inside it. Blocks shorter than
                    // the resolution are cut by bounds outside them too.
                    let cuts = |t: i64| {
                        let bucket = t.div_euclid(resolution).saturating_mul(resolution);
                        t != bucket
                            && *block_start < bucket.saturating_add(resolution)
                            && block_end > bucket
                    };
                    let partial = (min_time > i64::MIN && cuts(min_time))
                        || (max_time < i64::MAX && cuts(max_time.saturating_add(1)));
                    if let Some(r) = fresh
                        && !(partial && has_raw)
                    {
                        choice = Some((r, !has_raw && partial));
                    } else if !has_raw {
                        // Raw data expired: the finest rollup there is.
                        if let Some(r) = rollups.iter().min_by_key(|s| s.meta.resolution) {
                            choice = Some((r, r.meta.resolution != resolution || partial));
                        }
                    }
                }
                if choice.is_some() && !has_raw {
                    blocks_without_raw.insert(*block_start);
                }
                match choice {
                    Some((segment, approximate)) => {
                        let r = segment.meta.resolution;
                        let (keep_min, keep_max) = if approximate {
                            (min_time.div_euclid(r).saturating_mul(r), max_time)
                        } else {
                            (min_time, max_time.saturating_sub(r - 1))
                        };
                        let masks = masks_for(segment, column);
                        if let Some(entry) = segment.find(column) {
                            segment.for_each_chunk_between(
                                &entry,
                                keep_min,
                                keep_max,
                                |offset, header, _| {
                                    rollup_sources.push(RollupSource {
                                        segment: (*segment).clone(),
                                        offset,
                                        header: *header,
                                        keep_min,
                                        keep_max,
                                        masks: masks.clone(),
                                    });
                                    Ok(())
                                },
                            )?;
                        }
                        if approximate {
                            approximate_blocks.insert(*block_start);
                        } else {
                            rollup_blocks.insert(*block_start);
                        }
                    }
                    None => {
                        for segment in raw {
                            let Some(entry) = segment.find(column) else {
                                continue;
                            };
                            if entry.max_time < min_time || entry.min_time > max_time {
                                continue;
                            }
                            let masks = masks_for(segment, column);
                            segment.for_each_chunk_between(
                                &entry,
                                min_time,
                                max_time,
                                |offset, header, _| {
                                    sources.push(ChunkSource::Mapped {
                                        segment: (*segment).clone(),
                                        offset,
                                        header: *header,
                                        masks: masks.clone(),
                                    });
                                    Ok(())
                                },
                            )?;
                        }
                        raw_blocks.insert(*block_start);
                    }
                }
            }
            for b in &memory_blocks {
                raw_blocks.insert(*b);
            }
            sources.extend(memory_sources);
            if !sources.is_empty() {
                out.push((column, sources));
            }
            if !rollup_sources.is_empty() {
                rollups_out.push((column, rollup_sources));
            }
        }
        tier.rollup_blocks = rollup_blocks.len() as u64;
        tier.approximate_blocks = approximate_blocks.len() as u64;
        tier.blocks_without_raw = blocks_without_raw.len() as u64;
        tier.raw_blocks = raw_blocks.difference(&rollup_blocks).count() as u64;
        Ok(ReadView {
            min_time,
            max_time,
            columns: out,
            rollups: rollups_out,
            tier,
        })
    }

    pub fn stats(&self) -> DatabaseStats {
        let (series, columns) = {
            let c = self.catalog.read();
            (u64::from(c.series_count()), u64::from(c.column_count()))
        };
        let usage = self.head.read().usage();
        let (wal_bytes_preallocated, wal_bytes_grown) = self.wal.preallocation_bytes();
        let published = self.published.read();
        let c = &self.compaction_counters;
        DatabaseStats {
            series,
            columns,
            head_bytes: usage.bytes(),
            head_points: usage.points,
            flushing_bytes: published.frozen.iter().map(|f| f.bytes).sum(),
            segments: published.segments.len() as u64,
            segment_bytes: published.segments.iter().map(|s| s.meta.size).sum(),
            segment_points: published.segments.iter().map(|s| s.meta.n_points).sum(),
            wal_bytes_appended: self.wal.lsn(),
            wal_bytes_preallocated,
            wal_bytes_grown,
            points_written: self.points_written.load(Ordering::Relaxed),
            points_rejected: self.points_rejected.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            compaction_failures: c.failures.load(Ordering::Relaxed),
            compaction_bytes_written: c.bytes_written.load(Ordering::Relaxed),
            segments_expired: c.segments_expired.load(Ordering::Relaxed),
            bytes_expired: c.bytes_expired.load(Ordering::Relaxed),
            rollup_segments: published
                .segments
                .iter()
                .filter(|s| s.meta.resolution != 0)
                .count() as u64,
            tombstones: published.tombstones.len() as u64,
        }
    }
}

fn column_info(catalog: &Catalog, id: u32) -> Option<ColumnInfo> {
    let entry = catalog.column(id)?;
    let parts = decode_series_key(catalog.series_key(entry.series))?;
    Some(ColumnInfo {
        id,
        measurement: parts.measurement.to_string(),
        tags: parts
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        field: catalog.field_name(entry.field).to_string(),
        field_type: entry.field_type,
    })
}

pub(crate) fn head_options(options: &EngineOptions) -> HeadOptions {
    HeadOptions {
        chunk_span: options.chunk_span_ns(),
        max_chunk_points: options.max_chunk_points,
        max_out_of_order_points: options.max_chunk_points,
    }
}

/// Resolves every point against existing series and columns under a read lock. Returns false
/// as soon as a point needs a series or column that does not exist yet.
fn resolve_existing(
    catalog: &Catalog,
    batch: &PointBatch<'_>,
    expiry: &Expiry,
    key: &mut Vec<u8>,
    columns: &mut Vec<u32>,
    rejected: &mut Vec<Rejection>,
) -> bool {
    for (index, point) in batch.points().enumerate() {
        if let Some(error) = expiry.check(point.timestamp()) {
            columns.extend(std::iter::repeat_n(u32::MAX, point.fields().len()));
            rejected.push(Rejection {
                point: index,
                error,
            });
            continue;
        }
        key.clear();
        encode_series_key(key, point.measurement(), point.tags());
        let hash = catalog.hash_key(key);
        let Some(series) = catalog.find_series(key, hash) else {
            return false;
        };
        let start = columns.len();
        for (field, value) in point.fields() {
            match catalog.find_column(series, field) {
                Some((column, t)) if t == value.field_type() => columns.push(column),
                Some((_, existing)) => {
                    columns.truncate(start);
                    columns.extend(std::iter::repeat_n(u32::MAX, point.fields().len()));
                    rejected.push(Rejection {
                        point: index,
                        error: WriteError::FieldTypeConflict {
                            measurement: point.measurement().to_string(),
                            field: field.to_string(),
                            existing,
                            attempted: value.field_type(),
                        },
                    });
                    break;
                }
                None => return false,
            }
        }
    }
    true
}

/// The chunks of one frozen column, ready for a segment: (min time, encoded bytes) in time
/// order, never overlapping, each re-encoded with the smallest encodings.
fn segment_chunks(
    chunks: &[Arc<EncodedChunk>],
    options: &HeadOptions,
) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut sorted: Vec<&Arc<EncodedChunk>> = chunks.iter().collect();
    sorted.sort_by_key(|c| c.header.stats.min_time);
    let overlapping = sorted
        .windows(2)
        .any(|w| w[1].header.stats.min_time <= w[0].header.stats.max_time);
    let mut out = Vec::new();
    let mut ts = Vec::new();
    let field_type = chunks
        .first()
        .map(|c| c.header.value_type)
        .unwrap_or(FieldType::Float);
    let mut values = ColumnValues::new(field_type);
    let bug = |e: crate::chunk::ChunkDecodeError| {
        EngineError::corrupt(
            "<head>",
            e.offset as u64,
            format!("BUG: a head chunk does not decode: {}", e.reason),
        )
    };
    if !overlapping {
        for chunk in sorted {
            crate::chunk::decode_chunk(&chunk.bytes, &mut ts, &mut values).map_err(bug)?;
            let mut bytes = Vec::new();
            crate::chunk::encode_chunk(&ts, &values, &mut bytes, true);
            out.push((chunk.header.stats.min_time, bytes));
        }
        return Ok(out);
    }
    // Merge in recency order (the order of `chunks`): later chunks win on equal timestamps.
    let mut merged: BTreeMap<i64, FieldValue<'static>> = BTreeMap::new();
    for chunk in chunks {
        crate::chunk::decode_chunk(&chunk.bytes, &mut ts, &mut values).map_err(bug)?;
        for (i, &t) in ts.iter().enumerate() {
            if let Some(v) = values.get(i) {
                merged.insert(t, v.into_owned());
            }
        }
    }
    let points: Vec<(i64, FieldValue<'static>)> = merged.into_iter().collect();
    for chunk in chunks_from_points(&points, field_type, options) {
        crate::chunk::decode_chunk(&chunk.bytes, &mut ts, &mut values).map_err(bug)?;
        let mut bytes = Vec::new();
        crate::chunk::encode_chunk(&ts, &values, &mut bytes, true);
        out.push((chunk.header.stats.min_time, bytes));
    }
    Ok(out)
}

/// Applies one replayed WAL record to the catalog and head.
pub(crate) fn apply_record(
    catalog: &mut Catalog,
    head: &mut Head,
    payload: &[u8],
) -> std::result::Result<(), crate::bytes::DecodeError> {
    let Some((&kind, body)) = payload.split_first() else {
        return Err(crate::bytes::DecodeError {
            offset: 0,
            reason: "empty WAL record".into(),
        });
    };
    let shift = |e: crate::bytes::DecodeError| crate::bytes::DecodeError {
        offset: e.offset + 1,
        reason: e.reason,
    };
    match kind {
        KIND_DEFINITIONS => {
            let defs = Definitions::decode(body).map_err(shift)?;
            for (id, key) in defs.series {
                if id != catalog.series_count() {
                    return Err(crate::bytes::DecodeError {
                        offset: 0,
                        reason: format!(
                            "defines series {id} but {} series exist",
                            catalog.series_count()
                        ),
                    });
                }
                crate::catalog::validate_series_key(&key)
                    .map_err(|reason| crate::bytes::DecodeError { offset: 0, reason })?;
                let hash = catalog.hash_key(&key);
                if catalog.find_series(&key, hash).is_some() {
                    return Err(crate::bytes::DecodeError {
                        offset: 0,
                        reason: "defines a series twice".into(),
                    });
                }
                catalog.add_series(&key, hash);
            }
            for (id, series, field_type, field) in defs.columns {
                if id != catalog.column_count()
                    || series >= catalog.series_count()
                    || field.is_empty()
                {
                    return Err(crate::bytes::DecodeError {
                        offset: 0,
                        reason: format!(
                            "defines column {id} of series {series}, which does not follow the catalog"
                        ),
                    });
                }
                if catalog.find_column(series, &field).is_some() {
                    return Err(crate::bytes::DecodeError {
                        offset: 0,
                        reason: "defines a column twice".into(),
                    });
                }
                catalog
                    .add_column(series, &field, field_type)
                    .map_err(|_| crate::bytes::DecodeError {
                        offset: 0,
                        reason: format!(
                            "column {id} ({field}) conflicts with the type of an earlier column"
                        ),
                    })?;
            }
            Ok(())
        }
        KIND_POINTS | KIND_CHECKPOINT => {
            walrecord::decode_points(body, |column, ts, value| match catalog.column(column) {
                Some(entry) if entry.field_type == value.field_type() => {
                    head.append(column, entry.field_type, ts, &value);
                    Ok(())
                }
                Some(entry) => Err(crate::bytes::DecodeError {
                    offset: 0,
                    reason: format!(
                        "a {} value for column {column}, which holds {}",
                        value.field_type(),
                        entry.field_type
                    ),
                }),
                None => Err(crate::bytes::DecodeError {
                    offset: 0,
                    reason: format!("points for undefined column {column}"),
                }),
            })
            .map_err(shift)
        }
        other => Err(crate::bytes::DecodeError {
            offset: 0,
            reason: format!("unknown WAL record kind {other}"),
        }),
    }
}

/// Removes what an interrupted flush left behind: temporary files, and segment and index files
/// the manifest does not name (written before a crash prevented the manifest update).
fn remove_leftovers(dir: &Path, manifest: &Manifest) -> Result<()> {
    remove_files(dir, "a leftover of an interrupted flush", |name| {
        let known_segment = manifest.segments.iter().any(|s| s.file_name == name);
        let known_index = manifest.index_files.iter().any(|s| s.file_name == name);
        name.ends_with(fsutil::TMP_SUFFIX)
            || (name.ends_with(".tseg") && !known_segment)
            || (name.ends_with(".tidx") && !known_index)
    })?;
    let wal_path = wal_dir(dir);
    for (seq, path) in wal::list_files(&wal_path)? {
        if seq < manifest.wal_start_seq {
            std::fs::remove_file(&path).map_err(|e| EngineError::io(&path, e))?;
        }
    }
    if wal_path.is_dir() {
        // They never held a record.
        remove_files(
            &wal_path,
            "a WAL file whose preallocation was interrupted",
            |name| name.ends_with(fsutil::TMP_SUFFIX),
        )?;
    }
    Ok(())
}

/// Removes the files in `dir` whose names `leftover` picks, logging each as `what`.
fn remove_files(dir: &Path, what: &str, leftover: impl Fn(&str) -> bool) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if leftover(name) {
            tracing::info!(file = %entry.path().display(), "removing {what}");
            std::fs::remove_file(entry.path()).map_err(|e| EngineError::io(entry.path(), e))?;
        }
    }
    Ok(())
}
