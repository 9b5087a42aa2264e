//! The read API: columns selected from the catalog, and a consistent view of their chunks.
//!
//! A [`ReadView`] is captured atomically for a set of columns and a time range: it holds the
//! segments, the chunks being flushed and copies of the head's chunks as they were at one
//! instant, so a query sees every write acknowledged before it started and none torn.
//!
//! [`ReadView::pieces`] turns a column's chunks into time-ordered, non-overlapping [`Piece`]s. A
//! chunk that overlaps no other is a piece of its own whose statistics can answer an aggregate
//! without decoding; chunks that overlap (out-of-order writes, or data not yet compacted) are
//! decoded and merged into one piece, the newest write winning on equal timestamps.

use std::sync::Arc;

use regex::Regex;
use roaring::RoaringBitmap;

use crate::catalog::{Catalog, TagMatcher};
use crate::chunk::{ChunkHeader, ChunkStats, ColumnValues, StatsBuilder, ValueStats, decode_chunk};
use crate::error::{EngineError, Result};
use crate::head::EncodedChunk;
use crate::model::FieldType;
use crate::rollup::{RollupParts, RollupRows};
use crate::segment::Segment;

/// A boolean combination of tag matchers, evaluated on the postings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TagFilter {
    /// Every series of the measurement.
    All,
    Match(TagMatcher),
    And(Vec<TagFilter>),
    Or(Vec<TagFilter>),
    Not(Box<TagFilter>),
}

impl TagFilter {
    pub fn equal(key: impl Into<String>, value: impl Into<String>) -> TagFilter {
        TagFilter::Match(TagMatcher::Equal {
            key: key.into(),
            value: value.into(),
        })
    }

    pub fn not_equal(key: impl Into<String>, value: impl Into<String>) -> TagFilter {
        TagFilter::Match(TagMatcher::NotEqual {
            key: key.into(),
            value: value.into(),
        })
    }

    pub fn regex(key: impl Into<String>, regex: Regex) -> TagFilter {
        TagFilter::Match(TagMatcher::Regex {
            key: key.into(),
            regex,
        })
    }

    pub fn not_regex(key: impl Into<String>, regex: Regex) -> TagFilter {
        TagFilter::Match(TagMatcher::NotRegex {
            key: key.into(),
            regex,
        })
    }

    pub(crate) fn evaluate(&self, catalog: &Catalog, measurement: &str) -> RoaringBitmap {
        let all = || {
            catalog
                .measurements
                .get(measurement)
                .map(|m| m.columns.clone())
                .unwrap_or_default()
        };
        match self {
            TagFilter::All => all(),
            TagFilter::Match(m) => catalog.match_tag(measurement, m),
            TagFilter::And(parts) => {
                let mut out = all();
                for p in parts {
                    if out.is_empty() {
                        break;
                    }
                    out &= p.evaluate(catalog, measurement);
                }
                out
            }
            TagFilter::Or(parts) => {
                let mut out = RoaringBitmap::new();
                for p in parts {
                    out |= p.evaluate(catalog, measurement);
                }
                out
            }
            TagFilter::Not(inner) => all() - inner.evaluate(catalog, measurement),
        }
    }
}

/// A column chosen for reading, with what identifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnInfo {
    pub id: u32,
    pub measurement: String,
    /// Sorted by key.
    pub tags: Vec<(String, String)>,
    pub field: String,
    pub field_type: FieldType,
}

impl ColumnInfo {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.tags[i].1.as_str())
    }
}

/// Where a chunk's bytes live.
#[derive(Clone)]
pub(crate) enum ChunkSource {
    Memory(Arc<EncodedChunk>),
    /// `masks`: time ranges deleted by tombstones not yet applied to the segment.
    Mapped {
        segment: Arc<Segment>,
        offset: u64,
        header: ChunkHeader,
        masks: Vec<(i64, i64)>,
    },
}

/// A rollup chunk to read, keeping the rows whose bucket starts in `[keep_min, keep_max]`.
#[derive(Clone)]
pub(crate) struct RollupSource {
    pub(crate) segment: Arc<Segment>,
    pub(crate) offset: u64,
    pub(crate) header: ChunkHeader,
    pub(crate) keep_min: i64,
    pub(crate) keep_max: i64,
    pub(crate) masks: Vec<(i64, i64)>,
}

