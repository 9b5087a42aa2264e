//! The manifest of one database: the single commit point that names its live segment and index
//! files and the first WAL file still needed. Format: `docs/format/manifest.md`.
//!
//! It is replaced atomically (temporary file, fsync, rename, directory fsync), so after a crash
//! it is either the old or the new one; files it does not name are leftovers of an interrupted
//! flush and are deleted at start.

use std::path::Path;

use roaring::RoaringBitmap;

use crate::bytes::{DecodeError, Reader, put_bytes, put_ivarint, put_uvarint};
use crate::error::{EngineError, Result};
use crate::fsutil;
use crate::index_file::IndexMeta;
use crate::segment::SegmentMeta;

pub(crate) const MANIFEST_FILE: &str = "MANIFEST";
pub(crate) const MANIFEST_MAGIC: &[u8; 8] = b"TALLYMAN";
pub(crate) const MANIFEST_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Manifest {
    /// The database's name (its directory name is an escaped form of it).
    pub(crate) name: String,
    /// Next number for a segment, index or WAL file.
    pub(crate) next_file_seq: u64,
    /// The first WAL file replay must read; older ones are covered by segments.
    pub(crate) wal_start_seq: u64,
    pub(crate) segments: Vec<SegmentMeta>,
    pub(crate) index_files: Vec<IndexMeta>,
    /// Database settings as key/value text (retention and the like), so new settings need no
    /// format change.
    pub(crate) options: Vec<(String, String)>,
    /// Deletions not yet applied to every segment they affect.
    pub(crate) tombstones: Vec<Tombstone>,
    /// The next tombstone id.
    pub(crate) next_tombstone: u64,
    /// Columns and series deleted or expired everywhere: the catalog forgets them.
    pub(crate) dead_columns: RoaringBitmap,
    pub(crate) dead_series: RoaringBitmap,
}

/// A deletion: the points of `columns` in `[min_time, max_time]` of every segment whose recency
/// is below `boundary` (data written before the deletion) are gone.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tombstone {
    pub(crate) id: u64,
    pub(crate) boundary: u64,
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
    pub(crate) columns: RoaringBitmap,
}

impl Tombstone {
    /// Whether the tombstone removes the points of this segment's column in some range.
    pub(crate) fn applies_to(&self, segment: &SegmentMeta) -> bool {
        segment.recency < self.boundary
            && segment.applied_tombstones < self.id
            && segment.min_time <= self.max_time
            && segment.max_time >= self.min_time
    }
}

impl Manifest {
    pub(crate) fn indexed_series(&self) -> u32 {
        self.index_files
            .last()
            .map_or(0, |m| m.first_series + m.n_series)
    }

