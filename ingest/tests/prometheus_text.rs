//! The exposition parser against the cases of the text format specification (0.0.4) and
//! OpenMetrics 1.0, recorded exporter output, and properties over generated input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;

use proptest::prelude::*;
use tally_engine::{FieldValue, PointBatch};
use tally_ingest::prometheus::{
    ConvertOptions, Exposition, ExpositionErrorKind, Flavor, MetricType, ParseOptions, Suffix,
    parse, to_points,
};

fn text(body: &str) -> Exposition<'_> {
    parse(body.as_bytes(), &ParseOptions::new(Flavor::Text))
}

fn openmetrics(body: &str) -> Exposition<'_> {
    parse(body.as_bytes(), &ParseOptions::new(Flavor::OpenMetrics))
}

fn labels<'a>(exp: &'a Exposition<'_>, i: usize) -> Vec<(&'a str, &'a str)> {
    exp.labels(&exp.samples[i])
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/prometheus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn the_specification_example_parses_with_help_type_labels_and_timestamps() {
    let body = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045
"#;
    let exp = text(body);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    assert_eq!(exp.samples.len(), 5);
    let counter = &exp.families[exp.samples[0].family as usize];
    assert_eq!(counter.name, "http_requests_total");
    assert_eq!(counter.kind, MetricType::Counter);
    assert_eq!(
        counter.help.as_deref(),
        Some("The total number of HTTP requests.")
    );
    assert_eq!(labels(&exp, 0), [("method", "post"), ("code", "200")]);
    assert_eq!(exp.samples[0].value, 1027.0);
    assert_eq!(exp.samples[0].timestamp_ns, Some(1_395_066_363_000_000_000));
    assert_eq!(exp.samples[1].value, 3.0);
    assert_eq!(
        labels(&exp, 2),
        [
            ("path", "C:\\DIR\\FILE.TXT"),
            ("error", "Cannot find file:\n\"FILE.TXT\"")
        ]
    );
    assert_eq!(exp.samples[2].value, 1.458255915e9);
    assert_eq!(exp.samples[3].timestamp_ns, None);
    assert_eq!(exp.samples[4].value, f64::INFINITY);
    assert_eq!(exp.samples[4].timestamp_ns, Some(-3_982_045_000_000));
    assert_eq!(
        exp.families[exp.samples[3].family as usize].kind,
        MetricType::Untyped
    );
}

#[test]
fn nan_and_infinities_parse_in_every_spelling_go_accepts() {
    let exp = text("a NaN\nb +Inf\nc -Inf\nd nan\ne Inf\nf -inf\ng 1e3\nh -0.5\n");
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    let values: Vec<f64> = exp.samples.iter().map(|s| s.value).collect();
    assert!(values[0].is_nan() && values[3].is_nan());
    assert_eq!(values[1], f64::INFINITY);
    assert_eq!(values[2], f64::NEG_INFINITY);
    assert_eq!(values[4], f64::INFINITY);
    assert_eq!(values[5], f64::NEG_INFINITY);
    assert_eq!(values[6], 1000.0);
    assert_eq!(values[7], -0.5);
}

#[test]
fn histograms_keep_every_bucket_including_plus_inf_with_sum_and_count() {
    let body = r#"# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
"#;
    let exp = text(body);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    assert_eq!(exp.families.len(), 1);
    assert_eq!(exp.families[0].kind, MetricType::Histogram);
    let suffixes: Vec<Suffix> = exp.samples.iter().map(|s| s.suffix).collect();
    assert_eq!(suffixes[..6], [Suffix::Bucket; 6]);
    assert_eq!(suffixes[6..], [Suffix::Sum, Suffix::Count]);
    assert_eq!(exp.label(&exp.samples[5], "le"), Some("+Inf"));

    let tags = [("host".to_string(), "node-1".to_string())];
    let mut batch = PointBatch::new();
    let report = to_points(
        &exp,
        &ConvertOptions {
            default_timestamp_ns: 42,
            tags: &tags,
        },
        &mut batch,
    );
    assert_eq!(report.points, 1, "one point per label set");
    let point = batch.point(0).unwrap();
    assert_eq!(point.measurement(), "http_request_duration_seconds");
    let fields: Vec<(&str, f64)> = point
        .fields()
        .iter()
        .map(|(k, v)| match v {
            FieldValue::Float(f) => (k.as_ref(), *f),
            other => panic!("not a float: {other:?}"),
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("0.05", 24054.0),
            ("0.1", 33444.0),
            ("0.2", 100392.0),
            ("0.5", 129389.0),
            ("1", 133988.0),
            ("+Inf", 144320.0),
            ("sum", 53423.0),
            ("count", 144320.0)
        ]
    );
    assert_eq!(point.timestamp(), 42);
    assert_eq!(point.tags().len(), 1);
}