/// How a tiered read was answered, for EXPLAIN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierUse {
    /// The resolution asked for (0: raw only).
    pub resolution: i64,
    /// Blocks read as rollup rows of that resolution.
    pub rollup_blocks: u64,
    /// Blocks read as raw chunks.
    pub raw_blocks: u64,
    /// Blocks whose raw data has expired, read from the finest rollup they have: rows at the
    /// range's edges may hold points outside it.
    pub approximate_blocks: u64,
    /// Blocks without raw data (expired), exact or approximate: a raw-only read would miss
    /// them.
    pub blocks_without_raw: u64,
}

impl ChunkSource {
    pub(crate) fn header(&self) -> &ChunkHeader {
        match self {
            ChunkSource::Memory(c) => &c.header,
            ChunkSource::Mapped { header, .. } => header,
        }
    }

    fn masks(&self) -> &[(i64, i64)] {
        match self {
            ChunkSource::Memory(_) => &[],
            ChunkSource::Mapped { masks, .. } => masks,
        }
    }

    /// Whether a deletion hides some of the chunk's points.
    fn masked(&self) -> bool {
        let s = &self.header().stats;
        self.masks()
            .iter()
            .any(|(lo, hi)| *lo <= s.max_time && *hi >= s.min_time)
    }

    /// Decodes the chunk and drops the points deletions hide.
    fn decode_visible(&self, ts: &mut Vec<i64>, values: &mut ColumnValues) -> Result<()> {
        self.decode(ts, values)?;
        if self.masked() {
            let masks = self.masks();
            let keep: Vec<usize> = (0..ts.len())
                .filter(|&i| !masks.iter().any(|(lo, hi)| ts[i] >= *lo && ts[i] <= *hi))
                .collect();
            let mut kept = ColumnValues::new(values.field_type());
            for &i in &keep {
                kept.push_from(values, i);
            }
            *ts = keep.iter().map(|&i| ts[i]).collect();
            *values = kept;
        }
        Ok(())
    }

    fn decode(&self, ts: &mut Vec<i64>, values: &mut ColumnValues) -> Result<()> {
        match self {
            ChunkSource::Memory(chunk) => decode_chunk(&chunk.bytes, ts, values)
                .map(|_| ())
                .map_err(|e| {
                    EngineError::corrupt(
                        "<head>",
                        e.offset as u64,
                        format!("BUG: head chunk does not decode: {}", e.reason),
                    )
                }),
            ChunkSource::Mapped {
                segment,
                offset,
                header,
                ..
            } => {
                let start = *offset as usize;
                let end = start + header.chunk_len as usize;
                let bytes = segment.bytes().get(start..end).ok_or_else(|| {
                    EngineError::corrupt(&segment.path, *offset, "chunk lies outside the file")
                })?;
                decode_chunk(bytes, ts, values).map(|_| ()).map_err(|e| {
                    EngineError::corrupt(&segment.path, offset + e.offset as u64, e.reason)
                })
            }
        }
    }
}

/// A time-ordered run of a column's points, not overlapping any other piece of that column.
pub struct Piece {
    stats: ChunkStats,
    data: PieceData,
}

enum PieceData {
    Chunk(ChunkSource),
    Merged { ts: Vec<i64>, values: ColumnValues },
}

impl Piece {
    /// Count, time range and value statistics, exact for the piece's points.
    pub fn stats(&self) -> &ChunkStats {
        &self.stats
    }

    /// Whether every point lies in `[min_time, max_time]`.
    pub fn within(&self, min_time: i64, max_time: i64) -> bool {
        self.stats.min_time >= min_time && self.stats.max_time <= max_time
    }

    /// Whether the piece is one stored chunk (decoding costs work) rather than already-decoded
    /// merged points.
    pub fn is_stored_chunk(&self) -> bool {
        matches!(self.data, PieceData::Chunk(_))
    }

