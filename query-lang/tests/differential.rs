//! Differential tests of the query executor: random datasets written through the engine (with
//! random flushes, so points live in segments, frozen heads and the head at once, in
//! overlapping chunks), random queries, and a brute-force reference evaluator
//! (`differential/reference.rs`) written from `docs/query-language.md` over the raw writes.
//! Every result is compared series by series: names, tags, columns and row times exactly,
//! values exactly except floats summed in an order the documentation leaves open, which must
//! agree within `RELATIVE_TOLERANCE` (1e-9) of the larger of the result and the magnitude of
//! its terms, plus `ABSOLUTE_TOLERANCE` (1e-12).
//!
//! Run longer with `PROPTEST_CASES=1000 cargo test -p tally-query --test differential`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test fails loudly by design; its helper modules are private to this crate"
)]

mod support;

#[path = "differential/query.rs"]
mod query;
#[path = "differential/reference.rs"]
mod reference;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tally_engine::{FieldValue, PointBatch};
use tally_query::{QueryLimits, ResultSeries, Value};

use query::{
    AggExpr, ArithOp, Batch, Call, CmpOp, Cond, Dataset, FIELDS, FieldKind, Fill, Flush, Func,
    GroupTags, GroupTime, KEY_PATTERNS, Literal, MEASUREMENTS, MeasurementSpec, MultiFunc, Offset,
    PATTERNS, PointSpec, Query, RawColumn, STRING_VALUES, Select, Source, TAG_KEYS, TAG_VALUES,
    TagOp, TimeBound, TimeSpelling, Val,
};
use reference::{Cell, ExpectedSeries, Outcome, Store, evaluate};
use support::{TestEngine, format_time, format_value, render_results, test_options};

const SECOND: i64 = 1_000_000_000;
const MILLISECOND: i64 = 1_000_000;

/// Engine settings that make small datasets span many chunks and blocks.
#[derive(Clone, Debug)]
struct EngineSpec {
    chunk_span_seconds: u64,
    /// A block is this many chunk spans (so that it is a multiple of the span).
    blocks_of_chunks: u64,
    max_chunk_points: usize,
}

/// Chunk spans of 1 to 10 s; blocks of 1 to 4 spans (shorter than the finest rollup tier, 1 m),
/// or of 1 m or 1 h (as long as a tier bucket, or holding many).
fn engine_strategy() -> impl Strategy<Value = EngineSpec> {
    (
        select(vec![1u64, 2, 5, 10]),
        prop_oneof![4 => 1u64..=4, 1 => Just(60), 1 => Just(3600)],
        4usize..=16,
    )
        .prop_map(
            |(chunk_span_seconds, blocks, max_chunk_points)| EngineSpec {
                chunk_span_seconds,
                // 60 s and 3600 s are multiples of every span on offer.
                blocks_of_chunks: if blocks > 4 {
                    blocks / chunk_span_seconds
                } else {
                    blocks
                },
                max_chunk_points,
            },
        )
}

fn value_strategy(kind: FieldKind) -> BoxedStrategy<Val> {
    match kind {
        // Small integers repeat often (mode, distinct, ties); larger ones less so; huge ones
        // overflow sums and spreads.
        FieldKind::Integer => prop_oneof![
            30 => -4i64..=4,
            10 => -1000i64..=1000,
            1 => select(vec![i64::MAX - 3, i64::MIN + 5, 1 << 62, -(1 << 62)]),
        ]
        .prop_map(Val::Int)
        .boxed(),
        FieldKind::Unsigned => prop_oneof![
            30 => 0u64..=8,
            10 => 0u64..=5000,
            1 => select(vec![u64::MAX - 7, 1 << 63]),
        ]
        .prop_map(Val::Uint)
        .boxed(),
        // Quarters add exactly in any order; thousandths do not, which the tolerance covers.
        FieldKind::Float => prop_oneof![
            3 => (-40i32..=40).prop_map(|k| f64::from(k) / 4.0),
            1 => (-100_000i32..=100_000).prop_map(|k| f64::from(k) / 1000.0),
        ]
        .prop_map(Val::Float)
        .boxed(),
        FieldKind::Boolean => any::<bool>().prop_map(Val::Bool).boxed(),
        FieldKind::String => select(STRING_VALUES.to_vec()).prop_map(Val::Str).boxed(),
    }
}

