//! Chunks: a run of up to `MAX_CHUNK_POINTS` points of one column, strictly increasing in time,
//! with statistics that let queries answer aggregates without decoding.
//!
//! The same layout serves the head's sealed chunks (in memory) and the chunks of segment files
//! (on disk, see `docs/format/segment.md`): a fixed 80-byte header followed by the payload (the
//! timestamp stream then the value stream, optionally wrapped in one zstd frame).

use std::cell::RefCell;

use crate::bytes::{DecodeError, Reader};
use crate::codec::{self, CodecError, MAX_CHUNK_POINTS, TsEncoding, ValueEncoding, Values};
use crate::model::{FieldType, FieldValue};

pub(crate) const CHUNK_HEADER_LEN: usize = 80;
const FLAG_ZSTD: u8 = 1;
const FLAG_SUM_OVERFLOW: u8 = 2;
/// The chunk holds rollup rows (see `rollup.rs`) rather than raw points.
pub(crate) const FLAG_ROLLUP: u8 = 4;
/// Rollup chunks: the sketch stream is stored in a section of its own after streams 1-10.
const FLAG_SKETCHES_APART: u8 = 8;
const KNOWN_FLAGS: u8 = FLAG_ZSTD | FLAG_SUM_OVERFLOW | FLAG_ROLLUP | FLAG_SKETCHES_APART;
/// Wrap a payload in zstd only when that saves at least this fraction (decoding a raw payload
/// is much faster, so small savings are not worth it).
const ZSTD_MIN_SAVING: f64 = 0.10;

/// Statistics of the values of one chunk.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ValueStats {
    /// `min` and `max` ignore NaN (they are NaN only when every value is); `sum` is the IEEE sum
    /// in time order, so a NaN or opposite infinities make it NaN.
    Float {
        min: f64,
        max: f64,
        sum: f64,
        first: f64,
        last: f64,
    },
    /// `sum` is `None` when the exact sum does not fit in an i64.
    Integer {
        min: i64,
        max: i64,
        sum: Option<i64>,
        first: i64,
        last: i64,
    },
    /// `sum` is `None` when the exact sum does not fit in a u64.
    Unsigned {
        min: u64,
        max: u64,
        sum: Option<u64>,
        first: u64,
        last: u64,
    },
    Boolean {
        true_count: u32,
        first: bool,
        last: bool,
    },
    /// Strings keep no value statistics.
    String,
}

/// What a chunk's header tells without decoding it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkStats {
    pub count: u32,
    pub min_time: i64,
    pub max_time: i64,
    pub values: ValueStats,
}

/// Decoded values of one type, in caller-owned buffers that are cleared and reused.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ColumnValues {
    Float(Vec<f64>),
    Integer(Vec<i64>),
    Unsigned(Vec<u64>),
    Boolean(Vec<bool>),
    String(Vec<String>),
}

impl ColumnValues {
    pub fn new(field_type: FieldType) -> ColumnValues {
        match field_type {
            FieldType::Float => ColumnValues::Float(Vec::new()),
            FieldType::Integer => ColumnValues::Integer(Vec::new()),
            FieldType::Unsigned => ColumnValues::Unsigned(Vec::new()),
            FieldType::Boolean => ColumnValues::Boolean(Vec::new()),
            FieldType::String => ColumnValues::String(Vec::new()),
        }
    }

    pub fn field_type(&self) -> FieldType {
        match self {
            ColumnValues::Float(_) => FieldType::Float,
            ColumnValues::Integer(_) => FieldType::Integer,
            ColumnValues::Unsigned(_) => FieldType::Unsigned,
            ColumnValues::Boolean(_) => FieldType::Boolean,
            ColumnValues::String(_) => FieldType::String,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Float(v) => v.len(),
            ColumnValues::Integer(v) => v.len(),
            ColumnValues::Unsigned(v) => v.len(),
            ColumnValues::Boolean(v) => v.len(),
            ColumnValues::String(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        match self {
            ColumnValues::Float(v) => v.clear(),
            ColumnValues::Integer(v) => v.clear(),
            ColumnValues::Unsigned(v) => v.clear(),
            ColumnValues::Boolean(v) => v.clear(),
            ColumnValues::String(v) => v.clear(),
        }
    }

    /// Clears and makes the buffer hold `field_type`, keeping the allocation when it can.
    pub fn reset(&mut self, field_type: FieldType) {
        if self.field_type() == field_type {
            self.clear();
        } else {
            *self = ColumnValues::new(field_type);
        }
    }

    /// Keeps the values at indexes `start..end`.
    pub(crate) fn truncate_range(&mut self, start: usize, end: usize) {
        fn keep<T>(v: &mut Vec<T>, start: usize, end: usize) {
            v.truncate(end);
            v.drain(..start);
        }
        match self {
            ColumnValues::Float(v) => keep(v, start, end),
            ColumnValues::Integer(v) => keep(v, start, end),
            ColumnValues::Unsigned(v) => keep(v, start, end),
            ColumnValues::Boolean(v) => keep(v, start, end),
            ColumnValues::String(v) => keep(v, start, end),
        }
    }

    /// The value at `index` as a borrowed field value.
    pub fn get(&self, index: usize) -> Option<FieldValue<'_>> {
        Some(match self {
            ColumnValues::Float(v) => FieldValue::Float(*v.get(index)?),
            ColumnValues::Integer(v) => FieldValue::Integer(*v.get(index)?),
            ColumnValues::Unsigned(v) => FieldValue::Unsigned(*v.get(index)?),
            ColumnValues::Boolean(v) => FieldValue::Boolean(*v.get(index)?),
            ColumnValues::String(v) => FieldValue::String(v.get(index)?.as_str().into()),
        })
    }

    /// Appends a value of the buffer's type.
    ///
    /// # Panics
    /// When the value has another type: that is a bug in the caller, which knows the column's
    /// type from the catalog.
    pub fn push(&mut self, value: &FieldValue<'_>) {
        match (self, value) {
            (ColumnValues::Float(v), FieldValue::Float(x)) => v.push(*x),
            (ColumnValues::Integer(v), FieldValue::Integer(x)) => v.push(*x),
            (ColumnValues::Unsigned(v), FieldValue::Unsigned(x)) => v.push(*x),
            (ColumnValues::Boolean(v), FieldValue::Boolean(x)) => v.push(*x),
            (ColumnValues::String(v), FieldValue::String(x)) => v.push(x.to_string()),
            (this, value) => unreachable!(
                "BUG: pushing a {} value into a {} buffer",
                value.field_type(),
                this.field_type()
            ),
        }
    }

    /// Appends `other[index]`.
    ///
    /// # Panics
    /// When the buffers hold different types or `index` is out of bounds (bugs in the caller).
    pub fn push_from(&mut self, other: &ColumnValues, index: usize) {
        match (self, other) {
            (ColumnValues::Float(a), ColumnValues::Float(b)) => a.push(b[index]),
            (ColumnValues::Integer(a), ColumnValues::Integer(b)) => a.push(b[index]),
            (ColumnValues::Unsigned(a), ColumnValues::Unsigned(b)) => a.push(b[index]),
            (ColumnValues::Boolean(a), ColumnValues::Boolean(b)) => a.push(b[index]),
            (ColumnValues::String(a), ColumnValues::String(b)) => a.push(b[index].clone()),
            (a, b) => unreachable!(
                "BUG: merging {} values into a {} buffer",
                b.field_type(),
                a.field_type()
            ),
        }
    }

    pub(crate) fn as_values(&self) -> Values<'_> {
        match self {
            ColumnValues::Float(v) => Values::Float(v),
            ColumnValues::Integer(v) => Values::Integer(v),
            ColumnValues::Unsigned(v) => Values::Unsigned(v),
            ColumnValues::Boolean(v) => Values::Boolean(v),
            ColumnValues::String(v) => Values::String(v),
        }
    }
}

