//! Compaction, rollups, retention and deletion.
//!
//! - **Compaction** merges every raw segment of a time block into one, folding in late and
//!   out-of-order writes (the newest write wins), dropping deleted and dropped data, and
//!   re-encoding chunks with the smallest encodings; from the merged points it builds the
//!   block's rollup segments, one per tier. A block is compacted once it ended
//!   `compaction.delay` ago, or earlier when it holds `max_segments_per_block` segments.
//! - **Retention** deletes whole segments: raw blocks older than the raw retention (once their
//!   rollups are built), rollup blocks older than their tier's retention. Columns left with no
//!   data anywhere are forgotten by the catalog.
//! - **Deletion** (`DELETE`) records a tombstone that queries honour at once and compaction
//!   applies; dropping series or measurements forgets their columns at once.
//!
//! Crash safety: outputs are written under new names before the manifest that names them is
//! replaced (the single commit point); inputs are deleted after. A crash leaves either the old
//! or the new manifest, and files it does not name are removed at start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use roaring::RoaringBitmap;

use crate::chunk::{
    ColumnValues, SketchStorage, decode_chunk, decode_rollup_chunk, encode_chunk,
    encode_rollup_chunk,
};
use crate::database::{Database, head_options};
use crate::error::{EngineError, Result};
use crate::manifest::{Manifest, Tombstone};
use crate::model::FieldType;
use crate::options::{Retention, Tier};
use crate::read::TagFilter;
use crate::rollup::RollupRows;
use crate::segment::{self, ColumnChunks, Segment, SegmentMeta};

/// Most rows in one rollup chunk.
const MAX_ROLLUP_ROWS: usize = 1440;
/// How many compactions `SHOW COMPACTIONS` remembers per database.
const LOG_LENGTH: usize = 64;
const RETENTION_OPTION: &str = "retention";

/// One compaction, for `SHOW COMPACTIONS` and the logs.
#[derive(Clone, Debug, PartialEq)]
pub struct CompactionRecord {
    /// When it finished, by the engine's clock.
    pub finished_ns: i64,
    pub block_start: i64,
    pub inputs: usize,
    pub outputs: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub points: u64,
    pub rollup_rows: u64,
    pub duration: Duration,
    /// `done`, or what went wrong.
    pub outcome: String,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct CompactionCounters {
    pub(crate) compactions: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) segments_expired: AtomicU64,
    pub(crate) bytes_expired: AtomicU64,
}

/// What `Database::apply_retention` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub raw_segments_removed: usize,
    pub rollup_segments_removed: usize,
    pub bytes_freed: u64,
    pub columns_forgotten: u64,
    pub series_forgotten: u64,
}

/// What a deletion did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// Columns (series × field) the deletion matched.
    pub columns: u64,
    /// Whether the columns were dropped whole (no time bounds) rather than tombstoned.
    pub dropped: bool,
}

/// Parses a retention setting: `raw=7d;1m=90d;1h=3y`, `inf` for forever.
pub fn parse_retention(text: &str) -> std::result::Result<Retention, String> {
    let mut raw = None;
    let mut tiers = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("expected key=duration, found {part:?}"))?;
        let keep = match value.trim() {
            "inf" | "INF" | "0" | "0s" => None,
            v => Some(
                crate::wal::parse_duration(v).ok_or_else(|| format!("invalid duration {v:?}"))?,
            ),
        };
        match key.trim() {
            "raw" => raw = keep,
            resolution => {
                let r = crate::wal::parse_duration(resolution)
                    .ok_or_else(|| format!("invalid tier resolution {resolution:?}"))?;
                tiers.push(Tier {
                    resolution: r,
                    retention: keep,
                });
            }
        }
    }
    tiers.sort_by_key(|t| t.resolution);
    Ok(Retention { raw, tiers })
}

/// The text form of a retention setting (see `parse_retention`).
pub fn format_retention(r: &Retention) -> String {
    let keep = |d: Option<Duration>| d.map_or_else(|| "inf".to_string(), format_duration);
    let mut parts = vec![format!("raw={}", keep(r.raw))];
    for t in &r.tiers {
        parts.push(format!(
            "{}={}",
            format_duration(t.resolution),
            keep(t.retention)
        ));
    }
    parts.join(";")
}

/// A duration in its largest exact unit (`3y`, `90d`, `1h`, `30s`, `250ms`; a year is 365 days).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("y", 365 * 86_400_000u128),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

