//! Segment files: immutable, memory-mapped files holding the chunks of one database for one time
//! block. Format: `docs/format/segment.md`.
//!
//! Layout: a 16-byte header, then for each column (in column-id order) its chunks in time order,
//! then the footer (one fixed 40-byte entry per column, sorted by column id, so a lookup is a
//! binary search over the mapped bytes), then a 40-byte trailer that locates the footer.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::bytes::Reader;
use crate::chunk::{CHUNK_HEADER_LEN, ChunkHeader, parse_header};
use crate::error::{EngineError, Result};
use crate::fsutil;
use crate::mmap::MappedFile;

pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"TALLYSEG";
pub(crate) const SEGMENT_VERSION: u32 = 1;
const TRAILER_MAGIC: &[u8; 4] = b"TSEG";
pub(crate) const HEADER_LEN: usize = 16;
pub(crate) const FOOTER_ENTRY_LEN: usize = 40;
pub(crate) const TRAILER_LEN: usize = 40;

/// One column's chunks, already encoded, for the writer.
pub(crate) struct ColumnChunks<'a> {
    pub(crate) column: u32,
    /// Encoded chunks (header and payload each), in time order, not overlapping.
    pub(crate) chunks: Vec<&'a [u8]>,
}

/// What the manifest records about a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub(crate) file_name: String,
    pub(crate) seq: u64,
    pub(crate) block_start: i64,
    pub(crate) block_end: i64,
    pub(crate) size: u64,
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
    pub(crate) n_columns: u32,
    pub(crate) n_points: u64,
    /// 0 for raw data; a rollup tier's resolution in nanoseconds otherwise.
    pub(crate) resolution: i64,
    /// Where the segment's data stands in write order: its flush's sequence number, or for a
    /// compaction's output the highest recency among its inputs. On equal timestamps, data of
    /// a higher recency wins.
    pub(crate) recency: u64,
    /// Rollups: the highest recency among the raw segments they were built from, so a raw
    /// segment written later (late data) marks them stale.
    pub(crate) built_from: u64,
    /// Tombstones with an id up to this one were applied when the segment was written.
    pub(crate) applied_tombstones: u64,
}

pub(crate) fn segment_file_name(seq: u64, block_start: i64) -> String {
    format!("{seq:016}-{block_start}.tseg")
}

