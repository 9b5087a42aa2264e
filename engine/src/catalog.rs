//! The series catalog of one database and its postings.
//!
//! A series is a measurement and a sorted tag set; a column is a series and one field. Both get
//! dense ids in creation order (series ids and column ids are separate sequences starting at 0),
//! so the head and the postings can index by id. Postings map each tag key=value to a roaring
//! bitmap of column ids; every measurement and every (measurement, field) keeps the bitmap of
//! its columns, so a selection is a few bitmap intersections.
//!
//! The catalog only grows while the process runs. It is persisted in index files (see
//! `index_file.rs`) at flush and rebuilt at start from those files plus the definition records
//! of the WAL.

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use regex::Regex;
use roaring::RoaringBitmap;

use crate::bytes::{Reader, put_uvarint};
use crate::model::FieldType;

/// Appends the canonical series key of a measurement and its sorted tags: each part is a varint
/// length and the bytes, so the encoding is unambiguous whatever the names contain.
pub(crate) fn encode_series_key<'t, K, V>(
    out: &mut Vec<u8>,
    measurement: &str,
    tags: impl IntoIterator<Item = &'t (K, V)>,
) where
    K: AsRef<str> + 't,
    V: AsRef<str> + 't,
{
    put_uvarint(out, measurement.len() as u64);
    out.extend_from_slice(measurement.as_bytes());
    for (k, v) in tags {
        let (k, v) = (k.as_ref(), v.as_ref());
        put_uvarint(out, k.len() as u64);
        out.extend_from_slice(k.as_bytes());
        put_uvarint(out, v.len() as u64);
        out.extend_from_slice(v.as_bytes());
    }
}

/// A decoded series key: the measurement and tags, borrowing from the key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SeriesParts<'a> {
    pub(crate) measurement: &'a str,
    pub(crate) tags: Vec<(&'a str, &'a str)>,
}

/// Decodes a series key; `None` if it is malformed (only possible for keys read from disk,
/// which are checked when loaded).
pub(crate) fn decode_series_key(key: &[u8]) -> Option<SeriesParts<'_>> {
    let mut r = Reader::new(key);
    let limit = crate::model::MAX_NAME_BYTES;
    let measurement = r.len_str(limit, "measurement").ok()?;
    let mut tags = Vec::new();
    while !r.is_empty() {
        let k = r.len_str(limit, "tag key").ok()?;
        let v = r.len_str(limit, "tag value").ok()?;
        tags.push((k, v));
    }
    Some(SeriesParts { measurement, tags })
}

/// Checks that a key read from disk is well formed: names non-empty, tags sorted and unique.
pub(crate) fn validate_series_key(key: &[u8]) -> Result<(), String> {
    let parts = decode_series_key(key).ok_or("malformed series key")?;
    if parts.measurement.is_empty() {
        return Err("series key has an empty measurement".into());
    }
    for (i, (k, v)) in parts.tags.iter().enumerate() {
        if k.is_empty() || v.is_empty() {
            return Err("series key has an empty tag key or value".into());
        }
        if i > 0 && parts.tags[i - 1].0 >= *k {
            return Err("series key tags are not sorted and unique".into());
        }
    }
    Ok(())
}

pub(crate) struct SeriesEntry {
    pub(crate) key: Box<[u8]>,
    /// (field name id, column id), in creation order; series rarely have more than a dozen.
    pub(crate) columns: Vec<(u32, u32)>,
}

#[derive(Clone, Copy)]
pub(crate) struct ColumnEntry {
    pub(crate) series: u32,
    pub(crate) field: u32,
    pub(crate) field_type: FieldType,
}

pub(crate) struct FieldEntry {
    pub(crate) field_type: FieldType,
    pub(crate) columns: RoaringBitmap,
}

#[derive(Default)]
pub(crate) struct MeasurementEntry {
    pub(crate) columns: RoaringBitmap,
    pub(crate) series: RoaringBitmap,
    pub(crate) fields: BTreeMap<Box<str>, FieldEntry>,
    pub(crate) tag_keys: BTreeMap<Box<str>, ()>,
}

