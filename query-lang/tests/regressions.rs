//! Regression tests for executor bugs the differential test (`differential.rs`) and the query
//! scripts found, each the smallest case that failed, with what `docs/query-language.md` (or
//! InfluxDB 1.x, where the documentation follows it) says the answer is. Each test's comment
//! says how the executor went wrong.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test fails loudly by design; its helper module is private to this crate"
)]

mod support;

use std::borrow::Cow;

use tally_engine::{EngineOptions, FieldValue, PointBatch};
use tally_ingest::line_protocol::Precision;
use tally_query::QueryLimits;

use support::{TestEngine, render_results, test_options, tokens};

const NOW: i64 = 1_000_000_000_000;

fn engine_with(lines: &str) -> TestEngine {
    let defaults = EngineOptions::default();
    let engine = TestEngine::open(test_options(
        defaults.chunk_span,
        defaults.block_duration,
        defaults.max_chunk_points,
    ));
    engine.load("db", lines, Precision::Seconds).unwrap();
    engine
}

/// Runs a query and compares its printed result with `expected` (cells split on white space).
fn assert_result(engine: &TestEngine, query: &str, expected: &str) {
    assert_result_at(engine, NOW, query, expected);
}

/// [`assert_result`] with the query's `now()`, in nanoseconds.
fn assert_result_at(engine: &TestEngine, now: i64, query: &str, expected: &str) {
    let results = engine
        .query("db", now, QueryLimits::default(), query)
        .unwrap();
    let got = render_results(&results);
    let got_tokens: Vec<Vec<String>> = got.iter().map(|l| tokens(l)).collect();
    let expected_tokens: Vec<Vec<String>> = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(tokens)
        .collect();
    assert_eq!(
        got_tokens,
        expected_tokens,
        "query: {query}\ngot:\n{}\nexpected:\n{expected}",
        got.join("\n")
    );
}

/// Without a lower time bound and without GROUP BY time, an aggregate started its single bucket
/// at the epoch (`select.rs`, `TimeBuckets { first: 0, .. }` when `cond.min_time == i64::MIN`),
/// and then clipped decoded chunks to `scan_cond.min_time.max(buckets.first)` and refuses the
/// statistics of chunks with `stats.min_time < buckets.first`: every point before 1970 was
/// dropped. The documentation stamps the row with the epoch; it does not drop the points.
/// InfluxDB 1.6 answers count 2 here. Distinct, top and bottom lose the same points.
#[test]
fn ungrouped_aggregates_without_a_lower_time_bound_count_points_before_the_epoch() {
    let engine = engine_with("m v=1i -5\nm v=2i 10\n");
    assert_result(
        &engine,
        "SELECT count(v), sum(v) FROM m",
        "name: m
         time                  count  sum
         1970-01-01T00:00:00Z  2      3",
    );
    assert_result(
        &engine,
        "SELECT distinct(v) FROM m",
        "name: m
         time                  distinct
         1970-01-01T00:00:00Z  1
         1970-01-01T00:00:00Z  2",
    );
}

/// `AggKind::uses_stats` allowed first/last for every type, but string chunks keep no value
/// statistics (`ValueStats::String`): `Accumulator::add_stats` returns false and the caller in
/// `select.rs` ignored that result, so a string chunk that lay inside one bucket was lost. The
/// planner now asks `AggKind::answers_from_stats` with the chunk's statistics.
#[test]
fn first_and_last_of_string_fields_keep_chunks_inside_one_bucket() {
    let engine = engine_with("m s=\"x\" 0\nm s=\"y\" 5\n");
    assert_result(
        &engine,
        "SELECT first(s), last(s) FROM m WHERE time >= 0 AND time < 10s GROUP BY time(10s)",
        r#"name: m
           time                  first  last
           1970-01-01T00:00:00Z  "x"    "y""#,
    );
}

