//! Parsers for the Linux `/proc` files the host and process samplers read where sysinfo has no
//! answer: CPU time per state (`/proc/stat`), cached and buffered memory (`/proc/meminfo`), swap
//! traffic (`/proc/vmstat`), per-device I/O (`/proc/diskstats`), drops per interface
//! (`/proc/net/dev`) and thread counts (`/proc/<pid>/status`).
//!
//! Each parser takes the file's text and returns plain numbers; lines it does not know are
//! skipped, lines it knows but cannot read are errors naming the line.

use std::collections::HashMap;

/// Why a `/proc` file could not be read: the line and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcError {
    pub line: u32,
    pub reason: String,
}

fn number(text: &str, line: u32, what: &str) -> Result<u64, ProcError> {
    text.parse().map_err(|_| ProcError {
        line,
        reason: format!("{what} {text:?} is not an unsigned integer"),
    })
}

/// CPU time of one `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// `cpu` for the total, `cpu0`, `cpu1`, … for each core.
    pub name: String,
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    pub guest: u64,
    pub guest_nice: u64,
}

impl CpuTimes {
    /// Time spent in all states. The kernel already counts guest time inside user time (and
    /// guest_nice inside nice), so the guests are left out, as Telegraf does.
    pub(crate) fn total(&self) -> u64 {
        self.user
            .saturating_add(self.nice)
            .saturating_add(self.system)
            .saturating_add(self.idle)
            .saturating_add(self.iowait)
            .saturating_add(self.irq)
            .saturating_add(self.softirq)
            .saturating_add(self.steal)
    }

    /// Percent of the time between `previous` and `self` spent in each state, named as
    /// Telegraf's cpu input names them; `None` when no time passed (or the counters went back).
    pub(crate) fn usage_since(&self, previous: &CpuTimes) -> Option<[(&'static str, f64); 10]> {
        let total = self.total().checked_sub(previous.total())?;
        if total == 0 {
            return None;
        }
        let pct = |now: u64, before: u64| now.saturating_sub(before) as f64 * 100.0 / total as f64;
        Some([
            ("usage_user", pct(self.user, previous.user)),
            ("usage_system", pct(self.system, previous.system)),
            ("usage_idle", pct(self.idle, previous.idle)),
            ("usage_nice", pct(self.nice, previous.nice)),
            ("usage_iowait", pct(self.iowait, previous.iowait)),
            ("usage_irq", pct(self.irq, previous.irq)),
            ("usage_softirq", pct(self.softirq, previous.softirq)),
            ("usage_steal", pct(self.steal, previous.steal)),
            ("usage_guest", pct(self.guest, previous.guest)),
            (
                "usage_guest_nice",
                pct(self.guest_nice, previous.guest_nice),
            ),
        ])
    }
}

/// The `cpu` lines of `/proc/stat`: the total first, then each core.
pub(crate) fn parse_stat(text: &str) -> Result<Vec<CpuTimes>, ProcError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_number = i as u32 + 1;
        let mut words = line.split_ascii_whitespace();
        let Some(name) = words.next().filter(|w| w.starts_with("cpu")) else {
            continue;
        };
        let values: Vec<u64> = words
            .map(|w| number(w, line_number, "cpu time"))
            .collect::<Result<_, _>>()?;
        if values.len() < 4 {
            return Err(ProcError {
                line: line_number,
                reason: format!("{name} has {} values; expected at least 4", values.len()),
            });
        }
        let at = |i: usize| values.get(i).copied().unwrap_or(0);
        out.push(CpuTimes {
            name: name.to_string(),
            user: at(0),
            nice: at(1),
            system: at(2),
            idle: at(3),
            iowait: at(4),
            irq: at(5),
            softirq: at(6),
            steal: at(7),
            guest: at(8),
            guest_nice: at(9),
        });
    }
    Ok(out)
}

/// `/proc/meminfo` in bytes by key (`MemTotal`, `Cached`, …).
pub(crate) fn parse_meminfo(text: &str) -> Result<HashMap<String, u64>, ProcError> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut words = rest.split_ascii_whitespace();
        let Some(value) = words.next() else {
            continue;
        };
        let value = number(value, i as u32 + 1, key)?;
        let bytes = match words.next() {
            Some("kB") => value.saturating_mul(1024),
            _ => value,
        };
        out.insert(key.to_string(), bytes);
    }
    Ok(out)
}

/// `/proc/vmstat` counters by name.
pub(crate) fn parse_vmstat(text: &str) -> Result<HashMap<String, u64>, ProcError> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_ascii_whitespace();
        if let (Some(key), Some(value)) = (words.next(), words.next()) {
            out.insert(key.to_string(), number(value, i as u32 + 1, key)?);
        }
    }
    Ok(out)
}

/// One device of `/proc/diskstats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DiskStats {
    pub name: String,
    pub reads: u64,
    pub merged_reads: u64,
    pub sectors_read: u64,
    pub read_time_ms: u64,
    pub writes: u64,
    pub merged_writes: u64,
    pub sectors_written: u64,
    pub write_time_ms: u64,
    pub in_progress: u64,
    pub io_time_ms: u64,
    pub weighted_io_time_ms: u64,
}