#[test]
fn summaries_become_quantile_fields_and_labels_become_tags() {
    let body = r#"# TYPE rpc_duration_seconds summary
rpc_duration_seconds{service="a",quantile="0.01"} 3102
rpc_duration_seconds{service="a",quantile="0.5"} 4773
rpc_duration_seconds{service="a",quantile="0.99"} 76656
rpc_duration_seconds_sum{service="a"} 1.7560473e+07
rpc_duration_seconds_count{service="a"} 2693
rpc_duration_seconds{service="b",quantile="0.5"} 10
rpc_duration_seconds_count{service="b"} 1
"#;
    let exp = text(body);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    let mut batch = PointBatch::new();
    let report = to_points(
        &exp,
        &ConvertOptions {
            default_timestamp_ns: 0,
            tags: &[],
        },
        &mut batch,
    );
    assert_eq!(report.points, 2);
    let a = batch.point(0).unwrap();
    assert_eq!(a.tags()[0], (Cow::Borrowed("service"), Cow::Borrowed("a")));
    let names: Vec<&str> = a.fields().iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(names, ["0.01", "0.5", "0.99", "sum", "count"]);
    assert_eq!(batch.point(1).unwrap().fields().len(), 2);
}

#[test]
fn samples_of_one_label_set_join_one_point_in_any_order_and_label_order() {
    let body = "# TYPE s summary\ns{a=\"1\",quantile=\"0.5\"} 1\ns{a=\"2\",quantile=\"0.5\"} 2\ns{quantile=\"0.9\",a=\"1\"} 3\ns_count{a=\"1\",empty=\"\"} 4\n";
    let exp = text(body);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    let mut batch = PointBatch::new();
    let report = to_points(
        &exp,
        &ConvertOptions {
            default_timestamp_ns: 0,
            tags: &[],
        },
        &mut batch,
    );
    assert_eq!(report.points, 2);
    let first = batch.point(0).unwrap();
    let names: Vec<&str> = first.fields().iter().map(|(k, _)| k.as_ref()).collect();
    assert_eq!(names, ["0.5", "0.9", "count"]);
    assert_eq!(batch.point(1).unwrap().fields().len(), 1);
}

#[test]
fn types_map_to_their_documented_field_names() {
    let body = "# TYPE c_total counter\nc_total 1\n# TYPE g gauge\ng 2\nu 3\n# TYPE i info\ni_info{version=\"1\"} 1\n";
    let exp = text(body);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    let mut batch = PointBatch::new();
    to_points(
        &exp,
        &ConvertOptions {
            default_timestamp_ns: 0,
            tags: &[],
        },
        &mut batch,
    );
    let got: Vec<(String, String)> = batch
        .points()
        .map(|p| (p.measurement().to_string(), p.fields()[0].0.to_string()))
        .collect();
    assert_eq!(
        got,
        [
            ("c_total".to_string(), "counter".to_string()),
            ("g".to_string(), "gauge".to_string()),
            ("u".to_string(), "value".to_string()),
            ("i".to_string(), "info".to_string()),
        ]
    );
}

#[test]
fn labels_that_clash_with_added_tags_are_kept_as_exported_and_empty_ones_dropped() {
    let exp = text("m{host=\"exporter\",time=\"x\",empty=\"\",ok=\"1\"} 5\n");
    let tags = [("host".to_string(), "tally-host".to_string())];
    let mut batch = PointBatch::new();
    to_points(
        &exp,
        &ConvertOptions {
            default_timestamp_ns: 0,
            tags: &tags,
        },
        &mut batch,
    );
    let point = batch.point(0).unwrap();
    let tags: Vec<(&str, &str)> = point
        .tags()
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    assert_eq!(
        tags,
        [
            ("exported_host", "exporter"),
            ("exported_time", "x"),
            ("host", "tally-host"),
            ("ok", "1")
        ]
    );
}