/// Accumulates statistics one value at a time (the head's open chunk) or over a slice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StatsBuilder {
    stats: Option<ChunkStats>,
}

impl StatsBuilder {
    pub(crate) fn new() -> StatsBuilder {
        StatsBuilder { stats: None }
    }

    pub(crate) fn get(&self) -> Option<ChunkStats> {
        self.stats
    }

    pub(crate) fn add(&mut self, ts: i64, value: &FieldValue<'_>) {
        let Some(stats) = &mut self.stats else {
            self.stats = Some(ChunkStats {
                count: 1,
                min_time: ts,
                max_time: ts,
                values: match value {
                    FieldValue::Float(v) => ValueStats::Float {
                        min: *v,
                        max: *v,
                        sum: *v,
                        first: *v,
                        last: *v,
                    },
                    FieldValue::Integer(v) => ValueStats::Integer {
                        min: *v,
                        max: *v,
                        sum: Some(*v),
                        first: *v,
                        last: *v,
                    },
                    FieldValue::Unsigned(v) => ValueStats::Unsigned {
                        min: *v,
                        max: *v,
                        sum: Some(*v),
                        first: *v,
                        last: *v,
                    },
                    FieldValue::Boolean(v) => ValueStats::Boolean {
                        true_count: u32::from(*v),
                        first: *v,
                        last: *v,
                    },
                    FieldValue::String(_) => ValueStats::String,
                },
            });
            return;
        };
        stats.count += 1;
        // Points arrive in time order within a chunk, but stats are also built over merged
        // data, so keep min/max time and first/last by comparison rather than by position.
        let is_first = ts < stats.min_time;
        let is_last = ts >= stats.max_time;
        stats.min_time = stats.min_time.min(ts);
        stats.max_time = stats.max_time.max(ts);
        match (&mut stats.values, value) {
            (
                ValueStats::Float {
                    min,
                    max,
                    sum,
                    first,
                    last,
                },
                FieldValue::Float(v),
            ) => {
                if v < min || min.is_nan() {
                    *min = *v;
                }
                if v > max || max.is_nan() {
                    *max = *v;
                }
                *sum += *v;
                if is_first {
                    *first = *v;
                }
                if is_last {
                    *last = *v;
                }
            }
            (
                ValueStats::Integer {
                    min,
                    max,
                    sum,
                    first,
                    last,
                },
                FieldValue::Integer(v),
            ) => {
                *min = (*min).min(*v);
                *max = (*max).max(*v);
                *sum = sum.and_then(|s| s.checked_add(*v));
                if is_first {
                    *first = *v;
                }
                if is_last {
                    *last = *v;
                }
            }
            (
                ValueStats::Unsigned {
                    min,
                    max,
                    sum,
                    first,
                    last,
                },
                FieldValue::Unsigned(v),
            ) => {
                *min = (*min).min(*v);
                *max = (*max).max(*v);
                *sum = sum.and_then(|s| s.checked_add(*v));
                if is_first {
                    *first = *v;
                }
                if is_last {
                    *last = *v;
                }
            }
            (
                ValueStats::Boolean {
                    true_count,
                    first,
                    last,
                },
                FieldValue::Boolean(v),
            ) => {
                *true_count += u32::from(*v);
                if is_first {
                    *first = *v;
                }
                if is_last {
                    *last = *v;
                }
            }
            (ValueStats::String, FieldValue::String(_)) => {}
            (stats, value) => unreachable!(
                "BUG: adding a {} value to statistics of another type ({stats:?})",
                value.field_type()
            ),
        }
    }

    pub(crate) fn from_points(ts: &[i64], values: &ColumnValues) -> Option<ChunkStats> {
        let mut builder = StatsBuilder::new();
        for (i, &t) in ts.iter().enumerate() {
            if let Some(v) = values.get(i) {
                builder.add(t, &v);
            }
        }
        builder.get()
    }
}

