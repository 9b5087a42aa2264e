//! The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0: a parser that returns the
//! good samples plus one precise error per bad line, and the documented mapping of metric
//! families to Tally series (`docs/samplers.md`, "Scraping").
//!
//! ```text
//! # HELP http_requests_total Requests served.
//! # TYPE http_requests_total counter
//! http_requests_total{method="post",code="200"} 1027 1395066363000
//! ```
//!
//! Invariants: the parser never panics and borrows names and label values from the body where
//! no unescaping was needed; a bad line is reported with its line, column and reason and never
//! changes how another line parses; every sample points at a family (an undeclared name gets an
//! `untyped` family of its own).

mod convert;
mod error;
mod parser;

use std::borrow::Cow;
use std::ops::Range;

pub use convert::{ConvertOptions, ConvertReport, field_name_for_bound, to_points};
pub use error::{ExpositionError, ExpositionErrorKind};

/// Which of the two formats a body is in; the scraper decides from the `Content-Type` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Flavor {
    /// `text/plain; version=0.0.4`: timestamps are integer milliseconds; `# EOF` is optional.
    #[default]
    Text,
    /// `application/openmetrics-text`: timestamps are seconds with a fraction; the body must end
    /// with `# EOF`; counters are declared without their `_total` suffix.
    OpenMetrics,
}

impl Flavor {
    /// The flavor a `Content-Type` header value announces (text 0.0.4 unless it names
    /// OpenMetrics).
    pub fn from_content_type(content_type: &str) -> Flavor {
        if content_type
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("application/openmetrics-text")
        {
            Flavor::OpenMetrics
        } else {
            Flavor::Text
        }
    }
}

/// The type of a metric family, from its `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    /// No `# TYPE` line, `untyped` (text format) or `unknown` (OpenMetrics).
    Untyped,
    GaugeHistogram,
    StateSet,
    Info,
}

impl MetricType {
    /// Parses the type word of a `# TYPE` line.
    pub fn parse(word: &str) -> Option<MetricType> {
        Some(match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" | "unknown" => MetricType::Untyped,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "stateset" => MetricType::StateSet,
            "info" => MetricType::Info,
            _ => return None,
        })
    }

    /// The name used in `# TYPE` lines (`untyped` for both `untyped` and `unknown`).
    pub fn name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::StateSet => "stateset",
            MetricType::Info => "info",
        }
    }

    /// The suffixes a sample of this type may add to the family name.
    fn allows(self, suffix: Suffix) -> bool {
        match self {
            MetricType::Counter => matches!(suffix, Suffix::Total | Suffix::Created),
            MetricType::Histogram => matches!(
                suffix,
                Suffix::Bucket | Suffix::Sum | Suffix::Count | Suffix::Created
            ),
            MetricType::GaugeHistogram => {
                matches!(suffix, Suffix::Bucket | Suffix::GCount | Suffix::GSum)
            }
            MetricType::Summary => {
                matches!(suffix, Suffix::Sum | Suffix::Count | Suffix::Created)
            }
            MetricType::Info => matches!(suffix, Suffix::Info),
            MetricType::Gauge | MetricType::Untyped | MetricType::StateSet => false,
        }
    }
}

/// What a sample's name adds to its family's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suffix {
    /// The sample is named as its family (gauges, untyped, text-format counters, quantiles).
    None,
    Total,
    Bucket,
    Sum,
    Count,
    Created,
    GCount,
    GSum,
    Info,
}

impl Suffix {
    const ALL: [(Suffix, &'static str); 8] = [
        (Suffix::Total, "_total"),
        (Suffix::Bucket, "_bucket"),
        (Suffix::Sum, "_sum"),
        (Suffix::Count, "_count"),
        (Suffix::Created, "_created"),
        (Suffix::GCount, "_gcount"),
        (Suffix::GSum, "_gsum"),
        (Suffix::Info, "_info"),
    ];

    /// The text this suffix appends (`""` for [`Suffix::None`]).
    pub fn text(self) -> &'static str {
        Suffix::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("", |(_, t)| t)
    }
}

/// A metric family: the name its `# TYPE`/`# HELP` lines give (or the sample name of an
/// undeclared metric), its type, help text and OpenMetrics unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Family<'a> {
    pub name: Cow<'a, str>,
    pub kind: MetricType,
    pub help: Option<Cow<'a, str>>,
    pub unit: Option<Cow<'a, str>>,
    /// Whether a `# TYPE` line declared it.
    pub declared: bool,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// Index into [`Exposition::families`].
    pub family: u32,
    /// What the sample's name adds to the family name.
    pub suffix: Suffix,
    pub value: f64,
    /// The sample's own timestamp, in nanoseconds since the epoch, if it has one.
    pub timestamp_ns: Option<i64>,
    /// 1-based line of the body.
    pub line: u32,
    labels: Range<u32>,
    name: Cow<'a, str>,
}

impl<'a> Sample<'a> {
    /// The metric name as written (family name plus suffix).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A parsed body: families, samples in body order, and the rejected lines.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition<'a> {
    pub families: Vec<Family<'a>>,
    pub samples: Vec<Sample<'a>>,
    labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Rejected lines in body order, at most [`ParseOptions::max_errors`].
    pub errors: Vec<ExpositionError>,
    /// Rejected lines beyond [`ParseOptions::max_errors`].
    pub errors_omitted: u32,
    /// Whether a `# EOF` line ended the body.
    pub saw_eof: bool,
}

impl<'a> Exposition<'a> {
    /// The labels of a sample, in the order written.
    pub fn labels(&self, sample: &Sample<'a>) -> &[(Cow<'a, str>, Cow<'a, str>)] {
        self.labels
            .get(sample.labels.start as usize..sample.labels.end as usize)
            .unwrap_or(&[])
    }

    /// The value of one label of a sample.
    pub fn label(&self, sample: &Sample<'a>, name: &str) -> Option<&str> {
        self.labels(sample)
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// The family of a sample.
    pub fn family(&self, sample: &Sample<'a>) -> Option<&Family<'a>> {
        self.families.get(sample.family as usize)
    }

    /// Index of the family named `name`, if the body has one.
    pub fn family_index(&self, name: &str) -> Option<usize> {
        self.families.iter().position(|f| f.name == name)
    }

    /// The samples of the family named `name`.
    pub fn samples_of<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s Sample<'a>> + 's {
        let index = self.family_index(name).map(|i| i as u32);
        self.samples.iter().filter(move |s| Some(s.family) == index)
    }

    /// Rejected lines, kept or not.
    pub fn lines_rejected(&self) -> u32 {
        u32::try_from(self.errors.len())
            .unwrap_or(u32::MAX)
            .saturating_add(self.errors_omitted)
    }
}

/// The default for [`ParseOptions::max_errors`].
pub const DEFAULT_MAX_ERRORS: usize = 1_000;

/// How [`parse`] reads a body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseOptions {
    pub flavor: Flavor,
    /// Errors past this many are counted in [`Exposition::errors_omitted`] but not kept.
    pub max_errors: usize,
}

impl ParseOptions {
    pub fn new(flavor: Flavor) -> ParseOptions {
        ParseOptions {
            flavor,
            max_errors: DEFAULT_MAX_ERRORS,
        }
    }
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions::new(Flavor::Text)
    }
}

/// Parses a whole exposition. Never panics; good lines are kept when others fail.
pub fn parse<'a>(body: &'a [u8], options: &ParseOptions) -> Exposition<'a> {
    parser::parse(body, options)
}