    pub(crate) fn indexed_columns(&self) -> u32 {
        self.index_files
            .last()
            .map_or(0, |m| m.first_column + m.n_columns)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MANIFEST_MAGIC);
        out.extend_from_slice(&MANIFEST_VERSION.to_le_bytes());
        put_bytes(&mut out, self.name.as_bytes());
        put_uvarint(&mut out, self.next_file_seq);
        put_uvarint(&mut out, self.wal_start_seq);
        put_uvarint(&mut out, self.segments.len() as u64);
        for s in &self.segments {
            put_bytes(&mut out, s.file_name.as_bytes());
            put_uvarint(&mut out, s.seq);
            put_ivarint(&mut out, s.block_start);
            put_ivarint(&mut out, s.block_end);
            put_uvarint(&mut out, s.size);
            put_ivarint(&mut out, s.min_time);
            put_ivarint(&mut out, s.max_time);
            put_uvarint(&mut out, u64::from(s.n_columns));
            put_uvarint(&mut out, s.n_points);
            put_ivarint(&mut out, s.resolution);
            put_uvarint(&mut out, s.recency);
            put_uvarint(&mut out, s.built_from);
            put_uvarint(&mut out, s.applied_tombstones);
        }
        put_uvarint(&mut out, self.index_files.len() as u64);
        for i in &self.index_files {
            put_bytes(&mut out, i.file_name.as_bytes());
            put_uvarint(&mut out, u64::from(i.first_series));
            put_uvarint(&mut out, u64::from(i.n_series));
            put_uvarint(&mut out, u64::from(i.first_column));
            put_uvarint(&mut out, u64::from(i.n_columns));
            put_uvarint(&mut out, i.size);
        }
        put_uvarint(&mut out, self.options.len() as u64);
        for (k, v) in &self.options {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, v.as_bytes());
        }
        put_uvarint(&mut out, self.next_tombstone);
        put_uvarint(&mut out, self.tombstones.len() as u64);
        let mut bitmap = Vec::new();
        for t in &self.tombstones {
            put_uvarint(&mut out, t.id);
            put_uvarint(&mut out, t.boundary);
            put_ivarint(&mut out, t.min_time);
            put_ivarint(&mut out, t.max_time);
            bitmap.clear();
            let _ = t.columns.serialize_into(&mut bitmap);
            put_bytes(&mut out, &bitmap);
        }
        for set in [&self.dead_columns, &self.dead_series] {
            bitmap.clear();
            let _ = set.serialize_into(&mut bitmap);
            put_bytes(&mut out, &bitmap);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(path: &Path, data: &[u8]) -> Result<Manifest> {
        let corrupt =
            |offset: usize, reason: String| EngineError::corrupt(path, offset as u64, reason);
        if data.len() < 16 {
            return Err(corrupt(
                0,
                format!("file of {} bytes is too short for a manifest", data.len()),
            ));
        }
        if &data[0..8] != MANIFEST_MAGIC {
            return Err(corrupt(0, "not a Tally manifest (bad magic)".into()));
        }
        let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        if version != MANIFEST_VERSION {
            return Err(EngineError::UnsupportedVersion {
                path: path.to_path_buf(),
                kind: "manifest",
                found: version,
                supported: MANIFEST_VERSION,
            });
        }
        let body_end = data.len() - 4;
        let crc = u32::from_le_bytes([
            data[body_end],
            data[body_end + 1],
            data[body_end + 2],
            data[body_end + 3],
        ]);
        if crc32fast::hash(&data[..body_end]) != crc {
            return Err(corrupt(body_end, "manifest checksum mismatch".into()));
        }
        let mut r = Reader::new(&data[12..body_end]);
        Self::decode_body(&mut r).map_err(|e| corrupt(12 + e.offset, e.reason))
    }

    fn decode_body(r: &mut Reader<'_>) -> std::result::Result<Manifest, DecodeError> {
        const MAX_ITEMS: u64 = 1 << 24;
        let name = r.len_str(4096, "database name")?.to_string();
        let next_file_seq = r.uvarint()?;
        let wal_start_seq = r.uvarint()?;
        let n_segments = r.uvarint_max(MAX_ITEMS, "segment count")?;
        let mut segments = Vec::new();
        for _ in 0..n_segments {
            let file_name = checked_file_name(r, ".tseg")?;
            segments.push(SegmentMeta {
                file_name,
                seq: r.uvarint()?,
                block_start: r.ivarint()?,
                block_end: r.ivarint()?,
                size: r.uvarint()?,
                min_time: r.ivarint()?,
                max_time: r.ivarint()?,
                n_columns: r.uvarint_max(u64::from(u32::MAX), "column count")? as u32,
                n_points: r.uvarint()?,
                resolution: r.ivarint()?,
                recency: r.uvarint()?,
                built_from: r.uvarint()?,
                applied_tombstones: r.uvarint()?,
            });
        }
        let n_index = r.uvarint_max(MAX_ITEMS, "index file count")?;
        let mut index_files = Vec::new();
        let mut next_series = 0u64;
        let mut next_column = 0u64;
        for _ in 0..n_index {
            let at = r.position();
            let file_name = checked_file_name(r, ".tidx")?;
            let max = u64::from(u32::MAX);
            let meta = IndexMeta {
                file_name,
                first_series: r.uvarint_max(max, "first series")? as u32,
                n_series: r.uvarint_max(max, "series count")? as u32,
                first_column: r.uvarint_max(max, "first column")? as u32,
                n_columns: r.uvarint_max(max, "column count")? as u32,
                size: r.uvarint()?,
            };
            if u64::from(meta.first_series) != next_series
                || u64::from(meta.first_column) != next_column
            {
                return Err(DecodeError {
                    offset: at,
                    reason: format!(
                        "index file {} starts at series {} / column {} but the previous one ends at {next_series} / {next_column}",
                        meta.file_name, meta.first_series, meta.first_column
                    ),
                });
            }
            next_series += u64::from(meta.n_series);
            next_column += u64::from(meta.n_columns);
            if next_series > max || next_column > max {
                return Err(DecodeError {
                    offset: at,
                    reason: "index id ranges overflow".into(),
                });
            }
            index_files.push(meta);
        }
        let n_options = r.uvarint_max(4096, "option count")?;
        let mut options = Vec::new();
        for _ in 0..n_options {
            let k = r.len_str(4096, "option key")?.to_string();
            let v = r.len_str(1 << 20, "option value")?.to_string();
            options.push((k, v));
        }
        let next_tombstone = r.uvarint()?;
        let n_tombstones = r.uvarint_max(MAX_ITEMS, "tombstone count")?;
        let mut tombstones = Vec::new();
        let bitmap =
            |r: &mut Reader<'_>, what: &str| -> std::result::Result<RoaringBitmap, DecodeError> {
                let at = r.position();
                let bytes = r.len_bytes(1 << 30, what)?;
                RoaringBitmap::deserialize_from(bytes).map_err(|e| DecodeError {
                    offset: at,
                    reason: format!("{what} does not decode: {e}"),
                })
            };
        for _ in 0..n_tombstones {
            tombstones.push(Tombstone {
                id: r.uvarint()?,
                boundary: r.uvarint()?,
                min_time: r.ivarint()?,
                max_time: r.ivarint()?,
                columns: bitmap(r, "tombstone columns")?,
            });
        }
        let dead_columns = bitmap(r, "dead columns")?;
        let dead_series = bitmap(r, "dead series")?;
        if !r.is_empty() {
            return Err(r.error("trailing bytes after the manifest body"));
        }
        Ok(Manifest {
            name,
            next_file_seq,
            wal_start_seq,
            segments,
            index_files,
            options,
            tombstones,
            next_tombstone,
            dead_columns,
            dead_series,
        })
    }

    pub(crate) fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST_FILE);
        match std::fs::read(&path) {
            Ok(data) => Manifest::decode(&path, &data).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::io(path, e)),
        }
    }

    pub(crate) fn store(&self, dir: &Path) -> Result<()> {
        fsutil::write_atomic(&dir.join(MANIFEST_FILE), &self.encode())
    }
}

