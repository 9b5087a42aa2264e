//! Time strings as InfluxQL accepts them in comparisons with `time`:
//! RFC 3339 (`'2026-11-30T00:00:00Z'`, `'2026-11-30T00:00:00.5+01:00'`), the space-separated
//! form (`'2026-11-30 00:00:00'`) and a bare date (`'2026-11-30'`).
//!
//! The parser keeps such strings as plain string literals; the planner turns them into
//! instants with [`TimeLiteral::parse`] once it knows they are compared with `time`, and
//! supplies the offset (from `tz()`) for strings that carry none.

/// A calendar date and time of day, with the UTC offset when the text gives one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLiteral {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub nanosecond: u32,
    /// Seconds east of UTC, when the text ends in `Z` or `±HH:MM`.
    pub utc_offset_seconds: Option<i32>,
}

/// Why a string is not a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct TimeLiteralError {
    pub reason: String,
    /// Byte offset in the string where the problem starts.
    pub position: usize,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl Cursor<'_> {
    fn error(&self, reason: impl Into<String>) -> TimeLiteralError {
        TimeLiteralError {
            reason: reason.into(),
            position: self.position,
        }
    }

    fn digits(&mut self, count: usize, what: &str) -> Result<u32, TimeLiteralError> {
        let mut value = 0u32;
        for _ in 0..count {
            match self.bytes.get(self.position) {
                Some(byte) if byte.is_ascii_digit() => {
                    value = value * 10 + u32::from(byte - b'0');
                    self.position += 1;
                }
                _ => return Err(self.error(format!("expected {count} digits for the {what}"))),
            }
        }
        Ok(value)
    }

    fn expect(&mut self, wanted: u8, after: &str) -> Result<(), TimeLiteralError> {
        if self.bytes.get(self.position) == Some(&wanted) {
            self.position += 1;
            Ok(())
        } else {
            Err(self.error(format!(
                "expected '{}' after the {after}",
                char::from(wanted)
            )))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }
}

fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (the well-known era-based
/// conversion: 400-year eras of 146097 days, years starting in March).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

impl TimeLiteral {
    pub fn parse(text: &str) -> Result<TimeLiteral, TimeLiteralError> {
        let mut cursor = Cursor {
            bytes: text.as_bytes(),
            position: 0,
        };
        let year = cursor.digits(4, "year")?;
        cursor.expect(b'-', "year")?;
        let month_position = cursor.position;
        let month = cursor.digits(2, "month")?;
        cursor.expect(b'-', "month")?;
        let day_position = cursor.position;
        let day = cursor.digits(2, "day")?;
        let year = i32::try_from(year).unwrap_or(i32::MAX);
        let month = u8::try_from(month).unwrap_or(u8::MAX);
        let day = u8::try_from(day).unwrap_or(u8::MAX);
        if !(1..=12).contains(&month) {
            return Err(TimeLiteralError {
                reason: format!("month {month} is out of range (1 to 12)"),
                position: month_position,
            });
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(TimeLiteralError {
                reason: format!("day {day} is out of range for {year:04}-{month:02}"),
                position: day_position,
            });
        }
        let mut literal = TimeLiteral {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            nanosecond: 0,
            utc_offset_seconds: None,
        };
        match cursor.peek() {
            None => return Ok(literal),
            Some(b'T' | b't' | b' ') => cursor.position += 1,
            Some(_) => return Err(cursor.error("expected 'T' or a space between date and time")),
        }
        let hour_position = cursor.position;
        let hour = cursor.digits(2, "hour")?;
        cursor.expect(b':', "hour")?;
        let minute = cursor.digits(2, "minute")?;
        cursor.expect(b':', "minute")?;
        let second = cursor.digits(2, "second")?;
        if hour > 23 || minute > 59 || second > 59 {
            return Err(TimeLiteralError {
                reason: format!("time of day {hour:02}:{minute:02}:{second:02} is out of range"),
                position: hour_position,
            });
        }
        literal.hour = u8::try_from(hour).unwrap_or(0);
        literal.minute = u8::try_from(minute).unwrap_or(0);
        literal.second = u8::try_from(second).unwrap_or(0);
        if cursor.peek() == Some(b'.') {
            cursor.position += 1;
            let mut digit_count = 0;
            let mut nanosecond = 0u32;
            while let Some(byte) = cursor.peek().filter(u8::is_ascii_digit) {
                if digit_count == 9 {
                    return Err(cursor.error("more than 9 fractional digits (nanoseconds)"));
                }
                nanosecond = nanosecond * 10 + u32::from(byte - b'0');
                digit_count += 1;
                cursor.position += 1;
            }
            if digit_count == 0 {
                return Err(cursor.error("expected digits after the decimal point"));
            }
            literal.nanosecond = nanosecond * 10u32.pow(9 - digit_count);
        }
        match cursor.peek() {
            None => {}
            Some(b'Z' | b'z') => {
                cursor.position += 1;
                literal.utc_offset_seconds = Some(0);
            }
            Some(sign @ (b'+' | b'-')) => {
                cursor.position += 1;
                let offset_position = cursor.position;
                let hours = cursor.digits(2, "offset hours")?;
                cursor.expect(b':', "offset hours")?;
                let minutes = cursor.digits(2, "offset minutes")?;
                if hours > 23 || minutes > 59 {
                    return Err(TimeLiteralError {
                        reason: format!("UTC offset {hours:02}:{minutes:02} is out of range"),
                        position: offset_position,
                    });
                }
                let seconds = i32::try_from(hours * 3600 + minutes * 60).unwrap_or(0);
                literal.utc_offset_seconds = Some(if sign == b'-' { -seconds } else { seconds });
            }
            Some(_) => {
                return Err(cursor.error("expected 'Z', '+HH:MM' or '-HH:MM' after the time"));
            }
        }
        if cursor.position != text.len() {
            return Err(cursor.error("unexpected text after the time"));
        }
        Ok(literal)
    }

    /// Nanoseconds since the Unix epoch, reading a time without an offset at
    /// `default_offset_seconds` east of UTC; `None` outside the i64 range (1677 to 2262).
    pub fn unix_nanos(&self, default_offset_seconds: i32) -> Option<i64> {
        let offset = i128::from(self.utc_offset_seconds.unwrap_or(default_offset_seconds));
        let days = i128::from(days_from_civil(self.year, self.month, self.day));
        let seconds = days * 86_400
            + i128::from(self.hour) * 3600
            + i128::from(self.minute) * 60
            + i128::from(self.second)
            - offset;
        i64::try_from(seconds * 1_000_000_000 + i128::from(self.nanosecond)).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(text: &str) -> i64 {
        TimeLiteral::parse(text).unwrap().unix_nanos(0).unwrap()
    }

    #[test]
    fn rfc3339_times_become_epoch_nanoseconds() {
        assert_eq!(nanos("1970-01-01T00:00:00Z"), 0);
        assert_eq!(nanos("2023-11-14T22:13:20Z"), 1_700_000_000_000_000_000);
        assert_eq!(nanos("2023-11-14T22:13:20.5Z"), 1_700_000_000_500_000_000);
        assert_eq!(
            nanos("2023-11-14T22:13:20.000000001z"),
            1_700_000_000_000_000_001
        );
        assert_eq!(
            nanos("2023-11-14T23:13:20+01:00"),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            nanos("2023-11-14T21:13:20-01:00"),
            1_700_000_000_000_000_000
        );
        assert_eq!(nanos("1969-12-31T23:59:59Z"), -1_000_000_000);
        assert_eq!(nanos("2000-02-29T00:00:00Z"), 951_782_400_000_000_000);
    }

    #[test]
    fn influxql_space_form_and_bare_dates_are_accepted() {
        assert_eq!(nanos("2023-11-14 22:13:20"), 1_700_000_000_000_000_000);
        assert_eq!(nanos("2023-11-14"), 1_699_920_000_000_000_000);
        let literal = TimeLiteral::parse("2026-11-30 00:00:00").unwrap();
        assert_eq!(literal.utc_offset_seconds, None);
        assert_eq!(
            literal.unix_nanos(3600).unwrap(),
            nanos("2026-11-30T00:00:00+01:00")
        );
    }

    #[test]
    fn impossible_dates_and_times_are_refused_with_a_reason() {
        let reason = |text: &str| TimeLiteral::parse(text).unwrap_err().reason;
        assert_eq!(reason("2026-13-01"), "month 13 is out of range (1 to 12)");
        assert_eq!(reason("2026-02-29"), "day 29 is out of range for 2026-02");
        assert_eq!(
            reason("2026-01-01T24:00:00Z"),
            "time of day 24:00:00 is out of range"
        );
        assert_eq!(reason("yesterday"), "expected 4 digits for the year");
        assert_eq!(
            reason("2026-01-01T00:00:00.Z"),
            "expected digits after the decimal point"
        );
        assert_eq!(
            reason("2026-01-01T00:00:00.1234567891Z"),
            "more than 9 fractional digits (nanoseconds)"
        );
        assert_eq!(
            reason("2026-01-01T00:00:00Zjunk"),
            "unexpected text after the time"
        );
        assert_eq!(
            reason("2026-01-01T00:00:00+0100"),
            "expected ':' after the offset hours"
        );
    }

    #[test]
    fn times_outside_the_nanosecond_range_have_no_epoch_value() {
        assert!(
            TimeLiteral::parse("1500-01-01")
                .unwrap()
                .unix_nanos(0)
                .is_none()
        );
        assert!(
            TimeLiteral::parse("2262-04-11T23:47:16Z")
                .unwrap()
                .unix_nanos(0)
                .is_some()
        );
        assert!(
            TimeLiteral::parse("2262-04-11T23:47:17Z")
                .unwrap()
                .unix_nanos(0)
                .is_none()
        );
    }
}
