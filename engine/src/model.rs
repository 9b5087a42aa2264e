//! The data model shared by every crate: field types and values, and the batch of points a
//! writer hands to the engine.
//!
//! A point is a measurement, a tag set sorted by key, one or more fields and a timestamp in
//! nanoseconds since the Unix epoch. [`PointBatch`] stores many points in three flat vectors so
//! that a parser can fill it without one allocation per line, borrowing names and values from
//! the request body where no unescaping was needed.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

/// The type of a field, fixed per (database, measurement, field key) by the first write.
///
/// The names are InfluxDB's, so that `SHOW FIELD KEYS` answers as InfluxDB does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FieldType {
    Float,
    Integer,
    Unsigned,
    Boolean,
    String,
}

impl FieldType {
    /// The name InfluxDB uses for this type (`float`, `integer`, `unsigned`, `boolean`, `string`).
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Float => "float",
            FieldType::Integer => "integer",
            FieldType::Unsigned => "unsigned",
            FieldType::Boolean => "boolean",
            FieldType::String => "string",
        }
    }

    /// The one-byte tag that names this type in the WAL, index and segment formats.
    pub(crate) fn to_byte(self) -> u8 {
        match self {
            FieldType::Float => 1,
            FieldType::Integer => 2,
            FieldType::Unsigned => 3,
            FieldType::Boolean => 4,
            FieldType::String => 5,
        }
    }

    pub(crate) fn from_byte(byte: u8) -> Option<FieldType> {
        Some(match byte {
            1 => FieldType::Float,
            2 => FieldType::Integer,
            3 => FieldType::Unsigned,
            4 => FieldType::Boolean,
            5 => FieldType::String,
            _ => return None,
        })
    }

    /// Whether values of this type can be summed, averaged and compared numerically.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::Float | FieldType::Integer | FieldType::Unsigned
        )
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One field value, borrowing string contents where it can.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FieldValue<'a> {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(Cow<'a, str>),
}

impl FieldValue<'_> {
    pub fn field_type(&self) -> FieldType {
        match self {
            FieldValue::Float(_) => FieldType::Float,
            FieldValue::Integer(_) => FieldType::Integer,
            FieldValue::Unsigned(_) => FieldType::Unsigned,
            FieldValue::Boolean(_) => FieldType::Boolean,
            FieldValue::String(_) => FieldType::String,
        }
    }

    /// A copy that owns its string, for values that outlive the buffer they were parsed from.
    pub fn into_owned(self) -> FieldValue<'static> {
        match self {
            FieldValue::Float(v) => FieldValue::Float(v),
            FieldValue::Integer(v) => FieldValue::Integer(v),
            FieldValue::Unsigned(v) => FieldValue::Unsigned(v),
            FieldValue::Boolean(v) => FieldValue::Boolean(v),
            FieldValue::String(s) => FieldValue::String(Cow::Owned(s.into_owned())),
        }
    }
}

/// Why a point cannot be added to a [`PointBatch`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PointError {
    #[error("missing measurement name")]
    EmptyMeasurement,
    #[error("empty tag key")]
    EmptyTagKey,
    #[error("tag key {key:?} has an empty value")]
    EmptyTagValue { key: String },
    #[error("duplicate tag key {key:?}")]
    DuplicateTagKey { key: String },
    #[error("empty field key")]
    EmptyFieldKey,
    #[error("duplicate field key {key:?}")]
    DuplicateFieldKey { key: String },
    #[error("a point needs at least one field")]
    NoFields,
    #[error("name of {len} bytes is longer than the limit of {limit} bytes")]
    NameTooLong { len: usize, limit: usize },
    #[error("string field {key:?} of {len} bytes is longer than the limit of {limit} bytes")]
    StringTooLong {
        key: String,
        len: usize,
        limit: usize,
    },
    #[error("\"time\" cannot be used as a {what}: it names the timestamp in queries")]
    ReservedName { what: &'static str },
    #[error("{count} tags exceed the limit of {limit} tags per point")]
    TooManyTags { count: usize, limit: usize },
}

/// The longest measurement name, tag key, tag value or field key, in bytes (InfluxDB: 64 KiB
/// for a whole series key).
pub const MAX_NAME_BYTES: usize = 16 * 1024;
/// The longest string field value, in bytes (InfluxDB's limit is 64 KiB).
pub const MAX_STRING_BYTES: usize = 64 * 1024;
/// The most tags one point may carry.
pub const MAX_TAGS: usize = 256;

#[derive(Clone, Debug)]
struct PointEntry<'a> {
    measurement: Cow<'a, str>,
    tags: Range<u32>,
    fields: Range<u32>,
    timestamp: i64,
}

