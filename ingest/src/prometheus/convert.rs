//! The mapping of metric families to Tally points (documented in `docs/samplers.md`):
//!
//! - the measurement is the family name (for an OpenMetrics counter `x`, `x_total`, the name
//!   its samples carry and the name text format 0.0.4 gives it, so both formats agree);
//! - labels become tags, except `le` and `quantile`, which name fields;
//! - one point per family, label set and timestamp, with float fields: `counter`, `gauge`,
//!   `value` (untyped, unknown, stateset), `info`; histograms `count`, `sum` and one field per
//!   bucket named by its bound (`0.005`, `+Inf`); summaries `count`, `sum` and one field per
//!   quantile (`0.5`, `0.99`); `created` for `_created` samples; `gcount`/`gsum` for gauge
//!   histograms.

use std::borrow::Cow;
use std::collections::HashMap;

use tally_engine::{FieldValue, PointBatch};

use super::{Exposition, MetricType, Sample, Suffix};

/// How [`to_points`] stamps and tags the points.
#[derive(Clone, Debug)]
pub struct ConvertOptions<'t> {
    /// The time of samples without a timestamp (normally the scrape time), in nanoseconds.
    pub default_timestamp_ns: i64,
    /// Tags added to every point, such as `host` and `url`. An exposition label of the same name
    /// is kept as `exported_<name>`, as Prometheus does without `honor_labels`.
    pub tags: &'t [(String, String)],
}

/// What [`to_points`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConvertReport {
    /// Points added to the batch.
    pub points: u32,
    /// Samples whose field was already set in their point (the later value was kept).
    pub duplicates: u32,
    /// Points the batch refused, with the reason (a name longer than the engine allows, say).
    pub rejected: Vec<String>,
}

/// The field name of a bucket bound (`le`) or quantile: the number in Rust's shortest form, so
/// `1`, `1.0` and `1e0` all name field `1`; infinities are `+Inf` and `-Inf`.
pub fn field_name_for_bound(text: &str) -> String {
    match text.trim().parse::<f64>() {
        Ok(v) if v == f64::INFINITY => "+Inf".to_string(),
        Ok(v) if v == f64::NEG_INFINITY => "-Inf".to_string(),
        Ok(v) if v.is_nan() => "NaN".to_string(),
        Ok(v) => format!("{v}"),
        Err(_) => text.to_string(),
    }
}

struct Group<'a> {
    family: u32,
    measurement: Cow<'a, str>,
    tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    fields: Vec<(Cow<'a, str>, f64)>,
    timestamp: i64,
}

/// The label that names a field instead of a tag, for samples of this type and suffix.
fn bound_label(kind: MetricType, suffix: Suffix) -> Option<&'static str> {
    match (kind, suffix) {
        (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) => Some("le"),
        (MetricType::Summary, Suffix::None) => Some("quantile"),
        _ => None,
    }
}

fn field_name<'a>(kind: MetricType, suffix: Suffix, bound: Option<&str>) -> Cow<'a, str> {
    if let Some(bound) = bound {
        return Cow::Owned(field_name_for_bound(bound));
    }
    Cow::Borrowed(match (kind, suffix) {
        (_, Suffix::Created) => "created",
        (_, Suffix::Sum) => "sum",
        (_, Suffix::Count) => "count",
        (_, Suffix::GCount) => "gcount",
        (_, Suffix::GSum) => "gsum",
        (_, Suffix::Info) | (MetricType::Info, _) => "info",
        (MetricType::Counter, _) | (_, Suffix::Total) => "counter",
        (MetricType::Gauge, _) => "gauge",
        _ => "value",
    })
}