/// Times on a quarter-second grid (so points sit on bucket boundaries and repeat), a narrow
/// grid (many overwrites), or anywhere in ±50 s.
fn time_strategy() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => (-200i64..=200).prop_map(|k| k * 250 * MILLISECOND),
        1 => (-12i64..=12).prop_map(|k| k * 250 * MILLISECOND),
        1 => -50 * SECOND..=50 * SECOND,
    ]
}

fn point_strategy() -> impl Strategy<Value = PointSpec> {
    (0..MEASUREMENTS.len(), 0usize..6, time_strategy(), 1u8..32).prop_flat_map(
        |(measurement, series, time, mask)| {
            let values: Vec<BoxedStrategy<(usize, Val)>> = (0..FIELDS.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| {
                    value_strategy(FIELDS[i].1)
                        .prop_map(move |v| (i, v))
                        .boxed()
                })
                .collect();
            values.prop_map(move |values| PointSpec {
                measurement,
                series,
                time,
                values,
            })
        },
    )
}

fn measurement_strategy() -> impl Strategy<Value = MeasurementSpec> {
    (
        subsequence(TAG_KEYS.to_vec(), 1..=TAG_KEYS.len()),
        1usize..=TAG_VALUES.len(),
    )
        .prop_flat_map(|(keys, n_values)| {
            let one_tag = prop_oneof![1 => Just(None), 6 => (0..n_values).prop_map(Some)];
            let series = prop::collection::vec(prop::collection::vec(one_tag, keys.len()), 1..=6);
            series.prop_map(move |series| MeasurementSpec {
                series: series
                    .into_iter()
                    .map(|choices| {
                        keys.iter()
                            .zip(choices)
                            .filter_map(|(key, choice)| choice.map(|c| (*key, TAG_VALUES[c])))
                            .collect()
                    })
                    .collect(),
            })
        })
}

fn dataset_strategy() -> impl Strategy<Value = Dataset> {
    // Compaction writes and syncs a file per block, which is slow with blocks of a second:
    // about one dataset in five is compacted.
    let flush = prop_oneof![
        10 => Just(Flush::None),
        5 => Just(Flush::Sealed),
        5 => Just(Flush::Everything),
        1 => Just(Flush::Compact),
    ];
    let batch = (prop::collection::vec(point_strategy(), 1..40), flush)
        .prop_map(|(points, flush)| Batch { points, flush });
    (
        prop::collection::vec(measurement_strategy(), MEASUREMENTS.len()),
        prop::collection::vec(batch, 1..=5),
    )
        .prop_map(|(measurements, batches)| Dataset {
            measurements,
            batches,
        })
}

fn percentile_tenths() -> impl Strategy<Value = u32> {
    select(vec![0u32, 10, 250, 333, 500, 750, 900, 999, 1000])
}

fn call_strategy() -> impl Strategy<Value = Call> {
    (0..FIELDS.len(), 0..Func::ALL.len(), percentile_tenths()).prop_map(|(field, func, tenths)| {
        let (field, kind) = FIELDS[field];
        let mut func = match Func::ALL[func] {
            Func::Percentile(_) => Func::Percentile(tenths),
            other => other,
        };
        if !func.accepts(kind) {
            func = Func::Count;
        }
        Call { func, field }
    })
}

fn arith_op_strategy() -> impl Strategy<Value = ArithOp> {
    select(vec![
        ArithOp::Add,
        ArithOp::Sub,
        ArithOp::Mul,
        ArithOp::Div,
        ArithOp::Mod,
    ])
}

