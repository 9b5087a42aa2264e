//! The time a report covers: parsing `from`/`to`, the previous period of the same length, the
//! `$interval` charts use, the month the forecasts end in, calendar periods of schedules, and
//! printing times in the report's time zone.
//!
//! Times are nanoseconds since the Unix epoch (`i64`), as everywhere in Tally. Months and days
//! of forecasts are UTC ones, because `GROUP BY time(1d)` buckets are UTC days; the report's
//! zone decides how times are printed and where calendar periods of schedules start.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, tz::AmbiguousOffset};

use crate::units::HumanDuration;

pub(crate) const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub(crate) const NANOS_PER_MINUTE: i64 = 60 * NANOS_PER_SECOND;
pub(crate) const NANOS_PER_HOUR: i64 = 60 * NANOS_PER_MINUTE;
pub(crate) const NANOS_PER_DAY: i64 = 24 * NANOS_PER_HOUR;

/// The longest period a report may cover: ten years.
const MAX_SPAN_NS: i64 = 3660 * NANOS_PER_DAY;

/// A time zone with the name it was asked for by.
#[derive(Clone, Debug)]
pub(crate) struct Zone {
    pub name: String,
    pub tz: TimeZone,
}

impl Zone {
    pub(crate) fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }
}

/// Looks up an IANA time zone name (`Europe/Paris`, `UTC`).
pub(crate) fn parse_zone(name: &str) -> Result<Zone, String> {
    let name = name.trim();
    if name.eq_ignore_ascii_case("utc") || name == "Z" {
        return Ok(Zone::utc());
    }
    if name.is_empty() {
        return Err("the time zone is empty: give an IANA name such as Europe/Paris or UTC".into());
    }
    jiff::tz::db()
        .get(name)
        .map(|tz| Zone {
            name: name.to_string(),
            tz,
        })
        .map_err(|_| {
            format!("unknown time zone {name:?}: give an IANA name such as Europe/Paris, America/New_York or UTC")
        })
}

/// Parses a duration such as `7d`, `1h30m` or `2w` into nanoseconds (positive).
pub(crate) fn parse_duration_ns(text: &str) -> Result<i64, String> {
    let duration = HumanDuration::parse(text)?;
    let nanos = i64::try_from(duration.0.as_nanos())
        .map_err(|_| format!("duration {text:?} is too long"))?;
    if nanos <= 0 {
        return Err(format!("duration {text:?} must be longer than zero"));
    }
    Ok(nanos)
}

/// A duration as query text: the largest units that divide it exactly (`1h`, `1w`, `90m`).
pub(crate) fn duration_literal(nanos: i64) -> String {
    HumanDuration(std::time::Duration::from_nanos(nanos.max(0).unsigned_abs())).to_string()
}

fn timestamp(nanos: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(nanos)).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn nanos_of(timestamp: Timestamp) -> Result<i64, String> {
    i64::try_from(timestamp.as_nanosecond()).map_err(|_| {
        format!("{timestamp} is outside the range of Tally's timestamps (1677 to 2262)")
    })
}

/// The instant a civil time in `zone` names; in a gap (a time skipped by a change to summer
/// time), the instant the gap ends; in a fold (a time that happens twice), the earlier one.
pub(crate) fn civil_to_nanos(datetime: DateTime, zone: &Zone) -> Result<i64, String> {
    let ambiguous = zone.tz.to_ambiguous_timestamp(datetime);
    let timestamp = match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } | AmbiguousOffset::Fold { before: offset, .. } => {
            offset.to_timestamp(datetime)
        }
        AmbiguousOffset::Gap { after, .. } => after.to_timestamp(datetime).map(|early| {
            // Read with the later offset, the skipped time falls just before the change; the
            // change itself is the first instant after the gap.
            zone.tz
                .following(early)
                .next()
                .map_or(early, |transition| transition.timestamp())
        }),
    }
    .map_err(|e| format!("{datetime} in {}: {e}", zone.name))?;
    nanos_of(timestamp)
}