    /// Decodes the piece's points into the buffers, which are cleared first.
    pub fn decode_into(&self, ts: &mut Vec<i64>, values: &mut ColumnValues) -> Result<()> {
        match &self.data {
            PieceData::Chunk(source) => source.decode(ts, values),
            PieceData::Merged { ts: t, values: v } => {
                ts.clear();
                ts.extend_from_slice(t);
                *values = v.clone();
                Ok(())
            }
        }
    }
}

/// A consistent view of some columns' chunks over a time range.
pub struct ReadView {
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
    /// Column id -> its chunks in recency order (oldest source first).
    pub(crate) columns: Vec<(u32, Vec<ChunkSource>)>,
    /// Column id -> rollup chunks standing for blocks not read raw (tiered reads only).
    pub(crate) rollups: Vec<(u32, Vec<RollupSource>)>,
    pub(crate) tier: TierUse,
}

impl ReadView {
    pub fn min_time(&self) -> i64 {
        self.min_time
    }

    pub fn max_time(&self) -> i64 {
        self.max_time
    }

    /// How a tiered read chose between rollups and raw chunks.
    pub fn tier_use(&self) -> TierUse {
        self.tier
    }

    /// Number of rollup chunks the view holds for a column.
    pub fn rollup_chunk_count(&self, column: u32) -> usize {
        match self.rollups.binary_search_by_key(&column, |(c, _)| *c) {
            Ok(i) => self.rollups[i].1.len(),
            Err(_) => 0,
        }
    }

    /// The column's rollup rows (blocks read from a tier), in time order, already limited to
    /// the rows the read kept; the resolution is each source segment's.
    pub fn rollup_rows(&self, column: u32) -> Result<Vec<(i64, RollupRows)>> {
        let mut out = Vec::new();
        self.for_each_rollup_rows(column, RollupParts::ALL, |resolution, rows| -> Result<()> {
            out.push((resolution, rows.clone()));
            Ok(())
        })?;
        Ok(out)
    }

    /// Calls `visit` with each rollup chunk's rows of a column (as [`ReadView::rollup_rows`]
    /// returns them, with only `parts` decoded), decoded one at a time into the same buffers.
    pub fn for_each_rollup_rows<E: From<EngineError>>(
        &self,
        column: u32,
        parts: RollupParts,
        mut visit: impl FnMut(i64, &RollupRows) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let sources = match self.rollups.binary_search_by_key(&column, |(c, _)| *c) {
            Ok(i) => &self.rollups[i].1,
            Err(_) => return Ok(()),
        };
        let mut rows = RollupRows::new(FieldType::Float);
        for source in sources {
            let start = source.offset as usize;
            let end = start + source.header.chunk_len as usize;
            let bytes = source.segment.bytes().get(start..end).ok_or_else(|| {
                EngineError::corrupt(
                    &source.segment.path,
                    source.offset,
                    "chunk lies outside the file",
                )
            })?;
            crate::chunk::decode_rollup_chunk_into(bytes, parts, &mut rows).map_err(|e| {
                EngineError::corrupt(
                    &source.segment.path,
                    source.offset + e.offset as u64,
                    e.reason,
                )
            })?;
            let resolution = source.segment.meta.resolution;
            let kept = |r: usize| {
                let t = rows.times[r];
                t >= source.keep_min
                    && t <= source.keep_max
                    && !source
                        .masks
                        .iter()
                        .any(|(lo, hi)| t >= *lo && t.saturating_add(resolution - 1) <= *hi)
            };
            if (0..rows.len()).all(kept) {
                if !rows.is_empty() {
                    visit(resolution, &rows)?;
                }
                continue;
            }
            let keep: Vec<usize> = (0..rows.len()).filter(|&r| kept(r)).collect();
            let selected = crate::compaction::select_rows_pub(&rows, &keep);
            if !selected.is_empty() {
                visit(resolution, &selected)?;
            }
        }
        Ok(())
    }

    /// Whether a rollup chunk the view holds for an integer or unsigned column may hold a row
    /// whose sum overflowed: its header then keeps no sum (it also keeps none when only the
    /// chunk's total does not fit). Answered from headers, without decoding.
    pub fn rollup_sum_may_overflow(&self, column: u32) -> bool {
        let sources = match self.rollups.binary_search_by_key(&column, |(c, _)| *c) {
            Ok(i) => &self.rollups[i].1,
            Err(_) => return false,
        };
        sources.iter().any(|source| {
            matches!(
                source.header.stats.values,
                ValueStats::Integer { sum: None, .. } | ValueStats::Unsigned { sum: None, .. }
            )
        })
    }

