//! Helpers shared by the engine's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::borrow::Cow;

use tally_engine::{ColumnValues, Database, FieldType, FieldValue, PointBatch, TagFilter};

pub(crate) fn c(s: &str) -> Cow<'_, str> {
    Cow::Borrowed(s)
}

/// One point of measurement `cpu` with tag `host` and one float field `v`.
pub(crate) fn float_point(batch: &mut PointBatch<'_>, host: &str, ts: i64, v: f64) {
    batch
        .push(
            "cpu",
            [(Cow::Owned("host".to_string()), Cow::Owned(host.to_string()))],
            [(Cow::Borrowed("v"), FieldValue::Float(v))],
            ts,
        )
        .unwrap();
}

/// Every (timestamp, value) of a column, by reading all its pieces.
pub(crate) fn read_column(
    db: &Database,
    measurement: &str,
    host: &str,
    field: &str,
) -> Vec<(i64, FieldValue<'static>)> {
    let cols = db.select(measurement, Some(field), &TagFilter::equal("host", host));
    assert!(cols.len() <= 1, "{cols:?}");
    let Some(col) = cols.first() else {
        return Vec::new();
    };
    let view = db.read(&[col.id], i64::MIN, i64::MAX).unwrap();
    let mut out = Vec::new();
    let mut ts = Vec::new();
    let mut values = ColumnValues::new(FieldType::Float);
    let mut last = None;
    for piece in view.pieces(col.id).unwrap() {
        piece.decode_into(&mut ts, &mut values).unwrap();
        assert_eq!(ts.len() as u32, piece.stats().count);
        for (i, t) in ts.iter().enumerate() {
            if let Some(l) = last {
                assert!(*t > l, "pieces overlap or are out of order");
            }
            last = Some(*t);
            out.push((*t, values.get(i).unwrap().into_owned()));
        }
    }
    out
}
