//! Cron expressions with five fields (minute, hour, day of month, month, day of week), as in
//! crontab(5), and the next time one fires in a time zone.
//!
//! Fields take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, and comma lists; months
//! and days of the week also take English names (`JAN`, `MON`), and Sunday is 0 or 7. When
//! both the day of month and the day of week are restricted, a day matches if either does
//! (Vixie cron's rule). `@hourly`, `@daily`, `@weekly`, `@monthly` and `@yearly` stand for
//! their usual expressions.
//!
//! Daylight saving changes follow Vixie cron: a job with a fixed hour (the hour field is not
//! `*` or `*/n`) whose time is skipped by the change to summer time runs once, at the change;
//! when a time happens twice at the change back, it runs only the first time. Jobs with a
//! wildcard hour run by the clock as it is shown: skipped times do not run, repeated times
//! run twice (an hourly job runs every real hour).

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::AmbiguousOffset;

use super::period::{NANOS_PER_HOUR, NANOS_PER_MINUTE, Zone, nanos_to_civil};

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{expression:?}: {reason}")]
pub(crate) struct CronError {
    pub expression: String,
    pub reason: String,
}

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CronSchedule {
    text: String,
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    /// The day of month field is `*` (so only the day of week restricts days).
    any_day_of_month: bool,
    /// The day of week field is `*`.
    any_day_of_week: bool,
    /// The hour field is `*` or `*/n`: the job runs by the clock through daylight saving
    /// changes instead of once at its fixed time.
    wildcard_hour: bool,
}

/// How far ahead `next_after` looks before it concludes that a schedule never fires again.
const MAX_SEARCH_YEARS: i16 = 10;
/// More than the largest change of a zone's offset (Samoa skipped a whole day in 2011).
const OFFSET_SLACK_NS: i64 = 26 * NANOS_PER_HOUR;

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The number the first name stands for.
    first_name_value: u32,
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    first_name_value: 0,
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    first_name_value: 0,
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
    first_name_value: 0,
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTH_NAMES,
    first_name_value: 1,
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day of week",
    min: 0,
    max: 7,
    names: &DAY_NAMES,
    first_name_value: 0,
};

/// A parsed field: the set of values as bits, and whether it was written as `*` or `*/n`.
struct Field {
    bits: u64,
    starts_with_star: bool,
    is_star: bool,
}

fn parse_value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    if let Some(index) = spec
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        return Ok(spec.first_name_value + index as u32);
    }
    let value: u32 = text.parse().map_err(|_| {
        if spec.names.is_empty() {
            format!("{} field: {text:?} is not a number", spec.name)
        } else {
            format!(
                "{} field: {text:?} is not a number or a name ({})",
                spec.name,
                spec.names.join(", ")
            )
        }
    })?;
    if value < spec.min || value > spec.max {
        return Err(format!(
            "{} field: {value} is outside {}-{}",
            spec.name, spec.min, spec.max
        ));
    }
    Ok(value)
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<Field, String> {
    let mut bits = 0u64;
    for part in text.split(',') {
        if part.is_empty() {
            return Err(format!(
                "{} field {text:?} has an empty list item",
                spec.name
            ));
        }
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!(
                        "{} field: step {step:?} must be a whole number above 0",
                        spec.name
                    )
                })?;
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((low, high)) = range.split_once('-') {
            let low = parse_value(low, spec)?;
            let high = parse_value(high, spec)?;
            if low > high {
                return Err(format!(
                    "{} field: range {range:?} runs backwards",
                    spec.name
                ));
            }
            (low, high)
        } else {
            let low = parse_value(range, spec)?;
            // `5/15` means from 5 to the end in steps of 15, as in Vixie cron.
            (low, if part.contains('/') { spec.max } else { low })
        };
        let mut value = low;
        while value <= high {
            bits |= 1u64 << value;
            value += step;
        }
    }
    Ok(Field {
        bits,
        starts_with_star: text.starts_with('*'),
        is_star: text == "*",
    })
}

