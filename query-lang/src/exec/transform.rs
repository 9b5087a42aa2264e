//! Transformation and trend functions: `derivative`, `non_negative_derivative`, `difference`,
//! `non_negative_difference`, `rate`, `moving_average`, `cumulative_sum`, `elapsed`, `trend`,
//! `forecast` and `anomaly`.
//!
//! They run after aggregation, on the GROUP BY time buckets of one result series, or on the raw
//! points of a bare field. The executor hands each function the rows of one series sorted by
//! strictly increasing time, with nulls already dropped and integers converted to f64.
//!
//! Invariants every function keeps, whatever its input:
//! - No panic and no integer overflow: time differences are taken as `u64` or `i128`, and every
//!   value computation is in f64.
//! - Output rows are sorted by strictly increasing time. A row whose time does not advance past
//!   the previous kept row breaks the executor's contract; it is skipped rather than trusted, so
//!   equal timestamps never divide by a zero elapsed time.
//! - The point-to-point functions (derivative, difference, rate, moving average, cumulative sum)
//!   return IEEE results for NaN and infinite values, as InfluxDB does. The fitting functions
//!   (trend, forecast, anomaly) ignore rows whose value is not finite, because one such value
//!   would otherwise poison every fitted number.
//!
//! The semantics are documented for users in `docs/query-language.md`, section "Transformation
//! and trend functions"; keep the two in step.

use std::borrow::Cow;
use std::collections::VecDeque;

const NANOS_PER_SECOND: f64 = 1e9;

/// The two-sided 95% quantile of the standard normal distribution. Prediction intervals use it
/// in place of Student's t, which is close for the dozens of rows a forecast usually sees.
const NORMAL_QUANTILE_95: f64 = 1.959_963_984_540_054;

/// Scales a median absolute deviation to the standard deviation of a normal distribution.
const MEDIAN_ABSOLUTE_DEVIATION_TO_SIGMA: f64 = 1.4826;

/// Scales a mean absolute deviation to the standard deviation of a normal distribution
/// (sqrt(pi / 2)).
const MEAN_ABSOLUTE_DEVIATION_TO_SIGMA: f64 = 1.2533;

/// The most points one forecast may produce.
pub(crate) const MAX_FORECAST_POINTS: u64 = 100_000;

/// The most buckets of `interval` a forecast may fit. Holt-Winters evaluates the whole series a
/// few hundred times while it fits its smoothing parameters (about 0.4 s for 200000 seasonal
/// buckets in a release build), and the fit cannot be interrupted, so this bounds its cost.
pub(crate) const MAX_FORECAST_FIT_BUCKETS: u64 = 200_000;

/// A line needs two rows, and its residual standard error one more degree of freedom.
pub(crate) const MIN_LINEAR_FORECAST_ROWS: usize = 3;

/// Holt's method spends two buckets on its initial level and trend; two more give one-step
/// errors that depend on the smoothing parameters, so there is something to fit.
pub(crate) const MIN_HOLT_WINTERS_BUCKETS: usize = 4;

/// The default number of trailing rows `anomaly` compares each row against.
pub(crate) const DEFAULT_ANOMALY_WINDOW: usize = 30;

/// The rate of change of `rows` per `unit_ns`: for each row after the first,
/// `(v_i - v_{i-1}) / ((t_i - t_{i-1}) / unit_ns)`, stamped `t_i`.
///
/// With `non_negative`, negative results are dropped (InfluxDB `non_negative_derivative`); the
/// dropped row still serves as the previous row of the next one. NaN results are kept: they are
/// not negative. A unit that is not positive yields no rows.
pub(crate) fn derivative(rows: &[(i64, f64)], unit_ns: i64, non_negative: bool) -> Vec<(i64, f64)> {
    if unit_ns <= 0 {
        return Vec::new();
    }
    let unit = unit_ns as f64;
    consecutive_pairs(rows)
        .filter_map(|((previous_time, previous_value), (time, value))| {
            let elapsed_units = previous_time.abs_diff(time) as f64 / unit;
            let derivative = (value - previous_value) / elapsed_units;
            keep_unless_negative(time, derivative, non_negative)
        })
        .collect()
}

/// `v_i - v_{i-1}` for each row after the first, stamped `t_i`; with `non_negative`, negative
/// differences are dropped (InfluxDB `non_negative_difference`).
pub(crate) fn difference(rows: &[(i64, f64)], non_negative: bool) -> Vec<(i64, f64)> {
    consecutive_pairs(rows)
        .filter_map(|((_, previous_value), (time, value))| {
            keep_unless_negative(time, value - previous_value, non_negative)
        })
        .collect()
}

/// The per-`unit_ns` rate of increase of a monotonic counter, stamped at the later row of each
/// consecutive pair.
///
/// A counter that went down restarted from zero, so the increase over that pair is the new value
/// itself, not the (negative) difference; this is how Prometheus treats counter resets, applied
/// between consecutive rows. A pair whose later value is negative after a drop is not a counter
/// reset and yields no row, so the result is never negative. NaN values give NaN rates. A unit that
/// is not positive yields no rows.
pub(crate) fn rate(rows: &[(i64, f64)], unit_ns: i64) -> Vec<(i64, f64)> {
    if unit_ns <= 0 {
        return Vec::new();
    }
    let unit = unit_ns as f64;
    consecutive_pairs(rows)
        .filter_map(|((previous_time, previous_value), (time, value))| {
            let increase = if value < previous_value {
                value
            } else {
                value - previous_value
            };
            if increase < 0.0 {
                return None;
            }
            let elapsed_units = previous_time.abs_diff(time) as f64 / unit;
            Some((time, increase / elapsed_units))
        })
        .collect()
}

/// The mean of each run of `n` consecutive rows, stamped with the time of the run's last row; the
/// first `n - 1` rows produce nothing. `n == 0` yields no rows.
///
/// Each mean is the IEEE sum of exactly the rows in its window divided by `n`, so a NaN or an
/// infinity affects only the windows that contain it.
pub(crate) fn moving_average(rows: &[(i64, f64)], n: usize) -> Vec<(i64, f64)> {
    let rows = strictly_increasing(rows);
    if n == 0 || rows.len() < n {
        return Vec::new();
    }
    // A running sum that adds the entering value and subtracts the leaving one would keep the
    // rounding error of every value it has seen, and a single NaN or a large value passing
    // through would spoil every later window. Instead the rows are cut into blocks of `n`; with
    // the prefix sums and suffix sums of each block, every window is the suffix of one block plus
    // the prefix of the next, which adds only the values inside the window (van Herk / Gil-Werman).
    let mut prefix_sums = vec![0.0; rows.len()];
    let mut suffix_sums = vec![0.0; rows.len()];
    for ((block, prefix_block), suffix_block) in rows
        .chunks(n)
        .zip(prefix_sums.chunks_mut(n))
        .zip(suffix_sums.chunks_mut(n))
    {
        let mut running = 0.0;
        for (&(_, value), prefix) in block.iter().zip(prefix_block.iter_mut()) {
            running += value;
            *prefix = running;
        }
        let mut running = 0.0;
        for (&(_, value), suffix) in block.iter().zip(suffix_block.iter_mut()).rev() {
            running += value;
            *suffix = running;
        }
    }
    let window_length = n as f64;
    (n - 1..rows.len())
        .filter_map(|last| {
            let first = last + 1 - n;
            let (time, _) = *rows.get(last)?;
            let prefix = *prefix_sums.get(last)?;
            let sum = if first.is_multiple_of(n) {
                prefix
            } else {
                suffix_sums.get(first)? + prefix
            };
            Some((time, sum / window_length))
        })
        .collect()
}

/// The running sum of the values up to and including each row.
///
/// The sum is compensated (Neumaier), so long series of small increments do not lose precision.
/// Once the plain sum is no longer finite, the IEEE result is returned from then on: a NaN stays
/// NaN, as in InfluxDB.
pub(crate) fn cumulative_sum(rows: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut sum = 0.0_f64;
    let mut compensation = 0.0_f64;
    advancing_rows(rows)
        .map(|(time, value)| {
            let next = sum + value;
            if next.is_finite() {
                compensation += if sum.abs() >= value.abs() {
                    (sum - next) + value
                } else {
                    (value - next) + sum
                };
            }
            sum = next;
            let total = if sum.is_finite() {
                sum + compensation
            } else {
                sum
            };
            (time, total)
        })
        .collect()
}

/// The time between consecutive rows in whole `unit_ns` (integer division, rounding down),
/// stamped at the later row. A unit that is not positive yields no rows; a difference too large
/// for i64 (only possible with a unit of 1ns across most of the i64 range) saturates at
/// `i64::MAX`.
pub(crate) fn elapsed(times: &[i64], unit_ns: i64) -> Vec<(i64, i64)> {
    let Ok(unit) = u64::try_from(unit_ns) else {
        return Vec::new();
    };
    if unit == 0 {
        return Vec::new();
    }
    let mut previous: Option<i64> = None;
    let mut elapsed_rows = Vec::with_capacity(times.len().saturating_sub(1));
    for &time in times {
        match previous {
            Some(previous_time) if time <= previous_time => continue,
            Some(previous_time) => {
                let units = previous_time.abs_diff(time) / unit;
                elapsed_rows.push((time, i64::try_from(units).unwrap_or(i64::MAX)));
            }
            None => {}
        }
        previous = Some(time);
    }
    elapsed_rows
}

/// An ordinary least-squares line through the finite rows of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TrendFit {
    /// Change of the value per second.
    pub(crate) slope_per_second: f64,
    /// The line's value at the time of the first finite row.
    pub(crate) intercept_at_first: f64,
    /// The share of the values' variance the line explains, in [0, 1]; 1 when all values are
    /// equal, since the flat line then passes through every one of them.
    pub(crate) r_squared: f64,
    /// How many rows the fit used (those with a finite value).
    pub(crate) n: usize,
}