/// The documentation (FILL): "a series with no point in the range produces no rows", and
/// InfluxDB 1.6 returns no series for such a group. `group_rows` in `select.rs` returns early
/// only when the query had no GROUP BY time (`!buckets.grouped && empty[0]`), so a GROUP BY
/// time group whose series have points only outside the range got a row of nulls per bucket.
#[test]
fn a_group_without_points_in_the_time_range_returns_no_rows() {
    let engine = engine_with("m,h=a v=1 5\nm,h=b v=2 100\n");
    assert_result(
        &engine,
        "SELECT sum(v) FROM m WHERE time >= 0 AND time < 20s GROUP BY time(10s), h",
        "name: m
         tags: h=a
         time                  sum
         1970-01-01T00:00:00Z  1.0
         1970-01-01T00:00:10Z  null",
    );
    assert_result(
        &engine,
        "SELECT sum(v) FROM m WHERE time >= 200s AND time < 220s GROUP BY time(10s)",
        "(no series)",
    );
}

/// A bucket is empty only when no selected field has a point (FILL); in a bucket that is not
/// empty, `count(b)` is the number of `b`'s points, 0, as InfluxDB 1.6 answers. `group_rows`
/// turned every accumulator without data into null (`if a.has_data(b) { a.value(b) } else
/// { Null }`), count and count(distinct()) included.
#[test]
fn count_is_zero_in_a_bucket_where_only_other_fields_have_points() {
    let engine = engine_with("m a=1i,b=10i 0\nm a=2i 10\n");
    assert_result(
        &engine,
        "SELECT count(a), count(b), count(distinct(b)) FROM m WHERE time >= 0 AND time < 20s GROUP BY time(10s)",
        "name: m
         time                  count  count_1  count_2
         1970-01-01T00:00:00Z  1      1        1
         1970-01-01T00:00:10Z  1      0        0",
    );
}

/// The function table gives `count(distinct(f))` 0 in an empty bucket (InfluxDB 1.6 agrees);
/// the executor showed null, like `count`.
#[test]
fn count_distinct_is_zero_in_an_empty_bucket() {
    let engine = engine_with("m a=1i 0\n");
    assert_result(
        &engine,
        "SELECT count(distinct(a)) FROM m WHERE time >= 0 AND time < 20s GROUP BY time(10s)",
        "name: m
         time                  count
         1970-01-01T00:00:00Z  1
         1970-01-01T00:00:10Z  0",
    );
}

/// FILL: "`linear` interpolates ... (integers are truncated)". `fill_column` in `select.rs`
/// truncated only when both neighbours were `Value::Integer`; between unsigned values it
/// wrote untruncated floats into an unsigned column.
#[test]
fn fill_linear_between_unsigned_values_truncates_and_stays_unsigned() {
    let engine = engine_with("m u=1u 0\nm u=4u 30\n");
    assert_result(
        &engine,
        "SELECT sum(u) FROM m WHERE time >= 0 AND time < 40s GROUP BY time(10s) fill(linear)",
        "name: m
         time                  sum
         1970-01-01T00:00:00Z  1u
         1970-01-01T00:00:10Z  2u
         1970-01-01T00:00:20Z  3u
         1970-01-01T00:00:30Z  4u",
    );
}

/// The function table: min and max ignore NaN "unless every value is NaN". With every value
/// NaN the accumulators (`State::Extreme`, in `add_slice` and `add_stats`) keep nothing, so
/// the bucket looked empty and the series disappeared instead of showing NaN.
#[test]
fn min_and_max_are_nan_when_every_value_is_nan() {
    let engine = engine_with("");
    let mut batch = PointBatch::new();
    for time in [0, 1] {
        batch
            .push(
                "n",
                [(Cow::Borrowed("h"), Cow::Borrowed("a"))],
                [(Cow::Borrowed("v"), FieldValue::Float(f64::NAN))],
                time,
            )
            .unwrap();
    }
    engine.database("db").write(&batch).unwrap();
    assert_result(
        &engine,
        "SELECT min(v), max(v) FROM n",
        "name: n
         time                  min  max
         1970-01-01T00:00:00Z  NaN  NaN",
    );
}