impl CronSchedule {
    pub(crate) fn parse(text: &str) -> Result<CronSchedule, CronError> {
        let error = |reason: String| CronError {
            expression: text.to_string(),
            reason,
        };
        let expanded = match text.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other if other.starts_with('@') => {
                return Err(error(
                    "unknown macro: use @hourly, @daily, @weekly, @monthly or @yearly".into(),
                ));
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day_of_month, month, day_of_week] = fields.as_slice() else {
            return Err(error(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        };
        let minute = parse_field(minute, &MINUTE).map_err(error)?;
        let hour = parse_field(hour, &HOUR).map_err(error)?;
        let day_of_month = parse_field(day_of_month, &DAY_OF_MONTH).map_err(error)?;
        let month = parse_field(month, &MONTH).map_err(error)?;
        let day_of_week = parse_field(day_of_week, &DAY_OF_WEEK).map_err(error)?;
        // Sunday is both 0 and 7.
        let days_of_week = ((day_of_week.bits | (day_of_week.bits >> 7)) & 0x7f) as u8;
        let schedule = CronSchedule {
            text: text.trim().to_string(),
            minutes: minute.bits,
            hours: hour.bits as u32,
            days_of_month: day_of_month.bits as u32,
            months: month.bits as u16,
            days_of_week,
            any_day_of_month: day_of_month.is_star,
            any_day_of_week: day_of_week.is_star,
            wildcard_hour: hour.starts_with_star,
        };
        if !schedule.any_day_of_week || schedule.can_match_a_day_of_month() {
            Ok(schedule)
        } else {
            Err(error(
                "it never fires: no month selected has the days of month selected".into(),
            ))
        }
    }

    fn can_match_a_day_of_month(&self) -> bool {
        // Days each month can have (February with a leap day).
        const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        (1..=12u32).any(|month| {
            self.months & (1 << month) != 0
                && (1..=LONGEST[(month - 1) as usize])
                    .any(|day| self.days_of_month & (1 << day) != 0)
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let by_month_day = self.days_of_month & (1 << date.day()) != 0;
        let by_week_day = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match (self.any_day_of_month, self.any_day_of_week) {
            (true, true) => true,
            (true, false) => by_week_day,
            (false, true) => by_month_day,
            (false, false) => by_month_day || by_week_day,
        }
    }

    /// The first civil minute at or after `start` that the fields match, or `None` when there
    /// is none within the search window.
    fn next_civil(&self, start: DateTime) -> Option<DateTime> {
        let limit_year = start.year().saturating_add(MAX_SEARCH_YEARS);
        let mut date = start.date();
        let mut hour = start.hour();
        let mut minute = start.minute();
        loop {
            if date.year() > limit_year {
                return None;
            }
            if self.months & (1 << date.month()) == 0 {
                date = date
                    .first_of_month()
                    .checked_add(jiff::Span::new().months(1))
                    .ok()?;
                (hour, minute) = (0, 0);
                continue;
            }
            if !self.day_matches(date) {
                date = date.tomorrow().ok()?;
                (hour, minute) = (0, 0);
                continue;
            }
            let Some(next_hour) = (hour..24).find(|h| self.hours & (1 << h) != 0) else {
                date = date.tomorrow().ok()?;
                (hour, minute) = (0, 0);
                continue;
            };
            if next_hour != hour {
                (hour, minute) = (next_hour, 0);
            }
            match (minute..60).find(|m| self.minutes & (1u64 << m) != 0) {
                Some(next_minute) => {
                    return Some(date.to_datetime(Time::new(hour, next_minute, 0, 0).ok()?));
                }
                None if hour < 23 => (hour, minute) = (hour + 1, 0),
                None => {
                    date = date.tomorrow().ok()?;
                    (hour, minute) = (0, 0);
                }
            }
        }
    }

    /// The instants a matching civil minute stands for in a zone, after the daylight saving
    /// rules in the module documentation.
    fn instants(&self, civil: DateTime, zone: &Zone) -> Vec<i64> {
        let nanos = |offset: jiff::tz::Offset| {
            offset
                .to_timestamp(civil)
                .ok()
                .and_then(|t| i64::try_from(t.as_nanosecond()).ok())
        };
        match zone.tz.to_ambiguous_timestamp(civil).offset() {
            AmbiguousOffset::Unambiguous { offset } => nanos(offset).into_iter().collect(),
            AmbiguousOffset::Gap { after, .. } if !self.wildcard_hour => {
                let early = after.to_timestamp(civil).ok();
                early
                    .and_then(|early| zone.tz.following(early).next())
                    .and_then(|transition| {
                        i64::try_from(transition.timestamp().as_nanosecond()).ok()
                    })
                    .into_iter()
                    .collect()
            }
            AmbiguousOffset::Gap { .. } => Vec::new(),
            AmbiguousOffset::Fold { before, after } => {
                let mut instants: Vec<i64> = nanos(before).into_iter().collect();
                if self.wildcard_hour {
                    instants.extend(nanos(after));
                }
                instants
            }
        }
    }

    /// The first instant after `after` (nanoseconds) at which the schedule fires in `zone`;
    /// `None` when it does not fire in the next ten years.
    pub(crate) fn next_after(&self, after: i64, zone: &Zone) -> Option<i64> {
        // Civil minutes and instants are in the same order except around a change of offset,
        // so the search starts a little before `after`'s civil time and stops once no later
        // civil minute can be an earlier instant than the best found.
        let start = nanos_to_civil(after.checked_sub(OFFSET_SLACK_NS)?, zone);
        let start = start.with().second(0).subsec_nanosecond(0).build().ok()?;
        let mut civil = self.next_civil(start)?;
        let mut best: Option<(i64, DateTime)> = None;
        loop {
            for instant in self.instants(civil, zone) {
                if instant > after && best.is_none_or(|(b, _)| instant < b) {
                    best = Some((instant, civil));
                }
            }
            if let Some((instant, _)) = best {
                let horizon = nanos_to_civil(instant.checked_add(OFFSET_SLACK_NS)?, zone);
                let horizon = horizon
                    .checked_add(jiff::SignedDuration::from_nanos(OFFSET_SLACK_NS))
                    .ok()?;
                if civil > horizon {
                    return Some(instant);
                }
            }
            let following = civil
                .checked_add(jiff::SignedDuration::from_nanos(NANOS_PER_MINUTE))
                .ok()?;
            match self.next_civil(following) {
                Some(next) => civil = next,
                None => return best.map(|(instant, _)| instant),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::period::parse_zone;

    fn at(text: &str) -> i64 {
        i64::try_from(text.parse::<jiff::Timestamp>().unwrap().as_nanosecond()).unwrap()
    }

    fn fires(expression: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
        let schedule = CronSchedule::parse(expression).unwrap();
        let zone = parse_zone(zone).unwrap();
        let mut after = at(from);
        let mut out = Vec::new();
        for _ in 0..n {
            after = schedule.next_after(after, &zone).unwrap();
            out.push(crate::reports::period::rfc3339(after));
        }
        out
    }

    #[test]
    fn fields_accept_lists_ranges_steps_and_names() {
        assert_eq!(
            fires("*/20 9-10 * * MON-FRI", "UTC", "2026-11-27T10:30:00Z", 4),
            [
                "2026-11-27T10:40:00Z",
                "2026-11-30T09:00:00Z",
                "2026-11-30T09:20:00Z",
                "2026-11-30T09:40:00Z"
            ]
        );
        assert_eq!(
            fires("0 8 1,15 JAN,jul *", "UTC", "2026-01-01T08:00:00Z", 3),
            [
                "2026-01-15T08:00:00Z",
                "2026-07-01T08:00:00Z",
                "2026-07-15T08:00:00Z"
            ]
        );
        assert_eq!(
            fires("@weekly", "UTC", "2026-11-25T00:00:00Z", 2),
            ["2026-11-29T00:00:00Z", "2026-12-06T00:00:00Z"]
        );
        // Sunday is 0 and 7.
        assert_eq!(
            fires("0 0 * * 7", "UTC", "2026-11-25T00:00:00Z", 1),
            ["2026-11-29T00:00:00Z"]
        );
        // `5/30` runs from 5 in steps of 30.
        assert_eq!(
            fires("5/30 0 * * *", "UTC", "2026-11-25T00:00:00Z", 2),
            ["2026-11-25T00:05:00Z", "2026-11-25T00:35:00Z"]
        );
    }

    #[test]
    fn a_restricted_day_of_month_and_day_of_week_match_either() {
        // The 1st of the month or any Friday (Vixie cron's rule).
        assert_eq!(
            fires("0 12 1 * FRI", "UTC", "2026-11-25T00:00:00Z", 3),
            [
                "2026-11-27T12:00:00Z",
                "2026-12-01T12:00:00Z",
                "2026-12-04T12:00:00Z"
            ]
        );
    }

    #[test]
    fn leap_days_are_found_years_ahead() {
        assert_eq!(
            fires("0 0 29 2 *", "UTC", "2026-03-01T00:00:00Z", 1),
            ["2028-02-29T00:00:00Z"]
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let cases = [
            ("0 8 * *", "expected 5 fields"),
            ("60 * * * *", "minute field: 60 is outside 0-59"),
            ("0 8 * * FUNDAY", "day of week field"),
            ("0 8 10-5 * *", "runs backwards"),
            ("*/0 * * * *", "step"),
            ("0 0 30 2 *", "never fires"),
            ("@fortnightly", "unknown macro"),
            ("0 8 1,,2 * *", "empty list item"),
        ];
        for (expression, expected) in cases {
            let error = CronSchedule::parse(expression).unwrap_err().to_string();
            assert!(error.contains(expected), "{expression}: {error}");
        }
    }

    #[test]
    fn daily_jobs_in_the_skipped_hour_run_once_at_the_change_to_summer_time() {
        // Europe/Paris skips 02:00-03:00 on 2026-03-29 (01:00 UTC).
        assert_eq!(
            fires("30 2 * * *", "Europe/Paris", "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z"
            ]
        );
    }

    #[test]
    fn daily_jobs_in_the_repeated_hour_run_once_at_the_change_back() {
        // Europe/Paris shows 02:00-03:00 twice on 2026-10-25 (00:00-02:00 UTC).
        assert_eq!(
            fires("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        );
    }

    #[test]
    fn hourly_jobs_run_every_real_hour_across_both_changes() {
        assert_eq!(
            fires("0 * * * *", "Europe/Paris", "2026-10-24T23:30:00Z", 4),
            [
                "2026-10-25T00:00:00Z",
                "2026-10-25T01:00:00Z",
                "2026-10-25T02:00:00Z",
                "2026-10-25T03:00:00Z"
            ]
        );
        assert_eq!(
            fires("0 * * * *", "Europe/Paris", "2026-03-28T23:30:00Z", 3),
            [
                "2026-03-29T00:00:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-29T02:00:00Z"
            ]
        );
    }

    #[test]
    fn zones_west_of_utc_change_on_their_own_dates() {
        // America/New_York moves to summer time on 2026-03-08 at 02:00 EST (07:00 UTC).
        assert_eq!(
            fires("0 9 * * *", "America/New_York", "2026-03-06T15:00:00Z", 3),
            [
                "2026-03-07T14:00:00Z",
                "2026-03-08T13:00:00Z",
                "2026-03-09T13:00:00Z"
            ]
        );
    }
}