/// A batch of points ready for [`crate::Database::write`].
///
/// Points are added either whole with [`PointBatch::push`], or piece by piece with
/// [`PointBatch::start_point`], [`PointBatch::add_tag`], [`PointBatch::add_field`] and
/// [`PointBatch::finish_point`], which is what a streaming parser wants. `finish_point`
/// sorts the tags by key and checks the point; a point that fails is removed again and the
/// batch stays usable.
#[derive(Clone, Debug, Default)]
pub struct PointBatch<'a> {
    points: Vec<PointEntry<'a>>,
    tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
    open: Option<PointEntry<'a>>,
}

impl<'a> PointBatch<'a> {
    pub fn new() -> PointBatch<'a> {
        PointBatch::default()
    }

    /// Number of finished points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Number of field values over all finished points.
    pub fn n_values(&self) -> usize {
        self.fields.len() - self.open.as_ref().map_or(0, |p| p.fields.len())
    }

    pub fn clear(&mut self) {
        self.points.clear();
        self.tags.clear();
        self.fields.clear();
        self.open = None;
    }

    /// Begins a point; any point begun and not finished is dropped.
    pub fn start_point(&mut self, measurement: Cow<'a, str>) {
        self.abandon_point();
        let n_tags = self.tags.len() as u32;
        let n_fields = self.fields.len() as u32;
        self.open = Some(PointEntry {
            measurement,
            tags: n_tags..n_tags,
            fields: n_fields..n_fields,
            timestamp: 0,
        });
    }

    /// Adds a tag to the point begun with [`PointBatch::start_point`].
    pub fn add_tag(&mut self, key: Cow<'a, str>, value: Cow<'a, str>) {
        if let Some(open) = &mut self.open {
            self.tags.push((key, value));
            open.tags.end += 1;
        }
    }

    /// Adds a field to the point begun with [`PointBatch::start_point`].
    pub fn add_field(&mut self, key: Cow<'a, str>, value: FieldValue<'a>) {
        if let Some(open) = &mut self.open {
            self.fields.push((key, value));
            open.fields.end += 1;
        }
    }

    /// Drops the point begun and not finished, if any.
    pub fn abandon_point(&mut self) {
        if let Some(open) = self.open.take() {
            self.tags.truncate(open.tags.start as usize);
            self.fields.truncate(open.fields.start as usize);
        }
    }

    /// Checks and finishes the point begun with [`PointBatch::start_point`]. On error the
    /// point is dropped and the batch is as it was before `start_point`.
    pub fn finish_point(&mut self, timestamp: i64) -> Result<(), PointError> {
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        open.timestamp = timestamp;
        let result = self.check_open(&open);
        match result {
            Ok(()) => {
                self.points.push(open);
                Ok(())
            }
            Err(e) => {
                self.tags.truncate(open.tags.start as usize);
                self.fields.truncate(open.fields.start as usize);
                Err(e)
            }
        }
    }

    fn check_open(&mut self, open: &PointEntry<'a>) -> Result<(), PointError> {
        if open.measurement.is_empty() {
            return Err(PointError::EmptyMeasurement);
        }
        check_name_len(&open.measurement)?;
        let tags = &mut self.tags[open.tags.start as usize..open.tags.end as usize];
        if tags.len() > MAX_TAGS {
            return Err(PointError::TooManyTags {
                count: tags.len(),
                limit: MAX_TAGS,
            });
        }
        if !tags.windows(2).all(|w| w[0].0 < w[1].0) {
            tags.sort_by(|a, b| a.0.cmp(&b.0));
        }
        for (i, (key, value)) in tags.iter().enumerate() {
            if key.is_empty() {
                return Err(PointError::EmptyTagKey);
            }
            if value.is_empty() {
                return Err(PointError::EmptyTagValue {
                    key: key.to_string(),
                });
            }
            if key == "time" {
                return Err(PointError::ReservedName { what: "tag key" });
            }
            check_name_len(key)?;
            check_name_len(value)?;
            if i > 0 && tags[i - 1].0 == *key {
                return Err(PointError::DuplicateTagKey {
                    key: key.to_string(),
                });
            }
        }
        let fields = &self.fields[open.fields.start as usize..open.fields.end as usize];
        if fields.is_empty() {
            return Err(PointError::NoFields);
        }
        for (i, (key, value)) in fields.iter().enumerate() {
            if key.is_empty() {
                return Err(PointError::EmptyFieldKey);
            }
            check_name_len(key)?;
            if let FieldValue::String(s) = value
                && s.len() > MAX_STRING_BYTES
            {
                return Err(PointError::StringTooLong {
                    key: key.to_string(),
                    len: s.len(),
                    limit: MAX_STRING_BYTES,
                });
            }
            if key == "time" {
                return Err(PointError::ReservedName { what: "field key" });
            }
            // Points rarely have more than a handful of fields, so a quadratic check is
            // cheaper than sorting or hashing; wide points are checked after a sort below.
            if fields.len() <= 32 && fields[..i].iter().any(|(k, _)| k == key) {
                return Err(PointError::DuplicateFieldKey {
                    key: key.to_string(),
                });
            }
        }
        if fields.len() > 32 {
            let mut keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_ref()).collect();
            keys.sort_unstable();
            if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
                return Err(PointError::DuplicateFieldKey {
                    key: w[0].to_string(),
                });
            }
        }
        Ok(())
    }

    /// Adds one whole point.
    pub fn push<T, F>(
        &mut self,
        measurement: impl Into<Cow<'a, str>>,
        tags: T,
        fields: F,
        timestamp: i64,
    ) -> Result<(), PointError>
    where
        T: IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
        F: IntoIterator<Item = (Cow<'a, str>, FieldValue<'a>)>,
    {
        self.start_point(measurement.into());
        for (k, v) in tags {
            self.add_tag(k, v);
        }
        for (k, v) in fields {
            self.add_field(k, v);
        }
        self.finish_point(timestamp)
    }

    /// The finished points, in the order they were added.
    pub fn points(&self) -> impl ExactSizeIterator<Item = PointRef<'_, 'a>> + '_ {
        self.points
            .iter()
            .map(move |entry| PointRef { batch: self, entry })
    }

    pub fn point(&self, index: usize) -> Option<PointRef<'_, 'a>> {
        self.points
            .get(index)
            .map(|entry| PointRef { batch: self, entry })
    }
}