/// The parsed fixed header of a chunk.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ChunkHeader {
    pub(crate) chunk_len: u32,
    pub(crate) stats: ChunkStats,
    pub(crate) value_type: FieldType,
    pub(crate) ts_encoding: TsEncoding,
    pub(crate) value_encoding: ValueEncoding,
    pub(crate) flags: u8,
    pub(crate) ts_len: u32,
}

fn stats_words(stats: &ValueStats) -> ([u64; 5], bool) {
    match *stats {
        ValueStats::Float {
            min,
            max,
            sum,
            first,
            last,
        } => (
            [
                min.to_bits(),
                max.to_bits(),
                sum.to_bits(),
                first.to_bits(),
                last.to_bits(),
            ],
            false,
        ),
        ValueStats::Integer {
            min,
            max,
            sum,
            first,
            last,
        } => (
            [
                min as u64,
                max as u64,
                sum.unwrap_or(0) as u64,
                first as u64,
                last as u64,
            ],
            sum.is_none(),
        ),
        ValueStats::Unsigned {
            min,
            max,
            sum,
            first,
            last,
        } => ([min, max, sum.unwrap_or(0), first, last], sum.is_none()),
        ValueStats::Boolean {
            true_count,
            first,
            last,
        } => (
            [
                0,
                0,
                u64::from(true_count),
                u64::from(first),
                u64::from(last),
            ],
            false,
        ),
        ValueStats::String => ([0; 5], false),
    }
}

fn stats_from_words(
    value_type: FieldType,
    w: [u64; 5],
    sum_overflow: bool,
    count: u32,
) -> Result<ValueStats, String> {
    Ok(match value_type {
        FieldType::Float => ValueStats::Float {
            min: f64::from_bits(w[0]),
            max: f64::from_bits(w[1]),
            sum: f64::from_bits(w[2]),
            first: f64::from_bits(w[3]),
            last: f64::from_bits(w[4]),
        },
        FieldType::Integer => ValueStats::Integer {
            min: w[0] as i64,
            max: w[1] as i64,
            sum: (!sum_overflow).then_some(w[2] as i64),
            first: w[3] as i64,
            last: w[4] as i64,
        },
        FieldType::Unsigned => ValueStats::Unsigned {
            min: w[0],
            max: w[1],
            sum: (!sum_overflow).then_some(w[2]),
            first: w[3],
            last: w[4],
        },
        FieldType::Boolean => {
            if w[2] > u64::from(count) || w[3] > 1 || w[4] > 1 {
                return Err("boolean statistics out of range".into());
            }
            ValueStats::Boolean {
                true_count: w[2] as u32,
                first: w[3] == 1,
                last: w[4] == 1,
            }
        }
        FieldType::String => ValueStats::String,
    })
}

/// Encodes points into a chunk (header and payload) appended to `out`, choosing the smallest
/// encodings. `ts` is strictly increasing, 1..=MAX_CHUNK_POINTS points.
pub(crate) fn encode_chunk(ts: &[i64], values: &ColumnValues, out: &mut Vec<u8>, try_zstd: bool) {
    debug_assert!(!ts.is_empty() && ts.len() <= MAX_CHUNK_POINTS && ts.len() == values.len());
    debug_assert!(ts.windows(2).all(|w| w[0] < w[1]));
    let Some(stats) = StatsBuilder::from_points(ts, values) else {
        return;
    };
    let mut payload = Vec::with_capacity(ts.len() * 3);
    let ts_encoding = codec::encode_timestamps(ts, &mut payload);
    let ts_len = payload.len();
    let value_encoding = codec::encode_values(values.as_values(), &mut payload);
    write_chunk(
        &stats,
        values.field_type(),
        ts_encoding,
        value_encoding,
        ts_len,
        &payload,
        try_zstd,
        out,
    );
}

/// Writes a chunk from already-encoded streams (`payload` = timestamps then values).
#[expect(clippy::too_many_arguments, reason = "one argument per header field")]
pub(crate) fn write_chunk(
    stats: &ChunkStats,
    value_type: FieldType,
    ts_encoding: TsEncoding,
    value_encoding: ValueEncoding,
    ts_len: usize,
    payload: &[u8],
    try_zstd: bool,
    out: &mut Vec<u8>,
) {
    let compressed = if try_zstd { compress(payload) } else { None };
    let (stored, flags): (&[u8], u8) = match &compressed {
        Some(c) => (c, FLAG_ZSTD),
        None => (payload, 0),
    };
    write_stored_chunk(
        stats,
        value_type,
        (ts_encoding, value_encoding),
        ts_len,
        flags,
        stored,
        out,
    );
}

/// The payload as one zstd frame, when that saves at least [`ZSTD_MIN_SAVING`].
fn compress(payload: &[u8]) -> Option<Vec<u8>> {
    if payload.len() < 64 {
        return None;
    }
    ZSTD_COMPRESSOR
        .with(|cell| {
            let mut cell = cell.borrow_mut();
            let compressor = match &mut *cell {
                Some(c) => c,
                None => cell.insert(zstd::bulk::Compressor::new(3).ok()?),
            };
            compressor.compress(payload).ok()
        })
        .filter(|c| (c.len() as f64) < payload.len() as f64 * (1.0 - ZSTD_MIN_SAVING))
}