    /// Statistics of each chunk the view holds for a column, as stored (overlapping chunks not
    /// yet merged): what a planner reads to size the work before decoding anything.
    pub fn chunk_stats(&self, column: u32) -> impl Iterator<Item = &ChunkStats> + '_ {
        self.sources(column).iter().map(|s| &s.header().stats)
    }

    /// Number of stored chunks the view holds for a column.
    pub fn chunk_count(&self, column: u32) -> usize {
        self.sources(column).len()
    }

    /// The earliest and latest timestamps of a column's chunks in the view, from chunk headers
    /// (no decoding); chunks may extend past the view's range.
    pub fn time_bounds(&self, column: u32) -> Option<(i64, i64)> {
        let sources = self.sources(column);
        let min = sources.iter().map(|s| s.header().stats.min_time).min()?;
        let max = sources.iter().map(|s| s.header().stats.max_time).max()?;
        Some((min, max))
    }

    fn sources(&self, column: u32) -> &[ChunkSource] {
        match self.columns.binary_search_by_key(&column, |(c, _)| *c) {
            Ok(i) => &self.columns[i].1,
            Err(_) => &[],
        }
    }

    /// The column's data as time-ordered, non-overlapping pieces. Overlapping chunks are
    /// decoded and merged here (newest write wins), so a corrupt chunk is reported here too.
    pub fn pieces(&self, column: u32) -> Result<Vec<Piece>> {
        let sources = self.sources(column);
        // Sort by start time, remembering each chunk's recency rank.
        let mut order: Vec<usize> = (0..sources.len()).collect();
        order.sort_by_key(|&i| (sources[i].header().stats.min_time, i));
        let mut pieces = Vec::new();
        let mut group: Vec<usize> = Vec::new();
        let mut group_end = i64::MIN;
        for i in order {
            let stats = sources[i].header().stats;
            if !group.is_empty() && stats.min_time > group_end {
                pieces.extend(self.make_piece(sources, &group)?);
                group.clear();
            }
            group_end = if group.is_empty() {
                stats.max_time
            } else {
                group_end.max(stats.max_time)
            };
            group.push(i);
        }
        if !group.is_empty() {
            pieces.extend(self.make_piece(sources, &group)?);
        }
        Ok(pieces)
    }

    /// One piece for a group of overlapping chunks; `None` when deletions hid every point.
    fn make_piece(&self, sources: &[ChunkSource], group: &[usize]) -> Result<Option<Piece>> {
        if let [only] = group {
            let source = &sources[*only];
            if !source.masked() {
                return Ok(Some(Piece {
                    stats: source.header().stats,
                    data: PieceData::Chunk(source.clone()),
                }));
            }
        }
        // Decode every chunk; order points by (time, recency) and keep the newest per time.
        let field_type = sources[group[0]].header().value_type;
        let mut decoded: Vec<(Vec<i64>, ColumnValues)> = Vec::with_capacity(group.len());
        let mut ranked = group.to_vec();
        ranked.sort_unstable();
        for &i in &ranked {
            let mut ts = Vec::new();
            let mut values = ColumnValues::new(field_type);
            sources[i].decode_visible(&mut ts, &mut values)?;
            if values.field_type() != field_type {
                return Err(EngineError::corrupt(
                    "<read>",
                    0,
                    format!(
                        "chunks of one column disagree on its type ({} and {})",
                        field_type,
                        values.field_type()
                    ),
                ));
            }
            decoded.push((ts, values));
        }
        let (ts_out, values_out) = crate::chunk::merge_newest_wins(&decoded, field_type);
        let Some(stats) = StatsBuilder::from_points(&ts_out, &values_out) else {
            return Ok(None);
        };
        Ok(Some(Piece {
            stats,
            data: PieceData::Merged {
                ts: ts_out,
                values: values_out,
            },
        }))
    }
}