pub(crate) fn retention_from_manifest(m: &Manifest) -> Option<Retention> {
    let text = m
        .options
        .iter()
        .find(|(k, _)| k == RETENTION_OPTION)
        .map(|(_, v)| v.as_str())?;
    parse_retention(text).ok()
}

fn ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Throttles compaction to a byte rate and to a share of one core.
struct Throttle {
    bytes_per_second: u64,
    cpu_percent: u8,
    started: Instant,
    bytes: u64,
    /// When the current stretch of work began (after the last sleep).
    working_since: Instant,
}

impl Throttle {
    fn new(options: &crate::options::CompactionOptions) -> Throttle {
        let now = Instant::now();
        Throttle {
            bytes_per_second: options.bytes_per_second,
            cpu_percent: options.cpu_percent.clamp(1, 100),
            started: now,
            bytes: 0,
            working_since: now,
        }
    }

    /// Called after each piece of work that wrote `bytes`.
    fn account(&mut self, bytes: u64) {
        self.bytes += bytes;
        let mut pause = Duration::ZERO;
        if self.bytes_per_second > 0 {
            let due = Duration::from_secs_f64(self.bytes as f64 / self.bytes_per_second as f64);
            pause = due.saturating_sub(self.started.elapsed());
        }
        if self.cpu_percent < 100 {
            // Work for w, rest for w * (100 - p) / p: busy p % of the time.
            let worked = self.working_since.elapsed();
            let rest =
                worked.mul_f64(f64::from(100 - self.cpu_percent) / f64::from(self.cpu_percent));
            pause = pause.max(rest);
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
        self.working_since = Instant::now();
    }
}

impl Database {
    /// The retention in force for this database.
    pub fn retention(&self) -> Retention {
        self.retention.read().clone()
    }

    /// Sets this database's retention (raw and tiers); it is kept in the manifest and applies
    /// from the next retention pass. Tiers no longer listed are deleted by that pass.
    pub fn set_retention(&self, retention: Retention) -> Result<()> {
        retention.validate(self.options.chunk_span, self.options.block_duration)?;
        let _flushing = self.flush_lock.lock();
        let mut manifest = self.manifest.lock().clone();
        manifest.options.retain(|(k, _)| k != RETENTION_OPTION);
        manifest
            .options
            .push((RETENTION_OPTION.into(), format_retention(&retention)));
        self.store_manifest(&mut manifest)?;
        *self.manifest.lock() = manifest;
        *self.retention.write() = retention;
        Ok(())
    }

    /// Recent compactions, newest last.
    pub fn compactions(&self) -> Vec<CompactionRecord> {
        self.compaction_log.lock().iter().cloned().collect()
    }

    /// (compactions, failures, bytes written, segments expired, bytes expired) since start.
    pub fn compaction_totals(&self) -> [u64; 5] {
        let c = &self.compaction_counters;
        [
            c.compactions.load(Ordering::Relaxed),
            c.failures.load(Ordering::Relaxed),
            c.bytes_written.load(Ordering::Relaxed),
            c.segments_expired.load(Ordering::Relaxed),
            c.bytes_expired.load(Ordering::Relaxed),
        ]
    }

    /// Blocks that need compaction, oldest first.
    fn blocks_needing_work(&self, force: bool) -> Vec<i64> {
        let now = self.options.clock.now_ns();
        let delay = ns(self.options.compaction.delay);
        let tiers: Vec<i64> = self
            .retention
            .read()
            .tiers
            .iter()
            .map(|t| ns(t.resolution))
            .collect();
        let manifest = self.manifest.lock();
        let published = self.published.read();
        let mut blocks: BTreeMap<i64, (Vec<&SegmentMeta>, Vec<&SegmentMeta>)> = BTreeMap::new();
        for s in &manifest.segments {
            let entry = blocks.entry(s.block_start).or_default();
            if s.resolution == 0 {
                entry.0.push(s)
            } else {
                entry.1.push(s)
            }
        }
        let dead = &manifest.dead_columns;
        let mut out = Vec::new();
        for (block, (raw, rollups)) in &blocks {
            let block_end = raw
                .first()
                .or(rollups.first())
                .map_or(*block, |s| s.block_end);
            let cold = force || now >= block_end.saturating_add(delay);
            let max_recency = raw.iter().map(|s| s.recency).max().unwrap_or(0);
            let rollups_fresh = tiers.iter().all(|r| {
                rollups
                    .iter()
                    .any(|s| s.resolution == *r && s.built_from >= max_recency)
            });
            let tombstoned = manifest
                .tombstones
                .iter()
                .any(|t| raw.iter().chain(rollups.iter()).any(|s| t.applies_to(s)));
            let holds_dead = !dead.is_empty()
                && published.segments.iter().any(|seg| {
                    seg.meta.block_start == *block
                        && (0..seg.n_entries())
                            .any(|i| seg.entry_at(i).is_some_and(|e| dead.contains(e.column)))
                });
            let needs = raw.len() >= self.options.compaction.max_segments_per_block
                || (cold && (raw.len() >= 2 || (!raw.is_empty() && !rollups_fresh)))
                || tombstoned
                || holds_dead;
            if needs {
                out.push(*block);
            }
        }
        out
    }