fn agg_expr_strategy() -> impl Strategy<Value = AggExpr> {
    let call = call_strategy().prop_map(AggExpr::Call);
    let operand = prop_oneof![
        2 => call_strategy().prop_map(AggExpr::Call),
        1 => (0i64..=5).prop_map(AggExpr::Int),
        1 => select(vec![0.5f64, 2.0, 10.0]).prop_map(AggExpr::Float),
    ];
    prop_oneof![
        3 => call,
        2 => (arith_op_strategy(), call_strategy(), operand)
            .prop_map(|(op, lhs, rhs)| AggExpr::Binary(op, Box::new(AggExpr::Call(lhs)), Box::new(rhs))),
    ]
}

fn numeric_field() -> impl Strategy<Value = &'static str> {
    select(vec!["fi", "fu", "ff"])
}

fn select_strategy() -> impl Strategy<Value = Select> {
    let raw_column = prop_oneof![
        2 => select(FIELDS.iter().map(|(f, _)| *f).collect::<Vec<_>>()).prop_map(RawColumn::Field),
        1 => select(TAG_KEYS.to_vec()).prop_map(RawColumn::Tag),
    ];
    let raw = prop::collection::vec(raw_column, 1..=3).prop_map(|mut columns| {
        if !columns.iter().any(|c| matches!(c, RawColumn::Field(_))) {
            columns.push(RawColumn::Field("ff"));
        }
        Select::Raw(columns)
    });
    let aggregates =
        prop::collection::vec((agg_expr_strategy(), any::<bool>()), 1..=3).prop_map(|columns| {
            Select::Aggregates(
                columns
                    .into_iter()
                    .enumerate()
                    .map(|(i, (expr, aliased))| (expr, aliased.then(|| format!("a{i}"))))
                    .collect(),
            )
        });
    let multi = prop_oneof![
        select(FIELDS.iter().map(|(f, _)| *f).collect::<Vec<_>>()).prop_map(MultiFunc::Distinct),
        (numeric_field(), 1usize..=3).prop_map(|(f, n)| MultiFunc::Top(f, n)),
        (numeric_field(), 1usize..=3).prop_map(|(f, n)| MultiFunc::Bottom(f, n)),
    ]
    .prop_map(Select::Multi);
    // Functions that take only numbers: `f(*)` over fields of every type is left to the
    // aggregates above, which name the fields.
    let wildcard = select(vec![
        Func::Sum,
        Func::Mean,
        Func::Median,
        Func::Min,
        Func::Max,
        Func::Spread,
        Func::Stddev,
        Func::Percentile(250),
        Func::P90,
    ])
    .prop_map(Select::WildcardCall);
    prop_oneof![2 => raw, 1 => Just(Select::Star), 6 => aggregates, 2 => multi, 1 => wildcard]
}

fn cmp_op_strategy() -> impl Strategy<Value = CmpOp> {
    select(vec![
        CmpOp::Eq,
        CmpOp::NotEq,
        CmpOp::Lt,
        CmpOp::LtEq,
        CmpOp::Gt,
        CmpOp::GtEq,
    ])
}