/// Writes the header and the stored (possibly compressed) payload.
fn write_stored_chunk(
    stats: &ChunkStats,
    value_type: FieldType,
    (ts_encoding, value_encoding): (TsEncoding, ValueEncoding),
    ts_len: usize,
    mut flags: u8,
    stored: &[u8],
    out: &mut Vec<u8>,
) {
    let (words, sum_overflow) = stats_words(&stats.values);
    if sum_overflow {
        flags |= FLAG_SUM_OVERFLOW;
    }
    let start = out.len();
    let chunk_len = (CHUNK_HEADER_LEN + stored.len()) as u32;
    out.extend_from_slice(&chunk_len.to_le_bytes());
    out.extend_from_slice(&stats.count.to_le_bytes());
    out.extend_from_slice(&stats.min_time.to_le_bytes());
    out.extend_from_slice(&stats.max_time.to_le_bytes());
    out.push(value_type.to_byte());
    out.push(ts_encoding.to_byte());
    out.push(value_encoding.to_byte());
    out.push(flags);
    out.extend_from_slice(&(ts_len as u32).to_le_bytes());
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
    let header_crc = crc32fast::hash(&out[start..start + 72]);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(stored).to_le_bytes());
    out.extend_from_slice(stored);
}

/// How a rollup chunk's sketch section is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SketchStorage {
    /// In a zstd frame when that saves 10 %: about half the bytes of the plain packed form,
    /// for tiers finer than an hour, which hold most of a tier's bytes.
    Compressed,
    /// Plain packed, merged straight from the mapped file: for tiers of an hour or coarser,
    /// which month-long percentile queries read and which are a sixtieth of the size.
    Plain,
}

impl SketchStorage {
    /// The storage of a tier of `resolution` nanoseconds.
    pub(crate) fn for_resolution(resolution: i64) -> SketchStorage {
        if resolution >= 3_600_000_000_000 {
            SketchStorage::Plain
        } else {
            SketchStorage::Compressed
        }
    }
}

/// Encodes rollup rows as a rollup chunk appended to `out` (header flag bits 2 and 3): streams
/// 1-10 (zstd-wrapped when that saves 10 %, flag bit 0), then the packed sketch section, stored
/// as `storage` says, so that reads without percentiles skip the sketches' bytes.
pub(crate) fn encode_rollup_chunk(
    rows: &crate::rollup::RollupRows,
    storage: SketchStorage,
    out: &mut Vec<u8>,
) {
    let Some(stats) = rows.stats() else { return };
    let mut payload = Vec::new();
    let (ts_encoding, count_encoding) = rows.encode_payload(&mut payload);
    let mut sketches = Vec::new();
    rows.encode_packed_sketches(&mut sketches);
    let mut flags = FLAG_ROLLUP | FLAG_SKETCHES_APART;
    let main = match compress(&payload) {
        Some(c) => {
            flags |= FLAG_ZSTD;
            c
        }
        None => payload,
    };
    let mut stored = Vec::with_capacity(main.len() + sketches.len() + 5);
    stored.extend_from_slice(&(main.len() as u32).to_le_bytes());
    stored.extend_from_slice(&main);
    match (storage, compress(&sketches)) {
        (SketchStorage::Compressed, Some(c)) => {
            stored.push(SECTION_PACKED_ZSTD);
            stored.extend_from_slice(&c);
        }
        _ => {
            stored.push(SECTION_PACKED);
            stored.extend_from_slice(&sketches);
        }
    }
    write_stored_chunk(
        &stats,
        rows.field_type,
        (ts_encoding, count_encoding),
        0,
        flags,
        &stored,
        out,
    );
}

/// The sketch section's first byte: how the rest is stored. Kinds 0 and 1 hold stream 11 as
/// written before the packed form (plain or in a zstd frame) and are still read.
const SECTION_PLAIN: u8 = 0;
const SECTION_ZSTD: u8 = 1;
const SECTION_PACKED: u8 = 2;
const SECTION_PACKED_ZSTD: u8 = 3;

/// Decodes a rollup chunk (header included), with its rows' quantile sketches.
pub(crate) fn decode_rollup_chunk(
    data: &[u8],
) -> Result<crate::rollup::RollupRows, ChunkDecodeError> {
    let mut rows = crate::rollup::RollupRows::new(FieldType::Float);
    decode_rollup_into(
        data,
        RollupSketches::Checked,
        crate::rollup::RollupParts::ALL,
        &mut rows,
    )?;
    Ok(rows)
}

/// What a rollup chunk read does with the rows' sketches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RollupSketches {
    /// Read and checked whole (verification, compaction).
    Checked,
    /// Read, each checked only for its extent: the query that merges it checks the rest.
    ForMerging,
    /// Not read.
    Skip,
}

/// Decodes a rollup chunk (header included) into `out`, reusing its buffers (replaced when the
/// chunk's field type differs). Without `sketches` the rows come back without their quantile
/// sketches, and a chunk that keeps them apart is read without touching them; with them, each
/// sketch is checked for its extent only, the query that merges it checking the rest.
pub(crate) fn decode_rollup_chunk_into(
    data: &[u8],
    parts: crate::rollup::RollupParts,
    out: &mut crate::rollup::RollupRows,
) -> Result<(), ChunkDecodeError> {
    let want = if parts.sketches {
        RollupSketches::ForMerging
    } else {
        RollupSketches::Skip
    };
    decode_rollup_into(data, want, parts, out)
}