    /// Compacts the oldest block that needs it. `force` ignores `compaction.delay`.
    pub fn compact_next(&self, force: bool) -> Result<Option<CompactionRecord>> {
        let Some(block) = self.blocks_needing_work(force).first().copied() else {
            return Ok(None);
        };
        self.compact_block(block).map(Some)
    }

    /// Compacts every block that needs it, now, then applies retention (tests, tools).
    pub fn compact_all(&self) -> Result<Vec<CompactionRecord>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        while let Some(block) = self
            .blocks_needing_work(true)
            .into_iter()
            .find(|b| !seen.contains(b))
        {
            seen.insert(block);
            out.push(self.compact_block(block)?);
        }
        self.apply_retention()?;
        Ok(out)
    }

    /// Merges block `block_start`: its raw segments into one, its rollups rebuilt.
    pub fn compact_block(&self, block_start: i64) -> Result<CompactionRecord> {
        let _compacting = self.compaction_lock.lock();
        let started = Instant::now();
        let result = self.compact_block_locked(block_start, started);
        let record = match result {
            Ok(record) => {
                self.compaction_counters
                    .compactions
                    .fetch_add(1, Ordering::Relaxed);
                self.compaction_counters
                    .bytes_written
                    .fetch_add(record.bytes_out, Ordering::Relaxed);
                tracing::info!(
                    database = %self.name,
                    block_start,
                    inputs = record.inputs,
                    outputs = record.outputs,
                    bytes_in = record.bytes_in,
                    bytes_out = record.bytes_out,
                    points = record.points,
                    elapsed_ms = record.duration.as_millis() as u64,
                    "compacted a block"
                );
                record
            }
            Err(e) => {
                self.compaction_counters
                    .failures
                    .fetch_add(1, Ordering::Relaxed);
                let record = CompactionRecord {
                    finished_ns: self.options.clock.now_ns(),
                    block_start,
                    inputs: 0,
                    outputs: 0,
                    bytes_in: 0,
                    bytes_out: 0,
                    points: 0,
                    rollup_rows: 0,
                    duration: started.elapsed(),
                    outcome: format!("failed: {e}"),
                };
                self.push_log(record);
                return Err(e);
            }
        };
        self.push_log(record.clone());
        Ok(record)
    }

    fn push_log(&self, record: CompactionRecord) {
        let mut log = self.compaction_log.lock();
        if log.len() >= LOG_LENGTH {
            log.pop_front();
        }
        log.push_back(record);
    }