fn cond_strategy() -> impl Strategy<Value = Cond> {
    let mut tag_operands: Vec<&'static str> = TAG_VALUES.to_vec();
    tag_operands.push("");
    let tag = prop_oneof![
        (
            select(TAG_KEYS.to_vec()),
            select(vec![TagOp::Eq, TagOp::NotEq]),
            select(tag_operands)
        )
            .prop_map(|(key, op, operand)| Cond::Tag { key, op, operand }),
        (
            select(TAG_KEYS.to_vec()),
            select(vec![TagOp::Match, TagOp::NotMatch]),
            select(PATTERNS.to_vec())
        )
            .prop_map(|(key, op, operand)| Cond::Tag { key, op, operand }),
    ];
    let field = prop_oneof![
        (cmp_op_strategy(), 0i64..=6).prop_map(|(op, v)| Cond::Field {
            field: "fu",
            op,
            literal: Literal::Int(v)
        }),
        (cmp_op_strategy(), -4i64..=4).prop_map(|(op, v)| Cond::Field {
            field: "fi",
            op,
            literal: Literal::Int(v)
        }),
        (cmp_op_strategy(), -8i32..=8).prop_map(|(op, k)| Cond::Field {
            field: "fi",
            op,
            literal: Literal::Float(f64::from(k) / 2.0)
        }),
        (cmp_op_strategy(), -40i32..=40).prop_map(|(op, k)| Cond::Field {
            field: "ff",
            op,
            literal: Literal::Float(f64::from(k) / 4.0)
        }),
        (cmp_op_strategy(), -10i64..=10).prop_map(|(op, v)| Cond::Field {
            field: "ff",
            op,
            literal: Literal::Int(v)
        }),
        (select(vec![CmpOp::Eq, CmpOp::NotEq]), any::<bool>()).prop_map(|(op, b)| Cond::Field {
            field: "fb",
            op,
            literal: Literal::Bool(b)
        }),
        (
            select(vec![CmpOp::Eq, CmpOp::NotEq]),
            select(STRING_VALUES.to_vec())
        )
            .prop_map(|(op, s)| Cond::Field {
                field: "fs",
                op,
                literal: Literal::Str(s)
            }),
    ];
    let leaf = prop_oneof![tag, field];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Cond::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn bound_strategy() -> impl Strategy<Value = TimeBound> {
    (
        prop_oneof![
            (-240i64..=240).prop_map(|k| k * 250 * MILLISECOND),
            (-60i64..=60).prop_map(|k| k * SECOND)
        ],
        any::<bool>(),
        select(vec![
            TimeSpelling::Nanoseconds,
            TimeSpelling::Duration,
            TimeSpelling::Rfc3339,
        ]),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(time, inclusive, spelling, flipped)| TimeBound {
            time,
            inclusive,
            spelling,
            flipped,
        })
}

/// Lower and upper time bounds, each optional; when both are present the lower one is not
/// after the upper one (an empty range is a case of its own, rarely worth a query).
fn time_range_strategy() -> impl Strategy<Value = (Option<TimeBound>, Option<TimeBound>)> {
    (
        prop::option::weighted(0.6, bound_strategy()),
        prop::option::weighted(0.5, bound_strategy()),
    )
        .prop_map(|(lower, upper)| match (lower, upper) {
            (Some(a), Some(b)) if a.time > b.time => (
                Some(TimeBound { time: b.time, ..a }),
                Some(TimeBound { time: a.time, ..b }),
            ),
            other => other,
        })
}

fn group_time_strategy() -> impl Strategy<Value = GroupTime> {
    let intervals = vec![
        250 * MILLISECOND,
        SECOND,
        3 * SECOND,
        5 * SECOND,
        7 * SECOND,
        10 * SECOND,
        20 * SECOND,
        30 * SECOND,
        60 * SECOND,
        120 * SECOND,
    ];
    let offsets = vec![
        SECOND,
        -2 * SECOND,
        500 * MILLISECOND,
        7 * SECOND,
        -250 * MILLISECOND,
    ];
    (
        select(intervals),
        prop::option::weighted(
            0.3,
            prop_oneof![
                4 => select(offsets).prop_map(Offset::Duration),
                1 => Just(Offset::Now),
            ],
        ),
        any::<bool>(),
    )
        .prop_map(|(interval, offset, last)| GroupTime {
            interval,
            offset,
            last,
        })
}

fn fill_strategy() -> impl Strategy<Value = Fill> {
    prop_oneof![
        Just(Fill::None),
        Just(Fill::Null),
        Just(Fill::Previous),
        Just(Fill::Linear),
        select(vec![0i64, -1, 7]).prop_map(Fill::Int),
        select(vec![2.5f64, -0.5]).prop_map(Fill::Float),
    ]
}

fn query_strategy() -> impl Strategy<Value = Query> {
    let source = prop_oneof![
        8 => select(MEASUREMENTS.to_vec()).prop_map(Source::One),
        1 => Just(Source::Both),
        1 => Just(Source::Regex),
    ];
    let shape = (
        source,
        select_strategy(),
        prop::option::weighted(0.4, cond_strategy()),
        time_range_strategy(),
        prop::option::weighted(0.6, group_time_strategy()),
        prop_oneof![
            2 => Just(GroupTags::None),
            2 => subsequence(TAG_KEYS.to_vec(), 1..=2).prop_map(GroupTags::Keys),
            1 => select(KEY_PATTERNS.to_vec()).prop_map(GroupTags::Regex),
            1 => Just(GroupTags::Star),
        ],
    );
    let paging = (
        prop::option::weighted(0.5, fill_strategy()),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.2, 1u64..=5),
        prop::option::weighted(0.15, 1u64..=3),
        prop::option::weighted(0.15, 1u64..=3),
        prop::option::weighted(0.1, 1u64..=2),
        select(vec![20 * SECOND, 55 * SECOND, 90 * SECOND]),
    );
    (shape, paging).prop_map(
        |(
            (source, select, condition, (lower, upper), group_time, group_tags),
            (fill, descending, limit, offset, slimit, soffset, now),
        )| {
            let raw = matches!(select, Select::Raw(_) | Select::Star);
            // SLIMIT and SOFFSET page the series of each measurement on its own, a choice the
            // documentation does not make for several measurements: keep them apart.
            let one_measurement = matches!(source, Source::One(_));
            Query {
                source,
                select,
                condition,
                lower,
                upper,
                group_time: if raw { None } else { group_time },
                group_tags,
                fill: if raw { None } else { fill },
                descending,
                limit,
                offset,
                slimit: slimit.filter(|_| one_measurement),
                soffset: soffset.filter(|_| one_measurement),
                now,
            }
        },
    )
}

