//! Calendar dates and RFC 3339 text in UTC, shared by query responses, alert notifications,
//! rule templates and mail headers.

use std::fmt::Write as _;

/// `ns` as InfluxDB and Alertmanager write times: RFC 3339 in UTC, with the fraction of a
/// second only as long as it needs to be.
pub(crate) fn rfc3339(ns: i64) -> String {
    let mut out = String::with_capacity(30);
    write_rfc3339(&mut out, ns);
    out
}

/// Appends `ns` as InfluxDB writes times: RFC 3339 in UTC, with the fraction of a second only
/// as long as it needs to be. Written digit by digit: a result may hold thousands of times.
pub(crate) fn write_rfc3339(out: &mut String, ns: i64) {
    fn digits(out: &mut String, value: u64, width: usize) {
        let mut buffer = [b'0'; 20];
        let mut v = value;
        for slot in buffer[..width].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        // Only ASCII digits were written.
        out.push_str(std::str::from_utf8(&buffer[..width]).unwrap_or("0"));
    }
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u64;
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        digits(out, y as u64, 4);
    } else {
        let _ = write!(out, "{y:04}");
    }
    out.push('-');
    digits(out, u64::from(m), 2);
    out.push('-');
    digits(out, u64::from(d), 2);
    out.push('T');
    digits(out, rem / 3600, 2);
    out.push(':');
    digits(out, rem % 3600 / 60, 2);
    out.push(':');
    digits(out, rem % 60, 2);
    if nanos != 0 {
        let mut width = 9;
        let mut fraction = nanos;
        while fraction.is_multiple_of(10) {
            fraction /= 10;
            width -= 1;
        }
        out.push('.');
        digits(out, fraction, width);
    }
    out.push('Z');
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian), after Howard Hinnant's
/// algorithm.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