#[test]
fn openmetrics_counters_units_created_and_eof() {
    let body = r#"# TYPE acme_http_router_request_seconds summary
# UNIT acme_http_router_request_seconds seconds
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
# TYPE go_goroutines gauge
go_goroutines 69
# TYPE process_cpu_seconds counter
# UNIT process_cpu_seconds seconds
process_cpu_seconds_total 4.20072246e+06 1605281325.5 # {trace_id="KOO5S4vxi0o"} 0.67
process_cpu_seconds_created 1605281325.0
# EOF
"#;
    let exp = openmetrics(body);
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    assert!(exp.saw_eof);
    let summary = &exp.families[0];
    assert_eq!(summary.unit.as_deref(), Some("seconds"));
    assert_eq!(exp.samples[2].suffix, Suffix::Created);
    let cpu = exp
        .samples
        .iter()
        .find(|s| s.name() == "process_cpu_seconds_total")
        .unwrap();
    assert_eq!(cpu.suffix, Suffix::Total);
    assert_eq!(
        cpu.timestamp_ns,
        Some(1_605_281_325_500_000_000),
        "seconds, with the exemplar ignored"
    );
    let mut batch = PointBatch::new();
    to_points(
        &exp,
        &ConvertOptions {
            default_timestamp_ns: 0,
            tags: &[],
        },
        &mut batch,
    );
    let counter_points: Vec<_> = batch
        .points()
        .filter(|p| p.measurement() == "process_cpu_seconds_total")
        .collect();
    assert_eq!(
        counter_points.len(),
        2,
        "the sample and _created carry different times"
    );
    assert!(
        counter_points
            .iter()
            .any(|p| p.fields().iter().any(|(k, _)| k == "counter"))
    );
    assert!(
        counter_points
            .iter()
            .any(|p| p.fields().iter().any(|(k, _)| k == "created"))
    );
}

#[test]
fn openmetrics_requires_eof_and_nothing_after_it() {
    let missing = openmetrics("a 1\n");
    assert!(matches!(
        missing.errors.last().map(|e| &e.kind),
        Some(ExpositionErrorKind::MissingEof)
    ));
    assert_eq!(missing.samples.len(), 1, "the good sample is kept");
    let after = openmetrics("a 1\n# EOF\nb 2\n");
    assert_eq!(after.samples.len(), 1);
    assert_eq!(after.errors.len(), 1);
    assert_eq!(after.errors[0].line, 3);
    assert!(matches!(
        after.errors[0].kind,
        ExpositionErrorKind::TextAfterEof
    ));
    let text_format = text("a 1\n# EOF\n");
    assert!(text_format.errors.is_empty());
    assert!(text_format.saw_eof);
}

#[test]
fn prometheus_3_quoted_names_parse() {
    let exp = text("{\"my.dotted.metric\", \"label.name\"=\"v\", plain=\"w\"} 7\n");
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    assert_eq!(exp.samples[0].name(), "my.dotted.metric");
    assert_eq!(labels(&exp, 0), [("label.name", "v"), ("plain", "w")]);
}

#[test]
fn whitespace_trailing_commas_and_crlf_are_tolerated() {
    let exp = text("  m { a = \"1\" , b=\"2\", }\t5\t\r\n\n");
    assert!(exp.errors.is_empty(), "{:?}", exp.errors);
    assert_eq!(labels(&exp, 0), [("a", "1"), ("b", "2")]);
    assert_eq!(exp.samples[0].value, 5.0);
}