/// A file name from the manifest: plain (no separators), with the expected suffix, so a
/// damaged manifest can never make the engine open or delete files outside its directory.
fn checked_file_name(r: &mut Reader<'_>, suffix: &str) -> std::result::Result<String, DecodeError> {
    let at = r.position();
    let name = r.len_str(255, "file name")?;
    if name.is_empty()
        || !name.ends_with(suffix)
        || name.contains(['/', '\\', '\0'])
        || name.starts_with('.')
    {
        return Err(DecodeError {
            offset: at,
            reason: format!("invalid file name {name:?}"),
        });
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            name: "telemetry".into(),
            next_file_seq: 9,
            wal_start_seq: 7,
            segments: vec![SegmentMeta {
                file_name: "0000000000000003-1796083200000000000.tseg".into(),
                seq: 3,
                block_start: 1_796_083_200_000_000_000,
                block_end: 1_796_169_600_000_000_000,
                size: 4096,
                min_time: -5,
                max_time: 77,
                n_columns: 12,
                n_points: 1000,
                resolution: 60_000_000_000,
                recency: 3,
                built_from: 2,
                applied_tombstones: 1,
            }],
            index_files: vec![IndexMeta {
                file_name: "0000000000000004.tidx".into(),
                first_series: 0,
                n_series: 3,
                first_column: 0,
                n_columns: 12,
                size: 300,
            }],
            options: vec![("retention.raw".into(), "7d".into())],
            tombstones: vec![Tombstone {
                id: 1,
                boundary: 5,
                min_time: -10,
                max_time: 10,
                columns: [1u32, 5, 9].into_iter().collect(),
            }],
            next_tombstone: 2,
            dead_columns: [4u32].into_iter().collect(),
            dead_series: RoaringBitmap::new(),
        }
    }

    #[test]
    fn manifest_round_trips() {
        let m = sample();
        let bytes = m.encode();
        assert_eq!(Manifest::decode(Path::new("MANIFEST"), &bytes).unwrap(), m);
        assert_eq!(m.indexed_columns(), 12);
    }

    #[test]
    fn every_flipped_byte_of_a_manifest_is_detected() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x01;
            let err = Manifest::decode(Path::new("MANIFEST"), &damaged);
            assert!(err.is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn a_manifest_naming_a_file_outside_the_directory_is_refused() {
        let mut m = sample();
        m.segments[0].file_name = "../../etc/passwd.tseg".into();
        let err = Manifest::decode(Path::new("MANIFEST"), &m.encode()).unwrap_err();
        assert!(err.to_string().contains("invalid file name"), "{err}");
    }
}
