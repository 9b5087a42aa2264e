//! Small pieces every command shares: progress bars, the transfer rate limit, checksumming
//! readers and writers, time parsing and formatting, durable renames.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::error::DumpError;

/// Whether progress bars are drawn: on a terminal unless `--quiet`; never otherwise, so logs
/// and pipes stay clean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Progress bars on stderr when it is a terminal, unless `quiet`.
    pub fn new(quiet: bool) -> Progress {
        Progress {
            enabled: !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }

    /// A bar of `total` bytes with rate and ETA.
    pub(crate) fn bytes(&self, what: &str, total: u64) -> ProgressBar {
        self.bar(
            what,
            total,
            "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
    }

    /// A spinner counting items when the total is unknown.
    pub(crate) fn counter(&self, what: &str) -> ProgressBar {
        let bar = if self.enabled {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>9} {spinner} {human_pos} {per_sec} {msg}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(what.to_string());
        bar
    }

    fn bar(&self, what: &str, total: u64, template: &str) -> ProgressBar {
        let bar = if self.enabled {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_string());
        bar
    }
}

/// A limit on bytes per second, shared by every transfer of one command (`--max-rate`), so a
/// backup or restore leaves disk and network bandwidth to the server.
#[derive(Debug)]
pub(crate) struct RateLimit {
    bytes_per_second: Option<u64>,
    started: Instant,
    transferred: u64,
}

impl RateLimit {
    pub(crate) fn new(bytes_per_second: Option<u64>) -> RateLimit {
        RateLimit {
            bytes_per_second: bytes_per_second.filter(|r| *r > 0),
            started: Instant::now(),
            transferred: 0,
        }
    }

    /// Accounts `n` bytes and sleeps until the average rate is back under the limit.
    pub(crate) fn pace(&mut self, n: u64) {
        self.transferred += n;
        let Some(rate) = self.bytes_per_second else {
            return;
        };
        let due = Duration::from_secs_f64(self.transferred as f64 / rate as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}

/// Copies `reader` to `writer`, computing the CRC-32C of the bytes, pacing by `limit` and
/// advancing `bar`. Returns (bytes, crc) and the first 12 bytes (the format header).
pub(crate) fn copy_with_crc(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    limit: &mut RateLimit,
    bar: &ProgressBar,
) -> io::Result<(u64, u32, Vec<u8>)> {
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    let mut crc = 0u32;
    let mut header = Vec::with_capacity(12);
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buffer[..n];
        if header.len() < 12 {
            let take = (12 - header.len()).min(n);
            header.extend_from_slice(&chunk[..take]);
        }
        crc = crc32c::crc32c_append(crc, chunk);
        writer.write_all(chunk)?;
        total += n as u64;
        bar.inc(n as u64);
        limit.pace(n as u64);
    }
    Ok((total, crc, header))
}

/// The CRC-32C of a file, its size and its first 12 bytes.
pub(crate) fn file_crc(path: &Path, bar: &ProgressBar) -> Result<(u64, u32, Vec<u8>), DumpError> {
    let mut file = std::fs::File::open(path).map_err(|e| DumpError::io(path, e))?;
    let mut limit = RateLimit::new(None);
    copy_with_crc(&mut file, &mut io::sink(), &mut limit, bar).map_err(|e| DumpError::io(path, e))
}

/// A checksum as stored in manifests: 8 lower-case hex digits.
pub(crate) fn crc_hex(crc: u32) -> String {
    format!("{crc:08x}")
}

/// Fsyncs a directory so renames inside it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), DumpError> {
    let file = std::fs::File::open(dir).map_err(|e| DumpError::io(dir, e))?;
    file.sync_all().map_err(|e| DumpError::io(dir, e))
}

/// The parent of `path` for renames and fsyncs (`.` for a bare name).
pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The temporary name a result is built under before it is renamed into place: a hidden
/// sibling, so a killed run leaves something that neither looks complete nor is in the way.
pub(crate) fn temporary_sibling(path: &Path, purpose: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".to_string());
    parent_of(path).join(format!(".{name}.{purpose}-{}", std::process::id()))
}

/// Engine settings for opening a stopped directory from this tool: no background compaction
/// or retention, so exporting never rewrites or expires the operator's data (tallyd does that
/// work when it starts again), and no preallocated WAL files, which would only write zeros
/// into it (they serve write latency while compaction runs).
pub(crate) fn offline_engine_options() -> tally_engine::EngineOptions {
    let mut options = tally_engine::EngineOptions::default();
    options.compaction.enabled = false;
    options.wal_preallocate = false;
    options
}

/// Nanoseconds since the epoch, now.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian), after Howard Hinnant's
/// `days_from_civil`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// An RFC 3339 UTC timestamp with nanoseconds: `2026-11-30T12:00:00.000000001Z`.
pub(crate) fn format_time(ns: i64) -> String {
    let seconds = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60,
    );
    if nanos == 0 {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
    }
}

/// A compact UTC stamp for ids and file names: `20261130T120000Z`.
pub(crate) fn compact_time(ns: i64) -> String {
    format_time(ns.div_euclid(1_000_000_000) * 1_000_000_000).replace(['-', ':'], "")
}