    fn compact_block_locked(&self, block_start: i64, started: Instant) -> Result<CompactionRecord> {
        let (raw_inputs, rollup_inputs, tombstones, dead, applied) = {
            let manifest = self.manifest.lock();
            let published = self.published.read();
            let raw: Vec<Arc<Segment>> = published
                .segments
                .iter()
                .filter(|s| s.meta.resolution == 0 && s.meta.block_start == block_start)
                .cloned()
                .collect();
            let rollups: Vec<Arc<Segment>> = published
                .segments
                .iter()
                .filter(|s| s.meta.resolution != 0 && s.meta.block_start == block_start)
                .cloned()
                .collect();
            (
                raw,
                rollups,
                manifest.tombstones.clone(),
                manifest.dead_columns.clone(),
                manifest.next_tombstone.saturating_sub(1),
            )
        };
        let block = self.options.block_duration_ns();
        let block_end = block_start.saturating_add(block);
        let tiers: Vec<i64> = self
            .retention
            .read()
            .tiers
            .iter()
            .map(|t| ns(t.resolution))
            .collect();
        let mut throttle = Throttle::new(&self.options.compaction);
        let mut raw_out: Vec<(u32, Vec<Vec<u8>>)> = Vec::new();
        let mut tier_out: Vec<Vec<(u32, Vec<Vec<u8>>)>> = vec![Vec::new(); tiers.len()];
        let mut points = 0u64;
        let mut rollup_rows = 0u64;
        let recency;
        let mut replaced_rollups: Vec<Arc<Segment>> = rollup_inputs.clone();
        if !raw_inputs.is_empty() {
            recency = raw_inputs.iter().map(|s| s.meta.recency).max().unwrap_or(0);
            let mut columns = BTreeSet::new();
            for s in &raw_inputs {
                for i in 0..s.n_entries() {
                    if let Some(e) = s.entry_at(i) {
                        columns.insert(e.column);
                    }
                }
            }
            let options = head_options(&self.options);
            for column in columns {
                if dead.contains(column) {
                    continue;
                }
                let Some((ts, values)) = merge_column(&raw_inputs, column, &tombstones)? else {
                    continue;
                };
                points += ts.len() as u64;
                let mut chunks = Vec::new();
                let mut start = 0;
                while start < ts.len() {
                    let span_end = ts[start]
                        .div_euclid(options.chunk_span)
                        .saturating_mul(options.chunk_span)
                        .saturating_add(options.chunk_span);
                    let mut end = start + ts[start..].partition_point(|t| *t < span_end);
                    end = end.min(start + options.max_chunk_points);
                    let mut part = values.clone();
                    part.truncate_range(start, end);
                    let mut bytes = Vec::new();
                    encode_chunk(&ts[start..end], &part, &mut bytes, true);
                    throttle.account(bytes.len() as u64);
                    chunks.push(bytes);
                    start = end;
                }
                if !chunks.is_empty() {
                    raw_out.push((column, chunks));
                }
                for (k, resolution) in tiers.iter().enumerate() {
                    let mut rows = RollupRows::new(values.field_type());
                    rows.add_points(&ts, &values, *resolution);
                    rollup_rows += rows.len() as u64;
                    let chunks = rollup_chunks(&rows, *resolution);
                    for c in &chunks {
                        throttle.account(c.len() as u64);
                    }
                    if !chunks.is_empty() {
                        tier_out[k].push((column, chunks));
                    }
                }
            }
        } else {
            // Raw data has expired: rewrite the rollups alone, dropping dead columns and the
            // rows that deletions cover whole.
            recency = rollup_inputs
                .iter()
                .map(|s| s.meta.recency)
                .max()
                .unwrap_or(0);
            tier_out = vec![Vec::new(); tiers.len()];
            replaced_rollups.clear();
            for rollup in &rollup_inputs {
                let Some(k) = tiers.iter().position(|r| *r == rollup.meta.resolution) else {
                    continue;
                };
                replaced_rollups.push(rollup.clone());
                for i in 0..rollup.n_entries() {
                    let Some(entry) = rollup.entry_at(i) else {
                        continue;
                    };
                    if dead.contains(entry.column) {
                        continue;
                    }
                    let mut rows: Option<RollupRows> = None;
                    rollup.for_each_chunk(&entry, |offset, _, bytes| {
                        let part = decode_rollup_chunk(bytes).map_err(|e| {
                            EngineError::corrupt(&rollup.path, offset + e.offset as u64, e.reason)
                        })?;
                        match &mut rows {
                            None => rows = Some(part),
                            Some(all) => *all = concat_rows(all, &part),
                        }
                        Ok(true)
                    })?;
                    let Some(mut rows) = rows else { continue };
                    let resolution = rollup.meta.resolution;
                    for t in tombstones
                        .iter()
                        .filter(|t| t.applies_to(&rollup.meta) && t.columns.contains(entry.column))
                    {
                        let keep: Vec<usize> = (0..rows.len())
                            .filter(|&r| {
                                !(rows.times[r] >= t.min_time
                                    && rows.times[r].saturating_add(resolution - 1) <= t.max_time)
                            })
                            .collect();
                        rows = select_rows(&rows, &keep);
                    }
                    rollup_rows += rows.len() as u64;
                    let chunks = rollup_chunks(&rows, resolution);
                    if !chunks.is_empty() {
                        tier_out[k].push((entry.column, chunks));
                    }
                }
            }
        }
        // Write the outputs under new names; nothing refers to them until the manifest does.
        let mut outputs: Vec<SegmentMeta> = Vec::new();
        let mut bytes_out = 0u64;
        if !raw_out.is_empty() {
            let seq = self.allocate_file_seq();
            let refs: Vec<ColumnChunks<'_>> = raw_out
                .iter()
                .map(|(c, chunks)| ColumnChunks {
                    column: *c,
                    chunks: chunks.iter().map(Vec::as_slice).collect(),
                })
                .collect();
            let mut meta = segment::write_segment(&self.dir, seq, block_start, block_end, &refs)?;
            meta.recency = recency;
            meta.applied_tombstones = applied;
            bytes_out += meta.size;
            outputs.push(meta);
        }
        for (k, columns) in tier_out.iter().enumerate() {
            if columns.is_empty() {
                continue;
            }
            let seq = self.allocate_file_seq();
            let refs: Vec<ColumnChunks<'_>> = columns
                .iter()
                .map(|(c, chunks)| ColumnChunks {
                    column: *c,
                    chunks: chunks.iter().map(Vec::as_slice).collect(),
                })
                .collect();
            let mut meta = segment::write_segment(&self.dir, seq, block_start, block_end, &refs)?;
            meta.resolution = tiers[k];
            meta.recency = recency;
            meta.built_from = recency;
            meta.applied_tombstones = applied;
            bytes_out += meta.size;
            outputs.push(meta);
        }
        if tombstones.iter().any(|t| {
            raw_inputs
                .iter()
                .chain(rollup_inputs.iter())
                .any(|s| t.applies_to(&s.meta))
        }) {
            // Deleted points may have left columns empty: the next retention pass looks.
            self.forget_check.store(true, Ordering::SeqCst);
        }
        let inputs: Vec<Arc<Segment>> = raw_inputs
            .iter()
            .chain(replaced_rollups.iter())
            .cloned()
            .collect();
        let bytes_in: u64 = inputs.iter().map(|s| s.meta.size).sum();
        self.commit(&inputs, &outputs)?;
        Ok(CompactionRecord {
            finished_ns: self.options.clock.now_ns(),
            block_start,
            inputs: inputs.len(),
            outputs: outputs.len(),
            bytes_in,
            bytes_out,
            points,
            rollup_rows,
            duration: started.elapsed(),
            outcome: "done".into(),
        })
    }