/// Adds one point per family, label set and timestamp of `exposition` to `batch`.
pub fn to_points<'a>(
    exposition: &Exposition<'a>,
    options: &ConvertOptions<'_>,
    batch: &mut PointBatch<'a>,
) -> ConvertReport {
    let mut report = ConvertReport::default();
    let mut groups: Vec<Group<'a>> = Vec::new();
    // Groups by a hash of family, timestamp and labels; candidates are compared in full.
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut last: Option<(u32, usize)> = None;
    for sample in &exposition.samples {
        let Some(family) = exposition.family(sample) else {
            continue;
        };
        let bound_name = bound_label(family.kind, sample.suffix);
        let labels = exposition.labels(sample);
        let bound = bound_name.and_then(|b| labels.iter().find(|(k, _)| k == b).map(|(_, v)| v));
        let timestamp = sample.timestamp_ns.unwrap_or(options.default_timestamp_ns);
        let field = field_name(family.kind, sample.suffix, bound.map(|b| b.as_ref()));
        let group = match last {
            Some((line_family, group))
                if line_family == sample.family
                    && same_group(&groups[group], labels, bound_name, timestamp, options) =>
            {
                group
            }
            _ => {
                let hash = group_hash(sample.family, labels, bound_name, timestamp);
                let candidates = index.entry(hash).or_default();
                let found = candidates.iter().copied().find(|&g| {
                    groups[g].family == sample.family
                        && same_group(&groups[g], labels, bound_name, timestamp, options)
                });
                match found {
                    Some(g) => g,
                    None => {
                        let g = groups.len();
                        groups.push(new_group(
                            exposition, sample, labels, bound_name, timestamp, options,
                        ));
                        candidates.push(g);
                        g
                    }
                }
            }
        };
        last = Some((sample.family, group));
        let fields = &mut groups[group].fields;
        if let Some(existing) = fields.iter_mut().find(|(k, _)| *k == field) {
            existing.1 = sample.value;
            report.duplicates += 1;
        } else {
            fields.push((field, sample.value));
        }
    }
    for group in groups {
        let result = batch.push(
            group.measurement,
            group.tags,
            group
                .fields
                .into_iter()
                .map(|(k, v)| (k, FieldValue::Float(v))),
            group.timestamp,
        );
        match result {
            Ok(()) => report.points += 1,
            Err(e) => report.rejected.push(e.to_string()),
        }
    }
    report
}

/// The tag key a label is stored under: renamed when it would clash with an added tag or with
/// `time`; `None` for labels that are dropped (`__name__`, empty values) or name fields.
fn tag_key<'a>(
    key: &Cow<'a, str>,
    value: &str,
    bound: Option<&str>,
    options: &ConvertOptions<'_>,
) -> Option<Cow<'a, str>> {
    if value.is_empty() || key == "__name__" || Some(key.as_ref()) == bound {
        return None;
    }
    if key == "time" || options.tags.iter().any(|(k, _)| k == key) {
        return Some(Cow::Owned(format!("exported_{key}")));
    }
    Some(key.clone())
}

fn same_group(
    group: &Group<'_>,
    labels: &[(Cow<'_, str>, Cow<'_, str>)],
    bound: Option<&str>,
    timestamp: i64,
    options: &ConvertOptions<'_>,
) -> bool {
    if group.timestamp != timestamp {
        return false;
    }
    let mut n = 0;
    for (k, v) in labels {
        let Some(key) = tag_key(k, v, bound, options) else {
            continue;
        };
        n += 1;
        if !group.tags.iter().any(|(gk, gv)| *gk == key && gv == v) {
            return false;
        }
    }
    n + options.tags.iter().filter(|(_, v)| !v.is_empty()).count() == group.tags.len()
}

/// A hash of a sample's group: family, timestamp, and its labels but the bound, in any order.
fn group_hash(
    family: u32,
    labels: &[(Cow<'_, str>, Cow<'_, str>)],
    bound: Option<&str>,
    timestamp: i64,
) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let state =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
    let mut labels_sum: u64 = 0;
    for (k, v) in labels {
        // Labels that become no tag (the bound, empty values, `__name__`) do not tell groups apart.
        if Some(k.as_ref()) == bound || v.is_empty() || k == "__name__" {
            continue;
        }
        labels_sum = labels_sum.wrapping_add(state.hash_one((k.as_ref(), v.as_ref())));
    }
    let mut hasher = state.build_hasher();
    family.hash(&mut hasher);
    timestamp.hash(&mut hasher);
    labels_sum.hash(&mut hasher);
    hasher.finish()
}

fn new_group<'a>(
    exposition: &Exposition<'a>,
    sample: &Sample<'a>,
    labels: &[(Cow<'a, str>, Cow<'a, str>)],
    bound: Option<&str>,
    timestamp: i64,
    options: &ConvertOptions<'_>,
) -> Group<'a> {
    let measurement = match exposition.family(sample) {
        Some(family)
            if family.kind == MetricType::Counter
                && !family.name.ends_with("_total")
                && matches!(sample.suffix, Suffix::Total | Suffix::Created) =>
        {
            Cow::Owned(format!("{}_total", family.name))
        }
        Some(family) => family.name.clone(),
        None => Cow::Owned(sample.name().to_string()),
    };
    let mut tags: Vec<(Cow<'a, str>, Cow<'a, str>)> =
        Vec::with_capacity(labels.len() + options.tags.len());
    for (k, v) in labels {
        if let Some(key) = tag_key(k, v, bound, options) {
            tags.push((key, v.clone()));
        }
    }
    for (k, v) in options.tags {
        if !v.is_empty() {
            tags.push((Cow::Owned(k.clone()), Cow::Owned(v.clone())));
        }
    }
    Group {
        family: sample.family,
        measurement,
        tags,
        fields: Vec::new(),
        timestamp,
    }
}