/// The civil time of an instant in a zone.
pub(crate) fn nanos_to_civil(nanos: i64, zone: &Zone) -> DateTime {
    zone.tz.to_datetime(timestamp(nanos))
}

/// Parses one end of a period: `now`, `now-7d`, an RFC 3339 time, a date (midnight in `zone`),
/// or a date and time without an offset (in `zone`).
pub(crate) fn parse_instant(text: &str, now_ns: i64, zone: &Zone) -> Result<i64, String> {
    let text = text.trim();
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if let Some(rest) = compact.strip_prefix("now") {
        if rest.is_empty() {
            return Ok(now_ns);
        }
        let (sign, duration) = match rest.split_at(1) {
            ("-", duration) => (-1, duration),
            ("+", duration) => (1, duration),
            _ => {
                return Err(format!(
                    "invalid time {text:?}: after `now` expected `-` or `+` and a duration, as in now-7d"
                ));
            }
        };
        let nanos =
            parse_duration_ns(duration).map_err(|e| format!("invalid time {text:?}: {e}"))?;
        return now_ns
            .checked_add(sign * nanos)
            .ok_or_else(|| format!("time {text:?} is out of range"));
    }
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return nanos_of(timestamp);
    }
    if let Ok(datetime) = text.parse::<DateTime>()
        && text.len() > 10
    {
        return civil_to_nanos(datetime, zone);
    }
    if let Ok(date) = text.parse::<Date>() {
        return civil_to_nanos(date.to_datetime(jiff::civil::Time::midnight()), zone);
    }
    Err(format!(
        "invalid time {text:?}: expected now, now-7d, an RFC 3339 time such as 2026-11-24T00:00:00Z, or a date such as 2026-11-24"
    ))
}

/// The period a report covers and everything derived from it.
#[derive(Clone, Debug)]
pub(crate) struct ReportPeriod {
    pub from: i64,
    pub to: i64,
    /// The period of the same length just before.
    pub previous_from: i64,
    pub previous_to: i64,
    /// `$interval`: the GROUP BY time interval of charts.
    pub interval: i64,
    /// The UTC month holding `to`.
    pub month_start: i64,
    pub month_end: i64,
    /// Whole UTC days of history the forecasts fit, ending at the start of `to`'s day.
    pub forecast_from: i64,
    pub forecast_to: i64,
    /// From `forecast_to` to the month's end.
    pub forecast_horizon: i64,
    pub zone: Zone,
}

impl ReportPeriod {
    pub(crate) fn new(
        from: i64,
        to: i64,
        zone: Zone,
        history: i64,
    ) -> Result<ReportPeriod, String> {
        if from >= to {
            return Err(format!(
                "the period is empty: from ({}) must be before to ({})",
                format_instant(from, &zone),
                format_instant(to, &zone)
            ));
        }
        let span = to
            .checked_sub(from)
            .filter(|span| *span <= MAX_SPAN_NS)
            .ok_or_else(|| "the period is longer than the limit of 3660 days".to_string())?;
        let previous_from = from
            .checked_sub(span)
            .ok_or_else(|| "the previous period starts before 1677".to_string())?;
        let utc = Zone::utc();
        let to_date = nanos_to_civil(to, &utc).date();
        let month_start_date = to_date.first_of_month();
        let next_month = month_start_date
            .checked_add(jiff::Span::new().months(1))
            .map_err(|e| format!("the month after {month_start_date}: {e}"))?;
        let month_start = civil_to_nanos(
            month_start_date.to_datetime(jiff::civil::Time::midnight()),
            &utc,
        )?;
        let month_end =
            civil_to_nanos(next_month.to_datetime(jiff::civil::Time::midnight()), &utc)?;
        let forecast_to = to - to.rem_euclid(NANOS_PER_DAY);
        let history_days = (history / NANOS_PER_DAY).max(1);
        let forecast_from = forecast_to
            .checked_sub(history_days * NANOS_PER_DAY)
            .ok_or_else(|| "the history starts before 1677".to_string())?;
        Ok(ReportPeriod {
            from,
            to,
            previous_from,
            previous_to: from,
            interval: choose_interval(span),
            month_start,
            month_end,
            forecast_from,
            forecast_to,
            forecast_horizon: month_end - forecast_to,
            zone,
        })
    }
}