    /// Replaces `inputs` by `outputs` in the manifest (the commit point), then in what readers
    /// see, then deletes the inputs' files.
    fn commit(&self, inputs: &[Arc<Segment>], outputs: &[SegmentMeta]) -> Result<()> {
        let mut opened = Vec::new();
        for meta in outputs {
            opened.push(Arc::new(Segment::open(
                &self.dir.join(&meta.file_name),
                meta.clone(),
            )?));
        }
        let removed: BTreeSet<&str> = inputs.iter().map(|s| s.meta.file_name.as_str()).collect();
        {
            let _flushing = self.flush_lock.lock();
            let mut manifest = self.manifest.lock().clone();
            manifest
                .segments
                .retain(|s| !removed.contains(s.file_name.as_str()));
            manifest.segments.extend(outputs.iter().cloned());
            // A tombstone is done once no segment it applies to remains.
            let segments = &manifest.segments;
            manifest
                .tombstones
                .retain(|t| segments.iter().any(|s| t.applies_to(s)));
            self.store_manifest(&mut manifest)?;
            let tombstones = Arc::new(manifest.tombstones.clone());
            *self.manifest.lock() = manifest;
            let mut published = self.published.write();
            published
                .segments
                .retain(|s| !removed.contains(s.meta.file_name.as_str()));
            published.segments.extend(opened);
            published.segments.sort_by_key(|s| s.meta.recency);
            published.tombstones = tombstones;
        }
        for segment in inputs {
            if let Err(e) = std::fs::remove_file(&segment.path) {
                tracing::warn!(file = %segment.path.display(), error = %e, "could not remove a compacted segment");
            }
        }
        Ok(())
    }