/// Fits a line to the finite rows by ordinary least squares of value on time, and returns it
/// with the line's value at the time of every input row (rows with a non-finite value included:
/// the line is defined there too).
///
/// Time is measured in seconds from the first finite row, and values are centred and scaled
/// before fitting, so timestamps near 2^62 and values near f64::MAX stay accurate. `None` when
/// fewer than two rows have finite values, or when the fit is not finite.
pub(crate) fn trend(rows: &[(i64, f64)]) -> Option<(TrendFit, Vec<(i64, f64)>)> {
    let rows = strictly_increasing(rows);
    let first_time = rows.iter().find(|(_, value)| value.is_finite())?.0;
    let points: Vec<(f64, f64)> = rows
        .iter()
        .filter(|(_, value)| value.is_finite())
        .map(|&(time, value)| (seconds_between(first_time, time), value))
        .collect();
    let line = fit_line(&points)?;
    let fit = TrendFit {
        slope_per_second: line.slope,
        intercept_at_first: line.intercept,
        r_squared: line.r_squared,
        n: points.len(),
    };
    let fitted = rows
        .iter()
        .map(|&(time, _)| (time, line.value_at(seconds_between(first_time, time))))
        .collect();
    Some((fit, fitted))
}

/// How `forecast` models the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForecastMethod {
    /// Additive Holt-Winters: level, trend and, when a season is given, seasonality.
    HoltWinters,
    /// An ordinary least-squares line, extrapolated.
    Linear,
}

impl ForecastMethod {
    /// The method a query names: `'holt-winters'` or `'linear'`, in any case.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("holt-winters") {
            Some(Self::HoltWinters)
        } else if name.eq_ignore_ascii_case("linear") {
            Some(Self::Linear)
        } else {
            None
        }
    }
}

/// One predicted value with its approximate 95% prediction interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ForecastPoint {
    pub(crate) time: i64,
    pub(crate) value: f64,
    pub(crate) lower: f64,
    pub(crate) upper: f64,
}

/// Predicts the series at `t_last + k * interval_ns` for `k = 1, 2, ...` while the time is at
/// most `t_last + horizon_ns`, where `t_last` is the time of the last row with a finite value.
///
/// Rows are expected to be buckets of `interval_ns`; rows with non-finite values are ignored.
/// The models and their intervals are described on `linear_forecast` and
/// `holt_winters_forecast`. The error says what is wrong in words a person can act on.
pub(crate) fn forecast(
    rows: &[(i64, f64)],
    interval_ns: i64,
    horizon_ns: i64,
    method: ForecastMethod,
    season_ns: Option<i64>,
) -> Result<Vec<ForecastPoint>, String> {
    if interval_ns <= 0 {
        return Err(format!(
            "forecast needs a positive GROUP BY time interval; got {}",
            format_duration(interval_ns)
        ));
    }
    if horizon_ns <= 0 {
        return Err(format!(
            "forecast horizon must be positive; got {}",
            format_duration(horizon_ns)
        ));
    }
    let season_period = season_ns
        .map(|season| season_period_in_buckets(season, interval_ns))
        .transpose()?;
    let n_points = horizon_ns / interval_ns;
    if n_points.unsigned_abs() > MAX_FORECAST_POINTS {
        return Err(format!(
            "forecast horizon {} at a GROUP BY interval of {} would produce {n_points} points; \
             at most {MAX_FORECAST_POINTS} are allowed: shorten the horizon or widen the interval",
            format_duration(horizon_ns),
            format_duration(interval_ns)
        ));
    }

    let rows = strictly_increasing(rows);
    let finite_rows: Vec<(i64, f64)> = rows
        .iter()
        .copied()
        .filter(|(_, value)| value.is_finite())
        .collect();
    let Some(&(last_time, _)) = finite_rows.last() else {
        return Err(not_enough_rows_message(method, 0));
    };
    let mut times = Vec::new();
    for step in 1..=n_points {
        let time = step
            .checked_mul(interval_ns)
            .and_then(|offset| last_time.checked_add(offset))
            .ok_or_else(|| {
                format!(
                    "forecast times would run past the largest timestamp \
                     (the last row is at {last_time} ns): shorten the horizon"
                )
            })?;
        times.push(time);
    }

    match method {
        ForecastMethod::Linear => linear_forecast(&finite_rows, &times),
        ForecastMethod::HoltWinters => {
            holt_winters_forecast(&finite_rows, interval_ns, season_period, &times)
        }
    }
}

/// The robust z-score of each row against the `window` finite rows before it (trailing, not
/// including the row itself): `z = (v - median) / (1.4826 * MAD)`, where MAD is the median absolute
/// deviation from the median.
///
/// When more than half the window equals its median the MAD is 0; the mean absolute deviation
/// from the median times 1.2533 stands in for the standard deviation then, and when that is 0 too
/// (a flat window) `z` is 0 for a value equal to the median and +/- infinity for any other.
/// Rows with non-finite values produce no output and are not part of any window; rows before the
/// window is full produce no output. With `threshold`, only rows with `|z| > threshold` are
/// returned (a NaN threshold returns nothing). `window == 0` yields no rows.
pub(crate) fn anomaly(
    rows: &[(i64, f64)],
    window: usize,
    threshold: Option<f64>,
) -> Vec<(i64, f64)> {
    if window == 0 {
        return Vec::new();
    }
    let mut scores = Vec::new();
    // The window in arrival order, to know which value leaves, and sorted, for the median.
    // The window comes from the query text; the rows bound what it can really hold.
    let capacity = window.min(rows.len()).saturating_add(1);
    let mut arrivals: VecDeque<f64> = VecDeque::with_capacity(capacity);
    let mut sorted_window: Vec<f64> = Vec::with_capacity(capacity);
    for (time, value) in advancing_rows(rows) {
        if !value.is_finite() {
            continue;
        }
        if arrivals.len() == window {
            let z = robust_z_score(value, &sorted_window);
            if threshold.is_none_or(|threshold| z.abs() > threshold) {
                scores.push((time, z));
            }
            if let Some(leaving) = arrivals.pop_front()
                && let Ok(index) = sorted_window.binary_search_by(|probe| probe.total_cmp(&leaving))
            {
                sorted_window.remove(index);
            }
        }
        let index = sorted_window.partition_point(|probe| probe.total_cmp(&value).is_lt());
        sorted_window.insert(index, value);
        arrivals.push_back(value);
    }
    scores
}

/// `Some(row)` unless `non_negative` asks to drop a negative `value`.
fn keep_unless_negative(time: i64, value: f64, non_negative: bool) -> Option<(i64, f64)> {
    if non_negative && value < 0.0 {
        None
    } else {
        Some((time, value))
    }
}

/// The rows whose time is later than that of every row kept before them.
fn advancing_rows(rows: &[(i64, f64)]) -> impl Iterator<Item = (i64, f64)> + '_ {
    let mut last_time: Option<i64> = None;
    rows.iter().copied().filter(move |&(time, _)| {
        let advances = last_time.is_none_or(|last| time > last);
        if advances {
            last_time = Some(time);
        }
        advances
    })
}

/// The advancing rows, borrowed when the input already keeps the contract (the usual case).
fn strictly_increasing(rows: &[(i64, f64)]) -> Cow<'_, [(i64, f64)]> {
    if rows.windows(2).all(|pair| match pair {
        [(earlier, _), (later, _)] => earlier < later,
        _ => true,
    }) {
        Cow::Borrowed(rows)
    } else {
        Cow::Owned(advancing_rows(rows).collect())
    }
}

/// Each advancing row paired with the advancing row before it.
fn consecutive_pairs(rows: &[(i64, f64)]) -> impl Iterator<Item = ((i64, f64), (i64, f64))> + '_ {
    let mut previous: Option<(i64, f64)> = None;
    advancing_rows(rows).filter_map(move |row| {
        let pair = previous.map(|previous_row| (previous_row, row));
        previous = Some(row);
        pair
    })
}

/// `later - earlier` in seconds, negative when `later` comes first.
fn seconds_between(earlier: i64, later: i64) -> f64 {
    (i128::from(later) - i128::from(earlier)) as f64 / NANOS_PER_SECOND
}

/// A nanosecond duration in the largest query-language unit that divides it: `7d`, `90m`, `1500ms`.
fn format_duration(nanos: i64) -> String {
    const UNITS: [(i64, &str); 7] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "u"),
        (1, "ns"),
    ];
    UNITS
        .iter()
        .find(|(size, _)| nanos != 0 && nanos % size == 0)
        .map_or_else(
            || format!("{nanos}ns"),
            |(size, suffix)| format!("{}{suffix}", nanos / size),
        )
}

/// Maps values into [-1, 1] around the middle of their range and back.
///
/// The fits square and sum values; doing that on the mapped values cannot overflow, and the
/// fitted parameters of both models are unchanged by it (least squares and additive
/// Holt-Winters are equivariant under affine maps of the values).
#[derive(Debug, Clone, Copy)]
struct Normalisation {
    middle: f64,
    half_range: f64,
}

impl Normalisation {
    /// The map for these values; all must be finite.
    fn of(values: impl Iterator<Item = f64>) -> Self {
        let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), value| {
            (min.min(value), max.max(value))
        });
        // Halving before subtracting keeps both within range even for -f64::MAX and f64::MAX.
        let middle = min / 2.0 + max / 2.0;
        let half_range = max / 2.0 - min / 2.0;
        if half_range > 0.0 && middle.is_finite() {
            Self { middle, half_range }
        } else {
            // All values equal (or none): any positive scale maps them to 0.
            Self {
                middle: if middle.is_finite() { middle } else { 0.0 },
                half_range: 1.0,
            }
        }
    }

    fn value_to_unit(self, value: f64) -> f64 {
        (value - self.middle) / self.half_range
    }

    fn unit_to_value(self, unit_value: f64) -> f64 {
        self.middle + unit_value * self.half_range
    }
}

/// A least-squares line `value = intercept + slope * x`, with what its prediction intervals need.
#[derive(Debug, Clone, Copy)]
struct LineFit {
    slope: f64,
    intercept: f64,
    r_squared: f64,
    n: usize,
    x_mean: f64,
    /// Sum over the points of (x - x_mean)^2.
    x_spread: f64,
    /// Sum of squared residuals, in the values' units squared.
    residual_sum_of_squares: f64,
}