/// About 150 to 350 buckets for a chart: fine enough to see a day's shape, coarse enough to
/// read from rollup tiers (every choice is a multiple of 1m, and from 1h up of 1h).
pub(crate) fn choose_interval(span: i64) -> i64 {
    const CHOICES: [(i64, i64); 6] = [
        (6 * NANOS_PER_HOUR, NANOS_PER_MINUTE),
        (NANOS_PER_DAY, 5 * NANOS_PER_MINUTE),
        (3 * NANOS_PER_DAY, 15 * NANOS_PER_MINUTE),
        (14 * NANOS_PER_DAY, NANOS_PER_HOUR),
        (62 * NANOS_PER_DAY, 6 * NANOS_PER_HOUR),
        (400 * NANOS_PER_DAY, NANOS_PER_DAY),
    ];
    CHOICES
        .iter()
        .find(|(longest, _)| span <= *longest)
        .map_or(7 * NANOS_PER_DAY, |(_, interval)| *interval)
}

/// What period a scheduled run covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SchedulePeriod {
    /// The duration before the firing time.
    Last(i64),
    /// The calendar day before the firing day, in the schedule's zone.
    PreviousDay,
    /// Monday 00:00 to Monday 00:00 of the week before the firing week.
    PreviousWeek,
    /// The calendar month before the firing month.
    PreviousMonth,
}

impl SchedulePeriod {
    pub(crate) fn parse(text: &str) -> Result<SchedulePeriod, String> {
        match text.trim() {
            "previous_day" => Ok(SchedulePeriod::PreviousDay),
            "previous_week" => Ok(SchedulePeriod::PreviousWeek),
            "previous_month" => Ok(SchedulePeriod::PreviousMonth),
            other => parse_duration_ns(other).map(SchedulePeriod::Last).map_err(|e| {
                format!("{e}; a period is a duration such as 7d, or previous_day, previous_week or previous_month")
            }),
        }
    }

    /// The `(from, to)` of a run that fires at `fired` in `zone`.
    pub(crate) fn resolve(self, fired: i64, zone: &Zone) -> Result<(i64, i64), String> {
        let today = nanos_to_civil(fired, zone).date();
        let midnight =
            |date: Date| civil_to_nanos(date.to_datetime(jiff::civil::Time::midnight()), zone);
        let shift = |date: Date, span: jiff::Span| {
            date.checked_add(span)
                .map_err(|e| format!("{date} {span}: {e}"))
        };
        match self {
            SchedulePeriod::Last(nanos) => Ok((fired - nanos, fired)),
            SchedulePeriod::PreviousDay => {
                let start = shift(today, jiff::Span::new().days(-1))?;
                Ok((midnight(start)?, midnight(today)?))
            }
            SchedulePeriod::PreviousWeek => {
                let monday = shift(
                    today,
                    jiff::Span::new().days(-i64::from(today.weekday().to_monday_zero_offset())),
                )?;
                let previous_monday = shift(monday, jiff::Span::new().weeks(-1))?;
                Ok((midnight(previous_monday)?, midnight(monday)?))
            }
            SchedulePeriod::PreviousMonth => {
                let first = today.first_of_month();
                let previous_first = shift(first, jiff::Span::new().months(-1))?;
                Ok((midnight(previous_first)?, midnight(first)?))
            }
        }
    }
}

/// A time as people read it in a report: `2026-11-24 14:00 UTC`, seconds shown only when
/// they are not zero.
pub(crate) fn format_instant(nanos: i64, zone: &Zone) -> String {
    let zoned = timestamp(nanos).to_zoned_datetime(zone.tz.clone());
    let datetime = zoned.datetime();
    let abbreviation = zone_label(nanos, zone);
    if datetime.second() == 0 && datetime.subsec_nanosecond() == 0 {
        format!("{} {abbreviation}", datetime.strftime("%Y-%m-%d %H:%M"))
    } else {
        format!("{} {abbreviation}", datetime.strftime("%Y-%m-%d %H:%M:%S"))
    }
}