    /// Deletes expired segments and forgets columns left without data.
    pub fn apply_retention(&self) -> Result<RetentionReport> {
        let _compacting = self.compaction_lock.lock();
        let now = self.options.clock.now_ns();
        let retention = self.retention.read().clone();
        let tiers: Vec<(i64, Option<i64>)> = retention
            .tiers
            .iter()
            .map(|t| (ns(t.resolution), t.retention.map(ns)))
            .collect();
        let raw_cutoff = retention.raw.map(|d| now.saturating_sub(ns(d)));
        let mut report = RetentionReport::default();
        // A block still partly in memory (a late write, a chunk not flushed yet) waits for its
        // flush: removing its files now and flushing the rest later would keep part of what
        // was written together. The head is read first (a flush takes the head's lock, then
        // the published state's); data frozen since is seen in `published.frozen`.
        let head_min_time = self.head.read().min_time();
        let expired: Vec<Arc<Segment>> = {
            let published = self.published.read();
            let in_memory_from = published
                .frozen
                .iter()
                .filter_map(|f| f.min_time())
                .chain(head_min_time)
                .min()
                .unwrap_or(i64::MAX);
            let mut by_block: BTreeMap<i64, Vec<&Arc<Segment>>> = BTreeMap::new();
            for s in &published.segments {
                by_block.entry(s.meta.block_start).or_default().push(s);
            }
            let mut out = Vec::new();
            for segments in by_block.values() {
                let max_raw = segments
                    .iter()
                    .filter(|s| s.meta.resolution == 0)
                    .map(|s| s.meta.recency)
                    .max()
                    .unwrap_or(0);
                let rolled_up = tiers.iter().all(|(r, _)| {
                    segments
                        .iter()
                        .any(|s| s.meta.resolution == *r && s.meta.built_from >= max_raw)
                });
                let in_memory = segments
                    .first()
                    .is_some_and(|s| s.meta.block_end > in_memory_from);
                for s in segments {
                    let expired = if in_memory {
                        false
                    } else if s.meta.resolution == 0 {
                        // Raw data goes once its rollups hold what it held.
                        raw_cutoff.is_some_and(|c| s.meta.block_end <= c) && rolled_up
                    } else {
                        match tiers.iter().find(|(r, _)| *r == s.meta.resolution) {
                            None => true,
                            Some((_, keep)) => {
                                keep.is_some_and(|k| s.meta.block_end <= now.saturating_sub(k))
                            }
                        }
                    };
                    if expired {
                        if s.meta.resolution == 0 {
                            report.raw_segments_removed += 1;
                        } else {
                            report.rollup_segments_removed += 1;
                        }
                        report.bytes_freed += s.meta.size;
                        out.push((*s).clone());
                    }
                }
            }
            out
        };
        // Looking for columns left without data costs a walk over every footer: only after
        // something was removed.
        if expired.is_empty() && !self.forget_check.swap(false, Ordering::SeqCst) {
            return Ok(report);
        }
        // Columns with no data anywhere: not in a remaining segment nor in memory. Only columns
        // that already existed at the previous pass are considered, so a column whose first
        // write is still in flight is never forgotten.
        let live_after: RoaringBitmap = {
            let published = self.published.read();
            let removed: BTreeSet<&str> =
                expired.iter().map(|s| s.meta.file_name.as_str()).collect();
            let mut live = RoaringBitmap::new();
            for s in published
                .segments
                .iter()
                .filter(|s| !removed.contains(s.meta.file_name.as_str()))
            {
                for i in 0..s.n_entries() {
                    if let Some(e) = s.entry_at(i) {
                        live.insert(e.column);
                    }
                }
            }
            for f in &published.frozen {
                for (c, _) in &f.columns {
                    live.insert(*c);
                }
            }
            live |= self.head.read().columns_with_data();
            live
        };
        let watermark = self.compaction_counters_watermark();
        let mut newly_dead = RoaringBitmap::new();
        if watermark > 0 {
            newly_dead.insert_range(0..watermark);
            newly_dead -= &live_after;
            newly_dead -= &self.manifest.lock().dead_columns;
        }
        if expired.is_empty() && newly_dead.is_empty() {
            return Ok(report);
        }
        let forgotten = self.catalog.write().forget(&newly_dead);
        report.columns_forgotten = newly_dead.len();
        report.series_forgotten = forgotten.len();
        {
            let _flushing = self.flush_lock.lock();
            let mut manifest = self.manifest.lock().clone();
            let removed: BTreeSet<&str> =
                expired.iter().map(|s| s.meta.file_name.as_str()).collect();
            manifest
                .segments
                .retain(|s| !removed.contains(s.file_name.as_str()));
            manifest.dead_columns |= &newly_dead;
            manifest.dead_series |= &forgotten;
            let segments = &manifest.segments;
            manifest
                .tombstones
                .retain(|t| segments.iter().any(|s| t.applies_to(s)));
            self.store_manifest(&mut manifest)?;
            let tombstones = Arc::new(manifest.tombstones.clone());
            *self.manifest.lock() = manifest;
            let mut published = self.published.write();
            published
                .segments
                .retain(|s| !removed.contains(s.meta.file_name.as_str()));
            published.tombstones = tombstones;
        }
        for s in &expired {
            if let Err(e) = std::fs::remove_file(&s.path) {
                tracing::warn!(file = %s.path.display(), error = %e, "could not remove an expired segment");
            }
        }
        let c = &self.compaction_counters;
        c.segments_expired
            .fetch_add(expired.len() as u64, Ordering::Relaxed);
        c.bytes_expired
            .fetch_add(report.bytes_freed, Ordering::Relaxed);
        if !expired.is_empty() || !newly_dead.is_empty() {
            tracing::info!(
                database = %self.name,
                raw_segments = report.raw_segments_removed,
                rollup_segments = report.rollup_segments_removed,
                bytes = report.bytes_freed,
                columns_forgotten = report.columns_forgotten,
                "retention removed expired data"
            );
        }
        Ok(report)
    }