/// A tag predicate, as in `WHERE host = 'a'` or `WHERE model =~ /gpt/`.
///
/// As in InfluxDB, a series without the tag has the empty string as its value: `host = ''`
/// and `host !~ /./` match it, `host != 'a'` matches it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TagMatcher {
    Equal { key: String, value: String },
    NotEqual { key: String, value: String },
    Regex { key: String, regex: Regex },
    NotRegex { key: String, regex: Regex },
}

impl TagMatcher {
    pub fn key(&self) -> &str {
        match self {
            TagMatcher::Equal { key, .. }
            | TagMatcher::NotEqual { key, .. }
            | TagMatcher::Regex { key, .. }
            | TagMatcher::NotRegex { key, .. } => key,
        }
    }
}

/// The catalog of one database.
#[derive(Default)]
pub(crate) struct Catalog {
    pub(crate) series: Vec<SeriesEntry>,
    series_index: HashTable<u32>,
    pub(crate) columns: Vec<ColumnEntry>,
    pub(crate) field_names: Vec<Box<str>>,
    field_name_index: HashTable<u32>,
    pub(crate) measurements: BTreeMap<Box<str>, MeasurementEntry>,
    /// tag key -> tag value -> column ids.
    pub(crate) postings: BTreeMap<Box<str>, BTreeMap<Box<str>, RoaringBitmap>>,
    /// Columns and series forgotten (see `forget`).
    pub(crate) dead_columns: RoaringBitmap,
    pub(crate) dead_series: RoaringBitmap,
    hasher: hashbrown::DefaultHashBuilder,
}

/// Why a column could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CreateError {
    TypeConflict { existing: FieldType },
}