fn decode_rollup_into(
    data: &[u8],
    want: RollupSketches,
    parts: crate::rollup::RollupParts,
    out: &mut crate::rollup::RollupRows,
) -> Result<(), ChunkDecodeError> {
    use crate::rollup::{RollupRows, SketchSource};
    let sketches = want != RollupSketches::Skip;
    let header = parse_header(data)?;
    if header.flags & FLAG_ROLLUP == 0 {
        return Err(ChunkDecodeError {
            offset: 27,
            reason: "a raw chunk where rollup rows were expected".into(),
        });
    }
    if out.field_type != header.value_type {
        *out = RollupRows::new(header.value_type);
    }
    let out = std::cell::RefCell::new(out);
    let decode = |payload: &[u8], source: SketchSource<'_>, base: usize| {
        out.borrow_mut()
            .decode_payload_into(
                header.ts_encoding,
                header.stats.count as usize,
                payload,
                source,
                parts,
            )
            .map_err(|e| ChunkDecodeError {
                offset: base + e.offset,
                reason: e.reason,
            })
    };
    if header.flags & FLAG_SKETCHES_APART == 0 {
        let source = if sketches {
            SketchSource::Inline
        } else {
            SketchSource::Skip
        };
        return with_payload(data, &header, |payload| {
            decode(payload, source, CHUNK_HEADER_LEN)
        });
    }
    let stored = checked_payload(data, &header)?;
    let bad = |offset: usize, reason: &str| ChunkDecodeError {
        offset,
        reason: reason.into(),
    };
    let main_len = stored
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| {
            bad(
                CHUNK_HEADER_LEN,
                "rollup payload too short for its section length",
            )
        })?;
    let main_at = CHUNK_HEADER_LEN + 4;
    let Some(main) = stored.get(4..4 + main_len) else {
        return Err(bad(
            CHUNK_HEADER_LEN,
            "rollup payload section runs past the chunk",
        ));
    };
    let section_at = main_at + main_len;
    let section = &stored[4 + main_len..];
    let section_kind = *section
        .first()
        .ok_or_else(|| bad(section_at, "rollup chunk has no sketch section"))?;
    let read_main = |source: SketchSource<'_>| {
        if header.flags & FLAG_ZSTD == 0 {
            decode(main, source, main_at)
        } else {
            with_decompressed(main, main_at, &ZSTD_SCRATCH, |payload| {
                decode(payload, source, main_at)
            })
        }
    };
    if !sketches {
        return read_main(SketchSource::Skip);
    }
    match section_kind {
        SECTION_PACKED | SECTION_PACKED_ZSTD => {
            read_main(SketchSource::Skip)?;
            let read_packed = |packed: &[u8]| {
                out.borrow_mut()
                    .decode_packed_sketches(packed, want == RollupSketches::Checked)
                    .map_err(|e| ChunkDecodeError {
                        // Offsets inside a zstd frame are of its content.
                        offset: section_at + 1 + e.offset,
                        reason: e.reason,
                    })
            };
            if section_kind == SECTION_PACKED {
                read_packed(&section[1..])
            } else {
                with_decompressed(
                    &section[1..],
                    section_at + 1,
                    &ZSTD_SECTION_SCRATCH,
                    read_packed,
                )
            }
        }
        SECTION_PLAIN => read_main(SketchSource::Apart(&section[1..])),
        SECTION_ZSTD => {
            with_decompressed(&section[1..], section_at + 1, &ZSTD_SECTION_SCRATCH, |s| {
                read_main(SketchSource::Apart(s))
            })
        }
        _ => Err(bad(section_at, "unknown sketch section encoding")),
    }
}

/// Parses and checks the header of the chunk starting at the beginning of `data`; offsets in
/// errors are relative to `data`.
pub(crate) fn parse_header(data: &[u8]) -> Result<ChunkHeader, DecodeError> {
    let mut r = Reader::new(data);
    let chunk_len = r.u32()?;
    let count = r.u32()?;
    let min_time = r.i64()?;
    let max_time = r.i64()?;
    let type_byte = r.u8()?;
    let ts_byte = r.u8()?;
    let value_byte = r.u8()?;
    let flags = r.u8()?;
    let ts_len = r.u32()?;
    let mut words = [0u64; 5];
    for w in &mut words {
        *w = r.u64()?;
    }
    let header_crc = r.u32()?;
    let bad = |offset: usize, reason: String| DecodeError { offset, reason };
    if crc32fast::hash(&data[..72]) != header_crc {
        return Err(bad(72, "chunk header checksum mismatch".into()));
    }
    if (chunk_len as usize) < CHUNK_HEADER_LEN || chunk_len as usize > data.len() {
        return Err(bad(
            0,
            format!(
                "chunk length {chunk_len} is outside 80..={} (the bytes left)",
                data.len()
            ),
        ));
    }
    if count == 0 || count as usize > MAX_CHUNK_POINTS {
        return Err(bad(
            4,
            format!("chunk point count {count} is outside 1..={MAX_CHUNK_POINTS}"),
        ));
    }
    if min_time > max_time || (count == 1 && min_time != max_time) {
        return Err(bad(
            8,
            format!("chunk time range {min_time}..{max_time} is inconsistent"),
        ));
    }
    let value_type = FieldType::from_byte(type_byte)
        .ok_or_else(|| bad(24, format!("unknown value type {type_byte}")))?;
    let ts_encoding = TsEncoding::from_byte(ts_byte)
        .ok_or_else(|| bad(25, format!("unknown timestamp encoding {ts_byte}")))?;
    let value_encoding = ValueEncoding::from_byte(value_byte)
        .ok_or_else(|| bad(26, format!("unknown value encoding {value_byte}")))?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(bad(27, format!("unknown chunk flags {flags:#04x}")));
    }
    let values = stats_from_words(value_type, words, flags & FLAG_SUM_OVERFLOW != 0, count)
        .map_err(|reason| bad(32, reason))?;
    Ok(ChunkHeader {
        chunk_len,
        stats: ChunkStats {
            count,
            min_time,
            max_time,
            values,
        },
        value_type,
        ts_encoding,
        value_encoding,
        flags,
        ts_len,
    })
}

thread_local! {
    /// A zstd compressor per thread (level 3), reused across chunks at flush.
    static ZSTD_COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    /// A zstd decompressor and a buffer per thread, reused across chunks.
    static ZSTD_SCRATCH: Scratch = const { RefCell::new((None, Vec::new())) };
    /// A second one for a rollup chunk's sketch section, decompressed while the main section's
    /// buffer is in use.
    static ZSTD_SECTION_SCRATCH: Scratch = const { RefCell::new((None, Vec::new())) };
}

/// A chunk decode failure: the offset is relative to the start of the chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkDecodeError {
    pub(crate) offset: usize,
    pub(crate) reason: String,
}