/// The statistics shortcut is refused for `sum` when a chunk's integer sum overflowed
/// (`ValueStats::Integer { sum: None, .. }`), but was not for `mean`, which shares the sum
/// accumulator: `add_stats` then returned false, the result was ignored, and the chunk was lost.
#[test]
fn mean_of_integers_keeps_a_chunk_whose_sum_overflows() {
    let engine = engine_with("m i=9223372036854775800i 0\nm i=10i 5\n");
    assert_result(
        &engine,
        "SELECT mean(i) FROM m WHERE time >= 0",
        "name: m
         time                  mean
         1970-01-01T00:00:00Z  4.611686018427388e18",
    );
}

/// `GROUP BY time(i, now())`: the offset `now()` is documented "to end the last bucket at the
/// query time". Without an upper bound the range ends at now() inclusive (`hi = ctx.now` in
/// `aggregate_query`), and since now() is a bucket boundary, one more bucket, `[now, now + i)`,
/// was added after the bucket that ends at now(): every such query ended in an empty row.
#[test]
fn group_by_time_with_a_now_offset_ends_the_last_bucket_at_now() {
    let engine = engine_with("cpu usage=1i 20\ncpu usage=2i 40\ncpu usage=3i 50\n");
    // now() is 1970-01-01T00:01:05Z: buckets [5s, 25s), [25s, 45s), [45s, 65s).
    assert_result_at(
        &engine,
        65_000_000_000,
        "SELECT sum(usage) FROM cpu WHERE time >= 10s GROUP BY time(20s, now())",
        "name: cpu
         time                  sum
         1970-01-01T00:00:05Z  1
         1970-01-01T00:00:25Z  2
         1970-01-01T00:00:45Z  3",
    );
}

/// Once blocks are compacted, `Database::read_tiered` (engine/src/database.rs) picked a block's
/// rollup unless a time bound falls inside the block (`cuts(t)` tests `t > block_start && t <
/// block_end`). With blocks shorter than the tier resolution (here 1 s blocks, 1 h tier for a
/// query with one bucket), a bound can cut the tier bucket outside the block: the rollup is
/// chosen, then its row, which covers the whole tier bucket, is clipped away (`keep_max =
/// max_time - (r - 1)`), and the block's points were lost. Whether the range cuts the tier
/// buckets the block touches now decides between rollup and raw data.
#[test]
fn rollups_keep_a_block_whose_tier_bucket_the_time_range_cuts() {
    let second = std::time::Duration::from_secs(1);
    let engine = TestEngine::open(test_options(second, second, 4));
    engine
        .load("db", "m v=1i 0\nm v=2i 10\n", Precision::Seconds)
        .unwrap();
    let db = engine.database("db");
    db.flush(true).unwrap();
    db.compact_all().unwrap();
    assert_result(
        &engine,
        "SELECT count(v) FROM m WHERE time >= -30s AND time <= 45s",
        "name: m
         time                  count
         1969-12-31T23:59:30Z  2",
    );
    assert_result(
        &engine,
        "SELECT count(v) FROM m WHERE time >= 0 AND time < 30s GROUP BY time(1m)",
        "name: m
         time                  count
         1970-01-01T00:00:00Z  2",
    );
}

/// Selectors: "when a statement has no GROUP BY time and a selector is its only column, the
/// row's time is the selected point's time", and percentile returns the field's type. The
/// planner (`choose_tier` in `select.rs`) kept min and max on raw data for that reason but not
/// percentile: once the block was compacted, the same query read the rollup's quantile sketch
/// and answered a float stamped with the epoch.
#[test]
fn a_lone_percentile_reports_the_chosen_points_time_after_compaction() {
    let engine = engine_with("m v=10i 1\nm v=40i 2\nm v=20i 3\nm v=50i 4\nm v=30i 5\n");
    let db = engine.database("db");
    db.flush(true).unwrap();
    db.compact_all().unwrap();
    assert_result(
        &engine,
        "SELECT percentile(v, 50) FROM m",
        "name: m
         time                  percentile
         1970-01-01T00:00:05Z  30",
    );
}