    /// The number of columns at the previous retention pass (see `apply_retention`), and
    /// records the current count for the next pass.
    fn compaction_counters_watermark(&self) -> u32 {
        let now = self.catalog.read().column_count();
        let previous = self.retention_watermark.swap(now, Ordering::SeqCst);
        previous.min(now)
    }

    /// Deletes the points of the matching series in `[min_time, max_time]`. Without time
    /// bounds the series' columns are dropped whole (forgotten by the catalog at once, their
    /// data removed by compaction); with bounds a tombstone hides the points at once and
    /// compaction removes them. Writes after the call are not affected.
    pub fn delete(
        &self,
        measurement: Option<&str>,
        filter: &TagFilter,
        min_time: i64,
        max_time: i64,
    ) -> Result<DeleteReport> {
        let mut columns = RoaringBitmap::new();
        let measurements = match measurement {
            Some(m) => vec![m.to_string()],
            None => self.measurements(),
        };
        for m in &measurements {
            for c in self.select(m, None, filter) {
                columns.insert(c.id);
            }
        }
        let report = DeleteReport {
            columns: columns.len(),
            dropped: min_time == i64::MIN && max_time == i64::MAX,
        };
        if columns.is_empty() {
            return Ok(report);
        }
        // Everything written so far goes into segments, which the deletion then covers.
        self.flush(true)?;
        let _compacting = self.compaction_lock.lock();
        let _flushing = self.flush_lock.lock();
        let mut manifest = self.manifest.lock().clone();
        if report.dropped {
            let forgotten = self.catalog.write().forget(&columns);
            manifest.dead_columns |= &columns;
            manifest.dead_series |= &forgotten;
        } else {
            let id = manifest.next_tombstone.max(1);
            manifest.next_tombstone = id + 1;
            // Every segment written so far has a lower number than this one.
            let boundary = self.allocate_file_seq();
            manifest.tombstones.push(Tombstone {
                id,
                boundary,
                min_time,
                max_time,
                columns,
            });
        }
        self.store_manifest(&mut manifest)?;
        let tombstones = Arc::new(manifest.tombstones.clone());
        *self.manifest.lock() = manifest;
        self.published.write().tombstones = tombstones;
        Ok(report)
    }
}

/// Cuts rollup rows of a tier of `resolution` nanoseconds into chunks.
fn rollup_chunks(rows: &RollupRows, resolution: i64) -> Vec<Vec<u8>> {
    let storage = SketchStorage::for_resolution(resolution);
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let end = (start + MAX_ROLLUP_ROWS).min(rows.len());
        let part = rows.slice(start..end);
        let mut bytes = Vec::new();
        encode_rollup_chunk(&part, storage, &mut bytes);
        out.push(bytes);
        start = end;
    }
    out
}

