//! Index files: the persisted series catalog and postings. Format: `docs/format/index.md`.
//!
//! Each flush that created series or columns writes one index file holding the series and
//! columns created since the previous one (a contiguous id range of each) and their postings;
//! when there are many, a flush writes one file covering everything instead. Loading reads the
//! files in order and checks that their id ranges follow each other, so a missing or reordered
//! file is detected rather than silently renumbering columns.

use std::path::Path;

use roaring::RoaringBitmap;

use crate::bytes::{Reader, put_bytes, put_uvarint};
use crate::catalog::{Catalog, decode_series_key, validate_series_key};
use crate::error::{EngineError, Result};
use crate::fsutil;
use crate::model::{FieldType, MAX_NAME_BYTES};

pub(crate) const INDEX_MAGIC: &[u8; 8] = b"TALLYIDX";
pub(crate) const INDEX_VERSION: u32 = 1;
const TRAILER_MAGIC: &[u8; 4] = b"TIDX";
const HEADER_LEN: usize = 16;
const TRAILER_LEN: usize = 16;
const FLAG_ZSTD: u32 = 1;
/// The largest decompressed body accepted (protects against a corrupt size field).
const MAX_BODY_BYTES: usize = 16 << 30;

/// What the manifest records about an index file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IndexMeta {
    pub(crate) file_name: String,
    pub(crate) first_series: u32,
    pub(crate) n_series: u32,
    pub(crate) first_column: u32,
    pub(crate) n_columns: u32,
    pub(crate) size: u64,
}

pub(crate) fn index_file_name(seq: u64) -> String {
    format!("{seq:016}.tidx")
}

/// Writes the series `[first_series, end_series)` and columns `[first_column, end_column)` of the
/// catalog, with their postings, to a new index file.
pub(crate) fn write_index(
    dir: &Path,
    seq: u64,
    catalog: &Catalog,
    first_series: u32,
    end_series: u32,
    first_column: u32,
    end_column: u32,
) -> Result<IndexMeta> {
    let mut body = Vec::new();
    put_uvarint(&mut body, u64::from(first_series));
    put_uvarint(&mut body, u64::from(end_series - first_series));
    for id in first_series..end_series {
        put_bytes(&mut body, catalog.series_key(id));
    }
    put_uvarint(&mut body, u64::from(first_column));
    put_uvarint(&mut body, u64::from(end_column - first_column));
    let mut postings: std::collections::BTreeMap<(&str, &str), RoaringBitmap> =
        std::collections::BTreeMap::new();
    for id in first_column..end_column {
        let Some(col) = catalog.column(id) else {
            continue;
        };
        put_uvarint(&mut body, u64::from(col.series));
        body.push(col.field_type.to_byte());
        put_bytes(&mut body, catalog.field_name(col.field).as_bytes());
        if let Some(parts) = decode_series_key(catalog.series_key(col.series)) {
            for (k, v) in parts.tags {
                postings.entry((k, v)).or_default().insert(id);
            }
        }
    }
    put_uvarint(&mut body, postings.len() as u64);
    let mut serialized = Vec::new();
    for ((k, v), bitmap) in &postings {
        put_bytes(&mut body, k.as_bytes());
        put_bytes(&mut body, v.as_bytes());
        serialized.clear();
        bitmap
            .serialize_into(&mut serialized)
            .map_err(|e| EngineError::io(dir, e))?;
        put_bytes(&mut body, &serialized);
    }
    let raw_len = body.len();
    let (flags, stored) = match zstd::bulk::compress(&body, 3) {
        Ok(c) if c.len() < body.len() => (FLAG_ZSTD, c),
        _ => (0, body),
    };
    let mut file = Vec::with_capacity(HEADER_LEN + stored.len() + TRAILER_LEN);
    file.extend_from_slice(INDEX_MAGIC);
    file.extend_from_slice(&INDEX_VERSION.to_le_bytes());
    file.extend_from_slice(&flags.to_le_bytes());
    file.extend_from_slice(&stored);
    file.extend_from_slice(&(raw_len as u64).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(&stored).to_le_bytes());
    file.extend_from_slice(TRAILER_MAGIC);
    let file_name = index_file_name(seq);
    fsutil::write_atomic(&dir.join(&file_name), &file)?;
    Ok(IndexMeta {
        file_name,
        first_series,
        n_series: end_series - first_series,
        first_column,
        n_columns: end_column - first_column,
        size: file.len() as u64,
    })
}