impl From<DecodeError> for ChunkDecodeError {
    fn from(e: DecodeError) -> Self {
        ChunkDecodeError {
            offset: e.offset,
            reason: e.reason,
        }
    }
}

/// Decodes the whole chunk at the start of `data` (header included) into the buffers, which
/// are cleared first. The payload checksum is verified.
pub(crate) fn decode_chunk(
    data: &[u8],
    ts_out: &mut Vec<i64>,
    values_out: &mut ColumnValues,
) -> Result<ChunkHeader, ChunkDecodeError> {
    let header = parse_header(data)?;
    if header.flags & FLAG_ROLLUP != 0 {
        return Err(ChunkDecodeError {
            offset: 27,
            reason: "a rollup chunk where raw points were expected".into(),
        });
    }
    ts_out.clear();
    values_out.reset(header.value_type);
    with_payload(data, &header, |payload| {
        decode_streams(&header, payload, ts_out, values_out)
    })?;
    Ok(header)
}

/// Checks the payload's checksum and calls `f` with the payload, decompressed if it is a zstd
/// frame.
fn with_payload<T>(
    data: &[u8],
    header: &ChunkHeader,
    f: impl FnOnce(&[u8]) -> Result<T, ChunkDecodeError>,
) -> Result<T, ChunkDecodeError> {
    let stored = checked_payload(data, header)?;
    if header.flags & FLAG_ZSTD == 0 {
        return f(stored);
    }
    with_decompressed(stored, CHUNK_HEADER_LEN, &ZSTD_SCRATCH, f)
}

/// The chunk's stored payload, once its checksum is verified.
fn checked_payload<'d>(data: &'d [u8], header: &ChunkHeader) -> Result<&'d [u8], ChunkDecodeError> {
    let stored = &data[CHUNK_HEADER_LEN..header.chunk_len as usize];
    let payload_crc = u32::from_le_bytes([data[76], data[77], data[78], data[79]]);
    if crc32fast::hash(stored) != payload_crc {
        return Err(ChunkDecodeError {
            offset: CHUNK_HEADER_LEN,
            reason: "chunk payload checksum mismatch".into(),
        });
    }
    Ok(stored)
}