fn concat_rows(a: &RollupRows, b: &RollupRows) -> RollupRows {
    let mut out = a.slice(0..a.len());
    let keep: Vec<usize> = (0..b.len()).collect();
    let extra = select_rows(b, &keep);
    out.times.extend_from_slice(&extra.times);
    out.counts.extend_from_slice(&extra.counts);
    out.first_times.extend_from_slice(&extra.first_times);
    out.last_times.extend_from_slice(&extra.last_times);
    for i in 0..extra.len() {
        out.first.push_from(&extra.first, i);
        out.last.push_from(&extra.last, i);
        if a.field_type.is_numeric() {
            out.min.push_from(&extra.min, i);
            out.max.push_from(&extra.max, i);
            out.sum.push_from(&extra.sum, i);
        }
    }
    out.sum_overflow.extend_from_slice(&extra.sum_overflow);
    for i in 0..extra.sketches.len() {
        out.sketches.push_from(&extra.sketches, i);
    }
    out
}

pub(crate) fn select_rows_pub(rows: &RollupRows, keep: &[usize]) -> RollupRows {
    select_rows(rows, keep)
}

fn select_rows(rows: &RollupRows, keep: &[usize]) -> RollupRows {
    let mut out = RollupRows::new(rows.field_type);
    for &i in keep {
        let one = rows.slice(i..i + 1);
        out.times.push(one.times[0]);
        out.counts.push(one.counts[0]);
        out.first_times.push(one.first_times[0]);
        out.last_times.push(one.last_times[0]);
        out.first.push_from(&one.first, 0);
        out.last.push_from(&one.last, 0);
        if rows.field_type.is_numeric() {
            out.min.push_from(&one.min, 0);
            out.max.push_from(&one.max, 0);
            out.sum.push_from(&one.sum, 0);
            out.sum_overflow.push(one.sum_overflow[0]);
            out.sketches.push_from(&one.sketches, 0);
        }
    }
    out
}

/// One column's points across a block's raw segments: tombstones applied per segment, then
/// merged with the newest write winning on equal timestamps. `None` when nothing remains.
fn merge_column(
    segments: &[Arc<Segment>],
    column: u32,
    tombstones: &[Tombstone],
) -> Result<Option<(Vec<i64>, ColumnValues)>> {
    let mut runs: Vec<(Vec<i64>, ColumnValues)> = Vec::new();
    let mut field_type = FieldType::Float;
    for segment in segments {
        let Some(entry) = segment.find(column) else {
            continue;
        };
        let masks: Vec<(i64, i64)> = tombstones
            .iter()
            .filter(|t| t.applies_to(&segment.meta) && t.columns.contains(column))
            .map(|t| (t.min_time, t.max_time))
            .collect();
        segment.for_each_chunk(&entry, |offset, header, bytes| {
            field_type = header.value_type;
            let mut ts = Vec::new();
            let mut values = ColumnValues::new(header.value_type);
            decode_chunk(bytes, &mut ts, &mut values).map_err(|e| {
                EngineError::corrupt(&segment.path, offset + e.offset as u64, e.reason)
            })?;
            if !masks.is_empty() {
                let keep: Vec<usize> = (0..ts.len())
                    .filter(|&i| !masks.iter().any(|(lo, hi)| ts[i] >= *lo && ts[i] <= *hi))
                    .collect();
                let mut kept_values = ColumnValues::new(header.value_type);
                for &i in &keep {
                    kept_values.push_from(&values, i);
                }
                ts = keep.iter().map(|&i| ts[i]).collect();
                values = kept_values;
            }
            if !ts.is_empty() {
                runs.push((ts, values));
            }
            Ok(true)
        })?;
    }
    if runs.is_empty() {
        return Ok(None);
    }
    if runs.len() == 1 {
        return Ok(runs.pop());
    }
    // Runs are in recency order (segments oldest first, chunks in time order).
    Ok(Some(crate::chunk::merge_newest_wins(&runs, field_type)))
}

/// Runs one round of background work on a database: retention, then at most a few
/// compactions (so one busy database does not starve the others).
pub(crate) fn background_round(db: &Database) {
    if let Err(e) = db.apply_retention() {
        tracing::error!(database = %db.name, error = %e, "retention pass failed; will retry");
    }
    for _ in 0..4 {
        match db.compact_next(false) {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                tracing::error!(database = %db.name, error = %e, "compaction failed; will retry");
                break;
            }
        }
    }
}