/// Reads an index file into `catalog`, whose series and column counts must equal the file's
/// first ids.
pub(crate) fn load_index(
    path: &Path,
    meta: &IndexMeta,
    catalog: &mut Catalog,
    dead_series: &RoaringBitmap,
    dead_columns: &RoaringBitmap,
) -> Result<()> {
    // Columns dropped before this file was written leave the catalog first, so a field they
    // held may come back here with another type.
    let mut loaded_dead = dead_columns.clone();
    loaded_dead.remove_range(catalog.column_count()..);
    catalog.forget(&loaded_dead);
    let data = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    let corrupt = |offset: usize, reason: String| EngineError::corrupt(path, offset as u64, reason);
    if data.len() < HEADER_LEN + TRAILER_LEN {
        return Err(corrupt(
            0,
            format!(
                "file of {} bytes is too short for an index file",
                data.len()
            ),
        ));
    }
    if &data[0..8] != INDEX_MAGIC {
        return Err(corrupt(0, "not a Tally index file (bad magic)".into()));
    }
    let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
    if version != INDEX_VERSION {
        return Err(EngineError::UnsupportedVersion {
            path: path.to_path_buf(),
            kind: "index",
            found: version,
            supported: INDEX_VERSION,
        });
    }
    let flags = u32::from_le_bytes([data[12], data[13], data[14], data[15]]);
    if flags & !FLAG_ZSTD != 0 {
        return Err(corrupt(12, format!("unknown index flags {flags:#x}")));
    }
    let trailer_at = data.len() - TRAILER_LEN;
    let t = &data[trailer_at..];
    let mut raw_len_bytes = [0u8; 8];
    raw_len_bytes.copy_from_slice(&t[0..8]);
    let raw_len = u64::from_le_bytes(raw_len_bytes);
    let crc = u32::from_le_bytes([t[8], t[9], t[10], t[11]]);
    if &t[12..16] != TRAILER_MAGIC {
        return Err(corrupt(
            data.len() - 4,
            "bad trailer magic (truncated or damaged file)".into(),
        ));
    }
    let stored = &data[HEADER_LEN..trailer_at];
    if crc32fast::hash(stored) != crc {
        return Err(corrupt(HEADER_LEN, "index body checksum mismatch".into()));
    }
    if raw_len > MAX_BODY_BYTES as u64 {
        return Err(corrupt(
            trailer_at,
            format!("body length {raw_len} is implausible"),
        ));
    }
    let decompressed;
    let body: &[u8] = if flags & FLAG_ZSTD != 0 {
        decompressed = zstd::bulk::decompress(stored, raw_len as usize)
            .map_err(|e| corrupt(HEADER_LEN, format!("zstd body does not decompress: {e}")))?;
        &decompressed
    } else {
        stored
    };
    if body.len() as u64 != raw_len {
        return Err(corrupt(
            trailer_at,
            format!("body is {} bytes, trailer says {raw_len}", body.len()),
        ));
    }
    // Offsets inside a compressed body are offsets into the decompressed bytes; say so.
    let where_ = if flags & FLAG_ZSTD != 0 {
        "decompressed body"
    } else {
        "body"
    };
    let body_error = |e: crate::bytes::DecodeError| {
        let offset = if flags & FLAG_ZSTD != 0 {
            HEADER_LEN
        } else {
            HEADER_LEN + e.offset
        };
        EngineError::corrupt(
            path,
            offset as u64,
            format!("{} (at byte {} of the {where_})", e.reason, e.offset),
        )
    };
    let mut r = Reader::new(body);
    let first_series = r
        .uvarint_max(u64::from(u32::MAX), "first series id")
        .map_err(body_error)? as u32;
    let n_series = r
        .uvarint_max(u64::from(u32::MAX), "series count")
        .map_err(body_error)? as u32;
    if first_series != catalog.series_count()
        || first_series != meta.first_series
        || n_series != meta.n_series
    {
        return Err(corrupt(
            HEADER_LEN,
            format!(
                "holds series {first_series}..+{n_series} but {} series are loaded and the manifest says {}..+{}",
                catalog.series_count(),
                meta.first_series,
                meta.n_series
            ),
        ));
    }
    for _ in 0..n_series {
        let at = r.position();
        let key = r.len_bytes(1 << 24, "series key").map_err(body_error)?;
        if let Err(reason) = validate_series_key(key) {
            return Err(body_error(crate::bytes::DecodeError { offset: at, reason }));
        }
        let hash = catalog.hash_key(key);
        // A dropped series' key may come back as a new series in a later file.
        if let Some(existing) = catalog.find_series(key, hash)
            && dead_series.contains(existing)
        {
            catalog.unindex_series(existing);
        }
        if catalog.find_series(key, hash).is_some() {
            return Err(body_error(crate::bytes::DecodeError {
                offset: at,
                reason: "duplicate series key".into(),
            }));
        }
        catalog.add_series(key, hash);
    }
    let first_column = r
        .uvarint_max(u64::from(u32::MAX), "first column id")
        .map_err(body_error)? as u32;
    let n_columns = r
        .uvarint_max(u64::from(u32::MAX), "column count")
        .map_err(body_error)? as u32;
    if first_column != catalog.column_count()
        || first_column != meta.first_column
        || n_columns != meta.n_columns
    {
        return Err(corrupt(
            HEADER_LEN,
            format!(
                "holds columns {first_column}..+{n_columns} but {} columns are loaded and the manifest says {}..+{}",
                catalog.column_count(),
                meta.first_column,
                meta.n_columns
            ),
        ));
    }
    for _ in 0..n_columns {
        let at = r.position();
        let series = r
            .uvarint_max(u64::from(u32::MAX), "series id")
            .map_err(body_error)? as u32;
        if series >= catalog.series_count() {
            return Err(body_error(crate::bytes::DecodeError {
                offset: at,
                reason: format!(
                    "column refers to series {series}, but only {} exist",
                    catalog.series_count()
                ),
            }));
        }
        let type_byte = r.u8().map_err(body_error)?;
        let field_type = FieldType::from_byte(type_byte).ok_or_else(|| {
            body_error(crate::bytes::DecodeError {
                offset: at,
                reason: format!("unknown field type {type_byte}"),
            })
        })?;
        let field = r
            .len_str(MAX_NAME_BYTES, "field name")
            .map_err(body_error)?;
        if field.is_empty() || catalog.find_column(series, field).is_some() {
            return Err(body_error(crate::bytes::DecodeError {
                offset: at,
                reason: "empty or duplicate field".into(),
            }));
        }
        catalog.add_column(series, field, field_type).map_err(|_| {
            body_error(crate::bytes::DecodeError {
                offset: at,
                reason: format!("field {field:?} has a type that conflicts with an earlier column"),
            })
        })?;
    }
    // The postings were rebuilt from the columns above; the stored ones must agree with them,
    // which catches an index file whose parts were damaged consistently enough to pass the crc.
    let n_postings = r
        .uvarint_max(u64::from(u32::MAX), "postings count")
        .map_err(body_error)?;
    for _ in 0..n_postings {
        let at = r.position();
        let key = r.len_str(MAX_NAME_BYTES, "tag key").map_err(body_error)?;
        let value = r.len_str(MAX_NAME_BYTES, "tag value").map_err(body_error)?;
        let bytes = r
            .len_bytes(1 << 30, "postings bitmap")
            .map_err(body_error)?;
        let bitmap = RoaringBitmap::deserialize_from(bytes).map_err(|e| {
            body_error(crate::bytes::DecodeError {
                offset: at,
                reason: format!("postings bitmap does not decode: {e}"),
            })
        })?;
        let expected = catalog
            .postings
            .get(key)
            .and_then(|values| values.get(value))
            .map(|b| {
                let mut range = RoaringBitmap::new();
                range.insert_range(first_column..first_column + n_columns);
                b & range
            })
            .unwrap_or_default();
        if bitmap != expected {
            return Err(body_error(crate::bytes::DecodeError {
                offset: at,
                reason: format!("postings of {key}={value} disagree with the columns"),
            }));
        }
    }
    if !r.is_empty() {
        return Err(body_error(r.error("trailing bytes after the postings")));
    }
    Ok(())
}