impl Catalog {
    pub(crate) fn hash_key(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn series_count(&self) -> u32 {
        self.series.len() as u32
    }

    pub(crate) fn column_count(&self) -> u32 {
        self.columns.len() as u32
    }

    pub(crate) fn find_series(&self, key: &[u8], hash: u64) -> Option<u32> {
        self.series_index
            .find(hash, |&id| *self.series[id as usize].key == *key)
            .copied()
    }

    fn find_field_name(&self, name: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(name.as_bytes());
        self.field_name_index
            .find(hash, |&id| *self.field_names[id as usize] == *name)
            .copied()
    }

    fn intern_field_name(&mut self, name: &str) -> u32 {
        if let Some(id) = self.find_field_name(name) {
            return id;
        }
        let id = self.field_names.len() as u32;
        self.field_names.push(name.into());
        let hash = self.hasher.hash_one(name.as_bytes());
        let hasher = self.hasher.clone();
        let names = &self.field_names;
        self.field_name_index
            .insert_unique(hash, id, |&i| hasher.hash_one(names[i as usize].as_bytes()));
        id
    }

    /// The column of `field` in series `series`, if it exists.
    pub(crate) fn find_column(&self, series: u32, field: &str) -> Option<(u32, FieldType)> {
        let entry = self.series.get(series as usize)?;
        for &(name, column) in &entry.columns {
            if *self.field_names[name as usize] == *field {
                return Some((column, self.columns[column as usize].field_type));
            }
        }
        None
    }

    /// The type fixed for `field` in `measurement` by its first write, if any.
    pub(crate) fn field_type(&self, measurement: &str, field: &str) -> Option<FieldType> {
        self.measurements
            .get(measurement)?
            .fields
            .get(field)
            .map(|f| f.field_type)
    }

    /// Adds a series with the next id. The key must be valid and not present.
    pub(crate) fn add_series(&mut self, key: &[u8], hash: u64) -> u32 {
        let id = self.series.len() as u32;
        self.series.push(SeriesEntry {
            key: key.into(),
            columns: Vec::new(),
        });
        let hasher = self.hasher.clone();
        let series = &self.series;
        self.series_index
            .insert_unique(hash, id, |&i| hasher.hash_one(&*series[i as usize].key));
        if let Some(parts) = decode_series_key(key) {
            let m = self
                .measurements
                .entry(parts.measurement.into())
                .or_default();
            m.series.insert(id);
            for (k, _) in &parts.tags {
                if !m.tag_keys.contains_key(*k) {
                    m.tag_keys.insert((*k).into(), ());
                }
            }
        }
        id
    }

    /// Adds a column with the next id for `field` of `series`, checking the measurement's type.
    pub(crate) fn add_column(
        &mut self,
        series: u32,
        field: &str,
        field_type: FieldType,
    ) -> Result<u32, CreateError> {
        let key = self.series[series as usize].key.clone();
        let Some(parts) = decode_series_key(&key) else {
            unreachable!("BUG: catalog holds a malformed series key");
        };
        let measurement = self
            .measurements
            .entry(parts.measurement.into())
            .or_default();
        if let Some(existing) = measurement.fields.get(field)
            && existing.field_type != field_type
        {
            return Err(CreateError::TypeConflict {
                existing: existing.field_type,
            });
        }
        let id = self.columns.len() as u32;
        measurement.columns.insert(id);
        measurement
            .fields
            .entry(field.into())
            .or_insert_with(|| FieldEntry {
                field_type,
                columns: RoaringBitmap::new(),
            })
            .columns
            .insert(id);
        for (k, v) in &parts.tags {
            let values = match self.postings.get_mut(*k) {
                Some(values) => values,
                None => self.postings.entry((*k).into()).or_default(),
            };
            match values.get_mut(*v) {
                Some(bitmap) => {
                    bitmap.insert(id);
                }
                None => {
                    let mut bitmap = RoaringBitmap::new();
                    bitmap.insert(id);
                    values.insert((*v).into(), bitmap);
                }
            }
        }
        let field_id = self.intern_field_name(field);
        self.columns.push(ColumnEntry {
            series,
            field: field_id,
            field_type,
        });
        self.series[series as usize].columns.push((field_id, id));
        Ok(id)
    }

    /// Forgets columns that hold no data anywhere any more (dropped or expired): they leave the
    /// postings, their measurement and field, so no query or SHOW sees them, and a series whose
    /// columns are all forgotten leaves the series index, so a later write of the same key makes
    /// a new series. Ids are never reused. Returns the series forgotten.
    pub(crate) fn forget(&mut self, dead: &RoaringBitmap) -> RoaringBitmap {
        let mut touched_series = RoaringBitmap::new();
        for id in dead.iter() {
            let Some(col) = self.columns.get(id as usize).copied() else {
                continue;
            };
            if self.dead_columns.contains(id) {
                continue;
            }
            self.dead_columns.insert(id);
            touched_series.insert(col.series);
            let Some(parts) = decode_series_key(&self.series[col.series as usize].key) else {
                continue;
            };
            if let Some(m) = self.measurements.get_mut(parts.measurement) {
                m.columns.remove(id);
                let field = &*self.field_names[col.field as usize];
                let now_empty = m.fields.get_mut(field).is_some_and(|f| {
                    f.columns.remove(id);
                    f.columns.is_empty()
                });
                if now_empty {
                    m.fields.remove(field);
                }
            }
            for (k, v) in parts.tags {
                if let Some(values) = self.postings.get_mut(k) {
                    let now_empty = values.get_mut(v).is_some_and(|b| {
                        b.remove(id);
                        b.is_empty()
                    });
                    if now_empty {
                        values.remove(v);
                    }
                    if values.is_empty() {
                        self.postings.remove(k);
                    }
                }
            }
        }
        let mut forgotten = RoaringBitmap::new();
        for s in touched_series.iter() {
            let entry = &self.series[s as usize];
            if entry
                .columns
                .iter()
                .all(|(_, c)| self.dead_columns.contains(*c))
                && !self.dead_series.contains(s)
            {
                let hash = self.hash_key(&entry.key);
                if let Ok(e) = self.series_index.find_entry(hash, |&x| x == s) {
                    e.remove();
                }
                self.dead_series.insert(s);
                forgotten.insert(s);
                if let Some(parts) = decode_series_key(&self.series[s as usize].key)
                    && let Some(m) = self.measurements.get_mut(parts.measurement)
                {
                    m.series.remove(s);
                    if m.series.is_empty() && m.columns.is_empty() {
                        self.measurements.remove(parts.measurement);
                    }
                }
            }
        }
        forgotten
    }

    /// Takes a series out of the key index (it was dropped; a series with the same key may be
    /// created again with a new id).
    pub(crate) fn unindex_series(&mut self, id: u32) {
        let Some(entry) = self.series.get(id as usize) else {
            return;
        };
        let hash = self.hash_key(&entry.key);
        if let Ok(e) = self.series_index.find_entry(hash, |&x| x == id) {
            e.remove();
        }
    }

    pub(crate) fn is_dead(&self, column: u32) -> bool {
        self.dead_columns.contains(column)
    }

    /// Forgets every series and column created after the catalog had `n_series` and
    /// `n_columns` of them (used when logging their definitions failed).
    pub(crate) fn truncate(&mut self, n_series: u32, n_columns: u32) {
        while self.columns.len() as u32 > n_columns {
            let Some(col) = self.columns.pop() else { break };
            let id = self.columns.len() as u32;
            let key = self.series[col.series as usize].key.clone();
            self.series[col.series as usize]
                .columns
                .retain(|&(_, c)| c != id);
            if let Some(parts) = decode_series_key(&key) {
                if let Some(m) = self.measurements.get_mut(parts.measurement) {
                    m.columns.remove(id);
                    let field = &*self.field_names[col.field as usize];
                    let now_empty = m.fields.get_mut(field).is_some_and(|f| {
                        f.columns.remove(id);
                        f.columns.is_empty()
                    });
                    if now_empty {
                        m.fields.remove(field);
                    }
                }
                for (k, v) in parts.tags {
                    if let Some(values) = self.postings.get_mut(k) {
                        let now_empty = values.get_mut(v).is_some_and(|b| {
                            b.remove(id);
                            b.is_empty()
                        });
                        if now_empty {
                            values.remove(v);
                        }
                    }
                }
            }
        }
        while self.series.len() as u32 > n_series {
            let id = self.series.len() as u32 - 1;
            let hash = self.hash_key(&self.series[id as usize].key);
            if let Ok(entry) = self.series_index.find_entry(hash, |&s| s == id) {
                entry.remove();
            }
            let Some(entry) = self.series.pop() else {
                break;
            };
            if let Some(parts) = decode_series_key(&entry.key)
                && let Some(m) = self.measurements.get_mut(parts.measurement)
            {
                m.series.remove(id);
                if m.series.is_empty() {
                    self.measurements.remove(parts.measurement);
                }
            }
        }
    }

    pub(crate) fn column(&self, id: u32) -> Option<&ColumnEntry> {
        self.columns.get(id as usize)
    }

    pub(crate) fn series_key(&self, series: u32) -> &[u8] {
        &self.series[series as usize].key
    }

    pub(crate) fn field_name(&self, id: u32) -> &str {
        &self.field_names[id as usize]
    }

    /// Columns of `measurement` matched by one tag matcher.
    pub(crate) fn match_tag(&self, measurement: &str, matcher: &TagMatcher) -> RoaringBitmap {
        let Some(m) = self.measurements.get(measurement) else {
            return RoaringBitmap::new();
        };
        let all = &m.columns;
        let values = self.postings.get(matcher.key());
        let with_value = |value: &str| -> RoaringBitmap {
            values
                .and_then(|v| v.get(value))
                .map(|b| b & all)
                .unwrap_or_default()
        };
        let with_any_value = || -> RoaringBitmap {
            let mut out = RoaringBitmap::new();
            if let Some(values) = values {
                for bitmap in values.values() {
                    out |= bitmap & all;
                }
            }
            out
        };
        let matching_regex = |regex: &Regex| -> RoaringBitmap {
            let mut out = RoaringBitmap::new();
            if let Some(values) = values {
                for (value, bitmap) in values {
                    if regex.is_match(value) {
                        out |= bitmap & all;
                    }
                }
            }
            if regex.is_match("") {
                out |= all - with_any_value();
            }
            out
        };
        match matcher {
            TagMatcher::Equal { value, .. } if value.is_empty() => all - with_any_value(),
            TagMatcher::Equal { value, .. } => with_value(value),
            TagMatcher::NotEqual { value, .. } if value.is_empty() => with_any_value(),
            TagMatcher::NotEqual { value, .. } => all - with_value(value),
            TagMatcher::Regex { regex, .. } => matching_regex(regex),
            TagMatcher::NotRegex { regex, .. } => all - matching_regex(regex),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(cat: &mut Catalog, m: &str, tags: &[(&str, &str)], field: &str) -> u32 {
        let mut key = Vec::new();
        encode_series_key(&mut key, m, tags);
        let hash = cat.hash_key(&key);
        let series = match cat.find_series(&key, hash) {
            Some(s) => s,
            None => cat.add_series(&key, hash),
        };
        cat.add_column(series, field, FieldType::Float).unwrap()
    }

    #[test]
    fn series_keys_round_trip_whatever_the_names_contain() {
        let mut key = Vec::new();
        let tags = [("a b", "x,y=z"), ("é", "\"\\")];
        encode_series_key(&mut key, "m,=", &tags);
        let parts = decode_series_key(&key).unwrap();
        assert_eq!(parts.measurement, "m,=");
        assert_eq!(parts.tags, tags.to_vec());
        validate_series_key(&key).unwrap();
    }

    #[test]
    fn matchers_treat_a_missing_tag_as_the_empty_string() {
        let mut cat = Catalog::default();
        let a = add(&mut cat, "gpu", &[("host", "a")], "util");
        let b = add(&mut cat, "gpu", &[("host", "b")], "util");
        let none = add(&mut cat, "gpu", &[], "util");
        let other = add(&mut cat, "cpu", &[("host", "a")], "util");
        let ids = |bm: RoaringBitmap| bm.iter().collect::<Vec<_>>();
        let eq = |v: &str| TagMatcher::Equal {
            key: "host".into(),
            value: v.into(),
        };
        let ne = |v: &str| TagMatcher::NotEqual {
            key: "host".into(),
            value: v.into(),
        };
        let re = |r: &str| TagMatcher::Regex {
            key: "host".into(),
            regex: Regex::new(r).unwrap(),
        };
        let nre = |r: &str| TagMatcher::NotRegex {
            key: "host".into(),
            regex: Regex::new(r).unwrap(),
        };
        assert_eq!(ids(cat.match_tag("gpu", &eq("a"))), vec![a]);
        assert_eq!(ids(cat.match_tag("gpu", &eq(""))), vec![none]);
        assert_eq!(ids(cat.match_tag("gpu", &ne("a"))), vec![b, none]);
        assert_eq!(ids(cat.match_tag("gpu", &ne(""))), vec![a, b]);
        assert_eq!(ids(cat.match_tag("gpu", &re("^(a|b)$"))), vec![a, b]);
        assert_eq!(ids(cat.match_tag("gpu", &re("^$"))), vec![none]);
        assert_eq!(ids(cat.match_tag("gpu", &nre("a"))), vec![b, none]);
        assert_eq!(ids(cat.match_tag("cpu", &eq("a"))), vec![other]);
        assert!(cat.match_tag("nope", &eq("a")).is_empty());
    }

    #[test]
    fn a_field_keeps_its_first_type_across_series() {
        let mut cat = Catalog::default();
        add(&mut cat, "gpu", &[("host", "a")], "util");
        let mut key = Vec::new();
        encode_series_key(&mut key, "gpu", &[("host", "b")]);
        let hash = cat.hash_key(&key);
        let s = cat.add_series(&key, hash);
        assert_eq!(
            cat.add_column(s, "util", FieldType::Integer),
            Err(CreateError::TypeConflict {
                existing: FieldType::Float
            })
        );
        assert_eq!(cat.field_type("gpu", "util"), Some(FieldType::Float));
        assert_eq!(cat.find_series(&key, hash), Some(s));
    }
}