/// `/proc/diskstats`: major, minor, name, then at least 11 counters.
pub(crate) fn parse_diskstats(text: &str) -> Result<Vec<DiskStats>, ProcError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_number = i as u32 + 1;
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if words.len() < 14 {
            return Err(ProcError {
                line: line_number,
                reason: format!("{} fields; expected at least 14", words.len()),
            });
        }
        let n = |i: usize| number(words[i], line_number, "counter");
        out.push(DiskStats {
            name: words[2].to_string(),
            reads: n(3)?,
            merged_reads: n(4)?,
            sectors_read: n(5)?,
            read_time_ms: n(6)?,
            writes: n(7)?,
            merged_writes: n(8)?,
            sectors_written: n(9)?,
            write_time_ms: n(10)?,
            in_progress: n(11)?,
            io_time_ms: n(12)?,
            weighted_io_time_ms: n(13)?,
        });
    }
    Ok(out)
}

/// One interface of `/proc/net/dev`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NetDev {
    pub interface: String,
    pub bytes_recv: u64,
    pub packets_recv: u64,
    pub err_in: u64,
    pub drop_in: u64,
    pub bytes_sent: u64,
    pub packets_sent: u64,
    pub err_out: u64,
    pub drop_out: u64,
}

/// `/proc/net/dev`: two header lines, then `iface: 8 receive counters 8 transmit counters`.
pub(crate) fn parse_net_dev(text: &str) -> Result<Vec<NetDev>, ProcError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_number = i as u32 + 1;
        let Some((interface, counters)) = line.split_once(':') else {
            continue;
        };
        let values: Vec<u64> = counters
            .split_ascii_whitespace()
            .map(|w| number(w, line_number, "counter"))
            .collect::<Result<_, _>>()?;
        if values.len() < 16 {
            return Err(ProcError {
                line: line_number,
                reason: format!("{} counters; expected 16", values.len()),
            });
        }
        out.push(NetDev {
            interface: interface.trim().to_string(),
            bytes_recv: values[0],
            packets_recv: values[1],
            err_in: values[2],
            drop_in: values[3],
            bytes_sent: values[8],
            packets_sent: values[9],
            err_out: values[10],
            drop_out: values[11],
        });
    }
    Ok(out)
}

/// The `Threads:` count of `/proc/<pid>/status`.
pub(crate) fn parse_threads(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_reads_total_and_per_core_times_and_usage_is_the_share_of_each_state() {
        let before = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 100 0 50 800 50 0 0 0 0 0\nintr 1 2\n";
        let after = "cpu  160 0 70 900 70 0 0 0 10 0\ncpu0 160 0 70 900 70 0 0 0 10 0\nintr 1 2\n";
        let before = parse_stat(before).unwrap();
        let after = parse_stat(after).unwrap();
        assert_eq!(after.len(), 2);
        assert_eq!(after[1].name, "cpu0");
        let usage = after[0].usage_since(&before[0]).unwrap();
        let get = |k: &str| usage.iter().find(|(n, _)| *n == k).unwrap().1;
        // 60 user + 20 system + 100 idle + 20 iowait = 200 ticks.
        assert_eq!(get("usage_user"), 30.0);
        assert_eq!(get("usage_system"), 10.0);
        assert_eq!(get("usage_idle"), 50.0);
        assert_eq!(get("usage_iowait"), 10.0);
        assert_eq!(get("usage_guest"), 5.0);
        assert!(after[0].usage_since(&after[0]).is_none());
    }

    #[test]
    fn stat_names_the_line_of_a_bad_number() {
        let err = parse_stat("intr 1\ncpu 1 2 x 4\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("\"x\""), "{}", err.reason);
        assert_eq!(parse_stat("cpu 1 2\n").unwrap_err().line, 1);
    }

    #[test]
    fn meminfo_values_are_bytes() {
        let m = parse_meminfo("MemTotal:       16000 kB\nHugePages_Total:       0\n").unwrap();
        assert_eq!(m["MemTotal"], 16000 * 1024);
        assert_eq!(m["HugePages_Total"], 0);
    }

    #[test]
    fn diskstats_and_net_dev_read_every_counter() {
        let disks =
            parse_diskstats("   8       0 sda 100 5 2000 30 200 6 4000 40 1 50 70 0 0 0 0\n")
                .unwrap();
        assert_eq!(disks[0].name, "sda");
        assert_eq!(disks[0].sectors_written, 4000);
        assert_eq!(disks[0].weighted_io_time_ms, 70);
        assert!(parse_diskstats("8 0 sda 1 2\n").is_err());
        let net = parse_net_dev(
            "Inter-|   Receive\n face |bytes\n  eth0: 10 2 3 4 0 0 0 0 20 5 6 7 0 0 0 0\n",
        )
        .unwrap();
        assert_eq!(
            net[0],
            NetDev {
                interface: "eth0".into(),
                bytes_recv: 10,
                packets_recv: 2,
                err_in: 3,
                drop_in: 4,
                bytes_sent: 20,
                packets_sent: 5,
                err_out: 6,
                drop_out: 7,
            }
        );
    }

    #[test]
    fn threads_come_from_the_status_file() {
        assert_eq!(parse_threads("Name:\tx\nThreads:\t12\n"), Some(12));
        assert_eq!(parse_threads("Name:\tx\n"), None);
    }
}
