//! The payloads of WAL records (`docs/format/wal.md`, "Record payloads").
//!
//! - Definitions: the series and columns a write created, with their ids, so replay rebuilds the
//!   catalog with the same numbering.
//! - Points and checkpoints: points as (timestamp, values), each value naming its column and
//!   type. A checkpoint carries the open chunks that a flush left in the head; replaying it is
//!   the same as replaying points.

use std::borrow::Cow;

use crate::bytes::{DecodeError, Reader, put_bytes, put_ivarint, put_uvarint};
use crate::model::{FieldType, FieldValue, MAX_NAME_BYTES, MAX_STRING_BYTES};

pub(crate) const KIND_DEFINITIONS: u8 = 1;
pub(crate) const KIND_POINTS: u8 = 2;
pub(crate) const KIND_CHECKPOINT: u8 = 3;

#[derive(Debug, Default, PartialEq)]
pub(crate) struct Definitions {
    /// (series id, encoded series key)
    pub(crate) series: Vec<(u32, Vec<u8>)>,
    /// (column id, series id, type, field name)
    pub(crate) columns: Vec<(u32, u32, FieldType, String)>,
}

impl Definitions {
    pub(crate) fn is_empty(&self) -> bool {
        self.series.is_empty() && self.columns.is_empty()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![KIND_DEFINITIONS];
        put_uvarint(&mut out, self.series.len() as u64);
        for (id, key) in &self.series {
            put_uvarint(&mut out, u64::from(*id));
            put_bytes(&mut out, key);
        }
        put_uvarint(&mut out, self.columns.len() as u64);
        for (id, series, field_type, field) in &self.columns {
            put_uvarint(&mut out, u64::from(*id));
            put_uvarint(&mut out, u64::from(*series));
            out.push(field_type.to_byte());
            put_bytes(&mut out, field.as_bytes());
        }
        out
    }

    /// Decodes a definitions payload (without its kind byte).
    pub(crate) fn decode(body: &[u8]) -> Result<Definitions, DecodeError> {
        let mut r = Reader::new(body);
        let max = u64::from(u32::MAX);
        let n_series = r.uvarint_max(max, "series count")?;
        let mut defs = Definitions::default();
        for _ in 0..n_series {
            let id = r.uvarint_max(max, "series id")? as u32;
            let key = r.len_bytes(1 << 24, "series key")?.to_vec();
            defs.series.push((id, key));
        }
        let n_columns = r.uvarint_max(max, "column count")?;
        for _ in 0..n_columns {
            let id = r.uvarint_max(max, "column id")? as u32;
            let series = r.uvarint_max(max, "series id")? as u32;
            let at = r.position();
            let type_byte = r.u8()?;
            let field_type = FieldType::from_byte(type_byte).ok_or_else(|| DecodeError {
                offset: at,
                reason: format!("unknown field type {type_byte}"),
            })?;
            let field = r.len_str(MAX_NAME_BYTES, "field name")?.to_string();
            defs.columns.push((id, series, field_type, field));
        }
        if !r.is_empty() {
            return Err(r.error("trailing bytes after definitions"));
        }
        Ok(defs)
    }
}

/// Builds a points (or checkpoint) payload point by point.
pub(crate) struct PointsEncoder {
    buf: Vec<u8>,
    previous_ts: i64,
}

impl PointsEncoder {
    pub(crate) fn new(kind: u8, capacity: usize) -> PointsEncoder {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(kind);
        PointsEncoder {
            buf,
            previous_ts: 0,
        }
    }

    /// Starts a point with `n_values` values to follow.
    pub(crate) fn point(&mut self, ts: i64, n_values: usize) {
        put_ivarint(&mut self.buf, ts.wrapping_sub(self.previous_ts));
        self.previous_ts = ts;
        put_uvarint(&mut self.buf, n_values as u64);
    }