/// Writes a dataset batch by batch, flushing as it says.
fn load(engine: &TestEngine, dataset: &Dataset) -> Result<(), String> {
    let db = engine.database("db");
    for batch in &dataset.batches {
        let mut points = PointBatch::new();
        for point in &batch.points {
            let tags = dataset
                .tags_of(point)
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)));
            let fields = point.values.iter().map(|(field, value)| {
                let value = match value {
                    Val::Int(i) => FieldValue::Integer(*i),
                    Val::Uint(u) => FieldValue::Unsigned(*u),
                    Val::Float(f) => FieldValue::Float(*f),
                    Val::Bool(b) => FieldValue::Boolean(*b),
                    Val::Str(s) => FieldValue::String(Cow::Borrowed(*s)),
                };
                (Cow::Borrowed(FIELDS[*field].0), value)
            });
            points
                .push(MEASUREMENTS[point.measurement], tags, fields, point.time)
                .map_err(|e| e.to_string())?;
        }
        let summary = db.write(&points).map_err(|e| e.to_string())?;
        if !summary.rejected.is_empty() {
            return Err(format!("writes rejected: {:?}", summary.rejected));
        }
        match batch.flush {
            Flush::None => {}
            Flush::Sealed => {
                db.flush(false).map_err(|e| e.to_string())?;
            }
            Flush::Everything => {
                db.flush(true).map_err(|e| e.to_string())?;
            }
            Flush::Compact => {
                db.flush(true).map_err(|e| e.to_string())?;
                db.compact_all().map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

fn describe_cell(cell: &Cell) -> String {
    match cell {
        Cell::Null => "null".to_string(),
        Cell::Exact(v) => format_value(v),
        Cell::Approx { value, scale } => format!("~{value:?} (scale {scale:?})"),
        Cell::Sketch { value, scale } => format!("~{value:?} within 1% (scale {scale:?})"),
        Cell::OneOf(values) => format!(
            "one of [{}]",
            values
                .iter()
                .map(format_value)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Cell::Any => "*".to_string(),
    }
}

fn describe_expected(expected: &[ExpectedSeries]) -> String {
    let mut out = String::new();
    if expected.is_empty() {
        out.push_str("(no series)\n");
    }
    for series in expected {
        let _ = writeln!(out, "name: {}", series.name);
        if !series.tags.is_empty() {
            let tags: Vec<String> = series
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(out, "tags: {}", tags.join(", "));
        }
        let _ = writeln!(out, "{}", series.columns.join("  "));
        for (time, cells) in &series.rows {
            let cells: Vec<String> = cells.iter().map(describe_cell).collect();
            let _ = writeln!(out, "{}  {}", format_time(*time), cells.join("  "));
        }
    }
    out
}

/// Compares a statement's series with the reference's: the first difference, if any.
fn compare(expected: &[ExpectedSeries], got: &[ResultSeries]) -> Result<(), String> {
    if expected.len() != got.len() {
        return Err(format!(
            "{} series expected, {} returned",
            expected.len(),
            got.len()
        ));
    }
    for (i, (want, have)) in expected.iter().zip(got).enumerate() {
        if want.name != have.name || want.tags != have.tags || want.columns != have.columns {
            return Err(format!(
                "series {i}: expected {} {:?} {:?}, got {} {:?} {:?}",
                want.name, want.tags, want.columns, have.name, have.tags, have.columns
            ));
        }
        if want.rows.len() != have.values.len() {
            return Err(format!(
                "series {i}: {} rows expected, {} returned",
                want.rows.len(),
                have.values.len()
            ));
        }
        for (r, ((time, cells), row)) in want.rows.iter().zip(&have.values).enumerate() {
            if row.first() != Some(&Value::Time(*time)) {
                return Err(format!(
                    "series {i} row {r}: time {} expected, got {:?}",
                    format_time(*time),
                    row.first()
                ));
            }
            if row.len() != cells.len() + 1 {
                return Err(format!(
                    "series {i} row {r}: {} cells expected, got {}",
                    cells.len() + 1,
                    row.len()
                ));
            }
            for (c, (cell, value)) in cells.iter().zip(&row[1..]).enumerate() {
                if !cell.matches(value) {
                    return Err(format!(
                        "series {i} row {r} column {}: expected {}, got {}",
                        want.columns[c + 1],
                        describe_cell(cell),
                        format_value(value)
                    ));
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Tally {
    queries: usize,
    compared: usize,
    skipped: std::collections::BTreeMap<&'static str, usize>,
    with_rows: usize,
    rows: usize,
}

/// Loads a dataset and checks every query against the reference; counts what it did.
fn check_case(
    spec: &EngineSpec,
    dataset: &Dataset,
    queries: &[Query],
    tally: &Mutex<Tally>,
) -> Result<(), TestCaseError> {
    let span = Duration::from_secs(spec.chunk_span_seconds);
    let engine = TestEngine::open(test_options(
        span,
        span * spec.blocks_of_chunks as u32,
        spec.max_chunk_points,
    ));
    load(&engine, dataset).map_err(|e| {
        TestCaseError::fail(format!("loading failed: {e}\n{}", dataset.line_protocol()))
    })?;
    let store = Store::new(dataset);
    for query in queries {
        let text = query.render();
        let outcome = evaluate(&store, query);
        let mut counts = tally.lock().unwrap();
        counts.queries += 1;
        let expected = match outcome {
            Outcome::Skip(reason) => {
                *counts.skipped.entry(reason).or_default() += 1;
                continue;
            }
            Outcome::Series(expected) => expected,
        };
        drop(counts);
        let failure = |what: String| {
            TestCaseError::fail(format!(
                "{what}\nquery: {text}\nnow: {} ({})\nengine: {spec:?}\nexpected:\n{}data:\n{}",
                query.now,
                format_time(query.now),
                describe_expected(&expected),
                dataset.line_protocol()
            ))
        };
        let results = engine
            .query("db", query.now, QueryLimits::default(), &text)
            .map_err(|e| failure(format!("the query does not parse: {e}")))?;
        let [result] = results.as_slice() else {
            return Err(failure(format!(
                "one statement result expected, got {}",
                results.len()
            )));
        };
        if let Some(error) = &result.error {
            return Err(failure(format!("the statement failed: {error}")));
        }
        compare(&expected, &result.series).map_err(|difference| {
            failure(format!(
                "{difference}\ngot:\n{}",
                render_results(&results).join("\n")
            ))
        })?;
        let mut counts = tally.lock().unwrap();
        counts.compared += 1;
        let rows: usize = expected.iter().map(|s| s.rows.len()).sum();
        counts.rows += rows;
        if rows > 0 {
            counts.with_rows += 1;
        }
    }
    Ok(())
}

fn cases() -> u32 {
    // PROPTEST_CASES, when set, wins over this file's default.
    if std::env::var_os("PROPTEST_CASES").is_some() {
        Config::default().cases
    } else {
        96
    }
}

#[test]
fn executor_agrees_with_a_brute_force_reference_on_random_data_and_queries() {
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let tally = Mutex::new(Tally::default());
    let strategy = (
        engine_strategy(),
        dataset_strategy(),
        prop::collection::vec(query_strategy(), 1..=12),
    );
    let result = runner.run(&strategy, |(spec, dataset, queries)| {
        check_case(&spec, &dataset, &queries, &tally)
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    let tally = tally.into_inner().unwrap();
    println!("{tally:?}");
    // The generator must keep producing queries that are compared and that return rows, or
    // this test would pass while checking little.
    assert!(
        tally.compared * 10 >= tally.queries * 7,
        "too many queries skipped: {tally:?}"
    );
    assert!(
        tally.with_rows * 2 >= tally.compared,
        "too few queries return rows: {tally:?}"
    );
}

/// Indexes of `fi` and `ff` in [`FIELDS`].
const FI: usize = 0;
const FF: usize = 2;

/// One series `m0,t0=<tag>` holding `fi` and `ff` every 100 ms from -20 s to 20 s.
fn dense_dataset(tags: &[&'static str]) -> Dataset {
    let mut points = Vec::new();
    for (s, _) in tags.iter().enumerate() {
        for k in -200i64..200 {
            let i = k + 1000 * s as i64;
            points.push(PointSpec {
                measurement: 0,
                series: s,
                time: k * 100 * MILLISECOND,
                values: vec![
                    (FI, Val::Int(i % 7 - 3)),
                    (FF, Val::Float((i % 11) as f64 * 0.125 - 0.5)),
                ],
            });
        }
    }
    // Rewrites of a few points after the flush make overlapping chunks that must be merged.
    let rewrites: Vec<PointSpec> = (0..tags.len())
        .flat_map(|s| {
            (-3i64..3).map(move |k| PointSpec {
                measurement: 0,
                series: s,
                time: k * 3 * SECOND + 50 * MILLISECOND * (s as i64 % 2),
                values: vec![(FI, Val::Int(100 + k)), (FF, Val::Float(10.5 + k as f64))],
            })
        })
        .collect();
    Dataset {
        measurements: vec![
            MeasurementSpec {
                series: tags.iter().map(|t| vec![("t0", *t)]).collect(),
            },
            MeasurementSpec {
                series: vec![vec![]],
            },
        ],
        batches: vec![
            Batch {
                points,
                flush: Flush::Everything,
            },
            Batch {
                points: rewrites,
                flush: Flush::None,
            },
        ],
    }
}

fn dense_query(select: Select, condition: Option<Cond>, interval: i64) -> Query {
    let bound = |time: i64, inclusive: bool| TimeBound {
        time,
        inclusive,
        spelling: TimeSpelling::Duration,
        flipped: false,
    };
    Query {
        source: Source::One("m0"),
        select,
        condition,
        lower: Some(bound(-20 * SECOND, true)),
        upper: Some(bound(20 * SECOND, false)),
        group_time: Some(GroupTime {
            interval,
            offset: None,
            last: true,
        }),
        group_tags: GroupTags::Keys(vec!["t0"]),
        fill: None,
        descending: false,
        limit: None,
        offset: None,
        slimit: None,
        soffset: None,
        now: 30 * SECOND,
    }
}

/// The counters of `EXPLAIN ANALYZE`: chunks read, answered from statistics, decoded.
fn explain_counts(engine: &TestEngine, query: &Query) -> (u64, u64, u64) {
    let text = format!("EXPLAIN ANALYZE {}", query.render());
    let results = engine
        .query("db", query.now, QueryLimits::default(), &text)
        .unwrap();
    let lines: Vec<String> = results[0]
        .series
        .iter()
        .flat_map(|s| s.values.iter())
        .filter_map(|row| match row.first() {
            Some(Value::String(line)) => Some(line.clone()),
            _ => None,
        })
        .collect();
    let line = lines
        .iter()
        .find(|l| l.starts_with("chunks read:"))
        .unwrap_or_else(|| panic!("no chunk counts in {lines:?}"));
    // "chunks read: N; answered from statistics: M; decoded: K (P points)"
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().unwrap())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

fn single_call(func: Func, field: &'static str) -> (AggExpr, Option<String>) {
    (AggExpr::Call(Call { func, field }), None)
}

#[test]
fn chunks_inside_buckets_are_answered_from_statistics_with_the_reference_results() {
    assert_eq!((FIELDS[FI].0, FIELDS[FF].0), ("fi", "ff"));
    let dataset = dense_dataset(&["a", "b", "c"]);
    let engine = TestEngine::open(test_options(
        Duration::from_secs(1),
        Duration::from_secs(10),
        8,
    ));
    load(&engine, &dataset).unwrap();
    let store = Store::new(&dataset);
    let statistics_functions = [
        Func::Count,
        Func::Sum,
        Func::Mean,
        Func::Min,
        Func::Max,
        Func::First,
        Func::Last,
        Func::Spread,
    ];
    let mut columns: Vec<(AggExpr, Option<String>)> = statistics_functions
        .iter()
        .map(|f| single_call(*f, "ff"))
        .collect();
    columns.extend(statistics_functions.iter().map(|f| single_call(*f, "fi")));
    let check = |query: &Query| {
        let Outcome::Series(expected) = evaluate(&store, query) else {
            panic!("skipped")
        };
        assert!(!expected.is_empty());
        let results = engine
            .query("db", query.now, QueryLimits::default(), &query.render())
            .unwrap();
        if let Err(difference) = compare(&expected, &results[0].series) {
            panic!(
                "{difference}\nquery: {}\nexpected:\n{}",
                query.render(),
                describe_expected(&expected)
            );
        }
    };

    // 5 s buckets hold whole 1 s chunks (and the merged pieces of the rewritten ones, whose
    // statistics are computed when they are merged): statistics answer them.
    let whole = dense_query(Select::Aggregates(columns.clone()), None, 5 * SECOND);
    check(&whole);
    let (read, from_statistics, decoded) = explain_counts(&engine, &whole);
    assert!(
        from_statistics > 0,
        "no chunk answered from statistics: {read} read, {decoded} decoded"
    );
    assert_eq!(read, from_statistics + decoded);

    // A condition on a field needs every point.
    let condition = Cond::Field {
        field: "fi",
        op: CmpOp::GtEq,
        literal: Literal::Int(0),
    };
    let filtered = dense_query(
        Select::Aggregates(columns.clone()),
        Some(condition),
        5 * SECOND,
    );
    check(&filtered);
    let (_, from_statistics, decoded) = explain_counts(&engine, &filtered);
    assert_eq!(from_statistics, 0);
    assert!(decoded > 0);

    // 300 ms buckets split most 800 ms chunks (8 points) between buckets.
    let split = dense_query(Select::Aggregates(columns.clone()), None, 300 * MILLISECOND);
    check(&split);
    let (_, _, decoded) = explain_counts(&engine, &split);
    assert!(decoded > 0);

    // Functions that need every value decode even whole chunks.
    let median = dense_query(
        Select::Aggregates(vec![single_call(Func::Median, "ff")]),
        None,
        5 * SECOND,
    );
    check(&median);
    let (_, from_statistics, _) = explain_counts(&engine, &median);
    assert_eq!(from_statistics, 0);
}