/// The zone's abbreviation at an instant (`CET`, `CEST`), or the name for UTC.
fn zone_label(nanos: i64, zone: &Zone) -> String {
    if zone.name == "UTC" {
        return "UTC".into();
    }
    let info = zone.tz.to_offset_info(timestamp(nanos));
    let abbreviation = info.abbreviation();
    if abbreviation.is_empty() || abbreviation.starts_with(['+', '-']) {
        info.offset().to_string()
    } else {
        abbreviation.to_string()
    }
}

/// A short time label for chart axes and hour lists: `Nov 24` at midnight, `Nov 24 14:00`
/// otherwise.
pub(crate) fn format_short(nanos: i64, zone: &Zone) -> String {
    let datetime = nanos_to_civil(nanos, zone);
    if datetime.hour() == 0 && datetime.minute() == 0 {
        datetime.strftime("%b %d").to_string()
    } else {
        datetime.strftime("%b %d %H:%M").to_string()
    }
}

/// An RFC 3339 time in UTC, for machine-readable output.
pub(crate) fn rfc3339(nanos: i64) -> String {
    timestamp(nanos).to_string()
}

/// A time for file names: `20261124T000000Z`.
pub(crate) fn file_stamp(nanos: i64) -> String {
    timestamp(nanos).strftime("%Y%m%dT%H%M%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        nanos_of(text.parse::<Timestamp>().unwrap()).unwrap()
    }

    #[test]
    fn instants_parse_in_every_documented_form() {
        let now = at("2026-12-01T00:00:00Z");
        let utc = Zone::utc();
        let paris = parse_zone("Europe/Paris").unwrap();
        assert_eq!(parse_instant("now", now, &utc).unwrap(), now);
        assert_eq!(
            parse_instant("now-7d", now, &utc).unwrap(),
            at("2026-11-24T00:00:00Z")
        );
        assert_eq!(
            parse_instant("now - 1h30m", now, &utc).unwrap(),
            at("2026-11-30T22:30:00Z")
        );
        assert_eq!(
            parse_instant("2026-11-24T08:00:00+01:00", now, &utc).unwrap(),
            at("2026-11-24T07:00:00Z")
        );
        assert_eq!(
            parse_instant("2026-11-24", now, &paris).unwrap(),
            at("2026-11-23T23:00:00Z")
        );
        assert_eq!(
            parse_instant("2026-07-01T12:00", now, &paris).unwrap(),
            at("2026-07-01T10:00:00Z")
        );
        let error = parse_instant("yesterday", now, &utc).unwrap_err();
        assert!(
            error.contains("yesterday") && error.contains("RFC 3339"),
            "{error}"
        );
        assert!(
            parse_instant("now*3", now, &utc)
                .unwrap_err()
                .contains("now-7d")
        );
    }

    #[test]
    fn a_period_knows_its_previous_period_month_and_forecast_window() {
        let period = ReportPeriod::new(
            at("2026-11-24T00:00:00Z"),
            at("2026-11-28T12:00:00Z"),
            Zone::utc(),
            28 * NANOS_PER_DAY,
        )
        .unwrap();
        assert_eq!(period.previous_to, at("2026-11-24T00:00:00Z"));
        assert_eq!(period.previous_from, at("2026-11-19T12:00:00Z"));
        assert_eq!(period.month_start, at("2026-11-01T00:00:00Z"));
        assert_eq!(period.month_end, at("2026-12-01T00:00:00Z"));
        assert_eq!(period.forecast_to, at("2026-11-28T00:00:00Z"));
        assert_eq!(period.forecast_from, at("2026-10-31T00:00:00Z"));
        assert_eq!(period.forecast_horizon, 3 * NANOS_PER_DAY);
        assert_eq!(period.interval, NANOS_PER_HOUR);
        let at_month_start = ReportPeriod::new(
            at("2026-11-24T00:00:00Z"),
            at("2026-12-01T00:00:00Z"),
            Zone::utc(),
            28 * NANOS_PER_DAY,
        )
        .unwrap();
        assert_eq!(at_month_start.month_start, at("2026-12-01T00:00:00Z"));
        assert_eq!(at_month_start.forecast_horizon, 31 * NANOS_PER_DAY);
        let error = ReportPeriod::new(10, 10, Zone::utc(), NANOS_PER_DAY).unwrap_err();
        assert!(error.contains("empty"), "{error}");
    }

    #[test]
    fn calendar_periods_follow_the_zone_across_a_daylight_saving_change() {
        let paris = parse_zone("Europe/Paris").unwrap();
        // Monday 2026-03-30 08:00 CEST; the week before holds the change to summer time.
        let fired = at("2026-03-30T06:00:00Z");
        let (from, to) = SchedulePeriod::PreviousWeek.resolve(fired, &paris).unwrap();
        assert_eq!(from, at("2026-03-22T23:00:00Z"));
        assert_eq!(to, at("2026-03-29T22:00:00Z"));
        assert_eq!(to - from, 7 * NANOS_PER_DAY - NANOS_PER_HOUR);
        let (from, to) = SchedulePeriod::PreviousDay.resolve(fired, &paris).unwrap();
        assert_eq!(
            (from, to),
            (at("2026-03-28T23:00:00Z"), at("2026-03-29T22:00:00Z"))
        );
        let (from, to) = SchedulePeriod::PreviousMonth
            .resolve(fired, &paris)
            .unwrap();
        assert_eq!(
            (from, to),
            (at("2026-01-31T23:00:00Z"), at("2026-02-28T23:00:00Z"))
        );
        assert_eq!(
            SchedulePeriod::parse("7d")
                .unwrap()
                .resolve(fired, &paris)
                .unwrap(),
            (fired - 7 * NANOS_PER_DAY, fired)
        );
        assert!(
            SchedulePeriod::parse("fortnight")
                .unwrap_err()
                .contains("previous_week")
        );
    }

    #[test]
    fn a_civil_time_in_a_gap_maps_to_the_end_of_the_gap() {
        let paris = parse_zone("Europe/Paris").unwrap();
        let skipped = "2026-03-29T02:30:00".parse::<DateTime>().unwrap();
        assert_eq!(
            civil_to_nanos(skipped, &paris).unwrap(),
            at("2026-03-29T01:00:00Z")
        );
        let twice = "2026-10-25T02:30:00".parse::<DateTime>().unwrap();
        assert_eq!(
            civil_to_nanos(twice, &paris).unwrap(),
            at("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn intervals_grow_with_the_period() {
        assert_eq!(choose_interval(NANOS_PER_HOUR), NANOS_PER_MINUTE);
        assert_eq!(choose_interval(NANOS_PER_DAY), 5 * NANOS_PER_MINUTE);
        assert_eq!(choose_interval(7 * NANOS_PER_DAY), NANOS_PER_HOUR);
        assert_eq!(choose_interval(30 * NANOS_PER_DAY), 6 * NANOS_PER_HOUR);
        assert_eq!(choose_interval(365 * NANOS_PER_DAY), NANOS_PER_DAY);
        assert_eq!(duration_literal(NANOS_PER_HOUR), "1h");
        assert_eq!(duration_literal(7 * NANOS_PER_DAY), "1w");
    }

    #[test]
    fn instants_print_in_the_zone_with_its_abbreviation() {
        let paris = parse_zone("Europe/Paris").unwrap();
        assert_eq!(
            format_instant(at("2026-07-01T10:00:00Z"), &paris),
            "2026-07-01 12:00 CEST"
        );
        assert_eq!(
            format_instant(at("2026-12-01T10:00:30Z"), &Zone::utc()),
            "2026-12-01 10:00:30 UTC"
        );
        assert_eq!(
            format_short(at("2026-11-24T00:00:00Z"), &Zone::utc()),
            "Nov 24"
        );
        assert_eq!(file_stamp(at("2026-11-24T00:00:00Z")), "20261124T000000Z");
    }
}