impl LineFit {
    fn value_at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// Ordinary least squares of y on x over finite points; `None` with fewer than two points, with
/// all x equal, or when the result is not finite.
fn fit_line(points: &[(f64, f64)]) -> Option<LineFit> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let scale = Normalisation::of(points.iter().map(|&(_, y)| y));
    let x_mean = points.iter().map(|&(x, _)| x).sum::<f64>() / n;
    let y_mean = points
        .iter()
        .map(|&(_, y)| scale.value_to_unit(y))
        .sum::<f64>()
        / n;
    let mut x_spread = 0.0;
    let mut covariance = 0.0;
    let mut y_spread = 0.0;
    for &(x, y) in points {
        let dx = x - x_mean;
        let dy = scale.value_to_unit(y) - y_mean;
        x_spread += dx * dx;
        covariance += dx * dy;
        y_spread += dy * dy;
    }
    if x_spread.is_nan() || x_spread <= 0.0 {
        return None;
    }
    let unit_slope = covariance / x_spread;
    let unit_intercept = y_mean - unit_slope * x_mean;
    let unit_residuals: f64 = points
        .iter()
        .map(|&(x, y)| {
            let residual = scale.value_to_unit(y) - (unit_intercept + unit_slope * x);
            residual * residual
        })
        .sum();
    let r_squared = if y_spread > 0.0 {
        (1.0 - unit_residuals / y_spread).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let fit = LineFit {
        slope: unit_slope * scale.half_range,
        intercept: scale.unit_to_value(unit_intercept),
        r_squared,
        n: points.len(),
        x_mean,
        x_spread,
        residual_sum_of_squares: unit_residuals * scale.half_range * scale.half_range,
    };
    (fit.slope.is_finite() && fit.intercept.is_finite() && fit.r_squared.is_finite()).then_some(fit)
}

/// The season in buckets of `interval_ns`, or why it cannot be used.
fn season_period_in_buckets(season_ns: i64, interval_ns: i64) -> Result<usize, String> {
    if season_ns <= 0 {
        return Err(format!(
            "forecast season must be positive; got {}",
            format_duration(season_ns)
        ));
    }
    if season_ns % interval_ns != 0 {
        return Err(format!(
            "forecast season {} is not a multiple of the GROUP BY interval {}",
            format_duration(season_ns),
            format_duration(interval_ns)
        ));
    }
    let period = season_ns / interval_ns;
    if period < 2 {
        return Err(format!(
            "forecast season {} must span at least two GROUP BY intervals of {}",
            format_duration(season_ns),
            format_duration(interval_ns)
        ));
    }
    Ok(usize::try_from(period).unwrap_or(usize::MAX))
}

fn not_enough_rows_message(method: ForecastMethod, found: usize) -> String {
    match method {
        ForecastMethod::Linear => format!(
            "linear forecast needs at least {MIN_LINEAR_FORECAST_ROWS} rows with a finite value; \
             found {found}"
        ),
        ForecastMethod::HoltWinters => format!(
            "holt-winters forecast needs at least {MIN_HOLT_WINTERS_BUCKETS} GROUP BY intervals \
             with a finite value; found {found}"
        ),
    }
}

/// The least-squares line through the rows, extrapolated to `times`, with the textbook
/// prediction interval `s * sqrt(1 + 1/n + (x - x_mean)^2 / Sxx)`, where `s` is the residual
/// standard error on `n - 2` degrees of freedom, scaled by the normal 95% quantile. Gaps between
/// rows need no filling: least squares takes the rows at their own times.
fn linear_forecast(
    finite_rows: &[(i64, f64)],
    times: &[i64],
) -> Result<Vec<ForecastPoint>, String> {
    let Some(&(first_time, _)) = finite_rows.first() else {
        return Err(not_enough_rows_message(ForecastMethod::Linear, 0));
    };
    if finite_rows.len() < MIN_LINEAR_FORECAST_ROWS {
        return Err(not_enough_rows_message(
            ForecastMethod::Linear,
            finite_rows.len(),
        ));
    }
    let points: Vec<(f64, f64)> = finite_rows
        .iter()
        .map(|&(time, value)| (seconds_between(first_time, time), value))
        .collect();
    let line = fit_line(&points).ok_or_else(|| {
        "linear forecast could not fit a line: the values are too large to fit in f64".to_string()
    })?;
    let degrees_of_freedom = (line.n - 2) as f64;
    let standard_error = (line.residual_sum_of_squares / degrees_of_freedom).sqrt();
    let n = line.n as f64;
    Ok(times
        .iter()
        .map(|&time| {
            let x = seconds_between(first_time, time);
            let value = line.value_at(x);
            let distance = x - line.x_mean;
            let spread = (1.0 + 1.0 / n + distance * distance / line.x_spread).sqrt();
            let half_width = NORMAL_QUANTILE_95 * standard_error * spread;
            ForecastPoint {
                time,
                value,
                lower: value - half_width,
                upper: value + half_width,
            }
        })
        .collect())
}

/// The rows as a regular series of buckets of `interval_ns` from the first row, in normalised
/// units: rows in the same bucket are averaged, and buckets without rows are interpolated
/// linearly between their neighbours. Also returns how many buckets had rows.
fn regular_buckets(
    finite_rows: &[(i64, f64)],
    interval_ns: i64,
    scale: Normalisation,
) -> Result<(Vec<f64>, usize), String> {
    let (Some(&(first_time, _)), Some(&(last_time, _))) = (finite_rows.first(), finite_rows.last())
    else {
        return Ok((Vec::new(), 0));
    };
    let interval = interval_ns.unsigned_abs();
    let n_buckets = first_time.abs_diff(last_time) / interval + 1;
    if n_buckets > MAX_FORECAST_FIT_BUCKETS {
        return Err(format!(
            "forecast input spans {n_buckets} GROUP BY intervals of {}; at most \
             {MAX_FORECAST_FIT_BUCKETS} can be fitted: narrow the time range or widen the interval",
            format_duration(interval_ns)
        ));
    }
    let n_buckets = usize::try_from(n_buckets).map_err(|_| {
        format!("forecast input spans {n_buckets} intervals, more than this machine can address")
    })?;
    let mut sums = vec![0.0; n_buckets];
    let mut counts = vec![0_u32; n_buckets];
    for &(time, value) in finite_rows {
        let index = usize::try_from(first_time.abs_diff(time) / interval).unwrap_or(usize::MAX);
        if let (Some(sum), Some(count)) = (sums.get_mut(index), counts.get_mut(index)) {
            *sum += scale.value_to_unit(value);
            *count += 1;
        }
    }
    let mut values = vec![f64::NAN; n_buckets];
    let mut previous_filled: Option<(usize, f64)> = None;
    let mut n_filled = 0;
    for (index, (&sum, &count)) in sums.iter().zip(&counts).enumerate() {
        if count == 0 {
            continue;
        }
        n_filled += 1;
        let value = sum / f64::from(count);
        if let Some((previous_index, previous_value)) = previous_filled {
            let gap = (index - previous_index) as f64;
            for (offset, slot) in values
                .iter_mut()
                .enumerate()
                .take(index)
                .skip(previous_index + 1)
            {
                let fraction = (offset - previous_index) as f64 / gap;
                *slot = previous_value + (value - previous_value) * fraction;
            }
        }
        if let Some(slot) = values.get_mut(index) {
            *slot = value;
        }
        previous_filled = Some((index, value));
    }
    Ok((values, n_filled))
}

/// Additive Holt-Winters (or Holt's linear trend method without a usable season) fitted to the
/// rows, forecast at `times`, one bucket of `interval_ns` apart after the last row.
///
/// The prediction interval is `1.96 * sigma * sqrt(k)` at step `k`, where `sigma` is the root
/// mean square of the in-sample one-step-ahead errors: it treats the errors of successive steps as
/// independent and adding up, which understates the growth of the trend's uncertainty far ahead.
fn holt_winters_forecast(
    finite_rows: &[(i64, f64)],
    interval_ns: i64,
    season_period: Option<usize>,
    times: &[i64],
) -> Result<Vec<ForecastPoint>, String> {
    let scale = Normalisation::of(finite_rows.iter().map(|&(_, value)| value));
    let (series, n_filled) = regular_buckets(finite_rows, interval_ns, scale)?;
    if n_filled < MIN_HOLT_WINTERS_BUCKETS {
        return Err(not_enough_rows_message(
            ForecastMethod::HoltWinters,
            n_filled,
        ));
    }
    // Seasonality needs two full seasons to separate the seasonal shape from the trend;
    // with less, the season is left out rather than guessed.
    let season = season_period
        .filter(|&period| series.len() / 2 >= period)
        .and_then(|period| SeasonStart::estimate(&series, period));
    let model = HoltWinters {
        series: &series,
        season: season.as_ref(),
    };
    let parameters = model.fit_parameters();
    let mut state = model.start_state();
    let fit = model.run(parameters, &mut state);
    let sigma = if fit.n_errors > 0 {
        (fit.sum_of_squared_errors / fit.n_errors as f64).sqrt()
    } else {
        0.0
    };
    Ok(times
        .iter()
        .zip(1_u32..)
        .map(|(&time, step)| {
            let value = scale.unit_to_value(model.predict(&state, step));
            let half_width = NORMAL_QUANTILE_95 * sigma * scale.half_range * f64::from(step).sqrt();
            ForecastPoint {
                time,
                value,
                lower: value - half_width,
                upper: value + half_width,
            }
        })
        .collect())
}

/// Smoothing parameters of Holt-Winters, each in (0, 1): level, trend and season.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SmoothingParameters {
    alpha: f64,
    beta: f64,
    gamma: f64,
}

/// The initial seasonal state, estimated from the first two seasons.
#[derive(Debug, Clone)]
struct SeasonStart {
    /// The level one bucket before the first.
    level_before_first: f64,
    trend: f64,
    /// The seasonal offset of each position in the season, summing to 0.
    offsets: Vec<f64>,
}

impl SeasonStart {
    /// Level and trend from the means of the first two seasons, and each position's offset as
    /// its average distance from that trend line over both seasons. `None` without two seasons.
    fn estimate(series: &[f64], period: usize) -> Option<Self> {
        let first_season = series.get(..period)?;
        let second_season = series.get(period..2 * period)?;
        let length = period as f64;
        let first_mean = first_season.iter().sum::<f64>() / length;
        let second_mean = second_season.iter().sum::<f64>() / length;
        let trend = (second_mean - first_mean) / length;
        // A season's mean is the trend line's value at the season's middle position.
        let middle = (length - 1.0) / 2.0;
        let mut offsets: Vec<f64> = first_season
            .iter()
            .zip(second_season)
            .enumerate()
            .map(|(position, (first, second))| {
                let from_middle = position as f64 - middle;
                let first_offset = first - (first_mean + trend * from_middle);
                let second_offset = second - (second_mean + trend * from_middle);
                (first_offset + second_offset) / 2.0
            })
            .collect();
        let offset_mean = offsets.iter().sum::<f64>() / length;
        for offset in &mut offsets {
            *offset -= offset_mean;
        }
        Some(Self {
            level_before_first: first_mean - trend * (middle + 1.0),
            trend,
            offsets,
        })
    }
}