fn check_name_len(name: &str) -> Result<(), PointError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(PointError::NameTooLong {
            len: name.len(),
            limit: MAX_NAME_BYTES,
        });
    }
    Ok(())
}

/// A view of one point of a [`PointBatch`].
#[derive(Clone, Copy)]
pub struct PointRef<'b, 'a> {
    batch: &'b PointBatch<'a>,
    entry: &'b PointEntry<'a>,
}

impl<'b, 'a> PointRef<'b, 'a> {
    pub fn measurement(&self) -> &'b str {
        &self.entry.measurement
    }

    /// Tags sorted by key, keys unique.
    pub fn tags(&self) -> &'b [(Cow<'a, str>, Cow<'a, str>)] {
        &self.batch.tags[self.entry.tags.start as usize..self.entry.tags.end as usize]
    }

    pub fn fields(&self) -> &'b [(Cow<'a, str>, FieldValue<'a>)] {
        &self.batch.fields[self.entry.fields.start as usize..self.entry.fields.end as usize]
    }

    pub fn timestamp(&self) -> i64 {
        self.entry.timestamp
    }
}

impl fmt::Debug for PointRef<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Point")
            .field("measurement", &self.measurement())
            .field("tags", &self.tags())
            .field("fields", &self.fields())
            .field("timestamp", &self.timestamp())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cow<'_, str> {
        Cow::Borrowed(s)
    }

    #[test]
    fn finish_point_sorts_tags_and_keeps_batch_usable_after_an_error() {
        let mut batch = PointBatch::new();
        batch
            .push(
                "cpu",
                [(c("z"), c("1")), (c("a"), c("2"))],
                [(c("v"), FieldValue::Float(1.0))],
                5,
            )
            .unwrap();
        let err = batch
            .push(
                "cpu",
                [(c("a"), c("1")), (c("a"), c("2"))],
                [(c("v"), FieldValue::Float(1.0))],
                6,
            )
            .unwrap_err();
        assert_eq!(err, PointError::DuplicateTagKey { key: "a".into() });
        let err = batch.push("cpu", [], [], 7).unwrap_err();
        assert_eq!(err, PointError::NoFields);
        batch
            .push("mem", [], [(c("used"), FieldValue::Integer(3))], 8)
            .unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.n_values(), 2);
        let first = batch.point(0).unwrap();
        assert_eq!(first.tags()[0].0, "a");
        assert_eq!(first.tags()[1].0, "z");
        let second = batch.point(1).unwrap();
        assert_eq!(second.measurement(), "mem");
        assert!(second.tags().is_empty());
        assert_eq!(second.fields(), &[(c("used"), FieldValue::Integer(3))]);
    }

    #[test]
    fn duplicate_field_keys_are_rejected() {
        let mut batch = PointBatch::new();
        let err = batch
            .push(
                "m",
                [],
                [
                    (c("f"), FieldValue::Integer(1)),
                    (c("f"), FieldValue::Integer(2)),
                ],
                0,
            )
            .unwrap_err();
        assert_eq!(err, PointError::DuplicateFieldKey { key: "f".into() });
        assert!(batch.is_empty());
        assert_eq!(batch.n_values(), 0);
    }
}