/// Each malformed line gives one error with its line, column and reason, and the good lines
/// around it are kept.
#[test]
fn malformed_lines_are_reported_precisely_and_the_rest_is_kept() {
    type Check = fn(&ExpositionErrorKind) -> bool;
    let cases: &[(&str, u32, Check)] = &[
        ("9metric 1", 1, |k| {
            matches!(k, ExpositionErrorKind::InvalidMetricName { .. })
        }),
        ("m{9a=\"1\"} 1", 3, |k| {
            matches!(k, ExpositionErrorKind::InvalidLabelName { .. })
        }),
        ("m{a=\"1} 1", 6, |k| {
            matches!(k, ExpositionErrorKind::UnterminatedLabelValue { .. })
        }),
        ("m{a=\"\\x\"} 1", 6, |k| {
            matches!(k, ExpositionErrorKind::InvalidEscape { .. })
        }),
        ("m{a=\"1\",a=\"2\"} 1", 9, |k| {
            matches!(k, ExpositionErrorKind::DuplicateLabel { .. })
        }),
        ("m{a=1} 1", 5, |k| {
            matches!(k, ExpositionErrorKind::UnexpectedInLabels { .. })
        }),
        ("m{a=\"1\" b=\"2\"} 1", 9, |k| {
            matches!(k, ExpositionErrorKind::UnexpectedInLabels { .. })
        }),
        ("m{a=\"1\"", 8, |k| {
            matches!(k, ExpositionErrorKind::UnterminatedLabels)
        }),
        ("m", 2, |k| {
            matches!(k, ExpositionErrorKind::MissingValue { .. })
        }),
        ("m abc", 3, |k| {
            matches!(k, ExpositionErrorKind::InvalidValue { .. })
        }),
        ("m 1 12.5", 5, |k| {
            matches!(k, ExpositionErrorKind::InvalidTimestamp { .. })
        }),
        ("m 1 99999999999999999", 5, |k| {
            matches!(k, ExpositionErrorKind::InvalidTimestamp { .. })
        }),
        ("m 1 2 3", 7, |k| {
            matches!(k, ExpositionErrorKind::TrailingCharacters { .. })
        }),
        ("# TYPE m", 9, |k| {
            matches!(k, ExpositionErrorKind::MalformedDirective { .. })
        }),
        ("# TYPE m countr", 10, |k| {
            matches!(k, ExpositionErrorKind::UnknownType { .. })
        }),
        ("# HELP", 7, |k| {
            matches!(k, ExpositionErrorKind::MalformedDirective { .. })
        }),
    ];
    for (line, column, check) in cases {
        let body = format!("good_before 1\n{line}\ngood_after 2\n");
        let exp = text(&body);
        assert_eq!(exp.errors.len(), 1, "{line:?}: {:?}", exp.errors);
        let error = &exp.errors[0];
        assert_eq!(error.line, 2, "{line:?}");
        assert_eq!(error.column, *column, "{line:?}: {error}");
        assert!(check(&error.kind), "{line:?}: {error}");
        let names: Vec<&str> = exp.samples.iter().map(|s| s.name()).collect();
        assert!(
            names.contains(&"good_before") && names.contains(&"good_after"),
            "{line:?}"
        );
    }
}

#[test]
fn invalid_utf8_in_a_label_value_is_an_error_not_a_panic() {
    let exp = parse(
        b"m{a=\"\xff\xfe\"} 1\nn 2\n",
        &ParseOptions::new(Flavor::Text),
    );
    assert_eq!(exp.errors.len(), 1);
    assert!(matches!(
        exp.errors[0].kind,
        ExpositionErrorKind::InvalidUtf8 { .. }
    ));
    assert_eq!(exp.samples.len(), 1);
}

#[test]
fn type_lines_must_come_once_and_before_the_samples() {
    let late = text("m 1\n# TYPE m gauge\n");
    assert!(matches!(
        late.errors[0].kind,
        ExpositionErrorKind::TypeAfterSamples { .. }
    ));
    let twice = text("# TYPE m gauge\n# TYPE m counter\nm 1\n");
    assert!(matches!(
        twice.errors[0].kind,
        ExpositionErrorKind::DuplicateType { .. }
    ));
    assert_eq!(
        twice.families[0].kind,
        MetricType::Gauge,
        "the first TYPE stands"
    );
}

#[test]
fn histogram_samples_need_a_numeric_le_and_summary_samples_a_quantile() {
    let exp = text(
        "# TYPE h histogram\nh_bucket{le=\"x\"} 1\nh_bucket 2\nh 3\nh_count 4\n# TYPE s summary\ns 5\ns{quantile=\"0.5\"} 6\n",
    );
    let kinds: Vec<(u32, &ExpositionErrorKind)> =
        exp.errors.iter().map(|e| (e.line, &e.kind)).collect();
    assert!(matches!(
        kinds[0],
        (2, ExpositionErrorKind::InvalidBound { .. })
    ));
    assert!(matches!(
        kinds[1],
        (3, ExpositionErrorKind::MissingBound { .. })
    ));
    assert!(matches!(
        kinds[2],
        (4, ExpositionErrorKind::UnexpectedSampleName { .. })
    ));
    assert!(matches!(
        kinds[3],
        (7, ExpositionErrorKind::MissingBound { .. })
    ));
    assert_eq!(exp.samples.len(), 2);
}

#[test]
fn help_text_keeps_escapes_decoded() {
    let exp = text("# HELP m line one\\nline two \\\\ done\nm 1\n");
    assert_eq!(
        exp.families[0].help.as_deref(),
        Some("line one\nline two \\ done")
    );
}

#[test]
fn errors_beyond_the_limit_are_counted_not_kept() {
    let body = "bad value\n".repeat(50);
    let mut options = ParseOptions::new(Flavor::Text);
    options.max_errors = 10;
    let exp = parse(body.as_bytes(), &options);
    assert_eq!(exp.errors.len(), 10);
    assert_eq!(exp.errors_omitted, 40);
    assert_eq!(exp.lines_rejected(), 50);
}