/// The model's state after the last bucket it has seen.
#[derive(Debug, Clone)]
struct HoltWintersState {
    level: f64,
    trend: f64,
    /// Seasonal offsets indexed by bucket index modulo the period; empty without a season.
    offsets: Vec<f64>,
    /// The index of the last bucket seen.
    last_index: usize,
}

/// What one pass over the series measured.
#[derive(Debug, Clone, Copy)]
struct HoltWintersRun {
    sum_of_squared_errors: f64,
    n_errors: usize,
}

/// A series (in normalised units) and, when seasonal, its initial seasonal state.
struct HoltWinters<'a> {
    series: &'a [f64],
    season: Option<&'a SeasonStart>,
}

impl HoltWinters<'_> {
    /// The state before the first bucket the recursion updates: for Holt's method the first two
    /// buckets fix the level and trend, for the seasonal model the estimate from two seasons.
    fn start_state(&self) -> HoltWintersState {
        match self.season {
            Some(season) => HoltWintersState {
                level: season.level_before_first,
                trend: season.trend,
                offsets: season.offsets.clone(),
                last_index: 0,
            },
            None => {
                let first = self.series.first().copied().unwrap_or(0.0);
                let second = self.series.get(1).copied().unwrap_or(first);
                HoltWintersState {
                    level: second,
                    trend: second - first,
                    offsets: Vec::new(),
                    last_index: 1,
                }
            }
        }
    }

    /// Runs the recursion over the series from `state` (as made by `start_state`), leaving the
    /// final state in it, and returns the one-step-ahead squared errors.
    fn run(&self, parameters: SmoothingParameters, state: &mut HoltWintersState) -> HoltWintersRun {
        let SmoothingParameters { alpha, beta, gamma } = parameters;
        let first_updated = if self.season.is_some() { 0 } else { 2 };
        let mut sum_of_squared_errors = 0.0;
        let mut n_errors = 0;
        let period = state.offsets.len();
        for (index, &value) in self.series.iter().enumerate().skip(first_updated) {
            let position = if period > 0 { index % period } else { 0 };
            let offset = state.offsets.get(position).copied().unwrap_or(0.0);
            let predicted = state.level + state.trend + offset;
            let error = value - predicted;
            sum_of_squared_errors += error * error;
            n_errors += 1;
            let level = alpha * (value - offset) + (1.0 - alpha) * (state.level + state.trend);
            state.trend = beta * (level - state.level) + (1.0 - beta) * state.trend;
            state.level = level;
            if let Some(slot) = state.offsets.get_mut(position) {
                *slot = gamma * (value - level) + (1.0 - gamma) * *slot;
            }
            state.last_index = index;
        }
        HoltWintersRun {
            sum_of_squared_errors,
            n_errors,
        }
    }

    /// The forecast `steps` buckets after the last one seen.
    fn predict(&self, state: &HoltWintersState, steps: u32) -> f64 {
        let period = state.offsets.len();
        let offset = if period > 0 {
            let position = (state.last_index as u64 + u64::from(steps)) % period as u64;
            usize::try_from(position)
                .ok()
                .and_then(|position| state.offsets.get(position))
                .copied()
                .unwrap_or(0.0)
        } else {
            0.0
        };
        state.level + f64::from(steps) * state.trend + offset
    }

    /// The one-step-ahead sum of squared errors for these parameters; NaN counts as worst.
    fn objective(&self, parameters: SmoothingParameters) -> f64 {
        let mut state = self.start_state();
        let sum = self.run(parameters, &mut state).sum_of_squared_errors;
        if sum.is_nan() { f64::INFINITY } else { sum }
    }

    /// The smoothing parameters minimising the one-step-ahead squared error: the best point of a
    /// coarse grid, refined by Nelder-Mead on the logits of the parameters (which keeps them in
    /// (0, 1) without constraints). Deterministic: the same series always gives the same answer.
    fn fit_parameters(&self) -> SmoothingParameters {
        const GRID: [f64; 5] = [0.02, 0.1, 0.3, 0.6, 0.9];
        const MAX_EVALUATIONS: usize = 300;
        let seasonal = self.season.is_some();
        let dimensions = if seasonal { 3 } else { 2 };
        let to_parameters = |logits: &[f64]| {
            let at = |index: usize| logits.get(index).copied().map_or(0.1, logistic);
            SmoothingParameters {
                alpha: at(0),
                beta: at(1),
                gamma: if seasonal { at(2) } else { 0.0 },
            }
        };
        let gammas: &[f64] = if seasonal { &GRID } else { &[0.0] };
        let mut best = (
            f64::INFINITY,
            SmoothingParameters {
                alpha: 0.3,
                beta: 0.1,
                gamma: if seasonal { 0.1 } else { 0.0 },
            },
        );
        for &alpha in &GRID {
            for &beta in &GRID {
                for &gamma in gammas {
                    let parameters = SmoothingParameters { alpha, beta, gamma };
                    let value = self.objective(parameters);
                    if value < best.0 {
                        best = (value, parameters);
                    }
                }
            }
        }
        let start: Vec<f64> = [best.1.alpha, best.1.beta, best.1.gamma]
            .into_iter()
            .take(dimensions)
            .map(logit)
            .collect();
        let refined = nelder_mead(
            |logits| self.objective(to_parameters(logits)),
            &start,
            MAX_EVALUATIONS,
        );
        if self.objective(to_parameters(&refined)) <= best.0 {
            to_parameters(&refined)
        } else {
            best.1
        }
    }
}

/// Maps the real line onto (0, 1), kept a little inside so a parameter never reaches 0 or 1.
fn logistic(logit: f64) -> f64 {
    (1.0 / (1.0 + (-logit).exp())).clamp(1e-4, 1.0 - 1e-4)
}

fn logit(probability: f64) -> f64 {
    let probability = probability.clamp(1e-4, 1.0 - 1e-4);
    (probability / (1.0 - probability)).ln()
}

/// Minimises `objective` with the Nelder-Mead simplex method from `start`, with the standard
/// coefficients (reflection 1, expansion 2, contraction 1/2, shrink 1/2), stopping after
/// `max_evaluations` or when the simplex's values agree to 1e-12 relative.
fn nelder_mead(
    mut objective: impl FnMut(&[f64]) -> f64,
    start: &[f64],
    max_evaluations: usize,
) -> Vec<f64> {
    let dimensions = start.len();
    let evaluations = std::cell::Cell::new(0_usize);
    let mut evaluate = |point: &[f64]| {
        evaluations.set(evaluations.get() + 1);
        let value = objective(point);
        if value.is_nan() { f64::INFINITY } else { value }
    };
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(dimensions + 1);
    simplex.push((start.to_vec(), evaluate(start)));
    for axis in 0..dimensions {
        let mut vertex = start.to_vec();
        if let Some(coordinate) = vertex.get_mut(axis) {
            *coordinate += 1.0;
        }
        let value = evaluate(&vertex);
        simplex.push((vertex, value));
    }
    let combine = |from: &[f64], to: &[f64], factor: f64| -> Vec<f64> {
        from.iter()
            .zip(to)
            .map(|(from, to)| from + factor * (to - from))
            .collect()
    };
    loop {
        simplex.sort_by(|left, right| left.1.total_cmp(&right.1));
        let (Some(best), Some(worst)) = (simplex.first(), simplex.last()) else {
            return start.to_vec();
        };
        let (best_value, worst_value) = (best.1, worst.1);
        let second_worst_value = simplex
            .len()
            .checked_sub(2)
            .and_then(|index| simplex.get(index))
            .map_or(worst_value, |vertex| vertex.1);
        let converged = worst_value - best_value <= 1e-12 * (best_value.abs() + 1e-30);
        if converged || evaluations.get() >= max_evaluations {
            return best.0.clone();
        }
        let worst_point = worst.0.clone();
        let mut centroid = vec![0.0; dimensions];
        for (vertex, _) in simplex.iter().take(dimensions) {
            for (sum, coordinate) in centroid.iter_mut().zip(vertex) {
                *sum += coordinate / dimensions as f64;
            }
        }
        let reflected = combine(&centroid, &worst_point, -1.0);
        let reflected_value = evaluate(&reflected);
        let replacement = if reflected_value < best_value {
            let expanded = combine(&centroid, &worst_point, -2.0);
            let expanded_value = evaluate(&expanded);
            Some(if expanded_value < reflected_value {
                (expanded, expanded_value)
            } else {
                (reflected, reflected_value)
            })
        } else if reflected_value < second_worst_value {
            Some((reflected, reflected_value))
        } else if reflected_value < worst_value {
            let contracted = combine(&centroid, &reflected, 0.5);
            let contracted_value = evaluate(&contracted);
            (contracted_value <= reflected_value).then_some((contracted, contracted_value))
        } else {
            let contracted = combine(&centroid, &worst_point, 0.5);
            let contracted_value = evaluate(&contracted);
            (contracted_value < worst_value).then_some((contracted, contracted_value))
        };
        match replacement {
            Some(vertex) => {
                if let Some(last) = simplex.last_mut() {
                    *last = vertex;
                }
            }
            None => {
                let best_point = best.0.clone();
                for vertex in simplex.iter_mut().skip(1) {
                    let shrunk = combine(&best_point, &vertex.0, 0.5);
                    let value = evaluate(&shrunk);
                    *vertex = (shrunk, value);
                }
            }
        }
    }
}