type Scratch = RefCell<(Option<zstd::bulk::Decompressor<'static>>, Vec<u8>)>;

/// Calls `f` with the content of the zstd frame `stored` (at chunk offset `at`), decompressed
/// into the thread's `scratch`.
fn with_decompressed<T>(
    stored: &[u8],
    at: usize,
    scratch: &'static std::thread::LocalKey<Scratch>,
    f: impl FnOnce(&[u8]) -> Result<T, ChunkDecodeError>,
) -> Result<T, ChunkDecodeError> {
    scratch.with(|cell| {
        let (decompressor, scratch) = &mut *cell.borrow_mut();
        let bad = |reason: String| ChunkDecodeError { offset: at, reason };
        // The frame header states the decompressed size; refuse anything over 64 MiB (a
        // chunk holds at most MAX_CHUNK_POINTS values) before allocating for it.
        let size = zstd::zstd_safe::get_frame_content_size(stored)
            .ok()
            .flatten()
            .ok_or_else(|| bad("zstd payload has no valid frame header".into()))?;
        if size > 64 << 20 {
            return Err(bad(format!(
                "zstd payload claims {size} bytes, more than 64 MiB"
            )));
        }
        let decompressor = match decompressor {
            Some(d) => d,
            None => decompressor.insert(
                zstd::bulk::Decompressor::new()
                    .map_err(|e| bad(format!("cannot create a zstd decompressor: {e}")))?,
            ),
        };
        scratch.clear();
        scratch.reserve(size as usize);
        decompressor
            .decompress_to_buffer(stored, scratch)
            .map_err(|e| bad(format!("zstd payload does not decompress: {e}")))?;
        f(scratch)
    })
}

fn decode_streams(
    header: &ChunkHeader,
    payload: &[u8],
    ts_out: &mut Vec<i64>,
    values_out: &mut ColumnValues,
) -> Result<(), ChunkDecodeError> {
    let ts_len = header.ts_len as usize;
    if ts_len > payload.len() {
        return Err(ChunkDecodeError {
            offset: 28,
            reason: format!(
                "timestamp stream length {ts_len} exceeds the payload ({})",
                payload.len()
            ),
        });
    }
    decode_parts(
        header.value_type,
        header.ts_encoding,
        header.value_encoding,
        header.stats.count as usize,
        &payload[..ts_len],
        &payload[ts_len..],
        ts_out,
        values_out,
    )
    .map_err(|e| ChunkDecodeError {
        offset: CHUNK_HEADER_LEN + if e.stream == "value" { ts_len } else { 0 } + e.offset,
        reason: e.reason,
    })?;
    // The header's time range must agree with the timestamps, or stats answers would differ
    // from decoded answers.
    if ts_out.first() != Some(&header.stats.min_time)
        || ts_out.last() != Some(&header.stats.max_time)
        || !ts_out.windows(2).all(|w| w[0] < w[1])
    {
        return Err(ChunkDecodeError {
            offset: 8,
            reason: "timestamps disagree with the chunk header or are not increasing".into(),
        });
    }
    Ok(())
}

/// Decodes a timestamp stream and a value stream of `count` points.
#[expect(clippy::too_many_arguments, reason = "the parts of a chunk")]
pub(crate) fn decode_parts(
    value_type: FieldType,
    ts_encoding: TsEncoding,
    value_encoding: ValueEncoding,
    count: usize,
    ts: &[u8],
    values: &[u8],
    ts_out: &mut Vec<i64>,
    values_out: &mut ColumnValues,
) -> Result<(), CodecError> {
    ts_out.clear();
    values_out.reset(value_type);
    codec::decode_timestamps(ts_encoding, ts, count, ts_out)?;
    match values_out {
        ColumnValues::Float(v) => codec::decode_f64(value_encoding, values, count, v),
        ColumnValues::Integer(v) => codec::decode_i64(value_encoding, values, count, v),
        ColumnValues::Unsigned(v) => codec::decode_u64(value_encoding, values, count, v),
        ColumnValues::Boolean(v) => codec::decode_bool(value_encoding, values, count, v),
        ColumnValues::String(v) => codec::decode_strings(value_encoding, values, count, v),
    }
}

/// Merges runs of points given in recency order (a later run wins on an equal timestamp) into
/// one run in time order, one point per timestamp.
pub(crate) fn merge_newest_wins(
    runs: &[(Vec<i64>, ColumnValues)],
    field_type: FieldType,
) -> (Vec<i64>, ColumnValues) {
    // Sorting by (time, rank, position) puts the newest point of each time last.
    let mut index: Vec<(i64, usize, usize)> = Vec::new();
    for (rank, (ts, _)) in runs.iter().enumerate() {
        index.extend(ts.iter().enumerate().map(|(j, &t)| (t, rank, j)));
    }
    index.sort_unstable();
    let mut ts_out = Vec::with_capacity(index.len());
    let mut values_out = ColumnValues::new(field_type);
    let mut k = 0;
    while k < index.len() {
        let t = index[k].0;
        while k + 1 < index.len() && index[k + 1].0 == t {
            k += 1;
        }
        let (_, rank, j) = index[k];
        ts_out.push(t);
        values_out.push_from(&runs[rank].1, j);
        k += 1;
    }
    (ts_out, values_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn without_sketches(chunk: &[u8]) -> Result<crate::rollup::RollupRows, ChunkDecodeError> {
        let mut rows = crate::rollup::RollupRows::new(FieldType::Float);
        decode_rollup_chunk_into(
            chunk,
            crate::rollup::RollupParts {
                sketches: false,
                ..crate::rollup::RollupParts::ALL
            },
            &mut rows,
        )
        .map(|()| rows)
    }

    fn rollup_rows(n: i64) -> crate::rollup::RollupRows {
        let ts: Vec<i64> = (0..n).map(|i| i * 7_000_000_000).collect();
        let values = ColumnValues::Float((0..n).map(|i| ((i * 37) % 1000) as f64 * 0.25).collect());
        let mut rows = crate::rollup::RollupRows::new(FieldType::Float);
        rows.add_points(&ts, &values, 60_000_000_000);
        rows
    }

    #[test]
    fn rollup_chunks_read_back_with_or_without_their_sketches() {
        for (n, storage, kind) in [
            (3, SketchStorage::Compressed, SECTION_PACKED),
            (5_000, SketchStorage::Compressed, SECTION_PACKED_ZSTD),
            (3, SketchStorage::Plain, SECTION_PACKED),
            (5_000, SketchStorage::Plain, SECTION_PACKED),
        ] {
            let rows = rollup_rows(n);
            let mut chunk = Vec::new();
            encode_rollup_chunk(&rows, storage, &mut chunk);
            assert_ne!(chunk[27] & FLAG_SKETCHES_APART, 0);
            let main_len = u32::from_le_bytes(chunk[80..84].try_into().unwrap()) as usize;
            assert_eq!(chunk[84 + main_len], kind, "{n} rows, {storage:?}");
            assert_eq!(decode_rollup_chunk(&chunk).unwrap(), rows);
            let mut checked_on_merge = crate::rollup::RollupRows::new(FieldType::Float);
            decode_rollup_into(
                &chunk,
                RollupSketches::ForMerging,
                crate::rollup::RollupParts::ALL,
                &mut checked_on_merge,
            )
            .unwrap();
            assert_eq!(checked_on_merge, rows);
            let without = without_sketches(&chunk).unwrap();
            assert!(without.sketches.is_empty());
            assert_eq!((&without.times, &without.max), (&rows.times, &rows.max));
        }
        assert_eq!(
            SketchStorage::for_resolution(3_600_000_000_000),
            SketchStorage::Plain
        );
        assert_eq!(
            SketchStorage::for_resolution(60_000_000_000),
            SketchStorage::Compressed
        );
    }

    #[test]
    fn rollup_chunks_with_inline_sketches_still_decode() {
        let rows = rollup_rows(5_000);
        let mut payload = Vec::new();
        let (ts_encoding, count_encoding) = rows.encode_payload(&mut payload);
        rows.encode_legacy_sketch_stream(&mut payload);
        let mut chunk = Vec::new();
        write_chunk(
            &rows.stats().unwrap(),
            FieldType::Float,
            ts_encoding,
            count_encoding,
            0,
            &payload,
            true,
            &mut chunk,
        );
        chunk[27] |= FLAG_ROLLUP;
        let header_crc = crc32fast::hash(&chunk[..72]);
        chunk[72..76].copy_from_slice(&header_crc.to_le_bytes());
        assert_eq!(decode_rollup_chunk(&chunk).unwrap(), rows);
        assert!(without_sketches(&chunk).unwrap().sketches.is_empty());
    }

    #[test]
    fn rollup_chunks_with_older_sketch_sections_still_decode() {
        for n in [3, 5_000] {
            let rows = rollup_rows(n);
            let mut main = Vec::new();
            let (ts_encoding, count_encoding) = rows.encode_payload(&mut main);
            let mut legacy = Vec::new();
            rows.encode_legacy_sketch_stream(&mut legacy);
            for kind in [SECTION_PLAIN, SECTION_ZSTD] {
                let mut stored = (main.len() as u32).to_le_bytes().to_vec();
                stored.extend_from_slice(&main);
                stored.push(kind);
                if kind == SECTION_ZSTD {
                    stored.extend_from_slice(&zstd::bulk::compress(&legacy, 3).unwrap());
                } else {
                    stored.extend_from_slice(&legacy);
                }
                let mut chunk = Vec::new();
                write_stored_chunk(
                    &rows.stats().unwrap(),
                    FieldType::Float,
                    (ts_encoding, count_encoding),
                    0,
                    FLAG_ROLLUP | FLAG_SKETCHES_APART,
                    &stored,
                    &mut chunk,
                );
                assert_eq!(decode_rollup_chunk(&chunk).unwrap(), rows, "kind {kind}");
                assert!(without_sketches(&chunk).unwrap().sketches.is_empty());
            }
        }
    }

    #[test]
    fn packed_sketch_sections_are_smaller_than_the_older_form() {
        let rows = rollup_rows(5_000);
        let mut packed = Vec::new();
        rows.encode_packed_sketches(&mut packed);
        let mut legacy = Vec::new();
        rows.encode_legacy_sketch_stream(&mut legacy);
        assert!(
            packed.len() < legacy.len(),
            "{} vs {}",
            packed.len(),
            legacy.len()
        );
    }

    proptest::proptest! {
        /// Damage that the checksums do not catch (they are recomputed here) must give an
        /// error or rows that merge without a panic.
        #[test]
        fn damaged_rollup_chunks_never_panic(
            n in 1i64..400,
            plain in proptest::prelude::any::<bool>(),
            edits in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 1..8),
        ) {
            let rows = rollup_rows(n);
            let mut chunk = Vec::new();
            let storage = if plain { SketchStorage::Plain } else { SketchStorage::Compressed };
            encode_rollup_chunk(&rows, storage, &mut chunk);
            for (at, byte) in edits {
                let at = CHUNK_HEADER_LEN + at % (chunk.len() - CHUNK_HEADER_LEN);
                chunk[at] = byte;
            }
            let payload_crc = crc32fast::hash(&chunk[CHUNK_HEADER_LEN..]);
            chunk[76..80].copy_from_slice(&payload_crc.to_le_bytes());
            crate::fuzzing::chunk(&chunk);
        }
    }

    #[test]
    fn a_rollup_chunk_with_a_bad_section_length_is_refused_with_its_offset() {
        let rows = rollup_rows(500);
        let mut chunk = Vec::new();
        encode_rollup_chunk(&rows, SketchStorage::Compressed, &mut chunk);
        chunk[CHUNK_HEADER_LEN..CHUNK_HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let payload_crc = crc32fast::hash(&chunk[CHUNK_HEADER_LEN..]);
        chunk[76..80].copy_from_slice(&payload_crc.to_le_bytes());
        let error = without_sketches(&chunk).unwrap_err();
        assert_eq!(error.offset, CHUNK_HEADER_LEN);
        assert!(error.reason.contains("runs past"), "{}", error.reason);
    }

    #[test]
    fn float_stats_ignore_nan_for_min_and_max_but_not_for_sum() {
        let stats =
            StatsBuilder::from_points(&[1, 2, 3], &ColumnValues::Float(vec![f64::NAN, 2.0, -1.0]))
                .unwrap();
        match stats.values {
            ValueStats::Float {
                min,
                max,
                sum,
                first,
                last,
            } => {
                assert_eq!(min, -1.0);
                assert_eq!(max, 2.0);
                assert!(sum.is_nan());
                assert!(first.is_nan());
                assert_eq!(last, -1.0);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn integer_sum_overflow_is_recorded_not_wrapped() {
        let stats =
            StatsBuilder::from_points(&[1, 2], &ColumnValues::Integer(vec![i64::MAX, 1])).unwrap();
        assert!(matches!(
            stats.values,
            ValueStats::Integer { sum: None, .. }
        ));
        let mut out = Vec::new();
        encode_chunk(
            &[1, 2],
            &ColumnValues::Integer(vec![i64::MAX, 1]),
            &mut out,
            true,
        );
        let header = parse_header(&out).unwrap();
        assert_eq!(header.stats, stats);
    }

    #[test]
    fn chunk_round_trips_with_its_statistics_for_every_type() {
        let ts: Vec<i64> = (0..300)
            .map(|i| -5_000_000_000 + i * 1_000_000_007)
            .collect();
        let cases = vec![
            ColumnValues::Float((0..300).map(|i| (i as f64) * 0.25 - 3.0).collect()),
            ColumnValues::Integer((0..300).map(|i| i * i - 1000).collect()),
            ColumnValues::Unsigned((0..300).map(|i| u64::MAX - i as u64).collect()),
            ColumnValues::Boolean((0..300).map(|i| i % 3 == 0).collect()),
            ColumnValues::String((0..300).map(|i| format!("s{}", i % 7)).collect()),
        ];
        for values in cases {
            let mut out = Vec::new();
            encode_chunk(&ts, &values, &mut out, true);
            let mut ts_back = Vec::new();
            let mut values_back = ColumnValues::new(FieldType::Float);
            let header = decode_chunk(&out, &mut ts_back, &mut values_back).unwrap();
            assert_eq!(header.chunk_len as usize, out.len());
            assert_eq!(ts_back, ts);
            assert_eq!(values_back, values);
            assert_eq!(Some(header.stats), StatsBuilder::from_points(&ts, &values));
        }
    }

    #[test]
    fn flipped_bits_anywhere_in_a_chunk_are_reported_not_decoded() {
        let ts: Vec<i64> = (0..100).map(|i| i * 10).collect();
        let values = ColumnValues::Float((0..100).map(|i| i as f64 * 1.5).collect());
        let mut out = Vec::new();
        encode_chunk(&ts, &values, &mut out, true);
        for byte in 0..out.len() {
            let mut damaged = out.clone();
            damaged[byte] ^= 0x10;
            let mut t = Vec::new();
            let mut v = ColumnValues::new(FieldType::Float);
            assert!(
                decode_chunk(&damaged, &mut t, &mut v).is_err(),
                "flip at byte {byte} was not detected"
            );
        }
    }
}