/// Parses a time given on the command line: nanoseconds since the epoch (`1700000000000000000`,
/// negative allowed), an RFC 3339 timestamp (`2026-11-30T12:00:00Z`, `2026-11-30T12:00:00.5+02:00`),
/// a date (`2026-11-30`, midnight UTC), or `now-<duration>` / `now` (durations: `30s`, `15m`,
/// `6h`, `7d`, `2w`).
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(ns) = text.parse::<i64>() {
        return Ok(ns);
    }
    if let Some(rest) = text.strip_prefix("now") {
        let now = now_ns();
        if rest.is_empty() {
            return Ok(now);
        }
        let ago = rest
            .strip_prefix('-')
            .ok_or_else(|| format!("invalid time {text:?}: expected now-<duration>"))?;
        return Ok(now.saturating_sub(parse_duration_ns(ago)?));
    }
    parse_rfc3339(text).ok_or_else(|| {
        format!(
            "invalid time {text:?}: expected nanoseconds since the epoch, an RFC 3339 time such as \
             2026-11-30T12:00:00Z, a date such as 2026-11-30, or now-7d"
        )
    })
}

/// A duration such as `30s`, `15m`, `6h`, `7d` or `2w`, in nanoseconds.
pub(crate) fn parse_duration_ns(text: &str) -> Result<i64, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number.parse().map_err(|_| {
        format!("invalid duration {text:?}: expected a number and a unit such as 7d")
    })?;
    let unit_ns: i64 = match unit {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        "w" => 604_800_000_000_000,
        _ => {
            return Err(format!(
                "invalid duration {text:?}: the unit must be ns, us, ms, s, m, h, d or w"
            ));
        }
    };
    n.checked_mul(unit_ns)
        .ok_or_else(|| format!("duration {text:?} is too long"))
}

fn digits(text: &str, range: std::ops::Range<usize>) -> Option<i64> {
    let part = text.get(range)?;
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

fn parse_rfc3339(text: &str) -> Option<i64> {
    let year = digits(text, 0..4)?;
    if text.get(4..5)? != "-" || text.get(7..8)? != "-" {
        return None;
    }
    let month = digits(text, 5..7)?;
    let day = digits(text, 8..10)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if text.len() == 10 {
        return days.checked_mul(86_400_000_000_000);
    }
    if !matches!(text.get(10..11)?, "T" | "t" | " ") || text.get(13..14)? != ":" {
        return None;
    }
    let hour = digits(text, 11..13)?;
    let minute = digits(text, 14..16)?;
    if text.get(16..17)? != ":" {
        return None;
    }
    let second = digits(text, 17..19)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut nanos = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        let digits_text = fraction.get(..end)?;
        if digits_text.is_empty() || digits_text.len() > 9 {
            return None;
        }
        nanos = digits_text.parse::<i64>().ok()? * 10i64.pow(9 - digits_text.len() as u32);
        rest = fraction.get(end..)?;
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(0..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.get(3..4)? != ":" {
                return None;
            }
            sign * (digits(rest, 1..3)? * 3600 + digits(rest, 4..6)? * 60)
        }
    };
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Parses a byte rate such as `50MiB`, `100MB`, `1GiB` or `1048576` (per second).
pub(crate) fn parse_rate(text: &str) -> Result<u64, String> {
    let text = text.trim().trim_end_matches("/s");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid rate {text:?}: expected a size such as 50MiB"))?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "invalid rate {text:?}: unknown unit {other:?} (use B, KB, MB, GB, KiB, MiB or GiB)"
            ));
        }
    };
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("rate {text:?} is too large"))
}

/// Bytes in a human unit: `1.5 GiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_accepted_form() {
        assert_eq!(parse_time("-5").unwrap(), -5);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400_000_000_000);
        assert_eq!(
            parse_time("2026-11-30T12:00:00.5+02:00").unwrap(),
            parse_time("2026-11-30T10:00:00.500Z").unwrap()
        );
        assert_eq!(parse_time("1969-12-31T23:59:59Z").unwrap(), -1_000_000_000);
        assert!(parse_time("2026-13-01").is_err());
        assert!(parse_time("yesterday").is_err());
        let week_ago = parse_time("now-7d").unwrap();
        assert!(now_ns() - week_ago >= 7 * 86_400_000_000_000);
    }

    #[test]
    fn formatting_a_time_reads_back_to_the_same_nanosecond() {
        for ns in [0i64, -1, 1_795_996_800_123_456_789, -86_400_000_000_001] {
            assert_eq!(
                parse_time(&format_time(ns)).unwrap(),
                ns,
                "{}",
                format_time(ns)
            );
        }
        assert_eq!(compact_time(1_795_996_800_000_000_123), "20261130T000000Z");
    }

    #[test]
    fn rates_accept_binary_and_decimal_units() {
        assert_eq!(parse_rate("50MiB").unwrap(), 50 << 20);
        assert_eq!(parse_rate("1GB/s").unwrap(), 1_000_000_000);
        assert!(parse_rate("fast").is_err());
    }
}