/// Writes a segment (temporary file, fsync, rename) and returns its description; the caller
/// fsyncs the directory before anything refers to it. `columns` must be sorted by column id
/// and non-empty.
pub(crate) fn write_segment(
    dir: &Path,
    seq: u64,
    block_start: i64,
    block_end: i64,
    columns: &[ColumnChunks<'_>],
) -> Result<SegmentMeta> {
    let file_name = segment_file_name(seq, block_start);
    let path = dir.join(&file_name);
    let mut buf: Vec<u8> = Vec::new();
    buf.extend_from_slice(SEGMENT_MAGIC);
    buf.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    buf.extend_from_slice(&0u32.to_le_bytes());
    let mut footer = Vec::with_capacity(columns.len() * FOOTER_ENTRY_LEN);
    let mut min_time = i64::MAX;
    let mut max_time = i64::MIN;
    let mut n_points = 0u64;
    for col in columns {
        let offset = buf.len() as u64;
        let mut col_min = i64::MAX;
        let mut col_max = i64::MIN;
        for chunk in &col.chunks {
            if let Ok(h) = parse_header(chunk) {
                col_min = col_min.min(h.stats.min_time);
                col_max = col_max.max(h.stats.max_time);
                n_points += u64::from(h.stats.count);
            }
            buf.extend_from_slice(chunk);
        }
        footer.extend_from_slice(&col.column.to_le_bytes());
        footer.extend_from_slice(&(col.chunks.len() as u32).to_le_bytes());
        footer.extend_from_slice(&offset.to_le_bytes());
        footer.extend_from_slice(&(buf.len() as u64 - offset).to_le_bytes());
        footer.extend_from_slice(&col_min.to_le_bytes());
        footer.extend_from_slice(&col_max.to_le_bytes());
        min_time = min_time.min(col_min);
        max_time = max_time.max(col_max);
    }
    let footer_offset = buf.len() as u64;
    buf.extend_from_slice(&footer);
    buf.extend_from_slice(&footer_offset.to_le_bytes());
    buf.extend_from_slice(&(columns.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(&footer).to_le_bytes());
    buf.extend_from_slice(&block_start.to_le_bytes());
    buf.extend_from_slice(&block_end.to_le_bytes());
    buf.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    buf.extend_from_slice(TRAILER_MAGIC);

    // The directory fsync that makes the name durable comes once for all the segments of a
    // flush or compaction, before the manifest names them (`Database::store_manifest`).
    fsutil::write_renamed(&path, &buf)?;
    Ok(SegmentMeta {
        file_name,
        seq,
        block_start,
        block_end,
        size: buf.len() as u64,
        min_time,
        max_time,
        n_columns: columns.len() as u32,
        n_points,
        resolution: 0,
        recency: seq,
        built_from: 0,
        applied_tombstones: 0,
    })
}

/// A footer entry: where one column's chunks are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ColumnEntry {
    pub(crate) column: u32,
    pub(crate) n_chunks: u32,
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
}

/// An open, mapped segment.
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) meta: SegmentMeta,
    map: MappedFile,
    footer_offset: usize,
    n_columns: usize,
    /// Time spans of the chunks of the columns queried so far, by the column's extent offset:
    /// a read of a short range seeks to its chunks instead of walking (and checking) every
    /// header before them. Filled lazily; see [`MAX_CACHED_SPANS`].
    spans: parking_lot::RwLock<SpanCache>,
}

/// Where a chunk lies in its column and the time it covers.
#[derive(Clone, Copy, Debug)]
struct ChunkSpan {
    offset: u64,
    min_time: i64,
    max_time: i64,
    /// The largest `max_time` of this chunk and every one before it in the column: monotone,
    /// so the first chunk a range can touch is found by binary search even when chunks overlap.
    running_max: i64,
}

#[derive(Default)]
struct SpanCache {
    /// `None`: the column's chunks are not in `min_time` order, so reads walk them all.
    columns: std::collections::HashMap<u64, Option<std::sync::Arc<[ChunkSpan]>>>,
    spans: usize,
}

/// Spans cached per segment at most (32 bytes each: 32 MiB); columns queried after that are
/// walked header by header as before. Columns of fewer chunks are never cached: walking them
/// costs no more than a lookup.
const MAX_CACHED_SPANS: usize = 1 << 20;
const MIN_CHUNKS_TO_CACHE: u32 = 4;