/// The robust z-score of `value` against a non-empty window of finite values sorted ascending.
fn robust_z_score(value: f64, sorted_window: &[f64]) -> f64 {
    let Some(median) = median_of_sorted(sorted_window) else {
        return 0.0;
    };
    let distance = value - median;
    let median_deviation = median_absolute_deviation(sorted_window, median);
    if median_deviation > 0.0 {
        return distance / median_deviation / MEDIAN_ABSOLUTE_DEVIATION_TO_SIGMA;
    }
    let length = sorted_window.len() as f64;
    let mean_deviation = sorted_window
        .iter()
        .map(|x| (x - median).abs() / length)
        .sum::<f64>();
    if mean_deviation > 0.0 {
        distance / mean_deviation / MEAN_ABSOLUTE_DEVIATION_TO_SIGMA
    } else if distance == 0.0 {
        0.0
    } else {
        f64::INFINITY.copysign(distance)
    }
}

fn median_of_sorted(sorted: &[f64]) -> Option<f64> {
    let middle = sorted.len() / 2;
    let upper = *sorted.get(middle)?;
    if sorted.len() % 2 == 1 {
        return Some(upper);
    }
    let lower = *sorted.get(middle.checked_sub(1)?)?;
    // Halving first cannot overflow, and the result lies between the two.
    Some(lower / 2.0 + upper / 2.0)
}

/// The median of `|x - median|` over a sorted window, in O(log n).
///
/// Split at the middle, the deviations of the lower half read backwards and those of the upper
/// half read forwards are each ascending, so the median deviation is an order statistic of two
/// sorted sequences, found by binary search without building either.
fn median_absolute_deviation(sorted: &[f64], median: f64) -> f64 {
    let split = sorted.len() / 2;
    let (lower, upper) = sorted.split_at(split);
    let lower_deviation = |index: usize| {
        lower
            .len()
            .checked_sub(index + 1)
            .and_then(|i| lower.get(i))
            .map_or(0.0, |x| median - x)
    };
    let upper_deviation = |index: usize| upper.get(index).map_or(0.0, |x| x - median);
    let kth = |k: usize| {
        kth_smallest_of_two_sorted(
            &lower_deviation,
            lower.len(),
            &upper_deviation,
            upper.len(),
            k,
        )
    };
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        kth(middle)
    } else {
        let below = middle.checked_sub(1).map_or(0.0, kth);
        below / 2.0 + kth(middle) / 2.0
    }
}