    pub(crate) fn value(&mut self, column: u32, value: &FieldValue<'_>) {
        put_uvarint(&mut self.buf, u64::from(column));
        self.buf.push(value.field_type().to_byte());
        match value {
            FieldValue::Float(v) => self.buf.extend_from_slice(&v.to_bits().to_le_bytes()),
            FieldValue::Integer(v) => put_ivarint(&mut self.buf, *v),
            FieldValue::Unsigned(v) => put_uvarint(&mut self.buf, *v),
            FieldValue::Boolean(v) => self.buf.push(u8::from(*v)),
            FieldValue::String(s) => put_bytes(&mut self.buf, s.as_bytes()),
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Decodes a points payload (without its kind byte), calling `visit(column, ts, value)` for
/// every value in order. Stops at the first malformed byte.
pub(crate) fn decode_points(
    body: &[u8],
    mut visit: impl FnMut(u32, i64, FieldValue<'_>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(body);
    let mut ts = 0i64;
    while !r.is_empty() {
        ts = ts.wrapping_add(r.ivarint()?);
        let n_values = r.uvarint_max(1 << 20, "value count")?;
        for _ in 0..n_values {
            let column = r.uvarint_max(u64::from(u32::MAX), "column id")? as u32;
            let at = r.position();
            let type_byte = r.u8()?;
            let value = match FieldType::from_byte(type_byte) {
                Some(FieldType::Float) => FieldValue::Float(f64::from_bits(r.u64()?)),
                Some(FieldType::Integer) => FieldValue::Integer(r.ivarint()?),
                Some(FieldType::Unsigned) => FieldValue::Unsigned(r.uvarint()?),
                Some(FieldType::Boolean) => match r.u8()? {
                    0 => FieldValue::Boolean(false),
                    1 => FieldValue::Boolean(true),
                    b => {
                        return Err(DecodeError {
                            offset: at + 1,
                            reason: format!("boolean byte {b}"),
                        });
                    }
                },
                Some(FieldType::String) => {
                    FieldValue::String(Cow::Borrowed(r.len_str(MAX_STRING_BYTES, "string value")?))
                }
                None => {
                    return Err(DecodeError {
                        offset: at,
                        reason: format!("unknown field type {type_byte}"),
                    });
                }
            };
            visit(column, ts, value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_round_trip() {
        let defs = Definitions {
            series: vec![(0, vec![3, b'c', b'p', b'u']), (1, vec![1, b'm'])],
            columns: vec![
                (0, 0, FieldType::Float, "usage".into()),
                (1, 1, FieldType::String, "s".into()),
            ],
        };
        let bytes = defs.encode();
        assert_eq!(bytes[0], KIND_DEFINITIONS);
        assert_eq!(Definitions::decode(&bytes[1..]).unwrap(), defs);
    }

    #[test]
    fn points_round_trip_with_every_type_and_extreme_timestamps() {
        let values = [
            (3u32, i64::MIN, FieldValue::Float(-0.0)),
            (4, i64::MAX, FieldValue::Integer(i64::MIN)),
            (5, -1, FieldValue::Unsigned(u64::MAX)),
            (6, 0, FieldValue::Boolean(true)),
            (7, 12, FieldValue::String("é\"x".into())),
        ];
        let mut enc = PointsEncoder::new(KIND_POINTS, 0);
        for (c, t, v) in &values {
            enc.point(*t, 1);
            enc.value(*c, v);
        }
        let bytes = enc.finish();
        let mut got = Vec::new();
        decode_points(&bytes[1..], |c, t, v| {
            got.push((c, t, v.into_owned()));
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), values.len());
        for (g, e) in got.iter().zip(values.iter()) {
            assert_eq!(g.0, e.0);
            assert_eq!(g.1, e.1);
            match (&g.2, &e.2) {
                (FieldValue::Float(a), FieldValue::Float(b)) => {
                    assert_eq!(a.to_bits(), b.to_bits())
                }
                (a, b) => assert_eq!(a, b),
            }
        }
    }
}