#[test]
fn recorded_exporter_output_parses_without_errors() {
    for name in [
        "vllm-1.txt",
        "vllm-2.txt",
        "tgi-1.txt",
        "tgi-2.txt",
        "llamacpp-1.txt",
        "llamacpp-2.txt",
        "dcgm.txt",
    ] {
        let body = fixture(name);
        let exp = parse(&body, &ParseOptions::new(Flavor::Text));
        assert!(exp.errors.is_empty(), "{name}: {:?}", exp.errors);
        assert!(exp.samples.len() >= 12, "{name}: {}", exp.samples.len());
        let mut batch = PointBatch::new();
        let report = to_points(
            &exp,
            &ConvertOptions {
                default_timestamp_ns: 1,
                tags: &[],
            },
            &mut batch,
        );
        assert!(report.rejected.is_empty(), "{name}: {:?}", report.rejected);
        assert_eq!(report.duplicates, 0, "{name}");
    }
    let body = fixture("vllm-1.txt");
    let exp = parse(&body, &ParseOptions::new(Flavor::Text));
    let ttft = exp
        .family_index("vllm:time_to_first_token_seconds")
        .unwrap();
    assert_eq!(exp.families[ttft].kind, MetricType::Histogram);
    assert_eq!(
        exp.samples_of("vllm:time_to_first_token_seconds")
            .filter(|s| s.suffix == Suffix::Bucket)
            .count(),
        17,
        "16 bounds and +Inf"
    );
}

/// A generated sample: name, labels, value, timestamp in milliseconds.
type GeneratedSample = (String, Vec<(String, String)>, f64, Option<i64>);

/// Renders samples as the text format, with every label value escaped.
fn render(samples: &[GeneratedSample]) -> String {
    let mut out = String::new();
    for (name, labels, value, ts) in samples {
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let escaped = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                out.push_str(&format!("{k}=\"{escaped}\""));
            }
            out.push('}');
        }
        out.push_str(&format!(" {value:?}"));
        if let Some(ts) = ts {
            out.push_str(&format!(" {ts}"));
        }
        out.push('\n');
    }
    out
}

fn sample_strategy() -> impl Strategy<Value = GeneratedSample> {
    (
        "[a-zA-Z_:][a-zA-Z0-9_:]{0,12}",
        prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "\\PC{0,12}", 0..4),
        prop_oneof![
            any::<f64>().prop_filter("finite", |v| v.is_finite()),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY)
        ],
        prop::option::of(-9_000_000_000_000i64..9_000_000_000_000i64),
    )
        .prop_map(|(name, labels, value, ts)| (name, labels.into_iter().collect(), value, ts))
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_every_line_is_a_sample_or_an_error(body in prop::collection::vec(any::<u8>(), 0..400)) {
        for flavor in [Flavor::Text, Flavor::OpenMetrics] {
            let exp = parse(&body, &ParseOptions::new(flavor));
            for s in &exp.samples {
                prop_assert!((s.family as usize) < exp.families.len());
            }
            let lines = body.split(|&b| b == b'\n').count() as u32 + 1;
            prop_assert!(exp.samples.len() as u32 + exp.lines_rejected() <= lines);
        }
    }

    #[test]
    fn arbitrary_text_lines_never_panic(body in "(\\PC|\n|\\{|\\}|\"|\\\\|=|,| |#){0,200}") {
        let exp = parse(body.as_bytes(), &ParseOptions::default());
        let mut batch = PointBatch::new();
        let _ = to_points(&exp, &ConvertOptions { default_timestamp_ns: 0, tags: &[] }, &mut batch);
    }

    #[test]
    fn rendered_samples_parse_back_to_the_same_names_labels_values_and_times(samples in prop::collection::vec(sample_strategy(), 1..20)) {
        let body = render(&samples);
        let exp = parse(body.as_bytes(), &ParseOptions::default());
        prop_assert!(exp.errors.is_empty(), "{:?}\n{}", exp.errors, body);
        prop_assert_eq!(exp.samples.len(), samples.len());
        for (i, (name, labels, value, ts)) in samples.iter().enumerate() {
            let got = &exp.samples[i];
            prop_assert_eq!(got.name(), name.as_str());
            let got_labels: Vec<(String, String)> = exp.labels(got).iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            prop_assert_eq!(&got_labels, labels);
            prop_assert_eq!(got.value.to_bits(), value.to_bits());
            prop_assert_eq!(got.timestamp_ns, ts.map(|t| t * 1_000_000));
        }
    }
}