/// The `k`-th smallest (from 0) of the union of two ascending sequences given by index, with
/// `k < first_len + second_len`.
fn kth_smallest_of_two_sorted(
    first: &dyn Fn(usize) -> f64,
    first_len: usize,
    second: &dyn Fn(usize) -> f64,
    second_len: usize,
    k: usize,
) -> f64 {
    // Find how many of the k + 1 smallest come from `first`: the least count `taken` for which
    // the next element of `first` is not below the last element taken from `second`.
    let mut low = (k + 1).saturating_sub(second_len);
    let mut high = first_len.min(k + 1);
    while low < high {
        let taken = low + (high - low) / 2;
        let taken_from_second = k + 1 - taken;
        if first(taken) < second(taken_from_second - 1) {
            low = taken + 1;
        } else {
            high = taken;
        }
    }
    let taken_from_second = k + 1 - low;
    let last_of_first = low.checked_sub(1).map(first);
    let last_of_second = taken_from_second.checked_sub(1).map(second);
    match (last_of_first, last_of_second) {
        (Some(a), Some(b)) => a.max(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECOND: i64 = 1_000_000_000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "expected {expected}, got {actual} (tolerance {tolerance})"
        );
    }

    fn assert_rows_close(actual: &[(i64, f64)], expected: &[(i64, f64)]) {
        assert_eq!(
            actual.len(),
            expected.len(),
            "row counts differ: {actual:?} vs {expected:?}"
        );
        for (&(actual_time, actual_value), &(expected_time, expected_value)) in
            actual.iter().zip(expected)
        {
            assert_eq!(actual_time, expected_time);
            assert_close(
                actual_value,
                expected_value,
                1e-9 * expected_value.abs().max(1.0),
            );
        }
    }

    /// A deterministic uniform generator in [-1, 1) (splitmix64), so tests need no seed files.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 11) as f64 / (1_u64 << 52) as f64 - 1.0
        }
    }

    #[test]
    fn derivative_divides_by_uneven_gaps_in_the_requested_unit() {
        let rows = [(0, 0.0), (2 * SECOND, 10.0), (5 * SECOND, 13.0)];
        assert_rows_close(
            &derivative(&rows, SECOND, false),
            &[(2 * SECOND, 5.0), (5 * SECOND, 1.0)],
        );
        assert_rows_close(
            &derivative(&rows, MINUTE, false),
            &[(2 * SECOND, 300.0), (5 * SECOND, 60.0)],
        );
        assert_rows_close(
            &derivative(&rows, 500_000_000, false),
            &[(2 * SECOND, 2.5), (5 * SECOND, 0.5)],
        );
    }

    #[test]
    fn non_negative_derivative_drops_decreases_but_measures_from_the_dropped_row() {
        let rows = [(0, 10.0), (SECOND, 4.0), (3 * SECOND, 8.0)];
        assert_rows_close(
            &derivative(&rows, SECOND, false),
            &[(SECOND, -6.0), (3 * SECOND, 2.0)],
        );
        assert_rows_close(&derivative(&rows, SECOND, true), &[(3 * SECOND, 2.0)]);
    }

    #[test]
    fn derivative_of_fewer_than_two_rows_or_a_bad_unit_is_empty() {
        assert!(derivative(&[], SECOND, false).is_empty());
        assert!(derivative(&[(5, 1.0)], SECOND, false).is_empty());
        assert!(derivative(&[(0, 1.0), (SECOND, 2.0)], 0, false).is_empty());
        assert!(derivative(&[(0, 1.0), (SECOND, 2.0)], -SECOND, false).is_empty());
    }

    #[test]
    fn derivative_skips_rows_that_repeat_a_timestamp() {
        let rows = [(0, 1.0), (SECOND, 3.0), (SECOND, 100.0), (2 * SECOND, 4.0)];
        assert_rows_close(
            &derivative(&rows, SECOND, false),
            &[(SECOND, 2.0), (2 * SECOND, 1.0)],
        );
    }

    #[test]
    fn derivative_propagates_nan_and_keeps_it_when_non_negative() {
        let rows = [(0, 1.0), (SECOND, f64::NAN), (2 * SECOND, 4.0)];
        for non_negative in [false, true] {
            let result = derivative(&rows, SECOND, non_negative);
            assert_eq!(result.len(), 2);
            assert!(result.iter().all(|(_, value)| value.is_nan()));
        }
        let infinite = derivative(&[(0, 1.0), (SECOND, f64::INFINITY)], SECOND, false);
        assert_eq!(infinite, vec![(SECOND, f64::INFINITY)]);
    }

    #[test]
    fn difference_subtracts_consecutive_values() {
        let rows = [(1, 5.0), (2, 3.0), (4, 10.0), (8, 10.5)];
        assert_rows_close(&difference(&rows, false), &[(2, -2.0), (4, 7.0), (8, 0.5)]);
        assert_rows_close(&difference(&rows, true), &[(4, 7.0), (8, 0.5)]);
        assert!(difference(&rows[..1], false).is_empty());
    }

    #[test]
    fn rate_counts_the_new_value_as_the_increase_after_a_counter_reset() {
        // 100 -> 160 over 10s: 6/s; reset to 30 over 10s: 3/s; 30 -> 60 over 5s: 6/s.
        let rows = [
            (0, 100.0),
            (10 * SECOND, 160.0),
            (20 * SECOND, 30.0),
            (25 * SECOND, 60.0),
        ];
        assert_rows_close(
            &rate(&rows, SECOND),
            &[(10 * SECOND, 6.0), (20 * SECOND, 3.0), (25 * SECOND, 6.0)],
        );
        assert_rows_close(
            &rate(&rows, MINUTE),
            &[
                (10 * SECOND, 360.0),
                (20 * SECOND, 180.0),
                (25 * SECOND, 360.0),
            ],
        );
    }

    #[test]
    fn rate_drops_a_fall_to_a_negative_value_instead_of_reporting_a_negative_rate() {
        let rows = [(0, 5.0), (SECOND, -3.0), (2 * SECOND, -1.0)];
        assert_rows_close(&rate(&rows, SECOND), &[(2 * SECOND, 2.0)]);
    }

    #[test]
    fn rate_of_a_flat_counter_is_zero() {
        let rows = [(0, 7.0), (SECOND, 7.0), (3 * SECOND, 7.0)];
        assert_rows_close(&rate(&rows, SECOND), &[(SECOND, 0.0), (3 * SECOND, 0.0)]);
    }

    #[test]
    fn moving_average_averages_each_window_and_omits_the_first_rows() {
        let rows = [(1, 1.0), (2, 2.0), (3, 6.0), (4, 3.0), (5, 8.0), (6, -5.0)];
        assert_rows_close(
            &moving_average(&rows, 3),
            &[(3, 3.0), (4, 11.0 / 3.0), (5, 17.0 / 3.0), (6, 2.0)],
        );
        assert_rows_close(&moving_average(&rows, 1), &rows);
        assert_rows_close(&moving_average(&rows, 6), &[(6, 15.0 / 6.0)]);
        assert!(moving_average(&rows, 7).is_empty());
        assert!(moving_average(&rows, 0).is_empty());
    }

    #[test]
    fn moving_average_confines_nan_and_huge_values_to_their_windows() {
        let rows = [
            (1, 1.0),
            (2, f64::NAN),
            (3, 1e300),
            (4, 2.0),
            (5, 4.0),
            (6, 6.0),
        ];
        let result = moving_average(&rows, 2);
        assert_eq!(result.len(), 5);
        assert!(result.first().is_some_and(|row| row.1.is_nan()));
        assert!(result.get(1).is_some_and(|row| row.1.is_nan()));
        assert_rows_close(
            result.get(2..).unwrap_or_default(),
            &[(4, 5e299), (5, 3.0), (6, 5.0)],
        );
    }

    #[test]
    fn cumulative_sum_adds_up_each_row() {
        let rows = [(1, 1.5), (2, -0.5), (5, 4.0)];
        assert_rows_close(&cumulative_sum(&rows), &[(1, 1.5), (2, 1.0), (5, 5.0)]);
        assert!(cumulative_sum(&[]).is_empty());
    }

    #[test]
    fn cumulative_sum_keeps_small_increments_next_to_a_large_value() {
        // A plain sum would lose every 1.0 added to 1e16 and end at 0 after the -1e16.
        let mut rows = vec![(0, 1e16)];
        rows.extend((1..=10).map(|index| (index, 1.0)));
        rows.push((11, -1e16));
        let result = cumulative_sum(&rows);
        assert_eq!(result.last(), Some(&(11, 10.0)));
    }

    #[test]
    fn cumulative_sum_stays_nan_after_a_nan() {
        let result = cumulative_sum(&[(1, 1.0), (2, f64::NAN), (3, 1.0)]);
        assert_eq!(result.first(), Some(&(1, 1.0)));
        assert!(result.iter().skip(1).all(|(_, value)| value.is_nan()));
    }

    #[test]
    fn elapsed_divides_gaps_by_the_unit_rounding_down() {
        let times = [0, 1_500 * 1_000_000, 4 * SECOND, 4 * SECOND + 1];
        assert_eq!(
            elapsed(&times, SECOND),
            vec![(1_500_000_000, 1), (4 * SECOND, 2), (4 * SECOND + 1, 0)]
        );
        assert_eq!(
            elapsed(&times, 1),
            vec![
                (1_500_000_000, 1_500_000_000),
                (4 * SECOND, 2_500_000_000),
                (4 * SECOND + 1, 1)
            ]
        );
        assert!(elapsed(&times, 0).is_empty());
        assert!(elapsed(&[7], SECOND).is_empty());
    }

    #[test]
    fn elapsed_across_the_whole_i64_range_saturates() {
        assert_eq!(
            elapsed(&[i64::MIN, i64::MAX], 1),
            vec![(i64::MAX, i64::MAX)]
        );
        assert_eq!(
            elapsed(&[i64::MIN, i64::MAX], 2),
            vec![(i64::MAX, i64::MAX)]
        );
        assert_eq!(
            elapsed(&[i64::MIN, i64::MAX], 4),
            vec![(i64::MAX, i64::MAX / 2)]
        );
    }

    #[test]
    fn trend_recovers_a_perfect_line_exactly() {
        // 3 + 2 per second, sampled at uneven times far from the epoch.
        let base = 1_700_000_000 * SECOND;
        let rows: Vec<(i64, f64)> = [0, 1, 3, 7, 20]
            .iter()
            .map(|&seconds| (base + seconds * SECOND, 3.0 + 2.0 * seconds as f64))
            .collect();
        let Some((fit, fitted)) = trend(&rows) else {
            panic!("a five-point line must fit");
        };
        assert_close(fit.slope_per_second, 2.0, 1e-12);
        assert_close(fit.intercept_at_first, 3.0, 1e-12);
        assert_close(fit.r_squared, 1.0, 1e-12);
        assert_eq!(fit.n, 5);
        assert_rows_close(&fitted, &rows);
    }

    #[test]
    fn trend_matches_a_hand_computed_fit_on_scattered_values() {
        // x = 0..3 s, y = 1, 3, 2, 4: slope 4/5, intercept 1.3, SSE 1.8, SST 5, r^2 0.64.
        let rows = [
            (0, 1.0),
            (SECOND, 3.0),
            (2 * SECOND, 2.0),
            (3 * SECOND, 4.0),
        ];
        let Some((fit, fitted)) = trend(&rows) else {
            panic!("four points must fit");
        };
        assert_close(fit.slope_per_second, 0.8, 1e-12);
        assert_close(fit.intercept_at_first, 1.3, 1e-12);
        assert_close(fit.r_squared, 0.64, 1e-12);
        assert_rows_close(
            &fitted,
            &[
                (0, 1.3),
                (SECOND, 2.1),
                (2 * SECOND, 2.9),
                (3 * SECOND, 3.7),
            ],
        );
    }

    #[test]
    fn trend_of_pure_noise_is_flat_with_small_r_squared() {
        let mut noise = Noise(7);
        let rows: Vec<(i64, f64)> = (0..2_000)
            .map(|index| (index * MINUTE, 50.0 + noise.next()))
            .collect();
        let Some((fit, _)) = trend(&rows) else {
            panic!("noise must fit");
        };
        // Over 2000 minutes, a slope of 1e-6 per second is a drift of 0.12, a tenth of the noise.
        assert!(
            fit.slope_per_second.abs() < 1e-6,
            "slope {}",
            fit.slope_per_second
        );
        assert!(fit.r_squared < 0.01, "r^2 {}", fit.r_squared);
        assert_close(fit.intercept_at_first, 50.0, 0.1);
    }

    #[test]
    fn trend_ignores_non_finite_rows_but_reports_the_line_at_their_times() {
        let rows = [
            (0, f64::NAN),
            (SECOND, 1.0),
            (2 * SECOND, f64::INFINITY),
            (3 * SECOND, 5.0),
        ];
        let Some((fit, fitted)) = trend(&rows) else {
            panic!("two finite rows must fit");
        };
        assert_close(fit.slope_per_second, 2.0, 1e-12);
        assert_close(fit.intercept_at_first, 1.0, 1e-12);
        assert_eq!(fit.n, 2);
        assert_rows_close(
            &fitted,
            &[
                (0, -1.0),
                (SECOND, 1.0),
                (2 * SECOND, 3.0),
                (3 * SECOND, 5.0),
            ],
        );
    }

    #[test]
    fn trend_needs_two_finite_rows() {
        assert!(trend(&[]).is_none());
        assert!(trend(&[(0, 1.0)]).is_none());
        assert!(trend(&[(0, 1.0), (1, f64::NAN)]).is_none());
        assert!(trend(&[(0, 1.0), (0, 2.0)]).is_none());
    }

    #[test]
    fn trend_of_a_constant_series_is_flat_with_r_squared_one() {
        let Some((fit, _)) = trend(&[(0, 4.0), (SECOND, 4.0), (5 * SECOND, 4.0)]) else {
            panic!("three points must fit");
        };
        assert_eq!(fit.slope_per_second, 0.0);
        assert_eq!(fit.intercept_at_first, 4.0);
        assert_eq!(fit.r_squared, 1.0);
    }

    #[test]
    fn trend_handles_values_whose_squares_overflow() {
        let rows = [(0, -1e300), (SECOND, 0.0), (2 * SECOND, 1e300)];
        let Some((fit, _)) = trend(&rows) else {
            panic!("large values must still fit");
        };
        assert_close(fit.slope_per_second, 1e300, 1e288);
        assert_close(fit.r_squared, 1.0, 1e-12);
    }

    #[test]
    fn linear_forecast_of_a_straight_line_is_exact_with_a_narrow_interval() {
        let rows: Vec<(i64, f64)> = (0..20)
            .map(|hour| (hour * HOUR, 10.0 + 0.5 * hour as f64))
            .collect();
        let Ok(points) = forecast(&rows, HOUR, 5 * HOUR, ForecastMethod::Linear, None) else {
            panic!("a 20-row line must forecast");
        };
        assert_eq!(points.len(), 5);
        for (point, step) in points.iter().zip(1..) {
            let hour = 19 + step;
            assert_eq!(point.time, hour * HOUR);
            assert_close(point.value, 10.0 + 0.5 * hour as f64, 1e-9);
            assert!(point.lower <= point.value && point.value <= point.upper);
            assert!(point.upper - point.lower < 1e-9, "interval {point:?}");
        }
    }

    #[test]
    fn linear_forecast_interval_matches_the_textbook_formula() {
        // x = 0, 1, 2, 3 hours; y = 1, 3, 2, 4. Slope 0.8 per hour, intercept 1.3, SSE 1.8,
        // s = sqrt(1.8 / 2), Sxx = 5 hours^2; at x = 4: value 4.5, spread sqrt(1 + 1/4 + 6.25/5).
        let rows = [(0, 1.0), (HOUR, 3.0), (2 * HOUR, 2.0), (3 * HOUR, 4.0)];
        let Ok(points) = forecast(&rows, HOUR, HOUR, ForecastMethod::Linear, None) else {
            panic!("four rows must forecast");
        };
        let [point] = points.as_slice() else {
            panic!("one step expected, got {points:?}");
        };
        let half_width =
            1.959_963_984_540_054 * (0.9_f64).sqrt() * (1.0 + 0.25 + 6.25 / 5.0_f64).sqrt();
        assert_eq!(point.time, 4 * HOUR);
        assert_close(point.value, 4.5, 1e-12);
        assert_close(point.upper - point.value, half_width, 1e-12);
        assert_close(point.value - point.lower, half_width, 1e-12);
    }

    fn seasonal_truth(hour: i64) -> f64 {
        let phase = 2.0 * std::f64::consts::PI * hour as f64 / 24.0;
        50.0 + 0.2 * hour as f64 + 10.0 * phase.sin()
    }

    #[test]
    fn holt_winters_recovers_a_seasonal_series_and_beats_a_line() {
        let mut noise = Noise(42);
        let rows: Vec<(i64, f64)> = (0..240)
            .map(|hour| (hour * HOUR, seasonal_truth(hour) + 0.5 * noise.next()))
            .collect();
        let forecast_with = |method| forecast(&rows, HOUR, 48 * HOUR, method, Some(DAY));
        let (Ok(holt_winters), Ok(linear)) = (
            forecast_with(ForecastMethod::HoltWinters),
            forecast_with(ForecastMethod::Linear),
        ) else {
            panic!("both methods must forecast ten days of hourly rows");
        };
        assert_eq!(holt_winters.len(), 48);
        let mean_absolute_error = |points: &[ForecastPoint]| {
            points
                .iter()
                .map(|point| (point.value - seasonal_truth(point.time / HOUR)).abs())
                .sum::<f64>()
                / points.len() as f64
        };
        let holt_winters_error = mean_absolute_error(&holt_winters);
        let linear_error = mean_absolute_error(&linear);
        // Measured: about 0.09 for Holt-Winters, 6.4 for the line, which cannot follow the sine.
        assert!(
            holt_winters_error < 0.5,
            "holt-winters error {holt_winters_error}"
        );
        assert!(
            holt_winters_error * 10.0 < linear_error,
            "holt-winters {holt_winters_error} vs linear {linear_error}"
        );
        let covered = holt_winters
            .iter()
            .filter(|point| {
                let truth = seasonal_truth(point.time / HOUR);
                point.lower <= truth && truth <= point.upper
            })
            .count();
        assert!(
            covered >= 45,
            "only {covered} of 48 intervals hold the true value"
        );
    }

    #[test]
    fn holt_winters_without_a_season_extends_a_straight_line() {
        let rows: Vec<(i64, f64)> = (0..10)
            .map(|day| (day * DAY, 100.0 - 3.0 * day as f64))
            .collect();
        let Ok(points) = forecast(&rows, DAY, 3 * DAY, ForecastMethod::HoltWinters, None) else {
            panic!("ten rows must forecast");
        };
        assert_eq!(points.len(), 3);
        for (point, day) in points.iter().zip(10..) {
            assert_eq!(point.time, day * DAY);
            assert_close(point.value, 100.0 - 3.0 * day as f64, 1e-9);
            assert!(point.upper - point.lower < 1e-9, "interval {point:?}");
        }
    }

    #[test]
    fn forecast_interpolates_missing_buckets_before_fitting() {
        // A line with buckets 3, 4 and 7 missing: interpolation restores it exactly.
        let rows: Vec<(i64, f64)> = (0..12)
            .filter(|hour| ![3, 4, 7].contains(hour))
            .map(|hour| (hour * HOUR, 2.0 * hour as f64))
            .collect();
        for method in [ForecastMethod::HoltWinters, ForecastMethod::Linear] {
            let Ok(points) = forecast(&rows, HOUR, 2 * HOUR, method, None) else {
                panic!("{method:?} must forecast a line with gaps");
            };
            let values: Vec<f64> = points.iter().map(|point| point.value).collect();
            assert_eq!(values.len(), 2);
            assert_close(values.first().copied().unwrap_or(f64::NAN), 24.0, 1e-9);
            assert_close(values.get(1).copied().unwrap_or(f64::NAN), 26.0, 1e-9);
        }
    }

    #[test]
    fn holt_winters_with_less_than_two_seasons_falls_back_to_holt() {
        let mut noise = Noise(3);
        let rows: Vec<(i64, f64)> = (0..30)
            .map(|hour| (hour * HOUR, seasonal_truth(hour) + noise.next()))
            .collect();
        let seasonal = forecast(
            &rows,
            HOUR,
            6 * HOUR,
            ForecastMethod::HoltWinters,
            Some(DAY),
        );
        let plain = forecast(&rows, HOUR, 6 * HOUR, ForecastMethod::HoltWinters, None);
        assert!(seasonal.is_ok());
        assert_eq!(seasonal, plain);
    }

    #[test]
    fn forecast_of_a_constant_series_is_that_constant_with_no_spread() {
        let rows: Vec<(i64, f64)> = (0..8).map(|minute| (minute * MINUTE, 0.25)).collect();
        for method in [ForecastMethod::HoltWinters, ForecastMethod::Linear] {
            let Ok(points) = forecast(&rows, MINUTE, 3 * MINUTE, method, Some(2 * MINUTE)) else {
                panic!("{method:?} must forecast a constant");
            };
            assert_eq!(points.len(), 3);
            for point in points {
                assert_close(point.value, 0.25, 1e-12);
                assert_close(point.upper - point.lower, 0.0, 1e-12);
            }
        }
    }

    #[test]
    fn forecast_ignores_non_finite_rows_and_starts_after_the_last_finite_one() {
        let mut rows: Vec<(i64, f64)> = (0..6).map(|hour| (hour * HOUR, hour as f64)).collect();
        rows.insert(3, (2 * HOUR + 1, f64::NAN));
        rows.push((6 * HOUR, f64::INFINITY));
        let Ok(points) = forecast(&rows, HOUR, 2 * HOUR, ForecastMethod::Linear, None) else {
            panic!("six finite rows must forecast");
        };
        let times: Vec<i64> = points.iter().map(|point| point.time).collect();
        assert_eq!(times, vec![6 * HOUR, 7 * HOUR]);
        assert_close(
            points.first().map_or(f64::NAN, |point| point.value),
            6.0,
            1e-9,
        );
    }

    #[test]
    fn forecast_names_the_minimum_when_there_are_too_few_rows() {
        let rows = [(0, 1.0), (HOUR, 2.0)];
        assert_eq!(
            forecast(&rows, HOUR, HOUR, ForecastMethod::Linear, None),
            Err("linear forecast needs at least 3 rows with a finite value; found 2".to_string())
        );
        assert_eq!(
            forecast(&rows, HOUR, HOUR, ForecastMethod::HoltWinters, None),
            Err(
                "holt-winters forecast needs at least 4 GROUP BY intervals with a finite value; \
                 found 2"
                    .to_string()
            )
        );
        assert!(forecast(&[], HOUR, HOUR, ForecastMethod::Linear, None).is_err());
    }

    #[test]
    fn forecast_rejects_a_season_that_is_not_a_multiple_of_the_interval() {
        let rows: Vec<(i64, f64)> = (0..10).map(|hour| (hour * HOUR, 1.0)).collect();
        assert_eq!(
            forecast(
                &rows,
                HOUR,
                HOUR,
                ForecastMethod::HoltWinters,
                Some(90 * MINUTE)
            ),
            Err("forecast season 90m is not a multiple of the GROUP BY interval 1h".to_string())
        );
        assert!(forecast(&rows, HOUR, HOUR, ForecastMethod::HoltWinters, Some(HOUR)).is_err());
        assert!(forecast(&rows, HOUR, HOUR, ForecastMethod::HoltWinters, Some(-DAY)).is_err());
    }

    #[test]
    fn forecast_rejects_a_horizon_of_more_than_100000_points() {
        let rows: Vec<(i64, f64)> = (0..10).map(|second| (second * SECOND, 1.0)).collect();
        assert_eq!(
            forecast(
                &rows,
                SECOND,
                100_001 * SECOND,
                ForecastMethod::Linear,
                None
            ),
            Err(
                "forecast horizon 100001s at a GROUP BY interval of 1s would produce 100001 \
                 points; at most 100000 are allowed: shorten the horizon or widen the interval"
                    .to_string()
            )
        );
        let Ok(points) = forecast(
            &rows,
            SECOND,
            100_000 * SECOND,
            ForecastMethod::Linear,
            None,
        ) else {
            panic!("exactly 100000 points are allowed");
        };
        assert_eq!(points.len(), 100_000);
    }

    #[test]
    fn forecast_rejects_non_positive_intervals_and_horizons_and_timestamp_overflow() {
        let rows: Vec<(i64, f64)> = (0..10).map(|hour| (hour * HOUR, 1.0)).collect();
        assert!(forecast(&rows, 0, HOUR, ForecastMethod::Linear, None).is_err());
        assert!(forecast(&rows, HOUR, 0, ForecastMethod::Linear, None).is_err());
        let late: Vec<(i64, f64)> = (0..10).map(|step| (i64::MAX - 20 + step, 1.0)).collect();
        assert!(forecast(&late, 1, 50, ForecastMethod::Linear, None).is_err());
    }

    #[test]
    fn forecast_with_a_horizon_shorter_than_the_interval_is_empty() {
        let rows: Vec<(i64, f64)> = (0..10).map(|hour| (hour * HOUR, 1.0)).collect();
        assert_eq!(
            forecast(&rows, HOUR, 30 * MINUTE, ForecastMethod::HoltWinters, None),
            Ok(Vec::new())
        );
    }

    #[test]
    fn forecast_rejects_a_span_of_too_many_buckets() {
        let rows = [(0, 1.0), (1, 2.0), (2, 3.0), (2_000_000, 4.0)];
        let Err(message) = forecast(&rows, 1, 1, ForecastMethod::HoltWinters, None) else {
            panic!("two million one-nanosecond buckets must be refused");
        };
        assert!(message.contains("2000001 GROUP BY intervals"), "{message}");
    }

    #[test]
    fn forecast_method_names_match_the_function_table() {
        assert_eq!(
            ForecastMethod::from_name("Holt-Winters"),
            Some(ForecastMethod::HoltWinters)
        );
        assert_eq!(
            ForecastMethod::from_name("linear"),
            Some(ForecastMethod::Linear)
        );
        assert_eq!(ForecastMethod::from_name("holtwinters"), None);
    }

    #[test]
    fn anomaly_scores_against_the_median_and_scaled_mad_of_the_window_before() {
        // Window 1..5: median 3, MAD 1; 10 scores 7 / 1.4826.
        let rows = [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0), (6, 10.0)];
        assert_rows_close(&anomaly(&rows, 5, None), &[(6, 7.0 / 1.4826)]);
        // Window of 4 (2, 3, 4, 5): median 3.5, deviations 1.5, 0.5, 0.5, 1.5, MAD 1.
        let rows = [(2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0), (6, 1.0)];
        assert_rows_close(&anomaly(&rows, 4, None), &[(6, -2.5 / 1.4826)]);
    }

    #[test]
    fn anomaly_falls_back_to_mean_absolute_deviation_when_mad_is_zero() {
        // Window 5, 5, 5, 5, 9: MAD 0, mean absolute deviation 0.8; 7 scores 2 / (1.2533 * 0.8).
        let rows = [(1, 5.0), (2, 5.0), (3, 5.0), (4, 9.0), (5, 5.0), (6, 7.0)];
        assert_rows_close(&anomaly(&rows, 5, None), &[(6, 2.0 / (1.2533 * 0.8))]);
    }

    #[test]
    fn anomaly_of_a_flat_window_is_zero_or_infinite() {
        let flat = [(1, 5.0), (2, 5.0), (3, 5.0)];
        let score = |value: f64| {
            let mut rows = flat.to_vec();
            rows.push((4, value));
            anomaly(&rows, 3, None)
        };
        assert_eq!(score(5.0), vec![(4, 0.0)]);
        assert_eq!(score(6.0), vec![(4, f64::INFINITY)]);
        assert_eq!(score(4.0), vec![(4, f64::NEG_INFINITY)]);
    }

    #[test]
    fn anomaly_flags_a_spike_in_stable_noise_and_nothing_else() {
        let mut noise = Noise(11);
        let mut rows: Vec<(i64, f64)> = (0..300)
            .map(|minute| (minute * MINUTE, 100.0 + noise.next()))
            .collect();
        if let Some(row) = rows.get_mut(200) {
            row.1 = 130.0;
        }
        // Thirty uniform values give a noisy MAD: plain noise reaches |z| of about 3.7 here, so the
        // threshold sits well above that and far below the spike's score of about 40.
        let flagged = anomaly(&rows, DEFAULT_ANOMALY_WINDOW, Some(5.0));
        assert_eq!(flagged.len(), 1, "flagged {flagged:?}");
        assert!(
            flagged
                .first()
                .is_some_and(|&(time, z)| time == 200 * MINUTE && z > 20.0)
        );
        let all = anomaly(&rows, DEFAULT_ANOMALY_WINDOW, None);
        assert_eq!(all.len(), 300 - DEFAULT_ANOMALY_WINDOW);
    }

    #[test]
    fn anomaly_leaves_non_finite_rows_out_of_windows_and_output() {
        let rows = [
            (1, 1.0),
            (2, f64::NAN),
            (3, 2.0),
            (4, f64::INFINITY),
            (5, 3.0),
            (6, 4.0),
        ];
        // Windows of 3 finite rows: (1, 2, 3) scores 4 as 2 / 1.4826.
        assert_rows_close(&anomaly(&rows, 3, None), &[(6, 2.0 / 1.4826)]);
    }

    #[test]
    fn anomaly_with_a_short_series_or_zero_window_is_empty() {
        let rows = [(1, 1.0), (2, 2.0)];
        assert!(anomaly(&rows, 2, None).is_empty());
        assert!(anomaly(&rows, 0, None).is_empty());
        assert!(anomaly(&[], 30, None).is_empty());
        assert!(anomaly(&rows, usize::MAX, None).is_empty());
        assert!(anomaly(&[(1, 1.0), (2, 1.0), (3, 9.0)], 2, Some(f64::NAN)).is_empty());
    }

    #[test]
    fn format_duration_picks_the_largest_exact_unit() {
        assert_eq!(format_duration(7 * DAY), "7d");
        assert_eq!(format_duration(90 * MINUTE), "90m");
        assert_eq!(format_duration(1_500_000_000), "1500ms");
        assert_eq!(format_duration(0), "0ns");
        assert_eq!(format_duration(-HOUR), "-1h");
        assert_eq!(format_duration(i64::MIN), "-9223372036854775808ns");
    }

    fn naive_robust_z(value: f64, window: &[f64]) -> f64 {
        let mut sorted = window.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = median_of_sorted(&sorted).unwrap_or(0.0);
        let mut deviations: Vec<f64> = sorted.iter().map(|x| (x - median).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        let mad = median_of_sorted(&deviations).unwrap_or(0.0);
        if mad > 0.0 {
            return (value - median) / mad / 1.4826;
        }
        let mean = deviations
            .iter()
            .map(|d| d / window.len() as f64)
            .sum::<f64>();
        if mean > 0.0 {
            (value - median) / mean / 1.2533
        } else if value == median {
            0.0
        } else {
            f64::INFINITY.copysign(value - median)
        }
    }

    /// Rows with strictly increasing times from random gaps, as the executor hands them over.
    fn increasing_rows(
        values: impl Strategy<Value = f64>,
        max_len: usize,
    ) -> impl Strategy<Value = Vec<(i64, f64)>> {
        (
            -1_000_000_000_000_i64..1_000_000_000_000,
            prop::collection::vec((1_i64..10_000_000_000, values), 0..max_len),
        )
            .prop_map(|(start, steps)| {
                let mut time = start;
                steps
                    .into_iter()
                    .map(|(gap, value)| {
                        time += gap;
                        (time, value)
                    })
                    .collect()
            })
    }

    fn arbitrary_rows() -> impl Strategy<Value = Vec<(i64, f64)>> {
        prop::collection::vec(
            (
                prop_oneof![any::<i64>(), -5_i64..5],
                prop_oneof![prop::num::f64::ANY, -10.0..10.0_f64],
            ),
            0..40,
        )
    }

    fn strictly_sorted<T>(rows: &[(i64, T)]) -> bool {
        rows.windows(2).all(|pair| match pair {
            [(earlier, _), (later, _)] => earlier < later,
            _ => true,
        })
    }

    proptest! {
        #[test]
        fn point_functions_never_panic_and_keep_time_order(
            rows in arbitrary_rows(),
            unit in prop_oneof![any::<i64>(), -2_i64..3],
            n in 0_usize..8,
            non_negative in any::<bool>(),
        ) {
            let times: Vec<i64> = rows.iter().map(|row| row.0).collect();
            prop_assert!(strictly_sorted(&derivative(&rows, unit, non_negative)));
            prop_assert!(strictly_sorted(&difference(&rows, non_negative)));
            prop_assert!(strictly_sorted(&rate(&rows, unit)));
            prop_assert!(strictly_sorted(&moving_average(&rows, n)));
            prop_assert!(strictly_sorted(&cumulative_sum(&rows)));
            prop_assert!(strictly_sorted(&elapsed(&times, unit)));
            prop_assert!(strictly_sorted(&anomaly(&rows, n, None)));
            if let Some((_, fitted)) = trend(&rows) {
                prop_assert!(strictly_sorted(&fitted));
            }
        }

        #[test]
        fn point_functions_return_the_specified_number_of_rows(
            rows in increasing_rows(prop_oneof![0.0..1e6_f64, prop::num::f64::ANY], 40),
            unit in 1_i64..100_000_000_000,
            n in 1_usize..8,
        ) {
            let len = rows.len();
            let times: Vec<i64> = rows.iter().map(|row| row.0).collect();
            prop_assert_eq!(derivative(&rows, unit, false).len(), len.saturating_sub(1));
            prop_assert_eq!(difference(&rows, false).len(), len.saturating_sub(1));
            prop_assert_eq!(cumulative_sum(&rows).len(), len);
            prop_assert_eq!(elapsed(&times, unit).len(), len.saturating_sub(1));
            prop_assert_eq!(moving_average(&rows, n).len(), (len + 1).saturating_sub(n));
            let finite = rows.iter().filter(|row| row.1.is_finite()).count();
            prop_assert_eq!(anomaly(&rows, n, None).len(), finite.saturating_sub(n));
            match trend(&rows) {
                Some((fit, fitted)) => {
                    prop_assert_eq!(fitted.len(), len);
                    prop_assert_eq!(fit.n, finite);
                    prop_assert!((0.0..=1.0).contains(&fit.r_squared));
                }
                None => prop_assert!(finite < 2),
            }
            for (_, rate) in rate(&rows, unit) {
                prop_assert!(rate >= 0.0 || rate.is_nan());
            }
        }

        #[test]
        fn moving_average_equals_the_direct_mean_of_each_window(
            rows in increasing_rows(-1e6..1e6_f64, 60),
            n in 1_usize..10,
        ) {
            let averages = moving_average(&rows, n);
            for (window, &(time, average)) in rows.windows(n).zip(&averages) {
                let direct = window.iter().map(|row| row.1).sum::<f64>() / n as f64;
                prop_assert_eq!(window.last().map(|row| row.0), Some(time));
                prop_assert!((direct - average).abs() <= 1e-9 * direct.abs().max(1.0));
            }
        }

        #[test]
        fn anomaly_matches_a_direct_computation_on_each_window(
            rows in increasing_rows(prop_oneof![-3.0..3.0_f64, (0_i32..4).prop_map(f64::from)], 60),
            window in 1_usize..12,
        ) {
            let scores = anomaly(&rows, window, None);
            let values: Vec<f64> = rows.iter().map(|row| row.1).collect();
            for ((time, score), index) in scores.iter().zip(window..) {
                let expected = naive_robust_z(values[index], &values[index - window..index]);
                prop_assert_eq!(*time, rows[index].0);
                prop_assert!(
                    score == &expected || (score - expected).abs() <= 1e-9 * expected.abs(),
                    "row {} scored {} but directly {}", index, score, expected
                );
            }
        }

        #[test]
        fn forecast_never_panics_and_returns_one_point_per_interval(
            rows in arbitrary_rows(),
            interval in prop_oneof![1_i64..1_000, any::<i64>()],
            steps in prop_oneof![0_i64..12, any::<i64>()],
            holt_winters in any::<bool>(),
            season_steps in prop::option::of(prop_oneof![-1_i64..6, any::<i64>()]),
        ) {
            let method = if holt_winters { ForecastMethod::HoltWinters } else { ForecastMethod::Linear };
            let horizon = interval.saturating_mul(steps);
            let season = season_steps.map(|steps| interval.saturating_mul(steps));
            if let Ok(points) = forecast(&rows, interval, horizon, method, season) {
                prop_assert_eq!(points.len() as i64, horizon / interval);
                prop_assert!(points.windows(2).all(|pair| pair[0].time + interval == pair[1].time));
                for point in &points {
                    let bounds = [point.lower, point.value, point.upper];
                    prop_assert!(
                        bounds.iter().any(|bound| bound.is_nan())
                            || (point.lower <= point.value && point.value <= point.upper)
                    );
                }
            }
        }

        #[test]
        fn forecast_of_regular_finite_rows_succeeds(
            values in prop::collection::vec(-1e9..1e9_f64, 4..60),
            steps in 1_i64..20,
            holt_winters in any::<bool>(),
            season in prop::option::of(2_i64..6),
        ) {
            let rows: Vec<(i64, f64)> =
                values.iter().zip(0..).map(|(&value, minute)| (minute * MINUTE, value)).collect();
            let method = if holt_winters { ForecastMethod::HoltWinters } else { ForecastMethod::Linear };
            let result = forecast(&rows, MINUTE, steps * MINUTE, method, season.map(|s| s * MINUTE));
            let Ok(points) = result else {
                return Err(TestCaseError::fail(format!("{result:?}")));
            };
            prop_assert_eq!(points.len() as i64, steps);
            for point in &points {
                prop_assert!(point.value.is_finite() && point.lower <= point.upper);
            }
        }

        #[test]
        fn median_absolute_deviation_matches_sorting_the_deviations(
            mut window in prop::collection::vec(prop_oneof![-1e3..1e3_f64, (0_i32..3).prop_map(f64::from)], 1..30),
        ) {
            window.sort_by(f64::total_cmp);
            let median = median_of_sorted(&window).unwrap_or(0.0);
            let mut deviations: Vec<f64> = window.iter().map(|x| (x - median).abs()).collect();
            deviations.sort_by(f64::total_cmp);
            prop_assert_eq!(
                median_absolute_deviation(&window, median),
                median_of_sorted(&deviations).unwrap_or(0.0)
            );
        }
    }
}