impl Segment {
    /// Maps and checks a segment: magic, version, trailer, footer bounds and checksum, and
    /// that the footer's entries are sorted and point inside the file. Chunks are checked when
    /// read.
    pub(crate) fn open(path: &Path, meta: SegmentMeta) -> Result<Segment> {
        let file = File::open(path).map_err(|e| EngineError::io(path, e))?;
        let map = MappedFile::map(&file, path)?;
        let data: &[u8] = &map;
        let corrupt =
            |offset: usize, reason: String| EngineError::corrupt(path, offset as u64, reason);
        if data.len() < HEADER_LEN + TRAILER_LEN {
            return Err(corrupt(
                0,
                format!("file of {} bytes is too short for a segment", data.len()),
            ));
        }
        if &data[0..8] != SEGMENT_MAGIC {
            return Err(corrupt(0, "not a Tally segment file (bad magic)".into()));
        }
        let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        if version != SEGMENT_VERSION {
            return Err(EngineError::UnsupportedVersion {
                path: path.to_path_buf(),
                kind: "segment",
                found: version,
                supported: SEGMENT_VERSION,
            });
        }
        if data[12..16] != [0, 0, 0, 0] {
            return Err(corrupt(12, "reserved header bytes are not zero".into()));
        }
        let trailer_at = data.len() - TRAILER_LEN;
        let mut r = Reader::new(&data[trailer_at..]);
        let trailer = (|| {
            Ok::<_, crate::bytes::DecodeError>((
                r.u64()?,
                r.u32()?,
                r.u32()?,
                r.i64()?,
                r.i64()?,
                r.u32()?,
                r.bytes(4)?,
            ))
        })()
        .map_err(|e| corrupt(trailer_at + e.offset, e.reason))?;
        let (footer_offset, n_columns, footer_crc, block_start, block_end, trailer_version, magic) =
            trailer;
        if magic != TRAILER_MAGIC {
            return Err(corrupt(
                data.len() - 4,
                "bad trailer magic (truncated or damaged file)".into(),
            ));
        }
        if trailer_version != SEGMENT_VERSION {
            return Err(corrupt(
                trailer_at + 32,
                format!(
                    "trailer version {trailer_version} disagrees with header version {version}"
                ),
            ));
        }
        let footer_len = n_columns as usize * FOOTER_ENTRY_LEN;
        let footer_offset_usize = usize::try_from(footer_offset).unwrap_or(usize::MAX);
        if footer_offset_usize < HEADER_LEN
            || footer_offset_usize.checked_add(footer_len) != Some(trailer_at)
        {
            return Err(corrupt(
                trailer_at,
                format!(
                    "footer at {footer_offset} with {n_columns} columns does not end at the trailer ({trailer_at})"
                ),
            ));
        }
        let footer = &data[footer_offset_usize..trailer_at];
        if crc32fast::hash(footer) != footer_crc {
            return Err(corrupt(
                footer_offset_usize,
                "footer checksum mismatch".into(),
            ));
        }
        if block_start != meta.block_start || block_end != meta.block_end {
            return Err(corrupt(
                trailer_at + 16,
                format!(
                    "segment covers block {block_start}..{block_end} but the manifest says {}..{}",
                    meta.block_start, meta.block_end
                ),
            ));
        }
        let segment = Segment {
            path: path.to_path_buf(),
            meta,
            map,
            footer_offset: footer_offset_usize,
            n_columns: n_columns as usize,
            spans: parking_lot::RwLock::new(SpanCache::default()),
        };
        let mut previous: Option<u32> = None;
        let mut data_end = HEADER_LEN as u64;
        for i in 0..segment.n_columns {
            let entry = segment.entry(i);
            let at = footer_offset_usize + i * FOOTER_ENTRY_LEN;
            if previous.is_some_and(|p| p >= entry.column) {
                return Err(corrupt(
                    at,
                    "footer entries are not sorted by column id".into(),
                ));
            }
            if entry.offset != data_end || entry.n_chunks == 0 {
                return Err(corrupt(
                    at,
                    format!(
                        "footer entry for column {} points at {} (expected {data_end}) with {} chunks",
                        entry.column, entry.offset, entry.n_chunks
                    ),
                ));
            }
            data_end = entry.offset.saturating_add(entry.len);
            if data_end > footer_offset {
                return Err(corrupt(
                    at,
                    format!("column {} chunks run past the footer", entry.column),
                ));
            }
            previous = Some(entry.column);
        }
        if data_end != footer_offset {
            return Err(corrupt(
                HEADER_LEN,
                "chunk data does not end where the footer starts".into(),
            ));
        }
        Ok(segment)
    }