/// Without a lower time bound, GROUP BY time starts at the first point of the selected series
/// (Execution, Time range). `aggregate_query` finds that point with `view.time_bounds`, which
/// looked only at raw chunks (`ReadView::sources`); once the blocks were compacted and read from
/// rollups, it found none and the statement returned nothing.
#[test]
fn group_by_time_without_a_lower_bound_finds_the_first_point_in_rollups() {
    let engine = engine_with("m v=1i 0\nm v=2i 10\n");
    let db = engine.database("db");
    db.flush(true).unwrap();
    db.compact_all().unwrap();
    assert_result(
        &engine,
        "SELECT count(v) FROM m WHERE time < 2m GROUP BY time(1m)",
        "name: m
         time                  count
         1970-01-01T00:00:00Z  2
         1970-01-01T00:01:00Z  null",
    );
}

/// Without an upper time bound, GROUP BY time stops at now() (Execution, Time range), and the
/// raw path clips points after now(). The executor passed `cond.max_time` (unbounded) to
/// `read_tiered`, so a rollup row whose tier bucket holds now() was used whole, points after
/// now() included.
#[test]
fn group_by_time_from_rollups_stops_at_now() {
    let engine = engine_with("m v=1i 0\nm v=2i 10\nm v=4i 30\n");
    let db = engine.database("db");
    db.flush(true).unwrap();
    db.compact_all().unwrap();
    // now() is 20 s: the point at 30 s is after it.
    assert_result_at(
        &engine,
        20_000_000_000,
        "SELECT count(v) FROM m WHERE time >= 0 GROUP BY time(1m)",
        "name: m
         time                  count
         1970-01-01T00:00:00Z  2",
    );
}

/// Rollup rows do not keep an integer sum that overflowed i64 (`RollupRows::sum_overflow`), and
/// `sum()` and `mean()` over such a row failed with an error. The documentation gives integer
/// sums exactly in 128 bits (a float when the result does not fit), as on raw data; while the
/// block's raw data lasts, the executor now reads it instead of the rollup.
#[test]
fn integer_sums_that_overflow_a_rollup_row_are_exact_from_raw_data() {
    let engine = engine_with("m i=9223372036854775800i 0\nm i=10i 5\n");
    let db = engine.database("db");
    db.flush(true).unwrap();
    db.compact_all().unwrap();
    assert_result(
        &engine,
        "SELECT sum(i), mean(i) FROM m WHERE time >= 0",
        "name: m
         time                  sum                    mean
         1970-01-01T00:00:00Z  9.223372036854776e18   4.611686018427388e18",
    );
    assert_result(
        &engine,
        "SELECT sum(i) FROM m WHERE time >= 0 AND time < 2h GROUP BY time(1h)",
        "name: m
         time                  sum
         1970-01-01T00:00:00Z  9.223372036854776e18
         1970-01-01T01:00:00Z  null",
    );
}

/// A rollup segment's rows can reach into the time range where none of its block's raw points
/// lie (a row covers a whole tier bucket, the block a second of it). `read_tiered` took such a
/// block, whose raw segment the range had filtered out, for one whose raw data had expired and
/// read its rollup row approximately: a point after the upper bound was counted.
#[test]
fn rollups_do_not_count_points_outside_the_range_of_a_block_with_raw_data() {
    let second = std::time::Duration::from_secs(1);
    let engine = TestEngine::open(test_options(second, second, 4));
    engine
        .load("db", "m v=1i -250000000\n", Precision::Nanoseconds)
        .unwrap();
    let db = engine.database("db");
    db.flush(true).unwrap();
    db.compact_all().unwrap();
    assert_result(
        &engine,
        "SELECT count(v) FROM m WHERE time <= '1969-12-31T23:59:55.25Z'",
        "(no series)",
    );
    assert_result(
        &engine,
        "SELECT count(v) FROM m WHERE time <= 0",
        "name: m
         time                  count
         1970-01-01T00:00:00Z  1",
    );
}