    fn entry(&self, index: usize) -> ColumnEntry {
        let at = self.footer_offset + index * FOOTER_ENTRY_LEN;
        let e = &self.map[at..at + FOOTER_ENTRY_LEN];
        let u32_at = |o: usize| u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]);
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&e[o..o + 8]);
            u64::from_le_bytes(a)
        };
        ColumnEntry {
            column: u32_at(0),
            n_chunks: u32_at(4),
            offset: u64_at(8),
            len: u64_at(16),
            min_time: u64_at(24) as i64,
            max_time: u64_at(32) as i64,
        }
    }

    /// The footer entry of `column`, by binary search over the mapped footer.
    pub(crate) fn find(&self, column: u32) -> Option<ColumnEntry> {
        let (mut lo, mut hi) = (0usize, self.n_columns);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let entry = self.entry(mid);
            match entry.column.cmp(&column) {
                std::cmp::Ordering::Equal => return Some(entry),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }

    pub(crate) fn n_entries(&self) -> usize {
        self.n_columns
    }

    pub(crate) fn entry_at(&self, index: usize) -> Option<ColumnEntry> {
        (index < self.n_columns).then(|| self.entry(index))
    }

    /// Walks the chunk headers of a column: calls `visit` with each chunk's file offset, header
    /// and bytes. Stops with a `Corrupt` error naming the file and offset on a bad header.
    pub(crate) fn for_each_chunk(
        &self,
        entry: &ColumnEntry,
        mut visit: impl FnMut(u64, &ChunkHeader, &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let end = entry.offset + entry.len;
        let mut at = entry.offset;
        for _ in 0..entry.n_chunks {
            let start = at as usize;
            let data = &self.map[start..end as usize];
            let header = parse_header(data)
                .map_err(|e| EngineError::corrupt(&self.path, at + e.offset as u64, e.reason))?;
            if header.chunk_len as usize > data.len()
                || (header.chunk_len as usize) < CHUNK_HEADER_LEN
            {
                return Err(EngineError::corrupt(
                    &self.path,
                    at,
                    "chunk runs past its column",
                ));
            }
            let bytes = &data[..header.chunk_len as usize];
            if !visit(at, &header, bytes)? {
                return Ok(());
            }
            at += u64::from(header.chunk_len);
        }
        if at != end {
            return Err(EngineError::corrupt(
                &self.path,
                at,
                "column's chunks do not fill its extent",
            ));
        }
        Ok(())
    }

    /// Calls `visit` with each chunk of the column whose time range meets `min_time..=max_time`,
    /// in file order, with the same checks as [`Segment::for_each_chunk`].
    pub(crate) fn for_each_chunk_between(
        &self,
        entry: &ColumnEntry,
        min_time: i64,
        max_time: i64,
        mut visit: impl FnMut(u64, &ChunkHeader, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let Some(spans) = self.spans_of(entry) else {
            return self.for_each_chunk(entry, |offset, header, bytes| {
                if header.stats.min_time > max_time {
                    return Ok(false);
                }
                if header.stats.max_time >= min_time {
                    visit(offset, header, bytes)?;
                }
                Ok(true)
            });
        };
        let first = spans.partition_point(|s| s.running_max < min_time);
        let end = spans.partition_point(|s| s.min_time <= max_time);
        let column_end = entry.offset + entry.len;
        for span in spans.get(first..end).unwrap_or(&[]) {
            if span.max_time < min_time {
                continue;
            }
            let data = &self.map[span.offset as usize..column_end as usize];
            let header = parse_header(data).map_err(|e| {
                EngineError::corrupt(&self.path, span.offset + e.offset as u64, e.reason)
            })?;
            visit(span.offset, &header, &data[..header.chunk_len as usize])?;
        }
        Ok(())
    }

    /// The column's chunk spans, built on first use; `None` when the column is not cached (too
    /// few chunks, the cache is full, its chunks are out of time order, or one is damaged: the
    /// header walk then reports the damage where a read meets it).
    fn spans_of(&self, entry: &ColumnEntry) -> Option<std::sync::Arc<[ChunkSpan]>> {
        if entry.n_chunks < MIN_CHUNKS_TO_CACHE {
            return None;
        }
        {
            let cache = self.spans.read();
            if let Some(cached) = cache.columns.get(&entry.offset) {
                return cached.clone();
            }
            if cache.spans + entry.n_chunks as usize > MAX_CACHED_SPANS {
                return None;
            }
        }
        let mut spans = Vec::with_capacity(entry.n_chunks as usize);
        let mut in_order = true;
        let mut running_max = i64::MIN;
        let mut previous_min = i64::MIN;
        let walked = self.for_each_chunk(entry, |offset, header, _| {
            in_order &= header.stats.min_time >= previous_min;
            previous_min = header.stats.min_time;
            running_max = running_max.max(header.stats.max_time);
            spans.push(ChunkSpan {
                offset,
                min_time: header.stats.min_time,
                max_time: header.stats.max_time,
                running_max,
            });
            Ok(true)
        });
        if walked.is_err() {
            return None;
        }
        let spans: Option<std::sync::Arc<[ChunkSpan]>> = in_order.then(|| spans.into());
        let mut cache = self.spans.write();
        cache.spans += spans.as_ref().map_or(0, |s| s.len());
        cache.columns.insert(entry.offset, spans.clone());
        spans
    }

    /// The bytes of the file (for verification).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ColumnValues;
    use crate::chunk::encode_chunk;

    /// Chunks of one column from (start, length, step) triples: in `min_time` order, and
    /// overlapping wherever a step reaches past the next start.
    fn segment_with(dir: &Path, runs: &[(i64, usize, i64)]) -> Segment {
        let mut encoded = Vec::new();
        for &(start, length, step) in runs {
            let ts: Vec<i64> = (0..length as i64).map(|i| start + i * step).collect();
            let values = ColumnValues::Float(ts.iter().map(|&t| t as f64).collect());
            let mut out = Vec::new();
            encode_chunk(&ts, &values, &mut out, false);
            encoded.push(out);
        }
        let columns = [ColumnChunks {
            column: 7,
            chunks: encoded.iter().map(Vec::as_slice).collect(),
        }];
        let meta = write_segment(dir, 1, 0, 1 << 40, &columns).unwrap();
        Segment::open(&dir.join(&meta.file_name), meta).unwrap()
    }

    fn walked(segment: &Segment, min_time: i64, max_time: i64) -> Vec<u64> {
        let entry = segment.find(7).unwrap();
        let mut offsets = Vec::new();
        segment
            .for_each_chunk(&entry, |offset, header, _| {
                if header.stats.max_time >= min_time && header.stats.min_time <= max_time {
                    offsets.push(offset);
                }
                Ok(true)
            })
            .unwrap();
        offsets
    }

    fn sought(segment: &Segment, min_time: i64, max_time: i64) -> Vec<u64> {
        let entry = segment.find(7).unwrap();
        let mut offsets = Vec::new();
        segment
            .for_each_chunk_between(&entry, min_time, max_time, |offset, header, bytes| {
                assert_eq!(bytes.len(), header.chunk_len as usize);
                offsets.push(offset);
                Ok(())
            })
            .unwrap();
        offsets
    }

    proptest::proptest! {
        #[test]
        fn seeking_by_cached_spans_finds_the_chunks_a_walk_finds(
            runs in proptest::collection::vec((0i64..10_000, 1usize..40, 1i64..200), 1..30),
            ranges in proptest::collection::vec((-100i64..12_000, 0i64..3_000), 1..20),
        ) {
            let mut runs = runs;
            runs.sort_by_key(|r| r.0);
            let dir = tempfile::tempdir().unwrap();
            let segment = segment_with(dir.path(), &runs);
            for (min_time, length) in ranges {
                let max_time = min_time + length;
                // The second read is served by the spans the first one cached.
                proptest::prop_assert_eq!(sought(&segment, min_time, max_time), walked(&segment, min_time, max_time));
                proptest::prop_assert_eq!(sought(&segment, min_time, max_time), walked(&segment, min_time, max_time));
            }
            proptest::prop_assert_eq!(sought(&segment, i64::MIN, i64::MAX).len(), runs.len());
        }
    }
}
